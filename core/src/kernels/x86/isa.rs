//! CPU feature tokens and the AVX2 operations the x86 kernels are written in.
//!
//! A token ([`Avx2`], [`AvxVnni`]) can only be obtained from runtime detection, so code
//! holding one runs on a CPU with those features. The methods below are the only place
//! the x86 kernels call intrinsics; everything above them is safe Rust. They are all
//! `#[inline(always)]`: inlined into the `#[target_feature]` entry points in `tables.rs`,
//! each compiles to one instruction (or a load folded into one).

use std::arch::x86_64::*;

use half::f16;

/// Proof that the CPU has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// The token, if this CPU (and OS) supports AVX2, FMA and F16C.
    pub fn detect() -> Option<Self> {
        let ok = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        ok.then_some(Avx2(()))
    }
}

/// Proof that the CPU has AVX2, FMA, F16C and AVX-VNNI (256-bit `vpdpbusd`).
#[derive(Clone, Copy, Debug)]
pub struct AvxVnni(Avx2);

impl AvxVnni {
    /// The token, if this CPU supports AVX-VNNI on top of [`Avx2`].
    pub fn detect() -> Option<Self> {
        let base = Avx2::detect()?;
        is_x86_feature_detected!("avxvnni").then_some(AvxVnni(base))
    }
}

