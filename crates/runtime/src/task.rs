//! One pipe's task: a loop that owns the pipe's connection, position and batching, and moves entries
//! from this instance's change log to the peer: source (history from data, then the log in real time)
//! → processor (do-nothing) → sink (the peer's `pipeTransfer`).
//!
//! The loop is driven by a `watch` of the desired state (running, stopped, dropped) that the
//! [`crate::PipeManager`] sets, and it publishes what it does in a shared [`PipeStatus`]. A failure never
//! ends the task: it becomes the pipe's exception (with its time), the task retries with exponential
//! backoff, and after [`FAILURES_BEFORE_STOPPED`] failures in a row the pipe is shown STOPPED until a
//! retry succeeds by itself or an operator runs `START PIPE`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use duet_catalog::{Catalog, PipeException, PipeState};
use duet_engine::Engine;
use duet_proto::pipe_body::REQUEST_VERSION;
use duet_proto::status::{self, StatusCode};
use duet_proto::t::TPipeTransferReq;
use duet_storage::{LogEntry, LogRead, Lsn};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{SinkConfig, SinkKind, SourceConfig};
use crate::filter::EntryFilter;
use crate::handshake::{self, SinkConnection, DUET_PROTOCOL_KEY};
use crate::identity::ServerIdentity;
use crate::transfer;
use duet_proto::pipe_compressed::{self as compress, Compressor};

/// Failures in a row after which the pipe is shown STOPPED (it keeps retrying).
pub const FAILURES_BEFORE_STOPPED: u32 = 5;

/// Entries read from the log per step (a batch may take several steps, up to its size limit).
const READ_ENTRIES: usize = 256;

/// Points read per history scan.
const HISTORY_CHUNK: usize = 8192;

/// Progress is written to the catalog at most this often: losing the last interval on a crash only
/// resends entries the receiver applies idempotently.
const PERSIST_EVERY: Duration = Duration::from_millis(200);

/// How long an idle pipe waits before checking that its peer still answers.
const HEARTBEAT: Duration = Duration::from_secs(2);

const BACKOFF_START: Duration = Duration::from_millis(250);
/// Like IoTDB's sink (250 ms growing to 1 s): a peer that comes back is found within a second.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the operator wants of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
    Dropped,
}

/// What the task is doing, for `SHOW PIPES` and tests.
#[derive(Debug, Clone, Default)]
pub struct PipeStatus {
    /// The last log position the peer acknowledged (or that needs no sending).
    pub acknowledged: Lsn,
    /// The newest failure, with its time in ms; cleared when the pipe recovers.
    pub exception: Option<(String, i64)>,
    /// Entries sent per second, smoothed.
    pub rate: f64,
    /// Entries and batches sent since the task started.
    pub entries_sent: u64,
    pub batches_sent: u64,
    /// Set while the pipe sends data from the data files (its history, or a replay after the log it
    /// needed was released).
    pub replaying: Option<String>,
    /// Operations a non-Duet receiver has no form for (deletions, schema changes), not sent.
    pub changes_not_sent: u64,
    /// The peer's metrics and dashboard port, when it is a Duet instance that serves one.
    pub peer_metrics_port: Option<u16>,
}

pub type StatusRef = Arc<Mutex<PipeStatus>>;

/// Everything the task needs; it owns all of it.
pub struct PipeTask {
    pub name: String,
    pub source: SourceConfig,
    pub filter: EntryFilter,
    pub sink: SinkConfig,
    pub engine: Arc<Engine>,
    pub catalog: Arc<Catalog>,
    pub identity: ServerIdentity,
    pub local_instance: u64,
    pub status: StatusRef,
    pub desired: watch::Receiver<Desired>,
    pub history_done: bool,
    /// The acknowledged position for the persister (see [`persist_progress`]).
    pub progress: watch::Sender<Lsn>,
    /// `rate-limit-bytes-per-second`, for every request the task sends.
    pub pacer: Pacer,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::PipeMetrics>,
}

/// Spaces requests so that their bytes average at most `rate-limit-bytes-per-second`.
#[derive(Debug)]
pub struct Pacer {
    bytes_per_second: Option<u64>,
    /// When the next request may leave.
    next: Instant,
}

impl Pacer {
    pub fn new(bytes_per_second: Option<u64>) -> Pacer {
        Pacer {
            bytes_per_second,
            next: Instant::now(),
        }
    }

    /// How long to wait before sending `bytes`, whose share of the limit this reserves.
    fn reserve(&mut self, bytes: usize) -> Duration {
        let Some(rate) = self.bytes_per_second else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let wait = self.next.saturating_duration_since(now);
        self.next = self.next.max(now) + Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
        wait
    }
}

