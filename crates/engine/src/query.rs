//! `SELECT` in the tree model: raw data aligned by time (a k-way merge of per-series scans, streamed
//! page by page), aggregates with and without `GROUP BY ([start, end), interval[, step])` (streamed a
//! page of windows at a time), `SELECT LAST`, and `ALIGN BY DEVICE` (one device's cursors at a time).
//! `WHERE` narrows the scanned time range from its time conjuncts and is then evaluated on every
//! aligned row (SQL's three-valued logic: a comparison with a null is unknown, and an unknown row is
//! dropped).
//!
//! Every query runs under a [`QueryControl`](crate::limits::QueryControl): its state is charged to a
//! memory budget as it is allocated, and its loops check the deadline and the cancellation flag.
//! Series are resolved in time near-linear in the number of series (ordered maps and hash sets, never
//! a scan of the list per series).
//!
//! - [`expr`]: values and `WHERE` expressions;
//! - [`page`]: pages and their encoded size;
//! - [`scan`]: series cursors and their k-way merge;
//! - [`aggregate`]: aggregation functions and windows;
//! - [`fill`]: `FILL` over result rows;
//! - [`shape`]: `HAVING`, `FILL`, `OFFSET` and `LIMIT` over a source's rows.
//!
//! `GROUP BY LEVEL` merges the accumulators of the series whose paths agree at the given levels into
//! one column per function and grouped path (`count(root.*.d1.s1)`).

mod aggregate;
mod columnar;
mod count_if;
mod expr;
mod fill;
mod mode;
mod page;
mod scan;
mod shape;

pub use page::{block_overhead, table_row_bytes, Page, PageSource};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use duet_parser::{
    BinaryOp, Expr, FillMethod, Keep, Literal, Path, PathNode, Select, SelectItem, UnaryOp,
};
use duet_proto::types::{Column, DataType};

use aggregate::{AggColumn, AggFn, AggPart, AggParts, AggSource, Windows};
use count_if::CountIfSpec;
use expr::{bind, bind_with, Bound, Reference, Val};
use fill::{time_bound, Filler};
use page::{row_bytes, PageBuilder};
use scan::{AlignedRows, ScanBudget};
use shape::Shaped;

use crate::engine::{Output, QueryStream, SessionContext};
use crate::limits::QueryControlRef;
use crate::paths;
use crate::schema::{resolution_step, Schema, SeriesInfo};
use crate::{Engine, EngineError, Result};

/// The engine reference a page source needs; sources outlive the statement call, so they hold an `Arc`.
pub type EngineRef = Arc<Engine>;

/// Most columns one COUNT_IF may expand to (one per choice of series for its paths).
const MAX_COUNT_IF_COLUMNS: usize = 10_000;

/// A time constant as `WHERE` bounds read it; `None` for an expression that is not one.
fn time_constant(engine: &Engine, ctx: &SessionContext, e: &Expr) -> Result<Option<i64>> {
    Ok(match e {
        Expr::Literal(Literal::Integer(s)) => s.parse::<i64>().ok(),
        e if e.is_date_expression() => engine.date_expression(ctx, e)?,
        Expr::Literal(Literal::String(s)) => engine.parse_datetime(ctx, s).ok(),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
        } => match expr.as_ref() {
            // In 128 bits, so that -9223372036854775808 (whose digits overflow i64) works.
            Expr::Literal(Literal::Integer(s)) => {
                s.parse::<i128>().ok().and_then(|v| i64::try_from(-v).ok())
            }
            _ => None,
        },
        _ => None,
    })
}

