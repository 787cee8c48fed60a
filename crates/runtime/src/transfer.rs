//! Pipe transfer bodies the sink sends and the receiver reads.
//!
//! - Between Duet instances (negotiated in the handshake with `duet.protocol`): request type
//!   [`DUET_TRANSFER_ENTRIES`], a batch of change-log entries in the WAL's own encoding, so versions,
//!   origins and deletions cross unchanged.
//! - To a receiver that does not know it (a real IoTDB 2.x): IoTDB's `TRANSFER_TABLET_BATCH_V2` (13)
//!   with one tablet per insert in the tsfile-2 layout of pipe reference §6.5. Deletions cannot be
//!   expressed there and are counted as not sent.

use bytes::{Buf, BufMut};
use duet_proto::pipe_body::put_string;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{InsertOp, LogEntry, Op, Origin, SeriesChunk, Version};

/// Duet's own request type: a batch of log entries. Outside IoTDB's code space (0–400, -1, -2).
pub const DUET_TRANSFER_ENTRIES: i16 = 1001;

/// IoTDB's `TRANSFER_TABLET_BATCH_V2`.
pub const IOTDB_TABLET_BATCH_V2: i16 = 13;

/// Encodes entries as one Duet batch body.
pub fn encode_entries(entries: &[LogEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * entries.len());
    out.put_u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    let mut buf = Vec::new();
    for entry in entries {
        buf.clear();
        duet_storage::transfer::encode_entry(entry, &mut buf);
        out.put_u32(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(&buf);
    }
    out
}

/// Decodes a Duet batch body.
pub fn decode_entries(mut body: &[u8]) -> Result<Vec<LogEntry>, String> {
    if body.len() < 4 {
        return Err("truncated batch header".into());
    }
    let n = body.get_u32() as usize;
    let mut entries = Vec::with_capacity(n.min(65_536));
    for i in 0..n {
        if body.len() < 4 {
            return Err(format!("truncated batch at entry {i}"));
        }
        let len = body.get_u32() as usize;
        if body.len() < len {
            return Err(format!("truncated entry {i}"));
        }
        let (head, tail) = body.split_at(len);
        entries.push(
            duet_storage::transfer::decode_entry(head).map_err(|e| format!("entry {i}: {e}"))?,
        );
        body = tail;
    }
    if !body.is_empty() {
        return Err(format!("{} bytes after the last entry", body.len()));
    }
    Ok(entries)
}

/// Turns a chunk of a series' stored points into entries, one per run of equal versions (history is
/// sent with each point's original version, and with the device's alignment, so a peer that creates
/// the series from it creates them as they are here).
pub fn history_entries(
    device: &str,
    measurement: &str,
    aligned: bool,
    chunk: &SeriesChunk,
    keep: impl Fn(&Version) -> bool,
) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let n = chunk.times.len();
    let mut i = 0;
    while i < n {
        let version = chunk.versions[i];
        let mut j = i;
        while j < n && chunk.versions[j] == version {
            j += 1;
        }
        if keep(&version) {
            let rows: Vec<bool> = (0..n).map(|r| r >= i && r < j).collect();
            let column = crate::filter::select_rows(&chunk.values, &rows);
            out.push(LogEntry {
                lsn: 0,
                origin: Origin::Local,
                version,
                ops: vec![Op::Insert(InsertOp {
                    device: device.to_string(),
                    aligned,
                    measurements: vec![measurement.to_string()],
                    columns: vec![column],
                    times: chunk.times[i..j].to_vec(),
                })],
            });
        }
        i = j;
    }
    out
}

