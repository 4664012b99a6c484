//! The compiled chat template and the Jinja2 environment it runs in.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Object, ObjectRepr, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value, context};

use super::error::{RaisedByTemplate, TemplateError};
use super::pyfmt;
use super::strftime::{UtcTime, strftime};
use super::{ChatMessage, TemplateTokens};
use crate::gguf::Metadata;

/// The GGUF metadata key holding the model's Jinja chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// ChatML, the fallback for models whose GGUF has no template (the same text llama.cpp
/// and Hugging Face used as their ChatML default).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' \
     + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}\
     {{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat_template";

/// Instructions one render may run. Templates come from model files: a loop that never
/// ends (or runs for billions of steps) stops with an error instead of hanging the
/// caller. Real templates use a few hundred per message.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// Nesting depth (macro calls, includes) one render may reach, well under minijinja's
/// own ceiling of 500, so that a deliberately deep template cannot exhaust a small
/// thread stack.
pub const TEMPLATE_RECURSION_LIMIT: usize = 64;

/// A model's chat template, compiled once; renders conversations into prompt text exactly
/// as Hugging Face's `apply_chat_template` does with Python's Jinja2.
///
/// The environment mirrors Hugging Face's: `trim_blocks` and `lstrip_blocks` on, a
/// single trailing newline of the template dropped, lenient undefined values, loop
/// controls, `raise_exception`, `strftime_now`, a `tojson` that does not escape HTML and
/// keeps non-ASCII text, and Python's string, list and dict methods (`.strip()`,
/// `.split()`, `.items()`, `.get()` ...). Values print the Python way (`None`, `True`).
pub struct ChatTemplate {
    env: Environment<'static>,
    tokens: TemplateTokens,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

/// Gemma's turn format: a system message joins the first user turn, the assistant's role
/// is `model`.
pub const GEMMA_TEMPLATE: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}\
{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}\
{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}\
{% for message in loop_messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}\
{% else %}{% set role = message['role'] %}{% endif %}\
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}\
{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

impl ChatTemplate {
    /// Compiles `source`; `special` supplies the `bos_token` and `eos_token` variables.
    pub fn new(source: &str, special: TemplateTokens) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION_LIMIT);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(|out, state, value| match pyfmt::python_str(value) {
            Some(text) => out.write_str(&text).map_err(|_| Error::from(ErrorKind::WriteFailure)),
            None => minijinja::escape_formatter(out, state, value),
        });
        env.add_filter("tojson", pyfmt::tojson_filter);
        env.add_filter("string", python_string);
        env.add_function("raise_exception", raise_exception);
        let source = neutralize_generation_tags(source).into_owned();
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        Ok(Self { env, tokens: special })
    }

    /// The ChatML template ([`CHATML_TEMPLATE`]), for models without a template of their own.
    pub fn chatml() -> Self {
        Self::chatml_with(TemplateTokens::default())
    }

    fn chatml_with(tokens: TemplateTokens) -> Self {
        match Self::new(CHATML_TEMPLATE, tokens) {
            Ok(template) => template,
            // The constant is covered by tests; reaching this is a bug in this module.
            Err(e) => panic!("built-in ChatML template does not compile: {e}"),
        }
    }

    /// The model's own template from GGUF metadata (`tokenizer.chat_template`), or ChatML
    /// when the key is absent. `bos` and `eos` are the texts of the model's BOS and EOS
    /// tokens, which many templates print.
    pub fn from_metadata(md: &Metadata, bos: &str, eos: &str) -> Result<Self, TemplateError> {
        let tokens = TemplateTokens::new(bos, eos);
        match md.str_opt(CHAT_TEMPLATE_KEY)? {
            Some(source) => Self::new(source, tokens),
            // Gemma files (base models included) often ship without a template; their
            // turn format is well known.
            None if md.str_opt("general.architecture")?.is_some_and(|a| a.starts_with("gemma")) => {
                Self::new(GEMMA_TEMPLATE, tokens)
            }
            None => Ok(Self::chatml_with(tokens)),
        }
    }

    /// The special-token texts the template sees.
    pub fn tokens(&self) -> &TemplateTokens {
        &self.tokens
    }

    /// Renders `messages` into prompt text; with `add_generation_prompt` the text ends
    /// with the header of the assistant's turn. Dates (`strftime_now`, `date_string`)
    /// come from the current UTC time.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_at(messages, add_generation_prompt, SystemTime::now())
    }

    /// As [`render`](Self::render), with the clock fixed at `now` (UTC).
    ///
    /// Besides what Hugging Face passes (`messages`, `add_generation_prompt`, `tools` and
    /// `documents` as `None`, `bos_token`, `eos_token`), the template sees
    /// `date_string` = `now` as "%d %b %Y", which llama.cpp also sets for Llama 3.x
    /// (whose templates otherwise print a fixed "26 Jul 2024").
    pub fn render_at(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        now: SystemTime,
    ) -> Result<String, TemplateError> {
        let now = UtcTime::from_system_time(now);
        let messages: Vec<Value> =
            messages.iter().map(|m| Value::from_object(MessageValue::new(m))).collect();
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            tools => Value::from(()),
            documents => Value::from(()),
            bos_token => self.tokens.bos_token.as_str(),
            eos_token => self.tokens.eos_token.as_str(),
            date_string => strftime("%d %b %Y", &now),
            strftime_now => Value::from_function(move |format: &str| strftime(format, &now)),
        };
        let template =
            self.env.get_template(TEMPLATE_NAME).map_err(|e| TemplateError::from_minijinja(&e))?;
        template.render(ctx).map_err(|e| TemplateError::from_minijinja(&e))
    }
}

