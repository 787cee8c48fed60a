//! Error positions and messages for the data statements and queries: every error points at the offending
//! token (or just past the input's end) and says what was expected; IoTDB features Duet lacks are
//! Unsupported, pointing at the clause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use duet_parser::{parse, ParseError, ParseErrorKind};

fn error(sql: &str) -> ParseError {
    match parse(sql) {
        Ok(statements) => panic!("{sql:?} parsed as {statements:?}"),
        Err(error) => error,
    }
}

/// The 1-based column of the first `needle` in single-line `sql`, or just past its end for `""`.
fn column_of(sql: &str, needle: &str) -> u64 {
    let offset = if needle.is_empty() {
        sql.trim_end().chars().count()
    } else {
        let byte = sql
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {sql:?}"));
        sql[..byte].chars().count()
    };
    offset as u64 + 1
}

/// Asserts an error of `kind` on line 1 at the first `at` (or the end for `""`) whose message contains
/// every piece of `needles`.
fn assert_error(kind: ParseErrorKind, sql: &str, at: &str, needles: &[&str]) {
    let error = error(sql);
    assert_eq!(error.kind, kind, "{sql:?}: {error}");
    assert_eq!(
        (error.line, error.column),
        (1, column_of(sql, at)),
        "{sql:?}: {error}"
    );
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "{sql:?}: {error} lacks {needle:?}"
        );
    }
}

fn syntax(sql: &str, at: &str, needles: &[&str]) {
    assert_error(ParseErrorKind::Syntax, sql, at, needles);
}

fn unsupported(sql: &str, at: &str, needles: &[&str]) {
    assert_error(ParseErrorKind::Unsupported, sql, at, needles);
}

#[test]
fn examples_from_the_specification() {
    assert_eq!(
        error("insert into root.sg.d1(timestamp, s1) values (1, 2").to_string(),
        "line 1:51: expected ',' or ')' but found end of input"
    );
    assert_eq!(
        error("select s1 from").to_string(),
        "line 1:15: expected a path starting with 'root' but found end of input"
    );
    assert_eq!(
        error("create timeseries root.sg.d1.s1 with datatype=INT99").to_string(),
        "line 1:47: expected a data type (BOOLEAN, INT32, INT64, FLOAT, DOUBLE, TEXT, STRING, BLOB, \
         DATE, TIMESTAMP) but found 'INT99'"
    );
    syntax(
        "create database sg.d1",
        "sg",
        &["expected a path starting with 'root'", "'sg'"],
    );
}

#[test]
fn count_if_errors_point_at_the_argument() {
    syntax(
        "select count_if(s1 = 0) from root.db.d1",
        ")",
        &["COUNT_IF's keep condition"],
    );
    syntax(
        "select count_if(s1 = 0, keep 3) from root.db.d1",
        "3",
        &["a comparison after KEEP"],
    );
    syntax(
        "select count_if(s1 = 0, -1) from root.db.d1",
        "-",
        &["a non-negative integer threshold"],
    );
    syntax(
        "select count_if(s1 = 0, 3, 'ignore'='true') from root.db.d1",
        "'ignore'",
        &["one attribute, 'ignoreNull'"],
    );
    syntax(
        "select count_if(s1 = 0, 3, 'ignoreNull'='maybe') from root.db.d1",
        "'maybe'",
        &["'true' or 'false'"],
    );
}

#[test]
fn path_errors() {
    syntax(
        "show timeseries root.sg.",
        "",
        &["expected a path node", "end of input"],
    );
    syntax("show timeseries root.sg.,", ",", &["expected a path node"]);
    syntax(
        "show timeseries root.sg.***",
        "***",
        &["expected a path node"],
    );
    syntax(
        "delete timeseries root.a,",
        "",
        &["expected a path starting with 'root'"],
    );
    syntax(
        "create database root.sg.*",
        "root",
        &["expected a database path without wildcards", "'root.sg.*'"],
    );
    syntax(
        "insert into root.**(time, s1) values (1, 1)",
        "root",
        &["expected a device path without wildcards"],
    );
    syntax(
        "create timeseries root.sg.`d",
        "`d",
        &["Expected close delimiter '`'"],
    );
    syntax(
        "show timeseries sg.d1",
        "sg",
        &["expected a path starting with 'root'"],
    );
}

