//! Duet as the receiver of a default Apache IoTDB 2.x sender: an IoTDB-shaped sender (the bytes of
//! `duet_testkit::iotdb_wire`, written from IoTDB's serializers) handshakes and transfers real-time
//! writes as InsertNodes inside `TRANSFER_TABLET_BATCH_V2` (13), as single InsertNodes (2, 10), as a
//! WAL entry (7), and a deletion as a `DeleteDataNode` plan node (100); the data on Duet is checked by
//! query, every data type, nulls and aligned devices included. What arrives this way counts as pipe
//! data: a double-living pipe of the receiving instance does not send it on. The schema and user
//! plans of `'inclusion'='all'` (schema-region nodes in type 100, ConfigNode plans in type 200) are
//! checked by SHOW, COUNT and logins. Issue 10.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use duet_proto::client::{Client, ClientOptions, Connection};
use duet_proto::t;
use duet_testkit::iotdb_wire::{
    self, data_type as dt, request_type as rt, InsertRow, RowCell, TabletColumn, Value,
};
use duet_testkit::pipe_sender;
use duet_testkit::query::rows;
use duet_testkit::Duetd;

mod common;
use common::{
    assert_series_count, assert_status, create_pipe_to, iotdb_hash, logs_in, privileges_of, query,
    series_names, timeseries, transfer, BOB_PW22_IOTDB_HEX,
};

/// The handshake parameters of this file's IoTDB-shaped sender.
const SENDER: &[(&str, &str)] = &[
    ("timestampPrecision", "ms"),
    ("clusterID", "9b1c4f2e-iotdb-cluster"),
    ("convertOnTypeMismatch", "true"),
    ("loadTsFileStrategy", "sync"),
    ("username", "root"),
    ("password", "root"),
    ("validateTsFile", "true"),
    ("markAsPipeRequest", "true"),
];

/// A pipe connection that has passed IoTDB's handshake V2 with the parameters a default 2.x sender
/// sends.
async fn iotdb_sender(server: &Duetd) -> Connection {
    pipe_sender::connect(server, SENDER).await.unwrap()
}

/// The times of one series' points, as SELECT returns them.
async fn times_of(client: &mut Client, device: &str, measurement: &str) -> Vec<i64> {
    query(client, &format!("select {measurement} from {device}"))
        .await
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect()
}

/// Sends a request that must be accepted.
async fn send_ok(conn: &mut Connection, type_: i16, body: Vec<u8>) {
    send_expecting(conn, type_, body, 200).await;
}

/// Sends a request that must be answered with `code`, and returns the whole status for checks of
/// its message.
async fn send_expecting(
    conn: &mut Connection,
    type_: i16,
    body: Vec<u8>,
    code: i32,
) -> t::TSStatus {
    let status = send(conn, type_, body).await;
    assert_eq!(status.code, code, "type {type_}: {status:?}");
    status
}

/// Sends a ConfigNode plan (type 200) that must be accepted.
async fn send_plan(conn: &mut Connection, plan: Vec<u8>) {
    send_ok(conn, rt::TRANSFER_CONFIG_PLAN, plan).await;
}

/// Sends ConfigNode plans in order, each of which must be accepted.
async fn send_plans(conn: &mut Connection, plans: impl IntoIterator<Item = Vec<u8>>) {
    for plan in plans {
        send_plan(conn, plan).await;
    }
}

/// Sends a plan node (type 100: schema region or deletion) that must be accepted.
async fn send_node(conn: &mut Connection, node: Vec<u8>) {
    send_ok(conn, rt::TRANSFER_PLAN_NODE, node).await;
}

/// Sends plan nodes in order, each of which must be accepted.
async fn send_nodes(conn: &mut Connection, nodes: impl IntoIterator<Item = Vec<u8>>) {
    for node in nodes {
        send_node(conn, node).await;
    }
}

async fn send(conn: &mut Connection, type_: i16, body: Vec<u8>) -> t::TSStatus {
    transfer(conn, type_, body).await.status
}

/// An InternalCreateTimeSeriesNode of one INT64 series (TS_2DIFF, LZ4) on a non-aligned device.
fn int64_series_node(device: &str, measurement: &str) -> Vec<u8> {
    iotdb_wire::internal_create_time_series_node(device, false, &[(measurement, dt::INT64, 4, 7)])
}

fn column(name: &str, type_code: u8, values: Vec<Option<Value>>) -> TabletColumn {
    TabletColumn {
        name: name.into(),
        type_code,
        values,
    }
}

/// root.peer.d1 (aligned), rows 1..=3, one column of every type, each with a null somewhere.
fn every_type_tablet() -> Vec<TabletColumn> {
    vec![
        column(
            "s_bool",
            dt::BOOLEAN,
            vec![
                Some(Value::Boolean(true)),
                None,
                Some(Value::Boolean(false)),
            ],
        ),
        column(
            "s_i32",
            dt::INT32,
            vec![None, Some(Value::Int32(-2)), Some(Value::Int32(3))],
        ),
        column(
            "s_i64",
            dt::INT64,
            vec![Some(Value::Int64(1 << 40)), Some(Value::Int64(2)), None],
        ),
        column(
            "s_float",
            dt::FLOAT,
            vec![Some(Value::Float(1.5)), None, Some(Value::Float(-0.25))],
        ),
        column(
            "s_double",
            dt::DOUBLE,
            vec![Some(Value::Double(2.5)), Some(Value::Double(-1e10)), None],
        ),
        column(
            "s_text",
            dt::TEXT,
            vec![
                Some(Value::Text("héllo".into())),
                None,
                Some(Value::Text("".into())),
            ],
        ),
        column(
            "s_ts",
            dt::TIMESTAMP,
            vec![None, Some(Value::Timestamp(1_700_000_000_000)), None],
        ),
        column(
            "s_date",
            dt::DATE,
            vec![Some(Value::Date(20_240_229)), None, None],
        ),
        column(
            "s_blob",
            dt::BLOB,
            vec![None, None, Some(Value::Blob(vec![0xca, 0xfe]))],
        ),
        column(
            "s_str",
            dt::STRING,
            vec![
                Some(Value::Str("x".into())),
                Some(Value::Str("y".into())),
                None,
            ],
        ),
    ]
}

