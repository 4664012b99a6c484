//! The llama-family forward pass, in the spirit of karpathy's run.c: one function, a
//! loop over layers, every buffer allocated once (for the largest batch) and reused.

use crate::error::{Error, Result};
use crate::kernels::ActQ8;
use crate::kernels::kv_block::{KvSlice, f16_to_f32};
use crate::model::Model;
use crate::model::attention::{AttentionShape, attention, attention_probabilities};
use crate::model::config::RopeConfig;
use crate::model::kv_cache::KvCache;
use crate::model::matmul::{Input, MatmulPath, matmul, matmul_many, matrix_row};
use crate::model::ops;
use crate::model::profile::{Op, OpTotals, Profiler, timed};
use crate::threads::ThreadPool;

/// Which positions of a batch need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (teacher-forced scoring).
    All,
    /// None (prefill of a chunk that is not the last one).
    None,
}

/// Optional inspection of a forward pass, for input pruning and analysis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// Run only the first `layers` layers (no logits are produced); None runs all. The
    /// last of them stops once its keys and values are stored and its rows captured. The
    /// batch's slots then hold keys and values for those layers only: truncate the cache
    /// back before running the full model over them.
    pub layers: Option<usize>,
    /// Capture the attention probabilities of the batch's last `attention_rows` query
    /// rows at every layer run from layer `capture_from` on (earlier layers' rows are
    /// left at 0).
    pub attention_rows: usize,
    pub capture_from: usize,
    /// Run the last of `layers` whole (not only to its keys), so that
    /// [`ForwardState::early_exit_surprisal`] can read the batch's residual stream through
    /// the final norm and output head (early exit).
    pub early_exit: bool,
    /// Fold the captured rows into one score per cache slot instead of keeping them
    /// ([`ForwardState::slot_scores`]): `2 * n_head * n_keys` floats instead of
    /// `layers * rows * n_head * n_keys` when every layer is captured.
    pub pooled: bool,
}

/// Activations of one batch, sized once for `max_batch` tokens.
pub struct ForwardState {
    max_batch: usize,
    /// `[max_batch, n_embd]` the residual stream.
    x: Vec<f32>,
    /// `[max_batch, n_embd]` normalised input of a sub-block.
    xb: Vec<f32>,
    /// `[max_batch, q_dim]` queries.
    q: Vec<f32>,
    /// `[max_batch, kv_dim]` new keys.
    k: Vec<f32>,
    /// `[max_batch, kv_dim]` new values.
    v: Vec<f32>,
    /// `[max_batch, q_dim]` attention output, heads side by side.
    att: Vec<f32>,
    /// `[n_head_kv, max_batch, group * head_dim]` attention output by KV head.
    att_by_head: Vec<f32>,
    /// `[n_head_kv, segments, group, head_dim + 2]` a decoding token's attention by
    /// segment of the cache (grown to the deepest cache seen).
    att_segments: Vec<f32>,
    /// `[max_batch, n_embd]` output of the attention or feed-forward projection.
    proj: Vec<f32>,
    /// `[max_batch, n_ff]` gate, then silu(gate) * up.
    gate: Vec<f32>,
    /// `[max_batch, n_ff]`
    up: Vec<f32>,
    /// `[2, max_batch, n_embd / 32]` 8-bit blocks of `xb` (fast path; two levels for the
    /// output projection).
    xb_q: Vec<ActQ8>,
    /// `[max_batch, q_dim / 32]` 8-bit blocks of `att` (fast path).
    att_q: Vec<ActQ8>,
    /// `[2, max_batch, n_ff / 32]` two-level 8-bit blocks of `gate` (fast path).
    gate_q: Vec<ActQ8>,
    /// `[n_rot / 2]` inverse frequencies of rope (f64 so long positions stay exact).
    inv_freq: Vec<f64>,
    /// `[max_batch, n_rot / 2, 2]` cos and sin of each token's rope angles.
    rope_cs: Vec<f32>,
    /// The same for the sliding-window layers' rope, when it differs (Gemma 3).
    inv_freq_local: Option<Vec<f64>>,
    rope_cs_local: Vec<f32>,
    /// `[rows, n_vocab]` logits of the rows asked for (grown once to `max_batch` rows
    /// the first time all logits are requested).
    logits: Vec<f32>,
    /// Rows of `logits` filled by the last call.
    logit_rows: usize,
    n_vocab: usize,
    probe: Probe,
    /// `[layers, rows, n_head, n_keys]` captured attention (see [`Probe`]); when pooled,
    /// `[2, n_head, n_keys]`: one row's probabilities and the layer's sum over rows.
    captured: Vec<f32>,
    /// `[n_keys]` pooled scores (see [`Probe::pooled`]).
    slot_scores: Vec<f32>,
    /// `[kv_dim, n_keys]` a captured layer's keys as f32, when the cache holds another
    /// type (converted once per layer, not once per row and head).
    capture_keys: Vec<f32>,
    /// Seconds the last call spent capturing attention.
    capture_seconds: f64,
    captured_keys: usize,
    /// Rows of `x` left by an early-exit probe pass (see [`Probe::early_exit`]).
    exit_rows: usize,
    /// Time per operation, when switched on (see [`ForwardState::profile_on`]).
    prof: Profiler,
}

