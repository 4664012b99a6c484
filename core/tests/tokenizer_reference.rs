//! The tokenizer against llama.cpp's own output for the two reference models
//! (shared/reference/*.jsonl, described in shared/README.md).
//!
//! Inputs: the reference directory is `$JOULE_REFERENCE_DIR`, else `shared/reference`
//! beside the repository checkout; the models are in `$JOULE_MODEL_DIR`, else the
//! repository's `models/`. A missing file fails the test with the way to get it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use joule_core::gguf::GgufFile;
use joule_core::tokenizer::{StreamDecoder, Tokenizer};
use serde_json::Value;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn reference_dir() -> PathBuf {
    match std::env::var_os("JOULE_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    }
}

fn model_dir() -> PathBuf {
    joule_core::engine::model_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn reference_lines(name: &str) -> Vec<Value> {
    let path = reference_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden reference {} cannot be read ({e}): it ships in shared/reference beside the \
             repository checkout; set JOULE_REFERENCE_DIR to the directory that holds it",
            path.display()
        )
    });
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("reference line is JSON"))
        .collect();
    assert!(!lines.is_empty(), "{} has no cases", path.display());
    lines
}

fn load(name: &str) -> Tokenizer {
    let path = model_dir().join(name);
    assert!(
        path.exists(),
        "model {} is missing: run `joule fetch` to download it (or set JOULE_MODEL_DIR to the \
         directory that holds it)",
        path.display()
    );
    let file = GgufFile::open(&path).expect("model opens");
    let start = Instant::now();
    let tokenizer = Tokenizer::from_gguf(&file.metadata).expect("tokenizer builds");
    eprintln!("Tokenizer::from_gguf({name}): {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    tokenizer
}

fn smollm2() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| load(SMOLLM2))
}

fn gemma3() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| load(GEMMA3))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("token list").iter().map(|t| t.as_u64().expect("token id") as u32).collect()
}

/// Encodes and decodes every `(text, parse_special) -> tokens` case; reports all
/// mismatches at once.
fn check_cases(tok: &Tokenizer, cases: &[(String, bool, Vec<u32>)]) {
    let mut failures = Vec::new();
    for (text, parse_special, expected) in cases {
        let got = tok.encode(text, *parse_special).expect("encodes");
        if &got != expected {
            failures.push(format!(
                "encode({text:?}, parse_special={parse_special})\n   got {got:?}\n  want {expected:?}"
            ));
        }
        let back = tok.decode(expected, *parse_special);
        if &back != text {
            failures
                .push(format!("decode({expected:?}, {parse_special}) = {back:?}, want {text:?}"));
        }
    }
    let (n, total) = (failures.len(), cases.len());
    assert!(failures.is_empty(), "{n} of {total} cases differ:\n{}", failures.join("\n"));
}

fn tokenizer_cases(file: &str) -> Vec<(String, bool, Vec<u32>)> {
    reference_lines(file)
        .iter()
        .map(|c| {
            let text = c["text"].as_str().expect("text").to_string();
            (text, c["parse_special"].as_bool().expect("parse_special"), ids(&c["tokens"]))
        })
        .collect()
}

fn prompt_cases(file: &str) -> Vec<(String, bool, Vec<u32>)> {
    reference_lines(file)
        .iter()
        .map(|c| {
            (c["prompt"].as_str().expect("prompt").to_string(), true, ids(&c["prompt_tokens"]))
        })
        .collect()
}

#[test]
fn smollm2_matches_llama_cpp_tokenizer_cases() {
    check_cases(smollm2(), &tokenizer_cases("smollm2-135m-q4_1.tokenizer.jsonl"));
}

#[test]
fn gemma3_matches_llama_cpp_tokenizer_cases() {
    check_cases(gemma3(), &tokenizer_cases("gemma3-270m-q4_k_m.tokenizer.jsonl"));
}

#[test]
fn smollm2_chat_prompts_match_llama_cpp() {
    check_cases(smollm2(), &prompt_cases("smollm2-135m-q4_1.chat.jsonl"));
}

