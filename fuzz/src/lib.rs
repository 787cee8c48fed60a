//! The fuzz targets of Duet's decoders, shared by the cargo-fuzz binaries in `fuzz/fuzz_targets/` and by
//! the stable harness `crates/server/tests/fuzz_decoders.rs` (which includes this file as a module), so
//! CI and long libFuzzer runs exercise exactly the same code on the same corpus (`fuzz/corpus/<target>/`).
//!
//! A target takes arbitrary bytes and must return: any panic, or any allocation out of proportion to the
//! input, is a bug. Each also lists the seeds its corpus starts from (valid encodings), written by
//! `cargo test -p duet-server --test fuzz_decoders -- --ignored write_seed_corpus`.

use std::collections::BTreeMap;
use std::future::Future;

use duet_proto::codec::{self, Protocol};
use duet_proto::pipe_body::{self, request_type};
use duet_proto::pipe_compressed::{self as compress, Compressor};
use duet_proto::pipe_slice::Slice;
use duet_proto::pipe_tablet::{self, TabletRef};
use duet_proto::rpc::{self, Decoded, Request};
use duet_proto::schema_template::{self, SerializedMeasurement, SerializedTemplate};
use duet_proto::t;
use duet_proto::tablet::{self, RecordValue};
use duet_proto::tsblock;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_runtime::handshake::{self, ReceiverState};
use duet_runtime::slice::{self, SliceBuffer, SliceOutcome};
use duet_runtime::transfer;
use duet_runtime::ServerIdentity;
use duet_storage::{DeleteOp, InsertOp, LogEntry, Op, Origin, Version};
use duet_testkit::iotdb_wire;
use thrift::protocol::{
    TFieldIdentifier, TListIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};

/// One fuzz target: its name (the corpus directory) and its entry point.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Valid encodings the corpus starts from (`seed-<name>` files).
    pub seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
    /// Inputs that crashed a decoder once (`crash-<name>` files), kept so they stay fixed.
    pub crashers: fn() -> Vec<(&'static str, Vec<u8>)>,
}

/// Every target, in the order the harness runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "thrift_call",
        run: thrift_call,
        seeds: thrift_call_seeds,
        crashers: thrift_call_crashers,
    },
    Target {
        name: "tablet",
        run: tablet,
        seeds: tablet_seeds,
        crashers: tablet_crashers,
    },
    Target {
        name: "tsblock",
        run: tsblock,
        seeds: tsblock_seeds,
        crashers: tsblock_crashers,
    },
    Target {
        name: "pipe_body",
        run: pipe_body,
        seeds: pipe_body_seeds,
        crashers: pipe_body_crashers,
    },
    Target {
        name: "sql",
        run: sql,
        seeds: sql_seeds,
        crashers: sql_crashers,
    },
];

// ---- thrift_call ---------------------------------------------------------------------------------

/// A Thrift call frame payload as the server decodes it (binary or compact, by its first byte), then the
/// write requests' value buffers as the server decodes them; and the same bytes as a client-side reply
/// and as a stream of length-prefixed frames.
pub fn thrift_call(data: &[u8]) {
    if let Ok(Decoded::Call(_, request)) = rpc::decode_call(data) {
        match request {
            Request::InsertTablet(r) => tablet_request(&r.timestamps, &r.values, &r.types, r.size),
            Request::InsertTablets(r) => {
                for (((timestamps, values), types), size) in r
                    .timestamps_list
                    .iter()
                    .zip(&r.values_list)
                    .zip(&r.types_list)
                    .zip(&r.size_list)
                {
                    tablet_request(timestamps, values, types, *size);
                }
            }
            Request::InsertRecord(r) => {
                let _ = tablet::decode_record(&r.values, r.measurements.len());
            }
            Request::InsertRecords(r) => {
                for (values, measurements) in r.values_list.iter().zip(&r.measurements_list) {
                    let _ = tablet::decode_record(values, measurements.len());
                }
            }
            Request::CreateSchemaTemplate(r) => {
                let _ = schema_template::decode(&r.serialized_template);
            }
            _ => {}
        }
    }
    let _ = rpc::decode_struct_reply::<t::TSExecuteStatementResp>(data);
    let _ = rpc::decode_struct_reply::<t::TSFetchResultsResp>(data);
    read_frames(data);
}

