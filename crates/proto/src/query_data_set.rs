//! The V1 result layout, `TSQueryDataSet`, that `executeStatement`, `executeQueryStatement`,
//! `fetchResults` and the other non-V2 query RPCs answer with (old Java clients, the Go client 1.x).
//!
//! Layout, as IoTDB's `QueryDataSetUtils.convertTsBlockByFetchSize` writes it (all big-endian):
//! - `time`: one i64 per row;
//! - `valueList[k]`: the non-null values of column k only, in row order: BOOLEAN one byte, INT32 and
//!   DATE an i32, INT64 and TIMESTAMP an i64, FLOAT an f32, DOUBLE an f64, TEXT/STRING/BLOB an i32
//!   length then the bytes;
//! - `bitmapList[k]`: `ceil(rows / 8)` bytes, row r at bit `0x80 >> (r % 8)` of byte `r / 8`, **1 =
//!   a value is present** (the opposite of a TsBlock's null bitmap).

use bytes::BufMut;

use crate::reader::ByteReader;
use crate::t::TSQueryDataSet;
use crate::types::{Column, ColumnValues, DataType};
use crate::{ProtoError, Result};

/// Builds one `TSQueryDataSet` from successive row ranges (a reply may gather several pages).
#[derive(Debug)]
pub struct QueryDataSetBuilder {
    time: Vec<u8>,
    values: Vec<Vec<u8>>,
    bitmaps: Vec<Vec<u8>>,
    rows: usize,
}

