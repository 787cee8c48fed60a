//! `SELECT` in the tree model: raw data aligned by time (a k-way merge of per-series scans, streamed
//! page by page), aggregates with and without `GROUP BY ([start, end), interval[, step])`, `SELECT LAST`,
//! and `ALIGN BY DEVICE`. `WHERE` narrows the scanned time range from its time conjuncts and is then
//! evaluated on every aligned row (SQL's three-valued logic: a comparison with a null is unknown, and an
//! unknown row is dropped).

use std::collections::BTreeMap;

use duet_parser::{
    BinaryOp, Expr, GroupByTime, Literal, Path, PathNode, Select, SelectItem, TimeValue, UnaryOp,
};
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::SeriesChunk;

use crate::engine::{Output, QueryStream, SessionContext};
use crate::schema::SeriesInfo;
use crate::{Engine, EngineError, Result};

/// Points read from storage per series per refill.
const SCAN_CHUNK: usize = 4096;

/// Most windows a `GROUP BY` may produce.
const MAX_WINDOWS: i64 = 10_000_000;

/// One page of a result: times and columns of equal length.
#[derive(Debug, Clone)]
pub struct Page {
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
}

/// A result produced page by page.
pub trait PageSource: Send + Sync {
    /// The next page of at most `max_rows` rows, or `None` at the end.
    fn next_page(&mut self, max_rows: usize) -> Result<Option<Page>>;
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// BLOB values stay bytes: they need not be UTF-8.
    Bytes(Vec<u8>),
}

impl Val {
    fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

fn cell(column: &Column, row: usize) -> Val {
    if column.is_null(row) {
        return Val::Null;
    }
    match &column.values {
        ColumnValues::Boolean(v) => v.get(row).map(|b| Val::Bool(*b)).unwrap_or(Val::Null),
        ColumnValues::Int32(v) => v
            .get(row)
            .map(|x| Val::Int(i64::from(*x)))
            .unwrap_or(Val::Null),
        ColumnValues::Int64(v) => v.get(row).map(|x| Val::Int(*x)).unwrap_or(Val::Null),
        ColumnValues::Float(v) => v
            .get(row)
            .map(|x| Val::Float(f64::from(*x)))
            .unwrap_or(Val::Null),
        ColumnValues::Double(v) => v.get(row).map(|x| Val::Float(*x)).unwrap_or(Val::Null),
        ColumnValues::Binary(v) if column.data_type == DataType::Blob => v
            .get(row)
            .map(|x| Val::Bytes(x.clone()))
            .unwrap_or(Val::Null),
        ColumnValues::Binary(v) => v
            .get(row)
            .map(|x| Val::Str(String::from_utf8_lossy(x).into_owned()))
            .unwrap_or(Val::Null),
    }
}

/// An expression with series references bound to positions in the row.
#[derive(Debug, Clone)]
enum Bound {
    Time,
    Series(usize),
    Const(Val),
    Not(Box<Bound>),
    Neg(Box<Bound>),
    Binary(Box<Bound>, BinaryOp, Box<Bound>),
    Between(Box<Bound>, Box<Bound>, Box<Bound>, bool),
    In(Box<Bound>, Vec<Bound>, bool),
    IsNull(Box<Bound>, bool),
    Like(Box<Bound>, String, bool),
}

fn literal_val(l: &Literal) -> Val {
    match l {
        Literal::Null => Val::Null,
        Literal::Boolean(b) => Val::Bool(*b),
        Literal::Integer(s) => s
            .parse::<i64>()
            .map(Val::Int)
            .unwrap_or_else(|_| s.parse::<f64>().map(Val::Float).unwrap_or(Val::Null)),
        Literal::Float(s) => s.parse::<f64>().map(Val::Float).unwrap_or(Val::Null),
        Literal::String(s) => Val::Str(s.clone()),
        Literal::Blob(b) => Val::Bytes(b.clone()),
    }
}

/// Binds `expr`; `resolve` maps a series reference to a row position.
fn bind(
    engine: &Engine,
    ctx: &SessionContext,
    expr: &Expr,
    resolve: &mut dyn FnMut(&Path) -> Result<usize>,
) -> Result<Bound> {
    let b =
        |e: &Expr, r: &mut dyn FnMut(&Path) -> Result<usize>| bind(engine, ctx, e, r).map(Box::new);
    Ok(match expr {
        Expr::Time => Bound::Time,
        Expr::Path(p) => Bound::Series(resolve(p)?),
        Expr::Literal(l) => Bound::Const(literal_val(l)),
        Expr::DateTime(s) => Bound::Const(Val::Int(engine.parse_datetime(ctx, s)?)),
        Expr::Now => Bound::Const(Val::Int(engine.now())),
        Expr::Unary {
            op: UnaryOp::Not,
            expr,
        } => Bound::Not(b(expr, resolve)?),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
        } => Bound::Neg(b(expr, resolve)?),
        Expr::Binary { left, op, right } => {
            Bound::Binary(b(left, resolve)?, *op, b(right, resolve)?)
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => Bound::Between(
            b(expr, resolve)?,
            b(low, resolve)?,
            b(high, resolve)?,
            *negated,
        ),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let mut items = Vec::with_capacity(list.len());
            for item in list {
                items.push(bind(engine, ctx, item, resolve)?);
            }
            Bound::In(b(expr, resolve)?, items, *negated)
        }
        Expr::IsNull { expr, negated } => Bound::IsNull(b(expr, resolve)?, *negated),
        Expr::Like {
            expr,
            pattern,
            negated,
        } => Bound::Like(b(expr, resolve)?, pattern.clone(), *negated),
    })
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    }
}

fn like(text: &str, pattern: &str) -> bool {
    // SQL LIKE: % any run, _ one character.
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    go(
        &text.chars().collect::<Vec<_>>(),
        &pattern.chars().collect::<Vec<_>>(),
    )
}

