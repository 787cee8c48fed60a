//! Validation of a pipe's three parameter sets into typed configurations, with IoTDB's messages where
//! IoTDB has one (pipe reference §2) and a clear "not supported" where Duet lacks the feature.

use crate::params::Parameters;
use crate::{PipeError, Result};
use duet_proto::pipe_compressed::{
    Compressor, MAX_COMPRESSION_STAGES, ZSTD_DEFAULT_LEVEL, ZSTD_MAX_LEVEL, ZSTD_MIN_LEVEL,
};

/// What the source captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// IoTDB path pattern of the series to capture (`root.**` by default).
    pub path: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub history: bool,
    pub realtime: bool,
    pub capture_inserts: bool,
    pub capture_deletes: bool,
    /// Which schema changes travel (`schema.database`, `schema.timeseries`, `schema.ttl`).
    pub capture_schema: SchemaCapture,
    /// Forward entries that arrived through a pipe (false in double-living mode).
    pub forwarding_pipe_requests: bool,
    pub double_living: bool,
}

/// The schema changes a pipe sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaCapture {
    pub database: bool,
    pub timeseries: bool,
    pub ttl: bool,
    /// `auth`: user accounts, roles and grants.
    pub auth: bool,
    /// `schema.timeseries.template`: device templates, where they are set and activated.
    pub template: bool,
}

impl SchemaCapture {
    pub fn any(&self) -> bool {
        self.database || self.timeseries || self.ttl || self.auth || self.template
    }
}

