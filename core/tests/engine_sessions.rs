//! Sessions on a tiny synthetic model (hermetic): KV reuse across turns gives the same
//! answer as recomputing, cancel from another thread, prompts longer than the context,
//! a full context, stop strings, reset.

use std::sync::Arc;
use std::sync::mpsc;

use joule_core::Precision;
use joule_core::chat::ChatMessage;
use joule_core::engine::{Engine, EngineOptions, GenerateOptions, Session, StopReason};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};

fn engine(context: usize, precision: Precision) -> Arc<Engine> {
    let bytes = synthetic_model(&SyntheticSpec::tiny()).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(context),
        // The tiny model says it was trained for 256 tokens; some tests need more room.
        allow_long_context: true,
        threads: Some(2),
        precision,
        ..EngineOptions::default()
    };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

fn opts(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), stop: vec![], ..Default::default() }
}

fn send(
    s: &mut Session,
    text: &str,
    max_tokens: usize,
) -> (String, joule_core::engine::TurnReport) {
    let mut out = String::new();
    let report = s.send(text, &opts(max_tokens), &mut |p| out.push_str(p)).unwrap();
    (out, report)
}

#[test]
fn engine_and_sessions_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send_only<T: Send>() {}
    send_sync::<Engine>();
    send_only::<Session>();
}

#[test]
fn a_second_turn_reuses_the_cache_and_answers_as_a_fresh_session_would() {
    for precision in [Precision::Exact, Precision::Fast] {
        let engine = engine(256, precision);
        let mut a = engine.session().unwrap();
        let (first, r1) = send(&mut a, "hello there", 12);
        assert_eq!(r1.reused_tokens, 0);
        let (second, r2) = send(&mut a, "and then?", 12);
        assert!(
            r2.reused_tokens > r1.prompt_tokens / 2,
            "turn 2 reused only {} tokens",
            r2.reused_tokens
        );
        assert_eq!(r2.prefill_tokens + r2.reused_tokens, r2.prompt_tokens);
        assert_eq!(a.messages().len(), 4);

        let mut b = engine.session().unwrap();
        b.push_message(ChatMessage::user("hello there"));
        b.push_message(ChatMessage::assistant(&first));
        let (fresh, rb) = send(&mut b, "and then?", 12);
        assert_eq!(rb.reused_tokens, 0);
        assert_eq!(fresh, second, "{precision:?}: cached and recomputed answers differ");
    }
}

#[test]
fn cancel_from_another_thread_stops_between_tokens_and_keeps_the_text() {
    let engine = engine(512, Precision::Fast);
    let mut s = engine.session().unwrap();
    let cancel = s.cancel_flag();
    let (tx, rx) = mpsc::channel::<()>();
    let canceller = std::thread::spawn(move || {
        rx.recv().unwrap();
        cancel.cancel();
    });
    let mut pieces = 0;
    let mut text = String::new();
    let report = s
        .send("tell me everything", &opts(400), &mut |p| {
            pieces += 1;
            text.push_str(p);
            if pieces == 3 {
                let _ = tx.send(());
            }
            // Give the other thread time to set the flag before the next token.
            std::thread::sleep(std::time::Duration::from_millis(2));
        })
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(report.stop_reason, StopReason::Cancelled);
    assert!(
        report.generated_tokens >= 3 && report.generated_tokens < 400,
        "{}",
        report.generated_tokens
    );
    assert_eq!(s.messages().len(), 2, "the partial answer is kept");
    assert_eq!(s.messages()[1].content, text);
    // The flag is cleared for the next turn.
    let (_, next) = send(&mut s, "go on", 5);
    assert_eq!(next.stop_reason, StopReason::MaxTokens);
}

#[test]
fn cancel_before_the_first_token_leaves_the_conversation_unchanged() {
    let engine = engine(256, Precision::Fast);
    let mut s = engine.session().unwrap();
    s.cancel_flag().cancel();
    let report = s.send("hi", &opts(5), &mut |_| {}).unwrap();
    assert_eq!(report.stop_reason, StopReason::Cancelled);
    assert_eq!(report.generated_tokens, 0);
    assert!(s.messages().is_empty());
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error_and_loses_nothing() {
    let engine = engine(64, Precision::Fast);
    let mut s = engine.session().unwrap();
    send(&mut s, "short", 3);
    let before = s.messages().to_vec();
    let used = s.context_used();
    let long = "word ".repeat(80);
    let err = s.send(&long, &opts(3), &mut |_| {}).unwrap_err();
    match &err {
        joule_core::Error::ContextOverflow { needed, available, context, .. } => {
            assert_eq!(*context, 64);
            assert!(needed > available);
        }
        other => panic!("expected ContextOverflow, got {other}"),
    }
    assert!(err.to_string().contains("context"), "{err}");
    assert_eq!(s.messages(), &before[..]);
    assert_eq!(s.context_used(), used);
    let (_, ok) = send(&mut s, "again", 3);
    assert_eq!(ok.generated_tokens, 3);
}

#[test]
fn generation_stops_when_the_context_is_full() {
    let engine = engine(40, Precision::Fast);
    let mut s = engine.session().unwrap();
    let (_, report) = send(&mut s, "hi", 1000);
    assert_eq!(report.stop_reason, StopReason::ContextFull);
    assert_eq!(report.context_used, 40);
}

#[test]
fn stop_strings_end_the_answer_before_they_appear() {
    let engine = engine(256, Precision::Exact);
    let mut s = engine.session().unwrap();
    let (full, _) = send(&mut s, "hello", 24);
    // Stop on a piece of the unconstrained answer: the answer must end just before it.
    let cut = full.char_indices().nth(full.chars().count() / 2).map(|(i, _)| i).unwrap();
    let stop = full[cut..].chars().take(2).collect::<String>();
    let expected = &full[..full.find(&stop).unwrap()];
    s.reset();
    let mut text = String::new();
    let report = s
        .send(
            "hello",
            &GenerateOptions {
                max_tokens: Some(24),
                stop: vec![stop.clone()],
                ..Default::default()
            },
            &mut |p| text.push_str(p),
        )
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::StopString, "stop {stop:?} in {full:?}");
    assert_eq!(text, expected);
}

#[test]
fn reset_and_system_prompts() {
    let engine = engine(256, Precision::Fast);
    let mut s = engine.session().unwrap();
    s.add_system("be brief");
    send(&mut s, "hi", 2);
    assert_eq!(s.messages()[0].role, "system");
    assert_eq!(s.messages().len(), 3);
    s.reset();
    assert!(s.messages().is_empty());
    assert_eq!(s.context_used(), 0);
}

#[test]
fn raw_completion_continues_text_and_reuses_its_prefix() {
    let engine = engine(256, Precision::Fast);
    let mut s = engine.session().unwrap();
    let r1 = s.complete("once upon a time", &opts(4), &mut |_| {}).unwrap();
    assert_eq!(r1.generated_tokens, 4);
    let r2 = s.complete("once upon a time there", &opts(4), &mut |_| {}).unwrap();
    assert!(r2.reused_tokens >= 10, "{}", r2.reused_tokens);
}
