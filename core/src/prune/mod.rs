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
#[cfg(feature = "embed")]
pub mod embed;
mod protect;
mod segment;
mod self_info;
pub(crate) mod snapkv;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Model};
use crate::threads::ThreadPool;

pub use calibration::{Calibration, Limits};
pub use protect::Protected;
pub use segment::EMBED_SUBDIR;
pub(crate) use segment::{EmbedCache, SegmentInput};
pub(crate) use segment::{query_range, text_of, unit_texts};

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
    /// Selective-Context-style: drop the sentences the model finds least surprising,
    /// with surprisal read by early exit after `layer` layers (`None`: all but the last
    /// two).
    SelfInfo { layer: Option<usize> },
    /// SnapKV-style: prefill everything, then keep the cache slots the last `window`
    /// prompt rows attend to most (see `snapkv.rs`); does not shorten prefill.
    SnapKv { window: usize },
    /// Segment relevance: each unit (sentence, line, chat turn) ranked by the cosine
    /// similarity of its sentence embedding (all-MiniLM-L6-v2) to the latest question's
    /// (`prune/segment.rs`; needs the `embed` feature and `joule fetch minilm`).
    Segment,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::EarlyLayer { .. } => "early-layer",
            Strategy::SelfInfo { .. } => "self-info",
            Strategy::SnapKv { .. } => "snapkv",
            Strategy::Segment => "segment",
        }
    }

    /// The layer setting where the strategy has one (early-layer's filter layer,
    /// self-info's exit layer); `None` keeps the model's default.
    pub fn with_layer(self, layer: Option<usize>) -> Self {
        match self {
            Strategy::EarlyLayer { rows, .. } => Strategy::EarlyLayer { layer, rows },
            Strategy::SelfInfo { .. } => Strategy::SelfInfo { layer },
            other => other,
        }
    }

    /// The attention rows that rank tokens, where the strategy reads attention.
    pub fn with_rows(self, rows: usize) -> Self {
        match self {
            Strategy::EarlyLayer { layer, .. } => Strategy::EarlyLayer { layer, rows },
            other => other,
        }
    }

    /// The layer setting, when one was given.
    pub fn layer(&self) -> Option<usize> {
        match *self {
            Strategy::EarlyLayer { layer, .. } | Strategy::SelfInfo { layer } => layer,
            Strategy::SnapKv { .. } | Strategy::Segment => None,
        }
    }

    /// Parses a strategy name with default settings.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "early-layer" | "gemfilter" => Ok(Strategy::EarlyLayer { layer: None, rows: 8 }),
            "self-info" | "selective-context" => Ok(Strategy::SelfInfo { layer: None }),
            "snapkv" => Ok(Strategy::SnapKv { window: snapkv::DEFAULT_WINDOW }),
            "segment" => Ok(Strategy::Segment),
            _ => Err(Error::InvalidArgument(format!(
                "unknown pruning strategy {s:?} (known: early-layer, self-info, snapkv, segment)"
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
/// slots) to keep under `opts`, whole `units` at a time (token by token without them).
/// `segment` carries the units' text for [`Strategy::Segment`]. The cache is left as it
/// was found.
#[allow(clippy::too_many_arguments)]
pub(crate) fn choose(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    protected: &Protected,
    units: &[Range<usize>],
    segment: Option<&SegmentInput>,
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
        Strategy::SelfInfo { layer } => {
            let layer = self_info::exit_layer(model, layer)?;
            self_info::scores(model, pool, state, kv, tokens, layer)?
        }
        // It compresses the cache after prefill: `snapkv::prefill_compress`.
        Strategy::SnapKv { .. } => return Err(Error::Internal("snapkv does not choose".into())),
        Strategy::Segment => {
            let input = segment
                .ok_or_else(|| Error::Internal("the segment strategy was given no text".into()))?;
            segment::scores(input, units, tokens.len())?
        }
    };
    // Protected tokens (the attention sinks among them) are kept anyway: their scores
    // must not spill onto neighbours.
    let scores: Vec<f32> =
        scores.iter().zip(&protected).map(|(&s, &p)| if p { 0.0 } else { s }).collect();
    if units.is_empty() {
        return Ok(select(&max_pool(&scores, POOL_RADIUS), &protected, budget));
    }
    Ok(select_units(&scores, &protected, budget, units))
}

/// Runs a scoring `pass` over tokens appended to the cache, then puts the probe and the
/// cache back as they were, whatever the pass returned (a sliding-window cache may come
/// back shorter: read `kv.len()`).
fn scoring_pass<T>(
    state: &mut ForwardState,
    kv: &mut KvCache,
    pass: impl FnOnce(&mut ForwardState, &mut KvCache) -> Result<T>,
) -> Result<T> {
    let start = kv.len();
    let result = pass(state, kv);
    state.set_probe(crate::model::Probe::default());
    kv.truncate(start);
    result
}

/// Neighbours of a token share its score (as SnapKV pools, with a kernel of 7): attention
/// picks out single tokens of a fact, and a number or name cut in pieces is no fact.
const POOL_RADIUS: usize = 3;

/// Each score raised to the highest within `radius` tokens of it.
fn max_pool(scores: &[f32], radius: usize) -> Vec<f32> {
    (0..scores.len())
        .map(|i| {
            let window = &scores[i.saturating_sub(radius)..(i + radius + 1).min(scores.len())];
            window.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        })
        .collect()
}

/// Sentences of `tokens` (`piece` gives a token's text): a unit ends after a token whose
/// text ends a sentence or a line, or after `MAX_UNIT` tokens.
pub fn sentence_units(tokens: &[u32], piece: impl Fn(u32) -> Vec<u8>) -> Vec<Range<usize>> {
    const MAX_UNIT: usize = 48;
    let mut units = Vec::new();
    let mut start = 0;
    for (i, &t) in tokens.iter().enumerate() {
        let p = piece(t);
        let ends = p.iter().rev().find(|b| !b.is_ascii_whitespace() || **b == b'\n');
        let boundary = matches!(ends, Some(b'.' | b'!' | b'?' | b'\n')) || p.contains(&b'\n');
        if boundary || i + 1 - start >= MAX_UNIT {
            units.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        units.push(start..tokens.len());
    }
    units
}

/// Like [`select`], but whole units (sentences) at a time, ranked by their tokens' mean
/// score: a fact is a sentence, and half a sentence reads as noise. A unit that no
/// longer fits is passed over for a shorter one.
pub fn select_units(
    scores: &[f32],
    protected: &[bool],
    budget: usize,
    units: &[Range<usize>],
) -> Vec<bool> {
    let mut keep = protected.to_vec();
    let mut room = budget.saturating_sub(keep.iter().filter(|k| **k).count());
    let mean = |r: &Range<usize>| {
        let free: Vec<usize> = r.clone().filter(|&i| !protected[i]).collect();
        free.iter().map(|&i| scores[i]).sum::<f32>() / free.len().max(1) as f32
    };
    let mut order: Vec<(f32, &Range<usize>)> = units.iter().map(|u| (mean(u), u)).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.start.cmp(&a.1.start)));
    for (_, unit) in order {
        let cost = unit.clone().filter(|&i| !keep[i]).count();
        if cost == 0 || cost > room {
            continue;
        }
        unit.clone().for_each(|i| keep[i] = true);
        room -= cost;
    }
    keep
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

#[cfg(test)]
mod tests {
    use super::max_pool;

    #[test]
    fn pooling_lifts_the_neighbours_of_a_peak() {
        let pooled = max_pool(&[0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 1.0], 3);
        assert_eq!(pooled, [0.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 1.0]);
    }
}
