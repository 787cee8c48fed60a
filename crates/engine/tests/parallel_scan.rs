//! Aggregates over many series give the same answers whether their scans run one at a time or in
//! parallel (`duet_engine::query::set_scan_threads`), with points in files, in the memtable, written
//! out of order and partly deleted (issue 11).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use duet_engine::{query, Engine, Output};

async fn rows(engine: &Arc<Engine>, sql: &str) -> Vec<String> {
    let Output::Stream(mut s) = common::execute(engine, sql).await else {
        panic!("{sql}: not a stream");
    };
    let mut out = Vec::new();
    while let Some(page) = s.source.next_page(1000, 1 << 20).unwrap() {
        out.extend(page.rendered_rows(true).iter().map(|row| row.join(" ")));
    }
    out
}

#[tokio::test]
async fn parallel_scans_answer_what_serial_scans_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (_, engine) = common::open_engine(dir.path(), 0);
    // Enough points per series (40,000) that each series' scan is a task of its own.
    for d in 0..6 {
        for batch in 0..8 {
            let values: Vec<String> = (batch * 5000..(batch + 1) * 5000)
                .map(|t| format!("({}, {}, {})", t * 2 + d, (t * 31 + d) % 97, t % 5 == 0))
                .collect();
            common::execute(
                &engine,
                &format!(
                    "INSERT INTO root.p.d{d}(time, v, b) VALUES {}",
                    values.join(", ")
                ),
            )
            .await;
        }
        if d % 2 == 0 {
            common::execute(&engine, "FLUSH").await;
        }
    }
    common::execute(
        &engine,
        "INSERT INTO root.p.d1(time, v) VALUES (7, 500), (3, -1)",
    )
    .await;
    common::execute(
        &engine,
        "DELETE FROM root.p.d2.v WHERE time >= 10000 and time <= 25000",
    )
    .await;
    let queries = [
        "SELECT count(v), sum(v), avg(v), min_value(v), max_value(v), first_value(v), last_value(v), min_time(v), max_time(v), stddev(v), extreme(v) FROM root.p.*",
        "SELECT count(*), max_value(v), variance(v) FROM root.p.* GROUP BY ([0, 80100), 1500ms)",
        "SELECT avg(v), first_value(b), last_value(b) FROM root.p.* GROUP BY ([0, 80100), 4000ms) ORDER BY TIME DESC",
        "SELECT sum(v) FROM root.p.* GROUP BY ([0, 80100), 5000ms), LEVEL = 1",
        "SELECT count(v), mode(v) FROM root.p.* GROUP BY ([0, 80100), 10000ms)",
        "SELECT max_value(v) FROM root.p.* GROUP BY ([0, 80100), 1000ms) ALIGN BY DEVICE",
    ];
    for sql in queries {
        query::set_scan_threads(1);
        let serial = rows(&engine, sql).await;
        assert!(!serial.is_empty(), "{sql}");
        for threads in [2, 4] {
            query::set_scan_threads(threads);
            assert_eq!(
                rows(&engine, sql).await,
                serial,
                "{sql} with {threads} threads"
            );
        }
    }
    query::set_scan_threads(0);
}
