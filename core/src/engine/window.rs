//! Teacher-forced scoring of one window of tokens from an empty cache, a batch of
//! positions at a time, with the full log-softmax of each scored position. Perplexity
//! and KL evaluations drive one scorer per model in lockstep, so they never hold more
//! than one batch of logits per model.

use std::ops::Range;

use super::Engine;
use crate::error::{Error, Result};
use crate::model::{ForwardState, KvCache, Logits, forward};

/// Scores windows of up to `capacity` tokens; buffers are allocated once.
pub struct WindowScorer<'e> {
    engine: &'e Engine,
    kv: KvCache,
    state: ForwardState,
    tokens: Vec<u32>,
    /// Next position to run.
    next: usize,
    /// Positions whose logits the last batch produced.
    last: Range<usize>,
    log_probs: Vec<f32>,
}

impl<'e> WindowScorer<'e> {
    pub(super) fn new(engine: &'e Engine, capacity: usize, batch: usize) -> Result<Self> {
        if capacity < 2 {
            return Err(Error::InvalidArgument("a scoring window needs at least 2 tokens".into()));
        }
        if batch == 0 {
            return Err(Error::InvalidArgument("batch must be at least 1".into()));
        }
        let model = engine.model();
        let train = model.config.n_ctx_train;
        if capacity > train {
            return Err(Error::InvalidArgument(format!(
                "a window of {capacity} tokens exceeds the model's training context of {train}"
            )));
        }
        Ok(Self {
            engine,
            kv: KvCache::with_type(&model.config, capacity, engine.kv_type())?,
            state: ForwardState::new(model, batch.min(capacity)),
            tokens: Vec::with_capacity(capacity),
            next: 0,
            last: 0..0,
            log_probs: vec![0.0; model.config.n_vocab],
        })
    }

    /// Positions per batch: scorers that run in lockstep must agree on it.
    pub fn batch(&self) -> usize {
        self.state.max_batch()
    }

    /// Starts `tokens` from an empty cache and runs positions `0..first` (no logits).
    /// `first` must leave at least one position to score.
    pub fn begin(&mut self, tokens: &[u32], first: usize) -> Result<()> {
        if tokens.len() > self.kv.capacity() || first >= tokens.len() {
            return Err(Error::InvalidArgument(format!(
                "window of {} tokens scored from {first} does not fit {} slots",
                tokens.len(),
                self.kv.capacity()
            )));
        }
        let n_vocab = self.engine.model().config.n_vocab as u32;
        if let Some(&bad) = tokens.iter().find(|&&t| t >= n_vocab) {
            return Err(Error::InvalidArgument(format!(
                "token {bad} is outside the vocabulary of {n_vocab}"
            )));
        }
        self.tokens.clear();
        self.tokens.extend_from_slice(tokens);
        self.kv.clear();
        self.next = 0;
        self.last = 0..0;
        while self.next < first {
            let end = (self.next + self.batch()).min(first);
            self.run(end, Logits::None)?;
        }
        Ok(())
    }

    /// Runs the next batch of scored positions; returns them, or None at the window's end.
    pub fn next_batch(&mut self) -> Result<Option<Range<usize>>> {
        if self.next >= self.tokens.len() {
            return Ok(None);
        }
        let start = self.next;
        let end = (start + self.batch()).min(self.tokens.len());
        self.run(end, Logits::All)?;
        self.last = start..end;
        Ok(Some(start..end))
    }

    /// Natural-log probabilities over the whole vocabulary of the token after position
    /// `pos`, which must be in the last batch (sums of exponentials in f64).
    pub fn log_probs(&mut self, pos: usize) -> Result<&[f32]> {
        if !self.last.contains(&pos) {
            return Err(Error::InvalidArgument(format!(
                "position {pos} is not in the last scored batch {:?}",
                self.last
            )));
        }
        let logits = self.state.logits_row(pos - self.last.start);
        log_softmax_into(logits, &mut self.log_probs);
        Ok(&self.log_probs)
    }

    fn run(&mut self, end: usize, want: Logits) -> Result<()> {
        let e = self.engine;
        let chunk = &self.tokens[self.next..end];
        forward(e.model(), e.pool(), &mut self.state, &mut self.kv, chunk, want)?;
        self.next = end;
        Ok(())
    }
}

/// `out[i] = logits[i] - log(sum(exp(logits)))`, the maximum subtracted first.
pub fn log_softmax_into(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let lse = max as f64 + sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l as f64 - lse) as f32;
    }
}

impl Engine {
    /// A scorer for windows of up to `capacity` tokens run `batch` positions at a time
    /// (independent of the engine's context setting; bounded by the training context).
    pub fn window_scorer(&self, capacity: usize, batch: usize) -> Result<WindowScorer<'_>> {
        WindowScorer::new(self, capacity, batch)
    }
}
