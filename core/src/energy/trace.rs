//! External power-monitor traces: a CSV of timestamped power, or current and voltage,
//! integrated over the run's wall-clock windows.
//!
//! Format: the first line that is neither blank nor a `#` comment is the header; columns are
//! matched by name, case-insensitively, in any order, extra columns ignored:
//! - time, in unix seconds (fractions allowed): `timestamp`, `timestamp_s`, `time`,
//!   `time_s`, `unix_time`, `unix_s` or `t`;
//! - power: `power_w`, `power`, `watts`, `w`; or `power_mw`, `power_uw`;
//! - or current and voltage: `current_a`, `current`, `amps`, `a`, `i` (or `current_ma`,
//!   `current_ua`) and `voltage_v`, `voltage`, `volts`, `v` (or `voltage_mv`, `voltage_uv`).
//!
//! A power column wins over current × voltage. Values are used as written (no sign
//! flipping). Timestamps must not go backwards. Power is taken as varying linearly between
//! samples, so a window that starts or ends between two samples gets the interpolated part
//! of that interval.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::EnergyError;
use super::integrate::{CompensatedSum, MIN_UPDATES_PER_WINDOW};
use super::meter::{Clock, Engine, Measurement, Stamp};

/// Energy of a trace over an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceEnergy {
    pub joules: f64,
    /// Fraction of the interval the trace spans (0..=1).
    pub coverage: f64,
    /// Trace samples inside the interval.
    pub samples: u64,
}

#[derive(Debug, Clone, Copy)]
enum PowerColumns {
    Power { index: usize, scale: f64 },
    CurrentVoltage { current: usize, current_scale: f64, voltage: usize, voltage_scale: f64 },
}

#[derive(Debug, Clone, Copy)]
struct Columns {
    time: usize,
    power: PowerColumns,
}

const TIME_NAMES: &[&str] =
    &["timestamp", "timestamp_s", "time", "time_s", "unix_time", "unix_s", "t"];
const POWER_NAMES: &[(&str, f64)] = &[
    ("power_w", 1.0),
    ("power", 1.0),
    ("watts", 1.0),
    ("w", 1.0),
    ("power_mw", 1e-3),
    ("power_uw", 1e-6),
];
const CURRENT_NAMES: &[(&str, f64)] = &[
    ("current_a", 1.0),
    ("current", 1.0),
    ("amps", 1.0),
    ("a", 1.0),
    ("i", 1.0),
    ("current_ma", 1e-3),
    ("current_ua", 1e-6),
];
const VOLTAGE_NAMES: &[(&str, f64)] = &[
    ("voltage_v", 1.0),
    ("voltage", 1.0),
    ("volts", 1.0),
    ("v", 1.0),
    ("voltage_mv", 1e-3),
    ("voltage_uv", 1e-6),
];

fn is_skippable(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

fn parse_header(line: &str) -> Result<Columns, String> {
    let names: Vec<String> =
        line.split(',').map(|c| c.trim().trim_matches('"').to_ascii_lowercase()).collect();
    let find = |candidates: &[(&str, f64)]| {
        names.iter().enumerate().find_map(|(index, name)| {
            candidates.iter().find(|(c, _)| c == name).map(|&(_, scale)| (index, scale))
        })
    };
    let time = names
        .iter()
        .position(|name| TIME_NAMES.contains(&name.as_str()))
        .ok_or_else(|| format!("header has no time column (one of {})", TIME_NAMES.join(", ")))?;
    let power = if let Some((index, scale)) = find(POWER_NAMES) {
        PowerColumns::Power { index, scale }
    } else {
        match (find(CURRENT_NAMES), find(VOLTAGE_NAMES)) {
            (Some((current, current_scale)), Some((voltage, voltage_scale))) => {
                PowerColumns::CurrentVoltage { current, current_scale, voltage, voltage_scale }
            }
            _ => {
                return Err(format!(
                    "header {:?} has neither a power column (power_w, power_mw, ...) nor current and \
                     voltage columns (current_a + voltage_v, ...)",
                    line.trim()
                ));
            }
        }
    };
    Ok(Columns { time, power })
}

fn parse_row(columns: &Columns, line: &str) -> Result<(f64, f64), String> {
    let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
    let number = |index: usize, what: &str| -> Result<f64, String> {
        let text = fields.get(index).ok_or_else(|| format!("missing {what} field"))?;
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(format!("{what} {text:?} is not a finite number")),
        }
    };
    let time = number(columns.time, "time")?;
    let watts = match columns.power {
        PowerColumns::Power { index, scale } => number(index, "power")? * scale,
        PowerColumns::CurrentVoltage { current, current_scale, voltage, voltage_scale } => {
            number(current, "current")?
                * current_scale
                * number(voltage, "voltage")?
                * voltage_scale
        }
    };
    Ok((time, watts))
}

