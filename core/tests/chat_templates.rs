//! Real chat templates of popular models against Hugging Face's own renderer.
//!
//! The templates in `chat_data/` are the published `chat_template` texts of Llama 3.1 8B,
//! Llama 3.2 3B, Qwen2.5 7B, Qwen3 0.6B, Gemma 3, Phi-3.5 mini, Mistral Nemo 2407 (as
//! collected verbatim in llama.cpp's `models/templates/`), Mistral 7B v0.2 and DeepSeek
//! Coder 33B (from llama.cpp's `tests/test-chat-template.cpp`); DeepSeek Coder's renders
//! differ if trim_blocks/lstrip_blocks are off, so it pins Hugging Face's settings.
//!
//! Expected outputs were printed by `python3 core/tests/chat_data/render_with_transformers.py
//! templates`, which calls transformers' `render_jinja_template` (the code behind
//! `apply_chat_template`; transformers 5.24.0, Jinja2 3.1.6) with the clock pinned to
//! 2025-03-09 08:30 and `date_string` passed as joule passes it. `Err` rows are
//! `raise_exception` messages.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use joule_core::chat::{ChatMessage, ChatTemplate, TemplateError, TemplateTokens};

/// 2025-03-09 08:30:00 UTC.
fn pinned_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_741_509_000)
}

/// The conversations the Python script renders, by name.
fn chat(name: &str) -> Vec<ChatMessage> {
    match name {
        "single" => vec![ChatMessage::user("What is the capital of France?")],
        "system" => vec![
            ChatMessage::system("You are a concise assistant."),
            ChatMessage::user("List three primary colors."),
        ],
        "multi_turn" => vec![
            ChatMessage::user("Hi!"),
            ChatMessage::assistant("Hello! How can I help you today?"),
            ChatMessage::user("Tell me a fun fact about octopuses."),
        ],
        "whitespace_unicode" => vec![
            ChatMessage::system("  Réponds en français. 🙂  \n"),
            ChatMessage::user("  Quelle heure est-il ?\n\n"),
            ChatMessage::assistant(" Il est midi. "),
            ChatMessage::user("Merci « beaucoup » {{ not_a_tag }}"),
        ],
        "thinking" => vec![
            ChatMessage::user("What is 2+2?"),
            ChatMessage::assistant("<think>\nSimple arithmetic.\n</think>\n\n4"),
            ChatMessage::user("And 3+3?"),
        ],
        "not_alternating" => vec![ChatMessage::user("First."), ChatMessage::user("Second.")],
        other => panic!("unknown chat {other}"),
    }
}

/// The BOS and EOS texts of each template's model, as in the Python script.
fn tokens(file: &str) -> TemplateTokens {
    let (bos, eos) = match file {
        f if f.starts_with("meta-llama") => ("<|begin_of_text|>", "<|eot_id|>"),
        f if f.starts_with("Qwen") => ("", "<|im_end|>"),
        f if f.starts_with("google-gemma") => ("<bos>", "<eos>"),
        f if f.starts_with("microsoft-Phi") => ("<s>", "<|endoftext|>"),
        f if f.starts_with("mistralai") => ("<s>", "</s>"),
        f if f.starts_with("deepseek-ai") => ("<｜begin▁of▁sentence｜>", "<|EOT|>"),
        other => panic!("no tokens for {other}"),
    };
    TemplateTokens::new(bos, eos)
}

fn load(file: &str) -> ChatTemplate {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chat_data").join(file);
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ChatTemplate::new(&source, tokens(file))
        .unwrap_or_else(|e| panic!("{file} does not compile: {e}"))
}

