//! COUNT_IF under GROUP BY LEVEL and ALIGN BY DEVICE against IoTDB 2.0's own integration test
//! (`IoTDBCountIfIT`): the same data, and the headers, types and counts IoTDB answers (its headers
//! spell the function as the query did; Duet prints `count_if`). The refusals that remain are checked
//! too (issue 11).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use duet_engine::{Engine, EngineError, Output};
use duet_proto::types::DataType;

struct Db {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
}

/// IoTDB's data set: two devices, d2 without points at times 3 to 8.
async fn open() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let (_, engine) = common::open_engine(dir.path(), 0);
    let db = Db { _dir: dir, engine };
    for sql in [
        "CREATE TIMESERIES root.db.d1.s1 INT32",
        "CREATE TIMESERIES root.db.d1.s2 INT32",
        "CREATE TIMESERIES root.db.d2.s1 INT32",
        "CREATE TIMESERIES root.db.d2.s2 INT32",
        "INSERT INTO root.db.d1(timestamp, s1, s2) VALUES (1, 0, 0), (2, null, 0), (3, 0, 0), (4, 0, 0), (5, 1, 0), (6, 1, 0), (7, 1, 0), (8, 0, 0), (5000000000, 0, 0), (5000000001, 0, 0)",
        "INSERT INTO root.db.d2(timestamp, s1, s2) VALUES (1, 0, 0), (2, null, 0), (5000000000, 0, 0), (5000000001, 0, 0)",
    ] {
        db.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db
}

/// A result's header, types and rows (as text, without the time).
struct Answer {
    names: Vec<String>,
    types: Vec<DataType>,
    rows: Vec<Vec<String>>,
}

impl Db {
    async fn execute(&self, sql: &str) -> Result<Output, EngineError> {
        common::try_execute(&self.engine, sql).await
    }

    async fn query(&self, sql: &str) -> Answer {
        let Output::Stream(mut s) = self
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        else {
            panic!("{sql}: not a stream");
        };
        let mut rows = Vec::new();
        while let Some(page) = s.source.next_page(1024, 1 << 20).unwrap() {
            rows.extend(page.rendered_rows(false));
        }
        Answer {
            names: s.names,
            types: s.types,
            rows,
        }
    }

    async fn error(&self, sql: &str) -> EngineError {
        match self.execute(sql).await {
            Ok(_) => panic!("{sql} succeeded"),
            Err(e) => e,
        }
    }
}

#[tokio::test]
async fn group_by_level_merges_the_choices_whose_level_paths_agree() {
    let db = open().await;
    let a = db
        .query("select count_if(s1=0 & s2=0, 3) from root.db.* group by level = 1")
        .await;
    assert_eq!(
        a.names,
        ["count_if(root.db.*.s1 = 0 & root.db.*.s2 = 0, 3)"]
    );
    assert_eq!(a.types, [DataType::Int64]);
    assert_eq!(a.rows, [["4"]]);
    let a = db
        .query("select count_if(s1=0 & s2=0, keep>=3) from root.db.* group by level = 1")
        .await;
    assert_eq!(
        a.names,
        ["count_if(root.db.*.s1 = 0 & root.db.*.s2 = 0, keep >= 3)"]
    );
    assert_eq!(a.rows, [["4"]]);
    let a = db
        .query("select count_if(s1=0 & s2=0, 3) from root.db.* group by level = 2")
        .await;
    assert_eq!(
        a.names,
        [
            "count_if(root.*.d1.s1 = 0 & root.*.d1.s2 = 0, 3)",
            "count_if(root.*.d1.s1 = 0 & root.*.d2.s2 = 0, 3)",
            "count_if(root.*.d2.s1 = 0 & root.*.d1.s2 = 0, 3)",
            "count_if(root.*.d2.s1 = 0 & root.*.d2.s2 = 0, 3)",
        ]
    );
    assert_eq!(a.types, [DataType::Int64; 4]);
    assert_eq!(a.rows, [["2", "0", "1", "1"]]);
}

#[tokio::test]
async fn level_columns_of_count_if_and_other_aggregates_sit_side_by_side() {
    let db = open().await;
    // The same COUNT_IF twice under one level is one column (a choice is counted once), as the same
    // count(s1) twice is.
    let a = db
        .query("select count_if(s1=0 & s2=0, 3), count(s1), count_if(s1=0 & s2=0, 3) from root.db.* group by level = 1")
        .await;
    assert_eq!(
        a.names,
        [
            "count_if(root.db.*.s1 = 0 & root.db.*.s2 = 0, 3)",
            "count(root.db.*.s1)"
        ]
    );
    assert_eq!(a.rows, [["4", "12"]]);
}

#[tokio::test]
async fn align_by_device_resolves_the_predicate_in_each_device() {
    let db = open().await;
    let a = db
        .query("select count_if(s1=0 & s2=0, 3, 'ignoreNull'='true'), count_if(s1=1 & s2=0, 3) from root.db.* align by device")
        .await;
    assert_eq!(
        a.names,
        [
            "Device",
            "count_if(s1 = 0 & s2 = 0, 3, \"ignoreNull\"=\"true\")",
            "count_if(s1 = 1 & s2 = 0, 3)"
        ]
    );
    assert_eq!(a.types, [DataType::Text, DataType::Int64, DataType::Int64]);
    assert_eq!(a.rows, [["root.db.d1", "2", "1"], ["root.db.d2", "1", "0"]]);
    // An alias names the column; `'ignoreNull'='false'` lets d1's null at time 2 end its first run.
    let a = db
        .query("select count_if(s1=0 & s2=0, 3, 'ignoreNull'='false') as runs from root.db.* align by device")
        .await;
    assert_eq!(a.names, ["Device", "runs"]);
    assert_eq!(a.rows, [["root.db.d1", "1"], ["root.db.d2", "0"]]);
}

#[tokio::test]
async fn what_stays_refused_is_refused_clearly() {
    let db = open().await;
    for (sql, why) in [
        (
            "select count_if(s1>1, 1) from root.db.d1 group by ([1, 10), 3ms, 2ms)",
            "sliding window",
        ),
        (
            "select count_if(s1>1, 1) from root.db.* group by ([1, 10), 3ms, 2ms), level = 1",
            "sliding window",
        ),
        (
            "select count_if(s1>1, 1) from root.db.* group by ([1, 10), 3ms, 2ms) align by device",
            "sliding window",
        ),
        (
            "select count_if(d1.s1 = 0, 1) from root.db align by device",
            "names measurements of each device",
        ),
        (
            "select count_if(s1=0 & s2=0, 3) as runs from root.db.* group by level = 2",
            "one result column",
        ),
        // GROUP BY LEVEL with ALIGN BY DEVICE stays refused for every aggregate, COUNT_IF included.
        (
            "select count_if(s1 = 0, 1) from root.db.* group by level = 1 align by device",
            "align by device",
        ),
    ] {
        let e = db.error(sql).await;
        assert!(
            matches!(&e, EngineError::Semantic(m) if m.contains(why)),
            "{sql}: {e:?}"
        );
    }
}
