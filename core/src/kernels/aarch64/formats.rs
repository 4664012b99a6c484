//! Per-format halves of the NEON kernels: unpacking one 32-column block of a tile into
//! signed bytes in the layout's own chunk order, and folding the block's exact integer
//! sums into f32 accumulators with the scalar twin's formula, operation for operation
//! (so the results match `scalar::TileDot` bit for bit, whatever the instruction set).

use std::arch::aarch64::*;

use super::super::pack::{
    ActQ8, HighBits, Nibbles, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K,
    TileQ8_0,
};
use super::vec::{f16x8, load_i8, load_u8, load_u8_half, u8x8_to_f32};

/// One 32-column block of 8 rows: `q[2 * c + h]` holds elements `4c..4c + 4` of rows
/// `4h..4h + 4`, row `4h + l` in 32-bit lane `l` (the packed layout's own order).
pub(super) type Quants = [int8x16_t; 16];

/// Exact integer dot products of one block with one token, rows `4h..4h + 4` in
/// `lo[h]` (elements 0..16) and `hi[h]` (elements 16..32).
#[derive(Clone, Copy)]
pub(super) struct Sums {
    pub lo: [int32x4_t; 2],
    pub hi: [int32x4_t; 2],
}

impl Sums {
    #[inline(always)]
    fn total(&self, h: usize) -> int32x4_t {
        // SAFETY: register-only NEON (baseline on aarch64).
        unsafe { vaddq_s32(self.lo[h], self.hi[h]) }
    }
}

/// f32 accumulators of 8 rows for one token (rows 0..4, 4..8).
pub(super) type Acc = [float32x4_t; 2];

/// A packed tile format as the NEON kernels see it.
pub(super) trait Format: Copy {
    /// 32-column blocks per tile.
    const COLS: usize;
    /// Whether `accumulate` reads `Sums::lo` and `Sums::hi` apart (else only their sum).
    const SPLIT: bool = false;
    /// Per-block constants shared by every token (f32 row scales, ...).
    type Col: Copy;
    /// Block `c`'s quants and constants.
    fn column(&self, c: usize) -> (Quants, Self::Col);
    /// `acc += block · act`, from the block's integer sums with the token.
    fn accumulate(col: &Self::Col, s: &Sums, a: &ActQ8, acc: &mut Acc);
}

/// Splits a `Nibbles` array into 16 registers of values 0..15.
#[inline(always)]
fn nibbles(qs: &Nibbles) -> Quants {
    let rows: &[[u8; 16]; 8] = bytemuck::cast_ref(qs);
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let mask = vdupq_n_u8(0x0F);
        let mut q = [vdupq_n_s8(0); 16];
        for k in 0..4 {
            for h in 0..2 {
                let v = load_u8(&rows[2 * k + h]);
                q[2 * k + h] = vreinterpretq_s8_u8(vandq_u8(v, mask));
                q[2 * (k + 4) + h] = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
            }
        }
        q
    }
}

/// Table indices spreading bytes `2p` and `2p + 1` of a register over 8 bytes each.
const SPREAD: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut p = 0;
    while p < 8 {
        let mut j = 0;
        while j < 16 {
            t[p][j] = (2 * p + j / 8) as u8;
            j += 1;
        }
        p += 1;
    }
    t
};

/// Adds the 5th bits (16) to 4-bit quants. Register `(c, h)` reads 16 consecutive bits
/// of `qh`: the u64 of vector `c % 4`, from bit `32 * (c / 4) + 16 * h`.
#[inline(always)]
fn add_high_bits(q: &mut Quants, qh: &HighBits) {
    let src: &[[u8; 16]; 2] = bytemuck::cast_ref(qh);
    let src = [load_u8(&src[0]), load_u8(&src[1])];
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let bits = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
        let sixteen = vdupq_n_u8(0x10);
        for c in 0..8 {
            for h in 0..2 {
                let pair = 4 * (c % 4) + 2 * (c / 4) + h;
                let spread = vqtbl1q_u8(src[pair / 8], load_u8(&SPREAD[pair % 8]));
                let high = vandq_u8(vtstq_u8(spread, bits), sixteen);
                q[2 * c + h] = vorrq_s8(q[2 * c + h], vreinterpretq_s8_u8(high));
            }
        }
    }
}

