//! Compaction: a partition's files merge into one with the same scans, the merged file reports the
//! newest input LSN, tombstones outlive the points they hid, a crash at any step leaves exactly
//! one complete file set visible, and closing abandons a merge in progress with its inputs intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use duet_storage::{Storage, StorageOptions, Version};
use duet_testkit::wait_for;

fn options() -> StorageOptions {
    StorageOptions {
        instance: 1,
        compaction_files: 4,
        ..StorageOptions::default()
    }
}

/// Every Parquet file under `dir/data`, sorted.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for partition in std::fs::read_dir(dir.join("data")).unwrap() {
        let partition = partition.unwrap().path();
        if partition.is_dir() {
            for file in std::fs::read_dir(&partition).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|e| e == "parquet") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

/// Four flushes into one partition, with overwrites, a pipe write with an old version and a
/// delete, leaving `compaction_files - 1` files plus what the last flush adds. Returns the
/// version of the delete.
async fn four_flushes(storage: &Storage, pause_before_last: bool) -> Version {
    common::write_local(storage, insert_i64("s1", &[1, 2, 3, 4], &[1, 2, 3, 4])).await;
    common::write_local(storage, insert_i64("s2", &[1, 2], &[100, 200])).await;
    storage.flush().await.unwrap();
    common::write_local(storage, insert_i64("s1", &[2, 5], &[22, 5])).await;
    storage.flush().await.unwrap();
    let (_, deleted) = common::write_local(storage, delete(&series("s1"), 3, 4)).await;
    common::write_pipe(
        storage,
        2,
        Some(Version {
            hlc: 1,
            instance: 2,
        }),
        insert_i64("s1", &[1, 6], &[-1, 6]),
    )
    .await;
    storage.flush().await.unwrap();
    assert_eq!(
        storage.data_files().len(),
        3,
        "below the threshold nothing merges"
    );
    common::write_local(storage, insert_i64("s1", &[7], &[7])).await;
    if !pause_before_last {
        storage.flush().await.unwrap();
    }
    deleted
}

const EXPECTED_S1: [(i64, i64); 5] = [(1, 1), (2, 22), (5, 5), (6, 6), (7, 7)];

#[tokio::test]
async fn a_full_partition_merges_into_one_file_with_identical_scans() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    let deleted = four_flushes(&storage, false).await;
    let files = storage.data_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].max_lsn, storage.head(), "the newest input's lsn");
    assert_eq!(files[0].n_rows, 7, "hidden points are dropped");
    assert_eq!(parquet_files(dir.path()), vec![files[0].path.clone()]);
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    assert_eq!(scan_i64(&storage, "s2"), vec![(1, 100), (2, 200)]);
    // The tombstone outlives the points it hid: a late pipe write older than it stays hidden.
    common::write_pipe(
        &storage,
        2,
        Some(Version {
            hlc: deleted.hlc - 1,
            instance: 2,
        }),
        insert_i64("s1", &[3], &[-3]),
    )
    .await;
    storage.flush().await.unwrap();
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    storage.close().await.unwrap();
    drop(storage);
    let storage = Storage::open(dir.path(), options()).unwrap();
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    assert_eq!(storage.data_files().len(), 2);
}

#[tokio::test]
async fn a_scan_keeps_reading_files_that_a_compaction_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    four_flushes(&storage, true).await;
    // Scans interleaved with the merge: each sees one complete file set.
    let reader = {
        let storage = storage.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..200 {
                assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
            }
        })
    };
    storage.flush().await.unwrap();
    reader.await.unwrap();
    assert_eq!(storage.data_files().len(), 1);
    assert_eq!(
        parquet_files(dir.path()).len(),
        1,
        "replaced files are deleted"
    );
}

