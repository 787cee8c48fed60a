//! Back-pressure: when flushes fall behind, writes wait for them instead of piling up memtables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use duet_storage::{Error, Origin, Storage, StorageOptions};

fn tiny_memtables() -> StorageOptions {
    StorageOptions {
        instance: 1,
        // Every write fills a memtable, so each one freezes it.
        memtable_bytes: 1,
        max_frozen_memtables: 2,
        ..StorageOptions::default()
    }
}

/// A storage whose flushes are paused and whose local writes are already held back (three memtables
/// frozen, over the limit of two).
async fn held_back_storage(dir: &std::path::Path) -> Storage {
    let storage = Storage::open(dir, tiny_memtables()).unwrap();
    storage.pause_flushes(true);
    for t in 0..3 {
        common::write_local(&storage, insert_i64("s1", &[t], &[t])).await;
    }
    storage
}

/// A storage that merges every two small files, with its compactor paused.
fn paused_compactor(dir: &std::path::Path) -> Storage {
    let storage = Storage::open(
        dir,
        StorageOptions {
            compaction_files: 2,
            ..tiny_memtables()
        },
    )
    .unwrap();
    storage.pause_compactions(true);
    storage
}

/// One write on its own task, to watch whether it waits.
fn spawn_write(
    storage: &Storage,
    origin: Origin,
    version: Option<duet_storage::Version>,
    ops: Vec<duet_storage::Op>,
) -> tokio::task::JoinHandle<duet_storage::Result<(u64, duet_storage::Version)>> {
    let storage = storage.clone();
    tokio::spawn(async move { storage.write(origin, version, ops).await })
}

#[tokio::test]
async fn writes_wait_while_too_many_memtables_wait_for_their_flush() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), tiny_memtables()).unwrap();
    storage.pause_flushes(true);
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for t in 0..10 {
                common::write_local(&storage, insert_i64("s1", &[t], &[t])).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Writes pass while at most two memtables wait; the one that makes it three is the last.
    assert_eq!(storage.head(), 3);
    assert_eq!(storage.stats().frozen_memtables, 3);
    assert!(!writer.is_finished());
    assert_eq!(scan_i64(&storage, "s1"), vec![(0, 0), (1, 1), (2, 2)]);
    storage.pause_flushes(false);
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(storage.head(), 10);
    assert!(storage.stats().frozen_memtables <= 3);
    assert_eq!(
        scan_i64(&storage, "s1"),
        (0..10).map(|t| (t, t)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_waiting_write_fails_when_the_storage_closes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = held_back_storage(dir.path()).await;
    let waiting = spawn_write(&storage, Origin::Local, None, insert_i64("s1", &[9], &[9]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    storage.close().await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    drop(storage);
    // Nothing acknowledged was lost: the frozen memtables come back from the log.
    let storage = open(dir.path());
    assert_eq!(scan_i64(&storage, "s1"), vec![(0, 0), (1, 1), (2, 2)]);
}

#[tokio::test]
async fn flushes_and_writes_go_on_while_a_merge_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The first two flushes make a merge due; it stops with its inputs picked.
    let storage = paused_compactor(dir.path());
    for t in 0..8 {
        tokio::time::timeout(
            Duration::from_secs(10),
            storage.write(Origin::Local, None, insert_i64("s1", &[t], &[t])),
        )
        .await
        .expect("a write waited for a merge")
        .unwrap();
    }
    // Every write froze a memtable and at most two wait: the rest were flushed during the merge.
    assert!(storage.stats().data_files >= 5, "{:?}", storage.stats());
    storage.pause_compactions(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while storage.stats().data_files > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            storage.stats()
        );
        storage.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        scan_i64(&storage, "s1"),
        (0..8).map(|t| (t, t)).collect::<Vec<_>>()
    );
    drop(storage);
    let storage = open(dir.path());
    assert_eq!(
        scan_i64(&storage, "s1"),
        (0..8).map(|t| (t, t)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_compactor_that_falls_behind_holds_flushes_and_then_writes_back() {
    let dir = tempfile::tempdir().unwrap();
    let storage = paused_compactor(dir.path());
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for t in 0..40 {
                common::write_local(&storage, insert_i64("s1", &[t], &[t])).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Small files stop at 4 × compaction_files (plus the memtables of the flush that reached it);
    // then memtables wait, then writes. Without the limit all 40 writes would have been flushed.
    let stats = storage.stats();
    assert!(stats.data_files <= 8 + 3, "{stats:?}");
    assert!(!writer.is_finished(), "{stats:?}");
    storage.pause_compactions(false);
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        scan_i64(&storage, "s1"),
        (0..40).map(|t| (t, t)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn replicated_entries_pass_where_local_writes_are_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let storage = held_back_storage(dir.path()).await;
    let held = spawn_write(&storage, Origin::Local, None, insert_i64("s1", &[9], &[9]));
    // Three frozen (over the limit of two): local writes wait, a peer's entries still pass, up to
    // two memtables more.
    let peer = |hlc| duet_storage::Version { hlc, instance: 2 };
    for t in 3..5 {
        tokio::time::timeout(
            Duration::from_secs(10),
            storage.write(
                Origin::Pipe { instance: 2 },
                Some(peer(100 + t as u64)),
                insert_i64("s2", &[t], &[t]),
            ),
        )
        .await
        .expect("a replicated entry was held back with local writes")
        .unwrap();
    }
    assert_eq!(storage.stats().frozen_memtables, 5);
    let also_held = spawn_write(
        &storage,
        Origin::Pipe { instance: 2 },
        Some(peer(200)),
        insert_i64("s2", &[9], &[9]),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished() && !also_held.is_finished());
    storage.pause_flushes(false);
    for task in [held, also_held] {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(scan_i64(&storage, "s2"), vec![(3, 3), (4, 4), (9, 9)]);
}
