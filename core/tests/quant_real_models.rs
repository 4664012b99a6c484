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
//! It prints the `Golden` entries below: the first 64 values of row 0 (shortest decimals
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

struct Golden {
    file: &'static str,
    tensor: &'static str,
    ty: GgmlType,
    row_len: usize,
    n_rows: usize,
    first: [f32; 64],
    /// (row, Σ, Σ²) in f64
    rows: &'static [(usize, f64, f64)],
}

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

const GOLDEN: [Golden; 8] = [
    Golden {
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        tensor: "blk.0.ffn_down.weight",
        ty: GgmlType::Q4_1,
        row_len: 1536,
        n_rows: 576,
        first: [
            -3.3081055e-01,
            3.4606934e-01,
            7.531738e-02,
            -4.6618652e-01,
            -6.0058594e-02,
            -3.3081055e-01,
            7.531738e-02,
            2.1069336e-01,
            3.4606934e-01,
            7.531738e-02,
            -1.9543457e-01,
            -3.3081055e-01,
            -1.9543457e-01,
            2.1069336e-01,
            -1.9543457e-01,
            4.814453e-01,
            -6.015625e-01,
            -6.015625e-01,
            2.1069336e-01,
            -1.9543457e-01,
            7.531738e-02,
            2.1069336e-01,
            7.531738e-02,
            6.168213e-01,
            -1.9543457e-01,
            -3.3081055e-01,
            2.1069336e-01,
            7.531738e-02,
            1.4290771e+00,
            6.168213e-01,
            -6.0058594e-02,
            -6.0058594e-02,
            4.1625977e-02,
            3.2763672e-01,
            -3.3972168e-01,
            -2.4438477e-01,
            2.322998e-01,
            1.3696289e-01,
            2.322998e-01,
            -2.4438477e-01,
            -5.3710938e-02,
            -4.350586e-01,
            -3.3972168e-01,
            -2.4438477e-01,
            -3.3972168e-01,
            -4.350586e-01,
            -1.4904785e-01,
            -8.1640625e-01,
            6.1364746e-01,
            -5.3710938e-02,
            -2.4438477e-01,
            -1.4904785e-01,
            2.322998e-01,
            1.3696289e-01,
            -3.3972168e-01,
            -5.3710938e-02,
            -2.4438477e-01,
            1.3696289e-01,
            -2.4438477e-01,
            -1.4904785e-01,
            2.322998e-01,
            -5.303955e-01,
            -2.4438477e-01,
            4.2297363e-01,
        ],
        rows: &[
            (0, -17.089996337890625, 166.88934148382396),
            (1, 6.04815673828125, 34.57555069914088),
            (2, 14.769683837890625, 92.46336628030986),
            (3, 2.219024658203125, 176.907150211744),
            (575, 1.4561767578125, 26.398640965577215),
        ],
    },
    Golden {
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        tensor: "token_embd.weight",
        ty: GgmlType::Q8_0,
        row_len: 576,
        n_rows: 49152,
        first: [
            -1.06544495e-01,
            3.2978058e-02,
            4.81987e-02,
            -2.2830963e-02,
            -6.849289e-02,
            -4.5661926e-02,
            2.029419e-02,
            -1.2176514e-01,
            1.06544495e-01,
            -2.2323608e-01,
            2.5367737e-03,
            -8.6250305e-02,
            2.1816254e-01,
            -3.2217026e-01,
            -3.094864e-01,
            2.029419e-02,
            -7.610321e-03,
            8.371353e-02,
            -9.3860626e-02,
            -4.5661926e-02,
            4.058838e-02,
            2.0040512e-01,
            -6.088257e-02,
            7.610321e-02,
            -1.5220642e-02,
            -1.7757416e-02,
            -7.610321e-02,
            4.3125153e-02,
            1.0147095e-01,
            1.445961e-01,
            7.8639984e-02,
            -2.0040512e-01,
            -9.3486786e-02,
            -1.5135956e-01,
            1.1871338e-02,
            0.0e+00,
            5.6388855e-02,
            8.3099365e-02,
            6.0840607e-02,
            -8.755112e-02,
            6.6776276e-02,
            1.1426163e-01,
            2.671051e-02,
            1.7807007e-02,
            8.9035034e-02,
            -5.342102e-02,
            1.3652039e-01,
            -1.8845749e-01,
            6.529236e-02,
            -1.4987564e-01,
            1.810379e-01,
            -1.2168121e-01,
            9.051895e-02,
            -9.200287e-02,
            2.9678345e-02,
            1.1722946e-01,
            3.264618e-02,
            1.7658615e-01,
            -8.458328e-02,
            2.2258759e-02,
            -2.3742676e-02,
            2.3742676e-02,
            1.15745544e-01,
            -1.4839172e-03,
        ],
        rows: &[
            (0, -2.2541093826293945, 8.595294896863379),
            (1, 0.35922718048095703, 10.953474053451828),
            (2, 0.844447135925293, 11.302662592878733),
            (3, -0.22331809997558594, 13.70324800535127),
            (49151, -0.4662208557128906, 15.193982947952463),
        ],
    },
    Golden {
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        tensor: "blk.0.attn_norm.weight",
        ty: GgmlType::F32,
        row_len: 576,
        n_rows: 1,
        first: [
            1.3977051e-02,
            2.3803711e-02,
            -1.977539e-02,
            -3.0273438e-02,
            -1.965332e-02,
            -3.515625e-02,
            2.2583008e-02,
            -2.0019531e-02,
            -1.6308594e-01,
            1.6723633e-02,
            1.7623901e-03,
            -4.8095703e-02,
            3.540039e-03,
            9.1796875e-02,
            5.2978516e-02,
            -3.5888672e-02,
            -1.5625e-02,
            1.7382812e-01,
            -5.279541e-03,
            1.3549805e-02,
            -2.0141602e-02,
            4.3945312e-03,
            -2.8686523e-02,
            -3.9794922e-02,
            9.9487305e-03,
            1.07910156e-01,
            2.6550293e-03,
            2.0599365e-03,
            -5.4626465e-03,
            -4.0527344e-02,
            -3.7841797e-02,
            -2.0141602e-02,
            3.0395508e-02,
            2.9174805e-02,
            3.7109375e-02,
            4.1503906e-03,
            -1.6601562e-02,
            -2.5024414e-02,
            5.3466797e-02,
            -3.3203125e-02,
            3.2043457e-03,
            -2.0446777e-03,
            3.125e-02,
            2.5512695e-02,
            -1.965332e-02,
            -6.0791016e-02,
            2.746582e-03,
            4.5898438e-02,
            4.4189453e-02,
            -2.2949219e-02,
            7.095337e-04,
            2.9907227e-02,
            -6.500244e-03,
            8.422852e-03,
            -4.1259766e-02,
            -1.4160156e-02,
            -2.2338867e-02,
            1.15356445e-02,
            -1.4465332e-02,
            7.421875e-02,
            1.1291504e-02,
            1.8798828e-02,
            3.4713745e-04,
            1.2283325e-03,
        ],
        rows: &[(0, 0.6129436492919922, 0.9180835409024439)],
    },
    Golden {
        file: "gemma-3-270m-q4_k_m.gguf",
        tensor: "blk.0.attn_output.weight",
        ty: GgmlType::Q4_K,
        row_len: 1024,
        n_rows: 640,
        first: [
            -1.5705109e-02,
            4.9669266e-02,
            -3.7496567e-02,
            6.0564995e-02,
            -4.8093796e-03,
            3.8773537e-02,
            -1.5705109e-02,
            2.7877808e-02,
            4.9669266e-02,
            1.6982079e-02,
            -4.8093796e-03,
            1.0414791e-01,
            -3.7496567e-02,
            -5.9288025e-02,
            6.0863495e-03,
            -2.6600838e-02,
            -3.7496567e-02,
            3.8773537e-02,
            7.1460724e-02,
            -4.8093796e-03,
            6.0863495e-03,
            3.8773537e-02,
            -5.9288025e-02,
            8.235645e-02,
            1.0414791e-01,
            3.8773537e-02,
            -4.8392296e-02,
            -1.5705109e-02,
            -1.5705109e-02,
            2.7877808e-02,
            1.6982079e-02,
            -5.9288025e-02,
            2.3014069e-02,
            8.7080956e-02,
            -1.969719e-02,
            -3.0375004e-02,
            -3.0375004e-02,
            -6.2408447e-02,
            8.7080956e-02,
            -3.0375004e-02,
            1.6584396e-03,
            -6.2408447e-02,
            4.4369698e-02,
            -1.969719e-02,
            2.3014069e-02,
            -9.019375e-03,
            -9.019375e-03,
            5.5047512e-02,
            1.6584396e-03,
            -4.105282e-02,
            9.775877e-02,
            6.572533e-02,
            -3.0375004e-02,
            -3.0375004e-02,
            2.3014069e-02,
            7.640314e-02,
            -4.105282e-02,
            1.2336254e-02,
            8.7080956e-02,
            5.5047512e-02,
            1.2336254e-02,
            -5.1730633e-02,
            -5.1730633e-02,
            -6.2408447e-02,
        ],
        rows: &[
            (0, 1.0064644813537598, 1.931844423227119),
            (1, -0.06283646821975708, 1.2063007341435288),
            (2, -2.3628664016723633, 1.432893282622473),
            (3, 0.35801005363464355, 0.6112655087561762),
            (639, 0.5893046855926514, 0.7603948182162696),
        ],
    },
    Golden {
        file: "gemma-3-270m-q4_k_m.gguf",
        tensor: "blk.0.attn_k.weight",
        ty: GgmlType::Q5_0,
        row_len: 640,
        n_rows: 256,
        first: [
            0.0e+00,
            -2.7557373e-02,
            1.1810303e-02,
            -2.7557373e-02,
            3.149414e-02,
            1.1810303e-02,
            -2.3620605e-02,
            -1.1810303e-02,
            -6.298828e-02,
            5.9051514e-02,
            0.0e+00,
            1.9683838e-02,
            -2.7557373e-02,
            0.0e+00,
            2.3620605e-02,
            -4.724121e-02,
            1.1810303e-02,
            -2.7557373e-02,
            -1.1810303e-02,
            5.5114746e-02,
            3.543091e-02,
            7.873535e-03,
            1.574707e-02,
            7.873535e-03,
            2.7557373e-02,
            -3.9367676e-03,
            -7.873535e-03,
            2.7557373e-02,
            -7.873535e-03,
            -7.873535e-03,
            1.574707e-02,
            3.9367676e-03,
            -3.2409668e-02,
            3.781128e-02,
            -0.0e+00,
            5.4016113e-03,
            -5.4016113e-03,
            -2.1606445e-02,
            5.4016113e-03,
            -2.1606445e-02,
            8.642578e-02,
            6.4819336e-02,
            -2.1606445e-02,
            -4.321289e-02,
            4.8614502e-02,
            1.0803223e-02,
            4.321289e-02,
            -2.7008057e-02,
            5.4016113e-03,
            -0.0e+00,
            -2.1606445e-02,
            -2.1606445e-02,
            3.2409668e-02,
            3.2409668e-02,
            5.4016113e-02,
            -0.0e+00,
            -1.6204834e-02,
            -4.321289e-02,
            -1.6204834e-02,
            -3.781128e-02,
            2.7008057e-02,
            -3.781128e-02,
            -1.6204834e-02,
            -1.6204834e-02,
        ],
        rows: &[
            (0, -0.5359344482421875, 0.5221409744117409),
            (1, -0.1516265869140625, 0.37514635524712503),
            (2, -1.1966094970703125, 0.6472072803881019),
            (3, 0.5752105712890625, 0.4136832293588668),
            (255, -0.055572509765625, 1.1061656652018428),
        ],
    },
    Golden {
        file: "gemma-3-270m-q4_k_m.gguf",
        tensor: "blk.0.ffn_down.weight",
        ty: GgmlType::Q6_K,
        row_len: 2048,
        n_rows: 640,
        first: [
            5.211711e-03,
            2.1715462e-02,
            -2.5189936e-02,
            1.3897896e-02,
            2.6927173e-02,
            -1.5635133e-02,
            1.0423422e-02,
            -1.737237e-03,
            -2.1715462e-02,
            -7.817566e-03,
            -6.0803294e-03,
            9.554803e-03,
            6.0803294e-03,
            -1.737237e-03,
            -6.0803294e-03,
            5.211711e-03,
            -1.1395097e-02,
            3.7983656e-03,
            1.39273405e-02,
            6.3306093e-03,
            8.862853e-03,
            -6.3306093e-03,
            -3.291917e-02,
            1.2661219e-03,
            1.2661219e-02,
            -3.9249778e-02,
            5.0644875e-03,
            -8.862853e-03,
            -2.1524072e-02,
            -1.39273405e-02,
            -1.8991828e-02,
            -1.5193462e-02,
            -1.4545679e-02,
            2.2377968e-03,
            -3.0210257e-02,
            0.0e+00,
            4.4755936e-03,
            -3.580475e-02,
            2.125907e-02,
            -7.832289e-03,
            -1.5664577e-02,
            -1.3426781e-02,
            2.3496866e-02,
            -1.2307882e-02,
            -1.00700855e-02,
            2.2377968e-02,
            6.7133904e-03,
            -1.1188984e-03,
            9.186745e-03,
            3.0622482e-03,
            -4.7464848e-02,
            7.6556206e-03,
            3.0622482e-03,
            1.5311241e-03,
            3.0622482e-03,
            -6.1244965e-03,
            -4.7464848e-02,
            6.1244965e-03,
            1.2248993e-02,
            -2.7560234e-02,
            1.3780117e-02,
            -3.0622482e-03,
            4.134035e-02,
            -1.6842365e-02,
        ],
        rows: &[
            (0, 0.5224223136901855, 0.7618259048432563),
            (1, 0.30054032802581787, 0.8741750585101542),
            (2, -1.606031060218811, 1.0007396722206394),
            (3, 0.17323094606399536, 0.5236933923916745),
            (639, 0.13615798950195312, 0.2238424334889757),
        ],
    },
    Golden {
        file: "gemma-3-270m-q4_k_m.gguf",
        tensor: "blk.0.attn_v.weight",
        ty: GgmlType::Q8_0,
        row_len: 640,
        n_rows: 256,
        first: [
            6.088257e-03,
            -3.957367e-02,
            -3.1455994e-02,
            -5.682373e-02,
            -4.2617798e-02,
            5.479431e-02,
            -7.001495e-02,
            -4.7691345e-02,
            -2.8411865e-02,
            -2.7397156e-02,
            2.4353027e-02,
            -1.0147095e-01,
            6.088257e-03,
            7.1029663e-03,
            4.6676636e-02,
            -8.5235596e-02,
            -5.986786e-02,
            -5.1750183e-02,
            4.4647217e-02,
            2.029419e-02,
            5.0735474e-02,
            2.1308899e-02,
            1.1263275e-01,
            1.7250061e-02,
            2.8411865e-02,
            -2.2323608e-02,
            -3.855896e-02,
            1.288681e-01,
            3.0441284e-03,
            7.813263e-02,
            -4.2617798e-02,
            4.8706055e-02,
            2.0972729e-02,
            -6.9909096e-03,
            -6.0587883e-02,
            0.0e+00,
            -7.7676773e-04,
            2.2526264e-02,
            -4.0391922e-02,
            0.0e+00,
            0.0e+00,
            -1.0874748e-02,
            7.534647e-02,
            1.708889e-02,
            3.5731316e-02,
            -3.3401012e-02,
            4.0391922e-02,
            -2.4856567e-02,
            2.0195961e-02,
            8.622122e-02,
            -7.146263e-02,
            6.0587883e-02,
            -4.8936367e-02,
            9.86495e-02,
            -9.321213e-02,
            3.1847477e-02,
            -2.4856567e-02,
            1.7865658e-02,
            5.437374e-02,
            -5.437374e-03,
            -9.010506e-02,
            -1.5535355e-02,
            8.156061e-02,
            7.7676773e-04,
        ],
        rows: &[
            (0, 0.3726310729980469, 1.3105063724947286),
            (1, 1.4639558792114258, 1.269767401533045),
            (2, 1.5688703060150146, 0.8380561809319147),
            (3, 0.3953719139099121, 0.9661348162292143),
            (255, 0.3047351837158203, 0.8773635438342353),
        ],
    },
    Golden {
        file: "gemma-3-270m-q4_k_m.gguf",
        tensor: "output_norm.weight",
        ty: GgmlType::F32,
        row_len: 640,
        n_rows: 1,
        first: [
            7.125e+00,
            9.5625e+00,
            4.7e+01,
            1.45e+02,
            2.83e+02,
            6.8125e+00,
            5.71875e+00,
            1.86e+02,
            3.35e+01,
            1.5625e+01,
            5.5e+00,
            8.90625e+00,
            8.1875e+00,
            2.9375e+01,
            9.3125e+00,
            6.1875e+00,
            8.0e+00,
            2.4375e+01,
            5.25e+00,
            7.1e+01,
            4.671875e+00,
            4.46875e+00,
            5.90625e+00,
            5.175e+01,
            1.44375e+01,
            1.69375e+01,
            2.45e+02,
            7.75e+00,
            3.05e+01,
            1.78e+02,
            8.15625e+00,
            2.8875e+01,
            1.525e+01,
            1.35625e+01,
            7.15625e+00,
            5.40625e+00,
            2.7e+01,
            6.625e+00,
            1.53125e+01,
            6.0e+00,
            7.1e+01,
            1.6125e+01,
            5.15625e+00,
            4.90625e+00,
            6.25e+00,
            5.84375e+00,
            2.11e+02,
            6.21875e+00,
            8.0625e+00,
            7.21875e+00,
            5.675e+01,
            3.5e+01,
            6.125e+00,
            1.8875e+01,
            3.01e+02,
            7.03125e+00,
            5.25e+00,
            5.5625e+00,
            5.21875e+00,
            9.875e+00,
            1.0125e+01,
            9.625e+00,
            2.3625e+01,
            7.375e+00,
        ],
        rows: &[(0, 16861.6953125, 1871095.028137207)],
    },
];
