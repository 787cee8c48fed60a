//! Byte writers the unit tests' fixtures share (IoTDB's `ReadWriteIOUtils` forms, big-endian), so
//! every decoder's test writes its input the same way and none through the decoder it checks.

use bytes::BufMut;

/// A string as `ReadWriteIOUtils.write(String)`: an i32 length, then its UTF-8 bytes.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.put_i32(s.len() as i32);
    out.extend_from_slice(s.as_bytes());
}
