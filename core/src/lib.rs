//! joule-core: an on-device LLM engine.
//!
//! GGUF loading over mmap, quantized tensor formats with scalar reference kernels and
//! SIMD paths chosen at run time, a llama-family forward pass, tokenizer and chat
//! templates from GGUF metadata, sampling, streaming chat sessions with cancel, and
//! energy metering. The library never prints and never exits the process.

pub mod chat;
pub mod energy;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod gguf;
pub mod kernels;
mod mmap;
pub mod model;
pub mod quant;
pub mod requantize;
pub mod sampling;
pub mod threads;
pub mod tokenizer;

pub use engine::{EngineOptions, Precision};
pub use error::{Error, Result};
