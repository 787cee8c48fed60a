//! `duetd`, the Duet server: configuration, start-up checks, and the session listener on the client RPC
//! port (6667 by default).
//!
//! - [`config`]: TOML file plus flags;
//! - [`logging`]: the log filter and line format;
//! - [`pid_file`]: `duetd.pid`, written once the data directory is ours;
//! - [`listener`]: accept loop and per-connection handlers (mini-redis style), graceful shutdown;
//! - [`session`]: per-connection session state and RPC dispatch; [`client_stream`]: the connection's
//!   bytes, plain or TLS;
//! - [`authz`]: what every statement and RPC needs (one table); [`login`]: failed-login delay and
//!   lockout; [`root_guard`]: the default-password policy; [`audit`]: the audit log and its view;
//! - [`rpc_queries`]: the path-based query RPCs as `Select`s;
//! - [`statements`]: the one exhaustive route of every statement, by family, and the server's own
//!   (users, cluster information, pipes);
//! - [`status_codes`]: which IoTDB status code and message every error type gets (one mapping);
//! - [`writes`]: the write and schema RPCs as engine calls; [`templates`]: the device-template RPCs;
//! - [`queries`]: the running queries of `SHOW QUERIES` and `KILL QUERY`;
//! - [`fault_hooks`]: test-only fault injection (`DUET_FAULT_HOOKS`);
//! - [`instance`]: the state every connection shares;
//! - [`metrics_http`] and [`metrics`]: Prometheus `/metrics` and the dashboard on a listener of their
//!   own.
//!
//! **Architecture invariant:** only this crate spawns connection tasks, and no request blocks the
//! accept loop.

pub mod audit;
pub mod authz;
pub mod client_stream;
pub mod config;
pub mod fault_hooks;
pub mod instance;
pub mod listener;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod metrics_http;
pub mod pid_file;
pub mod queries;
pub mod root_guard;
pub mod rpc_queries;
pub mod session;
pub mod statements;
pub mod status_codes;
pub mod templates;
pub mod writes;

use std::path::Path;
use std::sync::Arc;

use duet_catalog::{Catalog, ImmutableSettings};
use duet_runtime::ServerIdentity;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use config::Config;
use instance::{Instance, VERSION};

