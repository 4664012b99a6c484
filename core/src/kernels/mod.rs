//! Compute kernels: one table of function pointers filled once from the CPU's features
//! (`JOULE_FORCE_SCALAR=1` forces the scalar reference), over kernel-level types only
//! (packed tiles, 8-bit activations, raw tensor bytes). The matrix multiplication driver
//! that splits a model's matrices across the thread pool is `model::matmul`.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod activation;
pub mod attention;
pub mod attention_decode;
pub mod kv_block;
pub mod pack;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::ops::Range;
use std::sync::OnceLock;

use crate::gguf::TensorBytes;

pub use activation::Activation;
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

/// An integer matrix kernel: `out[t * ld + (r - 8 * groups.start)] = W[r] · act[t]` for
/// the rows of `groups` (groups of 8 rows) and tokens `0..n_tok`.
pub type GemmFn<T> = fn(&pack::Packed<T>, Range<usize>, &[ActQ8], usize, &mut [f32], usize);

macro_rules! packed_kernels {
    ($(($ty:ident, $tile:ident, $field:ident)),* $(,)?) => {
        /// One integer kernel per packed format (fields named after the formats).
        pub struct PackedKernels {
            $(pub $field: GemmFn<pack::$tile>,)*
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
                    $(PackedTiles::$ty(p) => (self.$field)(p, groups, act, n_tok, out, ld),)*
                }
            }
        }
    };
}
pack::for_each_packed_format!(packed_kernels);

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
    /// One segment of a decoding token's attention, unnormalized, for the threads to
    /// share a long cache (see [`attention_decode::attention_segment`]).
    pub attention_segment: fn(&attention::AttnBlock<'_>, &mut [f32], &mut [f32]),
    /// Weighted sums of `n` value rows (`v`: row `s` at `s * stride`, `hd` wide) for `m`
    /// probability rows (`p`: `[m, n]`): `out[g] = Σ_s p[g * n + s] · v[s]`.
    pub attn_values: AttnValuesFn,
    /// `gate = act(gate) * up` (see [`activation::gated`]).
    pub gated: fn(gate: &mut [f32], up: &[f32], act: Activation),
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