/// A message as the template sees it: a dict with keys in Python's order (`role`, then
/// `content`), so `.items()` and `tojson` list them as Jinja2 would.
#[derive(Debug)]
struct MessageValue {
    role: Value,
    content: Value,
}

impl MessageValue {
    fn new(message: &ChatMessage) -> Self {
        Self {
            role: Value::from(message.role.as_str()),
            content: Value::from(message.content.as_str()),
        }
    }
}

impl Object for MessageValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(self.role.clone()),
            "content" => Some(self.content.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["role", "content"])
    }
}

/// Hugging Face's `raise_exception(message)`: fails the render with the template's message.
fn raise_exception(message: &Value) -> Result<Value, Error> {
    let text = match message.kind() {
        ValueKind::String => message.as_str().unwrap_or_default().to_string(),
        _ => pyfmt::python_str(message).unwrap_or_else(|| message.to_string()),
    };
    Err(Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(RaisedByTemplate(text)))
}

/// Jinja2's `string` filter is Python's `str()`: `None`, `True`, `[1, 'a']`.
fn python_string(value: &Value) -> Value {
    match pyfmt::python_str(value) {
        Some(text) => Value::from(text),
        None if value.kind() == ValueKind::String => value.clone(),
        None => Value::from(value.to_string()),
    }
}

/// Hugging Face's templates may mark the assistant's text with `{% generation %}` ...
/// `{% endgeneration %}`, a tag of its own Jinja2 extension that renders its body unchanged
/// unless assistant masks are requested. minijinja has no custom tags, so the pair becomes
/// `{% if true %}` ... `{% endif %}`, keeping any whitespace-control marks.
fn neutralize_generation_tags(source: &str) -> Cow<'_, str> {
    if !source.contains("generation") {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The closing mark comes after the opening one ("{%}" does not close itself).
        let Some(end) = tag[2..].find("%}").map(|i| i + 2) else {
            out.push_str(tag);
            return Cow::Owned(out);
        };
        let inner = &tag[2..end];
        let (open_mark, body) = split_mark(inner, true);
        let (close_mark, body) = split_mark(body, false);
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(word) => {
                out.push_str("{%");
                out.push_str(open_mark);
                out.push(' ');
                out.push_str(word);
                out.push(' ');
                out.push_str(close_mark);
                out.push_str("%}");
            }
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Splits a leading (or trailing) `-`/`+` whitespace-control mark off a tag's inside.
fn split_mark(inner: &str, leading: bool) -> (&str, &str) {
    let mark = if leading { inner.chars().next() } else { inner.chars().next_back() };
    match mark {
        Some('-' | '+') if leading => (&inner[..1], &inner[1..]),
        Some('-' | '+') => (&inner[inner.len() - 1..], &inner[..inner.len() - 1]),
        _ => ("", inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_plain_blocks() {
        let src = "a{%- generation -%}b{% endgeneration %}c{% if x %}d{% endif %}";
        assert_eq!(
            neutralize_generation_tags(src),
            "a{%- if true -%}b{% endif %}c{% if x %}d{% endif %}"
        );
        assert!(matches!(neutralize_generation_tags("{{ x }}"), Cow::Borrowed(_)));
    }

    #[test]
    fn chat_template_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatTemplate>();
    }
}
