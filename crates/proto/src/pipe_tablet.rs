//! IoTDB's tablet pipe-transfer bodies (pipe reference §6.5): `TRANSFER_TABLET_RAW` (3),
//! `TRANSFER_TABLET_BATCH` (6), `TRANSFER_TABLET_RAW_V2` (11) and `TRANSFER_TABLET_BATCH_V2` (13), with
//! the tablet in either tsfile layout (2.x with a column-category byte per column, 1.x without).
//!
//! Encoding writes type 13 in the tsfile-2 layout, what a Duet sink sends to an IoTDB receiver; decoding
//! is what the receiver reads from an IoTDB sender. Every count is checked against the bytes left before
//! anything is reserved for it ([`crate::reader`]).

use bytes::BufMut;

use crate::pipe_body::{put_string, request_type as rt};
use crate::plan_node::{self, WriteNode};
use crate::reader::{malformed, ByteReader};
use crate::types::{Column, ColumnValues, DataType};
use crate::{ProtoError, Result};

/// One tree-model tablet: a device's rows, column-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeTablet {
    pub device: String,
    pub aligned: bool,
    pub measurements: Vec<String>,
    pub columns: Vec<Column>,
    pub times: Vec<i64>,
}

/// A tablet to encode, borrowed from wherever its rows live.
#[derive(Debug, Clone, Copy)]
pub struct TabletRef<'a> {
    pub device: &'a str,
    pub aligned: bool,
    pub measurements: &'a [String],
    pub columns: &'a [Column],
    pub times: &'a [i64],
}

fn unsupported(message: impl Into<String>) -> ProtoError {
    ProtoError::Unsupported(message.into())
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

/// Encodes tablets as IoTDB's `TRANSFER_TABLET_BATCH_V2` body.
pub fn encode_tablet_batch_v2<'a>(tablets: impl IntoIterator<Item = TabletRef<'a>>) -> Vec<u8> {
    let tablets: Vec<TabletRef<'a>> = tablets.into_iter().collect();
    let mut out = Vec::new();
    out.put_i32(0); // binary requests
    out.put_i32(0); // insert-node requests
    put_len(&mut out, tablets.len());
    for tablet in tablets {
        encode_tablet(&tablet, &mut out);
        out.put_u8(u8::from(tablet.aligned));
        put_string(&mut out, None); // tree model: no database
    }
    out
}

/// IoTDB's `Tablet.serialize` (tsfile 2.x).
fn encode_tablet(tablet: &TabletRef<'_>, out: &mut Vec<u8>) {
    let n = tablet.times.len();
    put_string(out, Some(tablet.device));
    put_len(out, n);
    out.put_u8(1);
    put_len(out, tablet.columns.len());
    for (m, c) in tablet.measurements.iter().zip(tablet.columns) {
        out.put_u8(1);
        put_string(out, Some(m));
        out.put_u8(c.data_type.code());
        out.put_u8(0); // PLAIN
        out.put_u8(0); // UNCOMPRESSED
        out.put_i32(0); // no properties
        out.put_u8(1); // column category FIELD
    }
    out.put_u8(1);
    for t in tablet.times {
        out.put_i64(*t);
    }
    out.put_u8(1);
    for c in tablet.columns {
        match &c.nulls {
            Some(nulls) if nulls.iter().any(|x| *x) => {
                out.put_u8(1);
                put_len(out, n);
                let mut bits = vec![0u8; n / 8 + 1];
                for (r, null) in nulls.iter().enumerate() {
                    if *null {
                        if let Some(b) = bits.get_mut(r / 8) {
                            *b |= 1 << (r % 8);
                        }
                    }
                }
                put_len(out, bits.len());
                out.extend_from_slice(&bits);
            }
            _ => out.put_u8(0),
        }
    }
    out.put_u8(1);
    for c in tablet.columns {
        out.put_u8(1);
        encode_values(c, out);
    }
}

fn encode_values(c: &Column, out: &mut Vec<u8>) {
    match &c.values {
        ColumnValues::Boolean(v) => v.iter().for_each(|b| out.put_u8(u8::from(*b))),
        ColumnValues::Int32(v) => v.iter().for_each(|x| out.put_i32(*x)),
        ColumnValues::Int64(v) => v.iter().for_each(|x| out.put_i64(*x)),
        ColumnValues::Float(v) => v.iter().for_each(|x| out.put_f32(*x)),
        ColumnValues::Double(v) => v.iter().for_each(|x| out.put_f64(*x)),
        ColumnValues::Binary(v) => {
            for (r, b) in v.iter().enumerate() {
                if c.is_null(r) {
                    out.put_u8(0);
                } else {
                    out.put_u8(1);
                    put_len(out, b.len());
                    out.extend_from_slice(b);
                }
            }
        }
    }
}

