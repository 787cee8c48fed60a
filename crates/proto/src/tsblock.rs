//! The TsBlock encoding of query results (reference §6.2): what `queryResult` elements carry.
//!
//! Only the encodings the Python client can read are produced: 0 (bytes, BOOLEAN), 1 (INT32/FLOAT/DATE),
//! 2 (INT64/DOUBLE/TIMESTAMP and the time column) and 3 (binary). Header type bytes are physical types;
//! the logical type travels separately in `dataTypeList`. Null bitmaps are MSB-first.

use bytes::BufMut;

use crate::reader::ByteReader;
use crate::types::{Column, ColumnValues, DataType};
use crate::{ProtoError, Result};

/// Rows per TsBlock that the reference server uses, and that keeps blocks well under the frame limit.
pub const DEFAULT_ROWS_PER_BLOCK: usize = 1000;

/// A decoded TsBlock: a time column plus value columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct TsBlock {
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
}

impl TsBlock {
    pub fn n_rows(&self) -> usize {
        self.times.len()
    }
}

fn encoding_of(physical: DataType) -> u8 {
    match physical {
        DataType::Boolean => 0,
        DataType::Int32 | DataType::Float => 1,
        DataType::Int64 | DataType::Double => 2,
        _ => 3,
    }
}

fn physical_code(data_type: DataType) -> u8 {
    data_type.physical().code()
}

/// Encodes rows `[start, end)` of `times` and `columns` as one TsBlock.
///
/// Columns must have at least `end` rows; a column of the wrong storage class for its type is a
/// programming error reported as [`ProtoError::Malformed`] rather than a panic.
pub fn encode(times: &[i64], columns: &[Column], start: usize, end: usize) -> Result<Vec<u8>> {
    let n_rows = end.saturating_sub(start);
    let mut out = Vec::with_capacity(16 + n_rows * 8 * (columns.len() + 1));
    out.put_i32(
        i32::try_from(columns.len())
            .map_err(|_| ProtoError::Malformed("too many columns".into()))?,
    );
    for column in columns {
        out.put_u8(physical_code(column.data_type));
    }
    out.put_i32(i32::try_from(n_rows).map_err(|_| ProtoError::Malformed("too many rows".into()))?);
    out.put_u8(2);
    for column in columns {
        out.put_u8(encoding_of(column.data_type.physical()));
    }
    // Time column: INT64_ARRAY, never null.
    out.put_u8(0);
    put_all(
        &mut out,
        times
            .get(start..end)
            .ok_or_else(|| ProtoError::Malformed("time column too short".into()))?,
        i64::to_be_bytes,
    );
    for column in columns {
        encode_column(&mut out, column, start, end)?;
    }
    Ok(out)
}

