//! The session listener: accepts connections on the RPC port and runs one [`Handler`] task per
//! connection, until shutdown.
//!
//! Modelled on mini-redis: the accept loop backs off on errors instead of failing, every connection
//! task gets a child cancellation token, and [`run`] returns only after every handler has finished its
//! current request.
//!
//! Slots are guarded so that sockets which never log in cannot lock clients out:
//! - `max_connections` caps the connections served; one more is still accepted, its first call is
//!   answered with status 717 naming the limit, and it is closed (IoTDB's Thrift server closes it
//!   without a word, which clients report as "Could not connect");
//! - `max_unauthenticated_connections` caps those not yet logged in, the way sshd's `MaxStartups` does;
//! - a connection must log in within `login_timeout_ms`;
//! - once a request frame has begun, the rest must arrive within `frame_timeout_ms` (and a reply must
//!   be taken within it); idle time between requests of a logged-in session is not limited unless
//!   `session_timeout_ms` is set.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use duet_proto::codec::{self, MAX_REQUEST_FRAME_BYTES};
use duet_proto::rpc::{self, Decoded, Reply, Request};
use duet_proto::status::StatusCode;
use duet_proto::tls::{self, Stream, TLS_HANDSHAKE_BYTE};
use duet_proto::{t, ProtoError};
use thrift::ApplicationErrorKind;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::client_stream::ClientStream;
use crate::config::Config;
use crate::instance::InstanceRef;
use crate::session::Session;

/// The largest request frame a connection that has not logged in may send (an `openSession` or a
/// pipe handshake is a few hundred bytes).
const MAX_LOGIN_FRAME_BYTES: usize = 1024 * 1024;

/// How many distinct unknown method names one connection logs at warn.
const MAX_UNKNOWN_METHODS_LOGGED: usize = 16;

/// How long shutdown waits for connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// IoTDB has no code for a full connection table (its Thrift server just closes the socket); this is
/// its code for a full concurrency limit.
const TOO_MANY_CONCURRENT_QUERIES_ERROR: i32 = StatusCode::TooManyConcurrentQueries as i32;

/// How long a refused connection is given to send its first call, which is then answered with the
/// refusal; a client sends `openSession` as soon as it has connected.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest first call a refused connection may send (an `openSession` is a few hundred bytes).
const REFUSAL_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Refused connections answered at once; beyond this a refused socket is closed without an answer,
/// so a flood of connections costs neither memory nor tasks.
const MAX_CONCURRENT_REFUSALS: usize = 64;

/// The shortest interval between two warnings of one kind (refusals, login timeouts).
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The connection limits of the configuration, as durations.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    max_unauthenticated: usize,
    login_timeout: Duration,
    frame_timeout: Duration,
    /// `None`: a logged-in session may stay idle for ever.
    session_timeout: Option<Duration>,
}

impl Limits {
    fn from_config(config: &Config) -> Limits {
        Limits {
            max_connections: config.max_connections,
            max_unauthenticated: config
                .max_unauthenticated_connections
                .min(config.max_connections),
            login_timeout: Duration::from_millis(config.login_timeout_ms),
            frame_timeout: Duration::from_millis(config.frame_timeout_ms),
            session_timeout: (config.session_timeout_ms > 0)
                .then(|| Duration::from_millis(config.session_timeout_ms)),
        }
    }
}

/// Counts one kind of event and decides when to log it: at once the first time, then at most once per
/// [`WARNING_INTERVAL`] with how many happened since the last line, so a flood of sockets cannot flood
/// the log.
#[derive(Default)]
struct WarningThrottle {
    /// When the last line was logged, and the events counted since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl WarningThrottle {
    /// A connection closed for not logging in within `limit`: at debug each time, throttled at warn.
    fn login_timed_out(&self, peer: &str, e: &ConnectionError, limit: Duration) {
        debug!(%peer, "connection closed: {e}");
        if let Some(count) = self.record() {
            warn!(
                %peer,
                closed = count,
                "closed {count} connection(s) that did not log in within {limit:?} (login_timeout_ms) since the last such warning"
            );
        }
    }

    /// Records one event; returns the number to report when a line is due.
    fn record(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += 1;
        let now = Instant::now();
        if state
            .0
            .is_some_and(|last| now.duration_since(last) < WARNING_INTERVAL)
        {
            return None;
        }
        state.0 = Some(now);
        Some(std::mem::take(&mut state.1))
    }
}

