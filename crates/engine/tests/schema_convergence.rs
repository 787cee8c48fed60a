//! Two instances that make conflicting schema changes at the same time converge once each has applied
//! the other's, in whichever order they arrive: every object's last change wins by version, as points
//! do (issue 10). Each engine logs its local changes; the test reads the other's log and applies its
//! entries through `apply_replicated`, as a pipe's receiver does, sometimes twice and out of order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use duet_catalog::Catalog;
use duet_engine::{Engine, EngineError, Output};
use duet_storage::{LogEntry, LogRead, Op, Origin, Version};

struct Instance {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    catalog: Arc<Catalog>,
    instance: u64,
}

fn open(instance: u64) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, engine) = common::open_engine(dir.path(), instance);
    Instance {
        _dir: dir,
        engine,
        catalog,
        instance,
    }
}

/// Instances 1 and 2, each with the head of its log before the test's changes.
fn pair() -> (Instance, Instance, u64, u64) {
    let (a, b) = (open(1), open(2));
    let (from_a, from_b) = (a.head(), b.head());
    (a, b, from_a, from_b)
}

/// `entries` in reverse order (a crossed delivery).
fn reversed(entries: &[LogEntry]) -> Vec<LogEntry> {
    entries.iter().rev().cloned().collect()
}

impl Instance {
    async fn exec(&self, sql: &str) -> Output {
        common::execute(&self.engine, sql).await
    }

    /// Runs each statement in order.
    async fn exec_all(&self, sqls: &[&str]) {
        for sql in sqls {
            self.exec(sql).await;
        }
    }

    async fn try_exec(&self, sql: &str) -> Result<Output, EngineError> {
        common::try_execute(&self.engine, sql).await
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        common::rows(self.exec(sql).await)
    }

    /// Whether `sql` returns no row.
    async fn shows_nothing(&self, sql: &str) -> bool {
        self.rows(sql).await.is_empty()
    }

