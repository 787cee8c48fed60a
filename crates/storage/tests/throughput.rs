//! Ingest throughput check (ignored by default): several concurrent clients writing 1000-row ×
//! 10-column INT64/DOUBLE tablets with an fsync per group commit, background flushes included.
//!
//! Run: `cargo test --release -p duet-storage --test throughput -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::{open, two_worker_runtime};
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{InsertOp, Op, Origin};

const CLIENTS: usize = 8;
const TABLETS_PER_CLIENT: usize = 100;
const ROWS: usize = 1000;
const COLUMNS: usize = 10;

fn tablet(client: usize, index: usize) -> Vec<Op> {
    let base = (index * ROWS) as i64;
    let times: Vec<i64> = (0..ROWS as i64).map(|r| base + r).collect();
    let columns = (0..COLUMNS)
        .map(|c| {
            if c % 2 == 0 {
                Column {
                    data_type: DataType::Int64,
                    nulls: None,
                    values: ColumnValues::Int64(times.iter().map(|t| t * c as i64).collect()),
                }
            } else {
                Column {
                    data_type: DataType::Double,
                    nulls: None,
                    values: ColumnValues::Double(times.iter().map(|t| *t as f64 * 0.5).collect()),
                }
            }
        })
        .collect();
    vec![Op::Insert(InsertOp {
        device: format!("root.bench.d{client}"),
        aligned: true,
        measurements: (0..COLUMNS).map(|c| format!("s{c}")).collect(),
        columns,
        times,
    })]
}

#[test]
#[ignore = "timing check; run explicitly in release mode"]
fn ingest_rate_with_fsync_per_group_commit() {
    let runtime = two_worker_runtime();
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    // Tablets are built before the clock starts: the engine receives them already decoded.
    let tablets: Vec<Vec<Vec<Op>>> = (0..CLIENTS)
        .map(|c| (0..TABLETS_PER_CLIENT).map(|i| tablet(c, i)).collect())
        .collect();
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for client_tablets in tablets {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                for ops in client_tablets {
                    storage.write(Origin::Local, None, ops).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let points = (CLIENTS * TABLETS_PER_CLIENT * ROWS * COLUMNS) as f64;
    let stats = storage.stats();
    eprintln!(
        "ingest: {points} points in {:.3} s = {:.2} M points/s ({} entries, {} data files so far, {} frozen)",
        elapsed.as_secs_f64(),
        points / elapsed.as_secs_f64() / 1e6,
        stats.head,
        stats.data_files,
        stats.frozen_memtables
    );
    let chunk = storage
        .scan("root.bench.d3.s4", i64::MIN, i64::MAX, usize::MAX, false)
        .unwrap();
    assert_eq!(chunk.len(), TABLETS_PER_CLIENT * ROWS);
    runtime.block_on(storage.close()).unwrap();
}
