//! An app's battery sensor as the core's `PlatformProbe`: the app reads the platform
//! (Android `BatteryManager`, iOS `UIDevice`) and the core's meter samples, integrates
//! and splits the readings exactly as it does its own sensors.

use std::sync::Arc;

use joule_core::energy::{BatteryStatus, PlatformProbe, ProbeError, ProbeReading, ThermalState};

use crate::error::JouleError;

/// A battery sensor implemented by the app. `read` is called from the meter's sampling
/// thread about ten times a second: it must be quick and must not wait for the UI thread.
#[uniffi::export(with_foreign)]
pub trait EnergyProbe: Send + Sync {
    /// Short name shown in reports, e.g. "android-batterymanager".
    fn name(&self) -> String;
    /// One reading, taken now. Throw `JouleException.Energy` when the sensor fails.
    fn read(&self) -> Result<ProbeSample, JouleError>;
}

/// One reading: power, or current and voltage, or remaining energy (the first reading
/// decides which is used). Either sign convention for current and power is accepted.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct ProbeSample {
    #[uniffi(default = None)]
    pub power_w: Option<f64>,
    #[uniffi(default = None)]
    pub current_a: Option<f64>,
    #[uniffi(default = None)]
    pub voltage_v: Option<f64>,
    #[uniffi(default = None)]
    pub energy_remaining_j: Option<f64>,
    #[uniffi(default = None)]
    pub status: Option<BatteryState>,
    #[uniffi(default = None)]
    pub thermal: Option<Thermal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BatteryState {
    Charging,
    Discharging,
    Full,
    NotCharging,
    Unknown,
}

/// Device thermal state (Android thermal status and iOS `ThermalState` map onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Thermal {
    Nominal,
    Fair,
    Serious,
    Critical,
}

impl From<BatteryState> for BatteryStatus {
    fn from(s: BatteryState) -> Self {
        match s {
            BatteryState::Charging => BatteryStatus::Charging,
            BatteryState::Discharging => BatteryStatus::Discharging,
            BatteryState::Full => BatteryStatus::Full,
            BatteryState::NotCharging => BatteryStatus::NotCharging,
            BatteryState::Unknown => BatteryStatus::Unknown,
        }
    }
}

impl From<Thermal> for ThermalState {
    fn from(t: Thermal) -> Self {
        match t {
            Thermal::Nominal => ThermalState::Nominal,
            Thermal::Fair => ThermalState::Fair,
            Thermal::Serious => ThermalState::Serious,
            Thermal::Critical => ThermalState::Critical,
        }
    }
}

impl From<ThermalState> for Thermal {
    fn from(t: ThermalState) -> Self {
        match t {
            ThermalState::Nominal => Thermal::Nominal,
            ThermalState::Fair => Thermal::Fair,
            ThermalState::Serious => Thermal::Serious,
            ThermalState::Critical => Thermal::Critical,
        }
    }
}

/// The app's probe seen as the core's.
pub(crate) struct ProbeAdapter(pub Arc<dyn EnergyProbe>);

impl PlatformProbe for ProbeAdapter {
    fn name(&self) -> String {
        crate::guard("probe name", || Ok(self.0.name()))
            .unwrap_or_else(|e| format!("unnamed probe ({e})"))
    }

    fn read(&self) -> Result<ProbeReading, ProbeError> {
        let sample =
            crate::guard("probe read", || self.0.read()).map_err(|e| ProbeError(e.to_string()))?;
        Ok(ProbeReading {
            power_w: sample.power_w,
            current_a: sample.current_a,
            voltage_v: sample.voltage_v,
            energy_remaining_j: sample.energy_remaining_j,
            status: sample.status.map(BatteryStatus::from),
            thermal: sample.thermal.map(ThermalState::from),
        })
    }
}
