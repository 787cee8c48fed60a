//! DICTIONARY (`DictionaryDecoder`, apache/tsfile a9f54614): a zig-zag varint entry count, each
//! entry a zig-zag varint length and bytes, then the entries' indexes as an INT32 RLE stream.

use super::{rle, Want};
use crate::bytes::Cursor;
use crate::error::{corrupt, Result};

pub(crate) fn decode(c: &mut Cursor<'_>, want: Want) -> Result<Vec<Vec<u8>>> {
    let at = c.offset();
    let n = c.varint("DICTIONARY entry count")?;
    let n = usize::try_from(n).map_err(|_| corrupt(at, format!("DICTIONARY entry count {n}")))?;
    if n > c.remaining() {
        return Err(corrupt(
            at,
            format!("DICTIONARY of {n} entries in {} bytes", c.remaining()),
        ));
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let at = c.offset();
        let len = c.varint("DICTIONARY entry length")?;
        let len = usize::try_from(len)
            .map_err(|_| corrupt(at, format!("DICTIONARY entry length {len}")))?;
        entries.push(c.take(len, "DICTIONARY entry")?);
    }
    let at = c.offset();
    let indexes = rle::decode(c, want, false)?;
    indexes
        .into_iter()
        .map(|i| {
            usize::try_from(i)
                .ok()
                .and_then(|i| entries.get(i))
                .map(|e| e.to_vec())
                .ok_or_else(|| corrupt(at, format!("DICTIONARY index {i} of {n} entries")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_entries_and_indexes() {
        // Entries "ab", "c"; indexes 1,0,1 bit-packed at width 1: one group, 3 values: 101 00000.
        let mut b = vec![4u8, 4, b'a', b'b', 2, b'c'];
        let rle = [1u8, 3, 3, 0b1010_0000];
        b.push(rle.len() as u8);
        b.extend_from_slice(&rle);
        let got = decode(&mut Cursor::new(&b, 0), Want::Exactly(3));
        assert_eq!(
            got.ok(),
            Some(vec![b"c".to_vec(), b"ab".to_vec(), b"c".to_vec()])
        );
        // An index past the dictionary: one entry "x", a repeated run of 8 copies of index 3.
        let mut b2 = vec![2u8, 2, b'x'];
        let rle2 = [2u8, 16, 3];
        b2.push(rle2.len() as u8);
        b2.extend_from_slice(&rle2);
        assert!(decode(&mut Cursor::new(&b2, 0), Want::Exactly(8)).is_err());
    }
}
