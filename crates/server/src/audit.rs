//! The audit log (issue 13): who did what, when, from where, with what result — logins (success and
//! failure, sessions and pipe handshakes) and statements by IoTDB's categories (`DDL`: schema, users
//! and privileges, pipes; `DML`: `INSERT`/`DELETE`; `QUERY`: `SELECT`, `SHOW`, `LIST`, `COUNT`).
//!
//! Configured with IoTDB's keys (`enable_audit_log`, `audit_log_storage`, `audit_log_operation`,
//! `enable_audit_log_for_native_insert_api`). Entries are appended as JSON lines to one file
//! (`audit_log_path`, `<data_dir>/audit.log` by default), fsynced per entry with Duet's
//! `audit_log_sync` and rotated by size (`audit_log_max_file_bytes`, keeping
//! `audit_log_max_files` older files `audit.log.1` … newest first); with `IOTDB` storage the files
//! are also readable as IoTDB's series
//! `root.__system.audit._<user>` (`username`, `address`, `log`, plus Duet's `category` and
//! `result`) through `SELECT`, and with `LOGGER` every entry is also a line of duetd's own log.
//! Passwords never reach the log: quoted values of user statements and of password keys are masked.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use duet_parser::{BinaryOp, Expr, Literal, Path, PathNode, Select, SelectItem, Statement};
use duet_proto::status::StatusCode;
use duet_proto::types::{Column, ColumnValues, DataType, Table};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::Config;
use crate::status_codes::StatementError;

/// The device prefix of the audit series, as IoTDB names it.
pub const AUDIT_PREFIX: [&str; 3] = ["root", "__system", "audit"];

/// The measurements of an audit device, in the order `*` lists them.
pub const MEASUREMENTS: [&str; 5] = ["username", "address", "log", "category", "result"];

/// The file name of the audit log in the data directory.
pub const DEFAULT_FILE: &str = "audit.log";

/// What kind of event an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Login,
    Ddl,
    Dml,
    Query,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Login => "LOGIN",
            Category::Ddl => "DDL",
            Category::Dml => "DML",
            Category::Query => "QUERY",
        }
    }

    /// The category of a statement, read from its canonical text so that statements added later
    /// (GRANT, roles, …) are DDL unless they read or write data.
    pub fn of(statement: &Statement) -> Category {
        Category::of_text(&statement.to_string())
    }

    /// The category of a statement's text (also of one that does not parse, by its first words).
    pub fn of_text(text: &str) -> Category {
        let upper = text.trim_start().to_ascii_uppercase();
        let starts = |w: &str| upper.starts_with(w);
        if starts("SELECT") || starts("SHOW") || starts("LIST") || starts("COUNT") {
            Category::Query
        } else if starts("INSERT")
            || (starts("DELETE")
                && !starts("DELETE TIMESERIES")
                && !starts("DELETE DATABASE")
                && !starts("DELETE STORAGE"))
        {
            Category::Dml
        } else {
            Category::Ddl
        }
    }
}

/// One audit record, as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    pub user: String,
    /// The client's `ip:port`.
    pub address: String,
    pub category: String,
    /// What was done: the statement (passwords masked), or the login's kind.
    pub log: String,
    /// `success`, or `failure: <code>: <message>`.
    pub result: String,
}

/// The audit log of one server.
pub struct AuditLog {
    enabled: bool,
    ddl: bool,
    dml: bool,
    query: bool,
    /// `IOTDB`: the file is queryable as `root.__system.audit`.
    queryable: bool,
    /// `LOGGER`: every entry is also a line of duetd's log.
    to_logger: bool,
    /// IoTDB's `enable_audit_log_for_native_insert_api`: the insert RPCs are recorded (whatever
    /// `audit_log_operation` says of DML, as IoTDB's key covers it for them).
    native_insert: bool,
    /// fsync after every entry.
    sync: bool,
    /// Rotate when the file would grow past this (0: never).
    max_file_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `audit.log.N`).
    max_files: usize,
    path: PathBuf,
    file: Option<Mutex<OpenFile>>,
}

/// The file entries are appended to, and its size.
struct OpenFile {
    file: File,
    bytes: u64,
}