/// Accepts connections and spawns their handlers.
struct Listener {
    instance: InstanceRef,
    listener: TcpListener,
    limits: Limits,
    /// One permit per connection served (`max_connections`), held by its handler task.
    slots: Arc<Semaphore>,
    /// One permit per connection not yet logged in (`max_unauthenticated_connections`), released at
    /// login.
    login_slots: Arc<Semaphore>,
    /// One permit per refused connection being answered.
    refusals: Arc<Semaphore>,
    refusal_warnings: Arc<WarningThrottle>,
    login_timeout_warnings: Arc<WarningThrottle>,
    /// Failed TLS handshakes and plain clients on a TLS port (or TLS clients on a plain one).
    tls_warnings: Arc<WarningThrottle>,
    /// Cancelled on shutdown; handlers watch child tokens.
    shutdown: CancellationToken,
    /// Tracks handler tasks so shutdown can wait for them.
    tracker: TaskTracker,
}

/// Serves connections on `listener` until `shutdown` is cancelled, then waits for handlers to finish.
pub async fn run(instance: InstanceRef, listener: TcpListener, shutdown: CancellationToken) {
    let limits = Limits::from_config(&instance.config);
    let mut server = Listener {
        instance,
        listener,
        limits,
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        login_slots: Arc::new(Semaphore::new(limits.max_unauthenticated)),
        refusals: Arc::new(Semaphore::new(MAX_CONCURRENT_REFUSALS)),
        refusal_warnings: Arc::default(),
        login_timeout_warnings: Arc::default(),
        tls_warnings: Arc::default(),
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
            // Accept first and count afterwards: a connection over the limit is answered, never left
            // waiting in the kernel's accept queue.
            let Some((socket, peer)) = self.accept().await else {
                return;
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                let reason = format!(
                    "too many connections: max_connections = {}",
                    self.limits.max_connections
                );
                self.refuse(socket, peer, reason);
                continue;
            };
            let Ok(login_slot) = self.login_slots.clone().try_acquire_owned() else {
                drop(slot);
                let reason = format!(
                    "too many connections waiting to log in: max_unauthenticated_connections = {}",
                    self.limits.max_unauthenticated
                );
                self.refuse(socket, peer, reason);
                continue;
            };
            let instance = self.instance.clone();
            instance.metrics.connections_accepted.inc();
            instance.metrics.connections_open.inc();
            let token = self.shutdown.child_token();
            let limits = self.limits;
            let login_timeout_warnings = self.login_timeout_warnings.clone();
            let accepted = Instant::now();
            let tls_warnings = self.tls_warnings.clone();
            self.tracker.spawn(async move {
                let peer = peer.to_string();
                debug!(%peer, "connection accepted");
                let login_deadline = accepted + limits.login_timeout;
                let opened = tokio::select! {
                    opened = open_stream(&instance, socket, login_deadline) => opened,
                    () = token.cancelled() => Err(ConnectionError::ShuttingDown),
                };
                let stream = match opened {
                    Ok(stream) => stream,
                    Err(e) => {
                        match e {
                            ConnectionError::Tls(_)
                            | ConnectionError::NotTls
                            | ConnectionError::UnexpectedTls => {
                                if let Some(count) = tls_warnings.record() {
                                    info!(%peer, refused = count, "connection closed before a session: {e} ({count} such since the last line)");
                                }
                            }
                            ConnectionError::LoginTimeout(limit) => {
                                login_timeout_warnings.login_timed_out(&peer, &e, limit);
                            }
                            _ => debug!(%peer, "connection closed before a session: {e}"),
                        }
                        drop(login_slot);
                        drop(slot);
                        instance.metrics.connections_open.dec();
                        return;
                    }
                };
                let mut handler = Handler {
                    session: Session::new(instance, peer.clone()),
                    socket: BufWriter::new(ClientStream::new(stream)),
                    shutdown: token,
                    limits,
                    login_slot: Some(login_slot),
                    login_deadline: Some(login_deadline),
                    unknown_methods_logged: HashSet::new(),
                };
                match handler.run().await {
                    Ok(()) => {}
                    Err(e @ ConnectionError::LoginTimeout(limit)) => {
                        login_timeout_warnings.login_timed_out(&peer, &e, limit);
                    }
                    Err(e @ ConnectionError::SessionIdle(_)) => {
                        info!(%peer, "connection closed: {e}")
                    }
                    // One connection's failure is logged here and never reaches the accept loop.
                    Err(e) => warn!(%peer, "connection closed: {e}"),
                }
                handler.session.close();
                // Free the slots before the socket closes, so a client that sees the close can
                // connect again at once.
                handler.login_slot = None;
                drop(slot);
                handler.session.instance().metrics.connections_open.dec();
                drop(handler);
            });
        }
    }

    /// Accepts with exponential backoff on errors (e.g. too many open files), so a transient failure
    /// never stops the server.
    async fn accept(&mut self) -> Option<(TcpStream, SocketAddr)> {
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

    /// Logs the refusal (throttled) and answers the connection's first call with it, then closes it.
    fn refuse(&self, socket: TcpStream, peer: SocketAddr, reason: String) {
        self.instance.metrics.connections_refused.inc();
        if let Some(count) = self.refusal_warnings.record() {
            warn!(
                %peer,
                refused = count,
                "{reason}; refused {count} connection(s) since the last such warning"
            );
        }
        let Ok(permit) = self.refusals.clone().try_acquire_owned() else {
            // Already answering many refused connections: close this one without an answer.
            return;
        };
        let wait = REFUSAL_READ_TIMEOUT.min(self.limits.login_timeout);
        let token = self.shutdown.child_token();
        self.tracker.spawn(async move {
            tokio::select! {
                answered = tokio::time::timeout(wait, answer_refused(socket, &reason, TOO_MANY_CONCURRENT_QUERIES_ERROR)) => {
                    if let Ok(Err(e)) = answered {
                        debug!(%peer, "answering a refused connection failed: {e}");
                    }
                }
                () = token.cancelled() => {}
            }
            drop(permit);
        });
    }
}

