//! The GGUF parser: a bounds-checked cursor over the file bytes and the validation of
//! every count, length and offset before it is trusted.

use std::collections::HashSet;

use super::value::{Array, Metadata, Value, ValueType};
use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufError, MAX_DIMS, TensorInfo};
use crate::quant::GgmlType;

/// Hard limits on what a file may declare. Counts are also bounded by the bytes left
/// in the file, so nothing is allocated that the file could not back.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_string_len: u64,
    pub max_array_len: u64,
    pub max_tensors: u64,
    pub max_kv: u64,
    pub max_tensor_name_len: u64,
    pub max_array_nesting: usize,
    /// Largest dimension of one tensor.
    pub max_dim: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_string_len: 16 << 20,
            max_array_len: 1 << 26,
            max_tensors: 1 << 16,
            max_kv: 1 << 16,
            max_tensor_name_len: 256,
            max_array_nesting: 4,
            max_dim: 1 << 40,
        }
    }
}

pub(super) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub data_offset: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl<'a> Cursor<'a> {
    fn bytes_left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.bytes_left() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                bytes_left: self.bytes_left(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn limit(&self, what: &dyn Fn() -> String, value: u64, limit: u64) -> Result<(), GgufError> {
        if value > limit {
            return Err(GgufError::LimitExceeded {
                what: what(),
                offset: self.pos as u64,
                value,
                limit,
            });
        }
        Ok(())
    }

    fn string(&mut self, what: &dyn Fn() -> String, max_len: u64) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        self.limit(&|| format!("length of {}", what()), len, max_len)?;
        let start = self.pos as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError::InvalidUtf8 { what: what(), offset: start })
    }

    /// Reads an element count and checks the file can hold that many elements.
    fn count(
        &mut self,
        what: &dyn Fn() -> String,
        limit: u64,
        min_elem_size: usize,
    ) -> Result<u64, GgufError> {
        let n = self.u64(what)?;
        self.limit(what, n, limit)?;
        let needed = n.saturating_mul(min_elem_size as u64);
        if needed > self.bytes_left() {
            return Err(GgufError::Truncated {
                what: format!("{} ({n} elements)", what()),
                offset: self.pos as u64,
                needed,
                bytes_left: self.bytes_left(),
            });
        }
        Ok(n)
    }

    fn value_type(&mut self, key: &str) -> Result<ValueType, GgufError> {
        let offset = self.pos as u64;
        let id = self.u32(&|| format!("value type of '{key}'"))?;
        ValueType::from_u32(id).ok_or(GgufError::UnknownValueType {
            key: key.to_string(),
            offset,
            type_id: id,
        })
    }

    fn value(&mut self, key: &str, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
        let what = || format!("value of '{key}'");
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(&what)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(&what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(&what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(&what)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(&what)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(&what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(&what)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(&what)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(&what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(&what)?)),
            ValueType::Bool => {
                let b = self.array::<1>(&what)?[0];
                if b > 1 {
                    return Err(GgufError::ValueOutOfRange {
                        key: key.to_string(),
                        value: format!("bool byte {b}"),
                    });
                }
                Value::Bool(b == 1)
            }
            ValueType::String => Value::String(self.string(&what, self.limits.max_string_len)?),
            ValueType::Array => Value::Array(self.array_value(key, depth)?),
        })
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array, GgufError> {
        let what = || format!("array '{key}'");
        self.limit(
            &|| format!("nesting of {}", what()),
            depth as u64 + 1,
            self.limits.max_array_nesting as u64,
        )?;
        let elem = self.value_type(key)?;
        let n = self.count(&what, self.limits.max_array_len, elem.min_encoded_size())?;
        macro_rules! prim {
            ($variant:ident, $t:ty) => {{
                const SZ: usize = std::mem::size_of::<$t>();
                let bytes = self.take(n * SZ as u64, &what)?;
                Array::$variant(
                    bytes
                        .chunks_exact(SZ)
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; SZ])))
                        .collect(),
                )
            }};
        }
        Ok(match elem {
            ValueType::U8 => Array::U8(self.take(n, &what)?.to_vec()),
            ValueType::I8 => Array::I8(self.take(n, &what)?.iter().map(|&b| b as i8).collect()),
            ValueType::U16 => prim!(U16, u16),
            ValueType::I16 => prim!(I16, i16),
            ValueType::U32 => prim!(U32, u32),
            ValueType::I32 => prim!(I32, i32),
            ValueType::F32 => prim!(F32, f32),
            ValueType::U64 => prim!(U64, u64),
            ValueType::I64 => prim!(I64, i64),
            ValueType::F64 => prim!(F64, f64),
            ValueType::Bool => {
                let bytes = self.take(n, &what)?;
                if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                    return Err(GgufError::ValueOutOfRange {
                        key: key.to_string(),
                        value: format!("bool byte {b}"),
                    });
                }
                Array::Bool(bytes.iter().map(|&b| b == 1).collect())
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n as usize);
                for i in 0..n {
                    v.push(self.string(
                        &|| format!("element {i} of array '{key}'"),
                        self.limits.max_string_len,
                    )?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.array_value(key, depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

pub(super) fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, GgufError> {
    let mut c = Cursor { buf, pos: 0, limits };
    let magic = c
        .take(4, &|| "magic".into())
        .map_err(|_| GgufError::BadMagic { found: buf[..buf.len().min(4)].to_vec() })?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic.to_vec() });
    }
    let version = c.u32(&|| "version".into())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    // The counts are checked against their limits only: the bytes they need come after the
    // metadata, so a file cut short inside the metadata fails on the entry being read,
    // which names where the cut is. Allocations below are bounded by the bytes left.
    let n_tensors = c.u64(&|| "tensor count".into())?;
    c.limit(&|| "tensor count".into(), n_tensors, limits.max_tensors)?;
    let n_kv = c.u64(&|| "metadata key/value count".into())?;
    c.limit(&|| "metadata key/value count".into(), n_kv, limits.max_kv)?;

    let mut metadata = Metadata::new();
    for i in 0..n_kv {
        let entry_start = c.pos as u64;
        let in_entry = |e: GgufError| e.in_metadata_entry(i, n_kv, entry_start);
        let key = c.string(&|| "its key".into(), 65536).map_err(in_entry)?;
        let ty = c.value_type(&key).map_err(in_entry)?;
        let value = c.value(&key, ty, 0).map_err(in_entry)?;
        if metadata.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        metadata.insert(key, value);
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => {
            let a = v.as_i128().ok_or(GgufError::WrongType {
                key: "general.alignment".into(),
                expected: "integer",
                found: v.value_type().name(),
            })?;
            let a = u64::try_from(a).unwrap_or(0);
            if a == 0 || !a.is_power_of_two() || a > 65536 {
                return Err(GgufError::BadAlignment { value: a });
            }
            a
        }
    };

    // A tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 + 8 bytes.
    let capacity = n_tensors.min(c.bytes_left() / 32) as usize;
    let mut tensors = Vec::with_capacity(capacity);
    let mut names = HashSet::with_capacity(capacity);
    for i in 0..n_tensors {
        let name = c.string(&|| format!("name of tensor {i}"), limits.max_tensor_name_len)?;
        let n_dims = c.u32(&|| format!("dimension count of tensor '{name}'"))?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(GgufError::BadShape {
                name,
                dims: vec![],
                reason: format!("{n_dims} dimensions (must be 1 to {MAX_DIMS})"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(c.u64(&|| format!("dimension {d} of tensor '{name}'"))?);
        }
        let type_id = c.u32(&|| format!("type of tensor '{name}'"))?;
        let offset = c.u64(&|| format!("data offset of tensor '{name}'"))?;
        let ggml_type = GgmlType::from_id(type_id)
            .ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), type_id })?;
        let size = tensor_size(&name, &dims, ggml_type, limits)?;
        if offset % alignment != 0 {
            return Err(GgufError::Misaligned { name, offset, alignment });
        }
        if !names.insert(name.clone()) {
            return Err(GgufError::DuplicateTensor { name });
        }
        tensors.push(TensorInfo { name, dims, ggml_type, offset, size });
    }

    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    let file_len = buf.len() as u64;
    for t in &tensors {
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        match (start, end) {
            (Some(_), Some(end)) if end <= file_len => {}
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    name: t.name.clone(),
                    start: data_offset.saturating_add(t.offset),
                    end: data_offset.saturating_add(t.offset).saturating_add(t.size),
                    file_len,
                });
            }
        }
    }
    check_no_overlap(&tensors)?;

    Ok(Parsed { version, alignment, metadata, tensors, data_offset })
}

/// Bytes of a tensor from its shape and type, with every product checked.
fn tensor_size(name: &str, dims: &[u64], ty: GgmlType, limits: &Limits) -> Result<u64, GgufError> {
    let bad = |reason: String| GgufError::BadShape {
        name: name.to_string(),
        dims: dims.to_vec(),
        reason,
    };
    if let Some(&d) = dims.iter().find(|&&d| d == 0 || d > limits.max_dim) {
        return Err(bad(format!("dimension {d} is outside 1..={}", limits.max_dim)));
    }
    let row = ty.row_bytes(dims[0]).ok_or_else(|| {
        bad(format!(
            "row length {} is not a multiple of the {} block size {}",
            dims[0],
            ty,
            ty.block_size()
        ))
    })?;
    dims[1..]
        .iter()
        .try_fold(row, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("size overflows".into()))
}

fn check_no_overlap(tensors: &[TensorInfo]) -> Result<(), GgufError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for w in order.windows(2) {
        if w[0].offset + w[0].size > w[1].offset {
            return Err(GgufError::OverlappingTensors {
                first: w[0].name.clone(),
                second: w[1].name.clone(),
            });
        }
    }
    Ok(())
}
