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
//! **Visibility:** a local write becomes visible only once it is durable (as the mode says). An
//! entry that arrived through a pipe ([`Origin::Pipe`]) is applied to the memtable right after its
//! record is written and *before* the fsync, so the fsync is not part of replication lag; its
//! sender keeps it until the acknowledgement, which still waits for the fsync, so a crash in
//! between only means it is sent again.
//!
//! A **failed fsync** is not retried as such (the kernel may have dropped the unsynced pages and
//! marked them clean, so a second fsync could report success without them): the segment is cut back
//! to its length at the last good fsync, the records written since — kept in memory until synced —
//! are written again and synced, and the log goes on; nothing acknowledged depended on them yet.
//! If that fails too, or a write fails, the log is **poisoned**: what reached the disk is unknown,
//! so every later write fails with [`Error::Poisoned`] until the process restarts and recovers.
//! A **full disk** is the exception: a write that finds it full is cut back off the segment, its
//! group is refused with [`Error::DiskFull`] (nothing of it kept, its LSNs handed out again), and
//! the log goes on; flushes and merges that fail on it leave no partial files, writers held back by
//! unflushed memtables are refused instead of waiting, and everything resumes once space is freed.
//!
//! **Memtables are filled in LSN order** (a group commit gives the entries from pipes, applied
//! before its fsync, lower LSNs than the local ones applied after it), so a flush may record the
//! flushed memtable's largest LSN as the flushed position: no entry at or below it is only in
//! memory. Recovery replays the log from just past that position.
//!
//! # Flush
//!
//! When the memtable passes `memtable_bytes` the log writer freezes it (new writes go to a fresh one;
//! scans read both) and wakes the flusher thread, which also freezes the memtable on
//! [`Storage::flush`] or when it passes `memtable_age`. The flusher syncs the log, writes one
//! Parquet file per 7-day time partition (see [`datafile`] for the columns), and commits them with
//! the new flushed LSN and the memtable's tombstones in the manifest (see `manifest.rs`, replaced
//! atomically).
//!
//! **Back-pressure:** while more than `max_frozen_memtables` memtables wait for their flush,
//! [`Storage::write`] waits (asynchronously) for the flusher, so a slow disk slows ingest instead
//! of growing memory without bound. Entries arriving through a pipe wait only past two more: when
//! the flush limits ingest, local writers are held back first and replication keeps flowing, so the
//! lag between two instances stays bounded (memory still is: by `max_frozen_memtables` + 2).
//!
//! # Compaction
//!
//! After each flush, the **compactor thread** merges every time partition that has
//! `compaction_files` small data files into one: per (series, time) the highest version wins and points hidden by a flushed tombstone
//! are dropped; the tombstones themselves stay (an older pipe write may still arrive). The merged
//! file carries the highest LSN of its inputs. The manifest switch is the single atomic step, so a
//! crash leaves either the old files or the merged one visible; replaced files are deleted when the
//! last scan holding them finishes (and orphans by the next open).
//!
//! # Scans
//!
//! A scan costs O(limit + log n) per source, not O(points in the range): memtables binary-search
//! their (sorted, or sorted-once-and-cached) points, data files narrow the rows with a sparse time
//! index kept in the manifest (every 4096th row of each series) and read windows of about `limit`
//! rows from the scan's starting end. Each source skips points any tombstone hides and stops after
//! `limit` distinct timestamps; the merge then resolves versions and takes `limit` again.
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
//! # Modules
//!
//! - `storage`: the [`Storage`] handle, one module per thread (recovery, log writer, flusher,
//!   compactor) and the test hooks; `options`: its tuning;
//! - [`wal`]: log segments, records and retention; `codec`: an entry's encoding; [`transfer`]: entries
//!   as bytes for a pipe; `types`: positions, versions, origins, operations; `hlc`: the clock;
//! - `memtable`: the write buffer; [`datafile`]: Parquet data files (`prefetch`: the pages a read
//!   needs, read ahead one call per column; `decode`: columns decoded straight into a run's
//!   vectors); `manifest`: what is flushed;
//!   `run`: one series' points and the version merge; [`stats`]: per-series summaries;
//! - `error`: the crate's error type.
//!
//! # Not done (yet)
//!
//! - Tombstones are kept forever, and scans check every tombstone of a series per point.
//! - Compaction has one tier: it merges the small files of a partition (under 4 M rows) in memory,
//!   and never merges its own outputs again. It runs beside the flusher (holding the manifest lock
//!   only to pick its inputs and to switch), so writers held back by back-pressure never wait for a
//!   merge — but on a machine with few cores a merge still competes with ingest for CPU. A merge
//!   takes at most `compaction_files` inputs (its memory is bounded); when a partition has more than
//!   4 × `compaction_files` small files waiting, the flusher waits for the compactor, and
//!   back-pressure then slows ingest to what compaction sustains.
//! - A limited scan that skips many points hidden by tombstones in a data file reads them first
//!   (windows double until `limit` visible points are found); compaction removes such points.

pub mod datafile;
pub mod transfer;
pub mod wal;

mod codec;
mod decode;
mod error;
mod hlc;
mod manifest;
mod memtable;
mod options;
mod prefetch;
mod run;
pub mod stats;
mod storage;
mod types;

pub use codec::DecodeError;
pub use datafile::DataFileInfo;
pub use error::{Error, Result};
pub use options::{StorageOptions, SyncMode};
pub use run::SeriesChunk;
pub use stats::{SeriesStats, StatValue};
#[cfg(feature = "test-hooks")]
pub use storage::LogWriterPause;
pub use storage::SeriesPiece;
pub use storage::{Retention, Storage, StorageMetrics, StorageStats};
pub use types::{DeleteOp, InsertOp, LogEntry, LogHeader, Lsn, Op, OpKind, Origin, Version};
pub use wal::LogRead;
