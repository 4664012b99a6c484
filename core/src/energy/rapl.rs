//! Linux RAPL energy counters through powercap: `<root>/class/powercap/<zone>/energy_uj`.
//!
//! Zones are named `intel-rapl:N` (sockets) and `intel-rapl:N:M` (sub-zones); AMD Zen CPUs
//! appear under the same naming in mainline kernels, and any `<prefix>rapl:N[:M]` directory
//! (`amd-rapl:0`, `intel-rapl-mmio:0`) is accepted. A zone's `name` file says what it
//! measures: `package-N` (cores + uncore, not DRAM), `core`, `uncore`, `dram`, `psys`
//! (the whole platform, package and DRAM included). The window total is `psys` when the
//! platform has it, else the sum of packages and DRAM; the other zones are reported as
//! components only, so nothing is counted twice. Counters wrap to 0 after
//! `max_energy_range_uj`; each read is unwrapped into a 64-bit microjoule total, so no
//! precision is lost and any number of wraps is handled as long as the meter polls at least
//! once per wrap period (minutes even at hundreds of watts).

use std::path::{Path, PathBuf};

use super::integrate::ChannelKind;
use super::reading::SourceKind;
use super::sampler::{ChannelSpec, Observation, Sensor};
use super::sysfs::{read_trimmed, read_u64};

struct Zone {
    id: String,
    name: String,
    component: String,
    depth: usize,
    mmio: bool,
    energy_path: PathBuf,
    max_range_uj: u64,
    last_raw_uj: u64,
    total_uj: u64,
    in_total: bool,
}

/// Reads a set of RAPL zones as unwrapped cumulative joules.
pub(crate) struct RaplSensor {
    zones: Vec<Zone>,
}

/// Microjoules consumed between two raw counter readings, across at most one wrap.
pub(crate) fn counter_advance(last: u64, now: u64, max_range: u64) -> u64 {
    if now >= last { now - last } else { max_range.saturating_sub(last).saturating_add(now) }
}

/// `intel-rapl:0:1` → Some((false, depth 1)); anything that is not a RAPL zone → None.
fn parse_zone_dir(dir_name: &str) -> Option<(bool, usize)> {
    let (prefix, rest) = dir_name.split_once(':')?;
    if !prefix.contains("rapl") {
        return None;
    }
    let indices: Vec<&str> = rest.split(':').collect();
    if indices.iter().any(|part| part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((prefix.ends_with("-mmio"), indices.len() - 1))
}

fn component_of(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("package") {
        "package".to_string()
    } else if lower == "cores" {
        "core".to_string()
    } else {
        lower
    }
}

/// Finds readable RAPL zones under `<sysfs_root>/class/powercap`. On success also returns
/// notes about zones that were skipped; on failure, why RAPL cannot be used.
pub(crate) fn detect(sysfs_root: &Path) -> Result<(RaplSensor, Vec<String>), String> {
    let dir = sysfs_root.join("class").join("powercap");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| format!("RAPL: {}: {}", dir.display(), super::sysfs::describe_io(&e)))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| parse_zone_dir(name).is_some())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("RAPL: no RAPL zones in {}", dir.display()));
    }

    let mut zones = Vec::new();
    let mut skipped = Vec::new();
    for id in names {
        let Some((mmio, depth)) = parse_zone_dir(&id) else { continue };
        let zone_dir = dir.join(&id);
        let name = read_trimmed(&zone_dir.join("name")).unwrap_or_else(|_| id.clone());
        let energy_path = zone_dir.join("energy_uj");
        let first = read_u64(&energy_path).and_then(|raw| {
            let max = read_u64(&zone_dir.join("max_energy_range_uj"))?;
            if max == 0 {
                return Err(format!("{}: max_energy_range_uj is 0", zone_dir.display()));
            }
            Ok((raw, max))
        });
        match first {
            Ok((raw, max_range_uj)) => zones.push(Zone {
                component: component_of(&name),
                id,
                name,
                depth,
                mmio,
                energy_path,
                max_range_uj,
                last_raw_uj: raw,
                total_uj: 0,
                in_total: false,
            }),
            Err(reason) => skipped.push(format!("RAPL: {reason}")),
        }
    }

    // intel-rapl-mmio duplicates the MSR package zone on some laptops.
    let msr_names: Vec<String> = zones.iter().filter(|z| !z.mmio).map(|z| z.name.clone()).collect();
    zones.retain(|zone| {
        let duplicate = zone.mmio && msr_names.contains(&zone.name);
        if duplicate {
            skipped.push(format!(
                "RAPL: {} duplicates the MSR zone '{}'; not counted",
                zone.id, zone.name
            ));
        }
        !duplicate
    });

    if zones.is_empty() {
        return Err(skipped.join("; "));
    }
    mark_total_zones(&mut zones);
    Ok((RaplSensor { zones }, skipped))
}

