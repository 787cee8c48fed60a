//! Value and time decoders, one module per encoding, behind one dispatch: `decode_values` turns a
//! page's value bytes into the data type's physical values, `decode_times` a time column. Each
//! decoder either decodes exactly the count the page implies or, for time columns, everything up to
//! a limit, and never allocates beyond it.

mod bits;
mod dictionary;
mod gorilla;
mod plain;
mod rle;
mod ts2diff;
mod zigzag;

use crate::bytes::Cursor;
use crate::error::{Result, TsFileError};
use crate::types::{DataType, Encoding, Physical};

/// How many values a decoder must produce.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    /// Exactly this many (the page's row count, or its non-null count).
    Exactly(usize),
    /// Everything in the buffer, at most `limit` values.
    All { limit: usize },
}

impl Want {
    fn limit(self) -> usize {
        match self {
            Want::Exactly(n) => n,
            Want::All { limit } => limit,
        }
    }

    fn done(self, have: usize, c: &Cursor<'_>) -> bool {
        match self {
            Want::Exactly(n) => have >= n,
            Want::All { .. } => c.is_empty(),
        }
    }

    fn check(self, have: usize, c: &Cursor<'_>) -> Result<()> {
        match self {
            Want::Exactly(n) if have != n => {
                Err(c.err(format!("decoded {have} values where the page holds {n}")))
            }
            _ => Ok(()),
        }
    }
}

