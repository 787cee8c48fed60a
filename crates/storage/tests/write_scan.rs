//! Writes and scans: every data type, overwrite and tombstone semantics by version, limits, flush
//! equivalence, the Parquet file layout, and concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{InsertOp, Op, Origin, Storage, Version};

fn column_of(data_type: DataType, n: usize) -> Column {
    let values = match data_type.physical() {
        DataType::Boolean => ColumnValues::Boolean((0..n).map(|i| i % 2 == 1).collect()),
        DataType::Int32 => ColumnValues::Int32((0..n as i32).map(|i| i * 3 - 7).collect()),
        DataType::Int64 => ColumnValues::Int64((0..n as i64).map(|i| i << 33).collect()),
        DataType::Float => ColumnValues::Float((0..n).map(|i| i as f32 + 0.5).collect()),
        DataType::Double => ColumnValues::Double((0..n).map(|i| i as f64 * -1.25).collect()),
        _ => ColumnValues::Binary((0..n).map(|i| format!("text-{i}").into_bytes()).collect()),
    };
    Column {
        data_type,
        // Every third row is null: no point there.
        nulls: Some((0..n).map(|i| i % 3 == 0).collect()),
        values,
    }
}

/// The expected non-null rows of `column_of`, as (time, column with one value).
fn expected_points(column: &Column, times: &[i64]) -> (Vec<i64>, Vec<usize>) {
    let rows: Vec<usize> = (0..times.len()).filter(|r| !column.is_null(*r)).collect();
    (rows.iter().map(|r| times[*r]).collect(), rows)
}

fn select(values: &ColumnValues, rows: &[usize]) -> ColumnValues {
    match values {
        ColumnValues::Boolean(v) => ColumnValues::Boolean(rows.iter().map(|r| v[*r]).collect()),
        ColumnValues::Int32(v) => ColumnValues::Int32(rows.iter().map(|r| v[*r]).collect()),
        ColumnValues::Int64(v) => ColumnValues::Int64(rows.iter().map(|r| v[*r]).collect()),
        ColumnValues::Float(v) => ColumnValues::Float(rows.iter().map(|r| v[*r]).collect()),
        ColumnValues::Double(v) => ColumnValues::Double(rows.iter().map(|r| v[*r]).collect()),
        ColumnValues::Binary(v) => {
            ColumnValues::Binary(rows.iter().map(|r| v[*r].clone()).collect())
        }
    }
}

#[tokio::test]
async fn every_data_type_round_trips_with_nulls_as_absent_points_before_and_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let n = 20;
    let times: Vec<i64> = (0..n as i64).map(|i| 1_000 + i * 10).collect();
    let measurements: Vec<String> = DataType::ALL
        .iter()
        .map(|t| t.name().to_lowercase())
        .collect();
    let columns: Vec<Column> = DataType::ALL.iter().map(|t| column_of(*t, n)).collect();
    common::write_local(
        &storage,
        vec![Op::Insert(InsertOp {
            device: DEVICE.into(),
            aligned: true,
            measurements: measurements.clone(),
            columns: columns.clone(),
            times: times.clone(),
        })],
    )
    .await;
    let mut storage = Some(storage);
    for round in ["memtable", "data file", "reopened"] {
        if round == "data file" {
            let open = storage.as_ref().unwrap();
            open.flush().await.unwrap();
            assert_eq!(open.stats().memtable_points, 0);
        }
        if round == "reopened" {
            let open = storage.take().unwrap();
            assert!(matches!(
                Storage::open(dir.path(), options()),
                Err(duet_storage::Error::Locked(_))
            ));
            open.close().await.unwrap();
            drop(open);
            storage = Some(common::open(dir.path()));
        }
        let storage = storage.as_ref().unwrap();
        for ((data_type, measurement), column) in
            DataType::ALL.iter().zip(&measurements).zip(&columns)
        {
            let chunk = storage
                .scan(&series(measurement), i64::MIN, i64::MAX, usize::MAX, false)
                .unwrap();
            let (want_times, rows) = expected_points(column, &times);
            assert_eq!(chunk.data_type, Some(*data_type), "{round} {data_type}");
            assert_eq!(chunk.times, want_times, "{round} {data_type}");
            assert_eq!(
                chunk.values.values,
                select(&column.values, &rows),
                "{round} {data_type}"
            );
            assert_eq!(chunk.values.nulls, None);
            assert_eq!(
                storage.series_data_type(&series(measurement)),
                Some(*data_type)
            );
        }
    }
}

