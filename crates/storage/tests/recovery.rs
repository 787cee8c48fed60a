//! Recovery: reopening with and without flushes, torn tails, corruption in the middle, and the
//! poisoned log after a failed fsync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use common::*;
use duet_storage::{Error, LogRead, Origin, Storage, StorageOptions, Version};

/// Writes entries 1..=n: inserts into s1 (time = lsn), and a delete as entry 3.
async fn write_entries(storage: &Storage, n: i64) {
    for i in 1..=n {
        let ops = if i == 3 {
            delete(&series("s1"), 1, 1)
        } else {
            insert_i64("s1", &[i], &[i * 10])
        };
        common::write_local(storage, ops).await;
    }
}

/// Byte offsets of each record in a segment file.
fn record_offsets(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let mut pos = 8;
    let mut offsets = Vec::new();
    while pos + 8 <= bytes.len() {
        offsets.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    offsets
}

fn all_entries(storage: &Storage) -> Vec<duet_storage::LogEntry> {
    match storage.read_log(0, usize::MAX).unwrap() {
        LogRead::Entries(entries) => entries,
        LogRead::Truncated { available_from } => panic!("truncated at {available_from}"),
    }
}

#[tokio::test]
async fn reopen_without_flush_replays_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write_entries(&storage, 6).await;
    let pipe_version = Version {
        hlc: 5,
        instance: 9,
    };
    common::write_pipe(
        &storage,
        9,
        Some(pipe_version),
        insert_i64("s2", &[1], &[1]),
    )
    .await;
    let before = (
        scan_i64(&storage, "s1"),
        scan_i64(&storage, "s2"),
        all_entries(&storage),
    );
    let last_version = before.2[5].version;
    storage.close().await.unwrap();
    drop(storage);

    let storage = open(dir.path());
    assert_eq!(storage.head(), 7);
    assert_eq!(
        (
            scan_i64(&storage, "s1"),
            scan_i64(&storage, "s2"),
            all_entries(&storage)
        ),
        before
    );
    assert_eq!(
        scan_i64(&storage, "s1"),
        vec![(2, 20), (4, 40), (5, 50), (6, 60)]
    );
    let (lsn, version) = common::write_local(&storage, insert_i64("s1", &[7], &[70])).await;
    assert_eq!(lsn, 8);
    assert!(
        version > last_version,
        "the clock resumes above every recovered version"
    );
}

#[tokio::test]
async fn reopen_after_flush_gives_identical_scans() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write_entries(&storage, 4).await;
    storage.flush().await.unwrap();
    common::write_local(&storage, insert_i64("s1", &[2, 9], &[-2, 90])).await;
    common::write_local(&storage, delete(&series("s1"), 4, 4)).await;
    let before = scan_i64(&storage, "s1");
    assert_eq!(before, vec![(2, -2), (9, 90)]);
    let files = storage.data_files();
    let flushed = storage.flushed_lsn();
    assert_eq!(flushed, 4);
    drop(storage);

    let storage = open(dir.path());
    assert_eq!(scan_i64(&storage, "s1"), before);
    assert_eq!(storage.data_files(), files);
    assert_eq!(storage.flushed_lsn(), flushed);
    assert_eq!(storage.head(), 6);
    storage.flush().await.unwrap();
    drop(storage);
    let storage = open(dir.path());
    assert_eq!(scan_i64(&storage, "s1"), before);
    assert_eq!(storage.head(), 6);
    assert_eq!(storage.stats().memtable_points, 0);
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_committed_prefix_survives() {
    for cut in [1usize, 5, 8, 9, 20] {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        write_entries(&storage, 5).await;
        drop(storage);
        let segment = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&segment).unwrap().len();
        let last_record = *record_offsets(&segment).last().unwrap() as u64;
        let cut = (cut as u64).min(len - last_record - 1);
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(len - cut)
            .unwrap();

        for _ in 0..3 {
            let storage = open(dir.path());
            assert_eq!(storage.head(), 4, "cut {cut}");
            assert_eq!(scan_i64(&storage, "s1"), vec![(2, 20), (4, 40)]);
            assert_eq!(all_entries(&storage).len(), 4);
        }
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            last_record,
            "the torn tail is cut"
        );
        let storage = open(dir.path());
        let (lsn, _) = common::write_local(&storage, insert_i64("s1", &[5], &[55])).await;
        assert_eq!(lsn, 5);
        drop(storage);
        let storage = open(dir.path());
        assert_eq!(scan_i64(&storage, "s1"), vec![(2, 20), (4, 40), (5, 55)]);
    }
}

