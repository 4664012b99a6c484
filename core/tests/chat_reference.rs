//! The default model's own chat template, read from its GGUF, renders every reference chat
//! exactly as Python's Jinja2 did (`prompt` in `smollm2-135m-q4_1.chat.jsonl`).
//!
//! Inputs: the model in `$JOULE_MODEL_DIR` (default `core/../models`) and the golden data in
//! `$JOULE_REFERENCE_DIR` (default `../shared/reference` beside the project root).

use std::path::{Path, PathBuf};

use joule_core::chat::{CHAT_TEMPLATE_KEY, ChatMessage, ChatTemplate, TemplateTokens};
use joule_core::gguf::GgufFile;

const MODEL_FILE: &str = joule_core::engine::DEFAULT_MODEL_FILE;
const REFERENCE_FILE: &str = "smollm2-135m-q4_1.chat.jsonl";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    let path = joule_core::engine::model_file(&manifest_dir().join(".."), MODEL_FILE);
    assert!(
        path.is_file(),
        "{} is missing: download it with `cargo run -p joule -- fetch smollm2-135m` from the project root, \
         or point JOULE_MODEL_DIR at the directory that holds it",
        path.display()
    );
    path
}

fn reference_path() -> PathBuf {
    let dir = std::env::var_os("JOULE_REFERENCE_DIR")
        .map_or_else(|| manifest_dir().join("../../shared/reference"), PathBuf::from);
    let path = dir.join(REFERENCE_FILE);
    assert!(
        path.is_file(),
        "{} is missing: the golden references live in shared/reference beside the project root \
         (see shared/README.md); set JOULE_REFERENCE_DIR to the directory that holds {REFERENCE_FILE}",
        path.display()
    );
    path
}

struct ReferenceChat {
    messages: Vec<ChatMessage>,
    prompt: String,
}

fn read_reference(path: &Path) -> Vec<ReferenceChat> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            ReferenceChat {
                messages: serde_json::from_value(record["messages"].clone()).unwrap(),
                prompt: record["prompt"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The model's template and special-token texts (BOS/EOS ids looked up in its vocabulary).
fn smollm2_template() -> ChatTemplate {
    let gguf = GgufFile::open(model_path()).unwrap();
    let md = &gguf.metadata;
    assert!(md.str_opt(CHAT_TEMPLATE_KEY).unwrap().is_some(), "{MODEL_FILE} has no chat template");
    let vocab = md.string_array("tokenizer.ggml.tokens").unwrap();
    let bos = &vocab[md.int::<usize>("tokenizer.ggml.bos_token_id").unwrap()];
    let eos = &vocab[md.int::<usize>("tokenizer.ggml.eos_token_id").unwrap()];
    let template = ChatTemplate::from_metadata(md, bos, eos).unwrap();
    assert_eq!(template.tokens(), &TemplateTokens::new("<|im_start|>", "<|im_end|>"));
    template
}

#[test]
fn smollm2_template_renders_reference_prompts_exactly() {
    let template = smollm2_template();
    let chats = read_reference(&reference_path());
    assert_eq!(chats.len(), 6, "reference chats");
    for (i, chat) in chats.iter().enumerate() {
        let rendered = template.render(&chat.messages, true).unwrap();
        assert_eq!(rendered, chat.prompt, "chat {i}: {:?}", chat.messages);
    }
}

#[test]
fn smollm2_template_without_generation_prompt_ends_after_last_turn() {
    let template = smollm2_template();
    let messages = [ChatMessage::user("Hi!"), ChatMessage::assistant("Hello.")];
    let rendered = template.render(&messages, false).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    );
}
