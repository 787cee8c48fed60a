//! What `/metrics` and the dashboard report: the server's own instruments (connections, request
//! latencies by kind), and at scrape time the storage's, the pipes' and the process's, encoded in the
//! Prometheus text format by the Prometheus project's Rust client. Pipe metrics carry IoTDB's names
//! and labels (`name`, `creation_time`) so that its users' dashboards and alerts carry over; the
//! instance's own are `duet_*` (docs/metrics.md lists every one).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet_metrics::{Counter, Gauge, Histogram, HistogramSnapshot};
use duet_proto::rpc::Request;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::instance::{Instance, BUILD_INFO, VERSION};

/// The kinds of write requests whose latency is measured apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Tablet,
    Record,
    Sql,
}

impl WriteKind {
    const ALL: [WriteKind; 3] = [WriteKind::Tablet, WriteKind::Record, WriteKind::Sql];

    fn label(self) -> &'static str {
        match self {
            WriteKind::Tablet => "tablet",
            WriteKind::Record => "record",
            WriteKind::Sql => "sql",
        }
    }
}

/// The kinds of queries whose latency is measured apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Sql,
    Raw,
    Last,
    Aggregation,
    GroupBy,
    Fetch,
}

impl QueryKind {
    const ALL: [QueryKind; 6] = [
        QueryKind::Sql,
        QueryKind::Raw,
        QueryKind::Last,
        QueryKind::Aggregation,
        QueryKind::GroupBy,
        QueryKind::Fetch,
    ];

    fn label(self) -> &'static str {
        match self {
            QueryKind::Sql => "sql",
            QueryKind::Raw => "raw",
            QueryKind::Last => "last",
            QueryKind::Aggregation => "aggregation",
            QueryKind::GroupBy => "group_by",
            QueryKind::Fetch => "fetch",
        }
    }
}

/// What a request is, for its latency: known from the RPC alone, or (SQL) from its statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Write(WriteKind),
    Query(QueryKind),
    /// An `executeStatement` family call: its statement decides (see [`SqlKind`]).
    Sql,
    PipeTransfer,
    Other,
}

impl RequestKind {
    pub fn of(request: &Request) -> RequestKind {
        match request {
            Request::InsertTablet(_) | Request::InsertTablets(_) => {
                RequestKind::Write(WriteKind::Tablet)
            }
            Request::InsertRecord(_)
            | Request::InsertStringRecord(_)
            | Request::InsertRecords(_)
            | Request::InsertRecordsOfOneDevice(_)
            | Request::InsertStringRecords(_)
            | Request::InsertStringRecordsOfOneDevice(_) => RequestKind::Write(WriteKind::Record),
            Request::Execute { .. } => RequestKind::Sql,
            Request::RawDataQuery { .. } => RequestKind::Query(QueryKind::Raw),
            Request::LastDataQuery { .. }
            | Request::FastLastDataQueryForOnePrefixPath(_)
            | Request::FastLastDataQueryForOneDevice(_) => RequestKind::Query(QueryKind::Last),
            Request::AggregationQuery { .. } => RequestKind::Query(QueryKind::Aggregation),
            Request::GroupByQueryInterval(_) => RequestKind::Query(QueryKind::GroupBy),
            Request::FetchResults(_) | Request::FetchResultsV1(_) => {
                RequestKind::Query(QueryKind::Fetch)
            }
            Request::PipeTransfer(_) => RequestKind::PipeTransfer,
            _ => RequestKind::Other,
        }
    }
}

/// The first statement of the last SQL call a session ran, as the latency's kind: set by the
/// session while it runs the statement, read once the call is answered.
#[derive(Debug, Default)]
pub struct SqlKind(AtomicU8);

impl SqlKind {
    const NONE: u8 = 0;
    const SELECT: u8 = 1;
    const INSERT: u8 = 2;

    pub fn set_select(&self) {
        self.0.store(Self::SELECT, Ordering::Relaxed);
    }

    pub fn set_insert(&self) {
        self.0.store(Self::INSERT, Ordering::Relaxed);
    }

