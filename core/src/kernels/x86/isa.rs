//! CPU feature tokens, and the two traits the integer kernels are generic over: [`Simd`]
//! (vector width and element operations) and [`Isa`] (the u8 × i8 → i32 dot step).
//!
//! A token can only be obtained from runtime detection, so code holding one runs on a
//! CPU with those features. The trait implementations (the [`Isa`] ones below, the
//! [`Simd`] ones in `avx2.rs` and `avx512.rs`) are the only place the x86 kernels call
//! intrinsics; the kernels built on them are safe Rust.
//! All methods are `#[inline(always)]`: inlined into the `#[target_feature]` entry points
//! in `mod.rs`, each compiles to one instruction or a few.

use std::arch::x86_64::{__m256i, __m512i};

use half::f16;

/// Proof that the CPU has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// The token, if this CPU (and OS) supports AVX2, FMA and F16C.
    pub fn detect() -> Option<Self> {
        let ok = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        ok.then_some(Avx2(()))
    }
}

/// Proof that the CPU has [`Avx2`]'s features and AVX-VNNI (256-bit `vpdpbusd`).
#[derive(Clone, Copy, Debug)]
pub struct AvxVnni(Avx2);

impl AvxVnni {
    pub fn detect() -> Option<Self> {
        let base = Avx2::detect()?;
        is_x86_feature_detected!("avxvnni").then_some(AvxVnni(base))
    }
}

/// Proof that the CPU has [`Avx2`]'s features and AVX-512 F, BW, VL and VNNI.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(Avx2);

impl Avx512 {
    pub fn detect() -> Option<Self> {
        let base = Avx2::detect()?;
        let ok = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(Avx512(base))
    }

    pub fn avx2(self) -> Avx2 {
        self.0
    }
}

/// A vector width: one vector holds `GROUPS` groups of 8 rows (i32/f32 lanes, one per
/// row) or their 4-byte chunks (u8/i8 lanes).
///
/// Loads take one source per group; a 256-bit vector reads only the first.
pub trait Simd: Copy {
    const GROUPS: usize;
    type I: Copy;
    type F: Copy;

    fn zero(self) -> Self::I;
    fn zero_f(self) -> Self::F;
    fn splat_i8(self, x: i8) -> Self::I;
    fn splat_i32(self, x: i32) -> Self::I;
    fn splat_f(self, x: f32) -> Self::F;
    fn and(self, a: Self::I, b: Self::I) -> Self::I;
    fn or(self, a: Self::I, b: Self::I) -> Self::I;
    fn xor(self, a: Self::I, b: Self::I) -> Self::I;
    /// Each 16-bit lane shifted right by 4 (for high nibbles, masked afterwards).
    fn srli16_4(self, a: Self::I) -> Self::I;
    fn slli32_16(self, a: Self::I) -> Self::I;
    fn abs_i8(self, a: Self::I) -> Self::I;
    /// `a` negated in the byte lanes where `s < 0`. Where `s == 0` the lane may be zeroed
    /// or kept: callers multiply it by |s| = 0.
    fn negate_where(self, a: Self::I, s: Self::I) -> Self::I;
    fn add_i32(self, a: Self::I, b: Self::I) -> Self::I;
    fn mullo_i32(self, a: Self::I, b: Self::I) -> Self::I;
    fn to_f(self, a: Self::I) -> Self::F;
    fn add_f(self, a: Self::F, b: Self::F) -> Self::F;
    fn sub_f(self, a: Self::F, b: Self::F) -> Self::F;
    fn mul_f(self, a: Self::F, b: Self::F) -> Self::F;

    /// 32 bytes per group.
    fn load(self, p: [&[u8; 32]; 2]) -> Self::I;
    /// 8 halves per group, widened to f32 (exact).
    fn f16x8(self, p: [&[f16; 8]; 2]) -> Self::F;
    /// 8 unsigned bytes per group, zero-extended to i32 lanes.
    fn u8x8_i32(self, p: [&[u8; 8]; 2]) -> Self::I;
    /// 8 signed bytes per group, sign-extended to i32 lanes.
    fn i8x8_i32(self, p: [&[i8; 8]; 2]) -> Self::I;
    /// Bit `j` of `bits[g]` as 16 in byte `j` of group `g` (0 where clear).
    fn bits_to_16s(self, bits: [u32; 2]) -> Self::I;
    /// The 4 bytes at `4k..4k + 4` of `qs` in every i32 lane: one chunk of activations
    /// against one chunk of each row.
    #[inline(always)]
    fn chunk(self, qs: &[i8; 32], k: usize) -> Self::I {
        let q: &[[u8; 4]; 8] = bytemuck::cast_ref(qs);
        self.splat_i32(i32::from_le_bytes(q[k]))
    }
    /// Writes the first `rows` lanes (at most `8 * GROUPS`) at `out[at..]`.
    fn store_rows(self, out: &mut [f32], at: usize, rows: usize, v: Self::F);
    /// Writes the first `rows[g]` lanes of each group `g` at `out[at[g]..]`.
    fn store_groups(self, out: &mut [f32], at: [usize; 2], rows: [usize; 2], v: Self::F);
}

