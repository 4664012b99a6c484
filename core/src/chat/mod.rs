//! Chat templates: turning a conversation into the prompt text a model was trained on.
//!
//! A GGUF model carries its Hugging Face chat template (Jinja2) under
//! `tokenizer.chat_template`. [`ChatTemplate`] compiles it once with minijinja, set up to
//! behave like the Jinja2 environment of Hugging Face's `apply_chat_template`, so the
//! rendered prompt matches Python byte for byte. Models without a template get ChatML.
//!
//! ```
//! use joule_core::chat::{ChatMessage, ChatTemplate};
//!
//! let template = ChatTemplate::chatml();
//! let prompt = template.render(&[ChatMessage::user("Hi!")], true).unwrap();
//! assert_eq!(prompt, "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
//! ```

mod error;
mod pyfmt;
mod strftime;
mod template;

pub use error::TemplateError;
pub use template::{
    CHAT_TEMPLATE_KEY, CHATML_TEMPLATE, ChatTemplate, TEMPLATE_FUEL, TEMPLATE_RECURSION_LIMIT,
};

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// "system", "user", "assistant" (templates may accept others, such as "tool").
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// The special-token texts templates print as `bos_token` and `eos_token`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateTokens {
    pub bos_token: String,
    pub eos_token: String,
}

impl TemplateTokens {
    pub fn new(bos_token: impl Into<String>, eos_token: impl Into<String>) -> Self {
        Self { bos_token: bos_token.into(), eos_token: eos_token.into() }
    }
}
