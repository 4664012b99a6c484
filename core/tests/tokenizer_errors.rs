//! Bad tokenizer metadata gives a typed error that names the problem, never a panic.

use joule_core::gguf::{Array, GgufError, Metadata, Value};
use joule_core::tokenizer::{Tokenizer, TokenizerError};

fn strings(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

/// A valid byte-level BPE vocabulary: "a", "b", "ab" and one merge.
fn bpe() -> Metadata {
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", Value::String("gpt2".into()));
    md.insert("tokenizer.ggml.pre", Value::String("gpt-2".into()));
    md.insert("tokenizer.ggml.tokens", strings(&["<eos>", "a", "b", "ab"]));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![3, 1, 1, 1])));
    md.insert("tokenizer.ggml.merges", strings(&["a b"]));
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(0));
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(0));
    md
}

/// A valid SentencePiece vocabulary without byte tokens.
fn spm() -> Metadata {
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", Value::String("llama".into()));
    md.insert("tokenizer.ggml.tokens", strings(&["<unk>", "<s>", "</s>", "\u{2581}a", "a"]));
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0, 0.0, 0.0, -1.0, -2.0])));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![2, 3, 3, 1, 1])));
    md
}

fn error(md: &Metadata) -> TokenizerError {
    match Tokenizer::from_gguf(md) {
        Ok(t) => panic!("expected an error, built {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_valid_fixtures_build() {
    let tok = Tokenizer::from_gguf(&bpe()).unwrap();
    assert_eq!(tok.encode("ab", false).unwrap(), vec![3]);
    let tok = Tokenizer::from_gguf(&spm()).unwrap();
    assert_eq!(tok.encode("a", false).unwrap(), vec![3]);
}

#[test]
fn missing_keys_are_named() {
    for key in ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
        let mut md = Metadata::new();
        for (k, v) in bpe().iter().filter(|(k, _)| *k != key) {
            md.insert(k, v.clone());
        }
        match error(&md) {
            TokenizerError::Metadata(GgufError::MissingKey { key: k }) => assert_eq!(k, key),
            e => panic!("without {key}: {e}"),
        }
    }
}

#[test]
fn unsupported_model_and_empty_vocabulary() {
    let mut md = bpe();
    md.insert("tokenizer.ggml.model", Value::String("bert".into()));
    let e = error(&md);
    assert!(matches!(&e, TokenizerError::UnsupportedModel { model } if model == "bert"), "{e}");
    assert!(e.to_string().contains("'bert'"));

    let mut md = spm();
    md.insert("tokenizer.ggml.tokens", strings(&[]));
    assert!(matches!(error(&md), TokenizerError::EmptyVocabulary));
}

#[test]
fn array_lengths_must_match_the_tokens() {
    let mut md = bpe();
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1, 1, 1])));
    let e = error(&md);
    let key = "tokenizer.ggml.token_type";
    assert!(
        matches!(e, TokenizerError::LengthMismatch { key: k, found: 3, expected: 4 } if k == key),
        "{e}"
    );
    assert!(e.to_string().contains("tokenizer.ggml.token_type has 3 entries"));

    let mut md = spm();
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; 6])));
    let e = error(&md);
    let key = "tokenizer.ggml.scores";
    assert!(
        matches!(e, TokenizerError::LengthMismatch { key: k, found: 6, .. } if k == key),
        "{e}"
    );

    let mut md = spm();
    md.insert("tokenizer.ggml.scores", strings(&["x"; 5]));
    assert!(matches!(
        error(&md),
        TokenizerError::WrongArrayType { key: "tokenizer.ggml.scores", .. }
    ));

    let mut md = spm();
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::F32(vec![1.0; 5])));
    assert!(matches!(error(&md), TokenizerError::Metadata(GgufError::WrongType { .. })));
}

#[test]
fn special_ids_must_be_in_the_vocabulary() {
    for (key, value) in [
        ("tokenizer.ggml.bos_token_id", Value::U32(4)),
        ("tokenizer.ggml.eos_token_id", Value::U32(1_000_000)),
        ("tokenizer.ggml.eot_token_id", Value::I32(-1)),
        ("tokenizer.ggml.padding_token_id", Value::U64(u64::MAX)),
    ] {
        let mut md = bpe();
        md.insert(key, value);
        let e = error(&md);
        let short = key.trim_start_matches("tokenizer.ggml.");
        match &e {
            TokenizerError::SpecialIdOutOfRange { key: k, n_vocab: 4, .. } => assert_eq!(*k, short),
            TokenizerError::Metadata(GgufError::ValueOutOfRange { key: k, .. }) => {
                assert_eq!(k, key)
            }
            other => panic!("{key}: {other}"),
        }
        assert!(e.to_string().contains(short), "{e}");
    }
}

#[test]
fn adding_a_token_the_vocabulary_lacks_is_refused() {
    // No BOS id in the metadata and the family default (11) is outside 4 tokens.
    let mut md = bpe();
    let mut without_bos = Metadata::new();
    for (k, v) in md.iter().filter(|(k, _)| *k != "tokenizer.ggml.bos_token_id") {
        without_bos.insert(k, v.clone());
    }
    md = without_bos;
    md.insert("tokenizer.ggml.add_bos_token", Value::Bool(true));
    let e = error(&md);
    let bos_key = "tokenizer.ggml.bos_token_id";
    assert!(
        matches!(e, TokenizerError::MissingSpecialToken { id_key, .. } if id_key == bos_key),
        "{e}"
    );
}

#[test]
fn merges_must_name_tokens() {
    for (merge, needle) in [
        ("a c", "'c' is not a token"),
        ("x b", "'x' is not a token"),
        ("b a", "merged text 'ba'"),
        ("ab", "no space"),
    ] {
        let mut md = bpe();
        md.insert("tokenizer.ggml.merges", strings(&["a b", merge]));
        let e = error(&md);
        assert!(matches!(&e, TokenizerError::BadMerge { index: 1, .. }), "{merge}: {e}");
        assert!(e.to_string().contains(needle), "{merge}: {e}");
    }
}

#[test]
fn duplicate_tokens_are_refused() {
    let mut md = spm();
    md.insert("tokenizer.ggml.tokens", strings(&["<unk>", "<s>", "</s>", "a", "a"]));
    let e = error(&md);
    assert!(matches!(&e, TokenizerError::DuplicateToken { first: 3, second: 4, .. }), "{e}");
}

#[test]
fn text_without_byte_fallback_is_an_encode_error() {
    let tok = Tokenizer::from_gguf(&spm()).unwrap();
    match tok.encode("ab", false) {
        Err(TokenizerError::NoByteToken { byte: b'b' }) => {}
        other => panic!("expected a missing-byte error, got {other:?}"),
    }
}

#[test]
fn converts_into_the_crate_error() {
    let e: joule_core::Error = error(&Metadata::new()).into();
    assert!(matches!(e, joule_core::Error::Tokenizer(_)));
    assert!(e.to_string().starts_with("tokenizer: "), "{e}");
}
