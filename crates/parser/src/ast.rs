//! The statements of the Duet dialect, and their canonical SQL form (`Display`), which parses back to an
//! equal statement so the server can store, log and echo statements without losing meaning.

use std::fmt;

use crate::data::{self, ColumnDef, DataTypeName, Expr, InsertRow, Path, Quoted, Select};
use crate::keywords;

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
    ListUser,
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
            Statement::ListUser => f.write_str("LIST USER"),
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
