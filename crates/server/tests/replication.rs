//! Dual-active replication between two real `duetd` processes (A and B) joined by double-living pipes
//! both ways: data written on either side reaches the other, nothing loops, a peer that stops, crashes
//! or is crashed while shipping a backlog catches up with every row exactly once, pipes created later
//! send history through their path and time filters, deletes travel with `'inclusion'='data'`,
//! conflicting writes converge, and STOP/START/DROP/ALTER PIPE behave.
//!
//! Convergence is judged by `duet-check`'s own comparison (the binary's source is included below), plus
//! targeted counts and point queries. Every wait polls with a timeout; the only fixed waits are two short
//! windows that assert the ABSENCE of a change, each explained where it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_proto::t;
use duet_proto::tablet::insert_tablet_request;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_testkit::{wait_for, Duetd};
use tokio::runtime::Runtime;

#[allow(dead_code)]
#[path = "../../cli/src/bin/duet-check.rs"]
mod duet_check;

use duet_check::compare::{self, Difference, Side, Value, Verdict};

/// How long replication of a small change may take.
const SYNC: Duration = Duration::from_secs(20);
/// How long a large backlog may take (scenario e, on a loaded 2-core machine, debug build).
const BACKLOG: Duration = Duration::from_secs(90);

fn runtime() -> Arc<Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    )
}

fn int64s(values: impl IntoIterator<Item = i64>) -> Column {
    Column {
        data_type: DataType::Int64,
        nulls: None,
        values: ColumnValues::Int64(values.into_iter().collect()),
    }
}

fn doubles(values: impl IntoIterator<Item = f64>) -> Column {
    Column {
        data_type: DataType::Double,
        nulls: None,
        values: ColumnValues::Double(values.into_iter().collect()),
    }
}

/// The last lines of a server log, for failure messages.
fn log_tail(server: &Duetd) -> String {
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One instance with a lazily (re)opened session.
struct Node {
    name: &'static str,
    rt: Arc<Runtime>,
    server: Duetd,
    client: Option<Client>,
    /// Holds the configuration file of a server started with one.
    _config: Option<tempfile::TempDir>,
}

impl Node {
    fn start(name: &'static str, rt: &Arc<Runtime>) -> Node {
        Node {
            name,
            rt: rt.clone(),
            server: Duetd::start().unwrap(),
            client: None,
            _config: None,
        }
    }

    /// An instance started with a TOML configuration (e.g. small log segments).
    fn start_with_config(name: &'static str, rt: &Arc<Runtime>, toml: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duetd.toml");
        std::fs::write(&path, toml).unwrap();
        let options = duet_testkit::DuetdOptions {
            args: vec!["--config".into(), path.display().to_string()],
            ..Default::default()
        };
        Node {
            name,
            rt: rt.clone(),
            server: Duetd::start_with(options).unwrap(),
            client: None,
            _config: Some(dir),
        }
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            port: self.server.port(),
            call_timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        }
    }

    fn port(&self) -> u16 {
        self.server.port()
    }

    /// Runs `f` on the session (opened if needed); a failure that is not a status drops the session so
    /// the next call reconnects (the server may have been restarted).
    fn with_client<T>(
        &mut self,
        what: &str,
        f: impl for<'c> FnOnce(
            &'c mut Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, duet_proto::client::ClientError>> + 'c>,
        >,
    ) -> Result<T> {
        if self.client.is_none() {
            let options = self.options();
            let client = self
                .rt
                .block_on(Client::connect(&options))
                .map_err(|e| anyhow!("{}: connect: {e}", self.name))?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().unwrap();
        match self.rt.block_on(f(client)) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.code().is_none() {
                    self.client = None;
                }
                Err(anyhow!("{}: {what}: {e}", self.name))
            }
        }
    }

    fn exec(&mut self, sql: &str) -> Result<()> {
        let owned = sql.to_string();
        self.with_client(sql, move |c| {
            Box::pin(async move { c.execute_update(&owned).await })
        })
    }

    /// A query's header (Time first when the server sends it) and rows as text.
    fn table(&mut self, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let owned = sql.to_string();
        let (rs, blocks) = self.with_client(sql, move |c| {
            Box::pin(async move { compare::query(c, &owned).await })
        })?;
        let mut rows = Vec::new();
        for block in &blocks {
            for r in 0..block.n_rows() {
                let mut row = Vec::with_capacity(block.columns.len() + 1);
                if !rs.ignore_time_stamp {
                    row.push(block.times[r].to_string());
                }
                row.extend(block.columns.iter().map(|c| compare::cell_text(c, r)));
                rows.push(row);
            }
        }
        Ok((rs.header(), rows))
    }

    /// The number of points of a series (0 when it does not exist yet).
    fn count(&mut self, series: &str) -> Result<u64> {
        let (device, measurement) = series.rsplit_once('.').unwrap();
        if self
            .table(&format!("show timeseries {series}"))?
            .1
            .is_empty()
        {
            return Ok(0);
        }
        let (_, rows) = self.table(&format!("select count({measurement}) from {device}"))?;
        match rows.first().and_then(|r| r.last()) {
            None => Ok(0),
            Some(v) => v.parse().map_err(|e| anyhow!("count {v:?}: {e}")),
        }
    }

    /// The (time, value) points of a series.
    fn points(&mut self, series: &str) -> Result<Vec<(i64, String)>> {
        let (device, measurement) = series.rsplit_once('.').unwrap();
        let (_, rows) = self.table(&format!("select {measurement} from {device}"))?;
        rows.iter()
            .filter(|r| r[1] != "null")
            .map(|r| Ok((r[0].parse()?, r[1].clone())))
            .collect()
    }

    fn has_series(&mut self, pattern: &str) -> Result<bool> {
        Ok(!self
            .table(&format!("show timeseries {pattern}"))?
            .1
            .is_empty())
    }

    /// `SHOW PIPES` as one map per pipe, keyed by column name.
    fn pipes(&mut self) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let (header, rows) = self.table("show pipes")?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let map: BTreeMap<String, String> =
                    header.iter().cloned().zip(row.iter().cloned()).collect();
                (row[0].clone(), map)
            })
            .collect())
    }

    fn pipe_field(&mut self, pipe: &str, column: &str) -> Result<String> {
        let pipes = self.pipes()?;
        let row = pipes
            .get(pipe)
            .ok_or_else(|| anyhow!("{}: no pipe {pipe} in {pipes:?}", self.name))?;
        Ok(row.get(column).cloned().unwrap_or_default())
    }

    /// `insertTablet` of INT64/DOUBLE columns, as a client library sends it.
    fn insert_tablet(
        &mut self,
        device: &str,
        times: &[i64],
        columns: &[(&str, Column)],
    ) -> Result<()> {
        let (device, times) = (device.to_string(), times.to_vec());
        let columns: Vec<(String, Column)> = columns
            .iter()
            .map(|(m, c)| (m.to_string(), c.clone()))
            .collect();
        self.with_client("insertTablet", move |c| {
            Box::pin(async move { insert_tablet(c, &device, &times, &columns).await })
        })
    }

    /// The total size of the change log's segment files.
    fn wal_bytes(&self) -> u64 {
        let dir = self.server.data_dir().join("storage").join("wal");
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: cannot list {}: {e}", self.name, dir.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    fn stop(&mut self) {
        self.client = None;
        self.server.stop().unwrap();
    }

    fn kill(&mut self) {
        self.client = None;
        self.server.kill().unwrap();
    }

    /// Starts the server again on its data directory and port (after stop or kill).
    fn restart(&mut self) {
        self.client = None;
        self.server.restart().unwrap();
    }

    /// Polls until `series` has exactly `expected` points.
    fn wait_count(&mut self, series: &str, expected: u64, timeout: Duration) {
        let mut last = None;
        let waited = wait_for(
            &format!("{series} on {} to have {expected} points", self.name),
            timeout,
            || {
                let n = self.count(series);
                let done = matches!(n, Ok(n) if n == expected);
                last = Some(n);
                done.then_some(())
            },
        );
        if let Err(e) = waited {
            panic!(
                "{e}; last count: {last:?}\n{} log:\n{}",
                self.name,
                log_tail(&self.server)
            );
        }
    }

    /// Polls until every pipe of this instance is RUNNING with nothing left to send.
    fn wait_drained(&mut self) {
        let mut last = None;
        let waited = wait_for(
            &format!("the pipes of {} to drain", self.name),
            SYNC,
            || {
                let pipes = self.pipes();
                let done = pipes.as_ref().is_ok_and(|p| {
                    p.values().all(|row| {
                        row.get("State").map(String::as_str) == Some("RUNNING")
                            && row.get("RemainingEventCount").map(String::as_str) == Some("0")
                    })
                });
                last = Some(pipes);
                done.then_some(())
            },
        );
        if let Err(e) = waited {
            panic!("{e}; last: {last:?}");
        }
    }
}

