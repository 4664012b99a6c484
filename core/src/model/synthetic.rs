//! Synthetic llama-shape models with random weights, written as real GGUF files: tiny
//! ones for hermetic tests, large ones (e.g. 1B parameters) for bandwidth benchmarks.
//! They carry a byte-level BPE vocabulary, so the whole engine runs on them.

use crate::error::{Error, Result};
use crate::gguf::{Array, GgufWriter, TensorToWrite, Value};
use crate::quant::{self, GgmlType};
use crate::sampling::Rng;

/// Shape and storage of a synthetic model.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    /// "llama", "qwen2" (adds q/k/v biases) or "gemma3" (q/k norms, post-norms, GELU,
    /// sliding-window layers).
    pub arch: String,
    pub n_layers: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// At least 259: 256 byte tokens and three specials come first.
    pub n_vocab: usize,
    pub n_ctx: usize,
    /// Type of the matrices (norms and biases stay F32).
    pub weight_type: GgmlType,
    /// Type of the token embedding.
    pub embedding_type: GgmlType,
    /// Without a separate output matrix the embedding is reused (tied).
    pub tied_output: bool,
    pub seed: u64,
}

impl SyntheticSpec {
    /// A model small enough to check against a naive float implementation.
    pub fn tiny() -> Self {
        Self {
            arch: "llama".into(),
            n_layers: 2,
            n_embd: 64,
            n_ff: 96,
            n_head: 4,
            n_head_kv: 2,
            n_vocab: 320,
            n_ctx: 256,
            weight_type: GgmlType::F32,
            embedding_type: GgmlType::F32,
            tied_output: true,
            seed: 1,
        }
    }

    /// A llama-shape model of about 1.1 B parameters (TinyLlama's shape).
    pub fn one_billion(weight_type: GgmlType) -> Self {
        Self {
            arch: "llama".into(),
            n_layers: 22,
            n_embd: 2048,
            n_ff: 5632,
            n_head: 32,
            n_head_kv: 4,
            n_vocab: 32000,
            n_ctx: 2048,
            weight_type,
            embedding_type: weight_type,
            tied_output: false,
            seed: 1,
        }
    }

    pub fn parameters(&self) -> u64 {
        let hd = self.n_embd / self.n_head;
        let kv = self.n_head_kv * hd;
        let per_layer = 2 * self.n_embd * self.n_embd
            + 2 * self.n_embd * kv
            + 3 * self.n_embd * self.n_ff
            + 2 * self.n_embd;
        let out = if self.tied_output { 0 } else { self.n_vocab * self.n_embd };
        (self.n_layers * per_layer + self.n_vocab * self.n_embd + out + self.n_embd) as u64
    }
}

