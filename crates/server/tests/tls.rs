//! TLS on the client port and on the pipe wire (issue 13), over real `duetd` processes with
//! certificates made by the test: a TLS client works and a plain one is told to use TLS while the
//! server goes on serving; an untrusted server certificate fails the client's handshake; a server
//! that requires client certificates refuses a client without one; the `duet` CLI connects with
//! `--use-ssl --ca`; two instances replicate both ways through `iotdb-thrift-ssl-sink` pipes, and a
//! receiver whose certificate stops verifying shows the handshake failure in `SHOW PIPES`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_proto::tls::{self, ClientTls, ClientTlsFiles};
use duet_testkit::certs::{Issued, TestCa};
use duet_testkit::query::rows;
use duet_testkit::{binary, wait_for, Duetd, DuetdOptions};

fn tls_args(server: &Issued) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        server.cert.display().to_string(),
        "--tls-key".into(),
        server.key.display().to_string(),
    ]
}

fn start_tls(server: &Issued, extra: &[String]) -> Duetd {
    let mut args = tls_args(server);
    args.extend(extra.iter().cloned());
    Duetd::start_with(DuetdOptions {
        args,
        ..DuetdOptions::default()
    })
    .unwrap()
}

fn client_tls(ca: &Path, client: Option<&Issued>) -> ClientTls {
    ClientTls {
        config: tls::client_config(&ClientTlsFiles {
            ca: Some(ca.to_path_buf()),
            cert: client.map(|c| c.cert.clone()),
            key: client.map(|c| c.key.clone()),
            ..Default::default()
        })
        .unwrap(),
        server_name: None,
    }
}

fn options(server: &Duetd, tls: Option<ClientTls>) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        tls,
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

fn connect(
    rt: &tokio::runtime::Runtime,
    server: &Duetd,
    tls: Option<ClientTls>,
) -> Result<Client, ClientError> {
    rt.block_on(Client::connect(&options(server, tls)))
}

