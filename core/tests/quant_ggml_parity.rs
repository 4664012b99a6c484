//! Bit-exact parity of Joule's reference quantizers and dequantizers with ggml's own C
//! reference (`quantize_row_*_ref` / `dequantize_row_*` in ggml-quants.c), on a
//! deterministic 16,384-value input that exercises the edge paths: an all-zero
//! super-block, an all-positive and an all-negative one, tiny values (f16-subnormal
//! scales), outliers, a zero sub-block, a constant super-block, and random data at five
//! magnitudes.
//!
//! How the golden values were produced: the C program at the bottom of this file, built
//! against ggml-org/ggml commit d99724f2b141fed9e1a9f402213506c081433465 with
//! `gcc -O2 -ffp-contract=off -std=gnu11 -Iinclude -Isrc harness.c src/ggml-quants.c -lm`
//! (gcc 12.2.0, x86-64; `-ffp-contract=off` gives the plain IEEE float semantics the
//! reference is written for: no fused multiply-adds). For each format it prints the
//! FNV-1a-64 hash of the quantized bytes, the hash of the dequantized f32 values'
//! bytes, and their f64 sum and sum of squares.

// The golden sums are kept exactly as the harness printed them (%.17g).
#![allow(clippy::excessive_precision)]

use joule_core::quant::{self, GgmlType, QK_K};

const N: usize = 64 * 256;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// 2^k for k in the normal f32 range (exact).
fn pow2(k: i32) -> f32 {
    f32::from_bits(((127 + k) as u32) << 23)
}

