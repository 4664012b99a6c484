//! aarch64 kernel selection (run-time detection against the CPU the test was told it runs
//! on, `JOULE_EXPECT_KERNELS`, set by scripts/test-aarch64 for each qemu CPU; the table the
//! process takes) and `dot_f32` within the f32 summation bound. The integer kernels'
//! parity, shared with x86_64, is in `kernels_simd_parity`.
#![cfg(target_arch = "aarch64")]

use joule_core::kernels::{aarch64, kernels};
use proptest::prelude::*;

use crate::support::kernel_cases::simd_tables;

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dot_f32_is_within_the_summation_bound(v in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 0..300)) {
        let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let mag: f64 = a.iter().zip(&b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
        // Each of 16 lanes sums n/16 products, then 4 pairwise levels and the tail:
        // the classic bound γ_k·Σ|terms| with k = n/16 + 4 + 15, u = 2^-24.
        let bound = (a.len().div_ceil(16) + 19) as f64 * f64::powi(2.0, -24) * mag;
        for k in simd_tables() {
            let got = (k.dot_f32)(&a, &b) as f64;
            prop_assert!((got - exact).abs() <= bound, "{}: {} vs {} (bound {})", k.name, got, exact, bound);
        }
    }
}

/// Tables this CPU supports, per `aarch64::supported`.
fn supported() -> Vec<&'static str> {
    aarch64::NAMES.into_iter().filter(|n| aarch64::supported(n)).collect()
}

#[test]
fn detection_matches_the_cpu_the_test_was_told_about() {
    let found = supported();
    eprintln!("aarch64 tables supported on this CPU: {found:?}");
    assert_eq!(found.first(), Some(&"neon"), "NEON is baseline on aarch64");
    for name in aarch64::NAMES {
        assert_eq!(aarch64::table(name).map(|k| k.name), aarch64::supported(name).then_some(name));
    }
    assert_eq!(aarch64::best().name, *found.last().unwrap());
    assert!(aarch64::table("avx2").is_none() && !aarch64::supported("scalar"));
    match std::env::var("JOULE_EXPECT_KERNELS") {
        Ok(expected) => {
            let expected: Vec<&str> =
                expected.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            assert_eq!(found, expected, "detected tables differ from JOULE_EXPECT_KERNELS");
        }
        Err(_) => eprintln!("JOULE_EXPECT_KERNELS not set: detection checked for consistency only"),
    }
}

#[test]
fn the_process_table_follows_the_environment() {
    let force_scalar = std::env::var("JOULE_FORCE_SCALAR").is_ok_and(|v| !v.is_empty() && v != "0");
    let requested = std::env::var("JOULE_KERNELS").unwrap_or_default();
    let want = if force_scalar || requested == "scalar" {
        "scalar"
    } else if aarch64::supported(&requested) {
        aarch64::NAMES.into_iter().find(|n| *n == requested).unwrap()
    } else {
        aarch64::best().name
    };
    eprintln!("process kernel table: {} (JOULE_KERNELS={requested:?})", kernels().name);
    assert_eq!(kernels().name, want);
}
