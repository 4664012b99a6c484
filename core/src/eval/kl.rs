//! KL divergence of a model from a reference, token by token: `KL(P_ref ‖ Q) = Σ p_ref
//! (log p_ref - log q)` over the whole vocabulary in f64 (no cut-off of small
//! probabilities). Only one f32 per scored token is kept (for the median and
//! percentiles), never the distributions themselves.

use serde::{Deserialize, Serialize};

use super::ppl::PplStats;
use crate::engine::top_k;

/// Tokens of the reference's most likely set compared by |Δ log-prob|.
pub const TOP_COMPARED: usize = 5;

/// Running KL statistics.
#[derive(Debug, Clone, Default)]
pub struct KlStats {
    /// KL of every scored token, in order.
    values: Vec<f32>,
    sum: f64,
    sum2: f64,
    same_top: usize,
    sum_abs_dlogp: f64,
    n_dlogp: usize,
    reference_ppl: PplStats,
}

/// Summary of a KL evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KlReport {
    /// What the distributions were compared against (a file, or "exact").
    pub reference: String,
    pub tokens: usize,
    pub mean: f64,
    /// Standard error of the mean.
    pub mean_stderr: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
    /// Fraction of tokens where both models' most likely token is the same.
    pub top1_agreement: f64,
    /// Mean |log q - log p_ref| over the reference's 5 most likely tokens.
    pub mean_abs_dlogp_top5: f64,
    /// The reference's own perplexity over the same tokens.
    pub reference_ppl: f64,
    pub reference_ppl_stderr: f64,
}

/// KL(P ‖ Q) of two log-probability vectors over the same vocabulary.
pub fn kl_divergence(reference: &[f32], model: &[f32]) -> f64 {
    reference
        .iter()
        .zip(model)
        .map(|(&r, &q)| {
            let p = (r as f64).exp();
            if p > 0.0 { p * (r as f64 - q as f64) } else { 0.0 }
        })
        .sum()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

impl KlStats {
    pub fn with_capacity(tokens: usize) -> Self {
        Self { values: Vec::with_capacity(tokens), ..Self::default() }
    }

    /// Adds one position: the reference's and the model's log-probabilities, and the
    /// token that actually follows (for the reference's perplexity).
    pub fn push(&mut self, reference: &[f32], model: &[f32], next: usize) {
        // Rounding can make a tiny divergence negative; it is never below zero.
        let kl = kl_divergence(reference, model).max(0.0);
        self.values.push(kl as f32);
        self.sum += kl;
        self.sum2 += kl * kl;
        if argmax(reference) == argmax(model) {
            self.same_top += 1;
        }
        for (id, r) in top_k(reference, TOP_COMPARED) {
            self.sum_abs_dlogp += (model[id as usize] as f64 - r as f64).abs();
            self.n_dlogp += 1;
        }
        self.reference_ppl.push(reference[next] as f64);
    }

    pub fn count(&self) -> usize {
        self.values.len()
    }

    pub fn report(mut self, reference: &str) -> KlReport {
        let n = self.values.len();
        let nf = n.max(1) as f64;
        let mean = self.sum / nf;
        let var = self.sum2 / nf - mean * mean;
        self.values.sort_by(f32::total_cmp);
        KlReport {
            reference: reference.to_string(),
            tokens: n,
            mean,
            mean_stderr: if n > 1 && var > 0.0 { (var / (nf - 1.0)).sqrt() } else { 0.0 },
            median: percentile(&self.values, 0.5),
            p99: percentile(&self.values, 0.99),
            max: self.values.last().map_or(0.0, |&v| v as f64),
            top1_agreement: self.same_top as f64 / nf,
            mean_abs_dlogp_top5: self.sum_abs_dlogp / self.n_dlogp.max(1) as f64,
            reference_ppl: self.reference_ppl.ppl(),
            reference_ppl_stderr: self.reference_ppl.ppl_stderr(),
        }
    }
}

/// The `fraction` quantile of sorted values, interpolated linearly between neighbours
/// (the median of an even count is the mean of the middle two).
pub fn percentile(sorted: &[f32], fraction: f64) -> f64 {
    let Some(&last) = sorted.last() else { return 0.0 };
    if fraction <= 0.0 {
        return sorted[0] as f64;
    }
    if fraction >= 1.0 {
        return last as f64;
    }
    let p = fraction * (sorted.len() - 1) as f64;
    let i = p.floor() as usize;
    let frac = p - i as f64;
    let next = sorted[(i + 1).min(sorted.len() - 1)] as f64;
    (1.0 - frac) * sorted[i] as f64 + frac * next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert!((percentile(&v, 0.99) - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn kl_of_a_known_pair() {
        // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3).
        let p = [0.5f32.ln(), 0.5f32.ln()];
        let q = [0.25f32.ln(), 0.75f32.ln()];
        let want = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        assert!((kl_divergence(&p, &q) - want).abs() < 1e-6);
        assert_eq!(kl_divergence(&p, &p), 0.0);
    }
}
