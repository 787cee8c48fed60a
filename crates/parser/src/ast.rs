//! The statements of the Duet dialect, and their canonical SQL form (`Display`), which parses back to an
//! equal statement so the server can store, log and echo statements without losing meaning.

use std::fmt;

use crate::data::{self, ColumnDef, DataTypeName, Expr, InsertRow, Path, Quoted, Select};
use crate::keywords;

/// The pattern of every device template statement (create, activate, set, unset, drop, alter,
/// deactivate, and the SHOW statements of templates), so that the matches routing them name them in
/// one place and stay exhaustive.
#[macro_export]
macro_rules! template_statement {
    () => {
        $crate::Statement::CreateTemplate { .. }
            | $crate::Statement::ActivateTemplate { .. }
            | $crate::Statement::SetTemplate { .. }
            | $crate::Statement::UnsetTemplate { .. }
            | $crate::Statement::DropTemplate { .. }
            | $crate::Statement::AlterTemplateAdd { .. }
            | $crate::Statement::DeactivateTemplate { .. }
            | $crate::Statement::ShowTemplates
            | $crate::Statement::ShowNodesInTemplate { .. }
            | $crate::Statement::ShowPathsSetTemplate { .. }
            | $crate::Statement::ShowPathsUsingTemplate { .. }
    };
}

