//! Sentence embeddings for the `segment` strategy: a BERT-style encoder as ONNX
//! (`model.onnx`, run by tract) with its WordPiece `tokenizer.json` (run by the
//! `tokenizers` crate), mean-pooled over the attention mask and L2-normalised, as
//! sentence-transformers does for all-MiniLM-L6-v2.
//!
//! Only built with the `embed` feature (tract is a large dependency).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::{Error, Result};

/// Name of the ONNX graph in an embedding model's directory.
pub const MODEL_FILE: &str = "model.onnx";
/// Name of the tokenizer (Hugging Face `tokenizer.json`) next to it.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Tokens per text: all-MiniLM-L6-v2 was trained on up to 256 (sentence-transformers'
/// `max_seq_length`); longer texts are cut, as there.
const MAX_TOKENS: usize = 256;
/// Texts per run of the graph: one padded batch amortises tract's per-run work, and a
/// bound keeps the padded batch small when one unit is much longer than the others.
const BATCH: usize = 32;

/// What a graph input wants, told by its name (BERT exports call them `input_ids`,
/// `attention_mask`, `token_type_ids`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    Ids,
    Mask,
    TypeIds,
}

/// A loaded embedding model (loaded once per engine: planning the graph takes a while).
pub struct Embedder {
    plan: Arc<TypedRunnableModel>,
    tokenizer: tokenizers::Tokenizer,
    inputs: Vec<Input>,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dir", &self.dir).field("inputs", &self.inputs).finish()
    }
}

impl Embedder {
    /// Loads `dir/model.onnx` and `dir/tokenizer.json`; a missing file is
    /// [`Error::EmbedModelMissing`] (which says how to fetch it), a bad one
    /// [`Error::EmbedModel`].
    pub fn load(dir: &Path) -> Result<Self> {
        let (model_path, tokenizer_path) = (dir.join(MODEL_FILE), dir.join(TOKENIZER_FILE));
        for path in [&model_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(Error::EmbedModelMissing { path: path.clone() });
            }
        }
        let bad = |path: &Path| {
            let path = path.to_path_buf();
            move |e: String| Error::EmbedModel { path, message: e }
        };
        let tokenizer = load_tokenizer(&tokenizer_path).map_err(bad(&tokenizer_path))?;
        let (plan, inputs) = load_graph(&model_path).map_err(bad(&model_path))?;
        Ok(Self { plan, tokenizer, inputs, dir: dir.to_path_buf() })
    }

    /// Where the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One unit vector per text (an empty text gets the embedding of `[CLS] [SEP]`).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let model_path = self.dir.join(MODEL_FILE);
        let bad = |message: String| Error::EmbedModel { path: model_path.clone(), message };
        let mut ids = Vec::with_capacity(texts.len());
        for text in texts {
            let enc = self.tokenizer.encode(*text, true).map_err(|e| bad(e.to_string()))?;
            ids.push(enc.get_ids().iter().map(|&i| i64::from(i)).collect::<Vec<i64>>());
        }
        let width = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let batch = Batch::padded(&ids, width);
        let feed: TVec<TValue> = self
            .inputs
            .iter()
            .map(|kind| batch.tensor(*kind).map(IntoTValue::into_tvalue))
            .collect::<TractResult<_>>()
            .map_err(|e| bad(format!("{e:#}")))?;
        let outputs = self.plan.run(feed).map_err(|e| bad(format!("{e:#}")))?;
        let hidden = outputs.first().ok_or_else(|| bad("the graph has no output".into()))?;
        let shape = hidden.shape().to_vec();
        let view = hidden.try_as_plain_ram().map_err(|e| bad(format!("{e:#}")))?;
        let values = view.as_slice::<f32>().map_err(|e| bad(format!("{e:#}")))?;
        match shape[..] {
            [b, s, d] if b == texts.len() && s == width && d > 0 => Ok((0..b)
                .map(|i| mean_pool(&values[i * s * d..(i + 1) * s * d], &batch, i))
                .collect()),
            _ => Err(bad(format!(
                "the first output has shape {shape:?}, not [{}, {width}, hidden] (token states)",
                texts.len()
            ))),
        }
    }
}

