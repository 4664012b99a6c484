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
    let opts = GenerateOptions { max_tokens: Some(24), stop: vec![], ..Default::default() };
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

/// A long conversation (the GPL-3's first ~3,000 tokens as the first message) saved and
/// restored: the next turn matches the uninterrupted one and prefills only its message.
/// Prints the file size and the save and restore times (BENCHMARKS.md section 7). Gemma
/// 3's file holds only the last window of its 15 sliding-window layers: under half of
/// what every layer's every slot would take.
#[test]
fn long_sessions_save_and_restore_with_their_window() {
    let text = std::fs::read_to_string("/usr/share/common-licenses/GPL-3")
        .expect("Debian's base-files ship the GPL-3 text");
    let first = format!("Summarize this license in one sentence.\n\n{}", &text[..14_000]);
    let dir = std::env::temp_dir().join(format!("joule-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, kv_type) in [(SMOLLM2, KvType::F16), (GEMMA3, KvType::F16)] {
        let options = EngineOptions {
            context: Some(4096),
            threads: Some(2),
            kv_type: Some(kv_type),
            energy: None,
            ..EngineOptions::default()
        };
        let path = dir.join(format!("{name}.joule"));
        let second = "Is it a copyleft license? Answer yes or no.";
        let (want, used) = {
            let e = Engine::load(model_path(name), options.clone()).expect("load model");
            let mut s = e.session().unwrap();
            turn(&mut s, &first);
            let t = std::time::Instant::now();
            s.save(&path).unwrap();
            let save_ms = t.elapsed().as_secs_f64() * 1e3;
            let used = s.context_used();
            eprintln!("{name} ({}): {used} cached tokens, save {save_ms:.1} ms", kv_type.name());
            (turn(&mut s, second), used)
        };
        let (want, uninterrupted) = want;
        let e = Engine::load(model_path(name), options).expect("load model");
        let t = std::time::Instant::now();
        let mut s = e.restore_session(&path).unwrap();
        let restore_ms = t.elapsed().as_secs_f64() * 1e3;
        let (got, report) = turn(&mut s, second);
        assert_eq!(got, want, "{name}: the restored turn differs");
        assert_eq!(report.reused_tokens, uninterrupted.reused_tokens, "{name}");
        assert!(report.prefill_tokens < report.prompt_tokens / 10, "{name}: {report:?}");
        let bytes = std::fs::metadata(&path).unwrap().len();
        let c = e.info();
        let every_slot = (2 * used * c.kv_dim * c.n_layers) as u64 * 2; // f16: 2 bytes a value
        eprintln!(
            "{name} ({}): file {bytes} bytes ({:.0} % of every layer's every slot), restore \
             {restore_ms:.1} ms",
            kv_type.name(),
            100.0 * bytes as f64 / every_slot as f64
        );
        if name == GEMMA3 {
            assert!(bytes * 2 < every_slot, "{name}: {bytes} of {every_slot} bytes");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
