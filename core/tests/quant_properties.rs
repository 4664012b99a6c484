//! Properties of the reference formats on seeded random data: round-trip error bounds,
//! requantization stability, integer dot products against float dots (within the
//! error budget the 8-bit activations allow, and exactly for activations already on
//! the 8-bit grid), and that the type-erased layer never panics on bad lengths.

use joule_core::quant::{self, ActivationKind, BlockQ8_K, BlockQ8x32, GgmlType, QK_K};
use proptest::prelude::*;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gaussian(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const QUANTIZED: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Weight-like data: Gaussian with a per-256 scale that varies over two decades and a
/// few outliers, as in real weight matrices.
fn weights(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    let mut x = Vec::with_capacity(n);
    for i in 0..n {
        let scale = 10f32.powf((i / 256 % 5) as f32 * 0.5 - 2.0);
        let outlier = if rng.below(97) == 0 { 6.0 } else { 1.0 };
        x.push(rng.gaussian() * scale * outlier);
    }
    x
}

fn quantize_bytes(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let nbytes = ty.row_bytes(x.len() as u64).unwrap() as usize;
    let mut bytes = vec![0u8; nbytes];
    quant::quantize_row(ty, x, &mut bytes).unwrap();
    bytes
}

/// Dequantizes through an aligned copy (a `Vec<u8>` has no alignment guarantee).
fn dequantize_bytes(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let mut backing = vec![0u64; bytes.len().div_ceil(8)];
    let aligned = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut backing)[..bytes.len()];
    aligned.copy_from_slice(bytes);
    let n = bytes.len() / ty.type_size() * ty.block_size();
    let mut out = vec![0f32; n];
    quant::dequantize_row(ty, aligned, &mut out).unwrap();
    out
}

/// Relative RMSE, `sqrt(Σ(x - y)² / Σx²)`, over each 256-value span (so every scale
/// counts equally), averaged.
fn relative_rmse(x: &[f32], y: &[f32]) -> f64 {
    let spans: Vec<f64> = x
        .chunks(256)
        .zip(y.chunks(256))
        .map(|(a, b)| {
            let err: f64 = a.iter().zip(b).map(|(&p, &q)| (p as f64 - q as f64).powi(2)).sum();
            let sig: f64 = a.iter().map(|&p| (p as f64).powi(2)).sum();
            (err / sig).sqrt()
        })
        .collect();
    spans.iter().sum::<f64>() / spans.len() as f64
}

/// Round trips of weight-like data stay under each format's error bound. Measured with
/// the reference quantizers on this data (mean over 256-value spans of the relative
/// RMSE): F16 0.00021, BF16 0.00169, Q8_0 0.00682, Q6_K 0.0216, Q5_K 0.0404,
/// Q5_1 0.0418, Q5_0 0.0537, Q4_K 0.0798, Q4_1 0.0860, Q4_0 0.1080; the bounds are
/// about 1.2x that, and the error must also exceed a third of the bound (a round trip
/// that loses nothing would mean the test compares the wrong things).
#[test]
fn round_trip_error_is_bounded() {
    let n = 256 * 64;
    let x = weights(1, n);
    let bounds = [
        (GgmlType::F16, 2.6e-4),
        (GgmlType::BF16, 2.1e-3),
        (GgmlType::Q8_0, 8.2e-3),
        (GgmlType::Q6_K, 2.6e-2),
        (GgmlType::Q5_K, 4.9e-2),
        (GgmlType::Q5_1, 5.0e-2),
        (GgmlType::Q5_0, 6.5e-2),
        (GgmlType::Q4_K, 9.6e-2),
        (GgmlType::Q4_1, 0.104),
        (GgmlType::Q4_0, 0.13),
    ];
    let mut report = String::new();
    for (ty, bound) in bounds {
        let y = dequantize_bytes(ty, &quantize_bytes(ty, &x));
        let rel = relative_rmse(&x, &y);
        report.push_str(&format!("{ty}: {rel:.5}\n"));
        assert!(rel <= bound, "{ty}: relative rmse {rel} over {bound}\n{report}");
        assert!(rel > bound / 3.0, "{ty}: relative rmse {rel} suspiciously low for bound {bound}");
    }
    let y = dequantize_bytes(GgmlType::F32, &quantize_bytes(GgmlType::F32, &x));
    assert_eq!(x, y);
}

