//! Eviction with renumbered positions (`model::evict`) on synthetic models, in every KV
//! type: with one layer, a cache evicted then refilled gives the logits of a fresh run over
//! the kept tokens; with several, dropping a prefix (relative distances unchanged) gives
//! the logits of `KvCache::retain`, which keeps the old positions; the positions stay
//! inside the context however long a stream runs; sliding-window layers refuse what
//! they can no longer hold; bad flags are errors; keeping everything changes nothing.

use joule_core::Precision;
use joule_core::gguf::GgufFile;
use joule_core::model::kv_cache::KvType;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::model::{
    ForwardState, KvCache, Logits, Model, evict, forward, keep_sinks_and_recent,
};
use joule_core::threads::ThreadPool;

/// A tiny model of `arch` with `n_layers` layers; one KV head of 32 (q8_0 needs it).
fn model(arch: &str, n_layers: usize) -> Model {
    let spec = SyntheticSpec {
        arch: arch.into(),
        n_layers,
        n_head: 2,
        n_head_kv: 1,
        n_ctx: 512,
        ..SyntheticSpec::tiny()
    };
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    Model::load(GgufFile::from_bytes(&bytes).unwrap(), Precision::Exact).unwrap()
}

fn tokens(n: usize, seed: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 37 + seed * 101 + 11) % 300) as u32).collect()
}

/// Feeds `toks` in batches of `batch`.
fn prefill(m: &Model, pool: &ThreadPool, kv: &mut KvCache, toks: &[u32], batch: usize) {
    let mut state = ForwardState::new(m, batch);
    for chunk in toks.chunks(batch) {
        forward(m, pool, &mut state, kv, chunk, Logits::None).unwrap();
    }
}

/// Decodes `toks` one at a time; the logits of each step.
fn decode(m: &Model, pool: &ThreadPool, kv: &mut KvCache, toks: &[u32]) -> Vec<Vec<f32>> {
    let mut state = ForwardState::new(m, 1);
    toks.iter()
        .map(|&t| {
            forward(m, pool, &mut state, kv, &[t], Logits::Last).unwrap();
            state.logits_row(0).to_vec()
        })
        .collect()
}

/// Largest |a - b| over every step, relative to the largest |b|.
fn rel_error(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    let scale = want.iter().flatten().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let worst = got
        .iter()
        .flatten()
        .zip(want.iter().flatten())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    worst / scale
}

/// Bounds of the relative logit error per KV type: about 7 times the worst measured
/// (x86-64: f32 1.4e-7, f16 5.4e-5, q8_0 1.4e-3).
fn budget(ty: KvType) -> f32 {
    match ty {
        KvType::F32 => 1e-6,
        KvType::F16 => 4e-4,
        KvType::Q8_0 => 1e-2,
    }
}

fn contiguous(kv: &KvCache) {
    let want: Vec<u32> = (0..kv.len() as u32).collect();
    assert_eq!(kv.positions(), want);
    assert_eq!(kv.next_position() as usize, kv.len());
}

#[test]
fn one_layer_evicted_then_refilled_matches_a_fresh_run_over_the_kept_tokens() {
    let pool = ThreadPool::new(2).unwrap();
    // Llama (interleaved rope) and Gemma 3 (NEOX rope; its one layer is a local one,
    // with its own rope base and a window of 4).
    for arch in ["llama", "gemma3"] {
        let m = model(arch, 1);
        let toks = tokens(40, 1);
        let more = tokens(6, 2);
        for ty in KvType::ALL {
            let mut kv = KvCache::with_type(&m.config, 128, ty).unwrap();
            prefill(&m, &pool, &mut kv, &toks, 8);
            let keep = keep_sinks_and_recent(kv.len(), 4, 12);
            assert_eq!(evict(&m, &mut kv, &keep).unwrap(), 24);
            contiguous(&kv);
            let kept: Vec<u32> = kv.tokens().to_vec();
            let want_kept: Vec<u32> =
                toks.iter().zip(&keep).filter(|(_, k)| **k).map(|(t, _)| *t).collect();
            assert_eq!(kept, want_kept);
            let got = decode(&m, &pool, &mut kv, &more);

            let mut fresh = KvCache::with_type(&m.config, 128, ty).unwrap();
            prefill(&m, &pool, &mut fresh, &kept, 8);
            let want = decode(&m, &pool, &mut fresh, &more);
            let err = rel_error(&got, &want);
            eprintln!("kv_evict: {arch} 1 layer {}: relative logit error {err:.3e}", ty.name());
            assert!(err <= budget(ty), "{arch} {}: relative logit error {err}", ty.name());
            assert_eq!(kv.positions(), fresh.positions());
        }
    }
}

