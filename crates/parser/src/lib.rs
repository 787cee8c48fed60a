//! The Duet SQL dialect (IoTDB-compatible pipe, cluster and user statements, and the tree model's data
//! statements and queries): our own [`Statement`] AST, parsed by a small recursive-descent parser over
//! sqlparser's tokenizer.
//!
//! The grammar's source of truth is `grammar/duet.ebnf` at the workspace root; `tests/grammar_sync.rs`
//! fails when a production there has no round-trip test. Every statement prints (`Display`) as canonical
//! SQL that parses back to an equal statement.
//!
//! ```
//! use duet_parser::{parse, Statement};
//!
//! let statements = parse("show pipes; start pipe `my pipe`").unwrap();
//! assert_eq!(statements[1], Statement::StartPipe { name: "my pipe".into() });
//! assert_eq!(statements[1].to_string(), "START PIPE `my pipe`");
//! ```
//!
//! - `lexer` (sqlparser's tokenizer tuned to IoTDB) and `scan` (paths, datetimes and numbers read from
//!   the raw text); `keywords`: the grammar's keywords, for the parser and the printer;
//! - `parser`: the recursive-descent parser; `ast` and `data`: the statements and their canonical SQL;
//! - [`time`]: datetime literals and durations; `split`: a script cut into statements for the CLI;
//! - `error`: the one error type, with line and column.

mod ast;
mod data;
mod error;
mod keywords;
mod lexer;
mod parser;
mod scan;
mod split;
pub mod time;

pub use ast::{
    AlterClause, AlterMode, AlterPipe, Attributes, CreatePipe, Grantee, RegionKind, Statement,
};
pub use data::{
    BinaryOp, ColumnDef, DataTypeName, DurationLiteral, Expr, Fill, FillMethod, GroupByTime,
    InsertRow, InsertTime, Keep, Literal, Path, PathNode, Select, SelectItem, TimeShift, TimeValue,
    UnaryOp,
};
pub use error::{ParseError, ParseErrorKind};
pub use split::{split_statements, walk_code, LexicalState, StatementText};

/// Parses `sql`: statements separated by `;`. Empty statements (`;;`, a trailing `;`, only whitespace or
/// comments) are skipped, so `""` gives no statements. Fails at the first error in the text.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    parser::parse_statements(sql)
}

