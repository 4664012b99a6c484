//! What a front end chooses when it loads a model: the engine's options and the
//! user-facing precision, with their defaults and their names (parsed and printed here,
//! once, for every front end).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::energy::EnergyConfig;
use crate::error::Error;
use crate::model::MatmulPath;
use crate::model::kv_cache::KvType;
use crate::sampling::SamplingParams;

/// Contexts above this are not chosen by default (memory on a phone); ask explicitly.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;
/// Tokens per forward batch during prefill.
pub const DEFAULT_BATCH: usize = 256;
/// Default limit of generated tokens per turn.
pub const DEFAULT_MAX_TOKENS: usize = 512;

/// More compute threads than this is refused whatever the machine.
pub const MAX_THREADS: usize = 256;

/// The most compute threads an engine accepts: 4 per available core, at most
/// [`MAX_THREADS`]. Above the core count threads only contend, so a larger figure is a typo.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cores.saturating_mul(4).clamp(1, MAX_THREADS)
}

/// Which arithmetic the matrix products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 activations against exactly dequantized weights: the float math of the
    /// file's weights, for users who want fidelity over speed.
    Exact,
    /// Activations quantized per 32-block to 8 bits, integer dot products against
    /// repacked weights (as llama.cpp does, with f32 activation scales).
    #[default]
    Fast,
}

impl Precision {
    /// Every precision, in the order front ends list them.
    pub const ALL: [Precision; 2] = [Precision::Fast, Precision::Exact];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        }
    }

    /// The matrix-product path of the model layer that implements this precision.
    pub fn matmul_path(self) -> MatmulPath {
        match self {
            Precision::Exact => MatmulPath::Float,
            Precision::Fast => MatmulPath::Int8,
        }
    }
}

impl From<Precision> for MatmulPath {
    fn from(p: Precision) -> Self {
        p.matmul_path()
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown precision '{s}' (fast, exact)")))
    }
}

/// Load-time options. `Default` gives: context min(model's, 4096), threads = number of
/// performance cores, fast precision, greedy sampling, 512 new tokens per turn, energy
/// from the best source found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineOptions {
    /// Tokens of context (KV cache slots) per session; None chooses the default.
    pub context: Option<usize>,
    /// Accept a `context` above the model's trained length (quality degrades past it).
    pub allow_long_context: bool,
    /// Compute threads; None chooses the number of performance cores.
    pub threads: Option<usize>,
    /// Prompt tokens per forward batch.
    pub batch: usize,
    pub precision: Precision,
    /// KV cache type; None: f16 on the fast path (as llama.cpp), f32 on the exact path.
    pub kv_type: Option<KvType>,
    /// Sampling defaults for new sessions.
    pub sampling: SamplingParams,
    /// Default limit of generated tokens per turn.
    pub max_tokens: usize,
    /// Energy metering of prefill and decode (None: no metering). The default detects
    /// the best source (RAPL, battery, platform probe, else an estimate).
    #[serde(skip, default = "default_energy")]
    pub energy: Option<EnergyConfig>,
    /// Directory of the `segment` pruning strategy's embedding model (`model.onnx`,
    /// `tokenizer.json`). None: `minilm/` next to the GGUF file given to
    /// `Engine::load` (where `joule fetch minilm` puts it).
    pub embed_dir: Option<std::path::PathBuf>,
}

fn default_energy() -> Option<EnergyConfig> {
    Some(EnergyConfig::default())
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            context: None,
            allow_long_context: false,
            threads: None,
            batch: DEFAULT_BATCH,
            precision: Precision::default(),
            kv_type: None,
            sampling: SamplingParams::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            energy: default_energy(),
            embed_dir: None,
        }
    }
}
