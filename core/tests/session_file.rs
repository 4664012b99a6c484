//! Sessions saved to disk, on tiny synthetic models (hermetic): a restored session
//! continues exactly as an uninterrupted one for every KV cache type, and every hostile
//! file (truncated at each section boundary and many offsets, bytes flipped, another
//! model's, a future version, a non-regular target) is a typed error that changes nothing.

use std::sync::Arc;

use joule_core::Precision;
use joule_core::engine::session_file::{self, SessionFileError};
use joule_core::engine::{Engine, EngineOptions, GenerateOptions, Session};
use joule_core::error::Error;
use joule_core::gguf::GgufFile;
use joule_core::model::kv_cache::KvType;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::sampling::{Rng, SamplingParams};

fn engine_for(spec: &SyntheticSpec, kv_type: KvType) -> Arc<Engine> {
    let bytes = synthetic_model(spec).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(256),
        threads: Some(2),
        precision: Precision::Fast,
        kv_type: Some(kv_type),
        // Sampled (not greedy), so the saved RNG state matters.
        sampling: SamplingParams { temperature: 0.9, seed: 7, ..SamplingParams::default() },
        energy: None,
        ..EngineOptions::default()
    };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

/// A tiny model whose head size is a multiple of 32 (q8_0 needs it).
fn spec() -> SyntheticSpec {
    let mut s = SyntheticSpec::tiny();
    (s.n_head, s.n_head_kv) = (2, 1);
    s
}

fn turn(s: &mut Session, text: &str) -> (String, joule_core::engine::TurnReport) {
    let mut out = String::new();
    let opts = GenerateOptions { max_tokens: Some(10), stop: vec![], ..Default::default() };
    let report = s.send(text, &opts, &mut |p| out.push_str(p)).unwrap();
    (out, report)
}

