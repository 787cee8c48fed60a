//! Aggregates of ALIGN BY TIME, with or without GROUP BY time windows and GROUP BY LEVEL, and
//! HAVING: the SELECT list becomes output columns, each a function over one series or (GROUP BY
//! LEVEL) over the series whose paths agree at the given levels; HAVING's aggregates are columns too,
//! hidden when not selected. The columns become one part for [`AggSource`], which pages windows.

use std::collections::HashMap;

use duet_parser::{Expr, Keep, Path, PathNode, Select, SelectItem};
use duet_proto::types::DataType;

use super::aggregate::{AggColumn, AggFn, AggPart, AggSource};
use super::count_if::{self, CountIfSpec};
use super::expr::{bind, bind_with, Reference};
use super::level::level_path;
use super::plan::{column_window, resolve_item, series_bytes, value_predicate};
use super::shape::shaped;
use super::windows::Windows;
use super::EngineRef;
use crate::engine::{Output, QueryStream, SessionContext};
use crate::limits::QueryControlRef;
use crate::schema::{resolution_step, SeriesInfo};
use crate::{EngineError, Result};

/// Most columns one COUNT_IF may expand to (one per choice of series for its paths).
const MAX_COUNT_IF_COLUMNS: usize = 10_000;

/// One aggregate output column of ALIGN BY TIME: its header, function and the series it merges.
pub(super) struct TimeColumn {
    name: String,
    /// `count(root.sg.*.s1)`: what HAVING's aggregates are matched with under GROUP BY LEVEL.
    key: String,
    function: AggFn,
    /// The series it aggregates (several merged under GROUP BY LEVEL); none for COUNT_IF, whose
    /// series are its choices.
    series: Vec<SeriesInfo>,
    data_type: DataType,
    count_if: Option<CountIfColumn>,
}

/// A COUNT_IF column: the predicate (its paths in order of appearance), keep condition and null rule,
/// and the choices of one series per path it counts. Each choice has its own runs; under GROUP BY
/// LEVEL the choices whose headers agree share a column and their counts add up, as IoTDB merges
/// them.
pub(super) struct CountIfColumn {
    predicate: Expr,
    paths: Vec<Path>,
    keep: Keep,
    ignore_null: bool,
    choices: Vec<Vec<SeriesInfo>>,
}

impl CountIfColumn {
    /// Adds a choice of series (each choice once).
    fn add_choice(&mut self, choice: Vec<SeriesInfo>) {
        let same = |c: &Vec<SeriesInfo>| {
            c.len() == choice.len() && c.iter().zip(&choice).all(|(a, b)| a.path == b.path)
        };
        if !self.choices.iter().any(same) {
            self.choices.push(choice);
        }
    }
}

impl TimeColumn {
    fn new(name: String, key: String, function: AggFn, s: SeriesInfo) -> Result<TimeColumn> {
        Ok(TimeColumn {
            data_type: function.output_type(s.data_type)?,
            name,
            key,
            function,
            series: vec![s],
            count_if: None,
        })
    }

    /// Adds a series merged into this column (GROUP BY LEVEL); its result type must agree.
    fn merge(&mut self, s: SeriesInfo) -> Result<()> {
        let t = self.function.output_type(s.data_type)?;
        if t != self.data_type {
            return Err(EngineError::Semantic(format!(
                "GROUP BY LEVEL merges series of different data types ({}, {}) into {}; {} needs one type",
                self.data_type, t, self.key, self.function.name()
            )));
        }
        if !self.series.iter().any(|x| x.path == s.path) {
            self.series.push(s);
        }
        Ok(())
    }
}

/// Names the one column an aliased item produced; an alias for several columns is refused.
fn name_by_alias(columns: &mut [TimeColumn], touched: &[usize], alias: Option<&str>) -> Result<()> {
    let Some(alias) = alias else {
        return Ok(());
    };
    match touched {
        [] => Ok(()),
        [one] => {
            if let Some(c) = columns.get_mut(*one) {
                c.name = alias.to_string();
            }
            Ok(())
        }
        _ => Err(EngineError::Semantic(format!(
            "alias '{alias}' can only be matched with one result column"
        ))),
    }
}

