//! Blocked attention (the flash-attention scheme): a block of query rows that share a KV
//! head meets the keys and values a block of slots at a time, with an online softmax, so
//! each key and value loaded serves every row of the block and the scores never leave
//! L1. Written in plain Rust that the compiler vectorizes; the SIMD tables compile this
//! same body for their instruction set. The products are accumulated with `mul_add`,
//! which is correctly rounded everywhere (one instruction on FMA hardware, libm's `fmaf`
//! elsewhere), and nothing is reassociated, so every table gives the same bits.

// Index loops over a block mirror the SIMD lanes the compiler makes of them.
#![allow(clippy::needless_range_loop)]

use super::attention_decode::attention_decode;
use super::kv_block::{KvSlice, convert_block};

/// Keys per block.
pub(super) const KEYS: usize = 32;

/// Keys per segment: a row's softmax runs online over the blocks of one segment, and the
/// segments' results are merged in order ([`merge_rows`]), so a decoding token's
/// segments can be computed on different threads and still give the batch's bits.
/// Segments start at the first key a block of rows sees.
pub const SEGMENT: usize = 1024;

/// One block of query rows of one KV head.
pub struct AttnBlock<'a> {
    /// `[tokens * group, hd]` query rows, token-major (a token's `group` heads together).
    pub q: &'a [f32],
    pub hd: usize,
    /// Query heads per token in this block (the heads sharing the KV head).
    pub group: usize,
    /// This head's keys and values in the cache's type: key channel `d` of slot `s` at
    /// `d * stride + s` (transposed), value channel `d` of slot `s` at `s * v_stride + d`.
    pub kv: KvSlice<'a>,
    pub stride: usize,
    pub v_stride: usize,
    /// Token `i` of the block attends to slots `starts[i]..ends[i]`.
    pub starts: &'a [usize],
    pub ends: &'a [usize],
    pub scale: f32,
}

/// Writes `out` (`[tokens * group, hd]`): softmax(scale · q kᵀ) v for every row. `scratch`
/// needs [`scratch_len`] floats.
#[inline(always)]
pub fn attention_block(b: &AttnBlock, out: &mut [f32], scratch: &mut [f32]) {
    attention_block_tiled::<4, 64>(b, out, scratch)
}

/// [`attention_block`] with `R` (at most 4) query rows per pass over a key block and
/// value channels in slabs of `S`: a tile's accumulators must fit the vector registers
/// (`R * KEYS` scores, then `R * S` output channels). Any tiling gives the same bits.
#[inline(always)]
pub fn attention_block_tiled<const R: usize, const S: usize>(
    b: &AttnBlock,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    if b.starts.len() == 1 {
        // One query token (decoding): long contiguous runs of keys instead of blocks.
        return attention_decode(b, out, scratch);
    }
    let hd = b.hd;
    let rows = b.starts.len() * b.group;
    let (scores, rest) = scratch.split_at_mut(rows * KEYS);
    let (kblk, rest) = rest.split_at_mut(hd * KEYS);
    let (vblk, rest) = rest.split_at_mut(KEYS * hd);
    let (maxes, rest) = rest.split_at_mut(rows);
    let (sums, rest) = rest.split_at_mut(rows);
    // The segments merged so far: `[rows, hd]` outputs, then maxima, then sums.
    let (merged_o, rest) = rest.split_at_mut(rows * hd);
    let (merged_m, rest) = rest.split_at_mut(rows);
    let merged_s = &mut rest[..rows];
    let out = &mut out[..rows * hd];
    maxes.fill(f32::NEG_INFINITY);
    sums.fill(0.0);
    out.fill(0.0);
    merged_s.fill(0.0);
    let lo = b.starts.iter().copied().min().unwrap_or(0);
    let hi = b.ends.iter().copied().max().unwrap_or(0);
    for k0 in (lo..hi).step_by(KEYS) {
        if k0 > lo && (k0 - lo).is_multiple_of(SEGMENT) {
            merge_rows(hd, (merged_o, merged_m, merged_s), (out, maxes, sums));
            maxes.fill(f32::NEG_INFINITY);
            sums.fill(0.0);
            out.fill(0.0);
        }
        let nk = KEYS.min(hi - k0);
        // The block's keys ([hd, KEYS]) and values ([KEYS, hd]) are copied (converted
        // from the cache's type), zero-padded, so the loops below have fixed lengths and
        // the many passes of a batch reuse a compact block (the cache's key rows are a
        // large power of two apart and would evict one another).
        convert_block::<KEYS>(&b.kv, hd, b.stride, b.v_stride, k0, nk, kblk, vblk);
        let blk = KeyBlock { k0, kblk, k_stride: KEYS, vblk, v_stride: hd };
        // `R` rows at a time, each with its own accumulator chains across the keys;
        // the last rows one at a time.
        let mut r = 0;
        while r + R <= rows {
            rows_tile::<R, S>(b, &blk, r, scores, maxes, sums, out);
            r += R;
        }
        while r < rows {
            rows_tile::<1, S>(b, &blk, r, scores, maxes, sums, out);
            r += 1;
        }
    }
    if hi - lo > SEGMENT {
        merge_rows(hd, (merged_o, merged_m, merged_s), (out, maxes, sums));
        out.copy_from_slice(merged_o);
        sums.copy_from_slice(merged_s);
    }
    normalize(hd, out, sums);
}

