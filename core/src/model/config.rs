//! Model hyper-parameters read from GGUF metadata, per architecture.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gguf::Metadata;

/// Architectures the forward pass implements, chosen from `general.architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama 2/3, SmolLM2, TinyLlama, Mistral-style dense models.
    Llama,
    /// Qwen2 / Qwen2.5: llama layout plus q/k/v biases and NEOX rope.
    Qwen2,
    /// Gemma 3: scaled embeddings, per-head q/k norms, post-norms, GELU, and
    /// sliding-window layers with their own rope base.
    Gemma3,
}

impl Arch {
    pub const SUPPORTED: &'static [&'static str] = &["llama", "qwen2", "gemma3"];

    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "gemma3" => Ok(Arch::Gemma3),
            other => Err(Error::UnsupportedArchitecture {
                arch: other.to_string(),
                supported: Self::SUPPORTED.join(", "),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    /// Adjacent pairs (2i, 2i+1): ggml's "normal" mode, used by llama GGUFs (whose
    /// q/k weights the converter permuted for it).
    Interleaved,
    /// Halves (i, i + n/2): ggml's NEOX mode, used by Qwen2.
    Neox,
}

/// Rotary position embedding parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopeConfig {
    pub style: RopeStyle,
    /// Dimensions rotated per head (the rest pass through).
    pub n_rot: usize,
    pub freq_base: f32,
    /// Positions are multiplied by this (linear scaling: 1 / factor).
    pub freq_scale: f32,
}

/// The feed-forward gate's activation (a kernel-level type: the kernels implement it).
pub use crate::kernels::Activation;

/// Sliding-window attention: a layer that uses it sees only the last `window`
/// positions (its own included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlidingWindow {
    pub window: usize,
    /// Every `pattern`-th layer (the last of each group) is global, the rest local.
    pub pattern: usize,
}

/// How an architecture's block differs from the plain llama block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockStyle {
    /// Token embeddings are multiplied by this (Gemma: √n_embd).
    pub embed_scale: f32,
    /// Each query and key head is RMS-normalised before rope (Gemma 3).
    pub qk_norm: bool,
    /// The attention and feed-forward outputs are RMS-normalised before their residual
    /// add (Gemma 2 and 3).
    pub post_norms: bool,
    pub activation: Activation,
    /// Scale of the query-key products.
    pub attn_scale: f32,
    pub sliding_window: Option<SlidingWindow>,
    /// Rope of the sliding-window layers, when it differs from the global one.
    pub rope_local: Option<RopeConfig>,
}

/// Everything the forward pass needs to know about the model's shape.
#[derive(Debug, Clone, Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layers: usize,
    /// Model width.
    pub n_embd: usize,
    /// Hidden width of the feed-forward block.
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_vocab: usize,
    /// Context length the model was trained for.
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope: RopeConfig,
    pub block: BlockStyle,
}

