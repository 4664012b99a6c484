//! The per-format halves of the integer kernels: how one 32-column block ("column") of a
//! tile becomes dot-product operands (`prepare`), and how those meet a few tokens'
//! activations (`accumulate`). Each reproduces the integer sum of its scalar twin in
//! `scalar.rs` exactly and applies the same float formula with the same roundings (no
//! fused multiply-adds, same association), so the results are bit-identical to it: the
//! fast path gives the same answer on every CPU.
//!
//! The i16 bounds that decide how many AVX2 `vpmaddubsw` steps are chained before
//! widening assume activation quants in -127..=127, as `quantize_act` produces, and
//! weights as `pack::pack` stores them. One step adds at most 2·|u|·127 per i16:
//! 4-bit 2·15·127 (8 steps fit), 5-bit 2·31·127 (4 fit), Q6_K's |q| ≤ 32: 2·32·127 (4
//! fit), Q8_0's |q| ≤ 128: 2·128·127 = 32512 (1 fits).

use std::arch::x86_64::{__m256, __m256i};

use bytemuck::{Pod, Zeroable};

use super::isa::{Avx2, Isa};
use crate::kernels::pack::{
    ActQ8, HighBits, Nibbles, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K, TileQ8_0,
};

/// A packed tile format the x86 kernels take.
pub trait Format: Copy {
    /// 32-element columns per tile.
    const COLS: usize;
    /// One column's weights as dot operands and factors (registers, or a scratch buffer
    /// reused by every token of a batch).
    type Col: Copy + Pod;
    /// Column `c` of `tile`.
    fn prepare<I: Isa>(isa: I, tile: &Self, c: usize) -> Self::Col;
    /// `acc[t] += W · act[t]` for this column's 8 rows and `NT` tokens (`act[t]` is the
    /// token's activation block for this column).
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &Self::Col, act: [&ActQ8; NT], acc: &mut [__m256; NT]);
}

/// Unsigned 8-row operands of a column and one f32 factor per row.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct UCol1 {
    u: [__m256i; 8],
    f: __m256,
}

/// Unsigned 8-row operands of a column and two f32 factors per row.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct UCol2 {
    u: [__m256i; 8],
    f: [__m256; 2],
}

/// Signed weights: |w| as the unsigned operand and w for its signs (AVX2), or w + 128
/// as the unsigned operand (VNNI, `w` unused).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct SCol {
    u: [__m256i; 8],
    w: [__m256i; 8],
    d: __m256,
}

/// Q6_K: signed weights as in `SCol`, and the two 16-element halves' scales as i16
/// pairs and as i32.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Q6Col {
    u: [__m256i; 8],
    w: [__m256i; 8],
    sc16: [__m256i; 2],
    sc32: [__m256i; 2],
    d: __m256,
}

/// The 8 chunks of a `Nibbles` array as bytes 0..16: chunk k is in the low nibbles of
/// vector k (k < 4) or the high nibbles of vector k - 4.
#[inline(always)]
fn nibbles(v: Avx2, qs: &Nibbles) -> [__m256i; 8] {
    let q: &[[u8; 32]; 4] = bytemuck::cast_ref(qs);
    let low = v.splat_i8(0x0F);
    let mut u = [v.zero(); 8];
    for k in 0..4 {
        let x = v.load(&q[k]);
        u[k] = v.and(x, low);
        u[k + 4] = v.and(v.srli16_4(x), low);
    }
    u
}

/// Adds the 5th bits (as 16) to chunks from `nibbles`.
#[inline(always)]
fn with_high_bits(v: Avx2, qh: &HighBits, mut u: [__m256i; 8]) -> [__m256i; 8] {
    let h: &[[u8; 4]; 8] = bytemuck::cast_ref(qh);
    for k in 0..4 {
        u[k] = v.or(u[k], v.bits_to_16s(u32::from_le_bytes(h[2 * k])));
        u[k + 4] = v.or(u[k + 4], v.bits_to_16s(u32::from_le_bytes(h[2 * k + 1])));
    }
    u
}

/// The 8 chunks of a `Bytes` array (vector k is chunk k).
#[inline(always)]
fn bytes(v: Avx2, qs: &[i8; 256]) -> [__m256i; 8] {
    let q: &[[u8; 32]; 8] = bytemuck::cast_ref(qs);
    std::array::from_fn(|k| v.load(&q[k]))
}

/// Signed chunks as the unsigned operand and signs that `dot_signed` expects.
#[inline(always)]
fn signed_operands<I: Isa>(isa: I, w: [__m256i; 8]) -> ([__m256i; 8], [__m256i; 8]) {
    let v = isa.avx2();
    if I::WIDE {
        // w + 128 (mod 256) is w's bit pattern with the top bit flipped.
        let flip = v.splat_i8(i8::MIN);
        (w.map(|x| v.xor(x, flip)), w)
    } else {
        (w.map(|x| v.abs_i8(x)), w)
    }
}

