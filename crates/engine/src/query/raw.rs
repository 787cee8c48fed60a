//! Raw data aligned by time: the selected series and the series a value predicate reads, each output
//! column reading its series' values, planned as one part (cursors + feeds) that
//! [`RawColumns`](super::raw_columns::RawColumns) merges into pages. ALIGN BY DEVICE plans a part per
//! device ([`RawParts`]).

use std::collections::HashMap;

use duet_parser::{Select, SelectItem};

use super::plan::{column_window, resolve_item, series_bytes, star, value_predicate};
use super::raw_columns::RawColumns;
use super::scan::{AlignedRows, ScanBudget};
use super::shape::shaped;
use super::EngineRef;
use crate::engine::{Output, QueryStream, SessionContext};
use crate::limits::QueryControlRef;
use crate::schema::{resolution_step, SeriesInfo};
use crate::{EngineError, Result};

/// Raw series of ALIGN BY TIME: a Time column and one column per selected series, in item order and
/// each item's matches in path order.
pub(super) fn raw_by_time(
    engine: &EngineRef,
    ctx: &SessionContext,
    select: &Select,
    (lo, hi): (i64, i64),
    control: QueryControlRef,
) -> Result<Output> {
    // Resolve the output series in item order, each item's matches in path order.
    let mut outputs: Vec<(String, SeriesInfo)> = Vec::new();
    {
        let schema = engine.schema_read()?;
        for item in &select.items {
            let (item_path, alias) = match item {
                SelectItem::Wildcard => (star(), None),
                SelectItem::Path { path, alias } => (path.clone(), alias.clone()),
                // Aggregate queries were routed to `by_time` before.
                SelectItem::Aggregate { .. } | SelectItem::CountIf { .. } => {
                    return Err(EngineError::Semantic(
                        "Raw data and aggregation hybrid query is not supported.".into(),
                    ))
                }
            };
            let matched = resolve_item(&schema, &select.from, &item_path);
            if alias.is_some() && matched.len() > 1 {
                return Err(EngineError::Semantic(format!(
                    "alias '{}' can only be matched with one time series",
                    alias.unwrap_or_default()
                )));
            }
            for s in matched {
                let name = alias.clone().unwrap_or_else(|| s.path.clone());
                outputs.push((name, s));
            }
        }
    }
    // SLIMIT / SOFFSET choose columns.
    let (soffset, slimit) = column_window(select);
    let outputs: Vec<_> = outputs.into_iter().skip(soffset).take(slimit).collect();
    let listed: usize = outputs
        .iter()
        .map(|(name, s)| name.len() + 2 * series_bytes(s))
        .sum();
    let held = control.reserve(listed, "the list of selected series")?;
    // Cursor list: distinct output series first (moved out of the outputs), then predicate-only
    // series; per output column its cursor, name and type.
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut column_cursor = Vec::with_capacity(outputs.len());
    let mut names = Vec::with_capacity(outputs.len());
    let mut types = Vec::with_capacity(outputs.len());
    for (name, s) in outputs {
        names.push(name);
        types.push(s.data_type);
        resolution_step();
        column_cursor.push(match index.get(&s.path) {
            Some(i) => *i,
            None => {
                index.insert(s.path.clone(), series.len());
                series.push(s);
                series.len() - 1
            }
        });
    }
    let n_output_series = series.len();
    let predicate = value_predicate(engine, ctx, select, &mut series, &mut index)?;
    drop(index);
    let rows = AlignedRows::new(
        &series,
        n_output_series,
        lo,
        hi,
        select.order_by_time_desc,
        predicate,
        &ScanBudget::new(&control, series.len()),
    )?;
    let paging = (select.offset.unwrap_or(0), select.limit);
    // FILL sees every row; OFFSET and LIMIT then count the filled ones (`shaped`).
    let source_paging = if select.fill.is_none() {
        paging
    } else {
        (0, None)
    };
    // Output columns read the cursor of their series (a series selected twice feeds two columns).
    let part = RawPart {
        device: None,
        rows,
        feeds: column_cursor.into_iter().map(Some).collect(),
    };
    let source = Box::new(RawColumns::new(
        engine.clone(),
        Box::new(Some(part)),
        types.clone(),
        source_paging,
        control.clone(),
    ));
    let source = shaped(
        engine, ctx, select, source, &control, &types, None, false, paging,
    )?;
    Ok(Output::Stream(QueryStream::new(
        names,
        types,
        true,
        source,
        control,
        vec![held],
    )))
}

/// One block of raw rows: a whole query, or one device of ALIGN BY DEVICE.
pub(super) struct RawPart {
    /// The Device column's value (ALIGN BY DEVICE).
    pub(super) device: Option<String>,
    pub(super) rows: AlignedRows,
    /// Per value column: the cursor whose values it shows, or `None` (a null).
    pub(super) feeds: Vec<Option<usize>>,
}

/// Produces the parts of a raw query in order, building each only when it is reached.
pub(super) trait RawParts: Send + Sync {
    fn next_part(&mut self) -> Result<Option<RawPart>>;
}

impl RawParts for Option<RawPart> {
    fn next_part(&mut self) -> Result<Option<RawPart>> {
        Ok(self.take())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::query::testing::TestDb;

    fn db() -> TestDb {
        TestDb::with(
            "INSERT INTO root.sg.d1(time, s1, s2) VALUES (1, 10, 1.5), (2, 20, 2.5), (3, 30, 3.5), (5, 50, 5.5);
             INSERT INTO root.sg.d2(time, s1) VALUES (2, 200), (4, 400)",
        )
    }

    #[test]
    fn rows_align_series_by_time_in_item_then_path_order() {
        let db = db();
        let (names, rows) = db.query("SELECT s1, d1.s2 FROM root.sg.*, root.sg");
        assert_eq!(names, ["root.sg.d1.s1", "root.sg.d2.s1", "root.sg.d1.s2"]);
        let texts: Vec<String> = rows.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            texts,
            [
                "1 10 null 1.5",
                "2 20 200 2.5",
                "3 30 null 3.5",
                "4 null 400 null",
                "5 50 null 5.5"
            ]
        );
    }

    #[test]
    fn a_series_selected_twice_feeds_two_columns_and_paging_counts_rows() {
        let db = db();
        let (names, rows) = db.query(
            "SELECT s1, s1 AS again FROM root.sg.d1 WHERE s2 > 2 ORDER BY TIME DESC LIMIT 2 OFFSET 1",
        );
        assert_eq!(names, ["root.sg.d1.s1", "again"]);
        assert_eq!(rows, [["3", "30", "30"], ["2", "20", "20"]]);
        let (names, _) = db.query("SELECT * FROM root.sg.d1 SLIMIT 1 SOFFSET 1");
        assert_eq!(names, ["root.sg.d1.s2"]);
    }

    #[test]
    fn an_alias_names_one_series_and_where_names_one_series() {
        let db = db();
        assert!(db
            .error("SELECT s1 AS x FROM root.sg.*")
            .contains("can only be matched with one time series"));
        assert!(db
            .error("SELECT s2 FROM root.sg.* WHERE s1 > 0")
            .contains("matches 2 series"));
    }
}