#[test]
fn gemma3_generate_prompts_match_llama_cpp() {
    check_cases(gemma3(), &prompt_cases("gemma3-270m-q4_k_m.generate.jsonl"));
}

/// Adversarial texts (contractions in both cases, Unicode whitespace and digits, marks,
/// ZWJ emoji, unassigned and private-use code points, literal special-token texts,
/// newline and tab runs), tokenized by llama.cpp's `llama-tokenize --no-bos --no-escape`
/// with and without `--no-parse-special` (llama.cpp 0c1e570, as vendored by
/// llama-cpp-python 0.3.36). Kept beside this test: tests/tokenizer_llamacpp_cases.jsonl.
#[test]
fn adversarial_texts_match_llama_cpp() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tokenizer_llamacpp_cases.jsonl");
    let text = std::fs::read_to_string(&path).expect("the case file ships with the tests");
    let (mut failures, mut total) = (Vec::new(), 0);
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).expect("case is JSON");
        let text = case["text"].as_str().expect("text");
        for (model, tok) in [("smollm2", smollm2()), ("gemma3", gemma3())] {
            for (mode, parse_special) in [("plain", false), ("special", true)] {
                let want = ids(&case[model][mode]);
                let got = tok.encode(text, parse_special).expect("encodes");
                total += 1;
                if got != want {
                    failures
                        .push(format!("{model} {mode} {text:?}\n   got {got:?}\n  want {want:?}"));
                }
            }
        }
    }
    assert!(total >= 1000, "only {total} comparisons");
    assert!(failures.is_empty(), "{} of {total} differ:\n{}", failures.len(), failures.join("\n"));
}

/// llama.cpp stops a greedy continuation at the first end-of-generation token (and
/// keeps it), or after 48 tokens: so every token but a stopping last one is not EOG.
fn check_eog_against_continuations(tok: &Tokenizer, file: &str) {
    let mut stopped = 0;
    for case in reference_lines(file) {
        for source in ["llamacpp", "f32"] {
            let greedy = ids(&case[source]["greedy"]);
            let (last, body) = greedy.split_last().expect("non-empty continuation");
            for &id in body {
                assert!(!tok.is_eog(id), "{file} {source}: token {id} mid-continuation is EOG");
            }
            if greedy.len() < 48 {
                assert!(tok.is_eog(*last), "{file} {source}: stopped on {last}, which is not EOG");
                stopped += 1;
            }
        }
    }
    eprintln!("{file}: {stopped} continuations stopped on an EOG token");
}

#[test]
fn smollm2_special_tokens() {
    let tok = smollm2();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.pre_tokenizer(), Some("smollm"));
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert!(!tok.add_bos() && !tok.add_eos() && !tok.add_space_prefix());
    // eos <|im_end|>, plus <|endoftext|> by its text and <reponame> as a FIM repo marker.
    assert_eq!(tok.eog_ids().collect::<Vec<_>>(), vec![0, 2, 4]);
    assert_eq!(tok.id_of("<|im_start|>"), Some(1));
    assert_eq!(tok.id_of("no such token"), None);
    // The vocabulary lacks the byte characters for 0x04 and 0xF1 (among 21): llama.cpp
    // drops such bytes silently, keeping the rest of the character (llama-tokenize output).
    assert_eq!(tok.encode("x\u{4}y\u{40000}z", false).unwrap(), vec![104, 105, 218, 218, 218, 106]);
    check_eog_against_continuations(tok, "smollm2-135m-q4_1.chat.jsonl");
}

#[test]
fn gemma3_special_tokens() {
    let tok = gemma3();
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!(tok.pre_tokenizer(), None);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(2), Some(1)));
    assert!(tok.add_bos() && !tok.add_eos() && !tok.add_space_prefix());
    // <eos>, <end_of_turn>, and </s> (user-defined in the file, made a control token).
    assert_eq!(tok.eog_ids().collect::<Vec<_>>(), vec![1, 106, 212]);
    assert_eq!(tok.eot_id(), Some(106));
    check_eog_against_continuations(tok, "gemma3-270m-q4_k_m.generate.jsonl");
}

