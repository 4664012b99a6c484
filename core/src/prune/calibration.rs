//! `--prune auto`: the most aggressive pruning setting whose measured fidelity stayed
//! within [`Limits`], read from a calibration file next to the model
//! (`MODEL.gguf.prune.json`, written by `joule eval prune --calibrate`); without one, the
//! conservative [`Calibration::fallback`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Budget, PruneOptions, Strategy};
use crate::error::{Error, Result};

/// What a setting must keep to be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Mean KL(unpruned ‖ pruned) per answer token, in nats.
    pub max_kl: f64,
    /// Share of answer steps whose most likely token is the unpruned run's.
    pub min_top1_agreement: f64,
    /// Task accuracy as a share of the unpruned run's.
    pub min_accuracy_ratio: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_kl: 0.25, min_top1_agreement: 0.85, min_accuracy_ratio: 0.95 }
    }
}

/// A chosen setting and the figures that chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The model file's name and size when it was calibrated (a replaced file is not
    /// silently trusted).
    pub model: String,
    pub model_bytes: u64,
    pub strategy: Strategy,
    pub budget: Budget,
    pub limits: Limits,
    /// Measured for the chosen setting over `cases` cases of `tasks`.
    pub kl: f64,
    pub top1_agreement: f64,
    pub accuracy_ratio: f64,
    pub speedup: f64,
    pub tasks: String,
    pub cases: usize,
}

impl Calibration {
    /// Where the calibration of `model` lives.
    pub fn path_for(model: &Path) -> PathBuf {
        let mut name = model.file_name().unwrap_or_default().to_os_string();
        name.push(".prune.json");
        model.with_file_name(name)
    }

    /// The calibration of `model`, None when there is no file; a file that does not
    /// parse or belongs to another model file is an error (never silently ignored).
    pub fn load(model: &Path) -> Result<Option<Self>> {
        let path = Self::path_for(model);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(&path, &e.to_string())),
        };
        let c: Calibration = serde_json::from_str(&text).map_err(|e| bad(&path, &e.to_string()))?;
        let bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
        if bytes != c.model_bytes {
            let why = format!(
                "it was measured on a file of {} bytes, this one has {bytes}; run `joule eval \
                 prune --calibrate` again",
                c.model_bytes
            );
            return Err(bad(&path, &why));
        }
        Ok(Some(c))
    }

    /// The setting `auto` uses without a calibration: early-layer selection keeping
    /// half of the prompt, well above the 10-20 % that BENCHMARKS.md §11 measures (a
    /// conservative choice for a model nobody has calibrated).
    pub fn fallback() -> PruneOptions {
        PruneOptions::new(Strategy::EarlyLayer { layer: None, rows: 8 }, Budget::Ratio(0.5))
    }

    /// `auto` for `model`: its calibration, or the fallback; and where it came from.
    pub fn auto(model: &Path) -> Result<(PruneOptions, String)> {
        Ok(match Self::load(model)? {
            Some(c) => {
                let from = Self::path_for(model).display().to_string();
                (PruneOptions::new(c.strategy, c.budget), from)
            }
            None => (Self::fallback(), "the default (no calibration file)".into()),
        })
    }
}

fn bad(path: &Path, why: &str) -> Error {
    Error::InvalidArgument(format!("pruning calibration {}: {why}", path.display()))
}
