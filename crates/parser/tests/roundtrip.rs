//! Parse → print → parse round trips for every production of the Duet grammar, each also checked against
//! the AST it must produce, so the printer and the parser cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use duet_parser::{parse, AlterClause, AlterMode, AlterPipe, Attributes, CreatePipe, Statement};

/// Asserts that `sql` parses to exactly `expected`, that `expected` prints as SQL that parses back to
/// itself, and that printing is stable.
fn assert_round_trip(sql: &str, expected: &[Statement]) {
    let parsed = parse(sql).unwrap_or_else(|e| panic!("{sql:?} failed to parse: {e}"));
    assert_eq!(parsed, expected, "AST of {sql:?}");
    for statement in expected {
        let printed = statement.to_string();
        let reparsed =
            parse(&printed).unwrap_or_else(|e| panic!("printed {printed:?} failed to parse: {e}"));
        assert_eq!(
            reparsed,
            std::slice::from_ref(statement),
            "round trip of {printed:?}"
        );
        assert_eq!(reparsed[0].to_string(), printed, "printing is stable");
    }
}

fn one(sql: &str, expected: Statement) {
    assert_round_trip(sql, &[expected]);
}

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    Attributes(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn create(
    name: &str,
    source: Option<Attributes>,
    processor: Option<Attributes>,
    sink: Attributes,
) -> Statement {
    Statement::CreatePipe(CreatePipe {
        if_not_exists: false,
        name: name.into(),
        source,
        processor,
        sink,
    })
}

fn clause(mode: AlterMode, pairs: &[(&str, &str)]) -> Option<AlterClause> {
    Some(AlterClause {
        mode,
        attributes: attrs(pairs),
    })
}

#[test]
fn seed_step_3_statement() {
    let sql = "create pipe BA
with source (
'source.mode.double-living' ='true'
)
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='iotdb-1',
  'sink.port'='6667'
)";
    one(
        sql,
        create(
            "BA",
            Some(attrs(&[("source.mode.double-living", "true")])),
            None,
            attrs(&[
                ("sink", "iotdb-thrift-sink"),
                ("sink.ip", "iotdb-1"),
                ("sink.port", "6667"),
            ]),
        ),
    );
}

#[test]
fn create_pipe_with_sink_only() {
    one(
        "create pipe p with sink ('sink'='iotdb-thrift-sink')",
        create("p", None, None, attrs(&[("sink", "iotdb-thrift-sink")])),
    );
}

#[test]
fn create_pipe_with_connector_synonym() {
    one(
        "CREATE PIPE p WITH CONNECTOR ('connector'='x')",
        create("p", None, None, attrs(&[("connector", "x")])),
    );
}

#[test]
fn create_pipe_with_extractor_synonym() {
    one(
        "create pipe p with extractor ('extractor.pattern'='root.a') with sink ()",
        create(
            "p",
            Some(attrs(&[("extractor.pattern", "root.a")])),
            None,
            attrs(&[]),
        ),
    );
}

#[test]
fn create_pipe_with_all_three_clauses() {
    one(
        "Create Pipe p With Source ('a'='1') With Processor ('processor'='do-nothing-processor') With Sink ('b'='2')",
        create(
            "p",
            Some(attrs(&[("a", "1")])),
            Some(attrs(&[("processor", "do-nothing-processor")])),
            attrs(&[("b", "2")]),
        ),
    );
}

#[test]
fn create_pipe_with_processor_without_source() {
    one(
        "create pipe p with processor () with sink ('b'='2')",
        create("p", None, Some(attrs(&[])), attrs(&[("b", "2")])),
    );
}

#[test]
fn create_pipe_if_not_exists() {
    let expected = Statement::CreatePipe(CreatePipe {
        if_not_exists: true,
        name: "p".into(),
        source: None,
        processor: None,
        sink: attrs(&[("k", "v")]),
    });
    one("create pipe if not exists p with sink ('k'='v')", expected);
}

#[test]
fn create_pipe_bare_form_is_sink_attributes() {
    one(
        "create pipe p ('sink.ip'='h', 'sink.port'='6667')",
        create(
            "p",
            None,
            None,
            attrs(&[("sink.ip", "h"), ("sink.port", "6667")]),
        ),
    );
}

#[test]
fn trailing_comma_and_empty_list() {
    one(
        "create pipe p with source ('a'='1',) with sink ()",
        create("p", Some(attrs(&[("a", "1")])), None, attrs(&[])),
    );
}

#[test]
fn double_quoted_values_are_strings() {
    one(
        r#"create pipe p with sink ("sink"='x', 'q'="it's ""quoted""")"#,
        create(
            "p",
            None,
            None,
            attrs(&[("sink", "x"), ("q", "it's \"quoted\"")]),
        ),
    );
}

#[test]
fn single_quotes_escaped_by_doubling() {
    let expected = create("p", None, None, attrs(&[("it's", "a ''b'' c")]));
    assert_eq!(
        expected.to_string(),
        "CREATE PIPE p WITH SINK ('it''s'='a ''''b'''' c')"
    );
    one("create pipe p ('it''s'='a ''''b'''' c')", expected);
}

