//! Weights repacked at load for the integer kernels: rows in groups of 8, and for each
//! 32-column block the 8 rows' quants interleaved in 4-element chunks, so that one
//! broadcast of 4 activation bytes meets 4 weights of each of the 8 rows and a
//! dot-product instruction (`vpmaddubsw`/`vpdpbusd`, `sdot`) leaves one row per lane:
//! no horizontal sums.
//!
//! Layouts (r = row in the group 0..8, i = element in the chunk 0..4):
//! - `Nibbles` (4-bit, 128 bytes): vector `k` = bytes `32k..32k+32` (k in 0..4); byte
//!   `4r+i` holds element `4k+i` of row r in its low nibble and element `16+4k+i` in its
//!   high nibble. Low nibbles of vector k are chunk k, high nibbles chunk k+4.
//! - `HighBits` (5th bits, 32 bytes): bytes `8k..8k+8` read as a little-endian u64:
//!   bit `4r+i` is the 5th bit of the low-nibble element of byte `4r+i` of vector k, bit
//!   `32+4r+i` that of its high-nibble element.
//! - `Bytes` (8-bit, 256 bytes): vector `k` = bytes `32k..32k+32` (k in 0..8); byte
//!   `4r+i` is element `4k+i` of row r.
//!
//! Quants are stored unsigned (4- and 5-bit) with the format's offset folded into the
//! kernel, or signed (8-bit, and Q6_K's 6-bit widened to a byte).

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::quant::{self, GgmlType};

/// Rows per group.
pub const ROWS: usize = 8;

/// 8 rows × 32 columns of 4-bit quants (see the module docs).
pub type Nibbles = [u8; 128];
/// The 5th bits of 8 rows × 32 columns.
pub type HighBits = [u8; 32];
/// 8 rows × 32 columns of signed 8-bit quants.
pub type Bytes = [i8; 256];

/// Q4_0: `w = d * (q - 8)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ4_0 {
    pub d: [f16; ROWS],
    pub qs: Nibbles,
}

/// Q4_1: `w = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ4_1 {
    pub d: [f16; ROWS],
    pub m: [f16; ROWS],
    pub qs: Nibbles,
}

/// Q5_0: `w = d * (q - 16)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ5_0 {
    pub d: [f16; ROWS],
    pub qh: HighBits,
    pub qs: Nibbles,
}

/// Q5_1: `w = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ5_1 {
    pub d: [f16; ROWS],
    pub m: [f16; ROWS],
    pub qh: HighBits,
    pub qs: Nibbles,
}

/// Q8_0: `w = d * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ8_0 {
    pub d: [f16; ROWS],
    pub qs: Bytes,
}

/// Q4_K super-block (8 columns of 32): `w = d * sc[j] * q - dmin * m[j]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ4_K {
    pub d: [f16; ROWS],
    pub dmin: [f16; ROWS],
    /// 6-bit scale of column j, row r at `8j + r`.
    pub sc: [u8; 64],
    /// 6-bit min of column j, row r at `8j + r`.
    pub m: [u8; 64],
    pub qs: [Nibbles; 8],
}

/// Q5_K super-block: as Q4_K with 5-bit quants.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ5_K {
    pub d: [f16; ROWS],
    pub dmin: [f16; ROWS],
    pub sc: [u8; 64],
    pub m: [u8; 64],
    pub qh: [HighBits; 8],
    pub qs: [Nibbles; 8],
}

/// Q6_K super-block, quants widened to signed bytes: `w = d * sc[16-elem half] * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TileQ6_K {
    pub d: [f16; ROWS],
    /// Signed scale of column j, half h (elements 16h..16h+16), row r at `16j + 8h + r`.
    pub sc: [i8; 128],
    pub qs: [Bytes; 8],
}

const _: () = assert!(size_of::<TileQ4_0>() == 144);
const _: () = assert!(size_of::<TileQ4_1>() == 160);
const _: () = assert!(size_of::<TileQ5_0>() == 176);
const _: () = assert!(size_of::<TileQ5_1>() == 192);
const _: () = assert!(size_of::<TileQ8_0>() == 272);
const _: () = assert!(size_of::<TileQ4_K>() == 1184);
const _: () = assert!(size_of::<TileQ5_K>() == 1440);
const _: () = assert!(size_of::<TileQ6_K>() == 2192);

/// 32 activations quantized for the integer kernels: value `i` is `d * qs[i]`, with
/// `sum` the exact integer sum of the quants (for offsets and minimums).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ActQ8 {
    pub d: f32,
    pub sum: i32,
    pub qs: [i8; 32],
}