#[test]
fn a_default_iotdb_senders_real_time_writes_and_deletions_land_exactly() {
    let a = Duetd::start().unwrap();
    let b = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = Client::connect(&a.client_options()).await.unwrap();
        let mut sender = iotdb_sender(&a).await;

        // 13: two InsertNodes (an aligned tablet of every type, a row with a raw string and nulls)
        // and a raw tablet.
        let tablet = iotdb_wire::insert_tablet_node(
            "root.peer.d1",
            true,
            &[1, 2, 3],
            &every_type_tablet(),
            false,
        );
        let row = iotdb_wire::insert_row_node(&InsertRow {
            device: "root.peer.d2".into(),
            aligned: false,
            time: 5,
            cells: vec![
                ("s_int".into(), RowCell::Value(Value::Int32(7))),
                ("s_raw".into(), RowCell::Raw("2.5".into())),
                ("s_typed_null".into(), RowCell::NullOf(dt::INT64)),
                ("s_null".into(), RowCell::Null),
            ],
        });
        let raw = iotdb_wire::raw_tablet_entry(
            "root.peer.d3",
            false,
            &[1, 2],
            &[column(
                "s",
                dt::DOUBLE,
                vec![Some(Value::Double(0.5)), None],
            )],
        );
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_BATCH_V2,
            iotdb_wire::tablet_batch_v2(&[], &[tablet, row], &[raw]),
        )
        .await;

        // A's own double-living pipe to B: what an IoTDB sender gave A is pipe data and stays on A,
        // whether it was there before the pipe (its history) or arrives after (real time).
        client
            .execute_update(&create_pipe_to(
                "ab",
                "'source.mode.double-living'='true'",
                &b,
            ))
            .await
            .unwrap();

        // 2: an InsertRowsNode; 10: an InsertTabletNode with schemas and its (null) database;
        // 7: a WAL entry.
        let rows_node = iotdb_wire::insert_rows_node(&[6, 7].map(|t| InsertRow {
            device: "root.peer.d2".into(),
            aligned: false,
            time: t,
            cells: vec![("s_int".into(), RowCell::Value(Value::Int32(t as i32 + 2)))],
        }));
        send_ok(&mut sender, rt::TRANSFER_TABLET_INSERT_NODE, rows_node).await;
        let node = iotdb_wire::insert_tablet_node(
            "root.peer.d4",
            false,
            &[10, 20],
            &[column(
                "s",
                dt::INT64,
                vec![Some(Value::Int64(100)), Some(Value::Int64(200))],
            )],
            true,
        );
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_INSERT_NODE_V2,
            iotdb_wire::insert_node_v2(&node, None),
        )
        .await;
        let wal = iotdb_wire::insert_tablet_wal_entry(
            "root.peer.d5",
            false,
            &[1],
            &[column("s", dt::FLOAT, vec![Some(Value::Float(1.25))])],
        );
        send_ok(&mut sender, rt::TRANSFER_TABLET_BINARY, wal).await;

        // 100: delete s_i64 at time 2 and all of d4 after 15.
        send_node(
            &mut sender,
            iotdb_wire::delete_data_node(&["root.peer.d1.s_i64", "root.peer.d4.**"], 2, 2),
        )
        .await;
        send_node(
            &mut sender,
            iotdb_wire::delete_data_node(&["root.peer.d4.**"], 15, i64::MAX),
        )
        .await;

        // 100: schema plan nodes (a pipe whose inclusion covers schema.timeseries): a series with
        // RLE/SNAPPY, an aligned device with GORILLA/ZSTD and PLAIN/LZ4.
        send_node(
            &mut sender,
            iotdb_wire::create_time_series_node("root.peer.s6.x", dt::INT32, 2, 1),
        )
        .await;
        send_node(
            &mut sender,
            iotdb_wire::create_aligned_time_series_node(
                "root.peer.s7",
                &[("a", dt::DOUBLE, 8, 8), ("b", dt::TEXT, 0, 7)],
            ),
        )
        .await;
        assert_eq!(
            timeseries(&mut client, "root.peer.s*.*").await,
            [
                ["root.peer.s6.x", "INT32", "RLE", "SNAPPY"],
                ["root.peer.s7.a", "DOUBLE", "GORILLA", "ZSTD"],
                ["root.peer.s7.b", "TEXT", "PLAIN", "LZ4"],
            ]
        );

        let d1 = query(
            &mut client,
            "select s_bool, s_i32, s_i64, s_float, s_double, s_text, s_ts, s_date, s_blob, s_str \
             from root.peer.d1",
        )
        .await;
        assert_eq!(
            d1,
            [
                [
                    "1",
                    "true",
                    "null",
                    "1099511627776",
                    "1.5",
                    "2.5",
                    "héllo",
                    "null",
                    "2024-02-29",
                    "null",
                    "x"
                ],
                [
                    "2",
                    "null",
                    "-2",
                    "null",
                    "null",
                    "-10000000000.0",
                    "null",
                    "1700000000000",
                    "null",
                    "null",
                    "y"
                ],
                [
                    "3", "false", "3", "null", "-0.25", "null", "", "null", "null", "0xcafe",
                    "null"
                ],
            ]
        );
        let devices = query(&mut client, "show devices root.peer.**").await;
        let aligned: Vec<(&str, &str)> = devices
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str()))
            .collect();
        assert!(aligned.contains(&("root.peer.d1", "true")), "{devices:?}");
        assert!(aligned.contains(&("root.peer.d2", "false")), "{devices:?}");
        assert_eq!(
            query(&mut client, "select s_int, s_raw from root.peer.d2").await,
            [["5", "7", "2.5"], ["6", "8", "null"], ["7", "9", "null"]]
        );
        // The raw string was inferred as IoTDB infers it; the null cells created no series.
        assert_eq!(
            query(&mut client, "show timeseries root.peer.d2.s_raw").await[0][3],
            "DOUBLE"
        );
        assert_series_count(&mut client, "root.peer.d2.**", 2).await;
        assert_eq!(
            query(&mut client, "select s from root.peer.d3").await,
            // Row 2's only cell is null: no row, as on IoTDB.
            [["1", "0.5"]]
        );
        assert_eq!(
            query(&mut client, "select s from root.peer.d4").await,
            [["10", "100"]]
        );
        assert_eq!(
            query(&mut client, "select s from root.peer.d5").await,
            [["1", "1.25"]]
        );

        // A's local write crosses to B; what the IoTDB sender gave A does not.
        client
            .execute_update("insert into root.local.d(time, s) values (1, 1)")
            .await
            .unwrap();
        let mut on_b = Client::connect(&b.client_options()).await.unwrap();
        let mut arrived = false;
        for _ in 0..200 {
            if rows(&mut on_b, "select s from root.local.d")
                .await
                .is_ok_and(|r| r.len() == 1)
            {
                arrived = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(arrived, "A's local write never reached B");
        assert_series_count(&mut on_b, "root.peer.**", 0).await;
    });
}

