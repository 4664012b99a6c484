//! `joule quantize`: the per-tensor type choices (llama.cpp's, including its fallbacks
//! for rows that are not a multiple of 256), metadata kept, values close to the source.

use std::collections::BTreeMap;

use joule_core::gguf::{GgufFile, Value};
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::quant::{self, GgmlType};
use joule_core::requantize::{FileType, requantize};

fn mix(f: &GgufFile) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in &f.tensors {
        *m.entry(t.ggml_type.name().to_string()).or_insert(0) += 1;
    }
    m
}

fn values(f: &GgufFile, name: &str) -> Vec<f32> {
    let (info, data) = f.tensor(name).unwrap();
    let mut out = vec![0f32; info.n_elements() as usize];
    quant::dequantize_row(info.ggml_type, data, &mut out).unwrap();
    out
}

#[test]
fn a_synthetic_f32_model_requantizes_to_each_type() {
    let spec = SyntheticSpec {
        n_layers: 8,
        n_embd: 256,
        n_ff: 512,
        n_head: 4,
        n_head_kv: 2,
        tied_output: false,
        ..SyntheticSpec::tiny()
    };
    let src = GgufFile::from_bytes(&synthetic_model(&spec).unwrap().to_bytes()).unwrap();
    for (target, bound) in [
        (FileType::Q8_0, 0.01),
        (FileType::Q4_0, 0.15),
        (FileType::Q4_1, 0.12),
        (FileType::Q4_K_M, 0.12),
        (FileType::F16, 1e-3),
    ] {
        let mut calls = 0;
        let out = requantize(&src, target, &mut |_, _, _| calls += 1).unwrap();
        assert_eq!(calls, src.tensors.len() + 1);
        let out = GgufFile::from_bytes(&out.to_bytes()).unwrap();
        assert_eq!(out.tensors.len(), src.tensors.len());
        assert_eq!(out.metadata.str("tokenizer.ggml.model").unwrap(), "gpt2");
        assert_eq!(out.metadata.int::<u32>("general.quantization_version").unwrap(), 2);
        for t in &src.tensors {
            let (a, b) = (values(&src, &t.name), values(&out, &t.name));
            let err = (a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f32>()
                / a.iter().map(|x| x * x).sum::<f32>())
            .sqrt();
            assert!(err < bound, "{target:?} {}: relative error {err}", t.name);
        }
        let ty = |name: &str| out.tensor_info(name).unwrap().ggml_type;
        assert_eq!(ty("blk.0.attn_norm.weight"), GgmlType::F32);
        match target {
            FileType::Q8_0 => assert_eq!(ty("output.weight"), GgmlType::Q8_0),
            FileType::Q4_0 => assert_eq!(
                (ty("blk.3.ffn_up.weight"), ty("output.weight")),
                (GgmlType::Q4_0, GgmlType::Q6_K)
            ),
            FileType::Q4_1 => assert_eq!(ty("blk.3.attn_q.weight"), GgmlType::Q4_1),
            FileType::F16 => assert_eq!(
                (ty("blk.3.attn_q.weight"), ty("output.weight"), ty("token_embd.weight")),
                (GgmlType::F16, GgmlType::F16, GgmlType::F16)
            ),
            FileType::Q4_K_M => {
                // 8 layers: "more bits" for layer 0 (first eighth), 7 (last eighth), 3 and 6.
                let v: Vec<GgmlType> =
                    (0..8).map(|l| ty(&format!("blk.{l}.attn_v.weight"))).collect();
                let (k6, k4) = (GgmlType::Q6_K, GgmlType::Q4_K);
                assert_eq!(v, vec![k6, k4, k4, k6, k4, k4, k6, k6]);
                assert_eq!(ty("blk.1.ffn_gate.weight"), k4);
                // ffn_down rows are 512 wide: k-quants fit.
                assert_eq!(ty("blk.0.ffn_down.weight"), k6);
            }
        }
    }
}

#[test]
fn smollm2_gets_llama_cpp_s_type_mix() {
    let path = joule_core::engine::model_file(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        joule_core::engine::DEFAULT_MODEL_FILE,
    );
    assert!(path.exists(), "{} is missing: run `cargo run -p joule-cli -- fetch`", path.display());
    let src = GgufFile::open(&path).unwrap();
    let q = GgufFile::from_bytes(
        &requantize(&src, FileType::Q4_K_M, &mut |_, _, _| {}).unwrap().to_bytes(),
    )
    .unwrap();
    // llama-quantize's mix for this file (rows of 576 fall back: Q4_K→Q5_0, Q6_K→Q8_0).
    let want: BTreeMap<String, usize> =
        [("F32", 61), ("Q4_K", 16), ("Q5_0", 166), ("Q6_K", 14), ("Q8_0", 15)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
    assert_eq!(mix(&q), want);
    assert_eq!(q.metadata.get("general.file_type"), Some(&Value::U32(15)));
    let q = GgufFile::from_bytes(
        &requantize(&src, FileType::Q4_0, &mut |_, _, _| {}).unwrap().to_bytes(),
    )
    .unwrap();
    let want: BTreeMap<String, usize> =
        [("F32", 61), ("Q4_0", 210), ("Q8_0", 1)].map(|(k, v)| (k.to_string(), v)).into();
    assert_eq!(mix(&q), want);
    // F16: every matrix, the same values as the Q4_1 source up to f16 rounding.
    let f = GgufFile::from_bytes(
        &requantize(&src, FileType::F16, &mut |_, _, _| {}).unwrap().to_bytes(),
    )
    .unwrap();
    let want: BTreeMap<String, usize> =
        [("F32", 61), ("F16", 211)].map(|(k, v)| (k.to_string(), v)).into();
    assert_eq!(mix(&f), want);
    assert_eq!(f.metadata.get("general.file_type"), Some(&Value::U32(1)));
    let (a, b) = (values(&src, "blk.5.ffn_up.weight"), values(&f, "blk.5.ffn_up.weight"));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= x.abs() * 1e-3 + 1e-7, "{x} vs {y}");
    }
}
