//! GGUF files: a validating reader over mmap (versions 2 and 3) and a writer.
//!
//! Everything read from a file is checked against hard limits before it is used or
//! allocated: a truncated or hostile file gives a typed error naming where it went wrong.

mod reader;
mod value;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use reader::Limits;
pub use value::{Array, Metadata, Value, ValueType};
pub use writer::{GgufWriter, TensorToWrite, WriteError, partial_path};

use crate::fsutil::Escaped;
use crate::quant::GgmlType;

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;

/// What went wrong reading or validating a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Path(#[from] crate::fsutil::PathError),
    #[error(
        "not a GGUF file: it starts with {}, expected \"GGUF\"",
        crate::fsutil::escape_bytes(found)
    )]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {version} (Joule reads versions 2 and 3)")]
    UnsupportedVersion { version: u32 },
    #[error(
        "file truncated reading {} at offset {offset}: need {needed} bytes, {bytes_left} left",
        Escaped(what)
    )]
    Truncated { what: String, offset: u64, needed: u64, bytes_left: u64 },
    #[error("{} at offset {offset} is {value}, over the limit of {limit}", Escaped(what))]
    LimitExceeded { what: String, offset: u64, value: u64, limit: u64 },
    #[error("{} at offset {offset} is not valid UTF-8", Escaped(what))]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("metadata key '{}' at offset {offset} has unknown value type {type_id}", Escaped(key))]
    UnknownValueType { key: String, offset: u64, type_id: u32 },
    #[error("metadata key '{}' appears twice", Escaped(key))]
    DuplicateKey { key: String },
    #[error("metadata key '{}' is missing", Escaped(key))]
    MissingKey { key: String },
    #[error("metadata key '{}' should be {expected} but is {found}", Escaped(key))]
    WrongType { key: String, expected: &'static str, found: &'static str },
    #[error("metadata key '{}' has value {}, out of range", Escaped(key), Escaped(value))]
    ValueOutOfRange { key: String, value: String },
    #[error("general.alignment is {value}; it must be a power of two between 1 and 65536")]
    BadAlignment { value: u64 },
    #[error("tensor '{}' appears twice", Escaped(name))]
    DuplicateTensor { name: String },
    #[error("tensor '{}' has unknown type id {type_id}", Escaped(name))]
    UnknownTensorType { name: String, type_id: u32 },
    #[error("tensor '{}' has type {ggml_type}, which Joule cannot compute with", Escaped(name))]
    UnsupportedTensorType { name: String, ggml_type: GgmlType },
    #[error("tensor '{}' has a bad shape {dims:?}: {reason}", Escaped(name))]
    BadShape { name: String, dims: Vec<u64>, reason: String },
    #[error(
        "tensor '{}' data offset {offset} is not a multiple of the alignment {alignment}",
        Escaped(name)
    )]
    Misaligned { name: String, offset: u64, alignment: u64 },
    #[error(
        "tensor '{}' data [{start}, {end}) lies outside the file's {file_len} bytes \
         (file truncated or offset corrupt)",
        Escaped(name)
    )]
    TensorOutOfBounds { name: String, start: u64, end: u64, file_len: u64 },
    #[error("tensors '{}' and '{}' overlap in the file", Escaped(first), Escaped(second))]
    OverlappingTensors { first: String, second: String },
    #[error("tensor '{}' is missing", Escaped(name))]
    MissingTensor { name: String },
}

impl GgufError {
    /// Says which metadata entry a read failed in (index, count, offset of its start).
    pub(crate) fn in_metadata_entry(self, index: u64, count: u64, offset: u64) -> Self {
        let entry = format!("metadata entry {index} of {count} (starting at offset {offset})");
        match self {
            GgufError::Truncated { what, offset, needed, bytes_left } => GgufError::Truncated {
                what: format!("{what} in {entry}"),
                offset,
                needed,
                bytes_left,
            },
            GgufError::LimitExceeded { what, offset, value, limit } => GgufError::LimitExceeded {
                what: format!("{what} in {entry}"),
                offset,
                value,
                limit,
            },
            GgufError::InvalidUtf8 { what, offset } => {
                GgufError::InvalidUtf8 { what: format!("{what} in {entry}"), offset }
            }
            other => other,
        }
    }
}

/// One tensor's description from the file header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), then rows, ...
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Bytes of data, computed from the shape and type.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Row length (the first dimension).
    pub fn row_len(&self) -> usize {
        self.dims.first().copied().unwrap_or(1) as usize
    }

    /// Number of rows (product of every dimension but the first).
    pub fn n_rows(&self) -> usize {
        self.dims.iter().skip(1).product::<u64>() as usize
    }
}