fn encode_column(out: &mut Vec<u8>, column: &Column, start: usize, end: usize) -> Result<()> {
    let n_rows = end - start;
    let has_nulls = (start..end).any(|r| column.is_null(r));
    if has_nulls {
        out.put_u8(1);
        let mut bitmap = vec![0u8; n_rows.div_ceil(8)];
        for (i, r) in (start..end).enumerate() {
            if column.is_null(r) {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
    } else {
        out.put_u8(0);
    }
    let short = || ProtoError::Malformed("column shorter than the time column".into());
    match (&column.values, column.data_type.physical()) {
        // Without nulls, a fixed-width column is its values, written in one pass.
        (ColumnValues::Int32(v), DataType::Int32) if !has_nulls => {
            put_all(out, v.get(start..end).ok_or_else(short)?, i32::to_be_bytes)
        }
        (ColumnValues::Float(v), DataType::Float) if !has_nulls => {
            put_all(out, v.get(start..end).ok_or_else(short)?, f32::to_be_bytes)
        }
        (ColumnValues::Int64(v), DataType::Int64) if !has_nulls => {
            put_all(out, v.get(start..end).ok_or_else(short)?, i64::to_be_bytes)
        }
        (ColumnValues::Double(v), DataType::Double) if !has_nulls => {
            put_all(out, v.get(start..end).ok_or_else(short)?, f64::to_be_bytes)
        }
        (ColumnValues::Boolean(v), DataType::Boolean) => {
            // Booleans take one bit per position, nulls included.
            let slice = v.get(start..end).ok_or_else(short)?;
            let mut bits = vec![0u8; n_rows.div_ceil(8)];
            for (i, b) in slice.iter().enumerate() {
                if *b && !column.is_null(start + i) {
                    bits[i / 8] |= 0x80 >> (i % 8);
                }
            }
            out.extend_from_slice(&bits);
        }
        (ColumnValues::Int32(v), DataType::Int32) => {
            for (i, x) in v.get(start..end).ok_or_else(short)?.iter().enumerate() {
                if !column.is_null(start + i) {
                    out.put_i32(*x);
                }
            }
        }
        (ColumnValues::Float(v), DataType::Float) => {
            for (i, x) in v.get(start..end).ok_or_else(short)?.iter().enumerate() {
                if !column.is_null(start + i) {
                    out.put_f32(*x);
                }
            }
        }
        (ColumnValues::Int64(v), DataType::Int64) => {
            for (i, x) in v.get(start..end).ok_or_else(short)?.iter().enumerate() {
                if !column.is_null(start + i) {
                    out.put_i64(*x);
                }
            }
        }
        (ColumnValues::Double(v), DataType::Double) => {
            for (i, x) in v.get(start..end).ok_or_else(short)?.iter().enumerate() {
                if !column.is_null(start + i) {
                    out.put_f64(*x);
                }
            }
        }
        (ColumnValues::Binary(v), DataType::Text) => {
            for (i, x) in v.get(start..end).ok_or_else(short)?.iter().enumerate() {
                if !column.is_null(start + i) {
                    out.put_i32(
                        i32::try_from(x.len())
                            .map_err(|_| ProtoError::Malformed("value too long".into()))?,
                    );
                    out.extend_from_slice(x);
                }
            }
        }
        (_, physical) => {
            return Err(ProtoError::Malformed(format!(
                "column of type {} holds values of another storage class ({physical})",
                column.data_type
            )))
        }
    }
    Ok(())
}

/// Appends `values` as `to_bytes` writes each (e.g. `f64::to_be_bytes`), growing `out` once.
fn put_all<T: Copy, const N: usize>(out: &mut Vec<u8>, values: &[T], to_bytes: fn(T) -> [u8; N]) {
    let at = out.len();
    out.resize(at + N * values.len(), 0);
    if let Some(tail) = out.get_mut(at..) {
        let (slots, _) = tail.as_chunks_mut::<N>();
        for (slot, v) in slots.iter_mut().zip(values) {
            *slot = to_bytes(*v);
        }
    }
}

/// Decodes one TsBlock. `logical_types` (from `dataTypeList`, after any column index mapping) refine the
/// physical header types; when absent the physical types are used.
pub fn decode(buf: &[u8], logical_types: Option<&[DataType]>) -> Result<TsBlock> {
    let mut input = ByteReader::new(buf);
    // Each column takes a type byte and an encoding byte in the header, and a null flag.
    let n_columns = input.count(3, "TsBlock columns")?;
    let mut physical = Vec::with_capacity(n_columns);
    for _ in 0..n_columns {
        let code = input.u8("TsBlock column types")?;
        physical.push(
            DataType::from_code(i32::from(code))
                .ok_or_else(|| ProtoError::Malformed(format!("unknown column type {code}")))?,
        );
    }
    // Rows are checked per column against what their values and bitmaps take.
    let n_rows = input.count(0, "TsBlock positions")?;
    let encodings = input.take(n_columns + 1, "TsBlock column encodings")?;
    if encodings.first() != Some(&2) {
        return Err(ProtoError::Malformed(
            "time column must use INT64_ARRAY encoding".into(),
        ));
    }
    let time_column = decode_column(&mut input, DataType::Int64, 2, n_rows)?;
    let times = match time_column.values {
        ColumnValues::Int64(v) => v,
        _ => return Err(ProtoError::Malformed("time column is not INT64".into())),
    };
    let mut columns = Vec::with_capacity(n_columns);
    for (i, phys) in physical.iter().enumerate() {
        let encoding = encodings.get(i + 1).copied().unwrap_or(0);
        let mut column = decode_column(&mut input, *phys, encoding, n_rows)?;
        if let Some(logical) = logical_types.and_then(|l| l.get(i)) {
            if logical.physical() == phys.physical() {
                column.data_type = *logical;
            }
        }
        columns.push(column);
    }
    Ok(TsBlock { times, columns })
}

const WHAT: &str = "TsBlock";

/// One column of `n_rows` positions. Before anything is reserved, the bitmap (one bit per position)
/// or, without one, the values (at least one bit per position) must fit in the bytes left, so the
/// column's memory is bounded by a multiple of the bytes it came from.
fn decode_column(
    input: &mut ByteReader<'_>,
    data_type: DataType,
    encoding: u8,
    n_rows: usize,
) -> Result<Column> {
    if encoding > 3 {
        return Err(ProtoError::Malformed(format!(
            "unsupported column encoding {encoding}"
        )));
    }
    let may_have_null = input.u8(WHAT)? != 0;
    let nulls = if may_have_null {
        let bitmap = input.take(n_rows.div_ceil(8), "TsBlock null bitmap")?;
        Some(
            (0..n_rows)
                .map(|i| {
                    bitmap
                        .get(i / 8)
                        .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
                })
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.get(i) == Some(&true));
    let present = match &nulls {
        Some(n) => n.iter().filter(|null| !**null).count(),
        None => n_rows,
    };
    let width = match encoding {
        0 => 0,
        1 => 4,
        2 => 8,
        _ => 4,
    };
    input.ensure(present, width, "TsBlock values")?;
    if nulls.is_none() {
        input.ensure(n_rows.div_ceil(8), 1, "TsBlock values")?;
    }
    let values = match encoding {
        // Without nulls, a fixed-width column is one run of values.
        1 if nulls.is_none() && data_type == DataType::Float => {
            ColumnValues::Float(input.values(n_rows, WHAT, f32::from_be_bytes)?)
        }
        1 if nulls.is_none() => {
            ColumnValues::Int32(input.values(n_rows, WHAT, i32::from_be_bytes)?)
        }
        2 if nulls.is_none() && data_type == DataType::Double => {
            ColumnValues::Double(input.values(n_rows, WHAT, f64::from_be_bytes)?)
        }
        2 if nulls.is_none() => {
            ColumnValues::Int64(input.values(n_rows, WHAT, i64::from_be_bytes)?)
        }
        0 => {
            let bits = input.take(n_rows.div_ceil(8), "TsBlock booleans")?;
            ColumnValues::Boolean(
                (0..n_rows)
                    .map(|i| bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                    .collect(),
            )
        }
        1 if data_type == DataType::Float => ColumnValues::Float(
            (0..n_rows)
                .map(|i| if is_null(i) { Ok(0.0) } else { input.f32(WHAT) })
                .collect::<Result<_>>()?,
        ),
        1 => ColumnValues::Int32(
            (0..n_rows)
                .map(|i| if is_null(i) { Ok(0) } else { input.i32(WHAT) })
                .collect::<Result<_>>()?,
        ),
        2 if data_type == DataType::Double => ColumnValues::Double(
            (0..n_rows)
                .map(|i| if is_null(i) { Ok(0.0) } else { input.f64(WHAT) })
                .collect::<Result<_>>()?,
        ),
        2 => ColumnValues::Int64(
            (0..n_rows)
                .map(|i| if is_null(i) { Ok(0) } else { input.i64(WHAT) })
                .collect::<Result<_>>()?,
        ),
        _ => ColumnValues::Binary(
            (0..n_rows)
                .map(|i| {
                    if is_null(i) {
                        Ok(Vec::new())
                    } else {
                        input.bytes("TsBlock value").map(<[u8]>::to_vec)
                    }
                })
                .collect::<Result<_>>()?,
        ),
    };
    Ok(Column {
        data_type,
        nulls,
        values,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The worked example of reference §6.2, byte for byte.
    #[test]
    fn encodes_the_reference_example() {
        let columns = vec![
            Column {
                data_type: DataType::Int32,
                nulls: Some(vec![false, true]),
                values: ColumnValues::Int32(vec![5, 0]),
            },
            Column::text(["a", "bc"]),
            Column {
                data_type: DataType::Boolean,
                nulls: Some(vec![false, true]),
                values: ColumnValues::Boolean(vec![true, false]),
            },
        ];
        let bytes = encode(&[1, 2], &columns, 0, 2).unwrap();
        let expected: Vec<u8> = [
            &[0, 0, 0, 3, 1, 5, 0][..],
            &[0, 0, 0, 2],
            &[2, 1, 3, 0],
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2],
            &[1, 0x40, 0, 0, 0, 5],
            &[0, 0, 0, 0, 1, 0x61, 0, 0, 0, 2, 0x62, 0x63],
            &[1, 0x40, 0x80],
        ]
        .concat();
        assert_eq!(bytes, expected);
        let decoded = decode(&bytes, None).unwrap();
        assert_eq!(decoded.times, vec![1, 2]);
        assert_eq!(decoded.columns[0].render(0), "5");
        assert!(decoded.columns[0].is_null(1));
        assert_eq!(decoded.columns[1].render(1), "bc");
        assert_eq!(decoded.columns[2].render(0), "true");
    }

    #[test]
    fn round_trips_every_type_with_a_row_window() {
        let times: Vec<i64> = (0..20).collect();
        let nulls: Vec<bool> = (0..20).map(|i| i % 3 == 0).collect();
        let columns: Vec<Column> = DataType::ALL
            .iter()
            .map(|t| Column {
                data_type: *t,
                nulls: Some(nulls.clone()),
                values: match t.physical() {
                    DataType::Boolean => {
                        ColumnValues::Boolean((0..20).map(|i| i % 2 == 0).collect())
                    }
                    DataType::Int32 => ColumnValues::Int32((0..20).map(|i| 20240100 + i).collect()),
                    DataType::Int64 => {
                        ColumnValues::Int64((0..20).map(|i| i64::from(i) * 1000).collect())
                    }
                    DataType::Float => {
                        ColumnValues::Float((0..20).map(|i| i as f32 / 2.0).collect())
                    }
                    DataType::Double => {
                        ColumnValues::Double((0..20).map(|i| f64::from(i) / 4.0).collect())
                    }
                    _ => ColumnValues::Binary(
                        (0..20).map(|i| format!("v{i}").into_bytes()).collect(),
                    ),
                },
            })
            .collect();
        let bytes = encode(&times, &columns, 5, 15).unwrap();
        let decoded = decode(&bytes, Some(&DataType::ALL)).unwrap();
        assert_eq!(decoded.times, (5..15).collect::<Vec<_>>());
        for (c, original) in decoded.columns.iter().zip(&columns) {
            assert_eq!(c.data_type, original.data_type);
            for r in 0..10 {
                assert_eq!(c.is_null(r), original.is_null(r + 5));
                if !c.is_null(r) {
                    assert_eq!(c.render(r), original.render(r + 5));
                }
            }
        }
    }

    #[test]
    fn fixed_width_columns_without_nulls_round_trip_and_truncate_to_errors() {
        let times: Vec<i64> = (0..9).map(|i| i * 1_000 - 4_000).collect();
        let columns = vec![
            Column {
                data_type: DataType::Int32,
                nulls: None,
                values: ColumnValues::Int32((0..9).map(|i| i32::MIN + i).collect()),
            },
            Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64((0..9).map(|i| i64::MAX - i).collect()),
            },
            Column {
                data_type: DataType::Float,
                nulls: None,
                values: ColumnValues::Float((0..9).map(|i| i as f32 - 0.25).collect()),
            },
            Column {
                data_type: DataType::Double,
                nulls: None,
                values: ColumnValues::Double((0..9).map(|i| f64::from(i) * -1e300).collect()),
            },
        ];
        let bytes = encode(&times, &columns, 2, 9).unwrap();
        let decoded = decode(&bytes, None).unwrap();
        assert_eq!(decoded.times, times[2..]);
        for (c, original) in decoded.columns.iter().zip(&columns) {
            assert_eq!(c.nulls, None);
            assert_eq!(c.len(), 7);
            for r in 0..7 {
                assert_eq!(c.render(r), original.render(r + 2));
            }
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], None).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = encode(&[1, 2, 3], &[Column::text(["x", "y", "z"])], 0, 3).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], None).is_err(), "cut at {cut}");
        }
    }
}
