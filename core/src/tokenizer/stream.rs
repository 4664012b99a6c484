//! Incremental detokenization for streaming generation.

use super::Tokenizer;

/// Turns token ids, pushed one at a time, into text that is always whole UTF-8
/// characters: the bytes of a character split across tokens (byte-fallback tokens, or
/// byte-level BPE pieces of an emoji or CJK character) are held back until it is
/// complete. Bytes that can never form a character come out as U+FFFD.
///
/// Made with [`StreamDecoder::new`], the concatenated output equals
/// [`Tokenizer::decode`] of the same ids (including llama.cpp's removal of the space a
/// space-prefixing vocabulary put before the first token), except that the
/// `clean_spaces` touch-ups some older BPE vocabularies ask for are not applied, as
/// llama.cpp does not apply them token by token either.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    tokenizer: Tokenizer,
    render_special: bool,
    strip_first_space: bool,
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder for a sequence that starts with the first pushed token.
    pub fn new(tokenizer: &Tokenizer, render_special: bool) -> Self {
        Self {
            tokenizer: tokenizer.clone(),
            render_special,
            strip_first_space: tokenizer.inner.vocab.add_space_prefix,
            pending: Vec::new(),
        }
    }

    /// A decoder for tokens that continue a sequence already under way (for instance
    /// generated after a prompt): the first token keeps its leading space.
    pub fn continuing(tokenizer: &Tokenizer, render_special: bool) -> Self {
        Self { strip_first_space: false, ..Self::new(tokenizer, render_special) }
    }

    /// Adds one token and returns the text completed by it (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        let piece = self.tokenizer.piece(id, self.render_special);
        let piece =
            if self.strip_first_space { piece.strip_prefix(b" ").unwrap_or(piece) } else { piece };
        self.strip_first_space = false;
        self.pending.extend_from_slice(piece);
        self.take_complete()
    }

    /// Returns whatever is still held back; an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        // Not UTF-8 whatever follows: replace it, as a lossy decode would.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // A character cut short at the end: wait for its remaining bytes.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let start = self.pending.len() - keep;
        self.pending.drain(..start);
        out
    }
}
