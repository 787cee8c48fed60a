//! The writers: each one a session on its own instance, sending a seeded mix of every write path of
//! the client protocol (tablets, records, string records, SQL INSERT) and SQL DELETEs, to devices only
//! it writes and to devices every writer shares, and recording each operation with its outcome.
//!
//! A writer never retries an operation: one that got no success answer is recorded as unknown (it may
//! have been applied or not) and the writer goes on with new ones, reconnecting while its server is
//! down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_proto::status;
use duet_proto::t;
use duet_proto::tablet::{
    encode_record, encode_tablet_values, encode_timestamps, insert_tablet_request, RecordValue,
};
use duet_proto::types::{Column, ColumnValues, DataType};

use crate::history::{History, Op, OpKind, Outcome, Part, Side, WritePath};
use crate::rng::Rng;
use crate::schema::{self, Schema, BASE_TIME, MEASUREMENTS};

/// How far back (ms) overwrites and deletes reach behind a device's newest row.
const REACH_BACK: i64 = 3_000;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub side: Side,
    pub writer: usize,
    pub port: u16,
    pub seed: u64,
    /// Pause between operations, a uniform draw in this range of milliseconds.
    pub pause_ms: (u64, u64),
    /// Bound on one call; a call that takes longer is abandoned as unknown.
    pub call_timeout: Duration,
}

/// What one writer did.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    pub acked: u64,
    pub unknown: u64,
    pub connects: u64,
}

/// The next time a writer writes on each of its devices.
struct Cursors {
    next: Vec<i64>,
}

impl Cursors {
    fn fresh(&mut self, device: usize, rows: i64) -> i64 {
        let t0 = self.next[device];
        self.next[device] += rows;
        t0
    }

    /// A range reaching back into rows already written (or fresh ones while there are few).
    fn back(&mut self, rng: &mut Rng, device: usize, rows: i64) -> i64 {
        let newest = self.next[device];
        let lo = (newest - REACH_BACK).max(BASE_TIME);
        let hi = (newest - rows).max(lo);
        rng.range_i64(lo, hi)
    }
}

/// Chooses the next operation.
fn next_op(rng: &mut Rng, own: &[usize], shared: &[usize], cursors: &mut Cursors) -> OpKind {
    let pick_device = |rng: &mut Rng| {
        if !shared.is_empty() && rng.chance(30) {
            shared[rng.range(0, shared.len() as u64 - 1) as usize]
        } else {
            own[rng.range(0, own.len() as u64 - 1) as usize]
        }
    };
    // One in ten operations is a delete.
    if rng.chance(10) {
        let device = pick_device(rng);
        let len = rng.range_i64(1, 200);
        let from = cursors.back(rng, device, len);
        let measurement = if rng.chance(50) {
            None
        } else {
            Some(rng.range(0, MEASUREMENTS.len() as u64 - 1) as usize)
        };
        return OpKind::Delete {
            device,
            measurement,
            from,
            to: from + len - 1,
        };
    }
    let path = WritePath::ALL[rng.weighted(&[25, 10, 8, 8, 6, 6, 6, 6, 15])];
    let (devices, max_rows) = match path {
        WritePath::Tablet => (1, 200),
        WritePath::Tablets | WritePath::Records | WritePath::StringRecords => (2, 50),
        WritePath::Record | WritePath::StringRecord => (1, 1),
        WritePath::RecordsOfOneDevice
        | WritePath::StringRecordsOfOneDevice
        | WritePath::SqlInsert => (1, 30),
    };
    let mut parts: Vec<Part> = Vec::new();
    for _ in 0..devices {
        let device = pick_device(rng);
        if parts.iter().any(|p| p.device == device) {
            continue;
        }
        let rows = rng.range_i64(1, max_rows);
        let is_shared = shared.contains(&device);
        // Shared devices: every writer starts at the same time and reaches back, so writes from
        // both sides overlap. Own devices: mostly new rows, sometimes an overwrite of recent ones.
        let t0 = if is_shared {
            let t0 = cursors.back(rng, device, rows);
            cursors.next[device] += rows;
            t0
        } else if rng.chance(10) {
            cursors.back(rng, device, rows)
        } else {
            cursors.fresh(device, rows)
        };
        parts.push(Part { device, t0, rows });
    }
    OpKind::Write { path, parts }
}

/// The columns of a part as a tablet.
fn tablet_columns(op: u64, part: &Part) -> (Vec<i64>, Vec<Column>) {
    let times: Vec<i64> = (part.t0..part.t0 + part.rows).collect();
    let columns = vec![
        Column {
            data_type: DataType::Int64,
            nulls: None,
            values: ColumnValues::Int64(times.iter().map(|t| schema::long_value(op, *t)).collect()),
        },
        Column {
            data_type: DataType::Double,
            nulls: None,
            values: ColumnValues::Double(
                times.iter().map(|t| schema::double_value(op, *t)).collect(),
            ),
        },
        Column {
            data_type: DataType::Text,
            nulls: None,
            values: ColumnValues::Binary(
                times
                    .iter()
                    .map(|t| schema::text_value(op, *t).into_bytes())
                    .collect(),
            ),
        },
    ];
    (times, columns)
}

