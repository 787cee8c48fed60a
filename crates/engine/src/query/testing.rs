//! Test support for the query modules' unit tests: schemas built in memory, statements parsed, and an
//! engine over a temporary directory whose query results read as rows of text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use duet_catalog::{Catalog, ImmutableSettings};
use duet_parser::{Select, Statement};
use duet_proto::types::DataType;
use duet_storage::{Storage, StorageOptions};

use crate::engine::{Output, SessionContext};
use crate::schema::{DeviceInfo, MeasurementInfo, Schema};
use crate::Engine;

/// A schema of the given devices and their measurements (the database is the device's first two
/// nodes).
pub(crate) fn schema(devices: &[(&str, &[(&str, DataType)])]) -> Schema {
    let mut schema = Schema::default();
    for (device, measurements) in devices {
        schema.note_device_key(device);
        let database = crate::paths::split(device)
            .into_iter()
            .take(2)
            .collect::<Vec<_>>();
        let info: &mut DeviceInfo = schema.devices_mut().entry(device.to_string()).or_default();
        info.database = crate::paths::join(&database);
        for (m, t) in *measurements {
            info.measurements.insert(
                m.to_string(),
                MeasurementInfo {
                    data_type: *t,
                    encoding: "PLAIN".into(),
                    compressor: "LZ4".into(),
                },
            );
        }
    }
    schema
}

/// `sql`, which must be one SELECT.
pub(crate) fn select(sql: &str) -> Select {
    match duet_parser::parse(sql).unwrap().pop().unwrap() {
        Statement::Select(s) => *s,
        other => panic!("{sql} parsed as {other:?}"),
    }
}

/// The session of every test: UTC.
pub(crate) fn ctx() -> SessionContext {
    SessionContext {
        zone_id: "UTC".into(),
        ..Default::default()
    }
}

/// An engine over a temporary directory, with a runtime for its async statements.
pub(crate) struct TestDb {
    pub(crate) engine: Arc<Engine>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub(crate) fn open() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(
            &dir.path().join("catalog"),
            &ImmutableSettings {
                timestamp_precision: "ms".into(),
                cluster_id: None,
            },
        )
        .unwrap();
        let storage =
            Storage::open(&dir.path().join("storage"), StorageOptions::default()).unwrap();
        let engine = Engine::open(Arc::new(catalog), storage, "ms").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        TestDb {
            engine,
            runtime,
            _dir: dir,
        }
    }

    /// An engine over a temporary directory holding what `sql`'s statements write.
    pub(crate) fn with(sql: &str) -> TestDb {
        let db = TestDb::open();
        db.run(sql);
        db
    }

    /// The runtime the engine's statements run on.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Runs each `;`-separated statement, panicking on the first error.
    pub(crate) fn run(&self, sql: &str) {
        for statement in duet_parser::parse(sql).unwrap() {
            self.runtime
                .block_on(self.engine.execute(&ctx(), &statement))
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }

    /// The statement's result or error.
    pub(crate) fn try_query(&self, sql: &str) -> crate::Result<Output> {
        let statement = duet_parser::parse(sql).unwrap().pop().unwrap();
        self.runtime
            .block_on(self.engine.execute(&ctx(), &statement))
    }

    /// The result's header and rows as text, the time first where rows have one.
    pub(crate) fn query(&self, sql: &str) -> (Vec<String>, Vec<Vec<String>>) {
        match self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
            Output::Stream(mut s) => {
                let mut rows = Vec::new();
                // Small pages, so that paging across parts is exercised too.
                while let Some(page) = s.source.next_page(3, 1 << 20).unwrap() {
                    rows.extend(page.rendered_rows(s.has_time));
                }
                (s.names, rows)
            }
            Output::Table(t) => {
                let rows = t.rendered_rows();
                (t.names, rows)
            }
            Output::Done => panic!("{sql} gave no result"),
        }
    }

    /// The result's rows, each as one line of its cells (the time first) separated by spaces.
    pub(crate) fn lines(&self, sql: &str) -> Vec<String> {
        self.query(sql).1.iter().map(|r| r.join(" ")).collect()
    }

    /// The error message of a statement that must fail.
    pub(crate) fn error(&self, sql: &str) -> String {
        match self.try_query(sql) {
            Ok(_) => panic!("{sql} succeeded"),
            Err(e) => e.to_string(),
        }
    }
}