/// Why the audit configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit configuration: {0}")]
    Invalid(String),
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Splits IoTDB's comma-separated option lists (`DML,DDL,QUERY`), checking every item.
fn items(key: &str, value: &str, allowed: &[&str]) -> Result<Vec<String>, AuditError> {
    let mut out = Vec::new();
    for item in value
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
    {
        if !allowed.contains(&item.as_str()) {
            return Err(AuditError::Invalid(format!(
                "{key} takes {} (comma-separated), not '{item}'",
                allowed.join(", ")
            )));
        }
        out.push(item);
    }
    Ok(out)
}

impl AuditLog {
    /// An audit log that records nothing.
    pub fn disabled() -> AuditLog {
        AuditLog {
            enabled: false,
            ddl: false,
            dml: false,
            query: false,
            queryable: false,
            to_logger: false,
            native_insert: false,
            sync: false,
            max_file_bytes: 0,
            max_files: 0,
            path: PathBuf::new(),
            file: None,
        }
    }

    /// Checks the keys without opening anything.
    pub fn validate(config: &Config) -> Result<(), AuditError> {
        items(
            "audit_log_storage",
            &config.audit_log_storage,
            &["IOTDB", "LOGGER"],
        )?;
        items(
            "audit_log_operation",
            &config.audit_log_operation,
            &["DML", "DDL", "QUERY"],
        )?;
        Ok(())
    }

