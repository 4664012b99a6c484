//! The Pareto report: for each configuration (model file × precision × KV type × pruning
//! setting) its size, memory, speed, energy and fidelity to a reference, and which
//! configurations no other beats on both energy (or speed) and KL divergence.
//!
//! A new dimension is one field of [`Config`] (with its enum), applied in
//! [`Config::engine_options`] and listed by [`Config::label`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kl::KlReport;
use super::ppl::{PplOptions, evaluate, read_text, text_tokens};
use super::{EvalError, EvalResult};
use crate::Precision;
use crate::energy::{EnergyConfig, EnergyReading, Method};
use crate::engine::bench::{BenchCase, BenchSetup, run_case_metered};
use crate::engine::{Engine, EngineOptions, KvType, peak_rss_bytes};

/// Element type of the KV cache of a row (the engine's [`KvType`], named in the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvChoice {
    /// f32 keys and values: exact.
    #[default]
    F32,
    /// f16 keys and values (the fast path's default, as llama.cpp's).
    F16,
    /// 8-bit keys and values with an f16 scale per 32.
    #[serde(rename = "q8_0")]
    Q8_0,
}

impl KvChoice {
    pub const NAMES: &'static str = "f32, f16 or q8_0";

    pub fn parse(s: &str) -> Option<Self> {
        match s.parse::<KvType>().ok()? {
            KvType::F32 => Some(KvChoice::F32),
            KvType::F16 => Some(KvChoice::F16),
            KvType::Q8_0 => Some(KvChoice::Q8_0),
        }
    }

    pub fn kv_type(self) -> KvType {
        match self {
            KvChoice::F32 => KvType::F32,
            KvChoice::F16 => KvType::F16,
            KvChoice::Q8_0 => KvType::Q8_0,
        }
    }

    pub fn name(self) -> &'static str {
        self.kv_type().name()
    }
}

/// Pruning setting (the pruning work adds its budgets here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneChoice {
    #[default]
    None,
}

impl PruneChoice {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(PruneChoice::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PruneChoice::None => "none",
        }
    }
}

/// One point of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub model: PathBuf,
    pub precision: Precision,
    #[serde(default)]
    pub kv: KvChoice,
    #[serde(default)]
    pub prune: PruneChoice,
}

impl Config {
    /// Every combination of the given values, models outermost.
    pub fn grid(
        models: &[PathBuf],
        precisions: &[Precision],
        kvs: &[KvChoice],
        prunes: &[PruneChoice],
    ) -> Vec<Config> {
        let mut out = Vec::new();
        for model in models {
            for &precision in precisions {
                for &kv in kvs {
                    for &prune in prunes {
                        out.push(Config { model: model.clone(), precision, kv, prune });
                    }
                }
            }
        }
        out
    }

    /// Applies the configuration to load-time options.
    pub fn engine_options(&self, base: EngineOptions) -> EngineOptions {
        let PruneChoice::None = self.prune;
        EngineOptions { precision: self.precision, kv_type: Some(self.kv.kv_type()), ..base }
    }

    pub fn label(&self) -> String {
        let file = self
            .model
            .file_name()
            .map_or_else(|| self.model.display().to_string(), |f| f.to_string_lossy().into_owned());
        format!(
            "{file} {} kv={} prune={}",
            self.precision.name(),
            self.kv.name(),
            self.prune.name()
        )
    }
}

/// What KL is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reference {
    /// Each model's own file on the exact path.
    Exact,
    /// Another file of the same weights (e.g. F16), on the exact path.
    File(PathBuf),
}

impl Reference {
    pub fn describe(&self) -> String {
        match self {
            Reference::Exact => "exact".into(),
            Reference::File(p) => format!("{} (exact)", p.display()),
        }
    }
}

/// Everything one configuration's measurement needs (serialized to a child process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowPlan {
    pub config: Config,
    pub reference: Reference,
    pub text: PathBuf,
    pub ppl: PplOptions,
    /// Prompt tokens of the prefill benchmark, and generated tokens of the decode one.
    pub pp: usize,
    pub tg: usize,
    pub repetitions: usize,
    pub threads: Option<usize>,
}

