//! Meter-level behaviour over a scripted platform probe: overlapping windows, the idle
//! baseline, thermal and charging flags, the sampling thread's lifetime, and the stable
//! serialized form of a reading.

mod energy_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use energy_support::*;
use joule_core::energy::{
    BatteryStatus, EnergyConfig, EnergyError, EnergyMeter, EnergyReading, EnergySource, Method,
    PlatformProbe, ProbeReading, SourceKind, ThermalState,
};

fn probe_config(probe: &Arc<TestProbe>) -> EnergyConfig {
    let tree_root = std::env::temp_dir().join("joule-energy-no-such-sysfs");
    let probe: Arc<dyn PlatformProbe> = probe.clone();
    EnergyConfig {
        sample_interval: Duration::from_millis(2),
        ..config(EnergySource::Platform(probe), &tree_root)
    }
}

/// ∫ of the step function `steps` (instant it took effect, watts) over [a, b].
fn integrate_steps(steps: &[(Instant, f64)], a: Instant, b: Instant) -> f64 {
    let mut joules = 0.0;
    for (i, &(from, watts)) in steps.iter().enumerate() {
        let until = steps.get(i + 1).map_or(b, |next| next.0.min(b));
        let from = from.max(a);
        if until > from {
            joules += watts * (until - from).as_secs_f64();
        }
    }
    joules
}

#[test]
fn overlapping_windows_each_measure_their_own_interval() {
    let _serial = serial();
    let probe = TestProbe::new(watts(2.0));
    let meter = EnergyMeter::new(probe_config(&probe)).unwrap();
    let mut steps = vec![(Instant::now(), 2.0)];
    let mut set = |w: f64| {
        probe.set(watts(w));
        steps.push((Instant::now(), w));
    };
    let sleep = |ms| std::thread::sleep(Duration::from_millis(ms));
    let (o0, outer) = (Instant::now(), meter.begin("outer"));
    sleep(250);
    let (i0, inner) = (Instant::now(), meter.begin("inner"));
    sleep(100);
    set(3.0);
    sleep(150);
    let (s0, staggered) = (Instant::now(), meter.begin("staggered"));
    sleep(150);
    let inner = meter.end(inner).unwrap();
    let i1 = Instant::now();
    sleep(150);
    set(2.5);
    sleep(150);
    let outer = meter.end(outer).unwrap();
    let o1 = Instant::now();
    sleep(250);
    let staggered = meter.end(staggered).unwrap();
    let s1 = Instant::now();
    for (r, a, b) in [(&outer, o0, o1), (&inner, i0, i1), (&staggered, s0, s1)] {
        // The test's instants bracket the meter's from outside by a few microseconds.
        assert_close(r.joules, integrate_steps(&steps, a, b), 0.01, &r.name);
        assert_close(r.duration_s, (b - a).as_secs_f64(), 0.01, &format!("{} duration", r.name));
    }
    assert_eq!(outer.source.kind, SourceKind::Platform);
    assert!(outer.sample_count > inner.sample_count);
    assert!(outer.sample_rate_hz > 100.0, "{}", outer.sample_rate_hz);
}

#[test]
fn baseline_is_reported_and_subtracted_only_when_asked() {
    let _serial = serial();
    for subtract in [true, false] {
        let probe = TestProbe::new(watts(1.0));
        let mut cfg = probe_config(&probe);
        cfg.baseline_s = 0.3;
        cfg.subtract_baseline = subtract;
        let created = Instant::now();
        let meter = EnergyMeter::new(cfg).unwrap();
        assert!(
            created.elapsed() >= Duration::from_millis(300),
            "the baseline is measured before new returns"
        );
        probe.set(watts(4.0));
        let r = timed_window(&meter, "work", Duration::from_millis(300)).reading;
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
    let meter = EnergyMeter::new(EnergyConfig {
        baseline_s: 0.1,
        subtract_baseline: true,
        ..probe_config(&probe)
    })
    .unwrap();
    probe.set(watts(0.5));
    let r = timed_window(&meter, "below idle", Duration::from_millis(100)).reading;
    assert_eq!(r.joules, 0.0);
    assert!(r.raw_joules > 0.0);
    assert!(r.quality.notes.iter().any(|n| n.contains("clamped to 0")), "{:?}", r.quality.notes);
}

#[test]
fn probe_thermal_state_and_charging_are_flagged() {
    let _serial = serial();
    let reading = |amps: f64, status, thermal| ProbeReading {
        current_a: Some(amps),
        voltage_v: Some(3.8),
        status: Some(status),
        thermal: Some(thermal),
        ..ProbeReading::default()
    };
    let probe = TestProbe::new(reading(-0.6, BatteryStatus::Discharging, ThermalState::Nominal));
    let meter = EnergyMeter::new(probe_config(&probe)).unwrap();
    let calm = timed_window(&meter, "calm", Duration::from_millis(200)).reading;
    assert_eq!(calm.quality.thermal_state, Some(ThermalState::Nominal));
    assert!(!calm.quality.charging);
    assert_close(calm.joules, 0.6 * 3.8 * calm.duration_s, 0.01, "probe current × voltage");

    let window = meter.begin("hot");
    probe.set(reading(-0.6, BatteryStatus::Discharging, ThermalState::Serious));
    std::thread::sleep(Duration::from_millis(50));
    probe.set(reading(0.4, BatteryStatus::Charging, ThermalState::Fair));
    std::thread::sleep(Duration::from_millis(50));
    let hot = meter.end(window).unwrap();
    assert_eq!(hot.quality.thermal_state, Some(ThermalState::Serious), "worst state in the window");
    assert!(hot.quality.charging);
}

#[test]
fn sampling_thread_stops_when_the_meter_is_dropped() {
    let _serial = serial();
    let probe = TestProbe::new(watts(1.0));
    let meter = EnergyMeter::new(probe_config(&probe)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(probe.reads() > 5, "the thread polls: {} reads", probe.reads());
    let orphan = meter.begin("outlives the meter");
    drop(meter);
    let after_drop = probe.reads();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(probe.reads(), after_drop, "no reads after the meter is gone");
    drop(orphan);
}

#[test]
fn failing_probe_is_skipped_by_auto_and_refused_when_asked_for() {
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
    let probe = TestProbe::new(watts(2.0));
    let meter =
        EnergyMeter::new(EnergyConfig { baseline_s: 0.05, ..probe_config(&probe) }).unwrap();
    let r = timed_window(&meter, "decode", Duration::from_millis(50)).reading;
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
    let _serial = serial();
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