/// The pattern of every statement that lists or counts the schema (databases, series, devices,
/// child paths and nodes, TTLs, the devices using a template). They are never refused: they run
/// under the session's READ_SCHEMA scope, which leaves out what the user may not read; the engine
/// (entering the scope) and authorization (passing them) name them here, in one place.
#[macro_export]
macro_rules! schema_listing_statement {
    () => {
        $crate::Statement::ShowDatabases { .. }
            | $crate::Statement::ShowTimeseries { .. }
            | $crate::Statement::ShowDevices { .. }
            | $crate::Statement::CountTimeseries { .. }
            | $crate::Statement::CountDevices { .. }
            | $crate::Statement::CountTimeseriesByLevel { .. }
            | $crate::Statement::CountDatabases { .. }
            | $crate::Statement::CountNodes { .. }
            | $crate::Statement::ShowChildPaths { .. }
            | $crate::Statement::ShowChildNodes { .. }
            | $crate::Statement::ShowTtl { .. }
            | $crate::Statement::ShowPathsUsingTemplate { .. }
    };
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreatePipe(CreatePipe),
    AlterPipe(AlterPipe),
    StartPipe {
        name: String,
    },
    StopPipe {
        name: String,
    },
    DropPipe {
        if_exists: bool,
        name: String,
    },
    /// `SHOW PIPES [WHERE (SINK|CONNECTOR) USED BY name]`
    ShowPipes {
        sink_used_by: Option<String>,
    },
    /// `SHOW PIPE name`
    ShowPipe {
        name: String,
    },
    /// `SHOW CLUSTER [DETAILS]`
    ShowCluster {
        details: bool,
    },
    /// `SHOW CLUSTERID` or `SHOW CLUSTER_ID`
    ShowClusterId,
    ShowVersion,
    /// `SHOW VARIABLES`: the cluster parameters.
    ShowVariables,
    /// `SHOW DATANODES`
    ShowDataNodes,
    /// `SHOW CONFIGNODES`
    ShowConfigNodes,
    /// `SET TTL TO path (ms | INF)`; `ttl_ms` `None` is INF.
    SetTtl {
        path: Path,
        ttl_ms: Option<u64>,
    },
    /// `UNSET TTL (FROM | TO) path`
    UnsetTtl {
        path: Path,
    },
    /// `SHOW ALL TTL` (`None`) or `SHOW TTL ON path`
    ShowTtl {
        path: Option<Path>,
    },
    /// `SHOW QUERIES` or `SHOW QUERY PROCESSLIST`: the queries running on this instance.
    ShowQueries,
    /// `KILL QUERY 'id'` (`Some`) or `KILL ALL QUERIES` (`None`).
    KillQuery {
        id: Option<String>,
    },
    /// `SHOW [SCHEMA | DATA] REGIONS [OF DATABASE path [, path]…]`
    ShowRegions {
        kind: Option<RegionKind>,
        databases: Vec<Path>,
    },
    /// `CREATE USER name 'password'`
    CreateUser {
        name: String,
        password: String,
    },
    /// `ALTER USER name SET PASSWORD 'password'`
    AlterUserPassword {
        name: String,
        password: String,
    },
    DropUser {
        name: String,
    },
    /// `LIST USER [OF ROLE role]`
    ListUser {
        of_role: Option<String>,
    },
    /// `CREATE ROLE name`
    CreateRole {
        name: String,
    },
    /// `DROP ROLE name`
    DropRole {
        name: String,
    },
    /// `LIST ROLE [OF USER user]`
    ListRole {
        of_user: Option<String>,
    },
    /// `LIST PRIVILEGES OF (USER | ROLE) name`
    ListPrivileges {
        of: Grantee,
    },
    /// `GRANT privilege, … ON path, … TO (USER | ROLE) name [WITH GRANT OPTION]`; privilege names
    /// are upper-cased (`READ_DATA`, or IoTDB's composites `READ`, `WRITE`, `ALL`).
    Grant {
        privileges: Vec<String>,
        paths: Vec<Path>,
        grantee: Grantee,
        grant_option: bool,
    },
    /// `REVOKE privilege, … ON path, … FROM (USER | ROLE) name`
    Revoke {
        privileges: Vec<String>,
        paths: Vec<Path>,
        grantee: Grantee,
    },
    /// `GRANT ROLE role TO user`
    GrantRole {
        role: String,
        user: String,
    },
    /// `REVOKE ROLE role FROM user`
    RevokeRole {
        role: String,
        user: String,
    },
    /// `CREATE DATABASE path`, `CREATE STORAGE GROUP path`, `SET STORAGE GROUP TO path`
    CreateDatabase {
        path: Path,
    },
    /// `DROP DATABASE path, …`, `DELETE DATABASE …`, `DELETE STORAGE GROUP …`, `DROP STORAGE GROUP …`
    DropDatabase {
        paths: Vec<Path>,
    },
    /// `SHOW DATABASES [path]`, `SHOW STORAGE GROUP [path]`
    ShowDatabases {
        path: Option<Path>,
    },
    /// `CREATE TIMESERIES path [WITH] [DATATYPE=]type [[,] KEY=value]… [TAGS(…)] [ATTRIBUTES(…)]`.
    ///
    /// `attributes` holds the `KEY=value` pairs with the key upper-cased (`("ENCODING", "RLE")`), then each
    /// tag as `("TAGS.key", "value")` and each attribute as `("ATTRIBUTES.key", "value")`, tag and
    /// attribute keys as written; values are as written, without quotes.
    CreateTimeseries {
        path: Path,
        data_type: DataTypeName,
        attributes: Vec<(String, String)>,
    },
    /// `CREATE ALIGNED TIMESERIES device(s1 INT32 [ENCODING=…] …, s2 FLOAT, …)`
    CreateAlignedTimeseries {
        device: Path,
        columns: Vec<ColumnDef>,
    },
    /// `SHOW TIMESERIES [path]`
    ShowTimeseries {
        path: Option<Path>,
    },
    /// `SHOW DEVICES [path]`
    ShowDevices {
        path: Option<Path>,
    },
    /// `COUNT TIMESERIES [path]`
    CountTimeseries {
        path: Option<Path>,
    },
    /// `COUNT DEVICES [path]`
    CountDevices {
        path: Option<Path>,
    },
    /// `COUNT TIMESERIES [path] GROUP BY LEVEL = level`
    CountTimeseriesByLevel {
        path: Option<Path>,
        level: u32,
    },
    /// `COUNT DATABASES [path]`, `COUNT STORAGE GROUP [path]`
    CountDatabases {
        path: Option<Path>,
    },
    /// `COUNT NODES path LEVEL = level`
    CountNodes {
        path: Path,
        level: u32,
    },
    /// `SHOW CHILD PATHS [path]`
    ShowChildPaths {
        path: Option<Path>,
    },
    /// `SHOW CHILD NODES [path]`
    ShowChildNodes {
        path: Option<Path>,
    },
    /// `DELETE TIMESERIES path, …`, `DROP TIMESERIES path, …`
    DeleteTimeseries {
        paths: Vec<Path>,
    },
    /// `INSERT INTO device([TIME|TIMESTAMP,] c1, …) [ALIGNED] VALUES (…), …`; without a time column every
    /// row's time is [`crate::InsertTime::Now`].
    Insert {
        device: Path,
        aligned: bool,
        /// The measurements after the time column.
        columns: Vec<String>,
        rows: Vec<InsertRow>,
    },
    /// `DELETE FROM path, … [WHERE condition]`
    DeleteData {
        paths: Vec<Path>,
        condition: Option<Expr>,
    },
    /// `FLUSH [path, …] [TRUE|FALSE] [ON LOCAL|CLUSTER]` (the flags are accepted and dropped)
    Flush {
        paths: Vec<Path>,
    },
    Select(Box<Select>),
    /// `CREATE (DEVICE | SCHEMA) TEMPLATE name [ALIGNED] [(m type [attributes], …)]`
    CreateTemplate {
        name: String,
        aligned: bool,
        measurements: Vec<ColumnDef>,
    },
    /// `CREATE TIMESERIES (USING | OF) (DEVICE | SCHEMA) TEMPLATE ON path`: activation.
    ActivateTemplate {
        path: Path,
    },
    /// `SET (DEVICE | SCHEMA) TEMPLATE name TO path`
    SetTemplate {
        name: String,
        path: Path,
    },
    /// `UNSET (DEVICE | SCHEMA) TEMPLATE name FROM path`
    UnsetTemplate {
        name: String,
        path: Path,
    },
    /// `DROP (DEVICE | SCHEMA) TEMPLATE name`
    DropTemplate {
        name: String,
    },
    /// `ALTER (DEVICE | SCHEMA) TEMPLATE name ADD (m type [attributes], …)`
    AlterTemplateAdd {
        name: String,
        measurements: Vec<ColumnDef>,
    },
    /// `DEACTIVATE (DEVICE | SCHEMA) TEMPLATE [name] FROM path, …`, also
    /// `(DELETE | DROP) TIMESERIES OF (DEVICE | SCHEMA) TEMPLATE [name] FROM path, …`
    DeactivateTemplate {
        name: Option<String>,
        paths: Vec<Path>,
    },
    /// `SHOW (DEVICE | SCHEMA) TEMPLATES`
    ShowTemplates,
    /// `SHOW NODES IN (DEVICE | SCHEMA) TEMPLATE name`
    ShowNodesInTemplate {
        name: String,
    },
    /// `SHOW PATHS SET (DEVICE | SCHEMA) TEMPLATE name`
    ShowPathsSetTemplate {
        name: String,
    },
    /// `SHOW PATHS [path] USING (DEVICE | SCHEMA) TEMPLATE name`
    ShowPathsUsingTemplate {
        path: Option<Path>,
        name: String,
    },
}

