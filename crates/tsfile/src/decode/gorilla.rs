//! GORILLA, the V2 XOR scheme (`GorillaDecoderV2`, `IntGorillaDecoder`, `LongGorillaDecoder`,
//! `SinglePrecisionDecoderV2`, `DoublePrecisionDecoderV2`, apache/tsfile a9f54614) over 32-bit
//! (INT32, FLOAT bits) or 64-bit (INT64, DOUBLE bits) words: the first value raw, then per value a
//! control code — `0` same as before, `10` XOR with the stored leading/trailing zero counts, `11`
//! new counts (5 or 6 bits of leading zeros, 5 or 6 bits of significant bits minus one) then the
//! XOR's significant bits. The stream ends with the ending value (`Integer.MIN_VALUE`,
//! `Long.MIN_VALUE`, or the canonical NaN for floats) and padding to a byte.

use super::bits::BitReader;
use super::Want;
use crate::bytes::Cursor;
use crate::error::{corrupt, Result};

/// Returns raw words (the low 32 bits for the 32-bit forms). `ending` is the word that ends the
/// stream.
pub(crate) fn decode(c: &mut Cursor<'_>, want: Want, wide: bool, ending: u64) -> Result<Vec<u64>> {
    let at = c.offset();
    let data = c.rest();
    let mut bits = BitReader::new(data, at);
    let (value_bits, count_bits) = if wide { (64u32, 6u32) } else { (32, 5) };
    let mut out = Vec::new();
    let limit = want.limit();
    if let Want::Exactly(0) = want {
        return Ok(out);
    }
    if data.is_empty() {
        want.check(0, c)?;
        return Ok(out);
    }
    let mut stored = bits.read(value_bits)?;
    let mut leading: u32 = u32::MAX;
    let mut trailing: u32 = 0;
    loop {
        if let Want::All { .. } = want {
            if stored == ending {
                break;
            }
        }
        if out.len() >= limit {
            return Err(corrupt(
                at,
                format!("GORILLA stream exceeds the page's {limit} values"),
            ));
        }
        out.push(stored);
        if let Want::Exactly(n) = want {
            if out.len() == n {
                break;
            }
        }
        if bits.read_bit()? {
            if bits.read_bit()? {
                leading = bits.read(count_bits)? as u32;
                let significant = bits.read(count_bits)? as u32 + 1;
                trailing = value_bits
                    .checked_sub(significant + leading)
                    .ok_or_else(|| {
                        corrupt(
                            at,
                            "GORILLA leading zeros and significant bits exceed the word",
                        )
                    })?;
            }
            let width = value_bits
                .checked_sub(leading.saturating_add(trailing))
                .ok_or_else(|| corrupt(at, "GORILLA XOR before any leading-zero count"))?;
            let xor = bits.read(width)?;
            let xor = if trailing >= 64 { 0 } else { xor << trailing };
            stored ^= xor;
            if !wide {
                stored &= 0xffff_ffff;
            }
        }
    }
    // Consume the whole stream: it is the rest of the buffer.
    c.skip(c.remaining(), "GORILLA stream")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB-first, for building streams from the format description.
    pub(crate) struct BitWriter {
        pub bytes: Vec<u8>,
        bit: usize,
    }

    impl BitWriter {
        pub fn new() -> Self {
            BitWriter {
                bytes: Vec::new(),
                bit: 0,
            }
        }
        pub fn put(&mut self, value: u64, n: u32) {
            for i in (0..n).rev() {
                if self.bit.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (value >> i) & 1 == 1 {
                    let last = self.bytes.len() - 1;
                    self.bytes[last] |= 0x80 >> (self.bit % 8);
                }
                self.bit += 1;
            }
        }
    }

    #[test]
    fn decodes_doubles_from_a_hand_built_stream() {
        // 1.0, 1.0, 3.0, then the ending NaN.
        let a = 1.0f64.to_bits();
        let b = 3.0f64.to_bits();
        let nan = f64::NAN.to_bits();
        let mut w = BitWriter::new();
        w.put(a, 64);
        w.put(0, 1); // same value
        let xor = a ^ b;
        let (lz, tz) = (xor.leading_zeros(), xor.trailing_zeros());
        let sig = 64 - lz - tz;
        w.put(0b11, 2);
        w.put(u64::from(lz), 6);
        w.put(u64::from(sig - 1), 6);
        w.put(xor >> tz, sig);
        let xor2 = b ^ nan;
        let lz = xor2.leading_zeros();
        let tz = xor2.trailing_zeros();
        let sig = 64 - lz - tz;
        w.put(0b11, 2);
        w.put(u64::from(lz), 6);
        w.put(u64::from(sig - 1), 6);
        w.put(xor2 >> tz, sig);
        let bytes = w.bytes;
        let got = decode(
            &mut Cursor::new(&bytes, 0),
            Want::All { limit: 10 },
            true,
            nan,
        );
        assert_eq!(got.ok(), Some(vec![a, a, b]));
        let got = decode(&mut Cursor::new(&bytes, 0), Want::Exactly(3), true, nan);
        assert_eq!(got.ok(), Some(vec![a, a, b]));
    }

    #[test]
    fn decodes_int32_with_stored_counts() {
        // 5, 7 (xor 2: new counts, lz 30, sig 1... use '11'), 5 (xor 2 again: '10'), ending.
        let mut w = BitWriter::new();
        w.put(5, 32);
        w.put(0b11, 2);
        w.put(30, 5);
        w.put(0, 5); // one significant bit
        w.put(1, 1); // xor = 1 << 1 = 2
        w.put(0b10, 2);
        w.put(1, 1);
        let end = u64::from(i32::MIN as u32);
        let xor = 5u64 ^ end;
        let (lz, tz) = ((xor as u32).leading_zeros(), (xor as u32).trailing_zeros());
        let sig = 32 - lz - tz;
        w.put(0b11, 2);
        w.put(u64::from(lz), 5);
        w.put(u64::from(sig - 1), 5);
        w.put(xor >> tz, sig);
        let got = decode(
            &mut Cursor::new(&w.bytes, 0),
            Want::All { limit: 10 },
            false,
            end,
        );
        assert_eq!(got.ok(), Some(vec![5, 7, 5]));
    }

    #[test]
    fn truncated_streams_fail() {
        let bytes = [0x3f, 0xf0, 0, 0];
        assert!(decode(&mut Cursor::new(&bytes, 0), Want::Exactly(2), true, 0).is_err());
    }
}
