//! Weights repacked at load for the integer kernels: rows in groups of 8, each group a
//! run of tiles (one block of each of the 8 rows, interleaved; layout in
//! [`crate::quant::tile`], each format's tile in the format's own file), and the 8-bit
//! activations the kernels multiply them with.
//!
//! [`for_each_packed_format!`] is the one list of the packed formats: the enum of
//! packed matrices, the list of packed types and the kernel table's fields are all
//! generated from it.

use bytemuck::{Pod, Zeroable};

use crate::quant::{self, GgmlType};

pub use crate::quant::tile::{
    Bytes, HighBits, Nibbles, ROWS, TileFormat, byte, high_bit, nibble, q5_at,
};
pub use crate::quant::{
    TileQ4_0, TileQ4_1, TileQ4_K, TileQ5_0, TileQ5_1, TileQ5_K, TileQ6_K, TileQ8_0,
};

/// Calls `$m!` with the packed formats, one `(type, tile, kernel field)` row each.
macro_rules! for_each_packed_format {
    ($m:ident) => {
        $m! {
            (Q4_0, TileQ4_0, q4_0),
            (Q4_1, TileQ4_1, q4_1),
            (Q5_0, TileQ5_0, q5_0),
            (Q5_1, TileQ5_1, q5_1),
            (Q8_0, TileQ8_0, q8_0),
            (Q4_K, TileQ4_K, q4_k),
            (Q5_K, TileQ5_K, q5_k),
            (Q6_K, TileQ6_K, q6_k),
        }
    };
}
pub(crate) use for_each_packed_format;

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

macro_rules! packed_tiles {
    ($(($ty:ident, $tile:ident, $field:ident)),* $(,)?) => {
        /// Any repacked matrix.
        #[derive(Debug, Clone)]
        #[allow(non_camel_case_types)]
        pub enum PackedTiles {
            $($ty(Packed<$tile>),)*
        }

        /// Every type the integer kernels take (each has a tile format and a kernel per
        /// table).
        pub const PACKED_TYPES: [GgmlType; [$(GgmlType::$ty),*].len()] = [$(GgmlType::$ty),*];

        /// Repacks `bytes` of type `ty` (None: not a packed type).
        fn pack_any<'a>(
            ty: GgmlType,
            packed: &mut dyn FnMut(usize),
            n_out: usize,
            n_in: usize,
            row: impl Fn(usize) -> Option<&'a [u8]>,
        ) -> Option<PackedTiles> {
            match ty {
                $(GgmlType::$ty => Some(PackedTiles::$ty(pack_with(packed, n_out, n_in, row))),)*
                _ => None,
            }
        }

        impl PackedTiles {
            /// Rows of the matrix.
            pub fn n_out(&self) -> usize {
                match self {
                    $(PackedTiles::$ty(p) => p.n_out,)*
                }
            }

            /// Bytes held by the tiles.
            pub fn bytes(&self) -> usize {
                match self {
                    $(PackedTiles::$ty(p) => p.tiles.len() * size_of::<$tile>(),)*
                }
            }

            /// Dequantizes row `row` (`< n_out`) into `out` (`n_in` values).
            pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
                match self {
                    $(PackedTiles::$ty(p) => row_of(p, row, out),)*
                }
            }
        }
    };
}
for_each_packed_format!(packed_tiles);

/// Whether the integer kernels can take weights of this type and shape.
pub fn packable(ty: GgmlType, n_in: usize) -> bool {
    PACKED_TYPES.contains(&ty) && n_in.is_multiple_of(ty.block_size())
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
    Ok(pack_any(ty, packed, n_out, n_in, row))
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

fn pack_with<'a, T: TileFormat>(
    packed: &mut dyn FnMut(usize),
    n_out: usize,
    n_in: usize,
    row: impl Fn(usize) -> Option<&'a [u8]>,
) -> Packed<T> {
    let per_group = n_in / T::LEN;
    let groups = n_out.div_ceil(ROWS);
    let mut tiles = Vec::with_capacity(groups * per_group);
    for g in 0..groups {
        let rows: [Option<&[u8]>; ROWS] = std::array::from_fn(|r| row(g * ROWS + r));
        for j in 0..per_group {
            let mut tile = T::zeroed();
            for (r, block) in blocks::<T::Block>(&rows, j) {
                tile.put_row(r, &block);
            }
            tiles.push(tile);
        }
        if ((g + 1) * ROWS).is_multiple_of(RELEASE_ROWS) {
            packed((g + 1) * ROWS);
        }
    }
    packed(n_out);
    Packed { tiles, n_out, n_in, tiles_per_group: per_group }
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

fn row_of<T: TileFormat>(p: &Packed<T>, row: usize, out: &mut [f32]) {
    let (g, r) = (row / ROWS, row % ROWS);
    for (tile, o) in p.group(g).iter().zip(out.chunks_exact_mut(T::LEN)) {
        tile.values(r, o);
    }
}

/// Dequantizes row `row` (`< n_out`) of a packed matrix into `out` (`n_in` values).
pub fn dequantize_row(t: &PackedTiles, row: usize, out: &mut [f32]) {
    t.dequantize_row(row, out)
}
