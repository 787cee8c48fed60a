//! IoTDB status codes and `TSStatus` constructors, so every layer names a code instead of a number.

use crate::t::TSStatus;

/// The subset of IoTDB's `TSStatusCode` that Duet returns or interprets (reference §5.5 and pipe §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum StatusCode {
    Success = 200,
    IncompatibleVersion = 201,
    UnsupportedSqlDialect = 205,
    UnsupportedOperation = 300,
    ExecuteStatementError = 301,
    MultipleError = 302,
    IllegalParameter = 303,
    InternalServerError = 305,
    RedirectionRecommend = 400,
    DatabaseNotExist = 500,
    DatabaseAlreadyExists = 501,
    TimeseriesAlreadyExist = 503,
    MetadataError = 507,
    PathNotExist = 508,
    IllegalPath = 509,
    CreateTemplateError = 510,
    UndefinedTemplate = 512,
    TemplateNotSet = 513,
    TemplateIsInUse = 515,
    TemplateIncompatible = 516,
    TemplateNotActivated = 524,
    MeasurementAlreadyExistsInTemplate = 527,
    SystemReadOnly = 600,
    /// A write of points whose time a TTL has already expired.
    OutOfTtl = 606,
    AlignedTimeseriesError = 609,
    DiskSpaceInsufficient = 611,
    DataTypeMismatch = 614,
    SqlParseError = 700,
    SemanticError = 701,
    SetTimeZoneError = 703,
    QueryProcessError = 708,
    NoSuchQuery = 714,
    QueryWasKilled = 715,
    TooManyConcurrentQueries = 717,
    QueryExecutionMemoryNotEnough = 719,
    QueryTimeout = 720,
    WrongLoginPassword = 801,
    NotLogin = 802,
    NoPermission = 803,
    UserNotExist = 804,
    UserAlreadyExist = 805,
    UserAlreadyHasRole = 806,
    UserNotHasRole = 807,
    RoleNotExist = 808,
    RoleAlreadyExist = 809,
    NotHasPrivilege = 811,
    IllegalPrivilege = 816,
    NotHasPrivilegeGrantOpt = 817,
    IllegalPassword = 820,
    UserLoginLocked = 822,
    PipeError = 1107,
    PipeVersionError = 1800,
    PipeTypeError = 1801,
    PipeHandshakeError = 1802,
    PipeTransferFileOffsetReset = 1803,
    PipeTransferFileError = 1804,
    PipeTransferExecuteStatementError = 1805,
    PipeNotExistError = 1806,
    PipeReceiverTemporaryUnavailable = 1808,
    PipeReceiverIdempotentConflict = 1809,
    PipeReceiverUserConflict = 1810,
    PipeTransferSliceOutOfOrder = 1812,
}

impl StatusCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A plain success status, as IoTDB sends it: code 200 and the message "Executed successfully.".
pub fn success() -> TSStatus {
    TSStatus::new(
        StatusCode::Success.code(),
        Some("Executed successfully.".to_string()),
        None,
        None,
        None,
        None,
    )
}

/// A failure status with a message.
pub fn failure(code: StatusCode, message: impl Into<String>) -> TSStatus {
    TSStatus::new(code.code(), Some(message.into()), None, None, None, None)
}

/// Whether a status counts as success for a client: IoTDB's clients accept 200, and 400 (redirection
/// recommended) as success; 302 is success only when every sub-status is.
pub fn is_success(status: &TSStatus) -> bool {
    match status.code {
        200 | 400 => true,
        302 => status
            .sub_status
            .as_ref()
            .is_some_and(|subs| subs.iter().all(|s| matches!(s.code, 200 | 400))),
        _ => false,
    }
}

/// The message a client shows for a failed status, in IoTDB's `"<code>: <message>"` form.
pub fn describe(status: &TSStatus) -> String {
    let message = match (&status.message, &status.sub_status) {
        (_, Some(subs)) if status.code == 302 => subs
            .iter()
            .filter(|s| !is_success(s))
            .map(|s| s.message.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("; "),
        (Some(m), _) => m.clone(),
        (None, _) => "None".to_string(),
    };
    format!("{}: {}", status.code, message)
}