fn tablet_request(timestamps: &[u8], values: &[u8], types: &[i32], size: i32) {
    let Ok(n) = usize::try_from(size) else {
        return;
    };
    let types: Option<Vec<DataType>> = types.iter().map(|c| DataType::from_code(*c)).collect();
    if let (Ok(_), Some(types)) = (tablet::decode_timestamps(timestamps, n), types) {
        let _ = tablet::decode_tablet_values(values, &types, n);
    }
}

/// Reads `data` as a byte stream of frames, decoding each, until it ends or fails. A byte slice is always
/// ready, so one poll runs the reader to its end without a runtime.
fn read_frames(data: &[u8]) {
    let mut frames = std::pin::pin!(async {
        let mut stream = data;
        while let Ok(Some(frame)) = codec::read_frame(&mut stream, 1 << 20).await {
            let _ = rpc::decode_call(&frame);
        }
    });
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = frames.as_mut().poll(&mut context);
}

fn thrift_call_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (protocol, tag) in [(Protocol::Binary, "binary"), (Protocol::Compact, "compact")] {
        let calls = call_seeds(protocol);
        for (name, payload) in calls {
            out.push((leak(format!("{tag}-{name}")), payload));
        }
    }
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn call_seeds(protocol: Protocol) -> Vec<(&'static str, Vec<u8>)> {
    let mut configuration = BTreeMap::new();
    configuration.insert("version".to_string(), "V_1_0".to_string());
    let open = t::TSOpenSessionReq::new(
        t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
        "UTC".into(),
        "root".into(),
        Some("root".into()),
        Some(configuration),
    );
    let execute = t::TSExecuteStatementReq::new(
        1,
        "select s1 from root.sg.d1 where time > 10".into(),
        1,
        Some(5000),
        None,
        None,
        None,
    );
    let columns = sample_columns(3);
    let tablet = t::TSInsertTabletReq::new(
        1,
        "root.sg.d1".into(),
        vec!["s1".into(), "s2".into(), "s3".into()],
        tablet::encode_tablet_values(&columns, 3),
        tablet::encode_timestamps(&[1, 2, 3]),
        columns
            .iter()
            .map(|c| i32::from(c.data_type.code()))
            .collect(),
        3,
        false,
        None,
        None,
        None,
        None,
        None,
    );
    let record = t::TSInsertRecordReq::new(
        1,
        "root.sg.d1".into(),
        vec!["s1".into(), "s2".into()],
        tablet::encode_record(&[
            RecordValue::Int64(7),
            RecordValue::Binary(DataType::Text, b"x".to_vec()),
        ]),
        5,
        None,
        None,
        None,
    );
    let pipe = t::TPipeTransferReq::new(1, 51, pipe_body::encode_map(&BTreeMap::new()));
    let template = t::TSCreateSchemaTemplateReq::new(
        1,
        "t1".into(),
        schema_template::encode(&SerializedTemplate {
            name: Some("t1".into()),
            aligned: true,
            measurements: vec![SerializedMeasurement {
                prefix: Some(String::new()),
                aligned: true,
                name: Some("s1".into()),
                data_type: 2,
                encoding: 2,
                compressor: 1,
            }],
        }),
    );
    let mut out = Vec::new();
    let mut push = |name: &'static str, payload: duet_proto::Result<Vec<u8>>| {
        if let Ok(payload) = payload {
            out.push((name, payload));
        }
    };
    // Each seed: its name, then the method, the sequence id and the request of the call.
    macro_rules! struct_call {
        ($name:literal, $method:literal, $seq:literal, $req:expr) => {
            push(
                $name,
                rpc::encode_struct_call(protocol, $method, $seq, $req),
            )
        };
    }
    struct_call!("open-session", "openSession", 1, &open);
    struct_call!("execute", "executeStatementV2", 1, &execute);
    struct_call!("insert-tablet", "insertTablet", 1, &tablet);
    struct_call!("insert-record", "insertRecord", 1, &record);
    struct_call!("pipe-transfer", "pipeTransfer", -1, &pipe);
    struct_call!(
        "create-schema-template",
        "createSchemaTemplate",
        1,
        &template
    );
    push(
        "request-statement-id",
        rpc::encode_i64_call(protocol, "requestStatementId", 9),
    );
    push(
        "get-properties",
        rpc::encode_empty_call(protocol, "getProperties"),
    );
    out
}

/// `method(1: struct { …what `body` writes… })`, left open where `body` stops.
fn open_call(
    protocol: Protocol,
    method: &str,
    body: impl FnOnce(&mut dyn TOutputProtocol) -> thrift::Result<()>,
) -> Vec<u8> {
    codec::encode_message(protocol, method, TMessageType::Call, 7, |p| {
        p.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1))?;
        p.write_struct_begin(&TStructIdentifier::new("req"))?;
        body(p)
    })
    .unwrap_or_default()
}

