//! Regression tests for the hostile-input table of issue 11 (core rows): every bad input
//! is a typed error that says what is wrong, and no file but the named output is touched.

use std::path::{Path, PathBuf};

use joule_core::Error;
use joule_core::energy::{EnergyConfig, EnergyMeter, EnergySource, Method};
use joule_core::engine::{Engine, EngineOptions};
use joule_core::fsutil::PathError;
use joule_core::gguf::{GgufError, GgufFile, GgufWriter, Value, WriteError, partial_path};
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::model::{KvCache, Model};
use joule_core::quant::GgmlType;

/// A temporary directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("joule-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tiny() -> GgufWriter {
    synthetic_model(&SyntheticSpec::tiny()).unwrap()
}

fn load(w: &GgufWriter, options: EngineOptions) -> Result<std::sync::Arc<Engine>, Error> {
    let file = GgufFile::from_bytes(&w.to_bytes())?;
    Engine::from_file(file, EngineOptions { threads: Some(1), energy: None, ..options })
}

fn is_char_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).unwrap().file_type().is_char_device()
}

/// Row 1: a device node is never replaced by the writer.
#[test]
fn row01_writer_refuses_a_device_as_output() {
    let e = tiny().write_file(Path::new("/dev/full")).unwrap_err();
    assert!(matches!(&e, WriteError::Path(PathError::OutputNotAFile { .. })), "{e}");
    assert!(e.to_string().contains("character device"), "{e}");
    assert!(is_char_device(Path::new("/dev/full")), "/dev/full was replaced");
    assert!(!partial_path(Path::new("/dev/full")).exists());
}

/// Row 2: a directory as output is refused and no partial file is left.
#[test]
fn row02_directory_output_leaves_no_partial_file() {
    let dir = Dir::new("dir-out");
    let out = dir.path("some_dir");
    std::fs::create_dir(&out).unwrap();
    let e = tiny().write_file(&out).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    assert!(!partial_path(&out).exists(), "partial file left behind");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);
}

/// Row 3: the output may not be the input, by name, symlink or hard link.
#[test]
fn row03_output_that_is_the_input_is_refused() {
    let dir = Dir::new("same");
    let input = dir.path("q.gguf");
    tiny().write_file(&input).unwrap();
    let before = std::fs::read(&input).unwrap();
    std::os::unix::fs::symlink(&input, dir.path("link.gguf")).unwrap();
    std::fs::hard_link(&input, dir.path("hard.gguf")).unwrap();
    for out in ["q.gguf", "link.gguf", "hard.gguf", "./q.gguf"] {
        let out = dir.path(out);
        let e = tiny().write_file_checked(&out, &[&input]).unwrap_err();
        assert!(matches!(&e, WriteError::Path(PathError::OutputIsInput { .. })), "{e}");
        assert!(!partial_path(&out).exists());
    }
    // `<out>.partial` being the input is refused too (it would be truncated while mapped).
    let partial_input = dir.path("m.partial");
    std::fs::copy(&input, &partial_input).unwrap();
    let e = tiny().write_file_checked(&dir.path("m"), &[&partial_input]).unwrap_err();
    assert!(matches!(&e, WriteError::Path(PathError::OutputIsInput { .. })), "{e}");
    assert_eq!(std::fs::read(&partial_input).unwrap(), before, "the input changed");
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input changed");
    // An unrelated output is still written.
    tiny().write_file_checked(&dir.path("other.gguf"), &[&input]).unwrap();
}

