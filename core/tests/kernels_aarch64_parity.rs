//! Every aarch64 kernel table against the scalar reference: the packed integer kernels
//! bit for bit on random shapes (as the module promises: equal integer sums, the same
//! f32 steps in the same order) and on inputs where every float step is exact,
//! `quantize_act` bit for bit, `dot_f32` within the f32 summation bound, and run-time detection against the CPU the test was told it
//! runs on (`JOULE_EXPECT_KERNELS`, set by scripts/test-aarch64 for each qemu CPU).
#![cfg(target_arch = "aarch64")]

use bytemuck::Zeroable;
use half::f16;
use joule_core::kernels::pack::{self, ActQ8, Packed, PackedTiles};
use joule_core::kernels::{Kernels, aarch64, kernels};
use joule_core::quant::{self, GgmlType};
use joule_core::sampling::Rng;
use proptest::prelude::*;

const TYPES: [GgmlType; 8] = pack::PACKED_TYPES;

/// Written in every output slot before a kernel runs, to see which slots it wrote.
const UNWRITTEN: u32 = 0x7fc0_dead;

/// The aarch64 tables this CPU runs; the others are reported on stderr (shown by the
/// script, which runs this file with `--nocapture`).
fn tables() -> Vec<Kernels> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    REPORT.call_once(|| {
        for name in aarch64::NAMES.iter().filter(|n| !aarch64::supported(n)) {
            eprintln!("aarch64 table {name}: CPU feature missing, not tested on this CPU");
        }
    });
    aarch64::NAMES.iter().filter_map(|name| aarch64::table(name)).collect()
}

/// A random `[n_out, n_in]` matrix quantized to `ty` and repacked.
fn packed_matrix(ty: GgmlType, n_out: usize, n_in: usize, seed: u64) -> PackedTiles {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> =
        (0..n_out * n_in).map(|i| rng.gaussian() * (1.0 + (i % 7) as f32 * 0.3)).collect();
    let mut bytes = vec![0u8; ty.row_bytes(n_in as u64).unwrap() as usize * n_out];
    quant::quantize_row(ty, &x, &mut bytes).unwrap();
    pack::pack(ty, &bytes, n_out, n_in).unwrap().unwrap()
}

fn activations(n_tok: usize, n_in: usize, seed: u64) -> Vec<ActQ8> {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n_tok * n_in).map(|_| rng.gaussian() * 3.0).collect();
    let mut q = vec![ActQ8::default(); x.len() / 32];
    pack::quantize_act(&x, &mut q);
    q
}

fn dequantized_act(act: &[ActQ8]) -> Vec<f64> {
    act.iter().flat_map(|b| b.qs.iter().map(move |&v| b.d as f64 * v as f64)).collect()
}

fn rows(w: &PackedTiles, n_out: usize, n_in: usize) -> Vec<Vec<f64>> {
    let mut row = vec![0f32; n_in];
    (0..n_out)
        .map(|r| {
            pack::dequantize_row(w, r, &mut row);
            row.iter().map(|&v| v as f64).collect()
        })
        .collect()
}

/// A kernel call: rows of groups `groups` for `n_tok` tokens at stride `ld`.
struct Call<'a> {
    w: &'a PackedTiles,
    groups: std::ops::Range<usize>,
    act: &'a [ActQ8],
    n_tok: usize,
    ld: usize,
}

impl Call<'_> {
    fn run(&self, k: &Kernels) -> Vec<f32> {
        let mut out = vec![f32::from_bits(UNWRITTEN); self.n_tok * self.ld];
        k.packed.gemm(self.w, self.groups.clone(), self.act, self.n_tok, &mut out, self.ld);
        out
    }
}

/// Asserts `got` writes exactly the slots `want` writes, each equal to it bit for bit (the
/// failure message gives the error relative to Σ|w·a|).
fn check(name: &str, call: &Call, want: &[f32], got: &[f32], w_rows: &[Vec<f64>], a: &[f64]) {
    let n_in = w_rows[0].len();
    let row0 = call.groups.start * 8;
    for (i, (&g, &s)) in got.iter().zip(want).enumerate() {
        let (t, r) = (i / call.ld, row0 + i % call.ld);
        if s.to_bits() == UNWRITTEN {
            assert_eq!(
                g.to_bits(),
                UNWRITTEN,
                "{name}: wrote slot {i} (token {t}) that scalar leaves alone"
            );
            continue;
        }
        assert_ne!(g.to_bits(), UNWRITTEN, "{name}: token {t} row {r} not written");
        let mag: f64 =
            w_rows[r].iter().zip(&a[t * n_in..(t + 1) * n_in]).map(|(w, a)| (w * a).abs()).sum();
        let err = (g as f64 - s as f64).abs();
        assert_eq!(
            g.to_bits(),
            s.to_bits(),
            "{name}: token {t} row {r}: {g} vs scalar {s} (error {err:e}, Σ|terms| {mag})"
        );
    }
}

