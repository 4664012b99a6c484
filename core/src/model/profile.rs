//! A per-operation profile of the forward pass: wall-clock time, calls and bytes read
//! per operation, accumulated over the passes run while it is on. Off by default: the
//! forward pass then pays one branch per operation and reads no clock.

use std::time::Instant;

/// The operations of the forward pass, in the order a layer runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Token embedding rows and the rope tables.
    Embed,
    /// RMS norms (block inputs, q/k norms, post norms, the final norm).
    Norm,
    /// Quantizing activations to 8 bits for the integer kernels.
    Quantize,
    /// The q, k and v projections (one job).
    MatQkv,
    /// Rotary embedding of q and k.
    Rope,
    /// Writing the new keys and values into the cache.
    KvStore,
    /// Attention over the cache.
    Attention,
    /// The attention output projection.
    MatO,
    /// Residual adds and the finiteness check.
    Residual,
    /// The gate and up projections (one job).
    MatGateUp,
    /// The gated activation.
    Activation,
    /// The down projection.
    MatDown,
    /// The output head (logits).
    MatHead,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::Embed,
        Op::Norm,
        Op::Quantize,
        Op::MatQkv,
        Op::Rope,
        Op::KvStore,
        Op::Attention,
        Op::MatO,
        Op::Residual,
        Op::MatGateUp,
        Op::Activation,
        Op::MatDown,
        Op::MatHead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Embed => "embed",
            Op::Norm => "norm",
            Op::Quantize => "quantize",
            Op::MatQkv => "matmul qkv",
            Op::Rope => "rope",
            Op::KvStore => "kv store",
            Op::Attention => "attention",
            Op::MatO => "matmul o",
            Op::Residual => "residual",
            Op::MatGateUp => "matmul gate+up",
            Op::Activation => "activation",
            Op::MatDown => "matmul down",
            Op::MatHead => "matmul head",
        }
    }
}

/// Totals per operation (indexed like [`Op::ALL`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpTotals {
    pub nanos: [u64; 13],
    pub calls: [u64; 13],
    /// Bytes of weights (matrix products) or cache (attention) read.
    pub bytes: [u64; 13],
    /// Forward passes accumulated.
    pub passes: u64,
}

/// The profiler a forward pass carries: `None` inside when off.
#[derive(Debug, Default)]
pub struct Profiler {
    totals: Option<OpTotals>,
}

impl Profiler {
    /// Starts accumulating (from zero).
    pub fn enable(&mut self) {
        self.totals = Some(OpTotals::default());
    }

    /// Stops and returns what was accumulated.
    pub fn take(&mut self) -> Option<OpTotals> {
        self.totals.take()
    }

    /// The clock at the start of an operation (None when off: no clock read).
    #[inline]
    pub fn start(&self) -> Option<Instant> {
        self.totals.as_ref().map(|_| Instant::now())
    }

    /// Adds the time since `started` (and `bytes` read) to `op`.
    #[inline]
    pub fn stop(&mut self, op: Op, started: Option<Instant>, bytes: u64) {
        if let (Some(t), Some(start)) = (self.totals.as_mut(), started) {
            let i = op as usize;
            t.nanos[i] += start.elapsed().as_nanos() as u64;
            t.calls[i] += 1;
            t.bytes[i] += bytes;
        }
    }

    /// Counts one forward pass.
    pub fn pass(&mut self) {
        if let Some(t) = self.totals.as_mut() {
            t.passes += 1;
        }
    }
}

/// Times `$e` as operation `$op` of `$prof` (reading `$bytes`), giving `$e`'s value.
macro_rules! timed {
    ($prof:expr, $op:expr, $bytes:expr, $e:expr) => {{
        let started = $prof.start();
        let value = $e;
        $prof.stop($op, started, $bytes);
        value
    }};
    ($prof:expr, $op:expr, $e:expr) => {
        timed!($prof, $op, 0, $e)
    };
}
pub(crate) use timed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_records_nothing_and_on_records_each_call() {
        let mut p = Profiler::default();
        assert!(p.start().is_none());
        p.stop(Op::Norm, None, 5);
        assert!(p.take().is_none());
        p.enable();
        let v = timed!(p, Op::MatQkv, 100, 2 + 2);
        assert_eq!(v, 4);
        timed!(p, Op::MatQkv, 50, ());
        p.pass();
        let t = p.take().unwrap();
        assert_eq!(t.calls[Op::MatQkv as usize], 2);
        assert_eq!(t.bytes[Op::MatQkv as usize], 150);
        assert_eq!(t.passes, 1);
        assert!(Op::ALL.iter().enumerate().all(|(i, op)| *op as usize == i));
    }
}
