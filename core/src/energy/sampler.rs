//! Live sources (RAPL, battery, platform probe): a background thread polls the sensor at a
//! fixed interval, and every window edge takes one more synchronous read so the window
//! starts and ends on a real sample. All state sits behind one mutex; the thread stops
//! and is joined when its owner drops [`SamplerThread`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::EnergyError;
use super::integrate::{Anchor, Channel, ChannelKind};
use super::meter::{Clock, Engine, Measurement, Stamp};
use super::reading::{SourceKind, ThermalState};

/// One channel a sensor reports: which component it belongs to, what its values are, and
/// whether it counts towards the window total (RAPL sub-zones such as `core` are already
/// inside `package`, so they are reported but not added).
#[derive(Debug, Clone)]
pub(crate) struct ChannelSpec {
    pub component: String,
    pub kind: ChannelKind,
    pub in_total: bool,
}

/// One read of a sensor: a value per channel (`None` for a channel that failed this time).
#[derive(Debug, Clone, Default)]
pub(crate) struct Observation {
    pub values: Vec<Option<f64>>,
    pub charging: bool,
    pub external_power: bool,
    pub thermal: Option<ThermalState>,
    /// Set when some channels failed but others were read.
    pub error: Option<String>,
}

/// A live sensor the sampler polls. Reads must not panic on bad files; they report why.
pub(crate) trait Sensor: Send {
    fn kind(&self) -> SourceKind;
    fn description(&self) -> String;
    fn paths(&self) -> Vec<String>;
    fn channels(&self) -> Vec<ChannelSpec>;
    fn read(&mut self) -> Result<Observation, String>;
}

/// Running counts; a window keeps a copy from its start and subtracts.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    samples: u64,
    errors: u64,
    charging: u64,
    external: u64,
}

struct OpenWindow {
    start: Stamp,
    tally: Tally,
    anchors: Vec<Anchor>,
    changes: Vec<u64>,
    worst_thermal: Option<ThermalState>,
}

struct LiveState {
    sensor: Box<dyn Sensor>,
    specs: Vec<ChannelSpec>,
    channels: Vec<Channel>,
    tally: Tally,
    last_error: Option<String>,
    latest_thermal: Option<ThermalState>,
    windows: HashMap<u64, OpenWindow>,
}

impl LiveState {
    fn sample(&mut self, t: f64) {
        let observation = match self.sensor.read() {
            Ok(observation) => {
                self.tally.samples += 1;
                observation
            }
            Err(reason) => {
                self.tally.errors += 1;
                self.last_error = Some(reason);
                return;
            }
        };
        if let Some(reason) = observation.error {
            self.tally.errors += 1;
            self.last_error = Some(reason);
        }
        self.tally.charging += u64::from(observation.charging);
        self.tally.external += u64::from(observation.external_power);
        if let Some(thermal) = observation.thermal {
            self.latest_thermal = Some(thermal);
            for window in self.windows.values_mut() {
                window.worst_thermal = window.worst_thermal.max(Some(thermal));
            }
        }
        for (index, (channel, value)) in
            self.channels.iter_mut().zip(&observation.values).enumerate()
        {
            let Some(value) = *value else { continue };
            if channel.observe(t, value) {
                for window in self.windows.values_mut() {
                    if let Some(anchor) = window.anchors.get_mut(index) {
                        channel.resolve(anchor);
                    }
                }
            }
        }
    }
}

