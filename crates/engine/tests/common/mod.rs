//! Helpers shared by the engine's integration tests (and its examples, which include this file): an
//! engine over a fresh catalog and storage in a directory, statements run in a UTC session, their
//! output rendered as rows of text, and the query benchmark's data for the examples.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use duet_catalog::{Catalog, ImmutableSettings};
use duet_engine::write::{DeviceWrite, WriteColumn};
use duet_engine::{Engine, EngineError, Output, SessionContext};
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{Storage, StorageOptions};

/// A catalog (millisecond precision) and an engine over `dir/catalog` and `dir/storage`, the
/// storage versioning its writes as `instance`.
pub fn open_engine(dir: &Path, instance: u64) -> (Arc<Catalog>, Arc<Engine>) {
    open_engine_with(
        dir,
        StorageOptions {
            instance,
            ..StorageOptions::default()
        },
    )
}

/// A catalog (millisecond precision) and an engine over `dir/catalog` and `dir/storage`, the
/// storage opened with `options`.
pub fn open_engine_with(dir: &Path, options: StorageOptions) -> (Arc<Catalog>, Arc<Engine>) {
    let catalog = Catalog::open(
        &dir.join("catalog"),
        &ImmutableSettings {
            timestamp_precision: "ms".into(),
            cluster_id: None,
        },
    )
    .unwrap();
    let storage = Storage::open(&dir.join("storage"), options).unwrap();
    let catalog = Arc::new(catalog);
    let engine = Engine::open(catalog.clone(), storage, "ms").unwrap();
    (catalog, engine)
}

/// The variable `name` of the environment as a number, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes the query benchmark's rows to `device`: `rows` rows of `columns` DOUBLE series `s0`…, one
/// row per second, `batch` rows per write (as tablets of that many rows would arrive).
pub async fn write_bench_rows(
    engine: &Arc<Engine>,
    device: &str,
    rows: usize,
    columns: usize,
    batch: usize,
) {
    let measurements: Vec<String> = (0..columns).map(|c| format!("s{c}")).collect();
    for from in (0..rows).step_by(batch) {
        let n = batch.min(rows - from);
        let times: Vec<i64> = (from..from + n).map(|r| r as i64 * 1000).collect();
        let cols = (0..columns)
            .map(|c| {
                WriteColumn::Typed(Column {
                    data_type: DataType::Double,
                    nulls: None,
                    values: ColumnValues::Double(
                        (from..from + n)
                            .map(|r| ((r * 7919 + c * 104_729) % 1_000_003) as f64 / 1_000_003.0)
                            .collect(),
                    ),
                })
            })
            .collect();
        engine
            .write(vec![DeviceWrite {
                device: device.into(),
                aligned: false,
                measurements: measurements.clone(),
                columns: cols,
                times,
            }])
            .await
            .unwrap();
    }
}

/// A session in UTC.
pub fn utc() -> SessionContext {
    SessionContext {
        zone_id: "UTC".into(),
        ..Default::default()
    }
}

/// Runs the one statement `sql` in a UTC session.
pub async fn try_execute(engine: &Arc<Engine>, sql: &str) -> Result<Output, EngineError> {
    let statement = duet_parser::parse(sql).unwrap().pop().unwrap();
    engine.execute(&utc(), &statement).await
}

/// Runs `sql`, which must succeed.
pub async fn execute(engine: &Arc<Engine>, sql: &str) -> Output {
    try_execute(engine, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of an output as text: a stream's rows with their time first, a table's as they are.
pub fn rows(output: Output) -> Vec<Vec<String>> {
    match output {
        Output::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(page) = s.source.next_page(1024, 1 << 20).unwrap() {
                out.extend(page.rendered_rows(true));
            }
            out
        }
        Output::Table(t) => t.rendered_rows(),
        Output::Done => Vec::new(),
    }
}
