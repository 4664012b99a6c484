//! `joule eval`: perplexity windows as llama-perplexity cuts them, KL of a path against
//! itself, the KL statistics, and the typed errors of bad input. Tiny synthetic models
//! keep it fast; one case runs on the real SmolLM2 file.

use std::path::PathBuf;
use std::sync::Arc;

use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::{EvalError, PplOptions, evaluate, read_text, text_tokens};
use joule_core::gguf::GgufFile;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};

fn engine_of(spec: &SyntheticSpec, precision: Precision, zero_embedding: bool) -> Arc<Engine> {
    let mut w = synthetic_model(spec).unwrap();
    if zero_embedding {
        let t = w.tensors.iter_mut().find(|t| t.name == "token_embd.weight").unwrap();
        t.data.iter_mut().for_each(|b| *b = 0);
    }
    let file = GgufFile::from_bytes(&w.to_bytes()).unwrap();
    let options = EngineOptions {
        precision,
        threads: Some(2),
        energy: None,
        context: Some(64),
        ..EngineOptions::default()
    };
    Engine::from_file(file, options).unwrap()
}

fn tiny() -> SyntheticSpec {
    SyntheticSpec::tiny()
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen \
                    liquor jugs! How vexingly quick daft zebras jump; 0123456789.";

fn opts(ctx: usize, chunks: Option<usize>, batch: usize) -> PplOptions {
    PplOptions { ctx, chunks, batch }
}

#[test]
fn a_uniform_model_has_the_vocabulary_as_perplexity() {
    // A zero (tied) embedding gives zero logits everywhere: every token has probability
    // 1/320, so the perplexity is exactly 320 and every token's nll is the same.
    let e = engine_of(&tiny(), Precision::Exact, true);
    let tokens = text_tokens(&e, TEXT).unwrap();
    let r = evaluate(&e, None, &tokens, &opts(16, None, 5), &mut |_, _| {}).unwrap();
    assert!((r.ppl - 320.0).abs() < 1e-3, "{}", r.ppl);
    assert!(r.ppl_stderr < 1e-6);
    assert_eq!(r.chunks, tokens.len() / 16);
    assert_eq!(r.tokens, r.chunks * (16 - 8 - 1));
}

#[test]
fn perplexity_scores_the_second_half_of_each_window_by_hand() {
    let e = engine_of(&tiny(), Precision::Exact, false);
    let tokens = text_tokens(&e, TEXT).unwrap();
    let (ctx, chunks) = (12, 3);
    let r = evaluate(&e, None, &tokens, &opts(ctx, Some(chunks), 4), &mut |_, _| {}).unwrap();
    // By hand: each window alone, scored with the engine's teacher-forced scoring.
    let mut nll = Vec::new();
    for c in 0..chunks {
        let mut w = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if e.tokenizer().add_bos() {
            w[0] = e.tokenizer().bos_id().unwrap();
        }
        let first = ctx / 2;
        // The distribution after w[..=p] for p = first..ctx-2, scoring w[p+1].
        let steps = e.score_full(&w[..=first], &w[first + 1..]).unwrap();
        assert_eq!(steps.len(), ctx - first - 1);
        for (k, lp) in steps.iter().enumerate() {
            nll.push(-(lp[w[first + 1 + k] as usize] as f64));
        }
    }
    let n = nll.len() as f64;
    let mean = nll.iter().sum::<f64>() / n;
    let var = nll.iter().map(|x| x * x).sum::<f64>() / n - mean * mean;
    let ppl = mean.exp();
    assert_eq!(r.tokens, nll.len());
    assert!((r.ppl - ppl).abs() < 1e-4 * ppl, "{} vs {ppl}", r.ppl);
    assert!((r.ppl_stderr - (var / (n - 1.0)).sqrt() * ppl).abs() < 1e-3 * r.ppl_stderr);
    // A random synthetic model is confidently wrong, so only the range is checked here.
    assert!(r.ppl.is_finite() && r.ppl > 1.0, "{}", r.ppl);
}

#[test]
fn kl_of_the_exact_path_against_itself_is_zero() {
    let a = engine_of(&tiny(), Precision::Exact, false);
    let b = engine_of(&tiny(), Precision::Exact, false);
    let tokens = text_tokens(&a, TEXT).unwrap();
    let r = evaluate(&a, Some((&b, "exact")), &tokens, &opts(16, None, 6), &mut |_, _| {}).unwrap();
    let kl = r.kl.unwrap();
    assert_eq!(kl.tokens, r.tokens);
    assert_eq!((kl.mean, kl.median, kl.p99, kl.max), (0.0, 0.0, 0.0, 0.0));
    assert_eq!(kl.top1_agreement, 1.0);
    assert_eq!(kl.mean_abs_dlogp_top5, 0.0);
    assert_eq!(kl.reference_ppl, r.ppl);
    // And the fast path of 8-bit weights is measurably different, but close.
    let spec = SyntheticSpec {
        weight_type: joule_core::quant::GgmlType::Q8_0,
        embedding_type: joule_core::quant::GgmlType::Q8_0,
        ..tiny()
    };
    let fast = engine_of(&spec, Precision::Fast, false);
    let exact = engine_of(&spec, Precision::Exact, false);
    let r = evaluate(&fast, Some((&exact, "exact")), &tokens, &opts(16, None, 16), &mut |_, _| {})
        .unwrap();
    let kl = r.kl.unwrap();
    assert!(kl.mean > 0.0 && kl.mean < 0.01, "{kl:?}");
    assert!(kl.max >= kl.p99 && kl.p99 >= kl.median && kl.median >= 0.0);
}

#[test]
fn bad_input_gets_typed_errors() {
    let e = engine_of(&tiny(), Precision::Exact, false);
    let tokens = text_tokens(&e, TEXT).unwrap();
    let run = |o: PplOptions| evaluate(&e, None, &tokens, &o, &mut |_, _| {}).unwrap_err();
    assert!(matches!(run(opts(2, None, 4)), EvalError::ContextTooSmall { ctx: 2 }));
    assert!(matches!(run(opts(1000, None, 4)), EvalError::ContextTooLarge { ctx: 1000, .. }));
    assert!(matches!(run(opts(16, Some(0), 4)), EvalError::NoChunks));
    assert!(matches!(run(opts(200, None, 4)), EvalError::TextTooShort { ctx: 200, .. }));

    let dir = std::env::temp_dir().join(format!("joule-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.txt");
    assert!(matches!(read_text(&missing), Err(EvalError::TextPath(_))));
    // A directory (or a FIFO, or /dev/zero) is refused before it is read.
    assert!(matches!(read_text(&dir), Err(EvalError::TextPath(_))));
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, " \n").unwrap();
    assert!(matches!(read_text(&empty), Err(EvalError::EmptyText { .. })));
    let binary = dir.join("binary.txt");
    std::fs::write(&binary, [b'a', 0xff, 0xfe]).unwrap();
    assert!(matches!(read_text(&binary), Err(EvalError::TextNotUtf8 { offset: 1, .. })));
    std::fs::remove_dir_all(&dir).unwrap();

    let other = engine_of(&SyntheticSpec { n_vocab: 330, ..tiny() }, Precision::Exact, false);
    let err =
        evaluate(&e, Some((&other, "other.gguf")), &tokens, &opts(16, None, 4), &mut |_, _| {})
            .unwrap_err();
    assert!(matches!(err, EvalError::VocabularyMismatch { .. }), "{err}");
}

fn model_dir() -> PathBuf {
    std::env::var_os("JOULE_MODEL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"), Into::into)
}

