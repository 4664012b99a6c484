//! Kernel microbenchmarks, single-threaded, every kernel table this CPU supports:
//! `dot_f32`, `quantize_act`, GEMV (one token: decode) and GEMM (64 and 512 tokens:
//! prefill) per packed format. GEMM throughput is reported in multiply-accumulates
//! (elements/s = MAC/s), GEMV in weight bytes streamed (bytes/s).
//!
//! `cargo bench -p joule-core --bench kernels -- gemm/q4_0` runs a subset;
//! `JOULE_BENCH_TABLES=avx2,avx512-vnni` restricts the tables.
//!
//! Shapes: SmolLM2-135M's FFN (1536 × 576; k-quants, which need 256-column rows, use
//! 1536 × 512) and its 49152 × 576 output matrix for the streaming GEMV (`gemv`: the
//! same matrix every iteration, so a 30 MB Q8_0 matrix largely stays in a 32 MB L3;
//! `gemv_dram`: four copies in turn, streamed from memory).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use joule_core::kernels::pack::{self, ActQ8, PackedTiles};
use joule_core::kernels::{self, Kernels};
use joule_core::quant::{self, GgmlType};
use joule_core::sampling::Rng;

const TYPES: [GgmlType; 8] = pack::PACKED_TYPES;

fn tables() -> Vec<Kernels> {
    let wanted = std::env::var("JOULE_BENCH_TABLES").ok();
    std::iter::once("scalar")
        .chain(kernels::simd_table_names().iter().copied())
        .filter(|n| wanted.as_deref().is_none_or(|w| w.split(',').any(|x| x == *n)))
        .filter_map(kernels::table)
        .collect()
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let (u1, u2) = (rng.next_f64().max(1e-300), rng.next_f64());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

fn cols_for(ty: GgmlType) -> usize {
    if ty.block_size() == 256 { 512 } else { 576 }
}

/// A random `[rows, n_in]` matrix of `ty`, packed; rows beyond 1536 repeat the first
/// 1536 (quantizing 28M values per run would dominate the benchmark's start-up).
fn matrix(ty: GgmlType, rows: usize, n_in: usize) -> PackedTiles {
    let base_rows = rows.min(1536);
    let row_bytes = ty.row_bytes(n_in as u64).unwrap() as usize;
    let mut base = vec![0u8; row_bytes * base_rows];
    quant::quantize_row(ty, &values(base_rows * n_in, 1), &mut base).unwrap();
    let bytes: Vec<u8> = base.iter().copied().cycle().take(row_bytes * rows).collect();
    pack::pack(ty, &bytes, rows, n_in).unwrap().unwrap()
}

fn activations(n_tok: usize, n_in: usize) -> Vec<ActQ8> {
    let mut q = vec![ActQ8::default(); n_tok * n_in / 32];
    pack::quantize_act(&values(n_tok * n_in, 2), &mut q);
    q
}

fn bench_float(c: &mut Criterion) {
    let mut g = c.benchmark_group("dot_f32");
    for n in [576, 1536] {
        let (a, b) = (values(n, 3), values(n, 4));
        g.throughput(Throughput::Elements(n as u64));
        for k in tables() {
            g.bench_with_input(BenchmarkId::new(k.name, n), &n, |bench, _| {
                bench.iter(|| (k.dot_f32)(black_box(&a), black_box(&b)))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("quantize_act");
    let (n_tok, n_in) = (64, 576);
    let x = values(n_tok * n_in, 5);
    let mut q = vec![ActQ8::default(); n_tok * n_in / 32];
    g.throughput(Throughput::Elements((n_tok * n_in) as u64));
    for k in tables() {
        g.bench_function(BenchmarkId::new(k.name, format!("{n_tok}x{n_in}")), |bench| {
            bench.iter(|| (k.quantize_act)(black_box(&x), black_box(&mut q)))
        });
    }
    g.finish();
}

fn bench_gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv");
    let shapes: Vec<(GgmlType, usize)> = TYPES
        .iter()
        .map(|&t| (t, 1536))
        .chain([(GgmlType::Q8_0, 49152), (GgmlType::Q4_0, 49152), (GgmlType::Q4_1, 49152)])
        .collect();
    for (ty, rows) in shapes {
        let n_in = cols_for(ty);
        let w = matrix(ty, rows, n_in);
        let act = activations(1, n_in);
        let mut out = vec![0f32; rows];
        g.throughput(Throughput::Bytes(w.bytes() as u64));
        for k in tables() {
            let id = BenchmarkId::new(
                format!("{}/{}", ty.name().to_lowercase(), k.name),
                format!("{rows}x{n_in}"),
            );
            g.bench_function(id, |bench| {
                bench.iter(|| {
                    k.packed.gemm(
                        black_box(&w),
                        0..rows.div_ceil(8),
                        black_box(&act),
                        1,
                        &mut out,
                        rows,
                    )
                })
            });
        }
    }
    g.finish();
}

/// The output-matrix GEMV from DRAM: four copies of the 30 MB Q8_0 matrix, one per
/// iteration in turn, so the 32 MB of L3 of the machine this was tuned on cannot hold
/// the next one.
fn bench_gemv_dram(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv_dram");
    let (ty, rows, n_in, copies) = (GgmlType::Q8_0, 49152, 576, 4);
    let w: Vec<PackedTiles> = (0..copies).map(|_| matrix(ty, rows, n_in)).collect();
    let act = activations(1, n_in);
    let mut out = vec![0f32; rows];
    g.throughput(Throughput::Bytes(w[0].bytes() as u64));
    for k in tables() {
        if k.name == "scalar" {
            continue;
        }
        let mut i = 0;
        let id = BenchmarkId::new(format!("q8_0/{}", k.name), format!("{rows}x{n_in}x{copies}"));
        g.bench_function(id, |bench| {
            bench.iter(|| {
                i = (i + 1) % copies;
                k.packed.gemm(black_box(&w[i]), 0..rows / 8, black_box(&act), 1, &mut out, rows)
            })
        });
    }
    g.finish();
}

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    let rows = 1536;
    for ty in TYPES {
        let n_in = cols_for(ty);
        let w = matrix(ty, rows, n_in);
        for n_tok in [64, 512] {
            let act = activations(n_tok, n_in);
            let mut out = vec![0f32; n_tok * rows];
            g.throughput(Throughput::Elements((n_tok * rows * n_in) as u64));
            for k in tables() {
                // The scalar kernels at 512 tokens take seconds per sample; 64 shows them.
                if k.name == "scalar" && n_tok > 64 {
                    continue;
                }
                let id = BenchmarkId::new(
                    format!("{}/{}", ty.name().to_lowercase(), k.name),
                    format!("t{n_tok}/{rows}x{n_in}"),
                );
                g.bench_function(id, |bench| {
                    bench.iter(|| {
                        k.packed.gemm(
                            black_box(&w),
                            0..rows / 8,
                            black_box(&act),
                            n_tok,
                            &mut out,
                            rows,
                        )
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    targets = bench_float, bench_gemv, bench_gemv_dram, bench_gemm
}
criterion_main!(benches);
