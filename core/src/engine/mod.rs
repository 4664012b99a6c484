//! The public engine API: load a model once (`Engine`, Send + Sync), then chat in
//! sessions that stream text through a callback and stop on a cancel flag, or score
//! continuations teacher-forced.

pub mod bench;
pub mod bench_profile;
mod cache_map;
pub mod energy_bench;
mod evict;
pub mod files;
mod history;
mod model_dir;
mod options;
mod report;
pub mod score;
mod session;
mod session_disk;
pub mod session_file;
mod stop;
mod turn;
mod window;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use energy_bench::{EnergyBenchConfig, EnergyBenchResult, run_energy_bench};
pub use evict::EvictOptions;
pub use history::{HISTORY_VERSION, History};
pub use model_dir::{DEFAULT_MODEL_FILE, MODEL_DIR_ENV, model_dir, model_file};
pub use options::{
    DEFAULT_BATCH, DEFAULT_MAX_CONTEXT, DEFAULT_MAX_TOKENS, EngineOptions, MAX_THREADS, Precision,
    max_threads,
};
pub use report::{StopReason, TurnEnergy, TurnReport, current_rss_bytes, peak_rss_bytes};
pub use score::{StepScore, top_k};
pub use session::{CancelFlag, GenerateOptions, Session};
pub use stop::StopStrings;
pub use window::{WindowScorer, log_softmax_into};

use crate::chat::ChatTemplate;
use crate::energy::EnergyMeter;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kernels;
use crate::model::Model;
pub use crate::model::kv_cache::KvType;
pub use crate::threads::performance_cores;
use crate::threads::{self, ThreadPool};
use crate::tokenizer::Tokenizer;

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
    /// Layers that keep only a sliding window of the cache (Gemma 3's local layers).
    pub windowed_layers: usize,
    /// Width of the key (and value) projections: all KV heads together.
    pub kv_dim: usize,
    pub n_embd: usize,
    pub n_vocab: usize,
    pub context_train: usize,
    pub context: usize,
    pub threads: usize,
    pub kernel: String,
    pub precision: String,
    pub has_chat_template: bool,
    /// KV cache type ("f32", "f16", "q8_0").
    pub kv_type: String,
    /// Bytes the KV cache takes with the whole context in use (a session reserves them
    /// as slots are used; each turn report gives what is reserved).
    pub kv_bytes: usize,
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
    /// The segment pruning strategy's embedding model, loaded when first used.
    embed_cache: crate::prune::EmbedCache,
}