impl ForwardState {
    pub fn new(model: &Model, max_batch: usize) -> Self {
        let c = &model.config;
        let b = max_batch.max(1);
        let inv_freq = inverse_frequencies(&c.rope, model.weights.rope_freqs.as_deref());
        Self {
            max_batch: b,
            x: vec![0.0; b * c.n_embd],
            xb: vec![0.0; b * c.n_embd],
            q: vec![0.0; b * c.q_dim()],
            k: vec![0.0; b * c.kv_dim()],
            v: vec![0.0; b * c.kv_dim()],
            att: vec![0.0; b * c.q_dim()],
            att_by_head: vec![0.0; b * c.q_dim()],
            att_segments: Vec::new(),
            proj: vec![0.0; b * c.n_embd],
            gate: vec![0.0; b * c.n_ff],
            up: vec![0.0; b * c.n_ff],
            xb_q: vec![ActQ8::default(); 2 * b * c.n_embd / 32],
            att_q: vec![ActQ8::default(); b * c.q_dim() / 32],
            gate_q: vec![ActQ8::default(); 2 * b * c.n_ff / 32],
            inv_freq,
            rope_cs: vec![0.0; b * c.rope.n_rot],
            inv_freq_local: c.block.rope_local.as_ref().map(|r| inverse_frequencies(r, None)),
            rope_cs_local: vec![
                0.0;
                if c.block.rope_local.is_some() { b * c.rope.n_rot } else { 0 }
            ],
            logits: vec![0.0; c.n_vocab],
            logit_rows: 0,
            n_vocab: c.n_vocab,
            probe: Probe::default(),
            captured: Vec::new(),
            slot_scores: Vec::new(),
            capture_keys: Vec::new(),
            capture_seconds: 0.0,
            captured_keys: 0,
            exit_rows: 0,
            prof: Profiler::default(),
        }
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Logits of the last call, `[rows, n_vocab]`.
    pub fn logits(&self) -> &[f32] {
        &self.logits[..self.logit_rows * self.n_vocab]
    }

    /// Logits of row `row` of the last call.
    pub fn logits_row(&self, row: usize) -> &[f32] {
        &self.logits[row * self.n_vocab..(row + 1) * self.n_vocab]
    }

    pub fn logit_rows(&self) -> usize {
        self.logit_rows
    }

    /// Sets what the next forward passes inspect.
    pub fn set_probe(&mut self, probe: Probe) {
        self.probe = probe;
    }

    /// Starts a per-operation profile of the following passes (from zero).
    pub fn profile_on(&mut self) {
        self.prof.enable();
    }

    /// Stops profiling and returns the totals since [`ForwardState::profile_on`].
    pub fn profile_off(&mut self) -> Option<OpTotals> {
        self.prof.take()
    }

    /// Attention probabilities captured by the last call: layer `l`, captured row `r`
    /// (0 = the first of the last `attention_rows` rows), head `h` gives `n_keys` values
    /// (cache slots `0..n_keys`; slots after the row's own are 0).
    pub fn captured_attention(&self, l: usize, r: usize, h: usize, n_head: usize) -> &[f32] {
        let rows = self.probe.attention_rows;
        let k = self.captured_keys;
        let at = ((l * rows + r) * n_head + h) * k;
        &self.captured[at..at + k]
    }

    /// Pooled attention of the last call (see [`Probe::pooled`]): per cache slot
    /// `0..n_keys`, the highest over captured layers and heads of the mean probability
    /// the captured rows gave it (empty when nothing was captured).
    pub fn slot_scores(&self) -> &[f32] {
        &self.slot_scores
    }

    /// Seconds the last call spent capturing attention rows (part of its time).
    pub fn capture_seconds(&self) -> f64 {
        self.capture_seconds
    }
}

/// Rope's inverse frequencies, with optional per-frequency divisors (Llama 3.1).
pub(crate) fn inverse_frequencies(rope: &RopeConfig, factors: Option<&[f32]>) -> Vec<f64> {
    (0..rope.n_rot / 2)
        .map(|i| {
            let f = (rope.freq_base as f64).powf(-2.0 * i as f64 / rope.n_rot as f64);
            let factor = factors.map_or(1.0, |r| r[i] as f64);
            f * rope.freq_scale as f64 / factor
        })
        .collect()
}

/// Runs `tokens` (at most `state.max_batch()`) through the model, appending their keys
/// and values to `kv`, and leaves the requested logits in `state`.
pub fn forward(
    model: &Model,
    pool: &ThreadPool,
    state: &mut ForwardState,
    kv: &mut KvCache,
    tokens: &[u32],
    want: Logits,
) -> Result<()> {
    let c = &model.config;
    let w = &model.weights;
    let n = tokens.len();
    if n == 0 || n > state.max_batch {
        return Err(Error::InvalidArgument(format!(
            "batch of {n} tokens (1..={} allowed)",
            state.max_batch
        )));
    }
    if n > kv.free() {
        return Err(Error::ContextOverflow {
            needed: n,
            available: kv.free(),
            context: kv.capacity(),
            used: kv.len(),
        });
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
        return Err(Error::InvalidArgument(format!(
            "token id {bad} is outside the vocabulary of {}",
            c.n_vocab
        )));
    }
    let (d, qd, kvd, ff, hd) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff, c.head_dim);
    let s = state;
    let fast = model.matmul_path == MatmulPath::Int8;

