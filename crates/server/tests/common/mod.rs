//! Helpers shared by the server's integration tests that speak to Duet as IoTDB's clients and
//! senders do: servers with a config file, query rows and series listings, status checks, logins,
//! raw sockets, pipe statements and transfers, and IoTDB's stored password form. Each test binary
//! uses some of them (hence `dead_code` allowed).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientOptions, Connection};
use duet_proto::codec;
use duet_proto::t;
use duet_testkit::pipe_sender;
use duet_testkit::query::rows;
use duet_testkit::{Duetd, DuetdOptions};
use tokio::net::TcpStream;

/// Every row of `sql`'s result, rendered; the statement must succeed.
pub async fn query(client: &mut Client, sql: &str) -> Vec<Vec<String>> {
    rows(client, sql).await.unwrap()
}

/// `LIST PRIVILEGES OF USER|ROLE` as `role|path|privilege|grant option` lines, sorted.
pub async fn privileges_of(client: &mut Client, of: &str) -> Vec<String> {
    let mut lines: Vec<String> = query(client, &format!("list privileges of {of}"))
        .await
        .into_iter()
        .map(|r| r.join("|"))
        .collect();
    lines.sort();
    lines
}

/// Whether `user` can log in with `password` through a real client session.
pub async fn logs_in(server: &Duetd, user: &str, password: &str) -> bool {
    Client::connect(&ClientOptions {
        user: user.into(),
        password: password.into(),
        ..server.client_options()
    })
    .await
    .is_ok()
}

/// One pipe transfer request that must be answered (whatever its status).
pub async fn transfer(conn: &mut Connection, type_: i16, body: Vec<u8>) -> t::TPipeTransferResp {
    pipe_sender::transfer(conn, type_, body).await.unwrap()
}

/// IoTDB's stored form of a password (`new String(md5(utf8), "utf-8")`), from the hex of its UTF-8
/// bytes as OpenJDK 17 computes it.
pub fn iotdb_hash(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// IoTDB's stored form of "bob_pw22" (OpenJDK 17).
pub const BOB_PW22_IOTDB_HEX: &str = "efbfbd20efbfbd31efbfbd79efbfbd551aefbfbd18efbfbd0aefbfbd1d";

/// Asserts how many series `pattern` matches (`COUNT TIMESERIES`).
pub async fn assert_series_count(client: &mut Client, pattern: &str, expected: usize) {
    assert_eq!(
        query(client, &format!("count timeseries {pattern}")).await,
        [[expected.to_string()]],
        "count timeseries {pattern}"
    );
}

/// `CREATE PIPE name` with the source options `source` (`'key'='value', ...`) and a plain Thrift
/// sink into `peer`.
pub fn create_pipe_to(name: &str, source: &str, peer: &Duetd) -> String {
    format!(
        "create pipe {name} with source ({source}) with sink ('sink'='iotdb-thrift-sink', \
         'sink.ip'='127.0.0.1', 'sink.port'='{}')",
        peer.port()
    )
}

/// (path, type, encoding, compression) of every series under `pattern`.
pub async fn timeseries(client: &mut Client, pattern: &str) -> Vec<[String; 4]> {
    query(client, &format!("show timeseries {pattern}"))
        .await
        .into_iter()
        .map(|r| [r[0].clone(), r[3].clone(), r[4].clone(), r[5].clone()])
        .collect()
}

/// The path of every series under `pattern`.
pub async fn series_names(client: &mut Client, pattern: &str) -> Vec<String> {
    timeseries(client, pattern)
        .await
        .into_iter()
        .map(|[path, ..]| path)
        .collect()
}

/// Asserts a status's code and that its message names `part`.
pub fn assert_status(status: &t::TSStatus, code: i32, part: &str) {
    assert_eq!(status.code, code, "{status:?}");
    let message = status.message.as_deref().unwrap_or_default();
    assert!(message.contains(part), "{part:?} is not in {message:?}");
}

/// A server started with `config` as its configuration file, and the directory that holds the file.
pub fn start_with_config(config: &str) -> (Duetd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("duet.toml");
    std::fs::write(&path, config).unwrap();
    let server = Duetd::start_with(DuetdOptions {
        args: vec!["--config".into(), path.display().to_string()],
        ..DuetdOptions::default()
    })
    .unwrap();
    (server, dir)
}

/// A plain TCP connection to the server's client port, with nothing sent on it.
pub async fn raw_socket(server: &Duetd) -> TcpStream {
    TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap()
}

/// Asserts that the server hangs up on `socket` (or fails it) within 10 s rather than answering.
pub async fn assert_hung_up(socket: &mut TcpStream) {
    let closed = tokio::time::timeout(Duration::from_secs(10), codec::read_frame(socket, 1 << 20))
        .await
        .expect("the server neither closed the connection nor answered");
    assert!(
        matches!(closed, Ok(None) | Err(_)),
        "the connection was answered: {closed:?}"
    );
}

/// One `fetchResultsV2` call that must be answered.
pub async fn fetch_v2(client: &mut Client, req: &t::TSFetchResultsReq) -> t::TSFetchResultsResp {
    client
        .connection()
        .call("fetchResultsV2", 1, req)
        .await
        .unwrap()
}

/// Asserts that `connection`, which has not logged in, is refused a statement with 802.
pub async fn assert_not_logged_in(connection: &mut Connection) {
    let req = t::TSExecuteStatementReq::new(1, "show version".into(), 1, None, None, None, None);
    let resp: t::TSExecuteStatementResp = connection
        .call("executeStatementV2", 1, &req)
        .await
        .unwrap();
    assert_eq!(resp.status.code, 802, "{:?}", resp.status);
}
