//! A TCP proxy between a pipe's sink and its peer that tests can break on demand: refuse and cut
//! connections, black-hole them (bytes held until the link heals, as a network partition shorter than
//! TCP's give-up time behaves), or slow them down (latency per chunk and a bandwidth cap). Fault soaks
//! and replication tests point a pipe's `sink.ip`/`sink.port` at it instead of at the peer.
//!
//! Plain threads and blocking sockets: one accept thread and two pump threads per connection, each
//! pump waking every [`POLL`] to see whether its link was cut, so a state change takes effect within
//! that time without any async runtime in the test process.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// How often a pump that is waiting (for bytes, or for a black hole to heal) looks at the link state.
const POLL: Duration = Duration::from_millis(20);

/// How long the proxy tries to reach the upstream before it closes the client's connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the link does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Bytes pass as they come.
    Open,
    /// Every open connection is cut (both sockets shut down) and new ones are closed as soon as they
    /// are accepted: the sender sees resets and refusals.
    Refuse,
    /// Connections stay up and new ones are accepted, but no byte moves either way until the state
    /// changes; held bytes are then delivered, in order.
    Blackhole,
    /// Every chunk waits `delay`, plus its size at `bytes_per_second`, before it is passed on.
    Slow {
        delay: Duration,
        bytes_per_second: u64,
    },
}

/// Counters of what the proxy did, for reports and assertions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub accepted: u64,
    pub refused: u64,
    pub cut: u64,
    pub bytes: u64,
}

#[derive(Debug)]
struct Link {
    state: LinkState,
    /// Raised by every `Refuse`: a connection opened under an older generation is cut.
    generation: u64,
}

#[derive(Debug)]
struct Shared {
    link: Mutex<Link>,
    changed: Condvar,
    stopping: AtomicBool,
    accepted: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    bytes: AtomicU64,
}

