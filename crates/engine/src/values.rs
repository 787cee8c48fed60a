//! Values as clients write them — SQL literals, strings of `insertStringRecord`, typed record values —
//! and their conversion to a series' type, with IoTDB's inference for series that do not exist yet
//! (integers → INT64, decimals → DOUBLE, true/false → BOOLEAN, anything else → TEXT).

use duet_parser::Literal;
use duet_proto::tablet::RecordValue;
use duet_proto::types::{Column, ColumnValues, DataType};

use crate::{EngineError, Result};

/// One written cell before it has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    /// An integer as written.
    Int(String),
    /// A decimal number as written.
    Float(String),
    /// A quoted string.
    Str(String),
    Blob(Vec<u8>),
    /// A string whose type must be inferred from its content (`insertStringRecord`).
    Unparsed(String),
    /// An already typed value (`insertRecord`).
    Typed(RecordValue),
}

impl From<&Literal> for Cell {
    fn from(literal: &Literal) -> Cell {
        match literal {
            Literal::Null => Cell::Null,
            Literal::Boolean(b) => Cell::Bool(*b),
            Literal::Integer(s) => Cell::Int(s.clone()),
            Literal::Float(s) => Cell::Float(s.clone()),
            Literal::String(s) => Cell::Str(s.clone()),
            Literal::Blob(b) => Cell::Blob(b.clone()),
        }
    }
}

/// The type IoTDB infers for a new series from a written cell; `None` for nulls.
pub fn infer(cell: &Cell) -> Option<DataType> {
    match cell {
        Cell::Null => None,
        Cell::Bool(_) => Some(DataType::Boolean),
        Cell::Int(_) => Some(DataType::Int64),
        Cell::Float(_) => Some(DataType::Double),
        Cell::Str(_) => Some(DataType::Text),
        Cell::Blob(_) => Some(DataType::Blob),
        Cell::Typed(v) => Some(v.data_type()),
        Cell::Unparsed(s) => {
            let t = s.trim();
            Some(
                if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
                    DataType::Boolean
                } else if t.parse::<i64>().is_ok() {
                    DataType::Int64
                } else if t.parse::<f64>().is_ok_and(f64::is_finite)
                    || t.eq_ignore_ascii_case("nan")
                {
                    DataType::Double
                } else {
                    DataType::Text
                },
            )
        }
    }
}

fn mismatch(series: &str, target: DataType, cell: &Cell) -> EngineError {
    let given = infer(cell).map(|t| t.name()).unwrap_or("NULL");
    EngineError::TypeMismatch(format!(
        "data type of {series} is not consistent, registered type {target}, inserting type {given}, value {}",
        describe(cell)
    ))
}

fn describe(cell: &Cell) -> String {
    match cell {
        Cell::Null => "null".into(),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(s) | Cell::Float(s) | Cell::Str(s) | Cell::Unparsed(s) => s.clone(),
        Cell::Blob(b) => format!("{} bytes", b.len()),
        Cell::Typed(v) => format!("{v:?}"),
    }
}

/// `yyyy-mm-dd` (or `yyyymmdd` as an integer) → IoTDB's DATE int `yyyymmdd`.
fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (10000101..=99991231).contains(&n).then_some(n);
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(d.year() * 10000 + i32::try_from(d.month()).ok()? * 100 + i32::try_from(d.day()).ok()?)
}

