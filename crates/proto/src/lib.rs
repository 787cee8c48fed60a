//! The IoTDB client protocol as Duet speaks it, on both ends of a connection.
//!
//! Everything that is bytes on port 6667 lives here and nowhere else: the Thrift types of IoTDB's
//! `IClientRPCService` (generated from IoTDB's full IDL in `thrift/`), the framed transport with binary or
//! compact protocol detected per frame, the RPC call/reply envelopes, the TsBlock encoding of query
//! results, the tablet and record value layouts of write requests, the pipe-transfer body primitives, and
//! an async client used by the CLI, the tests and the pipe sink.
//!
//! - `thrift_gen` (alias `t`): the generated Thrift types; [`codec`]: frames and protocol detection;
//!   [`input`]: bounded Thrift input protocols; [`rpc`]: call/reply envelopes, `Request`/`Reply`;
//! - [`reader`]: the one bounded byte reader of the hand-written decoders; [`types`]: data types and
//!   columns; [`tablet`]: tablet and record layouts; [`tsblock`]: TsBlocks; [`query_data_set`]: the
//!   V1 result layout; [`schema_template`]: a serialized device template;
//! - [`pipe_body`]: pipe body primitives; [`pipe_tablet`]: IoTDB's tablet transfer bodies;
//!   [`pipe_compressed`]: IoTDB's compressed request and its five compressors; [`pipe_slice`]: one
//!   slice of IoTDB's sliced request;
//!   [`plan_node`]: write and schema plan nodes; [`config_plan`]: ConfigNode plans;
//!   [`schema_snapshot`] and [`config_snapshot`]: IoTDB's snapshot files;
//! - [`status`]: status codes; [`client`]: the async client; [`tls`]: rustls configurations from PEM
//!   files and Java stores, and the plain-or-TLS stream; [`jks`]: Java's legacy JKS and JCEKS key
//!   stores; `test_bytes`: the unit tests' byte writers.
//!
//! **Architecture invariant:** this crate knows nothing of SQL, storage or pipes' semantics; it turns
//! bytes into typed values and back.

pub mod client;
pub mod codec;
pub mod config_plan;
pub mod config_snapshot;
pub mod input;
pub mod jks;
pub mod pipe_body;
pub mod pipe_compressed;
pub mod pipe_slice;
pub mod pipe_tablet;
pub mod plan_node;
pub mod query_data_set;
pub mod reader;
pub mod rpc;
pub mod schema_snapshot;
pub mod schema_template;
pub mod status;
pub mod tablet;
pub mod tls;
pub mod tsblock;
pub mod types;

#[cfg(test)]
mod test_bytes;

/// The Thrift types generated from `thrift/iotdb-client.thrift` by `scripts/gen-thrift.sh`.
///
/// Generated code is never edited by hand; it uses `expect` on fields it has already checked, so the
/// workspace lints are relaxed for this module only.
#[allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_patterns,
    dead_code,
    unused
)]
#[rustfmt::skip]
#[path = "generated/iotdb_client.rs"]
pub mod thrift_gen;

pub use thrift_gen as t;

/// Errors of this crate: a byte stream that is not a well-formed frame or message, or an I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("thrift error: {}", input::describe(.0))]
    Thrift(#[from] thrift::Error),
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// Well-formed, but something Duet does not take (IoTDB's internal formats, the table model).
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, ProtoError>;
