//! Teacher-forced scoring: the model's distribution at every step of a given
//! continuation, the comparison the reference tests (and `joule score`) use.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::kv_cache::KvType;
use crate::model::{ForwardState, KvCache, Logits, Model, forward};
use crate::sampling::log_softmax;
use crate::threads::ThreadPool;

/// The distribution after the prompt and the first `step` continuation tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepScore {
    pub step: usize,
    /// The `top` most likely `(token, natural-log probability)`, most likely first.
    pub top: Vec<(u32, f32)>,
    /// Log-probabilities of every token, when asked for.
    #[serde(skip)]
    pub log_probs: Vec<f32>,
}

/// Scores `continuation` after `prompt`: one step per continuation token (the
/// distribution that token was drawn from). `keep_full` keeps every log-probability.
/// The KV cache is f32 (see [`score_kv`]).
pub fn score(
    model: &Model,
    pool: &ThreadPool,
    max_batch: usize,
    prompt: &[u32],
    continuation: &[u32],
    top: usize,
    keep_full: bool,
) -> Result<Vec<StepScore>> {
    score_kv(model, pool, max_batch, KvType::F32, prompt, continuation, top, keep_full)
}

/// [`score`] with a KV cache of `kv_type`.
#[allow(clippy::too_many_arguments)]
pub fn score_kv(
    model: &Model,
    pool: &ThreadPool,
    max_batch: usize,
    kv_type: KvType,
    prompt: &[u32],
    continuation: &[u32],
    top: usize,
    keep_full: bool,
) -> Result<Vec<StepScore>> {
    if prompt.is_empty() {
        return Err(Error::InvalidArgument("scoring needs at least one prompt token".into()));
    }
    // Every id, the last continuation token included (it is compared, never fed).
    let n_vocab = model.config.n_vocab;
    let ids = prompt.iter().map(|&id| ("prompt", id)).enumerate();
    let ids = ids.chain(continuation.iter().map(|&id| ("continuation", id)).enumerate());
    if let Some((index, (part, id))) = ids.clone().find(|(_, (_, id))| *id as usize >= n_vocab) {
        return Err(Error::InvalidArgument(format!(
            "{part} token {index} is id {id}, outside the vocabulary of {n_vocab} tokens \
             (ids 0 to {})",
            n_vocab - 1
        )));
    }
    // The last continuation token is never fed: nothing is predicted after it.
    let mut input: Vec<u32> = prompt.to_vec();
    input.extend_from_slice(&continuation[..continuation.len().saturating_sub(1)]);
    let mut kv = KvCache::with_type(&model.config, input.len(), kv_type)?;
    let mut state = ForwardState::new(model, max_batch.min(input.len()));
    let first_wanted = prompt.len() - 1;
    let mut steps = Vec::with_capacity(continuation.len());
    let mut done = 0;
    for chunk in input.chunks(state.max_batch()) {
        let wanted = done + chunk.len() > first_wanted;
        forward(
            model,
            pool,
            &mut state,
            &mut kv,
            chunk,
            if wanted { Logits::All } else { Logits::None },
        )?;
        if wanted {
            for row in 0..chunk.len() {
                let pos = done + row;
                if pos < first_wanted {
                    continue;
                }
                let lp = log_softmax(state.logits_row(row));
                steps.push(StepScore {
                    step: pos - first_wanted,
                    top: top_k(&lp, top),
                    log_probs: if keep_full { lp } else { Vec::new() },
                });
            }
        }
        done += chunk.len();
    }
    Ok(steps)
}

/// The `k` largest entries as `(index, value)`, largest first (lowest index on ties).
pub fn top_k(values: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..values.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| values[*b as usize].total_cmp(&values[*a as usize]).then(a.cmp(b));
    let k = k.min(idx.len());
    if k > 0 && k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, values[i as usize])).collect()
}

impl super::Session {
    /// Teacher-forces `continuation` after the cache's first `slots` slots (the prompt a
    /// pruned or compressed turn left, without its answer): the log-probabilities that
    /// predict `continuation[1..]`, each after the tokens before it. The first token's
    /// distribution is the turn's own (a compressed cache's was computed before the
    /// compression). The cache is left holding the slots and the fed tokens. For
    /// evaluations.
    pub(crate) fn score_after_slots(
        &mut self,
        slots: usize,
        continuation: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        let fed = &continuation[..continuation.len().saturating_sub(1)];
        if slots == 0 || slots > self.kv.len() || fed.len() > self.kv.capacity() - slots {
            return Err(Error::InvalidArgument(format!(
                "cannot score {} tokens after {slots} of {} cache slots",
                continuation.len(),
                self.kv.len()
            )));
        }
        self.kv.truncate(slots);
        self.map = super::cache_map::CacheMap::of_cache(self.kv.tokens());
        if self.kv.len() != slots {
            return Err(Error::InvalidArgument("the sliding window dropped those slots".into()));
        }
        let engine = std::sync::Arc::clone(&self.engine);
        let mut out = Vec::with_capacity(fed.len());
        for chunk in fed.chunks(self.state.max_batch()) {
            forward(
                engine.model(),
                engine.pool(),
                &mut self.state,
                &mut self.kv,
                chunk,
                Logits::All,
            )?;
            out.extend((0..chunk.len()).map(|r| log_softmax(self.state.logits_row(r))));
        }
        self.map = super::cache_map::CacheMap::of_cache(self.kv.tokens());
        Ok(out)
    }
}
