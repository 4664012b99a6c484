//! The hostile-input table of issue 11, CLI rows, against the built `joule` binary; and
//! every subcommand over a corpus of hostile inputs (corrupted GGUF mutants of a tiny
//! synthetic model, special files, bad numbers): the exit code is 0, 1 or 2, never a
//! panic (101), an abort or a signal, and nothing hangs past its limit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("JOULE_MODEL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"), PathBuf::from);
    let model = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        model.exists(),
        "{} is missing: run `cargo run -p joule-cli -- fetch`",
        model.display()
    );
    dir
}

/// A temporary directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("joule-cli-{tag}-{}", std::process::id()));
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

struct Run {
    /// Exit code; None if a signal ended it.
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs joule with `stdin`, killing it after `limit` (which fails the test).
fn joule_in(dir: &Path, args: &[&str], stdin: &[u8], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_joule"))
        .args(args)
        .current_dir(dir)
        .env("JOULE_MODEL_DIR", model_dir())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("joule {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = feeder.join();
    Run {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn joule(dir: &Path, args: &[&str]) -> Run {
    joule_in(dir, args, b"", Duration::from_secs(120))
}

/// A failure with a message on stderr: exit code 1, "error: ..." containing `needle`.
#[track_caller]
fn assert_error(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, Some(code), "stderr: {}", r.stderr);
    assert!(r.stderr.contains(needle), "expected {needle:?} in: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

fn tiny_model(dir: &Dir) -> PathBuf {
    let path = dir.path("tiny.gguf");
    let r = joule(&dir.0, &["synth", "--shape", "tiny", "--type", "q8_0", "tiny.gguf"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    path
}

fn is_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).unwrap().file_type().is_char_device()
}

#[test]
fn row01_quantize_never_replaces_dev_full() {
    let dir = Dir::new("row01");
    let input = tiny_model(&dir);
    let before = std::fs::read(&input).unwrap();
    let r = joule(&dir.0, &["quantize", "--type", "q8_0", "tiny.gguf", "/dev/full"]);
    assert_error(&r, 1, "is a character device");
    assert!(is_char_device("/dev/full"), "/dev/full is no longer a character device");
    let r = joule(&dir.0, &["synth", "--shape", "tiny", "/dev/full"]);
    assert_error(&r, 1, "is a character device");
    assert!(is_char_device("/dev/full"));
    assert!(!Path::new("/dev/full.partial").exists());
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn row02_directory_output_leaves_no_partial() {
    let dir = Dir::new("row02");
    tiny_model(&dir);
    std::fs::create_dir(dir.path("some_dir")).unwrap();
    let r = joule(&dir.0, &["quantize", "--type", "q8_0", "tiny.gguf", "some_dir"]);
    assert_error(&r, 1, "is a directory");
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["some_dir", "tiny.gguf"], "something was left behind");
}

#[test]
fn row03_quantize_onto_its_input_is_refused() {
    let dir = Dir::new("row03");
    let input = tiny_model(&dir);
    let before = std::fs::read(&input).unwrap();
    std::os::unix::fs::symlink("tiny.gguf", dir.path("link.gguf")).unwrap();
    std::fs::hard_link(&input, dir.path("hard.gguf")).unwrap();
    for out in ["tiny.gguf", "./tiny.gguf", "link.gguf", "hard.gguf"] {
        let r = joule(&dir.0, &["quantize", "--type", "q4_0", "tiny.gguf", out]);
        assert_error(&r, 1, "is the input");
        assert_eq!(std::fs::read(&input).unwrap(), before, "input changed via {out}");
    }
}

/// Runs `sh -c script` in `dir`; returns the first command's exit code (PIPESTATUS).
fn shell(dir: &Path, script: &str) -> (i32, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{script}; echo \"rc=${{PIPESTATUS[0]}}\" >&2"))
        .current_dir(dir)
        .env("JOULE_MODEL_DIR", model_dir())
        .env("J", env!("CARGO_BIN_EXE_joule"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rc = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("rc="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(-1);
    (rc, stderr)
}

#[test]
fn row04_broken_pipe_ends_quietly() {
    let dir = Dir::new("row04");
    tiny_model(&dir);
    for script in [
        "$J inspect --model tiny.gguf | head -1 >/dev/null",
        "$J inspect | head -c 1 >/dev/null",
        "$J tokenize 'hello there, hello there' | head -c 1 >/dev/null",
        "$J run -n 8 --energy none hi | head -c 1 >/dev/null",
    ] {
        let (rc, stderr) = shell(&dir.0, script);
        assert_eq!(rc, 0, "{script}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{script}: {stderr}");
    }
}

#[test]
fn row05_disk_full_is_a_clear_error() {
    let dir = Dir::new("row05");
    for script in [
        "$J run -n 8 --energy none hi > /dev/full",
        "$J tokenize hello > /dev/full",
        "$J inspect > /dev/full",
    ] {
        let (rc, stderr) = shell(&dir.0, script);
        assert_eq!(rc, 1, "{script}: {stderr}");
        assert!(stderr.contains("No space left on device"), "{script}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn rows06_07_18_sizes_are_checked_before_allocating() {
    let dir = Dir::new("row06");
    let r = joule(&dir.0, &["run", "-n", "4", "-c", "8589934592", "hi"]);
    assert_error(&r, 1, "--allow-long-context");
    let r = joule(&dir.0, &["run", "-n", "4", "-c", "8589934592", "--allow-long-context", "hi"]);
    assert_error(&r, 1, "bytes");
    assert!(r.stderr.contains("KV cache"), "{}", r.stderr);
    let r = joule(&dir.0, &["run", "-n", "4", "-c", "100000", "hi"]);
    assert_error(&r, 1, "above the 8192 the model was trained for");
    let r = joule(&dir.0, &["run", "-t", "1000", "-n", "4", "hi"]);
    assert_error(&r, 1, "threads is over the limit");
}

#[test]
fn rows08_09_special_files_are_refused_without_hanging() {
    let dir = Dir::new("row08");
    assert!(Command::new("mkfifo").arg(dir.path("f")).status().unwrap().success());
    std::fs::create_dir(dir.path("d")).unwrap();
    let limit = Duration::from_secs(60);
    for (model, kind) in
        [("f", "FIFO"), ("d", "directory"), ("/dev/null", "device"), ("/dev/zero", "device")]
    {
        let r = joule_in(&dir.0, &["inspect", "--model", model], b"", limit);
        assert_error(&r, 1, kind);
        assert!(r.stderr.contains(model), "{}", r.stderr);
    }
    let r = joule_in(&dir.0, &["run", "-n", "1", "--energy", "trace:f", "hi"], b"", limit);
    assert_error(&r, 1, "FIFO");
}

#[test]
fn row10_trace_without_samples_is_not_measured() {
    let dir = Dir::new("row10");
    std::fs::write(dir.path("header.csv"), "time,power_w\n").unwrap();
    std::fs::write(dir.path("old.csv"), "time,power_w\n1,2\n2,2\n").unwrap();
    for trace in ["trace:header.csv", "trace:old.csv"] {
        let r = joule(&dir.0, &["run", "-n", "2", "--energy", trace, "--json", "hi"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let out = String::from_utf8_lossy(&r.stdout);
        let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(report["energy"]["method"], "no_data", "{out}");
        assert!(report["energy"]["joules_per_prompt_token"].is_null());
    }
    std::fs::write(dir.path("nan.csv"), "time,power_w\n1,NaN\n").unwrap();
    let r = joule(&dir.0, &["run", "-n", "2", "--energy", "trace:nan.csv", "hi"]);
    assert_error(&r, 1, "line 2");
}

#[test]
fn row12_chat_skips_bad_lines_and_unknown_commands() {
    let dir = Dir::new("row12");
    let r = joule_in(
        &dir.0,
        &["chat", "-n", "4", "--energy", "none"],
        b"\n/bogus\n\xff\xfe\n/quit\n",
        Duration::from_secs(120),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("unknown command /bogus"), "{}", r.stderr);
    assert!(r.stderr.contains("not valid UTF-8"), "{}", r.stderr);
    // Nothing was sent to the model: no answer, no turn report.
    assert!(r.stdout.is_empty(), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(!r.stderr.contains("[prompt"), "{}", r.stderr);
}

#[test]
fn rows13_14_corrupt_metadata_is_named_and_escaped() {
    let dir = Dir::new("row13");
    let bytes = std::fs::read(tiny_model(&dir)).unwrap();
    std::fs::write(dir.path("cut.gguf"), &bytes[..700]).unwrap();
    let r = joule(&dir.0, &["inspect", "--model", "cut.gguf"]);
    assert_error(&r, 1, "metadata entry");
    assert!(!r.stderr.contains("tensor count"), "{}", r.stderr);
    // Key of entry 0 starts at byte 32: make it contain NUL and ESC, and its type unknown.
    let mut bad = bytes.clone();
    bad[33] = 0;
    bad[34] = 0x1b;
    let key_len = u64::from_le_bytes(bad[24..32].try_into().unwrap()) as usize;
    bad[32 + key_len..36 + key_len].copy_from_slice(&77u32.to_le_bytes());
    std::fs::write(dir.path("ctl.gguf"), &bad).unwrap();
    let r = joule(&dir.0, &["inspect", "--model", "ctl.gguf"]);
    assert_error(&r, 1, "\\u{0}\\u{1b}");
    assert!(!r.stderr.contains('\0') && !r.stderr.contains('\x1b'), "{:?}", r.stderr);
}

#[test]
fn row15_negative_numbers_get_a_plain_error() {
    let dir = Dir::new("row15");
    for (args, needle) in [
        (&["run", "-n", "-1", "hi"][..], "is negative"),
        (&["run", "--seed", "-1", "hi"][..], "seed '-1' must be a whole number"),
        (&["run", "-t", "-3", "hi"][..], "is negative"),
    ] {
        let r = joule(&dir.0, args);
        assert_error(&r, 2, needle);
        assert!(!r.stderr.contains("-- -1"), "{}", r.stderr);
    }
}

#[test]
fn rows16_17_19_nothing_to_do_and_out_of_range_values() {
    let dir = Dir::new("row16");
    let r = joule(&dir.0, &["bench", "-p", "0", "-n", "0"]);
    assert_error(&r, 1, "nothing to measure");
    let r = joule(&dir.0, &["score", "--prompt-tokens", "1,2", "--continuation", "3,49152"]);
    assert_error(&r, 1, "continuation token 1 is id 49152, outside the vocabulary");
    let r = joule(&dir.0, &["synth", "--shape", "tiny", "--type", "q6_k", "s.gguf"]);
    assert_error(&r, 1, "blocks of 256");
    // Since synth takes every weight type (api branch, adc8e4f), clap parses --type: an
    // unknown one is a usage error (rc 2) that lists them all.
    let r = joule(&dir.0, &["synth", "--shape", "tiny", "--type", "q9", "s.gguf"]);
    assert_error(
        &r,
        2,
        "unknown or unsupported tensor type 'q9' \
         (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k)",
    );
    assert!(!dir.path("s.gguf").exists() && !dir.path("s.gguf.partial").exists());
}

/// Corrupted copies of a valid file: truncations at several points and flipped bytes in
/// the header, the metadata, the tensor infos and the tensor data.
fn mutants(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let file = joule_core::gguf::GgufFile::from_bytes(bytes).unwrap();
    let data = file.data_offset as usize;
    let len = bytes.len();
    let mut out = Vec::new();
    for cut in [0, 3, 8, 16, 24, 40, 300, 1100, data / 2, data - 20, data, data + 100, len - 1] {
        out.push((format!("cut{cut}"), bytes[..cut].to_vec()));
    }
    let flips = [
        ("version", 5),
        ("tensor-count", 12),
        ("kv-count", 20),
        ("key-length", 25),
        ("key", 34),
        ("value-type", 32 + 20 + 1),
        ("metadata", data / 4),
        ("metadata", data / 2),
        ("metadata", data * 3 / 4),
        ("tensor-info", data - 300),
        ("tensor-info", data - 60),
        ("tensor-info", data - 40),
        ("data", data + 1),
        ("data", (data + len) / 2),
        ("data", len - 2),
    ];
    for (what, at) in flips {
        let mut b = bytes.to_vec();
        b[at] ^= 0xff;
        out.push((format!("flip-{what}-{at}"), b));
    }
    out
}

/// Every subcommand, on one model file, with arguments that run quickly.
fn commands(model: &str) -> Vec<(Vec<String>, &'static [u8])> {
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let m = ["--model", model];
    vec![
        (s(&[&["inspect"][..], &m].concat()), b""),
        (s(&[&["tokenize"][..], &m, &["--special", "a<|im_start|>b"]].concat()), b""),
        (s(&[&["run", "-n", "2", "--energy", "none"][..], &m, &["hi"]].concat()), b""),
        (s(&[&["run", "-n", "2", "--raw", "--energy", "estimate"][..], &m, &["hi"]].concat()), b""),
        (s(&[&["chat", "-n", "2", "--energy", "none"][..], &m].concat()), b"hi\n/x\n\xff\n/quit\n"),
        (s(&[&["score", "--prompt-tokens", "1,2", "--continuation", "3,4"][..], &m].concat()), b""),
        (
            s(&[&["bench", "-p", "4", "-n", "2", "-r", "1", "--energy", "none"][..], &m].concat()),
            b"",
        ),
        (s(&["quantize", "--type", "q8_0", model, "out.gguf"]), b""),
    ]
}

#[track_caller]
fn assert_no_crash(dir: &Path, args: &[String], stdin: &[u8], limit: Duration) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = joule_in(dir, &args, stdin, limit);
    assert!(
        matches!(r.code, Some(0..=2)),
        "joule {args:?} ended with {:?} (a crash or signal): {}",
        r.code,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "joule {args:?}: {}", r.stderr);
}

#[test]
fn every_subcommand_survives_hostile_inputs() {
    let dir = Dir::new("corpus");
    let bytes = std::fs::read(tiny_model(&dir)).unwrap();
    let limit = Duration::from_secs(30);
    let start = Instant::now();
    let mut runs = 0;
    for (name, mutant) in mutants(&bytes) {
        let file = format!("{name}.gguf");
        std::fs::write(dir.path(&file), &mutant).unwrap();
        for (args, stdin) in commands(&file) {
            assert_no_crash(&dir.0, &args, stdin, limit);
            runs += 1;
        }
        let _ = std::fs::remove_file(dir.path("out.gguf"));
    }
    // Special files and hostile arguments, on the tiny model and (a few) on the real one.
    assert!(Command::new("mkfifo").arg(dir.path("fifo")).status().unwrap().success());
    std::fs::write(dir.path("header.csv"), "time,power_w\n").unwrap();
    std::fs::write(dir.path("nan.csv"), "time,power_w\n1,NaN\n").unwrap();
    for special in ["fifo", "/dev/null", "/dev/zero", "/dev/full", "."] {
        for (args, stdin) in commands(special) {
            assert_no_crash(&dir.0, &args, stdin, limit);
            runs += 1;
        }
    }
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let hostile_args = [
        s(&["run", "-n", "-1", "hi"]),
        s(&["run", "--seed", "-1", "hi"]),
        s(&["run", "-c", "0", "hi"]),
        s(&["run", "-n", "2", "-c", "8589934592", "--allow-long-context", "hi"]),
        s(&["run", "-n", "2", "-c", "100000", "hi"]),
        s(&["run", "-t", "0", "hi"]),
        s(&["run", "-t", "100000", "hi"]),
        s(&["run", "-n", "2", "--temp", "NaN", "hi"]),
        s(&["run", "-n", "2", "--top-p", "-3", "hi"]),
        s(&["run", "-n", "2", "--precision", "bogus", "hi"]),
        s(&["run", "-n", "2", "--energy", "trace:fifo", "hi"]),
        s(&["run", "-n", "2", "--energy", "trace:header.csv", "hi"]),
        s(&["run", "-n", "2", "--energy", "trace:nan.csv", "hi"]),
        s(&["run", "-n", "2", "--energy", "bogus", "hi"]),
        s(&["run", "-n", "2", "--baseline", "-1", "hi"]),
        s(&["bench", "-p", "0", "-n", "0"]),
        s(&["bench", "-p", "1", "-n", "1", "-r", "0", "--energy", "none"]),
        s(&["bench", "-o", "xml"]),
        s(&["score", "--prompt-tokens", "1,2", "--continuation", "3,49152"]),
        s(&["score", "--prompt-tokens", "", "--continuation", "3"]),
        s(&["tokenize", ""]),
        s(&["synth", "--shape", "tiny", "--type", "q6_k", "s.gguf"]),
        s(&["synth", "--shape", "huge", "s.gguf"]),
        s(&["quantize", "--type", "q9", "fifo", "o.gguf"]),
        s(&["fetch", "no-such-model"]),
    ];
    for args in &hostile_args {
        assert_no_crash(&dir.0, args, b"", Duration::from_secs(120));
        runs += 1;
    }
    eprintln!("{runs} runs in {:.1} s", start.elapsed().as_secs_f64());
}

/// Pruning and eviction settings: an unknown strategy, a budget of nothing, a layer the
/// model lacks, an eviction cache with no room, out-of-range eval settings and pruning
/// flags without --prune are clear errors, never panics.
#[test]
fn pruning_and_eviction_settings_are_clear_errors() {
    let dir = Dir::new("prune-args");
    tiny_model(&dir);
    let bench = ["bench", "-m", "tiny.gguf", "-p", "64", "-n", "0", "-r", "1"];
    let with = |extra: &[&'static str]| [&bench[..], extra].concat();
    for (args, code, needle) in [
        (with(&["--prune", "magic"]), 1, "unknown pruning strategy \"magic\""),
        (with(&["--prune", "early-layer", "--keep", "0"]), 1, "keeps nothing"),
        (with(&["--prune", "self-info", "--prune-layer", "9"]), 1, "exit layer 9 is outside"),
        (with(&["--keep", "0.5"]), 2, "--prune"),
        (with(&["--prune", "segment"]), 1, "bench prompts are random tokens"),
        (
            vec!["run", "-m", "tiny.gguf", "--prune", "snapkv", "--prune-window", "0", "hi"],
            1,
            "window of 0",
        ),
        (
            vec!["bench", "-m", "tiny.gguf", "-p", "0", "-n", "16", "--evict-context", "3"],
            1,
            "has no room",
        ),
        (vec!["run", "-m", "tiny.gguf", "--prune-layer", "3", "hi"], 2, "--prune"),
        (
            vec!["run", "-m", "tiny.gguf", "--prune", "early-layer", "--keep", "2.0", "hi"],
            1,
            "outside (0, 1]",
        ),
        (vec!["eval", "prune", "-m", "tiny.gguf", "--depths", "1.5"], 1, "outside 0..=1"),
        (vec!["eval", "prune", "-m", "tiny.gguf", "--tasks", "nope"], 1, "unknown task 'nope'"),
        (vec!["eval", "prune", "-m", "tiny.gguf", "--prune", "magic"], 1, "unknown pruning"),
        (vec!["eval", "endless", "-m", "tiny.gguf", "--context", "0"], 1, "--context 256"),
        (vec!["eval", "endless", "-m", "tiny.gguf", "--tokens", "0"], 1, "at least 1"),
    ] {
        let r = joule(&dir.0, &args);
        assert_error(&r, code, needle);
    }
}
