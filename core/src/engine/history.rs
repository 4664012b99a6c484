//! Saving and restoring a conversation as JSON, so an app can keep a chat across
//! restarts and the CLI and the phones share one format. Only the messages are saved:
//! the KV cache is rebuilt from them at the next turn (prefix reuse makes that one
//! prefill), so a restored session continues the same conversation.

use serde::{Deserialize, Serialize};

use super::Session;
use crate::chat::ChatMessage;
use crate::error::{Error, Result};

/// Version of the history format; `restore_history` rejects any other.
pub const HISTORY_VERSION: u32 = 1;

/// Longest history JSON accepted (a guard against feeding a huge file by mistake).
pub const MAX_HISTORY_BYTES: usize = 64 << 20;

/// The saved form of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub version: u32,
    pub messages: Vec<ChatMessage>,
}

impl History {
    /// Parses and checks a saved history; the error says what is wrong.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_HISTORY_BYTES {
            return Err(Error::InvalidArgument(format!(
                "history JSON is {} bytes, more than the {MAX_HISTORY_BYTES} accepted",
                json.len()
            )));
        }
        let history: History = serde_json::from_str(json)
            .map_err(|e| Error::InvalidArgument(format!("history JSON: {e}")))?;
        if history.version != HISTORY_VERSION {
            return Err(Error::InvalidArgument(format!(
                "history version {} is not supported (expected {HISTORY_VERSION})",
                history.version
            )));
        }
        if let Some((i, m)) = history.messages.iter().enumerate().find(|(_, m)| m.role.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "history message {i} has an empty role (content {:?})",
                m.content.chars().take(40).collect::<String>()
            )));
        }
        Ok(history)
    }

    pub fn to_json(&self) -> String {
        // Serializing strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Session {
    /// The conversation so far as JSON (`{"version":1,"messages":[{"role","content"}]}`).
    pub fn history_json(&self) -> String {
        History { version: HISTORY_VERSION, messages: self.messages().to_vec() }.to_json()
    }

    /// Replaces the conversation with a saved one. Bad JSON is an error and leaves the
    /// session as it was. The cache is emptied; the next turn prefills the history.
    pub fn restore_history(&mut self, json: &str) -> Result<()> {
        let history = History::from_json(json)?;
        self.reset();
        for message in history.messages {
            self.push_message(message);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = History {
            version: HISTORY_VERSION,
            messages: vec![ChatMessage::user("hi \"there\""), ChatMessage::assistant("héllo")],
        };
        assert_eq!(History::from_json(&h.to_json()).unwrap(), h);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"version":2,"messages":[]}"#,
            r#"{"version":1}"#,
            r#"{"version":1,"messages":[{"role":"","content":"x"}]}"#,
            r#"{"version":1,"messages":[{"role":"user"}]}"#,
            r#"{"version":1,"messages":[],"extra":true}"#,
        ] {
            match History::from_json(bad) {
                Err(Error::InvalidArgument(msg)) => assert!(!msg.is_empty()),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
