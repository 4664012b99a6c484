//! The one table of formats Joule computes with. Each format's file implements
//! [`BlockFormat`] (and, for the formats the integer kernels take, [`TileFormat`]); the
//! table [`FORMATS`] holds one row per format, and everything that used to match on the
//! type (dequantize, write, the activation format, the load-time finiteness check) reads
//! its row. Adding a format: its own file, one row here, one row in
//! `kernels::pack::for_each_packed_format!` and one kernel per instruction set.
//!
//! [`TileFormat`]: super::tile::TileFormat

use bytemuck::{Pod, PodCastError};
use half::{bf16, f16};

use super::{
    ActivationKind, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K,
    BlockQ8_0, GgmlType, QuantError,
};

/// One ggml block format (or one float element type): its facts and its scalar
/// conversions.
pub trait BlockFormat: Pod {
    /// The ggml type id this block belongs to.
    const TYPE: GgmlType;
    /// Elements per block.
    const LEN: usize = Self::TYPE.block_size();
    /// The activation format the fast dot product with these weights consumes.
    const ACTIVATION: ActivationKind;
    /// Byte offsets of the block's f16 scales (checked for NaN and infinity at load).
    const F16_SCALES: &'static [usize] = &[];

    /// Exact dequantization of whole blocks (`out.len() == blocks.len() * LEN`).
    fn dequantize(blocks: &[Self], out: &mut [f32]);
    /// ggml's reference quantization (`x.len() == out.len() * LEN`).
    fn quantize(x: &[f32], out: &mut [Self]);
    /// Whether this block (or float value) is finite where it must be.
    fn is_finite(&self) -> bool {
        let bytes = bytemuck::bytes_of(self);
        Self::F16_SCALES
            .iter()
            .all(|&o| f16::from_le_bytes([bytes[o], bytes[o + 1]]).is_finite())
    }
}

/// Dequantizes whole blocks given as bytes; the type is for the error.
type DequantizeBytes = fn(GgmlType, &[u8], &mut [f32]) -> Result<(), QuantError>;

/// Implements [`BlockFormat`] for a format file's block `$block` (type `$ty`, activation
/// format `$act`, f16 scales at byte offsets `$scales`) with that file's `dequantize` and
/// `quantize`.
macro_rules! block_format {
    ($block:ty, $ty:ident, $act:ident, $scales:expr) => {
        impl $crate::quant::format::BlockFormat for $block {
            const TYPE: $crate::quant::GgmlType = $crate::quant::GgmlType::$ty;
            const ACTIVATION: $crate::quant::ActivationKind = $crate::quant::ActivationKind::$act;
            const F16_SCALES: &'static [usize] = &$scales;
            fn dequantize(blocks: &[Self], out: &mut [f32]) {
                dequantize(blocks, out)
            }
            fn quantize(x: &[f32], out: &mut [Self]) {
                quantize(x, out)
            }
        }
    };
}
pub(super) use block_format;

/// A format's row of the table: its type and its conversions on raw bytes.
pub struct FormatRow {
    pub ty: GgmlType,
    pub activation: ActivationKind,
    dequantize: DequantizeBytes,
    quantize: fn(&[f32], &mut [u8]),
    first_non_finite: fn(&[u8]) -> Option<usize>,
}

const fn row<B: BlockFormat>() -> FormatRow {
    FormatRow {
        ty: B::TYPE,
        activation: B::ACTIVATION,
        dequantize: dequantize_bytes::<B>,
        quantize: quantize_bytes::<B>,
        first_non_finite: first_non_finite_in::<B>,
    }
}

/// Every format Joule can load, write and multiply, one row each.
pub static FORMATS: [FormatRow; 11] = [
    row::<f32>(),
    row::<f16>(),
    row::<bf16>(),
    row::<BlockQ4_0>(),
    row::<BlockQ4_1>(),
    row::<BlockQ5_0>(),
    row::<BlockQ5_1>(),
    row::<BlockQ8_0>(),
    row::<BlockQ4_K>(),
    row::<BlockQ5_K>(),
    row::<BlockQ6_K>(),
];

/// The table row of `ty`, if Joule computes with it.
pub fn format(ty: GgmlType) -> Option<&'static FormatRow> {
    FORMATS.iter().find(|f| f.ty == ty)
}

impl FormatRow {
    /// Dequantizes whole blocks given as bytes (lengths already checked).
    pub fn dequantize(&self, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        (self.dequantize)(self.ty, bytes, out)
    }

    /// Quantizes whole blocks into bytes (lengths already checked; no alignment needed).
    pub fn quantize(&self, x: &[f32], out: &mut [u8]) {
        (self.quantize)(x, out)
    }

