//! The meter: named windows over whichever backend was selected, the idle baseline, and
//! turning a backend's measurement into an [`EnergyReading`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::EnergyError;
use super::config::EnergyConfig;
use super::reading::{
    Baseline, EnergyReading, Fallback, Method, Quality, SourceInfo, SourceKind, ThermalState,
    WindowTimes,
};
use super::sampler::SamplerThread;
use super::select::select;

/// A moment on the meter's monotonic clock and on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stamp {
    /// Seconds since the meter was created (monotonic).
    pub mono_s: f64,
    pub unix_s: f64,
}

/// The meter's time base, shared by its backend: the system clocks, or a [`ManualClock`].
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    epoch: Instant,
    manual: Option<ManualClock>,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Clock {
    pub(crate) fn new(manual: Option<ManualClock>) -> Self {
        Clock { epoch: Instant::now(), manual }
    }

    pub(crate) fn now(&self) -> Stamp {
        match &self.manual {
            Some(manual) => {
                let mono_s = manual.elapsed_s();
                Stamp { mono_s, unix_s: manual.unix_start_s + mono_s }
            }
            None => Stamp { mono_s: self.epoch.elapsed().as_secs_f64(), unix_s: unix_now() },
        }
    }

    /// Whether the caller moves time (then no sampling thread runs).
    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Lets `duration` pass: sleeps, or advances a manual clock.
    fn pass(&self, duration: Duration) {
        match &self.manual {
            Some(manual) => manual.advance(duration),
            None => std::thread::sleep(duration),
        }
    }
}

/// A clock that moves only when told to, for tests and simulations: with it a meter runs
/// no sampling thread, and a simulated sensor is read exactly at the times the caller
/// chooses ([`EnergyMeter::sample_now`] and every window edge), so a verdict never depends
/// on how busy the machine is. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
    unix_start_s: f64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock at 0 s, whose wall-clock time starts at the present moment.
    pub fn new() -> Self {
        ManualClock { nanos: Arc::new(AtomicU64::new(0)), unix_start_s: unix_now() }
    }

    pub fn advance(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Seconds since the clock was made.
    pub fn elapsed_s(&self) -> f64 {
        self.nanos.load(Ordering::SeqCst) as f64 * 1e-9
    }

    /// The wall-clock (unix) time this clock reads now.
    pub fn unix_s(&self) -> f64 {
        self.unix_start_s + self.elapsed_s()
    }
}

/// What a backend measured over one window, before baseline handling.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measurement {
    pub joules: f64,
    pub components: BTreeMap<String, f64>,
    pub sample_count: u64,
    pub sensor_update_hz: Option<f64>,
    pub too_slow: bool,
    pub charging: bool,
    pub external_power: bool,
    pub thermal: Option<ThermalState>,
    pub sensor_errors: u64,
    pub last_error: Option<String>,
    pub coverage: f64,
    pub notes: Vec<String>,
}

/// A backend's window bookkeeping.
pub(crate) trait Engine: Send + Sync {
    /// Opens window `id` now and returns when it started.
    fn begin(&self, id: u64) -> Stamp;
    /// Closes window `id`: its start, its end and what was measured; `None` if unknown.
    fn end(&self, id: u64) -> Option<(Stamp, Stamp, Measurement)>;
    /// Forgets window `id` without measuring it.
    fn cancel(&self, id: u64);
    fn poll_interval(&self) -> Option<Duration>;
    /// Takes one sensor reading now (live sensors only).
    fn sample_now(&self) {}
    /// Measures a past interval again (only backends that keep history can).
    fn replay(&self, _start: Stamp, _end: Stamp) -> Option<Measurement> {
        None
    }
    /// Asks a history-keeping backend to retain data from `unix_s` on (`None` releases it).
    fn retain_from(&self, _unix_s: Option<f64>) {}
}

/// The `none` backend: windows have durations but no energy.
pub(crate) struct NoneEngine {
    clock: Clock,
    windows: Mutex<HashMap<u64, Stamp>>,
}

impl NoneEngine {
    pub(crate) fn new(clock: Clock) -> Self {
        NoneEngine { clock, windows: Mutex::new(HashMap::new()) }
    }

    fn windows(&self) -> MutexGuard<'_, HashMap<u64, Stamp>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine for NoneEngine {
    fn begin(&self, id: u64) -> Stamp {
        let start = self.clock.now();
        self.windows().insert(id, start);
        start
    }

