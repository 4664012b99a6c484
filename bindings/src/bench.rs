//! The "measure battery usage" job of the core (`engine::energy_bench`), wrapped.

use std::sync::Arc;

use joule_core::engine::energy_bench::{self, BenchPhase, EnergyBenchConfig};
use joule_core::engine::{CancelFlag, run_energy_bench};

use crate::engine::JouleEngine;
use crate::error::JouleError;
use crate::probe::Thermal;
use crate::records::EnergyMethod;

/// What to run; stops at the duration or the token count, whichever comes first.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnergyBenchOptions {
    /// Seconds of idle baseline before the prompts (subtracted from the results).
    #[uniffi(default = 10.0)]
    pub baseline_s: f64,
    #[uniffi(default = None)]
    pub duration_s: Option<f64>,
    #[uniffi(default = None)]
    pub max_total_tokens: Option<u64>,
    #[uniffi(default = 64)]
    pub tokens_per_prompt: u32,
    /// Empty: the core's fixed set of prompts.
    #[uniffi(default)]
    pub prompts: Vec<String>,
}

/// Progress of a run; `phase` is "baseline", "running" or "done".
#[derive(Debug, Clone, uniffi::Record)]
pub struct BenchProgress {
    pub phase: String,
    pub fraction: f64,
    pub elapsed_s: f64,
    pub turns: u64,
    pub generated_tokens: u64,
}

/// Receives progress; return false to stop the run after the current turn.
#[uniffi::export(with_foreign)]
pub trait BenchListener: Send + Sync {
    fn on_progress(&self, progress: BenchProgress) -> bool;
}

/// The result; joules are net of the idle baseline when `baseline_subtracted`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnergyBenchReport {
    pub method: EnergyMethod,
    pub source_kind: String,
    pub source: String,
    pub baseline_watts: f64,
    pub baseline_s: f64,
    pub baseline_subtracted: bool,
    pub turns: u64,
    pub prefill_tokens: u64,
    pub generated_tokens: u64,
    pub decode_tokens: u64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub prefill_joules: f64,
    pub decode_joules: f64,
    pub total_joules: f64,
    pub raw_total_joules: f64,
    pub joules_per_prefill_token: Option<f64>,
    pub joules_per_decode_token: Option<f64>,
    pub joules_per_token: Option<f64>,
    pub avg_watts: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub charging: bool,
    pub on_external_power: bool,
    pub windows_sensor_too_slow: u64,
    pub windows_clamped: u64,
    pub worst_thermal_state: Option<Thermal>,
    pub sensor_errors: u64,
    pub cancelled: bool,
    /// The whole result as JSON, to share or save.
    pub json: String,
}

#[uniffi::export]
impl JouleEngine {
    /// Idle baseline, then the prompts; blocks until done (run it off the UI thread).
    #[uniffi::method(default(listener = None))]
    pub fn run_energy_bench(
        &self,
        options: EnergyBenchOptions,
        listener: Option<Arc<dyn BenchListener>>,
    ) -> Result<EnergyBenchReport, JouleError> {
        crate::guard("run_energy_bench", || {
            let config = config(&options);
            let cancel = CancelFlag::default();
            let mut progress = |p: &energy_bench::EnergyBenchProgress| {
                if let Some(l) = &listener {
                    let keep_going = l.on_progress(BenchProgress {
                        phase: phase_name(p.phase).into(),
                        fraction: p.fraction,
                        elapsed_s: p.elapsed_s,
                        turns: p.turns as u64,
                        generated_tokens: p.generated_tokens as u64,
                    });
                    if !keep_going {
                        cancel.cancel();
                    }
                }
            };
            let r = run_energy_bench(&self.engine, &config, &cancel, &mut progress)?;
            if r.cancelled && r.turns == 0 {
                return Err(JouleError::Cancelled("energy bench cancelled before any turn".into()));
            }
            Ok(report(&r))
        })
    }
}

fn config(o: &EnergyBenchOptions) -> EnergyBenchConfig {
    let defaults = EnergyBenchConfig::default();
    EnergyBenchConfig {
        baseline_s: o.baseline_s,
        duration_s: o.duration_s,
        max_total_tokens: o.max_total_tokens.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        tokens_per_prompt: o.tokens_per_prompt as usize,
        prompts: if o.prompts.is_empty() { defaults.prompts } else { o.prompts.clone() },
    }
}

fn phase_name(p: BenchPhase) -> &'static str {
    match p {
        BenchPhase::Baseline => "baseline",
        BenchPhase::Running => "running",
        BenchPhase::Done => "done",
    }
}

fn report(r: &energy_bench::EnergyBenchResult) -> EnergyBenchReport {
    let q = &r.quality;
    EnergyBenchReport {
        method: r.method.into(),
        source_kind: r.source_kind.as_str().into(),
        source: r.source.clone(),
        baseline_watts: r.baseline.watts,
        baseline_s: r.baseline.measured_over_s,
        baseline_subtracted: r.baseline.subtracted,
        turns: r.turns as u64,
        prefill_tokens: r.prefill_tokens as u64,
        generated_tokens: r.generated_tokens as u64,
        decode_tokens: r.decode_tokens as u64,
        prefill_s: r.prefill_s,
        decode_s: r.decode_s,
        prefill_joules: r.prefill_joules,
        decode_joules: r.decode_joules,
        total_joules: r.total_joules,
        raw_total_joules: r.raw_total_joules,
        joules_per_prefill_token: r.joules_per_prefill_token,
        joules_per_decode_token: r.joules_per_decode_token,
        joules_per_token: r.joules_per_token,
        avg_watts: r.avg_watts,
        prefill_tokens_per_s: r.prefill_tokens_per_s,
        decode_tokens_per_s: r.decode_tokens_per_s,
        charging: q.charging,
        on_external_power: q.on_external_power,
        windows_sensor_too_slow: q.windows_sensor_too_slow as u64,
        windows_clamped: q.windows_clamped as u64,
        worst_thermal_state: q.worst_thermal_state.map(Thermal::from),
        sensor_errors: q.sensor_errors,
        cancelled: r.cancelled,
        json: r.to_json(),
    }
}