#[test]
fn a_batch_with_a_table_model_or_truncated_node_is_refused_whole_and_the_receiver_goes_on() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        let good = iotdb_wire::insert_tablet_node(
            "root.refused.d1",
            false,
            &[1],
            &[column("s", dt::INT32, vec![Some(Value::Int32(1))])],
            false,
        );
        // RelationalInsertRowNode (2001): a table-model write.
        let mut table = vec![0x07, 0xd1];
        table.extend_from_slice(&[0; 24]);
        let status = send(
            &mut sender,
            rt::TRANSFER_TABLET_BATCH_V2,
            iotdb_wire::tablet_batch_v2(&[], &[good.clone(), table], &[]),
        )
        .await;
        assert_status(&status, 1805, "RelationalInsertRowNode");
        let truncated = &good[..good.len() - 3];
        send_expecting(
            &mut sender,
            rt::TRANSFER_TABLET_INSERT_NODE,
            truncated.to_vec(),
            1805,
        )
        .await;
        // Nothing of either request was applied.
        assert_series_count(&mut client, "root.refused.**", 0).await;
        // The same connection still takes a good request.
        send_ok(&mut sender, rt::TRANSFER_TABLET_INSERT_NODE, good).await;
        assert_eq!(
            query(&mut client, "select s from root.refused.d1").await,
            [["1", "1"]]
        );
    });
}

fn end_offset(resp: &t::TPipeTransferResp) -> i64 {
    i64::from_be_bytes(resp.body.clone().unwrap().try_into().unwrap())
}

/// Sends one piece of the file `name` (a request of type `type_`); the answer's status code and
/// end offset.
async fn send_piece(
    sender: &mut Connection,
    type_: i16,
    name: &str,
    offset: i64,
    bytes: &[u8],
) -> (i32, i64) {
    let resp = transfer(sender, type_, iotdb_wire::file_piece(name, offset, bytes)).await;
    (resp.status.code, end_offset(&resp))
}

#[test]
fn file_pieces_follow_iotdbs_offset_protocol_and_seals_are_checked() {
    let server = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut sender = iotdb_sender(&server).await;
        let file = vec![7u8; 3000];
        let name = "1700000000000-1-0-0.tsfile";
        // The first piece, the same piece resent from an older offset (answered with where the
        // file stands), the rest.
        for (piece, offset, bytes, answer) in [
            ("first", 0, &file[..1000], (200, 1000)),
            ("resent", 0, &file[..1000], (1803, 1000)),
            ("rest", 1000, &file[1000..], (200, 3000)),
        ] {
            let got = send_piece(
                &mut sender,
                rt::TRANSFER_TS_FILE_PIECE_WITH_MOD,
                name,
                offset,
                bytes,
            )
            .await;
            assert_eq!(got, answer, "the {piece} piece");
        }
        let received = server.data_dir().join("pipe-receiver");
        assert!(received.exists());
        // A seal with the wrong length is refused and the pieces are dropped.
        let resp = transfer(
            &mut sender,
            rt::TRANSFER_TS_FILE_SEAL_WITH_MOD,
            iotdb_wire::file_seal_v2(&[(name, 2999)], &[("DATABASE_NAME_x", "root.sg")]),
        )
        .await;
        assert_eq!(resp.status.code, 1804, "{:?}", resp.status);
        assert!(resp.status.message.unwrap().contains("length"));
        let got = send_piece(
            &mut sender,
            rt::TRANSFER_TS_FILE_PIECE,
            name,
            1000,
            &file[1000..],
        )
        .await;
        assert_eq!(got, (1803, 0));
        // A path outside the receiver's directory is refused.
        let got = send_piece(
            &mut sender,
            rt::TRANSFER_TS_FILE_PIECE,
            "../../escape.tsfile",
            0,
            b"x",
        )
        .await;
        assert_eq!(got, (1804, -1));
        assert!(!server.data_dir().join("escape.tsfile").exists());
        // A connection that goes away leaves no files behind.
        drop(sender);
        let mut left = true;
        for _ in 0..100 {
            let empty = std::fs::read_dir(&received)
                .map(|d| d.count() == 0)
                .unwrap_or(true);
            if empty {
                left = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !left,
            "files of a closed connection were left in {}",
            received.display()
        );
    });
}

/// The sidecar of a TsFile fixture written by Apache's `tsfile` package: every series with its points
/// (`[time, value]`), as the fixture script computed them.
fn fixture(name: &str) -> (Vec<u8>, serde_json::Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tsfile/tests/fixtures");
    let file = std::fs::read(dir.join(format!("{name}.tsfile"))).unwrap();
    let sidecar =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    (file, sidecar)
}

/// Sends `file` in pieces of `piece` bytes (type 8), preceded by `mods` when given, and seals them
/// (type 9) as IoTDB 2.x does; the seal's answer.
async fn send_tsfile(
    sender: &mut Connection,
    name: &str,
    file: &[u8],
    mods: Option<&[u8]>,
    piece: usize,
) -> t::TSStatus {
    let mut sealed = Vec::new();
    let mods_name = format!("{name}.mods");
    for (n, bytes) in mods
        .map(|m| (mods_name.as_str(), m))
        .into_iter()
        .chain([(name, file)])
    {
        for (i, chunk) in bytes.chunks(piece).enumerate() {
            let resp = transfer(
                sender,
                rt::TRANSFER_TS_FILE_PIECE_WITH_MOD,
                iotdb_wire::file_piece(n, (i * piece) as i64, chunk),
            )
            .await;
            assert_eq!(resp.status.code, 200, "{:?}", resp.status);
        }
        sealed.push((n, bytes.len() as i64));
    }
    transfer(
        sender,
        rt::TRANSFER_TS_FILE_SEAL_WITH_MOD,
        iotdb_wire::file_seal_v2(&sealed, &[(&format!("DATABASE_NAME_{name}"), "root.sg1")]),
    )
    .await
    .status
}

