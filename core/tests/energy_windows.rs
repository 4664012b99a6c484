//! Meter-level behaviour over a scripted platform probe: overlapping windows, the idle
//! baseline, thermal and charging flags, the sampling thread's lifetime, and the stable
//! serialized form of a reading. Tests whose verdict depends on when samples are taken run
//! on a simulated clock (`Sim`), so a busy machine cannot change it.

use crate::energy_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_millis(2);

use energy_support::*;
use joule_core::energy::{
    BatteryStatus, EnergyConfig, EnergyError, EnergyMeter, EnergyReading, EnergySource, Method,
    PlatformProbe, ProbeReading, SourceKind, ThermalState,
};

fn probe_config(probe: &Arc<TestProbe>) -> EnergyConfig {
    let tree_root = std::env::temp_dir().join("joule-energy-no-such-sysfs");
    let probe: Arc<dyn PlatformProbe> = probe.clone();
    EnergyConfig { sample_interval: STEP, ..config(EnergySource::Platform(probe), &tree_root) }
}

/// [`probe_config`] on the simulation's clock.
fn sim_config(sim: &Sim, probe: &Arc<TestProbe>) -> EnergyConfig {
    EnergyConfig { clock: Some(sim.clock.clone()), ..probe_config(probe) }
}

#[test]
fn overlapping_windows_each_measure_their_own_interval() {
    let probe = TestProbe::new(watts(2.0));
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim_config(&sim, &probe)).unwrap();
    let run = |seconds| sim.run(&meter, seconds, STEP);
    // 2 W until 0.35 s, 3 W until 0.80 s, then 2.5 W; the sensor changes between samples.
    let (o0, outer) = (sim.t(), meter.begin("outer"));
    run(0.25);
    let (i0, inner) = (sim.t(), meter.begin("inner"));
    run(0.1);
    probe.set(watts(3.0));
    run(0.15);
    let (s0, staggered) = (sim.t(), meter.begin("staggered"));
    run(0.15);
    let (i1, inner) = (sim.t(), meter.end(inner).unwrap());
    run(0.15);
    probe.set(watts(2.5));
    run(0.15);
    let (o1, outer) = (sim.t(), meter.end(outer).unwrap());
    run(0.25);
    let (s1, staggered) = (sim.t(), meter.end(staggered).unwrap());
    // The power the probe showed: a change made at `at` is first read at the next step.
    let (up, down) = (0.35 + 0.002, 0.80 + 0.002);
    let truth = |a: f64, b: f64| {
        let part = |from: f64, until: f64, w: f64| w * (until.min(b) - from.max(a)).max(0.0);
        part(0.0, up, 2.0) + part(up, down, 3.0) + part(down, f64::INFINITY, 2.5)
    };
    for (r, a, b) in [(&outer, o0, o1), (&inner, i0, i1), (&staggered, s0, s1)] {
        assert_close(r.joules, truth(a, b), 0.01, &r.name);
        assert_close(r.duration_s, b - a, 1e-9, &format!("{} duration", r.name));
    }
    assert_eq!(outer.source.kind, SourceKind::Platform);
    assert!(outer.sample_count > inner.sample_count);
    assert!(outer.sample_rate_hz > 100.0, "{}", outer.sample_rate_hz);
}

