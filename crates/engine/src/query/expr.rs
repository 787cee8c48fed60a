//! Values and expressions of `SELECT`: a row's cells as [`Val`]s, `WHERE` expressions bound to row
//! positions ([`Bound`]), and their evaluation with SQL's three-valued logic (a comparison with a null
//! is unknown). Integer arithmetic that would overflow is done in floating point instead of wrapping.

use duet_parser::{BinaryOp, Expr, Literal, Path, UnaryOp};
use duet_proto::types::{Column, ColumnValues, DataType};

use crate::engine::SessionContext;
use crate::{Engine, EngineError, Result};

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// BLOB values stay bytes: they need not be UTF-8.
    Bytes(Vec<u8>),
}

impl Val {
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

pub(crate) fn cell(column: &Column, row: usize) -> Val {
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
pub(crate) enum Bound {
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
pub(crate) fn bind(
    engine: &Engine,
    ctx: &SessionContext,
    expr: &Expr,
    resolve: &mut dyn FnMut(&Path) -> Result<usize>,
) -> Result<Bound> {
    bind_with(engine, ctx, expr, &mut |reference| match reference {
        Reference::Series(path) => resolve(path),
        Reference::Aggregate(..) => Err(EngineError::Semantic(
            "aggregate functions are not supported in WHERE clause".into(),
        )),
    })
}

/// What an expression names: a series, or an aggregate of series (in HAVING).
pub(crate) enum Reference<'a> {
    Series(&'a Path),
    Aggregate(&'a str, &'a Path),
}

/// Binds `expr`; `resolve` maps a series or aggregate to a row position.
pub(crate) fn bind_with(
    engine: &Engine,
    ctx: &SessionContext,
    expr: &Expr,
    resolve: &mut dyn FnMut(Reference<'_>) -> Result<usize>,
) -> Result<Bound> {
    let b = |e: &Expr, r: &mut dyn FnMut(Reference<'_>) -> Result<usize>| {
        bind_with(engine, ctx, e, r).map(Box::new)
    };
    // A date expression is a constant, computed once: `now() - 1d` does not move while the query runs.
    if let Some(t) = engine.date_expression(ctx, expr)? {
        return Ok(Bound::Const(Val::Int(t)));
    }
    Ok(match expr {
        Expr::Time => Bound::Time,
        Expr::Path(p) => Bound::Series(resolve(Reference::Series(p))?),
        Expr::Aggregate { function, path } => {
            Bound::Series(resolve(Reference::Aggregate(function, path))?)
        }
        Expr::Literal(l) => Bound::Const(literal_val(l)),
        Expr::DateTime(s) => Bound::Const(Val::Int(engine.parse_datetime(ctx, s)?)),
        Expr::Now => Bound::Const(Val::Int(engine.now())),
        Expr::Duration(d) => {
            return Err(EngineError::Semantic(format!(
                "the duration {d} may only be added to or subtracted from a datetime or now()"
            )))
        }
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
                items.push(bind_with(engine, ctx, item, resolve)?);
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

pub(crate) fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
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

/// SQL LIKE: `%` any run, `_` one character. Greedy with one backtrack point, so a pattern of many
/// `%` costs at most text × pattern steps (a recursive matcher is exponential in the number of `%`).
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    // After the last `%` seen: where the pattern resumes and where in the text that `%` stops.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(c) if *c == '_' || *c == t[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((resume, taken)) => {
                    pi = resume;
                    ti = taken + 1;
                    star = Some((resume, taken + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Whether comparison `op` holds between two values ordered `o`; `None` when `op` is not a
/// comparison. The one meaning of `=`, `!=`, `<`, `<=`, `>` and `>=` for rows and typed columns.
pub(crate) fn comparison_holds(op: BinaryOp, o: std::cmp::Ordering) -> Option<bool> {
    match op {
        BinaryOp::Eq => Some(o.is_eq()),
        BinaryOp::NotEq => Some(o.is_ne()),
        BinaryOp::Lt => Some(o.is_lt()),
        BinaryOp::LtEq => Some(o.is_le()),
        BinaryOp::Gt => Some(o.is_gt()),
        BinaryOp::GtEq => Some(o.is_ge()),
        _ => None,
    }
}

pub(crate) fn eval(e: &Bound, time: i64, row: &[Val]) -> Val {
    match e {
        Bound::Time => Val::Int(time),
        Bound::Series(i) => row.get(*i).cloned().unwrap_or(Val::Null),
        Bound::Const(v) => v.clone(),
        Bound::Not(x) => match eval(x, time, row) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Bound::Neg(x) => match eval(x, time, row) {
            Val::Int(i) => i
                .checked_neg()
                .map(Val::Int)
                .unwrap_or(Val::Float(-(i as f64))),
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
                B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => compare(&a, &b)
                    .and_then(|o| comparison_holds(*op, o))
                    .map(Val::Bool)
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
            // An overflowing result is exact enough as a double, and never wraps around.
            B::Plus => x
                .checked_add(*y)
                .map(Val::Int)
                .unwrap_or(Val::Float(*x as f64 + *y as f64)),
            B::Minus => x
                .checked_sub(*y)
                .map(Val::Int)
                .unwrap_or(Val::Float(*x as f64 - *y as f64)),
            B::Mul => x
                .checked_mul(*y)
                .map(Val::Int)
                .unwrap_or(Val::Float(*x as f64 * *y as f64)),
            B::Div if *y != 0 => x
                .checked_div(*y)
                .map(Val::Int)
                .unwrap_or(Val::Float(*x as f64 / *y as f64)),
            B::Mod if *y != 0 => Val::Int(x.checked_rem(*y).unwrap_or(0)),
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

/// A value as text (a TEXT column holding another type, e.g. `SELECT LAST` values).
pub(crate) fn render(v: &Val) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_sql_patterns_without_backtracking_blow_up() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(like("abc", "a_c"));
        assert!(like("abc", "%"));
        assert!(like("", "%%"));
        assert!(!like("abc", "a_"));
        assert!(!like("abc", "b%"));
        assert!(like("aXbXc", "a%b%c"));
        assert!(!like("aXbXd", "a%b%c"));
        // Exponential for a naive recursive matcher; linear-ish here.
        let text = "a".repeat(5000);
        assert!(!like(&text, &format!("{}b", "%a".repeat(40))));
    }

    #[test]
    fn integer_overflow_becomes_a_double_instead_of_wrapping() {
        assert_eq!(
            arith(&Val::Int(i64::MAX), BinaryOp::Plus, &Val::Int(1)),
            Val::Float(i64::MAX as f64 + 1.0)
        );
        assert_eq!(
            arith(&Val::Int(i64::MIN), BinaryOp::Div, &Val::Int(-1)),
            Val::Float(i64::MIN as f64 / -1.0)
        );
        assert_eq!(
            arith(&Val::Int(i64::MIN), BinaryOp::Mod, &Val::Int(-1)),
            Val::Int(0)
        );
        assert_eq!(
            arith(&Val::Int(7), BinaryOp::Minus, &Val::Int(9)),
            Val::Int(-2)
        );
    }
}
