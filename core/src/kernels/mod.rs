//! Compute kernels: one table of function pointers filled once from the CPU's features
//! (`JOULE_FORCE_SCALAR=1` forces the scalar reference), and the matrix multiplication
//! driver that splits work across the thread pool.

mod scalar;

use std::sync::OnceLock;

use serde::Serialize;

use crate::gguf::TensorBytes;
use crate::model::weights::Linear;
use crate::quant;
use crate::threads::ThreadPool;

/// Weights in the layout the kernels read.
#[derive(Debug)]
pub enum PackedMatrix {
    /// The file's own bytes: rows of blocks in the tensor's ggml format.
    Raw(TensorBytes),
}

/// Which arithmetic the matrix products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 activations against exactly dequantized weights: the float math of the
    /// file's weights, for users who want fidelity over speed.
    #[default]
    Exact,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
        }
    }
}

/// The kernels chosen for this CPU.
pub struct Kernels {
    /// Which instruction set the table uses ("scalar", "avx2", "neon-dotprod", ...).
    pub name: &'static str,
    /// Dot product of two f32 vectors of equal length.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

/// The kernel table for this process, chosen on first use.
pub fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(select)
}

fn force_scalar() -> bool {
    std::env::var("JOULE_FORCE_SCALAR").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn select() -> Kernels {
    if force_scalar() {
        return scalar::table();
    }
    scalar::table()
}

/// Rows of a weight matrix dequantized per scratch fill.
const ROW_TILE: usize = 8;

/// `out[t][r] = W[r] · x[t]` for `n_tokens` input rows of `w.n_in` values, writing
/// `out` as `[n_tokens, w.n_out]`. Decoding (one token) splits the output rows across
/// threads; a batch splits the tokens, each thread streaming the whole matrix.
pub fn matmul(pool: &ThreadPool, w: &Linear, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    let (n_in, n_out) = (w.n_in, w.n_out);
    debug_assert_eq!(x.len(), n_tokens * n_in);
    debug_assert_eq!(out.len(), n_tokens * n_out);
    let k = kernels();
    let PackedMatrix::Raw(bytes) = &w.packed;
    let bytes = bytes.as_slice();
    let row_bytes = w.row_bytes();
    let n_threads = pool.n_threads();
    if n_tokens == 1 {
        let chunk = n_out.div_ceil(n_threads * 4).next_multiple_of(ROW_TILE);
        pool.for_each_chunk_mut(out, chunk, &|ci, out_rows| {
            let r0 = ci * chunk;
            with_scratch(ROW_TILE * n_in, |scratch| {
                for (tile_i, tile_out) in out_rows.chunks_mut(ROW_TILE).enumerate() {
                    let r = r0 + tile_i * ROW_TILE;
                    let rows = tile_out.len();
                    dequantize_rows(w, bytes, row_bytes, r, rows, scratch);
                    for (j, o) in tile_out.iter_mut().enumerate() {
                        *o = (k.dot_f32)(&scratch[j * n_in..(j + 1) * n_in], x);
                    }
                }
            });
        });
    } else {
        let tokens_per_chunk = n_tokens.div_ceil(n_threads * 2).max(1);
        pool.for_each_chunk_mut(out, tokens_per_chunk * n_out, &|ci, out_tokens| {
            let t0 = ci * tokens_per_chunk;
            let n_t = out_tokens.len() / n_out;
            with_scratch(ROW_TILE * n_in, |scratch| {
                for r in (0..n_out).step_by(ROW_TILE) {
                    let rows = ROW_TILE.min(n_out - r);
                    dequantize_rows(w, bytes, row_bytes, r, rows, scratch);
                    for t in 0..n_t {
                        let xt = &x[(t0 + t) * n_in..(t0 + t + 1) * n_in];
                        let o = &mut out_tokens[t * n_out + r..t * n_out + r + rows];
                        for (j, oj) in o.iter_mut().enumerate() {
                            *oj = (k.dot_f32)(&scratch[j * n_in..(j + 1) * n_in], xt);
                        }
                    }
                }
            });
        });
    }
}

/// Dequantizes rows `r..r + rows` of `w` into `scratch` (`rows * n_in` floats).
fn dequantize_rows(w: &Linear, bytes: &[u8], row_bytes: usize, r: usize, rows: usize, scratch: &mut [f32]) {
    let src = &bytes[r * row_bytes..(r + rows) * row_bytes];
    // Shapes and types were validated at load, so this cannot fail; a zeroed result
    // would show up in every reference test.
    if quant::dequantize_row(w.ggml_type, src, &mut scratch[..rows * w.n_in]).is_err() {
        scratch[..rows * w.n_in].fill(0.0);
    }
}

/// Dequantizes row `row` of a weight matrix (an embedding lookup).
pub fn matrix_row(w: &Linear, row: usize, out: &mut [f32]) {
    let PackedMatrix::Raw(bytes) = &w.packed;
    let rb = w.row_bytes();
    dequantize_rows(w, &bytes.as_slice()[..], rb, row, 1, out);
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer of at least `len` floats (grown once,
/// reused for every later call).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}
