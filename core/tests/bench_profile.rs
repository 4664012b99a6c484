//! `joule bench --profile` on a tiny synthetic model: every operation of the forward pass
//! is counted once per layer (or once per pass), the matrix products report the bytes
//! they read, and the operations' times fit inside the measured time.

use joule_core::Precision;
use joule_core::engine::bench::{BenchCase, BenchSetup};
use joule_core::engine::bench_profile::profile_case;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};

#[test]
fn a_profile_counts_each_operation_and_fits_in_the_measured_time() {
    let spec = SyntheticSpec::tiny();
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    let options =
        EngineOptions { threads: Some(2), precision: Precision::Fast, ..EngineOptions::default() };
    let engine = Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap();
    let layers = spec.n_layers as f64;
    for (case, passes) in [(BenchCase::Generate(6), 6), (BenchCase::Prompt(9), 1)] {
        let p =
            profile_case(&engine, case, &BenchSetup { depth: 4, ..BenchSetup::default() }).unwrap();
        assert_eq!(p.passes, passes, "{}", p.test);
        let op = |name: &str| p.ops.iter().find(|o| o.op == name);
        for name in ["matmul qkv", "matmul o", "matmul gate+up", "matmul down", "attention"] {
            let o = op(name).unwrap_or_else(|| panic!("{}: no {name} row", p.test));
            assert_eq!(o.calls, layers, "{}: {name} calls per pass", p.test);
            assert!(o.bytes > 0 && o.gb_per_s.is_some(), "{}: {name} reads bytes", p.test);
        }
        let head = op("matmul head").unwrap();
        assert_eq!((head.calls, head.bytes), (1.0, engine_head_bytes(&engine)), "{}", p.test);
        assert_eq!(op("embed").unwrap().calls, 1.0);
        // Disjoint intervals inside the measured one.
        let sum: f64 = p.ops.iter().map(|o| o.share).sum();
        assert!((sum - p.coverage).abs() < 1e-9 && p.coverage <= 1.0, "{}: {p:?}", p.test);
        assert!(p.coverage > 0.0 && p.measured_ms > 0.0);
    }
    assert!(profile_case(&engine, BenchCase::Generate(0), &BenchSetup::default()).is_err());
}

/// The output head's bytes: everything the decode reads minus the layers' matrices.
fn engine_head_bytes(engine: &Engine) -> u64 {
    let p = profile_case(engine, BenchCase::Generate(1), &BenchSetup::default()).unwrap();
    let layers: u64 = p
        .ops
        .iter()
        .filter(|o| o.op.starts_with("matmul ") && o.op != "matmul head")
        .map(|o| o.bytes)
        .sum();
    engine.decode_weight_bytes() - layers
}

/// `joule bench --prune` and `--evict-context`: a pruned pp case prefills only what the
/// strategy keeps, a tg case longer than its cache keeps going by evicting, and hostile
/// setups are errors.
#[test]
fn bench_setups_prune_prompts_and_evict_while_generating() {
    use joule_core::engine::bench::run_case;
    use joule_core::engine::bench::{BenchTimes, run_case_with};
    use joule_core::{Budget, EvictOptions, PruneOptions, Strategy};
    let spec = SyntheticSpec::tiny();
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    let options = EngineOptions { threads: Some(2), ..EngineOptions::default() };
    let engine = Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap();
    let run = |case, setup: &BenchSetup| -> joule_core::Result<BenchTimes> {
        run_case_with(&engine, case, setup, 2, &mut |_, once| once())
    };
    for strategy in ["early-layer", "self-info", "snapkv"].map(|s| Strategy::parse(s).unwrap()) {
        let prune = Some(PruneOptions::new(strategy, Budget::Ratio(0.25)));
        let t =
            run(BenchCase::Prompt(200), &BenchSetup { prune, ..BenchSetup::default() }).unwrap();
        assert_eq!(t.prompt_kept, Some(50), "{}", strategy.name());
        assert_eq!(t.seconds.len(), 2);
    }
    let plain = run_case(&engine, BenchCase::Prompt(200), 1, &mut |_, once| once()).unwrap();
    assert_eq!((plain.prompt_kept, plain.evicted_tokens), (None, 0));

    // 100 tokens through a 40-slot cache: each fill frees a quarter (10 slots).
    let evict = Some((EvictOptions::default(), 40));
    let t = run(BenchCase::Generate(100), &BenchSetup { evict, ..BenchSetup::default() }).unwrap();
    assert_eq!(t.evicted_tokens, 70, "{t:?}");

    let no_room = Some((EvictOptions::default(), 5));
    assert!(
        run(BenchCase::Generate(10), &BenchSetup { evict: no_room, ..BenchSetup::default() })
            .is_err()
    );
    let bad_free = Some((EvictOptions { free: 0.0, ..EvictOptions::default() }, 40));
    assert!(
        run(BenchCase::Generate(10), &BenchSetup { evict: bad_free, ..BenchSetup::default() })
            .is_err()
    );
    let zero = Some(PruneOptions::new(Strategy::parse("early-layer").unwrap(), Budget::Tokens(0)));
    assert!(
        run(BenchCase::Prompt(20), &BenchSetup { prune: zero, ..BenchSetup::default() }).is_err()
    );
}