    /// Column `index` of every row of `sql`.
    async fn column(&self, sql: &str, index: usize) -> Vec<String> {
        self.rows(sql)
            .await
            .into_iter()
            .map(|r| r[index].clone())
            .collect()
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

    /// The local entries of this instance's log that carry a schema change (what a pipe with
    /// `inclusion`='all' sends), from `from` on.
    fn schema_entries(&self, from: u64) -> Vec<LogEntry> {
        self.local_entries(from)
            .into_iter()
            .filter(|e| e.ops.iter().any(|op| matches!(op, Op::Meta(_))))
            .collect()
    }

    /// Applies one entry of `from`'s log as its pipe's receiver does.
    async fn apply_entry(&self, from: &Instance, entry: &LogEntry) -> Result<(), EngineError> {
        self.engine
            .apply_replicated(
                Origin::Pipe {
                    instance: from.instance,
                },
                entry.version,
                entry.ops.clone(),
            )
            .await
            .map(|_| ())
    }

    async fn apply(&self, from: &Instance, entries: &[LogEntry]) {
        for e in entries {
            self.apply_entry(from, e).await.unwrap();
        }
    }

    /// Applies `from`'s schema changes since `since` (as its pipe would deliver them) and returns
    /// the head of `from`'s log, where its next changes start.
    async fn catch_up(&self, from: &Instance, since: u64) -> u64 {
        self.apply(from, &from.schema_entries(since)).await;
        from.head()
    }

    /// Applies `entries` as a pipe does: an entry refused for now (a dependency that an earlier
    /// entry brings has not been applied yet) is sent again after the others, until all are applied;
    /// refusals that never resolve fail the test.
    async fn apply_retrying(&self, from: &Instance, entries: &[LogEntry]) {
        let mut pending: Vec<&LogEntry> = entries.iter().collect();
        while !pending.is_empty() {
            let mut refused = Vec::new();
            let mut last_error = None;
            for e in &pending {
                if let Err(error) = self.apply_entry(from, e).await {
                    last_error = Some(error);
                    refused.push(*e);
                }
            }
            assert!(
                refused.len() < pending.len(),
                "instance {}: entries refused for good: {last_error:?}",
                self.instance
            );
            pending = refused;
        }
    }

    /// Applies `entries` crossed with this instance's own changes: reversed, then again in order.
    async fn apply_crossed(&self, from: &Instance, entries: &[LogEntry]) {
        self.apply_retrying(from, &reversed(entries)).await;
        self.apply_retrying(from, entries).await;
    }

    fn head(&self) -> u64 {
        self.engine.storage().head()
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
    let (a, b, from_a, from_b) = pair();
    // The same series with different types, first on A, then (a later version) on B; a TTL set on
    // A and the same path's TTL set differently on B; a series B deletes that A created before.
    a.exec_all(&[
        "create timeseries root.c.d.s with datatype=INT32",
        "insert into root.c.d(time, s) values (1, 1)",
        "create timeseries root.c.d.gone with datatype=INT64",
        "set ttl to root.c.d 1000000",
    ])
    .await;
    // B learns A's first changes (as its pipe would have delivered them), then acts on them.
    let seen_by_b = b.catch_up(&a, from_a).await;
    b.exec_all(&[
        "create timeseries root.c.e.t with datatype=TEXT",
        "delete timeseries root.c.d.gone",
        "set ttl to root.c.d 2000000",
    ])
    .await;
    let b_set = b.last_version();
    // Concurrently (neither has the other's yet): A unsets the TTL, B recreates s as DOUBLE.
    a.exec("unset ttl to root.c.d").await;
    let a_unset = a.last_version();
    b.exec_all(&[
        "delete timeseries root.c.d.s",
        "create timeseries root.c.d.s with datatype=DOUBLE",
    ])
    .await;

    // Deliver everything both ways: B's in reverse order and twice, A's new ones once.
    let b_entries = reversed(&b.schema_entries(from_b));
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
        assert!(side.shows_nothing("select s from root.c.d").await);
    }
}

#[tokio::test]
async fn a_drop_wins_over_an_older_create_below_it_and_loses_to_a_newer_one() {
    let (a, b, from_a, from_b) = pair();
    // Concurrently: A creates `old` under root.x, B creates root.x and drops it.
    a.exec("create timeseries root.x.d.old with datatype=INT64")
        .await;
    b.exec_all(&["create database root.x", "drop database root.x"])
        .await;
    // A learns of the drop, then creates `new` (so after the drop, whatever the clocks say).
    a.apply(&b, &b.schema_entries(from_b)).await;
    a.exec("create timeseries root.x.d.new with datatype=INT64")
        .await;
    b.apply(&a, &a.schema_entries(from_a)).await;
    for side in [&a, &b] {
        let series = side.column("show timeseries root.x.**", 0).await;
        // `old` was created before the drop and is gone everywhere; `new` after it and stays.
        assert_eq!(series, ["root.x.d.new"], "instance {}", side.instance);
    }
}

#[tokio::test]
async fn concurrent_password_changes_converge_to_the_one_with_the_higher_version() {
    let (a, b, from_a, from_b) = pair();
    a.catalog.create_user("ops", "first123").unwrap();
    {
        let _g = a.engine.schema_change_guard().await;
        a.engine.log_user_change("ops").await.unwrap();
    }
    let seen = b.catch_up(&a, from_a).await;
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
    let (a, b, from_a, from_b) = pair();
    a.exec("create timeseries root.y.d.s with datatype=INT64")
        .await;
    let seen = b.catch_up(&a, from_a).await;
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
            side.shows_nothing("show timeseries root.y.**").await,
            "instance {}",
            side.instance
        );
        assert!(side.shows_nothing("select s from root.y.d").await);
    }
}

/// Sorted rows of a statement, for comparing two instances.
async fn sorted_rows(side: &Instance, sql: &str) -> Vec<Vec<String>> {
    let mut rows = side.rows(sql).await;
    rows.sort();
    rows
}

/// A creates device template t (s1 INT32) and sets it on root.t, and B applies both: where the
/// races of an activation with an unset start. Returns the head of A's log after them.
async fn template_t_set_on_root_t(a: &Instance, b: &Instance, from_a: u64) -> u64 {
    a.exec_all(&[
        "create device template t (s1 INT32 encoding=RLE)",
        "set device template t to root.t",
    ])
    .await;
    b.catch_up(a, from_a).await
}

