//! Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16, 6-bit quants with an
//! offset of 32, a signed 8-bit scale per sub-block and an f16 super-block scale:
//! `w[i] = (d * sc[i / 16]) * (q[i] - 32)`.
//!
//! The block is two halves of 128 elements; half `h` uses `ql[64h..64h+64]` and
//! `qh[32h..32h+32]`. For `l` in `0..32`, byte `ql[64h + l]` holds the low 4 bits of
//! elements `128h + l` (low nibble) and `128h + 64 + l` (high nibble), byte
//! `ql[64h + 32 + l]` those of `128h + 32 + l` and `128h + 96 + l`, and `qh[32h + l]`
//! holds the top 2 bits of `128h + l`, `+32`, `+64`, `+96` in bit pairs 0-1, 2-3, 4-5,
//! 6-7.

use half::f16;

use super::tile::{self, TileFormat};

use super::QK_K;
use super::kquant::{GROUP_MAX_EPS, make_qx_quants, nearest_int};
use super::q8_k::BlockQ8_K;

/// One Q6_K super-block (210 bytes, ggml's `block_q6_K`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[allow(non_camel_case_types)]
pub struct BlockQ6_K {
    /// Low 4 bits of the quants; see the module docs.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of the quants; see the module docs.
    pub qh: [u8; QK_K / 4],
    /// Signed scale of each 16-element sub-block.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ6_K>() == 210);

/// The block's quants in element order, offset removed (`-32..=31`).
pub fn quants(block: &BlockQ6_K) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for h in 0..2 {
        let (ql, qh) = (&block.ql[64 * h..64 * h + 64], &block.qh[32 * h..32 * h + 32]);
        let base = 128 * h;
        for l in 0..32 {
            let hi = qh[l];
            q[base + l] = ((ql[l] & 0x0F) | ((hi & 3) << 4)) as i8 - 32;
            q[base + 32 + l] = ((ql[32 + l] & 0x0F) | (((hi >> 2) & 3) << 4)) as i8 - 32;
            q[base + 64 + l] = ((ql[l] >> 4) | (((hi >> 4) & 3) << 4)) as i8 - 32;
            q[base + 96 + l] = ((ql[32 + l] >> 4) | (((hi >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    q
}

/// Exact dequantization: `out[i] = (f32(d) * f32(sc[i/16])) * f32(q[i] - 32)`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ6_K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q6_k::dequantize: length mismatch");
    for (block, ys) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = block.d.to_f32();
        let q = quants(block);
        for (i, y) in ys.iter_mut().enumerate() {
            *y = (d * block.scales[i / 16] as f32) * q[i] as f32;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q6_K_ref`, no importance matrix): per
/// sub-block `make_qx_quants(nmax 32, weights x²)`, the scales quantized to 8 bits
/// against the largest magnitude (`d = max_scale / -128`), then every value
/// requantized with the stored scales. An all-zero super-block becomes all-zero bytes.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize(x: &[f32], out: &mut [BlockQ6_K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q6_k::quantize: length mismatch");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *block = quantize_block(xs);
    }
}

fn quantize_block(xs: &[f32]) -> BlockQ6_K {
    // levels hold q + 32 in 0..=63
    let mut levels = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..QK_K / 16 {
        let scale =
            make_qx_quants(32, &xs[16 * ib..16 * ib + 16], &mut levels[16 * ib..16 * ib + 16]);
        scales[ib] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        return bytemuck::Zeroable::zeroed();
    }
    let iscale = -128.0 / max_scale;
    let d = f16::from_f32(1.0 / iscale);
    let mut block_scales = [0i8; QK_K / 16];
    for (s, &scale) in block_scales.iter_mut().zip(&scales) {
        *s = nearest_int(iscale * scale).min(127) as i8;
    }
    for (j, &sc) in block_scales.iter().enumerate() {
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            levels[i] = (nearest_int(xs[i] / dj).clamp(-32, 31) + 32) as i8;
        }
    }
    let mut ql = [0u8; QK_K / 2];
    let mut qh = [0u8; QK_K / 4];
    for h in 0..2 {
        let base = 128 * h;
        for l in 0..32 {
            let [l0, l1, l2, l3] = [0, 32, 64, 96].map(|o| levels[base + o + l] as u8);
            ql[64 * h + l] = (l0 & 0x0F) | ((l2 & 0x0F) << 4);
            ql[64 * h + 32 + l] = (l1 & 0x0F) | ((l3 & 0x0F) << 4);
            qh[32 * h + l] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6);
        }
    }
    BlockQ6_K { ql, qh, scales: block_scales, d }
}

/// The exact integer part of one super-block's dot product, summed in i32:
/// `Σ_j sc[j] · Σ_{i in j} (q[i] - 32)·a.qs[i]` over the 16 sub-blocks of 16.
/// Bound: 16·128·16·32·127 < 2^31; no overflow, so any summation order gives the same
/// value.
pub fn superblock_dot(w: &BlockQ6_K, a: &BlockQ8_K) -> i32 {
    let q = quants(w);
    let mut sum = 0i32;
    for j in 0..QK_K / 16 {
        let span = 16 * j..16 * j + 16;
        let dot: i32 =
            q[span.clone()].iter().zip(&a.qs[span]).map(|(&w, &x)| w as i32 * x as i32).sum();
        sum += w.scales[j] as i32 * dot;
    }
    sum
}

/// Dot product of a Q6_K row with Q8_K activations:
/// `Σ_blocks (f32(d) * a.d) * f32(superblock_dot)`, accumulated in f32 in block order.
///
/// # Panics
/// If the block counts differ.
pub fn vec_dot(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), a.len(), "q6_k::vec_dot: block count mismatch");
    let mut acc = 0.0f32;
    for (wb, ab) in w.iter().zip(a) {
        acc += (wb.d.to_f32() * ab.d) * superblock_dot(wb, ab) as f32;
    }
    acc
}

// ggml block_q6_K: ql[128], qh[64], scales[16], then d.
super::format::block_format!(BlockQ6_K, Q6_K, Q8K, [208]);

// The repacked tile the integer kernels read (layout: `super::tile`).

/// Q6_K tile, quants widened to signed bytes: `w = d * sc[16-element half] * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileQ6_K {
    pub d: [f16; tile::ROWS],
    /// Signed scale of column j, half h (elements 16h..16h+16), row r at `16j + 8h + r`.
    pub sc: [i8; 128],
    pub qs: [tile::Bytes; 8],
}

const _: () = assert!(size_of::<TileQ6_K>() == 2192);

impl TileFormat for TileQ6_K {
    type Block = BlockQ6_K;
    fn put_row(&mut self, r: usize, b: &BlockQ6_K) {
        self.d[r] = b.d;
        let q = quants(b);
        for c in 0..8 {
            self.sc[16 * c + r] = b.scales[2 * c];
            self.sc[16 * c + 8 + r] = b.scales[2 * c + 1];
            tile::put_bytes(&mut self.qs[c], r, &q[32 * c..32 * c + 32]);
        }
    }
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            for e in 0..32 {
                let scale = self.d[r].to_f32() * self.sc[16 * c + 8 * (e / 16) + r] as f32;
                out[32 * c + e] = scale * tile::byte(&self.qs[c], r, e) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_a_hand_built_block() {
        // d = 0.5, sub-block scale j - 8 (negative ones included).
        // Levels: element e gets level e % 64 → q = e % 64 - 32.
        // Half h, l in 0..32: elements base+l, +32, +64, +96 have levels l, 32+l, l, 32+l
        // (base = 0 or 128, both multiples of 64), so ql[l] = l&15 | (l&15) << 4 = ql[32+l],
        // and qh[l] = (l>>4) | ((32+l)>>4)<<2 | (l>>4)<<4 | ((32+l)>>4)<<6.
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for h in 0..2 {
            for l in 0..32u8 {
                let lo = (l & 15) | ((l & 15) << 4);
                ql[64 * h + l as usize] = lo;
                ql[64 * h + 32 + l as usize] = lo;
                let (a, b) = (l >> 4, (32 + l) >> 4);
                qh[32 * h + l as usize] = a | (b << 2) | (a << 4) | (b << 6);
            }
        }
        let scales: [i8; 16] = std::array::from_fn(|j| j as i8 - 8);
        let block = BlockQ6_K { ql, qh, scales, d: f16::from_f32(0.5) };
        let mut out = [0f32; QK_K];
        dequantize(&[block], &mut out);
        for (e, &v) in out.iter().enumerate() {
            let want = 0.5 * ((e / 16) as f32 - 8.0) * ((e % 64) as f32 - 32.0);
            assert_eq!(v, want, "element {e}");
        }
        // d is the last field: bytes 208..210 hold f16 0.5 = 0x3800
        assert_eq!(&bytemuck::bytes_of(&block)[192..210][..2], &[0xF8, 0xF9]);
        assert_eq!(&bytemuck::bytes_of(&block)[208..210], &[0x00, 0x38]);
    }

    #[test]
    fn zero_superblock_quantizes_to_zero_bytes() {
        let x = [0f32; QK_K];
        let mut out = [BlockQ6_K { ql: [1; 128], qh: [1; 64], scales: [1; 16], d: f16::ONE }];
        quantize(&x, &mut out);
        assert_eq!(out[0], bytemuck::Zeroable::zeroed());
    }
}
