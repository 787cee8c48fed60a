//! Opening a storage directory: the lock, the manifest, orphan files removed, the log checked (a
//! torn tail cut) and replayed above the flushed position into memtables, the clock resumed above
//! every version seen, then the log writer, flusher and compactor started.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use super::compactor::run_compactor;
use super::flusher::run_flusher;
use super::log_writer::LogWriter;
use super::{Inner, Shared, Storage, StorageMetrics, Tree};
use crate::datafile::DataFile;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::manifest::Manifest;
use crate::options::StorageOptions;
use crate::wal::{self, SegmentWriter};

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
