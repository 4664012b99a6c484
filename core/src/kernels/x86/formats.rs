//! The per-format halves of the integer kernels: how one 32-column block ("column") of a
//! tile becomes dot-product operands (`prepare`), and how those meet a few tokens'
//! activations (`accumulate`). Each reproduces the integer sum of its scalar twin in
//! `scalar.rs` exactly and applies the same float formula with the same roundings (no
//! fused multiply-adds, same association), so the results are bit-identical to it: the
//! fast path gives the same answer on every CPU.
//!
//! Vectors hold `S::GROUPS` groups of 8 rows; `prepare` takes one tile per group (the
//! same tile twice when a group has no partner) and builds all of them at once.
//!
//! The i16 bounds that decide how many AVX2 `vpmaddubsw` steps are chained before
//! widening assume activation quants in -127..=127, as `quantize_act` produces, and
//! weights as `pack::pack` stores them. One step adds at most 2·|u|·127 per i16:
//! 4-bit 2·15·127 (8 steps fit), 5-bit 2·31·127 (4 fit), Q6_K's |q| ≤ 32: 2·32·127 (4
//! fit), Q8_0's |q| ≤ 128: 2·128·127 = 32512 (1 fits).
//!
//! Vector operations stay out of closures (`array::map`, `from_fn`, iterator adapters):
//! a closure is a function of its own without the caller's target features, and when
//! LLVM does not inline it, every intrinsic in it becomes a call.

use half::f16;

use super::isa::{Fvec, Isa, Ivec, Simd};
use crate::kernels::pack::{
    ActQ8, HighBits, Nibbles, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K,
    TileQ8_0,
};

/// A packed tile format the x86 kernels take.
pub trait Format: Copy {
    /// 32-element columns per tile.
    const COLS: usize;
    /// One column's weights as dot operands and factors (registers, or a scratch buffer
    /// reused by every token of a batch).
    type Col<S: Simd>: Copy;
    /// Column `c` of the tiles (one per group of the vector).
    fn prepare<I: Isa>(isa: I, tiles: [&Self; 2], c: usize) -> Self::Col<I::S>;
    /// `acc[t] += W · act[t]` for this column's rows and `NT` tokens (`act[t]` is the
    /// token's activation block for this column).
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &Self::Col<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    );
}

/// Unsigned operands of a column and one f32 factor per row.
#[derive(Clone, Copy)]
pub struct UCol1<S: Simd> {
    u: [S::I; 8],
    f: S::F,
}

/// Unsigned operands of a column and two f32 factors per row.
#[derive(Clone, Copy)]
pub struct UCol2<S: Simd> {
    u: [S::I; 8],
    f: [S::F; 2],
}

/// Signed weights: |w| as the unsigned operand and w for its signs (AVX2), or w + 128
/// as the unsigned operand (VNNI, `w` unused).
#[derive(Clone, Copy)]
pub struct SCol<S: Simd> {
    u: [S::I; 8],
    w: [S::I; 8],
    d: S::F,
}

/// Q6_K: |w| and w, and the two 16-element halves' scales as i16 pairs and as i32.
#[derive(Clone, Copy)]
pub struct Q6Col<S: Simd> {
    u: [S::I; 8],
    w: [S::I; 8],
    sc16: [S::I; 2],
    sc32: [S::I; 2],
    d: S::F,
}

/// The 8 chunks of `Nibbles` arrays as bytes 0..16: chunk k is in the low nibbles of
/// vector k (k < 4) or the high nibbles of vector k - 4.
#[inline(always)]
fn nibbles<S: Simd>(v: S, qs: [&Nibbles; 2]) -> [S::I; 8] {
    let q: [&[[u8; 32]; 4]; 2] = qs.map(bytemuck::cast_ref);
    let low = v.splat_i8(0x0F);
    let mut u = [v.zero(); 8];
    for k in 0..4 {
        let x = v.load([&q[0][k], &q[1][k]]);
        u[k] = v.and(x, low);
        u[k + 4] = v.and(v.srli16_4(x), low);
    }
    u
}

