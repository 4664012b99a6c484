//! The key/value cache: one slot per processed token, in position order, with keys
//! stored after rotary embedding, in the engine's [`KvType`]. Entries can be dropped and
//! the rest compacted; each slot keeps the position it was rotated with, so RoPE stays
//! right after eviction ([`super::kv_shift::evict`] renumbers them instead).
//!
//! Memory is reserved lazily: the layers hold room for a chunk of slots and grow (by
//! doubling, up to the capacity) as tokens arrive, so a 32k context does not commit
//! 32k slots up front. Keys are stored transposed (see [`super::kv_layer`]).
//!
//! Sliding-window layers (Gemma 3's local layers, 5 of every 6) hold only the slots their
//! window can still see: slot `s` at index `s - window_base` of a buffer of about two
//! windows. When a batch does not fit, the slots no new token can see are dropped and
//! the rest moved to the front (about one slot moved per token, amortized).

use crate::error::{Error, Result};
use crate::kernels::kv_block::KvSlice;
use crate::model::config::ModelConfig;
use crate::model::kv_layer::KvLayer;
pub use crate::model::kv_layer::KvType;

/// Slots reserved up front, and the smallest growth step.
const FIRST_CHUNK: usize = 256;

#[derive(Debug)]
pub struct KvCache {
    capacity: usize,
    kv_dim: usize,
    kv_type: KvType,
    /// Slots the layers have room for (the keys' row stride), at most `capacity`.
    stride: usize,
    layers: Vec<KvLayer>,
    /// Token id of each used slot.
    tokens: Vec<u32>,
    /// Rope position of each used slot.
    positions: Vec<u32>,
    /// Position the next token takes (one past the last processed token, even after
    /// slots were evicted).
    next_position: u32,
    /// The sliding window of the windowed layers, in positions (None: no such layers).
    window: Option<usize>,
    /// Whether each layer is a windowed one.
    windowed: Vec<bool>,
    /// The first slot the windowed layers hold.
    window_base: usize,
    /// Slots the windowed layers have room for (their keys' row stride).
    window_stride: usize,
}

impl KvCache {
    /// An f32 cache for `capacity` tokens.
    pub fn new(cfg: &ModelConfig, capacity: usize) -> Result<Self> {
        Self::with_type(cfg, capacity, KvType::F32)
    }

