//! 256-bit operations (AVX2, FMA, F16C): the [`Simd`] width of the "avx2" and
//! "avx2-vnni" tables (one group of 8 rows per vector), and the extra operations of the
//! float kernels.

use std::arch::x86_64::*;

use half::f16;

use super::isa::{Avx2, Simd};

/// Methods that wrap intrinsics taking no pointers.
macro_rules! ops {
    ($($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:expr;)*) => {
        $(
            $(#[$meta])*
            #[inline(always)]
            $vis fn $name(self, $($arg: $ty),*) -> $ret {
                // SAFETY: `self` exists only if `Avx2::detect` found AVX2, FMA and F16C,
                // and these intrinsics take no pointers.
                unsafe { $body }
            }
        )*
    };
}

impl Simd for Avx2 {
    const GROUPS: usize = 1;
    type I = __m256i;
    type F = __m256;

    ops! {
        fn zero() -> __m256i = _mm256_setzero_si256();
        fn zero_f() -> __m256 = _mm256_setzero_ps();
        fn splat_i8(x: i8) -> __m256i = _mm256_set1_epi8(x);
        fn splat_i32(x: i32) -> __m256i = _mm256_set1_epi32(x);
        fn splat_f(x: f32) -> __m256 = _mm256_set1_ps(x);
        fn and(a: __m256i, b: __m256i) -> __m256i = _mm256_and_si256(a, b);
        fn or(a: __m256i, b: __m256i) -> __m256i = _mm256_or_si256(a, b);
        fn xor(a: __m256i, b: __m256i) -> __m256i = _mm256_xor_si256(a, b);
        fn srli16_4(a: __m256i) -> __m256i = _mm256_srli_epi16::<4>(a);
        fn slli32_16(a: __m256i) -> __m256i = _mm256_slli_epi32::<16>(a);
        fn abs_i8(a: __m256i) -> __m256i = _mm256_abs_epi8(a);
        fn negate_where(a: __m256i, s: __m256i) -> __m256i = _mm256_sign_epi8(a, s);
        fn add_i32(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi32(a, b);
        fn mullo_i32(a: __m256i, b: __m256i) -> __m256i = _mm256_mullo_epi32(a, b);
        fn to_f(a: __m256i) -> __m256 = _mm256_cvtepi32_ps(a);
        fn add_f(a: __m256, b: __m256) -> __m256 = _mm256_add_ps(a, b);
        fn sub_f(a: __m256, b: __m256) -> __m256 = _mm256_sub_ps(a, b);
        fn mul_f(a: __m256, b: __m256) -> __m256 = _mm256_mul_ps(a, b);
    }

    #[inline(always)]
    fn load(self, p: [&[u8; 32]; 2]) -> __m256i {
        // SAFETY: AVX is present (token); the reference covers the 32 bytes read, and
        // `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_si256(p[0].as_ptr().cast()) }
    }

    #[inline(always)]
    fn f16x8(self, p: [&[f16; 8]; 2]) -> __m256 {
        // SAFETY: F16C is present (token); the reference covers the 16 bytes read.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p[0].as_ptr().cast())) }
    }

    #[inline(always)]
    fn u8x8_i32(self, p: [&[u8; 8]; 2]) -> __m256i {
        // SAFETY: AVX2 is present (token); the reference covers the 8 bytes read.
        unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p[0].as_ptr().cast())) }
    }

    #[inline(always)]
    fn i8x8_i32(self, p: [&[i8; 8]; 2]) -> __m256i {
        // SAFETY: AVX2 is present (token); the reference covers the 8 bytes read.
        unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(p[0].as_ptr().cast())) }
    }

    #[inline(always)]
    fn bits_to_16s(self, bits: [u32; 2]) -> __m256i {
        // SAFETY: AVX2 is present (token); no pointers.
        unsafe {
            // Byte j takes byte j / 8 of the bits, then tests bit j % 8 of it.
            let index = _mm256_setr_epi64x(
                0,
                0x0101_0101_0101_0101,
                0x0202_0202_0202_0202,
                0x0303_0303_0303_0303,
            );
            let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(bits[0] as i32), index);
            let select = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
            _mm256_and_si256(set, _mm256_set1_epi8(16))
        }
    }

    #[inline(always)]
    fn store_groups(self, out: &mut [f32], at: [usize; 2], rows: [usize; 2], v: __m256) {
        self.store_rows(out, at[0], rows[0], v);
    }

    #[inline(always)]
    fn store_rows(self, out: &mut [f32], at: usize, rows: usize, v: __m256) {
        match <&mut [f32; 8]>::try_from(&mut out[at..at + rows]) {
            Ok(dst) => self.store_f(dst, v),
            Err(_) => {
                let mut all = [0f32; 8];
                self.store_f(&mut all, v);
                out[at..at + rows].copy_from_slice(&all[..rows]);
            }
        }
    }
}

impl Avx2 {
    ops! {
        pub fn splat_i16(x: i16) -> __m256i = _mm256_set1_epi16(x);
        /// Pairs of `u8 · i8` summed into saturating i16 (`vpmaddubsw`).
        pub fn maddubs(u: __m256i, s: __m256i) -> __m256i = _mm256_maddubs_epi16(u, s);
        /// Pairs of `i16 · i16` summed into i32 (`vpmaddwd`).
        pub fn madd(a: __m256i, b: __m256i) -> __m256i = _mm256_madd_epi16(a, b);
        pub fn add_i16(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi16(a, b);
        /// Truncating f32 → i32 (the inputs are already integral).
        pub fn to_i(a: __m256) -> __m256i = _mm256_cvttps_epi32(a);
        pub fn and_f(a: __m256, b: __m256) -> __m256 = _mm256_and_ps(a, b);
        pub fn or_f(a: __m256, b: __m256) -> __m256 = _mm256_or_ps(a, b);
        pub fn andnot_f(a: __m256, b: __m256) -> __m256 = _mm256_andnot_ps(a, b);
        /// Lane maximum; returns `b` where `a` is NaN.
        pub fn max_f(a: __m256, b: __m256) -> __m256 = _mm256_max_ps(a, b);
        /// Lane minimum; returns `b` where `a` is NaN.
        pub fn min_f(a: __m256, b: __m256) -> __m256 = _mm256_min_ps(a, b);
        pub fn trunc_f(a: __m256) -> __m256 = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(a);
        /// All-ones lanes where `a >= b` (false for NaN).
        pub fn ge_f(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_GE_OQ>(a, b);
        /// All-ones lanes where `a` is not NaN.
        pub fn ordered_f(a: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_ORD_Q>(a, a);
        /// i32 lanes to i8 with signed saturation, in element order.
        pub fn pack_i32x4_i8(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i = {
            let ab = _mm256_packs_epi32(a, b);
            let cd = _mm256_packs_epi32(c, d);
            let x = _mm256_packs_epi16(ab, cd);
            _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        };
        /// Sum of the 8 i32 lanes (wrapping).
        pub fn hsum_i32(a: __m256i) -> i32 = {
            let x = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
            let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b01_00_11_10>(x));
            let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b10_11_00_01>(x));
            _mm_cvtsi128_si32(x)
        };
        /// Maximum of the 8 lanes (none NaN).
        pub fn hmax_f(a: __m256) -> f32 = {
            let x = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
            let x = _mm_max_ss(x, _mm_shuffle_ps::<0b01>(x, x));
            _mm_cvtss_f32(x)
        };
        /// `((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))`.
        pub fn hsum_f(a: __m256) -> f32 = {
            let x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let x = _mm_hadd_ps(x, x);
            _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
        };
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
}
