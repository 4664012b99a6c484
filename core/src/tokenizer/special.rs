//! Splitting text around special tokens before the model's own algorithm runs.
//!
//! As in llama.cpp, special tokens are taken longest text first: every occurrence of
//! one is cut out of every remaining text piece before the next (shorter) one is looked
//! for. User-defined tokens are always matched; control and unknown tokens only when
//! the caller asks for special tokens to be parsed.

use super::attr::Attr;
use super::vocab::Vocab;

/// A piece of the input: text still to encode, or a special token found verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// C's `isspace` in the "C" locale, which llama.cpp uses for `lstrip`/`rstrip`.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

pub(crate) fn partition<'a>(
    vocab: &Vocab,
    text: &'a str,
    parse_special: bool,
) -> Vec<Fragment<'a>> {
    let mut fragments = Vec::new();
    if text.is_empty() {
        return fragments;
    }
    fragments.push(Fragment::Text(text));
    let pairs = BytePairs::of(text);
    for &id in &vocab.special_cache {
        let attr = vocab.attr(id);
        if !parse_special && attr.any(Attr::CONTROL | Attr::UNKNOWN) {
            continue;
        }
        let special = vocab.texts.text(id);
        // Cheap rejection: a token absent from the whole text is absent from every piece.
        if !pairs.may_contain(special) || !text.contains(special) {
            continue;
        }
        let mut next = Vec::with_capacity(fragments.len() + 2);
        for fragment in fragments {
            match fragment {
                Fragment::Token(_) => next.push(fragment),
                Fragment::Text(piece) => split_piece(piece, special, id, attr, &mut next),
            }
        }
        fragments = next;
    }
    fragments
}

/// Which two-byte sequences occur in a text: most special tokens (Gemma has thousands
/// of `<unusedN>`) are ruled out without scanning the text for each.
struct BytePairs(Vec<u64>);

impl BytePairs {
    fn of(text: &str) -> Self {
        let mut bits = vec![0u64; 1 << 10];
        for w in text.as_bytes().windows(2) {
            let pair = usize::from(w[0]) << 8 | usize::from(w[1]);
            bits[pair >> 6] |= 1 << (pair & 63);
        }
        Self(bits)
    }

    fn may_contain(&self, needle: &str) -> bool {
        match needle.as_bytes() {
            [a, b, ..] => {
                let pair = usize::from(*a) << 8 | usize::from(*b);
                self.0[pair >> 6] & (1 << (pair & 63)) != 0
            }
            _ => true,
        }
    }
}

/// Cuts every occurrence of `special` out of `piece`, keeping the text around them.
fn split_piece<'a>(
    mut piece: &'a str,
    special: &str,
    id: u32,
    attr: Attr,
    out: &mut Vec<Fragment<'a>>,
) {
    while let Some(at) = piece.find(special) {
        let mut left = &piece[..at];
        if attr.any(Attr::LSTRIP) {
            left = left.trim_end_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        }
        if !left.is_empty() {
            out.push(Fragment::Text(left));
        }
        out.push(Fragment::Token(id));
        piece = &piece[at + special.len()..];
        if attr.any(Attr::RSTRIP) {
            piece = piece.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        }
    }
    if !piece.is_empty() {
        out.push(Fragment::Text(piece));
    }
}
