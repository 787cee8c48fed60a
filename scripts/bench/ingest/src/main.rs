//! Ingest / query benchmark: duetd (IoTDB client protocol) against PostgreSQL 15.
//!
//! `run.sh` builds this binary, starts a PostgreSQL cluster and passes its port; this program starts a
//! fresh `duetd` per repeat (so every repeat ingests into an empty server), runs the workloads, samples
//! duetd's peak RSS, and prints a markdown report (also written to `REPORT_PATH`). Any failure — a
//! non-200 status, a short read, a server that does not come up — aborts the run with the message.
//!
//! Parameters come from environment variables; see README.md.

use std::fmt::Write as _;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use duet_bench_support::{
    self as support, barrier_clients, check, comparison_table, connect, copy_rows, env_or, env_req,
    insert_tablet, log, machine, percentile, pg_settings, publish_report, rate, setup_then_wait,
    tablet_columns, tablet_request, value_f64, value_i64, Duetd, DuetdStart, Line, Load, PgRow,
    RunEnv, ValueType, T0,
};
use duet_proto::client::{ClientOptions, Outcome};
use duet_proto::t;
use duet_proto::tablet::{encode_record, RecordValue};
use duet_proto::types::ColumnValues;
use futures_util::{pin_mut, TryStreamExt};

// ---------------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone)]
struct Cfg {
    load: Load,
    record_seconds: f64,
    fetch_size: i32,
    value_type: ValueType,
    pg_port: u16,
    env: RunEnv,
}

impl Cfg {
    fn from_env() -> Result<Cfg> {
        let value_type = match env_or("VALUE_TYPE", "DOUBLE".to_string())?
            .to_ascii_uppercase()
            .as_str()
        {
            "DOUBLE" => ValueType::Double,
            "INT64" => ValueType::Int64,
            other => bail!("VALUE_TYPE must be DOUBLE or INT64, not {other}"),
        };
        let cfg = Cfg {
            load: Load::from_env(625)?,
            record_seconds: env_or("RECORD_SECONDS", 10.0)?,
            fetch_size: env_or("FETCH_SIZE", 10_000)?,
            value_type,
            pg_port: env_req("PG_PORT")?.parse().context("PG_PORT")?,
            env: RunEnv::from_env()?,
        };
        if cfg.load.clients == 0 || !cfg.load.is_positive() {
            bail!("CLIENTS, ROWS_PER_BATCH, COLUMNS, BATCHES_PER_CLIENT and REPEATS must all be positive");
        }
        Ok(cfg)
    }

    fn total_rows(&self) -> usize {
        self.load.rows_per_client() * self.load.clients
    }
}

// ---------------------------------------------------------------------------------------------------
// Workload 1: insertTablet

/// Workload 1: session `i` writes device `root.bench.<prefix><i>`.
async fn duet_tablets(
    cfg: Arc<Cfg>,
    opts: ClientOptions,
    prefix: &'static str,
) -> Result<Duration> {
    let (start, end, _) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        let opts = opts.clone();
        async move {
            let mut c = setup_then_wait(connect(&opts), &barrier).await?;
            let device = format!("root.bench.{prefix}{i}");
            let measurements = cfg.load.measurements();
            let rows = cfg.load.rows_per_batch;
            for b in 0..cfg.load.batches_per_client {
                let first = b * rows;
                let times: Vec<i64> = (first..first + rows).map(|r| T0 + r as i64).collect();
                let cols = tablet_columns(cfg.value_type, first, rows, cfg.load.columns);
                let req =
                    tablet_request(c.session_id(), &device, measurements.clone(), &cols, &times);
                insert_tablet(
                    &mut c,
                    &req,
                    &format!("insertTablet to {device} (batch {b})"),
                )
                .await?;
            }
            let done = Instant::now();
            c.close().await?;
            Ok((done, ()))
        }
    })
    .await?;
    Ok(end - start)
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL helpers

async fn pg_connect(cfg: &Cfg) -> Result<tokio_postgres::Client> {
    support::pg_connect(&cfg.env.pg_host, cfg.pg_port, &cfg.env.pg_user).await
}

fn pg_table_ddl(cfg: &Cfg, name: &str) -> String {
    let (_, ty) = cfg.value_type.pg();
    let cols: Vec<String> = (0..cfg.load.columns)
        .map(|j| format!("s{j} {ty}"))
        .collect();
    format!(
        "CREATE TABLE {name} (device text NOT NULL, time bigint NOT NULL, {}, PRIMARY KEY (device, time))",
        cols.join(", ")
    )
}

