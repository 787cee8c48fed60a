//! The catalog's error type: one enum so callers (the server, the pipe runtime) can map each failure to the
//! IoTDB status code and message an operator or client expects.

use std::path::PathBuf;

/// Everything that can go wrong while opening or changing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("catalog I/O error: {0}")]
    Io(#[from] std::io::Error),

    #[error(
        "catalog schema version {found} is newer than this duetd understands (up to {known}); \
         upgrade duetd or use a different data directory"
    )]
    SchemaTooNew { found: u32, known: u32 },

    #[error(
        "immutable setting '{setting}' was '{stored}' at first start but is now configured as \
         '{configured}'; restore it or use a new data directory"
    )]
    ImmutableSettingChanged {
        setting: &'static str,
        stored: String,
        configured: String,
    },

    #[error("catalog is corrupt: {0}")]
    CorruptCatalog(String),

    #[error("data directory {} is in use by another duetd", .0.display())]
    DataDirLocked(PathBuf),

    #[error("User {0} does not exist")]
    UserNotExist(String),

    #[error("User {0} already exists")]
    UserExists(String),

    #[error("Authentication failed.")]
    WrongPassword,

    #[error("{0}")]
    InvalidUser(String),

    #[error("{0}")]
    InvalidPassword(String),

    #[error("Cannot drop root user")]
    CannotDropRoot,

    #[error("Role {0} does not exist")]
    RoleNotExist(String),

    #[error("Role {0} already exists")]
    RoleExists(String),

    #[error("{0}")]
    InvalidRole(String),

    #[error("User {user} already has role {role}")]
    UserHasRole { user: String, role: String },

    #[error("User {user} does not have role {role}")]
    UserNotHasRole { user: String, role: String },

    #[error("Invalid operation, administrator already has all privileges")]
    RootPrivilegesFixed,

    #[error("Failed to create pipe {0}, the pipe with the same name has been created")]
    PipeExists(String),

    #[error("{0} does not exist")]
    PipeNotExist(String),

    #[error("{0} has already been created as database")]
    DatabaseExists(String),

    #[error("Path [{0}] already exist")]
    SeriesExists(String),

    #[error(
        "The number of TTL rules has reached the limit ({0}); unset some before setting new ones"
    )]
    TooManyTtlRules(usize),
    #[error("Duplicated template name: {0}")]
    TemplateExists(String),

    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}

/// The catalog's result type.
pub type Result<T> = std::result::Result<T, Error>;
