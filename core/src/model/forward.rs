//! The llama-family forward pass, in the spirit of karpathy's run.c: one function, a
//! loop over layers, every buffer allocated once (for the largest batch) and reused.

use crate::error::{Error, Result};
use crate::kernels::{self, ActQ8, Input, Precision, matmul};
use crate::model::Model;
use crate::model::config::RopeStyle;
use crate::model::kv_cache::KvCache;
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
    /// `[max_batch, n_embd]` output of the attention or feed-forward projection.
    proj: Vec<f32>,
    /// `[max_batch, n_ff]` gate, then silu(gate) * up.
    gate: Vec<f32>,
    /// `[max_batch, n_ff]`
    up: Vec<f32>,
    /// `[max_batch, n_embd / 32]` 8-bit blocks of `xb` (fast path).
    xb_q: Vec<ActQ8>,
    /// `[max_batch, q_dim / 32]` 8-bit blocks of `att` (fast path).
    att_q: Vec<ActQ8>,
    /// `[max_batch, n_ff / 32]` 8-bit blocks of `gate` (fast path).
    gate_q: Vec<ActQ8>,
    /// `[n_rot / 2]` inverse frequencies of rope (f64 so long positions stay exact).
    inv_freq: Vec<f64>,
    /// `[rows, n_vocab]` logits of the rows asked for (grown once to `max_batch` rows
    /// the first time all logits are requested).
    logits: Vec<f32>,
    /// Rows of `logits` filled by the last call.
    logit_rows: usize,
    n_vocab: usize,
}

impl ForwardState {
    pub fn new(model: &Model, max_batch: usize) -> Self {
        let c = &model.config;
        let b = max_batch.max(1);
        let half = c.rope.n_rot / 2;
        let inv_freq = (0..half)
            .map(|i| {
                let f = (c.rope.freq_base as f64).powf(-2.0 * i as f64 / c.rope.n_rot as f64);
                let factor = model.weights.rope_freqs.as_ref().map_or(1.0, |r| r[i] as f64);
                f * c.rope.freq_scale as f64 / factor
            })
            .collect();
        Self {
            max_batch: b,
            x: vec![0.0; b * c.n_embd],
            xb: vec![0.0; b * c.n_embd],
            q: vec![0.0; b * c.q_dim()],
            k: vec![0.0; b * c.kv_dim()],
            v: vec![0.0; b * c.kv_dim()],
            att: vec![0.0; b * c.q_dim()],
            proj: vec![0.0; b * c.n_embd],
            gate: vec![0.0; b * c.n_ff],
            up: vec![0.0; b * c.n_ff],
            xb_q: vec![ActQ8::default(); b * c.n_embd / 32],
            att_q: vec![ActQ8::default(); b * c.q_dim() / 32],
            gate_q: vec![ActQ8::default(); b * c.n_ff / 32],
            inv_freq,
            logits: vec![0.0; c.n_vocab],
            logit_rows: 0,
            n_vocab: c.n_vocab,
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
        return Err(Error::InvalidArgument(format!("batch of {n} tokens (1..={} allowed)", state.max_batch)));
    }
    if n > kv.free() {
        return Err(Error::ContextOverflow { needed: n, available: kv.free(), context: kv.capacity(), used: kv.len() });
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
        return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary of {}", c.n_vocab)));
    }
    let (d, qd, kvd, ff, hd) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff, c.head_dim);
    let s = state;
    let fast = model.precision == Precision::Fast;

    // Token embeddings: x[i] = token_embd[tokens[i]].
    for (i, &t) in tokens.iter().enumerate() {
        kernels::matrix_row(&w.token_embd, t as usize, &mut s.x[i * d..(i + 1) * d]);
    }
    let first_slot = kv.push_tokens(tokens);
    let positions: Vec<u32> = kv.positions()[first_slot..first_slot + n].to_vec();

    for (l, lw) in w.layers.iter().enumerate() {
        // Attention block.
        rmsnorm(&mut s.xb[..n * d], &s.x[..n * d], &lw.attn_norm, c.rms_eps);
        let xb = input(fast, &s.xb[..n * d], &mut s.xb_q);
        matmul(pool, &lw.wq, xb, n, &mut s.q[..n * qd]);
        matmul(pool, &lw.wk, xb, n, &mut s.k[..n * kvd]);
        matmul(pool, &lw.wv, xb, n, &mut s.v[..n * kvd]);
        add_bias(&mut s.q[..n * qd], lw.bq.as_deref());
        add_bias(&mut s.k[..n * kvd], lw.bk.as_deref());
        add_bias(&mut s.v[..n * kvd], lw.bv.as_deref());
        for (i, &pos) in positions.iter().enumerate() {
            rope(&mut s.q[i * qd..(i + 1) * qd], hd, c.rope.n_rot, c.rope.style, pos, &s.inv_freq);
            rope(&mut s.k[i * kvd..(i + 1) * kvd], hd, c.rope.n_rot, c.rope.style, pos, &s.inv_freq);
        }
        {
            let (kc, vc) = kv.layer_mut(l);
            kc[first_slot * kvd..(first_slot + n) * kvd].copy_from_slice(&s.k[..n * kvd]);
            vc[first_slot * kvd..(first_slot + n) * kvd].copy_from_slice(&s.v[..n * kvd]);
        }
        let (kc, vc) = kv.layer(l);
        attention(pool, c.n_head, c.n_head_kv, hd, &s.q[..n * qd], kc, vc, first_slot, &mut s.att[..n * qd]);
        let att = input(fast, &s.att[..n * qd], &mut s.att_q);
        matmul(pool, &lw.wo, att, n, &mut s.proj[..n * d]);
        add_into(&mut s.x[..n * d], &s.proj[..n * d]);

        // Feed-forward block (SwiGLU).
        rmsnorm(&mut s.xb[..n * d], &s.x[..n * d], &lw.ffn_norm, c.rms_eps);
        let xb = input(fast, &s.xb[..n * d], &mut s.xb_q);
        matmul(pool, &lw.w_gate, xb, n, &mut s.gate[..n * ff]);
        matmul(pool, &lw.w_up, xb, n, &mut s.up[..n * ff]);
        swiglu(&mut s.gate[..n * ff], &s.up[..n * ff]);
        let gate = input(fast, &s.gate[..n * ff], &mut s.gate_q);
        matmul(pool, &lw.w_down, gate, n, &mut s.proj[..n * d]);
        add_into(&mut s.x[..n * d], &s.proj[..n * d]);
    }

