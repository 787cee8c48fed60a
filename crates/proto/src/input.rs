//! Thrift input protocols (binary and compact) over one in-memory frame that never trust a length.
//!
//! The `thrift` crate's own input protocols read from a stream, so they allocate whatever a length prefix
//! says before reading a byte of it: a list length of 2^31−1 made the generated code reserve ~51 GB and
//! abort the process, and a negative string length panicked ("capacity overflow"). Here the whole frame
//! is in memory, so every string, binary, list, set and map length is checked against the bytes left
//! **before** anything is allocated:
//!
//! - a negative length is an error;
//! - a collection whose element count × the smallest encoding of its element type exceeds the bytes
//!   left is an error, and so is a message whose collections claim, in all, more elements than the frame
//!   has bytes (every element of a well-formed message takes at least one byte of its own, nested or not),
//!   so what the generated code reserves for a whole message is bounded by a small multiple of the frame;
//! - nesting (structs, lists, sets, maps) deeper than [`MAX_NESTING`] is an error, so a recursive type
//!   (`TSStatus.subStatus`) cannot overflow the stack;
//! - arithmetic on field ids and varints is checked, never wrapping or panicking.
//!
//! Field and message layouts follow the Thrift specifications exactly as `thrift` 0.17 reads them, so a
//! well-formed message decodes to the same values.

use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMapIdentifier, TMessageIdentifier,
    TMessageType, TSetIdentifier, TStructIdentifier, TType,
};
use thrift::{ProtocolError, ProtocolErrorKind};

/// The deepest nesting of structs and collections a message may have (`thrift`'s own skip limit).
pub const MAX_NESTING: usize = 64;

/// A `thrift` error with its message: the crate's own `Display` prints only the kind ("message too
/// long"), which tells a client nothing about what was wrong.
pub fn describe(e: &thrift::Error) -> String {
    let (kind, message) = match e {
        thrift::Error::Protocol(p) => (p.to_string(), p.message.as_str()),
        thrift::Error::Transport(t) => (t.to_string(), t.message.as_str()),
        thrift::Error::Application(a) => (a.to_string(), a.message.as_str()),
        thrift::Error::User(u) => return u.to_string(),
    };
    if message.is_empty() || message == kind {
        kind
    } else {
        format!("{kind}: {message}")
    }
}

fn invalid(message: impl Into<String>) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(
        ProtocolErrorKind::InvalidData,
        message.into(),
    ))
}

fn negative(message: impl Into<String>) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(
        ProtocolErrorKind::NegativeSize,
        message.into(),
    ))
}

fn size_limit(message: impl Into<String>) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(
        ProtocolErrorKind::SizeLimit,
        message.into(),
    ))
}

/// Which encoding a frame uses; decides the smallest size of each type on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Binary,
    Compact,
}

/// The frame being read, with the checks both protocols share.
#[derive(Debug)]
struct Frame<'a> {
    bytes: &'a [u8],
    pos: usize,
    encoding: Encoding,
    /// Elements claimed by every collection header read so far.
    claimed_elements: usize,
    /// Structs and collections currently open.
    nesting: usize,
}

impl<'a> Frame<'a> {
    fn new(bytes: &'a [u8], encoding: Encoding) -> Self {
        Frame {
            bytes,
            pos: 0,
            encoding,
            claimed_elements: 0,
            nesting: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> thrift::Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                thrift::Error::Transport(thrift::TransportError::new(
                    thrift::TransportErrorKind::EndOfFile,
                    format!(
                        "message truncated: {n} more bytes wanted at byte {}, {} left",
                        self.pos,
                        self.remaining()
                    ),
                ))
            })?;
        let slice = self.bytes.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> thrift::Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> thrift::Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// `len` bytes, checked against what is left before the vector is allocated.
    fn bytes_of_len(&mut self, len: i64) -> thrift::Result<Vec<u8>> {
        let len = usize::try_from(len)
            .map_err(|_| negative(format!("negative string or binary length {len}")))?;
        if len > self.remaining() {
            return Err(size_limit(format!(
                "string or binary of {len} bytes at byte {} but only {} left in the frame",
                self.pos,
                self.remaining()
            )));
        }
        Ok(self.take(len)?.to_vec())
    }

