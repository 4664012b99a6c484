//! The chat template renderer on arbitrary template text (as a model file's
//! `tokenizer.chat_template` could hold) and arbitrary messages. It must return a result
//! or an error: never panic, never hang (the core sets fuel and a recursion limit).
//!
//! Input: byte 0 holds add_generation_prompt (bit 0); the rest, split at NUL bytes, is
//! the template, the BOS text, the EOS text, then role and content of each message.
#![no_main]

use std::time::{Duration, SystemTime};

use joule_core::chat::{ChatMessage, ChatTemplate, TemplateTokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut parts = rest.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let source = parts.next().unwrap_or_default();
    let bos = parts.next().unwrap_or_default();
    let eos = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.collect();
    let messages: Vec<ChatMessage> = rest
        .chunks(2)
        .map(|m| ChatMessage::new(m[0].clone(), m.get(1).cloned().unwrap_or_default()))
        .collect();
    let Ok(template) = ChatTemplate::new(&source, TemplateTokens::new(bos, eos)) else { return };
    // A fixed clock (1 Dec 2026) keeps runs reproducible.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200);
    std::hint::black_box(template.render_at(&messages, flags & 1 != 0, now).ok());
});
