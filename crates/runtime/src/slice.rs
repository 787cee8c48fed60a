//! IoTDB's sliced request (type 400, pipe reference §6.7): a Java sender cuts a request body of at
//! least `pipeSinkRequestSliceThresholdBytes` (0.8 × the thrift frame limit) into slices sent one per
//! request on the same connection; the receiver buffers them per connection and processes the
//! reassembled request when the last one arrives.
//!
//! A slice's bytes are read by `duet_proto::pipe_slice` (a malformed one is answered
//! PIPE_TRANSFER_EXECUTE_STATEMENT_ERROR, 1805, and drops the buffer); this module reassembles. What
//! is checked, and answered, is IoTDB's `PipeTransferSliceReqHandler.receiveSlice` (`…/thrift/common/`,
//! 261917d6) and `IoTDBDataNodeReceiver.handleTransferSlice`: a slice must carry a valid index and
//! sizes, the first one index 0, every later one the same order id, origin type, origin size and
//! count and the next index, and the slices together exactly the origin size; anything else answers
//! PIPE_TRANSFER_SLICE_OUT_OF_ORDER (1812) and drops the buffer. Every request that is not a slice
//! drops it too (the receiver calls [`SliceBuffer::clear`]).
//!
//! **Invariant:** what a connection buffers is bounded by [`MAX_REASSEMBLED_BYTES`] and by the
//! origin size its first slice declared, and grows only with the slices that arrived, never by what
//! a header claims; the reassembled body is exactly the origin size.

use duet_proto::pipe_body::REQUEST_VERSION;
use duet_proto::pipe_compressed::reserve_within;
use duet_proto::pipe_slice::Slice;
pub use duet_proto::pipe_slice::TRANSFER_SLICE;
use duet_proto::status::{self, StatusCode};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp};

use crate::handshake::pipe_status;

/// The largest request a connection reassembles from slices: IoTDB's anti-bomb limit for a
/// decompressed request (1 GiB), which also bounds what one connection can make the receiver hold.
/// (IoTDB itself bounds it only by its pipe memory; its senders slice bodies of 410 MiB and more,
/// far above any batch they build by default.)
pub const MAX_REASSEMBLED_BYTES: usize = 1 << 30;

/// IoTDB's answer to a slice that is not the last.
pub const WAITING_MESSAGE: &str =
    "Slice received, waiting for more slices to complete the request.";

/// IoTDB's answer to a slice out of order.
pub const OUT_OF_ORDER_MESSAGE: &str =
    "Slice request is out of order, please check the request sequence.";

/// IoTDB's `isValidSliceReq`, plus Duet's bounds: the origin size within
/// [`MAX_REASSEMBLED_BYTES`] is checked apart (it has its own answer), and a count above the
/// origin size (slices are never empty, but for an empty body's single one) is refused.
fn is_valid(slice: &Slice<'_>, origin_size: usize) -> bool {
    slice.count > 0
        && slice.index >= 0
        && slice.index < slice.count
        && slice.body.len() <= origin_size
        && usize::try_from(slice.count).is_ok_and(|count| count <= origin_size.max(1))
}

/// A request being reassembled on one connection.
#[derive(Debug)]
struct Assembly {
    order_id: i32,
    origin_type: i16,
    origin_size: usize,
    count: i32,
    /// The slices received so far, concatenated; its length is at most `origin_size`.
    body: Vec<u8>,
    /// How many slices `body` holds: the index the next slice must carry.
    received: i32,
}

/// What the receiver does with a slice.
#[derive(Debug)]
pub enum SliceOutcome {
    /// Answer this (waiting for more slices, or refused).
    Answer(TPipeTransferResp),
    /// The last slice arrived: process this request, reassembled (version 1, as IoTDB builds it).
    Complete(TPipeTransferReq),
}

/// One connection's slices (kept in its `ReceiverState`).
#[derive(Debug, Default)]
pub struct SliceBuffer {
    assembly: Option<Assembly>,
}

impl SliceBuffer {
    /// Drops what was buffered: any request that is not a slice, and every refused slice, resets
    /// the reassembly (IoTDB's `sliceReqHandler.clear()`).
    pub fn clear(&mut self) {
        self.assembly = None;
    }

    /// Bytes buffered now.
    pub fn buffered(&self) -> usize {
        self.assembly.as_ref().map_or(0, |a| a.body.len())
    }