    /// The fewest bytes one value of `ttype` takes on the wire.
    fn min_size(&self, ttype: TType) -> thrift::Result<usize> {
        let binary = self.encoding == Encoding::Binary;
        Ok(match ttype {
            TType::Bool | TType::I08 | TType::Struct => 1,
            TType::Double => 8,
            TType::I16 if binary => 2,
            TType::I32 if binary => 4,
            TType::I64 if binary => 8,
            TType::String | TType::Utf7 | TType::Utf8 | TType::Utf16 if binary => 4,
            TType::List | TType::Set if binary => 5,
            TType::Map if binary => 6,
            TType::I16
            | TType::I32
            | TType::I64
            | TType::String
            | TType::Utf7
            | TType::Utf8
            | TType::Utf16
            | TType::List
            | TType::Set
            | TType::Map => 1,
            TType::Stop | TType::Void => {
                return Err(invalid(format!("a collection of {ttype} elements")))
            }
        })
    }

    /// A map's header: `size` entries of at least a key's and a value's minimum size each, claimed.
    fn map(
        &mut self,
        key_type: TType,
        value_type: TType,
        size: i64,
    ) -> thrift::Result<TMapIdentifier> {
        let min = self
            .min_size(key_type)?
            .saturating_add(self.min_size(value_type)?);
        let size = self.claim(size, min, "map")?;
        Ok(TMapIdentifier::new(key_type, value_type, size))
    }

    /// Checks a collection header claiming `size` elements of `element_bytes` each (at least), and
    /// opens one level of nesting.
    fn claim(&mut self, size: i64, element_bytes: usize, what: &str) -> thrift::Result<i32> {
        let count =
            usize::try_from(size).map_err(|_| negative(format!("negative {what} size {size}")))?;
        let needed = count.saturating_mul(element_bytes);
        if needed > self.remaining() {
            return Err(size_limit(format!(
                "{what} of {count} elements needs at least {needed} bytes at byte {} but only {} are left in the frame",
                self.pos,
                self.remaining()
            )));
        }
        self.claimed_elements = self.claimed_elements.saturating_add(count);
        if self.claimed_elements > self.bytes.len() {
            return Err(size_limit(format!(
                "the message's collections claim {} elements in a frame of {} bytes",
                self.claimed_elements,
                self.bytes.len()
            )));
        }
        self.open()?;
        i32::try_from(count).map_err(|_| size_limit(format!("{what} of {count} elements")))
    }

    fn open(&mut self) -> thrift::Result<()> {
        if self.nesting >= MAX_NESTING {
            return Err(thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::DepthLimit,
                format!("structs and collections nested more than {MAX_NESTING} deep"),
            )));
        }
        self.nesting += 1;
        Ok(())
    }

    fn close(&mut self) -> thrift::Result<()> {
        self.nesting = self
            .nesting
            .checked_sub(1)
            .ok_or_else(|| invalid("end of a struct or collection that was not begun"))?;
        Ok(())
    }
}

fn message_type(b: u8) -> thrift::Result<TMessageType> {
    TMessageType::try_from(b)
}

/// Thrift's binary protocol, strict or not (old clients may omit the version word).
#[derive(Debug)]
pub struct BinaryInput<'a> {
    frame: Frame<'a>,
}

