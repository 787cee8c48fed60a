//! The audit log and the default-password policy (issue 13), over real `duetd` processes: logins
//! (success and failure, sessions and pipe handshakes), DDL, user and pipe changes are recorded with
//! who, when and from where as JSON lines, passwords masked, and read back with IoTDB's
//! `select username, address, log from root.__system.audit._root`; `audit_log_operation` selects the
//! categories. While root has the default password, root logins from other machines are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_proto::t;
use duet_testkit::query::{raw_data_query, rows};
use duet_testkit::{Duetd, DuetdOptions};
use serde_json::Value;

fn with_config(dir: &Path, name: &str, toml: &str, env: &[(&str, &str)]) -> Duetd {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    Duetd::start_with(DuetdOptions {
        args: vec!["--config".into(), path.display().to_string()],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..DuetdOptions::default()
    })
    .unwrap()
}

fn login(
    rt: &tokio::runtime::Runtime,
    server: &Duetd,
    user: &str,
    password: &str,
) -> Result<Client, ClientError> {
    rt.block_on(Client::connect(&ClientOptions {
        port: server.port(),
        user: user.into(),
        password: password.into(),
        ..ClientOptions::default()
    }))
}

fn entries(server: &Duetd) -> Vec<Value> {
    entries_in(&server.data_dir().join("audit.log"))
}