async fn pg_reset(cfg: &Cfg) -> Result<()> {
    let c = pg_connect(cfg).await?;
    c.batch_execute("DROP TABLE IF EXISTS bench; DROP TABLE IF EXISTS bench_rec")
        .await
        .context("drop tables")?;
    c.batch_execute(&pg_table_ddl(cfg, "bench"))
        .await
        .context("create bench")?;
    c.batch_execute(&pg_table_ddl(cfg, "bench_rec"))
        .await
        .context("create bench_rec")?;
    c.batch_execute("CHECKPOINT").await.context("checkpoint")?;
    Ok(())
}

// Workload 2: COPY FROM STDIN (binary), one batch per COPY statement, each COPY its own (autocommit)
// transaction: the batch is durably committed (fsync=on, synchronous_commit=on) before the next starts.
async fn pg_copy(cfg: Arc<Cfg>) -> Result<Duration> {
    let (start, end, _) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        async move {
            let c = setup_then_wait(pg_connect(&cfg), &barrier).await?;
            let device = format!("d{i}");
            let rows = cfg.load.rows_per_batch;
            for b in 0..cfg.load.batches_per_client {
                let what = format!("{device} (batch {b})");
                let values = (cfg.value_type, cfg.load.columns);
                copy_rows(&c, values, &device, (b * rows, rows), &what).await?;
            }
            Ok((Instant::now(), ()))
        }
    })
    .await?;
    Ok(end - start)
}

// ---------------------------------------------------------------------------------------------------
// Workload 3: single-row inserts for a fixed duration

struct RecordResult {
    wall: Duration,
    rows: usize,
    latencies: Vec<Duration>,
}

fn merge_records(wall: Duration, per_client: Vec<(usize, Vec<Duration>)>) -> RecordResult {
    let mut rows = 0;
    let mut latencies = Vec::new();
    for (n, l) in per_client {
        rows += n;
        latencies.extend(l);
    }
    latencies.sort_unstable();
    RecordResult {
        wall,
        rows,
        latencies,
    }
}

async fn duet_records(cfg: Arc<Cfg>, opts: ClientOptions) -> Result<RecordResult> {
    let (start, end, per_client) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        let opts = opts.clone();
        async move {
            let mut c = setup_then_wait(connect(&opts), &barrier).await?;
            let device = format!("root.bench.r{i}");
            let measurements = cfg.load.measurements();
            let deadline = Instant::now() + Duration::from_secs_f64(cfg.record_seconds);
            let mut latencies = Vec::with_capacity(100_000);
            let mut r = 0usize;
            while Instant::now() < deadline {
                let values: Vec<RecordValue> = (0..cfg.load.columns)
                    .map(|j| match cfg.value_type {
                        ValueType::Double => RecordValue::Double(value_f64(r, j)),
                        ValueType::Int64 => RecordValue::Int64(value_i64(r, j)),
                    })
                    .collect();
                let req = t::TSInsertRecordReq::new(
                    c.session_id(),
                    device.clone(),
                    measurements.clone(),
                    encode_record(&values),
                    T0 + r as i64,
                    Some(false),
                    None,
                    None,
                );
                let t0 = Instant::now();
                let st: t::TSStatus = c
                    .connection()
                    .call("insertRecord", 1, &req)
                    .await
                    .with_context(|| format!("insertRecord to {device} (row {r})"))?;
                latencies.push(t0.elapsed());
                check(&st, &format!("insertRecord to {device} (row {r})"))?;
                r += 1;
            }
            let done = Instant::now();
            c.close().await?;
            Ok((done, (r, latencies)))
        }
    })
    .await?;
    Ok(merge_records(end - start, per_client))
}

