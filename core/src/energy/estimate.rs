//! The estimate used when no sensor is available: this process's CPU time × watts per busy
//! core, from an overridable table. Always labelled estimated.
//!
//! CPU time is the sum over the process's threads of `/proc/self/task/<tid>/schedstat`
//! (nanoseconds on the CPU), cross-checked against `utime + stime` in `/proc/self/stat`
//! (clock ticks of 1/100 s, the Linux `USER_HZ` on every mainstream architecture), which also
//! counts threads that exited during the window: if the process total is ahead of the
//! per-thread sum by more than two ticks, threads came and went, and the process total is
//! used instead.
//!
//! The model counts only busy cores of this process: no idle, uncore, DRAM, GPU or display
//! power, and no frequency scaling. Treat it as a rough order of magnitude.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::EnergyError;
use super::meter::{Clock, Engine, Measurement, Stamp};

/// Clock ticks per second of `/proc/<pid>/stat` times (Linux `USER_HZ`).
const USER_HZ: f64 = 100.0;

/// One row of the watts-per-busy-core table. `arch` and `os` are Rust's
/// `std::env::consts::{ARCH, OS}` names, or `*` for any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WattsPerCore {
    pub arch: String,
    pub os: String,
    pub watts: f64,
    /// Where the number comes from.
    pub basis: String,
}

/// Watts drawn per fully busy core, by target. The most specific matching row wins (exact
/// arch and os, then arch with any os, then any arch with the os, then any); among equally
/// specific rows the first wins, so overrides go in front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WattsPerCoreTable {
    pub entries: Vec<WattsPerCore>,
}

fn row(arch: &str, os: &str, watts: f64, basis: &str) -> WattsPerCore {
    WattsPerCore { arch: arch.to_string(), os: os.to_string(), watts, basis: basis.to_string() }
}

impl Default for WattsPerCoreTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl WattsPerCoreTable {
    /// The built-in priors: vendor TDP divided by core count, and per-core figures from
    /// public SoC reviews, rounded. Rough by design (±50%); override with numbers measured on
    /// your device.
    pub fn builtin() -> Self {
        WattsPerCoreTable {
            entries: vec![
                row(
                    "x86_64",
                    "*",
                    5.0,
                    "TDP per core: 4.4 W for a 64-core 280 W server part (AMD EPYC 7763), 13 W for \
                     an 8-core 105 W desktop part (AMD Ryzen 7 5800X), 3-7 W for laptop parts; 5 W \
                     sits in the laptop-to-server range",
                ),
                row(
                    "aarch64",
                    "macos",
                    4.0,
                    "Apple performance cores draw roughly 3-5 W each at full load in public reviews",
                ),
                row(
                    "aarch64",
                    "ios",
                    4.0,
                    "Apple performance cores draw roughly 3-5 W each at full load in public reviews",
                ),
                row(
                    "aarch64",
                    "*",
                    1.5,
                    "phone SoCs: big cores draw about 1-3.5 W each at peak frequency, little cores \
                     under 0.5 W, in public reviews; 1.5 W is a big/little average",
                ),
                row("*", "*", 3.0, "generic fallback for other architectures"),
            ],
        }
    }

    /// A table with one figure for every target.
    pub fn single(watts: f64, basis: impl Into<String>) -> Self {
        WattsPerCoreTable {
            entries: vec![WattsPerCore {
                arch: "*".into(),
                os: "*".into(),
                watts,
                basis: basis.into(),
            }],
        }
    }

    /// Parses an override: either one number (watts for every target, replacing the table)
    /// or comma-separated `arch=W` / `arch/os=W` items put in front of the built-in rows,
    /// e.g. `"aarch64/android=1.2,x86_64=6"`.
    pub fn with_overrides(spec: &str) -> Result<Self, EnergyError> {
        let mut table = Self::builtin();
        let mut overrides = Vec::new();
        let invalid = |why: String| {
            EnergyError::InvalidConfig(format!("watts-per-core override {spec:?}: {why}"))
        };
        let parse_watts = |text: &str| -> Result<f64, EnergyError> {
            match text.trim().parse::<f64>() {
                Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
                _ => Err(invalid(format!("{text:?} is not a positive number of watts"))),
            }
        };
        if !spec.contains('=') {
            return Ok(Self::single(parse_watts(spec)?, "user override"));
        } else {
            for item in spec.split(',') {
                let (target, watts) = item
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("{item:?} is not target=W")))?;
                let (arch, os) = target.trim().split_once('/').unwrap_or((target.trim(), "*"));
                if arch.is_empty() || os.is_empty() {
                    return Err(invalid(format!("{item:?} has an empty target")));
                }
                overrides.push(row(arch, os, parse_watts(watts)?, "user override"));
            }
        }
        overrides.append(&mut table.entries);
        table.entries = overrides;
        Ok(table)
    }

    /// The row for a target.
    pub fn lookup(&self, arch: &str, os: &str) -> Option<&WattsPerCore> {
        let matches = |want_arch: bool, want_os: bool| {
            self.entries.iter().find(|e| {
                (if want_arch { e.arch == arch } else { e.arch == "*" })
                    && (if want_os { e.os == os } else { e.os == "*" })
            })
        };
        matches(true, true)
            .or_else(|| matches(true, false))
            .or_else(|| matches(false, true))
            .or_else(|| matches(false, false))
    }

    /// The row for the target this binary was built for.
    pub fn for_this_target(&self) -> Option<&WattsPerCore> {
        self.lookup(std::env::consts::ARCH, std::env::consts::OS)
    }
}