/// Why a step stopped: the peer failed, or the operator changed the desired state.
enum Interrupt {
    Failed(String),
    Desired,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn lock(status: &StatusRef) -> std::sync::MutexGuard<'_, PipeStatus> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The manager's handle on one running task, as [`PipeTask::spawn`] returns it.
pub struct PipeHandle {
    /// The operator's wish; the task watches it.
    pub(crate) desired: watch::Sender<Desired>,
    /// What the task publishes.
    pub(crate) status: StatusRef,
    /// The source filter, to count the backlog the way the task will send it.
    pub(crate) filter: EntryFilter,
    pub(crate) join: JoinHandle<()>,
    pub(crate) metrics: Arc<crate::metrics::PipeMetrics>,
}

impl PipeHandle {
    /// The status the task publishes, locked.
    pub(crate) fn status(&self) -> std::sync::MutexGuard<'_, PipeStatus> {
        lock(&self.status)
    }
}

/// Runs a pipe's task and, should it panic (a bug), makes that the pipe's visible state — an
/// exception and STOPPED, in memory and in the catalog — instead of a silent end; the next server
/// start runs the pipe again from its persisted position.
async fn watch_task(task: PipeTask, name: String, status: StatusRef, catalog: Arc<Catalog>) {
    let Err(e) = tokio::spawn(task.run()).await else {
        return;
    };
    if !e.is_panic() {
        return;
    }
    let message = format!(
        "The pipe task stopped unexpectedly (a Duet bug; restart the server to run it again): {e}"
    );
    tracing::error!(pipe = %name, "{message}");
    let at = chrono::Utc::now().timestamp_millis();
    status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .exception = Some((message.clone(), at));
    let pipe = name.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let exception = duet_catalog::PipeException { message, at_ms: at };
        if let Err(e) = catalog.set_pipe_exception(&name, Some(&exception)) {
            warn!(pipe = %name, "cannot record the pipe exception: {e}");
        }
        if let Err(e) = catalog.set_pipe_state(&name, PipeState::Stopped, true) {
            warn!(pipe = %name, "cannot mark the pipe stopped: {e}");
        }
    })
    .await;
    logged(&pipe, "record the stopped task in the catalog", recorded);
}

impl PipeTask {
    /// Starts the task, watched (see `watch_task`), and returns the manager's handle on it; `desired`
    /// is the sending side of the task's `desired` watch.
    pub fn spawn(self, desired: watch::Sender<Desired>) -> PipeHandle {
        let status = self.status.clone();
        let filter = self.filter.clone();
        let metrics = self.metrics.clone();
        let name = self.name.clone();
        let catalog = self.catalog.clone();
        let join = tokio::spawn(watch_task(self, name, status.clone(), catalog));
        PipeHandle {
            desired,
            status,
            filter,
            join,
            metrics,
        }
    }