fn raw(p: &mut dyn TOutputProtocol, bytes: &[u8]) -> thrift::Result<()> {
    bytes.iter().try_for_each(|b| p.write_byte(*b))
}

/// The frames of issue 8: a list header claiming 2^31-1 elements aborted duetd; negative (binary) and
/// 2^32-1 (compact) lengths panicked a worker; plus deep nesting.
fn thrift_call_crashers() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (protocol, tag) in [(Protocol::Binary, "binary"), (Protocol::Compact, "compact")] {
        out.push((
            leak(format!("{tag}-list-of-i32max-strings")),
            open_call(protocol, "insertTablet", |p| {
                p.write_field_begin(&TFieldIdentifier::new("measurements", TType::List, 3))?;
                p.write_list_begin(&TListIdentifier::new(TType::String, i32::MAX))
            }),
        ));
        out.push((
            leak(format!("{tag}-struct-nested-2000-deep")),
            open_call(protocol, "executeStatementV2", |p| {
                p.write_field_begin(&TFieldIdentifier::new("unknown", TType::Struct, 99))?;
                for _ in 0..2000 {
                    p.write_struct_begin(&TStructIdentifier::new("s"))?;
                    p.write_field_begin(&TFieldIdentifier::new("s", TType::Struct, 1))?;
                }
                Ok(())
            }),
        ));
    }
    out.push((
        "binary-list-size-minus-1",
        open_call(Protocol::Binary, "insertTablet", |p| {
            p.write_field_begin(&TFieldIdentifier::new("types", TType::List, 6))?;
            p.write_list_begin(&TListIdentifier::new(TType::I32, -1))
        }),
    ));
    out.push((
        "binary-string-length-minus-2",
        open_call(Protocol::Binary, "executeStatementV2", |p| {
            p.write_field_begin(&TFieldIdentifier::new("statement", TType::String, 2))?;
            p.write_i32(-2)
        }),
    ));
    out.push((
        "compact-list-size-u32max",
        open_call(Protocol::Compact, "insertTablet", |p| {
            p.write_field_begin(&TFieldIdentifier::new("types", TType::List, 6))?;
            raw(p, &[0xF5, 0xff, 0xff, 0xff, 0xff, 0x0f])
        }),
    ));
    out.push((
        "compact-string-length-u32max",
        open_call(Protocol::Compact, "executeStatementV2", |p| {
            p.write_field_begin(&TFieldIdentifier::new("statement", TType::String, 2))?;
            raw(p, &[0xff, 0xff, 0xff, 0xff, 0x0f])
        }),
    ));
    out
}

// ---- tablet -------------------------------------------------------------------------------------

/// The first byte picks up to 7 column types (3 bits each from the next bytes) and the row count; the
/// rest is the timestamps, values and record buffers of `insertTablet` and `insertRecord(s)`.
pub fn tablet(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let n_columns = usize::from(shape & 0x07);
    let n_rows = usize::from(shape >> 3);
    let Some(type_bytes) = rest.get(..n_columns) else {
        return;
    };
    let types: Vec<DataType> = type_bytes
        .iter()
        .map(|b| DataType::ALL[usize::from(*b) % DataType::ALL.len()])
        .collect();
    let body = rest.get(n_columns..).unwrap_or_default();
    let _ = tablet::decode_timestamps(body, n_rows);
    let _ = tablet::decode_tablet_values(body, &types, n_rows);
    let _ = tablet::decode_record(body, n_columns);
    // Counts far beyond the body, as a request's `size` may claim.
    let _ = tablet::decode_tablet_values(body, &types, usize::from(shape) << 24);
    let _ = tablet::decode_record(body, usize::from(shape) << 24);
}

fn tablet_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let columns = sample_columns(5);
    let types: Vec<u8> = columns
        .iter()
        .map(|c| {
            DataType::ALL
                .iter()
                .position(|t| *t == c.data_type)
                .and_then(|p| u8::try_from(p).ok())
                .unwrap_or(0)
        })
        .collect();
    let shape = (5u8 << 3) | u8::try_from(types.len()).unwrap_or(0);
    let mut values = vec![shape];
    values.extend_from_slice(&types);
    values.extend(tablet::encode_tablet_values(&columns, 5));
    let mut times = vec![5u8 << 3];
    times.extend(tablet::encode_timestamps(&[1, 2, 3, 4, 5]));
    let mut record = vec![2u8 | (1 << 3), 0, 0];
    record.extend(tablet::encode_record(&[
        RecordValue::Double(1.5),
        RecordValue::Binary(DataType::Blob, vec![0, 1, 2]),
    ]));
    vec![
        ("values", values),
        ("timestamps", times),
        ("record", record),
    ]
}

