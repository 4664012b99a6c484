//! Endless chat (`GenerateOptions::evict`) on tiny synthetic models, llama and Gemma 3
//! (sliding-window layers): a chat far longer than the context keeps going, keeps its
//! system prompt in the cache and never outgrows the context; without eviction the same
//! chat fails with `ContextOverflow` and loses nothing; decoding past a full cache goes
//! on; the `eval endless` runner on small numbers.

use std::sync::Arc;

use joule_core::Precision;
use joule_core::chat::ChatMessage;
use joule_core::engine::{
    Engine, EngineOptions, EvictOptions, GenerateOptions, Session, StopReason,
};
use joule_core::eval::{EndlessPlan, run_endless};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};

const SYSTEM: &str = "you are a tiny test model; the secret is toast";

fn engine(arch: &str, context: usize) -> Arc<Engine> {
    let spec = SyntheticSpec {
        arch: arch.into(),
        n_layers: if arch == "gemma3" { 6 } else { 2 },
        ..SyntheticSpec::tiny()
    };
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(context),
        allow_long_context: true,
        threads: Some(2),
        precision: Precision::Fast,
        ..EngineOptions::default()
    };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

fn opts(max_tokens: usize, evict: Option<EvictOptions>) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), evict, ..Default::default() }
}

fn prompt(turn: usize) -> String {
    format!("turn {turn}: tell me a long tale about the sea and the shore, please")
}

/// The text the cache holds, specials rendered.
fn cached_text(s: &Session) -> String {
    s.engine().tokenizer().decode(s.cached_tokens(), true)
}

/// The system prompt as the template renders it, the way the cache must start.
fn system_rendered(engine: &Engine) -> String {
    engine.template().render(&[ChatMessage::system(SYSTEM)], false).unwrap()
}

#[test]
fn a_chat_longer_than_the_context_keeps_going_and_keeps_its_system_prompt() {
    for arch in ["llama", "gemma3"] {
        let engine = engine(arch, 256);
        let mut s = engine.session().unwrap();
        s.add_system(SYSTEM);
        let (mut evicted, mut dropped, mut reused_after_drop) = (0, 0, 0);
        for turn in 0..30 {
            let r = s
                .send(
                    &format!("tale {turn}"),
                    &opts(16, Some(EvictOptions::default())),
                    &mut |_| {},
                )
                .unwrap_or_else(|e| panic!("{arch}, turn {turn}: {e}"));
            assert!(r.context_used <= 256, "{arch}: {} slots", r.context_used);
            assert!(s.context_used() <= 256);
            assert!(r.prompt_tokens <= 256 - 16, "{arch}: prompt of {}", r.prompt_tokens);
            if r.dropped_messages > 0 {
                reused_after_drop = reused_after_drop.max(r.reused_tokens);
            }
            evicted += r.evicted_tokens;
            dropped += r.dropped_messages;
            assert!(
                cached_text(&s).starts_with(&system_rendered(&engine)),
                "{arch}, turn {turn}: the cache lost the system prompt: {:?}",
                cached_text(&s)
            );
            assert_eq!(s.messages()[0].content, SYSTEM);
        }
        assert!(evicted > 0 && dropped > 0, "{arch}: evicted {evicted}, dropped {dropped}");
        assert!(s.messages().len() < 61, "{arch}: old turns were dropped");
        // Evicting the dropped turns' slots keeps the rest of the cache reusable (llama;
        // the windowed layers of the synthetic Gemma hold too little to keep it).
        if arch == "llama" {
            let system = engine.tokenize(&system_rendered(&engine), true).unwrap().len();
            assert!(reused_after_drop > system + 20, "{arch}: reused {reused_after_drop}");
        }
    }
}

