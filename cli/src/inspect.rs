//! `joule inspect`: what is inside a GGUF file.

use std::path::Path;

use joule_core::gguf::{GgufFile, Value};
use joule_core::kernels;

pub fn inspect(path: &Path, full: bool) -> crate::CliResult {
    let file = GgufFile::open(path).map_err(crate::at_path(path))?;
    println!(
        "file: {} ({} bytes, GGUF v{}, alignment {})",
        path.display(),
        file.file_size(),
        file.version,
        file.alignment
    );
    println!("kernel path: {}", kernels::kernels().name);
    println!("\nmetadata ({} keys):", file.metadata.len());
    for (key, value) in file.metadata.iter() {
        let shown = match value {
            Value::Array(_) | Value::String(_) if full => format!("{value:?}"),
            _ => value.display_short(100),
        };
        println!("  {key} = {shown}");
    }
    println!("\ntensors ({}, {} bytes of data):", file.tensors.len(), file.tensor_bytes_total());
    let width = file.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!("  {:width$}  {:7}  {:>22}  {:>12}", "name", "type", "shape", "bytes");
    for t in &file.tensors {
        let shape = t.dims.iter().map(u64::to_string).collect::<Vec<_>>().join(" x ");
        println!("  {:width$}  {:7}  {:>22}  {:>12}", t.name, t.ggml_type.name(), shape, t.size);
    }
    Ok(())
}
