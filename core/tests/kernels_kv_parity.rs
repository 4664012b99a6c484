//! Blocked attention over each KV cache type (f32, f16, q8_0): every SIMD table of this
//! architecture equals the scalar table bit for bit (x86_64 natively, aarch64 under
//! qemu via `scripts/test-aarch64`), and reading an f16 or q8_0 cache equals reading an
//! f32 cache that holds the exactly dequantized values, bit for bit.

use half::f16;
use joule_core::kernels::attention::{AttnBlock, scratch_len};
use joule_core::kernels::kv_block::KvSlice;
use joule_core::kernels::{self, Kernels};
use joule_core::sampling::Rng;
use proptest::prelude::*;

/// Every SIMD table of this architecture this CPU runs. The ones it cannot run are named
/// on stderr (run with `--nocapture` to see them), so a pass says which tables ran.
fn simd_tables() -> Vec<Kernels> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let tables: Vec<Kernels> =
        kernels::simd_table_names().iter().filter_map(|n| kernels::table(n)).collect();
    REPORT.call_once(|| {
        let ran: Vec<&str> = tables.iter().map(|t| t.name).collect();
        eprintln!("KV attention parity: tables tested against scalar: {ran:?}");
        for name in kernels::simd_table_names().iter().filter(|n| kernels::table(n).is_none()) {
            eprintln!("NOTE: this CPU lacks the '{name}' kernels: NOT tested here");
        }
    });
    assert!(
        !tables.is_empty(),
        "no SIMD table runs on this CPU: x86_64 needs AVX2, aarch64 always has NEON"
    );
    tables
}

/// One KV head's cache in all three types, plus the f32 values each type holds.
struct Case {
    hd: usize,
    group: usize,
    stride: usize,
    q: Vec<f32>,
    starts: Vec<usize>,
    ends: Vec<usize>,
    kt32: Vec<f32>,
    v32: Vec<f32>,
    kt16: Vec<u16>,
    v16: Vec<u16>,
    ktq: Vec<i8>,
    ktq_scale: Vec<u16>,
    vq: Vec<i8>,
    vq_scale: Vec<u16>,
}

fn to_f32(h: u16) -> f32 {
    f16::from_bits(h).to_f32()
}

impl Case {
    fn new(hd: usize, group: usize, tokens: usize, n: usize, seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let stride = n + (seed % 5) as usize;
        let mut g = |k: usize| -> Vec<f32> { (0..k).map(|_| rng.gaussian() * 3.0).collect() };
        let q = g(tokens * group * hd);
        let kt32 = g(hd * stride);
        let v32 = g(stride * hd);
        let kt16 = kt32.iter().map(|&x| f16::from_f32(x).to_bits()).collect();
        let v16 = v32.iter().map(|&x| f16::from_f32(x).to_bits()).collect();
        // q8_0: small random quants and positive scales (any bits are valid input).
        let ktq = (0..hd * stride).map(|_| (rng.next_u64() % 255) as i8).collect();
        let ktq_scale =
            (0..hd / 32 * stride).map(|_| f16::from_f32(rng.next_f64() as f32).to_bits()).collect();
        let vq = (0..stride * hd).map(|_| (rng.next_u64() % 255) as i8).collect();
        let vq_scale =
            (0..stride * hd / 32).map(|_| f16::from_f32(rng.next_f64() as f32).to_bits()).collect();
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        for _ in 0..tokens {
            let end = 1 + (rng.next_u64() as usize) % n;
            let start = match rng.next_u64() % 4 {
                0 => end - 1 - (rng.next_u64() as usize) % end,
                1 => end,
                _ => 0,
            };
            starts.push(start);
            ends.push(end);
        }
        Case {
            hd,
            group,
            stride,
            q,
            starts,
            ends,
            kt32,
            v32,
            kt16,
            v16,
            ktq,
            ktq_scale,
            vq,
            vq_scale,
        }
    }