fn mark_total_zones(zones: &mut [Zone]) {
    let has_psys = zones.iter().any(|z| z.component == "psys");
    let has_package_or_dram =
        zones.iter().any(|z| z.component == "package" || z.component == "dram");
    for zone in zones.iter_mut() {
        zone.in_total = if has_psys {
            zone.component == "psys"
        } else if has_package_or_dram {
            zone.component == "package" || zone.component == "dram"
        } else {
            zone.depth == 0
        };
    }
}

impl Sensor for RaplSensor {
    fn kind(&self) -> SourceKind {
        SourceKind::Rapl
    }

    fn description(&self) -> String {
        let zones: Vec<String> =
            self.zones.iter().map(|z| format!("{} ({})", z.name, z.id)).collect();
        let total: Vec<&str> =
            self.zones.iter().filter(|z| z.in_total).map(|z| z.name.as_str()).collect();
        format!("RAPL via powercap: {}; total = {}", zones.join(", "), total.join(" + "))
    }

    fn paths(&self) -> Vec<String> {
        self.zones.iter().map(|z| z.energy_path.display().to_string()).collect()
    }

    fn channels(&self) -> Vec<ChannelSpec> {
        self.zones
            .iter()
            .map(|z| ChannelSpec {
                component: z.component.clone(),
                kind: ChannelKind::Counter,
                in_total: z.in_total,
            })
            .collect()
    }

    fn read(&mut self) -> Result<Observation, String> {
        let mut observation = Observation::default();
        let mut failures = Vec::new();
        for zone in &mut self.zones {
            match read_u64(&zone.energy_path) {
                Ok(raw) => {
                    let advance = counter_advance(zone.last_raw_uj, raw, zone.max_range_uj);
                    zone.total_uj = zone.total_uj.saturating_add(advance);
                    zone.last_raw_uj = raw;
                    observation.values.push(Some(zone.total_uj as f64 * 1e-6));
                }
                Err(reason) => {
                    failures.push(format!("RAPL: {reason}"));
                    observation.values.push(None);
                }
            }
        }
        if failures.len() == self.zones.len() {
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
    fn zone_directory_names() {
        assert_eq!(parse_zone_dir("intel-rapl:0"), Some((false, 0)));
        assert_eq!(parse_zone_dir("intel-rapl:0:2"), Some((false, 1)));
        assert_eq!(parse_zone_dir("amd-rapl:1"), Some((false, 0)));
        assert_eq!(parse_zone_dir("intel-rapl-mmio:0"), Some((true, 0)));
        assert_eq!(parse_zone_dir("intel-rapl"), None);
        assert_eq!(parse_zone_dir("intel-rapl:"), None);
        assert_eq!(parse_zone_dir("dtpm:0"), None);
        assert_eq!(parse_zone_dir("intel-rapl:0:x"), None);
    }

    #[test]
    fn wrap_around_is_unwrapped() {
        let max = 262_143_328_850u64;
        assert_eq!(counter_advance(100, 250, max), 150);
        assert_eq!(counter_advance(max - 1_000, 500, max), 1_500);
        // Many wraps, one per poll, accumulate exactly in u64 microjoules.
        let mut total = 0u64;
        let mut raw = max - 10;
        for _ in 0..1_000 {
            let next = (raw + 100_000_000_000) % max;
            total += counter_advance(raw, next, max);
            raw = next;
        }
        assert_eq!(total, 100_000_000_000 * 1_000);
    }

    #[test]
    fn components() {
        assert_eq!(component_of("package-0"), "package");
        assert_eq!(component_of("core"), "core");
        assert_eq!(component_of("DRAM"), "dram");
        assert_eq!(component_of("psys"), "psys");
    }
}
