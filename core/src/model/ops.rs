//! The row-wise operations of the forward pass (norms, rope, SwiGLU, residual adds,
//! activation quantization). A batch of many tokens is split by rows across the pool;
//! one token (decoding) runs on the calling thread, where a hand-off would cost more
//! than the work.

use crate::kernels::{self, ActQ8};
use crate::model::config::{Activation, RopeStyle};
use crate::threads::ThreadPool;

/// Batches of fewer rows run on the calling thread.
const PARALLEL_MIN_ROWS: usize = 8;

/// Runs `f(first_row, rows)` over `out` cut into whole rows of `row_len`, in parallel
/// when the batch is large enough.
fn rows<T: Send>(
    pool: &ThreadPool,
    out: &mut [T],
    row_len: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let n = out.len() / row_len.max(1);
    if n < PARALLEL_MIN_ROWS || pool.n_threads() == 1 {
        f(0, out);
        return;
    }
    let per_chunk = n.div_ceil(pool.n_threads() * 2);
    pool.for_each_chunk_mut(out, per_chunk * row_len, &|ci, chunk| f(ci * per_chunk, chunk));
}

/// `out[i] = x[i] / rms(x[i]) * weight` for each row of `weight.len()` values.
pub(crate) fn rmsnorm(pool: &ThreadPool, out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let d = weight.len();
    rows(pool, out, d, &|r0, out| {
        for (o, xi) in out.chunks_exact_mut(d).zip(x[r0 * d..].chunks_exact(d)) {
            let ss = sum_of_squares(xi);
            let scale = (1.0 / (ss / d as f64 + eps as f64).sqrt()) as f32;
            for ((o, &v), &g) in o.iter_mut().zip(xi).zip(weight) {
                *o = v * scale * g;
            }
        }
    });
}

/// In-place RMS norm of each row of `weight.len()` values (per-head q/k norms, post-norms).
pub(crate) fn rmsnorm_in_place(pool: &ThreadPool, x: &mut [f32], weight: &[f32], eps: f32) {
    let d = weight.len();
    rows(pool, x, d, &|_, x| {
        for xi in x.chunks_exact_mut(d) {
            let ss = sum_of_squares(xi);
            let scale = (1.0 / (ss / d as f64 + eps as f64).sqrt()) as f32;
            for (v, &g) in xi.iter_mut().zip(weight) {
                *v = *v * scale * g;
            }
        }
    });
}

/// `Σ x²` in f64, over 8 lanes summed pairwise at the end (so it vectorizes).
fn sum_of_squares(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v as f64) * (v as f64);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| (v as f64) * (v as f64)).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Quantizes `x` (rows of `row_len`, a multiple of 32) into `q` for the integer kernels.
pub(crate) fn quantize(pool: &ThreadPool, x: &[f32], row_len: usize, q: &mut [ActQ8]) {
    let quantize_act = kernels::kernels().quantize_act;
    let blocks = row_len / 32;
    rows(pool, q, blocks, &|r0, q| quantize_act(&x[r0 * row_len..r0 * row_len + q.len() * 32], q));
}

/// Two-level quantization of `x` into `q` (`2 * n_rows` rows: the 8-bit rows, then the
/// 8-bit rows of what they left out).
pub(crate) fn quantize_two_level(pool: &ThreadPool, x: &[f32], row_len: usize, q: &mut [ActQ8]) {
    let quantize_act = kernels::kernels().quantize_act;
    let blocks = x.len() / 32;
    let (hi, lo) = q[..2 * blocks].split_at_mut(blocks);
    if x.len() / row_len < PARALLEL_MIN_ROWS || pool.n_threads() == 1 {
        crate::kernels::pack::quantize_two_level(quantize_act, x, hi, lo);
        return;
    }
    // Split by rows: hi and lo chunks of the same rows go to the same thread.
    let per_row = row_len / 32;
    let rows = x.len() / row_len;
    let per_chunk = rows.div_ceil(pool.n_threads() * 2) * per_row;
    let chunks =
        std::sync::Mutex::new(hi.chunks_mut(per_chunk).zip(lo.chunks_mut(per_chunk)).enumerate());
    pool.run(&|_, _| {
        loop {
            let next = chunks.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((ci, (h, l))) = next else { break };
            let start = ci * per_chunk * 32;
            crate::kernels::pack::quantize_two_level(
                quantize_act,
                &x[start..start + h.len() * 32],
                h,
                l,
            );
        }
    });
}

