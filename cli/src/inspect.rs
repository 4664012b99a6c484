//! `joule inspect`: what is inside a GGUF file.

use std::path::Path;

use joule_core::Engine;
use joule_core::engine::files::inspect_file;
use joule_core::fsutil::escape;

use crate::output::outln;

pub fn inspect(path: &Path, full: bool) -> crate::CliResult {
    let file = inspect_file(path).map_err(crate::at_path(path))?;
    let width = file.tensors.iter().map(|t| escape(&t.name).chars().count()).max().unwrap_or(4);
    let width = width.max(4);
    outln!(
        "file: {} ({} bytes, GGUF v{}, alignment {})",
        path.display(),
        file.file_size,
        file.version,
        file.alignment
    )?;
    outln!("kernel path: {}", Engine::kernel_name())?;
    outln!("\nmetadata ({} keys):", file.metadata.len())?;
    for m in &file.metadata {
        let shown = if full { &m.full } else { &m.short };
        outln!("  {} = {}", escape(&m.key), escape(shown))?;
    }
    outln!("\ntensors ({}, {} bytes of data):", file.tensors.len(), file.tensor_bytes)?;
    outln!("  {:width$}  {:7}  {:>22}  {:>12}", "name", "type", "shape", "bytes")?;
    for t in &file.tensors {
        let shape = t.dims.iter().map(u64::to_string).collect::<Vec<_>>().join(" x ");
        let name = escape(&t.name);
        outln!("  {name:width$}  {:7}  {shape:>22}  {:>12}", t.type_name, t.bytes)?;
    }
    Ok(())
}