    s.prof.pass();
    let started = s.prof.start();
    // Token embeddings: x[i] = token_embd[tokens[i]].
    for (i, &t) in tokens.iter().enumerate() {
        matrix_row(&w.token_embd, t as usize, &mut s.x[i * d..(i + 1) * d])?;
    }
    let first_slot = kv.push_tokens(tokens)?;
    if c.block.embed_scale != 1.0 {
        s.x[..n * d].iter_mut().for_each(|v| *v *= c.block.embed_scale);
    }
    check_finite(&s.x[..n * d], || "the token embeddings".into())?;
    ops::rope_table(&kv.positions()[first_slot..first_slot + n], &s.inv_freq, &mut s.rope_cs);
    if let Some(local) = &s.inv_freq_local {
        ops::rope_table(&kv.positions()[first_slot..first_slot + n], local, &mut s.rope_cs_local);
    }
    s.prof.stop(Op::Embed, started, 0);
    let (n_rot, style) = (c.rope.n_rot, c.rope.style);

    let n_layers = s.probe.layers.map_or(w.layers.len(), |p| p.min(w.layers.len()));
    let capture_rows = s.probe.attention_rows.min(n);
    s.captured_keys = first_slot + n;
    s.captured.clear();
    s.slot_scores.clear();
    s.capture_seconds = 0.0;
    if s.probe.pooled && capture_rows > 0 {
        s.captured.resize(2 * c.n_head * s.captured_keys, 0.0);
        s.slot_scores.resize(s.captured_keys, 0.0);
    } else {
        s.captured.resize(n_layers * capture_rows * c.n_head * s.captured_keys, 0.0);
    }
    for (l, lw) in w.layers.iter().enumerate().take(n_layers) {
        let local = c.is_local_layer(l);
        let rope_cs =
            if local && s.inv_freq_local.is_some() { &s.rope_cs_local } else { &s.rope_cs };
        // Attention block.
        timed!(s.prof, Op::Norm, {
            ops::rmsnorm(pool, &mut s.xb[..n * d], &s.x[..n * d], &lw.attn_norm, c.rms_eps)
        });
        let xb = timed!(s.prof, Op::Quantize, input(pool, fast, &s.xb[..n * d], d, &mut s.xb_q));
        let qkv_bytes = [&lw.wq, &lw.wk, &lw.wv].map(|m| m.streamed_bytes()).iter().sum();
        timed!(s.prof, Op::MatQkv, qkv_bytes, {
            matmul_many(
                pool,
                &mut [
                    (&lw.wq, &mut s.q[..n * qd]),
                    (&lw.wk, &mut s.k[..n * kvd]),
                    (&lw.wv, &mut s.v[..n * kvd]),
                ],
                xb,
                n,
            )?;
            ops::add_bias(&mut s.q[..n * qd], lw.bq.as_deref());
            ops::add_bias(&mut s.k[..n * kvd], lw.bk.as_deref());
            ops::add_bias(&mut s.v[..n * kvd], lw.bv.as_deref());
        });
        if let (Some(qn), Some(kn)) = (&lw.q_norm, &lw.k_norm) {
            timed!(s.prof, Op::Norm, {
                ops::rmsnorm_in_place(pool, &mut s.q[..n * qd], qn, c.rms_eps);
                ops::rmsnorm_in_place(pool, &mut s.k[..n * kvd], kn, c.rms_eps);
            });
        }
        timed!(s.prof, Op::Rope, {
            ops::rope(pool, &mut s.q[..n * qd], qd, hd, n_rot, style, rope_cs);
            ops::rope(pool, &mut s.k[..n * kvd], kvd, hd, n_rot, style, rope_cs);
        });
        timed!(s.prof, Op::KvStore, kv.store(l, first_slot, &s.k[..n * kvd], &s.v[..n * kvd]));
        // A windowed layer's rows start at cache slot `base` (see `KvCache::layer`).
        let (kvl, layer_stride, base) = kv.layer(l);
        let shape = AttentionShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv,
            head_dim: hd,
            stride: layer_stride,
            first_slot: first_slot - base,
            positions: &kv.positions()[base..],
            window: c.block.sliding_window.filter(|_| local).map(|w| w.window),
            scale: c.block.attn_scale,
        };
        let keys_read = shape.window.map_or(first_slot + n, |w| (first_slot + n).min(w + n - 1));
        let kv_bytes = (keys_read * 2 * kv.kv_type().row_bytes(kvd)) as u64;
        // A probe's last layer is read only through its captured rows and its cache slots.
        let probe_ends_here = n_layers < w.layers.len() && l + 1 == n_layers && !s.probe.early_exit;
        if !probe_ends_here {
            timed!(s.prof, Op::Attention, kv_bytes, {
                let (by_head, segments) = (&mut s.att_by_head, &mut s.att_segments);
                let att = &mut s.att[..n * qd];
                attention(pool, &shape, &s.q[..n * qd], kvl, by_head, segments, att)
            });
        }
        if capture_rows > 0 && l >= s.probe.capture_from {
            let started = std::time::Instant::now();
            capture(s, &shape, kvl, base, l, n, capture_rows);
            s.capture_seconds += started.elapsed().as_secs_f64();
        }
        if probe_ends_here {
            break;
        }
        let att = timed!(s.prof, Op::Quantize, input(pool, fast, &s.att[..n * qd], qd, &mut s.att_q));
        timed!(s.prof, Op::MatO, lw.wo.streamed_bytes(), {
            matmul(pool, &lw.wo, att, n, &mut s.proj[..n * d])?
        });
        if let Some(pn) = &lw.post_attn_norm {
            timed!(s.prof, Op::Norm, ops::rmsnorm_in_place(pool, &mut s.proj[..n * d], pn, c.rms_eps));
        }
        timed!(s.prof, Op::Residual, ops::add(pool, &mut s.x[..n * d], &s.proj[..n * d], d));

