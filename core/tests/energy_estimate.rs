//! The estimate backend and auto-detection on a machine without power sensors: the reading
//! is labelled estimated with the reason, never measured, and its joules follow the
//! process's CPU time.

use crate::energy_support;
use crate::support::in_own_process;

use std::time::Duration;

use energy_support::*;
use joule_core::energy::{
    EnergyConfig, EnergyMeter, EnergySource, Method, SourceKind, WattsPerCoreTable,
};

/// This process's user + system CPU seconds, read independently of the meter.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The calling thread's CPU seconds.
fn thread_cpu_seconds() -> f64 {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    schedstat.split_whitespace().next().unwrap().parse::<u64>().unwrap() as f64 * 1e-9
}

/// Spins until this thread has used `seconds` of CPU, however busy the machine is.
fn burn(seconds: f64) -> u64 {
    let start = thread_cpu_seconds();
    let mut x = 0u64;
    while thread_cpu_seconds() - start < seconds {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    std::hint::black_box(x)
}

#[test]
fn auto_without_sensors_is_estimated_with_reasons_never_measured() {
    let _serial = serial();
    // A sysfs root with the directories but no sensors in them, as on this build machine.
    let tree = TempTree::new("estimate-auto");
    std::fs::create_dir_all(tree.root.join("class/power_supply")).unwrap();
    std::fs::create_dir_all(tree.root.join("class/powercap")).unwrap();
    let meter = EnergyMeter::new(config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.method(), Method::Estimated);
    let window = meter.begin("busy");
    burn(0.1);
    let r = meter.end(window).unwrap();

    assert_eq!(r.method, Method::Estimated);
    assert_ne!(r.method, Method::Measured);
    assert_eq!(r.source.kind, SourceKind::Estimate);
    assert!(r.joules > 0.0);
    let skipped: Vec<SourceKind> = r.quality.fell_back_from.iter().map(|f| f.source).collect();
    assert_eq!(
        skipped,
        [SourceKind::Rapl, SourceKind::Battery, SourceKind::Platform, SourceKind::Trace]
    );
    let reasons: Vec<&str> = r.quality.fell_back_from.iter().map(|f| f.reason.as_str()).collect();
    assert!(reasons[0].starts_with("RAPL: no RAPL zones in "), "{}", reasons[0]);
    assert!(
        reasons[1].starts_with("battery: no power_supply of type Battery in "),
        "{}",
        reasons[1]
    );
    assert!(
        r.quality.notes.iter().any(|n| n.contains("this is an estimate")),
        "{:?}",
        r.quality.notes
    );
    assert!(r.source.description.contains("W per busy core"), "{}", r.source.description);

    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"method\":\"estimated\""), "{json}");
    assert!(
        !json.contains("measured\""),
        "nothing in an estimated reading may say measured: {json}"
    );
}

#[test]
fn estimate_is_cpu_time_times_watts_per_core() {
    // Counts this process's CPU time: alone in a process, no other test's work is in it.
    in_own_process("energy_estimate::estimate_is_cpu_time_times_watts_per_core", &[], || {
        let table = WattsPerCoreTable::single(2.0, "test figure");
        let cfg = EnergyConfig {
            watts_per_core: table,
            ..EnergyConfig::with_source(EnergySource::Estimate)
        };
        let meter = EnergyMeter::new(cfg).unwrap();
        assert!(
            meter.source_description().contains("2 W per busy core"),
            "{}",
            meter.source_description()
        );

        let cpu_before = process_cpu_seconds();
        let window = meter.begin("threads");
        // Two workers, one of which exits before the window ends.
        let short = std::thread::spawn(|| burn(0.1));
        let long = std::thread::spawn(|| burn(0.2));
        short.join().unwrap();
        long.join().unwrap();
        let r = meter.end(window).unwrap();
        let cpu = process_cpu_seconds() - cpu_before;

        assert_eq!(r.method, Method::Estimated);
        assert!(cpu >= 0.28, "the workers used 0.3 CPU-seconds: {cpu}");
        // The process clock ticks at 10 ms; allow three ticks either way.
        assert!((r.joules / 2.0 - cpu).abs() <= 0.03, "{} J / 2 W vs {cpu} CPU-s", r.joules);
        assert_close(r.components["cpu"], r.joules, 1e-12, "cpu component");
        assert!(r.quality.notes.iter().any(|n| n.contains("CPU-seconds")), "{:?}", r.quality.notes);
        assert!(
            r.quality.notes.iter().any(|n| n.contains("requested explicitly")),
            "{:?}",
            r.quality.notes
        );
        assert!(r.quality.fell_back_from.is_empty());
    });
}

#[test]
fn idle_window_estimates_almost_nothing() {
    // Counts this process's CPU time: alone in a process, no other test's work is in it.
    in_own_process("energy_estimate::idle_window_estimates_almost_nothing", &[], || {
        let meter = EnergyMeter::new(EnergyConfig::with_source(EnergySource::Estimate)).unwrap();
        let r = timed_window(&meter, "sleeping", Duration::from_millis(200)).reading;
        let watts = WattsPerCoreTable::builtin().for_this_target().unwrap().watts;
        assert!(
            r.joules < 0.05 * watts * r.duration_s,
            "a sleeping thread uses little CPU: {} J",
            r.joules
        );
    });
}
