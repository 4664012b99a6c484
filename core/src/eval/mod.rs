//! Evaluation of a model's quality and cost: perplexity over a text in llama-perplexity's
//! windows, KL divergence against a reference model streamed window by window, and the
//! Pareto report of speed, energy and fidelity across model variants, pruning's accuracy,
//! and an endless chat with eviction on.

pub mod endless;
pub mod kl;
pub mod pareto;
pub mod ppl;
pub mod prune_eval;
pub mod prune_tasks;
pub mod svg;

use std::path::PathBuf;

pub use endless::{EndlessPlan, EndlessReport, run_endless};
pub use kl::{KlReport, KlStats};
pub use pareto::{Config, ParetoRow, pareto_front};
pub use ppl::{PplOptions, PplReport, PplStats, evaluate, read_text, text_tokens};
pub use prune_eval::{PrunePlan, PruneRow, Setting, evaluate_pruning};
pub use prune_tasks::Task;

/// What an evaluation rejects, with the context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read text file {path}: {source}")]
    TextUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO or a device would be read forever).
    #[error("text: {0}")]
    TextPath(#[from] crate::fsutil::PathError),
    #[error("text file {path} is not UTF-8 (byte {offset})")]
    TextNotUtf8 { path: PathBuf, offset: usize },
    #[error("text file {path} is empty")]
    EmptyText { path: PathBuf },
    #[error(
        "the text gives {tokens} tokens; a context of {ctx} needs at least {needed} \
         (two windows, as llama-perplexity asks); use a longer text or a smaller -c"
    )]
    TextTooShort { tokens: usize, ctx: usize, needed: usize },
    #[error("context {ctx} is too small: a window needs at least 3 tokens to score one")]
    ContextTooSmall { ctx: usize },
    #[error("context {ctx} exceeds the model's training context of {train}")]
    ContextTooLarge { ctx: usize, train: usize },
    #[error("--chunks must be at least 1")]
    NoChunks,
    #[error("the reference {reference} has another vocabulary: {detail}")]
    VocabularyMismatch { reference: String, detail: String },
    #[error("{model} gave a non-finite log-probability at chunk {chunk}, position {pos}")]
    NonFinite { model: String, chunk: usize, pos: usize },
    #[error("no configurations to evaluate")]
    NoConfigurations,
    #[error("energy meter: {0}")]
    Energy(#[from] crate::energy::EnergyError),
    #[error(transparent)]
    Engine(#[from] crate::Error),
}

pub type EvalResult<T> = std::result::Result<T, EvalError>;
