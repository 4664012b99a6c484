//! Q4_1: blocks of 32 weights, 4-bit quants with an f16 scale and an f16 minimum:
//! `w[i] = d * q[i] + m`. Byte `j` of `qs` holds element `j` in its low nibble and
//! element `j + 16` in its high nibble.

use half::f16;

use super::tile::{self, TileFormat};

use super::q8_act::BlockQ8x32;

/// Elements per block.
pub const QK4_1: usize = 32;

/// One Q4_1 block (20 bytes, ggml's `block_q4_1`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (the value of quant 0).
    pub m: f16,
    /// Nibbles: low = element `j`, high = element `j + 16`.
    pub qs: [u8; QK4_1 / 2],
}

const _: () = assert!(size_of::<BlockQ4_1>() == 20);

/// The block's quants in element order (`0..=15`).
pub fn quants(block: &BlockQ4_1) -> [u8; QK4_1] {
    let mut q = [0u8; QK4_1];
    for j in 0..QK4_1 / 2 {
        q[j] = block.qs[j] & 0x0F;
        q[j + 16] = block.qs[j] >> 4;
    }
    q
}

/// Exact dequantization: `out[i] = f32(q[i]) * f32(d) + f32(m)` (two roundings, no FMA,
/// like ggml's reference and gguf-py).
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ4_1], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK4_1, "q4_1::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK4_1)) {
        let (d, m) = (block.d.to_f32(), block.m.to_f32());
        for (y, q) in ys.iter_mut().zip(quants(block)) {
            *y = q as f32 * d + m;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q4_1_ref`): `d = (max - min) / 15`,
/// `m = min`, each value becomes `min(15, trunc((x - min) / d + 0.5))` (using the f32
/// `min`, not its f16 rounding).
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ4_1]) {
    assert_eq!(x.len(), out.len() * QK4_1, "q4_1::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK4_1)) {
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
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let level = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
        block.d = f16::from_f32(d);
        block.m = f16::from_f32(min);
        for j in 0..QK4_1 / 2 {
            block.qs[j] = level(xs[j]) | (level(xs[j + 16]) << 4);
        }
    }
}

/// The exact integer part of one block's dot product: `Σ q[i] * a.qs[i]` in i32
/// (|sum| ≤ 32·15·127).
pub fn block_dot(w: &BlockQ4_1, a: &BlockQ8x32) -> i32 {
    quants(w).iter().zip(&a.qs).map(|(&q, &x)| q as i32 * x as i32).sum()
}

/// Dot product of a Q4_1 row with 8-bit activations:
/// `Σ_blocks (f32(block_dot) * (f32(d) * a.d) + f32(m) * a.s)`, accumulated in f32 in
/// block order (`a.s = a.d * Σ a.qs` carries the minimum's contribution).
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ4_1], a: &[BlockQ8x32]) -> f32 {
    assert_eq!(w.len(), a.len(), "q4_1::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += block_dot(wb, ab) as f32 * (wb.d.to_f32() * ab.d) + wb.m.to_f32() * ab.s;
    }
    acc
}

super::format::block_format!(BlockQ4_1, Q4_1, Q8x32, [0, 2]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q4_1 tile: `w = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ4_1 {
    pub d: [f16; tile::ROWS],
    pub m: [f16; tile::ROWS],
    pub qs: tile::Nibbles,
}

const _: () = assert!(size_of::<TileQ4_1>() == 160);

impl TileFormat for TileQ4_1 {
    type Block = BlockQ4_1;
    fn put_row(&mut self, r: usize, b: &BlockQ4_1) {
        (self.d[r], self.m[r]) = (b.d, b.m);
        tile::put_nibbles(&mut self.qs, r, &quants(b));
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = tile::nibble(&self.qs, r, e) as f32 * self.d[r].to_f32() + self.m[r].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.25, m = -1; byte j: low = j, high = 15 - j
        let mut qs = [0u8; 16];
        for (j, b) in qs.iter_mut().enumerate() {
            *b = (j as u8) | ((15 - j as u8) << 4);
        }
        let block = BlockQ4_1 { d: f16::from_f32(0.25), m: f16::from_f32(-1.0), qs };
        let mut out = [0f32; 32];
        dequantize(&[block], &mut out);
        for j in 0..16 {
            assert_eq!(out[j], 0.25 * j as f32 - 1.0, "element {j}");
            assert_eq!(out[j + 16], 0.25 * (15 - j) as f32 - 1.0, "element {}", j + 16);
        }
        // f16 0.25 = 0x3400, f16 -1 = 0xBC00, little endian
        assert_eq!(&bytemuck::bytes_of(&block)[..5], &[0x00, 0x34, 0x00, 0xBC, 0xF0]);
    }

    #[test]
    fn quantizes_a_hand_computed_block() {
        // min = -1.5, max = 6 → d = 0.5, id = 2; (x + 1.5) * 2 + 0.5 truncated
        let mut x = [0.5f32; 32]; // trunc(4.5) = 4
        x[0] = -1.5; // 0
        x[16] = 6.0; // trunc(15.5) = 15
        x[1] = 0.0; // trunc(3.5) = 3
        let mut out = [BlockQ4_1 { d: f16::ZERO, m: f16::ZERO, qs: [0; 16] }];
        quantize(&x, &mut out);
        assert_eq!(out[0].d, f16::from_f32(0.5));
        assert_eq!(out[0].m, f16::from_f32(-1.5));
        assert_eq!(out[0].qs[0], 15 << 4);
        assert_eq!(out[0].qs[1], 3 | (4 << 4));
        assert_eq!(out[0].qs[2], 4 | (4 << 4));
    }
}
