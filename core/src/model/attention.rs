//! Causal grouped-query attention over the KV cache, split across threads by (token,
//! KV head): the query heads that share a KV head are scored together, so each key and
//! value row loaded serves all of them.

use crate::kernels;
use crate::kernels::attention::{SEGMENT, merge_rows, normalize};
use crate::kernels::attention_decode::{self, state_of};
use crate::kernels::kv_block::KvSlice;
use crate::threads::ThreadPool;

/// Shapes of one attention call.
pub(crate) struct AttentionShape<'a> {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// The stride of the cache's transposed keys (slots reserved).
    pub stride: usize,
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

/// Query rows per block (tokens × heads of a group), so a block's outputs stay in L1.
const BLOCK_FLOATS: usize = 4096;

/// `out[i, h] = softmax(scale · q[i, h] · K[kvh]ᵀ) · V[kvh]` for every token `i` and head
/// `h`. `q` and `out` are `[n, n_head * hd]`, `kt` is `[kv_dim, stride]`, `v` is
/// `[stride, kv_dim]` (both in the cache's type, `kv`); `by_head` (`[n_head_kv, n, group * hd]`, same size as `out`)
/// holds the blocks' results before they are put in token order.
pub(crate) fn attention(
    pool: &ThreadPool,
    shape: &AttentionShape,
    q: &[f32],
    kv: KvSlice,
    by_head: &mut [f32],
    segments: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (n_head, n_head_kv, hd, stride) =
        (shape.n_head, shape.n_head_kv, shape.head_dim, shape.stride);
    let group = n_head / n_head_kv;
    let kvd = n_head_kv * hd;
    let n = out.len() / (n_head * hd);
    if n == 1 && pool.n_threads() > 1 && shape.keys(0).len() > SEGMENT {
        decode_by_segments(pool, shape, q, kv, segments, &mut by_head[..n_head * hd]);
        out[..n_head * hd].copy_from_slice(&by_head[..n_head * hd]);
        return;
    }
    let tokens_per_block = (BLOCK_FLOATS / (group * hd)).clamp(1, 64).min(n);
    // A decoding token makes one item per KV head. When the threads cannot share those
    // evenly (3 KV heads on 2 threads; Gemma 3's single KV head), each query head of a
    // group becomes its own item: a row's result does not depend on the other rows', so
    // the bits stay the same; the rows re-read their KV head (from the shared cache).
    let rows_per_item = if n == 1 && !n_head_kv.is_multiple_of(pool.n_threads()) { 1 } else { group };
    let attend = kernels::kernels().attention;
    // Items: (KV head, first row of the group, block of tokens), contiguous in `by_head`.
    let by_head = &mut by_head[..n * n_head * hd];
    let item_len = if n == 1 { rows_per_item * hd } else { tokens_per_block * group * hd };
    let items = by_head.chunks_mut(n * group * hd).enumerate().flat_map(|(kvh, head)| {
        head.chunks_mut(item_len).enumerate().map(move |(b, o)| (kvh, b, o))
    });
    pool.for_each_item(items, &|(kvh, b, o)| {
        let (r0, t0) = if n == 1 { (b * rows_per_item, 0) } else { (0, b * tokens_per_block) };
        let g = if n == 1 { rows_per_item } else { group };
        let tokens = o.len() / (g * hd);
        let mut starts = [0usize; 64];
        let mut ends = [0usize; 64];
        for i in 0..tokens {
            let keys = shape.keys(t0 + i);
            (starts[i], ends[i]) = (keys.start, keys.end);
        }
        // The item's query rows, token-major, gathered from `q`.
        let rows = tokens * g;
        kernels::with_scratch(rows * hd + kernels::attention::scratch_len(rows, hd), |scratch| {
            let (qb, rest) = scratch.split_at_mut(rows * hd);
            for i in 0..tokens {
                let src = &q[(t0 + i) * n_head * hd + (kvh * group + r0) * hd..][..g * hd];
                qb[i * g * hd..(i + 1) * g * hd].copy_from_slice(src);
            }
            let block = kernels::attention::AttnBlock {
                q: qb,
                hd,
                group: g,
                kv: kv.head(kvh, hd, stride),
                stride,
                v_stride: kvd,
                starts: &starts[..tokens],
                ends: &ends[..tokens],
                scale: shape.scale,
            };
            attend(&block, o, rest);
        });
    });
    // Token order: out[i, kvh * group + g] = by_head[kvh, i, g].
    for kvh in 0..n_head_kv {
        for i in 0..n {
            let src = &by_head[(kvh * n + i) * group * hd..][..group * hd];
            out[i * n_head * hd + kvh * group * hd..][..group * hd].copy_from_slice(src);
        }
    }
}