    /// The first block (or float element) that is not finite where it must be.
    pub fn first_non_finite(&self, bytes: &[u8]) -> Option<usize> {
        (self.first_non_finite)(bytes)
    }
}

/// Views `bytes` as blocks (no copy) and dequantizes them.
fn dequantize_bytes<B: BlockFormat>(
    ty: GgmlType,
    bytes: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let blocks: &[B] = bytemuck::try_cast_slice(bytes).map_err(|e| match e {
        PodCastError::TargetAlignmentGreaterAndInputNotAligned
        | PodCastError::AlignmentMismatch => {
            QuantError::Misaligned { ty, addr: bytes.as_ptr() as usize, align: align_of::<B>() }
        }
        PodCastError::OutputSliceWouldHaveSlop | PodCastError::SizeMismatch => {
            QuantError::ByteCount { ty, len: bytes.len(), type_size: size_of::<B>() }
        }
    })?;
    B::dequantize(blocks, out);
    Ok(())
}

/// Quantizes into a block buffer and copies its bytes out, so the caller's byte buffer
/// needs no alignment.
fn quantize_bytes<B: BlockFormat>(x: &[f32], out: &mut [u8]) {
    let mut blocks = vec![B::zeroed(); out.len() / size_of::<B>()];
    B::quantize(x, &mut blocks);
    out.copy_from_slice(bytemuck::cast_slice(&blocks));
}

/// Reads blocks unaligned (file data need not be aligned for the check).
fn first_non_finite_in<B: BlockFormat>(bytes: &[u8]) -> Option<usize> {
    bytes
        .chunks_exact(size_of::<B>())
        .position(|c| !bytemuck::pod_read_unaligned::<B>(c).is_finite())
}

// The float element types: one element per "block", the value itself is checked.

impl BlockFormat for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const ACTIVATION: ActivationKind = ActivationKind::F32;
    fn dequantize(blocks: &[f32], out: &mut [f32]) {
        out.copy_from_slice(blocks)
    }
    fn quantize(x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x)
    }
    fn is_finite(&self) -> bool {
        f32::is_finite(*self)
    }
}

impl BlockFormat for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const ACTIVATION: ActivationKind = ActivationKind::F32;
    fn dequantize(blocks: &[f16], out: &mut [f32]) {
        super::float::dequantize_f16(blocks, out)
    }
    fn quantize(x: &[f32], out: &mut [f16]) {
        super::float::quantize_f16(x, out)
    }
    fn is_finite(&self) -> bool {
        f16::is_finite(*self)
    }
}

impl BlockFormat for bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const ACTIVATION: ActivationKind = ActivationKind::F32;
    fn dequantize(blocks: &[bf16], out: &mut [f32]) {
        super::float::dequantize_bf16(blocks, out)
    }
    fn quantize(x: &[f32], out: &mut [bf16]) {
        super::float::quantize_bf16(x, out)
    }
    fn is_finite(&self) -> bool {
        bf16::is_finite(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_format_and_each_row_round_trips() {
        for (i, f) in FORMATS.iter().enumerate() {
            assert!(FORMATS[..i].iter().all(|g| g.ty != f.ty), "{} twice", f.ty);
            let (elements, bytes) = f.ty.block_geometry();
            let x: Vec<f32> = (0..elements).map(|i| (i as f32).sin()).collect();
            // Words under the bytes: f32 blocks must be 4-byte aligned to be viewed.
            let mut words = vec![0u32; bytes.div_ceil(4)];
            let q = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes];
            f.quantize(&x, q);
            let mut y = vec![0f32; elements];
            f.dequantize(q, &mut y).unwrap();
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() <= 0.15, "{}: {a} became {b}", f.ty);
            }
            assert_eq!(f.first_non_finite(q), None, "{}", f.ty);
        }
    }

    #[test]
    fn finds_a_nan_scale_or_value() {
        let q4 = format(GgmlType::Q4_0).unwrap();
        let mut bytes = vec![0u8; 18 * 3];
        assert_eq!(q4.first_non_finite(&bytes), None);
        bytes[36..38].copy_from_slice(&f16::NAN.to_le_bytes());
        assert_eq!(q4.first_non_finite(&bytes), Some(2));
        let mut q6 = vec![0u8; 210 * 2];
        q6[210 + 208..210 + 210].copy_from_slice(&f16::INFINITY.to_le_bytes());
        assert_eq!(format(GgmlType::Q6_K).unwrap().first_non_finite(&q6), Some(1));
        let f: Vec<u8> = [1.0f32, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(format(GgmlType::F32).unwrap().first_non_finite(&f), Some(1));
    }
}
