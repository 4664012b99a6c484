//! A chat template comes from a model file: one that loops for ever or recurses without
//! end must stop with a clear error, not hang or overflow the stack.

use joule_core::chat::{ChatMessage, ChatTemplate, TEMPLATE_FUEL, TemplateError, TemplateTokens};

fn render(source: &str) -> Result<String, TemplateError> {
    let template = ChatTemplate::new(source, TemplateTokens::new("<s>", "</s>"))?;
    template.render(&[ChatMessage::user("hi")], true)
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    // 10^10 iterations: hours without a limit.
    let source = "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}\
                  {% endfor %}{% endfor %}";
    match render(source) {
        Err(TemplateError::Render { message, .. }) => {
            assert!(message.contains(&TEMPLATE_FUEL.to_string()), "{message}");
            assert!(message.contains("loop"), "{message}");
        }
        other => panic!("expected an out-of-fuel render error, got {other:?}"),
    }
}

#[test]
fn endless_recursion_is_an_error() {
    let source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    match render(source) {
        Err(TemplateError::Render { message, .. }) => {
            assert!(message.contains("recursion"), "{message}")
        }
        other => panic!("expected a recursion error, got {other:?}"),
    }
}

#[test]
fn long_conversation_fits_in_the_budget() {
    // A conversation far longer than any context (2,000 turns) renders within the fuel.
    let template = ChatTemplate::chatml();
    let messages: Vec<ChatMessage> = (0..2000)
        .map(|i| if i % 2 == 0 { ChatMessage::user("hi") } else { ChatMessage::assistant("yo") })
        .collect();
    let prompt = template.render(&messages, true).expect("renders");
    assert_eq!(prompt.matches("<|im_start|>").count(), 2001);
}