pub(crate) struct LiveCore {
    clock: Clock,
    poll: Duration,
    state: Mutex<LiveState>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl LiveCore {
    fn state(&self) -> MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sample_now(&self) {
        let mut state = self.state();
        let now = self.clock.now();
        state.sample(now.mono_s);
    }
}

/// A live source's engine; cheap to share between the meter and its windows.
pub(crate) struct LiveEngine {
    core: Arc<LiveCore>,
}

/// The polling thread. Dropping it stops the thread and waits for it to exit.
pub(crate) struct SamplerThread {
    core: Arc<LiveCore>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for SamplerThread {
    fn drop(&mut self) {
        *self.core.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.core.wake.notify_all();
        if let Some(handle) = self.handle.take() {
            // The thread never panics on sensor data; a join error would only repeat a
            // panic that was already reported, so there is nothing useful to do with it.
            let _ = handle.join();
        }
    }
}

/// Starts polling `sensor` every `poll`, after one first read. Detection has already read
/// the sensor once, so a sensor that cannot be read at all never gets here.
pub(crate) fn start(
    sensor: Box<dyn Sensor>,
    poll: Duration,
    clock: Clock,
) -> Result<(LiveEngine, SamplerThread), EnergyError> {
    let specs = sensor.channels();
    let channels = specs.iter().map(|spec| Channel::new(spec.kind)).collect();
    let mut state = LiveState {
        sensor,
        specs,
        channels,
        tally: Tally::default(),
        last_error: None,
        latest_thermal: None,
        windows: HashMap::new(),
    };
    state.sample(clock.now().mono_s);
    let manual = clock.is_manual();
    let core = Arc::new(LiveCore {
        clock,
        poll: poll.max(Duration::from_millis(1)),
        state: Mutex::new(state),
        stop: Mutex::new(false),
        wake: Condvar::new(),
    });
    if manual {
        // The caller moves time and asks for samples; a thread would only race it.
        return Ok((LiveEngine { core: Arc::clone(&core) }, SamplerThread { core, handle: None }));
    }
    let thread_core = Arc::clone(&core);
    let handle = std::thread::Builder::new()
        .name("joule-energy-sampler".to_string())
        .spawn(move || poll_loop(&thread_core))
        .map_err(EnergyError::Thread)?;
    Ok((LiveEngine { core: Arc::clone(&core) }, SamplerThread { core, handle: Some(handle) }))
}

fn poll_loop(core: &LiveCore) {
    loop {
        {
            let stopped = core.stop.lock().unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
            let (stopped, _) =
                core.wake.wait_timeout(stopped, core.poll).unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
        }
        core.sample_now();
    }
}

impl Engine for LiveEngine {
    fn begin(&self, id: u64) -> Stamp {
        let mut state = self.core.state();
        let tally = state.tally;
        let start = self.core.clock.now();
        state.sample(start.mono_s);
        let anchors = state.channels.iter().map(|c| c.anchor_at(start.mono_s)).collect();
        let changes = state.channels.iter().map(Channel::changes).collect();
        let worst_thermal = state.latest_thermal;
        state.windows.insert(id, OpenWindow { start, tally, anchors, changes, worst_thermal });
        start
    }

    fn end(&self, id: u64) -> Option<(Stamp, Stamp, Measurement)> {
        let mut state = self.core.state();
        let end = self.core.clock.now();
        state.sample(end.mono_s);
        let window = state.windows.remove(&id)?;
        let duration = end.mono_s - window.start.mono_s;
        let poll_s = self.core.poll.as_secs_f64();

        let mut components: BTreeMap<String, f64> = BTreeMap::new();
        let mut joules = 0.0;
        let mut too_slow = false;
        let mut sensor_update_hz = None;
        for (index, (spec, channel)) in state.specs.iter().zip(&state.channels).enumerate() {
            let anchor =
                window.anchors.get(index).copied().unwrap_or(Anchor::Pending(window.start.mono_s));
            let energy = channel.energy_since(anchor, end.mono_s);
            *components.entry(spec.component.clone()).or_insert(0.0) += energy;
            if spec.in_total {
                joules += energy;
                let changes = channel.changes() - window.changes.get(index).copied().unwrap_or(0);
                let rate = channel.update_rate();
                too_slow |= rate.too_slow_for(channel.kind(), duration, poll_s, changes);
                if sensor_update_hz.is_none() {
                    sensor_update_hz = rate.hz();
                }
            }
        }
        let errors = state.tally.errors - window.tally.errors;
        let measurement = Measurement {
            joules,
            components,
            sample_count: state.tally.samples - window.tally.samples,
            sensor_update_hz,
            too_slow,
            charging: state.tally.charging > window.tally.charging,
            external_power: state.tally.external > window.tally.external,
            thermal: window.worst_thermal,
            sensor_errors: errors,
            last_error: if errors > 0 { state.last_error.clone() } else { None },
            // Without one successful read the window holds no data at all.
            coverage: if state.tally.samples > window.tally.samples { 1.0 } else { 0.0 },
            notes: Vec::new(),
        };
        Some((window.start, end, measurement))
    }

    fn cancel(&self, id: u64) {
        self.core.state().windows.remove(&id);
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.core.poll)
    }

    fn sample_now(&self) {
        self.core.sample_now();
    }
}
