//! Files that parse as GGUF but do not make a model: each is refused at load with an
//! error naming the problem (architecture, key, tensor, shape, type), never a panic.

use joule_core::Error;
use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::gguf::{GgufError, GgufFile, GgufWriter, Value};
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::quant::GgmlType;

fn tiny() -> GgufWriter {
    synthetic_model(&SyntheticSpec::tiny()).unwrap()
}

fn load(w: &GgufWriter) -> Result<(), Error> {
    let file = GgufFile::from_bytes(&w.to_bytes())?;
    for precision in [Precision::Exact, Precision::Fast] {
        Engine::from_file(
            file.clone(),
            EngineOptions { precision, threads: Some(1), ..EngineOptions::default() },
        )?;
    }
    Ok(())
}

#[test]
fn the_synthetic_model_itself_loads() {
    load(&tiny()).unwrap();
}

#[test]
fn an_unknown_architecture_is_named() {
    let mut w = tiny();
    w.set("general.architecture", Value::String("mamba".into()));
    let e = load(&w).unwrap_err();
    assert!(matches!(&e, Error::UnsupportedArchitecture { arch, .. } if arch == "mamba"), "{e}");
    assert!(e.to_string().contains("mamba") && e.to_string().contains("llama"));
}

#[test]
fn a_missing_key_is_named() {
    let mut w = tiny();
    let mut md = joule_core::gguf::Metadata::new();
    for (k, v) in w.metadata.iter().filter(|(k, _)| *k != "llama.block_count") {
        md.insert(k, v.clone());
    }
    w.metadata = md;
    let e = load(&w).unwrap_err();
    assert!(
        matches!(&e, Error::Gguf(GgufError::MissingKey { key }) if key == "llama.block_count"),
        "{e}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let mut w = tiny();
    w.tensors.retain(|t| t.name != "blk.1.ffn_up.weight");
    let e = load(&w).unwrap_err();
    assert!(
        matches!(&e, Error::Gguf(GgufError::MissingTensor { name }) if name == "blk.1.ffn_up.weight"),
        "{e}"
    );
}

#[test]
fn a_tensor_shape_that_disagrees_with_the_metadata_is_refused() {
    let mut w = tiny();
    w.set("llama.feed_forward_length", Value::U32(128));
    let e = load(&w).unwrap_err();
    assert!(
        matches!(&e, Error::Gguf(GgufError::BadShape { name, .. }) if name.contains("ffn_gate")),
        "{e}"
    );
}

#[test]
fn a_tensor_type_joule_cannot_compute_with_is_named() {
    let spec =
        SyntheticSpec { n_embd: 256, n_head: 4, n_head_kv: 4, n_ff: 256, ..SyntheticSpec::tiny() };
    let mut w = synthetic_model(&spec).unwrap();
    let t = w.tensors.iter_mut().find(|t| t.name == "blk.0.attn_q.weight").unwrap();
    t.ggml_type = GgmlType::Q2_K;
    t.data = vec![0u8; 84 * 256];
    let e = load(&w).unwrap_err();
    assert!(
        matches!(&e, Error::Gguf(GgufError::UnsupportedTensorType { name, ggml_type: GgmlType::Q2_K }) if name == "blk.0.attn_q.weight"),
        "{e}"
    );
}

#[test]
fn impossible_hyper_parameters_are_refused() {
    for (key, value) in [
        ("llama.attention.head_count", Value::U32(0)),
        ("llama.attention.head_count_kv", Value::U32(3)),
        ("llama.block_count", Value::U32(100_000)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
        ("llama.rope.freq_base", Value::F32(-1.0)),
        ("llama.rope.scaling.type", Value::String("yarn".into())),
        ("llama.embedding_length", Value::String("wide".into())),
    ] {
        let mut w = tiny();
        w.set(key, value.clone());
        let e = load(&w).expect_err(key);
        assert!(matches!(e, Error::InvalidModel(_) | Error::Gguf(_)), "{key}: {e}");
    }
}

#[test]
fn a_broken_vocabulary_is_a_tokenizer_error() {
    let mut w = tiny();
    w.set("tokenizer.ggml.token_type", Value::Array(joule_core::gguf::Array::I32(vec![1; 3])));
    let e = load(&w).unwrap_err();
    assert!(matches!(e, Error::Tokenizer(_)), "{e}");
}

#[test]
fn a_truncated_real_model_is_refused_at_load() {
    let path = joule_tests_model();
    let bytes = std::fs::read(&path).unwrap();
    let dir = std::env::temp_dir().join(format!("joule-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cut in [10, 4096, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = Engine::load(&p, EngineOptions::default())
            .err()
            .expect("a truncated file must not load");
        assert!(
            matches!(
                e,
                Error::Gguf(GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. })
            ),
            "cut {cut}: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let missing = Engine::load(dir.join("nope.gguf"), EngineOptions::default()).err().unwrap();
    assert!(matches!(missing, Error::ModelNotFound { .. }), "{missing}");
}

fn joule_tests_model() -> std::path::PathBuf {
    let p = joule_core::engine::model_file(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        joule_core::engine::DEFAULT_MODEL_FILE,
    );
    assert!(p.exists(), "{} is missing: run `cargo run -p joule-cli -- fetch`", p.display());
    p
}
