//! RLE, the bit-packing hybrid (`RleDecoder`, `IntRleDecoder`, `LongRleDecoder`, `IntPacker`,
//! `LongPacker`, apache/tsfile a9f54614). The buffer holds packages: an unsigned varint length,
//! then that many bytes starting with the bit width. Inside, runs follow each other, each headed by
//! an unsigned varint: even = a repeated run of `header >> 1` copies of one value padded to whole
//! bytes (little-endian for INT32, big-endian for INT64 — the Java writer's quirk), odd = a
//! bit-packed run of `header >> 1` groups of 8 values, then a byte with how many values of the last
//! group count, then `groups * width` bytes packed MSB-first.

use super::bits::BitReader;
use super::Want;
use crate::bytes::Cursor;
use crate::error::{corrupt, Result};

pub(crate) fn decode(c: &mut Cursor<'_>, want: Want, wide: bool) -> Result<Vec<i64>> {
    let mut out: Vec<i64> = Vec::new();
    let limit = want.limit();
    while !want.done(out.len(), c) {
        let len = c.uvarint("RLE package length")? as usize;
        let at = c.offset();
        let package = c.take(len, "RLE package")?;
        let mut p = Cursor::new(package, at);
        let width = u32::from(p.u8("RLE bit width")?);
        if width > if wide { 64 } else { 32 } {
            return Err(corrupt(at, format!("RLE bit width {width}")));
        }
        while !p.is_empty() {
            let run_at = p.offset();
            let header = p.uvarint("RLE run header")?;
            if header & 1 == 0 {
                let count = (header >> 1) as usize;
                if out.len().saturating_add(count) > limit {
                    return Err(corrupt(
                        run_at,
                        format!("RLE run of {count} exceeds the page's {limit} values"),
                    ));
                }
                let nbytes = width.div_ceil(8) as usize;
                let raw = p.take(nbytes, "RLE repeated value")?;
                let mut value: u64 = 0;
                if wide {
                    for b in raw {
                        value = (value << 8) | u64::from(*b);
                    }
                } else {
                    for (i, b) in raw.iter().enumerate() {
                        value |= u64::from(*b) << (8 * i);
                    }
                }
                let value = if wide {
                    value as i64
                } else {
                    i64::from(value as u32 as i32)
                };
                out.extend(std::iter::repeat_n(value, count));
            } else {
                let groups = (header >> 1) as usize;
                let last = usize::from(p.u8("RLE last group count")?);
                if groups == 0 || last > 8 {
                    return Err(corrupt(
                        run_at,
                        format!("RLE bit-packed run of {groups} groups, {last} in the last"),
                    ));
                }
                let count = (groups - 1) * 8 + last;
                if out.len().saturating_add(count) > limit {
                    return Err(corrupt(
                        run_at,
                        format!("RLE run of {count} exceeds the page's {limit} values"),
                    ));
                }
                // The Java reader takes what is there when the last group is short.
                let nbytes = (groups * width as usize).min(p.remaining());
                let packed = p.take(nbytes, "RLE bit-packed values")?;
                let mut bits = BitReader::new(packed, run_at);
                for _ in 0..count {
                    let v = bits.read(width)?;
                    out.push(if wide {
                        v as i64
                    } else {
                        i64::from(v as u32 as i32)
                    });
                }
            }
        }
    }
    want.check(out.len(), c)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package built from the format description: width 3; a repeated run of 10 sevens
    /// (header 20, value byte 0x07); a bit-packed run of one group with 3 values 1,2,3
    /// (header 3, last 3, 3 bytes: 001 010 011 000 000 000 000 000).
    fn package() -> Vec<u8> {
        let body = [3u8, 20, 7, 3, 3, 0b0010_1001, 0b1000_0000, 0];
        let mut b = vec![body.len() as u8];
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn decodes_repeated_and_bit_packed_runs() {
        let bytes = package();
        let mut expected = vec![7i64; 10];
        expected.extend([1, 2, 3]);
        let v = decode(&mut Cursor::new(&bytes, 0), Want::All { limit: 100 }, false);
        assert_eq!(v.ok(), Some(expected.clone()));
        let v = decode(&mut Cursor::new(&bytes, 0), Want::Exactly(13), true);
        assert_eq!(v.ok(), Some(expected));
    }

    #[test]
    fn repeated_values_are_little_endian_for_int32_and_big_endian_for_int64() {
        // width 12: two bytes; 0x0102 written LE (02 01) for INT32, BE (01 02) for INT64.
        let int = [4u8, 12, 16, 0x02, 0x01];
        let v = decode(&mut Cursor::new(&int, 0), Want::Exactly(8), false);
        assert_eq!(v.ok(), Some(vec![0x0102; 8]));
        let long = [4u8, 12, 16, 0x01, 0x02];
        let v = decode(&mut Cursor::new(&long, 0), Want::Exactly(8), true);
        assert_eq!(v.ok(), Some(vec![0x0102; 8]));
    }

    #[test]
    fn hostile_runs_are_refused() {
        // A repeated run of 2^30 values.
        let b = [7u8, 1, 0x80, 0x80, 0x80, 0x80, 0x08, 0];
        assert!(decode(&mut Cursor::new(&b, 0), Want::All { limit: 1 << 20 }, false).is_err());
        // A package longer than the buffer.
        let b = [9u8, 1, 2];
        assert!(decode(&mut Cursor::new(&b, 0), Want::All { limit: 100 }, false).is_err());
    }
}
