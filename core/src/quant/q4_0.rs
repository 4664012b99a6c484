//! Q4_0: blocks of 32 weights, 4-bit quants with an f16 scale and an implicit offset of
//! 8: `w[i] = d * (q[i] - 8)`. Byte `j` of `qs` holds element `j` in its low nibble and
//! element `j + 16` in its high nibble.

use half::f16;

use super::tile::{self, TileFormat};

use super::q8_act::BlockQ8x32;

/// Elements per block.
pub const QK4_0: usize = 32;

/// One Q4_0 block (18 bytes, ggml's `block_q4_0`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles: low = element `j`, high = element `j + 16`.
    pub qs: [u8; QK4_0 / 2],
}

const _: () = assert!(size_of::<BlockQ4_0>() == 18);

/// The block's quants in element order, offset removed (`-8..=7`).
pub fn quants(block: &BlockQ4_0) -> [i8; QK4_0] {
    let mut q = [0i8; QK4_0];
    for j in 0..QK4_0 / 2 {
        q[j] = (block.qs[j] & 0x0F) as i8 - 8;
        q[j + 16] = (block.qs[j] >> 4) as i8 - 8;
    }
    q
}

/// Exact dequantization: `out[i] = f32(q[i] - 8) * f32(d)`.
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ4_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK4_0, "q4_0::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK4_0)) {
        let d = block.d.to_f32();
        for (y, q) in ys.iter_mut().zip(quants(block)) {
            *y = q as f32 * d;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q4_0_ref`): the element of largest
/// magnitude `max` (first on ties) maps to -8, `d = max / -8`, and each value becomes
/// `min(15, trunc(x / d + 8.5))`.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ4_0]) {
    assert_eq!(x.len(), out.len() * QK4_0, "q4_0::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK4_0)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in xs {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let level = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        block.d = f16::from_f32(d);
        for j in 0..QK4_0 / 2 {
            block.qs[j] = level(xs[j]) | (level(xs[j + 16]) << 4);
        }
    }
}

/// The exact integer part of one block's dot product: `Σ (q[i] - 8) * a.qs[i]`, summed
/// in i32 (|sum| ≤ 32·8·127, no overflow, so any summation order gives the same value).
pub fn block_dot(w: &BlockQ4_0, a: &BlockQ8x32) -> i32 {
    quants(w).iter().zip(&a.qs).map(|(&q, &x)| q as i32 * x as i32).sum()
}

/// Dot product of a Q4_0 row with 8-bit activations:
/// `Σ_blocks f32(block_dot) * (f32(d) * a.d)`, accumulated in f32 in block order.
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ4_0], a: &[BlockQ8x32]) -> f32 {
    assert_eq!(w.len(), a.len(), "q4_0::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += block_dot(wb, ab) as f32 * (wb.d.to_f32() * ab.d);
    }
    acc
}

super::format::block_format!(BlockQ4_0, Q4_0, Q8x32, [0]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q4_0 tile: `w = d * (q - 8)`, quants stored unsigned.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ4_0 {
    pub d: [f16; tile::ROWS],
    pub qs: tile::Nibbles,
}

const _: () = assert!(size_of::<TileQ4_0>() == 144);

impl TileFormat for TileQ4_0 {
    type Block = BlockQ4_0;
    fn put_row(&mut self, r: usize, b: &BlockQ4_0) {
        self.d[r] = b.d;
        let q = quants(b).map(|v| (v + 8) as u8);
        tile::put_nibbles(&mut self.qs, r, &q);
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = (tile::nibble(&self.qs, r, e) as i32 - 8) as f32 * self.d[r].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.5; byte j = (hi << 4) | lo with lo = j, hi = 15 - j
        let mut qs = [0u8; 16];
        for (j, b) in qs.iter_mut().enumerate() {
            *b = (j as u8) | ((15 - j as u8) << 4);
        }
        let block = BlockQ4_0 { d: f16::from_f32(0.5), qs };
        let mut out = [0f32; 32];
        dequantize(&[block], &mut out);
        for j in 0..16 {
            assert_eq!(out[j], 0.5 * (j as f32 - 8.0), "element {j}");
            assert_eq!(out[j + 16], 0.5 * (7.0 - j as f32), "element {}", j + 16);
        }
        // the bytes ggml would store: f16 0.5 = 0x3800, little endian
        let bytes = bytemuck::bytes_of(&block);
        assert_eq!(&bytes[..3], &[0x00, 0x38, 0xF0]);
    }

    #[test]
    fn quantizes_a_hand_computed_block() {
        // max = -4 → d = 0.5, id = 2; x/d + 8.5 truncated.
        let mut x = [0f32; 32];
        x[0] = -4.0; // 0
        x[1] = 3.5; // 15
        x[2] = 0.25; // trunc(9.0) = 9
        x[16] = 4.0; // min(15, 16) = 15
        x[17] = -0.3; // trunc(7.9) = 7
        let mut out = [BlockQ4_0 { d: f16::ZERO, qs: [0; 16] }];
        quantize(&x, &mut out);
        assert_eq!(out[0].d, f16::from_f32(0.5));
        assert_eq!(out[0].qs[0], 15 << 4); // low nibble 0
        assert_eq!(out[0].qs[1], 15 | (7 << 4));
        assert_eq!(out[0].qs[2], 9 | (8 << 4));
        assert_eq!(out[0].qs[3], 8 | (8 << 4));
    }
}
