//! Throughput measurement the way llama-bench does it: `pp N` runs an N-token prompt
//! through an empty cache in batches, `tg N` generates N tokens one at a time after a
//! one-token prompt; token ids are random (seeded), tokenization and sampling are not
//! timed, one warm-up run precedes the timed ones.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::turn::prefill;
use super::{Engine, EvictOptions};
use crate::energy::EnergyReading;
use crate::error::{Error, Result};
use crate::model::profile::OpTotals;
use crate::model::{self, ForwardState, KvCache, Logits, forward};
use crate::prune::{self, Protected, PruneOptions, Strategy};
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

/// What surrounds a case: tokens already in the cache, pruning of a prompt case,
/// eviction in a small cache for a generation case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchSetup {
    /// Random tokens prefilled, untimed, before each repetition (llama-bench's `-d`).
    pub depth: usize,
    /// pp cases: score the prompt and prefill only the kept tokens (both timed).
    pub prune: Option<PruneOptions>,
    /// tg cases: generate in a cache of `context` slots, evicting the oldest after the
    /// sinks each time it fills (timed: the re-rotation is part of decoding).
    pub evict: Option<(EvictOptions, usize)>,
}

/// Timings of the repetitions of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchTimes {
    pub case: BenchCase,
    /// Seconds of each timed repetition.
    pub seconds: Vec<f64>,
    /// pp with pruning: prompt tokens prefilled after scoring (last repetition).
    pub prompt_kept: Option<usize>,
    /// tg with eviction: cache slots evicted per repetition.
    pub evicted_tokens: usize,
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
    run_case_with(engine, case, &BenchSetup::default(), reps, around)
}

