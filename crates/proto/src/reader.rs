//! The one big-endian byte reader behind every hand-written decoder (tablets, records, TsBlocks, pipe
//! bodies): it reports truncation instead of panicking, and checks every count and length against the
//! bytes left **before** the caller allocates for it, so no length prefix can reserve more memory than
//! the input could fill.

use crate::{ProtoError, Result};

/// A cursor over a byte slice; `what` in each call names the field for the error message.
#[derive(Debug, Clone, Copy)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
}

/// A [`ProtoError::Malformed`]: the constructor every hand-written decoder of this crate uses.
pub(crate) fn malformed(message: impl Into<String>) -> ProtoError {
    ProtoError::Malformed(message.into())
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(malformed(format!(
                "truncated {what}: {n} bytes wanted, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Fails unless `count` items of at least `item_bytes` each can still follow.
    pub fn ensure(&self, count: usize, item_bytes: usize, what: &str) -> Result<()> {
        match count.checked_mul(item_bytes) {
            Some(needed) if needed <= self.buf.len() => Ok(()),
            _ => Err(malformed(format!(
                "{count} {what} of at least {item_bytes} bytes each cannot fit in the {} bytes left",
                self.buf.len()
            ))),
        }
    }

    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// `n` values of `N` bytes each, converted by `from_bytes` (e.g. `f64::from_be_bytes`), read at
    /// once: a column without nulls decodes in one pass over its bytes.
    pub fn values<const N: usize, T>(
        &mut self,
        n: usize,
        what: &str,
        from_bytes: fn([u8; N]) -> T,
    ) -> Result<Vec<T>> {
        let len = n
            .checked_mul(N)
            .ok_or_else(|| malformed(format!("{n} {what} cannot fit in memory")))?;
        let (values, _) = self.take(len, what)?.as_chunks::<N>();
        Ok(values.iter().map(|v| from_bytes(*v)).collect())
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn i16(&mut self, what: &str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_be_bytes(self.array(what)?))
    }

    pub fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// An i32 count of items that take at least `item_bytes` each: negative, or more than the bytes
    /// left can hold, is an error, so the count is safe to reserve capacity for.
    pub fn count(&mut self, item_bytes: usize, what: &str) -> Result<usize> {
        let n = self.i32(what)?;
        let count =
            usize::try_from(n).map_err(|_| malformed(format!("negative {what} count {n}")))?;
        self.ensure(count, item_bytes, what)?;
        Ok(count)
    }

    /// An i32 length, then that many bytes.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.i32(what)?;
        let len =
            usize::try_from(n).map_err(|_| malformed(format!("negative {what} length {n}")))?;
        self.take(len, what)
    }

    /// An i32 length (negative: null, as Java's `ReadWriteIOUtils` writes it), then UTF-8 bytes.
    pub fn nullable_string(&mut self, what: &str) -> Result<Option<String>> {
        let n = self.i32(what)?;
        let Ok(len) = usize::try_from(n) else {
            return Ok(None);
        };
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| malformed(format!("{what} is not UTF-8")))
    }

    /// A string that may not be null.
    /// `n` items, each read by `read`.
    pub fn many<T>(
        &mut self,
        n: usize,
        mut read: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        (0..n).map(|_| read(self)).collect()
    }

    pub fn string(&mut self, what: &str) -> Result<String> {
        self.nullable_string(what)?
            .ok_or_else(|| malformed(format!("{what} is null")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn counts_beyond_the_input_and_negative_lengths_are_errors() {
        let mut reader = ByteReader::new(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(reader.count(1, "rows").is_err());
        let mut reader = ByteReader::new(&[0xff, 0xff, 0xff, 0xff]);
        let err = reader.count(1, "rows").unwrap_err().to_string();
        assert!(err.contains("negative rows count -1"), "{err}");
        let mut reader = ByteReader::new(&[0x80, 0, 0, 0, 1]);
        assert!(reader.bytes("value").is_err());
        let mut reader = ByteReader::new(&[0, 0, 0, 2, 1, 2, 3]);
        assert_eq!(reader.count(1, "rows").unwrap(), 2);
        assert!(ByteReader::new(&[]).ensure(usize::MAX, 8, "x").is_err());
        let mut reader = ByteReader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.nullable_string("s").unwrap(), None);
    }
}
