//! x86_64 kernel tables: "avx2" (AVX2 + FMA + F16C), "avx2-vnni" (adds AVX-VNNI's
//! 256-bit `vpdpbusd`) and "avx512-vnni" (AVX-512 F/BW/VL/VNNI: 512-bit vectors of 16
//! rows). The integer kernels round exactly as the scalar ones (no FMA); attention's
//! explicit `mul_add`s become FMA instructions, libm's correctly rounded `fmaf` in the
//! scalar table, so those match too.
//!
//! The kernels are written once (`formats.rs`, `gemm.rs`), generic over the vector width
//! ([`isa::Simd`]) and the dot step ([`isa::Isa`]), and instantiated here inside
//! `#[target_feature]` functions so the whole kernel compiles for that instruction set.
//! The entry points in the tables are safe functions: each re-checks its feature token
//! (a cached flag test) before entering the `#[target_feature]` code, and falls back to
//! the scalar kernel without it.

mod avx2;
mod avx512;
mod float;
mod formats;
mod gemm;
mod isa;

use std::ops::Range;

use super::activation::Activation;
use super::activation::gated as gated_body;
use super::attention::{AttnBlock, attention_block, attention_block_tiled};
use super::attention_decode;
use super::pack::{self, ActQ8, Packed};
use super::{Kernels, PackedKernels, scalar};
use isa::{Avx2, Avx512, AvxVnni};

/// The x86 tables, best last.
pub const NAMES: [&str; 3] = ["avx2", "avx2-vnni", "avx512-vnni"];

/// The table called `name`, if this CPU supports it.
pub fn table(name: &str) -> Option<Kernels> {
    match name {
        "avx2" => Avx2::detect().map(|_| avx2_table()),
        "avx2-vnni" => AvxVnni::detect().map(|_| vnni_table()),
        "avx512-vnni" => Avx512::detect().map(|_| avx512_table()),
        _ => None,
    }
}

/// The fastest table this CPU supports.
pub fn best() -> Option<Kernels> {
    NAMES.iter().rev().find_map(|name| table(name))
}

/// Defines a safe entry point `$name` that runs `$body` (with `isa` bound to the token)
/// compiled for `$features`, or `$fallback` when the token is missing.
macro_rules! entry {
    (fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
     $token:ty, $features:literal, |$isa:ident| $body:expr, $fallback:expr) => {
        fn $name($($arg: $ty),*) -> $ret {
            #[target_feature(enable = $features)]
            fn inner($isa: $token, $($arg: $ty),*) -> $ret {
                $body
            }
            match <$token>::detect() {
                // SAFETY: the token exists only when the CPU has every feature `inner`
                // enables (`$token::detect`).
                Some(isa) => unsafe { inner(isa, $($arg),*) },
                None => $fallback,
            }
        }
    };
}

macro_rules! gemm_entry {
    ($name:ident, $tile:ty, $token:ty, $features:literal, $nt:literal) => {
        entry! {
            fn $name(w: &Packed<$tile>, groups: Range<usize>, act: &[ActQ8], n_tok: usize, out: &mut [f32], ld: usize) -> ();
            $token, $features,
            |isa| gemm::gemm::<$tile, $token, $nt>(isa, w, groups, act, n_tok, out, ld),
            scalar::gemm(w, groups, act, n_tok, out, ld)
        }
    };
}

entry! {
    fn dot_f32(a: &[f32], b: &[f32]) -> f32;
    Avx2, "avx2,fma,f16c", |isa| float::dot_f32(isa, a, b), scalar::dot_f32(a, b)
}

entry! {
    fn quantize_act(x: &[f32], out: &mut [ActQ8]) -> ();
    Avx2, "avx2,fma,f16c", |isa| float::quantize_act(isa, x, out), pack::quantize_act(x, out)
}

// Attention: the scalar bodies, vectorized by the compiler for AVX2 (no contraction into
// fused multiply-adds, so the results equal the scalar table's bit for bit).
entry! {
    fn attn_scores(q: &[f32], hd: usize, kt: &[f32], stride: usize, n: usize, scores: &mut [f32]) -> ();
    Avx2, "avx2,fma,f16c", |_isa| scalar::attn_scores(q, hd, kt, stride, n, scores),
    scalar::attn_scores(q, hd, kt, stride, n, scores)
}

entry! {
    fn attn_values(p: &[f32], n: usize, v: &[f32], stride: usize, hd: usize, out: &mut [f32]) -> ();
    Avx2, "avx2,fma,f16c", |_isa| scalar::attn_values(p, n, v, stride, hd, out),
    scalar::attn_values(p, n, v, stride, hd, out)
}

