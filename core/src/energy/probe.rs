//! Platform probes: power readings the host app supplies where sysfs is closed to it.
//!
//! The mobile shells implement [`PlatformProbe`]: on Android from `BatteryManager`
//! (`BATTERY_PROPERTY_CURRENT_NOW` in µA, the sticky `ACTION_BATTERY_CHANGED` intent's
//! `EXTRA_VOLTAGE` in mV, `BATTERY_PROPERTY_ENERGY_COUNTER` in nWh, the status, and
//! `PowerManager` thermal status); on iOS from `UIDevice` battery level × the model's rated
//! capacity (iOS does not expose the capacity, so the shell keeps a per-model figure; the
//! level moves in coarse steps), battery state and `ProcessInfo.thermalState`. The probe gives instantaneous readings; the meter samples and
//! integrates them exactly as it does the sysfs battery, with the same sign handling.

use std::sync::Arc;

use super::battery::{BatteryStatus, DischargeSign};
use super::integrate::ChannelKind;
use super::reading::{SourceKind, ThermalState};
use super::sampler::{ChannelSpec, Observation, Sensor};

/// A source of instantaneous battery readings implemented by the host application.
///
/// `read` is called from the meter's sampling thread at the configured interval and once at
/// each window edge, with the meter's lock held: it must be quick, must not block on the UI
/// thread, and must not call back into the meter. Report failures as
/// `Err(ProbeError(reason))`; the meter counts them and carries on.
pub trait PlatformProbe: Send + Sync {
    /// Short name shown in reports, e.g. `"android-batterymanager"`.
    fn name(&self) -> String;
    /// One reading, taken now.
    fn read(&self) -> Result<ProbeReading, ProbeError>;
}

/// Why a platform probe could not give a reading (in the platform's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// One probe reading. Give power, or current and voltage, or remaining energy; the meter
/// picks the first of those the first reading has and then expects it every time. Current
/// and power may use either sign convention (see [`BatteryStatus`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeReading {
    pub power_w: Option<f64>,
    pub current_a: Option<f64>,
    pub voltage_v: Option<f64>,
    /// Energy left in the battery; falling while discharging.
    pub energy_remaining_j: Option<f64>,
    pub status: Option<BatteryStatus>,
    pub thermal: Option<ThermalState>,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Power,
    CurrentVoltage,
    EnergyRemaining,
}

/// Adapts a probe to the sampler.
pub(crate) struct ProbeSensor {
    probe: Arc<dyn PlatformProbe>,
    mode: Mode,
    sign: DischargeSign,
    first_energy_j: Option<f64>,
}

/// Reads the probe once to see what it reports; fails with the reason it cannot be used.
pub(crate) fn detect(probe: Arc<dyn PlatformProbe>) -> Result<ProbeSensor, String> {
    let name = probe.name();
    let first = probe.read().map_err(|reason| format!("platform probe '{name}': {reason}"))?;
    let mode = if first.power_w.is_some_and(f64::is_finite) {
        Mode::Power
    } else if first.current_a.is_some_and(f64::is_finite)
        && first.voltage_v.is_some_and(f64::is_finite)
    {
        Mode::CurrentVoltage
    } else if first.energy_remaining_j.is_some_and(f64::is_finite) {
        Mode::EnergyRemaining
    } else {
        return Err(format!(
            "platform probe '{name}' reports neither power, current and voltage, nor remaining energy"
        ));
    };
    Ok(ProbeSensor { probe, mode, sign: DischargeSign::default(), first_energy_j: None })
}

fn require(value: Option<f64>, what: &str, name: &str) -> Result<f64, String> {
    match value {
        Some(v) if v.is_finite() => Ok(v),
        Some(v) => Err(format!("platform probe '{name}': {what} is {v}")),
        None => Err(format!("platform probe '{name}': reading lacks {what}")),
    }
}

impl Sensor for ProbeSensor {
    fn kind(&self) -> SourceKind {
        SourceKind::Platform
    }

    fn description(&self) -> String {
        let how = match self.mode {
            Mode::Power => "power",
            Mode::CurrentVoltage => "current × voltage",
            Mode::EnergyRemaining => "remaining energy (counter)",
        };
        format!("platform probe '{}' ({how})", self.probe.name())
    }

    fn paths(&self) -> Vec<String> {
        Vec::new()
    }

    fn channels(&self) -> Vec<ChannelSpec> {
        let kind = match self.mode {
            Mode::Power | Mode::CurrentVoltage => ChannelKind::Power,
            Mode::EnergyRemaining => ChannelKind::Counter,
        };
        vec![ChannelSpec { component: "platform".to_string(), kind, in_total: true }]
    }

    fn read(&mut self) -> Result<Observation, String> {
        let name = self.probe.name();
        let reading =
            self.probe.read().map_err(|reason| format!("platform probe '{name}': {reason}"))?;
        let status = reading.status.unwrap_or(BatteryStatus::Unknown);
        let value = match self.mode {
            Mode::Power => self.sign.drain(require(reading.power_w, "power_w", &name)?, status),
            Mode::CurrentVoltage => {
                let amps = require(reading.current_a, "current_a", &name)?;
                let volts = require(reading.voltage_v, "voltage_v", &name)?.abs();
                self.sign.drain(amps, status) * volts
            }
            Mode::EnergyRemaining => {
                let joules = require(reading.energy_remaining_j, "energy_remaining_j", &name)?;
                let first = *self.first_energy_j.get_or_insert(joules);
                first - joules
            }
        };
        Ok(Observation {
            values: vec![Some(value)],
            charging: status == BatteryStatus::Charging,
            external_power: matches!(status, BatteryStatus::Full | BatteryStatus::NotCharging),
            thermal: reading.thermal,
            error: None,
        })
    }
}
