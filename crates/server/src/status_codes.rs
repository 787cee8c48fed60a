//! Which IoTDB status code each failure gets: one place that maps every error type a statement or RPC
//! can meet (catalog, engine, storage, pipe runtime, parser, reply encoding) to the code and message a
//! client receives, one code per error variant (GreptimeDB's idea), so "which code does X get" is
//! answered here. Callers build a [`StatementError`] with `From` or turn an error into a `TSStatus`
//! with [`failure`]; the message is always the error's own `Display`.
//!
//! Statuses that are not the mapping of an error type (a refused privilege, a bad request argument)
//! are built where the decision is made. The pipe receiver's answers to a sender (`PIPE_*` codes for
//! replicated batches) belong to the pipe protocol and stay in `duet_runtime::receiver`.

use duet_engine::EngineError;
use duet_parser::{ParseError, ParseErrorKind};
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_runtime::PipeError;

/// A statement's failure: the status code and message the client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    pub code: StatusCode,
    pub message: String,
}

impl StatementError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> StatementError {
        StatementError {
            code,
            message: message.into(),
        }
    }

    /// The failure as the status a reply carries.
    pub fn to_status(&self) -> t::TSStatus {
        status::failure(self.code, self.message.clone())
    }
}

/// Any mapped error as the status a reply carries: its code and its `Display`.
pub fn failure(e: impl Into<StatementError>) -> t::TSStatus {
    let e: StatementError = e.into();
    status::failure(e.code, e.message)
}

/// The one mapping of catalog errors, whichever layer (statement, engine, pipe) met them.
pub fn catalog_code(e: &duet_catalog::Error) -> StatusCode {
    use duet_catalog::Error as E;
    match e {
        E::UserNotExist(_) => StatusCode::UserNotExist,
        E::UserExists(_) => StatusCode::UserAlreadyExist,
        E::WrongPassword => StatusCode::WrongLoginPassword,
        E::InvalidUser(_) | E::InvalidPassword(_) | E::InvalidRole(_) => {
            StatusCode::IllegalParameter
        }
        E::CannotDropRoot | E::RootPrivilegesFixed => StatusCode::NoPermission,
        E::RoleNotExist(_) => StatusCode::RoleNotExist,
        E::RoleExists(_) => StatusCode::RoleAlreadyExist,
        E::UserHasRole { .. } => StatusCode::UserAlreadyHasRole,
        E::UserNotHasRole { .. } => StatusCode::UserNotHasRole,
        E::PipeExists(_) => StatusCode::PipeError,
        E::PipeNotExist(_) => StatusCode::PipeNotExistError,
        E::DatabaseExists(_) => StatusCode::DatabaseAlreadyExists,
        E::SeriesExists(_) => StatusCode::TimeseriesAlreadyExist,
        E::TooManyTtlRules(_) => StatusCode::IllegalParameter,
        E::Sqlite(_)
        | E::Io(_)
        | E::SchemaTooNew { .. }
        | E::ImmutableSettingChanged { .. }
        | E::CorruptCatalog(_)
        | E::DataDirLocked(_)
        | E::TemplateExists(_)
        | E::PasswordHash(_) => StatusCode::InternalServerError,
    }
}

/// Storage failures: a full disk is the client's to know about, anything else is internal.
pub fn storage_code(e: &duet_storage::Error) -> StatusCode {
    if e.is_disk_full() {
        StatusCode::DiskSpaceInsufficient
    } else {
        StatusCode::InternalServerError
    }
}