#[test]
fn baseline_is_reported_and_subtracted_only_when_asked() {
    for subtract in [true, false] {
        let probe = TestProbe::new(watts(1.0));
        let sim = Sim::new();
        let mut cfg = sim_config(&sim, &probe);
        cfg.baseline_s = 0.3;
        cfg.subtract_baseline = subtract;
        let meter = EnergyMeter::new(cfg).unwrap();
        assert_close(sim.t(), 0.3, 1e-9, "the baseline is measured before new returns");
        probe.set(watts(4.0));
        let r = sim.window(&meter, "work", 0.3, STEP);
        let baseline = r.source.baseline.clone().expect("baseline reported");
        assert_close(baseline.watts, 1.0, 0.01, "baseline watts");
        assert_close(baseline.measured_over_s, 0.3, 0.05, "baseline duration");
        assert_eq!(baseline.subtracted, subtract);
        assert_eq!(r.quality.baseline_subtracted, subtract);
        assert_close(r.raw_joules, 4.0 * r.duration_s, 0.01, "raw joules");
        let expected = if subtract { 3.0 * r.duration_s } else { r.raw_joules };
        assert_close(r.joules, expected, 0.01, "joules");
        assert_close(r.avg_watts, if subtract { 3.0 } else { 4.0 }, 0.01, "average watts");
    }

    // Idle above the window's power: clamped to zero, with a note.
    let probe = TestProbe::new(watts(2.0));
    let sim = Sim::new();
    let meter = EnergyMeter::new(EnergyConfig {
        baseline_s: 0.1,
        subtract_baseline: true,
        ..sim_config(&sim, &probe)
    })
    .unwrap();
    probe.set(watts(0.5));
    let r = sim.window(&meter, "below idle", 0.1, STEP);
    assert_eq!(r.joules, 0.0);
    assert!(r.raw_joules > 0.0);
    assert!(r.quality.notes.iter().any(|n| n.contains("clamped to 0")), "{:?}", r.quality.notes);
}

#[test]
fn probe_thermal_state_and_charging_are_flagged() {
    let reading = |amps: f64, status, thermal| ProbeReading {
        current_a: Some(amps),
        voltage_v: Some(3.8),
        status: Some(status),
        thermal: Some(thermal),
        ..ProbeReading::default()
    };
    let probe = TestProbe::new(reading(-0.6, BatteryStatus::Discharging, ThermalState::Nominal));
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim_config(&sim, &probe)).unwrap();
    let calm = sim.window(&meter, "calm", 0.2, STEP);
    assert_eq!(calm.quality.thermal_state, Some(ThermalState::Nominal));
    assert!(!calm.quality.charging);
    assert_close(calm.joules, 0.6 * 3.8 * calm.duration_s, 0.01, "probe current × voltage");

    let window = meter.begin("hot");
    probe.set(reading(-0.6, BatteryStatus::Discharging, ThermalState::Serious));
    sim.run(&meter, 0.05, STEP);
    probe.set(reading(0.4, BatteryStatus::Charging, ThermalState::Fair));
    sim.run(&meter, 0.05, STEP);
    let hot = meter.end(window).unwrap();
    assert_eq!(hot.quality.thermal_state, Some(ThermalState::Serious), "worst state in the window");
    assert!(hot.quality.charging);
}