/// Token ids of a batch, padded on the right with 0 (BERT's `[PAD]`), with their mask.
struct Batch {
    ids: Vec<i64>,
    mask: Vec<i64>,
    rows: usize,
    width: usize,
}

impl Batch {
    fn padded(ids: &[Vec<i64>], width: usize) -> Self {
        let mut b = Batch {
            ids: vec![0; ids.len() * width],
            mask: vec![0; ids.len() * width],
            rows: ids.len(),
            width,
        };
        for (r, row) in ids.iter().enumerate() {
            b.ids[r * width..r * width + row.len()].copy_from_slice(row);
            b.mask[r * width..r * width + row.len()].fill(1);
        }
        b
    }

    fn tensor(&self, kind: Input) -> TractResult<Tensor> {
        let shape = [self.rows, self.width];
        match kind {
            Input::Ids => Tensor::from_shape(&shape, &self.ids),
            Input::Mask => Tensor::from_shape(&shape, &self.mask),
            Input::TypeIds => Tensor::from_shape(&shape, &vec![0i64; self.ids.len()]),
        }
    }
}

/// The mean of row `r`'s token states over its real (unmasked) tokens, L2-normalised:
/// then a dot product is the cosine similarity.
fn mean_pool(states: &[f32], batch: &Batch, r: usize) -> Vec<f32> {
    let dim = states.len() / batch.width;
    let mut sum = vec![0f32; dim];
    let mask = &batch.mask[r * batch.width..(r + 1) * batch.width];
    for (t, _) in mask.iter().enumerate().filter(|(_, m)| **m == 1) {
        sum.iter_mut().zip(&states[t * dim..(t + 1) * dim]).for_each(|(s, x)| *s += x);
    }
    let n = mask.iter().filter(|m| **m == 1).count().max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    normalize(sum)
}

/// `v` scaled to length 1 (a zero vector stays zero: it is similar to nothing).
fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The tokenizer with our own padding (none: [`Batch`] pads) and truncation: the file
/// of all-MiniLM-L6-v2 pads every text to 128 tokens, which would waste most of a run.
fn load_tokenizer(path: &Path) -> std::result::Result<tokenizers::Tokenizer, String> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| e.to_string())?;
    tokenizer.with_padding(None);
    let truncation = tokenizers::TruncationParams { max_length: MAX_TOKENS, ..Default::default() };
    tokenizer.with_truncation(Some(truncation)).map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

/// Parses, types, optimises and plans the graph once; the batch and sequence axes stay
/// symbolic (the export names them), so one plan serves every batch.
fn load_graph(path: &Path) -> std::result::Result<(Arc<TypedRunnableModel>, Vec<Input>), String> {
    let err = |e: TractError| format!("{e:#}");
    // why: exports write shapes for intermediate values that tract then enforces, and
    // some are wrong (all-MiniLM's int8 export declares its [batch, 1, 1, seq] attention
    // bias as [batch, 1, seq, seq]); tract infers them itself.
    let onnx = tract_onnx::onnx().with_ignore_value_info(true).with_ignore_output_shapes(true);
    let mut model = onnx.model_for_path(path).map_err(err)?;
    // why: an export may leave the axes unnamed; tract plans once only with known ranks.
    let (batch, seq) = (model.sym("batch").to_dim(), model.sym("sequence").to_dim());
    let mut inputs = Vec::new();
    for (i, outlet) in model.input_outlets().map_err(err)?.to_vec().into_iter().enumerate() {
        let fact = InferenceFact::dt_shape(i64::datum_type(), [batch.clone(), seq.clone()]);
        model.set_input_fact(i, fact).map_err(err)?;
        let name = model.node(outlet.node).name.to_ascii_lowercase();
        inputs.push(match name.as_str() {
            n if n.contains("mask") => Input::Mask,
            n if n.contains("type") => Input::TypeIds,
            n if n.contains("ids") || n.contains("input") => Input::Ids,
            n => {
                return Err(format!(
                    "unknown graph input '{n}' (want input_ids, attention_mask, token_type_ids)"
                ));
            }
        });
    }
    if !inputs.contains(&Input::Ids) {
        return Err("the graph has no input_ids input".into());
    }
    let plan = model.into_optimized().map_err(err)?.into_runnable().map_err(err)?;
    Ok((plan, inputs))
}
