//! Early-layer selection (after GemFilter, Shi et al. 2024): a model's early layers
//! already attend to the tokens a question needs. Run the first `k` layers over the
//! prompt, read the attention the last query rows pay each token at layer `k` (summed
//! over heads and rows), and rank tokens by it.
//!
//! Cost: about `k / n_layers` of a prefill (no output head), plus the attention rows
//! of one layer.

use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Logits, Model, Probe, forward};
use crate::threads::ThreadPool;

use super::default_filter_layer;

/// The filter layer (1-based: the scores come from the `k`-th layer's attention),
/// checked against the model.
pub(super) fn filter_layer(model: &Model, layer: Option<usize>) -> Result<usize> {
    let c = &model.config;
    let k = layer.unwrap_or_else(|| default_filter_layer(model));
    if k == 0 || k > c.n_layers {
        return Err(Error::InvalidArgument(format!(
            "prune filter layer {k} is outside this model's layers 1..={}",
            c.n_layers
        )));
    }
    if c.is_local_layer(k - 1) {
        let global: Vec<String> =
            (1..=c.n_layers).filter(|&l| !c.is_local_layer(l - 1)).map(|l| l.to_string()).collect();
        return Err(Error::InvalidArgument(format!(
            "prune filter layer {k} attends through a sliding window and cannot see the whole \
             prompt; choose one of the layers {}",
            global.join(", ")
        )));
    }
    Ok(k)
}

/// One score per token of `tokens` (appended after the cache's slots): the attention
/// the last `rows` prompt rows pay it at layer `layer`. The cache is truncated back
/// (a sliding-window cache may come back shorter: read `kv.len()`).
pub(super) fn scores(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    layer: usize,
    rows: usize,
) -> Result<Vec<f32>> {
    if rows == 0 {
        return Err(Error::InvalidArgument("prune: 0 attention rows rank nothing".into()));
    }
    let start = kv.len();
    let result = probe_pass(model, pool, state, kv, tokens, layer, rows);
    state.set_probe(Probe::default());
    kv.truncate(start);
    result
}

fn probe_pass(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    layer: usize,
    rows: usize,
) -> Result<Vec<f32>> {
    let start = kv.len();
    let n_head = model.config.n_head;
    let chunks = tokens.chunks(state.max_batch()).count();
    let mut captured = 0;
    for (i, chunk) in tokens.chunks(state.max_batch()).enumerate() {
        let last = i + 1 == chunks;
        captured = if last { rows.min(chunk.len()) } else { 0 };
        let probe =
            Probe { layers: Some(layer), attention_rows: captured, capture_from: layer - 1 };
        state.set_probe(probe);
        forward(model, pool, state, kv, chunk, Logits::None)?;
    }
    let mut scores = vec![0.0f32; tokens.len()];
    for r in 0..captured {
        for h in 0..n_head {
            let row = &state.captured_attention(layer - 1, r, h, n_head)[start..];
            scores.iter_mut().zip(row).for_each(|(s, p)| *s += p);
        }
    }
    Ok(max_pool(&scores, POOL_RADIUS))
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

#[cfg(test)]
mod tests {
    use super::max_pool;

    #[test]
    fn pooling_lifts_the_neighbours_of_a_peak() {
        let pooled = max_pool(&[0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 1.0], 3);
        assert_eq!(pooled, [0.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 1.0]);
    }
}
