//! Primitives of pipe-transfer bodies (pipe reference §6.2): big-endian integers, `String` as an i32
//! length plus UTF-8 bytes (-1 for null), and `Map<String,String>` as an i32 count plus pairs — the
//! layout of the handshake (type 51) parameters.

use std::collections::BTreeMap;

use bytes::BufMut;

use crate::reader::ByteReader;
use crate::{ProtoError, Result};

/// Request type codes of IoTDB's `PipeRequestType` that Duet sends or answers.
pub mod request_type {
    pub const HANDSHAKE_DATANODE_V1: i16 = 1;
    pub const HANDSHAKE_DATANODE_V2: i16 = 51;
    pub const TRANSFER_TABLET_INSERT_NODE: i16 = 2;
    pub const TRANSFER_TABLET_RAW: i16 = 3;
    pub const TRANSFER_TS_FILE_PIECE: i16 = 4;
    pub const TRANSFER_TS_FILE_SEAL: i16 = 5;
    pub const TRANSFER_TABLET_BATCH: i16 = 6;
    pub const TRANSFER_TABLET_BINARY: i16 = 7;
    pub const TRANSFER_TS_FILE_PIECE_WITH_MOD: i16 = 8;
    pub const TRANSFER_TS_FILE_SEAL_WITH_MOD: i16 = 9;
    pub const TRANSFER_TABLET_INSERT_NODE_V2: i16 = 10;
    pub const TRANSFER_TABLET_RAW_V2: i16 = 11;
    pub const TRANSFER_TABLET_BINARY_V2: i16 = 12;
    pub const TRANSFER_TABLET_BATCH_V2: i16 = 13;
    pub const TRANSFER_PLAN_NODE: i16 = 100;
    pub const TRANSFER_SCHEMA_SNAPSHOT_PIECE: i16 = 101;
    pub const TRANSFER_SCHEMA_SNAPSHOT_SEAL: i16 = 102;
    pub const TRANSFER_CONFIG_PLAN: i16 = 200;
    pub const TRANSFER_CONFIG_SNAPSHOT_PIECE: i16 = 201;
    pub const TRANSFER_CONFIG_SNAPSHOT_SEAL: i16 = 202;
    pub const TRANSFER_COMPRESSED: i16 = 300;
    pub const TRANSFER_SLICE: i16 = 400;
}

/// The `version` byte every IoTDB thrift sink sends.
pub const REQUEST_VERSION: i8 = 1;

/// Handshake parameter keys (pipe reference §6.4).
pub mod handshake_key {
    pub const TIMESTAMP_PRECISION: &str = "timestampPrecision";
    pub const CLUSTER_ID: &str = "clusterID";
    pub const CONVERT_ON_TYPE_MISMATCH: &str = "convertOnTypeMismatch";
    pub const LOAD_TSFILE_STRATEGY: &str = "loadTsFileStrategy";
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    pub const VALIDATE_TSFILE: &str = "validateTsFile";
    pub const MARK_AS_PIPE_REQUEST: &str = "markAsPipeRequest";
}

pub fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.put_i32(i32::try_from(s.len()).unwrap_or(i32::MAX));
            out.extend_from_slice(s.as_bytes());
        }
        None => out.put_i32(-1),
    }
}

/// Reads what [`put_string`] wrote: `None` for null.
pub fn get_string(buf: &mut &[u8]) -> Result<Option<String>> {
    let mut input = ByteReader::new(buf);
    let s = input.nullable_string("string")?;
    *buf = input.rest();
    Ok(s)
}

/// Encodes a string map (sorted, so the bytes are deterministic).
pub fn encode_map(map: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i32(i32::try_from(map.len()).unwrap_or(i32::MAX));
    for (k, v) in map {
        put_string(&mut out, Some(k));
        put_string(&mut out, Some(v));
    }
    out
}

/// Decodes a string map; null keys are rejected, null values become empty strings.
pub fn decode_map(buf: &[u8]) -> Result<BTreeMap<String, String>> {
    let mut input = ByteReader::new(buf);
    // A pair takes at least its two length words.
    let n = input.count(8, "map entries")?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let key = input.string("map key")?;
        let value = input.nullable_string("map value")?.unwrap_or_default();
        map.insert(key, value);
    }
    Ok(map)
}

/// A file piece (`PipeTransferFilePieceReq`, types 4 and 8): the file's name, where the piece starts,
/// its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePiece {
    pub file_name: String,
    pub start_offset: i64,
    pub bytes: Vec<u8>,
}

