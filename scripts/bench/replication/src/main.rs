//! Replication benchmark: two duetd instances (A, B) with double-living pipes AB and BA, against
//! PostgreSQL 15 logical replication (publisher → subscriber) on the same machine.
//!
//! `run.sh` builds this binary, starts the two PostgreSQL clusters and passes their ports; this program
//! starts a fresh pair of duetd processes per repeat, creates the pipes, runs the workloads, stops the
//! pair, then runs the PostgreSQL workloads, and prints a markdown report (also written to
//! `REPORT_PATH`). Any failure — a non-200 status, a row that never arrives, a count that does not
//! match, a server that does not start or stop cleanly — aborts the run with the message and the state
//! of the pipes (SHOW PIPES on both instances) plus the tails of the server logs.
//!
//! Parameters come from environment variables; see README.md.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use duet_bench_support::{
    self as support, barrier_clients, check, comparison_table, connect, copy_rows, env_or,
    join_tasks, log, machine, percentile, pg_settings, publish_report, rate, setup_then_wait,
    tablet_columns, tablet_request, tail, value_f64, Duetd, DuetdStart, Line, Load, RunEnv,
    ValueType, T0,
};
use duet_proto::client::{Client, ClientOptions, Outcome, ResultSet};
use duet_proto::t;
use duet_proto::tablet::{encode_record, RecordValue};
use duet_proto::tsblock::TsBlock;
use duet_proto::types::ColumnValues;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_postgres::types::ToSql;

// ---------------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone)]
struct Cfg {
    load: Load,
    lag_samples: usize,
    lag_interval_ms: u64,
    load_fraction: f64,
    outage_seconds: f64,
    outage_rows: usize,
    outage_rate: f64,
    sample_ms: u64,
    timeout_s: f64,
    skip_pg: bool,
    pg_pub_port: u16,
    pg_sub_port: u16,
    env: RunEnv,
}

impl Cfg {
    fn from_env() -> Result<Cfg> {
        let cfg = Cfg {
            load: Load::from_env(1000)?,
            lag_samples: env_or("LAG_SAMPLES", 500)?,
            lag_interval_ms: env_or("LAG_INTERVAL_MS", 10)?,
            load_fraction: env_or("LOAD_FRACTION", 0.5)?,
            outage_seconds: env_or("OUTAGE_SECONDS", 60.0)?,
            outage_rows: env_or("OUTAGE_ROWS", 0)?,
            outage_rate: env_or("OUTAGE_RATE", 0.0)?,
            sample_ms: env_or("SAMPLE_MS", 2000)?,
            timeout_s: env_or("TIMEOUT_SECONDS", 180.0)?,
            skip_pg: env_or("SKIP_PG", 0u8)? == 1,
            pg_pub_port: env_or("PG_PUB_PORT", 0)?,
            pg_sub_port: env_or("PG_SUB_PORT", 0)?,
            env: RunEnv::from_env()?,
        };
        if cfg.load.clients < 2 || !cfg.load.is_positive() {
            bail!("CLIENTS must be ≥ 2 (half write to A, half to B); ROWS_PER_BATCH, COLUMNS, BATCHES_PER_CLIENT, REPEATS positive");
        }
        if cfg.lag_samples == 0 || cfg.load_fraction.is_nan() || cfg.load_fraction <= 0.0 {
            bail!("LAG_SAMPLES and LOAD_FRACTION must be positive");
        }
        if !cfg.skip_pg && (cfg.pg_pub_port == 0 || cfg.pg_sub_port == 0) {
            bail!("PG_PUB_PORT and PG_SUB_PORT are required unless SKIP_PG=1");
        }
        Ok(cfg)
    }
    fn total_points(&self) -> f64 {
        self.load.total_points() as f64
    }
    fn tablet_points(&self) -> f64 {
        (self.load.rows_per_batch * self.load.columns) as f64
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }
}

/// Starts duetd `name` on `data_dir` (kept: a restart reuses it) and `port` (0: any free one).
fn start_duetd(cfg: &Cfg, name: &str, data_dir: &Path, port: u16) -> Result<Duetd> {
    let log_level = std::env::var("DUETD_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    Duetd::start(&DuetdStart {
        bin: &cfg.env.duetd_bin,
        name,
        log_dir: &cfg.env.work_dir,
        data_dir,
        port,
        metrics: true,
        log_level: &log_level,
    })
}

/// A session's options on `duetd` (large fetches for the checks' queries).
fn session_options(duetd: &Duetd) -> ClientOptions {
    ClientOptions {
        host: "127.0.0.1".into(),
        ..duetd.options(10_000)
    }
}

// ---------------------------------------------------------------------------------------------------
// Duet client helpers

/// `insertTablet`: rows `first..first+rows` of `device`, every column DOUBLE.
async fn insert_tablet(
    c: &mut Client,
    cfg: &Cfg,
    device: &str,
    first: usize,
    rows: usize,
) -> Result<()> {
    let times: Vec<i64> = (first..first + rows).map(|r| T0 + r as i64).collect();
    let cols = tablet_columns(ValueType::Double, first, rows, cfg.load.columns);
    let req = tablet_request(
        c.session_id(),
        device,
        cfg.load.measurements(),
        &cols,
        &times,
    );
    support::insert_tablet(
        c,
        &req,
        &format!("insertTablet to {device} (rows {first}..{})", first + rows),
    )
    .await
}

/// `insertRecord`: one row of `device` at time `time` (values of row `r`).
async fn insert_record(c: &mut Client, cfg: &Cfg, device: &str, r: usize, time: i64) -> Result<()> {
    let values: Vec<RecordValue> = (0..cfg.load.columns)
        .map(|j| RecordValue::Double(value_f64(r, j)))
        .collect();
    let req = t::TSInsertRecordReq::new(
        c.session_id(),
        device.to_string(),
        cfg.load.measurements(),
        encode_record(&values),
        time,
        Some(false),
        None,
        None,
    );
    let what = format!("insertRecord to {device} (time {time})");
    let st: t::TSStatus = c
        .connection()
        .call("insertRecord", 1, &req)
        .await
        .context(what.clone())?;
    check(&st, &what)
}

/// A query's result set and all of its blocks.
async fn query(c: &mut Client, sql: &str) -> Result<(ResultSet, Vec<TsBlock>)> {
    let Outcome::Rows(rs) = c
        .execute(sql)
        .await
        .with_context(|| format!("query {sql:?}"))?
    else {
        bail!("{sql:?} returned no result set");
    };
    c.collect(rs)
        .await
        .with_context(|| format!("fetch {sql:?}"))
}

/// Text rendering of a result: (header, rows).
async fn query_text(c: &mut Client, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let (rs, blocks) = query(c, sql).await?;
    let mut rows = Vec::new();
    for b in &blocks {
        for k in 0..b.n_rows() {
            let mut row = Vec::new();
            if !rs.ignore_time_stamp {
                row.push(b.times[k].to_string());
            }
            row.extend(b.columns.iter().map(|col| col.render(k)));
            rows.push(row);
        }
    }
    Ok((rs.header(), rows))
}

/// `select last s0 from <device>`: the newest time of s0, `None` while the series has no point (or
/// does not exist yet).
async fn last_time(c: &mut Client, device: &str) -> Result<Option<i64>> {
    let sql = format!("select last s0 from {device}");
    let (_, blocks) = query(c, &sql).await?;
    Ok(blocks.iter().find(|b| b.n_rows() > 0).map(|b| b.times[0]))
}

/// `select count(s0) from <device>`.
async fn count_s0(c: &mut Client, device: &str) -> Result<i64> {
    let sql = format!("select count(s0) from {device}");
    let (_, blocks) = query(c, &sql).await?;
    let b = blocks
        .iter()
        .find(|b| b.n_rows() > 0)
        .ok_or_else(|| anyhow!("{sql:?} returned no row"))?;
    match &b
        .columns
        .first()
        .ok_or_else(|| anyhow!("{sql:?} returned no column"))?
        .values
    {
        ColumnValues::Int64(v) => Ok(v[0]),
        ColumnValues::Int32(v) => Ok(i64::from(v[0])),
        other => bail!("{sql:?} returned {other:?}"),
    }
}

#[derive(Debug, Clone, Default)]
struct PipeRow {
    id: String,
    state: String,
    exception: String,
    remaining: String,
    est_seconds: String,
}

async fn show_pipes(c: &mut Client) -> Result<Vec<PipeRow>> {
    let (header, rows) = query_text(c, "show pipes").await?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("SHOW PIPES has no {name} column: {header:?}"))
    };
    let (id, st, ex, rem, est) = (
        col("ID")?,
        col("State")?,
        col("ExceptionMessage")?,
        col("RemainingEventCount")?,
        col("EstimatedRemainingSeconds")?,
    );
    Ok(rows
        .into_iter()
        .map(|r| PipeRow {
            id: r[id].clone(),
            state: r[st].clone(),
            exception: r[ex].clone(),
            remaining: r[rem].clone(),
            est_seconds: r[est].clone(),
        })
        .collect())
}

