//! Read-only memory maps of model files. With the thread pool's job hand-off
//! (`threads.rs`, two blocks), the only `unsafe` outside the per-ISA kernel files.

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

/// Tells the kernel this process no longer needs the map's resident pages (after the
/// weights were repacked into memory of our own): they leave the process's RSS and are
/// read from the file again only if touched.
/// Only whole pages inside `start..start + len` are released.
#[cfg(unix)]
pub(crate) fn release_pages(map: &memmap2::Mmap, start: usize, len: usize) -> io::Result<()> {
    const PAGE: usize = 4096;
    let first = start.div_ceil(PAGE) * PAGE;
    let end = (start + len).min(map.len()) / PAGE * PAGE;
    if end <= first {
        return Ok(());
    }
    // SAFETY: DONTNEED on a private read-only file mapping discards only clean page-cache
    // pages; later reads fault them back in from the unchanged file, so every byte
    // observed through the map stays the same.
    unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first) }
}

#[cfg(not(unix))]
pub(crate) fn release_pages(_map: &memmap2::Mmap, _start: usize, _len: usize) -> io::Result<()> {
    Ok(())
}