/// Rows 8 and 9: only regular files are opened as models; a FIFO never blocks.
#[test]
fn rows08_09_special_files_are_named_not_opened() {
    let dir = Dir::new("special");
    let fifo = dir.path("f");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo failed");
    let cases: [(&Path, &str); 4] = [
        (&fifo, "FIFO"),
        (&dir.0, "directory"),
        (Path::new("/dev/null"), "character device"),
        (Path::new("/dev/zero"), "character device"),
    ];
    for (path, kind) in cases {
        let e = GgufFile::open(path).unwrap_err();
        assert!(matches!(e, GgufError::Path(PathError::NotAFile { .. })), "{e}");
        let text = e.to_string();
        assert!(text.contains(kind) && text.contains(&*path.to_string_lossy()), "{text}");
    }
    let e = EnergyMeter::new(EnergyConfig::with_source(EnergySource::Trace(fifo))).unwrap_err();
    assert!(e.to_string().contains("FIFO"), "{e}");
}

/// Row 6: an impossible KV cache is an error with the bytes it wanted, not an abort.
#[test]
fn row06_kv_cache_too_large_reports_its_bytes() {
    let file = GgufFile::from_bytes(&tiny().to_bytes()).unwrap();
    let model = Model::load(file, joule_core::Precision::Exact).unwrap();
    let e = KvCache::new(&model.config, 1 << 40).unwrap_err();
    match &e {
        Error::KvCacheTooLarge { bytes, capacity, .. } => {
            assert_eq!(*capacity, 1 << 40);
            let c = &model.config;
            assert_eq!(*bytes, (1u128 << 40) * c.kv_dim() as u128 * 8 * c.n_layers as u128);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("smaller context"), "{e}");
}

/// Row 7: a context above the trained length needs an explicit opt-in.
#[test]
fn row07_long_context_needs_an_explicit_opt_in() {
    let w = tiny();
    let e =
        load(&w, EngineOptions { context: Some(1000), ..EngineOptions::default() }).err().unwrap();
    assert!(e.to_string().contains("allow_long_context"), "{e}");
    let options =
        EngineOptions { context: Some(1000), allow_long_context: true, ..EngineOptions::default() };
    assert_eq!(load(&w, options).unwrap().context(), 1000);
}

/// Row 18: an absurd thread count is refused with the limit.
#[test]
fn row18_thread_count_above_the_limit_is_refused() {
    let limit = joule_core::engine::max_threads();
    let options = EngineOptions { threads: Some(limit + 1), ..EngineOptions::default() };
    let file = GgufFile::from_bytes(&tiny().to_bytes()).unwrap();
    let e = Engine::from_file(file, EngineOptions { energy: None, ..options }).err().unwrap();
    assert!(e.to_string().contains(&format!("limit of {limit}")), "{e}");
}

/// Row 10: windows a trace does not cover are flagged "no data", not measured; bad rows are
/// errors naming their line.
#[test]
fn row10_trace_without_samples_is_no_data_and_nan_rows_are_refused() {
    let dir = Dir::new("trace");
    let meter_over = |text: &str| {
        let path = dir.path("t.csv");
        std::fs::write(&path, text).unwrap();
        EnergyMeter::new(EnergyConfig::with_source(EnergySource::Trace(path)))
    };
    for text in ["time,power_w\n", "time,power_w\n1,2\n2,2\n"] {
        let meter = meter_over(text).unwrap();
        let reading = meter.end(meter.begin("w")).unwrap();
        assert_eq!(reading.method, Method::NoData, "{text:?}");
        assert_eq!(reading.joules_per(1), None);
        assert!(reading.quality.notes.iter().any(|n| n.contains("not a measurement")));
    }
    for (text, line) in [("time,power_w\n1,NaN\n", 2), ("# c\ntime,power_w\n1,1\n2,inf\n", 4)] {
        let e = meter_over(text).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line}:")), "{e}");
    }
}