/// Reads one of IoTDB's tablet requests into its tablets; a request that carries InsertNodes or
/// WAL entries as well is refused here (the pipe receiver reads those with [`decode_write_request`]).
pub fn decode_tablets(type_: i16, body: &[u8]) -> Result<Vec<PipeTablet>> {
    let mut out = Vec::new();
    for node in decode_write_request(type_, body)? {
        match node {
            WriteNode::Tablets(tablets) => out.extend(tablets),
            _ => {
                return Err(unsupported(
                    "a tablet request with InsertNode entries where only tablets were expected",
                ))
            }
        }
    }
    Ok(out)
}

/// Reads any of IoTDB's data-write requests: raw tablets (3, 11), single InsertNodes (2, 10), WAL
/// entries (7, 12), tablet batches (6, 13: WAL entries, InsertNodes and tablets, each V2 entry with
/// its database) and plan nodes (100). Table-model entries are refused by name
/// ([`ProtoError::Unsupported`]); the body must end exactly where its last entry does.
pub fn decode_write_request(type_: i16, body: &[u8]) -> Result<Vec<WriteNode>> {
    let mut input = ByteReader::new(body);
    let v2 = matches!(
        type_,
        rt::TRANSFER_TABLET_RAW_V2
            | rt::TRANSFER_TABLET_BATCH_V2
            | rt::TRANSFER_TABLET_INSERT_NODE_V2
            | rt::TRANSFER_TABLET_BINARY_V2
    );
    let mut out = Vec::new();
    match type_ {
        rt::TRANSFER_TABLET_RAW | rt::TRANSFER_TABLET_RAW_V2 => {
            out.push(WriteNode::Tablets(vec![tablet_entry(
                &mut input, v2, true,
            )?]));
        }
        rt::TRANSFER_TABLET_INSERT_NODE
        | rt::TRANSFER_TABLET_INSERT_NODE_V2
        | rt::TRANSFER_PLAN_NODE => {
            out.push(plan_node::read_plan_node(&mut input)?);
            if v2 {
                tree_database(&mut input)?;
            }
        }
        rt::TRANSFER_TABLET_BINARY => {
            out.push(plan_node::decode_wal_entry(input.rest())?);
            input = ByteReader::new(&[]);
        }
        rt::TRANSFER_TABLET_BINARY_V2 => {
            out.push(plan_node::decode_wal_entry(input.bytes("WAL entry")?)?);
            tree_database(&mut input)?;
        }
        rt::TRANSFER_TABLET_BATCH | rt::TRANSFER_TABLET_BATCH_V2 => {
            // A WAL entry takes at least its length word.
            let binaries = input.count(4, "binary entries")?;
            for _ in 0..binaries {
                out.push(plan_node::decode_wal_entry(input.bytes("WAL entry")?)?);
                if v2 {
                    tree_database(&mut input)?;
                }
            }
            // An InsertNode takes at least its type, an id length and a child count.
            let nodes = input.count(10, "insert-node entries")?;
            for _ in 0..nodes {
                out.push(plan_node::read_plan_node(&mut input)?);
                if v2 {
                    tree_database(&mut input)?;
                }
            }
            // A tablet takes at least its name, row count and four flags.
            let tablets = input.count(12, "tablets")?;
            if tablets > 0 {
                let mut batch = Vec::with_capacity(tablets);
                for i in 0..tablets {
                    batch.push(tablet_entry(&mut input, v2, i + 1 == tablets)?);
                }
                out.push(WriteNode::Tablets(batch));
            }
        }
        other => {
            return Err(unsupported(format!(
                "request type {other} is not a data-write request"
            )))
        }
    }
    if !input.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the last entry",
            input.remaining()
        )));
    }
    Ok(out)
}

/// The database string after a V2 entry: null (or a tree database, which newer senders send as a
/// hint) for the tree model; a table-model database is refused.
fn tree_database(input: &mut ByteReader<'_>) -> Result<()> {
    match input.nullable_string("database")? {
        Some(db) if !db.starts_with("root") => Err(unsupported(format!(
            "table-model writes (database {db}) are not supported by Duet"
        ))),
        _ => Ok(()),
    }
}

/// A tablet, its `isAligned` byte and (V2) its database, in whichever tsfile layout parses (the last
/// one of a request must also end exactly where the body does).
fn tablet_entry(input: &mut ByteReader<'_>, v2: bool, last: bool) -> Result<PipeTablet> {
    let mut first_error = None;
    for with_category in [true, false] {
        let mut attempt = *input;
        let parsed = tablet_entry_as(&mut attempt, v2, with_category).and_then(|t| {
            if last && !attempt.is_empty() {
                Err(malformed(format!(
                    "{} bytes after the last tablet",
                    attempt.remaining()
                )))
            } else {
                Ok(t)
            }
        });
        match parsed {
            Ok(tablet) => {
                *input = attempt;
                return Ok(tablet);
            }
            // What is not supported is so in either layout.
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed("malformed tablet")))
}

