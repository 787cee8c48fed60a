//! The instance's durable catalog in SQLite: the identity fixed at first start, users, and pipes with their
//! progress. Every change is committed durably before the call returns, so a statement acknowledged to a
//! client survives a crash.
//!
//! - `schema`: the SQL schema as ordered migrations; `lock`: the data directory's exclusive lock;
//! - `users` and `password`: accounts, name and password rules, argon2 (and IoTDB's MD5 form);
//! - `privileges`: roles, path and global privileges with the grant option, the generation counter;
//! - `pipes`: pipe definitions, state, exception and acknowledged position;
//! - `series`, `templates`, `ttl`: the tree model's databases and series, device templates, TTL rules;
//! - `schema_versions`: the version of each replicated schema object's last change;
//! - `error`: the one error type, mapped to IoTDB status codes by its callers.

mod error;
mod lock;
mod password;
mod pipes;
mod privileges;
mod schema;
mod schema_versions;
mod series;
mod templates;
mod ttl;
mod users;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension};

pub use error::{Error, Result};
pub use password::{hash_new_password, iotdb_password_record, validate_user_name};
pub use pipes::{NewPipe, ParsePipeStateError, PipeException, PipeRecord, PipeState};
pub use privileges::{validate_role_name, Authority, Grant, Holder, Privilege, GLOBAL_PATH};
pub use schema_versions::ObjectVersion;
pub use series::SeriesRecord;
pub use templates::{TemplateMeasurementRecord, TemplateRecord};
pub use ttl::MAX_TTL_RULES;

use lock::DataDirLock;

/// File name of the catalog database inside the data directory.
pub const CATALOG_FILE_NAME: &str = "catalog.sqlite";

/// The user created at first start, and its initial password (IoTDB's default login).
pub const ROOT_USER: &str = "root";
const ROOT_DEFAULT_PASSWORD: &str = "root";

/// Settings that are fixed at first start because data written under them would be misread if they
/// changed (timestamp precision) or because peers identify the instance by them (cluster id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableSettings {
    /// "ms", "us" or "ns".
    pub timestamp_precision: String,
    /// The configured cluster id; `None` lets the first start generate one.
    pub cluster_id: Option<String>,
}

/// The identity recorded at first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: String,
    pub timestamp_precision: String,
    pub created_at_ms: i64,
}

/// An open catalog. `Send + Sync`; share it as `Arc<Catalog>`. One SQLite connection behind a mutex is
/// enough: catalog changes are rare and small, and serialising them keeps each one a simple transaction.
pub struct Catalog {
    // Declared before the lock so the connection closes (checkpointing the WAL) while the directory is
    // still ours.
    connection: Mutex<Connection>,
    /// Moves on every change of users, roles or grants (see `privileges`).
    privileges_generation: AtomicU64,
    _data_dir_lock: DataDirLock,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// Opens (creating the directory, file and schema if needed) and migrates the catalog in `data_dir`,
    /// holding the directory's lock for the catalog's lifetime.
    ///
    /// At the very first open it records the instance identity — the configured cluster id, else
    /// `"duet-" + uuid v4`, and the timestamp precision — and creates the default user root/root. On later
    /// opens a changed precision, or a configured cluster id different from the stored one, is
    /// [`Error::ImmutableSettingChanged`].
    pub fn open(data_dir: &Path, settings: &ImmutableSettings) -> Result<Catalog> {
        Catalog::open_with_root_password(data_dir, settings, None)
    }

    /// Like [`Catalog::open`], with root's password at the very first open given (else `root`).
    /// On later opens it is not used: the password is whatever root set since.
    pub fn open_with_root_password(
        data_dir: &Path,
        settings: &ImmutableSettings,
        initial_root_password: Option<&str>,
    ) -> Result<Catalog> {
        if let Some(password) = initial_root_password {
            password::validate_password(password)?;
        }
        std::fs::create_dir_all(data_dir)?;
        let data_dir_lock = DataDirLock::acquire(data_dir)?;

        let mut connection = Connection::open(data_dir.join(CATALOG_FILE_NAME))?;
        configure_connection(&connection)?;
        schema::migrate(&mut connection)?;
        let identity = establish_identity(&mut connection, settings, initial_root_password)?;
        tracing::debug!(
            cluster_id = %identity.cluster_id,
            timestamp_precision = %identity.timestamp_precision,
            "catalog opened"
        );

        Ok(Catalog {
            connection: Mutex::new(connection),
            privileges_generation: AtomicU64::new(0),
            _data_dir_lock: data_dir_lock,
        })
    }

    /// The identity recorded at first start.
    pub fn identity(&self) -> Result<Identity> {
        read_identity(&self.connection())?
            .ok_or_else(|| Error::CorruptCatalog("the instance identity is missing".to_string()))
    }

