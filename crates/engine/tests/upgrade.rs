//! A data directory written by an older Duet, whose catalog printed some series paths differently
//! (no back-quotes around a numeric node, back-quotes around `温度`), opens with every series
//! reachable by the path IoTDB prints, and `DELETE TIMESERIES` by that path removes its catalog row
//! for good (before the rename the row survived and the series came back at the next start).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use duet_catalog::{Catalog, SeriesRecord};
use duet_engine::Engine;

fn open(dir: &std::path::Path) -> (Arc<Catalog>, Arc<Engine>) {
    common::open_engine(dir, 1)
}

fn record(path: &str, device: &str) -> SeriesRecord {
    SeriesRecord {
        path: path.into(),
        database: "root.sg".into(),
        device: device.into(),
        data_type: "INT64".into(),
        encoding: "TS_2DIFF".into(),
        compressor: "LZ4".into(),
        aligned: false,
    }
}

/// One field of every series in the catalog, sorted.
fn sorted_field(catalog: &Catalog, field: fn(SeriesRecord) -> String) -> Vec<String> {
    let mut values: Vec<String> = catalog.series().unwrap().into_iter().map(field).collect();
    values.sort();
    values
}

#[tokio::test]
async fn series_paths_printed_by_an_older_version_are_renamed_and_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (catalog, engine) = open(dir.path());
        drop(engine);
        catalog.create_database("root.sg").unwrap();
        // As the older printer stored them.
        catalog
            .create_series(&[
                record("root.sg.12.s1", "root.sg.12"),
                record("root.sg.d1.`温度`", "root.sg.d1"),
                record("root.sg.d1.s2", "root.sg.d1"),
            ])
            .unwrap();
    }
    let (catalog, engine) = open(dir.path());
    assert_eq!(
        sorted_field(&catalog, |r| r.path),
        vec!["root.sg.`12`.s1", "root.sg.d1.s2", "root.sg.d1.温度"],
        "renamed to the form IoTDB prints"
    );
    // The device keys (and so the storage keys of the data) are unchanged.
    assert_eq!(
        sorted_field(&catalog, |r| r.device),
        vec!["root.sg.12", "root.sg.d1", "root.sg.d1"]
    );
    engine
        .delete_timeseries(&["root.sg.`12`.s1".into(), "root.sg.d1.温度".into()])
        .await
        .unwrap();
    drop(engine);
    drop(catalog);
    let (catalog, _engine) = open(dir.path());
    assert_eq!(
        sorted_field(&catalog, |r| r.path),
        vec!["root.sg.d1.s2"],
        "the deleted series do not come back"
    );
}
