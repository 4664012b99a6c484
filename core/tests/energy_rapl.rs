//! RAPL backend against simulated powercap trees whose counters advance with a known power
//! on a simulated clock: constant and stepped power, wrap-around, slow counters, zone
//! bookkeeping, and sensors that are missing, unreadable or garbage.

use crate::energy_support;
use crate::support::in_own_process;

use std::time::Duration;

use energy_support::*;
use joule_core::energy::{
    EnergyConfig, EnergyError, EnergyMeter, EnergySource, Method, SYSFS_ROOT_ENV, SourceKind,
    default_sysfs_root,
};

const RANGE: u64 = 262_143_328_850;
const FAST: Duration = Duration::from_millis(1);

// Every test that measures runs on a simulated clock (`Sim`): the counters and the meter's
// samples are stepped by the test, so a busy machine cannot change what they measure.

#[test]
fn constant_power_within_one_percent() {
    let tree = TempTree::new("rapl-constant");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 5_000_000);
    let sim = Sim::rapl(&zone, 5_000_000, RANGE, None, |t| 8.0 * t);
    let meter = EnergyMeter::new(sim.config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.source_kind(), SourceKind::Rapl);
    sim.run(&meter, 0.05, FAST);
    let (t0, window) = (sim.t(), meter.begin("constant"));
    sim.run(&meter, 2.0, FAST);
    let (t1, r) = (sim.t(), meter.end(window).unwrap());
    assert_eq!(r.method, Method::Measured);
    assert_close(r.joules, 8.0 * (t1 - t0), 0.01, "joules");
    assert_close(r.avg_watts, 8.0, 0.01, "average watts");
    assert_close(r.duration_s, t1 - t0, 1e-9, "window on the simulated clock");
    assert!(r.quality.fell_back_from.is_empty());
    assert!(!r.quality.sensor_too_slow_for_window);
    assert!(r.sample_count >= 20, "only {} samples", r.sample_count);
    assert_eq!(r.source.paths, vec![zone.join("energy_uj").display().to_string()]);
}

#[test]
fn stepped_power_within_one_percent() {
    let tree = TempTree::new("rapl-stepped");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    // 10 W, then 25 W, 15 W, 30 W, each for 0.25 s, repeating.
    let levels = [10.0, 25.0, 15.0, 30.0];
    let energy = move |t: f64| -> f64 {
        let step = 0.25;
        let whole = (t / step).floor() as usize;
        let mut joules: f64 = (0..whole).map(|k| levels[k % 4] * step).sum();
        joules += levels[whole % 4] * (t - whole as f64 * step);
        joules
    };
    let sim = Sim::rapl(&zone, 0, RANGE, None, energy);
    let meter = EnergyMeter::new(sim.config(EnergySource::Rapl, &tree.root)).unwrap();
    sim.run(&meter, 0.1, FAST);
    let (t0, window) = (sim.t(), meter.begin("stepped"));
    sim.run(&meter, 1.6, FAST);
    let (t1, r) = (sim.t(), meter.end(window).unwrap());
    let truth = energy(t1) - energy(t0);
    assert_close(r.joules, truth, 0.01, "stepped joules");
}

#[test]
fn counter_wrap_around_is_unwrapped() {
    let tree = TempTree::new("rapl-wrap");
    // A 3 J range at 6 W wraps every half second; start 0.2 J before the wrap.
    let range = 3_000_000;
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", range, 2_800_000);
    let sim = Sim::rapl(&zone, 2_800_000, range, None, |t| 6.0 * t);
    let meter = EnergyMeter::new(sim.config(EnergySource::Rapl, &tree.root)).unwrap();
    let (t0, window) = (sim.t(), meter.begin("wrapping"));
    sim.run(&meter, 1.5, FAST);
    let (t1, r) = (sim.t(), meter.end(window).unwrap());
    let truth = 6.0 * (t1 - t0);
    assert!(truth > 2.0 * 3.0, "the window must span at least two wraps");
    assert_close(r.joules, truth, 0.01, "joules across wraps");
}

