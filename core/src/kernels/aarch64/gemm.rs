//! The matrix driver shared by the aarch64 tables: for each group of 8 rows, tokens in
//! batches (`Batch::MAX`), each 32-column block unpacked once per batch (one token
//! is the matrix-vector case), f32 accumulators per token, rows past `n_out` never
//! written. Semantics are `scalar::gemm`'s, result for result.

use std::arch::aarch64::*;
use std::ops::Range;

use super::super::PackedKernels;
use super::super::pack::{
    ActQ8, Packed, ROWS, TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K,
    TileQ8_0,
};
use super::dot::{IntDot, Neon, Sdot};
use super::formats::{Acc, Format};
use super::isa::DotProd;

/// The largest batch of any table.
const MAX_BATCH: usize = 8;

/// How a table computes one group for a batch of tokens.
pub(super) trait Batch {
    /// Tokens per batch (≤ `MAX_BATCH`): each unpacked block is reused this many times.
    const MAX: usize;
    /// `acc[i]` = the group's 8 rows · token `i` of `act` (`nb` blocks per token), for
    /// `i < n`, `1 <= n <= MAX`.
    ///
    /// # Safety
    /// The CPU must have the table's features.
    unsafe fn group<F: Format>(tiles: &[F], act: &[ActQ8], nb: usize, n: usize, acc: &mut [Acc]);
}

/// Token by token with one integer dot product instruction set.
pub(super) struct Tokens<D>(std::marker::PhantomData<D>);

impl<D: IntDot> Batch for Tokens<D> {
    const MAX: usize = 4;
    #[inline(always)]
    unsafe fn group<F: Format>(tiles: &[F], act: &[ActQ8], nb: usize, n: usize, acc: &mut [Acc]) {
        // SAFETY (all arms): the caller guarantees D's features.
        unsafe {
            match n {
                1 => tokens::<F, D, 1>(tiles, act, nb, 0, acc),
                2 => tokens::<F, D, 2>(tiles, act, nb, 0, acc),
                3 => tokens::<F, D, 3>(tiles, act, nb, 0, acc),
                _ => tokens::<F, D, 4>(tiles, act, nb, 0, acc),
            }
        }
    }
}

/// `acc[first + i]` for tokens `first + i`, `i < N`.
///
/// # Safety
/// The CPU must have D's features.
#[inline(always)]
pub(super) unsafe fn tokens<F: Format, D: IntDot, const N: usize>(
    tiles: &[F],
    act: &[ActQ8],
    nb: usize,
    first: usize,
    acc: &mut [Acc],
) {
    // SAFETY: register-only NEON (baseline on aarch64).
    let mut sum = [unsafe { [vdupq_n_f32(0.0); 2] }; N];
    for (j, tile) in tiles.iter().enumerate() {
        for c in 0..F::COLS {
            let (q, col) = tile.column(c);
            for (i, sum) in sum.iter_mut().enumerate() {
                let a = &act[(first + i) * nb + j * F::COLS + c];
                // SAFETY: the caller guarantees D's features.
                let s = unsafe { D::sums(&q, a) };
                F::accumulate(&col, &s, a, sum);
            }
        }
    }
    acc[first..first + N].copy_from_slice(&sum);
}

/// Writes `acc`'s first `out.len()` (≤ 8) rows.
#[inline(always)]
fn store(acc: &Acc, out: &mut [f32]) {
    let mut rows = [0f32; ROWS];
    let (lo, hi) = rows.split_at_mut(4);
    // SAFETY: `lo` and `hi` each hold exactly 4 writable f32.
    unsafe {
        vst1q_f32(lo.as_mut_ptr(), acc[0]);
        vst1q_f32(hi.as_mut_ptr(), acc[1]);
    }
    out.copy_from_slice(&rows[..out.len()]);
}

/// `out[t * ld + (r - 8 * groups.start)] = W[r] · act[t]`, as `scalar::gemm`.
///
/// # Safety
/// The CPU must have B's features.
#[inline(always)]
pub(super) unsafe fn gemm<F: Format, B: Batch>(
    w: &Packed<F>,
    groups: Range<usize>,
    act: &[ActQ8],
    n_tok: usize,
    out: &mut [f32],
    ld: usize,
) {
    let nb = w.n_in / 32;
    let row0 = groups.start * ROWS;
    // SAFETY: register-only NEON (baseline on aarch64).
    let mut acc = [unsafe { [vdupq_n_f32(0.0); 2] }; MAX_BATCH];
    for g in groups {
        let tiles = w.group(g);
        let rows = ROWS.min(w.n_out - g * ROWS);
        let mut t = 0;
        while t < n_tok {
            let n = (n_tok - t).min(B::MAX.min(MAX_BATCH));
            // SAFETY: the caller guarantees B's features.
            unsafe { B::group(tiles, &act[t * nb..(t + n) * nb], nb, n, &mut acc) };
            for (i, acc) in acc[..n].iter().enumerate() {
                let o = (t + i) * ld + g * ROWS - row0;
                store(acc, &mut out[o..o + rows]);
            }
            t += n;
        }
    }
}

/// The 8 packed kernels of one entry function.
macro_rules! packed_table {
    ($m:ident :: $f:ident) => {
        PackedKernels {
            q4_0: $m::$f::<TileQ4_0>,
            q4_1: $m::$f::<TileQ4_1>,
            q5_0: $m::$f::<TileQ5_0>,
            q5_1: $m::$f::<TileQ5_1>,
            q8_0: $m::$f::<TileQ8_0>,
            q4_k: $m::$f::<TileQ4_K>,
            q5_k: $m::$f::<TileQ5_K>,
            q6_k: $m::$f::<TileQ6_K>,
        }
    };
}
pub(super) use packed_table;

/// Baseline NEON: every aarch64 CPU runs it (also the fallback of the entries below).
pub(super) mod neon {
    use super::*;

    pub(in super::super) fn gemm_neon<F: Format>(
        w: &Packed<F>,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        // SAFETY: NEON is part of every aarch64 CPU.
        unsafe { gemm::<F, Tokens<Neon>>(w, groups, act, n_tok, out, ld) }
    }
}

mod dotprod {
    use super::*;

    #[target_feature(enable = "dotprod")]
    unsafe fn inner<F: Format>(
        w: &Packed<F>,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        // SAFETY: this function is compiled for, and only called on, FEAT_DotProd.
        unsafe { gemm::<F, Tokens<Sdot>>(w, groups, act, n_tok, out, ld) }
    }

    pub(super) fn gemm_dotprod<F: Format>(
        w: &Packed<F>,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        match DotProd::detect() {
            // SAFETY: the token exists only when the CPU has FEAT_DotProd, the one
            // feature `inner` enables beyond the NEON baseline.
            Some(_) => unsafe { inner(w, groups, act, n_tok, out, ld) },
            None => super::neon::gemm_neon(w, groups, act, n_tok, out, ld),
        }
    }
}

/// Baseline NEON kernels.
pub(super) fn packed_neon() -> PackedKernels {
    packed_table!(neon::gemm_neon)
}

/// `sdot` kernels (the token shows the CPU has FEAT_DotProd; each entry checks it again).
pub(super) fn packed_dotprod(_: DotProd) -> PackedKernels {
    packed_table!(dotprod::gemm_dotprod)
}
