//! One layer's keys and values in the cache's type (see [`KvType`]): keys transposed
//! (`[kv_dim, stride]`, one row per channel) so attention scores for 8 or 16 slots are
//! plain vector multiply-adds; values slot-major (`[stride, kv_dim]`). `q8_0` keeps one
//! f16 scale per slot and 32 channels beside each (transposed for the keys).

use half::f16;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::kv_block::KvSlice;

/// How the KV cache stores keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    /// 4 bytes per value: exact.
    F32,
    /// 2 bytes per value (llama.cpp's default cache type).
    F16,
    /// 34 bytes per 32 values: 8-bit quants and an f16 scale per 32 channels of a slot
    /// (llama.cpp's `q8_0` cache). Needs a head size that is a multiple of 32.
    #[serde(rename = "q8_0")]
    Q8_0,
}

impl KvType {
    pub const ALL: [KvType; 3] = [KvType::F32, KvType::F16, KvType::Q8_0];

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        KvType::ALL.into_iter().find(|t| t.name() == s)
    }
}

impl std::fmt::Display for KvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KvType {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, crate::Error> {
        KvType::parse(s).ok_or_else(|| {
            crate::Error::InvalidArgument(format!("unknown KV cache type '{s}' (f32, f16, q8_0)"))
        })
    }
}

impl KvType {
    /// Bytes per slot and channel of keys or values (scales included).
    pub fn bytes_per_value(self) -> f64 {
        match self {
            KvType::F32 => 4.0,
            KvType::F16 => 2.0,
            KvType::Q8_0 => 34.0 / 32.0,
        }
    }

    /// Bytes of one key or value row of `kv_dim` channels (q8_0: 34-byte blocks).
    pub fn row_bytes(self, kv_dim: usize) -> usize {
        match self {
            KvType::F32 => 4 * kv_dim,
            KvType::F16 => 2 * kv_dim,
            KvType::Q8_0 => kv_dim / 32 * 34,
        }
    }

    /// Stable code in session files.
    pub(crate) fn code(self) -> u8 {
        match self {
            KvType::F32 => 0,
            KvType::F16 => 1,
            KvType::Q8_0 => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        KvType::ALL.into_iter().find(|t| t.code() == c)
    }
}

/// One layer's storage.
#[derive(Debug)]
pub(crate) enum KvLayer {
    F32 { kt: Vec<f32>, v: Vec<f32> },
    F16 { kt: Vec<u16>, v: Vec<u16> },
    Q8_0 { kt: Vec<i8>, kt_scale: Vec<u16>, v: Vec<i8>, v_scale: Vec<u16> },
}

/// A zeroed vector of `n` elements, or an error naming the bytes wanted.
pub(crate) fn zeroed<T: Copy + Default>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::InvalidArgument(format!(
            "KV cache: cannot reserve {} bytes",
            n.saturating_mul(size_of::<T>())
        ))
    })?;
    v.resize(n, T::default());
    Ok(v)
}

/// `dst[c * new + s] = src[c * old + s]` for `rows` rows and slots `s < used`.
fn relayout<T: Copy + Default>(
    src: &[T],
    rows: usize,
    old: usize,
    new: usize,
    used: usize,
) -> Result<Vec<T>> {
    let mut dst = zeroed(rows.checked_mul(new).ok_or_else(too_large)?)?;
    for c in 0..rows {
        dst[c * new..c * new + used].copy_from_slice(&src[c * old..c * old + used]);
    }
    Ok(dst)
}

fn too_large() -> Error {
    Error::InvalidArgument("KV cache size overflows".into())
}

/// Grows slot-major `v` to `slots` rows of `width`.
fn extend<T: Copy + Default>(v: &mut Vec<T>, width: usize, slots: usize) -> Result<()> {
    let n = width.checked_mul(slots).ok_or_else(too_large)?;
    let more = n.saturating_sub(v.len());
    v.try_reserve_exact(more).map_err(|_| {
        Error::InvalidArgument(format!(
            "KV cache: cannot reserve {} more bytes",
            more.saturating_mul(size_of::<T>())
        ))
    })?;
    v.resize(n, T::default());
    Ok(())
}

/// Moves slot `src` to `dst` in a transposed array of `rows` rows `stride` apart.
fn move_t<T: Copy>(a: &mut [T], rows: usize, stride: usize, src: usize, dst: usize) {
    for c in 0..rows {
        a[c * stride + dst] = a[c * stride + src];
    }
}

/// Moves row `src` to `dst` in a slot-major array of rows `width` long.
fn move_r<T: Copy>(a: &mut [T], width: usize, src: usize, dst: usize) {
    a.copy_within(src * width..(src + 1) * width, dst * width);
}

