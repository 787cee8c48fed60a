//! Test support shared by every crate's integration tests: real `duetd` processes on ephemeral ports
//! with temporary data directories, stopped (or killed) and restarted on demand, and polling helpers so
//! that no test waits with a fixed sleep.
//!
//! Binaries are found next to the running test executable (`target/<profile>/`), where `cargo test
//! --workspace` builds them.
//!
//! - [`proxy`]: a TCP proxy tests break on demand; [`http`]: a GET and a Prometheus text reader;
//!   [`certs`]: CAs and certificates for TLS tests; [`jks`]: a writer of Java's JKS key stores;
//! - [`iotdb_wire`]: the bytes an IoTDB 2.x pipe sender writes, and [`pipe_sender`]: its handshaken
//!   connection; [`query`]: results rendered as text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub mod certs;
pub mod http;
pub mod iotdb_wire;
pub mod jks;
pub mod pipe_sender;
pub mod proxy;
pub mod query;

/// How long a server may take to become ready before a test gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a workspace binary built for the current profile (`duetd`, `duet`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// Polls `condition` every 20 ms until it returns `Some`, or fails after `timeout` naming `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Options for one server process.
#[derive(Debug, Clone, Default)]
pub struct DuetdOptions {
    /// Extra command-line arguments, e.g. `["--internal-address", "iotdb-1"]`.
    pub args: Vec<String>,
    /// The port to bind; 0 picks an ephemeral one.
    pub port: u16,
    /// The address to bind; 127.0.0.1 when `None`.
    pub address: Option<String>,
    /// Extra environment variables, e.g. `("DUET_FAULT_HOOKS", "1")`.
    pub env: Vec<(String, String)>,
}

/// A running `duetd` with its own data directory.
pub struct Duetd {
    child: Option<Child>,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    port: u16,
    options: DuetdOptions,
    /// Where the server's stderr goes: `duetd.test.log` in the data directory unless started with
    /// [`Duetd::start_in_logging_to`].
    log_file: PathBuf,
    /// While the server is down, a socket bound (not listening) to its port, so that no other
    /// test's server or connection takes the port before the restart: a peer's pipe would then
    /// deliver to a stranger, and the restart would fail with "Address already in use". Connections
    /// to it are refused, as to a stopped server.
    port_hold: Option<socket2::Socket>,
}

impl Duetd {
    /// Starts a server on an ephemeral port in a new temporary data directory.
    pub fn start() -> Result<Duetd> {
        Duetd::start_with(DuetdOptions::default())
    }

    pub fn start_with(options: DuetdOptions) -> Result<Duetd> {
        let temp = tempfile::Builder::new().prefix("duetd-test-").tempdir()?;
        let data_dir = temp.path().to_path_buf();
        let mut server = Duetd {
            child: None,
            log_file: data_dir.join("duetd.test.log"),
            data_dir,
            _temp: Some(temp),
            port: options.port,
            options,
            port_hold: None,
        };
        server.first_spawn()?;
        Ok(server)
    }

    /// Starts a server on an existing data directory (kept after the test).
    pub fn start_in(data_dir: &Path, options: DuetdOptions) -> Result<Duetd> {
        Duetd::start_in_logging_to(data_dir, &data_dir.join("duetd.test.log"), options)
    }

    /// Like [`Duetd::start_in`], with the server's stderr appended to `log_file` (e.g. outside a
    /// data directory whose file system a test fills up).
    pub fn start_in_logging_to(
        data_dir: &Path,
        log_file: &Path,
        options: DuetdOptions,
    ) -> Result<Duetd> {
        let mut server = Duetd {
            child: None,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            port: options.port,
            options,
            log_file: log_file.to_path_buf(),
            port_hold: None,
        };
        server.first_spawn()?;
        Ok(server)
    }

    fn addr_file(&self) -> PathBuf {
        self.data_dir.join("duetd.addr")
    }

    /// Starts the server the first time. Without a port asked for, it gets one below the kernel's
    /// ephemeral range, which the kernel never hands to an outgoing connection or to another
    /// server's port 0: a restarted server then finds its port free, and a peer's pipe that outlived
    /// its stop cannot reach another test's server on it.
    fn first_spawn(&mut self) -> Result<()> {
        if self.options.port != 0 {
            return self.spawn();
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.port = pick_port(&self.host());
            match self.spawn() {
                Err(e) if attempts < 5 && e.to_string().contains("Address already in use") => {
                    continue
                }
                other => return other,
            }
        }
    }

    /// Holds the server's port while it is down (best effort).
    fn hold_port(&mut self) {
        let Ok(addr) = format!("{}:{}", self.host(), self.port).parse::<std::net::SocketAddr>()
        else {
            return;
        };
        if self.port == 0 {
            return;
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        );
        self.port_hold = socket.ok().filter(|s| s.bind(&addr.into()).is_ok());
    }