const _: () = assert!(size_of::<ActQ8>() == 40);

/// A weight matrix repacked into tiles: `groups × cols_per_group` tiles, group-major.
#[derive(Debug, Clone)]
pub struct Packed<T> {
    pub tiles: Vec<T>,
    pub n_out: usize,
    pub n_in: usize,
    /// Tiles per group of 8 rows (n_in / 32, or n_in / 256 for k-quants).
    pub tiles_per_group: usize,
}

impl<T> Packed<T> {
    pub fn n_groups(&self) -> usize {
        self.n_out.div_ceil(ROWS)
    }

    /// The tiles of group `g`.
    pub fn group(&self, g: usize) -> &[T] {
        &self.tiles[g * self.tiles_per_group..(g + 1) * self.tiles_per_group]
    }
}

/// Any repacked matrix.
#[derive(Debug, Clone)]
#[allow(non_camel_case_types)]
pub enum PackedTiles {
    Q4_0(Packed<TileQ4_0>),
    Q4_1(Packed<TileQ4_1>),
    Q5_0(Packed<TileQ5_0>),
    Q5_1(Packed<TileQ5_1>),
    Q8_0(Packed<TileQ8_0>),
    Q4_K(Packed<TileQ4_K>),
    Q5_K(Packed<TileQ5_K>),
    Q6_K(Packed<TileQ6_K>),
}

/// Position of element `e` (0..32) of row `r` in a `Nibbles` array: (byte, high nibble?).
fn nibble_slot(r: usize, e: usize) -> (usize, bool) {
    let (hi, e) = (e >= 16, e % 16);
    (32 * (e / 4) + 4 * r + e % 4, hi)
}

/// Position of the 5th bit of element `e` of row `r` in `HighBits`: (byte, bit).
fn high_bit_slot(r: usize, e: usize) -> (usize, usize) {
    let (byte, hi) = nibble_slot(r, e);
    let (k, pos) = (byte / 32, byte % 32);
    let bit = pos + if hi { 32 } else { 0 };
    (8 * k + bit / 8, bit % 8)
}

/// Position of element `e` of row `r` in `Bytes`.
fn byte_slot(r: usize, e: usize) -> usize {
    32 * (e / 4) + 4 * r + e % 4
}

fn put_nibbles(qs: &mut Nibbles, r: usize, q: &[u8]) {
    for (e, &v) in q.iter().enumerate() {
        let (b, hi) = nibble_slot(r, e);
        qs[b] |= if hi { (v & 15) << 4 } else { v & 15 };
    }
}

fn put_high_bits(qh: &mut HighBits, r: usize, q: &[u8]) {
    for (e, &v) in q.iter().enumerate() {
        let (b, bit) = high_bit_slot(r, e);
        qh[b] |= ((v >> 4) & 1) << bit;
    }
}

fn put_bytes(qs: &mut Bytes, r: usize, q: &[i8]) {
    for (e, &v) in q.iter().enumerate() {
        qs[byte_slot(r, e)] = v;
    }
}

/// Reads the 4-bit quant of element `e` of row `r` (the scalar kernels' accessor).
pub fn nibble(qs: &Nibbles, r: usize, e: usize) -> u8 {
    let (b, hi) = nibble_slot(r, e);
    if hi { qs[b] >> 4 } else { qs[b] & 15 }
}

/// Reads the 5th bit of element `e` of row `r`.
pub fn high_bit(qh: &HighBits, r: usize, e: usize) -> u8 {
    let (b, bit) = high_bit_slot(r, e);
    (qh[b] >> bit) & 1
}

/// Reads the 8-bit quant of element `e` of row `r`.
pub fn byte(qs: &Bytes, r: usize, e: usize) -> i8 {
    qs[byte_slot(r, e)]
}

/// Every type the integer kernels take (each has a tile format and a kernel per table).
pub const PACKED_TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Whether the integer kernels can take weights of this type and shape.
pub fn packable(ty: GgmlType, n_in: usize) -> bool {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => {
            n_in.is_multiple_of(32)
        }
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => n_in.is_multiple_of(256),
        _ => false,
    }
}

/// Repacks a `[n_out, n_in]` matrix given as rows of ggml blocks. Returns None for
/// types the integer kernels do not take (the float path handles those).
pub fn pack(
    ty: GgmlType,
    bytes: &[u8],
    n_out: usize,
    n_in: usize,
) -> Result<Option<PackedTiles>, quant::QuantError> {
    pack_releasing(ty, bytes, n_out, n_in, &mut |_| {})
}

