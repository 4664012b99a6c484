//! The float kernels on AVX2+FMA: the f32 dot product and the activation quantizer.

use std::arch::x86_64::{__m256, __m256i};

use super::isa::{Avx2, Simd};
use crate::kernels::pack::ActQ8;

/// Bit for bit `scalar::dot_f32`: 8 lanes each summing its products in order (multiply,
/// then add: no fused multiply-add), then `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`
/// plus the in-order sum of the tail. The lanes' add chain bounds its speed, but calls
/// for different keys or rows are independent and overlap in the core.
#[inline(always)]
pub fn dot_f32(v: Avx2, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a8, a_tail) = a[..n].as_chunks::<8>();
    let (b8, b_tail) = b[..n].as_chunks::<8>();
    let mut acc = v.zero_f();
    for (x, y) in a8.iter().zip(b8) {
        acc = v.add_f(acc, v.mul_f(v.load_f(x), v.load_f(y)));
    }
    let mut tail = 0.0f32;
    for (x, y) in a_tail.iter().zip(b_tail) {
        tail += x * y;
    }
    v.hsum_f(acc) + tail
}

/// Bit for bit `pack::quantize_act`: `d = max|x| / 127`, quants `round(x / d)` rounded
/// half away from zero and converted as Rust's saturating `as i8` does (NaN to 0), and
/// their exact sum.
#[inline(always)]
pub fn quantize_act(v: Avx2, x: &[f32], out: &mut [ActQ8]) {
    let sign = v.splat_f(-0.0);
    let (blocks, _) = x.as_chunks::<32>();
    for (o, xs) in out.iter_mut().zip(blocks) {
        let xs: &[[f32; 8]; 4] = bytemuck::cast_ref(xs);
        let xv = [v.load_f(&xs[0]), v.load_f(&xs[1]), v.load_f(&xs[2]), v.load_f(&xs[3])];
        // `max_f` keeps its second operand when the first is NaN, as `f32::max` ignores NaN.
        let mut m = v.zero_f();
        for &xi in &xv {
            m = v.max_f(v.andnot_f(sign, xi), m);
        }
        let amax = v.hmax_f(m);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [v.zero(); 4];
        for (q, &xi) in q.iter_mut().zip(&xv) {
            *q = round_to_i8(v, v.mul_f(xi, v.splat_f(id)));
        }
        let sum = v.hsum_i32(v.add_i32(v.add_i32(q[0], q[1]), v.add_i32(q[2], q[3])));
        v.store(bytemuck::cast_mut(&mut o.qs), v.pack_i32x4_i8(q[0], q[1], q[2], q[3]));
        o.d = d;
        o.sum = sum;
    }
}

/// `y.round() as i8` per lane, as i32 lanes.
#[inline(always)]
fn round_to_i8(v: Avx2, y: __m256) -> __m256i {
    let sign = v.splat_f(-0.0);
    // Round half away from zero: truncate, then step away from zero when the dropped
    // fraction (exact in f32) is at least one half.
    let t = v.trunc_f(y);
    let frac = v.andnot_f(sign, v.sub_f(y, t));
    let away = v.or_f(v.and_f(y, sign), v.splat_f(1.0));
    let r = v.add_f(t, v.and_f(v.ge_f(frac, v.splat_f(0.5)), away));
    // Saturate like `as i8`: NaN to 0, then clamp (infinities included).
    let r = v.and_f(r, v.ordered_f(r));
    let r = v.min_f(v.max_f(r, v.splat_f(-128.0)), v.splat_f(127.0));
    v.to_i(r)
}
