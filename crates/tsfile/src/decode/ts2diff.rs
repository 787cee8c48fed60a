//! TS_2DIFF (`DeltaBinaryDecoder`, apache/tsfile a9f54614): blocks of a big-endian header
//! (int32 delta count, int32 bit width, then min delta and first value, int32 or int64 each) and
//! `ceil(count * width / 8)` bytes of MSB-first packed deltas; a block yields the first value and
//! then `previous + min_delta + packed` per delta. Blocks follow each other to the end of the buffer.

use super::bits::BitReader;
use super::Want;
use crate::bytes::Cursor;
use crate::error::Result;

/// Decodes 32-bit (`wide == false`) or 64-bit values; 32-bit results are in the low bits (the
/// arithmetic wraps the same way modulo 2^32).
pub(crate) fn decode(c: &mut Cursor<'_>, want: Want, wide: bool) -> Result<Vec<i64>> {
    let mut out: Vec<i64> = Vec::new();
    let limit = want.limit();
    while !want.done(out.len(), c) {
        let at = c.offset();
        let count = c.i32_be("TS_2DIFF block count")?;
        let width = c.i32_be("TS_2DIFF bit width")?;
        let max_width = if wide { 64 } else { 32 };
        if count < 0 || !(0..=max_width).contains(&width) {
            return Err(crate::error::corrupt(
                at,
                format!("TS_2DIFF block of {count} deltas at width {width}"),
            ));
        }
        let (min_delta, first) = if wide {
            (
                c.i64_be("TS_2DIFF min delta")?,
                c.i64_be("TS_2DIFF first value")?,
            )
        } else {
            (
                i64::from(c.i32_be("TS_2DIFF min delta")?),
                i64::from(c.i32_be("TS_2DIFF first value")?),
            )
        };
        let count = count as usize;
        if out.len().saturating_add(count).saturating_add(1) > limit {
            return Err(crate::error::corrupt(
                at,
                format!("TS_2DIFF block of {count} deltas exceeds the page's {limit} values"),
            ));
        }
        let packed_bytes = (count as u64 * width as u64).div_ceil(8);
        let packed = c.take(packed_bytes as usize, "TS_2DIFF packed deltas")?;
        let mut bits = BitReader::new(packed, at);
        out.push(first);
        let mut previous = first;
        for _ in 0..count {
            let delta = bits.read(width as u32)? as i64;
            let delta = if wide {
                delta
            } else {
                i64::from(delta as u32 as i32)
            };
            previous = previous.wrapping_add(min_delta).wrapping_add(delta);
            if !wide {
                previous = i64::from(previous as i32);
            }
            out.push(previous);
        }
    }
    want.check(out.len(), c)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block built from the format description: 5 timestamps 0,10,20,30,45 -> deltas
    /// 10,10,10,15; min delta 10, packed 0,0,0,5 at width 3 = 000 000 000 101 (+ 4 pad bits).
    fn block_i64() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&4i32.to_be_bytes());
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(&10i64.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&[0b0000_0000, 0b0101_0000]);
        b
    }

    #[test]
    fn decodes_a_long_block() {
        let bytes = block_i64();
        let v = decode(&mut Cursor::new(&bytes, 0), Want::All { limit: 100 }, true);
        assert_eq!(v.ok(), Some(vec![0, 10, 20, 30, 45]));
        let v = decode(&mut Cursor::new(&bytes, 0), Want::Exactly(5), true);
        assert_eq!(v.ok(), Some(vec![0, 10, 20, 30, 45]));
        // Two blocks back to back.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let v = decode(&mut Cursor::new(&two, 0), Want::All { limit: 100 }, true);
        assert_eq!(v.map(|v| v.len()).ok(), Some(10));
    }

    #[test]
    fn decodes_an_int_block_with_negative_deltas() {
        // -5, -7, -6: deltas -2, +1; min delta -2, packed 0 and 3 at width 2 = 00 11 (+4 pad).
        let mut b = Vec::new();
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&(-2i32).to_be_bytes());
        b.extend_from_slice(&(-5i32).to_be_bytes());
        b.push(0b0011_0000);
        let v = decode(&mut Cursor::new(&b, 0), Want::Exactly(3), false);
        assert_eq!(v.ok(), Some(vec![-5, -7, -6]));
    }

    #[test]
    fn hostile_counts_are_refused_before_allocating() {
        let mut b = Vec::new();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // width 0: no packed bytes needed
        b.extend_from_slice(&[0; 16]);
        assert!(decode(&mut Cursor::new(&b, 0), Want::All { limit: 1000 }, true).is_err());
        let mut b = block_i64();
        b[7] = 65; // width 65
        assert!(decode(&mut Cursor::new(&b, 0), Want::All { limit: 1000 }, true).is_err());
    }
}