/// The bytes behind a file: a read-only map, or an owned buffer (8-byte aligned) for
/// files built in memory by tests and tools.
enum Backing {
    Mapped(memmap2::Mmap),
    Owned { words: Vec<u64>, len: usize },
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
        }
    }
}

/// Shared, read-only bytes of one tensor (the file stays mapped while a handle lives).
#[derive(Clone)]
pub struct TensorBytes {
    backing: Arc<Backing>,
    start: usize,
    len: usize,
}

impl TensorBytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.backing.bytes()[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for TensorBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorBytes({} bytes at {})", self.len, self.start)
    }
}

/// A parsed and validated GGUF file. Cheap to clone (the bytes are shared).
#[derive(Clone)]
pub struct GgufFile {
    backing: Arc<Backing>,
    pub version: u32,
    pub alignment: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    /// Start of the tensor data section in the file.
    pub data_offset: u64,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and validates a file with the default limits.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        Self::open_with_limits(path, &Limits::default())
    }

    pub fn open_with_limits(path: impl AsRef<Path>, limits: &Limits) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let io_err = |source| GgufError::Io { path: path.to_path_buf(), source };
        crate::fsutil::check_input_file(path).map_err(|e| match e {
            crate::fsutil::PathError::Io { source, .. } => io_err(source),
            other => GgufError::Path(other),
        })?;
        let file = std::fs::File::open(path).map_err(io_err)?;
        let map = crate::mmap::map_read_only(&file).map_err(io_err)?;
        let mut f = Self::from_backing(Backing::Mapped(map), limits)?;
        f.path = Some(path.to_path_buf());
        Ok(f)
    }

    /// Parses a file held in memory (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GgufError> {
        Self::from_bytes_with_limits(bytes, &Limits::default())
    }

    pub fn from_bytes_with_limits(bytes: &[u8], limits: &Limits) -> Result<Self, GgufError> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::from_backing(Backing::Owned { words, len: bytes.len() }, limits)
    }

    fn from_backing(backing: Backing, limits: &Limits) -> Result<Self, GgufError> {
        let parsed = reader::parse(backing.bytes(), limits)?;
        Ok(Self {
            backing: Arc::new(backing),
            version: parsed.version,
            alignment: parsed.alignment,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            data_offset: parsed.data_offset,
            path: None,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file's header: every byte before the tensor data (metadata and tensor table).
    pub fn header_bytes(&self) -> &[u8] {
        let b = self.backing.bytes();
        &b[..(self.data_offset as usize).min(b.len())]
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of a tensor (bounds were validated when the file was read).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + info.offset) as usize;
        &self.backing.bytes()[start..start + info.size as usize]
    }

    /// Looks a tensor up by name and returns its info and bytes.
    pub fn tensor(&self, name: &str) -> Result<(&TensorInfo, &[u8]), GgufError> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| GgufError::MissingTensor { name: name.to_string() })?;
        Ok((info, self.tensor_data(info)))
    }

    /// A cheap, owned handle on a tensor's bytes that keeps the file mapped.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> TensorBytes {
        TensorBytes {
            backing: Arc::clone(&self.backing),
            start: (self.data_offset + info.offset) as usize,
            len: info.size as usize,
        }
    }

    /// Drops the file's pages from this process's resident memory (a hint: pages come
    /// back from the file when read again). Used after the weights were repacked.
    pub fn release_resident_pages(&self) {
        self.release_range(0, self.file_size() as usize);
    }

    /// Like [`release_resident_pages`](Self::release_resident_pages) for one tensor.
    pub fn release_tensor_pages(&self, info: &TensorInfo) {
        self.release_range((self.data_offset + info.offset) as usize, info.size as usize);
    }

    /// Like [`release_tensor_pages`](Self::release_tensor_pages) for the first `len`
    /// bytes of a tensor (whole pages only).
    pub fn release_tensor_prefix(&self, info: &TensorInfo, len: usize) {
        self.release_range((self.data_offset + info.offset) as usize, len.min(info.size as usize));
    }

    fn release_range(&self, start: usize, len: usize) {
        if let Backing::Mapped(map) = &*self.backing
            && let Err(e) = crate::mmap::release_pages(map, start, len)
        {
            log::debug!("madvise(DONTNEED) failed: {e}");
        }
    }

    /// Bytes of all tensor data.
    /// How many tensors the file holds of each type, by type name ({"Q4_1": 210, ...}).
    pub fn tensor_type_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for t in &self.tensors {
            *counts.entry(t.ggml_type.name().to_string()).or_insert(0) += 1;
        }
        counts
    }

    pub fn tensor_bytes_total(&self) -> u64 {
        self.tensors.iter().map(|t| t.size).sum()
    }
}
