//! Duet's storage: the change log (WAL), memtables, immutable Parquet data files, recovery, scans,
//! and log retention that respects pipe cursors.
//!
//! # Model
//!
//! Every write is one **log entry** ([`LogEntry`]) with an [`Lsn`] (1, 2, 3, ... with no gaps), an
//! [`Origin`] (local client or a pipe from instance N) and a [`Version`] (hybrid logical clock +
//! instance id). All points and tombstones of an entry carry its version, and everywhere — memtable,
//! flush, scan — the **highest version wins** per (series, timestamp); a tombstone hides the points of
//! its range with a *lower* version. Re-applying an entry with its version changes nothing, which is
//! what makes at-least-once pipe delivery exactly-once in effect.
//!
//! # Write path
//!
//! [`Storage::write`] validates and encodes the operations on the caller's task, then queues them to
//! the single **log-writer thread**. That thread drains every queued write (group commit), assigns
//! LSNs and versions, appends all records with one `write`, fsyncs once ([`SyncMode::PerCommit`]) or
//! at most every interval ([`SyncMode::Periodic`]), applies the entries to the active memtable,
//! publishes the new head to [`Storage::subscribe`] receivers and answers every caller. A write is
//! acknowledged only after it is in the log and in the memtable.
//!
//! If a write or fsync of the log fails, the log is **poisoned**: what reached the disk is unknown,
//! so every later write fails with [`Error::Poisoned`] until the process restarts and recovers.
//!
//! # Flush
//!
//! When the memtable passes `memtable_bytes` or `memtable_age` (or on [`Storage::flush`]), the flusher
//! thread freezes it (new writes go to a fresh one; scans read both), syncs the log, writes one Parquet
//! file per 7-day time partition (see [`datafile`] for the columns), and commits them with the new
//! flushed LSN and the memtable's tombstones in the manifest (see `manifest.rs`, replaced atomically).
//!
//! # Recovery
//!
//! [`Storage::open`] loads the manifest, removes data files no manifest names (an unfinished flush),
//! checks every log segment (see [`wal`] for the format and the torn-tail rule) and replays the entries
//! above the flushed LSN into memtables. The clock resumes above every version in the manifest and log.
//!
//! # Retention
//!
//! **Architecture invariant:** the log is released only below `min(flushed LSN, every cursor's
//! acknowledged LSN)`, except that segments kept only for lagging cursors are released anyway once
//! they exceed `log_retention_cap_bytes`; a reader asking for them gets [`LogRead::Truncated`] and must
//! replay from the data files. Cursors live in memory; the pipe runtime persists its progress and
//! registers its cursors right after `open`.
//!
//! # Not done (yet)
//!
//! - Compaction: data files are never merged; a scan reads every file whose series time range
//!   overlaps. Tombstones are kept forever.
//! - Back-pressure: if flushes fall behind ingest, frozen memtables accumulate in memory.
//! - A scan materialises the whole range before applying `limit`.

pub mod datafile;
pub mod transfer;
pub mod wal;

mod codec;
mod error;
mod hlc;
mod manifest;
mod memtable;
mod options;
mod run;
mod storage;
mod types;

pub use datafile::DataFileInfo;
pub use error::{Error, Result};
pub use options::{StorageOptions, SyncMode};
pub use run::SeriesChunk;
pub use storage::{Storage, StorageStats};
pub use types::{DeleteOp, InsertOp, LogEntry, Lsn, Op, Origin, Version};
pub use wal::LogRead;
