//! Inputs and checks shared by the SIMD parity suites of every architecture
//! (`kernels_simd_parity` and the per-architecture detection tests): random realistic
//! matrices, matrices whose every float step is exact, and the bit-for-bit comparison
//! of a kernel table with the scalar table.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

use bytemuck::Zeroable;
use half::f16;
use joule_core::kernels::pack::{self, ActQ8, Packed, PackedTiles, ROWS};
use joule_core::kernels::{self, Kernels};
use joule_core::quant::{self, GgmlType};
use joule_core::sampling::Rng;
use proptest::prelude::*;

/// Every packed format.
pub const TYPES: [GgmlType; 8] = pack::PACKED_TYPES;

/// The scalar reference table, as the library builds it.
pub fn scalar_table() -> Kernels {
    kernels::table("scalar").expect("the scalar table always exists")
}

/// This architecture's SIMD tables (from the library) that this CPU runs; each missing
/// one is announced once on stderr (uncaptured), and the others still run.
pub fn simd_tables() -> Vec<Kernels> {
    static ANNOUNCED: Mutex<Option<HashSet<&str>>> = Mutex::new(None);
    let mut tables = Vec::new();
    for &name in kernels::simd_table_names() {
        match kernels::table(name) {
            Some(t) => tables.push(t),
            None => {
                let mut seen = ANNOUNCED.lock().unwrap();
                if seen.get_or_insert_with(HashSet::new).insert(name) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "NOTE: this CPU lacks the '{name}' kernels: their parity is NOT tested here"
                    );
                }
            }
        }
    }
    tables
}

// ---------------------------------------------------------------------------------
// Random realistic matrices: quantized by the ggml quantizers, then packed.

pub fn packed_matrix(ty: GgmlType, n_out: usize, n_in: usize, rng: &mut Rng) -> PackedTiles {
    let x: Vec<f32> =
        (0..n_out * n_in).map(|i| rng.gaussian() * (0.5 + (i % 5) as f32 * 0.4)).collect();
    let mut bytes = vec![0u8; ty.row_bytes(n_in as u64).unwrap() as usize * n_out];
    quant::quantize_row(ty, &x, &mut bytes).unwrap();
    pack::pack(ty, &bytes, n_out, n_in).unwrap().expect("packable")
}

pub fn activations(n_tok: usize, n_in: usize, rng: &mut Rng) -> Vec<ActQ8> {
    let x: Vec<f32> =
        (0..n_tok * n_in).map(|i| rng.gaussian() * if i % 97 == 0 { 20.0 } else { 2.0 }).collect();
    let mut q = vec![ActQ8::default(); x.len() / 32];
    pack::quantize_act(&x, &mut q);
    q
}

/// A marker no kernel computes: slots that must stay unwritten keep these bits.
pub const SENTINEL: u32 = 0x7FC0_5A5A;

/// One GEMM call's shape: groups `g0..g1`, `n_tok` tokens, output stride `ld`.
#[derive(Debug, Clone)]
pub struct Call {
    pub g0: usize,
    pub g1: usize,
    pub n_tok: usize,
    pub ld: usize,
}

impl Call {
    pub fn new(n_out: usize, n_tok: usize, g0: usize, g1: usize, extra_ld: usize) -> Call {
        let groups = n_out.div_ceil(ROWS);
        let g0 = g0 % groups;
        let g1 = g0 + 1 + g1 % (groups - g0);
        let span = (g1 * ROWS).min(n_out) - g0 * ROWS;
        Call { g0, g1, n_tok, ld: span + extra_ld }
    }

    pub fn run(&self, k: &Kernels, p: &PackedTiles, act: &[ActQ8]) -> Vec<f32> {
        let mut out = vec![f32::from_bits(SENTINEL); self.n_tok * self.ld];
        k.packed.gemm(p, self.g0..self.g1, act, self.n_tok, &mut out, self.ld);
        out
    }
}

