//! Helpers shared by the storage integration tests: building writes and reading results compactly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{
    DeleteOp, InsertOp, Lsn, Op, Origin, SeriesChunk, Storage, StorageOptions, Version,
};

pub const DEVICE: &str = "root.sg.d1";

pub fn options() -> StorageOptions {
    StorageOptions {
        instance: 1,
        ..StorageOptions::default()
    }
}

pub fn open(dir: &Path) -> Storage {
    Storage::open(dir, options()).unwrap()
}

/// A local write that must succeed.
pub async fn write_local(storage: &Storage, ops: Vec<Op>) -> (Lsn, Version) {
    storage.write(Origin::Local, None, ops).await.unwrap()
}

/// A write that arrived through a pipe from `instance` (with the sender's version, if any); it
/// must succeed.
pub async fn write_pipe(
    storage: &Storage,
    instance: u64,
    version: Option<Version>,
    ops: Vec<Op>,
) -> (Lsn, Version) {
    storage
        .write(Origin::Pipe { instance }, version, ops)
        .await
        .unwrap()
}

/// One INT64 column `measurement` of `DEVICE`.
pub fn insert_i64(measurement: &str, times: &[i64], values: &[i64]) -> Vec<Op> {
    vec![Op::Insert(InsertOp {
        device: DEVICE.into(),
        aligned: false,
        measurements: vec![measurement.into()],
        columns: vec![Column {
            data_type: DataType::Int64,
            nulls: None,
            values: ColumnValues::Int64(values.to_vec()),
        }],
        times: times.to_vec(),
    })]
}

pub fn delete(series: &str, start: i64, end: i64) -> Vec<Op> {
    vec![Op::Delete(DeleteOp {
        series: vec![series.into()],
        start,
        end,
    })]
}

pub fn series(measurement: &str) -> String {
    format!("{DEVICE}.{measurement}")
}

/// `(time, value)` pairs of an INT64 scan.
pub fn pairs(chunk: &SeriesChunk) -> Vec<(i64, i64)> {
    match &chunk.values.values {
        ColumnValues::Int64(v) => chunk.times.iter().copied().zip(v.iter().copied()).collect(),
        other if chunk.times.is_empty() => {
            let _ = other;
            Vec::new()
        }
        other => panic!("not an INT64 chunk: {other:?}"),
    }
}

pub fn scan_i64(storage: &Storage, measurement: &str) -> Vec<(i64, i64)> {
    pairs(
        &storage
            .scan(&series(measurement), i64::MIN, i64::MAX, usize::MAX, false)
            .unwrap(),
    )
}

/// The WAL segment files, sorted.
pub fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// The runtime of the timing checks: two worker threads, as on the smallest machine Duet targets.
pub fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