    /// A cache for `capacity` tokens in `kv_type`; memory is reserved as slots are used.
    pub fn with_type(cfg: &ModelConfig, capacity: usize, kv_type: KvType) -> Result<Self> {
        let kv_dim = cfg.kv_dim();
        if kv_type == KvType::Q8_0 && !cfg.head_dim.is_multiple_of(32) {
            return Err(Error::InvalidArgument(format!(
                "the q8_0 KV cache needs a head size that is a multiple of 32 (this model's is {})",
                cfg.head_dim
            )));
        }
        // Keys and values of every layer at full context: computed in u128 so no product
        // can wrap.
        let bytes = capacity as u128 * kv_type.row_bytes(kv_dim) as u128 * 2 * cfg.n_layers as u128;
        let too_large = |reason: String| Error::KvCacheTooLarge { capacity, bytes, reason };
        capacity
            .checked_mul(kv_dim)
            .and_then(|n| n.checked_mul(2 * cfg.n_layers))
            .filter(|&n| n <= isize::MAX as usize / 8)
            .ok_or_else(|| too_large("larger than the address space".into()))?;
        // Memory is reserved as slots are used, but a context the allocator could never
        // give is refused now (an untouched reservation costs no resident memory).
        let total = usize::try_from(bytes)
            .map_err(|_| too_large("larger than the address space".into()))?;
        let mut probe: Vec<u8> = Vec::new();
        probe.try_reserve_exact(total).map_err(|e| too_large(e.to_string()))?;
        drop(probe);
        let stride = capacity.min(FIRST_CHUNK);
        let windowed: Vec<bool> = (0..cfg.n_layers).map(|l| cfg.is_local_layer(l)).collect();
        let window = cfg.block.sliding_window.map(|w| w.window).filter(|_| windowed.contains(&true));
        // Two windows: a shift every window's worth of tokens.
        let window_stride = window.map_or(stride, |w| capacity.min(2 * w.max(1)));
        let layers = windowed
            .iter()
            .map(|&w| KvLayer::new(kv_type, kv_dim, if w { window_stride } else { stride }))
            .collect::<Result<Vec<_>>>()?;
        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        tokens.try_reserve_exact(stride).map_err(|e| too_large(e.to_string()))?;
        positions.try_reserve_exact(stride).map_err(|e| too_large(e.to_string()))?;
        Ok(Self {
            capacity,
            kv_dim,
            kv_type,
            stride,
            layers,
            tokens,
            positions,
            next_position: 0,
            window,
            windowed,
            window_base: 0,
            window_stride,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn kv_type(&self) -> KvType {
        self.kv_type
    }

    /// Slots the layers currently have room for (the keys' row stride).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Slots in use.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn free(&self) -> usize {
        self.capacity - self.len()
    }

    /// Tokens held, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn positions(&self) -> &[u32] {
        &self.positions
    }

    pub fn next_position(&self) -> u32 {
        self.next_position
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.next_position = 0;
        self.window_base = 0;
    }

    /// Keeps the first `n` slots (a conversation rewound to a common prefix). When the
    /// windowed layers no longer hold what the token after them would see, nothing is
    /// kept: read [`KvCache::len`] for what is left.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        if n > 0 && self.window.is_some() {
            let next = self.positions[n - 1] + 1;
            if self.first_visible(&self.positions[..n], next) < self.window_base {
                self.clear();
                return;
            }
        }
        self.tokens.truncate(n);
        self.positions.truncate(n);
        self.next_position = self.positions.last().map_or(0, |p| p + 1);
        if n == 0 {
            self.window_base = 0;
        }
    }

    /// The first of `positions`' slots a token at position `pos` sees in a windowed layer.
    fn first_visible(&self, positions: &[u32], pos: u32) -> usize {
        let w = self.window.unwrap_or(usize::MAX);
        positions.partition_point(|&p| (p as usize).saturating_add(w) <= pos as usize)
    }

    /// Drops the slots for which `keep` is false and compacts the rest, keeping their
    /// order and rope positions. The next token still takes the next position.
    pub fn retain(&mut self, keep: &[bool]) -> Result<()> {
        if keep.len() != self.len() {
            return Err(Error::InvalidArgument(format!(
                "{} keep flags for {} cache slots",
                keep.len(),
                self.len()
            )));
        }
        let (d, stride, wstride, base) =
            (self.kv_dim, self.stride, self.window_stride, self.window_base);
        // The windowed layers keep the kept slots from their base on.
        let new_base = keep[..base].iter().filter(|k| **k).count();
        let mut dst = 0;
        for (src, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            if dst != src {
                for (layer, &windowed) in self.layers.iter_mut().zip(&self.windowed) {
                    if !windowed {
                        layer.move_slot(d, stride, src, dst);
                    } else if src >= base {
                        layer.move_slot(d, wstride, src - base, dst - new_base);
                    }
                }
                self.tokens[dst] = self.tokens[src];
                self.positions[dst] = self.positions[src];
            }
            dst += 1;
        }
        self.tokens.truncate(dst);
        self.positions.truncate(dst);
        self.window_base = new_base;
        Ok(())
    }

    /// Makes room for `slots` slots (at most the capacity): doubles the reservation
    /// until it fits, re-laying the transposed keys out for the new stride.
    pub(crate) fn reserve_slots(&mut self, slots: usize) -> Result<()> {
        if slots <= self.stride {
            return Ok(());
        }
        let mut new = self.stride.max(FIRST_CHUNK);
        while new < slots {
            new = new.saturating_mul(2);
        }
        let new = new.min(self.capacity).max(slots);
        let (d, old, used) = (self.kv_dim, self.stride, self.len());
        for (layer, _) in self.layers.iter_mut().zip(&self.windowed).filter(|(_, w)| !**w) {
            layer.grow(d, old, new, used)?;
        }
        let oom = |_| Error::InvalidArgument("KV cache: out of memory".into());
        self.tokens.try_reserve_exact(new - used).map_err(oom)?;
        self.positions.try_reserve_exact(new - used).map_err(oom)?;
        self.stride = new;
        Ok(())
    }

    /// Appends `tokens` at the next positions (their keys and values are written by the
    /// forward pass through `store`) and returns the first new slot.
    pub(crate) fn push_tokens(&mut self, tokens: &[u32]) -> Result<usize> {
        debug_assert!(tokens.len() <= self.free());
        self.reserve_slots(self.len() + tokens.len())?;
        self.window_room(tokens.len())?;
        let first = self.len();
        for &t in tokens {
            self.tokens.push(t);
            self.positions.push(self.next_position);
            self.next_position += 1;
        }
        Ok(first)
    }

    /// Room in the windowed layers for `n` more slots: first by dropping the slots no new
    /// token can see (moving the rest to the front), then by growing.
    fn window_room(&mut self, n: usize) -> Result<()> {
        if self.window.is_none() || self.len() + n - self.window_base <= self.window_stride {
            return Ok(());
        }
        let keep_from =
            self.first_visible(&self.positions, self.next_position).max(self.window_base);
        let (d, wstride, base) = (self.kv_dim, self.window_stride, self.window_base);
        let held = self.len() - keep_from;
        if keep_from > base {
            for (layer, _) in self.layers.iter_mut().zip(&self.windowed).filter(|(_, w)| **w) {
                for i in 0..held {
                    layer.move_slot(d, wstride, keep_from - base + i, i);
                }
            }
            self.window_base = keep_from;
        }
        let need = held + n;
        if need > self.window_stride {
            let mut new = self.window_stride.max(1);
            while new < need {
                new = new.saturating_mul(2);
            }
            let new = new.min(self.capacity).max(need);
            for (layer, _) in self.layers.iter_mut().zip(&self.windowed).filter(|(_, w)| **w) {
                layer.grow(d, wstride, new, held)?;
            }
            self.window_stride = new;
        }
        Ok(())
    }

    /// One layer's keys (`[kv_dim, stride]`) and values (`[stride, kv_dim]`), the
    /// stride, and the cache slot of its first row (not 0 for a windowed layer once its
    /// window has moved on).
    pub(crate) fn layer(&self, layer: usize) -> (KvSlice<'_>, usize, usize) {
        let slice = self.layers[layer].slice();
        if self.windowed[layer] {
            (slice, self.window_stride, self.window_base)
        } else {
            (slice, self.stride, 0)
        }
    }

    /// Writes the keys and values (`[n, kv_dim]` each) of `n` tokens from `first_slot`.
    pub(crate) fn store(&mut self, layer: usize, first_slot: usize, k: &[f32], v: &[f32]) {
        let (_, stride, base) = self.layer(layer);
        let d = self.kv_dim;
        let layer = &mut self.layers[layer];
        for (i, (kr, vr)) in k.chunks_exact(d).zip(v.chunks_exact(d)).enumerate() {
            layer.store(d, stride, first_slot - base + i, kr, vr);
        }
    }

    /// Bytes reserved for keys and values now (grows with use, see [`KvCache::with_type`]).
    pub fn bytes_reserved(&self) -> usize {
        self.layers.iter().map(KvLayer::bytes).sum()
    }

    /// Bytes keys and values would take with every slot of the capacity in use.
    pub fn bytes_at_capacity(&self) -> usize {
        let per_value = self.kv_type.bytes_per_value();
        (2.0 * self.layers.len() as f64 * self.capacity as f64 * self.kv_dim as f64 * per_value)
            as usize
    }
}

