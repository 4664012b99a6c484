//! The GGUF reader on arbitrary bytes: parse and validate, walk every metadata value and
//! tensor, read each tensor's bytes, then build what a model load builds from a file
//! (config, tokenizer, chat template, weights). Errors are fine; panics, hangs, out-of-
//! bounds reads and huge allocations are not.
#![no_main]

use joule_core::chat::ChatTemplate;
use joule_core::gguf::{GgufFile, Value};
use joule_core::Precision;
use joule_core::model::{Model, ModelConfig};
use joule_core::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data) else { return };
    for (key, value) in file.metadata.iter() {
        std::hint::black_box((key.len(), value.display_short(40), value.as_i128()));
        if let Value::Array(array) = value {
            std::hint::black_box((array.len(), array.elem_type(), array.to_i64_vec()));
        }
    }
    let mut sum = 0u64;
    for info in &file.tensors {
        std::hint::black_box((info.n_elements(), info.row_len(), info.n_rows()));
        let bytes = file.tensor_data(info);
        assert_eq!(bytes.len() as u64, info.size);
        sum = sum.wrapping_add(bytes.iter().map(|&b| b as u64).sum::<u64>());
        let handle = file.tensor_bytes(info);
        assert_eq!(handle.as_slice(), bytes);
    }
    std::hint::black_box(sum);

    let _ = ModelConfig::from_metadata(&file.metadata);
    if let Ok(tokenizer) = Tokenizer::from_gguf(&file.metadata) {
        let text = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or("");
        let _ = tokenizer.encode("Hello, world! <|im_start|>", true);
        let _ = ChatTemplate::from_metadata(
            &file.metadata,
            text(tokenizer.bos_id()),
            text(tokenizer.eos_id()),
        );
    }
    // What `Engine::load` hands the forward pass: config plus every weight, exactly
    // dequantized (norms) or repacked for the integer kernels.
    for precision in [Precision::Exact, Precision::Fast] {
        let _ = Model::load(file.clone(), precision);
    }
});
