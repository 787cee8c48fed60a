//! ALIGN BY DEVICE: one block of rows per device under the FROM paths, in path order, columns Device
//! plus the selected measurements (raw or aggregated). Each device becomes a part (its cursors, its
//! predicate) only when the result reaches it, so one device's cursors are open at a time; HAVING and
//! FILL restart at each device.

use std::collections::{BTreeMap, HashMap};

use duet_parser::{Expr, Keep, Path, PathNode, Select, SelectItem};
use duet_proto::types::DataType;

use super::aggregate::{AggColumn, AggFn, AggPart, AggParts, AggSource};
use super::bounds::is_time_range;
use super::count_if::{self, CountIfSpec};
use super::expr::{bind, bind_with, Bound, Reference};
use super::page::PageSource;
use super::plan::{series_bytes, star};
use super::raw::{RawPart, RawParts};
use super::raw_columns::RawColumns;
use super::scan::{AlignedRows, ScanBudget};
use super::shape::shaped;
use super::windows::Windows;
use super::EngineRef;
use crate::engine::{Output, QueryStream, SessionContext};
use crate::limits::QueryControlRef;
use crate::paths;
use crate::schema::{resolution_step, Schema, SeriesInfo};
use crate::{EngineError, Result};

/// Each device's measurements, by device key in path order.
type Devices = BTreeMap<String, BTreeMap<String, SeriesInfo>>;

/// Per measurement name, its type and, where devices disagree on it, another type it has.
type MeasurementTypes = BTreeMap<String, (DataType, Option<DataType>)>;

/// One output column of ALIGN BY DEVICE: its header, the measurement it shows, its aggregation.
pub(super) struct DeviceColumn {
    header: String,
    /// The measurement it shows or aggregates (empty for COUNT_IF, which reads `count_if`'s).
    measurement: String,
    agg: Option<AggFn>,
    count_if: Option<DeviceCountIf>,
}

/// A COUNT_IF column of ALIGN BY DEVICE: its predicate names measurements, which each device
/// resolves among its own; a device that lacks one of them shows a null, as for a measurement it
/// lacks in any other column.
pub(super) struct DeviceCountIf {
    predicate: Expr,
    /// The predicate's paths in order of appearance, each one measurement name.
    paths: Vec<Path>,
    measurements: Vec<String>,
    keep: Keep,
    ignore_null: bool,
}

/// Where an output column reads in a device's series: the position of its measurement (COUNT_IF:
/// of each of its measurements, in the order of its paths), or `None` where the device lacks one.
type Feed = Option<Vec<usize>>;

/// ALIGN BY DEVICE: the devices under the FROM paths, each turned into a part (its cursors, its
/// predicate) only when the result reaches it.
struct DevicePlan {
    engine: EngineRef,
    ctx: SessionContext,
    condition: Option<Expr>,
    devices: std::collections::btree_map::IntoIter<String, BTreeMap<String, SeriesInfo>>,
    columns: Vec<DeviceColumn>,
    lo: i64,
    hi: i64,
    descending: bool,
    control: QueryControlRef,
}

/// One device's series and how the output columns use them.
struct DeviceSeries {
    device: String,
    /// Output series first (`n_outputs` of them), then predicate-only series.
    series: Vec<SeriesInfo>,
    n_outputs: usize,
    /// Per output column, where it reads in `series`.
    feeds: Vec<Feed>,
    predicate: Option<Bound>,
}

/// A device's output series (each measurement once, in column order) and, per output column, where
/// it reads among them.
fn device_feeds(
    columns: &[DeviceColumn],
    ms: &BTreeMap<String, SeriesInfo>,
) -> (Vec<SeriesInfo>, Vec<Feed>) {
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut feeds = Vec::with_capacity(columns.len());
    for c in columns {
        let measurements = match &c.count_if {
            Some(ci) => ci.measurements.as_slice(),
            None => std::slice::from_ref(&c.measurement),
        };
        resolution_step();
        if !measurements.iter().all(|m| ms.contains_key(m)) {
            feeds.push(None);
            continue;
        }
        let mut feed = Vec::with_capacity(measurements.len());
        for m in measurements {
            if let Some(s) = ms.get(m) {
                feed.push(*position.entry(m).or_insert_with(|| {
                    series.push(s.clone());
                    series.len() - 1
                }));
            }
        }
        feeds.push(Some(feed));
    }
    (series, feeds)
}

