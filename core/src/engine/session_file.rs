//! Sessions saved to disk: a small versioned binary file (little-endian).
//!
//! ```text
//! magic "JOULESES" | format version u32 | model identity [32] | context u64 | kv type u8
//! | n_layers u32 | kv_dim u32 | section count u32
//! then sections: tag [4] | length u64 | payload
//!   "MSGS" messages (JSON)          "SAMP" sampling params (JSON) + RNG state u64
//!   "KVMT" used u64, next position u32, windowed layers u32, windowed from u64,
//!          tokens [u32; used], positions [u32; used]
//!   "KVDA" per layer, per saved slot: key row then value row in the cache's type (every
//!          used slot of a full layer; of a sliding-window layer, the slots from
//!          "windowed from", the first one the next token sees)
//! | SHA-256 of every byte before it [32]
//! ```
//!
//! The model identity is the SHA-256 of the GGUF file's header (everything before the
//! tensor data: metadata, tokenizer, tensor names, types, shapes and offsets) and its
//! size: cheap to compute on every save and restore (hashing a multi-GB file would take
//! seconds on a phone), and it changes with the model, its quantization or its tokenizer.
//!
//! Format 1 (read, not written) had no window fields: every layer held every used slot.
//!
//! [`parse`] takes bytes and checks everything it can without a model (the fuzzing entry
//! point); [`SessionFile::check_against`] then checks the engine's model and cache shape.

use sha2::{Digest, Sha256};

use crate::chat::ChatMessage;
pub use crate::error::SessionFileError;
use crate::model::kv_cache::KvType;
use crate::sampling::SamplingParams;

pub const MAGIC: &[u8; 8] = b"JOULESES";
pub const FORMAT_VERSION: u32 = 2;
const SECTIONS: [&[u8; 4]; 4] = [b"MSGS", b"SAMP", b"KVMT", b"KVDA"];
/// Fixed header: magic, version, identity, context, kv type, layers, kv_dim, sections.
const HEADER_LEN: usize = 8 + 4 + 32 + 8 + 1 + 4 + 4 + 4;
/// KVMT before its token and position lists: used, next position, windowed layers and
/// where their rows start (format 1: used and next position only).
const META_LEN: usize = 8 + 4 + 4 + 8;

/// Everything a session file holds, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFile {
    pub model_id: [u8; 32],
    pub context: u64,
    pub kv_type: KvType,
    pub n_layers: u32,
    pub kv_dim: u32,
    pub messages: Vec<ChatMessage>,
    pub sampling: SamplingParams,
    pub rng_state: u64,
    pub next_position: u32,
    pub tokens: Vec<u32>,
    pub positions: Vec<u32>,
    /// Layers that keep a sliding window (0 in a format 1 file).
    pub windowed_layers: u32,
    /// The first slot the windowed layers' rows start at (None: format 1, every layer
    /// holds every slot).
    pub windowed_from: Option<usize>,
    /// Per layer, per saved slot, key row then value row in `kv_type`.
    pub kv_data: Vec<u8>,
}

impl SessionFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.kv_data.len() + 4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.model_id);
        out.extend_from_slice(&self.context.to_le_bytes());
        out.push(self.kv_type.code());
        out.extend_from_slice(&self.n_layers.to_le_bytes());
        out.extend_from_slice(&self.kv_dim.to_le_bytes());
        out.extend_from_slice(&(SECTIONS.len() as u32).to_le_bytes());
        // Plain data (strings, numbers): serializing cannot fail.
        let mut samp = serde_json::to_vec(&self.sampling).unwrap_or_default();
        samp.extend_from_slice(&self.rng_state.to_le_bytes());
        let mut meta = Vec::with_capacity(META_LEN + 8 * self.tokens.len());
        meta.extend_from_slice(&(self.tokens.len() as u64).to_le_bytes());
        meta.extend_from_slice(&self.next_position.to_le_bytes());
        meta.extend_from_slice(&self.windowed_layers.to_le_bytes());
        meta.extend_from_slice(&(self.windowed_from.unwrap_or(0) as u64).to_le_bytes());
        for t in self.tokens.iter().chain(&self.positions) {
            meta.extend_from_slice(&t.to_le_bytes());
        }
        let msgs = serde_json::to_vec(&self.messages).unwrap_or_default();
        let payloads: [&[u8]; 4] = [&msgs, &samp, &meta, &self.kv_data];
        for (tag, payload) in SECTIONS.iter().zip(payloads) {
            out.extend_from_slice(*tag);
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(payload);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Checks the file against the engine's model identity and cache shape.
    pub fn check_against(
        &self,
        model_id: &[u8; 32],
        context: usize,
        kv_type: KvType,
        n_layers: usize,
        kv_dim: usize,
        windowed_layers: usize,
    ) -> Result<(), SessionFileError> {
        if &self.model_id != model_id {
            return Err(SessionFileError::ForeignModel);
        }
        if self.n_layers as usize != n_layers || self.kv_dim as usize != kv_dim {
            return Err(SessionFileError::ForeignModel);
        }
        if self.windowed_from.is_some() && self.windowed_layers as usize != windowed_layers {
            return Err(SessionFileError::Mismatch(format!(
                "saved with {} sliding-window layers, this model has {windowed_layers}",
                self.windowed_layers
            )));
        }
        if self.kv_type != kv_type {
            return Err(SessionFileError::Mismatch(format!(
                "saved with a {} KV cache, this engine uses {}",
                self.kv_type.name(),
                kv_type.name()
            )));
        }
        if self.tokens.len() > context {
            return Err(SessionFileError::Mismatch(format!(
                "{} cached tokens do not fit a context of {context}",
                self.tokens.len()
            )));
        }
        Ok(())
    }
}