fn eval(e: &Bound, time: i64, row: &[Val]) -> Val {
    match e {
        Bound::Time => Val::Int(time),
        Bound::Series(i) => row.get(*i).cloned().unwrap_or(Val::Null),
        Bound::Const(v) => v.clone(),
        Bound::Not(x) => match eval(x, time, row) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Bound::Neg(x) => match eval(x, time, row) {
            Val::Int(i) => Val::Int(i.wrapping_neg()),
            Val::Float(f) => Val::Float(-f),
            _ => Val::Null,
        },
        Bound::Binary(l, op, r) => {
            let (a, b) = (eval(l, time, row), eval(r, time, row));
            use BinaryOp as B;
            match op {
                B::And => match (a, b) {
                    (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
                    (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
                    _ => Val::Null,
                },
                B::Or => match (a, b) {
                    (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
                    (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
                    _ => Val::Null,
                },
                B::Eq => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_eq()))
                    .unwrap_or(Val::Null),
                B::NotEq => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_ne()))
                    .unwrap_or(Val::Null),
                B::Lt => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_lt()))
                    .unwrap_or(Val::Null),
                B::LtEq => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_le()))
                    .unwrap_or(Val::Null),
                B::Gt => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_gt()))
                    .unwrap_or(Val::Null),
                B::GtEq => compare(&a, &b)
                    .map(|o| Val::Bool(o.is_ge()))
                    .unwrap_or(Val::Null),
                B::Plus | B::Minus | B::Mul | B::Div | B::Mod => arith(&a, *op, &b),
            }
        }
        Bound::Between(x, lo, hi, negated) => {
            let v = eval(x, time, row);
            match (
                compare(&v, &eval(lo, time, row)),
                compare(&v, &eval(hi, time, row)),
            ) {
                (Some(a), Some(b)) => Val::Bool((a.is_ge() && b.is_le()) != *negated),
                _ => Val::Null,
            }
        }
        Bound::In(x, list, negated) => {
            let v = eval(x, time, row);
            if v == Val::Null {
                return Val::Null;
            }
            let found = list
                .iter()
                .any(|item| compare(&v, &eval(item, time, row)).is_some_and(|o| o.is_eq()));
            Val::Bool(found != *negated)
        }
        Bound::IsNull(x, negated) => Val::Bool((eval(x, time, row) == Val::Null) != *negated),
        Bound::Like(x, pattern, negated) => match eval(x, time, row) {
            Val::Str(s) => Val::Bool(like(&s, pattern) != *negated),
            _ => Val::Null,
        },
    }
}

fn arith(a: &Val, op: BinaryOp, b: &Val) -> Val {
    use BinaryOp as B;
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => match op {
            B::Plus => Val::Int(x.wrapping_add(*y)),
            B::Minus => Val::Int(x.wrapping_sub(*y)),
            B::Mul => Val::Int(x.wrapping_mul(*y)),
            B::Div if *y != 0 => Val::Int(x / y),
            B::Mod if *y != 0 => Val::Int(x % y),
            _ => Val::Null,
        },
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => match op {
                B::Plus => Val::Float(x + y),
                B::Minus => Val::Float(x - y),
                B::Mul => Val::Float(x * y),
                B::Div => Val::Float(x / y),
                B::Mod => Val::Float(x % y),
                _ => Val::Null,
            },
            _ => Val::Null,
        },
    }
}

