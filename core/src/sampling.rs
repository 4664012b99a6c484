//! Choosing the next token from logits: greedy, or penalties → top-k → top-p → min-p →
//! temperature → a seeded draw (llama.cpp's default order). Deterministic for a seed.

use serde::{Deserialize, Serialize};

/// Sampling settings. The defaults are greedy decoding with no penalties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 means greedy (always the most likely token).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    pub top_p: f32,
    /// Drop tokens less likely than min_p × the most likely one (0 = off).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// Subtract this from the logits of tokens already seen (0 = off).
    pub presence_penalty: f32,
    /// Subtract this × count from the logits of tokens already seen (0 = off).
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: usize,
    pub seed: u64,
}

impl SamplingParams {
    /// The defaults, as a constant front ends can take their own defaults from.
    pub const DEFAULT: Self = Self {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        penalty_last_n: 64,
        seed: 0x004a_6f75_6c65,
    };
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A sampling parameter out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid sampling parameter: {0}")]
pub struct SamplingError(pub String);

impl SamplingParams {
    /// Checks the ranges; a clear error instead of a silent misbehaviour.
    pub fn validate(&self) -> Result<(), SamplingError> {
        let finite = [
            self.temperature,
            self.top_p,
            self.min_p,
            self.repeat_penalty,
            self.presence_penalty,
            self.frequency_penalty,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return Err(SamplingError("sampling parameters must be finite numbers".into()));
        }
        if self.temperature < 0.0 {
            return Err(SamplingError(format!("temperature {} must be >= 0", self.temperature)));
        }
        if !(0.0..=1.0).contains(&self.top_p) || self.top_p == 0.0 {
            return Err(SamplingError(format!("top_p {} must be in (0, 1]", self.top_p)));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(SamplingError(format!("min_p {} must be in [0, 1]", self.min_p)));
        }
        if self.repeat_penalty <= 0.0 {
            return Err(SamplingError(format!(
                "repeat_penalty {} must be > 0",
                self.repeat_penalty
            )));
        }
        Ok(())
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// A small, fast, seedable generator (SplitMix64): sampling needs reproducibility, not
/// cryptographic strength.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller), for synthetic weights and tests.
    pub fn gaussian(&mut self) -> f32 {
        let u1 = self.next_f64().max(1e-300);
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

/// Samples tokens with fixed parameters; buffers are reused between calls.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    candidates: Vec<(u32, f32)>,
    counts: std::collections::HashMap<u32, u32>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = Rng::new(params.seed);
        Self { params, rng, candidates: Vec::new(), counts: Default::default() }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Where the random sequence stands (saved with a session).
    pub fn rng_state(&self) -> u64 {
        self.rng.0
    }

    /// A sampler whose random sequence continues from `state` (see [`Sampler::rng_state`]).
    pub fn resumed(params: SamplingParams, state: u64) -> Self {
        Self { rng: Rng(state), ..Self::new(params) }
    }

    /// Restarts the random sequence from the seed.
    pub fn reseed(&mut self, seed: u64) {
        self.params.seed = seed;
        self.rng = Rng::new(seed);
    }

    /// Picks the next token. `logits` is modified (penalties applied); `history` is the
    /// conversation so far, which the penalties look at.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        self.apply_penalties(logits, history);
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let p = &self.params;
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        // Sort descending by logit; ties by id keep the order deterministic.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, by_logit);
            c.truncate(p.top_k);
        }
        c.sort_unstable_by(by_logit);
        // Probabilities at temperature 1 decide top-p and min-p (as llama.cpp does).
        softmax_in_place(c, 1.0);
        if p.top_p < 1.0 {
            let mut cum = 0.0;
            let mut keep = c.len();
            for (i, &(_, prob)) in c.iter().enumerate() {
                cum += prob;
                if cum >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            let floor = c[0].1 * p.min_p;
            let keep = c.iter().take_while(|x| x.1 >= floor).count().max(1);
            c.truncate(keep);
        }
        // Back to logits (log of kept probabilities), then temperature.
        for x in c.iter_mut() {
            x.1 = x.1.max(f32::MIN_POSITIVE).ln();
        }
        softmax_in_place(c, p.temperature);
        let r = self.rng.next_f64() as f32;
        let mut cum = 0.0;
        for &(id, prob) in c.iter() {
            cum += prob;
            if r < cum {
                return id;
            }
        }
        c.last().map_or(0, |x| x.0)
    }

    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        if p.repeat_penalty == 1.0 && p.presence_penalty == 0.0 && p.frequency_penalty == 0.0 {
            return;
        }
        let recent = &history[history.len().saturating_sub(p.penalty_last_n)..];
        self.counts.clear();
        for &t in recent {
            *self.counts.entry(t).or_insert(0) += 1;
        }
        for (&t, &n) in &self.counts {
            let Some(l) = logits.get_mut(t as usize) else { continue };
            if p.repeat_penalty != 1.0 {
                *l = if *l > 0.0 { *l / p.repeat_penalty } else { *l * p.repeat_penalty };
            }
            *l -= p.presence_penalty + p.frequency_penalty * n as f32;
        }
    }
}

/// Index of the largest logit (the lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Converts `(id, logit)` pairs to probabilities at `temperature`, in place.
fn softmax_in_place(c: &mut [(u32, f32)], temperature: f32) {
    let max = c.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for x in c.iter_mut() {
        x.1 = ((x.1 - max) / temperature).exp();
        sum += x.1 as f64;
    }
    for x in c.iter_mut() {
        x.1 = (x.1 as f64 / sum) as f32;
    }
}

/// Natural-log probabilities of a full logit vector (computed in f64).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln() + max;
    logits.iter().map(|&l| (l as f64 - lse) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
        let mut p = SamplingParams::default();
        f(&mut p);
        p
    }