/// CPU time of the process at one instant, from the two sources.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuSnapshot {
    process_ticks: Option<u64>,
    thread_ns: Option<HashMap<u32, u64>>,
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(text: &str) -> Result<u64, String> {
    let close = text.rfind(')').ok_or("no ')' after the command name")?;
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // Fields after ')' start at field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| -> Result<u64, String> {
        let text = fields.get(n - 3).ok_or(format!("only {} fields", fields.len() + 2))?;
        text.parse::<u64>().map_err(|_| format!("field {n} is {text:?}, not a tick count"))
    };
    Ok(field(14)?.saturating_add(field(15)?))
}

fn read_thread_ns(proc_self: &Path) -> Option<HashMap<u32, u64>> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(proc_self.join("task")).ok()?.filter_map(|e| e.ok()) {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        // A thread may exit between the listing and the read; the process total covers it.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else { continue };
        let Some(Ok(ns)) = text.split_whitespace().next().map(str::parse::<u64>) else {
            return None;
        };
        threads.insert(tid, ns);
    }
    (!threads.is_empty()).then_some(threads)
}

pub(crate) fn read_cpu(proc_self: &Path) -> Result<CpuSnapshot, String> {
    let stat_path = proc_self.join("stat");
    let process_ticks = std::fs::read_to_string(&stat_path)
        .map_err(|e| format!("{}: {}", stat_path.display(), super::sysfs::describe_io(&e)))
        .and_then(|text| {
            parse_stat_ticks(&text).map_err(|e| format!("{}: {e}", stat_path.display()))
        });
    let thread_ns = read_thread_ns(proc_self);
    match (process_ticks, thread_ns) {
        (Err(reason), None) => Err(reason),
        (ticks, threads) => Ok(CpuSnapshot { process_ticks: ticks.ok(), thread_ns: threads }),
    }
}

/// CPU seconds between two snapshots and which source gave them.
pub(crate) fn cpu_seconds_between(
    a: &CpuSnapshot,
    b: &CpuSnapshot,
) -> Result<(f64, &'static str), String> {
    let process = match (a.process_ticks, b.process_ticks) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / USER_HZ),
        _ => None,
    };
    let threads = match (&a.thread_ns, &b.thread_ns) {
        (Some(a), Some(b)) => {
            let ns: u64 = b
                .iter()
                .map(|(tid, &end)| end.saturating_sub(a.get(tid).copied().unwrap_or(0)))
                .sum();
            Some(ns as f64 * 1e-9)
        }
        _ => None,
    };
    match (process, threads) {
        (Some(p), Some(t)) if p > t + 2.0 / USER_HZ => {
            Ok((p, "process stat; threads exited during the window"))
        }
        (_, Some(t)) => Ok((t, "per-thread schedstat")),
        (Some(p), None) => Ok((p, "process stat, 10 ms resolution")),
        (None, None) => Err("no CPU time source in both snapshots".to_string()),
    }
}

/// Open windows: when each began and the CPU time read then.
type OpenWindows = HashMap<u64, (Stamp, Result<CpuSnapshot, String>)>;

/// The estimate backend: reads CPU time at each window edge; no thread.
pub(crate) struct EstimateEngine {
    clock: Clock,
    proc_self: PathBuf,
    rate: WattsPerCore,
    windows: Mutex<OpenWindows>,
}

