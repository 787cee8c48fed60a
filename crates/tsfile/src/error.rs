//! The one error type of the crate: what a caller can act on (I/O, a corrupt file, a feature this
//! reader does not implement), with the byte offset where a corrupt file stopped making sense.

use std::fmt;

/// Everything that can go wrong reading a TsFile or a mods file.
#[derive(Debug, thiserror::Error)]
pub enum TsFileError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes do not follow the format: truncated, a length beyond the data, an unknown marker.
    /// `offset` is the file offset of the structure being read (for page contents, the page's
    /// offset), `what` names the structure and the problem.
    #[error("corrupt TsFile at offset {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    /// A valid file that uses something this reader does not implement (an encoding, a compressor,
    /// encryption).
    #[error("unsupported TsFile feature: {0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, TsFileError>;

pub(crate) fn corrupt(offset: u64, what: impl fmt::Display) -> TsFileError {
    TsFileError::Corrupt {
        offset,
        what: what.to_string(),
    }
}