/// Divides each row of `out` (`[rows, hd]`) by its softmax sum (rows that saw no key
/// stay 0).
#[inline(always)]
pub fn normalize(hd: usize, out: &mut [f32], sums: &[f32]) {
    for (o, &s) in out.chunks_exact_mut(hd).zip(sums) {
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        for x in o.iter_mut() {
            *x *= inv;
        }
    }
}

/// A segment's unnormalized outputs (`[rows, hd]`), softmax maxima and sums (`[rows]`).
pub type SegmentState<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// Merges a segment's state `cur` into `acc` (the segments before it), row by row: both
/// rescaled to the larger maximum. A side that saw no key (sum 0) leaves the other as it
/// is; the first segment is copied.
#[inline(always)]
pub fn merge_rows(hd: usize, acc: SegmentState<'_>, cur: SegmentState<'_>) {
    let (acc_o, acc_m, acc_s) = acc;
    let (o, m, s) = cur;
    for r in 0..acc_m.len() {
        if s[r] == 0.0 {
            continue;
        }
        let (ao, co) = (&mut acc_o[r * hd..(r + 1) * hd], &o[r * hd..(r + 1) * hd]);
        if acc_s[r] == 0.0 {
            ao.copy_from_slice(co);
            (acc_m[r], acc_s[r]) = (m[r], s[r]);
            continue;
        }
        let mx = acc_m[r].max(m[r]);
        let (a, c) = (exp(acc_m[r] - mx), exp(m[r] - mx));
        acc_s[r] = acc_s[r] * a + s[r] * c;
        acc_m[r] = mx;
        for (x, &y) in ao.iter_mut().zip(co) {
            *x = y.mul_add(c, *x * a);
        }
    }
}

/// One block of `KEYS` keys and values, in the cache or copied out of it.
struct KeyBlock<'a> {
    k0: usize,
    /// Channel `d` of the block's keys at `kblk[d * k_stride..][..KEYS]`.
    kblk: &'a [f32],
    k_stride: usize,
    /// Key `t`'s values at `vblk[t * v_stride..][..hd]`.
    vblk: &'a [f32],
    v_stride: usize,
}

/// Rows `r0..r0 + R` against one key block: scores, online softmax, values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_tile<const R: usize, const S: usize>(
    b: &AttnBlock,
    blk: &KeyBlock,
    r0: usize,
    scores: &mut [f32],
    maxes: &mut [f32],
    sums: &mut [f32],
    out: &mut [f32],
) {
    let hd = b.hd;
    let mut acc = [[0f32; KEYS]; R];
    scores_tile(b, blk, r0, &mut acc);
    // Online softmax per row: mask, rescale what was accumulated, exponentiate. Fixed
    // lengths and fixed reduction trees, so it vectorizes.
    let mut alpha = [1f32; R];
    for (i, a) in acc.iter_mut().enumerate() {
        let r = r0 + i;
        let tok = r / b.group;
        let lo_t = b.starts[tok].saturating_sub(blk.k0).min(KEYS);
        let hi_t = b.ends[tok].saturating_sub(blk.k0).min(KEYS);
        if lo_t >= hi_t {
            // Nothing visible to this row in this block: it contributes nothing.
            a.fill(0.0);
            continue;
        }
        for (t, x) in a.iter_mut().enumerate() {
            *x = if t >= lo_t && t < hi_t { *x * b.scale } else { f32::NEG_INFINITY };
        }
        let m = maxes[r].max(max_of(a));
        alpha[i] = exp(maxes[r] - m);
        maxes[r] = m;
        for x in a.iter_mut() {
            *x = exp(*x - m);
        }
        sums[r] = sums[r] * alpha[i] + sum_of(a);
    }
    for (i, a) in acc.iter().enumerate() {
        scores[(r0 + i) * KEYS..(r0 + i + 1) * KEYS].copy_from_slice(a);
    }
    // Values: output channels in slabs held in registers across the block's keys.
    if hd.is_multiple_of(S) {
        values::<R, S>(b, blk, r0, &acc, &alpha, out);
    } else {
        values::<R, 16>(b, blk, r0, &acc, &alpha, out);
    }
}

