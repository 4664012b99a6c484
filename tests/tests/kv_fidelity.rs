//! KV cache types on SmolLM2, teacher-forced over the shared chat references (exact
//! path, so only the cache differs): mean |Δ log-prob| of the float reference's top-5
//! ids between an f16 or q8_0 cache and the f32 cache, printed for BENCHMARKS.md and
//! bounded. (The f32 cache's greedy answers are checked against the float reference by
//! reference_smollm2.rs: the exact path's default cache is f32.)

use std::sync::Arc;

use joule_core::KvType;
use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_tests::{SMOLLM2, ids, model_path, read_jsonl, top};

fn engine(kv_type: KvType) -> Arc<Engine> {
    let options = EngineOptions {
        precision: Precision::Exact,
        kv_type: Some(kv_type),
        context: Some(512),
        threads: Some(2),
        energy: None,
        ..EngineOptions::default()
    };
    Engine::load(model_path(SMOLLM2), options).expect("load SmolLM2")
}

#[test]
fn f16_and_q8_0_caches_stay_close_to_f32() {
    let chats = read_jsonl("smollm2-135m-q4_1.chat.jsonl");
    let engines: Vec<_> = KvType::ALL.into_iter().map(engine).collect();
    let mut delta = [0f64; 3];
    let mut n = 0usize;
    for chat in &chats {
        let (prompt, greedy) = (ids(&chat["prompt_tokens"]), ids(&chat["f32"]["greedy"]));
        let steps: Vec<_> =
            engines.iter().map(|e| e.score_full(&prompt, &greedy).unwrap()).collect();
        for i in 0..greedy.len() {
            for (id, _) in top(&chat["f32"]["top10"][i]).into_iter().take(5) {
                let f32_lp = steps[0][i][id as usize];
                for t in 1..3 {
                    delta[t] += (steps[t][i][id as usize] - f32_lp).abs() as f64;
                }
                n += 1;
            }
        }
    }
    let (f16, q8) = (delta[1] / n as f64, delta[2] / n as f64);
    eprintln!(
        "mean top-5 |Δ log-prob| against the f32 cache: f16 {f16:.5}, q8_0 {q8:.5} ({n} comparisons)"
    );
    assert!(n > 300, "too few steps: {n}");
    assert!(f16 < 5e-3, "f16 cache: {f16}");
    assert!(q8 < 5e-2, "q8_0 cache: {q8}");
}