/// Aggregates of ALIGN BY TIME, with or without GROUP BY time windows and GROUP BY LEVEL, and HAVING.
#[allow(clippy::too_many_arguments)]
pub(super) fn aggregate_by_time(
    engine: &EngineRef,
    ctx: &SessionContext,
    select: &Select,
    (lo, hi): (i64, i64),
    windows: Windows,
    control: QueryControlRef,
) -> Result<Output> {
    let levels = select.group_by_level.as_deref();
    let mut columns: Vec<TimeColumn> = Vec::new();
    // GROUP BY LEVEL: the column of each function and grouped path.
    let mut by_key: HashMap<String, usize> = HashMap::new();
    {
        let schema = engine.schema_read()?;
        for item in &select.items {
            if let SelectItem::CountIf {
                function,
                predicate,
                keep,
                ignore_null,
                alias,
            } = item
            {
                if windows.overlap() {
                    return Err(EngineError::Semantic(
                        "COUNT_IF is not supported with a sliding window in GROUP BY".into(),
                    ));
                }
                let paths = count_if::paths_of(predicate)?;
                let matches: Vec<Vec<SeriesInfo>> = paths
                    .iter()
                    .map(|p| resolve_item(&schema, &select.from, p))
                    .collect();
                let chosen = count_if::combinations(&matches, MAX_COUNT_IF_COLUMNS)?;
                if levels.is_none() && alias.is_some() && chosen.len() > 1 {
                    return Err(EngineError::Semantic(format!(
                        "alias '{}' can only be matched with one time series",
                        alias.clone().unwrap_or_default()
                    )));
                }
                let mut touched: Vec<usize> = Vec::new();
                for choice in chosen {
                    resolution_step();
                    let shown: Vec<String> = choice
                        .iter()
                        .map(|s| match levels {
                            Some(levels) => level_path(&s.path, levels, false),
                            None => s.path.clone(),
                        })
                        .collect();
                    let key =
                        count_if::header(function, predicate, &paths, &shown, *keep, *ignore_null);
                    // GROUP BY LEVEL: choices with one header share its column.
                    let merged = levels.and_then(|_| by_key.get(&key).copied());
                    let index = match merged {
                        Some(i) => {
                            if let Some(c) = &mut columns[i].count_if {
                                c.add_choice(choice);
                            }
                            i
                        }
                        None => {
                            if levels.is_some() {
                                by_key.insert(key.clone(), columns.len());
                            }
                            columns.push(TimeColumn {
                                name: key.clone(),
                                key,
                                function: AggFn::CountIf,
                                series: Vec::new(),
                                data_type: DataType::Int64,
                                count_if: Some(CountIfColumn {
                                    predicate: predicate.clone(),
                                    paths: paths.clone(),
                                    keep: *keep,
                                    ignore_null: ignore_null.unwrap_or(true),
                                    choices: vec![choice],
                                }),
                            });
                            columns.len() - 1
                        }
                    };
                    if !touched.contains(&index) {
                        touched.push(index);
                    }
                }
                name_by_alias(&mut columns, &touched, alias.as_deref())?;
                continue;
            }
            let SelectItem::Aggregate {
                function,
                path,
                alias,
            } = item
            else {
                continue;
            };
            let f = AggFn::parse(function)?;
            let matched = resolve_item(&schema, &select.from, path);
            let Some(levels) = levels else {
                if alias.is_some() && matched.len() > 1 {
                    return Err(EngineError::Semantic(format!(
                        "alias '{}' can only be matched with one time series",
                        alias.clone().unwrap_or_default()
                    )));
                }
                for s in matched {
                    let key = format!("{}({})", f.name(), s.path);
                    // The header echoes the function as written, as IoTDB's does.
                    let name = alias
                        .clone()
                        .unwrap_or_else(|| format!("{function}({})", s.path));
                    columns.push(TimeColumn::new(name, key, f, s)?);
                }
                continue;
            };
            let count_star = f == AggFn::Count && path.0 == [PathNode::One];
            let mut touched: Vec<usize> = Vec::new();
            for s in matched {
                resolution_step();
                let shown = level_path(&s.path, levels, count_star);
                let key = format!("{}({shown})", f.name());
                let index = match by_key.get(&key) {
                    Some(i) => {
                        columns[*i].merge(s)?;
                        *i
                    }
                    None => {
                        by_key.insert(key.clone(), columns.len());
                        let name = format!("{function}({shown})");
                        columns.push(TimeColumn::new(name, key, f, s)?);
                        columns.len() - 1
                    }
                };
                if !touched.contains(&index) {
                    touched.push(index);
                }
            }
            name_by_alias(&mut columns, &touched, alias.as_deref())?;
        }
    }
    // SLIMIT / SOFFSET choose columns (after GROUP BY LEVEL merged them).
    let (soffset, slimit) = column_window(select);
    let mut columns: Vec<TimeColumn> = columns.into_iter().skip(soffset).take(slimit).collect();
    let n_visible = columns.len();
    // HAVING's aggregates: a visible column, or a hidden one computed for HAVING only.
    let having = match &select.having {
        Some(having) => {
            let schema = engine.schema_read()?;
            Some(bind_with(engine, ctx, having, &mut |reference| {
                let Reference::Aggregate(function, path) = reference else {
                    return Err(EngineError::Semantic(
                        "Raw data and aggregation result hybrid calculation is not supported"
                            .into(),
                    ));
                };
                let f = AggFn::parse(function)?;
                let matched = resolve_item(&schema, &select.from, path);
                let count_star = f == AggFn::Count && path.0 == [PathNode::One];
                let mut keys: Vec<String> = Vec::new();
                for s in &matched {
                    let shown = match levels {
                        Some(levels) => level_path(&s.path, levels, count_star),
                        None => s.path.clone(),
                    };
                    let key = format!("{}({shown})", f.name());
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                let [key] = keys.as_slice() else {
                    return Err(EngineError::Semantic(format!(
                        "the aggregate {function}({path}) in the HAVING clause matches {} result columns; it must match one",
                        keys.len()
                    )));
                };
                if let Some(i) = columns.iter().position(|c| c.key == *key) {
                    return Ok(i);
                }
                let mut hidden: Option<TimeColumn> = None;
                for s in matched {
                    match &mut hidden {
                        Some(c) => c.merge(s)?,
                        None => hidden = Some(TimeColumn::new(key.clone(), key.clone(), f, s)?),
                    }
                }
                columns.extend(hidden);
                Ok(columns.len() - 1)
            })?)
        }
        None => None,
    };
    let listed: usize = columns
        .iter()
        .map(|c| {
            let choices = c.count_if.iter().flat_map(|ci| ci.choices.iter().flatten());
            2 * c.name.len()
                + c.series
                    .iter()
                    .chain(choices)
                    .map(|s| 2 * series_bytes(s))
                    .sum::<usize>()
        })
        .sum();
    let held = control.reserve(listed, "the list of selected series")?;
    // Cursors: the distinct aggregated series, then predicate-only series.
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut part_columns = Vec::with_capacity(columns.len());
    let mut names = Vec::with_capacity(n_visible);
    let mut types = Vec::with_capacity(columns.len());
    for (i, c) in columns.into_iter().enumerate() {
        if i < n_visible {
            names.push(c.name);
        }
        types.push(c.data_type);
        let mut place = |s: SeriesInfo| {
            resolution_step();
            match index.get(&s.path) {
                Some(i) => *i,
                None => {
                    index.insert(s.path.clone(), series.len());
                    series.push(s);
                    series.len() - 1
                }
            }
        };
        let mut cursors: Vec<usize> = c.series.into_iter().map(&mut place).collect();
        let mut count_if = Vec::new();
        if let Some(ci) = c.count_if {
            for choice in ci.choices {
                let inputs: Vec<usize> = choice.into_iter().map(&mut place).collect();
                let predicate = bind(engine, ctx, &ci.predicate, &mut |p| {
                    ci.paths
                        .iter()
                        .position(|q| q == p)
                        .and_then(|i| inputs.get(i).copied())
                        .ok_or_else(|| {
                            EngineError::Semantic(format!("COUNT_IF's path {p} matches no series"))
                        })
                })?;
                cursors.extend(
                    inputs
                        .iter()
                        .filter(|i| !cursors.contains(i))
                        .collect::<Vec<_>>(),
                );
                count_if.push(CountIfSpec {
                    predicate,
                    inputs,
                    keep: ci.keep,
                    ignore_null: ci.ignore_null,
                });
            }
        }
        part_columns.push(Some(AggColumn {
            series: cursors,
            function: c.function,
            count_if,
        }));
    }
    let n_output_series = series.len();
    let predicate = value_predicate(engine, ctx, select, &mut series, &mut index)?;
    drop(index);
    let part = AggPart {
        device: None,
        n_outputs: n_output_series,
        predicate,
        columns: part_columns,
        series,
    };
    let paging = (select.offset.unwrap_or(0), select.limit);
    let shape = select.fill.is_some() || having.is_some();
    let source = AggSource::new(
        engine.clone(),
        control.clone(),
        windows,
        (lo, hi),
        select.order_by_time_desc,
        Box::new(Some(part)),
        types.clone(),
        if shape { (0, None) } else { paging },
    );
    types.truncate(n_visible);
    let source = shaped(
        engine,
        ctx,
        select,
        Box::new(source),
        &control,
        &types,
        having,
        false,
        paging,
    )?;
    Ok(Output::Stream(QueryStream::new(
        names,
        types,
        select.group_by.is_some(),
        source,
        control,
        vec![held],
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::query::testing::{schema, TestDb};

    fn series(path: &str, data_type: DataType) -> SeriesInfo {
        let s = schema(&[(
            path.rsplit_once('.').unwrap().0,
            &[(path.rsplit_once('.').unwrap().1, data_type)],
        )]);
        s.matching_series(&duet_parser::parse_path(path).unwrap().0)
            .pop()
            .unwrap()
    }

    #[test]
    fn a_level_column_merges_each_series_once_and_only_of_one_result_type() {
        let mut column = TimeColumn::new(
            "sum(root.sg.*.s1)".into(),
            "sum(root.sg.*.s1)".into(),
            AggFn::Sum,
            series("root.sg.d1.s1", DataType::Int64),
        )
        .unwrap();
        assert_eq!(column.data_type, DataType::Double);
        column
            .merge(series("root.sg.d2.s1", DataType::Int32))
            .unwrap();
        column
            .merge(series("root.sg.d2.s1", DataType::Int32))
            .unwrap();
        assert_eq!(column.series.len(), 2);
        // max_value keeps its input's type: INT64 and DOUBLE cannot share a column.
        let mut column = TimeColumn::new(
            "max_value(root.sg.*.s1)".into(),
            "max_value(root.sg.*.s1)".into(),
            AggFn::MaxValue,
            series("root.sg.d1.s1", DataType::Int64),
        )
        .unwrap();
        let error = column
            .merge(series("root.sg.d3.s1", DataType::Double))
            .unwrap_err()
            .to_string();
        assert!(error.contains("different data types"), "{error}");
    }

    fn db() -> TestDb {
        TestDb::with(
            "INSERT INTO root.sg.d1(time, s1, s2) VALUES (1, 1, 10), (2, 2, 20), (6, 6, 60);
             INSERT INTO root.sg.d2(time, s1) VALUES (1, 100), (7, 700)",
        )
    }

    #[test]
    fn level_columns_sum_their_series_per_window() {
        let db = db();
        let (names, rows) =
            db.query("SELECT count(s1), sum(s1) FROM root.sg.* GROUP BY ([0, 10), 5ms), LEVEL = 1");
        assert_eq!(names, ["count(root.sg.*.s1)", "sum(root.sg.*.s1)"]);
        assert_eq!(rows, [["0", "3", "103.0"], ["5", "2", "706.0"]]);
        // count(*) merges the measurements too.
        let (names, rows) = db.query("SELECT count(*) FROM root.sg.* GROUP BY LEVEL = 1");
        assert_eq!(names, ["count(root.sg.*.*)"]);
        assert_eq!(rows, [["8"]]);
    }

    #[test]
    fn having_reads_hidden_columns_and_slimit_picks_visible_ones() {
        let db = db();
        let (names, rows) = db
            .query("SELECT count(s1) FROM root.sg.d1 GROUP BY ([0, 10), 5ms) HAVING sum(s2) > 50");
        assert_eq!(names, ["count(root.sg.d1.s1)"]);
        assert_eq!(rows, [["5", "1"]]);
        let (names, _) = db.query("SELECT count(s1), count(s2) FROM root.sg.d1 SLIMIT 1 SOFFSET 1");
        assert_eq!(names, ["count(root.sg.d1.s2)"]);
        let error = db.error("SELECT count(s1) AS n FROM root.sg.* GROUP BY LEVEL = 2");
        assert!(error.contains("one result column"), "{error}");
    }

    #[test]
    fn headers_echo_the_function_as_written_and_having_matches_any_spelling() {
        let db = db();
        // IoTDB's headers: `COUNT(root.view.d1.temperature)`, `AVG(...)` for `SELECT COUNT(...)`.
        let (names, _) = db.query("SELECT COUNT(s1), Avg(s2), max_value(s1) FROM root.sg.d1");
        assert_eq!(
            names,
            [
                "COUNT(root.sg.d1.s1)",
                "Avg(root.sg.d1.s2)",
                "max_value(root.sg.d1.s1)"
            ]
        );
        let (names, rows) = db.query("SELECT SUM(s1) FROM root.sg.* GROUP BY LEVEL = 1");
        assert_eq!(names, ["SUM(root.sg.*.s1)"]);
        assert_eq!(rows, [["809.0"]]);
        let (names, rows) = db
            .query("SELECT COUNT(s1) FROM root.sg.d1 GROUP BY ([0, 10), 5ms) HAVING count(s1) > 1");
        assert_eq!(names, ["COUNT(root.sg.d1.s1)"]);
        assert_eq!(rows, [["0", "2"]]);
        let (names, _) = db.query("SELECT MAX_VALUE(s1) FROM root.sg.* ALIGN BY DEVICE");
        assert_eq!(names, ["Device", "MAX_VALUE(s1)"]);
        // COUNT_IF too (IoTDB's IoTDBCountIfIT: `Count_if(root.db.d1.s1 = 0 & ..., 3)`).
        let (names, _) = db.query("SELECT Count_if(s1 > 0, 1) FROM root.sg.d1");
        assert_eq!(names, ["Count_if(root.sg.d1.s1 > 0, 1)"]);
        let (names, _) = db.query("SELECT Count_if(s1 > 0, 1) FROM root.sg.* ALIGN BY DEVICE");
        assert_eq!(names, ["Device", "Count_if(s1 > 0, 1)"]);
    }

    #[test]
    fn a_count_if_column_counts_each_choice_once() {
        let predicate = crate::query::testing::select("SELECT s1 FROM root.sg.d1 WHERE s1 = 0")
            .condition
            .unwrap();
        let mut column = CountIfColumn {
            predicate,
            paths: vec![Path(vec![PathNode::Name("s1".into())])],
            keep: Keep {
                op: None,
                threshold: 1,
            },
            ignore_null: true,
            choices: vec![vec![series("root.sg.d1.s1", DataType::Int64)]],
        };
        column.add_choice(vec![series("root.sg.d2.s1", DataType::Int64)]);
        column.add_choice(vec![series("root.sg.d1.s1", DataType::Int64)]);
        assert_eq!(column.choices.len(), 2);
    }

    #[test]
    fn count_if_under_group_by_level_adds_the_counts_of_its_choices() {
        let db = db();
        // d1: s1 = 1, 2, 6 (one run of s1 > 0 of 3 rows); d2: 100, 700 (one run of 2).
        let (names, rows) =
            db.query("SELECT count_if(s1 > 0, 2) FROM root.sg.* GROUP BY LEVEL = 1");
        assert_eq!(names, ["count_if(root.sg.*.s1 > 0, 2)"]);
        assert_eq!(rows, [["2"]]);
        let (names, rows) =
            db.query("SELECT count_if(s1 > 0, 2) FROM root.sg.* GROUP BY LEVEL = 2");
        assert_eq!(
            names,
            [
                "count_if(root.*.d1.s1 > 0, 2)",
                "count_if(root.*.d2.s1 > 0, 2)"
            ]
        );
        assert_eq!(rows, [["1", "1"]]);
    }
}