/// Generates `Avx2` methods that wrap one intrinsic each.
macro_rules! ops {
    ($($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:expr;)*) => {
        impl Avx2 {
            $(
                $(#[$meta])*
                #[inline(always)]
                pub fn $name(self, $($arg: $ty),*) -> $ret {
                    // SAFETY: `self` exists only if `Avx2::detect` found AVX2, FMA and F16C,
                    // and these intrinsics take no pointers.
                    unsafe { $body }
                }
            )*
        }
    };
}

ops! {
    fn zero() -> __m256i = _mm256_setzero_si256();
    fn zero_f() -> __m256 = _mm256_setzero_ps();
    fn splat_i8(x: i8) -> __m256i = _mm256_set1_epi8(x);
    fn splat_i16(x: i16) -> __m256i = _mm256_set1_epi16(x);
    fn splat_i32(x: i32) -> __m256i = _mm256_set1_epi32(x);
    fn splat_f(x: f32) -> __m256 = _mm256_set1_ps(x);
    fn and(a: __m256i, b: __m256i) -> __m256i = _mm256_and_si256(a, b);
    fn or(a: __m256i, b: __m256i) -> __m256i = _mm256_or_si256(a, b);
    fn xor(a: __m256i, b: __m256i) -> __m256i = _mm256_xor_si256(a, b);
    /// Each 16-bit lane shifted right by 4 (for high nibbles, masked afterwards).
    fn srli16_4(a: __m256i) -> __m256i = _mm256_srli_epi16::<4>(a);
    fn slli32_16(a: __m256i) -> __m256i = _mm256_slli_epi32::<16>(a);
    /// Byte shuffle within each 128-bit half.
    fn shuffle_bytes(a: __m256i, idx: __m256i) -> __m256i = _mm256_shuffle_epi8(a, idx);
    fn eq_i8(a: __m256i, b: __m256i) -> __m256i = _mm256_cmpeq_epi8(a, b);
    fn abs_i8(a: __m256i) -> __m256i = _mm256_abs_epi8(a);
    /// `a` negated where `b < 0`, zeroed where `b == 0`.
    fn sign_i8(a: __m256i, b: __m256i) -> __m256i = _mm256_sign_epi8(a, b);
    /// Pairs of `u8 · i8` summed into saturating i16 (`vpmaddubsw`).
    fn maddubs(u: __m256i, s: __m256i) -> __m256i = _mm256_maddubs_epi16(u, s);
    /// Pairs of `i16 · i16` summed into i32 (`vpmaddwd`).
    fn madd(a: __m256i, b: __m256i) -> __m256i = _mm256_madd_epi16(a, b);
    fn add_i16(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi16(a, b);
    fn add_i32(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi32(a, b);
    fn sub_i32(a: __m256i, b: __m256i) -> __m256i = _mm256_sub_epi32(a, b);
    fn mullo_i32(a: __m256i, b: __m256i) -> __m256i = _mm256_mullo_epi32(a, b);
    fn to_f(a: __m256i) -> __m256 = _mm256_cvtepi32_ps(a);
    /// Truncating f32 → i32 (the inputs are already integral).
    fn to_i(a: __m256) -> __m256i = _mm256_cvttps_epi32(a);
    fn add_f(a: __m256, b: __m256) -> __m256 = _mm256_add_ps(a, b);
    fn sub_f(a: __m256, b: __m256) -> __m256 = _mm256_sub_ps(a, b);
    fn mul_f(a: __m256, b: __m256) -> __m256 = _mm256_mul_ps(a, b);
    fn and_f(a: __m256, b: __m256) -> __m256 = _mm256_and_ps(a, b);
    fn or_f(a: __m256, b: __m256) -> __m256 = _mm256_or_ps(a, b);
    fn andnot_f(a: __m256, b: __m256) -> __m256 = _mm256_andnot_ps(a, b);
    /// Lane maximum; returns `b` where `a` is NaN.
    fn max_f(a: __m256, b: __m256) -> __m256 = _mm256_max_ps(a, b);
    /// Lane minimum; returns `b` where `a` is NaN.
    fn min_f(a: __m256, b: __m256) -> __m256 = _mm256_min_ps(a, b);
    fn trunc_f(a: __m256) -> __m256 = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(a);
    /// All-ones lanes where `a >= b` (false for NaN).
    fn ge_f(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_GE_OQ>(a, b);
    /// All-ones lanes where `a` is not NaN.
    fn ordered_f(a: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_ORD_Q>(a, a);
    /// i32 lanes to i8 with signed saturation, then restored to element order.
    fn pack_i32x4_i8(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i = {
        let ab = _mm256_packs_epi32(a, b);
        let cd = _mm256_packs_epi32(c, d);
        let x = _mm256_packs_epi16(ab, cd);
        _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    };
    /// Sum of the 8 i32 lanes (wrapping).
    fn hsum_i32(a: __m256i) -> i32 = {
        let x = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
        let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b01_00_11_10>(x));
        let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b10_11_00_01>(x));
        _mm_cvtsi128_si32(x)
    };
    /// Maximum of the 8 lanes (none NaN).
    fn hmax_f(a: __m256) -> f32 = {
        let x = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        let x = _mm_max_ss(x, _mm_shuffle_ps::<0b01>(x, x));
        _mm_cvtss_f32(x)
    };
    /// `((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))`.
    fn hsum_f(a: __m256) -> f32 = {
        let x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let x = _mm_hadd_ps(x, x);
        _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
    };
}

impl Avx2 {
    /// 32 bytes (any alignment).
    #[inline(always)]
    pub fn load(self, p: &[u8; 32]) -> __m256i {
        // SAFETY: AVX2 is present (token); the reference covers the 32 bytes read, and
        // `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
    }

    /// Stores 32 bytes (any alignment).
    #[inline(always)]
    pub fn store(self, p: &mut [u8; 32], v: __m256i) {
        // SAFETY: AVX is present (token); the reference covers the 32 bytes written.
        unsafe { _mm256_storeu_si256(p.as_mut_ptr().cast(), v) }
    }

    /// 8 floats (any alignment).
    #[inline(always)]
    pub fn load_f(self, p: &[f32; 8]) -> __m256 {
        // SAFETY: AVX is present (token); the reference covers the 32 bytes read.
        unsafe { _mm256_loadu_ps(p.as_ptr()) }
    }

    /// Stores 8 floats (any alignment).
    #[inline(always)]
    pub fn store_f(self, p: &mut [f32; 8], v: __m256) {
        // SAFETY: AVX is present (token); the reference covers the 32 bytes written.
        unsafe { _mm256_storeu_ps(p.as_mut_ptr(), v) }
    }

    /// 8 halves widened to f32 (exact).
    #[inline(always)]
    pub fn f16x8(self, p: &[f16; 8]) -> __m256 {
        // SAFETY: F16C is present (token); the reference covers the 16 bytes read.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr().cast())) }
    }

    /// 8 unsigned bytes zero-extended to i32 lanes.
    #[inline(always)]
    pub fn u8x8_i32(self, p: &[u8; 8]) -> __m256i {
        // SAFETY: AVX2 is present (token); the reference covers the 8 bytes read.
        unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.as_ptr().cast())) }
    }

    /// 8 signed bytes sign-extended to i32 lanes.
    #[inline(always)]
    pub fn i8x8_i32(self, p: &[i8; 8]) -> __m256i {
        // SAFETY: AVX2 is present (token); the reference covers the 8 bytes read.
        unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.as_ptr().cast())) }
    }

    /// The 4 bytes at `4k..4k + 4` of `qs` in every i32 lane: one chunk of activations
    /// against one chunk of each of the 8 rows.
    #[inline(always)]
    pub fn chunk(self, qs: &[i8; 32], k: usize) -> __m256i {
        let q: &[[u8; 4]; 8] = bytemuck::cast_ref(qs);
        self.splat_i32(i32::from_le_bytes(q[k]))
    }

    /// Bit `j` of `bits` as 16 in byte `j` (0 where clear): a 5th quant bit per byte.
    #[inline(always)]
    pub fn bits_to_16s(self, bits: u32) -> __m256i {
        // Byte j takes byte j / 8 of `bits`, then tests bit j % 8 of it.
        let spread = self.shuffle_bytes(self.splat_i32(bits as i32), self.spread_index());
        let select = self.splat_i64(0x8040_2010_0804_0201u64 as i64);
        let set = self.eq_i8(self.and(spread, select), select);
        self.and(set, self.splat_i8(16))
    }

    #[inline(always)]
    fn spread_index(self) -> __m256i {
        // SAFETY: AVX is present (token); no pointers.
        unsafe { _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303) }
    }

    #[inline(always)]
    fn splat_i64(self, x: i64) -> __m256i {
        // SAFETY: AVX is present (token); no pointers.
        unsafe { _mm256_set1_epi64x(x) }
    }
}

