//! Q5_0: blocks of 32 weights, 5-bit quants with an f16 scale and an implicit offset of
//! 16: `w[i] = d * (q[i] - 16)`. The low 4 bits are packed like Q4_0 (byte `j`: element
//! `j` low, element `j + 16` high); bit `i` of the little-endian u32 `qh` is bit 4 of
//! element `i`.

use half::f16;

use super::tile::{self, TileFormat};

use super::q8_act::BlockQ8x32;

/// Elements per block.
pub const QK5_0: usize = 32;

/// One Q5_0 block (22 bytes, ggml's `block_q5_0`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, a little-endian u32: bit `i` belongs to element `i`.
    pub qh: [u8; 4],
    /// Low nibbles: low = element `j`, high = element `j + 16`.
    pub qs: [u8; QK5_0 / 2],
}

const _: () = assert!(size_of::<BlockQ5_0>() == 22);

/// The block's quants in element order, offset removed (`-16..=15`).
pub fn quants(block: &BlockQ5_0) -> [i8; QK5_0] {
    let qh = u32::from_le_bytes(block.qh);
    let mut q = [0i8; QK5_0];
    for j in 0..QK5_0 / 2 {
        let hi0 = ((qh >> j) & 1) as u8;
        let hi1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = ((block.qs[j] & 0x0F) | (hi0 << 4)) as i8 - 16;
        q[j + 16] = ((block.qs[j] >> 4) | (hi1 << 4)) as i8 - 16;
    }
    q
}

/// Exact dequantization: `out[i] = f32(q[i] - 16) * f32(d)`.
///
/// # Panics
/// If `out.len() != blocks.len() * 32`.
pub fn dequantize(blocks: &[BlockQ5_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK5_0, "q5_0::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK5_0)) {
        let d = block.d.to_f32();
        for (y, q) in ys.iter_mut().zip(quants(block)) {
            *y = q as f32 * d;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q5_0_ref`): the element of largest
/// magnitude `max` (first on ties) maps to -16, `d = max / -16`, and each value
/// becomes `min(31, trunc(x / d + 16.5))`.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize(x: &[f32], out: &mut [BlockQ5_0]) {
    assert_eq!(x.len(), out.len() * QK5_0, "q5_0::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK5_0)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in xs {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut levels = [0u8; QK5_0];
        for (l, &v) in levels.iter_mut().zip(xs) {
            *l = ((v * id + 16.5) as i8).min(31) as u8;
        }
        *block = pack(f16::from_f32(d), &levels);
    }
}

/// Packs 32 levels in `0..=31` (element order) with scale `d`.
fn pack(d: f16, levels: &[u8; QK5_0]) -> BlockQ5_0 {
    let mut qs = [0u8; QK5_0 / 2];
    let mut qh = 0u32;
    for j in 0..QK5_0 / 2 {
        let (l0, l1) = (levels[j], levels[j + 16]);
        qs[j] = (l0 & 0x0F) | ((l1 & 0x0F) << 4);
        qh |= ((l0 as u32 >> 4) & 1) << j;
        qh |= ((l1 as u32 >> 4) & 1) << (j + 16);
    }
    BlockQ5_0 { d, qh: qh.to_le_bytes(), qs }
}

/// The exact integer part of one block's dot product: `Σ (q[i] - 16) * a.qs[i]` in i32
/// (|sum| ≤ 32·16·127).
pub fn block_dot(w: &BlockQ5_0, a: &BlockQ8x32) -> i32 {
    quants(w).iter().zip(&a.qs).map(|(&q, &x)| q as i32 * x as i32).sum()
}

/// Dot product of a Q5_0 row with 8-bit activations:
/// `Σ_blocks f32(block_dot) * (f32(d) * a.d)`, accumulated in f32 in block order.
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ5_0], a: &[BlockQ8x32]) -> f32 {
    assert_eq!(w.len(), a.len(), "q5_0::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += block_dot(wb, ab) as f32 * (wb.d.to_f32() * ab.d);
    }
    acc
}

super::format::block_format!(BlockQ5_0, Q5_0, Q8x32, [0]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q5_0 tile: `w = d * (q - 16)`, quants stored unsigned.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ5_0 {
    pub d: [f16; tile::ROWS],
    pub qh: tile::HighBits,
    pub qs: tile::Nibbles,
}

const _: () = assert!(size_of::<TileQ5_0>() == 176);

impl TileFormat for TileQ5_0 {
    type Block = BlockQ5_0;
    fn put_row(&mut self, r: usize, b: &BlockQ5_0) {
        self.d[r] = b.d;
        let q = quants(b).map(|v| (v + 16) as u8);
        tile::put_nibbles(&mut self.qs, r, &q);
        tile::put_high_bits(&mut self.qh, r, &q);
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            let q = tile::q5_at(&self.qs, &self.qh, r, e) as i32 - 16;
            *o = q as f32 * self.d[r].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 2; element i has level i (0..=31): low nibbles i & 15, fifth bit set for
        // elements 16..32, i.e. qh = 0xFFFF0000.
        let mut qs = [0u8; 16];
        for (j, b) in qs.iter_mut().enumerate() {
            *b = (j as u8) | ((j as u8) << 4);
        }
        let block = BlockQ5_0 { d: f16::from_f32(2.0), qh: [0x00, 0x00, 0xFF, 0xFF], qs };
        let mut out = [0f32; 32];
        dequantize(&[block], &mut out);
        for (i, &v) in out.iter().enumerate() {
            assert_eq!(v, 2.0 * (i as f32 - 16.0), "element {i}");
        }
        // one more: only element 3 has its fifth bit → level 19 → +3·d
        let one = BlockQ5_0 { d: f16::from_f32(1.0), qh: [0x08, 0, 0, 0], qs };
        dequantize(&[one], &mut out);
        assert_eq!(out[3], 3.0);
        assert_eq!(out[19], 3.0 - 16.0);
        assert_eq!(&bytemuck::bytes_of(&one)[..6], &[0x00, 0x3C, 0x08, 0, 0, 0]);
    }

    #[test]
    fn quantizes_a_hand_computed_block() {
        // max = 8 → d = -0.5, id = -2; trunc(-2x + 16.5)
        let mut x = [0f32; 32]; // 16
        x[0] = 8.0; // 0.5 → 0
        x[1] = -8.0; // 32.5 → min(31, 32) = 31
        x[17] = -1.0; // 18.5 → 18
        let mut out = [bytemuck::Zeroable::zeroed()];
        quantize(&x, &mut out);
        let b: BlockQ5_0 = out[0];
        assert_eq!(b.d, f16::from_f32(-0.5));
        let mut want = [16u8; 32];
        want[0] = 0;
        want[1] = 31;
        want[17] = 18;
        assert_eq!(b, pack(f16::from_f32(-0.5), &want));
        assert_eq!(b.qs[1], 0x0F | (0x02 << 4));
        assert_eq!(u32::from_le_bytes(b.qh), 0xFFFF_FFFE);
    }
}
