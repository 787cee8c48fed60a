//! A client connection's byte stream as the handler needs it: plain or TLS ([`Stream`]), with a
//! way to wait for the next request's first byte and to notice a hang-up mid-request without
//! losing bytes.
//!
//! Plain TCP can `peek`; TLS cannot (what arrives are records to decrypt), so for TLS those waits
//! read ahead into a buffer that the next reads drain first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use duet_proto::tls::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// How much a wait reads ahead at most on a TLS connection.
const READ_AHEAD_BYTES: usize = 16 * 1024;

pub struct ClientStream {
    stream: Stream,
    /// Bytes read ahead (TLS only) and not yet consumed; `ahead[consumed..]` is what is left.
    ahead: Vec<u8>,
    consumed: usize,
    /// The peer closed its side during a read ahead.
    eof: bool,
}

impl ClientStream {
    pub fn new(stream: Stream) -> ClientStream {
        ClientStream {
            stream,
            ahead: Vec::new(),
            consumed: 0,
            eof: false,
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    fn has_ahead(&self) -> bool {
        self.consumed < self.ahead.len()
    }

    /// Reads ahead once (TLS); `Ok(false)` at end of stream. Cancel-safe: the bytes are appended
    /// only once the read has completed.
    async fn read_ahead(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = vec![0u8; READ_AHEAD_BYTES];
        let n = match self.stream.read(&mut chunk).await {
            Ok(n) => n,
            // Many TLS clients (Python's among them) close the socket without a close_notify
            // alert: between requests that is a hang-up like any other, not an error.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        if !self.has_ahead() {
            self.ahead.clear();
            self.consumed = 0;
        }
        self.ahead.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// Resolves once a byte can be read, or the stream ended (the read that follows says which).
    pub async fn readable(&mut self) -> io::Result<()> {
        if self.has_ahead() || self.eof {
            return Ok(());
        }
        match &self.stream {
            Stream::Plain(tcp) => {
                let mut byte = [0u8; 1];
                tcp.peek(&mut byte).await.map(|_| ())
            }
            Stream::Tls(_) => self.read_ahead().await.map(|_| ()),
        }
    }

    /// Resolves once the client has closed the connection (or it failed); stays pending while it
    /// is open, whether or not it sent more bytes (Thrift clients wait for each reply, so any bytes
    /// are the next request, kept for the next read).
    pub async fn closed(&mut self) {
        if self.eof {
            return;
        }
        if self.has_ahead() {
            return std::future::pending().await;
        }
        match &self.stream {
            Stream::Plain(tcp) => {
                let mut byte = [0u8; 1];
                match tcp.peek(&mut byte).await {
                    Ok(0) | Err(_) => {}
                    Ok(_) => std::future::pending().await,
                }
            }
            Stream::Tls(_) => match self.read_ahead().await {
                Ok(false) | Err(_) => {}
                Ok(true) => std::future::pending().await,
            },
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.has_ahead() {
            let n = buf.remaining().min(this.ahead.len() - this.consumed);
            buf.put_slice(&this.ahead[this.consumed..this.consumed + n]);
            this.consumed += n;
            return Poll::Ready(Ok(()));
        }
        if this.eof {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
