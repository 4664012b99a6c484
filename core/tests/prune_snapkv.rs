//! SnapKV-style compression of the prompt's cache (`Strategy::SnapKv`) on tiny synthetic
//! models and once on SmolLM2: a full budget is no pruning, protected spans survive the
//! smallest budget, the compressed cache decodes as a fresh prefill whose dropped slots
//! were removed (kept slots at their original positions), the next turn reuses it, and
//! hostile settings are errors that change nothing.

use std::path::PathBuf;
use std::sync::Arc;

use joule_core::engine::{Engine, EngineOptions, GenerateOptions, Session};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::model::{ForwardState, KvCache, Logits, forward};
use joule_core::sampling::argmax;
use joule_core::{Budget, Error, Precision, PruneOptions, Strategy};

fn engine(arch: &str, n_layers: usize, precision: Precision) -> Arc<Engine> {
    let spec = SyntheticSpec { arch: arch.into(), n_layers, ..SyntheticSpec::tiny() };
    let bytes = synthetic_model(&spec).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(1024),
        allow_long_context: true,
        threads: Some(2),
        precision,
        batch: 64,
        energy: None,
        ..EngineOptions::default()
    };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

fn snapkv(window: usize, budget: Budget) -> PruneOptions {
    PruneOptions::new(Strategy::SnapKv { window }, budget)
}

fn opts(max_tokens: usize, prune: Option<PruneOptions>) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), prune, ..Default::default() }
}

fn send(s: &mut Session, text: &str, o: &GenerateOptions) -> (String, joule_core::TurnReport) {
    let mut out = String::new();
    let report = s.send(text, o, &mut |p| out.push_str(p)).unwrap();
    (out, report)
}

const FILLER: &str = "the rain in the hills said little to the sea and the sea said less to \
                      the tide that ran out under the old stone arch near the harbour wall";

/// Greedy decoding of `steps` tokens after a fresh prefill of `prompt` (in the batches
/// SnapKV uses: the last `window` tokens alone) whose slots at positions not in `kept`
/// are then removed, as a session would without any pruning code.
fn fresh_then_retained(
    engine: &Engine,
    prompt: &[u32],
    window: usize,
    kept: &[u32],
    steps: usize,
) -> Vec<u32> {
    let (model, pool) = (engine.model(), engine.pool());
    let mut kv = KvCache::with_type(&model.config, engine.context(), engine.kv_type()).unwrap();
    let mut state = ForwardState::new(model, engine.options().batch);
    let (head, tail) = prompt.split_at(prompt.len() - window.min(prompt.len()));
    for chunk in head.chunks(state.max_batch()) {
        forward(model, pool, &mut state, &mut kv, chunk, Logits::None).unwrap();
    }
    forward(model, pool, &mut state, &mut kv, tail, Logits::Last).unwrap();
    let keep: Vec<bool> = kv.positions().iter().map(|p| kept.contains(p)).collect();
    kv.retain(&keep).unwrap();
    let mut out = vec![argmax(state.logits_row(0))];
    while out.len() < steps {
        let last = *out.last().unwrap();
        forward(model, pool, &mut state, &mut kv, &[last], Logits::Last).unwrap();
        out.push(argmax(state.logits_row(0)));
    }
    out
}

#[test]
fn a_full_budget_is_no_pruning_bit_for_bit() {
    for (arch, precision) in
        [("llama", Precision::Exact), ("llama", Precision::Fast), ("gemma3", Precision::Exact)]
    {
        let engine = engine(arch, 6, precision);
        let (mut plain, mut full) = (engine.session().unwrap(), engine.session().unwrap());
        for (i, text) in [FILLER, "and what of the tide?", "say more"].iter().enumerate() {
            let (a, ra) = send(&mut plain, text, &opts(12, None));
            let budget =
                if i == 1 { Budget::Tokens(ra.prefill_tokens) } else { Budget::Ratio(1.0) };
            let (b, rb) = send(&mut full, text, &opts(12, Some(snapkv(32, budget))));
            assert_eq!(a, b, "{arch} {precision:?} turn {i}");
            assert_eq!(plain.cached_tokens(), full.cached_tokens());
            assert_eq!(plain.cached_positions(), full.cached_positions());
            assert_eq!(
                (ra.prefill_tokens, ra.reused_tokens),
                (rb.prefill_tokens, rb.reused_tokens)
            );
            let p = rb.pruning.expect("report");
            assert_eq!(
                (p.tokens_kept, p.tokens_in, p.strategy.as_str()),
                (p.tokens_in, ra.prefill_tokens, "snapkv")
            );
        }
    }
}

