//! Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32. Each sub-block `j` has a
//! 6-bit scale `sc[j]` and 6-bit min `m[j]` (packed in 12 bytes, see
//! [`scale_min`]); the super-block has f16 `d` and `dmin`:
//! `w[i] = (d * sc[j]) * q[i] - (dmin * m[j])` with 4-bit `q`.
//!
//! Quants are stored in four 32-byte chunks: chunk `c` holds elements `64c + l` in the
//! low nibbles and `64c + 32 + l` in the high nibbles of bytes `32c + l`.

use half::f16;

use super::tile::{self, TileFormat};

use super::QK_K;
use super::kquant::{quantize_superblock_with_mins, scale_min_k4};
use super::q8_k::BlockQ8_K;

/// One Q4_K super-block (144 bytes, ggml's `block_q4_K`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ4_K {
    /// Super-block scale of the sub-block scales.
    pub d: f16,
    /// Super-block scale of the sub-block mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins.
    pub scales: [u8; 12],
    /// Nibbles; see the module docs for their order.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ4_K>() == 144);

/// Sub-block `j`'s 6-bit `(scale, min)`, `j` in `0..8`.
pub fn scale_min(block: &BlockQ4_K, j: usize) -> (u8, u8) {
    scale_min_k4(j, &block.scales)
}

/// The block's quants in element order (`0..=15`).
pub fn quants(block: &BlockQ4_K) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for c in 0..4 {
        for l in 0..32 {
            let byte = block.qs[32 * c + l];
            q[64 * c + l] = byte & 0x0F;
            q[64 * c + 32 + l] = byte >> 4;
        }
    }
    q
}

/// Exact dequantization: `out[i] = (f32(d) * sc[j]) * q[i] - f32(dmin) * m[j]`, each
/// product rounded to f32 (ggml's and gguf-py's order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ4_K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q4_k::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (block.d.to_f32(), block.dmin.to_f32());
        let q = quants(block);
        for j in 0..8 {
            let (sc, m) = scale_min(block, j);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            for i in 32 * j..32 * j + 32 {
                ys[i] = dl * q[i] as f32 - ml;
            }
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q4_K_ref`, no importance matrix): per
/// sub-block `make_qkx2_quants(nmax 15, weights av|x| + |x|, trial scales
/// (-1 + 0.1·k + 15)/(max - min), k = 0..=20)`, scales and mins quantized to 6 bits
/// against the largest of each, then every value requantized with the stored scales.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize(x: &[f32], out: &mut [BlockQ4_K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q4_k::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (d, dmin, scales, levels) = quantize_superblock_with_mins(xs, 15, -1.0, 0.1, 20);
        let mut qs = [0u8; QK_K / 2];
        for c in 0..4 {
            for l in 0..32 {
                qs[32 * c + l] = levels[64 * c + l] | (levels[64 * c + 32 + l] << 4);
            }
        }
        *block = BlockQ4_K { d, dmin, scales, qs };
    }
}

/// The exact integer parts of one super-block's dot product, summed in i32:
/// `(Σ_j sc[j] · Σ_{i in j} q[i]·a.qs[i],  Σ_j m[j] · (a.bsums[2j] + a.bsums[2j+1]))`.
/// Bounds: |first| ≤ 8·63·32·15·127, |second| ≤ 8·63·32·127; no overflow, so any
/// summation order gives the same values.
pub fn superblock_dot(w: &BlockQ4_K, a: &BlockQ8_K) -> (i32, i32) {
    let q = quants(w);
    let mut sum_scaled = 0i32;
    let mut sum_mins = 0i32;
    for j in 0..8 {
        let (sc, m) = scale_min(w, j);
        let span = 32 * j..32 * j + 32;
        let dot: i32 =
            q[span.clone()].iter().zip(&a.qs[span]).map(|(&w, &x)| w as i32 * x as i32).sum();
        sum_scaled += sc as i32 * dot;
        sum_mins += m as i32 * (a.bsums[2 * j] as i32 + a.bsums[2 * j + 1] as i32);
    }
    (sum_scaled, sum_mins)
}

