//! The storage crate's error type: every failure a caller of [`crate::Storage`] can see.

use std::path::PathBuf;

use duet_proto::types::DataType;

/// A storage failure. Corruption names the file and byte offset so an operator can find it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// Data on disk failed a check that a torn write cannot explain (a bad checksum followed by valid
    /// data, a bad record in a segment that is not the last one, a gap in log sequence numbers, ...).
    #[error("corrupt data in {file}: at offset {offset}: {reason}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A write or sync of the log failed earlier. What reached the disk is unknown (the "fsyncgate"
    /// lesson), so the log refuses every later write instead of pretending they are durable.
    #[error(
        "the change log is poisoned after a failed write or sync; no writes are accepted: {0}"
    )]
    Poisoned(String),

    #[error("parquet: {0}")]
    Parquet(String),

    /// The series already holds data of another type in the active memtable.
    #[error("type mismatch for {series}: stored {stored}, given {given}")]
    TypeMismatch {
        series: String,
        stored: DataType,
        given: DataType,
    },

    /// A write whose shape is inconsistent (column count, column lengths, null mask lengths).
    #[error("invalid write: {0}")]
    InvalidWrite(String),

    #[error("manifest {file}: {reason}")]
    Manifest { file: PathBuf, reason: String },

    /// `advance_cursor` for a name that was never registered (or was dropped).
    #[error("no log cursor named {0:?}")]
    UnknownCursor(String),

    /// Another open storage (in this or another process) holds the directory's lock.
    #[error("storage directory {0} is in use by another instance")]
    Locked(PathBuf),

    /// The storage was closed; no more writes or flushes are accepted.
    #[error("storage is closed")]
    Closed,
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(err: parquet::errors::ParquetError) -> Self {
        Error::Parquet(err.to_string())
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(err: arrow_schema::ArrowError) -> Self {
        Error::Parquet(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
