//! `duet-soak`: a Jepsen-style fault soak of a dual-active pair. Two real `duetd` processes with
//! double-living pipes both ways (deletes included) through fault proxies; writers on both sides
//! through every write path; a seeded sequence of SIGKILLs, SIGTERMs, partitions and slow links (and
//! full disks when asked); then heal, wait for quiescence, and check that every acknowledged point is
//! on both sides, nothing deleted was acknowledged after its delete, and A and B are identical
//! (`duet-check`). It prints its seed first and, on failure, the first bad ranges with the operations
//! and faults nearest to them, and keeps the data directories.
//!
//! Modules: `cluster` (the pair), `workload` (the writers), `faults` (the plan and its injection),
//! `history` (what happened), `check` (the model check, with `duet_check`: `duet-check`'s comparison),
//! `schema` (series and values), `rng` (the seeded generator).
//!
//! Exit status: 0 passed, 1 a check failed, 2 the soak could not run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

#[allow(dead_code)]
#[path = "../../cli/src/bin/duet-check.rs"]
mod duet_check;
pub(crate) use duet_check::compare;

mod check;
mod cluster;
mod faults;
mod history;
mod rng;
mod schema;
mod workload;

use cluster::{Cluster, ServerSettings};
use history::{secs, History, OpKind, Outcome, Side, WritePath};
use schema::{Schema, MEASUREMENTS};

/// Prints a line on standard output (the workspace keeps `println!` out of library code).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Parser)]
#[command(
    name = "duet-soak",
    version,
    about = "Fault soak of a dual-active Duet pair: kills, partitions and slow links, then checks that no acknowledged write is lost and both sides are identical"
)]
struct Args {
    /// Seed of the fault plan and the workload (default: from the clock; always printed first)
    #[arg(long)]
    seed: Option<u64>,
    /// Number of faults to inject
    #[arg(long, default_value_t = 20)]
    faults: usize,
    /// Writers per side
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Quiet time before each fault, lower bound (ms)
    #[arg(long, default_value_t = 500)]
    min_gap_ms: u64,
    /// Quiet time before each fault, upper bound (ms)
    #[arg(long, default_value_t = 3000)]
    max_gap_ms: u64,
    /// Writers' pause between operations, lower bound (ms)
    #[arg(long, default_value_t = 5)]
    min_pause_ms: u64,
    /// Writers' pause between operations, upper bound (ms)
    #[arg(long, default_value_t = 30)]
    max_pause_ms: u64,
    /// The servers' memtable_bytes (default: drawn from the seed among 256 KiB, 1 MiB and 4 MiB —
    /// small ones keep the flusher behind, larger ones flush one memtable at a time; both regimes
    /// have lost data before)
    #[arg(long)]
    memtable_bytes: Option<u64>,
    /// The servers' wal_segment_bytes: small, so log segments are released during the soak
    #[arg(long, default_value_t = 1024 * 1024)]
    wal_segment_bytes: u64,
    /// How long the pair may take to drain and settle after the last fault (s)
    #[arg(long, default_value_t = 300)]
    quiesce_timeout_secs: u64,
    /// Time after which an operation on one side certainly has a higher version than one
    /// acknowledged on the other (ms): both clocks are this machine's
    #[arg(long, default_value_t = 100)]
    margin_ms: u64,
    /// A writer's call that takes longer is abandoned as unknown (s)
    #[arg(long, default_value_t = 30)]
    call_timeout_secs: u64,
    /// Include disk-full faults: each data directory becomes a tmpfs mount of --disk-mib MiB
    /// (needs root), filled by a balloon file for 1–5 s
    #[arg(long)]
    disk_full: bool,
    /// Relative weights of the faults, e.g. `kill=60,term=20,partition=20` (omitted ones are 0;
    /// default kill=30,term=20,partition=30,slow=15,fsync=10, plus disk=10 with --disk-full)
    #[arg(long)]
    weights: Option<String>,
    /// Write the server logs beside the data directories instead of inside them (as
    /// scripts/start-standalone.sh does), so a full data disk does not also fail the logging
    #[arg(long)]
    logs_outside: bool,
    /// Size of each tmpfs data directory with --disk-full (MiB)
    #[arg(long, default_value_t = 256)]
    disk_mib: u64,
    /// Directory under which the soak's data directory is created (default: the system temp dir)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the data directories even when the soak passes
    #[arg(long)]
    keep: bool,
    /// How long a graceful stop (SIGTERM) may take before it counts as a failure and is killed (s)
    #[arg(long, default_value_t = 120)]
    stop_timeout_secs: u64,
    /// Self-test of the checker: once the writers stopped, delete every row of A's first device
    /// behind their back (not recorded), so the run must fail with points missing on both sides
    #[arg(long, hide = true)]
    sabotage: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            % 1_000_000_007
    });
    say!("duet-soak: seed {seed}");
    match run(&args, seed) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            say!("duet-soak: seed {seed}: cannot run: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Mounts (with --disk-full) or creates the data directories' parent.
fn prepare_root(args: &Args) -> Result<PathBuf> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    let root = tempfile::Builder::new()
        .prefix("duet-soak-")
        .tempdir_in(&parent)
        .context("creating the soak directory")?
        .keep();
    if args.disk_full {
        for side in Side::BOTH {
            let dir = root.join(side.lower());
            std::fs::create_dir_all(&dir)?;
            let status = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={}m", args.disk_mib),
                    "tmpfs",
                ])
                .arg(&dir)
                .status()
                .context("running mount")?;
            if !status.success() {
                bail!(
                    "--disk-full needs a tmpfs mount at {} (root and a mount namespace that allows it): mount {status}",
                    dir.display()
                );
            }
        }
    }
    Ok(root)
}

