//! Server configuration: a TOML file, overridden by command-line flags, with IoTDB-like defaults.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configured secret: its `Debug` form never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything `duetd` can be configured with. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the client RPC service binds (IoTDB's `dn_rpc_address`).
    pub rpc_address: String,
    /// Port of the client RPC service (IoTDB's `dn_rpc_port`); 0 picks a free port.
    pub rpc_port: u16,
    /// The hostname peers and operators know this instance by (IoTDB's `dn_internal_address`); shown by
    /// `SHOW CLUSTER`.
    pub internal_address: String,
    /// Where the catalog, the change log and the data files live (and `duetd.pid`, `duetd.addr`).
    pub data_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`, or tracing filter directives
    /// (`info,duet_runtime=debug`); anything else refuses the start.
    pub log_level: String,
    /// `text` (one line per event, `key=value` fields, colours only on a terminal) or `json` (one
    /// JSON object per line).
    pub log_format: String,
    /// Immutable after first start: `ms`, `us` or `ns`.
    pub timestamp_precision: String,
    /// Immutable after first start; generated when absent.
    pub cluster_id: Option<String>,
    /// root's password at first start (default `root`, as IoTDB); later starts ignore it (root's
    /// password is then whatever was set with `ALTER USER`). Must follow the password rules.
    pub initial_root_password: Option<Secret>,
    /// Connections served at once (IoTDB's `dn_rpc_max_concurrent_client_num`, 1000 there). One more is
    /// accepted, answered with status 717 naming this limit, and closed.
    pub max_connections: usize,
    /// Of `max_connections`, how many may be waiting to log in at once (like sshd's `MaxStartups`), so
    /// sockets that never log in cannot take every slot; more are refused like those over
    /// `max_connections`. Values above `max_connections` act as `max_connections`.
    pub max_unauthenticated_connections: usize,
    /// A connection must log in (`openSession`, or a pipe handshake) within this time after it is
    /// accepted, or it is closed.
    pub login_timeout_ms: u64,
    /// Once the first byte of a request frame has arrived, the rest must arrive within this time (and
    /// a reply must be taken by the client within it), or the connection is closed. Idle time between
    /// requests is not limited by it.
    pub frame_timeout_ms: u64,
    /// A logged-in connection idle this long between requests is closed (IoTDB's
    /// `dn_session_timeout_threshold`); 0, the default as in IoTDB, never closes it.
    pub session_timeout_ms: u64,
    /// `per-commit` (fsync after every group commit: an acknowledged write survives power loss) or
    /// `periodic` (fsync every `wal_sync_interval_ms`: survives a process crash, may lose the last
    /// interval on power loss).
    pub wal_sync_mode: String,
    pub wal_sync_interval_ms: u64,
    /// Flush the memtable to a data file once it holds about this many bytes.
    pub memtable_bytes: usize,
    /// Size of one change-log segment file.
    pub wal_segment_bytes: u64,
    /// The most change log kept for lagging pipes beyond the flushed position; a pipe that falls
    /// further behind replays from data files.
    pub wal_retention_cap_bytes: u64,
    /// The most bytes the files of one TsFile transfer from a peer (a TsFile and its mods file) may
    /// take on disk; a piece past it is refused (1804) and the transfer's files removed.
    pub pipe_receiver_max_file_bytes: u64,

    // Query limits: every query is bounded.
    /// The most memory one query's state may take (series cursors' chunks, aggregation state, the
    /// page being built, resolved series lists); a query that needs more fails with status 719 and
    /// an error naming this key.
    pub query_memory_bytes: usize,
    /// Milliseconds a query may run, from its start to its last page (IoTDB's
    /// `query_timeout_threshold`); a request's own positive `timeout` takes precedence; 0 means none.
    /// A query past it fails with status 720.
    pub query_timeout_threshold: u64,
    /// Threads one aggregate query may scan its series with at once: 0 (the default) one per
    /// processor, 1 serial (the scans of concurrent queries then never compete for cores), at most
    /// `MAX_QUERY_SCAN_THREADS`. Applied at start-up (`duet_engine::query::set_scan_threads`).
    pub query_scan_threads: usize,

    // Monitoring: Prometheus `/metrics` and the dashboard on an HTTP listener of their own.
    /// Whether the metrics listener runs at all.
    pub metrics_enabled: bool,
    /// The address it binds; the RPC service's (`rpc_address`) when absent.
    pub metrics_address: Option<String>,
    /// Its port (IoTDB's ConfigNode reporter's default, 9091); 0 picks a free one, written to
    /// `<data_dir>/duetd.metrics.addr`.
    pub metrics_port: u16,

    // TLS on the client RPC port (the metrics port stays plain HTTP).
    /// PEM certificate chain of this server; with `tls_key`, the RPC port speaks TLS only (IoTDB's
    /// `enable_thrift_ssl` with `key_store_path`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) client certificates must chain to; when set, every client (and pipe
    /// sender) must present one (IoTDB's `thrift_ssl_client_auth`, with `trust_store_path`).
    pub tls_client_ca: Option<PathBuf>,
    /// IoTDB's switch: `true` requires `tls_cert`/`tls_key`, `false` serves plain TCP even when
    /// they are set; absent, TLS is on exactly when `tls_cert` is set.
    pub enable_thrift_ssl: Option<bool>,
    /// IoTDB's `thrift_ssl_client_auth`: `true` requires `tls_client_ca`.
    pub thrift_ssl_client_auth: bool,
    /// IoTDB's Java key store keys: refused with a message naming the PEM keys Duet reads.
    pub key_store_path: Option<String>,
    pub key_store_pwd: Option<Secret>,
    pub trust_store_path: Option<String>,
    pub trust_store_pwd: Option<Secret>,

    // The audit log (IoTDB's keys; `audit::AuditLog`).
    /// Record logins and statements (IoTDB's `enable_audit_log`; off by default, as there).
    pub enable_audit_log: bool,
    /// `IOTDB` (the file is queryable as `root.__system.audit._<user>`) and/or `LOGGER` (every entry
    /// is also a line of duetd's log), comma-separated; IoTDB's default `IOTDB,LOGGER`.
    pub audit_log_storage: String,
    /// The statement categories recorded besides logins: `DDL` (schema, users, privileges, pipes),
    /// `DML` (`INSERT`, `DELETE`), `QUERY`; IoTDB's default `DML,DDL,QUERY`.
    pub audit_log_operation: String,
    /// The JSON-lines file entries are appended to; `<data_dir>/audit.log` when absent.
    pub audit_log_path: Option<PathBuf>,
    /// IoTDB's key: the session API's insert RPCs are recorded (as DML, whatever
    /// `audit_log_operation` says of DML); IoTDB's default `true`.
    pub enable_audit_log_for_native_insert_api: bool,
    /// Duet's: fsync the audit file after every entry (an entry survives a power loss once its
    /// request was answered), at the cost of a sync per audited request.
    pub audit_log_sync: bool,
    /// Duet's: rotate the audit file when an entry would take it past this many bytes (0: never).
    pub audit_log_max_file_bytes: u64,
    /// Duet's: how many rotated files (`audit.log.1` newest … `audit.log.N`) are kept.
    pub audit_log_max_files: usize,
    /// Accept a root login with the default password from a non-loopback client address (refused by
    /// default while the password is unchanged; see docs/security.md).
    pub allow_remote_default_root_login: bool,

    // Login hardening (`login`): IoTDB 2.0's keys and defaults, and Duet's delay.
    /// Failed logins of one user from one client address, within `password_lock_time_minutes`, that
    /// lock that user from that address (status 822); 0 or less disables.
    pub failed_login_attempts: i64,
    /// Failed logins of one user from anywhere that lock it everywhere; 0 or less disables (but
    /// stays 1000 while `failed_login_attempts` is above 1, as in IoTDB).
    pub failed_login_attempts_per_user: i64,
    /// The sliding window failures are counted in, and so how long a lock lasts (at least 1).
    pub password_lock_time_minutes: u64,
    /// How long a refused login (wrong password, unknown user, locked) waits before it is answered.
    pub failed_login_delay_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rpc_address: "0.0.0.0".to_string(),
            rpc_port: 6667,
            internal_address: "127.0.0.1".to_string(),
            data_dir: PathBuf::from("data"),
            log_level: "info".to_string(),
            log_format: "text".to_string(),
            timestamp_precision: "ms".to_string(),
            cluster_id: None,
            initial_root_password: None,
            max_connections: 1024,
            max_unauthenticated_connections: 128,
            login_timeout_ms: 10_000,
            frame_timeout_ms: 60_000,
            session_timeout_ms: 0,
            wal_sync_mode: "per-commit".to_string(),
            wal_sync_interval_ms: 100,
            memtable_bytes: 64 << 20,
            wal_segment_bytes: 64 << 20,
            wal_retention_cap_bytes: 8 << 30,
            pipe_receiver_max_file_bytes: duet_runtime::file_receiver::DEFAULT_MAX_FILE_BYTES,
            query_memory_bytes: 256 << 20,
            query_timeout_threshold: 60_000,
            query_scan_threads: 0,
            metrics_enabled: true,
            metrics_address: None,
            metrics_port: 9091,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            enable_thrift_ssl: None,
            thrift_ssl_client_auth: false,
            key_store_path: None,
            key_store_pwd: None,
            trust_store_path: None,
            trust_store_pwd: None,
            enable_audit_log: false,
            audit_log_storage: "IOTDB,LOGGER".to_string(),
            audit_log_operation: "DML,DDL,QUERY".to_string(),
            audit_log_path: None,
            enable_audit_log_for_native_insert_api: true,
            audit_log_sync: false,
            audit_log_max_file_bytes: 100 * 1024 * 1024,
            audit_log_max_files: 10,
            allow_remote_default_root_login: false,
            failed_login_attempts: 5,
            failed_login_attempts_per_user: 1000,
            password_lock_time_minutes: 10,
            failed_login_delay_ms: 500,
        }
    }
}

/// The most threads `query_scan_threads` may ask for: far more than any machine's processors would
/// only add idle threads, so a larger value is taken for a typo.
pub const MAX_QUERY_SCAN_THREADS: usize = 1024;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file; missing keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Whether the TOML file at `path` sets `key` itself (rather than leaving it to its default).
    pub fn file_sets(path: &Path, key: &str) -> Result<bool, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(table.contains_key(key))
    }

    /// Checks values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::logging::parse_filter(&self.log_level).map_err(ConfigError::Invalid)?;
        if !crate::logging::FORMATS.contains(&self.log_format.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "log_format must be text or json, not '{}'",
                self.log_format
            )));
        }
        if !["ms", "us", "ns"].contains(&self.timestamp_precision.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "timestamp_precision must be ms, us or ns, not '{}'",
                self.timestamp_precision
            )));
        }
        if self.rpc_address.parse::<IpAddr>().is_err() && self.rpc_address != "localhost" {
            return Err(ConfigError::Invalid(format!(
                "rpc_address '{}' is not an IP address",
                self.rpc_address
            )));
        }
        if self.internal_address.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "internal_address must not be empty".into(),
            ));
        }
        if let Some(id) = &self.cluster_id {
            if id.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "cluster_id must not be empty when given".into(),
                ));
            }
        }
        if !["per-commit", "periodic"].contains(&self.wal_sync_mode.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "wal_sync_mode must be per-commit or periodic, not '{}'",
                self.wal_sync_mode
            )));
        }
        if self.wal_sync_mode == "periodic" && self.wal_sync_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "wal_sync_interval_ms must be at least 1".into(),
            ));
        }
        if self.pipe_receiver_max_file_bytes == 0 {
            return Err(ConfigError::Invalid(
                "pipe_receiver_max_file_bytes must be at least 1".into(),
            ));
        }
        if self.memtable_bytes < 1024 || self.wal_segment_bytes < 4096 {
            return Err(ConfigError::Invalid(
                "memtable_bytes must be at least 1024 and wal_segment_bytes at least 4096".into(),
            ));
        }
        if self.query_memory_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "query_memory_bytes must be at least 65536".into(),
            ));
        }
        if self.query_scan_threads > MAX_QUERY_SCAN_THREADS {
            return Err(ConfigError::Invalid(format!(
                "query_scan_threads must be 0 (one per processor) to {MAX_QUERY_SCAN_THREADS}, not {}",
                self.query_scan_threads
            )));
        }
        if let Some(address) = &self.metrics_address {
            if address.parse::<IpAddr>().is_err() && address != "localhost" {
                return Err(ConfigError::Invalid(format!(
                    "metrics_address '{address}' is not an IP address"
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        if self.max_unauthenticated_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_unauthenticated_connections must be at least 1".into(),
            ));
        }
        if self.login_timeout_ms == 0 || self.frame_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "login_timeout_ms and frame_timeout_ms must be at least 1".into(),
            ));
        }
        self.validate_tls()?;
        crate::audit::AuditLog::validate(self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        for (key, set) in [
            ("key_store_path", self.key_store_path.is_some()),
            ("trust_store_path", self.trust_store_path.is_some()),
        ] {
            if set {
                return Err(ConfigError::Invalid(format!(
                    "{key} names a Java key store; Duet reads PEM files: set tls_cert and tls_key (and tls_client_ca for client certificates) instead"
                )));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if self.enable_thrift_ssl == Some(true) && self.tls_cert.is_none() {
            return Err(ConfigError::Invalid(
                "enable_thrift_ssl = true needs tls_cert and tls_key (PEM)".into(),
            ));
        }
        if self.thrift_ssl_client_auth && self.tls_client_ca.is_none() {
            return Err(ConfigError::Invalid(
                "thrift_ssl_client_auth = true needs tls_client_ca (PEM CA of the client certificates)"
                    .into(),
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_files().is_none() {
            return Err(ConfigError::Invalid(
                "tls_client_ca needs TLS on: set tls_cert and tls_key".into(),
            ));
        }
        Ok(())
    }

    /// The TLS files of the RPC port, when it speaks TLS.
    pub fn tls_files(&self) -> Option<duet_proto::tls::ServerTlsFiles> {
        if self.enable_thrift_ssl == Some(false) {
            return None;
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(duet_proto::tls::ServerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }

    /// The address the metrics listener binds.
    pub fn metrics_bind_address(&self) -> &str {
        self.metrics_address.as_deref().unwrap_or(&self.rpc_address)
    }

    /// Whether the RPC service is reachable only from this machine.
    pub fn is_loopback_only(&self) -> bool {
        self.rpc_address == "localhost"
            || self
                .rpc_address
                .parse::<IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn files_override_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "rpc_port = 6668\ninternal_address = \"iotdb-1\"\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.rpc_port, 6668);
        assert_eq!(config.internal_address, "iotdb-1");
        assert_eq!(config.timestamp_precision, "ms");
        std::fs::write(&path, "pipe_receiver_max_file_bytes = 1048576\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.pipe_receiver_max_file_bytes, 1 << 20);
        std::fs::write(
            &path,
            "metrics_port = 0\nmetrics_address = \"127.0.0.1\"\nmetrics_enabled = false\n",
        )
        .unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.metrics_port, 0);
        assert_eq!(config.metrics_bind_address(), "127.0.0.1");
        assert!(!config.metrics_enabled);
        assert_eq!(Config::default().metrics_bind_address(), "0.0.0.0");
        assert_eq!(Config::default().metrics_port, 9091);
        std::fs::write(&path, "query_scan_threads = 1\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.query_scan_threads, 1);
        assert!(config.validate().is_ok());
        assert_eq!(Config::default().query_scan_threads, 0);
        std::fs::write(&path, "query_scan_threads = -1\n").unwrap();
        assert!(Config::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("query_scan_threads"));
        std::fs::write(&path, "rpc_prot = 1\n").unwrap();
        assert!(Config::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("rpc_prot"));
    }

    #[test]
    fn validation_names_the_bad_value() {
        let bad = Config {
            timestamp_precision: "s".into(),
            ..Config::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("timestamp_precision"));
        assert!(Config::default().validate().is_ok());
        let no_deadline = Config {
            login_timeout_ms: 0,
            ..Config::default()
        };
        assert!(no_deadline
            .validate()
            .unwrap_err()
            .to_string()
            .contains("login_timeout_ms"));
        let no_file_cap = Config {
            pipe_receiver_max_file_bytes: 0,
            ..Config::default()
        };
        assert!(no_file_cap
            .validate()
            .unwrap_err()
            .to_string()
            .contains("pipe_receiver_max_file_bytes"));
        let typo = Config {
            log_level: "infoo".into(),
            ..Config::default()
        };
        assert!(typo.validate().unwrap_err().to_string().contains("infoo"));
        let format = Config {
            log_format: "xml".into(),
            ..Config::default()
        };
        assert!(format
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log_format"));
        let bad_metrics = Config {
            metrics_address: Some("nowhere".into()),
            ..Config::default()
        };
        assert!(bad_metrics
            .validate()
            .unwrap_err()
            .to_string()
            .contains("metrics_address"));
        let threads = Config {
            query_scan_threads: MAX_QUERY_SCAN_THREADS + 1,
            ..Config::default()
        };
        assert!(threads
            .validate()
            .unwrap_err()
            .to_string()
            .contains("query_scan_threads"));
        assert!(Config {
            query_scan_threads: MAX_QUERY_SCAN_THREADS,
            ..Config::default()
        }
        .validate()
        .is_ok());
        assert!(!Config::default().is_loopback_only());
        assert!(Config {
            rpc_address: "127.0.0.1".into(),
            ..Config::default()
        }
        .is_loopback_only());
    }
}