impl DevicePlan {
    /// The next device with at least one selected measurement.
    fn next_device(&mut self) -> Result<Option<DeviceSeries>> {
        // Devices are bound as pages are fetched, on whatever thread fetches: under the session's
        // read scope again (a condition's measurement outside it reads nothing).
        let _scope = crate::scope::enter(self.ctx.read_data.clone());
        for (device, ms) in self.devices.by_ref() {
            self.control.check()?;
            let (mut series, feeds) = device_feeds(&self.columns, &ms);
            if series.is_empty() {
                continue;
            }
            let n_outputs = series.len();
            let predicate = match &self.condition {
                Some(c) if !is_time_range(&self.engine, &self.ctx, c)? => {
                    Some(bind(&self.engine, &self.ctx, c, &mut |p| {
                        resolve_in_device(&device, &ms, p, &mut series)
                    })?)
                }
                _ => None,
            };
            return Ok(Some(DeviceSeries {
                device,
                series,
                n_outputs,
                feeds,
                predicate,
            }));
        }
        Ok(None)
    }
}

impl RawParts for DevicePlan {
    fn next_part(&mut self) -> Result<Option<RawPart>> {
        let Some(d) = self.next_device()? else {
            return Ok(None);
        };
        let rows = AlignedRows::new(
            &d.series,
            d.n_outputs,
            self.lo,
            self.hi,
            self.descending,
            d.predicate,
            &ScanBudget::new(&self.control, d.series.len()),
        )?;
        Ok(Some(RawPart {
            device: Some(d.device),
            rows,
            feeds: d
                .feeds
                .into_iter()
                .map(|feed| feed.and_then(|f| f.first().copied()))
                .collect(),
        }))
    }
}

impl AggParts for DevicePlan {
    fn next_part(&mut self) -> Result<Option<AggPart>> {
        let Some(d) = self.next_device()? else {
            return Ok(None);
        };
        let mut columns = Vec::with_capacity(self.columns.len());
        for (feed, c) in d.feeds.into_iter().zip(&self.columns) {
            columns.push(match (feed, &c.count_if) {
                (None, _) => None,
                (Some(inputs), Some(ci)) => {
                    let predicate = bind(&self.engine, &self.ctx, &ci.predicate, &mut |p| {
                        ci.paths
                            .iter()
                            .position(|q| q == p)
                            .and_then(|i| inputs.get(i).copied())
                            .ok_or_else(|| {
                                EngineError::Semantic(format!(
                                    "COUNT_IF's path {p} names no measurement of {}",
                                    d.device
                                ))
                            })
                    })?;
                    Some(AggColumn {
                        series: inputs.clone(),
                        function: AggFn::CountIf,
                        count_if: vec![CountIfSpec {
                            predicate,
                            inputs,
                            keep: ci.keep,
                            ignore_null: ci.ignore_null,
                        }],
                    })
                }
                (Some(inputs), None) => Some(AggColumn {
                    series: inputs,
                    function: c.agg.unwrap_or(AggFn::Count),
                    count_if: Vec::new(),
                }),
            });
        }
        Ok(Some(AggPart {
            device: Some(d.device),
            series: d.series,
            n_outputs: d.n_outputs,
            predicate: d.predicate,
            columns,
        }))
    }
}

