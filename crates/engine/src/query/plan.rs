//! Planning shared by every query shape: which series the SELECT list and the WHERE clause name
//! (resolved against the FROM paths in path order), what their list costs the budget, which columns
//! SLIMIT/SOFFSET keep, and IoTDB's checks of clauses against each other before anything is read.

use std::collections::{HashMap, HashSet};

use duet_parser::{Expr, FillMethod, Path, PathNode, Select, SelectItem};

use super::bounds::is_time_range;
use super::expr::{bind, Bound};
use crate::engine::SessionContext;
use crate::schema::{resolution_step, Schema, SeriesInfo};
use crate::{Engine, EngineError, Result};

/// Bytes a resolved series takes in memory, charged while a query holds its series list.
pub(super) fn series_bytes(s: &SeriesInfo) -> usize {
    std::mem::size_of::<SeriesInfo>()
        + s.path.len()
        + s.device.len()
        + s.measurement.len()
        + s.database.len()
        + s.encoding.len()
        + s.compressor.len()
}

/// The full pattern of a select item under a FROM path.
fn join_pattern(from: &Path, item: &Path) -> Vec<PathNode> {
    let mut nodes = from.0.clone();
    nodes.extend(item.0.iter().cloned());
    nodes
}

/// `*`: what `SELECT *` selects under each FROM path.
pub(super) fn star() -> Path {
    Path(vec![PathNode::One])
}

/// Whether a SELECT item is an aggregation.
pub(super) fn is_aggregate(item: &SelectItem) -> bool {
    matches!(
        item,
        SelectItem::Aggregate { .. } | SelectItem::CountIf { .. }
    )
}

/// The output columns SOFFSET and SLIMIT keep: skip this many, then take at most that many.
pub(super) fn column_window(select: &Select) -> (usize, usize) {
    let soffset = usize::try_from(select.soffset.unwrap_or(0)).unwrap_or(usize::MAX);
    let slimit = select
        .slimit
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    (soffset, slimit)
}

/// Every series matching `item` under any of the FROM paths, each once, in path order.
pub(super) fn resolve_item(schema: &Schema, from: &[Path], item: &Path) -> Vec<SeriesInfo> {
    let mut matched: Vec<SeriesInfo> = Vec::new();
    if let [only] = from {
        // One pattern matches each series at most once.
        matched = schema.matching_series(&join_pattern(only, item));
    } else {
        let mut seen: HashSet<String> = HashSet::new();
        for f in from {
            for s in schema.matching_series(&join_pattern(f, item)) {
                resolution_step();
                if seen.insert(s.path.clone()) {
                    matched.push(s);
                }
            }
        }
    }
    matched.sort_by(|a, b| {
        resolution_step();
        a.path.cmp(&b.path)
    });
    matched
}

/// Resolves a WHERE path against the FROM paths to exactly one series among `known` (adding it when
/// new; `index` maps the paths of `known` to their positions).
pub(super) fn resolve_series(
    engine: &Engine,
    from: &[Path],
    p: &Path,
    known: &mut Vec<SeriesInfo>,
    index: &mut HashMap<String, usize>,
) -> Result<usize> {
    let found = resolve_item(&*engine.schema_read()?, from, p);
    place_one(found, p, known, index)
}

/// The WHERE clause of `select` as a predicate over `known` (adding the series it names), or `None`
/// when it is only a time range, which the scan's bounds stand for.
pub(super) fn value_predicate(
    engine: &Engine,
    ctx: &SessionContext,
    select: &Select,
    known: &mut Vec<SeriesInfo>,
    index: &mut HashMap<String, usize>,
) -> Result<Option<Bound>> {
    Ok(match &select.condition {
        Some(c) if !is_time_range(engine, ctx, c)? => Some(bind(engine, ctx, c, &mut |p| {
            resolve_series(engine, &select.from, p, known, index)
        })?),
        _ => None,
    })
}

/// The position among `known` of the one series a WHERE path `p` found (added when new).
fn place_one(
    mut found: Vec<SeriesInfo>,
    p: &Path,
    known: &mut Vec<SeriesInfo>,
    index: &mut HashMap<String, usize>,
) -> Result<usize> {
    match found.len() {
        0 => Err(EngineError::Semantic(format!(
            "the path {p} in the WHERE clause matches no series"
        ))),
        1 => {
            let s = found.remove(0);
            resolution_step();
            if let Some(i) = index.get(&s.path) {
                return Ok(*i);
            }
            index.insert(s.path.clone(), known.len());
            known.push(s);
            Ok(known.len() - 1)
        }
        _ => Err(EngineError::Semantic(format!(
            "the path {p} in the WHERE clause matches {} series; name one series",
            found.len()
        ))),
    }
}