/// A power trace in memory: samples with a running trapezoid integral.
#[derive(Debug, Clone, Default)]
pub struct PowerTrace {
    times: Vec<f64>,
    watts: Vec<f64>,
    cumulative: Vec<f64>,
    integral: CompensatedSum,
}

impl PowerTrace {
    /// Parses a whole CSV trace; any bad line is an error naming its line number.
    pub fn parse(text: &str) -> Result<Self, EnergyError> {
        Self::parse_text(text).map_err(EnergyError::TraceFormat)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        let mut columns = None;
        let mut trace = PowerTrace::default();
        for (index, line) in text.lines().enumerate() {
            if is_skippable(line) {
                continue;
            }
            let line_no = index + 1;
            match &columns {
                None => {
                    columns = Some(parse_header(line).map_err(|e| format!("line {line_no}: {e}"))?)
                }
                Some(columns) => {
                    let (time, watts) =
                        parse_row(columns, line).map_err(|e| format!("line {line_no}: {e}"))?;
                    trace.push_sample(time, watts).map_err(|e| format!("line {line_no}: {e}"))?;
                }
            }
        }
        if columns.is_none() {
            return Err("no header line".to_string());
        }
        Ok(trace)
    }

    /// Reads and parses a trace file.
    pub fn load(path: &Path) -> Result<Self, EnergyError> {
        crate::fsutil::check_input_file(path)
            .map_err(|e| EnergyError::Trace { path: path.to_path_buf(), reason: e.to_string() })?;
        let text = std::fs::read_to_string(path).map_err(|e| EnergyError::Trace {
            path: path.to_path_buf(),
            reason: super::sysfs::describe_io(&e),
        })?;
        Self::parse_text(&text)
            .map_err(|reason| EnergyError::Trace { path: path.to_path_buf(), reason })
    }

    /// Appends a sample; timestamps must not go backwards.
    pub fn push(&mut self, time_unix_s: f64, watts: f64) -> Result<(), EnergyError> {
        self.push_sample(time_unix_s, watts).map_err(EnergyError::TraceFormat)
    }

    fn push_sample(&mut self, time_unix_s: f64, watts: f64) -> Result<(), String> {
        if !time_unix_s.is_finite() || !watts.is_finite() {
            return Err(format!("sample ({time_unix_s}, {watts}) is not finite"));
        }
        if let (Some(&last_t), Some(&last_w)) = (self.times.last(), self.watts.last()) {
            if time_unix_s < last_t {
                return Err(format!("timestamp {time_unix_s} goes back from {last_t}"));
            }
            self.integral.add(0.5 * (last_w + watts) * (time_unix_s - last_t));
        }
        self.times.push(time_unix_s);
        self.watts.push(watts);
        self.cumulative.push(self.integral.value());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// First and last timestamps, if any.
    pub fn span(&self) -> Option<(f64, f64)> {
        Some((*self.times.first()?, *self.times.last()?))
    }

    /// Mean sample rate over the trace.
    pub fn sample_rate_hz(&self) -> Option<f64> {
        let (first, last) = self.span()?;
        (last > first).then(|| (self.len() - 1) as f64 / (last - first))
    }

    /// The running integral at `t`, for `t` within the trace.
    fn cumulative_at(&self, t: f64) -> f64 {
        let after = self.times.partition_point(|&x| x <= t);
        let i = after.saturating_sub(1);
        if i + 1 >= self.times.len() {
            return self.cumulative[i];
        }
        let (t0, t1) = (self.times[i], self.times[i + 1]);
        let (w0, w1) = (self.watts[i], self.watts[i + 1]);
        let span = t1 - t0;
        let w = if span > 0.0 { w0 + (w1 - w0) * (t - t0) / span } else { w1 };
        self.cumulative[i] + 0.5 * (w0 + w) * (t - t0)
    }

    /// Joules between two unix times, over the part of the interval the trace spans.
    pub fn energy_between(&self, start_unix_s: f64, end_unix_s: f64) -> TraceEnergy {
        let none = TraceEnergy { joules: 0.0, coverage: 0.0, samples: 0 };
        let Some((first, last)) = self.span() else { return none };
        // A NaN bound is no window (and would break the sample count below).
        if start_unix_s.is_nan() || end_unix_s.is_nan() || end_unix_s <= start_unix_s {
            return none;
        }
        let lo = start_unix_s.max(first);
        let hi = end_unix_s.min(last);
        let samples = (self.times.partition_point(|&x| x <= end_unix_s)
            - self.times.partition_point(|&x| x < start_unix_s)) as u64;
        if hi <= lo {
            return TraceEnergy { samples, ..none };
        }
        TraceEnergy {
            joules: self.cumulative_at(hi) - self.cumulative_at(lo),
            coverage: (hi - lo) / (end_unix_s - start_unix_s),
            samples,
        }
    }

    /// Drops samples before `t`, keeping the one just before it for interpolation.
    fn forget_before(&mut self, t: f64) {
        let keep_from = self.times.partition_point(|&x| x < t).saturating_sub(1);
        if keep_from > 0 {
            self.times.drain(..keep_from);
            self.watts.drain(..keep_from);
            self.cumulative.drain(..keep_from);
        }
    }
}

/// Follows a trace file that may still be growing while the run goes on.
struct TraceFollower {
    path: PathBuf,
    /// `None` until the header line arrives; `Some(Err)` if it was not a valid header.
    columns: Option<Result<Columns, String>>,
    offset: u64,
    carry: Vec<u8>,
    /// Lines consumed so far, to name the line of a bad row.
    lines_read: usize,
    trace: PowerTrace,
    errors: u64,
    last_error: Option<String>,
}

impl TraceFollower {
    fn error(&mut self, reason: String) {
        self.errors += 1;
        self.last_error = Some(format!("trace {}: {reason}", self.path.display()));
    }

