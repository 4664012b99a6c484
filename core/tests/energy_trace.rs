//! External power-monitor traces: synthetic CSVs whose true joules are known in closed
//! form, integrated over wall-clock windows that start and end between samples. The meter
//! tests run on a simulated clock (`Sim`): the trace's timestamps, the monitor's appends and
//! the window edges are all on it, so machine load changes nothing.

use crate::energy_support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use energy_support::*;
use joule_core::energy::{
    EnergyConfig, EnergyError, EnergyMeter, EnergySource, Method, PowerTrace, SourceKind,
};

const STEP: Duration = Duration::from_millis(5);

/// Writes a CSV with `header`, sampling `row(t)` every `step` seconds over [from, to].
fn write_trace(
    path: &Path,
    header: &str,
    from: f64,
    to: f64,
    step: f64,
    row: impl Fn(f64) -> String,
) {
    let mut text = format!("# synthetic monitor trace\n{header}\n");
    let count = ((to - from) / step).ceil() as usize;
    for k in 0..=count {
        let t = from + k as f64 * step;
        text.push_str(&format!("{t:.6},{}\n", row(t)));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn power_column_over_windows_between_samples() {
    // Deterministic: 2 W rising by 0.5 W/s, sampled every 0.1 s; linear, so exact.
    let mut csv = String::from("timestamp,power_w\n");
    for k in 0..=100 {
        let t = 1_700_000_000.0 + k as f64 * 0.1;
        csv.push_str(&format!("{t:.3},{}\n", 2.0 + 0.5 * (k as f64 * 0.1)));
    }
    let trace = PowerTrace::parse(&csv).unwrap();
    let exact = |a: f64, b: f64| 2.0 * (b - a) + 0.25 * (b * b - a * a);
    for (a, b) in [(0.03, 0.07), (0.05, 3.33), (1.234, 9.876), (0.0, 10.0)] {
        let e = trace.energy_between(1_700_000_000.0 + a, 1_700_000_000.0 + b);
        let expected = exact(a, b);
        assert!(
            (e.joules - expected).abs() < 1e-6 * expected.max(1.0),
            "[{a}, {b}]: {} vs {expected}",
            e.joules
        );
        assert_eq!(e.coverage, 1.0);
    }
}

#[test]
fn stepped_power_trace_through_the_meter_within_one_percent() {
    let tree = TempTree::new("trace-stepped");
    let path = tree.root.join("monitor.csv");
    let sim = Sim::new();
    let now = sim.unix_s();
    let step_at = now + 0.15;
    // 3 W, then 6 W from `step_at`, sampled every millisecond by the monitor.
    let power = move |t: f64| if t < step_at { 3.0 } else { 6.0 };
    write_trace(&path, "time,power_mw", now - 1.0, now + 3.0, 0.001, |t| {
        format!("{}", power(t) * 1000.0)
    });
    let meter =
        EnergyMeter::new(sim.config(EnergySource::Trace(path.clone()), &tree.root)).unwrap();
    assert_eq!(meter.method(), Method::Measured);
    sim.run(&meter, 0.01, STEP);
    let r = sim.window(&meter, "stepped", 0.3, STEP);
    let (a, b) = (r.source.window.start_unix_s, r.source.window.end_unix_s);
    assert!(a < step_at && step_at < b, "the window must contain the step");
    let truth = 3.0 * (step_at - a) + 6.0 * (b - step_at);
    assert_close(r.joules, truth, 0.01, "stepped trace");
    assert_eq!(r.quality.coverage, 1.0);
    assert!(r.sample_count >= 250, "{} samples", r.sample_count);
    assert_eq!(r.source.kind, SourceKind::Trace);
    assert_eq!(r.source.paths, vec![path.display().to_string()]);
}

#[test]
fn current_and_voltage_columns() {
    let tree = TempTree::new("trace-iv");
    let path = tree.root.join("monitor.csv");
    let sim = Sim::new();
    let now = sim.unix_s();
    // 500 mA constant, voltage falling linearly from 4.2 V at 0.02 V/s: power is linear.
    let volts = move |t: f64| 4.2 - 0.02 * (t - now);
    write_trace(
        &path,
        "unix_time,current_ma,voltage_v,channel",
        now - 1.0,
        now + 3.0,
        0.0137,
        |t| format!("500,{:.9},main", volts(t)),
    );
    let meter = EnergyMeter::new(sim.config(EnergySource::Trace(path), &tree.root)).unwrap();
    sim.run(&meter, 0.02, STEP);
    let r = sim.window(&meter, "iv", 0.25, STEP);
    let (a, b) = (r.source.window.start_unix_s, r.source.window.end_unix_s);
    let truth = 0.5 * (4.2 * (b - a) - 0.01 * ((b - now).powi(2) - (a - now).powi(2)));
    assert_close(r.joules, truth, 1e-6, "current × voltage trace");
}

#[test]
fn overlapping_windows_each_get_their_own_interval() {
    let tree = TempTree::new("trace-overlap");
    let path = tree.root.join("monitor.csv");
    let sim = Sim::new();
    let now = sim.unix_s();
    // Power rising 1 W per second from 2 W.
    write_trace(&path, "t,w", now - 1.0, now + 3.0, 0.01, |t| format!("{:.9}", 2.0 + (t - now)));
    let exact = |a: f64, b: f64| 2.0 * (b - a) + 0.5 * ((b - now).powi(2) - (a - now).powi(2));
    let meter = EnergyMeter::new(sim.config(EnergySource::Trace(path), &tree.root)).unwrap();
    let outer = meter.begin("outer");
    sim.run(&meter, 0.06, STEP);
    let inner = meter.begin("inner");
    sim.run(&meter, 0.06, STEP);
    let staggered = meter.begin("staggered");
    sim.run(&meter, 0.06, STEP);
    let inner = meter.end(inner).unwrap();
    sim.run(&meter, 0.06, STEP);
    let outer = meter.end(outer).unwrap();
    sim.run(&meter, 0.06, STEP);
    let staggered = meter.end(staggered).unwrap();
    for r in [&outer, &inner, &staggered] {
        let (a, b) = (r.source.window.start_unix_s, r.source.window.end_unix_s);
        assert_close(r.joules, exact(a, b), 1e-6, &r.name);
    }
    assert!(outer.source.window.start_unix_s < inner.source.window.start_unix_s);
    assert!(inner.source.window.end_unix_s < outer.source.window.end_unix_s);
    assert!(staggered.source.window.end_unix_s > outer.source.window.end_unix_s);
    assert!(outer.joules > inner.joules);
}

#[test]
fn trace_still_being_written_is_followed() {
    let tree = TempTree::new("trace-live");
    let path = tree.root.join("live.csv");
    std::fs::write(&path, "timestamp,power_w\n").unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    // The monitor writes 5 W samples every 5 ms (at each step of the simulated clock),
    // each line in two pieces, the second only at the next step.
    let sim = Sim::new();
    let start = sim.unix_s();
    let mut first = true;
    sim.on_step(move |t| {
        if !first {
            file.write_all(b"5.0\n").unwrap();
        }
        first = false;
        file.write_all(format!("{:.6},", start + t).as_bytes()).unwrap();
        file.flush().unwrap();
    });
    sim.advance(0.05, STEP);
    let meter = EnergyMeter::new(sim.config(EnergySource::Trace(path), &tree.root)).unwrap();
    let r = sim.window(&meter, "live", 0.4, STEP);
    assert!(r.quality.coverage > 0.9, "coverage {}", r.quality.coverage);
    assert_close(
        r.joules,
        5.0 * r.duration_s * r.quality.coverage,
        0.01,
        "joules over the covered part",
    );
    assert_eq!(r.quality.sensor_errors, 0, "{:?}", r.quality.last_sensor_error);
}

#[test]
fn gaps_garbage_and_missing_traces() {
    let tree = TempTree::new("trace-bad");
    let path = tree.root.join("short.csv");
    let sim = Sim::new();
    let now = sim.unix_s();
    // Ends 0.1 s from now; a garbage line is appended while the window is open.
    let mut text = String::from("time,power_w\n");
    for k in 0..=110 {
        let t = now - 1.0 + k as f64 * 0.01;
        text.push_str(&format!("{t:.6},4\n"));
    }
    std::fs::write(&path, text).unwrap();
    let meter =
        EnergyMeter::new(sim.config(EnergySource::Trace(path.clone()), &tree.root)).unwrap();
    let window = meter.begin("gap");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"not,a,row\n").unwrap();
    sim.run(&meter, 0.3, STEP);
    let r = meter.end(window).unwrap();
    assert_eq!(r.quality.sensor_errors, 1);
    let error = r.quality.last_sensor_error.as_deref().unwrap();
    assert!(
        error.contains("short.csv") && error.contains("\"not\" is not a finite number"),
        "{error}"
    );
    assert!(
        r.quality.coverage > 0.05 && r.quality.coverage < 0.5,
        "coverage {}",
        r.quality.coverage
    );
    assert!(r.quality.notes.iter().any(|n| n.contains("covers")), "{:?}", r.quality.notes);
    assert_close(r.joules, 4.0 * r.duration_s * r.quality.coverage, 0.01, "covered part");
    assert!(r.quality.sensor_too_slow_for_window || r.quality.coverage < 1.0);

    let missing = tree.root.join("nope.csv");
    match EnergyMeter::new(config(EnergySource::Trace(missing), &tree.root)) {
        Err(EnergyError::SourceUnavailable { backend: SourceKind::Trace, reason }) => {
            assert!(reason.ends_with("nope.csv: missing"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let headerless = tree.root.join("headerless.csv");
    std::fs::write(&headerless, "time,amps\n1,2\n").unwrap();
    match EnergyMeter::new(config(EnergySource::Trace(headerless), &tree.root)) {
        Err(EnergyError::SourceUnavailable { reason, .. }) => {
            assert!(reason.contains("neither a power column"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn baseline_from_a_trace_even_one_written_after_the_fact() {
    let tree = TempTree::new("trace-baseline");
    // 1 W idle until `busy_from`, then 4 W.
    let sim = Sim::new();
    let now = sim.unix_s();
    let busy_from = now + 0.3;
    let power = move |t: f64| if t < busy_from { 1.0 } else { 4.0 };
    let complete = tree.root.join("complete.csv");
    write_trace(&complete, "time,power_w", now - 1.0, now + 3.0, 0.001, |t| {
        format!("{}", power(t))
    });
    // The same trace, but the monitor has only flushed its header when the meter starts.
    let late = tree.root.join("late.csv");
    std::fs::write(&late, "time,power_w\n").unwrap();

    let mut meters = Vec::new();
    for path in [&complete, &late] {
        let cfg = EnergyConfig {
            baseline_s: 0.1,
            subtract_baseline: true,
            ..sim.config(EnergySource::Trace(path.clone()), &tree.root)
        };
        meters.push(EnergyMeter::new(cfg).unwrap());
    }
    assert!(meters[0].baseline().is_some());
    assert!(meters[1].baseline().is_none(), "not known until the trace covers the baseline period");
    let full = std::fs::read_to_string(&complete).unwrap();
    let rows = full.lines().skip(2).collect::<Vec<_>>().join("\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&late)
        .unwrap()
        .write_all(format!("{rows}\n").as_bytes())
        .unwrap();

    let wait = busy_from + 0.01 - sim.unix_s();
    assert!(wait > 0.0, "the two baselines end before the busy period");
    sim.advance(wait, Duration::from_secs_f64(wait));
    for meter in &meters {
        let r = sim.window(meter, "busy", 0.2, STEP);
        let baseline = r.source.baseline.clone().expect("baseline known by now");
        assert_close(baseline.watts, 1.0, 1e-4, "baseline watts");
        assert!(r.quality.baseline_subtracted);
        assert_close(r.raw_joules, 4.0 * r.duration_s, 1e-3, "raw joules");
        assert_close(r.joules, 3.0 * r.duration_s, 1e-3, "joules above idle");
    }
}