pub fn engine_code(e: &EngineError) -> StatusCode {
    match e {
        EngineError::IllegalPath(_) => StatusCode::IllegalPath,
        EngineError::PathNotExist(_) => StatusCode::PathNotExist,
        EngineError::DatabaseExists(_) => StatusCode::DatabaseAlreadyExists,
        EngineError::DatabaseNotSet(_) => StatusCode::DatabaseNotExist,
        EngineError::SeriesExists(_) => StatusCode::TimeseriesAlreadyExist,
        EngineError::TypeMismatch(_) => StatusCode::DataTypeMismatch,
        EngineError::Alignment(_) => StatusCode::AlignedTimeseriesError,
        EngineError::Semantic(_) => StatusCode::SemanticError,
        // IoTDB answers a datetime that is not one as a parse error.
        EngineError::TimeFormat(_) => StatusCode::SqlParseError,
        EngineError::Unsupported(_) => StatusCode::UnsupportedOperation,
        EngineError::IllegalParameter(_) => StatusCode::IllegalParameter,
        EngineError::MemoryBudget(_) => StatusCode::QueryExecutionMemoryNotEnough,
        EngineError::Timeout(_) => StatusCode::QueryTimeout,
        EngineError::Cancelled(_) => StatusCode::QueryWasKilled,
        EngineError::OutOfTtl(_) => StatusCode::OutOfTtl,
        // Template errors carry IoTDB's code for each (510–527, or 507).
        EngineError::Template(code, _) => *code,
        EngineError::Catalog(e) => catalog_code(e),
        EngineError::Storage(e) => storage_code(e),
        EngineError::Internal(_) => StatusCode::InternalServerError,
    }
}

pub fn pipe_code(e: &PipeError) -> StatusCode {
    match e {
        PipeError::Invalid(_) => StatusCode::PipeError,
        PipeError::NotExist { .. } => StatusCode::PipeNotExistError,
        PipeError::Unsupported(_) => StatusCode::UnsupportedOperation,
        PipeError::NoPermission => StatusCode::NoPermission,
        // The manager turns the catalog errors a pipe statement can expect (an existing or missing
        // pipe) into pipe errors first; a catalog failure left under a pipe operation is internal.
        PipeError::Catalog(_) => StatusCode::InternalServerError,
    }
}

pub fn parse_code(e: &ParseError) -> StatusCode {
    match e.kind {
        ParseErrorKind::Syntax => StatusCode::SqlParseError,
        ParseErrorKind::Unsupported => StatusCode::UnsupportedOperation,
    }
}

/// A reply that could not be encoded is the server's fault.
pub fn encode_code(_: &duet_proto::ProtoError) -> StatusCode {
    StatusCode::InternalServerError
}

impl From<duet_catalog::Error> for StatementError {
    fn from(e: duet_catalog::Error) -> Self {
        StatementError::new(catalog_code(&e), e.to_string())
    }
}

impl From<EngineError> for StatementError {
    fn from(e: EngineError) -> Self {
        StatementError::new(engine_code(&e), e.to_string())
    }
}

impl From<&EngineError> for StatementError {
    fn from(e: &EngineError) -> Self {
        StatementError::new(engine_code(e), e.to_string())
    }
}

impl From<PipeError> for StatementError {
    fn from(e: PipeError) -> Self {
        StatementError::new(pipe_code(&e), e.to_string())
    }
}

impl From<ParseError> for StatementError {
    fn from(e: ParseError) -> Self {
        StatementError::new(parse_code(&e), e.to_string())
    }
}

impl From<duet_proto::ProtoError> for StatementError {
    fn from(e: duet_proto::ProtoError) -> Self {
        StatementError::new(encode_code(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_catalog_mapping_serves_every_layer() {
        let direct = StatementError::from(duet_catalog::Error::UserNotExist("u".into()));
        assert_eq!(direct.code, StatusCode::UserNotExist);
        assert_eq!(direct.message, "User u does not exist");
        let through_engine = StatementError::from(EngineError::Catalog(
            duet_catalog::Error::SeriesExists("root.a.b".into()),
        ));
        assert_eq!(through_engine.code, StatusCode::TimeseriesAlreadyExist);
        assert_eq!(
            through_engine.message,
            "catalog error: Path [root.a.b] already exist"
        );
        let under_pipe = StatementError::from(PipeError::Catalog(
            duet_catalog::Error::PipeNotExist("p".into()),
        ));
        assert_eq!(under_pipe.code, StatusCode::InternalServerError);
    }
}
