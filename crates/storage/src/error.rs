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

    /// The disk (or the user's quota) is full. Nothing of the refused write was kept; the log is
    /// not poisoned, so writes are accepted again as soon as space is freed.
    #[error("disk full: {0}; nothing of this write was kept — free space and retry")]
    DiskFull(String),

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
        // The Parquet writer wraps the file's I/O errors; a full disk must stay recognisable.
        if let parquet::errors::ParquetError::External(inner) = &err {
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                if is_disk_full(io) {
                    return Error::DiskFull(format!("writing a data file failed: {io}"));
                }
            }
        }
        Error::Parquet(err.to_string())
    }
}

impl Error {
    /// True when the failure is a full disk (or quota), whichever layer reported it.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::DiskFull(_) => true,
            Error::Io(e) => is_disk_full(e),
            _ => false,
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(err: arrow_schema::ArrowError) -> Self {
        Error::Parquet(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True when an I/O error says the disk (or a quota) is full: ENOSPC or EDQUOT.
pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
