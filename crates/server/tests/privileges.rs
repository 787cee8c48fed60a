//! Privileges over real `duetd` processes and real clients: a table of statement families and RPCs
//! × the privilege each needs (missing → 803 with IoTDB's text; granted on the open session → it
//! works), revocations and dropped users taking effect on open sessions, and failed logins slowed
//! down and locked out with one answer for unknown users and wrong passwords.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use thrift::protocol::TSerializable;

use duet_proto::client::{Client, ClientError, ClientOptions, Outcome};
use duet_proto::t;
use duet_proto::tablet::insert_tablet_request;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_testkit::query::raw_data_query;
use duet_testkit::Duetd;

mod common;
use common::start_with_config;

fn options(server: &Duetd, user: &str, password: &str) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        user: user.into(),
        password: password.into(),
        call_timeout: Duration::from_secs(20),
        ..ClientOptions::default()
    }
}

/// Connects as `user` with `password`, which must succeed.
async fn connect(server: &Duetd, user: &str, password: &str) -> Client {
    Client::connect(&options(server, user, password))
        .await
        .unwrap()
}

/// Runs `sql`, which must succeed.
async fn update(client: &mut Client, sql: &str) {
    client.execute_update(sql).await.unwrap();
}

/// The password of the user [`start_with_user`] creates.
const USER_PASSWORD: &str = "secret12";

/// A server where root created `user` (password [`USER_PASSWORD`]) and then ran `statements`, each of
/// which must succeed; with root's session and `user`'s.
async fn start_with_user(user: &str, statements: &[&str]) -> (Duetd, Client, Client) {
    let server = Duetd::start().unwrap();
    let mut root = connect(&server, "root", "root").await;
    update(&mut root, &format!("create user {user} '{USER_PASSWORD}'")).await;
    for sql in statements {
        update(&mut root, sql).await;
    }
    let session = connect(&server, user, USER_PASSWORD).await;
    (server, root, session)
}

/// What a case does as the user under test.
enum Action {
    Sql(&'static str),
    InsertStringRecord {
        device: &'static str,
        measurement: &'static str,
    },
    InsertTablet {
        device: &'static str,
        measurement: &'static str,
    },
    InsertStringRecords {
        devices: &'static [&'static str],
        measurement: &'static str,
    },
    DeleteData(&'static str),
    CreateTimeseries(&'static str),
    CreateAlignedTimeseries {
        device: &'static str,
        measurements: &'static [&'static str],
    },
    CreateMultiTimeseries(&'static [&'static str]),
}

/// One row of the table: set-up run as root, the action, what a refusal says, and the GRANT (its
/// privileges and paths) that makes it work.
struct Case {
    setup: &'static [&'static str],
    action: Action,
    refusal: &'static str,
    grant: &'static str,
}

