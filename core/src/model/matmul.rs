//! The matrix multiplication driver: splits a model's matrices ([`Linear`]) across the
//! thread pool and calls the kernel table (`kernels`) on each chunk. It sits in `model`
//! because it takes model types; the kernels below it see only packed tiles, 8-bit
//! activations and raw block bytes.

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::kernels::{ActQ8, PackedMatrix, kernels, pack, with_scratch};
use crate::model::weights::Linear;
use crate::quant;
use crate::threads::ThreadPool;

/// How matrix products treat activations: the model-level choice behind the engine's
/// user-facing `Precision` (`Exact` is `Float`, `Fast` is `Int8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPath {
    /// f32 activations against exactly dequantized weights (the file's bytes).
    Float,
    /// Activations quantized per 32-block to 8 bits, integer dot products against
    /// weights repacked at load.
    Int8,
}

/// Rows of a weight matrix dequantized per scratch fill.
const ROW_TILE: usize = 8;

/// Input of a matrix product: `[n_tokens, n_in]` f32 rows and, on the fast path, the
/// same rows quantized to 8 bits (computed once, shared by every matrix that reads them).
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub x: &'a [f32],
    pub q: Option<&'a [ActQ8]>,
    /// Two-level quantization: `q` holds `2 * n_tokens` rows, the second half the 8-bit
    /// quantization of what the first half left out (`x - dequant(q)`), so the product
    /// keeps about 15 bits of each activation for the price of a second integer pass.
    pub two_level: bool,
}

/// `out[t][r] = W[r] · x[t]` for `n_tokens` input rows of `w.n_in` values, writing
/// `out` as `[n_tokens, w.n_out]`. Decoding (one token) splits the output rows across
/// threads; a batch splits the tokens, each thread streaming the whole matrix.
pub fn matmul(
    pool: &ThreadPool,
    w: &Linear,
    input: Input<'_>,
    n_tokens: usize,
    out: &mut [f32],
) -> Result<()> {
    matmul_many(pool, &mut [(w, out)], input, n_tokens)
}