/// The measurements of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParetoRow {
    pub label: String,
    pub config: Config,
    /// `general.file_type` in llama.cpp's words (Q4_0, Q4_K_M, F16, ...).
    pub file_type: String,
    pub file_bytes: u64,
    pub parameters: u64,
    /// F16 bytes ÷ file bytes (filled in by the report, see `compression_basis`).
    pub compression_ratio: Option<f64>,
    pub compression_basis: Option<String>,
    /// Peak resident memory after load, prefill and decode benchmarks (before the
    /// quality evaluation loads its reference).
    pub peak_rss_bytes: Option<u64>,
    pub threads: usize,
    pub kernel: String,
    pub pp_tokens: usize,
    pub tg_tokens: usize,
    /// Median tokens per second of the repetitions.
    pub pp_tokens_per_s: f64,
    pub tg_tokens_per_s: f64,
    /// Mean joules per prompt token and per generated token; None without metering.
    pub prefill_joules_per_token: Option<f64>,
    pub decode_joules_per_token: Option<f64>,
    pub energy_method: Method,
    pub energy_source: String,
    pub ppl: f64,
    pub ppl_stderr: f64,
    pub ppl_chunks: usize,
    pub ppl_ctx: usize,
    pub kl: KlReport,
    /// On the front of decode J/token against mean KL.
    pub front_energy: bool,
    /// On the front of decode t/s against mean KL.
    pub front_speed: bool,
}

/// Measures one configuration in this process: load, prefill and decode benchmarks
/// (with energy windows), peak RSS, then perplexity and KL against the reference.
pub fn measure_row(plan: &RowPlan, energy: Option<EnergyConfig>) -> EvalResult<ParetoRow> {
    let c = &plan.config;
    let base = EngineOptions {
        threads: plan.threads,
        batch: plan.ppl.batch,
        context: Some(plan.ppl.ctx),
        energy,
        ..EngineOptions::default()
    };
    let engine = Engine::load(&c.model, c.engine_options(base))?;
    let text = read_text(&plan.text)?;
    let tokens = text_tokens(&engine, &text)?;
    let (pp_tps, prefill_j, pp_readings) = bench(&engine, BenchCase::Prompt(plan.pp), plan)?;
    let (tg_tps, decode_j, tg_readings) = bench(&engine, BenchCase::Generate(plan.tg), plan)?;
    let peak_rss = peak_rss_bytes();
    let reference_path = match &plan.reference {
        Reference::Exact => c.model.as_path(),
        Reference::File(p) => p.as_path(),
    };
    let reference = load_reference(reference_path, plan)?;
    let name = plan.reference.describe();
    let report =
        evaluate(&engine, Some((&reference, name.as_str())), &tokens, &plan.ppl, &mut |_, _| {})?;
    let Some(kl) = report.kl else {
        return Err(EvalError::NoConfigurations);
    };
    let info = engine.info();
    let first = pp_readings.first().or(tg_readings.first());
    Ok(ParetoRow {
        label: c.label(),
        config: c.clone(),
        file_type: file_type_name(&engine),
        file_bytes: info.file_bytes,
        parameters: info.parameters,
        compression_ratio: None,
        compression_basis: None,
        peak_rss_bytes: peak_rss,
        threads: info.threads,
        kernel: info.kernel,
        pp_tokens: plan.pp,
        tg_tokens: plan.tg,
        pp_tokens_per_s: pp_tps,
        tg_tokens_per_s: tg_tps,
        prefill_joules_per_token: prefill_j,
        decode_joules_per_token: decode_j,
        energy_method: first.map_or(Method::None, |r| r.method),
        energy_source: first.map_or(String::new(), |r| r.source.description.clone()),
        ppl: report.ppl,
        ppl_stderr: report.ppl_stderr,
        ppl_chunks: report.chunks,
        ppl_ctx: report.ctx,
        kl,
        front_energy: false,
        front_speed: false,
    })
}

fn load_reference(path: &Path, plan: &RowPlan) -> EvalResult<std::sync::Arc<Engine>> {
    let options = EngineOptions {
        threads: plan.threads,
        batch: plan.ppl.batch,
        context: Some(plan.ppl.ctx),
        precision: Precision::Exact,
        energy: None,
        ..EngineOptions::default()
    };
    Ok(Engine::load(path, options)?)
}

