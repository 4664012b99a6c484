//! `Session::save` and `Engine::restore_session`: a conversation with its sampler and
//! KV cache written to disk and read back (format in [`super::session_file`]).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::session_file::{self, SessionFile, SessionFileError};
use super::{Engine, Session};
use crate::error::Result;
use crate::model::KvCache;
use crate::sampling::Sampler;

impl Engine {
    /// The model identity written in session files: SHA-256 of the GGUF header (all
    /// metadata and the tensor table) and the file size (see `session_file`).
    pub fn model_identity(&self) -> [u8; 32] {
        let file = &self.model().file;
        let mut h = Sha256::new();
        h.update(file.header_bytes());
        h.update(file.file_size().to_le_bytes());
        h.finalize().into()
    }

    /// A session restored from a file written by [`Session::save`]: its messages,
    /// sampler and KV cache, so the next turn prefills only the new message. Everything
    /// is read and checked into new buffers first: a corrupted, truncated, foreign-model
    /// or future-version file is an error and nothing is created.
    pub fn restore_session(self: &Arc<Self>, path: impl AsRef<Path>) -> Result<Session> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|source| SessionFileError::Io { path: path.display().to_string(), source })?;
        self.restore_session_bytes(&bytes)
    }

    /// [`restore_session`](Self::restore_session) from the file's bytes.
    pub fn restore_session_bytes(self: &Arc<Self>, bytes: &[u8]) -> Result<Session> {
        let file = session_file::parse(bytes)?;
        let c = &self.model().config;
        let id = self.model_identity();
        let windowed = (0..c.n_layers).filter(|&l| c.is_local_layer(l)).count();
        file.check_against(&id, self.context(), self.kv_type(), c.n_layers, c.kv_dim(), windowed)?;
        let kv = KvCache::import(
            c,
            self.context(),
            file.kv_type,
            &file.tokens,
            &file.positions,
            file.next_position,
            file.windowed_from,
            &file.kv_data,
        )?;
        let sampler = Sampler::resumed(file.sampling, file.rng_state);
        Session::from_parts(Arc::clone(self), kv, sampler, file.messages)
    }
}

impl Session {
    /// The session as a file's bytes (see [`Session::save`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.engine.model().config;
        SessionFile {
            model_id: self.engine.model_identity(),
            context: self.kv.capacity() as u64,
            kv_type: self.kv.kv_type(),
            n_layers: c.n_layers as u32,
            kv_dim: c.kv_dim() as u32,
            messages: self.messages.clone(),
            sampling: self.sampler.params().clone(),
            rng_state: self.sampler.rng_state(),
            next_position: self.kv.next_position(),
            tokens: self.kv.tokens().to_vec(),
            positions: self.kv.positions().to_vec(),
            windowed_layers: self.kv.windowed_layers() as u32,
            windowed_from: Some(self.kv.window_saved_from()),
            kv_data: self.kv.export_data(),
        }
        .to_bytes()
    }

    /// Writes the conversation, sampler state and the KV cache's used slots to `path`
    /// (through a temporary file renamed over it once complete; anything but a regular
    /// file at `path` is refused).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(session_file::write_atomically(path.as_ref(), &self.to_bytes())?)
    }
}