const CASES: &[Case] = &[
    // Data.
    Case {
        setup: &["create timeseries root.c1.d.s with datatype=INT64"],
        action: Action::Sql("insert into root.c1.d(time, s) values (1, 1)"),
        refusal: "please add privilege WRITE_DATA on [root.c1.d.s]",
        grant: "WRITE_DATA ON root.c1.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("insert into root.c2.d(time, s) values (1, 1)"),
        refusal: "please add privilege WRITE_DATA on [root.c2.d.s]",
        grant: "WRITE ON root.c2.**",
    },
    Case {
        setup: &["insert into root.c3.d(time, s) values (1, 1)"],
        action: Action::Sql("delete from root.c3.d.s where time <= 5"),
        refusal: "please add privilege WRITE_DATA on [root.c3.d.s]",
        grant: "WRITE_DATA ON root.c3.d.s",
    },
    // Schema.
    Case {
        setup: &["create database root.c4"],
        action: Action::Sql("create timeseries root.c4.d.s with datatype=INT32"),
        refusal: "please add privilege WRITE_SCHEMA on [root.c4.d.s]",
        grant: "WRITE_SCHEMA ON root.c4.**",
    },
    Case {
        setup: &["create timeseries root.c5.d.s with datatype=INT32"],
        action: Action::Sql("delete timeseries root.c5.d.*"),
        refusal: "please add privilege WRITE_SCHEMA on [root.c5.d.*]",
        grant: "WRITE_SCHEMA ON root.c5.d.**",
    },
    Case {
        setup: &["create database root.c6"],
        action: Action::Sql("set ttl to root.c6.** 3600000"),
        refusal: "please add privilege WRITE_SCHEMA on [root.c6.**]",
        grant: "WRITE_SCHEMA ON root.c6.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("create database root.c7"),
        refusal: "please add privilege MANAGE_DATABASE",
        grant: "MANAGE_DATABASE ON root.**",
    },
    Case {
        setup: &["create database root.c8"],
        action: Action::Sql("drop database root.c8"),
        refusal: "please add privilege MANAGE_DATABASE",
        grant: "MANAGE_DATABASE ON root.**",
    },
    // Global privileges.
    Case {
        setup: &[],
        action: Action::Sql("show pipes"),
        refusal: "please add privilege USE_PIPE",
        grant: "USE_PIPE ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("show variables"),
        refusal: "please add privilege MAINTAIN",
        grant: "MAINTAIN ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("show cluster"),
        refusal: "please add privilege MAINTAIN",
        grant: "SYSTEM ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("flush"),
        refusal: "please add privilege SYSTEM",
        grant: "SYSTEM ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("create user made_by_case 'secret12'"),
        refusal: "please add privilege MANAGE_USER",
        grant: "MANAGE_USER ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("create role made_by_case"),
        refusal: "please add privilege MANAGE_ROLE",
        grant: "MANAGE_ROLE ON root.**",
    },
    Case {
        setup: &["create user victim1 'secret12'"],
        action: Action::Sql("alter user victim1 set password 'secret99'"),
        refusal: "please add privilege MANAGE_USER",
        grant: "SECURITY ON root.**",
    },
    Case {
        setup: &["create user victim2 'secret12'"],
        action: Action::Sql("drop user victim2"),
        refusal: "please add privilege MANAGE_USER",
        grant: "MANAGE_USER ON root.**",
    },
    Case {
        setup: &["create role role_a"],
        action: Action::Sql("list user of role role_a"),
        refusal: "please add privilege MANAGE_USER",
        grant: "MANAGE_USER ON root.**",
    },
    Case {
        setup: &["create role role_b", "create user member_b 'secret12'"],
        action: Action::Sql("grant role role_b to member_b"),
        refusal: "please add privilege MANAGE_ROLE",
        grant: "MANAGE_ROLE ON root.**",
    },
    Case {
        setup: &["create role role_c"],
        action: Action::Sql("list privileges of role role_c"),
        refusal: "please add privilege MANAGE_ROLE",
        grant: "MANAGE_ROLE ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("create pipe made_by_case with sink ('sink'='do-nothing-sink')"),
        refusal: "please add privilege USE_PIPE",
        grant: "USE_PIPE ON root.**",
    },
    Case {
        setup: &[],
        action: Action::Sql("show regions"),
        refusal: "please add privilege MAINTAIN",
        grant: "MAINTAIN ON root.**",
    },
    Case {
        setup: &[
            "create database root.c9",
            "create device template tpl_case (s INT64)",
            "set device template tpl_case to root.c9.d",
        ],
        action: Action::Sql("create timeseries using device template on root.c9.d"),
        refusal: "please add privilege WRITE_SCHEMA on [root.c9.d]",
        grant: "WRITE_SCHEMA ON root.c9.**",
    },
    Case {
        setup: &["create aligned timeseries root.c10.d(s INT64)"],
        action: Action::Sql("insert into root.c10.d(time, s) aligned values (1, 1)"),
        refusal: "please add privilege WRITE_DATA on [root.c10.d.s]",
        grant: "WRITE_DATA ON root.c10.d.s",
    },
    // RPCs.
    Case {
        setup: &["create timeseries root.r1.d.s with datatype=INT64"],
        action: Action::InsertStringRecord {
            device: "root.r1.d",
            measurement: "s",
        },
        refusal: "please add privilege WRITE_DATA on [root.r1.d.s]",
        grant: "WRITE_DATA ON root.r1.**",
    },
    // Writing a series that does not exist creates it: WRITE_DATA is not enough.
    Case {
        setup: &[
            "create database root.r2",
            "grant write_data on root.r2.** to user case",
        ],
        action: Action::InsertStringRecord {
            device: "root.r2.d",
            measurement: "s",
        },
        refusal: "please add privilege WRITE_SCHEMA on [root.r2.d.s]",
        grant: "WRITE_SCHEMA ON root.r2.**",
    },
    Case {
        setup: &["insert into root.r3.d(time, s) values (1, 1)"],
        action: Action::DeleteData("root.r3.d.s"),
        refusal: "please add privilege WRITE_DATA on [root.r3.d.s]",
        grant: "WRITE_DATA ON root.r3.**",
    },
    Case {
        setup: &["create database root.r4"],
        action: Action::CreateTimeseries("root.r4.d.s"),
        refusal: "please add privilege WRITE_SCHEMA on [root.r4.d.s]",
        grant: "WRITE_SCHEMA ON root.r4.**",
    },
    Case {
        setup: &["create timeseries root.r5.d.s with datatype=INT64"],
        action: Action::InsertTablet {
            device: "root.r5.d",
            measurement: "s",
        },
        refusal: "please add privilege WRITE_DATA on [root.r5.d.s]",
        grant: "WRITE_DATA ON root.r5.**",
    },
    Case {
        setup: &[
            "create timeseries root.r6.d1.s with datatype=INT64",
            "create timeseries root.r6.d2.s with datatype=INT64",
            "grant write_data on root.r6.d1.** to user case",
        ],
        action: Action::InsertStringRecords {
            devices: &["root.r6.d1", "root.r6.d2"],
            measurement: "s",
        },
        refusal: "please add privilege WRITE_DATA on [root.r6.d2.s]",
        grant: "WRITE_DATA ON root.r6.d2.**",
    },
    Case {
        setup: &["create database root.r7"],
        action: Action::CreateAlignedTimeseries {
            device: "root.r7.d",
            measurements: &["a", "b"],
        },
        refusal: "please add privilege WRITE_SCHEMA on [root.r7.d.a, root.r7.d.b]",
        grant: "WRITE_SCHEMA ON root.r7.d.**",
    },
    Case {
        setup: &[
            "create database root.r8",
            "grant write_schema on root.r8.d.** to user case",
        ],
        action: Action::CreateMultiTimeseries(&["root.r8.d.a", "root.r8.e.b"]),
        refusal: "please add privilege WRITE_SCHEMA on [root.r8.e.b]",
        grant: "WRITE_SCHEMA ON root.r8.e.**",
    },
];

