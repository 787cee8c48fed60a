//! What the benchmark programs (`ingest`, `replication`, `scrape`) share: their configuration from
//! the environment, a `duetd` process started on a free port and stopped with SIGTERM (with its
//! memory and CPU read from `/proc`), sessions on it and PostgreSQL connections, `insertTablet`
//! requests, the rows both systems get (`rows`), and the pieces of their markdown reports (rates,
//! medians and ranges, the machine).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use duet_proto::client::{Client, ClientOptions};
use duet_proto::status;
use duet_proto::t;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

mod rows;
pub use rows::{copy_rows, tablet_columns, value_f64, value_i64, PgRow, ValueType, T0};

// ---------------------------------------------------------------------------------------------------
// Configuration and running

/// The environment variable `name` parsed, or `default` when it is unset or blank.
pub fn env_or<T: FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|e| anyhow!("bad value {v:?} for {name}: {e}")),
        _ => Ok(default),
    }
}

/// The environment variable `name`, which `run.sh` sets.
pub fn env_req(name: &str) -> Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow!("environment variable {name} is required (run through run.sh)"))
}

/// How much a benchmark writes: CLIENTS writers, each BATCHES_PER_CLIENT batches of ROWS_PER_BATCH
/// rows of COLUMNS values (measurements `s0`, `s1`, …), the whole repeated REPEATS times.
#[derive(Debug, Clone)]
pub struct Load {
    pub clients: usize,
    pub rows_per_batch: usize,
    pub columns: usize,
    pub batches_per_client: usize,
    pub repeats: usize,
}

impl Load {
    /// From the environment; `default_batches` when BATCHES_PER_CLIENT is unset.
    pub fn from_env(default_batches: usize) -> Result<Load> {
        Ok(Load {
            clients: env_or("CLIENTS", 4)?,
            rows_per_batch: env_or("ROWS_PER_BATCH", 1000)?,
            columns: env_or("COLUMNS", 10)?,
            batches_per_client: env_or("BATCHES_PER_CLIENT", default_batches)?,
            repeats: env_or("REPEATS", 3)?,
        })
    }

    /// Whether rows, columns, batches and repeats are all positive (each benchmark checks the
    /// clients: it knows how many it needs).
    pub fn is_positive(&self) -> bool {
        self.rows_per_batch > 0
            && self.columns > 0
            && self.batches_per_client > 0
            && self.repeats > 0
    }

    pub fn rows_per_client(&self) -> usize {
        self.rows_per_batch * self.batches_per_client
    }

    pub fn total_points(&self) -> usize {
        self.rows_per_client() * self.clients * self.columns
    }

    pub fn measurements(&self) -> Vec<String> {
        (0..self.columns).map(|j| format!("s{j}")).collect()
    }

    /// The line a run starts with: the load of one run (`per` names it) and the number of repeats.
    pub fn log(&self, per: &str) {
        let (clients, batches, rows) = (self.clients, self.batches_per_client, self.rows_per_batch);
        let (columns, repeats, points) = (self.columns, self.repeats, self.total_points());
        log(&format!("{clients} clients × {batches} batches × {rows} rows × {columns} columns = {points} points per {per}, {repeats} repeats"));
    }
}

/// What `run.sh` passes to a benchmark besides the load: the duetd binary, the work directory,
/// PostgreSQL's host and user, where the report goes, and the revision of Duet under test.
#[derive(Debug, Clone, Default)]
pub struct RunEnv {
    pub duetd_bin: PathBuf,
    pub work_dir: PathBuf,
    pub pg_host: String,
    pub pg_user: String,
    pub report_path: PathBuf,
    pub duet_rev: String,
}

impl RunEnv {
    pub fn from_env() -> Result<RunEnv> {
        Ok(RunEnv {
            duetd_bin: PathBuf::from(env_req("DUETD_BIN")?),
            work_dir: PathBuf::from(env_req("WORK_DIR")?),
            pg_host: env_or("PG_HOST", "127.0.0.1".to_string())?,
            pg_user: env_or("PG_USER", "postgres".to_string())?,
            report_path: PathBuf::from(env_req("REPORT_PATH")?),
            duet_rev: env_or("DUET_REV", "unknown".to_string())?,
        })
    }
}

/// A progress line on stderr, with the wall-clock time.
pub fn log(msg: &str) {
    let now = Command::new("date")
        .arg("+%H:%M:%S")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    eprintln!("[bench {now}] {msg}");
}

/// Runs a benchmark's `run` on a multi-threaded runtime: exit status 0, or 1 with the error.
pub fn main_with<F: Future<Output = Result<()>>>(run: impl FnOnce() -> F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nBENCHMARK FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// duetd processes

/// How to start a `duetd`.
#[derive(Debug, Clone)]
pub struct DuetdStart<'a> {
    pub bin: &'a Path,
    /// Names the log (`<log_dir>/duetd-<name>.log`, appended to) and pid file
    /// (`<log_dir>/duetd-<name>.pid`, which run.sh's cleanup reads).
    pub name: &'a str,
    pub log_dir: &'a Path,
    /// Kept as it is: a restart on the same directory recovers it.
    pub data_dir: &'a Path,
    /// 0: any free port.
    pub port: u16,
    /// Whether to open the metrics listener (on a free port); a duetd from before it takes no flag.
    pub metrics: bool,
    pub log_level: &'a str,
}

