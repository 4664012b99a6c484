//! Input pruning on tiny synthetic models (hermetic): protected spans survive any budget,
//! a 100 % budget is no pruning, pruned turns keep reusing the cache, hostile settings
//! are clear errors that change nothing.

use std::sync::Arc;

use joule_core::chat::ChatMessage;
use joule_core::engine::{Engine, EngineOptions, GenerateOptions, Session};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::prune::Protected;
use joule_core::{Budget, Error, Precision, PruneOptions, Strategy};

fn engine(spec: &SyntheticSpec, precision: Precision) -> Arc<Engine> {
    let bytes = synthetic_model(spec).unwrap().to_bytes();
    let options = EngineOptions {
        context: Some(1024),
        allow_long_context: true,
        threads: Some(2),
        precision,
        ..EngineOptions::default()
    };
    Engine::from_file(GgufFile::from_bytes(&bytes).unwrap(), options).unwrap()
}

fn tiny_with_layers(arch: &str, n_layers: usize) -> SyntheticSpec {
    SyntheticSpec { arch: arch.into(), n_layers, ..SyntheticSpec::tiny() }
}

fn early_layer(layer: Option<usize>, budget: Budget) -> PruneOptions {
    PruneOptions::new(Strategy::EarlyLayer { layer, rows: 8 }, budget)
}

fn self_info(layer: Option<usize>, budget: Budget) -> PruneOptions {
    PruneOptions::new(Strategy::SelfInfo { layer }, budget)
}