impl<'a> BinaryInput<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BinaryInput {
            frame: Frame::new(bytes, Encoding::Binary),
        }
    }

    /// The bytes not read yet (a struct embedded in a larger body must end where the body does).
    pub fn remaining(&self) -> usize {
        self.frame.bytes.len().saturating_sub(self.frame.pos)
    }

    fn ttype(b: u8) -> thrift::Result<TType> {
        Ok(match b {
            0x00 => TType::Stop,
            0x01 => TType::Void,
            0x02 => TType::Bool,
            0x03 => TType::I08,
            0x04 => TType::Double,
            0x06 => TType::I16,
            0x08 => TType::I32,
            0x0A => TType::I64,
            0x0B => TType::String,
            0x0C => TType::Struct,
            0x0D => TType::Map,
            0x0E => TType::Set,
            0x0F => TType::List,
            0x10 => TType::Utf8,
            0x11 => TType::Utf16,
            other => return Err(invalid(format!("unknown binary type {other}"))),
        })
    }

    fn element_type(&mut self) -> thrift::Result<TType> {
        let b = self.frame.byte()?;
        Self::ttype(b)
    }

    /// A list's or a set's header (`what`): its element type and its size, claimed in the frame.
    fn list_or_set(&mut self, what: &str) -> thrift::Result<(TType, i32)> {
        let element_type = self.element_type()?;
        let size = self.read_i32()?;
        let min = self.frame.min_size(element_type)?;
        let size = self.frame.claim(i64::from(size), min, what)?;
        Ok((element_type, size))
    }
}

/// The reads both protocols do alike, given each one's `frame` and `list_or_set`.
macro_rules! reads_alike {
    () => {
        fn read_message_end(&mut self) -> thrift::Result<()> {
            Ok(())
        }

        fn read_field_end(&mut self) -> thrift::Result<()> {
            Ok(())
        }

        fn read_i8(&mut self) -> thrift::Result<i8> {
            Ok(i8::from_be_bytes(self.frame.array()?))
        }

        fn read_string(&mut self) -> thrift::Result<String> {
            Ok(String::from_utf8(self.read_bytes()?)?)
        }

        fn read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
            let (element_type, size) = self.list_or_set("list")?;
            Ok(TListIdentifier::new(element_type, size))
        }

        fn read_list_end(&mut self) -> thrift::Result<()> {
            self.frame.close()
        }

        fn read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
            let (element_type, size) = self.list_or_set("set")?;
            Ok(TSetIdentifier::new(element_type, size))
        }

        fn read_set_end(&mut self) -> thrift::Result<()> {
            self.frame.close()
        }

        fn read_map_end(&mut self) -> thrift::Result<()> {
            self.frame.close()
        }

        fn read_byte(&mut self) -> thrift::Result<u8> {
            self.frame.byte()
        }
    };
}

impl TInputProtocol for BinaryInput<'_> {
    reads_alike!();

    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        let first = self.frame.array::<4>()?;
        if first[0] & 0x80 != 0 {
            if first[..2] != [0x80, 0x01] {
                return Err(thrift::Error::Protocol(ProtocolError::new(
                    ProtocolErrorKind::BadVersion,
                    format!(
                        "bad binary protocol version {:02x}{:02x}",
                        first[0], first[1]
                    ),
                )));
            }
            let message_type = message_type(first[3])?;
            let name = self.read_string()?;
            let seq = self.read_i32()?;
            Ok(TMessageIdentifier::new(name, message_type, seq))
        } else {
            // Non-strict: the four bytes were the name's length.
            let name = String::from_utf8(
                self.frame
                    .bytes_of_len(i64::from(i32::from_be_bytes(first)))?,
            )?;
            let message_type = message_type(self.frame.byte()?)?;
            let seq = self.read_i32()?;
            Ok(TMessageIdentifier::new(name, message_type, seq))
        }
    }

    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        self.frame.open()?;
        Ok(None)
    }

    fn read_struct_end(&mut self) -> thrift::Result<()> {
        self.frame.close()
    }

    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        let field_type = self.element_type()?;
        let id = match field_type {
            TType::Stop => 0,
            _ => self.read_i16()?,
        };
        Ok(TFieldIdentifier::new::<Option<String>, String, i16>(
            None, field_type, id,
        ))
    }

    fn read_bool(&mut self) -> thrift::Result<bool> {
        Ok(self.frame.byte()? != 0)
    }

    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        let len = self.read_i32()?;
        self.frame.bytes_of_len(i64::from(len))
    }

    fn read_i16(&mut self) -> thrift::Result<i16> {
        Ok(i16::from_be_bytes(self.frame.array()?))
    }

    fn read_i32(&mut self) -> thrift::Result<i32> {
        Ok(i32::from_be_bytes(self.frame.array()?))
    }

    fn read_i64(&mut self) -> thrift::Result<i64> {
        Ok(i64::from_be_bytes(self.frame.array()?))
    }

    fn read_double(&mut self) -> thrift::Result<f64> {
        Ok(f64::from_be_bytes(self.frame.array()?))
    }

    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let key_type = self.element_type()?;
        let value_type = self.element_type()?;
        let size = self.read_i32()?;
        self.frame.map(key_type, value_type, i64::from(size))
    }
}

