//! Wire-level behaviour of `duetd` that SQL cannot reach: unknown RPCs, malformed frames, the session id
//! swap of the Python client, paging, compact protocol, start-up refusals and graceful shutdown (an
//! idle session ended, a running request finished and kept).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientOptions, Outcome};
use duet_proto::codec::Protocol;
use duet_proto::rpc;
use duet_proto::t;
use duet_testkit::proxy::{FaultProxy, LinkState};
use duet_testkit::query::rows;
use duet_testkit::{wait_for, Duetd, DuetdOptions};
use tokio::io::AsyncWriteExt;

mod common;
use common::{assert_hung_up, assert_not_logged_in, fetch_v2, raw_socket};

fn options(server: &Duetd) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        ..ClientOptions::default()
    }
}

async fn show_version_works(client: &mut Client) {
    match client.execute("show version").await.unwrap() {
        Outcome::Rows(rs) => {
            let (rs, blocks) = client.collect(rs).await.unwrap();
            assert_eq!(rs.columns, vec!["Version", "BuildInfo"]);
            assert_eq!(blocks.iter().map(|b| b.n_rows()).sum::<usize>(), 1);
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_rpc_gets_an_application_exception_and_the_connection_survives() {
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&options(&server)).await.unwrap();
    let payload = rpc::encode_i64_call(Protocol::Binary, "fetchMetadataV9", 1).unwrap();
    let reply = client.connection().round_trip(&payload).await.unwrap();
    match rpc::decode_struct_reply::<t::TSStatus>(&reply) {
        Err(rpc::ReplyError::Application(message)) => {
            assert!(message.contains("fetchMetadataV9"), "{message}")
        }
        other => panic!("expected an application exception, got {other:?}"),
    }
    // Arguments that cannot be decoded are answered the same way.
    let payload = rpc::encode_i64_call(Protocol::Binary, "executeStatementV2", 1).unwrap();
    let reply = client.connection().round_trip(&payload).await.unwrap();
    assert!(matches!(
        rpc::decode_struct_reply::<t::TSStatus>(&reply),
        Err(rpc::ReplyError::Application(_))
    ));
    show_version_works(&mut client).await;
}

#[tokio::test]
async fn a_malformed_frame_closes_only_that_connection() {
    let server = Duetd::start().unwrap();
    let mut healthy = Client::connect(&options(&server)).await.unwrap();
    for garbage in [
        &b"\x00\x00\x00\x04\x12\x34\x56\x78"[..],
        &b"\xff\xff\xff\xff"[..],
        &b"\x7f\xff\xff\xff"[..],
    ] {
        let mut bad = raw_socket(&server).await;
        bad.write_all(garbage).await.unwrap();
        // The server hangs up on the bad connection.
        assert_hung_up(&mut bad).await;
    }
    show_version_works(&mut healthy).await;
    let mut fresh = Client::connect(&options(&server)).await.unwrap();
    show_version_works(&mut fresh).await;
}

#[tokio::test]
async fn calls_before_login_are_refused_with_802() {
    let server = Duetd::start().unwrap();
    let mut connection = server
        .connection(Protocol::Binary, Duration::from_secs(5))
        .await
        .unwrap();
    assert_not_logged_in(&mut connection).await;
}

#[tokio::test]
async fn results_are_found_by_query_id_whatever_ids_the_client_sends() {
    let server = Duetd::start().unwrap();
    let mut admin = Client::connect(&options(&server)).await.unwrap();
    for i in 0..25 {
        admin
            .execute_update(&format!("create user user{i:02} 'password{i}'"))
            .await
            .unwrap();
    }
    // fetch_size 2 forces 13 pages; the Python client swaps session and statement ids in fetch calls,
    // which the server must ignore (reference §5.4).
    let mut client = Client::connect(&ClientOptions {
        fetch_size: 2,
        ..options(&server)
    })
    .await
    .unwrap();
    let Outcome::Rows(rs) = client.execute("list user").await.unwrap() else {
        panic!()
    };
    let query_id = rs.query_id;
    let req = t::TSFetchResultsReq::new(
        999_999,
        "list user".into(),
        2,
        query_id,
        true,
        None,
        Some(-5),
    );
    let resp = fetch_v2(&mut client, &req).await;
    assert_eq!(resp.status.code, 200);
    assert!(resp.has_result_set);
    let (_, blocks) = client.collect(rs).await.unwrap();
    let names: Vec<String> = blocks
        .iter()
        .flat_map(|b| {
            (0..b.n_rows())
                .map(|r| b.columns[0].render(r))
                .collect::<Vec<_>>()
        })
        .collect();
    // 26 users minus the two rows (user01, user02) that the fetch with the foreign ids consumed.
    assert_eq!(names.len(), 24);
    assert_eq!(&names[..3], ["root", "user00", "user03"]);
    assert_eq!(names.last().map(String::as_str), Some("user24"));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // A finished or unknown query answers 200 with no result set.
    let req = t::TSFetchResultsReq::new(1, "list user".into(), 2, query_id, true, None, None);
    let resp = fetch_v2(&mut client, &req).await;
    assert_eq!((resp.status.code, resp.has_result_set), (200, false));
}

#[tokio::test]
async fn compact_protocol_sessions_work() {
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&ClientOptions {
        protocol: Protocol::Compact,
        ..options(&server)
    })
    .await
    .unwrap();
    show_version_works(&mut client).await;
    let props = client.properties().await.unwrap();
    assert_eq!(props.timestamp_precision, "ms");
    assert!(props.build_info.is_some());
    client.close().await.unwrap();
}

#[test]
fn a_changed_immutable_setting_refuses_to_start_and_names_it() {
    let mut server = Duetd::start().unwrap();
    let dir = server.data_dir().to_path_buf();
    server.stop().unwrap();
    let err = Duetd::start_in(
        &dir,
        DuetdOptions {
            args: vec!["--timestamp-precision".into(), "us".into()],
            ..DuetdOptions::default()
        },
    )
    .err()
    .expect("start must fail");
    assert!(
        format!("{err:#}").contains("timestamp_precision"),
        "{err:#}"
    );
    let err = Duetd::start_in(
        &dir,
        DuetdOptions {
            args: vec!["--cluster-id".into(), "other".into()],
            ..DuetdOptions::default()
        },
    )
    .err()
    .expect("start must fail");
    assert!(format!("{err:#}").contains("cluster_id"), "{err:#}");
    // Unchanged settings start fine.
    let mut again = Duetd::start_in(&dir, DuetdOptions::default()).unwrap();
    again.stop().unwrap();
}

#[tokio::test]
async fn sigterm_with_an_idle_open_session_exits_cleanly_and_ends_the_session() {
    let mut server = Duetd::start().unwrap();
    let mut client = Client::connect(&options(&server)).await.unwrap();
    show_version_works(&mut client).await;
    // stop() sends SIGTERM and asserts a zero exit status.
    server.stop().unwrap();
    assert!(!server.data_dir().join("duetd.addr").exists());
    assert!(client.execute("show version").await.is_err());
}

/// A request still running when SIGTERM arrives is finished and answered before duetd exits, and
/// what it acknowledged is there after the restart. The request is a `CREATE PIPE`, which handshakes
/// with its peer before it answers: the peer sits behind a proxy that holds the handshake, so the
/// request is provably in flight (the proxy has its connection) when the signal is sent, and goes on
/// only once the server has begun shutting down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_running_request_and_keeps_what_it_acknowledged() {
    let peer = Duetd::start().unwrap();
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", peer.port()).parse().unwrap()).unwrap();
    proxy.set(LinkState::Blackhole);
    let mut server = Duetd::start().unwrap();
    let mut client = Client::connect(&options(&server)).await.unwrap();
    let create = format!(
        "create pipe held with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
        proxy.port()
    );
    let running = tokio::spawn(async move {
        let outcome = client.execute(&create).await;
        (client, outcome)
    });
    // The handshake's connection reached the proxy: the request is running, waiting for its peer.
    wait_for(
        "the handshake to reach the proxy",
        Duration::from_secs(30),
        || (proxy.stats().accepted > 0).then_some(()),
    )
    .unwrap();
    server.send_signal("TERM").unwrap();
    wait_for(
        "duetd to begin its shutdown",
        Duration::from_secs(30),
        || {
            server
                .log()
                .contains("shutting down: waiting for connections to finish")
                .then_some(())
        },
    )
    .unwrap();
    assert!(
        !running.is_finished(),
        "the request ended before its peer answered"
    );
    assert!(server.is_running());
    proxy.heal();
    let (mut client, outcome) = running.await.unwrap();
    assert!(
        matches!(outcome, Ok(Outcome::Done(ref status)) if status.code == 200),
        "{outcome:?}"
    );
    // The connection is closed once the answer is out, and the server exits cleanly (stop()
    // asserts a zero exit status).
    assert!(client.execute("show version").await.is_err());
    server.stop().unwrap();
    server.restart().unwrap();
    let mut client = Client::connect(&options(&server)).await.unwrap();
    let pipes = rows(&mut client, "show pipes").await.unwrap();
    assert!(
        pipes
            .iter()
            .any(|row| row.iter().any(|cell| cell == "held")),
        "{pipes:?}"
    );
    server.stop().unwrap();
}