/// Reads a file piece body.
pub fn decode_file_piece(body: &[u8]) -> Result<FilePiece> {
    let mut input = ByteReader::new(body);
    let file_name = input.string("file name")?;
    let start_offset = input.i64("start offset")?;
    let bytes = input.bytes("file piece")?.to_vec();
    expect_end(&input, "file piece")?;
    Ok(FilePiece {
        file_name,
        start_offset,
        bytes,
    })
}

/// A seal: the files sent (in order; a `None` name is an optional file that is absent), their
/// lengths, and the sender's parameters (`PipeTransferFileSealReqV1`, type 5, has one file and none;
/// `…SealReqV2`, type 9, any number: with a mods file, `[mods, tsfile]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileSeal {
    pub files: Vec<(Option<String>, i64)>,
    pub params: BTreeMap<String, String>,
}

/// Reads a type-5 seal: the file name and its length.
pub fn decode_file_seal_v1(body: &[u8]) -> Result<FileSeal> {
    let mut input = ByteReader::new(body);
    let name = input.string("file name")?;
    let length = input.i64("file length")?;
    expect_end(&input, "file seal")?;
    Ok(FileSeal {
        files: vec![(Some(name), length)],
        params: BTreeMap::new(),
    })
}

/// Reads a type-9 seal: names, lengths (as many), then a string map.
pub fn decode_file_seal_v2(body: &[u8]) -> Result<FileSeal> {
    let mut input = ByteReader::new(body);
    let n = input.count(4, "file names")?;
    let names = input.many(n, |r| r.nullable_string("file name"))?;
    let lengths = input.count(8, "file lengths")?;
    if lengths != n {
        return Err(ProtoError::Malformed(format!(
            "{n} file names but {lengths} file lengths"
        )));
    }
    let mut files = Vec::with_capacity(n);
    for name in names {
        files.push((name, input.i64("file length")?));
    }
    let pairs = input.count(8, "seal parameters")?;
    let mut params = BTreeMap::new();
    for _ in 0..pairs {
        let key = input.string("parameter key")?;
        let value = input
            .nullable_string("parameter value")?
            .unwrap_or_default();
        params.insert(key, value);
    }
    expect_end(&input, "file seal")?;
    Ok(FileSeal { files, params })
}

fn expect_end(input: &ByteReader<'_>, what: &str) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(ProtoError::Malformed(format!(
            "{} bytes after the {what}",
            input.remaining()
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip_and_truncation_is_an_error() {
        let mut map = BTreeMap::new();
        map.insert("clusterID".to_string(), "abc".to_string());
        map.insert("timestampPrecision".to_string(), "ms".to_string());
        let bytes = encode_map(&map);
        assert_eq!(&bytes[..4], &[0, 0, 0, 2]);
        assert_eq!(decode_map(&bytes).unwrap(), map);
        for cut in 0..bytes.len() {
            assert!(decode_map(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn file_pieces_and_seals_are_read_as_iotdb_writes_them() {
        let mut piece = Vec::new();
        put_string(&mut piece, Some("1-1-0-0.tsfile"));
        piece.put_i64(5);
        piece.put_i32(3);
        piece.extend_from_slice(b"abc");
        assert_eq!(
            decode_file_piece(&piece).unwrap(),
            FilePiece {
                file_name: "1-1-0-0.tsfile".into(),
                start_offset: 5,
                bytes: b"abc".to_vec()
            }
        );
        let mut seal = Vec::new();
        seal.put_i32(2);
        put_string(&mut seal, Some("a.tsfile.mods"));
        put_string(&mut seal, Some("a.tsfile"));
        seal.put_i32(2);
        seal.put_i64(10);
        seal.put_i64(2000);
        seal.put_i32(1);
        put_string(&mut seal, Some("DATABASE_NAME_a.tsfile"));
        put_string(&mut seal, Some("root.sg"));
        let decoded = decode_file_seal_v2(&seal).unwrap();
        assert_eq!(
            decoded.files,
            [
                (Some("a.tsfile.mods".into()), 10),
                (Some("a.tsfile".into()), 2000)
            ]
        );
        assert_eq!(decoded.params["DATABASE_NAME_a.tsfile"], "root.sg");
        for cut in 0..seal.len() {
            assert!(decode_file_seal_v2(&seal[..cut]).is_err());
        }
        for cut in 0..piece.len() {
            assert!(decode_file_piece(&piece[..cut]).is_err());
        }
        let mut v1 = Vec::new();
        put_string(&mut v1, Some("b.tsfile"));
        v1.put_i64(7);
        assert_eq!(
            decode_file_seal_v1(&v1).unwrap().files,
            [(Some("b.tsfile".into()), 7)]
        );
    }
}