impl QueryDataSetBuilder {
    pub fn new(n_columns: usize) -> QueryDataSetBuilder {
        QueryDataSetBuilder {
            time: Vec::new(),
            values: vec![Vec::new(); n_columns],
            bitmaps: vec![Vec::new(); n_columns],
            rows: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The bytes gathered so far (an estimate of the encoded size).
    pub fn bytes(&self) -> usize {
        self.time.len()
            + self.values.iter().map(Vec::len).sum::<usize>()
            + self.bitmaps.iter().map(Vec::len).sum::<usize>()
    }

    /// Appends rows `[start, end)` of `times` and `columns`.
    pub fn append(
        &mut self,
        times: &[i64],
        columns: &[Column],
        start: usize,
        end: usize,
    ) -> Result<()> {
        if columns.len() != self.values.len() {
            return Err(ProtoError::Malformed(format!(
                "{} columns for a data set of {}",
                columns.len(),
                self.values.len()
            )));
        }
        let Some(row_times) = times.get(start..end) else {
            return Err(ProtoError::Malformed("rows beyond the time column".into()));
        };
        for t in row_times {
            self.time.put_i64(*t);
        }
        for (k, column) in columns.iter().enumerate() {
            for row in start..end {
                let present = !column.is_null(row);
                let bit = (self.rows + row - start) % 8;
                if bit == 0 {
                    self.bitmaps[k].push(0);
                }
                if !present {
                    continue;
                }
                if let Some(last) = self.bitmaps[k].last_mut() {
                    *last |= 0x80 >> bit;
                }
                put_value(&mut self.values[k], column, row)?;
            }
        }
        self.rows += end - start;
        Ok(())
    }

    pub fn finish(self) -> TSQueryDataSet {
        TSQueryDataSet::new(self.time, self.values, self.bitmaps)
    }
}

fn put_value(out: &mut Vec<u8>, column: &Column, row: usize) -> Result<()> {
    let missing = || ProtoError::Malformed(format!("column has no row {row}"));
    match &column.values {
        ColumnValues::Boolean(v) => out.put_u8(u8::from(*v.get(row).ok_or_else(missing)?)),
        ColumnValues::Int32(v) => out.put_i32(*v.get(row).ok_or_else(missing)?),
        ColumnValues::Int64(v) => out.put_i64(*v.get(row).ok_or_else(missing)?),
        ColumnValues::Float(v) => out.put_f32(*v.get(row).ok_or_else(missing)?),
        ColumnValues::Double(v) => out.put_f64(*v.get(row).ok_or_else(missing)?),
        ColumnValues::Binary(v) => {
            let bytes = v.get(row).ok_or_else(missing)?;
            out.put_i32(
                i32::try_from(bytes.len())
                    .map_err(|_| ProtoError::Malformed("value too long".into()))?,
            );
            out.put_slice(bytes);
        }
    }
    Ok(())
}

/// Client side: decodes a `TSQueryDataSet` whose columns have `types`, into times and columns.
pub fn decode(data: &TSQueryDataSet, types: &[DataType]) -> Result<(Vec<i64>, Vec<Column>)> {
    if !data.time.len().is_multiple_of(8) {
        return Err(ProtoError::Malformed(
            "time buffer is not a whole number of i64".into(),
        ));
    }
    let rows = data.time.len() / 8;
    let mut times = Vec::with_capacity(rows);
    let mut reader = ByteReader::new(&data.time);
    for _ in 0..rows {
        times.push(reader.i64("time")?);
    }
    if data.value_list.len() != types.len() || data.bitmap_list.len() != types.len() {
        return Err(ProtoError::Malformed(format!(
            "{} value buffers and {} bitmaps for {} columns",
            data.value_list.len(),
            data.bitmap_list.len(),
            types.len()
        )));
    }
    let mut columns = Vec::with_capacity(types.len());
    for (k, data_type) in types.iter().enumerate() {
        let bitmap = &data.bitmap_list[k];
        if bitmap.len() != rows.div_ceil(8) {
            return Err(ProtoError::Malformed(format!(
                "bitmap {k} has {} bytes for {rows} rows",
                bitmap.len()
            )));
        }
        let mut reader = ByteReader::new(&data.value_list[k]);
        let mut nulls = Vec::with_capacity(rows);
        let mut values = ColumnValues::empty_for(*data_type);
        for row in 0..rows {
            let present = bitmap[row / 8] & (0x80 >> (row % 8)) != 0;
            nulls.push(!present);
            match &mut values {
                ColumnValues::Boolean(v) => {
                    v.push(present && reader.u8("BOOLEAN value")? != 0);
                }
                ColumnValues::Int32(v) => {
                    v.push(if present { reader.i32("i32 value")? } else { 0 })
                }
                ColumnValues::Int64(v) => {
                    v.push(if present { reader.i64("i64 value")? } else { 0 })
                }
                ColumnValues::Float(v) => v.push(if present {
                    reader.f32("FLOAT value")?
                } else {
                    0.0
                }),
                ColumnValues::Double(v) => v.push(if present {
                    reader.f64("DOUBLE value")?
                } else {
                    0.0
                }),
                ColumnValues::Binary(v) => v.push(if present {
                    reader.bytes("binary value")?.to_vec()
                } else {
                    Vec::new()
                }),
            }
        }
        if !reader.is_empty() {
            return Err(ProtoError::Malformed(format!(
                "value buffer {k} has bytes beyond its {rows} rows"
            )));
        }
        columns.push(Column {
            data_type: *data_type,
            nulls: nulls.iter().any(|n| *n).then_some(nulls),
            values,
        });
    }
    Ok((times, columns))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Nine rows (so the bitmap spans two bytes, the second partial), nulls in every type.
    #[test]
    fn layout_matches_iotdb_byte_for_byte_and_round_trips() {
        let times: Vec<i64> = (1..=9).collect();
        let mut nulls = vec![false; 9];
        nulls[1] = true;
        nulls[8] = true;
        let ints = Column {
            data_type: DataType::Int32,
            nulls: Some(nulls.clone()),
            values: ColumnValues::Int32((10..19).collect()),
        };
        let texts = Column {
            data_type: DataType::Text,
            nulls: Some(nulls),
            values: ColumnValues::Binary((0..9).map(|i| vec![b'a' + i]).collect()),
        };
        let mut builder = QueryDataSetBuilder::new(2);
        builder
            .append(&times, &[ints.clone(), texts.clone()], 0, 4)
            .unwrap();
        builder
            .append(&times, &[ints.clone(), texts.clone()], 4, 9)
            .unwrap();
        let data = builder.finish();
        assert_eq!(data.time.len(), 72);
        assert_eq!(&data.time[..8], &1i64.to_be_bytes());
        // Rows 0..8: all present but row 1 → 1011_1111; row 8 null → 0000_0000.
        assert_eq!(data.bitmap_list[0], vec![0b1011_1111, 0]);
        assert_eq!(data.bitmap_list[1], vec![0b1011_1111, 0]);
        // Seven non-null INT32 values: 10, 12..=17.
        let expected: Vec<u8> = [10, 12, 13, 14, 15, 16, 17]
            .iter()
            .flat_map(|v: &i32| v.to_be_bytes())
            .collect();
        assert_eq!(data.value_list[0], expected);
        assert_eq!(&data.value_list[1][..5], &[0, 0, 0, 1, b'a']);
        let (t, columns) = decode(&data, &[DataType::Int32, DataType::Text]).unwrap();
        assert_eq!(t, times);
        assert_eq!(columns[0].nulls, ints.nulls);
        assert!(columns[1].is_null(8));
        match &columns[0].values {
            ColumnValues::Int32(v) => assert_eq!(v[2], 12),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_buffers_are_errors() {
        let data = TSQueryDataSet::new(vec![0; 8], vec![vec![0, 0, 0, 100]], vec![vec![0x80]]);
        assert!(decode(&data, &[DataType::Text]).is_err());
        let data = TSQueryDataSet::new(vec![0; 7], vec![], vec![]);
        assert!(decode(&data, &[]).is_err());
        let data = TSQueryDataSet::new(vec![0; 8], vec![vec![]], vec![vec![]]);
        assert!(decode(&data, &[DataType::Int32]).is_err());
    }
}