/// (template file, chat, add_generation_prompt, expected render or raise_exception message)
#[rustfmt::skip]
const ROWS: &[(&str, &str, bool, Result<&str, &str>)] = &[
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "single", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "system", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nList three primary colors.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "multi_turn", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a fun fact about octopuses.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "whitespace_unicode", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nRéponds en français. 🙂<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQuelle heure est-il ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIl est midi.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMerci « beaucoup » {{ not_a_tag }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "thinking", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nSimple arithmetic.\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "not_alternating", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nFirst.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSecond.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "multi_turn", false, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a fun fact about octopuses.<|eot_id|>")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "system", false, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nList three primary colors.<|eot_id|>")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "single", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "system", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nList three primary colors.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "multi_turn", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a fun fact about octopuses.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "whitespace_unicode", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nRéponds en français. 🙂<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQuelle heure est-il ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIl est midi.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMerci « beaucoup » {{ not_a_tag }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "thinking", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nSimple arithmetic.\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "not_alternating", true, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nFirst.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSecond.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "multi_turn", false, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a fun fact about octopuses.<|eot_id|>")),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "system", false, Ok("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nList three primary colors.<|eot_id|>")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "single", true, Ok("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "system", true, Ok("<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nList three primary colors.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "multi_turn", true, Ok("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello! How can I help you today?<|im_end|>\n<|im_start|>user\nTell me a fun fact about octopuses.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "whitespace_unicode", true, Ok("<|im_start|>system\n  Réponds en français. 🙂  \n<|im_end|>\n<|im_start|>user\n  Quelle heure est-il ?\n\n<|im_end|>\n<|im_start|>assistant\n Il est midi. <|im_end|>\n<|im_start|>user\nMerci « beaucoup » {{ not_a_tag }}<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "thinking", true, Ok("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nSimple arithmetic.\n</think>\n\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "not_alternating", true, Ok("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nFirst.<|im_end|>\n<|im_start|>user\nSecond.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "multi_turn", false, Ok("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello! How can I help you today?<|im_end|>\n<|im_start|>user\nTell me a fun fact about octopuses.<|im_end|>\n")),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "system", false, Ok("<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nList three primary colors.<|im_end|>\n")),
    ("Qwen-Qwen3-0.6B.jinja", "single", true, Ok("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "system", true, Ok("<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nList three primary colors.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "multi_turn", true, Ok("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello! How can I help you today?<|im_end|>\n<|im_start|>user\nTell me a fun fact about octopuses.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "whitespace_unicode", true, Ok("<|im_start|>system\n  Réponds en français. 🙂  \n<|im_end|>\n<|im_start|>user\n  Quelle heure est-il ?\n\n<|im_end|>\n<|im_start|>assistant\n Il est midi. <|im_end|>\n<|im_start|>user\nMerci « beaucoup » {{ not_a_tag }}<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "thinking", true, Ok("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "not_alternating", true, Ok("<|im_start|>user\nFirst.<|im_end|>\n<|im_start|>user\nSecond.<|im_end|>\n<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", "multi_turn", false, Ok("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello! How can I help you today?<|im_end|>\n<|im_start|>user\nTell me a fun fact about octopuses.<|im_end|>\n")),
    ("Qwen-Qwen3-0.6B.jinja", "system", false, Ok("<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nList three primary colors.<|im_end|>\n")),
    ("google-gemma-3-it.jinja", "single", true, Ok("<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n")),
    ("google-gemma-3-it.jinja", "system", true, Ok("<bos><start_of_turn>user\nYou are a concise assistant.\n\nList three primary colors.<end_of_turn>\n<start_of_turn>model\n")),
    ("google-gemma-3-it.jinja", "multi_turn", true, Ok("<bos><start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello! How can I help you today?<end_of_turn>\n<start_of_turn>user\nTell me a fun fact about octopuses.<end_of_turn>\n<start_of_turn>model\n")),
    ("google-gemma-3-it.jinja", "whitespace_unicode", true, Ok("<bos><start_of_turn>user\n  Réponds en français. 🙂  \n\n\nQuelle heure est-il ?<end_of_turn>\n<start_of_turn>model\nIl est midi.<end_of_turn>\n<start_of_turn>user\nMerci « beaucoup » {{ not_a_tag }}<end_of_turn>\n<start_of_turn>model\n")),
    ("google-gemma-3-it.jinja", "thinking", true, Ok("<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n<think>\nSimple arithmetic.\n</think>\n\n4<end_of_turn>\n<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n")),
    ("google-gemma-3-it.jinja", "not_alternating", true, Err("Conversation roles must alternate user/assistant/user/assistant/...")),
    ("google-gemma-3-it.jinja", "multi_turn", false, Ok("<bos><start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello! How can I help you today?<end_of_turn>\n<start_of_turn>user\nTell me a fun fact about octopuses.<end_of_turn>\n")),
    ("google-gemma-3-it.jinja", "system", false, Ok("<bos><start_of_turn>user\nYou are a concise assistant.\n\nList three primary colors.<end_of_turn>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "single", true, Ok("<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "system", true, Ok("<|system|>\nYou are a concise assistant.<|end|>\n<|user|>\nList three primary colors.<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "multi_turn", true, Ok("<|user|>\nHi!<|end|>\n<|assistant|>\nHello! How can I help you today?<|end|>\n<|user|>\nTell me a fun fact about octopuses.<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "whitespace_unicode", true, Ok("<|system|>\n  Réponds en français. 🙂  \n<|end|>\n<|user|>\n  Quelle heure est-il ?\n\n<|end|>\n<|assistant|>\n Il est midi. <|end|>\n<|user|>\nMerci « beaucoup » {{ not_a_tag }}<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "thinking", true, Ok("<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n<think>\nSimple arithmetic.\n</think>\n\n4<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "not_alternating", true, Ok("<|user|>\nFirst.<|end|>\n<|user|>\nSecond.<|end|>\n<|assistant|>\n")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "multi_turn", false, Ok("<|user|>\nHi!<|end|>\n<|assistant|>\nHello! How can I help you today?<|end|>\n<|user|>\nTell me a fun fact about octopuses.<|end|>\n<|endoftext|>")),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "system", false, Ok("<|system|>\nYou are a concise assistant.<|end|>\n<|user|>\nList three primary colors.<|end|>\n<|endoftext|>")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "single", true, Ok("<s>[INST] What is the capital of France? [/INST]")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "system", true, Err("Conversation roles must alternate user/assistant/user/assistant/...")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "multi_turn", true, Ok("<s>[INST] Hi! [/INST]Hello! How can I help you today?</s>[INST] Tell me a fun fact about octopuses. [/INST]")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "whitespace_unicode", true, Err("Conversation roles must alternate user/assistant/user/assistant/...")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "thinking", true, Ok("<s>[INST] What is 2+2? [/INST]<think>\nSimple arithmetic.\n</think>\n\n4</s>[INST] And 3+3? [/INST]")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "not_alternating", true, Err("Conversation roles must alternate user/assistant/user/assistant/...")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "multi_turn", false, Ok("<s>[INST] Hi! [/INST]Hello! How can I help you today?</s>[INST] Tell me a fun fact about octopuses. [/INST]")),
    ("mistralai-Mistral-7B-Instruct-v0.2.jinja", "system", false, Err("Conversation roles must alternate user/assistant/user/assistant/...")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "single", true, Ok("<s>[INST]What is the capital of France?[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "system", true, Ok("<s>[INST]You are a concise assistant.\n\nList three primary colors.[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "multi_turn", true, Ok("<s>[INST]Hi![/INST]Hello! How can I help you today?</s>[INST]Tell me a fun fact about octopuses.[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "whitespace_unicode", true, Ok("<s>[INST]  Quelle heure est-il ?\n\n[/INST] Il est midi. </s>[INST]  Réponds en français. 🙂  \n\n\nMerci « beaucoup » {{ not_a_tag }}[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "thinking", true, Ok("<s>[INST]What is 2+2?[/INST]<think>\nSimple arithmetic.\n</think>\n\n4</s>[INST]And 3+3?[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "not_alternating", true, Err("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "multi_turn", false, Ok("<s>[INST]Hi![/INST]Hello! How can I help you today?</s>[INST]Tell me a fun fact about octopuses.[/INST]")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "system", false, Ok("<s>[INST]You are a concise assistant.\n\nList three primary colors.[/INST]")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "single", true, Ok("<｜begin▁of▁sentence｜>You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\n### Instruction:\nWhat is the capital of France?\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "system", true, Ok("<｜begin▁of▁sentence｜>You are a concise assistant.### Instruction:\nList three primary colors.\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "multi_turn", true, Ok("<｜begin▁of▁sentence｜>You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\n### Instruction:\nHi!\n### Response:\nHello! How can I help you today?\n<|EOT|>\n### Instruction:\nTell me a fun fact about octopuses.\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "whitespace_unicode", true, Ok("<｜begin▁of▁sentence｜>  Réponds en français. 🙂  \n### Instruction:\n  Quelle heure est-il ?\n\n\n### Response:\n Il est midi. \n<|EOT|>\n### Instruction:\nMerci « beaucoup » {{ not_a_tag }}\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "thinking", true, Ok("<｜begin▁of▁sentence｜>You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\n### Instruction:\nWhat is 2+2?\n### Response:\n<think>\nSimple arithmetic.\n</think>\n\n4\n<|EOT|>\n### Instruction:\nAnd 3+3?\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "not_alternating", true, Ok("<｜begin▁of▁sentence｜>You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\n### Instruction:\nFirst.\n### Instruction:\nSecond.\n### Response:\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "multi_turn", false, Ok("<｜begin▁of▁sentence｜>You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\n### Instruction:\nHi!\n### Response:\nHello! How can I help you today?\n<|EOT|>\n### Instruction:\nTell me a fun fact about octopuses.\n")),
    ("deepseek-ai-deepseek-coder-33b-instruct.jinja", "system", false, Ok("<｜begin▁of▁sentence｜>You are a concise assistant.### Instruction:\nList three primary colors.\n")),
];

#[test]
fn popular_templates_render_as_transformers_does() {
    let mut failures = Vec::new();
    for (file, chat_name, add_generation_prompt, expected) in ROWS {
        let template = load(file);
        let got = template.render_at(&chat(chat_name), *add_generation_prompt, pinned_now());
        let ok = match (expected, &got) {
            (Ok(text), Ok(rendered)) => rendered == text,
            (Err(text), Err(TemplateError::Raised { message, .. })) => message == text,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{file} / {chat_name} / add_generation_prompt={add_generation_prompt}\n  \
                 expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} renders differ:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

#[test]
fn role_alternation_check_is_a_clear_error() {
    let template = load("google-gemma-3-it.jinja");
    let err = template.render_at(&chat("not_alternating"), true, pinned_now()).unwrap_err();
    let TemplateError::Raised { message, line } = &err else {
        panic!("expected Raised, got {err:?}")
    };
    assert_eq!(message, "Conversation roles must alternate user/assistant/user/assistant/...");
    assert_eq!(*line, Some(15), "line of the raise_exception call in the Gemma 3 template");
    assert_eq!(
        err.to_string(),
        "the template rejected the conversation at line 15: \
         Conversation roles must alternate user/assistant/user/assistant/..."
    );
    let crate_error: joule_core::Error = err.into();
    assert!(
        crate_error
            .to_string()
            .starts_with("chat template: the template rejected the conversation")
    );
}

#[test]
fn llama_3_prints_the_render_date() {
    let template = load("meta-llama-Llama-3.2-3B-Instruct.jinja");
    // 2000-02-29 12:00 UTC
    let leap_day = UNIX_EPOCH + Duration::from_secs(951_825_600);
    let prompt = template.render_at(&chat("single"), true, leap_day).unwrap();
    assert!(prompt.contains("Today Date: 29 Feb 2000\n"), "{prompt}");
}
