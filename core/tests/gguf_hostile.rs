//! Hostile and damaged GGUF files: every one gives its own clear error, nothing panics,
//! and nothing is allocated beyond what the file could back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use joule_core::gguf::{Array, GgufError, GgufFile, GgufWriter, TensorToWrite, Value};
use joule_core::quant::GgmlType;

/// Records the largest single allocation, to show hostile counts allocate nothing big.
struct Tracking;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarding to the system allocator with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()));
    w.set("general.name", Value::String("tiny ✓".into()));
    w.set("test.u8", Value::U8(7));
    w.set("test.i8", Value::I8(-7));
    w.set("test.u16", Value::U16(700));
    w.set("test.i16", Value::I16(-700));
    w.set("test.u32", Value::U32(70000));
    w.set("test.i32", Value::I32(-70000));
    w.set("test.f32", Value::F32(1.5));
    w.set("test.bool", Value::Bool(true));
    w.set("test.u64", Value::U64(1 << 40));
    w.set("test.i64", Value::I64(-(1 << 40)));
    w.set("test.f64", Value::F64(-2.25));
    w.set("test.strings", Value::Array(Array::String(vec!["a".into(), "".into(), "ü".into()])));
    w.set("test.floats", Value::Array(Array::F32(vec![1.0, -2.0])));
    w.set(
        "test.nested",
        Value::Array(Array::Array(vec![Array::I32(vec![1, 2]), Array::Bool(vec![true, false])])),
    );
    w.add_tensor(TensorToWrite {
        name: "a".into(),
        dims: vec![4, 2],
        ggml_type: GgmlType::F32,
        data: (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect(),
    });
    w.add_tensor(TensorToWrite {
        name: "b".into(),
        dims: vec![32],
        ggml_type: GgmlType::Q8_0,
        data: vec![1u8; 34],
    });
    w
}

fn sample() -> Vec<u8> {
    sample_writer().to_bytes()
}

/// Offset of the tensor-info section (just after the last metadata value).
fn tensor_infos_offset(bytes: &[u8]) -> usize {
    // The first tensor is named "a": its info starts with the u64 length 1 then 'a'.
    let needle = [1u8, 0, 0, 0, 0, 0, 0, 0, b'a'];
    bytes.windows(needle.len()).position(|w| w == needle).expect("tensor info of 'a'")
}

fn err(bytes: &[u8]) -> GgufError {
    GgufFile::from_bytes(bytes).expect_err("a damaged file must be rejected")
}

#[test]
fn a_written_file_reads_back_identically() {
    let w = sample_writer();
    let f = GgufFile::from_bytes(&w.to_bytes()).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.metadata.len(), w.metadata.len());
    for (k, v) in w.metadata.iter() {
        assert_eq!(f.metadata.get(k), Some(v), "key {k}");
    }
    assert_eq!(f.tensors.len(), 2);
    let (info, data) = f.tensor("a").unwrap();
    assert_eq!(info.dims, vec![4, 2]);
    assert_eq!(data, &w.tensors[0].data[..]);
    let (info, data) = f.tensor("b").unwrap();
    assert_eq!(info.ggml_type, GgmlType::Q8_0);
    assert_eq!(info.offset % 32, 0);
    assert_eq!(data, &[1u8; 34][..]);
    assert_eq!(f.metadata.int::<u64>("test.u64").unwrap(), 1 << 40);
    assert!(matches!(f.metadata.int::<u8>("test.u32"), Err(GgufError::ValueOutOfRange { .. })));
    assert!(matches!(f.metadata.str("test.u8"), Err(GgufError::WrongType { .. })));
    assert!(matches!(f.metadata.str("missing.key"), Err(GgufError::MissingKey { .. })));
}

#[test]
fn every_truncation_is_an_error_naming_the_place() {
    let bytes = sample();
    let infos = tensor_infos_offset(&bytes);
    for cut in 0..bytes.len() {
        let e = err(&bytes[..cut]);
        match e {
            GgufError::BadMagic { .. } => assert!(cut < 4, "cut {cut}: {e}"),
            GgufError::Truncated { offset, bytes_left, needed, .. } => {
                assert!(
                    cut >= 4 && offset as usize <= cut && bytes_left < needed,
                    "cut {cut}: {e}"
                );
            }
            GgufError::TensorOutOfBounds { end, file_len, .. } => {
                assert!(cut > infos && end > file_len, "cut {cut}: {e}");
            }
            other => panic!("cut {cut}: unexpected error {other}"),
        }
    }
    assert!(GgufFile::from_bytes(&bytes).is_ok());
}