/// Counts far beyond the buffers: a tablet of 2^31 TEXT rows reserved 48 GB before reading a value.
fn tablet_crashers() -> Vec<(&'static str, Vec<u8>)> {
    let text = DataType::ALL
        .iter()
        .position(|t| *t == DataType::Text)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0);
    vec![
        (
            "text-rows-beyond-the-values",
            vec![0xF9, text, 0, 0, 0, 1, b'a'],
        ),
        (
            "negative-text-length",
            vec![0x09, text, 0xff, 0xff, 0xff, 0xfe],
        ),
    ]
}

/// Columns of several types over `rows` rows, with some nulls.
fn sample_columns(rows: usize) -> Vec<Column> {
    let nulls: Vec<bool> = (0..rows).map(|r| r % 3 == 1).collect();
    let range = 0..i32::try_from(rows).unwrap_or(0);
    vec![
        Column {
            data_type: DataType::Int32,
            nulls: Some(nulls.clone()),
            values: ColumnValues::Int32(range.clone().collect()),
        },
        Column {
            data_type: DataType::Text,
            nulls: None,
            values: ColumnValues::Binary(
                range
                    .clone()
                    .map(|i| format!("v{i}").into_bytes())
                    .collect(),
            ),
        },
        Column {
            data_type: DataType::Double,
            nulls: Some(nulls),
            values: ColumnValues::Double(range.clone().map(f64::from).collect()),
        },
        Column {
            data_type: DataType::Boolean,
            nulls: None,
            values: ColumnValues::Boolean(range.clone().map(|i| i % 2 == 0).collect()),
        },
        Column {
            data_type: DataType::Timestamp,
            nulls: None,
            values: ColumnValues::Int64(range.map(i64::from).collect()),
        },
    ]
}

// ---- tsblock ------------------------------------------------------------------------------------

/// A TsBlock as the client decodes a query result page, with and without logical types.
pub fn tsblock(data: &[u8]) {
    let _ = tsblock::decode(data, None);
    let _ = tsblock::decode(data, Some(&DataType::ALL));
}

fn tsblock_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let columns = sample_columns(6);
    let times: Vec<i64> = (100..106).collect();
    let mut out = Vec::new();
    if let Ok(block) = tsblock::encode(&times, &columns, 0, 6) {
        out.push(("five-columns", block));
    }
    if let Ok(block) = tsblock::encode(&times, &columns[..1], 2, 5) {
        out.push(("one-column-window", block));
    }
    out
}

/// Column and position counts of 2^31-1, and a negative value length.
fn tsblock_crashers() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("columns-i32max", vec![0x7f, 0xff, 0xff, 0xff, 1, 0]),
        (
            "positions-i32max",
            [
                &[0, 0, 0, 1, 5, 0x7f, 0xff, 0xff, 0xff, 2, 3, 0][..],
                &[0; 64],
            ]
            .concat(),
        ),
        (
            "negative-value-length",
            [
                &[0, 0, 0, 1, 5, 0, 0, 0, 1, 2, 3][..],
                &[0, 0, 0, 0, 0, 0, 0, 0, 1],
                &[0, 0xff, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ),
    ]
}

// ---- pipe_body ----------------------------------------------------------------------------------

/// Request types a pipe receiver reads, picked by the first byte.
const PIPE_TYPES: [i16; 22] = [
    request_type::HANDSHAKE_DATANODE_V2,
    request_type::TRANSFER_TABLET_RAW,
    request_type::TRANSFER_TABLET_BATCH,
    request_type::TRANSFER_TABLET_RAW_V2,
    request_type::TRANSFER_TABLET_BATCH_V2,
    compress::TRANSFER_COMPRESSED,
    transfer::DUET_TRANSFER_ENTRIES,
    slice::TRANSFER_SLICE,
    request_type::TRANSFER_TABLET_INSERT_NODE,
    request_type::TRANSFER_TABLET_INSERT_NODE_V2,
    request_type::TRANSFER_TABLET_BINARY,
    request_type::TRANSFER_TABLET_BINARY_V2,
    request_type::TRANSFER_PLAN_NODE,
    request_type::TRANSFER_TS_FILE_PIECE,
    request_type::TRANSFER_TS_FILE_SEAL,
    request_type::TRANSFER_TS_FILE_PIECE_WITH_MOD,
    request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD,
    request_type::TRANSFER_CONFIG_PLAN,
    request_type::TRANSFER_SCHEMA_SNAPSHOT_PIECE,
    request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL,
    request_type::TRANSFER_CONFIG_SNAPSHOT_PIECE,
    request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL,
];