/// The time range `[lo, hi]` implied by the conjuncts of `expr` that compare time with a constant.
fn time_bounds(engine: &Engine, ctx: &SessionContext, expr: &Expr) -> Result<(i64, i64)> {
    let constant = |e: &Expr| -> Result<Option<i64>> {
        Ok(match e {
            Expr::Literal(Literal::Integer(s)) => s.parse::<i64>().ok(),
            Expr::DateTime(s) => Some(engine.parse_datetime(ctx, s)?),
            Expr::Literal(Literal::String(s)) => engine.parse_datetime(ctx, s).ok(),
            Expr::Now => Some(engine.now()),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
            } => match expr.as_ref() {
                Expr::Literal(Literal::Integer(s)) => s.parse::<i64>().ok().map(|v| -v),
                _ => None,
            },
            _ => None,
        })
    };
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
                match op {
                    B::Eq => (lo, hi) = (v, v),
                    B::Gt => lo = v.saturating_add(1),
                    B::GtEq => lo = v,
                    B::Lt => hi = v.saturating_sub(1),
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
        Expr::Time | Expr::Literal(_) | Expr::DateTime(_) | Expr::Now => true,
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

/// Reads one series in time order, a chunk at a time.
struct SeriesCursor {
    series: String,
    /// The schema's type: chunk columns are read as it (BLOB stays bytes).
    data_type: DataType,
    chunk: Option<SeriesChunk>,
    pos: usize,
    /// Next time to read from (ascending: lower bound; descending: upper bound).
    next: Option<i64>,
    lo: i64,
    hi: i64,
    descending: bool,
}

impl SeriesCursor {
    fn new(series: &SeriesInfo, lo: i64, hi: i64, descending: bool) -> SeriesCursor {
        SeriesCursor {
            series: series.path.clone(),
            data_type: series.data_type,
            chunk: None,
            pos: 0,
            next: Some(if descending { hi } else { lo }),
            lo,
            hi,
            descending,
        }
    }

    /// The current point's time, refilling from storage when the chunk is used up.
    fn peek(&mut self, engine: &Engine) -> Result<Option<i64>> {
        loop {
            if let Some(chunk) = &self.chunk {
                if let Some(t) = chunk.times.get(self.pos) {
                    return Ok(Some(*t));
                }
            }
            let Some(from) = self.next else {
                return Ok(None);
            };
            let (lo, hi) = if self.descending {
                (self.lo, from)
            } else {
                (from, self.hi)
            };
            if lo > hi {
                self.next = None;
                return Ok(None);
            }
            let mut chunk =
                engine
                    .storage
                    .scan(&self.series, lo, hi, SCAN_CHUNK, self.descending)?;
            if chunk.values.data_type.physical() == self.data_type.physical() {
                chunk.values.data_type = self.data_type;
            }
            self.next = match chunk.times.last() {
                Some(last) if chunk.times.len() == SCAN_CHUNK => {
                    if self.descending {
                        last.checked_sub(1)
                    } else {
                        last.checked_add(1)
                    }
                }
                _ => None,
            };
            if chunk.times.is_empty() {
                self.chunk = None;
                self.next = None;
                return Ok(None);
            }
            self.chunk = Some(chunk);
            self.pos = 0;
        }
    }

    fn take(&mut self) -> Val {
        let v = self
            .chunk
            .as_ref()
            .map(|c| cell(&c.values, self.pos))
            .unwrap_or(Val::Null);
        self.pos += 1;
        v
    }
}

/// Rows aligned by time over a set of series: the k-way merge of their cursors.
struct AlignedRows {
    cursors: Vec<SeriesCursor>,
    descending: bool,
    predicate: Option<Bound>,
    /// Which cursor positions are output columns (the rest only feed the predicate).
    outputs: Vec<usize>,
    offset: u64,
    limit: Option<u64>,
}

impl AlignedRows {
    /// The next row passing the predicate, offset and limit.
    fn next_row(&mut self, engine: &Engine) -> Result<Option<(i64, Vec<Val>)>> {
        loop {
            if self.limit == Some(0) {
                return Ok(None);
            }
            let mut time: Option<i64> = None;
            for c in &mut self.cursors {
                if let Some(t) = c.peek(engine)? {
                    time = Some(match time {
                        None => t,
                        Some(best) if self.descending => best.max(t),
                        Some(best) => best.min(t),
                    });
                }
            }
            let Some(time) = time else { return Ok(None) };
            let mut row = Vec::with_capacity(self.cursors.len());
            for c in &mut self.cursors {
                if c.peek(engine)? == Some(time) {
                    row.push(c.take());
                } else {
                    row.push(Val::Null);
                }
            }
            if self.outputs.iter().all(|i| row[*i] == Val::Null) {
                continue;
            }
            if let Some(p) = &self.predicate {
                if eval(p, time, &row) != Val::Bool(true) {
                    continue;
                }
            }
            if self.offset > 0 {
                self.offset -= 1;
                continue;
            }
            if let Some(l) = &mut self.limit {
                *l -= 1;
            }
            return Ok(Some((time, row)));
        }
    }
}

/// Builds output columns from rows of values.
struct ColumnBuilder {
    data_type: DataType,
    nulls: Vec<bool>,
    values: ColumnValues,
}

impl ColumnBuilder {
    fn new(data_type: DataType) -> ColumnBuilder {
        ColumnBuilder {
            data_type,
            nulls: Vec::new(),
            values: ColumnValues::empty_for(data_type),
        }
    }

    fn push(&mut self, v: &Val) {
        let null = *v == Val::Null;
        self.nulls.push(null);
        match &mut self.values {
            ColumnValues::Boolean(x) => x.push(matches!(v, Val::Bool(true))),
            ColumnValues::Int32(x) => x.push(match v {
                Val::Int(i) => i32::try_from(*i).unwrap_or_default(),
                _ => 0,
            }),
            ColumnValues::Int64(x) => x.push(match v {
                Val::Int(i) => *i,
                _ => 0,
            }),
            ColumnValues::Float(x) => x.push(v.as_f64().unwrap_or_default() as f32),
            ColumnValues::Double(x) => x.push(v.as_f64().unwrap_or_default()),
            ColumnValues::Binary(x) => x.push(match v {
                Val::Str(s) => s.clone().into_bytes(),
                Val::Bytes(b) => b.clone(),
                Val::Null => Vec::new(),
                other => render(other).into_bytes(),
            }),
        }
    }

    fn finish(self) -> Column {
        let nulls = self.nulls.iter().any(|b| *b).then_some(self.nulls);
        Column {
            data_type: self.data_type,
            nulls,
            values: self.values,
        }
    }
}

fn render(v: &Val) -> String {
    match v {
        Val::Null => "null".into(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Str(s) => s.clone(),
        Val::Bytes(b) => format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    }
}

/// The engine reference a page source needs; sources outlive the statement call, so they hold an `Arc`.
pub type EngineRef = std::sync::Arc<Engine>;

/// Raw rows, optionally for several devices in sequence (ALIGN BY DEVICE).
struct RawSource {
    engine: EngineRef,
    /// (device name for ALIGN BY DEVICE, rows, positions of output columns in the page)
    parts: Vec<(Option<String>, AlignedRows, Vec<usize>)>,
    n_columns: usize,
    types: Vec<DataType>,
    offset: u64,
    limit: Option<u64>,
}

impl PageSource for RawSource {
    fn next_page(&mut self, max_rows: usize) -> Result<Option<Page>> {
        let mut times = Vec::new();
        let mut builders: Vec<ColumnBuilder> =
            self.types.iter().map(|t| ColumnBuilder::new(*t)).collect();
        while times.len() < max_rows && !self.parts.is_empty() {
            if self.limit == Some(0) {
                self.parts.clear();
                break;
            }
            let (device, rows, positions) = &mut self.parts[0];
            match rows.next_row(&self.engine)? {
                None => {
                    self.parts.remove(0);
                }
                Some((time, row)) => {
                    if self.offset > 0 {
                        self.offset -= 1;
                        continue;
                    }
                    if let Some(l) = &mut self.limit {
                        *l -= 1;
                    }
                    times.push(time);
                    let mut cells = vec![Val::Null; self.n_columns];
                    let mut first = 0;
                    if let Some(d) = device {
                        cells[0] = Val::Str(d.clone());
                        first = 1;
                    }
                    for (out, cursor) in positions.iter().zip(&rows.outputs) {
                        cells[first + *out] = row[*cursor].clone();
                    }
                    for (b, v) in builders.iter_mut().zip(&cells) {
                        b.push(v);
                    }
                }
            }
        }
        if times.is_empty() {
            return Ok(None);
        }
        Ok(Some(Page {
            times,
            columns: builders.into_iter().map(ColumnBuilder::finish).collect(),
        }))
    }
}

/// A finished table served as pages.
struct TableSource {
    page: Option<Page>,
    cursor: usize,
}

impl PageSource for TableSource {
    fn next_page(&mut self, max_rows: usize) -> Result<Option<Page>> {
        let Some(page) = &self.page else {
            return Ok(None);
        };
        let n = page.times.len();
        if self.cursor >= n {
            return Ok(None);
        }
        let end = n.min(self.cursor + max_rows);
        let slice = Page {
            times: page.times[self.cursor..end].to_vec(),
            columns: page
                .columns
                .iter()
                .map(|c| slice_column(c, self.cursor, end))
                .collect(),
        };
        self.cursor = end;
        Ok(Some(slice))
    }
}

fn slice_column(c: &Column, start: usize, end: usize) -> Column {
    let values = match &c.values {
        ColumnValues::Boolean(v) => ColumnValues::Boolean(v[start..end].to_vec()),
        ColumnValues::Int32(v) => ColumnValues::Int32(v[start..end].to_vec()),
        ColumnValues::Int64(v) => ColumnValues::Int64(v[start..end].to_vec()),
        ColumnValues::Float(v) => ColumnValues::Float(v[start..end].to_vec()),
        ColumnValues::Double(v) => ColumnValues::Double(v[start..end].to_vec()),
        ColumnValues::Binary(v) => ColumnValues::Binary(v[start..end].to_vec()),
    };
    Column {
        data_type: c.data_type,
        nulls: c.nulls.as_ref().map(|n| n[start..end].to_vec()),
        values,
    }
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

/// Aggregation functions Duet computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggFn {
    Count,
    Sum,
    Avg,
    MinValue,
    MaxValue,
    FirstValue,
    LastValue,
    MinTime,
    MaxTime,
    Extreme,
}

impl AggFn {
    fn parse(name: &str) -> Result<AggFn> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "COUNT" => AggFn::Count,
            "SUM" => AggFn::Sum,
            "AVG" => AggFn::Avg,
            "MIN_VALUE" => AggFn::MinValue,
            "MAX_VALUE" => AggFn::MaxValue,
            "FIRST_VALUE" => AggFn::FirstValue,
            "LAST_VALUE" => AggFn::LastValue,
            "MIN_TIME" => AggFn::MinTime,
            "MAX_TIME" => AggFn::MaxTime,
            "EXTREME" => AggFn::Extreme,
            other => {
                return Err(EngineError::Unsupported(format!(
                    "aggregation function {other} is not supported"
                )))
            }
        })
    }

    fn output_type(self, input: DataType) -> Result<DataType> {
        let numeric = matches!(
            input,
            DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double
        );
        Ok(match self {
            AggFn::Count | AggFn::MinTime | AggFn::MaxTime => DataType::Int64,
            AggFn::Sum | AggFn::Avg if numeric => DataType::Double,
            AggFn::Extreme if numeric => input,
            AggFn::MinValue | AggFn::MaxValue
                if input != DataType::Blob && input != DataType::Boolean =>
            {
                input
            }
            AggFn::FirstValue | AggFn::LastValue => input,
            _ => {
                return Err(EngineError::Semantic(format!(
                    "Aggregate functions [{}] only support numeric data types",
                    self.name()
                )))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::MinValue => "min_value",
            AggFn::MaxValue => "max_value",
            AggFn::FirstValue => "first_value",
            AggFn::LastValue => "last_value",
            AggFn::MinTime => "min_time",
            AggFn::MaxTime => "max_time",
            AggFn::Extreme => "extreme",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Acc {
    count: i64,
    sum: f64,
    first: Option<(i64, Val)>,
    last: Option<(i64, Val)>,
    min: Option<Val>,
    max: Option<Val>,
    extreme: Option<Val>,
}

impl Acc {
    fn add(&mut self, time: i64, v: &Val) {
        if *v == Val::Null {
            return;
        }
        self.count += 1;
        if let Some(f) = v.as_f64() {
            self.sum += f;
            let better = match &self.extreme {
                None => true,
                Some(e) => e
                    .as_f64()
                    .is_some_and(|x| f.abs() > x.abs() || (f.abs() == x.abs() && f > x)),
            };
            if better {
                self.extreme = Some(v.clone());
            }
        }
        if self.first.as_ref().is_none_or(|(t, _)| time < *t) {
            self.first = Some((time, v.clone()));
        }
        if self.last.as_ref().is_none_or(|(t, _)| time > *t) {
            self.last = Some((time, v.clone()));
        }
        if self
            .min
            .as_ref()
            .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_lt()))
        {
            self.min = Some(v.clone());
        }
        if self
            .max
            .as_ref()
            .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_gt()))
        {
            self.max = Some(v.clone());
        }
    }

    fn result(&self, f: AggFn) -> Val {
        match f {
            AggFn::Count => Val::Int(self.count),
            _ if self.count == 0 => Val::Null,
            AggFn::Sum => Val::Float(self.sum),
            AggFn::Avg => Val::Float(self.sum / self.count as f64),
            AggFn::MinValue => self.min.clone().unwrap_or(Val::Null),
            AggFn::MaxValue => self.max.clone().unwrap_or(Val::Null),
            AggFn::FirstValue => self
                .first
                .as_ref()
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            AggFn::LastValue => self
                .last
                .as_ref()
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            AggFn::MinTime => self
                .first
                .as_ref()
                .map(|(t, _)| Val::Int(*t))
                .unwrap_or(Val::Null),
            AggFn::MaxTime => self
                .last
                .as_ref()
                .map(|(t, _)| Val::Int(*t))
                .unwrap_or(Val::Null),
            AggFn::Extreme => self.extreme.clone().unwrap_or(Val::Null),
        }
    }
}

