//! The compact binary encoding of a log entry, the payload of every WAL record.
//!
//! Hand-written rather than serde-generated because the log is the ingest hot path: a 1000-row ×
//! 10-column tablet encodes as a few `extend_from_slice` calls per column. All integers are
//! little-endian; strings and byte strings are a `u32` length followed by the bytes.
//!
//! ```text
//! entry   = lsn:u64 origin version ops
//! origin  = 0:u8 | 1:u8 instance:u64              (local | received through a pipe)
//! version = hlc:u64 instance:u64
//! ops     = n:u32 op*
//! op      = 1:u8 insert | 2:u8 delete
//! insert  = device:str aligned:u8 n_rows:u32 times:i64*n_rows n_cols:u32 column*
//! column  = measurement:str type:u8 (IoTDB code) has_nulls:u8 [null bitmap: ceil(n_rows/8) bytes,
//!           bit i set = row i is null] values (one slot per row, placeholders under nulls):
//!           BOOLEAN u8 | INT32,DATE i32 | INT64,TIMESTAMP i64 | FLOAT f32 | DOUBLE f64 |
//!           TEXT,STRING,BLOB bytes
//! delete  = n_series:u32 series:str* start:i64 end:i64   (end inclusive)
//! ```
//!
//! The encoding is split in two so callers can encode their operations on their own thread, and the
//! single log-writer thread only prepends the header once it has assigned the LSN and version.

use duet_proto::types::{Column, ColumnValues, DataType};

use crate::types::{DeleteOp, InsertOp, LogEntry, LogHeader, Lsn, Op, OpKind, Origin, Version};

const ORIGIN_LOCAL: u8 = 0;
const ORIGIN_PIPE: u8 = 1;
const OP_INSERT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_META: u8 = 3;

/// Appends the header of an entry (`lsn`, origin, version) to `out`.
pub(crate) fn encode_header(lsn: Lsn, origin: &Origin, version: Version, out: &mut Vec<u8>) {
    out.extend_from_slice(&lsn.to_le_bytes());
    match origin {
        Origin::Local => out.push(ORIGIN_LOCAL),
        Origin::Pipe { instance } => {
            out.push(ORIGIN_PIPE);
            out.extend_from_slice(&instance.to_le_bytes());
        }
    }
    out.extend_from_slice(&version.hlc.to_le_bytes());
    out.extend_from_slice(&version.instance.to_le_bytes());
}

/// Appends the encoded operations of an entry to `out`. The ops must have passed
/// [`crate::memtable::validate_ops`], so every length fits a `u32`.
pub(crate) fn encode_ops(ops: &[Op], out: &mut Vec<u8>) {
    put_len(out, ops.len());
    for op in ops {
        match op {
            Op::Insert(insert) => encode_insert(insert, out),
            Op::Delete(delete) => {
                out.push(OP_DELETE);
                put_len(out, delete.series.len());
                for series in &delete.series {
                    put_bytes(out, series.as_bytes());
                }
                out.extend_from_slice(&delete.start.to_le_bytes());
                out.extend_from_slice(&delete.end.to_le_bytes());
            }
            Op::Meta(bytes) => {
                out.push(OP_META);
                put_bytes(out, bytes);
            }
        }
    }
}

/// A rough size of the encoding, to reserve the buffer once.
pub(crate) fn estimated_len(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Insert(insert) => {
                let rows = insert.times.len();
                let columns: usize = insert
                    .columns
                    .iter()
                    .map(|c| {
                        let values = match &c.values {
                            ColumnValues::Boolean(v) => v.len(),
                            ColumnValues::Int32(v) => v.len() * 4,
                            ColumnValues::Float(v) => v.len() * 4,
                            ColumnValues::Int64(v) => v.len() * 8,
                            ColumnValues::Double(v) => v.len() * 8,
                            ColumnValues::Binary(v) => v.iter().map(|b| b.len() + 4).sum(),
                        };
                        values + rows / 8 + 40
                    })
                    .sum();
                insert.device.len() + 16 + rows * 8 + columns
            }
            Op::Delete(delete) => delete.series.iter().map(|s| s.len() + 4).sum::<usize>() + 24,
            Op::Meta(bytes) => bytes.len() + 5,
        })
        .sum::<usize>()
        + 8
}