    /// Opens (appends to) the configured file when the audit log is enabled.
    pub fn open(config: &Config) -> Result<AuditLog, AuditError> {
        if !config.enable_audit_log {
            return Ok(AuditLog::disabled());
        }
        let storage = items(
            "audit_log_storage",
            &config.audit_log_storage,
            &["IOTDB", "LOGGER"],
        )?;
        let operations = items(
            "audit_log_operation",
            &config.audit_log_operation,
            &["DML", "DDL", "QUERY"],
        )?;
        let path = config
            .audit_log_path
            .clone()
            .unwrap_or_else(|| config.data_dir.join(DEFAULT_FILE));
        let open_error = |source| AuditError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let file = open_append(&path).map_err(open_error)?;
        Ok(AuditLog {
            enabled: true,
            ddl: operations.iter().any(|o| o == "DDL"),
            dml: operations.iter().any(|o| o == "DML"),
            query: operations.iter().any(|o| o == "QUERY"),
            queryable: storage.iter().any(|s| s == "IOTDB"),
            to_logger: storage.iter().any(|s| s == "LOGGER"),
            native_insert: config.enable_audit_log_for_native_insert_api,
            sync: config.audit_log_sync,
            max_file_bytes: config.audit_log_max_file_bytes,
            max_files: config.audit_log_max_files,
            path,
            file: Some(Mutex::new(file)),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The file entries are appended to (when enabled).
    pub fn path(&self) -> Option<&std::path::Path> {
        self.enabled.then_some(self.path.as_path())
    }

    /// A login attempt: `how` is `session` or `pipe handshake`; `failure` the refusal's text.
    pub fn login(&self, user: &str, address: &str, how: &str, failure: Option<String>) {
        if !self.enabled {
            return;
        }
        self.record(AuditEntry {
            time_ms: now_ms(),
            user: user.to_string(),
            address: address.to_string(),
            category: Category::Login.name().to_string(),
            log: format!("login ({how})"),
            result: failure.map_or_else(|| "success".to_string(), |f| format!("failure: {f}")),
        });
    }

    /// A statement that ran (or failed), when its category is audited.
    pub fn statement(
        &self,
        user: &str,
        address: &str,
        statement: &Statement,
        failure: Option<&StatementError>,
    ) {
        if !self.enabled {
            return;
        }
        self.statement_text(user, address, &statement.to_string(), true, failure);
    }

    /// A statement that does not parse (its raw text, passwords masked), refused; recorded under
    /// the category its first words give.
    pub fn unparsed(&self, user: &str, address: &str, sql: &str, error: &StatementError) {
        if self.enabled {
            self.statement_text(user, address, sql.trim(), false, Some(error));
        }
    }

    fn statement_text(
        &self,
        user: &str,
        address: &str,
        text: &str,
        parsed: bool,
        failure: Option<&StatementError>,
    ) {
        let category = Category::of_text(text);
        if !self.wants(category) {
            return;
        }
        self.record(AuditEntry {
            time_ms: now_ms(),
            user: user.to_string(),
            address: address.to_string(),
            category: category.name().to_string(),
            log: if parsed {
                mask_secrets(text)
            } else {
                mask_unparsed(text)
            },
            result: failure.map_or_else(
                || "success".to_string(),
                |e| format!("failure: {}: {}", e.code.code(), e.message),
            ),
        });
    }

    /// Whether `audit_log_operation` records `category` (logins always are).
    fn wants(&self, category: Category) -> bool {
        match category {
            Category::Ddl => self.ddl,
            Category::Dml => self.dml,
            Category::Query => self.query,
            Category::Login => true,
        }
    }

    /// An RPC that bypasses SQL — schema, delete, insert and query RPCs — when its category is
    /// audited (an insert RPC when `enable_audit_log_for_native_insert_api` is); `status` is the
    /// RPC's answer.
    pub fn rpc(
        &self,
        user: &str,
        address: &str,
        what: &RpcAudit,
        status: &duet_proto::t::TSStatus,
    ) {
        let wanted = if what.native_insert {
            self.native_insert
        } else {
            self.wants(what.category)
        };
        if !self.enabled || !wanted {
            return;
        }
        let result = if status.code == StatusCode::Success.code() {
            "success".to_string()
        } else {
            format!(
                "failure: {}: {}",
                status.code,
                status.message.as_deref().unwrap_or_default()
            )
        };
        self.record(AuditEntry {
            time_ms: now_ms(),
            user: user.to_string(),
            address: address.to_string(),
            category: what.category.name().to_string(),
            log: what.log.clone(),
            result,
        });
    }

    fn record(&self, entry: AuditEntry) {
        if self.to_logger {
            info!(
                target: "duet_audit",
                user = %entry.user,
                address = %entry.address,
                category = %entry.category,
                result = %entry.result,
                "{}",
                entry.log
            );
        }
        let Some(file) = &self.file else {
            return;
        };
        let mut line = match serde_json::to_string(&entry) {
            Ok(line) => line,
            Err(e) => {
                warn!("cannot encode an audit entry: {e}");
                return;
            }
        };
        line.push('\n');
        // One write per entry under the lock: lines from concurrent sessions never interleave.
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.append(&mut file, line.as_bytes()) {
            warn!(
                "cannot append to the audit log {}: {e}",
                self.path.display()
            );
        }
    }

    /// Appends one line, first rotating the file when the line would take it past
    /// `audit_log_max_file_bytes`, and syncing it when `audit_log_sync` is set.
    fn append(&self, open: &mut OpenFile, line: &[u8]) -> std::io::Result<()> {
        let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
        if self.max_file_bytes > 0 && open.bytes > 0 && open.bytes + len > self.max_file_bytes {
            self.rotate()?;
            *open = open_append(&self.path)?;
        }
        open.file.write_all(line)?;
        open.bytes += len;
        if self.sync {
            open.file.sync_data()?;
        }
        Ok(())
    }

    /// `audit.log.N-1` → `audit.log.N` … `audit.log` → `audit.log.1`; the oldest beyond
    /// `audit_log_max_files` is removed (with none kept, the file is just started again).
    fn rotate(&self) -> std::io::Result<()> {
        if self.max_files == 0 {
            return std::fs::remove_file(&self.path);
        }
        match std::fs::remove_file(self.rotated(self.max_files)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..self.max_files).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        info!("audit log rotated: {}", self.rotated(1).display());
        Ok(())
    }

    /// The `n`th rotated file (`audit.log.n`).
    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Whether a query reads the audit series (its first `FROM` path is under `root.__system`).
    pub fn targets(select: &Select) -> bool {
        select.from.first().is_some_and(|p| {
            matches!(p.0.first(), Some(PathNode::Name(n)) if n == "root")
                && matches!(p.0.get(1), Some(PathNode::Name(n)) if n == "__system")
        })
    }

    /// Answers a `SELECT` of `root.__system.audit._<user>` from the file: raw columns of the five
    /// measurements, `WHERE` on time (integer bounds joined by `AND`), `ORDER BY TIME DESC`,
    /// `LIMIT`/`OFFSET`. Anything else is refused as not supported. At most `max_bytes` of entries
    /// are held.
    pub fn select(&self, select: &Select, max_bytes: usize) -> Result<Table, StatementError> {
        let unsupported = |what: &str| {
            StatementError::new(
                StatusCode::UnsupportedOperation,
                format!("{what} is not supported on the audit series root.__system.audit (raw columns, WHERE on time, ORDER BY TIME DESC, LIMIT and OFFSET are)"),
            )
        };
        if !self.enabled || !self.queryable {
            return Err(StatementError::new(
                StatusCode::UnsupportedOperation,
                "the audit series root.__system.audit is not available: set enable_audit_log = true with IOTDB in audit_log_storage",
            ));
        }
        if select.last
            || select.group_by.is_some()
            || select.group_by_level.is_some()
            || select.having.is_some()
            || select.fill.is_some()
            || select.align_by_device
            || select.slimit.is_some()
            || select.soffset.is_some()
        {
            return Err(unsupported("this query form"));
        }
        let mut users: Vec<Option<String>> = Vec::new();
        for path in &select.from {
            users.push(audit_device(path).ok_or_else(|| unsupported(&format!("FROM {path}")))?);
        }
        let mut columns: Vec<(usize, String)> = Vec::new();
        for item in &select.items {
            match item {
                SelectItem::Wildcard => columns.extend(
                    MEASUREMENTS
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (i, m.to_string())),
                ),
                SelectItem::Path { path, alias } => match path.0.as_slice() {
                    [PathNode::Name(m)] if MEASUREMENTS.contains(&m.as_str()) => {
                        let i = MEASUREMENTS.iter().position(|x| x == m).unwrap_or(0);
                        columns.push((i, alias.clone().unwrap_or_else(|| m.clone())));
                    }
                    [PathNode::One] | [PathNode::Many] => columns.extend(
                        MEASUREMENTS
                            .iter()
                            .enumerate()
                            .map(|(i, m)| (i, m.to_string())),
                    ),
                    _ => return Err(unsupported(&format!("the column {path}"))),
                },
                _ => return Err(unsupported("an aggregate or expression")),
            }
        }
        let (low, high) = match &select.condition {
            None => (i64::MIN, i64::MAX),
            Some(c) => time_bounds(c).ok_or_else(|| unsupported(&format!("WHERE {c}")))?,
        };
        let wanted = |user: &str| users.iter().any(|u| u.as_deref().is_none_or(|u| u == user));
        let entries = self.read(max_bytes, |e| {
            e.time_ms >= low && e.time_ms <= high && wanted(&e.user)
        })?;
        let mut entries = entries;
        entries.sort_by_key(|e| e.time_ms);
        if select.order_by_time_desc {
            entries.reverse();
        }
        let offset = usize::try_from(select.offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = select
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let entries: Vec<AuditEntry> = entries.into_iter().skip(offset).take(limit).collect();
        // One column per (device, measurement), as IoTDB aligns devices by time; a row has values
        // only in its own device's columns.
        let mut devices: Vec<String> = entries.iter().map(|e| e.user.clone()).collect();
        devices.sort();
        devices.dedup();
        let mut names = Vec::new();
        let mut out = Vec::new();
        for device in &devices {
            for (i, name) in &columns {
                names.push(format!("root.__system.audit._{device}.{name}"));
                let mut values = Vec::with_capacity(entries.len());
                let mut nulls = Vec::with_capacity(entries.len());
                for e in &entries {
                    let mine = &e.user == device;
                    let value = match i {
                        0 => &e.user,
                        1 => &e.address,
                        2 => &e.log,
                        3 => &e.category,
                        _ => &e.result,
                    };
                    values.push(if mine {
                        value.clone().into_bytes()
                    } else {
                        Vec::new()
                    });
                    nulls.push(!mine);
                }
                out.push(Column {
                    data_type: DataType::Text,
                    nulls: Some(nulls),
                    values: ColumnValues::Binary(values),
                });
            }
        }
        Ok(Table {
            names,
            times: Some(entries.iter().map(|e| e.time_ms).collect()),
            n_rows: entries.len(),
            columns: out,
        })
    }

    /// Reads the entries `keep` accepts, holding at most `max_bytes` of them.
    fn read(
        &self,
        max_bytes: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Result<Vec<AuditEntry>, StatementError> {
        // The rotated files oldest first, then the current one; a rotated file that is gone (rotated
        // away meanwhile, or never written) has nothing to read.
        let mut files: Vec<PathBuf> = (1..=self.max_files)
            .rev()
            .map(|n| self.rotated(n))
            .collect();
        files.push(self.path.clone());
        let mut held = 0usize;
        let mut out = Vec::new();
        for path in files {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && path != self.path => continue,
                Err(e) => {
                    return Err(StatementError::new(
                        StatusCode::InternalServerError,
                        format!("cannot read the audit log {}: {e}", path.display()),
                    ))
                }
            };
            read_lines(file, max_bytes, &mut held, &keep, &mut out)?;
        }
        Ok(out)
    }
}

/// Opens a file to append to, with its size.
fn open_append(path: &std::path::Path) -> std::io::Result<OpenFile> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let bytes = file.metadata()?.len();
    Ok(OpenFile { file, bytes })
}

/// Reads one audit file's entries that `keep` accepts into `out`, holding at most `max_bytes` in
/// all (`held` so far).
fn read_lines(
    file: File,
    max_bytes: usize,
    held: &mut usize,
    keep: &impl Fn(&AuditEntry) -> bool,
    out: &mut Vec<AuditEntry>,
) -> Result<(), StatementError> {
    {
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(entry) = serde_json::from_str::<AuditEntry>(&line) else {
                continue;
            };
            if !keep(&entry) {
                continue;
            }
            *held += line.len();
            if *held > max_bytes {
                return Err(StatementError::new(
                    StatusCode::QueryExecutionMemoryNotEnough,
                    format!("the audit entries this query selects exceed query_memory_bytes ({max_bytes}); narrow it with WHERE time or LIMIT"),
                ));
            }
            out.push(entry);
        }
        Ok(())
    }
}

/// What the audit log records of an RPC that changes the schema or deletes data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcAudit {
    pub category: Category,
    pub log: String,
    /// One of the session API's insert RPCs (`enable_audit_log_for_native_insert_api`).
    pub native_insert: bool,
}