/// `acc[i][t] = q[r0 + i] · k[t]` over the block's keys. Four rows are spelled out as
/// four arrays so the compiler keeps all eight vector chains in registers.
#[inline(always)]
fn scores_tile<const R: usize>(
    b: &AttnBlock,
    blk: &KeyBlock,
    r0: usize,
    acc: &mut [[f32; KEYS]; R],
) {
    let hd = b.hd;
    let q = |i: usize| &b.q[(r0 + i.min(R - 1)) * hd..(r0 + i.min(R - 1) + 1) * hd];
    let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; KEYS], [0f32; KEYS], [0f32; KEYS], [0f32; KEYS]);
    for (d, (((&x0, &x1), &x2), &x3)) in q0.iter().zip(q1).zip(q2).zip(q3).enumerate() {
        let Ok(k) = <&[f32; KEYS]>::try_from(&blk.kblk[d * blk.k_stride..d * blk.k_stride + KEYS])
        else {
            return;
        };
        for t in 0..KEYS {
            a0[t] = x0.mul_add(k[t], a0[t]);
            if R > 1 {
                a1[t] = x1.mul_add(k[t], a1[t]);
                a2[t] = x2.mul_add(k[t], a2[t]);
                a3[t] = x3.mul_add(k[t], a3[t]);
            }
        }
    }
    for (i, a) in acc.iter_mut().enumerate() {
        *a = [a0, a1, a2, a3][i];
    }
}

/// `out[r] = out[r] * alpha[r] + Σ_t p[r][t] · v[t]` for channels in slabs of `S`
/// (channels past the last whole slab one at a time).
#[inline(always)]
fn values<const R: usize, const S: usize>(
    b: &AttnBlock,
    blk: &KeyBlock,
    r0: usize,
    p: &[[f32; KEYS]; R],
    alpha: &[f32; R],
    out: &mut [f32],
) {
    let hd = b.hd;
    let row = |i: usize| (r0 + i.min(R - 1)) * hd;
    for c0 in (0..hd / S * S).step_by(S) {
        // Four output slabs spelled out as four arrays: they stay in registers.
        let (mut o0, mut o1, mut o2, mut o3) = ([0f32; S], [0f32; S], [0f32; S], [0f32; S]);
        for (i, o) in [&mut o0, &mut o1, &mut o2, &mut o3].into_iter().enumerate().take(R) {
            for (x, &y) in o.iter_mut().zip(&out[row(i) + c0..row(i) + c0 + S]) {
                *x = y * alpha[i];
            }
        }
        for t in 0..KEYS {
            let Ok(v) =
                <&[f32; S]>::try_from(&blk.vblk[t * blk.v_stride + c0..t * blk.v_stride + c0 + S])
            else {
                return;
            };
            let (p0, p1, p2, p3) =
                (p[0][t], p[1.min(R - 1)][t], p[2.min(R - 1)][t], p[3.min(R - 1)][t]);
            for j in 0..S {
                o0[j] = p0.mul_add(v[j], o0[j]);
                if R > 1 {
                    o1[j] = p1.mul_add(v[j], o1[j]);
                    o2[j] = p2.mul_add(v[j], o2[j]);
                    o3[j] = p3.mul_add(v[j], o3[j]);
                }
            }
        }
        for (i, o) in [&o0, &o1, &o2, &o3].into_iter().enumerate().take(R) {
            out[row(i) + c0..row(i) + c0 + S].copy_from_slice(o);
        }
    }
    for c in hd / S * S..hd {
        for i in 0..R {
            let mut x = out[(r0 + i) * hd + c] * alpha[i];
            for t in 0..KEYS {
                x += p[i][t] * blk.vblk[t * blk.v_stride + c];
            }
            out[(r0 + i) * hd + c] = x;
        }
    }
}