/// Checks the SELECT list against GROUP BY and routes nothing yet: aggregations and raw series may
/// not be mixed, and GROUP BY needs aggregations. Returns whether the query aggregates.
pub(super) fn check_items(select: &Select) -> Result<bool> {
    let has_agg = select.items.iter().any(is_aggregate);
    let has_raw = select.items.iter().any(|i| !is_aggregate(i));
    if has_agg && has_raw {
        return Err(EngineError::Semantic(
            "Raw data and aggregation hybrid query is not supported.".into(),
        ));
    }
    if select.group_by.is_some() && !has_agg {
        return Err(EngineError::Semantic(
            "GROUP BY requires aggregation functions in the SELECT list".into(),
        ));
    }
    check_clauses(select, has_agg)?;
    if select.from.is_empty() {
        return Err(EngineError::Semantic("a FROM clause is required".into()));
    }
    Ok(has_agg)
}

/// IoTDB's checks of HAVING, GROUP BY LEVEL and FILL against the rest of the query.
fn check_clauses(select: &Select, has_agg: bool) -> Result<()> {
    let semantic = |message: &str| Err(EngineError::Semantic(message.into()));
    if select.group_by_level.is_some() {
        if !has_agg {
            return semantic(
                "Common queries and aggregated queries are not allowed to appear at the same time",
            );
        }
        if select.align_by_device {
            return semantic("GROUP BY LEVEL does not support align by device now.");
        }
    }
    if let Some(having) = &select.having {
        let (mut raw, mut aggregates) = (false, Vec::new());
        having_references(having, &mut raw, &mut aggregates);
        if raw && !aggregates.is_empty() {
            return semantic("Raw data and aggregation result hybrid calculation is not supported");
        }
        if aggregates.is_empty() {
            return semantic("Expression of HAVING clause must to be an Aggregation");
        }
        if !has_agg {
            return semantic("Expression of HAVING clause can not be used in NonAggregationQuery");
        }
        let one_node = |p: &Path| matches!(p.0.as_slice(), [PathNode::Name(_) | PathNode::One]);
        let item_paths = select.items.iter().filter_map(|item| match item {
            SelectItem::Aggregate { path, .. } => Some(path),
            _ => None,
        });
        let all_one_node = item_paths.chain(aggregates.iter().copied()).all(one_node);
        if select.group_by_level.is_some() && !all_one_node {
            return semantic(
                "When Having used with GroupByLevel: the suffix paths can only be measurement or one-level wildcard",
            );
        }
    }
    if let Some(fill) = &select.fill {
        if fill.bound.is_some() && fill.method != FillMethod::Previous {
            return semantic("Only FILL(PREVIOUS) support specifying the time duration threshold.");
        }
    }
    if select.last
        && (select.fill.is_some() || select.having.is_some() || select.group_by_level.is_some())
    {
        return semantic("SELECT LAST does not support FILL, HAVING or GROUP BY LEVEL");
    }
    Ok(())
}

