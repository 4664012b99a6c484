//! The packed matrix drivers, generic over the tile format and the dot step.
//!
//! One token (decode) streams each group's tiles once, unpacking each column in
//! registers. Several tokens (prefill) unpack a run of a group's columns once into an
//! L1-sized scratch and sweep it with `NT` tokens at a time, so each unpacked weight
//! vector is loaded once per `NT` tokens and the per-column factors are never redone.

use std::arch::x86_64::__m256;
use std::ops::Range;

use bytemuck::Zeroable;

use super::formats::Format;
use super::isa::{Avx2, Isa};
use crate::kernels::pack::{ActQ8, Packed, ROWS};

/// Columns unpacked per scratch fill (at most 21 KB for Q6_K, within L1).
const SCRATCH_COLS: usize = 32;

/// `out[t * ld + (r - 8 * groups.start)] = W[r] · act[t]`, exactly as `scalar::gemm`
/// (same integer sums, same rows written, same panics on short buffers).
#[inline(always)]
pub fn gemm<F: Format, I: Isa, const NT: usize>(
    isa: I,
    w: &Packed<F>,
    groups: Range<usize>,
    act: &[ActQ8],
    n_tok: usize,
    out: &mut [f32],
    ld: usize,
) {
    if n_tok == 0 || groups.is_empty() {
        return;
    }
    let nb = w.n_in / 32;
    let cols = w.tiles_per_group * F::COLS;
    assert!(cols <= nb, "packed matrix has {cols} columns per group but n_in / 32 = {nb}");
    assert!(act.len() >= n_tok * nb, "{} activation blocks for {n_tok} tokens of {nb}", act.len());
    if n_tok == 1 {
        gemv(isa, w, groups, &act[..cols], out);
    } else {
        batched::<F, I, NT>(isa, w, groups, act, nb, n_tok, out, ld);
    }
}

fn rows_of<F>(w: &Packed<F>, g: usize) -> usize {
    ROWS.min(w.n_out - g * ROWS)
}

/// Writes the first `rows` lanes of `acc` at `out[at..]`.
#[inline(always)]
fn store_rows(v: Avx2, out: &mut [f32], at: usize, rows: usize, acc: __m256) {
    match <&mut [f32; ROWS]>::try_from(&mut out[at..at + rows]) {
        Ok(dst) => v.store_f(dst, acc),
        Err(_) => {
            let mut all = [0f32; ROWS];
            v.store_f(&mut all, acc);
            out[at..at + rows].copy_from_slice(&all[..rows]);
        }
    }
}

/// One token: each column is unpacked in registers and used once.
#[inline(always)]
fn gemv<F: Format, I: Isa>(isa: I, w: &Packed<F>, groups: Range<usize>, act: &[ActQ8], out: &mut [f32]) {
    let v = isa.avx2();
    let row0 = groups.start * ROWS;
    for g in groups {
        let tiles = w.group(g);
        let rows = rows_of(w, g);
        let mut acc = [v.zero_f()];
        for (tile, a) in tiles.iter().zip(act.chunks_exact(F::COLS)) {
            for (c, a) in a.iter().enumerate() {
                let col = F::prepare(isa, tile, c);
                F::accumulate::<I, 1>(isa, &col, [a], &mut acc);
            }
        }
        store_rows(v, out, g * ROWS - row0, rows, acc[0]);
    }
}

/// Several tokens: per group, runs of columns unpacked into `scratch`, then swept by
/// batches of `NT` tokens (the last batch smaller).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn batched<F: Format, I: Isa, const NT: usize>(
    isa: I,
    w: &Packed<F>,
    groups: Range<usize>,
    act: &[ActQ8],
    nb: usize,
    n_tok: usize,
    out: &mut [f32],
    ld: usize,
) {
    let v = isa.avx2();
    let cols = w.tiles_per_group * F::COLS;
    let mut scratch = [F::Col::zeroed(); SCRATCH_COLS];
    // Partial sums between column runs (only when a group has more than one run).
    let mut partial = if cols > SCRATCH_COLS { vec![v.zero_f(); n_tok] } else { Vec::new() };
    let row0 = groups.start * ROWS;
    for g in groups {
        let tiles = w.group(g);
        let rows = rows_of(w, g);
        for c0 in (0..cols).step_by(SCRATCH_COLS) {
            let c1 = (c0 + SCRATCH_COLS).min(cols);
            let run = &mut scratch[..c1 - c0];
            for (c, col) in (c0..c1).zip(run.iter_mut()) {
                *col = F::prepare(isa, &tiles[c / F::COLS], c % F::COLS);
            }
            let sweep = Sweep { isa, cols: &scratch[..c1 - c0], c0, nb, first: c0 == 0, last: c1 == cols };
            let mut t = 0;
            while t < n_tok {
                let at = t * ld + g * ROWS - row0;
                t += match n_tok - t {
                    n if n >= NT => sweep.tokens::<F, NT>(act, t, &mut partial, out, at, ld, rows),
                    n if n >= 2 => sweep.tokens::<F, 2>(act, t, &mut partial, out, at, ld, rows),
                    _ => sweep.tokens::<F, 1>(act, t, &mut partial, out, at, ld, rows),
                };
            }
        }
    }
}

/// One run of unpacked columns of a group.
struct Sweep<'a, I, C> {
    isa: I,
    cols: &'a [C],
    /// Index of the run's first column in the row.
    c0: usize,
    /// Activation blocks per token.
    nb: usize,
    first: bool,
    last: bool,
}

impl<I: Isa, C> Sweep<'_, I, C> {
    /// Tokens `t..t + N` over the run; returns `N`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tokens<F: Format<Col = C>, const N: usize>(
        &self,
        act: &[ActQ8],
        t: usize,
        partial: &mut [__m256],
        out: &mut [f32],
        at: usize,
        ld: usize,
        rows: usize,
    ) -> usize {
        let v = self.isa.avx2();
        let n = self.cols.len();
        let a: [&[ActQ8]; N] = std::array::from_fn(|i| {
            let start = (t + i) * self.nb + self.c0;
            &act[start..start + n]
        });
        let mut acc: [__m256; N] = if self.first { [v.zero_f(); N] } else { std::array::from_fn(|i| partial[t + i]) };
        for (j, col) in self.cols.iter().enumerate() {
            F::accumulate::<I, N>(self.isa, col, std::array::from_fn(|i| &a[i][j]), &mut acc);
        }
        for (i, acc) in acc.into_iter().enumerate() {
            if self.last {
                store_rows(v, out, at + i * ld, rows, acc);
            } else {
                partial[t + i] = acc;
            }
        }
        N
    }
}