/// Two instances, A and B.
struct Pair {
    rt: Arc<Runtime>,
    a: Node,
    b: Node,
}

const DOUBLE_LIVING: &str = "'source.mode.double-living'='true'";

impl Pair {
    /// Two fresh instances without pipes.
    fn new() -> Pair {
        let rt = runtime();
        let a = Node::start("A", &rt);
        let b = Node::start("B", &rt);
        Pair { rt, a, b }
    }

    /// Two fresh instances with double-living pipes AB and BA carrying `source` options besides the
    /// double-living mode (e.g. `'inclusion'='data'`).
    fn with_pipes(source: &str) -> Pair {
        let mut pair = Pair::new();
        pair.create_pipe(Side::A, "AB", source, "");
        pair.create_pipe(Side::B, "BA", source, "");
        pair
    }

    fn node(&mut self, side: Side) -> &mut Node {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// `CREATE PIPE name` on `from`, sinking into the other instance.
    fn create_pipe(&mut self, from: Side, name: &str, source: &str, sink: &str) {
        let peer = match from {
            Side::A => self.b.port(),
            Side::B => self.a.port(),
        };
        let source = if source.is_empty() {
            DOUBLE_LIVING.to_string()
        } else {
            format!("{DOUBLE_LIVING}, {source}")
        };
        let sink = if sink.is_empty() {
            String::new()
        } else {
            format!(", {sink}")
        };
        self.node(from)
            .exec(&format!(
                "create pipe {name} with source ({source}) with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{peer}'{sink})"
            ))
            .unwrap();
    }

    /// duet-check's comparison over `pattern`.
    fn check(&self, pattern: &str) -> Result<Verdict> {
        let (a, b) = (self.a.options(), self.b.options());
        let pattern = pattern.to_string();
        self.rt
            .block_on(async move { compare::compare(&a, &b, &pattern).await })
            .map_err(|e| anyhow!("{e}"))
    }

    /// Polls until both pipes are drained and duet-check finds A and B consistent; returns (series,
    /// points).
    fn wait_consistent(&mut self) -> (usize, u64) {
        self.a.wait_drained();
        self.b.wait_drained();
        let mut last = None;
        let waited = wait_for("A and B to be consistent", SYNC, || {
            let verdict = self.check("root.**");
            let done = match &verdict {
                Ok(Verdict::Consistent { series, points }) => Some((*series, *points)),
                _ => None,
            };
            last = Some(verdict);
            done
        });
        match waited {
            Ok(v) => v,
            Err(e) => panic!(
                "{e}; last verdict: {last:?}\nA log:\n{}\nB log:\n{}",
                log_tail(&self.a.server),
                log_tail(&self.b.server)
            ),
        }
    }
}

/// Sends one `insertTablet`; a failure status becomes an error.
async fn insert_tablet(
    c: &mut Client,
    device: &str,
    times: &[i64],
    columns: &[(String, Column)],
) -> Result<(), ClientError> {
    let cols: Vec<Column> = columns.iter().map(|(_, c)| c.clone()).collect();
    let req = insert_tablet_request(
        c.session_id(),
        device,
        columns.iter().map(|(m, _)| m.clone()).collect(),
        &cols,
        times,
    );
    let status: t::TSStatus = c.connection().call("insertTablet", 1, &req).await?;
    if status.code == 200 {
        Ok(())
    } else {
        Err(ClientError::Status(status))
    }
}

/// The columns `write_rows` writes for `times`: s1 = time, s2 = time / 2.
fn row_columns(times: &[i64]) -> Vec<(String, Column)> {
    vec![
        ("s1".to_string(), int64s(times.iter().copied())),
        (
            "s2".to_string(),
            doubles(times.iter().map(|t| *t as f64 / 2.0)),
        ),
    ]
}

/// Like [`write_rows`], from `clients` sessions at once (each its own slice of the time range), so
/// that a large backlog is written quickly thanks to group commits.
fn write_rows_concurrently(node: &Node, device: &str, n: i64, per_tablet: i64, clients: i64) {
    let options = node.options();
    let device = device.to_string();
    node.rt.block_on(async move {
        let mut handles = Vec::new();
        for i in 0..clients {
            let (options, device) = (options.clone(), device.clone());
            let (from, to) = (n * i / clients, n * (i + 1) / clients);
            handles.push(tokio::spawn(async move {
                let mut c = Client::connect(&options).await?;
                let mut start = from;
                while start < to {
                    let end = (start + per_tablet).min(to);
                    let times: Vec<i64> = (start..end).collect();
                    insert_tablet(&mut c, &device, &times, &row_columns(&times)).await?;
                    start = end;
                }
                Ok::<(), ClientError>(())
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
    });
}

/// Writes `n` rows at times `first..first+n` into `device` (s1 = time, s2 = time / 2) as tablets of
/// `per_tablet` rows.
fn write_rows(node: &mut Node, device: &str, first: i64, n: i64, per_tablet: i64) {
    let mut start = first;
    while start < first + n {
        let end = (start + per_tablet).min(first + n);
        let times: Vec<i64> = (start..end).collect();
        let columns = row_columns(&times);
        let columns: Vec<(&str, Column)> = columns
            .iter()
            .map(|(m, c)| (m.as_str(), c.clone()))
            .collect();
        node.insert_tablet(device, &times, &columns).unwrap();
        start = end;
    }
}

// a. ---------------------------------------------------------------------------------------------------

#[test]
fn writes_on_either_side_reach_the_other() {
    let mut p = Pair::with_pipes("");
    p.a.exec("insert into root.ra.a(timestamp, s1, s2) values (1, 1, 'one'), (2, 2, 'two')")
        .unwrap();
    p.b.exec("insert into root.ra.b(timestamp, s1) values (1, 1.5)")
        .unwrap();
    write_rows(&mut p.a, "root.ra.t", 0, 300, 100);
    write_rows(&mut p.b, "root.ra.u", 0, 200, 50);

    p.b.wait_count("root.ra.a.s2", 2, SYNC);
    p.b.wait_count("root.ra.t.s1", 300, SYNC);
    p.a.wait_count("root.ra.b.s1", 1, SYNC);
    p.a.wait_count("root.ra.u.s2", 200, SYNC);
    assert_eq!(
        p.b.points("root.ra.a.s2").unwrap(),
        vec![(1, "one".to_string()), (2, "two".to_string())]
    );
    assert_eq!(
        p.a.points("root.ra.b.s1").unwrap(),
        vec![(1, "1.5".to_string())]
    );
    // Types travel with the data.
    let (_, rows) = p.b.table("show timeseries root.ra.a.s2").unwrap();
    assert_eq!(rows[0][3], "TEXT", "{rows:?}");
    let (_, rows) = p.a.table("show timeseries root.ra.b.s1").unwrap();
    assert_eq!(rows[0][3], "DOUBLE", "{rows:?}");

    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (7, 2 + 2 + 1 + 300 * 2 + 200 * 2));
}

// b. ---------------------------------------------------------------------------------------------------

#[test]
fn nothing_loops_back() {
    let mut p = Pair::with_pipes("");
    for i in 0..5 {
        p.a.exec(&format!(
            "insert into root.rb.d1(timestamp, s1) values ({i}, {i})"
        ))
        .unwrap();
        p.b.exec(&format!(
            "insert into root.rb.d1(timestamp, s2) values ({i}, {i})"
        ))
        .unwrap();
    }
    write_rows(&mut p.a, "root.rb.d2", 0, 1000, 250);
    write_rows(&mut p.b, "root.rb.d3", 0, 1000, 250);
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (6, 10 + 4000));

    let before = (p.a.wal_bytes(), p.b.wal_bytes());
    // Asserting that something does NOT happen cannot be polled for: a loop would show as pipes
    // resending the same entries back and forth, growing both change logs within milliseconds (each
    // round trip takes well under 100 ms here), so one second of no change is ample evidence while
    // keeping the test short.
    std::thread::sleep(Duration::from_secs(1));
    let after = (p.a.wal_bytes(), p.b.wal_bytes());
    assert_eq!(
        before, after,
        "change log sizes (A, B) changed after quiescence: a pipe is looping"
    );
    assert_eq!(p.a.pipe_field("AB", "RemainingEventCount").unwrap(), "0");
    assert_eq!(p.b.pipe_field("BA", "RemainingEventCount").unwrap(), "0");
    assert_eq!(p.a.count("root.rb.d1.s1").unwrap(), 5);
}

// c, d. ------------------------------------------------------------------------------------------------

/// B goes down (SIGTERM or SIGKILL) while A takes several thousand rows; when B returns, every row
/// arrives exactly once. With `kill`, B also takes writes just before the crash, which must still
/// reach A.
fn peer_down_then_back(kill: bool) {
    let mut p = Pair::with_pipes("");
    write_rows(&mut p.a, "root.rc.d1", 0, 100, 100);
    p.b.wait_count("root.rc.d1.s1", 100, SYNC);

    if kill {
        // Acknowledged on B, probably not yet shipped when B dies.
        write_rows(&mut p.b, "root.rc.fromb", 0, 1000, 200);
        p.b.kill();
    } else {
        p.b.stop();
    }
    // Five inserts of 1000 rows and a few SQL rows while B is down.
    write_rows(&mut p.a, "root.rc.d1", 1000, 5000, 1000);
    for i in 0..3 {
        p.a.exec(&format!(
            "insert into root.rc.d2(timestamp, s1) values ({i}, {i})"
        ))
        .unwrap();
    }
    // A's pipe notices and says so.
    let mut last = None;
    wait_for("pipe AB to report that B is unreachable", SYNC, || {
        let e = p.a.pipe_field("AB", "ExceptionMessage");
        let done = e.as_ref().is_ok_and(|m| m.contains("not available"));
        last = Some(e);
        done.then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {last:?}"));

    p.b.restart();
    p.b.wait_count("root.rc.d1.s1", 5100, SYNC);
    p.b.wait_count("root.rc.d1.s2", 5100, SYNC);
    p.b.wait_count("root.rc.d2.s1", 3, SYNC);
    if kill {
        p.a.wait_count("root.rc.fromb.s1", 1000, SYNC);
    }
    let (series, points) = p.wait_consistent();
    let from_b = if kill { 2 * 1000 } else { 0 };
    assert_eq!(
        (series, points),
        (3 + usize::from(kill) * 2, 2 * 5100 + 3 + from_b)
    );
    // Each row exactly once, on both sides.
    for node in [&mut p.a, &mut p.b] {
        assert_eq!(node.count("root.rc.d1.s1").unwrap(), 5100, "{}", node.name);
        assert_eq!(node.count("root.rc.d2.s1").unwrap(), 3, "{}", node.name);
    }
    // The pipe recovered by itself: no exception left.
    assert_eq!(p.a.pipe_field("AB", "ExceptionMessage").unwrap(), "");
}

#[test]
fn peer_stopped_gracefully_gets_everything_on_restart() {
    peer_down_then_back(false);
}

#[test]
fn peer_killed_gets_everything_on_restart() {
    peer_down_then_back(true);
}

// e. ---------------------------------------------------------------------------------------------------

#[test]
fn sender_killed_while_shipping_a_backlog_resumes_without_loss() {
    const ROWS: i64 = 200_000;
    // 40 rows per tablet gives 5,000 log entries: more than one read of the log (4,096 entries), so
    // the backlog leaves in at least two batches. The sink's rate limit makes A pause after each batch
    // (batch bytes / rate, about two seconds for the first one), which gives this test a wide, certain
    // window in which B has part of the backlog and A has not finished: A is killed inside it.
    let mut p = Pair::new();
    p.create_pipe(
        Side::A,
        "AB",
        "",
        "'sink.rate-limit-bytes-per-second'='2000000'",
    );
    p.create_pipe(Side::B, "BA", "", "");
    write_rows(&mut p.a, "root.re.d0", 0, 10, 10);
    p.b.wait_count("root.re.d0.s1", 10, SYNC);

    p.b.stop();
    let started = Instant::now();
    write_rows_concurrently(&p.a, "root.re.d1", ROWS, 40, 4);
    eprintln!("wrote {ROWS} rows in {:?}", started.elapsed());
    p.b.restart();
    // Skip the rest of A's retry back-off (automatic recovery is covered by the tests above).
    p.a.exec("start pipe AB").unwrap();

    let started = Instant::now();
    let mut seen = Vec::new();
    let partial = wait_for("B to receive part of the backlog", BACKLOG, || {
        let n = p.b.count("root.re.d1.s1").unwrap_or(0);
        seen.push(n);
        (n > 0).then_some(n)
    })
    .unwrap();
    p.a.kill();
    seen.dedup();
    eprintln!(
        "killed A when B had {partial} of {ROWS} rows, {:?} after B restarted; counts seen: {seen:?}",
        started.elapsed()
    );
    assert!(
        partial < ROWS as u64,
        "the backlog arrived before A could be killed mid-way (counts seen: {seen:?})"
    );
    p.a.restart();
    p.b.wait_count("root.re.d1.s1", ROWS as u64, BACKLOG);
    p.b.wait_count("root.re.d1.s2", ROWS as u64, BACKLOG);
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (4, 2 * (ROWS as u64 + 10)));
    assert_eq!(p.a.count("root.re.d1.s1").unwrap(), ROWS as u64);
}

// f. ---------------------------------------------------------------------------------------------------

/// Rows (times 0..100) on `device`.s1 with value = time.
fn write_hundred(node: &mut Node, device: &str) {
    let times: Vec<i64> = (0..100).collect();
    node.insert_tablet(device, &times, &[("s1", int64s(0..100))])
        .unwrap();
}

#[test]
fn pipes_created_later_send_history_through_path_and_time_filters() {
    let mut p = Pair::new();
    // More points than one history scan reads (8,192), so the history is paged.
    write_rows(&mut p.a, "root.rf.keep.big", 0, 30_000, 10_000);
    write_hundred(&mut p.b, "root.rg.keep.d");
    // Part of the history in data files, part in memory.
    p.a.exec("flush").unwrap();
    p.b.exec("flush").unwrap();
    write_hundred(&mut p.a, "root.rf.keep.d");
    write_hundred(&mut p.a, "root.rf.skip.d");
    write_hundred(&mut p.b, "root.rg.skip.d");
    p.create_pipe(
        Side::A,
        "AB",
        "'path'='root.rf.keep.**', 'start-time'='10', 'end-time'='20009'",
        "",
    );
    p.create_pipe(
        Side::B,
        "BA",
        "'path'='root.rg.keep.**', 'start-time'='50', 'end-time'='59'",
        "",
    );

    // History, both ways, inside the filters only.
    p.b.wait_count("root.rf.keep.d.s1", 90, SYNC);
    p.b.wait_count("root.rf.keep.big.s2", 20_000, SYNC);
    p.a.wait_count("root.rg.keep.d.s1", 10, SYNC);
    let expect = |range: std::ops::RangeInclusive<i64>| -> Vec<(i64, String)> {
        range.map(|t| (t, t.to_string())).collect()
    };
    assert_eq!(p.b.points("root.rf.keep.d.s1").unwrap(), expect(10..=99));
    assert_eq!(
        p.b.points("root.rf.keep.big.s1").unwrap(),
        expect(10..=20_009)
    );
    assert_eq!(p.a.points("root.rg.keep.d.s1").unwrap(), expect(50..=59));

    // Real time: writes outside the pattern or the range first, then one insert with rows inside and
    // outside the range. Pipes ship their log in order, so once the in-range row is there, the others
    // have been filtered out, not delayed.
    p.a.exec("insert into root.rf.skip.d(timestamp, s1) values (20, -1)")
        .unwrap();
    p.a.exec("insert into root.rf.keep.d(timestamp, s1) values (20010, -1)")
        .unwrap();
    p.a.exec("insert into root.rf.keep.d(timestamp, s1) values (5, -1), (20, 7777), (30000, -1)")
        .unwrap();
    p.b.exec("insert into root.rg.skip.d(timestamp, s1) values (55, -1)")
        .unwrap();
    p.b.exec("insert into root.rg.keep.d(timestamp, s1) values (1000, -1)")
        .unwrap();
    p.b.exec("insert into root.rg.keep.d(timestamp, s1) values (49, -1), (55, 7777), (60, -1)")
        .unwrap();
    let value_at = |node: &mut Node, series: &str, time: i64| -> Option<String> {
        node.points(series)
            .ok()?
            .into_iter()
            .find(|(t, _)| *t == time)
            .map(|(_, v)| v)
    };
    wait_for("the in-range update to reach B", SYNC, || {
        (value_at(&mut p.b, "root.rf.keep.d.s1", 20).as_deref() == Some("7777")).then_some(())
    })
    .unwrap();
    wait_for("the in-range update to reach A", SYNC, || {
        (value_at(&mut p.a, "root.rg.keep.d.s1", 55).as_deref() == Some("7777")).then_some(())
    })
    .unwrap();
    let mut on_b = expect(10..=99);
    on_b[10].1 = "7777".to_string();
    assert_eq!(p.b.points("root.rf.keep.d.s1").unwrap(), on_b);
    let mut on_a = expect(50..=59);
    on_a[5].1 = "7777".to_string();
    assert_eq!(p.a.points("root.rg.keep.d.s1").unwrap(), on_a);
    assert!(!p.b.has_series("root.rf.skip.**").unwrap());
    assert!(!p.a.has_series("root.rg.skip.**").unwrap());

    // duet-check names the first difference precisely.
    assert_eq!(
        p.check("root.rf.keep.**").unwrap(),
        Verdict::Differs(Difference::Point {
            series: "root.rf.keep.big.s1".into(),
            time: 0,
            a: Some(Value::Int64(0)),
            b: None
        })
    );
    assert_eq!(
        p.check("root.rf.skip.**").unwrap(),
        Verdict::Differs(Difference::OnlyOn {
            series: "root.rf.skip.d.s1".into(),
            side: Side::A
        })
    );
    assert_eq!(
        p.check("root.rg.skip.**").unwrap(),
        Verdict::Differs(Difference::OnlyOn {
            series: "root.rg.skip.d.s1".into(),
            side: Side::B
        })
    );
}

// g. ---------------------------------------------------------------------------------------------------

#[test]
fn deletes_propagate_with_inclusion_data() {
    let mut p = Pair::with_pipes("'inclusion'='data'");
    write_hundred(&mut p.a, "root.rd.d1");
    write_hundred(&mut p.b, "root.rd.d2");
    p.b.wait_count("root.rd.d1.s1", 100, SYNC);
    p.a.wait_count("root.rd.d2.s1", 100, SYNC);
    // Deletes must reach points in data files, not only in memory.
    p.a.exec("flush").unwrap();
    p.b.exec("flush").unwrap();

    // Each side deletes in data it wrote and in data it received.
    p.a.exec("delete from root.rd.d1.s1 where time <= 9")
        .unwrap();
    p.b.exec("delete from root.rd.d2.s1 where time >= 90")
        .unwrap();
    p.b.exec("delete from root.rd.d1.s1 where time >= 50 and time <= 59")
        .unwrap();
    p.a.exec("delete from root.rd.d2.s1 where time < 5")
        .unwrap();
    for node in [&mut p.a, &mut p.b] {
        node.wait_count("root.rd.d1.s1", 80, SYNC);
        node.wait_count("root.rd.d2.s1", 85, SYNC);
    }
    let points = p.a.points("root.rd.d1.s1").unwrap();
    assert!(points
        .iter()
        .all(|(t, _)| *t >= 10 && !(50..=59).contains(t)));
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (2, 165));

    // A delete and writes on the other side that conflict with it converge by version: with both
    // pipes stopped, B writes t=75, then A deletes [60, 79], then B writes t=65. The delete is newer
    // than B's first write and older than its second, so t=75 goes and t=65 stays, on both sides.
    p.a.exec("stop pipe AB").unwrap();
    p.b.exec("stop pipe BA").unwrap();
    let newer_than = |earlier: Instant| {
        // Versions are hybrid logical clocks in milliseconds: let the clock move on so that the
        // order of these three writes is unambiguous (a wait on the clock itself, not on the system).
        wait_for("the clock to advance", SYNC, || {
            (earlier.elapsed() >= Duration::from_millis(5)).then_some(())
        })
        .unwrap();
    };
    p.b.exec("insert into root.rd.d1(timestamp, s1) values (75, 7500)")
        .unwrap();
    newer_than(Instant::now());
    p.a.exec("delete from root.rd.d1.s1 where time >= 60 and time <= 79")
        .unwrap();
    newer_than(Instant::now());
    p.b.exec("insert into root.rd.d1(timestamp, s1) values (65, 6500)")
        .unwrap();
    p.a.exec("start pipe AB").unwrap();
    p.b.exec("start pipe BA").unwrap();
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (2, 85 + 61));
    for node in [&mut p.a, &mut p.b] {
        let d1 = node.points("root.rd.d1.s1").unwrap();
        assert!(
            d1.contains(&(65, "6500".to_string())),
            "{}: {d1:?}",
            node.name
        );
        assert!(!d1.iter().any(|(t, _)| *t == 75), "{}: {d1:?}", node.name);
    }
}

// h. ---------------------------------------------------------------------------------------------------

#[test]
fn conflicting_concurrent_writes_converge() {
    const TASKS: i64 = 3;
    const ROUNDS: i64 = 10;
    const TIMES: i64 = 50;
    let mut p = Pair::with_pipes("");
    let (oa, ob) = (p.a.options(), p.b.options());
    // Every task writes the same series and times with values unique to (side, task, round).
    let value = |side: i64, task: i64, round: i64| side * 1_000_000 + task * 1_000 + round;
    let results = p.rt.block_on(async {
        let mut handles = Vec::new();
        for (side, options) in [(1i64, oa), (2i64, ob)] {
            for task in 0..TASKS {
                let options = options.clone();
                handles.push(tokio::spawn(async move {
                    let mut c = Client::connect(&options).await?;
                    for round in 0..ROUNDS {
                        let v = value(side, task, round);
                        let rows: Vec<String> =
                            (0..TIMES).map(|t| format!("({t}, {v}, {v}.5)")).collect();
                        c.execute_update(&format!(
                            "insert into root.rh.d1(timestamp, s1, s2) values {}",
                            rows.join(", ")
                        ))
                        .await?;
                    }
                    Ok::<(), duet_proto::client::ClientError>(())
                }));
            }
        }
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await);
        }
        results
    });
    for r in results {
        r.unwrap().unwrap();
    }
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (2, 2 * TIMES as u64));
    // Every surviving value is one that was written, and both columns of a row come from one write.
    let written: BTreeSet<String> = (1..=2)
        .flat_map(|s| (0..TASKS).flat_map(move |t| (0..ROUNDS).map(move |r| value(s, t, r))))
        .map(|v| v.to_string())
        .collect();
    let (_, rows) = p.a.table("select s1, s2 from root.rh.d1").unwrap();
    assert_eq!(rows.len(), TIMES as usize);
    for row in &rows {
        assert!(written.contains(&row[1]), "{row:?}");
        assert_eq!(format!("{}.5", row[1]), row[2], "{row:?}");
    }
}