impl KvCache {
    /// Layers that keep only a sliding window of slots.
    pub(crate) fn windowed_layers(&self) -> usize {
        self.windowed.iter().filter(|w| **w).count()
    }

    /// The first slot the windowed layers save: the first one the next token sees (0
    /// without such layers).
    pub(crate) fn window_saved_from(&self) -> usize {
        if self.window.is_none() {
            return 0;
        }
        self.first_visible(&self.positions, self.next_position).max(self.window_base)
    }

    /// The saved slots' keys and values in the cache's type: per layer, per slot, the key
    /// row then the value row (see `session_file`); every used slot of a full layer, the
    /// slots from [`KvCache::window_saved_from`] of a windowed one.
    pub(crate) fn export_data(&self) -> Vec<u8> {
        let d = self.kv_dim;
        let from = self.window_saved_from();
        let mut out = Vec::new();
        for l in 0..self.layers.len() {
            let (_, stride, base) = self.layer(l);
            let first = if self.windowed[l] { from } else { 0 };
            for slot in first..self.len() {
                self.layers[l].export_slot(d, stride, slot - base, &mut out);
            }
        }
        out
    }

    /// A new cache holding `tokens` at `positions` with `data` as written by
    /// [`KvCache::export_data`]: the windowed layers' rows start at slot `windowed_from`
    /// (None: every layer has every slot, as files of format 1). The section sizes were
    /// validated by the caller; the window is checked here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn import(
        cfg: &ModelConfig,
        capacity: usize,
        kv_type: KvType,
        tokens: &[u32],
        positions: &[u32],
        next_position: u32,
        windowed_from: Option<usize>,
        data: &[u8],
    ) -> Result<Self> {
        let used = tokens.len();
        let mut kv = Self::with_type(cfg, capacity, kv_type)?;
        if used > capacity || positions.len() != used {
            return Err(Error::InvalidArgument("saved cache does not fit the context".into()));
        }
        kv.reserve_slots(used)?;
        let from = windowed_from.unwrap_or(0);
        // The windowed layers hold what the next token sees, which the file must have.
        let base = if kv.window.is_some() { kv.first_visible(positions, next_position) } else { 0 };
        if from > used || (kv.window.is_some() && from > base) {
            return Err(Error::InvalidArgument(
                "saved cache lacks keys its sliding-window layers need".into(),
            ));
        }
        kv.window_base = base;
        kv.window_room_for(used - base)?;
        let slot_bytes = 2 * kv_type.row_bytes(kv.kv_dim);
        let rows: usize =
            kv.windowed.iter().map(|&w| if w && kv.window.is_some() { used - from } else { used }).sum();
        if data.len() != slot_bytes * rows {
            return Err(Error::InvalidArgument("saved cache data has the wrong size".into()));
        }
        let d = kv.kv_dim;
        let mut at = 0;
        for l in 0..kv.layers.len() {
            let (_, stride, layer_base) = kv.layer(l);
            let first = if kv.windowed[l] && kv.window.is_some() { from } else { 0 };
            for slot in first..used {
                let bytes = &data[at..at + slot_bytes];
                at += slot_bytes;
                if slot >= layer_base {
                    kv.layers[l].import_slot(d, stride, slot - layer_base, bytes);
                }
            }
        }
        kv.tokens.extend_from_slice(tokens);
        kv.positions.extend_from_slice(positions);
        kv.next_position = next_position;
        Ok(kv)
    }

    /// Grows the windowed layers (holding nothing yet) to at least `slots` slots.
    fn window_room_for(&mut self, slots: usize) -> Result<()> {
        if slots <= self.window_stride {
            return Ok(());
        }
        let d = self.kv_dim;
        for (layer, _) in self.layers.iter_mut().zip(&self.windowed).filter(|(_, w)| **w) {
            layer.grow(d, self.window_stride, slots, 0)?;
        }
        self.window_stride = slots;
        Ok(())
    }
}