    /// The kind of the last call, forgotten once read.
    pub fn take(&self) -> Option<RequestKind> {
        match self.0.swap(Self::NONE, Ordering::Relaxed) {
            Self::SELECT => Some(RequestKind::Query(QueryKind::Sql)),
            Self::INSERT => Some(RequestKind::Write(WriteKind::Sql)),
            _ => None,
        }
    }
}

/// The server's own instruments; the storage and the pipes keep theirs.
#[derive(Debug)]
pub struct ServerMetrics {
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    write_latency: [Histogram; 3],
    query_latency: [Histogram; 6],
    pub pipe_receiver_requests: Counter,
    pub pipe_receiver_seconds: Histogram,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
            write_latency: std::array::from_fn(|_| Histogram::latency()),
            query_latency: std::array::from_fn(|_| Histogram::latency()),
            pipe_receiver_requests: Counter::default(),
            pipe_receiver_seconds: Histogram::latency(),
        }
    }
}

impl ServerMetrics {
    /// Records one answered request of `kind` that took `elapsed`.
    pub fn observe(&self, kind: RequestKind, elapsed: Duration) {
        match kind {
            RequestKind::Write(kind) => {
                let i = WriteKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                if let Some(h) = self.write_latency.get(i) {
                    h.observe_duration(elapsed);
                }
            }
            RequestKind::Query(kind) => {
                let i = QueryKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                if let Some(h) = self.query_latency.get(i) {
                    h.observe_duration(elapsed);
                }
            }
            RequestKind::PipeTransfer => {
                self.pipe_receiver_requests.inc();
                self.pipe_receiver_seconds.observe_duration(elapsed);
            }
            RequestKind::Sql | RequestKind::Other => {}
        }
    }

    pub fn write_latency(&self, kind: WriteKind) -> HistogramSnapshot {
        let i = WriteKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.write_latency
            .get(i)
            .map(Histogram::snapshot)
            .unwrap_or_else(|| Histogram::latency().snapshot())
    }
}

/// The process's resources, from `/proc/self` (Linux; zeros elsewhere).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub threads: u64,
    pub start_time_seconds: f64,
}

/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 for every architecture's
/// user-space ABI.
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    pub fn read() -> ProcessStats {
        let mut stats = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces), numbered from 3 (state).
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
                let ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
                stats.cpu_seconds = ticks as f64 / USER_HZ;
                stats.threads = field(20).unwrap_or(0);
                stats.virtual_bytes = field(23).unwrap_or(0);
                let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("btime "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                });
                if let (Some(boot), Some(start)) = (boot, field(22)) {
                    stats.start_time_seconds = boot as f64 + start as f64 / USER_HZ;
                }
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            stats.resident_bytes = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            stats.open_fds = dir.count() as u64;
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            stats.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
                .unwrap_or(0);
        }
        stats
    }
}

/// Encodes everything into the Prometheus text format at each scrape.
pub struct Exporter {
    instance: Arc<Instance>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

/// A registry holding the one collector that reads the instance at each scrape.
pub fn registry(instance: Arc<Instance>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exporter { instance }));
    registry
}

/// Renders the registry in the Prometheus text format (version 0.0.4).
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

type NoExemplar = Option<&'static Exemplar<NoLabelSet, f64>>;

/// One metric family with its samples, written through the descriptor encoder.
struct Family<'e, 'a> {
    encoder: &'e mut DescriptorEncoder<'a>,
}

impl Family<'_, '_> {
    /// One family: its descriptor, then each labelled sample written by `encode_value`.
    fn family<L: EncodeLabelSet, V>(
        &mut self,
        (name, help, metric_type): (&str, &str, MetricType),
        samples: &[(L, V)],
        encode_value: impl Fn(&mut MetricEncoder<'_>, &V) -> Result<(), std::fmt::Error>,
    ) -> Result<(), std::fmt::Error> {
        let mut m = self
            .encoder
            .encode_descriptor(name, help, None, metric_type)?;
        for (labels, v) in samples {
            encode_value(&mut m.encode_family(labels)?, v)?;
        }
        Ok(())
    }

    fn gauge<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: &[(L, V)],
    ) -> Result<(), std::fmt::Error> {
        let descriptor = (name, help, MetricType::Gauge);
        self.family(descriptor, samples, |m, v| m.encode_gauge(v))
    }