/// Thrift's compact protocol.
#[derive(Debug)]
pub struct CompactInput<'a> {
    frame: Frame<'a>,
    /// The id of the last field read in the struct being read (field ids are sent as deltas).
    last_field_id: i16,
    /// `last_field_id` of each enclosing struct.
    field_id_stack: Vec<i16>,
    /// A boolean field's value travels in its field header.
    pending_bool: Option<bool>,
}

const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 0x01;

impl<'a> CompactInput<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        CompactInput {
            frame: Frame::new(bytes, Encoding::Compact),
            last_field_id: 0,
            field_id_stack: Vec::new(),
            pending_bool: None,
        }
    }

    /// An unsigned LEB128 varint whose value fits `max_bits` bits (at most 10 bytes for 64).
    fn varint(&mut self, max_bits: u32) -> thrift::Result<u64> {
        let mut value: u64 = 0;
        for i in 0..max_bits.div_ceil(7) {
            let b = self.frame.byte()?;
            let bits = u64::from(b & 0x7f);
            let shift = 7 * i;
            if shift == 63 && bits > 1 {
                return Err(invalid("varint exceeds 64 bits"));
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                if max_bits < 64 && value >> max_bits != 0 {
                    return Err(invalid(format!("varint exceeds {max_bits} bits")));
                }
                return Ok(value);
            }
        }
        Err(invalid(format!(
            "varint longer than a {max_bits}-bit value"
        )))
    }

    fn zigzag(n: u64) -> i64 {
        // (n >> 1) ^ -(n & 1), in unsigned arithmetic so nothing can overflow.
        ((n >> 1) ^ (n & 1).wrapping_neg()) as i64
    }

    fn u32_varint(&mut self) -> thrift::Result<u32> {
        u32::try_from(self.varint(32)?).map_err(|_| invalid("varint exceeds 32 bits"))
    }

    fn ttype(b: u8, in_collection: bool) -> thrift::Result<TType> {
        Ok(match b {
            0x00 if !in_collection => TType::Stop,
            0x01 | 0x02 => TType::Bool,
            0x03 => TType::I08,
            0x04 => TType::I16,
            0x05 => TType::I32,
            0x06 => TType::I64,
            0x07 => TType::Double,
            0x08 => TType::String,
            0x09 => TType::List,
            0x0A => TType::Set,
            0x0B => TType::Map,
            0x0C => TType::Struct,
            other => return Err(invalid(format!("unknown compact type {other}"))),
        })
    }

    fn list_or_set(&mut self, what: &str) -> thrift::Result<(TType, i32)> {
        let header = self.frame.byte()?;
        let element_type = Self::ttype(header & 0x0F, true)?;
        let short_size = header >> 4;
        let size = if short_size == 15 {
            i64::from(self.u32_varint()?)
        } else {
            i64::from(short_size)
        };
        let min = self.frame.min_size(element_type)?;
        let size = self.frame.claim(size, min, what)?;
        Ok((element_type, size))
    }
}

