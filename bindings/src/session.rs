//! `ChatSession`: one conversation, usable from any thread. The core session sits in a
//! mutex (one turn at a time); its cancel flag is kept outside the lock so `cancel()`
//! reaches a turn that is running.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use joule_core::engine::{CancelFlag, Engine, GenerateOptions, Session};

use crate::error::JouleError;
use crate::listener::{Stream, TokenListener};
use crate::records::{GenerationReport, SamplingOptions, SendOptions};

#[derive(uniffi::Object)]
pub struct ChatSession {
    session: Mutex<Session>,
    cancel: CancelFlag,
}

impl ChatSession {
    pub(crate) fn new(engine: &Arc<Engine>) -> Result<Self, JouleError> {
        let session = engine.session()?;
        let cancel = session.cancel_flag();
        Ok(Self { session: Mutex::new(session), cancel })
    }

    /// The session; after a panic caught in an earlier call the conversation is reset
    /// (its cache may be half-written) and the session stays usable.
    fn lock(&self) -> MutexGuard<'_, Session> {
        match self.session.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                guard.reset();
                self.session.clear_poison();
                guard
            }
        }
    }
}

#[uniffi::export]
impl ChatSession {
    /// Sends a user message and blocks until the answer is complete, streaming its text
    /// to `listener` (coalesced: at most one call per 30 ms and per 16 pieces, text waits
    /// at most 100 ms).
    #[uniffi::method(default(listener = None))]
    pub fn send(
        &self,
        text: String,
        options: SendOptions,
        listener: Option<Arc<dyn TokenListener>>,
    ) -> Result<GenerationReport, JouleError> {
        crate::guard("send", || {
            let mut session = self.lock();
            let mut stream = Stream::new(listener);
            let mut answer = String::new();
            let options = GenerateOptions::try_from(&options)?;
            let report = session.send(&text, &options, &mut |piece| {
                answer.push_str(piece);
                stream.push(piece);
            })?;
            stream.finish();
            Ok(GenerationReport::new(answer, &report, stream.stats))
        })
    }

    /// `send` on a thread of its own, for UI threads and coroutines. Cancelling the
    /// coroutine or Task does not stop generation: call `cancel()`.
    #[uniffi::method(default(listener = None))]
    pub async fn send_async(
        self: Arc<Self>,
        text: String,
        options: SendOptions,
        listener: Option<Arc<dyn TokenListener>>,
    ) -> Result<GenerationReport, JouleError> {
        let (tx, rx) = oneshot();
        std::thread::Builder::new()
            .name("joule-send".into())
            .spawn(move || tx.send(self.send(text, options, listener)))
            .map_err(|e| JouleError::Internal(format!("cannot start a thread: {e}")))?;
        rx.await
    }

    /// Stops the turn in progress after the current token (or the next turn, if none
    /// runs). Works from any thread.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Forgets the conversation.
    pub fn reset(&self) -> Result<(), JouleError> {
        crate::guard("reset", || {
            self.lock().reset();
            Ok(())
        })
    }

    /// The conversation as JSON, for `restore` (in this or another session).
    pub fn history_json(&self) -> Result<String, JouleError> {
        crate::guard("history_json", || Ok(self.lock().history_json()))
    }

    /// Replaces the conversation with a saved one; on bad JSON nothing changes.
    pub fn restore(&self, json: String) -> Result<(), JouleError> {
        crate::guard("restore", || Ok(self.lock().restore_history(&json)?))
    }

    /// New sampling settings (checked; on error the old ones stay).
    pub fn set_sampling(&self, sampling: SamplingOptions) -> Result<(), JouleError> {
        crate::guard("set_sampling", || Ok(self.lock().set_sampling((&sampling).into())?))
    }

    /// Tokens held in the context.
    pub fn context_used(&self) -> Result<u64, JouleError> {
        crate::guard("context_used", || Ok(self.lock().context_used() as u64))
    }
}

/// A one-value channel whose receiver is a future (no async runtime needed).
fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    (Sender(Arc::clone(&slot)), Receiver(slot))
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Slot<T>>>);
struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Sender<T> {
    fn send(self, value: T) {
        let waker = {
            let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
