//! joule-core's thread pool, compiled on its own for the loom model checker
//! (`tests/loom_pool.rs`, run by `scripts/test-loom`). The file is the pool itself, not a
//! copy: with `--cfg loom` its `sync` module takes loom's atomics, locks, condition
//! variables and threads instead of std's.

#[path = "../../core/src/threads.rs"]
pub mod threads;
