//! Choosing a backend: the requested one, or auto-detection in the order (RAPL,
//! battery, platform probe, trace, estimate) recording why each skipped one was skipped.
//!
//! An explicitly requested source that is unavailable is an error
//! ([`EnergyError::SourceUnavailable`]) rather than a silent fallback: the user asked for a
//! measurement and should learn that it cannot be had. `Auto` never fails; if even the
//! estimate is unavailable it ends at `none`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::EnergyError;
use super::battery;
use super::config::{EnergyConfig, EnergySource};
use super::estimate::EstimateEngine;
use super::meter::{Clock, Engine, NoneEngine};
use super::probe::{self, PlatformProbe};
use super::rapl;
use super::reading::{Fallback, SourceKind};
use super::sampler::{self, SamplerThread, Sensor};
use super::trace::TraceEngine;

/// Where `/proc` information about this process lives.
const PROC_SELF: &str = "/proc/self";

/// A started backend.
pub(crate) struct Selected {
    pub engine: Arc<dyn Engine>,
    pub sampler: Option<SamplerThread>,
    pub kind: SourceKind,
    pub description: String,
    pub paths: Vec<String>,
    pub fallbacks: Vec<Fallback>,
    pub notes: Vec<String>,
}

fn live(
    sensor: Box<dyn Sensor>,
    poll: Duration,
    clock: Clock,
    notes: Vec<String>,
) -> Result<Selected, String> {
    let kind = sensor.kind();
    let description = sensor.description();
    let paths = sensor.paths();
    let (engine, thread) = sampler::start(sensor, poll, clock).map_err(|e| e.to_string())?;
    Ok(Selected {
        engine: Arc::new(engine),
        sampler: Some(thread),
        kind,
        description,
        paths,
        fallbacks: Vec::new(),
        notes,
    })
}

fn try_rapl(config: &EnergyConfig, clock: Clock) -> Result<Selected, String> {
    let (sensor, notes) = rapl::detect(&config.sysfs_root)?;
    live(Box::new(sensor), config.counter_poll_interval, clock, notes)
}

fn try_battery(
    config: &EnergyConfig,
    clock: Clock,
    require_on_battery: bool,
) -> Result<Selected, String> {
    let (sensor, notes) = battery::detect(&config.sysfs_root, require_on_battery)?;
    live(Box::new(sensor), config.sample_interval, clock, notes)
}

fn try_platform(
    probe: &Arc<dyn PlatformProbe>,
    config: &EnergyConfig,
    clock: Clock,
) -> Result<Selected, String> {
    let sensor = probe::detect(Arc::clone(probe))?;
    live(Box::new(sensor), config.sample_interval, clock, Vec::new())
}

fn try_trace(path: &Path, clock: Clock) -> Result<Selected, String> {
    let engine = TraceEngine::open(path, clock)?;
    let path = engine.path();
    Ok(Selected {
        engine: Arc::new(engine),
        sampler: None,
        kind: SourceKind::Trace,
        description: format!("external power trace {path}"),
        paths: vec![path],
        fallbacks: Vec::new(),
        notes: Vec::new(),
    })
}

fn try_estimate(config: &EnergyConfig, clock: Clock) -> Result<Selected, String> {
    let engine = EstimateEngine::open(Path::new(PROC_SELF), &config.watts_per_core, clock)?;
    Ok(Selected {
        description: engine.description(),
        engine: Arc::new(engine),
        sampler: None,
        kind: SourceKind::Estimate,
        paths: Vec::new(),
        fallbacks: Vec::new(),
        notes: Vec::new(),
    })
}

fn none(clock: Clock, description: &str) -> Selected {
    Selected {
        engine: Arc::new(NoneEngine::new(clock)),
        sampler: None,
        kind: SourceKind::None,
        description: description.to_string(),
        paths: Vec::new(),
        fallbacks: Vec::new(),
        notes: Vec::new(),
    }
}

fn auto(config: &EnergyConfig, clock: Clock) -> Selected {
    let mut fallbacks = Vec::new();
    let mut skipped =
        |source: SourceKind, reason: String| fallbacks.push(Fallback { source, reason });

    let mut chosen = match try_rapl(config, clock.clone()) {
        Ok(selected) => Some(selected),
        Err(reason) => {
            skipped(SourceKind::Rapl, reason);
            None
        }
    };
    if chosen.is_none() {
        match try_battery(config, clock.clone(), true) {
            Ok(selected) => chosen = Some(selected),
            Err(reason) => skipped(SourceKind::Battery, reason),
        }
    }
    if chosen.is_none() {
        match &config.probe {
            Some(probe) => match try_platform(probe, config, clock.clone()) {
                Ok(selected) => chosen = Some(selected),
                Err(reason) => skipped(SourceKind::Platform, reason),
            },
            None => skipped(
                SourceKind::Platform,
                "platform: no probe supplied by the host app".to_string(),
            ),
        }
    }
    if chosen.is_none() {
        skipped(
            SourceKind::Trace,
            "trace: no trace file given (select trace:FILE to use one)".to_string(),
        );
        match try_estimate(config, clock.clone()) {
            Ok(mut selected) => {
                selected.notes.push(
                    "no power sensor was usable (see fell_back_from); this is an estimate"
                        .to_string(),
                );
                chosen = Some(selected);
            }
            Err(reason) => skipped(SourceKind::Estimate, reason),
        }
    }
    let mut selected = chosen.unwrap_or_else(|| none(clock.clone(), "no energy source available"));
    selected.fallbacks = fallbacks;
    selected
}

/// Starts the configured backend.
pub(crate) fn select(config: &EnergyConfig, clock: Clock) -> Result<Selected, EnergyError> {
    let unavailable = |backend: SourceKind| {
        move |reason: String| EnergyError::SourceUnavailable { backend, reason }
    };
    match &config.source {
        EnergySource::Auto => Ok(auto(config, clock.clone())),
        EnergySource::Rapl => {
            try_rapl(config, clock.clone()).map_err(unavailable(SourceKind::Rapl))
        }
        EnergySource::Battery => {
            try_battery(config, clock.clone(), false).map_err(unavailable(SourceKind::Battery))
        }
        EnergySource::Platform(probe) => {
            try_platform(probe, config, clock.clone()).map_err(unavailable(SourceKind::Platform))
        }
        EnergySource::Trace(path) => {
            try_trace(path, clock.clone()).map_err(unavailable(SourceKind::Trace))
        }
        EnergySource::Estimate => try_estimate(config, clock.clone())
            .map(|mut selected| {
                selected
                    .notes
                    .push("the estimate was requested explicitly; no sensor was tried".to_string());
                selected
            })
            .map_err(unavailable(SourceKind::Estimate)),
        EnergySource::None => Ok(none(clock.clone(), "energy metering disabled")),
    }
}