/// Unmounts the tmpfs data directories (if any) and removes the soak directory.
fn remove_root(root: &Path, mounted: bool) -> Result<()> {
    if mounted {
        for side in Side::BOTH {
            let status = Command::new("umount")
                .arg(root.join(side.lower()))
                .status()?;
            if !status.success() {
                bail!("umount {} failed", root.join(side.lower()).display());
            }
        }
    }
    std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))
}

/// Files under `dir` (recursively) whose name ends with `suffix`.
fn count_files(dir: &Path, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_files(&path, suffix)
            } else {
                usize::from(path.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

/// What a server log says went wrong: the ERROR lines (up to three distinct messages, without
/// timestamps and colours) and the number of panics.
fn log_trouble(log_file: &Path) -> (usize, Vec<String>, usize) {
    let log = std::fs::read_to_string(log_file).unwrap_or_default();
    let mut errors = 0;
    let mut distinct: Vec<String> = Vec::new();
    for line in log.lines().filter(|l| l.contains("ERROR")) {
        errors += 1;
        let plain: String = strip_ansi(line);
        let message = plain
            .split_once("ERROR")
            .map_or(plain.as_str(), |(_, m)| m)
            .trim()
            .to_string();
        if distinct.len() < 3 && !distinct.contains(&message) {
            distinct.push(message);
        }
    }
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    (errors, distinct, panics)
}

/// How often a pipe found the change log it needed released and fell back to replaying from the
/// data files (correct, but it resends everything and holds the pipe back meanwhile).
fn replays_from_data_files(log_file: &Path) -> usize {
    count_log_lines(log_file, "replaying from data files")
}

/// How many lines of a server log contain `needle`.
fn count_log_lines(log_file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log_file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// A log line without its terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Device path → measurement names, for every series either side holds or the soak wrote.
fn devices_to_scan(
    schema: &Schema,
    extra: &BTreeMap<String, duet_proto::types::DataType>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &schema.devices {
        out.insert(
            d.path.clone(),
            MEASUREMENTS.iter().map(|(m, _)| m.to_string()).collect(),
        );
    }
    for series in extra.keys() {
        if let Some((device, m)) = series.rsplit_once('.') {
            let list = out.entry(device.to_string()).or_default();
            if !list.iter().any(|x| x == m) {
                list.push(m.to_string());
            }
        }
    }
    out
}

/// Whether both pipes are running with nothing left to send; otherwise a description.
async fn pipes_drained(cluster_ports: [u16; 2]) -> Result<Option<String>> {
    let mut pending = Vec::new();
    for side in Side::BOTH {
        let pipes = cluster::show_pipes(cluster_ports[side.index()]).await?;
        let name = Cluster::pipe_of(side);
        match pipes
            .iter()
            .find(|p| p.get("ID").map(String::as_str) == Some(name))
        {
            None => pending.push(format!("{side}: no pipe {name}")),
            Some(row) => {
                let state = row.get("State").cloned().unwrap_or_default();
                let remaining = row.get("RemainingEventCount").cloned().unwrap_or_default();
                if state != "RUNNING" || remaining != "0" {
                    pending.push(format!(
                        "{side}: {name} {state}, {remaining} events left, exception {:?}",
                        row.get("ExceptionMessage").cloned().unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(if pending.is_empty() {
        None
    } else {
        Some(pending.join("; "))
    })
}

/// Every series either side holds, grouped by device, with the soak's own series.
async fn devices_now(schema: &Schema, ports: [u16; 2]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut extra = cluster::series(ports[0]).await?;
    extra.extend(cluster::series(ports[1]).await?);
    Ok(devices_to_scan(schema, &extra))
}

/// Polls until both pipes are drained and both sides' fingerprints are the same on two reads in a
/// row (equal to each other, or stable though different); returns why not when the deadline passed.
fn quiesce(
    rt: &tokio::runtime::Runtime,
    ports: [u16; 2],
    schema: &Schema,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut previous: Option<(cluster::Fingerprint, cluster::Fingerprint)> = None;
    loop {
        let attempt = rt.block_on(async {
            if let Some(pending) = pipes_drained(ports).await? {
                return Ok::<_, anyhow::Error>(Err(pending));
            }
            let devices = devices_now(schema, ports).await?;
            let a = cluster::fingerprint(ports[0], &devices).await?;
            let b = cluster::fingerprint(ports[1], &devices).await?;
            Ok(Ok((a, b)))
        });
        let reason = match attempt {
            Ok(Ok((a, b))) => {
                if a == b
                    || previous
                        .as_ref()
                        .is_some_and(|(pa, pb)| *pa == a && *pb == b)
                {
                    return None;
                }
                previous = Some((a, b));
                "contents still changing".to_string()
            }
            Ok(Err(pending)) => pending,
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            return Some(reason);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Scans both sides series by series and judges each.
fn final_check(
    rt: &tokio::runtime::Runtime,
    ports: [u16; 2],
    schema: &Schema,
    checker: &mut check::Checker<'_>,
) -> Result<(usize, usize)> {
    rt.block_on(async {
        let devices = devices_now(schema, ports).await?;
        let mut ca = cluster::connect(ports[0]).await?;
        let mut cb = cluster::connect(ports[1]).await?;
        let (mut points_a, mut points_b) = (0, 0);
        let empty = BTreeMap::new();
        for (device, measurements) in &devices {
            let index = schema.devices.iter().position(|d| &d.path == device);
            // One series at a time: a long soak's device can hold millions of points.
            for m in measurements {
                let one = std::slice::from_ref(m);
                let a = cluster::scan_device(&mut ca, device, one).await?;
                let b = cluster::scan_device(&mut cb, device, one).await?;
                points_a += a.values().map(BTreeMap::len).sum::<usize>();
                points_b += b.values().map(BTreeMap::len).sum::<usize>();
                let series = format!("{device}.{m}");
                let known = MEASUREMENTS.iter().position(|(name, _)| name == m);
                let (on_a, on_b) = (
                    a.get(&series).unwrap_or(&empty),
                    b.get(&series).unwrap_or(&empty),
                );
                match (index, known) {
                    (Some(d), Some(m)) => checker.check_series(d, m, on_a, on_b),
                    _ if on_a.is_empty() && on_b.is_empty() => {}
                    _ => checker.unexpected_series(&series),
                }
            }
        }
        let _ = ca.close().await;
        let _ = cb.close().await;
        Ok((points_a, points_b))
    })
}

/// The first line and the last `n` lines of a long message (a server log in a start-up error).
fn abridged(message: &str, n: usize) -> String {
    let lines: Vec<&str> = message.lines().collect();
    if lines.len() <= n + 1 {
        return message.to_string();
    }
    format!(
        "{}\n  [... {} lines ...]\n{}",
        lines[0],
        lines.len() - n - 1,
        lines[lines.len() - n..].join("\n")
    )
}

fn run(args: &Args, seed: u64) -> Result<bool> {
    if args.writers == 0
        || args.min_gap_ms > args.max_gap_ms
        || args.min_pause_ms > args.max_pause_ms
    {
        bail!("--writers must be at least 1 and each minimum at most its maximum");
    }
    let duetd = duet_testkit::binary("duetd");
    if !duetd.exists() {
        bail!(
            "{} is missing: build it first (cargo build --bins, with this binary's profile)",
            duetd.display()
        );
    }
    let schema = Arc::new(Schema::new(args.writers));
    let weights = match &args.weights {
        Some(text) => faults::parse_weights(text)?,
        None => {
            let mut w = faults::DEFAULT_WEIGHTS;
            if args.disk_full {
                w[4] = faults::DISK_FULL_WEIGHT;
            }
            w
        }
    };
    if weights[4] > 0 && !args.disk_full {
        bail!("disk-full faults need --disk-full (size-limited data directories)");
    }
    let plan = faults::plan(
        seed,
        &faults::PlanOptions {
            faults: args.faults,
            gap_ms: (args.min_gap_ms, args.max_gap_ms),
            weights,
        },
    );
    let memtable_bytes = args
        .memtable_bytes
        .unwrap_or([256 << 10, 1 << 20, 4 << 20][rng::Rng::fork(seed, 2).range(0, 2) as usize]);
    let root = prepare_root(args)?;
    say!(
        "data: {} (memtable_bytes {}, wal_segment_bytes {}, {} writers per side{})",
        root.display(),
        memtable_bytes,
        args.wal_segment_bytes,
        args.writers,
        if args.disk_full {
            format!(", tmpfs of {} MiB per side", args.disk_mib)
        } else {
            String::new()
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let settings = ServerSettings {
        memtable_bytes,
        wal_segment_bytes: args.wal_segment_bytes,
    };
    let mut cluster =
        match rt.block_on(Cluster::start(&root, &settings, &schema, args.logs_outside)) {
            Ok(c) => c,
            Err(e) => {
                say!("data directories kept: {}", root.display());
                return Err(e);
            }
        };
    say!(
        "A on port {} (pipe BA arrives through proxy {}), B on port {} (pipe AB through proxy {})",
        cluster.port(Side::A),
        cluster.proxy_into(Side::A).port(),
        cluster.port(Side::B),
        cluster.proxy_into(Side::B).port()
    );

    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for side in Side::BOTH {
        for writer in 0..args.writers {
            let config = workload::WriterConfig {
                side,
                writer,
                port: cluster.port(side),
                seed,
                pause_ms: (args.min_pause_ms, args.max_pause_ms),
                call_timeout: Duration::from_secs(args.call_timeout_secs),
            };
            writers.push(rt.spawn(workload::run_writer(
                config,
                schema.clone(),
                history.clone(),
                stop.clone(),
            )));
        }
    }

    let mut incidents = Vec::new();
    let mut injected = 0;
    let mut graceful_stops: Vec<Duration> = Vec::new();
    let stop_timeout = Duration::from_secs(args.stop_timeout_secs);
    for (i, planned) in plan.iter().enumerate() {
        let index = i + 1;
        std::thread::sleep(planned.gap);
        say!(
            "fault {index} at {}: {}",
            secs(history.now()),
            planned.fault
        );
        match faults::inject(&mut cluster, &history, index, &planned.fault, stop_timeout) {
            Ok((incident, stop)) => {
                injected += 1;
                if let Some(took) = stop {
                    say!("  stopped gracefully in {}", secs(took));
                    graceful_stops.push(took);
                }
                if let Some(incident) = incident {
                    say!("  INCIDENT: {}", incident.message);
                    incidents.push(format!("fault {}: {}", incident.fault, incident.message));
                }
            }
            Err(e) => {
                let message = format!("fault {index}: {}", abridged(&format!("{e:#}"), 15));
                say!("  FATAL: {message}");
                incidents.push(message);
                break;
            }
        }
    }
    // Let the writers run a moment on the healed pair, then stop them (each finishes its operation).
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let mut stats = workload::WriterStats::default();
    for handle in writers {
        let s = rt
            .block_on(handle)
            .map_err(|e| anyhow!("a writer task failed: {e}"))?;
        stats.acked += s.acked;
        stats.unknown += s.unknown;
        stats.connects += s.connects;
    }
    if args.sabotage {
        // Every point of the first device, once the writers stopped: a write or a recorded deletion
        // after it cannot hide it (a 100 ms window deleted while writers ran was sometimes rewritten
        // or already deleted by the workload, and the check then rightly found nothing missing).
        let device = &schema.devices[0].path;
        let sql = format!("delete from {device}.* where time >= {}", schema::BASE_TIME);
        rt.block_on(cluster::exec(cluster.port(Side::A), &sql))?;
        say!("sabotage: `{sql}` on A, not recorded");
    }
    say!(
        "faults done at {}: {injected} injected; writers: {} operations acknowledged, {} unknown, {} sessions",
        secs(history.now()),
        stats.acked,
        stats.unknown,
        stats.connects
    );

    let ports = [cluster.port(Side::A), cluster.port(Side::B)];
    let all_running = Side::BOTH
        .iter()
        .all(|side| cluster.server(*side).is_running());
    let quiesce_started = Instant::now();
    let not_quiet = if all_running {
        quiesce(
            &rt,
            ports,
            &schema,
            Duration::from_secs(args.quiesce_timeout_secs),
        )
    } else {
        Some("a server is not running".to_string())
    };
    match &not_quiet {
        None => say!("quiescent after {}", secs(quiesce_started.elapsed())),
        Some(reason) => {
            let message = format!(
                "no quiescence within {}s: {reason}",
                args.quiesce_timeout_secs
            );
            say!("{message}");
            incidents.push(message);
        }
    }
    let duet_check = if all_running {
        let options = |port| workload::client_options(port, Duration::from_secs(300));
        match rt.block_on(compare::compare(
            &options(ports[0]),
            &options(ports[1]),
            "root.**",
        )) {
            Ok(verdict) => verdict.to_string(),
            Err(e) => format!("could not compare: {e}"),
        }
    } else {
        "not run".to_string()
    };
    say!("duet-check: {duet_check}");
    if !duet_check.starts_with("consistent") {
        incidents.push(format!("duet-check: {duet_check}"));
    }

    let ops = history.ops();
    let fault_log = history.faults();
    let margin = Duration::from_millis(args.margin_ms);
    let mut checker = check::Checker::new(&schema, &history, &ops, margin);
    if all_running {
        match final_check(&rt, ports, &schema, &mut checker) {
            Ok((a, b)) => say!("checked: A holds {a} points, B {b}"),
            Err(e) => incidents.push(format!("the final scan failed: {e:#}")),
        }
    }
    let report = checker.finish();
    for path in WritePath::ALL {
        let of_path: Vec<_> = ops
            .iter()
            .filter(|o| matches!(&o.kind, OpKind::Write { path: p, .. } if *p == path))
            .collect();
        let acked = of_path
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Acked { .. }))
            .count();
        say!(
            "  {:<31} {acked:>6} acknowledged, {:>4} unknown",
            path.name(),
            of_path.len() - acked
        );
    }
    let deletes: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Delete { .. }))
        .collect();
    let deletes_acked = deletes.iter().filter(|o| o.acked_at().is_some()).count();
    say!(
        "  {:<31} {deletes_acked:>6} acknowledged, {:>4} unknown",
        "DELETE",
        deletes.len() - deletes_acked
    );
    for side in Side::BOTH {
        let dir = cluster.data_dir(side);
        let (errors, messages, panics) = log_trouble(&cluster.log_file(side));
        let log_file = cluster.log_file(side);
        say!(
            "  {side}: {} data files, {} log segments now; server log: {errors} ERROR lines, {panics} panics, {} pipe replays from data files, {} failed fsyncs rewritten, {} logs poisoned",
            count_files(&dir.join("storage").join("data"), ".parquet"),
            count_files(&dir.join("storage").join("wal"), ".log"),
            replays_from_data_files(&log_file),
            count_log_lines(&log_file, "unsynced records were written again"),
            count_log_lines(&log_file, "change log poisoned"),
        );
        for message in messages {
            say!("    ERROR {message}");
        }
        if panics > 0 {
            incidents.push(format!("{side}'s server log reports {panics} panics"));
        }
    }
    if let Some(slowest) = graceful_stops.iter().max() {
        say!(
            "  graceful stops: {}, slowest {}",
            graceful_stops.len(),
            secs(*slowest)
        );
    }
    let passed = report.passed() && incidents.is_empty();
    say!(
        "result: seed={seed} faults={injected} acknowledged_points={} lost={} wrong={} divergent={} unknown_ops={} points_checked={} verdict={}",
        report.acknowledged_points,
        report.lost(),
        report.wrong(),
        report.divergent,
        report.unknown_ops,
        report.points_checked,
        if passed { "PASS" } else { "FAIL" }
    );
    if !passed {
        for incident in &incidents {
            say!("FAIL: {incident}");
        }
        if !report.passed() {
            say!(
                "FAIL: lost A {} B {}, wrong A {} B {}, divergent {}",
                report.lost[0],
                report.lost[1],
                report.wrong[0],
                report.wrong[1],
                report.divergent
            );
            say!("{}", check::explain(&report, &schema, &ops, &fault_log, 8));
        }
        say!("faults:");
        for f in &fault_log {
            say!(
                "  {} {}–{}: {}",
                f.index,
                secs(f.started),
                secs(f.ended),
                f.description
            );
        }
        cluster.shut_down();
        say!(
            "data directories kept: {} and {} (server logs: {} and {}){}",
            cluster.data_dir(Side::A).display(),
            cluster.data_dir(Side::B).display(),
            cluster.log_file(Side::A).display(),
            cluster.log_file(Side::B).display(),
            if args.disk_full {
                format!(
                    "; they are tmpfs mounts: umount them, then remove {}",
                    root.display()
                )
            } else {
                String::new()
            }
        );
        return Ok(false);
    }
    // A graceful stop of both is part of the run: it must succeed.
    for side in Side::BOTH {
        cluster
            .server(side)
            .stop_within(stop_timeout)
            .with_context(|| format!("stopping {side} at the end"))?;
    }
    drop(cluster);
    if args.keep {
        say!("data directories kept: {}", root.display());
    } else {
        remove_root(&root, args.disk_full)?;
    }
    Ok(true)
}
