//! `/metrics` follows real activity on real `duetd` processes: N points written count N, a request
//! is timed under its kind, a pipe whose peer is stopped shows its backlog growing and its state
//! changing, and once the peer is back the backlog drains to 0; the listener's own behaviour (port
//! file, 404, turned off, busy port) too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{anyhow, Result};
use duet_proto::client::{Client, ClientOptions};
use duet_testkit::{wait_for, Duetd, DuetdOptions};

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn exec(rt: &tokio::runtime::Runtime, server: &Duetd, sql: &str) -> Result<()> {
    rt.block_on(async {
        let mut client = Client::connect(&ClientOptions {
            port: server.port(),
            ..ClientOptions::default()
        })
        .await?;
        client.execute_update(sql).await?;
        client.close().await?;
        Ok::<(), duet_proto::client::ClientError>(())
    })
    .map_err(|e| anyhow!("{sql}: {e}"))
}

/// An INSERT of `rows` rows of two measurements from time `start`: 2 × rows points.
fn insert(device: &str, start: i64, rows: i64) -> String {
    let values: Vec<String> = (start..start + rows)
        .map(|t| format!("({t}, {t}, {}.5)", t))
        .collect();
    format!(
        "insert into {device}(timestamp, s1, s2) values {}",
        values.join(", ")
    )
}

#[test]
fn written_points_are_counted_by_origin_and_requests_timed_by_kind() -> Result<()> {
    let rt = runtime();
    let server = Duetd::start()?;
    let before = server.metrics()?;
    assert_eq!(
        before.get("duet_points_written_total", &[("origin", "local")])?,
        0.0
    );
    exec(&rt, &server, &insert("root.m.d1", 1, 150))?;
    exec(
        &rt,
        &server,
        "insert into root.m.d2(timestamp, s1) values (1, 1), (2, null)",
    )?;
    let after = server.metrics()?;
    // 150 rows × 2 values, plus one non-null value (a null is no point).
    assert_eq!(
        after.get("duet_points_written_total", &[("origin", "local")])?,
        301.0
    );
    assert_eq!(
        after.get("duet_points_written_total", &[("origin", "pipe")])?,
        0.0
    );
    assert_eq!(
        after.get("duet_entries_written_total", &[("origin", "local")])?,
        2.0
    );
    assert_eq!(
        after.get("duet_write_latency_seconds_count", &[("kind", "sql")])?,
        2.0
    );
    assert_eq!(
        after.get(
            "duet_write_latency_seconds_bucket",
            &[("kind", "sql"), ("le", "+Inf")]
        )?,
        2.0
    );
    assert!(after.get("duet_wal_fsync_seconds_count", &[])? >= 2.0);
    assert!(after.get("duet_memtable_bytes", &[])? > 0.0);
    assert!(after.get("duet_connections_accepted_total", &[])? >= 2.0);
    assert!(after.get("process_resident_memory_bytes", &[])? > 0.0);
    assert!(after.get("process_open_fds", &[])? > 0.0);
    // A SELECT is timed as a query of kind sql.
    rt.block_on(async {
        let mut client = Client::connect(&ClientOptions {
            port: server.port(),
            ..ClientOptions::default()
        })
        .await?;
        let rs = client.execute("select count(s1) from root.m.d1").await?;
        drop(rs);
        client.close().await
    })
    .map_err(|e| anyhow!("select: {e}"))?;
    let queried = server.metrics()?;
    assert_eq!(
        queried.get("duet_query_latency_seconds_count", &[("kind", "sql")])?,
        1.0
    );
    assert_eq!(
        queried.get("duet_write_latency_seconds_count", &[("kind", "sql")])?,
        2.0
    );
    // A FLUSH makes a data file.
    exec(&rt, &server, "flush")?;
    let flushed = server.metrics()?;
    assert!(flushed.get("duet_data_files", &[])? >= 1.0);
    assert!(flushed.get("duet_data_file_bytes", &[])? > 0.0);
    assert!(flushed.get("duet_flush_seconds_count", &[])? >= 1.0);
    Ok(())
}

