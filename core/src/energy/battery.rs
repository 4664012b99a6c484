//! Battery fuel gauges through `<root>/class/power_supply/*` (Linux laptops; Android where
//! SELinux lets an app read them).
//!
//! Per battery, the first readable of: `power_now` (µW); `current_now` (µA) × `voltage_now`
//! (µV); `energy_now` (µWh left, used as a counter); `charge_counter` or `charge_now` (µAh
//! left) × `voltage_now`. Vendors disagree on the sign of discharge current (the kernel ABI
//! and Android say negative, many drivers report positive), so the sign is read from
//! `status`: while "Discharging" the magnitude is the drain and the vendor's sign is
//! learned; while "Charging" the battery takes energy in, which counts as negative drain
//! and flags the window; with an unknown status the learned sign is used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::integrate::{ChannelKind, CompensatedSum};
use super::reading::SourceKind;
use super::sampler::{ChannelSpec, Observation, Sensor};
use super::sysfs::{read_i64, read_trimmed};

/// A battery's charging state as sysfs `status` or Android `BatteryManager` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatteryStatus {
    Charging,
    Discharging,
    /// Full and on external power.
    Full,
    /// On external power but not charging (charge limit, thermal hold).
    NotCharging,
    Unknown,
}

impl BatteryStatus {
    /// Parses the sysfs `status` text ("Charging", "Discharging", "Full", "Not charging");
    /// anything else is `Unknown`.
    pub fn from_sysfs(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "charging" => BatteryStatus::Charging,
            "discharging" => BatteryStatus::Discharging,
            "full" => BatteryStatus::Full,
            "not charging" => BatteryStatus::NotCharging,
            _ => BatteryStatus::Unknown,
        }
    }

    /// Whether the device runs from an adapter, so the battery does not see its consumption.
    pub fn on_external_power(self) -> bool {
        matches!(self, BatteryStatus::Charging | BatteryStatus::Full | BatteryStatus::NotCharging)
    }
}

/// Turns a signed current or power reading into battery drain (positive = energy leaving
/// the battery), whatever sign convention the vendor uses.
#[derive(Debug, Default, Clone)]
pub(crate) struct DischargeSign {
    discharge_sign: Option<f64>,
}

