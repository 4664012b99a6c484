//! Where front ends and tests look for model files: one rule for all of them.

use std::path::{Path, PathBuf};

/// The environment variable naming the model directory.
pub const MODEL_DIR_ENV: &str = "JOULE_MODEL_DIR";
/// The model used when none is named (what `joule fetch` downloads by default).
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `$JOULE_MODEL_DIR` when set (and not empty), else `<base>/models`: the CLI passes the
/// current directory, tests the repository root.
pub fn model_dir(base: &Path) -> PathBuf {
    match std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => base.join("models"),
    }
}

/// The file `name` in [`model_dir`]`(base)`.
pub fn model_file(base: &Path, name: &str) -> PathBuf {
    model_dir(base).join(name)
}