#[tokio::test]
async fn a_later_version_overwrites_and_an_older_pipe_write_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let (_, v1) = common::write_local(&storage, insert_i64("s1", &[1, 2], &[10, 20])).await;
    let (_, v2) = common::write_local(&storage, insert_i64("s1", &[2], &[21])).await;
    assert!(v2 > v1);
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 10), (2, 21)]);

    // A pipe write carrying a version lower than the stored point loses.
    let old = Version {
        hlc: v1.hlc - 1,
        instance: 2,
    };
    let (_, kept) = common::write_pipe(&storage, 2, Some(old), insert_i64("s1", &[2], &[-1])).await;
    assert_eq!(kept, old, "a pipe write keeps the sender's version");
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 10), (2, 21)]);

    // Re-applying an entry with its version changes nothing.
    for _ in 0..2 {
        common::write_pipe(&storage, 2, Some(v2), insert_i64("s1", &[2], &[21])).await;
    }
    let chunk = storage
        .scan(&series("s1"), 0, 10, usize::MAX, false)
        .unwrap();
    assert_eq!(pairs(&chunk), vec![(1, 10), (2, 21)]);
    assert_eq!(chunk.versions, vec![v1, v2]);

    // A pipe write from the future moves the clock: the next local write is newer still.
    let future = Version {
        hlc: v2.hlc + (1 << 30),
        instance: 2,
    };
    common::write_pipe(&storage, 2, Some(future), insert_i64("s1", &[3], &[30])).await;
    let (_, v_local) = common::write_local(&storage, insert_i64("s1", &[3], &[31])).await;
    assert!(v_local > future);
    assert_eq!(scan_i64(&storage, "s1").last(), Some(&(3, 31)));

    // The same holds when the winner sits in a data file and the loser in the memtable.
    storage.flush().await.unwrap();
    common::write_pipe(&storage, 2, Some(old), insert_i64("s1", &[1], &[-1])).await;
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 10), (2, 21), (3, 31)]);
}

#[tokio::test]
async fn tombstones_hide_older_points_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("s1", &[1, 2, 3, 4], &[1, 2, 3, 4])).await;
    let (_, before_delete) = common::write_local(&storage, insert_i64("s2", &[2], &[2])).await;
    storage.flush().await.unwrap();
    let (_, v_delete) = common::write_local(&storage, delete(&series("s1"), 2, 3)).await;
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (4, 4)]);
    assert_eq!(
        scan_i64(&storage, "s2"),
        vec![(2, 2)],
        "other series are untouched"
    );

    // A later insert inside the range survives the tombstone.
    common::write_local(&storage, insert_i64("s1", &[3], &[33])).await;
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (3, 33), (4, 4)]);

    // A pipe insert with a version older than the tombstone stays hidden.
    let older = Version {
        hlc: before_delete.hlc + 1,
        instance: 2,
    };
    assert!(older < v_delete);
    common::write_pipe(&storage, 2, Some(older), insert_i64("s1", &[2], &[22])).await;
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (3, 33), (4, 4)]);

    // Same answers from the data files, and after a restart.
    storage.flush().await.unwrap();
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (3, 33), (4, 4)]);
    storage.close().await.unwrap();
    drop(storage);
    let reopened = open(dir.path());
    assert_eq!(scan_i64(&reopened, "s1"), vec![(1, 1), (3, 33), (4, 4)]);
}