#[test]
fn smollm2_exact_against_itself_and_fast_against_exact() {
    let path = model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.exists(), "{} is missing: run `cargo run -p joule-cli -- fetch`", path.display());
    let load = |precision| {
        let o = EngineOptions { precision, energy: None, context: Some(64), ..Default::default() };
        Engine::load(&path, o).unwrap()
    };
    let (exact, exact2, fast) =
        (load(Precision::Exact), load(Precision::Exact), load(Precision::Fast));
    let text = "Everyone is permitted to copy and distribute verbatim copies of this license \
                document, but changing it is not allowed. The licenses for most software and \
                other practical works are designed to take away your freedom to share and change \
                the works. By contrast, the GNU General Public License is intended to guarantee \
                your freedom to share and change all versions of a program.";
    let tokens = text_tokens(&exact, text).unwrap();
    let o = opts(32, Some(2), 32);
    let same = evaluate(&exact, Some((&exact2, "exact")), &tokens, &o, &mut |_, _| {}).unwrap();
    let kl = same.kl.unwrap();
    assert_eq!((kl.mean, kl.max, kl.top1_agreement), (0.0, 0.0, 1.0));
    assert!(same.ppl > 1.0 && same.ppl < 200.0, "{}", same.ppl);
    let fast_r = evaluate(&fast, Some((&exact, "exact")), &tokens, &o, &mut |_, _| {}).unwrap();
    let kl = fast_r.kl.unwrap();
    assert!(kl.mean > 0.0 && kl.mean < 0.05, "{kl:?}");
    assert!(kl.top1_agreement > 0.8, "{kl:?}");
    assert!((kl.reference_ppl - same.ppl).abs() < 1e-9 * same.ppl);
}
