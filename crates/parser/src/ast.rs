//! The statements of the Duet dialect, and their canonical SQL form (`Display`), which parses back to an
//! equal statement so the server can store, log and echo statements without losing meaning.

use std::fmt;

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
                write!(f, "CREATE USER {} {}", Name(name), Literal(password))
            }
            Statement::AlterUserPassword { name, password } => {
                write!(
                    f,
                    "ALTER USER {} SET PASSWORD {}",
                    Name(name),
                    Literal(password)
                )
            }
            Statement::DropUser { name } => write!(f, "DROP USER {}", Name(name)),
            Statement::ListUser => f.write_str("LIST USER"),
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
            write!(f, "{}={}", Literal(key), Literal(value))?;
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

/// A single-quoted string literal.
struct Literal<'a>(&'a str);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}
