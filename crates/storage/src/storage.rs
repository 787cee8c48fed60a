//! The storage handle: open and recovery, the group-commit log writer, flushes, scans, log reading and
//! cursors, tied together over shared state.
//!
//! Two background threads do the work that must be serialized:
//! - the **log writer** owns the open segment and the clock; it takes every queued write, assigns
//!   LSNs and versions, writes the batch with one `write` and one fsync, applies it to the memtable,
//!   publishes the new head, and answers each caller;
//! - the **flusher** writes frozen memtables to Parquet (the log writer freezes the memtable once it
//!   is large; the flusher freezes it when asked or when it is old); new writes go to a fresh
//!   memtable meanwhile, and scans see both. After flushing it **compacts**: a time partition with
//!   `compaction_files` data files is merged into one (see `Shared::compact_partition`).
//!
//! Writes wait (asynchronously) while more than `max_frozen_memtables` memtables wait for their
//! flush, so ingest slows to the disk's pace instead of growing memory without bound.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duet_proto::types::{ColumnValues, DataType};
use tokio::sync::{oneshot, watch};

use crate::codec;
use crate::datafile::{self, DataFile, DataFileInfo, FileMeta};
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::manifest::{Manifest, TombstoneRecord};
use crate::memtable::Memtable;
use crate::options::{StorageOptions, SyncMode};
use crate::run::{self, Run, SeriesChunk};
use crate::stats::SeriesStats;
use crate::types::{LogHeader, Lsn, Op, Origin, RangeTombstone, Version};
use crate::wal::{self, LogRead, SegmentWriter, WalIndex};

/// A group commit stops collecting queued writes at this many payload bytes.
const MAX_BATCH_BYTES: usize = 32 << 20;
/// For a series, the time before which its points have expired (see [`Storage::set_retention`]).
pub type Retention = Box<dyn Fn(&str) -> Option<i64> + Send + Sync>;

/// In periodic sync mode, the log is synced early once this many bytes wait for a sync (they are
/// kept in memory until then, to be written again if the sync fails).
const MAX_UNSYNCED_BYTES: usize = 64 << 20;
/// How often the flusher checks the memtable's age when nothing else wakes it.
const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const MIN_AGE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// One piece of a series' time range as [`Storage::summarize`] hands it to an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesPiece {
    /// The visible points in `[start, end]` are exactly those `stats` summarises.
    Summary {
        start: i64,
        end: i64,
        stats: SeriesStats,
    },
    /// The points in `[start, end]` must be scanned.
    Scan { start: i64, end: i64 },
}

/// A handle to one storage directory; cheap to clone, shared by every session and pipe.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.inner.shared.dir)
            .finish_non_exhaustive()
    }
}

/// Counters for `SHOW`-style introspection and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes held by the active and frozen memtables.
    pub memtable_bytes: usize,
    pub memtable_points: usize,
    /// Memtables frozen and waiting for their flush.
    pub frozen_memtables: usize,
    pub data_files: usize,
    pub data_rows: u64,
    pub wal_bytes: u64,
    pub wal_segments: usize,
    pub head: Lsn,
    pub flushed_lsn: Lsn,
    /// Small data files waiting for a merge, over all partitions (compaction debt).
    pub compaction_pending_files: usize,
}

/// What the storage counts as it works, for `/metrics` (read without locks; see `duet-metrics`).
#[derive(Debug)]
pub struct StorageMetrics {
    /// Points (non-null values) logged by local writes and by entries that arrived through a pipe.
    pub points_written_local: duet_metrics::Counter,
    pub points_written_pipe: duet_metrics::Counter,
    /// Entries logged by local writes and by pipes.
    pub entries_written_local: duet_metrics::Counter,
    pub entries_written_pipe: duet_metrics::Counter,
    /// One observation per fsync of the change log.
    pub wal_fsync_seconds: duet_metrics::Histogram,
    /// Entries per group commit.
    pub wal_group_entries: duet_metrics::Histogram,
    /// One observation per memtable flushed, and per partition merged.
    pub flush_seconds: duet_metrics::Histogram,
    pub compaction_seconds: duet_metrics::Histogram,
    /// Time writers spent held back by memtables waiting for their flush (summed over writers).
    pub backpressure_seconds: duet_metrics::SecondsCounter,
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics {
            points_written_local: Default::default(),
            points_written_pipe: Default::default(),
            entries_written_local: Default::default(),
            entries_written_pipe: Default::default(),
            wal_fsync_seconds: duet_metrics::Histogram::latency(),
            wal_group_entries: duet_metrics::Histogram::new(duet_metrics::COUNT_BOUNDS),
            flush_seconds: duet_metrics::Histogram::latency(),
            compaction_seconds: duet_metrics::Histogram::latency(),
            backpressure_seconds: Default::default(),
        }
    }
}

/// Points in an entry's inserts: the values that are not null.
fn points_in(ops: &[Op]) -> u64 {
    ops.iter()
        .map(|op| match op {
            Op::Insert(insert) => insert
                .columns
                .iter()
                .map(|c| match &c.nulls {
                    None => c.len() as u64,
                    Some(nulls) => nulls.iter().filter(|null| !**null).count() as u64,
                })
                .sum(),
            Op::Delete(_) | Op::Meta(_) => 0,
        })
        .sum()
}

/// Owned by the handles; dropping the last one stops the background threads.
struct Inner {
    shared: Arc<Shared>,
    /// `dir/LOCK`, exclusively locked while this storage is open, so two instances never write
    /// one log; the OS releases it when the file is closed, even after a crash.
    _lock: fs::File,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channels ends the loops (and `closed` any wait inside them); the writer syncs
        // the log on its way out.
        self.shared.closed.store(true, Ordering::Release);
        lock(&self.shared.writer_tx).take();
        lock(&self.shared.flusher_tx).take();
        lock(&self.shared.compactor_tx).take();
        for thread in lock(&self.threads).drain(..) {
            if thread.join().is_err() {
                tracing::error!("a storage background thread panicked");
            }
        }
    }
}

/// Holds the log writer paused (test hook, [`Storage::pause_log_writer`]); dropping it releases it.
#[doc(hidden)]
pub struct LogWriterPause {
    _release: std::sync::mpsc::Sender<()>,
}

/// Small files per partition, in multiples of `compaction_files`, beyond which flushes wait for the
/// compactor (see [`Shared::wait_for_compaction_debt`]).
const COMPACTION_DEBT_FACTOR: usize = 4;

/// Frozen memtables beyond `max_frozen_memtables` that entries arriving through a pipe may still add
/// before they wait too (see [`Storage::write`]).
const REPLICATION_HEADROOM: usize = 2;

/// State shared by the handles and the background threads.
struct Shared {
    dir: PathBuf,
    options: StorageOptions,
    /// Memtables, data files and flushed tombstones: what a scan reads, swapped consistently.
    tree: RwLock<Tree>,
    /// LSN → file position of the log; the writer appends, readers and retention read and trim.
    wal_index: Mutex<WalIndex>,
    /// The last LSN applied to the memtable; every append notifies subscribers.
    head: watch::Sender<Lsn>,
    /// Pipe name → last LSN the pipe's sink acknowledged; pins the log above it.
    cursors: Mutex<BTreeMap<String, Lsn>>,
    /// Set once a write or sync of the log failed; every later write is refused with it.
    poisoned: Mutex<Option<String>>,
    /// The largest HLC value the log writer issued or observed, for [`Storage::fresh_hlc`].
    last_hlc: std::sync::atomic::AtomicU64,
    closed: AtomicBool,
    /// Test hook: how many of the next log syncs fail as a failing disk would.
    failing_syncs: AtomicU32,
    /// Test hook: the next append to the log writes half its batch, then finds the disk full.
    fail_next_append: AtomicBool,
    /// Set while the disk is full (logged once per episode).
    disk_full: AtomicBool,
    /// Set while flushes fail on a full disk: writers held back by frozen memtables are refused
    /// with `DiskFull` instead of waiting for a flush that cannot happen until space is freed.
    flush_disk_full: AtomicBool,
    /// Set while merges fail on a full disk: flushes stop waiting for compaction debt.
    compaction_disk_full: AtomicBool,
    /// Held for the whole of a flush (so flushes never interleave); holds the current manifest.
    flush_state: Mutex<Manifest>,
    /// Set while a size-triggered flush request is queued, so the writer sends only one.
    flush_requested: AtomicBool,
    /// How many memtables are frozen and waiting for their flush; writes wait on it (back-pressure).
    frozen_count: watch::Sender<usize>,
    /// When writes started being held back by back-pressure (for the log line that ends the episode).
    held_back_since: Mutex<Option<Instant>>,
    /// Test hook: while set, the flusher flushes nothing (a disk that cannot keep up).
    flushes_paused: AtomicBool,
    /// Test hook: while set, a compaction waits after picking its inputs (a merge that takes long).
    compactions_paused: AtomicBool,
    /// Test hook: set while a merge that has picked its inputs waits for `compactions_paused`.
    merge_held: AtomicBool,
    /// Per series, the time before which its points have expired (a TTL); merges drop them.
    retention: RwLock<Option<Retention>>,
    /// Test hook: the next compaction "crashes" at this point (see [`CrashPoint`]).
    compaction_crash: Mutex<Option<CrashPoint>>,
    /// Set by an injected compaction crash: this instance compacts no more, as a dead process would not.
    compaction_halted: AtomicBool,
    writer_tx: Mutex<Option<Sender<WriterMsg>>>,
    flusher_tx: Mutex<Option<Sender<FlusherMsg>>>,
    compactor_tx: Mutex<Option<Sender<CompactorMsg>>>,
    /// Set while a compaction request is queued, so the flusher sends only one.
    compaction_requested: AtomicBool,
    /// Writes sent to the log writer and not yet taken by it (a test hook reads it to know that
    /// writes will share one group commit).
    queued_writes: AtomicUsize,
    metrics: StorageMetrics,
}