/// Encodes the inserts of `entries` as IoTDB's tablet batch (type 13); returns the body and how many
/// delete operations could not be expressed.
pub fn encode_iotdb_tablets(entries: &[LogEntry]) -> (Vec<u8>, usize) {
    let mut tablets = Vec::new();
    let mut skipped_deletes = 0;
    for entry in entries {
        for op in &entry.ops {
            match op {
                Op::Insert(insert) => tablets.push(insert),
                Op::Delete(_) => skipped_deletes += 1,
            }
        }
    }
    let mut out = Vec::new();
    out.put_i32(0); // binary requests
    out.put_i32(0); // insert-node requests
    out.put_i32(i32::try_from(tablets.len()).unwrap_or(i32::MAX));
    for insert in tablets {
        encode_tablet(insert, &mut out);
        out.put_u8(u8::from(insert.aligned));
        put_string(&mut out, None); // tree model: no database
    }
    (out, skipped_deletes)
}

/// IoTDB's `Tablet.serialize` (tsfile 2.x).
fn encode_tablet(insert: &InsertOp, out: &mut Vec<u8>) {
    let n = insert.times.len();
    put_string(out, Some(&insert.device));
    out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
    out.put_u8(1);
    out.put_i32(i32::try_from(insert.columns.len()).unwrap_or(i32::MAX));
    for (m, c) in insert.measurements.iter().zip(&insert.columns) {
        out.put_u8(1);
        put_string(out, Some(m));
        out.put_u8(c.data_type.code());
        out.put_u8(0); // PLAIN
        out.put_u8(0); // UNCOMPRESSED
        out.put_i32(0); // no properties
        out.put_u8(1); // column category FIELD
    }
    out.put_u8(1);
    for t in &insert.times {
        out.put_i64(*t);
    }
    out.put_u8(1);
    for c in &insert.columns {
        match &c.nulls {
            Some(nulls) if nulls.iter().any(|x| *x) => {
                out.put_u8(1);
                out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
                let mut bits = vec![0u8; n / 8 + 1];
                for (r, null) in nulls.iter().enumerate() {
                    if *null {
                        bits[r / 8] |= 1 << (r % 8);
                    }
                }
                out.put_i32(i32::try_from(bits.len()).unwrap_or(i32::MAX));
                out.extend_from_slice(&bits);
            }
            _ => out.put_u8(0),
        }
    }
    out.put_u8(1);
    for c in &insert.columns {
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
                    out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                    out.extend_from_slice(b);
                }
            }
        }
    }
}

/// Reads IoTDB's tablet requests: `TRANSFER_TABLET_RAW` (3), `TRANSFER_TABLET_BATCH` (6),
/// `TRANSFER_TABLET_RAW_V2` (11) and `TRANSFER_TABLET_BATCH_V2` (13), the tablet in either tsfile
/// layout (2.x with a column-category byte per column, 1.x without). Batch entries in Java's internal
/// InsertNode or WAL formats are refused (the sender's `sink.format`='tablet' avoids most of them),
/// as are table-model tablets.
pub fn decode_iotdb_tablets(type_: i16, body: &[u8]) -> Result<Vec<InsertOp>, String> {
    use duet_proto::pipe_body::request_type as rt;
    let mut buf = body;
    let v2 = matches!(
        type_,
        rt::TRANSFER_TABLET_RAW_V2 | rt::TRANSFER_TABLET_BATCH_V2
    );
    let mut out = Vec::new();
    match type_ {
        rt::TRANSFER_TABLET_RAW | rt::TRANSFER_TABLET_RAW_V2 => {
            out.push(tablet_entry(&mut buf, v2, true)?);
        }
        rt::TRANSFER_TABLET_BATCH | rt::TRANSFER_TABLET_BATCH_V2 => {
            let binaries = get_count(&mut buf, "binary entries")?;
            if binaries > 0 {
                return Err(format!("{binaries} WAL-format entries in a tablet batch are not supported by Duet; set the sender's 'sink.format'='tablet'"));
            }
            let nodes = get_count(&mut buf, "insert-node entries")?;
            if nodes > 0 {
                return Err(format!("{nodes} InsertNode entries in a tablet batch are not supported by Duet; set the sender's 'sink.format'='tablet'"));
            }
            let tablets = get_count(&mut buf, "tablets")?;
            for i in 0..tablets {
                out.push(tablet_entry(&mut buf, v2, i + 1 == tablets)?);
            }
        }
        other => return Err(format!("request type {other} is not a tablet request")),
    }
    if !buf.is_empty() {
        return Err(format!("{} bytes after the last tablet", buf.len()));
    }
    Ok(out)
}