/// ALIGN BY DEVICE: one block of rows per device, columns Device plus measurement names.
pub(super) fn by_device(
    engine: &EngineRef,
    ctx: &SessionContext,
    select: &Select,
    lo: i64,
    hi: i64,
    windows: Option<Windows>,
    control: QueryControlRef,
) -> Result<Output> {
    let devices = devices_under(&*engine.schema_read()?, &select.from);
    let held = control.reserve(
        devices
            .values()
            .flat_map(|ms| ms.values())
            .map(|s| 2 * series_bytes(s))
            .sum(),
        "the list of selected devices",
    )?;
    let measurement_types = measurement_types(&devices);
    let mut columns = device_columns(&select.items, &measurement_types)?;
    if columns.iter().any(|c| c.count_if.is_some())
        && windows.as_ref().is_some_and(Windows::overlap)
    {
        return Err(EngineError::Semantic(
            "COUNT_IF is not supported with a sliding window in GROUP BY".into(),
        ));
    }
    let n_visible = columns.len();
    // HAVING's aggregates: a visible column, or a hidden one after them (cells start with Device).
    let having = match &select.having {
        Some(having) => Some(bind_with(engine, ctx, having, &mut |reference| {
            let Reference::Aggregate(function, path) = reference else {
                return Err(EngineError::Semantic(
                    "Raw data and aggregation result hybrid calculation is not supported".into(),
                ));
            };
            let [PathNode::Name(m)] = path.0.as_slice() else {
                return Err(EngineError::Semantic(
                    "ALIGN BY DEVICE: the suffix paths can only be measurement or one-level wildcard"
                        .into(),
                ));
            };
            let agg = Some(AggFn::parse(function)?);
            if let Some(i) = columns
                .iter()
                .position(|c| c.agg == agg && c.measurement == *m)
            {
                return Ok(1 + i);
            }
            columns.push(DeviceColumn {
                header: String::new(),
                measurement: m.clone(),
                agg,
                count_if: None,
            });
            Ok(columns.len())
        })?),
        None => None,
    };
    let mut types = vec![DataType::Text];
    for c in &columns {
        let t = measurement_types
            .get(&c.measurement)
            .map(|(t, _)| *t)
            .unwrap_or(DataType::Text);
        types.push(match c.agg {
            Some(f) => f.output_type(t)?,
            None => t,
        });
    }
    drop(measurement_types);
    let mut names = vec!["Device".to_string()];
    names.extend(columns.iter().take(n_visible).map(|c| c.header.clone()));
    let plan = DevicePlan {
        engine: engine.clone(),
        ctx: ctx.clone(),
        condition: select.condition.clone(),
        devices: devices.into_iter(),
        columns,
        lo,
        hi,
        descending: select.order_by_time_desc,
        control: control.clone(),
    };
    let paging = (select.offset.unwrap_or(0), select.limit);
    let shape = select.fill.is_some() || having.is_some();
    let inner_paging = if shape { (0, None) } else { paging };
    let (source, has_time): (Box<dyn PageSource>, bool) = match windows {
        Some(windows) => (
            Box::new(AggSource::new(
                engine.clone(),
                control.clone(),
                windows,
                (lo, hi),
                select.order_by_time_desc,
                Box::new(plan),
                types.clone(),
                inner_paging,
            )),
            select.group_by.is_some(),
        ),
        None => (
            Box::new(RawColumns::new(
                engine.clone(),
                Box::new(plan),
                types.clone(),
                inner_paging,
                control.clone(),
            )),
            true,
        ),
    };
    types.truncate(1 + n_visible);
    let source = shaped(
        engine, ctx, select, source, &control, &types, having, true, paging,
    )?;
    Ok(Output::Stream(QueryStream::new(
        names,
        types,
        has_time,
        source,
        control,
        vec![held],
    )))
}

/// The devices with series under the FROM paths (`from.*`, and `from` itself where it has `**`),
/// with their measurements.
fn devices_under(schema: &Schema, from: &[Path]) -> Devices {
    let mut devices = Devices::new();
    for f in from {
        let mut pattern = f.0.clone();
        pattern.push(PathNode::One);
        let mut matched = schema.matching_series(&pattern);
        if f.0.iter().any(|n| matches!(n, PathNode::Many)) {
            matched.extend(schema.matching_series(&f.0));
        }
        for s in matched {
            resolution_step();
            devices
                .entry(s.device.clone())
                .or_default()
                .insert(s.measurement.clone(), s);
        }
    }
    devices
}

