//! Read-only memory maps of model files: the one place outside the SIMD kernels with
//! `unsafe`.

use std::fs::File;
use std::io;

/// Maps a whole file read-only.
pub(crate) fn map_read_only(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. If another process
    // truncates the file while it is mapped, reads may fault: that is the documented
    // limit of mmap-based loaders (llama.cpp shares it); model files are not modified
    // in place by Joule.
    unsafe { memmap2::MmapOptions::new().map(file) }
}
