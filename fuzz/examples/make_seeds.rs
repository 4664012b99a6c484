//! Writes the checked-in seed corpus under fuzz/seeds/<target>/ (a few KB per target):
//! tiny valid GGUF models of each architecture, texts for the tokenizer, real chat
//! templates with a conversation, power traces in each column layout, and saved sessions
//! in each KV cache type.
//!
//! Run from the repository root: cargo run --manifest-path fuzz/Cargo.toml --example make_seeds

use std::fs;
use std::path::Path;

use joule_core::chat::ChatMessage;
use joule_core::engine::session_file::SessionFile;
use joule_core::model::kv_cache::KvType;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::quant::GgmlType;
use joule_core::sampling::SamplingParams;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/seeds").join(target);
    fs::create_dir_all(&dir).expect("create the seed folder");
    fs::write(dir.join(name), bytes).expect("write a seed");
}

fn gguf_seeds() {
    let cases = [
        ("llama-q4_0", "llama", GgmlType::Q4_0, GgmlType::Q4_0, true),
        ("qwen2-q8_0", "qwen2", GgmlType::Q8_0, GgmlType::Q4_1, false),
        ("gemma3-q5_0", "gemma3", GgmlType::Q5_0, GgmlType::Q8_0, true),
    ];
    for (name, arch, weight_type, embedding_type, tied_output) in cases {
        let spec = SyntheticSpec {
            arch: arch.into(),
            n_layers: 1,
            n_embd: 32,
            n_ff: 32,
            n_head: 2,
            n_head_kv: 1,
            n_vocab: 259,
            n_ctx: 64,
            weight_type,
            embedding_type,
            tied_output,
            seed: 7,
        };
        let writer = synthetic_model(&spec).expect("synthetic model");
        write("gguf", name, &writer.to_bytes());
    }
}

fn tokenizer_seeds() {
    // Byte 0: vocabulary (low 5 bits: 0..=23 BPE pre-tokenizers, 24..=25 SentencePiece),
    // 0x20 parse special tokens, 0x40 render them.
    let texts: &[(u8, &str)] = &[
        (8, "Hello world, the 3 cats' 1234 toys!\n\n  spaced\ttab"),
        (1 | 0x20, "<|im_start|>user\nthe <think>hi</think><|im_end|>"),
        (12 | 0x60, "x = f(a, b)  # 2024-12-01 \u{1F600} caf\u{e9}"),
        (
            15,
            "\u{4e2d}\u{6587}\u{6d4b}\u{8bd5} \u{0627}\u{0644}\u{0639}\u{0631}\u{0628}\u{064a}\u{0629}",
        ),
        (24 | 0x20, "<start_of_turn>user\nhello world<end_of_turn>\n<mask> the"),
        (25 | 0x40, "  leading spaces and \u{e9}\u{4e2d} bytes\u{0}\u{7f}"),
    ];
    for (i, (selector, text)) in texts.iter().enumerate() {
        let mut bytes = vec![*selector];
        bytes.extend_from_slice(text.as_bytes());
        write("tokenizer", &format!("text-{i}"), &bytes);
    }
}

fn chat_seeds() {
    let templates: &[(&str, &str)] = &[
        ("chatml", joule_core::chat::CHATML_TEMPLATE),
        ("gemma3", include_str!("../../core/tests/chat_data/google-gemma-3-it.jinja")),
        (
            "llama32",
            include_str!("../../core/tests/chat_data/meta-llama-Llama-3.2-3B-Instruct.jinja"),
        ),
        ("qwen25", include_str!("../../core/tests/chat_data/Qwen-Qwen2.5-7B-Instruct.jinja")),
        (
            "mistral",
            include_str!("../../core/tests/chat_data/mistralai-Mistral-7B-Instruct-v0.2.jinja"),
        ),
    ];
    let conversation =
        ["system", "Be brief.", "user", "Hi! {{ x }}", "assistant", " Hello.\n", "user", "Why?"];
    for (name, source) in templates {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(source.as_bytes());
        for part in ["<s>", "</s>"].iter().chain(conversation.iter()) {
            bytes.push(0);
            bytes.extend_from_slice(part.as_bytes());
        }
        write("chat_template", name, &bytes);
    }
}

fn trace_seeds() {
    let traces: &[(&str, &str)] = &[
        ("power", "# monitor\ntimestamp,power_w\n100.0,2.5\n100.5,3.0\n101.0,2.0\n"),
        ("milliwatts", "time_s,power_mw,extra\n0,1500,a\n0.25,1700,b\n\n0.5,1600,c\n"),
        ("current-voltage", "\"t\",\"current_ma\",\"voltage_v\"\n1e3,350,5.1\n1000.1,360,5.0\n"),
    ];
    for (name, text) in traces {
        write("energy_trace", name, text.as_bytes());
    }
    // With a query window (NUL, then two little-endian f64 seconds).
    let mut bytes = traces[0].1.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&100.25f64.to_le_bytes());
    bytes.extend_from_slice(&100.75f64.to_le_bytes());
    write("energy_trace", "power-window", &bytes);
}

fn session_seeds() {
    // Saved sessions as `Engine::save_session` writes them: a conversation, sampling
    // parameters and a small cache (2 layers, 3 used slots) in each KV cache type, plus
    // one with an empty cache.
    let messages = vec![
        ChatMessage { role: "user".into(), content: "Hi! caf\u{e9}".into() },
        ChatMessage { role: "assistant".into(), content: "Hello.\n".into() },
    ];
    let cases = [
        ("f32", KvType::F32, 8u32, 3usize),
        ("f16", KvType::F16, 8, 3),
        ("q8_0", KvType::Q8_0, 32, 3),
        ("empty", KvType::F16, 8, 0),
    ];
    for (name, kv_type, kv_dim, used) in cases {
        let n_layers = 2u32;
        let bytes = kv_type.row_bytes(kv_dim as usize) * 2 * used * n_layers as usize;
        let file = SessionFile {
            model_id: [7; 32],
            context: 64,
            kv_type,
            n_layers,
            kv_dim,
            messages: messages.clone(),
            sampling: SamplingParams::default(),
            rng_state: 0x5eed,
            next_position: used as u32 + 1,
            tokens: (0..used as u32).map(|i| 100 + i).collect(),
            positions: (0..used as u32).collect(),
            kv_data: (0..bytes).map(|i| (i % 61) as u8).collect(),
        };
        write("session_file", name, &file.to_bytes());
    }
}

fn main() {
    gguf_seeds();
    tokenizer_seeds();
    chat_seeds();
    trace_seeds();
    session_seeds();
}