fn measurement_names() -> Vec<String> {
    MEASUREMENTS.iter().map(|(m, _)| m.to_string()).collect()
}

fn type_codes() -> Vec<i32> {
    MEASUREMENTS
        .iter()
        .map(|(_, t)| i32::from(t.code()))
        .collect()
}

fn record_values(op: u64, time: i64) -> Vec<u8> {
    encode_record(&[
        RecordValue::Int64(schema::long_value(op, time)),
        RecordValue::Double(schema::double_value(op, time)),
        RecordValue::Binary(DataType::Text, schema::text_value(op, time).into_bytes()),
    ])
}

fn string_values(op: u64, time: i64) -> Vec<String> {
    (0..MEASUREMENTS.len())
        .map(|m| schema::value_text(op, time, m))
        .collect()
}

/// Every (device path, time) row of a write, in order.
fn rows<'p>(schema: &'p Schema, parts: &'p [Part]) -> impl Iterator<Item = (&'p str, i64)> + 'p {
    parts.iter().flat_map(move |p| {
        (p.t0..p.t0 + p.rows).map(move |t| (schema.devices[p.device].path.as_str(), t))
    })
}

fn checked(status: t::TSStatus) -> Result<(), ClientError> {
    if status::is_success(&status) {
        Ok(())
    } else {
        Err(ClientError::Status(status))
    }
}

/// Sends one operation and waits for its answer.
async fn send(c: &mut Client, schema: &Schema, op: u64, kind: &OpKind) -> Result<(), ClientError> {
    let session = c.session_id();
    let len = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    match kind {
        OpKind::Delete {
            device,
            measurement,
            from,
            to,
        } => {
            let target = match measurement {
                Some(m) => schema.series(*device, *m),
                None => format!("{}.*", schema.devices[*device].path),
            };
            c.execute_update(&format!(
                "delete from {target} where time >= {from} and time <= {to}"
            ))
            .await
        }
        OpKind::Write { path, parts } => match path {
            WritePath::Tablet | WritePath::Tablets if parts.len() == 1 => {
                let part = &parts[0];
                let (times, columns) = tablet_columns(op, part);
                let req = insert_tablet_request(
                    session,
                    &schema.devices[part.device].path,
                    measurement_names(),
                    &columns,
                    &times,
                );
                checked(c.connection().call("insertTablet", 1, &req).await?)
            }
            WritePath::Tablet | WritePath::Tablets => {
                let mut req = t::TSInsertTabletsReq::new(
                    session,
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Some(false),
                );
                for part in parts {
                    let (times, columns) = tablet_columns(op, part);
                    req.prefix_paths
                        .push(schema.devices[part.device].path.clone());
                    req.measurements_list.push(measurement_names());
                    req.values_list
                        .push(encode_tablet_values(&columns, times.len()));
                    req.timestamps_list.push(encode_timestamps(&times));
                    req.types_list.push(type_codes());
                    req.size_list.push(len(times.len()));
                }
                checked(c.connection().call("insertTablets", 1, &req).await?)
            }
            WritePath::Record => {
                for (device, time) in rows(schema, parts) {
                    let req = t::TSInsertRecordReq::new(
                        session,
                        device.to_string(),
                        measurement_names(),
                        record_values(op, time),
                        time,
                        Some(false),
                        None,
                        None,
                    );
                    checked(c.connection().call("insertRecord", 1, &req).await?)?;
                }
                Ok(())
            }
            WritePath::StringRecord => {
                for (device, time) in rows(schema, parts) {
                    let req = t::TSInsertStringRecordReq::new(
                        session,
                        device.to_string(),
                        measurement_names(),
                        string_values(op, time),
                        time,
                        Some(false),
                        None,
                    );
                    checked(c.connection().call("insertStringRecord", 1, &req).await?)?;
                }
                Ok(())
            }
            WritePath::Records => {
                let all: Vec<(&str, i64)> = rows(schema, parts).collect();
                let req = t::TSInsertRecordsReq::new(
                    session,
                    all.iter().map(|(d, _)| d.to_string()).collect(),
                    all.iter().map(|_| measurement_names()).collect(),
                    all.iter().map(|(_, t)| record_values(op, *t)).collect(),
                    all.iter().map(|(_, t)| *t).collect(),
                    Some(false),
                );
                checked(c.connection().call("insertRecords", 1, &req).await?)
            }
            WritePath::StringRecords => {
                let all: Vec<(&str, i64)> = rows(schema, parts).collect();
                let req = t::TSInsertStringRecordsReq::new(
                    session,
                    all.iter().map(|(d, _)| d.to_string()).collect(),
                    all.iter().map(|_| measurement_names()).collect(),
                    all.iter().map(|(_, t)| string_values(op, *t)).collect(),
                    all.iter().map(|(_, t)| *t).collect(),
                    Some(false),
                );
                checked(c.connection().call("insertStringRecords", 1, &req).await?)
            }
            WritePath::RecordsOfOneDevice | WritePath::StringRecordsOfOneDevice => {
                for part in parts {
                    let times: Vec<i64> = (part.t0..part.t0 + part.rows).collect();
                    let device = schema.devices[part.device].path.clone();
                    let measurements = times.iter().map(|_| measurement_names()).collect();
                    let status: t::TSStatus = if *path == WritePath::RecordsOfOneDevice {
                        let req = t::TSInsertRecordsOfOneDeviceReq::new(
                            session,
                            device,
                            measurements,
                            times.iter().map(|t| record_values(op, *t)).collect(),
                            times.clone(),
                            Some(false),
                        );
                        c.connection()
                            .call("insertRecordsOfOneDevice", 1, &req)
                            .await?
                    } else {
                        let req = t::TSInsertStringRecordsOfOneDeviceReq::new(
                            session,
                            device,
                            measurements,
                            times.iter().map(|t| string_values(op, *t)).collect(),
                            times.clone(),
                            Some(false),
                        );
                        c.connection()
                            .call("insertStringRecordsOfOneDevice", 1, &req)
                            .await?
                    };
                    checked(status)?;
                }
                Ok(())
            }
            WritePath::SqlInsert => {
                for part in parts {
                    let values: Vec<String> = (part.t0..part.t0 + part.rows)
                        .map(|t| {
                            format!(
                                "({t}, {}, {}, '{}')",
                                schema::value_text(op, t, 0),
                                schema::value_text(op, t, 1),
                                schema::value_text(op, t, 2)
                            )
                        })
                        .collect();
                    c.execute_update(&format!(
                        "insert into {}(timestamp, l, d, x) values {}",
                        schema.devices[part.device].path,
                        values.join(", ")
                    ))
                    .await?;
                }
                Ok(())
            }
        },
    }
}

