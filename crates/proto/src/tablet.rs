//! The value layouts of write requests: `insertTablet` (column-major values with an optional LSB-first
//! null bitmap, reference §7.2) and `insertRecord(s)` (a type-tagged value stream, §7.1).

use bytes::BufMut;

use crate::reader::{malformed, ByteReader};
use crate::types::{Column, ColumnValues, DataType};
use crate::Result;

/// One decoded value of a record; records never carry nulls (clients drop null measurements).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordValue {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    /// TEXT, STRING and BLOB: the type says which.
    Binary(DataType, Vec<u8>),
    Timestamp(i64),
    Date(i32),
}

impl RecordValue {
    pub fn data_type(&self) -> DataType {
        match self {
            RecordValue::Boolean(_) => DataType::Boolean,
            RecordValue::Int32(_) => DataType::Int32,
            RecordValue::Int64(_) => DataType::Int64,
            RecordValue::Float(_) => DataType::Float,
            RecordValue::Double(_) => DataType::Double,
            RecordValue::Binary(t, _) => *t,
            RecordValue::Timestamp(_) => DataType::Timestamp,
            RecordValue::Date(_) => DataType::Date,
        }
    }
}

/// Decodes the value stream of one record: `n_values` entries of `u8 type` + value.
pub fn decode_record(buf: &[u8], n_values: usize) -> Result<Vec<RecordValue>> {
    let mut input = ByteReader::new(buf);
    // Each value takes at least its type byte and one byte of value.
    input.ensure(n_values, 2, "record values")?;
    let mut out = Vec::with_capacity(n_values);
    for _ in 0..n_values {
        let code = input.u8("record")?;
        out.push(read_record_value(&mut input, code)?);
    }
    if !input.is_empty() {
        return Err(malformed(format!(
            "{} bytes left after the record values",
            input.remaining()
        )));
    }
    Ok(out)
}

/// One value of type `code` (its type byte already read), as records and IoTDB's InsertRowNode write
/// it: BOOLEAN a byte, INT32/DATE an i32, INT64/TIMESTAMP an i64, FLOAT/DOUBLE IEEE bits, TEXT/STRING/
/// BLOB an i32 length and the bytes.
pub fn read_record_value(input: &mut ByteReader<'_>, code: u8) -> Result<RecordValue> {
    const WHAT: &str = "record";
    let data_type = DataType::from_code(i32::from(code))
        .ok_or_else(|| malformed(format!("unknown data type {code} in record")))?;
    Ok(match data_type {
        DataType::Boolean => RecordValue::Boolean(input.u8(WHAT)? != 0),
        DataType::Int32 => RecordValue::Int32(input.i32(WHAT)?),
        DataType::Date => RecordValue::Date(input.i32(WHAT)?),
        DataType::Int64 => RecordValue::Int64(input.i64(WHAT)?),
        DataType::Timestamp => RecordValue::Timestamp(input.i64(WHAT)?),
        DataType::Float => RecordValue::Float(input.f32(WHAT)?),
        DataType::Double => RecordValue::Double(input.f64(WHAT)?),
        DataType::Text | DataType::String | DataType::Blob => {
            RecordValue::Binary(data_type, input.bytes(WHAT)?.to_vec())
        }
    })
}

/// Encodes a record's values in the layout [`decode_record`] reads.
pub fn encode_record(values: &[RecordValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        out.put_u8(value.data_type().code());
        match value {
            RecordValue::Boolean(b) => out.put_u8(u8::from(*b)),
            RecordValue::Int32(x) | RecordValue::Date(x) => out.put_i32(*x),
            RecordValue::Int64(x) | RecordValue::Timestamp(x) => out.put_i64(*x),
            RecordValue::Float(x) => out.put_f32(*x),
            RecordValue::Double(x) => out.put_f64(*x),
            RecordValue::Binary(_, b) => {
                out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                out.extend_from_slice(b);
            }
        }
    }
    out
}

/// Decodes `insertTablet`'s `timestamps` buffer.
pub fn decode_timestamps(buf: &[u8], n_rows: usize) -> Result<Vec<i64>> {
    let mut input = ByteReader::new(buf);
    input.ensure(n_rows, 8, "tablet timestamps")?;
    (0..n_rows)
        .map(|_| input.i64("tablet timestamps"))
        .collect()
}

