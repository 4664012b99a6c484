//! The core's error type. Every variant carries the context a user needs to act on it
//! (file offset, bytes left, key or tensor name); nothing here panics on bad input.

use std::path::PathBuf;

use crate::chat::TemplateError;
use crate::energy::EnergyError;
use crate::gguf::GgufError;
use crate::sampling::SamplingError;
use crate::tokenizer::TokenizerError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error(transparent)]
    Path(#[from] crate::fsutil::PathError),

    #[error(transparent)]
    Write(#[from] crate::gguf::WriteError),

    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),

    #[error(transparent)]
    SessionFile(#[from] SessionFileError),

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
    Template(#[from] TemplateError),

    #[error(
        "prompt needs {needed} tokens but only {available} of the context's {context} are free \
         ({used} already used by this conversation); shorten the prompt, reset the session, \
         or load the model with a larger context"
    )]
    ContextOverflow { needed: usize, available: usize, context: usize, used: usize },

    #[error(
        "a KV cache of {capacity} tokens needs {bytes} bytes ({:.1} GiB), which cannot be \
         allocated ({reason}); use a smaller context",
        *bytes as f64 / (1u64 << 30) as f64
    )]
    KvCacheTooLarge { capacity: usize, bytes: u128, reason: String },

    #[error(
        "tensor '{tensor}' has a NaN or infinite number ({what}); the model file is corrupt: \
         download or convert it again"
    )]
    NonFiniteWeights { tensor: String, what: String },

    #[error(
        "the forward pass produced NaN or infinite values in {stage}; the model's weights are \
         probably corrupt (or overflow in this precision): try --precision exact or another file"
    )]
    NonFiniteActivations { stage: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error(
        "embedding model file {path} not found: the segment pruning strategy needs \
         all-MiniLM-L6-v2; get it with `joule fetch minilm` (into the model directory's \
         minilm/) or name its directory (EngineOptions::embed_dir)"
    )]
    EmbedModelMissing { path: PathBuf },

    #[error("embedding model {path}: {message}")]
    EmbedModel { path: PathBuf, message: String },

    #[error(transparent)]
    Sampling(#[from] SamplingError),

    #[error("cannot start {threads} compute threads: {source}")]
    ThreadStart {
        threads: usize,
        #[source]
        source: std::io::Error,
    },

    /// A state the code rules out was reached (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(String),

    #[error("energy meter: {0}")]
    Energy(#[from] EnergyError),
}

/// Why a session file was refused. Nothing is changed when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum SessionFileError {
    #[error("session file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a Joule session file (bad magic)")]
    BadMagic,
    #[error("session file format version {found} is newer than this build reads ({supported})")]
    FutureVersion { found: u32, supported: u32 },
    #[error("session file is truncated ({what})")]
    Truncated { what: String },
    #[error("session file checksum mismatch: the file is corrupted")]
    Checksum,
    #[error("session file is malformed: {0}")]
    Malformed(String),
    #[error("session file was saved with a different model")]
    ForeignModel,
    #[error("session file does not fit this engine: {0}")]
    Mismatch(String),
    #[error("refusing to overwrite {0}: not a regular file")]
    NotARegularFile(String),
}
