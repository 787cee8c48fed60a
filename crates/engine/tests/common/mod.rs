//! Helpers shared by the engine's integration tests (and its example, which includes this file): an
//! engine over a fresh catalog and storage in a directory, statements run in a UTC session, and their
//! output rendered as rows of text.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use duet_catalog::{Catalog, ImmutableSettings};
use duet_engine::{Engine, EngineError, Output, SessionContext};
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
