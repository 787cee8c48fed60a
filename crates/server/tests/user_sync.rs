//! User accounts through double-living pipes with `'inclusion'='all'`: an account created on one
//! instance logs in on the other with the same password, a password changed on either side works on
//! both (the old one on neither), and a dropped account is gone everywhere. Issue 10.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientOptions};
use duet_testkit::{wait_for, Duetd};

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

#[test]
fn accounts_and_passwords_reach_the_peer_and_drops_remove_them() {
    let a = Duetd::start().unwrap();
    let b = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = |s: &Duetd| {
        rt.block_on(Client::connect(&as_user(s, "root", "root")))
            .unwrap()
    };
    let (mut on_a, mut on_b) = (root(&a), root(&b));
    for (client, peer) in [(&mut on_a, &b), (&mut on_b, &a)] {
        rt.block_on(client.execute_update(&format!(
            "create pipe p with source ('source.mode.double-living'='true', 'source.inclusion'='all') \
             with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
            peer.port()
        )))
        .unwrap();
    }
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
