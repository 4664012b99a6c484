//! Checks on paths before they are opened or written: an input must be a regular file
//! (a FIFO would block forever, a device or directory gives a confusing error), and an
//! output must not be a special file nor one of the inputs.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// A path that cannot be used as asked, with what it is and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a regular file; pass the path of a file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "output {} exists and is {kind}; Joule writes only to regular files, so choose \
         another output path",
        path.display()
    )]
    OutputNotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "output {} is the input {} (the same file); write to another path",
        output.display(),
        input.display()
    )]
    OutputIsInput { output: PathBuf, input: PathBuf },
}

/// What a file system object is, in words, for error messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_file() {
        return "a regular file";
    }
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Checks that `path` (after symlinks) is a regular file, without opening it: opening a
/// FIFO for reading would block until a writer appears.
pub fn check_input_file(path: &Path) -> Result<(), PathError> {
    let meta = std::fs::metadata(path)
        .map_err(|source| PathError::Io { path: path.to_path_buf(), source })?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(PathError::NotAFile { path: path.to_path_buf(), kind: kind_of(&meta) })
    }
}

/// Checks that `output` is absent or a regular file, and is none of `inputs` (same device
/// and inode, so symlinks and hard links are caught too).
pub fn check_output_file(output: &Path, inputs: &[&Path]) -> Result<(), PathError> {
    let meta = match std::fs::metadata(output) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(PathError::Io { path: output.to_path_buf(), source }),
    };
    if !meta.is_file() {
        return Err(PathError::OutputNotAFile { path: output.to_path_buf(), kind: kind_of(&meta) });
    }
    for input in inputs {
        if let Ok(input_meta) = std::fs::metadata(input)
            && same_file(&meta, &input_meta, output, input)
        {
            return Err(PathError::OutputIsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata, _: &Path, _: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata, a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Shows text taken from a file with control characters (NUL included) escaped, so an
/// error message never writes raw control bytes to a terminal.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for c in self.0.chars() {
            if c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}') {
                write!(f, "\\u{{{:x}}}", c as u32)?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// [`Escaped`] as a `String`.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

/// Shows raw bytes as an escaped byte string (`b"GG\x00\x01"`).
pub fn escape_bytes(bytes: &[u8]) -> String {
    format!("b\"{}\"", bytes.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(escape("a\0b\x1b[31m\n"), "a\\u{0}b\\u{1b}[31m\\u{a}");
        assert_eq!(escape("héllo"), "héllo");
        assert_eq!(escape_bytes(&[0, b'G', 0xff]), "b\"\\x00G\\xff\"");
    }
}
