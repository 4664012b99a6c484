//! Compute kernels: one table of function pointers filled once from the CPU's features
//! (`JOULE_FORCE_SCALAR=1` forces the scalar reference), and the matrix multiplication
//! driver that splits work across the thread pool.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod pack;
pub mod scalar;

use std::ops::Range;
use std::sync::OnceLock;

use serde::Serialize;

use crate::gguf::TensorBytes;
use crate::model::weights::Linear;
use crate::threads::ThreadPool;

pub use pack::{ActQ8, PackedTiles};

/// Weights in the layout the kernels read.
#[derive(Debug)]
pub enum PackedMatrix {
    /// The file's own bytes: rows of blocks in the tensor's ggml format (the exact path,
    /// and types the integer kernels do not take).
    Raw(TensorBytes),
    /// Repacked for the integer kernels (the fast path).
    Tiles(PackedTiles),
}

/// Which arithmetic the matrix products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 activations against exactly dequantized weights: the float math of the
    /// file's weights, for users who want fidelity over speed.
    Exact,
    /// Activations quantized per 32-block to 8 bits, integer dot products against
    /// repacked weights (as llama.cpp does, with f32 activation scales).
    #[default]
    Fast,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Precision::Exact),
            "fast" => Some(Precision::Fast),
            _ => None,
        }
    }
}

/// An integer matrix kernel: `out[t * ld + (r - 8 * groups.start)] = W[r] · act[t]` for
/// the rows of `groups` (groups of 8 rows) and tokens `0..n_tok`.
pub type GemmFn<T> = fn(&pack::Packed<T>, Range<usize>, &[ActQ8], usize, &mut [f32], usize);

/// One integer kernel per packed format.
pub struct PackedKernels {
    pub q4_0: GemmFn<pack::TileQ4_0>,
    pub q4_1: GemmFn<pack::TileQ4_1>,
    pub q5_0: GemmFn<pack::TileQ5_0>,
    pub q5_1: GemmFn<pack::TileQ5_1>,
    pub q8_0: GemmFn<pack::TileQ8_0>,
    pub q4_k: GemmFn<pack::TileQ4_K>,
    pub q5_k: GemmFn<pack::TileQ5_K>,
    pub q6_k: GemmFn<pack::TileQ6_K>,
}

impl PackedKernels {
    /// Runs the kernel for `w`'s format.
    pub fn gemm(&self, w: &PackedTiles, groups: Range<usize>, act: &[ActQ8], n_tok: usize, out: &mut [f32], ld: usize) {
        match w {
            PackedTiles::Q4_0(p) => (self.q4_0)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q4_1(p) => (self.q4_1)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q5_0(p) => (self.q5_0)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q5_1(p) => (self.q5_1)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q8_0(p) => (self.q8_0)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q4_K(p) => (self.q4_k)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q5_K(p) => (self.q5_k)(p, groups, act, n_tok, out, ld),
            PackedTiles::Q6_K(p) => (self.q6_k)(p, groups, act, n_tok, out, ld),
        }
    }
}

/// The kernels chosen for this CPU.
pub struct Kernels {
    /// Which instruction set the table uses ("scalar", "avx2", "neon-dotprod", ...).
    pub name: &'static str,
    /// Dot product of two f32 vectors of equal length.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// Quantizes activations to 8 bits per 32-block (`x.len() == 32 * out.len()`).
    pub quantize_act: fn(&[f32], &mut [ActQ8]),
    pub packed: PackedKernels,
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
    #[cfg(target_arch = "aarch64")]
    if let Some(k) = aarch64::select() {
        return k;
    }
    scalar::table()
}

/// Rows of a weight matrix dequantized per scratch fill.
const ROW_TILE: usize = 8;

/// Input of a matrix product: `[n_tokens, n_in]` f32 rows and, on the fast path, the
/// same rows quantized to 8 bits (computed once, shared by every matrix that reads them).
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub x: &'a [f32],
    pub q: Option<&'a [ActQ8]>,
}

