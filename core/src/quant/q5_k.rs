//! Q5_K: like Q4_K (256 weights, 8 sub-blocks of 32 with 6-bit scales and mins, f16
//! `d` and `dmin`) but with 5-bit quants: `w[i] = (d * sc[j]) * q[i] - (dmin * m[j])`.
//!
//! The low 4 bits are stored like Q4_K (chunk `c`, byte `32c + l`: element `64c + l`
//! low nibble, `64c + 32 + l` high nibble). The fifth bits live in `qh[l]`: bit `2c`
//! for element `64c + l`, bit `2c + 1` for element `64c + 32 + l`.

use half::f16;

use super::tile::{self, TileFormat};

use super::QK_K;
use super::kquant::{quantize_superblock_with_mins, scale_min_k4};
use super::q8_k::BlockQ8_K;

/// One Q5_K super-block (176 bytes, ggml's `block_q5_K`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ5_K {
    /// Super-block scale of the sub-block scales.
    pub d: f16,
    /// Super-block scale of the sub-block mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed as in Q4_K.
    pub scales: [u8; 12],
    /// Fifth bits; see the module docs.
    pub qh: [u8; QK_K / 8],
    /// Low nibbles; see the module docs.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ5_K>() == 176);

/// Sub-block `j`'s 6-bit `(scale, min)`, `j` in `0..8`.
pub fn scale_min(block: &BlockQ5_K, j: usize) -> (u8, u8) {
    scale_min_k4(j, &block.scales)
}

/// The block's quants in element order (`0..=31`).
pub fn quants(block: &BlockQ5_K) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for c in 0..4 {
        for l in 0..32 {
            let byte = block.qs[32 * c + l];
            let hi = block.qh[l];
            q[64 * c + l] = (byte & 0x0F) | (((hi >> (2 * c)) & 1) << 4);
            q[64 * c + 32 + l] = (byte >> 4) | (((hi >> (2 * c + 1)) & 1) << 4);
        }
    }
    q
}

/// Exact dequantization: `out[i] = (f32(d) * sc[j]) * q[i] - f32(dmin) * m[j]`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ5_K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q5_k::dequantize: length mismatch");
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

/// ggml's reference quantizer (`quantize_row_q5_K_ref`, no importance matrix): as Q4_K
/// with `nmax` 31 and trial scales `(-0.5 + 0.1·k + 31)/(max - min)`, `k = 0..=15`.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize(x: &[f32], out: &mut [BlockQ5_K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q5_k::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (d, dmin, scales, levels) = quantize_superblock_with_mins(xs, 31, -0.5, 0.1, 15);
        let mut qs = [0u8; QK_K / 2];
        let mut qh = [0u8; QK_K / 8];
        for c in 0..4 {
            for l in 0..32 {
                let (l0, l1) = (levels[64 * c + l], levels[64 * c + 32 + l]);
                qs[32 * c + l] = (l0 & 0x0F) | ((l1 & 0x0F) << 4);
                qh[l] |= ((l0 >> 4) << (2 * c)) | ((l1 >> 4) << (2 * c + 1));
            }
        }
        *block = BlockQ5_K { d, dmin, scales, qh, qs };
    }
}

/// The exact integer parts of one super-block's dot product, summed in i32:
/// `(Σ_j sc[j] · Σ_{i in j} q[i]·a.qs[i],  Σ_j m[j] · (a.bsums[2j] + a.bsums[2j+1]))`.
/// Bounds: |first| ≤ 8·63·32·31·127, |second| ≤ 8·63·32·127; no overflow.
pub fn superblock_dot(w: &BlockQ5_K, a: &BlockQ8_K) -> (i32, i32) {
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

/// Dot product of a Q5_K row with Q8_K activations:
/// `Σ_blocks ((f32(d) * a.d) * f32(sum_scaled) - (f32(dmin) * a.d) * f32(sum_mins))`,
/// accumulated in f32 in block order, with the sums from [`superblock_dot`].
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), a.len(), "q5_k::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        let (sum_scaled, sum_mins) = superblock_dot(wb, ab);
        acc += (wb.d.to_f32() * ab.d) * sum_scaled as f32
            - (wb.dmin.to_f32() * ab.d) * sum_mins as f32;
    }
    acc
}

