//! A loaded model: its config, its weights (packed for the kernels), and the forward
//! pass over them.

mod attention;
pub mod config;
pub mod forward;
pub mod kv_cache;
mod kv_layer;
pub mod kv_shift;
pub mod matmul;
mod ops;
pub mod profile;
pub mod synthetic;
pub mod weights;

use std::path::Path;

pub use config::{Arch, ModelConfig, RopeStyle};
pub use forward::{ForwardState, Logits, Probe, forward};
pub use kv_cache::KvCache;
pub use kv_shift::{evict, keep_sinks_and_recent};
pub use matmul::MatmulPath;
pub use weights::{Linear, Weights};

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::kernels::{PackedMatrix, pack};

/// Config and weights of one model file. Immutable once loaded; shared by sessions.
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub file: GgufFile,
    /// How the matrix products treat activations (chosen at load: weights are
    /// repacked for `Int8`).
    pub matmul_path: MatmulPath,
}

impl Model {
    /// Reads the config from the metadata and maps every weight; on the fast path the
    /// matrices are repacked for the integer kernels.
    pub fn load(file: GgufFile, path: impl Into<MatmulPath>) -> Result<Self> {
        let matmul_path = path.into();
        let config = ModelConfig::from_metadata(&file.metadata)?;
        let repack = |lin: Linear| -> Result<Linear> {
            if matmul_path != MatmulPath::Int8 {
                return Ok(lin);
            }
            let PackedMatrix::Raw(bytes) = &lin.packed else { return Ok(lin) };
            // The kernels read the repacked copy: the mapped pages of the rows packed so
            // far can go, which keeps peak memory near one copy of the weights even
            // while a large matrix (a 262k-token embedding) is being packed.
            let info = file.tensor_info(&lin.name);
            let row_bytes = lin.row_bytes();
            let mut release = |rows: usize| {
                if let Some(info) = info {
                    file.release_tensor_prefix(info, rows * row_bytes);
                }
            };
            match pack::pack_releasing(
                lin.ggml_type,
                bytes.as_slice(),
                lin.n_out,
                lin.n_in,
                &mut release,
            )? {
                Some(tiles) => Ok(Linear { packed: PackedMatrix::Tiles(tiles), ..lin }),
                None => Ok(lin),
            }
        };
        let weights = Weights::load(&file, &config, &repack)?;
        Ok(Self { config, weights, file, matmul_path })
    }

    /// Bytes of weights read to decode one token: every matrix once (the embedding
    /// only when it is also the output matrix; otherwise one row is negligible).
    pub fn decode_weight_bytes(&self) -> u64 {
        let bytes = Linear::streamed_bytes;
        let w = &self.weights;
        let layers: u64 = w
            .layers
            .iter()
            .map(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .into_iter()
                    .map(bytes)
                    .sum::<u64>()
            })
            .sum();
        layers + bytes(w.output_matrix())
    }

    pub fn open(path: impl AsRef<Path>, matmul_path: impl Into<MatmulPath>) -> Result<Self> {
        Self::load(GgufFile::open(path)?, matmul_path)
    }
}
