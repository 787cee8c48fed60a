//! Pipe transfer bodies the sink sends and the receiver reads.
//!
//! - Between Duet instances (negotiated in the handshake with `duet.protocol`): request type
//!   [`DUET_TRANSFER_ENTRIES`], a batch of change-log entries in the WAL's own encoding, so versions,
//!   origins and deletions cross unchanged.
//! - To a receiver that does not know it (a real IoTDB 2.x): IoTDB's `TRANSFER_TABLET_BATCH_V2` (13)
//!   with one tablet per insert in the tsfile-2 layout of pipe reference §6.5. Deletions cannot be
//!   expressed there and are counted as not sent.

use bytes::{Buf, BufMut};
use duet_proto::pipe_tablet::{self, TabletRef};
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
    let n = usize::try_from(body.get_u32()).unwrap_or(usize::MAX);
    // Each entry takes at least its 4-byte length: a count beyond that is malformed, not a reservation.
    if n > body.len() / 4 {
        return Err(format!(
            "batch claims {n} entries but has only {} bytes",
            body.len()
        ));
    }
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        if body.len() < 4 {
            return Err(format!("truncated batch at entry {i}"));
        }
        let len = usize::try_from(body.get_u32()).unwrap_or(usize::MAX);
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
                Op::Insert(insert) => tablets.push(TabletRef {
                    device: &insert.device,
                    aligned: insert.aligned,
                    measurements: &insert.measurements,
                    columns: &insert.columns,
                    times: &insert.times,
                }),
                Op::Delete(_) => skipped_deletes += 1,
            }
        }
    }
    (
        pipe_tablet::encode_tablet_batch_v2(tablets),
        skipped_deletes,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use duet_proto::pipe_body::put_string;
    use duet_proto::types::{Column, ColumnValues, DataType};
    use duet_storage::DeleteOp;

    /// The tablets of an IoTDB tablet request, as inserts.
    fn decode_iotdb_tablets(type_: i16, body: &[u8]) -> Result<Vec<InsertOp>, String> {
        let tablets = pipe_tablet::decode_tablets(type_, body).map_err(|e| e.to_string())?;
        Ok(tablets
            .into_iter()
            .map(|t| InsertOp {
                device: t.device,
                aligned: t.aligned,
                measurements: t.measurements,
                columns: t.columns,
                times: t.times,
            })
            .collect())
    }

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
    fn table_model_tablets_are_refused_by_name() {
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

/// The most compression stages one request may declare (IoTDB has five compressors; a sender applies
/// each at most once).
pub const MAX_COMPRESSION_STAGES: usize = 8;

/// No snappy block expands by more than this: its densest element is a 3-byte copy of 64 bytes.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// Unwraps a compressed request into (version, type, body), undoing each stage in reverse order.
///
/// Before a stage is decompressed, its declared size must be within [`MAX_DECOMPRESSED_BYTES`] (IoTDB's
/// limit), agree with the snappy block's own header, and be no more than the block could expand to, so
/// a few bytes claiming a gigabyte are refused before anything is reserved.
pub fn decompress(body: &[u8]) -> Result<(i8, i16, Vec<u8>), String> {
    let mut buf = body;
    if buf.is_empty() {
        return Err("empty compressed request".into());
    }
    let n = usize::from(buf.get_u8());
    if n > MAX_COMPRESSION_STAGES {
        return Err(format!(
            "{n} compression stages; at most {MAX_COMPRESSION_STAGES} are accepted"
        ));
    }
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
                if declared > data.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
                    return Err(format!(
                        "snappy stage of {} bytes cannot expand to the {declared} it declares",
                        data.len()
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

    /// A snappy block of a few bytes whose header (and the request) claim 1 GiB: refused before the
    /// gigabyte is reserved, as are more stages than any sender uses.
    #[test]
    fn declared_sizes_beyond_what_the_block_can_expand_to_are_refused() {
        let gib = MAX_DECOMPRESSED_BYTES as i32;
        let mut body = vec![1, COMPRESSOR_SNAPPY];
        body.extend_from_slice(&gib.to_be_bytes());
        // Snappy's preamble: the uncompressed length as a varint (2^30), then one literal byte.
        body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x41]);
        let err = decompress(&body).unwrap_err();
        assert!(err.contains("cannot expand"), "{err}");
        let mut body = vec![255];
        body.extend(std::iter::repeat_n(0, 255 * 5));
        let err = decompress(&body).unwrap_err();
        assert!(err.contains("compression stages"), "{err}");
    }

    #[test]
    fn entry_counts_beyond_the_body_are_refused() {
        let err = decode_entries(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap_err();
        assert!(err.contains("claims 4294967295 entries"), "{err}");
    }
}