    fn spawn(&mut self) -> Result<()> {
        // The port is let go just before the server binds it again.
        self.port_hold = None;
        let _ = std::fs::remove_file(self.addr_file());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)?;
        let mut command = Command::new(binary("duetd"));
        command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--rpc-address")
            .arg(self.host())
            .arg("--rpc-port")
            .arg(self.port.to_string());
        // Many servers run at once: each gets a free metrics port unless the test chose one.
        if !self
            .options
            .args
            .iter()
            .any(|a| a.starts_with("--metrics-port") || a.starts_with("--metrics-enabled"))
        {
            command.args(["--metrics-port", "0"]);
        }
        command
            .args(&self.options.args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary("duetd").display()))?;
        self.child = Some(child);
        let addr_file = self.addr_file();
        let child = self.child.as_mut().ok_or_else(|| anyhow!("no child"))?;
        let mut exited = None;
        let port = wait_for("duetd to become ready", START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return Some(0);
            }
            std::fs::read_to_string(&addr_file)
                .ok()
                .and_then(|s| s.trim().rsplit(':').next()?.parse::<u16>().ok())
        })?;
        if let Some(status) = exited {
            self.child = None;
            bail!(
                "duetd exited during start-up with {status}:\n{}",
                self.log()
            );
        }
        self.port = port;
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `address:port` of the server's `/metrics` and dashboard listener, as it wrote it to
    /// `duetd.metrics.addr` (the file is written before the server reports ready).
    pub fn metrics_addr(&self) -> Result<String> {
        let path = self.data_dir.join("duetd.metrics.addr");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim().to_string())
    }

    /// GETs `path` from the metrics listener: the status code and the body.
    pub fn http_get(&self, path: &str) -> Result<(u16, String)> {
        http::get(&self.metrics_addr()?, path)
    }

    /// The server's `/metrics`, parsed.
    pub fn metrics(&self) -> Result<http::Metrics> {
        let (status, body) = self.http_get("/metrics")?;
        if status != 200 {
            bail!("GET /metrics answered {status}: {body}");
        }
        Ok(http::Metrics::parse(&body))
    }

    /// A Thrift connection to this server in `protocol`, not logged in, with `timeout` to connect and
    /// per call: for tests that send raw calls or pipe requests.
    pub async fn connection(
        &self,
        protocol: duet_proto::codec::Protocol,
        timeout: Duration,
    ) -> Result<duet_proto::client::Connection> {
        Ok(duet_proto::client::Connection::connect(
            &self.host(),
            self.port(),
            protocol,
            timeout,
            timeout,
        )
        .await?)
    }

    /// Client options for a root session on this server (the rest as `ClientOptions::default()`).
    pub fn client_options(&self) -> duet_proto::client::ClientOptions {
        duet_proto::client::ClientOptions {
            host: self.host(),
            port: self.port(),
            ..duet_proto::client::ClientOptions::default()
        }
    }

    /// The address the server listens on.
    pub fn host(&self) -> String {
        self.options
            .address
            .clone()
            .unwrap_or_else(|| "127.0.0.1".to_string())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file the server's stderr goes to.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The server's log so far (stderr), for failure messages.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_file) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id())?;
            signal(pid, "TERM")?;
            let status = wait_exit(&mut child, Duration::from_secs(30))?;
            self.hold_port();
            if !status.success() {
                bail!("duetd exited with {status} after SIGTERM:\n{}", self.log());
            }
        }
        Ok(())
    }

    /// Graceful stop (SIGTERM) that allows `timeout` for the exit and returns how long it took. A
    /// server still running then is killed (SIGKILL), so it never outlives the error that says so.
    pub fn stop_within(&mut self, timeout: Duration) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        let pid = i32::try_from(child.id())?;
        signal(pid, "TERM")?;
        let exit = wait_exit(&mut child, timeout);
        self.hold_port();
        match exit {
            Ok(status) if status.success() => Ok(started.elapsed()),
            Ok(status) => bail!("duetd exited with {status} after SIGTERM"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("duetd was still running {timeout:?} after SIGTERM: killed")
            }
        }
    }

    /// Sends the running process a signal by name (`USR1`, `HUP`, …) without waiting for anything.
    pub fn send_signal(&self, name: &str) -> Result<()> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow!("duetd is not running"))?;
        signal(i32::try_from(child.id())?, name)
    }

    /// Abrupt stop (SIGKILL), as a crash or power loss.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
            self.hold_port();
        }
        Ok(())
    }

    /// Starts the server again on the same data directory and port. While it was down, the kernel
    /// may have handed its port to another process's outgoing connection (the port was ephemeral):
    /// the start waits until the port is free, and tries again if it was taken in between.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if self.port_hold.is_none() {
                let (host, port) = (self.host(), self.port);
                wait_for("the server's port to be free", START_TIMEOUT, || {
                    std::net::TcpListener::bind((host.as_str(), port))
                        .ok()
                        .map(drop)
                })?;
            }
            match self.spawn() {
                Err(e) if attempts < 5 && e.to_string().contains("Address already in use") => {
                    continue
                }
                other => return other,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The process id while a process is started (for reading its `/proc` entry).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    wait_for("duetd to exit", timeout, || child.try_wait().ok().flatten())
}

/// Sends a signal with kill(1), which keeps this crate free of `unsafe`.
fn signal(pid: i32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// A free port below the kernel's ephemeral range (`ip_local_port_range`), or 0 (the server then
/// picks an ephemeral one) if none is found.
fn pick_port(host: &str) -> u16 {
    static PICKS: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low);
    if high <= low {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut state = u64::from(nanos)
        ^ (u64::from(std::process::id()) << 32)
        ^ PICKS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let span = u64::from(high - low);
        let port = low + u16::try_from((state >> 33) % span).unwrap_or(0);
        if std::net::TcpListener::bind((host, port)).is_ok() {
            return port;
        }
    }
    0
}

impl Drop for Duetd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