/// Random shapes: (type, n_out, n_in, n_tok, groups, ld, seed).
fn shapes()
-> impl Strategy<Value = (GgmlType, usize, usize, usize, std::ops::Range<usize>, usize, u64)> {
    (0..TYPES.len(), 1usize..=41, 1usize..=12, 1usize..=9, any::<u64>(), 0usize..6).prop_flat_map(
        |(ti, n_out, blocks, n_tok, seed, extra_ld)| {
            let ty = TYPES[ti];
            let k_quant = ty.block_size() == 256;
            // Several multiples of 32 (or 256 for the k-quants).
            let n_in = if k_quant { 256 * blocks.div_ceil(4) } else { 32 * blocks };
            let groups = n_out.div_ceil(8);
            (0..groups).prop_flat_map(move |g0| {
                (g0 + 1..=groups).prop_map(move |g1| {
                    let rows = (8 * g1).min(n_out) - 8 * g0;
                    (ty, n_out, n_in, n_tok, g0..g1, rows + extra_ld, seed)
                })
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn packed_kernels_match_scalar_on_random_shapes((ty, n_out, n_in, n_tok, groups, ld, seed) in shapes()) {
        let w = packed_matrix(ty, n_out, n_in, seed);
        let act = activations(n_tok, n_in, seed ^ 0x5eed);
        let call = Call { w: &w, groups, act: &act, n_tok, ld };
        let want = call.run(&scalar_table());
        let (w_rows, a) = (rows(&w, n_out, n_in), dequantized_act(&act));
        for k in tables() {
            let got = call.run(&k);
            check(&format!("{} {ty}", k.name), &call, &want, &got, &w_rows, &a);
        }
    }

    #[test]
    fn quantize_act_is_bit_identical(blocks in proptest::collection::vec(block(), 1..6)) {
        let x: Vec<f32> = blocks.concat();
        let mut want = vec![ActQ8::default(); blocks.len()];
        pack::quantize_act(&x, &mut want);
        for k in tables() {
            let mut got = vec![ActQ8 { d: 1.0, sum: 7, qs: [3; 32] }; blocks.len()];
            (k.quantize_act)(&x, &mut got);
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!(g.d.to_bits(), w.d.to_bits(), "{}", k.name);
                prop_assert_eq!(g.sum, w.sum, "{}", k.name);
                prop_assert_eq!(g.qs, w.qs, "{}", k.name);
            }
        }
    }

    #[test]
    fn dot_f32_is_within_the_summation_bound(v in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 0..300)) {
        let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let mag: f64 = a.iter().zip(&b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
        // Each of 16 lanes sums n/16 products, then 4 pairwise levels and the tail:
        // the classic bound γ_k·Σ|terms| with k = n/16 + 4 + 15, u = 2^-24.
        let bound = (a.len().div_ceil(16) + 19) as f64 * f64::powi(2.0, -24) * mag;
        for k in tables() {
            let got = (k.dot_f32)(&a, &b) as f64;
            prop_assert!((got - exact).abs() <= bound, "{}: {} vs {} (bound {})", k.name, got, exact, bound);
        }
    }
}

/// The scalar reference table, as the library builds it.
fn scalar_table() -> Kernels {
    joule_core::kernels::table("scalar").expect("the scalar table always exists")
}

/// One 32-block of activations: Gaussian, zeros, exact rounding ties, or special values.
fn block() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        proptest::collection::vec(-50f32..50.0, 32),
        Just(vec![0.0; 32]),
        Just(vec![-0.0; 32]),
        // amax = 127 · 2^-e, so d = 2^-e, 1/d is exact and (n + 0.5) · 2^-e lands on a tie.
        (0i32..20, proptest::collection::vec(-127i32..127, 31)).prop_map(|(e, n)| {
            let d = f32::powi(2.0, -e);
            let mut x: Vec<f32> = n.iter().map(|&n| (n as f32 + 0.5) * d).collect();
            x.push(127.0 * d);
            x
        }),
        proptest::collection::vec(
            prop_oneof![
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                Just(f32::MIN_POSITIVE / 8.0),
                Just(-1e-40f32),
                -2f32..2.0,
            ],
            32
        ),
    ]
}

/// A random power of two 2^e, e in `lo..=hi`, as f16.
fn pow2(rng: &mut Rng, lo: i32, hi: i32) -> f16 {
    let span = (hi - lo + 1) as u64;
    f16::from_f32(f32::powi(2.0, lo + (rng.next_u64() % span) as i32))
}

fn small(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32
}

fn random_bytes<const N: usize>(rng: &mut Rng) -> [u8; N] {
    std::array::from_fn(|_| rng.next_u64() as u8)
}

/// A matrix of tiles whose every float step is exact: power-of-two scales, small
/// integer minimums and sub-scales, arbitrary quants in each format's range.
fn exact_matrix(ty: GgmlType, n_out: usize, n_in: usize, rng: &mut Rng) -> PackedTiles {
    let per = if ty.block_size() == 256 { n_in / 256 } else { n_in / 32 };
    let n = n_out.div_ceil(8) * per;
    macro_rules! tiles {
        ($variant:ident, $make:expr) => {
            PackedTiles::$variant(Packed {
                tiles: (0..n).map(|_| $make).collect(),
                n_out,
                n_in,
                tiles_per_group: per,
            })
        };
    }
    let d = |rng: &mut Rng| -> [f16; 8] { std::array::from_fn(|_| pow2(rng, -1, 1)) };
    let m = |rng: &mut Rng| -> [f16; 8] {
        std::array::from_fn(|_| f16::from_f32(small(rng, -4, 4) as f32))
    };
    let q8 = |rng: &mut Rng| -> [i8; 256] { std::array::from_fn(|_| rng.next_u64() as i8) };
    let q6 = |rng: &mut Rng| -> [i8; 256] { std::array::from_fn(|_| small(rng, -32, 31) as i8) };
    let sub = |rng: &mut Rng| -> [u8; 64] { std::array::from_fn(|_| small(rng, 0, 15) as u8) };
    match ty {
        GgmlType::Q4_0 => tiles!(Q4_0, pack::TileQ4_0 { d: d(rng), qs: random_bytes(rng) }),
        GgmlType::Q4_1 => {
            tiles!(Q4_1, pack::TileQ4_1 { d: d(rng), m: m(rng), qs: random_bytes(rng) })
        }
        GgmlType::Q5_0 => {
            tiles!(Q5_0, pack::TileQ5_0 { d: d(rng), qh: random_bytes(rng), qs: random_bytes(rng) })
        }
        GgmlType::Q5_1 => {
            tiles!(
                Q5_1,
                pack::TileQ5_1 {
                    d: d(rng),
                    m: m(rng),
                    qh: random_bytes(rng),
                    qs: random_bytes(rng)
                }
            )
        }
        GgmlType::Q8_0 => tiles!(Q8_0, pack::TileQ8_0 { d: d(rng), qs: q8(rng) }),
        GgmlType::Q4_K => tiles!(Q4_K, {
            let mut t = pack::TileQ4_K::zeroed();
            (t.d, t.dmin, t.sc, t.m) = (d(rng), d(rng), sub(rng), sub(rng));
            t.qs = std::array::from_fn(|_| random_bytes(rng));
            t
        }),
        GgmlType::Q5_K => tiles!(Q5_K, {
            let mut t = pack::TileQ5_K::zeroed();
            (t.d, t.dmin, t.sc, t.m) = (d(rng), d(rng), sub(rng), sub(rng));
            t.qh = std::array::from_fn(|_| random_bytes(rng));
            t.qs = std::array::from_fn(|_| random_bytes(rng));
            t
        }),
        GgmlType::Q6_K => tiles!(Q6_K, {
            let mut t = pack::TileQ6_K::zeroed();
            t.d = d(rng);
            t.sc = std::array::from_fn(|_| small(rng, -16, 16) as i8);
            t.qs = std::array::from_fn(|_| q6(rng));
            t
        }),
        _ => unreachable!("not a packed type"),
    }
}

/// Activations with power-of-two scales and small quants, including ±127 and -128.
fn exact_activations(n: usize, rng: &mut Rng) -> Vec<ActQ8> {
    (0..n)
        .map(|_| {
            let mut qs: [i8; 32] = std::array::from_fn(|_| small(rng, -3, 3) as i8);
            qs[small(rng, 0, 31) as usize] = [127, -127, -128][small(rng, 0, 2) as usize];
            let sum = qs.iter().map(|&v| v as i32).sum();
            ActQ8 { d: pow2(rng, -2, 0).to_f32(), sum, qs }
        })
        .collect()
}

#[test]
fn exact_inputs_give_bit_identical_results() {
    let mut rng = Rng::new(42);
    let tables = tables();
    for ty in TYPES {
        for (n_out, n_in, n_tok) in [(13, 256, 1), (8, 512, 9), (23, 256, 5), (3, 512, 2)] {
            let w = exact_matrix(ty, n_out, n_in, &mut rng);
            let act = exact_activations(n_tok * n_in / 32, &mut rng);
            let call = Call { w: &w, groups: 0..n_out.div_ceil(8), act: &act, n_tok, ld: n_out };
            let want = call.run(&scalar_table());
            let (w_rows, a) = (rows(&w, n_out, n_in), dequantized_act(&act));
            for t in 0..n_tok {
                for r in 0..n_out {
                    let exact: f64 = w_rows[r]
                        .iter()
                        .zip(&a[t * n_in..(t + 1) * n_in])
                        .map(|(w, a)| w * a)
                        .sum();
                    let s = want[t * n_out + r];
                    // The inputs keep every step exact: the scalar kernel must give the
                    // exact product, so equal results below mean equal integer sums.
                    assert_eq!(
                        s as f64, exact,
                        "{ty} scalar t{t} r{r}: the test's inputs are not exact"
                    );
                }
            }
            for k in &tables {
                let got = call.run(k);
                let same = got.iter().zip(&want).all(|(g, s)| g.to_bits() == s.to_bits());
                assert!(
                    same,
                    "{} {ty} {n_out}x{n_in} x{n_tok}: {got:?} vs scalar {want:?}",
                    k.name
                );
            }
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