#[test]
fn three_hertz_counter_flags_short_window_and_is_accurate_over_long_one() {
    let tree = TempTree::new("rapl-3hz");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    let sim = Sim::rapl(&zone, 0, RANGE, Some(1.0 / 3.0), |t| 6.0 * t);
    let mut cfg = sim.config(EnergySource::Rapl, &tree.root);
    cfg.counter_poll_interval = Duration::from_millis(2);
    let meter = EnergyMeter::new(cfg).unwrap();
    let step = Duration::from_millis(2);

    let short = meter.begin("short");
    sim.run(&meter, 0.2, step);
    let short = meter.end(short).unwrap();
    assert!(short.quality.sensor_too_slow_for_window, "{:?}", short.quality);

    let (t0, long) = (sim.t(), meter.begin("long"));
    sim.run(&meter, 2.0, step);
    let (t1, r) = (sim.t(), meter.end(long).unwrap());
    assert!(!r.quality.sensor_too_slow_for_window, "{:?}", r.quality);
    assert_close(r.joules, 6.0 * (t1 - t0), 0.01, "3 Hz counter over 2 s");
    let hz = r.source.sensor_update_hz.expect("update rate observed");
    assert!((2.5..3.5).contains(&hz), "sensor update rate {hz}");
}

#[test]
fn zones_become_components_and_total_counts_nothing_twice() {
    let tree = TempTree::new("rapl-zones");
    let package = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    let core = rapl_zone(&tree.root, "intel-rapl:0:0", "core", RANGE, 0);
    let dram = rapl_zone(&tree.root, "intel-rapl:0:2", "dram", RANGE, 0);
    // Not a zone: the control-type directory.
    std::fs::create_dir_all(tree.root.join("class/powercap/intel-rapl")).unwrap();
    let sim = Sim::rapl(&package, 0, RANGE, None, |t| 10.0 * t);
    sim.add_rapl(&core, 0, RANGE, None, |t| 6.0 * t);
    sim.add_rapl(&dram, 0, RANGE, None, |t| 2.0 * t);
    let meter = EnergyMeter::new(sim.config(EnergySource::Rapl, &tree.root)).unwrap();
    let r = sim.window(&meter, "zones", 1.5, FAST);
    assert_close(r.duration_s, 1.5, 1e-9, "window on the simulated clock");
    let d = r.duration_s;
    assert_close(r.components["package"], 10.0 * d, 0.01, "package");
    assert_close(r.components["core"], 6.0 * d, 0.01, "core");
    assert_close(r.components["dram"], 2.0 * d, 0.01, "dram");
    // The package already includes its cores; DRAM is outside it.
    assert_close(r.joules, 12.0 * d, 0.01, "total");
    assert!(r.source.description.contains("total = package-0 + dram"), "{}", r.source.description);
}

#[test]
fn amd_naming_and_psys_total() {
    let tree = TempTree::new("rapl-amd");
    let package = rapl_zone(&tree.root, "amd-rapl:0", "package-0", RANGE, 0);
    let core = rapl_zone(&tree.root, "amd-rapl:0:0", "core", RANGE, 0);
    let psys = rapl_zone(&tree.root, "amd-rapl:1", "psys", RANGE, 0);
    let sim = Sim::rapl(&package, 0, RANGE, None, |t| 9.0 * t);
    sim.add_rapl(&core, 0, RANGE, None, |t| 7.0 * t);
    sim.add_rapl(&psys, 0, RANGE, None, |t| 14.0 * t);
    let meter = EnergyMeter::new(sim.config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.source_kind(), SourceKind::Rapl);
    let r = sim.window(&meter, "amd", 1.5, FAST);
    // psys covers the whole platform, package included.
    assert_close(r.joules, 14.0 * r.duration_s, 0.01, "psys total");
    assert_close(r.components["package"], 9.0 * r.duration_s, 0.01, "package");
    assert_close(r.components["core"], 7.0 * r.duration_s, 0.01, "core");
}

#[test]
fn unreadable_counter_falls_back_with_the_reason() {
    let tree = TempTree::new("rapl-unreadable");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    // Tests may run as root, which reads any file mode; a directory in the file's place
    // fails to read for everyone.
    std::fs::remove_file(zone.join("energy_uj")).unwrap();
    std::fs::create_dir(zone.join("energy_uj")).unwrap();
    let meter = EnergyMeter::new(config(EnergySource::Auto, &tree.root)).unwrap();
    let r = meter.end(meter.begin("w")).unwrap();
    assert_ne!(r.method, Method::Measured);
    let rapl = &r.quality.fell_back_from[0];
    assert_eq!(rapl.source, SourceKind::Rapl);
    let path = zone.join("energy_uj").display().to_string();
    assert!(rapl.reason.starts_with(&format!("RAPL: {path}: ")), "{}", rapl.reason);
    assert!(rapl.reason.to_lowercase().contains("directory"), "{}", rapl.reason);
}