/// Adds the 5th bits (as 16) to chunks from `nibbles`.
#[inline(always)]
fn with_high_bits<S: Simd>(v: S, qh: [&HighBits; 2], mut u: [S::I; 8]) -> [S::I; 8] {
    let h: [&[[u8; 4]; 8]; 2] = qh.map(bytemuck::cast_ref);
    let bits = |i: usize| h.map(|h| u32::from_le_bytes(h[i]));
    for k in 0..4 {
        u[k] = v.or(u[k], v.bits_to_16s(bits(2 * k)));
        u[k + 4] = v.or(u[k + 4], v.bits_to_16s(bits(2 * k + 1)));
    }
    u
}

/// The 8 chunks of `Bytes` arrays (vector k is chunk k).
#[inline(always)]
fn bytes<S: Simd>(v: S, qs: [&[i8; 256]; 2]) -> [S::I; 8] {
    let q: [&[[u8; 32]; 8]; 2] = qs.map(bytemuck::cast_ref);
    let mut w = [v.zero(); 8];
    for (k, w) in w.iter_mut().enumerate() {
        *w = v.load([&q[0][k], &q[1][k]]);
    }
    w
}

/// `Σ_k u[k] · act[t] chunk k` per row, minus `offset · act[t].sum`: one i32 per row.
/// On AVX2, `FLUSH` chunks are chained in i16 before widening (see the module docs).
#[inline(always)]
fn dot_unsigned<I: Isa, const NT: usize, const FLUSH: usize>(
    isa: I,
    u: &[Ivec<I>; 8],
    act: &[&ActQ8; NT],
    offset: i32,
) -> [Ivec<I>; NT] {
    let v = isa.simd();
    let mut init = [v.zero(); NT];
    if offset != 0 {
        for t in 0..NT {
            init[t] = v.splat_i32(-offset * act[t].sum);
        }
    }
    if I::WIDE {
        // Chain c takes chunks k with k % CHAINS == c.
        let mut acc = [init, [v.zero(); NT]];
        for (k, &uk) in u.iter().enumerate() {
            let c = k % I::CHAINS;
            for t in 0..NT {
                acc[c][t] = isa.step(acc[c][t], uk, v.chunk(&act[t].qs, k));
            }
        }
        let [mut sum, second] = acc;
        if I::CHAINS > 1 {
            for (s, &b) in sum.iter_mut().zip(&second) {
                *s = v.add_i32(*s, b);
            }
        }
        sum
    } else {
        let mut acc = init;
        let mut part = [v.zero(); NT];
        for (k, &uk) in u.iter().enumerate() {
            for t in 0..NT {
                part[t] = isa.step(part[t], uk, v.chunk(&act[t].qs, k));
            }
            if (k + 1) % FLUSH == 0 {
                for t in 0..NT {
                    acc[t] = v.add_i32(acc[t], isa.widen(part[t]));
                    part[t] = v.zero();
                }
            }
        }
        acc
    }
}

/// Signed chunks as `dot_signed` takes them: w + 128 (VNNI) or |w| (AVX2), and w.
#[inline(always)]
fn signed_operands<I: Isa>(isa: I, w: [Ivec<I>; 8]) -> ([Ivec<I>; 8], [Ivec<I>; 8]) {
    let v = isa.simd();
    let mut u = w;
    for u in &mut u {
        // w + 128 (mod 256) is w's bit pattern with the top bit flipped.
        *u = if I::WIDE { v.xor(*u, v.splat_i8(i8::MIN)) } else { v.abs_i8(*u) };
    }
    (u, w)
}

/// `Σ_k w[k] · act[t] chunk k` per row for signed weights from `signed_operands`.
#[inline(always)]
fn dot_signed<I: Isa, const NT: usize>(
    isa: I,
    u: &[Ivec<I>; 8],
    w: &[Ivec<I>; 8],
    act: &[&ActQ8; NT],
) -> [Ivec<I>; NT] {
    let v = isa.simd();
    if I::WIDE {
        // Σ (w + 128) a - 128 Σ a.
        dot_unsigned::<I, NT, 8>(isa, u, act, 128)
    } else {
        let mut acc = [v.zero(); NT];
        for k in 0..8 {
            for t in 0..NT {
                let s = v.negate_where(v.chunk(&act[t].qs, k), w[k]);
                acc[t] = v.add_i32(acc[t], isa.widen(isa.step(v.zero(), u[k], s)));
            }
        }
        acc
    }
}

