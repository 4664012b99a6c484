//! The KV cache as the attention kernels read it, in each cache type: f32, f16, or 8-bit
//! quants with an f16 scale per 32 channels (llama.cpp's `q8_0`). The kernels convert
//! one block of keys and values at a time into an L1 scratch tile (never the cache).
//!
//! Keys are stored transposed (channel `d` of slot `s` at `d * stride + s`) in every
//! type, so a block's keys convert contiguously along the slots; `q8_0` keys are quantized
//! per slot over 32 channels (as llama.cpp's rows) with the quants and scales transposed.
//! Values are slot-major. The conversions are plain arithmetic that vectorizes the same
//! way on every instruction set and is exact, so every table gives the same bits.

/// One layer's (or one KV head's) keys and values in the cache's type.
#[derive(Clone, Copy, Debug)]
pub enum KvSlice<'a> {
    /// Keys `[kv_dim, stride]`, values `[slots, v_stride]`.
    F32 { kt: &'a [f32], v: &'a [f32] },
    /// As `F32`, each value rounded to half precision (stored as its bits).
    F16 { kt: &'a [u16], v: &'a [u16] },
    /// Key quants `[kv_dim, stride]` and their f16 scales `[kv_dim / 32, stride]` (one
    /// per slot and 32 channels); value quants `[slots, v_stride]` and their scales
    /// `[slots, v_stride / 32]`.
    Q8_0 { kt: &'a [i8], kt_scale: &'a [u16], v: &'a [i8], v_scale: &'a [u16] },
}

impl<'a> KvSlice<'a> {
    /// The part of a layer's slice that holds KV head `kvh` (`hd` channels; for `Q8_0`,
    /// `hd` is a multiple of 32), keys `stride` slots apart.
    pub fn head(self, kvh: usize, hd: usize, stride: usize) -> KvSlice<'a> {
        let (k0, v0) = (kvh * hd * stride, kvh * hd);
        match self {
            KvSlice::F32 { kt, v } => KvSlice::F32 { kt: &kt[k0..], v: &v[v0..] },
            KvSlice::F16 { kt, v } => KvSlice::F16 { kt: &kt[k0..], v: &v[v0..] },
            KvSlice::Q8_0 { kt, kt_scale, v, v_scale } => KvSlice::Q8_0 {
                kt: &kt[k0..],
                kt_scale: &kt_scale[k0 / 32..],
                v: &v[v0..],
                v_scale: &v_scale[v0 / 32..],
            },
        }
    }

    /// Channel `d` of slot `s`'s key (for the attention probes, not the hot path).
    pub fn key(&self, d: usize, s: usize, stride: usize) -> f32 {
        match self {
            KvSlice::F32 { kt, .. } => kt[d * stride + s],
            KvSlice::F16 { kt, .. } => f16_to_f32(kt[d * stride + s]),
            KvSlice::Q8_0 { kt, kt_scale, .. } => {
                kt[d * stride + s] as f32 * f16_to_f32(kt_scale[d / 32 * stride + s])
            }
        }
    }
}

/// Half to single precision, exactly (as `half::f16::to_f32`), in branch-free integer
/// and float operations that vectorize on every instruction set.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    // Exponent and mantissa moved to f32's positions, then rebiased by 2^112: exact for
    // normal and subnormal halves alike.
    let scaled = f32::from_bits(em << 13) * f32::from_bits((127 + 112) << 23);
    // Infinities and NaNs keep their mantissa under an all-ones exponent.
    let special = f32::from_bits((em << 13) | 0x7f80_0000);
    let mag = if em >= 0x7c00 { special } else { scaled };
    f32::from_bits(mag.to_bits() | sign)
}

/// Channel `d` of keys `k0..k0 + n` (`kt` is `[hd, stride]`), as f32: the cache itself
/// when it is f32, else converted into `buf` (at least `n` floats).
#[inline(always)]
pub fn key_row<'b>(
    kv: &'b KvSlice,
    d: usize,
    stride: usize,
    k0: usize,
    n: usize,
    buf: &'b mut [f32],
) -> &'b [f32] {
    match kv {
        KvSlice::F32 { kt, .. } => &kt[d * stride + k0..][..n],
        _ => {
            key_into(kv, d, stride, k0, &mut buf[..n]);
            &buf[..n]
        }
    }
}

/// Channel `d` of keys `k0..k0 + dst.len()` as f32 into `dst`.
#[inline(always)]
pub fn key_into(kv: &KvSlice, d: usize, stride: usize, k0: usize, dst: &mut [f32]) {
    let (at, n) = (d * stride + k0, dst.len());
    match kv {
        KvSlice::F32 { kt, .. } => dst.copy_from_slice(&kt[at..at + n]),
        KvSlice::F16 { kt, .. } => {
            for (o, &h) in dst.iter_mut().zip(&kt[at..at + n]) {
                *o = f16_to_f32(h);
            }
        }
        KvSlice::Q8_0 { kt, kt_scale, .. } => {
            let sc = &kt_scale[d / 32 * stride + k0..][..n];
            for ((o, &q), &s) in dst.iter_mut().zip(&kt[at..at + n]).zip(sc) {
                *o = q as f32 * f16_to_f32(s);
            }
        }
    }
}

/// The values of slot `s` (rows `v_stride` apart) as f32 into `dst` (`hd` floats).
#[inline(always)]
pub fn value_into(kv: &KvSlice, s: usize, v_stride: usize, dst: &mut [f32]) {
    let (at, hd) = (s * v_stride, dst.len());
    match kv {
        KvSlice::F32 { v, .. } => dst.copy_from_slice(&v[at..at + hd]),
        KvSlice::F16 { v, .. } => {
            for (o, &h) in dst.iter_mut().zip(&v[at..at + hd]) {
                *o = f16_to_f32(h);
            }
        }
        KvSlice::Q8_0 { v, v_scale, .. } => {
            let (qs, scales) = (&v[at..at + hd], &v_scale[at / 32..(at + hd) / 32]);
            for ((o, q), &sc) in dst.chunks_exact_mut(32).zip(qs.chunks_exact(32)).zip(scales) {
                let d = f16_to_f32(sc);
                for (y, &q) in o.iter_mut().zip(q) {
                    *y = q as f32 * d;
                }
            }
        }
    }
}

/// Converts `n` keys from slot `k0` of `kt` (`[hd, stride]`) into `kblk` (`[hd, keys]`,
/// zero past `n`), and their values (rows `v_stride` apart) into `vblk` (`[keys, hd]`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn convert_block<const KEYS: usize>(
    kv: &KvSlice,
    hd: usize,
    stride: usize,
    v_stride: usize,
    k0: usize,
    n: usize,
    kblk: &mut [f32],
    vblk: &mut [f32],
) {
    for d in 0..hd {
        let Ok(dst) = <&mut [f32; KEYS]>::try_from(&mut kblk[d * KEYS..(d + 1) * KEYS]) else {
            return;
        };
        key_into(kv, d, stride, k0, &mut dst[..n]);
        dst[n..].fill(0.0);
    }
    for t in 0..KEYS {
        let dst = &mut vblk[t * hd..(t + 1) * hd];
        if t < n {
            value_into(kv, k0 + t, v_stride, dst);
        } else {
            dst.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    #[test]
    fn f16_conversion_is_exact_for_every_half() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
            }
        }
    }
}