/// The options every soak session uses against `port`.
pub fn client_options(port: u16, call_timeout: Duration) -> ClientOptions {
    ClientOptions {
        port,
        connect_timeout: Duration::from_secs(2),
        call_timeout,
        ..ClientOptions::default()
    }
}

/// Runs one writer until `stop` is raised; the operation in flight then finishes first.
pub async fn run_writer(
    config: WriterConfig,
    schema: Arc<Schema>,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> WriterStats {
    let mut rng = Rng::fork(
        config.seed,
        100 + config.side.index() as u64 * 16 + config.writer as u64,
    );
    let (own, shared) = schema.devices_of(config.side, config.writer);
    let mut cursors = Cursors {
        next: vec![BASE_TIME; schema.devices.len()],
    };
    let options = client_options(config.port, config.call_timeout);
    let mut stats = WriterStats::default();
    let mut session: Option<(Client, u64)> = None;
    while !stop.load(Ordering::SeqCst) {
        let Some((client, process)) = session.as_mut() else {
            // The process number is read before and after connecting: when both agree, the session
            // is with that process (a restart in between would have raised it).
            let before = history.process(config.side);
            match Client::connect(&options).await {
                Ok(client) if history.process(config.side) == before => {
                    stats.connects += 1;
                    session = Some((client, before));
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
            continue;
        };
        let process = *process;
        let kind = next_op(&mut rng, &own, &shared, &mut cursors);
        let id = history.next_op_id();
        let issued = history.now();
        let result =
            tokio::time::timeout(config.call_timeout, send(client, &schema, id, &kind)).await;
        let outcome = match result {
            Ok(Ok(())) => {
                let at = history.now();
                stats.acked += 1;
                Outcome::Acked {
                    at,
                    seq: history.next_ack_seq(),
                }
            }
            Ok(Err(e)) => {
                stats.unknown += 1;
                let error = e.to_string();
                if e.code().is_none() {
                    session = None;
                }
                Outcome::Unknown { error }
            }
            Err(_) => {
                stats.unknown += 1;
                session = None;
                Outcome::Unknown {
                    error: format!("no answer within {:?}", config.call_timeout),
                }
            }
        };
        history.record(Op {
            id,
            side: config.side,
            writer: config.writer,
            kind,
            issued,
            process,
            outcome,
        });
        let pause = rng.millis(config.pause_ms.0, config.pause_ms.1);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    stats
}
