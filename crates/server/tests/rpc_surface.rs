//! The client RPCs the Python client does not expose, called through raw Thrift: the V1 execute and
//! fetch layout (`TSQueryDataSet`, decoded and checked value by value), the V1 and V2 path-based
//! queries (raw, last, fast last, aggregation, group by interval), the test inserts, the connection
//! and backup calls, and the IDL methods Duet refuses with a status naming them. Issue 9.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use duet_proto::client::{Client, ClientOptions, Connection, Outcome};
use duet_proto::codec::Protocol;
use duet_proto::query_data_set;
use duet_proto::rpc;
use duet_proto::schema_template;
use duet_proto::t;
use duet_proto::tsblock;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_testkit::Duetd;
use thrift::protocol::TSerializable;

fn options(server: &Duetd) -> ClientOptions {
    ClientOptions {
        port: server.port(),
        ..ClientOptions::default()
    }
}

/// root.v.d1: s1 INT32 = 10·t for t in 1..=9 except 2; s2 DOUBLE = t + 0.5; s3 TEXT at 1, 3, 9;
/// s4 BOOLEAN = t is even.
async fn seeded() -> (Duetd, Client) {
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&options(&server)).await.unwrap();
    for sql in [
        "CREATE DATABASE root.v",
        "CREATE TIMESERIES root.v.d1.s1 WITH DATATYPE=INT32",
        "CREATE TIMESERIES root.v.d1.s2 WITH DATATYPE=DOUBLE",
        "CREATE TIMESERIES root.v.d1.s3 WITH DATATYPE=TEXT",
        "CREATE TIMESERIES root.v.d1.s4 WITH DATATYPE=BOOLEAN",
    ] {
        client.execute_update(sql).await.unwrap();
    }
    for t in 1..=9 {
        let s1 = if t == 2 {
            "null".to_string()
        } else {
            (10 * t).to_string()
        };
        let s3 = match t {
            1 | 3 | 9 => format!("'{}'", char::from(b'a' + t as u8 - 1)),
            _ => "null".to_string(),
        };
        client
            .execute_update(&format!(
                "INSERT INTO root.v.d1(time, s1, s2, s3, s4) VALUES ({t}, {s1}, {}, {s3}, {})",
                f64::from(t) + 0.5,
                t % 2 == 0
            ))
            .await
            .unwrap();
    }
    (server, client)
}

fn expected_s1(t: i64) -> Option<i32> {
    (t != 2).then(|| i32::try_from(10 * t).unwrap())
}

fn expected_s3(t: i64) -> Option<String> {
    matches!(t, 1 | 3 | 9).then(|| char::from(b'a' + u8::try_from(t - 1).unwrap()).to_string())
}

/// A typed accessor of a column's row (`None` for a null; another type fails the test).
macro_rules! cell_reader {
    ($($name:ident: $variant:ident -> $ty:ty),* $(,)?) => {$(
        fn $name(column: &Column, row: usize) -> Option<$ty> {
            match &column.values {
                ColumnValues::$variant(v) => (!column.is_null(row)).then(|| v[row]),
                other => panic!(concat!("not ", stringify!($variant), ": {:?}"), other),
            }
        }
    )*};
}

cell_reader!(int32: Int32 -> i32, int64: Int64 -> i64, double: Double -> f64, boolean: Boolean -> bool);

fn text(column: &Column, row: usize) -> Option<String> {
    match &column.values {
        ColumnValues::Binary(v) => {
            (!column.is_null(row)).then(|| String::from_utf8(v[row].clone()).unwrap())
        }
        other => panic!("not binary: {other:?}"),
    }
}

fn types_of(resp: &t::TSExecuteStatementResp) -> Vec<DataType> {
    resp.data_type_list
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| DataType::from_name(n).unwrap())
        .collect()
}

/// One call of `method` (sequence id 1) that must come back as a reply of the expected type.
async fn call<Req: TSerializable, Resp: TSerializable>(
    connection: &mut Connection,
    method: &str,
    req: &Req,
) -> Resp {
    connection.call(method, 1, req).await.unwrap()
}

/// One call of a method without arguments (Binary protocol) that must come back as a reply of the
/// expected type.
async fn call_without_arguments<Resp: TSerializable>(
    connection: &mut Connection,
    method: &str,
) -> Resp {
    let payload = rpc::encode_empty_call(Protocol::Binary, method).unwrap();
    let reply = connection.round_trip(&payload).await.unwrap();
    rpc::decode_struct_reply(&reply).unwrap()
}

