//! Self-information (after Selective Context, Li et al. 2023): text the model could have
//! guessed carries little, so sentences whose tokens surprise the model least go first.
//! Selective Context scores with a full pass of a small model; here the surprisal comes
//! from early exit: the first `layer` layers run over the prompt, and the final norm and
//! output head read their residual stream (`-ln p` of each token given the ones before).
//!
//! Cost: `layer / n_layers` of a prefill, plus the output head over every token, which is
//! not small: a fifth of SmolLM2's weights, more than half of Gemma 3 270M's (its 262k
//! vocabulary). Small models read nothing useful from their middle layers (see
//! [`exit_layer`]), so the exit comes late and scoring costs about a prefill: this
//! strategy saves memory and context (the kept cache), not time to first token.

use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Logits, Model, Probe, forward};
use crate::threads::ThreadPool;

/// The exit layer (1-based: surprisal read after the `k`-th layer), checked against the
/// model; `None` skips only the last two layers. Earlier exits read noise through the
/// output head: passkey at 2k tokens keeping 20 %, SmolLM2 (30 layers) finds the key
/// exiting after 28 layers and never after 26 or 22; Gemma 3 270M after 16 of 18.
pub(super) fn exit_layer(model: &Model, layer: Option<usize>) -> Result<usize> {
    let n_layers = model.config.n_layers;
    let k = layer.unwrap_or(n_layers.saturating_sub(2).max(1));
    if k == 0 || k > n_layers {
        return Err(Error::InvalidArgument(format!(
            "prune exit layer {k} is outside this model's layers 1..={n_layers}"
        )));
    }
    Ok(k)
}

/// One score per token of `tokens` (appended after the cache's slots): its surprisal
/// after `layer` layers, in nats. The first token has no predecessor in the batch and
/// scores 0 (the first tokens are protected anyway). The cache is truncated back (a
/// sliding-window cache may come back shorter: read `kv.len()`).
pub(super) fn scores(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    layer: usize,
) -> Result<Vec<f32>> {
    super::scoring_pass(state, kv, |state, kv| {
        state.set_probe(Probe { layers: Some(layer), early_exit: true, ..Probe::default() });
        let mut scores = Vec::with_capacity(tokens.len());
        scores.push(0.0);
        let batch = state.max_batch();
        for (i, chunk) in tokens.chunks(batch).enumerate() {
            forward(model, pool, state, kv, chunk, Logits::None)?;
            // Row j of this chunk predicts token i * batch + j + 1.
            let from = i * batch + 1;
            let next = &tokens[from..(from + chunk.len()).min(tokens.len())];
            scores.extend(state.early_exit_surprisal(model, pool, next)?);
        }
        Ok(scores)
    })
}