/// `acc[t] += (d · a.d) · isum[t]`, rounded as the scalar kernel rounds it.
#[inline(always)]
fn scale<S: Simd, const NT: usize>(
    v: S,
    d: S::F,
    isum: [S::I; NT],
    act: &[&ActQ8; NT],
    acc: &mut [S::F; NT],
) {
    for t in 0..NT {
        acc[t] = v.add_f(acc[t], v.mul_f(v.mul_f(d, v.splat_f(act[t].d)), v.to_f(isum[t])));
    }
}

/// `acc[t] += (d · a.d) · isum[t] ± (m · a.d) · a.sum` (`+` for Q4_1/Q5_1 minimums,
/// `-` for the k-quants' subtracted minimums), rounded as the scalar kernel rounds it.
#[inline(always)]
fn scale_min<S: Simd, const NT: usize, const SUBTRACT: bool>(
    v: S,
    d: S::F,
    m: S::F,
    isum: [S::I; NT],
    act: &[&ActQ8; NT],
    acc: &mut [S::F; NT],
) {
    for t in 0..NT {
        let ad = v.splat_f(act[t].d);
        let scaled = v.mul_f(v.mul_f(d, ad), v.to_f(isum[t]));
        let min = v.mul_f(v.mul_f(m, ad), v.splat_f(act[t].sum as f32));
        let term = if SUBTRACT { v.sub_f(scaled, min) } else { v.add_f(scaled, min) };
        acc[t] = v.add_f(acc[t], term);
    }
}

fn pair<T, U>(tiles: [&T; 2], f: impl Fn(&T) -> &U) -> [&U; 2] {
    [f(tiles[0]), f(tiles[1])]
}

impl Format for TileQ4_0 {
    const COLS: usize = 1;
    type Col<S: Simd> = UCol1<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], _c: usize) -> UCol1<I::S> {
        let v = isa.simd();
        UCol1 { u: nibbles(v, pair(t, |t| &t.qs)), f: v.f16x8(pair(t, |t| &t.d)) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol1<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act, 8);
        scale(isa.simd(), col.f, isum, &act, acc);
    }
}

impl Format for TileQ4_1 {
    const COLS: usize = 1;
    type Col<S: Simd> = UCol2<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], _c: usize) -> UCol2<I::S> {
        let v = isa.simd();
        UCol2 {
            u: nibbles(v, pair(t, |t| &t.qs)),
            f: [v.f16x8(pair(t, |t| &t.d)), v.f16x8(pair(t, |t| &t.m))],
        }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol2<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act, 0);
        scale_min::<_, NT, false>(isa.simd(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ5_0 {
    const COLS: usize = 1;
    type Col<S: Simd> = UCol1<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], _c: usize) -> UCol1<I::S> {
        let v = isa.simd();
        let u = with_high_bits(v, pair(t, |t| &t.qh), nibbles(v, pair(t, |t| &t.qs)));
        UCol1 { u, f: v.f16x8(pair(t, |t| &t.d)) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol1<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act, 16);
        scale(isa.simd(), col.f, isum, &act, acc);
    }
}

