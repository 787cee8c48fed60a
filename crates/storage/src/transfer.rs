//! Log entries as bytes outside the log: the pipe runtime ships entries to a peer in the same
//! encoding the WAL uses, so an entry's ops, origin and version cross the wire unchanged.

use crate::codec::{self, DecodeError};
use crate::types::LogEntry;

/// Encodes an entry exactly as a WAL record payload.
pub fn encode_entry(entry: &LogEntry, out: &mut Vec<u8>) {
    codec::encode_header(entry.lsn, &entry.origin, entry.version, out);
    codec::encode_ops(&entry.ops, out);
}

/// Decodes what [`encode_entry`] wrote.
pub fn decode_entry(bytes: &[u8]) -> Result<LogEntry, DecodeError> {
    codec::decode_entry(bytes)
}