/// Non-null values of one page, in the physical form of their data type.
#[derive(Debug)]
pub(crate) enum Values {
    Boolean(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Binary(Vec<Vec<u8>>),
}

fn unsupported(encoding: Encoding, data_type: DataType) -> TsFileError {
    TsFileError::Unsupported(format!("encoding {encoding} for {data_type} values"))
}

const INT32_ENDING: u64 = i32::MIN as u32 as u64;
const INT64_ENDING: u64 = i64::MIN as u64;

/// The float encodings that store values as scaled integers (`FloatDecoder` in Java, the
/// `Float`/`DoubleTS2DIFFDecoder` page metadata of the tsfile 2.5.0 C++ writer, documented there as
/// `cpp/docs/ts2diff-float-double-wire-format.md`). The page starts with an unsigned varint: either
/// `n`, every value being `integer / 10^n`; or a flag (`Integer.MAX_VALUE`: some values did not fit
/// when scaled; `Integer.MAX_VALUE - 1`: some did not fit at all), the value count, a bitmap of the
/// scaled values (`count / 8 + 1` bytes, LSB first), for the second flag a bitmap of the values
/// stored as raw IEEE bits, then `n`. Unscaled values are the integer itself.
#[derive(Debug)]
struct FloatScale {
    divisor: f64,
    scaled: Option<Vec<u8>>,
    raw: Option<Vec<u8>>,
}

const SCALED_VALUE_OVERFLOW: u32 = 0x7fff_ffff;
const ORIGINAL_VALUE_OVERFLOW: u32 = 0x7fff_fffe;

fn bit_lsb(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl FloatScale {
    fn parse(c: &mut Cursor<'_>) -> Result<FloatScale> {
        let tag = c.uvarint("float scale")?;
        let (scaled, raw, n) = if tag == SCALED_VALUE_OVERFLOW || tag == ORIGINAL_VALUE_OVERFLOW {
            let count = c.uvarint("float value count")? as usize;
            if count == 0 {
                return Err(c.err("float page of 0 values with overflow bitmaps"));
            }
            let len = count / 8 + 1;
            let scaled = c.take(len, "scaled-value bitmap")?.to_vec();
            let raw = if tag == ORIGINAL_VALUE_OVERFLOW {
                Some(c.take(len, "raw-value bitmap")?.to_vec())
            } else {
                None
            };
            (Some(scaled), raw, c.uvarint("float scale")?)
        } else {
            (None, None, tag)
        };
        // 10^n exactly as `Math.pow(10, n)` (correctly rounded; infinite past 1e308).
        let divisor = if n == 0 {
            1.0
        } else {
            format!("1e{n}").parse::<f64>().unwrap_or(f64::INFINITY)
        };
        Ok(FloatScale {
            divisor,
            scaled,
            raw,
        })
    }

    fn double(&self, i: usize, v: i64) -> f64 {
        if self.raw.as_deref().is_some_and(|r| bit_lsb(r, i)) {
            return f64::from_bits(v as u64);
        }
        match &self.scaled {
            Some(s) if !bit_lsb(s, i) => v as f64,
            _ => v as f64 / self.divisor,
        }
    }

    fn float(&self, i: usize, v: i64) -> f32 {
        if self.raw.as_deref().is_some_and(|r| bit_lsb(r, i)) {
            return f32::from_bits(v as i32 as u32);
        }
        match &self.scaled {
            Some(s) if !bit_lsb(s, i) => v as f64 as f32,
            _ => (v as f64 / self.divisor) as f32,
        }
    }
}

fn ints(
    encoding: Encoding,
    data_type: DataType,
    c: &mut Cursor<'_>,
    want: Want,
    wide: bool,
) -> Result<Vec<i64>> {
    match encoding {
        Encoding::Plain if wide => plain::int64s(c, want),
        Encoding::Plain => plain::int32s(c, want).map(|v| v.into_iter().map(i64::from).collect()),
        Encoding::Ts2Diff => ts2diff::decode(c, want, wide),
        Encoding::Rle => rle::decode(c, want, wide),
        Encoding::Zigzag => zigzag::decode(c, want, wide),
        Encoding::Gorilla => {
            let ending = if wide { INT64_ENDING } else { INT32_ENDING };
            let words = gorilla::decode(c, want, wide, ending)?;
            Ok(words
                .into_iter()
                .map(|w| {
                    if wide {
                        w as i64
                    } else {
                        i64::from(w as u32 as i32)
                    }
                })
                .collect())
        }
        _ => Err(unsupported(encoding, data_type)),
    }
}

/// Decodes `want` values of `data_type` encoded with `encoding` from `c`.
pub(crate) fn decode_values(
    encoding: Encoding,
    data_type: DataType,
    c: &mut Cursor<'_>,
    want: Want,
) -> Result<Values> {
    Ok(match Physical::of(data_type) {
        Physical::Boolean => match encoding {
            Encoding::Plain => Values::Boolean(plain::booleans(c, want)?),
            Encoding::Rle => Values::Boolean(
                rle::decode(c, want, false)?
                    .into_iter()
                    .map(|v| v != 0)
                    .collect(),
            ),
            _ => return Err(unsupported(encoding, data_type)),
        },
        Physical::Int32 => Values::Int32(
            ints(encoding, data_type, c, want, false)?
                .into_iter()
                .map(|v| v as i32)
                .collect(),
        ),
        Physical::Int64 => Values::Int64(ints(encoding, data_type, c, want, true)?),
        Physical::Float => match encoding {
            Encoding::Plain => Values::Float(plain::floats(c, want)?),
            Encoding::Gorilla => Values::Float(
                gorilla::decode(c, want, false, u64::from(f32::NAN.to_bits()))?
                    .into_iter()
                    .map(|w| f32::from_bits(w as u32))
                    .collect(),
            ),
            Encoding::Rle | Encoding::Ts2Diff => {
                let scale = FloatScale::parse(c)?;
                let v = ints(encoding, data_type, c, want, false)?;
                Values::Float(
                    v.into_iter()
                        .enumerate()
                        .map(|(i, x)| scale.float(i, x))
                        .collect(),
                )
            }
            _ => return Err(unsupported(encoding, data_type)),
        },
        Physical::Double => match encoding {
            Encoding::Plain => Values::Double(plain::doubles(c, want)?),
            Encoding::Gorilla => Values::Double(
                gorilla::decode(c, want, true, f64::NAN.to_bits())?
                    .into_iter()
                    .map(f64::from_bits)
                    .collect(),
            ),
            Encoding::Rle | Encoding::Ts2Diff => {
                let scale = FloatScale::parse(c)?;
                let v = ints(encoding, data_type, c, want, true)?;
                Values::Double(
                    v.into_iter()
                        .enumerate()
                        .map(|(i, x)| scale.double(i, x))
                        .collect(),
                )
            }
            _ => return Err(unsupported(encoding, data_type)),
        },
        Physical::Binary => match encoding {
            Encoding::Plain => Values::Binary(plain::binaries(c, want)?),
            Encoding::Dictionary => Values::Binary(dictionary::decode(c, want)?),
            _ => return Err(unsupported(encoding, data_type)),
        },
    })
}

/// Decodes a time column (INT64 semantics) to the end of its buffer, at most `limit` timestamps.
pub(crate) fn decode_times(
    encoding: Encoding,
    c: &mut Cursor<'_>,
    limit: usize,
) -> Result<Vec<i64>> {
    let want = Want::All { limit };
    match encoding {
        Encoding::Plain
        | Encoding::Ts2Diff
        | Encoding::Rle
        | Encoding::Zigzag
        | Encoding::Gorilla => ints(encoding, DataType::Int64, c, want, true),
        _ => Err(TsFileError::Unsupported(format!(
            "time encoding {encoding}"
        ))),
    }
}
