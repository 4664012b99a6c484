//! aarch64 kernel tables, chosen at run time from the CPU's features:
//! - `neon`: baseline Advanced SIMD (every aarch64 CPU), widening multiplies;
//! - `neon-dotprod`: FEAT_DotProd `sdot`, one instruction per 4 rows × 4 elements;
//! - `neon-i8mm`: FEAT_I8MM `smmla` for the multi-token product (2 rows × 2 tokens ×
//!   8 elements per instruction), `sdot` for a single token.
//!
//! Every table reproduces the scalar kernels' integer sums exactly and their f32
//! formula operation for operation, so the packed kernels and `quantize_act` agree
//! with the scalar reference bit for bit; only `dot_f32` (fused multiply-adds in 16
//! lanes) rounds differently.
//!
//! The tables' entry points are safe functions, as on x86: each re-checks its feature
//! token ([`isa`]; a cached flag test) before entering the `#[target_feature]` code, and
//! falls back to the baseline NEON kernel without it.
//!
//! `JOULE_KERNELS=scalar|neon|neon-dotprod|neon-i8mm` forces a table; one this CPU
//! cannot run is refused with a warning and the best supported table is used.

mod dot;
mod formats;
mod gemm;
mod i8mm;
mod isa;
mod vec;

use super::{Kernels, scalar};
use isa::{DotProd, I8mm};

/// The aarch64 tables, from the baseline to the most capable.
pub const NAMES: [&str; 3] = ["neon", "neon-dotprod", "neon-i8mm"];

/// Whether this CPU can run the table `name` (false for names not in `NAMES`).
pub fn supported(name: &str) -> bool {
    match name {
        "neon" => true,
        "neon-dotprod" => DotProd::detect().is_some(),
        "neon-i8mm" => I8mm::detect().is_some(),
        _ => false,
    }
}

/// The table `name`, if this CPU can run it.
pub fn table(name: &str) -> Option<Kernels> {
    let packed = match name {
        "neon" => gemm::packed_neon(),
        "neon-dotprod" => gemm::packed_dotprod(DotProd::detect()?),
        "neon-i8mm" => i8mm::packed_i8mm(I8mm::detect()?),
        _ => return None,
    };
    let name = NAMES.into_iter().find(|n| *n == name)?;
    Some(Kernels {
        name,
        dot_f32: vec::dot_f32,
        quantize_act: vec::quantize_act,
        // The scalar bodies: the compiler vectorizes them with NEON, always present.
        attn_scores: scalar::attn_scores,
        attn_values: scalar::attn_values,
        // Tiles sized by register count (2 rows × 32 keys, 2 rows × 32 channels: 16 of
        // the 32 q registers each), not timed: no ARM hardware here.
        attention: crate::kernels::attention::attention_block_tiled::<2, 32>,
        attention_segment: crate::kernels::attention_decode::attention_segment,
        gated: crate::kernels::activation::gated,
        packed,
    })
}

/// The most capable table this CPU can run.
pub fn best() -> Kernels {
    NAMES.iter().rev().find_map(|n| table(n)).unwrap_or_else(|| {
        // `neon` is always supported; kept total rather than panicking.
        scalar::table()
    })
}