/// Median t/s and mean J/token of one benchmark case.
fn bench(
    engine: &Engine,
    case: BenchCase,
    plan: &RowPlan,
) -> EvalResult<(f64, Option<f64>, Vec<EnergyReading>)> {
    let (times, readings) =
        run_case_metered(engine, case, &BenchSetup::default(), plan.repetitions.max(1))?;
    let mut tps = times.tokens_per_s();
    tps.sort_by(f64::total_cmp);
    let median = tps[tps.len() / 2];
    let n = match case {
        BenchCase::Prompt(n) | BenchCase::Generate(n) => n as u64,
    };
    let per: Vec<f64> = readings.iter().filter_map(|r| r.joules_per(n)).collect();
    let joules = (!per.is_empty()).then(|| per.iter().sum::<f64>() / per.len() as f64);
    Ok((median, joules, readings))
}

/// llama.cpp's name of the file's `general.file_type`, else its most common matrix type.
fn file_type_name(engine: &Engine) -> String {
    let md = &engine.model().file.metadata;
    let named = match md.int::<u32>("general.file_type").ok() {
        Some(0) => Some("F32"),
        Some(1) => Some("F16"),
        Some(2) => Some("Q4_0"),
        Some(3) => Some("Q4_1"),
        Some(7) => Some("Q8_0"),
        Some(8) => Some("Q5_0"),
        Some(14) => Some("Q4_K_S"),
        Some(15) => Some("Q4_K_M"),
        Some(18) => Some("Q6_K"),
        _ => None,
    };
    named.map(str::to_string).unwrap_or_else(|| {
        let info = engine.info();
        info.tensor_types
            .into_iter()
            .filter(|(k, _)| k != "F32")
            .max_by_key(|(_, n)| *n)
            .map_or_else(|| "F32".into(), |(k, _)| k)
    })
}

/// Marks the points no other point dominates, minimizing `x` and minimizing `y` (or
/// maximizing it with `maximize_y`). Points with a non-finite coordinate are never on
/// the front.
pub fn pareto_front(points: &[(f64, f64)], maximize_y: bool) -> Vec<bool> {
    let better_y = |a: f64, b: f64| if maximize_y { a >= b } else { a <= b };
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            finite(p)
                && !points.iter().enumerate().any(|(j, q)| {
                    j != i
                        && finite(q)
                        && q.0 <= p.0
                        && better_y(q.1, p.1)
                        && (q.0 < p.0 || q.1 != p.1)
                })
        })
        .collect()
}

/// Fills the compression ratios and the two fronts.
pub fn finish_rows(rows: &mut [ParetoRow], f16_bytes: Option<(u64, String)>) {
    for r in rows.iter_mut() {
        let (bytes, basis) = f16_bytes
            .clone()
            .unwrap_or_else(|| (r.parameters * 2, "parameters × 2 bytes".to_string()));
        r.compression_ratio = Some(bytes as f64 / r.file_bytes.max(1) as f64);
        r.compression_basis = Some(basis);
    }
    let energy: Vec<(f64, f64)> =
        rows.iter().map(|r| (r.kl.mean, r.decode_joules_per_token.unwrap_or(f64::NAN))).collect();
    let speed: Vec<(f64, f64)> = rows.iter().map(|r| (r.kl.mean, r.tg_tokens_per_s)).collect();
    for (r, on) in rows.iter_mut().zip(pareto_front(&energy, false)) {
        r.front_energy = on;
    }
    for (r, on) in rows.iter_mut().zip(pareto_front(&speed, true)) {
        r.front_speed = on;
    }
}

