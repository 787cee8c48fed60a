//! Measures multi-series aggregates with their series scanned one at a time and in parallel, side
//! by side in one run on the same data (issue 11): `cargo run --release -p duet-engine --example
//! parallel_scans`. Loads ROWS [2000000] rows of COLUMNS [10] DOUBLE series, one row per second, into
//! an engine over a temporary directory; runs each query REPEATS [5] times per mode, alternating the
//! modes, with the data in the memtable and again after FLUSH; prints medians and min–max in ms.
//! ONLY=<text> keeps the queries whose name contains the text; PLACES=flushed (or memtable) runs
//! only there; SERIAL=1 runs only the serial mode (for a profiler). The serial mode's CPU time (all
//! threads) is printed beside its wall time: on a shared machine it is the steadier figure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Instant;

use duet_engine::{query, Engine, Output};
use duet_storage::StorageOptions;

/// The engine's integration-test helpers: opening an engine in a directory, running statements.
#[path = "../tests/common/mod.rs"]
mod common;

async fn run(engine: &Arc<Engine>, sql: &str) -> usize {
    match common::execute(engine, sql).await {
        Output::Stream(mut s) => {
            let mut rows = 0;
            while let Some(page) = s.source.next_page(1000, 8 << 20).unwrap() {
                rows += page.times.len();
            }
            rows
        }
        _ => 0,
    }
}

/// On-CPU time of every thread of this process so far, in ms (Linux `schedstat`): under a loaded
/// machine a query's CPU time varies far less than its wall time. The kernel adds a running
/// thread's current stretch only at the next tick or switch; yielding first brings the calling
/// thread's (which runs the serial queries) up to date, else every reading rounds to the tick.
fn cpu_ms() -> f64 {
    std::thread::yield_now();
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e6
}

fn summary(mut ms: Vec<f64>) -> String {
    if ms.is_empty() {
        return "-".into();
    }
    ms.sort_by(f64::total_cmp);
    format!(
        "{:9.2} ({:.2}–{:.2})",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    )
}

#[tokio::main]
async fn main() {
    let rows = common::env_number("ROWS", 2_000_000);
    let columns = common::env_number("COLUMNS", 10);
    let repeats = common::env_number("REPEATS", 5);
    let dir = tempfile::tempdir().unwrap();
    let (_, engine) = common::open_engine_with(
        dir.path(),
        StorageOptions {
            memtable_bytes: 4 << 30,
            ..StorageOptions::default()
        },
    );
    let started = Instant::now();
    common::write_bench_rows(&engine, "root.bench.d1", rows, columns, 100_000).await;
    println!(
        "loaded {rows} rows × {columns} DOUBLE series in {:.1} s; {} processors",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let end = rows as i64 * 1000;
    let all: Vec<String> = (0..columns)
        .map(|c| format!("avg(s{c}), max_value(s{c})"))
        .collect();
    let queries = [
        (
            "avg+max_value of every series, group by 1h",
            format!(
                "select {} from root.bench.d1 group by ([0, {end}), 1h)",
                all.join(", ")
            ),
        ),
        (
            "count(*) group by 1h",
            format!("select count(*) from root.bench.d1 group by ([0, {end}), 1h)"),
        ),
        (
            "avg+max_value of s0, group by 1h",
            format!("select avg(s0), max_value(s0) from root.bench.d1 group by ([0, {end}), 1h)"),
        ),
        (
            "count(s0) where s1 > 0.999",
            "select count(s0) from root.bench.d1 where s1 > 0.999".to_string(),
        ),
        (
            "4 aggregates over 4 series",
            "select count(s0), avg(s1), max_value(s2), min_value(s3) from root.bench.d1"
                .to_string(),
        ),
    ];
    // ONLY=<text> runs only the queries whose name contains it (for a profiler).
    let only = std::env::var("ONLY").unwrap_or_default();
    let places = std::env::var("PLACES").unwrap_or_default();
    let modes: &[usize] = if std::env::var("SERIAL").is_ok_and(|v| v == "1") {
        &[1]
    } else {
        &[1, 0]
    };
    for place in ["memtable", "flushed"] {
        if !places.is_empty() && places != place {
            continue;
        }
        if place == "flushed" {
            run(&engine, "flush").await;
        }
        for (name, sql) in queries
            .iter()
            .filter(|(name, _)| name.contains(only.as_str()))
        {
            let (mut serial, mut parallel, mut serial_cpu) = (Vec::new(), Vec::new(), Vec::new());
            // Once each to warm caches, then alternately, so both modes see the same machine load.
            for &threads in modes {
                query::set_scan_threads(threads);
                run(&engine, sql).await;
            }
            for _ in 0..repeats {
                for &threads in modes {
                    query::set_scan_threads(threads);
                    let (t, cpu) = (Instant::now(), cpu_ms());
                    run(&engine, sql).await;
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    if threads == 1 {
                        serial_cpu.push(cpu_ms() - cpu);
                        serial.push(ms)
                    } else {
                        parallel.push(ms)
                    }
                }
            }
            println!(
                "{place:9} {name:45} serial {} cpu {}  parallel {}",
                summary(serial),
                summary(serial_cpu),
                summary(parallel)
            );
        }
    }
}
