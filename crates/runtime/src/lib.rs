//! The pipe runtime: everything about pipes between the SQL statement and the wire.
//!
//! - [`params`]: IoTDB's parameter maps with key-prefix reduction and `SHOW PIPES` rendering;
//! - [`config`]: validation of source / processor / sink parameters into typed configurations;
//! - [`handshake`]: the pipe handshake (type 51), both the sink side and the receiver side;
//! - [`manager`]: [`PipeManager`], which executes the pipe statements against the catalog.
//!
//! **Architecture invariant:** a pipe statement returns only after its catalog change is committed, and
//! the state `SHOW PIPES` prints is the state in the catalog.

pub mod config;
pub mod error;
pub mod handshake;
pub mod manager;
pub mod params;

pub use error::{PipeError, Result};
pub use manager::{PipeManager, ServerIdentity};
