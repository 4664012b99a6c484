//! Plain records crossing the boundary, converted from the core's types field by field
//! (nothing is computed here).

use std::collections::HashMap;

use joule_core::energy::{EnergyReading, Method};
use joule_core::engine::{GenerateOptions, StopReason, TurnEnergy, TurnReport};
use joule_core::{Budget, EvictOptions, PruneOptions, PruneReport, SamplingParams, Strategy};

use crate::listener::CallbackStats;
use crate::probe::Thermal;

/// Sampling settings; the defaults are greedy decoding with no penalties.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SamplingOptions {
    /// 0 means greedy.
    #[uniffi(default = 0.0)]
    pub temperature: f32,
    #[uniffi(default = 0)]
    pub top_k: u32,
    #[uniffi(default = 1.0)]
    pub top_p: f32,
    #[uniffi(default = 0.0)]
    pub min_p: f32,
    #[uniffi(default = 1.0)]
    pub repeat_penalty: f32,
    #[uniffi(default = 0.0)]
    pub presence_penalty: f32,
    #[uniffi(default = 0.0)]
    pub frequency_penalty: f32,
    #[uniffi(default = 64)]
    pub penalty_last_n: u32,
    #[uniffi(default = 0x004a_6f75_6c65)]
    pub seed: u64,
}

impl From<&SamplingOptions> for SamplingParams {
    fn from(o: &SamplingOptions) -> Self {
        SamplingParams {
            temperature: o.temperature,
            top_k: o.top_k as usize,
            top_p: o.top_p,
            min_p: o.min_p,
            repeat_penalty: o.repeat_penalty,
            presence_penalty: o.presence_penalty,
            frequency_penalty: o.frequency_penalty,
            penalty_last_n: o.penalty_last_n as usize,
            seed: o.seed,
        }
    }
}

/// Per-turn options.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SendOptions {
    /// Limit of generated tokens (None: the engine's default).
    #[uniffi(default = None)]
    pub max_tokens: Option<u32>,
    /// Generation stops before any of these strings; they are not shown.
    #[uniffi(default)]
    pub stop: Vec<String>,
    /// Input pruning of the prompt's new part (None: the whole prompt is prefilled).
    #[uniffi(default = None)]
    pub prune: Option<PruneSettings>,
    /// Keep going when the context fills: drop the oldest turns (never the system
    /// prompt) and evict the oldest cache slots, instead of stopping.
    #[uniffi(default = false)]
    pub evict: bool,
}

/// Input pruning settings, parsed by the core (a bad value is an `InvalidArgument`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PruneSettings {
    /// "early-layer".
    #[uniffi(default = "early-layer")]
    pub strategy: String,
    /// Share or count of tokens to keep: "0.25", "25%" or "512".
    #[uniffi(default = "0.25")]
    pub keep: String,
    /// Keep the latest message whole (false lets pruning read into a pasted page).
    #[uniffi(default = true)]
    pub protect_latest_message: bool,
}

impl TryFrom<&SendOptions> for GenerateOptions {
    type Error = joule_core::Error;

    fn try_from(o: &SendOptions) -> Result<Self, Self::Error> {
        let prune = match &o.prune {
            None => None,
            Some(p) => {
                let mut opts =
                    PruneOptions::new(Strategy::parse(&p.strategy)?, Budget::parse(&p.keep)?);
                opts.protect_latest_message = p.protect_latest_message;
                Some(opts)
            }
        };
        Ok(GenerateOptions {
            max_tokens: o.max_tokens.map(|n| n as usize),
            stop: o.stop.clone(),
            prune,
            evict: o.evict.then(EvictOptions::default),
        })
    }
}

/// What pruning did to a turn's prompt.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PruningReport {
    pub strategy: String,
    pub budget: String,
    pub tokens_in: u64,
    pub tokens_kept: u64,
    /// Part of the time to first token.
    pub scoring_ms: f64,
}

