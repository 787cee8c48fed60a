//! Primitives of pipe-transfer bodies (pipe reference §6.2): big-endian integers, `String` as an i32
//! length plus UTF-8 bytes (-1 for null), and `Map<String,String>` as an i32 count plus pairs — the
//! layout of the handshake (type 51) parameters.

use std::collections::BTreeMap;

use bytes::BufMut;

use crate::reader::ByteReader;
use crate::Result;

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
}