#[test]
fn the_client_port_speaks_tls_only_and_refuses_what_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca").unwrap();
    let rogue = TestCa::new(dir.path(), "rogue").unwrap();
    let server = start_tls(&ca.issue_localhost(dir.path(), "server").unwrap(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut client = connect(&rt, &server, Some(client_tls(&ca.pem, None))).unwrap();
    rt.block_on(client.execute_update("insert into root.tls.d(time, s) values (1, 42)"))
        .unwrap();
    assert_eq!(
        rt.block_on(rows(&mut client, "select s from root.tls.d"))
            .unwrap(),
        vec![vec!["1".to_string(), "42".to_string()]]
    );

    // A plain client is answered, not left hanging: its openSession gets the refusal.
    let plain = connect(&rt, &server, None)
        .err()
        .expect("plain login refused");
    assert!(
        plain.to_string().contains("accepts TLS connections only"),
        "{plain}"
    );

    // A server certificate from another CA fails the handshake, naming why.
    let untrusted = connect(&rt, &server, Some(client_tls(&rogue.pem, None)))
        .err()
        .expect("untrusted certificate refused");
    assert!(matches!(untrusted, ClientError::Tls { .. }), "{untrusted}");
    assert!(
        untrusted.to_string().contains("invalid peer certificate"),
        "{untrusted}"
    );

    // A name the certificate does not carry fails too.
    let mut wrong_name = client_tls(&ca.pem, None);
    wrong_name.server_name = Some("elsewhere.example".into());
    let e = connect(&rt, &server, Some(wrong_name)).err().unwrap();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // Raw bytes that are neither TLS nor Thrift cost the server nothing: it keeps serving, and the
    // first session is still alive.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    std::io::Write::write_all(&mut raw, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    drop(raw);
    let mut again = connect(&rt, &server, Some(client_tls(&ca.pem, None))).unwrap();
    assert_eq!(
        rt.block_on(rows(&mut again, "select s from root.tls.d"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        rt.block_on(rows(&mut client, "select s from root.tls.d"))
            .unwrap()
            .len(),
        1
    );
    // The refusal is logged (the line may follow the answer by a moment).
    wait_for(
        "the plain client's refusal in the log",
        Duration::from_secs(10),
        || {
            server
                .log()
                .contains("a plain client called the TLS-only port")
                .then_some(())
        },
    )
    .unwrap();
}

#[test]
fn a_server_with_a_client_ca_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca").unwrap();
    let client_ca = TestCa::new(dir.path(), "clients").unwrap();
    let server = start_tls(
        &ca.issue_localhost(dir.path(), "server").unwrap(),
        &[
            "--tls-client-ca".into(),
            client_ca.pem.display().to_string(),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let without = connect(&rt, &server, Some(client_tls(&ca.pem, None)));
    assert!(without.is_err(), "a client without a certificate logged in");
    let stranger = ca.issue(dir.path(), "stranger", &["stranger"]).unwrap();
    assert!(connect(&rt, &server, Some(client_tls(&ca.pem, Some(&stranger)))).is_err());
    let member = client_ca.issue(dir.path(), "member", &["member"]).unwrap();
    let mut client = connect(&rt, &server, Some(client_tls(&ca.pem, Some(&member)))).unwrap();
    rt.block_on(client.execute_update("create database root.mtls"))
        .unwrap();
}

#[test]
fn the_cli_connects_with_use_ssl_and_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca").unwrap();
    let server = start_tls(&ca.issue_localhost(dir.path(), "server").unwrap(), &[]);
    let port = server.port().to_string();
    let run = |extra: &[&str]| {
        std::process::Command::new(binary("duet"))
            .args(["-h", "127.0.0.1", "-p", &port, "-u", "root", "-pw", "root"])
            .args(extra)
            .output()
            .unwrap()
    };
    let ca_path = ca.pem.display().to_string();
    let ok = run(&[
        "--use-ssl",
        "--ca",
        &ca_path,
        "-e",
        "create database root.cli; show databases root.cli",
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("root.cli"), "{stdout}");
    // IoTDB's spelling: -usessl true -ts <trust store> -tpw <password>.
    let iotdb = run(&[
        "-usessl",
        "true",
        "-ts",
        &ca_path,
        "-tpw",
        "unused",
        "-e",
        "show databases root.cli",
    ]);
    assert!(
        iotdb.status.success(),
        "{}",
        String::from_utf8_lossy(&iotdb.stderr)
    );
    let plain = run(&["-e", "show databases"]);
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("TLS"), "{stderr}");
}

/// `SHOW PIPES` as one map per pipe, keyed by column name.
fn pipes(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let rs = match rt.block_on(client.execute("show pipes")).unwrap() {
        duet_proto::client::Outcome::Rows(rs) => rs,
        other => panic!("show pipes gave {other:?}"),
    };
    let (rs, blocks) = rt.block_on(client.collect(rs)).unwrap();
    let header = rs.header();
    duet_testkit::query::render(&rs, &blocks)
        .into_iter()
        .map(|row| {
            let map: BTreeMap<String, String> =
                header.iter().cloned().zip(row.iter().cloned()).collect();
            (row[0].clone(), map)
        })
        .collect()
}

fn value(rt: &tokio::runtime::Runtime, client: &mut Client, sql: &str) -> Option<String> {
    rt.block_on(rows(client, sql))
        .ok()?
        .first()
        .and_then(|r| r.get(1).cloned())
}

#[test]
fn tls_pipes_replicate_both_ways_and_an_untrusted_receiver_shows_in_show_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca").unwrap();
    let rogue = TestCa::new(dir.path(), "rogue").unwrap();
    let a_cert = ca.issue_localhost(dir.path(), "a").unwrap();
    let b_cert = ca.issue_localhost(dir.path(), "b").unwrap();
    let a = start_tls(&a_cert, &[]);
    let mut b = start_tls(&b_cert, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trust = client_tls(&ca.pem, None);
    let mut on_a = connect(&rt, &a, Some(trust.clone())).unwrap();
    let mut on_b = connect(&rt, &b, Some(trust.clone())).unwrap();
    let ca_path = ca.pem.display().to_string();

    // A pipe whose CA does not sign the receiver's certificate is refused at creation.
    let rogue_path = rogue.pem.display().to_string();
    let refused = rt
        .block_on(on_a.execute_update(&format!(
            "create pipe bad with sink ('sink'='iotdb-thrift-ssl-sink', 'sink.ip'='127.0.0.1', \
             'sink.port'='{}', 'sink.ssl.trust-store-path'='{rogue_path}', 'sink.ssl.trust-store-pwd'='x')",
            b.port()
        )))
        .unwrap_err();
    assert!(
        refused.to_string().contains("invalid peer certificate"),
        "{refused}"
    );
    // A plain sink to a TLS receiver is refused too, with the receiver's reason.
    let plain = rt
        .block_on(on_a.execute_update(&format!(
            "create pipe plain with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
            b.port()
        )))
        .unwrap_err();
    assert!(plain.to_string().contains("TLS"), "{plain}");

    // IoTDB's keys on one side, Duet's PEM keys on the other.
    rt.block_on(on_a.execute_update(&format!(
        "create pipe ab with source ('source.mode.double-living'='true') with sink \
         ('sink'='iotdb-thrift-ssl-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}', \
         'sink.ssl.trust-store-path'='{ca_path}', 'sink.ssl.trust-store-pwd'='changeit')",
        b.port()
    )))
    .unwrap();
    rt.block_on(on_b.execute_update(&format!(
        "create pipe ba with source ('source.mode.double-living'='true') with sink \
         ('sink'='iotdb-thrift-sink', 'sink.ssl.enable'='true', 'sink.ip'='localhost', \
         'sink.port'='{}', 'sink.ssl.ca-file'='{ca_path}')",
        a.port()
    )))
    .unwrap();
    rt.block_on(on_a.execute_update("insert into root.w.a(time, s) values (1, 1)"))
        .unwrap();
    rt.block_on(on_b.execute_update("insert into root.w.b(time, s) values (2, 2)"))
        .unwrap();
    let within = Duration::from_secs(30);
    wait_for("A's point on B", within, || {
        value(&rt, &mut on_b, "select s from root.w.a")
    })
    .unwrap();
    wait_for("B's point on A", within, || {
        value(&rt, &mut on_a, "select s from root.w.b")
    })
    .unwrap();
    // duet-check compares the two over TLS.
    let check = std::process::Command::new(binary("duet-check"))
        .args(["-h", "127.0.0.1", "-p", &a.port().to_string()])
        .args([
            "--peer-host",
            "127.0.0.1",
            "--peer-port",
            &b.port().to_string(),
        ])
        .args(["--ca", &ca_path])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The password of a trust store is never shown.
    let shown = pipes(&rt, &mut on_a);
    let sink = &shown["ab"]["PipeSink"];
    assert!(!sink.contains("changeit"), "{sink}");

    // B comes back with a certificate A's pipe does not trust: the handshake fails, SHOW PIPES says
    // why, and the pipe keeps retrying.
    let swapped = rogue.issue_localhost(dir.path(), "b-rogue").unwrap();
    std::fs::copy(&swapped.cert, &b_cert.cert).unwrap();
    std::fs::copy(&swapped.key, &b_cert.key).unwrap();
    b.restart().unwrap();
    rt.block_on(on_a.execute_update("insert into root.w.a(time, s) values (3, 3)"))
        .unwrap();
    let exception = wait_for("the handshake failure in SHOW PIPES", within, || {
        let e = pipes(&rt, &mut on_a)["ab"]["ExceptionMessage"].clone();
        e.contains("invalid peer certificate").then_some(e)
    })
    .unwrap();
    assert!(exception.contains("TLS handshake"), "{exception}");
    // B still serves clients that trust its new certificate.
    let mut on_b = connect(&rt, &b, Some(client_tls(&rogue.pem, None))).unwrap();
    assert_eq!(
        value(&rt, &mut on_b, "select s from root.w.a"),
        Some("1".into())
    );
}

/// The format of the Java stores a test writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreFormat {
    Pkcs12,
    Jks,
}

/// IoTDB's SSL sink names Java stores: a PKCS#12 trust store and key store (keytool's format since
/// Java 9) are opened with their passwords, for a receiver that requires a client certificate; a
/// wrong password and a truncated legacy store are refused by name, and the password is never
/// shown.
#[test]
fn a_tls_pipe_reads_pkcs12_trust_and_key_stores_with_their_passwords() {
    pipe_over_java_stores(StoreFormat::Pkcs12);
}

/// The same with legacy JKS stores (as `keytool -storetype jks` and Java 8 write them): mutual TLS
/// with the certificate and key read from the JKS key store, the CA from the JKS trust store.
#[test]
fn a_tls_pipe_reads_jks_trust_and_key_stores_with_their_passwords() {
    pipe_over_java_stores(StoreFormat::Jks);
}

fn pipe_over_java_stores(format: StoreFormat) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca").unwrap();
    let clients = TestCa::new(dir.path(), "clients").unwrap();
    let a = Duetd::start().unwrap();
    let b = start_tls(
        &ca.issue_localhost(dir.path(), "b").unwrap(),
        &["--tls-client-ca".into(), clients.pem.display().to_string()],
    );
    let sender = clients.issue(dir.path(), "sender", &["sender"]).unwrap();
    let (trust, keys) = match format {
        StoreFormat::Pkcs12 => (
            ca.trust_store(dir.path(), "truststore", "changeit")
                .unwrap(),
            sender.key_store(dir.path(), "keystore", "keypass").unwrap(),
        ),
        StoreFormat::Jks => (
            ca.jks_trust_store(dir.path(), "truststore", "changeit")
                .unwrap(),
            sender
                .jks_key_store(dir.path(), "keystore", "keypass")
                .unwrap(),
        ),
    };

    // A connector opens the stores directly, and refuses a wrong password or a cut store by name.
    let store_files = |password: &str| ClientTlsFiles {
        ca: Some(trust.clone()),
        cert: Some(keys.clone()),
        key: Some(keys.clone()),
        ca_password: Some(tls::StorePassword(password.into())),
        key_password: Some(tls::StorePassword("keypass".into())),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = tls::client_config(&store_files("changeit")).unwrap();
    let mut direct = connect(
        &rt,
        &b,
        Some(ClientTls {
            config,
            server_name: None,
        }),
    )
    .unwrap();
    rt.block_on(direct.execute_update("create database root.p12"))
        .unwrap();
    let wrong = tls::client_config(&store_files("wrong")).unwrap_err();
    assert!(wrong.to_string().contains("cannot be opened"), "{wrong}");
    if format == StoreFormat::Jks {
        assert!(wrong.to_string().contains("password is wrong"), "{wrong}");
        assert!(!wrong.to_string().contains("changeit"), "{wrong}");
    }
    let cut = dir.path().join("cut.jks");
    std::fs::write(&cut, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
    let refused = tls::client_config(&ClientTlsFiles {
        ca: Some(cut),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("is a JKS store that cannot be opened: the store ends early"),
        "{refused}"
    );

    // A pipe with IoTDB's store keys replicates to the receiver that checks its certificate.
    let mut on_a = connect(&rt, &a, None).unwrap();
    let mut on_b = direct;
    rt.block_on(on_a.execute_update(&format!(
        "create pipe stores with sink ('sink'='iotdb-thrift-ssl-sink', 'sink.ip'='127.0.0.1', \
         'sink.port'='{}', 'sink.ssl.trust-store-path'='{}', 'sink.ssl.trust-store-pwd'='changeit', \
         'sink.ssl.key-store-path'='{}', 'sink.ssl.key-store-pwd'='keypass')",
        b.port(),
        trust.display(),
        keys.display()
    )))
    .unwrap();
    rt.block_on(on_a.execute_update("insert into root.p12.d(time, s) values (1, 7)"))
        .unwrap();
    wait_for("A's point on B", Duration::from_secs(30), || {
        value(&rt, &mut on_b, "select s from root.p12.d")
    })
    .unwrap();
    let shown = pipes(&rt, &mut on_a);
    let sink = &shown["stores"]["PipeSink"];
    assert!(
        !sink.contains("changeit") && !sink.contains("keypass"),
        "{sink}"
    );
}
