//! Battery backend against simulated power_supply trees: power_now, current × voltage with
//! both vendor sign conventions, energy and charge counters, charging and external power,
//! and supplies that cannot be read. Everything runs on a simulated clock (`Sim`): the
//! gauges are rewritten and sampled as the test moves time, so machine load changes nothing.

use crate::energy_support;

use std::time::Duration;

const STEP: Duration = Duration::from_millis(5);

use energy_support::*;
use joule_core::energy::{EnergyMeter, EnergySource, Method, SourceKind};

#[test]
fn constant_power_now_within_one_percent() {
    let tree = TempTree::new("bat-constant");
    battery(&tree.root, "BAT0", &[("status", "Discharging"), ("power_now", "4200000")]);
    // A mains adapter that is offline is not a battery and is ignored.
    let ac = tree.root.join("class/power_supply/AC");
    std::fs::create_dir_all(&ac).unwrap();
    std::fs::write(ac.join("type"), "Mains\n").unwrap();
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim.config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.source_kind(), SourceKind::Battery);
    let r = &sim.window(&meter, "constant", 0.8, STEP);
    let truth = 4.2 * 0.8;
    assert_eq!(r.method, Method::Measured);
    assert_close(r.joules, truth, 0.01, "joules");
    assert_close(r.components["battery"], r.joules, 1e-12, "battery component");
    assert!(!r.quality.charging && !r.quality.on_external_power);
    assert_eq!(r.quality.fell_back_from.len(), 1, "RAPL was tried first");
    assert!(r.source.description.contains("BAT0 (power_now)"), "{}", r.source.description);
}

/// Current steps through four levels every 0.2 s while the voltage sags in two steps.
fn stepped_power(t: f64) -> (f64, f64) {
    let amps = [0.8, 1.2, 0.5, 1.0][((t / 0.2).floor() as usize) % 4];
    let volts = if ((t / 0.3).floor() as usize).is_multiple_of(2) { 3.9 } else { 3.7 };
    (amps, volts)
}

/// ∫ of a step function given as (time it took effect, watts) pairs, over [a, b].
fn integrate_steps(steps: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let mut joules = 0.0;
    for (i, &(from, watts)) in steps.iter().enumerate() {
        let until = steps.get(i + 1).map_or(f64::INFINITY, |next| next.0);
        let overlap = until.min(b) - from.max(a);
        if overlap > 0.0 {
            joules += watts * overlap;
        }
    }
    joules
}

#[test]
fn stepped_current_times_voltage_within_one_percent() {
    let tree = TempTree::new("bat-stepped");
    let dir = battery(
        &tree.root,
        "BAT0",
        &[("status", "Discharging"), ("current_now", "-800000"), ("voltage_now", "3900000")],
    );
    // The truth is what the simulated gauge showed, and from when (it is rewritten as the
    // simulated clock moves, 1 ms at a time).
    let shown = std::rc::Rc::new(std::cell::RefCell::new(vec![(f64::NEG_INFINITY, 0.8 * 3.9)]));
    let log = std::rc::Rc::clone(&shown);
    let sim = Sim::new();
    sim.on_step(move |t| {
        let (amps, volts) = stepped_power(t);
        let mut log = log.borrow_mut();
        if log.last().is_some_and(|&(_, watts)| watts != amps * volts) {
            write_atomic(&dir.join("voltage_now"), &format!("{}\n", (volts * 1e6).round() as i64));
            write_atomic(&dir.join("current_now"), &format!("{}\n", -(amps * 1e6).round() as i64));
            log.push((t, amps * volts));
        }
    });
    let mut cfg = sim.config(EnergySource::Battery, &tree.root);
    cfg.sample_interval = Duration::from_millis(1);
    let meter = EnergyMeter::new(cfg).unwrap();
    let (a, window) = (sim.t(), meter.begin("stepped"));
    sim.run(&meter, 1.3, Duration::from_millis(1));
    let (b, r) = (sim.t(), meter.end(window).unwrap());
    let steps = shown.borrow().clone();
    assert!(steps.len() >= 6, "the power should have stepped several times: {steps:?}");
    let truth = integrate_steps(&steps, a, b);
    assert_close(r.joules, truth, 0.01, "stepped joules");
    assert!(r.source.description.contains("current_now × voltage_now"));
}

#[test]
fn negative_and_positive_discharge_conventions_both_give_positive_energy() {
    let mut readings = Vec::new();
    for (tag, current) in [("neg", "-1000000"), ("pos", "1000000")] {
        let tree = TempTree::new(&format!("bat-sign-{tag}"));
        let dir = battery(
            &tree.root,
            "BAT0",
            &[("status", "Discharging"), ("current_now", current), ("voltage_now", "4000000")],
        );
        let sim = Sim::new();
        let meter = EnergyMeter::new(sim.config(EnergySource::Battery, &tree.root)).unwrap();
        let discharging = sim.window(&meter, "discharging", 0.3, STEP);
        assert_close(
            discharging.joules,
            4.0 * discharging.duration_s,
            0.01,
            &format!("{tag} convention"),
        );
        // With the status gone vague, the convention learned while discharging still holds.
        write_atomic(&dir.join("status"), "Unknown\n");
        let unknown = sim.window(&meter, "unknown", 0.3, STEP);
        assert_close(
            unknown.joules,
            4.0 * unknown.duration_s,
            0.01,
            &format!("{tag} convention, unknown status"),
        );
        readings.push(discharging);
    }
    assert!(readings.iter().all(|r| r.joules > 0.0));
}