impl From<&PruneReport> for PruningReport {
    fn from(r: &PruneReport) -> Self {
        PruningReport {
            strategy: r.strategy.clone(),
            budget: r.budget.clone(),
            tokens_in: r.tokens_in as u64,
            tokens_kept: r.tokens_kept as u64,
            scoring_ms: r.scoring_ms,
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopCause {
    EndOfGeneration,
    StopString,
    MaxTokens,
    ContextFull,
    Cancelled,
}

impl From<StopReason> for StopCause {
    fn from(r: StopReason) -> Self {
        match r {
            StopReason::EndOfGeneration => StopCause::EndOfGeneration,
            StopReason::StopString => StopCause::StopString,
            StopReason::MaxTokens => StopCause::MaxTokens,
            StopReason::ContextFull => StopCause::ContextFull,
            StopReason::Cancelled => StopCause::Cancelled,
        }
    }
}

/// How joules were obtained: a sensor, a CPU-time estimate, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EnergyMethod {
    Measured,
    Estimated,
    None,
    /// A sensor was in use but none of its samples covers the window.
    NoData,
}

impl From<Method> for EnergyMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Measured => EnergyMethod::Measured,
            Method::Estimated => EnergyMethod::Estimated,
            Method::None => EnergyMethod::None,
            Method::NoData => EnergyMethod::NoData,
        }
    }
}

/// What qualifies a window's joules (see the core's `Quality`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WindowQuality {
    pub charging: bool,
    pub on_external_power: bool,
    pub sensor_too_slow_for_window: bool,
    pub baseline_subtracted: bool,
    pub thermal_state: Option<Thermal>,
    /// Backends tried first, as "kind: reason".
    pub fell_back_from: Vec<String>,
    pub sensor_errors: u64,
    pub last_sensor_error: Option<String>,
    pub coverage: f64,
    pub notes: Vec<String>,
}

/// One metered window (prefill or decode).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EnergyWindowReport {
    pub name: String,
    pub method: EnergyMethod,
    /// "rapl", "battery", "platform", "trace", "estimate" or "none".
    pub source_kind: String,
    /// The source in words (for a platform probe: its name).
    pub source: String,
    pub joules: f64,
    pub raw_joules: f64,
    pub duration_s: f64,
    pub avg_watts: f64,
    pub sample_count: u64,
    pub sample_rate_hz: f64,
    pub components: HashMap<String, f64>,
    pub sensor_update_hz: Option<f64>,
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    /// Idle baseline watts, when one was measured.
    pub baseline_watts: Option<f64>,
    pub quality: WindowQuality,
}

impl From<&EnergyReading> for EnergyWindowReport {
    fn from(r: &EnergyReading) -> Self {
        let q = &r.quality;
        EnergyWindowReport {
            name: r.name.clone(),
            method: r.method.into(),
            source_kind: r.source.kind.as_str().to_string(),
            source: r.source.description.clone(),
            joules: r.joules,
            raw_joules: r.raw_joules,
            duration_s: r.duration_s,
            avg_watts: r.avg_watts,
            sample_count: r.sample_count,
            sample_rate_hz: r.sample_rate_hz,
            components: r.components.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            sensor_update_hz: r.source.sensor_update_hz,
            start_unix_s: r.source.window.start_unix_s,
            end_unix_s: r.source.window.end_unix_s,
            baseline_watts: r.source.baseline.as_ref().map(|b| b.watts),
            quality: WindowQuality {
                charging: q.charging,
                on_external_power: q.on_external_power,
                sensor_too_slow_for_window: q.sensor_too_slow_for_window,
                baseline_subtracted: q.baseline_subtracted,
                thermal_state: q.thermal_state.map(Thermal::from),
                fell_back_from: q
                    .fell_back_from
                    .iter()
                    .map(|f| format!("{}: {}", f.source, f.reason))
                    .collect(),
                sensor_errors: q.sensor_errors,
                last_sensor_error: q.last_sensor_error.clone(),
                coverage: q.coverage,
                notes: q.notes.clone(),
            },
        }
    }
}

