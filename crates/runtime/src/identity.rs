//! What this instance tells peers about itself, in a module of its own so the handshake, the pipe
//! tasks, the receiver and the manager all depend on it rather than on one another.

/// What this instance tells peers about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub cluster_id: String,
    pub timestamp_precision: String,
    pub version: String,
    /// The port of this instance's `/metrics` and dashboard listener, told to Duet peers in the
    /// handshake so that each side's dashboard links to the other's.
    pub metrics_port: Option<u16>,
}