async fn pg_records(cfg: Arc<Cfg>) -> Result<RecordResult> {
    let (start, end, per_client) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        async move {
            let setup = async {
                let c = pg_connect(&cfg).await?;
                let params: Vec<String> = (1..=cfg.load.columns + 2)
                    .map(|k| format!("${k}"))
                    .collect();
                let stmt = c
                    .prepare(&format!(
                        "INSERT INTO bench_rec VALUES ({})",
                        params.join(", ")
                    ))
                    .await
                    .context("prepare INSERT")?;
                Ok::<_, anyhow::Error>((c, stmt))
            };
            let (c, stmt) = setup_then_wait(setup, &barrier).await?;
            let device = format!("r{i}");
            let deadline = Instant::now() + Duration::from_secs_f64(cfg.record_seconds);
            let mut latencies = Vec::with_capacity(100_000);
            let mut r = 0usize;
            let mut row = PgRow::new(cfg.value_type, cfg.load.columns);
            while Instant::now() < deadline {
                let params = row.params(&device, r);
                let t0 = Instant::now();
                let n = c
                    .execute(&stmt, &params)
                    .await
                    .with_context(|| format!("INSERT for {device} (row {r})"))?;
                latencies.push(t0.elapsed());
                if n != 1 {
                    bail!("INSERT for {device} (row {r}) inserted {n} rows");
                }
                r += 1;
            }
            Ok((Instant::now(), (r, latencies)))
        }
    })
    .await?;
    Ok(merge_records(end - start, per_client))
}

// ---------------------------------------------------------------------------------------------------
// Workload 4: scans

/// Reads `select * from root.bench.d0` to the end; checks the row count and spot-checks values.
async fn duet_scan(cfg: &Cfg, opts: &ClientOptions) -> Result<Duration> {
    let mut c = connect(opts).await?;
    let sql = "select * from root.bench.d0";
    let start = Instant::now();
    let outcome = c
        .execute(sql)
        .await
        .with_context(|| format!("query {sql:?}"))?;
    let Outcome::Rows(mut rs) = outcome else {
        bail!("{sql:?} returned no result set")
    };
    if rs.columns.len() != cfg.load.columns {
        bail!(
            "{sql:?} returned {} columns ({:?}), expected {}",
            rs.columns.len(),
            rs.columns,
            cfg.load.columns
        );
    }
    let s0 = rs
        .columns
        .iter()
        .position(|n| n.ends_with(".s0"))
        .ok_or_else(|| anyhow!("no s0 column in {:?}", rs.columns))?;
    let mut rows = 0usize;
    while let Some(block) = c
        .next_block(&mut rs)
        .await
        .with_context(|| format!("fetch {sql:?}"))?
    {
        // Spot-check the first and last row of every block against what was written.
        for k in [0, block.n_rows() - 1] {
            let r = rows + k;
            let want_t = T0 + r as i64;
            if block.times[k] != want_t {
                bail!(
                    "{sql:?}: row {r} has time {}, expected {want_t}",
                    block.times[k]
                );
            }
            let ok = match &block.columns[s0].values {
                ColumnValues::Double(v) => v[k] == value_f64(r, 0),
                ColumnValues::Int64(v) => v[k] == value_i64(r, 0),
                other => bail!("{sql:?}: unexpected s0 column type {other:?}"),
            };
            if !ok {
                bail!("{sql:?}: row {r} has a wrong s0 value");
            }
        }
        rows += block.n_rows();
    }
    c.close_result(&rs).await?;
    let wall = start.elapsed();
    if rows != cfg.load.rows_per_client() {
        bail!(
            "{sql:?} returned {rows} rows, expected {}",
            cfg.load.rows_per_client()
        );
    }
    c.close().await?;
    Ok(wall)
}

async fn duet_flush(opts: &ClientOptions) -> Result<Duration> {
    let mut c = connect(opts).await?;
    let start = Instant::now();
    c.execute_update("flush").await.context("FLUSH")?;
    let wall = start.elapsed();
    c.close().await?;
    Ok(wall)
}

/// The same rows from PostgreSQL, decoded to Rust values (as the Duet client decodes TsBlocks).
async fn pg_scan(cfg: &Cfg) -> Result<Duration> {
    let c = pg_connect(cfg).await?;
    let cols: Vec<String> = (0..cfg.load.columns).map(|j| format!("s{j}")).collect();
    let sql = format!(
        "SELECT time, {} FROM bench WHERE device = 'd0' ORDER BY time",
        cols.join(", ")
    );
    let start = Instant::now();
    let stream = c
        .query_raw(sql.as_str(), Vec::<i64>::new())
        .await
        .with_context(|| sql.clone())?;
    pin_mut!(stream);
    let mut rows = 0usize;
    let mut checksum = 0f64;
    while let Some(row) = stream.try_next().await.with_context(|| sql.clone())? {
        let time: i64 = row.get(0);
        if time != T0 + rows as i64 {
            bail!("PostgreSQL scan: row {rows} has time {time}");
        }
        for j in 0..cfg.load.columns {
            checksum += match cfg.value_type {
                ValueType::Double => row.get::<_, f64>(j + 1),
                ValueType::Int64 => row.get::<_, i64>(j + 1) as f64,
            };
        }
        rows += 1;
    }
    let wall = start.elapsed();
    if rows != cfg.load.rows_per_client() {
        bail!(
            "PostgreSQL scan returned {rows} rows, expected {}",
            cfg.load.rows_per_client()
        );
    }
    std::hint::black_box(checksum);
    Ok(wall)
}