/// ggml's `q8_0` quantizer (as `quant::q8_0::quantize`) for one block of 32: writes the
/// quants and returns the scale's f16 bits.
fn quantize32(xs: &[f32], qs: &mut [i8]) -> u16 {
    let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round() as i8;
    }
    f16::from_f32(d).to_bits()
}

impl KvLayer {
    /// An empty layer of `stride` slots of `kv_dim` channels.
    pub(crate) fn new(ty: KvType, kv_dim: usize, stride: usize) -> Result<Self> {
        let n = kv_dim.checked_mul(stride).ok_or_else(too_large)?;
        Ok(match ty {
            KvType::F32 => KvLayer::F32 { kt: zeroed(n)?, v: zeroed(n)? },
            KvType::F16 => KvLayer::F16 { kt: zeroed(n)?, v: zeroed(n)? },
            KvType::Q8_0 => KvLayer::Q8_0 {
                kt: zeroed(n)?,
                kt_scale: zeroed(n / 32)?,
                v: zeroed(n)?,
                v_scale: zeroed(n / 32)?,
            },
        })
    }

    pub(crate) fn slice(&self) -> KvSlice<'_> {
        match self {
            KvLayer::F32 { kt, v } => KvSlice::F32 { kt, v },
            KvLayer::F16 { kt, v } => KvSlice::F16 { kt, v },
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                KvSlice::Q8_0 { kt, kt_scale, v, v_scale }
            }
        }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            KvLayer::F32 { kt, v } => 4 * (kt.len() + v.len()),
            KvLayer::F16 { kt, v } => 2 * (kt.len() + v.len()),
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                kt.len() + v.len() + 2 * (kt_scale.len() + v_scale.len())
            }
        }
    }

    /// Re-lays the layer out for `new` slots (from `old`), keeping the first `used`.
    pub(crate) fn grow(&mut self, d: usize, old: usize, new: usize, used: usize) -> Result<()> {
        match self {
            KvLayer::F32 { kt, v } => {
                *kt = relayout(kt, d, old, new, used)?;
                extend(v, d, new)
            }
            KvLayer::F16 { kt, v } => {
                *kt = relayout(kt, d, old, new, used)?;
                extend(v, d, new)
            }
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                *kt = relayout(kt, d, old, new, used)?;
                *kt_scale = relayout(kt_scale, d / 32, old, new, used)?;
                extend(v, d, new)?;
                extend(v_scale, d / 32, new)
            }
        }
    }

    /// Moves slot `src` to slot `dst`.
    pub(crate) fn move_slot(&mut self, d: usize, stride: usize, src: usize, dst: usize) {
        match self {
            KvLayer::F32 { kt, v } => {
                move_t(kt, d, stride, src, dst);
                move_r(v, d, src, dst);
            }
            KvLayer::F16 { kt, v } => {
                move_t(kt, d, stride, src, dst);
                move_r(v, d, src, dst);
            }
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                move_t(kt, d, stride, src, dst);
                move_t(kt_scale, d / 32, stride, src, dst);
                move_r(v, d, src, dst);
                move_r(v_scale, d / 32, src, dst);
            }
        }
    }

    /// Writes slot `slot`'s key and value rows (`d` values each).
    pub(crate) fn store(&mut self, d: usize, stride: usize, slot: usize, k: &[f32], v: &[f32]) {
        self.write_key(d, stride, slot, k);
        match self {
            KvLayer::F32 { v: vs, .. } => vs[slot * d..(slot + 1) * d].copy_from_slice(v),
            KvLayer::F16 { v: vs, .. } => {
                for (o, &x) in vs[slot * d..(slot + 1) * d].iter_mut().zip(v) {
                    *o = f16::from_f32(x).to_bits();
                }
            }
            KvLayer::Q8_0 { v: vq, v_scale, .. } => {
                let row = &mut vq[slot * d..(slot + 1) * d];
                for (b, (xs, qs)) in v.chunks_exact(32).zip(row.chunks_exact_mut(32)).enumerate() {
                    v_scale[slot * d / 32 + b] = quantize32(xs, qs);
                }
            }
        }
    }
}

