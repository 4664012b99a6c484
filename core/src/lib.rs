//! joule-core: an on-device LLM engine.
//!
//! GGUF loading over mmap, quantized tensor formats with scalar reference kernels and
//! SIMD paths chosen at run time, a llama-family forward pass, tokenizer and chat
//! templates from GGUF metadata, sampling, streaming chat sessions with cancel, and
//! energy metering. The library never prints and never exits the process.
//!
//! The public API is the engine ([`Engine`], [`Session`], options, reports, errors, and
//! the calls on model files in [`engine::files`]), [`energy`], the evaluations in
//! [`eval`] and the output-file rules in [`fsutil`]. The layers below it (formats,
//! kernels, model, tokenizer, templates, sampling, threads) are internal: the crate's own
//! integration tests, benchmarks and fuzz targets reach them with the `internals`
//! feature, front ends never do. See ARCHITECTURE.md.

// Without `internals`, what the internal modules keep `pub` for the tests, benchmarks and
// fuzz targets (scalar oracles, table lookups by name, ...) is unused by the library.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

/// Declares internal modules: `pub` with the `internals` feature, else `pub(crate)`.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $name;
    )*};
}

/// Declares a function `pub` with the `internals` feature, else `pub(crate)`: the engine's
/// accessors to its model, tokenizer, template and threads, for the crate's own tests.
macro_rules! internal_fn {
    ($(#[$meta:meta])* fn $($rest:tt)*) => {
        #[cfg(feature = "internals")]
        $(#[$meta])* pub fn $($rest)*
        #[cfg(not(feature = "internals"))]
        $(#[$meta])* pub(crate) fn $($rest)*
    };
}

pub mod energy;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fsutil;
mod mmap;
pub mod prune;

internal_modules!(chat, gguf, kernels, model, quant, requantize, sampling, threads, tokenizer);

pub use chat::{ChatMessage, TemplateError};
pub use engine::{
    CancelFlag, Engine, EngineOptions, EvictOptions, GenerateOptions, KvType, ModelInfo, Precision,
    Session, StepScore, StopReason, TurnEnergy, TurnReport,
};
pub use error::{Error, Result};
pub use gguf::GgufError;
pub use prune::{Budget, PruneOptions, PruneReport, Strategy};
pub use quant::{GgmlType, QuantError};
pub use requantize::FileType;
pub use sampling::{SamplingError, SamplingParams};
pub use tokenizer::TokenizerError;