/// A `pipeTransfer` body as the receiver decodes it: the first byte picks the request type.
pub fn pipe_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let type_ = PIPE_TYPES[usize::from(selector) % PIPE_TYPES.len()];
    pipe_request(type_, body);
}

fn pipe_request(type_: i16, body: &[u8]) {
    match type_ {
        request_type::HANDSHAKE_DATANODE_V2 => {
            let _ = pipe_body::decode_map(body);
            let identity = ServerIdentity {
                cluster_id: "fuzz".into(),
                timestamp_precision: "ms".into(),
                version: "0".into(),
                metrics_port: Some(9091),
            };
            let mut state = ReceiverState::default();
            let _ = handshake::handshake(&mut state, &identity, body, |_, _| Ok(()));
        }
        compress::TRANSFER_COMPRESSED => {
            if let Ok((_, inner_type, inner)) = compress::decompress(body) {
                if inner_type != compress::TRANSFER_COMPRESSED {
                    pipe_request(inner_type, &inner);
                }
            }
        }
        transfer::DUET_TRANSFER_ENTRIES => {
            let _ = transfer::decode_entries(body);
        }
        request_type::TRANSFER_TS_FILE_PIECE | request_type::TRANSFER_TS_FILE_PIECE_WITH_MOD => {
            let _ = pipe_body::decode_file_piece(body);
        }
        request_type::TRANSFER_TS_FILE_SEAL => {
            let _ = pipe_body::decode_file_seal_v1(body);
        }
        request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD => {
            let _ = pipe_body::decode_file_seal_v2(body);
        }
        request_type::TRANSFER_CONFIG_PLAN => {
            let _ = duet_proto::config_plan::decode_config_plan(body);
        }
        // A snapshot piece's bytes end up in a file the seal has parsed: the body stands for both.
        request_type::TRANSFER_SCHEMA_SNAPSHOT_PIECE => {
            let _ = pipe_body::decode_file_piece(body);
            let _ = duet_proto::schema_snapshot::parse_mtree_snapshot(body);
        }
        request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL => {
            if let Ok(seal) = pipe_body::decode_file_seal_v2(body) {
                let _ = duet_proto::schema_snapshot::schema_snapshot_seal(&seal.params);
            }
        }
        request_type::TRANSFER_CONFIG_SNAPSHOT_PIECE => {
            let _ = pipe_body::decode_file_piece(body);
            let _ = duet_proto::config_snapshot::parse_config_mtree(body);
            let _ = duet_proto::config_snapshot::parse_template_table(body);
            let _ = duet_proto::config_snapshot::parse_ttl_snapshot(body);
            let _ = duet_proto::config_snapshot::parse_user_file(body);
        }
        request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL => {
            if let Ok(seal) = pipe_body::decode_file_seal_v2(body) {
                let _ = duet_proto::config_snapshot::config_snapshot_seal(&seal.params);
            }
        }
        slice::TRANSFER_SLICE => {
            // A slice that reads writes back as the same bytes.
            if let Ok(one) = Slice::decode(body) {
                assert_eq!(one.encode(), body, "a slice re-encoded differs");
            }
            // The body is one slice; a request in one slice is complete at once and is read like the
            // receiver reads it (a slice of a slice is refused there, so it is not followed here).
            let mut buffer = SliceBuffer::default();
            if let SliceOutcome::Complete(inner) = buffer.receive(body) {
                if inner.type_ != slice::TRANSFER_SLICE {
                    pipe_request(inner.type_, &inner.body);
                }
            }
        }
        other => {
            let _ = pipe_tablet::decode_write_request(other, body);
        }
    }
}

/// The input byte that selects pipe request type `type_` (its index in `PIPE_TYPES`).
fn selector_of(type_: i16) -> u8 {
    PIPE_TYPES
        .iter()
        .position(|t| *t == type_)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0)
}