#[tokio::test]
async fn a_concurrent_unset_and_activation_of_a_template_converge() {
    let (a, b, from_a, from_b) = pair();
    let seen = template_t_set_on_root_t(&a, &b, from_a).await;
    // Concurrently: A activates a device under the set path and writes to it, B unsets the
    // template from it.
    a.exec_all(&[
        "create timeseries using device template on root.t.d1",
        "insert into root.t.d1(time, s1) values (1, 1)",
    ])
    .await;
    b.exec("unset device template t from root.t").await;
    let b_entries = reversed(&b.schema_entries(from_b));
    a.apply_retrying(&b, &b_entries).await;
    a.apply_retrying(&b, &b_entries).await;
    let a_entries = a.local_entries(seen);
    b.apply_retrying(&a, &a_entries).await;
    b.apply_retrying(&a, &a_entries).await;
    // The unset wins over the activation that depends on it, on both sides.
    for side in [&a, &b] {
        assert!(
            side.shows_nothing("show paths set device template t").await,
            "instance {}",
            side.instance
        );
        assert!(side.shows_nothing("show timeseries root.t.**").await);
        assert!(side.shows_nothing("show devices root.t.**").await);
    }
    // A's point went with the activation; B dropped it on arrival (each delivery counted).
    assert!(b.engine.points_dropped_for_type() >= 1);
}

#[tokio::test]
async fn a_template_dropped_on_one_side_while_set_on_the_other_converges() {
    // The drop made before or after the set by the clock: concurrent either way.
    for drop_is_older in [false, true] {
        let (a, b, from_a, from_b) = pair();
        a.exec("create device template t (s1 INT32 encoding=RLE)")
            .await;
        let seen = b.catch_up(&a, from_a).await;
        // Concurrently: A sets the template and activates it on a device, B drops it.
        if drop_is_older {
            b.exec("drop device template t").await;
            a.observe(&b.schema_entries(from_b)).await;
        }
        a.exec_all(&[
            "set device template t to root.u",
            "create timeseries using device template on root.u.d1",
        ])
        .await;
        if !drop_is_older {
            b.observe(&a.schema_entries(seen)).await;
            b.exec("drop device template t").await;
        }
        let (a_entries, b_entries) = (a.schema_entries(seen), b.schema_entries(from_b));
        // Crossed, A's reversed and twice.
        b.apply_crossed(&a, &a_entries).await;
        a.apply_retrying(&b, &b_entries).await;
        // The drop takes the set and activation made on the creation it removed, on both sides.
        for side in [&a, &b] {
            assert!(
                side.shows_nothing("show device templates").await,
                "instance {}, drop older: {drop_is_older}",
                side.instance
            );
            assert!(side.shows_nothing("show timeseries root.u.**").await);
        }
        assert_eq!(schema_state(&a).await, schema_state(&b).await);
    }
}

#[tokio::test]
async fn concurrent_definitions_of_one_template_converge_to_the_newer() {
    let (a, b, from_a, from_b) = pair();
    // The same template name, defined differently on both sides at once; A also sets it and
    // activates it on a device before it sees B's.
    a.exec_all(&[
        "create device template t (s1 INT32 encoding=RLE, s2 INT64 encoding=RLE)",
        "set device template t to root.v",
        "create timeseries using device template on root.v.d1",
    ])
    .await;
    b.exec("create device template t (s1 DOUBLE encoding=GORILLA, s3 TEXT encoding=PLAIN)")
        .await;
    let a_created = a.schema_entries(from_a)[0].version;
    let b_created = b.last_version();
    let (a_entries, b_entries) = (a.schema_entries(from_a), b.schema_entries(from_b));
    b.apply_crossed(&a, &a_entries).await;
    a.apply_retrying(&b, &b_entries).await;
    a.apply_retrying(&b, &b_entries).await;
    let expected: Vec<Vec<String>> = if b_created > a_created {
        vec![
            vec!["s1".into(), "DOUBLE".into(), "GORILLA".into(), "LZ4".into()],
            vec!["s3".into(), "TEXT".into(), "PLAIN".into(), "LZ4".into()],
        ]
    } else {
        vec![
            vec!["s1".into(), "INT32".into(), "RLE".into(), "LZ4".into()],
            vec!["s2".into(), "INT64".into(), "RLE".into(), "LZ4".into()],
        ]
    };
    for side in [&a, &b] {
        assert_eq!(
            sorted_rows(side, "show nodes in device template t").await,
            expected,
            "instance {}",
            side.instance
        );
    }
    // The activated device follows the winning definition on both sides.
    let on_a = sorted_rows(&a, "show timeseries root.v.**").await;
    assert_eq!(on_a, sorted_rows(&b, "show timeseries root.v.**").await);
    assert_eq!(on_a.len(), 2, "{on_a:?}");
}