#[test]
fn a_tsfile_from_apaches_writer_is_loaded_exactly_with_its_mods_and_a_corrupt_one_not_at_all() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        let (file, sidecar) = fixture("tree_plain");
        // A mods file (IoTDB 1.x text form) deleting s_int64 in [1700000010000, 1700000019000].
        let mods = b"DELETION,root.sg1.d1.s_int64,1,1700000010000,1700000019000\n";
        let status = send_tsfile(&mut sender, "1-1-0-0.tsfile", &file, Some(mods), 1000).await;
        assert_eq!(status.code, 200, "{status:?}");
        let series = sidecar["series"].as_array().unwrap();
        assert!(series.len() >= 10, "the fixture has every data type");
        for s in series {
            let (device, measurement) = (
                s["device"].as_str().unwrap(),
                s["measurement"].as_str().unwrap(),
            );
            let points = s["points"].as_array().unwrap();
            let deleted = |t: i64| {
                device == "root.sg1.d1"
                    && measurement == "s_int64"
                    && (1_700_000_010_000..=1_700_000_019_000).contains(&t)
            };
            let expected: Vec<i64> = points
                .iter()
                .map(|p| p[0].as_i64().unwrap())
                .filter(|t| !deleted(*t))
                .collect();
            assert_eq!(
                times_of(&mut client, device, measurement).await,
                expected,
                "{device}.{measurement}"
            );
            // Spot-check values of the numeric types against the sidecar.
            if matches!(s["type"].as_str(), Some("INT32" | "INT64")) {
                let first = points
                    .iter()
                    .find(|p| !deleted(p[0].as_i64().unwrap()))
                    .unwrap();
                let row = query(
                    &mut client,
                    &format!(
                        "select {measurement} from {device} where time = {}",
                        first[0]
                    ),
                )
                .await;
                assert_eq!(row[0][1], first[1].to_string(), "{device}.{measurement}");
            }
        }
        // A truncated file is refused at its seal and nothing of it is applied.
        let truncated = &file[..file.len() - 40];
        let status = send_tsfile(&mut sender, "2-2-0-0.tsfile", truncated, None, 1000).await;
        assert_status(&status, 1804, "2-2-0-0.tsfile");
        let before = query(&mut client, "count timeseries root.**").await;
        let (table, _) = fixture("table_pages");
        let status = send_tsfile(&mut sender, "3-3-0-0.tsfile", &table, None, 4096).await;
        assert_status(&status, 1804, "table-model");
        assert_eq!(query(&mut client, "count timeseries root.**").await, before);
    });
}

/// A default IoTDB 2.x pipe's whole life on one connection, as issue 10 states it: handshake,
/// history as TsFile pieces and a seal, real-time InsertNodes in type 13, a deletion plan node,
/// schema changes (a series created, then deleted) and a user; the data on Duet is then exactly what
/// was sent.
#[test]
fn a_default_iotdb_pipes_whole_life_lands_exactly() {
    let (server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        // Schema first (a pipe whose inclusion covers schema.database and schema.ttl): the
        // database and a TTL, as ConfigNode plans (type 200).
        send_plans(
            &mut sender,
            [
                iotdb_wire::create_database_plan("root.sg1"),
                iotdb_wire::set_ttl_plan("root.sg1.**", 1_000_000_000_000),
            ],
        )
        .await;
        assert_eq!(
            query(&mut client, "show ttl on root.sg1.**").await,
            [["root.sg1.**", "1000000000000"]]
        );
        // IoTDB's UNSET TTL is a SetTTLPlan with -1: the rule goes (it must not become a TTL that
        // expires everything), and a database's rule covers what is under it.
        send_plan(&mut sender, iotdb_wire::set_ttl_plan("root.sg1.**", -1)).await;
        assert!(query(&mut client, "show ttl on root.sg1.**")
            .await
            .is_empty());
        // History: a sealed TsFile written by Apache's tsfile package.
        let (file, sidecar) = fixture("tree_plain");
        let status = send_tsfile(&mut sender, "7-7-0-0.tsfile", &file, None, 2048).await;
        assert_eq!(status.code, 200, "{status:?}");
        // Real time: an InsertTabletNode and an InsertRowNode in one type-13 batch, into the
        // history's device and a new one.
        let tablet = iotdb_wire::insert_tablet_node(
            "root.sg1.d1",
            false,
            &[1_800_000_000_000, 1_800_000_001_000],
            &[column(
                "s_int64",
                dt::INT64,
                vec![Some(Value::Int64(41)), Some(Value::Int64(42))],
            )],
            false,
        );
        let row = iotdb_wire::insert_row_node(&InsertRow {
            device: "root.sg1.live".into(),
            aligned: false,
            time: 1_800_000_000_000,
            cells: vec![("v".into(), RowCell::Value(Value::Double(0.5)))],
        });
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_BATCH_V2,
            iotdb_wire::tablet_batch_v2(&[], &[tablet, row], &[]),
        )
        .await;
        // A deletion: s_int64 of d1 up to (and including) 1700000020000.
        send_node(
            &mut sender,
            iotdb_wire::delete_data_node(&["root.sg1.d1.s_int64"], i64::MIN, 1_700_000_020_000),
        )
        .await;
        // A schema change: a series created without data.
        send_node(
            &mut sender,
            iotdb_wire::create_time_series_node("root.sg1.live.w", dt::FLOAT, 8, 7),
        )
        .await;

        // Every series of the file, with the deletion and the real-time points applied.
        for s in sidecar["series"].as_array().unwrap() {
            let (device, measurement) = (
                s["device"].as_str().unwrap(),
                s["measurement"].as_str().unwrap(),
            );
            let mut expected: Vec<i64> = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[0].as_i64().unwrap())
                .filter(|t| {
                    !(device == "root.sg1.d1"
                        && measurement == "s_int64"
                        && *t <= 1_700_000_020_000)
                })
                .collect();
            if device == "root.sg1.d1" && measurement == "s_int64" {
                expected.extend([1_800_000_000_000, 1_800_000_001_000]);
            }
            assert_eq!(
                times_of(&mut client, device, measurement).await,
                expected,
                "{device}.{measurement}"
            );
        }
        assert_eq!(
            query(&mut client, "select v from root.sg1.live").await,
            [["1800000000000", "0.5"]]
        );
        let w = timeseries(&mut client, "root.sg1.live.w").await.remove(0);
        assert_eq!(w[1..], ["FLOAT", "GORILLA", "LZ4"]);

        // DELETE TIMESERIES of the series made without data (a pattern tree in type 200), and a user
        // the sender created (`auth`).
        send_plan(
            &mut sender,
            iotdb_wire::pipe_delete_time_series_plan(&["root.sg1.live.w"]),
        )
        .await;
        assert_eq!(
            series_names(&mut client, "root.sg1.live.*").await,
            ["root.sg1.live.v"]
        );
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(621, "peer_user", Some("peer_pw1"), None),
        )
        .await;
        assert!(logs_in(&server, "peer_user", "peer_pw1").await);

        // The end: the database dropped on the sender goes here too, with its series and data.
        send_plan(&mut sender, iotdb_wire::delete_database_plan("root.sg1")).await;
        assert_series_count(&mut client, "root.sg1.**", 0).await;
        // A plan Duet does not apply is refused by name, and the connection goes on.
        let author = 2104i16.to_be_bytes().to_vec();
        let status = send(&mut sender, rt::TRANSFER_CONFIG_PLAN, author).await;
        assert_status(&status, 1805, "RenameUser");
    });
}