/// Each measurement's type, and for those whose type differs between devices, a second type.
fn measurement_types(devices: &Devices) -> MeasurementTypes {
    let mut types = MeasurementTypes::new();
    for s in devices.values().flat_map(|ms| ms.values()) {
        match types.get_mut(&s.measurement) {
            Some((first, other @ None)) if *first != s.data_type => *other = Some(s.data_type),
            Some(_) => {}
            None => {
                types.insert(s.measurement.clone(), (s.data_type, None));
            }
        }
    }
    types
}

/// The output measurement columns of the SELECT list, in item order; a wildcard or `s*` stands for
/// the measurement names it matches, each once, in name order.
fn device_columns(items: &[SelectItem], types: &MeasurementTypes) -> Result<Vec<DeviceColumn>> {
    let mut columns: Vec<DeviceColumn> = Vec::new();
    for item in items {
        let (path, alias, agg) = match item {
            SelectItem::Wildcard => (star(), None, None),
            SelectItem::Path { path, alias } => (path.clone(), alias.clone(), None),
            SelectItem::Aggregate {
                function,
                path,
                alias,
            } => (
                path.clone(),
                alias.clone(),
                Some((AggFn::parse(function)?, function.as_str())),
            ),
            SelectItem::CountIf {
                function,
                predicate,
                keep,
                ignore_null,
                alias,
            } => {
                columns.push(count_if_column(
                    function,
                    predicate,
                    *keep,
                    *ignore_null,
                    alias.as_deref(),
                )?);
                continue;
            }
        };
        let names: Vec<String> = match path.0.as_slice() {
            [PathNode::Name(m)] => vec![m.clone()],
            // Every measurement name, each once, in name order.
            [PathNode::One] | [PathNode::Many] => types.keys().cloned().collect(),
            // `s*`: the measurement names it matches, in name order.
            [PathNode::Glob(glob)] => types
                .keys()
                .filter(|m| paths::glob_matches(glob, m))
                .cloned()
                .collect(),
            _ => {
                return Err(EngineError::Semantic(format!(
                    "ALIGN BY DEVICE needs measurement names in the SELECT list, not {path}"
                )))
            }
        };
        for m in names {
            if let Some((prev, Some(t))) = types.get(&m) {
                return Err(EngineError::Semantic(format!(
                    "measurement {m} has different data types across devices ({prev}, {t})"
                )));
            }
            let header = match (&alias, agg) {
                (Some(a), _) => a.clone(),
                // As written, as IoTDB's header is.
                (None, Some((_, written))) => format!("{written}({m})"),
                (None, None) => m.clone(),
            };
            columns.push(DeviceColumn {
                header,
                measurement: m,
                agg: agg.map(|(f, _)| f),
                count_if: None,
            });
        }
    }
    Ok(columns)
}

/// A COUNT_IF column of ALIGN BY DEVICE: its header shows the predicate as written, measurement
/// names and all (`count_if(s1 = 0 & s2 = 0, 3)`, IoTDB's).
fn count_if_column(
    function: &str,
    predicate: &Expr,
    keep: Keep,
    ignore_null: Option<bool>,
    alias: Option<&str>,
) -> Result<DeviceColumn> {
    let paths = count_if::paths_of(predicate)?;
    let mut measurements = Vec::with_capacity(paths.len());
    for p in &paths {
        let [PathNode::Name(m)] = p.0.as_slice() else {
            return Err(EngineError::Semantic(format!(
                "COUNT_IF with ALIGN BY DEVICE names measurements of each device, not {p}"
            )));
        };
        measurements.push(m.clone());
    }
    let shown: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let header = match alias {
        Some(a) => a.to_string(),
        None => count_if::header(function, predicate, &paths, &shown, keep, ignore_null),
    };
    Ok(DeviceColumn {
        header,
        measurement: String::new(),
        agg: Some(AggFn::CountIf),
        count_if: Some(DeviceCountIf {
            predicate: predicate.clone(),
            paths,
            measurements,
            keep,
            ignore_null: ignore_null.unwrap_or(true),
        }),
    })
}

