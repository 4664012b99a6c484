//! Gated feed-forward activations, `gate = act(gate) * up`: plain Rust the compiler
//! vectorizes, compiled for each SIMD table's instruction set like the attention body
//! (no fused multiply-adds, so every table gives the same bits).

use super::attention::exp;
use serde::Serialize;

/// The feed-forward gate's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(x)` (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU).
    GeluTanh,
}

/// `gate[i] = act(gate[i]) * up[i]` (SwiGLU or GeGLU with the tanh approximation).
#[inline(always)]
pub fn gated(gate: &mut [f32], up: &[f32], act: Activation) {
    match act {
        // Joule's own exp (not the platform's libm): fast, vectorized, and the same bits
        // on every platform.
        Activation::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = *g / (1.0 + exp(-*g)) * u;
            }
        }
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            for (g, &u) in gate.iter_mut().zip(up) {
                let x = *g;
                // tanh(y) = 1 - 2 / (e^2y + 1)
                let y = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
                let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
                *g = 0.5 * x * (1.0 + tanh) * u;
            }
        }
    }
}
