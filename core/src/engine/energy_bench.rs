//! The "measure battery usage" job: an idle baseline, then a fixed set of chat prompts
//! for a duration or a token count, metered by the engine's energy meter with the
//! prefill/decode split of every turn. One implementation for the CLI and the phones.
//!
//! The baseline is the idle power measured just before the run by the same meter; it is
//! subtracted from each window's raw joules (idle watts × window seconds) and the result
//! says so. A window whose net energy would be negative is clamped at 0 and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::report::rate;
use super::{CancelFlag, Engine, GenerateOptions, TurnReport};
use crate::energy::{EnergyError, EnergyReading, Method, SourceKind, ThermalState};
use crate::error::{Error, Result};

/// Prompts of the benchmark: short everyday requests with answers of a few sentences.
pub const BENCH_PROMPTS: [&str; 4] = [
    "Explain in three sentences why the sky is blue.",
    "Write a short friendly note inviting a neighbour for tea.",
    "List five tips for saving battery on a phone.",
    "Summarise the plot of a detective story in a few sentences.",
];

/// What to run. At least one of `duration_s` and `max_total_tokens` must be set; the run
/// stops at whichever comes first (after the turn in progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnergyBenchConfig {
    /// Seconds of idle baseline before the prompts (0: none, nothing subtracted).
    pub baseline_s: f64,
    /// Seconds of generation.
    pub duration_s: Option<f64>,
    /// Generated tokens over all turns.
    pub max_total_tokens: Option<usize>,
    /// Limit of generated tokens per answer.
    pub tokens_per_prompt: usize,
    /// Prompts, taken in turn, each in a fresh conversation (default [`BENCH_PROMPTS`]).
    pub prompts: Vec<String>,
}

impl Default for EnergyBenchConfig {
    fn default() -> Self {
        Self {
            baseline_s: 10.0,
            duration_s: Some(60.0),
            max_total_tokens: None,
            tokens_per_prompt: 64,
            prompts: BENCH_PROMPTS.iter().map(|p| p.to_string()).collect(),
        }
    }
}

impl EnergyBenchConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(why));
        if !(self.baseline_s.is_finite() && (0.0..=3600.0).contains(&self.baseline_s)) {
            return bad(format!("baseline {} s must be between 0 and 3600", self.baseline_s));
        }
        match (self.duration_s, self.max_total_tokens) {
            (None, None) => return bad("give a duration or a token count".into()),
            (Some(d), _) if !(d.is_finite() && d > 0.0 && d <= 86_400.0) => {
                return bad(format!("duration {d} s must be above 0 and at most a day"));
            }
            (_, Some(0)) => return bad("the token count must be at least 1".into()),
            _ => {}
        }
        if self.tokens_per_prompt == 0 {
            return bad("tokens per prompt must be at least 1".into());
        }
        if self.prompts.is_empty() || self.prompts.iter().any(|p| p.trim().is_empty()) {
            return bad("the prompts must be a non-empty list of non-empty texts".into());
        }
        Ok(())
    }
}

/// Which part of the run is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchPhase {
    Baseline,
    Running,
    Done,
}

/// Progress sent while the run goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyBenchProgress {
    pub phase: BenchPhase,
    /// 0 to 1 over the whole run (baseline included).
    pub fraction: f64,
    pub elapsed_s: f64,
    pub turns: usize,
    pub generated_tokens: usize,
}

/// The idle baseline and what was done with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchBaseline {
    pub watts: f64,
    pub measured_over_s: f64,
    /// Whether `watts × window seconds` was subtracted from the joules below.
    pub subtracted: bool,
}

/// Quality flags gathered over every window of the run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BenchQuality {
    pub charging: bool,
    pub on_external_power: bool,
    /// Windows spanning too few sensor updates to be trusted on their own.
    pub windows_sensor_too_slow: usize,
    /// Windows whose net energy was negative and clamped at 0.
    pub windows_clamped: usize,
    pub worst_thermal_state: Option<ThermalState>,
    pub sensor_errors: u64,
}

