//! FEAT_I8MM: `smmla` multiplies a 2×8 block of weights by a 2×8 block of activations
//! (2 rows × 2 tokens × 8 elements, twice `sdot`'s work per instruction). The packed
//! layout interleaves rows in 4-element chunks, so each unpacked block is permuted
//! once per batch (one `zip` per register) into 2 rows × 8 consecutive elements; the
//! cost is amortized over a batch of up to 4 token pairs. A single token (decoding,
//! or the odd one of a batch) uses `sdot`.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::super::PackedKernels;
use super::super::pack::{
    ActQ8, Packed, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K, TileQ8_0,
};
use super::dot::{IntDot, Sdot};
use super::formats::{Acc, Format, Quants, Sums};
use super::gemm::{Batch, gemm, neon, packed_table, tokens};
use super::isa::I8mm;
use super::vec::act_halves;

/// `acc += w · aᵀ` for `w`, `a` 2×8 row-major and `acc` 2×2 (lane `2i + j`: row `i`
/// of `w` with row `j` of `a`).
///
/// # Safety
/// The CPU must have FEAT_I8MM.
#[target_feature(enable = "i8mm")]
#[inline]
unsafe fn smmla(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only arithmetic; the caller guarantees the instruction exists.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `z[4p + o]`: rows `2p, 2p + 1`, elements `8o..8o + 8` each.
type RowPairs = [int8x16_t; 16];

/// Chunks `2o` and `2o + 1` of 4 rows (row per 32-bit lane) interleaved per row.
#[inline(always)]
fn row_pairs(q: &Quants) -> RowPairs {
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let mut z = [vdupq_n_s8(0); 16];
        for h in 0..2 {
            for o in 0..4 {
                let a = vreinterpretq_s32_s8(q[2 * (2 * o) + h]);
                let b = vreinterpretq_s32_s8(q[2 * (2 * o + 1) + h]);
                z[4 * (2 * h) + o] = vreinterpretq_s8_s32(vzip1q_s32(a, b));
                z[4 * (2 * h + 1) + o] = vreinterpretq_s8_s32(vzip2q_s32(a, b));
            }
        }
        z
    }
}

/// The block sums of tokens `x` and `y`.
///
/// # Safety
/// The CPU must have FEAT_I8MM.
#[inline(always)]
unsafe fn pair_sums<F: Format>(z: &RowPairs, x: &ActQ8, y: &ActQ8) -> [Sums; 2] {
    let ([xl, xh], [yl, yh]) = (act_halves(x), act_halves(y));
    // SAFETY: the caller guarantees FEAT_I8MM; NEON is baseline.
    unsafe {
        // Activation octets `o` of both tokens: [x 8o..8o+8, y 8o..8o+8].
        let octets = |p: int8x16_t, q: int8x16_t| {
            let (p, q) = (vreinterpretq_s64_s8(p), vreinterpretq_s64_s8(q));
            [vreinterpretq_s8_s64(vzip1q_s64(p, q)), vreinterpretq_s8_s64(vzip2q_s64(p, q))]
        };
        let ([a0, a1], [a2, a3]) = (octets(xl, yl), octets(xh, yh));
        let zero = vdupq_n_s32(0);
        // Row pair p, lane 2i + j: row 2p + i with token j.
        let (mut lo, mut hi) = ([zero; 4], [zero; 4]);
        for p in 0..4 {
            lo[p] = smmla(smmla(zero, z[4 * p], a0), z[4 * p + 1], a1);
            if F::SPLIT {
                hi[p] = smmla(smmla(zero, z[4 * p + 2], a2), z[4 * p + 3], a3);
            } else {
                lo[p] = smmla(smmla(lo[p], z[4 * p + 2], a2), z[4 * p + 3], a3);
            }
        }
        // Rows 4h..4h+4 of token x are the even lanes of row pairs 2h, 2h + 1; of y the odd.
        let x_rows = |v: &[int32x4_t; 4], h: usize| vuzp1q_s32(v[2 * h], v[2 * h + 1]);
        let y_rows = |v: &[int32x4_t; 4], h: usize| vuzp2q_s32(v[2 * h], v[2 * h + 1]);
        [
            Sums { lo: [x_rows(&lo, 0), x_rows(&lo, 1)], hi: [x_rows(&hi, 0), x_rows(&hi, 1)] },
            Sums { lo: [y_rows(&lo, 0), y_rows(&lo, 1)], hi: [y_rows(&hi, 0), y_rows(&hi, 1)] },
        ]
    }
}