// i. ---------------------------------------------------------------------------------------------------

#[test]
fn stop_start_and_drop_pipe() {
    let mut p = Pair::with_pipes("");
    write_rows(&mut p.a, "root.ri.d1", 0, 10, 10);
    p.b.wait_count("root.ri.d1.s1", 10, SYNC);
    p.a.wait_drained();

    p.a.exec("stop pipe AB").unwrap();
    assert_eq!(p.a.pipe_field("AB", "State").unwrap(), "STOPPED");
    for i in 1..=3 {
        write_rows(&mut p.a, "root.ri.d1", i * 10, 10, 10);
    }
    // BA still flows while AB is stopped; its round trip also lets time pass for AB to misbehave.
    p.b.exec("insert into root.ri.d2(timestamp, s1) values (1, 1)")
        .unwrap();
    p.a.wait_count("root.ri.d2.s1", 1, SYNC);
    // The three entries are held, not sent: the stopped pipe's position has not moved past them.
    assert_eq!(p.a.pipe_field("AB", "RemainingEventCount").unwrap(), "3");
    assert_eq!(p.b.count("root.ri.d1.s1").unwrap(), 10);

    p.a.exec("start pipe AB").unwrap();
    p.b.wait_count("root.ri.d1.s1", 40, SYNC);
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (3, 40 * 2 + 1));

    p.a.exec("drop pipe AB").unwrap();
    assert!(!p.a.pipes().unwrap().contains_key("AB"));
    write_rows(&mut p.a, "root.ri.d1", 100, 10, 10);
    p.a.exec("insert into root.ri.d3(timestamp, s1) values (1, 1)")
        .unwrap();
    // BA still works after AB is gone.
    p.b.exec("insert into root.ri.d2(timestamp, s1) values (2, 2)")
        .unwrap();
    p.a.wait_count("root.ri.d2.s1", 2, SYNC);
    // The absence of arrivals cannot be polled for: a pipe left running would deliver within a few
    // milliseconds (as it did above), so one second without them is enough and keeps the test short.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(p.b.count("root.ri.d1.s1").unwrap(), 40);
    assert!(!p.b.has_series("root.ri.d3.**").unwrap());
}

