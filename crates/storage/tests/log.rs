//! The change log as pipes see it: reading entries in order, waking on appends, cursors pinning
//! segments, and the retention cap turning a lagging reader to the data files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use duet_storage::{LogHeader, LogRead, Op, OpKind, Origin, Storage, StorageOptions, Version};

fn entries(read: LogRead) -> Vec<duet_storage::LogEntry> {
    match read {
        LogRead::Entries(entries) => entries,
        LogRead::Truncated { available_from } => panic!("truncated at {available_from}"),
    }
}

#[tokio::test]
async fn read_log_returns_entries_in_order_with_origins_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    assert_eq!(storage.head(), 0);
    assert_eq!(entries(storage.read_log(0, 10).unwrap()), vec![]);
    let ops1 = insert_i64("s1", &[1, 2], &[1, 2]);
    let ops2 = delete(&series("s1"), 0, 1);
    let peer = Version {
        hlc: 77,
        instance: 2,
    };
    let (_, v1) = common::write_local(&storage, ops1.clone()).await;
    common::write_pipe(&storage, 2, Some(peer), ops2.clone()).await;
    let (_, v3) = common::write_local(&storage, ops1.clone()).await;
    assert_eq!(storage.head(), 3);

    let all = entries(storage.read_log(0, 100).unwrap());
    assert_eq!(all.iter().map(|e| e.lsn).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[0].origin, Origin::Local);
    assert_eq!(all[0].version, v1);
    assert_eq!(all[0].ops, ops1);
    assert_eq!(all[1].origin, Origin::Pipe { instance: 2 });
    assert_eq!(all[1].version, peer);
    assert_eq!(all[1].ops, ops2);
    assert_eq!(all[2].version, v3);

    assert_eq!(
        entries(storage.read_log(1, 1).unwrap())
            .iter()
            .map(|e| e.lsn)
            .collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(entries(storage.read_log(3, 10).unwrap()), vec![]);
    assert_eq!(entries(storage.read_log(99, 10).unwrap()), vec![]);
}

#[tokio::test]
async fn read_log_crosses_segments() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            segment_bytes: 200,
            ..options()
        },
    )
    .unwrap();
    for i in 0..20 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    assert!(storage.stats().wal_segments > 3);
    let lsns: Vec<u64> = entries(storage.read_log(2, 15).unwrap())
        .iter()
        .map(|e| e.lsn)
        .collect();
    assert_eq!(lsns, (3..=17).collect::<Vec<_>>());
}

#[tokio::test]
async fn subscribe_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let mut head = storage.subscribe();
    assert_eq!(*head.borrow_and_update(), 0);
    let writer = storage.clone();
    let task = tokio::spawn(async move {
        common::write_local(&writer, insert_i64("s1", &[1], &[1])).await;
    });
    tokio::time::timeout(Duration::from_secs(10), head.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*head.borrow_and_update(), 1);
    task.await.unwrap();
}

fn small_segments() -> StorageOptions {
    StorageOptions {
        segment_bytes: 1,
        ..options()
    }
}

#[tokio::test]
async fn cursors_pin_the_log_and_flushes_release_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), small_segments()).unwrap();
    storage.register_cursor("ab", 0).unwrap();
    for i in 1..=10 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    storage.flush().await.unwrap();
    assert_eq!(storage.flushed_lsn(), 10);
    assert_eq!(
        entries(storage.read_log(0, 100).unwrap()).len(),
        10,
        "the cursor pins everything"
    );

    storage.advance_cursor("ab", 4).unwrap();
    assert_eq!(
        storage.read_log(0, 100).unwrap(),
        LogRead::Truncated { available_from: 5 }
    );
    assert_eq!(entries(storage.read_log(4, 100).unwrap()).len(), 6);
    assert!(storage.advance_cursor("nobody", 4).is_err());

    storage.drop_cursor("ab");
    assert_eq!(
        storage.read_log(4, 100).unwrap(),
        LogRead::Truncated { available_from: 11 }
    );
    assert_eq!(entries(storage.read_log(10, 100).unwrap()), vec![]);
    common::write_local(&storage, insert_i64("s1", &[11], &[11])).await;
    assert_eq!(entries(storage.read_log(10, 100).unwrap()).len(), 1);

    // Unflushed entries are never released, cursor or not.
    for i in 12..=15 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    storage.register_cursor("late", 15).unwrap();
    storage.advance_cursor("late", 15).unwrap();
    assert_eq!(entries(storage.read_log(10, 100).unwrap()).len(), 5);
    drop(storage);
    let storage = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(scan_i64(&storage, "s1").len(), 15);
    assert_eq!(entries(storage.read_log(10, 100).unwrap()).len(), 5);
}