impl TInputProtocol for CompactInput<'_> {
    reads_alike!();

    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        let id = self.frame.byte()?;
        if id != COMPACT_PROTOCOL_ID {
            return Err(thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::BadVersion,
                format!("bad compact protocol id {id:#04x}"),
            )));
        }
        let type_and_version = self.frame.byte()?;
        if type_and_version & 0x1F != COMPACT_VERSION {
            return Err(thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::BadVersion,
                format!("bad compact protocol version {}", type_and_version & 0x1F),
            )));
        }
        let message_type = message_type(type_and_version >> 5)?;
        // The sequence number travels as an unsigned varint of its two's-complement bits.
        let seq = self.u32_varint()? as i32;
        let name = self.read_string()?;
        self.last_field_id = 0;
        Ok(TMessageIdentifier::new(name, message_type, seq))
    }

    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        self.frame.open()?;
        self.field_id_stack.push(self.last_field_id);
        self.last_field_id = 0;
        Ok(None)
    }

    fn read_struct_end(&mut self) -> thrift::Result<()> {
        self.frame.close()?;
        self.last_field_id = self
            .field_id_stack
            .pop()
            .ok_or_else(|| invalid("end of a struct that was not begun"))?;
        Ok(())
    }

    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        let header = self.frame.byte()?;
        let delta = header >> 4;
        let field_type = match header & 0x0F {
            0x01 => {
                self.pending_bool = Some(true);
                TType::Bool
            }
            0x02 => {
                self.pending_bool = Some(false);
                TType::Bool
            }
            other => Self::ttype(other, false)?,
        };
        if field_type == TType::Stop {
            return Ok(
                TFieldIdentifier::new::<Option<String>, String, Option<i16>>(
                    None,
                    TType::Stop,
                    None,
                ),
            );
        }
        self.last_field_id = if delta != 0 {
            self.last_field_id
                .checked_add(i16::from(delta))
                .ok_or_else(|| invalid("field id overflows i16"))?
        } else {
            self.read_i16()?
        };
        Ok(TFieldIdentifier::new::<Option<String>, String, i16>(
            None,
            field_type,
            self.last_field_id,
        ))
    }

    fn read_bool(&mut self) -> thrift::Result<bool> {
        match self.pending_bool.take() {
            Some(b) => Ok(b),
            None => match self.frame.byte()? {
                0x01 => Ok(true),
                0x02 => Ok(false),
                other => Err(invalid(format!("cannot read {other} as a bool"))),
            },
        }
    }

    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        let len = self.u32_varint()?;
        self.frame.bytes_of_len(i64::from(len))
    }

    fn read_i16(&mut self) -> thrift::Result<i16> {
        let n = Self::zigzag(self.varint(16)?);
        i16::try_from(n).map_err(|_| invalid(format!("{n} does not fit an i16")))
    }

    fn read_i32(&mut self) -> thrift::Result<i32> {
        let n = Self::zigzag(self.varint(32)?);
        i32::try_from(n).map_err(|_| invalid(format!("{n} does not fit an i32")))
    }

    fn read_i64(&mut self) -> thrift::Result<i64> {
        Ok(Self::zigzag(self.varint(64)?))
    }

    fn read_double(&mut self) -> thrift::Result<f64> {
        Ok(f64::from_le_bytes(self.frame.array()?))
    }

    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let size = self.u32_varint()?;
        if size == 0 {
            self.frame.claim(0, 1, "map")?;
            return Ok(TMapIdentifier::new(None, None, 0));
        }
        let types = self.frame.byte()?;
        let key_type = Self::ttype(types >> 4, true)?;
        let value_type = Self::ttype(types & 0x0F, true)?;
        self.frame.map(key_type, value_type, i64::from(size))
    }
}