// j. ---------------------------------------------------------------------------------------------------

#[test]
fn alter_pipe_keeps_progress_and_applies_the_new_filter() {
    let mut p = Pair::with_pipes("'path'='root.rj.**'");
    write_rows(&mut p.a, "root.rj.keep", 0, 5000, 1000);
    write_rows(&mut p.a, "root.rj.other", 0, 5000, 1000);
    p.b.wait_count("root.rj.keep.s1", 5000, SYNC);
    p.b.wait_count("root.rj.other.s1", 5000, SYNC);
    p.a.wait_drained();
    let b_wal = p.b.wal_bytes();

    p.a.exec("alter pipe AB modify source ('path'='root.rj.keep.**')")
        .unwrap();
    let source = p.a.pipe_field("AB", "PipeSource").unwrap();
    assert!(source.contains("path=root.rj.keep.**"), "{source}");
    assert!(source.contains("double-living=true"), "{source}");

    p.a.exec("insert into root.rj.other(timestamp, s1) values (10000, 1)")
        .unwrap();
    p.a.exec("insert into root.rj.keep(timestamp, s1) values (10000, 1)")
        .unwrap();
    p.b.wait_count("root.rj.keep.s1", 5001, SYNC);
    p.a.wait_drained();
    // The new filter holds for new writes (the log is shipped in order: the row on `other` came first).
    assert_eq!(p.b.count("root.rj.other.s1").unwrap(), 5000);
    // Progress was kept: nothing already sent was sent again. Re-sent entries would be invisible in
    // the data (they carry their original versions) but not in B's change log, which would grow by
    // about the size of the first 10,000 rows instead of one row.
    let grown = p.b.wal_bytes() - b_wal;
    eprintln!("B's change log: {b_wal} bytes before the ALTER, +{grown} after");
    assert!(
        grown < b_wal / 10,
        "B's change log grew by {grown} bytes (was {b_wal}) for one new row: A re-sent old entries"
    );
    assert_eq!(p.a.count("root.rj.keep.s1").unwrap(), 5001);
    assert_eq!(p.b.count("root.rj.keep.s2").unwrap(), 5000);
}