    /// Reads whatever was appended since the last call. Bad lines are counted and skipped.
    fn refresh(&mut self) {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&self.path).and_then(|mut file| {
            let length = file.metadata()?.len();
            if length < self.offset {
                return Err(std::io::Error::other("file shrank; was it rewritten?"));
            }
            file.seek(SeekFrom::Start(self.offset))?;
            file.read_to_end(&mut bytes)
        });
        match read {
            Ok(count) => self.offset += count as u64,
            Err(e) => {
                self.error(super::sysfs::describe_io(&e));
                return;
            }
        }
        self.carry.extend_from_slice(&bytes);
        let Some(last_newline) = self.carry.iter().rposition(|&b| b == b'\n') else { return };
        let complete: Vec<u8> = self.carry.drain(..=last_newline).collect();
        // `complete` ends with a newline, so the last piece of the split is empty.
        for raw_line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
            self.lines_read += 1;
            let line_no = self.lines_read;
            let Ok(line) = std::str::from_utf8(raw_line) else {
                self.error(format!("line {line_no}: not UTF-8"));
                continue;
            };
            if is_skippable(line) {
                continue;
            }
            let outcome = match &self.columns {
                None => {
                    let header = parse_header(line);
                    self.columns = Some(header.clone());
                    header.map(|_| ())
                }
                // Without a valid header no row can be read; the header error is the one to see.
                Some(Err(_)) => continue,
                Some(Ok(columns)) => {
                    parse_row(columns, line).and_then(|(t, w)| self.trace.push_sample(t, w))
                }
            };
            if let Err(reason) = outcome {
                self.error(format!("line {line_no}: {reason}"));
            }
        }
    }
}

/// The trace backend: no thread; each window end reads what the monitor has appended.
pub(crate) struct TraceEngine {
    clock: Clock,
    state: Mutex<TraceState>,
}

struct TraceState {
    follower: TraceFollower,
    windows: HashMap<u64, Stamp>,
    /// Samples from here on are kept for a baseline that is not resolved yet.
    pinned_from: Option<f64>,
}

impl TraceEngine {
    /// Opens a trace; the file must exist and start with a valid header.
    pub(crate) fn open(path: &Path, clock: Clock) -> Result<Self, String> {
        let mut follower = TraceFollower {
            path: path.to_path_buf(),
            columns: None,
            offset: 0,
            carry: Vec::new(),
            lines_read: 0,
            trace: PowerTrace::default(),
            errors: 0,
            last_error: None,
        };
        if let Err(e) = std::fs::metadata(path) {
            return Err(format!("trace: {}: {}", path.display(), super::sysfs::describe_io(&e)));
        }
        // A FIFO would block the open; a directory or device is never a trace.
        if let Err(e) = crate::fsutil::check_input_file(path) {
            return Err(format!("trace: {e}"));
        }
        follower.refresh();
        match &follower.columns {
            Some(Ok(_)) => {}
            Some(Err(reason)) => return Err(format!("trace: {}: {reason}", path.display())),
            None => return Err(format!("trace: {}: no header line yet", path.display())),
        }
        // Rows already written must all be valid: a NaN or garbage row in a recorded trace
        // is a broken trace, not a sensor hiccup.
        if let Some(reason) = follower.last_error.take() {
            return Err(reason);
        }
        Ok(TraceEngine {
            clock,
            state: Mutex::new(TraceState { follower, windows: HashMap::new(), pinned_from: None }),
        })
    }

