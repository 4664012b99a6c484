//! `engine::files` (inspect, tokenize, requantize, synthesize for front ends) on bad input:
//! typed errors, nothing written where it must not be.

use std::path::PathBuf;

use joule_core::engine::files::{
    inspect_file, quantize_file, synthetic_file, synthetic_parameters, tensor_bytes, tokenize_file,
};
use joule_core::{Error, FileType, GgmlType};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("joule-files-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn missing_and_garbage_files_are_typed_errors() {
    let dir = TempDir::new("bad");
    let missing = dir.0.join("missing.gguf");
    let garbage = dir.0.join("garbage.gguf");
    std::fs::write(&garbage, b"not a gguf file at all").unwrap();
    for path in [&missing, &garbage] {
        assert!(matches!(inspect_file(path), Err(Error::Gguf(_))), "{path:?}");
        assert!(matches!(tokenize_file(path, "hi", false), Err(Error::Gguf(_))), "{path:?}");
        assert!(matches!(tensor_bytes(path), Err(Error::Gguf(_))), "{path:?}");
        let out = dir.0.join("out.gguf");
        let r = quantize_file(path, &out, FileType::Q8_0, &mut |_, _, _| {});
        assert!(matches!(r, Err(Error::Gguf(_))), "{path:?}");
        assert!(!out.exists(), "nothing written for a bad input");
    }
}

#[test]
fn synthetic_files_refuse_bad_shapes_and_outputs() {
    let dir = TempDir::new("synth");
    let out = dir.0.join("tiny.gguf");
    match synthetic_file("huge", GgmlType::Q8_0, &out) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("unknown shape 'huge'"), "{m}"),
        other => panic!("unknown shape: {other:?}"),
    }
    assert!(synthetic_parameters("huge").is_none());
    assert!(!out.exists());
    // A directory is not an output file.
    assert!(matches!(synthetic_file("tiny", GgmlType::Q8_0, &dir.0), Err(Error::Path(_))));
    // A good one, then requantizing it onto itself is refused and leaves it intact.
    let written = synthetic_file("tiny", GgmlType::Q8_0, &out).unwrap();
    assert_eq!(written.file_size, std::fs::metadata(&out).unwrap().len());
    assert_eq!(synthetic_parameters("tiny").map(|n| n > 0), Some(true));
    let before = std::fs::read(&out).unwrap();
    let r = quantize_file(&out, &out, FileType::Q4_0, &mut |_, _, _| {});
    assert!(matches!(r, Err(Error::Path(_))), "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), before, "the input was changed");
    // The synthetic model's summary and a requantized copy.
    let summary = inspect_file(&out).unwrap();
    assert!(!summary.tensors.is_empty() && summary.tensor_bytes > 0);
    let q = dir.0.join("q4.gguf");
    let done = quantize_file(&out, &q, FileType::Q4_0, &mut |_, _, _| {}).unwrap();
    assert!(done.tensor_types.contains_key("Q4_0"), "{:?}", done.tensor_types);
}