/// Parses `text` as one whole absolute path or pattern (`root.sg.d*.s1`, ``root.sg.`d-1` ``), node by
/// node as IoTDB reads the path strings of its session API: the first node must be `root` (any case,
/// normalized), and nothing may follow the last node. Errors are on line 1 at the offending node.
pub fn parse_path(text: &str) -> Result<Path, ParseError> {
    let column = |offset: usize| text[..offset].chars().count() as u64 + 1;
    let (mut nodes, len) = scan::path(text).map_err(|error| {
        ParseError::syntax(
            1,
            column(error.offset),
            format!("expected {}", error.message),
        )
    })?;
    match nodes.first_mut() {
        Some(PathNode::Name(first)) if first.eq_ignore_ascii_case("root") => *first = "root".into(),
        _ => {
            return Err(ParseError::syntax(
                1,
                1,
                "expected a path starting with 'root'",
            ))
        }
    }
    if len != text.len() {
        return Err(ParseError::syntax(
            1,
            column(len),
            "expected '.' or the end of the path",
        ));
    }
    Ok(Path(nodes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64), so the fuzz-ish tests are reproducible without a
    /// property-testing dependency.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const VALID: &[&str] = &[
        "create pipe if not exists `a``b` with source ('s'='1',) with processor () with sink (\"k\"='it''s')",
        "alter pipe if exists p modify source ('a'='b') replace processor () modify connector ()",
        "show pipes where sink used by p; show cluster details; show cluster_id; show version",
        "create user u 'p'; alter user u set password \"q\"; drop user u; list user -- done",
        "drop pipe if exists p; start pipe p; stop pipe p /* c */",
        "create database root.sg; create timeseries root.sg.`d.1`.s1 with datatype=INT32, encoding=RLE tags(a=b)",
        "create aligned timeseries root.sg.d2(s1 INT32 encoding=RLE, s2 FLOAT); show timeseries root.**",
        "insert into root.sg.d1(timestamp, s1, s2) aligned values (2017-11-01T00:00:00+08:00, -1.5e3, X'0a'), (now(), NULL, 'x')",
        "delete from root.sg.d1.* where time >= '2017-11-01' and time <= 10; flush root.sg true; count devices",
        "select last count(*), s1 as a from root.sg.*, root.** where not (s1 + -2 * s2 > 3 or s3 in (1, 'a')) and s4 is not null",
        "select avg(s1) from root.sg.d1 where s1 between 1 and 2 group by ((1, 10], 1h30m, 1ms) order by time desc limit 5 offset 1 slimit 2 soffset 0 align by device",
    ];

    /// Whatever the input, parsing and splitting return instead of panicking, and anything that parses
    /// round-trips through its printed form.
    fn check(sql: &str) {
        let _ = split_statements(sql);
        if let Ok(statements) = parse(sql) {
            for statement in statements {
                let printed = statement.to_string();
                assert_eq!(
                    parse(&printed),
                    Ok(vec![statement]),
                    "{sql:?} printed as {printed:?}"
                );
            }
        }
    }

    #[test]
    fn prefixes_of_valid_statements_do_not_panic() {
        for sql in VALID {
            assert!(parse(sql).is_ok(), "{sql:?}");
            for (end, _) in sql.char_indices() {
                check(&sql[..end]);
                check(&sql[end..]);
            }
        }
    }

    #[test]
    fn random_bytes_do_not_panic() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3_000 {
            let len = random.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
            check(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn random_token_soup_does_not_panic() {
        const PIECES: &[&str] = &[
            "create",
            "alter",
            "drop",
            "start",
            "stop",
            "show",
            "list",
            "pipe",
            "pipes",
            "user",
            "if",
            "not",
            "exists",
            "with",
            "source",
            "processor",
            "sink",
            "modify",
            "replace",
            "where",
            "used",
            "by",
            "cluster",
            "details",
            "clusterid",
            "set",
            "password",
            "(",
            ")",
            ",",
            "=",
            ";",
            "'k'",
            "\"v\"",
            "`n`",
            "p",
            "--",
            "/*",
            "*/",
            "'",
            "\"",
            "`",
            "\n",
            "1",
            "é",
            "\\",
            "select",
            "from",
            "root",
            ".",
            "root.sg.d1",
            "*",
            "**",
            "s1",
            "`d.1`",
            "insert into",
            "values",
            "timestamp",
            "time",
            "where",
            "and",
            "or",
            "between",
            "in",
            "is",
            "null",
            "like",
            "-",
            "+",
            ">=",
            "<>",
            "now()",
            "2017-11-01T00:00:00",
            "X'0a'",
            "1.5e3",
            "group by",
            "[",
            "]",
            "1ms",
            "limit",
            "align by device",
            "create timeseries",
            "INT32",
            "encoding=RLE",
            "tags",
        ];
        let mut random = Random(42);
        for _ in 0..5_000 {
            let count = random.below(16);
            let sql: Vec<&str> = (0..count)
                .map(|_| PIECES[random.below(PIECES.len())])
                .collect();
            check(&sql.join(" "));
        }
    }

    #[test]
    fn very_long_input_parses() {
        let attributes: Vec<String> = (0..20_000).map(|i| format!("'k{i}'='v{i}'")).collect();
        let sql = format!(
            "create pipe p ({}); {}",
            attributes.join(","),
            "show pipes;".repeat(20_000)
        );
        let statements = parse(&sql).unwrap();
        assert_eq!(statements.len(), 20_001);
    }
}