impl DischargeSign {
    pub(crate) fn drain(&mut self, value: f64, status: BatteryStatus) -> f64 {
        match status {
            BatteryStatus::Discharging => {
                if value != 0.0 {
                    self.discharge_sign = Some(value.signum());
                }
                value.abs()
            }
            BatteryStatus::Charging => -value.abs(),
            _ => match self.discharge_sign {
                Some(sign) => value * sign,
                None => value.abs(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    PowerNow,
    CurrentVoltage,
    EnergyNow,
    Charge(&'static str),
}

struct Battery {
    name: String,
    dir: PathBuf,
    mode: Mode,
    has_status: bool,
    sign: DischargeSign,
    first_energy_j: Option<f64>,
    last_charge_c: Option<f64>,
    charge_energy: CompensatedSum,
}

/// Reads every usable battery as one channel each.
pub(crate) struct BatterySensor {
    batteries: Vec<Battery>,
}

const MICRO: f64 = 1e-6;
/// 1 µWh = 3.6 mJ and 1 µAh = 3.6 mC.
const MICRO_HOUR: f64 = 3.6e-3;

fn readable(dir: &Path, file: &str) -> Result<i64, String> {
    read_i64(&dir.join(file))
}

fn choose_mode(dir: &Path) -> Result<Mode, String> {
    let power = readable(dir, "power_now");
    if power.is_ok() {
        return Ok(Mode::PowerNow);
    }
    let current = readable(dir, "current_now").and_then(|_| readable(dir, "voltage_now"));
    if current.is_ok() {
        return Ok(Mode::CurrentVoltage);
    }
    if readable(dir, "energy_now").is_ok() {
        return Ok(Mode::EnergyNow);
    }
    for file in ["charge_counter", "charge_now"] {
        if readable(dir, file).and_then(|_| readable(dir, "voltage_now")).is_ok() {
            return Ok(Mode::Charge(file));
        }
    }
    let power_error = power.err().unwrap_or_default();
    let current_error = current.err().unwrap_or_default();
    Err(format!(
        "battery: no readable power_now, current_now × voltage_now, energy_now or charge counter \
         ({power_error}; {current_error})"
    ))
}

/// Finds usable batteries under `<sysfs_root>/class/power_supply`. With `require_on_battery`
/// (auto-detection) a battery on external power is rejected: its readings would not show
/// the device's consumption. Returns notes about skipped supplies, or why none is usable.
pub(crate) fn detect(
    sysfs_root: &Path,
    require_on_battery: bool,
) -> Result<(BatterySensor, Vec<String>), String> {
    let dir = sysfs_root.join("class").join("power_supply");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| format!("battery: {}: {}", dir.display(), super::sysfs::describe_io(&e)))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();

    let mut batteries = Vec::new();
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    for name in names {
        let supply = dir.join(&name);
        match read_trimmed(&supply.join("type")) {
            Ok(kind) if kind == "Battery" => {}
            Ok(_) => continue,
            Err(reason) => {
                reasons.push(format!("battery: {reason}"));
                continue;
            }
        }
        if read_trimmed(&supply.join("scope")).is_ok_and(|scope| scope == "Device") {
            notes.push(format!("battery: {name} powers a peripheral (scope Device); ignored"));
            continue;
        }
        if read_trimmed(&supply.join("present")).is_ok_and(|present| present == "0") {
            reasons.push(format!("battery: {name} is not present"));
            continue;
        }
        let mode = match choose_mode(&supply) {
            Ok(mode) => mode,
            Err(reason) => {
                reasons.push(reason.replacen("battery:", &format!("battery: {name}:"), 1));
                continue;
            }
        };
        let status = read_trimmed(&supply.join("status")).map(|s| BatteryStatus::from_sysfs(&s));
        if require_on_battery
            && let Ok(status) = status
            && status.on_external_power()
        {
            reasons.push(format!(
                "battery: {name} is on external power (status {status:?}); its current does not \
                 show the device's consumption"
            ));
            continue;
        }
        batteries.push(Battery {
            name,
            has_status: status.is_ok(),
            dir: supply,
            mode,
            sign: DischargeSign::default(),
            first_energy_j: None,
            last_charge_c: None,
            charge_energy: CompensatedSum::default(),
        });
    }
    if batteries.is_empty() {
        if reasons.is_empty() {
            return Err(format!("battery: no power_supply of type Battery in {}", dir.display()));
        }
        return Err(reasons.join("; "));
    }
    notes.extend(reasons);
    Ok((BatterySensor { batteries }, notes))
}

impl Battery {
    fn status(&self) -> Result<BatteryStatus, String> {
        if !self.has_status {
            return Ok(BatteryStatus::Unknown);
        }
        read_trimmed(&self.dir.join("status")).map(|s| BatteryStatus::from_sysfs(&s))
    }

    /// Watts of drain (power modes) or cumulative joules drained (counter modes).
    fn value(&mut self, status: BatteryStatus) -> Result<f64, String> {
        let dir = &self.dir;
        match self.mode {
            Mode::PowerNow => {
                let watts = readable(dir, "power_now")? as f64 * MICRO;
                Ok(self.sign.drain(watts, status))
            }
            Mode::CurrentVoltage => {
                let amps = readable(dir, "current_now")? as f64 * MICRO;
                let volts = (readable(dir, "voltage_now")? as f64 * MICRO).abs();
                Ok(self.sign.drain(amps, status) * volts)
            }
            Mode::EnergyNow => {
                let joules = readable(dir, "energy_now")? as f64 * MICRO_HOUR;
                let first = *self.first_energy_j.get_or_insert(joules);
                Ok(first - joules)
            }
            Mode::Charge(file) => {
                let coulombs = readable(dir, file)? as f64 * MICRO_HOUR;
                let volts = (readable(dir, "voltage_now")? as f64 * MICRO).abs();
                if let Some(last) = self.last_charge_c {
                    self.charge_energy.add((last - coulombs) * volts);
                }
                self.last_charge_c = Some(coulombs);
                Ok(self.charge_energy.value())
            }
        }
    }
}

impl Sensor for BatterySensor {
    fn kind(&self) -> SourceKind {
        SourceKind::Battery
    }

    fn description(&self) -> String {
        let parts: Vec<String> = self
            .batteries
            .iter()
            .map(|b| {
                let how = match b.mode {
                    Mode::PowerNow => "power_now".to_string(),
                    Mode::CurrentVoltage => "current_now × voltage_now".to_string(),
                    Mode::EnergyNow => "energy_now (counter)".to_string(),
                    Mode::Charge(file) => format!("{file} × voltage_now (counter)"),
                };
                format!("{} ({how})", b.name)
            })
            .collect();
        format!("battery fuel gauge via power_supply: {}", parts.join(", "))
    }

    fn paths(&self) -> Vec<String> {
        self.batteries.iter().map(|b| b.dir.display().to_string()).collect()
    }

    fn channels(&self) -> Vec<ChannelSpec> {
        self.batteries
            .iter()
            .map(|b| ChannelSpec {
                component: "battery".to_string(),
                kind: match b.mode {
                    Mode::PowerNow | Mode::CurrentVoltage => ChannelKind::Power,
                    Mode::EnergyNow | Mode::Charge(_) => ChannelKind::Counter,
                },
                in_total: true,
            })
            .collect()
    }

    fn read(&mut self) -> Result<Observation, String> {
        let mut observation = Observation::default();
        let mut failures = Vec::new();
        for battery in &mut self.batteries {
            let status = battery.status().unwrap_or_else(|reason| {
                failures.push(format!("battery: {reason}"));
                BatteryStatus::Unknown
            });
            observation.charging |= status == BatteryStatus::Charging;
            observation.external_power |=
                matches!(status, BatteryStatus::Full | BatteryStatus::NotCharging);
            match battery.value(status) {
                Ok(value) => observation.values.push(Some(value)),
                Err(reason) => {
                    failures.push(format!("battery: {reason}"));
                    observation.values.push(None);
                }
            }
        }
        if observation.values.iter().all(Option::is_none) {
            return Err(failures.join("; "));
        }
        if !failures.is_empty() {
            observation.error = Some(failures.join("; "));
        }
        Ok(observation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text() {
        assert_eq!(BatteryStatus::from_sysfs("Discharging\n"), BatteryStatus::Discharging);
        assert_eq!(BatteryStatus::from_sysfs("Not charging"), BatteryStatus::NotCharging);
        assert_eq!(BatteryStatus::from_sysfs("garbage"), BatteryStatus::Unknown);
    }

    #[test]
    fn both_sign_conventions_give_positive_drain() {
        let mut negative_vendor = DischargeSign::default();
        let mut positive_vendor = DischargeSign::default();
        assert_eq!(negative_vendor.drain(-1.5, BatteryStatus::Discharging), 1.5);
        assert_eq!(positive_vendor.drain(1.5, BatteryStatus::Discharging), 1.5);
        // Once learned, an unknown status keeps each vendor's convention.
        assert_eq!(negative_vendor.drain(-2.0, BatteryStatus::Unknown), 2.0);
        assert_eq!(positive_vendor.drain(2.0, BatteryStatus::Unknown), 2.0);
        assert_eq!(negative_vendor.drain(0.5, BatteryStatus::Unknown), -0.5);
        // Charging is energy going in, whatever the sign.
        assert_eq!(negative_vendor.drain(0.7, BatteryStatus::Charging), -0.7);
        assert_eq!(positive_vendor.drain(-0.7, BatteryStatus::Charging), -0.7);
    }
}
