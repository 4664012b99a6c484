//! `joule eval prune` on a tiny synthetic model (hermetic): one row per task, length and
//! setting, the baseline first; pruned rows ran on fewer tokens and carry KL and top-1
//! agreement against the unpruned answer; the JSON has the fields the reports promise.

use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::prune_eval::{calibrate, markdown, svg};
use joule_core::eval::{PrunePlan, PruneRow, Setting, Task, evaluate_pruning};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::prune::{Calibration, Limits};
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

fn row(strategy: &str, accuracy: f64, kept: f64, kl: Option<f64>, top1: Option<f64>) -> PruneRow {
    PruneRow {
        task: "passkey".into(),
        model: "m".into(),
        strategy: strategy.into(),
        budget: String::new(),
        length: 1000,
        cases: 6,
        tokens_in: 1000.0,
        tokens_kept: kept,
        ttft_s: kept / 500.0 + 0.2,
        scoring_s: 0.2,
        prefill_j: None,
        energy: "none".into(),
        accuracy,
        kl,
        top1_agreement: top1,
        speedup: 1.0,
    }
}

#[test]
fn calibration_takes_the_smallest_budget_within_every_limit() {
    let early = Some(Strategy::EarlyLayer { layer: None, rows: 8 });
    let budgets = [0.1, 0.2, 0.5];
    let plan = PrunePlan {
        tasks: vec![Task::Passkey],
        lengths: vec![1000],
        depths: vec![0.5],
        seeds: 6,
        settings: budgets
            .iter()
            .map(|&b| Setting { strategy: early, budget: Budget::Ratio(b) })
            .collect(),
        max_tokens: 8,
    };
    let model = std::env::temp_dir().join(format!("joule-calib-{}.gguf", std::process::id()));
    std::fs::write(&model, b"not a model, only its size counts").unwrap();
    // 10 %: accurate but divergent; 20 %: within; 50 %: within but keeps more.
    let rows = vec![
        row("none", 1.0, 1000.0, None, None),
        row("early-layer", 1.0, 100.0, Some(0.9), Some(0.6)),
        row("early-layer", 1.0, 200.0, Some(0.1), Some(0.9)),
        row("early-layer", 1.0, 500.0, Some(0.01), Some(1.0)),
    ];
    let limits = Limits::default();
    let c = calibrate(&plan, &rows, &limits, &model).unwrap();
    assert_eq!(c.budget, Budget::Ratio(0.2));
    assert!((c.speedup - 2.2 / 0.6).abs() < 1e-9, "{}", c.speedup);
    // Accuracy below 95 % of the unpruned run's disqualifies even a faithful setting.
    let mut worse = rows.clone();
    worse[2].accuracy = 0.8;
    worse[3].accuracy = 0.9;
    assert!(calibrate(&plan, &worse, &limits, &model).is_none());

    // `auto` reads the file back; a file for another model is an error, not a guess.
    let path = Calibration::path_for(&model);
    assert_eq!(Calibration::auto(&model).unwrap().0, Calibration::fallback());
    std::fs::write(&path, serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(Calibration::auto(&model).unwrap().0.budget, Budget::Ratio(0.2));
    std::fs::write(&model, b"a different file").unwrap();
    let err = Calibration::auto(&model).unwrap_err().to_string();
    assert!(err.contains("--calibrate"), "{err}");
    std::fs::write(&path, "{ not json").unwrap();
    assert!(Calibration::load(&model).is_err());
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&model));
}