/// `out[t][r] = W[r] · x[t]` for `n_tokens` input rows of `w.n_in` values, writing
/// `out` as `[n_tokens, w.n_out]`. Decoding (one token) splits the output rows across
/// threads; a batch splits the tokens, each thread streaming the whole matrix.
pub fn matmul(pool: &ThreadPool, w: &Linear, input: Input<'_>, n_tokens: usize, out: &mut [f32]) {
    debug_assert_eq!(input.x.len(), n_tokens * w.n_in);
    debug_assert_eq!(out.len(), n_tokens * w.n_out);
    match (&w.packed, input.q) {
        (PackedMatrix::Tiles(tiles), Some(q)) => matmul_packed(pool, tiles, w.n_out, w.n_in, q, n_tokens, out),
        (PackedMatrix::Tiles(tiles), None) => {
            // Not reached by the forward pass (it quantizes once per input); kept correct.
            let mut q = vec![ActQ8::default(); input.x.len() / 32];
            (kernels().quantize_act)(input.x, &mut q);
            matmul_packed(pool, tiles, w.n_out, w.n_in, &q, n_tokens, out);
        }
        (PackedMatrix::Raw(bytes), _) => matmul_f32(pool, w, bytes.as_slice(), input.x, n_tokens, out),
    }
}

fn matmul_packed(pool: &ThreadPool, w: &PackedTiles, n_out: usize, n_in: usize, q: &[ActQ8], n_tokens: usize, out: &mut [f32]) {
    let k = &kernels().packed;
    let n_threads = pool.n_threads();
    let nb = n_in / 32;
    if n_tokens == 1 {
        // Rows in chunks of whole groups, a few chunks per thread for balance.
        let groups = n_out.div_ceil(pack::ROWS);
        let per_chunk = groups.div_ceil(n_threads * 4).max(1);
        pool.for_each_chunk_mut(out, per_chunk * pack::ROWS, &|ci, o| {
            let g0 = ci * per_chunk;
            let g1 = (g0 + per_chunk).min(groups);
            k.gemm(w, g0..g1, q, 1, o, o.len());
        });
    } else {
        let tokens_per_chunk = n_tokens.div_ceil(n_threads * 2).max(1);
        let groups = n_out.div_ceil(pack::ROWS);
        pool.for_each_chunk_mut(out, tokens_per_chunk * n_out, &|ci, o| {
            let t0 = ci * tokens_per_chunk;
            let n_t = o.len() / n_out;
            k.gemm(w, 0..groups, &q[t0 * nb..(t0 + n_t) * nb], n_t, o, n_out);
        });
    }
}

fn matmul_f32(pool: &ThreadPool, w: &Linear, bytes: &[u8], x: &[f32], n_tokens: usize, out: &mut [f32]) {
    let (n_in, n_out) = (w.n_in, w.n_out);
    let k = kernels();
    let row_bytes = w.row_bytes();
    let n_threads = pool.n_threads();
    if n_tokens == 1 {
        let chunk = n_out.div_ceil(n_threads * 4).next_multiple_of(ROW_TILE);
        pool.for_each_chunk_mut(out, chunk, &|ci, out_rows| {
            let r0 = ci * chunk;
            with_scratch(ROW_TILE * n_in, |scratch| {
                for (tile_i, tile_out) in out_rows.chunks_mut(ROW_TILE).enumerate() {
                    let r = r0 + tile_i * ROW_TILE;
                    dequantize_rows(w, bytes, row_bytes, r, tile_out.len(), scratch);
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
    if crate::quant::dequantize_row(w.ggml_type, src, &mut scratch[..rows * w.n_in]).is_err() {
        scratch[..rows * w.n_in].fill(0.0);
    }
}

/// Dequantizes row `row` of a weight matrix (an embedding lookup).
pub fn matrix_row(w: &Linear, row: usize, out: &mut [f32]) {
    match &w.packed {
        PackedMatrix::Raw(bytes) => dequantize_rows(w, bytes.as_slice(), w.row_bytes(), row, 1, out),
        PackedMatrix::Tiles(t) => pack::dequantize_row(t, row, out),
    }
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