/// A TsFile with a series whose type differs from the one it has here is refused before any of the
/// file is written (not halfway through it).
#[test]
fn a_tsfile_that_conflicts_with_a_series_type_here_is_refused_before_anything_is_written() {
    let server = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = Client::connect(&server.client_options()).await.unwrap();
        // The fixture has root.sg1.d1.s_int64 as INT64; here it is DOUBLE.
        client
            .execute_update("create timeseries root.sg1.d1.s_int64 with datatype=DOUBLE")
            .await
            .unwrap();
        let mut sender = iotdb_sender(&server).await;
        let (file, _) = fixture("tree_plain");
        let status = send_tsfile(&mut sender, "9-9-0-0.tsfile", &file, None, 4096).await;
        assert_status(&status, 1810, "root.sg1.d1.s_int64");
        assert_series_count(&mut client, "root.**", 1).await;
    });
}

/// The schema-region nodes a default IoTDB 2.x sender transfers with `inclusion` covering
/// `schema.timeseries` (type 100): multi-device and auto-created series (with their types, encodings,
/// compressors and alignment as sent) and template activations; an `AlterTimeSeriesNode` (tags) is
/// refused by name, and the connection goes on.
#[test]
fn an_iotdb_senders_schema_region_nodes_apply() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        // CreateMultiTimeSeriesNode: two devices; InternalCreateTimeSeriesNode: an aligned device a
        // write auto-created; InternalCreateMultiTimeSeriesNode: one aligned, one not.
        // (encoding ordinals: 0 PLAIN, 2 RLE, 4 TS_2DIFF, 8 GORILLA; compressors: 0 none, 1 SNAPPY,
        // 7 LZ4, 8 ZSTD)
        send_nodes(
            &mut sender,
            [
                iotdb_wire::create_multi_time_series_node(&[
                    (
                        "root.sg2.m1",
                        &[("a", dt::INT64, 4, 1), ("b", dt::TEXT, 0, 0)],
                    ),
                    ("root.sg2.m2", &[("c", dt::BOOLEAN, 2, 7)]),
                ]),
                iotdb_wire::internal_create_time_series_node(
                    "root.sg2.auto",
                    true,
                    &[("x", dt::DOUBLE, 8, 8), ("y", dt::INT32, 4, 7)],
                ),
                iotdb_wire::internal_create_multi_time_series_node(&[
                    ("root.sg2.im1", true, &[("p", dt::FLOAT, 8, 7)]),
                    ("root.sg2.im2", false, &[("q", dt::STRING, 0, 7)]),
                ]),
            ],
        )
        .await;
        assert_eq!(
            timeseries(&mut client, "root.sg2.**").await,
            [
                ["root.sg2.auto.x", "DOUBLE", "GORILLA", "ZSTD"],
                ["root.sg2.auto.y", "INT32", "TS_2DIFF", "LZ4"],
                ["root.sg2.im1.p", "FLOAT", "GORILLA", "LZ4"],
                ["root.sg2.im2.q", "STRING", "PLAIN", "LZ4"],
                ["root.sg2.m1.a", "INT64", "TS_2DIFF", "SNAPPY"],
                ["root.sg2.m1.b", "TEXT", "PLAIN", "UNCOMPRESSED"],
                ["root.sg2.m2.c", "BOOLEAN", "RLE", "LZ4"],
            ]
        );
        let aligned: Vec<Vec<String>> = query(&mut client, "show devices root.sg2.**")
            .await
            .into_iter()
            .map(|r| vec![r[0].clone(), r[1].clone()])
            .collect();
        assert_eq!(
            aligned,
            [
                ["root.sg2.auto", "true"],
                ["root.sg2.im1", "true"],
                ["root.sg2.im2", "false"],
                ["root.sg2.m1", "false"],
                ["root.sg2.m2", "false"],
            ]
        );

        // Activations: the template set above the devices here (the sender's template id is its
        // own numbering) is activated on one device, then on two in a batch.
        client
            .execute_update("create device template t1 (s1 INT64, s2 DOUBLE encoding=RLE)")
            .await
            .unwrap();
        client
            .execute_update("set device template t1 to root.sg3")
            .await
            .unwrap();
        send_node(
            &mut sender,
            iotdb_wire::activate_template_node("root.sg3.d1", 7),
        )
        .await;
        send_node(
            &mut sender,
            iotdb_wire::batch_activate_template_node(&["root.sg3.d2", "root.sg3.d3"], 7, false),
        )
        .await;
        send_node(
            &mut sender,
            iotdb_wire::batch_activate_template_node(&["root.sg3.d4"], 7, true),
        )
        .await;
        assert_eq!(
            query(&mut client, "show paths using device template t1").await,
            [
                ["root.sg3.d1"],
                ["root.sg3.d2"],
                ["root.sg3.d3"],
                ["root.sg3.d4"]
            ]
        );
        assert_series_count(&mut client, "root.sg3.**", 8).await;
        // An activation where no template is set here is refused, naming the device.
        let status = send(
            &mut sender,
            rt::TRANSFER_PLAN_NODE,
            iotdb_wire::activate_template_node("root.elsewhere.d1", 7),
        )
        .await;
        assert_ne!(status.code, 200, "{status:?}");
        let message = status.message.unwrap_or_default();
        assert!(message.contains("root.elsewhere.d1"), "{message}");

        // Tags: refused by name, nothing changed, and the connection goes on.
        let status = send_expecting(
            &mut sender,
            rt::TRANSFER_PLAN_NODE,
            iotdb_wire::alter_time_series_add_tag_node("root.sg2.m1.a", "unit", "C"),
            1805,
        )
        .await;
        let message = status.message.unwrap_or_default();
        assert!(
            message.contains("AlterTimeSeriesNode") && message.contains("root.sg2.m1.a"),
            "{message}"
        );
        send_node(&mut sender, int64_series_node("root.sg2.m1", "z")).await;
        assert_series_count(&mut client, "root.sg2.m1.**", 3).await;
    });
}

