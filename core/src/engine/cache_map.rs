//! Which tokens of a conversation the KV cache holds. Without pruning the cache holds
//! every token it was given; a pruned prompt leaves out tokens, so the cache's slots
//! stand for a longer sequence. A new turn's prompt reuses the cache as far as it starts
//! like that sequence.

/// The token sequence the cache stands for, and which of its tokens have a slot.
#[derive(Debug, Clone, Default)]
pub(super) struct CacheMap {
    tokens: Vec<u32>,
    cached: Vec<bool>,
    slots: usize,
}

impl CacheMap {
    /// A map of a cache that holds exactly `tokens` (a new or restored session).
    pub(super) fn of_cache(tokens: &[u32]) -> Self {
        Self { tokens: tokens.to_vec(), cached: vec![true; tokens.len()], slots: tokens.len() }
    }

    /// Whether every token the map stands for has a slot (no pruned prompt).
    pub(super) fn is_complete(&self) -> bool {
        self.slots == self.tokens.len()
    }

    /// Cache slots the map accounts for.
    pub(super) fn slots(&self) -> usize {
        self.slots
    }

    /// The longest prefix of `tokens` (at most `limit` tokens) the cache stands for, and
    /// the slots that prefix takes.
    pub(super) fn reusable(&self, tokens: &[u32], limit: usize) -> (usize, usize) {
        let n = self.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count().min(limit);
        (n, self.cached[..n].iter().filter(|c| **c).count())
    }

    /// Keeps the first `n` tokens.
    pub(super) fn truncate(&mut self, n: usize) {
        self.slots -= self.cached[n.min(self.cached.len())..].iter().filter(|c| **c).count();
        self.tokens.truncate(n);
        self.cached.truncate(n);
    }

    /// Appends `tokens`; `kept[i]` says whether token `i` got a slot.
    pub(super) fn push(&mut self, tokens: &[u32], kept: &[bool]) {
        debug_assert_eq!(tokens.len(), kept.len());
        self.tokens.extend_from_slice(tokens);
        self.cached.extend_from_slice(kept);
        self.slots += kept.iter().filter(|k| **k).count();
    }

    /// Appends tokens that all got slots (generated ones).
    pub(super) fn push_cached(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
        self.cached.resize(self.tokens.len(), true);
        self.slots += tokens.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_counts_only_the_slots_of_kept_tokens() {
        let mut map = CacheMap::of_cache(&[1, 2]);
        map.push(&[3, 4, 5, 6], &[false, true, false, true]);
        map.push_cached(&[7]);
        assert_eq!(map.slots(), 5);
        assert_eq!(map.reusable(&[1, 2, 3, 4, 5, 9], 6), (5, 3));
        assert_eq!(map.reusable(&[1, 2, 3, 4, 5, 6, 7, 8], 7), (7, 5));
        assert_eq!(map.reusable(&[1, 2, 3], 2), (2, 2));
        map.truncate(4);
        assert_eq!(map.slots(), 3);
        assert_eq!(map.reusable(&[1, 2, 3, 4, 5], 5), (4, 3));
    }
}