    fn counter<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: &[(L, V)],
    ) -> Result<(), std::fmt::Error> {
        let descriptor = (name, help, MetricType::Counter);
        self.family(descriptor, samples, |m, v| {
            m.encode_counter::<NoLabelSet, _, f64>(v, NoExemplar::None)
        })
    }

    fn histogram<L: EncodeLabelSet>(
        &mut self,
        name: &str,
        help: &str,
        samples: &[(L, HistogramSnapshot)],
    ) -> Result<(), std::fmt::Error> {
        let descriptor = (name, help, MetricType::Histogram);
        self.family(descriptor, samples, |m, h| {
            m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
        })
    }

    /// Families of one sample without labels each, in the order given.
    fn unlabelled<const N: usize>(
        &mut self,
        families: [(&str, &str, Unlabelled); N],
    ) -> Result<(), std::fmt::Error> {
        for (name, help, value) in families {
            match value {
                Unlabelled::Gauge(v) => self.gauge(name, help, &[(NONE, v)])?,
                Unlabelled::SignedGauge(v) => self.gauge(name, help, &[(NONE, v)])?,
                Unlabelled::FloatGauge(v) => self.gauge(name, help, &[(NONE, v)])?,
                Unlabelled::Counter(v) => self.counter(name, help, &[(NONE, v)])?,
                Unlabelled::FloatCounter(v) => self.counter(name, help, &[(NONE, v)])?,
                Unlabelled::Histogram(h) => self.histogram(name, help, &[(NONE, h)])?,
            }
        }
        Ok(())
    }
}

/// No labels.
const NONE: [(&str, &str); 0] = [];

/// The value of a metric family without labels, by the family's type. Integers stay integers in
/// the text format, hence a variant for each value type.
enum Unlabelled {
    Gauge(u64),
    SignedGauge(i64),
    FloatGauge(f64),
    Counter(u64),
    FloatCounter(f64),
    Histogram(HistogramSnapshot),
}

