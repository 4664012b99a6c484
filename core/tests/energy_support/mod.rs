//! Shared fixtures for the energy tests: temporary sysfs trees, a simulation on a manual
//! clock that rewrites them as the test moves time (`Sim`), and a scriptable platform
//! probe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use joule_core::energy::{EnergyConfig, EnergySource, PlatformProbe, ProbeReading};

/// Serializes the tests of one binary that measure this process's CPU time (the estimate
/// backend), so that another test's work is not counted in their windows.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A temporary directory removed on drop.
pub struct TempTree {
    pub root: PathBuf,
}

impl TempTree {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir()
            .join(format!("joule-energy-{tag}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        TempTree { root }
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Replaces a file's contents in one step, as sysfs does, so a reader never sees half a value.
pub fn write_atomic(path: &Path, text: &str) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Creates `<root>/class/powercap/<id>` with `name`, `max_energy_range_uj` and `energy_uj`.
pub fn rapl_zone(root: &Path, id: &str, name: &str, max_range_uj: u64, energy_uj: u64) -> PathBuf {
    let dir = root.join("class/powercap").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(dir.join("max_energy_range_uj"), format!("{max_range_uj}\n")).unwrap();
    std::fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
    dir
}

/// Creates `<root>/class/power_supply/<name>` of type Battery with the given attribute files.
pub fn battery(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join("class/power_supply").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("type"), "Battery\n").unwrap();
    for (file, value) in files {
        std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
    }
    dir
}

/// Configuration for a simulated tree with fast polling.
pub fn config(source: EnergySource, root: &Path) -> EnergyConfig {
    EnergyConfig {
        source,
        sysfs_root: root.to_path_buf(),
        sample_interval: Duration::from_millis(5),
        counter_poll_interval: Duration::from_millis(5),
        ..EnergyConfig::default()
    }
}

#[track_caller]
pub fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let error = (actual - expected).abs() / expected.abs();
    eprintln!(
        "{what}: {actual:.6} vs {expected:.6} ({:+.3}%)",
        (actual - expected) / expected.abs() * 100.0
    );
    assert!(
        error <= relative,
        "{what}: {actual} vs expected {expected} ({:.3}% off)",
        error * 100.0
    );
}

/// A probe whose next reading the test sets; counts how often it is read.
pub struct TestProbe {
    pub reading: Mutex<ProbeReading>,
    pub reads: AtomicU64,
}

impl TestProbe {
    pub fn new(reading: ProbeReading) -> Arc<Self> {
        Arc::new(TestProbe { reading: Mutex::new(reading), reads: AtomicU64::new(0) })
    }

    pub fn set(&self, reading: ProbeReading) {
        *self.reading.lock().unwrap() = reading;
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl PlatformProbe for TestProbe {
    fn name(&self) -> String {
        "test-probe".to_string()
    }

    fn read(&self) -> Result<ProbeReading, joule_core::energy::ProbeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.reading.lock().unwrap().clone())
    }
}

/// A power reading in watts.
pub fn watts(power_w: f64) -> ProbeReading {
    ProbeReading { power_w: Some(power_w), ..ProbeReading::default() }
}

/// A reading with the test's own clock bracketing the window's two edges.
pub struct Timed {
    pub reading: joule_core::energy::EnergyReading,
    /// Midpoints of the `begin` and `end` calls.
    pub begin: Instant,
    pub end: Instant,
}

fn midpoint(a: Instant, b: Instant) -> Instant {
    a + (b - a) / 2
}

/// Opens a window, holds it for `hold`, and closes it.
pub fn timed_window(meter: &joule_core::energy::EnergyMeter, name: &str, hold: Duration) -> Timed {
    let a = Instant::now();
    let window = meter.begin(name);
    let b = Instant::now();
    std::thread::sleep(hold);
    let c = Instant::now();
    let reading = meter.end(window).unwrap();
    let d = Instant::now();
    Timed { reading, begin: midpoint(a, b), end: midpoint(c, d) }
}

/// A simulation on a [`ManualClock`](joule_core::energy::ManualClock): the test moves
/// time, the simulated sensor files are rewritten for the new time by the `on_step`
/// callbacks, and the meter takes one sample after each step. Nothing sleeps and no thread
/// races the meter, so no verdict depends on how busy the machine is.
pub struct Sim {
    pub clock: joule_core::energy::ManualClock,
    steps: std::cell::RefCell<Vec<StepFn>>,
}

/// Rewrites a simulated sensor for a new simulated time (seconds).
type StepFn = Box<dyn FnMut(f64)>;

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            clock: joule_core::energy::ManualClock::new(),
            steps: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// A simulated RAPL counter in `zone`: `energy_j(t)` joules after `t` simulated
    /// seconds, added to `offset_uj` and wrapped at `max_range_uj`; updated every
    /// `update_period_s` of simulated time, or at every step.
    pub fn rapl(
        zone: &Path,
        offset_uj: u64,
        max_range_uj: u64,
        update_period_s: Option<f64>,
        energy_j: impl Fn(f64) -> f64 + 'static,
    ) -> Self {
        let sim = Sim::new();
        sim.add_rapl(zone, offset_uj, max_range_uj, update_period_s, energy_j);
        sim
    }

