//! The x86_64 SIMD kernel tables against the scalar reference kernels.
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
//!   2^24 units) with quants often all at an extreme (the AVX2 i16 worst cases): the
//!   scalar result is checked against the exact f64 value, so a match there proves the
//!   integer accumulations identical independently of any rounding argument;
//! - `quantize_act` (ties, zeros, NaN, infinities, subnormal blocks) and `dot_f32`.
//!
//! A table this CPU lacks is reported on stderr (not captured) and the others still run;
//! AVX2 itself must be present on every x86_64 machine these tests run on.
#![cfg(target_arch = "x86_64")]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Write;
use std::sync::Mutex;

use bytemuck::Zeroable;
use half::f16;
use joule_core::kernels::pack::{self, ActQ8, Packed, PackedTiles, ROWS};
use joule_core::kernels::{self, Kernels};
use joule_core::quant::{self, GgmlType};
use joule_core::sampling::Rng;
use proptest::prelude::*;

use crate::support::run_child;

/// The x86 tables, from the library (least capable first).
const SIMD_TABLES: [&str; 3] = kernels::x86::NAMES;

const TYPES: [GgmlType; 8] = pack::PACKED_TYPES;

/// The SIMD tables this CPU runs; each missing one is announced once, uncaptured.
fn simd_tables() -> Vec<Kernels> {
    static ANNOUNCED: Mutex<Option<HashSet<&str>>> = Mutex::new(None);
    let mut tables = Vec::new();
    for name in SIMD_TABLES {
        match kernels::table(name) {
            Some(t) => tables.push(t),
            None => {
                let mut seen = ANNOUNCED.lock().unwrap();
                if seen.get_or_insert_with(HashSet::new).insert(name) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "NOTE: this CPU lacks the '{name}' kernels: their parity is NOT tested here"
                    );
                }
            }
        }
    }
    tables
}

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

// ---------------------------------------------------------------------------------
// Random realistic matrices: quantized by the ggml quantizers, then packed.

fn packed_matrix(ty: GgmlType, n_out: usize, n_in: usize, rng: &mut Rng) -> PackedTiles {
    let x: Vec<f32> =
        (0..n_out * n_in).map(|i| rng.gaussian() * (0.5 + (i % 5) as f32 * 0.4)).collect();
    let mut bytes = vec![0u8; ty.row_bytes(n_in as u64).unwrap() as usize * n_out];
    quant::quantize_row(ty, &x, &mut bytes).unwrap();
    pack::pack(ty, &bytes, n_out, n_in).unwrap().expect("packable")
}

fn activations(n_tok: usize, n_in: usize, rng: &mut Rng) -> Vec<ActQ8> {
    let x: Vec<f32> =
        (0..n_tok * n_in).map(|i| rng.gaussian() * if i % 97 == 0 { 20.0 } else { 2.0 }).collect();
    let mut q = vec![ActQ8::default(); x.len() / 32];
    pack::quantize_act(&x, &mut q);
    q
}

fn n_out_of(p: &PackedTiles) -> usize {
    match p {
        PackedTiles::Q4_0(p) => p.n_out,
        PackedTiles::Q4_1(p) => p.n_out,
        PackedTiles::Q5_0(p) => p.n_out,
        PackedTiles::Q5_1(p) => p.n_out,
        PackedTiles::Q8_0(p) => p.n_out,
        PackedTiles::Q4_K(p) => p.n_out,
        PackedTiles::Q5_K(p) => p.n_out,
        PackedTiles::Q6_K(p) => p.n_out,
    }
}

/// A marker no kernel computes: slots that must stay unwritten keep these bits.
const SENTINEL: u32 = 0x7FC0_5A5A;

/// One GEMM call's shape: groups `g0..g1`, `n_tok` tokens, output stride `ld`.
#[derive(Debug, Clone)]
struct Call {
    g0: usize,
    g1: usize,
    n_tok: usize,
    ld: usize,
}

impl Call {
    fn new(n_out: usize, n_tok: usize, g0: usize, g1: usize, extra_ld: usize) -> Call {
        let groups = n_out.div_ceil(ROWS);
        let g0 = g0 % groups;
        let g1 = g0 + 1 + g1 % (groups - g0);
        let span = (g1 * ROWS).min(n_out) - g0 * ROWS;
        Call { g0, g1, n_tok, ld: span + extra_ld }
    }

    fn run(&self, k: &Kernels, p: &PackedTiles, act: &[ActQ8]) -> Vec<f32> {
        let mut out = vec![f32::from_bits(SENTINEL); self.n_tok * self.ld];
        k.packed.gemm(p, self.g0..self.g1, act, self.n_tok, &mut out, self.ld);
        out
    }
}