/// Everything a scan needs, behind one lock so a flush moves data from memtable to file atomically.
#[derive(Default)]
struct Tree {
    active: Memtable,
    /// Oldest first; each is flushed in order.
    frozen: Vec<Arc<Memtable>>,
    files: Vec<Arc<DataFile>>,
    /// Tombstones that are in the manifest.
    tombstones: HashMap<String, Vec<RangeTombstone>>,
    flushed_lsn: Lsn,
    /// The highest LSN applied to a memtable. **Entries are applied in LSN order**, so a memtable
    /// frozen at any moment holds every entry up to its `max_lsn` that no older memtable holds,
    /// which is what lets a flush move the flushed position to it.
    applied_lsn: Lsn,
}

impl Tree {
    /// Moves the active memtable to the frozen list (if it holds anything).
    fn freeze(&mut self) {
        if !self.active.is_empty() {
            let active = std::mem::take(&mut self.active);
            self.frozen.push(Arc::new(active));
        }
    }

    /// Applies an entry to the active memtable; on a type conflict the memtable is frozen and the
    /// entry goes to a fresh one.
    fn apply(&mut self, lsn: Lsn, version: Version, ops: &[Op]) -> Result<()> {
        if lsn <= self.applied_lsn {
            // Cannot happen (the log writer applies in LSN order); the flush's covered position
            // (see `Shared::covered_lsn`) still keeps recovery from skipping the entry.
            tracing::error!(
                lsn,
                applied = self.applied_lsn,
                "an entry was applied out of LSN order"
            );
        }
        self.applied_lsn = self.applied_lsn.max(lsn);
        if self.active.apply(lsn, version, ops).is_err() {
            self.freeze();
            self.active.apply(lsn, version, ops)?;
        }
        Ok(())
    }
}

enum WriterMsg {
    Write(WriteRequest),
    /// Make everything written so far durable (used before a flush moves the flushed position).
    Sync(oneshot::Sender<Result<()>>),
    /// Sync and stop.
    Close(oneshot::Sender<Result<()>>),
    /// Test hook: the writer takes nothing more until the sender is dropped (see
    /// [`Storage::pause_log_writer`]).
    Pause(std::sync::mpsc::Receiver<()>),
}

struct WriteRequest {
    origin: Origin,
    version: Option<Version>,
    ops: Vec<Op>,
    /// `ops` already encoded by the caller, so the writer thread only adds the header.
    encoded_ops: Vec<u8>,
    reply: oneshot::Sender<Result<(Lsn, Version)>>,
}

/// Where an injected compaction crash happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    /// The merged file is written and synced; the manifest still names the inputs.
    BeforeManifest,
    /// The manifest names the merged file; the inputs are still on disk and in memory.
    AfterManifest,
}

enum FlusherMsg {
    Flush(oneshot::Sender<Result<()>>),
    /// The memtable passed its size threshold.
    Trigger,
}