#[test]
fn missing_and_garbage_counters_fall_back_or_fail_clearly() {
    let empty = TempTree::new("rapl-missing");
    let meter = EnergyMeter::new(config(EnergySource::Auto, &empty.root)).unwrap();
    let reason = &meter.fell_back_from()[0].reason;
    assert!(
        reason.starts_with("RAPL: ") && reason.ends_with("class/powercap: missing"),
        "{reason}"
    );

    let tree = TempTree::new("rapl-garbage");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    std::fs::write(zone.join("energy_uj"), "\u{1}\u{2}garbage\n").unwrap();
    let meter = EnergyMeter::new(config(EnergySource::Auto, &tree.root)).unwrap();
    let reason = &meter.fell_back_from()[0].reason;
    assert!(reason.contains("energy_uj: not a non-negative integer"), "{reason}");

    // Asked for explicitly, an unusable RAPL is an error, not a silent fallback.
    match EnergyMeter::new(config(EnergySource::Rapl, &tree.root)) {
        Err(EnergyError::SourceUnavailable { backend: SourceKind::Rapl, reason }) => {
            assert!(reason.contains("not a non-negative integer"), "{reason}")
        }
        other => panic!("expected SourceUnavailable, got {other:?}"),
    }

    // A zone whose range file is missing is skipped with a note; the others still count.
    let partial = TempTree::new("rapl-partial");
    let good = rapl_zone(&partial.root, "intel-rapl:0", "package-0", RANGE, 0);
    let bad = rapl_zone(&partial.root, "intel-rapl:1", "package-1", RANGE, 0);
    std::fs::remove_file(bad.join("max_energy_range_uj")).unwrap();
    let sim = Sim::rapl(&good, 0, RANGE, None, |t| 5.0 * t);
    let meter = EnergyMeter::new(sim.config(EnergySource::Rapl, &partial.root)).unwrap();
    let r = sim.window(&meter, "partial", 1.5, FAST);
    assert_close(r.joules, 5.0 * r.duration_s, 0.01, "joules from the readable zone");
    assert!(
        r.quality.notes.iter().any(|n| n.contains("max_energy_range_uj: missing")),
        "{:?}",
        r.quality.notes
    );
}

#[test]
fn counter_turning_to_garbage_mid_run_is_recorded_not_fatal() {
    let tree = TempTree::new("rapl-midrun");
    let zone = rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim.config(EnergySource::Rapl, &tree.root)).unwrap();
    let window = meter.begin("broken");
    write_atomic(&zone.join("energy_uj"), "NaN\n");
    sim.run(&meter, 0.05, FAST);
    std::fs::remove_file(zone.join("energy_uj")).unwrap();
    sim.run(&meter, 0.05, FAST);
    let r = meter.end(window).unwrap();
    assert!(r.quality.sensor_errors >= 2, "{:?}", r.quality);
    let last = r.quality.last_sensor_error.as_deref().unwrap();
    assert!(last.contains("energy_uj: missing"), "{last}");
    assert_eq!(r.method, Method::Measured);
    assert!(r.joules.is_finite());
}

#[test]
fn sysfs_root_comes_from_the_environment() {
    // The variable must be set before anything reads it: the check runs in a child process.
    let tree = TempTree::new("rapl-env");
    rapl_zone(&tree.root, "intel-rapl:0", "package-0", RANGE, 0);
    let vars = [(SYSFS_ROOT_ENV, tree.root.as_os_str())];
    in_own_process("energy_rapl::sysfs_root_comes_from_the_environment", &vars, || {
        let root = std::env::var_os(SYSFS_ROOT_ENV).expect("the parent sets the root");
        assert_eq!(default_sysfs_root(), std::path::PathBuf::from(&root));
        let meter = EnergyMeter::new(EnergyConfig::default()).unwrap();
        assert_eq!(meter.source_kind(), SourceKind::Rapl);
    });
}