/// SHOW PIPES of one instance as a text block for error messages.
async fn pipes_text(opts: &ClientOptions, name: &str) -> String {
    let r = async {
        let mut c = connect(opts).await?;
        let (h, rows) = query_text(&mut c, "show pipes").await?;
        let _ = c.close().await;
        let mut s = format!("SHOW PIPES on {name}: {}\n", h.join(" | "));
        for r in rows {
            let _ = writeln!(s, "  {}", r.join(" | "));
        }
        Ok::<_, anyhow::Error>(s)
    }
    .await;
    r.unwrap_or_else(|e| format!("SHOW PIPES on {name} failed: {e:#}\n"))
}

/// A device that must hold `rows` rows (times T0 .. T0+rows-1) on instance `inst` (0 = A, 1 = B).
#[derive(Debug, Clone)]
struct Expect {
    inst: usize,
    device: String,
    rows: usize,
}

/// Polls `select last s0` of every expected device on its instance, as fast as the server answers,
/// until each shows its last row. Returns the instant the last of them was first seen, and the
/// instant the first data of any of them was seen (None: some data was already there at the start).
/// `visible` (if given) is kept at the number of rows visible (by last time) over all devices.
async fn duet_wait(
    clients: &mut [Client],
    targets: &[Expect],
    deadline: Instant,
    visible: Option<&AtomicU64>,
) -> Result<(Instant, Option<Instant>)> {
    let mut last: Vec<Option<i64>> = vec![None; targets.len()];
    let mut done = vec![false; targets.len()];
    let mut first_data: Option<Instant> = None;
    let mut initial_empty = None;
    loop {
        for (k, e) in targets.iter().enumerate() {
            if done[k] {
                continue;
            }
            let lt = last_time(&mut clients[e.inst], &e.device).await?;
            last[k] = lt;
            if lt == Some(T0 + e.rows as i64 - 1) {
                done[k] = true;
            } else if let Some(t) = lt {
                if t > T0 + e.rows as i64 - 1 {
                    bail!(
                        "{} on instance {} has last time {t}, beyond the last row written ({})",
                        e.device,
                        inst_name(e.inst),
                        T0 + e.rows as i64 - 1
                    );
                }
            }
        }
        let now = Instant::now();
        let any = last.iter().any(Option::is_some);
        if initial_empty.is_none() {
            initial_empty = Some(!any);
        }
        if any && first_data.is_none() {
            first_data = Some(now);
        }
        if let Some(v) = visible {
            let n: i64 = last
                .iter()
                .map(|l| l.map(|t| t - T0 + 1).unwrap_or(0))
                .sum();
            v.store(n as u64, Ordering::Relaxed);
        }
        if done.iter().all(|d| *d) {
            let fd = if initial_empty == Some(true) {
                first_data
            } else {
                None
            };
            return Ok((now, fd));
        }
        if now > deadline {
            let detail: Vec<String> = targets
                .iter()
                .zip(&last)
                .map(|(e, l)| {
                    format!(
                        "{} on {}: last time {}, want {}",
                        e.device,
                        inst_name(e.inst),
                        l.map(|t| t.to_string()).unwrap_or("none".into()),
                        T0 + e.rows as i64 - 1
                    )
                })
                .collect();
            bail!(
                "replicated rows did not all arrive in time: {}",
                detail.join("; ")
            );
        }
    }
}