/// Whether `expr` names a series outside an aggregate (`raw`), and the paths of its aggregates.
fn having_references<'a>(expr: &'a Expr, raw: &mut bool, aggregates: &mut Vec<&'a Path>) {
    let mut walk = |e: &'a Expr| having_references(e, raw, aggregates);
    match expr {
        Expr::Path(_) => *raw = true,
        Expr::Aggregate { path, .. } => aggregates.push(path),
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } | Expr::Like { expr, .. } => {
            walk(expr)
        }
        Expr::Binary { left, right, .. } => {
            walk(left);
            walk(right);
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            walk(expr);
            walk(low);
            walk(high);
        }
        Expr::InList { expr, list, .. } => {
            walk(expr);
            list.iter().for_each(walk);
        }
        Expr::Time | Expr::Literal(_) | Expr::DateTime(_) | Expr::Now | Expr::Duration(_) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::query::testing::{schema, select};
    use duet_proto::types::DataType;

    fn paths(series: &[SeriesInfo]) -> Vec<&str> {
        series.iter().map(|s| s.path.as_str()).collect()
    }

    fn path(text: &str) -> Path {
        duet_parser::parse_path(text).unwrap()
    }

    #[test]
    fn items_resolve_under_every_from_path_once_in_path_order() {
        let schema = schema(&[
            ("root.sg.d2", &[("s1", DataType::Int64)]),
            (
                "root.sg.d1",
                &[("s1", DataType::Int64), ("s2", DataType::Double)],
            ),
            ("root.other.d1", &[("s1", DataType::Int64)]),
        ]);
        let s1 = Path(vec![PathNode::Name("s1".into())]);
        // Two FROM paths that overlap: root.sg.d1.s1 once, and the list in path order.
        let from = [path("root.sg.*"), path("root.sg.d1"), path("root.other.d1")];
        assert_eq!(
            paths(&resolve_item(&schema, &from, &s1)),
            ["root.other.d1.s1", "root.sg.d1.s1", "root.sg.d2.s1"]
        );
        assert_eq!(
            paths(&resolve_item(&schema, &[path("root.sg.d1")], &star())),
            ["root.sg.d1.s1", "root.sg.d1.s2"]
        );
        assert!(resolve_item(&schema, &[path("root.none")], &star()).is_empty());
    }

    #[test]
    fn a_where_path_names_exactly_one_series_and_is_placed_once() {
        let schema = schema(&[(
            "root.sg.d1",
            &[("s1", DataType::Int64), ("s2", DataType::Int64)],
        )]);
        let from = [path("root.sg.d1")];
        let mut known = resolve_item(&schema, &from, &Path(vec![PathNode::Name("s1".into())]));
        let mut index: HashMap<String, usize> = HashMap::from([("root.sg.d1.s1".into(), 0)]);
        let mut place = |p: &str, known: &mut Vec<SeriesInfo>| {
            let p = Path(vec![PathNode::Name(p.into())]);
            place_one(resolve_item(&schema, &from, &p), &p, known, &mut index)
        };
        // Already known: its position; new: appended.
        assert_eq!(place("s1", &mut known).unwrap(), 0);
        assert_eq!(place("s2", &mut known).unwrap(), 1);
        assert_eq!(place("s2", &mut known).unwrap(), 1);
        assert_eq!(known.len(), 2);
        let none = place("s9", &mut known).unwrap_err().to_string();
        assert!(none.contains("matches no series"), "{none}");
        let star = Path(vec![PathNode::One]);
        let two = place_one(
            resolve_item(&schema, &from, &star),
            &star,
            &mut known,
            &mut HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(two.contains("matches 2 series"), "{two}");
    }

    #[test]
    fn slimit_and_soffset_choose_a_window_of_columns() {
        assert_eq!(
            column_window(&select("SELECT * FROM root.sg.d1")),
            (0, usize::MAX)
        );
        assert_eq!(
            column_window(&select("SELECT * FROM root.sg.d1 SLIMIT 2 SOFFSET 3")),
            (3, 2)
        );
    }

    fn refused(sql: &str) -> String {
        check_items(&select(sql)).unwrap_err().to_string()
    }

    #[test]
    fn clauses_are_checked_against_each_other_as_iotdb_does() {
        assert!(check_items(&select("SELECT s1 FROM root.sg.d1")).is_ok_and(|agg| !agg));
        assert!(check_items(&select("SELECT count(s1) FROM root.sg.d1")).is_ok_and(|agg| agg));
        assert!(refused("SELECT s1, count(s1) FROM root.sg.d1").contains("hybrid query"));
        assert!(refused("SELECT s1 FROM root.sg.d1 GROUP BY ([0, 10), 1ms)")
            .contains("GROUP BY requires aggregation"));
        assert!(refused("SELECT s1 FROM root.sg.d1 GROUP BY LEVEL = 1")
            .contains("not allowed to appear at the same time"));
        assert!(refused("SELECT count(s1) FROM root.sg.d1 HAVING s1 > 1")
            .contains("must to be an Aggregation"));
        assert!(
            refused("SELECT count(s1) FROM root.sg.d1 HAVING count(s1) > s1")
                .contains("hybrid calculation")
        );
        assert!(refused("SELECT s1 FROM root.sg.d1 HAVING count(s1) > 1")
            .contains("NonAggregationQuery"));
        assert!(refused(
            "SELECT count(d1.s1) FROM root.sg GROUP BY LEVEL = 1 HAVING count(d1.s1) > 1"
        )
        .contains("one-level wildcard"));
        assert!(
            refused("SELECT s1 FROM root.sg.d1 FILL(LINEAR, 1ms)").contains("Only FILL(PREVIOUS)")
        );
        assert!(refused("SELECT LAST s1 FROM root.sg.d1 FILL(PREVIOUS)")
            .contains("SELECT LAST does not support"));
    }

    #[test]
    fn having_names_its_aggregates_and_any_raw_series() {
        let sql = "SELECT count(s1) FROM root.sg.d1 HAVING count(s1) + max_value(s2) > s3";
        let Some(having) = select(sql).having else {
            panic!("no HAVING in {sql}");
        };
        let (mut raw, mut aggregates) = (false, Vec::new());
        having_references(&having, &mut raw, &mut aggregates);
        assert!(raw);
        let names: Vec<String> = aggregates.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["s1", "s2"]);
    }
}