#[test]
fn protected_spans_survive_the_smallest_budget() {
    let engine = engine("llama", 4, Precision::Exact);
    let mut s = engine.session().unwrap();
    let system = "you are a tidy assistant";
    s.add_system(system);
    let latest = format!("{FILLER} {FILLER} {FILLER} and then said the hare");
    let (_, r) = send(
        &mut s,
        &latest,
        &opts(
            1,
            Some(PruneOptions { protect_latest_message: false, ..snapkv(8, Budget::Tokens(1)) }),
        ),
    );
    let p = r.pruning.expect("report");
    assert!(p.tokens_kept < p.tokens_in / 2, "kept {} of {}", p.tokens_kept, p.tokens_in);
    assert_eq!(r.prefill_tokens, p.tokens_in, "SnapKV prefills every token");
    assert_eq!(s.context_used(), p.tokens_kept);
    let seen = engine.tokenizer().decode(s.cached_tokens(), true);
    assert!(seen.contains(system), "system prompt lost: {seen:?}");
    assert!(seen.contains("the hare<|im_end|>"), "the observation window lost: {seen:?}");
    assert_eq!(seen.matches("<|im_start|>").count(), 3, "{seen:?}");
    // Positions stay those of the prompt, in order, inside it.
    let pos = s.cached_positions();
    assert!(pos.windows(2).all(|w| w[0] < w[1]) && (*pos.last().unwrap() as usize) < p.tokens_in);

    // With the latest message protected, nothing of it goes.
    let mut s = engine.session().unwrap();
    s.add_system(system);
    let (_, r) = send(&mut s, &latest, &opts(1, Some(snapkv(8, Budget::Tokens(1)))));
    let seen = engine.tokenizer().decode(s.cached_tokens(), true);
    assert!(seen.contains(&latest), "latest message lost: {seen:?}");
    // (The system prompt and the latest message are the whole prompt here.)
    assert!(r.pruning.expect("report").tokens_kept <= r.prefill_tokens);
}

#[test]
fn the_compressed_cache_decodes_as_a_fresh_prefill_without_the_dropped_slots() {
    for (arch, precision) in
        [("llama", Precision::Exact), ("llama", Precision::Fast), ("gemma3", Precision::Exact)]
    {
        let engine = engine(arch, 6, precision);
        let tokenizer = engine.tokenizer();
        let p1 = tokenizer.encode(&format!("{FILLER} {FILLER} {FILLER} {FILLER}"), false).unwrap();
        let mut a = engine.session().unwrap();
        let pruned = opts(8, Some(snapkv(16, Budget::Ratio(0.3))));
        let (r1, out1) = a.complete_tokens(&p1, &pruned, &mut |_| {}).unwrap();
        let p = r1.pruning.expect("report");
        assert!(p.tokens_kept < p1.len() / 2, "{arch}: kept {} of {}", p.tokens_kept, p1.len());
        assert_eq!(out1.len(), 8, "{arch}: no early stop, so the comparison is long");
        let kept: Vec<u32> = a.cached_positions()[..p.tokens_kept].to_vec();
        let want = fresh_then_retained(&engine, &p1, 16, &kept, out1.len());
        assert_eq!(out1, want, "{arch} {precision:?}");

        // Turn 2 extends the sequence: the compressed prefix is reused, not re-run (the
        // last answer token never went through the model, so it is).
        let p2 = tokenizer.encode(" and then the tide", false).unwrap();
        let whole: Vec<u32> = [&p1[..], &out1, &p2].concat();
        let (r2, out2) = a.complete_tokens(&whole, &opts(6, None), &mut |_| {}).unwrap();
        assert_eq!(r2.reused_tokens, p1.len() + out1.len() - 1, "{arch}");
        assert_eq!(r2.prefill_tokens, p2.len() + 1);
        // The same as the reference continued over the same tokens.
        let turn2: Vec<u32> = [&out1[..], &p2].concat();
        let want2 = continued(&engine, &p1, 16, &kept, &turn2, out2.len());
        assert_eq!(out2, want2, "{arch} {precision:?} turn 2");

        // A prompt that leaves the sequence inside the dropped part reuses only up to
        // the last slot before it.
        let dropped = (0..p1.len()).find(|i| !kept.contains(&(*i as u32))).expect("a drop");
        let mut edited = p1.clone();
        edited[dropped + 1] = (edited[dropped + 1] + 1) % 300;
        let (r3, _) = a.complete_tokens(&edited, &opts(2, None), &mut |_| {}).unwrap();
        // (Gemma's windowed layers no longer hold what that slot's successor would see:
        // nothing is reused.)
        let want = if arch == "gemma3" { 0 } else { dropped + 1 };
        assert_eq!(r3.reused_tokens, want, "{arch}");
    }
}