/// Whether the time range of `expr` ([`time_bounds`]) says all it says: a conjunction of
/// comparisons of time with constants. Such a condition is applied as the scanned range only, not
/// evaluated again on every row.
fn is_time_range(engine: &Engine, ctx: &SessionContext, expr: &Expr) -> Result<bool> {
    Ok(match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => is_time_range(engine, ctx, left)? && is_time_range(engine, ctx, right)?,
        Expr::Binary {
            left,
            op: BinaryOp::Eq | BinaryOp::Gt | BinaryOp::GtEq | BinaryOp::Lt | BinaryOp::LtEq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Time, other) | (other, Expr::Time) => {
                time_constant(engine, ctx, other)?.is_some()
            }
            _ => false,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
        } => {
            matches!(expr.as_ref(), Expr::Time)
                && time_constant(engine, ctx, low)?.is_some()
                && time_constant(engine, ctx, high)?.is_some()
        }
        _ => false,
    })
}

/// The time range `[lo, hi]` implied by the conjuncts of `expr` that compare time with a constant.
fn time_bounds(engine: &Engine, ctx: &SessionContext, expr: &Expr) -> Result<(i64, i64)> {
    let constant = |e: &Expr| time_constant(engine, ctx, e);
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => {
            let (a, b) = time_bounds(engine, ctx, left)?;
            let (c, d) = time_bounds(engine, ctx, right)?;
            lo = a.max(c);
            hi = b.min(d);
        }
        Expr::Binary { left, op, right } => {
            let (is_time_left, value) = match (left.as_ref(), right.as_ref()) {
                (Expr::Time, other) => (true, constant(other)?),
                (other, Expr::Time) => (false, constant(other)?),
                _ => (true, None),
            };
            if let Some(v) = value {
                use BinaryOp as B;
                // Normalise to "time op v".
                let op = match (op, is_time_left) {
                    (B::Lt, false) => B::Gt,
                    (B::LtEq, false) => B::GtEq,
                    (B::Gt, false) => B::Lt,
                    (B::GtEq, false) => B::LtEq,
                    (o, _) => *o,
                };
                // `time > i64::MAX` and `time < i64::MIN` hold for no time: an empty range.
                match op {
                    B::Eq => (lo, hi) = (v, v),
                    B::Gt => match v.checked_add(1) {
                        Some(x) => lo = x,
                        None => (lo, hi) = (i64::MAX, i64::MIN),
                    },
                    B::GtEq => lo = v,
                    B::Lt => match v.checked_sub(1) {
                        Some(x) => hi = x,
                        None => (lo, hi) = (i64::MAX, i64::MIN),
                    },
                    B::LtEq => hi = v,
                    _ => {}
                }
            }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
        } if matches!(expr.as_ref(), Expr::Time) => {
            if let (Some(a), Some(b)) = (constant(low)?, constant(high)?) {
                (lo, hi) = (a, b);
            }
        }
        _ => {}
    }
    Ok((lo, hi))
}

