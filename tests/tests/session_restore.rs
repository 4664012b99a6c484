//! Save → drop the engine → restore in a fresh engine → next turn, on SmolLM2 (fast path,
//! f16 KV) and Gemma 3 (q8_0 KV): the restored turn gives the same tokens as an
//! uninterrupted conversation and prefills only the new message's tokens; a SmolLM2 file
//! is refused by Gemma 3 as another model's.

use std::path::Path;
use std::sync::Arc;

use joule_core::KvType;
use joule_core::engine::session_file::SessionFileError;
use joule_core::engine::{Engine, EngineOptions, GenerateOptions, Session, TurnReport};
use joule_core::error::Error;
use joule_tests::{GEMMA3, SMOLLM2, model_path};

fn engine(name: &str, kv_type: KvType) -> Arc<Engine> {
    let options = EngineOptions {
        context: Some(1024),
        threads: Some(2),
        kv_type: Some(kv_type),
        energy: None,
        ..EngineOptions::default()
    };
    Engine::load(model_path(name), options).expect("load model")
}

fn turn(s: &mut Session, text: &str) -> (String, TurnReport) {
    let mut out = String::new();
    let opts = GenerateOptions { max_tokens: Some(24), stop: vec![] };
    let report = s.send(text, &opts, &mut |p| out.push_str(p)).expect("turn");
    (out, report)
}

fn check(name: &str, kv_type: KvType, path: &Path) {
    let first = "What is the capital of France?";
    let second = "And of Italy? Answer in one word.";
    let (want, uninterrupted) = {
        let e = engine(name, kv_type);
        let mut s = e.session().unwrap();
        turn(&mut s, first);
        let t = std::time::Instant::now();
        s.save(path).unwrap();
        eprintln!("{name}: save took {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        turn(&mut s, second)
    };
    let e = engine(name, kv_type);
    let t = std::time::Instant::now();
    let mut s = e.restore_session(path).unwrap();
    eprintln!("{name}: restore took {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let (got, report) = turn(&mut s, second);
    assert_eq!(got, want, "{name}: the restored turn differs");
    assert_eq!(report.prefill_tokens, uninterrupted.prefill_tokens, "{name}");
    assert_eq!(report.reused_tokens, uninterrupted.reused_tokens, "{name}");
    assert!(report.prefill_tokens < report.prompt_tokens / 2, "{name}: {report:?}");
    eprintln!(
        "{name} ({}): restored turn prefilled {} of {} prompt tokens ({} reused), file {} bytes",
        kv_type.name(),
        report.prefill_tokens,
        report.prompt_tokens,
        report.reused_tokens,
        std::fs::metadata(path).unwrap().len()
    );
}

#[test]
fn a_restored_conversation_continues_with_the_same_tokens() {
    let dir = std::env::temp_dir().join(format!("joule-restore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let smol = dir.join("smollm2.joule");
    check(SMOLLM2, KvType::F16, &smol);
    check(GEMMA3, KvType::Q8_0, &dir.join("gemma3.joule"));
    let gemma = engine(GEMMA3, KvType::F16);
    match gemma.restore_session(&smol) {
        Err(Error::SessionFile(SessionFileError::ForeignModel)) => {}
        Err(e) => panic!("wrong error for a foreign model: {e}"),
        Ok(_) => panic!("Gemma 3 accepted a SmolLM2 session"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
