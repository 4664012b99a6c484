//! The float kernels on AVX2+FMA: the f32 dot product and the activation quantizer.

use std::arch::x86_64::{__m256, __m256i};

use super::isa::Avx2;
use crate::kernels::pack::ActQ8;

/// Dot product in 32 independent lanes (4 FMA chains), summed pairwise at the end.
#[inline(always)]
pub fn dot_f32(v: Avx2, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a8, a_tail) = a[..n].as_chunks::<8>();
    let (b8, b_tail) = b[..n].as_chunks::<8>();
    let mut acc = [v.zero_f(); 4];
    let mut pairs = a8.chunks_exact(4).zip(b8.chunks_exact(4));
    for (x, y) in pairs.by_ref() {
        for l in 0..4 {
            acc[l] = v.fmadd(v.load_f(&x[l]), v.load_f(&y[l]), acc[l]);
        }
    }
    let done = a8.len() / 4 * 4;
    for (x, y) in a8[done..].iter().zip(&b8[done..]) {
        acc[0] = v.fmadd(v.load_f(x), v.load_f(y), acc[0]);
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    v.hsum_f(v.add_f(v.add_f(acc[0], acc[1]), v.add_f(acc[2], acc[3]))) + tail
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
        let q = xv.map(|xi| round_to_i8(v, v.mul_f(xi, v.splat_f(id))));
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