async fn pg_version(cfg: &Cfg) -> Result<String> {
    let c = pg_connect(cfg).await?;
    let row = c.query_one("SELECT version()", &[]).await?;
    let settings = pg_settings(
        &c,
        &[
            "fsync",
            "synchronous_commit",
            "shared_buffers",
            "max_wal_size",
            "wal_level",
        ],
    )
    .await?;
    Ok(format!("{} ({settings})", row.get::<_, String>(0)))
}

// ---------------------------------------------------------------------------------------------------
// One repeat

#[derive(Debug, Default, Clone)]
struct Repeat {
    duet_tablet_s: f64,
    duet_tablet_then_flush_s: (f64, f64), // tablets, FLUSH right after
    pg_copy_s: f64,
    duet_rec: (f64, f64, f64, f64), // rows/s, points/s, p50 ms, p99 ms
    pg_rec: (f64, f64, f64, f64),
    duet_scan_s: f64,
    duet_flush_s: f64,
    duet_scan_flushed_s: f64,
    pg_scan_s: f64,
    rss_tablet: u64,
    rss_scan: u64,
    rss_records: u64,
    rss_ingest_flush: u64,
    rss_overall: u64,
    rss_reset_ok: bool,
}

/// The `p`-quantile of sorted latencies, in ms.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    let ms: Vec<f64> = sorted.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    percentile(&ms, p)
}

fn rec_stats(cfg: &Cfg, r: &RecordResult) -> (f64, f64, f64, f64) {
    let rows_s = r.rows as f64 / r.wall.as_secs_f64();
    (
        rows_s,
        rows_s * cfg.load.columns as f64,
        pct(&r.latencies, 0.5),
        pct(&r.latencies, 0.99),
    )
}

