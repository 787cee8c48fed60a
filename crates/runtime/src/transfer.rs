//! Pipe transfer bodies the sink sends and the receiver reads.
//!
//! - Between Duet instances (negotiated in the handshake with `duet.protocol`): request type
//!   [`DUET_TRANSFER_ENTRIES`], a batch of change-log entries in the WAL's own encoding, so versions,
//!   origins and deletions cross unchanged.
//! - To a receiver that does not know it (a real IoTDB 2.x): IoTDB's `TRANSFER_TABLET_BATCH_V2` (13)
//!   with one tablet per insert in the tsfile-2 layout of pipe reference §6.5. Deletions cannot be
//!   expressed there and are counted as not sent.

use bytes::BufMut;
use duet_proto::pipe_tablet::{self, TabletRef};
use duet_proto::reader::ByteReader;
use duet_storage::{InsertOp, LogEntry, Op, Origin, SeriesChunk, Version};

/// Duet's own request type: a batch of log entries. Outside IoTDB's code space (0–400, -1, -2).
pub const DUET_TRANSFER_ENTRIES: i16 = 1001;

/// IoTDB's `TRANSFER_TABLET_BATCH_V2`.
pub const IOTDB_TABLET_BATCH_V2: i16 = 13;

// The compressed request (type 300) is proto's (`duet_proto::pipe_compressed`); the pipe task names its
// type here.
pub use duet_proto::pipe_compressed::TRANSFER_COMPRESSED;

/// Why a Duet batch body does not decode.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The batch's own framing (entry count, entry lengths) is wrong.
    #[error("{0}")]
    Framing(#[from] duet_proto::ProtoError),
    /// An entry's bytes are not a log entry.
    #[error("entry {index}: {source}")]
    Entry {
        index: usize,
        #[source]
        source: duet_storage::DecodeError,
    },
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
}

/// Encodes entries as one Duet batch body: an i32 count, then each entry's length and bytes.
pub fn encode_entries(entries: &[LogEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * entries.len());
    out.put_i32(i32::try_from(entries.len()).unwrap_or(i32::MAX));
    let mut buf = Vec::new();
    for entry in entries {
        buf.clear();
        duet_storage::transfer::encode_entry(entry, &mut buf);
        out.put_i32(i32::try_from(buf.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(&buf);
    }
    out
}

/// Decodes a Duet batch body.
pub fn decode_entries(body: &[u8]) -> Result<Vec<LogEntry>, BatchError> {
    let mut input = ByteReader::new(body);
    // Each entry takes at least its 4-byte length: a count beyond that is malformed, not a reservation.
    let n = input.count(4, "batch entries")?;
    let mut entries = Vec::with_capacity(n);
    for index in 0..n {
        let bytes = input.bytes("batch entry")?;
        let entry = duet_storage::transfer::decode_entry(bytes)
            .map_err(|source| BatchError::Entry { index, source })?;
        entries.push(entry);
    }
    if !input.is_empty() {
        return Err(BatchError::Trailing(input.remaining()));
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
/// operations (deletions, schema changes) could not be expressed.
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
                // Neither a deletion nor a schema change has a tablet form.
                Op::Delete(_) | Op::Meta(_) => skipped_deletes += 1,
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
    use duet_proto::types::{Column, ColumnValues, DataType};
    use duet_storage::DeleteOp;

    /// The tablets of an IoTDB tablet request, as inserts.
    fn decode_iotdb_tablets(type_: i16, body: &[u8]) -> duet_proto::Result<Vec<InsertOp>> {
        let tablets = pipe_tablet::decode_tablets(type_, body)?;
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
    fn entry_counts_beyond_the_body_are_refused() {
        for count in [[0x7f, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xff]] {
            let mut body = count.to_vec();
            body.extend_from_slice(&[0, 0, 0, 0]);
            let err = decode_entries(&body).unwrap_err();
            assert!(matches!(err, BatchError::Framing(_)), "{err}");
        }
    }

    #[test]
    fn a_damaged_entry_is_named_by_its_index() {
        // The first entry whole, the second with a byte after its end (inside its length).
        let mut body = encode_entries(&sample()[..1]);
        body[..4].copy_from_slice(&2i32.to_be_bytes());
        let mut second = Vec::new();
        duet_storage::transfer::encode_entry(&sample()[1], &mut second);
        second.push(0);
        body.put_i32(second.len() as i32);
        body.extend_from_slice(&second);
        let err = decode_entries(&body).unwrap_err();
        assert!(matches!(err, BatchError::Entry { index: 1, .. }), "{err}");
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
                Op::Delete(_) | Op::Meta(_) => None,
            })
            .collect();
        let (body, _) = encode_iotdb_tablets(&sample());
        let decoded = decode_iotdb_tablets(IOTDB_TABLET_BATCH_V2, &body).unwrap();
        assert_eq!(decoded, inserts);
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
