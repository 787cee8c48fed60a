//! Measures the latency of small queries (answered from summaries, a slice, LAST) with the data in
//! the memtable against the same data flushed, side by side (issue 11: memtable reads at least as
//! fast as flushed reads): `cargo run --release -p duet-engine --example memtable_latency`. Loads
//! ROWS [2000000] rows of COLUMNS [10] DOUBLE series, one row per second, into two engines over
//! temporary directories, flushes the second, then runs each query REPEATS [400] times on each,
//! alternating, and prints medians and quartiles in µs (wall time, in process: no client, no
//! socket). ONLY=<text> keeps the queries whose name contains the text; PLACES=memtable (or
//! flushed) queries only that engine (for a profiler).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Instant;

use duet_engine::{Engine, Output};
use duet_storage::StorageOptions;

/// The engine's integration-test helpers: opening an engine in a directory, the benchmark's rows.
#[path = "../tests/common/mod.rs"]
mod common;

/// Runs one statement and reads every page; returns the rows.
async fn run(engine: &Arc<Engine>, statement: &duet_parser::Statement) -> usize {
    match engine.execute(&common::utc(), statement).await.unwrap() {
        Output::Stream(mut s) => {
            let mut rows = 0;
            while let Some(page) = s.source.next_page(100_000, 64 << 20).unwrap() {
                rows += page.times.len();
            }
            rows
        }
        Output::Table(t) => t.n_rows,
        _ => 0,
    }
}

async fn open(dir: &std::path::Path, rows: usize, columns: usize) -> Arc<Engine> {
    let (_, engine) = common::open_engine_with(
        dir,
        StorageOptions {
            memtable_bytes: 4 << 30,
            ..StorageOptions::default()
        },
    );
    // The query benchmark's tablets: 50,000 rows each.
    common::write_bench_rows(&engine, "root.bench.d", rows, columns, 50_000).await;
    engine
}

fn quartiles(mut us: Vec<f64>) -> String {
    if us.is_empty() {
        return "-".into();
    }
    us.sort_by(f64::total_cmp);
    let at = |q: usize| us[(us.len() * q / 4).min(us.len() - 1)];
    format!("{:9.1} ({:.1}–{:.1})", at(2), at(1), at(3))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = common::env_number("ROWS", 2_000_000);
    let columns = common::env_number("COLUMNS", 10);
    let repeats = common::env_number("REPEATS", 400);
    let only = std::env::var("ONLY").unwrap_or_default();
    let places = std::env::var("PLACES").unwrap_or_default();
    let (memtable_dir, flushed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let memtable = open(memtable_dir.path(), rows, columns).await;
    let flushed = open(flushed_dir.path(), rows, columns).await;
    let flush = duet_parser::parse("flush").unwrap().pop().unwrap();
    run(&flushed, &flush).await;
    let end = rows as i64 * 1000;
    let (slice_lo, slice_hi) = (end / 2, end / 2 + end / 100);
    let queries = [
        ("count(s0)", "select count(s0) from root.bench.d".to_string()),
        (
            "4 aggregates",
            "select count(s0), avg(s1), max_value(s2), min_value(s3) from root.bench.d".into(),
        ),
        (
            "1% slice count + avg",
            format!(
                "select count(s0), avg(s0) from root.bench.d where time >= {slice_lo} and time < {slice_hi}"
            ),
        ),
        ("last s0", "select last s0 from root.bench.d".into()),
        ("raw 1M", format!("select s0 from root.bench.d where time < {}", end / 2)),
    ];
    println!(
        "{rows} rows × {columns} DOUBLE series; median (quartiles) in µs, {repeats} runs each, alternating"
    );
    for (name, sql) in queries.iter().filter(|(n, _)| n.contains(only.as_str())) {
        let statement = duet_parser::parse(sql).unwrap().pop().unwrap();
        let n = if name.starts_with("raw") {
            repeats / 20 + 1
        } else {
            repeats
        };
        let (mut m_us, mut f_us) = (Vec::new(), Vec::new());
        for round in 0..=n {
            for (place, engine, out) in [
                ("memtable", &memtable, &mut m_us),
                ("flushed", &flushed, &mut f_us),
            ] {
                if !places.is_empty() && places != place {
                    continue;
                }
                let t = Instant::now();
                run(engine, &statement).await;
                if round > 0 {
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        println!(
            "{name:22} memtable {}  flushed {}",
            quartiles(m_us),
            quartiles(f_us)
        );
    }
}