    fn slice(&self, ty: usize) -> KvSlice<'_> {
        match ty {
            0 => KvSlice::F32 { kt: &self.kt32, v: &self.v32 },
            1 => KvSlice::F16 { kt: &self.kt16, v: &self.v16 },
            _ => KvSlice::Q8_0 {
                kt: &self.ktq,
                kt_scale: &self.ktq_scale,
                v: &self.vq,
                v_scale: &self.vq_scale,
            },
        }
    }

    /// The f32 cache holding exactly what cache type `ty` holds.
    fn dequantized(&self, ty: usize) -> (Vec<f32>, Vec<f32>) {
        let (hd, stride) = (self.hd, self.stride);
        match ty {
            0 => (self.kt32.clone(), self.v32.clone()),
            1 => (
                self.kt16.iter().map(|&h| to_f32(h)).collect(),
                self.v16.iter().map(|&h| to_f32(h)).collect(),
            ),
            _ => {
                let kt = (0..hd * stride)
                    .map(|i| {
                        let (d, s) = (i / stride, i % stride);
                        self.ktq[i] as f32 * to_f32(self.ktq_scale[d / 32 * stride + s])
                    })
                    .collect();
                let v = (0..stride * hd)
                    .map(|i| self.vq[i] as f32 * to_f32(self.vq_scale[i / 32]))
                    .collect();
                (kt, v)
            }
        }
    }

    fn run(&self, k: &Kernels, kv: KvSlice) -> Vec<f32> {
        let rows = self.starts.len() * self.group;
        let block = AttnBlock {
            q: &self.q,
            hd: self.hd,
            group: self.group,
            kv,
            stride: self.stride,
            v_stride: self.hd,
            starts: &self.starts,
            ends: &self.ends,
            scale: 0.125,
        };
        let mut out = vec![f32::NAN; rows * self.hd];
        let mut scratch = vec![0f32; scratch_len(rows, self.hd)];
        (k.attention)(&block, &mut out, &mut scratch);
        out
    }
}

fn same_bits(what: &str, got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert_eq!(g.to_bits(), w.to_bits(), "{} out[{}]: {} vs {}", what, i, g, w);
    }
    Ok(())
}

const TYPES: [&str; 3] = ["f32", "f16", "q8_0"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every SIMD table equals the scalar table for every cache type, on head sizes
    /// with and without whole slabs, batches and single tokens (the decode path), key
    /// counts not a multiple of the 32-key block.
    #[test]
    fn every_table_matches_scalar_for_every_kv_type(
        hd in prop::sample::select(vec![32usize, 64, 96, 128, 256]),
        group in 1..=4usize,
        tokens in prop::sample::select(vec![1usize, 1, 2, 5, 9]),
        n in 1..=150usize,
        seed in any::<u64>(),
    ) {
        let case = Case::new(hd, group, tokens, n, seed);
        let scalar = kernels::table("scalar").unwrap();
        for (ty, name) in TYPES.iter().enumerate() {
            let want = case.run(&scalar, case.slice(ty));
            for k in simd_tables() {
                let got = case.run(&k, case.slice(ty));
                same_bits(&format!("{} {name} hd={hd} n={n} tokens={tokens}", k.name), &got, &want)?;
            }
        }
    }

    /// A token alone (the decode path: keys in chunks of 1,024 read channel by channel)
    /// gets the same bits as the same token last in a batch (32-key blocks), across chunk
    /// boundaries and with channels past the last slab of 16, in every table and type.
    #[test]
    fn a_token_alone_equals_the_token_in_a_batch(
        hd in prop::sample::select(vec![64usize, 66, 72, 80, 256]),
        group in 1..=4usize,
        n in prop::sample::select(vec![1usize, 31, 33, 1024, 1025, 2100]),
        seed in any::<u64>(),
    ) {
        let mut batch = Case::new(hd, group, 3, n, seed);
        batch.starts = vec![0; 3];
        batch.ends = vec![n.saturating_sub(2).max(1), n.saturating_sub(1).max(1), n];
        let mut alone = Case::new(hd, group, 3, n, seed);
        alone.q = batch.q[2 * group * hd..].to_vec();
        alone.starts = vec![0];
        alone.ends = vec![n];
        let tables = std::iter::once(kernels::table("scalar").unwrap()).chain(simd_tables());
        for k in tables {
            for (ty, name) in TYPES.iter().enumerate().filter(|&(ty, _)| ty < 2 || hd % 32 == 0) {
                let in_batch = batch.run(&k, batch.slice(ty));
                let got = alone.run(&k, alone.slice(ty));
                let want = &in_batch[2 * group * hd..];
                same_bits(&format!("{} {name} hd={hd} n={n}", k.name), &got, want)?;
            }
        }
    }

    /// Reading f16 or q8_0 directly equals reading an f32 cache of the same values.
    #[test]
    fn each_type_reads_as_its_dequantized_values(
        hd in prop::sample::select(vec![32usize, 64, 256]),
        group in 1..=3usize,
        tokens in prop::sample::select(vec![1usize, 3]),
        n in 1..=100usize,
        seed in any::<u64>(),
    ) {
        let case = Case::new(hd, group, tokens, n, seed);
        let k = kernels::kernels();
        for (ty, name) in TYPES.iter().enumerate().skip(1) {
            let (kt, v) = case.dequantized(ty);
            let want = case.run(k, KvSlice::F32 { kt: &kt, v: &v });
            let got = case.run(k, case.slice(ty));
            same_bits(&format!("{name} vs f32"), &got, &want)?;
        }
    }
}