/// The audit record of an insert RPC: the method and its devices.
fn insert_rpc(method: &str, devices: &[&str], rows: usize) -> Option<RpcAudit> {
    Some(RpcAudit {
        category: Category::Dml,
        log: format!("RPC {method} {} ({rows} rows)", devices.join(", ")),
        native_insert: true,
    })
}

/// The audit record of a query RPC: the method and its paths.
fn query_rpc(method: &str, paths: &[String]) -> Option<RpcAudit> {
    Some(RpcAudit {
        category: Category::Query,
        log: format!("RPC {method} {}", paths.join(", ")),
        native_insert: false,
    })
}

/// The audit record of an RPC that bypasses SQL (schema, delete, insert and query RPCs); `None`
/// for the others (SQL is recorded statement by statement, session housekeeping not at all).
pub fn describe_rpc(request: &duet_proto::rpc::Request) -> Option<RpcAudit> {
    use duet_proto::rpc::Request as R;
    let strs = |v: &[String]| -> Vec<String> { v.to_vec() };
    let devices = |v: &[String]| -> Vec<String> {
        let mut d = v.to_vec();
        d.dedup();
        d
    };
    match request {
        R::InsertRecord(r) => return insert_rpc("insertRecord", &[&r.prefix_path], 1),
        R::InsertStringRecord(r) => return insert_rpc("insertStringRecord", &[&r.prefix_path], 1),
        R::InsertTablet(r) => {
            let rows = usize::try_from(r.size).unwrap_or(0);
            return insert_rpc("insertTablet", &[&r.prefix_path], rows);
        }
        R::InsertRecordsOfOneDevice(r) => {
            return insert_rpc(
                "insertRecordsOfOneDevice",
                &[&r.prefix_path],
                r.timestamps.len(),
            )
        }
        R::InsertStringRecordsOfOneDevice(r) => {
            return insert_rpc(
                "insertStringRecordsOfOneDevice",
                &[&r.prefix_path],
                r.timestamps.len(),
            )
        }
        R::InsertRecords(r) => {
            let d = devices(&r.prefix_paths);
            let d: Vec<&str> = d.iter().map(String::as_str).collect();
            return insert_rpc("insertRecords", &d, r.timestamps.len());
        }
        R::InsertStringRecords(r) => {
            let d = devices(&r.prefix_paths);
            let d: Vec<&str> = d.iter().map(String::as_str).collect();
            return insert_rpc("insertStringRecords", &d, r.timestamps.len());
        }
        R::InsertTablets(r) => {
            let d = devices(&r.prefix_paths);
            let d: Vec<&str> = d.iter().map(String::as_str).collect();
            let rows = r
                .size_list
                .iter()
                .map(|n| usize::try_from(*n).unwrap_or(0))
                .sum();
            return insert_rpc("insertTablets", &d, rows);
        }
        R::RawDataQuery { req, .. } => return query_rpc("executeRawDataQuery", &strs(&req.paths)),
        R::LastDataQuery { req, .. } => {
            return query_rpc("executeLastDataQuery", &strs(&req.paths))
        }
        R::AggregationQuery { req, .. } => {
            return query_rpc("executeAggregationQuery", &strs(&req.paths))
        }
        R::FastLastDataQueryForOnePrefixPath(r) => {
            return query_rpc(
                "executeFastLastDataQueryForOnePrefixPath",
                &[r.prefixes.join(".")],
            )
        }
        R::FastLastDataQueryForOneDevice(r) => {
            return query_rpc(
                "executeFastLastDataQueryForOneDevice",
                &r.sensors
                    .iter()
                    .map(|s| format!("{}.{s}", r.device_id))
                    .collect::<Vec<_>>(),
            )
        }
        R::GroupByQueryInterval(r) => {
            return query_rpc(
                "executeGroupByQueryIntervalQuery",
                &[format!("{}.{}", r.device, r.measurement)],
            )
        }
        _ => {}
    }
    let (category, log) = match request {
        R::SetStorageGroup { database, .. } => {
            (Category::Ddl, format!("RPC setStorageGroup {database}"))
        }
        R::DeleteStorageGroups { databases, .. } => (
            Category::Ddl,
            format!("RPC deleteStorageGroups {}", databases.join(", ")),
        ),
        R::CreateTimeseries(r) => (Category::Ddl, format!("RPC createTimeseries {}", r.path)),
        R::CreateAlignedTimeseries(r) => (
            Category::Ddl,
            format!(
                "RPC createAlignedTimeseries {}({})",
                r.prefix_path,
                r.measurements.join(", ")
            ),
        ),
        R::CreateMultiTimeseries(r) => (
            Category::Ddl,
            format!("RPC createMultiTimeseries {}", r.paths.join(", ")),
        ),
        R::DeleteTimeseries { paths, .. } => (
            Category::Ddl,
            format!("RPC deleteTimeseries {}", paths.join(", ")),
        ),
        R::CreateSchemaTemplate(r) => (
            Category::Ddl,
            format!("RPC createSchemaTemplate {}", r.name),
        ),
        R::AppendSchemaTemplate(r) => (
            Category::Ddl,
            format!("RPC appendSchemaTemplate {}", r.name),
        ),
        R::PruneSchemaTemplate(r) => (
            Category::Ddl,
            format!("RPC pruneSchemaTemplate {} {}", r.name, r.path),
        ),
        R::SetSchemaTemplate(r) => (
            Category::Ddl,
            format!(
                "RPC setSchemaTemplate {} {}",
                r.template_name, r.prefix_path
            ),
        ),
        R::UnsetSchemaTemplate(r) => (
            Category::Ddl,
            format!(
                "RPC unsetSchemaTemplate {} {}",
                r.template_name, r.prefix_path
            ),
        ),
        R::DropSchemaTemplate(r) => (
            Category::Ddl,
            format!("RPC dropSchemaTemplate {}", r.template_name),
        ),
        R::CreateTimeseriesUsingSchemaTemplate(r) => (
            Category::Ddl,
            format!(
                "RPC createTimeseriesUsingSchemaTemplate {}",
                r.device_path_list.join(", ")
            ),
        ),
        R::DeleteData(r) => (
            Category::Dml,
            format!(
                "RPC deleteData {} [{}, {}]",
                r.paths.join(", "),
                r.start_time,
                r.end_time
            ),
        ),
        _ => return None,
    };
    Some(RpcAudit {
        category,
        log,
        native_insert: false,
    })
}

