//! Tensor formats: one file per ggml block format, each with its `#[repr(C)]` block
//! (ggml's field names, size checked at compile time), scalar dequantization,
//! reference quantization and scalar dot products.
//!
//! The dot products here (`block_dot` / `superblock_dot` / `vec_dot`) are a readable
//! statement of each format's arithmetic, checked by `core/tests/quant_properties.rs`
//! against dequantize-then-multiply. They are not what the SIMD kernels are tested
//! against: the parity tests compare every SIMD table with the scalar kernel table in
//! `kernels/scalar.rs`, which works on the repacked tiles the engine multiplies.
//!
//! Weight formats and the activation format their fast dot product uses:
//!
//! | weights                          | activations                     |
//! |----------------------------------|---------------------------------|
//! | F32, F16, BF16                   | f32 ([`float`])                 |
//! | Q4_0, Q4_1, Q5_0, Q5_1, Q8_0     | [`BlockQ8x32`] ([`q8_act`])     |
//! | Q4_K, Q5_K, Q6_K                 | [`BlockQ8_K`] ([`q8_k`])        |
//!
//! Multi-byte fields are little-endian, as GGUF stores them; the byte views below
//! assume a little-endian host (every platform Joule targets).

pub mod float;
pub mod format;
mod kquant;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_act;
pub mod q8_k;
pub mod tile;
mod types;

pub use format::{BlockFormat, FORMATS, FormatRow, format};
pub use q4_0::{BlockQ4_0, TileQ4_0};
pub use q4_1::{BlockQ4_1, TileQ4_1};
pub use q4_k::{BlockQ4_K, TileQ4_K};
pub use q5_0::{BlockQ5_0, TileQ5_0};
pub use q5_1::{BlockQ5_1, TileQ5_1};
pub use q5_k::{BlockQ5_K, TileQ5_K};
pub use q6_k::{BlockQ6_K, TileQ6_K};
pub use q8_0::{BlockQ8_0, TileQ8_0};
pub use q8_act::BlockQ8x32;
pub use q8_k::BlockQ8_K;
pub use tile::TileFormat;
pub use types::{GgmlType, QK_K};

/// What went wrong converting a row of tensor data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// Joule has no code for this type and operation (`op`: "dequantize", "write",
    /// "multiply").
    #[error("Joule cannot {op} {ty} tensors")]
    Unsupported { ty: GgmlType, op: &'static str },
    /// The f32 side is not a whole number of blocks.
    #[error("{ty}: {len} elements is not a whole number of {block_size}-element blocks")]
    ElementCount { ty: GgmlType, len: usize, block_size: usize },
    /// The byte side is not a whole number of blocks.
    #[error("{ty}: {len} bytes is not a whole number of {type_size}-byte blocks")]
    ByteCount { ty: GgmlType, len: usize, type_size: usize },
    /// Both sides are whole blocks, but not the same number of them.
    #[error(
        "{ty}: {elements} elements take {expected_bytes} bytes, but the byte buffer has {bytes}"
    )]
    LengthMismatch { ty: GgmlType, elements: usize, expected_bytes: usize, bytes: usize },
    /// The bytes cannot be viewed as blocks in place.
    #[error("{ty}: data at address {addr:#x} is not aligned to {align} bytes")]
    Misaligned { ty: GgmlType, addr: usize, align: usize },
}

/// The activation format a weight type's fast dot product consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationKind {
    /// Plain f32 activations (F32, F16, BF16 weights).
    F32,
    /// [`BlockQ8x32`], 32 activations per block (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
    Q8x32,
    /// [`BlockQ8_K`], 256 activations per block (Q4_K, Q5_K, Q6_K).
    Q8K,
}

/// Which activation format the fast dot product of weights of type `ty` uses.
pub fn activation_kind(ty: GgmlType) -> Result<ActivationKind, QuantError> {
    format(ty).map(|f| f.activation).ok_or(QuantError::Unsupported { ty, op: "multiply" })
}

/// Dequantizes `bytes` (whole blocks of type `ty`, as stored in a GGUF file: one row,
/// or many rows at once) into `out`, which must have room for exactly the elements
/// they hold. `bytes` must be aligned for the block type (at most 4 bytes; GGUF tensor
/// data is 32-byte aligned).
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let f = format(ty).ok_or(QuantError::Unsupported { ty, op: "dequantize" })?;
    check_lengths(ty, out.len(), bytes.len())?;
    f.dequantize(bytes, out)
}

/// Quantizes `x` (a whole number of blocks: one row, or many) to type `ty` with ggml's
/// reference rules, writing the blocks' bytes (little-endian, as GGUF stores them) to
/// `out`, which must be exactly the size of the result and needs no alignment.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    let f = format(ty).ok_or(QuantError::Unsupported { ty, op: "write" })?;
    check_lengths(ty, x.len(), out.len())?;
    f.quantize(x, out);
    Ok(())
}

/// A cheap load-time check: the index of the first element (float types) or block
/// (quantized types) whose value or f16 scale is NaN or infinite, or `None` when all are
/// finite or Joule does not compute with `ty`. A NaN scale makes every weight of its
/// block NaN, which otherwise shows only as an empty answer.
pub fn first_non_finite(ty: GgmlType, bytes: &[u8]) -> Option<usize> {
    format(ty)?.first_non_finite(bytes)
}

/// Checks that `elements` is a whole number of blocks and that `bytes` is exactly their
/// size.
fn check_lengths(ty: GgmlType, elements: usize, bytes: usize) -> Result<(), QuantError> {
    let (block_size, type_size) = ty.block_geometry();
    if !bytes.is_multiple_of(type_size) {
        return Err(QuantError::ByteCount { ty, len: bytes, type_size });
    }
    if !elements.is_multiple_of(block_size) {
        return Err(QuantError::ElementCount { ty, len: elements, block_size });
    }
    let expected_bytes = elements / block_size * type_size;
    if expected_bytes != bytes {
        return Err(QuantError::LengthMismatch { ty, elements, expected_bytes, bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