#[tokio::test]
async fn dropping_a_series_lets_it_return_with_another_type() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("s1", &[1, 2], &[1, 2])).await;
    let text = |t: i64| {
        vec![Op::Insert(InsertOp {
            device: DEVICE.into(),
            aligned: false,
            measurements: vec!["s1".into()],
            columns: vec![Column::text(["x"])],
            times: vec![t],
        })]
    };
    let err = storage
        .write(Origin::Local, None, text(3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, duet_storage::Error::TypeMismatch { .. }),
        "{err}"
    );
    common::write_local(&storage, delete(&series("s1"), i64::MIN, i64::MAX)).await;
    common::write_local(&storage, text(3)).await;
    let chunk = storage
        .scan(&series("s1"), i64::MIN, i64::MAX, 10, false)
        .unwrap();
    assert_eq!(chunk.data_type, Some(DataType::Text));
    assert_eq!(chunk.times, vec![3]);
}

#[tokio::test]
async fn malformed_writes_are_refused_before_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let mut ops = insert_i64("s1", &[1, 2], &[1]);
    let err = storage
        .write(Origin::Local, None, ops.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, duet_storage::Error::InvalidWrite(_)), "{err}");
    if let Op::Insert(insert) = &mut ops[0] {
        insert.columns[0].values = ColumnValues::Double(vec![1.0, 2.0]);
    }
    assert!(storage.write(Origin::Local, None, ops).await.is_err());
    assert_eq!(storage.head(), 0);
}

#[tokio::test]
async fn limit_and_descending_apply_after_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("s1", &[1, 3, 5], &[1, 3, 5])).await;
    storage.flush().await.unwrap();
    common::write_local(&storage, insert_i64("s1", &[4, 2, 6], &[4, 2, 6])).await;
    let scan = |start, end, limit, descending| {
        pairs(
            &storage
                .scan(&series("s1"), start, end, limit, descending)
                .unwrap(),
        )
    };
    assert_eq!(scan(0, 10, 3, false), vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(scan(0, 10, 2, true), vec![(6, 6), (5, 5)]);
    assert_eq!(scan(2, 4, 10, true), vec![(4, 4), (3, 3), (2, 2)]);
    assert_eq!(scan(7, 9, 10, false), vec![]);
    assert_eq!(scan(4, 2, 10, false), vec![]);
    assert_eq!(scan(0, 10, 0, false), vec![]);
    assert_eq!(
        pairs(&storage.scan("root.nope.s", 0, 10, 10, false).unwrap()),
        vec![]
    );
}

#[tokio::test]
async fn flush_preserves_scans_and_splits_files_by_partition() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let week = duet_storage::datafile::PARTITION_WIDTH;
    let times: Vec<i64> = vec![-5, 0, 7, week - 1, week, 3 * week + 2];
    let values: Vec<i64> = times.iter().map(|t| t * 2).collect();
    common::write_local(&storage, insert_i64("s1", &times, &values)).await;
    common::write_local(&storage, insert_i64("s2", &[1, 2], &[1, 2])).await;
    let before: Vec<_> = ["s1", "s2"].iter().map(|m| scan_i64(&storage, m)).collect();
    storage.flush().await.unwrap();
    let after: Vec<_> = ["s1", "s2"].iter().map(|m| scan_i64(&storage, m)).collect();
    assert_eq!(before, after);
    let files = storage.data_files();
    let mut partitions: Vec<i64> = files.iter().map(|f| f.partition).collect();
    partitions.sort();
    assert_eq!(partitions, vec![-1, 0, 1, 3]);
    assert_eq!(files.iter().map(|f| f.n_rows).sum::<u64>(), 8);
    assert!(files.iter().all(|f| f.max_lsn == 2 && f.path.exists()));
    assert_eq!(storage.flushed_lsn(), 2);
    // A narrow scan touches only what overlaps and still answers right.
    assert_eq!(
        pairs(&storage.scan(&series("s1"), week, week, 10, false).unwrap()),
        vec![(week, 2 * week)]
    );
    // Flushing an empty memtable is a no-op.
    storage.flush().await.unwrap();
    assert_eq!(storage.data_files().len(), 4);
}

