//! User accounts through double-living pipes with `'inclusion'='all'`: an account created on one
//! instance logs in on the other with the same password, a password changed on either side works on
//! both (the old one on neither), and a dropped account is gone everywhere (issue 10); roles and
//! grants travel the same way (issue 13).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_testkit::{wait_for, Duetd};

mod common;
use common::{create_pipe_to, start_with_config};

/// A server whose logins are never locked out: these tests poll logins that fail until an account
/// arrives, which the lockout would otherwise count.
fn start() -> (Duetd, tempfile::TempDir) {
    start_with_config(
        "failed_login_attempts = 0\nfailed_login_attempts_per_user = 0\nfailed_login_delay_ms = 0\n",
    )
}

fn as_user(server: &Duetd, user: &str, password: &str) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        user: user.into(),
        password: password.into(),
        ..ClientOptions::default()
    }
}

fn logs_in(rt: &tokio::runtime::Runtime, server: &Duetd, user: &str, password: &str) -> bool {
    rt.block_on(Client::connect(&as_user(server, user, password)))
        .is_ok()
}

/// Two servers as [`start`] makes them, a double-living pipe with `'inclusion'='all'` from each to
/// the other, a root session on each, and the servers' config directories.
fn double_living_pair(
    rt: &tokio::runtime::Runtime,
) -> (Duetd, Duetd, Client, Client, [tempfile::TempDir; 2]) {
    let (a, a_dir) = start();
    let (b, b_dir) = start();
    let root = |s: &Duetd| {
        rt.block_on(Client::connect(&as_user(s, "root", "root")))
            .unwrap()
    };
    let (mut on_a, mut on_b) = (root(&a), root(&b));
    for (client, peer) in [(&mut on_a, &b), (&mut on_b, &a)] {
        let source = "'source.mode.double-living'='true', 'source.inclusion'='all'";
        rt.block_on(client.execute_update(&create_pipe_to("p", source, peer)))
            .unwrap();
    }
    (a, b, on_a, on_b, [a_dir, b_dir])
}

#[test]
fn accounts_and_passwords_reach_the_peer_and_drops_remove_them() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b, mut on_a, mut on_b, _dirs) = double_living_pair(&rt);
    let within = Duration::from_secs(20);

    rt.block_on(on_a.execute_update("create user ops 'first123'"))
        .unwrap();
    wait_for("ops to log in on B", within, || {
        logs_in(&rt, &b, "ops", "first123").then_some(())
    })
    .unwrap();

    rt.block_on(on_b.execute_update("alter user ops set password 'second45'"))
        .unwrap();
    wait_for("the new password on A", within, || {
        logs_in(&rt, &a, "ops", "second45").then_some(())
    })
    .unwrap();
    assert!(!logs_in(&rt, &a, "ops", "first123"));
    assert!(!logs_in(&rt, &b, "ops", "first123"));

    rt.block_on(on_a.execute_update("drop user ops")).unwrap();
    wait_for("ops to be gone on B", within, || {
        (!logs_in(&rt, &b, "ops", "second45")).then_some(())
    })
    .unwrap();
    // Root is never dropped through a pipe, and the pipes are still fine.
    assert!(logs_in(&rt, &b, "root", "root"));
}

/// Whether `sql` runs for `user` on `server` (a refusal or a failed login is `false`).
fn runs(
    rt: &tokio::runtime::Runtime,
    server: &Duetd,
    user: &str,
    password: &str,
    sql: &str,
) -> bool {
    rt.block_on(async {
        let Ok(mut client) = Client::connect(&as_user(server, user, password)).await else {
            return false;
        };
        match client.execute(sql).await {
            Ok(_) => true,
            Err(ClientError::Status(_)) => false,
            Err(e) => panic!("{sql}: {e}"),
        }
    })
}

#[test]
fn roles_and_grants_reach_the_peer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b, mut on_a, mut on_b, _dirs) = double_living_pair(&rt);
    // Generous: a loaded CI machine sends retried batches after a backoff.
    let within = Duration::from_secs(60);
    for sql in [
        "create user ops 'first123'",
        "create role pipers",
        "grant use_pipe on root.** to role pipers",
        "grant role pipers to ops",
        "grant maintain on root.** to user ops",
    ] {
        rt.block_on(on_a.execute_update(sql)).unwrap();
    }
    // On B, ops holds the role's privilege and its own.
    wait_for("ops's privileges on B", within, || {
        (runs(&rt, &b, "ops", "first123", "show pipes")
            && runs(&rt, &b, "ops", "first123", "show variables"))
        .then_some(())
    })
    .unwrap();
    // A revocation on B reaches A.
    rt.block_on(on_b.execute_update("revoke role pipers from ops"))
        .unwrap();
    wait_for("the role taken from ops on A", within, || {
        (!runs(&rt, &a, "ops", "first123", "show pipes")).then_some(())
    })
    .unwrap();
    assert!(runs(&rt, &a, "ops", "first123", "show variables"));
    // A dropped role is gone on both.
    rt.block_on(on_a.execute_update("drop role pipers"))
        .unwrap();
    wait_for("pipers dropped on B", within, || {
        (!runs(&rt, &b, "root", "root", "list privileges of role pipers")).then_some(())
    })
    .unwrap();
}