#[test]
fn without_eviction_the_same_chat_overflows_and_loses_nothing() {
    let engine = engine("llama", 256);
    let mut s = engine.session().unwrap();
    s.add_system(SYSTEM);
    for turn in 0..16 {
        let (before, used) = (s.messages().to_vec(), s.context_used());
        match s.send(&prompt(turn), &opts(48, None), &mut |_| {}) {
            Ok(r) => assert_eq!((r.evicted_tokens, r.dropped_messages), (0, 0)),
            Err(joule_core::Error::ContextOverflow { context, .. }) => {
                assert_eq!(context, 256);
                assert_eq!(s.messages(), &before[..]);
                assert_eq!(s.context_used(), used);
                assert!(turn > 1);
                return;
            }
            Err(e) => panic!("turn {turn}: expected ContextOverflow, got {e}"),
        }
    }
    panic!("16 turns fit in 256 tokens without eviction");
}

#[test]
fn decoding_past_a_full_cache_evicts_and_goes_on() {
    for arch in ["llama", "gemma3"] {
        let engine = engine(arch, 128);
        let mut s = engine.session().unwrap();
        s.add_system(SYSTEM);
        let r = s.send("hi", &opts(400, Some(EvictOptions::default())), &mut |_| {}).unwrap();
        let free = 128 - r.prompt_tokens;
        assert!(
            r.generated_tokens > free,
            "{arch}: {} generated, {free} free ({:?})",
            r.generated_tokens,
            r.stop_reason
        );
        assert_ne!(r.stop_reason, StopReason::ContextFull);
        assert!(r.evicted_tokens > 0 && r.context_used <= 128, "{arch}: {r:?}");
        assert!(cached_text(&s).starts_with(&system_rendered(&engine)), "{arch}");
        assert!(r.summary_line().contains("evicted"), "{}", r.summary_line());
        // The next turn goes on from what the cache holds.
        let next = s.send("go on", &opts(20, Some(EvictOptions::default())), &mut |_| {});
        assert!(next.is_ok(), "{arch}: {next:?}");

        // Raw completion evicts while decoding too; without eviction it stops.
        s.reset();
        let r =
            s.complete("once upon a time", &opts(300, Some(EvictOptions::default())), &mut |_| {});
        let r = r.unwrap();
        assert!(r.generated_tokens > 128 && r.evicted_tokens > 0, "{arch}: {r:?}");
        s.reset();
        let r = s.complete("once upon a time", &opts(300, None), &mut |_| {}).unwrap();
        assert_eq!(r.stop_reason, StopReason::ContextFull);
    }
}

#[test]
fn a_bad_eviction_share_is_an_invalid_argument() {
    let engine = engine("llama", 128);
    let mut s = engine.session().unwrap();
    let bad = EvictOptions { free: 0.0, ..EvictOptions::default() };
    let err = s.send("hi", &opts(4, Some(bad)), &mut |_| {}).unwrap_err();
    assert!(matches!(err, joule_core::Error::InvalidArgument(_)), "{err}");
    assert!(s.messages().is_empty());
}

#[test]
fn the_endless_runner_keeps_going_on_a_small_context() {
    let engine = engine("llama", 256);
    let plan = EndlessPlan { tokens: 2000, max_tokens: 60, ..EndlessPlan::default() };
    let mut seen = 0;
    let r = run_endless(&engine, "synthetic", &plan, &mut |_, _| seen += 1).unwrap();
    assert_eq!(r.errors, 0, "{:?}", r.first_error);
    assert!(r.turns > 1 && seen == r.turns, "{} turns", r.turns);
    assert!(r.evicted_tokens > 0 && r.dropped_messages > 0, "{r:?}");
    assert!(r.tokens_total >= 2000 && r.max_context_used <= 256, "{r:?}");
    assert_eq!(r.context, 256);
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    for field in [
        "turns",
        "tokens_total",
        "context",
        "evicted_tokens",
        "dropped_messages",
        "peak_rss_mib_at_first_fill",
        "peak_rss_mib_at_end",
        "errors",
        "recall",
        "seconds",
        "model",
    ] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    if cfg!(target_os = "linux") {
        assert!(r.peak_rss_mib_at_first_fill.is_some() && r.peak_rss_mib_at_end.is_some());
    }
}