impl Engine {
    /// Maps and validates the file, reads the tokenizer and template, starts the pool.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Arc<Self>> {
        let path = path.as_ref();
        if !path.exists() {
            let hint = "; get it with `joule fetch` (or pass the path of a GGUF file)".to_string();
            return Err(Error::ModelNotFound { path: path.to_path_buf(), hint });
        }
        // why: `joule fetch minilm` puts the embedding model next to the GGUF files.
        let embed_dir = path.parent().map(|p| p.join(crate::prune::EMBED_SUBDIR));
        let options = EngineOptions { embed_dir: options.embed_dir.or(embed_dir), ..options };
        Self::from_file(GgufFile::open(path)?, options)
    }

    /// Where the segment pruning strategy's embedding model is read from.
    pub fn embed_dir(&self) -> std::path::PathBuf {
        match &self.options.embed_dir {
            Some(dir) => dir.clone(),
            None => model_dir(Path::new(".")).join(crate::prune::EMBED_SUBDIR),
        }
    }

    pub(crate) fn embed_cache(&self) -> &crate::prune::EmbedCache {
        &self.embed_cache
    }

    internal_fn! {
    /// [`Engine::load`] on a file already opened.
    fn from_file(file: GgufFile, options: EngineOptions) -> Result<Arc<Self>> {
        options.sampling.validate()?;
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
            Some(c) if c > model.config.n_ctx_train && !options.allow_long_context => {
                return Err(Error::InvalidArgument(format!(
                    "context of {c} tokens is above the {} the model was trained for; use a \
                     smaller context, or allow it explicitly (--allow-long-context, \
                     EngineOptions::allow_long_context) knowing quality degrades past it",
                    model.config.n_ctx_train
                )));
            }
            Some(c) => c,
            None => model.config.n_ctx_train.min(DEFAULT_MAX_CONTEXT),
        };
        if options.kv_type == Some(KvType::Q8_0) && !model.config.head_dim.is_multiple_of(32) {
            return Err(Error::InvalidArgument(format!(
                "--kv-type q8_0 needs a head size that is a multiple of 32 (this model's is {})",
                model.config.head_dim
            )));
        }
        let n_threads = match options.threads {
            Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
            Some(t) if t > max_threads() => {
                return Err(Error::InvalidArgument(format!(
                    "{t} threads is over the limit of {} (4 per available core, at most {}); \
                     more threads than cores only slows the run down",
                    max_threads(),
                    MAX_THREADS
                )));
            }
            Some(t) => t,
            None => threads::performance_cores(),
        };
        let pool = ThreadPool::new(n_threads)
            .map_err(|source| Error::ThreadStart { threads: n_threads, source })?;
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
            embed_cache: Default::default(),
        }))
    }
    }

    internal_fn! {
    fn model(&self) -> &Model {
        &self.model
    }
    }

    internal_fn! {
    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    }

    internal_fn! {
    fn template(&self) -> &ChatTemplate {
        &self.template
    }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// The KV cache type of this engine's sessions.
    pub fn kv_type(&self) -> KvType {
        self.options.kv_type.unwrap_or(match self.options.precision {
            Precision::Fast => KvType::F16,
            Precision::Exact => KvType::F32,
        })
    }

    /// Bytes of keys and values with `slots` cache slots in use: every slot in a full
    /// layer, at most two windows in a sliding-window layer (more only while a batch
    /// larger than the window is in flight).
    pub fn kv_bytes(&self, slots: usize) -> usize {
        let c = &self.model.config;
        let window = c.block.sliding_window.map_or(usize::MAX, |w| w.window.saturating_mul(2));
        let rows: f64 = (0..c.n_layers)
            .map(|l| if c.is_local_layer(l) { slots.min(window) } else { slots } as f64)
            .sum();
        (2.0 * rows * c.kv_dim() as f64 * self.kv_type().bytes_per_value()) as usize
    }

    /// The meter that times prefill and decode energy, when metering is on.
    pub fn energy_meter(&self) -> Option<&EnergyMeter> {
        self.meter.as_ref()
    }

    internal_fn! {
    /// The engine's compute threads.
    fn pool(&self) -> &ThreadPool {
        &self.pool
    }
    }

    /// Bytes of weights read to decode one token (for bandwidth ceilings).
    pub fn decode_weight_bytes(&self) -> u64 {
        self.model.decode_weight_bytes()
    }

    /// The kernel table this process runs ("avx512-vnni", "neon-dotprod", "scalar", ...).
    pub fn kernel_name() -> &'static str {
        kernels::kernels().name
    }

    pub fn info(&self) -> ModelInfo {
        let file = &self.model.file;
        let c = &self.model.config;
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
            tensor_types: file.tensor_type_counts(),
            n_layers: c.n_layers,
            windowed_layers: (0..c.n_layers).filter(|&l| c.is_local_layer(l)).count(),
            kv_dim: c.kv_dim(),
            n_embd: c.n_embd,
            n_vocab: c.n_vocab,
            context_train: c.n_ctx_train,
            context: self.context,
            threads: self.pool.n_threads(),
            kernel: kernels::kernels().name.to_string(),
            precision: self.options.precision.name().to_string(),
            has_chat_template: self.has_template,
            kv_type: self.kv_type().name().to_string(),
            kv_bytes: self.kv_bytes(self.context),
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
        let (m, b, kv) = (&self.model, self.options.batch, self.kv_type());
        score::score_kv(m, &self.pool, b, kv, prompt, continuation, top, false)
    }

    /// Like [`score`](Self::score), returning every step's full log-probability vector.
    pub fn score_full(&self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.check_score_fits(prompt, continuation)?;
        let steps = score::score_kv(
            &self.model,
            &self.pool,
            self.options.batch,
            self.kv_type(),
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
