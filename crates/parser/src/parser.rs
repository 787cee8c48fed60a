//! Recursive-descent parser from the token stream to [`Statement`]s, following `grammar/duet.ebnf`.
//!
//! To add a statement: add its production to the grammar, a branch to [`Parser::statement`] (or to the
//! branch of its first keyword), and remove its phrase from [`UNSUPPORTED`].

use sqlparser::tokenizer::Token;

use crate::ast::{
    AlterClause, AlterMode, AlterPipe, Attributes, CreatePipe, Grantee, RegionKind, Statement,
};
use crate::error::ParseError;
use crate::keywords::*;
use crate::lexer::TokenStream;

mod data;
mod template;

/// Beginnings of IoTDB statements that Duet does not implement yet. They are reported as
/// [`crate::ParseErrorKind::Unsupported`] rather than as syntax errors, so a client learns that the
/// statement is valid IoTDB and simply not available here. The longest matching phrase names the statement.
const UNSUPPORTED: &[&[&str]] = &[
    &["DELETE"],
    &["UPDATE"],
    &["COUNT"],
    &["SET"],
    &["UNSET"],
    &["LOAD"],
    &["UNLOAD"],
    &["EXPLAIN"],
    &["CLEAR"],
    &["MERGE"],
    &["REMOVE"],
    &["MIGRATE"],
    &["DESCRIBE"],
    &["DESC"],
    &["USE"],
    &["CREATE", "FUNCTION"],
    &["CREATE", "TRIGGER"],
    &["CREATE", "PIPEPLUGIN"],
    &["CREATE", "CONTINUOUS", "QUERY"],
    &["CREATE", "CQ"],
    &["CREATE", "VIEW"],
    &["CREATE", "TOPIC"],
    &["CREATE", "TABLE"],
    &["ALTER", "TIMESERIES"],
    &["ALTER", "VIEW"],
    &["ALTER", "TABLE"],
    &["DROP", "FUNCTION"],
    &["DROP", "TRIGGER"],
    &["DROP", "PIPEPLUGIN"],
    &["DROP", "CONTINUOUS", "QUERY"],
    &["DROP", "CQ"],
    &["DROP", "VIEW"],
    &["DROP", "TOPIC"],
    &["DROP", "TABLE"],
    &["START", "REPAIR"],
    &["STOP", "REPAIR"],
    &["START", "TRIGGER"],
    &["STOP", "TRIGGER"],
    &["SHOW", "LATEST", "TIMESERIES"],
    &["SHOW", "FUNCTIONS"],
    &["SHOW", "TRIGGERS"],
    &["SHOW", "PIPEPLUGINS"],
    &["SHOW", "AINODES"],
    &["SHOW", "NODES"],
    &["SHOW", "TOPICS"],
    &["SHOW", "SUBSCRIPTIONS"],
    &["SHOW", "CONTINUOUS", "QUERIES"],
    &["SHOW", "CQS"],
    &["SHOW", "TABLES"],
    &["SHOW", "CURRENT_USER"],
];

/// Statements Duet implements whose first words overlap an [`UNSUPPORTED`] phrase (`DELETE`, `COUNT`,
/// `SET`): a supported phrase at least as long as the longest unsupported match wins.
const SUPPORTED: &[&[&str]] = &[
    &["DELETE", "FROM"],
    &["DELETE", "TIMESERIES"],
    &["DELETE", "DATABASE"],
    &["DELETE", "STORAGE", "GROUP"],
    &["COUNT", "TIMESERIES"],
    &["COUNT", "DEVICES"],
    &["COUNT", "NODES"],
    &["COUNT", "DATABASES"],
    &["COUNT", "STORAGE", "GROUP"],
    &["SET", "STORAGE", "GROUP"],
    &["SET", "TTL"],
    &["UNSET", "TTL"],
];

/// What may follow `WITH` (CREATE PIPE) or `MODIFY`/`REPLACE` (ALTER PIPE) once the clauses before
/// stage `n` (0 = source, 1 = processor, 2 = sink) are behind: the order is fixed.
const PLUGIN_CHOICES: [&str; 3] = [
    "SOURCE, EXTRACTOR, PROCESSOR, SINK or CONNECTOR",
    "PROCESSOR, SINK or CONNECTOR",
    "SINK or CONNECTOR",
];

/// The three plugin slots of a pipe, in their fixed order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Plugin {
    Source = 0,
    Processor = 1,
    Sink = 2,
}