    /// The task's loop; returns when the pipe is dropped.
    pub async fn run(mut self) {
        // An exception carried over from before a restart counts as a failure, so the first success
        // clears it (the pipe has recovered) rather than leaving a stale message in SHOW PIPES.
        let mut failures: u32 = u32::from(lock(&self.status).exception.is_some());
        let mut backoff = BACKOFF_START;
        loop {
            // Wait until the pipe should run (or is dropped).
            loop {
                let desired = *self.desired.borrow_and_update();
                match desired {
                    Desired::Dropped => return,
                    Desired::Running => break,
                    Desired::Stopped => {
                        if self.desired.changed().await.is_err() {
                            return;
                        }
                    }
                }
            }
            match self.run_connected(&mut failures, &mut backoff).await {
                Interrupt::Desired => continue,
                Interrupt::Failed(message) => {
                    failures += 1;
                    self.metrics.failures.inc();
                    warn!(pipe = %self.name, failures, "pipe failed: {message}");
                    self.record_failure(&message, failures).await;
                    // Back off, but wake at once if the operator stops or drops the pipe.
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => self.metrics.retries.inc(),
                        _ = self.desired.changed() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn record_failure(&self, message: &str, failures: u32) {
        let at = now_ms();
        lock(&self.status).exception = Some((message.to_string(), at));
        let catalog = self.catalog.clone();
        let name = self.name.clone();
        let message = message.to_string();
        let stop = failures == FAILURES_BEFORE_STOPPED;
        let task = tokio::task::spawn_blocking(move || {
            let exception = PipeException { message, at_ms: at };
            if let Err(e) = catalog.set_pipe_exception(&name, Some(&exception)) {
                warn!(pipe = %name, "cannot record the pipe exception: {e}");
            }
            if stop {
                logged(
                    &name,
                    "mark the pipe stopped by error",
                    mark_stopped_by_error(&catalog, &name),
                );
            }
        })
        .await;
        logged(&self.name, "record the failure", task);
    }

    /// After a success following failures: the pipe recovered by itself.
    async fn record_recovery(&self) {
        lock(&self.status).exception = None;
        let catalog = self.catalog.clone();
        let name = self.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            logged(
                &name,
                "record the recovery in the catalog",
                mark_recovered(&catalog, &name),
            );
        })
        .await;
        logged(&self.name, "record the recovery", task);
        info!(pipe = %self.name, "pipe recovered");
    }

    fn still_running(&self) -> bool {
        *self.desired.borrow() == Desired::Running
    }

    /// Connects, sends history if due, then follows the log until interrupted.
    async fn run_connected(&mut self, failures: &mut u32, backoff: &mut Duration) -> Interrupt {
        let mut connections = match self.sink.kind {
            SinkKind::DoNothing => Vec::new(),
            SinkKind::IotdbThrift => match handshake::connect(&self.identity, &self.sink).await {
                Ok(c) => {
                    lock(&self.status).peer_metrics_port = c
                        .peer_parameters
                        .get(handshake::DUET_METRICS_PORT_KEY)
                        .and_then(|p| p.parse().ok());
                    vec![c]
                }
                Err(e) => return Interrupt::Failed(e.to_string()),
            },
        };
        let storage = self.engine.storage().clone();
        let mut head = storage.subscribe();
        if !self.history_done && self.source.history {
            if let Err(i) = self.send_history(&mut connections, "sending history").await {
                return i;
            }
            self.recovered(failures, backoff).await;
            self.history_done = true;
            let (catalog, name) = (self.catalog.clone(), self.name.clone());
            // Not recorded, history is sent again after a restart (the receiver skips what it has).
            match tokio::task::spawn_blocking(move || catalog.set_pipe_history_done(&name, true))
                .await
            {
                Ok(done) => logged(&self.name, "record that history was sent", done),
                Err(e) => warn!(pipe = %self.name, "cannot record that history was sent: {e}"),
            }
        }
        if !self.source.realtime {
            // History only: nothing more to do until the operator changes something.
            let _ = self.desired.changed().await;
            return Interrupt::Desired;
        }
        // Batches in flight, to a Duet receiver only (see `max_in_flight`); their connections are
        // opened when a backlog first needs them, so an idle pipe holds one.
        let speaks_duet = connections
            .first()
            .is_some_and(|c| c.peer_parameters.contains_key(DUET_PROTOCOL_KEY))
            && !self.sink.tablet_format;
        let max_in_flight = if speaks_duet {
            self.sink.max_in_flight.max(1)
        } else {
            1
        };
        self.follow_log(
            connections,
            max_in_flight,
            &storage,
            &mut head,
            failures,
            backoff,
        )
        .await
    }

    /// The real-time part: reads the log from the acknowledged position, keeps up to
    /// `max_in_flight` batches on the wire (each on its own connection) and moves the acknowledged
    /// position in log order as their answers come.
    ///
    /// **Invariant:** the acknowledged position only passes an entry once every batch up to it was
    /// accepted (answers are taken in dispatch order), so a failure resends from the first batch
    /// not accepted; batches after it that had been applied are applied again, which changes
    /// nothing (the version rule).
    async fn follow_log(
        &mut self,
        mut idle: Vec<SinkConnection>,
        max_in_flight: usize,
        storage: &duet_storage::Storage,
        head: &mut watch::Receiver<Lsn>,
        failures: &mut u32,
        backoff: &mut Duration,
    ) -> Interrupt {
        let endpoints = self.sink.endpoints_display();
        let mut opened = idle.len();
        // Decided once, on the first connection: every connection goes to the same peer.
        let duet_entries = idle.first().is_some_and(|c| self.sends_duet_entries(c));
        let mut acknowledged = lock(&self.status).acknowledged;
        // The last position put into a batch (or skipped): where the next read starts.
        let mut dispatched = acknowledged;
        let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
        let mut last_answer = Instant::now();
        let mut rate = SendRate::default();
        loop {
            if !self.still_running() {
                return Interrupt::Desired;
            }
            // 1. Fill the wire.
            let mut caught_up = false;
            while in_flight.len() < max_in_flight {
                let read = match storage.read_log(dispatched, READ_ENTRIES) {
                    Ok(r) => r,
                    Err(e) => return Interrupt::Failed(format!("cannot read the change log: {e}")),
                };
                let entries = match read {
                    LogRead::Truncated { available_from } => {
                        if !in_flight.is_empty() {
                            // Settle what is on the wire first; then the replay starts from there.
                            break;
                        }
                        // The log this pipe needed was released (it lagged past the retention cap):
                        // send everything from the data files instead, then continue from the head
                        // seen now.
                        let restart_at = storage.head();
                        warn!(pipe = %self.name, acknowledged, available_from, "log truncated below the pipe's position; replaying from data files");
                        if let Err(i) = self
                            .send_history(
                                &mut idle,
                                "replaying from data files: the change log it needed was released",
                            )
                            .await
                        {
                            return i;
                        }
                        acknowledged = restart_at;
                        dispatched = restart_at;
                        self.advance(acknowledged, storage);
                        continue;
                    }
                    LogRead::Entries(entries) => entries,
                };
                if entries.is_empty() {
                    caught_up = true;
                    break;
                }
                let (batch, last) = self.fill_batch(entries, dispatched, storage);
                dispatched = last;
                let do_nothing = self.sink.kind == SinkKind::DoNothing;
                if batch.is_empty() || do_nothing {
                    // Nothing to send (filtered out, or the do-nothing sink): the position still
                    // moves, in order behind what is on the wire.
                    let entries = if do_nothing { batch.len() } else { 0 };
                    in_flight.push_back(Box::pin(std::future::ready(Answered {
                        connection: None,
                        result: Ok(()),
                        last,
                        entries,
                        started: Instant::now(),
                        bytes: 0,
                        written_ms: Vec::new(),
                    })));
                    continue;
                }
                let (type_, body) = self.encode(duet_entries, &batch);
                let req = match wrap(type_, body, &self.sink.compressors).await {
                    Ok(r) => r,
                    Err(i) => return i,
                };
                // The rate limit counts what crosses the wire (compressed bytes), as IoTDB's does.
                let wait = self.pacer.reserve(req.body.len());
                if !wait.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = self.desired.changed() => return Interrupt::Desired,
                    }
                }
                if idle.is_empty() && opened < max_in_flight {
                    match handshake::connect(&self.identity, &self.sink).await {
                        Ok(c) => {
                            idle.push(c);
                            opened += 1;
                        }
                        Err(e) => return Interrupt::Failed(e.to_string()),
                    }
                }
                let Some(mut connection) = idle.pop() else {
                    return Interrupt::Failed("no sink connection is free".into());
                };
                let endpoints = endpoints.clone();
                let entries = batch.len();
                let written_ms = batch.iter().map(|e| e.version.wall_clock_ms()).collect();
                in_flight.push_back(Box::pin(async move {
                    let started = Instant::now();
                    let result = transfer(&mut connection, &req, &endpoints).await;
                    Answered {
                        connection: Some(connection),
                        result,
                        last,
                        entries,
                        started,
                        bytes: req.body.len(),
                        written_ms,
                    }
                }));
            }
            // 2. Wait: for an answer, for new entries when there is room, or (idle) for a heartbeat.
            if in_flight.is_empty() && caught_up {
                // Caught up: if the pipe had been failing, it has recovered.
                self.recovered(failures, backoff).await;
                tokio::select! {
                    changed = head.changed() => {
                        if changed.is_err() {
                            return Interrupt::Failed("the storage closed".into());
                        }
                    }
                    _ = self.desired.changed() => {}
                    () = tokio::time::sleep(HEARTBEAT) => {
                        // Idle for a while: an empty batch tells whether the peer is still there, so
                        // SHOW PIPES reports a lost peer before there is data to send.
                        if let Err(i) = self.send(&mut idle, &[]).await {
                            return i;
                        }
                    }
                }
                continue;
            }
            let room = caught_up && in_flight.len() < max_in_flight;
            tokio::select! {
                answered = in_flight.next(), if !in_flight.is_empty() => {
                    let Some(answered) = answered else { continue };
                    if let Err(message) = answered.result {
                        return Interrupt::Failed(message);
                    }
                    if let Some(connection) = answered.connection {
                        idle.push(connection);
                    }
                    if answered.bytes > 0 {
                        let m = &self.metrics;
                        m.batches_transferred.inc();
                        m.entries_transferred.add(answered.entries as u64);
                        m.bytes_transferred.add(answered.bytes as u64);
                        let now_ms = u64::try_from(now_ms()).unwrap_or(0);
                        for written in &answered.written_ms {
                            m.lag_seconds
                                .observe(now_ms.saturating_sub(*written) as f64 / 1000.0);
                        }
                    }
                    if answered.entries > 0 {
                        let now = Instant::now();
                        {
                            let mut s = lock(&self.status);
                            s.entries_sent += answered.entries as u64;
                            s.batches_sent += 1;
                            // Sending time: with batches overlapping, the time since the previous
                            // answer (or since this batch left, if later), so the intervals add up
                            // to the time the pipe was busy.
                            let secs = (now - answered.started.max(last_answer)).as_secs_f64();
                            rate.record(answered.entries, secs);
                            s.rate = rate.per_second();
                        }
                        last_answer = now;
                        self.recovered(failures, backoff).await;
                    }
                    acknowledged = answered.last;
                    self.advance(acknowledged, storage);
                }
                changed = head.changed(), if room => {
                    if changed.is_err() {
                        return Interrupt::Failed("the storage closed".into());
                    }
                }
                _ = self.desired.changed() => {}
            }
        }
    }