    fn end(&self, id: u64) -> Option<(Stamp, Stamp, Measurement)> {
        let end = self.clock.now();
        let start = self.windows().remove(&id)?;
        Some((start, end, Measurement { coverage: 0.0, ..Measurement::default() }))
    }

    fn cancel(&self, id: u64) {
        self.windows().remove(&id);
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}

enum BaselineState {
    NotMeasured,
    Known(Baseline),
    /// A trace that did not yet cover the baseline period when the meter was created.
    Pending {
        start: Stamp,
        end: Stamp,
    },
}

struct Shared {
    engine: Arc<dyn Engine>,
    kind: SourceKind,
    description: String,
    paths: Vec<String>,
    fallbacks: Vec<Fallback>,
    notes: Vec<String>,
    subtract_baseline: bool,
    baseline: Mutex<BaselineState>,
    next_window: AtomicU64,
}

impl Shared {
    fn baseline(&self) -> Option<Baseline> {
        let mut state = self.baseline.lock().unwrap_or_else(|p| p.into_inner());
        if let BaselineState::Pending { start, end } = *state
            && let Some(measurement) = self.engine.replay(start, end)
            && measurement.coverage >= 0.999
        {
            *state = BaselineState::Known(Baseline {
                watts: measurement.joules / (end.mono_s - start.mono_s),
                measured_over_s: end.mono_s - start.mono_s,
                subtracted: self.subtract_baseline,
            });
            self.engine.retain_from(None);
        }
        match &*state {
            BaselineState::Known(baseline) => Some(baseline.clone()),
            _ => None,
        }
    }
}

/// Measures energy over named windows that may overlap. `Send + Sync`: share it by
/// reference or in an `Arc`. Dropping it stops its sampling thread.
pub struct EnergyMeter {
    shared: Arc<Shared>,
    // Owned by the meter alone (windows hold only `shared`), so dropping the meter stops and
    // joins the thread even while windows are still alive.
    _sampler: Option<SamplerThread>,
}

/// An open window. Pass it to [`EnergyMeter::end`]; dropping it unended discards it.
#[must_use = "an energy window measures nothing until it is passed to EnergyMeter::end"]
pub struct EnergyWindow {
    shared: Arc<Shared>,
    id: u64,
    name: String,
    ended: bool,
}

impl EnergyWindow {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for EnergyWindow {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.engine.cancel(self.id);
        }
    }
}

/// Window id reserved for the idle baseline.
const BASELINE_WINDOW: u64 = 0;

impl EnergyMeter {
    /// Selects and starts the configured source, then measures the idle baseline if
    /// `baseline_s > 0` (blocking that long). Fails only for an invalid configuration, an
    /// explicitly requested source that is unavailable, or a thread that cannot start.
    pub fn new(config: EnergyConfig) -> Result<Self, EnergyError> {
        config.validate()?;
        let clock = Clock::new(config.clock.clone());
        let selected = select(&config, clock.clone())?;
        let engine = selected.engine;
        let baseline = if config.baseline_s > 0.0 {
            let _ = engine.begin(BASELINE_WINDOW);
            clock.pass(Duration::from_secs_f64(config.baseline_s));
            match engine.end(BASELINE_WINDOW) {
                Some((start, end, measurement)) => {
                    let seconds = end.mono_s - start.mono_s;
                    if selected.kind == SourceKind::Trace && measurement.coverage < 0.999 {
                        engine.retain_from(Some(start.unix_s));
                        BaselineState::Pending { start, end }
                    } else {
                        BaselineState::Known(Baseline {
                            watts: if seconds > 0.0 { measurement.joules / seconds } else { 0.0 },
                            measured_over_s: seconds,
                            subtracted: config.subtract_baseline,
                        })
                    }
                }
                None => BaselineState::NotMeasured,
            }
        } else {
            BaselineState::NotMeasured
        };
        let shared = Shared {
            engine,
            kind: selected.kind,
            description: selected.description,
            paths: selected.paths,
            fallbacks: selected.fallbacks,
            notes: selected.notes,
            subtract_baseline: config.subtract_baseline,
            baseline: Mutex::new(baseline),
            next_window: AtomicU64::new(BASELINE_WINDOW + 1),
        };
        Ok(EnergyMeter { shared: Arc::new(shared), _sampler: selected.sampler })
    }

