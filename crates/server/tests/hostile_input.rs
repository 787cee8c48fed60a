//! Hostile bytes against a real `duetd`, before any login: frames whose Thrift lengths claim more than
//! the frame holds, negative lengths in both protocols, deep nesting, and frame headers that announce
//! far more than is sent. Before the decoders checked lengths, the first frame here aborted the whole
//! process (a ~51 GB reservation) and a negative length panicked the connection's task.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientOptions, Outcome};
use duet_proto::codec::{encode_message, Protocol};
use duet_proto::rpc::{self, ReplyError};
use duet_proto::t;
use duet_testkit::Duetd;
use thrift::protocol::{
    TFieldIdentifier, TListIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};
use tokio::io::AsyncWriteExt;

mod common;
use common::{assert_hung_up, assert_not_logged_in, raw_socket};

/// `method(1: struct { …fields written by `body`… })`, left open where `body` stops writing.
fn call(
    protocol: Protocol,
    method: &str,
    body: impl FnOnce(&mut dyn TOutputProtocol) -> thrift::Result<()>,
) -> Vec<u8> {
    encode_message(protocol, method, TMessageType::Call, 7, |p| {
        p.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1))?;
        p.write_struct_begin(&TStructIdentifier::new("req"))?;
        body(p)
    })
    .unwrap()
}

/// Raw bytes into the output (the protocols' own writers would refuse or re-encode them).
fn raw(p: &mut dyn TOutputProtocol, bytes: &[u8]) -> thrift::Result<()> {
    bytes.iter().try_for_each(|b| p.write_byte(*b))
}

