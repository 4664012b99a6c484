//! `joule eval`: perplexity and KL divergence over a text (`ppl`), and the Pareto report
//! of model variants (`pareto`, one child process per configuration so each row's peak
//! RSS is its own). The measuring is in `joule_core::eval`; this file parses and prints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use clap::{Args, Subcommand};
use joule_core::Precision;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::pareto::{self, KvChoice, PruneChoice, Reference, RowPlan};
use joule_core::eval::{
    Config, ParetoRow, PplOptions, PplReport, evaluate, read_text, text_tokens,
};

/// The text every Debian machine has.
pub const DEFAULT_TEXT: &str = "/usr/share/common-licenses/GPL-3";

#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Perplexity over a text in llama-perplexity's windows, optionally KL against a reference.
    Ppl(PplArgs),
    /// Size, memory, speed, energy, perplexity and KL of model variants, with the Pareto front.
    Pareto(ParetoArgs),
    /// Passkey, planted facts and chat recall, unpruned and pruned: accuracy, TTFT,
    /// prefill energy, KL and top-1 agreement.
    Prune(crate::eval_prune::PruneEvalArgs),
    /// A chat far longer than the context with eviction on: errors, evicted tokens, peak
    /// RSS at the first fill and at the end, recall of a fact from the system prompt.
    Endless(crate::eval_endless::EndlessArgs),
    /// One configuration of `pareto` as a JSON line (run by `pareto` in a child process).
    #[command(hide = true)]
    ParetoRow(ParetoRowArgs),
}

#[derive(Args)]
struct TextArgs {
    /// Text to score.
    #[arg(short, long, default_value = DEFAULT_TEXT)]
    file: PathBuf,
    /// Tokens per window (the second half of each is scored).
    #[arg(short = 'c', long = "ctx", default_value_t = 512)]
    ctx: usize,
    /// Score at most this many windows (default: all the text fills).
    #[arg(long)]
    chunks: Option<usize>,
    /// Positions per forward batch.
    #[arg(short, long, default_value_t = 512)]
    batch: usize,
    /// Compute threads (default: the performance cores).
    #[arg(short, long)]
    threads: Option<usize>,
}

impl TextArgs {
    fn options(&self) -> PplOptions {
        PplOptions { ctx: self.ctx, chunks: self.chunks, batch: self.batch }
    }
}

#[derive(Args)]
struct PplArgs {
    /// GGUF model file (default: the SmolLM2-135M Q4_1 file).
    #[arg(short, long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    text: TextArgs,
    /// fast or exact.
    #[arg(long, default_value = "fast")]
    precision: String,
    /// KL reference: `exact` (this file on the exact path) or another GGUF of the same
    /// vocabulary (run on the exact path).
    #[arg(long)]
    kl_base: Option<String>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    energy: crate::EnergyArgs,
}

#[derive(Args)]
struct ParetoArgs {
    /// Model files (repeatable or comma-separated).
    #[arg(short, long, value_delimiter = ',', required = true)]
    model: Vec<PathBuf>,
    /// Precisions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "fast,exact")]
    precision: Vec<String>,
    /// KV cache types, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    kv: Vec<String>,
    /// Pruning settings, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    prune: Vec<String>,
    /// KL reference: `exact` (each file on the exact path) or one GGUF (e.g. the F16 file).
    #[arg(long, default_value = "exact")]
    reference: String,
    #[command(flatten)]
    text: TextArgs,
    /// Prompt tokens of the prefill benchmark.
    #[arg(long, default_value_t = 256)]
    pp: usize,
    /// Generated tokens of the decode benchmark.
    #[arg(long, default_value_t = 32)]
    tg: usize,
    /// Timed repetitions of each benchmark (after a warm-up).
    #[arg(short, long = "repetitions", default_value_t = 3)]
    r: usize,
    /// Print the rows as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Also write the two-panel plot (J/token and t/s against KL) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Title of the plot.
    #[arg(long, default_value = "Joule")]
    title: String,
    #[command(flatten)]
    energy: crate::EnergyArgs,
}

#[derive(Args)]
struct ParetoRowArgs {
    /// The row's plan as JSON.
    #[arg(long)]
    plan: String,
    #[command(flatten)]
    energy: crate::EnergyArgs,
}

pub fn eval(a: EvalArgs) -> crate::CliResult {
    match a.command {
        EvalCommand::Ppl(a) => ppl(a),
        EvalCommand::Pareto(a) => pareto_cmd(a),
        EvalCommand::Prune(a) => crate::eval_prune::prune_eval(a),
        EvalCommand::Endless(a) => crate::eval_endless::endless_eval(a),
        EvalCommand::ParetoRow(a) => pareto_row(a),
    }
}

fn precision(s: &str) -> crate::CliResult<Precision> {
    Ok(s.parse::<Precision>()?)
}

fn load(path: &Path, options: EngineOptions) -> crate::CliResult<Arc<Engine>> {
    Ok(Engine::load(path, options).map_err(crate::at_path(path))?)
}