    // Final norm and output projection for the rows asked for.
    let rows = match want {
        Logits::None => 0..0,
        Logits::Last => n - 1..n,
        Logits::All => 0..n,
    };
    let n_rows = rows.len();
    if n_rows > 0 {
        let xr = &s.x[rows.start * d..rows.end * d];
        rmsnorm(&mut s.xb[..n_rows * d], xr, &w.output_norm, c.rms_eps);
        let need = n_rows * c.n_vocab;
        if s.logits.len() < need {
            // Grown once, to the whole batch, the first time every row is wanted.
            s.logits.resize(s.max_batch * c.n_vocab, 0.0);
        }
        let xb = input(fast, &s.xb[..n_rows * d], &mut s.xb_q);
        matmul(pool, w.output_matrix(), xb, n_rows, &mut s.logits[..need]);
    }
    s.logit_rows = n_rows;
    Ok(())
}

/// A matmul input: on the fast path (when the width allows 32-blocks) `x` is quantized
/// into `q` once here and shared by every matrix that reads it.
fn input<'a>(fast: bool, x: &'a [f32], q: &'a mut [ActQ8]) -> Input<'a> {
    if fast && x.len() % 32 == 0 {
        let q = &mut q[..x.len() / 32];
        (kernels::kernels().quantize_act)(x, q);
        Input { x, q: Some(q) }
    } else {
        Input { x, q: None }
    }
}

/// `out[i] = x[i] / rms(x[i]) * weight` for each row of `weight.len()` values.
fn rmsnorm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let d = weight.len();
    for (o, xi) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let ss: f64 = xi.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / d as f64 + eps as f64).sqrt()) as f32;
        for ((o, &v), &g) in o.iter_mut().zip(xi).zip(weight) {
            *o = v * scale * g;
        }
    }
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            add_into(row, b);
        }
    }
}

fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `gate = silu(gate) * up`.
fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Rotates the first `n_rot` dimensions of every head of one token at `pos`.
fn rope(x: &mut [f32], head_dim: usize, n_rot: usize, style: RopeStyle, pos: u32, inv_freq: &[f64]) {
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &f) in inv_freq.iter().enumerate() {
            let theta = pos as f64 * f;
            let (sin, cos) = (theta.sin() as f32, theta.cos() as f32);
            let (a, b) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + n_rot / 2),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

/// Causal multi-head attention with grouped KV heads. Query row `i` sits in cache slot
/// `first_slot + i` and attends to slots `0..=first_slot + i`.
#[allow(clippy::too_many_arguments)]
fn attention(
    pool: &ThreadPool,
    n_head: usize,
    n_head_kv: usize,
    hd: usize,
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    first_slot: usize,
    out: &mut [f32],
) {
    let group = n_head / n_head_kv;
    let kvd = n_head_kv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let dot = kernels::kernels().dot_f32;
    // One chunk per (token, head) pair: `out` is `[n, n_head, hd]`.
    pool.for_each_chunk_mut(out, hd, &|ci, o| {
        let (i, h) = (ci / n_head, ci % n_head);
        let kvh = h / group;
        let qh = &q[i * n_head * hd + h * hd..][..hd];
        let n_keys = first_slot + i + 1;
        kernels::with_scratch(n_keys, |scores| {
            let mut max = f32::NEG_INFINITY;
            for (s, sc) in scores.iter_mut().enumerate() {
                *sc = dot(qh, &kc[s * kvd + kvh * hd..][..hd]) * scale;
                max = max.max(*sc);
            }
            let mut sum = 0.0f32;
            for sc in scores.iter_mut() {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            let inv = 1.0 / sum;
            o.fill(0.0);
            for (s, &p) in scores.iter().enumerate() {
                let vs = &vc[s * kvd + kvh * hd..][..hd];
                let p = p * inv;
                for (oj, &vj) in o.iter_mut().zip(vs) {
                    *oj += p * vj;
                }
            }
        });
    });
}