        // Feed-forward block (SwiGLU).
        timed!(s.prof, Op::Norm, {
            ops::rmsnorm(pool, &mut s.xb[..n * d], &s.x[..n * d], &lw.ffn_norm, c.rms_eps)
        });
        let xb = timed!(s.prof, Op::Quantize, input(pool, fast, &s.xb[..n * d], d, &mut s.xb_q));
        let gate_up_bytes = lw.w_gate.streamed_bytes() + lw.w_up.streamed_bytes();
        timed!(s.prof, Op::MatGateUp, gate_up_bytes, {
            matmul_many(
                pool,
                &mut [(&lw.w_gate, &mut s.gate[..n * ff]), (&lw.w_up, &mut s.up[..n * ff])],
                xb,
                n,
            )?
        });
        timed!(s.prof, Op::Activation, {
            ops::gated(pool, &mut s.gate[..n * ff], &s.up[..n * ff], ff, c.block.activation)
        });
        // The SwiGLU output has outliers: two-level quantization keeps it accurate.
        let gate = timed!(s.prof, Op::Quantize, {
            input_two_level(pool, fast, &s.gate[..n * ff], ff, &mut s.gate_q)
        });
        timed!(s.prof, Op::MatDown, lw.w_down.streamed_bytes(), {
            matmul(pool, &lw.w_down, gate, n, &mut s.proj[..n * d])?
        });
        if let Some(pn) = &lw.post_ffn_norm {
            timed!(s.prof, Op::Norm, ops::rmsnorm_in_place(pool, &mut s.proj[..n * d], pn, c.rms_eps));
        }
        timed!(s.prof, Op::Residual, {
            ops::add(pool, &mut s.x[..n * d], &s.proj[..n * d], d);
            check_finite(&s.x[..n * d], || format!("the output of layer {l}"))?
        });
    }

    s.exit_rows = if s.probe.early_exit { n } else { 0 };
    // Final norm and output projection for the rows asked for.
    let rows = match want {
        _ if n_layers < w.layers.len() => 0..0,
        Logits::None => 0..0,
        Logits::Last => n - 1..n,
        Logits::All => 0..n,
    };
    if !rows.is_empty() {
        output_head(model, pool, s, rows.clone())?;
    }
    s.logit_rows = rows.len();
    Ok(())
}