impl SourceConfig {
    /// What the pipe actually synchronises, in IoTDB's inclusion terms, for `SHOW PIPES`: an
    /// `inclusion` of `all` takes data and schema (users are not synchronised yet), and without
    /// `inclusion` a pipe takes inserts only, as IoTDB's default.
    pub fn effective_inclusion(&self) -> String {
        let items = [
            (self.capture_inserts, "data.insert"),
            (self.capture_deletes, "data.delete"),
            (self.capture_schema.database, "schema.database"),
            (
                self.capture_schema.timeseries && self.capture_schema.template,
                "schema.timeseries",
            ),
            (
                self.capture_schema.timeseries && !self.capture_schema.template,
                "schema.timeseries.ordinary",
            ),
            (
                self.capture_schema.template && !self.capture_schema.timeseries,
                "schema.timeseries.template",
            ),
            (self.capture_schema.ttl, "schema.ttl"),
            (self.capture_schema.auth, "auth"),
        ];
        items
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Sets the items of IoTDB's inclusion tree that `item` names to `on`; `Ok(false)` for an item
/// that is not in the tree.
fn include(
    item: &str,
    on: bool,
    (inserts, deletes): (&mut bool, &mut bool),
    schema: &mut SchemaCapture,
) -> Result<bool> {
    match item {
        "all" => {
            (*inserts, *deletes) = (on, on);
            *schema = SchemaCapture {
                database: on,
                timeseries: on,
                ttl: on,
                auth: on,
                template: on,
            };
        }
        "data" => (*inserts, *deletes) = (on, on),
        "data.insert" => *inserts = on,
        "data.delete" => *deletes = on,
        "schema" => {
            *schema = SchemaCapture {
                database: on,
                timeseries: on,
                ttl: on,
                template: on,
                auth: schema.auth,
            }
        }
        "schema.database" => schema.database = on,
        "schema.timeseries" => {
            schema.timeseries = on;
            schema.template = on;
        }
        "schema.timeseries.ordinary" => schema.timeseries = on,
        "schema.timeseries.template" => schema.template = on,
        "schema.ttl" => schema.ttl = on,
        // Accounts, roles and grants travel together under `auth`; `auth.role` alone selects
        // nothing apart (as before roles existed).
        "auth" | "auth.user" => schema.auth = on,
        "auth.role" => {}
        "schema.timeseries.view" => {
            // Excluding what is never sent is fine; including it is not supported yet.
            if on {
                return Err(PipeError::Unsupported(format!(
                    "inclusion '{item}' is not supported by Duet yet: Duet has no views"
                )));
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Which sink implementation a pipe uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// IoTDB's thrift sink and its aliases: ships to a peer's client port.
    IotdbThrift,
    /// Discards everything (useful for tests and measuring the source).
    DoNothing,
}

/// Where and how the sink ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub kind: SinkKind,
    /// Target endpoints, tried in order.
    pub endpoints: Vec<(String, u16)>,
    pub username: String,
    pub password: String,
    pub batch_enable: bool,
    pub batch_max_delay_ms: u64,
    pub batch_size_bytes: u64,
    /// Bytes per second; `None` for unlimited.
    pub rate_limit_bytes_per_second: Option<u64>,
    /// `compressor`: applied in order to every request (IoTDB's compressed request, type 300).
    pub compressors: Vec<Compressor>,
    pub mark_as_pipe_request: bool,
    /// Batches on the wire at once (each on its own connection), acknowledged in log order: 1 for
    /// the `…-sync-sink` plugins, [`ASYNC_IN_FLIGHT`] otherwise. Only a Duet receiver gets more
    /// than one (it applies batches in any order by the version rule; an IoTDB receiver might not).
    pub max_in_flight: usize,
    /// `format`='tablet': send IoTDB tablets even to a Duet receiver (no versions or deletions travel;
    /// the receiver orders writes by arrival, so one batch at a time).
    pub tablet_format: bool,
    /// TLS to the receiver (`iotdb-thrift-ssl-sink`, or `ssl.enable`=`true`); plain TCP when `None`.
    pub tls: Option<SinkTls>,
}

/// The PEM files or PKCS#12 stores of a TLS sink. They are read at each connection, so a replaced certificate is
/// picked up by the next retry and a missing file is the pipe's exception, not a start failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkTls {
    /// CA the receiver's certificate must chain to (`ssl.ca-file`, or IoTDB's
    /// `ssl.trust-store-path` when it is a PEM file); the system's CA bundle when absent.
    pub ca_file: Option<std::path::PathBuf>,
    /// This sender's certificate chain and key for mutual TLS (`ssl.cert-file` + `ssl.key-file`,
    /// or IoTDB's `ssl.key-store-path` as one PEM file holding both).
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    /// The passwords of IoTDB's `ssl.trust-store-path` and `ssl.key-store-path` when those are
    /// PKCS#12 stores (`ssl.trust-store-pwd`, `ssl.key-store-pwd`).
    pub trust_store_password: Option<duet_proto::tls::StorePassword>,
    pub key_store_password: Option<duet_proto::tls::StorePassword>,
    /// The name the receiver's certificate must carry (`ssl.server-name`); the endpoint's host
    /// when absent.
    pub server_name: Option<String>,
}

impl SinkTls {
    /// The client configuration, read from the files now.
    pub fn client_tls(
        &self,
    ) -> std::result::Result<duet_proto::tls::ClientTls, duet_proto::tls::TlsError> {
        let config = duet_proto::tls::client_config(&duet_proto::tls::ClientTlsFiles {
            ca: self.ca_file.clone(),
            cert: self.cert_file.clone(),
            key: self.key_file.clone(),
            ca_password: self.trust_store_password.clone(),
            key_password: self.key_store_password.clone(),
        })?;
        Ok(duet_proto::tls::ClientTls {
            config,
            server_name: self.server_name.clone(),
        })
    }
}

/// Batches an asynchronous thrift sink keeps on the wire: enough that a large batch being applied
/// does not hold the next ones back, few enough to bound memory (each is at most `batch.size-bytes`).
pub const ASYNC_IN_FLIGHT: usize = 4;

impl SinkConfig {
    /// `host:port` list as IoTDB prints it in exception messages.
    pub fn endpoints_display(&self) -> String {
        let list = self
            .endpoints
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("[{list}]")
    }
}

fn invalid(message: impl Into<String>) -> PipeError {
    PipeError::Invalid(message.into())
}

fn boolean(params: &Parameters, key: &str, default: bool) -> Result<bool> {
    match params.get(key) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(format!(
            "The value of '{key}' must be 'true' or 'false', but got '{v}'."
        ))),
    }
}

fn parse_time(key: &str, value: &str) -> Result<i64> {
    if value.eq_ignore_ascii_case("now") {
        return Ok(chrono::Utc::now().timestamp_millis());
    }
    if let Ok(v) = value.trim().parse::<i64>() {
        return Ok(v);
    }
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| invalid(format!("The value of '{key}' must be a long timestamp, an ISO-8601 time or 'now', but got '{value}'.")))
}

const SOURCE_PLUGINS: [&str; 2] = ["iotdb-source", "iotdb-extractor"];
const PROCESSOR_PLUGINS: [&str; 1] = ["do-nothing-processor"];
const IOTDB_PROCESSORS: [&str; 6] = [
    "tumbling-time-sampling-processor",
    "sdt-sampling-processor",
    "changing-value-sampling-processor",
    "throwing-exception-processor",
    "aggregate-processor",
    "count-point-processor",
];
const THRIFT_SINKS: [&str; 8] = [
    "iotdb-thrift-sink",
    "iotdb-thrift-ssl-sink",
    "iotdb-thrift-ssl-connector",
    "iotdb-thrift-sync-sink",
    "iotdb-thrift-async-sink",
    "iotdb-thrift-connector",
    "iotdb-thrift-sync-connector",
    "iotdb-thrift-async-connector",
];
const NOTHING_SINKS: [&str; 2] = ["do-nothing-sink", "do-nothing-connector"];
const IOTDB_SINKS: [&str; 9] = [
    "iotdb-air-gap-sink",
    "iotdb-legacy-pipe-sink",
    "write-back-sink",
    "websocket-sink",
    "opc-ua-sink",
    "opc-da-sink",
    "subscription-sink",
    "iotdb-air-gap-connector",
    "websocket-connector",
];

