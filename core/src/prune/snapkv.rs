//! SnapKV-style one-shot compression of the prompt's cache (after Li et al. 2024): the
//! last `window` prompt queries (the observation window) already attend to what the
//! answer will need. Prefill every new token as usual, capturing the attention of the
//! window's rows at every layer; score each new slot by it, pool the scores over
//! neighbours (kernel 7, as SnapKV), keep the protected tokens, the window and the
//! best-scored slots up to the budget, and drop the rest from the cache.
//!
//! Deviation from SnapKV: SnapKV picks the top slots per KV head and layer. Joule's
//! cache holds one position per slot, shared by every head and layer, so a slot is kept
//! or dropped for all of them: a slot scores the highest, over layers and heads, of the
//! mean probability the window's rows give it. A slot any head wants badly is kept for
//! all (the union of the heads' picks, ranked by how sharply they want it).
//!
//! The window is at most the prompt's new part and the engine's batch (the window's
//! rows are one batch of their own, so the capture sees them all at once).
//!
//! Unlike early-layer pruning this does not shorten prefill (the first answer token
//! still sees the whole prompt): it saves KV memory and decode time, and leaves room in
//! the context. Kept slots keep their rope positions (`KvCache::retain`), which never
//! exceed the prompt's, so they stay inside the trained context.
//!
//! Cost: the window's rows' probabilities at every layer (`window × n_head × keys`
//! products per layer, single-threaded, folded into one score per slot as they are
//! computed: `2 × n_head × keys` floats, not `layers × window × n_head × keys`), a sort
//! of the new slots, and one compaction of the cache.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Logits, Model, Probe, forward};
use crate::threads::ThreadPool;

use super::{POOL_RADIUS, Protected, PruneOptions, Strategy, max_pool};

/// The observation window when none is given (SnapKV's).
pub const DEFAULT_WINDOW: usize = 32;

/// What [`prefill_compress`] did to the new tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compressed {
    /// One flag per new token: whether its slot is still in the cache.
    pub keep: Vec<bool>,
    /// Time spent capturing attention, choosing and compacting (the rest is prefill).
    pub scoring_ms: f64,
}

/// Prefills `tokens` after the cache's slots (the last batch leaves the last token's
/// logits in `state`, computed over the whole prompt), then drops the new slots SnapKV
/// does not keep under `opts`. Returns None when `cancelled` said stop between batches
/// (the cache then holds the batches already run, uncompressed). A bad setting (window 0,
/// a budget of nothing or more than the tokens) is `Error::InvalidArgument` before
/// anything runs. A budget of every token prefills exactly as an unpruned turn.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prefill_compress(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    protected: &Protected,
    opts: &PruneOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Compressed>> {
    let Strategy::SnapKv { window } = opts.strategy else {
        return Err(Error::Internal(format!("snapkv called for {}", opts.strategy.name())));
    };
    if window == 0 {
        return Err(Error::InvalidArgument("snapkv: an observation window of 0 rows".into()));
    }
    let n = tokens.len();
    let budget = opts.budget.tokens_of(n)?;
    if budget >= n {
        let done = prefill(model, pool, state, kv, tokens, 0, cancelled)?;
        return Ok(done.then(|| Compressed { keep: vec![true; n], scoring_ms: 0.0 }));
    }
    let start = kv.len();
    let window = window.min(n).min(state.max_batch());
    let done = prefill(model, pool, state, kv, tokens, window, cancelled);
    let capture_ms = state.capture_seconds() * 1000.0;
    state.set_probe(Probe::default());
    if !done? {
        return Ok(None);
    }
    let started = Instant::now();
    let scores = state.slot_scores().get(start..start + n).ok_or_else(|| {
        Error::Internal(format!("snapkv: {} slot scores for {n} tokens", state.slot_scores().len()))
    })?;
    let keep = choose(scores, protected, opts, window, budget);
    let flags: Vec<bool> = std::iter::repeat_n(true, start).chain(keep.iter().copied()).collect();
    kv.retain(&flags)?;
    let scoring_ms = capture_ms + started.elapsed().as_secs_f64() * 1000.0;
    Ok(Some(Compressed { keep, scoring_ms }))
}

/// The new slots to keep: the protected ones and the observation window, then the
/// best-scored after pooling, `budget` in all (more when the protected ones are more).
fn choose(
    scores: &[f32],
    protected: &Protected,
    opts: &PruneOptions,
    window: usize,
    budget: usize,
) -> Vec<bool> {
    let n = scores.len();
    let mut mask = protected.mask(n, opts.keep_first, opts.keep_last);
    mask[n - window..].iter_mut().for_each(|m| *m = true);
    // Kept slots' scores (the attention sinks among them) must not spill onto neighbours.
    let free: Vec<f32> = scores.iter().zip(&mask).map(|(&s, &p)| if p { 0.0 } else { s }).collect();
    let pooled = max_pool(&free, POOL_RADIUS);
    // Among equal pooled scores the peak itself goes first, then the later token.
    let mut order: Vec<usize> = (0..n).filter(|&i| !mask[i]).collect();
    order.sort_by(|&a, &b| {
        pooled[b].total_cmp(&pooled[a]).then(free[b].total_cmp(&free[a])).then(b.cmp(&a))
    });
    let room = budget.saturating_sub(mask.iter().filter(|m| **m).count());
    order.into_iter().take(room).for_each(|i| mask[i] = true);
    mask
}

/// Runs `tokens` in batches of the state's size, the last `window` of them as a batch
/// of their own whose rows are captured (pooled, every layer; none when `window` is 0).
/// Only the last batch asks for logits. False when `cancelled` said stop.
fn prefill(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    window: usize,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool> {
    let (head, tail) = tokens.split_at(tokens.len() - window);
    let batches: Vec<&[u32]> =
        head.chunks(state.max_batch()).chain(Some(tail).filter(|t| !t.is_empty())).collect();
    for (i, batch) in batches.iter().enumerate() {
        if cancelled() {
            return Ok(false);
        }
        let last = i + 1 == batches.len();
        if last && window > 0 {
            state.set_probe(Probe { attention_rows: window, pooled: true, ..Probe::default() });
        }
        forward(model, pool, state, kv, batch, if last { Logits::Last } else { Logits::None })?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::Budget;

    #[test]
    fn the_window_and_protected_tokens_stay_and_peaks_bring_neighbours() {
        let opts = PruneOptions {
            keep_first: 1,
            keep_last: 1,
            ..PruneOptions::new(Strategy::SnapKv { window: 2 }, Budget::Tokens(7))
        };
        let mut scores = vec![0.0f32; 20];
        scores[0] = 9.0; // a sink: protected, its score must not lift slots 1..=3
        scores[10] = 1.0;
        let keep = choose(&scores, &Protected::default(), &opts, 2, 7);
        let kept: Vec<usize> = (0..20).filter(|&i| keep[i]).collect();
        // 0 (first), 18 and 19 (window and last), then the peak at 10 and its later
        // neighbours (equal pooled scores: the peak first, then the later token).
        assert_eq!(kept, [0, 10, 11, 12, 13, 18, 19]);
        let keep = choose(&scores, &Protected::default(), &opts, 2, 5);
        let kept: Vec<usize> = (0..20).filter(|&i| keep[i]).collect();
        assert_eq!(kept, [0, 10, 13, 18, 19]);
    }
}
