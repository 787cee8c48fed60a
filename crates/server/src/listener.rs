//! The session listener: accepts connections on the RPC port and runs one [`Handler`] task per
//! connection, until shutdown.
//!
//! Modelled on mini-redis: the accept loop backs off on errors instead of failing, a semaphore caps
//! concurrent connections, every connection task gets a child cancellation token, and [`run`] returns
//! only after every handler has finished its current request.

use std::time::Duration;

use duet_proto::codec::{self, MAX_REQUEST_FRAME_BYTES};
use duet_proto::rpc::{self, Decoded};
use thrift::ApplicationErrorKind;
use tokio::io::BufWriter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::instance::InstanceRef;
use crate::session::Session;

/// How long shutdown waits for connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections and spawns their handlers.
struct Listener {
    instance: InstanceRef,
    listener: TcpListener,
    /// Caps concurrent connections; a permit is held by each handler task.
    limit: std::sync::Arc<Semaphore>,
    /// Cancelled on shutdown; handlers watch child tokens.
    shutdown: CancellationToken,
    /// Tracks handler tasks so shutdown can wait for them.
    tracker: TaskTracker,
}

/// Serves connections on `listener` until `shutdown` is cancelled, then waits for handlers to finish.
pub async fn run(instance: InstanceRef, listener: TcpListener, shutdown: CancellationToken) {
    let limit = std::sync::Arc::new(Semaphore::new(instance.config.max_connections));
    let mut server = Listener {
        instance,
        listener,
        limit,
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
    };
    tokio::select! {
        () = server.accept_loop() => {}
        () = shutdown.cancelled() => {}
    }
    server.tracker.close();
    info!(
        connections = server.tracker.len(),
        "shutting down: waiting for connections to finish"
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, server.tracker.wait())
        .await
        .is_err()
    {
        warn!("connections still busy after {SHUTDOWN_GRACE:?}; closing them");
    }
}

impl Listener {
    async fn accept_loop(&mut self) {
        loop {
            let Ok(permit) = self.limit.clone().acquire_owned().await else {
                return;
            };
            let (socket, peer) = match self.accept().await {
                Some(accepted) => accepted,
                None => return,
            };
            let instance = self.instance.clone();
            let token = self.shutdown.child_token();
            self.tracker.spawn(async move {
                let peer = peer.to_string();
                debug!(%peer, "connection accepted");
                let mut handler = Handler {
                    session: Session::new(instance, peer.clone()),
                    socket: BufWriter::new(socket),
                    shutdown: token,
                };
                if let Err(e) = handler.run().await {
                    // One connection's failure is logged here and never reaches the accept loop.
                    warn!(%peer, "connection closed: {e}");
                }
                handler.session.close();
                drop(permit);
            });
        }
    }

    /// Accepts with exponential backoff on errors (e.g. too many open files), so a transient failure
    /// never stops the server.
    async fn accept(&mut self) -> Option<(TcpStream, std::net::SocketAddr)> {
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.listener.accept().await {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    return Some((socket, peer));
                }
                Err(e) => {
                    error!("accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Serves one connection: read a frame, decode, answer, repeat.
struct Handler {
    session: Session,
    socket: BufWriter<TcpStream>,
    shutdown: CancellationToken,
}

impl Handler {
    async fn run(&mut self) -> duet_proto::Result<()> {
        loop {
            let frame = tokio::select! {
                frame = codec::read_frame(&mut self.socket, MAX_REQUEST_FRAME_BYTES) => frame?,
                () = self.shutdown.cancelled() => return Ok(()),
            };
            let Some(payload) = frame else {
                return Ok(());
            };
            // A frame that is not a Thrift call ends this connection (the error is returned); a call with
            // bad arguments or an unknown method is answered and the connection goes on.
            let reply = match rpc::decode_call(&payload)? {
                Decoded::BadArguments(header, message) => rpc::encode_exception(
                    &header,
                    ApplicationErrorKind::ProtocolError,
                    &format!("bad arguments to {}: {message}", header.name),
                )?,
                Decoded::Call(header, request) => match self.session.handle(request).await {
                    Some(reply) => rpc::encode_reply(&header, &reply)?,
                    None => rpc::encode_exception(
                        &header,
                        ApplicationErrorKind::UnknownMethod,
                        &format!("Invalid method name: '{}'", header.name),
                    )?,
                },
            };
            codec::write_frame(&mut self.socket, &reply).await?;
        }
    }
}
