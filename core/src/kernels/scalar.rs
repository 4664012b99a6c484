//! The scalar reference kernels: plain Rust loops every SIMD kernel is tested against.

use super::Kernels;

pub(super) fn table() -> Kernels {
    Kernels { name: "scalar", dot_f32 }
}

/// f32 dot product, accumulated in 8 independent lanes (so the compiler can keep
/// several sums in flight) and summed pairwise at the end.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for l in 0..8 {
            acc[l] += a[i * 8 + l] * b[i * 8 + l];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..a.len() {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