#[tokio::test]
async fn a_local_drop_whose_entry_fails_to_log_changes_nothing() {
    let a = open(1);
    a.exec_all(&[
        "create timeseries root.w.d.s with datatype=INT64",
        "insert into root.w.d(time, s) values (1, 1)",
    ])
    .await;
    // The log refuses the drop's entry (a full disk): the database and its data stay, as if the
    // statement had not run.
    a.engine.storage().fail_next_append();
    assert!(a.try_exec("drop database root.w").await.is_err());
    assert_eq!(a.rows("show databases root.w").await.len(), 1);
    assert_eq!(a.rows("select s from root.w.d").await.len(), 1);
    // Run again, it drops the database with its data: created again, the series is empty.
    a.exec_all(&[
        "drop database root.w",
        "create timeseries root.w.d.s with datatype=INT64",
    ])
    .await;
    assert!(a.shows_nothing("select s from root.w.d").await);
}

#[tokio::test]
async fn a_replicated_drop_sent_again_after_a_failed_log_write_still_hides_the_data() {
    let a = open(1);
    let b = open(2);
    let from_a = a.head();
    // B has a series of its own under root.z, older than A's drop of the database.
    b.exec_all(&[
        "create timeseries root.z.mine.s with datatype=INT64",
        "insert into root.z.mine(time, s) values (1, 1)",
    ])
    .await;
    a.observe(&b.local_entries(0)).await;
    a.exec_all(&["create database root.z", "drop database root.z"])
        .await;
    let drop = a.schema_entries(from_a);
    // B's log refuses the entry the first time; the pipe sends it again.
    b.engine.storage().fail_next_append();
    let last = drop.last().unwrap();
    assert!(b.apply_entry(&a, last).await.is_err());
    b.apply(&a, &drop).await;
    assert!(b.shows_nothing("show timeseries root.z.**").await);
    // The drop hid B's own older point: a series made again under the name is empty.
    b.exec("create timeseries root.z.mine.s with datatype=INT64")
        .await;
    assert!(b.shows_nothing("select s from root.z.mine").await);
}

#[tokio::test]
async fn points_of_a_type_that_lost_are_dropped_on_arrival_and_both_sides_converge() {
    let (a, b, from_a, from_b) = pair();
    // Concurrently, the same series with two types; B's creation is the newer.
    a.exec("create timeseries root.k.d.s with datatype=INT32")
        .await;
    b.observe(&a.local_entries(from_a)).await;
    b.exec("create timeseries root.k.d.s with datatype=DOUBLE")
        .await;
    // B writes a point right away; A writes one (of its type) after B's creation by the clock,
    // before it has seen it; then B writes another, after A's point.
    b.exec("insert into root.k.d(time, s) values (2, 2.5)")
        .await;
    a.observe(&b.local_entries(from_b)).await;
    a.exec("insert into root.k.d(time, s) values (1, 7)").await;
    b.observe(&a.local_entries(from_a)).await;
    b.exec("insert into root.k.d(time, s) values (3, 3.5)")
        .await;
    let (a_entries, b_entries) = (a.local_entries(from_a), b.local_entries(from_b));
    // Crossed: each side's entries reversed on the other, then again in order.
    b.apply_retrying(&a, &reversed(&a_entries)).await;
    a.apply_retrying(&b, &reversed(&b_entries)).await;
    b.apply_retrying(&a, &a_entries).await;
    a.apply_retrying(&b, &b_entries).await;
    for side in [&a, &b] {
        let series = side.column("show timeseries root.k.**", 3).await;
        assert_eq!(series, ["DOUBLE"], "instance {}", side.instance);
    }
    // A's INT32 point lost with its type; B's point written before it is hidden with it on both
    // sides; B's point written after it stays.
    let on_a = a.rows("select s from root.k.d").await;
    assert_eq!(on_a, b.rows("select s from root.k.d").await);
    assert_eq!(on_a, [["3", "3.5"]]);
    assert!(b.engine.points_dropped_for_type() >= 1);
}

