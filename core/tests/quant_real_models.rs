//! Dequantization of the real model files against an independent implementation.
//!
//! The golden values below come from gguf-py's numpy dequantizers
//! (`gguf.quants.dequantize`), gguf 0.19.0 with numpy 2.4.6 on Python 3.11, by running
//! this script from the directory holding `models/`:
//!
//! ```python
//! import numpy as np
//! from gguf import GGUFReader
//! from gguf.quants import dequantize
//!
//! PICKS = {
//!     "SmolLM2-135M-Instruct.Q4_1.gguf":
//!         ["blk.0.ffn_down.weight", "token_embd.weight", "blk.0.attn_norm.weight"],
//!     "gemma-3-270m-q4_k_m.gguf":
//!         ["blk.0.attn_output.weight", "blk.0.attn_k.weight", "blk.0.ffn_down.weight",
//!          "blk.0.attn_v.weight", "output_norm.weight"],
//! }
//! for fname, names in PICKS.items():
//!     tensors = {t.name: t for t in GGUFReader(f"models/{fname}").tensors}
//!     for name in names:
//!         t = tensors[name]
//!         row_len = int(t.shape[0])
//!         y = dequantize(t.data, t.tensor_type).reshape(-1, row_len).astype(np.float32)
//!         first = [np.format_float_scientific(v, unique=True, trim='0') for v in y[0, :64]]
//!         print(f'    Golden {{\n        file: "{fname}",\n        tensor: "{name}",')
//!         print(f'        ty: GgmlType::{t.tensor_type.name},\n        row_len: {row_len},')
//!         print(f'        n_rows: {y.shape[0]},\n        first: [')
//!         for k in range(0, 64, 6):
//!             print("            " + ", ".join(first[k:k + 6]) + ",")
//!         print("        ],\n        rows: &[")
//!         for i in sorted({i for i in (0, 1, 2, 3, y.shape[0] - 1) if i < y.shape[0]}):
//!             r = y[i].astype(np.float64)
//!             print(f"            ({i}, {float(r.sum())!r}, {float(np.square(r).sum())!r}),")
//!         print("        ],\n    },")
//! ```
//!
//! It prints the `Golden` entries of `quant_real_models/golden.rs`: the first 64 values of row 0 (shortest decimals
//! that round-trip as f32), and for rows 0-3 and the last row the f64 sum and sum of
//! squares of the row's f32 values.
//!
//! gguf-py computes each value with the same f32 operations as ggml (for example
//! `(d * sc) * q - dmin * m` for Q4_K), so the first 64 values must match exactly; the
//! f64 row sums may differ in summation order only (tolerance 1e-9 relative).
//!
//! The models are not in the repository: a missing file fails the test with a message
//! saying to run `joule fetch`.

use joule_core::gguf::GgufFile;
use joule_core::quant::{self, ActivationKind, GgmlType, QK_K};

