//! Series resolution is near-linear in the number of series, shown by counting its steps (devices
//! and measurements examined, series paths compared, hashed or looked up) rather than timing it:
//! planning `SELECT *`, `count(*)` and `SELECT LAST *` over 4× the series may take at most about 4×
//! the steps. The former resolution, which checked each new series against the list of those found
//! so far, took 16× (quadratic).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::sync::Arc;

use duet_engine::limits::{QueryControl, QueryLimits};
use duet_engine::schema::resolution_steps;
use duet_engine::{Engine, Output, SessionContext};
use duet_parser::Statement;
use duet_proto::types::DataType;

/// Measurements per device: series counts grow by adding devices.
const PER_DEVICE: usize = 100;

/// An engine over a fresh data directory with `devices` × [`PER_DEVICE`] INT64 series
/// `root.b.d<i>.s<j>` (no data: planning resolves series without reading any).
fn engine_with_series(dir: &std::path::Path, devices: usize) -> Arc<Engine> {
    let (_, engine) = common::open_engine(dir, 1);
    let specs: Vec<(String, DataType, Option<String>, Option<String>)> = (0..PER_DEVICE)
        .map(|j| (format!("s{j}"), DataType::Int64, None, None))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for i in 0..devices {
        rt.block_on(engine.create_series_rpc(&format!("root.b.d{i}"), false, &specs))
            .unwrap();
    }
    engine
}

/// Plans `sql` on this thread and returns the resolution steps it took and its column count.
fn steps_to_plan(engine: &Arc<Engine>, sql: &str) -> (u64, usize) {
    let Some(Statement::Select(select)) = duet_parser::parse(sql).unwrap().pop() else {
        panic!("not a SELECT: {sql}")
    };
    let control = QueryControl::new(QueryLimits {
        memory_bytes: 1 << 30,
        timeout: None,
    });
    let before = resolution_steps();
    let output = engine
        .select(
            &SessionContext {
                zone_id: "UTC".into(),
                ..Default::default()
            },
            &select,
            control,
        )
        .unwrap();
    let steps = resolution_steps() - before;
    let Output::Stream(stream) = output else {
        panic!("{sql}: expected a stream")
    };
    (steps, stream.names.len())
}

#[test]
fn resolving_four_times_the_series_takes_at_most_about_four_times_the_steps() {
    let small_dir = tempfile::tempdir().unwrap();
    let large_dir = tempfile::tempdir().unwrap();
    let small = engine_with_series(small_dir.path(), 20);
    let large = engine_with_series(large_dir.path(), 80);
    let mut superlinear = Vec::new();
    for (sql, small_columns, large_columns) in [
        ("select * from root.b.*", 2000, 8000),
        ("select count(*) from root.b.*", 2000, 8000),
        ("select * from root.**", 2000, 8000),
        // Two FROM paths: each series once.
        ("select count(*) from root.b.*, root.b.d1", 2000, 8000),
        // SELECT LAST has three columns, a row per series.
        ("select last * from root.b.*", 3, 3),
    ] {
        let (n, columns) = steps_to_plan(&small, sql);
        assert_eq!(columns, small_columns, "{sql}");
        let (n4, columns) = steps_to_plan(&large, sql);
        assert_eq!(columns, large_columns, "{sql}");
        // Every series is examined at least once.
        assert!(n >= 2000 && n4 >= 8000, "{sql}: {n} and {n4} steps");
        let ratio = n4 as f64 / n as f64;
        println!("{sql}: {n} steps for 2000 series, {n4} for 8000 (× {ratio:.2})");
        if ratio >= 6.0 {
            superlinear.push(format!("{sql}: {n} → {n4} steps (× {ratio:.2})"));
        }
    }
    assert!(
        superlinear.is_empty(),
        "4× the series took more than 6× the resolution steps: {superlinear:#?}"
    );
}
