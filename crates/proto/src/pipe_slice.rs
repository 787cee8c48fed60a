//! The bytes of IoTDB's sliced pipe request (type 400, pipe reference §6.7), both ways: a Java sender
//! cuts a large request body into slices sent one per request; this module reads and writes one
//! slice. Reassembling them, and what is answered to a slice out of order, is the receiver's
//! (`duet_runtime::slice`).
//!
//! A slice's body: `i32 orderId, i16 originReqType, i32 originBodySize, Binary slice (i32 length +
//! bytes), i32 sliceIndex, i32 sliceCount` (apache/iotdb `iotdb-core/node-commons/src/main/java/org/
//! apache/iotdb/commons/pipe/sink/payload/thrift/request/PipeTransferSliceReq.java` at 1edb6a4d),
//! read with [`ByteReader`] like every other pipe body: each length is checked against the bytes
//! there are, and nothing may follow the count.

use bytes::BufMut;

use crate::pipe_body::request_type;
use crate::reader::ByteReader;
use crate::ProtoError;

/// IoTDB's `TRANSFER_SLICE`.
pub const TRANSFER_SLICE: i16 = request_type::TRANSFER_SLICE;

/// Why a slice request's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    /// A field is truncated, or the slice's length is negative or beyond the body.
    #[error(transparent)]
    Field(#[from] ProtoError),
    /// Bytes follow the slice count.
    #[error("{0} bytes after the slice's count")]
    TrailingBytes(usize),
}

/// One slice as the sender wrote it (its sizes, index and count unchecked: what is valid is the
/// receiver's to say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice<'a> {
    pub order_id: i32,
    pub origin_type: i16,
    pub origin_body_size: i32,
    pub body: &'a [u8],
    pub index: i32,
    pub count: i32,
}

impl Slice<'_> {
    /// Reads a slice request's body.
    pub fn decode(body: &[u8]) -> Result<Slice<'_>, SliceError> {
        let mut input = ByteReader::new(body);
        let slice = Slice {
            order_id: input.i32("orderId")?,
            origin_type: input.i16("originReqType")?,
            origin_body_size: input.i32("originBodySize")?,
            body: input.bytes("slice body")?,
            index: input.i32("sliceIndex")?,
            count: input.i32("sliceCount")?,
        };
        if !input.is_empty() {
            return Err(SliceError::TrailingBytes(input.remaining()));
        }
        Ok(slice)
    }

    /// Writes a slice request's body (what IoTDB's `PipeTransferSliceReq.toTPipeTransferReq` writes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.body.len());
        out.put_i32(self.order_id);
        out.put_i16(self.origin_type);
        out.put_i32(self.origin_body_size);
        out.put_i32(i32::try_from(self.body.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(self.body);
        out.put_i32(self.index);
        out.put_i32(self.count);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sample() -> Slice<'static> {
        Slice {
            order_id: 7,
            origin_type: 13,
            origin_body_size: 10,
            body: b"abcd",
            index: 1,
            count: 3,
        }
    }

    #[test]
    fn a_slice_reads_back_as_written_in_iotdbs_layout() {
        let bytes = sample().encode();
        assert_eq!(
            bytes,
            [
                &[0, 0, 0, 7, 0, 13, 0, 0, 0, 10, 0, 0, 0, 4][..],
                b"abcd",
                &[0, 0, 0, 1, 0, 0, 0, 3],
            ]
            .concat()
        );
        assert_eq!(Slice::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn truncated_lying_or_trailing_slices_are_typed_errors() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            let err = Slice::decode(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, SliceError::Field(_)), "cut {cut}: {err}");
            assert!(err.to_string().contains("truncated"), "cut {cut}: {err}");
        }
        // A slice length beyond the body, and a negative one.
        for length in [i32::MAX, -1] {
            let mut lying = bytes.clone();
            lying[10..14].copy_from_slice(&length.to_be_bytes());
            assert!(matches!(Slice::decode(&lying), Err(SliceError::Field(_))));
        }
        let mut trailing = bytes;
        trailing.push(0);
        let err = Slice::decode(&trailing).unwrap_err();
        assert!(matches!(err, SliceError::TrailingBytes(1)));
        assert_eq!(err.to_string(), "1 bytes after the slice's count");
    }
}