/// Every table's output must equal the scalar output bit for bit, written or not.
fn compare(p: &PackedTiles, act: &[ActQ8], call: &Call) -> Result<(), TestCaseError> {
    let want = call.run(&kernels::table("scalar").unwrap(), p, act);
    let n_out = n_out_of(p);
    for k in simd_tables() {
        let got = call.run(&k, p, act);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let (t, row) = (i / call.ld, call.g0 * ROWS + i % call.ld);
            let what =
                if w.to_bits() == SENTINEL || row >= n_out { "must not write" } else { "differs" };
            prop_assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{}: t{} row{} (n_out {}): {} vs scalar {}: {}",
                k.name,
                t,
                row,
                n_out,
                g,
                w,
                what
            );
        }
    }
    Ok(())
}

fn gemm_case() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize, usize, u64)> {
    (
        0..TYPES.len(),
        1..=45usize,
        1..=48usize,
        1..=9usize,
        0..8usize,
        0..8usize,
        0..=5usize,
        any::<u64>(),
    )
}

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

// ---------------------------------------------------------------------------------
// Exact cases: every product and partial sum representable in f32.

/// Quants in `lo..=hi`, drawn so that whole tiles often sit at an extreme (the i16
/// worst cases of the AVX2 kernels).
fn quant(rng: &mut Rng, mode: u64, lo: i32, hi: i32) -> i32 {
    match mode {
        0 => hi,
        1 => lo,
        2 => {
            if rng.next_u64() & 1 == 0 {
                lo
            } else {
                hi
            }
        }
        _ => lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32,
    }
}

fn pow2(rng: &mut Rng, lo: i32, hi: i32) -> f32 {
    2f32.powi(lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32)
}

