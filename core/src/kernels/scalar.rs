//! The scalar reference kernels: plain Rust loops every SIMD kernel is tested against.
//! Integer sums are exact; each SIMD twin must reproduce them bit for bit and may only
//! differ in the order of the final f32 accumulation.

// Index loops over ROWS mirror the lanes of the SIMD twins; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use half::f16;

use super::pack::{
    self, ActQ8, Packed, ROWS, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K,
    TileQ6_K, TileQ8_0,
};
use super::{Kernels, PackedKernels};

pub(super) fn table() -> Kernels {
    Kernels {
        name: "scalar",
        dot_f32,
        quantize_act: pack::quantize_act,
        attn_scores,
        attn_values,
        attention: super::attention::attention_block,
        attention_segment: super::attention_decode::attention_segment,
        gated: super::activation::gated,
        packed: PackedKernels {
            q4_0: gemm::<TileQ4_0>,
            q4_1: gemm::<TileQ4_1>,
            q5_0: gemm::<TileQ5_0>,
            q5_1: gemm::<TileQ5_1>,
            q8_0: gemm::<TileQ8_0>,
            q4_k: gemm::<TileQ4_K>,
            q5_k: gemm::<TileQ5_K>,
            q6_k: gemm::<TileQ6_K>,
        },
    }
}

/// f32 dot product, accumulated in 8 independent lanes (so the compiler can keep
/// several sums in flight) and summed pairwise at the end.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for l in 0..8 {
            acc[l] += a[i * 8 + l] * b[i * 8 + l];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..a.len() {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Attention scores against transposed keys: an axpy per key channel, so every 8 or 16
/// slots are one vector multiply-add (written so the compiler vectorizes it; the SIMD
/// tables compile this same body for their instruction set).
#[inline(always)]
pub fn attn_scores(q: &[f32], hd: usize, kt: &[f32], stride: usize, n: usize, scores: &mut [f32]) {
    for (qg, sg) in q.chunks_exact(hd).zip(scores.chunks_exact_mut(n)) {
        sg.fill(0.0);
        for (d, &qd) in qg.iter().enumerate() {
            let row = &kt[d * stride..d * stride + n];
            for (s, &k) in sg.iter_mut().zip(row) {
                *s += qd * k;
            }
        }
    }
}

/// Probability-weighted sums of value rows.
#[inline(always)]
pub fn attn_values(p: &[f32], n: usize, v: &[f32], stride: usize, hd: usize, out: &mut [f32]) {
    for (pg, og) in p.chunks_exact(n).zip(out.chunks_exact_mut(hd)) {
        og.fill(0.0);
        for (s, &ps) in pg.iter().enumerate() {
            let row = &v[s * stride..s * stride + hd];
            for (o, &x) in og.iter_mut().zip(row) {
                *o += ps * x;
            }
        }
    }
}

/// One tile's contribution to 8 rows for one token.
pub trait TileDot: Copy {
    /// 32-element columns per tile.
    const COLS: usize;
    /// `acc[r] += row r of this tile · act`, `act` holding this tile's `COLS` blocks.
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]);
}

/// `out[t * ld + (r - rows.start)] = W[r] · act[t]` for groups `groups`, tokens
/// `0..n_tok` (`act` is token-major, `n_in / 32` blocks per token). Rows past `n_out`
/// are not written.
pub fn gemm<T: TileDot>(
    w: &Packed<T>,
    groups: Range<usize>,
    act: &[ActQ8],
    n_tok: usize,
    out: &mut [f32],
    ld: usize,
) {
    let nb = w.n_in / 32;
    let row0 = groups.start * ROWS;
    for g in groups {
        let tiles = w.group(g);
        let rows = ROWS.min(w.n_out - g * ROWS);
        for t in 0..n_tok {
            let a = &act[t * nb..(t + 1) * nb];
            let mut acc = [0.0f32; ROWS];
            for (j, tile) in tiles.iter().enumerate() {
                tile.dot(&a[j * T::COLS..(j + 1) * T::COLS], &mut acc);
            }
            let o = t * ld + g * ROWS - row0;
            out[o..o + rows].copy_from_slice(&acc[..rows]);
        }
    }
}

