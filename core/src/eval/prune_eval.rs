//! `joule eval prune`: what input pruning costs in answers and saves in time. Every case
//! (see `prune_tasks.rs`) runs unpruned first; its answer is the reference. Each pruning
//! setting then runs the same case in a fresh session (so no cache is shared), and the
//! unpruned answer is scored teacher-forced after the tokens the pruned run kept: KL
//! divergence and top-1 agreement of the next-token distributions. Time to first token
//! includes the scoring; the prefill joules are the turn's own energy window.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::EvalResult;
use super::kl::KlStats;
use super::prune_tasks::{Case, Prompt, Task, case};
use crate::energy::Method;
use crate::engine::{Engine, GenerateOptions, Session, TurnReport};
use crate::prune::{Budget, Calibration, Limits, PruneOptions, Strategy};

/// One pruning setting; `strategy: None` is the unpruned baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub strategy: Option<Strategy>,
    pub budget: Budget,
}

impl Setting {
    pub const NONE: Setting = Setting { strategy: None, budget: Budget::Ratio(1.0) };

    fn options(&self) -> Option<PruneOptions> {
        self.strategy.map(|s| PruneOptions::new(s, self.budget))
    }

    fn strategy_name(&self) -> String {
        match self.strategy {
            None => "none".into(),
            Some(s) => match s.layer() {
                Some(k) => format!("{}@{k}", s.name()),
                None => s.name().into(),
            },
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct PrunePlan {
    pub tasks: Vec<Task>,
    /// Prompt lengths in tokens (passkey and facts; the chat has its own).
    pub lengths: Vec<usize>,
    /// Where the asked detail sits, as a fraction of the filler.
    pub depths: Vec<f64>,
    /// Cases per task, length and depth (seeds 1..=seeds).
    pub seeds: u64,
    /// The pruning settings, run after the unpruned baseline.
    pub settings: Vec<Setting>,
    pub max_tokens: usize,
}

/// One row: a task at one length under one setting, over all its cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneRow {
    pub task: String,
    pub model: String,
    pub strategy: String,
    pub budget: String,
    /// The prompt length asked for (0 for the chat, whose length is its 20 turns).
    pub length: usize,
    pub cases: usize,
    /// Mean prompt tokens, and mean tokens the model ran on.
    pub tokens_in: f64,
    pub tokens_kept: f64,
    /// Median time to first token, scoring included, and median scoring time.
    pub ttft_s: f64,
    pub scoring_s: f64,
    /// Mean joules of the prefill window (None without an energy source).
    pub prefill_j: Option<f64>,
    /// "measured", "estimated" or "none": how `prefill_j` was obtained.
    pub energy: String,
    /// Share of cases whose answer holds the expected text.
    pub accuracy: f64,
    /// Mean KL(unpruned ‖ pruned) and top-1 agreement over the unpruned answer's steps
    /// (None for the baseline, which is the reference).
    pub kl: Option<f64>,
    pub top1_agreement: Option<f64>,
    /// TTFT of the baseline over this row's (≥ 1: faster).
    pub speedup: f64,
}

/// The outcome of one case under one setting.
struct Run {
    report: TurnReport,
    correct: bool,
    /// The prompt tokens the model ran on (a compressed cache: those it kept), and the
    /// answer's tokens that went through it.
    kept: Vec<u32>,
    answer: Vec<u32>,
    /// The session, whose cache a compressing strategy's answer is scored on.
    session: Session,
}

fn run(engine: &Arc<Engine>, case: &Case, setting: &Setting, max_tokens: usize) -> EvalResult<Run> {
    let mut session = engine.session()?;
    let opts = GenerateOptions {
        max_tokens: Some(max_tokens),
        prune: setting.options(),
        ..Default::default()
    };
    let mut text = String::new();
    let report = match &case.prompt {
        Prompt::Raw(p) => session.complete(p, &opts, &mut |t| text.push_str(t))?,
        Prompt::Chat(messages) => {
            let (question, earlier) = messages.split_last().expect("a chat case has messages");
            earlier.iter().for_each(|m| session.push_message(m.clone()));
            session.send(&question.content, &opts, &mut |t| text.push_str(t))?
        }
    };
    // A fresh session's cache holds the kept prompt, then the answer but its last token.
    // SnapKV prefills every token, then keeps some of their slots.
    let slots = match (&setting.strategy, &report.pruning) {
        (Some(Strategy::SnapKv { .. }), Some(p)) => p.tokens_kept,
        _ => report.prefill_tokens,
    };
    let cached = session.cached_tokens();
    let split = slots.min(cached.len());
    Ok(Run {
        correct: text.contains(&case.answer),
        kept: cached[..split].to_vec(),
        answer: cached[split..].to_vec(),
        report,
        session,
    })
}

/// Filler sentences that bring a case of `task` to about `tokens` tokens.
fn sentences_for(engine: &Engine, task: Task, tokens: usize) -> EvalResult<usize> {
    let count = |s: usize| -> EvalResult<usize> {
        let text = match case(task, s, 0.5, 0).prompt {
            Prompt::Raw(t) => t,
            Prompt::Chat(_) => return Ok(0),
        };
        Ok(engine.tokenize(&text, false)?.len())
    };
    let (empty, hundred) = (count(0)?, count(100)?);
    let per = (hundred.saturating_sub(empty) as f64 / 100.0).max(1.0);
    Ok(((tokens.saturating_sub(empty)) as f64 / per).round() as usize)
}

/// Accumulates one row.
#[derive(Default)]
struct Tally {
    cases: usize,
    correct: usize,
    tokens_in: usize,
    tokens_kept: usize,
    ttft: Vec<f64>,
    scoring: Vec<f64>,
    joules: Option<f64>,
    method: Option<Method>,
    kl: Option<KlStats>,
}

impl Tally {
    fn add(&mut self, r: &Run) {
        self.cases += 1;
        self.correct += r.correct as usize;
        self.tokens_in += r.report.prompt_tokens;
        self.tokens_kept +=
            r.report.pruning.as_ref().map_or(r.report.prompt_tokens, |p| p.tokens_kept);
        self.ttft.push(r.report.time_to_first_token_ms / 1000.0);
        self.scoring.push(r.report.pruning.as_ref().map_or(0.0, |p| p.scoring_ms / 1000.0));
        if let Some(e) = &r.report.energy {
            *self.joules.get_or_insert(0.0) += e.prefill_joules;
            self.method = Some(e.method);
        }
    }

    fn row(self, task: Task, model: &str, setting: &Setting, length: usize) -> PruneRow {
        let n = self.cases.max(1) as f64;
        let kl = self.kl.map(|k| k.report("unpruned"));
        PruneRow {
            task: task.name().into(),
            model: model.into(),
            strategy: setting.strategy_name(),
            budget: if setting.strategy.is_none() {
                "100%".into()
            } else {
                setting.budget.to_string()
            },
            length,
            cases: self.cases,
            tokens_in: self.tokens_in as f64 / n,
            tokens_kept: self.tokens_kept as f64 / n,
            ttft_s: median(self.ttft),
            scoring_s: median(self.scoring),
            prefill_j: self.joules.map(|j| j / n),
            energy: self.method.map_or("none", Method::name).into(),
            accuracy: self.correct as f64 / n,
            kl: kl.as_ref().map(|k| k.mean),
            top1_agreement: kl.as_ref().map(|k| k.top1_agreement),
            speedup: 1.0,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `plan` on `engine`; `progress` hears about every finished case.
pub fn evaluate_pruning(
    engine: &Arc<Engine>,
    model: &str,
    plan: &PrunePlan,
    progress: &mut dyn FnMut(&str),
) -> EvalResult<Vec<PruneRow>> {
    // Warm the weights' pages and the threads before anything is timed.
    run(engine, &case(Task::Passkey, 20, 0.5, 0), &Setting::NONE, 2)?;
    let mut rows = Vec::new();
    for &task in &plan.tasks {
        let lengths = if task == Task::ChatRecall { vec![0] } else { plan.lengths.clone() };
        let depths = if task == Task::ChatRecall { vec![0.0] } else { plan.depths.clone() };
        for length in lengths {
            let sentences = sentences_for(engine, task, length)?;
            let mut tallies: Vec<Tally> =
                (0..=plan.settings.len()).map(|_| Tally::default()).collect();
            for &depth in &depths {
                for seed in 1..=plan.seeds {
                    let c = case(task, sentences, depth, seed);
                    run_case(engine, &c, plan, &mut tallies)?;
                    progress(&format!("{} {length} depth {depth} seed {seed}", task.name()));
                }
            }
            let settings = std::iter::once(&Setting::NONE).chain(&plan.settings);
            let mut group: Vec<PruneRow> = tallies
                .into_iter()
                .zip(settings)
                .map(|(t, s)| t.row(task, model, s, length))
                .collect();
            let base = group[0].ttft_s;
            group.iter_mut().for_each(|r| r.speedup = base / r.ttft_s.max(1e-9));
            rows.extend(group);
        }
    }
    Ok(rows)
}

/// One case under the baseline and every setting, teacher-forcing the baseline's answer.
fn run_case(
    engine: &Arc<Engine>,
    c: &Case,
    plan: &PrunePlan,
    tallies: &mut [Tally],
) -> EvalResult<()> {
    let base = run(engine, c, &Setting::NONE, plan.max_tokens)?;
    tallies[0].add(&base);
    let reference = if base.answer.is_empty() {
        Vec::new()
    } else {
        engine.score_full(&base.kept, &base.answer)?
    };
    for (setting, tally) in plan.settings.iter().zip(&mut tallies[1..]) {
        let mut pruned = run(engine, c, setting, plan.max_tokens)?;
        tally.add(&pruned);
        let stats = tally.kl.get_or_insert_with(KlStats::default);
        if !base.answer.is_empty() {
            let model = match setting.strategy {
                // A compressed cache: the first answer token saw the whole prompt (the
                // reference's first step), the rest are scored on the kept slots.
                Some(Strategy::SnapKv { .. }) => {
                    let slots = pruned.kept.len();
                    let rest = pruned.session.score_after_slots(slots, &base.answer)?;
                    reference.iter().take(1).cloned().chain(rest).collect()
                }
                _ => engine.score_full(&pruned.kept, &base.answer)?,
            };
            for ((r, m), &next) in reference.iter().zip(&model).zip(&base.answer) {
                stats.push(r, m, next as usize);
            }
        }
    }
    Ok(())
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[PruneRow]) -> String {
    let mut out = String::from(
        "| task | length | strategy | budget | cases | tokens in | kept | TTFT s | speedup | scoring s | prefill J | accuracy | KL | top-1 |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |x| format!("{x:.digits$}"));
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.3} | {:.2}x | {:.3} | {} | {:.0}% | {} | {} |\n",
            r.task,
            if r.length == 0 { "20 turns".into() } else { r.length.to_string() },
            r.strategy,
            r.budget,
            r.cases,
            r.tokens_in,
            r.tokens_kept,
            r.ttft_s,
            r.speedup,
            r.scoring_s,
            opt(r.prefill_j, 3),
            r.accuracy * 100.0,
            opt(r.kl, 4),
            r.top1_agreement.map_or("-".to_string(), |t| format!("{:.0}%", t * 100.0)),
        ));
    }
    out
}

/// Accuracy against TTFT, one panel per task and length; the front maximizes accuracy
/// and minimizes TTFT.
pub fn svg(rows: &[PruneRow], title: &str) -> String {
    let mut panels = Vec::new();
    let mut keys: Vec<(String, usize)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.task.clone(), r.length)) {
            keys.push((r.task.clone(), r.length));
        }
    }
    for (task, length) in keys {
        let group: Vec<&PruneRow> =
            rows.iter().filter(|r| r.task == task && r.length == length).collect();
        let points: Vec<(f64, f64)> =
            group.iter().map(|r| (r.ttft_s, r.accuracy * 100.0)).collect();
        let front = super::pareto::pareto_front(&points, true);
        let points = group
            .iter()
            .zip(front)
            .map(|(r, front)| super::svg::Point {
                label: format!("{} {}", r.strategy, r.budget),
                x: r.ttft_s,
                y: r.accuracy * 100.0,
                front,
            })
            .collect();
        let size = if length == 0 { "20 turns".into() } else { format!("{length} tok") };
        panels.push(super::svg::Panel {
            title: format!("{title}: {task}, {size}"),
            x_label: "time to first token, s (scoring included)".into(),
            y_label: "accuracy %".into(),
            points,
        });
    }
    super::svg::render(
        &panels,
        "median TTFT over the cases; filled red: Pareto front (fast and accurate)",
    )
}

