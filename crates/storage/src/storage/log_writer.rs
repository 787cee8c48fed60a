//! The log-writer thread: it alone owns the open segment and the clock, and turns queued writes into
//! group commits (one `write`, one fsync), applies them to the memtable in LSN order and answers
//! each caller. A failed fsync is answered by writing the unsynced records again, never by syncing
//! again; a full disk cuts the batch off the segment; anything else poisons the log.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{lock, points_in, read, write, Shared, WriteRequest, WriterMsg};
use crate::codec;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::options::SyncMode;
use crate::types::{Lsn, Op, Origin, Version};
use crate::wal::{self, SegmentWriter};

/// A group commit stops collecting queued writes at this many payload bytes.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// In periodic sync mode, the log is synced early once this many bytes wait for a sync (they are
/// kept in memory until then, to be written again if the sync fails).
const MAX_UNSYNCED_BYTES: usize = 64 << 20;

/// The log-writer thread's state: it alone touches the open segment and the clock.
pub(super) struct LogWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) segment: SegmentWriter,
    pub(super) next_lsn: Lsn,
    pub(super) hlc: Hlc,
    /// Length of the open segment at its last successful fsync: what the disk is known to hold.
    pub(super) synced_bytes: u64,
    /// The records written after that, kept so that a failed fsync can write them again: after a
    /// failed fsync the kernel may have dropped those pages, so syncing again proves nothing.
    pub(super) unsynced: Vec<u8>,
    pub(super) last_sync: Instant,
    /// Reused buffer of one group commit's records.
    pub(super) buf: Vec<u8>,
    /// The last rotation failed (the disk is full): the current segment grows until one succeeds.
    pub(super) rotation_failing: bool,
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
    pub(super) fn run(mut self, rx: Receiver<WriterMsg>) {
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
            #[cfg(feature = "test-hooks")]
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
                    #[cfg(feature = "test-hooks")]
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