/// Dot product of a Q4_K row with Q8_K activations:
/// `Σ_blocks ((f32(d) * a.d) * f32(sum_scaled) - (f32(dmin) * a.d) * f32(sum_mins))`,
/// accumulated in f32 in block order, with the sums from [`superblock_dot`]. Relies
/// on `a.bsums` matching `a.qs` (as [`super::q8_k::quantize`] makes them).
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), a.len(), "q4_k::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        let (sum_scaled, sum_mins) = superblock_dot(wb, ab);
        acc += (wb.d.to_f32() * ab.d) * sum_scaled as f32
            - (wb.dmin.to_f32() * ab.d) * sum_mins as f32;
    }
    acc
}

super::format::block_format!(BlockQ4_K, Q4_K, Q8K, [0, 2]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q4_K tile, one super-block (8 columns of 32) per row:
/// `w = d * sc[j] * q - dmin * m[j]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ4_K {
    pub d: [f16; tile::ROWS],
    pub dmin: [f16; tile::ROWS],
    /// 6-bit scale of column j, row r at `8j + r`.
    pub sc: [u8; 64],
    /// 6-bit min of column j, row r at `8j + r`.
    pub m: [u8; 64],
    pub qs: [tile::Nibbles; 8],
}

const _: () = assert!(size_of::<TileQ4_K>() == 1184);

impl TileFormat for TileQ4_K {
    type Block = BlockQ4_K;
    fn put_row(&mut self, r: usize, b: &BlockQ4_K) {
        (self.d[r], self.dmin[r]) = (b.d, b.dmin);
        let q = quants(b);
        for c in 0..8 {
            (self.sc[8 * c + r], self.m[8 * c + r]) = scale_min(b, c);
            tile::put_nibbles(&mut self.qs[c], r, &q[32 * c..32 * c + 32]);
        }
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            let scale = self.d[r].to_f32() * self.sc[8 * c + r] as f32;
            let min = self.dmin[r].to_f32() * self.m[8 * c + r] as f32;
            for e in 0..32 {
                out[32 * c + e] = scale * tile::nibble(&self.qs[c], r, e) as f32 - min;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.5, dmin = 0.25. Sub-block j has scale 1 + j (and, for j = 7, 60 so the
        // top bits are exercised) and min 2j + 3.
        let sc: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 60];
        let mn: [u8; 8] = [3, 5, 7, 9, 11, 13, 15, 49];
        // Pack by the documented layout, written out byte by byte.
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4);
        }
        // q of element i = i % 16: chunk c byte l = (l % 16) | ((l % 16) << 4)
        let qs: [u8; 128] = std::array::from_fn(|b| ((b % 32) % 16) as u8 * 0x11);
        let block = BlockQ4_K { d: f16::from_f32(0.5), dmin: f16::from_f32(0.25), scales, qs };
        let mut out = [0f32; QK_K];
        dequantize(&[block], &mut out);
        for (i, &v) in out.iter().enumerate() {
            let j = i / 32;
            let want = 0.5 * sc[j] as f32 * (i % 16) as f32 - 0.25 * mn[j] as f32;
            assert_eq!(v, want, "element {i}");
        }
        assert_eq!(scales[3], 4 | (3 << 6)); // sc[7] = 60 = 0b11_1100
        assert_eq!(scales[11], 0xC | (0x1 << 4)); // low nibbles of 60 and 49
    }

    #[test]
    fn zero_superblock_quantizes_to_zero() {
        let x = [0f32; QK_K];
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        assert_eq!(out[0], bytemuck::Zeroable::zeroed());
    }

    #[test]
    fn affine_grid_is_reproduced_exactly() {
        // Every sub-block is 0.5 * L - 4 with L in 0..=15 over the full range: only the f16
        // rounding of d = 0.5/63 and dmin = 4/63 (relative 2^-11) separates the result
        // from the input, so every value comes back within 8 * 2^-11 * 2 < 0.01.
        let x: Vec<f32> = (0..QK_K).map(|i| 0.5 * ((i * 7) % 16) as f32 - 4.0).collect();
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        let mut back = [0f32; QK_K];
        dequantize(&out, &mut back);
        for i in 0..QK_K {
            assert!((back[i] - x[i]).abs() < 0.01, "element {i}: {} vs {}", back[i], x[i]);
        }
    }
}
