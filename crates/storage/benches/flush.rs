//! Flush throughput: how fast a full memtable becomes Parquet data files, which bounds sustained
//! ingest (writers are held back once `max_frozen_memtables` wait for their flush).
//!
//! Run: `cargo bench -p duet-storage --bench flush` (prints the median of `REPEATS` runs; set
//! `FLUSH_POINTS` to change the size, default 8 M points: 4 devices × 10 DOUBLE columns).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{InsertOp, Op, Origin, Storage, StorageOptions};

const DEVICES: usize = 4;
const COLUMNS: usize = 10;
const ROWS_PER_TABLET: usize = 1000;
const REPEATS: usize = 5;

fn tablet(device: usize, index: usize) -> Vec<Op> {
    let base = 1_700_000_000_000 + (index * ROWS_PER_TABLET) as i64;
    let times: Vec<i64> = (0..ROWS_PER_TABLET as i64).map(|r| base + r).collect();
    let columns = (0..COLUMNS)
        .map(|c| Column {
            data_type: DataType::Double,
            nulls: None,
            values: ColumnValues::Double(
                times
                    .iter()
                    .map(|t| ((t * 31 + c as i64 * 17) % 10_007) as f64 * 0.25)
                    .collect(),
            ),
        })
        .collect();
    vec![Op::Insert(InsertOp {
        device: format!("root.bench.d{device}"),
        aligned: false,
        measurements: (0..COLUMNS).map(|c| format!("s{c}")).collect(),
        columns,
        times,
    })]
}

fn one_run(runtime: &tokio::runtime::Runtime, points: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            instance: 1,
            // Everything stays in memory until the timed flush.
            memtable_bytes: usize::MAX / 2,
            ..StorageOptions::default()
        },
    )
    .unwrap();
    let tablets = points / (ROWS_PER_TABLET * COLUMNS * DEVICES);
    runtime.block_on(async {
        for i in 0..tablets {
            for d in 0..DEVICES {
                storage
                    .write(Origin::Local, None, tablet(d, i))
                    .await
                    .unwrap();
            }
        }
    });
    let started = Instant::now();
    runtime.block_on(storage.flush()).unwrap();
    let took = started.elapsed();
    runtime.block_on(storage.close()).unwrap();
    took
}

fn main() {
    let points: usize = std::env::var("FLUSH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut times: Vec<Duration> = (0..REPEATS).map(|_| one_run(&runtime, points)).collect();
    times.sort();
    let median = times[REPEATS / 2];
    println!(
        "flush of {points} points: median {:.0} ms = {:.2} M points/s (min {:.0} ms, max {:.0} ms, {REPEATS} runs)",
        median.as_secs_f64() * 1e3,
        points as f64 / median.as_secs_f64() / 1e6,
        times[0].as_secs_f64() * 1e3,
        times[REPEATS - 1].as_secs_f64() * 1e3,
    );
}