#[tokio::test]
async fn an_initial_root_password_is_root_s_password_from_the_first_start_on() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "initial_root_password = 'IoTDB@2011'\n").unwrap();
    let mut server = Duetd::start_with(DuetdOptions {
        args: vec!["--config".into(), config.path().display().to_string()],
        ..DuetdOptions::default()
    })
    .unwrap();
    let with_password = |server: &Duetd, password: &str| ClientOptions {
        password: password.to_string(),
        ..options(server)
    };
    assert!(Client::connect(&with_password(&server, "root"))
        .await
        .is_err());
    let mut client = Client::connect(&with_password(&server, "IoTDB@2011"))
        .await
        .unwrap();
    show_version_works(&mut client).await;
    client.close().await.unwrap();
    // Once the instance exists the setting no longer applies: root keeps the password it has.
    let dir = server.data_dir().to_path_buf();
    server.stop().unwrap();
    let mut again = Duetd::start_in(
        &dir,
        DuetdOptions {
            args: vec!["--initial-root-password".into(), "another".into()],
            ..DuetdOptions::default()
        },
    )
    .unwrap();
    assert!(Client::connect(&with_password(&again, "another"))
        .await
        .is_err());
    Client::connect(&with_password(&again, "IoTDB@2011"))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    again.stop().unwrap();
    // A password the rules refuse stops the first start with a clear error.
    let err = Duetd::start_with(DuetdOptions {
        args: vec!["--initial-root-password".into(), "ab".into()],
        ..DuetdOptions::default()
    })
    .err()
    .expect("start must fail");
    assert!(format!("{err:#}").contains("password"), "{err:#}");
}
