//! The audit log (issue 13): who did what, when, from where, with what result — logins (success and
//! failure, sessions and pipe handshakes) and statements by IoTDB's categories (`DDL`: schema, users
//! and privileges, pipes; `DML`: `INSERT`/`DELETE`; `QUERY`: `SELECT`, `SHOW`, `LIST`, `COUNT`).
//!
//! Configured with IoTDB's keys (`enable_audit_log`, `audit_log_storage`, `audit_log_operation`).
//! Entries are appended as JSON lines to one file (`audit_log_path`, `<data_dir>/audit.log` by
//! default); with `IOTDB` storage that file is also readable as IoTDB's series
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
        let text = statement.to_string();
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
    path: PathBuf,
    file: Option<Mutex<File>>,
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
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(open_error)?;
        Ok(AuditLog {
            enabled: true,
            ddl: operations.iter().any(|o| o == "DDL"),
            dml: operations.iter().any(|o| o == "DML"),
            query: operations.iter().any(|o| o == "QUERY"),
            queryable: storage.iter().any(|s| s == "IOTDB"),
            to_logger: storage.iter().any(|s| s == "LOGGER"),
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
        let category = Category::of(statement);
        let wanted = match category {
            Category::Ddl => self.ddl,
            Category::Dml => self.dml,
            Category::Query => self.query,
            Category::Login => true,
        };
        if !wanted {
            return;
        }
        self.record(AuditEntry {
            time_ms: now_ms(),
            user: user.to_string(),
            address: address.to_string(),
            category: category.name().to_string(),
            log: mask_secrets(&statement.to_string()),
            result: failure.map_or_else(
                || "success".to_string(),
                |e| format!("failure: {}: {}", e.code.code(), e.message),
            ),
        });
    }

    /// A schema or delete RPC (the session API's DDL, which bypasses SQL), when its category is
    /// audited; `status` is the RPC's answer.
    pub fn rpc(
        &self,
        user: &str,
        address: &str,
        what: &RpcAudit,
        status: &duet_proto::t::TSStatus,
    ) {
        if !self.enabled
            || !(match what.category {
                Category::Dml => self.dml,
                _ => self.ddl,
            })
        {
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
        if let Err(e) = file.write_all(line.as_bytes()) {
            warn!(
                "cannot append to the audit log {}: {e}",
                self.path.display()
            );
        }
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
        let file = File::open(&self.path).map_err(|e| {
            StatementError::new(
                StatusCode::InternalServerError,
                format!("cannot read the audit log {}: {e}", self.path.display()),
            )
        })?;
        let mut held = 0usize;
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(entry) = serde_json::from_str::<AuditEntry>(&line) else {
                continue;
            };
            if !keep(&entry) {
                continue;
            }
            held += line.len();
            if held > max_bytes {
                return Err(StatementError::new(
                    StatusCode::QueryExecutionMemoryNotEnough,
                    format!("the audit entries this query selects exceed query_memory_bytes ({max_bytes}); narrow it with WHERE time or LIMIT"),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

/// What the audit log records of an RPC that changes the schema or deletes data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcAudit {
    pub category: Category,
    pub log: String,
}

/// The audit record of a schema or delete RPC; `None` for the others (inserts and queries through
/// RPCs are not audited, as IoTDB with `enable_audit_log_for_native_insert_api = false`).
pub fn describe_rpc(request: &duet_proto::rpc::Request) -> Option<RpcAudit> {
    use duet_proto::rpc::Request as R;
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
    Some(RpcAudit { category, log })
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
    let upper = text.trim_start().to_ascii_uppercase();
    let user_statement = upper.starts_with("CREATE USER") || upper.starts_with("ALTER USER");
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
            out.push_str(&rest[start..]);
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