    fn state(&self) -> MutexGuard<'_, TraceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn path(&self) -> String {
        self.state().follower.path.display().to_string()
    }

    fn measure(state: &mut TraceState, start: Stamp, end: Stamp) -> Measurement {
        let errors_before = state.follower.errors;
        state.follower.refresh();
        let trace = &state.follower.trace;
        let energy = trace.energy_between(start.unix_s, end.unix_s);
        let duration = end.unix_s - start.unix_s;
        let rate = trace.sample_rate_hz();
        let too_slow = match rate {
            Some(hz) => duration < MIN_UPDATES_PER_WINDOW / hz,
            None => true,
        };
        let mut notes = Vec::new();
        if energy.coverage < 0.999 {
            notes.push(format!(
                "the trace covers {:.1}% of this window; joules are for the covered part only",
                energy.coverage * 100.0
            ));
        }
        let errors = state.follower.errors - errors_before;
        Measurement {
            joules: energy.joules,
            components: [("trace".to_string(), energy.joules)].into_iter().collect(),
            sample_count: energy.samples,
            sensor_update_hz: rate,
            too_slow,
            charging: false,
            external_power: false,
            thermal: None,
            sensor_errors: errors,
            last_error: if errors > 0 { state.follower.last_error.clone() } else { None },
            coverage: energy.coverage,
            notes,
        }
    }

    fn prune(state: &mut TraceState, now_unix: f64) {
        let oldest_needed = state
            .windows
            .values()
            .map(|stamp| stamp.unix_s)
            .chain(state.pinned_from)
            .fold(now_unix, f64::min);
        state.follower.trace.forget_before(oldest_needed);
    }
}

impl Engine for TraceEngine {
    fn begin(&self, id: u64) -> Stamp {
        let start = self.clock.now();
        self.state().windows.insert(id, start);
        start
    }

    fn end(&self, id: u64) -> Option<(Stamp, Stamp, Measurement)> {
        let end = self.clock.now();
        let mut state = self.state();
        let start = state.windows.remove(&id)?;
        let measurement = Self::measure(&mut state, start, end);
        Self::prune(&mut state, end.unix_s);
        Some((start, end, measurement))
    }

    fn cancel(&self, id: u64) {
        self.state().windows.remove(&id);
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn replay(&self, start: Stamp, end: Stamp) -> Option<Measurement> {
        let mut state = self.state();
        Some(Self::measure(&mut state, start, end))
    }

    fn retain_from(&self, unix_s: Option<f64>) {
        self.state().pinned_from = unix_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_variants() {
        assert!(matches!(
            parse_header("Timestamp, Power_mW").unwrap().power,
            PowerColumns::Power { index: 1, scale } if scale == 1e-3
        ));
        let columns = parse_header("\"voltage_v\",extra,current_ma,unix_time").unwrap();
        assert_eq!(columns.time, 3);
        assert!(matches!(
            columns.power,
            PowerColumns::CurrentVoltage { current: 2, voltage: 0, .. }
        ));
        assert!(parse_header("time,current_a").unwrap_err().contains("neither"));
        assert!(parse_header("power_w").unwrap_err().contains("no time column"));
    }

    #[test]
    fn strict_parse_names_the_bad_line() {
        let reason = |text: &str| match PowerTrace::parse(text) {
            Err(EnergyError::TraceFormat(reason)) => reason,
            other => panic!("{other:?}"),
        };
        let err = reason("# monitor\ntime,power_w\n1.0,2.0\n1.1,abc\n");
        assert!(err.starts_with("line 4:") && err.contains("abc"), "{err}");
        let err = reason("time,power_w\n2.0,1\n1.0,1\n");
        assert!(err.contains("goes back"), "{err}");
        assert_eq!(reason(""), "no header line");
    }

    #[test]
    fn partial_intervals_between_samples() {
        // 1 W at t=10, 3 W at t=11, 3 W at t=12: linear between samples.
        let trace = PowerTrace::parse("t,w\n10,1\n11,3\n12,3\n").unwrap();
        let e = trace.energy_between(10.5, 11.5);
        // ∫10.5..11 (1+2(t-10)) = 1.25, ∫11..11.5 3 = 1.5
        assert!((e.joules - 2.75).abs() < 1e-12, "{e:?}");
        assert_eq!(e.coverage, 1.0);
        assert_eq!(e.samples, 1);
        let e = trace.energy_between(9.0, 10.5);
        assert!((e.joules - 0.75).abs() < 1e-12 && (e.coverage - 1.0 / 3.0).abs() < 1e-12, "{e:?}");
    }

    #[test]
    fn forgetting_old_samples_keeps_later_integrals() {
        let mut trace = PowerTrace::default();
        for i in 0..1000 {
            trace.push(i as f64 * 0.01, 2.0).unwrap();
        }
        let before = trace.energy_between(5.005, 9.0);
        trace.forget_before(5.005);
        assert_eq!(trace.len(), 500);
        assert_eq!(trace.energy_between(5.005, 9.0), before);
    }
}
