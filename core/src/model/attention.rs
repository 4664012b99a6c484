//! Causal grouped-query attention over the KV cache, split across threads by (token,
//! KV head): the query heads that share a KV head are scored together, so each key and
//! value row loaded serves all of them.

use crate::kernels;
use crate::threads::ThreadPool;

/// Shapes of one attention call.
pub(crate) struct AttentionShape<'a> {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Slots of the cache (the stride of the transposed keys).
    pub capacity: usize,
    /// Cache slot of the batch's first token: token `i` sees slots up to `first_slot + i`.
    pub first_slot: usize,
    /// Rope position of every used slot (in increasing order).
    pub positions: &'a [u32],
    /// Sliding window: a query sees only keys less than `window` positions behind it.
    pub window: Option<usize>,
    /// Scale of the query-key products.
    pub scale: f32,
}

impl AttentionShape<'_> {
    /// The slots query token `i` attends to.
    fn keys(&self, i: usize) -> std::ops::Range<usize> {
        let end = self.first_slot + i + 1;
        let start = match self.window {
            Some(w) => {
                let q_pos = self.positions[end - 1] as usize;
                self.positions[..end].partition_point(|&p| (p as usize) + w <= q_pos)
            }
            None => 0,
        };
        start..end
    }
}

/// `out[i, h] = softmax(scale · q[i, h] · K[kvh]ᵀ) · V[kvh]` for every token `i` and head
/// `h`. `q` and `out` are `[n, n_head * hd]`, `kt` is `[kv_dim, capacity]`, `v` is
/// `[capacity, kv_dim]`.
pub(crate) fn attention(pool: &ThreadPool, shape: &AttentionShape, q: &[f32], kt: &[f32], v: &[f32], out: &mut [f32]) {
    let (n_head, n_head_kv, hd, capacity) = (shape.n_head, shape.n_head_kv, shape.head_dim, shape.capacity);
    let group = n_head / n_head_kv;
    let kvd = n_head_kv * hd;
    let k = kernels::kernels();
    // One chunk per (token, KV head): its `group` query heads are contiguous in `out`.
    pool.for_each_chunk_mut(out, group * hd, &|ci, o| {
        let (i, kvh) = (ci / n_head_kv, ci % n_head_kv);
        let qg = &q[i * n_head * hd + kvh * group * hd..][..group * hd];
        let keys = shape.keys(i);
        let n_keys = keys.len();
        kernels::with_scratch(group * n_keys, |scores| {
            (k.attn_scores)(qg, hd, &kt[kvh * hd * capacity + keys.start..], capacity, n_keys, scores);
            for row in scores.chunks_exact_mut(n_keys) {
                softmax_scaled(row, shape.scale);
            }
            (k.attn_values)(scores, n_keys, &v[keys.start * kvd + kvh * hd..], kvd, hd, o);
        });
    });
}

/// `row = softmax(row * scale)`, in place.
fn softmax_scaled(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) * scale;
    let mut sum = 0.0f32;
    for x in row.iter_mut() {
        *x = (*x * scale - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// The attention probabilities of query token `i` (its `[n_head, hd]` query `q`) for
/// every head, written as `[n_head, stride]` rows (slots it does not see left at 0).
pub(crate) fn attention_probabilities(shape: &AttentionShape, i: usize, q: &[f32], kt: &[f32], stride: usize, out: &mut [f32]) {
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_head_kv;
    let keys = shape.keys(i);
    let k = kernels::kernels();
    for (h, row) in out.chunks_exact_mut(stride).enumerate() {
        let kvh = h / group;
        let scores = &mut row[keys.clone()];
        (k.attn_scores)(&q[h * hd..(h + 1) * hd], hd, &kt[kvh * hd * shape.capacity + keys.start..], shape.capacity, keys.len(), scores);
        softmax_scaled(scores, shape.scale);
    }
}