async fn run_repeat(cfg: Arc<Cfg>, n: usize) -> Result<Repeat> {
    let mut rep = Repeat::default();
    let pts = cfg.load.total_points() as f64;

    // --- Duet: fresh server for this repeat.
    let name = format!("duet-{n}");
    let data_dir = cfg.env.work_dir.join(&name);
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut duetd = Duetd::start(&DuetdStart {
        bin: &cfg.env.duetd_bin,
        name: &name,
        log_dir: &cfg.env.work_dir,
        data_dir: &data_dir,
        port: 0,
        metrics: true,
        log_level: "warn",
    })?;
    let opts = duetd.options(cfg.fetch_size);
    log(&format!(
        "repeat {n}: duetd pid {} on {}:{}",
        duetd.pid, duetd.host, duetd.port
    ));
    rep.rss_reset_ok = duetd.reset_peak();

    let wall = duet_tablets(cfg.clone(), opts.clone(), "d")
        .await
        .context("workload 1 (Duet insertTablet)")?;
    rep.duet_tablet_s = wall.as_secs_f64();
    rep.rss_tablet = duetd.peak_rss()?;
    let mut overall = rep.rss_tablet;
    log(&format!(
        "repeat {n}: Duet tablets {:.2} s = {}",
        wall.as_secs_f64(),
        rate(pts / wall.as_secs_f64(), "pts/s")
    ));

    duetd.reset_peak();
    rep.duet_scan_s = duet_scan(&cfg, &opts)
        .await
        .context("workload 4 (Duet scan before FLUSH)")?
        .as_secs_f64();
    rep.duet_flush_s = duet_flush(&opts)
        .await
        .context("workload 4 (FLUSH)")?
        .as_secs_f64();
    rep.duet_scan_flushed_s = duet_scan(&cfg, &opts)
        .await
        .context("workload 4 (Duet scan after FLUSH)")?
        .as_secs_f64();
    rep.rss_scan = duetd.peak_rss()?;
    overall = overall.max(rep.rss_scan);
    log(&format!(
        "repeat {n}: Duet scan {:.2} s, FLUSH {:.2} s, scan after flush {:.2} s",
        rep.duet_scan_s, rep.duet_flush_s, rep.duet_scan_flushed_s
    ));

    duetd.reset_peak();
    let rec = duet_records(cfg.clone(), opts.clone())
        .await
        .context("workload 3 (Duet insertRecord)")?;
    rep.duet_rec = rec_stats(&cfg, &rec);
    rep.rss_records = duetd.peak_rss()?;
    overall = overall.max(rep.rss_records);
    log(&format!(
        "repeat {n}: Duet records {} ({} rows)",
        rate(rep.duet_rec.0, "rows/s"),
        rec.rows
    ));

    // Workload 1 again into new devices root.bench.f<i>, then FLUSH at once: the rate at which data
    // reaches Parquet files, not only the WAL and memtables (which is what an acknowledgement means).
    duetd.reset_peak();
    let tablets = duet_tablets(cfg.clone(), opts.clone(), "f")
        .await
        .context("workload 1b (Duet insertTablet before FLUSH)")?;
    let flush = duet_flush(&opts)
        .await
        .context("workload 1b (FLUSH after insertTablet)")?;
    rep.duet_tablet_then_flush_s = (tablets.as_secs_f64(), flush.as_secs_f64());
    rep.rss_ingest_flush = duetd.peak_rss()?;
    overall = overall.max(rep.rss_ingest_flush);
    rep.rss_overall = if rep.rss_reset_ok {
        overall
    } else {
        duetd.peak_rss()?
    };
    log(&format!(
        "repeat {n}: Duet tablets {:.2} s + FLUSH {:.2} s = {}",
        tablets.as_secs_f64(),
        flush.as_secs_f64(),
        rate(pts / (tablets + flush).as_secs_f64(), "pts/s")
    ));
    duetd.stop()?;
    let _ = std::fs::remove_dir_all(cfg.env.work_dir.join(format!("duet-{n}")));

    // --- PostgreSQL: fresh tables for this repeat.
    pg_reset(&cfg).await?;
    let wall = pg_copy(cfg.clone())
        .await
        .context("workload 2 (PostgreSQL COPY)")?;
    rep.pg_copy_s = wall.as_secs_f64();
    log(&format!(
        "repeat {n}: PostgreSQL COPY {:.2} s = {}",
        wall.as_secs_f64(),
        rate(pts / wall.as_secs_f64(), "pts/s")
    ));
    rep.pg_scan_s = pg_scan(&cfg)
        .await
        .context("PostgreSQL scan")?
        .as_secs_f64();
    // Untimed: write out the COPY's dirty pages now, so a checkpoint does not land in the middle of the
    // single-row inserts (Duet's single-row inserts likewise run after its FLUSH).
    pg_connect(&cfg)
        .await?
        .batch_execute("CHECKPOINT")
        .await
        .context("checkpoint")?;
    let rec = pg_records(cfg.clone())
        .await
        .context("PostgreSQL single-row INSERT")?;
    rep.pg_rec = rec_stats(&cfg, &rec);
    log(&format!(
        "repeat {n}: PostgreSQL scan {:.2} s, single-row INSERT {} ({} rows)",
        rep.pg_scan_s,
        rate(rep.pg_rec.0, "rows/s"),
        rec.rows
    ));
    Ok(rep)
}

// ---------------------------------------------------------------------------------------------------
// Report

