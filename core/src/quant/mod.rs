//! Tensor formats: one file per ggml block format, each with its `#[repr(C)]` block
//! (ggml's field names, size checked at compile time), scalar dequantization,
//! reference quantization and scalar dot products.

mod types;

pub use types::{GgmlType, QK_K};
