//! The key/value cache: one slot per processed token, in position order, with keys
//! stored after rotary embedding. Entries can be dropped and the rest compacted; each
//! slot keeps the position it was rotated with, so RoPE stays right after eviction.
//!
//! Keys are stored transposed (`[kv_dim, capacity]`: one row per channel) so attention
//! scores for 8 or 16 slots at a time are plain vector multiply-adds, with no horizontal
//! sums; values are slot-major (`[capacity, kv_dim]`).

use crate::error::{Error, Result};
use crate::model::config::ModelConfig;

#[derive(Debug)]
pub struct KvCache {
    capacity: usize,
    kv_dim: usize,
    /// Per layer `[kv_dim, capacity]`: keys after rope, transposed.
    k: Vec<Vec<f32>>,
    /// Per layer `[capacity, kv_dim]`.
    v: Vec<Vec<f32>>,
    /// Token id of each used slot.
    tokens: Vec<u32>,
    /// Rope position of each used slot.
    positions: Vec<u32>,
    /// Position the next token takes (one past the last processed token, even after
    /// slots were evicted).
    next_position: u32,
}

impl KvCache {
    /// Reserves a cache for `capacity` tokens. Memory is zero-initialised by the
    /// allocator, so pages become resident only as slots are written.
    pub fn new(cfg: &ModelConfig, capacity: usize) -> Result<Self> {
        let kv_dim = cfg.kv_dim();
        // Keys and values, f32, per layer: computed in u128 so no product can wrap.
        let bytes = capacity as u128 * kv_dim as u128 * 4 * 2 * cfg.n_layers as u128;
        let too_large = |reason: String| Error::KvCacheTooLarge { capacity, bytes, reason };
        let per_layer = capacity
            .checked_mul(kv_dim)
            .filter(|&n| n <= isize::MAX as usize / 8)
            .ok_or_else(|| too_large("larger than the address space".into()))?;
        // Ask the allocator for the whole cache once, untouched, before committing to it:
        // an impossible size is an error here instead of an abort in `vec!` below.
        let total = usize::try_from(bytes / 4)
            .map_err(|_| too_large("larger than the address space".into()))?;
        let mut probe: Vec<f32> = Vec::new();
        probe.try_reserve_exact(total).map_err(|e| too_large(e.to_string()))?;
        drop(probe);
        Ok(Self {
            capacity,
            kv_dim,
            k: (0..cfg.n_layers).map(|_| vec![0.0; per_layer]).collect(),
            v: (0..cfg.n_layers).map(|_| vec![0.0; per_layer]).collect(),
            tokens: Vec::with_capacity(capacity),
            positions: Vec::with_capacity(capacity),
            next_position: 0,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
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
        let (d, cap) = (self.kv_dim, self.capacity);
        let mut dst = 0;
        for src in 0..self.len() {
            if !keep[src] {
                continue;
            }
            if dst != src {
                for layer in &mut self.k {
                    for c in 0..d {
                        layer[c * cap + dst] = layer[c * cap + src];
                    }
                }
                for layer in &mut self.v {
                    layer.copy_within(src * d..(src + 1) * d, dst * d);
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

    /// Appends `tokens` at the next positions (their keys and values are written by the
    /// forward pass through `layer_mut`) and returns the first new slot.
    pub(crate) fn push_tokens(&mut self, tokens: &[u32]) -> usize {
        debug_assert!(tokens.len() <= self.free());
        let first = self.len();
        for &t in tokens {
            self.tokens.push(t);
            self.positions.push(self.next_position);
            self.next_position += 1;
        }
        first
    }

    /// Keys (`[kv_dim, capacity]`) and values (`[capacity, kv_dim]`) of one layer.
    pub(crate) fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.k[layer], &self.v[layer])
    }

    /// Writes the keys and values (`[n, kv_dim]` each) of `n` tokens from `first_slot`.
    pub(crate) fn store(&mut self, layer: usize, first_slot: usize, k: &[f32], v: &[f32]) {
        let (d, cap) = (self.kv_dim, self.capacity);
        let n = k.len() / d;
        let kt = &mut self.k[layer];
        for (i, row) in k.chunks_exact(d).enumerate() {
            for (c, &x) in row.iter().enumerate() {
                kt[c * cap + first_slot + i] = x;
            }
        }
        self.v[layer][first_slot * d..(first_slot + n) * d].copy_from_slice(v);
    }

    /// Bytes reserved for keys and values.
    pub fn bytes_reserved(&self) -> usize {
        2 * self.k.len() * self.capacity * self.kv_dim * std::mem::size_of::<f32>()
    }
}
