//! Standard output that reports its errors instead of panicking as `println!` does.
//!
//! A closed pipe (`joule inspect | head -1`) is not a failure of the command: the reader
//! has what it wanted. The first write that finds the pipe closed records it, returns
//! [`PIPE_CLOSED`] as the error, and `main` then exits with status 0 and prints nothing.
//! Any other write error (a full disk, `> /dev/full`) is an error the user sees, exit 1.

use std::fmt::Arguments;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// The error text of a write to a closed pipe; `main` recognises it through [`pipe_closed`].
pub const PIPE_CLOSED: &str = "standard output was closed";

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write found standard output closed by its reader.
pub fn pipe_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

fn describe(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
        PIPE_CLOSED.to_string()
    } else {
        format!("cannot write to standard output: {e}")
    }
}

/// Writes `text` to standard output and flushes it.
pub fn write_str(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| describe(&e))
}

/// Writes formatted text and a newline to standard output and flushes it.
pub fn write_line(args: Arguments<'_>) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| describe(&e))
}

/// The CLI's error type for an output error.
pub fn boxed(e: String) -> Box<dyn std::error::Error> {
    e.into()
}

/// `println!` that returns the CLI's error instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::write_line(format_args!("")).map_err($crate::output::boxed)
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*)).map_err($crate::output::boxed)
    };
}
pub(crate) use outln;

/// A streaming sink for generated text: remembers the first write error so the caller
/// can stop generating and report it once the turn has ended.
#[derive(Default)]
pub struct Stream {
    error: Option<String>,
}

impl Stream {
    /// Writes one piece; returns false once writing has failed (the caller should stop).
    pub fn piece(&mut self, text: &str) -> bool {
        if self.error.is_none()
            && let Err(e) = write_str(text)
        {
            self.error = Some(e);
        }
        self.error.is_none()
    }

    /// The first write error, if any.
    pub fn finish(self) -> Result<(), String> {
        self.error.map_or(Ok(()), Err)
    }
}
