//! The energy trace parser (`--energy trace:FILE`) on arbitrary text, then the queries a
//! run makes of a parsed trace, over its own span and over a window taken from the input.
#![no_main]

use joule_core::energy::PowerTrace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Input: the file's text, then (when at least 16 bytes follow a NUL) a window as two
    // little-endian f64 seconds.
    let (text, window) = match data.iter().rposition(|&b| b == 0) {
        Some(nul) if data.len() - nul > 16 => (&data[..nul], Some(&data[nul + 1..nul + 17])),
        _ => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(trace) = PowerTrace::parse(text) else { return };
    std::hint::black_box((trace.len(), trace.is_empty(), trace.span(), trace.sample_rate_hz()));
    if let Some((first, last)) = trace.span() {
        std::hint::black_box(trace.energy_between(first, last));
        std::hint::black_box(trace.energy_between(last, first));
        std::hint::black_box(trace.energy_between((first + last) / 2.0, last + 1.0));
    }
    if let Some(w) = window {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&w[..8]);
        b.copy_from_slice(&w[8..]);
        std::hint::black_box(trace.energy_between(f64::from_le_bytes(a), f64::from_le_bytes(b)));
    }
});