/// Loads 8-bit quants (already signed).
#[inline(always)]
fn bytes(qs: &[i8; 256]) -> Quants {
    let rows: &[[i8; 16]; 16] = bytemuck::cast_ref(qs);
    std::array::from_fn(|i| load_i8(&rows[i]))
}

/// Per-row `d * act.d` for both row halves.
#[inline(always)]
fn times(v: &Acc, ad: f32) -> Acc {
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe { [vmulq_n_f32(v[0], ad), vmulq_n_f32(v[1], ad)] }
}

/// `acc += (d * act.d) * (isum - offset * act.sum)`: Q4_0, Q5_0, Q8_0.
#[inline(always)]
fn accumulate_offset(d: &Acc, offset: i32, s: &Sums, a: &ActQ8, acc: &mut Acc) {
    // SAFETY: register-only NEON (baseline on aarch64); loads are bounds-checked.
    unsafe {
        let da = times(d, a.d);
        let off = vdupq_n_s32(offset.wrapping_mul(a.sum));
        for h in 0..2 {
            let isum = vcvtq_f32_s32(vsubq_s32(s.total(h), off));
            acc[h] = vaddq_f32(acc[h], vmulq_f32(da[h], isum));
        }
    }
}

/// `acc += (d * act.d) * isum + (m * act.d) * act.sum`: Q4_1, Q5_1.
#[inline(always)]
fn accumulate_min(d: &Acc, m: &Acc, s: &Sums, a: &ActQ8, acc: &mut Acc) {
    // SAFETY: register-only NEON (baseline on aarch64); loads are bounds-checked.
    unsafe {
        let (da, ma) = (times(d, a.d), times(m, a.d));
        let sum = a.sum as f32;
        for h in 0..2 {
            let isum = vcvtq_f32_s32(s.total(h));
            acc[h] = vaddq_f32(acc[h], vaddq_f32(vmulq_f32(da[h], isum), vmulq_n_f32(ma[h], sum)));
        }
    }
}

/// `acc += (scale * act.d) * isum - (min * act.d) * act.sum`: Q4_K, Q5_K.
#[inline(always)]
fn accumulate_k(col: &KCol, s: &Sums, a: &ActQ8, acc: &mut Acc) {
    // SAFETY: register-only NEON (baseline on aarch64); loads are bounds-checked.
    unsafe {
        let (sa, ma) = (times(&col.scale, a.d), times(&col.min, a.d));
        let sum = a.sum as f32;
        for h in 0..2 {
            let isum = vcvtq_f32_s32(s.total(h));
            acc[h] = vaddq_f32(acc[h], vsubq_f32(vmulq_f32(sa[h], isum), vmulq_n_f32(ma[h], sum)));
        }
    }
}

/// Row scales of a 32-block with a minimum.
#[derive(Clone, Copy)]
pub(super) struct MinCol {
    d: Acc,
    m: Acc,
}

/// Row scale and minimum of one block of a k-quant super-block (`d * sc`, `dmin * m`).
#[derive(Clone, Copy)]
pub(super) struct KCol {
    scale: Acc,
    min: Acc,
}

#[inline(always)]
fn k_col(d: &Acc, dmin: &Acc, sc: &[u8; 64], m: &[u8; 64], c: usize) -> KCol {
    let (sc, m): (&[[u8; 8]; 8], &[[u8; 8]; 8]) = (bytemuck::cast_ref(sc), bytemuck::cast_ref(m));
    let (sc, m) = (u8x8_to_f32(load_u8_half(&sc[c])), u8x8_to_f32(load_u8_half(&m[c])));
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        KCol {
            scale: [vmulq_f32(d[0], sc[0]), vmulq_f32(d[1], sc[1])],
            min: [vmulq_f32(dmin[0], m[0]), vmulq_f32(dmin[1], m[1])],
        }
    }
}

impl Format for TileQ4_0 {
    const COLS: usize = 1;
    type Col = Acc;
    #[inline(always)]
    fn column(&self, _: usize) -> (Quants, Acc) {
        (nibbles(&self.qs), f16x8(&self.d))
    }
    #[inline(always)]
    fn accumulate(d: &Acc, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_offset(d, 8, s, a, acc)
    }
}

