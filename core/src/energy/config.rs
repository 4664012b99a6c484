//! How a meter is configured: which source, where sysfs is, how often to poll, baseline.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::EnergyError;
use super::estimate::WattsPerCoreTable;
use super::probe::PlatformProbe;

/// Environment variable naming the sysfs root the RAPL and battery backends read.
pub const SYSFS_ROOT_ENV: &str = "JOULE_SYSFS_ROOT";

/// Which backend to use (parsed from and printed as its name: auto, rapl, battery,
/// trace:FILE, estimate, none).
#[derive(Clone, Default)]
pub enum EnergySource {
    /// RAPL, then battery, then the config's platform probe, then the estimate; every
    /// skipped backend is recorded with its reason. Never fails.
    #[default]
    Auto,
    Rapl,
    Battery,
    /// A CSV written by an external power monitor (see the `trace` module docs for headers).
    Trace(PathBuf),
    Estimate,
    /// No metering: readings say `method: none` with 0 joules.
    None,
    Platform(Arc<dyn PlatformProbe>),
}

impl std::fmt::Debug for EnergySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnergySource::Platform(probe) => write!(f, "Platform({:?})", probe.name()),
            EnergySource::Trace(path) => write!(f, "Trace({path:?})"),
            other => f.write_str(&other.to_string()),
        }
    }
}

impl std::fmt::Display for EnergySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnergySource::Auto => f.write_str("auto"),
            EnergySource::Rapl => f.write_str("rapl"),
            EnergySource::Battery => f.write_str("battery"),
            EnergySource::Trace(path) => write!(f, "trace:{}", path.display()),
            EnergySource::Estimate => f.write_str("estimate"),
            EnergySource::None => f.write_str("none"),
            EnergySource::Platform(probe) => write!(f, "platform:{}", probe.name()),
        }
    }
}

impl FromStr for EnergySource {
    type Err = EnergyError;

    /// Parses the CLI form: `auto`, `rapl`, `battery`, `trace:FILE`, `estimate`, `none`.
    fn from_str(text: &str) -> Result<Self, EnergyError> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => Ok(EnergySource::Auto),
            "rapl" => Ok(EnergySource::Rapl),
            "battery" => Ok(EnergySource::Battery),
            "estimate" => Ok(EnergySource::Estimate),
            "none" => Ok(EnergySource::None),
            _ if lower.starts_with("trace:") => {
                let path = text.trim()["trace:".len()..].trim();
                if path.is_empty() {
                    return Err(EnergyError::UnknownSource(format!(
                        "{text} (trace needs a file: trace:FILE)"
                    )));
                }
                Ok(EnergySource::Trace(PathBuf::from(path)))
            }
            _ => Err(EnergyError::UnknownSource(text.to_string())),
        }
    }
}

/// Everything a meter needs. `Default` gives auto-detection, the sysfs root from
/// `JOULE_SYSFS_ROOT` (else `/sys`), 100 ms battery/probe polling, 20 ms RAPL polling, no
/// baseline, and the built-in watts-per-core table.
#[derive(Clone)]
pub struct EnergyConfig {
    pub source: EnergySource,
    /// Root under which `class/powercap` and `class/power_supply` are read.
    pub sysfs_root: PathBuf,
    /// Polling interval of the battery and platform-probe backends (their sensors update
    /// only a few times a second; a poll each 100 ms catches every update).
    pub sample_interval: Duration,
    /// Polling interval of RAPL counters: catches wrap-arounds and lets slowly updating
    /// counters be interpolated. Cost: one small sysfs read per zone per poll.
    pub counter_poll_interval: Duration,
    /// Seconds of idle baseline measured when the meter is created (0 = none). The
    /// constructor blocks for this long.
    pub baseline_s: f64,
    /// Subtract baseline watts × window duration from each window's joules.
    pub subtract_baseline: bool,
    /// Watts per busy core for the estimate.
    pub watts_per_core: WattsPerCoreTable,
    /// A host-supplied probe that `Auto` tries after RAPL and the sysfs battery.
    pub probe: Option<Arc<dyn PlatformProbe>>,
    /// A simulated time base (tests): no sampling thread runs and time moves only when
    /// the clock is advanced; see [`ManualClock`](super::ManualClock).
    pub clock: Option<super::ManualClock>,
}

/// `JOULE_SYSFS_ROOT` if set and not empty, else `/sys`.
pub fn default_sysfs_root() -> PathBuf {
    match std::env::var_os(SYSFS_ROOT_ENV) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => PathBuf::from("/sys"),
    }
}

impl Default for EnergyConfig {
    fn default() -> Self {
        EnergyConfig {
            source: EnergySource::Auto,
            sysfs_root: default_sysfs_root(),
            sample_interval: Duration::from_millis(100),
            counter_poll_interval: Duration::from_millis(20),
            baseline_s: 0.0,
            subtract_baseline: false,
            watts_per_core: WattsPerCoreTable::builtin(),
            probe: None,
            clock: None,
        }
    }
}

impl EnergyConfig {
    /// The default configuration with the given source.
    pub fn with_source(source: EnergySource) -> Self {
        EnergyConfig { source, ..EnergyConfig::default() }
    }

    pub(crate) fn validate(&self) -> Result<(), EnergyError> {
        let invalid = |why: String| Err(EnergyError::InvalidConfig(why));
        if self.sample_interval.is_zero() || self.counter_poll_interval.is_zero() {
            return invalid("polling intervals must be above zero".to_string());
        }
        if !(self.baseline_s.is_finite() && (0.0..=3600.0).contains(&self.baseline_s)) {
            return invalid(format!(
                "baseline seconds {} must be between 0 and 3600",
                self.baseline_s
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for EnergyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyConfig")
            .field("source", &self.source)
            .field("sysfs_root", &self.sysfs_root)
            .field("sample_interval", &self.sample_interval)
            .field("counter_poll_interval", &self.counter_poll_interval)
            .field("baseline_s", &self.baseline_s)
            .field("subtract_baseline", &self.subtract_baseline)
            .field("watts_per_core", &self.watts_per_core)
            .field("probe", &self.probe.as_ref().map(|p| p.name()))
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_forms() {
        assert!(matches!("auto".parse(), Ok(EnergySource::Auto)));
        assert!(matches!("RAPL".parse(), Ok(EnergySource::Rapl)));
        match "trace:/tmp/Run 1.csv".parse::<EnergySource>() {
            Ok(EnergySource::Trace(path)) => assert_eq!(path, PathBuf::from("/tmp/Run 1.csv")),
            other => panic!("{other:?}"),
        }
        assert!(matches!("trace:".parse::<EnergySource>(), Err(EnergyError::UnknownSource(_))));
        assert!(matches!("joules".parse::<EnergySource>(), Err(EnergyError::UnknownSource(_))));
        assert_eq!(EnergySource::Estimate.to_string(), "estimate");
    }
}
