//! uniffi bindings of joule-core for Kotlin and Swift (`scripts/gen-bindings`).
//!
//! Thin by design: every figure, stream, history and benchmark is computed by the core;
//! this crate converts types, coalesces streamed text into few foreign calls, adapts an
//! app's battery probe to the core's meter, and keeps panics from crossing the boundary
//! (every exported body runs inside [`guard`]).

mod bench;
mod engine;
mod error;
mod listener;
mod probe;
mod records;
mod session;

pub use bench::{BenchListener, BenchProgress, EnergyBenchOptions, EnergyBenchReport};
pub use engine::{EnergyOptions, EngineInfo, EngineOptions, JouleEngine};
pub use error::JouleError;
pub use listener::TokenListener;
pub use probe::{BatteryState, EnergyProbe, ProbeSample, Thermal};
pub use records::{
    EnergyMethod, EnergyWindowReport, GenerationReport, PruneSettings, PruningReport,
    SamplingOptions, SendOptions, StopCause, TurnEnergyReport, WindowQuality,
};
pub use session::ChatSession;

pub(crate) use error::guard;

uniffi::setup_scaffolding!();

/// Version of the Rust library behind the bindings.
#[uniffi::export]
pub fn joule_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
