//! What a pipe task counts as it works, for `/metrics` and the dashboard: IoTDB's pipe metrics
//! (`pipe_connector_*_transfer`, failures, retries) and the replication lag, as lock-free atomics the
//! task updates once per batch.

use duet_metrics::{Counter, Histogram, LAG_BOUNDS};

/// One pipe's counters, shared by its task and the manager (which reports them).
#[derive(Debug)]
pub struct PipeMetrics {
    /// Non-empty batches the peer acknowledged, their entries and the bytes sent for them (after
    /// compression).
    pub batches_transferred: Counter,
    pub entries_transferred: Counter,
    pub bytes_transferred: Counter,
    /// Failed attempts (the peer unreachable, refusing, or an error on the wire).
    pub failures: Counter,
    /// Attempts started again after a failure's backoff.
    pub retries: Counter,
    /// Per entry the peer acknowledged from the log: from its write (its version's clock) to the
    /// acknowledgement.
    pub lag_seconds: Histogram,
}

impl Default for PipeMetrics {
    fn default() -> Self {
        PipeMetrics {
            batches_transferred: Counter::default(),
            entries_transferred: Counter::default(),
            bytes_transferred: Counter::default(),
            failures: Counter::default(),
            retries: Counter::default(),
            lag_seconds: Histogram::new(LAG_BOUNDS),
        }
    }
}