impl Format for TileQ4_1 {
    const COLS: usize = 1;
    type Col = MinCol;
    #[inline(always)]
    fn column(&self, _: usize) -> (Quants, MinCol) {
        (nibbles(&self.qs), MinCol { d: f16x8(&self.d), m: f16x8(&self.m) })
    }
    #[inline(always)]
    fn accumulate(col: &MinCol, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_min(&col.d, &col.m, s, a, acc)
    }
}

impl Format for TileQ5_0 {
    const COLS: usize = 1;
    type Col = Acc;
    #[inline(always)]
    fn column(&self, _: usize) -> (Quants, Acc) {
        let mut q = nibbles(&self.qs);
        add_high_bits(&mut q, &self.qh);
        (q, f16x8(&self.d))
    }
    #[inline(always)]
    fn accumulate(d: &Acc, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_offset(d, 16, s, a, acc)
    }
}

impl Format for TileQ5_1 {
    const COLS: usize = 1;
    type Col = MinCol;
    #[inline(always)]
    fn column(&self, _: usize) -> (Quants, MinCol) {
        let mut q = nibbles(&self.qs);
        add_high_bits(&mut q, &self.qh);
        (q, MinCol { d: f16x8(&self.d), m: f16x8(&self.m) })
    }
    #[inline(always)]
    fn accumulate(col: &MinCol, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_min(&col.d, &col.m, s, a, acc)
    }
}

impl Format for TileQ8_0 {
    const COLS: usize = 1;
    type Col = Acc;
    #[inline(always)]
    fn column(&self, _: usize) -> (Quants, Acc) {
        (bytes(&self.qs), f16x8(&self.d))
    }
    #[inline(always)]
    fn accumulate(d: &Acc, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_offset(d, 0, s, a, acc)
    }
}

impl Format for TileQ4_K {
    const COLS: usize = 8;
    type Col = KCol;
    #[inline(always)]
    fn column(&self, c: usize) -> (Quants, KCol) {
        let col = k_col(&f16x8(&self.d), &f16x8(&self.dmin), &self.sc, &self.m, c);
        (nibbles(&self.qs[c]), col)
    }
    #[inline(always)]
    fn accumulate(col: &KCol, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_k(col, s, a, acc)
    }
}

impl Format for TileQ5_K {
    const COLS: usize = 8;
    type Col = KCol;
    #[inline(always)]
    fn column(&self, c: usize) -> (Quants, KCol) {
        let col = k_col(&f16x8(&self.d), &f16x8(&self.dmin), &self.sc, &self.m, c);
        let mut q = nibbles(&self.qs[c]);
        add_high_bits(&mut q, &self.qh[c]);
        (q, col)
    }
    #[inline(always)]
    fn accumulate(col: &KCol, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        accumulate_k(col, s, a, acc)
    }
}

/// Q6_K block constants: row scales `d` and the signed 16-element scales as i32.
#[derive(Clone, Copy)]
pub(super) struct Q6Col {
    d: Acc,
    /// Scales of elements 0..16 (`lo`) and 16..32 (`hi`), rows 0..4 and 4..8.
    lo: [int32x4_t; 2],
    hi: [int32x4_t; 2],
}

impl Format for TileQ6_K {
    const COLS: usize = 8;
    const SPLIT: bool = true;
    type Col = Q6Col;
    #[inline(always)]
    fn column(&self, c: usize) -> (Quants, Q6Col) {
        let sc: &[[i8; 16]; 8] = bytemuck::cast_ref(&self.sc);
        let sc = load_i8(&sc[c]);
        // SAFETY: register-only NEON (baseline on aarch64).
        let col = unsafe {
            let (lo, hi) = (vmovl_s8(vget_low_s8(sc)), vmovl_high_s8(sc));
            Q6Col {
                d: f16x8(&self.d),
                lo: [vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo)],
                hi: [vmovl_s16(vget_low_s16(hi)), vmovl_high_s16(hi)],
            }
        };
        (bytes(&self.qs[c]), col)
    }
    #[inline(always)]
    fn accumulate(col: &Q6Col, s: &Sums, a: &ActQ8, acc: &mut Acc) {
        let da = times(&col.d, a.d);
        for h in 0..2 {
            // SAFETY: register-only NEON (baseline on aarch64).
            unsafe {
                let isum = vmlaq_s32(vmulq_s32(col.lo[h], s.lo[h]), col.hi[h], s.hi[h]);
                acc[h] = vaddq_f32(acc[h], vmulq_f32(da[h], vcvtq_f32_s32(isum)));
            }
        }
    }
}