fn tablet_entry_as(
    input: &mut ByteReader<'_>,
    v2: bool,
    with_category: bool,
) -> Result<PipeTablet> {
    let mut tablet = decode_tablet(input, with_category)?;
    tablet.aligned = input.u8("isAligned")? != 0;
    if v2 {
        if let Some(db) = input.nullable_string("database")? {
            if !db.starts_with("root") {
                return Err(unsupported(format!(
                    "table-model tablets (database {db}) are not supported by Duet"
                )));
            }
        }
    }
    if !tablet.device.starts_with("root") {
        return Err(unsupported(format!(
            "table-model tablets (table {}) are not supported by Duet",
            tablet.device
        )));
    }
    Ok(tablet)
}

/// `Tablet.deserialize` (pipe reference §6.5).
fn decode_tablet(input: &mut ByteReader<'_>, with_category: bool) -> Result<PipeTablet> {
    let device = input.string("tablet target")?;
    // Each row has at least its 8-byte timestamp.
    let rows = input.count(8, "rows")?;
    let mut measurements = Vec::new();
    let mut types = Vec::new();
    if input.u8("schemas flag")? == 1 {
        // A column schema takes at least a flag, a name, a type, an encoding, a compressor and a
        // property count.
        let n = input.count(12, "columns")?;
        measurements.reserve(n);
        types.reserve(n);
        for i in 0..n {
            if input.u8("schema flag")? != 1 {
                return Err(malformed(format!("column {i} has no schema")));
            }
            let measurement = input.string("measurement")?;
            let code = input.u8("data type")?;
            let data_type = DataType::from_code(i32::from(code))
                .ok_or_else(|| malformed(format!("unknown data type {code}")))?;
            input.u8("encoding")?;
            input.u8("compressor")?;
            let props = input.count(8, "properties")?;
            for _ in 0..props {
                input.string("property key")?;
                input.nullable_string("property value")?;
            }
            if with_category {
                let category = input.u8("column category")?;
                if category != 1 {
                    return Err(unsupported(format!(
                        "column {measurement} is a table-model {} column; Duet takes tree-model tablets only",
                        if category == 0 { "TAG" } else { "ATTRIBUTE" }
                    )));
                }
            }
            measurements.push(measurement);
            types.push(data_type);
        }
    }
    let times = if input.u8("times flag")? == 1 {
        input.ensure(rows, 8, "timestamps")?;
        (0..rows)
            .map(|_| input.i64("timestamps"))
            .collect::<Result<Vec<_>>>()?
    } else if rows > 0 {
        return Err(malformed("a tablet with rows but no timestamps"));
    } else {
        Vec::new()
    };
    // Every column's values (at least a byte a row) must still follow, which bounds the null marks
    // read first: without this a few bytes per column could claim `rows` marks each.
    input.ensure(rows.saturating_mul(types.len()), 1, "values")?;
    let mut nulls: Vec<Option<Vec<bool>>> = vec![None; types.len()];
    if input.u8("bitmaps flag")? == 1 {
        for slot in nulls.iter_mut() {
            if input.u8("bitmap flag")? == 1 {
                input.i32("bitmap size")?;
                let bits = input.bytes("bitmap")?;
                let marks: Vec<bool> = (0..rows)
                    .map(|r| bits.get(r / 8).is_some_and(|b| b & (1 << (r % 8)) != 0))
                    .collect();
                *slot = marks.iter().any(|x| *x).then_some(marks);
            }
        }
    }
    let mut columns = Vec::with_capacity(types.len());
    if input.u8("values flag")? == 1 {
        for (data_type, nulls) in types.iter().zip(nulls) {
            if input.u8("column flag")? != 1 {
                return Err(malformed("a column without values"));
            }
            columns.push(decode_values(
                input,
                *data_type,
                rows,
                nulls,
                BinaryCells::Flagged,
            )?);
        }
    } else if rows > 0 && !types.is_empty() {
        return Err(malformed("a tablet with rows but no values"));
    }
    // Null cells keep their placeholder values here; the columns' null marks make the write path
    // skip them, as for a client's insertTablet.
    Ok(PipeTablet {
        device,
        aligned: false,
        measurements,
        columns,
        times,
    })
}

/// How a column's TEXT/STRING/BLOB cells are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryCells {
    /// `Tablet.serialize`: a presence byte, then (when 1) an i32 length and the bytes.
    Flagged,
    /// `InsertTabletNode.serializeColumn`: an i32 length and the bytes (0 for a null).
    LengthOnly,
}

