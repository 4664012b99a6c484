//! ChatTemplate's construction paths, ChatML fallback and error reporting.

use std::sync::Arc;

use joule_core::chat::{
    CHAT_TEMPLATE_KEY, CHATML_TEMPLATE, ChatMessage, ChatTemplate, TemplateError, TemplateTokens,
};
use joule_core::gguf::{Metadata, Value};

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi!"),
        ChatMessage::assistant("Hello."),
        ChatMessage::user("2+2?"),
    ]
}

// Expected ChatML renders were printed by transformers' render_jinja_template (5.24.0)
// with CHATML_TEMPLATE and this conversation.
const CHATML_WITH_PROMPT: &str = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
     <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n";
const CHATML_WITHOUT_PROMPT: &str = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
     <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n";

#[test]
fn chatml_fallback_renders_exactly() {
    let template = ChatTemplate::chatml();
    assert_eq!(template.render(&conversation(), true).unwrap(), CHATML_WITH_PROMPT);
    assert_eq!(template.render(&conversation(), false).unwrap(), CHATML_WITHOUT_PROMPT);
    assert_eq!(template.render(&[], true).unwrap(), "<|im_start|>assistant\n");
}

#[test]
fn from_metadata_prefers_the_gguf_template() {
    let mut md = Metadata::new();
    md.insert(
        CHAT_TEMPLATE_KEY,
        Value::String("{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}".into()),
    );
    let template = ChatTemplate::from_metadata(&md, "<s>", "</s>").unwrap();
    assert_eq!(template.render(&[ChatMessage::user("x")], true).unwrap(), "<s>[x]</s>");
    assert_eq!(template.tokens(), &TemplateTokens::new("<s>", "</s>"));
}

#[test]
fn from_metadata_falls_back_to_chatml() {
    let template = ChatTemplate::from_metadata(&Metadata::new(), "<bos>", "<eos>").unwrap();
    assert_eq!(template.render(&conversation(), true).unwrap(), CHATML_WITH_PROMPT);
    assert_eq!(template.tokens(), &TemplateTokens::new("<bos>", "<eos>"));
    assert!(CHATML_TEMPLATE.contains("<|im_start|>"));
}

#[test]
fn from_metadata_rejects_a_template_of_the_wrong_type() {
    let mut md = Metadata::new();
    md.insert(CHAT_TEMPLATE_KEY, Value::U32(7));
    let err = ChatTemplate::from_metadata(&md, "", "").unwrap_err();
    assert!(matches!(err, TemplateError::Metadata(_)), "{err:?}");
    assert!(err.to_string().contains(CHAT_TEMPLATE_KEY), "{err}");
}

#[test]
fn syntax_errors_are_typed_with_their_line() {
    // Python's Jinja2 reports these at lines 2 and 4 too.
    let err = ChatTemplate::new(
        "{% for m in messages %}\n{{ m.content }\n{% endfor %}",
        TemplateTokens::default(),
    )
    .unwrap_err();
    let TemplateError::Syntax { line, message } = &err else {
        panic!("expected Syntax, got {err:?}")
    };
    assert_eq!(*line, Some(2), "{message}");

    let err =
        ChatTemplate::new("a\nb\n{% if x %}\n{% endfor %}", TemplateTokens::default()).unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { line: Some(4), .. }), "{err:?}");
    assert!(err.to_string().starts_with("syntax error at line 4: "), "{err}");

    for broken in ["{{", "{% if %}", "{% endif %}", "{{ messages[ }}", "{% generation %}"] {
        let err = ChatTemplate::new(broken, TemplateTokens::default()).unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{broken:?}: {err:?}");
    }
}

#[test]
fn runtime_failures_are_render_errors_not_panics() {
    let cases = [
        ("{{ messages|no_such_filter }}", 1),
        ("{{ messages[0].content.no_such_method() }}", 1),
        ("line1\n{{ 1 / 0 }}", 2),
        ("{{ nope.attr }}", 1),
        ("{% for m in messages %}{{ m.content + 1 }}{% endfor %}", 1),
    ];
    for (source, expected_line) in cases {
        let template = ChatTemplate::new(source, TemplateTokens::default()).unwrap();
        let err = template.render(&conversation(), true).unwrap_err();
        let TemplateError::Render { line, message } = &err else { panic!("{source:?}: {err:?}") };
        assert_eq!(*line, Some(expected_line), "{source:?}: {message}");
        assert!(!message.is_empty());
    }
}

#[test]
fn raise_exception_carries_the_message() {
    let template = ChatTemplate::new(
        "{% if messages[0].role == 'system' %}\n{{ raise_exception('System role not supported') }}{% endif %}",
        TemplateTokens::default(),
    )
    .unwrap();
    let err = template.render(&conversation(), true).unwrap_err();
    assert!(
        matches!(&err, TemplateError::Raised { message, line: Some(2) } if message == "System role not supported"),
        "{err:?}"
    );
    assert_eq!(template.render(&[ChatMessage::user("ok")], true).unwrap(), "");
}

#[test]
fn one_compiled_template_serves_many_threads() {
    let template = Arc::new(ChatTemplate::chatml());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let template = Arc::clone(&template);
            std::thread::spawn(move || {
                template.render(&[ChatMessage::user(format!("n{i}"))], true).unwrap()
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(
            handle.join().unwrap(),
            format!("<|im_start|>user\nn{i}<|im_end|>\n<|im_start|>assistant\n")
        );
    }
}

#[test]
fn chat_message_constructors_and_serde() {
    assert_eq!(ChatMessage::system("s"), ChatMessage::new("system", "s"));
    assert_eq!(ChatMessage::user("u").role, "user");
    assert_eq!(ChatMessage::assistant("a").role, "assistant");
    let json = serde_json::to_string(&ChatMessage::user("hé")).unwrap();
    assert_eq!(json, r#"{"role":"user","content":"hé"}"#);
    let back: ChatMessage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ChatMessage::user("hé"));
}
