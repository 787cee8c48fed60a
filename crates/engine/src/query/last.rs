//! `SELECT LAST`: the newest point of every matched series at or below the range's end, as rows
//! (Time, Timeseries, Value, DataType), in path order (reversed by `ORDER BY TIME DESC`), read one
//! series at a time as pages are fetched.

use std::collections::HashSet;

use duet_parser::{Select, SelectItem};
use duet_proto::types::{Column, DataType, Table};

use super::columnar;
use super::expr::{render, Val};
use super::page::{Row, RowPages, RowSource};
use super::plan::{resolve_item, series_bytes, star};
use super::EngineRef;
use crate::engine::{Output, QueryStream};
use crate::limits::QueryControlRef;
use crate::schema::{resolution_step, Schema, SeriesInfo};
use crate::{EngineError, Result};

/// A `SELECT LAST` of at most this many series is answered at once as a table: each series costs a
/// summary or a one-point read, and a table's reply pages are cut on the async worker, which saves the
/// session a second trip to a blocking thread (most of a small LAST's latency).
const LAST_AT_ONCE: usize = 64;

/// `SELECT LAST` over `[lo, hi]`.
pub(super) fn last(
    engine: &EngineRef,
    select: &Select,
    lo: i64,
    hi: i64,
    control: QueryControlRef,
) -> Result<Output> {
    let series = last_series(&*engine.schema_read()?, select)?;
    let held = control.reserve(
        series.iter().map(series_bytes).sum(),
        "the list of selected series",
    )?;
    let types = vec![DataType::Text; 3];
    let names: Vec<String> = vec!["Timeseries".into(), "Value".into(), "DataType".into()];
    let at_once = series.len() <= LAST_AT_ONCE;
    let rows = LastRows {
        engine: engine.clone(),
        control: control.clone(),
        series,
        next: 0,
        lo,
        hi,
    };
    if at_once {
        return at_once_table(rows, names);
    }
    Ok(Output::Stream(QueryStream::new(
        names,
        types.clone(),
        true,
        Box::new(RowPages::new(rows, control.clone(), types)),
        control,
        vec![held],
    )))
}

/// Every row of a small `SELECT LAST` as a table of TEXT columns.
fn at_once_table(mut rows: LastRows, names: Vec<String>) -> Result<Output> {
    let mut times = Vec::new();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    while let Some((time, row)) = rows.next_row()? {
        times.push(time);
        for (column, cell) in cells.iter_mut().zip(row) {
            column.push(render(&cell));
        }
    }
    Ok(Output::Table(Table {
        names,
        n_rows: times.len(),
        columns: cells.into_iter().map(Column::text).collect(),
        times: Some(times),
    }))
}

/// The series of a `SELECT LAST`, each once, in path order (descending for `ORDER BY TIME DESC`).
fn last_series(schema: &Schema, select: &Select) -> Result<Vec<SeriesInfo>> {
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for item in &select.items {
        let item_path = match item {
            SelectItem::Wildcard => star(),
            SelectItem::Path { path, .. } => path.clone(),
            SelectItem::Aggregate { .. } | SelectItem::CountIf { .. } => {
                return Err(EngineError::Semantic(
                    "SELECT LAST takes series, not aggregations".into(),
                ))
            }
        };
        for s in resolve_item(schema, &select.from, &item_path) {
            resolution_step();
            if seen.insert(s.path.clone()) {
                series.push(s);
            }
        }
    }
    series.sort_by(|a, b| {
        resolution_step();
        a.path.cmp(&b.path)
    });
    if select.order_by_time_desc {
        series.reverse();
    }
    Ok(series)
}

/// The rows of a `SELECT LAST`: one per series that has a visible point in the range.
struct LastRows {
    engine: EngineRef,
    control: QueryControlRef,
    series: Vec<SeriesInfo>,
    next: usize,
    lo: i64,
    hi: i64,
}

