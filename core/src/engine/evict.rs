//! Endless chat: with [`EvictOptions`] on, a conversation longer than the context keeps
//! going in bounded memory. Before prefill, the oldest turns (user + assistant messages
//! after the system prompt) leave the conversation until the prompt and room for the
//! answer fit, and their cache slots are evicted with [`model::evict`] so the rest of the
//! cache stays reusable (ChatML renders each message on its own; with a template that
//! does not, `reuse_prefix` keeps only the common prefix). While decoding, a full cache
//! evicts a share of its oldest slots after the attention sinks and the system prompt.

use serde::{Deserialize, Serialize};

use super::cache_map::CacheMap;
use super::session::Session;
use crate::chat::ChatMessage;
use crate::error::{Error, Result};
use crate::model;

/// How a conversation longer than the context is kept going.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvictOptions {
    /// First cache slots never evicted while decoding (StreamingLLM's attention sinks);
    /// the system prompt's slots are kept as well.
    pub sinks: usize,
    /// Share of the context freed each time the cache fills while decoding (0 < free ≤ 1).
    pub free: f64,
}

impl Default for EvictOptions {
    fn default() -> Self {
        Self { sinks: 4, free: 0.25 }
    }
}

impl EvictOptions {
    pub fn validate(&self) -> Result<()> {
        if !(self.free > 0.0 && self.free <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "eviction frees a share of the context in (0, 1], not {}",
                self.free
            )));
        }
        Ok(())
    }
}

/// What fitting a chat prompt into the context did.
#[derive(Debug, Clone, Default)]
pub(super) struct Fit {
    /// Messages dropped from the conversation (oldest turns first).
    pub dropped_messages: usize,
    /// Tokens of the dropped messages (as the earlier prompt rendered them).
    pub dropped_tokens: usize,
    /// Leading prompt tokens decode-time eviction keeps (the system prompt).
    pub pinned: usize,
}

impl Session {
    /// Drops the oldest turns of `conversation` (whose last message is the new one) until
    /// `tokens`, its rendering, leaves `room` tokens of the context for the answer, and
    /// evicts their cache slots. Never drops the system prompt or the new message: when
    /// those alone do not fit, nothing changes and `reuse_prefix` reports the overflow.
    pub(super) fn fit_conversation(
        &mut self,
        conversation: &mut Vec<ChatMessage>,
        tokens: &mut Vec<u32>,
        room: usize,
    ) -> Result<Fit> {
        let capacity = self.kv.capacity();
        let start = usize::from(conversation.first().is_some_and(|m| m.role == "system"));
        let last = conversation.len() - 1;
        let mut fit = Fit::default();
        if start == 1 {
            fit.pinned = self.rendered_prefix(&conversation[..1], tokens)?;
        }
        let mut drop_to = start;
        let mut candidate = tokens.clone();
        while candidate.len() + room > capacity && drop_to < last {
            // One turn: a message, then the ones up to the next user message.
            drop_to += 1;
            while drop_to < last && conversation[drop_to].role != "user" {
                drop_to += 1;
            }
            let kept: Vec<ChatMessage> =
                conversation[..start].iter().chain(&conversation[drop_to..]).cloned().collect();
            candidate = self.prompt_tokens(&self.engine.template().render(&kept, true)?)?;
        }
        if drop_to == start || candidate.len() > capacity {
            return Ok(fit);
        }
        // The earlier rendering through the dropped messages, and where the system prompt
        // (or the BOS token) ends in it: the slots in between leave the cache.
        let old =
            self.prompt_tokens(&self.engine.template().render(&conversation[..drop_to], false)?)?;
        let from = if start == 1 {
            self.rendered_prefix(&conversation[..1], &old)?
        } else {
            let bos = self.engine.tokenizer().bos_id();
            usize::from(bos.is_some() && old.first() == bos.as_ref())
        };
        fit.dropped_messages = drop_to - start;
        fit.dropped_tokens = old.len() - from;
        self.evict_range(&old, from);
        conversation.drain(start..drop_to);
        *tokens = candidate;
        Ok(fit)
    }

    /// Evicts the cache slots `from..old.len()` when the cache starts with `old` and holds
    /// every token it stands for (no pruned prompt). Otherwise, or when the eviction is
    /// refused (a sliding window that dropped what it would need), the cache stays as it
    /// is and the next prefill reuses only its common prefix with the prompt.
    fn evict_range(&mut self, old: &[u32], from: usize) {
        let cached = self.kv.tokens();
        if !self.map.is_complete()
            || self.map.slots() != cached.len()
            || cached.len() < old.len()
            || cached[..old.len()] != *old
        {
            return;
        }
        let keep: Vec<bool> = (0..cached.len()).map(|i| i < from || i >= old.len()).collect();
        if model::evict(self.engine.model(), &mut self.kv, &keep).is_ok() {
            self.map = CacheMap::of_cache(self.kv.tokens());
        }
    }

    /// Frees `opts.free` of the context (at least one slot) from the oldest slots after
    /// the sinks and the first `pinned` slots, renumbering the rest; returns the slots
    /// evicted (0: nothing could go). When the pinned part leaves too little, only the
    /// sinks stay; when a sliding window refuses, the slots before the recent part go.
    pub(super) fn evict_oldest(&mut self, opts: &EvictOptions, pinned: usize) -> Result<usize> {
        let len = self.kv.len();
        let n = ((opts.free * self.kv.capacity() as f64).ceil() as usize).max(1);
        let mut from = opts.sinks.max(pinned);
        if from + n >= len {
            from = opts.sinks.min(len.saturating_sub(n + 1));
        }
        let to = (from + n).min(len);
        if to <= from {
            return Ok(0);
        }
        let keep: Vec<bool> = (0..len).map(|i| i < from || i >= to).collect();
        let model = self.engine.model();
        let evicted = match model::evict(model, &mut self.kv, &keep) {
            Ok(n) => n,
            Err(Error::InvalidArgument(_)) => {
                let recent = self.kv.window_held().map_or(to, |(_, base)| base.max(to));
                let keep: Vec<bool> = (0..len).map(|i| i >= recent).collect();
                model::evict(model, &mut self.kv, &keep)?
            }
            Err(e) => return Err(e),
        };
        self.map = CacheMap::of_cache(self.kv.tokens());
        self.evictions += 1;
        Ok(evicted)
    }

    /// Tokens of `tokens` that the rendering of `messages` (no generation prompt) starts.
    fn rendered_prefix(&self, messages: &[ChatMessage], tokens: &[u32]) -> Result<usize> {
        let text = self.engine.template().render(messages, false)?;
        Ok(common_prefix(&self.prompt_tokens(&text)?, tokens))
    }
}

/// Room for the answer a chat prompt must leave: the turn's token limit, at most a
/// quarter of the context.
pub(super) fn answer_room(max_tokens: usize, context: usize) -> usize {
    max_tokens.min(context / 4)
}

pub(super) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