/// A tablet, its `isAligned` byte and (V2) its database, in whichever tsfile layout parses (the last
/// one of a request must also end exactly where the body does).
fn tablet_entry(buf: &mut &[u8], v2: bool, last: bool) -> Result<InsertOp, String> {
    let mut first_error = String::new();
    for with_category in [true, false] {
        let mut attempt = *buf;
        let parsed = tablet_entry_as(&mut attempt, v2, with_category).and_then(|t| {
            if last && !attempt.is_empty() {
                Err(format!("{} bytes after the last tablet", attempt.len()))
            } else {
                Ok(t)
            }
        });
        match parsed {
            Ok(tablet) => {
                *buf = attempt;
                return Ok(tablet);
            }
            Err(e) if first_error.is_empty() => first_error = e,
            Err(_) => {}
        }
    }
    Err(format!("malformed tablet: {first_error}"))
}

fn tablet_entry_as(buf: &mut &[u8], v2: bool, with_category: bool) -> Result<InsertOp, String> {
    let mut insert = decode_tablet(buf, with_category)?;
    insert.aligned = get_u8(buf, "isAligned")? != 0;
    if v2 {
        let database = duet_proto::pipe_body::get_string(buf).map_err(|e| e.to_string())?;
        if let Some(db) = database {
            if !db.starts_with("root") {
                return Err(format!(
                    "table-model tablets (database {db}) are not supported by Duet"
                ));
            }
        }
    }
    if !insert.device.starts_with("root") {
        return Err(format!(
            "table-model tablets (table {}) are not supported by Duet",
            insert.device
        ));
    }
    Ok(insert)
}

fn need(buf: &[u8], n: usize, what: &str) -> Result<(), String> {
    if buf.len() < n {
        Err(format!("truncated {what}"))
    } else {
        Ok(())
    }
}

fn get_u8(buf: &mut &[u8], what: &str) -> Result<u8, String> {
    need(buf, 1, what)?;
    Ok(buf.get_u8())
}

fn get_count(buf: &mut &[u8], what: &str) -> Result<usize, String> {
    need(buf, 4, what)?;
    let n = buf.get_i32();
    // Every counted item takes at least one byte: a count beyond the body is malformed, not an
    // allocation to attempt.
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= buf.len().max(1) * 8)
        .ok_or_else(|| format!("bad count {n} of {what}"))
}

fn get_name(buf: &mut &[u8], what: &str) -> Result<String, String> {
    duet_proto::pipe_body::get_string(buf)
        .map_err(|e| format!("{what}: {e}"))?
        .ok_or_else(|| format!("{what} is null"))
}

