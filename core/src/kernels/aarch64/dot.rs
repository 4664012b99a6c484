//! Exact integer dot products of one unpacked block (8 rows × 32) with one token's 32
//! activation bytes: baseline NEON (widening multiplies) and the `sdot` instruction.

use std::arch::aarch64::*;
use std::arch::asm;

use super::super::pack::ActQ8;
use super::formats::{Quants, Sums};
use super::vec::act_halves;

/// An instruction set's integer block product.
pub(super) trait IntDot {
    /// The block's sums with `a`.
    ///
    /// # Safety
    /// The CPU must have the instruction set's features.
    unsafe fn sums(q: &Quants, a: &ActQ8) -> Sums;
}

/// The token's bytes `4c..4c + 4` repeated over a register (chunk `c` < 4 of `a`).
#[inline(always)]
fn broadcast<const C: i32>(a: int8x16_t) -> int8x16_t {
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe { vreinterpretq_s8_s32(vdupq_laneq_s32::<C>(vreinterpretq_s32_s8(a))) }
}

/// Baseline NEON: 8 widening i8 multiplies then a pairwise widening accumulate per
/// 16 products, so each i32 lane sums 2 products per step, and a final pairwise add
/// puts one row per lane. Every product fits i16 (|q|, |a| ≤ 128) and every sum i32.
pub(super) struct Neon;

/// Σ over the 4 chunks `cs` of rows `4h..4h + 4`, one row per lane.
#[inline(always)]
fn neon_rows(q: &Quants, h: usize, c0: usize, a: int8x16_t) -> int32x4_t {
    let b = [broadcast::<0>(a), broadcast::<1>(a), broadcast::<2>(a), broadcast::<3>(a)];
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let (mut r01, mut r23) = (vdupq_n_s32(0), vdupq_n_s32(0));
        for (i, b) in b.iter().enumerate() {
            let w = q[2 * (c0 + i) + h];
            r01 = vpadalq_s16(r01, vmull_s8(vget_low_s8(w), vget_low_s8(*b)));
            r23 = vpadalq_s16(r23, vmull_high_s8(w, *b));
        }
        vpaddq_s32(r01, r23)
    }
}

impl IntDot for Neon {
    #[inline(always)]
    unsafe fn sums(q: &Quants, a: &ActQ8) -> Sums {
        let [lo, hi] = act_halves(a);
        Sums {
            lo: [neon_rows(q, 0, 0, lo), neon_rows(q, 1, 0, lo)],
            hi: [neon_rows(q, 0, 4, hi), neon_rows(q, 1, 4, hi)],
        }
    }
}

/// `sdot` (FEAT_DotProd), by element: one instruction per 4 rows × 4 elements. The
/// intrinsic is unstable, so this is inline assembly.
pub(super) struct Sdot;

/// `acc[l] += Σ_i w[4l + i] * a[4 * LANE + i]`.
///
/// # Safety
/// The CPU must have FEAT_DotProd.
#[target_feature(enable = "dotprod")]
#[inline]
unsafe fn sdot_lane<const LANE: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only arithmetic; the caller guarantees the instruction exists.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// Σ over chunks `c0..c0 + 4` of rows `4h..4h + 4`.
#[inline(always)]
unsafe fn sdot_rows(q: &Quants, h: usize, c0: usize, a: int8x16_t) -> int32x4_t {
    // SAFETY: the caller guarantees FEAT_DotProd; NEON is baseline.
    unsafe {
        let s = sdot_lane::<0>(vdupq_n_s32(0), q[2 * c0 + h], a);
        let s = sdot_lane::<1>(s, q[2 * (c0 + 1) + h], a);
        let s = sdot_lane::<2>(s, q[2 * (c0 + 2) + h], a);
        sdot_lane::<3>(s, q[2 * (c0 + 3) + h], a)
    }
}

impl IntDot for Sdot {
    #[inline(always)]
    unsafe fn sums(q: &Quants, a: &ActQ8) -> Sums {
        let [lo, hi] = act_halves(a);
        // SAFETY: the caller guarantees FEAT_DotProd.
        unsafe {
            Sums {
                lo: [sdot_rows(q, 0, 0, lo), sdot_rows(q, 1, 0, lo)],
                hi: [sdot_rows(q, 0, 4, hi), sdot_rows(q, 1, 4, hi)],
            }
        }
    }
}
