//! Energy in turn reports: prefill and decode split, J per token, the method, and on a
//! machine without sensors an estimate that says so (never "measured").

use joule_core::energy::{EnergyConfig, EnergySource, Method};
use joule_core::engine::{Engine, EngineOptions, GenerateOptions};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};

fn engine(energy: Option<EnergyConfig>) -> std::sync::Arc<Engine> {
    let bytes = synthetic_model(&SyntheticSpec::tiny()).unwrap().to_bytes();
    let options =
        EngineOptions { context: Some(128), threads: Some(2), energy, ..EngineOptions::default() };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

#[test]
fn without_sensors_a_report_is_an_estimate_and_says_why() {
    let empty = std::env::temp_dir().join(format!("joule-empty-sysfs-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let config =
        EnergyConfig { sysfs_root: empty.clone(), ..EnergyConfig::with_source(EnergySource::Auto) };
    let engine = engine(Some(config));
    let mut s = engine.session().unwrap();
    let opts = GenerateOptions { max_tokens: Some(6), stop: vec![], ..Default::default() };
    let report = s.send("hello", &opts, &mut |_| {}).unwrap();
    let e = report.energy.as_ref().expect("energy is metered by default");
    assert_eq!(e.method, Method::Estimated);
    assert!(
        e.prefill.quality.fell_back_from.iter().any(|f| f.reason.contains("RAPL")),
        "{:?}",
        e.prefill.quality.fell_back_from
    );
    assert!(e.prefill_joules >= 0.0 && e.decode_joules >= 0.0);
    let decode_tokens = report.generated_tokens.saturating_sub(1) as f64;
    if decode_tokens > 0.0 {
        let per = e.joules_per_generated_token.unwrap();
        assert!((per - e.decode_joules / decode_tokens).abs() < 1e-12);
    }
    let per_prompt = e.joules_per_prompt_token.unwrap();
    assert!((per_prompt - e.prefill_joules / report.prefill_tokens as f64).abs() < 1e-12);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("\"measured\""), "an estimate must never be labelled measured: {json}");
    assert!(report.summary_line().contains("estimated"));
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn metering_can_be_switched_off() {
    let engine = engine(None);
    let mut s = engine.session().unwrap();
    let report = s
        .send(
            "hi",
            &GenerateOptions { max_tokens: Some(3), stop: vec![], ..Default::default() },
            &mut |_| {},
        )
        .unwrap();
    assert!(report.energy.is_none());
    assert!(!report.summary_line().contains("J/"));
}

#[test]
fn a_requested_sensor_that_is_missing_is_a_clear_error() {
    let empty = std::env::temp_dir().join(format!("joule-empty-sysfs-rapl-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let config =
        EnergyConfig { sysfs_root: empty.clone(), ..EnergyConfig::with_source(EnergySource::Rapl) };
    let bytes = synthetic_model(&SyntheticSpec::tiny()).unwrap().to_bytes();
    let options =
        EngineOptions { threads: Some(1), energy: Some(config), ..EngineOptions::default() };
    let err = Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options)
        .err()
        .expect("RAPL is not there");
    assert!(err.to_string().contains("rapl"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
}
