//! `COUNT_IF(predicate, keep)`: the number of runs of consecutive rows where a predicate holds whose
//! length meets the keep condition (IoTDB's `CountIfAccumulator`). Unlike the other aggregates it reads
//! rows of several series at once, so it has its own state per window and column, fed by the row path.
//!
//! **Invariants:** a row is a time at which at least one of the predicate's series has a point (rows
//! of other selected series do not exist for it); a row where the predicate is null neither counts nor
//! breaks a run unless `'ignoreNull'='false'`, where it ends the run; a run is counted once, when it
//! ends (a false row, a null row that breaks it, or the end of its window).

use duet_parser::{BinaryOp, Expr, Keep, Path, UnaryOp};

use super::expr::{eval, Bound, Val};
use crate::schema::SeriesInfo;
use crate::{EngineError, Result};

/// One COUNT_IF column, bound to the part's series.
#[derive(Debug, Clone)]
pub(crate) struct CountIfSpec {
    pub(crate) predicate: Bound,
    /// The part's series the predicate reads: a row exists for it where one of them has a point.
    pub(crate) inputs: Vec<usize>,
    pub(crate) keep: Keep,
    pub(crate) ignore_null: bool,
}

/// The run being counted and the runs counted so far, in one window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Runs {
    current: u64,
    counted: i64,
}

impl Runs {
    /// Takes in one row (`row` holds the part's output series at `time`).
    pub(crate) fn add(&mut self, spec: &CountIfSpec, time: i64, row: &[Val]) {
        if spec
            .inputs
            .iter()
            .all(|i| row.get(*i).is_none_or(|v| *v == Val::Null))
        {
            return;
        }
        match eval(&spec.predicate, time, row) {
            Val::Bool(true) => self.current += 1,
            Val::Null if spec.ignore_null => {}
            _ => self.end_run(spec),
        }
    }

    fn end_run(&mut self, spec: &CountIfSpec) {
        if self.current > 0 && spec.keep.holds(self.current) {
            self.counted += 1;
        }
        self.current = 0;
    }

    /// The count once the window's rows are all in.
    pub(crate) fn result(mut self, spec: &CountIfSpec) -> Val {
        self.end_run(spec);
        Val::Int(self.counted)
    }
}

