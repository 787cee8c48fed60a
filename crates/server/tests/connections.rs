//! Connection slots cannot be held by sockets that never log in: a connection over `max_connections` (or
//! over `max_unauthenticated_connections`) is answered with status 717 at once, a connection must log in
//! within `login_timeout_ms`, a frame that stalls is closed after `frame_timeout_ms`, while a logged-in
//! session may stay idle (unless `session_timeout_ms` is set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use duet_proto::client::{Client, ClientError, ClientOptions, Outcome};
use duet_proto::codec::{self, Protocol};
use duet_proto::pipe_body::{self, handshake_key, request_type, REQUEST_VERSION};
use duet_proto::{rpc, t};
use duet_testkit::{wait_for, Duetd};
use thrift::protocol::TSerializable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{raw_socket, start_with_config};

/// IoTDB's TOO_MANY_CONCURRENT_QUERIES_ERROR, which a refused connection's first call is answered with.
const REFUSED: i32 = 717;

fn options(server: &Duetd) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        // Long enough to tell "answered" from "hung" without the test itself hanging.
        call_timeout: Duration::from_secs(20),
        ..ClientOptions::default()
    }
}

/// Sends an encoded call on a raw socket and reads its reply, which must decode as `Resp`.
async fn round_trip<Resp: TSerializable>(socket: &mut TcpStream, call: &[u8]) -> Resp {
    codec::write_frame(socket, call).await.unwrap();
    let reply = codec::read_frame(socket, 1 << 20).await.unwrap().unwrap();
    rpc::decode_struct_reply(&reply).unwrap()
}

/// A raw connection that has opened a session, so the test controls every byte sent after login.
async fn logged_in_socket(server: &Duetd) -> TcpStream {
    let mut socket = raw_socket(server).await;
    let open = t::TSOpenSessionReq::new(
        t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
        "UTC".into(),
        "root".into(),
        Some("root".into()),
        None,
    );
    let call = rpc::encode_struct_call(Protocol::Binary, "openSession", 1, &open).unwrap();
    let resp: t::TSOpenSessionResp = round_trip(&mut socket, &call).await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    socket
}

/// Waits until the server closes `socket`, failing after `limit`; returns how long it took.
async fn closed_by_server(socket: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    match tokio::time::timeout(limit, socket.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("expected the server to close the connection, got {n} bytes"),
        Err(_) => panic!("the server did not close the connection within {limit:?}"),
    }
}