#[tokio::test]
async fn garbage_after_the_last_record_is_dropped() {
    let garbage: [&[u8]; 4] = [
        b"09pmu35w3a9mp53bao9upw3ab5up",
        &[0u8; 64],
        &[0xff; 3],
        // A plausible small length with a wrong checksum and nothing after it.
        &[12, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for bytes in garbage {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        write_entries(&storage, 5).await;
        drop(storage);
        let segment = segments(dir.path()).pop().unwrap();
        OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        for _ in 0..3 {
            let storage = open(dir.path());
            assert_eq!(storage.head(), 5);
            assert_eq!(scan_i64(&storage, "s1"), vec![(2, 20), (4, 40), (5, 50)]);
        }
    }
}

#[tokio::test]
async fn a_bad_checksum_followed_by_valid_records_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write_entries(&storage, 5).await;
    drop(storage);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offsets[1] + 8 + 3] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    match Storage::open(dir.path(), options()) {
        Err(Error::Corrupt {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, segment);
            assert_eq!(offset, offsets[1] as u64);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "nothing is cut from a corrupt log"
    );
}

#[tokio::test]
async fn a_bad_record_in_an_earlier_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let small_segments = StorageOptions {
        segment_bytes: 1,
        ..options()
    };
    let storage = Storage::open(dir.path(), small_segments.clone()).unwrap();
    write_entries(&storage, 3).await;
    drop(storage);
    let files = segments(dir.path());
    assert_eq!(
        files.len(),
        4,
        "one segment per entry plus the empty open one"
    );
    // Truncating the record of a non-last segment is not a torn tail.
    let first = &files[0];
    let len = std::fs::metadata(first).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let err = Storage::open(dir.path(), small_segments).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { file, .. } if file == first),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_fsync_writes_the_unsynced_records_again_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("s1", &[1], &[1])).await;
    // The fsync of this write fails and its record reads back as zeros, as if the disk had dropped
    // the page: the writer cuts the segment back and writes the record again from memory.
    storage.fail_next_sync();
    let (lsn, _) = common::write_local(&storage, insert_i64("s1", &[2], &[2])).await;
    assert_eq!(lsn, 2);
    common::write_local(&storage, insert_i64("s1", &[3], &[3])).await;
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (2, 2), (3, 3)]);
    drop(storage);
    // Recovery replays all three from the log: the rewritten record is whole.
    let storage = open(dir.path());
    assert_eq!(storage.head(), 3);
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(all_entries(&storage).len(), 3);
}

#[tokio::test]
async fn a_failed_fsync_in_periodic_mode_writes_every_unsynced_group_again() {
    let dir = tempfile::tempdir().unwrap();
    let periodic = StorageOptions {
        sync: duet_storage::SyncMode::Periodic(std::time::Duration::from_secs(3600)),
        ..options()
    };
    let storage = Storage::open(dir.path(), periodic.clone()).unwrap();
    for i in 1..=5 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    // Five groups wait for the periodic sync; the sync at close fails and loses their pages.
    storage.fail_next_sync();
    storage.close().await.unwrap();
    drop(storage);
    let storage = Storage::open(dir.path(), periodic).unwrap();
    assert_eq!(storage.head(), 5);
    assert_eq!(
        scan_i64(&storage, "s1"),
        (1..=5).map(|i| (i, i)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_failed_fsync_whose_rewrite_fails_too_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("s1", &[1], &[1])).await;
    storage.fail_next_syncs(2);
    let err = storage
        .write(Origin::Local, None, insert_i64("s1", &[2], &[2]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    let err = storage
        .write(Origin::Local, None, insert_i64("s1", &[3], &[3]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(matches!(storage.flush().await, Err(Error::Poisoned(_))));
    assert_eq!(storage.head(), 1, "the failed write was never applied");
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1)]);
    drop(storage);
    // After a restart the log is recovered and accepts writes again; the unacknowledged entry's
    // record reads back as zeros (the injected failure's dropped page), a torn tail recovery drops.
    let storage = open(dir.path());
    let (lsn, _) = common::write_local(&storage, insert_i64("s1", &[4], &[4])).await;
    assert_eq!(lsn, 2);
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (4, 4)]);
}