fn pipe_body_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |type_: i16, body: Vec<u8>| {
        let mut out = vec![selector_of(type_)];
        out.extend(body);
        out
    };
    let columns = sample_columns(4);
    let measurements: Vec<String> = (0..columns.len()).map(|i| format!("s{i}")).collect();
    let times = [1, 2, 3, 4];
    let tablets = pipe_tablet::encode_tablet_batch_v2([TabletRef {
        device: "root.sg.d1",
        aligned: true,
        measurements: &measurements,
        columns: &columns,
        times: &times,
    }]);
    let entries = vec![
        LogEntry {
            lsn: 1,
            origin: Origin::Pipe { instance: 2 },
            version: Version {
                hlc: 10,
                instance: 2,
            },
            ops: vec![Op::Insert(InsertOp {
                device: "root.sg.d1".into(),
                aligned: false,
                measurements: measurements.clone(),
                columns: columns.clone(),
                times: times.to_vec(),
            })],
        },
        LogEntry {
            lsn: 2,
            origin: Origin::Local,
            version: Version {
                hlc: 11,
                instance: 1,
            },
            ops: vec![Op::Delete(DeleteOp {
                series: vec!["root.sg.d1.s0".into()],
                start: 0,
                end: 5,
            })],
        },
    ];
    let batch = transfer::encode_entries(&entries);
    let mut handshake = BTreeMap::new();
    handshake.insert("clusterID".to_string(), "peer".to_string());
    handshake.insert("timestampPrecision".to_string(), "ms".to_string());
    handshake.insert("username".to_string(), "root".to_string());
    handshake.insert("password".to_string(), "root".to_string());
    let mut out = vec![
        (
            "handshake",
            with(
                request_type::HANDSHAKE_DATANODE_V2,
                pipe_body::encode_map(&handshake),
            ),
        ),
        (
            "tablet-batch-v2",
            with(request_type::TRANSFER_TABLET_BATCH_V2, tablets.clone()),
        ),
        (
            "duet-entries",
            with(transfer::DUET_TRANSFER_ENTRIES, batch.clone()),
        ),
        (
            "insert-nodes-batch-v2",
            with(
                request_type::TRANSFER_TABLET_BATCH_V2,
                iotdb_insert_nodes_batch(),
            ),
        ),
        (
            "delete-plan-node",
            with(
                request_type::TRANSFER_PLAN_NODE,
                iotdb_wire::delete_data_node(&["root.sg.d1.s0", "root.sg.**"], 0, 9),
            ),
        ),
        (
            "schema-snapshot",
            with(
                request_type::TRANSFER_SCHEMA_SNAPSHOT_PIECE,
                iotdb_wire::mtree_snapshot(
                    "sg",
                    &[iotdb_wire::MTreeNode::Device {
                        name: "d1".into(),
                        aligned: Some(true),
                        template: None,
                        children: vec![iotdb_wire::MTreeNode::Measurement {
                            name: "s1".into(),
                            type_code: iotdb_wire::data_type::INT64,
                            encoding: 2,
                            compressor: 1,
                            alias: Some("a".into()),
                        }],
                    }],
                ),
            ),
        ),
        (
            "config-snapshot",
            with(
                request_type::TRANSFER_CONFIG_SNAPSHOT_PIECE,
                iotdb_wire::config_mtree_snapshot(&[iotdb_wire::ConfigMNode::Database {
                    name: "sg".into(),
                    full_path: "root.sg".into(),
                    template: Some(0),
                    children: Vec::new(),
                }]),
            ),
        ),
        (
            "schema-snapshot-seal",
            with(
                request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL,
                iotdb_wire::schema_snapshot_seal(
                    ("mtree.snapshot", 10),
                    Some(("tlog.txt.snapshot", 5)),
                    "root.**",
                    "root.sg",
                    "19,22,53",
                ),
            ),
        ),
        (
            "wal-entry",
            with(
                request_type::TRANSFER_TABLET_BINARY,
                iotdb_wire::insert_tablet_wal_entry("root.sg.d1", false, &[1, 2], &wire_columns()),
            ),
        ),
        (
            "internal-create-multi-plan-node",
            with(
                request_type::TRANSFER_PLAN_NODE,
                iotdb_wire::internal_create_multi_time_series_node(&[
                    ("root.sg.d1", true, &[("s1", 2, 4, 7), ("s2", 5, 0, 1)]),
                    ("root.sg.d2", false, &[("s3", 0, 2, 8)]),
                ]),
            ),
        ),
        (
            "batch-activate-plan-node",
            with(
                request_type::TRANSFER_PLAN_NODE,
                iotdb_wire::batch_activate_template_node(&["root.sg.d1", "root.sg.d2"], 3, false),
            ),
        ),
        (
            "create-template-plan",
            with(
                request_type::TRANSFER_CONFIG_PLAN,
                iotdb_wire::create_schema_template_plan(
                    "t1",
                    true,
                    &[("s1", 2, 4, 7), ("s2", 4, 8, 1)],
                ),
            ),
        ),
        (
            "deactivate-template-plan",
            with(
                request_type::TRANSFER_CONFIG_PLAN,
                iotdb_wire::pipe_deactivate_template_plan(&[(
                    "root.sg.**",
                    &[("t1", false, &[("s1", 2, 4, 7)])],
                )]),
            ),
        ),
        (
            "enriched-delete-time-series-plan",
            with(
                request_type::TRANSFER_CONFIG_PLAN,
                iotdb_wire::pipe_enriched_plan(
                    &iotdb_wire::pipe_delete_time_series_plan(&[
                        "root.sg.d1.s1",
                        "root.sg.d2",
                        "root.sg.d2.**",
                    ]),
                    "cluster-1",
                ),
            ),
        ),
        (
            "create-user-plan",
            with(
                request_type::TRANSFER_CONFIG_PLAN,
                iotdb_wire::user_plan(621, "alice", Some("alice_pw1"), None),
            ),
        ),
    ];
    if let Ok(compressed) = compress::compress(
        1,
        transfer::DUET_TRANSFER_ENTRIES,
        &batch,
        &[Compressor::Snappy],
    ) {
        out.push((
            "compressed-entries",
            with(compress::TRANSFER_COMPRESSED, compressed),
        ));
    }
    let compressed_tablets = [
        ("compressed-tablets", vec![Compressor::Snappy]),
        ("gzip-tablets", vec![Compressor::Gzip]),
        ("lz4-tablets", vec![Compressor::Lz4]),
        ("zstd-tablets", vec![Compressor::Zstd { level: 3 }]),
        ("lzma2-tablets", vec![Compressor::Lzma2]),
        (
            "chained-tablets",
            vec![
                Compressor::Gzip,
                Compressor::Lz4,
                Compressor::Zstd { level: 1 },
            ],
        ),
    ];
    for (name, chain) in compressed_tablets {
        if let Ok(compressed) =
            compress::compress(1, request_type::TRANSFER_TABLET_BATCH_V2, &tablets, &chain)
        {
            out.push((name, with(compress::TRANSFER_COMPRESSED, compressed)));
        }
    }
    // A request in one slice (complete at once), and the first of three.
    let whole = Slice {
        order_id: 1,
        origin_type: request_type::TRANSFER_TABLET_BATCH_V2,
        origin_body_size: i32::try_from(tablets.len()).unwrap_or(i32::MAX),
        body: &tablets,
        index: 0,
        count: 1,
    };
    out.push((
        "sliced-tablets",
        with(slice::TRANSFER_SLICE, whole.encode()),
    ));
    let first = Slice {
        body: &tablets[..tablets.len() / 3],
        count: 3,
        ..whole.clone()
    };
    out.push((
        "first-of-three-slices",
        with(slice::TRANSFER_SLICE, first.encode()),
    ));
    out
}