    /// The connection, for one short statement or transaction.
    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-changed (an open transaction rolls back when
        // it is dropped), so the connection is still good to use.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The durability and integrity settings every catalog connection needs.
fn configure_connection(connection: &Connection) -> Result<()> {
    let journal_mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(Error::CorruptCatalog(format!(
            "could not switch the catalog to WAL journal mode (got '{journal_mode}')"
        )));
    }
    // FULL syncs the WAL on every commit: a statement returns only after its change is on disk.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// The current time as Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn read_identity(connection: &Connection) -> Result<Option<Identity>> {
    let identity = connection
        .query_row(
            "SELECT cluster_id, timestamp_precision, created_at_ms FROM identity WHERE singleton = 1",
            [],
            |row| {
                Ok(Identity {
                    cluster_id: row.get(0)?,
                    timestamp_precision: row.get(1)?,
                    created_at_ms: row.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(identity)
}

/// Records the identity and the root user at first open, or checks the configured settings against the
/// recorded identity on later opens.
fn establish_identity(
    connection: &mut Connection,
    settings: &ImmutableSettings,
    initial_root_password: Option<&str>,
) -> Result<Identity> {
    if let Some(stored) = read_identity(connection)? {
        check_unchanged(&stored, settings)?;
        if initial_root_password.is_some() {
            tracing::info!("an initial root password is configured but this is not the first start: root keeps its current password");
        }
        return Ok(stored);
    }

    let identity = Identity {
        cluster_id: settings
            .cluster_id
            .clone()
            .unwrap_or_else(|| format!("duet-{}", uuid::Uuid::new_v4())),
        timestamp_precision: settings.timestamp_precision.clone(),
        created_at_ms: now_ms(),
    };
    let root_password_hash =
        password::hash_password(initial_root_password.unwrap_or(ROOT_DEFAULT_PASSWORD))?;
    // One transaction: an instance never exists with an identity but no way to log in.
    let transaction = connection.transaction()?;
    transaction.execute(
        "INSERT INTO identity (singleton, cluster_id, timestamp_precision, created_at_ms)
         VALUES (1, ?1, ?2, ?3)",
        (
            &identity.cluster_id,
            &identity.timestamp_precision,
            identity.created_at_ms,
        ),
    )?;
    transaction.execute(
        "INSERT INTO users (name, password_hash, created_at_ms) VALUES (?1, ?2, ?3)",
        (ROOT_USER, &root_password_hash, identity.created_at_ms),
    )?;
    transaction.commit()?;
    tracing::info!(
        cluster_id = %identity.cluster_id,
        timestamp_precision = %identity.timestamp_precision,
        password = if initial_root_password.is_some() { "configured" } else { "default" },
        "first start: instance identity recorded, user root created"
    );
    Ok(identity)
}

fn check_unchanged(stored: &Identity, settings: &ImmutableSettings) -> Result<()> {
    if stored.timestamp_precision != settings.timestamp_precision {
        return Err(Error::ImmutableSettingChanged {
            setting: "timestamp_precision",
            stored: stored.timestamp_precision.clone(),
            configured: settings.timestamp_precision.clone(),
        });
    }
    // An unconfigured cluster id means "whatever was generated", so only an explicit, different one is
    // a change.
    if let Some(configured) = &settings.cluster_id {
        if *configured != stored.cluster_id {
            return Err(Error::ImmutableSettingChanged {
                setting: "cluster_id",
                stored: stored.cluster_id.clone(),
                configured: configured.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn settings(precision: &str, cluster_id: Option<&str>) -> ImmutableSettings {
        ImmutableSettings {
            timestamp_precision: precision.to_string(),
            cluster_id: cluster_id.map(str::to_string),
        }
    }

    pub(crate) fn open_fresh() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        (dir, catalog)
    }

    #[test]
    fn catalog_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Catalog>();
    }

    #[test]
    fn first_open_records_identity_and_root() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested").join("data");
        let before = now_ms();
        let catalog = Catalog::open(&data_dir, &settings("us", None)).unwrap();
        assert!(data_dir.join(CATALOG_FILE_NAME).is_file());
        assert!(data_dir.join(lock::LOCK_FILE_NAME).is_file());

        let identity = catalog.identity().unwrap();
        assert_eq!(identity.timestamp_precision, "us");
        let uuid_part = identity.cluster_id.strip_prefix("duet-").unwrap();
        assert!(uuid::Uuid::parse_str(uuid_part).is_ok());
        assert!(identity.created_at_ms >= before && identity.created_at_ms <= now_ms());

        assert_eq!(catalog.list_users().unwrap(), vec!["root".to_string()]);
        catalog.authenticate("root", "root").unwrap();
        assert!(catalog.user_has_default_password("root").unwrap());
    }

    #[test]
    fn an_initial_root_password_applies_at_first_open_only() {
        let dir = tempfile::tempdir().unwrap();
        let catalog =
            Catalog::open_with_root_password(dir.path(), &settings("ms", None), Some("IoTDB@2011"))
                .unwrap();
        catalog.authenticate("root", "IoTDB@2011").unwrap();
        assert!(catalog.authenticate("root", "root").is_err());
        assert!(!catalog.user_has_default_password("root").unwrap());
        drop(catalog);
        // Later opens keep root's password, whatever is configured then.
        let catalog =
            Catalog::open_with_root_password(dir.path(), &settings("ms", None), Some("other1"))
                .unwrap();
        catalog.authenticate("root", "IoTDB@2011").unwrap();
        assert!(catalog.authenticate("root", "other1").is_err());
        drop(catalog);
        // A password the rules refuse is refused before anything is created.
        let fresh = tempfile::tempdir().unwrap();
        let err = Catalog::open_with_root_password(fresh.path(), &settings("ms", None), Some("ab"))
            .unwrap_err();
        assert!(err.to_string().contains("length of the password"), "{err}");
        assert!(!fresh.path().join(CATALOG_FILE_NAME).exists());
    }

    #[test]
    fn generated_cluster_ids_are_unique() {
        let (_first_dir, first) = open_fresh();
        let (_second_dir, second) = open_fresh();
        assert_ne!(
            first.identity().unwrap().cluster_id,
            second.identity().unwrap().cluster_id
        );
    }

    #[test]
    fn configured_cluster_id_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path(), &settings("ns", Some("site-a"))).unwrap();
        let identity = catalog.identity().unwrap();
        assert_eq!(identity.cluster_id, "site-a");
        assert_eq!(identity.timestamp_precision, "ns");
        drop(catalog);
        // Reopening with the same configuration, or with none, is fine.
        Catalog::open(dir.path(), &settings("ns", Some("site-a"))).unwrap();
        let catalog = Catalog::open(dir.path(), &settings("ns", None)).unwrap();
        assert_eq!(catalog.identity().unwrap(), identity);
    }

    #[test]
    fn reopen_keeps_identity() {
        let dir = tempfile::tempdir().unwrap();
        let first = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        let identity = first.identity().unwrap();
        drop(first);
        let second = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        assert_eq!(second.identity().unwrap(), identity);
        // The root user is created once, not on every open.
        assert_eq!(second.list_users().unwrap(), vec!["root".to_string()]);
    }

    #[test]
    fn changed_precision_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Catalog::open(dir.path(), &settings("ms", None)).unwrap());
        let error = Catalog::open(dir.path(), &settings("us", None)).unwrap_err();
        match &error {
            Error::ImmutableSettingChanged {
                setting,
                stored,
                configured,
            } => {
                assert_eq!(*setting, "timestamp_precision");
                assert_eq!(stored, "ms");
                assert_eq!(configured, "us");
            }
            other => panic!("expected ImmutableSettingChanged, got {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "immutable setting 'timestamp_precision' was 'ms' at first start but is now configured \
             as 'us'; restore it or use a new data directory"
        );
        // The refusal released the lock and changed nothing.
        let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        assert_eq!(catalog.identity().unwrap().timestamp_precision, "ms");
    }

    #[test]
    fn changed_cluster_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let generated = Catalog::open(dir.path(), &settings("ms", None))
            .unwrap()
            .identity()
            .unwrap()
            .cluster_id;
        match Catalog::open(dir.path(), &settings("ms", Some("other"))) {
            Err(Error::ImmutableSettingChanged {
                setting,
                stored,
                configured,
            }) => {
                assert_eq!(setting, "cluster_id");
                assert_eq!(stored, generated);
                assert_eq!(configured, "other");
            }
            other => panic!("expected ImmutableSettingChanged, got {other:?}"),
        }
    }

    #[test]
    fn opens_an_empty_catalog_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join(CATALOG_FILE_NAME)).unwrap();
        let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        catalog.authenticate("root", "root").unwrap();
        let version = schema::schema_version(&catalog.connection()).unwrap();
        assert_eq!(version, schema::CURRENT_VERSION);
    }