    /// Adds a simulated RAPL counter (see [`Sim::rapl`]), written now and at every step.
    pub fn add_rapl(
        &self,
        zone: &Path,
        offset_uj: u64,
        max_range_uj: u64,
        update_period_s: Option<f64>,
        energy_j: impl Fn(f64) -> f64 + 'static,
    ) {
        let path = zone.join("energy_uj");
        self.on_step(move |t| {
            let t = update_period_s.map_or(t, |p| (t / p + 1e-9).floor() * p);
            let total = offset_uj as u128 + (energy_j(t) * 1e6).round() as u128;
            write_atomic(&path, &format!("{}\n", total % max_range_uj as u128));
        });
    }

    /// Calls `update(t)` now and after every step of simulated time.
    pub fn on_step(&self, mut update: impl FnMut(f64) + 'static) {
        update(self.t());
        self.steps.borrow_mut().push(Box::new(update));
    }

    /// Seconds on the simulated clock.
    pub fn t(&self) -> f64 {
        self.clock.elapsed_s()
    }

    /// The simulated clock's wall-clock (unix) time.
    pub fn unix_s(&self) -> f64 {
        self.clock.unix_s()
    }

    /// The meter configuration using this clock.
    pub fn config(&self, source: EnergySource, root: &Path) -> EnergyConfig {
        EnergyConfig { clock: Some(self.clock.clone()), ..config(source, root) }
    }

    /// Moves time on by `seconds` in steps of `step`: after each, the sensor files are
    /// updated and the meter takes a sample.
    pub fn run(&self, meter: &joule_core::energy::EnergyMeter, seconds: f64, step: Duration) {
        self.steps(Some(meter), seconds, step);
    }

    /// Moves time on as [`Sim::run`] does, with no meter sampling.
    pub fn advance(&self, seconds: f64, step: Duration) {
        self.steps(None, seconds, step);
    }

    fn steps(&self, meter: Option<&joule_core::energy::EnergyMeter>, seconds: f64, step: Duration) {
        let steps = (seconds / step.as_secs_f64()).round() as u64;
        for _ in 0..steps {
            self.clock.advance(step);
            let t = self.t();
            for update in self.steps.borrow_mut().iter_mut() {
                update(t);
            }
            if let Some(meter) = meter {
                meter.sample_now();
            }
        }
    }

    /// Opens a window, runs `seconds` in steps of `step`, and closes it.
    pub fn window(
        &self,
        meter: &joule_core::energy::EnergyMeter,
        name: &str,
        seconds: f64,
        step: Duration,
    ) -> joule_core::energy::EnergyReading {
        let window = meter.begin(name);
        self.run(meter, seconds, step);
        meter.end(window).unwrap()
    }
}
