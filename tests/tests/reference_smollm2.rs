//! SmolLM2-135M against the golden references (see ../shared/README.md): the chat
//! template and tokenizer pipeline, teacher-forced log-probabilities of the exact path
//! within 1e-3 of the float reference, the engine's greedy continuation equal to the
//! float reference's, and the fast path no further from the float reference than
//! llama.cpp is.

use std::sync::Arc;

use joule_core::ChatMessage;
use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions, GenerateOptions, StopReason};
use joule_tests::{SMOLLM2, ids, model_path, read_jsonl, top};
use serde_json::Value;

fn engine(precision: Precision) -> Arc<Engine> {
    let options = EngineOptions {
        precision,
        context: Some(512),
        threads: Some(2),
        ..EngineOptions::default()
    };
    Engine::load(model_path(SMOLLM2), options).expect("load SmolLM2")
}

fn chats() -> Vec<Value> {
    let chats = read_jsonl("smollm2-135m-q4_1.chat.jsonl");
    assert_eq!(chats.len(), 6);
    chats
}

#[test]
fn rendered_prompts_and_their_tokens_equal_the_reference() {
    let engine = engine(Precision::Exact);
    for chat in chats() {
        let messages: Vec<ChatMessage> = serde_json::from_value(chat["messages"].clone()).unwrap();
        let prompt = engine.template().render(&messages, true).unwrap();
        assert_eq!(prompt, chat["prompt"].as_str().unwrap());
        assert_eq!(engine.tokenize(&prompt, true).unwrap(), ids(&chat["prompt_tokens"]));
    }
}

#[test]
fn exact_path_log_probs_are_within_1e_3_of_the_float_reference() {
    let engine = engine(Precision::Exact);
    let mut worst = 0f32;
    for (c, chat) in chats().iter().enumerate() {
        let prompt = ids(&chat["prompt_tokens"]);
        let greedy = ids(&chat["f32"]["greedy"]);
        let steps = engine.score_full(&prompt, &greedy).unwrap();
        assert_eq!(steps.len(), greedy.len());
        for (i, step) in steps.iter().enumerate() {
            for (id, want) in top(&chat["f32"]["top10"][i]) {
                let d = (step[id as usize] - want).abs();
                worst = worst.max(d);
                assert!(d < 1e-3, "chat {c} step {i} token {id}: {} vs {want}", step[id as usize]);
            }
        }
    }
    eprintln!("max |Δ log-prob| vs f32 reference: {worst:.2e}");
}

#[test]
fn greedy_generation_equals_the_float_reference() {
    let engine = engine(Precision::Exact);
    for (c, chat) in chats().iter().enumerate() {
        let want = ids(&chat["f32"]["greedy"]);
        let mut session = engine.session().unwrap();
        let opts =
            GenerateOptions { max_tokens: Some(want.len()), stop: vec![], ..Default::default() };
        let (report, got) =
            session.complete_tokens(&ids(&chat["prompt_tokens"]), &opts, &mut |_| {}).unwrap();
        // The reference lists the end-of-generation token it stopped on; we stop on it
        // without emitting it.
        match want.split_last() {
            Some((&last, body)) if engine.tokenizer().is_eog(last) => {
                assert_eq!(got, body, "chat {c}");
                assert_eq!(report.stop_reason, StopReason::EndOfGeneration, "chat {c}");
            }
            _ => {
                assert_eq!(got, want, "chat {c}");
                assert_eq!(report.stop_reason, StopReason::MaxTokens, "chat {c}");
            }
        }
    }
}

/// Mean |Δ log-prob| of the top-5 float-reference ids, teacher-forced, over the steps
/// where llama.cpp's and the float reference's continuations still agree (so both
/// references are available), for our fast path and for llama.cpp's own output.
#[test]
fn fast_path_is_no_further_from_the_float_reference_than_llama_cpp() {
    let engine = engine(Precision::Fast);
    let (mut ours, mut theirs, mut n) = (0f64, 0f64, 0usize);
    for chat in chats() {
        let greedy = ids(&chat["f32"]["greedy"]);
        let llama_greedy = ids(&chat["llamacpp"]["greedy"]);
        let agree = greedy.iter().zip(&llama_greedy).take_while(|(a, b)| a == b).count();
        let steps = engine.score_full(&ids(&chat["prompt_tokens"]), &greedy).unwrap();
        // Steps 0..=agree share the prefix (step `agree` is where the argmax differs).
        for i in 0..=agree.min(greedy.len() - 1) {
            let llama_top = top(&chat["llamacpp"]["top10"][i]);
            for (id, want) in top(&chat["f32"]["top10"][i]).into_iter().take(5) {
                let Some(&(_, theirs_lp)) = llama_top.iter().find(|(t, _)| *t == id) else {
                    continue;
                };
                ours += (steps[i][id as usize] - want).abs() as f64;
                theirs += (theirs_lp - want).abs() as f64;
                n += 1;
            }
        }
    }
    let (ours, theirs) = (ours / n as f64, theirs / n as f64);
    eprintln!(
        "fast path mean |Δ log-prob| {ours:.4}; llama.cpp {theirs:.4} (over {n} comparisons)"
    );
    assert!(n > 300, "too few comparable steps: {n}");
    assert!(
        ours <= theirs,
        "fast path {ours:.4} is further from the float reference than llama.cpp ({theirs:.4})"
    );
}