pub(crate) fn parse_statements(sql: &str) -> Result<Vec<Statement>, ParseError> {
    Parser {
        tokens: TokenStream::new(sql),
        nesting: 0,
        aggregates: false,
    }
    .statements()
}

struct Parser {
    tokens: TokenStream,
    /// How deep the expression rules are in the recursion (see [`data::MAX_DEPTH`]).
    nesting: usize,
    /// Whether aggregate calls (`count(s1)`) may stand in an expression: in HAVING only.
    aggregates: bool,
}

impl Parser {
    fn statements(&mut self) -> Result<Vec<Statement>, ParseError> {
        let mut statements = Vec::new();
        loop {
            while self.tokens.eat_token(&Token::SemiColon) {}
            if self.tokens.at_end() {
                break;
            }
            statements.push(self.statement()?);
            if !self.tokens.at_end() && !self.tokens.eat_token(&Token::SemiColon) {
                return Err(self.tokens.expected("';' or end of input"));
            }
        }
        match self.tokens.lexical_error() {
            Some(error) => Err(error.clone()),
            None => Ok(statements),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.at_template_statement() {
            return self.template();
        }
        if let Some(error) = self.unsupported() {
            return Err(error);
        }
        let t = &mut self.tokens;
        if t.eat_keyword(CREATE) {
            if t.eat_keyword(PIPE) {
                self.create_pipe()
            } else if t.eat_keyword(USER) {
                let name = self.name("a user name")?;
                let password = self.string("a password string")?;
                Ok(Statement::CreateUser { name, password })
            } else if t.eat_keyword(ROLE) {
                Ok(Statement::CreateRole {
                    name: self.name("a role name")?,
                })
            } else if t.eat_keyword(DATABASE) || t.eat_keywords(&[STORAGE, GROUP]) {
                self.create_database()
            } else if t.eat_keyword(TIMESERIES) {
                self.create_timeseries()
            } else if t.eat_keywords(&[ALIGNED, TIMESERIES]) {
                self.create_aligned_timeseries()
            } else {
                Err(t.expected("PIPE, USER, ROLE, DATABASE, TIMESERIES or ALIGNED TIMESERIES"))
            }
        } else if t.eat_keyword(ALTER) {
            if t.eat_keyword(PIPE) {
                self.alter_pipe()
            } else if t.eat_keyword(USER) {
                let name = self.name("a user name")?;
                self.tokens.expect_keyword(SET)?;
                self.tokens.expect_keyword(PASSWORD)?;
                let password = self.string("a password string")?;
                Ok(Statement::AlterUserPassword { name, password })
            } else {
                Err(t.expected("PIPE or USER"))
            }
        } else if t.eat_keyword(DROP) {
            if t.eat_keyword(PIPE) {
                let if_exists = self.tokens.eat_keywords(&[IF, EXISTS]);
                let name = self.name("a pipe name")?;
                Ok(Statement::DropPipe { if_exists, name })
            } else if t.eat_keyword(USER) {
                Ok(Statement::DropUser {
                    name: self.name("a user name")?,
                })
            } else if t.eat_keyword(ROLE) {
                Ok(Statement::DropRole {
                    name: self.name("a role name")?,
                })
            } else if t.eat_keyword(DATABASE) || t.eat_keywords(&[STORAGE, GROUP]) {
                self.drop_database()
            } else if t.eat_keyword(TIMESERIES) {
                self.delete_timeseries()
            } else {
                Err(t.expected("PIPE, USER, ROLE, DATABASE or TIMESERIES"))
            }
        } else if t.eat_keyword(DELETE) {
            if t.eat_keyword(FROM) {
                self.delete_data()
            } else if t.eat_keyword(TIMESERIES) {
                self.delete_timeseries()
            } else if t.eat_keyword(DATABASE) || t.eat_keywords(&[STORAGE, GROUP]) {
                self.drop_database()
            } else {
                Err(t.expected("FROM, TIMESERIES or DATABASE"))
            }
        } else if t.eat_keyword(START) {
            t.expect_keyword(PIPE)?;
            Ok(Statement::StartPipe {
                name: self.name("a pipe name")?,
            })
        } else if t.eat_keyword(STOP) {
            t.expect_keyword(PIPE)?;
            Ok(Statement::StopPipe {
                name: self.name("a pipe name")?,
            })
        } else if t.eat_keyword(SHOW) {
            self.show()
        } else if t.eat_keyword(LIST) {
            self.list()
        } else if t.eat_keyword(GRANT) {
            self.grant()
        } else if t.eat_keyword(REVOKE) {
            self.revoke()
        } else if t.eat_keyword(SELECT) {
            self.select()
        } else if t.eat_keyword(INSERT) {
            t.expect_keyword(INTO)?;
            self.insert()
        } else if t.eat_keyword(COUNT) {
            if t.eat_keyword(TIMESERIES) {
                self.count_timeseries()
            } else if t.eat_keyword(DEVICES) {
                let path = self.optional_path("COUNT DEVICES")?;
                Ok(Statement::CountDevices { path })
            } else if t.eat_keyword(DATABASES) || t.eat_keywords(&[STORAGE, GROUP]) {
                let path = self.optional_path("COUNT DATABASES")?;
                Ok(Statement::CountDatabases { path })
            } else if t.eat_keyword(NODES) {
                self.count_nodes()
            } else {
                Err(t.expected("TIMESERIES, DEVICES, DATABASES or NODES"))
            }
        } else if t.eat_keyword(FLUSH) {
            self.flush()
        } else if t.eat_keyword(KILL) {
            if t.eat_keywords(&[ALL_WORD, QUERIES]) {
                Ok(Statement::KillQuery { id: None })
            } else if t.eat_keyword(QUERY) {
                Ok(Statement::KillQuery {
                    id: Some(self.string("a query id")?),
                })
            } else {
                Err(t.expected("QUERY or ALL QUERIES"))
            }
        } else if t.eat_keywords(&[SET, TTL]) {
            t.expect_keyword(TO)?;
            let path = self.path()?;
            let t = &mut self.tokens;
            let ttl_ms = if t.eat_keyword(INF) {
                None
            } else {
                match t.next_if_map(|token| match token {
                    Token::Number(number, _) => number.parse::<u64>().ok().filter(|n| *n > 0),
                    _ => None,
                }) {
                    Some(ms) => Some(ms),
                    None => return Err(t.expected("a positive number of milliseconds or INF")),
                }
            };
            Ok(Statement::SetTtl { path, ttl_ms })
        } else if t.eat_keywords(&[UNSET, TTL]) {
            if !t.eat_keyword(FROM) && !t.eat_keyword(TO) {
                return Err(t.expected("FROM or TO"));
            }
            Ok(Statement::UnsetTtl { path: self.path()? })
        } else if t.eat_keywords(&[SET, STORAGE, GROUP]) {
            t.expect_keyword(TO)?;
            self.create_database()
        } else {
            Err(t.expected(
                "a statement (SELECT, INSERT, DELETE, CREATE, ALTER, DROP, SHOW, COUNT, FLUSH, START, STOP, LIST, GRANT, REVOKE, KILL, ...)",
            ))
        }
    }

    /// The Unsupported error if the statement starts with one of the [`UNSUPPORTED`] phrases.
    fn unsupported(&self) -> Option<ParseError> {
        let starts_with = |phrase: &&&[&str]| {
            phrase
                .iter()
                .enumerate()
                .all(|(n, word)| self.tokens.is_keyword_at(n, word))
        };
        let phrase = UNSUPPORTED
            .iter()
            .filter(starts_with)
            .max_by_key(|phrase| phrase.len())?;
        if SUPPORTED
            .iter()
            .filter(starts_with)
            .any(|supported| supported.len() >= phrase.len())
        {
            return None;
        }
        let at = self.tokens.location();
        Some(ParseError::unsupported(
            at.line,
            at.column,
            format!("\"{}\" statements are not supported yet", phrase.join(" ")),
        ))
    }

    /// After `CREATE PIPE`.
    fn create_pipe(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.tokens.eat_keywords(&[IF, NOT, EXISTS]);
        let name = self.name("a pipe name")?;
        if self.tokens.peek() == Some(&Token::LParen) {
            let sink = self.attribute_list()?;
            return Ok(Statement::CreatePipe(CreatePipe {
                if_not_exists,
                name,
                source: None,
                processor: None,
                sink,
            }));
        }
        let mut source = None;
        let mut processor = None;
        let mut next = Plugin::Source;
        loop {
            if !self.tokens.eat_keyword(WITH) {
                let what = if next == Plugin::Source {
                    "WITH or '('"
                } else {
                    "WITH"
                };
                return Err(self.tokens.expected(what));
            }
            let plugin = self.plugin(next)?;
            let attributes = self.attribute_list()?;
            match plugin {
                Plugin::Source => source = Some(attributes),
                Plugin::Processor => processor = Some(attributes),
                Plugin::Sink => {
                    let sink = attributes;
                    return Ok(Statement::CreatePipe(CreatePipe {
                        if_not_exists,
                        name,
                        source,
                        processor,
                        sink,
                    }));
                }
            }
            next = if plugin == Plugin::Source {
                Plugin::Processor
            } else {
                Plugin::Sink
            };
        }
    }

    /// After `ALTER PIPE`.
    fn alter_pipe(&mut self) -> Result<Statement, ParseError> {
        let if_exists = self.tokens.eat_keywords(&[IF, EXISTS]);
        let name = self.name("a pipe name")?;
        let mut alter = AlterPipe {
            if_exists,
            name,
            source: None,
            processor: None,
            sink: None,
        };
        let mut next = Some(Plugin::Source);
        while let Some(earliest) = next {
            let mode = if self.tokens.eat_keyword(MODIFY) {
                AlterMode::Modify
            } else if self.tokens.eat_keyword(REPLACE) {
                AlterMode::Replace
            } else {
                break;
            };
            let plugin = self.plugin(earliest)?;
            let clause = Some(AlterClause {
                mode,
                attributes: self.attribute_list()?,
            });
            match plugin {
                Plugin::Source => alter.source = clause,
                Plugin::Processor => alter.processor = clause,
                Plugin::Sink => alter.sink = clause,
            }
            next = match plugin {
                Plugin::Source => Some(Plugin::Processor),
                Plugin::Processor => Some(Plugin::Sink),
                Plugin::Sink => None,
            };
        }
        Ok(Statement::AlterPipe(alter))
    }

    /// A plugin keyword (`SOURCE`/`EXTRACTOR`, `PROCESSOR`, `SINK`/`CONNECTOR`) no earlier than `earliest`.
    fn plugin(&mut self, earliest: Plugin) -> Result<Plugin, ParseError> {
        let plugin_of = |word: &str| {
            let is = |keyword: &str| word.eq_ignore_ascii_case(keyword);
            if is(SOURCE) || is(EXTRACTOR) {
                Some(Plugin::Source)
            } else if is(PROCESSOR) {
                Some(Plugin::Processor)
            } else if is(SINK) || is(CONNECTOR) {
                Some(Plugin::Sink)
            } else {
                None
            }
        };
        self.tokens
            .next_if_map(|token| match token {
                Token::Word(word) if word.quote_style.is_none() => {
                    plugin_of(&word.value).filter(|plugin| *plugin >= earliest)
                }
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected(PLUGIN_CHOICES[earliest as usize]))
    }

    /// After `SHOW`.
    fn show(&mut self) -> Result<Statement, ParseError> {
        let t = &mut self.tokens;
        if t.eat_keyword(PIPES) {
            if !t.eat_keyword(WHERE) {
                return Ok(Statement::ShowPipes { sink_used_by: None });
            }
            if !t.eat_keyword(SINK) && !t.eat_keyword(CONNECTOR) {
                return Err(t.expected("SINK or CONNECTOR"));
            }
            t.expect_keyword(USED)?;
            t.expect_keyword(BY)?;
            Ok(Statement::ShowPipes {
                sink_used_by: Some(self.name("a pipe name")?),
            })
        } else if t.eat_keyword(PIPE) {
            Ok(Statement::ShowPipe {
                name: self.name("a pipe name")?,
            })
        } else if t.eat_keyword(CLUSTER) {
            Ok(Statement::ShowCluster {
                details: t.eat_keyword(DETAILS),
            })
        } else if t.eat_keyword(CLUSTERID) || t.eat_keyword(CLUSTER_ID) {
            Ok(Statement::ShowClusterId)
        } else if t.eat_keyword(VERSION) {
            Ok(Statement::ShowVersion)
        } else if t.eat_keywords(&[ALL_WORD, TTL]) {
            Ok(Statement::ShowTtl { path: None })
        } else if t.eat_keyword(TTL) {
            t.expect_keyword(ON)?;
            Ok(Statement::ShowTtl {
                path: Some(self.path()?),
            })
        } else if t.eat_keyword(QUERIES) || t.eat_keywords(&[QUERY, PROCESSLIST]) {
            if t.is_keyword(WHERE) || t.is_keyword("ORDER") || t.is_keyword("LIMIT") {
                return Err(
                    self.unsupported_here("a WHERE, ORDER BY or LIMIT clause in SHOW QUERIES")
                );
            }
            Ok(Statement::ShowQueries)
        } else if t.eat_keyword(VARIABLES) {
            Ok(Statement::ShowVariables)
        } else if t.eat_keyword(DATANODES) {
            Ok(Statement::ShowDataNodes)
        } else if t.eat_keyword(CONFIGNODES) {
            Ok(Statement::ShowConfigNodes)
        } else if t.is_keyword(REGIONS) || t.is_keyword(SCHEMA) || t.is_keyword(DATA) {
            self.show_regions()
        } else if t.eat_keyword(DATABASES) || t.eat_keywords(&[STORAGE, GROUP]) {
            let path = self.optional_path("SHOW DATABASES")?;
            Ok(Statement::ShowDatabases { path })
        } else if t.eat_keyword(TIMESERIES) {
            let path = self.optional_path("SHOW TIMESERIES")?;
            Ok(Statement::ShowTimeseries { path })
        } else if t.eat_keyword(DEVICES) {
            let path = self.optional_path("SHOW DEVICES")?;
            Ok(Statement::ShowDevices { path })
        } else if t.eat_keywords(&[CHILD, PATHS]) {
            let path = self.optional_path("SHOW CHILD PATHS")?;
            Ok(Statement::ShowChildPaths { path })
        } else if t.eat_keywords(&[CHILD, NODES]) {
            let path = self.optional_path("SHOW CHILD NODES")?;
            Ok(Statement::ShowChildNodes { path })
        } else {
            Err(t.expected(
                "PIPES, PIPE, CLUSTER, CLUSTERID, VERSION, VARIABLES, DATANODES, CONFIGNODES, REGIONS, QUERIES, TTL, ALL TTL, DATABASES, TIMESERIES, DEVICES, CHILD PATHS or CHILD NODES",
            ))
        }
    }

    /// After `SHOW`: `[SCHEMA | DATA] REGIONS [OF DATABASE path [, path]…]`.
    fn show_regions(&mut self) -> Result<Statement, ParseError> {
        let t = &mut self.tokens;
        let kind = if t.eat_keyword(SCHEMA) {
            Some(RegionKind::Schema)
        } else if t.eat_keyword(DATA) {
            Some(RegionKind::Data)
        } else {
            None
        };
        t.expect_keyword(REGIONS)?;
        let mut databases = Vec::new();
        if t.eat_keyword(OF) {
            self.tokens.expect_keyword(DATABASE)?;
            databases.push(self.path()?);
            while self.tokens.eat_token(&Token::Comma) {
                databases.push(self.path()?);
            }
        }
        Ok(Statement::ShowRegions { kind, databases })
    }

    /// `( (kv ',')* kv? )`: a trailing comma and an empty list are legal, as in IoTDB.
    fn attribute_list(&mut self) -> Result<Attributes, ParseError> {
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let mut attributes = Vec::new();
        while !self.tokens.eat_token(&Token::RParen) {
            let key = self.string("a string key or ')'")?;
            self.tokens.expect_token(&Token::Eq, "'='")?;
            let value = self.string("a string value")?;
            attributes.push((key, value));
            if !self.tokens.eat_token(&Token::Comma) {
                self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                break;
            }
        }
        Ok(Attributes(attributes))
    }

    /// A string literal; in IoTDB `"…"` is a string too.
    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        self.tokens
            .next_if_map(|token| match token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected(what))
    }

    /// `LIST USER [OF ROLE r]`, `LIST ROLE [OF USER u]`, `LIST PRIVILEGES OF (USER | ROLE) name`,
    /// after `LIST`.
    fn list(&mut self) -> Result<Statement, ParseError> {
        let t = &mut self.tokens;
        if t.eat_keyword(USER) {
            let of_role = if t.eat_keyword(OF) {
                self.tokens.expect_keyword(ROLE)?;
                Some(self.name("a role name")?)
            } else {
                None
            };
            Ok(Statement::ListUser { of_role })
        } else if t.eat_keyword(ROLE) {
            let of_user = if t.eat_keyword(OF) {
                self.tokens.expect_keyword(USER)?;
                Some(self.name("a user name")?)
            } else {
                None
            };
            Ok(Statement::ListRole { of_user })
        } else if t.eat_keyword(PRIVILEGES) {
            t.expect_keyword(OF)?;
            Ok(Statement::ListPrivileges {
                of: self.grantee()?,
            })
        } else {
            Err(t.expected("USER, ROLE or PRIVILEGES"))
        }
    }

    /// `USER name` or `ROLE name`.
    fn grantee(&mut self) -> Result<Grantee, ParseError> {
        if self.tokens.eat_keyword(USER) {
            Ok(Grantee::User(self.name("a user name")?))
        } else if self.tokens.eat_keyword(ROLE) {
            Ok(Grantee::Role(self.name("a role name")?))
        } else {
            Err(self.tokens.expected("USER or ROLE"))
        }
    }

    /// `privilege, … ON path, …` of GRANT and REVOKE; names upper-cased.
    fn privileges_on_paths(&mut self) -> Result<(Vec<String>, Vec<crate::Path>), ParseError> {
        let mut privileges = Vec::new();
        loop {
            let name = self
                .tokens
                .next_if_map(|token| match token {
                    Token::Word(word)
                        if word.quote_style.is_none()
                            && PRIVILEGE_NAMES
                                .iter()
                                .any(|p| p.eq_ignore_ascii_case(&word.value)) =>
                    {
                        Some(word.value.to_ascii_uppercase())
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    self.tokens.expected(
                        "a privilege (READ_DATA, WRITE_DATA, READ_SCHEMA, WRITE_SCHEMA, MANAGE_USER, MANAGE_ROLE, USE_PIPE, MANAGE_DATABASE, MAINTAIN, SYSTEM, AUDIT, READ, WRITE, ALL, ...)",
                    )
                })?;
            privileges.push(name);
            if !self.tokens.eat_token(&Token::Comma) {
                break;
            }
        }
        self.tokens.expect_keyword(ON)?;
        let mut paths = vec![self.path()?];
        while self.tokens.eat_token(&Token::Comma) {
            paths.push(self.path()?);
        }
        Ok((privileges, paths))
    }

    /// `GRANT ROLE r TO u` or `GRANT privileges ON paths TO (USER | ROLE) name [WITH GRANT OPTION]`,
    /// after `GRANT`.
    fn grant(&mut self) -> Result<Statement, ParseError> {
        if self.tokens.eat_keyword(ROLE) {
            let role = self.name("a role name")?;
            self.tokens.expect_keyword(TO)?;
            let user = self.name("a user name")?;
            return Ok(Statement::GrantRole { role, user });
        }
        let (privileges, paths) = self.privileges_on_paths()?;
        self.tokens.expect_keyword(TO)?;
        let grantee = self.grantee()?;
        let grant_option = if self.tokens.eat_keyword(WITH) {
            self.tokens.expect_keyword(GRANT)?;
            self.tokens.expect_keyword(OPTION)?;
            true
        } else {
            false
        };
        Ok(Statement::Grant {
            privileges,
            paths,
            grantee,
            grant_option,
        })
    }

    /// `REVOKE ROLE r FROM u` or `REVOKE privileges ON paths FROM (USER | ROLE) name`, after
    /// `REVOKE`.
    fn revoke(&mut self) -> Result<Statement, ParseError> {
        if self.tokens.eat_keyword(ROLE) {
            let role = self.name("a role name")?;
            self.tokens.expect_keyword(FROM)?;
            let user = self.name("a user name")?;
            return Ok(Statement::RevokeRole { role, user });
        }
        let (privileges, paths) = self.privileges_on_paths()?;
        self.tokens.expect_keyword(FROM)?;
        let grantee = self.grantee()?;
        Ok(Statement::Revoke {
            privileges,
            paths,
            grantee,
        })
    }

    /// A pipe or user name: a word or a back-quoted identifier, kept as written (names are case-sensitive).
    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        self.tokens
            .next_if_map(|token| match token {
                Token::Word(word) if !word.value.is_empty() => Some(word.value.clone()),
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected(what))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::{parse, ParseError, ParseErrorKind};

    fn error(sql: &str) -> ParseError {
        match parse(sql) {
            Ok(statements) => panic!("{sql:?} parsed as {statements:?}"),
            Err(error) => error,
        }
    }

    /// Asserts a Syntax error at `line`:`column` whose message contains every piece of `needles`.
    fn assert_syntax_error(sql: &str, line: u64, column: u64, needles: &[&str]) {
        let error = error(sql);
        assert_eq!(error.kind, ParseErrorKind::Syntax, "{sql:?}: {error}");
        assert_eq!(
            (error.line, error.column),
            (line, column),
            "{sql:?}: {error}"
        );
        for needle in needles {
            assert!(
                error.message.contains(needle),
                "{sql:?}: {error} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn seed_step_2_missing_parenthesis() {
        let sql = "create pipe AB
with source (
  'source.mode.double-living' ='true'
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='iotdb-2',
  'sink.port'='6667'
)";
        assert_syntax_error(sql, 4, 1, &["')'", "with"]);
        assert_eq!(
            error(sql).to_string(),
            "line 4:1: expected ',' or ')' but found 'with'"
        );
    }

    #[test]
    fn missing_pipe_name_at_end_of_input() {
        assert_eq!(
            error("create pipe").to_string(),
            "line 1:12: expected a pipe name but found end of input"
        );
        // Trailing whitespace and comments do not move the end position.
        assert_eq!(
            error("create pipe  -- no name\n").to_string(),
            "line 1:12: expected a pipe name but found end of input"
        );
        assert_syntax_error("drop pipe if exists", 1, 20, &["expected a pipe name"]);
        assert_syntax_error(
            "create pipe if not exists",
            1,
            26,
            &["expected a pipe name"],
        );
        assert_syntax_error("start pipe;", 1, 11, &["expected a pipe name", "';'"]);
    }

    #[test]
    fn missing_comma_points_at_the_next_key() {
        assert_syntax_error(
            "create pipe p with sink ('a'='b' 'c'='d')",
            1,
            34,
            &["expected ',' or ')'", "'c'"],
        );
    }

    #[test]
    fn errors_inside_attribute_lists() {
        assert_syntax_error("create pipe p ('a' 'b')", 1, 20, &["expected '='", "'b'"]);
        assert_syntax_error(
            "create pipe p ('a'=b)",
            1,
            20,
            &["expected a string value", "'b'"],
        );
        assert_syntax_error(
            "create pipe p (a='b')",
            1,
            16,
            &["expected a string key or ')'", "'a'"],
        );
        assert_syntax_error(
            "create pipe p ('a'='b',,)",
            1,
            24,
            &["expected a string key or ')'", "','"],
        );
        assert_syntax_error(
            "create pipe p ('a'='b'",
            1,
            23,
            &["expected ',' or ')'", "end of input"],
        );
        assert_syntax_error("create pipe p with sink 'a'='b'", 1, 25, &["expected '('"]);
    }

    #[test]
    fn errors_in_create_pipe_clauses() {
        assert_syntax_error(
            "create pipe p",
            1,
            14,
            &["expected WITH or '('", "end of input"],
        );
        assert_syntax_error(
            "create pipe p with source ()",
            1,
            29,
            &["expected WITH", "end of input"],
        );
        assert_syntax_error(
            "create pipe p with sauce ()",
            1,
            20,
            &["SOURCE, EXTRACTOR, PROCESSOR, SINK or CONNECTOR", "'sauce'"],
        );
        // The clause order is fixed: SOURCE, PROCESSOR, SINK.
        assert_syntax_error(
            "create pipe p with processor () with source ()",
            1,
            38,
            &["expected SINK or CONNECTOR", "'source'"],
        );
        assert_syntax_error(
            "create pipe p with sink () with source ()",
            1,
            28,
            &["expected ';' or end of input", "'with'"],
        );
        assert_syntax_error("create pipe `` ()", 1, 13, &["expected a pipe name"]);
        assert_syntax_error(
            "create pipe 'p' ()",
            1,
            13,
            &["expected a pipe name", "string 'p'"],
        );
    }

    #[test]
    fn errors_in_alter_pipe() {
        assert_syntax_error(
            "alter pipe p modify",
            1,
            20,
            &["SOURCE, EXTRACTOR, PROCESSOR, SINK or CONNECTOR"],
        );
        assert_syntax_error(
            "alter pipe p modify sink () replace source ()",
            1,
            29,
            &["expected ';' or end of input"],
        );
        assert_syntax_error(
            "alter pipe p modify processor () modify source ()",
            1,
            41,
            &["expected SINK or CONNECTOR"],
        );
        assert_syntax_error(
            "alter pipe p add sink ()",
            1,
            14,
            &["expected ';' or end of input", "'add'"],
        );
        assert_syntax_error(
            "alter user u set pw 'x'",
            1,
            18,
            &["expected PASSWORD", "'pw'"],
        );
    }

    #[test]
    fn errors_in_show_and_others() {
        assert_syntax_error(
            "show pipez",
            1,
            6,
            &[
                "expected PIPES, PIPE, CLUSTER, CLUSTERID, VERSION, VARIABLES, DATANODES, CONFIGNODES, REGIONS, QUERIES, TTL, ALL TTL, DATABASES, TIMESERIES, DEVICES, CHILD PATHS or CHILD NODES",
                "'pipez'",
            ],
        );
        assert_syntax_error(
            "show pipes where source used by p",
            1,
            18,
            &["expected SINK or CONNECTOR"],
        );
        assert_syntax_error("show pipes where sink used p", 1, 28, &["expected BY"]);
        assert_syntax_error(
            "show cluster now",
            1,
            14,
            &["expected ';' or end of input", "'now'"],
        );
        assert_syntax_error("start p", 1, 7, &["expected PIPE"]);
    }

    #[test]
    fn unknown_first_word() {
        assert_eq!(
            error("frobnicate").to_string(),
            "line 1:1: expected a statement (SELECT, INSERT, DELETE, CREATE, ALTER, DROP, SHOW, COUNT, FLUSH, START, STOP, LIST, GRANT, REVOKE, KILL, ...) but found 'frobnicate'"
        );
        assert_syntax_error("show pipes;\n  42", 2, 3, &["expected a statement", "'42'"]);
        assert_syntax_error(
            "create widget w",
            1,
            8,
            &[
                "expected PIPE, USER, ROLE, DATABASE, TIMESERIES or ALIGNED TIMESERIES",
                "'widget'",
            ],
        );
    }

    #[test]
    fn iotdb_statements_are_unsupported() {
        let cases = [
            ("show pipeplugins", "\"SHOW PIPEPLUGINS\""),
            ("show latest timeseries", "\"SHOW LATEST TIMESERIES\""),
            ("count regions", "\"COUNT\""),
            ("delete partition root.db 0", "\"DELETE\""),
            ("set configuration 'a'='b'", "\"SET\""),
            ("create function f as 'x'", "\"CREATE FUNCTION\""),
            ("show nodes root.db", "\"SHOW NODES\""),
            ("create trigger t", "\"CREATE TRIGGER\""),
            (
                "alter timeseries root.a.b add tags x=1",
                "\"ALTER TIMESERIES\"",
            ),
            ("show current_user", "\"SHOW CURRENT_USER\""),
        ];
        for (sql, message) in cases {
            let error = error(sql);
            assert_eq!(error.kind, ParseErrorKind::Unsupported, "{sql:?}: {error}");
            assert!(error.message.contains(message), "{sql:?}: {error}");
        }
        // Positioned at the statement, also when it is not the first one.
        let error = error("show pipes;\n  load 'x'");
        assert_eq!(
            (error.kind, error.line, error.column),
            (ParseErrorKind::Unsupported, 2, 3)
        );
    }

    #[test]
    fn lexical_errors_use_the_tokenizer_position() {
        assert_syntax_error(
            "create pipe p ('a'='b",
            1,
            20,
            &["Unterminated string literal"],
        );
        assert_syntax_error("start pipe `open", 1, 12, &["Expected close delimiter '`'"]);
        // A lexical error after valid statements still fails the input...
        assert_syntax_error("show pipes;\nshow pipe 'x", 2, 11, &["Unterminated"]);
        // ...but an earlier syntax error is reported first.
        assert_syntax_error("show pipez; show pipe 'x", 1, 6, &["'pipez'"]);
    }

    #[test]
    fn long_tokens_are_shortened_in_messages() {
        let long = "x".repeat(10_000);
        let error = error(&format!("create pipe p ('{long}' 'b')"));
        assert!(error.message.len() < 200, "{error}");
    }

    #[test]
    fn keywords_are_case_insensitive_but_back_quoted_keywords_are_names() {
        assert_eq!(parse("ShOw PiPeS").unwrap(), parse("SHOW PIPES").unwrap());
        assert_syntax_error("`show` pipes", 1, 1, &["expected a statement"]);
    }
}
