//! Tests of the type-erased layer: block sizes against the type table, every error
//! path, and byte round trips agreeing with the typed functions.

use super::*;
use bytemuck::Pod;
use half::{bf16, f16};

const WRITABLE: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// A buffer whose start is 32-byte aligned, like GGUF tensor data.
fn aligned_bytes(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8) + 4]
}

fn aligned_view(buf: &mut [u64], len: usize) -> &mut [u8] {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
    let skip = bytes.as_ptr().align_offset(32);
    &mut bytes[skip..skip + len]
}

fn sample(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect()
}

#[test]
fn block_sizes_match_the_type_table() {
    use GgmlType::*;
    let sizes = [
        (Q4_0, size_of::<BlockQ4_0>()),
        (Q4_1, size_of::<BlockQ4_1>()),
        (Q5_0, size_of::<BlockQ5_0>()),
        (Q5_1, size_of::<BlockQ5_1>()),
        (Q8_0, size_of::<BlockQ8_0>()),
        (Q4_K, size_of::<BlockQ4_K>()),
        (Q5_K, size_of::<BlockQ5_K>()),
        (Q6_K, size_of::<BlockQ6_K>()),
        (Q8_K, size_of::<BlockQ8_K>()),
        (F16, size_of::<f16>()),
        (BF16, size_of::<bf16>()),
        (F32, size_of::<f32>()),
    ];
    for (ty, size) in sizes {
        assert_eq!(ty.type_size(), size, "{ty}");
    }
    assert_eq!(q4_0::QK4_0, Q4_0.block_size());
    assert_eq!(q4_1::QK4_1, Q4_1.block_size());
    assert_eq!(q5_0::QK5_0, Q5_0.block_size());
    assert_eq!(q5_1::QK5_1, Q5_1.block_size());
    assert_eq!(q8_0::QK8_0, Q8_0.block_size());
}

#[test]
fn activation_kinds() {
    use GgmlType::*;
    assert_eq!(activation_kind(BF16), Ok(ActivationKind::F32));
    assert_eq!(activation_kind(Q5_1), Ok(ActivationKind::Q8x32));
    assert_eq!(activation_kind(Q6_K), Ok(ActivationKind::Q8K));
    for ty in WRITABLE {
        assert!(activation_kind(ty).is_ok(), "{ty}");
    }
    assert!(matches!(activation_kind(Q3_K), Err(QuantError::Unsupported { ty: Q3_K, .. })));
}

#[test]
fn unsupported_types_are_errors() {
    let mut out = [0f32; 256];
    let bytes = [0u8; 110];
    let err = dequantize_row(GgmlType::Q3_K, &bytes, &mut out).unwrap_err();
    assert_eq!(err, QuantError::Unsupported { ty: GgmlType::Q3_K, op: "dequantize" });
    assert!(err.to_string().contains("Q3_K"));
    let mut bytes = [0u8; 110];
    let err = quantize_row(GgmlType::Q3_K, &out, &mut bytes).unwrap_err();
    assert!(matches!(err, QuantError::Unsupported { ty: GgmlType::Q3_K, .. }));
    let err = quantize_row(GgmlType::IQ4_NL, &out[..32], &mut bytes[..18]).unwrap_err();
    assert!(matches!(err, QuantError::Unsupported { ty: GgmlType::IQ4_NL, .. }));
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let mut buf = aligned_bytes(64);
    let bytes = aligned_view(&mut buf, 40);
    let mut out = [0f32; 64];
    let ty = GgmlType::Q4_1;
    // 40 bytes = 2 blocks = 64 elements
    assert_eq!(dequantize_row(ty, bytes, &mut out), Ok(()));
    let err = dequantize_row(ty, &bytes[..39], &mut out[..64]).unwrap_err();
    assert_eq!(err, QuantError::ByteCount { ty, len: 39, type_size: 20 });
    let err = dequantize_row(ty, &bytes[..20], &mut out[..31]).unwrap_err();
    assert_eq!(err, QuantError::ElementCount { ty, len: 31, block_size: 32 });
    let err = dequantize_row(ty, &bytes[..20], &mut out[..64]).unwrap_err();
    assert_eq!(err, QuantError::LengthMismatch { ty, elements: 64, expected_bytes: 40, bytes: 20 });
    let x = [0f32; 64];
    let mut q = [0u8; 41];
    let err = quantize_row(ty, &x, &mut q).unwrap_err();
    assert_eq!(err, QuantError::ByteCount { ty, len: 41, type_size: 20 });
    let err = quantize_row(ty, &x[..33], &mut q[..40]).unwrap_err();
    assert_eq!(err, QuantError::ElementCount { ty, len: 33, block_size: 32 });
    let err = quantize_row(GgmlType::Q6_K, &x, &mut q[..0]).unwrap_err();
    assert_eq!(err, QuantError::ElementCount { ty: GgmlType::Q6_K, len: 64, block_size: 256 });
    // empty rows are fine
    assert_eq!(dequantize_row(ty, &bytes[..0], &mut out[..0]), Ok(()));
    assert_eq!(quantize_row(ty, &x[..0], &mut q[..0]), Ok(()));
}

