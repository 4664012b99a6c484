//! Attention for one query token (decoding): the block's query rows (the heads sharing a
//! KV head) against the keys a long chunk at a time. Keys are stored transposed, so a
//! chunk's scores are built channel by channel, each channel's keys one contiguous run
//! that the hardware prefetcher streams (the 32-key blocks of the batched path touch 64
//! rows far apart per block, which left decoding at depth latency-bound).
//!
//! Everything after the scores repeats the batched path's steps on the same 32-key
//! blocks in the same order (online softmax by `max_of`/`sum_of` trees, values by
//! `mul_add`), so a token decoded alone gets the same bits as the same token inside a
//! batch, and every table (which compiles this same body) the same bits as the scalar.

// Index loops mirror the SIMD lanes the compiler makes of them.
#![allow(clippy::needless_range_loop)]

use super::attention::{
    AttnBlock, KEYS, SEGMENT, SegmentState, exp, max_of, merge_rows, normalize, sum_of,
};
use super::kv_block::{key_row, value_into};

/// Keys per chunk: one segment, whose rows' scores stay in L1.
pub const CHUNK: usize = SEGMENT;

/// Floats of scratch [`attention_decode`] needs for `rows` query rows of `hd` channels
/// ([`attention_segment`] needs less).
pub fn scratch_len(rows: usize, hd: usize) -> usize {
    2 * rows * (hd + 2) + rows * CHUNK + CHANNELS * CHUNK + KEYS * hd
}

/// Key channels converted and multiplied per pass over a chunk's scores (fewer loads and
/// stores of the scores; the sums still run over the channels in order).
const CHANNELS: usize = 4;

/// `out[r] = softmax(scale · q[r] · Kᵀ) · V` over slots `starts[0]..ends[0]` for the
/// block's single token (`b.starts.len() == 1`): segment after segment, merged in order.
#[inline(always)]
pub fn attention_decode(b: &AttnBlock, out: &mut [f32], scratch: &mut [f32]) {
    let (hd, rows) = (b.hd, b.group);
    let (lo, hi) = (b.starts[0], b.ends[0]);
    let (seg, rest) = scratch.split_at_mut(rows * (hd + 2));
    let (acc, rest) = rest.split_at_mut(rows * (hd + 2));
    let (acc_o, acc_ms) = acc.split_at_mut(rows * hd);
    let (acc_m, acc_s) = acc_ms.split_at_mut(rows);
    acc_s.fill(0.0);
    for s0 in (lo..hi).step_by(SEGMENT) {
        let s1 = (s0 + SEGMENT).min(hi);
        segment(b, s0, s1, state_of(seg, rows, hd), rest);
        merge_rows(hd, (&mut *acc_o, &mut *acc_m, &mut *acc_s), state_of(seg, rows, hd));
    }
    let out = &mut out[..rows * hd];
    out.copy_from_slice(acc_o);
    normalize(hd, out, acc_s);
}

/// The unnormalized state of the block's single token over slots `starts[0]..ends[0]`
/// (at most one segment): `state` is `[rows, hd]` outputs, `[rows]` maxima, `[rows]` sums
/// (see [`merge_rows`]).
#[inline(always)]
pub fn attention_segment(b: &AttnBlock, state: &mut [f32], scratch: &mut [f32]) {
    let (hd, rows) = (b.hd, b.group);
    debug_assert!(b.ends[0] - b.starts[0] <= SEGMENT);
    segment(b, b.starts[0], b.ends[0], state_of(state, rows, hd), scratch);
}

/// Views a `[rows * (hd + 2)]` buffer as a segment state.
pub fn state_of(buf: &mut [f32], rows: usize, hd: usize) -> SegmentState<'_> {
    let (o, ms) = buf[..rows * (hd + 2)].split_at_mut(rows * hd);
    let (m, s) = ms.split_at_mut(rows);
    (o, m, s)
}

/// One segment `lo..hi` (at most `CHUNK` keys) from a fresh online softmax.
#[inline(always)]
fn segment(b: &AttnBlock, lo: usize, hi: usize, state: SegmentState<'_>, scratch: &mut [f32]) {
    let (hd, rows) = (b.hd, b.group);
    let (out, maxes, sums) = state;
    let (scores, rest) = scratch.split_at_mut(rows * CHUNK);
    let (kbuf, vblk) = rest.split_at_mut(CHANNELS * CHUNK);
    let vblk = &mut vblk[..KEYS * hd];
    maxes.fill(f32::NEG_INFINITY);
    sums.fill(0.0);
    out.fill(0.0);
    let n = hi - lo;
    chunk_scores(b, lo, n, scores, kbuf);
    for s0 in (0..n).step_by(KEYS) {
        let nk = KEYS.min(n - s0);
        // The block's values once for every row ([KEYS, hd], zero past `nk`).
        for (t, row) in vblk.chunks_exact_mut(hd).enumerate() {
            if t < nk {
                value_into(&b.kv, lo + s0 + t, b.v_stride, row);
            } else {
                row.fill(0.0);
            }
        }
        for r in 0..rows {
            let p = block_softmax(b, &scores[r * CHUNK + s0..][..nk], r, maxes, sums);
            block_values(hd, &p, &mut out[r * hd..(r + 1) * hd], vblk);
        }
    }
}