/// One decoding token over a long cache: every (KV head, segment) is its own work item,
/// then each head's segments are merged in order, as the single-threaded kernel merges
/// them (same bits). `segments` grows to the deepest cache seen and is reused.
fn decode_by_segments(
    pool: &ThreadPool,
    shape: &AttentionShape,
    q: &[f32],
    kv: KvSlice,
    segments: &mut Vec<f32>,
    by_head: &mut [f32],
) {
    let (n_head_kv, hd, stride) = (shape.n_head_kv, shape.head_dim, shape.stride);
    let group = shape.n_head / n_head_kv;
    let keys = shape.keys(0);
    let n_seg = keys.len().div_ceil(SEGMENT);
    let state_len = group * (hd + 2);
    let need = n_head_kv * n_seg * state_len;
    if segments.len() < need {
        segments.resize(need, 0.0);
    }
    let segment = kernels::kernels().attention_segment;
    pool.for_each_item(segments[..need].chunks_mut(state_len).enumerate(), &|(j, state)| {
        let (kvh, seg) = (j / n_seg, j % n_seg);
        let s0 = keys.start + seg * SEGMENT;
        let (starts, ends) = ([s0], [(s0 + SEGMENT).min(keys.end)]);
        let block = kernels::attention::AttnBlock {
            q: &q[kvh * group * hd..(kvh + 1) * group * hd],
            hd,
            group,
            kv: kv.head(kvh, hd, stride),
            stride,
            v_stride: n_head_kv * hd,
            starts: &starts,
            ends: &ends,
            scale: shape.scale,
        };
        kernels::with_scratch(attention_decode::scratch_len(group, hd), |scratch| {
            segment(&block, state, scratch)
        });
    });
    for (head, o) in segments[..need].chunks_mut(n_seg * state_len).zip(by_head.chunks_mut(group * hd)) {
        let (first, rest) = head.split_at_mut(state_len);
        for seg in rest.chunks_mut(state_len) {
            merge_rows(hd, state_of(first, group, hd), state_of(seg, group, hd));
        }
        let (acc_o, _, acc_s) = state_of(first, group, hd);
        o.copy_from_slice(acc_o);
        normalize(hd, o, acc_s);
    }
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
/// every head, written as `[n_head, stride]` rows indexed by cache slot (slots it does
/// not see left at 0); the layer's rows start at cache slot `base`.
pub(crate) fn attention_probabilities(
    shape: &AttentionShape,
    i: usize,
    q: &[f32],
    kv: KvSlice,
    stride: usize,
    base: usize,
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_head_kv;
    let keys = shape.keys(i);
    let k = kernels::kernels();
    for (h, row) in out.chunks_exact_mut(stride).enumerate() {
        let kvh = h / group;
        let scores = &mut row[base + keys.start..base + keys.end];
        let qh = &q[h * hd..(h + 1) * hd];
        let head = kv.head(kvh, hd, shape.stride);
        match head {
            KvSlice::F32 { kt, .. } => {
                let kt = &kt[keys.start..];
                (k.attn_scores)(qh, hd, kt, shape.stride, keys.len(), scores)
            }
            // Other cache types: a key channel at a time (a diagnostic, not the hot path).
            _ => {
                scores.fill(0.0);
                for (d, &qd) in qh.iter().enumerate() {
                    for (j, sc) in scores.iter_mut().enumerate() {
                        *sc += qd * head.key(d, keys.start + j, shape.stride);
                    }
                }
            }
        }
        softmax_scaled(scores, shape.scale);
    }
}