#[tokio::test]
async fn flushed_parquet_is_readable_by_a_generic_reader() {
    use arrow_array::{Array, BinaryArray, Int64Array, StringArray, UInt64Array, UInt8Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    common::write_local(&storage, insert_i64("b", &[2, 1], &[20, 10])).await;
    common::write_local(
        &storage,
        vec![Op::Insert(InsertOp {
            device: DEVICE.into(),
            aligned: false,
            measurements: vec!["a".into()],
            columns: vec![Column::text(["hello"])],
            times: vec![5],
        })],
    )
    .await;
    storage.flush().await.unwrap();
    let files = storage.data_files();
    assert_eq!(files.len(), 1);
    let file = std::fs::File::open(&files[0].path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "series",
            "time",
            "version_hlc",
            "version_instance",
            "data_type",
            "v_boolean",
            "v_int32",
            "v_int64",
            "v_float",
            "v_double",
            "v_binary"
        ]
    );
    let col = |name: &str| batch.column_by_name(name).unwrap().clone();
    let series_col = col("series");
    let series_col = series_col.as_any().downcast_ref::<StringArray>().unwrap();
    let time = col("time");
    let time = time.as_any().downcast_ref::<Int64Array>().unwrap();
    let types = col("data_type");
    let types = types.as_any().downcast_ref::<UInt8Array>().unwrap();
    let ints = col("v_int64");
    let ints = ints.as_any().downcast_ref::<Int64Array>().unwrap();
    let bins = col("v_binary");
    let bins = bins.as_any().downcast_ref::<BinaryArray>().unwrap();
    let hlc = col("version_hlc");
    assert!(hlc.as_any().downcast_ref::<UInt64Array>().unwrap().value(0) > 0);
    // Sorted by (series, time).
    let rows: Vec<(String, i64, u8)> = (0..batch.num_rows())
        .map(|i| {
            (
                series_col.value(i).to_string(),
                time.value(i),
                types.value(i),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("root.sg.d1.a".to_string(), 5, DataType::Text.code()),
            ("root.sg.d1.b".to_string(), 1, DataType::Int64.code()),
            ("root.sg.d1.b".to_string(), 2, DataType::Int64.code()),
        ]
    );
    assert!(ints.is_null(0) && ints.value(1) == 10 && ints.value(2) == 20);
    assert!(bins.value(0) == b"hello" && bins.is_null(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let mut tasks = Vec::new();
    let lsns = Arc::new(std::sync::Mutex::new(Vec::new()));
    for task in 0..8i64 {
        let storage = storage.clone();
        let lsns = lsns.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50i64 {
                let t = task * 1_000 + i;
                let (lsn, _) = common::write_local(
                    &storage,
                    insert_i64(&format!("t{task}"), &[t, t + 500], &[i, -i]),
                )
                .await;
                lsns.lock().unwrap().push(lsn);
                if task == 0 && i == 25 {
                    storage.flush().await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut lsns = lsns.lock().unwrap().clone();
    lsns.sort();
    assert_eq!(
        lsns,
        (1..=400).collect::<Vec<u64>>(),
        "every write got its own LSN, no gaps"
    );
    assert_eq!(storage.head(), 400);
    for task in 0..8i64 {
        assert_eq!(
            scan_i64(&storage, &format!("t{task}")).len(),
            100,
            "task {task}"
        );
    }
    storage.close().await.unwrap();
    drop(storage);
    let storage = open(dir.path());
    for task in 0..8i64 {
        assert_eq!(
            scan_i64(&storage, &format!("t{task}")).len(),
            100,
            "task {task} after reopen"
        );
    }
}
