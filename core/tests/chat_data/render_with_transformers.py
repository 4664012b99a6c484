"""Prints the expected renders used by core/tests/chat_templates.rs and chat_jinja_compat.rs,
as Rust table rows (`python3 render_with_transformers.py templates|compat`).

The renders come from Hugging Face's own code path: transformers'
`render_jinja_template` (what `tokenizer.apply_chat_template` calls), i.e. Jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, HF's tojson,
raise_exception and strftime_now. The clock is pinned to 2025-03-09 08:30:00 and
`date_string` is passed as a template keyword argument, as joule does.

    pip install transformers jinja2   # produced with transformers 5.24.0, Jinja2 3.1.6
    python3 render_with_transformers.py templates > rows.txt
"""

import datetime
import os
import sys

import jinja2

import transformers.utils.chat_template_utils as ctu

NOW = datetime.datetime(2025, 3, 9, 8, 30, 0)


class PinnedClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


ctu.datetime = PinnedClock

HERE = os.path.dirname(os.path.abspath(__file__))

# (template file, bos_token, eos_token)
TEMPLATES = [
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"),
    ("Qwen-Qwen3-0.6B.jinja", "", "<|im_end|>"),
    ("google-gemma-3-it.jinja", "<bos>", "<eos>"),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "<s>", "</s>"),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<|EOT|>"),
]

# Conversations, by name; chat_templates.rs defines the same ones.
CHATS = {
    "single": [("user", "What is the capital of France?")],
    "system": [("system", "You are a concise assistant."), ("user", "List three primary colors.")],
    "multi_turn": [
        ("user", "Hi!"),
        ("assistant", "Hello! How can I help you today?"),
        ("user", "Tell me a fun fact about octopuses."),
    ],
    "whitespace_unicode": [
        ("system", "  R\u00e9ponds en fran\u00e7ais. \U0001f642  \n"),
        ("user", "  Quelle heure est-il ?\n\n"),
        ("assistant", " Il est midi. "),
        ("user", "Merci \u00ab beaucoup \u00bb {{ not_a_tag }}"),
    ],
    "thinking": [
        ("user", "What is 2+2?"),
        ("assistant", "<think>\nSimple arithmetic.\n</think>\n\n4"),
        ("user", "And 3+3?"),
    ],
    "not_alternating": [("user", "First."), ("user", "Second.")],
}

# (chat, add_generation_prompt); every template renders every one of these.
CASES = [(name, True) for name in CHATS] + [("multi_turn", False), ("system", False)]


def rust_str(s):
    out = []
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20:
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


