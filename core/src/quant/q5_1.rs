//! Q5_1: blocks of 32 weights, 5-bit quants with an f16 scale and an f16 minimum:
//! `w[i] = d * q[i] + m`. Bits are packed like Q5_0: byte `j` of `qs` holds the low 4
//! bits of elements `j` (low nibble) and `j + 16` (high nibble); bit `i` of the
//! little-endian u32 `qh` is bit 4 of element `i`.

use half::f16;

use super::tile::{self, TileFormat};

use super::q8_act::BlockQ8x32;

/// Elements per block.
pub const QK5_1: usize = 32;

/// One Q5_1 block (24 bytes, ggml's `block_q5_1`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (the value of quant 0).
    pub m: f16,
    /// Fifth bits, a little-endian u32: bit `i` belongs to element `i`.
    pub qh: [u8; 4],
    /// Low nibbles: low = element `j`, high = element `j + 16`.
    pub qs: [u8; QK5_1 / 2],
}

const _: () = assert!(size_of::<BlockQ5_1>() == 24);

/// The block's quants in element order (`0..=31`).
pub fn quants(block: &BlockQ5_1) -> [u8; QK5_1] {
    let qh = u32::from_le_bytes(block.qh);
    let mut q = [0u8; QK5_1];
    for j in 0..QK5_1 / 2 {
        let hi0 = ((qh >> j) & 1) as u8;
        let hi1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (block.qs[j] & 0x0F) | (hi0 << 4);
        q[j + 16] = (block.qs[j] >> 4) | (hi1 << 4);
    }
    q
}

/// Exact dequantization: `out[i] = f32(q[i]) * f32(d) + f32(m)` (two roundings).
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ5_1], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK5_1, "q5_1::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK5_1)) {
        let (d, m) = (block.d.to_f32(), block.m.to_f32());
        for (y, q) in ys.iter_mut().zip(quants(block)) {
            *y = q as f32 * d + m;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q5_1_ref`): `d = (max - min) / 31`,
/// `m = min`, each value becomes `trunc((x - min) / d + 0.5)` (no clamp in ggml; the
/// cast saturates here, which only matters for non-finite input).
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ5_1]) {
    assert_eq!(x.len(), out.len() * QK5_1, "q5_1::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK5_1)) {
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in xs {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0u8; QK5_1 / 2];
        let mut qh = 0u32;
        for j in 0..QK5_1 / 2 {
            let l0 = ((xs[j] - min) * id + 0.5) as u8;
            let l1 = ((xs[j + 16] - min) * id + 0.5) as u8;
            qs[j] = (l0 & 0x0F) | ((l1 & 0x0F) << 4);
            qh |= ((l0 as u32 >> 4) & 1) << j;
            qh |= ((l1 as u32 >> 4) & 1) << (j + 16);
        }
        *block = BlockQ5_1 { d: f16::from_f32(d), m: f16::from_f32(min), qh: qh.to_le_bytes(), qs };
    }
}

/// The exact integer part of one block's dot product: `Σ q[i] * a.qs[i]` in i32
/// (|sum| ≤ 32·31·127).
pub fn block_dot(w: &BlockQ5_1, a: &BlockQ8x32) -> i32 {
    quants(w).iter().zip(&a.qs).map(|(&q, &x)| q as i32 * x as i32).sum()
}

/// Dot product of a Q5_1 row with 8-bit activations:
/// `Σ_blocks (f32(block_dot) * (f32(d) * a.d) + f32(m) * a.s)`, accumulated in f32 in
/// block order.
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ5_1], a: &[BlockQ8x32]) -> f32 {
    assert_eq!(w.len(), a.len(), "q5_1::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += block_dot(wb, ab) as f32 * (wb.d.to_f32() * ab.d) + wb.m.to_f32() * ab.s;
    }
    acc
}

super::format::block_format!(BlockQ5_1, Q5_1, Q8x32, [0, 2]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q5_1 tile: `w = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ5_1 {
    pub d: [f16; tile::ROWS],
    pub m: [f16; tile::ROWS],
    pub qh: tile::HighBits,
    pub qs: tile::Nibbles,
}

const _: () = assert!(size_of::<TileQ5_1>() == 192);

impl TileFormat for TileQ5_1 {
    type Block = BlockQ5_1;
    fn put_row(&mut self, r: usize, b: &BlockQ5_1) {
        (self.d[r], self.m[r]) = (b.d, b.m);
        let q = quants(b);
        tile::put_nibbles(&mut self.qs, r, &q);
        tile::put_high_bits(&mut self.qh, r, &q);
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            let q = tile::q5_at(&self.qs, &self.qh, r, e);
            *o = q as f32 * self.d[r].to_f32() + self.m[r].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.5, m = 1; level of element i is 31 - i: low nibbles (31 - i) & 15, fifth
        // bit set for elements 0..16, i.e. qh = 0x0000FFFF.
        let mut qs = [0u8; 16];
        for (j, b) in qs.iter_mut().enumerate() {
            let (l0, l1) = (31 - j as u8, 15 - j as u8);
            *b = (l0 & 15) | (l1 << 4);
        }
        let block =
            BlockQ5_1 { d: f16::from_f32(0.5), m: f16::from_f32(1.0), qh: [0xFF, 0xFF, 0, 0], qs };
        let mut out = [0f32; 32];
        dequantize(&[block], &mut out);
        for (i, &v) in out.iter().enumerate() {
            assert_eq!(v, 0.5 * (31 - i) as f32 + 1.0, "element {i}");
        }
        assert_eq!(
            &bytemuck::bytes_of(&block)[..9],
            &[0x00, 0x38, 0x00, 0x3C, 0xFF, 0xFF, 0, 0, 0xFF]
        );
    }

    #[test]
    fn quantizes_a_hand_computed_block() {
        // min = -2, max = 13.5 → d = 0.5, id = 2; trunc((x + 2) * 2 + 0.5)
        let mut x = [0f32; 32]; // 4.5 → 4
        x[0] = -2.0; // 0
        x[5] = 13.5; // 31.5 → 31
        x[20] = 6.25; // 17
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        let b: BlockQ5_1 = out[0];
        assert_eq!((b.d, b.m), (f16::from_f32(0.5), f16::from_f32(-2.0)));
        let q = quants(&b);
        let mut want = [4u8; 32];
        want[0] = 0;
        want[5] = 31;
        want[20] = 17;
        assert_eq!(q, want);
        assert_eq!(u32::from_le_bytes(b.qh), (1 << 5) | (1 << 20));
    }
}