/// What a plain client calling a TLS-only port is told.
pub const TLS_REQUIRED_MESSAGE: &str = "this server accepts TLS connections only (enable_thrift_ssl): connect with SSL (Python: Session(..., use_ssl=True, ca_certs=...); duet CLI: --use-ssl --ca <PEM>)";

/// Turns an accepted socket into the connection's stream before its first request: on a TLS port
/// the handshake (a plain Thrift client is answered [`TLS_REQUIRED_MESSAGE`] and closed), on a plain
/// port plain TCP (a TLS client is closed at once instead of being read as a huge frame).
async fn open_stream(
    instance: &InstanceRef,
    socket: TcpStream,
    login_deadline: Instant,
) -> Result<Stream, ConnectionError> {
    let login_timeout = instance.config_login_timeout();
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout_at(login_deadline, socket.peek(&mut first))
        .await
        .map_err(|_| ConnectionError::LoginTimeout(login_timeout))?
        .map_err(ProtoError::Io)?;
    if peeked == 0 {
        return Err(ConnectionError::ClosedBeforeLogin);
    }
    match &instance.tls {
        Some(config) if first[0] == TLS_HANDSHAKE_BYTE => {
            tokio::time::timeout_at(login_deadline, tls::accept(config, socket))
                .await
                .map_err(|_| ConnectionError::LoginTimeout(login_timeout))?
                .map_err(ConnectionError::Tls)
        }
        Some(_) => {
            let wait = REFUSAL_READ_TIMEOUT.min(login_timeout);
            let _ = tokio::time::timeout(
                wait,
                answer_refused(socket, TLS_REQUIRED_MESSAGE, StatusCode::NotLogin as i32),
            )
            .await;
            Err(ConnectionError::NotTls)
        }
        None if first[0] == TLS_HANDSHAKE_BYTE => Err(ConnectionError::UnexpectedTls),
        None => Ok(Stream::Plain(socket)),
    }
}

/// Reads a refused connection's first call, answers it with the refusal and closes the connection.
async fn answer_refused(mut socket: TcpStream, reason: &str, code: i32) -> duet_proto::Result<()> {
    let Some(payload) = codec::read_frame(&mut socket, REFUSAL_MAX_FRAME_BYTES).await? else {
        return Ok(());
    };
    let reply = refusal_reply(&payload, reason, code)?;
    codec::write_frame(&mut socket, &reply).await?;
    socket.shutdown().await?;
    Ok(())
}