/// Energy of one turn, split at the first generated token.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TurnEnergyReport {
    pub method: EnergyMethod,
    /// "platform" when an app's probe was used.
    pub source_kind: String,
    pub source: String,
    pub prefill_joules: f64,
    pub decode_joules: f64,
    pub joules_per_prompt_token: Option<f64>,
    pub joules_per_generated_token: Option<f64>,
    pub prefill_avg_watts: f64,
    pub decode_avg_watts: f64,
    pub prefill: EnergyWindowReport,
    pub decode: EnergyWindowReport,
}

impl From<&TurnEnergy> for TurnEnergyReport {
    fn from(e: &TurnEnergy) -> Self {
        TurnEnergyReport {
            method: e.method.into(),
            source_kind: e.prefill.source.kind.as_str().to_string(),
            source: e.source.clone(),
            prefill_joules: e.prefill_joules,
            decode_joules: e.decode_joules,
            joules_per_prompt_token: e.joules_per_prompt_token,
            joules_per_generated_token: e.joules_per_generated_token,
            prefill_avg_watts: e.prefill_avg_watts,
            decode_avg_watts: e.decode_avg_watts,
            prefill: (&e.prefill).into(),
            decode: (&e.decode).into(),
        }
    }
}

/// Everything the core reports about a turn, plus the streamed text and what the
/// listener calls cost.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GenerationReport {
    /// The answer as streamed (stop strings removed).
    pub text: String,
    pub prompt_tokens: u64,
    pub reused_tokens: u64,
    pub prefill_tokens: u64,
    pub generated_tokens: u64,
    pub stop_reason: StopCause,
    pub time_to_first_token_ms: f64,
    pub prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_ms: f64,
    pub decode_tokens_per_s: f64,
    pub total_ms: f64,
    pub peak_rss_bytes: Option<u64>,
    pub context_used: u64,
    pub context_size: u64,
    pub threads: u64,
    pub kernel: String,
    pub precision: String,
    /// KV cache type ("f32", "f16", "q8_0") and the bytes the session's cache holds.
    pub kv_type: String,
    pub kv_bytes: u64,
    pub energy: Option<TurnEnergyReport>,
    /// Input pruning, when the turn asked for it.
    pub pruning: Option<PruningReport>,
    /// Cache slots evicted and old messages dropped to keep the chat going.
    pub evicted_tokens: u64,
    pub dropped_messages: u64,
    /// Calls made to the listener and the milliseconds spent inside them: wall-clock, and
    /// CPU time of the thread (without time spent waiting for a core).
    pub listener_calls: u64,
    pub listener_ms: f64,
    pub listener_cpu_ms: f64,
    /// The core's report as JSON, exactly as `joule run --json` prints it.
    pub report_json: String,
}

impl GenerationReport {
    pub(crate) fn new(text: String, r: &TurnReport, stats: CallbackStats) -> Self {
        GenerationReport {
            text,
            prompt_tokens: r.prompt_tokens as u64,
            reused_tokens: r.reused_tokens as u64,
            prefill_tokens: r.prefill_tokens as u64,
            generated_tokens: r.generated_tokens as u64,
            stop_reason: r.stop_reason.into(),
            time_to_first_token_ms: r.time_to_first_token_ms,
            prefill_ms: r.prefill_ms,
            prefill_tokens_per_s: r.prefill_tokens_per_s,
            decode_ms: r.decode_ms,
            decode_tokens_per_s: r.decode_tokens_per_s,
            total_ms: r.total_ms,
            peak_rss_bytes: r.peak_rss_bytes,
            context_used: r.context_used as u64,
            context_size: r.context_size as u64,
            threads: r.threads as u64,
            kernel: r.kernel.clone(),
            precision: r.precision.clone(),
            kv_type: r.kv_type.clone(),
            kv_bytes: r.kv_bytes as u64,
            energy: r.energy.as_ref().map(TurnEnergyReport::from),
            pruning: r.pruning.as_ref().map(PruningReport::from),
            evicted_tokens: r.evicted_tokens as u64,
            dropped_messages: r.dropped_messages as u64,
            listener_calls: stats.calls,
            listener_ms: stats.seconds * 1000.0,
            listener_cpu_ms: stats.cpu_seconds * 1000.0,
            report_json: serde_json::to_string(r).unwrap_or_default(),
        }
    }
}