/// `CREATE PIPE`; the bare form `CREATE PIPE p (…)` is the same as `CREATE PIPE p WITH SINK (…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePipe {
    pub if_not_exists: bool,
    pub name: String,
    /// `WITH SOURCE` / `WITH EXTRACTOR`
    pub source: Option<Attributes>,
    pub processor: Option<Attributes>,
    /// `WITH SINK` / `WITH CONNECTOR`
    pub sink: Attributes,
}

/// `ALTER PIPE`; a clause left out keeps that plugin's attributes (no clause at all restarts the pipe with its
/// configuration, as in IoTDB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPipe {
    pub if_exists: bool,
    pub name: String,
    pub source: Option<AlterClause>,
    pub processor: Option<AlterClause>,
    pub sink: Option<AlterClause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterClause {
    pub mode: AlterMode,
    pub attributes: Attributes,
}

/// Who a GRANT, REVOKE or LIST PRIVILEGES is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    User(String),
    Role(String),
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::User(name) => write!(f, "USER {}", Name(name)),
            Grantee::Role(name) => write!(f, "ROLE {}", Name(name)),
        }
    }
}

/// Which regions `SHOW REGIONS` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    Schema,
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterMode {
    /// Merge the given attributes into the existing ones.
    Modify,
    /// Replace all of the plugin's attributes.
    Replace,
}