#[tokio::test]
async fn a_crashed_flush_leaves_no_visible_trace() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write_entries(&storage, 2).await;
    drop(storage);
    // A data file no manifest names, and a half-written manifest.
    std::fs::create_dir_all(dir.path().join("data/0")).unwrap();
    std::fs::write(
        dir.path().join("data/0/00000000000000000009.parquet"),
        b"PAR1 partial",
    )
    .unwrap();
    std::fs::write(dir.path().join("MANIFEST.tmp"), b"{ \"flushed").unwrap();
    let storage = open(dir.path());
    assert!(!dir
        .path()
        .join("data/0/00000000000000000009.parquet")
        .exists());
    assert!(!dir.path().join("MANIFEST.tmp").exists());
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 10), (2, 20)]);
    storage.flush().await.unwrap();
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 10), (2, 20)]);
}

#[tokio::test]
async fn replicated_entries_are_visible_before_their_fsync_and_local_ones_only_after() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let peer = duet_storage::Version {
        hlc: 1_000,
        instance: 2,
    };
    // A replicated entry is applied before its fsync: when the fsync (and its rewrite) fails its
    // sender gets an error (and will send it again), but readers may already have seen it.
    storage.fail_next_syncs(2);
    let err = storage
        .write(
            Origin::Pipe { instance: 2 },
            Some(peer),
            insert_i64("s1", &[1], &[1]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1)]);
    drop(storage);
    // A local write whose fsync fails for good is never seen.
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage.fail_next_syncs(2);
    let err = storage
        .write(Origin::Local, None, insert_i64("s1", &[1], &[1]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert_eq!(scan_i64(&storage, "s1"), Vec::<(i64, i64)>::new());
}

/// The lost batch of issue 8: a group commit held a local write and, after it, an entry from a
/// pipe large enough to fill the memtable. The pipe's entry was applied before the fsync and froze
/// the memtable; the local write, applied after the fsync, went into the next one. The frozen
/// memtable's largest LSN was above the local write's, so once it was flushed the flushed position
/// covered a write that no data file held, and recovery (which replays only past that position)
/// dropped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_write_sharing_a_group_commit_with_a_replicated_one_survives_a_flush_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        memtable_bytes: 4 * 1024,
        memtable_age: std::time::Duration::from_secs(3600),
        ..options()
    };
    let storage = Storage::open(dir.path(), options.clone()).unwrap();
    let pause = storage.pause_log_writer().unwrap();
    let local = {
        let storage = storage.clone();
        tokio::spawn(async move {
            storage
                .write(Origin::Local, None, insert_i64("local", &[1], &[7]))
                .await
        })
    };
    poll(
        "the local write to queue",
        std::time::Duration::from_secs(10),
        || (storage.queued_writes() == 1).then_some(()),
    )
    .unwrap();
    let times: Vec<i64> = (0..1_000).collect();
    let replicated = {
        let storage = storage.clone();
        let times = times.clone();
        tokio::spawn(async move {
            storage
                .write(
                    Origin::Pipe { instance: 2 },
                    Some(Version {
                        hlc: 100,
                        instance: 2,
                    }),
                    insert_i64("peer", &times, &times),
                )
                .await
        })
    };
    poll(
        "both writes to queue",
        std::time::Duration::from_secs(10),
        || (storage.queued_writes() == 2).then_some(()),
    )
    .unwrap();
    drop(pause);
    local.await.unwrap().unwrap();
    replicated.await.unwrap().unwrap();
    // The replicated entry filled the memtable; the flusher writes the frozen one without an
    // explicit flush (which would freeze and flush the active memtable as well).
    poll(
        "the frozen memtable's flush",
        std::time::Duration::from_secs(30),
        || (!storage.data_files().is_empty()).then_some(()),
    )
    .unwrap();
    assert_eq!(scan_i64(&storage, "local"), vec![(1, 7)]);
    // A crash: no close, no further flush.
    drop(storage);
    let storage = Storage::open(dir.path(), options).unwrap();
    assert_eq!(
        scan_i64(&storage, "local"),
        vec![(1, 7)],
        "the acknowledged local write was lost at recovery"
    );
    assert_eq!(scan_i64(&storage, "peer").len(), times.len());
}

/// Polls `condition` every 10 ms until it holds, or panics after `timeout` naming `what`.
fn poll(
    what: &str,
    timeout: std::time::Duration,
    condition: impl Fn() -> Option<()>,
) -> Option<()> {
    let deadline = std::time::Instant::now() + timeout;
    while condition().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Some(())
}