/// Parses an IoTDB duration (`10ms`, `1s`, `5m`, `1h30m`, `2d`, `1w`, a bare integer) into time units.
fn duration(engine: &Engine, text: &str) -> Result<i64> {
    let t = text.trim().to_ascii_lowercase();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let mut unit = String::from(c);
        while let Some(n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(*n);
                chars.next();
            } else {
                break;
            }
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| EngineError::Semantic(format!("illegal duration {text}")))?;
        digits.clear();
        let ms_per = engine.units_per_ms;
        let units: i64 = match unit.as_str() {
            "ns" => {
                if ms_per < 1_000_000 {
                    return Err(EngineError::Semantic(format!(
                        "duration {text} is finer than the timestamp precision"
                    )));
                }
                1
            }
            "us" => {
                if ms_per < 1_000 {
                    return Err(EngineError::Semantic(format!(
                        "duration {text} is finer than the timestamp precision"
                    )));
                }
                ms_per / 1_000
            }
            "ms" => ms_per,
            "s" => 1_000 * ms_per,
            "m" => 60_000 * ms_per,
            "h" => 3_600_000 * ms_per,
            "d" => 86_400_000 * ms_per,
            "w" => 7 * 86_400_000 * ms_per,
            "mo" | "y" => {
                return Err(EngineError::Unsupported(format!(
                    "calendar durations ({text}) are not supported yet"
                )))
            }
            _ => return Err(EngineError::Semantic(format!("illegal duration {text}"))),
        };
        total = total.saturating_add(n.saturating_mul(units));
    }
    if !digits.is_empty() || total <= 0 {
        return Err(EngineError::Semantic(format!("illegal duration {text}")));
    }
    Ok(total)
}