/// GPT-2's printable stand-ins for the 256 byte values (byte-level BPE vocabulary).
pub fn byte_level_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// Builds the GGUF writer of a synthetic model.
pub fn synthetic_model(spec: &SyntheticSpec) -> Result<GgufWriter> {
    if spec.n_vocab < 259 {
        return Err(Error::InvalidArgument(
            "a synthetic vocabulary needs at least 259 tokens".into(),
        ));
    }
    for ty in [spec.weight_type, spec.embedding_type] {
        for row in [spec.n_embd, spec.n_ff] {
            if !(row as u64).is_multiple_of(ty.block_size() as u64) {
                return Err(Error::InvalidArgument(format!(
                    "{ty} packs rows in blocks of {}, but this shape has rows of {row}; use a \
                     shape whose widths are multiples of {} (--shape 1b) or a 32-block type \
                     (q4_0, q4_1, q5_0, q8_0, f16, f32)",
                    ty.block_size(),
                    ty.block_size()
                )));
            }
        }
    }
    let a = spec.arch.as_str();
    let hd = spec.n_embd / spec.n_head;
    let kv = spec.n_head_kv * hd;
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String(a.into()));
    w.set(
        "general.name",
        Value::String(format!("synthetic-{}-{}L-{}", a, spec.n_layers, spec.n_embd)),
    );
    w.set(format!("{a}.block_count"), Value::U32(spec.n_layers as u32));
    w.set(format!("{a}.context_length"), Value::U32(spec.n_ctx as u32));
    w.set(format!("{a}.embedding_length"), Value::U32(spec.n_embd as u32));
    w.set(format!("{a}.feed_forward_length"), Value::U32(spec.n_ff as u32));
    w.set(format!("{a}.attention.head_count"), Value::U32(spec.n_head as u32));
    w.set(format!("{a}.attention.head_count_kv"), Value::U32(spec.n_head_kv as u32));
    w.set(format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-5));
    w.set(
        format!("{a}.rope.freq_base"),
        Value::F32(if a == "gemma3" { 1_000_000.0 } else { 10000.0 }),
    );
    if a == "gemma3" {
        // A window shorter than the test prompts, so the local layers' masking matters.
        w.set(format!("{a}.attention.sliding_window"), Value::U32(4));
        w.set(format!("{a}.attention.key_length"), Value::U32(hd as u32));
        w.set(format!("{a}.attention.value_length"), Value::U32(hd as u32));
    }
    w.set(format!("{a}.vocab_size"), Value::U32(spec.n_vocab as u32));

    // Vocabulary: the 256 bytes, three specials, then filler tokens (two-byte pairs).
    let chars = byte_level_chars();
    let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    tokens.extend(["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map(String::from));
    let mut merges = Vec::new();
    let letters: Vec<char> = "etaoinshrdlu ".chars().collect();
    'fill: for &x in &letters {
        for &y in &letters {
            if tokens.len() >= spec.n_vocab {
                break 'fill;
            }
            let (cx, cy) = (chars[x as usize], chars[y as usize]);
            tokens.push(format!("{cx}{cy}"));
            merges.push(format!("{cx} {cy}"));
        }
    }
    while tokens.len() < spec.n_vocab {
        tokens.push(format!("<unused{}>", tokens.len()));
    }
    let types: Vec<i32> = (0..spec.n_vocab)
        .map(|i| match i {
            256..=258 => 3,
            _ if tokens[i].starts_with("<unused") => 5,
            _ => 1,
        })
        .collect();
    w.set("tokenizer.ggml.model", Value::String("gpt2".into()));
    w.set("tokenizer.ggml.pre", Value::String("gpt-2".into()));
    w.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    w.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    w.set("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
    w.set("tokenizer.ggml.bos_token_id", Value::U32(256));
    w.set("tokenizer.ggml.eos_token_id", Value::U32(258));
    w.set("tokenizer.ggml.add_bos_token", Value::Bool(false));

    let mut rng = Rng::new(spec.seed);
    let mut add = |w: &mut GgufWriter,
                   name: String,
                   n_in: usize,
                   n_out: usize,
                   ty: GgmlType,
                   scale: f32,
                   bias: f32| {
        let values: Vec<f32> = (0..n_in * n_out).map(|_| bias + scale * rng.gaussian()).collect();
        let dims = if n_out == 1 { vec![n_in as u64] } else { vec![n_in as u64, n_out as u64] };
        let row_bytes = ty.row_bytes(n_in as u64).ok_or_else(|| {
            Error::InvalidArgument(format!("{name}: {n_in} is not a multiple of {ty}'s block"))
        })?;
        let mut data = vec![0u8; row_bytes as usize * n_out];
        for (row, out) in values.chunks(n_in).zip(data.chunks_mut(row_bytes as usize)) {
            quant::quantize_row(ty, row, out)?;
        }
        w.add_tensor(TensorToWrite { name, dims, ggml_type: ty, data });
        Ok::<(), Error>(())
    };
    let d = spec.n_embd;
    let s_in = 1.0 / (d as f32).sqrt();
    add(&mut w, "token_embd.weight".into(), d, spec.n_vocab, spec.embedding_type, 1.0, 0.0)?;
    for l in 0..spec.n_layers {
        let t = spec.weight_type;
        add(&mut w, format!("blk.{l}.attn_norm.weight"), d, 1, GgmlType::F32, 0.1, 1.0)?;
        add(&mut w, format!("blk.{l}.attn_q.weight"), d, d, t, s_in, 0.0)?;
        add(&mut w, format!("blk.{l}.attn_k.weight"), d, kv, t, s_in, 0.0)?;
        add(&mut w, format!("blk.{l}.attn_v.weight"), d, kv, t, s_in, 0.0)?;
        if a == "qwen2" {
            add(&mut w, format!("blk.{l}.attn_q.bias"), d, 1, GgmlType::F32, 0.1, 0.0)?;
            add(&mut w, format!("blk.{l}.attn_k.bias"), kv, 1, GgmlType::F32, 0.1, 0.0)?;
            add(&mut w, format!("blk.{l}.attn_v.bias"), kv, 1, GgmlType::F32, 0.1, 0.0)?;
        }
        add(&mut w, format!("blk.{l}.attn_output.weight"), d, d, t, s_in, 0.0)?;
        if a == "gemma3" {
            add(&mut w, format!("blk.{l}.attn_q_norm.weight"), hd, 1, GgmlType::F32, 0.1, 1.0)?;
            add(&mut w, format!("blk.{l}.attn_k_norm.weight"), hd, 1, GgmlType::F32, 0.1, 1.0)?;
            add(
                &mut w,
                format!("blk.{l}.post_attention_norm.weight"),
                d,
                1,
                GgmlType::F32,
                0.1,
                1.0,
            )?;
            add(&mut w, format!("blk.{l}.post_ffw_norm.weight"), d, 1, GgmlType::F32, 0.1, 1.0)?;
        }
        add(&mut w, format!("blk.{l}.ffn_norm.weight"), d, 1, GgmlType::F32, 0.1, 1.0)?;
        add(&mut w, format!("blk.{l}.ffn_gate.weight"), d, spec.n_ff, t, s_in, 0.0)?;
        add(&mut w, format!("blk.{l}.ffn_up.weight"), d, spec.n_ff, t, s_in, 0.0)?;
        add(
            &mut w,
            format!("blk.{l}.ffn_down.weight"),
            spec.n_ff,
            d,
            t,
            1.0 / (spec.n_ff as f32).sqrt(),
            0.0,
        )?;
    }
    add(&mut w, "output_norm.weight".into(), d, 1, GgmlType::F32, 0.1, 1.0)?;
    if !spec.tied_output {
        add(&mut w, "output.weight".into(), d, spec.n_vocab, spec.weight_type, s_in, 0.0)?;
    }
    Ok(w)
}