#[test]
fn a_restored_session_continues_as_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("joule-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ty in KvType::ALL {
        let engine = engine_for(&spec(), ty);
        let mut a = engine.session().unwrap();
        turn(&mut a, "hello there");
        let path = dir.join(format!("s-{}.joule", ty.name()));
        a.save(&path).unwrap();
        let (want, _) = turn(&mut a, "and then?");

        // A fresh engine, as after the process was killed.
        let engine = engine_for(&spec(), ty);
        let mut b = engine.restore_session(&path).unwrap();
        assert_eq!(b.messages().len(), 2);
        let (got, report) = turn(&mut b, "and then?");
        assert_eq!(got, want, "{}: restored turn differs", ty.name());
        assert!(
            report.reused_tokens > 0 && report.prefill_tokens < report.prompt_tokens / 2,
            "{}: restored turn prefilled {} of {} tokens",
            ty.name(),
            report.prefill_tokens,
            report.prompt_tokens
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn saved(ty: KvType) -> (Arc<Engine>, Vec<u8>) {
    let engine = engine_for(&spec(), ty);
    let mut s = engine.session().unwrap();
    turn(&mut s, "hello there");
    let bytes = s.to_bytes();
    (engine, bytes)
}

fn refuse(engine: &Arc<Engine>, bytes: &[u8], what: &str) -> SessionFileError {
    match engine.restore_session_bytes(bytes) {
        Err(Error::SessionFile(e)) => e,
        Err(e) => panic!("{what}: not a session file error: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

/// Offsets of each section's start and end (tag, length, payload), from the layout.
fn section_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut at = 8 + 4 + 32 + 8 + 1 + 4 + 4 + 4;
    let mut cuts = vec![0, 8, 12, 44, 52, 53, 57, 61, at];
    for _ in 0..4 {
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        cuts.extend([at + 4, at + 12, at + 12 + len]);
        at += 12 + len;
    }
    cuts.push(bytes.len() - 1);
    cuts
}

#[test]
fn truncated_files_are_refused_at_every_section_boundary_and_many_offsets() {
    for ty in KvType::ALL {
        let (engine, bytes) = saved(ty);
        let mut cuts = section_boundaries(&bytes);
        cuts.extend((0..bytes.len()).step_by(bytes.len() / 97 + 1));
        for cut in cuts {
            let e = refuse(&engine, &bytes[..cut], &format!("{} cut at {cut}", ty.name()));
            assert!(
                matches!(
                    e,
                    SessionFileError::Truncated { .. }
                        | SessionFileError::Checksum
                        | SessionFileError::BadMagic
                ),
                "cut at {cut}: {e}"
            );
        }
    }
}

#[test]
fn corrupted_bytes_are_refused() {
    let (engine, bytes) = saved(KvType::F16);
    let mut rng = Rng::new(42);
    for _ in 0..300 {
        let mut bad = bytes.clone();
        let i = (rng.next_u64() as usize) % bad.len();
        bad[i] ^= 1 << (rng.next_u64() % 8);
        refuse(&engine, &bad, &format!("byte {i} flipped"));
    }
    // The reader alone never panics on garbage either.
    for n in [0usize, 1, 7, 100, 5000] {
        let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        assert!(session_file::parse(&junk).is_err());
    }
}

#[test]
fn another_models_file_or_a_future_version_is_refused() {
    let (_, bytes) = saved(KvType::F32);
    let mut other = spec();
    other.n_layers += 1;
    let foreign = engine_for(&other, KvType::F32);
    assert!(matches!(refuse(&foreign, &bytes, "foreign"), SessionFileError::ForeignModel));
    let f16_engine = engine_for(&spec(), KvType::F16);
    assert!(matches!(refuse(&f16_engine, &bytes, "kv type"), SessionFileError::Mismatch(_)));

    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&(session_file::FORMAT_VERSION + 1).to_le_bytes());
    let engine = engine_for(&spec(), KvType::F32);
    assert!(matches!(refuse(&engine, &future, "future"), SessionFileError::FutureVersion { .. }));
}

#[test]
fn saving_never_replaces_a_directory_and_a_failed_restore_leaves_the_file() {
    let dir = std::env::temp_dir().join(format!("joule-session-dir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    let engine = engine_for(&spec(), KvType::F16);
    let mut s = engine.session().unwrap();
    turn(&mut s, "hi");
    match s.save(dir.join("taken")) {
        Err(Error::SessionFile(SessionFileError::NotARegularFile(_))) => {}
        other => panic!("saved over a directory: {other:?}"),
    }
    assert!(dir.join("taken").is_dir());
    let path = dir.join("s.joule");
    std::fs::write(&path, b"JOULESES garbage").unwrap();
    assert!(engine.restore_session(&path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"JOULESES garbage");
    s.save(&path).unwrap();
    assert!(engine.restore_session(&path).is_ok());
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 2, "temporary files left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Gemma 3's sliding-window layers save only the slots the next token sees: such a
/// session (its window moved on several times) restores and continues as an
/// uninterrupted one; window fields out of range, or a file that lacks slots the window
/// needs, are typed errors; a format-1 file (every layer every slot) still restores.
#[test]
fn windowed_sessions_round_trip_and_bad_window_fields_are_refused() {
    let gemma = SyntheticSpec { arch: "gemma3".into(), n_layers: 6, ..spec() };
    let engine = engine_for(&gemma, KvType::F16);
    let mut s = engine.session().unwrap();
    let long = "the quick brown fox jumps over the lazy dog and keeps running far away";
    turn(&mut s, long);
    let bytes = s.to_bytes();
    let want = turn(&mut s, "and then?").0;
    let file = session_file::parse(&bytes).unwrap();
    let used = file.tokens.len();
    let from = file.windowed_from.unwrap();
    assert_eq!(file.windowed_layers, 5);
    assert!(from > 0 && from < used, "window start {from} of {used} slots");

    let mut restored = engine_for(&gemma, KvType::F16).restore_session_bytes(&bytes).unwrap();
    assert_eq!(turn(&mut restored, "and then?").0, want);

    // Out of range: the parser refuses before any model is involved.
    for (layers, start) in [(7, from), (5, used + 1)] {
        let bad = session_file::SessionFile {
            windowed_layers: layers,
            windowed_from: Some(start),
            ..file.clone()
        };
        let e = refuse(&engine, &bad.to_bytes(), "window fields");
        assert!(matches!(e, SessionFileError::Malformed(_)), "{e}");
    }
    // Sizes that agree, but the windowed layers' rows start after what the next token
    // sees: the global layer's rows alone, as if every windowed row were past the window.
    let slot = file.kv_data.len() / (5 * (used - from) + used);
    let global = file.kv_data[5 * (used - from) * slot..].to_vec();
    let lacking =
        session_file::SessionFile { windowed_from: Some(used), kv_data: global, ..file.clone() };
    match engine.restore_session_bytes(&lacking.to_bytes()) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("sliding-window"), "{m}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a file lacking the window's keys was accepted"),
    }

    // Format 1 (no window fields, every layer every slot) from a model without windows.
    let (llama, v2) = saved(KvType::F32);
    let old = session_file::parse(&v2).unwrap();
    let restored = llama.restore_session_bytes(&format_1(&old)).unwrap();
    assert_eq!(restored.context_used(), old.tokens.len());
}

/// A session in format 1's layout (KVMT without the window fields), for the reader's
/// backward compatibility.
fn format_1(f: &session_file::SessionFile) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = session_file::MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&f.model_id);
    out.extend_from_slice(&f.context.to_le_bytes());
    out.push(match f.kv_type {
        KvType::F32 => 0,
        KvType::F16 => 1,
        KvType::Q8_0 => 2,
    });
    out.extend_from_slice(&f.n_layers.to_le_bytes());
    out.extend_from_slice(&f.kv_dim.to_le_bytes());
    out.extend_from_slice(&4u32.to_le_bytes());
    let mut samp = serde_json::to_vec(&f.sampling).unwrap();
    samp.extend_from_slice(&f.rng_state.to_le_bytes());
    let mut meta = (f.tokens.len() as u64).to_le_bytes().to_vec();
    meta.extend_from_slice(&f.next_position.to_le_bytes());
    for t in f.tokens.iter().chain(&f.positions) {
        meta.extend_from_slice(&t.to_le_bytes());
    }
    let msgs = serde_json::to_vec(&f.messages).unwrap();
    for (tag, payload) in
        [(b"MSGS", &msgs), (b"SAMP", &samp), (b"KVMT", &meta), (b"KVDA", &f.kv_data)]
    {
        out.extend_from_slice(tag);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(payload);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}
