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

use super::attention::{AttnBlock, KEYS, exp, max_of, sum_of};
use super::kv_block::{key_row, value_into};

/// Keys per chunk (a multiple of `KEYS`): the rows' scores for a chunk stay in L1.
pub const CHUNK: usize = 1024;

/// Floats of scratch [`attention_decode`] needs for `rows` query rows of `hd` channels.
pub fn scratch_len(rows: usize, hd: usize) -> usize {
    rows * (CHUNK + 2) + CHUNK + KEYS * hd
}

/// `out[r] = softmax(scale · q[r] · Kᵀ) · V` over slots `starts[0]..ends[0]` for the
/// block's single token (`b.starts.len() == 1`).
#[inline(always)]
pub fn attention_decode(b: &AttnBlock, out: &mut [f32], scratch: &mut [f32]) {
    let (hd, rows) = (b.hd, b.group);
    let (lo, hi) = (b.starts[0], b.ends[0]);
    let (scores, rest) = scratch.split_at_mut(rows * CHUNK);
    let (maxes, rest) = rest.split_at_mut(rows);
    let (sums, rest) = rest.split_at_mut(rows);
    let (kbuf, vblk) = rest.split_at_mut(CHUNK);
    let vblk = &mut vblk[..KEYS * hd];
    maxes.fill(f32::NEG_INFINITY);
    sums.fill(0.0);
    let out = &mut out[..rows * hd];
    out.fill(0.0);
    for k0 in (lo..hi).step_by(CHUNK) {
        let n = CHUNK.min(hi - k0);
        chunk_scores(b, k0, n, scores, kbuf);
        for s0 in (0..n).step_by(KEYS) {
            let nk = KEYS.min(n - s0);
            // The block's values once for every row ([KEYS, hd], zero past `nk`).
            for (t, row) in vblk.chunks_exact_mut(hd).enumerate() {
                if t < nk {
                    value_into(&b.kv, k0 + s0 + t, b.v_stride, row);
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
    for r in 0..rows {
        let inv = if sums[r] > 0.0 { 1.0 / sums[r] } else { 0.0 };
        for o in out[r * hd..(r + 1) * hd].iter_mut() {
            *o *= inv;
        }
    }
}

/// `scores[r][j] = q[r] · k[k0 + j]` for `j < n`, channel by channel (the sums run over the
/// channels in order, as the batched path's).
#[inline(always)]
fn chunk_scores(b: &AttnBlock, k0: usize, n: usize, scores: &mut [f32], kbuf: &mut [f32]) {
    let hd = b.hd;
    scores.fill(0.0);
    for d in 0..hd {
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
/// registers across the keys), a product and a sum for the channels after them.
#[inline(always)]
fn block_values(hd: usize, (p, alpha): &([f32; KEYS], f32), o: &mut [f32], vblk: &[f32]) {
    let whole = hd / 16 * 16;
    for c0 in (0..whole).step_by(16) {
        let mut acc = [0f32; 16];
        for (a, &x) in acc.iter_mut().zip(&o[c0..c0 + 16]) {
            *a = x * alpha;
        }
        for t in 0..KEYS {
            let Ok(v) = <&[f32; 16]>::try_from(&vblk[t * hd + c0..t * hd + c0 + 16]) else {
                return;
            };
            for j in 0..16 {
                acc[j] = p[t].mul_add(v[j], acc[j]);
            }
        }
        o[c0..c0 + 16].copy_from_slice(&acc);
    }
    for c in whole..hd {
        let mut x = o[c] * alpha;
        for t in 0..KEYS {
            x += p[t] * vblk[t * hd + c];
        }
        o[c] = x;
    }
}