/// Two columns (INT64 with a null, TEXT) as an IoTDB sender's tablets hold them.
fn wire_columns() -> Vec<iotdb_wire::TabletColumn> {
    use iotdb_wire::{data_type, TabletColumn, Value};
    vec![
        TabletColumn {
            name: "s0".into(),
            type_code: data_type::INT64,
            values: vec![Some(Value::Int64(1)), None],
        },
        TabletColumn {
            name: "s1".into(),
            type_code: data_type::TEXT,
            values: vec![None, Some(Value::Text("t".into()))],
        },
    ]
}

/// A type-13 body as a default IoTDB sender sends it: an InsertTabletNode, an InsertRowsNode, a raw
/// tablet.
fn iotdb_insert_nodes_batch() -> Vec<u8> {
    use iotdb_wire::{InsertRow, RowCell, Value};
    let rows = iotdb_wire::insert_rows_node(&[InsertRow {
        device: "root.sg.d2".into(),
        aligned: false,
        time: 5,
        cells: vec![
            ("a".into(), RowCell::Value(Value::Int32(1))),
            ("b".into(), RowCell::Raw("2.5".into())),
            ("c".into(), RowCell::NullOf(2)),
        ],
    }]);
    iotdb_wire::tablet_batch_v2(
        &[],
        &[
            iotdb_wire::insert_tablet_node("root.sg.d1", true, &[1, 2], &wire_columns(), false),
            rows,
        ],
        &[iotdb_wire::raw_tablet_entry(
            "root.sg.d3",
            false,
            &[1, 2],
            &wire_columns(),
        )],
    )
}

