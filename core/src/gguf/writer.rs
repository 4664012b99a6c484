//! Writes GGUF version 3 files: used by tests to build tiny synthetic models and by
//! `joule quantize`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::value::{Array, Metadata, Value};
use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::fsutil::{PathError, check_output_file};
use crate::quant::GgmlType;

/// A tensor to write: its bytes must already be in `ggml_type`'s block layout.
#[derive(Debug, Clone)]
pub struct TensorToWrite {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    pub data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them in one pass.
#[derive(Debug, Default)]
pub struct GgufWriter {
    pub metadata: Metadata,
    pub tensors: Vec<TensorToWrite>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.insert(key, value);
        self
    }

    pub fn add_tensor(&mut self, tensor: TensorToWrite) -> &mut Self {
        self.tensors.push(tensor);
        self
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .get("general.alignment")
            .and_then(Value::as_i128)
            .and_then(|a| u64::try_from(a).ok())
            .filter(|a| a.is_power_of_two())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Writes the whole file to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let align = self.alignment();
        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in self.metadata.iter() {
            put_string(&mut header, key);
            header.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).div_ceil(align) * align;
        }
        let pad = (header.len() as u64).div_ceil(align) * align - header.len() as u64;
        header.resize(header.len() + pad as usize, 0);
        w.write_all(&header)?;
        let mut written = 0u64;
        for (t, &off) in self.tensors.iter().zip(&offsets) {
            w.write_all(&vec![0u8; (off - written) as usize])?;
            w.write_all(&t.data)?;
            written = off + t.data.len() as u64;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }

    /// Writes to a file through a temporary name, so a failed write leaves nothing behind.
    /// Same as [`write_file_checked`](Self::write_file_checked) with no inputs.
    pub fn write_file(&self, path: &Path) -> Result<(), WriteError> {
        self.write_file_checked(path, &[])
    }

    /// Writes `path` through `<path>.partial`, renamed into place once complete. Refuses
    /// an output that exists and is not a regular file (a device such as /dev/full would
    /// otherwise be replaced) or that is one of `inputs` (same device and inode); the
    /// partial file is removed on every error.
    pub fn write_file_checked(&self, path: &Path, inputs: &[&Path]) -> Result<(), WriteError> {
        check_output_file(path, inputs)?;
        let tmp = partial_path(path);
        check_output_file(&tmp, inputs)?;
        let io = |source| WriteError::Io { path: tmp.clone(), source };
        let result = (|| {
            let mut f = io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
            self.write_to(&mut f).map_err(io)?;
            f.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
            // The output may have changed while writing: check again right before the rename.
            check_output_file(path, inputs)?;
            std::fs::rename(&tmp, path)
                .map_err(|source| WriteError::Io { path: path.to_path_buf(), source })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// `<path>.partial`: the temporary name a file is written under.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Why a GGUF file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_string(out, s),
        Value::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::String(v) => v.iter().for_each(|s| put_string(out, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
    }
}