/// The user an audit device path names (`root.__system.audit._<user>`), or `None` for all users
/// (`*`, `**`, or the prefix itself followed by `**`); not an audit path → outer `None`.
fn audit_device(path: &Path) -> Option<Option<String>> {
    let nodes = &path.0;
    for (i, name) in AUDIT_PREFIX.iter().enumerate() {
        match nodes.get(i) {
            Some(PathNode::Name(n)) if n == name => {}
            // `root.__system.**` covers the audit devices too.
            Some(PathNode::Many) if i == 2 && nodes.len() == 3 => return Some(None),
            _ => return None,
        }
    }
    match &nodes[3..] {
        [PathNode::Name(device)] => {
            Some(Some(device.strip_prefix('_').unwrap_or(device).to_string()))
        }
        [PathNode::One] | [PathNode::Many] => Some(None),
        _ => None,
    }
}

/// The inclusive time range of a condition made of `time <op> integer` comparisons joined by AND.
fn time_bounds(condition: &Expr) -> Option<(i64, i64)> {
    match condition {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => {
            let (l1, h1) = time_bounds(left)?;
            let (l2, h2) = time_bounds(right)?;
            Some((l1.max(l2), h1.min(h2)))
        }
        Expr::Binary { left, op, right } => {
            let (value, flipped) = match (left.as_ref(), right.as_ref()) {
                (Expr::Time, Expr::Literal(Literal::Integer(v))) => (v.parse::<i64>().ok()?, false),
                (Expr::Literal(Literal::Integer(v)), Expr::Time) => (v.parse::<i64>().ok()?, true),
                _ => return None,
            };
            let op = if flipped {
                match op {
                    BinaryOp::Lt => BinaryOp::Gt,
                    BinaryOp::LtEq => BinaryOp::GtEq,
                    BinaryOp::Gt => BinaryOp::Lt,
                    BinaryOp::GtEq => BinaryOp::LtEq,
                    other => *other,
                }
            } else {
                *op
            };
            match op {
                BinaryOp::Eq => Some((value, value)),
                BinaryOp::Gt => Some((value.saturating_add(1), i64::MAX)),
                BinaryOp::GtEq => Some((value, i64::MAX)),
                BinaryOp::Lt => Some((i64::MIN, value.saturating_sub(1))),
                BinaryOp::LtEq => Some((i64::MIN, value)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Masks what must never be logged: every quoted value of a user statement (its password), and
/// the value after any quoted key naming a password (`'sink.password'='…'`, `'…-pwd'='…'`).
pub fn mask_secrets(text: &str) -> String {
    mask_quoted(text, false)
}

/// The text of a statement that does not parse, for the audit log: as [`mask_secrets`], and when
/// it mentions a user or a password anywhere (a misspelt `CREATE USER`), every quoted value,
/// including one whose closing quote is missing.
pub fn mask_unparsed(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    let secret = ["USER", "PASSWORD", "PWD"]
        .iter()
        .any(|w| upper.contains(w));
    mask_quoted(text, secret)
}

fn mask_quoted(text: &str, every_value: bool) -> String {
    let upper = text.trim_start().to_ascii_uppercase();
    let user_statement =
        every_value || upper.starts_with("CREATE USER") || upper.starts_with("ALTER USER");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous_quoted: Option<String> = None;
    while let Some(start) = rest.find('\'') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        // A quoted string ends at a quote not doubled ('it''s').
        let mut end = None;
        let bytes = after.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                end = Some(i);
                break;
            }
            i += 1;
        }
        let Some(end) = end else {
            if every_value {
                out.push_str("'******");
            } else {
                out.push_str(&rest[start..]);
            }
            return out;
        };
        let value = &after[..end];
        let between = previous_quoted.is_some();
        let secret_key = previous_quoted.as_deref().is_some_and(|k| {
            let k = k.to_ascii_lowercase();
            k.contains("password") || k.ends_with("pwd")
        });
        if user_statement || (between && secret_key) {
            out.push_str("'******'");
        } else {
            out.push('\'');
            out.push_str(value);
            out.push('\'');
        }
        rest = &after[end + 1..];
        // The key of a key=value pair is the quoted string just before `=`.
        previous_quoted = rest
            .trim_start()
            .starts_with('=')
            .then(|| value.to_string());
    }
    out.push_str(rest);
    out
}

/// Runs a query of the audit series for `user`, off the async workers. Only root reads it for
/// now (IoTDB's `AUDIT` privilege, once privileges exist, is the check to put here).
pub async fn select(
    instance: &crate::instance::InstanceRef,
    access: &crate::authz::Access,
    select: &Select,
) -> Result<crate::statements::Output, StatementError> {
    if !access.has(duet_catalog::Privilege::Audit) {
        return Err(StatementError::new(
            StatusCode::NoPermission,
            "No permissions for this operation, please add privilege AUDIT",
        ));
    }
    let instance = instance.clone();
    let select = select.clone();
    tokio::task::spawn_blocking(move || {
        instance
            .audit
            .select(&select, instance.config.query_memory_bytes)
            .map(crate::statements::Output::Table)
    })
    .await
    .map_err(|e| {
        StatementError::new(
            StatusCode::InternalServerError,
            format!("the audit query failed: {e}"),
        )
    })?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_secrets("CREATE USER `u` 'secret'"),
            "CREATE USER `u` '******'"
        );
        assert_eq!(
            mask_secrets("ALTER USER root SET PASSWORD 'n3w'"),
            "ALTER USER root SET PASSWORD '******'"
        );
        assert_eq!(
            mask_secrets("CREATE PIPE p WITH SINK ('sink.ip'='h', 'sink.password'='pw', 'sink.ssl.trust-store-pwd' = 'x''y')"),
            "CREATE PIPE p WITH SINK ('sink.ip'='h', 'sink.password'='******', 'sink.ssl.trust-store-pwd' = '******')"
        );
    }

    #[test]
    fn statements_are_classified_as_iotdb_does() {
        let class = |sql: &str| Category::of(&duet_parser::parse(sql).unwrap()[0]);
        assert_eq!(class("select s from root.a.d"), Category::Query);
        assert_eq!(class("show pipes"), Category::Query);
        assert_eq!(
            class("insert into root.a.d(time, s) values (1, 1)"),
            Category::Dml
        );
        assert_eq!(class("delete from root.a.d.s"), Category::Dml);
        assert_eq!(class("delete timeseries root.a.d.s"), Category::Ddl);
        assert_eq!(class("create database root.a"), Category::Ddl);
        assert_eq!(class("drop pipe p"), Category::Ddl);
        assert_eq!(class("create user u 'password1'"), Category::Ddl);
    }

    #[test]
    fn time_conditions_become_bounds() {
        let bounds = |sql: &str| {
            let Statement::Select(s) = &duet_parser::parse(sql).unwrap()[0] else {
                panic!()
            };
            time_bounds(s.condition.as_ref().unwrap())
        };
        assert_eq!(
            bounds("select log from root.__system.audit._root where time > 5 and time <= 9"),
            Some((6, 9))
        );
        assert_eq!(
            bounds("select log from root.__system.audit._root where 5 < time"),
            Some((6, i64::MAX))
        );
        assert_eq!(
            bounds("select log from root.__system.audit._root where log = 'x'"),
            None
        );
    }
}