fn ppl(a: PplArgs) -> crate::CliResult {
    let path = crate::model_path(a.model.as_deref())?;
    let text = read_text(&a.text.file)?;
    let options = EngineOptions {
        threads: a.text.threads,
        batch: a.text.batch.max(1),
        context: Some(a.text.ctx.max(1)),
        precision: precision(&a.precision)?,
        energy: a.energy.config()?,
        ..EngineOptions::default()
    };
    let engine = load(&path, options.clone())?;
    let reference = match a.kl_base.as_deref() {
        None => None,
        Some(base) => {
            let file = if base == "exact" { path.clone() } else { PathBuf::from(base) };
            let exact = EngineOptions { precision: Precision::Exact, energy: None, ..options };
            let name = if base == "exact" { "exact".to_string() } else { base.to_string() };
            Some((load(&file, exact)?, name))
        }
    };
    let tokens = text_tokens(&engine, &text)?;
    let bar = progress_bar();
    let report = evaluate(
        &engine,
        reference.as_ref().map(|(e, n)| (e.as_ref(), n.as_str())),
        &tokens,
        &a.text.options(),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    if a.json {
        crate::output::outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print_ppl(&path, &report);
    }
    Ok(())
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} windows {elapsed} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn print_ppl(path: &Path, r: &PplReport) {
    println!(
        "{}: PPL = {:.4} +/- {:.5} over {} tokens ({} windows of {}, BOS {}), {:.1} t/s",
        path.display(),
        r.ppl,
        r.ppl_stderr,
        r.tokens,
        r.chunks,
        r.ctx,
        if r.add_bos { "added" } else { "not added" },
        r.tokens_per_s
    );
    match (r.joules_per_token, r.energy_method) {
        (Some(j), Some(m)) => println!(
            "energy: {j:.4} J/token ({}; {})",
            serde_json::to_value(m)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            r.energy_source.as_deref().unwrap_or("")
        ),
        _ if r.kl.is_some() => {
            println!("energy: not reported with a KL reference (both models run)")
        }
        _ => println!("energy: not metered"),
    }
    if let Some(k) = &r.kl {
        println!(
            "KL against {}: mean {:.6} +/- {:.6}, median {:.6}, 99% {:.6}, max {:.6}; \
             top-1 agreement {:.2} %; mean |Δ log-prob| of its top-5 {:.5}; its PPL {:.4} +/- {:.5}",
            k.reference,
            k.mean,
            k.mean_stderr,
            k.median,
            k.p99,
            k.max,
            100.0 * k.top1_agreement,
            k.mean_abs_dlogp_top5,
            k.reference_ppl,
            k.reference_ppl_stderr
        );
    }
}

fn pareto_cmd(a: ParetoArgs) -> crate::CliResult {
    let precisions: Vec<Precision> =
        a.precision.iter().map(|p| precision(p)).collect::<Result<_, _>>()?;
    let kvs: Vec<KvChoice> = a
        .kv
        .iter()
        .map(|k| {
            KvChoice::parse(k).ok_or_else(|| format!("unknown KV type '{k}' ({})", KvChoice::NAMES))
        })
        .collect::<Result<_, _>>()?;
    let prunes: Vec<PruneChoice> = a
        .prune
        .iter()
        .map(|p| PruneChoice::parse(p).ok_or_else(|| format!("unknown pruning '{p}' (none)")))
        .collect::<Result<_, _>>()?;
    for m in &a.model {
        if !m.exists() {
            return Err(format!("model file {} not found", m.display()).into());
        }
    }
    let reference = if a.reference == "exact" {
        Reference::Exact
    } else {
        let p = PathBuf::from(&a.reference);
        if !p.exists() {
            return Err(format!("reference file {} not found", p.display()).into());
        }
        Reference::File(p)
    };
    // Fail on the text before spending minutes on the first row.
    read_text(&a.text.file)?;
    let configs = Config::grid(&a.model, &precisions, &kvs, &prunes);
    if configs.is_empty() {
        return Err("no configurations to evaluate".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut rows: Vec<ParetoRow> = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        eprintln!(
            "[{}/{}] {}",
            i + 1,
            precisions.len() * kvs.len() * prunes.len() * a.model.len(),
            config.label()
        );
        let plan = RowPlan {
            config,
            reference: reference.clone(),
            text: a.text.file.clone(),
            ppl: a.text.options(),
            pp: a.pp,
            tg: a.tg,
            repetitions: a.r,
            threads: a.text.threads,
        };
        rows.push(run_child(&exe, &plan, &a.energy)?);
    }
    let f16 = match &reference {
        Reference::File(p) => {
            std::fs::metadata(p).ok().map(|m| (m.len(), format!("size of {}", p.display())))
        }
        Reference::Exact => None,
    };
    pareto::finish_rows(&mut rows, f16);
    if let Some(path) = &a.svg {
        std::fs::write(path, pareto::svg(&rows, &a.title))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if a.json {
        crate::output::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        print!("{}", pareto::markdown(&rows));
    }
    Ok(())
}

/// Runs one row in a child process of this program and reads its JSON line.
fn run_child(
    exe: &Path,
    plan: &RowPlan,
    energy: &crate::EnergyArgs,
) -> crate::CliResult<ParetoRow> {
    let plan_json = serde_json::to_string(plan)?;
    let mut cmd = Command::new(exe);
    cmd.args(["eval", "pareto-row", "--plan", &plan_json]).args(energy_flags(energy));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(
            format!("{}: the measurement failed ({})", plan.config.label(), out.status).into()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{}: unreadable row from the child: {e}", plan.config.label()))?)
}

/// The energy flags as given, for the child.
fn energy_flags(e: &crate::EnergyArgs) -> Vec<String> {
    let mut v = vec![
        "--energy".to_string(),
        e.energy.to_string(),
        "--baseline".into(),
        e.baseline.to_string(),
    ];
    if e.subtract_baseline {
        v.push("--subtract-baseline".into());
    }
    v
}

fn pareto_row(a: ParetoRowArgs) -> crate::CliResult {
    let plan: RowPlan = serde_json::from_str(&a.plan).map_err(|e| format!("bad plan: {e}"))?;
    let row = pareto::measure_row(&plan, a.energy.config()?)?;
    crate::output::outln!("{}", serde_json::to_string(&row)?)?;
    Ok(())
}
