//! The state every connection shares: the catalog, the pipe manager, the instance's identity, the
//! id counters for sessions, statements and queries, and the open sessions (`fetchAllConnectionsInfo`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use duet_catalog::Catalog;
use duet_runtime::{PipeManager, ServerIdentity};

use crate::config::Config;

/// The version `SHOW VERSION` and `getProperties` report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from.
pub const BUILD_INFO: &str = env!("DUET_BUILD_INFO");

/// Shared, immutable-after-start server state plus atomic counters.
pub struct Instance {
    pub catalog: Arc<Catalog>,
    pub engine: Arc<duet_engine::Engine>,
    pub pipes: PipeManager,
    pub config: Config,
    /// The port actually bound (differs from the configured one when that was 0).
    pub rpc_port: u16,
    /// The queries running now, for `SHOW QUERIES` and `KILL QUERY`.
    pub queries: crate::queries::QueryRegistry,
    next_session_id: AtomicI64,
    next_statement_id: AtomicI64,
    next_query_id: AtomicI64,
    next_receiver_id: AtomicI64,
    /// Open sessions by session id; one entry per logged-in connection.
    sessions: Mutex<BTreeMap<i64, ConnectionInfo>>,
    /// Connections and request latencies, for `/metrics`.
    pub metrics: crate::metrics::ServerMetrics,
    /// The RPC port's TLS configuration, when it speaks TLS.
    pub tls: Option<Arc<duet_proto::tls::ServerConfig>>,
    /// Logins and statements, when `enable_audit_log` is set.
    pub audit: crate::audit::AuditLog,
    /// Failed logins: delay and lockout.
    pub logins: crate::login::LoginGuard,
}

pub type InstanceRef = Arc<Instance>;

/// A logged-in session as `fetchAllConnectionsInfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub user: String,
    /// When the session logged in, in milliseconds since the epoch.
    pub login_ms: i64,
    /// The client's `ip:port`.
    pub peer: String,
}

impl Instance {
    pub fn new(
        catalog: Arc<Catalog>,
        engine: Arc<duet_engine::Engine>,
        identity: ServerIdentity,
        config: Config,
        rpc_port: u16,
    ) -> Instance {
        Instance {
            pipes: PipeManager::new(catalog.clone(), identity, engine.clone()),
            engine,
            catalog,
            logins: crate::login::LoginGuard::new(&config),
            config,
            rpc_port,
            // Sessions and statements come from separate counters starting far apart, so a client that
            // swaps the two ids (the Python client does, reference §5.4) cannot be served by accident.
            next_session_id: AtomicI64::new(1),
            next_statement_id: AtomicI64::new(1_000_001),
            next_query_id: AtomicI64::new(1),
            next_receiver_id: AtomicI64::new(1),
            queries: crate::queries::QueryRegistry::default(),
            sessions: Mutex::new(BTreeMap::new()),
            metrics: crate::metrics::ServerMetrics::default(),
            tls: None,
            audit: crate::audit::AuditLog::disabled(),
        }
    }

    /// `login_timeout_ms` as a duration.
    pub fn config_login_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.login_timeout_ms)
    }

    /// The directory where pipe connections receive transferred files; emptied at start, since a
    /// transfer never survives its connection.
    pub fn pipe_receiver_dir(&self) -> std::path::PathBuf {
        self.config.data_dir.join("pipe-receiver")
    }

    /// A directory of its own for one connection's transferred files.
    pub fn new_receiver_dir(&self) -> std::path::PathBuf {
        let id = self.next_receiver_id.fetch_add(1, Ordering::Relaxed);
        self.pipe_receiver_dir().join(id.to_string())
    }

    pub fn identity(&self) -> &ServerIdentity {
        self.pipes.identity()
    }

    pub fn new_session_id(&self) -> i64 {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn new_statement_id(&self) -> i64 {
        self.next_statement_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn new_query_id(&self) -> i64 {
        self.next_query_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register_session(&self, session_id: i64, info: ConnectionInfo) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session_id, info);
    }

    pub fn unregister_session(&self, session_id: i64) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session_id);
    }

    /// The open sessions, in the order they logged in.
    pub fn sessions(&self) -> Vec<ConnectionInfo> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