impl EstimateEngine {
    /// Checks that CPU time can be read and the table has a usable row for this target.
    pub(crate) fn open(
        proc_self: &Path,
        table: &WattsPerCoreTable,
        clock: Clock,
    ) -> Result<Self, String> {
        let rate = table
            .for_this_target()
            .ok_or_else(|| {
                format!(
                    "estimate: no watts-per-core row for {}/{}",
                    std::env::consts::ARCH,
                    std::env::consts::OS
                )
            })?
            .clone();
        if !(rate.watts.is_finite() && rate.watts > 0.0) {
            return Err(format!(
                "estimate: watts per core {} is not a positive number",
                rate.watts
            ));
        }
        read_cpu(proc_self).map_err(|reason| format!("estimate: {reason}"))?;
        Ok(EstimateEngine {
            clock,
            proc_self: proc_self.to_path_buf(),
            rate,
            windows: Mutex::new(HashMap::new()),
        })
    }

    fn windows(&self) -> MutexGuard<'_, OpenWindows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn description(&self) -> String {
        format!(
            "estimate: CPU time of this process × {} W per busy core ({}/{} row: {})",
            self.rate.watts, self.rate.arch, self.rate.os, self.rate.basis
        )
    }
}

impl Engine for EstimateEngine {
    fn begin(&self, id: u64) -> Stamp {
        let snapshot = read_cpu(&self.proc_self);
        let start = self.clock.now();
        self.windows().insert(id, (start, snapshot));
        start
    }

    fn end(&self, id: u64) -> Option<(Stamp, Stamp, Measurement)> {
        let end = self.clock.now();
        let snapshot = read_cpu(&self.proc_self);
        let (start, begin_snapshot) = self.windows().remove(&id)?;
        let cpu = begin_snapshot.and_then(|a| snapshot.and_then(|b| cpu_seconds_between(&a, &b)));
        let mut measurement =
            Measurement { sample_count: 2, coverage: 1.0, ..Measurement::default() };
        match cpu {
            Ok((seconds, how)) => {
                measurement.joules = seconds * self.rate.watts;
                measurement.notes.push(format!(
                    "{seconds:.4} CPU-seconds ({how}) × {} W per busy core",
                    self.rate.watts
                ));
            }
            Err(reason) => {
                measurement.sensor_errors = 1;
                measurement.last_error = Some(format!("estimate: {reason}"));
            }
        }
        measurement.components.insert("cpu".to_string(), measurement.joules);
        Some((start, end, measurement))
    }

    fn cancel(&self, id: u64) {
        self.windows().remove(&id);
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_awkward_command_name() {
        let line = "4242 (my (odd) prog) R 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat_ticks(line), Ok(290));
        assert!(parse_stat_ticks("4242 (x) R 1 2").unwrap_err().contains("fields"));
        assert!(parse_stat_ticks("garbage").is_err());
    }

    #[test]
    fn table_lookup_precedence_and_overrides() {
        let table = WattsPerCoreTable::builtin();
        assert_eq!(table.lookup("x86_64", "linux").unwrap().watts, 5.0);
        assert_eq!(table.lookup("aarch64", "android").unwrap().watts, 1.5);
        assert_eq!(table.lookup("aarch64", "ios").unwrap().watts, 4.0);
        assert_eq!(table.lookup("riscv64", "linux").unwrap().watts, 3.0);
        let table = WattsPerCoreTable::with_overrides("aarch64/android=1.2, x86_64=6").unwrap();
        assert_eq!(table.lookup("aarch64", "android").unwrap().watts, 1.2);
        assert_eq!(table.lookup("aarch64", "linux").unwrap().watts, 1.5);
        assert_eq!(table.lookup("x86_64", "linux").unwrap().watts, 6.0);
        assert_eq!(
            WattsPerCoreTable::with_overrides("2.5")
                .unwrap()
                .lookup("x86_64", "linux")
                .unwrap()
                .watts,
            2.5
        );
        assert!(WattsPerCoreTable::with_overrides("x86_64=-1").is_err());
        assert!(WattsPerCoreTable::with_overrides("fast").is_err());
    }

    #[test]
    fn exited_threads_fall_back_to_process_time() {
        let a = CpuSnapshot {
            process_ticks: Some(100),
            thread_ns: Some([(1, 1_000_000_000), (2, 500_000_000)].into()),
        };
        let b =
            CpuSnapshot { process_ticks: Some(160), thread_ns: Some([(1, 1_100_000_000)].into()) };
        let (seconds, how) = cpu_seconds_between(&a, &b).unwrap();
        assert!((seconds - 0.6).abs() < 1e-12 && how.contains("exited"), "{seconds} {how}");
        let b = CpuSnapshot {
            process_ticks: Some(107),
            thread_ns: Some([(1, 1_050_000_000), (2, 512_345_678), (3, 7)].into()),
        };
        let (seconds, how) = cpu_seconds_between(&a, &b).unwrap();
        assert!(
            (seconds - 0.062_345_685).abs() < 1e-12 && how.contains("schedstat"),
            "{seconds} {how}"
        );
    }
}