/// A snappy block of a few bytes claiming 1 GiB, 2^31-1 tablets, a map of 2^31-1 entries, a gzip
/// stream inflating far past what it declares, and a slice of a request claiming 2^31-1 bytes.
fn pipe_body_crashers() -> Vec<(&'static str, Vec<u8>)> {
    let mut bomb = vec![selector_of(compress::TRANSFER_COMPRESSED), 1, 0];
    bomb.extend_from_slice(&(1i32 << 30).to_be_bytes());
    bomb.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x41]);
    let mut tablets = vec![selector_of(request_type::TRANSFER_TABLET_BATCH_V2)];
    tablets.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    let mut map = vec![selector_of(request_type::HANDSHAKE_DATANODE_V2)];
    map.extend_from_slice(&i32::MAX.to_be_bytes());
    let mut entries = vec![selector_of(transfer::DUET_TRANSFER_ENTRIES)];
    entries.extend_from_slice(&[0xff; 8]);
    // gzip members of 1 MiB of zeros, concatenated (the decoder reads on into the next) to 16 MiB,
    // declaring 1 KiB; and a slice whose request claims 2^31-1 bytes.
    let mut gzip_bomb = vec![selector_of(compress::TRANSFER_COMPRESSED), 1, 1];
    gzip_bomb.extend_from_slice(&1024i32.to_be_bytes());
    if let Ok(member) = Compressor::Gzip.compress(&vec![0; 1 << 20]) {
        gzip_bomb.extend(member.repeat(16));
    }
    let huge_slice = Slice {
        order_id: 1,
        origin_type: request_type::TRANSFER_TABLET_BATCH_V2,
        origin_body_size: i32::MAX,
        body: b"x",
        index: 0,
        count: 2,
    };
    let mut sliced = vec![selector_of(slice::TRANSFER_SLICE)];
    sliced.extend(huge_slice.encode());
    vec![
        ("snappy-claiming-1-gib", bomb),
        ("tablets-i32max", tablets),
        ("map-entries-i32max", map),
        ("duet-entries-u32max", entries),
        ("gzip-16-mib-declaring-1-kib", gzip_bomb),
        ("slice-claiming-i32max", sliced),
    ]
}

// ---- sql ----------------------------------------------------------------------------------------

/// SQL text (lossily decoded from the bytes) through the parser and the CLI's statement splitter.
pub fn sql(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = duet_parser::parse(&text);
    let _ = duet_parser::split_statements(&text);
}

/// Nesting that would overflow the stack without the parser's depth limit.
fn sql_crashers() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "parentheses-1000-deep",
            format!(
                "select s1 from root.sg.d1 where {}s1{}",
                "(".repeat(1000),
                ")".repeat(1000)
            )
            .into_bytes(),
        ),
        (
            "not-1000-deep",
            format!(
                "select s1 from root.sg.d1 where {}s1 > 0",
                "not ".repeat(1000)
            )
            .into_bytes(),
        ),
    ]
}

fn sql_seeds() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("select-where", "select s1, count(s2) from root.sg.d1 where not (s1 + -2 * s2 > 3 or s3 in (1, 'a')) and time >= 2017-11-01T00:00:00 group by ([1, 100), 10ms) limit 5 offset 1 align by device"),
        ("insert", "insert into root.sg.d1(timestamp, s1, s2) aligned values (1, -1.5e3, X'0a'), (now(), NULL, 'x')"),
        ("create-pipe", "create pipe if not exists p with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink', 'node-urls'='127.0.0.1:6668')"),
        ("ddl", "create database root.sg; create aligned timeseries root.sg.d2(s1 INT32 encoding=RLE, s2 FLOAT); delete from root.sg.d1.* where time <= 10; show pipes"),
        ("nested", "select s1 from root.sg.d1 where ((((s1 > 1) and (s2 < 2)) or not (s3 is null)) and s4 between 1 and 2)"),
    ]
    .into_iter()
    .map(|(name, sql)| (name, sql.as_bytes().to_vec()))
    .collect()
}