/// The u8 × i8 → i32 dot step, four bytes per i32 lane, that the kernels are generic over.
///
/// `step` accumulates into a "partial" register; `widen` turns a partial into one i32 per
/// lane. On AVX2 the partial holds saturating i16 pair sums (`vpmaddubsw`), so callers
/// may chain only as many steps as provably fit in i16 before widening; on AVX-VNNI the
/// partial is already i32 and `widen` is free.
pub trait Isa: Copy {
    /// Whether partials are i32 (no i16 bound, widening costs nothing).
    const WIDE: bool;
    fn avx2(self) -> Avx2;
    /// `p + Σ_{4 bytes} u · s` per lane (u unsigned, s signed).
    fn step(self, p: __m256i, u: __m256i, s: __m256i) -> __m256i;
    /// A partial as one i32 per lane.
    fn widen(self, p: __m256i) -> __m256i;
    /// A partial as one i32 per lane, times a per-lane scale given both as i16 (in both
    /// halves of the lane) and as i32.
    fn widen_scaled(self, p: __m256i, sc16: __m256i, sc32: __m256i) -> __m256i;
}

impl Isa for Avx2 {
    const WIDE: bool = false;

    #[inline(always)]
    fn avx2(self) -> Avx2 {
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
    const WIDE: bool = true;

    #[inline(always)]
    fn avx2(self) -> Avx2 {
        self.0
    }

    #[inline(always)]
    fn step(self, p: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: `self` exists only if `AvxVnni::detect` found AVX-VNNI; no pointers.
        unsafe { _mm256_dpbusd_avx_epi32(p, u, s) }
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
