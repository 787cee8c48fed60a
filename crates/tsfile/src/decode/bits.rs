//! An MSB-first bit reader: TS_2DIFF's packed deltas, RLE's bit-packed groups and Gorilla's stream
//! all number bits from the high bit of each byte (`BytesUtils.bytesToLong`, `IntPacker`,
//! `GorillaDecoderV2.readLong` in apache/tsfile a9f54614).

use crate::error::{corrupt, Result};

#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
    base: u64,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], base: u64) -> Self {
        BitReader { data, bit: 0, base }
    }

    pub(crate) fn bits_left(&self) -> usize {
        self.data.len() * 8 - self.bit
    }

    /// Reads `n` (<= 64) bits as an unsigned number, first bit most significant.
    pub(crate) fn read(&mut self, n: u32) -> Result<u64> {
        if n > 64 {
            return Err(corrupt(self.base, format!("bit width {n} exceeds 64")));
        }
        if n as usize > self.bits_left() {
            return Err(corrupt(
                self.base + (self.bit / 8) as u64,
                format!(
                    "bit stream ends: {n} bits wanted, {} left",
                    self.bits_left()
                ),
            ));
        }
        let mut value: u64 = 0;
        let mut wanted = n;
        while wanted > 0 {
            let byte = self.data[self.bit / 8];
            let used = (self.bit % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(wanted);
            let chunk = (u32::from(byte) >> (avail - take)) & ((1u32 << take) - 1);
            value = if take == 64 {
                u64::from(chunk)
            } else {
                (value << take) | u64::from(chunk)
            };
            wanted -= take;
            self.bit += take as usize;
        }
        Ok(value)
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_bytes_msb_first() {
        let mut r = BitReader::new(&[0b1010_1100, 0b0101_0000], 0);
        assert_eq!(r.read(1).ok(), Some(1));
        assert_eq!(r.read(3).ok(), Some(0b010));
        assert_eq!(r.read(6).ok(), Some(0b11_0001));
        assert_eq!(r.bits_left(), 6);
        assert!(r.read(7).is_err());
        let mut r = BitReader::new(&[0xff; 9], 0);
        assert_eq!(r.read(64).ok(), Some(u64::MAX));
    }
}
