//! Energy metering: named windows that may overlap, each reporting joules, duration,
//! average watts, sample count and rate, per-component joules, whether the figure is
//! measured or estimated, and quality flags.
//!
//! Backends, auto-detected in this order and each selectable ([`EnergySource`]):
//! - **RAPL** through powercap (`<sysfs>/class/powercap/*rapl*:N[:M]/energy_uj`), Intel and
//!   AMD, with wrap-around at `max_energy_range_uj`;
//! - **battery** through `<sysfs>/class/power_supply/*` (`power_now`, `current_now` ×
//!   `voltage_now`, `energy_now`, `charge_counter`), polled by a sampling thread and
//!   integrated by trapezoid, with vendor sign conventions and charging handled;
//! - a **platform probe** the host app implements ([`PlatformProbe`]), sampled the same way;
//! - an external **trace** CSV from a power monitor, aligned on wall-clock time;
//! - an **estimate** from this process's CPU time × watts per busy core
//!   ([`WattsPerCoreTable`]), always labelled [`Method::Estimated`].
//!
//! An idle baseline can be measured when the meter is created and subtracted on request;
//! it is reported either way. The sysfs root defaults to `JOULE_SYSFS_ROOT` or `/sys`, so a
//! simulated sensor tree can stand in for the real one.
//!
//! ```no_run
//! use joule_core::energy::{EnergyConfig, EnergyMeter};
//! let meter = EnergyMeter::new(EnergyConfig::default())?;
//! let prefill = meter.begin("prefill");
//! // ... run the prompt ...
//! let reading = meter.end(prefill)?;
//! println!("{} J ({:?})", reading.joules, reading.method);
//! # Ok::<(), joule_core::energy::EnergyError>(())
//! ```

mod battery;
mod config;
mod estimate;
mod integrate;
mod meter;
mod probe;
mod rapl;
mod reading;
mod sampler;
mod select;
mod sysfs;
mod trace;

use std::path::PathBuf;

pub use battery::BatteryStatus;
pub use config::{EnergyConfig, EnergySource, SYSFS_ROOT_ENV, default_sysfs_root};
pub use estimate::{WattsPerCore, WattsPerCoreTable};
pub use meter::{EnergyMeter, EnergyWindow, ManualClock};
pub use probe::{PlatformProbe, ProbeError, ProbeReading};
pub use reading::{
    Baseline, EnergyReading, Fallback, Method, Quality, SourceInfo, SourceKind, ThermalState,
    WindowTimes,
};
pub use trace::{PowerTrace, TraceEnergy};

/// What can go wrong setting up or using a meter. Sensor trouble during a run is not an
/// error: it is recorded in each reading's [`Quality`].
#[derive(Debug, thiserror::Error)]
pub enum EnergyError {
    #[error("energy source '{backend}' is unavailable: {reason}")]
    SourceUnavailable { backend: SourceKind, reason: String },

    #[error(
        "unknown energy source {0:?} (expected auto, rapl, battery, trace:FILE, estimate or none)"
    )]
    UnknownSource(String),

    #[error("energy trace {}: {reason}", path.display())]
    Trace { path: PathBuf, reason: String },

    #[error("invalid energy configuration: {0}")]
    InvalidConfig(String),

    #[error("energy window '{name}' does not belong to this meter")]
    ForeignWindow { name: String },

    #[error("cannot start the energy sampling thread: {0}")]
    Thread(#[source] std::io::Error),

    #[error("power trace: {0}")]
    TraceFormat(String),
}
