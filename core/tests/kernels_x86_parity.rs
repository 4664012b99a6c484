//! x86_64 kernel selection (which tables exist, which one the process takes) and the
//! float dot product bit for bit; the integer kernels' parity, shared with aarch64, is in
//! `kernels_simd_parity`.
#![cfg(target_arch = "x86_64")]

use std::ffi::OsStr;

use joule_core::kernels;
use joule_core::sampling::Rng;
use proptest::prelude::*;

use crate::support::kernel_cases::{scalar_table, simd_tables};
use crate::support::run_child;

/// The x86 tables, from the library (least capable first).
const SIMD_TABLES: [&str; 3] = kernels::x86::NAMES;

#[test]
fn avx2_is_available_on_every_x86_64_test_machine() {
    let t = kernels::table("avx2")
        .expect("AVX2+FMA+F16C not detected: a detection regression, or a pre-2013 CPU");
    assert_eq!(t.name, "avx2");
    assert_eq!(kernels::table("scalar").unwrap().name, "scalar");
    assert!(kernels::table("no-such-isa").is_none());
    for name in SIMD_TABLES {
        if let Some(t) = kernels::table(name) {
            assert_eq!(t.name, name);
        }
    }
}

/// The table `kernels()` chose, given this process's environment.
#[test]
fn the_process_table_follows_the_environment() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let forced_scalar = env("JOULE_FORCE_SCALAR").is_some_and(|v| v != "0");
    let wanted = env("JOULE_KERNELS").filter(|n| kernels::table(n).is_some());
    let best =
        SIMD_TABLES.iter().rev().copied().find(|n| kernels::table(n).is_some()).unwrap_or("scalar");
    let expected =
        if forced_scalar { "scalar".to_string() } else { wanted.unwrap_or(best.to_string()) };
    assert_eq!(kernels::kernels().name, expected);
}

/// Runs `the_process_table_follows_the_environment` in child processes with the
/// selection variables set.
#[test]
fn selection_honours_joule_kernels_and_force_scalar() {
    let cases: [&[(&str, &str)]; 6] = [
        &[("JOULE_KERNELS", "scalar")],
        &[("JOULE_KERNELS", "avx2")],
        &[("JOULE_KERNELS", "avx2-vnni")],
        &[("JOULE_KERNELS", "avx512-vnni")],
        &[("JOULE_KERNELS", "no-such-isa")],
        &[("JOULE_KERNELS", "avx2"), ("JOULE_FORCE_SCALAR", "1")],
    ];
    for vars in cases {
        let vars: Vec<(&str, &OsStr)> = vars.iter().map(|&(k, v)| (k, OsStr::new(v))).collect();
        let test = "kernels_x86_parity::the_process_table_follows_the_environment";
        run_child(test, &vars, &["JOULE_KERNELS", "JOULE_FORCE_SCALAR"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dot_f32_matches_scalar_bit_for_bit(n in 0..600usize, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let a: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.gaussian() * 3.0).collect();
        let want = (scalar_table().dot_f32)(&a, &b);
        for k in simd_tables() {
            let got = (k.dot_f32)(&a, &b);
            prop_assert_eq!(got.to_bits(), want.to_bits(), "{} n={}: {} vs scalar {}", k.name, n, got, want);
        }
    }

    #[test]
    fn dot_f32_is_exact_on_small_integers(n in 0..600usize, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let a: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 33) as f32 - 16.0).collect();
        let b: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 33) as f32 - 16.0).collect();
        let want = (scalar_table().dot_f32)(&a, &b);
        prop_assert_eq!(want as f64, a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>());
        for k in simd_tables() {
            prop_assert_eq!((k.dot_f32)(&a, &b).to_bits(), want.to_bits(), "{}", k.name);
        }
    }
}