/// Every SIMD table's output must equal the scalar output bit for bit, written or not.
pub fn compare(p: &PackedTiles, act: &[ActQ8], call: &Call) -> Result<(), TestCaseError> {
    let want = call.run(&scalar_table(), p, act);
    let n_out = p.n_out();
    for k in simd_tables() {
        let got = call.run(&k, p, act);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let (t, row) = (i / call.ld, call.g0 * ROWS + i % call.ld);
            let what =
                if w.to_bits() == SENTINEL || row >= n_out { "must not write" } else { "differs" };
            prop_assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{}: t{} row{} (n_out {}): {} vs scalar {}: {}",
                k.name,
                t,
                row,
                n_out,
                g,
                w,
                what
            );
        }
    }
    Ok(())
}

/// (type index, n_out, columns, n_tok, g0, g1, extra ld, seed).
pub fn gemm_case() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize, usize, u64)>
{
    (
        0..TYPES.len(),
        1..=45usize,
        1..=48usize,
        1..=9usize,
        0..8usize,
        0..8usize,
        0..=5usize,
        any::<u64>(),
    )
}

// ---------------------------------------------------------------------------------
// Exact cases: every product and partial sum representable in f32.

/// Quants in `lo..=hi`, drawn so that whole tiles often sit at an extreme (the i16
/// worst cases of the AVX2 kernels).
pub fn quant(rng: &mut Rng, mode: u64, lo: i32, hi: i32) -> i32 {
    match mode {
        0 => hi,
        1 => lo,
        2 => {
            if rng.next_u64() & 1 == 0 {
                lo
            } else {
                hi
            }
        }
        _ => lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32,
    }
}

pub fn pow2(rng: &mut Rng, lo: i32, hi: i32) -> f32 {
    2f32.powi(lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32)
}