/// Whether `expr` only constrains time (so it can be applied as a range, e.g. by `DELETE`).
fn only_time(expr: &Expr) -> bool {
    match expr {
        Expr::Time | Expr::Literal(_) | Expr::DateTime(_) | Expr::Now | Expr::Duration(_) => true,
        Expr::Path(_) => false,
        Expr::Unary { expr, .. } => only_time(expr),
        Expr::Binary { left, op, right } => {
            !matches!(op, BinaryOp::Or) && only_time(left) && only_time(right)
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => !negated && only_time(expr) && only_time(low) && only_time(high),
        _ => false,
    }
}

/// `DELETE … WHERE`: the time range of a time-only condition.
pub fn time_range_only(engine: &Engine, ctx: &SessionContext, expr: &Expr) -> Result<(i64, i64)> {
    if !only_time(expr) {
        return Err(EngineError::Semantic(
            "The condition of DELETE may only be a time range, e.g. time >= 1 and time <= 10"
                .into(),
        ));
    }
    time_bounds(engine, ctx, expr)
}

/// Bytes a resolved series takes in memory, charged while a query holds its series list.
fn series_bytes(s: &SeriesInfo) -> usize {
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

fn star() -> Path {
    Path(vec![PathNode::One])
}

/// Every series matching `item` under any of the FROM paths, each once, in path order.
fn resolve_item(schema: &Schema, from: &[Path], item: &Path) -> Vec<SeriesInfo> {
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
fn resolve_series(
    engine: &Engine,
    from: &[Path],
    p: &Path,
    known: &mut Vec<SeriesInfo>,
    index: &mut HashMap<String, usize>,
) -> Result<usize> {
    let mut found = resolve_item(&*engine.schema_read()?, from, p);
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

/// Executes a SELECT under `control`: the result is a stream whose pages are computed as they are
/// fetched.
pub fn execute(
    engine: &Engine,
    ctx: &SessionContext,
    select: &Select,
    control: QueryControlRef,
) -> Result<Output> {
    let engine_ref = engine.self_ref()?;
    let is_agg =
        |i: &SelectItem| matches!(i, SelectItem::Aggregate { .. } | SelectItem::CountIf { .. });
    let has_agg = select.items.iter().any(is_agg);
    let has_raw = select.items.iter().any(|i| !is_agg(i));
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
    let (lo, hi) = match &select.condition {
        Some(c) => time_bounds(engine, ctx, c)?,
        None => (i64::MIN, i64::MAX),
    };
    // Checked before any data is read: an impossible GROUP BY fails at once.
    let windows = if has_agg {
        Some(Windows::new(engine, ctx, select.group_by.as_ref())?)
    } else {
        None
    };
    control.check()?;
    if select.last {
        return last(engine_ref, select, lo, hi, control);
    }
    if select.align_by_device {
        return by_device(engine_ref, ctx, select, lo, hi, windows, control);
    }
    if let Some(windows) = windows {
        return aggregate_by_time(engine, engine_ref, ctx, select, (lo, hi), windows, control);
    }
    // Resolve the output series in item order, each item's matches in path order.
    let mut outputs: Vec<(String, SeriesInfo, Option<AggFn>)> = Vec::new();
    {
        let schema = engine.schema_read()?;
        for item in &select.items {
            let (item_path, alias, agg) = match item {
                SelectItem::Wildcard => (star(), None, None),
                SelectItem::Path { path, alias } => (path.clone(), alias.clone(), None),
                SelectItem::Aggregate {
                    function,
                    path,
                    alias,
                } => (path.clone(), alias.clone(), Some(AggFn::parse(function)?)),
                // Aggregate queries were routed to `aggregate_by_time` above.
                SelectItem::CountIf { .. } => {
                    return Err(EngineError::Semantic(
                        "COUNT_IF is an aggregation; it cannot be mixed with raw series".into(),
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
                let name = match (&alias, agg) {
                    (Some(a), _) => a.clone(),
                    (None, Some(f)) => format!("{}({})", f.name(), s.path),
                    (None, None) => s.path.clone(),
                };
                outputs.push((name, s, agg));
            }
        }
    }
    // SLIMIT / SOFFSET choose columns.
    let soffset = usize::try_from(select.soffset.unwrap_or(0)).unwrap_or(usize::MAX);
    let slimit = select
        .slimit
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let outputs: Vec<_> = outputs.into_iter().skip(soffset).take(slimit).collect();
    let listed: usize = outputs
        .iter()
        .map(|(name, s, _)| name.len() + 2 * series_bytes(s))
        .sum();
    let held = control.reserve(listed, "the list of selected series")?;
    // Cursor list: distinct output series first (moved out of the outputs), then predicate-only
    // series; per output column its cursor, name, type and function.
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut column_cursor = Vec::with_capacity(outputs.len());
    let mut names = Vec::with_capacity(outputs.len());
    let mut data_types = Vec::with_capacity(outputs.len());
    let mut functions = Vec::with_capacity(outputs.len());
    for (name, s, f) in outputs {
        names.push(name);
        data_types.push(s.data_type);
        functions.push(f.unwrap_or(AggFn::Count));
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
    let predicate = match &select.condition {
        Some(c) if !is_time_range(engine, ctx, c)? => Some(bind(engine, ctx, c, &mut |p| {
            resolve_series(engine, &select.from, p, &mut series, &mut index)
        })?),
        _ => None,
    };
    drop(index);
    let descending = select.order_by_time_desc;
    let mut rows = AlignedRows::new(
        &series,
        n_output_series,
        lo,
        hi,
        descending,
        predicate,
        &ScanBudget::new(&control, series.len()),
    )?;
    let paging = (select.offset.unwrap_or(0), select.limit);
    if select.fill.is_none() {
        (rows.offset, rows.limit) = paging;
    }
    // Output columns read the cursor of their series (a series selected twice feeds two columns).
    let types = data_types;
    let part = RawPart {
        device: None,
        rows,
        feeds: column_cursor.into_iter().map(Some).collect(),
    };
    let source = RawSource::new(
        engine_ref,
        control.clone(),
        Box::new(Some(part)),
        types.clone(),
        (0, None),
    );
    let source = shaped(
        engine,
        ctx,
        select,
        Box::new(source),
        &control,
        &types,
        None,
        false,
        paging,
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

/// `source` under HAVING, FILL, OFFSET and LIMIT when the query has HAVING or FILL (the source then
/// pages everything, unlimited); `source` itself otherwise. Output columns are `types`; `having` is
/// bound to the source's columns, which may follow them.
#[allow(clippy::too_many_arguments)]
fn shaped(
    engine: &Engine,
    ctx: &SessionContext,
    select: &Select,
    source: Box<dyn PageSource>,
    control: &QueryControlRef,
    types: &[DataType],
    having: Option<Bound>,
    by_device: bool,
    paging: (u64, Option<u64>),
) -> Result<Box<dyn PageSource>> {
    if select.fill.is_none() && having.is_none() {
        return Ok(source);
    }
    let filler = match &select.fill {
        Some(fill) => {
            let bound = match &fill.bound {
                Some(b) => Some(time_bound(engine.precision(), &b.text, || ctx.zone())?),
                None => None,
            };
            Some(Filler::new(
                &fill.method,
                bound,
                types,
                usize::from(by_device),
            )?)
        }
        None => None,
    };
    Ok(Box::new(Shaped::new(
        source,
        control.clone(),
        types.to_vec(),
        having,
        filler,
        by_device,
        paging,
    )?))
}

/// `path` as GROUP BY LEVEL shows it: nodes other than root, the measurement and those at `levels`
/// become `*` (the measurement too for `count(*)`), e.g. `root.sg.d1.s1` at level 1 is
/// `root.sg.*.s1`.
fn level_path(path: &str, levels: &[u32], count_star: bool) -> String {
    let nodes = crate::paths::split(path);
    let last = nodes.len().saturating_sub(1);
    let mut out = String::with_capacity(path.len());
    for (k, node) in nodes.iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        let kept = k == 0
            || (k < last && u32::try_from(k).is_ok_and(|k| levels.contains(&k)))
            || (k == last && !count_star);
        if kept {
            out.push_str(&crate::paths::join(&[node]));
        } else {
            out.push('*');
        }
    }
    out
}

/// One aggregate output column of ALIGN BY TIME: its header, function and the series it merges.
struct TimeColumn {
    name: String,
    /// `count(root.sg.*.s1)`: what HAVING's aggregates are matched with under GROUP BY LEVEL.
    key: String,
    function: AggFn,
    series: Vec<SeriesInfo>,
    data_type: DataType,
    /// COUNT_IF's predicate (its paths in order of appearance, `series` the ones chosen for them),
    /// keep condition and null rule.
    count_if: Option<(Expr, Vec<Path>, Keep, bool)>,
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

/// Aggregates of ALIGN BY TIME, with or without GROUP BY time windows and GROUP BY LEVEL, and HAVING.
#[allow(clippy::too_many_arguments)]
fn aggregate_by_time(
    engine: &Engine,
    engine_ref: EngineRef,
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
                predicate,
                keep,
                ignore_null,
                alias,
            } = item
            {
                if levels.is_some() {
                    return Err(EngineError::Unsupported(
                        "COUNT_IF with GROUP BY LEVEL is not supported yet".into(),
                    ));
                }
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
                if alias.is_some() && chosen.len() > 1 {
                    return Err(EngineError::Semantic(format!(
                        "alias '{}' can only be matched with one time series",
                        alias.clone().unwrap_or_default()
                    )));
                }
                for series in chosen {
                    let key = count_if::header(predicate, &paths, &series, *keep, *ignore_null);
                    columns.push(TimeColumn {
                        name: alias.clone().unwrap_or_else(|| key.clone()),
                        key,
                        function: AggFn::CountIf,
                        series,
                        data_type: DataType::Int64,
                        count_if: Some((
                            predicate.clone(),
                            paths.clone(),
                            *keep,
                            ignore_null.unwrap_or(true),
                        )),
                    });
                }
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
                    let name = alias.clone().unwrap_or_else(|| key.clone());
                    columns.push(TimeColumn::new(name, key, f, s)?);
                }
                continue;
            };
            let count_star = f == AggFn::Count && path.0 == [PathNode::One];
            let mut touched: Vec<usize> = Vec::new();
            for s in matched {
                resolution_step();
                let key = format!("{}({})", f.name(), level_path(&s.path, levels, count_star));
                let index = match by_key.get(&key) {
                    Some(i) => {
                        columns[*i].merge(s)?;
                        *i
                    }
                    None => {
                        by_key.insert(key.clone(), columns.len());
                        columns.push(TimeColumn::new(key.clone(), key, f, s)?);
                        columns.len() - 1
                    }
                };
                if !touched.contains(&index) {
                    touched.push(index);
                }
            }
            if let Some(alias) = alias {
                match touched.as_slice() {
                    [] => {}
                    [one] => columns[*one].name = alias.clone(),
                    _ => {
                        return Err(EngineError::Semantic(format!(
                            "alias '{alias}' can only be matched with one result column"
                        )))
                    }
                }
            }
        }
    }
    // SLIMIT / SOFFSET choose columns (after GROUP BY LEVEL merged them).
    let soffset = usize::try_from(select.soffset.unwrap_or(0)).unwrap_or(usize::MAX);
    let slimit = select
        .slimit
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
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
        .map(|c| 2 * c.name.len() + c.series.iter().map(|s| 2 * series_bytes(s)).sum::<usize>())
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
        let mut cursors = Vec::with_capacity(c.series.len());
        for s in c.series {
            resolution_step();
            cursors.push(match index.get(&s.path) {
                Some(i) => *i,
                None => {
                    index.insert(s.path.clone(), series.len());
                    series.push(s);
                    series.len() - 1
                }
            });
        }
        let count_if = match c.count_if {
            Some((predicate, paths, keep, ignore_null)) => {
                let bound = bind(engine, ctx, &predicate, &mut |p| {
                    paths
                        .iter()
                        .position(|q| q == p)
                        .and_then(|i| cursors.get(i).copied())
                        .ok_or_else(|| {
                            EngineError::Semantic(format!("COUNT_IF's path {p} matches no series"))
                        })
                })?;
                Some(CountIfSpec {
                    predicate: bound,
                    inputs: cursors.clone(),
                    keep,
                    ignore_null,
                })
            }
            None => None,
        };
        part_columns.push(Some(AggColumn {
            series: cursors,
            function: c.function,
            count_if,
        }));
    }
    let n_output_series = series.len();
    let predicate = match &select.condition {
        Some(c) if !is_time_range(engine, ctx, c)? => Some(bind(engine, ctx, c, &mut |p| {
            resolve_series(engine, &select.from, p, &mut series, &mut index)
        })?),
        _ => None,
    };
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
        engine_ref,
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

/// One block of raw rows: a whole query, or one device of ALIGN BY DEVICE.
struct RawPart {
    /// The Device column's value (ALIGN BY DEVICE).
    device: Option<String>,
    rows: AlignedRows,
    /// Per value column: the cursor whose values it shows, or `None` (a null).
    feeds: Vec<Option<usize>>,
}

/// Produces the parts of a raw query in order, building each only when it is reached.
trait RawParts: Send + Sync {
    fn next_part(&mut self) -> Result<Option<RawPart>>;
}

impl RawParts for Option<RawPart> {
    fn next_part(&mut self) -> Result<Option<RawPart>> {
        Ok(self.take())
    }
}

/// Raw rows, for one part or several devices in sequence; OFFSET and LIMIT across parts.
struct RawSource {
    engine: EngineRef,
    control: QueryControlRef,
    parts: Box<dyn RawParts>,
    current: Option<RawPart>,
    types: Vec<DataType>,
    offset: u64,
    limit: Option<u64>,
    /// A row read ahead (it did not fit the last page, or `has_more` looked for it).
    pending: Option<(i64, Vec<Val>)>,
}

impl RawSource {
    fn new(
        engine: EngineRef,
        control: QueryControlRef,
        parts: Box<dyn RawParts>,
        types: Vec<DataType>,
        (offset, limit): (u64, Option<u64>),
    ) -> RawSource {
        RawSource {
            engine,
            control,
            parts,
            current: None,
            types,
            offset,
            limit,
            pending: None,
        }
    }

    fn next_row(&mut self) -> Result<Option<(i64, Vec<Val>)>> {
        if let Some(row) = self.pending.take() {
            return Ok(Some(row));
        }
        loop {
            if self.limit == Some(0) {
                self.current = None;
                return Ok(None);
            }
            let part = match &mut self.current {
                Some(part) => part,
                None => match self.parts.next_part()? {
                    Some(part) => self.current.insert(part),
                    None => return Ok(None),
                },
            };
            let Some((time, mut row)) = part.rows.next_row(&self.engine)? else {
                self.current = None;
                continue;
            };
            if self.offset > 0 {
                self.offset -= 1;
                continue;
            }
            if let Some(l) = &mut self.limit {
                *l -= 1;
            }
            let mut cells = Vec::with_capacity(self.types.len());
            if let Some(d) = &part.device {
                cells.push(Val::Str(d.clone()));
            }
            for feed in &part.feeds {
                cells.push(match feed.and_then(|i| row.get_mut(i)) {
                    Some(v) => v.clone(),
                    None => Val::Null,
                });
            }
            return Ok(Some((time, cells)));
        }
    }
}

impl PageSource for RawSource {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while !page.is_full() {
            let Some((time, cells)) = self.next_row()? else {
                break;
            };
            let bytes = row_bytes(&cells, &self.types);
            if !page.fits(bytes) {
                self.pending = Some((time, cells));
                break;
            }
            page.push(time, &cells, bytes)?;
        }
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        if self.pending.is_none() {
            self.pending = self.next_row()?;
        }
        Ok(self.pending.is_some())
    }
}

/// `SELECT LAST`: the newest point of every matched series, as rows (Time, Timeseries, Value,
/// DataType), read one series at a time as pages are fetched.
fn last(
    engine: EngineRef,
    select: &Select,
    lo: i64,
    hi: i64,
    control: QueryControlRef,
) -> Result<Output> {
    let mut series: Vec<SeriesInfo> = Vec::new();
    {
        let schema = engine.schema_read()?;
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
            for s in resolve_item(&schema, &select.from, &item_path) {
                resolution_step();
                if seen.insert(s.path.clone()) {
                    series.push(s);
                }
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
    let held = control.reserve(
        series.iter().map(series_bytes).sum(),
        "the list of selected series",
    )?;
    let types = vec![DataType::Text; 3];
    let source = LastSource {
        engine,
        control: control.clone(),
        series,
        next: 0,
        lo,
        hi,
        types: types.clone(),
        pending: None,
    };
    Ok(Output::Stream(QueryStream::new(
        vec!["Timeseries".into(), "Value".into(), "DataType".into()],
        types,
        true,
        Box::new(source),
        control,
        vec![held],
    )))
}

struct LastSource {
    engine: EngineRef,
    control: QueryControlRef,
    series: Vec<SeriesInfo>,
    next: usize,
    lo: i64,
    hi: i64,
    types: Vec<DataType>,
    pending: Option<(i64, Vec<Val>)>,
}

impl LastSource {
    fn next_row(&mut self) -> Result<Option<(i64, Vec<Val>)>> {
        if let Some(row) = self.pending.take() {
            return Ok(Some(row));
        }
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

impl PageSource for LastSource {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while !page.is_full() {
            let Some((time, cells)) = self.next_row()? else {
                break;
            };
            let bytes = row_bytes(&cells, &self.types);
            if !page.fits(bytes) {
                self.pending = Some((time, cells));
                break;
            }
            page.push(time, &cells, bytes)?;
        }
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        if self.pending.is_none() {
            self.pending = self.next_row()?;
        }
        Ok(self.pending.is_some())
    }
}

/// One output column of ALIGN BY DEVICE: its header, the measurement it shows, its aggregation.
struct DeviceColumn {
    header: String,
    measurement: String,
    agg: Option<AggFn>,
}

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
    /// Per output column, the position in `series` of its measurement, if the device has it.
    feeds: Vec<Option<usize>>,
    predicate: Option<Bound>,
}

impl DevicePlan {
    /// The next device with at least one selected measurement.
    fn next_device(&mut self) -> Result<Option<DeviceSeries>> {
        // Devices are bound as pages are fetched, on whatever thread fetches: under the session's
        // read scope again (a condition's measurement outside it reads nothing).
        let _scope = crate::scope::enter(self.ctx.read_data.clone());
        for (device, ms) in self.devices.by_ref() {
            self.control.check()?;
            let mut series: Vec<SeriesInfo> = Vec::new();
            let mut position: HashMap<&str, usize> = HashMap::new();
            let mut feeds = Vec::with_capacity(self.columns.len());
            for c in &self.columns {
                resolution_step();
                feeds.push(ms.get(&c.measurement).map(|s| {
                    *position.entry(&c.measurement).or_insert_with(|| {
                        series.push(s.clone());
                        series.len() - 1
                    })
                }));
            }
            drop(position);
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
            feeds: d.feeds,
        }))
    }
}

impl AggParts for DevicePlan {
    fn next_part(&mut self) -> Result<Option<AggPart>> {
        let Some(d) = self.next_device()? else {
            return Ok(None);
        };
        let columns = d
            .feeds
            .iter()
            .zip(&self.columns)
            .map(|(feed, c)| {
                feed.map(|i| AggColumn {
                    series: vec![i],
                    function: c.agg.unwrap_or(AggFn::Count),
                    count_if: None,
                })
            })
            .collect();
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
fn by_device(
    engine: EngineRef,
    ctx: &SessionContext,
    select: &Select,
    lo: i64,
    hi: i64,
    windows: Option<Windows>,
    control: QueryControlRef,
) -> Result<Output> {
    // Devices under the FROM paths, in path order, with their measurements.
    let mut devices: BTreeMap<String, BTreeMap<String, SeriesInfo>> = BTreeMap::new();
    {
        let schema = engine.schema_read()?;
        for f in &select.from {
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
    }
    let held = control.reserve(
        devices
            .values()
            .flat_map(|ms| ms.values())
            .map(|s| 2 * series_bytes(s))
            .sum(),
        "the list of selected devices",
    )?;
    // Each measurement's type, and the measurements whose type differs between devices.
    let mut measurement_types: BTreeMap<&str, DataType> = BTreeMap::new();
    let mut conflicting: BTreeMap<&str, (DataType, DataType)> = BTreeMap::new();
    for s in devices.values().flat_map(|ms| ms.values()) {
        match measurement_types.get(s.measurement.as_str()) {
            Some(prev) if *prev != s.data_type => {
                conflicting
                    .entry(s.measurement.as_str())
                    .or_insert((*prev, s.data_type));
            }
            Some(_) => {}
            None => {
                measurement_types.insert(s.measurement.as_str(), s.data_type);
            }
        }
    }
    // Output measurement columns, in item order.
    let mut columns: Vec<DeviceColumn> = Vec::new();
    for item in &select.items {
        let (path, alias, agg) = match item {
            SelectItem::Wildcard => (star(), None, None),
            SelectItem::Path { path, alias } => (path.clone(), alias.clone(), None),
            SelectItem::Aggregate {
                function,
                path,
                alias,
            } => (path.clone(), alias.clone(), Some(AggFn::parse(function)?)),
            SelectItem::CountIf { .. } => {
                return Err(EngineError::Unsupported(
                    "COUNT_IF with ALIGN BY DEVICE is not supported yet".into(),
                ))
            }
        };
        let names: Vec<String> = match path.0.as_slice() {
            [PathNode::Name(m)] => vec![m.clone()],
            // Every measurement name, each once, in name order.
            [PathNode::One] | [PathNode::Many] => measurement_types
                .keys()
                .map(|m| m.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            // `s*`: the measurement names it matches, in name order.
            [PathNode::Glob(glob)] => measurement_types
                .keys()
                .filter(|m| paths::glob_matches(glob, m))
                .map(|m| m.to_string())
                .collect(),
            _ => {
                return Err(EngineError::Semantic(format!(
                    "ALIGN BY DEVICE needs measurement names in the SELECT list, not {path}"
                )))
            }
        };
        for m in names {
            if let Some((prev, t)) = conflicting.get(m.as_str()) {
                return Err(EngineError::Semantic(format!(
                    "measurement {m} has different data types across devices ({prev}, {t})"
                )));
            }
            let header = match (&alias, agg) {
                (Some(a), _) => a.clone(),
                (None, Some(f)) => format!("{}({m})", f.name()),
                (None, None) => m.clone(),
            };
            columns.push(DeviceColumn {
                header,
                measurement: m,
                agg,
            });
        }
    }
    let n_visible = columns.len();
    // HAVING's aggregates: a visible column, or a hidden one after them (cells start with Device).
    let having = match &select.having {
        Some(having) => Some(bind_with(&engine, ctx, having, &mut |reference| {
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
            });
            Ok(columns.len())
        })?),
        None => None,
    };
    let mut types = vec![DataType::Text];
    for c in &columns {
        let t = measurement_types
            .get(c.measurement.as_str())
            .copied()
            .unwrap_or(DataType::Text);
        types.push(match c.agg {
            Some(f) => f.output_type(t)?,
            None => t,
        });
    }
    drop(measurement_types);
    drop(conflicting);
    let mut names = vec!["Device".to_string()];
    names.extend(columns.iter().take(n_visible).map(|c| c.header.clone()));
    let engine_for_shape = engine.clone();
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
                engine,
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
            Box::new(RawSource::new(
                engine,
                control.clone(),
                Box::new(plan),
                types.clone(),
                inner_paging,
            )),
            true,
        ),
    };
    types.truncate(1 + n_visible);
    let source = shaped(
        &engine_for_shape,
        ctx,
        select,
        source,
        &control,
        &types,
        having,
        true,
        paging,
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
    use super::level_path;

    #[test]
    fn level_paths_keep_root_the_measurement_and_the_given_levels() {
        assert_eq!(level_path("root.sg.d1.s1", &[1], false), "root.sg.*.s1");
        assert_eq!(level_path("root.sg.d1.s1", &[0], false), "root.*.*.s1");
        assert_eq!(
            level_path("root.ln.wf01.wt01.status", &[1, 3], false),
            "root.ln.*.wt01.status"
        );
        // count(*) hides the measurement too; a level past the device is the measurement's own.
        assert_eq!(
            level_path("root.ln.wf01.wt01.status", &[2], true),
            "root.*.wf01.*.*"
        );
        assert_eq!(level_path("root.sg.d1.s1", &[3, 9], false), "root.*.*.s1");
        // Back-quoted nodes stay quoted.
        assert_eq!(
            level_path("root.sg.`d.1`.s1", &[2], false),
            "root.*.`d.1`.s1"
        );
    }
}
