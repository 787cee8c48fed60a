//! `Storage::summarize`: which spans of a series an aggregate may take from a data file's summary
//! and which it must scan (issue 11). A summary stands only for a file whose span nothing else
//! touches: no other file or memtable with points in it, no deletion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use duet_storage::{SeriesPiece, StatValue};

fn kinds(pieces: &[SeriesPiece]) -> Vec<(char, i64, i64)> {
    pieces
        .iter()
        .map(|p| match p {
            SeriesPiece::Summary { start, end, .. } => ('S', *start, *end),
            SeriesPiece::Scan { start, end } => ('s', *start, *end),
        })
        .collect()
}

#[tokio::test]
async fn disjoint_flushed_files_are_summarised_and_everything_else_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let s1 = series("s1");
    write_local(&storage, insert_i64("s1", &[10, 20, 30], &[5, -7, 7])).await;
    storage.flush().await.unwrap();
    write_local(&storage, insert_i64("s1", &[40, 50], &[1, 2])).await;
    storage.flush().await.unwrap();
    // Two files, nothing else: both summarised, the gaps scanned.
    let pieces = storage.summarize(&s1, 0, 100);
    assert_eq!(
        kinds(&pieces),
        vec![
            ('s', 0, 9),
            ('S', 10, 30),
            ('s', 31, 39),
            ('S', 40, 50),
            ('s', 51, 100)
        ]
    );
    let SeriesPiece::Summary { stats, .. } = &pieces[1] else {
        panic!("{pieces:?}")
    };
    assert_eq!(stats.count, 3);
    assert_eq!(stats.sum, 5.0);
    assert_eq!(
        (stats.min, stats.max),
        (StatValue::Int(-7), StatValue::Int(7))
    );
    assert_eq!(stats.extreme, StatValue::Int(7));
    assert_eq!((stats.first_time, stats.last_time), (10, 30));
    // A range that cuts a file: that file is scanned.
    assert_eq!(kinds(&storage.summarize(&s1, 15, 100))[0], ('s', 15, 39));
    // A memtable point inside the first file's span: it is scanned; the second file still counts.
    write_local(&storage, insert_i64("s1", &[20], &[100])).await;
    assert_eq!(
        kinds(&storage.summarize(&s1, 0, 100)),
        vec![('s', 0, 39), ('S', 40, 50), ('s', 51, 100)]
    );
    // A deletion touching the second file's span: nothing is summarised.
    write_local(&storage, delete(&s1, 45, 45)).await;
    assert_eq!(kinds(&storage.summarize(&s1, 0, 100)), vec![('s', 0, 100)]);
    // Another series is not affected by any of it.
    write_local(&storage, insert_i64("s2", &[1, 2], &[1, 2])).await;
    storage.flush().await.unwrap();
    assert_eq!(
        kinds(&storage.summarize(&series("s2"), 1, 2)),
        vec![('S', 1, 2)]
    );
}

#[tokio::test]
async fn a_memtable_in_time_order_is_summarised_as_it_grows_and_not_once_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let s1 = series("s1");
    write_local(&storage, insert_i64("s1", &[10, 20, 30], &[5, -7, 7])).await;
    let summary = |pieces: &[SeriesPiece]| match pieces {
        [SeriesPiece::Summary { stats, .. }] => *stats,
        other => panic!("{:?}", kinds(other)),
    };
    let first = summary(&storage.summarize(&s1, 0, 100)[1..2]);
    assert_eq!((first.count, first.sum), (3, 5.0));
    // Points appended later in time are folded into the running summary.
    write_local(&storage, insert_i64("s1", &[40, 50], &[-9, 1])).await;
    let pieces = storage.summarize(&s1, 0, 100);
    assert_eq!(
        kinds(&pieces),
        vec![('s', 0, 9), ('S', 10, 50), ('s', 51, 100)]
    );
    let grown = summary(&pieces[1..2]);
    assert_eq!((grown.count, grown.sum), (5, -3.0));
    assert_eq!(
        (grown.min, grown.max, grown.extreme),
        (StatValue::Int(-9), StatValue::Int(7), StatValue::Int(-9))
    );
    assert_eq!((grown.first_time, grown.last_time), (10, 50));
    assert_eq!(grown.last, StatValue::Int(1));
    // A deletion touching the span: it is scanned.
    write_local(&storage, delete(&s1, 40, 40)).await;
    assert_eq!(kinds(&storage.summarize(&s1, 0, 100)), vec![('s', 0, 100)]);
    // A point out of order (or rewriting a time): the memtable is scanned from then on.
    write_local(&storage, insert_i64("s2", &[10, 20], &[1, 2])).await;
    assert_eq!(
        kinds(&storage.summarize(&series("s2"), 0, 30))[1],
        ('S', 10, 20)
    );
    write_local(&storage, insert_i64("s2", &[15], &[3])).await;
    assert_eq!(
        kinds(&storage.summarize(&series("s2"), 0, 30)),
        vec![('s', 0, 30)]
    );
    write_local(&storage, insert_i64("s3", &[10, 20], &[1, 2])).await;
    write_local(&storage, insert_i64("s3", &[20], &[5])).await;
    assert_eq!(
        kinds(&storage.summarize(&series("s3"), 0, 30)),
        vec![('s', 0, 30)]
    );
}

#[tokio::test]
async fn a_long_file_overlapping_a_file_beyond_its_neighbour_is_scanned_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // No merge: the four files stay as flushed.
    let storage = duet_storage::Storage::open(
        dir.path(),
        duet_storage::StorageOptions {
            compaction_files: 100,
            ..options()
        },
    )
    .unwrap();
    let s1 = series("s1");
    // Files spanning [10, 100], [20, 30], [40, 50] and [200, 210]: the long first one overlaps the
    // third though the second lies between them in order of first time; only the last stands alone.
    for times in [&[10, 100][..], &[20, 30], &[40, 50], &[200, 210]] {
        write_local(&storage, insert_i64("s1", times, &[1, 2])).await;
        storage.flush().await.unwrap();
    }
    assert_eq!(
        kinds(&storage.summarize(&s1, 0, 300)),
        vec![('s', 0, 199), ('S', 200, 210), ('s', 211, 300)]
    );
}
