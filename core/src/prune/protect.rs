//! Tokens pruning never drops.

use std::ops::Range;

/// Template text around a special token (the role name and newline after
/// `<|im_start|>`): kept with it.
const AFTER_SPECIAL: usize = 2;

/// The protected tokens of the part of a prompt offered to pruning: spans (the system
/// prompt, the latest message) and special tokens with the template text after them.
/// The first and last few tokens are added by [`Protected::mask`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protected {
    spans: Vec<Range<usize>>,
    special: Vec<usize>,
}

impl Protected {
    /// Marks the special tokens of `tokens` (`is_special` says which ids are).
    pub fn with_specials(tokens: &[u32], is_special: impl Fn(u32) -> bool) -> Self {
        let special = (0..tokens.len()).filter(|&i| is_special(tokens[i])).collect();
        Self { spans: Vec::new(), special }
    }

    /// Protects tokens `range` (clipped to the prompt).
    pub fn span(&mut self, range: Range<usize>) {
        if range.start < range.end {
            self.spans.push(range);
        }
    }

    /// One flag per token of an `n`-token prompt: true where the token must be kept.
    pub fn mask(&self, n: usize, keep_first: usize, keep_last: usize) -> Vec<bool> {
        let mut keep = vec![false; n];
        let mut mark = |r: Range<usize>| {
            let r = r.start.min(n)..r.end.min(n);
            keep[r].iter_mut().for_each(|k| *k = true);
        };
        mark(0..keep_first);
        mark(n.saturating_sub(keep_last)..n);
        for r in &self.spans {
            mark(r.clone());
        }
        for &i in &self.special {
            mark(i..i + 1 + AFTER_SPECIAL);
        }
        keep
    }
}