/// A fetch of the next `fetch_size` rows of `query_id`.
fn fetch_request(query_id: i64, fetch_size: i32) -> t::TSFetchResultsReq {
    t::TSFetchResultsReq::new(0, String::new(), fetch_size, query_id, true, None, None)
}

fn assert_ok(status: &t::TSStatus) {
    assert_eq!(status.code, 200, "{status:?}");
}

/// Every row of a TsBlock result (V2), first reply and fetches.
async fn v2_rows(
    connection: &mut Connection,
    resp: t::TSExecuteStatementResp,
) -> (Vec<i64>, Vec<Column>) {
    assert_ok(&resp.status);
    let types = types_of(&resp);
    let mut times = Vec::new();
    let mut columns: Vec<Column> = Vec::new();
    let mut blocks = resp.query_result.clone().unwrap();
    let mut more = resp.more_data.unwrap_or(false);
    loop {
        for block in &blocks {
            let block = tsblock::decode(block, Some(&types)).unwrap();
            times.extend(&block.times);
            merge(&mut columns, block.columns);
        }
        if !more {
            break;
        }
        let fetch = fetch_request(resp.query_id.unwrap(), 1000);
        let page: t::TSFetchResultsResp = call(connection, "fetchResultsV2", &fetch).await;
        assert_ok(&page.status);
        blocks = page.query_result.unwrap();
        more = page.more_data.unwrap();
    }
    (times, columns)
}

fn merge(into: &mut Vec<Column>, columns: Vec<Column>) {
    if into.is_empty() {
        *into = columns;
        return;
    }
    for (a, b) in into.iter_mut().zip(columns) {
        let offset = a.len();
        let b_len = b.len();
        let mut nulls = a.nulls.take().unwrap_or_else(|| vec![false; offset]);
        nulls.extend(b.nulls.clone().unwrap_or_else(|| vec![false; b_len]));
        a.nulls = Some(nulls);
        match (&mut a.values, b.values) {
            (ColumnValues::Boolean(x), ColumnValues::Boolean(y)) => x.extend(y),
            (ColumnValues::Int32(x), ColumnValues::Int32(y)) => x.extend(y),
            (ColumnValues::Int64(x), ColumnValues::Int64(y)) => x.extend(y),
            (ColumnValues::Float(x), ColumnValues::Float(y)) => x.extend(y),
            (ColumnValues::Double(x), ColumnValues::Double(y)) => x.extend(y),
            (ColumnValues::Binary(x), ColumnValues::Binary(y)) => x.extend(y),
            other => panic!("column types differ: {other:?}"),
        }
    }
}

/// Every row of a V1 result: the first reply's `queryDataSet`, then `fetchResults` until it says
/// there is no result set.
async fn v1_rows(
    connection: &mut Connection,
    resp: t::TSExecuteStatementResp,
    fetch_size: i32,
) -> (Vec<i64>, Vec<Column>, usize) {
    assert_ok(&resp.status);
    assert!(resp.query_result.is_none(), "V1 replies carry no TsBlocks");
    let types = types_of(&resp);
    let (mut times, mut columns) =
        query_data_set::decode(resp.query_data_set.as_ref().unwrap(), &types).unwrap();
    let mut fetches = 0;
    loop {
        let fetch = fetch_request(resp.query_id.unwrap(), fetch_size);
        let page: t::TSFetchResultsResp = call(connection, "fetchResults", &fetch).await;
        assert_ok(&page.status);
        assert!(page.query_result.is_none());
        if !page.has_result_set {
            break;
        }
        fetches += 1;
        let (t, c) = query_data_set::decode(page.query_data_set.as_ref().unwrap(), &types).unwrap();
        times.extend(t);
        merge(&mut columns, c);
    }
    (times, columns, fetches)
}

