//! The model's tensors, looked up by their GGUF names and checked against the config.

use crate::error::{Error, Result};
use crate::gguf::{GgufError, GgufFile, TensorBytes, TensorInfo};
use crate::kernels::PackedMatrix;
use crate::model::config::{Arch, ModelConfig};
use crate::quant::{self, GgmlType};

/// A weight matrix `[n_out, n_in]` (ggml dims `[n_in, n_out]`): row `r` holds the
/// `n_in` weights of output `r`, in the tensor's own block format.
#[derive(Debug)]
pub struct Linear {
    pub name: String,
    pub ggml_type: GgmlType,
    pub n_in: usize,
    pub n_out: usize,
    /// The weights as the kernels want them (the file's bytes, or a repacked copy).
    pub packed: PackedMatrix,
}

impl Linear {
    /// Bytes of one row in the file's format.
    pub fn row_bytes(&self) -> usize {
        self.n_in / self.ggml_type.block_size() * self.ggml_type.type_size()
    }

    /// Bytes one product with this matrix reads (the repacked tiles, or the file's rows).
    pub fn streamed_bytes(&self) -> u64 {
        match &self.packed {
            PackedMatrix::Tiles(t) => t.bytes() as u64,
            PackedMatrix::Raw(_) => (self.row_bytes() * self.n_out) as u64,
        }
    }
}

/// One transformer block.
#[derive(Debug)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    /// Qwen2's q/k/v biases.
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    /// Gemma 3: per-head RMS norms of queries and keys, `[head_dim]`.
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// Gemma 2/3: norms of the attention and feed-forward outputs, `[n_embd]`.
    pub post_attn_norm: Option<Vec<f32>>,
    pub post_ffn_norm: Option<Vec<f32>>,
    pub w_gate: Linear,
    pub w_up: Linear,
    pub w_down: Linear,
}

#[derive(Debug)]
pub struct Weights {
    /// `[n_vocab, n_embd]`: row `t` embeds token `t`.
    pub token_embd: Linear,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// The output projection, or None when it is tied to `token_embd`.
    pub output: Option<Linear>,
    /// Per-frequency divisors for rope (Llama 3.1 long-context scaling), `[n_rot / 2]`.
    pub rope_freqs: Option<Vec<f32>>,
}

impl Weights {
    pub fn load(
        file: &GgufFile,
        cfg: &ModelConfig,
        pack: &dyn Fn(Linear) -> Result<Linear>,
    ) -> Result<Self> {
        let (d, kv, ff, q) = (cfg.n_embd, cfg.kv_dim(), cfg.n_ff, cfg.q_dim());
        let lin = |name: &str, n_in: usize, n_out: usize| -> Result<Linear> {
            pack(linear(file, name, n_in, n_out)?)
        };
        let token_embd = linear(file, "token_embd.weight", d, cfg.n_vocab)?;
        let output = match file.tensor_info("output.weight") {
            Some(_) => Some(lin("output.weight", d, cfg.n_vocab)?),
            None => None,
        };
        // The embedding is read row by row (never multiplied) unless it is also the
        // output projection, in which case it is packed for the matmul kernels.
        let token_embd = if output.is_none() { pack(token_embd)? } else { token_embd };
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let n = |t: &str| format!("blk.{i}.{t}");
            let bias = |t: &str, len: usize| -> Result<Option<Vec<f32>>> {
                match file.tensor_info(&n(t)) {
                    Some(_) => Ok(Some(vector(file, &n(t), len)?)),
                    None if cfg.arch == Arch::Qwen2 => {
                        Err(GgufError::MissingTensor { name: n(t) }.into())
                    }
                    None => Ok(None),
                }
            };
            let needed = |want: bool, t: &str, len: usize| -> Result<Option<Vec<f32>>> {
                if want { Ok(Some(vector(file, &n(t), len)?)) } else { Ok(None) }
            };
            let b = &cfg.block;
            layers.push(LayerWeights {
                q_norm: needed(b.qk_norm, "attn_q_norm.weight", cfg.head_dim)?,
                k_norm: needed(b.qk_norm, "attn_k_norm.weight", cfg.head_dim)?,
                post_attn_norm: needed(b.post_norms, "post_attention_norm.weight", d)?,
                post_ffn_norm: needed(b.post_norms, "post_ffw_norm.weight", d)?,
                attn_norm: vector(file, &n("attn_norm.weight"), d)?,
                wq: lin(&n("attn_q.weight"), d, q)?,
                wk: lin(&n("attn_k.weight"), d, kv)?,
                wv: lin(&n("attn_v.weight"), d, kv)?,
                wo: lin(&n("attn_output.weight"), q, d)?,
                bq: bias("attn_q.bias", q)?,
                bk: bias("attn_k.bias", kv)?,
                bv: bias("attn_v.bias", kv)?,
                ffn_norm: vector(file, &n("ffn_norm.weight"), d)?,
                w_gate: lin(&n("ffn_gate.weight"), d, ff)?,
                w_up: lin(&n("ffn_up.weight"), d, ff)?,
                w_down: lin(&n("ffn_down.weight"), ff, d)?,
            });
        }
        let rope_freqs = match file.tensor_info("rope_freqs.weight") {
            Some(_) => Some(vector(file, "rope_freqs.weight", cfg.rope.n_rot / 2)?),
            None => None,
        };
        Ok(Self {
            token_embd,
            layers,
            output_norm: vector(file, "output_norm.weight", d)?,
            output,
            rope_freqs,
        })
    }

    /// The matrix that maps the final hidden state to logits.
    pub fn output_matrix(&self) -> &Linear {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

fn lookup<'a>(file: &'a GgufFile, name: &str) -> Result<&'a TensorInfo> {
    file.tensor_info(name).ok_or_else(|| GgufError::MissingTensor { name: name.to_string() }.into())
}