/// The ConfigNode plans (type 200) a default IoTDB 2.x sender transfers for device templates and
/// `DELETE TIMESERIES`: a template is created, extended (with and without encodings), set, activated
/// (schema-region nodes), deactivated on one device (with its data) and then, wrapped as a plan that
/// arrived through a pipe, on the rest, unset and dropped; a deletion's pattern tree removes the
/// matching series and their data and leaves the others.
#[test]
fn an_iotdb_senders_template_and_deletion_plans_apply() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        let t2: &[iotdb_wire::SeriesSpec<'_>] =
            &[("s1", dt::INT64, 4, 7), ("s2", dt::DOUBLE, 8, 1)];
        send_plans(
            &mut sender,
            [
                iotdb_wire::create_database_plan("root.sg4"),
                iotdb_wire::create_schema_template_plan("t2", false, t2),
                iotdb_wire::extend_schema_template_plan("t2", &[("s3", dt::TEXT)], None),
                iotdb_wire::extend_schema_template_plan(
                    "t2",
                    &[("s4", dt::FLOAT)],
                    Some(&[(2, 8)]),
                ),
                iotdb_wire::commit_set_schema_template_plan("t2", "root.sg4"),
            ],
        )
        .await;
        assert_eq!(
            query(&mut client, "show nodes in device template t2").await,
            [
                ["s1", "INT64", "TS_2DIFF", "LZ4"],
                ["s2", "DOUBLE", "GORILLA", "SNAPPY"],
                ["s3", "TEXT", "PLAIN", "LZ4"],
                ["s4", "FLOAT", "RLE", "ZSTD"],
            ]
        );
        assert_eq!(
            query(&mut client, "show paths set device template t2").await,
            [["root.sg4"]]
        );
        send_node(
            &mut sender,
            iotdb_wire::batch_activate_template_node(&["root.sg4.d1", "root.sg4.d2"], 42, false),
        )
        .await;
        let tablet = |device: &str| {
            iotdb_wire::insert_tablet_node(
                device,
                false,
                &[1, 2],
                &[column(
                    "s1",
                    dt::INT64,
                    vec![Some(Value::Int64(1)), Some(Value::Int64(2))],
                )],
                false,
            )
        };
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_BATCH_V2,
            iotdb_wire::tablet_batch_v2(&[], &[tablet("root.sg4.d1"), tablet("root.sg4.d2")], &[]),
        )
        .await;
        assert_series_count(&mut client, "root.sg4.**", 8).await;

        // DEACTIVATE on d1: its template series and their data go, d2 keeps both.
        send_plan(
            &mut sender,
            iotdb_wire::pipe_deactivate_template_plan(&[("root.sg4.d1", &[("t2", false, t2)])]),
        )
        .await;
        assert_eq!(
            query(&mut client, "show paths using device template t2").await,
            [["root.sg4.d2"]]
        );
        assert_eq!(
            query(&mut client, "select count(s1) from root.sg4.d2").await,
            [["2"]]
        );
        assert_series_count(&mut client, "root.sg4.d1.**", 0).await;
        // The rest, as a plan the sender's own receiver executed (PipeEnriched), then unset and
        // drop.
        let deactivate =
            iotdb_wire::pipe_deactivate_template_plan(&[("root.sg4.**", &[("t2", false, t2)])]);
        send_plans(
            &mut sender,
            [
                iotdb_wire::pipe_enriched_plan(&deactivate, "other-cluster"),
                iotdb_wire::pipe_unset_template_plan("t2", "root.sg4"),
                iotdb_wire::drop_schema_template_plan("t2"),
            ],
        )
        .await;
        assert!(query(&mut client, "show device templates").await.is_empty());
        assert_series_count(&mut client, "root.sg4.**", 0).await;

        // DELETE TIMESERIES root.sg4.x.s1, root.sg4.y.**: the pattern tree's patterns are resolved
        // here; root.sg4.x.s2 stays with its data.
        send_node(
            &mut sender,
            iotdb_wire::create_multi_time_series_node(&[
                (
                    "root.sg4.x",
                    &[("s1", dt::INT64, 4, 7), ("s2", dt::INT64, 4, 7)],
                ),
                ("root.sg4.y", &[("s1", dt::INT64, 4, 7)]),
                ("root.sg4.y.z", &[("s1", dt::INT64, 4, 7)]),
            ]),
        )
        .await;
        let row = |device: &str, m: &str| {
            iotdb_wire::insert_row_node(&InsertRow {
                device: device.into(),
                aligned: false,
                time: 10,
                cells: vec![(m.into(), RowCell::Value(Value::Int64(5)))],
            })
        };
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_BATCH_V2,
            iotdb_wire::tablet_batch_v2(
                &[],
                &[
                    row("root.sg4.x", "s1"),
                    row("root.sg4.x", "s2"),
                    row("root.sg4.y", "s1"),
                ],
                &[],
            ),
        )
        .await;
        send_plan(
            &mut sender,
            iotdb_wire::pipe_delete_time_series_plan(&["root.sg4.x.s1", "root.sg4.y.**"]),
        )
        .await;
        assert_eq!(
            series_names(&mut client, "root.sg4.**").await,
            ["root.sg4.x.s2"]
        );
        assert_eq!(
            query(&mut client, "select s2 from root.sg4.x").await,
            [["10", "5"]]
        );
        // Recreated, the deleted series hold none of their old points.
        send_node(&mut sender, int64_series_node("root.sg4.x", "s1")).await;
        assert!(query(&mut client, "select s1 from root.sg4.x")
            .await
            .is_empty());
    });
}

/// The user plans a default IoTDB 2.x sender transfers with `inclusion` covering `auth`: a user
/// created with its password in clear, one created with the hash IoTDB stores
/// (`CreateUserWithRawPassword`, as IoTDB's own snapshot of its users sends them), a password
/// change and a drop each let exactly the right logins in; a plan Duet does not apply is refused by
/// name, and a password Duet's rules refuse is refused without echoing it.
#[test]
fn an_iotdb_senders_user_plans_apply_and_its_hashes_log_in() {
    let (server, rt, _client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(621, "alice", Some("alice_pw1"), None),
        )
        .await;
        assert!(logs_in(&server, "alice", "alice_pw1").await);
        assert!(!logs_in(&server, "alice", "alice_pw2").await);

        // IoTDB's stored form of "bob_pw22": `new String(md5(utf8), "utf-8")`, as OpenJDK 17
        // computes it.
        let bob_hash = iotdb_hash(BOB_PW22_IOTDB_HEX);
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(638, "bob", Some(&bob_hash), None),
        )
        .await;
        assert!(logs_in(&server, "bob", "bob_pw22").await);
        assert!(!logs_in(&server, "bob", "bob_pw2").await);

        // ALTER USER alice SET PASSWORD: the old password stops working.
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(631, "alice", Some("alice_pw1"), Some("alice_pw2")),
        )
        .await;
        assert!(logs_in(&server, "alice", "alice_pw2").await);
        assert!(!logs_in(&server, "alice", "alice_pw1").await);

        // DROP USER bob.
        send_plan(&mut sender, iotdb_wire::user_plan(623, "bob", None, None)).await;
        assert!(!logs_in(&server, "bob", "bob_pw22").await);

        // What Duet does not apply: refused by name.
        for (code, name) in [(2104i16, "RenameUser"), (639, "UpdateUserMaxSession")] {
            let status = send(
                &mut sender,
                rt::TRANSFER_CONFIG_PLAN,
                iotdb_wire::user_plan(code, "alice", None, None),
            )
            .await;
            assert_status(&status, 1805, name);
        }
        // A password shorter than the rules allow: refused, and the password is not echoed.
        let status = send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::user_plan(621, "carol", Some("c9x"), None),
            1810,
        )
        .await;
        assert!(!status.message.unwrap_or_default().contains("c9x"));
        assert!(!logs_in(&server, "carol", "c9x").await);
        assert!(logs_in(&server, "root", "root").await);
    });
}