/// The source keys Duet reads, and IoTDB source keys it accepts without acting on them (so that an
/// IoTDB user's pipe statement is taken as it is). Compared after prefix reduction.
const SOURCE_KEYS: &[&str] = &[
    "source",
    "extractor",
    "user",
    "username",
    "password",
    "mode.double-living",
    "forwarding-pipe-requests",
    "capture.tree",
    "capture.table",
    "mode.snapshot",
    "mode.streaming",
    "mode.strict",
    "inclusion",
    "inclusion.exclusion",
    "exclusion",
    "path",
    "pattern",
    "pattern.format",
    "start-time",
    "end-time",
    "history.enable",
    "history.start-time",
    "history.end-time",
    "history.loose-range",
    "realtime.enable",
    "realtime.mode",
    "realtime.loose-range",
    "mods",
    "mods.enable",
    "skipif",
    "database",
    "database-name",
    "table",
    "table-name",
];

/// The sink keys Duet reads, and IoTDB sink keys it accepts without acting on them.
const SINK_KEYS: &[&str] = &[
    "sink",
    "connector",
    "ip",
    "host",
    "port",
    "node-urls",
    "user",
    "username",
    "password",
    "batch.enable",
    "batch.max-delay-ms",
    "batch.max-delay-seconds",
    "batch.size-bytes",
    "compressor",
    "compressor.zstd.level",
    "load-balance-strategy",
    "ssl.enable",
    "ssl.trust-store-path",
    "ssl.trust-store-pwd",
    "ssl.key-store-path",
    "ssl.key-store-pwd",
    "ssl.ca-file",
    "ssl.cert-file",
    "ssl.key-file",
    "ssl.server-name",
    "format",
    "rate-limit-bytes-per-second",
    "mark-as-pipe-request",
    "mark-as-general-write-request",
    "exception.conflict.resolve-strategy",
    "exception.conflict.retry-max-time-seconds",
    "exception.conflict.record-ignored-data",
    "exception.others.retry-max-time-seconds",
    "exception.others.record-ignored-data",
    "skipif",
];

const PROCESSOR_KEYS: &[&str] = &["processor"];

/// IoTDB ignores keys it does not know (its `PipeParameterValidator` only checks the keys a plugin
/// asks for), so a misspelled key silently falls back to a default, or fails a check about another
/// key (`'sink.prot'` got "please check the specified 'host':'port' or 'node-urls'"). Duet refuses a
/// key that is a likely misspelling of a known one, naming that key, and accepts other unknown keys
/// as IoTDB does, with a warning in the log.
fn check_keys(stage: &str, params: &Parameters, known: &[&str]) -> Result<()> {
    if let Some((written, suggestion)) = params.misspelled_key(known) {
        return Err(invalid(format!(
            "The {stage} parameter '{written}' is unknown; did you mean '{suggestion}'?"
        )));
    }
    for key in params.unknown_keys(known) {
        tracing::warn!(
            stage,
            key = %key,
            "a pipe parameter Duet does not know is ignored, as IoTDB ignores unknown parameters"
        );
    }
    Ok(())
}

fn check_duplicates(stage: &str, params: &Parameters) -> Result<()> {
    match params.duplicate_key() {
        Some(key) => Err(invalid(format!(
            "The {stage} parameter '{key}' is specified more than once."
        ))),
        None => Ok(()),
    }
}

