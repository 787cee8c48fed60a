//! The pipe runtime: everything about pipes between the SQL statement and the wire.
//!
//! - [`params`]: IoTDB's parameter maps with key-prefix reduction and `SHOW PIPES` rendering;
//! - [`config`]: validation of source / processor / sink parameters into typed configurations;
//! - [`identity`]: [`ServerIdentity`], what this instance tells peers;
//! - [`handshake`]: the pipe handshake (type 51), both the sink side and the receiver side;
//! - [`manager`]: [`PipeManager`], which executes the pipe statements against the catalog;
//! - [`task`]: one pipe's task, which [`task::PipeTask::spawn`] starts and hands the manager a handle on
//!   (history, then the log; batching, progress, backoff), with [`filter`]
//!   (what its source lets through), [`transfer`] (the bodies it sends) and [`metrics`] (its counters);
//! - [`receiver`]: the receiving end, with [`slice`] (sliced requests), [`file_receiver`] (TsFile
//!   and snapshot pieces), [`tsfile_load`], [`schema_snapshot_load`] and [`config_snapshot_load`]
//!   (what a seal applies); IoTDB's compressed request is `duet_proto::pipe_compressed`;
//! - [`error`]: pipe errors (their IoTDB status codes are mapped in the server's `status_codes`).
//!
//! **Architecture invariant:** a pipe statement returns only after its catalog change is committed, and
//! the state `SHOW PIPES` prints is the state in the catalog.

pub mod config;
pub mod config_snapshot_load;
pub mod error;
pub mod file_receiver;
pub mod filter;
pub mod handshake;
pub mod identity;
pub mod manager;
pub mod metrics;
pub mod params;
pub mod receiver;
pub mod schema_snapshot_load;
pub mod slice;
pub mod task;
pub mod transfer;
pub mod tsfile_load;

pub use error::{PipeError, Result};
pub use identity::ServerIdentity;
pub use manager::{PipeManager, PipeReport};
pub use metrics::PipeMetrics;

/// The instance's number in data versions (the tie-break between equal clocks): a stable 64-bit FNV-1a
/// hash of the cluster id, so every instance computes the same number for a peer.
pub fn instance_number(cluster_id: &str) -> u64 {
    cluster_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