/// A column of `rows` values of `data_type`: fixed-width big-endian values, binaries as `binary` says.
pub(crate) fn decode_values(
    input: &mut ByteReader<'_>,
    data_type: DataType,
    rows: usize,
    nulls: Option<Vec<bool>>,
    binary: BinaryCells,
) -> Result<Column> {
    const WHAT: &str = "values";
    let physical = data_type.physical();
    let width = match physical {
        DataType::Int32 | DataType::Float => 4,
        DataType::Int64 | DataType::Double => 8,
        DataType::Boolean => 1,
        // A binary's presence flag or length word.
        _ if binary == BinaryCells::Flagged => 1,
        _ => 4,
    };
    input.ensure(rows, width, WHAT)?;
    let values = match physical {
        DataType::Boolean => {
            ColumnValues::Boolean(input.many(rows, |r| r.u8(WHAT).map(|b| b != 0))?)
        }
        DataType::Int32 => ColumnValues::Int32(input.many(rows, |r| r.i32(WHAT))?),
        DataType::Int64 => ColumnValues::Int64(input.many(rows, |r| r.i64(WHAT))?),
        DataType::Float => ColumnValues::Float(input.many(rows, |r| r.f32(WHAT))?),
        DataType::Double => ColumnValues::Double(input.many(rows, |r| r.f64(WHAT))?),
        _ => ColumnValues::Binary(input.many(rows, |r| match binary {
            BinaryCells::Flagged if r.u8("text flag")? != 1 => Ok(Vec::new()),
            _ => r.bytes("text").map(<[u8]>::to_vec),
        })?),
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

    fn tablet(device: &str, column: Column, times: Vec<i64>) -> PipeTablet {
        PipeTablet {
            device: device.into(),
            aligned: true,
            measurements: vec!["s1".into()],
            columns: vec![column],
            times,
        }
    }

    fn encode(tablets: &[PipeTablet]) -> Vec<u8> {
        encode_tablet_batch_v2(tablets.iter().map(|t| TabletRef {
            device: &t.device,
            aligned: t.aligned,
            measurements: &t.measurements,
            columns: &t.columns,
            times: &t.times,
        }))
    }

    #[test]
    fn tablet_batches_round_trip_and_every_truncation_is_an_error() {
        let tablets = vec![tablet(
            "root.sg.d1",
            Column {
                data_type: DataType::Text,
                nulls: Some(vec![false, true]),
                values: ColumnValues::Binary(vec![b"a".to_vec(), vec![]]),
            },
            vec![1, 2],
        )];
        let body = encode(&tablets);
        let batch = rt::TRANSFER_TABLET_BATCH_V2;
        assert_eq!(decode_tablets(batch, &body).unwrap(), tablets);
        // Never a panic or a partial batch.
        for cut in 0..body.len() {
            assert!(decode_tablets(batch, &body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn tsfile_1_tablets_without_column_categories_are_read() {
        // TRANSFER_TABLET_RAW (3) from IoTDB 1.3: no category byte after each schema.
        let mut body = Vec::new();
        put_string(&mut body, Some("root.sg.d2"));
        body.put_i32(2); // rows
        body.put_u8(1);
        body.put_i32(1);
        body.put_u8(1);
        put_string(&mut body, Some("s1"));
        body.put_u8(DataType::Int32.code());
        body.put_u8(0);
        body.put_u8(0);
        body.put_i32(0);
        body.put_u8(1);
        body.put_i64(10);
        body.put_i64(11);
        body.put_u8(1); // bitmaps: row 1 is null
        body.put_u8(1);
        body.put_i32(2);
        body.put_i32(1);
        body.put_u8(0b10);
        body.put_u8(1);
        body.put_u8(1);
        body.put_i32(7);
        body.put_i32(0);
        body.put_u8(0); // not aligned
        let decoded = decode_tablets(rt::TRANSFER_TABLET_RAW, &body).unwrap();
        assert_eq!(decoded.len(), 1);
        let t = &decoded[0];
        assert_eq!(
            (t.device.as_str(), t.times.clone()),
            ("root.sg.d2", vec![10, 11])
        );
        assert_eq!(t.columns[0].nulls, Some(vec![false, true]));
        assert_eq!(t.columns[0].values, ColumnValues::Int32(vec![7, 0]));
    }

    #[test]
    fn table_model_tablets_are_refused_by_name() {
        let column = Column {
            data_type: DataType::Int64,
            nulls: None,
            values: ColumnValues::Int64(vec![1]),
        };
        let batch = rt::TRANSFER_TABLET_BATCH_V2;
        let table = tablet("t1", column.clone(), vec![1]);
        let err = decode_tablets(batch, &encode(&[table])).unwrap_err();
        assert!(err.to_string().contains("table-model"), "{err}");
        let tree = tablet("root.sg.d1", column, vec![1]);
        assert_eq!(
            decode_tablets(batch, &encode(std::slice::from_ref(&tree))).unwrap(),
            vec![tree]
        );
    }
}
