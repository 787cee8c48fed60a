//! IoTDB's pipe envelopes against a real `duetd`: after a handshake, a tablet batch (type 13) arrives
//! wrapped in the compressed request (type 300) with each of IoTDB's five compressors and a chain of
//! them, and cut into three slices (type 400); the data is then there by query. A slice out of order
//! is answered 1812 and the connection (and server) go on serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use duet_proto::client::{Client, ClientOptions, Connection, Outcome};
use duet_proto::codec::Protocol;
use duet_proto::pipe_body::{self, handshake_key, request_type, REQUEST_VERSION};
use duet_proto::pipe_compressed::{self as compress, Compressor, TRANSFER_COMPRESSED};
use duet_proto::pipe_slice::{Slice, TRANSFER_SLICE};
use duet_proto::pipe_tablet::{encode_tablet_batch_v2, TabletRef};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp};
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_testkit::Duetd;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A handshaken pipe connection, as an IoTDB sender opens one.
async fn pipe_connection(server: &Duetd) -> Connection {
    let mut connection = server.connection(Protocol::Binary, TIMEOUT).await.unwrap();
    let params = BTreeMap::from([
        (
            handshake_key::CLUSTER_ID.to_string(),
            "an-iotdb-cluster".to_string(),
        ),
        (
            handshake_key::TIMESTAMP_PRECISION.to_string(),
            "ms".to_string(),
        ),
        (handshake_key::USERNAME.to_string(), "root".to_string()),
        (handshake_key::PASSWORD.to_string(), "root".to_string()),
    ]);
    let resp = send(
        &mut connection,
        request_type::HANDSHAKE_DATANODE_V2,
        pipe_body::encode_map(&params),
    )
    .await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    connection
}

async fn send(connection: &mut Connection, type_: i16, body: Vec<u8>) -> TPipeTransferResp {
    connection
        .pipe_transfer(&TPipeTransferReq::new(REQUEST_VERSION, type_, body))
        .await
        .unwrap()
}

/// The status code of one request's answer.
async fn status_code(connection: &mut Connection, type_: i16, body: Vec<u8>) -> i32 {
    send(connection, type_, body).await.status.code
}

/// A tablet batch (type 13) with one tablet of `rows` INT64 points for `device`.s1, value = 10 × time.
fn tablet_batch(device: &str, rows: i64) -> Vec<u8> {
    let times: Vec<i64> = (1..=rows).collect();
    let columns = [Column {
        data_type: DataType::Int64,
        nulls: None,
        values: ColumnValues::Int64(times.iter().map(|t| t * 10).collect()),
    }];
    let measurements = ["s1".to_string()];
    encode_tablet_batch_v2([TabletRef {
        device,
        aligned: false,
        measurements: &measurements,
        columns: &columns,
        times: &times,
    }])
}

/// (time, s1) of every row of `device`.
async fn points(client: &mut Client, device: &str) -> Vec<(i64, i64)> {
    // A device that does not exist yet answers without a result set.
    let rs = match client
        .execute(&format!("select s1 from {device}"))
        .await
        .unwrap()
    {
        Outcome::Rows(rs) => rs,
        Outcome::Done(_) => return Vec::new(),
    };
    let (_, blocks) = client.collect(rs).await.unwrap();
    let mut out = Vec::new();
    for block in blocks {
        let ColumnValues::Int64(values) = &block.columns[0].values else {
            panic!("{:?}", block.columns[0].data_type)
        };
        out.extend(block.times.iter().copied().zip(values.iter().copied()));
    }
    out
}

/// `body` (a tablet batch) cut into three slices as IoTDB's sender cuts it: equal pieces, the last
/// shorter.
fn three_slices(order_id: i32, body: &[u8]) -> Vec<Vec<u8>> {
    let slices: Vec<Vec<u8>> = body
        .chunks(body.len().div_ceil(3))
        .enumerate()
        .map(|(i, chunk)| {
            Slice {
                order_id,
                origin_type: request_type::TRANSFER_TABLET_BATCH_V2,
                origin_body_size: body.len() as i32,
                body: chunk,
                index: i as i32,
                count: 3,
            }
            .encode()
        })
        .collect();
    assert_eq!(slices.len(), 3);
    slices
}

fn expected(rows: i64) -> Vec<(i64, i64)> {
    (1..=rows).map(|t| (t, t * 10)).collect()
}