/// [`fresh_then_retained`], then `fed` run after the compressed prompt (in batches of
/// the engine's size) and `steps` tokens decoded greedily.
fn continued(
    engine: &Engine,
    prompt: &[u32],
    window: usize,
    kept: &[u32],
    fed: &[u32],
    steps: usize,
) -> Vec<u32> {
    let (model, pool) = (engine.model(), engine.pool());
    let mut kv = KvCache::with_type(&model.config, engine.context(), engine.kv_type()).unwrap();
    let mut state = ForwardState::new(model, engine.options().batch);
    let (head, tail) = prompt.split_at(prompt.len() - window.min(prompt.len()));
    for chunk in head.chunks(state.max_batch()).chain([tail]) {
        forward(model, pool, &mut state, &mut kv, chunk, Logits::None).unwrap();
    }
    let keep: Vec<bool> = kv.positions().iter().map(|p| kept.contains(p)).collect();
    kv.retain(&keep).unwrap();
    forward(model, pool, &mut state, &mut kv, fed, Logits::Last).unwrap();
    let mut out = vec![argmax(state.logits_row(0))];
    while out.len() < steps {
        let last = *out.last().unwrap();
        forward(model, pool, &mut state, &mut kv, &[last], Logits::Last).unwrap();
        out.push(argmax(state.logits_row(0)));
    }
    out
}

#[test]
fn hostile_settings_are_clear_errors_and_change_nothing() {
    let engine = engine("llama", 4, Precision::Exact);
    let mut s = engine.session().unwrap();
    send(&mut s, "hello there", &opts(4, None));
    let (messages, cached) = (s.messages().to_vec(), s.cached_tokens().to_vec());
    let cases = [
        (snapkv(0, Budget::Ratio(0.5)), "window of 0"),
        (snapkv(32, Budget::Tokens(0)), "keeps nothing"),
        (snapkv(32, Budget::Ratio(0.0)), "outside (0, 1]"),
        (snapkv(32, Budget::Ratio(1.5)), "outside (0, 1]"),
        (snapkv(32, Budget::Tokens(100_000)), "more than the prompt"),
    ];
    for (prune, want) in cases {
        let err = s.send(FILLER, &opts(4, Some(prune)), &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{prune:?}: {err:?}");
        assert!(err.to_string().contains(want), "{prune:?}: {err}");
        assert_eq!(s.messages(), messages);
        assert_eq!(s.cached_tokens(), cached);
    }
    assert_eq!(Strategy::parse("snapkv").unwrap(), Strategy::SnapKv { window: 32 });
    // The session still answers as before.
    send(&mut s, "and then?", &opts(4, None));
}

fn model_dir() -> PathBuf {
    std::env::var_os("JOULE_MODEL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"), Into::into)
}

#[test]
fn smollm2_compresses_a_long_prompt_and_keeps_answering_from_it() {
    let path = model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.exists(), "{} is missing: run `cargo run -p joule-cli -- fetch`", path.display());
    let o = EngineOptions { energy: None, context: Some(2048), ..Default::default() };
    let engine = Engine::load(&path, o).unwrap();
    let page = (0..12).map(|_| FILLER).collect::<Vec<_>>().join(". ");
    let question = "The pass key is 71432. Remember it.";
    let mut s = engine.session().unwrap();
    let text = format!("{page}. {question} {page}. What is the pass key?");
    let prune = PruneOptions { protect_latest_message: false, ..snapkv(32, Budget::Ratio(0.25)) };
    let (_, r) = send(&mut s, &text, &opts(8, Some(prune)));
    let p = r.pruning.expect("report");
    assert!(p.tokens_kept * 3 < p.tokens_in, "kept {} of {}", p.tokens_kept, p.tokens_in);
    assert_eq!(r.prefill_tokens, p.tokens_in);
    let kept: Vec<u32> = s.cached_positions()[..p.tokens_kept].to_vec();
    let tokens = s.cached_tokens()[..p.tokens_kept].to_vec();
    assert!(kept.iter().all(|&q| (q as usize) < p.tokens_in));
    // The answer so far equals a fresh prefill with the same slots removed.
    let prompt_tokens = {
        let mut t = engine
            .tokenize(
                &engine.template().render(&[joule_core::ChatMessage::user(&text)], true).unwrap(),
                true,
            )
            .unwrap();
        if t.first() != engine.tokenizer().bos_id().as_ref() && engine.tokenizer().add_bos() {
            t.insert(0, engine.tokenizer().bos_id().unwrap());
        }
        t
    };
    assert_eq!(prompt_tokens.len(), p.tokens_in);
    let answer = &s.cached_tokens()[p.tokens_kept..];
    let want = fresh_then_retained(&engine, &prompt_tokens, 32, &kept, answer.len());
    assert_eq!(answer, &want[..answer.len()]);
    assert!(tokens.len() == kept.len());
    // The next turn reuses the compressed cache.
    let (_, r2) = send(&mut s, "Say it again.", &opts(4, None));
    assert!(r2.reused_tokens >= p.tokens_in, "reused {} of {}", r2.reused_tokens, p.tokens_in);
    assert!(s.context_used() < r2.prompt_tokens);
}