/// What the run cost. Joules are net of the baseline when `baseline.subtracted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyBenchResult {
    /// `measured` or `estimated`, never mixed.
    pub method: Method,
    pub source_kind: SourceKind,
    pub source: String,
    pub baseline: BenchBaseline,
    pub turns: usize,
    /// Prompt tokens run through the model (prefill).
    pub prefill_tokens: usize,
    /// Tokens generated (the first of each answer is timed with prefill).
    pub generated_tokens: usize,
    /// Generated tokens after the first of each answer (the decode windows).
    pub decode_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub prefill_joules: f64,
    pub decode_joules: f64,
    pub total_joules: f64,
    pub raw_total_joules: f64,
    pub joules_per_prefill_token: Option<f64>,
    pub joules_per_decode_token: Option<f64>,
    /// All joules (prefill and decode) per generated token: the cost of an answer token.
    pub joules_per_token: Option<f64>,
    /// Net average power over the prefill and decode windows.
    pub avg_watts: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub quality: BenchQuality,
    /// The caller cancelled: the figures cover the turns finished before.
    pub cancelled: bool,
}

impl EnergyBenchResult {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Sums of the prefill and decode windows.
#[derive(Default)]
struct Totals {
    turns: usize,
    prefill_tokens: usize,
    generated: usize,
    decode_tokens: usize,
    prefill: Window,
    decode: Window,
    quality: BenchQuality,
}

#[derive(Default)]
struct Window {
    seconds: f64,
    raw_joules: f64,
    net_joules: f64,
}

impl Totals {
    fn add(&mut self, report: &TurnReport, baseline_w: f64) -> Result<()> {
        let energy = report
            .energy
            .as_ref()
            .ok_or_else(|| Error::Internal("a turn ran without an energy reading".into()))?;
        self.turns += 1;
        self.prefill_tokens += report.prefill_tokens;
        self.generated += report.generated_tokens;
        self.decode_tokens += report.generated_tokens.saturating_sub(1);
        self.take(&energy.prefill, baseline_w, true);
        self.take(&energy.decode, baseline_w, false);
        Ok(())
    }

    fn take(&mut self, reading: &EnergyReading, baseline_w: f64, prefill: bool) {
        let q = &mut self.quality;
        let mut net = reading.raw_joules - baseline_w * reading.duration_s;
        if net < 0.0 {
            q.windows_clamped += 1;
            net = 0.0;
        }
        q.charging |= reading.quality.charging;
        q.on_external_power |= reading.quality.on_external_power;
        q.windows_sensor_too_slow += usize::from(reading.quality.sensor_too_slow_for_window);
        q.worst_thermal_state = q.worst_thermal_state.max(reading.quality.thermal_state);
        q.sensor_errors += reading.quality.sensor_errors;
        let w = if prefill { &mut self.prefill } else { &mut self.decode };
        w.seconds += reading.duration_s;
        w.raw_joules += reading.raw_joules;
        w.net_joules += net;
    }
}

/// Runs the benchmark on a fresh session of `engine`. `progress` is called a few times a
/// second during the baseline and after every turn; `cancel` stops the run between
/// turns (or during the baseline), returning what was measured so far.
pub fn run_energy_bench(
    engine: &Arc<Engine>,
    config: &EnergyBenchConfig,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&EnergyBenchProgress),
) -> Result<EnergyBenchResult> {
    config.validate()?;
    let meter = engine.energy_meter().ok_or_else(|| {
        Error::Energy(EnergyError::InvalidConfig(
            "metering is off: load the engine with an energy source".into(),
        ))
    })?;
    if meter.method() == Method::None {
        return Err(Error::Energy(EnergyError::InvalidConfig(
            "the energy source is 'none': nothing to measure".into(),
        )));
    }
    let start = Instant::now();
    let planned_s = config.baseline_s + config.duration_s.unwrap_or(0.0);
    let fraction = |elapsed: f64, tokens: usize| {
        let by_time = if planned_s > 0.0 { elapsed / planned_s } else { 0.0 };
        let by_tokens = config.max_total_tokens.map_or(0.0, |n| tokens as f64 / n as f64);
        by_time.max(by_tokens).min(1.0)
    };
    let mut report = |phase, turns, tokens| {
        let elapsed_s = start.elapsed().as_secs_f64();
        let fraction = if phase == BenchPhase::Done { 1.0 } else { fraction(elapsed_s, tokens) };
        progress(&EnergyBenchProgress {
            phase,
            fraction,
            elapsed_s,
            turns,
            generated_tokens: tokens,
        });
    };

    // Idle baseline, by the same meter.
    let baseline = if config.baseline_s > 0.0 {
        let window = meter.begin("idle-baseline");
        let until = start + Duration::from_secs_f64(config.baseline_s);
        while Instant::now() < until && !cancel.is_cancelled() {
            report(BenchPhase::Baseline, 0, 0);
            std::thread::sleep(until.saturating_duration_since(Instant::now()).min(TICK));
        }
        let idle = meter.end(window)?;
        let watts = if idle.duration_s > 0.0 { idle.raw_joules / idle.duration_s } else { 0.0 };
        BenchBaseline { watts, measured_over_s: idle.duration_s, subtracted: true }
    } else {
        BenchBaseline { watts: 0.0, measured_over_s: 0.0, subtracted: false }
    };

    // Prompts, each in a fresh conversation, until the time or token budget is spent.
    let mut session = engine.session()?;
    let run_start = Instant::now();
    let mut totals = Totals::default();
    let mut prompts = config.prompts.iter().cycle();
    loop {
        let time_up = config.duration_s.is_some_and(|d| run_start.elapsed().as_secs_f64() >= d);
        let tokens_left = config.max_total_tokens.map(|n| n.saturating_sub(totals.generated));
        if cancel.is_cancelled() || time_up || tokens_left == Some(0) {
            break;
        }
        let Some(prompt) = prompts.next() else { break };
        session.reset();
        let max_tokens =
            tokens_left.map_or(config.tokens_per_prompt, |left| left.min(config.tokens_per_prompt));
        let opts = GenerateOptions { max_tokens: Some(max_tokens), ..Default::default() };
        let turn = session.send(prompt, &opts, &mut |_| {})?;
        totals.add(&turn, baseline.watts)?;
        report(BenchPhase::Running, totals.turns, totals.generated);
    }
    report(BenchPhase::Done, totals.turns, totals.generated);
    Ok(result(meter, baseline, totals, cancel.is_cancelled()))
}