#[tokio::test]
async fn compressed_and_sliced_tablets_arrive() {
    let server = Duetd::start().unwrap();
    let mut client = Client::connect(&ClientOptions {
        port: server.port(),
        call_timeout: TIMEOUT,
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    let mut pipe = pipe_connection(&server).await;
    let rows = 500;

    // Each compressor alone, then all five chained (zstd at level 19), as IoTDB's sink applies them.
    let mut cases: Vec<(String, Vec<Compressor>)> = [
        Compressor::Snappy,
        Compressor::Gzip,
        Compressor::Lz4,
        Compressor::Zstd { level: 3 },
        Compressor::Lzma2,
    ]
    .into_iter()
    .map(|c| (c.name().to_string(), vec![c]))
    .collect();
    cases.push((
        "chain".to_string(),
        vec![
            Compressor::Gzip,
            Compressor::Lz4,
            Compressor::Zstd { level: 19 },
            Compressor::Lzma2,
            Compressor::Snappy,
        ],
    ));
    for (name, chain) in &cases {
        let device = format!("root.pe.{name}");
        let body = tablet_batch(&device, rows);
        let wrapped = compress::compress(
            REQUEST_VERSION,
            request_type::TRANSFER_TABLET_BATCH_V2,
            &body,
            chain,
        )
        .unwrap();
        assert!(
            wrapped.len() < body.len(),
            "{name}: {} of {}",
            wrapped.len(),
            body.len()
        );
        let resp = send(&mut pipe, TRANSFER_COMPRESSED, wrapped).await;
        assert_eq!(resp.status.code, 200, "{name}: {:?}", resp.status);
        assert_eq!(points(&mut client, &device).await, expected(rows), "{name}");
    }

    // A batch cut into three slices: the first two are acknowledged as waiting, the third applies it.
    let device = "root.pe.sliced";
    let body = tablet_batch(device, rows);
    let slices = three_slices(7, &body);
    for slice in &slices[..2] {
        let resp = send(&mut pipe, TRANSFER_SLICE, slice.clone()).await;
        assert_eq!(resp.status.code, 200, "{:?}", resp.status);
        assert_eq!(
            resp.status.message.as_deref(),
            Some("Slice received, waiting for more slices to complete the request.")
        );
    }
    assert!(
        points(&mut client, device).await.is_empty(),
        "applied before the last slice"
    );
    let resp = send(&mut pipe, TRANSFER_SLICE, slices[2].clone()).await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    assert_eq!(points(&mut client, device).await, expected(rows));

    // Out of order: slice 0, then slice 2. Answered 1812; the buffer is dropped, so slice 1 now is
    // out of order too; a whole sequence afterwards goes through on the same connection.
    let device = "root.pe.reordered";
    let body = tablet_batch(device, rows);
    let slices = three_slices(8, &body);
    assert_eq!(
        status_code(&mut pipe, TRANSFER_SLICE, slices[0].clone()).await,
        200
    );
    let resp = send(&mut pipe, TRANSFER_SLICE, slices[2].clone()).await;
    assert_eq!(resp.status.code, 1812, "{:?}", resp.status);
    assert_eq!(
        resp.status.message.as_deref(),
        Some("Slice request is out of order, please check the request sequence.")
    );
    assert_eq!(
        status_code(&mut pipe, TRANSFER_SLICE, slices[1].clone()).await,
        1812
    );
    assert!(points(&mut client, device).await.is_empty());
    // Any other request in the middle drops the buffer as well.
    assert_eq!(
        status_code(&mut pipe, TRANSFER_SLICE, slices[0].clone()).await,
        200
    );
    let empty = encode_tablet_batch_v2([]);
    assert_eq!(
        status_code(&mut pipe, request_type::TRANSFER_TABLET_BATCH_V2, empty).await,
        200
    );
    assert_eq!(
        status_code(&mut pipe, TRANSFER_SLICE, slices[1].clone()).await,
        1812
    );
    for (i, slice) in slices.iter().enumerate() {
        let resp = send(&mut pipe, TRANSFER_SLICE, slice.clone()).await;
        assert_eq!(resp.status.code, 200, "slice {i}: {:?}", resp.status);
    }
    assert_eq!(points(&mut client, device).await, expected(rows));

    // A slice may not carry another sliced request.
    let inner = three_slices(9, &body)[0].clone();
    let nested = Slice {
        order_id: 10,
        origin_type: TRANSFER_SLICE,
        origin_body_size: inner.len() as i32,
        body: &inner,
        index: 0,
        count: 1,
    };
    let resp = send(&mut pipe, TRANSFER_SLICE, nested.encode()).await;
    assert_eq!(resp.status.code, 1801, "{:?}", resp.status);

    // A compressed request that lies about its length is refused clearly, and the server serves on.
    let mut lying = compress::compress(
        REQUEST_VERSION,
        request_type::TRANSFER_TABLET_BATCH_V2,
        &tablet_batch("root.pe.lying", 10),
        &[Compressor::Gzip],
    )
    .unwrap();
    lying[2..6].copy_from_slice(&1_000_000i32.to_be_bytes());
    let resp = send(&mut pipe, TRANSFER_COMPRESSED, lying).await;
    assert_eq!(resp.status.code, 1805, "{:?}", resp.status);
    assert!(
        resp.status
            .message
            .unwrap_or_default()
            .contains("declares 1000000 bytes"),
        "message names the lie"
    );
    let fresh = pipe_connection(&server).await;
    drop(fresh);
    assert_eq!(points(&mut client, "root.pe.gzip").await, expected(rows));
}