/// [`pack`], calling `packed(rows)` as the rows before `rows` are done with (every
/// [`RELEASE_ROWS`] rows and at the end), so a caller can give their source pages back
/// while the rest is packed: a large matrix is then never resident twice.
pub fn pack_releasing(
    ty: GgmlType,
    bytes: &[u8],
    n_out: usize,
    n_in: usize,
    packed: &mut dyn FnMut(usize),
) -> Result<Option<PackedTiles>, quant::QuantError> {
    if !packable(ty, n_in) {
        return Ok(None);
    }
    let row_bytes = n_in / ty.block_size() * ty.type_size();
    let expected = row_bytes * n_out;
    if bytes.len() != expected {
        return Err(quant::QuantError::LengthMismatch {
            ty,
            elements: n_in * n_out,
            expected_bytes: expected,
            bytes: bytes.len(),
        });
    }
    let row = |r: usize| -> Option<&[u8]> {
        (r < n_out).then(|| &bytes[r * row_bytes..(r + 1) * row_bytes])
    };
    Ok(Some(match ty {
        GgmlType::Q4_0 => PackedTiles::Q4_0(pack_with(packed, n_out, n_in, 32, row, |rows, j| {
            let mut t = TileQ4_0::zeroed();
            for (r, b) in blocks::<quant::BlockQ4_0>(rows, j) {
                t.d[r] = b.d;
                let q: Vec<u8> = quant::q4_0::quants(&b).iter().map(|&v| (v + 8) as u8).collect();
                put_nibbles(&mut t.qs, r, &q);
            }
            t
        })?),
        GgmlType::Q4_1 => PackedTiles::Q4_1(pack_with(packed, n_out, n_in, 32, row, |rows, j| {
            let mut t = TileQ4_1::zeroed();
            for (r, b) in blocks::<quant::BlockQ4_1>(rows, j) {
                (t.d[r], t.m[r]) = (b.d, b.m);
                put_nibbles(&mut t.qs, r, &quant::q4_1::quants(&b));
            }
            t
        })?),
        GgmlType::Q5_0 => PackedTiles::Q5_0(pack_with(packed, n_out, n_in, 32, row, |rows, j| {
            let mut t = TileQ5_0::zeroed();
            for (r, b) in blocks::<quant::BlockQ5_0>(rows, j) {
                t.d[r] = b.d;
                let q: Vec<u8> = quant::q5_0::quants(&b).iter().map(|&v| (v + 16) as u8).collect();
                put_nibbles(&mut t.qs, r, &q);
                put_high_bits(&mut t.qh, r, &q);
            }
            t
        })?),
        GgmlType::Q5_1 => PackedTiles::Q5_1(pack_with(packed, n_out, n_in, 32, row, |rows, j| {
            let mut t = TileQ5_1::zeroed();
            for (r, b) in blocks::<quant::BlockQ5_1>(rows, j) {
                (t.d[r], t.m[r]) = (b.d, b.m);
                let q = quant::q5_1::quants(&b);
                put_nibbles(&mut t.qs, r, &q);
                put_high_bits(&mut t.qh, r, &q);
            }
            t
        })?),
        GgmlType::Q8_0 => PackedTiles::Q8_0(pack_with(packed, n_out, n_in, 32, row, |rows, j| {
            let mut t = TileQ8_0::zeroed();
            for (r, b) in blocks::<quant::BlockQ8_0>(rows, j) {
                t.d[r] = b.d;
                put_bytes(&mut t.qs, r, &b.qs);
            }
            t
        })?),
        GgmlType::Q4_K => {
            PackedTiles::Q4_K(pack_with(packed, n_out, n_in, 256, row, |rows, j| {
                let mut t = TileQ4_K::zeroed();
                for (r, b) in blocks::<quant::BlockQ4_K>(rows, j) {
                    (t.d[r], t.dmin[r]) = (b.d, b.dmin);
                    let q = quant::q4_k::quants(&b);
                    for c in 0..8 {
                        (t.sc[8 * c + r], t.m[8 * c + r]) = quant::q4_k::scale_min(&b, c);
                        put_nibbles(&mut t.qs[c], r, &q[32 * c..32 * c + 32]);
                    }
                }
                t
            })?)
        }
        GgmlType::Q5_K => {
            PackedTiles::Q5_K(pack_with(packed, n_out, n_in, 256, row, |rows, j| {
                let mut t = TileQ5_K::zeroed();
                for (r, b) in blocks::<quant::BlockQ5_K>(rows, j) {
                    (t.d[r], t.dmin[r]) = (b.d, b.dmin);
                    let q = quant::q5_k::quants(&b);
                    for c in 0..8 {
                        (t.sc[8 * c + r], t.m[8 * c + r]) = quant::q5_k::scale_min(&b, c);
                        put_nibbles(&mut t.qs[c], r, &q[32 * c..32 * c + 32]);
                        put_high_bits(&mut t.qh[c], r, &q[32 * c..32 * c + 32]);
                    }
                }
                t
            })?)
        }
        GgmlType::Q6_K => {
            PackedTiles::Q6_K(pack_with(packed, n_out, n_in, 256, row, |rows, j| {
                let mut t = TileQ6_K::zeroed();
                for (r, b) in blocks::<quant::BlockQ6_K>(rows, j) {
                    t.d[r] = b.d;
                    let q = quant::q6_k::quants(&b);
                    for c in 0..8 {
                        t.sc[16 * c + r] = b.scales[2 * c];
                        t.sc[16 * c + 8 + r] = b.scales[2 * c + 1];
                        put_bytes(&mut t.qs[c], r, &q[32 * c..32 * c + 32]);
                    }
                }
                t
            })?)
        }
        _ => return Ok(None),
    }))
}

