//! The numeric core of the live sources: compensated summation, the cumulative-energy curve
//! of one sensor channel, and an estimate of how often the sensor behind it updates.
//!
//! Every channel becomes a curve of (time, cumulative joules) points. A power channel
//! (watts) adds a point at every sample, integrated by trapezoid. A counter channel (an
//! energy counter the hardware advances) adds a point only when the counter moves, stamped
//! with the time it was seen to move, so a slowly updating counter is interpolated between
//! its updates instead of being read as a staircase. A window's energy is the curve's value
//! at its end minus its value at its start.

use std::collections::VecDeque;

/// Neumaier-compensated running sum: keeps full f64 precision over millions of small terms
/// added to a large total (hours of 10 Hz samples).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// What a channel's raw values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelKind {
    /// Instantaneous watts, integrated by the meter.
    Power,
    /// Cumulative joules kept by the sensor (already unwrapped).
    Counter,
}

/// Where a window's start sits on a channel's curve: known, or waiting for the next point
/// after time `t` so it can be interpolated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Anchor {
    Resolved(f64),
    Pending(f64),
}

/// How often a sensor updates, as far as the meter has seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UpdateRate {
    /// Not enough updates seen yet (or the value never changed).
    Unknown,
    /// Nearly every poll saw a new value: the sensor is at least as fast as the polling.
    FasterThanPolling { poll_hz: f64 },
    /// Median seconds between observed updates.
    Interval(f64),
}

/// A window shorter than this many sensor updates is flagged as too short for its sensor.
pub(crate) const MIN_UPDATES_PER_WINDOW: f64 = 5.0;

impl UpdateRate {
    pub(crate) fn hz(self) -> Option<f64> {
        match self {
            UpdateRate::Unknown => None,
            UpdateRate::FasterThanPolling { poll_hz } => Some(poll_hz),
            UpdateRate::Interval(s) if s > 0.0 => Some(1.0 / s),
            UpdateRate::Interval(_) => None,
        }
    }

    /// Whether a window of `duration_s` is too short to trust this sensor over.
    /// `changes_in_window` is how often the value moved inside the window.
    pub(crate) fn too_slow_for(
        self,
        kind: ChannelKind,
        duration_s: f64,
        poll_s: f64,
        changes_in_window: u64,
    ) -> bool {
        match self {
            UpdateRate::FasterThanPolling { .. } => false,
            UpdateRate::Interval(interval) => duration_s < MIN_UPDATES_PER_WINDOW * interval,
            // A counter that has not moved twice inside the window cannot vouch for it; a
            // steady power reading is only suspect if the window holds too few polls.
            UpdateRate::Unknown => match kind {
                ChannelKind::Counter => changes_in_window < 2,
                ChannelKind::Power => duration_s < MIN_UPDATES_PER_WINDOW * poll_s,
            },
        }
    }
}

const RATE_HISTORY: usize = 32;

/// Update intervals a curve may be extrapolated past its last point.
const EXTRAPOLATION_INTERVALS: f64 = 4.0;

/// Recent observation times and whether each saw a new value.
#[derive(Debug, Default)]
struct RateTracker {
    last_change_t: Option<f64>,
    intervals: VecDeque<f64>,
    recent: VecDeque<(f64, bool)>,
}

impl RateTracker {
    fn record(&mut self, t: f64, changed: bool) {
        if changed {
            if let Some(last) = self.last_change_t {
                push_bounded(&mut self.intervals, t - last);
            }
            self.last_change_t = Some(t);
        }
        push_bounded(&mut self.recent, (t, changed));
    }

    fn estimate(&self) -> UpdateRate {
        let n = self.recent.len();
        let changed = self.recent.iter().filter(|(_, c)| *c).count();
        if n >= 8 && changed * 10 >= n * 9 {
            let span = self.recent.back().map(|r| r.0).unwrap_or(0.0)
                - self.recent.front().map(|r| r.0).unwrap_or(0.0);
            if span > 0.0 {
                return UpdateRate::FasterThanPolling { poll_hz: (n - 1) as f64 / span };
            }
        }
        if self.intervals.len() >= 2 {
            let mut sorted: Vec<f64> = self.intervals.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            return UpdateRate::Interval(sorted[sorted.len() / 2]);
        }
        UpdateRate::Unknown
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T) {
    if queue.len() == RATE_HISTORY {
        queue.pop_front();
    }
    queue.push_back(value);
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t: f64,
    cum: f64,
}

/// One sensor channel's cumulative-energy curve. Only the last two points are kept: window
/// starts are resolved as soon as the point after them arrives, so memory stays constant
/// however long the run.
#[derive(Debug)]
pub(crate) struct Channel {
    kind: ChannelKind,
    integral: CompensatedSum,
    last_sample: Option<(f64, f64)>,
    prev_point: Option<Point>,
    last_point: Option<Point>,
    changes: u64,
    rate: RateTracker,
}

impl Channel {
    pub(crate) fn new(kind: ChannelKind) -> Self {
        Channel {
            kind,
            integral: CompensatedSum::default(),
            last_sample: None,
            prev_point: None,
            last_point: None,
            changes: 0,
            rate: RateTracker::default(),
        }
    }