/// A plugin's `'key'='value'` list, in written order, keys and values unquoted but otherwise as written
/// (prefix and synonym resolution is the runtime's business).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(pub Vec<(String, String)>);

impl Attributes {
    /// The value of the first attribute whose key is exactly `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreatePipe(create) => create.fmt(f),
            Statement::AlterPipe(alter) => alter.fmt(f),
            Statement::StartPipe { name } => write!(f, "START PIPE {}", Name(name)),
            Statement::StopPipe { name } => write!(f, "STOP PIPE {}", Name(name)),
            Statement::DropPipe { if_exists, name } => {
                write!(
                    f,
                    "DROP PIPE {}{}",
                    if *if_exists { "IF EXISTS " } else { "" },
                    Name(name)
                )
            }
            Statement::ShowPipes { sink_used_by: None } => f.write_str("SHOW PIPES"),
            Statement::ShowPipes {
                sink_used_by: Some(name),
            } => {
                write!(f, "SHOW PIPES WHERE SINK USED BY {}", Name(name))
            }
            Statement::ShowPipe { name } => write!(f, "SHOW PIPE {}", Name(name)),
            Statement::ShowCluster { details } => f.write_str(if *details {
                "SHOW CLUSTER DETAILS"
            } else {
                "SHOW CLUSTER"
            }),
            Statement::ShowClusterId => f.write_str("SHOW CLUSTERID"),
            Statement::ShowVersion => f.write_str("SHOW VERSION"),
            Statement::ShowVariables => f.write_str("SHOW VARIABLES"),
            Statement::ShowDataNodes => f.write_str("SHOW DATANODES"),
            Statement::ShowConfigNodes => f.write_str("SHOW CONFIGNODES"),
            Statement::SetTtl { path, ttl_ms } => match ttl_ms {
                Some(ms) => write!(f, "SET TTL TO {path} {ms}"),
                None => write!(f, "SET TTL TO {path} INF"),
            },
            Statement::UnsetTtl { path } => write!(f, "UNSET TTL FROM {path}"),
            Statement::ShowTtl { path: None } => f.write_str("SHOW ALL TTL"),
            Statement::ShowTtl { path: Some(path) } => write!(f, "SHOW TTL ON {path}"),
            Statement::ShowQueries => f.write_str("SHOW QUERIES"),
            Statement::KillQuery { id: Some(id) } => write!(f, "KILL QUERY {}", Quoted(id)),
            Statement::KillQuery { id: None } => f.write_str("KILL ALL QUERIES"),
            Statement::ShowRegions { kind, databases } => {
                f.write_str("SHOW ")?;
                match kind {
                    Some(RegionKind::Schema) => f.write_str("SCHEMA ")?,
                    Some(RegionKind::Data) => f.write_str("DATA ")?,
                    None => {}
                }
                f.write_str("REGIONS")?;
                if !databases.is_empty() {
                    f.write_str(" OF DATABASE ")?;
                    data::paths(f, databases)?;
                }
                Ok(())
            }
            Statement::CreateUser { name, password } => {
                write!(f, "CREATE USER {} {}", Name(name), Quoted(password))
            }
            Statement::AlterUserPassword { name, password } => {
                write!(
                    f,
                    "ALTER USER {} SET PASSWORD {}",
                    Name(name),
                    Quoted(password)
                )
            }
            Statement::DropUser { name } => write!(f, "DROP USER {}", Name(name)),
            Statement::ListUser { of_role: None } => f.write_str("LIST USER"),
            Statement::ListUser {
                of_role: Some(role),
            } => write!(f, "LIST USER OF ROLE {}", Name(role)),
            Statement::CreateRole { name } => write!(f, "CREATE ROLE {}", Name(name)),
            Statement::DropRole { name } => write!(f, "DROP ROLE {}", Name(name)),
            Statement::ListRole { of_user: None } => f.write_str("LIST ROLE"),
            Statement::ListRole {
                of_user: Some(user),
            } => write!(f, "LIST ROLE OF USER {}", Name(user)),
            Statement::ListPrivileges { of } => write!(f, "LIST PRIVILEGES OF {of}"),
            Statement::Grant {
                privileges,
                paths,
                grantee,
                grant_option,
            } => {
                write!(f, "GRANT {} ON ", privileges.join(", "))?;
                data::paths(f, paths)?;
                write!(f, " TO {grantee}")?;
                if *grant_option {
                    f.write_str(" WITH GRANT OPTION")?;
                }
                Ok(())
            }
            Statement::Revoke {
                privileges,
                paths,
                grantee,
            } => {
                write!(f, "REVOKE {} ON ", privileges.join(", "))?;
                data::paths(f, paths)?;
                write!(f, " FROM {grantee}")
            }
            Statement::GrantRole { role, user } => {
                write!(f, "GRANT ROLE {} TO {}", Name(role), Name(user))
            }
            Statement::RevokeRole { role, user } => {
                write!(f, "REVOKE ROLE {} FROM {}", Name(role), Name(user))
            }
            Statement::CreateDatabase { path } => write!(f, "CREATE DATABASE {path}"),
            Statement::DropDatabase { paths } => {
                f.write_str("DROP DATABASE ")?;
                data::paths(f, paths)
            }
            Statement::ShowDatabases { path } => keyword_and_path(f, "SHOW DATABASES", path),
            Statement::CreateTimeseries {
                path,
                data_type,
                attributes,
            } => {
                write!(f, "CREATE TIMESERIES {path} WITH DATATYPE={data_type}")?;
                data::attributes(f, attributes, ", ")
            }
            Statement::CreateAlignedTimeseries { device, columns } => {
                write!(f, "CREATE ALIGNED TIMESERIES {device}(")?;
                for (index, column) in columns.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    column.fmt(f)?;
                }
                f.write_str(")")
            }
            Statement::ShowTimeseries { path } => keyword_and_path(f, "SHOW TIMESERIES", path),
            Statement::ShowDevices { path } => keyword_and_path(f, "SHOW DEVICES", path),
            Statement::CountTimeseries { path } => keyword_and_path(f, "COUNT TIMESERIES", path),
            Statement::CountDevices { path } => keyword_and_path(f, "COUNT DEVICES", path),
            Statement::CreateTemplate {
                name,
                aligned,
                measurements,
            } => {
                write!(f, "CREATE DEVICE TEMPLATE {}", Name(name))?;
                if *aligned {
                    f.write_str(" ALIGNED")?;
                }
                if !measurements.is_empty() {
                    f.write_str(" ")?;
                    template_measurements(f, measurements)?;
                }
                Ok(())
            }
            Statement::ActivateTemplate { path } => {
                write!(f, "CREATE TIMESERIES USING DEVICE TEMPLATE ON {path}")
            }
            Statement::SetTemplate { name, path } => {
                write!(f, "SET DEVICE TEMPLATE {} TO {path}", Name(name))
            }
            Statement::UnsetTemplate { name, path } => {
                write!(f, "UNSET DEVICE TEMPLATE {} FROM {path}", Name(name))
            }
            Statement::DropTemplate { name } => write!(f, "DROP DEVICE TEMPLATE {}", Name(name)),
            Statement::AlterTemplateAdd { name, measurements } => {
                write!(f, "ALTER DEVICE TEMPLATE {} ADD ", Name(name))?;
                template_measurements(f, measurements)
            }
            Statement::DeactivateTemplate { name, paths } => {
                f.write_str("DEACTIVATE DEVICE TEMPLATE ")?;
                if let Some(name) = name {
                    write!(f, "{} ", Name(name))?;
                }
                f.write_str("FROM ")?;
                data::paths(f, paths)
            }
            Statement::ShowTemplates => f.write_str("SHOW DEVICE TEMPLATES"),
            Statement::ShowNodesInTemplate { name } => {
                write!(f, "SHOW NODES IN DEVICE TEMPLATE {}", Name(name))
            }
            Statement::ShowPathsSetTemplate { name } => {
                write!(f, "SHOW PATHS SET DEVICE TEMPLATE {}", Name(name))
            }
            Statement::ShowPathsUsingTemplate { path, name } => {
                f.write_str("SHOW PATHS ")?;
                if let Some(path) = path {
                    write!(f, "{path} ")?;
                }
                write!(f, "USING DEVICE TEMPLATE {}", Name(name))
            }
            Statement::CountTimeseriesByLevel { path, level } => {
                keyword_and_path(f, "COUNT TIMESERIES", path)?;
                write!(f, " GROUP BY LEVEL = {level}")
            }
            Statement::CountDatabases { path } => keyword_and_path(f, "COUNT DATABASES", path),
            Statement::CountNodes { path, level } => {
                write!(f, "COUNT NODES {path} LEVEL = {level}")
            }
            Statement::ShowChildPaths { path } => keyword_and_path(f, "SHOW CHILD PATHS", path),
            Statement::ShowChildNodes { path } => keyword_and_path(f, "SHOW CHILD NODES", path),
            Statement::DeleteTimeseries { paths } => {
                f.write_str("DELETE TIMESERIES ")?;
                data::paths(f, paths)
            }
            Statement::Insert {
                device,
                aligned,
                columns,
                rows,
            } => data::insert(f, device, *aligned, columns, rows),
            Statement::DeleteData { paths, condition } => {
                f.write_str("DELETE FROM ")?;
                data::paths(f, paths)?;
                match condition {
                    Some(condition) => write!(f, " WHERE {condition}"),
                    None => Ok(()),
                }
            }
            Statement::Flush { paths } => {
                f.write_str("FLUSH")?;
                if !paths.is_empty() {
                    f.write_str(" ")?;
                }
                data::paths(f, paths)
            }
            Statement::Select(select) => select.fmt(f),
        }
    }
}

