//! Input pruning: run the model on fewer prompt tokens and get the same answer.
//!
//! A [`Strategy`] scores the tokens of the part of a prompt that is about to be prefilled;
//! [`select`] keeps the protected tokens ([`Protected`]: template and special tokens, the
//! system prompt, the latest message, the first and last few tokens) and fills the rest
//! of the [`Budget`] with the best-scored units, in their original order. The session
//! then prefills only the kept tokens, at consecutive positions.
//!
//! Scoring is paid for in the turn's time to first token: every strategy here costs a
//! fraction of a prefill (see each strategy's file), and the report says how long it
//! took.

mod calibration;
mod early_layer;
mod protect;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Model};
use crate::threads::ThreadPool;

pub use calibration::{Calibration, Limits};
pub use protect::Protected;

/// How many prompt tokens to keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// A fraction of the tokens, in (0, 1]; 1 keeps everything (no scoring runs).
    Ratio(f64),
    /// A number of tokens, at least 1 and at most the prompt's.
    Tokens(usize),
}

impl Budget {
    /// Tokens to keep out of `n`; a clear error for a budget of nothing or more than `n`.
    pub fn tokens_of(self, n: usize) -> Result<usize> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("prune budget: {why}")));
        match self {
            Budget::Ratio(r) if !(r > 0.0 && r <= 1.0) => {
                bad(format!("keep ratio {r} is outside (0, 1]"))
            }
            Budget::Ratio(r) => Ok(((n as f64 * r).ceil() as usize).clamp(1.min(n), n)),
            Budget::Tokens(0) => bad("a budget of 0 tokens keeps nothing".into()),
            Budget::Tokens(k) if k > n => bad(format!(
                "{k} tokens is more than the prompt's {n} (give a ratio to keep a share)"
            )),
            Budget::Tokens(k) => Ok(k),
        }
    }

    /// Parses "0.25", "25%" (ratios) or "512" (tokens).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("prune budget {s:?}: give 0.25, 25% or 512"));
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            return Ok(Budget::Ratio(p / 100.0));
        }
        if s.contains('.') {
            return s.parse().map(Budget::Ratio).map_err(|_| bad());
        }
        s.parse().map(Budget::Tokens).map_err(|_| bad())
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Ratio(r) => write!(f, "{}%", r * 100.0),
            Budget::Tokens(k) => write!(f, "{k}"),
        }
    }
}

/// How tokens are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Strategy {
    /// GemFilter-style: run the first `layer` layers over the prompt and rank each token
    /// by the attention the last `rows` query rows pay it at that layer, summed over
    /// heads. `layer: None` takes the model's measured default ([`default_filter_layer`]).
    EarlyLayer { layer: Option<usize>, rows: usize },
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::EarlyLayer { .. } => "early-layer",
        }
    }

    /// Parses a strategy name with default settings.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "early-layer" | "gemfilter" => Ok(Strategy::EarlyLayer { layer: None, rows: 8 }),
            _ => Err(Error::InvalidArgument(format!(
                "unknown pruning strategy {s:?} (known: early-layer)"
            ))),
        }
    }
}

/// Pruning settings of a turn (see [`crate::GenerateOptions::prune`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PruneOptions {
    pub strategy: Strategy,
    pub budget: Budget,
    /// Tokens at the start of the prompt that are always kept (attention sinks, BOS).
    pub keep_first: usize,
    /// Tokens at the end that are always kept (the question's tail, the generation
    /// prompt).
    pub keep_last: usize,
    /// Keep the whole latest message of a chat (true), or let pruning read into it (a
    /// page pasted with its question in one message).
    pub protect_latest_message: bool,
}

impl PruneOptions {
    pub fn new(strategy: Strategy, budget: Budget) -> Self {
        Self { strategy, budget, keep_first: 4, keep_last: 16, protect_latest_message: true }
    }
}

/// What pruning did to one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneReport {
    pub strategy: String,
    pub budget: String,
    /// Tokens offered to pruning (the prompt's part not already in the cache).
    pub tokens_in: usize,
    pub tokens_kept: usize,
    /// Time spent scoring (part of the time to first token).
    pub scoring_ms: f64,
}

/// Which of `tokens` (the prompt's new part, to be appended after the `kv` cache's
/// slots) to keep under `opts`. The cache is left as it was found.
pub(crate) fn choose(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    protected: &Protected,
    opts: &PruneOptions,
) -> Result<Vec<bool>> {
    let budget = opts.budget.tokens_of(tokens.len())?;
    let protected = protected.mask(tokens.len(), opts.keep_first, opts.keep_last);
    if budget >= tokens.len() {
        return Ok(vec![true; tokens.len()]);
    }
    let scores = match opts.strategy {
        Strategy::EarlyLayer { layer, rows } => {
            let layer = early_layer::filter_layer(model, layer)?;
            early_layer::scores(model, pool, state, kv, tokens, layer, rows)?
        }
    };
    Ok(select(&scores, &protected, budget))
}

/// Keeps every protected token, then the best-scored others until `budget` tokens are
/// kept (ties go to the later token, nearer the question).
pub fn select(scores: &[f32], protected: &[bool], budget: usize) -> Vec<bool> {
    let mut keep = protected.to_vec();
    let mut room = budget.saturating_sub(keep.iter().filter(|k| **k).count());
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| !protected[i]).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(b.cmp(&a)));
    for i in order {
        if room == 0 {
            break;
        }
        keep[i] = true;
        room -= 1;
    }
    keep
}

/// The layer whose attention ranks tokens when none is given: about a quarter of the
/// way in, on a layer that sees the whole prompt (not a sliding-window one).
pub(crate) fn default_filter_layer(model: &Model) -> usize {
    let c = &model.config;
    let wanted = (c.n_layers / 4).max(1);
    (wanted..=c.n_layers).find(|&k| !c.is_local_layer(k - 1)).unwrap_or(c.n_layers)
}
