//! What one energy window reports. Field names are part of Joule's output format: they
//! serialize in snake_case and must stay stable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the joules of a reading were obtained. Never ambiguous: a reading is either backed by
/// a power sensor, computed from a model, or absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Integrated from a power or energy sensor (RAPL, battery fuel gauge, platform probe,
    /// external power-monitor trace).
    Measured,
    /// Modelled from process CPU time × watts per busy core; no sensor was used.
    Estimated,
    /// No energy source: joules are 0 and carry no information.
    None,
    /// A sensor was in use but none of its samples covers the window (a trace that is
    /// empty, all rejected, or timed outside the run): joules are 0 and carry no information.
    NoData,
}

impl Method {
    /// The name reports and front ends print ("measured", "estimated", "none"; as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Method::Measured => "measured",
            Method::Estimated => "estimated",
            Method::None => "none",
            Method::NoData => "no_data",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The backend behind a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Rapl,
    Battery,
    Platform,
    Trace,
    Estimate,
    None,
}

impl SourceKind {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Rapl => "rapl",
            SourceKind::Battery => "battery",
            SourceKind::Platform => "platform",
            SourceKind::Trace => "trace",
            SourceKind::Estimate => "estimate",
            SourceKind::None => "none",
        }
    }

    /// Whether readings from this backend are measurements.
    pub fn method(self) -> Method {
        match self {
            SourceKind::Estimate => Method::Estimated,
            SourceKind::None => Method::None,
            _ => Method::Measured,
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Device thermal state, worst first reported by a platform probe during the window.
/// Android thermal status maps as: none → nominal, light/moderate → fair, severe → serious,
/// critical/emergency/shutdown → critical. iOS `ProcessInfo.ThermalState` maps one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThermalState {
    Nominal,
    Fair,
    Serious,
    Critical,
}

/// A backend that was tried before the one in use, and why it was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub source: SourceKind,
    pub reason: String,
}

/// Wall-clock bounds of a window, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowTimes {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
}

/// The idle baseline measured when the meter was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Average idle power over the baseline period.
    pub watts: f64,
    /// How long the baseline was measured.
    pub measured_over_s: f64,
    /// Whether `watts × duration` is subtracted from each window's joules.
    pub subtracted: bool,
}

/// Where a reading came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: SourceKind,
    /// Human-readable: sensor paths and zone names, probe name, trace file, or the estimate's
    /// watts-per-core figure and its basis.
    pub description: String,
    /// Files read (sysfs sensors, trace); empty for probes and the estimate.
    pub paths: Vec<String>,
    /// How often the meter polls the sensor; `None` for sources read only at window edges.
    pub poll_interval_s: Option<f64>,
    /// How often the sensor itself was seen to update. For sensors that change on every
    /// poll this is the polling rate, a lower bound. `None` when no update was observed.
    pub sensor_update_hz: Option<f64>,
    pub window: WindowTimes,
    /// The idle baseline, reported whether or not it was subtracted; `None` if none measured.
    pub baseline: Option<Baseline>,
}

/// Everything that qualifies how far to trust a reading.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quality {
    /// The battery reported charging during the window: its current is what flows in, not
    /// what the device used, so the joules are net battery drain (they may be negative).
    pub charging: bool,
    /// The battery reported full or not charging on external power: the device ran from the
    /// adapter and the battery saw little of its consumption.
    pub on_external_power: bool,
    /// The window spans fewer than five sensor updates (or, for a counter, the counter did
    /// not move at least twice): the joules are interpolated or extrapolated from too few
    /// sensor values to be trusted.
    pub sensor_too_slow_for_window: bool,
    /// Whether the idle baseline was subtracted from `joules`.
    pub baseline_subtracted: bool,
    /// Worst thermal state seen during the window, when the source reports one.
    pub thermal_state: Option<ThermalState>,
    /// Backends tried before the one in use, each with the reason it was skipped.
    pub fell_back_from: Vec<Fallback>,
    /// Sensor reads that failed or gave garbage during the window (they are skipped).
    pub sensor_errors: u64,
    pub last_sensor_error: Option<String>,
    /// Fraction of the window covered by source data (below 1 only for a trace that does not
    /// span the whole window).
    pub coverage: f64,
    /// Anything else worth knowing (skipped zones, clamped baseline, CPU seconds, ...).
    pub notes: Vec<String>,
}

/// The energy of one named window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReading {
    pub name: String,
    pub method: Method,
    /// Joules for the window, baseline-subtracted when `quality.baseline_subtracted`
    /// (clamped at 0, with a note, if the baseline exceeds the window's energy).
    pub joules: f64,
    /// Joules before any baseline subtraction.
    pub raw_joules: f64,
    pub duration_s: f64,
    /// `joules / duration_s`.
    pub avg_watts: f64,
    /// Successful sensor samples inside the window, including the reads at its two edges
    /// (trace: trace rows inside the window; estimate: the two CPU-time reads).
    pub sample_count: u64,
    /// `sample_count / duration_s`.
    pub sample_rate_hz: f64,
    /// Raw joules per component: `package`, `core`, `uncore`, `dram`, `psys` for RAPL
    /// (summed over sockets), `battery`, `platform`, `trace` or `cpu` (estimate).
    pub components: BTreeMap<String, f64>,
    pub source: SourceInfo,
    pub quality: Quality,
}

impl EnergyReading {
    /// Joules per item (e.g. per token); `None` when `count` is zero or nothing was measured.
    pub fn joules_per(&self, count: u64) -> Option<f64> {
        if count == 0 || matches!(self.method, Method::None | Method::NoData) {
            return None;
        }
        Some(self.joules / count as f64)
    }
}
