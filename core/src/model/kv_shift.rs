//! Eviction that keeps rope positions inside the trained context (StreamingLLM, llama.cpp's
//! context shift): the kept slots are renumbered `0..len` and their keys, stored rotated
//! at their old positions, are rotated again by the difference. Rope rotations compose,
//! so a key rotated at `old` then by `new - old` is the key rotated at `new`; values carry
//! no position and stay as they are.
//!
//! With one layer the result is what a fresh run over the kept tokens would have cached.
//! With more, the kept slots' deeper keys and values were computed attending to the
//! evicted tokens (as in llama.cpp's shift): only the positions are made fresh.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::forward::inverse_frequencies;
use crate::model::kv_cache::KvCache;
use crate::model::ops;

/// Keeps the slots flagged in `keep` (one flag per slot), renumbers them `0..len` in
/// order (the next token takes position `len`), and re-rotates every kept key of every
/// layer with that layer's rope so it matches its new position. Returns the number of
/// slots evicted.
///
/// Sliding-window layers (Gemma 3's local ones) hold only the slots their window can
/// still see; renumbering brings kept slots closer to the next token, so an eviction that
/// would make the window reach a kept slot those layers already dropped is refused
/// (`Error::InvalidArgument`, nothing changed): keep at least `window - 1` of the slots
/// they hold, or none of the ones before. Keeping every slot of a cache whose positions
/// are already `0..len` changes nothing.
pub fn evict(model: &Model, kv: &mut KvCache, keep: &[bool]) -> Result<usize> {
    let c = &model.config;
    if keep.len() != kv.len() {
        return Err(Error::InvalidArgument(format!(
            "{} keep flags for {} cache slots",
            keep.len(),
            kv.len()
        )));
    }
    if kv.shape() != (c.n_layers, c.kv_dim()) {
        return Err(Error::InvalidArgument(
            "the KV cache was not made for this model (layers or key width differ)".into(),
        ));
    }
    let kept = keep.iter().filter(|k| **k).count();
    check_window(kv, keep, kept)?;
    kv.retain(keep)?;

    let global = inverse_frequencies(&c.rope, model.weights.rope_freqs.as_deref());
    // Gemma 3's local layers rotate with their own base (as `forward` does).
    let local = c.block.rope_local.as_ref().map(|r| inverse_frequencies(r, None));
    let mut key = vec![0f32; c.kv_dim()];
    let (mut cs_global, mut cs_local) = (Vec::new(), Vec::new());
    for slot in 0..kv.len() {
        let delta = slot as f64 - kv.positions()[slot] as f64;
        if delta == 0.0 {
            continue;
        }
        angles(&global, delta, &mut cs_global);
        if let Some(local) = &local {
            angles(local, delta, &mut cs_local);
        }
        for layer in 0..c.n_layers {
            if !kv.holds(layer, slot) {
                continue;
            }
            let cs =
                if local.is_some() && c.is_local_layer(layer) { &cs_local } else { &cs_global };
            kv.read_key(layer, slot, &mut key);
            ops::rope_row(&mut key, c.head_dim, c.rope.style, cs);
            kv.write_key(layer, slot, &key);
        }
    }
    kv.renumber();
    Ok(keep.len() - kept)
}

/// Flags that keep the first `sinks` and the last `recent` of `len` slots (StreamingLLM's
/// attention sinks and recent window).
pub fn keep_sinks_and_recent(len: usize, sinks: usize, recent: usize) -> Vec<bool> {
    (0..len).map(|i| i < sinks || i + recent >= len).collect()
}

/// (cos, sin) of `delta` positions at each inverse frequency, computed in f64.
fn angles(inv_freq: &[f64], delta: f64, cs: &mut Vec<(f64, f64)>) {
    cs.clear();
    cs.extend(inv_freq.iter().map(|&f| {
        let theta = delta * f;
        (theta.cos(), theta.sin())
    }));
}

/// Refuses an eviction after which the next token's sliding window would reach a kept
/// slot the windowed layers no longer hold.
fn check_window(kv: &KvCache, keep: &[bool], kept: usize) -> Result<()> {
    let Some((window, base)) = kv.window_held() else { return Ok(()) };
    // Kept slots the windowed layers lack, and the first (renumbered) slot the next
    // token at position `kept` sees through the window.
    let lacking = keep[..base].iter().filter(|k| **k).count();
    let first_visible = (kept + 1).saturating_sub(window);
    if lacking > first_visible {
        return Err(Error::InvalidArgument(format!(
            "cannot evict this way: after renumbering, the {window}-position sliding window \
             would reach {} kept slot(s) before slot {base}, whose keys the sliding-window \
             layers already dropped; keep at least {} of the slots from {base} on, or none \
             of the slots before it",
            lacking - first_visible,
            window - 1
        )));
    }
    Ok(())
}