super::format::block_format!(BlockQ5_K, Q5_K, Q8K, [0, 2]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q5_K tile: as Q4_K with 5-bit quants.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ5_K {
    pub d: [f16; tile::ROWS],
    pub dmin: [f16; tile::ROWS],
    pub sc: [u8; 64],
    pub m: [u8; 64],
    pub qh: [tile::HighBits; 8],
    pub qs: [tile::Nibbles; 8],
}

const _: () = assert!(size_of::<TileQ5_K>() == 1440);

impl TileFormat for TileQ5_K {
    type Block = BlockQ5_K;
    fn put_row(&mut self, r: usize, b: &BlockQ5_K) {
        (self.d[r], self.dmin[r]) = (b.d, b.dmin);
        let q = quants(b);
        for c in 0..8 {
            (self.sc[8 * c + r], self.m[8 * c + r]) = scale_min(b, c);
            tile::put_nibbles(&mut self.qs[c], r, &q[32 * c..32 * c + 32]);
            tile::put_high_bits(&mut self.qh[c], r, &q[32 * c..32 * c + 32]);
        }
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            let scale = self.d[r].to_f32() * self.sc[8 * c + r] as f32;
            let min = self.dmin[r].to_f32() * self.m[8 * c + r] as f32;
            for e in 0..32 {
                let q = tile::q5_at(&self.qs[c], &self.qh[c], r, e);
                out[32 * c + e] = scale * q as f32 - min;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.25, dmin = 1; sub-block j: scale 2j + 1, min j (packed by hand, j < 4
        // only needs the plain bytes; j >= 4 values stay below 16 so no top bits).
        let sc: [u8; 8] = [1, 3, 5, 7, 9, 11, 13, 15];
        let mn: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j];
            scales[j + 4] = mn[j];
            scales[j + 8] = sc[j + 4] | (mn[j + 4] << 4);
        }
        // element i gets level (i % 32): low nibble i % 16, fifth bit when i % 32 >= 16.
        // Element 64c + l (l < 32) sits in byte 32c + l low nibble, with qh[l] bit 2c;
        // element 64c + 32 + l in the high nibble with qh[l] bit 2c + 1. Both have level
        // l, so the fifth bit is set in all eight positions of qh[l] for l >= 16.
        let qs: [u8; 128] = std::array::from_fn(|b| (b % 16) as u8 * 0x11);
        let qh: [u8; 32] = std::array::from_fn(|l| if l >= 16 { 0xFF } else { 0x00 });
        let block = BlockQ5_K { d: f16::from_f32(0.25), dmin: f16::from_f32(1.0), scales, qh, qs };
        let mut out = [0f32; QK_K];
        dequantize(&[block], &mut out);
        for (i, &v) in out.iter().enumerate() {
            let j = i / 32;
            let want = 0.25 * sc[j] as f32 * (i % 32) as f32 - mn[j] as f32;
            assert_eq!(v, want, "element {i}");
        }
        // A single fifth bit: qh[3] bit 5 → element 64·2 + 32 + 3 = 163 gains 16.
        let mut one = block;
        one.qh = [0; 32];
        one.qh[3] = 1 << 5;
        let q = quants(&one);
        assert_eq!(q[163], 16 + 3);
        assert_eq!(q.iter().filter(|&&v| v >= 16).count(), 1);
    }

    #[test]
    fn zero_superblock_quantizes_to_zero() {
        let x = [0f32; QK_K];
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        assert_eq!(out[0], bytemuck::Zeroable::zeroed());
    }
}