async fn show_version_works(client: &mut Client) {
    match client.execute("show version").await.unwrap() {
        Outcome::Rows(rs) => {
            let (_, blocks) = client.collect(rs).await.unwrap();
            assert_eq!(blocks.iter().map(|b| b.n_rows()).sum::<usize>(), 1);
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

/// Connects a client expecting a prompt refusal; returns the error.
async fn refused_login(server: &Duetd) -> ClientError {
    let started = Instant::now();
    let Err(e) = Client::connect(&options(server)).await else {
        panic!("the login was accepted, expected a refusal")
    };
    let took = started.elapsed();
    assert_eq!(e.code(), Some(REFUSED), "{e}");
    assert!(took < Duration::from_secs(3), "refusal took {took:?}");
    e
}

fn wait_for_log(server: &Duetd, needle: &str) {
    wait_for(
        &format!("'{needle}' in the log"),
        Duration::from_secs(10),
        || server.log().contains(needle).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
}

#[tokio::test]
async fn over_max_connections_a_login_is_refused_at_once_and_idle_sockets_expire() {
    let login_timeout = Duration::from_millis(4000);
    let (server, _config) = start_with_config(&format!(
        "max_connections = 3\nlogin_timeout_ms = {}\n",
        login_timeout.as_millis()
    ));
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(raw_socket(&server).await);
    }
    // Every slot is held by a socket that never logs in: a real client is told so at once.
    let e = refused_login(&server).await;
    assert!(
        e.to_string()
            .contains("too many connections: max_connections = 3"),
        "{e}"
    );
    wait_for_log(&server, "too many connections: max_connections = 3");

    // At the login deadline the idle sockets are closed, and the slots are free again.
    for socket in &mut idle {
        closed_by_server(socket, login_timeout + Duration::from_secs(15)).await;
    }
    let waited = opened.elapsed();
    assert!(
        waited >= login_timeout - Duration::from_millis(500),
        "closed after {waited:?}, before the login deadline"
    );
    wait_for_log(&server, "did not log in within");
    let mut client = Client::connect(&options(&server)).await.unwrap();
    show_version_works(&mut client).await;
}

#[tokio::test]
async fn connections_waiting_to_log_in_cannot_take_every_slot() {
    let (server, _config) = start_with_config(
        "max_connections = 4\nmax_unauthenticated_connections = 2\nlogin_timeout_ms = 60000\n",
    );
    let mut logged_in = Client::connect(&options(&server)).await.unwrap();
    let mut idle = vec![raw_socket(&server).await, raw_socket(&server).await];
    // Two of four slots are free, but both login slots are taken.
    let e = refused_login(&server).await;
    assert!(
        e.to_string()
            .contains("max_unauthenticated_connections = 2"),
        "{e}"
    );
    // A third socket that never logs in is closed quickly, not kept until the login deadline.
    let mut third = raw_socket(&server).await;
    let took = closed_by_server(&mut third, Duration::from_secs(15)).await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The logged-in session is untouched, and once an idle socket goes, a client logs in.
    show_version_works(&mut logged_in).await;
    drop(idle.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match Client::connect(&options(&server)).await {
            Ok(client) => break client,
            Err(e) if e.code() == Some(REFUSED) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("login after an idle socket closed: {e}"),
        }
    };
    show_version_works(&mut client).await;
}

#[tokio::test]
async fn a_frame_that_stalls_midway_is_closed_after_the_frame_timeout() {
    let frame_timeout = Duration::from_millis(1000);
    let (server, _config) = start_with_config(&format!(
        "frame_timeout_ms = {}\nlogin_timeout_ms = 120000\n",
        frame_timeout.as_millis()
    ));
    let mut healthy = Client::connect(&options(&server)).await.unwrap();
    // A logged-in session sends a header promising 100 bytes, then 10 of them; another sends half of
    // a frame header; a connection not logged in stalls too, and the frame timeout ends it long before
    // its login deadline.
    let mut half_payload = logged_in_socket(&server).await;
    let mut half_header = logged_in_socket(&server).await;
    let mut before_login = raw_socket(&server).await;
    let partial_frames: [(&mut TcpStream, &[u8]); 3] = [
        (
            &mut half_payload,
            &[0, 0, 0, 100, 0x80, 1, 0, 1, 0, 0, 0, 4, b'e', b'x'],
        ),
        (&mut half_header, &[0, 0]),
        (&mut before_login, &[0, 0, 1]),
    ];
    for (socket, bytes) in partial_frames {
        let sent = Instant::now();
        socket.write_all(bytes).await.unwrap();
        closed_by_server(socket, Duration::from_secs(30)).await;
        let took = sent.elapsed();
        assert!(
            took >= frame_timeout - Duration::from_millis(200),
            "closed after {took:?}, before the frame timeout"
        );
    }
    wait_for_log(&server, "a request frame stalled");
    show_version_works(&mut healthy).await;
}

#[tokio::test]
async fn logged_in_sessions_and_pipe_senders_may_stay_idle_past_the_login_deadline() {
    let (server, _config) = start_with_config("login_timeout_ms = 500\nframe_timeout_ms = 500\n");
    let mut client = Client::connect(&options(&server)).await.unwrap();
    // A pipe sender that passed its handshake counts as logged in too.
    let mut pipe = raw_socket(&server).await;
    let params = BTreeMap::from([
        (
            handshake_key::CLUSTER_ID.to_string(),
            "another-cluster".to_string(),
        ),
        (
            handshake_key::TIMESTAMP_PRECISION.to_string(),
            "ms".to_string(),
        ),
        (handshake_key::USERNAME.to_string(), "root".to_string()),
        (handshake_key::PASSWORD.to_string(), "root".to_string()),
    ]);
    let handshake = t::TPipeTransferReq::new(
        REQUEST_VERSION,
        request_type::HANDSHAKE_DATANODE_V2,
        pipe_body::encode_map(&params),
    );
    let call = rpc::encode_struct_call(Protocol::Binary, "pipeTransfer", -1, &handshake).unwrap();
    let resp: t::TPipeTransferResp = round_trip(&mut pipe, &call).await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    // A socket opened after both is closed at its login deadline; the two older ones are then past
    // theirs.
    let mut idle = raw_socket(&server).await;
    closed_by_server(&mut idle, Duration::from_secs(15)).await;
    show_version_works(&mut client).await;
    // The pipe connection still answers: a handshake again succeeds on it.
    let resp: t::TPipeTransferResp = round_trip(&mut pipe, &call).await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
}

#[tokio::test]
async fn an_idle_session_is_closed_after_session_timeout_when_one_is_set() {
    let session_timeout = Duration::from_millis(600);
    let (server, _config) = start_with_config(&format!(
        "session_timeout_ms = {}\n",
        session_timeout.as_millis()
    ));
    // One session stays idle, another keeps working past the timeout.
    let mut idle = logged_in_socket(&server).await;
    let idle_closed =
        tokio::spawn(async move { closed_by_server(&mut idle, Duration::from_secs(15)).await });
    let mut busy = Client::connect(&options(&server)).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < session_timeout * 3 {
        show_version_works(&mut busy).await;
        // Pacing between requests, well inside the timeout; not a wait for a condition.
        tokio::time::sleep(session_timeout / 4).await;
    }
    let took = idle_closed.await.unwrap();
    assert!(
        took >= session_timeout - Duration::from_millis(200),
        "closed after {took:?}"
    );
    wait_for_log(&server, "session idle for");
    show_version_works(&mut busy).await;
}

/// The test harness gives servers ports below the kernel's ephemeral range (never handed to an
/// outgoing connection or another server's port 0) and holds a stopped server's port until its
/// restart, so a peer's pipe cannot deliver to another test's server that took the port, and the
/// restart finds its port free. While down, the port refuses connections as a stopped server's would.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_servers_port_is_held_until_its_restart() {
    let mut server = Duetd::start().unwrap();
    let port = server.port();
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        port < ephemeral_low,
        "port {port} is in the ephemeral range"
    );
    server.stop().unwrap();
    let bound = std::net::TcpListener::bind(("127.0.0.1", port));
    assert!(
        bound.is_err(),
        "port {port} was free while the server was down"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    let mut client = Client::connect(&options(&server)).await.unwrap();
    show_version_works(&mut client).await;
    // After a kill the connections' TIME_WAIT may keep the hold from binding; the port is still
    // outside the ephemeral range, and the restart gets it back.
    server.kill().unwrap();
    server.restart().unwrap();
    assert_eq!(server.port(), port);
}
