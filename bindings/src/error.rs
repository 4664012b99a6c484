//! The one error type of the bindings, and the panic guard around every export.

use std::panic::{AssertUnwindSafe, catch_unwind};

use joule_core::Error;

/// Errors as Kotlin exceptions (`JouleException.ModelNotFound`, ...) and Swift errors.
/// Flat: each carries the core's message, which says what to do.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum JouleError {
    #[error("{0}")]
    ModelNotFound(String),
    /// The file is not a usable GGUF model (corrupt, truncated, unsupported).
    #[error("{0}")]
    BadModelFile(String),
    /// The prompt (with the conversation so far) does not fit in the context.
    #[error("{0}")]
    ContextOverflow(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller cancelled before anything could be reported.
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Energy(String),
    /// A bug: a panic caught at the boundary, or a foreign callback that threw.
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for JouleError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::ModelNotFound { .. } | Error::EmbedModelMissing { .. } => {
                JouleError::ModelNotFound(message)
            }
            Error::Gguf(_)
            | Error::Quant(_)
            | Error::Io { .. }
            | Error::UnsupportedArchitecture { .. }
            | Error::InvalidModel(_)
            | Error::NonFiniteWeights { .. }
            | Error::NonFiniteActivations { .. }
            | Error::Tokenizer(_)
            | Error::Template(_)
            | Error::EmbedModel { .. } => JouleError::BadModelFile(message),
            // A path that is a directory, a device, unreadable: the caller passed it.
            Error::Path(_) | Error::Write(_) | Error::SessionFile(_) => {
                JouleError::InvalidArgument(message)
            }
            Error::ContextOverflow { .. } | Error::KvCacheTooLarge { .. } => {
                JouleError::ContextOverflow(message)
            }
            Error::InvalidArgument(_) | Error::Sampling(_) => JouleError::InvalidArgument(message),
            Error::Energy(_) => JouleError::Energy(message),
            Error::ThreadStart { .. } | Error::Internal(_) => JouleError::Internal(message),
        }
    }
}

/// A foreign callback (probe, listener) threw something it did not declare.
impl From<uniffi::UnexpectedUniFFICallbackError> for JouleError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        JouleError::Internal(format!("callback failed: {}", error.reason))
    }
}

/// Runs an exported body, turning a panic into [`JouleError::Internal`] so that none
/// crosses into the JVM or Swift.
pub(crate) fn guard<T>(
    what: &str,
    body: impl FnOnce() -> Result<T, JouleError>,
) -> Result<T, JouleError> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(JouleError::Internal(format!("{what} panicked: {detail}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal() {
        let r: Result<(), _> = guard("test", || panic!("boom {}", 42));
        match r {
            Err(JouleError::Internal(m)) => assert!(m.contains("test panicked: boom 42"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(guard("ok", || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn core_errors_map_to_their_kind() {
        let e = Error::ContextOverflow { needed: 10, available: 5, context: 8, used: 3 };
        assert!(matches!(JouleError::from(e), JouleError::ContextOverflow(m) if m.contains("10")));
        let e = Error::InvalidModel("x".into());
        assert!(matches!(JouleError::from(e), JouleError::BadModelFile(_)));
        let e = Error::Energy(joule_core::energy::EnergyError::InvalidConfig("x".into()));
        assert!(matches!(JouleError::from(e), JouleError::Energy(_)));
    }
}