/// Start-up failures, each naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the catalog: {0}")]
    Catalog(#[from] duet_catalog::Error),
    #[error("cannot open the storage: {0}")]
    Storage(#[from] duet_storage::Error),
    #[error("cannot start the pipes: {0}")]
    Pipes(#[from] duet_runtime::PipeError),
    #[error("cannot start the engine: {0}")]
    Engine(#[from] duet_engine::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write the pid file in {path}: {source}")]
    PidFile {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("cannot set up TLS on the RPC port: {0}")]
    Tls(#[from] duet_proto::tls::TlsError),
    #[error("cannot write {path}: {source}")]
    AddrFile {
        path: String,
        source: std::io::Error,
    },
}

/// File in the data directory holding `address:port` once the server accepts connections; scripts and
/// tests wait for it.
pub const ADDR_FILE: &str = "duetd.addr";

/// Opens the catalog, binds the RPC port and serves until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let settings = ImmutableSettings {
        timestamp_precision: config.timestamp_precision.clone(),
        cluster_id: config.cluster_id.clone(),
    };
    let catalog = Arc::new(Catalog::open_with_root_password(
        &config.data_dir,
        &settings,
        config.initial_root_password.as_ref().map(|p| p.0.as_str()),
    )?);
    // The catalog holds the data directory's lock: the pid file names this process from here on.
    let _pid_file =
        pid_file::PidFile::create(&config.data_dir).map_err(|source| StartError::PidFile {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    let identity = catalog.identity()?;
    // Certificates are read before anything is recovered or bound: a bad file fails the start.
    let tls = config
        .tls_files()
        .map(|files| duet_proto::tls::server_config(&files))
        .transpose()?;
    // Recover the data before accepting anyone: the log is replayed into memory here.
    let storage_options = duet_storage::StorageOptions {
        instance: duet_runtime::instance_number(&identity.cluster_id),
        sync: if config.wal_sync_mode == "periodic" {
            duet_storage::SyncMode::Periodic(std::time::Duration::from_millis(
                config.wal_sync_interval_ms,
            ))
        } else {
            duet_storage::SyncMode::PerCommit
        },
        memtable_bytes: config.memtable_bytes,
        segment_bytes: config.wal_segment_bytes,
        log_retention_cap_bytes: config.wal_retention_cap_bytes,
        ..duet_storage::StorageOptions::default()
    };
    let storage = duet_storage::Storage::open(&config.data_dir.join("storage"), storage_options)?;
    fault_hooks::install(&storage);
    // Process-wide: every query's scans share the setting.
    duet_engine::query::set_scan_threads(config.query_scan_threads);
    let engine = duet_engine::Engine::open(
        catalog.clone(),
        storage.clone(),
        &identity.timestamp_precision,
    )?;
    let addr = format!("{}:{}", config.rpc_address, config.rpc_port);
    let (listener, local) = bind(&addr, addr.clone()).await?;
    // The monitoring listener binds before anything is announced, so a busy port fails the start.
    let metrics_listener = if config.metrics_enabled {
        let addr = format!("{}:{}", config.metrics_bind_address(), config.metrics_port);
        Some(bind(&addr, format!("{addr} (metrics_address/metrics_port)")).await?)
    } else {
        None
    };
    if !config.is_loopback_only() && catalog.user_has_default_password(duet_catalog::ROOT_USER)? {
        warn!(
            "user root still has the default password and the server listens on {}; root logins from other machines are {} until it is changed with: ALTER USER root SET PASSWORD '<new password>'",
            config.rpc_address,
            if config.allow_remote_default_root_login { "ALLOWED (allow_remote_default_root_login)" } else { "refused" }
        );
    }
    let server_identity = ServerIdentity {
        cluster_id: identity.cluster_id.clone(),
        timestamp_precision: identity.timestamp_precision.clone(),
        version: VERSION.to_string(),
        metrics_port: metrics_listener.as_ref().map(|(_, local)| local.port()),
    };
    let mut instance = Instance::new(
        catalog,
        engine,
        server_identity,
        config.clone(),
        local.port(),
    );
    instance.tls = tls;
    instance.audit = audit::AuditLog::open(&config)?;
    if let Some(path) = instance.audit.path() {
        info!("audit log: {}", path.display());
    }
    let instance = Arc::new(instance);
    // Files a pipe connection was receiving when the server stopped are never resumed: senders
    // start a transfer over on a new connection.
    let receiver_dir = instance.pipe_receiver_dir();
    if receiver_dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&receiver_dir) {
            warn!("could not empty {}: {e}", receiver_dir.display());
        }
    }
    let metrics_addr_file = config.data_dir.join(metrics_http::METRICS_ADDR_FILE);
    let _ = std::fs::remove_file(&metrics_addr_file);
    let metrics_task = match metrics_listener {
        Some((listener, local)) => {
            metrics_http::write_addr_file(
                &metrics_addr_file,
                &format!("{}:{}", config.metrics_bind_address(), local.port()),
            )
            .map_err(|source| StartError::AddrFile {
                path: metrics_addr_file.display().to_string(),
                source,
            })?;
            info!("serving /metrics and the dashboard on http://{local}/");
            Some(tokio::spawn(metrics_http::run(
                instance.clone(),
                listener,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let addr_file = config.data_dir.join(ADDR_FILE);
    write_addr_file(
        &addr_file,
        &format!("{}:{}", config.rpc_address, local.port()),
    )?;
    info!(
        version = VERSION,
        cluster_id = %identity.cluster_id,
        precision = %identity.timestamp_precision,
        data_dir = %config.data_dir.display(),
        tls = instance.tls.is_some(),
        "duetd accepting sessions on {local}"
    );
    instance.pipes.start_all()?;
    listener::run(instance.clone(), listener, shutdown).await;
    // Pipes stop at a safe point and persist their progress before the log is synced.
    instance.pipes.shutdown().await;
    if let Some(task) = metrics_task {
        let _ = task.await;
        let _ = std::fs::remove_file(&metrics_addr_file);
    }
    // Every connection has finished: sync the log before saying we stopped.
    if let Err(e) = storage.close().await {
        tracing::error!("closing the storage failed: {e}");
    }
    let _ = std::fs::remove_file(&addr_file);
    info!("duetd stopped");
    Ok(())
}

/// Writes the address file atomically, so a reader never sees half of it.
/// Binds `addr` (`described` names it if that fails) and reads back the address it got.
async fn bind(
    addr: &str,
    described: String,
) -> Result<(TcpListener, std::net::SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: described,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    Ok((listener, local))
}

fn write_addr_file(path: &Path, contents: &str) -> Result<(), StartError> {
    let tmp = path.with_extension("addr.tmp");
    let err = |source| StartError::AddrFile {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, format!("{contents}\n")).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
