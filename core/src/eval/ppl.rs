//! Perplexity in llama-perplexity's terms, so the figures compare one to one: the whole
//! text is tokenized once (BOS first when the vocabulary asks for it), cut into
//! non-overlapping windows of `ctx` tokens, the first token of every window is replaced
//! by BOS (when the vocabulary adds one), and each window is scored on its second half:
//! positions `ctx/2 .. ctx-2` predict tokens `ctx/2+1 .. ctx-1`, so `ctx - ctx/2 - 1`
//! tokens per window. The standard error is that of the mean negative log-likelihood,
//! `sqrt((E[nll²] - E[nll]²) / (n - 1))`, times the perplexity.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::kl::{KlReport, KlStats};
use super::{EvalError, EvalResult};
use crate::energy::Method;
use crate::engine::Engine;

/// How the text is cut and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PplOptions {
    /// Tokens per window.
    pub ctx: usize,
    /// At most this many windows (None: as many as the text fills).
    pub chunks: Option<usize>,
    /// Positions per forward batch.
    pub batch: usize,
}

/// Running sums of the negative log-likelihood of the scored tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PplStats {
    pub count: usize,
    pub sum_nll: f64,
    pub sum_nll2: f64,
}

impl PplStats {
    /// Adds one scored token given its natural-log probability.
    pub fn push(&mut self, log_prob: f64) {
        let nll = -log_prob;
        self.count += 1;
        self.sum_nll += nll;
        self.sum_nll2 += nll * nll;
    }

    /// `exp(mean nll)`.
    pub fn ppl(&self) -> f64 {
        (self.sum_nll / self.count.max(1) as f64).exp()
    }

    /// Standard error of the perplexity (0 below two tokens or without spread).
    pub fn ppl_stderr(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        let mean = self.sum_nll / n;
        let var = self.sum_nll2 / n - mean * mean;
        if var > 0.0 { (var / (n - 1.0)).sqrt() * self.ppl() } else { 0.0 }
    }
}

/// One perplexity (and optionally KL) evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PplReport {
    pub ppl: f64,
    pub ppl_stderr: f64,
    /// Tokens scored (`chunks × (ctx - ctx/2 - 1)`).
    pub tokens: usize,
    /// Tokens run through the model (`chunks × ctx`).
    pub tokens_evaluated: usize,
    /// Tokens of the whole text (BOS included).
    pub text_tokens: usize,
    pub chunks: usize,
    pub ctx: usize,
    pub batch: usize,
    pub add_bos: bool,
    /// Seconds of the evaluated model's forward passes.
    pub seconds: f64,
    /// Evaluated tokens per second of the evaluated model.
    pub tokens_per_s: f64,
    /// Joules per evaluated token over the whole run; None without metering, and None
    /// with a reference model (the window would hold both models' work).
    pub joules_per_token: Option<f64>,
    pub energy_method: Option<Method>,
    pub energy_source: Option<String>,
    /// Divergence from the reference, when one was given.
    pub kl: Option<KlReport>,
}

