//! What a chat turn cost: tokens, timings, memory (and energy, when metered). Field
//! names are stable: they are the JSON that `joule run --json` prints and the bindings
//! expose.

use serde::{Deserialize, Serialize};

use crate::energy::{EnergyReading, Method};
use crate::prune::PruneReport;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// A stop string appeared in the output.
    StopString,
    /// The turn's token limit was reached.
    MaxTokens,
    /// The context is full.
    ContextFull,
    /// The caller cancelled.
    Cancelled,
}

/// Figures of one chat turn or one completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnReport {
    /// Tokens of the prompt for this turn (the whole conversation as rendered).
    pub prompt_tokens: usize,
    /// Prompt tokens found in the KV cache from earlier turns (not recomputed).
    pub reused_tokens: usize,
    /// Prompt tokens run through the model this turn.
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
    pub stop_reason: StopReason,
    /// From the call to the first generated token (tokenizing, prefill, first sample).
    pub time_to_first_token_ms: f64,
    pub prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    /// From the first generated token to the last.
    pub decode_ms: f64,
    /// Tokens generated after the first, per second of `decode_ms`.
    pub decode_tokens_per_s: f64,
    pub total_ms: f64,
    /// Peak resident memory of the process so far, when the platform reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Cache slots used after the turn, and the context size.
    pub context_used: usize,
    pub context_size: usize,
    pub threads: usize,
    /// Kernel path that ran ("scalar", "avx2", ...).
    pub kernel: String,
    /// Arithmetic of the matrix products ("exact" or "fast").
    pub precision: String,
    /// KV cache type ("f32", "f16", "q8_0") and the bytes it has reserved so far.
    pub kv_type: String,
    pub kv_bytes: usize,
    /// Energy of prefill and decode, when metering is on.
    pub energy: Option<TurnEnergy>,
    /// What input pruning kept, when it was on.
    pub pruning: Option<PruneReport>,
    /// Tokens that left what the model sees this turn (eviction on): the dropped
    /// messages' tokens and the cache slots evicted while decoding.
    #[serde(default)]
    pub evicted_tokens: usize,
    /// Oldest messages dropped from the conversation so the prompt fits.
    #[serde(default)]
    pub dropped_messages: usize,
}

/// Energy of one turn, split at the first generated token: `prefill` covers the prompt
/// and the first token, `decode` every later token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEnergy {
    /// `measured` (a sensor) or `estimated` (CPU time × watts per core): never mixed.
    pub method: Method,
    /// The source, in words (sensor path, probe name, or the estimate's basis).
    pub source: String,
    pub prefill_joules: f64,
    pub decode_joules: f64,
    /// Prefill joules per prompt token run this turn.
    pub joules_per_prompt_token: Option<f64>,
    /// Decode joules per token generated after the first.
    pub joules_per_generated_token: Option<f64>,
    pub prefill_avg_watts: f64,
    pub decode_avg_watts: f64,
    /// The two windows in full: samples, rate, baseline, quality flags.
    pub prefill: EnergyReading,
    pub decode: EnergyReading,
}

impl TurnEnergy {
    pub fn new(
        prefill: EnergyReading,
        decode: EnergyReading,
        prompt_tokens: usize,
        decode_tokens: usize,
    ) -> Self {
        Self {
            method: if decode.method == Method::NoData { decode.method } else { prefill.method },
            source: prefill.source.description.clone(),
            prefill_joules: prefill.joules,
            decode_joules: decode.joules,
            joules_per_prompt_token: prefill.joules_per(prompt_tokens as u64),
            joules_per_generated_token: decode.joules_per(decode_tokens as u64),
            prefill_avg_watts: prefill.avg_watts,
            decode_avg_watts: decode.avg_watts,
            prefill,
            decode,
        }
    }
}

impl TurnReport {
    /// One human-readable line, as the CLI prints after an answer.
    pub fn summary_line(&self) -> String {
        let rss = self
            .peak_rss_bytes
            .map_or("n/a".to_string(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64));
        let energy = match &self.energy {
            Some(e) if e.method == Method::NoData => {
                " | energy: no data (the source has no sample in this turn)".to_string()
            }
            Some(e) if e.method != Method::None => format!(
                " | {} J/prompt tok, {} J/gen tok ({})",
                e.joules_per_prompt_token.map_or("-".into(), |j| format!("{j:.3}")),
                e.joules_per_generated_token.map_or("-".into(), |j| format!("{j:.3}")),
                e.method.name()
            ),
            _ => String::new(),
        };
        let pruned = match &self.pruning {
            Some(p) => format!(
                " | pruned {}: kept {} of {} tok ({:.2}x fewer, scoring {:.0} ms)",
                p.strategy,
                p.tokens_kept,
                p.tokens_in,
                p.tokens_in as f64 / p.tokens_kept.max(1) as f64,
                p.scoring_ms
            ),
            None => String::new(),
        };
        let evicted = match (self.evicted_tokens, self.dropped_messages) {
            (0, 0) => String::new(),
            (n, 0) => format!(" | evicted {n} tok"),
            (n, m) => format!(" | evicted {n} tok ({m} messages dropped)"),
        };
        format!(
            "[prompt {} tok ({} reused) {:.1} tok/s{} | gen {} tok {:.1} tok/s{} | ttft {:.0} ms{} | peak RSS {} | {} {} x{} | stop: {}]",
            self.prompt_tokens,
            self.reused_tokens,
            self.prefill_tokens_per_s,
            pruned,
            self.generated_tokens,
            self.decode_tokens_per_s,
            evicted,
            self.time_to_first_token_ms,
            energy,
            rss,
            self.kernel,
            self.precision,
            self.threads,
            serde_json::to_value(self.stop_reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        )
    }
}

/// Tokens per second, 0 when nothing was timed.
pub(crate) fn rate(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 { tokens as f64 * 1000.0 / ms } else { 0.0 }
}

/// Peak resident set size of this process (Linux and Android: `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size of this process (Linux and Android: `VmRSS`).
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let now = current_rss_bytes().expect("VmRSS on Linux");
            let peak = peak_rss_bytes().expect("VmHWM on Linux");
            assert!(peak >= now && now > 0);
        }
    }

    #[test]
    fn stop_reasons_serialise_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&StopReason::EndOfGeneration).unwrap(),
            "\"end_of_generation\""
        );
        assert_eq!(serde_json::to_string(&StopReason::MaxTokens).unwrap(), "\"max_tokens\"");
    }
}