/// Validates the source parameters.
pub fn source(params: &Parameters) -> Result<SourceConfig> {
    check_duplicates("source", params)?;
    check_keys("source", params, SOURCE_KEYS)?;
    for key in ["source", "extractor"] {
        if let Some(plugin) = params.get(key) {
            if !SOURCE_PLUGINS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(plugin))
            {
                return Err(invalid(format!("Failed to create or alter pipe, the source plugin '{plugin}' does not exist or is not supported by Duet (supported: iotdb-source).")));
            }
        }
    }
    if params.contains("user") && params.contains("username") {
        return Err(invalid(
            "The source parameters 'user' and 'username' cannot be specified at the same time.",
        ));
    }
    let double_living = boolean(params, "mode.double-living", false)?;
    let forwarding = boolean(params, "forwarding-pipe-requests", true)?;
    if double_living && params.contains("forwarding-pipe-requests") && forwarding {
        return Err(invalid(
            "forwarding-pipe-requests can not be specified to true when double living is enabled",
        ));
    }
    for model in ["tree", "table"] {
        let key = format!("capture.{model}");
        if double_living && params.contains(&key) && !boolean(params, &key, true)? {
            return Err(invalid(format!(
                "capture.{model} can not be specified to false when double living is enabled"
            )));
        }
    }
    if params.contains("capture.table") && boolean(params, "capture.table", false)? {
        return Err(PipeError::Unsupported(
            "capture.table=true is not supported: Duet has only the tree model".into(),
        ));
    }
    if boolean(params, "mode.snapshot", false)? {
        return Err(PipeError::Unsupported(
            "mode.snapshot=true is not supported by Duet".into(),
        ));
    }
    let (mut capture_inserts, mut capture_deletes) = (false, false);
    let mut capture_schema = SchemaCapture::default();
    let inclusion = params.get("inclusion").unwrap_or("data.insert");
    let exclusion = params
        .get("inclusion.exclusion")
        .or_else(|| params.get("exclusion"))
        .unwrap_or("");
    let lists = [
        (
            inclusion,
            true,
            "The 'inclusion' string contains illegal path.",
        ),
        (
            exclusion,
            false,
            "The 'inclusion.exclusion' string contains illegal path.",
        ),
    ];
    for (list, included, illegal) in lists {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let item = item.to_ascii_lowercase();
            let captures = (&mut capture_inserts, &mut capture_deletes);
            if !include(&item, included, captures, &mut capture_schema)? {
                return Err(invalid(illegal));
            }
        }
    }
    if !capture_inserts && !capture_deletes && !capture_schema.any() {
        return Err(invalid("The pipe inclusion content can't be empty."));
    }
    let path = match (params.get("path"), params.get("pattern")) {
        (Some(path), _) => path.trim().to_string(),
        // The legacy prefix pattern `root.a` means everything under root.a.
        (None, Some(prefix)) => {
            let prefix = prefix.trim().trim_end_matches('.');
            if prefix == "root" {
                "root.**".to_string()
            } else {
                format!("{prefix}.**")
            }
        }
        (None, None) => "root.**".to_string(),
    };
    if path != "root" && !path.starts_with("root.") {
        return Err(invalid(format!(
            "Pattern \"{path}\" is illegal: a path pattern must start with root."
        )));
    }
    let start_time = match params
        .get("start-time")
        .or_else(|| params.get("history.start-time"))
    {
        Some(v) => Some(parse_time("start-time", v)?),
        None => None,
    };
    let end_time = match params
        .get("end-time")
        .or_else(|| params.get("history.end-time"))
    {
        Some(v) => Some(parse_time("end-time", v)?),
        None => None,
    };
    if let (Some(s), Some(e)) = (start_time, end_time) {
        if s > e {
            return Err(invalid(format!(
                "The start time {s} should be earlier than or equal to the end time {e}."
            )));
        }
    }
    if let Some(mode) = params.get("realtime.mode") {
        if !["hybrid", "stream", "log", "file", "batch", "forced-log"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mode))
        {
            return Err(invalid(format!("The value of 'realtime.mode' must be one of hybrid, stream, log, file, batch, forced-log, but got '{mode}'.")));
        }
    }
    boolean(params, "mode.streaming", true)?;
    boolean(params, "mode.strict", true)?;
    let history = boolean(params, "history.enable", true)?;
    let realtime = boolean(params, "realtime.enable", true)?;
    Ok(SourceConfig {
        path,
        start_time,
        end_time,
        history,
        realtime,
        capture_inserts,
        capture_deletes,
        capture_schema,
        forwarding_pipe_requests: forwarding && !double_living,
        double_living,
    })
}

/// Validates the processor parameters.
pub fn processor(params: &Parameters) -> Result<()> {
    check_duplicates("processor", params)?;
    check_keys("processor", params, PROCESSOR_KEYS)?;
    if let Some(plugin) = params.get("processor") {
        let lower = plugin.to_ascii_lowercase();
        if PROCESSOR_PLUGINS.contains(&lower.as_str()) {
            return Ok(());
        }
        if IOTDB_PROCESSORS.contains(&lower.as_str()) {
            return Err(PipeError::Unsupported(format!("The processor plugin '{plugin}' is not supported by Duet yet (supported: do-nothing-processor).")));
        }
        return Err(invalid(format!(
            "Failed to create or alter pipe, the processor plugin '{plugin}' does not exist."
        )));
    }
    Ok(())
}

/// Parses `host:port` into an endpoint, with IoTDB's message for anything malformed.
fn bad_node_urls() -> PipeError {
    invalid("Error occurred while parsing node urls from target servers, please check the specified 'host':'port' or 'node-urls'")
}

