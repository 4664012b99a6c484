//! Q8_0: blocks of 32 weights, signed 8-bit quants with an f16 scale: `w[i] = d * q[i]`.

use half::f16;

use super::tile::{self, TileFormat};

use super::q8_act::BlockQ8x32;

/// Elements per block.
pub const QK8_0: usize = 32;

/// One Q8_0 block (34 bytes, ggml's `block_q8_0`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants, in element order.
    pub qs: [i8; QK8_0],
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);

/// Exact dequantization: `out[i] = f32(q[i]) * f32(d)`.
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ8_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK8_0, "q8_0::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK8_0)) {
        let d = block.d.to_f32();
        for (y, &q) in ys.iter_mut().zip(&block.qs) {
            *y = q as f32 * d;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q8_0_ref`): `d = max|x| / 127`, each value
/// becomes `round(x * (1/d))` with ties away from zero. The quants use the f32 `d`, not
/// its f16 rounding.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ8_0]) {
    assert_eq!(x.len(), out.len() * QK8_0, "q8_0::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK8_0)) {
        let mut amax = 0.0f32;
        for &v in xs {
            amax = amax.max(v.abs());
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = (v * id).round() as i8;
        }
    }
}

/// The exact integer part of one block's dot product: `Σ q[i] * a.qs[i]` in i32
/// (|sum| ≤ 32·128·127).
pub fn block_dot(w: &BlockQ8_0, a: &BlockQ8x32) -> i32 {
    w.qs.iter().zip(&a.qs).map(|(&q, &x)| q as i32 * x as i32).sum()
}

/// Dot product of a Q8_0 row with 8-bit activations:
/// `Σ_blocks f32(block_dot) * (f32(d) * a.d)`, accumulated in f32 in block order.
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ8_0], a: &[BlockQ8x32]) -> f32 {
    assert_eq!(w.len(), a.len(), "q8_0::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += block_dot(wb, ab) as f32 * (wb.d.to_f32() * ab.d);
    }
    acc
}

super::format::block_format!(BlockQ8_0, Q8_0, Q8x32, [0]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q8_0 tile: `w = d * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ8_0 {
    pub d: [f16; tile::ROWS],
    pub qs: tile::Bytes,
}

const _: () = assert!(size_of::<TileQ8_0>() == 272);

impl TileFormat for TileQ8_0 {
    type Block = BlockQ8_0;
    fn put_row(&mut self, r: usize, b: &BlockQ8_0) {
        self.d[r] = b.d;
        tile::put_bytes(&mut self.qs, r, &b.qs);
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = tile::byte(&self.qs, r, e) as f32 * self.d[r].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        let qs: [i8; 32] = std::array::from_fn(|i| (i as i8 - 16) * 8);
        let block = BlockQ8_0 { d: f16::from_f32(0.125), qs };
        let mut out = [0f32; 32];
        dequantize(&[block], &mut out);
        for (i, &v) in out.iter().enumerate() {
            assert_eq!(v, (i as f32 - 16.0), "element {i}");
        }
        // f16 0.125 = 0x3000; then the quants as two's-complement bytes
        assert_eq!(&bytemuck::bytes_of(&block)[..4], &[0x00, 0x30, 0x80, 0x88]);
    }

    #[test]
    fn quantizes_a_hand_computed_block() {
        // max|x| = 127/4 → d = 0.25, id = 4; ties away from zero
        let mut x = [0f32; 32];
        x[0] = -127.0 / 4.0;
        x[1] = 0.625; // 2.5 → 3
        x[2] = -0.625; // -2.5 → -3
        x[3] = 0.3; // 1.2 → 1
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        let b: BlockQ8_0 = out[0];
        assert_eq!(b.d, f16::from_f32(0.25));
        assert_eq!(&b.qs[..5], &[-127, 3, -3, 1, 0]);
    }
}