/// [`run_case_with`] with the engine's energy meter, when it has one, reading a window
/// around each timed repetition (one reading per repetition, none without a meter).
pub fn run_case_metered(
    engine: &Engine,
    case: BenchCase,
    setup: &BenchSetup,
    reps: usize,
) -> Result<(BenchTimes, Vec<EnergyReading>)> {
    let mut readings = Vec::new();
    let times =
        run_case_with(engine, case, setup, reps, &mut |case, once| match engine.energy_meter() {
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

/// [`run_case`] in a `setup`: each repetition first prefills `setup.depth` random
/// tokens, untimed.
pub fn run_case_with(
    engine: &Engine,
    case: BenchCase,
    setup: &BenchSetup,
    reps: usize,
    around: &mut TimedRepetition<'_>,
) -> Result<BenchTimes> {
    let mut run = CaseRun::new(engine, case, setup)?;
    run.once(false)?;
    let mut seconds = Vec::with_capacity(reps);
    for _ in 0..reps {
        seconds.push(around(case, &mut || Ok(run.once(false)?.0))?);
    }
    let (prompt_kept, evicted_tokens) = (run.kept, run.evicted);
    Ok(BenchTimes { case, seconds, prompt_kept, evicted_tokens })
}

/// One case's cache, activations and token stream, reused by every repetition.
pub(crate) struct CaseRun<'a> {
    engine: &'a Engine,
    case: BenchCase,
    setup: BenchSetup,
    batch: usize,
    kv: KvCache,
    state: ForwardState,
    rng: Rng,
    /// Prompt tokens kept by pruning, slots evicted: of the last repetition.
    kept: Option<usize>,
    evicted: usize,
}

impl<'a> CaseRun<'a> {
    pub(crate) fn new(engine: &'a Engine, case: BenchCase, setup: &BenchSetup) -> Result<Self> {
        let model = engine.model();
        let n = case.tokens();
        if n == 0 {
            return Err(Error::InvalidArgument(format!("{} has no tokens", case.name())));
        }
        let depth = setup.depth;
        let context = match (case, setup.evict) {
            (BenchCase::Prompt(n), _) => depth + n,
            (BenchCase::Generate(_), Some((evict, context))) => {
                evict.validate()?;
                if context <= depth + evict.sinks + 1 {
                    return Err(Error::InvalidArgument(format!(
                        "an eviction cache of {context} slots has no room after the depth \
                         ({depth}) and the sinks ({})",
                        evict.sinks
                    )));
                }
                context
            }
            (BenchCase::Generate(n), None) => depth + n + 1,
        };
        let batch = engine.options().batch.min(n);
        let kv = KvCache::with_type(&model.config, context, engine.kv_type())?;
        let state = ForwardState::new(model, batch);
        let setup = setup.clone();
        Ok(Self {
            engine,
            case,
            setup,
            batch,
            kv,
            state,
            rng: Rng::new(1234),
            kept: None,
            evicted: 0,
        })
    }

    fn random_tokens(&mut self, k: usize) -> Vec<u32> {
        let vocab = self.engine.model().config.n_vocab as u64;
        (0..k).map(|_| (self.rng.next_u64() % vocab) as u32).collect()
    }

    /// One repetition: the untimed depth prefill, then the timed case. With `profile`,
    /// the timed part's per-operation totals come back with its seconds.
    pub(crate) fn once(&mut self, profile: bool) -> Result<(f64, Option<OpTotals>)> {
        let (model, pool) = (self.engine.model(), self.engine.pool());
        self.kv.clear();
        let prefix = self.random_tokens(self.setup.depth);
        for chunk in prefix.chunks(self.batch.max(1)) {
            forward(model, pool, &mut self.state, &mut self.kv, chunk, Logits::None)?;
        }
        let tokens = match self.case {
            BenchCase::Prompt(n) => self.random_tokens(n),
            BenchCase::Generate(n) => self.random_tokens(n + 1),
        };
        let (state, kv) = (&mut self.state, &mut self.kv);
        let seconds = match self.case {
            BenchCase::Prompt(_) => {
                if profile {
                    state.profile_on();
                }
                let start = Instant::now();
                let protected = Protected::with_specials(&tokens, |_| false);
                match &self.setup.prune {
                    // Prefill everything, then compress the cache (timed as a turn pays it).
                    Some(opts @ PruneOptions { strategy: Strategy::SnapKv { .. }, .. }) => {
                        let never = &|| false;
                        let c = prune::snapkv::prefill_compress(
                            model, pool, state, kv, &tokens, &protected, opts, never,
                        )?;
                        self.kept = c.map(|c| c.keep.iter().filter(|k| **k).count());
                    }
                    Some(PruneOptions { strategy: Strategy::Segment, .. }) => {
                        return Err(Error::InvalidArgument(
                            "bench --prune segment: segment ranks sentences by their meaning, \
                             and bench prompts are random tokens; measure it with \
                             `joule eval prune --prune segment`"
                                .into(),
                        ));
                    }
                    Some(opts) => {
                        let (p, none) = (&protected, None);
                        let keep =
                            prune::choose(model, pool, state, kv, &tokens, p, &[], none, opts)?;
                        let kept: Vec<u32> = tokens
                            .iter()
                            .zip(&keep)
                            .filter(|(_, k)| **k)
                            .map(|(t, _)| *t)
                            .collect();
                        self.kept = Some(kept.len());
                        prefill(model, pool, state, kv, &kept, &|| false)?;
                    }
                    None => {
                        prefill(model, pool, state, kv, &tokens, &|| false)?;
                    }
                }
                start.elapsed().as_secs_f64()
            }
            BenchCase::Generate(_) => {
                forward(model, pool, state, kv, &tokens[..1], Logits::Last)?;
                if profile {
                    state.profile_on();
                }
                self.evicted = 0;
                let start = Instant::now();
                for t in &tokens[1..] {
                    if let Some((evict, _)) = self.setup.evict.filter(|_| kv.free() == 0) {
                        self.evicted += evict_oldest(model, kv, &evict)?;
                    }
                    forward(model, pool, state, kv, std::slice::from_ref(t), Logits::Last)?;
                }
                start.elapsed().as_secs_f64()
            }
        };
        Ok((seconds, state.profile_off()))
    }
}

/// Frees `evict.free` of a full cache from the oldest slots after the sinks (what a
/// session with eviction does while decoding); returns the slots evicted. Where the
/// sliding-window layers no longer hold the sinks (Gemma 3), only the recent part stays.
fn evict_oldest(model: &model::Model, kv: &mut KvCache, evict: &EvictOptions) -> Result<usize> {
    let (len, sinks) = (kv.len(), evict.sinks.min(kv.len()));
    let n = ((evict.free * kv.capacity() as f64).ceil() as usize).clamp(1, len - sinks);
    let recent = len - sinks - n;
    match model::evict(model, kv, &model::keep_sinks_and_recent(len, sinks, recent)) {
        Err(Error::InvalidArgument(_)) => {
            model::evict(model, kv, &model::keep_sinks_and_recent(len, 0, recent))
        }
        done => done,
    }
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