/// The u8 × i8 → i32 dot step, four bytes per i32 lane, that the kernels are generic over.
///
/// `step` accumulates into a "partial" register; `widen` turns a partial into one i32 per
/// lane. With `vpmaddubsw` (AVX2) the partial holds saturating i16 pair sums, so callers
/// chain only as many steps as provably fit in i16 before widening; with `vpdpbusd`
/// (VNNI) the partial is already i32 and `widen` is free.
pub trait Isa: Copy {
    type S: Simd;
    /// Whether partials are i32 (no i16 bound, widening costs nothing).
    const WIDE: bool;
    /// Independent accumulation chains per token: enough to hide the latency of
    /// `vpdpbusd`, whose result feeds the next step of the same chain.
    const CHAINS: usize;
    fn simd(self) -> Self::S;
    /// `p + Σ_{4 bytes} u · s` per lane (u unsigned, s signed).
    fn step(self, p: Ivec<Self>, u: Ivec<Self>, s: Ivec<Self>) -> Ivec<Self>;
    /// A partial as one i32 per lane.
    fn widen(self, p: Ivec<Self>) -> Ivec<Self>;
    /// A partial as one i32 per lane, times a per-lane scale given both as i16 (in both
    /// halves of the lane) and as i32.
    fn widen_scaled(self, p: Ivec<Self>, sc16: Ivec<Self>, sc32: Ivec<Self>) -> Ivec<Self>;
}

/// The integer vector of an [`Isa`].
pub type Ivec<I> = <<I as Isa>::S as Simd>::I;
/// The float vector of an [`Isa`].
pub type Fvec<I> = <<I as Isa>::S as Simd>::F;

impl Isa for Avx2 {
    type S = Avx2;
    const WIDE: bool = false;
    const CHAINS: usize = 1;

    #[inline(always)]
    fn simd(self) -> Avx2 {
        self
    }

    #[inline(always)]
    fn step(self, p: __m256i, u: __m256i, s: __m256i) -> __m256i {
        self.add_i16(p, self.maddubs(u, s))
    }

    #[inline(always)]
    fn widen(self, p: __m256i) -> __m256i {
        self.madd(p, self.splat_i16(1))
    }

    #[inline(always)]
    fn widen_scaled(self, p: __m256i, sc16: __m256i, _sc32: __m256i) -> __m256i {
        self.madd(p, sc16)
    }
}

impl Isa for AvxVnni {
    type S = Avx2;
    const WIDE: bool = true;
    const CHAINS: usize = 2;

    #[inline(always)]
    fn simd(self) -> Avx2 {
        self.0
    }

    #[inline(always)]
    fn step(self, p: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: `self` exists only if `AvxVnni::detect` found AVX-VNNI; no pointers.
        unsafe { std::arch::x86_64::_mm256_dpbusd_avx_epi32(p, u, s) }
    }

    #[inline(always)]
    fn widen(self, p: __m256i) -> __m256i {
        p
    }

    #[inline(always)]
    fn widen_scaled(self, p: __m256i, _sc16: __m256i, sc32: __m256i) -> __m256i {
        self.0.mullo_i32(p, sc32)
    }
}

impl Isa for Avx512 {
    type S = Avx512;
    const WIDE: bool = true;
    const CHAINS: usize = 1;

    #[inline(always)]
    fn simd(self) -> Avx512 {
        self
    }

    #[inline(always)]
    fn step(self, p: __m512i, u: __m512i, s: __m512i) -> __m512i {
        // SAFETY: `self` exists only if `Avx512::detect` found AVX-512 VNNI; no pointers.
        unsafe { std::arch::x86_64::_mm512_dpbusd_epi32(p, u, s) }
    }

    #[inline(always)]
    fn widen(self, p: __m512i) -> __m512i {
        p
    }

    #[inline(always)]
    fn widen_scaled(self, p: __m512i, _sc16: __m512i, sc32: __m512i) -> __m512i {
        self.mullo_i32(p, sc32)
    }
}