#[test]
fn sampling_thread_stops_when_the_meter_is_dropped() {
    // The real sampling thread (no simulated clock). Load can only slow it down: the test
    // waits for its reads with a generous deadline instead of counting them after a sleep.
    let probe = TestProbe::new(watts(1.0));
    let meter = EnergyMeter::new(probe_config(&probe)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.reads() <= 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(probe.reads() > 5, "the thread polls: {} reads in 60 s", probe.reads());
    let orphan = meter.begin("outlives the meter");
    drop(meter);
    let after_drop = probe.reads();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(probe.reads(), after_drop, "no reads after the meter is gone");
    drop(orphan);
}

#[test]
fn failing_probe_is_skipped_by_auto_and_refused_when_asked_for() {
    struct Broken;
    impl PlatformProbe for Broken {
        fn name(&self) -> String {
            "broken".to_string()
        }
        fn read(&self) -> Result<ProbeReading, joule_core::energy::ProbeError> {
            Err(joule_core::energy::ProbeError("BatteryManager returned Integer.MIN_VALUE".into()))
        }
    }
    let empty = TempTree::new("windows-auto-probe");
    let cfg =
        EnergyConfig { probe: Some(Arc::new(Broken)), ..config(EnergySource::Auto, &empty.root) };
    let meter = EnergyMeter::new(cfg).unwrap();
    let platform = &meter.fell_back_from()[2];
    assert_eq!(platform.source, SourceKind::Platform);
    assert_eq!(
        platform.reason,
        "platform probe 'broken': BatteryManager returned Integer.MIN_VALUE"
    );

    match EnergyMeter::new(config(EnergySource::Platform(Arc::new(Broken)), &empty.root)) {
        Err(EnergyError::SourceUnavailable { backend: SourceKind::Platform, .. }) => {}
        other => panic!("{other:?}"),
    }

    // A working probe offered to Auto is used after RAPL and battery.
    let probe = TestProbe::new(watts(2.5));
    let offered: Arc<dyn PlatformProbe> = probe.clone();
    let meter = EnergyMeter::new(EnergyConfig {
        probe: Some(offered),
        ..config(EnergySource::Auto, &empty.root)
    })
    .unwrap();
    assert_eq!(meter.source_kind(), SourceKind::Platform);
    assert_eq!(meter.fell_back_from().len(), 2);
}

#[test]
fn windows_belong_to_their_meter_and_none_measures_nothing() {
    let probe = TestProbe::new(watts(1.0));
    let a = EnergyMeter::new(probe_config(&probe)).unwrap();
    let b = EnergyMeter::new(probe_config(&probe)).unwrap();
    let window = a.begin("mine");
    match b.end(window) {
        Err(EnergyError::ForeignWindow { name }) => assert_eq!(name, "mine"),
        other => panic!("{other:?}"),
    }

    let none = EnergyMeter::new(EnergyConfig::with_source(EnergySource::None)).unwrap();
    let r = none.end(none.begin("off")).unwrap();
    assert_eq!(r.method, Method::None);
    assert_eq!(r.joules, 0.0);
    assert_eq!(r.joules_per(10), None);
}

#[test]
fn reading_serializes_with_stable_snake_case_names() {
    let probe = TestProbe::new(watts(2.0));
    let sim = Sim::new();
    let meter =
        EnergyMeter::new(EnergyConfig { baseline_s: 0.05, ..sim_config(&sim, &probe) }).unwrap();
    let r = sim.window(&meter, "decode", 0.05, STEP);
    let json = serde_json::to_value(&r).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        [
            "avg_watts",
            "components",
            "duration_s",
            "joules",
            "method",
            "name",
            "quality",
            "raw_joules",
            "sample_count",
            "sample_rate_hz",
            "source"
        ]
    );
    assert_eq!(
        keys(&json["source"]),
        [
            "baseline",
            "description",
            "kind",
            "paths",
            "poll_interval_s",
            "sensor_update_hz",
            "window"
        ]
    );
    assert_eq!(
        keys(&json["quality"]),
        [
            "baseline_subtracted",
            "charging",
            "coverage",
            "fell_back_from",
            "last_sensor_error",
            "notes",
            "on_external_power",
            "sensor_errors",
            "sensor_too_slow_for_window",
            "thermal_state"
        ]
    );
    assert_eq!(keys(&json["source"]["window"]), ["end_unix_s", "start_unix_s"]);
    assert_eq!(keys(&json["source"]["baseline"]), ["measured_over_s", "subtracted", "watts"]);
    assert_eq!(json["method"], "measured");
    assert_eq!(json["source"]["kind"], "platform");
    let back: EnergyReading = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
    assert_close(r.joules_per(4).unwrap(), r.joules / 4.0, 1e-12, "joules per token");
}

#[test]
fn meter_and_windows_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<EnergyMeter>();
    send_sync::<joule_core::energy::EnergyWindow>();
    // Real threads and the real clock: constant power and a sample at each window edge, so
    // the joules match the window's own duration however late the threads run.
    let probe = TestProbe::new(watts(1.5));
    let meter = Arc::new(EnergyMeter::new(probe_config(&probe)).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let meter = Arc::clone(&meter);
            std::thread::spawn(move || {
                timed_window(&meter, &format!("thread {i}"), Duration::from_millis(100)).reading
            })
        })
        .collect();
    for handle in handles {
        let r = handle.join().unwrap();
        assert_close(r.joules, 1.5 * r.duration_s, 0.01, &r.name);
    }
}