#[test]
fn misaligned_bytes_are_reported() {
    let mut buf = aligned_bytes(64);
    let bytes = aligned_view(&mut buf, 64);
    let mut out = [0f32; 32];
    let err = dequantize_row(GgmlType::Q4_0, &bytes[1..19], &mut out).unwrap_err();
    assert!(matches!(err, QuantError::Misaligned { ty: GgmlType::Q4_0, align: 2, .. }), "{err:?}");
    let err = dequantize_row(GgmlType::F32, &bytes[2..10], &mut out[..2]).unwrap_err();
    assert!(matches!(err, QuantError::Misaligned { ty: GgmlType::F32, align: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("aligned"));
    // Quantizing into an unaligned buffer is fine.
    let x = sample(32);
    quantize_row(GgmlType::Q8_0, &x, &mut bytes[1..35]).unwrap();
}

/// Byte round trips through the type-erased layer equal the typed functions.
#[test]
fn byte_round_trips_agree_with_the_typed_functions() {
    let n = 512;
    let x = sample(n);
    for ty in WRITABLE {
        let nbytes = ty.row_bytes(n as u64).unwrap() as usize;
        let mut buf = aligned_bytes(nbytes);
        let bytes = aligned_view(&mut buf, nbytes);
        quantize_row(ty, &x, bytes).unwrap();
        let mut erased = vec![0f32; n];
        dequantize_row(ty, bytes, &mut erased).unwrap();
        let mut typed = vec![0f32; n];
        typed_round_trip(ty, &x, &mut typed);
        assert_eq!(erased, typed, "{ty}");
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / n as f32).sqrt();
        let err =
            (x.iter().zip(&erased).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / n as f32).sqrt();
        assert!(err <= 0.1 * rms, "{ty}: rmse {err} vs rms {rms}");
    }
}

fn typed_round_trip(ty: GgmlType, x: &[f32], out: &mut [f32]) {
    fn run<B: Pod>(
        x: &[f32],
        out: &mut [f32],
        q: fn(&[f32], &mut [B]),
        d: fn(&[B], &mut [f32]),
        per: usize,
    ) {
        let mut blocks = vec![B::zeroed(); x.len() / per];
        q(x, &mut blocks);
        d(&blocks, out);
    }
    use GgmlType::*;
    match ty {
        F32 => out.copy_from_slice(x),
        F16 => run(x, out, float::quantize_f16, float::dequantize_f16, 1),
        BF16 => run(x, out, float::quantize_bf16, float::dequantize_bf16, 1),
        Q4_0 => run(x, out, q4_0::quantize, q4_0::dequantize, 32),
        Q4_1 => run(x, out, q4_1::quantize, q4_1::dequantize, 32),
        Q5_0 => run(x, out, q5_0::quantize, q5_0::dequantize, 32),
        Q5_1 => run(x, out, q5_1::quantize, q5_1::dequantize, 32),
        Q8_0 => run(x, out, q8_0::quantize, q8_0::dequantize, 32),
        Q4_K => run(x, out, q4_k::quantize, q4_k::dequantize, QK_K),
        Q5_K => run(x, out, q5_k::quantize, q5_k::dequantize, QK_K),
        Q6_K => run(x, out, q6_k::quantize, q6_k::dequantize, QK_K),
        _ => panic!("not writable: {ty}"),
    }
}
