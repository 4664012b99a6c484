//! The KV cache in each type on a synthetic model: memory reserved as slots are used
//! (not the whole context up front), a cache rewound with `truncate` or compacted with
//! `retain` across a growth of its reservation gives the same logits as before, and f16
//! and q8_0 stay close to f32.

use joule_core::Precision;
use joule_core::gguf::GgufFile;
use joule_core::model::kv_cache::KvType;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::model::{ForwardState, KvCache, Logits, Model, forward};
use joule_core::threads::ThreadPool;

fn model() -> Model {
    let mut spec = SyntheticSpec::tiny();
    (spec.n_head, spec.n_head_kv, spec.n_ctx) = (2, 1, 4096);
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    Model::load(GgufFile::from_bytes(&bytes).unwrap(), Precision::Exact).unwrap()
}

fn tokens(n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 37 + 11) % 300) as u32).collect()
}

/// Feeds `toks` in batches of 64; returns the last logits.
fn run(m: &Model, pool: &ThreadPool, kv: &mut KvCache, toks: &[u32]) -> Vec<f32> {
    let mut state = ForwardState::new(m, 64);
    for chunk in toks.chunks(64) {
        forward(m, pool, &mut state, kv, chunk, Logits::Last).unwrap();
    }
    state.logits_row(0).to_vec()
}

#[test]
fn memory_is_reserved_as_slots_are_used() {
    let m = model();
    let pool = ThreadPool::new(2).unwrap();
    for ty in KvType::ALL {
        let mut kv = KvCache::with_type(&m.config, 4096, ty).unwrap();
        let first = kv.bytes_reserved();
        assert!(first * 8 <= kv.bytes_at_capacity(), "{}: {first} bytes up front", ty.name());
        run(&m, &pool, &mut kv, &tokens(300));
        assert!(kv.bytes_reserved() > first && kv.bytes_reserved() < kv.bytes_at_capacity());
        assert_eq!(kv.stride(), 512, "{}", ty.name());
    }
}

#[test]
fn truncate_and_retain_across_a_growth_keep_the_logits() {
    let m = model();
    let pool = ThreadPool::new(2).unwrap();
    let toks = tokens(300);
    for ty in KvType::ALL {
        let mut kv = KvCache::with_type(&m.config, 4096, ty).unwrap();
        let want = run(&m, &pool, &mut kv, &toks[..200]);
        // Grow past the first reservation, then rewind to 199 slots and redo the last.
        run(&m, &pool, &mut kv, &toks[200..]);
        kv.truncate(199);
        let got = run(&m, &pool, &mut kv, &toks[199..200]);
        assert_eq!(got, want, "{}: truncate", ty.name());
        // Keeping every slot changes nothing; dropping the tail equals truncating.
        run(&m, &pool, &mut kv, &toks[200..]);
        kv.retain(&vec![true; 300]).unwrap();
        let mut keep = vec![true; 300];
        keep[199..].iter_mut().for_each(|k| *k = false);
        kv.retain(&keep).unwrap();
        assert_eq!(kv.len(), 199);
        // The next position stays after the evicted ones, so compare against a cache
        // that saw the same positions: only the slot content must survive compaction.
        let mut drop_middle = vec![true; 199];
        drop_middle[50..60].iter_mut().for_each(|k| *k = false);
        kv.retain(&drop_middle).unwrap();
        assert_eq!(kv.len(), 189);
        assert_eq!(kv.positions()[50], 60);
        assert_eq!(kv.tokens()[50], toks[60]);
    }
}

#[test]
fn f16_and_q8_0_stay_close_to_f32() {
    let m = model();
    let pool = ThreadPool::new(2).unwrap();
    let toks = tokens(200);
    let mut kv = KvCache::with_type(&m.config, 4096, KvType::F32).unwrap();
    let want = run(&m, &pool, &mut kv, &toks);
    for (ty, budget) in [(KvType::F16, 1e-2), (KvType::Q8_0, 5e-2)] {
        let mut kv = KvCache::with_type(&m.config, 4096, ty).unwrap();
        let got = run(&m, &pool, &mut kv, &toks);
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = want.iter().map(|x| x.abs()).fold(0f32, f32::max);
        assert!(worst <= budget * scale.max(1.0), "{}: max |Δlogit| {worst}", ty.name());
        assert!(worst > 0.0, "{}: identical to f32, the type was not used", ty.name());
    }
}
