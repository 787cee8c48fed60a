//! ZIGZAG (`IntZigzagDecoder`, `LongZigzagDecoder`, apache/tsfile a9f54614): packages of an
//! unsigned varint byte length, an unsigned varint value count, then that many zig-zag LEB128
//! varints (up to 64 bits for INT64).

use super::Want;
use crate::bytes::Cursor;
use crate::error::{corrupt, Result};

fn uvarint64(c: &mut Cursor<'_>) -> Result<u64> {
    let at = c.offset();
    let mut value: u64 = 0;
    for i in 0..10 {
        let b = c.u8("ZIGZAG value")?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt(at, "ZIGZAG varint longer than 10 bytes"))
}

pub(crate) fn decode(c: &mut Cursor<'_>, want: Want, wide: bool) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let limit = want.limit();
    while !want.done(out.len(), c) {
        let len = c.uvarint("ZIGZAG package length")? as usize;
        let at = c.offset();
        let number = c.uvarint("ZIGZAG value count")? as usize;
        let body = c.take(len, "ZIGZAG package")?;
        if number > body.len() || out.len().saturating_add(number) > limit {
            return Err(corrupt(
                at,
                format!("ZIGZAG package of {number} values in {len} bytes"),
            ));
        }
        let mut p = Cursor::new(body, at);
        for _ in 0..number {
            let u = uvarint64(&mut p)?;
            let v = ((u >> 1) as i64) ^ -((u & 1) as i64);
            out.push(if wide { v } else { i64::from(v as i32) });
        }
    }
    want.check(out.len(), c)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_package() {
        // 3 values 0, -1, 150 -> zig-zag 0, 1, 300 = 00 01 ac 02.
        let b = [4u8, 3, 0, 1, 0xac, 0x02];
        let got = decode(&mut Cursor::new(&b, 0), Want::Exactly(3), true);
        assert_eq!(got.ok(), Some(vec![0, -1, 150]));
        let bad = [4u8, 200, 0, 1, 0xac, 0x02];
        assert!(decode(&mut Cursor::new(&bad, 0), Want::All { limit: 1000 }, true).is_err());
    }
}