/// A BLOB written as text: `X'0a0b'` or `0x0a0b` (IoTDB's literal forms).
fn blob_literal(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    let hex = t
        .strip_prefix("X'")
        .or_else(|| t.strip_prefix("x'"))
        .and_then(|h| h.strip_suffix('\''))
        .or_else(|| t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")))?;
    hex::decode(hex).ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Converts cells to a column of `target`; a null cell becomes a null slot.
pub fn to_column(series: &str, target: DataType, cells: &[Cell]) -> Result<Column> {
    let n = cells.len();
    let mut nulls = vec![false; n];
    let mut values = ColumnValues::empty_for(target);
    for (i, cell) in cells.iter().enumerate() {
        if matches!(cell, Cell::Null) {
            nulls[i] = true;
        }
        let bad = || mismatch(series, target, cell);
        match (&mut values, target) {
            (ColumnValues::Boolean(v), _) => v.push(match cell {
                Cell::Null => false,
                Cell::Bool(b) => *b,
                Cell::Unparsed(s) | Cell::Str(s) => parse_bool(s).ok_or_else(bad)?,
                Cell::Typed(RecordValue::Boolean(b)) => *b,
                _ => return Err(bad()),
            }),
            (ColumnValues::Int32(v), DataType::Date) => v.push(match cell {
                Cell::Null => 0,
                Cell::Str(s) | Cell::Unparsed(s) | Cell::Int(s) => parse_date(s).ok_or_else(bad)?,
                Cell::Typed(RecordValue::Date(d)) | Cell::Typed(RecordValue::Int32(d)) => *d,
                _ => return Err(bad()),
            }),
            (ColumnValues::Int32(v), _) => v.push(match cell {
                Cell::Null => 0,
                Cell::Int(s) | Cell::Unparsed(s) => s.trim().parse::<i32>().map_err(|_| bad())?,
                Cell::Typed(RecordValue::Int32(x)) => *x,
                _ => return Err(bad()),
            }),
            (ColumnValues::Int64(v), _) => v.push(match cell {
                Cell::Null => 0,
                Cell::Int(s) | Cell::Unparsed(s) => s.trim().parse::<i64>().map_err(|_| bad())?,
                Cell::Typed(RecordValue::Int64(x)) | Cell::Typed(RecordValue::Timestamp(x)) => *x,
                Cell::Typed(RecordValue::Int32(x)) => i64::from(*x),
                _ => return Err(bad()),
            }),
            (ColumnValues::Float(v), _) => v.push(match cell {
                Cell::Null => 0.0,
                Cell::Int(s) | Cell::Float(s) | Cell::Unparsed(s) => {
                    s.trim().parse::<f32>().map_err(|_| bad())?
                }
                Cell::Typed(RecordValue::Float(x)) => *x,
                _ => return Err(bad()),
            }),
            (ColumnValues::Double(v), _) => v.push(match cell {
                Cell::Null => 0.0,
                Cell::Int(s) | Cell::Float(s) | Cell::Unparsed(s) => {
                    s.trim().parse::<f64>().map_err(|_| bad())?
                }
                Cell::Typed(RecordValue::Double(x)) => *x,
                Cell::Typed(RecordValue::Float(x)) => f64::from(*x),
                _ => return Err(bad()),
            }),
            (ColumnValues::Binary(v), _) => v.push(match cell {
                Cell::Null => Vec::new(),
                Cell::Str(s) | Cell::Unparsed(s) if target != DataType::Blob => {
                    s.clone().into_bytes()
                }
                Cell::Blob(b) if target == DataType::Blob => b.clone(),
                Cell::Str(s) if target == DataType::Blob => s.clone().into_bytes(),
                Cell::Unparsed(s) if target == DataType::Blob => {
                    blob_literal(s).unwrap_or_else(|| s.clone().into_bytes())
                }
                Cell::Typed(RecordValue::Binary(_, b)) => b.clone(),
                // Numbers and booleans written into a text series are stored as their text (IoTDB does).
                Cell::Int(s) | Cell::Float(s) if target != DataType::Blob => s.clone().into_bytes(),
                Cell::Bool(b) if target != DataType::Blob => b.to_string().into_bytes(),
                _ => return Err(bad()),
            }),
        }
    }
    let nulls = nulls.iter().any(|b| *b).then_some(nulls);
    Ok(Column {
        data_type: target,
        nulls,
        values,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn inference_follows_iotdb_defaults() {
        assert_eq!(infer(&Cell::Int("5".into())), Some(DataType::Int64));
        assert_eq!(infer(&Cell::Float("5.5".into())), Some(DataType::Double));
        assert_eq!(
            infer(&Cell::Unparsed("true".into())),
            Some(DataType::Boolean)
        );
        assert_eq!(infer(&Cell::Unparsed("12".into())), Some(DataType::Int64));
        assert_eq!(
            infer(&Cell::Unparsed("1.5e3".into())),
            Some(DataType::Double)
        );
        assert_eq!(infer(&Cell::Unparsed("abc".into())), Some(DataType::Text));
        assert_eq!(infer(&Cell::Null), None);
    }

    #[test]
    fn conversion_checks_types_and_ranges() {
        let c = to_column("s", DataType::Int32, &[Cell::Int("7".into()), Cell::Null]).unwrap();
        assert_eq!(c.values, ColumnValues::Int32(vec![7, 0]));
        assert!(c.is_null(1));
        assert!(to_column("s", DataType::Int32, &[Cell::Int("99999999999".into())]).is_err());
        assert!(to_column("s", DataType::Int64, &[Cell::Str("x".into())]).is_err());
        let d = to_column("s", DataType::Date, &[Cell::Str("2024-01-02".into())]).unwrap();
        assert_eq!(d.values, ColumnValues::Int32(vec![20240102]));
        let f = to_column("s", DataType::Double, &[Cell::Int("3".into())]).unwrap();
        assert_eq!(f.values, ColumnValues::Double(vec![3.0]));
    }
}