/// The report as a Markdown table, with the energy method and reference under it.
pub fn markdown(rows: &[ParetoRow]) -> String {
    let mut s = String::from(
        "| model | type | precision | KV | prune | size MiB | ×F16 | peak RSS MiB | pp t/s | tg t/s \
         | prefill J/tok | decode J/tok | PPL | KL mean | KL median | KL p99 | KL max | top-1 \
         | Δlogp top5 | front |\n",
    );
    s.push_str(
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: \
         | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let opt = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
    for r in rows {
        let front = match (r.front_energy, r.front_speed) {
            (true, true) => "J, t/s",
            (true, false) => "J",
            (false, true) => "t/s",
            (false, false) => "",
        };
        let file = r.config.model.file_name().map_or(String::new(), |f| f.to_string_lossy().into());
        s.push_str(&format!(
            "| {file} | {} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {:.1} | {} | {} | {:.3} \
             | {:.5} | {:.5} | {:.4} | {:.3} | {:.2} % | {:.4} | {front} |\n",
            r.file_type,
            r.config.precision.name(),
            r.config.kv.name(),
            r.config.prune.name(),
            mib(r.file_bytes),
            opt(r.compression_ratio, 2),
            r.peak_rss_bytes.map_or("n/a".into(), |b| format!("{:.0}", mib(b))),
            r.pp_tokens_per_s,
            r.tg_tokens_per_s,
            opt(r.prefill_joules_per_token, 4),
            opt(r.decode_joules_per_token, 4),
            r.ppl,
            r.kl.mean,
            r.kl.median,
            r.kl.p99,
            r.kl.max,
            100.0 * r.kl.top1_agreement,
            r.kl.mean_abs_dlogp_top5,
        ));
    }
    if let Some(r) = rows.first() {
        let method = match r.energy_method {
            Method::Measured => "measured",
            Method::Estimated => "estimated",
            Method::None => "not metered",
            Method::NoData => "no data",
        };
        s.push_str(&format!(
            "\nEnergy: {method} ({}). KL against {}; {} windows of {} tokens; pp{} / tg{}, \
             {} threads, kernel {}.\n",
            r.energy_source,
            r.kl.reference,
            r.ppl_chunks,
            r.ppl_ctx,
            r.pp_tokens,
            r.tg_tokens,
            r.threads,
            r.kernel
        ));
    }
    s
}

/// The two panels (decode J/token and decode t/s against mean KL) as one SVG.
pub fn svg(rows: &[ParetoRow], title: &str) -> String {
    let short = |r: &ParetoRow| format!("{} {}", r.file_type, r.config.precision.name());
    let energy = rows
        .iter()
        .map(|r| super::svg::Point {
            label: short(r),
            x: r.kl.mean,
            y: r.decode_joules_per_token.unwrap_or(f64::NAN),
            front: r.front_energy,
        })
        .collect();
    let speed = rows
        .iter()
        .map(|r| super::svg::Point {
            label: short(r),
            x: r.kl.mean,
            y: r.tg_tokens_per_s,
            front: r.front_speed,
        })
        .collect();
    let reference = rows.first().map_or(String::new(), |r| r.kl.reference.clone());
    let method = rows.first().map_or("", |r| match r.energy_method {
        Method::Measured => "measured",
        Method::Estimated => "estimated",
        Method::None => "not metered",
        Method::NoData => "no data",
    });
    let panels = [
        super::svg::Panel {
            title: format!("{title}: energy"),
            x_label: "mean KL per token (nats)".into(),
            y_label: format!("decode J/token ({method})"),
            points: energy,
        },
        super::svg::Panel {
            title: format!("{title}: speed"),
            x_label: "mean KL per token (nats)".into(),
            y_label: "decode tokens/s".into(),
            points: speed,
        },
    ];
    super::svg::render(&panels, &format!("KL against {reference}; filled red: Pareto front"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_of_hand_made_points() {
        // (KL, J): a dominates c; b trades; d equals a's KL with more J; e is NaN.
        let pts = [(0.1, 1.0), (0.0, 3.0), (0.2, 2.0), (0.1, 1.5), (f64::NAN, 0.1)];
        assert_eq!(pareto_front(&pts, false), vec![true, true, false, false, false]);
        // Maximizing y: (0.0, 3.0) dominates every point but equals none.
        assert_eq!(pareto_front(&pts, true), vec![false, true, false, false, false]);
        // Duplicates both stay on the front.
        assert_eq!(pareto_front(&[(1.0, 1.0), (1.0, 1.0)], false), vec![true, true]);
    }
}
