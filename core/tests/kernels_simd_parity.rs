//! Every SIMD kernel table of this architecture (enumerated from the library) against
//! the scalar reference kernels, on x86_64 and under qemu on aarch64.
//!
//! The SIMD kernels compute the scalar kernels' integer sums exactly and apply the same
//! float formula with the same roundings (no fused multiply-add, same association), so
//! the error budget against the scalar twin is zero: every output must match it bit for
//! bit. Checked on
//! - random realistic matrices (ggml-quantized, then packed) and shapes: rows not a
//!   multiple of 8, 1..=48 columns of 32 (past the 32-column scratch runs), 1..=9
//!   tokens, sub-ranges of groups, `ld` beyond the rows; slots the kernel must not write
//!   keep their sentinel bits;
//! - tiles built so that every float step is exact (power-of-two scales, sums below
//!   2^24 units) with quants often all at an extreme (the i16 worst cases): the scalar
//!   result is checked against the exact f64 value, so a match there proves the integer
//!   accumulations identical independently of any rounding argument;
//! - `quantize_act` (ties, zeros, NaN, infinities, subnormal blocks).
//!
//! A table this CPU lacks is reported on stderr (not captured) and the others still run.

use joule_core::kernels::pack::{self, ActQ8, ROWS};
use joule_core::sampling::Rng;
use proptest::prelude::*;

use crate::support::kernel_cases::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gemm_matches_scalar_bit_for_bit(case in gemm_case()) {
        let (ti, n_out, m, n_tok, g0, g1, extra_ld, seed) = case;
        let ty = TYPES[ti];
        // 32-column formats up to 48 columns, k-quants up to 6 super-blocks (48 columns):
        // beyond the 32-column scratch runs.
        let n_in = if ty.block_size() == 256 { 256 * (1 + (m - 1) % 6) } else { 32 * m };
        let mut rng = Rng::new(seed);
        let p = packed_matrix(ty, n_out, n_in, &mut rng);
        let act = activations(n_tok, n_in, &mut rng);
        compare(&p, &act, &Call::new(n_out, n_tok, g0, g1, extra_ld))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn gemm_integer_sums_are_bit_exact(case in gemm_case()) {
        let (ti, n_out, m, n_tok, g0, g1, extra_ld, seed) = case;
        let ty = TYPES[ti];
        let cols = 1 + (m - 1) % exact_cols(ty);
        let n_in = if ty.block_size() == 256 { 256 * cols.div_ceil(8) } else { 32 * cols };
        let mut rng = Rng::new(seed);
        let p = exact_matrix(ty, n_out, n_in, &mut rng);
        let act = exact_activations(n_tok, n_in / 32, &mut rng);
        let call = Call::new(n_out, n_tok, g0, g1, extra_ld);
        // The premise: the scalar kernel's float steps are all exact here.
        let scalar = call.run(&scalar_table(), &p, &act);
        let mut row = vec![0f32; n_in];
        for r in call.g0 * ROWS..(call.g1 * ROWS).min(n_out) {
            pack::dequantize_row(&p, r, &mut row);
            for t in 0..n_tok {
                let a = &act[t * n_in / 32..(t + 1) * n_in / 32];
                let exact: f64 = row.iter().enumerate().map(|(e, &w)| w as f64 * a[e / 32].d as f64 * a[e / 32].qs[e % 32] as f64).sum();
                let got = scalar[t * call.ld + r - call.g0 * ROWS];
                prop_assert_eq!(got as f64, exact, "{} premise: scalar t{} row{} is not exact", ty, t, r);
            }
        }
        compare(&p, &act, &call)?;
    }
}

#[test]
fn empty_calls_write_nothing() {
    let mut rng = Rng::new(7);
    for ty in TYPES {
        let n_in = ty.block_size();
        let p = packed_matrix(ty, 11, n_in, &mut rng);
        let act = activations(2, n_in, &mut rng);
        for k in simd_tables() {
            let mut out = vec![f32::from_bits(SENTINEL); 64];
            k.packed.gemm(&p, 0..2, &act, 0, &mut out, 11);
            k.packed.gemm(&p, 1..1, &act, 2, &mut out, 11);
            assert!(out.iter().all(|v| v.to_bits() == SENTINEL), "{} {ty}", k.name);
        }
    }
}

// ---------------------------------------------------------------------------------
// Activation quantization.

fn assert_act_identical(name: &str, x: &[f32]) {
    let mut want = vec![ActQ8::default(); x.len() / 32];
    pack::quantize_act(x, &mut want);
    for k in simd_tables() {
        let mut got = vec![ActQ8 { d: f32::NAN, sum: i32::MIN, qs: [99; 32] }; want.len()];
        (k.quantize_act)(x, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.d.to_bits() == w.d.to_bits() && g.sum == w.sum && g.qs == w.qs,
                "{} {name} block {i}: {g:?} vs {w:?}",
                k.name
            );
        }
    }
}

#[test]
fn quantize_act_is_bit_identical_on_special_blocks() {
    let mut blocks: Vec<(&str, Vec<f32>)> = vec![
        ("zeros", vec![0.0; 32]),
        ("negative zeros", vec![-0.0; 32]),
        // d = 1: every value is an exact tie, rounded away from zero.
        ("ties", (0..32).map(|i| if i == 0 { 127.0 } else { (i as f32 - 16.0) + 0.5 }).collect()),
        (
            "ties below 1",
            (0..32)
                .map(|i| {
                    if i == 0 {
                        -127.0
                    } else {
                        [0.5, -0.5, 1.5, -1.5, 0.49999997, -0.49999997][i % 6]
                    }
                })
                .collect(),
        ),
        ("one value", (0..32).map(|i| if i == 5 { -3.0 } else { 0.0 }).collect()),
        ("nan", (0..32).map(|i| if i % 7 == 0 { f32::NAN } else { i as f32 }).collect()),
        (
            "infinity",
            (0..32).map(|i| if i == 3 { f32::INFINITY } else { i as f32 - 9.0 }).collect(),
        ),
        ("-infinity", (0..32).map(|i| if i == 3 { f32::NEG_INFINITY } else { i as f32 }).collect()),
        // 1 / d overflows to infinity: quants saturate, zeros become NaN then 0.
        (
            "subnormal scale",
            (0..32).map(|i| if i % 3 == 0 { 0.0 } else { (i as f32 - 16.0) * 1e-39 }).collect(),
        ),
        ("tiny", (0..32).map(|i| (i as f32 - 16.0) * 1e-44).collect()),
        ("huge", (0..32).map(|i| (i as f32 - 16.0) * 1e37).collect()),
        ("max", (0..32).map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX }).collect()),
    ];
    let all: Vec<f32> = blocks.iter().flat_map(|(_, b)| b.clone()).collect();
    blocks.push(("all together", all));
    for (name, x) in &blocks {
        assert_act_identical(name, x);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quantize_act_is_bit_identical(blocks in 1..=12usize, scale in -30..30i32, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let s = 2f32.powi(scale);
        let x: Vec<f32> = (0..32 * blocks).map(|i| match rng.next_u64() % 16 {
            0 => 0.0,
            1 => (rng.next_u64() % 255) as f32 - 127.0,
            2 => ((rng.next_u64() % 255) as f32 - 127.0 + 0.5) * s,
            _ => rng.gaussian() * s * (1 + i % 3) as f32,
        }).collect();
        assert_act_identical("random", &x);
    }
}