#[tokio::test]
async fn a_series_created_by_a_write_is_versioned_by_it() {
    let (a, b, from_a, from_b) = pair();
    // B creates the series as DOUBLE; A, later by the clock but before it has seen B's creation,
    // creates it as INT64 by writing to it.
    b.exec("create timeseries root.n.d.s with datatype=DOUBLE")
        .await;
    a.observe(&b.local_entries(from_b)).await;
    a.exec("insert into root.n.d(time, s) values (1, 5)").await;
    // The write's entry carries the creation, and the catalog records it at the write's version.
    let a_entries = a.local_entries(from_a);
    assert!(a_entries[0].ops.iter().any(|op| matches!(op, Op::Meta(_))));
    let record = a
        .catalog
        .schema_version("ts:root.n.d\u{1f}s")
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.hlc, record.instance, record.present),
        (
            a_entries[0].version.hlc,
            a_entries[0].version.instance,
            true
        )
    );
    b.apply_retrying(&a, &a_entries).await;
    a.apply_retrying(&b, &b.local_entries(from_b)).await;
    // A's creation is the newer one: INT64 with A's point, on both sides.
    for side in [&a, &b] {
        let types = side.column("show timeseries root.n.**", 3).await;
        assert_eq!(types, ["INT64"], "instance {}", side.instance);
        assert_eq!(side.rows("select s from root.n.d").await, [["1", "5"]]);
    }
}

/// What a statement leaves visible, to compare before and after.
async fn schema_state(side: &Instance) -> Vec<Vec<Vec<String>>> {
    let mut state = Vec::new();
    for sql in [
        "show databases",
        "show timeseries root.**",
        "show devices root.**",
        "show all ttl",
        "show device templates",
        "show paths set device template t",
        "show nodes in device template t",
    ] {
        // A statement about a template that does not exist (yet) is an error: recorded as empty.
        state.push(match side.try_exec(sql).await {
            Ok(_) => sorted_rows(side, sql).await,
            Err(_) => Vec::new(),
        });
    }
    state
}

#[tokio::test]
async fn a_local_schema_change_whose_entry_fails_to_log_changes_nothing() {
    let a = open(1);
    // Each statement, when the log refuses its entry (a full disk), leaves the schema as it was
    // and logs nothing; run again, it is applied and logged (so a peer gets every change A has).
    // (A write's entry carries the schema changes it makes.)
    for sql in [
        "create database root.m",
        "create timeseries root.m.d.s with datatype=INT64",
        "create aligned timeseries root.m.al(a INT32, b DOUBLE)",
        "set ttl to root.m 1000000",
        "unset ttl to root.m",
        "create device template t (s1 INT32 encoding=RLE)",
        "alter device template t add (s2 DOUBLE encoding=GORILLA)",
        "set device template t to root.m.t",
        "create timeseries using device template on root.m.t.d1",
        "deactivate device template t from root.m.t.d1",
        // Writes that create series, a database, or activate and extend a template.
        "insert into root.m.w(time, s) values (1, 1)",
        "insert into root.n.w(time, s) values (1, 1)",
        "insert into root.m.t.d2(time, s1, s3) values (1, 1, 2.5)",
        "deactivate device template t from root.m.t.d2",
        "unset device template t from root.m.t",
        "drop device template t",
    ] {
        let before = schema_state(&a).await;
        let head = a.head();
        a.engine.storage().fail_next_append();
        assert!(
            a.try_exec(sql).await.is_err(),
            "{sql} succeeded without its entry"
        );
        assert_eq!(schema_state(&a).await, before, "{sql} changed the schema");
        assert_eq!(a.head(), head, "{sql}");
        a.exec(sql).await;
        assert_ne!(schema_state(&a).await, before, "{sql} changed nothing");
        assert_eq!(a.schema_entries(head).len(), 1, "{sql} logged no change");
    }
}