#[test]
fn wrong_magic_and_versions() {
    let mut bytes = sample();
    bytes[0..4].copy_from_slice(b"GGML");
    assert!(matches!(err(&bytes), GgufError::BadMagic { found } if found == b"GGML"));
    for version in [0u32, 1, 4, u32::MAX] {
        let mut bytes = sample();
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        assert!(
            matches!(err(&bytes), GgufError::UnsupportedVersion { version: v } if v == version)
        );
    }
    let mut v2 = sample();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(GgufFile::from_bytes(&v2).unwrap().version, 2);
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    LARGEST.store(0, Ordering::Relaxed);
    for (field, value) in [(8usize, u64::MAX), (8, 1 << 20), (16, u64::MAX), (16, 60_000)] {
        let mut bytes = sample();
        bytes[field..field + 8].copy_from_slice(&value.to_le_bytes());
        match err(&bytes) {
            GgufError::LimitExceeded { .. } | GgufError::Truncated { .. } => {}
            other => panic!("count {value} at {field}: unexpected {other}"),
        }
    }
    assert!(LARGEST.load(Ordering::Relaxed) < 1 << 20, "a hostile count caused a large allocation");
}

/// A file with one metadata entry given as raw bytes after the key.
fn with_raw_value(key: &str, type_and_value: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(type_and_value);
    b
}

#[test]
fn absurd_lengths_unknown_types_and_bad_text() {
    LARGEST.store(0, Ordering::Relaxed);
    // A string claiming 2^60 bytes.
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::LimitExceeded { .. }));
    // A string within the limit but longer than the file.
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(1u64 << 20).to_le_bytes());
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::Truncated { .. }));
    // An array of 2^25 u64 in a file of a few bytes.
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&10u32.to_le_bytes());
    v.extend_from_slice(&(1u64 << 25).to_le_bytes());
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::Truncated { .. }));
    // An array of 2^40 strings.
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::LimitExceeded { .. }));
    assert!(
        LARGEST.load(Ordering::Relaxed) < 1 << 20,
        "a hostile length caused a large allocation"
    );
    // Unknown value type and array element type.
    assert!(matches!(
        err(&with_raw_value("k", &99u32.to_le_bytes())),
        GgufError::UnknownValueType { type_id: 99, .. }
    ));
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&13u32.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    assert!(matches!(
        err(&with_raw_value("k", &v)),
        GgufError::UnknownValueType { type_id: 13, .. }
    ));
    // Invalid UTF-8 in a string value, and a bool that is neither 0 nor 1.
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&2u64.to_le_bytes());
    v.extend_from_slice(&[0xff, 0xfe]);
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::InvalidUtf8 { .. }));
    let mut v = 7u32.to_le_bytes().to_vec();
    v.push(2);
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::ValueOutOfRange { .. }));
    // Arrays nested deeper than the limit.
    let mut v = 9u32.to_le_bytes().to_vec();
    for _ in 0..8 {
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&1u64.to_le_bytes());
    }
    assert!(matches!(err(&with_raw_value("k", &v)), GgufError::LimitExceeded { .. }));
}

fn one_tensor(name: &str, dims: Vec<u64>, ty: GgmlType, data: Vec<u8>) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()));
    w.add_tensor(TensorToWrite { name: name.into(), dims, ggml_type: ty, data });
    w
}

/// Byte offset of the named tensor's info (its name length prefix).
fn info_at(bytes: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    bytes.windows(needle.len()).rposition(|w| w == needle).expect("tensor info")
}