    #[test]
    fn refuses_a_catalog_from_a_newer_duetd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CATALOG_FILE_NAME);
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .pragma_update(None, "user_version", schema::CURRENT_VERSION + 7)
                .unwrap();
        }
        match Catalog::open(dir.path(), &settings("ms", None)) {
            Err(Error::SchemaTooNew { found, known }) => {
                assert_eq!(found, schema::CURRENT_VERSION + 7);
                assert_eq!(known, schema::CURRENT_VERSION);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn connection_is_durable_and_enforces_foreign_keys() {
        let (_dir, catalog) = open_fresh();
        let connection = catalog.connection();
        let journal_mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(journal_mode, "wal");
        let synchronous: i64 = connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "2 is FULL");
        let foreign_keys: i64 = connection
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1);
    }

    #[test]
    fn second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        // flock(2) locks belong to the open file description, so even this process's second open conflicts.
        match Catalog::open(dir.path(), &settings("ms", None)) {
            Err(Error::DataDirLocked(path)) => assert_eq!(path, dir.path()),
            other => panic!("expected DataDirLocked, got {other:?}"),
        }
        let message = Catalog::open(dir.path(), &settings("ms", None))
            .unwrap_err()
            .to_string();
        assert!(message.ends_with("is in use by another duetd"), "{message}");
        let pid = std::fs::read_to_string(dir.path().join(lock::LOCK_FILE_NAME)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(first);
        Catalog::open(dir.path(), &settings("ms", None)).unwrap();
    }
}