/// Work for the compactor thread, which merges on its own so that flushes (and the writers that
/// back-pressure holds behind them) never wait for a merge.
enum CompactorMsg {
    /// A flush added files: merge the partitions that are due.
    Due,
    /// An explicit flush finished with this result: merge what is due, then answer its caller, so a
    /// `FLUSH` returns with the partitions it filled merged.
    AfterFlush(Result<()>, oneshot::Sender<Result<()>>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug elsewhere; the data behind it is still consistent
    // enough to keep serving (every critical section here leaves it valid at each step).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(rw: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rw.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(rw: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rw.write().unwrap_or_else(|e| e.into_inner())
}

impl Storage {
    /// Opens (or creates) the storage in `dir` and recovers it: loads the manifest, drops data files
    /// a crashed flush left behind, checks the log, cuts a torn tail, and replays every entry above
    /// the flushed position into memtables. Any other damage fails with [`Error::Corrupt`].
    pub fn open(dir: &Path, options: StorageOptions) -> Result<Storage> {
        let wal_dir = dir.join("wal");
        let data_dir = dir.join("data");
        fs::create_dir_all(&wal_dir)?;
        fs::create_dir_all(&data_dir)?;
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let manifest = Manifest::load(dir)?;
        remove_orphan_files(dir, &manifest)?;

        let mut hlc = Hlc::default();
        hlc.observe(manifest.max_hlc);
        let mut tree = Tree {
            flushed_lsn: manifest.flushed_lsn,
            ..Tree::default()
        };
        for meta in &manifest.files {
            tree.files.push(Arc::new(DataFile::new(meta.clone(), dir)));
        }
        for tombstone in &manifest.tombstones {
            tree.tombstones
                .entry(tombstone.series.clone())
                .or_default()
                .push(tombstone.range());
        }

        let recovered = wal::recover(&wal_dir, manifest.flushed_lsn, |entry| {
            hlc.observe(entry.version.hlc);
            tree.apply(entry.lsn, entry.version, &entry.ops)
        })?;
        let mut index = recovered.index;
        let head = recovered.last_lsn.max(manifest.flushed_lsn);
        let segment = match index.segments.last() {
            Some(last) if recovered.last_lsn < manifest.flushed_lsn => {
                return Err(Error::Corrupt {
                    file: last.path.clone(),
                    offset: last.bytes,
                    reason: format!(
                        "log ends at lsn {} but lsn {} was flushed",
                        recovered.last_lsn, manifest.flushed_lsn
                    ),
                });
            }
            Some(last) => SegmentWriter::reopen(&last.path, last.bytes)?,
            None => {
                let (writer, meta) = SegmentWriter::create(&wal_dir, head + 1)?;
                index.segments.push(meta);
                writer
            }
        };
        tracing::info!(
            dir = %dir.display(),
            head,
            flushed_lsn = manifest.flushed_lsn,
            files = manifest.files.len(),
            memtable_points = tree.active.points,
            "storage recovered"
        );
        if tree.active.bytes >= options.memtable_bytes {
            tree.freeze();
        }
        let needs_flush = !tree.frozen.is_empty();
        let (frozen_tx, _) = watch::channel(tree.frozen.len());

        let (writer_tx, writer_rx) = mpsc::channel();
        let (flusher_tx, flusher_rx) = mpsc::channel();
        let (compactor_tx, compactor_rx) = mpsc::channel();
        let (head_tx, _) = watch::channel(head);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            tree: RwLock::new(tree),
            wal_index: Mutex::new(index),
            head: head_tx,
            cursors: Mutex::new(BTreeMap::new()),
            poisoned: Mutex::new(None),
            last_hlc: std::sync::atomic::AtomicU64::new(hlc.last()),
            closed: AtomicBool::new(false),
            failing_syncs: AtomicU32::new(0),
            flush_state: Mutex::new(manifest),
            flush_requested: AtomicBool::new(false),
            frozen_count: frozen_tx,
            held_back_since: Mutex::new(None),
            flushes_paused: AtomicBool::new(false),
            compactions_paused: AtomicBool::new(false),
            merge_held: AtomicBool::new(false),
            retention: RwLock::new(None),
            compaction_crash: Mutex::new(None),
            compaction_halted: AtomicBool::new(false),
            writer_tx: Mutex::new(Some(writer_tx)),
            flusher_tx: Mutex::new(Some(flusher_tx)),
            compactor_tx: Mutex::new(Some(compactor_tx)),
            metrics: StorageMetrics::default(),
            compaction_requested: AtomicBool::new(false),
            fail_next_append: AtomicBool::new(false),
            disk_full: AtomicBool::new(false),
            flush_disk_full: AtomicBool::new(false),
            compaction_disk_full: AtomicBool::new(false),
            queued_writes: AtomicUsize::new(0),
        });
        let segment_bytes = segment.bytes;
        let writer = LogWriter {
            shared: shared.clone(),
            segment,
            next_lsn: head + 1,
            hlc,
            synced_bytes: segment_bytes,
            unsynced: Vec::new(),
            last_sync: Instant::now(),
            buf: Vec::new(),
            rotation_failing: false,
        };
        let writer_thread = std::thread::Builder::new()
            .name("duet-log-writer".into())
            .spawn(move || writer.run(writer_rx))?;
        let flusher_shared = shared.clone();
        let flusher_thread = std::thread::Builder::new()
            .name("duet-flusher".into())
            .spawn(move || run_flusher(&flusher_shared, flusher_rx))?;
        let compactor_shared = shared.clone();
        let compactor_thread = std::thread::Builder::new()
            .name("duet-compactor".into())
            .spawn(move || run_compactor(&compactor_shared, compactor_rx))?;
        let storage = Storage {
            inner: Arc::new(Inner {
                shared,
                _lock: lock_file,
                threads: Mutex::new(vec![writer_thread, flusher_thread, compactor_thread]),
            }),
        };
        if needs_flush {
            storage.inner.shared.request_flush();
        }
        Ok(storage)
    }

    /// Appends one log entry with `ops`, durable as [`SyncMode`] says, applies it to the memtable,
    /// and returns its LSN and version.
    ///
    /// Local writes pass `version: None` and get a fresh version, greater than every version seen
    /// so far. Writes received through a pipe pass the sender's version, which is kept, and the
    /// clock moves past it; a pipe's write without one (an IoTDB sender's) gets a fresh clock value
    /// with the origin's instance. Concurrent writers share one write and one fsync (group commit).
    ///
    /// While more than `max_frozen_memtables` memtables wait for their flush, the write waits
    /// (without blocking a thread) until the flusher catches up.
    pub async fn write(
        &self,
        origin: Origin,
        version: Option<Version>,
        ops: Vec<Op>,
    ) -> Result<(Lsn, Version)> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(err) = shared.poisoned() {
            return Err(err);
        }
        validate_ops(&ops)?;
        // Replication goes first: a pipe's entries wait only past a higher limit, so when the flush
        // is what limits ingest, local writers are held back before the peer's stream is, and the
        // lag between the instances stays bounded at the cost of local ingest.
        let limit = match origin {
            Origin::Local => shared.options.max_frozen_memtables,
            Origin::Pipe { .. } => shared.options.max_frozen_memtables + REPLICATION_HEADROOM,
        };
        shared.wait_for_flushes(limit).await?;
        let mut encoded_ops = Vec::with_capacity(codec::estimated_len(&ops));
        codec::encode_ops(&ops, &mut encoded_ops);
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest {
            origin,
            version,
            ops,
            encoded_ops,
            reply,
        };
        shared.send_to_writer(WriterMsg::Write(request))?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// The points of `series` in `[start, end]` (inclusive), at most `limit`, ascending or
    /// descending by time. Per timestamp the point with the highest version wins; a tombstone hides
    /// the points with a lower version in its range.
    pub fn scan(
        &self,
        series: &str,
        start: i64,
        end: i64,
        limit: usize,
        descending: bool,
    ) -> Result<SeriesChunk> {
        if start > end || limit == 0 {
            return Ok(SeriesChunk::empty());
        }
        // Every source stops after `limit` distinct timestamps from the scan's starting end. That
        // is exact only if each source first drops what *any* tombstone hides (a source whose
        // first points are all hidden must reach past them), so the tombstones are gathered first.
        // Then a timestamp in the answer is within the first `limit` visible ones of every source
        // that holds it, so its winning version is among the candidates, and every candidate is
        // visible, so the answer is the first `limit` of the merged candidates.
        let overlaps = |t: &&RangeTombstone| t.start <= end && start <= t.end;
        let mut runs: Vec<Run> = Vec::new();
        let mut tombstones: Vec<RangeTombstone> = Vec::new();
        let (frozen, files) = {
            let tree = read(&self.inner.shared.tree);
            tombstones.extend(tree.active.tombstones_for(series).iter().filter(overlaps));
            for memtable in &tree.frozen {
                tombstones.extend(memtable.tombstones_for(series).iter().filter(overlaps));
            }
            if let Some(list) = tree.tombstones.get(series) {
                tombstones.extend(list.iter().filter(overlaps));
            }
            runs.extend(
                tree.active
                    .extract(series, start, end, limit, descending, &tombstones),
            );
            let files: Vec<Arc<DataFile>> = tree
                .files
                .iter()
                .filter(|f| {
                    f.series_range(series)
                        .is_some_and(|r| r.min_time <= end && start <= r.max_time)
                })
                .cloned()
                .collect();
            (tree.frozen.clone(), files)
        };
        for memtable in &frozen {
            runs.extend(memtable.extract(series, start, end, limit, descending, &tombstones));
        }
        // Every timestamp a source returns is in the answer (its winner is visible too), so once a
        // source returned `limit` of them, the answer ends at or before its last one: files that
        // start past that point (ascending; end before it, descending) cannot contribute. Taking
        // files from the scan's starting end, a long scan over many files reads one or two per
        // chunk instead of `limit` points from each.
        let mut files = files;
        let span = |f: &Arc<DataFile>| {
            f.series_range(series)
                .map_or((i64::MAX, i64::MIN), |r| (r.min_time, r.max_time))
        };
        if descending {
            files.sort_by_key(|f| std::cmp::Reverse(span(f).1));
        } else {
            files.sort_by_key(|f| span(f).0);
        }
        let full_bound = |runs: &[Run]| {
            runs.iter()
                .filter(|r| r.len() >= limit)
                .filter_map(|r| r.times.get(limit - 1).copied())
                .reduce(|a, b| if descending { a.max(b) } else { a.min(b) })
        };
        let mut bound = full_bound(&runs);
        for file in &files {
            let (min_time, max_time) = span(file);
            let beyond = match bound {
                Some(b) if descending => max_time < b,
                Some(b) => min_time > b,
                None => false,
            };
            if beyond {
                break;
            }
            if let Some(run) = file.read(series, start, end, limit, descending, &tombstones)? {
                runs.push(run);
                bound = full_bound(&runs);
            }
        }
        let merged = run::resolve_owned(runs);
        Ok(run::into_chunk(merged, limit, descending))
    }

    /// Splits `[start, end]` of `series` into pieces an aggregate can take from a file's summary
    /// and pieces it must scan, in time order, covering the range without overlap. A file's summary
    /// stands for its span only when the span lies inside the range, no other source (memtable or
    /// file) holds points of the series in that span, no deletion touches it, and every source of the
    /// series has one physical type: then the file's points are exactly the visible points of the span.
    pub fn summarize(&self, series: &str, start: i64, end: i64) -> Vec<SeriesPiece> {
        if start > end {
            return Vec::new();
        }
        let tree = read(&self.inner.shared.tree);
        // (first time, last time, physical type, summary) of every source of the series.
        let mut spans: Vec<(i64, i64, DataType, Option<SeriesStats>)> = Vec::new();
        for memtable in std::iter::once(&tree.active).chain(tree.frozen.iter().map(|m| &**m)) {
            if let Some((lo, hi, t)) = memtable.time_bounds(series) {
                spans.push((lo, hi, t.physical(), memtable.summary(series)));
            }
        }
        for file in &tree.files {
            if let Some(r) = file.series_range(series) {
                let Some(t) = DataType::from_code(i32::from(r.data_type)) else {
                    return vec![SeriesPiece::Scan { start, end }];
                };
                // A summary from before moments were recorded cannot answer every function.
                let stats = r.stats.filter(|s| s.moments.is_some());
                spans.push((r.min_time, r.max_time, t.physical(), stats));
            }
        }
        let mut deleted: Vec<(i64, i64)> = Vec::new();
        for memtable in std::iter::once(&tree.active).chain(tree.frozen.iter().map(|m| &**m)) {
            deleted.extend(
                memtable
                    .tombstones_for(series)
                    .iter()
                    .map(|t| (t.start, t.end)),
            );
        }
        if let Some(list) = tree.tombstones.get(series) {
            deleted.extend(list.iter().map(|t| (t.start, t.end)));
        }
        drop(tree);
        let one_type = spans.windows(2).all(|w| w[0].2 == w[1].2);
        let overlaps = |a: (i64, i64), b: (i64, i64)| a.0 <= b.1 && b.0 <= a.1;
        let mut summaries: Vec<(i64, i64, SeriesStats)> = Vec::new();
        if one_type {
            for (i, (lo, hi, _, stats)) in spans.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let alone = spans
                    .iter()
                    .enumerate()
                    .all(|(j, other)| j == i || !overlaps((*lo, *hi), (other.0, other.1)));
                if start <= *lo
                    && *hi <= end
                    && alone
                    && !deleted.iter().any(|d| overlaps((*lo, *hi), *d))
                {
                    summaries.push((*lo, *hi, *stats));
                }
            }
        }
        summaries.sort_by_key(|s| s.0);
        let mut pieces = Vec::with_capacity(2 * summaries.len() + 1);
        let mut next = Some(start);
        for (lo, hi, stats) in summaries {
            if let Some(from) = next {
                if from < lo {
                    pieces.push(SeriesPiece::Scan {
                        start: from,
                        end: lo - 1,
                    });
                }
            }
            pieces.push(SeriesPiece::Summary {
                start: lo,
                end: hi,
                stats,
            });
            next = hi.checked_add(1);
        }
        if let Some(from) = next {
            if from <= end {
                pieces.push(SeriesPiece::Scan { start: from, end });
            }
        }
        pieces
    }

    /// The deletions recorded for `series` as (start, end, version), for pipes that send history: a
    /// peer needs them too, or data it holds would outlive a delete made before the pipe existed.
    pub fn tombstones(&self, series: &str) -> Vec<(i64, i64, Version)> {
        let tree = read(&self.inner.shared.tree);
        let mut out: Vec<(i64, i64, Version)> = Vec::new();
        let mut take = |t: &RangeTombstone| out.push((t.start, t.end, t.version));
        tree.active
            .tombstones_for(series)
            .iter()
            .for_each(&mut take);
        for memtable in &tree.frozen {
            memtable.tombstones_for(series).iter().for_each(&mut take);
        }
        if let Some(list) = tree.tombstones.get(series) {
            list.iter().for_each(&mut take);
        }
        out
    }

    /// The type of the newest stored data of `series` (the engine keeps the real schema).
    pub fn series_data_type(&self, series: &str) -> Option<DataType> {
        let tree = read(&self.inner.shared.tree);
        tree.active
            .data_type(series)
            .or_else(|| tree.frozen.iter().rev().find_map(|m| m.data_type(series)))
            .or_else(|| {
                tree.files.iter().rev().find_map(|f| {
                    f.series_range(series)
                        .and_then(|r| DataType::from_code(i32::from(r.data_type)))
                })
            })
    }

    /// Writes the memtable to Parquet files, records them in the manifest with the new flushed
    /// position, and releases log segments no longer needed.
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (reply, answer) = oneshot::channel();
        let sender = lock(&shared.flusher_tx).clone().ok_or(Error::Closed)?;
        sender
            .send(FlusherMsg::Flush(reply))
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// An HLC value for a change that is versioned before it is written (a peer's versionless schema
    /// change): past the wall clock and past every version this log has issued or taken, as the
    /// log writer's own clock would give.
    pub fn fresh_hlc(&self) -> u64 {
        let issued = self.inner.shared.last_hlc.load(Ordering::Relaxed);
        crate::hlc::wall_clock_hlc().max(issued.saturating_add(1))
    }

    /// This instance's number: the `instance` of the versions it issues.
    pub fn instance(&self) -> u64 {
        self.inner.shared.options.instance
    }

    /// The last appended LSN (0 when the log is empty).
    pub fn head(&self) -> Lsn {
        *self.inner.shared.head.borrow()
    }

    /// A receiver notified with the new head on every append.
    pub fn subscribe(&self) -> watch::Receiver<Lsn> {
        self.inner.shared.head.subscribe()
    }

    /// Up to `max_entries` log entries after `from`, or [`LogRead::Truncated`] if the log no longer
    /// reaches back to `from + 1`.
    pub fn read_log(&self, from: Lsn, max_entries: usize) -> Result<LogRead> {
        let shared = &self.inner.shared;
        WalIndex::read(&shared.wal_index, from, max_entries, self.head())
    }

    /// The headers of up to `max_entries` entries after `from`, without reading their operations
    /// (cheap enough to count a long backlog).
    pub fn read_log_headers(&self, from: Lsn, max_entries: usize) -> Result<LogRead<LogHeader>> {
        let shared = &self.inner.shared;
        WalIndex::read_headers(&shared.wal_index, from, max_entries, self.head())
    }

    /// Pins the log above `acknowledged` for the pipe `name` (replacing any earlier registration).
    /// Cursors live in memory: the pipe runtime persists its progress and registers again right
    /// after [`Storage::open`].
    pub fn register_cursor(&self, name: &str, acknowledged: Lsn) -> Result<()> {
        lock(&self.inner.shared.cursors).insert(name.to_string(), acknowledged);
        Ok(())
    }

    /// Moves the pipe's acknowledged position and releases log segments nobody needs any more.
    pub fn advance_cursor(&self, name: &str, acknowledged: Lsn) -> Result<()> {
        let shared = &self.inner.shared;
        match lock(&shared.cursors).get_mut(name) {
            Some(position) => *position = (*position).max(acknowledged),
            None => return Err(Error::UnknownCursor(name.to_string())),
        }
        shared.release_log()
    }

    pub fn drop_cursor(&self, name: &str) {
        let shared = &self.inner.shared;
        lock(&shared.cursors).remove(name);
        if let Err(e) = shared.release_log() {
            tracing::warn!(error = %e, "releasing log segments after dropping a cursor failed");
        }
    }

    /// The data files, oldest first.
    pub fn data_files(&self) -> Vec<DataFileInfo> {
        read(&self.inner.shared.tree)
            .files
            .iter()
            .map(|f| f.info())
            .collect()
    }

    /// Every entry at or below this LSN is in the data files.
    pub fn flushed_lsn(&self) -> Lsn {
        read(&self.inner.shared.tree).flushed_lsn
    }

    pub fn stats(&self) -> StorageStats {
        let shared = &self.inner.shared;
        let (
            memtable_bytes,
            memtable_points,
            frozen_memtables,
            data_files,
            data_rows,
            flushed_lsn,
            compaction_pending_files,
        ) = {
            let tree = read(&shared.tree);
            (
                tree.active.bytes + tree.frozen.iter().map(|m| m.bytes).sum::<usize>(),
                tree.active.points + tree.frozen.iter().map(|m| m.points).sum::<usize>(),
                tree.frozen.len(),
                tree.files.len(),
                tree.files.iter().map(|f| f.meta.n_rows).sum(),
                tree.flushed_lsn,
                tree.files
                    .iter()
                    .filter(|f| is_compaction_input(f.meta.n_rows))
                    .count(),
            )
        };
        let (wal_bytes, wal_segments) = {
            let index = lock(&shared.wal_index);
            (index.total_bytes(), index.segments.len())
        };
        StorageStats {
            memtable_bytes,
            memtable_points,
            frozen_memtables,
            data_files,
            data_rows,
            wal_bytes,
            wal_segments,
            head: self.head(),
            flushed_lsn,
            compaction_pending_files,
        }
    }

    /// The counters and histograms the storage keeps as it works.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.inner.shared.metrics
    }

    /// Bytes of the data files on disk (one `stat` per file: for `/metrics`, not for hot paths).
    pub fn data_file_bytes(&self) -> u64 {
        self.data_files()
            .iter()
            .filter_map(|f| fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Refuses new writes, lets queued ones finish, syncs the log and stops the background threads
    /// (a flush in progress completes). Scans keep working on what is in memory and on disk.
    pub async fn close(&self) -> Result<()> {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        // Writes waiting for the flusher see `closed` and give up.
        shared.frozen_count.send_modify(|_| {});
        let writer = lock(&shared.writer_tx).take();
        let mut result = Ok(());
        if let Some(writer) = writer {
            let (reply, answer) = oneshot::channel();
            if writer.send(WriterMsg::Close(reply)).is_ok() {
                result = answer.await.map_err(|_| Error::Closed).and_then(|r| r);
            }
        }
        lock(&shared.flusher_tx).take();
        lock(&shared.compactor_tx).take();
        let threads: Vec<JoinHandle<()>> = lock(&self.inner.threads).drain(..).collect();
        let joined = tokio::task::spawn_blocking(move || {
            threads.into_iter().all(|thread| thread.join().is_ok())
        })
        .await;
        if !matches!(joined, Ok(true)) {
            tracing::error!("a storage background thread panicked");
        }
        result
    }

    /// Sets how merges find expired points: for a series, the time before which its points are
    /// gone (`None`: kept). Points a TTL hides are dropped when their files are next merged; the
    /// answer must only move forward in time for a series, or dropped points would be missed.
    pub fn set_retention(&self, retention: Retention) {
        *write(&self.inner.shared.retention) = Some(retention);
    }

    /// Test hook: makes the next fsync of the log fail, as a failing disk would: the records it
    /// should have made durable read back as zeros, and the error is reported. The log writer then
    /// writes them again from memory and syncs once more (see [`Storage::fail_next_syncs`]).
    #[doc(hidden)]
    pub fn fail_next_sync(&self) {
        self.fail_next_syncs(1);
    }

    /// Test hook: makes the next `count` fsyncs of the log fail as [`Storage::fail_next_sync`]
    /// does; two in a row fail a sync and its retry, which poisons the log.
    #[doc(hidden)]
    pub fn fail_next_syncs(&self, count: u32) {
        self.inner
            .shared
            .failing_syncs
            .store(count, Ordering::Release);
    }

    /// Test hook: the next compaction stops as if the process died, after writing the merged file
    /// (`after_manifest == false`) or right after replacing the manifest (`true`); this instance
    /// then compacts no more. Reopening the directory shows what a real crash would leave.
    #[doc(hidden)]
    pub fn crash_next_compaction(&self, after_manifest: bool) {
        let point = if after_manifest {
            CrashPoint::AfterManifest
        } else {
            CrashPoint::BeforeManifest
        };
        *lock(&self.inner.shared.compaction_crash) = Some(point);
    }

    /// Test hook: while paused, a compaction stops between picking its inputs and merging them, as a
    /// long merge would.
    #[doc(hidden)]
    pub fn pause_compactions(&self, paused: bool) {
        self.inner
            .shared
            .compactions_paused
            .store(paused, Ordering::Release);
    }

    /// Test hook: whether a merge has picked its inputs and is held there by
    /// [`Storage::pause_compactions`] (a merge in progress, nothing of it written yet).
    #[doc(hidden)]
    pub fn merge_held_by_pause(&self) -> bool {
        self.inner.shared.merge_held.load(Ordering::Acquire)
    }

    /// Test hook: the next append to the log writes half its batch and then fails as a full disk
    /// does (ENOSPC).
    #[doc(hidden)]
    pub fn fail_next_append(&self) {
        self.inner
            .shared
            .fail_next_append
            .store(true, Ordering::Release);
    }

    /// Test hook: the log writer takes no message until the returned guard is dropped, so writes
    /// sent meanwhile share one group commit (see [`Storage::queued_writes`]).
    #[doc(hidden)]
    pub fn pause_log_writer(&self) -> Result<LogWriterPause> {
        let (release, paused) = std::sync::mpsc::channel();
        self.inner.shared.send_to_writer(WriterMsg::Pause(paused))?;
        Ok(LogWriterPause { _release: release })
    }

    /// Test hook: writes sent to the log writer that it has not taken yet.
    #[doc(hidden)]
    pub fn queued_writes(&self) -> usize {
        self.inner.shared.queued_writes.load(Ordering::Acquire)
    }

    /// Test hook: while paused the flusher flushes nothing, as if the disk could not keep up.
    #[doc(hidden)]
    pub fn pause_flushes(&self, paused: bool) {
        let shared = &self.inner.shared;
        shared.flushes_paused.store(paused, Ordering::Release);
        if !paused {
            shared.request_flush();
        }
    }
}

impl Shared {
    /// Waits while more than `max_frozen_memtables` memtables wait for their flush. The flusher
    /// publishes the count after every flush, so this sleeps on a channel rather than polling.
    async fn wait_for_flushes(&self, limit: usize) -> Result<()> {
        if *self.frozen_count.borrow() <= limit {
            return Ok(());
        }
        let held_since = Instant::now();
        // `wait_for` checks the current value first, so a flush finishing right here is not missed.
        let mut frozen = self.frozen_count.subscribe();
        let waited = frozen
            .wait_for(|n| {
                *n <= limit
                    || self.closed.load(Ordering::Acquire)
                    || self.flush_disk_full.load(Ordering::Acquire)
            })
            .await
            .map(|_| ());
        self.metrics.backpressure_seconds.add(held_since.elapsed());
        if waited.is_err() || self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.flush_disk_full.load(Ordering::Acquire) && *self.frozen_count.borrow() > limit {
            // Waiting would last until space is freed: say so now instead of hanging the client,
            // and have the flusher try again now, in case space was freed since its last try.
            self.request_flush();
            return Err(Error::DiskFull(
                "memtables cannot be flushed to data files".into(),
            ));
        }
        match self.poisoned() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Publishes how many memtables wait for their flush (wakes writers held back by it).
    fn publish_frozen(&self, frozen: usize) {
        // One log line per episode: operators see that the disk (flush) is what limits ingest.
        {
            let mut since = lock(&self.held_back_since);
            let holding = frozen > self.options.max_frozen_memtables;
            match (*since, holding) {
                (None, true) => {
                    *since = Some(Instant::now());
                    tracing::info!(frozen, "writes held back: memtables wait for their flush");
                }
                (Some(t), false) => {
                    *since = None;
                    tracing::info!(
                        held_ms = t.elapsed().as_millis() as u64,
                        "writes resumed: the flush caught up"
                    );
                }
                _ => {}
            }
        }
        self.frozen_count.send_if_modified(|n| {
            let changed = *n != frozen;
            *n = frozen;
            changed
        });
    }

    /// Asks the compactor to merge what is due (coalesced: one queued request is enough), or, with
    /// an explicit flush's result and caller, to merge and then answer that caller.
    fn request_compaction(&self, after_flush: Option<(Result<()>, oneshot::Sender<Result<()>>)>) {
        let msg = match after_flush {
            Some((flushed, reply)) => CompactorMsg::AfterFlush(flushed, reply),
            None => {
                if self.compaction_requested.swap(true, Ordering::AcqRel) {
                    return;
                }
                CompactorMsg::Due
            }
        };
        let sender = lock(&self.compactor_tx).clone();
        if let Some(Err(mpsc::SendError(CompactorMsg::AfterFlush(flushed, reply)))) =
            sender.map(|s| s.send(msg))
        {
            // Closing: answer the flush without merging.
            let _ = reply.send(flushed);
        }
    }

    fn send_to_writer(&self, msg: WriterMsg) -> Result<()> {
        let sender = lock(&self.writer_tx).clone().ok_or(Error::Closed)?;
        let is_write = matches!(msg, WriterMsg::Write(_));
        if is_write {
            self.queued_writes.fetch_add(1, Ordering::AcqRel);
        }
        sender.send(msg).map_err(|_| {
            if is_write {
                self.queued_writes.fetch_sub(1, Ordering::AcqRel);
            }
            Error::Closed
        })
    }

    /// Logs the start of a disk-full episode (once; [`Shared::disk_full_cleared`] ends it).
    fn note_disk_full(&self, error: &std::io::Error) {
        if !self.disk_full.swap(true, Ordering::AcqRel) {
            tracing::error!(
                dir = %self.dir.display(),
                error = %error,
                "disk full: writes are refused until space is freed"
            );
        }
    }

    fn disk_full_cleared(&self) {
        if self.disk_full.swap(false, Ordering::AcqRel) {
            tracing::warn!(dir = %self.dir.display(), "disk space is available again: writes are accepted");
        }
    }

    fn request_flush(&self) {
        if !self.flush_requested.swap(true, Ordering::AcqRel) {
            if let Some(sender) = lock(&self.flusher_tx).as_ref() {
                // A closed flusher means we are shutting down; the log still holds the data.
                let _ = sender.send(FlusherMsg::Trigger);
            }
        }
    }

    fn poison(&self, reason: String) -> Error {
        tracing::error!(%reason, "change log poisoned: refusing all further writes");
        let mut poisoned = lock(&self.poisoned);
        let reason = poisoned.get_or_insert(reason).clone();
        Error::Poisoned(reason)
    }

    fn poisoned(&self) -> Option<Error> {
        self.poisoned_reason().map(Error::Poisoned)
    }

    fn poisoned_reason(&self) -> Option<String> {
        lock(&self.poisoned).clone()
    }

    /// Asks the log writer to fsync and waits (from the flusher thread, never from async code).
    fn sync_log(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send_to_writer(WriterMsg::Sync(reply))?;
        answer.blocking_recv().map_err(|_| Error::Closed)?
    }

    /// Deletes log segments below `min(flushed, every cursor)`, subject to the retention cap.
    fn release_log(&self) -> Result<()> {
        let flushed = read(&self.tree).flushed_lsn;
        let cursor_min = lock(&self.cursors).values().min().copied();
        let cursor_keep_from = cursor_min.map_or(Lsn::MAX, |ack| ack.saturating_add(1));
        WalIndex::release(
            &self.wal_index,
            flushed + 1,
            cursor_keep_from,
            self.options.log_retention_cap_bytes,
            &self.dir.join("wal"),
        )?;
        Ok(())
    }

    /// How many compaction inputs (small files) each time partition has.
    fn small_files_per_partition(&self) -> BTreeMap<i64, usize> {
        let manifest = lock(&self.flush_state);
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for file in manifest
            .files
            .iter()
            .filter(|f| is_compaction_input(f.n_rows))
        {
            *counts.entry(file.partition).or_default() += 1;
        }
        counts
    }

    /// Waits while some partition has more than [`COMPACTION_DEBT_FACTOR`] × `compaction_files`
    /// small files waiting for a merge: flushing more would only add to them, while memtables that
    /// wait instead engage back-pressure, so a compactor that cannot keep up slows ingest rather
    /// than letting files (and the reads that must consult them) grow without bound.
    fn wait_for_compaction_debt(&self) {
        let limit = self.options.compaction_files.max(2) * COMPACTION_DEBT_FACTOR;
        let mut logged = false;
        loop {
            let worst = self
                .small_files_per_partition()
                .into_values()
                .max()
                .unwrap_or(0);
            // A compactor that cannot write (full disk) will not catch up: the flush goes ahead
            // (and, on the same full disk, fails visibly instead of blocking every writer).
            let stuck = self.closed.load(Ordering::Acquire)
                || self.compaction_halted.load(Ordering::Acquire)
                || self.compaction_disk_full.load(Ordering::Acquire);
            if worst <= limit || stuck {
                return;
            }
            if !logged {
                tracing::info!(files = worst, "flush waits for compaction to catch up");
                logged = true;
            }
            self.request_compaction(None);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Flushes every frozen memtable, oldest first, after freezing the active one (if not empty)
    /// when `freeze_active` (an explicit or age-based flush; a size-triggered one flushes only what
    /// the log writer froze, so a busy memtable is not cut into tiny files).
    fn flush_now(&self, freeze_active: bool) -> Result<()> {
        let flushed = self.flush_frozen(freeze_active);
        let full = matches!(&flushed, Err(e) if e.is_disk_full());
        if self.flush_disk_full.swap(full, Ordering::AcqRel) != full {
            if full {
                tracing::error!(dir = %self.dir.display(), "disk full: memtables cannot be flushed; writes held back by them are refused until space is freed");
            } else {
                tracing::warn!(dir = %self.dir.display(), "flushes succeed again after a full disk");
            }
            // Wake writers waiting for flushes, so they see the change.
            self.frozen_count.send_modify(|_| {});
        }
        flushed
    }

    /// [`Shared::flush_now`] without the disk-full bookkeeping.
    fn flush_frozen(&self, freeze_active: bool) -> Result<()> {
        self.wait_for_compaction_debt();
        let mut manifest = lock(&self.flush_state);
        self.flush_requested.store(false, Ordering::Release);
        if self.flushes_paused.load(Ordering::Acquire) {
            return Ok(());
        }
        let frozen = {
            let mut tree = write(&self.tree);
            if freeze_active {
                tree.freeze();
            }
            tree.frozen.clone()
        };
        if frozen.is_empty() {
            return Ok(());
        }
        // Data is about to count as flushed: the log must hold it durably first, or a crash in
        // Periodic mode could leave a log that ends below the flushed position.
        self.sync_log()?;
        for memtable in frozen {
            self.flush_memtable(&memtable, &mut manifest)?;
        }
        drop(manifest);
        self.release_log()
    }

    fn flush_memtable(&self, memtable: &Arc<Memtable>, manifest: &mut Manifest) -> Result<()> {
        let started = Instant::now();
        let mut by_partition: BTreeMap<i64, Vec<(String, Run)>> = BTreeMap::new();
        for (series, run) in memtable.sorted_series() {
            for (partition, part) in split_by_partition(run) {
                by_partition
                    .entry(partition)
                    .or_default()
                    .push((series.clone(), part));
            }
        }
        let mut next = manifest.clone();
        let mut new_files: Vec<Arc<DataFile>> = Vec::new();
        for (partition, runs) in by_partition {
            let id = next.next_file_id;
            next.next_file_id += 1;
            let relative = format!("data/{partition}/{id:020}.parquet");
            let partition_dir = self.dir.join("data").join(partition.to_string());
            let path = self.dir.join(&relative);
            let written = fs::create_dir_all(&partition_dir)
                .map_err(Error::from)
                .and_then(|()| datafile::write(&path, partition, &runs))
                .and_then(|meta| Ok(wal::sync_dir(&partition_dir).map(|()| meta)?));
            let meta = match written {
                Ok(meta) => meta,
                Err(e) => {
                    // A failed flush (a full disk, say) leaves no files behind to fill it further:
                    // the memtable stays in memory and the next flush writes them again.
                    let _ = fs::remove_file(&path);
                    for file in &new_files {
                        let _ = fs::remove_file(self.dir.join(&file.meta.path));
                    }
                    return Err(e);
                }
            };
            let meta = FileMeta {
                id,
                path: relative,
                max_lsn: memtable.max_lsn,
                ..meta
            };
            next.files.push(meta.clone());
            new_files.push(Arc::new(DataFile::new(meta, &self.dir)));
        }
        wal::sync_dir(&self.dir.join("data"))?;
        let mut series_names: Vec<&String> = memtable.tombstones.keys().collect();
        series_names.sort();
        for series in series_names {
            for tombstone in memtable.tombstones_for(series) {
                next.tombstones.push(TombstoneRecord {
                    series: series.clone(),
                    start: tombstone.start,
                    end: tombstone.end,
                    version: tombstone.version,
                });
            }
        }
        next.flushed_lsn = next.flushed_lsn.max(self.covered_lsn(memtable));
        next.max_hlc = next.max_hlc.max(memtable.max_hlc);
        if let Err(e) = next.store(&self.dir) {
            // The rename may have happened: never hand out these file ids again, or a later file
            // could overwrite one that the manifest on disk names.
            manifest.next_file_id = next.next_file_id;
            return Err(e);
        }
        *manifest = next;
        {
            let mut tree = write(&self.tree);
            tree.files.extend(new_files);
            for (series, list) in &memtable.tombstones {
                tree.tombstones
                    .entry(series.clone())
                    .or_default()
                    .extend(list.iter().copied());
            }
            tree.flushed_lsn = manifest.flushed_lsn;
            tree.frozen.retain(|m| !Arc::ptr_eq(m, memtable));
            self.publish_frozen(tree.frozen.len());
        }
        self.metrics
            .flush_seconds
            .observe_duration(started.elapsed());
        tracing::debug!(
            points = memtable.points,
            flushed_lsn = manifest.flushed_lsn,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "memtable flushed"
        );
        Ok(())
    }

    /// The flushed position a flush of `memtable` may record: its largest LSN, unless a younger
    /// memtable (frozen after it, or the active one) holds an entry below that — then just below
    /// that entry, so recovery replays it. **The flushed position never passes an LSN whose entry
    /// is only in memory.** With entries applied in LSN order (see [`Tree::applied_lsn`]) this is
    /// always the memtable's largest LSN; the check keeps an ordering mistake from losing data.
    fn covered_lsn(&self, memtable: &Arc<Memtable>) -> Lsn {
        let tree = read(&self.tree);
        let younger = tree
            .frozen
            .iter()
            .skip_while(|m| !Arc::ptr_eq(m, memtable))
            .skip(1)
            .map(|m| m.min_lsn)
            .chain(std::iter::once(tree.active.min_lsn))
            .filter(|&lsn| lsn != 0)
            .min();
        match younger {
            Some(lsn) if lsn <= memtable.max_lsn => lsn - 1,
            _ => memtable.max_lsn,
        }
    }

    /// Compacts every time partition that has `compaction_files` small data files or more (see
    /// [`is_compaction_input`]), on the compactor thread: flushes go on meanwhile, so writers held
    /// back by frozen memtables never wait for a merge.
    fn compact_due(&self) -> Result<()> {
        let threshold = self.options.compaction_files.max(2);
        loop {
            if self.compaction_halted.load(Ordering::Acquire) {
                return Ok(());
            }
            let partition = self
                .small_files_per_partition()
                .into_iter()
                .find(|(_, n)| *n >= threshold)
                .map(|(partition, _)| partition);
            let Some(partition) = partition else {
                return Ok(());
            };
            self.compact_partition(partition)?;
        }
    }

    /// Merges a partition's data files into one: per (series, time) the highest version wins, and
    /// points hidden by a flushed tombstone are dropped (the tombstones stay in the manifest: a
    /// pipe write with an older version may still arrive and must stay hidden).
    ///
    /// Crash safety: the merged file is written and synced under a fresh id first (a crash now
    /// leaves an orphan the next open removes); then the manifest is replaced atomically (rename),
    /// which is the single switch from the old set to the new one (a crash after it leaves the
    /// inputs as orphans, removed by the next open). Only then are the inputs swapped out of the
    /// tree and marked obsolete; each is deleted when the last scan holding it finishes.
    ///
    /// Concurrency: the manifest lock (which flushes hold) is taken only to pick the inputs and
    /// reserve the output's id, and again for the switch; the merge runs without it, so flushes go
    /// on meanwhile. Only this thread removes files, so the inputs are all still there at the
    /// switch; tombstones flushed during the merge stay in the manifest and still hide what they
    /// cover when files are read.
    fn compact_partition(&self, partition: i64) -> Result<()> {
        let started = Instant::now();
        let (inputs, output_id) = {
            let mut manifest = lock(&self.flush_state);
            let inputs: Vec<Arc<DataFile>> = read(&self.tree)
                .files
                .iter()
                .filter(|f| f.meta.partition == partition && is_compaction_input(f.meta.n_rows))
                // The oldest few: a merge holds its inputs in memory, so it takes a bounded number
                // however many small files wait (the rest go in the next merge).
                .take(self.options.compaction_files.max(2))
                .cloned()
                .collect();
            if inputs.len() < 2 {
                return Ok(());
            }
            // Never reuse the id, whatever happens below: an orphan of it may be on disk.
            let id = manifest.next_file_id;
            manifest.next_file_id += 1;
            (inputs, id)
        };
        while self.compactions_paused.load(Ordering::Acquire)
            && !self.closed.load(Ordering::Acquire)
        {
            self.merge_held.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(5));
        }
        self.merge_held.store(false, Ordering::Release);
        let names: BTreeSet<&str> = inputs
            .iter()
            .flat_map(|f| f.meta.series.iter().map(|s| s.series.as_str()))
            .collect();
        let mut merged: Vec<(String, Run)> = Vec::new();
        for series in names {
            // A closing storage abandons the merge (nothing is written yet; the inputs stay), so a
            // graceful stop never waits for a long merge (the fault soak saw one take minutes).
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let tombstones: Vec<RangeTombstone> = read(&self.tree)
                .tombstones
                .get(series)
                .cloned()
                .unwrap_or_default();
            let mut runs = Vec::new();
            for file in &inputs {
                runs.extend(file.read(
                    series,
                    i64::MIN,
                    i64::MAX,
                    usize::MAX,
                    false,
                    &tombstones,
                )?);
            }
            let floor = read(&self.retention).as_ref().and_then(|r| r(series));
            let resolved = run::resolve(&runs, &[]).map(|mut run| {
                if let Some(floor) = floor {
                    run.drop_before(floor);
                }
                run
            });
            if let Some(run) = resolved.filter(|r| r.len() > 0) {
                merged.push((series.to_string(), run));
            }
        }
        let input_ids: HashSet<u64> = inputs.iter().map(|f| f.meta.id).collect();
        let output = if merged.is_empty() {
            // Everything was deleted: the inputs go and nothing replaces them.
            None
        } else {
            let id = output_id;
            let relative = format!("data/{partition}/{id:020}.parquet");
            let partition_dir = self.dir.join("data").join(partition.to_string());
            fs::create_dir_all(&partition_dir)?;
            let path = self.dir.join(&relative);
            let meta = match datafile::write(&path, partition, &merged)
                .and_then(|meta| Ok(wal::sync_dir(&partition_dir).map(|()| meta)?))
            {
                Ok(meta) => meta,
                Err(e) => {
                    // Not named by any manifest yet: a failed merge (a full disk) leaves nothing.
                    let _ = fs::remove_file(&path);
                    return Err(e);
                }
            };
            Some(FileMeta {
                id,
                path: relative,
                max_lsn: inputs.iter().map(|f| f.meta.max_lsn).max().unwrap_or(0),
                ..meta
            })
        };
        drop(merged);
        self.injected_crash(CrashPoint::BeforeManifest)?;
        let mut manifest = lock(&self.flush_state);
        let mut next = manifest.clone();
        next.files = replace_files(&next.files, &input_ids, output.clone(), |f| f.id);
        next.store(&self.dir)?;
        self.injected_crash(CrashPoint::AfterManifest)?;
        *manifest = next;
        let n_rows = output.as_ref().map_or(0, |m| m.n_rows);
        {
            let mut tree = write(&self.tree);
            let output = output.map(|meta| Arc::new(DataFile::new(meta, &self.dir)));
            tree.files = replace_files(&tree.files, &input_ids, output, |f| f.meta.id);
        }
        for input in &inputs {
            input.mark_obsolete();
        }
        self.metrics
            .compaction_seconds
            .observe_duration(started.elapsed());
        tracing::debug!(
            partition,
            inputs = inputs.len(),
            rows = n_rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition compacted"
        );
        Ok(())
    }

    /// Fails (and stops all later compactions) if a test asked for a crash at `point`.
    fn injected_crash(&self, point: CrashPoint) -> Result<()> {
        let mut crash = lock(&self.compaction_crash);
        if *crash != Some(point) {
            return Ok(());
        }
        *crash = None;
        self.compaction_halted.store(true, Ordering::Release);
        Err(Error::Io(std::io::Error::other(format!(
            "injected compaction crash ({point:?})"
        ))))
    }
}

/// `files` without those whose id is in `inputs`, with `output` where the last input was (so
/// "oldest first" still roughly holds for other partitions' files around it).
fn replace_files<T: Clone>(
    files: &[T],
    inputs: &HashSet<u64>,
    output: Option<T>,
    id: impl Fn(&T) -> u64,
) -> Vec<T> {
    let last = files.iter().rposition(|f| inputs.contains(&id(f)));
    let mut out = Vec::with_capacity(files.len());
    let mut output = output;
    for (i, file) in files.iter().enumerate() {
        if !inputs.contains(&id(file)) {
            out.push(file.clone());
        }
        if Some(i) == last {
            out.extend(output.take());
        }
    }
    out.extend(output);
    out
}

/// Cuts a sorted run at partition boundaries.
fn split_by_partition(run: Run) -> Vec<(i64, Run)> {
    let (Some(first), Some(last)) = (run.times.first(), run.times.last()) else {
        return Vec::new();
    };
    if datafile::partition_of(*first) == datafile::partition_of(*last) {
        return vec![(datafile::partition_of(*first), run)];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < run.len() {
        let partition = datafile::partition_of(run.times.get(start).copied().unwrap_or(0));
        let end = start
            + run
                .times
                .get(start..)
                .unwrap_or_default()
                .partition_point(|t| datafile::partition_of(*t) == partition);
        let mut part = Run::empty(run.data_type);
        part.times
            .extend_from_slice(run.times.get(start..end).unwrap_or_default());
        part.versions
            .extend_from_slice(run.versions.get(start..end).unwrap_or_default());
        run::extend_values(&mut part.values, &run.values, start..end);
        parts.push((partition, part));
        start = end.max(start + 1);
    }
    parts
}

/// Deletes what a crash can leave behind: a temporary manifest and data files that no manifest
/// names (a flush that did not commit; its data is still in the log).
fn remove_orphan_files(dir: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = dir.join("MANIFEST.tmp");
    if tmp.exists() {
        fs::remove_file(&tmp)?;
    }
    let known: std::collections::HashSet<PathBuf> =
        manifest.files.iter().map(|f| dir.join(&f.path)).collect();
    for partition in fs::read_dir(dir.join("data"))? {
        let partition = partition?.path();
        if !partition.is_dir() {
            continue;
        }
        for file in fs::read_dir(&partition)? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "parquet") && !known.contains(&path) {
                tracing::warn!(file = %path.display(), "removing a data file of an unfinished flush");
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// Checks the shape of a write before it reaches the log: a malformed write must never be
/// acknowledged, and must never make the log unreadable.
fn validate_ops(ops: &[Op]) -> Result<()> {
    let too_long = |n: usize| u32::try_from(n).is_err();
    if too_long(ops.len()) {
        return Err(Error::InvalidWrite(
            "too many operations in one write".into(),
        ));
    }
    for op in ops {
        match op {
            Op::Insert(insert) => {
                let n_rows = insert.times.len();
                if too_long(n_rows)
                    || too_long(insert.columns.len())
                    || too_long(insert.device.len())
                {
                    return Err(Error::InvalidWrite(format!(
                        "insert into {} is too large",
                        insert.device
                    )));
                }
                if insert.columns.len() != insert.measurements.len() {
                    return Err(Error::InvalidWrite(format!(
                        "insert into {}: {} measurements but {} columns",
                        insert.device,
                        insert.measurements.len(),
                        insert.columns.len()
                    )));
                }
                for (measurement, column) in insert.measurements.iter().zip(&insert.columns) {
                    let fits = matches!(
                        (column.data_type.physical(), &column.values),
                        (DataType::Boolean, ColumnValues::Boolean(_))
                            | (DataType::Int32, ColumnValues::Int32(_))
                            | (DataType::Int64, ColumnValues::Int64(_))
                            | (DataType::Float, ColumnValues::Float(_))
                            | (DataType::Double, ColumnValues::Double(_))
                            | (DataType::Text, ColumnValues::Binary(_))
                    );
                    let nulls_fit = column.nulls.as_ref().is_none_or(|n| n.len() == n_rows);
                    let binary_fits = match &column.values {
                        ColumnValues::Binary(v) => v.iter().all(|b| !too_long(b.len())),
                        _ => true,
                    };
                    if !fits
                        || column.len() != n_rows
                        || !nulls_fit
                        || !binary_fits
                        || too_long(measurement.len())
                    {
                        return Err(Error::InvalidWrite(format!(
                            "insert into {}.{measurement}: column of type {} does not match {n_rows} rows",
                            insert.device, column.data_type
                        )));
                    }
                }
            }
            Op::Delete(delete) => {
                if too_long(delete.series.len()) || delete.series.iter().any(|s| too_long(s.len()))
                {
                    return Err(Error::InvalidWrite("delete is too large".into()));
                }
            }
            Op::Meta(bytes) => {
                if too_long(bytes.len()) {
                    return Err(Error::InvalidWrite("schema change is too large".into()));
                }
            }
        }
    }
    Ok(())
}

/// The log-writer thread's state: it alone touches the open segment and the clock.
struct LogWriter {
    shared: Arc<Shared>,
    segment: SegmentWriter,
    next_lsn: Lsn,
    hlc: Hlc,
    /// Length of the open segment at its last successful fsync: what the disk is known to hold.
    synced_bytes: u64,
    /// The records written after that, kept so that a failed fsync can write them again: after a
    /// failed fsync the kernel may have dropped those pages, so syncing again proves nothing.
    unsynced: Vec<u8>,
    last_sync: Instant,
    /// Reused buffer of one group commit's records.
    buf: Vec<u8>,
    /// The last rotation failed (the disk is full): the current segment grows until one succeeds.
    rotation_failing: bool,
}

/// One write accepted into the current group commit.
struct Accepted {
    lsn: Lsn,
    version: Version,
    /// Arrived through a pipe: applied to the memtable before the fsync (see [`LogWriter::commit`]).
    replicated: bool,
    ops: Vec<Op>,
    reply: oneshot::Sender<Result<(Lsn, Version)>>,
}

impl LogWriter {
    fn run(mut self, rx: Receiver<WriterMsg>) {
        loop {
            let first = match self.sync_deadline() {
                Some(deadline) => {
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(msg) => msg,
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = self.sync();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
            };
            if let WriterMsg::Pause(paused) = first {
                // Blocks until the test's guard is dropped (the sender's end then disconnects).
                let _ = paused.recv();
                continue;
            }
            let mut writes = Vec::new();
            let mut controls = Vec::new();
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Write(request) => {
                        self.shared.queued_writes.fetch_sub(1, Ordering::AcqRel);
                        bytes += request.encoded_ops.len();
                        writes.push(request);
                    }
                    control => controls.push(control),
                }
                if bytes < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                self.commit(writes);
            }
            let mut closing = false;
            for control in controls {
                match control {
                    WriterMsg::Sync(reply) => {
                        let _ = reply.send(self.sync_for_caller());
                    }
                    WriterMsg::Close(reply) => {
                        let _ = reply.send(self.sync_for_caller());
                        closing = true;
                    }
                    WriterMsg::Pause(paused) => {
                        let _ = paused.recv();
                    }
                    WriterMsg::Write(_) => {}
                }
            }
            if closing {
                return;
            }
        }
        // Every handle is gone: make what was written durable before the thread ends.
        if !self.unsynced.is_empty() {
            let _ = self.sync();
        }
    }

    fn sync_deadline(&self) -> Option<Instant> {
        match self.shared.options.sync {
            SyncMode::Periodic(interval) if !self.unsynced.is_empty() => {
                Some(self.last_sync + interval)
            }
            _ => None,
        }
    }

    fn sync_for_caller(&mut self) -> Result<()> {
        if let Some(err) = self.shared.poisoned() {
            return Err(err);
        }
        self.sync()
    }

    /// fsyncs the open segment. A failed fsync is not retried as such — the kernel may have
    /// dropped the unsynced pages and marked them clean, so a second fsync could succeed without
    /// them (PostgreSQL's "fsyncgate") — but the segment is cut back to its last synced length, the
    /// records since are written again from memory and synced. Only if that fails too is the log
    /// poisoned (until a restart recovers it).
    fn sync(&mut self) -> Result<()> {
        let failed = match self.sync_segment() {
            Ok(()) => {
                self.synced();
                return Ok(());
            }
            Err(e) => e,
        };
        tracing::warn!(error = %failed, unsynced_bytes = self.unsynced.len(), "fsync of the change log failed; writing its unsynced records again");
        match self.rewrite_unsynced() {
            Ok(()) => {
                tracing::warn!(
                    rewritten_bytes = self.unsynced.len(),
                    "the change log's unsynced records were written again and synced; writes go on"
                );
                self.synced();
                Ok(())
            }
            Err(again) => Err(self.shared.poison(format!(
                "fsync of the change log failed ({failed}), and writing its unsynced records again failed: {again}"
            ))),
        }
    }

    fn synced(&mut self) {
        self.synced_bytes = self.segment.bytes;
        self.unsynced.clear();
        self.last_sync = Instant::now();
    }

    fn sync_segment(&mut self) -> std::io::Result<()> {
        let injected = self
            .shared
            .failing_syncs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            // As a failing disk: the unsynced pages never reach it (they read back as zeros).
            self.segment.file.set_len(self.synced_bytes)?;
            self.segment.file.set_len(self.segment.bytes)?;
            return Err(std::io::Error::other("injected fsync failure"));
        }
        let started = Instant::now();
        let synced = self.segment.file.sync_data();
        self.shared
            .metrics
            .wal_fsync_seconds
            .observe_duration(started.elapsed());
        synced
    }

    /// Cuts the open segment back to its synced length and appends the unsynced records again
    /// (the file is opened for appending), then syncs. Readers never read past the head, which a
    /// per-commit log moves only after the sync; in periodic mode a reader may meet the cut-back
    /// region and gets an error it retries.
    fn rewrite_unsynced(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.segment.file.set_len(self.synced_bytes)?;
        self.segment.file.write_all(&self.unsynced)?;
        self.sync_segment()
    }

    /// One group commit: assign LSNs and versions, write, (apply replicated entries,) sync, apply,
    /// publish, answer.
    fn commit(&mut self, mut writes: Vec<WriteRequest>) {
        if let Some(reason) = self.shared.poisoned_reason() {
            for request in writes {
                let _ = request.reply.send(Err(Error::Poisoned(reason.clone())));
            }
            return;
        }
        // Entries from pipes take the group's lowest LSNs: they are applied before the fsync and
        // local ones after it, so this keeps the memtables filled in LSN order even when one is
        // frozen in between (see `Tree::applied_lsn`). Giving a local write a lower LSN than a
        // replicated one applied before it lost that write at recovery once the frozen memtable was
        // flushed (issue 8). The writes of one group are concurrent, so any order among them is one
        // their clients could have seen.
        writes.sort_by_key(|request| matches!(request.origin, Origin::Local));
        self.buf.clear();
        let mut accepted: Vec<Accepted> = Vec::with_capacity(writes.len());
        let mut offsets = Vec::with_capacity(writes.len());
        let mut header = Vec::with_capacity(64);
        {
            let tree = read(&self.shared.tree);
            let mut pending_types = HashMap::new();
            for request in writes {
                if let Err(e) = tree.active.check_types(&request.ops, &mut pending_types) {
                    let _ = request.reply.send(Err(e));
                    continue;
                }
                let version = match request.version {
                    Some(version) => {
                        self.hlc.observe(version.hlc);
                        version
                    }
                    // A write without a version is versioned here; one that arrived through a pipe
                    // (an IoTDB sender's, which carries none) is versioned as its origin's, so
                    // whatever later reads the version for where a point was first written (a
                    // double-living pipe's history) does not take it for this instance's own.
                    None => Version {
                        hlc: self.hlc.next(),
                        instance: match request.origin {
                            Origin::Pipe { instance } => instance,
                            Origin::Local => self.shared.options.instance,
                        },
                    },
                };
                self.shared
                    .last_hlc
                    .fetch_max(version.hlc, Ordering::Relaxed);
                let lsn = self.next_lsn;
                self.next_lsn += 1;
                header.clear();
                codec::encode_header(lsn, &request.origin, version, &mut header);
                offsets.push(self.segment.bytes + self.buf.len() as u64);
                wal::encode_record(&header, &request.encoded_ops, &mut self.buf);
                accepted.push(Accepted {
                    lsn,
                    version,
                    replicated: matches!(request.origin, Origin::Pipe { .. }),
                    ops: request.ops,
                    reply: request.reply,
                });
            }
        }
        let Some(last_lsn) = accepted.last().map(|a| a.lsn) else {
            return;
        };
        let shared = self.shared.clone();
        let poisoned = |accepted: Vec<Accepted>| {
            let reason = shared.poisoned_reason().unwrap_or_default();
            for write in accepted {
                let _ = write.reply.send(Err(Error::Poisoned(reason.clone())));
            }
        };
        match self.append_batch() {
            Ok(()) => self.shared.disk_full_cleared(),
            Err(Error::DiskFull(reason)) => {
                // Nothing of the group is in the log: its LSNs are handed out again.
                if let Some(first) = accepted.first() {
                    self.next_lsn = first.lsn;
                }
                for write in accepted {
                    let _ = write.reply.send(Err(Error::DiskFull(reason.clone())));
                }
                return;
            }
            Err(_) => {
                poisoned(accepted);
                return;
            }
        }
        {
            let mut index = lock(&self.shared.wal_index);
            if let Some(segment) = index.segments.last_mut() {
                segment.offsets.extend_from_slice(&offsets);
                segment.bytes = self.segment.bytes;
            }
        }
        // Entries that came through a pipe become visible before the fsync: their sender keeps them
        // until this instance acknowledges, which happens only after the fsync below, so a crash
        // here only means they are sent again. That takes the fsync out of replication lag (as a
        // PostgreSQL subscriber's asynchronous commit does). Local writes stay invisible until they
        // are durable: their clients must never see data that a failed fsync then takes back.
        let early = accepted.iter().any(|a| a.replicated);
        let mut froze_early = false;
        if early {
            let (froze, frozen) = self.apply_to_memtable(accepted.iter().filter(|a| a.replicated));
            froze_early = froze;
            self.shared.publish_frozen(frozen);
        }
        if self.sync_batch().is_err() {
            poisoned(accepted);
            return;
        }
        let (froze_late, frozen) =
            self.apply_to_memtable(accepted.iter().filter(|a| !(early && a.replicated)));
        let froze = froze_early || froze_late;
        self.shared.publish_frozen(frozen);
        self.shared.head.send_replace(last_lsn);
        let metrics = &self.shared.metrics;
        metrics.wal_group_entries.observe(accepted.len() as f64);
        for write in accepted {
            let points = points_in(&write.ops);
            if write.replicated {
                metrics.entries_written_pipe.inc();
                metrics.points_written_pipe.add(points);
            } else {
                metrics.entries_written_local.inc();
                metrics.points_written_local.add(points);
            }
            let _ = write.reply.send(Ok((write.lsn, write.version)));
        }
        if froze {
            self.shared.request_flush();
        }
        if self.segment.bytes >= self.shared.options.segment_bytes {
            match self.rotate() {
                Ok(()) => self.rotation_failing = false,
                // Logged once per episode; the segment grows until a rotation succeeds.
                Err(e) if self.rotation_failing => {
                    tracing::debug!(error = %e, "starting a new log segment failed again")
                }
                Err(e) => {
                    self.rotation_failing = true;
                    tracing::error!(error = %e, "starting a new log segment failed; the current one grows until a retry succeeds");
                }
            }
        }
    }

    /// Applies logged entries to the active memtable and freezes it once it is full; returns whether
    /// it froze one and how many wait for their flush.
    fn apply_to_memtable<'a>(&self, writes: impl Iterator<Item = &'a Accepted>) -> (bool, usize) {
        {
            let mut tree = write(&self.shared.tree);
            let before = tree.frozen.len();
            for write in writes {
                if let Err(e) = tree.apply(write.lsn, write.version, &write.ops) {
                    // Cannot happen for checked writes; the entry is in the log and will be
                    // replayed, so report it loudly rather than lose track of it.
                    tracing::error!(lsn = write.lsn, error = %e, "applying a logged entry to the memtable failed");
                }
            }
            // Freezing here, not in the flusher, keeps each memtable near its size limit even
            // while a flush is slow; the frozen ones queue up and back-pressure bounds them.
            if tree.active.bytes >= self.shared.options.memtable_bytes {
                tree.freeze();
            }
            (tree.frozen.len() > before, tree.frozen.len())
        }
    }

    /// Writes the batch to the open segment (not yet synced). A full disk cuts the segment back to
    /// where the batch began and refuses the batch with [`Error::DiskFull`] — the log stays usable,
    /// so writes resume once space is freed; any other failure (or a failed cut) poisons the log.
    fn append_batch(&mut self) -> Result<()> {
        use std::io::Write;
        let written = if self.shared.fail_next_append.swap(false, Ordering::AcqRel) {
            // Test hook: half the batch reaches the file, then the disk is full.
            let half = self.buf.len() / 2;
            self.segment
                .file
                .write_all(&self.buf[..half])
                .and_then(|()| Err(std::io::Error::from(std::io::ErrorKind::StorageFull)))
        } else {
            self.segment.file.write_all(&self.buf)
        };
        match written {
            Ok(()) => {
                self.segment.bytes += self.buf.len() as u64;
                if self.unsynced.is_empty() {
                    // The usual case (every commit is synced): keep the batch without copying it;
                    // the next commit refills the emptied buffer this one had.
                    std::mem::swap(&mut self.unsynced, &mut self.buf);
                } else {
                    self.unsynced.extend_from_slice(&self.buf);
                }
                Ok(())
            }
            Err(e) if crate::error::is_disk_full(&e) => {
                // The segment is opened for appending, so once it is cut back the next batch
                // starts where this one did; an unsynced earlier batch is untouched.
                match self.segment.file.set_len(self.segment.bytes) {
                    Ok(()) => {
                        self.shared.note_disk_full(&e);
                        Err(Error::DiskFull(format!("writing the change log failed: {e}")))
                    }
                    Err(cut) => Err(self.shared.poison(format!(
                        "write to the change log failed ({e}) and cutting back its partial batch failed: {cut}"
                    ))),
                }
            }
            Err(e) => Err(self
                .shared
                .poison(format!("write to the change log failed: {e}"))),
        }
    }

    /// Syncs the appended batch as the mode says; a failure poisons the log.
    fn sync_batch(&mut self) -> Result<()> {
        match self.shared.options.sync {
            SyncMode::PerCommit => self.sync(),
            SyncMode::Periodic(interval) if self.last_sync.elapsed() >= interval => self.sync(),
            // The unsynced records are kept in memory for a rewrite; bound them.
            SyncMode::Periodic(_) if self.unsynced.len() >= MAX_UNSYNCED_BYTES => self.sync(),
            SyncMode::Periodic(_) => Ok(()),
        }
    }

    /// Closes the full segment (synced) and starts the next one at `next_lsn`. On a full disk the
    /// current segment simply grows; the next commit tries again.
    fn rotate(&mut self) -> Result<()> {
        self.sync()?;
        let wal_dir = self.shared.dir.join("wal");
        match SegmentWriter::create(&wal_dir, self.next_lsn) {
            Ok((writer, meta)) => {
                self.synced_bytes = writer.bytes;
                self.segment = writer;
                lock(&self.shared.wal_index).segments.push(meta);
                Ok(())
            }
            Err(Error::Io(e)) if crate::error::is_disk_full(&e) => Err(Error::DiskFull(format!(
                "starting a log segment failed: {e}"
            ))),
            Err(e) => Err(self
                .shared
                .poison(format!("creating a log segment failed: {e}"))),
        }
    }
}

/// The flusher thread: flushes on request, when the log writer froze a memtable, and when the
/// memtable is old; compacts after each.
fn run_flusher(shared: &Shared, rx: Receiver<FlusherMsg>) {
    lower_thread_priority("duet-flusher");
    let check_every = shared
        .options
        .memtable_age
        .clamp(MIN_AGE_CHECK_INTERVAL, AGE_CHECK_INTERVAL);
    loop {
        match rx.recv_timeout(check_every) {
            Ok(FlusherMsg::Flush(reply)) => {
                let flushed = shared.flush_now(true);
                if flushed.is_ok() {
                    // The compactor answers once it has merged what this flush made due.
                    shared.request_compaction(Some((flushed, reply)));
                } else {
                    let _ = reply.send(flushed);
                }
            }
            Ok(FlusherMsg::Trigger) => match shared.flush_now(false) {
                Ok(()) => shared.request_compaction(None),
                Err(e) => tracing::error!(error = %e, "background flush failed; will retry"),
            },
            Err(RecvTimeoutError::Timeout) => {
                let old = read(&shared.tree)
                    .active
                    .first_applied
                    .is_some_and(|t| t.elapsed() >= shared.options.memtable_age);
                let frozen_waiting = !read(&shared.tree).frozen.is_empty();
                if old || frozen_waiting {
                    if let Err(e) = shared.flush_now(old) {
                        tracing::error!(error = %e, "background flush failed; will retry");
                        continue;
                    }
                }
                shared.request_compaction(None);
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Background work yields the CPU to the log writer and the request handlers (as RocksDB lowers its
/// compaction threads' priority): on a busy machine a flush or merge then delays itself rather than
/// client writes and replication. It cannot starve: once memtables pile up, back-pressure holds
/// the writers and the CPU is the flusher's.
fn lower_thread_priority(thread: &str) {
    #[cfg(target_os = "linux")]
    {
        /// Like `nice -n 10`.
        const BACKGROUND_NICE: i32 = 10;
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE) {
            tracing::debug!(thread, "cannot lower the thread's CPU priority: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

/// The compactor thread: merges the partitions that are due whenever the flusher asks.
fn run_compactor(shared: &Shared, rx: Receiver<CompactorMsg>) {
    lower_thread_priority("duet-compactor");
    while let Ok(msg) = rx.recv() {
        if matches!(msg, CompactorMsg::Due) {
            shared.compaction_requested.store(false, Ordering::Release);
        }
        match shared.compact_due() {
            Ok(()) => {
                if shared.compaction_disk_full.swap(false, Ordering::AcqRel) {
                    tracing::warn!("compaction succeeds again after a full disk");
                }
            }
            Err(e) if e.is_disk_full() => {
                if !shared.compaction_disk_full.swap(true, Ordering::AcqRel) {
                    tracing::error!(error = %e, "disk full: compaction stops until space is freed; flushes no longer wait for it");
                }
                // Retrying at once would only spin; the next flush or request tries again.
                std::thread::sleep(COMPACTION_RETRY_AFTER_DISK_FULL);
            }
            Err(Error::Closed) => tracing::info!("merge abandoned: the storage is closing"),
            Err(e) => tracing::error!(error = %e, "compaction failed; will retry"),
        }
        if let CompactorMsg::AfterFlush(flushed, reply) = msg {
            let _ = reply.send(flushed);
        }
    }
}

/// How long the compactor rests after a merge failed on a full disk.
const COMPACTION_RETRY_AFTER_DISK_FULL: Duration = Duration::from_secs(1);

/// Files this large are not merged again: compaction only gathers the small files flushes leave
/// behind, so each point is rewritten about once instead of every time its partition grows
/// (merging whole partitions made flushes and memory grow with the data held).
const COMPACTION_INPUT_MAX_ROWS: u64 = 4_000_000;

fn is_compaction_input(n_rows: u64) -> bool {
    n_rows < COMPACTION_INPUT_MAX_ROWS
}