    #[test]
    fn greedy_takes_the_argmax() {
        let mut s = Sampler::new(SamplingParams::default());
        let mut logits = vec![0.1, 2.0, -1.0, 1.9];
        assert_eq!(s.sample(&mut logits, &[]), 1);
    }

    #[test]
    fn same_seed_same_tokens_other_seed_differs() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(params(|p| {
                p.temperature = 1.0;
                p.seed = seed;
            }));
            (0..50).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(params(|p| {
            p.temperature = 5.0;
            p.top_k = 1;
        }));
        for _ in 0..20 {
            assert_eq!(s.sample(&mut [0.0, 3.0, 2.9], &[]), 1);
        }
    }

    #[test]
    fn top_p_and_min_p_cut_the_tail() {
        // Probabilities ~ [0.665, 0.245, 0.090]: top_p 0.6 keeps only the first.
        let mut s = Sampler::new(params(|p| {
            p.temperature = 1.0;
            p.top_p = 0.6;
        }));
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [2.0, 1.0, 0.0], &[]), 0);
        }
        // min_p 0.5: token 1 has 0.37 of the top probability, so it is dropped too.
        let mut s = Sampler::new(params(|p| {
            p.temperature = 1.0;
            p.min_p = 0.5;
        }));
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [2.0, 1.0, 0.0], &[]), 0);
        }
    }

    #[test]
    fn temperature_draws_follow_the_distribution() {
        let mut s = Sampler::new(params(|p| p.temperature = 1.0));
        let mut hits = [0usize; 2];
        for _ in 0..20_000 {
            hits[s.sample(&mut [0.0, (3.0f32).ln()], &[]) as usize] += 1;
        }
        let frac = hits[1] as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.02, "got {frac}");
    }

    #[test]
    fn penalties_push_seen_tokens_down() {
        let mut s = Sampler::new(params(|p| p.repeat_penalty = 2.0));
        let mut logits = vec![1.0, 1.5, -1.0];
        assert_eq!(s.sample(&mut logits, &[1]), 0);
        assert_eq!(logits, vec![1.0, 0.75, -1.0]);
        let mut s = Sampler::new(params(|p| p.presence_penalty = 1.0));
        let mut logits = vec![1.0, 1.5];
        assert_eq!(s.sample(&mut logits, &[1, 1]), 0);
    }

    #[test]
    fn validate_rejects_bad_ranges() {
        assert!(params(|p| p.temperature = -1.0).validate().is_err());
        assert!(params(|p| p.top_p = 0.0).validate().is_err());
        assert!(params(|p| p.min_p = 2.0).validate().is_err());
        assert!(params(|p| p.temperature = f32::NAN).validate().is_err());
        assert!(SamplingParams::default().validate().is_ok());
    }

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f64 = lp.iter().map(|&x| (x as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
