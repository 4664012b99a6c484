//! 512-bit operations (AVX-512 F, BW, VL, VNNI): the [`Simd`] width of the
//! "avx512-vnni" table. One vector holds two groups of 8 rows, so one activation
//! broadcast meets 16 rows and one `vpdpbusd` does 64 multiply-adds.

use std::arch::x86_64::*;

use half::f16;

use super::isa::{Avx512, Simd};

/// Methods that wrap intrinsics taking no pointers.
macro_rules! ops {
    ($($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:expr;)*) => {
        $(
            $(#[$meta])*
            #[inline(always)]
            fn $name(self, $($arg: $ty),*) -> $ret {
                // SAFETY: `self` exists only if `Avx512::detect` found AVX-512 F, BW, VL
                // and VNNI, and these intrinsics take no pointers.
                unsafe { $body }
            }
        )*
    };
}

impl Simd for Avx512 {
    const GROUPS: usize = 2;
    type I = __m512i;
    type F = __m512;

    ops! {
        fn zero() -> __m512i = _mm512_setzero_si512();
        fn zero_f() -> __m512 = _mm512_setzero_ps();
        fn splat_i8(x: i8) -> __m512i = _mm512_set1_epi8(x);
        fn splat_i32(x: i32) -> __m512i = _mm512_set1_epi32(x);
        fn splat_f(x: f32) -> __m512 = _mm512_set1_ps(x);
        fn and(a: __m512i, b: __m512i) -> __m512i = _mm512_and_si512(a, b);
        fn or(a: __m512i, b: __m512i) -> __m512i = _mm512_or_si512(a, b);
        fn xor(a: __m512i, b: __m512i) -> __m512i = _mm512_xor_si512(a, b);
        fn srli16_4(a: __m512i) -> __m512i = _mm512_srli_epi16::<4>(a);
        fn slli32_16(a: __m512i) -> __m512i = _mm512_slli_epi32::<16>(a);
        fn abs_i8(a: __m512i) -> __m512i = _mm512_abs_epi8(a);
        // No `vpsignb` in AVX-512: subtract from zero under the sign mask of `s`.
        fn negate_where(a: __m512i, s: __m512i) -> __m512i =
            _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(s), _mm512_setzero_si512(), a);
        fn add_i32(a: __m512i, b: __m512i) -> __m512i = _mm512_add_epi32(a, b);
        fn mullo_i32(a: __m512i, b: __m512i) -> __m512i = _mm512_mullo_epi32(a, b);
        fn to_f(a: __m512i) -> __m512 = _mm512_cvtepi32_ps(a);
        fn add_f(a: __m512, b: __m512) -> __m512 = _mm512_add_ps(a, b);
        fn sub_f(a: __m512, b: __m512) -> __m512 = _mm512_sub_ps(a, b);
        fn mul_f(a: __m512, b: __m512) -> __m512 = _mm512_mul_ps(a, b);
        fn bits_to_16s(bits: [u32; 2]) -> __m512i =
            _mm512_maskz_mov_epi8(bits[0] as u64 | (bits[1] as u64) << 32, _mm512_set1_epi8(16));
    }

    #[inline(always)]
    fn load(self, p: [&[u8; 32]; 2]) -> __m512i {
        // SAFETY: AVX-512F is present (token); each reference covers the 32 bytes read
        // from it, and `loadu` has no alignment requirement.
        unsafe {
            let lo = _mm512_castsi256_si512(_mm256_loadu_si256(p[0].as_ptr().cast()));
            _mm512_inserti64x4::<1>(lo, _mm256_loadu_si256(p[1].as_ptr().cast()))
        }
    }

    #[inline(always)]
    fn f16x8(self, p: [&[f16; 8]; 2]) -> __m512 {
        // SAFETY: AVX-512F is present (token); each reference covers the 16 bytes read.
        unsafe {
            let h = _mm256_set_m128i(
                _mm_loadu_si128(p[1].as_ptr().cast()),
                _mm_loadu_si128(p[0].as_ptr().cast()),
            );
            _mm512_cvtph_ps(h)
        }
    }

    #[inline(always)]
    fn u8x8_i32(self, p: [&[u8; 8]; 2]) -> __m512i {
        // SAFETY: AVX-512F is present (token); each reference covers the 8 bytes read.
        unsafe {
            let b = _mm_unpacklo_epi64(
                _mm_loadl_epi64(p[0].as_ptr().cast()),
                _mm_loadl_epi64(p[1].as_ptr().cast()),
            );
            _mm512_cvtepu8_epi32(b)
        }
    }

    #[inline(always)]
    fn i8x8_i32(self, p: [&[i8; 8]; 2]) -> __m512i {
        // SAFETY: AVX-512F is present (token); each reference covers the 8 bytes read.
        unsafe {
            let b = _mm_unpacklo_epi64(
                _mm_loadl_epi64(p[0].as_ptr().cast()),
                _mm_loadl_epi64(p[1].as_ptr().cast()),
            );
            _mm512_cvtepi8_epi32(b)
        }
    }

    #[inline(always)]
    fn store_groups(self, out: &mut [f32], at: [usize; 2], rows: [usize; 2], v: __m512) {
        // SAFETY: AVX-512F is present (token); no pointers.
        let halves = unsafe {
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            [_mm512_castps512_ps256(v), hi]
        };
        for g in 0..2 {
            if rows[g] > 0 {
                self.avx2().store_rows(out, at[g], rows[g], halves[g]);
            }
        }
    }

    #[inline(always)]
    fn store_rows(self, out: &mut [f32], at: usize, rows: usize, v: __m512) {
        match <&mut [f32; 16]>::try_from(&mut out[at..at + rows]) {
            // SAFETY: AVX-512F is present (token); the reference covers the 64 bytes written.
            Ok(dst) => unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) },
            Err(_) => {
                let mut all = [0f32; 16];
                // SAFETY: as above, into `all`.
                unsafe { _mm512_storeu_ps(all.as_mut_ptr(), v) };
                out[at..at + rows].copy_from_slice(&all[..rows]);
            }
        }
    }
}
