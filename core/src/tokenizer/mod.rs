//! The model's tokenizer, built from GGUF `tokenizer.ggml.*` metadata, reproducing
//! llama.cpp's tokenization and detokenization exactly.
//!
//! Two vocabulary kinds are supported: byte-level BPE (`gpt2`, e.g. SmolLM2, Llama 3,
//! Qwen 2) with the pre-tokenizer named by `tokenizer.ggml.pre`, and SentencePiece-style
//! (`llama`, e.g. Gemma 3) merged by token score with byte fallback. Special tokens
//! (control, user-defined) are cut out of the text first, as llama.cpp does.

mod attr;
mod bpe;
mod decode;
mod pretok;
mod special;
mod spm;
mod stream;
mod texts;
mod vocab;

use std::sync::Arc;

pub use stream::StreamDecoder;
pub use vocab::VocabKind;

use crate::gguf::{GgufError, Metadata};
use bpe::BpeEncoder;
use decode::PieceTable;
use special::Fragment;
use vocab::Vocab;

/// What can go wrong building a tokenizer from metadata or encoding with it.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer metadata: {0}")]
    Metadata(#[from] GgufError),
    #[error("unsupported tokenizer model '{model}' (Joule supports 'gpt2' and 'llama')")]
    UnsupportedModel { model: String },
    #[error("tokenizer.ggml.tokens is empty")]
    EmptyVocabulary,
    #[error("the vocabulary has {n_tokens} tokens, more than token ids can number")]
    VocabularyTooLarge { n_tokens: usize },
    #[error("{key} has {found} entries but tokenizer.ggml.tokens has {expected}")]
    LengthMismatch { key: &'static str, found: usize, expected: usize },
    #[error("{key} should be an array of {expected} but holds {found}")]
    WrongArrayType { key: &'static str, expected: &'static str, found: &'static str },
    #[error("token {text:?} appears twice in the vocabulary (ids {first} and {second})")]
    DuplicateToken { text: String, first: u32, second: u32 },
    #[error("tokenizer.ggml.{key} is {id}, outside the vocabulary of {n_vocab} tokens")]
    SpecialIdOutOfRange { key: &'static str, id: i64, n_vocab: usize },
    #[error("{flag_key} is true but {id_key} names no token")]
    MissingSpecialToken { flag_key: &'static str, id_key: &'static str },
    #[error("tokenizer.ggml.merges entry {index} ({merge:?}): {reason}")]
    BadMerge { index: usize, merge: String, reason: String },
    #[error("pre-tokenizer '{pre}': pattern {pattern:?} does not compile: {message}")]
    Regex { pre: String, pattern: String, message: String },
    #[error("BPE: {message}")]
    Bpe { message: String },
    #[error("cannot encode byte 0x{byte:02X}: the vocabulary has no token <0x{byte:02X}> for it")]
    NoByteToken { byte: u8 },
}

/// A tokenizer for one model. Cheap to clone (the tables are shared) and usable from
/// several threads at once.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

struct Inner {
    vocab: Vocab,
    pieces: PieceTable,
    encoder: Encoder,
}

enum Encoder {
    Bpe(Box<BpeEncoder>),
    SentencePiece { byte_tokens: Box<[Option<u32>; 256]> },
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.inner.vocab;
        f.debug_struct("Tokenizer")
            .field("kind", &v.kind)
            .field("pre", &v.pre.as_ref().map(|p| p.name.as_str()))
            .field("vocab_size", &v.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf(md: &Metadata) -> Result<Tokenizer, TokenizerError> {
        let vocab = Vocab::from_metadata(md)?;
        let encoder = match &vocab.pre {
            Some(spec) => Encoder::Bpe(Box::new(BpeEncoder::new(md, &vocab, spec)?)),
            None => Encoder::SentencePiece { byte_tokens: spm::byte_tokens(&vocab) },
        };
        let pieces = PieceTable::new(&vocab);
        Ok(Tokenizer { inner: Arc::new(Inner { vocab, pieces, encoder }) })
    }

    /// Token ids for `text`, without BOS or EOS. With `parse_special`, control tokens
    /// written in the text (such as `<|im_start|>`) become those tokens; without it they
    /// are encoded as plain text. User-defined tokens are matched either way.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let vocab = &self.inner.vocab;
        let fragments = special::partition(vocab, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        match &self.inner.encoder {
            Encoder::Bpe(bpe) => {
                for fragment in fragments {
                    match fragment {
                        Fragment::Text(t) => bpe.encode(t, &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Encoder::SentencePiece { byte_tokens } => {
                // A space prefix goes before text that starts the input or follows a
                // special token.
                let mut after_special = true;
                for fragment in fragments {
                    match fragment {
                        Fragment::Text(t) => {
                            let prefix =
                                if vocab.add_space_prefix && after_special { " " } else { "" };
                            let escaped = format!("{prefix}{t}").replace(' ', "\u{2581}");
                            spm::encode(vocab, byte_tokens, &escaped, &mut out)?;
                            after_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            after_special = true;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Text for a sequence of ids, as llama.cpp's `detokenize` (special tokens removed
    /// from the output unless `render_special`). Bytes that do not form UTF-8 become
    /// U+FFFD; ids outside the vocabulary render as nothing.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        let bytes = decode::detokenize(&self.inner.vocab, &self.inner.pieces, ids, render_special);
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The raw bytes of one token (a byte token or part of a multi-byte character is not
    /// UTF-8 on its own), as llama.cpp's `token_to_piece`. Control and unknown tokens are
    /// empty unless `render_special`; ids outside the vocabulary are empty.
    pub fn token_to_piece(&self, id: u32, render_special: bool) -> Vec<u8> {
        self.piece(id, render_special).to_vec()
    }

    fn piece(&self, id: u32, render_special: bool) -> &[u8] {
        decode::piece(&self.inner.vocab, &self.inner.pieces, id, render_special)
    }

    /// The id of the token whose text is exactly `text`.
    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.inner.vocab.id_of(text)
    }

    /// The vocabulary text of a token (`▁` and byte-level characters as stored).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.inner.vocab.texts.get(id)
    }

    /// Number of tokens in the vocabulary (ids are `0..vocab_size()`).
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab.len()
    }

    /// Which algorithm the vocabulary uses.
    pub fn kind(&self) -> VocabKind {
        self.inner.vocab.kind
    }

    /// The BPE pre-tokenizer in use (`None` for SentencePiece vocabularies).
    pub fn pre_tokenizer(&self) -> Option<&str> {
        self.inner.vocab.pre.as_ref().map(|p| p.name.as_str())
    }

    /// Beginning of sequence (`tokenizer.ggml.bos_token_id`, else the family default).
    pub fn bos_id(&self) -> Option<u32> {
        self.inner.vocab.special.bos
    }

    /// End of sequence (`tokenizer.ggml.eos_token_id`, else the family default).
    pub fn eos_id(&self) -> Option<u32> {
        self.inner.vocab.special.eos
    }

    /// End of turn (`tokenizer.ggml.eot_token_id`, or found by its text).
    pub fn eot_id(&self) -> Option<u32> {
        self.inner.vocab.special.eot
    }

    /// The unknown token, if the vocabulary has one.
    pub fn unk_id(&self) -> Option<u32> {
        self.inner.vocab.special.unk
    }

    /// The padding token, if the vocabulary has one.
    pub fn pad_id(&self) -> Option<u32> {
        self.inner.vocab.special.pad
    }

    /// Whether a prompt should start with BOS (`tokenizer.ggml.add_bos_token`, else the
    /// family default: yes for SentencePiece and Llama 3 style BPE, no for other BPE).
    pub fn add_bos(&self) -> bool {
        self.inner.vocab.add_bos
    }

    /// Whether a prompt should end with EOS (`tokenizer.ggml.add_eos_token`, else no).
    pub fn add_eos(&self) -> bool {
        self.inner.vocab.add_eos
    }

    /// Whether text gets a leading space before encoding (SentencePiece style).
    pub fn add_space_prefix(&self) -> bool {
        self.inner.vocab.add_space_prefix
    }

    /// Whether generating this token ends generation: EOS, end of turn, end of message,
    /// and tokens whose text is a well-known end marker, as llama.cpp collects them.
    pub fn is_eog(&self, id: u32) -> bool {
        self.inner.vocab.eog.contains(&id)
    }

    /// Whether the token is a control or user-defined one (`<|im_start|>`, BOS, ...):
    /// template structure, never text of a message.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner.vocab.attr(id).any(attr::Attr::CONTROL.with(attr::Attr::USER_DEFINED))
    }

    /// Every end-of-generation id, ascending.
    pub fn eog_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.inner.vocab.eog.iter().copied()
    }
}
