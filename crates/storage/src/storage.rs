//! The storage handle: the public API (writes, scans, summaries, log reading and cursors) over the
//! state the handles and the background threads share.
//!
//! Each thread's work lives in its own module, as methods on `Shared` or on the thread's own state:
//! - `recovery`: [`Storage::open`] — the manifest, orphan files, the log replayed into memtables,
//!   then the three threads started;
//! - `log_writer`: the **log writer** owns the open segment and the clock; it takes every queued
//!   write, assigns LSNs and versions, writes the batch with one `write` and one fsync, applies it to
//!   the memtable, publishes the new head, and answers each caller;
//! - `flusher`: the **flusher** writes frozen memtables to Parquet (the log writer freezes the
//!   memtable once it is large; the flusher freezes it when asked or when it is old); new writes go to
//!   a fresh memtable meanwhile, and scans see both;
//! - `compactor`: after each flush the **compactor** merges a time partition's small data files into
//!   one (see `Shared::compact_partition`), beside the flusher so a merge never holds a flush back;
//! - `hooks`: the test hooks (failing fsyncs and appends, paused threads, compaction crashes).
//!
//! Writes wait (asynchronously) while more than `max_frozen_memtables` memtables wait for their
//! flush, so ingest slows to the disk's pace instead of growing memory without bound.

mod compactor;
mod flusher;
mod hooks;
mod log_writer;
mod recovery;
mod sources;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use duet_proto::types::{ColumnValues, DataType};
use tokio::sync::{oneshot, watch};

use crate::codec;
use crate::datafile::{DataFile, DataFileInfo};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::StorageOptions;
use crate::run::{self, Run, SeriesChunk, Window};
use crate::stats::SeriesStats;
use crate::types::{LogHeader, Lsn, Op, Origin, RangeTombstone, Version};
use crate::wal::{LogRead, WalIndex};

#[cfg(feature = "test-hooks")]
pub use hooks::LogWriterPause;

/// For a series, the time before which its points have expired (see [`Storage::set_retention`]).
pub type Retention = Box<dyn Fn(&str) -> Option<i64> + Send + Sync>;

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
    #[cfg(feature = "test-hooks")]
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
        let wanted = Window::new(start, end, limit, descending);
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
            runs.extend(tree.active.extract(series, wanted, &tombstones));
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
            runs.extend(memtable.extract(series, wanted, &tombstones));
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
            if let Some(run) = file.read(series, wanted, &tombstones)? {
                runs.push(run);
                bound = full_bound(&runs);
            }
        }
        let merged = run::resolve_owned(runs);
        Ok(run::into_chunk(merged, limit, descending))
    }

    /// [`Storage::scan`] ascending, for a caller that reads only times and values (an aggregate's
    /// fold): when the sources (memtables, files) holding the range's points cover disjoint spans of
    /// time and no deletion of the series is recorded, they are read one after another in time order
    /// (see `sources`), and the chunk comes without versions (`versions` is empty, unless one file
    /// alone answered and needed them): versions are neither decoded nor copied, nothing is merged.
    /// Otherwise it is `scan`'s answer.
    pub fn scan_values(
        &self,
        series: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<SeriesChunk> {
        if start > end || limit == 0 {
            return Ok(SeriesChunk::empty());
        }
        let plan = sources::plan(&read(&self.inner.shared.tree), series, start, end, limit);
        match plan {
            sources::Plan::Empty => Ok(SeriesChunk::empty()),
            sources::Plan::Concatenate(list) => {
                let run = sources::concatenate(list, series, start, end, limit)?;
                Ok(run::into_chunk(run, limit, false))
            }
            sources::Plan::Merge => self.scan(series, start, end, limit, false),
        }
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
            // Sorted by first time, a span overlaps another exactly when an earlier one reaches it
            // or the next one starts within it: a LAST over hundreds of files checks each once.
            spans.sort_by_key(|s| (s.0, s.1));
            let mut reach = i64::MIN;
            for (i, (lo, hi, _, stats)) in spans.iter().enumerate() {
                let alone =
                    (i == 0 || reach < *lo) && spans.get(i + 1).is_none_or(|next| next.0 > *hi);
                reach = reach.max(*hi);
                let Some(stats) = stats else { continue };
                if start <= *lo
                    && *hi <= end
                    && alone
                    && !deleted.iter().any(|d| overlaps((*lo, *hi), *d))
                {
                    summaries.push((*lo, *hi, *stats));
                }
            }
        }
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
                    .filter(|f| compactor::is_compaction_input(f.meta.n_rows))
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
