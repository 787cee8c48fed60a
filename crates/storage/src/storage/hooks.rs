//! Test hooks: faults no test can cause from outside the process (failing fsyncs and appends, a
//! compaction that "crashes"), and pauses that hold a thread at a chosen point.
//!
//! All but one exist only with the `test-hooks` feature, which the storage's and the engine's tests
//! enable. `fail_next_syncs` is always built: duetd's `DUET_FAULT_HOOKS=1` (`server::fault_hooks`,
//! set only by the fault soak) calls it at run time in the ordinary duetd binary the soak starts. The state the hooks set lives in `Shared` and is read by the threads
//! either way (an atomic load where nothing is ever set).

use std::sync::atomic::Ordering;

use super::Storage;
#[cfg(feature = "test-hooks")]
use super::{lock, CrashPoint, WriterMsg};
#[cfg(feature = "test-hooks")]
use crate::error::Result;

/// Holds the log writer paused (test hook, [`Storage::pause_log_writer`]); dropping it releases it.
#[cfg(feature = "test-hooks")]
pub struct LogWriterPause {
    _release: std::sync::mpsc::Sender<()>,
}

impl Storage {
    /// Test hook: makes the next fsync of the log fail, as a failing disk would: the records it
    /// should have made durable read back as zeros, and the error is reported. The log writer then
    /// writes them again from memory and syncs once more (see [`Storage::fail_next_syncs`]).
    #[cfg(feature = "test-hooks")]
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
    #[cfg(feature = "test-hooks")]
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
    #[cfg(feature = "test-hooks")]
    pub fn pause_compactions(&self, paused: bool) {
        self.inner
            .shared
            .compactions_paused
            .store(paused, Ordering::Release);
    }

    /// Test hook: whether a merge has picked its inputs and is held there by
    /// [`Storage::pause_compactions`] (a merge in progress, nothing of it written yet).
    #[cfg(feature = "test-hooks")]
    pub fn merge_held_by_pause(&self) -> bool {
        self.inner.shared.merge_held.load(Ordering::Acquire)
    }

    /// Test hook: the next append to the log writes half its batch and then fails as a full disk
    /// does (ENOSPC).
    #[cfg(feature = "test-hooks")]
    pub fn fail_next_append(&self) {
        self.inner
            .shared
            .fail_next_append
            .store(true, Ordering::Release);
    }

    /// Test hook: the log writer takes no message until the returned guard is dropped, so writes
    /// sent meanwhile share one group commit (see [`Storage::queued_writes`]).
    #[cfg(feature = "test-hooks")]
    pub fn pause_log_writer(&self) -> Result<LogWriterPause> {
        let (release, paused) = std::sync::mpsc::channel();
        self.inner.shared.send_to_writer(WriterMsg::Pause(paused))?;
        Ok(LogWriterPause { _release: release })
    }

    /// Test hook: writes sent to the log writer that it has not taken yet.
    #[cfg(feature = "test-hooks")]
    pub fn queued_writes(&self) -> usize {
        self.inner.shared.queued_writes.load(Ordering::Acquire)
    }

    /// Test hook: while paused the flusher flushes nothing, as if the disk could not keep up.
    #[cfg(feature = "test-hooks")]
    pub fn pause_flushes(&self, paused: bool) {
        let shared = &self.inner.shared;
        shared.flushes_paused.store(paused, Ordering::Release);
        if !paused {
            shared.request_flush();
        }
    }
}
