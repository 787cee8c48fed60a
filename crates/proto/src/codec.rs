//! Framed transport and Thrift message envelopes: a 4-byte big-endian length, then one Thrift message in
//! the binary (strict, first byte `0x80`) or compact (first byte `0x82`) protocol, detected per frame.

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TFieldIdentifier, TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol,
    TSerializable, TStructIdentifier, TType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{ProtoError, Result};

/// The largest request frame a server accepts (IoTDB's `THRIFT_FRAME_MAX_SIZE`, 512 MiB).
pub const MAX_REQUEST_FRAME_BYTES: usize = 512 * 1024 * 1024;

/// The largest reply frame the Python client (thrift 0.25) accepts; every reply must stay below it.
pub const MAX_REPLY_FRAME_BYTES: usize = 16_384_000;

/// Which Thrift protocol a frame is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Binary,
    Compact,
}

impl Protocol {
    /// Tells the protocol from the first payload byte.
    pub fn detect(payload: &[u8]) -> Result<Protocol> {
        match payload.first() {
            Some(0x80) => Ok(Protocol::Binary),
            Some(0x82) => Ok(Protocol::Compact),
            Some(b) => Err(ProtoError::MalformedFrame(format!(
                "unknown protocol byte 0x{b:02x}"
            ))),
            None => Err(ProtoError::MalformedFrame("empty frame".into())),
        }
    }
}

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        let n = reader.read(&mut len[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(ProtoError::MalformedFrame(
                    "connection closed inside a frame header".into(),
                ))
            };
        }
        filled += n;
    }
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len)
        .map_err(|_| ProtoError::MalformedFrame(format!("negative frame length {len}")))?;
    if len > max_bytes {
        return Err(ProtoError::MalformedFrame(format!(
            "frame of {len} bytes exceeds the limit of {max_bytes}"
        )));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, payload: &[u8]) -> Result<()> {
    let len = i32::try_from(payload.len()).map_err(|_| {
        ProtoError::MalformedFrame(format!("frame of {} bytes is too large", payload.len()))
    })?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    writer.flush().await?;
    Ok(())
}

/// An input protocol reading from an in-memory payload.
pub fn input_protocol(protocol: Protocol, payload: &[u8]) -> Box<dyn TInputProtocol + '_> {
    match protocol {
        // Non-strict reading also accepts old clients that omit the version word.
        Protocol::Binary => Box::new(TBinaryInputProtocol::new(payload, false)),
        Protocol::Compact => Box::new(TCompactInputProtocol::new(payload)),
    }
}

/// An output protocol appending to an in-memory buffer.
pub fn output_protocol(protocol: Protocol, out: &mut Vec<u8>) -> Box<dyn TOutputProtocol + '_> {
    match protocol {
        Protocol::Binary => Box::new(TBinaryOutputProtocol::new(out, true)),
        Protocol::Compact => Box::new(TCompactOutputProtocol::new(out)),
    }
}

/// Reads the fields of an argument or result struct, handing each to `on_field`; fields it does not
/// consume (returns `false`) are skipped, so unknown fields never break decoding.
pub fn read_fields(
    prot: &mut dyn TInputProtocol,
    mut on_field: impl FnMut(i16, TType, &mut dyn TInputProtocol) -> thrift::Result<bool>,
) -> thrift::Result<()> {
    prot.read_struct_begin()?;
    loop {
        let field = prot.read_field_begin()?;
        if field.field_type == TType::Stop {
            break;
        }
        let consumed = match field.id {
            Some(id) => on_field(id, field.field_type, prot)?,
            None => false,
        };
        if !consumed {
            prot.skip(field.field_type)?;
        }
        prot.read_field_end()?;
    }
    prot.read_struct_end()
}

/// Reads an argument struct whose only interesting field is one struct `T` at any of `ids` (IoTDB's
/// `pipeTransfer` declares its argument without an id, which Thrift numbers -1).
pub fn read_struct_arg<T: TSerializable>(
    prot: &mut dyn TInputProtocol,
    ids: &[i16],
) -> thrift::Result<T> {
    let mut value = None;
    read_fields(prot, |id, ttype, p| {
        if ids.contains(&id) && ttype == TType::Struct {
            value = Some(T::read_from_in_protocol(p)?);
            Ok(true)
        } else {
            Ok(false)
        }
    })?;
    value.ok_or_else(|| missing("argument struct"))
}

pub(crate) fn missing(what: &str) -> thrift::Error {
    thrift::Error::Protocol(thrift::ProtocolError::new(
        thrift::ProtocolErrorKind::InvalidData,
        format!("missing required {what}"),
    ))
}

/// Writes one message: header, a struct whose fields `write_fields` writes, and the end markers.
pub fn encode_message(
    protocol: Protocol,
    name: &str,
    message_type: TMessageType,
    seq: i32,
    write_fields: impl FnOnce(&mut dyn TOutputProtocol) -> thrift::Result<()>,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    {
        let mut prot = output_protocol(protocol, &mut out);
        prot.write_message_begin(&TMessageIdentifier::new(name, message_type, seq))?;
        prot.write_struct_begin(&TStructIdentifier::new("args"))?;
        write_fields(prot.as_mut())?;
        prot.write_field_stop()?;
        prot.write_struct_end()?;
        prot.write_message_end()?;
        prot.flush()?;
    }
    Ok(out)
}

/// Writes field `id` holding the struct `value`.
pub fn write_struct_field<T: TSerializable>(
    prot: &mut dyn TOutputProtocol,
    id: i16,
    value: &T,
) -> thrift::Result<()> {
    prot.write_field_begin(&TFieldIdentifier::new("f", TType::Struct, id))?;
    value.write_to_out_protocol(prot)?;
    prot.write_field_end()
}

/// Writes field `id` holding an i64.
pub fn write_i64_field(prot: &mut dyn TOutputProtocol, id: i16, value: i64) -> thrift::Result<()> {
    prot.write_field_begin(&TFieldIdentifier::new("f", TType::I64, id))?;
    prot.write_i64(value)?;
    prot.write_field_end()
}