/// How often progress is reported during the baseline.
const TICK: Duration = Duration::from_millis(250);

fn result(
    meter: &crate::energy::EnergyMeter,
    baseline: BenchBaseline,
    t: Totals,
    cancelled: bool,
) -> EnergyBenchResult {
    let per = |joules: f64, n: usize| (n > 0).then(|| joules / n as f64);
    let total = t.prefill.net_joules + t.decode.net_joules;
    let seconds = t.prefill.seconds + t.decode.seconds;
    EnergyBenchResult {
        method: meter.method(),
        source_kind: meter.source_kind(),
        source: meter.source_description().to_string(),
        baseline,
        turns: t.turns,
        prefill_tokens: t.prefill_tokens,
        generated_tokens: t.generated,
        decode_tokens: t.decode_tokens,
        prefill_s: t.prefill.seconds,
        decode_s: t.decode.seconds,
        prefill_joules: t.prefill.net_joules,
        decode_joules: t.decode.net_joules,
        total_joules: total,
        raw_total_joules: t.prefill.raw_joules + t.decode.raw_joules,
        joules_per_prefill_token: per(t.prefill.net_joules, t.prefill_tokens),
        joules_per_decode_token: per(t.decode.net_joules, t.decode_tokens),
        joules_per_token: per(total, t.generated),
        avg_watts: if seconds > 0.0 { total / seconds } else { 0.0 },
        prefill_tokens_per_s: rate(t.prefill_tokens, t.prefill.seconds * 1000.0),
        decode_tokens_per_s: rate(t.decode_tokens, t.decode.seconds * 1000.0),
        quality: t.quality,
        cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        assert!(EnergyBenchConfig::default().validate().is_ok());
        let bad = [
            EnergyBenchConfig { baseline_s: -1.0, ..Default::default() },
            EnergyBenchConfig { baseline_s: f64::NAN, ..Default::default() },
            EnergyBenchConfig { duration_s: None, max_total_tokens: None, ..Default::default() },
            EnergyBenchConfig { duration_s: Some(0.0), ..Default::default() },
            EnergyBenchConfig { max_total_tokens: Some(0), ..Default::default() },
            EnergyBenchConfig { tokens_per_prompt: 0, ..Default::default() },
            EnergyBenchConfig { prompts: vec![], ..Default::default() },
            EnergyBenchConfig { prompts: vec![" ".into()], ..Default::default() },
        ];
        for config in bad {
            assert!(matches!(config.validate(), Err(Error::InvalidArgument(_))), "{config:?}");
        }
    }
}