impl RowSource for LastRows {
    fn next_row(&mut self) -> Result<Option<Row>> {
        while let Some(s) = self.series.get(self.next) {
            self.next += 1;
            if self.next.is_multiple_of(256) {
                self.control.check()?;
            }
            let lo = match self.engine.ttl_floor(&s.device, self.control.started_ms()) {
                Some(floor) => self.lo.max(floor),
                None => self.lo,
            };
            if let Some((t, values)) = columnar::last_point(&self.engine, s, lo, self.hi)? {
                let value = Column {
                    data_type: s.data_type,
                    ..values
                }
                .render(0);
                return Ok(Some((
                    t,
                    vec![
                        Val::Str(s.path.clone()),
                        Val::Str(value),
                        Val::Str(s.data_type.name().to_string()),
                    ],
                )));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::query::testing::{schema, select, TestDb};

    #[test]
    fn last_takes_each_series_once_in_path_order_or_reversed() {
        let schema = schema(&[
            ("root.sg.d2", &[("s1", DataType::Int64)]),
            (
                "root.sg.d1",
                &[("s1", DataType::Int64), ("s2", DataType::Text)],
            ),
        ]);
        let paths = |sql: &str| -> Vec<String> {
            last_series(&schema, &select(sql))
                .unwrap()
                .into_iter()
                .map(|s| s.path)
                .collect()
        };
        assert_eq!(
            paths("SELECT LAST s1, *, d1.s1 FROM root.sg.*, root.sg"),
            ["root.sg.d1.s1", "root.sg.d1.s2", "root.sg.d2.s1"]
        );
        assert_eq!(
            paths("SELECT LAST s1 FROM root.sg.* ORDER BY TIME DESC"),
            ["root.sg.d2.s1", "root.sg.d1.s1"]
        );
        let mut aggregate = select("SELECT count(s1) FROM root.sg.d1");
        aggregate.last = true;
        assert!(last_series(&schema, &aggregate).is_err());
    }

    #[test]
    fn last_rows_show_the_newest_point_within_the_range() {
        let db = TestDb::open();
        db.run(
            "INSERT INTO root.sg.d1(time, s1, s2) VALUES (1, 10, 'a'), (5, 50, 'b');
             INSERT INTO root.sg.d2(time, s1) VALUES (3, 30);
             CREATE TIMESERIES root.sg.d3.s1 INT64",
        );
        let (names, rows) = db.query("SELECT LAST * FROM root.sg.*");
        assert_eq!(names, ["Timeseries", "Value", "DataType"]);
        assert_eq!(
            rows,
            [
                ["5", "root.sg.d1.s1", "50", "INT64"],
                ["5", "root.sg.d1.s2", "b", "TEXT"],
                ["3", "root.sg.d2.s1", "30", "INT64"],
            ]
        );
        // A range that ends before the newest point: the newest one within it.
        let (_, rows) = db.query("SELECT LAST s1 FROM root.sg.d1 WHERE time < 5");
        assert_eq!(rows, [["1", "root.sg.d1.s1", "10", "INT64"]]);
    }

    #[test]
    fn a_small_last_is_one_table_and_a_large_one_streams_the_same_rows() {
        let db = TestDb::open();
        let inserts: String = (0..LAST_AT_ONCE + 6)
            .map(|d| {
                format!(
                    "INSERT INTO root.sg.d{d:03}(time, s1) VALUES ({d}, {});\n",
                    d * 10
                )
            })
            .collect();
        db.run(&inserts);
        let small = "SELECT LAST s1 FROM root.sg.d00*";
        assert!(matches!(db.try_query(small).unwrap(), Output::Table(_)));
        let (_, rows) = db.query(small);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[9], ["9", "root.sg.d009.s1", "90", "INT64"]);
        let all = "SELECT LAST s1 FROM root.sg.*";
        assert!(matches!(db.try_query(all).unwrap(), Output::Stream(_)));
        let (_, rows) = db.query(all);
        assert_eq!(rows.len(), LAST_AT_ONCE + 6);
        assert!(rows.iter().enumerate().all(|(d, row)| row
            == &[
                d.to_string(),
                format!("root.sg.d{d:03}.s1"),
                (d * 10).to_string(),
                "INT64".to_string()
            ]));
    }
}