/// Weights of `ty` with one power-of-two scale per row (so a row's terms share one
/// unit) and bounded sub-scales; `n_in` is small enough that each row's sum of |terms|
/// stays below 2^24 units (worst cases: Q8_0 24 cols · 32 · 128 · 127 < 2^24; Q4_K
/// 4 tiles · 8 cols · (7 · 15 + 7) · 127 · 32 < 2^24; Q5_K 2 tiles; Q6_K 3 tiles, |sc| ≤ 4).
fn exact_matrix(ty: GgmlType, n_out: usize, n_in: usize, rng: &mut Rng) -> PackedTiles {
    let groups = n_out.div_ceil(ROWS);
    let per_group = n_in / ty.block_size();
    let d: Vec<f16> = (0..groups * ROWS).map(|_| f16::from_f32(pow2(rng, -3, 3))).collect();
    let m_of = |rng: &mut Rng, d: f16| {
        f16::from_f32(d.to_f32() * (rng.next_u64() % 33) as f32 - 16.0 * d.to_f32())
    };
    macro_rules! tiles {
        ($ty:ty, |$t:ident, $g:ident, $rng:ident| $fill:block) => {{
            let mut tiles = Vec::new();
            for $g in 0..groups {
                for _ in 0..per_group {
                    let mut $t = <$ty>::zeroed();
                    let $rng = &mut *rng;
                    $fill
                    tiles.push($t);
                }
            }
            Packed { tiles, n_out, n_in, tiles_per_group: per_group }
        }};
    }
    let bytes = |rng: &mut Rng, len: usize, lo: i32, hi: i32| -> Vec<i32> {
        let mode = rng.next_u64() % 6;
        (0..len).map(|_| quant(rng, mode, lo, hi)).collect()
    };
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let bits = if matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1) { 5 } else { 4 };
            let fill = |rng: &mut Rng, qs: &mut pack::Nibbles, qh: &mut pack::HighBits| {
                let v = bytes(rng, 256, 0, (1 << bits) - 1);
                qs.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (v[2 * i] & 15 | (v[2 * i + 1] & 15) << 4) as u8);
                qh.iter_mut().enumerate().for_each(|(i, b)| {
                    *b = (0..8).map(|j| ((v[(8 * i + j) % 256] >> 4) & 1) << j).sum::<i32>() as u8
                });
            };
            match ty {
                GgmlType::Q4_0 => PackedTiles::Q4_0(tiles!(pack::TileQ4_0, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    fill(rng, &mut t.qs, &mut [0; 32]);
                })),
                GgmlType::Q4_1 => PackedTiles::Q4_1(tiles!(pack::TileQ4_1, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    for r in 0..8 {
                        t.m[r] = m_of(rng, t.d[r]);
                    }
                    fill(rng, &mut t.qs, &mut [0; 32]);
                })),
                GgmlType::Q5_0 => PackedTiles::Q5_0(tiles!(pack::TileQ5_0, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    fill(rng, &mut t.qs, &mut t.qh);
                })),
                _ => PackedTiles::Q5_1(tiles!(pack::TileQ5_1, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    for r in 0..8 {
                        t.m[r] = m_of(rng, t.d[r]);
                    }
                    fill(rng, &mut t.qs, &mut t.qh);
                })),
            }
        }
        GgmlType::Q8_0 => PackedTiles::Q8_0(tiles!(pack::TileQ8_0, |t, g, rng| {
            t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
            let v = bytes(rng, 256, -128, 127);
            t.qs.iter_mut().zip(v).for_each(|(q, v)| *q = v as i8);
        })),
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let fill = |rng: &mut Rng,
                        d: &[f16],
                        t_d: &mut [f16; 8],
                        dmin: &mut [f16; 8],
                        sc: &mut [u8; 64],
                        m: &mut [u8; 64]| {
                t_d.copy_from_slice(d);
                dmin.copy_from_slice(d);
                sc.iter_mut().for_each(|s| *s = (rng.next_u64() % 8) as u8);
                m.iter_mut().for_each(|s| *s = (rng.next_u64() % 8) as u8);
            };
            let nib = |rng: &mut Rng, qs: &mut pack::Nibbles, qh: Option<&mut pack::HighBits>| {
                let v = bytes(rng, 256, 0, if qh.is_some() { 31 } else { 15 });
                qs.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (v[2 * i] & 15 | (v[2 * i + 1] & 15) << 4) as u8);
                if let Some(qh) = qh {
                    qh.iter_mut().enumerate().for_each(|(i, b)| {
                        *b = (0..8).map(|j| ((v[(8 * i + j) % 256] >> 4) & 1) << j).sum::<i32>()
                            as u8
                    });
                }
            };
            if ty == GgmlType::Q4_K {
                PackedTiles::Q4_K(tiles!(pack::TileQ4_K, |t, g, rng| {
                    fill(rng, &d[g * 8..g * 8 + 8], &mut t.d, &mut t.dmin, &mut t.sc, &mut t.m);
                    for c in 0..8 {
                        nib(rng, &mut t.qs[c], None);
                    }
                }))
            } else {
                PackedTiles::Q5_K(tiles!(pack::TileQ5_K, |t, g, rng| {
                    fill(rng, &d[g * 8..g * 8 + 8], &mut t.d, &mut t.dmin, &mut t.sc, &mut t.m);
                    for c in 0..8 {
                        nib(rng, &mut t.qs[c], Some(&mut t.qh[c]));
                    }
                }))
            }
        }
        _ => PackedTiles::Q6_K(tiles!(pack::TileQ6_K, |t, g, rng| {
            t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
            t.sc.iter_mut().for_each(|s| *s = (rng.next_u64() % 9) as i8 - 4);
            for c in 0..8 {
                let v = bytes(rng, 256, -32, 31);
                t.qs[c].iter_mut().zip(v).for_each(|(q, v)| *q = v as i8);
            }
        })),
    }
}

/// Activations with one power-of-two scale per token and quants in -127..=127 (the
/// quantizer's range), often all at an extreme.
fn exact_activations(n_tok: usize, nb: usize, rng: &mut Rng) -> Vec<ActQ8> {
    let mut out = Vec::new();
    for _ in 0..n_tok {
        let d = pow2(rng, -4, 2);
        for _ in 0..nb {
            let mode = rng.next_u64() % 6;
            let mut a = ActQ8 { d, sum: 0, qs: [0; 32] };
            a.qs.iter_mut().for_each(|q| *q = quant(rng, mode, -127, 127) as i8);
            a.sum = a.qs.iter().map(|&q| q as i32).sum();
            out.push(a);
        }
    }
    out
}

/// Largest column count per format for which `exact_matrix` stays exact.
fn exact_cols(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q8_0 => 24,
        GgmlType::Q4_K => 32,
        GgmlType::Q5_K => 16,
        GgmlType::Q6_K => 24,
        _ => 48,
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
        let scalar = call.run(&kernels::table("scalar").unwrap(), &p, &act);
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
// The float kernels.

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

    #[test]
    fn dot_f32_matches_scalar_bit_for_bit(n in 0..600usize, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let a: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.gaussian() * 3.0).collect();
        let want = (kernels::table("scalar").unwrap().dot_f32)(&a, &b);
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
        let want = (kernels::table("scalar").unwrap().dot_f32)(&a, &b);
        prop_assert_eq!(want as f64, a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>());
        for k in simd_tables() {
            prop_assert_eq!((k.dot_f32)(&a, &b).to_bits(), want.to_bits(), "{}", k.name);
        }
    }
}