    /// Takes one slice request's body.
    pub fn receive(&mut self, body: &[u8]) -> SliceOutcome {
        let slice = match Slice::decode(body) {
            Ok(s) => s,
            Err(e) => {
                self.clear();
                return SliceOutcome::Answer(pipe_status(
                    StatusCode::PipeTransferExecuteStatementError,
                    format!("Malformed slice request: {e}"),
                ));
            }
        };
        let Some(origin_size) = usize::try_from(slice.origin_body_size).ok() else {
            return self.out_of_order();
        };
        if origin_size > MAX_REASSEMBLED_BYTES {
            self.clear();
            return SliceOutcome::Answer(pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!(
                    "A sliced request of {origin_size} bytes exceeds this receiver's limit of {MAX_REASSEMBLED_BYTES} bytes."
                ),
            ));
        }
        if !is_valid(&slice, origin_size) {
            return self.out_of_order();
        }
        let assembly = match &mut self.assembly {
            Some(a) => a,
            None if slice.index != 0 => return self.out_of_order(),
            None => self.assembly.insert(Assembly {
                order_id: slice.order_id,
                origin_type: slice.origin_type,
                origin_size,
                count: slice.count,
                body: Vec::new(),
                received: 0,
            }),
        };
        let in_order = assembly.order_id == slice.order_id
            && assembly.origin_type == slice.origin_type
            && assembly.origin_size == origin_size
            && assembly.count == slice.count
            && assembly.received == slice.index
            && assembly.body.len() + slice.body.len() <= origin_size;
        if !in_order {
            return self.out_of_order();
        }
        // The buffer grows with the slices that arrived, never past the origin size.
        if reserve_within(&mut assembly.body, slice.body.len(), origin_size).is_err() {
            self.clear();
            return SliceOutcome::Answer(pipe_status(
                StatusCode::PipeReceiverTemporaryUnavailable,
                format!("Cannot reserve {origin_size} bytes to reassemble a sliced request."),
            ));
        }
        assembly.body.extend_from_slice(slice.body);
        assembly.received += 1;
        if assembly.received < assembly.count {
            return SliceOutcome::Answer(TPipeTransferResp::new(
                status::failure(StatusCode::Success, WAITING_MESSAGE),
                None,
            ));
        }
        if assembly.body.len() != origin_size {
            return self.out_of_order();
        }
        match self.assembly.take() {
            Some(done) => SliceOutcome::Complete(TPipeTransferReq::new(
                REQUEST_VERSION,
                done.origin_type,
                done.body,
            )),
            None => self.out_of_order(),
        }
    }

    fn out_of_order(&mut self) -> SliceOutcome {
        self.clear();
        SliceOutcome::Answer(pipe_status(
            StatusCode::PipeTransferSliceOutOfOrder,
            OUT_OF_ORDER_MESSAGE,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// `body` cut into `count` slices the way IoTDB's sender cuts it (equal pieces, the last shorter).
    fn slices(order_id: i32, origin_type: i16, body: &[u8], count: usize) -> Vec<Vec<u8>> {
        let piece = body.len().div_ceil(count).max(1);
        let pieces: Vec<&[u8]> = if body.is_empty() {
            vec![body]
        } else {
            body.chunks(piece).collect()
        };
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                Slice {
                    order_id,
                    origin_type,
                    origin_body_size: body.len() as i32,
                    body: chunk,
                    index: i as i32,
                    count: count as i32,
                }
                .encode()
            })
            .collect()
    }

    fn code(outcome: &SliceOutcome) -> i32 {
        match outcome {
            SliceOutcome::Answer(resp) => resp.status.code,
            SliceOutcome::Complete(_) => 0,
        }
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn three_slices_reassemble_into_the_original_request() {
        let original = body(1000);
        let mut buffer = SliceBuffer::default();
        let parts = slices(5, 13, &original, 3);
        for part in &parts[..2] {
            let outcome = buffer.receive(part);
            let SliceOutcome::Answer(resp) = outcome else {
                panic!("completed early")
            };
            assert_eq!(resp.status.code, 200);
            assert_eq!(resp.status.message.as_deref(), Some(WAITING_MESSAGE));
        }
        assert_eq!(buffer.buffered(), 668);
        let SliceOutcome::Complete(req) = buffer.receive(&parts[2]) else {
            panic!("not completed")
        };
        assert_eq!((req.version, req.type_), (1, 13));
        assert_eq!(req.body, original);
        assert_eq!(buffer.buffered(), 0);
        // A single slice is a complete request at once; so is an empty body in one slice.
        let SliceOutcome::Complete(req) = buffer.receive(&slices(6, 300, &original, 1)[0]) else {
            panic!("one slice")
        };
        assert_eq!(req.body, original);
        let SliceOutcome::Complete(req) = buffer.receive(&slices(7, 13, &[], 1)[0]) else {
            panic!("empty")
        };
        assert!(req.body.is_empty());
    }

    #[test]
    fn out_of_order_slices_answer_1812_and_reset() {
        let original = body(900);
        let parts = slices(9, 13, &original, 3);
        // Skipping a slice, repeating one, or starting anywhere but 0.
        for order in [vec![0, 2], vec![0, 0], vec![1], vec![2]] {
            let mut buffer = SliceBuffer::default();
            let codes: Vec<i32> = order
                .iter()
                .map(|&i| code(&buffer.receive(&parts[i])))
                .collect();
            assert_eq!(*codes.last().unwrap(), 1812, "{order:?}: {codes:?}");
            assert_eq!(buffer.buffered(), 0);
            // After the reset a whole sequence from 0 goes through.
            let mut last = 0;
            for part in &parts {
                last = code(&buffer.receive(part));
            }
            assert_eq!(last, 0, "{order:?}");
        }
        // A slice of another request (order id, type, size or count) in the middle.
        let other_order = slices(10, 13, &original, 3);
        let other_type = slices(9, 11, &original, 3);
        let other_size = slices(9, 13, &original[..899], 3);
        let other_count = slices(9, 13, &original, 4);
        for (name, intruder) in [
            ("order id", &other_order[1]),
            ("type", &other_type[1]),
            ("size", &other_size[1]),
            ("count", &other_count[1]),
        ] {
            let mut buffer = SliceBuffer::default();
            assert_eq!(code(&buffer.receive(&parts[0])), 200);
            assert_eq!(code(&buffer.receive(intruder)), 1812, "{name}");
            assert_eq!(buffer.buffered(), 0, "{name}");
        }
    }

    #[test]
    fn slices_that_do_not_add_up_to_the_origin_size_are_refused() {
        let mut buffer = SliceBuffer::default();
        let short = Slice {
            order_id: 1,
            origin_type: 13,
            origin_body_size: 10,
            body: b"abc",
            index: 0,
            count: 1,
        };
        assert_eq!(code(&buffer.receive(&short.encode())), 1812);
        // Too much: a slice beyond the origin size, alone or together with the ones before.
        let long = Slice {
            body: b"0123456789a",
            ..short.clone()
        };
        assert_eq!(code(&buffer.receive(&long.encode())), 1812);
        let first = Slice {
            body: b"012345",
            count: 2,
            ..short.clone()
        };
        let second = Slice {
            body: b"6789a",
            index: 1,
            ..first.clone()
        };
        assert_eq!(code(&buffer.receive(&first.encode())), 200);
        assert_eq!(code(&buffer.receive(&second.encode())), 1812);
    }

    #[test]
    fn absurd_sizes_and_counts_are_refused_before_anything_is_reserved() {
        let mut buffer = SliceBuffer::default();
        let base = Slice {
            order_id: 1,
            origin_type: 13,
            origin_body_size: i32::MAX,
            body: b"x",
            index: 0,
            count: 3,
        };
        let SliceOutcome::Answer(resp) = buffer.receive(&base.encode()) else {
            panic!()
        };
        assert_eq!(resp.status.code, 1805);
        assert!(resp
            .status
            .message
            .unwrap()
            .contains("exceeds this receiver's limit"),);
        for (name, slice) in [
            (
                "negative size",
                Slice {
                    origin_body_size: -1,
                    ..base.clone()
                },
            ),
            (
                "zero count",
                Slice {
                    origin_body_size: 10,
                    count: 0,
                    ..base.clone()
                },
            ),
            (
                "count above size",
                Slice {
                    origin_body_size: 10,
                    count: 11,
                    ..base.clone()
                },
            ),
            (
                "count i32::MAX",
                Slice {
                    origin_body_size: 10,
                    count: i32::MAX,
                    ..base.clone()
                },
            ),
            (
                "negative index",
                Slice {
                    origin_body_size: 10,
                    index: -1,
                    ..base.clone()
                },
            ),
            (
                "index past count",
                Slice {
                    origin_body_size: 10,
                    index: 3,
                    ..base.clone()
                },
            ),
        ] {
            assert_eq!(code(&buffer.receive(&slice.encode())), 1812, "{name}");
            assert_eq!(buffer.buffered(), 0, "{name}");
        }
    }

    #[test]
    fn malformed_slices_are_errors_and_reset() {
        let original = body(100);
        let parts = slices(1, 13, &original, 2);
        let mut buffer = SliceBuffer::default();
        assert_eq!(code(&buffer.receive(&parts[0])), 200);
        for cut in 0..parts[1].len() {
            let mut buffer = SliceBuffer::default();
            assert_eq!(code(&buffer.receive(&parts[0])), 200);
            assert_eq!(code(&buffer.receive(&parts[1][..cut])), 1805, "cut {cut}");
            assert_eq!(buffer.buffered(), 0);
        }
        // A slice body longer than the request claims, and bytes after the count.
        let mut lying = parts[1].clone();
        lying[10..14].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(code(&buffer.receive(&lying)), 1805);
        let mut trailing = parts[0].clone();
        trailing.push(0);
        assert_eq!(code(&buffer.receive(&trailing)), 1805);
    }
}