fn endpoint(host: &str, port: &str) -> Result<(String, u16)> {
    let bad = bad_node_urls;
    let host = host.trim();
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.trim().parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn positive(params: &Parameters, key: &str) -> Result<Option<u64>> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(u64::try_from(n).unwrap_or(u64::MAX))),
            _ => Err(invalid(format!(
                "The value of '{key}' must be a positive integer, but got '{v}'."
            ))),
        },
    }
}

/// `compressor` (a comma list, applied in order) with `compressor.zstd.level`, checked as IoTDB's
/// `IoTDBSink.validate` does: the level first, then each name, then the count.
fn compressors(params: &Parameters) -> Result<Vec<Compressor>> {
    let zstd_level = match params.get("compressor.zstd.level") {
        None => ZSTD_DEFAULT_LEVEL,
        Some(v) => v.trim().parse::<i32>().map_err(|_| {
            invalid(format!(
                "The value of 'compressor.zstd.level' must be an integer, but got '{v}'."
            ))
        })?,
    };
    if !(ZSTD_MIN_LEVEL..=ZSTD_MAX_LEVEL).contains(&zstd_level) {
        return Err(invalid(format!(
            "Zstd compression level should be in the range [{ZSTD_MIN_LEVEL}, {ZSTD_MAX_LEVEL}], but got {zstd_level}."
        )));
    }
    let mut compressors = Vec::new();
    for name in params.get("compressor").unwrap_or("").split(',') {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let compressor = Compressor::from_name(&name, zstd_level).ok_or_else(|| {
            invalid(format!(
                "Compressor should be one of {:?}, but got {name}.",
                Compressor::NAMES
            ))
        })?;
        compressors.push(compressor);
    }
    if compressors.len() > MAX_COMPRESSION_STAGES {
        return Err(invalid(format!(
            "The number of compressors should be less than or equal to {MAX_COMPRESSION_STAGES}, but got {}.",
            compressors.len()
        )));
    }
    Ok(compressors)
}

/// The TLS settings of a sink: on for the SSL plugin or `ssl.enable`=`true`. The files are only
/// named here; the handshake reads them.
fn sink_tls(params: &Parameters, ssl_plugin: bool) -> Result<Option<SinkTls>> {
    let enabled = boolean(params, "ssl.enable", ssl_plugin)?;
    let path = |key: &str| params.get(key).map(|v| std::path::PathBuf::from(v.trim()));
    let password = |key: &str| {
        params
            .get(key)
            .map(|v| duet_proto::tls::StorePassword(v.to_string()))
    };
    if !enabled {
        if let Some(key) = [
            "ssl.ca-file",
            "ssl.cert-file",
            "ssl.key-file",
            "ssl.key-store-path",
            "ssl.trust-store-path",
        ]
        .into_iter()
        .find(|k| params.contains(k))
        {
            return Err(invalid(format!(
                "The sink parameter '{key}' needs TLS: use 'sink'='iotdb-thrift-ssl-sink' or 'ssl.enable'='true'."
            )));
        }
        return Ok(None);
    }
    if params.contains("ssl.ca-file") && params.contains("ssl.trust-store-path") {
        return Err(invalid("The sink parameters 'ssl.ca-file' and 'ssl.trust-store-path' cannot be specified at the same time."));
    }
    let key_store = path("ssl.key-store-path");
    if key_store.is_some() && (params.contains("ssl.cert-file") || params.contains("ssl.key-file"))
    {
        return Err(invalid("The sink parameter 'ssl.key-store-path' cannot be combined with 'ssl.cert-file'/'ssl.key-file'."));
    }
    let (cert_file, key_file) = match key_store {
        Some(store) => (Some(store.clone()), Some(store)),
        None => (path("ssl.cert-file"), path("ssl.key-file")),
    };
    if cert_file.is_some() != key_file.is_some() {
        return Err(invalid(
            "The sink parameters 'ssl.cert-file' and 'ssl.key-file' must be specified together.",
        ));
    }
    Ok(Some(SinkTls {
        ca_file: path("ssl.ca-file").or_else(|| path("ssl.trust-store-path")),
        cert_file,
        key_file,
        trust_store_password: password("ssl.trust-store-pwd"),
        key_store_password: password("ssl.key-store-pwd"),
        server_name: params
            .get("ssl.server-name")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
    }))
}