impl fmt::Display for CreatePipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE PIPE ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        Name(&self.name).fmt(f)?;
        if let Some(source) = &self.source {
            write!(f, " WITH SOURCE {source}")?;
        }
        if let Some(processor) = &self.processor {
            write!(f, " WITH PROCESSOR {processor}")?;
        }
        write!(f, " WITH SINK {}", self.sink)
    }
}

impl fmt::Display for AlterPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ALTER PIPE ")?;
        if self.if_exists {
            f.write_str("IF EXISTS ")?;
        }
        Name(&self.name).fmt(f)?;
        let clauses = [
            ("SOURCE", &self.source),
            ("PROCESSOR", &self.processor),
            ("SINK", &self.sink),
        ];
        for (plugin, clause) in clauses {
            if let Some(AlterClause { mode, attributes }) = clause {
                write!(f, " {mode} {plugin} {attributes}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for AlterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlterMode::Modify => "MODIFY",
            AlterMode::Replace => "REPLACE",
        })
    }
}

/// `('k1'='v1', 'k2'='v2')`
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (index, (key, value)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", Quoted(key), Quoted(value))?;
        }
        f.write_str(")")
    }
}

/// A pipe or user name: plain when it is a simple identifier that is not a keyword, back-quoted otherwise.
/// `(m type [attributes], …)` of a template.
fn template_measurements(f: &mut fmt::Formatter<'_>, measurements: &[ColumnDef]) -> fmt::Result {
    f.write_str("(")?;
    for (index, m) in measurements.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{m}")?;
    }
    f.write_str(")")
}

struct Name<'a>(&'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        let simple = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !keywords::is_keyword(self.0);
        if simple {
            f.write_str(self.0)
        } else {
            write!(f, "`{}`", self.0.replace('`', "``"))
        }
    }
}

/// `keyword`, then ` path` if there is one.
fn keyword_and_path(f: &mut fmt::Formatter<'_>, keyword: &str, path: &Option<Path>) -> fmt::Result {
    f.write_str(keyword)?;
    match path {
        Some(path) => write!(f, " {path}"),
        None => Ok(()),
    }
}
