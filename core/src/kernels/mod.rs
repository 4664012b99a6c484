//! Compute kernels: one table of function pointers filled once from the CPU's features
//! (`JOULE_FORCE_SCALAR=1` forces the scalar reference), and the matrix multiplication
//! driver that splits work across the thread pool.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod activation;
pub mod attention;
pub mod kv_block;
pub mod pack;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

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
    pub fn gemm(
        &self,
        w: &PackedTiles,
        groups: Range<usize>,
        act: &[ActQ8],
        n_tok: usize,
        out: &mut [f32],
        ld: usize,
    ) {
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

/// `(q, hd, kt, stride, n, scores)`: see [`Kernels::attn_scores`].
pub type AttnScoresFn =
    fn(q: &[f32], hd: usize, kt: &[f32], stride: usize, n: usize, scores: &mut [f32]);
/// `(p, n, v, stride, hd, out)`: see [`Kernels::attn_values`].
pub type AttnValuesFn =
    fn(p: &[f32], n: usize, v: &[f32], stride: usize, hd: usize, out: &mut [f32]);

/// The kernels chosen for this CPU.
pub struct Kernels {
    /// Which instruction set the table uses ("scalar", "avx2", "neon-dotprod", ...).
    pub name: &'static str,
    /// Dot product of two f32 vectors of equal length.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// Quantizes activations to 8 bits per 32-block (`x.len() == 32 * out.len()`).
    pub quantize_act: fn(&[f32], &mut [ActQ8]),
    /// Attention scores of `m` query rows (`q`: `[m, hd]`) against `n` keys stored
    /// transposed (`kt`: row `d` at `d * stride`): `scores[g * n + s] = q[g] · k[s]`.
    pub attn_scores: AttnScoresFn,
    /// Blocked attention of query rows sharing a KV head (see [`attention::AttnBlock`]).
    pub attention: fn(&attention::AttnBlock<'_>, &mut [f32], &mut [f32]),
    /// Weighted sums of `n` value rows (`v`: row `s` at `s * stride`, `hd` wide) for `m`
    /// probability rows (`p`: `[m, n]`): `out[g] = Σ_s p[g * n + s] · v[s]`.
    pub attn_values: AttnValuesFn,
    /// `gate = act(gate) * up` (see [`activation::gated`]).
    pub gated: fn(gate: &mut [f32], up: &[f32], act: crate::model::config::Activation),
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

/// Names of this architecture's SIMD tables, least capable first (each may be missing
/// on a given CPU: see [`table`]).
pub fn simd_table_names() -> &'static [&'static str] {
    #[cfg(target_arch = "x86_64")]
    return &x86::NAMES;
    #[cfg(target_arch = "aarch64")]
    return &aarch64::NAMES;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return &[];
}

/// The kernel table called `name` ("scalar", "avx2", "avx2-vnni", ...), if this CPU can
/// run it (for tests and benchmarks; the process uses [`kernels`]).
pub fn table(name: &str) -> Option<Kernels> {
    match name {
        "scalar" => Some(scalar::table()),
        #[cfg(target_arch = "x86_64")]
        _ => x86::table(name),
        #[cfg(target_arch = "aarch64")]
        _ => aarch64::table(name),
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        _ => None,
    }
}

/// `JOULE_FORCE_SCALAR=1` forces the scalar table; `JOULE_KERNELS=<name>` asks for a
/// table by name (falling back, with a warning, when this CPU cannot run it); otherwise
/// the fastest table the CPU supports.
fn select() -> Kernels {
    if force_scalar() {
        return scalar::table();
    }
    if let Some(name) = std::env::var("JOULE_KERNELS").ok().filter(|v| !v.is_empty()) {
        match table(&name) {
            Some(t) => return t,
            None => log::warn!(
                "JOULE_KERNELS={name}: not available on this CPU; choosing automatically"
            ),
        }
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = x86::best() {
        return t;
    }
    #[cfg(target_arch = "aarch64")]
    return aarch64::best();
    #[cfg(not(target_arch = "aarch64"))]
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
    /// Two-level quantization: `q` holds `2 * n_tokens` rows, the second half the 8-bit
    /// quantization of what the first half left out (`x - dequant(q)`), so the product
    /// keeps about 15 bits of each activation for the price of a second integer pass.
    pub two_level: bool,
}

/// `out[t][r] = W[r] · x[t]` for `n_tokens` input rows of `w.n_in` values, writing
/// `out` as `[n_tokens, w.n_out]`. Decoding (one token) splits the output rows across
/// threads; a batch splits the tokens, each thread streaming the whole matrix.
pub fn matmul(pool: &ThreadPool, w: &Linear, input: Input<'_>, n_tokens: usize, out: &mut [f32]) {
    matmul_many(pool, &mut [(w, out)], input, n_tokens);
}

/// Several matrices applied to the same input (q, k and v; gate and up) in one pass of
/// the pool: one hand-off instead of one per matrix.
pub fn matmul_many(
    pool: &ThreadPool,
    jobs: &mut [(&Linear, &mut [f32])],
    input: Input<'_>,
    n_tokens: usize,
) {
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
    pool.for_each_item(items, &|(w, plan, ci, o)| run_chunk(w, plan, input, n_tokens, ci, o));
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
fn run_chunk(w: &Linear, plan: Plan, input: Input<'_>, n_tokens: usize, ci: usize, o: &mut [f32]) {
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
            float_rows(w, bytes.as_slice(), ci * rows, input.x, o);
        }
        (PackedMatrix::Raw(bytes), Plan::Tokens { tokens }, _) => {
            float_tokens(w, bytes.as_slice(), &input.x[ci * tokens * n_in..], o);
        }
        // Packed weights always come with quantized input (see `matmul_many`), and the
        // plan is chosen from the weights: nothing else can be asked for.
        _ => o.fill(0.0),
    }
}

/// Decoding on the float path: rows `r0..r0 + o.len()` against the one input row.
fn float_rows(w: &Linear, bytes: &[u8], r0: usize, x: &[f32], o: &mut [f32]) {
    let (n_in, row_bytes, dot) = (w.n_in, w.row_bytes(), kernels().dot_f32);
    with_scratch(ROW_TILE * n_in, |scratch| {
        for (tile_i, tile_out) in o.chunks_mut(ROW_TILE).enumerate() {
            dequantize_rows(w, bytes, row_bytes, r0 + tile_i * ROW_TILE, tile_out.len(), scratch);
            for (j, oj) in tile_out.iter_mut().enumerate() {
                *oj = dot(&scratch[j * n_in..(j + 1) * n_in], x);
            }
        }
    });
}

/// A batch on the float path: every row against the chunk's tokens (`o` is
/// `[tokens, n_out]`, `x` starts at the chunk's first token).
fn float_tokens(w: &Linear, bytes: &[u8], x: &[f32], o: &mut [f32]) {
    let (n_in, n_out, row_bytes, dot) = (w.n_in, w.n_out, w.row_bytes(), kernels().dot_f32);
    let n_t = o.len() / n_out;
    with_scratch(ROW_TILE * n_in, |scratch| {
        for r in (0..n_out).step_by(ROW_TILE) {
            let rows = ROW_TILE.min(n_out - r);
            dequantize_rows(w, bytes, row_bytes, r, rows, scratch);
            for t in 0..n_t {
                let xt = &x[t * n_in..(t + 1) * n_in];
                for (j, oj) in o[t * n_out + r..t * n_out + r + rows].iter_mut().enumerate() {
                    *oj = dot(&scratch[j * n_in..(j + 1) * n_in], xt);
                }
            }
        }
    });
}

/// Dequantizes rows `r..r + rows` of `w` into `scratch` (`rows * n_in` floats).
fn dequantize_rows(
    w: &Linear,
    bytes: &[u8],
    row_bytes: usize,
    r: usize,
    rows: usize,
    scratch: &mut [f32],
) {
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
        PackedMatrix::Raw(bytes) => {
            dequantize_rows(w, bytes.as_slice(), w.row_bytes(), row, 1, out)
        }
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