/// A running `duetd`; killed when dropped unless [`Duetd::stop`]ped.
#[derive(Debug)]
pub struct Duetd {
    pub name: String,
    child: Option<Child>,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub host: String,
    pub port: u16,
    /// `host:port` of `/metrics`, when it has one.
    pub metrics_addr: Option<String>,
    pub log: PathBuf,
}

impl Duetd {
    /// Starts duetd and waits (up to 60 s) for `<data-dir>/duetd.addr`.
    pub fn start(start: &DuetdStart<'_>) -> Result<Duetd> {
        let DuetdStart { bin, name, .. } = *start;
        std::fs::create_dir_all(start.data_dir)?;
        let addr_file = start.data_dir.join("duetd.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = start.log_dir.join(format!("duetd-{name}.log"));
        let out = OpenOptions::new().create(true).append(true).open(&log)?;
        let mut command = Command::new(bin);
        command
            .arg("--data-dir")
            .arg(start.data_dir)
            .args(["--rpc-address", "127.0.0.1", "--rpc-port"])
            .arg(start.port.to_string());
        if start.metrics {
            command.args(["--metrics-port", "0"]);
        }
        let child = command
            .args(["--log-level", start.log_level])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id();
        std::fs::write(
            start.log_dir.join(format!("duetd-{name}.pid")),
            pid.to_string(),
        )?;
        let mut duetd = Duetd {
            name: name.to_string(),
            child: Some(child),
            pid,
            data_dir: start.data_dir.to_path_buf(),
            host: String::new(),
            port: 0,
            metrics_addr: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = duetd.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    duetd.child = None;
                    bail!(
                        "duetd {name} exited during startup ({status}); log:\n{}",
                        tail(&duetd.log)
                    );
                }
            }
            let address = std::fs::read_to_string(&addr_file).unwrap_or_default();
            if let Some((host, port)) = address.trim().rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    if start.port != 0 && port != start.port {
                        bail!(
                            "duetd {name} was asked for port {} and listens on {port}",
                            start.port
                        );
                    }
                    duetd.host = host.to_string();
                    duetd.port = port;
                    // Written before duetd.addr.
                    duetd.metrics_addr =
                        std::fs::read_to_string(start.data_dir.join("duetd.metrics.addr"))
                            .ok()
                            .map(|a| a.trim().to_string());
                    return Ok(duetd);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "duetd {name} did not write {} within 60 s; log:\n{}",
                    addr_file.display(),
                    tail(&duetd.log)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether it was started and not stopped (or found dead at start-up).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A root session's options on this server.
    pub fn options(&self, fetch_size: i32) -> ClientOptions {
        ClientOptions {
            host: self.host.clone(),
            port: self.port,
            fetch_size,
            ..ClientOptions::default()
        }
    }

    /// Resets the kernel's peak-RSS counter (VmHWM) so the next reading covers one phase only.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// VmHWM in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("duetd {} (pid {}) is gone", self.name, self.pid))?;
        let line = s
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .ok_or_else(|| anyhow!("no VmHWM in /proc/{}/status", self.pid))?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("bad VmHWM line {line:?}"))?
            .parse()?;
        Ok(kb * 1024)
    }

    /// User and system CPU seconds so far (`/proc` counts USER_HZ ticks, 100 per second on Linux).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        (fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)) as f64 / 100.0
    }

    /// SIGTERM; the process must exit 0 within 60 s.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!(
                        "duetd {} exited with {status} on SIGTERM; log:\n{}",
                        self.name,
                        tail(&self.log)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "duetd {} did not stop within 60 s of SIGTERM (killed)",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Duetd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last 30 lines of a log, for an error message.
pub fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------------------------------
// Sessions and requests

/// A session on a duetd, the address named in the error.
pub async fn connect(opts: &ClientOptions) -> Result<Client> {
    Client::connect(opts).await.with_context(|| {
        format!(
            "cannot open a session on duetd at {}:{}",
            opts.host, opts.port
        )
    })
}

/// Non-200 is a failure: the benchmarks only count acknowledged writes.
pub fn check(st: &t::TSStatus, what: &str) -> Result<()> {
    if st.code == 200 {
        Ok(())
    } else {
        bail!("{what} failed: {}", status::describe(st))
    }
}

/// An `insertTablet` request of `columns` (one per measurement) at `times`, not aligned.
pub use duet_proto::tablet::insert_tablet_request as tablet_request;

/// Sends an `insertTablet` request; `what` names it in the error.
pub async fn insert_tablet(c: &mut Client, req: &t::TSInsertTabletReq, what: &str) -> Result<()> {
    let st: t::TSStatus = c
        .connection()
        .call("insertTablet", 1, req)
        .await
        .with_context(|| what.to_string())?;
    check(&st, what)
}

