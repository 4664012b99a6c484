//! Streaming text to the app with few foreign calls: a JNA upcall costs 0.1 to 1 ms (JNA
//! builds its argument structures by reflection), so pieces are gathered and handed over
//! at most once per [`MIN_INTERVAL`] and per [`MAX_PIECES`] pieces, and never later than
//! [`MAX_DELAY`] after the last call (so a slow phone still shows text promptly), and once
//! more at the end. On the default model on a laptop core that is one call per ~16 tokens
//! (~90 ms); on a phone decoding at 20-40 tokens/s the 100 ms bound sets the pace.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives the answer's text as it is generated (from the thread running the turn).
#[uniffi::export(with_foreign)]
pub trait TokenListener: Send + Sync {
    /// The next piece of the answer: whole UTF-8 text, one or more tokens long.
    fn on_text(&self, text: String);
}

/// No two calls closer than this...
pub const MIN_INTERVAL: Duration = Duration::from_millis(30);
/// ...nor fewer pieces than this apart...
pub const MAX_PIECES: usize = 16;
/// ...unless text has waited this long since the last call.
pub const MAX_DELAY: Duration = Duration::from_millis(100);

/// A clock, so that tests can drive the coalescer with fake time.
pub(crate) trait Clock {
    fn now(&self) -> Instant;
}

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Gathers pieces and decides when to flush them.
pub(crate) struct Coalescer<C: Clock> {
    clock: C,
    pending: String,
    pieces: usize,
    last_flush: Instant,
}

impl<C: Clock> Coalescer<C> {
    pub fn new(clock: C) -> Self {
        let last_flush = clock.now();
        Self { clock, pending: String::new(), pieces: 0, last_flush }
    }

    /// Adds a piece; returns the text to hand over now, if it is time.
    pub fn push(&mut self, piece: &str) -> Option<String> {
        if piece.is_empty() {
            return None;
        }
        self.pending.push_str(piece);
        self.pieces += 1;
        let now = self.clock.now();
        let waited = now.duration_since(self.last_flush);
        if (self.pieces >= MAX_PIECES && waited >= MIN_INTERVAL) || waited >= MAX_DELAY {
            self.last_flush = now;
            self.pieces = 0;
            return Some(std::mem::take(&mut self.pending));
        }
        None
    }

    /// What is left at the end of the turn.
    pub fn finish(&mut self) -> Option<String> {
        self.pieces = 0;
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

/// Time spent inside the app's listener, for the report: wall-clock, and CPU time of the
/// calling thread (which, unlike the wall clock, excludes waiting for a core that other
/// processes hold).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallbackStats {
    pub calls: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
}

/// CPU time consumed by the calling thread so far, in seconds (0 where unavailable).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is supported on Linux, Android and Apple platforms.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Feeds a listener through a coalescer and times each call.
pub(crate) struct Stream {
    listener: Option<Arc<dyn TokenListener>>,
    coalescer: Coalescer<SystemClock>,
    pub stats: CallbackStats,
}

impl Stream {
    pub fn new(listener: Option<Arc<dyn TokenListener>>) -> Self {
        Self { listener, coalescer: Coalescer::new(SystemClock), stats: CallbackStats::default() }
    }

    pub fn push(&mut self, piece: &str) {
        if self.listener.is_some()
            && let Some(text) = self.coalescer.push(piece)
        {
            self.deliver(text);
        }
    }

    pub fn finish(&mut self) {
        if self.listener.is_some()
            && let Some(text) = self.coalescer.finish()
        {
            self.deliver(text);
        }
    }

    fn deliver(&mut self, text: String) {
        if let Some(listener) = &self.listener {
            let cpu_start = thread_cpu_seconds();
            let start = Instant::now();
            listener.on_text(text);
            self.stats.calls += 1;
            self.stats.seconds += start.elapsed().as_secs_f64();
            self.stats.cpu_seconds += (thread_cpu_seconds() - cpu_start).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[derive(Clone)]
    struct FakeClock {
        start: Instant,
        offset_ms: Rc<Cell<u64>>,
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.start + Duration::from_millis(self.offset_ms.get())
        }
    }

    fn fake() -> (FakeClock, Rc<Cell<u64>>) {
        let offset = Rc::new(Cell::new(0));
        (FakeClock { start: Instant::now(), offset_ms: Rc::clone(&offset) }, offset)
    }

    #[test]
    fn pieces_flush_every_sixteen_at_most_every_thirty_ms() {
        let (clock, t) = fake();
        let mut c = Coalescer::new(clock);
        let mut out = Vec::new();
        for i in 0..40 {
            t.set(i * 5); // 5 ms per piece: 16 pieces take 80 ms
            out.extend(c.push(&i.to_string()));
        }
        out.extend(c.finish());
        assert_eq!(
            out,
            ["0123456789101112131415", "16171819202122232425262728293031", "3233343536373839"]
        );
        // 1 ms per piece: 16 pieces are there before 30 ms have passed.
        let (clock, t) = fake();
        let mut c = Coalescer::new(clock);
        let mut first = None;
        for i in 0..40u64 {
            t.set(i);
            if let Some(s) = c.push("x") {
                first.get_or_insert((i, s.len()));
            }
        }
        assert_eq!(first, Some((30, 31)));
    }

    #[test]
    fn slow_pieces_flush_after_a_hundred_ms() {
        let (clock, t) = fake();
        let mut c = Coalescer::new(clock);
        t.set(10);
        assert_eq!(c.push("a"), None);
        t.set(99);
        assert_eq!(c.push("b"), None);
        t.set(100);
        assert_eq!(c.push("c").as_deref(), Some("abc"));
        t.set(150);
        assert_eq!(c.push("d"), None);
        t.set(400);
        assert_eq!(c.push("e").as_deref(), Some("de"));
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn nothing_is_lost_or_reordered() {
        let (clock, t) = fake();
        let mut c = Coalescer::new(clock);
        let pieces: Vec<String> = (0..100).map(|i| format!("é{i} ")).collect();
        let mut out = String::new();
        let mut calls = 0;
        for (i, p) in pieces.iter().enumerate() {
            t.set((i as u64 * 7) % 50 + i as u64 * 3);
            if let Some(s) = c.push(p) {
                out.push_str(&s);
                calls += 1;
            }
            assert_eq!(c.push(""), None, "empty pieces are ignored");
        }
        out.extend(c.finish());
        assert_eq!(out, pieces.concat());
        // The clock runs to ~350 ms: at most one call per 30 ms.
        assert!(calls <= 350 / 30 + 1, "{calls} calls");
    }
}
