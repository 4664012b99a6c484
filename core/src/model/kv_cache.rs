//! The key/value cache: one slot per processed token, in position order, with keys
//! stored after rotary embedding, in the engine's [`KvType`]. Entries can be dropped and
//! the rest compacted; each slot keeps the position it was rotated with, so RoPE stays
//! right after eviction.
//!
//! Memory is reserved lazily: the layers hold room for a chunk of slots and grow (by
//! doubling, up to the capacity) as tokens arrive, so a 32k context does not commit
//! 32k slots up front. Keys are stored transposed (see [`super::kv_layer`]).

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
        let layers = (0..cfg.n_layers)
            .map(|_| KvLayer::new(kv_type, kv_dim, stride))
            .collect::<Result<Vec<_>>>()?;
        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        tokens.try_reserve_exact(stride).map_err(|e| too_large(e.to_string()))?;
        positions.try_reserve_exact(stride).map_err(|e| too_large(e.to_string()))?;
        Ok(Self { capacity, kv_dim, kv_type, stride, layers, tokens, positions, next_position: 0 })
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
    }

    /// Keeps the first `n` slots (a conversation rewound to a common prefix).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.tokens.truncate(n);
            self.positions.truncate(n);
            self.next_position = self.positions.last().map_or(0, |p| p + 1);
        }
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
        let (d, stride) = (self.kv_dim, self.stride);
        let mut dst = 0;
        for (src, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            if dst != src {
                for layer in &mut self.layers {
                    layer.move_slot(d, stride, src, dst);
                }
                self.tokens[dst] = self.tokens[src];
                self.positions[dst] = self.positions[src];
            }
            dst += 1;
        }
        self.tokens.truncate(dst);
        self.positions.truncate(dst);
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
        for layer in &mut self.layers {
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
        let first = self.len();
        for &t in tokens {
            self.tokens.push(t);
            self.positions.push(self.next_position);
            self.next_position += 1;
        }
        Ok(first)
    }

    /// One layer's keys (`[kv_dim, stride]`) and values (`[stride, kv_dim]`).
    pub(crate) fn layer(&self, layer: usize) -> KvSlice<'_> {
        self.layers[layer].slice()
    }

    /// Writes the keys and values (`[n, kv_dim]` each) of `n` tokens from `first_slot`.
    pub(crate) fn store(&mut self, layer: usize, first_slot: usize, k: &[f32], v: &[f32]) {
        let (d, stride) = (self.kv_dim, self.stride);
        let layer = &mut self.layers[layer];
        for (i, (kr, vr)) in k.chunks_exact(d).zip(v.chunks_exact(d)).enumerate() {
            layer.store(d, stride, first_slot + i, kr, vr);
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
    /// The used slots' keys and values in the cache's type: per layer, per slot, the key
    /// row then the value row (see `session_file`).
    pub(crate) fn export_data(&self) -> Vec<u8> {
        let (d, stride) = (self.kv_dim, self.stride);
        let mut out = Vec::new();
        for layer in &self.layers {
            for slot in 0..self.len() {
                layer.export_slot(d, stride, slot, &mut out);
            }
        }
        out
    }

    /// A new cache holding `tokens` at `positions` with `data` as written by
    /// [`KvCache::export_data`]; the sizes were validated by the caller.
    pub(crate) fn import(
        cfg: &ModelConfig,
        capacity: usize,
        kv_type: KvType,
        tokens: &[u32],
        positions: &[u32],
        next_position: u32,
        data: &[u8],
    ) -> Result<Self> {
        let used = tokens.len();
        let mut kv = Self::with_type(cfg, capacity, kv_type)?;
        if used > capacity || positions.len() != used {
            return Err(Error::InvalidArgument("saved cache does not fit the context".into()));
        }
        kv.reserve_slots(used)?;
        let (d, stride) = (kv.kv_dim, kv.stride);
        let slot_bytes = 2 * kv_type.row_bytes(d);
        if data.len() != slot_bytes * used * kv.layers.len() {
            return Err(Error::InvalidArgument("saved cache data has the wrong size".into()));
        }
        if used > 0 {
            for (layer, bytes) in kv.layers.iter_mut().zip(data.chunks_exact(slot_bytes * used)) {
                for (slot, b) in bytes.chunks_exact(slot_bytes).enumerate() {
                    layer.import_slot(d, stride, slot, b);
                }
            }
        }
        kv.tokens.extend_from_slice(tokens);
        kv.positions.extend_from_slice(positions);
        kv.next_position = next_position;
        Ok(kv)
    }
}
