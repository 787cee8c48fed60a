//! The engine: executes tree-model statements (schema, writes, deletes, queries) and the write RPCs
//! against the catalog (schema) and the storage (data), producing result tables or result streams.
//!
//! - [`paths`]: path splitting and IoTDB pattern matching;
//! - [`schema`]: the schema in memory, written through to the catalog;
//! - [`values`]: values written as literals or strings, type inference and conversion;
//! - [`write`]: the write path shared by SQL `INSERT` and every insert RPC;
//! - [`query`]: `SELECT` (raw, aggregates, `GROUP BY`, `LAST`, `ALIGN BY DEVICE`) as page streams;
//! - [`limits`]: a query's memory budget, deadline and cancellation;
//! - [`scope`]: the read scope of a session's privileges, applied where paths are resolved;
//! - [`time`]: session zones, datetime literals, date expressions and calendar durations;
//! - [`template`]: device templates with IoTDB 2.0's rules; [`ttl`]: TTL rules and expired points;
//! - [`schema_sync`]: schema changes as log entries and their version-ordered application;
//! - [`replicate`]: applying what a peer's pipe sends, with its versions and origin;
//! - `peer_schema`: an IoTDB sender's deletion and deactivation patterns resolved here;
//! - `engine`: [`Engine`], the front door.
//!
//! **Architecture invariant:** the engine never speaks Thrift; the server converts requests into
//! [`write::DeviceWrite`]s and statuses out of [`EngineError`]s.

pub mod limits;
pub mod paths;
mod peer_schema;
pub mod query;
pub mod replicate;
pub mod schema;
pub mod schema_sync;
pub mod scope;
pub mod template;
pub mod time;
pub mod ttl;
pub mod values;
pub mod write;

mod engine;

pub use engine::{Engine, Output, QueryStream, SessionContext};

use duet_proto::status::StatusCode;

/// Errors of statement execution, each with the IoTDB status code a client receives.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    IllegalPath(String),
    #[error("{0}")]
    PathNotExist(String),
    #[error("{0}")]
    DatabaseExists(String),
    #[error("{0}")]
    DatabaseNotSet(String),
    #[error("{0}")]
    SeriesExists(String),
    #[error("{0}")]
    TypeMismatch(String),
    #[error("{0}")]
    Alignment(String),
    #[error("{0}")]
    Semantic(String),
    /// A datetime that is not one (IoTDB answers it as a parse error).
    #[error("{0}")]
    TimeFormat(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    IllegalParameter(String),
    /// A query needed more memory than its budget (`query_memory_bytes`).
    #[error("{0}")]
    MemoryBudget(String),
    /// A query ran past its deadline (`query_timeout_threshold` or the request's timeout).
    #[error("{0}")]
    Timeout(String),
    /// A query was cancelled (its client closed it or went away).
    #[error("{0}")]
    Cancelled(String),
    /// A write of points a TTL has already expired.
    #[error("{0}")]
    OutOfTtl(String),
    /// A device-template error with IoTDB's code for it (510–527, or 507).
    #[error("{1}")]
    Template(StatusCode, String),
    #[error("catalog error: {0}")]
    Catalog(#[from] duet_catalog::Error),
    #[error("storage error: {0}")]
    Storage(#[from] duet_storage::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;