/// The answer to a refused connection's first call: a failure status where the reply has one (the
/// client's `openSession`, a pipe sender's handshake), else an application exception; both carry
/// `reason`.
fn refusal_reply(payload: &[u8], reason: &str, code: i32) -> duet_proto::Result<Vec<u8>> {
    let status = t::TSStatus::new(code, Some(reason.to_string()), None, None, None, None);
    match rpc::decode_call(payload)? {
        Decoded::Call(header, Request::OpenSession(_)) => rpc::encode_reply(
            &header,
            &Reply::OpenSession(t::TSOpenSessionResp::new(
                status,
                t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
                Some(-1),
                None,
            )),
        ),
        Decoded::Call(header, Request::PipeTransfer(_)) => rpc::encode_reply(
            &header,
            &Reply::PipeTransfer(t::TPipeTransferResp::new(status, None)),
        ),
        Decoded::Call(header, _) | Decoded::BadArguments(header, _) => {
            rpc::encode_exception(&header, ApplicationErrorKind::InternalError, reason)
        }
    }
}

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("no login within {0:?} (login_timeout_ms)")]
    LoginTimeout(Duration),
    #[error("a request frame stalled: its rest did not arrive within {0:?} of its first byte (frame_timeout_ms)")]
    FrameStalled(Duration),
    #[error("the client did not take a reply within {0:?} (frame_timeout_ms)")]
    ReplyStalled(Duration),
    #[error("session idle for {0:?} (session_timeout_ms)")]
    SessionIdle(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("a plain client called the TLS-only port; it was told to use TLS")]
    NotTls,
    #[error("a TLS handshake arrived on a plain port (TLS is not configured)")]
    UnexpectedTls,
    #[error("the client closed the connection before its first request")]
    ClosedBeforeLogin,
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Serves one connection: read a frame, decode, answer, repeat.
struct Handler {
    session: Session,
    socket: BufWriter<ClientStream>,
    shutdown: CancellationToken,
    limits: Limits,
    /// Held until the connection logs in, so connections not logged in are capped.
    login_slot: Option<OwnedSemaphorePermit>,
    /// When the connection must have logged in by; `None` while it is logged in.
    login_deadline: Option<Instant>,
    /// The unknown method names already logged at warn on this connection.
    unknown_methods_logged: HashSet<String>,
}

impl Handler {
    async fn run(&mut self) -> Result<(), ConnectionError> {
        loop {
            let Some(payload) = self.read_request().await? else {
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
                Decoded::Call(header, request) => {
                    // A client that hangs up mid-request takes its work with it: dropping the
                    // request's future cancels the query it is waiting for.
                    let handled = tokio::select! {
                        reply = self.session.handle(request) => reply,
                        () = self.socket.get_mut().closed() => {
                            debug!("client hung up during a request; its work is cancelled");
                            return Ok(());
                        }
                    };
                    match handled {
                        Some(reply) => rpc::encode_reply(&header, &reply)?,
                        None => {
                            self.note_unknown_method(&header.name);
                            rpc::encode_exception(
                                &header,
                                ApplicationErrorKind::UnknownMethod,
                                &format!("Invalid method name: '{}'", header.name),
                            )?
                        }
                    }
                }
            };
            self.note_login_state();
            let limit = self.limits.frame_timeout;
            tokio::time::timeout(limit, codec::write_frame(&mut self.socket, &reply))
                .await
                .map_err(|_| ConnectionError::ReplyStalled(limit))??;
        }
    }