    pub(crate) fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// How many times the raw value has changed since the channel started.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    pub(crate) fn update_rate(&self) -> UpdateRate {
        self.rate.estimate()
    }

    /// Feeds one sample taken at `t` seconds. Returns whether a new curve point was added.
    /// Samples that do not advance time, or are not finite, are ignored.
    pub(crate) fn observe(&mut self, t: f64, raw: f64) -> bool {
        if !t.is_finite() || !raw.is_finite() {
            return false;
        }
        let previous = self.last_sample;
        if let Some((last_t, _)) = previous
            && t <= last_t
        {
            return false;
        }
        let changed = previous.is_some_and(|(_, last_raw)| last_raw != raw);
        if previous.is_some() {
            self.rate.record(t, changed);
        }
        if changed {
            self.changes += 1;
        }
        self.last_sample = Some((t, raw));
        let cum = match self.kind {
            ChannelKind::Power => {
                if let Some((last_t, last_w)) = previous {
                    self.integral.add(0.5 * (last_w + raw) * (t - last_t));
                }
                self.integral.value()
            }
            // A counter's first value was set at some unknown earlier update, so only
            // observed changes become points.
            ChannelKind::Counter => {
                if !changed {
                    return false;
                }
                raw
            }
        };
        self.prev_point = self.last_point;
        self.last_point = Some(Point { t, cum });
        true
    }

    /// Anchors a window starting at `t`: resolved now if a point sits exactly there.
    pub(crate) fn anchor_at(&self, t: f64) -> Anchor {
        match self.last_point {
            Some(p) if p.t == t => Anchor::Resolved(p.cum),
            _ => Anchor::Pending(t),
        }
    }

    /// Resolves a pending anchor once the curve has a point at or after it and a point
    /// before that: interpolated inside the segment, or, for a window that began before the
    /// channel's first point, extrapolated back along the first segment (see
    /// `extrapolation_cap`).
    pub(crate) fn resolve(&self, anchor: &mut Anchor) {
        let Anchor::Pending(t) = *anchor else { return };
        let (Some(prev), Some(last)) = (self.prev_point, self.last_point) else { return };
        if last.t < t {
            return;
        }
        let value = if prev.t <= t {
            lerp(prev, last, t)
        } else {
            let segment = last.t - prev.t;
            let slope = if segment > 0.0 { (last.cum - prev.cum) / segment } else { 0.0 };
            prev.cum - slope * (prev.t - t).min(self.extrapolation_cap(segment))
        };
        *anchor = Anchor::Resolved(value);
    }

    /// How far past the last point the curve is extrapolated at the last slope: a few
    /// update intervals, enough to bridge a late update; a sensor silent for longer has
    /// stalled, and guessing further would not be measuring.
    fn extrapolation_cap(&self, segment: f64) -> f64 {
        let interval = match self.rate.estimate() {
            UpdateRate::Interval(interval) => interval.max(segment),
            UpdateRate::FasterThanPolling { poll_hz } if poll_hz > 0.0 => {
                (1.0 / poll_hz).max(segment)
            }
            _ => segment,
        };
        EXTRAPOLATION_INTERVALS * interval
    }

    /// The curve's value at `t` (at or after the second-to-last point): interpolated inside
    /// the last segment, or extrapolated past the last point at the last segment's slope
    /// (see `extrapolation_cap`).
    pub(crate) fn value_at(&self, t: f64) -> Option<f64> {
        let last = self.last_point?;
        let Some(prev) = self.prev_point else { return Some(last.cum) };
        if t <= last.t {
            return Some(if t <= prev.t { prev.cum } else { lerp(prev, last, t) });
        }
        let segment = last.t - prev.t;
        if segment <= 0.0 {
            return Some(last.cum);
        }
        let slope = (last.cum - prev.cum) / segment;
        Some(last.cum + slope * (t - last.t).min(self.extrapolation_cap(segment)))
    }

    /// Energy between a window's anchor and `end`.
    pub(crate) fn energy_since(&self, anchor: Anchor, end: f64) -> f64 {
        let start = match anchor {
            Anchor::Resolved(value) => Some(value),
            Anchor::Pending(t) => self.value_at(t),
        };
        match (start, self.value_at(end)) {
            (Some(start), Some(end)) => end - start,
            _ => 0.0,
        }
    }
}

