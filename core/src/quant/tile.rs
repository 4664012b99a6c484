//! The layout of the tiles weights are repacked into at load for the integer kernels: rows in groups of 8, and for each
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

//!
//! Each format's tile struct and its [`TileFormat`] implementation (how a ggml block
//! becomes a row of the tile, and back) live in the format's own file.

use std::fmt::Debug;

use bytemuck::Pod;

use super::format::BlockFormat;

/// Rows per group.
pub const ROWS: usize = 8;

/// 8 rows × 32 columns of 4-bit quants (see the module docs).
pub type Nibbles = [u8; 128];
/// The 5th bits of 8 rows × 32 columns.
pub type HighBits = [u8; 32];
/// 8 rows × 32 columns of signed 8-bit quants.
pub type Bytes = [i8; 256];

/// A tile: one block of each of 8 rows, interleaved for the integer kernels.
pub trait TileFormat: Pod + Debug + Send + Sync {
    /// The ggml block one row of the tile holds.
    type Block: BlockFormat;
    /// Elements of a row one tile covers.
    const LEN: usize = Self::Block::LEN;
    /// Writes `block` as row `r` of this tile (which starts zeroed).
    fn put_row(&mut self, r: usize, block: &Self::Block);
    /// Writes row `r`'s `LEN` values, computed exactly as the ggml format defines them.
    fn values(&self, r: usize, out: &mut [f32]);
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

pub(crate) fn put_nibbles(qs: &mut Nibbles, r: usize, q: &[u8]) {
    for (e, &v) in q.iter().enumerate() {
        let (b, hi) = nibble_slot(r, e);
        qs[b] |= if hi { (v & 15) << 4 } else { v & 15 };
    }
}

pub(crate) fn put_high_bits(qh: &mut HighBits, r: usize, q: &[u8]) {
    for (e, &v) in q.iter().enumerate() {
        let (b, bit) = high_bit_slot(r, e);
        qh[b] |= ((v >> 4) & 1) << bit;
    }
}

pub(crate) fn put_bytes(qs: &mut Bytes, r: usize, q: &[i8]) {
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

/// The 5-bit quant of element `e` of row `r` (nibble plus 5th bit).
pub fn q5_at(qs: &Nibbles, qh: &HighBits, r: usize, e: usize) -> u8 {
    nibble(qs, r, e) | (high_bit(qh, r, e) << 4)
}