/// No value is further from its input than half a quantization step (plus the f16
/// rounding of the block's scale and minimum) for the formats with one scale per block,
/// except where Q4_0/Q5_0 clamp the side opposite their largest element.
#[test]
fn per_value_error_is_within_half_a_step() {
    let x = weights(2, 256 * 16);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0] {
        let y = dequantize_bytes(ty, &quantize_bytes(ty, &x));
        // largest |quant| that multiplies d, and whether the format has a minimum
        let (qmax, affine) = match ty {
            GgmlType::Q4_0 => (8.0, false),
            GgmlType::Q5_0 => (16.0, false),
            GgmlType::Q8_0 => (127.0, false),
            GgmlType::Q4_1 => (15.0, true),
            _ => (31.0, true),
        };
        for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let max = xs.iter().fold(f32::MIN, |m, &v| m.max(v));
            let min = xs.iter().fold(f32::MAX, |m, &v| m.min(v));
            let amax = max.max(-min);
            // symmetric formats map amax to qmax steps, affine ones [min, max] to qmax
            let step = if affine { (max - min) / qmax } else { amax / qmax };
            // f16 rounding (relative 2^-11) of d, times at most qmax steps, and of m
            let m_slack = if affine { min.abs() } else { 0.0 };
            let slack = 2f32.powi(-11) * (qmax * step + m_slack) + 1e-6 * amax;
            for (i, (&a, &b2)) in xs.iter().zip(ys).enumerate() {
                // Q4_0 and Q5_0 have levels -qmax..qmax-1 with the largest-magnitude
                // element on -qmax, so values on the other side clamp at qmax - 1 steps.
                let clamp_at = (qmax - 1.0) * step;
                let clamped = !affine && ty != GgmlType::Q8_0 && a.abs() > clamp_at + 0.5 * step;
                let limit = if clamped { a.abs() - clamp_at } else { 0.5 * step };
                let err = (a - b2).abs();
                assert!(
                    err <= limit + slack,
                    "{ty} block {b} element {i}: {a} -> {b2}, step {step}"
                );
            }
        }
    }
}

/// Quantizing the dequantized values again gives the same bytes for every format whose
/// scale is a plain function of the block's extremes (and for F16/BF16). The k-quants
/// search scales, so there the second round only has to be no worse than the first.
#[test]
fn requantization_is_stable() {
    let x = weights(3, 256 * 32);
    for ty in [
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ] {
        let first = quantize_bytes(ty, &x);
        let y = dequantize_bytes(ty, &first);
        let second = quantize_bytes(ty, &y);
        let differing = first.iter().zip(&second).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{ty}: {differing} bytes changed on requantization");
    }
    for ty in [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let y = dequantize_bytes(ty, &quantize_bytes(ty, &x));
        let z = dequantize_bytes(ty, &quantize_bytes(ty, &y));
        let first = relative_rmse(&x, &y);
        let second = relative_rmse(&y, &z);
        assert!(second <= first, "{ty}: second round error {second} over first {first}");
    }
}

/// The type's integer dot with `x` quantized to its activation format, and the dot's
/// error budget: each activation is off by at most half its block's step, so the dot is
/// off by at most `Σ_blocks |d_a|/2 · Σ|w|`, plus f32 accumulation (1e-5 · Σ|w·x|).
fn integer_dot(ty: GgmlType, w_bytes: &[u8], w: &[f32], x: &[f32]) -> (f32, f64) {
    let abs_wx: f64 = w.iter().zip(x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
    let budget = |block: usize, scales: Vec<f32>| -> f64 {
        let abs_sum = |wb: &[f32]| wb.iter().map(|v| v.abs() as f64).sum::<f64>();
        let act: f64 =
            w.chunks(block).zip(scales).map(|(wb, d)| d.abs() as f64 / 2.0 * abs_sum(wb)).sum();
        act + 1e-5 * abs_wx
    };
    match quant::activation_kind(ty).unwrap() {
        ActivationKind::Q8x32 => {
            let mut a = vec![bytemuck::Zeroable::zeroed(); x.len() / 32];
            quant::q8_act::quantize(x, &mut a);
            let got = dot_q8x32(ty, w_bytes, &a);
            (got, budget(32, a.iter().map(|b| b.d).collect()))
        }
        ActivationKind::Q8K => {
            let mut a = vec![bytemuck::Zeroable::zeroed(); x.len() / QK_K];
            quant::q8_k::quantize(x, &mut a);
            let got = dot_q8k(ty, w_bytes, &a);
            (got, budget(QK_K, a.iter().map(|b| b.d).collect()))
        }
        ActivationKind::F32 => unreachable!("{ty}"),
    }
}

/// Copies bytes into a properly aligned block vector.
fn aligned<B: bytemuck::Pod>(bytes: &[u8]) -> Vec<B> {
    let mut blocks = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut blocks).copy_from_slice(bytes);
    blocks
}

