//! `joule bench --profile`: where one case's time goes, per forward pass (a decode
//! token, or a prefill batch), by operation, with the bytes each matrix product (and
//! attention, of the cache) reads and the rate it reached.

use serde::{Deserialize, Serialize};

use super::Engine;
use super::bench::{BenchCase, BenchSetup, CaseRun};
use crate::error::{Error, Result};
use crate::model::profile::Op;

/// One operation's share of a pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpShare {
    pub op: String,
    /// Calls per pass (a layer's operation is called once per layer).
    pub calls: f64,
    /// Milliseconds per pass.
    pub ms: f64,
    /// Fraction of the measured time of the pass.
    pub share: f64,
    /// Bytes read per pass (weights, or for attention the keys and values).
    pub bytes: u64,
    /// Bytes read per second while the operation ran (None when it reads no counted bytes).
    pub gb_per_s: Option<f64>,
}

/// A profiled repetition of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseProfile {
    pub test: String,
    /// Forward passes timed (tokens for tg, batches for pp).
    pub passes: u64,
    /// Wall-clock milliseconds per pass, measured around the whole timed part.
    pub measured_ms: f64,
    /// The operations' milliseconds per pass, summed.
    pub profiled_ms: f64,
    /// `profiled_ms / measured_ms`: the rest is the loop between operations.
    pub coverage: f64,
    pub ops: Vec<OpShare>,
}

/// Runs `case` once untimed, then once with the per-operation profile on.
pub fn profile_case(engine: &Engine, case: BenchCase, setup: &BenchSetup) -> Result<CaseProfile> {
    let mut run = CaseRun::new(engine, case, setup)?;
    run.once(false)?;
    let (seconds, totals) = run.once(true)?;
    let t = totals.ok_or_else(|| Error::Internal("the profile was not recorded".into()))?;
    let passes = t.passes.max(1);
    let per_pass = |x: u64| x as f64 / passes as f64;
    let measured_ms = seconds * 1e3 / passes as f64;
    let ops: Vec<OpShare> = Op::ALL
        .iter()
        .map(|&op| {
            let i = op as usize;
            let ms = per_pass(t.nanos[i]) / 1e6;
            let bytes = per_pass(t.bytes[i]).round() as u64;
            OpShare {
                op: op.name().into(),
                calls: per_pass(t.calls[i]),
                ms,
                share: ms / measured_ms,
                bytes,
                gb_per_s: (bytes > 0 && ms > 0.0).then(|| bytes as f64 / (ms * 1e6)),
            }
        })
        .filter(|o| o.calls > 0.0)
        .collect();
    let profiled_ms = ops.iter().map(|o| o.ms).sum::<f64>();
    let depth = setup.depth;
    let test = if depth > 0 { format!("{} @ d{depth}", case.name()) } else { case.name() };
    Ok(CaseProfile {
        test,
        passes: t.passes,
        measured_ms,
        profiled_ms,
        coverage: profiled_ms / measured_ms,
        ops,
    })
}
