//! What happened during a soak, as the checker needs it: every write and delete a writer issued with
//! its outcome (acknowledged, with its place in the global acknowledgement order, or unknown), every
//! fault, and when each server process died — an operation left unanswered by a process can only have
//! been applied before that process's death.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One of the two instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

/// The client call an operation went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    Tablet,
    Tablets,
    Record,
    Records,
    RecordsOfOneDevice,
    StringRecord,
    StringRecords,
    StringRecordsOfOneDevice,
    SqlInsert,
}

impl WritePath {
    pub const ALL: [WritePath; 9] = [
        WritePath::Tablet,
        WritePath::Tablets,
        WritePath::Record,
        WritePath::Records,
        WritePath::RecordsOfOneDevice,
        WritePath::StringRecord,
        WritePath::StringRecords,
        WritePath::StringRecordsOfOneDevice,
        WritePath::SqlInsert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WritePath::Tablet => "insertTablet",
            WritePath::Tablets => "insertTablets",
            WritePath::Record => "insertRecord",
            WritePath::Records => "insertRecords",
            WritePath::RecordsOfOneDevice => "insertRecordsOfOneDevice",
            WritePath::StringRecord => "insertStringRecord",
            WritePath::StringRecords => "insertStringRecords",
            WritePath::StringRecordsOfOneDevice => "insertStringRecordsOfOneDevice",
            WritePath::SqlInsert => "SQL INSERT",
        }
    }
}

/// Rows `t0 .. t0 + rows` of one device, every measurement written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub device: usize,
    pub t0: i64,
    pub rows: i64,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Write {
        path: WritePath,
        parts: Vec<Part>,
    },
    /// `DELETE FROM device.<measurement or *> WHERE time >= from AND time <= to`.
    Delete {
        device: usize,
        measurement: Option<usize>,
        from: i64,
        to: i64,
    },
}

/// How an operation ended for its writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server answered success at `at`; `seq` is the global acknowledgement order.
    Acked { at: Duration, seq: u64 },
    /// No success answer: it may or may not have been applied.
    Unknown { error: String },
}

/// One operation as its writer issued it.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: u64,
    pub side: Side,
    pub writer: usize,
    pub kind: OpKind,
    pub issued: Duration,
    /// The server process (per side, counted from 0) the operation was sent to.
    pub process: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn acked_at(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Acked { at, .. } => Some(at),
            Outcome::Unknown { .. } => None,
        }
    }

    /// Points written (rows × measurements) for a write, 0 for a delete.
    pub fn points(&self, measurements: usize) -> u64 {
        match &self.kind {
            OpKind::Write { parts, .. } => parts
                .iter()
                .map(|p| u64::try_from(p.rows).unwrap_or(0) * measurements as u64)
                .sum(),
            OpKind::Delete { .. } => 0,
        }
    }
}

/// One injected fault, with when it began and when everything was healed again.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub index: usize,
    pub description: String,
    pub started: Duration,
    pub ended: Duration,
}

/// Everything recorded, shared by the writers and the fault injector.
#[derive(Debug)]
pub struct History {
    start: Instant,
    next_op: AtomicU64,
    next_ack: AtomicU64,
    ops: Mutex<Vec<Op>>,
    faults: Mutex<Vec<FaultRecord>>,
    /// The current process number of each side; raised after a process has exited.
    processes: [AtomicU64; 2],
    /// (side, process) → when that process was seen to have exited.
    deaths: Mutex<BTreeMap<(Side, u64), Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A writer that panicked mid-push leaves a valid vector behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl History {
    pub fn new() -> History {
        History {
            start: Instant::now(),
            next_op: AtomicU64::new(1),
            next_ack: AtomicU64::new(1),
            ops: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            processes: [AtomicU64::new(0), AtomicU64::new(0)],
            deaths: Mutex::new(BTreeMap::new()),
        }
    }

    /// Time since the soak started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn next_op_id(&self) -> u64 {
        self.next_op.fetch_add(1, Ordering::SeqCst)
    }

    /// The next place in the acknowledgement order (taken when the success answer arrives).
    pub fn next_ack_seq(&self) -> u64 {
        self.next_ack.fetch_add(1, Ordering::SeqCst)
    }

    pub fn record(&self, op: Op) {
        lock(&self.ops).push(op);
    }

    pub fn record_fault(&self, fault: FaultRecord) {
        lock(&self.faults).push(fault);
    }

    pub fn process(&self, side: Side) -> u64 {
        self.processes[side.index()].load(Ordering::SeqCst)
    }

    /// Called once the process of `side` has exited (and before a new one starts).
    pub fn process_died(&self, side: Side) {
        let process = self.process(side);
        lock(&self.deaths).insert((side, process), self.now());
        self.processes[side.index()].store(process + 1, Ordering::SeqCst);
    }

    pub fn death(&self, side: Side, process: u64) -> Option<Duration> {
        lock(&self.deaths).get(&(side, process)).copied()
    }

    pub fn ops(&self) -> Vec<Op> {
        let mut ops = lock(&self.ops).clone();
        ops.sort_by_key(|o| o.id);
        ops
    }

    pub fn faults(&self) -> Vec<FaultRecord> {
        lock(&self.faults).clone()
    }
}

/// Seconds with millisecond precision, as every report prints times.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}
