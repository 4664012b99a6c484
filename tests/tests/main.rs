//! Golden comparisons across crates against llama.cpp and float references.
//! One test binary per crate: each module below was its own binary once; linking the
//! library into each of them cost minutes and gigabytes. Run one module with a filter,
//! e.g. `cargo test -p joule-tests --test reference -- kv_fidelity::`.

mod kv_fidelity;
mod reference_gemma3;
mod reference_smollm2;
mod session_restore;
