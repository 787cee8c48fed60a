//! The time range a `WHERE` clause implies: its conjuncts that compare time with a constant narrow
//! the scanned range (`[lo, hi]`, inclusive), and a clause made only of them is applied as that range
//! and never evaluated again on rows. `DELETE … WHERE` takes its range from here too.

use duet_parser::{BinaryOp, Expr, Literal, UnaryOp};

use crate::engine::SessionContext;
use crate::{Engine, EngineError, Result};

/// A time constant as `WHERE` bounds read it; `None` for an expression that is not one.
pub(super) fn time_constant(
    engine: &Engine,
    ctx: &SessionContext,
    e: &Expr,
) -> Result<Option<i64>> {
    Ok(match e {
        e if e.is_date_expression() => engine.date_expression(ctx, e)?,
        Expr::Literal(Literal::String(s)) => engine.parse_datetime(ctx, s).ok(),
        e => integer_constant(e),
    })
}

/// An integer literal, possibly negated, as a time; `None` for anything else.
fn integer_constant(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(Literal::Integer(s)) => s.parse::<i64>().ok(),
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
    }
}

/// Whether the time range of `expr` ([`time_bounds`]) says all it says: a conjunction of
/// comparisons of time with constants. Such a condition is applied as the scanned range only, not
/// evaluated again on every row.
pub(super) fn is_time_range(engine: &Engine, ctx: &SessionContext, expr: &Expr) -> Result<bool> {
    is_range(expr, &|e| time_constant(engine, ctx, e))
}

/// The time range `[lo, hi]` implied by the conjuncts of `expr` that compare time with a constant.
pub(super) fn time_bounds(
    engine: &Engine,
    ctx: &SessionContext,
    expr: &Expr,
) -> Result<(i64, i64)> {
    range_of(expr, &|e| time_constant(engine, ctx, e))
}

/// Reads an expression as a time constant (or `None`).
type Constant<'a> = dyn Fn(&Expr) -> Result<Option<i64>> + 'a;

/// [`is_time_range`] with the constants read by `constant`.
fn is_range(expr: &Expr, constant: &Constant<'_>) -> Result<bool> {
    Ok(match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => is_range(left, constant)? && is_range(right, constant)?,
        Expr::Binary {
            left,
            op: BinaryOp::Eq | BinaryOp::Gt | BinaryOp::GtEq | BinaryOp::Lt | BinaryOp::LtEq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Time, other) | (other, Expr::Time) => constant(other)?.is_some(),
            _ => false,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
        } => {
            matches!(expr.as_ref(), Expr::Time)
                && constant(low)?.is_some()
                && constant(high)?.is_some()
        }
        _ => false,
    })
}

/// [`time_bounds`] with the constants read by `constant`.
fn range_of(expr: &Expr, constant: &Constant<'_>) -> Result<(i64, i64)> {
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => {
            let (a, b) = range_of(left, constant)?;
            let (c, d) = range_of(right, constant)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The WHERE clause of `SELECT s FROM root.sg.d WHERE <condition>`.
    fn condition(condition: &str) -> Expr {
        let sql = format!("SELECT s FROM root.sg.d WHERE {condition}");
        match crate::query::testing::select(&sql).condition {
            Some(c) => c,
            None => panic!("no condition in {sql}"),
        }
    }

    fn integers(e: &Expr) -> Result<Option<i64>> {
        Ok(integer_constant(e))
    }

    fn bounds(text: &str) -> (i64, i64) {
        range_of(&condition(text), &integers).unwrap()
    }

    fn is_pure_range(text: &str) -> bool {
        is_range(&condition(text), &integers).unwrap()
    }

    #[test]
    fn comparisons_either_way_round_narrow_the_range() {
        assert_eq!(bounds("time >= 10 and time < 20"), (10, 19));
        assert_eq!(bounds("10 < time and 20 >= time"), (11, 20));
        assert_eq!(bounds("time = 7"), (7, 7));
        assert_eq!(bounds("time between 3 and 9"), (3, 9));
        // Conjuncts intersect; one about values leaves the range whole.
        assert_eq!(bounds("time > 5 and time > 8 and s > 100"), (9, i64::MAX));
        assert_eq!(bounds("s > 100"), (i64::MIN, i64::MAX));
        // A disjunction cannot narrow anything.
        assert_eq!(bounds("time < 5 or time > 8"), (i64::MIN, i64::MAX));
    }

    #[test]
    fn the_ends_of_the_i64_range_neither_wrap_nor_overflow() {
        assert_eq!(bounds("time >= -9223372036854775808"), (i64::MIN, i64::MAX));
        assert_eq!(bounds("time > -5"), (-4, i64::MAX));
        // Nothing is after the last time or before the first: an empty range.
        let (lo, hi) = bounds("time > 9223372036854775807");
        assert!(lo > hi);
        let (lo, hi) = bounds("time < -9223372036854775808");
        assert!(lo > hi);
    }

    #[test]
    fn only_conjunctions_of_time_comparisons_are_ranges() {
        assert!(is_pure_range("time >= 1 and time <= 10"));
        assert!(is_pure_range("time between 1 and 10"));
        assert!(!is_pure_range("time not between 1 and 10"));
        assert!(!is_pure_range("time >= 1 and s > 0"));
        assert!(!is_pure_range("time < 1 or time > 10"));
        assert!(!is_pure_range("time != 5"));
    }

    #[test]
    fn delete_takes_time_conditions_only() {
        assert!(only_time(&condition("time >= 1 and time <= 10")));
        assert!(!only_time(&condition("time >= 1 and s <= 10")));
        assert!(!only_time(&condition("time < 1 or time > 10")));
        assert!(!only_time(&condition("time not between 1 and 10")));
    }
}