/// `Σ_k u[k] · act[t] chunk k` per row, over chunks `K0..K0 + n`: one i32 per row.
/// On AVX2, `FLUSH` chunks are chained in i16 before widening (see the module docs).
#[inline(always)]
fn dot_unsigned<I: Isa, const NT: usize, const FLUSH: usize>(
    isa: I,
    u: &[__m256i; 8],
    act: &[&ActQ8; NT],
) -> [__m256i; NT] {
    let v = isa.avx2();
    let mut acc = [v.zero(); NT];
    let mut part = [v.zero(); NT];
    for k in 0..8 {
        for t in 0..NT {
            let s = v.chunk(&act[t].qs, k);
            if I::WIDE {
                acc[t] = isa.step(acc[t], u[k], s);
            } else {
                part[t] = isa.step(part[t], u[k], s);
            }
        }
        if !I::WIDE && (k + 1) % FLUSH == 0 {
            for t in 0..NT {
                acc[t] = v.add_i32(acc[t], isa.widen(part[t]));
                part[t] = v.zero();
            }
        }
    }
    acc
}

/// `Σ_k w[k] · act[t] chunk k` per row for signed weights from `signed_operands`.
#[inline(always)]
fn dot_signed<I: Isa, const NT: usize>(isa: I, u: &[__m256i; 8], w: &[__m256i; 8], act: &[&ActQ8; NT]) -> [__m256i; NT] {
    let v = isa.avx2();
    if I::WIDE {
        // Σ (w + 128) a - 128 Σ a.
        let acc = dot_unsigned::<I, NT, 8>(isa, u, act);
        std::array::from_fn(|t| v.sub_i32(acc[t], v.splat_i32(128 * act[t].sum)))
    } else {
        let mut acc = [v.zero(); NT];
        for k in 0..8 {
            for t in 0..NT {
                let s = v.sign_i8(v.chunk(&act[t].qs, k), w[k]);
                acc[t] = v.add_i32(acc[t], isa.widen(isa.step(v.zero(), u[k], s)));
            }
        }
        acc
    }
}

/// `acc[t] += (d · a.d) · (isum[t] - offset · a.sum)`, rounded as the scalar kernel
/// rounds it (no fused multiply-add), so results match it bit for bit.
#[inline(always)]
fn scale_offset<const NT: usize>(
    v: Avx2,
    d: __m256,
    offset: i32,
    isum: [__m256i; NT],
    act: &[&ActQ8; NT],
    acc: &mut [__m256; NT],
) {
    for t in 0..NT {
        let i = if offset == 0 { isum[t] } else { v.sub_i32(isum[t], v.splat_i32(offset * act[t].sum)) };
        acc[t] = v.add_f(acc[t], v.mul_f(v.mul_f(d, v.splat_f(act[t].d)), v.to_f(i)));
    }
}

/// `acc[t] += (d · a.d) · isum[t] ± (m · a.d) · a.sum` (`+` for Q4_1/Q5_1 minimums,
/// `-` for the k-quants' subtracted minimums), rounded as the scalar kernel rounds it.
#[inline(always)]
fn scale_min<const NT: usize, const SUBTRACT: bool>(
    v: Avx2,
    d: __m256,
    m: __m256,
    isum: [__m256i; NT],
    act: &[&ActQ8; NT],
    acc: &mut [__m256; NT],
) {
    for t in 0..NT {
        let ad = v.splat_f(act[t].d);
        let scaled = v.mul_f(v.mul_f(d, ad), v.to_f(isum[t]));
        let min = v.mul_f(v.mul_f(m, ad), v.splat_f(act[t].sum as f32));
        let term = if SUBTRACT { v.sub_f(scaled, min) } else { v.add_f(scaled, min) };
        acc[t] = v.add_f(acc[t], term);
    }
}

impl Format for TileQ4_0 {
    const COLS: usize = 1;
    type Col = UCol1;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, _c: usize) -> UCol1 {
        let v = isa.avx2();
        UCol1 { u: nibbles(v, &tile.qs), f: v.f16x8(&tile.d) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol1, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act);
        scale_offset(isa.avx2(), col.f, 8, isum, &act, acc);
    }
}

