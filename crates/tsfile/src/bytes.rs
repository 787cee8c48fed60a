//! A bounded cursor over a byte slice: every read checks the bytes left first, so corrupt lengths
//! and counts become `Corrupt` errors (with the file offset) instead of panics or huge allocations.
//! The varints are TsFile's (`ReadWriteForEncodingUtils`, apache/tsfile a9f54614): unsigned LEB128
//! limited to 32 bits, and the signed form is zig-zag.

use crate::error::{corrupt, Result, TsFileError};

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// File offset of `data[0]`, for error messages.
    base: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], base: u64) -> Self {
        Cursor { data, pos: 0, base }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub(crate) fn err(&self, what: impl std::fmt::Display) -> TsFileError {
        corrupt(self.offset(), what)
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, n: usize, what: &str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i32_be(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64_be(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn f32_be(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn f64_be(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// `readUnsignedVarInt`: at most 5 bytes, the value a u32 (Java reads it into an int).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u32> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.u8(what)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(value)
                    .map_err(|_| corrupt(start, format!("{what}: varint exceeds 32 bits")));
            }
        }
        Err(corrupt(
            start,
            format!("{what}: varint longer than 5 bytes"),
        ))
    }

    /// `readVarInt`: zig-zag over the unsigned form.
    pub(crate) fn varint(&mut self, what: &str) -> Result<i32> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    /// A length read as an unsigned varint, checked against the bytes left (each element needs at
    /// least `min_bytes_each` bytes), so a corrupt count cannot drive an allocation.
    pub(crate) fn count(&mut self, min_bytes_each: usize, what: &str) -> Result<usize> {
        let at = self.offset();
        let n = self.uvarint(what)? as usize;
        if n.saturating_mul(min_bytes_each.max(1)) > self.remaining() && min_bytes_each > 0 {
            return Err(corrupt(
                at,
                format!(
                    "{what}: count {n} exceeds the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }

    /// `readVarIntString`: zig-zag varint length (negative = null), then UTF-8 bytes.
    pub(crate) fn var_string(&mut self, what: &str) -> Result<Option<String>> {
        let at = self.offset();
        let len = self.varint(what)?;
        self.string_of_len(at, len, what)
    }

    /// `ReadWriteIOUtils.readString`: big-endian int32 length (<= 0 = null/empty), then bytes.
    pub(crate) fn int_string(&mut self, what: &str) -> Result<Option<String>> {
        let at = self.offset();
        let len = self.i32_be(what)?;
        self.string_of_len(at, len, what)
    }

    /// The UTF-8 string of `len` bytes whose length was read at `at` (negative: null).
    fn string_of_len(&mut self, at: u64, len: i32, what: &str) -> Result<Option<String>> {
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| corrupt(at, format!("{what}: not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_tsfile() {
        // 300 = 0b1_0010_1100 -> 0xac 0x02; zig-zag 2 -> 4, -1 -> 1, -3 -> 5.
        let mut c = Cursor::new(&[0xac, 0x02, 0x04, 0x01, 0x05], 0);
        assert_eq!(c.uvarint("x").ok(), Some(300));
        assert_eq!(c.varint("x").ok(), Some(2));
        assert_eq!(c.varint("x").ok(), Some(-1));
        assert_eq!(c.varint("x").ok(), Some(-3));
        assert!(c.is_empty());
        // Too long, and truncated.
        assert!(Cursor::new(&[0xff; 6], 0).uvarint("x").is_err());
        assert!(Cursor::new(&[0x80], 0).uvarint("x").is_err());
    }

    #[test]
    fn lengths_are_checked_before_use() {
        let mut c = Cursor::new(&[0x7e, b'a'], 10); // zig-zag 63 bytes, one present
        let got = c.var_string("name");
        assert!(
            matches!(got, Err(TsFileError::Corrupt { offset: 11, .. })),
            "{got:?}"
        );
        let mut c = Cursor::new(&[0x0a, 0, 0], 0);
        assert!(c.count(1, "n").is_err());
    }
}