/// The position among `series` of a WHERE measurement of `device` (added when new).
fn resolve_in_device(
    device: &str,
    ms: &BTreeMap<String, SeriesInfo>,
    p: &Path,
    series: &mut Vec<SeriesInfo>,
) -> Result<usize> {
    let [PathNode::Name(m)] = p.0.as_slice() else {
        return Err(EngineError::Semantic(format!(
            "ALIGN BY DEVICE conditions name measurements, not {p}"
        )));
    };
    let info = match ms.get(m) {
        Some(s) => s.clone(),
        // A measurement the device lacks reads as null (the row is then unknown and dropped); so
        // does one outside the session's read scope (no key: nothing is read).
        None => SeriesInfo {
            path: format!("{device}.{}", paths::join(&[m])),
            key: if crate::scope::series_visible(&paths::split(device), m) {
                format!("{device}.{m}")
            } else {
                String::new()
            },
            device: device.to_string(),
            measurement: m.clone(),
            database: String::new(),
            data_type: DataType::Text,
            encoding: String::new(),
            compressor: String::new(),
            aligned: false,
        },
    };
    if let Some(i) = series.iter().position(|s| {
        resolution_step();
        s.path == info.path
    }) {
        return Ok(i);
    }
    series.push(info);
    Ok(series.len() - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::query::testing::{schema, select, TestDb};

    /// The measurements of `series`, in order.
    fn measurements(series: &[SeriesInfo]) -> Vec<&str> {
        series.iter().map(|s| s.measurement.as_str()).collect()
    }

    fn two_devices() -> Devices {
        let schema = schema(&[
            (
                "root.sg.d1",
                &[("s1", DataType::Int64), ("t", DataType::Text)],
            ),
            (
                "root.sg.d2",
                &[
                    ("s1", DataType::Int64),
                    ("s2", DataType::Double),
                    ("t", DataType::Int32),
                ],
            ),
        ]);
        devices_under(&schema, &[duet_parser::parse_path("root.sg.*").unwrap()])
    }

    fn headers(sql: &str, devices: &Devices) -> Result<Vec<String>> {
        let columns = device_columns(&select(sql).items, &measurement_types(devices))?;
        Ok(columns.into_iter().map(|c| c.header).collect())
    }

    #[test]
    fn columns_expand_wildcards_to_measurement_names_in_name_order() {
        let devices = two_devices();
        assert_eq!(
            devices.keys().collect::<Vec<_>>(),
            ["root.sg.d1", "root.sg.d2"]
        );
        assert_eq!(
            headers("SELECT s2, s* FROM root.sg ALIGN BY DEVICE", &devices).unwrap(),
            ["s2", "s1", "s2"]
        );
        assert_eq!(
            headers(
                "SELECT count(s*), s1 AS x FROM root.sg ALIGN BY DEVICE",
                &devices
            )
            .unwrap(),
            ["count(s1)", "count(s2)", "x"]
        );
        // `t` is TEXT on one device and INT32 on the other: a wildcard reaching it is refused.
        let error = headers("SELECT * FROM root.sg ALIGN BY DEVICE", &devices).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("different data types across devices (TEXT, INT32)"),
            "{error}"
        );
        let error = headers("SELECT d1.s1 FROM root.sg ALIGN BY DEVICE", &devices).unwrap_err();
        assert!(error.to_string().contains("measurement names"), "{error}");
    }

    #[test]
    fn each_device_feeds_the_columns_it_has_each_measurement_once() {
        let devices = two_devices();
        let types = measurement_types(&devices);
        let columns = device_columns(
            &select("SELECT s2, s1, s2 FROM root.sg ALIGN BY DEVICE").items,
            &types,
        )
        .unwrap();
        let (series, feeds) = device_feeds(&columns, &devices["root.sg.d1"]);
        assert_eq!(measurements(&series), ["s1"]);
        assert_eq!(feeds, [None, Some(vec![0]), None]);
        let (series, feeds) = device_feeds(&columns, &devices["root.sg.d2"]);
        assert_eq!(measurements(&series), ["s2", "s1"]);
        assert_eq!(feeds, [Some(vec![0]), Some(vec![1]), Some(vec![0])]);
    }

    #[test]
    fn a_condition_on_a_measurement_the_device_lacks_reads_null() {
        let devices = two_devices();
        let d1 = &devices["root.sg.d1"];
        let mut series: Vec<SeriesInfo> = d1.values().cloned().collect();
        let name = |m: &str| Path(vec![PathNode::Name(m.into())]);
        assert_eq!(
            resolve_in_device("root.sg.d1", d1, &name("t"), &mut series).unwrap(),
            1
        );
        assert_eq!(
            resolve_in_device("root.sg.d1", d1, &name("s2"), &mut series).unwrap(),
            2
        );
        assert_eq!(series[2].path, "root.sg.d1.s2");
        assert!(resolve_in_device(
            "root.sg.d1",
            d1,
            &Path(vec![PathNode::Name("a".into()), PathNode::Name("b".into())]),
            &mut series
        )
        .is_err());
    }

    #[test]
    fn devices_page_in_turn_with_offset_limit_and_having_across_them() {
        let db = TestDb::open();
        db.run(
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1), (2, 2), (3, 3);
             INSERT INTO root.sg.d2(time, s1, s2) VALUES (1, 10, 1.0), (4, 40, 4.0)",
        );
        let (names, rows) =
            db.query("SELECT s1, s2 FROM root.sg.* LIMIT 3 OFFSET 2 ALIGN BY DEVICE");
        assert_eq!(names, ["Device", "s1", "s2"]);
        assert_eq!(
            rows,
            [
                ["3", "root.sg.d1", "3", "null"],
                ["1", "root.sg.d2", "10", "1.0"],
                ["4", "root.sg.d2", "40", "4.0"]
            ]
        );
        let (names, rows) = db.query(
            "SELECT count(s1) FROM root.sg.* GROUP BY ([0, 6), 3ms) HAVING sum(s1) > 5 ALIGN BY DEVICE",
        );
        assert_eq!(names, ["Device", "count(s1)"]);
        // d1's windows sum to 3 each: HAVING drops them.
        assert_eq!(rows, [["0", "root.sg.d2", "1"], ["3", "root.sg.d2", "1"]]);
    }

    #[test]
    fn a_count_if_column_reads_all_its_measurements_or_is_null() {
        let devices = two_devices();
        let types = measurement_types(&devices);
        let items =
            select("SELECT count_if(s2 > 0 & s1 = 0, 2), count(s1) FROM root.sg.* ALIGN BY DEVICE")
                .items;
        let columns = device_columns(&items, &types).unwrap();
        assert_eq!(columns[0].header, "count_if(s2 > 0 & s1 = 0, 2)");
        // d1 lacks s2: its COUNT_IF is null, its count(s1) reads s1.
        let (series, feeds) = device_feeds(&columns, &devices["root.sg.d1"]);
        assert_eq!(series.len(), 1);
        assert_eq!(feeds, [None, Some(vec![0])]);
        // d2 has both, in the order of the predicate's paths; count(s1) shares s1's cursor.
        let (series, feeds) = device_feeds(&columns, &devices["root.sg.d2"]);
        assert_eq!(measurements(&series), ["s2", "s1"]);
        assert_eq!(feeds, [Some(vec![0, 1]), Some(vec![1])]);
        let items = select("SELECT count_if(d1.s1 = 0, 2) FROM root.sg ALIGN BY DEVICE").items;
        assert!(device_columns(&items, &types).is_err());
    }
}