#[test]
fn tensor_infos_are_validated() {
    let good = one_tensor("w", vec![32, 2], GgmlType::F32, vec![0u8; 256]).to_bytes();
    let at = info_at(&good, "w") + 8 + 1; // n_dims
    let type_at = at + 4 + 16;
    let offset_at = type_at + 4;
    assert!(GgufFile::from_bytes(&good).is_ok());

    let mut b = good.clone();
    b[type_at..type_at + 4].copy_from_slice(&77u32.to_le_bytes());
    assert!(matches!(err(&b), GgufError::UnknownTensorType { type_id: 77, .. }));

    // 32 x 2 elements as Q4_0 is fine shape-wise but the data would be 36 bytes; as a
    // type whose block (256) does not divide the row (32) it is a shape error.
    let mut b = good.clone();
    b[type_at..type_at + 4].copy_from_slice(&GgmlType::Q4_K.id().to_le_bytes());
    assert!(matches!(err(&b), GgufError::BadShape { .. }));

    let mut b = good.clone();
    b[offset_at..offset_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(err(&b), GgufError::TensorOutOfBounds { .. }));
    let mut b = good.clone();
    b[offset_at..offset_at + 8].copy_from_slice(&(u64::MAX - 31).to_le_bytes());
    assert!(matches!(err(&b), GgufError::TensorOutOfBounds { .. }));
    let mut b = good.clone();
    b[offset_at..offset_at + 8].copy_from_slice(&3u64.to_le_bytes());
    assert!(matches!(err(&b), GgufError::Misaligned { offset: 3, .. }));

    for dims in [0u32, 5, u32::MAX] {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&dims.to_le_bytes());
        assert!(
            matches!(err(&b), GgufError::BadShape { .. } | GgufError::Truncated { .. }),
            "n_dims {dims}"
        );
    }
    let mut b = good.clone();
    b[at + 4..at + 12].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(err(&b), GgufError::BadShape { .. }));
    let mut b = good.clone();
    b[at + 4..at + 12].copy_from_slice(&(1u64 << 39).to_le_bytes());
    b[at + 12..at + 20].copy_from_slice(&(1u64 << 39).to_le_bytes());
    assert!(matches!(err(&b), GgufError::BadShape { .. }), "size overflow");
}

#[test]
fn duplicates_overlaps_and_alignment() {
    let mut w = one_tensor("w", vec![8], GgmlType::F32, vec![0u8; 32]);
    w.add_tensor(TensorToWrite {
        name: "w".into(),
        dims: vec![8],
        ggml_type: GgmlType::F32,
        data: vec![0u8; 32],
    });
    assert!(matches!(err(&w.to_bytes()), GgufError::DuplicateTensor { .. }));

    let mut w = one_tensor("x", vec![8], GgmlType::F32, vec![0u8; 32]);
    w.add_tensor(TensorToWrite {
        name: "y".into(),
        dims: vec![8],
        ggml_type: GgmlType::F32,
        data: vec![0u8; 32],
    });
    let mut b = w.to_bytes();
    let y = info_at(&b, "y") + 8 + 1 + 4 + 8 + 4;
    b[y..y + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(err(&b), GgufError::OverlappingTensors { .. }));

    let bytes = with_raw_value("general.alignment", &[4, 0, 0, 0, 3, 0, 0, 0]);
    assert!(matches!(err(&bytes), GgufError::BadAlignment { value: 3 }));
    let bytes = with_raw_value("general.alignment", &[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(err(&bytes), GgufError::WrongType { .. }));

    let mut w = GgufWriter::new();
    w.set("dup", Value::U8(1));
    let mut b = w.to_bytes();
    // Claim two entries and repeat the first one's bytes.
    let entry = b[24..24 + 8 + 3 + 4 + 1].to_vec();
    b.truncate(24 + entry.len());
    b.extend_from_slice(&entry);
    b[16..24].copy_from_slice(&2u64.to_le_bytes());
    assert!(matches!(err(&b), GgufError::DuplicateKey { .. }));
}

#[test]
fn a_custom_alignment_is_honoured() {
    let mut w = one_tensor("w", vec![8], GgmlType::F32, vec![7u8; 32]);
    w.set("general.alignment", Value::U32(64));
    w.add_tensor(TensorToWrite {
        name: "v".into(),
        dims: vec![8],
        ggml_type: GgmlType::F32,
        data: vec![9u8; 32],
    });
    let f = GgufFile::from_bytes(&w.to_bytes()).unwrap();
    assert_eq!(f.alignment, 64);
    assert_eq!(f.data_offset % 64, 0);
    assert_eq!(f.tensor("v").unwrap().0.offset, 64);
    assert_eq!(f.tensor("v").unwrap().1, &[9u8; 32][..]);
}

#[test]
fn a_missing_file_is_an_io_error_with_the_path() {
    let e = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/model.gguf"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    /// Random corruption anywhere in a valid file never panics.
    #[test]
    fn random_corruption_never_panics(edits in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 1..8)) {
        let mut bytes = sample();
        let n = bytes.len();
        for (at, byte) in edits {
            bytes[at % n] = byte;
        }
        let _ = GgufFile::from_bytes(&bytes);
    }
}
