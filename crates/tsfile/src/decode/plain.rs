//! PLAIN (`PlainDecoder`, apache/tsfile a9f54614): BOOLEAN one byte, INT32 a zig-zag varint, INT64
//! and the floats big-endian fixed width, binaries a zig-zag varint length then the bytes.

use super::Want;
use crate::bytes::Cursor;
use crate::error::Result;

fn collect<T>(
    c: &mut Cursor<'_>,
    want: Want,
    mut one: impl FnMut(&mut Cursor<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    match want {
        Want::Exactly(n) => {
            for _ in 0..n {
                out.push(one(c)?);
            }
        }
        Want::All { limit } => {
            while !c.is_empty() {
                if out.len() >= limit {
                    return Err(c.err(format!("more than {limit} values in one page")));
                }
                out.push(one(c)?);
            }
        }
    }
    Ok(out)
}

pub(crate) fn booleans(c: &mut Cursor<'_>, want: Want) -> Result<Vec<bool>> {
    collect(c, want, |c| Ok(c.u8("PLAIN boolean")? != 0))
}

pub(crate) fn int32s(c: &mut Cursor<'_>, want: Want) -> Result<Vec<i32>> {
    collect(c, want, |c| c.varint("PLAIN int32"))
}

pub(crate) fn int64s(c: &mut Cursor<'_>, want: Want) -> Result<Vec<i64>> {
    collect(c, want, |c| c.i64_be("PLAIN int64"))
}

pub(crate) fn floats(c: &mut Cursor<'_>, want: Want) -> Result<Vec<f32>> {
    collect(c, want, |c| c.f32_be("PLAIN float"))
}

pub(crate) fn doubles(c: &mut Cursor<'_>, want: Want) -> Result<Vec<f64>> {
    collect(c, want, |c| c.f64_be("PLAIN double"))
}

pub(crate) fn binaries(c: &mut Cursor<'_>, want: Want) -> Result<Vec<Vec<u8>>> {
    collect(c, want, |c| {
        let at = c.offset();
        let len = c.varint("PLAIN binary length")?;
        let len = usize::try_from(len)
            .map_err(|_| crate::error::corrupt(at, format!("negative binary length {len}")))?;
        Ok(c.take(len, "PLAIN binary")?.to_vec())
    })
}
