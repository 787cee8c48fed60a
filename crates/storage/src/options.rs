//! How a storage instance is tuned: durability mode, flush thresholds, log segment size and retention,
//! compaction and back-pressure.

use std::time::Duration;

/// When the change log is fsynced, and so what an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync after every group commit (default): an acknowledged write survives power loss.
    PerCommit,
    /// fsync at most every `interval`: an acknowledged write survives a process crash, but the
    /// last `interval` of writes may be lost on power loss or a kernel crash.
    Periodic(Duration),
}

/// Settings of one storage instance; [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// This instance's id: the tie-break in versions of writes accepted here.
    pub instance: u64,
    /// Default [`SyncMode::PerCommit`].
    pub sync: SyncMode,
    /// Flush the memtable once it holds about this many bytes. Default 64 MiB.
    pub memtable_bytes: usize,
    /// Flush a non-empty memtable older than this. Default 10 minutes.
    pub memtable_age: Duration,
    /// Start a new log segment once the current one reaches this size. Default 64 MiB.
    pub segment_bytes: u64,
    /// The most log kept below the flushed position for pipes that lag behind; beyond it the oldest
    /// segments are released anyway and those pipes must replay from data files. Default 8 GiB (disk:
    /// over a minute of backlog at 10 M points/s; a replay from data files is far slower).
    pub log_retention_cap_bytes: u64,
    /// Merge a time partition's data files into one once it has this many (values below 2 count
    /// as 2: merging a single file would only rewrite it). Default 4.
    pub compaction_files: usize,
    /// Writes wait (asynchronously) while more than this many memtables are frozen and waiting
    /// for their flush, so a slow disk slows ingest instead of exhausting memory; entries arriving
    /// through a pipe wait only past two more, so replication is not held back with local writes.
    /// Default 4.
    pub max_frozen_memtables: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            instance: 0,
            sync: SyncMode::PerCommit,
            memtable_bytes: 64 << 20,
            memtable_age: Duration::from_secs(600),
            segment_bytes: 64 << 20,
            log_retention_cap_bytes: 8 << 30,
            compaction_files: 4,
            max_frozen_memtables: 4,
        }
    }
}