/// Block `j` of each existing row of a group, with its row index in the group.
fn blocks<'a, B: Pod>(
    rows: &'a [Option<&'a [u8]>; ROWS],
    j: usize,
) -> impl Iterator<Item = (usize, B)> + 'a {
    let size = size_of::<B>();
    rows.iter().enumerate().filter_map(move |(r, row)| {
        let bytes = &(*row)?[j * size..(j + 1) * size];
        Some((r, bytemuck::pod_read_unaligned::<B>(bytes)))
    })
}

/// Rows between two calls of `pack_releasing`'s callback.
pub const RELEASE_ROWS: usize = 1024;

fn pack_with<'a, T>(
    packed: &mut dyn FnMut(usize),
    n_out: usize,
    n_in: usize,
    block: usize,
    row: impl Fn(usize) -> Option<&'a [u8]>,
    tile: impl Fn(&[Option<&'a [u8]>; ROWS], usize) -> T,
) -> Result<Packed<T>, quant::QuantError> {
    let per_group = n_in / block;
    let groups = n_out.div_ceil(ROWS);
    let mut tiles = Vec::with_capacity(groups * per_group);
    for g in 0..groups {
        let rows: [Option<&[u8]>; ROWS] = std::array::from_fn(|r| row(g * ROWS + r));
        for j in 0..per_group {
            tiles.push(tile(&rows, j));
        }
        if ((g + 1) * ROWS).is_multiple_of(RELEASE_ROWS) {
            packed((g + 1) * ROWS);
        }
    }
    packed(n_out);
    Ok(Packed { tiles, n_out, n_in, tiles_per_group: per_group })
}

/// Quantizes activations for the integer kernels: ggml's Q8 rule (`d = max|x|/127`,
/// round half away from zero), plus the exact integer sum.
pub fn quantize_act(x: &[f32], out: &mut [ActQ8]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0;
        for (q, &v) in o.qs.iter_mut().zip(xs) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        o.d = d;
        o.sum = sum;
    }
}

/// Two-level activation quantization of `x` (rows of whole 32-blocks): `hi` is the
/// 8-bit quantization of `x`, `lo` the 8-bit quantization of the rest `x - dequant(hi)`,
/// both with `quantize` (the kernel table's quantizer).
pub fn quantize_two_level(
    quantize: fn(&[f32], &mut [ActQ8]),
    x: &[f32],
    hi: &mut [ActQ8],
    lo: &mut [ActQ8],
) {
    // 16 blocks per call of the (SIMD) quantizer, the rests on the stack.
    const BLOCKS: usize = 16;
    let mut rest = [0f32; 32 * BLOCKS];
    for ((xs, h), l) in x.chunks(32 * BLOCKS).zip(hi.chunks_mut(BLOCKS)).zip(lo.chunks_mut(BLOCKS))
    {
        quantize(xs, h);
        for ((r, &v), q) in rest
            .iter_mut()
            .zip(xs)
            .zip(h.iter().flat_map(|b| b.qs.iter().map(move |&q| b.d * q as f32)))
        {
            *r = v - q;
        }
        quantize(&rest[..xs.len()], l);
    }
}

