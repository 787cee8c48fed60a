//! The rows both systems get, so that a comparison compares like with like: row `r` of a device has
//! time `T0 + r` and in column `j` the value `value_i64(r, j)` (or its hundredth, as a DOUBLE),
//! written to duetd as tablet columns and to PostgreSQL by a binary COPY into `bench`.

use anyhow::{bail, Context, Result};
use duet_proto::types::{Column, ColumnValues, DataType};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// First timestamp written (ms precision: 2023-11-14T22:13:20Z). Row `r` of a device has time T0 + r.
pub const T0: i64 = 1_700_000_000_000;

/// The type of every value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Double,
    Int64,
}

impl ValueType {
    pub fn duet(self) -> DataType {
        match self {
            ValueType::Double => DataType::Double,
            ValueType::Int64 => DataType::Int64,
        }
    }

    /// The PostgreSQL type: for the binary COPY, and as SQL for the table's DDL.
    pub fn pg(self) -> (Type, &'static str) {
        match self {
            ValueType::Double => (Type::FLOAT8, "double precision"),
            ValueType::Int64 => (Type::INT8, "bigint"),
        }
    }
}

/// The value of row `row` in column `col`.
pub fn value_i64(row: usize, col: usize) -> i64 {
    // Cheap, deterministic and not trivially compressible.
    let h = (row as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(col as u64 * 97)
        >> 7;
    (h % 1_000_000) as i64 + (col as i64) * 1_000_000
}

/// The value of row `row` in column `col` as a DOUBLE.
pub fn value_f64(row: usize, col: usize) -> f64 {
    value_i64(row, col) as f64 / 100.0
}

/// The tablet columns (`columns` of them, of type `vt`) of rows `first_row..first_row + rows`.
pub fn tablet_columns(vt: ValueType, first_row: usize, rows: usize, columns: usize) -> Vec<Column> {
    let rows = first_row..first_row + rows;
    (0..columns)
        .map(|j| Column {
            data_type: vt.duet(),
            nulls: None,
            values: match vt {
                ValueType::Double => {
                    ColumnValues::Double(rows.clone().map(|r| value_f64(r, j)).collect())
                }
                ValueType::Int64 => {
                    ColumnValues::Int64(rows.clone().map(|r| value_i64(r, j)).collect())
                }
            },
        })
        .collect()
}

/// One `COPY bench FROM STDIN (FORMAT binary)` (its own transaction under autocommit) of rows
/// `first..first + rows` of `device`, `columns` values of type `vt` each; `what` names it in errors.
pub async fn copy_rows(
    c: &tokio_postgres::Client,
    (vt, columns): (ValueType, usize),
    device: &str,
    (first, rows): (usize, usize),
    what: &str,
) -> Result<()> {
    let mut types = vec![Type::TEXT, Type::INT8];
    types.extend(std::iter::repeat_n(vt.pg().0, columns));
    let sink = c
        .copy_in("COPY bench FROM STDIN (FORMAT binary)")
        .await
        .with_context(|| format!("COPY for {what}"))?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut row = PgRow::new(vt, columns);
    for r in first..first + rows {
        let params = row.params(&device, r);
        writer
            .as_mut()
            .write(&params)
            .await
            .with_context(|| format!("COPY row for {device}"))?;
    }
    let n = writer
        .finish()
        .await
        .with_context(|| format!("COPY commit for {what}"))?;
    if n != rows as u64 {
        bail!("COPY for {what} wrote {n} rows, expected {rows}");
    }
    Ok(())
}

/// The parameters of row `r` of a device (device, time, then the values), for a binary COPY or a
/// prepared INSERT; its buffers are reused from row to row.
pub struct PgRow {
    vt: ValueType,
    time: i64,
    doubles: Vec<f64>,
    ints: Vec<i64>,
}

impl PgRow {
    pub fn new(vt: ValueType, columns: usize) -> PgRow {
        PgRow {
            vt,
            time: 0,
            doubles: vec![0.0; columns],
            ints: vec![0; columns],
        }
    }

    /// Row `r`'s parameters, `device` first.
    pub fn params<'a>(
        &'a mut self,
        device: &'a (dyn ToSql + Sync),
        r: usize,
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        self.time = T0 + r as i64;
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(self.doubles.len() + 2);
        params.push(device);
        params.push(&self.time);
        match self.vt {
            ValueType::Double => {
                for (j, v) in self.doubles.iter_mut().enumerate() {
                    *v = value_f64(r, j);
                }
                params.extend(self.doubles.iter().map(|v| v as &(dyn ToSql + Sync)));
            }
            ValueType::Int64 => {
                for (j, v) in self.ints.iter_mut().enumerate() {
                    *v = value_i64(r, j);
                }
                params.extend(self.ints.iter().map(|v| v as &(dyn ToSql + Sync)));
            }
        }
        params
    }
}