/// Several matrices applied to the same input (q, k and v; gate and up) in one pass of
/// the pool: one hand-off instead of one per matrix.
pub fn matmul_many(
    pool: &ThreadPool,
    jobs: &mut [(&Linear, &mut [f32])],
    input: Input<'_>,
    n_tokens: usize,
) -> Result<()> {
    let fallback_q;
    let mut input = input;
    if input.q.is_none() && jobs.iter().any(|(w, _)| matches!(w.packed, PackedMatrix::Tiles(_))) {
        // Not reached by the forward pass (it quantizes once per input); kept correct.
        let mut q = vec![ActQ8::default(); input.x.len() / 32];
        (kernels().quantize_act)(input.x, &mut q);
        fallback_q = q;
        input = Input { q: Some(&fallback_q), two_level: false, ..input };
    }
    let n_threads = pool.n_threads();
    let items = jobs.iter_mut().flat_map(|(w, out)| {
        let w: &Linear = w;
        let plan = Plan::new(w, n_tokens, n_threads);
        out.chunks_mut(plan.chunk_len(w)).enumerate().map(move |(ci, o)| (w, plan, ci, o))
    });
    // A chunk that fails records the first error; the others still run to the end.
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    pool.for_each_item(items, &|(w, plan, ci, o)| {
        if let Err(e) = run_chunk(w, plan, input, n_tokens, ci, o) {
            failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How one matrix's output is cut into chunks.
#[derive(Clone, Copy)]
enum Plan {
    /// Decoding: `groups` groups of 8 rows per chunk (packed weights).
    PackedRows { groups: usize },
    /// Decoding: `rows` rows per chunk (float path).
    FloatRows { rows: usize },
    /// A batch: `tokens` whole output rows per chunk.
    Tokens { tokens: usize },
}

impl Plan {
    fn new(w: &Linear, n_tokens: usize, n_threads: usize) -> Self {
        if n_tokens > 1 {
            return Plan::Tokens { tokens: n_tokens.div_ceil(n_threads * 2).max(1) };
        }
        match w.packed {
            PackedMatrix::Tiles(_) => Plan::PackedRows {
                groups: w.n_out.div_ceil(pack::ROWS).div_ceil(n_threads * 4).max(1),
            },
            PackedMatrix::Raw(_) => {
                Plan::FloatRows { rows: w.n_out.div_ceil(n_threads * 4).next_multiple_of(ROW_TILE) }
            }
        }
    }

    fn chunk_len(&self, w: &Linear) -> usize {
        match *self {
            Plan::PackedRows { groups } => groups * pack::ROWS,
            Plan::FloatRows { rows } => rows,
            Plan::Tokens { tokens } => tokens * w.n_out,
        }
    }
}

/// Computes chunk `ci` of `w`'s output under `plan`.
fn run_chunk(
    w: &Linear,
    plan: Plan,
    input: Input<'_>,
    n_tokens: usize,
    ci: usize,
    o: &mut [f32],
) -> Result<()> {
    let (n_in, n_out) = (w.n_in, w.n_out);
    let nb = n_in / 32;
    match (&w.packed, plan, input.q) {
        (PackedMatrix::Tiles(t), Plan::PackedRows { groups }, Some(q)) => {
            let g0 = ci * groups;
            let g = g0..(g0 + groups).min(n_out.div_ceil(pack::ROWS));
            let k = &kernels().packed;
            if input.two_level {
                // Both activation rows go through the kernel together: one weight stream.
                let rows = o.len();
                with_scratch(2 * rows, |both| {
                    k.gemm(t, g, &q[..2 * nb], 2, both, rows);
                    for (o, (a, b)) in o.iter_mut().zip(both[..rows].iter().zip(&both[rows..])) {
                        *o = a + b;
                    }
                });
            } else {
                k.gemm(t, g, q, 1, o, o.len());
            }
        }
        (PackedMatrix::Tiles(t), Plan::Tokens { tokens }, Some(q)) => {
            let t0 = ci * tokens;
            let n_t = o.len() / n_out;
            let groups = 0..n_out.div_ceil(pack::ROWS);
            let k = &kernels().packed;
            k.gemm(t, groups.clone(), &q[t0 * nb..(t0 + n_t) * nb], n_t, o, n_out);
            if input.two_level {
                let lo = &q[(n_tokens + t0) * nb..(n_tokens + t0 + n_t) * nb];
                with_scratch(o.len(), |extra| {
                    k.gemm(t, groups, lo, n_t, extra, n_out);
                    for (a, b) in o.iter_mut().zip(extra.iter()) {
                        *a += b;
                    }
                });
            }
        }
        (PackedMatrix::Raw(bytes), Plan::FloatRows { rows }, _) => {
            float_rows(w, bytes.as_slice(), ci * rows, input.x, o)?;
        }
        (PackedMatrix::Raw(bytes), Plan::Tokens { tokens }, _) => {
            float_tokens(w, bytes.as_slice(), &input.x[ci * tokens * n_in..], o)?;
        }
        // Packed weights always come with quantized input (see `matmul_many`), and the
        // plan is chosen from the weights: nothing else can be asked for.
        _ => {
            debug_assert!(false, "{}: plan does not match the weights or the input", w.name);
            return Err(Error::Internal(format!(
                "{}: matrix plan does not match its weights or input",
                w.name
            )));
        }
    }
    Ok(())
}

/// Decoding on the float path: rows `r0..r0 + o.len()` against the one input row.
fn float_rows(w: &Linear, bytes: &[u8], r0: usize, x: &[f32], o: &mut [f32]) -> Result<()> {
    let (n_in, row_bytes, dot) = (w.n_in, w.row_bytes(), kernels().dot_f32);
    with_scratch(ROW_TILE * n_in, |scratch| {
        for (tile_i, tile_out) in o.chunks_mut(ROW_TILE).enumerate() {
            dequantize_rows(w, bytes, row_bytes, r0 + tile_i * ROW_TILE, tile_out.len(), scratch)?;
            for (j, oj) in tile_out.iter_mut().enumerate() {
                *oj = dot(&scratch[j * n_in..(j + 1) * n_in], x);
            }
        }
        Ok(())
    })
}

/// A batch on the float path: every row against the chunk's tokens (`o` is
/// `[tokens, n_out]`, `x` starts at the chunk's first token).
fn float_tokens(w: &Linear, bytes: &[u8], x: &[f32], o: &mut [f32]) -> Result<()> {
    let (n_in, n_out, row_bytes, dot) = (w.n_in, w.n_out, w.row_bytes(), kernels().dot_f32);
    let n_t = o.len() / n_out;
    with_scratch(ROW_TILE * n_in, |scratch| {
        for r in (0..n_out).step_by(ROW_TILE) {
            let rows = ROW_TILE.min(n_out - r);
            dequantize_rows(w, bytes, row_bytes, r, rows, scratch)?;
            for t in 0..n_t {
                let xt = &x[t * n_in..(t + 1) * n_in];
                for (j, oj) in o[t * n_out + r..t * n_out + r + rows].iter_mut().enumerate() {
                    *oj = dot(&scratch[j * n_in..(j + 1) * n_in], xt);
                }
            }
        }
        Ok(())
    })
}

/// Dequantizes rows `r..r + rows` of `w` into `scratch` (`rows * n_in` floats).
fn dequantize_rows(
    w: &Linear,
    bytes: &[u8],
    row_bytes: usize,
    r: usize,
    rows: usize,
    scratch: &mut [f32],
) -> Result<()> {
    let src = &bytes[r * row_bytes..(r + rows) * row_bytes];
    // Shapes and types were validated at load, so this cannot fail.
    let done = quant::dequantize_row(w.ggml_type, src, &mut scratch[..rows * w.n_in]);
    debug_assert!(done.is_ok(), "{}: {done:?}", w.name);
    done.map_err(Error::from)
}

/// Dequantizes row `row` of a weight matrix (an embedding lookup).
pub fn matrix_row(w: &Linear, row: usize, out: &mut [f32]) -> Result<()> {
    match &w.packed {
        PackedMatrix::Raw(bytes) => {
            dequantize_rows(w, bytes.as_slice(), w.row_bytes(), row, 1, out)
        }
        PackedMatrix::Tiles(t) => {
            pack::dequantize_row(t, row, out);
            Ok(())
        }
    }
}
