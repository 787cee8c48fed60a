//! What bounds one query: a memory budget that every piece of query state is charged to as it is
//! allocated, a deadline, and a cancellation flag. The loops of `query` check them, so a query that
//! would need too much memory or time ends with a clear error instead of taking the server down, and a
//! query whose client went away stops at its next check.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{EngineError, Result};

/// The configuration key of the memory budget, named in the error a client sees.
pub const MEMORY_SETTING: &str = "query_memory_bytes";

/// The configuration key of the default timeout, named in the error a client sees.
pub const TIMEOUT_SETTING: &str = "query_timeout_threshold";

/// The limits a query runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most bytes of query state (cursors' chunks, accumulators, the page being built, resolved
    /// series lists) alive at once.
    pub memory_bytes: usize,
    /// How long the query may run, from its start to its last page; `None` is unbounded.
    pub timeout: Option<Duration>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 256 << 20,
            timeout: Some(Duration::from_millis(60_000)),
        }
    }
}

/// One query's live limits, shared by its parts (`Arc`); the session keeps a handle to cancel it.
#[derive(Debug)]
pub struct QueryControl {
    limits: QueryLimits,
    used: AtomicUsize,
    peak: AtomicUsize,
    cancelled: AtomicBool,
    /// Cancelled by an operator (`KILL QUERY`), not by its own client.
    killed: AtomicBool,
    started: Instant,
    /// Wall-clock start in milliseconds since the epoch, for the timeout message.
    started_ms: i64,
}

pub type QueryControlRef = Arc<QueryControl>;

impl QueryControl {
    pub fn new(limits: QueryLimits) -> QueryControlRef {
        Arc::new(QueryControl {
            limits,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            started: Instant::now(),
            started_ms: chrono::Utc::now().timestamp_millis(),
        })
    }

    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// Asks the query to stop; its next check fails.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Stops the query for someone else than its client (`KILL QUERY`); its next check fails with
    /// IoTDB's "Query was killed by others".
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// When the query started, in milliseconds since the epoch.
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// How long ago the query started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Fails when the query was cancelled or ran past its deadline.
    pub fn check(&self) -> Result<()> {
        if self.killed.load(Ordering::Acquire) {
            return Err(EngineError::Cancelled("Query was killed by others".into()));
        }
        if self.is_cancelled() {
            return Err(EngineError::Cancelled(
                "the query was cancelled: its client closed it or went away".into(),
            ));
        }
        if let Some(timeout) = self.limits.timeout {
            let elapsed = self.started.elapsed();
            if elapsed >= timeout {
                let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
                let now_ms = self
                    .started_ms
                    .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
                return Err(EngineError::Timeout(format!(
                    "Current query is time out, query start time is {}, ddl is {}, current time is {}, please check your statement or modify timeout parameter ({TIMEOUT_SETTING} = {timeout_ms} ms, or the request's timeout).",
                    self.started_ms,
                    self.started_ms.saturating_add(timeout_ms),
                    now_ms
                )));
            }
        }
        Ok(())
    }

    /// Bytes currently charged.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes charged at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The budget left, for sizing chunks and pages before allocating them.
    pub fn available(&self) -> usize {
        self.limits.memory_bytes.saturating_sub(self.used())
    }

    fn charge(&self, bytes: usize, what: &str) -> Result<()> {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        let after = before.saturating_add(bytes);
        if after > self.limits.memory_bytes {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(EngineError::MemoryBudget(format!(
                "the query needs more memory than {MEMORY_SETTING} = {} bytes allows ({what} would bring it to {after} bytes); select fewer series, narrow the time range, use a larger GROUP BY interval, or raise {MEMORY_SETTING}",
                self.limits.memory_bytes
            )));
        }
        self.peak.fetch_max(after, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Charges `bytes` for `what`; the charge lasts as long as the returned reservation.
    pub fn reserve(self: &Arc<Self>, bytes: usize, what: &str) -> Result<Reservation> {
        self.charge(bytes, what)?;
        Ok(Reservation {
            control: self.clone(),
            bytes,
        })
    }
}

/// Bytes charged to a query's budget, released when dropped.
#[derive(Debug)]
pub struct Reservation {
    control: QueryControlRef,
    bytes: usize,
}

impl Reservation {
    /// Changes the charge to `bytes` (growing may fail; shrinking never does).
    pub fn resize(&mut self, bytes: usize, what: &str) -> Result<()> {
        if bytes > self.bytes {
            self.control.charge(bytes - self.bytes, what)?;
        } else {
            self.control.release(self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.control.release(self.bytes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_released_when_dropped_and_the_budget_names_its_setting() {
        let control = QueryControl::new(QueryLimits {
            memory_bytes: 1000,
            timeout: None,
        });
        let mut a = control.reserve(600, "a").unwrap();
        let err = control.reserve(500, "the second part").unwrap_err();
        assert!(err.to_string().contains(MEMORY_SETTING), "{err}");
        assert!(err.to_string().contains("the second part"), "{err}");
        assert_eq!(control.used(), 600);
        a.resize(100, "a").unwrap();
        let b = control.reserve(900, "b").unwrap();
        assert_eq!(control.used(), 1000);
        drop(b);
        drop(a);
        assert_eq!((control.used(), control.peak()), (0, 1000));
    }

    #[test]
    fn checks_fail_after_cancel_and_past_the_deadline() {
        let control = QueryControl::new(QueryLimits {
            memory_bytes: 1000,
            timeout: None,
        });
        control.check().unwrap();
        control.cancel();
        assert!(matches!(control.check(), Err(EngineError::Cancelled(_))));
        let expired = QueryControl::new(QueryLimits {
            memory_bytes: 1000,
            timeout: Some(Duration::ZERO),
        });
        let err = expired.check().unwrap_err();
        assert!(matches!(err, EngineError::Timeout(_)));
        assert!(err.to_string().contains("time out"), "{err}");
    }
}
