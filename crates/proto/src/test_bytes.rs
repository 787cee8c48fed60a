//! Byte writers the unit tests' fixtures share (IoTDB's `ReadWriteIOUtils` forms, big-endian), so
//! every decoder's test writes its input the same way and none through the decoder it checks.

use bytes::BufMut;

/// A string as `ReadWriteIOUtils.write(String)`: an i32 length, then its UTF-8 bytes.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.put_i32(s.len() as i32);
    out.extend_from_slice(s.as_bytes());
}

/// A `PartialPath`/`MeasurementPath` as `serialize` writes it: the path type, then tsfile 2.x's
/// presence bytes (no measurement or device, the full path present) or, with `presence_bytes` off,
/// IoTDB 1.0's three null strings, then the nodes.
pub(crate) fn path(out: &mut Vec<u8>, path_type: u8, path: &str, presence_bytes: bool) {
    out.put_u8(path_type);
    if presence_bytes {
        out.put_u8(0);
        out.put_u8(0);
        out.put_u8(1);
        string(out, path);
    } else {
        for _ in 0..3 {
            out.put_i32(-1);
        }
    }
    let nodes: Vec<&str> = path.split('.').collect();
    out.put_i32(nodes.len() as i32);
    for n in nodes {
        string(out, n);
    }
}
