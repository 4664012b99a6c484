//! The float kernels every SIMD table compiles from one body (blocked attention, the
//! single-row attention scores and values, the gated activations) against the scalar
//! table, on whichever architecture the tests run (x86_64 natively, aarch64 under qemu):
//! no reassociation and only correctly rounded fused multiply-adds, so the budget is
//! zero and every output must match bit for bit, whatever the table's tiling.

use joule_core::kernels::{self, Kernels};
use joule_core::sampling::Rng;
use proptest::prelude::*;

/// Every SIMD table of this architecture this CPU runs; the others are named on stderr.
fn simd_tables() -> Vec<Kernels> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    REPORT.call_once(|| {
        for name in kernels::simd_table_names().iter().filter(|n| kernels::table(n).is_none()) {
            eprintln!(
                "NOTE: this CPU lacks the '{name}' kernels: their float kernels are NOT tested here"
            );
        }
    });
    let tables: Vec<Kernels> =
        kernels::simd_table_names().iter().filter_map(|n| kernels::table(n)).collect();
    assert!(
        !tables.is_empty(),
        "no SIMD table runs on this CPU: x86_64 needs AVX2, aarch64 always has NEON"
    );
    tables
}

/// Random attention inputs: `tokens` query tokens of `group` heads each, `n` cache slots,
/// token `i` seeing a random window of slots.
struct AttnCase {
    hd: usize,
    group: usize,
    n: usize,
    stride: usize,
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl AttnCase {
    fn new(hd: usize, group: usize, tokens: usize, n: usize, seed: u64) -> AttnCase {
        let mut rng = Rng::new(seed);
        let stride = n + (seed % 5) as usize;
        let q = (0..tokens * group * hd).map(|_| rng.gaussian()).collect();
        let kt = (0..hd * stride).map(|_| rng.gaussian()).collect();
        let v = (0..stride * hd).map(|_| rng.gaussian()).collect();
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        for _ in 0..tokens {
            let end = 1 + (rng.next_u64() as usize) % n;
            // Mostly causal prefixes; sometimes a sliding window; sometimes nothing visible.
            let start = match rng.next_u64() % 4 {
                0 => end - 1 - (rng.next_u64() as usize) % end,
                1 => end,
                _ => 0,
            };
            starts.push(start);
            ends.push(end);
        }
        AttnCase { hd, group, n, stride, q, kt, v, starts, ends }
    }

    fn run(&self, k: &Kernels) -> Vec<f32> {
        let rows = self.starts.len() * self.group;
        let block = kernels::attention::AttnBlock {
            q: &self.q,
            hd: self.hd,
            group: self.group,
            kv: kernels::kv_block::KvSlice::F32 { kt: &self.kt, v: &self.v },
            stride: self.stride,
            v_stride: self.hd,
            starts: &self.starts,
            ends: &self.ends,
            scale: 0.125,
        };
        let mut out = vec![f32::NAN; rows * self.hd];
        let mut scratch = vec![0f32; kernels::attention::scratch_len(rows, self.hd)];
        (k.attention)(&block, &mut out, &mut scratch);
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The blocked attention of every SIMD table equals the scalar table's bit for bit,
    /// on head sizes with and without whole 64- and 16-channel slabs, 1..=4 heads per KV
    /// head, blocks of rows not a multiple of 4 and key counts not a multiple of 32.
    #[test]
    fn attention_matches_scalar_bit_for_bit(
        hd in prop::sample::select(vec![8usize, 24, 64, 72, 128, 256]),
        group in 1..=4usize,
        tokens in 1..=9usize,
        n in 1..=150usize,
        seed in any::<u64>(),
    ) {
        let case = AttnCase::new(hd, group, tokens, n, seed);
        let want = case.run(&kernels::table("scalar").unwrap());
        for k in simd_tables() {
            let got = case.run(&k);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                prop_assert_eq!(g.to_bits(), w.to_bits(), "{} hd={} group={} n={} out[{}]: {} vs scalar {}", k.name, hd, group, case.n, i, g, w);
            }
        }
    }

    /// The single-row score and value kernels (attention capture) likewise.
    #[test]
    fn attn_scores_and_values_match_scalar_bit_for_bit(hd in 1..=80usize, heads in 1..=3usize, n in 1..=100usize, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let stride = n + 3;
        let q: Vec<f32> = (0..heads * hd).map(|_| rng.gaussian()).collect();
        let kt: Vec<f32> = (0..hd * stride).map(|_| rng.gaussian()).collect();
        let p: Vec<f32> = (0..heads * n).map(|_| rng.gaussian().abs()).collect();
        let v: Vec<f32> = (0..stride * hd).map(|_| rng.gaussian()).collect();
        let run = |k: &Kernels| {
            let mut scores = vec![f32::NAN; heads * n];
            (k.attn_scores)(&q, hd, &kt, stride, n, &mut scores);
            let mut out = vec![f32::NAN; heads * hd];
            (k.attn_values)(&p, n, &v, hd, hd, &mut out);
            (scores, out)
        };
        let want = run(&kernels::table("scalar").unwrap());
        for k in simd_tables() {
            let got = run(&k);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got.0), bits(&want.0), "{} scores", k.name);
            prop_assert_eq!(bits(&got.1), bits(&want.1), "{} values", k.name);
        }
    }
}

proptest! {
    /// The gated activations (SwiGLU, GeGLU) of every SIMD table equal the scalar
    /// table's bit for bit, over lengths that leave vector tails and gates far into both
    /// tails of the exponential.
    #[test]
    fn gated_matches_scalar_bit_for_bit(n in 0..300usize, spread in 0.1f32..120.0, seed in any::<u64>()) {
        use joule_core::model::config::Activation;
        let mut rng = Rng::new(seed);
        let gate: Vec<f32> = (0..n).map(|_| rng.gaussian() * spread).collect();
        let up: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
        for act in [Activation::Silu, Activation::GeluTanh] {
            let mut want = gate.clone();
            (kernels::table("scalar").unwrap().gated)(&mut want, &up, act);
            for k in simd_tables() {
                let mut got = gate.clone();
                (k.gated)(&mut got, &up, act);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    prop_assert_eq!(g.to_bits(), w.to_bits(), "{} {:?} [{}] gate {}: {} vs scalar {}", k.name, act, i, gate[i], g, w);
                }
            }
        }
    }
}