/// Weights of `ty` with one power-of-two scale per row (so a row's terms share one
/// unit) and bounded sub-scales; `n_in` is small enough that each row's sum of |terms|
/// stays below 2^24 units (worst cases: Q8_0 24 cols · 32 · 128 · 127 < 2^24; Q4_K
/// 4 tiles · 8 cols · (7 · 15 + 7) · 127 · 32 < 2^24; Q5_K 2 tiles; Q6_K 3 tiles, |sc| ≤ 4).
pub fn exact_matrix(ty: GgmlType, n_out: usize, n_in: usize, rng: &mut Rng) -> PackedTiles {
    let groups = n_out.div_ceil(ROWS);
    let per_group = n_in / ty.block_size();
    let d: Vec<f16> = (0..groups * ROWS).map(|_| f16::from_f32(pow2(rng, -3, 3))).collect();
    let m_of = |rng: &mut Rng, d: f16| {
        f16::from_f32(d.to_f32() * (rng.next_u64() % 33) as f32 - 16.0 * d.to_f32())
    };
    macro_rules! tiles {
        ($ty:ty, |$t:ident, $g:ident, $rng:ident| $fill:block) => {{
            let mut tiles = Vec::new();
            for $g in 0..groups {
                for _ in 0..per_group {
                    let mut $t = <$ty>::zeroed();
                    let $rng = &mut *rng;
                    $fill
                    tiles.push($t);
                }
            }
            Packed { tiles, n_out, n_in, tiles_per_group: per_group }
        }};
    }
    let bytes = |rng: &mut Rng, len: usize, lo: i32, hi: i32| -> Vec<i32> {
        let mode = rng.next_u64() % 6;
        (0..len).map(|_| quant(rng, mode, lo, hi)).collect()
    };
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let bits = if matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1) { 5 } else { 4 };
            let fill = |rng: &mut Rng, qs: &mut pack::Nibbles, qh: &mut pack::HighBits| {
                let v = bytes(rng, 256, 0, (1 << bits) - 1);
                qs.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (v[2 * i] & 15 | (v[2 * i + 1] & 15) << 4) as u8);
                qh.iter_mut().enumerate().for_each(|(i, b)| {
                    *b = (0..8).map(|j| ((v[(8 * i + j) % 256] >> 4) & 1) << j).sum::<i32>() as u8
                });
            };
            match ty {
                GgmlType::Q4_0 => PackedTiles::Q4_0(tiles!(pack::TileQ4_0, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    fill(rng, &mut t.qs, &mut [0; 32]);
                })),
                GgmlType::Q4_1 => PackedTiles::Q4_1(tiles!(pack::TileQ4_1, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    for r in 0..8 {
                        t.m[r] = m_of(rng, t.d[r]);
                    }
                    fill(rng, &mut t.qs, &mut [0; 32]);
                })),
                GgmlType::Q5_0 => PackedTiles::Q5_0(tiles!(pack::TileQ5_0, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    fill(rng, &mut t.qs, &mut t.qh);
                })),
                _ => PackedTiles::Q5_1(tiles!(pack::TileQ5_1, |t, g, rng| {
                    t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
                    for r in 0..8 {
                        t.m[r] = m_of(rng, t.d[r]);
                    }
                    fill(rng, &mut t.qs, &mut t.qh);
                })),
            }
        }
        GgmlType::Q8_0 => PackedTiles::Q8_0(tiles!(pack::TileQ8_0, |t, g, rng| {
            t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
            let v = bytes(rng, 256, -128, 127);
            t.qs.iter_mut().zip(v).for_each(|(q, v)| *q = v as i8);
        })),
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let fill = |rng: &mut Rng,
                        d: &[f16],
                        t_d: &mut [f16; 8],
                        dmin: &mut [f16; 8],
                        sc: &mut [u8; 64],
                        m: &mut [u8; 64]| {
                t_d.copy_from_slice(d);
                dmin.copy_from_slice(d);
                sc.iter_mut().for_each(|s| *s = (rng.next_u64() % 8) as u8);
                m.iter_mut().for_each(|s| *s = (rng.next_u64() % 8) as u8);
            };
            let nib = |rng: &mut Rng, qs: &mut pack::Nibbles, qh: Option<&mut pack::HighBits>| {
                let v = bytes(rng, 256, 0, if qh.is_some() { 31 } else { 15 });
                qs.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (v[2 * i] & 15 | (v[2 * i + 1] & 15) << 4) as u8);
                if let Some(qh) = qh {
                    qh.iter_mut().enumerate().for_each(|(i, b)| {
                        *b = (0..8).map(|j| ((v[(8 * i + j) % 256] >> 4) & 1) << j).sum::<i32>()
                            as u8
                    });
                }
            };
            if ty == GgmlType::Q4_K {
                PackedTiles::Q4_K(tiles!(pack::TileQ4_K, |t, g, rng| {
                    fill(rng, &d[g * 8..g * 8 + 8], &mut t.d, &mut t.dmin, &mut t.sc, &mut t.m);
                    for c in 0..8 {
                        nib(rng, &mut t.qs[c], None);
                    }
                }))
            } else {
                PackedTiles::Q5_K(tiles!(pack::TileQ5_K, |t, g, rng| {
                    fill(rng, &d[g * 8..g * 8 + 8], &mut t.d, &mut t.dmin, &mut t.sc, &mut t.m);
                    for c in 0..8 {
                        nib(rng, &mut t.qs[c], Some(&mut t.qh[c]));
                    }
                }))
            }
        }
        _ => PackedTiles::Q6_K(tiles!(pack::TileQ6_K, |t, g, rng| {
            t.d.copy_from_slice(&d[g * 8..g * 8 + 8]);
            t.sc.iter_mut().for_each(|s| *s = (rng.next_u64() % 9) as i8 - 4);
            for c in 0..8 {
                let v = bytes(rng, 256, -32, 31);
                t.qs[c].iter_mut().zip(v).for_each(|(q, v)| *q = v as i8);
            }
        })),
    }
}

/// Activations with one power-of-two scale per token and quants in -127..=127 (the
/// quantizer's range), often all at an extreme.
pub fn exact_activations(n_tok: usize, nb: usize, rng: &mut Rng) -> Vec<ActQ8> {
    let mut out = Vec::new();
    for _ in 0..n_tok {
        let d = pow2(rng, -4, 2);
        for _ in 0..nb {
            let mode = rng.next_u64() % 6;
            let mut a = ActQ8 { d, sum: 0, qs: [0; 32] };
            a.qs.iter_mut().for_each(|q| *q = quant(rng, mode, -127, 127) as i8);
            a.sum = a.qs.iter().map(|&q| q as i32).sum();
            out.push(a);
        }
    }
    out
}

/// Largest column count per format for which `exact_matrix` stays exact.
pub fn exact_cols(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q8_0 => 24,
        GgmlType::Q4_K => 32,
        GgmlType::Q5_K => 16,
        GgmlType::Q6_K => 24,
        _ => 48,
    }
}