fn encode_insert(insert: &InsertOp, out: &mut Vec<u8>) {
    out.push(OP_INSERT);
    put_bytes(out, insert.device.as_bytes());
    out.push(u8::from(insert.aligned));
    put_len(out, insert.times.len());
    for t in &insert.times {
        out.extend_from_slice(&t.to_le_bytes());
    }
    put_len(out, insert.columns.len());
    for (measurement, column) in insert.measurements.iter().zip(&insert.columns) {
        put_bytes(out, measurement.as_bytes());
        out.push(column.data_type.code());
        match &column.nulls {
            Some(nulls) if nulls.iter().any(|n| *n) => {
                out.push(1);
                let mut bitmap = vec![0u8; nulls.len().div_ceil(8)];
                for (row, _) in nulls.iter().enumerate().filter(|(_, n)| **n) {
                    if let Some(byte) = bitmap.get_mut(row / 8) {
                        *byte |= 1 << (row % 8);
                    }
                }
                out.extend_from_slice(&bitmap);
            }
            _ => out.push(0),
        }
        match &column.values {
            ColumnValues::Boolean(v) => out.extend(v.iter().map(|b| u8::from(*b))),
            ColumnValues::Int32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            ColumnValues::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            ColumnValues::Float(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            ColumnValues::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            ColumnValues::Binary(v) => v.iter().for_each(|b| put_bytes(out, b)),
        }
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths were checked to fit in u32 by validation; saturate rather than wrap if not.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The longest prefix of a payload that holds its header: LSN, origin, version, the number of
/// operations and the first one's kind.
pub(crate) const HEADER_PREFIX_BYTES: usize = 8 + 1 + 8 + 16 + 4 + 1;

/// Decodes the header at the start of a payload (or of its first [`HEADER_PREFIX_BYTES`]), without
/// the operations.
pub(crate) fn decode_log_header(prefix: &[u8]) -> Result<LogHeader, DecodeError> {
    let mut input = Input {
        bytes: prefix,
        pos: 0,
    };
    let (lsn, origin, version, ops) = decode_header(&mut input)?;
    let first_op = if ops == 0 {
        None
    } else {
        match input.u8()? {
            OP_INSERT => Some(OpKind::Insert),
            OP_DELETE => Some(OpKind::Delete),
            OP_META => Some(OpKind::Meta),
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "op",
                    tag: other,
                })
            }
        }
    };
    Ok(LogHeader {
        lsn,
        origin,
        version,
        ops,
        first_op,
    })
}

/// An entry's header fields: LSN, origin, version and the number of operations that follow.
fn decode_header(input: &mut Input<'_>) -> Result<(Lsn, Origin, Version, usize), DecodeError> {
    let lsn = input.u64()?;
    let origin = decode_origin(input)?;
    let version = Version {
        hlc: input.u64()?,
        instance: input.u64()?,
    };
    Ok((lsn, origin, version, input.len()?))
}

fn decode_origin(input: &mut Input<'_>) -> Result<Origin, DecodeError> {
    match input.u8()? {
        ORIGIN_LOCAL => Ok(Origin::Local),
        ORIGIN_PIPE => Ok(Origin::Pipe {
            instance: input.u64()?,
        }),
        other => Err(DecodeError::UnknownTag {
            what: "origin",
            tag: other,
        }),
    }
}

/// Decodes a whole payload; the error is a reason to report in [`crate::Error::Corrupt`].
pub(crate) fn decode_entry(payload: &[u8]) -> Result<LogEntry, DecodeError> {
    let mut input = Input {
        bytes: payload,
        pos: 0,
    };
    let (lsn, origin, version, n_ops) = decode_header(&mut input)?;
    let mut ops = Vec::with_capacity(n_ops.min(1024));
    for _ in 0..n_ops {
        ops.push(match input.u8()? {
            OP_INSERT => Op::Insert(decode_insert(&mut input)?),
            OP_DELETE => {
                let n_series = input.len()?;
                let mut series = Vec::with_capacity(n_series.min(1024));
                for _ in 0..n_series {
                    series.push(input.string()?);
                }
                Op::Delete(DeleteOp {
                    series,
                    start: input.i64()?,
                    end: input.i64()?,
                })
            }
            OP_META => Op::Meta(input.bytes()?.to_vec()),
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "op",
                    tag: other,
                })
            }
        });
    }
    if input.pos != payload.len() {
        return Err(DecodeError::Trailing(payload.len() - input.pos));
    }
    Ok(LogEntry {
        lsn,
        origin,
        version,
        ops,
    })
}

fn decode_insert(input: &mut Input<'_>) -> Result<InsertOp, DecodeError> {
    let device = input.string()?;
    let aligned = input.u8()? != 0;
    let n_rows = input.len()?;
    let times = input.fixed(n_rows, 8, |b| i64::from_le_bytes(le8(b)))?;
    let n_cols = input.len()?;
    let mut measurements = Vec::with_capacity(n_cols.min(4096));
    let mut columns = Vec::with_capacity(n_cols.min(4096));
    for _ in 0..n_cols {
        measurements.push(input.string()?);
        let code = input.u8()?;
        let data_type =
            DataType::from_code(i32::from(code)).ok_or(DecodeError::UnknownDataType(code))?;
        let nulls = match input.u8()? {
            0 => None,
            _ => {
                let bitmap = input.take(n_rows.div_ceil(8))?;
                Some(
                    (0..n_rows)
                        .map(|row| {
                            bitmap
                                .get(row / 8)
                                .is_some_and(|b| b & (1 << (row % 8)) != 0)
                        })
                        .collect(),
                )
            }
        };
        let values = match data_type.physical() {
            DataType::Boolean => ColumnValues::Boolean(input.fixed(n_rows, 1, |b| b != [0])?),
            DataType::Int32 => {
                ColumnValues::Int32(input.fixed(n_rows, 4, |b| i32::from_le_bytes(le4(b)))?)
            }
            DataType::Int64 => {
                ColumnValues::Int64(input.fixed(n_rows, 8, |b| i64::from_le_bytes(le8(b)))?)
            }
            DataType::Float => {
                ColumnValues::Float(input.fixed(n_rows, 4, |b| f32::from_le_bytes(le4(b)))?)
            }
            DataType::Double => {
                ColumnValues::Double(input.fixed(n_rows, 8, |b| f64::from_le_bytes(le8(b)))?)
            }
            _ => {
                let mut values = Vec::with_capacity(n_rows.min(1 << 16));
                for _ in 0..n_rows {
                    let len = input.len()?;
                    values.push(input.take(len)?.to_vec());
                }
                ColumnValues::Binary(values)
            }
        };
        columns.push(Column {
            data_type,
            nulls,
            values,
        });
    }
    Ok(InsertOp {
        device,
        aligned,
        measurements,
        columns,
        times,
    })
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    out
}

