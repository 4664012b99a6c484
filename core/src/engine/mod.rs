//! The public engine API: load a model once (`Engine`, Send + Sync), then chat in
//! sessions that stream text through a callback and stop on a cancel flag, or score
//! continuations teacher-forced.

pub mod bench;
pub mod energy_bench;
mod history;
mod report;
pub mod score;
mod session;
mod stop;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use energy_bench::{EnergyBenchConfig, EnergyBenchResult, run_energy_bench};
pub use history::{HISTORY_VERSION, History};
pub use report::{StopReason, TurnEnergy, TurnReport, current_rss_bytes, peak_rss_bytes};
pub use score::{StepScore, top_k};
pub use session::{CancelFlag, GenerateOptions, Session};
pub use stop::StopStrings;

use crate::chat::ChatTemplate;
use crate::energy::{EnergyConfig, EnergyMeter};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kernels::{self, Precision};
use crate::model::Model;
use crate::sampling::SamplingParams;
use crate::threads::{self, ThreadPool};
use crate::tokenizer::Tokenizer;

/// Contexts above this are not chosen by default (memory on a phone); ask explicitly.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;
/// Tokens per forward batch during prefill.
pub const DEFAULT_BATCH: usize = 256;

/// Load-time options. `Default` gives: context min(model's, 4096), threads = number of
/// performance cores, exact precision, greedy sampling, 512 new tokens per turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineOptions {
    /// Tokens of context (KV cache slots) per session; None chooses the default.
    pub context: Option<usize>,
    /// Compute threads; None chooses the number of performance cores.
    pub threads: Option<usize>,
    /// Prompt tokens per forward batch.
    pub batch: usize,
    pub precision: Precision,
    /// Sampling defaults for new sessions.
    pub sampling: SamplingParams,
    /// Default limit of generated tokens per turn.
    pub max_tokens: usize,
    /// Energy metering of prefill and decode (None: no metering). The default detects
    /// the best source (RAPL, battery, platform probe, else an estimate).
    #[serde(skip, default = "default_energy")]
    pub energy: Option<EnergyConfig>,
}

fn default_energy() -> Option<EnergyConfig> {
    Some(EnergyConfig::default())
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            context: None,
            threads: None,
            batch: DEFAULT_BATCH,
            precision: Precision::default(),
            sampling: SamplingParams::default(),
            max_tokens: 512,
            energy: default_energy(),
        }
    }
}

/// What a loaded model is, for display and reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub file_bytes: u64,
    /// Tensor count per ggml type, e.g. {"Q4_1": 210, "F32": 61}.
    pub tensor_types: BTreeMap<String, usize>,
    pub n_layers: usize,
    pub n_embd: usize,
    pub n_vocab: usize,
    pub context_train: usize,
    pub context: usize,
    pub threads: usize,
    pub kernel: String,
    pub precision: String,
    pub has_chat_template: bool,
}

/// A loaded model with its tokenizer, chat template and thread pool.
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    has_template: bool,
    pool: ThreadPool,
    options: EngineOptions,
    context: usize,
    meter: Option<EnergyMeter>,
}

impl Engine {
    /// Maps and validates the file, reads the tokenizer and template, starts the pool.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Arc<Self>> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::ModelNotFound { path: path.to_path_buf(), hint: String::new() });
        }
        Self::from_file(GgufFile::open(path)?, options)
    }

    pub fn from_file(file: GgufFile, options: EngineOptions) -> Result<Arc<Self>> {
        options.sampling.validate().map_err(Error::InvalidArgument)?;
        if options.batch == 0 {
            return Err(Error::InvalidArgument("batch must be at least 1".into()));
        }
        let tokenizer = Tokenizer::from_gguf(&file.metadata)?;
        let has_template = file.metadata.contains_key("tokenizer.chat_template");
        let text_of =
            |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or("").to_string();
        let template = ChatTemplate::from_metadata(
            &file.metadata,
            &text_of(tokenizer.bos_id()),
            &text_of(tokenizer.eos_id()),
        )?;
        let model = Model::load(file, options.precision)?;
        let context = match options.context {
            Some(0) => {
                return Err(Error::InvalidArgument("context must be at least 1 token".into()));
            }
            Some(c) => c,
            None => model.config.n_ctx_train.min(DEFAULT_MAX_CONTEXT),
        };
        let n_threads = match options.threads {
            Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
            Some(t) => t,
            None => threads::performance_cores(),
        };
        let pool = ThreadPool::new(n_threads).map_err(|e| {
            Error::InvalidArgument(format!("cannot start {n_threads} threads: {e}"))
        })?;
        let meter = options.energy.clone().map(EnergyMeter::new).transpose()?;
        Ok(Arc::new(Self {
            model,
            tokenizer,
            template,
            has_template,
            pool,
            options,
            context,
            meter,
        }))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// The meter that times prefill and decode energy, when metering is on.
    pub fn energy_meter(&self) -> Option<&EnergyMeter> {
        self.meter.as_ref()
    }

    /// The engine's compute threads.
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    pub fn info(&self) -> ModelInfo {
        let file = &self.model.file;
        let c = &self.model.config;
        let mut tensor_types = BTreeMap::new();
        for t in &file.tensors {
            *tensor_types.entry(t.ggml_type.name().to_string()).or_insert(0) += 1;
        }
        ModelInfo {
            name: file
                .metadata
                .str_opt("general.name")
                .ok()
                .flatten()
                .unwrap_or("unnamed")
                .to_string(),
            architecture: c.arch.name().to_string(),
            parameters: file.tensors.iter().map(|t| t.n_elements()).sum(),
            file_bytes: file.file_size(),
            tensor_types,
            n_layers: c.n_layers,
            n_embd: c.n_embd,
            n_vocab: c.n_vocab,
            context_train: c.n_ctx_train,
            context: self.context,
            threads: self.pool.n_threads(),
            kernel: kernels::kernels().name.to_string(),
            precision: self.options.precision.name().to_string(),
            has_chat_template: self.has_template,
        }
    }

    /// A new conversation with its own KV cache of `context()` slots.
    pub fn session(self: &Arc<Self>) -> Result<Session> {
        Session::new(Arc::clone(self))
    }

    /// Tokens of `text` (no BOS added); `special` parses special-token text.
    pub fn tokenize(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, special)?)
    }

    /// Teacher-forced scoring of `continuation` after `prompt` (see [`score::score`]).
    pub fn score(
        &self,
        prompt: &[u32],
        continuation: &[u32],
        top: usize,
    ) -> Result<Vec<StepScore>> {
        self.check_score_fits(prompt, continuation)?;
        score::score(&self.model, &self.pool, self.options.batch, prompt, continuation, top, false)
    }

    /// Like [`score`](Self::score), returning every step's full log-probability vector.
    pub fn score_full(&self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.check_score_fits(prompt, continuation)?;
        let steps = score::score(
            &self.model,
            &self.pool,
            self.options.batch,
            prompt,
            continuation,
            0,
            true,
        )?;
        Ok(steps.into_iter().map(|s| s.log_probs).collect())
    }

    fn check_score_fits(&self, prompt: &[u32], continuation: &[u32]) -> Result<()> {
        let needed = prompt.len() + continuation.len().saturating_sub(1);
        if needed > self.context {
            return Err(Error::ContextOverflow {
                needed,
                available: self.context,
                context: self.context,
                used: 0,
            });
        }
        Ok(())
    }
}
