//! The steps of a turn that sessions and benchmarks share: batched prefill, and the
//! energy windows around prefill and decode.

use crate::energy::{EnergyMeter, EnergyReading, EnergyWindow};
use crate::error::Result;
use crate::model::{ForwardState, KvCache, Logits, Model, forward};
use crate::threads::ThreadPool;

use super::report::TurnEnergy;

/// Runs `tokens` through the model in batches of the state's size; only the last batch
/// asks for logits (its last token's, which start the answer). `cancelled` is checked
/// before each batch: returns false, with the cache holding the batches already run,
/// when it says stop.
pub(crate) fn prefill(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    cancelled: &dyn Fn() -> bool,
) -> Result<bool> {
    let chunks = tokens.chunks(state.max_batch()).count();
    for (i, chunk) in tokens.chunks(state.max_batch()).enumerate() {
        if cancelled() {
            return Ok(false);
        }
        let want = if i + 1 == chunks { Logits::Last } else { Logits::None };
        forward(model, pool, state, kv, chunk, want)?;
    }
    Ok(true)
}

/// The prefill and decode energy windows of one turn: prefill runs until the first
/// token is known, decode from there to the end of the turn.
pub(crate) struct TurnWindows<'a> {
    meter: Option<&'a EnergyMeter>,
    prefill: Option<EnergyWindow>,
    prefill_reading: Option<EnergyReading>,
    decode: Option<EnergyWindow>,
}

impl<'a> TurnWindows<'a> {
    /// Opens the prefill window (nothing when metering is off).
    pub(crate) fn begin(meter: Option<&'a EnergyMeter>) -> Self {
        let prefill = meter.map(|m| m.begin("prefill"));
        Self { meter, prefill, prefill_reading: None, decode: None }
    }

    /// The first token is known: closes prefill, opens decode (once).
    pub(crate) fn first_token(&mut self) -> Result<()> {
        if let (Some(m), Some(w)) = (self.meter, self.prefill.take()) {
            self.prefill_reading = Some(m.end(w)?);
            self.decode = Some(m.begin("decode"));
        }
        Ok(())
    }

    /// Closes the open windows: the turn's energy for `prefilled` prompt tokens and
    /// `generated` tokens (the first of which was paid for by prefill).
    pub(crate) fn finish(self, prefilled: usize, generated: usize) -> Result<Option<TurnEnergy>> {
        let Some(m) = self.meter else { return Ok(None) };
        Ok(match (self.prefill_reading, self.decode, self.prefill) {
            (Some(p), Some(d), _) => {
                Some(TurnEnergy::new(p, m.end(d)?, prefilled, generated.saturating_sub(1)))
            }
            // Stopped before the first token (max_tokens 0): everything was prefill.
            (None, _, Some(p)) => {
                let p = m.end(p)?;
                let d = m.end(m.begin("decode"))?;
                Some(TurnEnergy::new(p, d, prefilled, 0))
            }
            _ => None,
        })
    }
}
