//! `duet-bench-scrape`: what scraping duetd's `/metrics` every second costs at ingest load (issue 12).
//! See run.sh for the three measurements; everything runs against a release duetd it starts itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use duet_bench_support::{self as support, tablet_request, Duetd, DuetdStart};
use duet_proto::client::{Client, ClientOptions};
use duet_proto::t;
use duet_proto::types::{Column, ColumnValues, DataType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `INGEST_ONLY=1`: no metrics flag (a duetd from before /metrics takes none), no scraping: the
/// ingest phases alone, to compare two builds' ingest rates.
fn ingest_only() -> bool {
    std::env::var("INGEST_ONLY").is_ok_and(|v| v == "1")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A duetd of this bench: data and log under one temporary directory, removed when it is dropped.
struct Server {
    duetd: Duetd,
    dir: PathBuf,
    port: u16,
    metrics: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.duetd.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(bin: &Path, name: &str) -> Result<Server> {
    let dir = std::env::temp_dir().join(format!("duet-bench-scrape-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let duetd = Duetd::start(&DuetdStart {
        bin,
        name,
        log_dir: &dir,
        data_dir: &dir.join("data"),
        port: 0,
        metrics: !ingest_only(),
        log_level: "warn",
    })?;
    let (port, metrics) = (duetd.port, duetd.metrics_addr.clone().unwrap_or_default());
    Ok(Server {
        duetd,
        dir,
        port,
        metrics,
    })
}

async fn scrape(addr: &str) -> Result<usize> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    if !body.starts_with(b"HTTP/1.1 200") {
        bail!(
            "scrape failed: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(body.len())
}

async fn connect(port: u16) -> Result<Client> {
    support::connect(&ClientOptions {
        port,
        ..ClientOptions::default()
    })
    .await
}

/// One tablet of `rows` rows × `columns` DOUBLE columns from time `first`.
fn tablet(
    session: i64,
    device: &str,
    first: i64,
    rows: usize,
    columns: usize,
) -> t::TSInsertTabletReq {
    let times: Vec<i64> = (first..first + rows as i64).collect();
    let cols: Vec<Column> = (0..columns)
        .map(|c| Column {
            data_type: DataType::Double,
            nulls: None,
            values: ColumnValues::Double(
                times.iter().map(|t| (*t as f64) * 0.5 + c as f64).collect(),
            ),
        })
        .collect();
    tablet_request(
        session,
        device,
        (0..columns).map(|c| format!("s{c}")).collect(),
        &cols,
        &times,
    )
}

/// `clients` writers for `seconds`, each on its own device from time `*next_time`; returns points.
async fn ingest(
    port: u16,
    clients: usize,
    rows: usize,
    columns: usize,
    seconds: f64,
    epoch: u64,
) -> Result<u64> {
    let points = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (points, stop) = (points.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect(port).await?;
            let device = format!("root.bench.d{i}");
            let mut first = (epoch as i64) << 32;
            while !stop.load(Ordering::Relaxed) {
                let req = tablet(c.session_id(), &device, first, rows, columns);
                let st: t::TSStatus = c.connection().call("insertTablet", 1, &req).await?;
                if st.code != 200 {
                    bail!("insertTablet: {st:?}");
                }
                first += rows as i64;
                points.fetch_add((rows * columns) as u64, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(points.load(Ordering::Relaxed))
}

/// duetd's CPU per scrape over `n` back-to-back scrapes (ms), and the mean body size.
async fn per_scrape(server: &Server, n: usize) -> Result<(f64, f64, usize)> {
    let (cpu0, t0) = (server.duetd.cpu_seconds(), Instant::now());
    let mut bytes = 0;
    for _ in 0..n {
        bytes += scrape(&server.metrics).await?;
    }
    let wall = t0.elapsed().as_secs_f64() / n as f64 * 1000.0;
    Ok((
        (server.duetd.cpu_seconds() - cpu0) / n as f64 * 1000.0,
        wall,
        bytes / n,
    ))
}

async fn run(duetd: PathBuf) -> Result<()> {
    let clients = env("CLIENTS", 4) as usize;
    let rows = env("ROWS", 1000) as usize;
    let columns = env("COLUMNS", 10) as usize;
    let phase = env("PHASE_SECONDS", 10) as f64;
    let phases = env("PHASES", 3);
    let a = start(&duetd, "a")?;
    println!("## Scraping /metrics at ingest load\n");
    println!("{clients} clients, {rows}-row × {columns}-column DOUBLE insertTablet batches, {phase} s phases, alternating\n");
    println!("| phase | scrape every 1 s | points/s | duetd CPU (cores) | scrapes |");
    println!("|---|---|---:|---:|---:|");
    let mut totals = [(0.0f64, 0.0f64, 0usize); 2];
    // Phase 0 warms up (the first memtables fill before any flush): shown, not counted.
    for p in 0..=2 * phases {
        let scraping = p % 2 == 0 && p > 0 && !ingest_only();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let scraper = scraping.then(|| {
            let (stop, scrapes, addr) = (stop.clone(), scrapes.clone(), a.metrics.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if scrape(&addr).await.is_ok() {
                        scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        });
        let (cpu0, t0) = (a.duetd.cpu_seconds(), Instant::now());
        let points = ingest(a.port, clients, rows, columns, phase, p).await?;
        let wall = t0.elapsed().as_secs_f64();
        let cores = (a.duetd.cpu_seconds() - cpu0) / wall;
        stop.store(true, Ordering::Relaxed);
        if let Some(s) = scraper {
            let _ = s.await;
        }
        let rate = points as f64 / wall;
        println!(
            "| {} | {} | {:.2} M | {:.2} | {} |",
            if p == 0 {
                "warm-up".to_string()
            } else {
                p.to_string()
            },
            if scraping { "yes" } else { "no" },
            rate / 1e6,
            cores,
            scrapes.load(Ordering::Relaxed)
        );
        if p == 0 {
            continue;
        }
        let k = usize::from(scraping);
        totals[k].0 += rate;
        totals[k].1 += cores;
        totals[k].2 += 1;
    }
    if ingest_only() {
        let (rate, cores, n) = totals[0];
        println!(
            "\nINGEST_ONLY: mean {:.2} M points/s at {:.2} cores over {n} phases",
            rate / n as f64 / 1e6,
            cores / n as f64
        );
        return Ok(());
    }
    let mean = |k: usize| {
        (
            totals[k].0 / totals[k].2 as f64,
            totals[k].1 / totals[k].2 as f64,
        )
    };
    let (r0, c0) = mean(0);
    let (r1, c1) = mean(1);
    println!("\nmean without scraping {:.2} M points/s at {c0:.2} cores; with {:.2} M points/s at {c1:.2} cores ({:+.1} % rate)\n", r0 / 1e6, r1 / 1e6, (r1 / r0 - 1.0) * 100.0);

    let (cpu_ms, wall_ms, bytes) = per_scrape(&a, 300).await?;
    println!("after the load, 300 back-to-back scrapes: {cpu_ms:.2} ms of duetd CPU per scrape ({:.3} % of one core at one scrape a second), {wall_ms:.2} ms each end to end, {bytes} bytes\n", cpu_ms / 10.0);

    // A pipe whose peer is down, with a backlog past the count cap: the most a scrape reads.
    let b = start(&duetd, "b")?;
    let mut c = connect(a.port).await?;
    c.execute_update(&format!(
        "create pipe AB with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
        b.port
    ))
    .await
    .map_err(|e| anyhow!("create pipe: {e}"))?;
    drop(b);
    let entries = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (entries, port) = (entries.clone(), a.port);
        tasks.push(tokio::spawn(async move {
            let mut c = connect(port).await?;
            let device = format!("root.backlog.d{i}");
            for k in 0..(25_000 / clients) {
                let req = tablet(c.session_id(), &device, k as i64, 1, 1);
                let st: t::TSStatus = c.connection().call("insertTablet", 1, &req).await?;
                if st.code != 200 {
                    bail!("insertTablet: {st:?}");
                }
                entries.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (cpu_ms, wall_ms, _) = per_scrape(&a, 50).await?;
    println!("with a pipe whose peer is down and {} entries of backlog (the count stops at 20,000): {cpu_ms:.2} ms of duetd CPU per scrape ({:.2} % of one core at one scrape a second), {wall_ms:.2} ms each end to end", entries.load(Ordering::Relaxed), cpu_ms / 10.0);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let Some(duetd) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: duet-bench-scrape <duetd binary>");
        return std::process::ExitCode::from(2);
    };
    support::main_with(|| run(duetd))
}