#[test]
fn gemma3_control_and_user_defined_tokens() {
    let tok = gemma3();
    // `</s>` became a control token: plain text unless special tokens are parsed.
    assert_eq!(tok.encode("</s>", true).unwrap(), vec![212]);
    assert_ne!(tok.encode("</s>", false).unwrap(), vec![212]);
    assert_eq!(tok.decode(&[212], false), "");
    // `<b>` is user-defined: matched and rendered either way.
    let b = tok.id_of("<b>").expect("<b> is a token");
    assert_eq!(tok.encode("<b>", false).unwrap(), vec![b]);
    assert_eq!(tok.decode(&[b], false), "<b>");
    // Newlines are user-defined tokens too; the longest run wins.
    let nl3 = tok.id_of("\n\n\n").expect("three newlines");
    assert_eq!(tok.encode("\n\n\n", false).unwrap(), vec![nl3]);
}

/// Streams every reference continuation token by token: the pieces put together equal
/// the whole decode, and no piece is broken UTF-8 (a `String` could not hold it).
fn check_streaming(tok: &Tokenizer, file: &str) {
    for case in reference_lines(file) {
        for source in ["llamacpp", "f32"] {
            let greedy = ids(&case[source]["greedy"]);
            for render_special in [false, true] {
                let mut stream = StreamDecoder::new(tok, render_special);
                let mut text: String = greedy.iter().map(|&id| stream.push(id)).collect();
                text.push_str(&stream.finish());
                assert_eq!(text, tok.decode(&greedy, render_special), "{file} {source}");
            }
        }
    }
}

#[test]
fn streaming_the_reference_continuations_equals_decoding_them() {
    check_streaming(smollm2(), "smollm2-135m-q4_1.chat.jsonl");
    check_streaming(gemma3(), "gemma3-270m-q4_k_m.generate.jsonl");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Printable text of any script, whitespace, and special-token texts of both models.
    fn text() -> impl Strategy<Value = String> {
        let specials = concat!(
            r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|",
            r"<start_of_turn>|<end_of_turn>|</s>|<b>|<bos>",
        );
        let atom = format!(r"\PC|[ \t\n\r]|{specials}");
        proptest::string::string_regex(&format!("({atom}){{0,48}}")).expect("valid pattern")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Encoding then decoding gives the text back, with or without special tokens
        /// (Gemma's vocabulary writes a literal U+2581 and a space the same way).
        #[test]
        fn encode_then_decode_is_identity(text in text(), parse_special in any::<bool>()) {
            let smol = smollm2();
            let back = smol.decode(&smol.encode(&text, parse_special).unwrap(), parse_special);
            prop_assert_eq!(back, text.clone());
            let gemma = gemma3();
            let back = gemma.decode(&gemma.encode(&text, parse_special).unwrap(), parse_special);
            prop_assert_eq!(back, text.replace('\u{2581}', " "));
        }

        /// Any id sequence streams to exactly what decoding it at once gives.
        #[test]
        fn streaming_any_ids_equals_decoding(
            seeds in proptest::collection::vec(any::<u32>(), 0..40),
            render_special in any::<bool>(),
        ) {
            for tok in [smollm2(), gemma3()] {
                // Half the ids from the byte tokens and low ids, where pieces split characters.
                let ids: Vec<u32> = seeds
                    .iter()
                    .map(|&s| if s % 2 == 0 { s % 600 } else { s % tok.vocab_size() as u32 })
                    .collect();
                let mut stream = StreamDecoder::new(tok, render_special);
                let mut text: String = ids.iter().map(|&id| stream.push(id)).collect();
                text.push_str(&stream.finish());
                prop_assert_eq!(text, tok.decode(&ids, render_special));
            }
        }
    }
}