/// Reads little-endian fields, reporting truncation with what was being read.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SessionFileError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| SessionFileError::Truncated { what: what.to_string() })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], SessionFileError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, SessionFileError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, SessionFileError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}

fn malformed(s: impl Into<String>) -> SessionFileError {
    SessionFileError::Malformed(s.into())
}

/// Parses and validates a session file's bytes (no model needed): magic, version,
/// checksum, every section and that the sizes agree with one another.
pub fn parse(bytes: &[u8]) -> Result<SessionFile, SessionFileError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(8, "magic")? != MAGIC {
        return Err(SessionFileError::BadMagic);
    }
    let version = r.u32("format version")?;
    if version > FORMAT_VERSION {
        return Err(SessionFileError::FutureVersion { found: version, supported: FORMAT_VERSION });
    }
    if version == 0 {
        return Err(malformed(format!("format version {version}")));
    }
    if bytes.len() < HEADER_LEN + 32 {
        return Err(SessionFileError::Truncated { what: "header".into() });
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(SessionFileError::Checksum);
    }
    let mut r = Reader { buf: body, pos: 12 };
    let model_id = r.array::<32>("model identity")?;
    let context = r.u64("context")?;
    let kv_type = KvType::from_code(r.array::<1>("kv type")?[0])
        .ok_or_else(|| malformed("unknown KV cache type"))?;
    let n_layers = r.u32("layer count")?;
    let kv_dim = r.u32("kv_dim")?;
    if kv_type == KvType::Q8_0 && !kv_dim.is_multiple_of(32) {
        return Err(malformed("q8_0 cache with kv_dim not a multiple of 32"));
    }
    if r.u32("section count")? as usize != SECTIONS.len() {
        return Err(malformed("unexpected section count"));
    }
    let mut payloads = Vec::with_capacity(SECTIONS.len());
    for tag in SECTIONS {
        if &r.array::<4>("section tag")? != tag {
            return Err(malformed(format!("expected section {}", String::from_utf8_lossy(tag))));
        }
        let len = usize::try_from(r.u64("section length")?)
            .map_err(|_| malformed("section length overflows"))?;
        payloads.push(r.take(len, &String::from_utf8_lossy(tag))?);
    }
    if r.pos != body.len() {
        return Err(malformed("bytes after the last section"));
    }
    let messages: Vec<ChatMessage> =
        serde_json::from_slice(payloads[0]).map_err(|e| malformed(format!("messages: {e}")))?;
    let samp = payloads[1];
    let (json, rng) = samp.split_at(samp.len().checked_sub(8).ok_or_else(|| malformed("SAMP"))?);
    let sampling: SamplingParams =
        serde_json::from_slice(json).map_err(|e| malformed(format!("sampling: {e}")))?;
    sampling.validate().map_err(|e| malformed(format!("sampling: {e}")))?;
    let rng_state = u64::from_le_bytes(rng.try_into().map_err(|_| malformed("SAMP"))?);
    let mut m = Reader { buf: payloads[2], pos: 0 };
    let used = usize::try_from(m.u64("used slots")?).map_err(|_| malformed("used slots"))?;
    let next_position = m.u32("next position")?;
    let (windowed_layers, windowed_from) = if version >= 2 {
        let layers = m.u32("windowed layers")?;
        let from = usize::try_from(m.u64("windowed from")?).map_err(|_| malformed("KVMT"))?;
        (layers, Some(from))
    } else {
        (0, None)
    };
    let meta_len = if version >= 2 { META_LEN } else { 12 };
    if used.checked_mul(8).and_then(|n| n.checked_add(meta_len)) != Some(payloads[2].len()) {
        return Err(malformed("KVMT length does not match its slot count"));
    }
    if windowed_layers > n_layers || windowed_from.is_some_and(|f| f > used) {
        return Err(malformed("windowed layers or their first slot out of range"));
    }
    let mut words = |n: usize| -> Result<Vec<u32>, SessionFileError> {
        (0..n).map(|_| m.u32("KVMT")).collect()
    };
    let tokens = words(used)?;
    let positions = words(used)?;
    if positions.windows(2).any(|w| w[0] >= w[1])
        || positions.last().is_some_and(|&p| p >= next_position)
    {
        return Err(malformed("cache positions are not increasing below the next position"));
    }
    // Rows saved: every used slot of the full layers, the windowed layers' from theirs.
    let windowed_rows = (used - windowed_from.unwrap_or(0)) * windowed_layers as usize;
    let rows = used
        .checked_mul((n_layers - windowed_layers) as usize)
        .and_then(|n| n.checked_add(windowed_rows));
    let want = rows.and_then(|r| kv_type.row_bytes(kv_dim as usize).checked_mul(2 * r));
    if want != Some(payloads[3].len()) {
        return Err(malformed("KVDA length does not match the cache shape"));
    }
    Ok(SessionFile {
        model_id,
        context,
        kv_type,
        n_layers,
        kv_dim,
        messages,
        sampling,
        rng_state,
        next_position,
        tokens,
        positions,
        windowed_layers,
        windowed_from,
        kv_data: payloads[3].to_vec(),
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed
/// over the target only once complete; refuses to replace anything but a regular file.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), SessionFileError> {
    use std::io::Write;
    let shown = path.display().to_string();
    let io = |source| SessionFileError::Io { path: shown.clone(), source };
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_file()
    {
        return Err(SessionFileError::NotARegularFile(shown.clone()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
