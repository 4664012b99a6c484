//! The repacked weight layouts and the scalar integer kernels: packing loses nothing
//! (every value dequantizes bit for bit as the ggml block did), and the kernels equal
//! the f64 product of dequantized weights and dequantized activations up to f32
//! rounding of the scales.

use joule_core::kernels::pack::{self, ActQ8, PackedTiles};
use joule_core::kernels::{self, PackedKernels};
use joule_core::quant::{self, GgmlType};
use joule_core::sampling::Rng;

const TYPES: [GgmlType; 8] = pack::PACKED_TYPES;

/// A random `[n_out, n_in]` matrix quantized to `ty`: (bytes, dequantized values).
fn matrix(ty: GgmlType, n_out: usize, n_in: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> =
        (0..n_out * n_in).map(|i| rng.gaussian() * (1.0 + (i % 7) as f32 * 0.3)).collect();
    let mut bytes = vec![0u8; ty.row_bytes(n_in as u64).unwrap() as usize * n_out];
    quant::quantize_row(ty, &x, &mut bytes).unwrap();
    let mut w = vec![0f32; n_out * n_in];
    quant::dequantize_row(ty, &bytes, &mut w).unwrap();
    (bytes, w)
}

fn activations(n_tok: usize, n_in: usize, seed: u64) -> (Vec<ActQ8>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n_tok * n_in).map(|_| rng.gaussian() * 3.0).collect();
    let mut q = vec![ActQ8::default(); x.len() / 32];
    pack::quantize_act(&x, &mut q);
    let deq = q.iter().flat_map(|b| b.qs.iter().map(move |&v| b.d as f64 * v as f64)).collect();
    (q, deq)
}

fn scalar_kernels() -> PackedKernels {
    kernels::table("scalar").expect("the scalar table always exists").packed
}

#[test]
fn packing_preserves_every_value() {
    for ty in TYPES {
        let (n_out, n_in) = (21, 512);
        let (bytes, w) = matrix(ty, n_out, n_in, 3);
        let packed = pack::pack(ty, &bytes, n_out, n_in).unwrap().expect("packable");
        let mut row = vec![0f32; n_in];
        for r in 0..n_out {
            pack::dequantize_row(&packed, r, &mut row);
            let want = &w[r * n_in..(r + 1) * n_in];
            assert!(row.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "{ty} row {r}");
        }
    }
}

/// Packing reports its progress in whole runs of `RELEASE_ROWS` rows, in order, ending at
/// `n_out`, and a row is reported only after it is packed (so its source may go).
#[test]
fn packing_reports_the_rows_it_is_done_with() {
    let ty = GgmlType::Q8_0;
    let (n_out, n_in) = (2 * pack::RELEASE_ROWS + 40, 32);
    let (bytes, w) = matrix(ty, n_out, n_in, 5);
    let mut calls = Vec::new();
    let packed = pack::pack_releasing(ty, &bytes, n_out, n_in, &mut |rows| calls.push(rows))
        .unwrap()
        .expect("packable");
    assert_eq!(calls, [pack::RELEASE_ROWS, 2 * pack::RELEASE_ROWS, n_out]);
    let mut row = vec![0f32; n_in];
    for r in [0, pack::RELEASE_ROWS - 1, pack::RELEASE_ROWS, n_out - 1] {
        pack::dequantize_row(&packed, r, &mut row);
        assert_eq!(row, w[r * n_in..(r + 1) * n_in], "row {r}");
    }
}

#[test]
fn unpackable_shapes_and_types_are_declined() {
    assert!(pack::pack(GgmlType::F32, &[0u8; 128], 1, 32).unwrap().is_none());
    assert!(pack::pack(GgmlType::Q4_K, &[0u8; 0], 0, 32).unwrap().is_none());
    assert!(pack::pack(GgmlType::Q4_0, &[0u8; 17], 1, 32).is_err());
}

