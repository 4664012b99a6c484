//! The unquantized formats: F32, F16 (IEEE half) and BF16 (bfloat16), one value per
//! element. Conversions round to nearest, ties to even, like ggml's reference
//! conversions (`half` implements the same rules, NaNs stay NaN).

use half::{bf16, f16};

/// Widens F16 values to f32 (exact).
///
/// # Panics
/// If `out.len() != src.len()`.
pub fn dequantize_f16(src: &[f16], out: &mut [f32]) {
    assert_eq!(src.len(), out.len(), "dequantize_f16: length mismatch");
    for (o, &v) in out.iter_mut().zip(src) {
        *o = v.to_f32();
    }
}

/// Rounds f32 values to F16 (nearest, ties to even; overflow gives ±inf).
///
/// # Panics
/// If `out.len() != x.len()`.
pub fn quantize_f16(x: &[f32], out: &mut [f16]) {
    assert_eq!(x.len(), out.len(), "quantize_f16: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(v);
    }
}

/// Widens BF16 values to f32 (exact).
///
/// # Panics
/// If `out.len() != src.len()`.
pub fn dequantize_bf16(src: &[bf16], out: &mut [f32]) {
    assert_eq!(src.len(), out.len(), "dequantize_bf16: length mismatch");
    for (o, &v) in out.iter_mut().zip(src) {
        *o = v.to_f32();
    }
}

/// Rounds f32 values to BF16 (nearest, ties to even; NaNs become quiet NaNs).
///
/// # Panics
/// If `out.len() != x.len()`.
pub fn quantize_bf16(x: &[f32], out: &mut [bf16]) {
    assert_eq!(x.len(), out.len(), "quantize_bf16: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = bf16::from_f32(v);
    }
}

/// `Σ w[i] * x[i]` in f32, accumulated left to right.
///
/// # Panics
/// If the lengths differ.
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len(), "dot_f32: length mismatch");
    let mut acc = 0.0f32;
    for (&a, &b) in w.iter().zip(x) {
        acc += a * b;
    }
    acc
}

/// `Σ f32(w[i]) * x[i]` in f32, accumulated left to right.
///
/// # Panics
/// If the lengths differ.
pub fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len(), "dot_f16: length mismatch");
    let mut acc = 0.0f32;
    for (&a, &b) in w.iter().zip(x) {
        acc += a.to_f32() * b;
    }
    acc
}

/// `Σ f32(w[i]) * x[i]` in f32, accumulated left to right.
///
/// # Panics
/// If the lengths differ.
pub fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len(), "dot_bf16: length mismatch");
    let mut acc = 0.0f32;
    for (&a, &b) in w.iter().zip(x) {
        acc += a.to_f32() * b;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bits_decode_by_hand() {
        // sign | 5-bit exponent (bias 15) | 10-bit mantissa
        let bits: [u16; 6] = [0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF, 0x0000];
        let want = [1.0, -2.0, 1365.0 / 4096.0, 2f32.powi(-24), 65504.0, 0.0];
        let src: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
        let mut out = [0f32; 6];
        dequantize_f16(&src, &mut out);
        assert_eq!(out, want);
    }

    #[test]
    fn bf16_bits_decode_by_hand() {
        // bf16 is the top half of an f32
        let bits: [u16; 4] = [0x3F80, 0xC0A0, 0x3EAB, 0x0001];
        let want = [1.0, -5.0, f32::from_bits(0x3EAB_0000), f32::from_bits(0x0001_0000)];
        let src: Vec<bf16> = bits.iter().map(|&b| bf16::from_bits(b)).collect();
        let mut out = [0f32; 4];
        dequantize_bf16(&src, &mut out);
        assert_eq!(out, want);
    }

    #[test]
    fn conversions_round_to_nearest_even() {
        // 1 + 2^-11 is halfway between f16 1.0 and 1 + 2^-10: ties to even gives 1.0.
        let x = [1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 70000.0];
        let mut h = [f16::ZERO; 3];
        quantize_f16(&x, &mut h);
        assert_eq!(h[0].to_bits(), 0x3C00);
        assert_eq!(h[1].to_bits(), 0x3C02);
        assert!(h[2].is_infinite());
        // bf16: 0x3F808000 is halfway between 0x3F80 and 0x3F81: even wins.
        let y = [f32::from_bits(0x3F80_8000), f32::from_bits(0x3F81_8000), f32::NAN];
        let mut b = [bf16::ZERO; 3];
        quantize_bf16(&y, &mut b);
        assert_eq!(b[0].to_bits(), 0x3F80);
        assert_eq!(b[1].to_bits(), 0x3F82);
        assert!(b[2].is_nan());
    }

    #[test]
    fn float_dots_match_f64_reference() {
        let w: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.11).cos()).collect();
        let reference: f64 = w.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((dot_f32(&w, &x) as f64 - reference).abs() < 1e-5);
        let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let rh: f64 = wh.iter().zip(&x).map(|(&a, &b)| a.to_f64() * b as f64).sum();
        assert!((dot_f16(&wh, &x) as f64 - rh).abs() < 1e-5);
        let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
        let rb: f64 = wb.iter().zip(&x).map(|(&a, &b)| a.to_f64() * b as f64).sum();
        assert!((dot_bf16(&wb, &x) as f64 - rb).abs() < 1e-5);
    }
}