// Attention tiles sized to the registers: 2 rows × 32 keys and 2 rows × 32 channels are
// 8 of AVX2's 16 ymm; 4 × 32 and 4 × 64 are 8 and 16 of AVX-512's 32 zmm (measured best
// of the tilings tried on pp512).
const ROWS_AVX2: usize = 2;
const SLAB_AVX2: usize = 32;
const ROWS_512: usize = 4;
const SLAB_512: usize = 64;

entry! {
    fn attention(b: &AttnBlock<'_>, out: &mut [f32], scratch: &mut [f32]) -> ();
    Avx2, "avx2,fma,f16c", |_isa| attention_block_tiled::<ROWS_AVX2, SLAB_AVX2>(b, out, scratch), attention_block(b, out, scratch)
}

entry! {
    fn attention512(b: &AttnBlock<'_>, out: &mut [f32], scratch: &mut [f32]) -> ();
    Avx512, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", |_isa| attention_block_tiled::<ROWS_512, SLAB_512>(b, out, scratch),
    attention_block(b, out, scratch)
}

entry! {
    fn attention_segment(b: &AttnBlock<'_>, state: &mut [f32], scratch: &mut [f32]) -> ();
    Avx2, "avx2,fma,f16c", |_isa| attention_decode::attention_segment(b, state, scratch),
    attention_decode::attention_segment(b, state, scratch)
}

entry! {
    fn attention_segment512(b: &AttnBlock<'_>, state: &mut [f32], scratch: &mut [f32]) -> ();
    Avx512, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", |_isa| attention_decode::attention_segment(b, state, scratch),
    attention_decode::attention_segment(b, state, scratch)
}

entry! {
    fn gated(gate: &mut [f32], up: &[f32], act: Activation) -> ();
    Avx2, "avx2,fma,f16c", |_isa| gated_body(gate, up, act), gated_body(gate, up, act)
}

entry! {
    fn gated512(gate: &mut [f32], up: &[f32], act: Activation) -> ();
    Avx512, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", |_isa| gated_body(gate, up, act),
    gated_body(gate, up, act)
}

/// The 8 packed kernels of one table in module `$module`. `$nt` tokens share each
/// unpacked weight vector: 4 fill the 16 ymm registers (per token an integer and a float
/// accumulator, plus the operands), 8 the 32 zmm registers of AVX-512.
macro_rules! gemm_table {
    ($module:ident, $token:ty, $features:literal, $nt:literal) => {
        mod $module {
            use super::*;
            use crate::kernels::pack::{
                TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K, TileQ8_0,
            };

            gemm_entry!(q4_0, TileQ4_0, $token, $features, $nt);
            gemm_entry!(q4_1, TileQ4_1, $token, $features, $nt);
            gemm_entry!(q5_0, TileQ5_0, $token, $features, $nt);
            gemm_entry!(q5_1, TileQ5_1, $token, $features, $nt);
            gemm_entry!(q8_0, TileQ8_0, $token, $features, $nt);
            gemm_entry!(q4_k, TileQ4_K, $token, $features, $nt);
            gemm_entry!(q5_k, TileQ5_K, $token, $features, $nt);
            gemm_entry!(q6_k, TileQ6_K, $token, $features, $nt);

            pub(super) fn packed() -> PackedKernels {
                PackedKernels { q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k }
            }
        }
    };
}

gemm_table!(avx2_gemm, Avx2, "avx2,fma,f16c", 4);
gemm_table!(vnni_gemm, AvxVnni, "avx2,fma,f16c,avxvnni", 4);
gemm_table!(avx512_gemm, Avx512, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", 8);

fn avx512_table() -> Kernels {
    Kernels {
        name: "avx512-vnni",
        dot_f32,
        quantize_act,
        attn_scores,
        attn_values,
        attention: attention512,
        attention_segment: attention_segment512,
        gated: gated512,
        packed: avx512_gemm::packed(),
    }
}

fn avx2_table() -> Kernels {
    Kernels {
        name: "avx2",
        dot_f32,
        quantize_act,
        attn_scores,
        attn_values,
        attention,
        attention_segment,
        gated,
        packed: avx2_gemm::packed(),
    }
}

fn vnni_table() -> Kernels {
    Kernels {
        name: "avx2-vnni",
        dot_f32,
        quantize_act,
        attn_scores,
        attn_values,
        attention,
        attention_segment,
        gated,
        packed: vnni_gemm::packed(),
    }
}
