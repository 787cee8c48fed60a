//! The values that flow through storage: log positions, versions, origins, operations and log entries.

use duet_proto::types::Column;

/// A log sequence number: starts at 1 and grows by exactly one per log entry.
pub type Lsn = u64;

/// The version every point and tombstone carries; the highest version wins everywhere.
///
/// Ordered by `hlc`, then `instance` (the instance that first accepted the write), so two instances
/// that take conflicting writes resolve them the same way.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Version {
    /// Hybrid logical clock: `(physical ms << 16) | logical counter`.
    pub hlc: u64,
    pub instance: u64,
}

impl Version {
    /// The wall-clock time (ms since the epoch) the version was taken at: its HLC's physical part.
    pub fn wall_clock_ms(&self) -> u64 {
        self.hlc >> 16
    }
}

/// The kind of an operation, as an entry's header tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Insert,
    Delete,
    Meta,
}

/// What [`crate::Storage::read_log_headers`] reads of an entry: everything but the operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHeader {
    pub lsn: Lsn,
    pub origin: Origin,
    pub version: Version,
    /// How many operations the entry has, and the first one's kind.
    pub ops: usize,
    pub first_op: Option<OpKind>,
}

/// Where a log entry was first accepted; double-living pipes skip entries that came through a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Local,
    Pipe { instance: u64 },
}

/// Points for one device: one column per measurement, a null cell means "no point".
#[derive(Debug, Clone, PartialEq)]
pub struct InsertOp {
    /// The device path, e.g. `root.sg.d1`; a series is `device + "." + measurement`.
    pub device: String,
    pub aligned: bool,
    pub measurements: Vec<String>,
    pub columns: Vec<Column>,
    pub times: Vec<i64>,
}

/// A range tombstone over resolved series paths (no wildcards); `end` is inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOp {
    pub series: Vec<String>,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(InsertOp),
    Delete(DeleteOp),
    /// A schema change (its encoding is the engine's): storage only logs it, with the entry's
    /// version, so it is durable, ordered with the data and replicated as the data is.
    Meta(Vec<u8>),
}

/// One change-log entry: the unit of durability, of replication and of versioning.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub lsn: Lsn,
    pub origin: Origin,
    pub version: Version,
    pub ops: Vec<Op>,
}

/// The full path of a series: `device.measurement`.
pub(crate) fn series_path(device: &str, measurement: &str) -> String {
    let mut path = String::with_capacity(device.len() + 1 + measurement.len());
    path.push_str(device);
    path.push('.');
    path.push_str(measurement);
    path
}

/// A delete as storage keeps it for one series: it hides points in `[start, end]` whose version is
/// lower than `version`; a point written later with a higher version survives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RangeTombstone {
    pub start: i64,
    pub end: i64,
    pub version: Version,
}

impl RangeTombstone {
    pub(crate) fn hides(&self, time: i64, version: Version) -> bool {
        self.start <= time && time <= self.end && version < self.version
    }
}