/// `x += y`.
pub(crate) fn add(pool: &ThreadPool, x: &mut [f32], y: &[f32], row_len: usize) {
    rows(pool, x, row_len, &|r0, x| {
        for (a, b) in x.iter_mut().zip(&y[r0 * row_len..]) {
            *a += b;
        }
    });
}

/// `x[row] += bias` for every row.
pub(crate) fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            for (a, v) in row.iter_mut().zip(b) {
                *a += v;
            }
        }
    }
}

/// `gate = act(gate) * up` (SwiGLU or GeGLU).
pub(crate) fn gated(
    pool: &ThreadPool,
    gate: &mut [f32],
    up: &[f32],
    row_len: usize,
    act: Activation,
) {
    let gated = kernels::kernels().gated;
    rows(pool, gate, row_len, &|r0, g| gated(g, &up[r0 * row_len..r0 * row_len + g.len()], act));
}

/// Fills `cs` (`[n, n_rot / 2]` pairs of cos, sin) for the given positions, computed in
/// f64 so long positions stay exact; shared by every head and layer of the batch.
pub(crate) fn rope_table(positions: &[u32], inv_freq: &[f64], cs: &mut [f32]) {
    let half = inv_freq.len();
    for (i, &pos) in positions.iter().enumerate() {
        for (j, &f) in inv_freq.iter().enumerate() {
            let theta = pos as f64 * f;
            cs[2 * (i * half + j)] = theta.cos() as f32;
            cs[2 * (i * half + j) + 1] = theta.sin() as f32;
        }
    }
}

/// Rotates the first `n_rot` dimensions of every head of every row of `x` (rows of
/// `row_len`, heads of `head_dim`) with row `i`'s angles from `cs`.
pub(crate) fn rope(
    pool: &ThreadPool,
    x: &mut [f32],
    row_len: usize,
    head_dim: usize,
    n_rot: usize,
    style: RopeStyle,
    cs: &[f32],
) {
    let half = n_rot / 2;
    rows(pool, x, row_len, &|r0, x| {
        for (i, row) in x.chunks_exact_mut(row_len).enumerate() {
            let angles = &cs[2 * (r0 + i) * half..2 * (r0 + i + 1) * half];
            for head in row.chunks_exact_mut(head_dim) {
                for (j, a) in angles.chunks_exact(2).enumerate() {
                    let (cos, sin) = (a[0], a[1]);
                    let (p, q) = match style {
                        RopeStyle::Interleaved => (2 * j, 2 * j + 1),
                        RopeStyle::Neox => (j, j + half),
                    };
                    let (x0, x1) = (head[p], head[q]);
                    head[p] = x0 * cos - x1 * sin;
                    head[q] = x0 * sin + x1 * cos;
                }
            }
        }
    });
}

/// Rotates the first `n_rot` dimensions of every head of `row` (heads of `head_dim`) by
/// the angles whose (cos, sin) pairs are `cs` (`n_rot / 2` pairs), in f64: a key already
/// rotated at one position moves to another by the difference of the two.
pub(crate) fn rope_row(row: &mut [f32], head_dim: usize, style: RopeStyle, cs: &[(f64, f64)]) {
    let half = cs.len();
    for head in row.chunks_exact_mut(head_dim) {
        for (j, &(cos, sin)) in cs.iter().enumerate() {
            let (p, q) = match style {
                RopeStyle::Interleaved => (2 * j, 2 * j + 1),
                RopeStyle::Neox => (j, j + half),
            };
            let (x0, x1) = (head[p] as f64, head[q] as f64);
            head[p] = (x0 * cos - x1 * sin) as f32;
            head[q] = (x0 * sin + x1 * cos) as f32;
        }
    }
}
