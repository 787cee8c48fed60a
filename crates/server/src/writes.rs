//! Turns the write and schema RPCs into engine calls: decoding tablets and records with `proto`,
//! grouping them into [`DeviceWrite`]s, and folding the per-device outcomes into one status — 200,
//! the device's own error for single-device requests, or 302 with a `subStatus` per device.

use duet_engine::values::Cell;
use duet_engine::write::{DeviceWrite, WriteColumn, WriteOutcome};
use duet_engine::{Engine, EngineError};
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_proto::tablet;
use duet_proto::types::DataType;

fn engine_status(e: &EngineError) -> t::TSStatus {
    crate::status_codes::failure(e)
}

fn bad_request(message: impl Into<String>) -> t::TSStatus {
    status::failure(StatusCode::IllegalParameter, message)
}

/// One status for a request: the first error when there is one device, else 302 listing every device.
fn fold(outcome: WriteOutcome, multi: bool) -> t::TSStatus {
    if outcome.all_ok() {
        return status::success();
    }
    if !multi {
        if let Some(Err(e)) = outcome.results.into_iter().find(|r| r.is_err()) {
            return engine_status(&e);
        }
        return status::success();
    }
    let subs: Vec<Box<t::TSStatus>> = outcome
        .results
        .iter()
        .map(|r| {
            Box::new(match r {
                Ok(()) => status::success(),
                Err(e) => engine_status(e),
            })
        })
        .collect();
    let mut s = status::failure(
        StatusCode::MultipleError,
        "some devices of the batch could not be written; see the sub-statuses",
    );
    s.sub_status = Some(subs);
    s
}

async fn run(
    engine: &Engine,
    writes: Result<Vec<DeviceWrite>, t::TSStatus>,
    multi: bool,
) -> t::TSStatus {
    match writes {
        Err(s) => s,
        Ok(writes) => match engine.write(writes).await {
            Ok(outcome) => fold(outcome, multi),
            Err(e) => engine_status(&e),
        },
    }
}

fn types_of(codes: &[i32]) -> Result<Vec<DataType>, t::TSStatus> {
    codes
        .iter()
        .map(|c| {
            DataType::from_code(*c)
                .ok_or_else(|| bad_request(format!("unknown data type code {c}")))
        })
        .collect()
}

fn tablet_write(
    device: &str,
    measurements: &[String],
    values: &[u8],
    timestamps: &[u8],
    types: &[i32],
    size: i32,
    aligned: bool,
) -> Result<DeviceWrite, t::TSStatus> {
    let n =
        usize::try_from(size).map_err(|_| bad_request(format!("negative tablet size {size}")))?;
    let types = types_of(types)?;
    if types.len() != measurements.len() {
        return Err(bad_request(
            "the tablet's types and measurements differ in length",
        ));
    }
    let times = tablet::decode_timestamps(timestamps, n).map_err(|e| bad_request(e.to_string()))?;
    let columns =
        tablet::decode_tablet_values(values, &types, n).map_err(|e| bad_request(e.to_string()))?;
    Ok(DeviceWrite {
        device: device.to_string(),
        aligned,
        measurements: measurements.to_vec(),
        columns: columns.into_iter().map(WriteColumn::Typed).collect(),
        times,
    })
}

fn record_write(
    device: &str,
    measurements: &[String],
    values: &[u8],
    time: i64,
    aligned: bool,
) -> Result<DeviceWrite, t::TSStatus> {
    let decoded = tablet::decode_record(values, measurements.len())
        .map_err(|e| bad_request(e.to_string()))?;
    Ok(DeviceWrite {
        device: device.to_string(),
        aligned,
        measurements: measurements.to_vec(),
        columns: decoded
            .into_iter()
            .map(|v| WriteColumn::Cells(vec![Cell::Typed(v)]))
            .collect(),
        times: vec![time],
    })
}

fn string_record_write(
    device: &str,
    measurements: &[String],
    values: &[String],
    time: i64,
    aligned: bool,
) -> Result<DeviceWrite, t::TSStatus> {
    if values.len() != measurements.len() {
        return Err(bad_request(
            "the record's values and measurements differ in length",
        ));
    }
    Ok(DeviceWrite {
        device: device.to_string(),
        aligned,
        measurements: measurements.to_vec(),
        columns: values
            .iter()
            .map(|v| WriteColumn::Cells(vec![Cell::Unparsed(v.clone())]))
            .collect(),
        times: vec![time],
    })
}