#[test]
fn a_stopped_peer_grows_the_backlog_and_its_return_drains_it() -> Result<()> {
    let rt = runtime();
    let a = Duetd::start()?;
    let mut b = Duetd::start()?;
    exec(
        &rt,
        &a,
        &format!(
            "create pipe AB with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
            b.port()
        ),
    )?;
    let pipe = [("name", "AB")];
    exec(&rt, &a, &insert("root.p.d1", 1, 50))?;
    // Replicated: B applied the 100 points as pipe data (more if the pipe's history, read while
    // the insert landed, sent them too), A's backlog is empty, the pipe runs.
    wait_for("B to apply the pipe's 100 points", WAIT, || {
        let m = b.metrics().ok()?;
        (m.value("duet_points_written_total", &[("origin", "pipe")])? >= 100.0).then_some(())
    })?;
    wait_for("A's backlog to be empty", WAIT, || {
        let m = a.metrics().ok()?;
        (m.value("pipe_datanode_remaining_event_count", &pipe)? == 0.0).then_some(())
    })?;
    let m = a.metrics()?;
    assert_eq!(m.get("pipe_task_status", &pipe)?, 0.0);
    assert_eq!(m.get("pipe_exception", &pipe)?, 0.0);
    assert!(m.get("pipe_connector_tablet_transfer_total", &pipe)? >= 1.0);
    assert!(m.get("pipe_connector_transfer_bytes_total", &pipe)? > 0.0);
    assert!(m.get("pipe_replication_lag_seconds_count", &pipe)? >= 1.0);
    assert!(b.metrics()?.get("pipe_receiver_requests_total", &[])? >= 1.0);
    // The creation time label is the pipe's, as IoTDB labels it.
    assert!(m
        .samples
        .iter()
        .any(|s| s.name == "pipe_datanode_remaining_event_count"
            && s.labels
                .iter()
                .any(|(k, v)| k == "creation_time" && v.parse::<i64>().is_ok())));

    // B goes away: the writes on A pile up, the pipe shows the failure, then STOPPED.
    b.stop()?;
    for i in 0..5 {
        exec(&rt, &a, &insert("root.p.d1", 1000 + i * 10, 10))?;
    }
    let grown = wait_for("A's backlog to show the 5 writes", WAIT, || {
        let m = a.metrics().ok()?;
        (m.value("pipe_datanode_remaining_event_count", &pipe)? >= 5.0).then_some(m)
    })?;
    assert!(grown.get("pipe_backlog_age_seconds", &pipe)? >= 0.0);
    wait_for("the pipe to show its exception and STOPPED", WAIT, || {
        let m = a.metrics().ok()?;
        (m.value("pipe_exception", &pipe)? == 1.0
            && m.value("pipe_task_status", &pipe)? == 1.0
            && m.value("pipe_transfer_failures_total", &pipe)? >= 1.0)
            .then_some(())
    })?;
    let failing = a.metrics()?;
    assert!(failing.get("pipe_transfer_retries_total", &pipe)? >= 1.0);
    assert!(failing.get("pipe_backlog_age_seconds", &pipe)? > 0.0);

    // B is back: the backlog drains to 0 and the pipe runs again by itself.
    b.restart()?;
    wait_for("the backlog to drain and the pipe to run", WAIT, || {
        let m = a.metrics().ok()?;
        (m.value("pipe_datanode_remaining_event_count", &pipe)? == 0.0
            && m.value("pipe_task_status", &pipe)? == 0.0
            && m.value("pipe_exception", &pipe)? == 0.0
            && m.value("pipe_backlog_age_seconds", &pipe)? == 0.0)
            .then_some(())
    })?;
    wait_for("B to apply the backlog", WAIT, || {
        let m = b.metrics().ok()?;
        // Counted since B's restart: the 5 writes of 10 rows × 2 values (at least once).
        (m.value("duet_points_written_total", &[("origin", "pipe")])? >= 100.0).then_some(())
    })?;
    Ok(())
}

#[test]
fn the_listener_serves_its_pages_and_can_be_turned_off() -> Result<()> {
    let server = Duetd::start()?;
    let addr = server.metrics_addr()?;
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let (status, page) = server.http_get("/")?;
    assert_eq!(status, 200);
    assert!(page.contains("dashboard.js"), "{page}");
    let (status, js) = server.http_get("/dashboard.js")?;
    assert_eq!(status, 200);
    assert!(!js.is_empty());
    let (status, json) = server.http_get("/api/status")?;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(json["instance"]["rpc_port"], u64::from(server.port()));
    assert!(json["pipes"].as_array().is_some());
    let (status, _) = server.http_get("/nothing-here")?;
    assert_eq!(status, 404);

    // A busy port fails the start, naming the setting.
    let port = addr.rsplit(':').next().unwrap().to_string();
    let busy = Duetd::start_with(DuetdOptions {
        args: vec!["--metrics-port".into(), port],
        ..Default::default()
    });
    let error = busy
        .err()
        .expect("a second server on the same metrics port");
    assert!(error.to_string().contains("metrics_port"), "{error:#}");

    // Turned off: no listener, no address file.
    let off = Duetd::start_with(DuetdOptions {
        args: vec!["--metrics-enabled".into(), "false".into()],
        ..Default::default()
    })?;
    assert!(off.metrics_addr().is_err());
    drop(server);
    Ok(())
}