    /// Gathers a batch from `entries` (read from `from`) and further reads: what is available now,
    /// up to the size limit; returns it with the last log position it covers.
    fn fill_batch(
        &self,
        entries: Vec<LogEntry>,
        from: Lsn,
        storage: &duet_storage::Storage,
    ) -> (Vec<LogEntry>, Lsn) {
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut last = from;
        let mut pending = entries;
        'fill: loop {
            let full = pending.len() == READ_ENTRIES;
            for entry in &pending {
                // The size limit holds per request: stop before an entry that would exceed it (a
                // single entry larger than the limit still goes, alone).
                let kept = self.filter.apply(entry);
                let size = kept.as_ref().map(estimate).unwrap_or(0);
                if !batch.is_empty() && batch_bytes + size > self.sink.batch_size_bytes {
                    break 'fill;
                }
                last = entry.lsn;
                if let Some(kept) = kept {
                    batch_bytes += size;
                    batch.push(kept);
                }
            }
            if !full || batch_bytes >= self.sink.batch_size_bytes || !self.sink.batch_enable {
                break;
            }
            pending = match storage.read_log(last, READ_ENTRIES) {
                Ok(LogRead::Entries(e)) if !e.is_empty() => e,
                _ => break,
            };
        }
        (batch, last)
    }

    /// After a success: a pipe that had been failing has recovered by itself.
    async fn recovered(&self, failures: &mut u32, backoff: &mut Duration) {
        if *failures > 0 {
            *failures = 0;
            *backoff = BACKOFF_START;
            self.record_recovery().await;
        }
    }

    /// Moves the position: the status, the storage cursor, and (asynchronously, coalesced) the catalog.
    fn advance(&self, acknowledged: Lsn, storage: &duet_storage::Storage) {
        lock(&self.status).acknowledged = acknowledged;
        self.progress.send_replace(acknowledged);
        if let Err(e) = storage.advance_cursor(&self.name, acknowledged) {
            debug!(pipe = %self.name, "cursor: {e}");
        }
    }

    /// Sends the data of every matching series as it is stored now, each point with its version.
    async fn send_history(
        &mut self,
        connections: &mut [SinkConnection],
        why: &str,
    ) -> Result<(), Interrupt> {
        lock(&self.status).replaying = Some(why.to_string());
        let result = self.send_history_inner(connections).await;
        lock(&self.status).replaying = None;
        result
    }

    async fn send_history_inner(
        &mut self,
        connections: &mut [SinkConnection],
    ) -> Result<(), Interrupt> {
        let series = self
            .engine
            .series_matching(self.filter.pattern())
            .map_err(|e| Interrupt::Failed(e.to_string()))?;
        let (start, end) = self.filter.time_range();
        let local = self.local_instance;
        // The schema first, when the pipe sends it: a series created without data, or emptied,
        // exists on the peer too; the data's history then finds its series as they are here.
        if self.filter.sends_schema() {
            let changes = self
                .engine
                .schema_snapshot(self.filter.pattern(), local)
                .map_err(|e| Interrupt::Failed(e.to_string()))?;
            let entries: Vec<LogEntry> = changes
                .into_iter()
                .filter_map(|(change, version)| {
                    self.filter.apply(&LogEntry {
                        lsn: 0,
                        origin: duet_storage::Origin::Local,
                        version,
                        ops: vec![duet_storage::Op::Meta(change.encode())],
                    })
                })
                .collect();
            for batch in entries.chunks(256) {
                self.send(connections, batch).await?;
            }
        }
        for s in series {
            // Deletions first: the peer may hold points a delete made here before the pipe existed
            // has hidden. Each keeps its version, so it hides only what it hid here.
            if self.filter.sends_deletes() {
                let deletes: Vec<LogEntry> = self
                    .engine
                    .series_tombstones(&s.key)
                    .into_iter()
                    .filter(|(_, _, v)| self.filter.sends_origin_instance(v.instance, local))
                    .filter_map(|(lo, hi, version)| {
                        let (lo, hi) = (lo.max(start), hi.min(end));
                        (lo <= hi).then(|| LogEntry {
                            lsn: 0,
                            origin: duet_storage::Origin::Local,
                            version,
                            ops: vec![duet_storage::Op::Delete(duet_storage::DeleteOp {
                                series: vec![s.key.clone()],
                                start: lo,
                                end: hi,
                            })],
                        })
                    })
                    .collect();
                if !deletes.is_empty() {
                    self.send(connections, &deletes).await?;
                }
            }
            let mut from = start;
            loop {
                if !self.still_running() {
                    return Err(Interrupt::Desired);
                }
                let chunk = {
                    let engine = self.engine.clone();
                    let path = s.key.clone();
                    tokio::task::spawn_blocking(move || {
                        engine.scan_series(&path, from, end, HISTORY_CHUNK)
                    })
                    .await
                    .map_err(|e| Interrupt::Failed(e.to_string()))?
                    .map_err(|e| Interrupt::Failed(e.to_string()))?
                };
                let n = chunk.times.len();
                let filter = &self.filter;
                let entries =
                    transfer::history_entries(&s.device, &s.measurement, s.aligned, &chunk, |v| {
                        filter.sends_origin_instance(v.instance, local)
                    });
                if !entries.is_empty() {
                    self.send(connections, &entries).await?;
                }
                match chunk.times.last() {
                    Some(t) if n == HISTORY_CHUNK && *t < end => from = t + 1,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Ships one batch on the first connection and waits for the peer's answer (history, replay and
    /// heartbeats go one at a time).
    async fn send(
        &mut self,
        connections: &mut [SinkConnection],
        batch: &[LogEntry],
    ) -> Result<(), Interrupt> {
        let Some(conn) = connections.first_mut() else {
            // do-nothing-sink: nothing leaves, progress still moves.
            return Ok(());
        };
        let speaks_duet = self.sends_duet_entries(conn);
        let (type_, body) = self.encode(speaks_duet, batch);
        let req = wrap(type_, body, &self.sink.compressors).await?;
        tokio::time::sleep(self.pacer.reserve(req.body.len())).await;
        transfer(conn, &req, &self.sink.endpoints_display())
            .await
            .map_err(Interrupt::Failed)?;
        if !batch.is_empty() {
            self.metrics.batches_transferred.inc();
            self.metrics.entries_transferred.add(batch.len() as u64);
            self.metrics.bytes_transferred.add(req.body.len() as u64);
        }
        Ok(())
    }

    /// Whether batches on this connection go as Duet entries (a Duet peer, and no `format`='tablet').
    fn sends_duet_entries(&self, connection: &SinkConnection) -> bool {
        connection.peer_parameters.contains_key(DUET_PROTOCOL_KEY) && !self.sink.tablet_format
    }

    /// Encodes a batch as the peer understands it: Duet entries, or IoTDB tablets (counting the
    /// deletes those cannot carry); returns the request type and body.
    fn encode(&self, speaks_duet: bool, batch: &[LogEntry]) -> (i16, Vec<u8>) {
        if speaks_duet {
            (
                transfer::DUET_TRANSFER_ENTRIES,
                transfer::encode_entries(batch),
            )
        } else {
            let (body, skipped) = transfer::encode_iotdb_tablets(batch);
            lock(&self.status).changes_not_sent += skipped as u64;
            (transfer::IOTDB_TABLET_BATCH_V2, body)
        }
    }
}

/// The request for an encoded batch: as it is, or wrapped in IoTDB's compressed request (type 300)
/// with the sink's `compressor` stages in list order. Compressing takes a blocking thread: zstd at a
/// high level or lzma2 spend hundreds of milliseconds on a large batch, which would stall the async
/// workers that serve clients.
async fn wrap(
    type_: i16,
    body: Vec<u8>,
    compressors: &[Compressor],
) -> Result<TPipeTransferReq, Interrupt> {
    if compressors.is_empty() {
        return Ok(TPipeTransferReq::new(REQUEST_VERSION, type_, body));
    }
    let compressors = compressors.to_vec();
    let wrapped = tokio::task::spawn_blocking(move || {
        compress::compress(REQUEST_VERSION, type_, &body, &compressors)
    })
    .await
    .map_err(|e| Interrupt::Failed(format!("cannot compress a batch: {e}")))?
    .map_err(|e| Interrupt::Failed(format!("cannot compress a batch: {e}")))?;
    Ok(TPipeTransferReq::new(
        REQUEST_VERSION,
        transfer::TRANSFER_COMPRESSED,
        wrapped,
    ))
}

/// Entries sent per second of busy time, over roughly the last [`RATE_WINDOW_SECS`]: both sums decay
/// together, so bursts of answers that arrive together do not inflate it (an average of per-batch
/// rates would), and `EstimatedRemainingSeconds` = backlog / rate stays honest under pipelining.
#[derive(Debug, Default)]
struct SendRate {
    entries: f64,
    secs: f64,
}

const RATE_WINDOW_SECS: f64 = 5.0;

impl SendRate {
    fn record(&mut self, entries: usize, secs: f64) {
        let keep = (-secs / RATE_WINDOW_SECS).exp();
        self.entries = self.entries * keep + entries as f64;
        self.secs = self.secs * keep + secs;
    }

    fn per_second(&self) -> f64 {
        if self.secs > 0.0 {
            self.entries / self.secs
        } else {
            0.0
        }
    }
}

/// A batch's answer, with the connection it went on (free again) and the position it covers.
struct Answered {
    connection: Option<SinkConnection>,
    result: Result<(), String>,
    last: Lsn,
    entries: usize,
    started: Instant,
    /// Bytes sent for the batch (0 when nothing left), and when each of its entries was written.
    bytes: usize,
    written_ms: Vec<u64>,
}

type InFlight = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// Sends one request and reads the peer's answer (IoTDB sink semantics, pipe reference §5.4):
/// success, "redirection" and an idempotent conflict count as accepted; anything else is a failure
/// with the receiver's words.
async fn transfer(
    conn: &mut SinkConnection,
    req: &TPipeTransferReq,
    endpoints: &str,
) -> Result<(), String> {
    let resp = conn.connection.pipe_transfer(req).await.map_err(|e| {
        format!(
            "All target servers {endpoints} are not available. (host: {}, port: {}, because: {e})",
            conn.endpoint.0, conn.endpoint.1
        )
    })?;
    match resp.status.code {
        200 | 400 => Ok(()),
        c if c == StatusCode::PipeReceiverIdempotentConflict.code() => Ok(()),
        _ => Err(format!(
            "the receiver {}:{} refused a batch: {}",
            conn.endpoint.0,
            conn.endpoint.1,
            status::describe(&resp.status)
        )),
    }
}

/// A cheap size estimate of an entry for batching.
fn estimate(entry: &LogEntry) -> u64 {
    use duet_proto::types::ColumnValues;
    use duet_storage::Op;
    let mut bytes = 32u64;
    for op in &entry.ops {
        match op {
            Op::Insert(i) => {
                bytes += 16 + i.device.len() as u64 + 9 * i.times.len() as u64;
                for c in &i.columns {
                    bytes += match &c.values {
                        ColumnValues::Boolean(v) => v.len() as u64,
                        ColumnValues::Int32(v) => 4 * v.len() as u64,
                        ColumnValues::Float(v) => 4 * v.len() as u64,
                        ColumnValues::Int64(v) => 8 * v.len() as u64,
                        ColumnValues::Double(v) => 8 * v.len() as u64,
                        ColumnValues::Binary(v) => v.iter().map(|b| 4 + b.len() as u64).sum(),
                    };
                }
            }
            Op::Delete(d) => bytes += 24 + d.series.iter().map(|s| s.len() as u64 + 4).sum::<u64>(),
            Op::Meta(m) => bytes += 8 + m.len() as u64,
        }
    }
    bytes
}

/// Writes a pipe's acknowledged position to the catalog off the sending path (an fsync there would add
/// its latency to replication lag), coalescing updates to at most one every [`PERSIST_EVERY`]. Ends
/// after persisting the last value once the task drops its sender.
pub async fn persist_progress(
    catalog: Arc<Catalog>,
    name: String,
    mut progress: watch::Receiver<Lsn>,
) {
    let mut persisted = *progress.borrow_and_update();
    while progress.changed().await.is_ok() {
        tokio::time::sleep(PERSIST_EVERY).await;
        let acknowledged = *progress.borrow_and_update();
        if acknowledged == persisted {
            continue;
        }
        let (c, n) = (catalog.clone(), name.clone());
        match tokio::task::spawn_blocking(move || c.set_pipe_progress(&n, acknowledged)).await {
            Ok(Ok(())) => persisted = acknowledged,
            // A dropped pipe has no row any more; anything else is worth a warning.
            Ok(Err(duet_catalog::Error::PipeNotExist(_))) => return,
            Ok(Err(e)) => warn!(pipe = %name, "cannot persist progress: {e}"),
            Err(e) => warn!(pipe = %name, "cannot persist progress: {e}"),
        }
    }
}

/// Logs the error of a catalog write a pipe task cannot act on (its in-memory state is already right;
/// only what `SHOW PIPES` shows after a restart may lag), rather than dropping it silently.
/// After [`FAILURES_BEFORE_STOPPED`] failures: marks the pipe stopped by error in the catalog, if the
/// operator wants it running (a pipe stopped by the operator stays so; a dropped one is left alone).
/// A catalog that cannot be read is an error for the caller to log, never a silent skip.
fn mark_stopped_by_error(catalog: &Catalog, name: &str) -> duet_catalog::Result<()> {
    match catalog.pipe(name)? {
        Some(record) if record.state == PipeState::Running => {
            catalog.set_pipe_state(name, PipeState::Stopped, true)
        }
        _ => Ok(()),
    }
}

/// After a success following failures: a pipe stopped by error runs again and its exception is
/// cleared in the catalog. Both writes are tried; the first error (or the read's) is returned.
fn mark_recovered(catalog: &Catalog, name: &str) -> duet_catalog::Result<()> {
    let Some(record) = catalog.pipe(name)? else {
        return Ok(());
    };
    let running = if record.stopped_by_error {
        catalog.set_pipe_state(name, PipeState::Running, false)
    } else {
        Ok(())
    };
    let cleared = if record.exception.is_some() {
        catalog.set_pipe_exception(name, None)
    } else {
        Ok(())
    };
    running.and(cleared)
}

fn logged<T, E: std::fmt::Display>(pipe: &str, what: &str, result: Result<T, E>) {
    if let Err(e) = result {
        warn!(pipe = %pipe, "cannot {what}: {e}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::{mark_recovered, mark_stopped_by_error, Pacer, SendRate};
    use duet_catalog::{Catalog, ImmutableSettings, NewPipe, PipeException, PipeState};
    use std::time::Duration;

    fn catalog_with(pipes: &[(&str, PipeState)]) -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let settings = ImmutableSettings {
            timestamp_precision: "ms".into(),
            cluster_id: None,
        };
        let catalog = Catalog::open(dir.path(), &settings).unwrap();
        for (name, state) in pipes {
            catalog
                .create_pipe(&NewPipe {
                    name: (*name).into(),
                    created_at_ms: 1,
                    state: *state,
                    source: Vec::new(),
                    processor: Vec::new(),
                    sink: vec![("sink".into(), "do-nothing-sink".into())],
                    acknowledged_position: 0,
                    history_done: true,
                })
                .unwrap();
        }
        (dir, catalog)
    }

    #[test]
    fn only_a_running_pipe_is_marked_stopped_by_error_and_recovery_undoes_it() {
        let (_dir, catalog) = catalog_with(&[
            ("running", PipeState::Running),
            ("held", PipeState::Stopped),
        ]);
        let exception = PipeException {
            message: "peer down".into(),
            at_ms: 2,
        };
        for name in ["running", "held"] {
            catalog.set_pipe_exception(name, Some(&exception)).unwrap();
            mark_stopped_by_error(&catalog, name).unwrap();
        }
        let running = catalog.pipe("running").unwrap().unwrap();
        assert_eq!(
            (running.state, running.stopped_by_error),
            (PipeState::Stopped, true)
        );
        let held = catalog.pipe("held").unwrap().unwrap();
        assert_eq!(
            (held.state, held.stopped_by_error),
            (PipeState::Stopped, false)
        );
        // A pipe dropped meanwhile is no error.
        mark_stopped_by_error(&catalog, "dropped").unwrap();
        mark_recovered(&catalog, "dropped").unwrap();

        for name in ["running", "held"] {
            mark_recovered(&catalog, name).unwrap();
        }
        let running = catalog.pipe("running").unwrap().unwrap();
        assert_eq!(
            (running.state, running.stopped_by_error, running.exception),
            (PipeState::Running, false, None)
        );
        // The operator's STOP stays; only the exception goes.
        let held = catalog.pipe("held").unwrap().unwrap();
        assert_eq!((held.state, held.exception), (PipeState::Stopped, None));
    }

    /// A pipe record the catalog cannot read (here a state its schema's CHECK refuses) is an error the task
    /// logs with the pipe's name, not a failure or recovery silently left unrecorded.
    #[test]
    fn a_pipe_record_that_cannot_be_read_is_an_error_not_a_silent_skip() {
        let (dir, catalog) = catalog_with(&[("p", PipeState::Running)]);
        rusqlite::Connection::open(dir.path().join(duet_catalog::CATALOG_FILE_NAME))
            .unwrap()
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE pipes SET state = 'BROKEN' WHERE name = 'p';",
            )
            .unwrap();
        for err in [
            mark_stopped_by_error(&catalog, "p").unwrap_err(),
            mark_recovered(&catalog, "p").unwrap_err(),
        ] {
            assert!(
                matches!(err, duet_catalog::Error::CorruptCatalog(ref m) if m.contains("pipe p")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_pacer_spaces_requests_by_their_bytes() {
        let mut unlimited = Pacer::new(None);
        assert_eq!(unlimited.reserve(1 << 30), Duration::ZERO);
        let mut pacer = Pacer::new(Some(1000));
        // The first request leaves at once and reserves a second; the next waits for most of it.
        assert_eq!(pacer.reserve(1000), Duration::ZERO);
        let wait = pacer.reserve(500);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let wait = pacer.reserve(10);
        assert!(wait > Duration::from_millis(1400), "{wait:?}");
    }

    #[test]
    fn answers_arriving_together_do_not_inflate_the_rate() {
        let mut rate = SendRate::default();
        // Four batches of 100 entries on the wire together, answered within a second.
        rate.record(100, 1.0);
        for _ in 0..3 {
            rate.record(100, 0.0);
        }
        assert!(
            (rate.per_second() - 400.0).abs() < 1e-9,
            "{}",
            rate.per_second()
        );
        // Then a slow stretch: the rate follows it, weighted by time.
        for _ in 0..20 {
            rate.record(10, 1.0);
        }
        assert!(
            rate.per_second() > 10.0 && rate.per_second() < 20.0,
            "{}",
            rate.per_second()
        );
        assert_eq!(SendRate::default().per_second(), 0.0);
    }
}