/// The harness's `make_input`, value for value (every value is exact in f32).
fn oracle_input() -> Vec<f32> {
    let mut rng = SplitMix64(0x4A_6F75_6C65);
    (0..N)
        .map(|i| {
            let r = rng.next();
            let mant = ((r >> 40) & 0xFF_FFFF) as i32 - 0x80_0000;
            let e = ((r >> 8) & 3) as i32;
            let v = mant as f32 * pow2(-23 - e);
            match i / 256 {
                2 => 0.0,
                3 => v.abs(),
                4 => v * pow2(-20),
                5 if i % 32 == 7 => 8.0,
                6 if (i / 32) % 8 == 3 => 0.0,
                7 => 0.25,
                8 => -v.abs(),
                sb if sb >= 9 => v * pow2((sb % 5) as i32 - 2),
                _ => v,
            }
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// (name, hash of quantized bytes, hash of dequantized f32 bytes, Σy, Σy²) from ggml.
const GOLDEN: [(&str, u64, u64, f64, f64); 11] = [
    ("q4_0", 0xe6f6fb59c3402e90, 0xfb6baa750dfd33f0, 203.08281892538071, 7354.2023102860257),
    ("q4_1", 0xaa7346b5ee452f03, 0xba11d125045cf7a6, 214.89096784591675, 7414.5459100508906),
    ("q5_0", 0xc92f7294eb706c06, 0xf6f6976535991fb7, 215.41817790269852, 7337.7371876060806),
    ("q5_1", 0xb98a7f672021fd50, 0xdd3c5aa9325d1fdc, 209.24861717224121, 7350.3096383757493),
    ("q8_0", 0x41dbd81d35b6c9e0, 0xfc089bea5d929484, 210.1113166809082, 7326.0417778089559),
    ("q4_K", 0xccab12fa392699be, 0xd346e4da8453e4f3, 217.47707676887512, 7340.2399603988506),
    ("q5_K", 0x8e5800de316cf30e, 0xfd98f4e551eba33e, 204.35514616966248, 7326.6614090560988),
    ("q6_K", 0x4ed6b6f5741e0e7d, 0x0a09ded3cb512047, 206.1129732131958, 7331.9497369146829),
    // ggml leaves the bsums of an all-zero Q8_K block unwritten; the harness zeroes its
    // buffer first, which is what Joule writes.
    ("q8_K", 0xbe951a38661955af, 0x9e32ee21d2e5f522, 208.81375386473692, 7328.4816252754354),
    ("f16", 0x6bb26164bf2e896d, 0xc7eba438614a9a3e, 209.71716767549515, 7328.1990437280783),
    ("bf16", 0x7eb940b7c9f74d46, 0xc26299a7d5f9e706, 209.77610270745572, 7327.9178863013376),
];

fn golden(name: &str) -> (u64, u64, f64, f64) {
    let &(_, q, y, s, s2) = GOLDEN.iter().find(|g| g.0 == name).unwrap();
    (q, y, s, s2)
}

fn check(name: &str, quantized: &[u8], dequantized: &[f32]) {
    let (q_hash, y_hash, sum, sum_sq) = golden(name);
    let s: f64 = dequantized.iter().map(|&v| v as f64).sum();
    let s2: f64 = dequantized.iter().map(|&v| v as f64 * v as f64).sum();
    assert!((s - sum).abs() <= 1e-9 * sum.abs(), "{name}: Σy {s} vs ggml {sum}");
    assert!((s2 - sum_sq).abs() <= 1e-9 * sum_sq, "{name}: Σy² {s2} vs ggml {sum_sq}");
    let y_bytes: &[u8] = bytemuck::cast_slice(dequantized);
    assert_eq!(fnv1a(y_bytes), y_hash, "{name}: dequantized values differ from ggml");
    assert_eq!(fnv1a(quantized), q_hash, "{name}: quantized bytes differ from ggml");
}

#[test]
fn input_generator_matches_the_harness() {
    let x = oracle_input();
    assert_eq!(fnv1a(bytemuck::cast_slice(&x)), 0x4a45ab314fefa767);
}

#[test]
fn weight_formats_match_ggml_bit_for_bit() {
    let x = oracle_input();
    let formats = [
        ("q4_0", GgmlType::Q4_0),
        ("q4_1", GgmlType::Q4_1),
        ("q5_0", GgmlType::Q5_0),
        ("q5_1", GgmlType::Q5_1),
        ("q8_0", GgmlType::Q8_0),
        ("q4_K", GgmlType::Q4_K),
        ("q5_K", GgmlType::Q5_K),
        ("q6_K", GgmlType::Q6_K),
        ("f16", GgmlType::F16),
        ("bf16", GgmlType::BF16),
    ];
    for (name, ty) in formats {
        let nbytes = ty.row_bytes(N as u64).unwrap() as usize;
        // u64 backing keeps the bytes aligned for every block type
        let mut backing = vec![0u64; nbytes.div_ceil(8)];
        let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut backing)[..nbytes];
        quant::quantize_row(ty, &x, bytes).unwrap();
        let mut y = vec![0f32; N];
        quant::dequantize_row(ty, bytes, &mut y).unwrap();
        check(name, bytes, &y);
    }
}

#[test]
fn q8_k_activations_match_ggml_bit_for_bit() {
    let x = oracle_input();
    let mut blocks = vec![bytemuck::Zeroable::zeroed(); N / QK_K];
    quant::q8_k::quantize(&x, &mut blocks);
    let mut y = vec![0f32; N];
    quant::q8_k::dequantize(&blocks, &mut y);
    check("q8_K", bytemuck::cast_slice(&blocks), &y);
}

/* The harness (harness.c, beside ggml's include/ and src/):

#include "ggml-common.h"
#include "ggml-quants.h"
#include "ggml-impl.h"
#include <stdio.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

void ggml_abort(const char * file, int line, const char * fmt, ...) { abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t n) { abort(); }
const char * ggml_type_name(enum ggml_type t) { return "?"; }
size_t ggml_type_size(enum ggml_type t) { abort(); }

static uint64_t st;
static uint64_t next(void) {
    st += 0x9E3779B97F4A7C15ull;
    uint64_t z = st;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
#define N (64*256)
static void make_input(float * x) {
    st = 0x4A6F756C65ull;
    for (int i = 0; i < N; i++) {
        uint64_t r = next();
        int32_t mant = (int32_t)((r >> 40) & 0xFFFFFF) - 0x800000;
        int e = (int)((r >> 8) & 3);
        float v = ldexpf((float)mant, -23 - e);
        int sb = i / 256;
        switch (sb) {
            case 2: v = 0.0f; break;
            case 3: v = fabsf(v); break;
            case 4: v = ldexpf(v, -20); break;
            case 5: if (i % 32 == 7) v = 8.0f; break;
            case 6: if ((i / 32) % 8 == 3) v = 0.0f; break;
            case 7: v = 0.25f; break;
            case 8: v = -fabsf(v); break;
            default: if (sb >= 9) v = ldexpf(v, (sb % 5) - 2); break;
        }
        x[i] = v;
    }
}
static uint64_t fnv(const void * p, size_t n) {
    const uint8_t * b = p; uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}
static void report(const char * name, const void * q, size_t qbytes, const float * y) {
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) { s += y[i]; s2 += (double)y[i] * y[i]; }
    printf("(\"%s\", 0x%016llx, 0x%016llx, %.17g, %.17g),\n", name,
        (unsigned long long)fnv(q, qbytes), (unsigned long long)fnv(y, N*sizeof(float)), s, s2);
}
static float x[N], y[N];
static uint8_t buf[N * 4];
#define RUN(NAME, T, BS) do { \
    memset(buf, 0, sizeof buf); \
    quantize_row_##NAME##_ref(x, (T *)buf, N); \
    dequantize_row_##NAME((const T *)buf, y, N); \
    report(#NAME, buf, (N / BS) * sizeof(T), y); } while (0)

int main(void) {
    make_input(x);
    printf("input fnv 0x%016llx\n", (unsigned long long)fnv(x, sizeof x));
    RUN(q4_0, block_q4_0, 32);  RUN(q4_1, block_q4_1, 32);  RUN(q5_0, block_q5_0, 32);
    RUN(q5_1, block_q5_1, 32);  RUN(q8_0, block_q8_0, 32);  RUN(q4_K, block_q4_K, 256);
    RUN(q5_K, block_q5_K, 256); RUN(q6_K, block_q6_K, 256); RUN(q8_K, block_q8_K, 256);
    ggml_fp16_t * h = (ggml_fp16_t *)buf;
    for (int i = 0; i < N; i++) { h[i] = GGML_FP32_TO_FP16(x[i]); y[i] = GGML_FP16_TO_FP32(h[i]); }
    report("f16", buf, N * 2, y);
    ggml_bf16_t * b = (ggml_bf16_t *)buf;
    for (int i = 0; i < N; i++) { b[i] = GGML_FP32_TO_BF16(x[i]); y[i] = GGML_BF16_TO_FP32(b[i]); }
    report("bf16", buf, N * 2, y);
    return 0;
}
*/
