//! What a pipe's source lets through: series matching its path pattern, points inside its time range,
//! the kinds of change it includes (inserts, deletes, schema changes by kind), and — in double-living
//! mode — nothing that arrived through a pipe.

use duet_engine::paths;
use duet_parser::PathNode;
use duet_proto::types::{Column, ColumnValues};
use duet_storage::{DeleteOp, InsertOp, LogEntry, LogHeader, Op, OpKind, Origin};

use crate::config::{SchemaCapture, SourceConfig};
use crate::{PipeError, Result};
use duet_engine::schema_sync::{SchemaChange, SchemaKind};

/// A source configuration compiled for matching entries fast.
#[derive(Debug, Clone)]
pub struct EntryFilter {
    pattern: Vec<PathNode>,
    /// `root.**`: everything matches, no per-series work.
    matches_all: bool,
    start: i64,
    end: i64,
    inserts: bool,
    deletes: bool,
    schema: SchemaCapture,
    forwarding: bool,
}

impl EntryFilter {
    pub fn new(config: &SourceConfig) -> Result<EntryFilter> {
        let pattern = paths::parse_pattern(&config.path).ok_or_else(|| {
            PipeError::Invalid(format!("Pattern \"{}\" is illegal.", config.path))
        })?;
        let matches_all =
            matches!(pattern.as_slice(), [PathNode::Name(r), PathNode::Many] if r == "root");
        Ok(EntryFilter {
            pattern,
            matches_all,
            start: config.start_time.unwrap_or(i64::MIN),
            end: config.end_time.unwrap_or(i64::MAX),
            inserts: config.capture_inserts,
            deletes: config.capture_deletes,
            schema: config.capture_schema,
            forwarding: config.forwarding_pipe_requests,
        })
    }

    /// Whether a series path passes the pattern.
    pub fn matches_series(&self, series: &str) -> bool {
        self.matches_all || paths::matches(&self.pattern, &paths::split(series))
    }

    /// The pattern, for listing the series of a history pass.
    pub fn pattern(&self) -> &[PathNode] {
        &self.pattern
    }

    /// Whether deletions are sent (`inclusion` has `data.delete`).
    pub fn sends_deletes(&self) -> bool {
        self.deletes
    }

    /// Whether any schema change is sent (`inclusion` has a `schema` item).
    pub fn sends_schema(&self) -> bool {
        self.schema.any()
    }

    pub fn time_range(&self) -> (i64, i64) {
        (self.start, self.end)
    }

    /// Whether points first written at `instance` are sent (double-living sends only its own).
    pub fn sends_origin_instance(&self, instance: u64, local: u64) -> bool {
        self.forwarding || instance == local
    }

    /// Whether the entry behind `header` is sent, when its header alone decides it; `None` when its
    /// operations must be looked at (a path pattern or time range, or one kind of operation included
    /// and several operations whose kinds the header does not all give).
    pub fn decide_by_header(&self, header: &LogHeader) -> Option<bool> {
        if !self.forwarding && matches!(header.origin, Origin::Pipe { .. }) {
            return Some(false);
        }
        if !self.matches_all || self.start != i64::MIN || self.end != i64::MAX {
            return None;
        }
        // Schema changes are an entry's first operations, followed by the tombstones of a drop or
        // by the inserts of a write that created the series; which kinds travel is in their bytes.
        if header.first_op == Some(OpKind::Meta) {
            let others_may_go = header.ops > 1 && (self.deletes || self.inserts);
            return if self.schema.any() || others_may_go {
                None
            } else {
                Some(false)
            };
        }
        match (self.inserts, self.deletes, header.ops, header.first_op) {
            (_, _, 0, _) => Some(false),
            (true, true, _, _) => Some(true),
            (inserts, deletes, 1, Some(kind)) => Some(match kind {
                OpKind::Insert => inserts,
                OpKind::Delete => deletes,
                OpKind::Meta => false,
            }),
            _ => None,
        }
    }

