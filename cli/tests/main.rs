//! End-to-end tests of the `joule` command.
//! One test binary per crate: each module below was its own binary once; linking the
//! library into each of them cost minutes and gigabytes. Run one module with a filter,
//! e.g. `cargo test -p joule-cli --test cli -- cli::`.

mod cli;
mod hostile;