/// A user an IoTDB sender created with IoTDB's hash keeps that hash as its password on Duet, and a
/// Duet pipe (`'inclusion'='all'`, not double-living, so it forwards what arrived through a pipe)
/// takes the account, hash and all, to the next instance, where the same password logs in.
#[test]
fn a_user_with_iotdbs_hash_travels_on_to_a_duet_peer() {
    let a = Duetd::start().unwrap();
    let b = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // IoTDB's stored form of "bob_pw22" (OpenJDK 17, as in the test above).
    let bob_hash = iotdb_hash(BOB_PW22_IOTDB_HEX);
    rt.block_on(async {
        let mut sender = iotdb_sender(&a).await;
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(638, "bob", Some(&bob_hash), None),
        )
        .await;
        let mut client = Client::connect(&a.client_options()).await.unwrap();
        client
            .execute_update(&create_pipe_to("ab", "'source.inclusion'='all'", &b))
            .await
            .unwrap();
    });
    duet_testkit::wait_for("bob to log in on B", Duration::from_secs(20), || {
        rt.block_on(logs_in(&b, "bob", "bob_pw22")).then_some(())
    })
    .unwrap();
    assert!(!rt.block_on(logs_in(&b, "bob", "bob_pw2")));
}

/// IoTDB's receiver keeps an existing user as it is when a sender creates it again (its 'user
/// already exists', answered to a pipe as 1809): a CreateUser (621) or CreateUserWithRawPassword
/// (638), plain or wrapped in a PipeEnriched plan, never overwrites an account here, and no plan
/// creates, changes or drops root.
#[test]
fn an_iotdb_senders_user_creation_keeps_an_existing_user_and_root_is_never_touched() {
    let (server, rt, _client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        send_plan(
            &mut sender,
            iotdb_wire::user_plan(621, "dave", Some("dave_pw1"), None),
        )
        .await;
        // Created again, with another password, in each form a sender may use.
        let again = [
            iotdb_wire::user_plan(621, "dave", Some("dave_pw2"), None),
            iotdb_wire::user_plan(638, "dave", Some("some-iotdb-hash"), None),
            iotdb_wire::pipe_enriched_plan(
                &iotdb_wire::user_plan(621, "dave", Some("dave_pw3"), None),
                "other-cluster",
            ),
            iotdb_wire::pipe_enriched_plan(
                &iotdb_wire::user_plan(638, "dave", Some("other-hash"), None),
                "other-cluster",
            ),
        ];
        for plan in again {
            let status = send(&mut sender, rt::TRANSFER_CONFIG_PLAN, plan).await;
            assert_status(&status, 1809, "already exists");
        }
        assert!(logs_in(&server, "dave", "dave_pw1").await);
        assert!(!logs_in(&server, "dave", "dave_pw2").await);
        assert!(!logs_in(&server, "dave", "dave_pw3").await);

        // Root: created, given a password, or dropped by a plan — each refused with 1809 naming
        // root, and root logs in as before.
        for plan in [
            iotdb_wire::user_plan(621, "root", Some("hijack_pw1"), None),
            iotdb_wire::user_plan(638, "root", Some("some-iotdb-hash"), None),
            iotdb_wire::user_plan(631, "root", Some("root"), Some("hijack_pw2")),
            iotdb_wire::user_plan(623, "root", None, None),
            iotdb_wire::pipe_enriched_plan(
                &iotdb_wire::user_plan(631, "root", Some("root"), Some("hijack_pw3")),
                "other-cluster",
            ),
        ] {
            let status = send(&mut sender, rt::TRANSFER_CONFIG_PLAN, plan).await;
            assert_status(&status, 1809, "root");
        }
        assert!(logs_in(&server, "root", "root").await);
        for password in ["hijack_pw1", "hijack_pw2", "hijack_pw3"] {
            assert!(!logs_in(&server, "root", password).await);
        }
        // The server goes on taking plans.
        send_plan(&mut sender, iotdb_wire::user_plan(623, "dave", None, None)).await;
        assert!(!logs_in(&server, "dave", "dave_pw1").await);
    });
}

