//! A loaded model: its config, its weights (packed for the kernels), and the forward
//! pass over them.

pub mod config;
pub mod forward;
pub mod kv_cache;
pub mod synthetic;
pub mod weights;

use std::path::Path;

pub use config::{Arch, ModelConfig, RopeStyle};
pub use forward::{ForwardState, Logits, forward};
pub use kv_cache::KvCache;
pub use weights::{Linear, Weights};

use crate::error::Result;
use crate::gguf::GgufFile;

/// Config and weights of one model file. Immutable once loaded; shared by sessions.
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub file: GgufFile,
}

impl Model {
    /// Reads the config from the metadata and maps every weight.
    pub fn load(file: GgufFile) -> Result<Self> {
        let config = ModelConfig::from_metadata(&file.metadata)?;
        let weights = Weights::load(&file, &config, &Ok)?;
        Ok(Self { config, weights, file })
    }

    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::load(GgufFile::open(path)?)
    }
}
