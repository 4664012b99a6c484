//! Joule's 8-bit activation block for the 32-element weight formats (Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0). It is ggml's Q8_1 with f32 instead of f16 scales: activations are
//! quantized on the fly and never stored, so the extra 4 bytes per block cost nothing
//! on disk and keep the scale exact.
//!
//! Rule (ggml's Q8_0/Q8_1 reference rule): `d = max|x| / 127`, `q = round(x / d)` with
//! ties away from zero (computed as `x * (1/d)`), and `s = d * Σq`, which lets the
//! formats with a minimum (Q4_1, Q5_1) add `m * Σ(a)` without touching the quants.

/// Elements per block.
pub const QK8_ACT: usize = 32;

/// 32 activations quantized to 8 bits: value `i` is `d * qs[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8x32 {
    /// Scale: `max|x| / 127`.
    pub d: f32,
    /// `d * Σ qs`, the block's dequantized sum.
    pub s: f32,
    /// Quants in `-127..=127`.
    pub qs: [i8; QK8_ACT],
}

const _: () = assert!(size_of::<BlockQ8x32>() == 40);

/// Quantizes activations to 8 bits, one block per 32 values.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ8x32]) {
    assert_eq!(x.len(), out.len() * QK8_ACT, "q8_act::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK8_ACT)) {
        *block = quantize_block(xs);
    }
}

fn quantize_block(xs: &[f32]) -> BlockQ8x32 {
    let mut amax = 0.0f32;
    for &v in xs {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK8_ACT];
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round() as i8;
        sum += *q as i32;
    }
    BlockQ8x32 { d, s: d * sum as f32, qs }
}

/// Dequantizes activation blocks (for tests and diagnostics; the dot products use the
/// integer quants directly).
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ8x32], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK8_ACT, "q8_act::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK8_ACT)) {
        for (y, &q) in ys.iter_mut().zip(&block.qs) {
            *y = q as f32 * block.d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_a_hand_computed_block() {
        // max |x| = 127/16 → d = 1/16, id = 16; x * id = [127, -63.5, 0.5, 1.25, -2.5, 0...]
        let mut x = [0f32; 32];
        x[0] = 127.0 / 16.0;
        x[1] = -63.5 / 16.0;
        x[2] = 0.5 / 16.0;
        x[3] = 1.25 / 16.0;
        x[4] = -2.5 / 16.0;
        let mut out = [BlockQ8x32 { d: 0.0, s: 0.0, qs: [0; 32] }];
        quantize(&x, &mut out);
        let b = out[0];
        assert_eq!(b.d, 1.0 / 16.0);
        assert_eq!(&b.qs[..5], &[127, -64, 1, 1, -3]); // ties away from zero
        assert!(b.qs[5..].iter().all(|&q| q == 0));
        assert_eq!(b.s, 62.0 / 16.0);
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let x = [0f32; 64];
        let mut out = [BlockQ8x32 { d: 1.0, s: 1.0, qs: [5; 32] }; 2];
        quantize(&x, &mut out);
        for b in out {
            assert_eq!((b.d, b.s), (0.0, 0.0));
            assert!(b.qs.iter().all(|&q| q == 0));
        }
    }

    #[test]
    fn values_on_the_grid_round_trip_exactly() {
        // d = 2^-7 exactly when max|x| = 127 * 2^-7.
        let x: Vec<f32> =
            (0..32).map(|i| ((i * 37) % 255) as f32 - 127.0).map(|k| k / 128.0).collect();
        let mut blocks = [BlockQ8x32 { d: 0.0, s: 0.0, qs: [0; 32] }];
        quantize(&x, &mut blocks);
        assert_eq!(blocks[0].d, 1.0 / 128.0);
        let mut back = [0f32; 32];
        dequantize(&blocks, &mut back);
        assert_eq!(back.as_slice(), x.as_slice());
    }
}
