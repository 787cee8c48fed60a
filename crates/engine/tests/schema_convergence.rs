//! Two instances that make conflicting schema changes at the same time converge once each has applied
//! the other's, in whichever order they arrive: every object's last change wins by version, as points
//! do (issue 10). Each engine logs its local changes; the test reads the other's log and applies its
//! entries through `apply_replicated`, as a pipe's receiver does, sometimes twice and out of order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use duet_catalog::{Catalog, ImmutableSettings};
use duet_engine::{Engine, Output, SessionContext};
use duet_storage::{LogEntry, LogRead, Op, Origin, Storage, StorageOptions, Version};

struct Instance {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    catalog: Arc<Catalog>,
    instance: u64,
}

fn open(instance: u64) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(
        &dir.path().join("catalog"),
        &ImmutableSettings {
            timestamp_precision: "ms".into(),
            cluster_id: None,
        },
    )
    .unwrap();
    let storage = Storage::open(
        &dir.path().join("storage"),
        StorageOptions {
            instance,
            ..StorageOptions::default()
        },
    )
    .unwrap();
    let catalog = Arc::new(catalog);
    let engine = Engine::open(catalog.clone(), storage, "ms").unwrap();
    Instance {
        _dir: dir,
        engine,
        catalog,
        instance,
    }
}

impl Instance {
    async fn exec(&self, sql: &str) -> Output {
        let ctx = SessionContext {
            zone_id: "UTC".into(),
        };
        let statement = duet_parser::parse(sql).unwrap().pop().unwrap();
        self.engine.execute(&ctx, &statement).await.unwrap()
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match self.exec(sql).await {
            Output::Table(t) => (0..t.n_rows)
                .map(|r| t.columns.iter().map(|c| c.render(r)).collect())
                .collect(),
            Output::Stream(mut s) => {
                let mut out = Vec::new();
                while let Some(page) = s.source.next_page(1024, 1 << 20).unwrap() {
                    for r in 0..page.times.len() {
                        let mut row = vec![page.times[r].to_string()];
                        row.extend(page.columns.iter().map(|c| c.render(r)));
                        out.push(row);
                    }
                }
                out
            }
            Output::Done => Vec::new(),
        }
    }

    /// The local entries of this instance's log that carry a schema change (what a pipe with
    /// `inclusion`='all' sends), from `from` on.
    fn schema_entries(&self, from: u64) -> Vec<LogEntry> {
        let LogRead::Entries(entries) = self.engine.storage().read_log(from, 10_000).unwrap()
        else {
            panic!("log truncated")
        };
        entries
            .into_iter()
            .filter(|e| e.origin == Origin::Local)
            .filter(|e| e.ops.iter().any(|op| matches!(op, Op::Meta(_))))
            .collect()
    }

    async fn apply(&self, from: &Instance, entries: &[LogEntry]) {
        for e in entries {
            self.engine
                .apply_replicated(
                    Origin::Pipe {
                        instance: from.instance,
                    },
                    e.version,
                    e.ops.clone(),
                )
                .await
                .unwrap();
        }
    }

    fn head(&self) -> u64 {
        self.engine.storage().head()
    }

    /// Every local entry of this instance's log from `from` on.
    fn local_entries(&self, from: u64) -> Vec<LogEntry> {
        let LogRead::Entries(entries) = self.engine.storage().read_log(from, 10_000).unwrap()
        else {
            panic!("log truncated")
        };
        entries
            .into_iter()
            .filter(|e| e.origin == Origin::Local)
            .collect()
    }

    /// Moves this instance's clock past `entries`' versions without applying them (an empty
    /// entry at the highest of them).
    async fn observe(&self, entries: &[LogEntry]) {
        if let Some(v) = entries.iter().map(|e| e.version).max() {
            self.engine
                .storage()
                .write(
                    Origin::Pipe {
                        instance: v.instance,
                    },
                    Some(v),
                    Vec::new(),
                )
                .await
                .unwrap();
        }
    }

    /// The version of the last entry in this instance's log.
    fn last_version(&self) -> Version {
        let LogRead::Entries(entries) = self
            .engine
            .storage()
            .read_log(self.head().saturating_sub(1), 1)
            .unwrap()
        else {
            panic!("log truncated")
        };
        entries.last().unwrap().version
    }
}