#[tokio::test]
async fn the_retention_cap_truncates_a_lagging_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            log_retention_cap_bytes: 300,
            ..small_segments()
        },
    )
    .unwrap();
    storage.register_cursor("slow", 0).unwrap();
    for i in 1..=10 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    storage.flush().await.unwrap();
    let available_from = match storage.read_log(0, 100).unwrap() {
        LogRead::Truncated { available_from } => available_from,
        LogRead::Entries(e) => panic!("expected truncation, got {} entries", e.len()),
    };
    assert!(
        available_from > 1 && available_from <= 11,
        "{available_from}"
    );
    let kept = entries(storage.read_log(available_from - 1, 100).unwrap());
    assert_eq!(kept.first().map(|e| e.lsn), Some(available_from));
    assert!(
        storage.stats().wal_bytes <= 300 + 200,
        "{:?}",
        storage.stats()
    );
    // The data is all still there, in the data files.
    assert_eq!(scan_i64(&storage, "s1").len(), 10);
}

#[tokio::test]
async fn a_memtable_over_its_size_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            memtable_bytes: 4096,
            ..options()
        },
    )
    .unwrap();
    for i in 0..10 {
        let times: Vec<i64> = (i * 100..i * 100 + 100).collect();
        common::write_local(&storage, insert_i64("s1", &times, &times)).await;
    }
    // Poll for the background flush (bounded), then check nothing was lost.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while storage.data_files().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!storage.data_files().is_empty());
    let points = scan_i64(&storage, "s1");
    assert_eq!(points.len(), 1000);
    assert!(points.iter().all(|(t, v)| t == v));
}

#[tokio::test]
async fn an_old_memtable_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            memtable_age: Duration::from_millis(20),
            ..options()
        },
    )
    .unwrap();
    common::write_local(&storage, insert_i64("s1", &[1], &[1])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while storage.flushed_lsn() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(storage.flushed_lsn(), 1);
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1)]);
}

#[tokio::test]
async fn periodic_sync_acknowledges_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let periodic = StorageOptions {
        sync: duet_storage::SyncMode::Periodic(Duration::from_millis(50)),
        ..options()
    };
    let storage = Storage::open(dir.path(), periodic.clone()).unwrap();
    for i in 1..=20 {
        common::write_local(&storage, insert_i64("s1", &[i], &[i])).await;
    }
    storage.close().await.unwrap();
    assert!(matches!(
        storage
            .write(Origin::Local, None, insert_i64("s1", &[0], &[0]))
            .await,
        Err(duet_storage::Error::Closed)
    ));
    drop(storage);
    let storage = Storage::open(dir.path(), periodic).unwrap();
    assert_eq!(storage.head(), 20);
    assert_eq!(scan_i64(&storage, "s1").len(), 20);
}

#[tokio::test]
async fn headers_say_what_the_entries_say_without_their_operations() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), small_segments()).unwrap();
    let peer = Version {
        hlc: 5,
        instance: 2,
    };
    let mut two_ops = insert_i64("s1", &[1], &[1]);
    two_ops.extend(delete(&series("s2"), 0, 9));
    let writes: Vec<(Origin, Option<Version>, Vec<Op>)> = vec![
        (Origin::Local, None, insert_i64("s1", &[1, 2], &[1, 2])),
        (
            Origin::Pipe { instance: 2 },
            Some(peer),
            delete(&series("s1"), 0, 1),
        ),
        (Origin::Local, None, two_ops),
    ];
    for _ in 0..40 {
        for (origin, version, ops) in &writes {
            storage
                .write(origin.clone(), *version, ops.clone())
                .await
                .unwrap();
        }
    }
    let kind = |op: &Op| match op {
        Op::Insert(_) => OpKind::Insert,
        Op::Delete(_) => OpKind::Delete,
        Op::Meta(_) => OpKind::Meta,
    };
    let expected: Vec<LogHeader> = entries(storage.read_log(0, 1000).unwrap())
        .iter()
        .map(|e| LogHeader {
            lsn: e.lsn,
            origin: e.origin.clone(),
            version: e.version,
            ops: e.ops.len(),
            first_op: e.ops.first().map(kind),
        })
        .collect();
    assert_eq!(expected.len(), 120);
    // Across segments, in any slice.
    let LogRead::Entries(headers) = storage.read_log_headers(0, 1000).unwrap() else {
        panic!("truncated")
    };
    assert_eq!(headers, expected);
    let LogRead::Entries(slice) = storage.read_log_headers(50, 7).unwrap() else {
        panic!("truncated")
    };
    assert_eq!(slice, expected[50..57].to_vec());
}
