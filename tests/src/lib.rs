//! Shared helpers for the end-to-end tests: where the models and golden references
//! are, and how to read them. A missing input fails the test with instructions; no
//! test skips itself.

use std::path::PathBuf;

use serde_json::Value;

/// The default model the reference files were made with.
pub const SMOLLM2: &str = joule_core::engine::DEFAULT_MODEL_FILE;
/// The second architecture's model.
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$JOULE_MODEL_DIR/<name>` or `<repo>/models/<name>`; panics with how to get it.
pub fn model_path(name: &str) -> PathBuf {
    let path = joule_core::engine::model_file(&repo_root(), name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo run -p joule-cli -- fetch` (or `scripts/test`, which fetches every model the tests use)",
        path.display()
    );
    path
}

/// `$JOULE_REFERENCE_DIR/<name>` or `<repo>/../shared/reference/<name>`.
pub fn reference_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("JOULE_REFERENCE_DIR")
        .map_or_else(|| repo_root().join("..").join("shared").join("reference"), PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.exists(),
        "reference file {} is missing (set JOULE_REFERENCE_DIR to the shared/reference folder)",
        path.display()
    );
    path
}

/// Every line of a JSON-lines reference file.
pub fn read_jsonl(name: &str) -> Vec<Value> {
    let path = reference_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// A JSON array of integers as token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// `top10[i]` of a reference as `(id, log_prob)` pairs.
pub fn top(v: &Value) -> Vec<(u32, f32)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| (p[0].as_u64().expect("id") as u32, p[1].as_f64().expect("log-prob") as f32))
        .collect()
}