/// Decodes `insertTablet`'s column-major `values` buffer, with the optional trailing bitmaps.
pub fn decode_tablet_values(buf: &[u8], types: &[DataType], n_rows: usize) -> Result<Vec<Column>> {
    const WHAT: &str = "tablet values";
    let mut input = ByteReader::new(buf);
    let mut columns = Vec::with_capacity(types.len().min(buf.len()));
    for data_type in types {
        let physical = data_type.physical();
        // Every cell takes at least one byte (a fixed-width value, or a binary's length).
        let width = match physical {
            DataType::Boolean => 1,
            DataType::Int32 | DataType::Float | DataType::Date => 4,
            DataType::Int64 | DataType::Double | DataType::Timestamp => 8,
            _ => 4,
        };
        input.ensure(n_rows, width, WHAT)?;
        let values = match physical {
            DataType::Boolean => ColumnValues::Boolean(
                (0..n_rows)
                    .map(|_| input.u8(WHAT).map(|b| b != 0))
                    .collect::<Result<_>>()?,
            ),
            DataType::Int32 => ColumnValues::Int32(
                (0..n_rows)
                    .map(|_| input.i32(WHAT))
                    .collect::<Result<_>>()?,
            ),
            DataType::Int64 => ColumnValues::Int64(
                (0..n_rows)
                    .map(|_| input.i64(WHAT))
                    .collect::<Result<_>>()?,
            ),
            DataType::Float => ColumnValues::Float(
                (0..n_rows)
                    .map(|_| input.f32(WHAT))
                    .collect::<Result<_>>()?,
            ),
            DataType::Double => ColumnValues::Double(
                (0..n_rows)
                    .map(|_| input.f64(WHAT))
                    .collect::<Result<_>>()?,
            ),
            _ => ColumnValues::Binary(
                (0..n_rows)
                    .map(|_| input.bytes(WHAT).map(<[u8]>::to_vec))
                    .collect::<Result<_>>()?,
            ),
        };
        columns.push(Column {
            data_type: *data_type,
            nulls: None,
            values,
        });
    }
    // The bitmap section is optional: "no bytes left" means no nulls (as the Java server reads it).
    if !input.is_empty() {
        let bitmap_len = n_rows / 8 + 1;
        for column in &mut columns {
            if input.u8("tablet bitmaps")? != 0 {
                let bits = input.take(bitmap_len, "tablet bitmaps")?;
                column.nulls = Some(
                    (0..n_rows)
                        .map(|r| bits.get(r / 8).is_some_and(|b| b & (1 << (r % 8)) != 0))
                        .collect(),
                );
            }
        }
    }
    Ok(columns)
}

/// Encodes columns as `insertTablet`'s `values` buffer (bitmaps appended only when some cell is null).
pub fn encode_tablet_values(columns: &[Column], n_rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for column in columns {
        match &column.values {
            ColumnValues::Boolean(v) => {
                v.iter().take(n_rows).for_each(|b| out.put_u8(u8::from(*b)))
            }
            ColumnValues::Int32(v) => v.iter().take(n_rows).for_each(|x| out.put_i32(*x)),
            ColumnValues::Int64(v) => v.iter().take(n_rows).for_each(|x| out.put_i64(*x)),
            ColumnValues::Float(v) => v.iter().take(n_rows).for_each(|x| out.put_f32(*x)),
            ColumnValues::Double(v) => v.iter().take(n_rows).for_each(|x| out.put_f64(*x)),
            ColumnValues::Binary(v) => v.iter().take(n_rows).for_each(|b| {
                out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                out.extend_from_slice(b);
            }),
        }
    }
    if columns.iter().any(|c| (0..n_rows).any(|r| c.is_null(r))) {
        for column in columns {
            if (0..n_rows).any(|r| column.is_null(r)) {
                out.put_u8(1);
                let mut bits = vec![0u8; n_rows / 8 + 1];
                for r in 0..n_rows {
                    if column.is_null(r) {
                        bits[r / 8] |= 1 << (r % 8);
                    }
                }
                out.extend_from_slice(&bits);
            } else {
                out.put_u8(0);
            }
        }
    }
    out
}

/// Encodes timestamps as `insertTablet`'s `timestamps` buffer.
pub fn encode_timestamps(times: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(times.len() * 8);
    times.iter().for_each(|t| out.put_i64(*t));
    out
}

/// An `insertTablet` request of `columns` (one per measurement, each `times.len()` rows) at `times`,
/// in this layout, not aligned: what the CLI's tests, the soak and the benchmarks send.
pub fn insert_tablet_request(
    session_id: i64,
    device: &str,
    measurements: Vec<String>,
    columns: &[Column],
    times: &[i64],
) -> crate::t::TSInsertTabletReq {
    crate::t::TSInsertTabletReq::new(
        session_id,
        device.to_string(),
        measurements,
        encode_tablet_values(columns, times.len()),
        encode_timestamps(times),
        columns
            .iter()
            .map(|c| i32::from(c.data_type.code()))
            .collect(),
        i32::try_from(times.len()).unwrap_or(i32::MAX),
        Some(false),
        None,
        None,
        None,
        None,
        None,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Reference §7.2's example: s1 INT32 [1, null], s2 TEXT ["a", "b"].
    #[test]
    fn decodes_the_reference_tablet() {
        let values = [
            &[0, 0, 0, 1, 0, 0, 0, 0][..],
            &[0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0x62],
            &[1, 2],
            &[0],
        ]
        .concat();
        let columns = decode_tablet_values(&values, &[DataType::Int32, DataType::Text], 2).unwrap();
        assert_eq!(columns[0].render(0), "1");
        assert!(columns[0].is_null(1));
        assert!(!columns[1].is_null(0) && !columns[1].is_null(1));
        assert_eq!(columns[1].render(1), "b");
        assert_eq!(encode_tablet_values(&columns, 2), values);
    }

    /// Reference §7.1's example: [INT32 7, TEXT "hello"].
    #[test]
    fn decodes_the_reference_record() {
        let bytes = [1, 0, 0, 0, 7, 5, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'];
        let values = decode_record(&bytes, 2).unwrap();
        assert_eq!(
            values,
            vec![
                RecordValue::Int32(7),
                RecordValue::Binary(DataType::Text, b"hello".to_vec())
            ]
        );
        assert_eq!(encode_record(&values), bytes);
    }

    #[test]
    fn truncated_buffers_are_errors() {
        let bytes = encode_record(&[
            RecordValue::Int64(1),
            RecordValue::Binary(DataType::Blob, vec![1, 2, 3]),
        ]);
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes[..cut], 2).is_err());
        }
        assert!(decode_tablet_values(&[0, 0, 0], &[DataType::Int32], 1).is_err());
        assert!(decode_timestamps(&[0; 15], 2).is_err());
    }
}
