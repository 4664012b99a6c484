//! The packed matrix drivers, generic over the tile format, the vector width and the dot
//! step.
//!
//! Rows are taken `S::GROUPS` groups at a time (8 or 16 rows per vector). One token
//! (decode) streams the tiles once, unpacking each column in registers. Several tokens
//! (prefill) unpack a run of columns once into an L1-sized scratch and sweep it with `NT`
//! tokens at a time, so each unpacked weight vector is loaded once per `NT` tokens and
//! the per-column factors are never recomputed.

use std::ops::Range;

use super::formats::Format;
use super::isa::{Fvec, Isa, Simd};
use crate::kernels::pack::{ActQ8, Packed, ROWS};

/// Bytes of unpacked columns per scratch run (L1 holds them with room to spare).
const SCRATCH_BYTES: usize = 24 * 1024;

/// `out[t * ld + (r - 8 * groups.start)] = W[r] · act[t]`, exactly as `scalar::gemm`
/// (same integer sums and roundings, same rows written, same panics on short buffers),
/// for `ld` at least the rows of the range when there are several tokens.
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
    // Tokens' rows must not overlap (the scalar kernel would let later ones win).
    let span = (groups.end * ROWS).min(w.n_out).saturating_sub(groups.start * ROWS);
    assert!(n_tok == 1 || ld >= span, "ld {ld} < {span} rows per token");
    match n_tok {
        1 => gemv::<F, I, 1>(isa, w, groups, act, nb, out, ld),
        // Two rows (a token's two-level activations, or two tokens): still one stream
        // of the weights, each unpacked column used twice from registers.
        2 => gemv::<F, I, 2>(isa, w, groups, act, nb, out, ld),
        _ => batched::<F, I, NT>(isa, w, groups, act, nb, n_tok, out, ld),
    }
}

/// The groups of one vector starting at group `g` (< `end`): their tiles (the first
/// group's twice when it has no partner), and the rows they hold.
fn vector_groups<F, S: Simd>(w: &Packed<F>, g: usize, end: usize) -> ([&[F]; 2], usize, usize) {
    let first = w.group(g);
    let n = if S::GROUPS == 2 && g + 1 < end { 2 } else { 1 };
    let second = if n == 2 { w.group(g + 1) } else { first };
    let rows = (n * ROWS).min(w.n_out - g * ROWS);
    ([first, second], n, rows)
}

/// `N` (1 or 2) activation rows: each column is unpacked in registers and used `N`
/// times, the weights streamed once. With two groups per vector, they come from the two
/// halves of the range, so that each half is read as one sequential stream (pairing
/// neighbours would restart the prefetchers each pair).
#[inline(always)]
fn gemv<F: Format, I: Isa, const N: usize>(
    isa: I,
    w: &Packed<F>,
    groups: Range<usize>,
    act: &[ActQ8],
    nb: usize,
    out: &mut [f32],
    ld: usize,
) {
    let v = isa.simd();
    let lanes = <I::S as Simd>::GROUPS;
    let per_lane = groups.len().div_ceil(lanes);
    let cols = w.tiles_per_group * F::COLS;
    let rows: [&[ActQ8]; N] = std::array::from_fn(|t| &act[t * nb..t * nb + cols]);
    for i in 0..per_lane {
        let ga = groups.start + i;
        let gb = (lanes == 2 && ga + per_lane < groups.end).then_some(ga + per_lane);
        let (ta, tb) = (w.group(ga), gb.map_or(w.group(ga), |g| w.group(g)));
        let mut acc = [v.zero_f(); N];
        for (j, (a_tile, b_tile)) in ta.iter().zip(tb).enumerate() {
            for c in 0..F::COLS {
                let col = F::prepare(isa, [a_tile, b_tile], c);
                let k = j * F::COLS + c;
                let a: [&ActQ8; N] = std::array::from_fn(|t| &rows[t][k]);
                F::accumulate::<I, N>(isa, &col, a, &mut acc);
            }
        }
        let place = |g: Option<usize>| {
            g.map_or((0, 0), |g| ((g - groups.start) * ROWS, ROWS.min(w.n_out - g * ROWS)))
        };
        let (a, b) = (place(Some(ga)), place(gb));
        for (t, acc) in acc.into_iter().enumerate() {
            v.store_groups(out, [a.0 + t * ld, b.0 + t * ld], [a.1, b.1], acc);
        }
    }
}

/// Several tokens: per vector of groups, runs of columns unpacked into `scratch`, then
/// swept by batches of `NT` tokens (the last batches smaller).
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
    let v = isa.simd();
    let cols = w.tiles_per_group * F::COLS;
    let run_cols = (SCRATCH_BYTES / size_of::<F::Col<I::S>>()).clamp(4, 64);
    let mut scratch: Vec<F::Col<I::S>> = Vec::with_capacity(run_cols.min(cols));
    // Partial sums between column runs (only when a row has more than one run).
    let mut partial = if cols > run_cols { vec![v.zero_f(); n_tok] } else { Vec::new() };
    let mut g = groups.start;
    while g < groups.end {
        let ([ta, tb], n, rows) = vector_groups::<F, I::S>(w, g, groups.end);
        let at = (g - groups.start) * ROWS;
        for c0 in (0..cols).step_by(run_cols) {
            let c1 = (c0 + run_cols).min(cols);
            scratch.clear();
            for c in c0..c1 {
                scratch.push(F::prepare(isa, [&ta[c / F::COLS], &tb[c / F::COLS]], c % F::COLS));
            }
            let sweep = Sweep { isa, cols: &scratch, c0, nb, first: c0 == 0, last: c1 == cols };
            let mut t = 0;
            while t < n_tok {
                let o = Out { at: at + t * ld, ld, rows };
                t += match n_tok - t {
                    r if r >= NT => sweep.tokens::<F, NT>(act, t, &mut partial, out, o),
                    r if r >= 4 => sweep.tokens::<F, 4>(act, t, &mut partial, out, o),
                    r if r >= 2 => sweep.tokens::<F, 2>(act, t, &mut partial, out, o),
                    _ => sweep.tokens::<F, 1>(act, t, &mut partial, out, o),
                };
            }
        }
        g += n;
    }
}

/// Where a batch's results go: token `i` of the batch at `out[at + i * ld..][..rows]`.
#[derive(Clone, Copy)]
struct Out {
    at: usize,
    ld: usize,
    rows: usize,
}

/// One run of unpacked columns of a vector of groups.
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
    #[inline(always)]
    fn tokens<F: Format<Col<I::S> = C>, const N: usize>(
        &self,
        act: &[ActQ8],
        t: usize,
        partial: &mut [Fvec<I>],
        out: &mut [f32],
        o: Out,
    ) -> usize {
        let v = self.isa.simd();
        let n = self.cols.len();
        let a: [&[ActQ8]; N] = std::array::from_fn(|i| {
            let start = (t + i) * self.nb + self.c0;
            &act[start..start + n]
        });
        let mut acc = [v.zero_f(); N];
        if !self.first {
            acc.copy_from_slice(&partial[t..t + N]);
        }
        for (j, col) in self.cols.iter().enumerate() {
            F::accumulate::<I, N>(self.isa, col, std::array::from_fn(|i| &a[i][j]), &mut acc);
        }
        for (i, acc) in acc.into_iter().enumerate() {
            if self.last {
                v.store_rows(out, o.at + i * o.ld, o.rows, acc);
            } else {
                partial[t + i] = acc;
            }
        }
        N
    }
}