impl Shared {
    fn link(&self) -> MutexGuard<'_, Link> {
        // A pump that panicked while holding the lock leaves a valid state behind: keep using it.
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A listening proxy to one upstream address; dropping it cuts every connection.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards each connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            link: Mutex::new(Link {
                state: LinkState::Open,
                generation: 0,
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        let accept_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || accept_loop(listener, upstream, accept_shared))?;
        Ok(FaultProxy {
            port,
            upstream,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port clients (a pipe's sink) connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    pub fn state(&self) -> LinkState {
        self.shared.link().state
    }

    /// Changes what the link does; `Refuse` also cuts every open connection.
    pub fn set(&self, state: LinkState) {
        let mut link = self.shared.link();
        if state == LinkState::Refuse {
            link.generation += 1;
        }
        link.state = state;
        drop(link);
        self.shared.changed.notify_all();
    }

    /// Back to [`LinkState::Open`]; black-holed bytes flow again.
    pub fn heal(&self) {
        self.set(LinkState::Open);
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            cut: self.shared.cut.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.set(LinkState::Refuse);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else {
            // Out of descriptors or a connection reset before accept: keep serving the others.
            std::thread::sleep(POLL);
            continue;
        };
        let (state, generation) = {
            let link = shared.link();
            (link.state, link.generation)
        };
        if state == LinkState::Refuse {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        // Connecting upstream may take up to its timeout: not on the accept thread.
        let _ = std::thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || serve(client, upstream, generation, shared));
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, generation: u64, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect_timeout(&upstream, UPSTREAM_CONNECT_TIMEOUT) else {
        // The peer is down: the client sees its connection closed, as it would see a refusal.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return;
    };
    let back_shared = shared.clone();
    let back = std::thread::Builder::new()
        .name("proxy-back".into())
        .spawn(move || pump(server2, client2, generation, back_shared));
    pump(client, server, generation, shared);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

/// What a pump must do with the chunk it holds, given the link state.
enum Verdict {
    Pass(Option<Duration>),
    Cut,
}

/// Waits while the link is a black hole; then says whether to pass the chunk (after how long) or cut.
fn admit(shared: &Shared, generation: u64, len: usize) -> Verdict {
    let mut link = shared.link();
    loop {
        if link.generation != generation || shared.stopping.load(Ordering::SeqCst) {
            return Verdict::Cut;
        }
        match link.state {
            LinkState::Open => return Verdict::Pass(None),
            LinkState::Refuse => return Verdict::Cut,
            LinkState::Slow {
                delay,
                bytes_per_second,
            } => {
                let transfer = Duration::from_secs_f64(len as f64 / bytes_per_second.max(1) as f64);
                return Verdict::Pass(Some(delay + transfer));
            }
            LinkState::Blackhole => {
                link = match shared.changed.wait_timeout(link, POLL) {
                    Ok((guard, _)) => guard,
                    Err(e) => e.into_inner().0,
                };
            }
        }
    }
}

/// Copies `from` to `to` until either side closes or the link is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, generation: u64, shared: Arc<Shared>) {
    let cut = |from: &TcpStream, to: &TcpStream| {
        shared.cut.fetch_add(1, Ordering::Relaxed);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    if from.set_read_timeout(Some(POLL)).is_err() {
        cut(&from, &to);
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                // Orderly close: pass the end on, let the other direction finish by itself.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let link = shared.link();
                if link.generation != generation || shared.stopping.load(Ordering::SeqCst) {
                    drop(link);
                    cut(&from, &to);
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        };
        match admit(&shared, generation, n) {
            Verdict::Cut => {
                cut(&from, &to);
                return;
            }
            Verdict::Pass(delay) => {
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An upstream that echoes every byte back.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(bytes)?;
        let mut back = vec![0u8; bytes.len()];
        stream.read_exact(&mut back)?;
        Ok(back)
    }

    #[test]
    fn open_link_passes_bytes_both_ways() {
        let proxy = FaultProxy::start(echo_server()).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        assert_eq!(round_trip(&mut s, b"hello").unwrap(), b"hello");
        assert_eq!(proxy.stats().accepted, 1);
        // The echo may reach the client a moment before the proxy counts it.
        crate::wait_for(
            "the proxy to count 10 bytes",
            Duration::from_secs(5),
            || (proxy.stats().bytes == 10).then_some(()),
        )
        .unwrap();
    }

    #[test]
    fn refuse_cuts_open_connections_and_closes_new_ones() {
        let proxy = FaultProxy::start(echo_server()).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        assert_eq!(round_trip(&mut s, b"x").unwrap(), b"x");
        proxy.set(LinkState::Refuse);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(
            round_trip(&mut s, b"y").is_err(),
            "the open connection survived"
        );
        let mut fresh = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        fresh
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            round_trip(&mut fresh, b"z").is_err(),
            "a new connection got through"
        );
        proxy.heal();
        let mut healed = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        assert_eq!(round_trip(&mut healed, b"ok").unwrap(), b"ok");
        assert!(proxy.stats().refused >= 1 && proxy.stats().cut >= 1);
    }

    #[test]
    fn blackhole_holds_bytes_until_healed() {
        let proxy = FaultProxy::start(echo_server()).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        proxy.set(LinkState::Blackhole);
        s.write_all(b"held").unwrap();
        // The absence of an echo cannot be polled for: through an open proxy it comes back within a
        // millisecond, so 300 ms without it shows the bytes are held.
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4];
        let err = s.read_exact(&mut buf).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{err}"
        );
        proxy.heal();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"held");
    }

    #[test]
    fn slow_link_delays_each_chunk() {
        let proxy = FaultProxy::start(echo_server()).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        proxy.set(LinkState::Slow {
            delay: Duration::from_millis(100),
            bytes_per_second: 1 << 30,
        });
        let started = Instant::now();
        assert_eq!(round_trip(&mut s, b"slow").unwrap(), b"slow");
        // One delay each way.
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }
}
