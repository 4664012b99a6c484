//! `joule eval prune`: passkey, planted facts and chat recall, each unpruned and under
//! every pruning setting, with accuracy, TTFT, prefill energy, KL and top-1 agreement
//! (the measuring is in `joule_core::eval::prune_eval`; this file parses and prints).

use std::path::PathBuf;

use clap::Args;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::prune_eval::{calibrate, markdown, svg};
use joule_core::eval::{PrunePlan, Setting, Task, evaluate_pruning};
use joule_core::prune::{Calibration, Limits};
use joule_core::{Budget, Precision, Strategy};

/// The defaults are the acceptance configuration of BENCHMARKS.md §11.
#[derive(Args)]
pub struct PruneEvalArgs {
    /// GGUF model file (default: the SmolLM2-135M Q4_1 file).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Tasks: passkey, facts, chat_recall.
    #[arg(long, value_delimiter = ',', default_value = "passkey,facts,chat_recall")]
    tasks: Vec<String>,
    /// Prompt lengths in tokens (passkey and facts).
    #[arg(long, value_delimiter = ',', default_value = "1000,2000")]
    lengths: Vec<usize>,
    /// Depths of the asked detail, as fractions of the filler.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9")]
    depths: Vec<f64>,
    /// Cases per task, length and depth.
    #[arg(long, default_value_t = 2)]
    seeds: u64,
    /// Pruning strategies (each is run at every budget of --keep): early-layer, self-info,
    /// snapkv, segment (segment needs `joule fetch minilm`).
    #[arg(long, value_delimiter = ',', default_value = "early-layer")]
    prune: Vec<String>,
    /// Budgets: ratios (0.1, 10%) or token counts (default 0.1,0.2; with --calibrate
    /// 0.1,0.2,0.3,0.5).
    #[arg(long, value_delimiter = ',')]
    keep: Option<Vec<String>>,
    /// Choose the most aggressive setting within the limits below and write it next to
    /// the model (MODEL.gguf.prune.json), for `--prune auto`.
    #[arg(long)]
    calibrate: bool,
    /// --calibrate: the largest mean KL per answer token (nats).
    #[arg(long, default_value_t = Limits::default().max_kl)]
    max_kl: f64,
    /// --calibrate: the smallest top-1 agreement (0..1).
    #[arg(long, default_value_t = Limits::default().min_top1_agreement)]
    min_top1: f64,
    /// --calibrate: the smallest accuracy as a share of the unpruned run's (0..1).
    #[arg(long, default_value_t = Limits::default().min_accuracy_ratio)]
    min_accuracy: f64,
    /// early-layer: the filter layer (default: the model's); self-info: the exit layer
    /// (default: all but the last two layers).
    #[arg(long)]
    prune_layer: Option<usize>,
    /// Generated tokens per answer.
    #[arg(short = 'n', long, default_value_t = 12)]
    max_tokens: usize,
    /// Compute threads (default: the performance cores).
    #[arg(short, long)]
    threads: Option<usize>,
    /// fast or exact.
    #[arg(long, default_value = "fast")]
    precision: String,
    /// Print one JSON array of rows instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Also write accuracy against TTFT, one panel per task and length, to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[command(flatten)]
    energy: crate::EnergyArgs,
}

impl PruneEvalArgs {
    fn plan(&self) -> crate::CliResult<PrunePlan> {
        let tasks = self
            .tasks
            .iter()
            .map(|t| {
                Task::parse(t)
                    .ok_or_else(|| format!("unknown task '{t}' (passkey, facts, chat_recall)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(d) = self.depths.iter().find(|d| !(0.0..=1.0).contains(*d)) {
            return Err(format!("depth {d} is outside 0..=1").into());
        }
        if self.lengths.contains(&0) || self.seeds == 0 || tasks.is_empty() {
            return Err("lengths, seeds and tasks must be at least 1".into());
        }
        let mut settings = Vec::new();
        for s in &self.prune {
            let strategy = Strategy::parse(s)?.with_layer(self.prune_layer);
            let default = if self.calibrate { "0.1,0.2,0.3,0.5" } else { "0.1,0.2" };
            let keep = match &self.keep {
                Some(k) => k.clone(),
                None => default.split(',').map(String::from).collect(),
            };
            for k in &keep {
                settings.push(Setting { strategy: Some(strategy), budget: Budget::parse(k)? });
            }
        }
        Ok(PrunePlan {
            tasks,
            lengths: self.lengths.clone(),
            depths: self.depths.clone(),
            seeds: self.seeds,
            settings,
            max_tokens: self.max_tokens.max(1),
        })
    }
}

pub fn prune_eval(a: PruneEvalArgs) -> crate::CliResult {
    let plan = a.plan()?;
    let path = crate::model_path(a.model.as_deref())?;
    // Room for the longest prompt (the chat is about 600 tokens) and its answer.
    let longest = plan.lengths.iter().copied().max().unwrap_or(0).max(1024);
    let options = EngineOptions {
        threads: a.threads,
        context: Some(longest + 256 + a.max_tokens),
        precision: a.precision.parse::<Precision>()?,
        energy: a.energy.config()?,
        ..EngineOptions::default()
    };
    let engine = Engine::load(&path, options).map_err(crate::at_path(&path))?;
    let model = path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let rows = evaluate_pruning(&engine, &model, &plan, &mut |done| eprintln!("done: {done}"))?;
    if let Some(file) = &a.svg {
        std::fs::write(file, svg(&rows, &model)).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    if a.calibrate {
        write_calibration(&a, &plan, &rows, &path)?;
    }
    if a.json {
        crate::output::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        crate::output::outln!(
            "{model}: {} threads, {} kernels, {}",
            engine.info().threads,
            Engine::kernel_name(),
            a.precision
        )?;
        crate::output::outln!("{}", markdown(&rows))?;
    }
    Ok(())
}

/// Writes the chosen setting next to the model (through a temporary file, so a failed
/// write leaves the old calibration whole).
fn write_calibration(
    a: &PruneEvalArgs,
    plan: &PrunePlan,
    rows: &[joule_core::eval::PruneRow],
    model: &std::path::Path,
) -> crate::CliResult {
    let limits = Limits {
        max_kl: a.max_kl,
        min_top1_agreement: a.min_top1,
        min_accuracy_ratio: a.min_accuracy,
    };
    let Some(chosen) = calibrate(plan, rows, &limits, model) else {
        eprintln!(
            "calibration: no setting stayed within KL <= {}, top-1 >= {}, accuracy >= {} of \
             unpruned; nothing written (`--prune auto` keeps its default)",
            limits.max_kl, limits.min_top1_agreement, limits.min_accuracy_ratio
        );
        return Ok(());
    };
    let path = Calibration::path_for(model);
    joule_core::fsutil::check_output_file(&path, &[model])?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&chosen)? + "\n")
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "calibration: {} keeping {} (KL {:.4}, top-1 {:.0} %, accuracy {:.0} % of unpruned, \
         {:.2}x TTFT) written to {}",
        chosen.strategy.name(),
        chosen.budget,
        chosen.kl,
        chosen.top1_agreement * 100.0,
        chosen.accuracy_ratio * 100.0,
        chosen.speedup,
        path.display()
    );
    Ok(())
}