#[test]
fn charging_is_flagged_and_auto_will_not_use_a_charging_battery() {
    let tree = TempTree::new("bat-charging");
    let dir = battery(
        &tree.root,
        "BAT0",
        &[("status", "Discharging"), ("current_now", "-500000"), ("voltage_now", "4100000")],
    );
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim.config(EnergySource::Battery, &tree.root)).unwrap();
    let before = sim.window(&meter, "unplugged", 0.2, STEP);
    assert!(!before.quality.charging);

    // Plugged in mid-window: Android convention, positive current flows into the battery.
    let window = meter.begin("plugged in");
    sim.run(&meter, 0.1, STEP);
    write_atomic(&dir.join("status"), "Charging\n");
    write_atomic(&dir.join("current_now"), "1500000\n");
    sim.run(&meter, 0.2, STEP);
    let r = meter.end(window).unwrap();
    assert!(r.quality.charging, "{:?}", r.quality);

    // Entirely while charging, the battery gains energy: net drain is negative.
    let charging = sim.window(&meter, "charging", 0.3, STEP);
    assert!(charging.quality.charging);
    assert_close(
        charging.joules,
        -1.5 * 4.1 * charging.duration_s,
        0.01,
        "net drain while charging",
    );

    let auto = EnergyMeter::new(config(EnergySource::Auto, &tree.root)).unwrap();
    assert_ne!(auto.source_kind(), SourceKind::Battery);
    let reason = &auto.fell_back_from()[1];
    assert_eq!(reason.source, SourceKind::Battery);
    assert!(reason.reason.contains("external power (status Charging)"), "{}", reason.reason);

    write_atomic(&dir.join("status"), "Full\n");
    let full = sim.window(&meter, "full", 0.1, STEP);
    assert!(full.quality.on_external_power && !full.quality.charging, "{:?}", full.quality);
}

#[test]
fn energy_and_charge_counters_within_one_percent() {
    // energy_now falls at 3 W (µWh), charge_counter at 0.75 A (µAh) × 4 V; gauges update at 20 Hz.
    let tree = TempTree::new("bat-counters");
    let energy_dir =
        battery(&tree.root, "BAT0", &[("status", "Discharging"), ("energy_now", "40000000")]);
    let tree2 = TempTree::new("bat-charge");
    let charge_dir = battery(
        &tree2.root,
        "battery",
        &[("status", "Discharging"), ("charge_counter", "3000000"), ("voltage_now", "4000000")],
    );
    // The gauges show the value of the last 50 ms tick of the simulated clock.
    let gauge_time = |t: f64| (t / 0.05 + 1e-9).floor() * 0.05;
    let sim = Sim::new();
    sim.on_step(move |t| {
        let microwatt_hours = 40_000_000.0 - 3.0 * gauge_time(t) / 3.6e-3;
        write_atomic(
            &energy_dir.join("energy_now"),
            &format!("{}\n", microwatt_hours.round() as i64),
        );
        let microamp_hours = 3_000_000.0 - 0.75 * gauge_time(t) / 3.6e-3;
        write_atomic(
            &charge_dir.join("charge_counter"),
            &format!("{}\n", microamp_hours.round() as i64),
        );
    });
    for root in [&tree.root, &tree2.root] {
        let meter = EnergyMeter::new(sim.config(EnergySource::Battery, root)).unwrap();
        // Let the meter see a few gauge updates first, as it would during a run.
        sim.run(&meter, 0.2, STEP);
        let r = sim.window(&meter, "counter", 1.0, STEP);
        assert_close(r.joules, 3.0 * r.duration_s, 0.01, &r.source.description);
        assert!(!r.quality.sensor_too_slow_for_window, "{:?}", r.quality);
    }
}

#[test]
fn unusable_batteries_fall_back_with_reasons() {
    let tree = TempTree::new("bat-missing");
    battery(&tree.root, "BAT0", &[("status", "Discharging")]);
    battery(
        &tree.root,
        "hid-mouse",
        &[("scope", "Device"), ("power_now", "100000"), ("status", "Discharging")],
    );
    let meter = EnergyMeter::new(config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.method(), Method::Estimated);
    let reason = &meter.fell_back_from()[1];
    assert_eq!(reason.source, SourceKind::Battery);
    assert!(
        reason.reason.contains("BAT0") && reason.reason.contains("power_now: missing"),
        "{}",
        reason.reason
    );
    assert!(!reason.reason.contains("hid-mouse"), "peripheral batteries are not candidates");

    // Garbage power_now: current × voltage is used instead.
    let tree = TempTree::new("bat-garbage");
    battery(
        &tree.root,
        "BAT1",
        &[
            ("status", "Discharging"),
            ("power_now", "lots"),
            ("current_now", "500000"),
            ("voltage_now", "4000000"),
        ],
    );
    let sim = Sim::new();
    let meter = EnergyMeter::new(sim.config(EnergySource::Auto, &tree.root)).unwrap();
    assert_eq!(meter.source_kind(), SourceKind::Battery);
    let r = sim.window(&meter, "cv", 0.3, STEP);
    assert_close(r.joules, 2.0 * r.duration_s, 0.01, "current × voltage after garbage power_now");
}
