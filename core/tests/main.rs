//! Integration tests of joule-core (formats, kernels, model, tokenizer, templates, energy).
//! One test binary per crate: each module below was its own binary once; linking the
//! library into each of them cost minutes and gigabytes. Run one module with a filter,
//! e.g. `cargo test -p joule-core --test integration -- chat_jinja_compat::`.

mod energy_support;
mod support;

mod bench_profile;
mod chat_jinja_compat;
mod chat_limits;
mod chat_reference;
mod chat_template_api;
mod chat_templates;
mod endless_chat;
mod energy_battery;
mod energy_estimate;
mod energy_rapl;
mod energy_trace;
mod energy_windows;
mod engine_energy;
mod engine_files;
mod engine_sessions;
mod eval;
mod eval_prune;
mod forward_naive;
mod fuzz_regressions;
mod gguf_hostile;
mod hostile_inputs;
mod kernels_aarch64_parity;
mod kernels_float_parity;
mod kernels_kv_parity;
mod kernels_packed;
mod kernels_simd_parity;
mod kernels_x86_parity;
mod kv_cache_types;
mod kv_evict;
mod model_errors;
mod prune;
mod prune_snapkv;
// The segment strategy needs the `embed` feature (on when the CLI is in the build, as in
// `cargo test --workspace`).
#[cfg(feature = "embed")]
mod prune_segment;
mod quant_ggml_parity;
mod quant_properties;
mod quant_real_models;
mod requantize;
mod session_file;
mod tokenizer_errors;
mod tokenizer_reference;
mod tokenizer_unit;
