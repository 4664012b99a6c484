//! Token ids back to bytes, following llama.cpp's `token_to_piece` and `detokenize`.

use super::attr::Attr;
use super::vocab::{Vocab, VocabKind};

/// The bytes of every token as rendered with special tokens shown, stored end to end.
#[derive(Debug)]
pub(crate) struct PieceTable {
    bytes: Vec<u8>,
    /// `ends[id]` is where token `id`'s bytes end; they start where the previous end.
    ends: Vec<usize>,
}

impl PieceTable {
    pub fn new(vocab: &Vocab) -> Self {
        let mut bytes = Vec::with_capacity(vocab.texts.iter().map(str::len).sum());
        let mut ends = Vec::with_capacity(vocab.len());
        for (text, &attr) in vocab.texts.iter().zip(&vocab.attrs) {
            append_piece(vocab.kind, text, attr, &mut bytes);
            ends.push(bytes.len());
        }
        Self { bytes, ends }
    }

    fn get(&self, id: u32) -> &[u8] {
        let id = id as usize;
        match self.ends.get(id) {
            Some(&end) => {
                let start = if id == 0 { 0 } else { self.ends[id - 1] };
                &self.bytes[start..end]
            }
            None => &[],
        }
    }
}

/// The bytes a token stands for. Control and unknown tokens are empty unless
/// `render_special`; user-defined tokens always show their text.
pub(crate) fn piece<'a>(
    vocab: &Vocab,
    pieces: &'a PieceTable,
    id: u32,
    render_special: bool,
) -> &'a [u8] {
    if !render_special && vocab.attr(id).any(Attr::UNKNOWN | Attr::CONTROL) {
        return &[];
    }
    pieces.get(id)
}

/// Concatenated pieces, with llama.cpp's two touches: the first token loses one leading
/// space when the vocabulary adds a space prefix, and `clean_spaces` vocabularies get
/// their spaces before punctuation and contractions removed.
pub(crate) fn detokenize(
    vocab: &Vocab,
    pieces: &PieceTable,
    ids: &[u32],
    render_special: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut strip_space = vocab.add_space_prefix;
    for &id in ids {
        let p = piece(vocab, pieces, id, render_special);
        let p = if strip_space { p.strip_prefix(b" ").unwrap_or(p) } else { p };
        out.extend_from_slice(p);
        strip_space = false;
    }
    if vocab.clean_spaces {
        clean_spaces(&mut out);
    }
    out
}

fn append_piece(kind: VocabKind, text: &str, attr: Attr, out: &mut Vec<u8>) {
    if attr.any(Attr::UNKNOWN | Attr::CONTROL | Attr::USER_DEFINED) {
        out.extend_from_slice(text.as_bytes());
    } else if attr.any(Attr::NORMAL) {
        match kind {
            VocabKind::SentencePiece => {
                for (i, part) in text.split('\u{2581}').enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(part.as_bytes());
                }
            }
            VocabKind::BytePairEncoding => decode_byte_level(text, out),
        }
    } else if attr.any(Attr::BYTE) {
        match parse_byte_token(text) {
            Some(b) => out.push(b),
            None => {
                log::warn!("byte token '{text}' is not of the form <0xXX>; rendering its text");
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    // Unused and undefined tokens render as nothing.
}

/// `<0xXX>` to the byte XX.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// GPT-2's byte-level alphabet back to bytes. A character outside the alphabet is kept
/// visible the way llama.cpp shows it.
fn decode_byte_level(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match byte_level_char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// Bytes that print as themselves keep their code point; the other 68 are numbered from
/// U+0100 in byte order.
fn byte_level_char_to_byte(c: char) -> Option<u8> {
    let is_printable = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let cp = c as u32;
    if cp < 256 {
        return is_printable(cp).then_some(cp as u8);
    }
    let nth = (cp - 256) as usize;
    (0u32..256).filter(|&b| !is_printable(b)).nth(nth).map(|b| b as u8)
}

/// llama.cpp's `clean_spaces` passes, byte for byte (they run in place over one buffer,
/// and the second pass blanks the space it removes, which later checks then see).
fn clean_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ," lose the space.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    // " ' " becomes "'".
    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    // " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            let x2 = if i + 2 < n { Some(text[i + 2]) } else { None };
            let drop = matches!(x1, b's' | b'm')
                || (!matches!(x1, b't' | b'd') && matches!((x1, x2), (b'r' | b'v', Some(b'e'))));
            if drop {
                total -= 1;
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_round_trips() {
        // The inverse of GPT-2's bytes_to_unicode: 'Ġ' is the space, 'Ċ' the newline.
        assert_eq!(byte_level_char_to_byte('Ġ'), Some(b' '));
        assert_eq!(byte_level_char_to_byte('Ċ'), Some(b'\n'));
        assert_eq!(byte_level_char_to_byte('!'), Some(b'!'));
        assert_eq!(byte_level_char_to_byte('\u{100}'), Some(0));
        assert_eq!(byte_level_char_to_byte('\u{143}'), Some(0xAD));
        assert_eq!(byte_level_char_to_byte('\u{144}'), None);
        assert_eq!(byte_level_char_to_byte(' '), None);
        let mut seen = [false; 256];
        for cp in 0u32..0x144 {
            if let Some(b) = char::from_u32(cp).and_then(byte_level_char_to_byte) {
                assert!(!seen[b as usize], "byte {b} mapped twice");
                seen[b as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn clean_spaces_matches_llama_cpp_rules() {
        let clean = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            clean_spaces(&mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("it ' s"), "it's");
        assert_eq!(clean("he 's we 're they 've I 'm"), "he's we're they've I'm");
        assert_eq!(clean("don 't we 'll he 'd"), "don 't we 'll he 'd");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" ."), ".");
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xff>"), Some(255));
        assert_eq!(parse_byte_token("<0x0>"), None);
        assert_eq!(parse_byte_token("0x0A"), None);
    }
}