#[test]
fn dropping_a_prefix_matches_retain_with_the_old_positions() {
    let pool = ThreadPool::new(2).unwrap();
    // Llama with 2 layers; Gemma 3 with 6 (5 local layers with a window of 4, 1 global).
    for (arch, layers) in [("llama", 2), ("gemma3", 6)] {
        let m = model(arch, layers);
        let toks = tokens(40, 3);
        let more = tokens(6, 4);
        for ty in KvType::ALL {
            // Decoded one by one at the end, so the windowed layers' window moves on.
            let fill = |kv: &mut KvCache| {
                prefill(&m, &pool, kv, &toks[..32], 8);
                decode(&m, &pool, kv, &toks[32..]);
            };
            let mut keep = vec![true; 40];
            keep[..13].iter_mut().for_each(|k| *k = false);

            let mut kv = KvCache::with_type(&m.config, 128, ty).unwrap();
            fill(&mut kv);
            assert_eq!(evict(&m, &mut kv, &keep).unwrap(), 13);
            contiguous(&kv);
            let got = decode(&m, &pool, &mut kv, &more);

            let mut old = KvCache::with_type(&m.config, 128, ty).unwrap();
            fill(&mut old);
            old.retain(&keep).unwrap();
            assert_eq!(old.positions()[0], 13);
            let want = decode(&m, &pool, &mut old, &more);
            let err = rel_error(&got, &want);
            eprintln!(
                "kv_evict: {arch} {layers} layers {}: relative logit error {err:.3e}",
                ty.name()
            );
            assert!(err <= budget(ty), "{arch} {}: relative logit error {err}", ty.name());
        }
    }
}

#[test]
fn sinks_and_recent_renumber_and_keep_positions_inside_the_context() {
    let pool = ThreadPool::new(2).unwrap();
    for (arch, layers) in [("llama", 2), ("gemma3", 6)] {
        let m = model(arch, layers);
        for ty in KvType::ALL {
            // A stream of 150 tokens through a 48-slot cache: when full, keep 4 sinks and
            // the last 20 slots.
            let capacity = 48;
            let mut kv = KvCache::with_type(&m.config, capacity, ty).unwrap();
            let mut state = ForwardState::new(&m, 1);
            let mut evictions = 0;
            for &t in &tokens(150, 5) {
                if kv.free() == 0 {
                    let keep = keep_sinks_and_recent(kv.len(), 4, 20);
                    let sinks = kv.tokens()[..4].to_vec();
                    let recent = kv.tokens()[capacity - 20..].to_vec();
                    assert_eq!(evict(&m, &mut kv, &keep).unwrap(), capacity - 24);
                    contiguous(&kv);
                    assert_eq!(kv.tokens(), [sinks, recent].concat());
                    evictions += 1;
                }
                forward(&m, &pool, &mut state, &mut kv, &[t], Logits::Last).unwrap();
                assert!(state.logits_row(0).iter().all(|x| x.is_finite()));
                assert!((kv.next_position() as usize) <= capacity);
            }
            assert!(evictions >= 4, "{arch} {}: {evictions} evictions", ty.name());
        }
    }
}

#[test]
fn sliding_window_layers_refuse_to_reach_slots_they_dropped() {
    let pool = ThreadPool::new(2).unwrap();
    let m = model("gemma3", 6);
    let window = 4;
    let mut kv = KvCache::new(&m.config, 128).unwrap();
    // Decoded one by one: the windowed layers keep only the last few slots.
    prefill(&m, &pool, &mut kv, &tokens(24, 6), 8);
    decode(&m, &pool, &mut kv, &tokens(16, 7));
    let (positions, next) = (kv.positions().to_vec(), kv.next_position());
    // Sinks and fewer than window - 1 recent slots: the window would reach the sinks.
    let err = evict(&m, &mut kv, &keep_sinks_and_recent(40, 4, window - 2)).unwrap_err();
    assert!(err.to_string().contains("sliding window"), "{err}");
    assert_eq!((kv.positions(), kv.next_position()), (&positions[..], next));
    // window - 1 recent slots: it sees only those.
    assert_eq!(evict(&m, &mut kv, &keep_sinks_and_recent(40, 4, window - 1)).unwrap(), 33);
    contiguous(&kv);
    let logits = decode(&m, &pool, &mut kv, &tokens(3, 8));
    assert!(logits.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn bad_flags_are_errors_and_keeping_everything_changes_nothing() {
    let pool = ThreadPool::new(2).unwrap();
    let m = model("llama", 2);
    let toks = tokens(30, 9);
    let more = tokens(4, 10);
    for ty in KvType::ALL {
        let mut kv = KvCache::with_type(&m.config, 64, ty).unwrap();
        prefill(&m, &pool, &mut kv, &toks, 8);
        let mut same = KvCache::with_type(&m.config, 64, ty).unwrap();
        prefill(&m, &pool, &mut same, &toks, 8);

        assert!(evict(&m, &mut kv, &[true]).is_err());
        assert!(evict(&m, &mut kv, &[true; 31]).is_err());
        assert_eq!(kv.len(), 30);
        // A cache of another model is refused.
        let other = model("llama", 1);
        assert!(evict(&other, &mut kv, &[true; 30]).is_err());

        assert_eq!(evict(&m, &mut kv, &[true; 30]).unwrap(), 0);
        contiguous(&kv);
        let got = decode(&m, &pool, &mut kv, &more);
        let want = decode(&m, &pool, &mut same, &more);
        assert_eq!(got, want, "{}", ty.name());
    }
    // An empty cache, and evicting every slot.
    let mut kv = KvCache::new(&m.config, 64).unwrap();
    assert_eq!(evict(&m, &mut kv, &[]).unwrap(), 0);
    prefill(&m, &pool, &mut kv, &toks[..5], 8);
    assert_eq!(evict(&m, &mut kv, &[false; 5]).unwrap(), 5);
    assert_eq!((kv.len(), kv.next_position()), (0, 0));
    decode(&m, &pool, &mut kv, &more);
}