/// Row 11: NaN norms and NaN block scales are refused at load, naming the tensor.
#[test]
fn row11_nan_weights_are_refused_at_load() {
    let mut w = tiny();
    let norm = w.tensors.iter_mut().find(|t| t.name == "output_norm.weight").unwrap();
    norm.data[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = load(&w, EngineOptions::default()).err().unwrap();
    assert!(matches!(&e, Error::NonFiniteWeights { tensor, .. } if tensor == "output_norm.weight"));
    assert!(e.to_string().contains("value 2"), "{e}");

    let spec = SyntheticSpec {
        weight_type: GgmlType::Q8_0,
        embedding_type: GgmlType::Q8_0,
        ..SyntheticSpec::tiny()
    };
    let mut w = synthetic_model(&spec).unwrap();
    let embd = w.tensors.iter_mut().find(|t| t.name == "token_embd.weight").unwrap();
    embd.data[34 * 5..34 * 5 + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let e = load(&w, EngineOptions::default()).err().unwrap();
    assert!(e.to_string().contains("token_embd.weight") && e.to_string().contains("block 5"));
}

/// Row 11: finite weights that overflow in the forward pass stop it, naming the layer.
#[test]
fn row11_non_finite_activations_name_the_layer() {
    let mut w = tiny();
    let wq = w.tensors.iter_mut().find(|t| t.name == "blk.1.ffn_down.weight").unwrap();
    for v in wq.data.chunks_exact_mut(4) {
        v.copy_from_slice(&3.0e38f32.to_le_bytes());
    }
    let engine = load(&w, EngineOptions::default()).unwrap();
    let e = engine.score(&[1, 2, 3], &[4], 1).unwrap_err();
    assert!(matches!(&e, Error::NonFiniteActivations { stage } if stage.contains("layer 1")));
}

/// Row 13: a file cut inside the metadata names the entry, not the tensor count.
#[test]
fn row13_truncated_metadata_names_the_entry() {
    let bytes = tiny().to_bytes();
    for cut in [24, 40, 200, 700, 1100] {
        let e = GgufFile::from_bytes(&bytes[..cut]).unwrap_err().to_string();
        assert!(e.contains("metadata entry") && !e.contains("tensor count"), "cut {cut}: {e}");
    }
}

/// Row 14: control bytes and NULs from the file are escaped in error text.
#[test]
fn row14_error_text_escapes_control_bytes() {
    let mut w = GgufWriter::new();
    w.set("bad\0key\x1b[31m", Value::U32(1));
    let mut bytes = w.to_bytes();
    // Make the value type unknown so the key is shown in the error.
    let at = 24 + 8 + "bad\0key\x1b[31m".len();
    bytes[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = GgufFile::from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("bad\\u{0}key\\u{1b}[31m"), "{e}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    let e = GgufFile::from_bytes(b"\0\x01GG....").unwrap_err().to_string();
    assert!(e.contains("\\x00\\x01GG") && !e.chars().any(char::is_control), "{e:?}");
}

/// Row 17: every token id is checked, the last continuation token included.
#[test]
fn row17_score_checks_every_id_against_the_vocabulary() {
    let engine = load(&tiny(), EngineOptions::default()).unwrap();
    let n_vocab = engine.model().config.n_vocab as u32;
    let e = engine.score(&[1, 2], &[3, n_vocab], 1).unwrap_err();
    assert!(e.to_string().contains("continuation token 1") && e.to_string().contains("outside"));
    assert!(engine.score(&[n_vocab + 5, 2], &[3], 1).is_err());
    assert!(engine.score(&[1, 2], &[3, n_vocab - 1], 1).is_ok());
}

/// Row 19: the synthetic weight types list themselves; k-quants on the tiny shape are a
/// clear error, not a block-size failure deep inside.
#[test]
fn row19_synth_types_are_listed_and_checked() {
    let e = "q9".parse::<GgmlType>().unwrap_err().to_string();
    assert!(e.contains("q4_0") && e.contains("q6_k") && e.contains("f32"), "{e}");
    assert_eq!("q6_k".parse::<GgmlType>().unwrap(), GgmlType::Q6_K);
    let spec = SyntheticSpec { weight_type: GgmlType::Q6_K, ..SyntheticSpec::tiny() };
    let e = synthetic_model(&spec).unwrap_err().to_string();
    assert!(e.contains("blocks of 256") && e.contains("--shape 1b"), "{e}");
}