#[tokio::test]
async fn a_write_that_activates_a_template_and_a_concurrent_unset_converge_in_either_order() {
    for write_is_newer in [false, true] {
        let (a, b, from_a, from_b) = pair();
        let seen = template_t_set_on_root_t(&a, &b, from_a).await;
        // Concurrently: A's first write to a device under the set path activates the template
        // there (no statement activates it); B unsets the template from the path.
        b.exec("unset device template t from root.t").await;
        let b_entries = b.schema_entries(from_b);
        if write_is_newer {
            a.observe(&b_entries).await;
        }
        a.exec("insert into root.t.d1(time, s1, extra) values (1, 1, 2.5)")
            .await;
        let a_entries = a.local_entries(seen);
        b.apply_crossed(&a, &a_entries).await;
        a.apply_retrying(&b, &b_entries).await;
        for side in [&a, &b] {
            assert_eq!(
                schema_state(side).await,
                schema_state(&a).await,
                "write newer: {write_is_newer}"
            );
            assert!(
                side.shows_nothing("show paths set device template t").await,
                "instance {}, write newer: {write_is_newer}",
                side.instance
            );
            // The unset took the activation (and the series it brought) with it on both sides.
            assert!(
                side.shows_nothing("show timeseries root.t.**").await,
                "instance {}, write newer: {write_is_newer}",
                side.instance
            );
            assert!(side.shows_nothing("select * from root.t.d1").await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_a_drop_of_their_database_converge() {
    let a = open(1);
    let b = open(2);
    let from_a = a.head();
    // Each round: a series exists; a write to it and a drop of its database run at once. Whatever
    // order A gives them, B, applying A's log, must end with A's schema and data.
    for i in 0..40 {
        a.exec(&format!(
            "create timeseries root.r{i}.d.s with datatype=INT64"
        ))
        .await;
        let ctx = common::utc();
        let insert = duet_parser::parse(&format!("insert into root.r{i}.d(time, s) values (1, 1)"))
            .unwrap()
            .pop()
            .unwrap();
        let drop = duet_parser::parse(&format!("drop database root.r{i}"))
            .unwrap()
            .pop()
            .unwrap();
        let (writer, dropper) = (a.engine.clone(), a.engine.clone());
        let (ctx2, ctx3) = (ctx.clone(), ctx.clone());
        let w = tokio::spawn(async move { writer.execute(&ctx2, &insert).await.map(|_| ()) });
        let d = tokio::spawn(async move { dropper.execute(&ctx3, &drop).await.map(|_| ()) });
        w.await.unwrap().unwrap();
        d.await.unwrap().unwrap();
    }
    b.apply_retrying(&a, &a.local_entries(from_a)).await;
    for i in 0..40 {
        let on_a = sorted_rows(&a, &format!("show timeseries root.r{i}.**")).await;
        assert_eq!(
            on_a,
            sorted_rows(&b, &format!("show timeseries root.r{i}.**")).await,
            "round {i}"
        );
        if !on_a.is_empty() {
            assert_eq!(
                a.rows(&format!("select s from root.r{i}.d")).await,
                b.rows(&format!("select s from root.r{i}.d")).await,
                "round {i}"
            );
        }
    }
}

/// `n` orders of `0..len`: reversed, then shuffles from a fixed seed.
fn orders(len: usize, n: usize) -> Vec<Vec<usize>> {
    let mut out = vec![(0..len).rev().collect::<Vec<_>>()];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while out.len() < n {
        let mut order: Vec<usize> = (0..len).collect();
        for i in (1..len).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        out.push(order);
    }
    out
}

#[tokio::test]
async fn template_sets_and_activations_after_a_drop_and_re_creation_converge_in_any_arrival_order()
{
    let a = open(1);
    let from_a = a.head();
    // A drops a template and creates it again, sets it, unsets and sets it again, and activates
    // it on a device: each change after the removal it follows.
    for sql in [
        "create device template t (s1 INT32 encoding=RLE)",
        "set device template t to root.p",
        "unset device template t from root.p",
        "drop device template t",
        "create device template t (s2 DOUBLE encoding=GORILLA)",
        "set device template t to root.p",
        "unset device template t from root.p",
        "set device template t to root.p",
        "create timeseries using device template on root.p.d1",
    ] {
        a.exec(sql).await;
    }
    let entries = a.schema_entries(from_a);
    let expected = schema_state(&a).await;
    assert_eq!(expected[1].len(), 1, "{expected:?}");
    for order in orders(entries.len(), 16) {
        let b = open(2);
        let shuffled: Vec<LogEntry> = order.iter().map(|i| entries[*i].clone()).collect();
        b.apply_retrying(&a, &shuffled).await;
        assert_eq!(schema_state(&b).await, expected, "arrival order {order:?}");
    }
}

#[tokio::test]
async fn a_ttl_rule_past_the_limit_is_refused_before_it_is_logged() {
    let a = open(1);
    // The catalog holds as many rules as it takes; one more is refused with nothing logged (it
    // used to be logged, then refused by the catalog: the peer applied a rule A did not have).
    let patterns: Vec<String> = (0..duet_catalog::MAX_TTL_RULES)
        .map(|i| format!("root.full.d{i}"))
        .collect();
    a.catalog.set_ttl(&patterns, 1_000_000).unwrap();
    let head = a.head();
    assert!(a.try_exec("set ttl to root.over 1000000").await.is_err());
    assert_eq!(a.head(), head);
    assert!(a.shows_nothing("show ttl on root.over").await);
    // Replacing an existing rule is no new rule: it is taken and logged.
    a.exec("set ttl to root.full.d0 2000000").await;
    assert_eq!(a.schema_entries(head).len(), 1);
}