/// `Tablet.deserialize` (pipe reference §6.5).
fn decode_tablet(buf: &mut &[u8], with_category: bool) -> Result<InsertOp, String> {
    let device = get_name(buf, "tablet target")?;
    let rows = get_count(buf, "rows")?;
    let mut measurements = Vec::new();
    let mut types = Vec::new();
    if get_u8(buf, "schemas flag")? == 1 {
        let n = get_count(buf, "columns")?;
        for i in 0..n {
            if get_u8(buf, "schema flag")? != 1 {
                return Err(format!("column {i} has no schema"));
            }
            measurements.push(get_name(buf, "measurement")?);
            let code = get_u8(buf, "data type")?;
            let data_type = DataType::from_code(i32::from(code))
                .ok_or_else(|| format!("unknown data type {code}"))?;
            types.push(data_type);
            get_u8(buf, "encoding")?;
            get_u8(buf, "compressor")?;
            let props = get_count(buf, "properties")?;
            for _ in 0..props {
                get_name(buf, "property key")?;
                duet_proto::pipe_body::get_string(buf).map_err(|e| e.to_string())?;
            }
            if with_category {
                let category = get_u8(buf, "column category")?;
                if category != 1 {
                    return Err(format!(
                        "column {} is a table-model {} column; Duet takes tree-model tablets only",
                        measurements[i],
                        if category == 0 { "TAG" } else { "ATTRIBUTE" }
                    ));
                }
            }
        }
    }
    let mut times = Vec::with_capacity(rows);
    if get_u8(buf, "times flag")? == 1 {
        need(buf, rows.saturating_mul(8), "timestamps")?;
        for _ in 0..rows {
            times.push(buf.get_i64());
        }
    } else if rows > 0 {
        return Err("a tablet with rows but no timestamps".into());
    }
    let mut nulls: Vec<Option<Vec<bool>>> = vec![None; types.len()];
    if get_u8(buf, "bitmaps flag")? == 1 {
        for slot in nulls.iter_mut() {
            if get_u8(buf, "bitmap flag")? == 1 {
                get_count(buf, "bitmap size")?;
                let n = get_count(buf, "bitmap bytes")?;
                need(buf, n, "bitmap")?;
                let (bits, tail) = buf.split_at(n);
                *buf = tail;
                let marks: Vec<bool> = (0..rows)
                    .map(|r| bits.get(r / 8).is_some_and(|b| b & (1 << (r % 8)) != 0))
                    .collect();
                *slot = marks.iter().any(|x| *x).then_some(marks);
            }
        }
    }
    let mut columns = Vec::with_capacity(types.len());
    if get_u8(buf, "values flag")? == 1 {
        for (data_type, nulls) in types.iter().zip(nulls) {
            if get_u8(buf, "column flag")? != 1 {
                return Err("a column without values".into());
            }
            columns.push(decode_values(buf, *data_type, rows, nulls)?);
        }
    } else if rows > 0 && !types.is_empty() {
        return Err("a tablet with rows but no values".into());
    }
    // Null cells keep their placeholder values here; the columns' null marks make the write path
    // skip them, as for a client's insertTablet.
    Ok(InsertOp {
        device,
        aligned: false,
        measurements,
        columns,
        times,
    })
}

