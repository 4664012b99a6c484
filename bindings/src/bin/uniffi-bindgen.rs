//! uniffi's generator, built from the same uniffi version as the library
//! (`cargo run -p joule-ffi --features bindgen --bin uniffi-bindgen -- generate ...`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
