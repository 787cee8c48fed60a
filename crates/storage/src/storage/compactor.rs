//! The compactor thread: merges a time partition's small data files into one (highest version wins,
//! points under flushed tombstones or past a TTL dropped), beside the flusher so a merge never holds
//! a flush back; a compactor that falls behind turns into back-pressure through the flusher.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{lock, lower_thread_priority, read, write, CompactorMsg, CrashPoint, Shared};
use crate::datafile::{self, DataFile, FileMeta};
use crate::error::{Error, Result};
use crate::run::{self, Run, Window};
use crate::types::RangeTombstone;
use crate::wal;

/// Small files per partition, in multiples of `compaction_files`, beyond which flushes wait for the
/// compactor (see [`Shared::wait_for_compaction_debt`]).
const COMPACTION_DEBT_FACTOR: usize = 4;

/// The compactor thread: merges the partitions that are due whenever the flusher asks.
pub(super) fn run_compactor(shared: &Shared, rx: Receiver<CompactorMsg>) {
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

pub(super) fn is_compaction_input(n_rows: u64) -> bool {
    n_rows < COMPACTION_INPUT_MAX_ROWS
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

impl Shared {
    /// Asks the compactor to merge what is due (coalesced: one queued request is enough), or, with
    /// an explicit flush's result and caller, to merge and then answer that caller.
    pub(super) fn request_compaction(
        &self,
        after_flush: Option<(Result<()>, oneshot::Sender<Result<()>>)>,
    ) {
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

    /// How many compaction inputs (small files) each time partition has.
    pub(super) fn small_files_per_partition(&self) -> BTreeMap<i64, usize> {
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
    pub(super) fn wait_for_compaction_debt(&self) {
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

    /// Compacts every time partition that has `compaction_files` small data files or more (see
    /// [`is_compaction_input`]), on the compactor thread: flushes go on meanwhile, so writers held
    /// back by frozen memtables never wait for a merge.
    pub(super) fn compact_due(&self) -> Result<()> {
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
    pub(super) fn compact_partition(&self, partition: i64) -> Result<()> {
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
                let everything = Window::new(i64::MIN, i64::MAX, usize::MAX, false);
                runs.extend(file.read(series, everything, &tombstones)?);
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
    pub(super) fn injected_crash(&self, point: CrashPoint) -> Result<()> {
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