fn dot_q8x32(ty: GgmlType, w: &[u8], a: &[BlockQ8x32]) -> f32 {
    match ty {
        GgmlType::Q4_0 => quant::q4_0::vec_dot(&aligned(w), a),
        GgmlType::Q4_1 => quant::q4_1::vec_dot(&aligned(w), a),
        GgmlType::Q5_0 => quant::q5_0::vec_dot(&aligned(w), a),
        GgmlType::Q5_1 => quant::q5_1::vec_dot(&aligned(w), a),
        GgmlType::Q8_0 => quant::q8_0::vec_dot(&aligned(w), a),
        _ => unreachable!("{ty}"),
    }
}

fn dot_q8k(ty: GgmlType, w: &[u8], a: &[BlockQ8_K]) -> f32 {
    match ty {
        GgmlType::Q4_K => quant::q4_k::vec_dot(&aligned(w), a),
        GgmlType::Q5_K => quant::q5_k::vec_dot(&aligned(w), a),
        GgmlType::Q6_K => quant::q6_k::vec_dot(&aligned(w), a),
        _ => unreachable!("{ty}"),
    }
}

fn f64_dot(w: &[f32], x: &[f32]) -> f64 {
    w.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum()
}

#[test]
fn integer_dots_stay_within_the_activation_budget() {
    let n = 256 * 8;
    for (k, ty) in QUANTIZED.into_iter().enumerate() {
        for trial in 0..8u64 {
            let w_src = weights(100 + 8 * k as u64 + trial, n);
            let x = weights(200 + 8 * k as u64 + trial, n);
            let w_bytes = quantize_bytes(ty, &w_src);
            let w = dequantize_bytes(ty, &w_bytes);
            let (got, budget) = integer_dot(ty, &w_bytes, &w, &x);
            let exact = f64_dot(&w, &x);
            let err = (got as f64 - exact).abs();
            assert!(
                err <= budget,
                "{ty} trial {trial}: {got} vs {exact}, error {err} over budget {budget}"
            );
        }
    }
}

/// Per block of the integer dot: the block's f64 value computed from the exact integer
/// sums, and the sum of the magnitudes of its parts (for the f32 rounding bound).
fn exact_block_terms(ty: GgmlType, w: &[u8], x: &[f32]) -> Vec<(f64, f64)> {
    use quant::*;
    let f = |v: f32| v as f64;
    let two = |a: f64, b: f64| (a + b, a.abs() + b.abs());
    let q8x32 = || {
        let mut a: Vec<BlockQ8x32> = vec![bytemuck::Zeroable::zeroed(); x.len() / 32];
        q8_act::quantize(x, &mut a);
        a
    };
    let q8k = || {
        let mut a: Vec<BlockQ8_K> = vec![bytemuck::Zeroable::zeroed(); x.len() / QK_K];
        q8_k::quantize(x, &mut a);
        a
    };
    match ty {
        GgmlType::Q4_0 => std::iter::zip(aligned::<BlockQ4_0>(w), q8x32())
            .map(|(w, a)| two(f(w.d.to_f32()) * f(a.d) * q4_0::block_dot(&w, &a) as f64, 0.0))
            .collect(),
        GgmlType::Q5_0 => std::iter::zip(aligned::<BlockQ5_0>(w), q8x32())
            .map(|(w, a)| two(f(w.d.to_f32()) * f(a.d) * q5_0::block_dot(&w, &a) as f64, 0.0))
            .collect(),
        GgmlType::Q8_0 => std::iter::zip(aligned::<BlockQ8_0>(w), q8x32())
            .map(|(w, a)| two(f(w.d.to_f32()) * f(a.d) * q8_0::block_dot(&w, &a) as f64, 0.0))
            .collect(),
        GgmlType::Q4_1 => std::iter::zip(aligned::<BlockQ4_1>(w), q8x32())
            .map(|(w, a)| {
                let main = f(w.d.to_f32()) * f(a.d) * q4_1::block_dot(&w, &a) as f64;
                two(main, f(w.m.to_f32()) * f(a.s))
            })
            .collect(),
        GgmlType::Q5_1 => std::iter::zip(aligned::<BlockQ5_1>(w), q8x32())
            .map(|(w, a)| {
                let main = f(w.d.to_f32()) * f(a.d) * q5_1::block_dot(&w, &a) as f64;
                two(main, f(w.m.to_f32()) * f(a.s))
            })
            .collect(),
        GgmlType::Q4_K => std::iter::zip(aligned::<BlockQ4_K>(w), q8k())
            .map(|(w, a)| {
                let (scaled, mins) = q4_k::superblock_dot(&w, &a);
                two(
                    f(w.d.to_f32()) * f(a.d) * scaled as f64,
                    -f(w.dmin.to_f32()) * f(a.d) * mins as f64,
                )
            })
            .collect(),
        GgmlType::Q5_K => std::iter::zip(aligned::<BlockQ5_K>(w), q8k())
            .map(|(w, a)| {
                let (scaled, mins) = q5_k::superblock_dot(&w, &a);
                two(
                    f(w.d.to_f32()) * f(a.d) * scaled as f64,
                    -f(w.dmin.to_f32()) * f(a.d) * mins as f64,
                )
            })
            .collect(),
        GgmlType::Q6_K => std::iter::zip(aligned::<BlockQ6_K>(w), q8k())
            .map(|(w, a)| two(f(w.d.to_f32()) * f(a.d) * q6_k::superblock_dot(&w, &a) as f64, 0.0))
            .collect(),
        _ => unreachable!("{ty}"),
    }
}