    /// Takes one sensor reading now, as the polling thread does. With a [`ManualClock`]
    /// (no polling thread) this is how a simulation samples between window edges.
    pub fn sample_now(&self) {
        self.shared.engine.sample_now();
    }

    /// Opens a named window now. Windows may overlap and nest freely.
    pub fn begin(&self, name: &str) -> EnergyWindow {
        let id = self.shared.next_window.fetch_add(1, Ordering::Relaxed);
        let _ = self.shared.engine.begin(id);
        EnergyWindow { shared: Arc::clone(&self.shared), id, name: name.to_string(), ended: false }
    }

    /// Closes a window and reports its energy.
    pub fn end(&self, mut window: EnergyWindow) -> Result<EnergyReading, EnergyError> {
        if !Arc::ptr_eq(&window.shared, &self.shared) {
            return Err(EnergyError::ForeignWindow { name: window.name.clone() });
        }
        window.ended = true;
        let (start, end, measurement) = self
            .shared
            .engine
            .end(window.id)
            .ok_or_else(|| EnergyError::ForeignWindow { name: window.name.clone() })?;
        Ok(self.reading(std::mem::take(&mut window.name), start, end, measurement))
    }

    /// Whether readings are measured, estimated, or absent.
    pub fn method(&self) -> Method {
        self.shared.kind.method()
    }

    pub fn source_kind(&self) -> SourceKind {
        self.shared.kind
    }

    /// Sensor paths and zones, probe name, trace file, or the estimate's basis.
    pub fn source_description(&self) -> &str {
        &self.shared.description
    }

    /// Backends skipped by auto-detection, with reasons.
    pub fn fell_back_from(&self) -> &[Fallback] {
        &self.shared.fallbacks
    }

    /// The idle baseline, once known.
    pub fn baseline(&self) -> Option<Baseline> {
        self.shared.baseline()
    }

    fn reading(&self, name: String, start: Stamp, end: Stamp, m: Measurement) -> EnergyReading {
        let shared = &self.shared;
        let duration_s = (end.mono_s - start.mono_s).max(0.0);
        let baseline = shared.baseline();
        let mut notes = shared.notes.clone();
        notes.extend(m.notes);
        let raw_joules = m.joules;
        let mut joules = raw_joules;
        let mut baseline_subtracted = false;
        if shared.subtract_baseline {
            match &baseline {
                Some(b) => {
                    baseline_subtracted = true;
                    let idle = b.watts * duration_s;
                    joules = raw_joules - idle;
                    if joules < 0.0 {
                        notes.push(format!(
                            "baseline {idle:.4} J exceeds the window's {raw_joules:.4} J; clamped to 0"
                        ));
                        joules = 0.0;
                    }
                }
                None => notes.push(
                    "a baseline subtraction was asked for but no baseline is known".to_string(),
                ),
            }
        }
        let per_second = |value: f64| if duration_s > 0.0 { value / duration_s } else { 0.0 };
        let mut method = shared.kind.method();
        if method == Method::Measured && m.coverage <= 0.0 {
            method = Method::NoData;
            notes.push(
                "no sample of the source falls in this window: 0 J here is not a measurement"
                    .to_string(),
            );
        }
        EnergyReading {
            name,
            method,
            joules,
            raw_joules,
            duration_s,
            avg_watts: per_second(joules),
            sample_count: m.sample_count,
            sample_rate_hz: per_second(m.sample_count as f64),
            components: m.components,
            source: SourceInfo {
                kind: shared.kind,
                description: shared.description.clone(),
                paths: shared.paths.clone(),
                poll_interval_s: shared.engine.poll_interval().map(|d| d.as_secs_f64()),
                sensor_update_hz: m.sensor_update_hz,
                window: WindowTimes { start_unix_s: start.unix_s, end_unix_s: end.unix_s },
                baseline,
            },
            quality: Quality {
                charging: m.charging,
                on_external_power: m.external_power,
                sensor_too_slow_for_window: m.too_slow,
                baseline_subtracted,
                thermal_state: m.thermal,
                fell_back_from: shared.fallbacks.clone(),
                sensor_errors: m.sensor_errors,
                last_sensor_error: m.last_error,
                coverage: m.coverage,
                notes,
            },
        }
    }
}

impl std::fmt::Debug for EnergyMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyMeter")
            .field("source", &self.shared.kind)
            .field("description", &self.shared.description)
            .field("fell_back_from", &self.shared.fallbacks)
            .finish()
    }
}