impl Format for TileQ4_1 {
    const COLS: usize = 1;
    type Col = UCol2;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, _c: usize) -> UCol2 {
        let v = isa.avx2();
        UCol2 { u: nibbles(v, &tile.qs), f: [v.f16x8(&tile.d), v.f16x8(&tile.m)] }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol2, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act);
        scale_min::<NT, false>(isa.avx2(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ5_0 {
    const COLS: usize = 1;
    type Col = UCol1;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, _c: usize) -> UCol1 {
        let v = isa.avx2();
        UCol1 { u: with_high_bits(v, &tile.qh, nibbles(v, &tile.qs)), f: v.f16x8(&tile.d) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol1, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act);
        scale_offset(isa.avx2(), col.f, 16, isum, &act, acc);
    }
}

impl Format for TileQ5_1 {
    const COLS: usize = 1;
    type Col = UCol2;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, _c: usize) -> UCol2 {
        let v = isa.avx2();
        let u = with_high_bits(v, &tile.qh, nibbles(v, &tile.qs));
        UCol2 { u, f: [v.f16x8(&tile.d), v.f16x8(&tile.m)] }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol2, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act);
        scale_min::<NT, false>(isa.avx2(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ8_0 {
    const COLS: usize = 1;
    type Col = SCol;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, _c: usize) -> SCol {
        let v = isa.avx2();
        let (u, w) = signed_operands(isa, bytes(v, &tile.qs));
        SCol { u, w, d: v.f16x8(&tile.d) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &SCol, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_signed::<I, NT>(isa, &col.u, &col.w, &act);
        scale_offset(isa.avx2(), col.d, 0, isum, &act, acc);
    }
}

/// Column `c`'s scale and minimum factors of a k-quant super-block: `d · sc`, `dmin · m`.
#[inline(always)]
fn k_factors(v: Avx2, d: &[half::f16; 8], dmin: &[half::f16; 8], sc: &[u8; 64], m: &[u8; 64], c: usize) -> [__m256; 2] {
    let sc: &[[u8; 8]; 8] = bytemuck::cast_ref(sc);
    let m: &[[u8; 8]; 8] = bytemuck::cast_ref(m);
    let scale = v.mul_f(v.f16x8(d), v.to_f(v.u8x8_i32(&sc[c])));
    let min = v.mul_f(v.f16x8(dmin), v.to_f(v.u8x8_i32(&m[c])));
    [scale, min]
}

impl Format for TileQ4_K {
    const COLS: usize = 8;
    type Col = UCol2;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, c: usize) -> UCol2 {
        let v = isa.avx2();
        UCol2 { u: nibbles(v, &tile.qs[c]), f: k_factors(v, &tile.d, &tile.dmin, &tile.sc, &tile.m, c) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol2, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act);
        scale_min::<NT, true>(isa.avx2(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ5_K {
    const COLS: usize = 8;
    type Col = UCol2;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, c: usize) -> UCol2 {
        let v = isa.avx2();
        let u = with_high_bits(v, &tile.qh[c], nibbles(v, &tile.qs[c]));
        UCol2 { u, f: k_factors(v, &tile.d, &tile.dmin, &tile.sc, &tile.m, c) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &UCol2, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act);
        scale_min::<NT, true>(isa.avx2(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ6_K {
    const COLS: usize = 8;
    type Col = Q6Col;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, tile: &Self, c: usize) -> Q6Col {
        let v = isa.avx2();
        // Sign and magnitude for both ISAs: |q| ≤ 32 lets AVX2 chain a half's 4 steps
        // in i16, and no per-half activation sums are needed.
        let w = bytes(v, &tile.qs[c]);
        let sc: &[[i8; 8]; 16] = bytemuck::cast_ref(&tile.sc);
        let sc32 = [v.i8x8_i32(&sc[2 * c]), v.i8x8_i32(&sc[2 * c + 1])];
        let low16 = v.splat_i32(0xFFFF);
        let sc16 = sc32.map(|s| v.or(v.and(s, low16), v.slli32_16(s)));
        Q6Col { u: w.map(|x| v.abs_i8(x)), w, sc16, sc32, d: v.f16x8(&tile.d) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(isa: I, col: &Q6Col, act: [&ActQ8; NT], acc: &mut [__m256; NT]) {
        let v = isa.avx2();
        let mut isum = [v.zero(); NT];
        for h in 0..2 {
            let mut part = [v.zero(); NT];
            for k in 4 * h..4 * h + 4 {
                for t in 0..NT {
                    let s = v.sign_i8(v.chunk(&act[t].qs, k), col.w[k]);
                    part[t] = isa.step(part[t], col.u[k], s);
                }
            }
            for t in 0..NT {
                isum[t] = v.add_i32(isum[t], isa.widen_scaled(part[t], col.sc16[h], col.sc32[h]));
            }
        }
        scale_offset(v, col.d, 0, isum, &act, acc);
    }
}
