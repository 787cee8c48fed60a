//! Errors of pipe statements and transfers, each with the IoTDB status code a client receives.

use duet_proto::status::StatusCode;

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

impl PipeError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            PipeError::Invalid(_) => StatusCode::PipeError,
            PipeError::NotExist { .. } => StatusCode::PipeNotExistError,
            PipeError::Unsupported(_) => StatusCode::UnsupportedOperation,
            PipeError::NoPermission => StatusCode::NoPermission,
            PipeError::Catalog(_) => StatusCode::InternalServerError,
        }
    }
}

pub type Result<T> = std::result::Result<T, PipeError>;