/// Dequantization of one row of a tile (embedding lookups from a tied output matrix,
/// and tests).
pub trait TileValues {
    /// Elements of a row this tile covers.
    const LEN: usize;
    /// Writes row `r`'s `LEN` values, computed exactly as the ggml format defines them.
    fn values(&self, r: usize, out: &mut [f32]);
}

fn q5_at(qs: &Nibbles, qh: &HighBits, r: usize, e: usize) -> u8 {
    nibble(qs, r, e) | (high_bit(qh, r, e) << 4)
}

impl TileValues for TileQ4_0 {
    const LEN: usize = 32;
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = (nibble(&self.qs, r, e) as i32 - 8) as f32 * self.d[r].to_f32();
        }
    }
}

impl TileValues for TileQ4_1 {
    const LEN: usize = 32;
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = nibble(&self.qs, r, e) as f32 * self.d[r].to_f32() + self.m[r].to_f32();
        }
    }
}

impl TileValues for TileQ5_0 {
    const LEN: usize = 32;
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = (q5_at(&self.qs, &self.qh, r, e) as i32 - 16) as f32 * self.d[r].to_f32();
        }
    }
}

impl TileValues for TileQ5_1 {
    const LEN: usize = 32;
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = q5_at(&self.qs, &self.qh, r, e) as f32 * self.d[r].to_f32() + self.m[r].to_f32();
        }
    }
}

impl TileValues for TileQ8_0 {
    const LEN: usize = 32;
    fn values(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate() {
            *o = byte(&self.qs, r, e) as f32 * self.d[r].to_f32();
        }
    }
}

impl TileValues for TileQ4_K {
    const LEN: usize = 256;
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            let scale = self.d[r].to_f32() * self.sc[8 * c + r] as f32;
            let min = self.dmin[r].to_f32() * self.m[8 * c + r] as f32;
            for e in 0..32 {
                out[32 * c + e] = scale * nibble(&self.qs[c], r, e) as f32 - min;
            }
        }
    }
}

impl TileValues for TileQ5_K {
    const LEN: usize = 256;
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            let scale = self.d[r].to_f32() * self.sc[8 * c + r] as f32;
            let min = self.dmin[r].to_f32() * self.m[8 * c + r] as f32;
            for e in 0..32 {
                out[32 * c + e] = scale * q5_at(&self.qs[c], &self.qh[c], r, e) as f32 - min;
            }
        }
    }
}

impl TileValues for TileQ6_K {
    const LEN: usize = 256;
    fn values(&self, r: usize, out: &mut [f32]) {
        for c in 0..8 {
            for e in 0..32 {
                let scale = self.d[r].to_f32() * self.sc[16 * c + 8 * (e / 16) + r] as f32;
                out[32 * c + e] = scale * byte(&self.qs[c], r, e) as f32;
            }
        }
    }
}

fn row_of<T: TileValues>(p: &Packed<T>, row: usize, out: &mut [f32]) {
    let (g, r) = (row / ROWS, row % ROWS);
    for (tile, o) in p.group(g).iter().zip(out.chunks_exact_mut(T::LEN)) {
        tile.values(r, o);
    }
}

/// Dequantizes row `row` (`< n_out`) of a packed matrix into `out` (`n_in` values).
pub fn dequantize_row(t: &PackedTiles, row: usize, out: &mut [f32]) {
    match t {
        PackedTiles::Q4_0(p) => row_of(p, row, out),
        PackedTiles::Q4_1(p) => row_of(p, row, out),
        PackedTiles::Q5_0(p) => row_of(p, row, out),
        PackedTiles::Q5_1(p) => row_of(p, row, out),
        PackedTiles::Q8_0(p) => row_of(p, row, out),
        PackedTiles::Q4_K(p) => row_of(p, row, out),
        PackedTiles::Q5_K(p) => row_of(p, row, out),
        PackedTiles::Q6_K(p) => row_of(p, row, out),
    }
}

impl PackedTiles {
    /// Bytes held by the tiles.
    pub fn bytes(&self) -> usize {
        fn b<T>(p: &Packed<T>) -> usize {
            p.tiles.len() * size_of::<T>()
        }
        match self {
            PackedTiles::Q4_0(p) => b(p),
            PackedTiles::Q4_1(p) => b(p),
            PackedTiles::Q5_0(p) => b(p),
            PackedTiles::Q5_1(p) => b(p),
            PackedTiles::Q8_0(p) => b(p),
            PackedTiles::Q4_K(p) => b(p),
            PackedTiles::Q5_K(p) => b(p),
            PackedTiles::Q6_K(p) => b(p),
        }
    }
}
