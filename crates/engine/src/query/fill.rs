//! `FILL(PREVIOUS | LINEAR | constant)` over result rows, as IoTDB 2.0 fills them: only from the values
//! in the result itself (never from data before the query's range or outside its windows), each column
//! by itself, and only columns whose type the method applies to (the others stay as they are, no
//! error): PREVIOUS every type, LINEAR the numeric ones, a constant the types it converts to (an
//! integer: INT32 if it fits, INT64, FLOAT, DOUBLE, TIMESTAMP, DATE if it is a valid yyyyMMdd, and as
//! text TEXT and STRING; a decimal: FLOAT, DOUBLE and as text TEXT, STRING; a string: TEXT, STRING; a
//! boolean: BOOLEAN and as text TEXT, STRING).
//!
//! PREVIOUS and constants fill a row as it arrives. LINEAR needs the next value of the column, so a row
//! with a gap waits (in order, behind the rows before it) until every column it waits for has its next
//! value or the result ends (then the gap stays null); the waiting rows are charged to the query's
//! budget by the caller, so a long gap in a long result fails with the budget's error instead of
//! growing without limit.

use std::collections::VecDeque;

use duet_parser::{FillMethod, Literal};
use duet_proto::types::DataType;

use super::expr::Val;
use crate::time::{CalendarDuration, Precision, Zone};
use crate::{EngineError, Result};

/// A result row: its time, cells, and the bytes it was charged as.
pub(crate) type Row = (i64, Vec<Val>, usize);

/// How far back a previous value may be and still fill (`FILL(PREVIOUS, 2m)`).
#[derive(Debug, Clone)]
pub(crate) enum TimeBound {
    Fixed(i64),
    /// With calendar months: `prev + months` in the session's zone.
    Calendar {
        duration: CalendarDuration,
        precision: Precision,
        zone: Zone,
    },
}

impl TimeBound {
    /// Whether `time` is within the bound of `previous` (either direction: ORDER BY TIME DESC reads
    /// the previous row from later times).
    fn admits(&self, previous: i64, time: i64) -> bool {
        match self {
            TimeBound::Fixed(bound) => {
                (i128::from(time) - i128::from(previous)).abs() <= i128::from(*bound)
            }
            TimeBound::Calendar {
                duration,
                precision,
                zone,
            } => {
                let sign: i128 = if time >= previous { 1 } else { -1 };
                let months = sign * i128::from(duration.months);
                let fixed = sign * i128::from(duration.fixed);
                match precision.calendar_add(previous, months, fixed, zone) {
                    Ok(edge) if sign > 0 => time <= edge,
                    Ok(edge) => time >= edge,
                    // The edge lies past the timestamp range: every time is within it.
                    Err(_) => true,
                }
            }
        }
    }
}

/// What one column does with its nulls.
#[derive(Debug, Clone, PartialEq)]
enum ColumnFill {
    Keep,
    Previous,
    Linear { integer: bool },
    Constant(Val),
}

/// Fills rows in order; see the module documentation.
pub(crate) struct Filler {
    columns: Vec<ColumnFill>,
    bound: Option<TimeBound>,
    /// Per column, its last non-null value and time.
    previous: Vec<Option<(i64, Val)>>,
    /// Rows not yet handed out (only LINEAR keeps any), the first with id `first_id`.
    queue: VecDeque<Row>,
    /// Per queued row, how many of its columns wait for a next value.
    waiting: VecDeque<usize>,
    first_id: u64,
    /// Per column, the ids of the queued rows whose cell waits for the column's next value.
    gaps: Vec<Vec<u64>>,
}

/// Whether a literal integer is a valid DATE (yyyyMMdd).
fn is_date(value: i64) -> bool {
    let (year, month, day) = (value / 10_000, value / 100 % 100, value % 100);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1000..=9999).contains(&year) && (1..=days).contains(&day)
}

