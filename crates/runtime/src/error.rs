//! Errors of pipe statements and transfers; the server's `status_codes` gives each its IoTDB status code.

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// Bad parameters or a refused operation: IoTDB's PIPE_ERROR (1107).
    #[error("{0}")]
    Invalid(String),
    /// The named pipe does not exist: PIPE_NOT_EXIST_ERROR (1806).
    #[error("Failed to {op} pipe {name}. Failures: {name} does not exist.")]
    NotExist { op: &'static str, name: String },
    /// A feature IoTDB has that Duet does not (yet).
    #[error("{0}")]
    Unsupported(String),
    /// Only the administrator may manage pipes.
    #[error("No permissions for this operation, please add privilege SYSTEM")]
    NoPermission,
    #[error("catalog error: {0}")]
    Catalog(#[from] duet_catalog::Error),
}

pub type Result<T> = std::result::Result<T, PipeError>;
