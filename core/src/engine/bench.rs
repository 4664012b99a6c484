//! Throughput measurement the way llama-bench does it: `pp N` runs an N-token prompt
//! through an empty cache in batches, `tg N` generates N tokens one at a time after a
//! one-token prompt; token ids are random (seeded), tokenization and sampling are not
//! timed, one warm-up run precedes the timed ones.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Engine;
use super::turn::prefill;
use crate::energy::EnergyReading;
use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Logits, forward};
use crate::sampling::Rng;

/// One benchmark case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchCase {
    /// Prompt processing of this many tokens.
    Prompt(usize),
    /// Generation of this many tokens.
    Generate(usize),
}

impl BenchCase {
    /// llama-bench's name for the case: `pp512`, `tg128`.
    pub fn name(self) -> String {
        match self {
            BenchCase::Prompt(n) => format!("pp{n}"),
            BenchCase::Generate(n) => format!("tg{n}"),
        }
    }

    fn tokens(self) -> usize {
        match self {
            BenchCase::Prompt(n) | BenchCase::Generate(n) => n,
        }
    }
}

/// Timings of the repetitions of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchTimes {
    pub case: BenchCase,
    /// Seconds of each timed repetition.
    pub seconds: Vec<f64>,
}

impl BenchTimes {
    /// Tokens per second of each repetition.
    pub fn tokens_per_s(&self) -> Vec<f64> {
        self.seconds.iter().map(|&s| self.case.tokens() as f64 / s).collect()
    }

    /// Mean and sample standard deviation of the tokens per second.
    pub fn mean_std(&self) -> (f64, f64) {
        mean_std(&self.tokens_per_s())
    }
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Wraps one timed repetition: receives the case and the repetition, returns its seconds.
pub type TimedRepetition<'a> =
    dyn FnMut(BenchCase, &mut dyn FnMut() -> Result<f64>) -> Result<f64> + 'a;

/// Runs `case` once untimed, then `reps` timed repetitions; `around` wraps each timed
/// repetition (energy windows use it) and receives the case and the elapsed seconds.
pub fn run_case(
    engine: &Engine,
    case: BenchCase,
    reps: usize,
    around: &mut TimedRepetition<'_>,
) -> Result<BenchTimes> {
    run_case_at_depth(engine, case, 0, reps, around)
}

/// [`run_case_at_depth`] with the engine's energy meter, when it has one, reading a window
/// around each timed repetition (one reading per repetition, none without a meter).
pub fn run_case_metered(
    engine: &Engine,
    case: BenchCase,
    depth: usize,
    reps: usize,
) -> Result<(BenchTimes, Vec<EnergyReading>)> {
    let mut readings = Vec::new();
    let times = run_case_at_depth(engine, case, depth, reps, &mut |case, once| match engine
        .energy_meter()
    {
        Some(m) => {
            let w = m.begin(&case.name());
            let s = once()?;
            readings.push(m.end(w)?);
            Ok(s)
        }
        None => once(),
    })?;
    Ok((times, readings))
}

/// [`run_case`] after `depth` tokens already in the cache (llama-bench's `-d`): each
/// repetition first prefills `depth` random tokens, untimed.
pub fn run_case_at_depth(
    engine: &Engine,
    case: BenchCase,
    depth: usize,
    reps: usize,
    around: &mut TimedRepetition<'_>,
) -> Result<BenchTimes> {
    let model = engine.model();
    let n = case.tokens();
    if n == 0 {
        return Err(Error::InvalidArgument(format!("{} has no tokens", case.name())));
    }
    let context = depth
        + match case {
            BenchCase::Prompt(n) => n,
            BenchCase::Generate(n) => n + 1,
        };
    let batch = engine.options().batch.min(n);
    let mut kv = KvCache::with_type(&model.config, context, engine.kv_type())?;
    let mut state = ForwardState::new(model, batch);
    let mut rng = Rng::new(1234);
    let vocab = model.config.n_vocab as u64;
    let mut random_tokens =
        |k: usize| -> Vec<u32> { (0..k).map(|_| (rng.next_u64() % vocab) as u32).collect() };
    let mut once = || -> Result<f64> {
        kv.clear();
        let prefix = random_tokens(depth);
        for chunk in prefix.chunks(batch.max(1)) {
            forward(model, engine.pool(), &mut state, &mut kv, chunk, Logits::None)?;
        }
        match case {
            BenchCase::Prompt(n) => {
                let tokens = random_tokens(n);
                let start = Instant::now();
                prefill(model, engine.pool(), &mut state, &mut kv, &tokens, &|| false)?;
                Ok(start.elapsed().as_secs_f64())
            }
            BenchCase::Generate(n) => {
                let tokens = random_tokens(n + 1);
                forward(model, engine.pool(), &mut state, &mut kv, &tokens[..1], Logits::Last)?;
                let start = Instant::now();
                for t in &tokens[1..] {
                    forward(
                        model,
                        engine.pool(),
                        &mut state,
                        &mut kv,
                        std::slice::from_ref(t),
                        Logits::Last,
                    )?;
                }
                Ok(start.elapsed().as_secs_f64())
            }
        }
    };
    once()?;
    let mut seconds = Vec::with_capacity(reps);
    for _ in 0..reps {
        seconds.push(around(case, &mut once)?);
    }
    Ok(BenchTimes { case, seconds })
}

/// Measured memory read bandwidth in bytes per second: every pool thread streams its
/// share of a buffer of `bytes` (far larger than the caches) summing 64-bit words, and
/// the median of `reps` passes is returned.
pub fn read_bandwidth(threads: usize, bytes: usize, reps: usize) -> crate::error::Result<f64> {
    let pool = crate::threads::ThreadPool::new(threads)
        .map_err(|source| crate::error::Error::ThreadStart { threads, source })?;
    Ok(read_bandwidth_on(&pool, bytes, reps))
}

/// [`read_bandwidth`] on a running pool.
pub(crate) fn read_bandwidth_on(
    pool: &crate::threads::ThreadPool,
    bytes: usize,
    reps: usize,
) -> f64 {
    let words = (bytes / 8).max(1 << 16);
    // Distinct values so the pages are really allocated (not the shared zero page).
    let buf: Vec<u64> = (0..words as u64).collect();
    let sink = std::sync::atomic::AtomicU64::new(0);
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            pool.run(&|t, n| {
                let part = &buf[crate::threads::ThreadPool::split(words, t, n)];
                let mut acc = [0u64; 8];
                for chunk in part.chunks_exact(8) {
                    for (a, &x) in acc.iter_mut().zip(chunk) {
                        *a = a.wrapping_add(x);
                    }
                }
                sink.fetch_add(
                    acc.iter().fold(0, |s, &x| s.wrapping_add(x)),
                    std::sync::atomic::Ordering::Relaxed,
                );
            });
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    std::hint::black_box(sink.load(std::sync::atomic::Ordering::Relaxed));
    (words * 8) as f64 / times[times.len() / 2]
}