#[tokio::test]
async fn concurrent_conflicting_schema_changes_converge_in_any_order() {
    let a = open(1);
    let b = open(2);
    let (from_a, from_b) = (a.head(), b.head());
    // The same series with different types, first on A, then (a later version) on B; a TTL set on
    // A and the same path's TTL set differently on B; a series B deletes that A created before.
    a.exec("create timeseries root.c.d.s with datatype=INT32")
        .await;
    a.exec("insert into root.c.d(time, s) values (1, 1)").await;
    a.exec("create timeseries root.c.d.gone with datatype=INT64")
        .await;
    a.exec("set ttl to root.c.d 1000000").await;
    // B learns A's first changes (as its pipe would have delivered them), then acts on them.
    b.apply(&a, &a.schema_entries(from_a)).await;
    let seen_by_b = a.head();
    b.exec("create timeseries root.c.e.t with datatype=TEXT")
        .await;
    b.exec("delete timeseries root.c.d.gone").await;
    b.exec("set ttl to root.c.d 2000000").await;
    let b_set = b.last_version();
    // Concurrently (neither has the other's yet): A unsets the TTL, B recreates s as DOUBLE.
    a.exec("unset ttl to root.c.d").await;
    let a_unset = a.last_version();
    b.exec("delete timeseries root.c.d.s").await;
    b.exec("create timeseries root.c.d.s with datatype=DOUBLE")
        .await;

    // Deliver everything both ways: B's in reverse order and twice, A's new ones once.
    let mut b_entries = b.schema_entries(from_b);
    b_entries.reverse();
    a.apply(&b, &b_entries).await;
    a.apply(&b, &b_entries).await;
    b.apply(&a, &a.schema_entries(seen_by_b)).await;

    for side in [&a, &b] {
        let series: Vec<(String, String, String)> = side
            .rows("show timeseries root.c.**")
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[3].clone(), r[4].clone()))
            .collect();
        let expected = [
            ("root.c.d.s", "DOUBLE", "GORILLA"),
            ("root.c.e.t", "TEXT", "PLAIN"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(series, expected, "instance {}", side.instance);
        // The TTL: the two changes were concurrent; the one with the higher version wins on both.
        let ttl = side.rows("show ttl on root.c.**").await;
        if a_unset > b_set {
            assert!(ttl.is_empty(), "instance {}: {ttl:?}", side.instance);
        } else {
            assert_eq!(ttl, [["root.c.d", "2000000"]], "instance {}", side.instance);
        }
        // A's INT32 point of the old s stays hidden behind B's newer delete.
        assert!(side.rows("select s from root.c.d").await.is_empty());
    }
}

#[tokio::test]
async fn a_drop_wins_over_an_older_create_below_it_and_loses_to_a_newer_one() {
    let a = open(1);
    let b = open(2);
    let (from_a, from_b) = (a.head(), b.head());
    // Concurrently: A creates `old` under root.x, B creates root.x and drops it.
    a.exec("create timeseries root.x.d.old with datatype=INT64")
        .await;
    b.exec("create database root.x").await;
    b.exec("drop database root.x").await;
    // A learns of the drop, then creates `new` (so after the drop, whatever the clocks say).
    a.apply(&b, &b.schema_entries(from_b)).await;
    a.exec("create timeseries root.x.d.new with datatype=INT64")
        .await;
    b.apply(&a, &a.schema_entries(from_a)).await;
    for side in [&a, &b] {
        let series: Vec<String> = side
            .rows("show timeseries root.x.**")
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        // `old` was created before the drop and is gone everywhere; `new` after it and stays.
        assert_eq!(series, ["root.x.d.new"], "instance {}", side.instance);
    }
}

#[tokio::test]
async fn concurrent_password_changes_converge_to_the_one_with_the_higher_version() {
    let a = open(1);
    let b = open(2);
    let (from_a, from_b) = (a.head(), b.head());
    a.catalog.create_user("ops", "first123").unwrap();
    {
        let _g = a.engine.schema_change_guard().await;
        a.engine.log_user_change("ops").await.unwrap();
    }
    b.apply(&a, &a.schema_entries(from_a)).await;
    let seen = a.head();
    // Both change the password before seeing the other's change; the higher version wins.
    let mut versions = Vec::new();
    for (side, password) in [(&a, "second45"), (&b, "third678")] {
        side.catalog.set_password("ops", password).unwrap();
        let _g = side.engine.schema_change_guard().await;
        side.engine.log_user_change("ops").await.unwrap();
        versions.push(side.last_version());
    }
    let (winner, loser) = if versions[1] > versions[0] {
        ("third678", "second45")
    } else {
        ("second45", "third678")
    };
    let (a_new, b_new) = (a.schema_entries(seen), b.schema_entries(from_b));
    b.apply(&a, &a_new).await;
    a.apply(&b, &b_new).await;
    for side in [&a, &b] {
        let catalog = &side.catalog;
        assert!(
            catalog.authenticate("ops", winner).is_ok(),
            "instance {}",
            side.instance
        );
        assert!(
            catalog.authenticate("ops", loser).is_err(),
            "instance {}",
            side.instance
        );
    }
}

#[tokio::test]
async fn a_write_older_than_a_drop_does_not_bring_its_series_back() {
    let a = open(1);
    let b = open(2);
    let (from_a, from_b) = (a.head(), b.head());
    a.exec("create timeseries root.y.d.s with datatype=INT64")
        .await;
    b.apply(&a, &a.schema_entries(from_a)).await;
    let seen = a.head();
    // B writes to the series; then (after it, by B's clock) A drops the database, not having seen
    // B's write.
    b.exec("insert into root.y.d(time, s) values (1, 1)").await;
    let b_writes = b.local_entries(from_b);
    // A's clock passes B's write (as any message from B would make it): A's drop is the newer
    // change, although A has not applied the write.
    a.observe(&b_writes).await;
    a.exec("drop database root.y").await;
    // Delivered crossed: B's write reaches A after A's drop; A's drop reaches B.
    a.apply(&b, &b_writes).await;
    b.apply(&a, &a.schema_entries(seen)).await;
    for side in [&a, &b] {
        assert!(
            side.rows("show timeseries root.y.**").await.is_empty(),
            "instance {}",
            side.instance
        );
        assert!(side.rows("select s from root.y.d").await.is_empty());
    }
}
