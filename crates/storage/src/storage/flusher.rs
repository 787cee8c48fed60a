//! The flusher thread: writes frozen memtables to Parquet data files (one per time partition) and
//! commits them with the new flushed position in the manifest, then asks the compactor to merge
//! what became due. Writers held back by back-pressure wait on what it publishes.

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{lock, lower_thread_priority, read, write, FlusherMsg, Shared, WriterMsg};
use crate::datafile::{self, DataFile, FileMeta};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, TombstoneRecord};
use crate::memtable::Memtable;
use crate::run::{self, Run};
use crate::types::Lsn;
use crate::wal;

/// How often the flusher checks the memtable's age when nothing else wakes it.
const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

const MIN_AGE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The flusher thread: flushes on request, when the log writer froze a memtable, and when the
/// memtable is old; compacts after each.
pub(super) fn run_flusher(shared: &Shared, rx: Receiver<FlusherMsg>) {
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

impl Shared {
    /// Publishes how many memtables wait for their flush (wakes writers held back by it).
    pub(super) fn publish_frozen(&self, frozen: usize) {
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

    /// Asks the log writer to fsync and waits (from the flusher thread, never from async code).
    pub(super) fn sync_log(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send_to_writer(WriterMsg::Sync(reply))?;
        answer.blocking_recv().map_err(|_| Error::Closed)?
    }

    /// Flushes every frozen memtable, oldest first, after freezing the active one (if not empty)
    /// when `freeze_active` (an explicit or age-based flush; a size-triggered one flushes only what
    /// the log writer froze, so a busy memtable is not cut into tiny files).
    pub(super) fn flush_now(&self, freeze_active: bool) -> Result<()> {
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
    pub(super) fn flush_frozen(&self, freeze_active: bool) -> Result<()> {
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

    pub(super) fn flush_memtable(
        &self,
        memtable: &Arc<Memtable>,
        manifest: &mut Manifest,
    ) -> Result<()> {
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
    pub(super) fn covered_lsn(&self, memtable: &Arc<Memtable>) -> Lsn {
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
}
