//! Calls on model files for front ends that do not load a model for inference: inspect,
//! tokenize, requantize, write a synthetic model. They keep the GGUF reader, the
//! tokenizer and the quantizers behind the engine API.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::check_output_file;
use crate::gguf::{GgufFile, Value};
use crate::model::synthetic::{SyntheticSpec, synthetic_model};
use crate::quant::GgmlType;
use crate::requantize::{FileType, requantize};
use crate::tokenizer::Tokenizer;

/// What `joule inspect` shows of a GGUF file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub version: u32,
    pub alignment: u64,
    pub file_size: u64,
    /// Every metadata key, in file order.
    pub metadata: Vec<MetadataEntry>,
    pub tensors: Vec<TensorSummary>,
    /// Bytes of tensor data.
    pub tensor_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct MetadataEntry {
    pub key: String,
    /// The value shortened to about 100 characters (long arrays elided).
    pub short: String,
    /// The whole value (strings and arrays in full).
    pub full: String,
}

#[derive(Debug, Clone)]
pub struct TensorSummary {
    pub name: String,
    pub type_name: &'static str,
    pub dims: Vec<u64>,
    pub bytes: u64,
}

/// Reads a GGUF file's header, metadata and tensor table (no weights are touched).
pub fn inspect_file(path: &Path) -> Result<FileSummary> {
    let file = GgufFile::open(path)?;
    let metadata = file
        .metadata
        .iter()
        .map(|(key, value)| MetadataEntry {
            key: key.to_string(),
            short: value.display_short(100),
            full: match value {
                Value::Array(_) | Value::String(_) => format!("{value:?}"),
                _ => value.display_short(100),
            },
        })
        .collect();
    let tensors = file
        .tensors
        .iter()
        .map(|t| TensorSummary {
            name: t.name.clone(),
            type_name: t.ggml_type.name(),
            dims: t.dims.clone(),
            bytes: t.size,
        })
        .collect();
    Ok(FileSummary {
        version: file.version,
        alignment: file.alignment,
        file_size: file.file_size(),
        metadata,
        tensors,
        tensor_bytes: file.tensor_bytes_total(),
    })
}

/// Tokens of `text` with the file's tokenizer (no BOS added); `special` reads
/// special-token text as special tokens. Maps the file but loads no weights.
pub fn tokenize_file(path: &Path, text: &str, special: bool) -> Result<Vec<u32>> {
    let file = GgufFile::open(path)?;
    Ok(Tokenizer::from_gguf(&file.metadata)?.encode(text, special)?)
}

/// What a written model file holds.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub file_size: u64,
    /// Tensor count per type, e.g. {"Q4_0": 169, "F32": 61}.
    pub tensor_types: BTreeMap<String, usize>,
}

/// Bytes of tensor data in `path` (e.g. for a progress bar before [`quantize_file`]).
pub fn tensor_bytes(path: &Path) -> Result<u64> {
    Ok(GgufFile::open(path)?.tensor_bytes_total())
}

/// Requantizes `input` to `target` into `output` (metadata kept); `progress` receives
/// (bytes done, bytes total, tensor name). A bad output path is refused before any work;
/// the output is written beside itself and renamed, so an error leaves nothing behind.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    target: FileType,
    progress: &mut dyn FnMut(u64, u64, &str),
) -> Result<WrittenFile> {
    let file = GgufFile::open(input)?;
    check_output_file(output, &[input])?;
    let writer = requantize(&file, target, progress)?;
    writer.write_file_checked(output, &[input])?;
    written(output)
}

/// Synthetic model shapes for benchmarks and tests (random weights, a byte-level
/// vocabulary): "tiny" or "1b".
pub fn synthetic_file(shape: &str, weight_type: GgmlType, output: &Path) -> Result<WrittenFile> {
    let spec = match shape {
        "1b" => SyntheticSpec::one_billion(weight_type),
        "tiny" => {
            SyntheticSpec { weight_type, embedding_type: weight_type, ..SyntheticSpec::tiny() }
        }
        other => return Err(Error::InvalidArgument(format!("unknown shape '{other}' (1b, tiny)"))),
    };
    check_output_file(output, &[])?;
    synthetic_model(&spec)?.write_file(output)?;
    written(output)
}

/// Parameters of a synthetic shape (see [`synthetic_file`]), if the shape is known.
pub fn synthetic_parameters(shape: &str) -> Option<u64> {
    match shape {
        "1b" => Some(SyntheticSpec::one_billion(GgmlType::Q4_0).parameters()),
        "tiny" => Some(SyntheticSpec::tiny().parameters()),
        _ => None,
    }
}

fn written(path: &Path) -> Result<WrittenFile> {
    let file = GgufFile::open(path)?;
    Ok(WrittenFile { file_size: file.file_size(), tensor_types: file.tensor_type_counts() })
}