/// Both scoring strategies at `budget` (default layers).
fn strategies(budget: Budget) -> [PruneOptions; 2] {
    [early_layer(None, budget), self_info(None, budget)]
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

#[test]
fn budgets_parse_and_out_of_range_budgets_are_errors() {
    assert_eq!(Budget::parse("0.25").unwrap(), Budget::Ratio(0.25));
    assert_eq!(Budget::parse("25%").unwrap(), Budget::Ratio(0.25));
    assert_eq!(Budget::parse("512").unwrap(), Budget::Tokens(512));
    assert!(Budget::parse("a lot").is_err());
    assert_eq!(Budget::Ratio(1.0).tokens_of(100).unwrap(), 100);
    assert_eq!(Budget::Ratio(0.25).tokens_of(10).unwrap(), 3);
    assert_eq!(Budget::Tokens(100).tokens_of(100).unwrap(), 100);
    for bad in [Budget::Ratio(0.0), Budget::Ratio(1.5), Budget::Ratio(f64::NAN), Budget::Tokens(0)]
    {
        assert!(matches!(bad.tokens_of(100), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
    let err = Budget::Tokens(101).tokens_of(100).unwrap_err().to_string();
    assert!(err.contains("more than the prompt"), "{err}");
    assert!(Strategy::parse("magic").unwrap_err().to_string().contains("early-layer"));
}

#[test]
fn selection_keeps_every_protected_token_and_the_best_others_in_order() {
    // Specials (id 7) and the two tokens after them, the first 2 and last 3 tokens, and a
    // span: all kept however small the budget.
    let tokens: Vec<u32> = (0..40).map(|i| if i == 20 { 7 } else { 100 + i }).collect();
    let mut protected = Protected::with_specials(&tokens, |t| t == 7);
    protected.span(10..13);
    let mask = protected.mask(tokens.len(), 2, 3);
    let must: Vec<usize> = (0..40).filter(|&i| mask[i]).collect();
    assert_eq!(must, [0, 1, 10, 11, 12, 20, 21, 22, 37, 38, 39]);
    let scores: Vec<f32> =
        (0..40).map(|i| if i == 30 || i == 5 { 9.0 } else { i as f32 * 0.01 }).collect();
    for budget in [1, must.len(), must.len() + 2, 40] {
        let keep = joule_core::prune::select(&scores, &mask, budget);
        assert!(must.iter().all(|&i| keep[i]), "budget {budget} dropped a protected token");
        assert_eq!(keep.iter().filter(|k| **k).count(), budget.max(must.len()));
        if budget == must.len() + 2 {
            assert!(keep[5] && keep[30], "the two best-scored tokens are kept first");
        }
    }
}

#[test]
fn protected_spans_survive_the_smallest_budget_in_a_chat() {
    for prune in strategies(Budget::Tokens(1)) {
        protected_spans_survive(prune);
    }
}

fn protected_spans_survive(prune: PruneOptions) {
    let engine = engine(&tiny_with_layers("llama", 4), Precision::Exact);
    let mut s = engine.session().unwrap();
    let system = "you are a tidy assistant";
    s.add_system(system);
    send(&mut s, &format!("{FILLER} {FILLER}"), &opts(4, None));
    let before = s.context_used();
    let latest = "and then said the hare to the tortoise near the sea";
    let mut s2 = engine.session().unwrap();
    s2.add_system(system);
    for m in &s.messages()[1..] {
        s2.push_message(m.clone());
    }
    let mut conversation = s2.messages().to_vec();
    conversation.push(ChatMessage::user(latest));
    let full = engine.template().render(&conversation, true).unwrap();
    let (_, r) = send(&mut s2, latest, &opts(1, Some(prune)));
    let p = r.pruning.expect("a pruned turn reports its pruning");
    assert!(p.tokens_kept < p.tokens_in, "kept {} of {}", p.tokens_kept, p.tokens_in);
    assert_eq!(r.prefill_tokens, p.tokens_kept);
    assert!(before > p.tokens_kept, "the earlier turn was not pruned");

    let seen = engine.tokenizer().decode(s2.cached_tokens(), true);
    assert!(seen.contains(system), "system prompt lost: {seen:?}");
    assert!(seen.contains(latest), "latest message lost: {seen:?}");
    for special in ["<|im_start|>", "<|im_end|>"] {
        assert_eq!(seen.matches(special).count(), full.matches(special).count(), "{seen:?}");
    }
}

#[test]
fn a_full_budget_is_no_pruning_bit_for_bit() {
    for (arch, precision) in
        [("llama", Precision::Exact), ("llama", Precision::Fast), ("gemma3", Precision::Exact)]
    {
        let engine = engine(&tiny_with_layers(arch, 6), precision);
        let (mut plain, mut full) = (engine.session().unwrap(), engine.session().unwrap());
        for (i, text) in [FILLER, "and what of the tide?", "say more"].iter().enumerate() {
            let (a, ra) = send(&mut plain, text, &opts(12, None));
            // A ratio of 1, or exactly as many tokens as the turn prefills.
            let budget =
                if i == 1 { Budget::Tokens(ra.prefill_tokens) } else { Budget::Ratio(1.0) };
            let (b, rb) = send(&mut full, text, &opts(12, Some(early_layer(None, budget))));
            assert_eq!(a, b, "{arch} {precision:?} turn {i}");
            assert_eq!(plain.cached_tokens(), full.cached_tokens());
            assert_eq!(
                (ra.prefill_tokens, ra.reused_tokens),
                (rb.prefill_tokens, rb.reused_tokens)
            );
            let p = rb.pruning.expect("report");
            assert_eq!(p.tokens_kept, p.tokens_in);
        }
    }
}

#[test]
fn a_pruned_turn_is_reused_and_continues_as_a_run_over_the_kept_tokens() {
    for arch in ["llama", "gemma3"] {
        for prune in strategies(Budget::Ratio(0.3)) {
            pruned_turn_is_reused(arch, prune);
        }
    }
}

fn pruned_turn_is_reused(arch: &str, prune: PruneOptions) {
    let engine = engine(&tiny_with_layers(arch, 6), Precision::Exact);
    let tokenizer = engine.tokenizer();
    let p1 = tokenizer.encode(&format!("{FILLER} {FILLER} {FILLER}"), false).unwrap();
    let mut a = engine.session().unwrap();
    let pruned = opts(6, Some(prune));
    let (r1, out1) = a.complete_tokens(&p1, &pruned, &mut |_| {}).unwrap();
    let p = r1.pruning.expect("report");
    assert!(
        p.tokens_kept < p1.len() / 2,
        "{arch} {}: kept {} of {}",
        prune.strategy.name(),
        p.tokens_kept,
        p1.len()
    );
    let mut seen = a.cached_tokens().to_vec();
    seen.extend(&out1[seen.len() - p.tokens_kept..]);

    // Turn 2 extends the logical sequence: the pruned prefix is reused, not re-run
    // (the last answer token never went through the model, so it is).
    let p2 = tokenizer.encode(" and then the tide", false).unwrap();
    let whole: Vec<u32> = [&p1[..], &out1, &p2].concat();
    let (r2, out2) = a.complete_tokens(&whole, &opts(6, None), &mut |_| {}).unwrap();
    assert_eq!(r2.reused_tokens, p1.len() + out1.len() - 1, "{arch}");
    assert_eq!(r2.prefill_tokens, p2.len() + 1);

    // The same computation as a fresh run over the tokens the cache saw.
    let mut b = engine.session().unwrap();
    let (_, fresh) =
        b.complete_tokens(&[&seen[..], &p2].concat(), &opts(6, None), &mut |_| {}).unwrap();
    assert_eq!(out2, fresh, "{arch}");

    // A pruned turn after a reused prefix (on Gemma the scoring pass can cost the
    // windowed layers reused slots, which are then run again): the next turn still
    // continues exactly as a fresh run over what the cache saw.
    let p3 = tokenizer.encode(&format!(" {FILLER} {FILLER}"), false).unwrap();
    let whole: Vec<u32> = [&whole[..], &out2, &p3].concat();
    let (r3, out3) = a.complete_tokens(&whole, &pruned, &mut |_| {}).unwrap();
    assert!(r3.reused_tokens > p1.len(), "{arch}: reused {}", r3.reused_tokens);
    assert!(r3.pruning.expect("report").tokens_kept < p3.len());
    let mut seen = a.cached_tokens().to_vec();
    seen.push(*out3.last().expect("an answer"));
    let p4 = tokenizer.encode(" so", false).unwrap();
    let whole: Vec<u32> = [&whole[..], &out3, &p4].concat();
    let (_, out4) = a.complete_tokens(&whole, &opts(6, None), &mut |_| {}).unwrap();
    let mut c = engine.session().unwrap();
    let (_, fresh) =
        c.complete_tokens(&[&seen[..], &p4].concat(), &opts(6, None), &mut |_| {}).unwrap();
    assert_eq!(out4, fresh, "{arch}");
}

#[test]
fn hostile_settings_are_clear_errors_and_change_nothing() {
    let engine = engine(&tiny_with_layers("llama", 4), Precision::Exact);
    let mut s = engine.session().unwrap();
    send(&mut s, "hello there", &opts(4, None));
    let (messages, cached) = (s.messages().to_vec(), s.cached_tokens().to_vec());
    let cases = [
        (early_layer(None, Budget::Tokens(0)), "keeps nothing"),
        (early_layer(None, Budget::Ratio(0.0)), "outside (0, 1]"),
        (early_layer(None, Budget::Ratio(2.0)), "outside (0, 1]"),
        (early_layer(None, Budget::Tokens(100_000)), "more than the prompt"),
        (early_layer(Some(0), Budget::Ratio(0.5)), "outside this model's layers 1..=4"),
        (early_layer(Some(5), Budget::Ratio(0.5)), "outside this model's layers 1..=4"),
        (self_info(Some(0), Budget::Ratio(0.5)), "exit layer 0 is outside this model's layers"),
        (self_info(Some(5), Budget::Ratio(0.5)), "exit layer 5 is outside this model's layers"),
        (self_info(None, Budget::Tokens(0)), "keeps nothing"),
        (
            PruneOptions::new(Strategy::EarlyLayer { layer: None, rows: 0 }, Budget::Ratio(0.5)),
            "0 attention rows",
        ),
    ];
    for (prune, want) in cases {
        let err = s.send(FILLER, &opts(4, Some(prune)), &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{prune:?}: {err:?}");
        assert!(err.to_string().contains(want), "{prune:?}: {err}");
        assert_eq!(s.messages(), messages);
        assert_eq!(s.cached_tokens(), cached);
    }
    // The session still answers as before.
    send(&mut s, "and then?", &opts(4, None));

    // A sliding-window layer cannot see the whole prompt; the error names the ones that can.
    let gemma = engine_of("gemma3", 6);
    let mut g = gemma.session().unwrap();
    let err = g.send(FILLER, &opts(4, Some(early_layer(Some(2), Budget::Ratio(0.5)))), &mut |_| {});
    let err = err.unwrap_err().to_string();
    assert!(err.contains("sliding window") && err.contains("layers 6"), "{err}");
    assert_eq!(g.context_used(), 0);
    assert!(g.messages().is_empty());
}

fn engine_of(arch: &str, n_layers: usize) -> Arc<Engine> {
    engine(&tiny_with_layers(arch, n_layers), Precision::Exact)
}

#[test]
fn sentences_are_kept_or_dropped_whole() {
    // Pieces: three sentences of 3, 4 and 2 tokens, then a tail without a full stop.
    let pieces = ["A", " b", ".", " C", " d", " e", "!", " F", "?", " g", " h"];
    let tokens: Vec<u32> = (0..pieces.len() as u32).collect();
    let units = joule_core::prune::sentence_units(&tokens, |t| pieces[t as usize].into());
    assert_eq!(units, [0..3, 3..7, 7..9, 9..11]);
    let mut protected = vec![false; tokens.len()];
    protected[10] = true;
    // The second sentence scores best; the third next, and the rest does not fit.
    let scores = [0.1, 0.1, 0.1, 0.9, 0.8, 0.9, 0.9, 0.5, 0.5, 0.0, 0.0];
    let keep = joule_core::prune::select_units(&scores, &protected, 7, &units);
    let kept: Vec<usize> = (0..tokens.len()).filter(|&i| keep[i]).collect();
    assert_eq!(kept, [3, 4, 5, 6, 7, 8, 10]);
    // With room for one more token only the last sentence, whose other token is
    // protected, fits.
    let keep = joule_core::prune::select_units(&scores, &protected, 2, &units);
    assert_eq!((0..tokens.len()).filter(|&i| keep[i]).collect::<Vec<_>>(), [9, 10]);
}