    /// Reads the next request frame; `Ok(None)` when the client hung up between frames or the server
    /// is shutting down.
    async fn read_request(&mut self) -> Result<Option<Vec<u8>>, ConnectionError> {
        // Between frames the wait is bounded by the login deadline, or once logged in by the idle
        // session timeout (if any).
        let (idle_deadline, idle_error) = match self.login_deadline {
            Some(deadline) => (
                Some(deadline),
                ConnectionError::LoginTimeout(self.limits.login_timeout),
            ),
            None => (
                self.limits.session_timeout.map(|t| Instant::now() + t),
                ConnectionError::SessionIdle(self.limits.session_timeout.unwrap_or_default()),
            ),
        };
        tokio::select! {
            ready = self.socket.get_mut().readable() => {
                // End of stream is readable too: `read_frame` reports it below.
                ready.map_err(ProtoError::Io)?;
            }
            () = sleep_until(idle_deadline) => return Err(idle_error),
            () = self.shutdown.cancelled() => return Ok(None),
        }
        // A frame has begun: all of it must arrive within the frame timeout (and before the login
        // deadline, for a connection not logged in).
        let frame_deadline = Instant::now() + self.limits.frame_timeout;
        let deadline = self
            .login_deadline
            .map_or(frame_deadline, |login| login.min(frame_deadline));
        let stalled = if deadline < frame_deadline {
            ConnectionError::LoginTimeout(self.limits.login_timeout)
        } else {
            ConnectionError::FrameStalled(self.limits.frame_timeout)
        };
        // Before login only small frames are taken (openSession, a pipe handshake): a stranger
        // cannot make the server read and decode hundreds of megabytes.
        let max_frame = if self.login_deadline.is_some() {
            MAX_LOGIN_FRAME_BYTES
        } else {
            MAX_REQUEST_FRAME_BYTES
        };
        tokio::select! {
            frame = tokio::time::timeout_at(
                deadline,
                codec::read_frame(&mut self.socket, max_frame),
            ) => match frame {
                Ok(frame) => Ok(frame?),
                Err(_) => Err(stalled),
            },
            () = self.shutdown.cancelled() => Ok(None),
        }
    }

    /// Logs a call of a method outside `IClientRPCService` at warn, once per name and connection (and
    /// for at most [`MAX_UNKNOWN_METHODS_LOGGED`] names), so a client that loops on one cannot flood
    /// the log.
    fn note_unknown_method(&mut self, name: &str) {
        if self.unknown_methods_logged.contains(name) {
            return;
        }
        if self.unknown_methods_logged.len() >= MAX_UNKNOWN_METHODS_LOGGED {
            debug!(method = %name, "unknown method (no longer logged at warn on this connection)");
            return;
        }
        let peer = self
            .socket
            .get_ref()
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        warn!(%peer, method = %name, "client called a method IClientRPCService does not have; answered with a Thrift application exception");
        self.unknown_methods_logged
            .insert(name.chars().take(200).collect());
    }

    /// After each request: a connection that has logged in gives back its login slot and loses its
    /// deadline; one that logged out (closeSession) and stays connected must log in again in time.
    fn note_login_state(&mut self) {
        if self.session.is_authenticated() {
            self.login_slot = None;
            self.login_deadline = None;
        } else if self.login_deadline.is_none() {
            self.login_deadline = Some(Instant::now() + self.limits.login_timeout);
        }
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use duet_proto::codec::Protocol;

    #[test]
    fn the_first_warning_is_logged_at_once_and_later_ones_are_counted() {
        let throttle = WarningThrottle::default();
        assert_eq!(throttle.record(), Some(1));
        assert_eq!(throttle.record(), None);
        assert_eq!(throttle.record(), None);
        // Pretend the last line is old: the next one reports everything counted since.
        throttle.state.lock().unwrap().0 = Instant::now().checked_sub(WARNING_INTERVAL);
        assert_eq!(throttle.record(), Some(3));
    }

    #[test]
    fn a_refused_open_session_gets_a_status_naming_the_limit() {
        let open = t::TSOpenSessionReq::new(
            t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
            "UTC".into(),
            "root".into(),
            None,
            None,
        );
        let call = rpc::encode_struct_call(Protocol::Binary, "openSession", 1, &open).unwrap();
        let reply = refusal_reply(
            &call,
            "too many connections: max_connections = 3",
            TOO_MANY_CONCURRENT_QUERIES_ERROR,
        )
        .unwrap();
        let resp: t::TSOpenSessionResp = rpc::decode_struct_reply(&reply).unwrap();
        assert_eq!(resp.status.code, TOO_MANY_CONCURRENT_QUERIES_ERROR);
        assert_eq!(
            resp.status.message.as_deref(),
            Some("too many connections: max_connections = 3")
        );
        // Other calls get an application exception with the same message.
        let call = rpc::encode_empty_call(Protocol::Binary, "getProperties").unwrap();
        let reply = refusal_reply(&call, "too many", TOO_MANY_CONCURRENT_QUERIES_ERROR).unwrap();
        match rpc::decode_struct_reply::<t::TSStatus>(&reply) {
            Err(rpc::ReplyError::Application(message)) => assert_eq!(message, "too many"),
            other => panic!("expected an application exception, got {other:?}"),
        }
    }
}