fn report(cfg: &Cfg, reps: &[Repeat], pg_ver: &str, elapsed: Duration) -> String {
    let pts = cfg.load.total_points() as f64;
    let rows = cfg.total_rows() as f64;
    let scan_rows = cfg.load.rows_per_client() as f64;
    let scan_pts = scan_rows * cfg.load.columns as f64;
    let col = |f: &dyn Fn(&Repeat) -> f64| -> Vec<f64> { reps.iter().map(f).collect() };
    let pts_s = |x: f64| rate(x, "pts/s");
    let rows_s = |x: f64| rate(x, "rows/s");
    let ms = |x: f64| format!("{x:.2} ms");
    let secs = |x: f64| format!("{x:.2} s");
    let mib = |x: f64| format!("{:.0} MiB", x / (1024.0 * 1024.0));

    #[rustfmt::skip]
    let lines = vec![
        Line { item: "1/2. Batch ingest (insertTablet vs COPY)", metric: "points/s", duet: col(&|r| pts / r.duet_tablet_s), pg: Some(col(&|r| pts / r.pg_copy_s)), fmt: pts_s },
        Line { item: "1/2. Batch ingest (insertTablet vs COPY)", metric: "rows/s", duet: col(&|r| rows / r.duet_tablet_s), pg: Some(col(&|r| rows / r.pg_copy_s)), fmt: rows_s },
        Line { item: "1/2. Batch ingest (insertTablet vs COPY)", metric: "wall time", duet: col(&|r| r.duet_tablet_s), pg: Some(col(&|r| r.pg_copy_s)), fmt: secs },
        Line { item: "1b. Batch ingest, then FLUSH to files (PG: same COPY as 2)", metric: "points/s incl. FLUSH", duet: col(&|r| pts / (r.duet_tablet_then_flush_s.0 + r.duet_tablet_then_flush_s.1)), pg: Some(col(&|r| pts / r.pg_copy_s)), fmt: pts_s },
        Line { item: "1b. Batch ingest, then FLUSH to files (PG: same COPY as 2)", metric: "FLUSH right after ingest", duet: col(&|r| r.duet_tablet_then_flush_s.1), pg: None, fmt: secs },
        Line { item: "3. Single-row inserts (insertRecord vs INSERT)", metric: "rows/s", duet: col(&|r| r.duet_rec.0), pg: Some(col(&|r| r.pg_rec.0)), fmt: rows_s },
        Line { item: "3. Single-row inserts (insertRecord vs INSERT)", metric: "points/s", duet: col(&|r| r.duet_rec.1), pg: Some(col(&|r| r.pg_rec.1)), fmt: pts_s },
        Line { item: "3. Single-row inserts (insertRecord vs INSERT)", metric: "latency p50", duet: col(&|r| r.duet_rec.2), pg: Some(col(&|r| r.pg_rec.2)), fmt: ms },
        Line { item: "3. Single-row inserts (insertRecord vs INSERT)", metric: "latency p99", duet: col(&|r| r.duet_rec.3), pg: Some(col(&|r| r.pg_rec.3)), fmt: ms },
        Line { item: "4. Scan one device, before FLUSH (PG: same rows)", metric: "rows/s", duet: col(&|r| scan_rows / r.duet_scan_s), pg: Some(col(&|r| scan_rows / r.pg_scan_s)), fmt: rows_s },
        Line { item: "4. Scan one device, before FLUSH (PG: same rows)", metric: "points/s", duet: col(&|r| scan_pts / r.duet_scan_s), pg: Some(col(&|r| scan_pts / r.pg_scan_s)), fmt: pts_s },
        Line { item: "4. FLUSH (after the first scan)", metric: "time", duet: col(&|r| r.duet_flush_s * 1e3), pg: None, fmt: ms },
        Line { item: "4. Scan one device, after FLUSH (PG: same rows)", metric: "rows/s", duet: col(&|r| scan_rows / r.duet_scan_flushed_s), pg: Some(col(&|r| scan_rows / r.pg_scan_s)), fmt: rows_s },
        Line { item: "4. Scan one device, after FLUSH (PG: same rows)", metric: "points/s", duet: col(&|r| scan_pts / r.duet_scan_flushed_s), pg: Some(col(&|r| scan_pts / r.pg_scan_s)), fmt: pts_s },
        Line { item: "5. duetd peak RSS (VmHWM)", metric: "during batch ingest", duet: col(&|r| r.rss_tablet as f64), pg: None, fmt: mib },
        Line { item: "5. duetd peak RSS (VmHWM)", metric: "during scans + FLUSH", duet: col(&|r| r.rss_scan as f64), pg: None, fmt: mib },
        Line { item: "5. duetd peak RSS (VmHWM)", metric: "during single-row inserts", duet: col(&|r| r.rss_records as f64), pg: None, fmt: mib },
        Line { item: "5. duetd peak RSS (VmHWM)", metric: "during ingest + FLUSH (1b)", duet: col(&|r| r.rss_ingest_flush as f64), pg: None, fmt: mib },
        Line { item: "5. duetd peak RSS (VmHWM)", metric: "whole run of one server", duet: col(&|r| r.rss_overall as f64), pg: None, fmt: mib },
    ];

    let mut s = String::new();
    let _ = writeln!(s, "# Duet ingest benchmark\n");
    let _ = writeln!(
        s,
        "- Duet: `{}` (rev {}), fresh server per repeat, default storage options (WAL fsync per group commit)",
        cfg.env.duetd_bin.display(),
        cfg.env.duet_rev
    );
    let _ = writeln!(s, "- PostgreSQL: {pg_ver}");
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(
        s,
        "- Parameters: CLIENTS={} ROWS_PER_BATCH={} COLUMNS={} ({}) BATCHES_PER_CLIENT={} REPEATS={} RECORD_SECONDS={} FETCH_SIZE={}",
        cfg.load.clients,
        cfg.load.rows_per_batch,
        cfg.load.columns,
        cfg.value_type.duet(),
        cfg.load.batches_per_client,
        cfg.load.repeats,
        cfg.record_seconds,
        cfg.fetch_size
    );
    let _ = writeln!(
        s,
        "- Batch ingest writes {} rows = {} points per repeat ({} per client); series are auto-created by the first tablet (nothing pre-created; creation is inside the timed run)",
        cfg.total_rows(),
        cfg.load.total_points(),
        cfg.load.rows_per_client()
    );
    let _ = writeln!(s, "- Order per repeat: fresh duetd → 1 (insertTablet) → 4 (scan, FLUSH, scan) → 3 (insertRecord) → 1b (insertTablet into new devices, then FLUSH) → stop duetd → PostgreSQL: recreate tables, CHECKPOINT → 2 (COPY) → scan → CHECKPOINT (untimed) → single-row INSERT");
    let _ = writeln!(s, "- Scans read device 0 only: {} rows × {} columns; clients run on the same 2-core machine as the servers", cfg.load.rows_per_client(), cfg.load.columns);
    let _ = writeln!(s, "- Benchmark wall time: {:.0} s\n", elapsed.as_secs_f64());
    let _ = writeln!(s, "Median of {} repeats (min – max in the next column). Duet/PG is the ratio of medians (for throughput > 1 means Duet is faster; for latency, time and RSS < 1 means Duet is lower).\n", reps.len());
    comparison_table(&mut s, "Workload", &lines);
    if reps.iter().any(|r| !r.rss_reset_ok) {
        let _ = writeln!(s, "\nNote: /proc/<pid>/clear_refs could not reset VmHWM, so per-workload peaks are cumulative.");
    }
    let _ = writeln!(s, "\n<details><summary>Per-repeat raw values</summary>\n");
    let _ = writeln!(s, "| Repeat | Duet tablets s | Duet 1b tablets + FLUSH s | PG COPY s | Duet rec rows/s | PG rec rows/s | Duet rec p50/p99 ms | PG rec p50/p99 ms | Duet scan s | FLUSH s | Duet scan after flush s | PG scan s | duetd peak RSS MiB |");
    let _ = writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (i, r) in reps.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} + {:.2} | {:.2} | {:.0} | {:.0} | {:.2}/{:.2} | {:.2}/{:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            i + 1,
            r.duet_tablet_s,
            r.duet_tablet_then_flush_s.0,
            r.duet_tablet_then_flush_s.1,
            r.pg_copy_s,
            r.duet_rec.0,
            r.pg_rec.0,
            r.duet_rec.2,
            r.duet_rec.3,
            r.pg_rec.2,
            r.pg_rec.3,
            r.duet_scan_s,
            r.duet_flush_s,
            r.duet_scan_flushed_s,
            r.pg_scan_s,
            r.rss_overall as f64 / (1024.0 * 1024.0)
        );
    }
    let _ = writeln!(s, "\n</details>");
    s
}

// ---------------------------------------------------------------------------------------------------

async fn run() -> Result<()> {
    let cfg = Arc::new(Cfg::from_env()?);
    let started = Instant::now();
    let pg_ver = pg_version(&cfg).await?;
    cfg.load.log("repeat");
    let mut reps = Vec::new();
    for n in 1..=cfg.load.repeats {
        reps.push(
            run_repeat(cfg.clone(), n)
                .await
                .with_context(|| format!("repeat {n}"))?,
        );
    }
    let text = report(&cfg, &reps, &pg_ver, started.elapsed());
    publish_report(&cfg.env.report_path, &text)
}

fn main() -> std::process::ExitCode {
    support::main_with(run)
}
