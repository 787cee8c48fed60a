//! Every query is bounded, end to end against real `duetd`: GROUP BY arithmetic that cannot overflow,
//! windows streamed within a small memory budget, the budget's error, timeouts (configured and per
//! request), a query's end on `closeOperation`, with its session and when its client hangs up
//! mid-request, replies cut by bytes so the Python client's frame limit holds, and `SELECT *` over
//! many series.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use duet_proto::client::{Client, ClientError, ClientOptions, Outcome};
use duet_proto::codec::{Protocol, MAX_REPLY_FRAME_BYTES};
use duet_proto::rpc;
use duet_proto::t;
use duet_proto::tsblock;
use duet_proto::types::DataType;
use duet_testkit::query::{render, rows};
use duet_testkit::{wait_for, Duetd, DuetdOptions};

mod common;
use common::fetch_v2;

/// A server started with `toml` as its configuration file (kept in its own temporary directory).
struct Configured {
    server: Duetd,
    _config: tempfile::TempDir,
}

fn start_configured(toml: &str, extra: &[&str]) -> Configured {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("duetd.toml");
    std::fs::write(&path, toml).unwrap();
    let mut args = vec!["--config".to_string(), path.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Duetd::start_with(DuetdOptions {
        args,
        ..DuetdOptions::default()
    })
    .unwrap();
    Configured {
        server,
        _config: dir,
    }
}

async fn connect(server: &Duetd, fetch_size: i32) -> Client {
    Client::connect(&ClientOptions {
        port: server.port(),
        fetch_size,
        ..ClientOptions::default()
    })
    .await
    .unwrap()
}

fn status_code(result: Result<Vec<Vec<String>>, ClientError>) -> (i32, String) {
    match result {
        Err(e) => (e.code().unwrap_or(-1), e.to_string()),
        Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
    }
}

/// `executeStatementV2` with the request's optional `timeout`, decoded as the client would.
async fn execute_with_timeout(
    client: &mut Client,
    sql: &str,
    fetch_size: i32,
    timeout_ms: Option<i64>,
) -> t::TSExecuteStatementResp {
    let req = t::TSExecuteStatementReq::new(
        client.session_id(),
        sql.to_string(),
        1,
        Some(fetch_size),
        timeout_ms,
        None,
        None,
    );
    client
        .connection()
        .call("executeStatementV2", 1, &req)
        .await
        .unwrap()
}

fn count_of(resp: &t::TSExecuteStatementResp) -> i64 {
    let blocks = resp.query_result.as_ref().unwrap();
    let block = tsblock::decode(&blocks[0], None).unwrap();
    block.columns[0].render(0).parse().unwrap()
}

/// Inserts `n` points of `device.s` (times 0..n, value = time) in statements of 1000 rows.
async fn load_points(client: &mut Client, device: &str, n: usize) {
    load_points_from(client, device, 0, n).await;
}

/// Inserts `n` points of `device.s` (times `from..from + n`, value = time) in statements of 1000
/// rows.
async fn load_points_from(client: &mut Client, device: &str, from: usize, n: usize) {
    for start in (from..from + n).step_by(1000) {
        let values: Vec<String> = (start..(start + 1000).min(from + n))
            .map(|t| format!("({t}, {t})"))
            .collect();
        client
            .execute_update(&format!(
                "insert into {device}(time, s) values {}",
                values.join(", ")
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn group_by_arithmetic_cannot_overflow_and_the_server_keeps_serving() {
    let server = Duetd::start().unwrap();
    let mut client = connect(&server, 5000).await;
    client
        .execute_update("insert into root.x.d(time, s) values (5, 1), (9999990, 2)")
        .await
        .unwrap();
    // The window count of the whole i64 range wrapped to 0 and passed the limit; now it is 2^64 - 1.
    let (code, message) = status_code(
        rows(
            &mut client,
            "select count(s) from root.x.d group by ([-9223372036854775808, 9223372036854775807), 1ms)",
        )
        .await,
    );
    assert_eq!(code, 701, "{message}");
    assert!(
        message.contains("18446744073709551615 windows"),
        "{message}"
    );
    for sql in [
        "select count(s) from root.x.d group by ((-9223372036854775808, 9223372036854775807], 1ms)",
        "select count(s) from root.x.d group by ([-9223372036854775808, 9223372036854775807), 1000d, 1ms)",
        "select count(s) from root.x.d group by ([0, 9223372036854775807), 2ms)",
        "select count(s) from root.x.d group by ([0, 10), 9223372036854775807d)",
    ] {
        let (code, message) = status_code(rows(&mut client, sql).await);
        assert_eq!(code, 701, "{sql}: {message}");
    }
    // Windows at both ends of the range are computed without wrapping.
    assert_eq!(
        rows(
            &mut client,
            "select count(s) from root.x.d group by ([9223372036854775800, 9223372036854775807), 3ms)"
        )
        .await
        .unwrap(),
        vec![
            vec!["9223372036854775800".to_string(), "0".into()],
            vec!["9223372036854775803".to_string(), "0".into()],
            vec!["9223372036854775806".to_string(), "0".into()],
        ]
    );
    assert_eq!(
        rows(
            &mut client,
            "select count(s) from root.x.d group by ([-9223372036854775808, -9223372036854775806), 1ms) order by time desc"
        )
        .await
        .unwrap(),
        vec![
            vec!["-9223372036854775807".to_string(), "0".into()],
            vec!["-9223372036854775808".to_string(), "0".into()],
        ]
    );
    // The server still serves this session and new ones.
    assert_eq!(
        rows(&mut client, "select count(s) from root.x.d")
            .await
            .unwrap(),
        vec![vec!["2".to_string()]]
    );
    let mut other = connect(&server, 5000).await;
    assert_eq!(
        rows(
            &mut other,
            "select s from root.x.d where time > 9223372036854775807"
        )
        .await
        .unwrap(),
        Vec::<Vec<String>>::new()
    );
}

#[tokio::test]
async fn ten_million_windows_stream_within_a_one_mebibyte_budget() {
    // Materialised, these windows took 2.8 GB for two points; streamed, 1 MiB is plenty.
    let configured = start_configured("query_memory_bytes = 1048576\n", &[]);
    let mut client = connect(&configured.server, 5000).await;
    client
        .execute_update("insert into root.x.d(time, s) values (5, 1), (9999990, 2)")
        .await
        .unwrap();
    let Outcome::Rows(mut rs) = client
        .execute("select count(s) from root.x.d group by ([0, 10000000), 1ms)")
        .await
        .unwrap()
    else {
        panic!("expected rows")
    };
    // Three pages of 5000 windows, in order, each window one row.
    let mut seen = Vec::new();
    while seen.len() < 15_000 {
        let block = client.next_block(&mut rs).await.unwrap().unwrap();
        for r in 0..block.n_rows() {
            seen.push((block.times[r], block.columns[0].render(r)));
        }
    }
    client.close_result(&rs).await.unwrap();
    assert!(seen
        .iter()
        .enumerate()
        .all(|(i, (t, _))| *t == i64::try_from(i).unwrap()));
    assert_eq!(seen[5].1, "1");
    assert_eq!(seen.iter().filter(|(_, c)| c != "0").count(), 1);
    // OFFSET, LIMIT and ORDER BY TIME DESC reach the far windows by arithmetic.
    assert_eq!(
        rows(
            &mut client,
            "select count(s) from root.x.d group by ([0, 10000000), 1ms) limit 2 offset 9999989"
        )
        .await
        .unwrap(),
        vec![
            vec!["9999989".to_string(), "0".into()],
            vec!["9999990".to_string(), "1".into()]
        ]
    );
    assert_eq!(
        rows(
            &mut client,
            "select count(s) from root.x.d group by ([0, 10000000), 1ms) order by time desc limit 1"
        )
        .await
        .unwrap(),
        vec![vec!["9999999".to_string(), "0".into()]]
    );
}

#[tokio::test]
async fn a_query_over_its_memory_budget_fails_naming_the_setting() {
    let configured = start_configured("query_memory_bytes = 65536\n", &[]);
    let mut client = connect(&configured.server, 5000).await;
    let names: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
    let values = vec!["1"; 1000];
    client
        .execute_update(&format!(
            "insert into root.m.d(time, {}) values (1, {})",
            names.join(", "),
            values.join(", ")
        ))
        .await
        .unwrap();
    for sql in [
        "select count(*) from root.m.d",
        "select * from root.m.d",
        "select count(*) from root.m.d group by ([0, 10), 1ms)",
        "select last * from root.m.d",
        "select * from root.m.d align by device",
    ] {
        let (code, message) = status_code(rows(&mut client, sql).await);
        assert_eq!(code, 719, "{sql}: {message}");
        assert!(message.contains("query_memory_bytes = 65536"), "{message}");
    }
    // A query that fits the same budget runs, on the same session.
    assert_eq!(
        rows(&mut client, "select count(s7) from root.m.d")
            .await
            .unwrap(),
        vec![vec!["1".to_string()]]
    );
}

#[tokio::test]
async fn modes_counts_of_distinct_values_are_charged_to_the_budget() {
    let configured = start_configured("query_memory_bytes = 1048576\n", &[]);
    let mut client = connect(&configured.server, 5000).await;
    // 50,000 distinct values: their counts take more than 1 MiB.
    load_points(&mut client, "root.mode.d", 50_000).await;
    for sql in [
        "select mode(s) from root.mode.d",
        "select mode(s) from root.mode.d where s >= 0",
        "select mode(s) from root.mode.d group by ([0, 100000), 100000ms)",
    ] {
        let (code, message) = status_code(rows(&mut client, sql).await);
        assert_eq!(code, 719, "{sql}: {message}");
        assert!(
            message.contains("query_memory_bytes = 1048576"),
            "{message}"
        );
    }
    // Fewer distinct values fit: every value occurs once, so the earliest is the mode.
    assert_eq!(
        rows(
            &mut client,
            "select mode(s) from root.mode.d where time >= 40000 and time < 41000"
        )
        .await
        .unwrap(),
        vec![vec!["40000".to_string()]]
    );
}

#[tokio::test]
async fn a_query_past_its_timeout_gets_status_720_and_a_request_timeout_takes_precedence() {
    // 1 ms cannot scan 100,000 points: every query over them outlives it.
    let configured = start_configured("query_timeout_threshold = 1\n", &[]);
    let mut client = connect(&configured.server, 5000).await;
    load_points(&mut client, "root.t.d", 100_000).await;
    let (code, message) = status_code(rows(&mut client, "select count(s) from root.t.d").await);
    assert_eq!(code, 720, "{message}");
    assert!(message.contains("time out"), "{message}");
    assert!(message.contains("query_timeout_threshold"), "{message}");
    // The client's timeout (IoTDB's TSExecuteStatementReq.timeout) replaces the configured one...
    let resp = execute_with_timeout(
        &mut client,
        "select count(s) from root.t.d",
        5000,
        Some(600_000),
    )
    .await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    assert_eq!(count_of(&resp), 100_000);
    // ... and 0 means "the server's default".
    let resp = execute_with_timeout(
        &mut client,
        "select s from root.t.d where s < 0",
        5000,
        Some(0),
    )
    .await;
    assert_eq!(resp.status.code, 720, "{:?}", resp.status);
    // A short request timeout on a server without one.
    let plain = Duetd::start().unwrap();
    let mut client = connect(&plain, 5000).await;
    load_points(&mut client, "root.t.d", 100_000).await;
    let resp = execute_with_timeout(
        &mut client,
        "select count(s) from root.t.d where s < 0",
        5000,
        Some(1),
    )
    .await;
    assert_eq!(resp.status.code, 720, "{:?}", resp.status);
    assert_eq!(
        rows(&mut client, "select count(s) from root.t.d")
            .await
            .unwrap(),
        vec![vec!["100000".to_string()]]
    );
}

/// `text` without ANSI colour sequences (the log is written for a terminal).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the server logged `message` for query `query_id`.
fn logged(server: &Duetd, message: &str, query_id: i64) -> bool {
    let field = format!("query_id={query_id}");
    plain(&server.log())
        .lines()
        .any(|l| l.contains(message) && l.split_whitespace().any(|w| w == field))
}

#[tokio::test]
async fn a_query_ends_on_close_operation_and_with_its_session() {
    let configured = start_configured("", &["--log-level", "info,duet_server::session=debug"]);
    let server = &configured.server;
    let mut client = connect(server, 10).await;
    load_points(&mut client, "root.t.d", 100).await;
    let Outcome::Rows(rs) = client.execute("select s from root.t.d").await.unwrap() else {
        panic!("expected rows")
    };
    let first = rs.query_id;
    client.close_result(&rs).await.unwrap();
    wait_for(
        "the closed query in the log",
        Duration::from_secs(10),
        || logged(server, "query closed: closeOperation", first).then_some(()),
    )
    .unwrap();
    // A fetch of the closed query finds nothing.
    let req = t::TSFetchResultsReq::new(
        1,
        "select s from root.t.d".into(),
        10,
        first,
        true,
        None,
        None,
    );
    let resp = fetch_v2(&mut client, &req).await;
    assert_eq!((resp.status.code, resp.has_result_set), (200, false));
    // A query left open ends when its connection goes away.
    let Outcome::Rows(rs) = client.execute("select s from root.t.d").await.unwrap() else {
        panic!("expected rows")
    };
    let second = rs.query_id;
    assert!(!logged(server, "query closed", second));
    drop(client);
    wait_for(
        "the abandoned query in the log",
        Duration::from_secs(10),
        || logged(server, "query closed: the session ended", second).then_some(()),
    )
    .unwrap();
}

/// A client that hangs up while its query runs takes the query's work with it: the blocking thread
/// computing the first page stops at its next check and says so in the log, rather than computing
/// for minutes for nobody (before the listener watched for the hang-up, the request's future, and
/// with it the work, lived on until the page was done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_query_stops_its_work_on_the_server() {
    const STOPPED: &str = "a cancelled query's work stopped";
    let configured = start_configured("", &["--log-level", "info,duet_server::session=debug"]);
    let server = &configured.server;
    let mut client = connect(server, 5000).await;
    // 50,000 points at 1,000,000..1,050,000 ms.
    load_points_from(&mut client, "root.t.d", 1_000_000, 50_000).await;
    // Windows 10,000,000 ms wide starting every millisecond: each point lies in every one of the
    // first reply's windows (about 500,000 fit its bytes; each page of 1000 scans all points), so
    // the first reply alone is some 2.5 × 10^10 accumulator updates: minutes, even optimised.
    let sql = "select count(s) from root.t.d group by ([0, 10000000), 10000000ms, 1ms)";
    let mut hanging = connect(server, 1_000_000).await;
    // The request's own timeout (an hour) keeps the deadline from ending the work instead.
    let request = tokio::spawn(async move {
        execute_with_timeout(&mut hanging, sql, 1_000_000, Some(3_600_000)).await
    });
    wait_for("the query to start", Duration::from_secs(30), || {
        plain(&server.log())
            .lines()
            .any(|l| l.contains("executing") && l.to_lowercase().contains("group by"))
            .then_some(())
    })
    .unwrap();
    assert!(!request.is_finished(), "the query cannot be done already");
    assert!(!plain(&server.log()).contains(STOPPED));
    // Hang up: dropping the task drops the client and closes its socket mid-request.
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    let stopped = wait_for(
        "the server to stop the abandoned query's work",
        Duration::from_secs(60),
        || {
            plain(&server.log())
                .lines()
                .find(|l| l.contains(STOPPED))
                .map(str::to_string)
        },
    )
    .unwrap();
    eprintln!("{stopped}");
    // The server goes on serving.
    assert_eq!(
        rows(&mut client, "select count(s) from root.t.d")
            .await
            .unwrap(),
        vec![vec!["50000".to_string()]]
    );
}

/// Sends `name(req)` and returns the reply frame's payload.
async fn raw_call<T: thrift::protocol::TSerializable>(
    client: &mut Client,
    name: &str,
    req: &T,
) -> Vec<u8> {
    let payload = rpc::encode_struct_call(Protocol::Binary, name, 1, req).unwrap();
    client.connection().round_trip(&payload).await.unwrap()
}

#[tokio::test]
async fn twenty_one_megabyte_text_rows_come_in_replies_below_the_client_frame_limit() {
    let server = Duetd::start().unwrap();
    let mut client = connect(&server, 5000).await;
    const MB: usize = 1 << 20;
    for i in 0..20u8 {
        let text = String::from(char::from(b'a' + i)).repeat(MB);
        client
            .execute_update(&format!(
                "insert into root.big.d(time, v) values ({i}, '{text}')"
            ))
            .await
            .unwrap();
    }
    let req = t::TSExecuteStatementReq::new(
        client.session_id(),
        "select v from root.big.d".into(),
        1,
        Some(5000),
        None,
        None,
        None,
    );
    let reply = raw_call(&mut client, "executeStatementV2", &req).await;
    let mut frames = vec![reply.len()];
    let resp: t::TSExecuteStatementResp = rpc::decode_struct_reply(&reply).unwrap();
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    let query_id = resp.query_id.unwrap();
    let mut blocks = resp.query_result.unwrap_or_default();
    let mut more = resp.more_data.unwrap_or(false);
    while more {
        let req = t::TSFetchResultsReq::new(1, "select v".into(), 5000, query_id, true, None, None);
        let reply = raw_call(&mut client, "fetchResultsV2", &req).await;
        frames.push(reply.len());
        let resp: t::TSFetchResultsResp = rpc::decode_struct_reply(&reply).unwrap();
        assert_eq!(resp.status.code, 200, "{:?}", resp.status);
        blocks.extend(resp.query_result.unwrap_or_default());
        more = resp.more_data.unwrap_or(false);
    }
    assert!(
        frames.iter().all(|n| *n < MAX_REPLY_FRAME_BYTES),
        "reply frames {frames:?} must stay below {MAX_REPLY_FRAME_BYTES}"
    );
    assert!(frames.len() >= 2, "{frames:?}");
    let mut values = Vec::new();
    for b in &blocks {
        let block = tsblock::decode(b, Some(&[DataType::Text])).unwrap();
        for r in 0..block.n_rows() {
            values.push((block.times[r], block.columns[0].render(r)));
        }
    }
    assert_eq!(values.len(), 20);
    for (i, (t, v)) in values.iter().enumerate() {
        assert_eq!(*t, i64::try_from(i).unwrap());
        let expected = char::from(b'a' + u8::try_from(i).unwrap());
        assert!(v.len() == MB && v.chars().all(|c| c == expected), "row {i}");
    }

    // One row larger than any reply is a clear error, and the session goes on.
    let huge = "z".repeat(MAX_REPLY_FRAME_BYTES + 1000);
    client
        .execute_update(&format!(
            "insert into root.huge.d(time, v) values (1, '{huge}')"
        ))
        .await
        .unwrap();
    let (code, message) = status_code(rows(&mut client, "select v from root.huge.d").await);
    assert_eq!(code, 708, "{message}");
    assert!(message.contains("frame limit"), "{message}");
    assert_eq!(
        rows(&mut client, "select count(v) from root.big.d")
            .await
            .unwrap(),
        vec![vec!["20".to_string()]]
    );
}

/// Creates `devices` × `per_device` series (`root.b.d<i>.s<j>`, one point each at time 1).
async fn create_series(client: &mut Client, devices: usize, per_device: usize) {
    let names: Vec<String> = (0..per_device).map(|j| format!("s{j}")).collect();
    let values = vec!["1"; per_device].join(", ");
    for i in 0..devices {
        client
            .execute_update(&format!(
                "insert into root.b.d{i}(time, {}) values (1, {values})",
                names.join(", ")
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn select_star_over_twenty_thousand_series_resolves_every_series_in_path_order() {
    let server = Duetd::start().unwrap();
    let mut client = connect(&server, 5000).await;
    create_series(&mut client, 200, 100).await;
    let mut expected: Vec<String> = (0..200)
        .flat_map(|i| (0..100).map(move |j| format!("root.b.d{i}.s{j}")))
        .collect();
    expected.sort();
    let Outcome::Rows(rs) = client.execute("select * from root.b.*").await.unwrap() else {
        panic!("expected rows")
    };
    assert_eq!(rs.columns, expected);
    let (rs, blocks) = client.collect(rs).await.unwrap();
    let all = render(&rs, &blocks);
    assert_eq!(all.len(), 1);
    assert!(all[0][1..].iter().all(|v| v == "1"));
    assert_eq!(all[0].len(), 20_001);
    // The same series through `**`, aggregated, by device, and as SELECT LAST.
    let counts = rows(&mut client, "select count(*) from root.**")
        .await
        .unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].len(), 20_000);
    assert!(counts[0].iter().all(|v| v == "1"));
    let by_device = rows(&mut client, "select * from root.b.* align by device")
        .await
        .unwrap();
    assert_eq!(by_device.len(), 200);
    assert!(by_device.iter().all(|r| r.len() == 102));
    let last = rows(&mut client, "select last * from root.b.*")
        .await
        .unwrap();
    let last_paths: Vec<&str> = last.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        last_paths,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // One series among them, and a WHERE over a named series.
    assert_eq!(
        rows(&mut client, "select s42 from root.b.d199 where s42 = 1")
            .await
            .unwrap(),
        vec![vec!["1".to_string(), "1".into()]]
    );
}

/// `SELECT *` over `DUET_BENCH_SERIES` series (default 100,000; 1000 devices): prints how long
/// creating them and the queries take. Run with `cargo test -p duet-server --test queries -- --ignored
/// --nocapture`; no assertion on time.
#[tokio::test]
#[ignore]
async fn bench_select_star_over_many_series() {
    let n: usize = std::env::var("DUET_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let devices = (n / 100).max(1);
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&ClientOptions {
        port: server.port(),
        call_timeout: Duration::from_secs(3600),
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    create_series(&mut client, devices, 100).await;
    println!(
        "created {} series in {:?}",
        devices * 100,
        started.elapsed()
    );
    for sql in [
        "select * from root.b.*",
        "select count(*) from root.b.*",
        "select last * from root.b.*",
        "select * from root.b.* align by device",
    ] {
        let started = Instant::now();
        let all = rows(&mut client, sql).await.unwrap();
        println!(
            "{sql}: {} rows × {} columns in {:?}",
            all.len(),
            all.first().map_or(0, Vec::len),
            started.elapsed()
        );
    }
}
