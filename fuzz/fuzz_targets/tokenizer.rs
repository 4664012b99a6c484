//! The tokenizer on arbitrary text and arbitrary token ids, over small vocabularies built
//! here (no model file needed): byte-level BPE (`gpt2`) under every distinct
//! pre-tokenizer Joule knows, and SentencePiece (`llama`) with and without the space
//! prefix. Control tokens and a user-defined token exercise special-token parsing.
//!
//! Input: byte 0 picks the vocabulary (low 5 bits), special-token parsing (bit 5) and
//! rendering (bit 6); the rest is the text, and also read as u16 token ids.
#![no_main]

use std::sync::OnceLock;

use joule_core::gguf::{Array, Metadata, Value};
use joule_core::model::synthetic::byte_level_chars;
use joule_core::tokenizer::{StreamDecoder, Tokenizer};
use libfuzzer_sys::fuzz_target;

/// One name per distinct pattern set in `tokenizer::pretok` (plus an unknown name).
const PRE_TOKENIZERS: &[&str] = &[
    "default",
    "llama-bpe",
    "dbrx",
    "glm4",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "falcon",
    "gpt-2",
    "trillion",
    "starcoder",
    "smollm",
    "qwen2",
    "stablelm2",
    "qwen35",
    "poro-chat",
    "bloom",
    "viking",
    "tekken",
    "gpt-4o",
    "chameleon",
    "seed-coder",
    "bailingmoe",
    "no-such-pre",
];

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

fn set_vocab(md: &mut Metadata, tokens: Vec<String>, types: Vec<i32>) {
    md.insert("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
}

fn bpe_metadata(pre: &str) -> Metadata {
    let chars = byte_level_chars();
    let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    let mut types = vec![NORMAL; tokens.len()];
    for (text, ty) in [
        ("<|endoftext|>", CONTROL),
        ("<|im_start|>", CONTROL),
        ("<|im_end|>", CONTROL),
        ("<think>", USER_DEFINED),
    ] {
        tokens.push(text.into());
        types.push(ty);
    }
    let mut merges = Vec::new();
    let letters: Vec<char> = "etaoin shr".chars().collect();
    for &x in &letters {
        for &y in &letters {
            let (cx, cy) = (chars[x as usize], chars[y as usize]);
            tokens.push(format!("{cx}{cy}"));
            types.push(NORMAL);
            merges.push(format!("{cx} {cy}"));
        }
    }
    let (t, h, e, space) =
        (chars[b't' as usize], chars[b'h' as usize], chars[b'e' as usize], chars[b' ' as usize]);
    for (a, b) in [(format!("{t}{h}"), format!("{e}")), (format!("{space}"), format!("{t}{h}{e}"))]
    {
        tokens.push(format!("{a}{b}"));
        types.push(NORMAL);
        merges.push(format!("{a} {b}"));
    }
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", Value::String("gpt2".into()));
    md.insert("tokenizer.ggml.pre", Value::String(pre.into()));
    set_vocab(&mut md, tokens, types);
    md.insert("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(256));
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(258));
    md
}

fn spm_metadata(add_space_prefix: bool) -> Metadata {
    let mut tokens: Vec<String> = Vec::new();
    let mut types = Vec::new();
    let mut scores = Vec::new();
    let mut push = |text: String, ty: i32, score: f32| {
        tokens.push(text);
        types.push(ty);
        scores.push(score);
    };
    push("<unk>".into(), UNKNOWN, 0.0);
    push("<s>".into(), CONTROL, 0.0);
    push("</s>".into(), CONTROL, 0.0);
    push("<start_of_turn>".into(), CONTROL, 0.0);
    push("<end_of_turn>".into(), CONTROL, 0.0);
    push("<mask>".into(), USER_DEFINED, 0.0);
    for b in 0..=255u8 {
        push(format!("<0x{b:02X}>"), BYTE, 0.0);
    }
    for c in "abcdefghijklmnopqrstuvwxyz.,!?'\u{2581}é中".chars() {
        push(c.to_string(), NORMAL, -10.0);
    }
    let pieces = [
        "\u{2581}t",
        "he",
        "\u{2581}the",
        "\u{2581}a",
        "in",
        "\u{2581}in",
        "er",
        "ll",
        "\u{2581}h",
        "\u{2581}hello",
        "lo",
        "\u{2581}\u{2581}",
        "\u{2581}\u{2581}\u{2581}\u{2581}",
        "ing",
        "\u{2581}wor",
        "ld",
        "\u{2581}world",
    ];
    for (i, p) in pieces.iter().enumerate() {
        push((*p).into(), NORMAL, -1.0 - i as f32 * 0.25);
    }
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", Value::String("llama".into()));
    set_vocab(&mut md, tokens, types);
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    md.insert("tokenizer.ggml.add_space_prefix", Value::Bool(add_space_prefix));
    md
}

fn tokenizers() -> &'static [Tokenizer] {
    static ALL: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<Tokenizer> = PRE_TOKENIZERS
            .iter()
            .map(|pre| Tokenizer::from_gguf(&bpe_metadata(pre)).expect("BPE vocabulary builds"))
            .collect();
        for prefix in [true, false] {
            all.push(Tokenizer::from_gguf(&spm_metadata(prefix)).expect("SPM vocabulary builds"));
        }
        all
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let all = tokenizers();
    let tokenizer = &all[(selector & 0x1F) as usize % all.len()];
    let parse_special = selector & 0x20 != 0;
    let render_special = selector & 0x40 != 0;
    let n_vocab = tokenizer.vocab_size();

    let text = String::from_utf8_lossy(rest);
    if let Ok(ids) = tokenizer.encode(&text, parse_special) {
        assert!(ids.iter().all(|&id| (id as usize) < n_vocab), "id outside the vocabulary");
        std::hint::black_box(tokenizer.decode(&ids, render_special));
    }

    // Arbitrary ids, in and out of the vocabulary, through every decoding path.
    let ids: Vec<u32> =
        rest.chunks_exact(2).map(|p| u32::from(u16::from_le_bytes([p[0], p[1]]))).collect();
    std::hint::black_box(tokenizer.decode(&ids, render_special));
    let mut stream = StreamDecoder::new(tokenizer, render_special);
    for &id in &ids {
        std::hint::black_box(stream.push(id));
        std::hint::black_box(tokenizer.token_to_piece(id, render_special));
        std::hint::black_box((tokenizer.token_text(id), tokenizer.is_eog(id)));
    }
    std::hint::black_box(stream.finish());
});