/// `scores[r][j] = q[r] · k[k0 + j]` for `j < n`, channel by channel (the sums run over the
/// channels in order, as the batched path's), `CHANNELS` channels per pass.
#[inline(always)]
fn chunk_scores(b: &AttnBlock, k0: usize, n: usize, scores: &mut [f32], kbuf: &mut [f32]) {
    let hd = b.hd;
    scores.fill(0.0);
    let whole = hd / CHANNELS * CHANNELS;
    for d0 in (0..whole).step_by(CHANNELS) {
        let (b0, rest) = kbuf.split_at_mut(CHUNK);
        let (b1, rest) = rest.split_at_mut(CHUNK);
        let (b2, b3) = rest.split_at_mut(CHUNK);
        let k0r = key_row(&b.kv, d0, b.stride, k0, n, b0);
        let k1r = key_row(&b.kv, d0 + 1, b.stride, k0, n, b1);
        let k2r = key_row(&b.kv, d0 + 2, b.stride, k0, n, b2);
        let k3r = key_row(&b.kv, d0 + 3, b.stride, k0, n, b3);
        for r in 0..b.group {
            let q = &b.q[r * hd + d0..r * hd + d0 + CHANNELS];
            let s = &mut scores[r * CHUNK..r * CHUNK + n];
            for j in 0..n {
                let x = q[0].mul_add(k0r[j], s[j]);
                let x = q[1].mul_add(k1r[j], x);
                let x = q[2].mul_add(k2r[j], x);
                s[j] = q[3].mul_add(k3r[j], x);
            }
        }
    }
    for d in whole..hd {
        let k = key_row(&b.kv, d, b.stride, k0, n, kbuf);
        for r in 0..b.group {
            let qd = b.q[r * hd + d];
            let s = &mut scores[r * CHUNK..r * CHUNK + n];
            for j in 0..n {
                s[j] = qd.mul_add(k[j], s[j]);
            }
        }
    }
}

/// One 32-key block of row `r`'s online softmax, as the batched path does it: the
/// block's probabilities (0 past `nk`) and the factor `alpha` in `p[KEYS]`'s place.
#[inline(always)]
fn block_softmax(
    b: &AttnBlock,
    s: &[f32],
    r: usize,
    maxes: &mut [f32],
    sums: &mut [f32],
) -> ([f32; KEYS], f32) {
    let mut a = [f32::NEG_INFINITY; KEYS];
    for t in 0..s.len() {
        a[t] = s[t] * b.scale;
    }
    let m = maxes[r].max(max_of(&a));
    let alpha = exp(maxes[r] - m);
    maxes[r] = m;
    for x in a.iter_mut() {
        *x = exp(*x - m);
    }
    sums[r] = sums[r] * alpha + sum_of(&a);
    (a, alpha)
}

/// `o = o * alpha + Σ_t p[t] · v[t]` over the block's `KEYS` values (`[KEYS, hd]`),
/// channel by channel as the batched path: `mul_add` over the whole slabs of 16 (held in
/// registers across the keys, four slabs at a time so their chains overlap), a product
/// and a sum for the channels after them.
#[inline(always)]
fn block_values(hd: usize, (p, alpha): &([f32; KEYS], f32), o: &mut [f32], vblk: &[f32]) {
    let whole = hd / 16 * 16;
    let mut c0 = 0;
    while c0 + 64 <= whole {
        slabs::<64>(p, *alpha, &mut o[c0..c0 + 64], vblk, hd, c0);
        c0 += 64;
    }
    while c0 + 16 <= whole {
        slabs::<16>(p, *alpha, &mut o[c0..c0 + 16], vblk, hd, c0);
        c0 += 16;
    }
    for c in whole..hd {
        let mut x = o[c] * alpha;
        for t in 0..KEYS {
            x += p[t] * vblk[t * hd + c];
        }
        o[c] = x;
    }
}

/// Channels `c0..c0 + W` of [`block_values`]: each channel's `alpha` product, then its
/// `mul_add` over the keys in order.
#[inline(always)]
fn slabs<const W: usize>(
    p: &[f32; KEYS],
    alpha: f32,
    o: &mut [f32],
    vblk: &[f32],
    hd: usize,
    c0: usize,
) {
    let mut acc = [0f32; W];
    for (a, &x) in acc.iter_mut().zip(o.iter()) {
        *a = x * alpha;
    }
    for t in 0..KEYS {
        let Ok(v) = <&[f32; W]>::try_from(&vblk[t * hd + c0..t * hd + c0 + W]) else {
            return;
        };
        for j in 0..W {
            acc[j] = p[t].mul_add(v[j], acc[j]);
        }
    }
    o.copy_from_slice(&acc);
}