    /// The part of `entry` this pipe sends, or `None` when nothing of it is sent.
    pub fn apply(&self, entry: &LogEntry) -> Option<LogEntry> {
        if !self.forwarding && matches!(entry.origin, Origin::Pipe { .. }) {
            return None;
        }
        let mut ops = Vec::with_capacity(entry.ops.len());
        for op in &entry.ops {
            match op {
                Op::Insert(insert) if self.inserts => {
                    if let Some(kept) = self.filter_insert(insert) {
                        ops.push(Op::Insert(kept));
                    }
                }
                Op::Delete(delete) if self.deletes => {
                    let series: Vec<String> = delete
                        .series
                        .iter()
                        .filter(|s| self.matches_series(s))
                        .cloned()
                        .collect();
                    let (start, end) = (delete.start.max(self.start), delete.end.min(self.end));
                    if !series.is_empty() && start <= end {
                        ops.push(Op::Delete(DeleteOp { series, start, end }));
                    }
                }
                Op::Meta(bytes) if self.schema.any() => {
                    if let Some(kept) = self.filter_schema_change(bytes) {
                        ops.push(Op::Meta(kept));
                    }
                }
                _ => {}
            }
        }
        if ops.is_empty() {
            return None;
        }
        Some(LogEntry {
            lsn: entry.lsn,
            origin: entry.origin.clone(),
            version: entry.version,
            ops,
        })
    }

    /// The part of a schema change this pipe sends: its kind must be included, and its paths must
    /// lie in the pattern (a database or a TTL's path where the pattern may match something below it;
    /// series one by one). A change this version cannot read is sent as it is, for the peer to judge.
    fn filter_schema_change(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let Ok(mut change) = SchemaChange::decode(bytes) else {
            return Some(bytes.to_vec());
        };
        // A database the pattern covers only in part is not dropped on the peer: only the deletion
        // of the series the pattern covers travels (a schema.timeseries change).
        if let SchemaChange::DropDatabase { path, series } = &change {
            if !self.matches_all
                && !paths::matches_everything_below(&self.pattern, &paths::split(path))
            {
                let covered: Vec<(String, String)> = series
                    .iter()
                    .filter(|(d, m)| self.matches_series(&format!("{d}.{m}")))
                    .cloned()
                    .collect();
                if covered.is_empty() {
                    return None;
                }
                change = SchemaChange::DeleteSeries { series: covered };
            }
        }
        let included = match change.kind() {
            SchemaKind::Database => self.schema.database,
            SchemaKind::Timeseries => self.schema.timeseries,
            SchemaKind::Ttl => self.schema.ttl,
            SchemaKind::Auth => self.schema.auth,
            SchemaKind::Template => self.schema.template,
        };
        if !included {
            return None;
        }
        // Accounts and template definitions are not under a path: the pattern does not select them.
        if self.matches_all || change.paths().is_empty() {
            return Some(bytes.to_vec());
        }
        let covers = |path: &str| {
            let nodes = paths::split(path);
            // A TTL path pattern counts by its concrete prefix.
            let concrete: Vec<String> = nodes
                .iter()
                .take_while(|n| !n.contains('*'))
                .cloned()
                .collect();
            paths::matches_prefix_of(&self.pattern, &concrete)
        };
        let kept = match change {
            SchemaChange::CreateSeries {
                device,
                aligned,
                series,
            } => {
                let series: Vec<_> = series
                    .into_iter()
                    .filter(|s| self.matches_series(&format!("{device}.{}", s.measurement)))
                    .collect();
                (!series.is_empty()).then_some(SchemaChange::CreateSeries {
                    device,
                    aligned,
                    series,
                })
            }
            SchemaChange::DeleteSeries { series } => {
                let series: Vec<_> = series
                    .into_iter()
                    .filter(|(d, m)| self.matches_series(&format!("{d}.{m}")))
                    .collect();
                (!series.is_empty()).then_some(SchemaChange::DeleteSeries { series })
            }
            other => other.paths().iter().any(|p| covers(p)).then_some(other),
        };
        kept.map(|c| c.encode())
    }