pub async fn insert_tablet(engine: &Engine, r: &t::TSInsertTabletReq) -> t::TSStatus {
    if r.write_to_table == Some(true) {
        return status::failure(
            StatusCode::UnsupportedOperation,
            "table-model writes are not supported: Duet serves the tree model only",
        );
    }
    let w = tablet_write(
        &r.prefix_path,
        &r.measurements,
        &r.values,
        &r.timestamps,
        &r.types,
        r.size,
        r.is_aligned.unwrap_or(false),
    );
    run(engine, w.map(|w| vec![w]), false).await
}

pub async fn insert_tablets(engine: &Engine, r: &t::TSInsertTabletsReq) -> t::TSStatus {
    let n = r.prefix_paths.len();
    if [
        r.measurements_list.len(),
        r.values_list.len(),
        r.timestamps_list.len(),
        r.types_list.len(),
        r.size_list.len(),
    ]
    .iter()
    .any(|l| *l != n)
    {
        return bad_request("insertTablets lists differ in length");
    }
    let writes: Result<Vec<_>, _> = (0..n)
        .map(|i| {
            tablet_write(
                &r.prefix_paths[i],
                &r.measurements_list[i],
                &r.values_list[i],
                &r.timestamps_list[i],
                &r.types_list[i],
                r.size_list[i],
                r.is_aligned.unwrap_or(false),
            )
        })
        .collect();
    run(engine, writes, true).await
}

/// The devices of a multi-record request: one per record, or one for all of them.
enum Devices<'a> {
    Each(&'a [String]),
    One(&'a str),
}

/// One [`DeviceWrite`] per record of a multi-record request, after checking that its lists line up.
fn record_writes<V>(
    what: &str,
    devices: Devices<'_>,
    measurements: &[Vec<String>],
    values: &[V],
    times: &[i64],
    aligned: bool,
    build: impl Fn(&str, &[String], &V, i64, bool) -> Result<DeviceWrite, t::TSStatus>,
) -> Result<Vec<DeviceWrite>, t::TSStatus> {
    let n = times.len();
    let devices_ok = match devices {
        Devices::Each(d) => d.len() == n,
        Devices::One(_) => true,
    };
    if !devices_ok || measurements.len() != n || values.len() != n {
        return Err(bad_request(format!("{what} lists differ in length")));
    }
    (0..n)
        .map(|i| {
            let device = match devices {
                Devices::Each(d) => d[i].as_str(),
                Devices::One(d) => d,
            };
            build(device, &measurements[i], &values[i], times[i], aligned)
        })
        .collect()
}

/// The single-record RPCs: the record of a `$request` built by `$build` into one write.
macro_rules! record_rpc {
    ($name:ident($request:ty), $build:ident) => {
        pub async fn $name(engine: &Engine, r: &$request) -> t::TSStatus {
            let aligned = r.is_aligned.unwrap_or(false);
            let write = $build(
                &r.prefix_path,
                &r.measurements,
                &r.values,
                r.timestamp,
                aligned,
            );
            run(engine, write.map(|w| vec![w]), false).await
        }
    };
}

record_rpc! { insert_record(t::TSInsertRecordReq), record_write }
record_rpc! { insert_string_record(t::TSInsertStringRecordReq), string_record_write }

/// The multi-record RPCs (`$what`): the records of a `$request` (a device each, or one for all:
/// `$devices`) built by `$build` into writes; `$partial`: whether the records that can be written
/// are written when others fail.
macro_rules! records_rpc {
    ($name:ident($request:ty, $what:literal): $devices:ident($field:ident), $build:ident, $partial:literal) => {
        pub async fn $name(engine: &Engine, r: &$request) -> t::TSStatus {
            let writes = record_writes(
                $what,
                Devices::$devices(&r.$field),
                &r.measurements_list,
                &r.values_list,
                &r.timestamps,
                r.is_aligned.unwrap_or(false),
                |d, m, v, t, a| $build(d, m, v, t, a),
            );
            run(engine, writes, $partial).await
        }
    };
}

records_rpc! { insert_records(t::TSInsertRecordsReq, "insertRecords"): Each(prefix_paths), record_write, true }
records_rpc! { insert_records_of_one_device(t::TSInsertRecordsOfOneDeviceReq, "insertRecordsOfOneDevice"): One(prefix_path), record_write, false }
records_rpc! { insert_string_records(t::TSInsertStringRecordsReq, "insertStringRecords"): Each(prefix_paths), string_record_write, true }
records_rpc! { insert_string_records_of_one_device(t::TSInsertStringRecordsOfOneDeviceReq, "insertStringRecordsOfOneDevice"): One(prefix_path), string_record_write, false }

/// IoTDB's encoding and compressor codes (reference §5.3), as names.
pub(crate) fn encoding_name(code: i32) -> Option<String> {
    duet_proto::types::encoding_name(code).map(str::to_string)
}

pub(crate) fn compressor_name(code: i32) -> Option<String> {
    duet_proto::types::compressor_name(code).map(str::to_string)
}

fn split_series(path: &str) -> Result<(String, String), t::TSStatus> {
    let illegal = |why: &str| {
        status::failure(
            StatusCode::IllegalPath,
            format!("{path} is not a legal path, because {why}"),
        )
    };
    let mut nodes = duet_engine::paths::parse_concrete(path).map_err(|why| illegal(&why))?;
    if nodes.len() < 3 {
        return Err(illegal(
            "a timeseries is root.<database>[.<device>…].<measurement>",
        ));
    }
    let m = nodes.pop().unwrap_or_default();
    Ok((duet_engine::paths::join(&nodes), m))
}

fn schema_result(r: Result<(), EngineError>) -> t::TSStatus {
    match r {
        Ok(()) => status::success(),
        Err(e) => engine_status(&e),
    }
}

pub async fn create_timeseries(engine: &Engine, r: &t::TSCreateTimeseriesReq) -> t::TSStatus {
    let (device, m) = match split_series(&r.path) {
        Ok(x) => x,
        Err(s) => return s,
    };
    let Some(dt) = DataType::from_code(r.data_type) else {
        return bad_request(format!("unknown data type code {}", r.data_type));
    };
    let spec = (
        m,
        dt,
        encoding_name(r.encoding),
        compressor_name(r.compressor),
    );
    create_one(engine, &device, spec).await
}

/// Creates one non-aligned series of `device` from its (measurement, type, encoding, compressor).
async fn create_one(
    engine: &Engine,
    device: &str,
    spec: (String, DataType, Option<String>, Option<String>),
) -> t::TSStatus {
    schema_result(engine.create_series_rpc(device, false, &[spec]).await)
}

pub async fn create_aligned_timeseries(
    engine: &Engine,
    r: &t::TSCreateAlignedTimeseriesReq,
) -> t::TSStatus {
    let n = r.measurements.len();
    if r.data_types.len() != n {
        return bad_request("measurements and data types differ in length");
    }
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        let Some(dt) = DataType::from_code(r.data_types[i]) else {
            return bad_request(format!("unknown data type code {}", r.data_types[i]));
        };
        specs.push((
            r.measurements[i].clone(),
            dt,
            r.encodings.get(i).and_then(|c| encoding_name(*c)),
            r.compressors.get(i).and_then(|c| compressor_name(*c)),
        ));
    }
    schema_result(engine.create_series_rpc(&r.prefix_path, true, &specs).await)
}

