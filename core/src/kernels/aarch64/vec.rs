//! Vector helpers shared by every aarch64 table: the f32 dot product, activation
//! quantization (bit-identical to `pack::quantize_act`), and bounds-checked loads.

use std::arch::aarch64::*;

use half::f16;

use super::super::pack::ActQ8;

/// Loads 16 bytes.
#[inline(always)]
pub(super) fn load_u8(b: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `b` is 16 readable bytes; vld1q has no alignment requirement.
    unsafe { vld1q_u8(b.as_ptr()) }
}

/// Loads 16 signed bytes.
#[inline(always)]
pub(super) fn load_i8(b: &[i8; 16]) -> int8x16_t {
    // SAFETY: `b` is 16 readable bytes; vld1q has no alignment requirement.
    unsafe { vld1q_s8(b.as_ptr()) }
}

/// Loads 8 bytes.
#[inline(always)]
pub(super) fn load_u8_half(b: &[u8; 8]) -> uint8x8_t {
    // SAFETY: `b` is 8 readable bytes.
    unsafe { vld1_u8(b.as_ptr()) }
}

/// The 16-byte halves of 32 activation quants.
#[inline(always)]
pub(super) fn act_halves(a: &ActQ8) -> [int8x16_t; 2] {
    let h: &[[i8; 16]; 2] = bytemuck::cast_ref(&a.qs);
    [load_i8(&h[0]), load_i8(&h[1])]
}

/// Converts 8 half-precision values to two f32x4 (elements 0..4, 4..8), exactly.
#[inline(always)]
pub(super) fn f16x8(h: &[f16; 8]) -> [float32x4_t; 2] {
    // SAFETY: `h` is 8 readable u16-sized values (f16 and u16 share size and layout);
    // NEON is baseline on aarch64.
    unsafe {
        let v = vld1q_u16(h.as_ptr().cast::<u16>());
        [
            vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(v))),
            vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(v))),
        ]
    }
}

/// Widens 8 unsigned bytes to two f32x4, exactly.
#[inline(always)]
pub(super) fn u8x8_to_f32(b: uint8x8_t) -> [float32x4_t; 2] {
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let w = vmovl_u8(b);
        [vcvtq_f32_u32(vmovl_u16(vget_low_u16(w))), vcvtq_f32_u32(vmovl_high_u16(w))]
    }
}

/// Loads f32x4 from the start of `x`.
#[inline(always)]
fn load_f32(x: &[f32]) -> float32x4_t {
    let x = &x[..4];
    // SAFETY: `x` holds exactly 4 readable f32.
    unsafe { vld1q_f32(x.as_ptr()) }
}

/// f32 dot product with fused multiply-adds in 16 lanes.
pub(super) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    // SAFETY: register-only NEON (baseline on aarch64); loads go through `load_f32`.
    let mut sum = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        while i + 16 <= n {
            for (l, acc) in acc.iter_mut().enumerate() {
                *acc = vfmaq_f32(*acc, load_f32(&a[i + 4 * l..]), load_f32(&b[i + 4 * l..]));
            }
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = vfmaq_f32(acc[0], load_f32(&a[i..]), load_f32(&b[i..]));
            i += 4;
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3])))
    };
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}

/// Quantizes activations per 32-block exactly as `pack::quantize_act` does: the same
/// `d`, the same rounding (half away from zero: `fcvtas`), the same saturation
/// (`fcvtas` and `sqxtn` saturate as `as i8` does) and the same NaN handling
/// (`fmaxnm` skips NaN as `f32::max` does; `fcvtas` maps NaN to 0).
pub(super) fn quantize_act(x: &[f32], out: &mut [ActQ8]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let v: [float32x4_t; 8] = std::array::from_fn(|i| load_f32(&xs[4 * i..]));
        let (lo, hi) = o.qs.split_at_mut(16);
        // SAFETY: NEON is baseline on aarch64; `lo` and `hi` each hold exactly 16
        // writable bytes.
        let (d, sum) = unsafe {
            let amax = v.iter().fold(vdupq_n_f32(0.0), |m, &v| vmaxnmq_f32(m, vabsq_f32(v)));
            let d = vmaxnmvq_f32(amax) / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let q32: [int32x4_t; 8] =
                std::array::from_fn(|i| vcvtaq_s32_f32(vmulq_n_f32(v[i], id)));
            let q16: [int16x8_t; 4] =
                std::array::from_fn(|i| vqmovn_high_s32(vqmovn_s32(q32[2 * i]), q32[2 * i + 1]));
            let q8 = [
                vqmovn_high_s16(vqmovn_s16(q16[0]), q16[1]),
                vqmovn_high_s16(vqmovn_s16(q16[2]), q16[3]),
            ];
            vst1q_s8(lo.as_mut_ptr(), q8[0]);
            vst1q_s8(hi.as_mut_ptr(), q8[1]);
            (d, vaddlvq_s8(q8[0]) as i32 + vaddlvq_s8(q8[1]) as i32)
        };
        o.d = d;
        o.sum = sum;
    }
}