fn time_value(engine: &Engine, ctx: &SessionContext, v: &TimeValue) -> Result<i64> {
    match v {
        TimeValue::Value(t) => Ok(*t),
        TimeValue::DateTime(s) => engine.parse_datetime(ctx, s),
        TimeValue::Now => Ok(engine.now()),
    }
}

/// Windows of a GROUP BY: (window start, lo, hi) with inclusive bounds.
fn windows(engine: &Engine, ctx: &SessionContext, g: &GroupByTime) -> Result<Vec<(i64, i64, i64)>> {
    let start = time_value(engine, ctx, &g.start)?;
    let end = time_value(engine, ctx, &g.end)?;
    let interval = duration(engine, &g.interval.text)?;
    let step = match &g.step {
        Some(s) => duration(engine, &s.text)?,
        None => interval,
    };
    if start >= end {
        return Err(EngineError::Semantic(
            "Start time should be smaller than endTime in GroupBy".into(),
        ));
    }
    let n = (end - start).saturating_add(step - 1) / step;
    if n > MAX_WINDOWS {
        return Err(EngineError::Semantic(format!(
            "GROUP BY would produce {n} windows; at most {MAX_WINDOWS} are allowed"
        )));
    }
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut w = start;
    while w < end {
        let (lo, hi) = if g.left_open {
            (w.saturating_add(1), w.saturating_add(interval).min(end))
        } else {
            (w, w.saturating_add(interval).min(end).saturating_sub(1))
        };
        out.push((
            if g.left_open {
                w.saturating_add(interval).min(end)
            } else {
                w
            },
            lo,
            hi,
        ));
        w = w.saturating_add(step);
    }
    Ok(out)
}

/// Resolves a WHERE path against the FROM paths to exactly one series among `known` (adding it when new).
fn resolve_series(
    engine: &Engine,
    from: &[Path],
    p: &Path,
    known: &mut Vec<SeriesInfo>,
) -> Result<usize> {
    let schema = engine.schema_read()?;
    let mut found: Vec<SeriesInfo> = Vec::new();
    for f in from {
        for s in schema.matching_series(&join_pattern(f, p)) {
            if !found.iter().any(|x| x.path == s.path) {
                found.push(s);
            }
        }
    }
    match found.len() {
        0 => Err(EngineError::Semantic(format!(
            "the path {p} in the WHERE clause matches no series"
        ))),
        1 => {
            let s = found.remove(0);
            if let Some(i) = known.iter().position(|k| k.path == s.path) {
                Ok(i)
            } else {
                known.push(s);
                Ok(known.len() - 1)
            }
        }
        _ => Err(EngineError::Semantic(format!(
            "the path {p} in the WHERE clause matches {} series; name one series",
            found.len()
        ))),
    }
}