#[test]
fn create_timeseries_errors() {
    syntax(
        "create timeseries root.sg.d1.s1",
        "",
        &["expected a data type", "end of input"],
    );
    syntax(
        "create timeseries root.sg.d1.s1 INT32 encoding=",
        "",
        &["expected a value"],
    );
    syntax(
        "create timeseries root.sg.d1.s1 INT32 tags(k v)",
        "v)",
        &["expected '='", "'v'"],
    );
    syntax(
        "create timeseries root.sg.d1.s1 INT32 tags(k=v",
        "",
        &["expected ',' or ')'"],
    );
    syntax(
        "create aligned timeseries root.sg.d(s1 INT32 s2 FLOAT)",
        "s2",
        &["expected ',' or ')'", "'s2'"],
    );
    syntax(
        "create aligned timeseries root.sg.d(s1.x INT32)",
        "s1",
        &["expected a measurement name (a single name"],
    );
    syntax(
        "create aligned timeseries root.sg.d s1 INT32",
        "s1",
        &["expected '('"],
    );
}

#[test]
fn insert_errors() {
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (1, 2, 3)",
        "(1",
        &["expected 1 values in the row (one per measurement) but found 2"],
    );
    syntax(
        "insert into root.sg.d1(s1, s2) values (1)",
        "(1",
        &["expected 2 values", "found 1"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values ('abc', 1)",
        "'abc'",
        &["expected a timestamp", "string 'abc'"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (1.5, 1)",
        "1.5",
        &["expected a timestamp"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (99999999999999999999, 1)",
        "999",
        &["64-bit range", "99999999999999999999"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (1, X'abc')",
        "X'abc'",
        &["even number of hexadecimal digits"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (1, s2)",
        "s2",
        &["expected a value (a number, a string, TRUE, FALSE, NULL or X'…')"],
    );
    syntax(
        "insert into root.sg.d1(timestamp) values (1)",
        ")",
        &["expected ','"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) (1, 2)",
        "(1",
        &["expected VALUES"],
    );
    syntax(
        "insert root.sg.d1(s1) values (1)",
        "root",
        &["expected INTO"],
    );
    syntax(
        "insert into root.sg.d1(timestamp, s1) values (now(, 1)",
        ", 1",
        &["expected ')'"],
    );
}

#[test]
fn select_errors() {
    syntax(
        "select from root.sg.d1",
        "from",
        &["expected a select item", "'from'"],
    );
    syntax("select s1, from root", "from", &["expected a select item"]);
    syntax("select s1 root.sg", "root", &["expected ',' or FROM"]);
    syntax(
        "select count(s1 from root.sg",
        "from",
        &["expected ')'", "'from'"],
    );
    syntax(
        "select s1 from root.sg.d1 where",
        "",
        &["expected an expression"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 > 1 and",
        "",
        &["expected an expression", "end of input"],
    );
    syntax(
        "select s1 from root.sg.d1 where (s1 > 1",
        "",
        &["expected ')'"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 = not s2",
        "not",
        &["expected an expression", "'not'"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 between 1 or 2",
        "or",
        &["expected AND", "'or'"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 is 5",
        "5",
        &["expected NULL"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 in (1, 2",
        "",
        &["expected ',' or ')'"],
    );
    syntax(
        "select s1 from root.sg.d1 where s1 like s2",
        "s2",
        &["expected a pattern string"],
    );
    syntax(
        "select s1 from root.sg.d1 group by ([1, 10), 1x)",
        "1x",
        &["expected a duration", "'1x'"],
    );
    syntax(
        "select s1 from root.sg.d1 group by ([1, 10], 1ms)",
        "]",
        &["expected ')'"],
    );
    syntax(
        "select s1 from root.sg.d1 group by ((1, 10), 1ms)",
        "), 1ms",
        &["expected ']'"],
    );
    syntax(
        "select s1 from root.sg.d1 group by ([x, 10), 1ms)",
        "x,",
        &["expected a time (an integer, a datetime or NOW())"],
    );
    syntax(
        "select s1 from root.sg.d1 limit -1",
        "-1",
        &["expected a non-negative integer"],
    );
    syntax(
        "select s1 from root.sg.d1 limit 1 limit 2",
        "limit 2",
        &["expected ';' or end of input"],
    );
    syntax(
        "select s1 from root.sg.d1 align by row",
        "row",
        &["expected DEVICE or TIME"],
    );
}

#[test]
fn time_literal_and_duration_errors() {
    // A datetime that names no real time is an error at the literal, wherever a time may stand.
    syntax(
        "select s1 from root.sg.d1 where time >= 2023-13-01T00:00:00",
        "2023-13",
        &["invalid datetime '2023-13-01T00:00:00'"],
    );
    syntax(
        "select s1 from root.sg.d1 where time < 2023-02-29",
        "2023-02",
        &["invalid datetime '2023-02-29'"],
    );
    syntax(
        "insert into root.sg.d1(time, s1) values (2024-02-30 10:00:00, 1)",
        "2024",
        &["invalid datetime '2024-02-30 10:00:00'"],
    );
    syntax(
        "delete from root.sg.d1.s1 where time <= 2023-01-01T25:00:00",
        "2023",
        &["invalid datetime"],
    );
    syntax(
        "select count(s1) from root.sg.d1 group by (['2023-01-32', 2023-02-01), 1d)",
        "'2023",
        &["invalid datetime '2023-01-32'"],
    );
    syntax(
        "select count(s1) from root.sg.d1 group by ([0, 10), 99999999999999999999d)",
        "9999",
        &["duration '99999999999999999999d' is too large"],
    );
    syntax(
        "select s1 from root.sg.d1 where time > now() - 99999999999999999999ms",
        "9999",
        &["duration '99999999999999999999ms' is too large"],
    );
    // A duration only follows a datetime or now(), with + or -.
    syntax(
        "select s1 from root.sg.d1 where time > 1d",
        "1d",
        &["found the duration '1d'", "now() - 1d"],
    );
    syntax(
        "select s1 from root.sg.d1 where time > s1 - 1h",
        "1h",
        &["found the duration '1h'"],
    );
    syntax(
        "select s1 from root.sg.d1 where time > now() * 1d",
        "1d",
        &["found the duration '1d'"],
    );
    syntax(
        "select count(s1) from root.sg.d1 group by ([0 + 1d, 10), 1ms)",
        "+",
        &["expected ','"],
    );
}

#[test]
fn errors_on_later_lines() {
    let first = error("select s1\nfrom root.sg.d1\nwhere s1 > 1 and\n  s2 <");
    assert_eq!(
        (first.kind, first.line, first.column),
        (ParseErrorKind::Syntax, 4, 7),
        "{first}"
    );
    let second = error("show databases;\ninsert into root.sg.d(s) values\n (1), (2, 3)");
    assert_eq!((second.line, second.column), (3, 7), "{second}");
    assert!(second.message.contains("expected 1 values"), "{second}");
}

#[test]
fn unsupported_clauses_point_at_the_clause() {
    syntax(
        "select count(s1) from root.sg.d1 group by ([1, 10), 1ms, level = 1)",
        "level",
        &["expected a duration"],
    );
    unsupported(
        "select count(s1) from root.sg.d1 group by tags(k)",
        "tags",
        &["GROUP BY TAGS"],
    );
    unsupported(
        "select count(s1) from root.sg.d1 group by variation(s1)",
        "variation",
        &["GROUP BY VARIATION"],
    );
    unsupported(
        "select count(s1) from root.sg.d1 group by (1ms)",
        "1ms",
        &["GROUP BY without a time range"],
    );
    syntax(
        "select s1 from root.sg.d1 fill(null)",
        "null",
        &["not NULL"],
    );
    syntax(
        "select s1 from root.sg.d1 fill(next)",
        "next",
        &["PREVIOUS, LINEAR or a constant"],
    );
    syntax(
        "select count(s1) from root.** group by level = x",
        "x",
        &["a level"],
    );
    syntax(
        "select count(s1) from root.** group by level = 1, level = 2",
        "level = 2",
        &["one GROUP BY LEVEL clause"],
    );
    unsupported(
        "select s1 into root.sg.d2(s1) from root.sg.d1",
        "into",
        &["SELECT … INTO"],
    );
    unsupported(
        "select count(s1) from root.sg.d1 group by ([1, 10), 1ms), tags(k)",
        "tags",
        &["GROUP BY TAGS"],
    );
    unsupported(
        "select count(s1) from root.sg.d1 having count(s1) > 1 and top_k(s1, 'k'='2') > 1",
        ",",
        &["a function with several arguments"],
    );
    unsupported(
        "select count(s1, 3) from root.sg.d1",
        ",",
        &["a function with several arguments"],
    );
    unsupported(
        "select s1 from root.sg.d1 order by device",
        "device",
        &["ORDER BY other than TIME"],
    );
    unsupported(
        "select s1 from root.sg.d1 disable align",
        "disable",
        &["DISABLE ALIGN"],
    );
    unsupported(
        "select s1 + 1 from root.sg.d1",
        "+",
        &["an expression in the SELECT list"],
    );
    unsupported(
        "select s1 from root.sg.d1 where s1 regexp '^a'",
        "regexp",
        &["REGEXP"],
    );
    unsupported(
        "select s1 from root.sg.d1 where abs(s1) > 1",
        "abs",
        &["a function call in WHERE"],
    );
    unsupported(
        "select top_k(s1, 'k'='2') from root.sg.d1",
        ",",
        &["a function with several arguments"],
    );
    unsupported(
        "show timeseries root.** where tag=x",
        "where",
        &["WHERE in SHOW TIMESERIES"],
    );
    unsupported(
        "count devices root.** group by level=1",
        "group",
        &["GROUP in COUNT DEVICES"],
    );
    unsupported(
        "show devices root.** with database",
        "with",
        &["WITH in SHOW DEVICES"],
    );
    unsupported("show databases details", "details", &["DETAILS"]);
    unsupported(
        "create timeseries root.sg.d1.s1(temperature) INT32",
        "(",
        &["a measurement alias"],
    );
    unsupported(
        "create database root.sg with ttl=1",
        "with",
        &["CREATE DATABASE … WITH"],
    );
}

#[test]
fn unsupported_statements_still_named() {
    for (sql, phrase) in [
        ("create function f as 'c'", "\"CREATE FUNCTION\""),
        ("create trigger t", "\"CREATE TRIGGER\""),
        ("count time_partition", "\"COUNT\""),
        ("delete partition root.sg 0", "\"DELETE\""),
        ("set configuration 'a'='b'", "\"SET\""),
        ("show latest timeseries", "\"SHOW LATEST TIMESERIES\""),
    ] {
        unsupported(sql, sql.split(' ').next().unwrap(), &[phrase]);
    }
}

#[test]
fn nesting_deeper_than_200_is_a_syntax_error() {
    // On a 2 MiB stack like a server thread's: the guard must trip long before the stack runs out.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            for condition in [
                format!("{}s1{}", "(".repeat(100_000), ")".repeat(100_000)),
                format!("{}s1", "not ".repeat(100_000)),
                format!("{}s1", "- ".repeat(100_000)),
                format!("{}s1", "(-(not ".repeat(100_000)),
                format!("s1{}", " + 1".repeat(100_000)),
                format!("s1 = 1{}", " or s1 = 1".repeat(250)),
                format!("s1 in ({}1{})", "(".repeat(300), ")".repeat(300)),
            ] {
                let sql = format!("select s1 from root.sg.d1 where {condition}");
                let error = error(&sql);
                assert_eq!(error.kind, ParseErrorKind::Syntax, "{error}");
                assert!(
                    error
                        .message
                        .contains("expression nested too deeply (more than 200 levels)"),
                    "{error}"
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
    // The error points at the first token past the limit: the WHERE expression is level 1 and each '('
    // opens one more, so it is the token after the 199th '('.
    let sql = format!("select s1 from root.sg.d1 where {}s1", "(".repeat(1000));
    let error = error(&sql);
    assert_eq!(error.column, column_of(&sql, "(") + 199, "{error}");
}

#[test]
fn grant_and_revoke_errors_point_at_the_token() {
    let syntax = ParseErrorKind::Syntax;
    assert_error(
        syntax,
        "grant frobnicate on root.** to user u",
        "frobnicate",
        &["a privilege", "'frobnicate'"],
    );
    assert_error(
        syntax,
        "grant read_data root.** to user u",
        "root",
        &["expected ON"],
    );
    assert_error(
        syntax,
        "grant read_data on root.** user u",
        "user",
        &["expected TO"],
    );
    assert_error(
        syntax,
        "grant read_data on root.** to u",
        "u",
        &["expected USER or ROLE"],
    );
    assert_error(
        syntax,
        "grant read_data on root.** to user u with option",
        "option",
        &["expected GRANT"],
    );
    assert_error(
        syntax,
        "revoke read_data on root.** to user u",
        "to",
        &["expected FROM"],
    );
    assert_error(syntax, "revoke role r to u", "to", &["expected FROM"]);
    assert_error(syntax, "grant role r from u", "from", &["expected TO"]);
    assert_error(
        syntax,
        "list privileges of u",
        "u",
        &["expected USER or ROLE"],
    );
    assert_error(
        syntax,
        "list roles",
        "roles",
        &["expected USER, ROLE or PRIVILEGES"],
    );
    assert_error(syntax, "create role", "", &["a role name"]);
}