/// The role and privilege plans an IoTDB sender transfers with `inclusion` covering `auth`
/// (`AuthorPlan` 622 to 630, privileges as IoTDB 2.0's `PrivilegeType` ordinals) are applied as
/// Duet's own GRANT and REVOKE are — a user's or role's whole new state — and, arriving through a
/// pipe, are not sent on by a double-living pipe (while a local change is).
#[test]
fn an_iotdb_senders_role_and_privilege_plans_apply_and_do_not_loop_back() {
    let a = Duetd::start().unwrap();
    let b = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = Client::connect(&a.client_options()).await.unwrap();
        client
            .execute_update(&format!(
                "create pipe ab with source ('source.mode.double-living'='true', \
                 'source.inclusion'='all') with sink ('sink.ip'='127.0.0.1', 'sink.port'='{}')",
                b.port()
            ))
            .await
            .unwrap();
        let mut sender = iotdb_sender(&a).await;
        for plan in [
            iotdb_wire::user_plan(621, "alice", Some("alice_pw1"), None),
            // CREATE ROLE readers; GRANT READ_DATA ON root.sg.** TO ROLE readers;
            // GRANT ROLE readers TO alice.
            iotdb_wire::privilege_plan(622, "", "readers", &[], &[], false),
            iotdb_wire::privilege_plan(625, "", "readers", &[0], &["root.sg.**"], false),
            iotdb_wire::privilege_plan(627, "alice", "readers", &[], &[], false),
            // GRANT WRITE_DATA, WRITE_SCHEMA ON root.sg.** TO USER alice WITH GRANT OPTION;
            // GRANT USE_PIPE TO USER alice (a global privilege: no path).
            iotdb_wire::privilege_plan(626, "alice", "", &[1, 3], &["root.sg.**"], true),
            iotdb_wire::privilege_plan(626, "alice", "", &[9], &[], false),
        ] {
            send_ok(&mut sender, rt::TRANSFER_CONFIG_PLAN, plan).await;
        }
        assert_eq!(
            privileges_of(&mut client, "user alice").await,
            [
                "readers|root.sg.**|READ_DATA|false",
                "|root.**|USE_PIPE|false",
                "|root.sg.**|WRITE_DATA|true",
                "|root.sg.**|WRITE_SCHEMA|true",
            ]
        );
        // alice has what was granted: she may write under root.sg and not elsewhere.
        let mut alice = Client::connect(&ClientOptions {
            user: "alice".into(),
            password: "alice_pw1".into(),
            ..a.client_options()
        })
        .await
        .unwrap();
        alice
            .execute_update("insert into root.sg.d1(time, s1) values (1, 1)")
            .await
            .unwrap();
        assert!(alice
            .execute_update("insert into root.other.d1(time, s1) values (1, 1)")
            .await
            .is_err());

        // REVOKE WRITE_DATA ON root.sg.** FROM USER alice; REVOKE ROLE readers FROM alice;
        // REVOKE READ_DATA ON root.sg.** FROM ROLE readers.
        for plan in [
            iotdb_wire::privilege_plan(628, "alice", "", &[1], &["root.sg.**"], false),
            iotdb_wire::privilege_plan(630, "alice", "readers", &[], &[], false),
            iotdb_wire::privilege_plan(629, "", "readers", &[0], &["root.sg.**"], false),
        ] {
            send_ok(&mut sender, rt::TRANSFER_CONFIG_PLAN, plan).await;
        }
        assert_eq!(
            privileges_of(&mut client, "user alice").await,
            ["|root.**|USE_PIPE|false", "|root.sg.**|WRITE_SCHEMA|true"]
        );
        assert!(privileges_of(&mut client, "role readers").await.is_empty());
        // A grant to a user that does not exist (yet) is refused, so the sender sends it again.
        send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(626, "nobody", "", &[0], &["root.sg.**"], false),
            1810,
        )
        .await;
        // A relational privilege (SELECT, 17) is the table model's: refused, naming why.
        let status = send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(626, "alice", "", &[17], &[], false),
            1805,
        )
        .await;
        assert!(status.message.unwrap_or_default().contains("tree model"));
        // Root's privileges are this instance's own.
        send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(628, "root", "", &[4], &[], false),
            1809,
        )
        .await;
        // DROP ROLE readers.
        send_ok(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(624, "", "readers", &[], &[], false),
        )
        .await;
        assert!(rows(&mut client, "list role")
            .await
            .unwrap()
            .iter()
            .all(|r| r[0] != "readers"));
        // A local change goes to B; what the IoTDB sender sent does not.
        client
            .execute_update("create role local_marker")
            .await
            .unwrap();
    });
    let mut on_b = rt.block_on(Client::connect(&b.client_options())).unwrap();
    duet_testkit::wait_for("the local role on B", Duration::from_secs(20), || {
        let roles = rt.block_on(rows(&mut on_b, "list role")).unwrap();
        roles.iter().any(|r| r[0] == "local_marker").then_some(())
    })
    .unwrap();
    let users: Vec<String> = rt
        .block_on(rows(&mut on_b, "list user"))
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(users, ["root"]);
}

/// An IoTDB sender whose handshake user holds privileges on part of the tree: each write, schema
/// change and privilege plan is checked as IoTDB 2.0's receiver checks the statements and plans it
/// executes as that user — what falls inside applies, a request with anything outside is refused
/// whole with 803 (or 817 for a grant without the grant option) and changes nothing.
#[test]
fn an_iotdb_senders_requests_are_checked_path_by_path_against_its_user() {
    let server = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = Client::connect(&server.client_options()).await.unwrap();
        for sql in [
            "create user part 'part1234'",
            "create user other 'other1234'",
            "grant write_data, write_schema on root.pa.** to user part",
        ] {
            client.execute_update(sql).await.unwrap();
        }
        let params: Vec<(&str, &str)> = SENDER
            .iter()
            .map(|(k, v)| match *k {
                "username" => (*k, "part"),
                "password" => (*k, "part1234"),
                _ => (*k, *v),
            })
            .collect();
        let mut sender = pipe_sender::connect(&server, &params).await.unwrap();
        let row = |device: &str| InsertRow {
            device: device.into(),
            aligned: false,
            time: 10,
            cells: vec![("s".into(), RowCell::Value(Value::Int64(5)))],
        };
        send_ok(
            &mut sender,
            rt::TRANSFER_TABLET_INSERT_NODE,
            iotdb_wire::insert_row_node(&row("root.pa.d1")),
        )
        .await;
        // Outside root.pa, together with a row inside: refused whole, naming the series outside.
        let status = send_expecting(
            &mut sender,
            rt::TRANSFER_TABLET_INSERT_NODE,
            iotdb_wire::insert_rows_node(&[row("root.pa.d2"), row("root.pb.d1")]),
            803,
        )
        .await;
        assert_eq!(
            status.message.unwrap_or_default(),
            "No permissions for this operation, please add privilege WRITE_DATA on [root.pb.d1.s]"
        );
        // A database needs MANAGE_DATABASE; a series outside WRITE_SCHEMA there.
        let status = send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::create_database_plan("root.pc"),
            803,
        )
        .await;
        assert!(status
            .message
            .unwrap_or_default()
            .ends_with("MANAGE_DATABASE"));
        send_expecting(
            &mut sender,
            rt::TRANSFER_PLAN_NODE,
            iotdb_wire::create_time_series_node("root.pb.d2.s", dt::INT64, 2, 1),
            803,
        )
        .await;
        // A grant needs the grant option on what it grants.
        send_expecting(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(626, "other", "", &[1], &["root.pa.**"], false),
            817,
        )
        .await;
        assert_eq!(
            rows(&mut client, "show timeseries root.**")
                .await
                .unwrap()
                .into_iter()
                .map(|r| r[0].clone())
                .collect::<Vec<_>>(),
            ["root.pa.d1.s"]
        );
        assert!(rows(&mut client, "list privileges of user other")
            .await
            .unwrap()
            .is_empty());
        // Granted the option, the grant applies.
        client
            .execute_update("grant write_data on root.pa.** to user part with grant option")
            .await
            .unwrap();
        send_ok(
            &mut sender,
            rt::TRANSFER_CONFIG_PLAN,
            iotdb_wire::privilege_plan(626, "other", "", &[1], &["root.pa.**"], false),
        )
        .await;
        assert_eq!(
            rows(&mut client, "list privileges of user other")
                .await
                .unwrap()
                .len(),
            1
        );
    });
}