fn shape_error(info: &TensorInfo, expected: &[usize]) -> Error {
    GgufError::BadShape {
        name: info.name.clone(),
        dims: info.dims.clone(),
        reason: format!("the model's metadata implies {expected:?}"),
    }
    .into()
}

fn check_type(info: &TensorInfo) -> Result<()> {
    if info.ggml_type.is_supported() {
        Ok(())
    } else {
        Err(GgufError::UnsupportedTensorType { name: info.name.clone(), ggml_type: info.ggml_type }
            .into())
    }
}

/// Fails on a NaN or infinite float value or block scale: such weights make every later
/// result NaN, which would otherwise surface as an empty answer.
fn check_finite(info: &TensorInfo, data: &[u8]) -> Result<()> {
    match quant::first_non_finite(info.ggml_type, data) {
        None => Ok(()),
        Some(at) => Err(Error::NonFiniteWeights {
            tensor: crate::fsutil::escape(&info.name),
            what: if info.ggml_type.block_size() == 1 {
                format!("value {at}")
            } else {
                format!("the scale of block {at}")
            },
        }),
    }
}

/// A 2-D weight whose ggml dims must be `[n_in, n_out]`.
fn linear(file: &GgufFile, name: &str, n_in: usize, n_out: usize) -> Result<Linear> {
    let info = lookup(file, name)?;
    if info.dims.len() != 2 || info.dims[0] != n_in as u64 || info.dims[1] != n_out as u64 {
        return Err(shape_error(info, &[n_in, n_out]));
    }
    check_type(info)?;
    check_finite(info, file.tensor_data(info))?;
    let data: TensorBytes = file.tensor_bytes(info);
    Ok(Linear {
        name: name.to_string(),
        ggml_type: info.ggml_type,
        n_in,
        n_out,
        packed: PackedMatrix::Raw(data),
    })
}

/// A 1-D tensor of `len` values (norm weights, biases), converted to f32.
fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let info = lookup(file, name)?;
    if info.dims.len() != 1 || info.dims[0] != len as u64 {
        return Err(shape_error(info, &[len]));
    }
    check_type(info)?;
    check_finite(info, file.tensor_data(info))?;
    let mut out = vec![0.0; len];
    quant::dequantize_row(info.ggml_type, file.tensor_data(info), &mut out)
        .map_err(|e| Error::InvalidModel(format!("tensor '{name}': {e}")))?;
    Ok(out)
}