/// Runs `clients` tasks `f(i, barrier)` that each set up (connect), wait at the common barrier (see
/// [`setup_then_wait`]), do their work and return the instant they finished plus a result; returns
/// the barrier's instant, the last finish and the results in client order.
pub async fn barrier_clients<F, Fut, R>(clients: usize, f: F) -> Result<(Instant, Instant, Vec<R>)>
where
    F: Fn(usize, Arc<Barrier>) -> Fut,
    Fut: Future<Output = Result<(Instant, R)>> + Send + 'static,
    R: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(clients + 1));
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(f(i, barrier.clone())))
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let finished = join_tasks(tasks, "client task").await?;
    let end = finished.iter().map(|(f, _)| *f).fold(start, Instant::max);
    Ok((start, end, finished.into_iter().map(|(_, r)| r).collect()))
}

/// Awaits every task, in order: their results, or the first error (`what` names a task that panicked).
pub async fn join_tasks<T>(tasks: Vec<JoinHandle<Result<T>>>, what: &str) -> Result<Vec<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow!("{what} panicked: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// A client's setup, then the common barrier: reached even when the setup failed (its error is
/// returned after the barrier), so a failed connect cannot hang the others.
pub async fn setup_then_wait<C>(
    setup: impl Future<Output = Result<C>>,
    barrier: &Barrier,
) -> Result<C> {
    let setup = setup.await;
    barrier.wait().await;
    setup
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

/// A connection to the `postgres` database of the cluster run.sh started (no TLS, trust auth).
pub async fn pg_connect(host: &str, port: u16, user: &str) -> Result<tokio_postgres::Client> {
    let conn_str = format!("host={host} port={port} user={user} dbname=postgres");
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL ({conn_str})"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection error: {e}");
        }
    });
    Ok(client)
}

/// `name=value` of each setting, comma-separated, for a report.
pub async fn pg_settings(c: &tokio_postgres::Client, names: &[&str]) -> Result<String> {
    let mut settings = Vec::new();
    for name in names {
        let row = c.query_one(&format!("SHOW {name}"), &[]).await?;
        settings.push(format!("{name}={}", row.get::<_, String>(0)));
    }
    Ok(settings.join(", "))
}

// ---------------------------------------------------------------------------------------------------
// Reports

/// A rate with a k/M prefix (`n/a` when not finite).
pub fn rate(x: f64, unit: &str) -> String {
    if !x.is_finite() {
        "n/a".to_string()
    } else if x >= 1e6 {
        format!("{:.2} M {unit}", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k {unit}", x / 1e3)
    } else {
        format!("{x:.0} {unit}")
    }
}

/// (median, min, max) of a non-empty list.
pub fn summary(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (med, v[0], v[v.len() - 1])
}

/// The `p`-quantile of sorted values (nearest rank; NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A report cell over the repeats: the median and the range, formatted by `f`, and the median
/// itself (for ratios); dashes when there are no values.
fn cell(xs: Option<&Vec<f64>>, f: fn(f64) -> String) -> (String, String, Option<f64>) {
    match xs {
        Some(xs) if !xs.is_empty() => {
            let (m, lo, hi) = summary(xs);
            (f(m), format!("{} – {}", f(lo), f(hi)), Some(m))
        }
        _ => ("—".into(), "—".into(), None),
    }
}

/// One row of a report's comparison table: Duet's values over the repeats against PostgreSQL's
/// (`None` where PostgreSQL has no counterpart), both formatted by `fmt`.
pub struct Line {
    pub item: &'static str,
    pub metric: &'static str,
    pub duet: Vec<f64>,
    pub pg: Option<Vec<f64>>,
    pub fmt: fn(f64) -> String,
}

/// The comparison table, `item_heading` heading the first column: per line the medians, the ranges
/// and the ratio of the medians (a dash where either is missing, zero or not finite).
pub fn comparison_table(s: &mut String, item_heading: &str, lines: &[Line]) {
    let _ = writeln!(s, "| {item_heading} | Metric | Duet median | Duet min – max | PostgreSQL median | PostgreSQL min – max | Duet/PG |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for l in lines {
        let (dm, dr, dv) = cell(Some(&l.duet), l.fmt);
        let (pm, pr, pv) = cell(l.pg.as_ref(), l.fmt);
        let ratio = match (dv, pv) {
            (Some(d), Some(p)) if p != 0.0 && d.is_finite() && p.is_finite() => {
                format!("{:.2}×", d / p)
            }
            _ => "—".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {dm} | {dr} | {pm} | {pr} | {ratio} |",
            l.item, l.metric
        );
    }
}

/// Prints the report and writes it to `path`.
pub fn publish_report(path: &Path, text: &str) -> Result<()> {
    println!("{text}");
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    log(&format!("report written to {}", path.display()));
    Ok(())
}

/// CPUs, CPU model, memory and kernel, for a report's header.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs ({model}), {mem} RAM, Linux {}", kernel.trim())
}
