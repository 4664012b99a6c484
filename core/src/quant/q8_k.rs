//! ggml's Q8_K: the 8-bit activation block of the k-quant dot products, 256 values with
//! an f32 scale and the sums of each 16 quants (`bsums`), which the formats with a
//! minimum (Q4_K, Q5_K) need for their `min * Σa` term.
//!
//! Rule (ggml's `quantize_row_q8_K_ref`): take the element of largest magnitude `max`
//! (the first one on ties), `iscale = -127 / max`, `q = min(127, nearest(iscale * x))`
//! with ties to even, `d = 1 / iscale`. The sign of `d` is therefore opposite to `max`.

use super::QK_K;
use super::kquant::nearest_int;

/// 256 activations quantized to 8 bits: value `i` is `d * qs[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ8_K {
    /// Scale (may be negative).
    pub d: f32,
    /// Quants in `-127..=127`.
    pub qs: [i8; QK_K],
    /// `bsums[j] = Σ qs[16j..16j+16]`.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(size_of::<BlockQ8_K>() == 292);

/// Quantizes activations to Q8_K, one block per 256 values.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize(x: &[f32], out: &mut [BlockQ8_K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q8_k::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        quantize_block(xs, block);
    }
}

fn quantize_block(xs: &[f32], y: &mut BlockQ8_K) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in xs {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        // ggml leaves bsums untouched here; Joule zeroes them so the block is consistent.
        *y = bytemuck::Zeroable::zeroed();
        return;
    }
    let iscale = -127.0 / max;
    for (q, &v) in y.qs.iter_mut().zip(xs) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (j, bsum) in y.bsums.iter_mut().enumerate() {
        *bsum = y.qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum();
    }
    y.d = 1.0 / iscale;
}

/// Dequantizes Q8_K blocks (for tests and diagnostics).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ8_K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q8_k::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        for (y, &q) in ys.iter_mut().zip(&block.qs) {
            *y = block.d * q as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_a_hand_computed_block() {
        // max = -127/64 (the first largest magnitude) → iscale = -127/max = 64, d = 1/64.
        let mut x = [0f32; QK_K];
        x[0] = 1.0;
        x[5] = -127.0 / 64.0;
        x[6] = 127.0 / 64.0;
        x[17] = 2.5 / 64.0; // ties to even: 2
        x[18] = -3.5 / 64.0; // ties to even: -4
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        let b: BlockQ8_K = out[0];
        assert_eq!(b.d, 1.0 / 64.0);
        assert_eq!(&b.qs[..7], &[64, 0, 0, 0, 0, -127, 127]);
        assert_eq!(&b.qs[16..19], &[0, 2, -4]);
        assert_eq!(b.bsums[0], 64);
        assert_eq!(b.bsums[1], -2);
        assert!(b.bsums[2..].iter().all(|&s| s == 0));
        let mut back = [0f32; QK_K];
        dequantize(&out, &mut back);
        assert_eq!(back[5], x[5]);
        assert_eq!(back[0], 1.0);
    }

    #[test]
    fn zero_block_is_all_zero() {
        let x = [0f32; QK_K];
        let mut out = [BlockQ8_K { d: 3.0, qs: [1; QK_K], bsums: [7; 16] }];
        quantize(&x, &mut out);
        assert_eq!(out[0], bytemuck::Zeroable::zeroed());
    }
}
