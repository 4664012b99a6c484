//! Errors from compiling or rendering a chat template.

use std::error::Error as _;
use std::fmt;

use crate::gguf::GgufError;

/// Why a chat template could not be compiled or rendered.
///
/// The messages do not start with "chat template" so that the crate error
/// (`Error::Template`, "chat template: ...") reads naturally around them.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template source does not parse.
    #[error("syntax error{}: {message}", AtLine(*line))]
    Syntax { message: String, line: Option<usize> },

    /// The template called `raise_exception(message)`, e.g. because the conversation's
    /// roles do not alternate the way the model expects.
    #[error("the template rejected the conversation{}: {message}", AtLine(*line))]
    Raised { message: String, line: Option<usize> },

    /// Rendering failed: a type error, an unknown filter, attribute access on an undefined
    /// value, and the like.
    #[error("render error{}: {message}", AtLine(*line))]
    Render { message: String, line: Option<usize> },

    /// The GGUF metadata holds `tokenizer.chat_template` with the wrong type.
    #[error(transparent)]
    Metadata(#[from] GgufError),
}

impl TemplateError {
    /// The template line the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. } | Self::Raised { line, .. } | Self::Render { line, .. } => {
                *line
            }
            Self::Metadata(_) => None,
        }
    }

    /// Classifies a minijinja error. An exception raised by the template is recognised by
    /// the [`RaisedByTemplate`] marker that `raise_exception` attaches as the error source.
    pub(crate) fn from_minijinja(err: &minijinja::Error) -> Self {
        let line = err.line();
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(raised) = cause.downcast_ref::<RaisedByTemplate>() {
                return Self::Raised { message: raised.0.clone(), line };
            }
            source = cause.source();
        }
        match err.kind() {
            minijinja::ErrorKind::SyntaxError => {
                let message = err.detail().map_or_else(|| describe(err), str::to_string);
                Self::Syntax { message, line }
            }
            minijinja::ErrorKind::OutOfFuel => Self::Render {
                message: format!(
                    "the template ran more than {} instructions and was stopped \
                     (an endless or very long loop)",
                    super::template::TEMPLATE_FUEL
                ),
                line,
            },
            _ => Self::Render { message: describe(err), line },
        }
    }
}

/// The marker attached to the error that `raise_exception` returns.
#[derive(Debug)]
pub(crate) struct RaisedByTemplate(pub(crate) String);

impl fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

/// Kind and detail of a minijinja error, followed by the messages of its causes (errors
/// returned by our filters and functions), without minijinja's "(in template:line)" suffix.
fn describe(err: &minijinja::Error) -> String {
    let mut message = describe_one(err);
    let mut source = err.source();
    while let Some(cause) = source {
        let text = match cause.downcast_ref::<minijinja::Error>() {
            Some(inner) => describe_one(inner),
            None => cause.to_string(),
        };
        message.push_str(": ");
        message.push_str(&text);
        source = cause.source();
    }
    message
}

fn describe_one(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

struct AtLine(Option<usize>);

impl fmt::Display for AtLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " at line {line}"),
            None => Ok(()),
        }
    }
}