/// A double as Java prints it for the usual magnitudes (`2.0`, not `2`).
fn java_double(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e7 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// The value a constant fills a column of type `data_type` with, or `None` when it does not apply.
fn constant_for(literal: &Literal, data_type: DataType) -> Result<Option<Val>> {
    let textual = matches!(data_type, DataType::Text | DataType::String);
    Ok(match literal {
        Literal::Integer(text) => {
            let value = text.parse::<i64>().map_err(|_| {
                EngineError::Semantic(format!("the FILL constant {text} does not fit in 64 bits"))
            })?;
            match data_type {
                DataType::Int32 => i32::try_from(value).ok().map(|_| Val::Int(value)),
                DataType::Date => {
                    (i32::try_from(value).is_ok() && is_date(value)).then_some(Val::Int(value))
                }
                DataType::Int64 | DataType::Timestamp => Some(Val::Int(value)),
                DataType::Float | DataType::Double => Some(Val::Float(value as f64)),
                _ if textual => Some(Val::Str(value.to_string())),
                _ => None,
            }
        }
        Literal::Float(text) => {
            let value = text.parse::<f64>().map_err(|_| {
                EngineError::Semantic(format!("the FILL constant {text} is not a number"))
            })?;
            match data_type {
                DataType::Float | DataType::Double => Some(Val::Float(value)),
                _ if textual => Some(Val::Str(java_double(value))),
                _ => None,
            }
        }
        Literal::String(text) => textual.then(|| Val::Str(text.clone())),
        Literal::Boolean(value) => match data_type {
            DataType::Boolean => Some(Val::Bool(*value)),
            _ if textual => Some(Val::Str(value.to_string())),
            _ => None,
        },
        Literal::Null | Literal::Blob(_) => None,
    })
}

impl Filler {
    /// A filler for columns of `types`; the first `skip` columns (Device) are never filled.
    pub(crate) fn new(
        method: &FillMethod,
        bound: Option<TimeBound>,
        types: &[DataType],
        skip: usize,
    ) -> Result<Filler> {
        let mut columns = Vec::with_capacity(types.len());
        for (index, data_type) in types.iter().enumerate() {
            columns.push(if index < skip {
                ColumnFill::Keep
            } else {
                match method {
                    FillMethod::Previous => ColumnFill::Previous,
                    FillMethod::Linear => match data_type {
                        DataType::Int32 | DataType::Int64 => ColumnFill::Linear { integer: true },
                        DataType::Float | DataType::Double => ColumnFill::Linear { integer: false },
                        _ => ColumnFill::Keep,
                    },
                    FillMethod::Constant(literal) => match constant_for(literal, *data_type)? {
                        Some(value) => ColumnFill::Constant(value),
                        None => ColumnFill::Keep,
                    },
                }
            });
        }
        Ok(Filler {
            previous: vec![None; columns.len()],
            gaps: vec![Vec::new(); columns.len()],
            columns,
            bound,
            queue: VecDeque::new(),
            waiting: VecDeque::new(),
            first_id: 0,
        })
    }

    /// Takes the next row; rows whose cells are all settled move to `out`, in order.
    pub(crate) fn push(&mut self, row: Row, out: &mut VecDeque<Row>) {
        let (time, mut cells, bytes) = row;
        let id = self.first_id + self.queue.len() as u64;
        let mut waits = 0usize;
        for (c, fill) in self.columns.iter().enumerate() {
            let Some(cell) = cells.get_mut(c) else {
                break;
            };
            if *cell != Val::Null {
                if let (ColumnFill::Linear { integer }, Some(value)) = (fill, cell.as_f64()) {
                    if let Some((t0, v0)) = &self.previous[c] {
                        let v0 = v0.as_f64().unwrap_or(value);
                        for gap in self.gaps[c].drain(..) {
                            let Some(index) = gap.checked_sub(self.first_id) else {
                                continue;
                            };
                            let index = index as usize;
                            if let Some((t, gap_cells, _)) = self.queue.get_mut(index) {
                                let share = (*t as f64 - *t0 as f64) / (time as f64 - *t0 as f64);
                                let filled = v0 + (value - v0) * share;
                                gap_cells[c] = if *integer {
                                    Val::Int(filled.trunc() as i64)
                                } else {
                                    Val::Float(filled)
                                };
                            }
                            if let Some(w) = self.waiting.get_mut(index) {
                                *w -= 1;
                            }
                        }
                    }
                }
                self.previous[c] = Some((time, cell.clone()));
                continue;
            }
            match fill {
                ColumnFill::Keep => {}
                ColumnFill::Constant(value) => *cell = value.clone(),
                ColumnFill::Previous => {
                    if let Some((t0, v0)) = &self.previous[c] {
                        if self.bound.as_ref().is_none_or(|b| b.admits(*t0, time)) {
                            *cell = v0.clone();
                        }
                    }
                }
                ColumnFill::Linear { .. } => {
                    // Without a previous value the gap can never be filled.
                    if self.previous[c].is_some() {
                        self.gaps[c].push(id);
                        waits += 1;
                    }
                }
            }
        }
        self.queue.push_back((time, cells, bytes));
        self.waiting.push_back(waits);
        self.release(out);
    }

    /// The rows that wait for nothing, from the front.
    fn release(&mut self, out: &mut VecDeque<Row>) {
        while self.waiting.front() == Some(&0) {
            self.waiting.pop_front();
            if let Some(row) = self.queue.pop_front() {
                out.push_back(row);
            }
            self.first_id += 1;
        }
    }

    /// The end of the rows (or of a device's rows): the gaps left stay null, every row moves to `out`,
    /// and the next row starts afresh.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<Row>) {
        for gaps in &mut self.gaps {
            gaps.clear();
        }
        for w in &mut self.waiting {
            *w = 0;
        }
        self.release(out);
        for previous in &mut self.previous {
            *previous = None;
        }
    }
}