#[tokio::test]
async fn v1_execute_and_fetch_answer_the_query_data_set_layout() {
    let (_server, mut client) = seeded().await;
    let connection = client.connection();
    let req = t::TSExecuteStatementReq::new(
        0,
        "SELECT s1, s2, s3, s4 FROM root.v.d1".to_string(),
        0,
        Some(4),
        None,
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp = call(connection, "executeQueryStatement", &req).await;
    assert_eq!(
        resp.columns.clone().unwrap(),
        [
            "root.v.d1.s1",
            "root.v.d1.s2",
            "root.v.d1.s3",
            "root.v.d1.s4"
        ]
    );
    assert_eq!(resp.more_data, Some(true));
    // The raw bytes of the first page: rows t = 1..=4, s1 null at t = 2 → present bits 1011.
    let first = resp.query_data_set.clone().unwrap();
    assert_eq!(first.time.len(), 4 * 8);
    assert_eq!(first.bitmap_list[0], vec![0b1011_0000]);
    assert_eq!(first.value_list[0].len(), 3 * 4);
    assert_eq!(&first.value_list[0][..4], &10i32.to_be_bytes());
    assert_eq!(first.bitmap_list[3], vec![0b1111_0000]);
    assert_eq!(first.value_list[3], vec![0, 1, 0, 1]);
    let (times, columns, fetches) = v1_rows(connection, resp, 4).await;
    assert_eq!(fetches, 2);
    assert_eq!(times, (1..=9).collect::<Vec<i64>>());
    for (row, t) in times.iter().enumerate() {
        assert_eq!(int32(&columns[0], row), expected_s1(*t), "s1 at {t}");
        assert_eq!(double(&columns[1], row), Some(*t as f64 + 0.5), "s2 at {t}");
        assert_eq!(text(&columns[2], row), expected_s3(*t), "s3 at {t}");
        assert_eq!(boolean(&columns[3], row), Some(t % 2 == 0), "s4 at {t}");
    }
    // executeStatement (V1) with a statement that has no result: a status only.
    let req = t::TSExecuteStatementReq::new(0, "FLUSH".to_string(), 0, None, None, None, None);
    let resp: t::TSExecuteStatementResp = call(connection, "executeStatement", &req).await;
    assert_ok(&resp.status);
    assert!(resp.query_data_set.is_none());
}

#[tokio::test]
async fn raw_last_and_fast_last_queries_in_both_layouts() {
    let (_server, mut client) = seeded().await;
    let connection = client.connection();
    let paths = vec!["root.v.d1.s1".to_string(), "root.v.d1.s3".to_string()];
    let raw = t::TSRawDataQueryReq::new(0, paths.clone(), Some(2), 3, 7, 0, None, None, None, None);
    let resp: t::TSExecuteStatementResp = call(connection, "executeRawDataQuery", &raw).await;
    assert_eq!(resp.columns.clone().unwrap(), paths);
    let (times, columns, _) = v1_rows(connection, resp, 2).await;
    assert_eq!(times, vec![3, 4, 5, 6]);
    for (row, t) in times.iter().enumerate() {
        assert_eq!(int32(&columns[0], row), expected_s1(*t));
        assert_eq!(text(&columns[1], row), expected_s3(*t));
    }
    let resp: t::TSExecuteStatementResp = call(connection, "executeRawDataQueryV2", &raw).await;
    let (times, _) = v2_rows(connection, resp).await;
    assert_eq!(times, vec![3, 4, 5, 6]);

    // Last with a bound: s3's newest point (9) passes `time >= 5`, as does s1's.
    let last = t::TSLastDataQueryReq::new(0, paths.clone(), None, 5, 0, None, None, None, None);
    let resp: t::TSExecuteStatementResp = call(connection, "executeLastDataQuery", &last).await;
    assert_eq!(
        resp.columns.clone().unwrap(),
        ["Timeseries", "Value", "DataType"]
    );
    let (times, columns, _) = v1_rows(connection, resp, 100).await;
    assert_eq!(times, vec![9, 9]);
    assert_eq!(text(&columns[0], 0).unwrap(), "root.v.d1.s1");
    assert_eq!(text(&columns[1], 0).unwrap(), "90");
    assert_eq!(text(&columns[1], 1).unwrap(), "i");
    assert_eq!(text(&columns[2], 1).unwrap(), "TEXT");
    let later = t::TSLastDataQueryReq::new(0, paths, None, 10, 0, None, None, None, None);
    let resp: t::TSExecuteStatementResp = call(connection, "executeLastDataQueryV2", &later).await;
    assert_eq!(v2_rows(connection, resp).await.0, Vec::<i64>::new());

    let fast = t::TSFastLastDataQueryForOneDeviceReq::new(
        0,
        "root.v".to_string(),
        "root.v.d1".to_string(),
        vec!["s3".to_string(), "s2".to_string()],
        None,
        0,
        None,
        None,
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp =
        call(connection, "executeFastLastDataQueryForOneDeviceV2", &fast).await;
    let (times, columns) = v2_rows(connection, resp).await;
    assert_eq!(times, vec![9, 9]);
    assert_eq!(text(&columns[0], 0).unwrap(), "root.v.d1.s2");
    assert_eq!(text(&columns[1], 0).unwrap(), "9.5");
    let prefix = t::TSFastLastDataQueryForOnePrefixPathReq::new(
        0,
        vec!["root".to_string(), "v".to_string(), "d1".to_string()],
        None,
        0,
        None,
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp = call(
        connection,
        "executeFastLastDataQueryForOnePrefixPath",
        &prefix,
    )
    .await;
    let (_, columns) = v2_rows(connection, resp).await;
    let series: Vec<String> = (0..4).map(|r| text(&columns[0], r).unwrap()).collect();
    assert_eq!(
        series,
        [
            "root.v.d1.s1",
            "root.v.d1.s2",
            "root.v.d1.s3",
            "root.v.d1.s4"
        ]
    );

    // A path outside root is a status, not a lost connection.
    let bad = t::TSRawDataQueryReq::new(
        0,
        vec!["v.d1.s1".into()],
        None,
        0,
        1,
        0,
        None,
        None,
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp = call(connection, "executeRawDataQueryV2", &bad).await;
    assert_eq!(resp.status.code, 509);
}

#[tokio::test]
async fn aggregation_and_group_by_interval_queries() {
    let (_server, mut client) = seeded().await;
    let connection = client.connection();
    let mut agg = t::TSAggregationQueryReq::new(
        0,
        0,
        vec!["root.v.d1.s1".to_string(), "root.v.d1.s2".to_string()],
        vec![t::TAggregationType::COUNT, t::TAggregationType::SUM],
        Some(1),
        Some(10),
        Some(3),
        None,
        None,
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp = call(connection, "executeAggregationQueryV2", &agg).await;
    let (times, columns) = v2_rows(connection, resp).await;
    assert_eq!(times, vec![1, 4, 7]);
    let counts: Vec<Option<i64>> = (0..3).map(|r| int64(&columns[0], r)).collect();
    assert_eq!(counts, [Some(2), Some(3), Some(3)]);
    let sums: Vec<Option<f64>> = (0..3).map(|r| double(&columns[1], r)).collect();
    assert_eq!(sums, [Some(7.5), Some(16.5), Some(25.5)]);
    // Without an interval, over [startTime, endTime), in the V1 layout.
    agg.interval = None;
    agg.end_time = Some(5);
    let resp: t::TSExecuteStatementResp = call(connection, "executeAggregationQuery", &agg).await;
    let (_, columns, _) = v1_rows(connection, resp, 100).await;
    assert_eq!(int64(&columns[0], 0), Some(3));
    assert_eq!(double(&columns[1], 0), Some(1.5 + 2.5 + 3.5 + 4.5));
    // STDDEV is the sample standard deviation (of 1.5 .. 4.5 in steps of 1: sqrt(5/3)).
    agg.aggregations[1] = t::TAggregationType::STDDEV;
    let resp: t::TSExecuteStatementResp = call(connection, "executeAggregationQuery", &agg).await;
    let (_, columns, _) = v1_rows(connection, resp, 100).await;
    let stddev = double(&columns[1], 0).unwrap();
    assert!((stddev - (5.0f64 / 3.0).sqrt()).abs() < 1e-12, "{stddev}");
    // MODE of four values that occur once each: the earliest (IoTDB's rule for a tie), as a DOUBLE.
    agg.aggregations[1] = t::TAggregationType::MODE;
    let resp: t::TSExecuteStatementResp = call(connection, "executeAggregationQuery", &agg).await;
    let (_, columns, _) = v1_rows(connection, resp, 100).await;
    assert_eq!(double(&columns[1], 0), Some(1.5));
    // An aggregation Duet does not compute is a status naming it.
    agg.aggregations[1] = t::TAggregationType::COUNT_TIME;
    let resp: t::TSExecuteStatementResp = call(connection, "executeAggregationQueryV2", &agg).await;
    assert_ne!(resp.status.code, 200);
    assert!(resp.status.message.unwrap().contains("COUNT_TIME"));

    let group = t::TSGroupByQueryIntervalReq::new(
        0,
        0,
        "root.v.d1".to_string(),
        "s1".to_string(),
        1,
        t::TAggregationType::MAX_VALUE,
        None,
        Some(1),
        Some(10),
        Some(3),
        None,
        None,
    );
    let resp: t::TSExecuteStatementResp =
        call(connection, "executeGroupByQueryIntervalQuery", &group).await;
    assert_eq!(resp.columns.clone().unwrap(), ["MAX_VALUE"]);
    let (times, columns, _) = v1_rows(connection, resp, 100).await;
    assert_eq!(times, vec![1, 4, 7]);
    let maxes: Vec<Option<i32>> = (0..3).map(|r| int32(&columns[0], r)).collect();
    assert_eq!(maxes, [Some(30), Some(60), Some(90)]);
}

#[tokio::test]
async fn test_inserts_connections_and_refusals() {
    let (server, mut client) = seeded().await;
    let second = Client::connect(&options(&server)).await.unwrap();
    let connection = client.connection();

    let record = t::TSInsertStringRecordReq::new(
        0,
        "root.v.t".into(),
        vec!["s".into()],
        vec!["1".into()],
        1,
        None,
        None,
    );
    let status: t::TSStatus = call(connection, "testInsertStringRecord", &record).await;
    assert_ok(&status);
    let records = t::TSInsertStringRecordsReq::new(
        0,
        vec!["root.v.t".into()],
        vec![vec!["s".into()]],
        vec![vec!["2".into()]],
        vec![2],
        None,
    );
    let status: t::TSStatus = call(connection, "testInsertStringRecords", &records).await;
    assert_ok(&status);
    let one_device = t::TSInsertRecordsOfOneDeviceReq::new(
        0,
        "root.v.t".into(),
        vec![vec!["s".into()]],
        vec![vec![1, 0, 0, 0, 3]],
        vec![3],
        None,
    );
    let status: t::TSStatus = call(connection, "testInsertRecordsOfOneDevice", &one_device).await;
    assert_ok(&status);
    match client.execute("SHOW TIMESERIES root.v.t.**").await.unwrap() {
        Outcome::Rows(rs) => {
            let (_, blocks) = client.collect(rs).await.unwrap();
            assert_eq!(blocks.iter().map(|b| b.n_rows()).sum::<usize>(), 0);
        }
        other => panic!("{other:?}"),
    }
    let connection = client.connection();

    let info: t::TSConnectionInfoResp =
        call_without_arguments(connection, "fetchAllConnectionsInfo").await;
    assert_eq!(info.connection_info_list.len(), 2);
    for c in &info.connection_info_list {
        assert_eq!(c.user_name, "root");
        assert_eq!(c.type_, t::TSConnectionType::THRIFT_BASED);
        assert!(
            c.connection_id.starts_with("127.0.0.1:"),
            "{}",
            c.connection_id
        );
        assert!(c.log_in_time > 1_600_000_000_000);
    }
    second.close().await.unwrap();
    let info: t::TSConnectionInfoResp =
        call_without_arguments(connection, "fetchAllConnectionsInfo").await;
    assert_eq!(info.connection_info_list.len(), 1);

    let backup: t::TSBackupConfigurationResp =
        call_without_arguments(connection, "getBackupConfiguration").await;
    assert_ok(&backup.status);

    // Refusals: a status 300 naming the method, in each method's result shape.
    let metadata = t::TSFetchMetadataReq::new(0, "COLUMN".to_string(), None);
    let resp: t::TSFetchMetadataResp = call(connection, "fetchMetadata", &metadata).await;
    assert_eq!(resp.status.code, 300);
    // Device templates: the serialized template is read with checked lengths, so hostile bytes are a
    // status 301 (as IoTDB's failed deserialisation) and the connection goes on.
    for bytes in [
        vec![0],
        vec![0x7f, 0xff, 0xff, 0xff, b't'],
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0],
    ] {
        let template = t::TSCreateSchemaTemplateReq::new(0, "t1".to_string(), bytes);
        let status: t::TSStatus = call(connection, "createSchemaTemplate", &template).await;
        assert_eq!(status.code, 301, "{status:?}");
        assert!(status.message.unwrap().contains("serialized template"));
    }
    let serialized = schema_template::encode(&schema_template::SerializedTemplate {
        name: Some("ignored".into()),
        aligned: false,
        measurements: vec![schema_template::SerializedMeasurement {
            prefix: Some(String::new()),
            aligned: false,
            name: Some("s1".into()),
            data_type: 2,
            encoding: 4,
            compressor: 7,
        }],
    });
    let template = t::TSCreateSchemaTemplateReq::new(0, "`t1`".to_string(), serialized);
    let status: t::TSStatus = call(connection, "createSchemaTemplate", &template).await;
    assert_ok(&status);
    let query = t::TSQueryTemplateReq::new(0, "t1".to_string(), 0, None);
    let resp: t::TSQueryTemplateResp = call(connection, "querySchemaTemplate", &query).await;
    assert_ok(&resp.status);
    assert_eq!((resp.query_type, resp.count), (0, Some(1)));
    let query = t::TSQueryTemplateReq::new(0, "t1".to_string(), 3, None);
    let resp: t::TSQueryTemplateResp = call(connection, "querySchemaTemplate", &query).await;
    assert_eq!(resp.measurements, Some(vec!["s1".to_string()]));
    let query = t::TSQueryTemplateReq::new(0, "t1".to_string(), 9, None);
    let resp: t::TSQueryTemplateResp = call(connection, "querySchemaTemplate", &query).await;
    assert_eq!((resp.status.code, resp.query_type), (301, 9));
    let activate =
        t::TCreateTimeseriesUsingSchemaTemplateReq::new(0, vec!["root.rpct.d1".to_string()]);
    let status: t::TSStatus =
        call(connection, "createTimeseriesUsingSchemaTemplate", &activate).await;
    assert_eq!(status.code, 513, "{status:?}");
    let set = t::TSSetSchemaTemplateReq::new(0, "t1".to_string(), "root.rpct".to_string());
    let status: t::TSStatus = call(connection, "setSchemaTemplate", &set).await;
    assert_ok(&status);
    let status: t::TSStatus =
        call(connection, "createTimeseriesUsingSchemaTemplate", &activate).await;
    assert_ok(&status);
    let status: t::TSStatus =
        call(connection, "createTimeseriesUsingSchemaTemplate", &activate).await;
    assert_eq!(status.code, 515, "{status:?}");

    let identity =
        t::TSyncIdentityInfo::new("p".to_string(), 1, "0.13".to_string(), "root.v".to_string());
    let status: t::TSStatus = connection.call("handshake", -1, &identity).await.unwrap();
    assert_eq!(status.code, 300);
    assert!(status.message.unwrap().contains("handshake"));
    let subscribe = t::TPipeSubscribeReq::new(1, 7, None);
    let resp: t::TPipeSubscribeResp = connection
        .call("pipeSubscribe", -1, &subscribe)
        .await
        .unwrap();
    assert_eq!((resp.status.code, resp.version, resp.type_), (300, 1, 7));
    let resp: t::TShowConfigurationTemplateResp =
        call_without_arguments(connection, "showConfigurationTemplate").await;
    assert_eq!(resp.status.code, 300);

    // A name outside the IDL is still a Thrift exception, and is logged.
    let payload = rpc::encode_empty_call(Protocol::Binary, "noSuchMethod").unwrap();
    let reply = connection.round_trip(&payload).await.unwrap();
    assert!(matches!(
        rpc::decode_struct_reply::<t::TSStatus>(&reply),
        Err(rpc::ReplyError::Application(m)) if m.contains("noSuchMethod")
    ));
    let log = server.log();
    for method in [
        "noSuchMethod",
        "fetchMetadata",
        "handshake",
        "pipeSubscribe",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(method)),
            "no warning naming {method} in:\n{log}"
        );
    }

    // testConnectionEmptyRPC answers before any login, as IoTDB's does.
    let mut fresh = server
        .connection(Protocol::Compact, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let payload = rpc::encode_empty_call(Protocol::Compact, "testConnectionEmptyRPC").unwrap();
    let reply = fresh.round_trip(&payload).await.unwrap();
    let status: t::TSStatus = rpc::decode_struct_reply(&reply).unwrap();
    assert_ok(&status);
}
