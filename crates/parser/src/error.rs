//! The one error type of the parser: callers (the server, the CLI) show it to a person, so it carries the
//! exact position of the offending token and says what was expected and what was found.

/// Why a statement was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The text is not valid in the Duet dialect (including lexical errors such as an unterminated quote).
    Syntax,
    /// The statement is valid IoTDB but Duet does not implement it yet; clients get a distinct status for it.
    Unsupported,
}

/// A parse failure at a 1-based `line`/`column` of the input.
///
/// The position is that of the offending token; when the input ended too early it is the position just past
/// the last token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column}: {message}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl ParseError {
    pub(crate) fn syntax(line: u64, column: u64, message: impl Into<String>) -> Self {
        Self {
            kind: ParseErrorKind::Syntax,
            line,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(line: u64, column: u64, message: impl Into<String>) -> Self {
        Self {
            kind: ParseErrorKind::Unsupported,
            line,
            column,
            message: message.into(),
        }
    }
}
