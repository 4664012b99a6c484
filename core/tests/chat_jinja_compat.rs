//! Jinja2 behaviours that real chat templates rely on, compared with Python.
//!
//! Each row is a small template and what Hugging Face's renderer produced for it, with the
//! "multi_turn" conversation, add_generation_prompt=True, bos_token "<s>", eos_token
//! "</s>" and the clock pinned to 2025-03-09 08:30 (UTC here). The rows were printed by
//! `python3 core/tests/chat_data/render_with_transformers.py compat` (transformers 5.24.0,
//! Jinja2 3.1.6); `Fails` rows are errors in Python (the text is Python's message; here
//! only the kind of error is compared), `Raised` rows are `raise_exception` calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use joule_core::chat::{ChatMessage, ChatTemplate, TemplateError, TemplateTokens};

enum Expect {
    Render(&'static str),
    Raised(&'static str),
    Fails(&'static str),
}
use Expect::{Fails, Raised, Render};

/// 2025-03-09 08:30:00 UTC.
fn pinned_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_741_509_000)
}

fn multi_turn() -> Vec<ChatMessage> {
    vec![
        ChatMessage::user("Hi!"),
        ChatMessage::assistant("Hello! How can I help you today?"),
        ChatMessage::user("Tell me a fun fact about octopuses."),
    ]
}

#[rustfmt::skip]
const ROWS: &[(&str, Expect)] = &[
    ("[{{ nope }}|{{ messages[0].missing }}|{{ messages[7] }}|{{ nope ~ 'x' }}|{{ nope|trim }}]", Render("[|||x|]")),
    ("{% for x in nope %}x{% endfor %}[{{ nope|length }}]{% if not nope %}empty{% endif %}", Render("[0]empty")),
    ("{{ nope is defined }} {{ messages is defined }} {{ tools is none }} {{ nope is none }}", Render("False True True False")),
    ("{{ nope|default('dflt') }} {{ 'y' if none }}|{{ 1 if true else 2 }}", Render("dflt |1")),
    ("{{ messages[0].missing is defined }} {{ messages[0].role is defined }}", Render("False True")),
    ("{{ nope.attr }}", Fails("UndefinedError: 'nope' is undefined")),
    ("{{ nope + 'x' }}", Fails("UndefinedError: 'nope' is undefined")),
    ("{{ messages[0].missing.deeper }}", Fails("UndefinedError: 'dict object' has no attribute 'missing'")),
    ("{{ none }} {{ true }} {{ false }} {{ 1.0 }} {{ 2.5e-7 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ 2 ** 10 }} {{ 7 % 3 }}", Render("None True False 1.0 2.5e-07 2.5 3 1024 1")),
    ("{{ [1, 'a', none, true, \"it's\"] }} {{ {'k': 'v', 'n': [1.5]} }}", Render("[1, 'a', None, True, \"it's\"] {'k': 'v', 'n': [1.5]}")),
    ("{{ messages[0] }} {{ true|string + '|' + none|string + '|' + 12|string }}", Render("{'role': 'user', 'content': 'Hi!'} True|None|12")),
    ("{{ {'b': 1, 'a': [1, 2.5, none, true, false], 's': 'é<>&\\'\"\n\u{1}'}|tojson }}", Render("{\"b\": 1, \"a\": [1, 2.5, null, true, false], \"s\": \"é<>&'\\\"\\n\\u0001\"}")),
    ("{{ {'b': {'c': [1, {}], 'd': []}, 'a': 'x'}|tojson(indent=2) }}", Render("{\n  \"b\": {\n    \"c\": [\n      1,\n      {}\n    ],\n    \"d\": []\n  },\n  \"a\": \"x\"\n}")),
    ("{{ {'b': 1, 'a': {'z': 0, 'y': 1}}|tojson(indent=4, sort_keys=true) }}", Render("{\n    \"a\": {\n        \"y\": 1,\n        \"z\": 0\n    },\n    \"b\": 1\n}")),
    ("{{ {'b': 1, 'a': [1, 2]}|tojson(separators=(',', ':')) }} {{ 'Ünï 🙂'|tojson(ensure_ascii=true) }}", Render("{\"b\":1,\"a\":[1,2]} \"\\u00dcn\\u00ef \\ud83d\\ude42\"")),
    ("{{ messages|tojson }} {{ messages[0].role|tojson }} {{ [] | tojson(indent=2) }} {{ dict(a=1, b=none)|tojson }}", Render("[{\"role\": \"user\", \"content\": \"Hi!\"}, {\"role\": \"assistant\", \"content\": \"Hello! How can I help you today?\"}, {\"role\": \"user\", \"content\": \"Tell me a fun fact about octopuses.\"}] \"user\" [] {\"a\": 1, \"b\": null}")),
    ("{{ nope|tojson }}", Fails("TypeError: Object of type Undefined is not JSON serializable")),
    ("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nhi'.lstrip('\\n') }}|{{ 'hi  '.rstrip() }}|", Render("a b|a|hi|hi|")),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a</think>b'.split('</think>')[-1] }}", Render("['a', 'b', '', 'c'] ['a', 'b'] b")),
    ("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('lo', 'x')) }} {{ 'Hello'.endswith('x') }}", Render("True True False")),
    ("{{ 'hello world'.title() }} {{ 'MiXed'.upper() }} {{ 'MiXed'.lower() }} {{ 'a-b-c'.replace('-', '+') }}", Render("Hello World MIXED mixed a+b+c")),
    ("{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}", Render("x=1;y=2;")),
    ("{{ messages[0].get('role') }} {{ messages[0].get('nope', 'dflt') }} {{ messages[0].get('nope') }}", Render("user dflt None")),
    ("{% for k, v in messages[0].items() %}{{ k }}:{{ v }} {% endfor %}{{ messages[0].keys()|list }}", Render("role:user content:Hi! ['role', 'content']")),
    ("{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}", Render("01TrueFalse3 12FalseFalse3 23FalseTrue3 ")),
    ("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content|length %}{% endfor %}{{ ns.n }}", Render("70")),
    ("{{ messages[1:]|length }} {{ messages[-1].content }} {{ (messages|map(attribute='role')|list)[::-1] }} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }}", Render("2 Tell me a fun fact about octopuses. ['user', 'assistant', 'user'] bcd cba")),
    ("{% for m in messages %}{% if m.role == 'assistant' %}{% continue %}{% endif %}{{ m.content }};{% endfor %}{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}", Render("Hi!;Tell me a fun fact about octopuses.;user")),
    ("{{ 'a' + 'b' ~ 1 }} {{ 'x' in messages[0] }} {{ 'role' in messages[0] }} {{ 'Hi' in messages[0].content }}", Render("ab1 False True True")),
    ("{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|join(', ') }}", Render("2 Hello! How can I help you today?")),
    ("{{ messages[0].content is string }} {{ messages is iterable }} {{ messages[0] is mapping }} {{ 3 is number }}", Render("True True True True")),
    ("{{ [3, 1, 2]|sort|list }} {{ [1, 2, 3]|sum }} {{ [1, 2]|first }}{{ [1, 2]|last }} {{ '  x  '|trim }}|{{ 'abc'|length }}", Render("[1, 2, 3] 6 12 x|3")),
    ("{{ '%s-%s'|format('a', 3) }} {{ 'hello world'|capitalize }} {{ 'hello world'|title }} {{ range(3)|list }}", Render("a-3 Hello world Hello World [0, 1, 2]")),
    ("{% for m in messages %}\n    {{ m.role }}\n    {% if loop.last %}\n  last\n    {% endif %}\n{% endfor %}\nend\n", Render("    user\n    assistant\n    user\n  last\nend")),
    ("a  {%- if true %}  b  {% endif -%}  c {#- comment #} d\n  {# c2 #}\ne", Render("a  b  c d\ne")),
    ("a {%- generation %} {{ messages[1].content }} {%- endgeneration %}\n b", Render("a Hello! How can I help you today? b")),
    ("{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools }}{{ documents }}", Render("<s></s>TrueNoneNone")),
    ("{{ strftime_now('%Y-%m-%d %H:%M') }} {{ date_string }} {{ strftime_now is defined }}", Render("2025-03-09 08:30 09 Mar 2025 True")),
    ("ok{{ raise_exception('custom ' ~ messages|length) }}", Raised("custom 3")),
];

#[test]
fn snippets_render_as_in_python() {
    let mut failures = Vec::new();
    for (i, (snippet, expect)) in ROWS.iter().enumerate() {
        let outcome = ChatTemplate::new(snippet, TemplateTokens::new("<s>", "</s>"))
            .and_then(|t| t.render_at(&multi_turn(), true, pinned_now()));
        let ok = match (expect, &outcome) {
            (Render(text), Ok(got)) => got == text,
            (Raised(text), Err(TemplateError::Raised { message, .. })) => message == text,
            (Fails(_), Err(TemplateError::Render { .. })) => true,
            _ => false,
        };
        if !ok {
            let expected = match expect {
                Render(t) => format!("render {t:?}"),
                Raised(t) => format!("raise_exception({t:?})"),
                Fails(t) => format!("a render error (Python: {t})"),
            };
            failures.push(format!(
                "row {i}: {snippet:?}\n  expected {expected}\n  got      {outcome:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}