impl KvCache {
    /// Layers and channels per slot, to check that a cache belongs to a model.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.layers.len(), self.kv_dim)
    }

    /// The sliding window of the windowed layers and the first slot they hold (None
    /// without such layers).
    pub(crate) fn window_held(&self) -> Option<(usize, usize)> {
        self.window.map(|w| (w, self.window_base))
    }

    /// Whether layer `layer` holds slot `slot`'s key and value.
    pub(crate) fn holds(&self, layer: usize, slot: usize) -> bool {
        slot < self.len() && (!self.windowed[layer] || slot >= self.window_base)
    }

    /// Slot `slot`'s key at layer `layer` as f32 (the layer must hold it).
    pub(crate) fn read_key(&self, layer: usize, slot: usize, out: &mut [f32]) {
        let (_, stride, base) = self.layer(layer);
        self.layers[layer].read_key(self.kv_dim, stride, slot - base, out);
    }

    /// Overwrites slot `slot`'s key at layer `layer` (the layer must hold it).
    pub(crate) fn write_key(&mut self, layer: usize, slot: usize, k: &[f32]) {
        let (_, stride, base) = self.layer(layer);
        self.layers[layer].write_key(self.kv_dim, stride, slot - base, k);
    }

    /// Numbers the slots' positions `0..len` and the next token's `len` (the keys must
    /// have been rotated to match).
    pub(crate) fn renumber(&mut self) {
        for (i, p) in self.positions.iter_mut().enumerate() {
            *p = i as u32;
        }
        self.next_position = self.positions.len() as u32;
    }
}