/// The largest of `KEYS` values, by a fixed tree of pairwise maxima.
#[inline(always)]
pub(super) fn max_of(a: &[f32; KEYS]) -> f32 {
    let mut h = [0f32; KEYS / 2];
    for j in 0..KEYS / 2 {
        h[j] = a[j].max(a[j + KEYS / 2]);
    }
    let mut w = KEYS / 2;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            h[j] = h[j].max(h[j + w]);
        }
    }
    h[0]
}

/// The sum of `KEYS` values, by a fixed tree of pairwise sums.
#[inline(always)]
pub(super) fn sum_of(a: &[f32; KEYS]) -> f32 {
    let mut h = [0f32; KEYS / 2];
    for j in 0..KEYS / 2 {
        h[j] = a[j] + a[j + KEYS / 2];
    }
    let mut w = KEYS / 2;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            h[j] += h[j + w];
        }
    }
    h[0]
}

/// Floats of scratch `attention_block` needs for `rows` query rows.
pub fn scratch_len(rows: usize, hd: usize) -> usize {
    (rows * (KEYS + 4 + hd) + 2 * hd * KEYS).max(super::attention_decode::scratch_len(rows, hd))
}

/// `e^x`, branch-free so it vectorizes, and the same bits on every platform (the
/// softmax and the SiLU/GELU gates use it rather than libm): range reduction by ln 2 and a
/// degree-6 polynomial, relative error below 4e-7 for |x| ≤ 87; -inf and anything below
/// -87 give 0, anything above 88 gives e^88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let xc = x.clamp(-87.0, 88.0);
    // Round to nearest (ties to even) by adding and removing 1.5 * 2^23: plain float
    // arithmetic, so it vectorizes on every instruction set (no rounding instruction or
    // libm call needed).
    const ROUNDER: f32 = 12_582_912.0;
    let n = (xc * LOG2E + ROUNDER) - ROUNDER;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    // Taylor terms to r^6 (|r| <= ln2 / 2).
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n's integer from the rounded sum's bits (|n| < 2^22): an integer subtraction that
    // vectorizes, where a float-to-int cast checks for NaN and overflow.
    let ni = (xc * LOG2E + ROUNDER).to_bits() as i32 - ROUNDER.to_bits() as i32;
    let scaled = p * f32::from_bits(((ni + 127) << 23) as u32);
    if x < -87.0 { 0.0 } else { scaled }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 87.0 {
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "relative error {worst:e}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    /// The blocked result equals a direct softmax-weighted sum, for a batch (blocks
    /// copied) and for one token (whole blocks read in place, the last one copied).
    #[test]
    fn blocks_equal_the_direct_computation() {
        let (hd, group, n) = (8, 2, 70);
        let f = |i: usize| ((i * 7919) % 97) as f32 / 48.0 - 1.0;
        let kt: Vec<f32> = (0..hd * n).map(f).collect();
        let v: Vec<f32> = (0..n * hd).map(|i| f(i + 5)).collect();
        let batches: [(&[usize], &[usize]); 2] = [(&[0, 10, 40], &[50, 60, 70]), (&[5], &[70])];
        for (starts, ends) in batches {
            let tokens = starts.len();
            let q: Vec<f32> = (0..tokens * group * hd).map(|i| f(i + 11)).collect();
            let b = AttnBlock {
                q: &q,
                hd,
                group,
                kv: KvSlice::F32 { kt: &kt, v: &v },
                stride: n,
                v_stride: hd,
                starts,
                ends,
                scale: 0.3,
            };
            let mut out = vec![0f32; tokens * group * hd];
            let mut scratch = vec![0f32; scratch_len(tokens * group, hd)];
            attention_block(&b, &mut out, &mut scratch);
            for r in 0..tokens * group {
                let i = r / group;
                let s: Vec<f64> = (starts[i]..ends[i])
                    .map(|k| {
                        (0..hd).map(|d| q[r * hd + d] as f64 * kt[d * n + k] as f64).sum::<f64>()
                            * 0.3
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for d in 0..hd {
                    let want: f64 = (starts[i]..ends[i])
                        .zip(&s)
                        .map(|(k, x)| (x - m).exp() / z * v[k * hd + d] as f64)
                        .sum();
                    assert!(
                        (out[r * hd + d] as f64 - want).abs() < 1e-5,
                        "{tokens} tokens: row {r} dim {d}"
                    );
                }
            }
        }
    }
}
