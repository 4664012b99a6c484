//! The core's error type. Every variant carries the context a user needs to act on it
//! (file offset, bytes left, key or tensor name); nothing here panics on bad input.

use std::path::PathBuf;

use crate::gguf::GgufError;
use crate::tokenizer::TokenizerError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),

    #[error(transparent)]
    SessionFile(#[from] crate::engine::session_file::SessionFileError),

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("model file {path} not found{hint}")]
    ModelNotFound { path: PathBuf, hint: String },

    #[error("unsupported architecture '{arch}' (supported: {supported})")]
    UnsupportedArchitecture { arch: String, supported: String },

    #[error("invalid model: {0}")]
    InvalidModel(String),

    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),

    #[error("chat template: {0}")]
    Template(String),

    #[error(
        "prompt needs {needed} tokens but only {available} of the context's {context} are free \
         ({used} already used by this conversation); shorten the prompt, reset the session, \
         or load the model with a larger context"
    )]
    ContextOverflow { needed: usize, available: usize, context: usize, used: usize },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("energy meter: {0}")]
    Energy(String),
}