    fn filter_insert(&self, insert: &InsertOp) -> Option<InsertOp> {
        let keep_column: Vec<bool> = if self.matches_all {
            vec![true; insert.measurements.len()]
        } else {
            let mut device = paths::split(&insert.device);
            insert
                .measurements
                .iter()
                .map(|m| {
                    device.push(m.clone());
                    let ok = paths::matches(&self.pattern, &device);
                    device.pop();
                    ok
                })
                .collect()
        };
        if !keep_column.iter().any(|k| *k) {
            return None;
        }
        let all_rows = self.start == i64::MIN && self.end == i64::MAX;
        let keep_row: Vec<bool> = insert
            .times
            .iter()
            .map(|t| all_rows || (*t >= self.start && *t <= self.end))
            .collect();
        if !keep_row.iter().any(|k| *k) {
            return None;
        }
        if all_rows && keep_column.iter().all(|k| *k) {
            return Some(insert.clone());
        }
        let mut measurements = Vec::new();
        let mut columns = Vec::new();
        for ((m, c), keep) in insert
            .measurements
            .iter()
            .zip(&insert.columns)
            .zip(&keep_column)
        {
            if *keep {
                measurements.push(m.clone());
                columns.push(if all_rows {
                    c.clone()
                } else {
                    select_rows(c, &keep_row)
                });
            }
        }
        let times = insert
            .times
            .iter()
            .zip(&keep_row)
            .filter(|(_, k)| **k)
            .map(|(t, _)| *t)
            .collect();
        Some(InsertOp {
            device: insert.device.clone(),
            aligned: insert.aligned,
            measurements,
            columns,
            times,
        })
    }
}