#[test]
fn backslashes_are_plain_characters() {
    one(
        r"create pipe p ('path'='C:\dir\')",
        create("p", None, None, attrs(&[("path", r"C:\dir\")])),
    );
}

#[test]
fn back_quoted_names() {
    one(
        "create pipe `my pipe` ()",
        create("my pipe", None, None, attrs(&[])),
    );
    one(
        "start pipe `a``b`",
        Statement::StartPipe { name: "a`b".into() },
    );
    one(
        "stop pipe `with`",
        Statement::StopPipe {
            name: "with".into(),
        },
    );
    one(
        "drop pipe `2nd`",
        Statement::DropPipe {
            if_exists: false,
            name: "2nd".into(),
        },
    );
    one(
        "show pipe `管道`",
        Statement::ShowPipe {
            name: "管道".into(),
        },
    );
}

#[test]
fn keyword_like_names_are_back_quoted_when_printed() {
    let statement = Statement::ShowPipe {
        name: "pipes".into(),
    };
    assert_eq!(statement.to_string(), "SHOW PIPE `pipes`");
    one("show pipe pipes", statement);
    one(
        "create pipe sink with sink ()",
        create("sink", None, None, attrs(&[])),
    );
}

#[test]
fn names_keep_their_case() {
    one(
        "START PIPE MyPipe",
        Statement::StartPipe {
            name: "MyPipe".into(),
        },
    );
}

#[test]
fn alter_pipe_without_clauses() {
    let expected = Statement::AlterPipe(AlterPipe {
        if_exists: false,
        name: "p".into(),
        source: None,
        processor: None,
        sink: None,
    });
    one("alter pipe p", expected);
}

#[test]
fn alter_pipe_if_exists_with_every_clause() {
    let expected = Statement::AlterPipe(AlterPipe {
        if_exists: true,
        name: "p".into(),
        source: clause(AlterMode::Modify, &[("a", "1")]),
        processor: clause(AlterMode::Replace, &[]),
        sink: clause(AlterMode::Modify, &[("sink.ip", "h")]),
    });
    one(
        "alter pipe if exists p modify source ('a'='1') replace processor () modify sink ('sink.ip'='h',)",
        expected,
    );
}

#[test]
fn alter_pipe_synonyms_and_replace() {
    let expected = Statement::AlterPipe(AlterPipe {
        if_exists: false,
        name: "p".into(),
        source: clause(AlterMode::Replace, &[("x", "y")]),
        processor: None,
        sink: clause(AlterMode::Replace, &[]),
    });
    one(
        "ALTER PIPE p REPLACE EXTRACTOR ('x'=\"y\") REPLACE CONNECTOR ()",
        expected,
    );
}

#[test]
fn start_stop_drop_pipe() {
    one("start pipe p", Statement::StartPipe { name: "p".into() });
    one("stop pipe p", Statement::StopPipe { name: "p".into() });
    one(
        "drop pipe p",
        Statement::DropPipe {
            if_exists: false,
            name: "p".into(),
        },
    );
    one(
        "drop pipe if exists p",
        Statement::DropPipe {
            if_exists: true,
            name: "p".into(),
        },
    );
}

#[test]
fn show_pipes() {
    one("show pipes", Statement::ShowPipes { sink_used_by: None });
    one(
        "show pipes where sink used by p",
        Statement::ShowPipes {
            sink_used_by: Some("p".into()),
        },
    );
    one(
        "SHOW PIPES WHERE CONNECTOR USED BY p",
        Statement::ShowPipes {
            sink_used_by: Some("p".into()),
        },
    );
    one("show pipe p", Statement::ShowPipe { name: "p".into() });
}

#[test]
fn show_cluster_and_version() {
    one("show cluster", Statement::ShowCluster { details: false });
    one(
        "show cluster details",
        Statement::ShowCluster { details: true },
    );
    one("show clusterid", Statement::ShowClusterId);
    one("show cluster_id", Statement::ShowClusterId);
    one("show version", Statement::ShowVersion);
}

#[test]
fn user_statements() {
    one(
        "create user alice 'pa''ss'",
        Statement::CreateUser {
            name: "alice".into(),
            password: "pa'ss".into(),
        },
    );
    one(
        "create user `bob smith` \"pw\"",
        Statement::CreateUser {
            name: "bob smith".into(),
            password: "pw".into(),
        },
    );
    one(
        "alter user alice set password 'new'",
        Statement::AlterUserPassword {
            name: "alice".into(),
            password: "new".into(),
        },
    );
    one(
        "drop user alice",
        Statement::DropUser {
            name: "alice".into(),
        },
    );
    one("list user", Statement::ListUser);
}

#[test]
fn multi_statement_input_with_comments() {
    let sql = "-- set up both directions
create pipe AB ('sink.ip'='iotdb-2'); /* then; look */ show pipes;;
start pipe AB -- trailing comment; not a statement
;";
    assert_round_trip(
        sql,
        &[
            create("AB", None, None, attrs(&[("sink.ip", "iotdb-2")])),
            Statement::ShowPipes { sink_used_by: None },
            Statement::StartPipe { name: "AB".into() },
        ],
    );
}

#[test]
fn empty_inputs_give_no_statements() {
    for sql in [
        "",
        "   ",
        ";",
        ";;  ;",
        "-- only a comment",
        "/* block */ ;\n-- line",
    ] {
        assert_eq!(parse(sql).unwrap(), Vec::new(), "{sql:?}");
    }
}
