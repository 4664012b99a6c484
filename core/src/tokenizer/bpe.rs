//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) on the `tokenizers` crate: the
//! pre-tokenizer regexes of [`super::pretok`], GPT-2's byte-to-character mapping, then
//! ranked merges.

use std::collections::HashSet;

use tokenizers::models::bpe::{BPE, Vocab as BpeVocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior,
};

use super::TokenizerError;
use super::pretok::PreTokenizerSpec;
use super::vocab::Vocab;
use crate::gguf::Metadata;

const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// A byte-level BPE encoder for text that holds no special tokens.
pub(crate) struct BpeEncoder {
    pre_tokenizer: Sequence,
    model: BPE,
}

impl std::fmt::Debug for BpeEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpeEncoder").finish_non_exhaustive()
    }
}

impl BpeEncoder {
    pub fn new(
        md: &Metadata,
        vocab: &Vocab,
        spec: &PreTokenizerSpec,
    ) -> Result<Self, TokenizerError> {
        let merges = read_merges(md, vocab)?;
        let bpe_vocab: BpeVocab = vocab.texts.iter().map(str::to_string).zip(0u32..).collect();
        let model = BPE::builder()
            .vocab_and_merges(bpe_vocab, merges)
            .ignore_merges(spec.ignore_merges)
            .build()
            .map_err(|e| TokenizerError::Bpe { message: e.to_string() })?;

        let mut steps = Vec::with_capacity(spec.regexes.len() + 1);
        for &pattern in spec.regexes {
            let regex = SplitPattern::Regex(pattern.to_string());
            let split =
                Split::new(regex, SplitDelimiterBehavior::Isolated, false).map_err(|e| {
                    TokenizerError::Regex {
                        pre: spec.name.clone(),
                        pattern: pattern.to_string(),
                        message: e.to_string(),
                    }
                })?;
            steps.push(PreTokenizerWrapper::Split(split));
        }
        // Bytes to GPT-2's printable characters; the regexes above did the splitting.
        steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
        Ok(Self { pre_tokenizer: Sequence::new(steps), model })
    }

    /// Appends the ids of `text` to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        let mut pieces = PreTokenizedString::from(text);
        self.pre_tokenizer
            .pre_tokenize(&mut pieces)
            .map_err(|e| TokenizerError::Bpe { message: e.to_string() })?;
        for (piece, _, _) in pieces.get_splits(OffsetReferential::Original, OffsetType::None) {
            let tokens = self
                .model
                .tokenize(piece)
                .map_err(|e| TokenizerError::Bpe { message: e.to_string() })?;
            out.extend(tokens.iter().map(|t| t.id));
        }
        Ok(())
    }
}

/// Reads `tokenizer.ggml.merges` ("left right", split at the first space after the
/// first byte). Every part and every merged result must be a token; a pair listed twice
/// keeps its first (best) rank, as llama.cpp keeps it.
fn read_merges(md: &Metadata, vocab: &Vocab) -> Result<Vec<(String, String)>, TokenizerError> {
    let lines = md.string_array(KEY_MERGES)?;
    let mut merges = Vec::with_capacity(lines.len());
    let mut seen = HashSet::with_capacity(lines.len());
    let mut merged = String::new();
    for (index, line) in lines.iter().enumerate() {
        let bad = |reason: String| TokenizerError::BadMerge { index, merge: line.clone(), reason };
        let split_at = line
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(i, _)| i)
            .ok_or_else(|| bad("it has no space between its two parts".to_string()))?;
        let (left, right) = (&line[..split_at], &line[split_at + 1..]);
        let id_of = |part: &str| {
            vocab
                .id_of(part)
                .ok_or_else(|| bad(format!("'{part}' is not a token of the vocabulary")))
        };
        let pair = (id_of(left)?, id_of(right)?);
        merged.clear();
        merged.push_str(left);
        merged.push_str(right);
        if vocab.id_of(&merged).is_none() {
            return Err(bad(format!(
                "the merged text '{merged}' is not a token of the vocabulary"
            )));
        }
        if seen.insert(pair) {
            merges.push((left.to_string(), right.to_string()));
        }
    }
    Ok(merges)
}