/// Reads a text file for evaluation, with typed errors for the usual mistakes.
pub fn read_text(path: &Path) -> EvalResult<String> {
    crate::fsutil::check_input_file(path)?;
    let bytes = std::fs::read(path)
        .map_err(|source| EvalError::TextUnreadable { path: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| EvalError::TextNotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(EvalError::EmptyText { path: path.to_path_buf() });
    }
    Ok(text)
}

/// The text's tokens as llama-perplexity makes them: special-token text is plain text,
/// BOS first when the vocabulary adds one.
pub fn text_tokens(engine: &Engine, text: &str) -> EvalResult<Vec<u32>> {
    let mut tokens = Vec::new();
    if let Some(bos) = bos_to_add(engine) {
        tokens.push(bos);
    }
    tokens.extend(engine.tokenize(text, false)?);
    Ok(tokens)
}

fn bos_to_add(engine: &Engine) -> Option<u32> {
    let t = engine.tokenizer();
    if t.add_bos() { t.bos_id() } else { None }
}

/// Number of windows to score, after checking the options against the text and model.
pub fn plan_chunks(n_tokens: usize, opts: &PplOptions, train_ctx: usize) -> EvalResult<usize> {
    let ctx = opts.ctx;
    if ctx < 3 {
        return Err(EvalError::ContextTooSmall { ctx });
    }
    if ctx > train_ctx {
        return Err(EvalError::ContextTooLarge { ctx, train: train_ctx });
    }
    if opts.chunks == Some(0) {
        return Err(EvalError::NoChunks);
    }
    let needed = 2 * ctx;
    if n_tokens < needed {
        return Err(EvalError::TextTooShort { tokens: n_tokens, ctx, needed });
    }
    let max = n_tokens / ctx;
    Ok(opts.chunks.map_or(max, |c| c.min(max)))
}

/// Scores `tokens` with `engine` (and, with a reference, the KL divergence of `engine`
/// from `reference`, both models streamed in lockstep a batch at a time).
/// `progress(done, total)` is called after every window.
pub fn evaluate(
    engine: &Engine,
    reference: Option<(&Engine, &str)>,
    tokens: &[u32],
    opts: &PplOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> EvalResult<PplReport> {
    let chunks = plan_chunks(tokens.len(), opts, engine.model().config.n_ctx_train)?;
    if let Some((r, name)) = reference {
        check_same_vocabulary(engine, r, name)?;
        plan_chunks(tokens.len(), opts, r.model().config.n_ctx_train)?;
    }
    let ctx = opts.ctx;
    let first = ctx / 2;
    let bos = bos_to_add(engine);
    let mut scorer = engine.window_scorer(ctx, opts.batch)?;
    let mut ref_scorer = match reference {
        Some((r, _)) => Some(r.window_scorer(ctx, opts.batch)?),
        None => None,
    };
    let meter = if reference.is_none() { engine.energy_meter() } else { None };
    let energy_window = meter.map(|m| m.begin("perplexity"));
    let mut stats = PplStats::default();
    let mut kl = reference.map(|_| KlStats::with_capacity(chunks * (ctx - first - 1)));
    let mut seconds = 0.0;
    let mut window = Vec::with_capacity(ctx);
    for chunk in 0..chunks {
        window.clear();
        window.extend_from_slice(&tokens[chunk * ctx..(chunk + 1) * ctx]);
        if let Some(b) = bos {
            window[0] = b;
        }
        let t = Instant::now();
        scorer.begin(&window, first)?;
        seconds += t.elapsed().as_secs_f64();
        if let Some(rs) = ref_scorer.as_mut() {
            rs.begin(&window, first)?;
        }
        loop {
            let t = Instant::now();
            let batch = scorer.next_batch()?;
            seconds += t.elapsed().as_secs_f64();
            let Some(range) = batch else { break };
            if let Some(rs) = ref_scorer.as_mut() {
                rs.next_batch()?;
            }
            for pos in range.filter(|&p| p + 1 < ctx) {
                let next = window[pos + 1] as usize;
                let lp = scorer.log_probs(pos)?;
                let finite = |lp: &[f32]| lp.iter().all(|x| x.is_finite());
                if !finite(lp) {
                    return Err(EvalError::NonFinite { model: "the model".into(), chunk, pos });
                }
                stats.push(lp[next] as f64);
                if let (Some(rs), Some(kl), Some((_, name))) =
                    (ref_scorer.as_mut(), &mut kl, reference)
                {
                    let rlp = rs.log_probs(pos)?;
                    if !finite(rlp) {
                        return Err(EvalError::NonFinite { model: name.into(), chunk, pos });
                    }
                    kl.push(rlp, lp, next);
                }
            }
        }
        progress(chunk + 1, chunks);
    }
    let reading = match (meter, energy_window) {
        (Some(m), Some(w)) => Some(m.end(w)?),
        _ => None,
    };
    let evaluated = chunks * ctx;
    Ok(PplReport {
        ppl: stats.ppl(),
        ppl_stderr: stats.ppl_stderr(),
        tokens: stats.count,
        tokens_evaluated: evaluated,
        text_tokens: tokens.len(),
        chunks,
        ctx,
        batch: scorer.batch(),
        add_bos: bos.is_some(),
        seconds,
        tokens_per_s: if seconds > 0.0 { evaluated as f64 / seconds } else { 0.0 },
        joules_per_token: reading.as_ref().and_then(|r| r.joules_per(evaluated as u64)),
        energy_method: reading.as_ref().map(|r| r.method),
        energy_source: reading.map(|r| r.source.description),
        kl: kl.zip(reference).map(|(k, (_, name))| k.report(name)),
    })
}

/// Token ids must mean the same text in both models for their distributions to compare.
fn check_same_vocabulary(engine: &Engine, reference: &Engine, name: &str) -> EvalResult<()> {
    let (a, b) = (engine.tokenizer(), reference.tokenizer());
    let mismatch =
        |detail: String| EvalError::VocabularyMismatch { reference: name.to_string(), detail };
    let (na, nb) = (engine.model().config.n_vocab, reference.model().config.n_vocab);
    if na != nb || a.vocab_size() != b.vocab_size() {
        return Err(mismatch(format!("{nb} tokens against the model's {na}")));
    }
    if let Some(id) = (0..a.vocab_size() as u32).find(|&i| a.token_text(i) != b.token_text(i)) {
        return Err(mismatch(format!("token {id} differs")));
    }
    if a.add_bos() != b.add_bos() || a.bos_id() != b.bos_id() {
        return Err(mismatch("the BOS settings differ".into()));
    }
    Ok(())
}
