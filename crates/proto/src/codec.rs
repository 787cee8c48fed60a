//! Framed transport and Thrift message envelopes: a 4-byte big-endian length, then one Thrift message in
//! the binary (strict, first byte `0x80`) or compact (first byte `0x82`) protocol, detected per frame.

use thrift::protocol::{
    TBinaryOutputProtocol, TCompactOutputProtocol, TFieldIdentifier, TInputProtocol,
    TMessageIdentifier, TMessageType, TOutputProtocol, TSerializable, TStructIdentifier, TType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::input::{BinaryInput, CompactInput};
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

/// How much of a frame's buffer is reserved before its bytes arrive; the buffer then at most doubles
/// as they do, so a length prefix alone can never make the reader reserve more than this.
pub const FRAME_BUFFER_STEP: usize = 64 * 1024;

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly between frames.
///
/// The frame's buffer grows with the bytes that actually arrive (never beyond twice what was
/// received, plus [`FRAME_BUFFER_STEP`]): a peer that announces 512 MiB and sends nothing holds 64 KiB.
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
    let mut payload = Vec::with_capacity(len.min(FRAME_BUFFER_STEP));
    while payload.len() < len {
        if payload.len() == payload.capacity() {
            let missing = len - payload.len();
            payload.reserve_exact(missing.min(payload.len().max(FRAME_BUFFER_STEP)));
        }
        let wanted = u64::try_from(len - payload.len()).unwrap_or(u64::MAX);
        let n = (&mut *reader).take(wanted).read_buf(&mut payload).await?;
        if n == 0 {
            return Err(ProtoError::MalformedFrame(format!(
                "connection closed inside a frame of {len} bytes ({} received)",
                payload.len()
            )));
        }
    }
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

/// An input protocol reading from an in-memory payload, checking every length against the bytes left
/// before allocating (see [`crate::input`]).
pub fn input_protocol(protocol: Protocol, payload: &[u8]) -> Box<dyn TInputProtocol + '_> {
    match protocol {
        // Non-strict reading also accepts old clients that omit the version word.
        Protocol::Binary => Box::new(BinaryInput::new(payload)),
        Protocol::Compact => Box::new(CompactInput::new(payload)),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// A frame that arrives in small pieces is reassembled; one announced larger than what arrives
    /// before the peer closes is an error naming both sizes (and never had its announced size reserved).
    #[test]
    fn frames_are_read_as_their_bytes_arrive() {
        block_on(async {
            let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
            let (mut client, mut server) = tokio::io::duplex(1024);
            let sent = payload.clone();
            let writer = tokio::spawn(async move {
                write_frame(&mut client, &sent).await.unwrap();
                client
                    .write_all(&(400_000_000i32).to_be_bytes())
                    .await
                    .unwrap();
                client.write_all(&[7; 10]).await.unwrap();
            });
            let frame = read_frame(&mut server, MAX_REQUEST_FRAME_BYTES)
                .await
                .unwrap();
            assert_eq!(frame.as_deref(), Some(&payload[..]));
            writer.await.unwrap();
            let err = read_frame(&mut server, MAX_REQUEST_FRAME_BYTES)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("frame of 400000000 bytes (10 received)"),
                "{err}"
            );
            let mut negative = &[0xff, 0xff, 0xff, 0xfe][..];
            assert!(read_frame(&mut negative, MAX_REQUEST_FRAME_BYTES)
                .await
                .is_err());
            let mut too_large = &[0x7f, 0xff, 0xff, 0xff][..];
            assert!(read_frame(&mut too_large, MAX_REQUEST_FRAME_BYTES)
                .await
                .is_err());
        });
    }
}
