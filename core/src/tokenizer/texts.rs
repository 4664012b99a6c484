//! Token texts stored end to end in one buffer, with an open-addressing hash index from
//! text to id: a 262k-token vocabulary loads without half a million small allocations.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::TokenizerError;

const EMPTY: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct TokenTexts {
    data: String,
    /// `ends[id]` is where token `id`'s text ends in `data`; it starts where the previous ends.
    ends: Vec<usize>,
    /// Power-of-two table of ids (`EMPTY` for a free slot), probed linearly.
    slots: Vec<u32>,
    hasher: RandomState,
}

impl TokenTexts {
    /// Indexes `tokens`. An empty text is renamed `[EMPTY_i]` as llama.cpp does; a text
    /// that appears twice is an error.
    pub fn new(tokens: &[String]) -> Result<Self, TokenizerError> {
        let n = tokens.len();
        let mut data = String::with_capacity(tokens.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                log::warn!("token {i} has an empty text; naming it [EMPTY_{i}]");
                data.push_str(&format!("[EMPTY_{i}]"));
            } else {
                data.push_str(t);
            }
            ends.push(data.len());
        }
        let mut texts = Self {
            data,
            ends,
            slots: vec![EMPTY; (n * 2).next_power_of_two().max(2)],
            hasher: RandomState::new(),
        };
        for id in 0..n as u32 {
            let text = texts.text(id);
            match texts.probe(text) {
                Ok(first) => {
                    return Err(TokenizerError::DuplicateToken {
                        text: text.to_string(),
                        first,
                        second: id,
                    });
                }
                Err(slot) => texts.slots[slot] = id,
            }
        }
        Ok(texts)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The text of a token; empty for an id outside the vocabulary.
    pub fn text(&self, id: u32) -> &str {
        self.get(id).unwrap_or("")
    }

    pub fn get(&self, id: u32) -> Option<&str> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        self.data.get(start..end)
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.probe(text).ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|id| self.text(id))
    }

    /// `Ok(id)` when `text` is indexed, else `Err(free slot)` where it would go.
    fn probe(&self, text: &str) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut slot = self.hasher.hash_one(text) as usize & mask;
        loop {
            match self.slots[slot] {
                EMPTY => return Err(slot),
                id if self.text(id) == text => return Ok(id),
                _ => slot = (slot + 1) & mask,
            }
        }
    }
}