fn decode_values(
    buf: &mut &[u8],
    data_type: DataType,
    rows: usize,
    nulls: Option<Vec<bool>>,
) -> Result<Column, String> {
    let fixed = |buf: &mut &[u8], width: usize| need(buf, rows.saturating_mul(width), "values");
    let values = match data_type.physical() {
        DataType::Boolean => {
            fixed(buf, 1)?;
            ColumnValues::Boolean((0..rows).map(|_| buf.get_u8() != 0).collect())
        }
        DataType::Int32 => {
            fixed(buf, 4)?;
            ColumnValues::Int32((0..rows).map(|_| buf.get_i32()).collect())
        }
        DataType::Int64 => {
            fixed(buf, 8)?;
            ColumnValues::Int64((0..rows).map(|_| buf.get_i64()).collect())
        }
        DataType::Float => {
            fixed(buf, 4)?;
            ColumnValues::Float((0..rows).map(|_| buf.get_f32()).collect())
        }
        DataType::Double => {
            fixed(buf, 8)?;
            ColumnValues::Double((0..rows).map(|_| buf.get_f64()).collect())
        }
        _ => {
            let mut v = Vec::with_capacity(rows.min(buf.len()));
            for _ in 0..rows {
                if get_u8(buf, "text flag")? == 1 {
                    let n = get_count(buf, "text length")?;
                    need(buf, n, "text")?;
                    let (head, tail) = buf.split_at(n);
                    v.push(head.to_vec());
                    *buf = tail;
                } else {
                    v.push(Vec::new());
                }
            }
            ColumnValues::Binary(v)
        }
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
    use duet_storage::DeleteOp;

    fn sample() -> Vec<LogEntry> {
        vec![
            LogEntry {
                lsn: 3,
                origin: Origin::Local,
                version: Version {
                    hlc: 99,
                    instance: 5,
                },
                ops: vec![Op::Insert(InsertOp {
                    device: "root.sg.d1".into(),
                    aligned: true,
                    measurements: vec!["s1".into()],
                    columns: vec![Column {
                        data_type: DataType::Text,
                        nulls: Some(vec![false, true]),
                        values: ColumnValues::Binary(vec![b"a".to_vec(), vec![]]),
                    }],
                    times: vec![1, 2],
                })],
            },
            LogEntry {
                lsn: 4,
                origin: Origin::Pipe { instance: 8 },
                version: Version {
                    hlc: 100,
                    instance: 8,
                },
                ops: vec![Op::Delete(DeleteOp {
                    series: vec!["root.sg.d1.s1".into()],
                    start: 0,
                    end: 1,
                })],
            },
        ]
    }

    #[test]
    fn duet_batches_round_trip_and_reject_truncation() {
        let body = encode_entries(&sample());
        assert_eq!(decode_entries(&body).unwrap(), sample());
        for cut in 0..body.len() {
            assert!(decode_entries(&body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn iotdb_tablets_carry_inserts_and_count_deletes() {
        let (body, skipped) = encode_iotdb_tablets(&sample());
        assert_eq!(skipped, 1);
        // 0 binaries, 0 insert nodes, 1 tablet whose target name follows.
        assert_eq!(&body[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&body[12..16], &[0, 0, 0, 10]);
        assert_eq!(&body[16..26], b"root.sg.d1");
        // Ends with isAligned=1 and a null database (-1).
        assert_eq!(&body[body.len() - 5..], &[1, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn iotdb_tablets_round_trip_through_the_receivers_decoder() {
        let inserts: Vec<InsertOp> = sample()
            .into_iter()
            .flat_map(|e| e.ops)
            .filter_map(|op| match op {
                Op::Insert(i) => Some(i),
                Op::Delete(_) => None,
            })
            .collect();
        let (body, _) = encode_iotdb_tablets(&sample());
        let decoded = decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body).unwrap();
        assert_eq!(decoded, inserts);
        // Every truncation is an error, never a panic or a partial batch.
        for cut in 0..body.len() {
            assert!(
                decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body[..cut]).is_err(),
                "cut {cut}"
            );
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
        let decoded = decode_iotdb_tablets(3, &body).unwrap();
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
    fn insert_nodes_and_table_model_tablets_are_refused_by_name() {
        let mut body = Vec::new();
        body.put_i32(0);
        body.put_i32(1);
        let err = decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body).unwrap_err();
        assert!(
            err.contains("InsertNode") && err.contains("sink.format"),
            "{err}"
        );
        let mut table = InsertOp {
            device: "t1".into(),
            aligned: true,
            measurements: vec!["s".into()],
            columns: vec![Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64(vec![1]),
            }],
            times: vec![1],
        };
        let entry = |insert: &InsertOp| LogEntry {
            lsn: 1,
            origin: Origin::Local,
            version: Version {
                hlc: 1,
                instance: 1,
            },
            ops: vec![Op::Insert(insert.clone())],
        };
        let (body, _) = encode_iotdb_tablets(&[entry(&table)]);
        let err = decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body).unwrap_err();
        assert!(err.contains("table-model"), "{err}");
        table.device = "root.sg.d1".into();
        let (body, _) = encode_iotdb_tablets(&[entry(&table)]);
        assert_eq!(
            decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body).unwrap(),
            vec![table]
        );
    }

    #[test]
    fn history_groups_points_by_version() {
        let chunk = SeriesChunk {
            data_type: Some(DataType::Int64),
            times: vec![1, 2, 3],
            values: Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64(vec![10, 20, 30]),
            },
            versions: vec![
                Version {
                    hlc: 1,
                    instance: 1,
                },
                Version {
                    hlc: 1,
                    instance: 1,
                },
                Version {
                    hlc: 2,
                    instance: 2,
                },
            ],
        };
        let entries = history_entries("root.sg.d1", "s1", false, &chunk, |_| true);
        assert_eq!(entries.len(), 2);
        let only_local = history_entries("root.sg.d1", "s1", false, &chunk, |v| v.instance == 1);
        assert_eq!(only_local.len(), 1);
        let Op::Insert(insert) = &only_local[0].ops[0] else {
            panic!()
        };
        assert_eq!(
            (insert.device.as_str(), insert.times.clone()),
            ("root.sg.d1", vec![1, 2])
        );
    }
}

/// IoTDB's `TRANSFER_COMPRESSED`: a wrapper around another request (pipe reference §6.6).
pub const TRANSFER_COMPRESSED: i16 = 300;

/// IoTDB's compressor type byte for snappy in the compressed wrapper.
const COMPRESSOR_SNAPPY: u8 = 0;

/// Largest decompressed size a receiver accepts (IoTDB's anti-decompression-bomb limit).
pub const MAX_DECOMPRESSED_BYTES: usize = 1 << 30;

/// Wraps a request (`version`, `type_`, `body`) into IoTDB's compressed request with snappy (raw block
/// format, as the Java sender's `Snappy.compress`).
pub fn compress_snappy(version: i8, type_: i16, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut inner = Vec::with_capacity(body.len() + 3);
    inner.put_i8(version);
    inner.put_i16(type_);
    inner.extend_from_slice(body);
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&inner)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(compressed.len() + 6);
    out.put_u8(1);
    out.put_u8(COMPRESSOR_SNAPPY);
    out.put_i32(
        i32::try_from(inner.len()).map_err(|_| "request too large to compress".to_string())?,
    );
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// Unwraps a compressed request into (version, type, body), undoing each stage in reverse order.
pub fn decompress(body: &[u8]) -> Result<(i8, i16, Vec<u8>), String> {
    let mut buf = body;
    if buf.is_empty() {
        return Err("empty compressed request".into());
    }
    let n = usize::from(buf.get_u8());
    let mut stages = Vec::with_capacity(n);
    for _ in 0..n {
        if buf.len() < 5 {
            return Err("truncated compressor list".into());
        }
        let kind = buf.get_u8();
        let length = buf.get_i32();
        let length = usize::try_from(length).map_err(|_| format!("Decompressed length should be between 0 and {MAX_DECOMPRESSED_BYTES}, but got {length}."))?;
        if length > MAX_DECOMPRESSED_BYTES {
            return Err(format!("Decompressed length should be between 0 and {MAX_DECOMPRESSED_BYTES}, but got {length}."));
        }
        stages.push((kind, length));
    }
    let mut data = buf.to_vec();
    for (kind, length) in stages.into_iter().rev() {
        data = match kind {
            COMPRESSOR_SNAPPY => {
                let declared = snap::raw::decompress_len(&data).map_err(|e| e.to_string())?;
                if declared != length {
                    return Err(format!(
                        "snappy stage declares {declared} bytes, the request says {length}"
                    ));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(&data)
                    .map_err(|e| e.to_string())?
            }
            other => {
                return Err(format!(
                    "compressor type {other} is not supported by this receiver (snappy only)"
                ))
            }
        };
    }
    if data.len() < 3 {
        return Err("truncated inner request".into());
    }
    let mut inner = data.as_slice();
    let version = inner.get_i8();
    let type_ = inner.get_i16();
    Ok((version, type_, inner.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod compression_tests {
    use super::*;

    #[test]
    fn snappy_wrapper_round_trips_and_rejects_garbage() {
        let body = vec![7u8; 10_000];
        let wrapped = compress_snappy(1, DUET_TRANSFER_ENTRIES, &body).unwrap();
        assert!(wrapped.len() < body.len() / 4);
        assert_eq!(
            decompress(&wrapped).unwrap(),
            (1, DUET_TRANSFER_ENTRIES, body)
        );
        assert!(decompress(&[1, 0, 0, 0, 0, 9, 1, 2, 3]).is_err());
        assert!(decompress(&[1, 4, 0, 0, 0, 1, 0]).is_err());
        assert!(decompress(&[1, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }
}