#[test]
fn integer_kernels_equal_the_f64_product_of_what_they_quantized() {
    let k = scalar_kernels();
    for ty in TYPES {
        let (n_out, n_in, n_tok) = (19, 512, 3);
        let (bytes, w) = matrix(ty, n_out, n_in, 5);
        let packed = pack::pack(ty, &bytes, n_out, n_in).unwrap().unwrap();
        let (act, a) = activations(n_tok, n_in, 9);
        let mut out = vec![f32::NAN; n_tok * n_out];
        k.gemm(&packed, 0..n_out.div_ceil(8), &act, n_tok, &mut out, n_out);
        for t in 0..n_tok {
            for r in 0..n_out {
                let terms = (0..n_in).map(|e| w[r * n_in + e] as f64 * a[t * n_in + e]);
                let (want, mag): (f64, f64) =
                    terms.fold((0.0, 0.0), |(s, m), v| (s + v, m + v.abs()));
                let got = out[t * n_out + r] as f64;
                assert!(
                    (got - want).abs() <= 2e-6 * mag + 1e-6,
                    "{ty} t{t} r{r}: {got} vs {want} (scale {mag})"
                );
            }
        }
    }
}

#[test]
fn group_ranges_write_only_their_rows() {
    let k = scalar_kernels();
    let (n_out, n_in) = (20, 64);
    let (bytes, _) = matrix(GgmlType::Q4_1, n_out, n_in, 1);
    let packed = pack::pack(GgmlType::Q4_1, &bytes, n_out, n_in).unwrap().unwrap();
    let (act, _) = activations(2, n_in, 2);
    let mut full = vec![0f32; 2 * n_out];
    k.gemm(&packed, 0..3, &act, 2, &mut full, n_out);
    // Groups 1..3 are rows 8..20: 12 rows per token, written at stride 12.
    let mut part = vec![f32::NAN; 2 * 12];
    k.gemm(&packed, 1..3, &act, 2, &mut part, 12);
    for t in 0..2 {
        assert_eq!(&part[t * 12..t * 12 + 12], &full[t * n_out + 8..t * n_out + 20]);
    }
    assert!(matches!(packed, PackedTiles::Q4_1(_)));
}

#[test]
fn activation_quantization_follows_the_q8_rule() {
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
    let mut q = vec![ActQ8::default(); 2];
    pack::quantize_act(&x, &mut q);
    for (b, xs) in q.iter().zip(x.chunks(32)) {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(b.d, amax / 127.0);
        assert_eq!(b.sum, b.qs.iter().map(|&v| v as i32).sum::<i32>());
        for (&qv, &xv) in b.qs.iter().zip(xs) {
            assert!((qv as f32 * b.d - xv).abs() <= b.d * 0.5 + 1e-6);
        }
    }
    let mut zero = vec![ActQ8::default(); 1];
    pack::quantize_act(&[0.0; 32], &mut zero);
    assert_eq!(zero[0], ActQ8::default());
}

#[test]
fn two_level_activations_keep_about_15_bits() {
    let mut rng = Rng::new(11);
    let x: Vec<f32> =
        (0..256).map(|i| rng.gaussian() * if i % 37 == 0 { 40.0 } else { 1.0 }).collect();
    let (mut hi, mut lo) = (vec![ActQ8::default(); 8], vec![ActQ8::default(); 8]);
    pack::quantize_two_level(pack::quantize_act, &x, &mut hi, &mut lo);
    let mut one = vec![ActQ8::default(); 8];
    pack::quantize_act(&x, &mut one);
    assert_eq!(one, hi, "the first level is the plain quantization");
    for (b, xs) in x.chunks(32).enumerate() {
        for (e, &v) in xs.iter().enumerate() {
            let first = hi[b].d * hi[b].qs[e] as f32;
            let both = first + lo[b].d * lo[b].qs[e] as f32;
            // The second level's step is the first level's / 254 at most.
            assert!(
                (both - v).abs() <= hi[b].d / 254.0 * 0.5 * 1.0001 + 1e-9,
                "block {b} elem {e}"
            );
            assert!((both - v).abs() <= (first - v).abs() + 1e-9);
        }
    }
}