/// The distinct series paths of `expr`, in order of appearance.
pub(crate) fn paths_of(expr: &Expr) -> Result<Vec<Path>> {
    fn walk(e: &Expr, out: &mut Vec<Path>) -> Result<()> {
        match e {
            Expr::Path(p) => {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            Expr::Unary { expr, .. } => walk(expr, out)?,
            Expr::Binary { left, right, .. } => {
                walk(left, out)?;
                walk(right, out)?;
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                walk(expr, out)?;
                walk(low, out)?;
                walk(high, out)?;
            }
            Expr::InList { expr, list, .. } => {
                walk(expr, out)?;
                for item in list {
                    walk(item, out)?;
                }
            }
            Expr::IsNull { expr, .. } | Expr::Like { expr, .. } => walk(expr, out)?,
            Expr::Aggregate { .. } => {
                return Err(EngineError::Semantic(
                    "COUNT_IF's predicate cannot contain an aggregate".into(),
                ))
            }
            Expr::Time | Expr::Literal(_) | Expr::DateTime(_) | Expr::Now | Expr::Duration(_) => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(expr, &mut out)?;
    Ok(out)
}

/// Every choice of one series per path (`matches[i]` are the series path `i` matches), in the
/// order IoTDB lists them: the first path varies slowest. At most `limit` choices.
pub(crate) fn combinations(
    matches: &[Vec<SeriesInfo>],
    limit: usize,
) -> Result<Vec<Vec<SeriesInfo>>> {
    let mut out: Vec<Vec<SeriesInfo>> = vec![Vec::new()];
    for options in matches {
        let mut next = Vec::with_capacity(out.len().saturating_mul(options.len()));
        for prefix in &out {
            for s in options {
                if next.len() >= limit {
                    return Err(EngineError::Semantic(format!(
                        "COUNT_IF's predicate expands to more than {limit} combinations of series; name the series more narrowly"
                    )));
                }
                let mut chosen = prefix.clone();
                chosen.push(s.clone());
                next.push(chosen);
            }
        }
        out = next;
    }
    Ok(out)
}

/// The column header IoTDB gives: `count_if(root.db.d1.s1 = 0 & root.db.d1.s2 = 0, 3)` (`function` as
/// written: `Count_if(...)` for `select Count_if(...)`), with the
/// predicate's paths replaced by `shown` (the chosen series' paths; under GROUP BY LEVEL their level
/// paths; under ALIGN BY DEVICE the measurements as written) and `&`, `|`, `!` for AND, OR, NOT (the
/// operand of `!` in parentheses unless it is a path or a constant, as IoTDB prints it).
pub(crate) fn header(
    function: &str,
    predicate: &Expr,
    paths: &[Path],
    shown: &[String],
    keep: Keep,
    ignore_null: Option<bool>,
) -> String {
    let mut text = format!("{function}({}, {keep}", render(predicate, paths, shown, 0));
    if let Some(ignore) = ignore_null {
        text.push_str(&format!(", \"ignoreNull\"=\"{ignore}\""));
    }
    text.push(')');
    text
}

/// The sum of COUNT_IF's counts over several choices of series (GROUP BY LEVEL merges the choices
/// whose headers agree, as IoTDB adds their partial counts).
pub(crate) fn merged_count(counts: impl IntoIterator<Item = Val>) -> Val {
    let mut total = 0i64;
    for count in counts {
        if let Val::Int(n) = count {
            total = total.saturating_add(n);
        }
    }
    Val::Int(total)
}

fn render(e: &Expr, paths: &[Path], shown: &[String], outer: u8) -> String {
    match e {
        Expr::Path(p) => paths
            .iter()
            .position(|q| q == p)
            .and_then(|i| shown.get(i))
            .map_or_else(|| p.to_string(), |s| s.clone()),
        Expr::Binary { left, op, right } => {
            let precedence = op.precedence();
            let symbol = match op {
                BinaryOp::And => "&".to_string(),
                BinaryOp::Or => "|".to_string(),
                other => other.symbol().to_string(),
            };
            let text = format!(
                "{} {symbol} {}",
                render(left, paths, shown, precedence),
                render(right, paths, shown, precedence + 1)
            );
            if precedence < outer {
                format!("({text})")
            } else {
                text
            }
        }
        Expr::Unary {
            op: UnaryOp::Not,
            expr,
        } => match &**expr {
            Expr::Path(_) | Expr::Literal(_) => format!("!{}", render(expr, paths, shown, 0)),
            _ => format!("!({})", render(expr, paths, shown, 0)),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn spec(keep: Keep, ignore_null: bool) -> CountIfSpec {
        // Row: [s1, s2]; predicate s1 = 0 AND s2 = 0.
        let eq0 = |i| {
            Bound::Binary(
                Box::new(Bound::Series(i)),
                BinaryOp::Eq,
                Box::new(Bound::Const(Val::Int(0))),
            )
        };
        CountIfSpec {
            predicate: Bound::Binary(Box::new(eq0(0)), BinaryOp::And, Box::new(eq0(1))),
            inputs: vec![0, 1],
            keep,
            ignore_null,
        }
    }

    /// IoTDB's documented example: s1 = 0, null, 0, 0, 1, 1, 1, 0, 0, 0 and s2 = 0 throughout.
    fn iotdb_example(spec: &CountIfSpec) -> Val {
        let s1 = [
            Some(0),
            None,
            Some(0),
            Some(0),
            Some(1),
            Some(1),
            Some(1),
            Some(0),
            Some(0),
            Some(0),
        ];
        let mut runs = Runs::default();
        for (t, v) in s1.iter().enumerate() {
            let row = [v.map_or(Val::Null, Val::Int), Val::Int(0)];
            runs.add(spec, t as i64 + 1, &row);
        }
        runs.result(spec)
    }

    #[test]
    fn the_documented_example_counts_as_iotdb_does() {
        let three = Keep {
            op: None,
            threshold: 3,
        };
        assert_eq!(iotdb_example(&spec(three, true)), Val::Int(2));
        // A null row ends the first run (1 row, then 2 rows): only the last run is long enough.
        assert_eq!(iotdb_example(&spec(three, false)), Val::Int(1));
        let below_three = Keep {
            op: Some(BinaryOp::Lt),
            threshold: 3,
        };
        assert_eq!(iotdb_example(&spec(below_three, false)), Val::Int(2));
        assert_eq!(iotdb_example(&spec(below_three, true)), Val::Int(0));
    }

    #[test]
    fn rows_where_none_of_its_series_has_a_point_do_not_exist_for_it() {
        let s = spec(
            Keep {
                op: Some(BinaryOp::Eq),
                threshold: 2,
            },
            false,
        );
        let mut runs = Runs::default();
        runs.add(&s, 1, &[Val::Int(0), Val::Int(0), Val::Int(5)]);
        // Another selected series' row: not a row of the predicate, so it breaks nothing.
        runs.add(&s, 2, &[Val::Null, Val::Null, Val::Int(6)]);
        runs.add(&s, 3, &[Val::Int(0), Val::Int(0), Val::Null]);
        assert_eq!(runs.result(&s), Val::Int(1));
    }

    #[test]
    fn merged_counts_add_up_and_a_header_shows_what_it_is_given() {
        assert_eq!(
            merged_count([Val::Int(2), Val::Int(0), Val::Int(1), Val::Int(1)]),
            Val::Int(4)
        );
        assert_eq!(merged_count([]), Val::Int(0));
        let select =
            crate::query::testing::select("SELECT count_if(s1 = 0 & !s2, 3) FROM root.db.*");
        let Some(duet_parser::SelectItem::CountIf {
            predicate, keep, ..
        }) = select.items.first()
        else {
            panic!("no COUNT_IF in {select}");
        };
        let paths = paths_of(predicate).unwrap();
        let shown = ["root.db.*.s1".to_string(), "root.db.*.s2".to_string()];
        assert_eq!(
            header("count_if", predicate, &paths, &shown, *keep, Some(false)),
            "count_if(root.db.*.s1 = 0 & !root.db.*.s2, 3, \"ignoreNull\"=\"false\")"
        );
    }
}