impl Format for TileQ5_1 {
    const COLS: usize = 1;
    type Col<S: Simd> = UCol2<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], _c: usize) -> UCol2<I::S> {
        let v = isa.simd();
        let u = with_high_bits(v, pair(t, |t| &t.qh), nibbles(v, pair(t, |t| &t.qs)));
        UCol2 { u, f: [v.f16x8(pair(t, |t| &t.d)), v.f16x8(pair(t, |t| &t.m))] }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol2<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act, 0);
        scale_min::<_, NT, false>(isa.simd(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ8_0 {
    const COLS: usize = 1;
    type Col<S: Simd> = SCol<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], _c: usize) -> SCol<I::S> {
        let v = isa.simd();
        let (u, w) = signed_operands(isa, bytes(v, pair(t, |t| &t.qs)));
        SCol { u, w, d: v.f16x8(pair(t, |t| &t.d)) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &SCol<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_signed::<I, NT>(isa, &col.u, &col.w, &act);
        scale(isa.simd(), col.d, isum, &act, acc);
    }
}

/// Column `c`'s scale and minimum factors of k-quant super-blocks: `d · sc`, `dmin · m`.
#[inline(always)]
fn k_factors<S: Simd>(
    v: S,
    d: [&[f16; 8]; 2],
    dmin: [&[f16; 8]; 2],
    sc: [&[u8; 64]; 2],
    m: [&[u8; 64]; 2],
    c: usize,
) -> [S::F; 2] {
    let sc: [&[[u8; 8]; 8]; 2] = sc.map(bytemuck::cast_ref);
    let m: [&[[u8; 8]; 8]; 2] = m.map(bytemuck::cast_ref);
    let scale = v.mul_f(v.f16x8(d), v.to_f(v.u8x8_i32([&sc[0][c], &sc[1][c]])));
    let min = v.mul_f(v.f16x8(dmin), v.to_f(v.u8x8_i32([&m[0][c], &m[1][c]])));
    [scale, min]
}

impl Format for TileQ4_K {
    const COLS: usize = 8;
    type Col<S: Simd> = UCol2<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], c: usize) -> UCol2<I::S> {
        let v = isa.simd();
        let f = k_factors(
            v,
            pair(t, |t| &t.d),
            pair(t, |t| &t.dmin),
            pair(t, |t| &t.sc),
            pair(t, |t| &t.m),
            c,
        );
        UCol2 { u: nibbles(v, pair(t, |t| &t.qs[c])), f }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol2<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 8>(isa, &col.u, &act, 0);
        scale_min::<_, NT, true>(isa.simd(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ5_K {
    const COLS: usize = 8;
    type Col<S: Simd> = UCol2<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], c: usize) -> UCol2<I::S> {
        let v = isa.simd();
        let f = k_factors(
            v,
            pair(t, |t| &t.d),
            pair(t, |t| &t.dmin),
            pair(t, |t| &t.sc),
            pair(t, |t| &t.m),
            c,
        );
        let u = with_high_bits(v, pair(t, |t| &t.qh[c]), nibbles(v, pair(t, |t| &t.qs[c])));
        UCol2 { u, f }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &UCol2<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let isum = dot_unsigned::<I, NT, 4>(isa, &col.u, &act, 0);
        scale_min::<_, NT, true>(isa.simd(), col.f[0], col.f[1], isum, &act, acc);
    }
}

impl Format for TileQ6_K {
    const COLS: usize = 8;
    type Col<S: Simd> = Q6Col<S>;

    #[inline(always)]
    fn prepare<I: Isa>(isa: I, t: [&Self; 2], c: usize) -> Q6Col<I::S> {
        let v = isa.simd();
        // Sign and magnitude for every ISA: |q| ≤ 32 lets AVX2 chain a half's 4 steps
        // in i16, and no per-half activation sums are needed.
        let w = bytes(v, pair(t, |t| &t.qs[c]));
        let sc: [&[[i8; 8]; 16]; 2] = pair(t, |t| &t.sc).map(bytemuck::cast_ref);
        let sc32 = [
            v.i8x8_i32([&sc[0][2 * c], &sc[1][2 * c]]),
            v.i8x8_i32([&sc[0][2 * c + 1], &sc[1][2 * c + 1]]),
        ];
        let low16 = v.splat_i32(0xFFFF);
        let mut sc16 = sc32;
        for s in &mut sc16 {
            *s = v.or(v.and(*s, low16), v.slli32_16(*s));
        }
        let mut u = w;
        for u in &mut u {
            *u = v.abs_i8(*u);
        }
        Q6Col { u, w, sc16, sc32, d: v.f16x8(pair(t, |t| &t.d)) }
    }

    #[inline(always)]
    fn accumulate<I: Isa, const NT: usize>(
        isa: I,
        col: &Q6Col<I::S>,
        act: [&ActQ8; NT],
        acc: &mut [Fvec<I>; NT],
    ) {
        let v = isa.simd();
        let mut isum = [v.zero(); NT];
        for h in 0..2 {
            let mut part = [v.zero(); NT];
            for k in 4 * h..4 * h + 4 {
                for t in 0..NT {
                    let s = v.negate_where(v.chunk(&act[t].qs, k), col.w[k]);
                    part[t] = isa.step(part[t], col.u[k], s);
                }
            }
            for t in 0..NT {
                isum[t] = v.add_i32(isum[t], isa.widen_scaled(part[t], col.sc16[h], col.sc32[h]));
            }
        }
        scale(v, col.d, isum, &act, acc);
    }
}
