//! `joule eval prune` on a tiny synthetic model (hermetic): one row per task, length and
//! setting, the baseline first; pruned rows ran on fewer tokens and carry KL and top-1
//! agreement against the unpruned answer; the JSON has the fields the reports promise.

use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::prune_eval::{markdown, svg};
use joule_core::eval::{PrunePlan, Setting, Task, evaluate_pruning};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::{Budget, Strategy};

#[test]
fn rows_cover_every_task_and_setting_with_fidelity_for_the_pruned_ones() {
    let spec = SyntheticSpec { n_layers: 4, n_ctx: 4096, ..SyntheticSpec::tiny() };
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(3072),
        threads: Some(2),
        precision: Precision::Exact,
        ..EngineOptions::default()
    };
    let engine = Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap();
    let early = Strategy::EarlyLayer { layer: None, rows: 8 };
    let plan = PrunePlan {
        tasks: vec![Task::Passkey, Task::ChatRecall],
        lengths: vec![300],
        depths: vec![0.1, 0.9],
        seeds: 1,
        settings: vec![
            Setting { strategy: Some(early), budget: Budget::Ratio(0.25) },
            Setting { strategy: Some(early), budget: Budget::Ratio(1.0) },
        ],
        max_tokens: 4,
    };
    let mut progress = 0;
    let rows = evaluate_pruning(&engine, "tiny", &plan, &mut |_| progress += 1).unwrap();
    assert_eq!(progress, 3, "two passkey cases and one chat");
    assert_eq!(rows.len(), 6);
    for group in rows.chunks(3) {
        let (base, pruned, full) = (&group[0], &group[1], &group[2]);
        assert_eq!((base.strategy.as_str(), base.kl), ("none", None));
        assert_eq!(base.tokens_kept, base.tokens_in);
        assert!(pruned.tokens_kept < pruned.tokens_in * 0.5, "{pruned:?}");
        assert!(pruned.scoring_s > 0.0 && pruned.ttft_s > pruned.scoring_s);
        let (kl, top1) = (pruned.kl.unwrap(), pruned.top1_agreement.unwrap());
        assert!(kl >= 0.0 && (0.0..=1.0).contains(&top1), "{pruned:?}");
        // A 100 % budget is the unpruned run: the same answers, no divergence.
        assert_eq!(full.tokens_kept, full.tokens_in);
        assert_eq!(
            (full.kl, full.top1_agreement, full.accuracy),
            (Some(0.0), Some(1.0), base.accuracy)
        );
        assert_eq!(base.speedup, 1.0);
    }
    let passkey = &rows[0];
    assert!((passkey.tokens_in - 300.0).abs() < 30.0, "sized to 300 tokens: {passkey:?}");

    let json = serde_json::to_value(&rows).unwrap();
    for field in [
        "task",
        "model",
        "strategy",
        "budget",
        "tokens_in",
        "tokens_kept",
        "ttft_s",
        "prefill_j",
        "accuracy",
        "kl",
        "top1_agreement",
    ] {
        assert!(json[1].get(field).is_some(), "missing {field}");
    }
    assert_eq!(markdown(&rows).lines().count(), 2 + rows.len());
    let plot = svg(&rows, "tiny");
    assert_eq!(plot.matches("<circle").count(), rows.len());
}