fn entries_in(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `insertStringRecord` of one point, and `executeRawDataQueryV2` of its series: the session API's
/// insert and query RPCs.
fn insert_and_query_rpcs(rt: &tokio::runtime::Runtime, client: &mut Client) {
    let insert = t::TSInsertStringRecordReq::new(
        client.session_id(),
        "root.rpc.d".to_string(),
        vec!["s".to_string()],
        vec!["7".into()],
        1,
        false,
        None,
    );
    let status: t::TSStatus = rt
        .block_on(client.connection().call("insertStringRecord", 1, &insert))
        .unwrap();
    assert_eq!(status.code, 200, "{status:?}");
    let resp = rt
        .block_on(raw_data_query(client, &["root.rpc.d.s"]))
        .unwrap();
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
}

/// Insert and query RPCs are audited as IoTDB does: an insert RPC when
/// `enable_audit_log_for_native_insert_api` is on (IoTDB's default; it covers the DML kind for
/// them), a query RPC when `audit_log_operation` has QUERY; a statement that does not parse is
/// recorded with its raw text, passwords masked.
#[test]
fn insert_and_query_rpcs_and_unparsed_statements_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let all = with_config(dir.path(), "all", "enable_audit_log = true\n", &[]);
    // DDL only: the insert RPC is still recorded (the native-insert key covers it), the query not.
    let ddl = with_config(
        dir.path(),
        "ddl",
        "enable_audit_log = true\naudit_log_operation = \"DDL\"\n",
        &[],
    );
    // No native inserts: the insert RPC is not recorded, a SQL INSERT (DML) is.
    let no_native = with_config(
        dir.path(),
        "no_native",
        "enable_audit_log = true\nenable_audit_log_for_native_insert_api = false\n",
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for server in [&all, &ddl, &no_native] {
        let mut root = login(&rt, server, "root", "root").unwrap();
        insert_and_query_rpcs(&rt, &mut root);
        rt.block_on(root.execute_update("insert into root.sql.d(time, s) values (1, 1)"))
            .unwrap();
        for bad in [
            "creat user mallory 'Leaked-pw1'",
            "create user mallory 'Leaked-pw2' extra",
            "alter usr mallory set password 'Leaked-pw3",
        ] {
            let e = rt.block_on(root.execute_update(bad)).unwrap_err();
            assert_eq!(e.code(), Some(700), "{bad}: {e}");
        }
    }

    let on_all = entries(&all);
    assert!(
        has(
            &on_all,
            "DML",
            "RPC insertStringRecord root.rpc.d",
            "success"
        ),
        "{on_all:?}"
    );
    assert!(has(
        &on_all,
        "QUERY",
        "RPC executeRawDataQuery root.rpc.d.s",
        "success"
    ));
    assert!(has(&on_all, "DDL", "creat user mallory", "failure: 700"));
    assert!(has(
        &on_all,
        "DDL",
        "create user mallory '******' extra",
        "failure: 700"
    ));
    assert!(has(
        &on_all,
        "DDL",
        "alter usr mallory set password '******",
        "failure: 700"
    ));
    let text = std::fs::read_to_string(all.data_dir().join("audit.log")).unwrap();
    assert!(!text.contains("Leaked-pw"), "{text}");

    let on_ddl = entries(&ddl);
    assert!(has(
        &on_ddl,
        "DML",
        "RPC insertStringRecord root.rpc.d",
        "success"
    ));
    assert!(
        !on_ddl.iter().any(|e| e["category"] == "QUERY"),
        "{on_ddl:?}"
    );
    assert!(!has(&on_ddl, "DML", "INSERT INTO root.sql.d", ""));

    let on_no_native = entries(&no_native);
    assert!(!has(&on_no_native, "DML", "RPC insertStringRecord", ""));
    assert!(has(
        &on_no_native,
        "DML",
        "INSERT INTO root.sql.d",
        "success"
    ));
    assert!(has(
        &on_no_native,
        "QUERY",
        "RPC executeRawDataQuery",
        "success"
    ));
}

/// The audit file rotates by size, keeping `audit_log_max_files` older files, and the audit series
/// reads them all; `audit_log_sync` fsyncs every entry (here: accepted, and entries are whole).
#[test]
fn the_audit_file_rotates_by_size_and_the_series_reads_the_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_config(
        dir.path(),
        "rotating",
        "enable_audit_log = true\naudit_log_sync = true\naudit_log_max_file_bytes = 2000\naudit_log_max_files = 2\n",
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut root = login(&rt, &server, "root", "root").unwrap();
    for i in 0..60 {
        rt.block_on(root.execute_update(&format!("create database root.rotation{i}")))
            .unwrap();
    }
    let data = server.data_dir();
    let current = data.join("audit.log");
    let (first, second) = (data.join("audit.log.1"), data.join("audit.log.2"));
    assert!(first.exists() && second.exists());
    assert!(
        !data.join("audit.log.3").exists(),
        "only 2 rotated files are kept"
    );
    for path in [&current, &first, &second] {
        let bytes = std::fs::metadata(path).unwrap().len();
        assert!(bytes <= 2000, "{}: {bytes} bytes", path.display());
    }
    // Newest last: audit.log.2 is older than audit.log.1, which is older than audit.log.
    let time = |path: &Path| -> Vec<i64> {
        entries_in(path)
            .iter()
            .map(|e| e["time_ms"].as_i64().unwrap())
            .collect()
    };
    let (t2, t1, t0) = (time(&second), time(&first), time(&current));
    assert!(t2.last().unwrap() <= t1.first().unwrap() && t1.last().unwrap() <= t0.first().unwrap());
    let logged: Vec<String> = [&second, &first, &current]
        .iter()
        .flat_map(|p| entries_in(p))
        .map(|e| e["log"].as_str().unwrap().to_string())
        .collect();
    assert!(logged.last().unwrap().contains("root.rotation59"));
    // The oldest entries were rotated away; the series reads what the files hold, in order.
    assert!(!logged
        .iter()
        .any(|l| l.contains("root.rotation0 ") || l.ends_with("root.rotation0")));
    let audit = rt
        .block_on(rows(
            &mut root,
            "select log from root.__system.audit._root where time > 0",
        ))
        .unwrap();
    let read: Vec<&str> = audit.iter().map(|r| r[1].as_str()).collect();
    assert!(read.len() > entries_in(&current).len(), "{read:?}");
    for log in &logged {
        assert!(
            read.contains(&log.as_str()),
            "{log} not read back: {read:?}"
        );
    }
}

fn has(entries: &[Value], category: &str, log_part: &str, result_part: &str) -> bool {
    entries.iter().any(|e| {
        e["category"] == category
            && e["log"].as_str().unwrap().contains(log_part)
            && e["result"].as_str().unwrap().contains(result_part)
    })
}

#[test]
fn logins_ddl_users_and_pipes_are_audited_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let a = with_config(dir.path(), "a", "enable_audit_log = true\n", &[]);
    // B records DDL only (and logins, always).
    let b = with_config(
        dir.path(),
        "b",
        "enable_audit_log = true\naudit_log_operation = \"DDL\"\naudit_log_storage = \"IOTDB\"\n",
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();

    assert!(login(&rt, &a, "root", "wrong-password").is_err());
    let mut root = login(&rt, &a, "root", "root").unwrap();
    for sql in [
        "create database root.audited",
        "insert into root.audited.d(time, s) values (1, 1)",
        "create user auditor 'Secret-pass1'",
        "alter user auditor set password 'Other-pass2'",
    ] {
        rt.block_on(root.execute_update(sql)).unwrap();
    }
    rt.block_on(rows(&mut root, "select s from root.audited.d"))
        .unwrap();
    assert!(rt
        .block_on(root.execute_update("create database root.audited"))
        .is_err());
    rt.block_on(root.execute_update(&format!(
        "create pipe ab with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', \
         'sink.port'='{}', 'sink.password'='root')",
        b.port()
    )))
    .unwrap();
    rt.block_on(root.execute_update("drop pipe ab")).unwrap();

    let on_a = entries(&a);
    assert!(
        has(&on_a, "LOGIN", "login (session)", "failure"),
        "{on_a:?}"
    );
    assert!(has(&on_a, "LOGIN", "login (session)", "success"));
    assert!(has(&on_a, "DDL", "CREATE DATABASE root.audited", "success"));
    assert!(has(
        &on_a,
        "DDL",
        "CREATE DATABASE root.audited",
        "failure: 501"
    ));
    assert!(has(&on_a, "DML", "INSERT INTO root.audited.d", "success"));
    assert!(has(
        &on_a,
        "QUERY",
        "SELECT s FROM root.audited.d",
        "success"
    ));
    assert!(has(&on_a, "DDL", "CREATE USER auditor '******'", "success"));
    assert!(has(&on_a, "DDL", "SET PASSWORD '******'", "success"));
    assert!(has(&on_a, "DDL", "CREATE PIPE ab", "success"));
    assert!(has(&on_a, "DDL", "DROP PIPE ab", "success"));
    for e in &on_a {
        assert_eq!(e["user"], "root");
        assert!(
            e["address"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{e}"
        );
        assert!(e["time_ms"].as_i64().unwrap() > 1_700_000_000_000);
    }
    let text = std::fs::read_to_string(a.data_dir().join("audit.log")).unwrap();
    assert!(!text.contains("Secret-pass1") && !text.contains("Other-pass2"));
    assert!(!text.contains("'sink.password'='root'"), "{text}");

    // The sender's handshake is a login on B; B records no DML or queries.
    let on_b = entries(&b);
    assert!(
        has(&on_b, "LOGIN", "login (pipe handshake)", "success"),
        "{on_b:?}"
    );
    let mut root_b = login(&rt, &b, "root", "root").unwrap();
    rt.block_on(root_b.execute_update("insert into root.b.d(time, s) values (1, 1)"))
        .unwrap();
    rt.block_on(rows(&mut root_b, "show databases")).unwrap();
    let on_b = entries(&b);
    assert!(!on_b
        .iter()
        .any(|e| e["category"] == "DML" || e["category"] == "QUERY"));

    // IoTDB's query of the audit series.
    let audit = rt
        .block_on(rows(
            &mut root,
            "select username, address, log from root.__system.audit._root where time > 0 order by time desc limit 100",
        ))
        .unwrap();
    assert!(
        audit.iter().any(|r| r[3].contains("DROP PIPE ab")),
        "{audit:?}"
    );
    assert!(audit
        .iter()
        .all(|r| r[1] == "root" && r[2].starts_with("127.0.0.1:")));
    assert!(audit
        .windows(2)
        .all(|w| w[0][0].parse::<i64>().unwrap() >= w[1][0].parse::<i64>().unwrap()));
    let limited = rt
        .block_on(rows(
            &mut root,
            "select * from root.__system.audit.** limit 2 offset 1",
        ))
        .unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(
        limited[0].len(),
        6,
        "time and the five measurements: {limited:?}"
    );
    // Only root reads it (IoTDB's AUDIT privilege), and unsupported forms say so.
    let mut auditor = login(&rt, &a, "auditor", "Other-pass2").unwrap();
    let e = rt
        .block_on(rows(
            &mut auditor,
            "select log from root.__system.audit._root",
        ))
        .unwrap_err();
    assert_eq!(e.code(), Some(803), "{e}");
    let e = rt
        .block_on(rows(
            &mut root,
            "select count(log) from root.__system.audit._root",
        ))
        .unwrap_err();
    assert_eq!(e.code(), Some(300), "{e}");
}

#[test]
fn remote_root_logins_with_the_default_password_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let remote = [("DUET_TEST_PEERS_ARE_REMOTE", "1")];
    let guarded = with_config(dir.path(), "guarded", "enable_audit_log = true\n", &remote);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = login(&rt, &guarded, "root", "root").err().unwrap();
    assert_eq!(e.code(), Some(803), "{e}");
    assert!(e.to_string().contains("default password"), "{e}");
    assert!(has(
        &entries(&guarded),
        "LOGIN",
        "login (session)",
        "default password"
    ));
    // A pipe handshake as root is a root login too.
    let local = Duetd::start().unwrap();
    let mut on_local = login(&rt, &local, "root", "root").unwrap();
    let e = rt
        .block_on(on_local.execute_update(&format!(
            "create pipe p with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
            guarded.port()
        )))
        .unwrap_err();
    assert!(e.to_string().contains("default password"), "{e}");

    // A changed password (here from the start) lets root in from anywhere.
    let changed = with_config(
        dir.path(),
        "changed",
        "initial_root_password = \"Chang3d-Pass\"\n",
        &remote,
    );
    login(&rt, &changed, "root", "Chang3d-Pass").unwrap();
    // The operator may allow it explicitly.
    let allowed = with_config(
        dir.path(),
        "allowed",
        "allow_remote_default_root_login = true\n",
        &remote,
    );
    login(&rt, &allowed, "root", "root").unwrap();
    // From this machine root still logs in, to change the password.
    login(&rt, &local, "root", "root").unwrap();
}

#[test]
fn the_default_password_is_reported_when_the_server_listens_beyond_loopback() {
    // Bound on every address but only ever reached through loopback (metrics on 127.0.0.1).
    let server = Duetd::start_with(DuetdOptions {
        address: Some("0.0.0.0".into()),
        args: vec!["--metrics-address".into(), "127.0.0.1".into()],
        ..DuetdOptions::default()
    })
    .unwrap();
    assert!(
        server
            .log()
            .contains("root logins from other machines are refused"),
        "{}",
        server.log()
    );
    let (code, body) = server.http_get("/api/status").unwrap();
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    let warnings = status["instance"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{status}");
    assert!(warnings[0].as_str().unwrap().contains("default password"));
    assert_eq!(status["instance"]["tls"], false);
    assert_eq!(status["instance"]["audit_log"], false);
}