pub async fn create_multi_timeseries(
    engine: &Engine,
    r: &t::TSCreateMultiTimeseriesReq,
) -> t::TSStatus {
    if r.data_types.len() != r.paths.len() {
        return bad_request("paths and data types differ in length");
    }
    let mut subs = Vec::with_capacity(r.paths.len());
    for (i, path) in r.paths.iter().enumerate() {
        let s = match (split_series(path), DataType::from_code(r.data_types[i])) {
            (Err(s), _) => s,
            (_, None) => bad_request(format!("unknown data type code {}", r.data_types[i])),
            (Ok((device, m)), Some(dt)) => {
                let encoding = r.encodings.get(i).and_then(|c| encoding_name(*c));
                let compressor = r.compressors.get(i).and_then(|c| compressor_name(*c));
                create_one(engine, &device, (m, dt, encoding, compressor)).await
            }
        };
        subs.push(Box::new(s));
    }
    if subs.iter().all(|s| s.code == StatusCode::Success.code()) {
        return status::success();
    }
    let mut s = status::failure(
        StatusCode::MultipleError,
        "some time series could not be created; see the sub-statuses",
    );
    s.sub_status = Some(subs);
    s
}

pub async fn set_storage_group(engine: &Engine, database: &str) -> t::TSStatus {
    schema_result(engine.create_database(database).await)
}

pub async fn delete_storage_groups(engine: &Engine, databases: &[String]) -> t::TSStatus {
    schema_result(engine.drop_databases(databases).await)
}

pub async fn delete_timeseries(engine: &Engine, paths: &[String]) -> t::TSStatus {
    schema_result(engine.delete_timeseries(paths).await)
}

pub async fn delete_data(engine: &Engine, r: &t::TSDeleteDataReq) -> t::TSStatus {
    schema_result(engine.delete_data(&r.paths, r.start_time, r.end_time).await)
}