impl KvLayer {
    /// Appends slot `slot`'s key row then value row in the cache's type (q8_0 rows as
    /// ggml blocks: f16 scale, then 32 quants), little-endian.
    pub(crate) fn export_slot(&self, d: usize, stride: usize, slot: usize, out: &mut Vec<u8>) {
        match self {
            KvLayer::F32 { kt, v } => {
                (0..d).for_each(|c| out.extend_from_slice(&kt[c * stride + slot].to_le_bytes()));
                v[slot * d..(slot + 1) * d]
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            KvLayer::F16 { kt, v } => {
                (0..d).for_each(|c| out.extend_from_slice(&kt[c * stride + slot].to_le_bytes()));
                v[slot * d..(slot + 1) * d]
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                for b in 0..d / 32 {
                    out.extend_from_slice(&kt_scale[b * stride + slot].to_le_bytes());
                    out.extend((0..32).map(|j| kt[(b * 32 + j) * stride + slot] as u8));
                }
                for b in 0..d / 32 {
                    out.extend_from_slice(&v_scale[slot * d / 32 + b].to_le_bytes());
                    out.extend(
                        v[slot * d + b * 32..slot * d + b * 32 + 32].iter().map(|&q| q as u8),
                    );
                }
            }
        }
    }

    /// Reads what [`KvLayer::export_slot`] wrote (`bytes` is exactly one slot's rows).
    pub(crate) fn import_slot(&mut self, d: usize, stride: usize, slot: usize, bytes: &[u8]) {
        let half = bytes.len() / 2;
        let (kb, vb) = bytes.split_at(half);
        let u16s = |b: &[u8]| -> Vec<u16> {
            b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
        };
        match self {
            KvLayer::F32 { kt, v } => {
                let f = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                for (c, x) in kb.chunks_exact(4).enumerate() {
                    kt[c * stride + slot] = f(x);
                }
                for (o, x) in v[slot * d..(slot + 1) * d].iter_mut().zip(vb.chunks_exact(4)) {
                    *o = f(x);
                }
            }
            KvLayer::F16 { kt, v } => {
                for (c, x) in u16s(kb).into_iter().enumerate() {
                    kt[c * stride + slot] = x;
                }
                v[slot * d..(slot + 1) * d].copy_from_slice(&u16s(vb));
            }
            KvLayer::Q8_0 { kt, kt_scale, v, v_scale } => {
                for (b, blk) in kb.chunks_exact(34).enumerate() {
                    kt_scale[b * stride + slot] = u16::from_le_bytes([blk[0], blk[1]]);
                    for (j, &q) in blk[2..].iter().enumerate() {
                        kt[(b * 32 + j) * stride + slot] = q as i8;
                    }
                }
                for (b, blk) in vb.chunks_exact(34).enumerate() {
                    v_scale[slot * d / 32 + b] = u16::from_le_bytes([blk[0], blk[1]]);
                    for (j, &q) in blk[2..].iter().enumerate() {
                        v[slot * d + b * 32 + j] = q as i8;
                    }
                }
            }
        }
    }
}

impl KvLayer {
    /// Slot `slot`'s key row (`d` values) as f32.
    pub(crate) fn read_key(&self, d: usize, stride: usize, slot: usize, out: &mut [f32]) {
        match self {
            KvLayer::F32 { kt, .. } => {
                for (c, o) in out[..d].iter_mut().enumerate() {
                    *o = kt[c * stride + slot];
                }
            }
            KvLayer::F16 { kt, .. } => {
                for (c, o) in out[..d].iter_mut().enumerate() {
                    *o = f16::from_bits(kt[c * stride + slot]).to_f32();
                }
            }
            KvLayer::Q8_0 { kt, kt_scale, .. } => {
                for (b, block) in out[..d].chunks_exact_mut(32).enumerate() {
                    let scale = f16::from_bits(kt_scale[b * stride + slot]).to_f32();
                    for (j, o) in block.iter_mut().enumerate() {
                        *o = kt[(b * 32 + j) * stride + slot] as f32 * scale;
                    }
                }
            }
        }
    }

    /// Overwrites slot `slot`'s key row (`d` values) with `k`, in the layer's type; the
    /// value row is untouched.
    pub(crate) fn write_key(&mut self, d: usize, stride: usize, slot: usize, k: &[f32]) {
        match self {
            KvLayer::F32 { kt, .. } => {
                for (c, &x) in k[..d].iter().enumerate() {
                    kt[c * stride + slot] = x;
                }
            }
            KvLayer::F16 { kt, .. } => {
                for (c, &x) in k[..d].iter().enumerate() {
                    kt[c * stride + slot] = f16::from_f32(x).to_bits();
                }
            }
            KvLayer::Q8_0 { kt, kt_scale, .. } => {
                for (b, xs) in k[..d].chunks_exact(32).enumerate() {
                    let mut qs = [0i8; 32];
                    kt_scale[b * stride + slot] = quantize32(xs, &mut qs);
                    for (j, &q) in qs.iter().enumerate() {
                        kt[(b * 32 + j) * stride + slot] = q;
                    }
                }
            }
        }
    }
}