// duet-check, the binary ----------------------------------------------------------------------------

/// Runs the built `duet-check` (from `cargo build --workspace --bins`) and returns (status, stdout,
/// stderr).
fn duet_check_binary(args: &[String]) -> (i32, String, String) {
    let path = duet_testkit::binary("duet-check");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    let out = std::process::Command::new(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status
            .code()
            .expect("duet-check was killed by a signal"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn duet_check_binary_reports_the_first_difference_with_its_exit_status() {
    let mut p = Pair::with_pipes("");
    p.a.exec("insert into root.rk.d1(timestamp, s1) values (1, 10), (5, 10)")
        .unwrap();
    p.b.wait_count("root.rk.d1.s1", 2, SYNC);
    p.wait_consistent();
    let args = |a: u16, b: u16, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "-h",
            "127.0.0.1",
            "-p",
            &a.to_string(),
            "-u",
            "root",
            "-pw",
            "root",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(["--peer-host".to_string(), "127.0.0.1".to_string()]);
        v.extend(["--peer-port".to_string(), b.to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (pa, pb) = (p.a.port(), p.b.port());
    assert_eq!(
        duet_check_binary(&args(pa, pb, &[])),
        (
            0,
            "consistent: 1 series, 2 points\n".to_string(),
            String::new()
        )
    );
    // A stopped pipe lets the two sides differ: the first difference is printed, status 1.
    p.a.exec("stop pipe AB").unwrap();
    p.a.exec("insert into root.rk.d1(timestamp, s1) values (5, 11)")
        .unwrap();
    p.a.exec("insert into root.rk.d0(timestamp, s1) values (1, 1)")
        .unwrap();
    let (code, out, _) = duet_check_binary(&args(pa, pb, &["--path", "root.rk.d1.**"]));
    assert_eq!(
        (code, out.as_str()),
        (1, "root.rk.d1.s1 at time 5: A has 11, B has 10\n")
    );
    let (code, out, _) = duet_check_binary(&args(pa, pb, &[]));
    assert_eq!(
        (code, out.as_str()),
        (1, "series root.rk.d0.s1: only on A\n")
    );
    // Unreachable peer, wrong password, missing argument: status 2.
    p.b.stop();
    let (code, _, err) = duet_check_binary(&args(pa, pb, &[]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    let mut wrong = args(pa, pa, &[]);
    wrong[7] = "wrong".to_string();
    let (code, _, err) = duet_check_binary(&wrong);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = duet_check_binary(&["-p".to_string(), pa.to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--peer-port"), "{err}");
}

// k. ---------------------------------------------------------------------------------------------------

/// A pipe whose peer is down longer than the change log is kept (tiny segments, memtable and retention
/// cap) finds its position released, says so, replays from the data files when the peer returns, and
/// loses nothing.
#[test]
fn lagging_pipe_past_the_retention_cap_replays_from_data_files() {
    let rt = runtime();
    let small =
        "memtable_bytes = 65536\nwal_segment_bytes = 16384\nwal_retention_cap_bytes = 32768\n";
    let a = Node::start_with_config("A", &rt, small);
    let b = Node::start("B", &rt);
    let mut p = Pair { rt, a, b };
    p.create_pipe(Side::A, "AB", "'inclusion'='data'", "");
    write_rows(&mut p.a, "root.cap.d1", 0, 100, 100);
    p.b.wait_count("root.cap.d1.s1", 100, SYNC);
    p.b.stop();
    // Far more than the cap while B is down; flushes follow by size, so the old segments are released.
    write_rows(&mut p.a, "root.cap.d1", 1000, 20_000, 500);
    p.a.exec("flush").unwrap();
    p.b.restart();
    p.b.wait_count("root.cap.d1.s1", 20_100, SYNC);
    let (_, points) = p.wait_consistent();
    assert_eq!(points, 2 * 20_100);
    assert_eq!(p.b.count("root.cap.d1.s1").unwrap(), 20_100);
    // The replay really happened: the log A's pipe needed had been released.
    assert!(
        p.a.server.log().contains("replaying from data files"),
        "A never replayed from data files:\n{}",
        log_tail(&p.a.server)
    );
}

// l. ---------------------------------------------------------------------------------------------------

/// History carries deletions: a delete made on A before the pipe existed hides, on B, the older points
/// B held in that range (the tombstone keeps its version, so it hides only what is older).
#[test]
fn history_carries_deletions_made_before_the_pipe() {
    let mut p = Pair::new();
    // B's own, older points.
    for t in 1..=5 {
        p.b.exec(&format!(
            "insert into root.hd.d1(timestamp, s1) values ({t}, {t})"
        ))
        .unwrap();
    }
    // A writes the series, then deletes a range covering B's points.
    p.a.exec("insert into root.hd.d1(timestamp, s1) values (100, 100)")
        .unwrap();
    p.a.exec("delete from root.hd.d1.s1 where time >= 1 and time <= 10")
        .unwrap();
    p.create_pipe(Side::A, "AB", "'inclusion'='data'", "");
    p.b.wait_count("root.hd.d1.s1", 1, SYNC);
    let (_, rows) = p.b.table("select s1 from root.hd.d1").unwrap();
    assert_eq!(rows, vec![vec!["100".to_string(), "100".to_string()]]);
    // A point B writes now (newer than the tombstone) stays.
    p.b.exec("insert into root.hd.d1(timestamp, s1) values (3, 33)")
        .unwrap();
    assert_eq!(p.b.count("root.hd.d1.s1").unwrap(), 2);
}

// Many small batches: the asynchronous sink keeps several on the wire (acknowledged in log order),
// the synchronous one sends them one at a time; both deliver everything once.
#[test]
fn small_batches_in_flight_together_arrive_whole() {
    let mut p = Pair::new();
    p.create_pipe(Side::A, "AB", "", "'sink.batch.size-bytes'='2048'");
    let a_port = p.a.port();
    p.b.exec(&format!(
        "create pipe BA with source ({DOUBLE_LIVING}) with sink ('sink'='iotdb-thrift-sync-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{a_port}', 'sink.batch.size-bytes'='2048')"
    ))
    .unwrap();
    // 1,000 tablets of 10 rows each way: hundreds of batches.
    write_rows_concurrently(&p.a, "root.bf.a", 10_000, 10, 4);
    write_rows_concurrently(&p.b, "root.bf.b", 10_000, 10, 4);
    p.b.wait_count("root.bf.a.s1", 10_000, SYNC);
    p.a.wait_count("root.bf.b.s1", 10_000, SYNC);
    let (series, points) = p.wait_consistent();
    assert_eq!((series, points), (4, 4 * 10_000));
    for (node, pipe) in [(&mut p.a, "AB"), (&mut p.b, "BA")] {
        assert_eq!(node.pipe_field(pipe, "RemainingEventCount").unwrap(), "0");
        assert_eq!(node.pipe_field(pipe, "ExceptionMessage").unwrap(), "");
    }
}

// `format`='tablet': the sink sends IoTDB tablets (types 13 / 300) instead of Duet entries, and the
// receiver reads them as it would from an IoTDB sender: every type, nulls and alignment arrive.
#[test]
fn tablet_format_pipe_carries_every_type_nulls_and_alignment() {
    let mut p = Pair::new();
    p.create_pipe(
        Side::A,
        "AB",
        "'inclusion'='data'",
        "'sink.format'='tablet', 'sink.batch.size-bytes'='4096'",
    );
    p.a.exec("create aligned timeseries root.tf.al(a INT32, b TEXT)")
        .unwrap();
    for (m, t) in [
        ("b", "BOOLEAN"),
        ("i", "INT32"),
        ("l", "INT64"),
        ("f", "FLOAT"),
        ("d", "DOUBLE"),
        ("t", "TEXT"),
        ("s", "STRING"),
    ] {
        p.a.exec(&format!(
            "create timeseries root.tf.d.{m} with datatype={t}"
        ))
        .unwrap();
    }
    p.a.exec("insert into root.tf.d(timestamp, b, i, l, f, d, t, s) values (1, true, -7, 9000000000, 1.5, 2.25, 'x', 'y')")
        .unwrap();
    p.a.exec("insert into root.tf.d(timestamp, t, s) values (2, '', 'two')")
        .unwrap();
    p.a.exec("insert into root.tf.al(timestamp, a, b) aligned values (5, 5, 'five')")
        .unwrap();
    // A tablet with a null cell (bitmap) in each column.
    p.a.insert_tablet(
        "root.tf.n",
        &[10, 11, 12],
        &[
            (
                "x",
                Column {
                    data_type: DataType::Int64,
                    nulls: Some(vec![false, true, false]),
                    values: ColumnValues::Int64(vec![1, 0, 3]),
                },
            ),
            (
                "y",
                Column {
                    data_type: DataType::Double,
                    nulls: Some(vec![true, false, false]),
                    values: ColumnValues::Double(vec![0.0, 2.5, 3.5]),
                },
            ),
        ],
    )
    .unwrap();
    write_rows(&mut p.a, "root.tf.bulk", 0, 2_000, 50);

    p.b.wait_count("root.tf.bulk.s2", 2_000, SYNC);
    p.b.wait_count("root.tf.n.y", 2, SYNC);
    let verdict = wait_for("B to hold what A holds", SYNC, || {
        match p.check("root.tf.**") {
            Ok(Verdict::Consistent { series, points }) => Some((series, points)),
            _ => None,
        }
    })
    .unwrap();
    // 7 + 2 + 2 + 2 series; 9 + 2 + 4 + 4,000 points.
    assert_eq!(verdict, (13, 9 + 2 + 4 + 4_000));
    let (_, rows) = p.b.table("show timeseries root.tf.al.b").unwrap();
    assert_eq!(rows[0][3], "TEXT", "{rows:?}");
    let (_, rows) = p.b.table("show devices root.tf.al").unwrap();
    assert_eq!(rows[0][1], "true", "aligned: {rows:?}");
    assert_eq!(
        p.b.points("root.tf.n.x").unwrap(),
        vec![(10, "1".to_string()), (12, "3".to_string())]
    );
    assert_eq!(
        p.b.points("root.tf.d.t").unwrap(),
        vec![(1, "x".to_string()), (2, String::new())]
    );
    assert_eq!(p.a.pipe_field("AB", "ExceptionMessage").unwrap(), "");
    // Tablets cannot carry a deletion (Duet entries would): it stays on A, and a later insert still
    // arrives, so the pipe went on past it.
    p.a.exec("delete from root.tf.n.x where time <= 10")
        .unwrap();
    p.a.exec("insert into root.tf.n(timestamp, x) values (20, 20)")
        .unwrap();
    p.b.wait_count("root.tf.n.x", 3, SYNC);
    assert_eq!(
        p.b.points("root.tf.n.x").unwrap(),
        vec![
            (10, "1".to_string()),
            (12, "3".to_string()),
            (20, "20".to_string())
        ]
    );
}

// History creates series on the peer as they are here: an aligned device stays aligned.
#[test]
fn history_keeps_aligned_devices_aligned() {
    let mut p = Pair::new();
    p.a.exec("create aligned timeseries root.ha.d(a INT32, b TEXT)")
        .unwrap();
    p.a.exec("insert into root.ha.d(timestamp, a, b) aligned values (1, 1, 'one'), (2, 2, 'two')")
        .unwrap();
    p.create_pipe(Side::A, "AB", "", "");
    p.b.wait_count("root.ha.d.b", 2, SYNC);
    let (_, rows) = p.b.table("show devices root.ha.d").unwrap();
    assert_eq!(rows[0][1], "true", "aligned: {rows:?}");
    assert_eq!(
        p.b.points("root.ha.d.b").unwrap(),
        vec![(1, "one".to_string()), (2, "two".to_string())]
    );
}