#[tokio::test]
async fn a_crash_before_the_manifest_switch_keeps_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    four_flushes(&storage, true).await;
    storage.crash_next_compaction(false);
    storage.flush().await.unwrap();
    let old = storage.data_files();
    assert_eq!(old.len(), 4);
    assert_eq!(
        parquet_files(dir.path()).len(),
        5,
        "the merged file is written"
    );
    drop(storage);
    let storage = Storage::open(dir.path(), options()).unwrap();
    let paths: Vec<PathBuf> = storage.data_files().into_iter().map(|f| f.path).collect();
    assert_eq!(
        paths,
        old.iter().map(|f| f.path.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        parquet_files(dir.path()).len(),
        4,
        "the unnamed merged file is removed"
    );
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    assert_eq!(scan_i64(&storage, "s2"), vec![(1, 100), (2, 200)]);
    // The next flush finishes the job.
    storage.flush().await.unwrap();
    assert_eq!(storage.data_files().len(), 1);
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
}

#[tokio::test]
async fn a_crash_after_the_manifest_switch_keeps_only_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    four_flushes(&storage, true).await;
    let head = storage.head();
    storage.crash_next_compaction(true);
    storage.flush().await.unwrap();
    assert_eq!(
        storage.data_files().len(),
        4,
        "the crashed instance never swapped"
    );
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    drop(storage);
    let storage = Storage::open(dir.path(), options()).unwrap();
    let files = storage.data_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].max_lsn, head);
    assert_eq!(parquet_files(dir.path()), vec![files[0].path.clone()]);
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    assert_eq!(scan_i64(&storage, "s2"), vec![(1, 100), (2, 200)]);
}

/// Closing while a merge is in progress (its inputs picked, nothing merged yet) abandons the merge:
/// close returns without writing a merged file or switching the manifest, and the reopened storage
/// has the same input files and every point. (Before the closing check in the merge loop, close
/// let the held merge run to its end and found one merged file.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_abandons_a_merge_in_progress_and_keeps_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    four_flushes(&storage, true).await;
    storage.pause_compactions(true);
    // The fourth flush makes the partition due; the flush answers once the merge ends.
    let flush = {
        let storage = storage.clone();
        tokio::spawn(async move { storage.flush().await })
    };
    wait_for(
        "the merge to pick its inputs",
        Duration::from_secs(30),
        || storage.merge_held_by_pause().then_some(()),
    )
    .unwrap();
    let inputs = storage.data_files();
    assert_eq!(inputs.len(), 4, "{inputs:?}");
    let input_paths: Vec<PathBuf> = inputs.iter().map(|f| f.path.clone()).collect();
    storage.close().await.unwrap();
    // Closing released the merge; it stopped before writing anything.
    assert!(!storage.merge_held_by_pause());
    let after: Vec<PathBuf> = storage.data_files().into_iter().map(|f| f.path).collect();
    assert_eq!(after, input_paths, "the merge was not finished");
    let mut sorted = input_paths.clone();
    sorted.sort();
    assert_eq!(
        parquet_files(dir.path()),
        sorted,
        "no merged file was written"
    );
    flush.await.unwrap().unwrap();
    drop(storage);
    let storage = Storage::open(dir.path(), options()).unwrap();
    let reopened: Vec<PathBuf> = storage.data_files().into_iter().map(|f| f.path).collect();
    assert_eq!(reopened, input_paths, "the inputs are intact");
    assert_eq!(scan_i64(&storage, "s1"), EXPECTED_S1);
    assert_eq!(scan_i64(&storage, "s2"), vec![(1, 100), (2, 200)]);
}

#[tokio::test]
async fn a_merge_drops_the_points_a_ttl_expired() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options()).unwrap();
    // s1's points before time 5 have expired; s2 has no TTL.
    storage.set_retention(Box::new(|series| series.ends_with("s1").then_some(5)));
    four_flushes(&storage, false).await;
    let files = storage.data_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].n_rows, 5, "s1's points 1 and 2 are gone");
    // The storage itself hides nothing (queries apply the TTL): what is left is what the merge kept.
    assert_eq!(scan_i64(&storage, "s1"), vec![(5, 5), (6, 6), (7, 7)]);
    assert_eq!(scan_i64(&storage, "s2"), vec![(1, 100), (2, 200)]);
}