impl ModelConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let arch_name = md.str("general.architecture")?;
        let arch = Arch::from_name(arch_name)?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let n_embd: usize = md.int(&key("embedding_length"))?;
        let n_head: usize = md.int(&key("attention.head_count"))?;
        let n_head_kv: usize = md.int_opt(&key("attention.head_count_kv"))?.unwrap_or(n_head);
        let invalid = |msg: String| Error::InvalidModel(msg);
        if n_head == 0 || n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
            return Err(invalid(format!(
                "attention.head_count {n_head} must be a positive multiple of head_count_kv {n_head_kv}"
            )));
        }
        let head_dim: usize = md.int_opt(&key("attention.key_length"))?.unwrap_or(n_embd / n_head);
        let n_vocab = match md.int_opt(&key("vocab_size"))? {
            Some(v) => v,
            None => md.string_array("tokenizer.ggml.tokens")?.len(),
        };
        let n_rot: usize = md.int_opt(&key("rope.dimension_count"))?.unwrap_or(head_dim);
        if n_rot > head_dim || !n_rot.is_multiple_of(2) {
            return Err(invalid(format!(
                "rope.dimension_count {n_rot} must be even and at most head size {head_dim}"
            )));
        }
        let freq_scale = match md.str_opt(&key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => {
                let factor = md.f32_opt(&key("rope.scaling.factor"))?.unwrap_or(1.0);
                if !(factor.is_finite() && factor > 0.0) {
                    return Err(invalid(format!("rope.scaling.factor {factor} must be positive")));
                }
                1.0 / factor
            }
            Some(other) => {
                return Err(invalid(format!(
                    "rope scaling type '{other}' is not supported (none, linear)"
                )));
            }
        };
        let rope = RopeConfig {
            style: match arch {
                Arch::Llama => RopeStyle::Interleaved,
                Arch::Qwen2 | Arch::Gemma3 => RopeStyle::Neox,
            },
            n_rot,
            freq_base: md.f32_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0),
            freq_scale,
        };
        let block = match arch {
            Arch::Llama | Arch::Qwen2 => BlockStyle {
                embed_scale: 1.0,
                qk_norm: false,
                post_norms: false,
                activation: Activation::Silu,
                attn_scale: 1.0 / (head_dim as f32).sqrt(),
                sliding_window: None,
                rope_local: None,
            },
            Arch::Gemma3 => BlockStyle {
                embed_scale: (n_embd as f32).sqrt(),
                qk_norm: true,
                post_norms: true,
                activation: Activation::GeluTanh,
                // Gemma 3 scales queries by 1/√head_dim (query_pre_attn_scalar = head_dim).
                attn_scale: 1.0 / (head_dim as f32).sqrt(),
                sliding_window: md
                    .int_opt::<usize>(&key("attention.sliding_window"))?
                    .filter(|&w| w > 0)
                    .map(|window| SlidingWindow { window, pattern: 6 }),
                // Local layers rotate with base 10000 and no scaling.
                rope_local: Some(RopeConfig {
                    freq_base: 10_000.0,
                    freq_scale: 1.0,
                    ..rope.clone()
                }),
            },
        };
        if let Some(v) = md.int_opt::<usize>(&key("attention.value_length"))?
            && v != head_dim
        {
            return Err(invalid(format!(
                "value_length {v} differs from key_length {head_dim} (not supported)"
            )));
        }
        let config = Self {
            arch,
            n_layers: md.int(&key("block_count"))?,
            n_embd,
            n_ff: md.int(&key("feed_forward_length"))?,
            n_head,
            n_head_kv,
            head_dim,
            n_vocab,
            n_ctx_train: md.int(&key("context_length"))?,
            rms_eps: md.f32(&key("attention.layer_norm_rms_epsilon"))?,
            rope,
            block,
        };
        config.check()?;
        Ok(config)
    }

    /// Rejects shapes that would make the forward pass index out of bounds or allocate
    /// absurd buffers.
    fn check(&self) -> Result<()> {
        let limits = [
            ("block_count", self.n_layers, 1, 1024),
            ("embedding_length", self.n_embd, 1, 1 << 16),
            ("feed_forward_length", self.n_ff, 1, 1 << 18),
            ("attention.head_count", self.n_head, 1, 1024),
            ("attention.key_length", self.head_dim, 2, 1024),
            ("vocab_size", self.n_vocab, 1, 1 << 22),
            ("context_length", self.n_ctx_train, 1, 1 << 24),
        ];
        for (name, v, lo, hi) in limits {
            if !(lo..=hi).contains(&v) {
                return Err(Error::InvalidModel(format!(
                    "{}.{name} = {v} is outside {lo}..={hi}",
                    self.arch.name()
                )));
            }
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return Err(Error::InvalidModel(format!(
                "rms epsilon {} must be positive",
                self.rms_eps
            )));
        }
        if !(self.rope.freq_base.is_finite() && self.rope.freq_base > 0.0) {
            return Err(Error::InvalidModel(format!(
                "rope.freq_base {} must be positive",
                self.rope.freq_base
            )));
        }
        Ok(())
    }

    /// Whether layer `l` attends through a sliding window (and uses the local rope).
    pub fn is_local_layer(&self, l: usize) -> bool {
        self.block.sliding_window.is_some_and(|w| l % w.pattern < w.pattern - 1)
    }

    /// Width of the key (and value) projections: all KV heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Width of the query projection.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
}