/// Validates the sink parameters.
pub fn sink(params: &Parameters) -> Result<SinkConfig> {
    check_duplicates("sink", params)?;
    check_keys("sink", params, SINK_KEYS)?;
    let plugin = params
        .get("sink")
        .or_else(|| params.get("connector"))
        .unwrap_or("iotdb-thrift-sink");
    let lower = plugin.to_ascii_lowercase();
    let kind = if THRIFT_SINKS.contains(&lower.as_str()) {
        SinkKind::IotdbThrift
    } else if NOTHING_SINKS.contains(&lower.as_str()) {
        SinkKind::DoNothing
    } else if IOTDB_SINKS.contains(&lower.as_str()) {
        return Err(PipeError::Unsupported(format!(
            "The sink plugin '{plugin}' is not supported by Duet yet (supported: iotdb-thrift-sink, iotdb-thrift-sync-sink, iotdb-thrift-async-sink, iotdb-thrift-ssl-sink, do-nothing-sink)."
        )));
    } else {
        return Err(invalid(format!(
            "Failed to create or alter pipe, the sink plugin '{plugin}' does not exist."
        )));
    };
    if params.contains("user") && params.contains("username") {
        return Err(invalid(
            "The sink parameters 'user' and 'username' cannot be specified at the same time.",
        ));
    }
    if params.contains("batch.max-delay-ms") && params.contains("batch.max-delay-seconds") {
        return Err(invalid("The sink parameters 'batch.max-delay-ms' and 'batch.max-delay-seconds' cannot be specified at the same time."));
    }
    if params.contains("mark-as-pipe-request") && params.contains("mark-as-general-write-request") {
        return Err(invalid("The sink parameters 'mark-as-pipe-request' and 'mark-as-general-write-request' cannot be specified at the same time."));
    }
    let mut endpoints = Vec::new();
    if let Some(urls) = params.get("node-urls") {
        for url in urls
            .split(',')
            .map(|u| u.replace(' ', ""))
            .filter(|u| !u.is_empty())
        {
            let (host, port) = url.rsplit_once(':').ok_or_else(bad_node_urls)?;
            endpoints.push(endpoint(host, port)?);
        }
    }
    for host_key in ["ip", "host"] {
        if let Some(host) = params.get(host_key) {
            let port = params.get("port").ok_or_else(bad_node_urls)?;
            let e = endpoint(host, port)?;
            if !endpoints.contains(&e) {
                endpoints.push(e);
            }
        }
    }
    if kind == SinkKind::IotdbThrift && endpoints.is_empty() {
        return Err(invalid(
            "One of connector.node-urls, connector.host:connector.port, sink.node-urls, sink.host:sink.port must be specified",
        ));
    }
    let compressors = compressors(params)?;
    if let Some(strategy) = params.get("load-balance-strategy") {
        if !["round-robin", "random", "priority"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(strategy))
        {
            return Err(invalid(format!("Load balance strategy should be one of [round-robin, random, priority], but got {strategy}.")));
        }
    }
    let tls = sink_tls(params, lower.contains("-ssl-"))?;
    let mut tablet_format = false;
    if let Some(format) = params.get("format") {
        if !["hybrid", "tablet", "tsfile"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(format))
        {
            return Err(invalid(format!(
                "The value of 'format' must be one of hybrid, tablet, tsfile, but got '{format}'."
            )));
        }
        if format.eq_ignore_ascii_case("tsfile") {
            return Err(PipeError::Unsupported(
                "The sink format 'tsfile' is not supported by Duet yet (supported: hybrid, tablet)."
                    .into(),
            ));
        }
        tablet_format = format.eq_ignore_ascii_case("tablet");
    }
    let batch_max_delay_ms = match (
        positive(params, "batch.max-delay-ms")?,
        positive(params, "batch.max-delay-seconds")?,
    ) {
        (Some(ms), _) => ms,
        (None, Some(s)) => s.saturating_mul(1000),
        (None, None) => 20,
    };
    let rate_limit = match params.get("rate-limit-bytes-per-second") {
        None => None,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x <= 0.0 => None,
            // Rounding a fractional byte rate up keeps the limit meaningful.
            Ok(x) if x.is_finite() => Some(x.ceil() as u64),
            _ => {
                return Err(invalid(format!(
                    "The value of 'rate-limit-bytes-per-second' must be a number, but got '{v}'."
                )))
            }
        },
    };
    let general_write = boolean(params, "mark-as-general-write-request", false)?;
    Ok(SinkConfig {
        kind,
        endpoints,
        username: params
            .get("username")
            .or_else(|| params.get("user"))
            .unwrap_or("root")
            .to_string(),
        password: params.get("password").unwrap_or("root").to_string(),
        batch_enable: boolean(params, "batch.enable", true)?,
        batch_max_delay_ms,
        batch_size_bytes: positive(params, "batch.size-bytes")?.unwrap_or(1024 * 1024),
        rate_limit_bytes_per_second: rate_limit,
        compressors,
        mark_as_pipe_request: boolean(params, "mark-as-pipe-request", true)? && !general_write,
        tablet_format,
        tls,
        max_in_flight: if lower.contains("-sync-") {
            1
        } else {
            ASYNC_IN_FLIGHT
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_ssl_sink_takes_iotdb_keys_and_pem_files() {
        let ssl = sink(&Parameters::of(&[
            ("sink", "iotdb-thrift-ssl-sink"),
            ("sink.ip", "peer"),
            ("sink.port", "6667"),
            ("sink.ssl.trust-store-path", "/ca.pem"),
            ("sink.ssl.trust-store-pwd", "secret"),
            ("sink.ssl.key-store-path", "/me.pem"),
        ]))
        .unwrap();
        assert_eq!(ssl.kind, SinkKind::IotdbThrift);
        assert_eq!(
            ssl.tls,
            Some(SinkTls {
                ca_file: Some("/ca.pem".into()),
                cert_file: Some("/me.pem".into()),
                key_file: Some("/me.pem".into()),
                trust_store_password: Some(duet_proto::tls::StorePassword("secret".into())),
                key_store_password: None,
                server_name: None,
            })
        );
        let enabled = sink(&Parameters::of(&[
            ("ip", "peer"),
            ("port", "1"),
            ("ssl.enable", "true"),
            ("ssl.ca-file", "/ca.pem"),
            ("ssl.server-name", "iotdb-2"),
        ]))
        .unwrap();
        assert_eq!(enabled.tls.unwrap().server_name.as_deref(), Some("iotdb-2"));
        assert_eq!(
            sink(&Parameters::of(&[("ip", "peer"), ("port", "1")]))
                .unwrap()
                .tls,
            None
        );
        let e = sink(&Parameters::of(&[
            ("ip", "peer"),
            ("port", "1"),
            ("ssl.ca-file", "/ca.pem"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs TLS"), "{e}");
        let e = sink(&Parameters::of(&[
            ("sink", "iotdb-thrift-ssl-sink"),
            ("ip", "peer"),
            ("port", "1"),
            ("ssl.cert-file", "/me.crt"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("together"), "{e}");
    }

    #[test]
    fn the_seed_pipe_validates() {
        let src = source(&Parameters::of(&[("source.mode.double-living", "true")])).unwrap();
        assert!(src.double_living && !src.forwarding_pipe_requests);
        assert_eq!(src.path, "root.**");
        let snk = sink(&Parameters::of(&[
            ("sink", "iotdb-thrift-sink"),
            ("sink.ip", "iotdb-2"),
            ("sink.port", "6667"),
        ]))
        .unwrap();
        assert_eq!(snk.endpoints, vec![("iotdb-2".to_string(), 6667)]);
        assert_eq!(snk.username, "root");
    }

    #[test]
    fn endpoints_come_from_any_spelling() {
        let snk = sink(&Parameters::of(&[("node-urls", "a:1, b:2")])).unwrap();
        assert_eq!(snk.endpoints, vec![("a".into(), 1), ("b".into(), 2)]);
        let snk = sink(&Parameters::of(&[
            ("connector.host", "h"),
            ("connector.port", "7"),
        ]))
        .unwrap();
        assert_eq!(snk.endpoints, vec![("h".into(), 7)]);
    }

    #[test]
    fn compressor_lists_apply_in_order_with_the_zstd_level() {
        let config = sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("sink.compressor", " LZMA2, zstd,,gzip ,lz4,snappy"),
            ("connector.compressor.zstd.level", "-7"),
        ]))
        .unwrap();
        assert_eq!(
            config.compressors,
            vec![
                Compressor::Lzma2,
                Compressor::Zstd { level: -7 },
                Compressor::Gzip,
                Compressor::Lz4,
                Compressor::Snappy
            ]
        );
        let level = |v: &str| {
            sink(&Parameters::of(&[
                ("ip", "h"),
                ("port", "1"),
                ("compressor", "zstd"),
                ("compressor.zstd.level", v),
            ]))
        };
        assert_eq!(
            level("22").unwrap().compressors,
            vec![Compressor::Zstd { level: 22 }]
        );
        for (bad, message) in [
            (
                "23",
                "Zstd compression level should be in the range [-131072, 22], but got 23.",
            ),
            (
                "-131073",
                "Zstd compression level should be in the range [-131072, 22], but got -131073.",
            ),
            (
                "x",
                "The value of 'compressor.zstd.level' must be an integer, but got 'x'.",
            ),
        ] {
            assert_eq!(level(bad).unwrap_err().to_string(), message);
        }
        let default = sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("compressor", "zstd"),
        ]))
        .unwrap();
        assert_eq!(default.compressors, vec![Compressor::Zstd { level: 3 }]);
        let nine = ["gzip"; 9].join(",");
        let e = sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("compressor", &nine),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("less than or equal to 8, but got 9"), "{e}");
        let e = sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("compressor", "gzip,brotli"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("but got brotli."), "{e}");
    }

    #[test]
    fn bad_sinks_have_iotdb_messages() {
        let e = sink(&Parameters::of(&[("sink", "iotdb-thrift-sink")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be specified"), "{e}");
        for port in ["x", "0", "70000", ""] {
            let e = sink(&Parameters::of(&[("ip", "h"), ("port", port)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("parsing node urls"), "{e}");
        }
        let e = sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("user", "a"),
            ("username", "b"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("'user' and 'username'"), "{e}");
        let e = sink(&Parameters::of(&[
            ("sink", "no-such-sink"),
            ("ip", "h"),
            ("port", "1"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(matches!(
            sink(&Parameters::of(&[("sink", "opc-ua-sink")])),
            Err(PipeError::Unsupported(_))
        ));
        assert!(sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("compressor", "brotli")
        ]))
        .is_err());
        assert!(sink(&Parameters::of(&[
            ("ip", "h"),
            ("port", "1"),
            ("sink.ip", "h")
        ]))
        .is_err());
    }

    #[test]
    fn bad_sources_are_refused() {
        let e = source(&Parameters::of(&[
            ("mode.double-living", "true"),
            ("forwarding-pipe-requests", "true"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("forwarding-pipe-requests can not be specified to true"),
            "{e}"
        );
        assert!(source(&Parameters::of(&[("mode.double-living", "yes")])).is_err());
        assert_eq!(
            source(&Parameters::of(&[("inclusion", "auth")]))
                .unwrap()
                .effective_inclusion(),
            "auth"
        );
        assert!(matches!(
            source(&Parameters::of(&[("inclusion", "schema.timeseries.view")])),
            Err(PipeError::Unsupported(_))
        ));
        // Templates are part of schema.timeseries, and selectable alone.
        let no_templates = source(&Parameters::of(&[
            ("inclusion", "schema.timeseries"),
            ("inclusion.exclusion", "schema.timeseries.template"),
        ]))
        .unwrap();
        assert_eq!(
            no_templates.effective_inclusion(),
            "schema.timeseries.ordinary"
        );
        let schema = source(&Parameters::of(&[("inclusion", "schema")])).unwrap();
        assert_eq!(
            schema.effective_inclusion(),
            "schema.database,schema.timeseries,schema.ttl"
        );
        let all_but_ttl = source(&Parameters::of(&[
            ("inclusion", "all"),
            ("inclusion.exclusion", "schema.ttl, auth.user"),
        ]))
        .unwrap();
        assert_eq!(
            all_but_ttl.effective_inclusion(),
            "data.insert,data.delete,schema.database,schema.timeseries"
        );
        assert!(source(&Parameters::of(&[
            ("inclusion", "data"),
            ("inclusion.exclusion", "data")
        ]))
        .is_err());
        assert!(source(&Parameters::of(&[("path", "foo.bar")])).is_err());
        assert!(source(&Parameters::of(&[("start-time", "10"), ("end-time", "5")])).is_err());
        assert!(source(&Parameters::of(&[("source", "kafka-source")])).is_err());
        let s = source(&Parameters::of(&[
            ("pattern", "root.sg"),
            ("start-time", "2024-01-01T00:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(s.path, "root.sg.**");
        assert_eq!(s.start_time, Some(1_704_067_200_000));
    }

    #[test]
    fn a_misspelled_key_is_named_with_the_key_it_resembles() {
        let e = sink(&Parameters::of(&[
            ("sink.ip", "iotdb-2"),
            ("sink.prot", "6667"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'sink.prot' is unknown; did you mean 'sink.port'?"),
            "{e}"
        );
        let e = source(&Parameters::of(&[("source.mode.double-livng", "true")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean 'source.mode.double-living'?"),
            "{e}"
        );
        // IoTDB's keys Duet does not act on, and keys far from any known one, are accepted.
        let snk = sink(&Parameters::of(&[
            ("sink.ip", "iotdb-2"),
            ("sink.port", "6667"),
            ("sink.exception.conflict.resolve-strategy", "retry"),
            ("sink.some-plugin-option", "x"),
        ]))
        .unwrap();
        assert_eq!(snk.endpoints, vec![("iotdb-2".to_string(), 6667)]);
    }

    #[test]
    fn processors_other_than_do_nothing_are_not_supported() {
        assert!(processor(&Parameters::of(&[("processor", "do-nothing-processor")])).is_ok());
        assert!(matches!(
            processor(&Parameters::of(&[("processor", "sdt-sampling-processor")])),
            Err(PipeError::Unsupported(_))
        ));
        assert!(matches!(
            processor(&Parameters::of(&[("processor", "foo")])),
            Err(PipeError::Invalid(_))
        ));
    }
}
