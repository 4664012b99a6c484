//! Reading small sysfs attribute files. Every failure becomes a one-line reason naming the
//! file ("<path>: permission denied"), never a panic: sensor files vanish, change
//! permissions and hold garbage on real devices.

use std::io::Read;
use std::path::Path;

/// Attribute files are tiny; anything longer is not a sensor value.
const MAX_ATTRIBUTE_BYTES: u64 = 4096;

/// Describes an I/O error the way a user fixing it needs to read it.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::NotFound => "missing".to_string(),
        _ => error.to_string(),
    }
}

/// The file's contents with surrounding whitespace removed.
pub(crate) fn read_trimmed(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("{}: {}", path.display(), describe_io(&e)))?;
    let mut text = String::new();
    file.take(MAX_ATTRIBUTE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {}", path.display(), describe_io(&e)))?;
    Ok(text.trim().to_string())
}

/// A non-negative integer attribute (`energy_uj`, `max_energy_range_uj`).
pub(crate) fn read_u64(path: &Path) -> Result<u64, String> {
    let text = read_trimmed(path)?;
    text.parse::<u64>().map_err(|_| {
        format!("{}: not a non-negative integer: {:?}", path.display(), shorten(&text))
    })
}

/// A signed integer attribute (`current_now`, `power_now` may be negative).
pub(crate) fn read_i64(path: &Path) -> Result<i64, String> {
    let text = read_trimmed(path)?;
    text.parse::<i64>()
        .map_err(|_| format!("{}: not an integer: {:?}", path.display(), shorten(&text)))
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_file() {
        let dir = std::env::temp_dir().join(format!("joule-sysfs-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope");
        let err = read_u64(&missing).unwrap_err();
        assert!(err.contains("nope") && err.ends_with("missing"), "{err}");
        let garbage = dir.join("garbage");
        std::fs::write(&garbage, "12abc\n").unwrap();
        let err = read_u64(&garbage).unwrap_err();
        assert!(err.contains("not a non-negative integer") && err.contains("12abc"), "{err}");
        std::fs::write(&garbage, " -42\n").unwrap();
        assert_eq!(read_i64(&garbage), Ok(-42));
        let err = read_u64(&dir).unwrap_err();
        assert!(err.starts_with(&dir.display().to_string()), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