/// `acc[i]` for `2 * P` tokens in pairs and `S` (0 or 1) more with `sdot`.
///
/// # Safety
/// The CPU must have FEAT_I8MM and FEAT_DotProd.
#[inline(always)]
unsafe fn pairs<F: Format, const P: usize, const S: usize>(
    tiles: &[F],
    act: &[ActQ8],
    nb: usize,
    acc: &mut [Acc],
) {
    // SAFETY: register-only NEON (baseline on aarch64).
    let zero = unsafe { [vdupq_n_f32(0.0); 2] };
    let mut sum = [[zero; 2]; P];
    let mut single = [zero; S];
    for (j, tile) in tiles.iter().enumerate() {
        for c in 0..F::COLS {
            let (q, col) = tile.column(c);
            let z = row_pairs(&q);
            let block = j * F::COLS + c;
            for (i, sum) in sum.iter_mut().enumerate() {
                let (x, y) = (&act[2 * i * nb + block], &act[(2 * i + 1) * nb + block]);
                // SAFETY: the caller guarantees FEAT_I8MM.
                let s = unsafe { pair_sums::<F>(&z, x, y) };
                F::accumulate(&col, &s[0], x, &mut sum[0]);
                F::accumulate(&col, &s[1], y, &mut sum[1]);
            }
            for single in single.iter_mut() {
                let a = &act[2 * P * nb + block];
                // SAFETY: the caller guarantees FEAT_DotProd.
                let s = unsafe { Sdot::sums(&q, a) };
                F::accumulate(&col, &s, a, single);
            }
        }
    }
    for (i, sum) in sum.iter().enumerate() {
        acc[2 * i..2 * i + 2].copy_from_slice(sum);
    }
    acc[2 * P..2 * P + S].copy_from_slice(&single);
}

/// Token pairs with `smmla`, a single token with `sdot`.
struct Mmla;

impl Batch for Mmla {
    const MAX: usize = 8;
    #[inline(always)]
    unsafe fn group<F: Format>(tiles: &[F], act: &[ActQ8], nb: usize, n: usize, acc: &mut [Acc]) {
        // SAFETY (all arms): the caller guarantees FEAT_I8MM and FEAT_DotProd.
        unsafe {
            match n {
                1 => tokens::<F, Sdot, 1>(tiles, act, nb, 0, acc),
                2 => pairs::<F, 1, 0>(tiles, act, nb, acc),
                3 => pairs::<F, 1, 1>(tiles, act, nb, acc),
                4 => pairs::<F, 2, 0>(tiles, act, nb, acc),
                5 => pairs::<F, 2, 1>(tiles, act, nb, acc),
                6 => pairs::<F, 3, 0>(tiles, act, nb, acc),
                7 => pairs::<F, 3, 1>(tiles, act, nb, acc),
                _ => pairs::<F, 4, 0>(tiles, act, nb, acc),
            }
        }
    }
}

mod entry {
    use super::*;

    #[target_feature(enable = "dotprod,i8mm")]
    unsafe fn inner<F: Format>(
        w: &Packed<F>,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        // SAFETY: this function is compiled for, and only called on, FEAT_DotProd and
        // FEAT_I8MM.
        unsafe { gemm::<F, Mmla>(w, groups, act, n_tok, out, ld) }
    }

    pub(super) fn gemm_i8mm<F: Format>(
        w: &Packed<F>,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        match I8mm::detect() {
            // SAFETY: the token exists only when the CPU has FEAT_DotProd and FEAT_I8MM,
            // the features `inner` enables beyond the NEON baseline.
            Some(_) => unsafe { inner(w, groups, act, n_tok, out, ld) },
            None => neon::gemm_neon(w, groups, act, n_tok, out, ld),
        }
    }
}

/// `smmla` kernels, `sdot` for single tokens (the token shows the CPU has FEAT_DotProd and
/// FEAT_I8MM; each entry checks it again).
pub(super) fn packed_i8mm(_: I8mm) -> PackedKernels {
    packed_table!(entry::gemm_i8mm)
}
