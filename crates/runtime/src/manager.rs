//! [`PipeManager`] executes the pipe statements and owns the pipe tasks: it validates parameters,
//! checks the peer by a handshake at `CREATE`/`ALTER`, keeps every pipe's definition, state and
//! progress in the catalog, and runs one [`PipeTask`] per pipe (a handle plus a loop that owns its
//! state), started at `CREATE`, at server start, and again after `ALTER`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use duet_catalog::{Catalog, NewPipe, PipeRecord, PipeState};
use duet_engine::Engine;
use duet_parser::{AlterClause, AlterMode, AlterPipe, Attributes, CreatePipe};
use duet_proto::types::Table;
use duet_storage::LogRead;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{self, SinkKind};
use crate::filter::EntryFilter;
use crate::handshake;
use crate::identity::ServerIdentity;
use crate::params::Parameters;
use crate::task::{Desired, PipeHandle, PipeStatus, PipeTask, StatusRef};
use crate::{PipeError, Result};

/// The columns of `SHOW PIPES`, in IoTDB's order (pipe reference §3.1).
pub const SHOW_PIPES_COLUMNS: [&str; 9] = [
    "ID",
    "CreationTime",
    "State",
    "PipeSource",
    "PipeProcessor",
    "PipeSink",
    "ExceptionMessage",
    "RemainingEventCount",
    "EstimatedRemainingSeconds",
];

/// Entries `SHOW PIPES` reads at most to count a pipe's backlog exactly.
const COUNT_CAP: usize = 20_000;

/// Entry headers read from the log at a time while counting.
const HEADERS_READ_ENTRIES: usize = 4096;

/// Which pipes `SHOW PIPES` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowFilter {
    All,
    /// `SHOW PIPE name`.
    Named(String),
    /// `SHOW PIPES WHERE SINK USED BY name`: pipes whose sink parameters equal that pipe's.
    SinkUsedBy(String),
}

/// One pipe as `/metrics` and the dashboard report it.
#[derive(Debug, Clone)]
pub struct PipeReport {
    pub name: String,
    pub created_at_ms: i64,
    /// `RUNNING` or `STOPPED`, as `SHOW PIPES` shows it.
    pub state: String,
    /// The exception `SHOW PIPES` shows (empty when none).
    pub exception: String,
    /// Entries left to send (`RemainingEventCount`), and whether the count stopped at its cap.
    pub remaining_events: u64,
    pub remaining_capped: bool,
    /// `EstimatedRemainingSeconds` (-1 when unknown: a backlog and no rate yet).
    pub remaining_seconds: f64,
    /// Entries sent per second, smoothed (`SHOW PIPES`' estimate's rate).
    pub rate: f64,
    /// The sink's endpoints (`host:port,…`) and the peer's dashboard port, if it told one.
    pub sink: String,
    pub peer_host: Option<String>,
    pub peer_metrics_port: Option<u16>,
    /// Whether it is sending history or replaying from data files now.
    pub replaying: bool,
    /// When the oldest entry still to send was written (ms since the epoch), if any.
    pub oldest_unsent_ms: Option<u64>,
    /// The task's counters; `None` for a pipe without a task.
    pub metrics: Option<Arc<crate::metrics::PipeMetrics>>,
}

/// Executes pipe statements and runs pipes. Cheap to clone.
#[derive(Clone)]
pub struct PipeManager {
    catalog: Arc<Catalog>,
    identity: ServerIdentity,
    engine: Arc<Engine>,
    local_instance: u64,
    tasks: Arc<Mutex<HashMap<String, PipeHandle>>>,
}

fn params(attributes: &Attributes) -> Parameters {
    Parameters::new(attributes.0.clone())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// IoTDB's `DateTimeUtils.convertLongToDate`: local time with milliseconds, no offset.
fn format_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string(),
        None => ms.to_string(),
    }
}