/// The rows of a column where `keep` is true.
pub fn select_rows(column: &Column, keep: &[bool]) -> Column {
    fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| x.clone())
            .collect()
    }
    let values = match &column.values {
        ColumnValues::Boolean(v) => ColumnValues::Boolean(pick(v, keep)),
        ColumnValues::Int32(v) => ColumnValues::Int32(pick(v, keep)),
        ColumnValues::Int64(v) => ColumnValues::Int64(pick(v, keep)),
        ColumnValues::Float(v) => ColumnValues::Float(pick(v, keep)),
        ColumnValues::Double(v) => ColumnValues::Double(pick(v, keep)),
        ColumnValues::Binary(v) => ColumnValues::Binary(pick(v, keep)),
    };
    Column {
        data_type: column.data_type,
        nulls: column.nulls.as_ref().map(|n| pick(n, keep)),
        values,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config;
    use crate::params::Parameters;
    use duet_proto::types::DataType;
    use duet_storage::Version;

    fn filter(pairs: &[(&str, &str)]) -> EntryFilter {
        let params = Parameters(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        EntryFilter::new(&config::source(&params).unwrap()).unwrap()
    }

    fn entry(origin: Origin) -> LogEntry {
        LogEntry {
            lsn: 7,
            origin,
            version: Version {
                hlc: 1,
                instance: 1,
            },
            ops: vec![
                Op::Insert(InsertOp {
                    device: "root.sg.d1".into(),
                    aligned: false,
                    measurements: vec!["s1".into(), "s2".into()],
                    columns: vec![
                        Column {
                            data_type: DataType::Int64,
                            nulls: None,
                            values: ColumnValues::Int64(vec![1, 2, 3]),
                        },
                        Column {
                            data_type: DataType::Int64,
                            nulls: Some(vec![false, true, false]),
                            values: ColumnValues::Int64(vec![4, 0, 6]),
                        },
                    ],
                    times: vec![10, 20, 30],
                }),
                Op::Delete(DeleteOp {
                    series: vec!["root.sg.d1.s1".into(), "root.other.d.s".into()],
                    start: 0,
                    end: 100,
                }),
            ],
        }
    }

    fn create_series(device: &str, measurement: &str) -> Op {
        Op::Meta(
            SchemaChange::CreateSeries {
                device: device.into(),
                aligned: false,
                series: vec![duet_engine::schema_sync::SeriesSpec {
                    measurement: measurement.into(),
                    data_type: "INT64".into(),
                    encoding: "TS_2DIFF".into(),
                    compressor: "LZ4".into(),
                }],
            }
            .encode(),
        )
    }

    fn drop_database(path: &str) -> Op {
        Op::Meta(
            SchemaChange::DropDatabase {
                path: path.into(),
                series: vec![(format!("{path}.d1"), "s1".into())],
            }
            .encode(),
        )
    }

    #[test]
    fn a_pipe_covering_part_of_a_database_sends_the_deletion_of_its_series_not_the_drop() {
        let drop = |path: &str| LogEntry {
            ops: vec![Op::Meta(
                SchemaChange::DropDatabase {
                    path: path.into(),
                    series: vec![
                        (format!("{path}.d1"), "s1".into()),
                        (format!("{path}.d2"), "s1".into()),
                    ],
                }
                .encode(),
            )],
            ..entry(Origin::Local)
        };
        let sent = |f: &EntryFilter, path: &str| -> Option<SchemaChange> {
            let kept = f.apply(&drop(path))?;
            let [Op::Meta(bytes)] = kept.ops.as_slice() else {
                panic!("{kept:?}")
            };
            Some(SchemaChange::decode(bytes).unwrap())
        };
        // Patterns that cover the whole database send the drop.
        for path in ["root.**", "root.sg.**", "root.*.**"] {
            let f = filter(&[("inclusion", "all"), ("path", path)]);
            assert!(
                matches!(sent(&f, "root.sg"), Some(SchemaChange::DropDatabase { .. })),
                "{path}"
            );
        }
        // One device of it: only that device's series are deleted on the peer.
        let d1 = filter(&[("inclusion", "all"), ("path", "root.sg.d1.**")]);
        assert_eq!(
            sent(&d1, "root.sg"),
            Some(SchemaChange::DeleteSeries {
                series: vec![("root.sg.d1".into(), "s1".into())]
            })
        );
        // A pattern below the database that covers none of its series sends nothing.
        let d3 = filter(&[("inclusion", "all"), ("path", "root.sg.d3.*")]);
        assert_eq!(sent(&d3, "root.sg"), None);
        // Series deletions are schema.timeseries: a pipe without it sends nothing of a partial drop.
        let db_only = filter(&[("inclusion", "schema.database"), ("path", "root.sg.d1.**")]);
        assert_eq!(sent(&db_only, "root.sg"), None);
    }

    #[test]
    fn schema_changes_pass_by_kind_and_path() {
        let e = |ops: Vec<Op>| LogEntry {
            ops,
            ..entry(Origin::Local)
        };
        let create = e(vec![create_series("root.sg.d1", "s1")]);
        let drop = e(vec![drop_database("root.other")]);
        // Without a schema item nothing of them travels; with one, only its kind.
        assert!(filter(&[("inclusion", "data")]).apply(&create).is_none());
        assert!(filter(&[("inclusion", "schema.database")])
            .apply(&create)
            .is_none());
        assert!(filter(&[("inclusion", "schema.database")])
            .apply(&drop)
            .is_some());
        assert!(filter(&[("inclusion", "schema")]).apply(&create).is_some());
        // The path pattern: a database outside it stays, one it may cover goes.
        let sg = filter(&[("inclusion", "all"), ("path", "root.sg.**")]);
        assert!(sg.apply(&drop).is_none());
        assert!(sg.apply(&create).is_some());
        assert!(sg.apply(&e(vec![drop_database("root.sg")])).is_some());
        let other_series = e(vec![create_series("root.other.d", "s")]);
        assert!(sg.apply(&other_series).is_none());
        // Excluding schema from `all` leaves data only.
        let data_only = filter(&[("inclusion", "all"), ("inclusion.exclusion", "schema")]);
        assert!(data_only.apply(&create).is_none());
    }

    #[test]
    fn a_header_decides_only_when_it_agrees_with_the_entry() {
        let filters = [
            filter(&[]),
            filter(&[("mode.double-living", "true")]),
            filter(&[("inclusion", "data")]),
            filter(&[("inclusion", "data.delete")]),
            filter(&[("mode.double-living", "true"), ("inclusion", "data")]),
            filter(&[("path", "root.sg.*.s2")]),
            filter(&[("start-time", "15")]),
            filter(&[("inclusion", "all")]),
            filter(&[("inclusion", "schema.timeseries")]),
            filter(&[("inclusion", "all"), ("path", "root.sg.**")]),
        ];
        let mut entries = Vec::new();
        for origin in [Origin::Local, Origin::Pipe { instance: 9 }] {
            let both = entry(origin.clone());
            for ops in [
                both.ops.clone(),
                vec![both.ops[0].clone()],
                vec![both.ops[1].clone()],
                vec![create_series("root.sg.d1", "s1")],
                vec![drop_database("root.other"), both.ops[1].clone()],
                // A write that created its series: its creation first, then its insert.
                vec![create_series("root.sg.d1", "s1"), both.ops[0].clone()],
            ] {
                entries.push(LogEntry {
                    ops,
                    ..both.clone()
                });
            }
        }
        let mut decided = 0;
        for f in &filters {
            for e in &entries {
                let header = LogHeader {
                    lsn: e.lsn,
                    origin: e.origin.clone(),
                    version: e.version,
                    ops: e.ops.len(),
                    first_op: e.ops.first().map(|op| match op {
                        Op::Insert(_) => OpKind::Insert,
                        Op::Delete(_) => OpKind::Delete,
                        Op::Meta(_) => OpKind::Meta,
                    }),
                };
                if let Some(sent) = f.decide_by_header(&header) {
                    decided += 1;
                    assert_eq!(sent, f.apply(e).is_some(), "{f:?} {e:?}");
                }
            }
        }
        // Most of these need no decoding: every pipe-origin entry under double living, and the
        // pipes over everything whatever their inclusion when the entry has one operation.
        assert!(decided >= 20, "{decided}");
    }

    #[test]
    fn double_living_drops_pipe_entries_only() {
        let f = filter(&[("mode.double-living", "true")]);
        assert!(f.apply(&entry(Origin::Pipe { instance: 9 })).is_none());
        let kept = f.apply(&entry(Origin::Local)).unwrap();
        // The default inclusion is data.insert: the delete is not sent.
        assert_eq!(kept.ops.len(), 1);
        assert!(filter(&[])
            .apply(&entry(Origin::Pipe { instance: 9 }))
            .is_some());
    }

    #[test]
    fn path_time_and_inclusion_filters_trim_entries() {
        let f = filter(&[
            ("path", "root.sg.*.s2"),
            ("start-time", "15"),
            ("end-time", "30"),
            ("inclusion", "data"),
        ]);
        let kept = f.apply(&entry(Origin::Local)).unwrap();
        let Op::Insert(insert) = &kept.ops[0] else {
            panic!()
        };
        assert_eq!(insert.measurements, vec!["s2"]);
        assert_eq!(insert.times, vec![20, 30]);
        assert_eq!(insert.columns[0].nulls, Some(vec![true, false]));
        // root.sg.d1.s1 does not match root.sg.*.s2, and root.other not either: no delete is left.
        assert_eq!(kept.ops.len(), 1);
        let deletes = filter(&[
            ("path", "root.sg.**"),
            ("inclusion", "data.delete"),
            ("start-time", "50"),
        ]);
        let kept = deletes.apply(&entry(Origin::Local)).unwrap();
        assert_eq!(
            kept.ops,
            vec![Op::Delete(DeleteOp {
                series: vec!["root.sg.d1.s1".into()],
                start: 50,
                end: 100
            })]
        );
    }
}