fn le8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    out
}

/// Why the bytes of a log entry (a WAL record's payload, or an entry a pipe carries) do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("entry truncated at byte {at} (wanted {wanted} more)")]
    Truncated { at: usize, wanted: usize },
    #[error("length overflow at byte {at}")]
    LengthOverflow { at: usize },
    #[error("invalid utf-8 in the string ending at byte {at}")]
    Utf8 { at: usize },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("unknown data type code {0}")]
    UnknownDataType(u8),
    #[error("{0} trailing bytes after the entry")]
    Trailing(usize),
}

/// A cursor over a payload that reports truncation instead of panicking.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated {
                at: self.pos,
                wanted: n,
            })?;
        let slice = self.bytes.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(slice)
    }

    fn fixed<T>(
        &mut self,
        n: usize,
        width: usize,
        decode: impl Fn(&[u8]) -> T,
    ) -> Result<Vec<T>, DecodeError> {
        let total = n
            .checked_mul(width)
            .ok_or(DecodeError::LengthOverflow { at: self.pos })?;
        Ok(self.take(total)?.chunks_exact(width).map(decode).collect())
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(le8(self.take(8)?)))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(le8(self.take(8)?)))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = u32::from_le_bytes(le4(self.take(4)?));
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8 { at: self.pos })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn entry(ops: Vec<Op>) -> LogEntry {
        LogEntry {
            lsn: 42,
            origin: Origin::Pipe { instance: 7 },
            version: Version {
                hlc: 99,
                instance: 7,
            },
            ops,
        }
    }

    fn encode(entry: &LogEntry) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(entry.lsn, &entry.origin, entry.version, &mut out);
        encode_ops(&entry.ops, &mut out);
        out
    }

    #[test]
    fn every_type_with_nulls_round_trips() {
        let n = 10;
        let nulls = Some((0..n).map(|i| i % 3 == 0).collect::<Vec<_>>());
        let mut columns = Vec::new();
        let mut measurements = Vec::new();
        for data_type in DataType::ALL {
            let values = match data_type.physical() {
                DataType::Boolean => ColumnValues::Boolean((0..n).map(|i| i % 2 == 0).collect()),
                DataType::Int32 => ColumnValues::Int32((0..n).collect()),
                DataType::Int64 => ColumnValues::Int64((0..n as i64).map(|i| i << 40).collect()),
                DataType::Float => ColumnValues::Float((0..n).map(|i| i as f32 * 0.5).collect()),
                DataType::Double => ColumnValues::Double((0..n).map(|i| i as f64 * 0.25).collect()),
                _ => ColumnValues::Binary((0..n).map(|i| format!("v{i}").into_bytes()).collect()),
            };
            measurements.push(data_type.name().to_lowercase());
            columns.push(Column {
                data_type,
                nulls: nulls.clone(),
                values,
            });
        }
        let original = entry(vec![
            Op::Insert(InsertOp {
                device: "root.sg.d1".into(),
                aligned: true,
                measurements,
                columns,
                times: (0..n as i64).collect(),
            }),
            Op::Delete(DeleteOp {
                series: vec!["root.sg.d1.int64".into(), "root.sg.d2.x".into()],
                start: -5,
                end: i64::MAX,
            }),
            Op::Meta(br#"{"change":"create_database","path":"root.sg"}"#.to_vec()),
        ]);
        assert_eq!(decode_entry(&encode(&original)).unwrap(), original);
        let header = decode_log_header(&encode(&entry(vec![Op::Meta(vec![1, 2])]))).unwrap();
        assert_eq!(header.first_op, Some(OpKind::Meta));
    }

    #[test]
    fn truncated_or_padded_payloads_are_errors() {
        let bytes = encode(&entry(vec![Op::Delete(DeleteOp {
            series: vec!["root.a.b".into()],
            start: 1,
            end: 2,
        })]));
        for cut in 0..bytes.len() {
            assert!(decode_entry(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode_entry(&padded).is_err());
    }
}