impl Collector for Exporter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let instance = &self.instance;
        let mut f = Family {
            encoder: &mut encoder,
        };
        let identity = instance.identity();
        f.gauge(
            "duet_build_info",
            "Always 1: the version, the commit and the cluster id of this instance.",
            &[(
                [
                    ("version", VERSION.to_string()),
                    ("commit", BUILD_INFO.to_string()),
                    ("cluster_id", identity.cluster_id.clone()),
                ],
                1u64,
            )],
        )?;

        // Pipes, with IoTDB's names and labels.
        let reports = instance.pipes.reports().unwrap_or_default();
        let labels = |r: &duet_runtime::PipeReport| {
            [
                ("name", r.name.clone()),
                ("creation_time", r.created_at_ms.to_string()),
            ]
        };
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let backlog_age = |r: &duet_runtime::PipeReport| {
            r.oldest_unsent_ms
                .map_or(0.0, |ms| now_ms.saturating_sub(ms) as f64 / 1000.0)
        };
        type PerPipe<'r> = &'r dyn Fn(&duet_runtime::PipeReport) -> f64;
        #[rustfmt::skip]
        let pipe_gauges: [(&str, &str, PerPipe); 6] = [
            ("pipe_datanode_remaining_event_count", "Entries the pipe has still to send (SHOW PIPES' RemainingEventCount; counted up to 20000).", &|r| r.remaining_events as f64),
            ("pipe_datanode_remaining_time", "Seconds the backlog will take at the pipe's recent send rate (EstimatedRemainingSeconds; -1 when unknown).", &|r| r.remaining_seconds),
            ("pipe_backlog_age_seconds", "How long ago the oldest entry the pipe has still to send was written (0 without a backlog): the replication lag now, growing while the peer is away.", &backlog_age),
            ("pipe_task_status", "The pipe's state as IoTDB numbers it: 0 RUNNING, 1 STOPPED.", &|r| if r.state == "RUNNING" { 0.0 } else { 1.0 }),
            ("pipe_exception", "1 while the pipe shows an exception (its last transfer failed), else 0.", &|r| f64::from(u8::from(!r.exception.is_empty()))),
            ("pipe_send_rate", "Entries the pipe sent per second, smoothed over about 5 s of sending.", &|r| r.rate),
        ];
        for (name, help, value) in pipe_gauges {
            let samples: Vec<_> = reports.iter().map(|r| (labels(r), value(r))).collect();
            f.gauge(name, help, &samples)?;
        }
        type PerPipeCounter<'r> = &'r dyn Fn(&duet_runtime::PipeMetrics) -> u64;
        #[rustfmt::skip]
        let pipe_counters: [(&str, &str, PerPipeCounter); 5] = [
            ("pipe_connector_tablet_transfer", "Entries (IoTDB's tablet events) the peer acknowledged.", &|m| m.entries_transferred.get()),
            ("pipe_connector_batch_transfer", "Non-empty batches the peer acknowledged.", &|m| m.batches_transferred.get()),
            ("pipe_connector_transfer_bytes", "Bytes sent in acknowledged batches (after compression).", &|m| m.bytes_transferred.get()),
            ("pipe_transfer_failures", "Failed attempts to reach or send to the peer.", &|m| m.failures.get()),
            ("pipe_transfer_retries", "Attempts started again after a failure's backoff.", &|m| m.retries.get()),
        ];
        for (name, help, value) in pipe_counters {
            let samples: Vec<_> = reports
                .iter()
                .filter_map(|r| r.metrics.as_ref().map(|m| (labels(r), value(m))))
                .collect();
            f.counter(name, help, &samples)?;
        }
        let lags: Vec<_> = reports
            .iter()
            .filter_map(|r| {
                r.metrics
                    .as_ref()
                    .map(|m| (labels(r), m.lag_seconds.snapshot()))
            })
            .collect();
        f.histogram(
            "pipe_replication_lag_seconds",
            "Per entry sent from the log: from its write to the peer's acknowledgement.",
            &lags,
        )?;
        let server = &instance.metrics;
        #[rustfmt::skip]
        let receiver = [
            ("pipe_receiver_requests", "Pipe transfer requests this instance received (handshakes and heartbeats included).", Unlabelled::Counter(server.pipe_receiver_requests.get())),
            ("pipe_receiver_apply_seconds", "Time to decode, apply and answer one received pipe transfer request.", Unlabelled::Histogram(server.pipe_receiver_seconds.snapshot())),
        ];
        f.unlabelled(receiver)?;

        // Writes and the storage.
        let storage = instance.engine.storage();
        let sm = storage.metrics();
        f.counter(
            "duet_points_written",
            "Points (non-null values) logged, by origin: local clients or a pipe (the receiver's apply rate).",
            &[
                ([("origin", "local")], sm.points_written_local.get()),
                ([("origin", "pipe")], sm.points_written_pipe.get()),
            ],
        )?;
        f.counter(
            "duet_entries_written",
            "Change-log entries logged (one per write request), by origin.",
            &[
                ([("origin", "local")], sm.entries_written_local.get()),
                ([("origin", "pipe")], sm.entries_written_pipe.get()),
            ],
        )?;
        let writes: Vec<_> = WriteKind::ALL
            .iter()
            .map(|k| ([("kind", k.label())], server.write_latency(*k)))
            .collect();
        f.histogram(
            "duet_write_latency_seconds",
            "Client write requests from arrival to answer, by kind (tablet, record, sql).",
            &writes,
        )?;
        let queries: Vec<_> = QueryKind::ALL
            .iter()
            .zip(server.query_latency.iter())
            .map(|(k, h)| ([("kind", k.label())], h.snapshot()))
            .collect();
        f.histogram(
            "duet_query_latency_seconds",
            "Query requests from arrival to answer (the first page, or a further page for fetch), by kind.",
            &queries,
        )?;
        let stats = storage.stats();
        let p = ProcessStats::read();
        use Unlabelled::{Counter, FloatCounter, FloatGauge, Gauge, Histogram, SignedGauge};
        #[rustfmt::skip]
        let instance_wide = [
            ("duet_wal_fsync_seconds", "One fsync of the change log.", Histogram(sm.wal_fsync_seconds.snapshot())),
            ("duet_wal_group_commit_entries", "Entries written together by one group commit.", Histogram(sm.wal_group_entries.snapshot())),
            ("duet_flush_seconds", "One memtable flushed to data files.", Histogram(sm.flush_seconds.snapshot())),
            ("duet_compaction_seconds", "One partition's small files merged.", Histogram(sm.compaction_seconds.snapshot())),
            ("duet_backpressure_seconds", "Time writers waited for the flusher (summed over writers).", FloatCounter(sm.backpressure_seconds.seconds())),
            ("duet_memtable_bytes", "Bytes in the active and frozen memtables.", Gauge(stats.memtable_bytes as u64)),
            ("duet_memtable_points", "Points in the active and frozen memtables.", Gauge(stats.memtable_points as u64)),
            ("duet_frozen_memtables", "Memtables waiting for their flush (writers wait beyond max_frozen_memtables).", Gauge(stats.frozen_memtables as u64)),
            ("duet_compaction_pending_files", "Small data files waiting to be merged (compaction debt).", Gauge(stats.compaction_pending_files as u64)),
            ("duet_data_files", "Parquet data files.", Gauge(stats.data_files as u64)),
            ("duet_data_file_bytes", "Bytes of the Parquet data files.", Gauge(storage.data_file_bytes())),
            ("duet_data_rows", "Rows in the data files.", Gauge(stats.data_rows)),
            ("duet_wal_bytes", "Bytes of the change log on disk.", Gauge(stats.wal_bytes)),
            ("duet_wal_segments", "Segment files of the change log.", Gauge(stats.wal_segments as u64)),
            ("duet_log_head_lsn", "The newest log position.", Gauge(stats.head)),
            ("duet_flushed_lsn", "The log position up to which everything is in data files.", Gauge(stats.flushed_lsn)),
            ("duet_points_dropped_for_type", "Points from a pipe dropped because their series' type lost a conflict.", Counter(instance.engine.points_dropped_for_type())),
            // Sessions and connections.
            ("duet_sessions", "Logged-in sessions.", Gauge(instance.sessions().len() as u64)),
            ("duet_connections", "Open client and pipe connections.", SignedGauge(server.connections_open.get())),
            ("duet_connections_accepted", "Connections accepted.", Counter(server.connections_accepted.get())),
            ("duet_connections_refused", "Connections refused over max_connections or max_unauthenticated_connections.", Counter(server.connections_refused.get())),
            // The process, with the names every Prometheus client library uses.
            ("process_resident_memory_bytes", "Resident memory size in bytes.", Gauge(p.resident_bytes)),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", Gauge(p.virtual_bytes)),
            ("process_cpu_seconds", "User and system CPU time spent in seconds.", FloatCounter(p.cpu_seconds)),
            ("process_open_fds", "Open file descriptors.", Gauge(p.open_fds)),
            ("process_max_fds", "The limit of open file descriptors.", Gauge(p.max_fds)),
            ("process_threads", "OS threads.", Gauge(p.threads)),
            ("process_start_time_seconds", "Start time of the process since the epoch, in seconds.", FloatGauge(p.start_time_seconds)),
        ];
        f.unlabelled(instance_wide)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn process_stats_are_read_from_proc() {
        let p = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(p.resident_bytes > 0);
            assert!(p.open_fds > 0);
            assert!(p.threads >= 1);
            assert!(p.start_time_seconds > 1.0e9);
        }
    }

    #[test]
    fn sql_kind_is_taken_once() {
        let k = SqlKind::default();
        assert_eq!(k.take(), None);
        k.set_insert();
        assert_eq!(k.take(), Some(RequestKind::Write(WriteKind::Sql)));
        assert_eq!(k.take(), None);
    }
}