/// The final norm and output projection of rows `rows` of the residual stream, into
/// `logits[..rows.len() * n_vocab]` (grown to fit the first time it is too small).
fn output_head(
    model: &Model,
    pool: &ThreadPool,
    s: &mut ForwardState,
    rows: std::ops::Range<usize>,
) -> Result<()> {
    let (c, w) = (&model.config, &model.weights);
    let (d, n_rows) = (c.n_embd, rows.len());
    let fast = model.matmul_path == MatmulPath::Int8;
    let xr = &s.x[rows.start * d..rows.end * d];
    timed!(s.prof, Op::Norm, {
        ops::rmsnorm(pool, &mut s.xb[..n_rows * d], xr, &w.output_norm, c.rms_eps)
    });
    let need = n_rows * c.n_vocab;
    if s.logits.len() < need {
        s.logits.resize(need, 0.0);
    }
    // Logits are what users read: two-level quantization keeps them close to exact.
    let xb = timed!(s.prof, Op::Quantize, {
        input_two_level(pool, fast, &s.xb[..n_rows * d], d, &mut s.xb_q)
    });
    let head = w.output_matrix();
    timed!(s.prof, Op::MatHead, head.streamed_bytes(), {
        matmul(pool, head, xb, n_rows, &mut s.logits[..need])?;
        check_finite(&s.logits[..need], || "the logits (output norm and projection)".into())
    })
}

impl ForwardState {
    /// After an early-exit probe pass ([`Probe::early_exit`]) over a batch, the surprisal
    /// (-ln p, in nats) the exited layers give each row's following token: `next[i]`
    /// follows row `i` (`next` may be one shorter than the batch: the last row's token
    /// is not known yet). Rows go through the output head a few at a time, so the logits
    /// buffer stays near 16 MB even for a 262k vocabulary.
    pub fn early_exit_surprisal(
        &mut self,
        model: &Model,
        pool: &ThreadPool,
        next: &[u32],
    ) -> Result<Vec<f32>> {
        let rows_at_once = ((4 << 20) / model.config.n_vocab).clamp(32, 128);
        if next.len() > self.exit_rows {
            return Err(Error::InvalidArgument(format!(
                "early exit: {} rows asked, the last pass left {}",
                next.len(),
                self.exit_rows
            )));
        }
        let n_vocab = model.config.n_vocab;
        if let Some(&bad) = next.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary")));
        }
        let mut out = vec![0.0f32; next.len()];
        for start in (0..next.len()).step_by(rows_at_once) {
            let end = (start + rows_at_once).min(next.len());
            output_head(model, pool, self, start..end)?;
            let logits = &self.logits;
            // One row per job: a 262k-entry log-sum-exp per token is not free.
            pool.for_each_chunk_mut(&mut out[start..end], 1, &|r, s| {
                let row = &logits[r * n_vocab..(r + 1) * n_vocab];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                s[0] = sum.ln() + max - row[next[start + r] as usize];
            });
        }
        self.logit_rows = 0;
        Ok(out)
    }
}