impl PipeManager {
    pub fn new(
        catalog: Arc<Catalog>,
        identity: ServerIdentity,
        engine: Arc<Engine>,
    ) -> PipeManager {
        let local_instance = crate::instance_number(&identity.cluster_id);
        PipeManager {
            catalog,
            identity,
            engine,
            local_instance,
            tasks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, PipeHandle>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a task for every pipe in the catalog (server start). Cursors are registered first so the
    /// log a pipe still needs is never released.
    pub fn start_all(&self) -> Result<()> {
        for record in self.catalog.pipes()? {
            if let Err(e) = self.spawn(&record) {
                warn!(pipe = %record.name, "cannot start the pipe: {e}");
            }
        }
        Ok(())
    }

    /// Spawns (or respawns) the task of a stored pipe.
    fn spawn(&self, record: &PipeRecord) -> Result<()> {
        let source = config::source(&Parameters::new(record.source.clone()))?;
        let sink = config::sink(&Parameters::new(record.sink.clone()))?;
        let filter = EntryFilter::new(&source)?;
        let storage = self.engine.storage();
        storage
            .register_cursor(&record.name, record.acknowledged_position)
            .map_err(|e| {
                PipeError::Invalid(format!(
                    "cannot pin the change log for pipe {}: {e}",
                    record.name
                ))
            })?;
        let wanted = if record.state == PipeState::Running || record.stopped_by_error {
            Desired::Running
        } else {
            Desired::Stopped
        };
        let (desired_tx, desired_rx) = watch::channel(wanted);
        let status: StatusRef = Arc::new(Mutex::new(PipeStatus {
            acknowledged: record.acknowledged_position,
            exception: record
                .exception
                .as_ref()
                .map(|e| (e.message.clone(), e.at_ms)),
            ..PipeStatus::default()
        }));
        let (progress_tx, progress_rx) = watch::channel(record.acknowledged_position);
        tokio::spawn(crate::task::persist_progress(
            self.catalog.clone(),
            record.name.clone(),
            progress_rx,
        ));
        let pacer = crate::task::Pacer::new(sink.rate_limit_bytes_per_second);
        let metrics = Arc::new(crate::metrics::PipeMetrics::default());
        let task = PipeTask {
            name: record.name.clone(),
            source,
            filter: filter.clone(),
            sink,
            engine: self.engine.clone(),
            catalog: self.catalog.clone(),
            identity: self.identity.clone(),
            local_instance: self.local_instance,
            status: status.clone(),
            desired: desired_rx,
            history_done: record.history_done,
            progress: progress_tx,
            pacer,
            metrics: metrics.clone(),
        };
        let old = self
            .tasks()
            .insert(record.name.clone(), task.spawn(desired_tx));
        if let Some(old) = old {
            old.desired.send_replace(Desired::Dropped);
        }
        info!(pipe = %record.name, ?wanted, "pipe task started");
        Ok(())
    }

    /// Stops a task and waits for it to reach a safe point; returns its last acknowledged position.
    async fn retire(&self, name: &str) -> Option<u64> {
        let handle = self.tasks().remove(name)?;
        handle.desired.send_replace(Desired::Dropped);
        if tokio::time::timeout(Duration::from_secs(30), handle.join)
            .await
            .is_err()
        {
            warn!(pipe = name, "pipe task did not stop within 30 s");
        }
        let acknowledged = crate::task::lock(&handle.status).acknowledged;
        Some(acknowledged)
    }

    /// Validates all three stages; for a thrift sink, also handshakes with the peer so that a pipe that
    /// could never work is refused at once (IoTDB validates the same way since PR #11655).
    async fn validate(
        &self,
        name: &str,
        op: &str,
        source: &Parameters,
        processor: &Parameters,
        sink: &Parameters,
    ) -> Result<()> {
        config::source(source)?;
        config::processor(processor)?;
        let sink = config::sink(sink)?;
        if sink.kind == SinkKind::IotdbThrift {
            let connection = handshake::connect(&self.identity, &sink)
                .await
                .map_err(|e| {
                    PipeError::Invalid(format!(
                        "Failed to {op} pipe {name}, because the sink validation failed: {e}"
                    ))
                })?;
            drop(connection);
        }
        Ok(())
    }

    /// `CREATE PIPE`: a new pipe starts RUNNING, from the current head of the change log; the data
    /// already stored is its history.
    pub async fn create(&self, stmt: &CreatePipe) -> Result<()> {
        let exists_message = || {
            format!(
                "Failed to create pipe {}, the pipe with the same name has been created",
                stmt.name
            )
        };
        if self.catalog.pipe(&stmt.name)?.is_some() {
            return if stmt.if_not_exists {
                Ok(())
            } else {
                Err(PipeError::Invalid(exists_message()))
            };
        }
        let source = stmt.source.as_ref().map(params).unwrap_or_default();
        let processor = stmt.processor.as_ref().map(params).unwrap_or_default();
        let sink = params(&stmt.sink);
        self.validate(&stmt.name, "create", &source, &processor, &sink)
            .await?;
        let history = config::source(&source)?.history;
        let pipe = NewPipe {
            name: stmt.name.clone(),
            created_at_ms: now_ms(),
            state: PipeState::Running,
            source: source.0,
            processor: processor.0,
            sink: sink.0,
            acknowledged_position: self.engine.storage().head(),
            history_done: !history,
        };
        match self.catalog.create_pipe(&pipe) {
            Ok(()) => {}
            // Another session created it while we were handshaking.
            Err(duet_catalog::Error::PipeExists(_)) if stmt.if_not_exists => return Ok(()),
            Err(duet_catalog::Error::PipeExists(_)) => {
                return Err(PipeError::Invalid(exists_message()))
            }
            Err(e) => return Err(e.into()),
        }
        let record = self.existing("create", &stmt.name)?;
        self.spawn(&record)
    }

    fn existing(&self, op: &'static str, name: &str) -> Result<PipeRecord> {
        self.catalog.pipe(name)?.ok_or_else(|| PipeError::NotExist {
            op,
            name: name.to_string(),
        })
    }

    /// `ALTER PIPE`: MODIFY merges keys, REPLACE swaps the stage's map; state and progress are kept.
    pub async fn alter(&self, stmt: &AlterPipe) -> Result<()> {
        let record = match self.catalog.pipe(&stmt.name)? {
            Some(r) => r,
            None if stmt.if_exists => return Ok(()),
            None => {
                return Err(PipeError::NotExist {
                    op: "alter",
                    name: stmt.name.clone(),
                })
            }
        };
        let apply = |old: Vec<(String, String)>, clause: &Option<AlterClause>| -> Parameters {
            let old = Parameters::new(old);
            match clause {
                None => old,
                Some(AlterClause {
                    mode: AlterMode::Modify,
                    attributes,
                }) => old.modified_by(&params(attributes)),
                Some(AlterClause {
                    mode: AlterMode::Replace,
                    attributes,
                }) => params(attributes),
            }
        };
        let source = apply(record.source, &stmt.source);
        let processor = apply(record.processor, &stmt.processor);
        let sink = apply(record.sink, &stmt.sink);
        self.validate(&stmt.name, "alter", &source, &processor, &sink)
            .await?;
        // The old task stops at a safe point; its progress carries over to the new one.
        if let Some(acknowledged) = self.retire(&stmt.name).await {
            self.catalog.set_pipe_progress(&stmt.name, acknowledged)?;
        }
        self.catalog
            .replace_pipe_parameters(&stmt.name, &source.0, &processor.0, &sink.0)?;
        let record = self.existing("alter", &stmt.name)?;
        self.spawn(&record)
    }

    /// `START PIPE`: RUNNING, past exceptions cleared (as IoTDB does), and an immediate retry.
    pub fn start(&self, name: &str) -> Result<()> {
        let record = self.existing("start", name)?;
        self.catalog
            .set_pipe_state(name, PipeState::Running, false)?;
        self.catalog.set_pipe_exception(name, None)?;
        let running = self.tasks().get(name).map(|h| {
            h.status().exception = None;
            h.desired.send_replace(Desired::Running);
        });
        if running.is_none() {
            let record = PipeRecord {
                state: PipeState::Running,
                stopped_by_error: false,
                exception: None,
                ..record
            };
            self.spawn(&record)?;
        }
        Ok(())
    }

    /// `STOP PIPE`: STOPPED by the user; the task pauses and keeps its position.
    pub fn stop(&self, name: &str) -> Result<()> {
        self.existing("stop", name)?;
        self.catalog
            .set_pipe_state(name, PipeState::Stopped, false)?;
        if let Some(h) = self.tasks().get(name) {
            h.desired.send_replace(Desired::Stopped);
        }
        Ok(())
    }

    /// `DROP PIPE`: ends the task and releases the log it pinned.
    pub async fn drop_pipe(&self, if_exists: bool, name: &str) -> Result<()> {
        let existed = self.catalog.drop_pipe(name)?;
        self.retire(name).await;
        self.engine.storage().drop_cursor(name);
        if !existed && !if_exists {
            return Err(PipeError::NotExist {
                op: "drop",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Stops every task at a safe point (server shutdown); their progress is persisted.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.tasks().keys().cloned().collect();
        for name in names {
            if let Some(acknowledged) = self.retire(&name).await {
                if let Err(e) = self.catalog.set_pipe_progress(&name, acknowledged) {
                    warn!(pipe = %name, "cannot persist progress at shutdown: {e}");
                }
            }
        }
    }

    /// A pipe's live status (tests, diagnostics).
    pub fn status(&self, name: &str) -> Option<PipeStatus> {
        self.tasks().get(name).map(|h| h.status().clone())
    }

    /// The number of log entries after `acknowledged` that the pipe will send, and whether the count
    /// stopped at the cap. Only the entries' headers are read where they decide (the usual pipe over
    /// everything); the rest are decoded one at a time.
    fn remaining(&self, filter: &EntryFilter, acknowledged: u64) -> (u64, bool) {
        let (count, capped, _) = self.backlog(filter, acknowledged);
        (count, capped)
    }

    /// [`PipeManager::remaining`], plus when the oldest entry to send was written (ms since the
    /// epoch; `None` when nothing is to be sent, or the log it is in was released).
    fn backlog(&self, filter: &EntryFilter, mut acknowledged: u64) -> (u64, bool, Option<u64>) {
        let storage = self.engine.storage();
        let head = storage.head();
        let (mut count, mut read) = (0u64, 0usize);
        let mut oldest = None;
        while acknowledged < head && read < COUNT_CAP {
            match storage.read_log_headers(acknowledged, HEADERS_READ_ENTRIES) {
                Ok(LogRead::Entries(headers)) if !headers.is_empty() => {
                    read += headers.len();
                    for header in headers {
                        let sent = match filter.decide_by_header(&header) {
                            Some(sent) => sent,
                            None => match storage.read_log(header.lsn - 1, 1) {
                                Ok(LogRead::Entries(e)) => {
                                    e.first().is_some_and(|e| filter.apply(e).is_some())
                                }
                                // Released meanwhile: it will be replayed, so it counts.
                                _ => true,
                            },
                        };
                        acknowledged = header.lsn;
                        count += u64::from(sent);
                        if sent && oldest.is_none() {
                            oldest = Some(header.version.wall_clock_ms());
                        }
                    }
                }
                // Released log: every entry up to the head will be replayed.
                Ok(LogRead::Truncated { .. }) => {
                    return (count + (head - acknowledged), false, oldest)
                }
                _ => break,
            }
        }
        (count, acknowledged < head, oldest)
    }

    /// Every pipe's state, backlog and counters, sorted by name (for `/metrics` and the dashboard).
    /// The backlog is counted as `SHOW PIPES` counts it (up to its cap).
    pub fn reports(&self) -> Result<Vec<PipeReport>> {
        let mut reports = Vec::new();
        for p in self.catalog.pipes()? {
            let live = self
                .tasks()
                .get(&p.name)
                .map(|h| (h.status().clone(), h.filter.clone(), h.metrics.clone()));
            let sink = crate::config::sink(&Parameters::new(p.sink.clone())).ok();
            let sink_display = sink
                .as_ref()
                .map(|s| {
                    s.endpoints
                        .iter()
                        .map(|(h, p)| format!("{h}:{p}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            // The peer's dashboard is on the host the pipe reaches it at.
            let peer_host = sink
                .as_ref()
                .and_then(|s| s.endpoints.first())
                .map(|(host, _)| host.clone());
            let mut report = PipeReport {
                name: p.name.clone(),
                created_at_ms: p.created_at_ms,
                state: p.state.as_str().to_string(),
                exception: p
                    .exception
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
                remaining_events: 0,
                remaining_capped: false,
                remaining_seconds: 0.0,
                rate: 0.0,
                sink: sink_display,
                peer_host,
                peer_metrics_port: None,
                replaying: false,
                oldest_unsent_ms: None,
                metrics: None,
            };
            if let Some((status, filter, metrics)) = live {
                let (count, capped, oldest) = self.backlog(&filter, status.acknowledged);
                report.oldest_unsent_ms = oldest;
                report.remaining_events = count;
                report.remaining_capped = capped;
                report.remaining_seconds = if count == 0 {
                    0.0
                } else if status.rate > 0.0 {
                    count as f64 / status.rate
                } else {
                    -1.0
                };
                report.rate = status.rate;
                report.exception = status
                    .exception
                    .as_ref()
                    .map(|(m, _)| m.clone())
                    .unwrap_or_default();
                report.peer_metrics_port = status.peer_metrics_port;
                report.replaying = status.replaying.is_some();
                report.metrics = Some(metrics);
            }
            reports.push(report);
        }
        Ok(reports)
    }

    /// `SHOW PIPES` / `SHOW PIPE name`: rows sorted by name.
    pub fn show(&self, filter: &ShowFilter) -> Result<Table> {
        /// The source parameters as given, plus `inclusion.effective`: what the pipe synchronises.
        fn source_shown(source: &[(String, String)]) -> String {
            let mut pairs = source.to_vec();
            if let Ok(config) = crate::config::source(&Parameters::new(source.to_vec())) {
                pairs.push((
                    "inclusion.effective".to_string(),
                    config.effective_inclusion(),
                ));
            }
            Parameters::new(pairs).display()
        }
        let pipes = self.catalog.pipes()?;
        let sink_of = |r: &PipeRecord| Parameters::new(r.sink.clone()).display();
        let selected: Vec<&PipeRecord> = match filter {
            ShowFilter::All => pipes.iter().collect(),
            ShowFilter::Named(name) => pipes.iter().filter(|p| &p.name == name).collect(),
            ShowFilter::SinkUsedBy(name) => match pipes.iter().find(|p| &p.name == name) {
                Some(reference) => {
                    let wanted = sink_of(reference);
                    pipes.iter().filter(|p| sink_of(p) == wanted).collect()
                }
                None => Vec::new(),
            },
        };
        let mut rows = Vec::with_capacity(selected.len());
        for p in selected {
            let live = self
                .tasks()
                .get(&p.name)
                .map(|h| (h.status().clone(), h.filter.clone()));
            let (remaining, seconds, exception) = match live {
                Some((status, filter)) => {
                    let (count, capped) = self.remaining(&filter, status.acknowledged);
                    let remaining = if capped {
                        format!("{count}+")
                    } else {
                        count.to_string()
                    };
                    let seconds = if count == 0 {
                        "0.00".to_string()
                    } else if status.rate > 0.0 {
                        format!("{:.2}", count as f64 / status.rate)
                    } else {
                        "-1.00".to_string()
                    };
                    let mut exception = status
                        .exception
                        .as_ref()
                        .map(|(m, at)| format!("{}, {m}", format_time(*at)))
                        .unwrap_or_default();
                    if let Some(note) = &status.replaying {
                        if !exception.is_empty() {
                            exception.push_str("; ");
                        }
                        exception.push_str(note);
                    }
                    (remaining, seconds, exception)
                }
                None => (
                    "0".to_string(),
                    "0.00".to_string(),
                    p.exception
                        .as_ref()
                        .map(|e| format!("{}, {}", format_time(e.at_ms), e.message))
                        .unwrap_or_default(),
                ),
            };
            rows.push(vec![
                p.name.clone(),
                format_time(p.created_at_ms),
                p.state.as_str().to_string(),
                source_shown(&p.source),
                Parameters::new(p.processor.clone()).display(),
                sink_of(p),
                exception,
                remaining,
                seconds,
            ]);
        }
        Ok(Table::text(&SHOW_PIPES_COLUMNS, rows))
    }
}