# Jinja2 behaviours real templates lean on, rendered with the "multi_turn" chat,
# add_generation_prompt=True, bos_token "<s>" and eos_token "</s>".
SNIPPETS = [
    # lenient undefined values, as Jinja2's default Undefined
    "[{{ nope }}|{{ messages[0].missing }}|{{ messages[7] }}|{{ nope ~ 'x' }}|{{ nope|trim }}]",
    "{% for x in nope %}x{% endfor %}[{{ nope|length }}]{% if not nope %}empty{% endif %}",
    "{{ nope is defined }} {{ messages is defined }} {{ tools is none }} {{ nope is none }}",
    "{{ nope|default('dflt') }} {{ 'y' if none }}|{{ 1 if true else 2 }}",
    "{{ messages[0].missing is defined }} {{ messages[0].role is defined }}",
    "{{ nope.attr }}",
    "{{ nope + 'x' }}",
    "{{ messages[0].missing.deeper }}",
    # values print as Python prints them
    "{{ none }} {{ true }} {{ false }} {{ 1.0 }} {{ 2.5e-7 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ 2 ** 10 }} {{ 7 % 3 }}",
    "{{ [1, 'a', none, true, \"it's\"] }} {{ {'k': 'v', 'n': [1.5]} }}",
    "{{ messages[0] }} {{ true|string + '|' + none|string + '|' + 12|string }}",
    # Hugging Face's tojson
    "{{ {'b': 1, 'a': [1, 2.5, none, true, false], 's': 'é<>&\\'\"\n\u0001'}|tojson }}",
    "{{ {'b': {'c': [1, {}], 'd': []}, 'a': 'x'}|tojson(indent=2) }}",
    "{{ {'b': 1, 'a': {'z': 0, 'y': 1}}|tojson(indent=4, sort_keys=true) }}",
    "{{ {'b': 1, 'a': [1, 2]}|tojson(separators=(',', ':')) }} {{ 'Ünï 🙂'|tojson(ensure_ascii=true) }}",
    "{{ messages|tojson }} {{ messages[0].role|tojson }} {{ [] | tojson(indent=2) }} {{ dict(a=1, b=none)|tojson }}",
    "{{ nope|tojson }}",
    # Python string, dict and list methods
    "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nhi'.lstrip('\\n') }}|{{ 'hi  '.rstrip() }}|",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a</think>b'.split('</think>')[-1] }}",
    "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('lo', 'x')) }} {{ 'Hello'.endswith('x') }}",
    "{{ 'hello world'.title() }} {{ 'MiXed'.upper() }} {{ 'MiXed'.lower() }} {{ 'a-b-c'.replace('-', '+') }}",
    "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}",
    "{{ messages[0].get('role') }} {{ messages[0].get('nope', 'dflt') }} {{ messages[0].get('nope') }}",
    "{% for k, v in messages[0].items() %}{{ k }}:{{ v }} {% endfor %}{{ messages[0].keys()|list }}",
    # loops, namespaces, slicing, tests and filters
    "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
    "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content|length %}{% endfor %}{{ ns.n }}",
    "{{ messages[1:]|length }} {{ messages[-1].content }} {{ (messages|map(attribute='role')|list)[::-1] }} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }}",
    "{% for m in messages %}{% if m.role == 'assistant' %}{% continue %}{% endif %}{{ m.content }};{% endfor %}"
    "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}",
    "{{ 'a' + 'b' ~ 1 }} {{ 'x' in messages[0] }} {{ 'role' in messages[0] }} {{ 'Hi' in messages[0].content }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} "
    "{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|join(', ') }}",
    "{{ messages[0].content is string }} {{ messages is iterable }} {{ messages[0] is mapping }} {{ 3 is number }}",
    "{{ [3, 1, 2]|sort|list }} {{ [1, 2, 3]|sum }} {{ [1, 2]|first }}{{ [1, 2]|last }} {{ '  x  '|trim }}|{{ 'abc'|length }}",
    "{{ '%s-%s'|format('a', 3) }} {{ 'hello world'|capitalize }} {{ 'hello world'|title }} {{ range(3)|list }}",
    # whitespace control: trim_blocks and lstrip_blocks are on
    "{% for m in messages %}\n    {{ m.role }}\n    {% if loop.last %}\n  last\n    {% endif %}\n{% endfor %}\nend\n",
    "a  {%- if true %}  b  {% endif -%}  c {#- comment #} d\n  {# c2 #}\ne",
    # Hugging Face's {% generation %} tag renders its body unchanged
    "a {%- generation %} {{ messages[1].content }} {%- endgeneration %}\n b",
    # the template's globals
    "{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools }}{{ documents }}",
    "{{ strftime_now('%Y-%m-%d %H:%M') }} {{ date_string }} {{ strftime_now is defined }}",
    "ok{{ raise_exception('custom ' ~ messages|length) }}",
]


def compat():
    messages = [{"role": r, "content": c} for r, c in CHATS["multi_turn"]]
    for snippet in SNIPPETS:
        try:
            rendered, _ = ctu.render_jinja_template(
                conversations=[messages],
                chat_template=snippet,
                add_generation_prompt=True,
                bos_token="<s>",
                eos_token="</s>",
                date_string=NOW.strftime("%d %b %Y"),
            )
            expected = "Render(%s)" % rust_str(rendered[0])
        except jinja2.exceptions.TemplateError as e:
            kind = "Raised" if type(e) is jinja2.exceptions.TemplateError else "Fails"
            expected = "%s(%s)" % (kind, rust_str("%s: %s" % (type(e).__name__, e) if kind == "Fails" else str(e)))
        except Exception as e:
            expected = "Fails(%s)" % rust_str("%s: %s" % (type(e).__name__, e))
        print("    (%s, %s)," % (rust_str(snippet), expected))


def templates():
    for file, bos, eos in TEMPLATES:
        with open(os.path.join(HERE, file), encoding="utf-8") as f:
            template = f.read()
        for chat, agp in CASES:
            messages = [{"role": r, "content": c} for r, c in CHATS[chat]]
            try:
                rendered, _ = ctu.render_jinja_template(
                    conversations=[messages],
                    chat_template=template,
                    add_generation_prompt=agp,
                    bos_token=bos,
                    eos_token=eos,
                    date_string=NOW.strftime("%d %b %Y"),
                )
                expected = "Ok(%s)" % rust_str(rendered[0])
            except Exception as e:  # raise_exception() surfaces as jinja2 TemplateError
                expected = "Err(%s)" % rust_str(str(e))
            print('    ("%s", "%s", %s, %s),' % (file, chat, "true" if agp else "false", expected))


if __name__ == "__main__":
    {"templates": templates, "compat": compat}[sys.argv[1]]()