/// Picks, from rows of `plan` (as [`evaluate_pruning`] returns them), the setting that
/// keeps the fewest tokens while every figure stays within `limits`, over all tasks
/// together; None when no setting does.
pub fn calibrate(
    plan: &PrunePlan,
    rows: &[PruneRow],
    limits: &Limits,
    model: &std::path::Path,
) -> Option<Calibration> {
    let group = plan.settings.len() + 1;
    let mut best: Option<Calibration> = None;
    let mut best_kept = f64::INFINITY;
    for (i, setting) in plan.settings.iter().enumerate() {
        let (mut cases, mut kl, mut top1, mut right, mut base_right) = (0, 0.0, 0.0, 0.0, 0.0);
        let (mut kept, mut ttft, mut base_ttft) = (0.0, 0.0, 0.0);
        for g in rows.chunks(group) {
            let (base, r) = (&g[0], &g[i + 1]);
            let n = r.cases as f64;
            cases += r.cases;
            kl += r.kl.unwrap_or(f64::INFINITY) * n;
            top1 += r.top1_agreement.unwrap_or(0.0) * n;
            right += r.accuracy * n;
            base_right += base.accuracy * n;
            kept += r.tokens_kept / r.tokens_in.max(1.0) * n;
            ttft += r.ttft_s * n;
            base_ttft += base.ttft_s * n;
        }
        let n = cases.max(1) as f64;
        let accuracy_ratio = if base_right > 0.0 { right / base_right } else { 1.0 };
        let (kl, top1, kept) = (kl / n, top1 / n, kept / n);
        let within = kl <= limits.max_kl
            && top1 >= limits.min_top1_agreement
            && accuracy_ratio >= limits.min_accuracy_ratio;
        let Some(strategy) = setting.strategy.filter(|_| within && kept < best_kept) else {
            continue;
        };
        best_kept = kept;
        best = Some(Calibration {
            model: model.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            model_bytes: std::fs::metadata(model).map(|m| m.len()).unwrap_or(0),
            strategy,
            budget: setting.budget,
            limits: *limits,
            kl,
            top1_agreement: top1,
            accuracy_ratio,
            speedup: base_ttft / ttft.max(1e-9),
            tasks: plan.tasks.iter().map(|t| t.name()).collect::<Vec<_>>().join(","),
            cases,
        });
    }
    best
}
