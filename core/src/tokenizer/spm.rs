//! SentencePiece-style encoding (`tokenizer.ggml.model = "llama"`): start from single
//! characters and keep merging the adjacent pair whose concatenation is the
//! highest-scoring token (leftmost first on ties); characters that end up in no token
//! are spelled with `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::TokenizerError;
use super::vocab::Vocab;

/// Byte-fallback ids for each byte value: `<0xXX>`, else the byte itself as a token.
pub(crate) fn byte_tokens(vocab: &Vocab) -> Box<[Option<u32>; 256]> {
    let mut table = Box::new([None; 256]);
    for (b, slot) in table.iter_mut().enumerate() {
        let hex = format!("<0x{b:02X}>");
        *slot = vocab.id_of(&hex).or_else(|| {
            let c = char::from_u32(b as u32).filter(|c| c.is_ascii())?;
            vocab.id_of(c.encode_utf8(&mut [0; 4]))
        });
    }
    table
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of symbol `left` with the symbol after it.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    /// Byte length of the pair when it was queued: a mismatch later means it is stale.
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher score first, then the leftmost pair.
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

/// Appends the ids for `text` (spaces already escaped as `▁`) to `out`.
pub(crate) fn encode(
    vocab: &Vocab,
    byte_tokens: &[Option<u32>; 256],
    text: &str,
    out: &mut Vec<u32>,
) -> Result<(), TokenizerError> {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    for (start, c) in text.char_indices() {
        let index = symbols.len();
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            prev: index.checked_sub(1),
            next: (start + c.len_utf8() < text.len()).then_some(index + 1),
        });
    }

    let mut queue = BinaryHeap::new();
    let try_add = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left, right| {
        let (Some(left), Some(right)): (Option<usize>, Option<usize>) = (left, right) else {
            return;
        };
        let (l, r) = (&symbols[left], &symbols[right]);
        let pair = &text[l.start..r.start + r.len];
        if let Some(id) = vocab.id_of(pair) {
            queue.push(Bigram { score: vocab.scores[id as usize], left, right, len: pair.len() });
        }
    };
    for i in 1..symbols.len() {
        try_add(&mut queue, &symbols, Some(i - 1), Some(i));
    }

    while let Some(bigram) = queue.pop() {
        let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != bigram.len {
            continue;
        }
        symbols[bigram.left].len += r.len;
        symbols[bigram.right].len = 0;
        symbols[bigram.left].next = r.next;
        if let Some(next) = r.next {
            symbols[next].prev = Some(bigram.left);
        }
        try_add(&mut queue, &symbols, l.prev, Some(bigram.left));
        try_add(&mut queue, &symbols, Some(bigram.left), r.next);
    }

    let mut cursor = (!symbols.is_empty()).then_some(0);
    while let Some(i) = cursor {
        let sym = symbols[i];
        let piece = &text[sym.start..sym.start + sym.len];
        match vocab.id_of(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    out.push(
                        byte_tokens[b as usize].ok_or(TokenizerError::NoByteToken { byte: b })?,
                    );
                }
            }
        }
        cursor = sym.next;
    }
    Ok(())
}