/// Activations on the 8-bit grid (`k/128` with some `|k| = 127` in every block) are
/// quantized without error. Then the integer sums reproduce the exact float dot of the
/// dequantized weights (checked in f64, where every block term is exact), and
/// `vec_dot` differs from it only by the f32 rounding of one product per part and the
/// accumulation: at most `(blocks + 3) · 2^-24 · Σ|parts|`.
#[test]
fn integer_dots_are_exact_for_activations_on_the_grid() {
    let n = 256 * 8;
    let mut rng = SplitMix64(7);
    for ty in QUANTIZED {
        let w_bytes = quantize_bytes(ty, &weights(300 + ty.id() as u64, n));
        let w = dequantize_bytes(ty, &w_bytes);
        for trial in 0..4 {
            let mut x: Vec<f32> = (0..n).map(|_| (rng.below(255) as f32 - 127.0) / 128.0).collect();
            for (b, block) in x.chunks_mut(32).enumerate() {
                let edge = if (b + trial) % 2 == 0 { 127.0 / 128.0 } else { -127.0 / 128.0 };
                block[rng.below(32) as usize] = edge;
            }
            let terms = exact_block_terms(ty, &w_bytes, &x);
            let from_integers: f64 = terms.iter().map(|t| t.0).sum();
            let magnitude: f64 = terms.iter().map(|t| t.1).sum();
            let exact = f64_dot(&w, &x);
            let abs_wx: f64 = w.iter().zip(&x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
            assert!(
                (from_integers - exact).abs() <= 1e-12 * (abs_wx + magnitude),
                "{ty}: integer sums give {from_integers}, float dot {exact}"
            );
            let (got, _) = integer_dot(ty, &w_bytes, &w, &x);
            let tol = (terms.len() + 3) as f64 * 2f64.powi(-24) * magnitude;
            assert!(
                (got as f64 - exact).abs() <= tol,
                "{ty}: vec_dot {got} vs exact {exact} (tol {tol})"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any (type, element count, byte count) gives Ok exactly when the sizes agree and the
    /// type is supported, and an error otherwise; never a panic.
    #[test]
    fn type_erased_layer_never_panics(type_id in 0u32..40, elements in 0usize..1100, bytes in 0usize..1200) {
        let Some(ty) = GgmlType::from_id(type_id) else { return Ok(()); };
        let consistent = ty.is_supported()
            && elements % ty.block_size() == 0
            && elements / ty.block_size() * ty.type_size() == bytes;
        let mut backing = vec![0u64; bytes.div_ceil(8)];
        let buf = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut backing)[..bytes];
        let x = vec![0.5f32; elements];
        prop_assert_eq!(quant::quantize_row(ty, &x, buf).is_ok(), consistent);
        let mut out = vec![0f32; elements];
        prop_assert_eq!(quant::dequantize_row(ty, buf, &mut out).is_ok(), consistent);
    }

    /// Round trips and dots hold their bounds for arbitrary block counts and magnitudes.
    #[test]
    fn round_trip_and_dot_bounds_hold(
        type_index in 0usize..QUANTIZED.len(),
        blocks in 1usize..5,
        log_scale in -3.0f32..3.0,
        seed in any::<u64>(),
    ) {
        let ty = QUANTIZED[type_index];
        let n = blocks * QK_K;
        let scale = 10f32.powf(log_scale);
        let mut rng = SplitMix64(seed);
        let w_src: Vec<f32> = (0..n).map(|_| rng.gaussian() * scale).collect();
        let x: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
        let w_bytes = quantize_bytes(ty, &w_src);
        let w = dequantize_bytes(ty, &w_bytes);
        prop_assert!(relative_rmse(&w_src, &w) < 0.15, "{} rmse {}", ty, relative_rmse(&w_src, &w));
        let (got, budget) = integer_dot(ty, &w_bytes, &w, &x);
        let exact = f64_dot(&w, &x);
        prop_assert!((got as f64 - exact).abs() <= budget, "{}: {} vs {} budget {}", ty, got, exact, budget);
    }
}