fn f(x: f16) -> f32 {
    x.to_f32()
}

/// Σ u(r, e) · a[e] over the 32 elements of a column, u unsigned.
fn dot_u(a: &ActQ8, q: impl Fn(usize) -> u8) -> i32 {
    (0..32).map(|e| q(e) as i32 * a.qs[e] as i32).sum()
}

impl TileDot for TileQ4_0 {
    const COLS: usize = 1;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        let a = &act[0];
        for r in 0..ROWS {
            let isum = dot_u(a, |e| pack::nibble(&self.qs, r, e)) - 8 * a.sum;
            acc[r] += (f(self.d[r]) * a.d) * isum as f32;
        }
    }
}

impl TileDot for TileQ4_1 {
    const COLS: usize = 1;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        let a = &act[0];
        for r in 0..ROWS {
            let isum = dot_u(a, |e| pack::nibble(&self.qs, r, e));
            acc[r] += (f(self.d[r]) * a.d) * isum as f32 + (f(self.m[r]) * a.d) * a.sum as f32;
        }
    }
}

fn q5(qs: &pack::Nibbles, qh: &pack::HighBits, r: usize, e: usize) -> u8 {
    pack::nibble(qs, r, e) | (pack::high_bit(qh, r, e) << 4)
}

impl TileDot for TileQ5_0 {
    const COLS: usize = 1;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        let a = &act[0];
        for r in 0..ROWS {
            let isum = dot_u(a, |e| q5(&self.qs, &self.qh, r, e)) - 16 * a.sum;
            acc[r] += (f(self.d[r]) * a.d) * isum as f32;
        }
    }
}

impl TileDot for TileQ5_1 {
    const COLS: usize = 1;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        let a = &act[0];
        for r in 0..ROWS {
            let isum = dot_u(a, |e| q5(&self.qs, &self.qh, r, e));
            acc[r] += (f(self.d[r]) * a.d) * isum as f32 + (f(self.m[r]) * a.d) * a.sum as f32;
        }
    }
}

impl TileDot for TileQ8_0 {
    const COLS: usize = 1;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        let a = &act[0];
        for r in 0..ROWS {
            let isum: i32 =
                (0..32).map(|e| pack::byte(&self.qs, r, e) as i32 * a.qs[e] as i32).sum();
            acc[r] += (f(self.d[r]) * a.d) * isum as f32;
        }
    }
}

impl TileDot for TileQ4_K {
    const COLS: usize = 8;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        for (c, a) in act.iter().enumerate() {
            for r in 0..ROWS {
                let isum = dot_u(a, |e| pack::nibble(&self.qs[c], r, e));
                let scale = f(self.d[r]) * self.sc[8 * c + r] as f32;
                let min = f(self.dmin[r]) * self.m[8 * c + r] as f32;
                acc[r] += (scale * a.d) * isum as f32 - (min * a.d) * a.sum as f32;
            }
        }
    }
}

impl TileDot for TileQ5_K {
    const COLS: usize = 8;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        for (c, a) in act.iter().enumerate() {
            for r in 0..ROWS {
                let isum = dot_u(a, |e| q5(&self.qs[c], &self.qh[c], r, e));
                let scale = f(self.d[r]) * self.sc[8 * c + r] as f32;
                let min = f(self.dmin[r]) * self.m[8 * c + r] as f32;
                acc[r] += (scale * a.d) * isum as f32 - (min * a.d) * a.sum as f32;
            }
        }
    }
}

impl TileDot for TileQ6_K {
    const COLS: usize = 8;
    fn dot(&self, act: &[ActQ8], acc: &mut [f32; ROWS]) {
        for (c, a) in act.iter().enumerate() {
            for r in 0..ROWS {
                let half = |h: usize| -> i32 {
                    (16 * h..16 * h + 16)
                        .map(|e| pack::byte(&self.qs[c], r, e) as i32 * a.qs[e] as i32)
                        .sum()
                };
                let isum =
                    self.sc[16 * c + r] as i32 * half(0) + self.sc[16 * c + 8 + r] as i32 * half(1);
                acc[r] += (f(self.d[r]) * a.d) * isum as f32;
            }
        }
    }
}