#[path = "quant_real_models/golden.rs"]
mod golden;
use golden::{GOLDEN, Golden};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn open_model(file: &str) -> GgufFile {
    let path = joule_core::engine::model_file(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        file,
    );
    assert!(
        path.exists(),
        "model file {} is missing: run `joule fetch` to download the models this test reads",
        path.display()
    );
    GgufFile::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

fn dequantize_rows(
    ty: GgmlType,
    bytes: &[u8],
    row_len: usize,
    rows: std::ops::Range<usize>,
) -> Vec<f32> {
    let row_bytes = ty.row_bytes(row_len as u64).unwrap() as usize;
    let mut out = vec![0f32; row_len * rows.len()];
    for (k, row) in rows.enumerate() {
        let src = &bytes[row * row_bytes..(row + 1) * row_bytes];
        quant::dequantize_row(ty, src, &mut out[k * row_len..(k + 1) * row_len])
            .unwrap_or_else(|e| panic!("row {row}: {e}"));
    }
    out
}

fn check_against_gguf_py(file: &str) {
    let model = open_model(file);
    let goldens: Vec<&Golden> = GOLDEN.iter().filter(|g| g.file == file).collect();
    assert!(!goldens.is_empty());
    for g in goldens {
        let (info, bytes) = model.tensor(g.tensor).unwrap();
        assert_eq!(info.ggml_type, g.ty, "{}", g.tensor);
        assert_eq!((info.row_len(), info.n_rows()), (g.row_len, g.n_rows), "{}", g.tensor);
        let row0 = dequantize_rows(g.ty, bytes, g.row_len, 0..1);
        for (i, (&got, &want)) in row0.iter().zip(&g.first).enumerate() {
            assert_eq!(got, want, "{} ({}) element {i}", g.tensor, g.ty);
        }
        for &(row, sum, sum_sq) in g.rows {
            let y = dequantize_rows(g.ty, bytes, g.row_len, row..row + 1);
            let s: f64 = y.iter().map(|&v| v as f64).sum();
            let s2: f64 = y.iter().map(|&v| v as f64 * v as f64).sum();
            let scale = (sum_sq * g.row_len as f64).sqrt();
            assert!(
                (s - sum).abs() <= 1e-9 * scale,
                "{} row {row}: Σ {s} vs gguf-py {sum}",
                g.tensor
            );
            assert!(
                (s2 - sum_sq).abs() <= 1e-9 * sum_sq,
                "{} row {row}: Σ² {s2} vs gguf-py {sum_sq}",
                g.tensor
            );
        }
    }
}

/// Every tensor of the file dequantizes without error to finite values, and the file
/// holds exactly the expected types, each of which has a golden entry above.
fn check_every_tensor(file: &str, expected_types: &[GgmlType]) {
    let model = open_model(file);
    let mut seen: Vec<GgmlType> = Vec::new();
    for info in &model.tensors {
        let bytes = model.tensor_data(info);
        let (ty, row_len) = (info.ggml_type, info.row_len());
        let row_bytes = ty.row_bytes(row_len as u64).unwrap() as usize;
        assert_eq!(bytes.len(), row_bytes * info.n_rows(), "{}", info.name);
        let mut y = vec![0f32; row_len];
        for (row, src) in bytes.chunks_exact(row_bytes).enumerate() {
            quant::dequantize_row(ty, src, &mut y)
                .unwrap_or_else(|e| panic!("{} row {row}: {e}", info.name));
            assert!(y.iter().all(|v| v.is_finite()), "{} row {row}: non-finite value", info.name);
        }
        if !seen.contains(&info.ggml_type) {
            seen.push(info.ggml_type);
        }
    }
    seen.sort_by_key(|t| t.id());
    let mut expected = expected_types.to_vec();
    expected.sort_by_key(|t| t.id());
    assert_eq!(seen, expected, "{file}: tensor types");
    for ty in expected {
        assert!(
            GOLDEN.iter().any(|g| g.file == file && g.ty == ty),
            "{file}: no golden entry for {ty}"
        );
    }
}

#[test]
fn smollm2_tensors_match_gguf_py() {
    check_against_gguf_py(SMOLLM2);
}

#[test]
fn gemma3_tensors_match_gguf_py() {
    check_against_gguf_py(GEMMA3);
}

#[test]
fn smollm2_every_tensor_dequantizes() {
    check_every_tensor(SMOLLM2, &[GgmlType::F32, GgmlType::Q4_1, GgmlType::Q8_0]);
}

#[test]
fn gemma3_every_tensor_dequantizes() {
    use GgmlType::*;
    check_every_tensor(GEMMA3, &[F32, Q4_K, Q5_0, Q6_K, Q8_0]);
}

/// The integer dot product on real weights agrees with the float dot of the
/// dequantized weights within the activation-quantization budget
/// `Σ_blocks (|d_a| / 2) · Σ|w| + 1e-5 · Σ|w·x|`.
#[test]
fn integer_dots_on_real_weights_stay_within_budget() {
    for file in [SMOLLM2, GEMMA3] {
        let model = open_model(file);
        for g in GOLDEN.iter().filter(|g| g.file == file && g.ty != GgmlType::F32) {
            let (_, bytes) = model.tensor(g.tensor).unwrap();
            let row_bytes = g.ty.row_bytes(g.row_len as u64).unwrap() as usize;
            for row in 0..4 {
                let w_bytes = &bytes[row * row_bytes..(row + 1) * row_bytes];
                let w = dequantize_rows(g.ty, bytes, g.row_len, row..row + 1);
                let x: Vec<f32> = (0..g.row_len)
                    .map(|i| ((i * 37 + row * 11) % 97) as f32 / 48.0 - 1.0)
                    .collect();
                let (got, budget) = dot_with_budget(g.ty, w_bytes, &w, &x);
                let exact: f64 = w.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!(
                    (got as f64 - exact).abs() <= budget,
                    "{} row {row}: {got} vs {exact}, budget {budget}",
                    g.tensor
                );
            }
        }
    }
}

/// Runs the type's integer dot and returns it with its error budget.
fn dot_with_budget(ty: GgmlType, w_bytes: &[u8], w: &[f32], x: &[f32]) -> (f32, f64) {
    use GgmlType::*;
    let abs_wx: f64 = w.iter().zip(x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
    // each activation is off by at most half its block's step |d_a|
    let per_block = |n: usize, scales: &mut dyn Iterator<Item = f32>| -> f64 {
        let abs_sum = |wb: &[f32]| wb.iter().map(|v| v.abs() as f64).sum::<f64>();
        w.chunks(n).zip(scales).map(|(wb, d)| d.abs() as f64 / 2.0 * abs_sum(wb)).sum()
    };
    match quant::activation_kind(ty).unwrap() {
        ActivationKind::Q8x32 => {
            let mut a = vec![bytemuck::Zeroable::zeroed(); x.len() / 32];
            quant::q8_act::quantize(x, &mut a);
            let got = match ty {
                Q4_1 => quant::q4_1::vec_dot(bytemuck::cast_slice(w_bytes), &a),
                Q5_0 => quant::q5_0::vec_dot(bytemuck::cast_slice(w_bytes), &a),
                Q8_0 => quant::q8_0::vec_dot(bytemuck::cast_slice(w_bytes), &a),
                _ => panic!("no golden tensor of type {ty}"),
            };
            let budget = per_block(32, &mut a.iter().map(|b: &quant::BlockQ8x32| b.d));
            (got, budget + 1e-5 * abs_wx)
        }
        ActivationKind::Q8K => {
            let mut a = vec![bytemuck::Zeroable::zeroed(); x.len() / QK_K];
            quant::q8_k::quantize(x, &mut a);
            let got = match ty {
                Q4_K => quant::q4_k::vec_dot(bytemuck::cast_slice(w_bytes), &a),
                Q6_K => quant::q6_k::vec_dot(bytemuck::cast_slice(w_bytes), &a),
                _ => panic!("no golden tensor of type {ty}"),
            };
            let budget = per_block(QK_K, &mut a.iter().map(|b: &quant::BlockQ8_K| b.d));
            (got, budget + 1e-5 * abs_wx)
        }
        ActivationKind::F32 => panic!("{ty} has no integer dot"),
    }
}