fn lerp(a: Point, b: Point, t: f64) -> f64 {
    let span = b.t - a.t;
    if span <= 0.0 {
        return b.cum;
    }
    a.cum + (b.cum - a.cum) * (t - a.t) / span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_precision_where_naive_drifts() {
        let mut compensated = CompensatedSum::default();
        let mut naive = 0.0f64;
        compensated.add(1.0e9);
        naive += 1.0e9;
        for _ in 0..10_000_000 {
            compensated.add(0.1);
            naive += 0.1;
        }
        let exact = 1.0e9 + 1.0e6;
        assert!((compensated.value() - exact).abs() < 1e-6, "{}", compensated.value());
        assert!((naive - exact).abs() > 1e-3, "naive sum unexpectedly exact: {naive}");
    }

    #[test]
    fn ten_hours_of_power_samples_integrate_exactly() {
        // 10 h at 10 Hz of 7.3 W; a window over the last 2 s.
        let mut channel = Channel::new(ChannelKind::Power);
        let samples = 360_000u64;
        let mut anchor = None;
        for i in 0..=samples {
            let t = i as f64 * 0.1;
            channel.observe(t, 7.3);
            if i == samples - 20 {
                anchor = Some(channel.anchor_at(t));
            }
        }
        let end = samples as f64 * 0.1;
        let total = channel.value_at(end).unwrap();
        assert!((total - 7.3 * 36_000.0).abs() < 1e-6, "total {total}");
        let window = channel.energy_since(anchor.unwrap(), end);
        assert!((window - 14.6).abs() < 1e-8, "window {window}");
    }

    #[test]
    fn trapezoid_integrates_a_ramp_exactly() {
        let mut channel = Channel::new(ChannelKind::Power);
        for i in 0..=100 {
            let t = i as f64 * 0.01;
            channel.observe(t, 2.0 + 3.0 * t);
        }
        let joules = channel.value_at(1.0).unwrap();
        assert!((joules - 3.5).abs() < 1e-12, "{joules}");
    }

    #[test]
    fn slow_counter_is_interpolated_between_updates() {
        // Counter at 4 W updating every 0.25 s, polled every 0.01 s.
        let mut channel = Channel::new(ChannelKind::Counter);
        let mut anchor = None;
        for i in 0..=300 {
            let t = i as f64 * 0.01;
            let counter = 4.0 * (t / 0.25).floor() * 0.25;
            channel.observe(t, counter);
            if i == 37 {
                anchor = Some(channel.anchor_at(t));
            }
            if let Some(a) = anchor.as_mut() {
                channel.resolve(a);
            }
        }
        let joules = channel.energy_since(anchor.unwrap(), 2.93);
        let truth = 4.0 * (2.93 - 0.37);
        assert!((joules - truth).abs() / truth < 0.01, "{joules} vs {truth}");
        match channel.update_rate() {
            UpdateRate::Interval(interval) => assert!((interval - 0.25).abs() < 1e-9, "{interval}"),
            other => panic!("expected an update interval, got {other:?}"),
        }
    }

    #[test]
    fn window_opened_before_the_first_counter_update_is_extrapolated_back() {
        // 6 W counter updating every 1/3 s; the meter starts at 0.05 (stale value), the
        // window at 0.1, before the first update the meter sees (at 1/3 s).
        let mut channel = Channel::new(ChannelKind::Counter);
        let mut anchor = None;
        for i in 5..=250 {
            let t = i as f64 * 0.01;
            channel.observe(t, 6.0 * (t * 3.0).floor() / 3.0);
            if i == 10 {
                anchor = Some(channel.anchor_at(t));
            }
            if let Some(a) = anchor.as_mut() {
                channel.resolve(a);
            }
        }
        let anchor = anchor.unwrap();
        assert!(matches!(anchor, Anchor::Resolved(_)), "{anchor:?}");
        let joules = channel.energy_since(anchor, 2.5);
        let truth = 6.0 * 2.4;
        assert!((joules - truth).abs() / truth < 0.01, "{joules} vs {truth}");
    }

    #[test]
    fn counter_changing_every_poll_is_faster_than_polling() {
        let mut channel = Channel::new(ChannelKind::Counter);
        for i in 0..40 {
            channel.observe(i as f64 * 0.02, i as f64 * 0.3);
        }
        match channel.update_rate() {
            UpdateRate::FasterThanPolling { poll_hz } => assert!((poll_hz - 50.0).abs() < 1e-6),
            other => panic!("expected faster than polling, got {other:?}"),
        }
        assert!(!channel.update_rate().too_slow_for(ChannelKind::Counter, 0.05, 0.02, 2));
    }

    #[test]
    fn too_slow_rules() {
        let rate = UpdateRate::Interval(1.0 / 3.0);
        assert!(rate.too_slow_for(ChannelKind::Counter, 0.2, 0.005, 0));
        assert!(!rate.too_slow_for(ChannelKind::Counter, 2.0, 0.005, 6));
        assert!(UpdateRate::Unknown.too_slow_for(ChannelKind::Counter, 0.2, 0.005, 1));
        assert!(!UpdateRate::Unknown.too_slow_for(ChannelKind::Power, 1.0, 0.01, 0));
        assert!(UpdateRate::Unknown.too_slow_for(ChannelKind::Power, 0.03, 0.01, 0));
    }

    #[test]
    fn garbage_and_backwards_samples_are_ignored() {
        let mut channel = Channel::new(ChannelKind::Power);
        assert!(channel.observe(0.0, 1.0));
        assert!(!channel.observe(0.5, f64::NAN));
        assert!(!channel.observe(-1.0, 5.0));
        assert!(channel.observe(1.0, 1.0));
        assert_eq!(channel.value_at(1.0), Some(1.0));
    }
}