/// Executes a SELECT.
pub fn execute(engine: &Engine, ctx: &SessionContext, select: &Select) -> Result<Output> {
    let engine_ref = engine.self_ref()?;
    let has_agg = select
        .items
        .iter()
        .any(|i| matches!(i, SelectItem::Aggregate { .. }));
    let has_raw = select
        .items
        .iter()
        .any(|i| !matches!(i, SelectItem::Aggregate { .. }));
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
    if select.from.is_empty() {
        return Err(EngineError::Semantic("a FROM clause is required".into()));
    }
    let (lo, hi) = match &select.condition {
        Some(c) => time_bounds(engine, ctx, c)?,
        None => (i64::MIN, i64::MAX),
    };
    if select.last {
        return last(engine, ctx, select, lo, hi);
    }
    if select.align_by_device {
        return by_device(engine_ref, ctx, select, lo, hi, has_agg);
    }
    // Resolve the output series in item order, each item's matches in path order.
    let schema = engine.schema_read()?;
    let mut outputs: Vec<(String, SeriesInfo, Option<AggFn>)> = Vec::new();
    for item in &select.items {
        let (item_path, alias, agg) = match item {
            SelectItem::Wildcard => (star(), None, None),
            SelectItem::Path { path, alias } => (path.clone(), alias.clone(), None),
            SelectItem::Aggregate {
                function,
                path,
                alias,
            } => (path.clone(), alias.clone(), Some(AggFn::parse(function)?)),
        };
        let mut matched: Vec<SeriesInfo> = Vec::new();
        for f in &select.from {
            for s in schema.matching_series(&join_pattern(f, &item_path)) {
                if !matched.iter().any(|m| m.path == s.path) {
                    matched.push(s);
                }
            }
        }
        matched.sort_by(|a, b| a.path.cmp(&b.path));
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
    drop(schema);
    // SLIMIT / SOFFSET choose columns.
    let soffset = usize::try_from(select.soffset.unwrap_or(0)).unwrap_or(usize::MAX);
    let outputs: Vec<_> = outputs
        .into_iter()
        .skip(soffset)
        .take(
            select
                .slimit
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .unwrap_or(usize::MAX),
        )
        .collect();
    // Cursor list: distinct output series first, then predicate-only series.
    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut column_cursor = Vec::with_capacity(outputs.len());
    for (_, s, _) in &outputs {
        let i = match series.iter().position(|x| x.path == s.path) {
            Some(i) => i,
            None => {
                series.push(s.clone());
                series.len() - 1
            }
        };
        column_cursor.push(i);
    }
    let n_output_series = series.len();
    let predicate = match &select.condition {
        Some(c) => Some(bind(engine, ctx, c, &mut |p| {
            resolve_series(engine, &select.from, p, &mut series)
        })?),
        None => None,
    };
    let descending = select.order_by_time_desc;
    if has_agg {
        let aggs: Vec<(String, usize, AggFn, DataType)> = outputs
            .iter()
            .zip(&column_cursor)
            .map(|((name, s, f), c)| {
                let f = f.unwrap_or(AggFn::Count);
                Ok((name.clone(), *c, f, f.output_type(s.data_type)?))
            })
            .collect::<Result<_>>()?;
        let table = aggregate(
            engine,
            ctx,
            &series,
            n_output_series,
            predicate,
            &aggs,
            select,
            lo,
            hi,
        )?;
        return Ok(Output::Stream(stream_of_table(
            table,
            aggs.iter().map(|a| a.0.clone()).collect(),
            aggs.iter().map(|a| a.3).collect(),
            select.group_by.is_some(),
        )));
    }
    let rows = AlignedRows {
        cursors: series
            .iter()
            .map(|s| SeriesCursor::new(s, lo, hi, descending))
            .collect(),
        descending,
        predicate,
        outputs: (0..n_output_series).collect(),
        offset: select.offset.unwrap_or(0),
        limit: select.limit,
    };
    // Output columns read the cursor of their series (a series selected twice feeds two columns).
    let names: Vec<String> = outputs.iter().map(|o| o.0.clone()).collect();
    let types: Vec<DataType> = outputs.iter().map(|o| o.1.data_type).collect();
    let source = DuplicatingSource {
        inner: RawSource {
            engine: engine_ref,
            parts: vec![(None, rows, (0..n_output_series).collect())],
            n_columns: n_output_series,
            types: series[..n_output_series]
                .iter()
                .map(|s| s.data_type)
                .collect(),
            offset: 0,
            limit: None,
        },
        map: column_cursor,
    };
    Ok(Output::Stream(QueryStream {
        names,
        types,
        has_time: true,
        source: Box::new(source),
    }))
}

/// Maps series columns to output columns (duplicates allowed).
struct DuplicatingSource {
    inner: RawSource,
    map: Vec<usize>,
}

impl PageSource for DuplicatingSource {
    fn next_page(&mut self, max_rows: usize) -> Result<Option<Page>> {
        Ok(self.inner.next_page(max_rows)?.map(|p| Page {
            times: p.times,
            columns: self
                .map
                .iter()
                .filter_map(|i| p.columns.get(*i).cloned())
                .collect(),
        }))
    }
}

fn stream_of_table(
    page: Page,
    names: Vec<String>,
    types: Vec<DataType>,
    has_time: bool,
) -> QueryStream {
    QueryStream {
        names,
        types,
        has_time,
        source: Box::new(TableSource {
            page: Some(page),
            cursor: 0,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn aggregate(
    engine: &Engine,
    ctx: &SessionContext,
    series: &[SeriesInfo],
    n_output_series: usize,
    predicate: Option<Bound>,
    aggs: &[(String, usize, AggFn, DataType)],
    select: &Select,
    lo: i64,
    hi: i64,
) -> Result<Page> {
    let wins = match &select.group_by {
        Some(g) => windows(engine, ctx, g)?,
        None => vec![(0, lo, hi)],
    };
    let (wlo, whi) = match (wins.first(), wins.last()) {
        (Some(f), Some(l)) => (f.1.max(lo), l.2.min(hi)),
        _ => (lo, hi),
    };
    let mut accs: Vec<Vec<Acc>> = vec![vec![Acc::default(); n_output_series]; wins.len()];
    if wlo <= whi {
        let mut rows = AlignedRows {
            cursors: series
                .iter()
                .map(|s| SeriesCursor::new(s, wlo, whi, false))
                .collect(),
            descending: false,
            predicate,
            outputs: (0..n_output_series).collect(),
            offset: 0,
            limit: None,
        };
        let step_sorted = select.group_by.is_some();
        let mut w = 0usize;
        while let Some((time, row)) = rows.next_row(engine)? {
            if step_sorted {
                // Windows may overlap (step < interval): add to every window containing the time.
                while w < wins.len() && wins[w].2 < time {
                    w += 1;
                }
                let mut k = w;
                while k < wins.len() && wins[k].1 <= time {
                    if time <= wins[k].2 {
                        for (i, v) in row.iter().take(n_output_series).enumerate() {
                            accs[k][i].add(time, v);
                        }
                    }
                    k += 1;
                }
            } else {
                for (i, v) in row.iter().take(n_output_series).enumerate() {
                    accs[0][i].add(time, v);
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..wins.len()).collect();
    if select.order_by_time_desc {
        order.reverse();
    }
    let skip = usize::try_from(select.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let take = select
        .limit
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let order: Vec<usize> = order.into_iter().skip(skip).take(take).collect();
    let mut builders: Vec<ColumnBuilder> = aggs.iter().map(|a| ColumnBuilder::new(a.3)).collect();
    let mut times = Vec::with_capacity(order.len());
    for w in order {
        times.push(wins[w].0);
        for (b, (_, cursor, f, _)) in builders.iter_mut().zip(aggs) {
            b.push(&accs[w][*cursor].result(*f));
        }
    }
    Ok(Page {
        times,
        columns: builders.into_iter().map(ColumnBuilder::finish).collect(),
    })
}

/// `SELECT LAST`: the newest point of every matched series, as rows (Time, Timeseries, Value, DataType).
fn last(
    engine: &Engine,
    _ctx: &SessionContext,
    select: &Select,
    lo: i64,
    hi: i64,
) -> Result<Output> {
    let schema = engine.schema_read()?;
    let mut series: Vec<SeriesInfo> = Vec::new();
    for item in &select.items {
        let item_path = match item {
            SelectItem::Wildcard => star(),
            SelectItem::Path { path, .. } => path.clone(),
            SelectItem::Aggregate { .. } => {
                return Err(EngineError::Semantic(
                    "SELECT LAST takes series, not aggregations".into(),
                ))
            }
        };
        for f in &select.from {
            for s in schema.matching_series(&join_pattern(f, &item_path)) {
                if !series.iter().any(|x| x.path == s.path) {
                    series.push(s);
                }
            }
        }
    }
    drop(schema);
    series.sort_by(|a, b| a.path.cmp(&b.path));
    if select.order_by_time_desc {
        series.reverse();
    }
    let mut times = Vec::new();
    let (mut names, mut values, mut types) = (Vec::new(), Vec::new(), Vec::new());
    for s in &series {
        let chunk = engine.storage.scan(&s.path, lo, hi, 1, true)?;
        if let Some(t) = chunk.times.first() {
            times.push(*t);
            names.push(s.path.clone());
            values.push(
                Column {
                    data_type: s.data_type,
                    ..chunk.values.clone()
                }
                .render(0),
            );
            types.push(s.data_type.name().to_string());
        }
    }
    let n = times.len();
    let page = Page {
        times,
        columns: vec![
            Column::text(names),
            Column::text(values),
            Column::text(types),
        ],
    };
    let _ = n;
    Ok(Output::Stream(stream_of_table(
        page,
        vec!["Timeseries".into(), "Value".into(), "DataType".into()],
        vec![DataType::Text; 3],
        true,
    )))
}

/// ALIGN BY DEVICE: one block of rows per device, columns Device plus measurement names.
fn by_device(
    engine: EngineRef,
    ctx: &SessionContext,
    select: &Select,
    lo: i64,
    hi: i64,
    has_agg: bool,
) -> Result<Output> {
    let schema = engine.schema_read()?;
    // Devices under the FROM paths, in path order.
    let mut devices: BTreeMap<String, BTreeMap<String, DataType>> = BTreeMap::new();
    for f in &select.from {
        let mut pattern = f.0.clone();
        pattern.push(PathNode::One);
        for s in schema.matching_series(&pattern) {
            devices
                .entry(s.device.clone())
                .or_default()
                .insert(s.measurement.clone(), s.data_type);
        }
        if f.0.iter().any(|n| matches!(n, PathNode::Many)) {
            for s in schema.matching_series(&f.0) {
                devices
                    .entry(s.device.clone())
                    .or_default()
                    .insert(s.measurement.clone(), s.data_type);
            }
        }
    }
    drop(schema);
    // Output measurement columns, in item order.
    let mut columns: Vec<(String, String, Option<AggFn>)> = Vec::new(); // (header, measurement, agg)
    let mut types: BTreeMap<String, DataType> = BTreeMap::new();
    for item in &select.items {
        let (path, alias, agg) = match item {
            SelectItem::Wildcard => (star(), None, None),
            SelectItem::Path { path, alias } => (path.clone(), alias.clone(), None),
            SelectItem::Aggregate {
                function,
                path,
                alias,
            } => (path.clone(), alias.clone(), Some(AggFn::parse(function)?)),
        };
        let mut names: Vec<String> = Vec::new();
        match path.0.as_slice() {
            [PathNode::Name(m)] => names.push(m.clone()),
            [PathNode::One] | [PathNode::Many] => {
                for ms in devices.values() {
                    for m in ms.keys() {
                        if !names.contains(m) {
                            names.push(m.clone());
                        }
                    }
                }
                names.sort();
            }
            _ => {
                return Err(EngineError::Semantic(format!(
                    "ALIGN BY DEVICE needs measurement names in the SELECT list, not {path}"
                )))
            }
        }
        for m in names {
            for ms in devices.values() {
                if let Some(t) = ms.get(&m) {
                    match types.get(&m) {
                        Some(prev) if prev != t => {
                            return Err(EngineError::Semantic(format!(
                            "measurement {m} has different data types across devices ({prev}, {t})"
                        )))
                        }
                        _ => {
                            types.insert(m.clone(), *t);
                        }
                    }
                }
            }
            let header = match (&alias, agg) {
                (Some(a), _) => a.clone(),
                (None, Some(f)) => format!("{}({m})", f.name()),
                (None, None) => m.clone(),
            };
            columns.push((header, m, agg));
        }
    }
    let mut out_types = vec![DataType::Text];
    for (_, m, agg) in &columns {
        let t = types.get(m).copied().unwrap_or(DataType::Text);
        out_types.push(match agg {
            Some(f) => f.output_type(t)?,
            None => t,
        });
    }
    let mut names = vec!["Device".to_string()];
    names.extend(columns.iter().map(|c| c.0.clone()));
    if has_agg {
        let mut all_times = Vec::new();
        let mut builders: Vec<ColumnBuilder> =
            out_types.iter().map(|t| ColumnBuilder::new(*t)).collect();
        for (device, ms) in &devices {
            let measured: Vec<&(String, String, Option<AggFn>)> =
                columns.iter().filter(|c| ms.contains_key(&c.1)).collect();
            if measured.is_empty() {
                continue;
            }
            let mut series: Vec<SeriesInfo> = Vec::new();
            let mut aggs = Vec::new();
            for (header, m, agg) in &columns {
                let Some(t) = ms.get(m) else {
                    aggs.push(None);
                    continue;
                };
                let path = format!("{device}.{m}");
                let idx = match series.iter().position(|s| s.path == path) {
                    Some(i) => i,
                    None => {
                        series.push(SeriesInfo {
                            path,
                            device: device.clone(),
                            measurement: m.clone(),
                            database: String::new(),
                            data_type: *t,
                            encoding: String::new(),
                            compressor: String::new(),
                            aligned: false,
                        });
                        series.len() - 1
                    }
                };
                let f = agg.unwrap_or(AggFn::Count);
                aggs.push(Some((header.clone(), idx, f, f.output_type(*t)?)));
            }
            let n_out = series.len();
            let predicate = match &select.condition {
                Some(c) => Some(bind(&engine, ctx, c, &mut |p| {
                    resolve_in_device(device, ms, p, &mut series)
                })?),
                None => None,
            };
            let present: Vec<(String, usize, AggFn, DataType)> =
                aggs.iter().flatten().cloned().collect();
            let page = aggregate(
                &engine, ctx, &series, n_out, predicate, &present, select, lo, hi,
            )?;
            for r in 0..page.times.len() {
                all_times.push(page.times[r]);
                builders[0].push(&Val::Str(device.clone()));
                let mut k = 0;
                for (i, a) in aggs.iter().enumerate() {
                    let v = match a {
                        Some(_) => {
                            let v = cell(&page.columns[k], r);
                            k += 1;
                            v
                        }
                        None => Val::Null,
                    };
                    builders[i + 1].push(&v);
                }
            }
        }
        let page = Page {
            times: all_times,
            columns: builders.into_iter().map(ColumnBuilder::finish).collect(),
        };
        return Ok(Output::Stream(stream_of_table(
            page,
            names,
            out_types,
            select.group_by.is_some(),
        )));
    }
    let mut parts = Vec::new();
    for (device, ms) in &devices {
        let mut series: Vec<SeriesInfo> = Vec::new();
        let mut positions = Vec::new();
        for (i, (_, m, _)) in columns.iter().enumerate() {
            if let Some(t) = ms.get(m) {
                let path = format!("{device}.{m}");
                if !series.iter().any(|s| s.path == path) {
                    series.push(SeriesInfo {
                        path,
                        device: device.clone(),
                        measurement: m.clone(),
                        database: String::new(),
                        data_type: *t,
                        encoding: String::new(),
                        compressor: String::new(),
                        aligned: false,
                    });
                    positions.push(i);
                }
            }
        }
        if series.is_empty() {
            continue;
        }
        let n_out = series.len();
        let predicate = match &select.condition {
            Some(c) => Some(bind(&engine, ctx, c, &mut |p| {
                resolve_in_device(device, ms, p, &mut series)
            })?),
            None => None,
        };
        let rows = AlignedRows {
            cursors: series
                .iter()
                .map(|s| SeriesCursor::new(s, lo, hi, select.order_by_time_desc))
                .collect(),
            descending: select.order_by_time_desc,
            predicate,
            outputs: (0..n_out).collect(),
            offset: 0,
            limit: None,
        };
        parts.push((Some(device.clone()), rows, positions));
    }
    let source = RawSource {
        engine: engine.clone(),
        parts,
        n_columns: names.len(),
        types: out_types.clone(),
        offset: select.offset.unwrap_or(0),
        limit: select.limit,
    };
    Ok(Output::Stream(QueryStream {
        names,
        types: out_types,
        has_time: true,
        source: Box::new(source),
    }))
}

fn resolve_in_device(
    device: &str,
    ms: &BTreeMap<String, DataType>,
    p: &Path,
    series: &mut Vec<SeriesInfo>,
) -> Result<usize> {
    let [PathNode::Name(m)] = p.0.as_slice() else {
        return Err(EngineError::Semantic(format!(
            "ALIGN BY DEVICE conditions name measurements, not {p}"
        )));
    };
    let path = format!("{device}.{m}");
    if let Some(i) = series.iter().position(|s| s.path == path) {
        return Ok(i);
    }
    // A measurement the device lacks reads as null (the row is then unknown and dropped).
    let data_type = ms.get(m).copied().unwrap_or(DataType::Text);
    series.push(SeriesInfo {
        path,
        device: device.to_string(),
        measurement: m.clone(),
        database: String::new(),
        data_type,
        encoding: String::new(),
        compressor: String::new(),
        aligned: false,
    });
    Ok(series.len() - 1)
}
