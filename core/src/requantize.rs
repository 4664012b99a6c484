//! Requantizing a GGUF file to another type mix (`joule quantize`): every tensor is
//! dequantized exactly and quantized again with the reference quantizers; metadata is
//! kept. The per-tensor choices follow llama.cpp's for the same file types, so the
//! result is a file llama.cpp also loads, of comparable quality.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, GgufWriter, TensorInfo, TensorToWrite, Value};
use crate::quant::{self, GgmlType, QK_K};

/// The file types `joule quantize` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum FileType {
    Q4_0,
    Q4_1,
    Q4_K_M,
    Q8_0,
    /// Every matrix as F16 (the float reference of quantized weights).
    F16,
}

impl FromStr for FileType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "q4_0" => Ok(FileType::Q4_0),
            "q4_1" => Ok(FileType::Q4_1),
            "q4_k_m" => Ok(FileType::Q4_K_M),
            "q8_0" => Ok(FileType::Q8_0),
            "f16" => Ok(FileType::F16),
            other => Err(Error::InvalidArgument(format!(
                "unknown type '{other}' (q4_0, q4_1, q4_k_m, q8_0, f16)"
            ))),
        }
    }
}

impl FileType {
    /// llama.cpp's `general.file_type` value.
    fn ftype_id(self) -> u32 {
        match self {
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q4_K_M => 15,
            FileType::F16 => 1,
        }
    }
}

/// The type one tensor gets.
pub fn tensor_type(
    target: FileType,
    info: &TensorInfo,
    n_layers: usize,
    has_output: bool,
) -> GgmlType {
    let name = info.name.as_str();
    // Vectors (norms, biases) and anything not a matrix stay as float.
    if info.dims.len() < 2 || !name.ends_with(".weight") {
        return if info.ggml_type == GgmlType::F16 { GgmlType::F16 } else { GgmlType::F32 };
    }
    let is_output = name == "output.weight" || (!has_output && name == "token_embd.weight");
    let layer = name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse::<usize>().ok());
    // llama.cpp's "more bits" layers: the first and last eighth, and every third between.
    let more_bits =
        |l: usize| l < n_layers / 8 || l >= 7 * n_layers / 8 || (l - n_layers / 8) % 3 == 2;
    let wanted = match target {
        FileType::Q8_0 => GgmlType::Q8_0,
        FileType::F16 => GgmlType::F16,
        _ if is_output => GgmlType::Q6_K,
        FileType::Q4_0 => GgmlType::Q4_0,
        FileType::Q4_1 => GgmlType::Q4_1,
        FileType::Q4_K_M => match layer {
            Some(l) if (name.contains("attn_v") || name.contains("ffn_down")) && more_bits(l) => {
                GgmlType::Q6_K
            }
            _ => GgmlType::Q4_K,
        },
    };
    fallback(wanted, info.dims[0])
}

/// k-quants need rows that are a multiple of 256; otherwise llama.cpp's fallbacks apply.
fn fallback(ty: GgmlType, row: u64) -> GgmlType {
    if row.is_multiple_of(QK_K as u64) {
        return ty;
    }
    match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    }
}

/// Builds the requantized file. `progress(done_bytes, total_bytes, tensor_name)` is
/// called before each tensor.
pub fn requantize(
    file: &GgufFile,
    target: FileType,
    progress: &mut dyn FnMut(u64, u64, &str),
) -> Result<GgufWriter> {
    let arch = file.metadata.str("general.architecture")?.to_string();
    let n_layers: usize = file.metadata.int(&format!("{arch}.block_count"))?;
    let has_output = file.tensor_info("output.weight").is_some();
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata.iter() {
        w.set(k, v.clone());
    }
    w.set("general.file_type", Value::U32(target.ftype_id()));
    w.set("general.quantization_version", Value::U32(2));
    let total = file.tensor_bytes_total();
    let mut done = 0;
    for info in &file.tensors {
        progress(done, total, &info.name);
        done += info.size;
        if !info.ggml_type.is_supported() {
            return Err(crate::gguf::GgufError::UnsupportedTensorType {
                name: info.name.clone(),
                ggml_type: info.ggml_type,
            }
            .into());
        }
        let ty = tensor_type(target, info, n_layers, has_output);
        let data = if ty == info.ggml_type {
            file.tensor_data(info).to_vec()
        } else {
            convert(file.tensor_data(info), info, ty)?
        };
        w.add_tensor(TensorToWrite {
            name: info.name.clone(),
            dims: info.dims.clone(),
            ggml_type: ty,
            data,
        });
    }
    progress(total, total, "");
    Ok(w)
}

/// Dequantizes then quantizes one tensor, a row at a time.
fn convert(src: &[u8], info: &TensorInfo, ty: GgmlType) -> Result<Vec<u8>> {
    let n_in = info.row_len();
    let rows = info.n_rows();
    let src_row = info.ggml_type.row_bytes(n_in as u64).unwrap_or(0) as usize;
    let dst_row = ty.row_bytes(n_in as u64).ok_or_else(|| {
        Error::InvalidArgument(format!("{}: rows of {n_in} do not fit {ty}", info.name))
    })? as usize;
    let mut out = vec![0u8; dst_row * rows];
    let mut row = vec![0f32; n_in];
    for (s, d) in src.chunks_exact(src_row).zip(out.chunks_exact_mut(dst_row)) {
        quant::dequantize_row(info.ggml_type, s, &mut row)?;
        quant::quantize_row(ty, &row, d)?;
    }
    Ok(out)
}