/// Calls the RPC `method` with `req` (argument field 1) and returns the status it answers.
async fn call_status<Req: TSerializable>(
    client: &mut Client,
    method: &str,
    req: &Req,
) -> t::TSStatus {
    client.connection().call(method, 1, req).await.unwrap()
}

/// The data types, encodings and compressors of `n` INT64 series, PLAIN and uncompressed, as the
/// series-creating RPCs take them (IoTDB's codes: INT64 2, PLAIN 0, UNCOMPRESSED 0).
fn int64_plain_uncompressed(n: usize) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    (vec![2; n], vec![0; n], vec![0; n])
}

/// Runs `action` on `client`'s session: `Ok` or the refusal's status.
async fn run(client: &mut Client, action: &Action) -> Result<(), t::TSStatus> {
    let session = client.session_id();
    let status: t::TSStatus = match action {
        Action::Sql(sql) => {
            return match client.execute(sql).await {
                Ok(Outcome::Done(_)) => Ok(()),
                Ok(Outcome::Rows(rs)) => {
                    client.collect(rs).await.unwrap();
                    Ok(())
                }
                Err(ClientError::Status(status)) => Err(status),
                Err(e) => panic!("{sql}: {e}"),
            }
        }
        Action::InsertStringRecord {
            device,
            measurement,
        } => {
            let req = t::TSInsertStringRecordReq::new(
                session,
                device.to_string(),
                vec![measurement.to_string()],
                vec!["7".into()],
                1,
                false,
                None,
            );
            call_status(client, "insertStringRecord", &req).await
        }
        Action::InsertTablet {
            device,
            measurement,
        } => {
            let column = Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64(vec![7]),
            };
            let req = insert_tablet_request(
                session,
                device,
                vec![measurement.to_string()],
                &[column],
                &[1],
            );
            call_status(client, "insertTablet", &req).await
        }
        Action::InsertStringRecords {
            devices,
            measurement,
        } => {
            let req = t::TSInsertStringRecordsReq::new(
                session,
                devices.iter().map(|d| d.to_string()).collect(),
                devices
                    .iter()
                    .map(|_| vec![measurement.to_string()])
                    .collect(),
                devices.iter().map(|_| vec!["7".to_string()]).collect(),
                devices.iter().map(|_| 1).collect(),
                false,
            );
            call_status(client, "insertStringRecords", &req).await
        }
        Action::CreateAlignedTimeseries {
            device,
            measurements,
        } => {
            let (types, encodings, compressors) = int64_plain_uncompressed(measurements.len());
            let req = t::TSCreateAlignedTimeseriesReq {
                session_id: session,
                prefix_path: device.to_string(),
                measurements: measurements.iter().map(|m| m.to_string()).collect(),
                data_types: types,
                encodings,
                compressors,
                measurement_alias: None,
                tags_list: None,
                attributes_list: None,
            };
            call_status(client, "createAlignedTimeseries", &req).await
        }
        Action::CreateMultiTimeseries(paths) => {
            let (types, encodings, compressors) = int64_plain_uncompressed(paths.len());
            let req = t::TSCreateMultiTimeseriesReq {
                session_id: session,
                paths: paths.iter().map(|p| p.to_string()).collect(),
                data_types: types,
                encodings,
                compressors,
                props_list: None,
                tags_list: None,
                attributes_list: None,
                measurement_alias_list: None,
            };
            call_status(client, "createMultiTimeseries", &req).await
        }
        Action::DeleteData(path) => {
            let req = t::TSDeleteDataReq::new(session, vec![path.to_string()], 0, 10);
            call_status(client, "deleteData", &req).await
        }
        Action::CreateTimeseries(path) => {
            let req = t::TSCreateTimeseriesReq::new(
                session,
                path.to_string(),
                2,
                0,
                0,
                None,
                None,
                None,
                None,
            );
            call_status(client, "createTimeseries", &req).await
        }
    };
    if status.code == 200 {
        Ok(())
    } else {
        Err(status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_statement_family_and_rpc_needs_its_privilege() {
    let server = Duetd::start().unwrap();
    let mut root = connect(&server, "root", "root").await;
    for (n, case) in CASES.iter().enumerate() {
        let user = format!("case{n}");
        root.execute_update(&format!("create user {user} 'secret12'"))
            .await
            .unwrap();
        for sql in case.setup {
            // `user case` in a set-up statement is this case's user.
            let sql = sql.replace("user case", &format!("user {user}"));
            root.execute_update(&sql)
                .await
                .unwrap_or_else(|e| panic!("case {n} set-up {sql}: {e}"));
        }
        let mut client = Client::connect(&options(&server, &user, "secret12"))
            .await
            .unwrap();
        let refused = run(&mut client, &case.action)
            .await
            .expect_err(&format!("case {n} ran without {}", case.grant));
        assert_eq!(refused.code, 803, "case {n}: {refused:?}");
        let message = refused.message.clone().unwrap_or_default();
        assert_eq!(
            message,
            format!("No permissions for this operation, {}", case.refusal),
            "case {n}"
        );
        // Granted while the session is open: its next request has it.
        root.execute_update(&format!("grant {} to user {user}", case.grant))
            .await
            .unwrap();
        run(&mut client, &case.action)
            .await
            .unwrap_or_else(|s| panic!("case {n} with {}: {s:?}", case.grant));
    }
}

async fn count_series(client: &mut Client, pattern: &str) -> i64 {
    let Outcome::Rows(rs) = client
        .execute(&format!("count timeseries {pattern}"))
        .await
        .unwrap()
    else {
        panic!("count timeseries gave no rows")
    };
    let (_, blocks) = client.collect(rs).await.unwrap();
    match &blocks[0].columns[0].values {
        duet_proto::types::ColumnValues::Int64(v) => v[0],
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_dropped_users_reach_open_sessions() {
    let (_server, mut root, mut eve) = start_with_user(
        "eve",
        &[
            "create role readers",
            "insert into root.o.d(time, s) values (1, 1)",
            "grant read_schema on root.o.** to role readers",
            "grant role readers to eve",
        ],
    )
    .await;
    assert_eq!(count_series(&mut eve, "root.**").await, 1);
    // Taking the role away hides the series from the open session's next request.
    update(&mut root, "revoke role readers from eve").await;
    assert_eq!(count_series(&mut eve, "root.**").await, 0);
    update(&mut root, "grant role readers to eve").await;
    assert_eq!(count_series(&mut eve, "root.**").await, 1);
    // Revoking from the role reaches its users.
    update(&mut root, "revoke read_schema on root.** from role readers").await;
    assert_eq!(count_series(&mut eve, "root.**").await, 0);
    // A dropped user's open session ends: its next request is answered "not logged in".
    update(&mut root, "drop user eve").await;
    match eve.execute("count timeseries root.**").await {
        Err(ClientError::Status(status)) => assert_eq!(status.code, 802, "{status:?}"),
        Err(e) => panic!("expected 802, got {e}"),
        Ok(_) => panic!("a dropped user's session still ran a statement"),
    }
    // Re-creating the name gives a new account with nothing, not the old session back.
    update(&mut root, "create user eve 'secret12'").await;
    assert!(eve.execute("count timeseries root.**").await.is_err());
}

/// Logs in and returns the refusal's code and message, and how long the answer took.
async fn failed_login(server: &Duetd, user: &str, password: &str) -> (i32, String, Duration) {
    let started = Instant::now();
    match Client::connect(&options(server, user, password)).await {
        Ok(_) => panic!("{user}/{password} logged in"),
        Err(ClientError::Status(status)) => (
            status.code,
            status.message.unwrap_or_default(),
            started.elapsed(),
        ),
        Err(e) => panic!("{user}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_slowed_down_and_locked_out() {
    let (server, _dir) = start_with_config(
        "failed_login_attempts = 3\nfailed_login_attempts_per_user = 1000\npassword_lock_time_minutes = 10\nfailed_login_delay_ms = 300\n",
    );
    let mut root = connect(&server, "root", "root").await;
    update(&mut root, "create user mallet 'secret12'").await;
    update(&mut root, "create user other 'secret34'").await;

    // One answer for an unknown user and a wrong password, each after the delay.
    let (unknown_code, unknown_text, unknown_took) =
        failed_login(&server, "nobody_here", "secret12").await;
    let (wrong_code, wrong_text, wrong_took) = failed_login(&server, "mallet", "wrong999").await;
    assert_eq!(
        (unknown_code, unknown_text.as_str()),
        (801, "Authentication failed.")
    );
    assert_eq!(
        (wrong_code, wrong_text.as_str()),
        (801, "Authentication failed.")
    );
    assert!(
        unknown_took >= Duration::from_millis(300),
        "{unknown_took:?}"
    );
    assert!(wrong_took >= Duration::from_millis(300), "{wrong_took:?}");

    // The third failure locks mallet from this address: even the right password is refused.
    failed_login(&server, "mallet", "wrong999").await;
    let (code, _, _) = failed_login(&server, "mallet", "wrong999").await;
    assert_eq!(code, 801, "the third failure is still answered as one");
    let (locked_code, locked_text, _) = failed_login(&server, "mallet", "wrong999").await;
    assert_eq!(
        (locked_code, locked_text.as_str()),
        (822, "Account is blocked due to consecutive failed logins.")
    );
    let (code, _, _) = failed_login(&server, "mallet", "secret12").await;
    assert_eq!(code, 822);
    // An unknown name locks the same way, so a lock tells nothing about which names exist.
    failed_login(&server, "nobody_here", "x1234").await;
    failed_login(&server, "nobody_here", "x1234").await;
    let (code, _, _) = failed_login(&server, "nobody_here", "x1234").await;
    assert_eq!(code, 822);
    // Other users, and root from this machine, are not affected.
    connect(&server, "other", "secret34").await;
    for _ in 0..4 {
        failed_login(&server, "root", "wrong999").await;
    }
    connect(&server, "root", "root").await;
    let log = server.log();
    assert!(
        log.contains("login locked for this user from this address"),
        "the lock is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_passwords_follow_iotdb_rules() {
    let server = Duetd::start().unwrap();
    let mut root = connect(&server, "root", "root").await;
    for (sql, code) in [
        ("create user pw1 'abc'", 303),
        ("create user pw1 'has space1'", 303),
        ("create user pw1 'dot.ted1'", 303),
        ("create user pw1 'aZ9!@#$%^&*()_+-='", 200),
    ] {
        match root.execute_update(sql).await {
            Ok(()) => assert_eq!(code, 200, "{sql}"),
            Err(ClientError::Status(status)) => assert_eq!(status.code, code, "{sql}: {status:?}"),
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    connect(&server, "pw1", "aZ9!@#$%^&*()_+-=").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_filtered_not_refused() {
    let (_server, mut root, mut reader) = start_with_user(
        "reader",
        &[
            "insert into root.f.d1(time, s) values (1, 1)",
            "insert into root.f.d2(time, s) values (1, 2)",
            "grant read_data on root.f.d1.** to user reader",
        ],
    )
    .await;
    // SQL: the unreadable series is left out of the result.
    let Outcome::Rows(rs) = reader.execute("select s from root.f.**").await.unwrap() else {
        panic!("no rows")
    };
    assert_eq!(rs.header(), vec!["Time", "root.f.d1.s"]);
    reader.collect(rs).await.unwrap();
    // The raw-data RPC on both series: answered, with only the readable one.
    let both = ["root.f.d1.s", "root.f.d2.s"];
    let resp = raw_data_query(&mut reader, &both).await.unwrap();
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    assert_eq!(resp.columns.unwrap_or_default(), vec!["root.f.d1.s"]);
    // Nothing to read: an empty answer, not a refusal.
    update(&mut root, "revoke read_data on root.** from user reader").await;
    let resp = raw_data_query(&mut reader, &both).await.unwrap();
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    assert!(resp.columns.unwrap_or_default().is_empty());
}