/// Layer `l`'s attention probabilities for the batch's last `rows` query rows (of `n`):
/// stored per layer and row, or folded into `slot_scores` (see [`Probe::pooled`]).
#[allow(clippy::too_many_arguments)]
fn capture(
    s: &mut ForwardState,
    shape: &AttentionShape,
    kvl: KvSlice,
    base: usize,
    l: usize,
    n: usize,
    rows: usize,
) {
    let (keys, n_head, qd) = (s.captured_keys, shape.n_head, shape.n_head * shape.head_dim);
    // The f32 kernel on converted keys: the per-channel reads of other types are slow.
    let held = keys - base;
    let converted;
    let (shape, kvl) = match kvl {
        KvSlice::F32 { .. } => (shape, kvl),
        _ => {
            keys_f32(kvl, shape, held, &mut s.capture_keys);
            converted = AttentionShape { stride: held, ..*shape };
            // Probabilities read no values: any slice long enough stands in for them.
            let kt = &s.capture_keys[..];
            (&converted, KvSlice::F32 { kt, v: kt })
        }
    };
    if !s.probe.pooled {
        for r in 0..rows {
            let i = n - rows + r;
            let at = (l * rows + r) * n_head * keys;
            let out = &mut s.captured[at..at + n_head * keys];
            attention_probabilities(shape, i, &s.q[i * qd..(i + 1) * qd], kvl, keys, base, out);
        }
        return;
    }
    let (row, sum) = s.captured.split_at_mut(n_head * keys);
    sum.fill(0.0);
    for i in n - rows..n {
        // Only the keys a row sees are written: the rest must read 0.
        row.fill(0.0);
        attention_probabilities(shape, i, &s.q[i * qd..(i + 1) * qd], kvl, keys, base, row);
        sum.iter_mut().zip(row.iter()).for_each(|(a, p)| *a += p);
    }
    let inv = 1.0 / rows as f32;
    for head in sum.chunks_exact(keys) {
        s.slot_scores.iter_mut().zip(head).for_each(|(m, &p)| *m = m.max(p * inv));
    }
}

/// Slots `base..base + held` of a layer's keys as f32 into `out` (`[kv_dim, held]`).
fn keys_f32(kvl: KvSlice, shape: &AttentionShape, held: usize, out: &mut Vec<f32>) {
    let kv_dim = shape.n_head_kv * shape.head_dim;
    out.clear();
    out.resize(kv_dim * held, 0.0);
    for (d, row) in out.chunks_exact_mut(held).enumerate() {
        match kvl {
            KvSlice::F16 { kt, .. } => {
                let src = &kt[d * shape.stride..][..held];
                row.iter_mut().zip(src).for_each(|(o, &k)| *o = f16_to_f32(k));
            }
            _ => row.iter_mut().enumerate().for_each(|(j, o)| *o = kvl.key(d, j, shape.stride)),
        }
    }
}

/// One sum over the values: NaN and infinities propagate into it, so a finite sum means
/// finite values (overflow to infinity is caught too). Cheap next to the layer's matmuls.
fn check_finite(values: &[f32], stage: impl FnOnce() -> String) -> Result<()> {
    if values.iter().sum::<f32>().is_finite() {
        Ok(())
    } else {
        Err(Error::NonFiniteActivations { stage: stage() })
    }
}

/// A matmul input: on the fast path (when rows are whole 32-blocks) `x` is quantized
/// into `q` once here and shared by every matrix that reads it.
fn input<'a>(
    pool: &ThreadPool,
    fast: bool,
    x: &'a [f32],
    row_len: usize,
    q: &'a mut [ActQ8],
) -> Input<'a> {
    if fast && row_len.is_multiple_of(32) {
        let q = &mut q[..x.len() / 32];
        ops::quantize(pool, x, row_len, q);
        Input { x, q: Some(q), two_level: false }
    } else {
        Input { x, q: None, two_level: false }
    }
}

/// Like [`input`], with two-level quantization (`q` needs room for twice the rows).
fn input_two_level<'a>(
    pool: &ThreadPool,
    fast: bool,
    x: &'a [f32],
    row_len: usize,
    q: &'a mut [ActQ8],
) -> Input<'a> {
    if fast && row_len.is_multiple_of(32) {
        let q = &mut q[..2 * x.len() / 32];
        ops::quantize_two_level(pool, x, row_len, q);
        Input { x, q: Some(q), two_level: true }
    } else {
        Input { x, q: None, two_level: false }
    }
}