/// The bound of `FILL(PREVIOUS, duration)` in the engine's precision.
pub(crate) fn time_bound(
    precision: Precision,
    text: &str,
    zone: impl FnOnce() -> Result<Zone>,
) -> Result<TimeBound> {
    let duration = precision
        .calendar_duration(text)
        .map_err(EngineError::Semantic)?;
    if duration.months == 0 {
        return Ok(TimeBound::Fixed(duration.fixed));
    }
    Ok(TimeBound::Calendar {
        duration,
        precision,
        zone: zone()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn run(filler: &mut Filler, rows: Vec<(i64, Vec<Val>)>) -> Vec<(i64, Vec<Val>)> {
        let mut out = VecDeque::new();
        for (time, cells) in rows {
            filler.push((time, cells, 0), &mut out);
        }
        filler.finish(&mut out);
        out.into_iter().map(|(t, c, _)| (t, c)).collect()
    }

    use Val::{Float as F, Int as I, Null as N};

    #[test]
    fn previous_fills_from_the_result_only_and_respects_its_bound() {
        let types = [DataType::Double, DataType::Text];
        let mut filler = Filler::new(&FillMethod::Previous, None, &types, 0).unwrap();
        let rows = vec![
            (1, vec![N, N]),
            (2, vec![F(1.0), Val::Str("a".into())]),
            (3, vec![N, N]),
            (9, vec![N, N]),
        ];
        let filled = run(&mut filler, rows.clone());
        assert_eq!(filled[0].1, vec![N, N], "nothing before the first value");
        assert_eq!(filled[2].1, vec![F(1.0), Val::Str("a".into())]);
        assert_eq!(filled[3].1, vec![F(1.0), Val::Str("a".into())]);
        let mut bounded =
            Filler::new(&FillMethod::Previous, Some(TimeBound::Fixed(2)), &types, 0).unwrap();
        let filled = run(&mut bounded, rows);
        assert_eq!(filled[2].1[0], F(1.0), "1 away, within 2");
        assert_eq!(filled[3].1[0], N, "7 away, past 2");
    }

    #[test]
    fn linear_interpolates_numeric_columns_and_leaves_open_ends_and_text() {
        let types = [DataType::Double, DataType::Int32, DataType::Text];
        let mut filler = Filler::new(&FillMethod::Linear, None, &types, 0).unwrap();
        let filled = run(
            &mut filler,
            vec![
                (0, vec![N, I(0), N]),
                (10, vec![F(1.0), N, N]),
                (15, vec![N, N, Val::Str("x".into())]),
                (20, vec![F(2.0), I(5), N]),
                (30, vec![N, N, N]),
            ],
        );
        let column = |c: usize| filled.iter().map(|r| r.1[c].clone()).collect::<Vec<_>>();
        assert_eq!(column(0), vec![N, F(1.0), F(1.5), F(2.0), N]);
        // Integers are interpolated and truncated toward zero: 0 + 5·10/20 = 2.5 → 2.
        assert_eq!(column(1), vec![I(0), I(2), I(3), I(5), N]);
        assert_eq!(column(2), vec![N, N, Val::Str("x".into()), N, N]);
        assert_eq!(
            filled.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 10, 15, 20, 30],
            "rows keep their order while they wait"
        );
    }

    #[test]
    fn linear_hands_rows_out_as_soon_as_their_gaps_close() {
        let types = [DataType::Double];
        let mut filler = Filler::new(&FillMethod::Linear, None, &types, 0).unwrap();
        let mut out = VecDeque::new();
        filler.push((1, vec![F(0.0)], 0), &mut out);
        filler.push((2, vec![N], 0), &mut out);
        filler.push((3, vec![N], 0), &mut out);
        assert_eq!(out.len(), 1, "the gap rows wait for the next value");
        filler.push((5, vec![F(4.0)], 0), &mut out);
        let values: Vec<Val> = out.iter().map(|r| r.1[0].clone()).collect();
        assert_eq!(values, vec![F(0.0), F(1.0), F(2.0), F(4.0)]);
    }

    #[test]
    fn constants_fill_only_the_types_they_convert_to() {
        let types = [
            DataType::Int32,
            DataType::Int64,
            DataType::Double,
            DataType::Text,
            DataType::Boolean,
            DataType::Date,
        ];
        let nulls = vec![N, N, N, N, N, N];
        let cases = [
            (
                Literal::Integer("7".into()),
                vec![I(7), I(7), F(7.0), Val::Str("7".into()), N, N],
            ),
            (
                Literal::Integer("3000000000".into()),
                vec![
                    N,
                    I(3_000_000_000),
                    F(3e9),
                    Val::Str("3000000000".into()),
                    N,
                    N,
                ],
            ),
            (
                Literal::Integer("20240229".into()),
                vec![
                    I(20240229),
                    I(20240229),
                    F(20240229.0),
                    Val::Str("20240229".into()),
                    N,
                    I(20240229),
                ],
            ),
            (
                Literal::Float("2.0".into()),
                vec![N, N, F(2.0), Val::Str("2.0".into()), N, N],
            ),
            (
                Literal::String("x".into()),
                vec![N, N, N, Val::Str("x".into()), N, N],
            ),
            (
                Literal::Boolean(true),
                vec![N, N, N, Val::Str("true".into()), Val::Bool(true), N],
            ),
        ];
        for (literal, expected) in cases {
            let mut filler =
                Filler::new(&FillMethod::Constant(literal.clone()), None, &types, 0).unwrap();
            let filled = run(&mut filler, vec![(1, nulls.clone())]);
            assert_eq!(filled[0].1, expected, "{literal:?}");
        }
    }

    #[test]
    fn skipped_columns_and_finish_restart_the_fill() {
        let types = [DataType::Text, DataType::Int64];
        let mut filler = Filler::new(&FillMethod::Previous, None, &types, 1).unwrap();
        let mut out = VecDeque::new();
        filler.push((1, vec![N, I(1)], 0), &mut out);
        filler.push((2, vec![N, N], 0), &mut out);
        filler.finish(&mut out);
        filler.push((3, vec![N, N], 0), &mut out);
        let values: Vec<Vec<Val>> = out.into_iter().map(|r| r.1).collect();
        assert_eq!(values, vec![vec![N, I(1)], vec![N, I(1)], vec![N, N]]);
    }
}