/// Every hostile call payload, named.
fn hostile_calls() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let tag = format!("{protocol:?}");
        // insertTablet's measurements: a list header claiming 2^31-1 strings, and nothing after it.
        out.push((
            format!("{tag}: list of 2^31-1 strings"),
            call(protocol, "insertTablet", |p| {
                p.write_field_begin(&TFieldIdentifier::new("measurements", TType::List, 3))?;
                p.write_list_begin(&TListIdentifier::new(TType::String, i32::MAX))
            }),
        ));
        // A struct nested 10,000 deep in an unknown field (skipped), and in a known recursive one.
        out.push((
            format!("{tag}: struct nested 10,000 deep"),
            call(protocol, "executeStatementV2", |p| {
                p.write_field_begin(&TFieldIdentifier::new("unknown", TType::Struct, 99))?;
                for _ in 0..10_000 {
                    p.write_struct_begin(&TStructIdentifier::new("s"))?;
                    p.write_field_begin(&TFieldIdentifier::new("s", TType::Struct, 1))?;
                }
                Ok(())
            }),
        ));
    }
    // Binary: a negative list size and a negative string length.
    out.push((
        "Binary: list size -1".into(),
        call(Protocol::Binary, "insertTablet", |p| {
            p.write_field_begin(&TFieldIdentifier::new("types", TType::List, 6))?;
            p.write_list_begin(&TListIdentifier::new(TType::I32, -1))
        }),
    ));
    out.push((
        "Binary: string length -2".into(),
        call(Protocol::Binary, "executeStatementV2", |p| {
            p.write_field_begin(&TFieldIdentifier::new("statement", TType::String, 2))?;
            p.write_i32(-2)
        }),
    ));
    // Compact lengths are unsigned varints: their extreme is 2^32-1, which reads as -1 once cast to
    // the i32 the generated code keeps.
    out.push((
        "Compact: list size 2^32-1".into(),
        call(Protocol::Compact, "insertTablet", |p| {
            p.write_field_begin(&TFieldIdentifier::new("types", TType::List, 6))?;
            raw(p, &[0xF5, 0xff, 0xff, 0xff, 0xff, 0x0f])
        }),
    ));
    out.push((
        "Compact: string length 2^32-1".into(),
        call(Protocol::Compact, "executeStatementV2", |p| {
            p.write_field_begin(&TFieldIdentifier::new("statement", TType::String, 2))?;
            raw(p, &[0xff, 0xff, 0xff, 0xff, 0x0f])
        }),
    ));
    // The crashers the fuzzers found, committed to the corpus.
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/thrift_call");
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("crash-") {
                out.push((name, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out
}

async fn show_version_works(server: &Duetd) {
    let mut client = Client::connect(&ClientOptions {
        port: server.port(),
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    match client.execute("show version").await.unwrap() {
        Outcome::Rows(rs) => {
            let (_, blocks) = client.collect(rs).await.unwrap();
            assert_eq!(blocks.iter().map(|b| b.n_rows()).sum::<usize>(), 1);
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

#[tokio::test]
async fn hostile_frames_before_login_are_answered_and_the_server_keeps_serving() {
    let mut server = Duetd::start().unwrap();
    // All on one connection, before any login: each gets an answer and the connection goes on.
    let mut connection = server
        .connection(Protocol::Binary, Duration::from_secs(10))
        .await
        .unwrap();
    let calls = hostile_calls();
    assert!(calls.len() >= 8);
    for (name, payload) in &calls {
        let reply = connection
            .round_trip(payload)
            .await
            .unwrap_or_else(|e| panic!("{name}: no answer ({e}); server log:\n{}", server.log()));
        match rpc::decode_struct_reply::<t::TSStatus>(&reply) {
            Err(ReplyError::Application(message)) => {
                assert!(message.contains("bad arguments"), "{name}: {message}")
            }
            // A crasher that decodes to a well-formed call gets a status (802: not logged in).
            Ok(status) => assert_ne!(status.code, 200, "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The connection still serves a normal call, and so does the server.
    assert_not_logged_in(&mut connection).await;
    assert!(server.is_running());
    show_version_works(&server).await;
}

/// SQL nested far deeper than any stack could recurse is a syntax error (700) with its position, and
/// the connection and server go on.
#[tokio::test]
async fn deeply_nested_sql_is_a_700_with_its_position() {
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&ClientOptions {
        port: server.port(),
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    for condition in [
        format!("{}s1 > 0{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}s1 > 0", "not ".repeat(100_000)),
        format!("s1 > 0{}", " and s1 > 0".repeat(50_000)),
    ] {
        let sql = format!("select s1 from root.sg.d1 where {condition}");
        let err = client.execute(&sql).await.unwrap_err();
        assert_eq!(err.code(), Some(700), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("line 1:") && message.contains("nested too deeply"),
            "{message}"
        );
    }
    match client.execute("show version").await.unwrap() {
        Outcome::Rows(rs) => {
            client.collect(rs).await.unwrap();
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

/// The resident and virtual size of a process, in KiB, from `/proc`.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmSize:"))
}

#[tokio::test]
async fn announced_frame_lengths_reserve_nothing_until_the_bytes_arrive() {
    let mut server = Duetd::start().unwrap();
    let pid = server.pid().unwrap();
    let (_, vm_before) = memory_kib(pid);
    // 40 connections each announce a 500 MB frame and send 1 KiB of it: before, each reserved the
    // announced 500 MB (20 GB of address space in all); now each holds 64 KiB.
    let mut sockets = Vec::new();
    for _ in 0..40 {
        let mut socket = raw_socket(&server).await;
        socket
            .write_all(&500_000_000i32.to_be_bytes())
            .await
            .unwrap();
        socket.write_all(&[0x80; 1024]).await.unwrap();
        sockets.push(socket);
    }
    // The server has read what arrived when a fresh client has been served after all of them.
    show_version_works(&server).await;
    let (rss, vm_after) = memory_kib(pid);
    let grown_mib = vm_after.saturating_sub(vm_before) / 1024;
    assert!(
        grown_mib < 2048,
        "address space grew by {grown_mib} MiB for 40 announced frames (RSS {rss} KiB)"
    );
    drop(sockets);
    assert!(server.is_running());
    // A frame cut short is an error for its connection only.
    let mut short = raw_socket(&server).await;
    short.write_all(&100i32.to_be_bytes()).await.unwrap();
    short.write_all(&[0x80, 0x01]).await.unwrap();
    short.shutdown().await.unwrap();
    assert_hung_up(&mut short).await;
    show_version_works(&server).await;
}

#[tokio::test]
async fn a_connection_that_has_not_logged_in_may_not_send_a_large_frame() {
    let server = Duetd::start().unwrap();
    let mut socket = raw_socket(&server).await;
    // 2 MiB announced before login: the connection is closed without the server reading it.
    socket
        .write_all(&(2 * 1024 * 1024i32).to_be_bytes())
        .await
        .unwrap();
    socket.write_all(&[0x80; 1024]).await.unwrap();
    assert_hung_up(&mut socket).await;
    assert!(
        server
            .log()
            .contains("frame of 2097152 bytes exceeds the limit of 1048576"),
        "{}",
        server.log()
    );
    show_version_works(&server).await;
}