/// After `duet_wait`: every expected device must hold exactly its rows (count(s0)); retries up to 10 s
/// in case the last row became visible before earlier rows of the same batch.
async fn duet_verify(clients: &mut [Client], targets: &[Expect]) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let verify_started = Instant::now();
    for e in targets {
        let started = Instant::now();
        loop {
            let n = count_s0(&mut clients[e.inst], &e.device).await?;
            if n == e.rows as i64 {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "REPLICATION MISMATCH: count(s0) of {} on instance {} is {n}, expected {} (its last row was visible already)",
                    e.device,
                    inst_name(e.inst),
                    e.rows
                );
            }
            notes.push(format!(
                "count(s0) of {} on {} was {n} < {} after its last row was visible; retried",
                e.device,
                inst_name(e.inst),
                e.rows
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let rows: usize = targets.iter().map(|e| e.rows).sum();
    log(&format!(
        "verified count(s0) of {} devices ({rows} rows) in {:.2} s",
        targets.len(),
        verify_started.elapsed().as_secs_f64()
    ));
    Ok(notes)
}

fn inst_name(i: usize) -> &'static str {
    if i == 0 {
        "A"
    } else {
        "B"
    }
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL helpers

async fn pg_connect(cfg: &Cfg, port: u16) -> Result<tokio_postgres::Client> {
    support::pg_connect(&cfg.env.pg_host, port, &cfg.env.pg_user).await
}

fn pg_ddl(cfg: &Cfg) -> String {
    let cols: Vec<String> = (0..cfg.load.columns)
        .map(|j| format!("s{j} double precision"))
        .collect();
    format!("CREATE TABLE bench (device text NOT NULL, time bigint NOT NULL, {}, PRIMARY KEY (device, time))", cols.join(", "))
}

/// Fresh table on both clusters, a publication for it and a subscription (copy_data = false), then a
/// warm-up row that must arrive on the subscriber.
async fn pg_reset(cfg: &Cfg) -> Result<()> {
    let publ = pg_connect(cfg, cfg.pg_pub_port).await?;
    let sub = pg_connect(cfg, cfg.pg_sub_port).await?;
    sub.batch_execute("DROP SUBSCRIPTION IF EXISTS duet_sub")
        .await
        .context("drop subscription")?;
    for (c, name) in [(&publ, "publisher"), (&sub, "subscriber")] {
        c.batch_execute("DROP TABLE IF EXISTS bench")
            .await
            .with_context(|| format!("drop table on the {name}"))?;
        c.batch_execute(&pg_ddl(cfg))
            .await
            .with_context(|| format!("create table on the {name}"))?;
    }
    publ.batch_execute("DROP PUBLICATION IF EXISTS duet_pub")
        .await
        .context("drop publication")?;
    publ.batch_execute("CREATE PUBLICATION duet_pub FOR TABLE bench")
        .await
        .context("create publication")?;
    publ.batch_execute("CHECKPOINT").await?;
    sub.batch_execute("CHECKPOINT").await?;
    let conn = format!(
        "host={} port={} user={} dbname=postgres",
        cfg.env.pg_host, cfg.pg_pub_port, cfg.env.pg_user
    );
    sub.batch_execute(&format!("CREATE SUBSCRIPTION duet_sub CONNECTION '{conn}' PUBLICATION duet_pub WITH (copy_data = false)"))
        .await
        .context("create subscription")?;
    // Warm-up: one row through the subscription.
    publ.execute("INSERT INTO bench (device, time) VALUES ('warm', 0)", &[])
        .await
        .context("warm-up insert")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = sub
            .query_one("SELECT count(*) FROM bench WHERE device = 'warm'", &[])
            .await?;
        if row.get::<_, i64>(0) == 1 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the PostgreSQL subscription did not deliver the warm-up row within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One COPY (its own autocommit transaction) of rows `first..first+rows` of `device`.
async fn pg_copy_batch(
    c: &tokio_postgres::Client,
    cfg: &Cfg,
    device: &str,
    first: usize,
    rows: usize,
) -> Result<()> {
    let values = (ValueType::Double, cfg.load.columns);
    copy_rows(c, values, device, (first, rows), device).await
}

async fn pg_max_time(
    c: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
    device: &str,
) -> Result<Option<i64>> {
    let row = c
        .query_one(stmt, &[&device])
        .await
        .context("SELECT max(time)")?;
    Ok(row.get::<_, Option<i64>>(0))
}

/// PostgreSQL counterpart of `duet_wait`: polls max(time) per device on the subscriber.
async fn pg_wait(
    sub: &tokio_postgres::Client,
    targets: &[(String, usize)],
    deadline: Instant,
) -> Result<Instant> {
    let stmt = sub
        .prepare("SELECT max(time) FROM bench WHERE device = $1")
        .await?;
    let mut done = vec![false; targets.len()];
    let mut last = vec![None; targets.len()];
    loop {
        for (k, (dev, rows)) in targets.iter().enumerate() {
            if !done[k] {
                last[k] = pg_max_time(sub, &stmt, dev).await?;
                done[k] = last[k] == Some(T0 + *rows as i64 - 1);
            }
        }
        let now = Instant::now();
        if done.iter().all(|d| *d) {
            return Ok(now);
        }
        if now > deadline {
            bail!(
                "PostgreSQL subscriber did not receive all rows in time: {:?} (last times {:?})",
                targets,
                last
            );
        }
    }
}

async fn pg_verify(sub: &tokio_postgres::Client, targets: &[(String, usize)]) -> Result<()> {
    for (dev, rows) in targets {
        let n: i64 = sub
            .query_one("SELECT count(*) FROM bench WHERE device = $1", &[dev])
            .await?
            .get(0);
        if n != *rows as i64 {
            bail!("PostgreSQL subscriber holds {n} rows of {dev}, expected {rows}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// 1. Sustained replicated throughput

#[derive(Debug, Clone, Copy, Default)]
struct Tp {
    /// From the barrier to the last acknowledged batch.
    ack_s: f64,
    /// From the barrier until the other side holds every row.
    repl_s: f64,
}

/// Waits until the instance that client `i` did not write to (clients write to A for an even `i`, to B
/// for an odd one) holds `rows[i]` rows of `<prefix>.d<i>`, then verifies them; returns the instant
/// it saw the last of them and the verification's notes.
async fn duet_crossed(
    checkers: &mut [Client],
    prefix: &str,
    rows: &[usize],
    deadline: Instant,
) -> Result<(Instant, Vec<String>)> {
    let targets: Vec<Expect> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Expect {
            inst: 1 - i % 2,
            device: format!("{prefix}.d{i}"),
            rows: *r,
        })
        .collect();
    let (seen, _) = duet_wait(checkers, &targets, deadline, None).await?;
    let notes = duet_verify(checkers, &targets).await?;
    Ok((seen, notes))
}

/// Client i writes `root.bench.d<i>` on A (even i) or B (odd i); then the other instance is polled
/// until it holds every row of every device.
async fn duet_throughput(
    cfg: Arc<Cfg>,
    opts: [ClientOptions; 2],
    checkers: &mut [Client],
) -> Result<(Tp, Vec<String>)> {
    let (start, acked, _) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        let opts = opts[i % 2].clone();
        async move {
            let mut c = setup_then_wait(connect(&opts), &barrier).await?;
            let device = format!("root.bench.d{i}");
            for b in 0..cfg.load.batches_per_client {
                insert_tablet(
                    &mut c,
                    &cfg,
                    &device,
                    b * cfg.load.rows_per_batch,
                    cfg.load.rows_per_batch,
                )
                .await?;
            }
            let done = Instant::now();
            c.close().await?;
            Ok((done, ()))
        }
    })
    .await?;
    let rows = vec![cfg.load.rows_per_client(); cfg.load.clients];
    let deadline = acked + cfg.timeout();
    let (seen, notes) = duet_crossed(checkers, "root.bench", &rows, deadline).await?;
    Ok((
        Tp {
            ack_s: (acked - start).as_secs_f64(),
            repl_s: (seen - start).as_secs_f64(),
        },
        notes,
    ))
}

/// All CLIENTS writers COPY into the publisher; the subscriber is polled until it holds every row.
async fn pg_throughput(cfg: Arc<Cfg>) -> Result<Tp> {
    let sub = pg_connect(&cfg, cfg.pg_sub_port).await?;
    let (start, acked, _) = barrier_clients(cfg.load.clients, |i, barrier| {
        let cfg = cfg.clone();
        async move {
            let c = setup_then_wait(pg_connect(&cfg, cfg.pg_pub_port), &barrier).await?;
            let device = format!("bench.d{i}");
            for b in 0..cfg.load.batches_per_client {
                pg_copy_batch(
                    &c,
                    &cfg,
                    &device,
                    b * cfg.load.rows_per_batch,
                    cfg.load.rows_per_batch,
                )
                .await?;
            }
            Ok((Instant::now(), ()))
        }
    })
    .await?;
    let targets: Vec<(String, usize)> = (0..cfg.load.clients)
        .map(|i| (format!("bench.d{i}"), cfg.load.rows_per_client()))
        .collect();
    let seen = pg_wait(&sub, &targets, acked + cfg.timeout()).await?;
    pg_verify(&sub, &targets).await?;
    Ok(Tp {
        ack_s: (acked - start).as_secs_f64(),
        repl_s: (seen - start).as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------------
// 2. Lag from acknowledgement to visibility

#[derive(Debug, Clone, Copy, Default)]
struct Lag {
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Rows seen on the other side before the writer had its acknowledgement (counted as 0 ms).
    before_ack: usize,
    /// Mean time of one visibility poll (the resolution of the measurement).
    poll_ms: f64,
}

fn lag_stats(
    acks: &[Instant],
    first_time: i64,
    obs: &[(Instant, i64)],
    polls: u64,
    poll_elapsed: Duration,
) -> Result<Lag> {
    let mut lags = Vec::with_capacity(acks.len());
    let mut before_ack = 0;
    for (k, ack) in acks.iter().enumerate() {
        let want = first_time + k as i64;
        let idx = obs.partition_point(|(_, t)| *t < want);
        let (seen, _) = obs
            .get(idx)
            .ok_or_else(|| anyhow!("row at time {want} was never seen"))?;
        if seen < ack {
            before_ack += 1;
        }
        lags.push(seen.saturating_duration_since(*ack).as_secs_f64() * 1e3);
    }
    if let Ok(dir) = std::env::var("LAG_DUMP_DIR") {
        // Raw samples in write order (ms), for looking at the shape of the distribution.
        let n = DUMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let text: String = lags.iter().map(|l| format!("{l:.3}\n")).collect();
        let _ = std::fs::write(Path::new(&dir).join(format!("lag-{n}.txt")), text);
    }
    lags.sort_by(|a, b| a.total_cmp(b));
    Ok(Lag {
        n: lags.len(),
        p50_ms: percentile(&lags, 0.5),
        p99_ms: percentile(&lags, 0.99),
        max_ms: lags.last().copied().unwrap_or(f64::NAN),
        before_ack,
        poll_ms: poll_elapsed.as_secs_f64() * 1e3 / polls.max(1) as f64,
    })
}

static DUMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Shared state between a lag writer and its poller.
struct LagShared {
    /// Newest time seen on the other side.
    seen: AtomicI64,
    /// The poller stops once it sees this time (i64::MAX until the writer is done).
    target: AtomicI64,
    stop: AtomicBool,
}

impl LagShared {
    fn new() -> Arc<LagShared> {
        Arc::new(LagShared {
            seen: AtomicI64::new(i64::MIN),
            target: AtomicI64::new(i64::MAX),
            stop: AtomicBool::new(false),
        })
    }
}

async fn wait_seen(shared: &LagShared, time: i64, timeout: Duration, what: &str) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while shared.seen.load(Ordering::Relaxed) < time {
        if Instant::now() > deadline {
            shared.stop.store(true, Ordering::Relaxed);
            bail!("{what}: the warm-up row (time {time}) never became visible on the other side");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

type Observations = (Vec<(Instant, i64)>, u64, Duration);

/// A lag run's poller of the other side: each newer time it sees with the instant it saw it, and
/// the number and the total time of its polls.
struct Poller {
    shared: Arc<LagShared>,
    obs: Vec<(Instant, i64)>,
    polls: u64,
    started: Instant,
}

impl Poller {
    fn new(shared: Arc<LagShared>) -> Poller {
        Poller {
            shared,
            obs: Vec::new(),
            polls: 0,
            started: Instant::now(),
        }
    }

    fn running(&self) -> bool {
        !self.shared.stop.load(Ordering::Relaxed)
    }

    /// Takes one poll's newest time (`None`: no row yet); true once it reaches the writer's target.
    fn seen(&mut self, newest: Option<i64>) -> bool {
        let lt = newest.unwrap_or(i64::MIN);
        let now = Instant::now();
        self.polls += 1;
        if lt > self.shared.seen.load(Ordering::Relaxed) {
            self.shared.seen.store(lt, Ordering::Relaxed);
            self.obs.push((now, lt));
        }
        lt >= self.shared.target.load(Ordering::Relaxed)
    }

    fn observations(self) -> Observations {
        (self.obs, self.polls, self.started.elapsed())
    }
}

/// A lag run's writer: one row per call, acknowledged when the call returns.
trait LagWriter {
    /// Writes row `r`'s values at `time`.
    async fn write_row(&mut self, r: usize, time: i64) -> Result<()>;
    /// Called once the timed rows are written.
    async fn finish(self)
    where
        Self: Sized,
    {
    }
}

/// A lag run: the warm-up row (it creates the series on both sides; not measured), then LAG_SAMPLES
/// rows every LAG_INTERVAL_MS, each timed from its acknowledgement to the poller's first sight of it.
/// `late` says what went wrong when the poller did not see the last row within TIMEOUT_SECONDS.
async fn lag_run(
    cfg: &Cfg,
    shared: &LagShared,
    device: &str,
    mut writer: impl LagWriter,
    poller: JoinHandle<Result<Observations>>,
    late: impl FnOnce(i64) -> anyhow::Error,
) -> Result<Lag> {
    let last = T0 + cfg.lag_samples as i64 - 1;
    let result = async {
        writer.write_row(0, T0 - 1).await?;
        wait_seen(shared, T0 - 1, cfg.timeout(), device).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.lag_interval_ms.max(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut acks = Vec::with_capacity(cfg.lag_samples);
        for k in 0..cfg.lag_samples {
            tick.tick().await;
            writer.write_row(k, T0 + k as i64).await?;
            acks.push(Instant::now());
        }
        shared.target.store(last, Ordering::Relaxed);
        Ok::<_, anyhow::Error>(acks)
    }
    .await;
    let acks = match result {
        Ok(a) => a,
        Err(e) => {
            shared.stop.store(true, Ordering::Relaxed);
            let _ = poller.await;
            return Err(e);
        }
    };
    writer.finish().await;
    let (obs, polls, elapsed) = match tokio::time::timeout(cfg.timeout(), poller).await {
        Ok(r) => r.map_err(|e| anyhow!("poller panicked: {e}"))??,
        Err(_) => {
            shared.stop.store(true, Ordering::Relaxed);
            return Err(late(last));
        }
    };
    lag_stats(&acks, T0, &obs, polls, elapsed)
}

/// Duet's lag writer: `insertRecord` on one session.
struct DuetLagWriter<'a> {
    client: Client,
    cfg: &'a Cfg,
    device: &'a str,
}

impl LagWriter for DuetLagWriter<'_> {
    async fn write_row(&mut self, r: usize, time: i64) -> Result<()> {
        insert_record(&mut self.client, self.cfg, self.device, r, time).await
    }

    async fn finish(self) {
        let _ = self.client.close().await;
    }
}

/// Duet: single-row inserts into `device` on A every LAG_INTERVAL_MS; B polled with `select last s0`.
async fn duet_lag(
    cfg: Arc<Cfg>,
    a: &ClientOptions,
    b: &ClientOptions,
    device: &str,
) -> Result<Lag> {
    let shared = LagShared::new();
    let mut poller_client = connect(b).await?;
    let client = connect(a).await?;
    let poller: JoinHandle<Result<Observations>> = {
        let mut poll = Poller::new(shared.clone());
        let device = device.to_string();
        tokio::spawn(async move {
            while poll.running() {
                if poll.seen(last_time(&mut poller_client, &device).await?) {
                    break;
                }
            }
            let observations = poll.observations();
            let _ = poller_client.close().await;
            Ok(observations)
        })
    };
    let writer = DuetLagWriter {
        client,
        cfg: &cfg,
        device,
    };
    lag_run(&cfg, &shared, device, writer, poller, |last| {
        anyhow!(
            "lag run on {device}: the last row (time {last}) did not become visible on B within {} s of its acknowledgement (newest seen: {})",
            cfg.timeout_s,
            shared.seen.load(Ordering::Relaxed)
        )
    })
    .await
}

/// PostgreSQL's lag writer: a prepared INSERT (autocommit) on the publisher.
struct PgLagWriter<'a> {
    publ: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    device: &'a str,
    columns: usize,
}

impl LagWriter for PgLagWriter<'_> {
    async fn write_row(&mut self, r: usize, time: i64) -> Result<()> {
        let device = self.device;
        let vals: Vec<f64> = (0..self.columns).map(|j| value_f64(r, j)).collect();
        let mut row: Vec<&(dyn ToSql + Sync)> = vec![&device, &time];
        row.extend(vals.iter().map(|v| v as &(dyn ToSql + Sync)));
        let n = self
            .publ
            .execute(&self.insert, &row)
            .await
            .with_context(|| format!("INSERT {device} time {time}"))?;
        if n != 1 {
            bail!("INSERT {device} time {time} inserted {n} rows");
        }
        Ok(())
    }
}

/// PostgreSQL: single-row INSERTs (autocommit) on the publisher; the subscriber polled with max(time).
async fn pg_lag(cfg: Arc<Cfg>, device: &str) -> Result<Lag> {
    let shared = LagShared::new();
    let sub = pg_connect(&cfg, cfg.pg_sub_port).await?;
    let publ = pg_connect(&cfg, cfg.pg_pub_port).await?;
    let params: Vec<String> = (1..=cfg.load.columns + 2)
        .map(|k| format!("${k}"))
        .collect();
    let insert = publ
        .prepare(&format!("INSERT INTO bench VALUES ({})", params.join(", ")))
        .await
        .context("prepare INSERT")?;
    let poller: JoinHandle<Result<Observations>> = {
        let mut poll = Poller::new(shared.clone());
        let device = device.to_string();
        tokio::spawn(async move {
            let stmt = sub
                .prepare("SELECT max(time) FROM bench WHERE device = $1")
                .await?;
            while poll.running() {
                if poll.seen(pg_max_time(&sub, &stmt, &device).await?) {
                    break;
                }
            }
            Ok(poll.observations())
        })
    };
    let writer = PgLagWriter {
        publ,
        insert,
        device,
        columns: cfg.load.columns,
    };
    lag_run(&cfg, &shared, device, writer, poller, |_| {
        anyhow!(
            "PostgreSQL lag run on {device}: the last row did not reach the subscriber within {} s",
            cfg.timeout_s
        )
    })
    .await
}

// ---------------------------------------------------------------------------------------------------
// Paced background writers (moderate load, outage backlog)

/// A background writer's pace: its share of `points_per_s` in batches of ROWS_PER_BATCH rows, until
/// `stop` is set; at 0 points/s as fast as it can (item 2c). The clock starts at the first batch.
struct Pace {
    period: Option<Duration>,
    tick: Option<tokio::time::Interval>,
    stop: Arc<AtomicBool>,
}

impl Pace {
    fn new(cfg: &Cfg, writers: usize, points_per_s: f64, stop: Arc<AtomicBool>) -> Pace {
        let period = (points_per_s > 0.0)
            .then(|| Duration::from_secs_f64(writers as f64 * cfg.tablet_points() / points_per_s));
        Pace {
            period,
            tick: None,
            stop,
        }
    }

    /// Waits for the next batch's turn; false once `stop` is set.
    async fn next(&mut self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(period) = self.period {
            let tick = self.tick.get_or_insert_with(|| {
                let mut i = tokio::time::interval(period);
                i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                i
            });
            tick.tick().await;
        }
        !self.stop.load(Ordering::Relaxed)
    }
}

/// One task per writer, each running `write(writer, cfg, its pace)` at its share of `points_per_s`
/// until `stop` is set; each returns the rows it wrote.
fn spawn_paced<W, F, Fut>(
    cfg: &Arc<Cfg>,
    writers: Vec<W>,
    points_per_s: f64,
    stop: &Arc<AtomicBool>,
    write: F,
) -> Vec<JoinHandle<Result<usize>>>
where
    F: Fn(W, Arc<Cfg>, Pace) -> Fut,
    Fut: std::future::Future<Output = Result<usize>> + Send + 'static,
{
    let n = writers.len();
    writers
        .into_iter()
        .map(|w| {
            let pace = Pace::new(cfg, n, points_per_s, stop.clone());
            tokio::spawn(write(w, cfg.clone(), pace))
        })
        .collect()
}

/// Writers of 1000-row tablets, together at `points_per_s` (0: as fast as they can), until `stop`
/// is set or each has written `max_rows`.
fn spawn_duet_writers(
    cfg: Arc<Cfg>,
    writers: Vec<(ClientOptions, String)>,
    points_per_s: f64,
    max_rows: usize,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<Result<usize>>> {
    spawn_paced(
        &cfg,
        writers,
        points_per_s,
        &stop,
        move |(opts, device), cfg, mut pace| async move {
            let mut c = connect(&opts).await?;
            let mut rows = 0usize;
            while rows < max_rows && pace.next().await {
                let batch = cfg.load.rows_per_batch.min(max_rows - rows);
                insert_tablet(&mut c, &cfg, &device, rows, batch).await?;
                rows += batch;
            }
            c.close().await?;
            Ok(rows)
        },
    )
}

/// Writers of 1000-row COPY batches into the publisher, together at `points_per_s` (0: as fast as
/// they can), until `stop` is set.
fn spawn_pg_writers(
    cfg: Arc<Cfg>,
    devices: Vec<String>,
    points_per_s: f64,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<Result<usize>>> {
    spawn_paced(
        &cfg,
        devices,
        points_per_s,
        &stop,
        |device, cfg, mut pace| async move {
            let c = pg_connect(&cfg, cfg.pg_pub_port).await?;
            let mut rows = 0usize;
            while pace.next().await {
                pg_copy_batch(&c, &cfg, &device, rows, cfg.load.rows_per_batch).await?;
                rows += cfg.load.rows_per_batch;
            }
            Ok(rows)
        },
    )
}

#[derive(Debug, Clone, Copy, Default)]
struct Loaded {
    lag: Lag,
    target_pts_s: f64,
    achieved_pts_s: f64,
    /// From stopping the background writers until the other side holds all their rows.
    drain_s: f64,
}

/// 2b for Duet: CLIENTS background writers (half on A, half on B, devices root.load.d<i>) at
/// `rate` points/s in total while the lag run goes on.
async fn duet_lag_loaded(
    cfg: &Arc<Cfg>,
    opts: &[ClientOptions; 2],
    checkers: &mut [Client],
    (rate, load, lag_device): (f64, &str, &str),
    notes: &mut Vec<String>,
) -> Result<Loaded> {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<(ClientOptions, String)> = (0..cfg.load.clients)
        .map(|i| (opts[i % 2].clone(), format!("root.{load}.d{i}")))
        .collect();
    let started = Instant::now();
    let handles = spawn_duet_writers(cfg.clone(), writers, rate, usize::MAX, stop.clone());
    let lag = duet_lag(cfg.clone(), &opts[0], &opts[1], lag_device);
    let run = under_load(cfg, (started, handles, &stop), lag).await?;
    let deadline = Instant::now() + cfg.timeout();
    let (seen, crossed_notes) =
        duet_crossed(checkers, &format!("root.{load}"), &run.rows, deadline).await?;
    notes.extend(crossed_notes);
    Ok(run.loaded(rate, seen))
}

async fn pg_lag_loaded(cfg: Arc<Cfg>, rate: f64, load: &str, lag_device: &str) -> Result<Loaded> {
    let stop = Arc::new(AtomicBool::new(false));
    let devices: Vec<String> = (0..cfg.load.clients)
        .map(|i| format!("{load}.d{i}"))
        .collect();
    let started = Instant::now();
    let handles = spawn_pg_writers(cfg.clone(), devices.clone(), rate, stop.clone());
    let lag = pg_lag(cfg.clone(), lag_device);
    let run = under_load(&cfg, (started, handles, &stop), lag).await?;
    let sub = pg_connect(&cfg, cfg.pg_sub_port).await?;
    let targets: Vec<(String, usize)> = devices
        .into_iter()
        .zip(run.rows.iter().copied())
        .filter(|(_, r)| *r > 0)
        .collect();
    let seen = pg_wait(&sub, &targets, Instant::now() + cfg.timeout()).await?;
    pg_verify(&sub, &targets).await?;
    Ok(run.loaded(rate, seen))
}

/// A lag run under the load of background writers, and what they wrote.
struct UnderLoad {
    lag: Lag,
    /// The rows each writer wrote.
    rows: Vec<usize>,
    /// When the writers were told to stop.
    stopped: Instant,
    achieved_pts_s: f64,
}

impl UnderLoad {
    /// The item's figures, the writers' rows having been all seen on the other side at `seen`.
    fn loaded(self, target_pts_s: f64, seen: Instant) -> Loaded {
        Loaded {
            lag: self.lag,
            target_pts_s,
            achieved_pts_s: self.achieved_pts_s,
            drain_s: seen.saturating_duration_since(self.stopped).as_secs_f64(),
        }
    }
}

/// Runs `lag` a second after the background writers (`handles`, started at `started`) began, then
/// stops them and waits for them.
async fn under_load(
    cfg: &Cfg,
    (started, handles, stop): (Instant, Vec<JoinHandle<Result<usize>>>, &AtomicBool),
    lag: impl std::future::Future<Output = Result<Lag>>,
) -> Result<UnderLoad> {
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let lag = lag.await;
    stop.store(true, Ordering::Relaxed);
    let stopped = Instant::now();
    let rows = join_tasks(handles, "writer").await?;
    let lag = lag?;
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = rows.iter().sum();
    Ok(UnderLoad {
        lag,
        rows,
        stopped,
        achieved_pts_s: (total * cfg.load.columns) as f64 / elapsed,
    })
}

// ---------------------------------------------------------------------------------------------------
// 3. Catch-up after an outage of B

#[derive(Debug, Clone, Default)]
struct Sample {
    at: Option<Instant>,
    /// Seconds relative to B's restart being ready (negative: during the outage).
    t: f64,
    state: String,
    remaining: String,
    est_seconds: String,
    b_rows: u64,
    exception: String,
    /// How long this SHOW PIPES took to answer.
    show_ms: f64,
}

#[derive(Debug, Clone, Default)]
struct Outage {
    backlog_points: f64,
    write_s: f64,
    target_pts_s: f64,
    b_start_s: f64,
    /// B ready → first backlog rows visible on B.
    first_data_s: f64,
    /// B ready → B holds the whole backlog.
    catchup_s: f64,
    remaining_at_restart: String,
    samples: Vec<Sample>,
    rss_b_restarted: u64,
    rss_b_before_stop: u64,
    b_stop_s: f64,
}

fn spawn_sampler(
    a: ClientOptions,
    every: Duration,
    b_rows: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<Vec<Sample>>> {
    tokio::spawn(async move {
        let mut c = connect(&a).await?;
        let mut out = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let asked = Instant::now();
            let pipes = show_pipes(&mut c).await?;
            let show_ms = asked.elapsed().as_secs_f64() * 1e3;
            let p = pipes
                .into_iter()
                .find(|p| p.id.eq_ignore_ascii_case("AB"))
                .unwrap_or_default();
            out.push(Sample {
                at: Some(Instant::now()),
                t: 0.0,
                state: p.state,
                remaining: p.remaining,
                est_seconds: p.est_seconds,
                b_rows: b_rows.load(Ordering::Relaxed),
                exception: p.exception,
                show_ms,
            });
        }
        let _ = c.close().await;
        Ok(out)
    })
}

struct Pair {
    a: Duetd,
    b: Duetd,
}

async fn duet_outage(cfg: Arc<Cfg>, pair: &mut Pair, rate: f64) -> Result<Outage> {
    let a_opts = session_options(&pair.a);
    let b_port = pair.b.port;
    let b_dir = pair.b.data_dir.clone();
    let writers_n = (cfg.load.clients / 2).max(1);
    // Stop B.
    log(&format!("outage: stopping B (pid {}, SIGTERM)", pair.b.pid));
    let rss_b_before_stop = pair.b.peak_rss()?;
    let stopping = Instant::now();
    pair.b.stop()?;
    let outage_started = Instant::now();
    let b_stop_s = (outage_started - stopping).as_secs_f64();
    log(&format!("outage: B exited {b_stop_s:.2} s after SIGTERM"));
    let b_rows = Arc::new(AtomicU64::new(0));
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(
        a_opts.clone(),
        Duration::from_millis(cfg.sample_ms.max(100)),
        b_rows.clone(),
        sampler_stop.clone(),
    );
    // Backlog on A.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<(ClientOptions, String)> = (0..writers_n)
        .map(|i| (a_opts.clone(), format!("root.outage.d{i}")))
        .collect();
    let (handles, target) = if cfg.outage_rows > 0 {
        let per = cfg.outage_rows.div_ceil(writers_n);
        (
            spawn_duet_writers(cfg.clone(), writers, 0.0, per, stop.clone()),
            0.0,
        )
    } else {
        let h = spawn_duet_writers(cfg.clone(), writers, rate, usize::MAX, stop.clone());
        tokio::time::sleep(Duration::from_secs_f64(cfg.outage_seconds)).await;
        stop.store(true, Ordering::Relaxed);
        (h, rate)
    };
    let rows = join_tasks(handles, "writer").await?;
    let write_s = outage_started.elapsed().as_secs_f64();
    let backlog_points = (rows.iter().sum::<usize>() * cfg.load.columns) as f64;
    log(&format!(
        "outage: wrote {} rows ({} points) on A in {write_s:.1} s; restarting B on port {b_port}",
        rows.iter().sum::<usize>(),
        backlog_points
    ));
    let remaining_at_restart = {
        let mut c = connect(&a_opts).await?;
        let p = show_pipes(&mut c).await?;
        let _ = c.close().await;
        p.into_iter()
            .find(|p| p.id.eq_ignore_ascii_case("AB"))
            .map(|p| p.remaining)
            .unwrap_or_default()
    };
    // Restart B on the same data dir and port.
    let spawned = Instant::now();
    pair.b = start_duetd(&cfg, "B", &b_dir, b_port)?;
    let ready = Instant::now();
    pair.b.reset_peak();
    let mut checkers = vec![
        connect(&a_opts).await?,
        connect(&session_options(&pair.b)).await?,
    ];
    let targets: Vec<Expect> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Expect {
            inst: 1,
            device: format!("root.outage.d{i}"),
            rows: *r,
        })
        .collect();
    let waited = duet_wait(
        &mut checkers,
        &targets,
        ready + cfg.timeout(),
        Some(&b_rows),
    )
    .await;
    sampler_stop.store(true, Ordering::Relaxed);
    let mut samples = sampler
        .await
        .map_err(|e| anyhow!("sampler panicked: {e}"))??;
    for smp in &mut samples {
        if let Some(at) = smp.at {
            smp.t = if at >= ready {
                (at - ready).as_secs_f64()
            } else {
                -(ready - at).as_secs_f64()
            };
        }
    }
    let (done, first) = waited?;
    duet_verify(&mut checkers, &targets).await?;
    for c in checkers {
        let _ = c.close().await;
    }
    Ok(Outage {
        backlog_points,
        write_s,
        target_pts_s: target,
        b_start_s: (ready - spawned).as_secs_f64(),
        first_data_s: first
            .map(|f| f.saturating_duration_since(ready).as_secs_f64())
            .unwrap_or(f64::NAN),
        catchup_s: (done - ready).as_secs_f64(),
        remaining_at_restart,
        samples,
        rss_b_restarted: pair.b.peak_rss()?,
        rss_b_before_stop,
        b_stop_s,
    })
}

// ---------------------------------------------------------------------------------------------------
// One repeat

#[derive(Debug, Clone, Default)]
struct Repeat {
    duet_tp: Tp,
    pg_tp: Option<Tp>,
    duet_idle: Lag,
    pg_idle: Option<Lag>,
    duet_loaded: Loaded,
    pg_loaded: Option<Loaded>,
    duet_max: Loaded,
    pg_max: Option<Loaded>,
    outage: Outage,
    rss_a: [u64; 3], // throughput, lag, outage + catch-up
    rss_b: [u64; 3], // throughput, lag, catch-up (restarted process)
    rss_reset_ok: bool,
    notes: Vec<String>,
}

async fn create_pipes(pair: &Pair) -> Result<()> {
    let (a, b) = (session_options(&pair.a), session_options(&pair.b));
    for (from, to, name) in [(&a, &b, "AB"), (&b, &a, "BA")] {
        let mut c = connect(from).await?;
        let sql = format!(
            "create pipe {name} with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink','sink.ip'='127.0.0.1','sink.port'='{}')",
            to.port
        );
        c.execute_update(&sql)
            .await
            .with_context(|| format!("{sql:?}"))?;
        c.close().await?;
    }
    // Warm-up both directions (also proves the pipes run).
    let mut checkers = vec![connect(&a).await?, connect(&b).await?];
    for (src, dev) in [(0usize, "root.warm.a"), (1usize, "root.warm.b")] {
        insert_tablet(&mut checkers[src], &dummy_cfg(), dev, 0, 1).await?;
    }
    let targets = vec![
        Expect {
            inst: 1,
            device: "root.warm.a".into(),
            rows: 1,
        },
        Expect {
            inst: 0,
            device: "root.warm.b".into(),
            rows: 1,
        },
    ];
    duet_wait(
        &mut checkers,
        &targets,
        Instant::now() + Duration::from_secs(60),
        None,
    )
    .await
    .context("warm-up rows through both pipes")?;
    for c in checkers {
        c.close().await?;
    }
    Ok(())
}

fn dummy_cfg() -> Cfg {
    Cfg {
        load: Load {
            clients: 2,
            rows_per_batch: 1,
            columns: 1,
            batches_per_client: 1,
            repeats: 1,
        },
        lag_samples: 1,
        lag_interval_ms: 10,
        load_fraction: 0.5,
        outage_seconds: 1.0,
        outage_rows: 0,
        outage_rate: 0.0,
        sample_ms: 1000,
        timeout_s: 60.0,
        skip_pg: true,
        pg_pub_port: 0,
        pg_sub_port: 0,
        env: RunEnv::default(),
    }
}

async fn duet_repeat(cfg: Arc<Cfg>, n: usize, rep: &mut Repeat) -> Result<()> {
    let dir_a = cfg.env.work_dir.join(format!("duet-{n}-a"));
    let dir_b = cfg.env.work_dir.join(format!("duet-{n}-b"));
    for d in [&dir_a, &dir_b] {
        let _ = std::fs::remove_dir_all(d);
    }
    let mut pair = Pair {
        a: start_duetd(&cfg, "A", &dir_a, 0)?,
        b: start_duetd(&cfg, "B", &dir_b, 0)?,
    };
    log(&format!(
        "repeat {n}: duetd A pid {} port {}, B pid {} port {}",
        pair.a.pid, pair.a.port, pair.b.pid, pair.b.port
    ));
    let result = duet_phases(cfg.clone(), n, &mut pair, rep).await;
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut diag = String::new();
            if pair.a.is_running() {
                diag.push_str(&pipes_text(&session_options(&pair.a), "A").await);
            }
            if pair.b.is_running() {
                diag.push_str(&pipes_text(&session_options(&pair.b), "B").await);
            }
            for d in [&pair.a, &pair.b] {
                let _ = write!(diag, "--- tail of {}:\n{}\n", d.log.display(), tail(&d.log));
            }
            Err(e.context(diag))
        }
    };
    result?;
    pair.a.stop()?;
    pair.b.stop()?;
    for d in [&dir_a, &dir_b] {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}

async fn duet_phases(cfg: Arc<Cfg>, n: usize, pair: &mut Pair, rep: &mut Repeat) -> Result<()> {
    create_pipes(pair)
        .await
        .context("creating pipes AB and BA")?;
    let opts = [session_options(&pair.a), session_options(&pair.b)];
    let mut checkers = vec![connect(&opts[0]).await?, connect(&opts[1]).await?];

    // 1. Throughput.
    rep.rss_reset_ok = pair.a.reset_peak() & pair.b.reset_peak();
    let (tp, notes) = duet_throughput(cfg.clone(), opts.clone(), &mut checkers)
        .await
        .context("1. Duet replicated throughput")?;
    rep.notes.extend(notes);
    rep.duet_tp = tp;
    rep.rss_a[0] = pair.a.peak_rss()?;
    rep.rss_b[0] = pair.b.peak_rss()?;
    let max_rate = cfg.total_points() / tp.repl_s;
    log(&format!(
        "repeat {n}: Duet throughput: acked in {:.2} s, replicated in {:.2} s = {}",
        tp.ack_s,
        tp.repl_s,
        rate(max_rate, "pts/s")
    ));

    // 2a/2b. Lag. Item 1 leaves flushes and merges behind; "idle" means they are done too.
    flush_all(&mut checkers, "FLUSH after item 1").await?;
    pair.a.reset_peak();
    pair.b.reset_peak();
    rep.duet_idle = duet_lag(cfg.clone(), &opts[0], &opts[1], "root.lag.d1")
        .await
        .context("2a. Duet lag at idle")?;
    log(&format!(
        "repeat {n}: Duet lag at idle p50 {:.2} ms p99 {:.2} ms (poll {:.2} ms)",
        rep.duet_idle.p50_ms, rep.duet_idle.p99_ms, rep.duet_idle.poll_ms
    ));
    let load_rate = cfg.load_fraction * max_rate;
    let run = (load_rate, "load", "root.lag.d2");
    rep.duet_loaded = duet_lag_loaded(&cfg, &opts, &mut checkers, run, &mut rep.notes)
        .await
        .context("2b. Duet lag under load")?;
    log_loaded(n, "Duet", &rep.duet_loaded);
    // 2c. The same at the maximum load: the background writers unpaced.
    flush_all(&mut checkers, "FLUSH after item 2b").await?;
    let run = (0.0, "max", "root.lag.d3");
    rep.duet_max = duet_lag_loaded(&cfg, &opts, &mut checkers, run, &mut rep.notes)
        .await
        .context("2c. Duet lag at maximum load")?;
    log_loaded(n, "Duet", &rep.duet_max);
    rep.rss_a[1] = pair.a.peak_rss()?;
    rep.rss_b[1] = pair.b.peak_rss()?;
    for c in checkers {
        let _ = c.close().await;
    }

    // 3. Outage and catch-up.
    pair.a.reset_peak();
    let outage_rate = if cfg.outage_rate > 0.0 {
        cfg.outage_rate
    } else {
        load_rate
    };
    rep.outage = duet_outage(cfg.clone(), pair, outage_rate)
        .await
        .context("3. Duet catch-up after an outage of B")?;
    rep.rss_a[2] = pair.a.peak_rss()?;
    rep.rss_b[2] = rep.outage.rss_b_restarted;
    rep.rss_b[1] = rep.rss_b[1].max(rep.outage.rss_b_before_stop);
    let o = &rep.outage;
    log(&format!(
        "repeat {n}: catch-up of {} points: B ready after {:.2} s, first rows {:.2} s, all {:.2} s = {}",
        o.backlog_points,
        o.b_start_s,
        o.first_data_s,
        o.catchup_s,
        rate(o.backlog_points / o.catchup_s, "pts/s")
    ));
    // Pipe state after the run (exceptions left behind are worth reporting).
    for (opts, name) in [
        (session_options(&pair.a), "A"),
        (session_options(&pair.b), "B"),
    ] {
        let mut c = connect(&opts).await?;
        for p in show_pipes(&mut c).await? {
            if !p.exception.is_empty() || p.state != "RUNNING" {
                rep.notes.push(format!(
                    "after the run, pipe {} on {name}: state {}, exception {:?}",
                    p.id, p.state, p.exception
                ));
            }
        }
        let _ = c.close().await;
    }
    Ok(())
}

async fn pg_repeat(cfg: Arc<Cfg>, n: usize, rep: &mut Repeat) -> Result<()> {
    pg_reset(&cfg).await.context("PostgreSQL reset")?;
    let tp = pg_throughput(cfg.clone())
        .await
        .context("PostgreSQL throughput")?;
    let max_rate = cfg.total_points() / tp.repl_s;
    log(&format!(
        "repeat {n}: PostgreSQL throughput: acked in {:.2} s, replicated in {:.2} s = {}",
        tp.ack_s,
        tp.repl_s,
        rate(max_rate, "pts/s")
    ));
    rep.pg_tp = Some(tp);
    // As for Duet: the work item 1 left behind is done before "idle".
    pg_checkpoint_all(&cfg, "CHECKPOINT after item 1").await?;
    let idle = pg_lag(cfg.clone(), "lag.d1")
        .await
        .context("PostgreSQL lag at idle")?;
    log(&format!(
        "repeat {n}: PostgreSQL lag at idle p50 {:.2} ms p99 {:.2} ms (poll {:.2} ms)",
        idle.p50_ms, idle.p99_ms, idle.poll_ms
    ));
    rep.pg_idle = Some(idle);
    let loaded = pg_lag_loaded(cfg.clone(), cfg.load_fraction * max_rate, "load", "lag.d2")
        .await
        .context("PostgreSQL lag under load")?;
    log_loaded(n, "PostgreSQL", &loaded);
    rep.pg_loaded = Some(loaded);
    pg_checkpoint_all(&cfg, "CHECKPOINT after item 2b").await?;
    let loaded = pg_lag_loaded(cfg.clone(), 0.0, "max", "lag.d3")
        .await
        .context("PostgreSQL lag at maximum load")?;
    log_loaded(n, "PostgreSQL", &loaded);
    rep.pg_max = Some(loaded);
    Ok(())
}

/// CHECKPOINT on the publisher and the subscriber; `what` names it in the error.
async fn pg_checkpoint_all(cfg: &Cfg, what: &str) -> Result<()> {
    for port in [cfg.pg_pub_port, cfg.pg_sub_port] {
        let c = pg_connect(cfg, port).await?;
        c.batch_execute("CHECKPOINT")
            .await
            .context(what.to_string())?;
    }
    Ok(())
}

/// FLUSH on every instance; `what` names it in the error.
async fn flush_all(checkers: &mut [Client], what: &str) -> Result<()> {
    for c in checkers.iter_mut() {
        c.execute_update("flush").await.context(what.to_string())?;
    }
    Ok(())
}

fn log_loaded(n: usize, system: &str, loaded: &Loaded) {
    let target = if loaded.target_pts_s > 0.0 {
        rate(loaded.target_pts_s, "pts/s")
    } else {
        "unpaced writers".into()
    };
    log(&format!(
        "repeat {n}: {system} lag under {target} (achieved {}) p50 {:.2} ms p99 {:.2} ms; drain {:.2} s",
        rate(loaded.achieved_pts_s, "pts/s"),
        loaded.lag.p50_ms,
        loaded.lag.p99_ms,
        loaded.drain_s
    ));
}

// ---------------------------------------------------------------------------------------------------
// Report

fn fmt_pts(x: f64) -> String {
    rate(x, "pts/s")
}
fn fmt_ms(x: f64) -> String {
    format!("{x:.2} ms")
}
fn fmt_s(x: f64) -> String {
    format!("{x:.2} s")
}
fn fmt_mib(x: f64) -> String {
    format!("{:.0} MiB", x / (1024.0 * 1024.0))
}
fn fmt_pts_n(x: f64) -> String {
    rate(x, "pts")
}
fn fmt_n(x: f64) -> String {
    format!("{x:.0}")
}

fn report(cfg: &Cfg, reps: &[Repeat], pg_ver: &str, elapsed: Duration) -> String {
    let pts = cfg.total_points();
    let d = |f: fn(&Repeat) -> f64| -> Vec<f64> { reps.iter().map(f).collect() };
    let p = |f: fn(&Repeat) -> Option<f64>| -> Option<Vec<f64>> { reps.iter().map(f).collect() };
    let pts_of = move |s: f64| pts / s;
    let _ = pts_of;
    let lines = vec![
        Line { item: "1. Replicated throughput (Duet: 2+2 writers, both directions; PG: 4 writers, one direction)", metric: "end-to-end points/s (written → held by both sides)", duet: reps.iter().map(|r| pts / r.duet_tp.repl_s).collect(), pg: p(|r| r.pg_tp.map(|t| 0.0 + t.repl_s)).map(|v| v.into_iter().map(|s| pts / s).collect()), fmt: fmt_pts },
        Line { item: "1. Replicated throughput", metric: "acknowledged write rate (points/s)", duet: reps.iter().map(|r| pts / r.duet_tp.ack_s).collect(), pg: p(|r| r.pg_tp.map(|t| t.ack_s)).map(|v| v.into_iter().map(|s| pts / s).collect()), fmt: fmt_pts },
        Line { item: "1. Replicated throughput", metric: "replication tail after the last ack", duet: d(|r| r.duet_tp.repl_s - r.duet_tp.ack_s), pg: p(|r| r.pg_tp.map(|t| t.repl_s - t.ack_s)), fmt: fmt_s },
        Line { item: "2a. Lag at idle (ack → visible on the other side)", metric: "p50", duet: d(|r| r.duet_idle.p50_ms), pg: p(|r| r.pg_idle.map(|l| l.p50_ms)), fmt: fmt_ms },
        Line { item: "2a. Lag at idle", metric: "p99", duet: d(|r| r.duet_idle.p99_ms), pg: p(|r| r.pg_idle.map(|l| l.p99_ms)), fmt: fmt_ms },
        Line { item: "2a. Lag at idle", metric: "max", duet: d(|r| r.duet_idle.max_ms), pg: p(|r| r.pg_idle.map(|l| l.max_ms)), fmt: fmt_ms },
        Line { item: "2a. Lag at idle", metric: "one visibility poll (resolution)", duet: d(|r| r.duet_idle.poll_ms), pg: p(|r| r.pg_idle.map(|l| l.poll_ms)), fmt: fmt_ms },
        Line { item: "2b. Lag under moderate load", metric: "background load, target (LOAD_FRACTION × own max of 1)", duet: d(|r| r.duet_loaded.target_pts_s), pg: p(|r| r.pg_loaded.map(|l| l.target_pts_s)), fmt: fmt_pts },
        Line { item: "2b. Lag under moderate load", metric: "background load, achieved", duet: d(|r| r.duet_loaded.achieved_pts_s), pg: p(|r| r.pg_loaded.map(|l| l.achieved_pts_s)), fmt: fmt_pts },
        Line { item: "2b. Lag under moderate load", metric: "p50", duet: d(|r| r.duet_loaded.lag.p50_ms), pg: p(|r| r.pg_loaded.map(|l| l.lag.p50_ms)), fmt: fmt_ms },
        Line { item: "2b. Lag under moderate load", metric: "p99", duet: d(|r| r.duet_loaded.lag.p99_ms), pg: p(|r| r.pg_loaded.map(|l| l.lag.p99_ms)), fmt: fmt_ms },
        Line { item: "2b. Lag under moderate load", metric: "max", duet: d(|r| r.duet_loaded.lag.max_ms), pg: p(|r| r.pg_loaded.map(|l| l.lag.max_ms)), fmt: fmt_ms },
        Line { item: "2b. Lag under moderate load", metric: "drain after the load stops", duet: d(|r| r.duet_loaded.drain_s), pg: p(|r| r.pg_loaded.map(|l| l.drain_s)), fmt: fmt_s },
        Line { item: "2c. Lag at maximum load (background writers unpaced)", metric: "background load, achieved", duet: d(|r| r.duet_max.achieved_pts_s), pg: p(|r| r.pg_max.map(|l| l.achieved_pts_s)), fmt: fmt_pts },
        Line { item: "2c. Lag at maximum load", metric: "p50", duet: d(|r| r.duet_max.lag.p50_ms), pg: p(|r| r.pg_max.map(|l| l.lag.p50_ms)), fmt: fmt_ms },
        Line { item: "2c. Lag at maximum load", metric: "p99", duet: d(|r| r.duet_max.lag.p99_ms), pg: p(|r| r.pg_max.map(|l| l.lag.p99_ms)), fmt: fmt_ms },
        Line { item: "2c. Lag at maximum load", metric: "max", duet: d(|r| r.duet_max.lag.max_ms), pg: p(|r| r.pg_max.map(|l| l.lag.max_ms)), fmt: fmt_ms },
        Line { item: "2c. Lag at maximum load", metric: "drain after the load stops", duet: d(|r| r.duet_max.drain_s), pg: p(|r| r.pg_max.map(|l| l.drain_s)), fmt: fmt_s },
        Line { item: "3. Catch-up after B's outage", metric: "backlog written on A while B was down", duet: d(|r| r.outage.backlog_points), pg: None, fmt: fmt_pts_n },
        Line { item: "3. Catch-up after B's outage", metric: "RemainingEventCount of AB when B restarts", duet: d(|r| r.outage.remaining_at_restart.trim_end_matches('+').parse().unwrap_or(f64::NAN)), pg: None, fmt: fmt_n },
        Line { item: "3. Catch-up after B's outage", metric: "B shutdown: SIGTERM → exit (before the outage)", duet: d(|r| r.outage.b_stop_s), pg: None, fmt: fmt_s },
        Line { item: "3. Catch-up after B's outage", metric: "B restart: spawn → listening", duet: d(|r| r.outage.b_start_s), pg: None, fmt: fmt_s },
        Line { item: "3. Catch-up after B's outage", metric: "B listening → first backlog rows on B", duet: d(|r| r.outage.first_data_s), pg: None, fmt: fmt_s },
        Line { item: "3. Catch-up after B's outage", metric: "B listening → B holds the whole backlog", duet: d(|r| r.outage.catchup_s), pg: None, fmt: fmt_s },
        Line { item: "3. Catch-up after B's outage", metric: "catch-up rate (backlog / catch-up time)", duet: d(|r| r.outage.backlog_points / r.outage.catchup_s), pg: None, fmt: fmt_pts },
        Line { item: "3. Catch-up after B's outage", metric: "transfer rate (backlog / time after first rows)", duet: d(|r| r.outage.backlog_points / (r.outage.catchup_s - r.outage.first_data_s)), pg: None, fmt: fmt_pts },
        Line { item: "4. Peak RSS (VmHWM)", metric: "A during 1", duet: d(|r| r.rss_a[0] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "B during 1", duet: d(|r| r.rss_b[0] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "A during 2a–2c", duet: d(|r| r.rss_a[1] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "B during 2a–2c", duet: d(|r| r.rss_b[1] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "A during 3 (outage + catch-up)", duet: d(|r| r.rss_a[2] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "B during 3 (restarted process, catch-up)", duet: d(|r| r.rss_b[2] as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "A, whole repeat", duet: d(|r| *r.rss_a.iter().max().unwrap_or(&0) as f64), pg: None, fmt: fmt_mib },
        Line { item: "4. Peak RSS (VmHWM)", metric: "B, whole repeat", duet: d(|r| *r.rss_b.iter().max().unwrap_or(&0) as f64), pg: None, fmt: fmt_mib },
    ];

    let mut s = String::new();
    let _ = writeln!(s, "# Duet replication benchmark\n");
    let _ = writeln!(s, "- Duet: `{}` (rev {}), two fresh instances per repeat, pipes AB and BA (`source.mode.double-living`, `iotdb-thrift-sink`, defaults otherwise)", cfg.env.duetd_bin.display(), cfg.env.duet_rev);
    let _ = writeln!(s, "- PostgreSQL: {pg_ver}");
    let _ = writeln!(
        s,
        "- Machine: {}; clients, both duetd and both PostgreSQL clusters share it",
        machine()
    );
    let _ = writeln!(
        s,
        "- Parameters: CLIENTS={} ROWS_PER_BATCH={} COLUMNS={} (DOUBLE) BATCHES_PER_CLIENT={} REPEATS={} LAG_SAMPLES={} LAG_INTERVAL_MS={} LOAD_FRACTION={} OUTAGE_SECONDS={} OUTAGE_ROWS={} OUTAGE_RATE={} TIMEOUT_SECONDS={}",
        cfg.load.clients, cfg.load.rows_per_batch, cfg.load.columns, cfg.load.batches_per_client, cfg.load.repeats, cfg.lag_samples, cfg.lag_interval_ms, cfg.load_fraction, cfg.outage_seconds, cfg.outage_rows, cfg.outage_rate, cfg.timeout_s
    );
    let _ = writeln!(s, "- Item 1 writes {} points per repeat ({} rows per client); Duet: clients 0, 2, … write to A and 1, 3, … to B; PostgreSQL: all clients write to the publisher", pts, cfg.load.rows_per_client());
    let _ = writeln!(s, "- Benchmark wall time: {:.0} s\n", elapsed.as_secs_f64());
    let _ = writeln!(s, "Median of {} repeats (min – max next to it). Duet/PG is the ratio of medians: > 1 for a rate means Duet is faster; < 1 for a lag, time or size means Duet is lower. Rows without a PostgreSQL counterpart show —.\n", reps.len());
    comparison_table(&mut s, "Item", &lines);
    if reps.iter().any(|r| !r.rss_reset_ok) {
        let _ = writeln!(s, "\nNote: /proc/<pid>/clear_refs could not reset VmHWM, so per-phase peaks are cumulative.");
    }
    let before: Vec<String> = reps
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r.duet_idle.before_ack + r.duet_loaded.lag.before_ack,
                r.duet_idle.n + r.duet_loaded.lag.n
            )
        })
        .collect();
    let _ = writeln!(s, "\nLag samples seen on the other side before the writer had its acknowledgement (counted as 0 ms), Duet per repeat: {}", before.join(", "));

    let _ = writeln!(
        s,
        "\n## Catch-up: pipe AB on A while B is down and after it restarts\n"
    );
    let _ = writeln!(s, "t is seconds since the restarted B was listening (negative: during the outage); rows on B is what `select last s0` shows over the outage devices (polled back to back during the catch-up, 0 before B is back). SHOW PIPES counts the backlog (up to 20,000 entries) by reading the change log's entry headers, so each sample costs A some CPU in proportion to the backlog.\n");
    for (i, r) in reps.iter().enumerate() {
        let _ = writeln!(
            s,
            "Repeat {} (backlog {} points written in {:.1} s at target {}):\n",
            i + 1,
            r.outage.backlog_points,
            r.outage.write_s,
            if r.outage.target_pts_s > 0.0 {
                rate(r.outage.target_pts_s, "pts/s")
            } else {
                "unpaced".into()
            }
        );
        let _ = writeln!(s, "| t (s) | State | RemainingEventCount | EstimatedRemainingSeconds | rows on B | SHOW PIPES took | ExceptionMessage |");
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---|");
        for smp in pick_samples(&r.outage.samples, 14) {
            let mut ex = smp.exception.replace('|', "\\|");
            if ex.len() > 110 {
                let mut cut = 110;
                while !ex.is_char_boundary(cut) {
                    cut -= 1;
                }
                ex.truncate(cut);
                ex.push('…');
            }
            let _ = writeln!(
                s,
                "| {:.1} | {} | {} | {} | {} | {:.0} ms | {} |",
                smp.t, smp.state, smp.remaining, smp.est_seconds, smp.b_rows, smp.show_ms, ex
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "<details><summary>Per-repeat raw values</summary>\n");
    let _ = writeln!(s, "| Repeat | Duet ack / replicated s | PG ack / replicated s | Duet idle p50/p99 ms | PG idle p50/p99 ms | Duet loaded p50/p99 ms | PG loaded p50/p99 ms | catch-up: first rows / all s | RSS A / B MiB |");
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in reps.iter().enumerate() {
        let pg_tp = r
            .pg_tp
            .map(|t| format!("{:.2} / {:.2}", t.ack_s, t.repl_s))
            .unwrap_or("—".into());
        let pg_idle = r
            .pg_idle
            .map(|l| format!("{:.2} / {:.2}", l.p50_ms, l.p99_ms))
            .unwrap_or("—".into());
        let pg_load = r
            .pg_loaded
            .map(|l| format!("{:.2} / {:.2}", l.lag.p50_ms, l.lag.p99_ms))
            .unwrap_or("—".into());
        let _ = writeln!(
            s,
            "| {} | {:.2} / {:.2} | {pg_tp} | {:.2} / {:.2} | {pg_idle} | {:.2} / {:.2} | {pg_load} | {:.2} / {:.2} | {:.0} / {:.0} |",
            i + 1,
            r.duet_tp.ack_s,
            r.duet_tp.repl_s,
            r.duet_idle.p50_ms,
            r.duet_idle.p99_ms,
            r.duet_loaded.lag.p50_ms,
            r.duet_loaded.lag.p99_ms,
            r.outage.first_data_s,
            r.outage.catchup_s,
            *r.rss_a.iter().max().unwrap_or(&0) as f64 / 1048576.0,
            *r.rss_b.iter().max().unwrap_or(&0) as f64 / 1048576.0,
        );
    }
    let _ = writeln!(s, "\n</details>");
    let notes: Vec<String> = reps
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.notes
                .iter()
                .map(move |n| format!("- repeat {}: {n}", i + 1))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Notes from the run\n");
        for n in notes {
            let _ = writeln!(s, "{n}");
        }
    }
    s
}

/// Up to `n` samples, evenly spread, always keeping the first and last ones and the sample just
/// before and just after the restart.
fn pick_samples(samples: &[Sample], n: usize) -> Vec<Sample> {
    if samples.len() <= n {
        return samples.to_vec();
    }
    let mut keep: Vec<usize> = (0..n).map(|k| k * (samples.len() - 1) / (n - 1)).collect();
    if let Some(i) = samples.iter().position(|s| s.t >= 0.0) {
        keep.push(i);
        if i > 0 {
            keep.push(i - 1);
        }
    }
    keep.sort_unstable();
    keep.dedup();
    keep.into_iter().map(|i| samples[i].clone()).collect()
}

async fn pg_version(cfg: &Cfg) -> Result<String> {
    if cfg.skip_pg {
        return Ok("skipped (SKIP_PG=1)".into());
    }
    let mut parts = Vec::new();
    for (port, name) in [
        (cfg.pg_pub_port, "publisher"),
        (cfg.pg_sub_port, "subscriber"),
    ] {
        let c = pg_connect(cfg, port).await?;
        let settings = pg_settings(
            &c,
            &[
                "wal_level",
                "fsync",
                "synchronous_commit",
                "shared_buffers",
                "max_wal_size",
            ],
        )
        .await?;
        if parts.is_empty() {
            let v: String = c.query_one("SHOW server_version", &[]).await?.get(0);
            parts.push(format!("PostgreSQL {v}, logical replication (publication → subscription, copy_data=false, asynchronous)"));
        }
        parts.push(format!("{name}: {settings}"));
    }
    Ok(parts.join("; "))
}

// ---------------------------------------------------------------------------------------------------

async fn run() -> Result<()> {
    let cfg = Arc::new(Cfg::from_env()?);
    let started = Instant::now();
    let pg_ver = pg_version(&cfg).await?;
    cfg.load.log("throughput run");
    let mut reps = Vec::new();
    for n in 1..=cfg.load.repeats {
        let mut rep = Repeat::default();
        duet_repeat(cfg.clone(), n, &mut rep)
            .await
            .with_context(|| format!("repeat {n} (Duet)"))?;
        if !cfg.skip_pg {
            pg_repeat(cfg.clone(), n, &mut rep)
                .await
                .with_context(|| format!("repeat {n} (PostgreSQL)"))?;
        }
        reps.push(rep);
    }
    let text = report(&cfg, &reps, &pg_ver, started.elapsed());
    publish_report(&cfg.env.report_path, &text)
}

fn main() -> std::process::ExitCode {
    support::main_with(run)
}
