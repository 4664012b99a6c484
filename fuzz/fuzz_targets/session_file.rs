//! The session-file reader (`joule chat --load`, `Engine::restore_session`) on arbitrary
//! bytes: `session_file::parse`, then, for what it accepts, the checks against a model and
//! a save/parse round trip.
#![no_main]

use joule_core::engine::session_file;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn check(bytes: &[u8]) {
    let Ok(file) = session_file::parse(bytes) else { return };
    // What the reader accepted checks against its own shape and saves to bytes that
    // read back to the same session.
    let own = file.check_against(
        &file.model_id,
        file.tokens.len(),
        file.kv_type,
        file.n_layers as usize,
        file.kv_dim as usize,
        file.windowed_layers as usize,
    );
    assert!(own.is_ok(), "a parsed session does not match its own shape: {own:?}");
    std::hint::black_box(file.check_against(&[0; 32], 0, file.kv_type, 1, 32, 0).is_ok());
    let again = session_file::parse(&file.to_bytes());
    let Ok(again) = again else {
        panic!("a parsed session saves to bytes that do not parse: {again:?}");
    };
    assert_eq!(
        (&again.tokens, &again.positions, &again.kv_data, &again.messages),
        (&file.tokens, &file.positions, &file.kv_data, &file.messages)
    );
}

fuzz_target!(|data: &[u8]| {
    // As given: mostly stops at the magic, version or checksum.
    check(data);
    // With the trailing SHA-256 recomputed, so that mutations of a saved session reach the
    // sections behind the checksum.
    if data.len() >= 32 {
        let body = &data[..data.len() - 32];
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(&Sha256::digest(body));
        check(&fixed);
    }
});
