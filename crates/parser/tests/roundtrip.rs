//! Parse → print → parse round trips for every production of the Duet grammar, each also checked against
//! the AST it must produce, so the printer and the parser cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use duet_parser::{
    parse, AlterClause, AlterMode, AlterPipe, Attributes, BinaryOp, ColumnDef, CreatePipe,
    DataTypeName, DurationLiteral, Expr, Fill, FillMethod, Grantee, GroupByTime, InsertRow,
    InsertTime, Keep, Literal, Path, PathNode, RegionKind, Select, SelectItem, Statement,
    TimeShift, TimeValue, UnaryOp,
};

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
    one("show variables", Statement::ShowVariables);
    one("show datanodes", Statement::ShowDataNodes);
    one("show confignodes", Statement::ShowConfigNodes);
    one("show queries", Statement::ShowQueries);
    one("SHOW QUERY PROCESSLIST", Statement::ShowQueries);
    one(
        "kill query '20261130_230000_00001_1'",
        Statement::KillQuery {
            id: Some("20261130_230000_00001_1".into()),
        },
    );
    one("kill all queries", Statement::KillQuery { id: None });
    one(
        "set ttl to root.sg.** 3600000",
        Statement::SetTtl {
            path: p("root.sg.**"),
            ttl_ms: Some(3_600_000),
        },
    );
    one(
        "SET TTL TO root.sg.d1 INF",
        Statement::SetTtl {
            path: p("root.sg.d1"),
            ttl_ms: None,
        },
    );
    one(
        "unset ttl to root.sg",
        Statement::UnsetTtl { path: p("root.sg") },
    );
    one("show all ttl", Statement::ShowTtl { path: None });
    one(
        "show ttl on root.**",
        Statement::ShowTtl {
            path: Some(p("root.**")),
        },
    );
    one(
        "show regions",
        Statement::ShowRegions {
            kind: None,
            databases: vec![],
        },
    );
    one(
        "show data regions of database root.sg1, root.sg2",
        Statement::ShowRegions {
            kind: Some(RegionKind::Data),
            databases: vec![p("root.sg1"), p("root.sg2")],
        },
    );
    one(
        "show schema regions",
        Statement::ShowRegions {
            kind: Some(RegionKind::Schema),
            databases: vec![],
        },
    );
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
    one("list user", Statement::ListUser { of_role: None });
}

#[test]
fn role_and_privilege_statements() {
    let path = |s: &str| duet_parser::parse_path(s).unwrap();
    one(
        "create role readers",
        Statement::CreateRole {
            name: "readers".into(),
        },
    );
    one(
        "DROP ROLE `my role`",
        Statement::DropRole {
            name: "my role".into(),
        },
    );
    one(
        "list user of role readers",
        Statement::ListUser {
            of_role: Some("readers".into()),
        },
    );
    one("list role", Statement::ListRole { of_user: None });
    one(
        "list role of user alice",
        Statement::ListRole {
            of_user: Some("alice".into()),
        },
    );
    one(
        "list privileges of user root",
        Statement::ListPrivileges {
            of: Grantee::User("root".into()),
        },
    );
    one(
        "list privileges of role readers",
        Statement::ListPrivileges {
            of: Grantee::Role("readers".into()),
        },
    );
    one(
        "grant read_data, Write on root.ln.**, root.sg.d1.s1 to user `ln_write_user` with grant option",
        Statement::Grant {
            privileges: vec!["READ_DATA".into(), "WRITE".into()],
            paths: vec![path("root.ln.**"), path("root.sg.d1.s1")],
            grantee: Grantee::User("ln_write_user".into()),
            grant_option: true,
        },
    );
    one(
        "grant manage_role on root.** to role admins",
        Statement::Grant {
            privileges: vec!["MANAGE_ROLE".into()],
            paths: vec![path("root.**")],
            grantee: Grantee::Role("admins".into()),
            grant_option: false,
        },
    );
    one(
        "revoke all on root.** from user u1",
        Statement::Revoke {
            privileges: vec!["ALL".into()],
            paths: vec![path("root.**")],
            grantee: Grantee::User("u1".into()),
        },
    );
    one(
        "grant role admins to u1",
        Statement::GrantRole {
            role: "admins".into(),
            user: "u1".into(),
        },
    );
    one(
        "revoke role admins from u1",
        Statement::RevokeRole {
            role: "admins".into(),
            user: "u1".into(),
        },
    );
    // A name that reads as a keyword prints back-quoted.
    one(
        "grant role `role` to `grant`",
        Statement::GrantRole {
            role: "role".into(),
            user: "grant".into(),
        },
    );
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

// ---- tree-model data statements ----------------------------------------------------------------------

/// A path from dotted text (no back-quotes): `*` and `**` are wildcards, anything else a name.
fn p(text: &str) -> Path {
    Path(
        text.split('.')
            .map(|node| match node {
                "*" => PathNode::One,
                "**" => PathNode::Many,
                name => PathNode::Name(name.into()),
            })
            .collect(),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn int(text: &str) -> Literal {
    Literal::Integer(text.into())
}

fn float(text: &str) -> Literal {
    Literal::Float(text.into())
}

fn string(text: &str) -> Literal {
    Literal::String(text.into())
}

fn e_path(text: &str) -> Expr {
    Expr::Path(p(text))
}

fn e_int(text: &str) -> Expr {
    Expr::Literal(int(text))
}

fn bin(left: Expr, op: BinaryOp, right: Expr) -> Expr {
    Expr::Binary {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn unary(op: UnaryOp, expr: Expr) -> Expr {
    Expr::Unary {
        op,
        expr: Box::new(expr),
    }
}

fn select(items: Vec<SelectItem>, from: &[&str]) -> Select {
    Select::new(items, from.iter().map(|f| p(f)).collect())
}

fn item(path: &str) -> SelectItem {
    SelectItem::Path {
        path: p(path),
        alias: None,
    }
}

/// `sql` must parse to the one query `expected` and round-trip.
fn one_select(sql: &str, expected: &Select) {
    one(sql, Statement::Select(Box::new(expected.clone())));
}

/// `GROUP BY ([1, 11), 2ms)`
fn window_1_to_11_by_2ms() -> GroupByTime {
    GroupByTime {
        start: TimeValue::Value(1),
        end: TimeValue::Value(11),
        left_open: false,
        interval: dur("2ms"),
        step: None,
    }
}

/// `SELECT s1 FROM root.sg.d1 WHERE <condition>`
fn where_(condition: &str, expected: Expr) {
    let mut query = select(vec![item("s1")], &["root.sg.d1"]);
    query.condition = Some(expected);
    one_select(
        &format!("select s1 from root.sg.d1 where {condition}"),
        &query,
    );
}

#[test]
fn create_database_and_synonyms() {
    let expected = Statement::CreateDatabase { path: p("root.sg") };
    one("create database root.sg", expected.clone());
    one("CREATE STORAGE GROUP ROOT.sg", expected.clone());
    one("set storage group to root.sg", expected);
    assert_eq!(
        parse("create database root.sg").unwrap()[0].to_string(),
        "CREATE DATABASE root.sg"
    );
}

#[test]
fn drop_database_and_synonyms() {
    let expected = Statement::DropDatabase {
        paths: vec![p("root.sg"), p("root.sg2.**")],
    };
    for sql in [
        "drop database root.sg, root.sg2.**",
        "delete database root.sg, root.sg2.**",
        "delete storage group root.sg, root.sg2.**",
        "drop storage group root.sg,root.sg2.**",
    ] {
        one(sql, expected.clone());
    }
}

#[test]
fn show_and_count_statements() {
    let at = |path: &str| Some(p(path));
    for (sql, expected) in [
        ("show databases", Statement::ShowDatabases { path: None }),
        (
            "show storage group root.**",
            Statement::ShowDatabases {
                path: at("root.**"),
            },
        ),
        ("show timeseries", Statement::ShowTimeseries { path: None }),
        (
            "show timeseries root.sg.*.s1",
            Statement::ShowTimeseries {
                path: at("root.sg.*.s1"),
            },
        ),
        ("show devices", Statement::ShowDevices { path: None }),
        (
            "SHOW DEVICES root.sg.**",
            Statement::ShowDevices {
                path: at("root.sg.**"),
            },
        ),
        (
            "count timeseries",
            Statement::CountTimeseries { path: None },
        ),
        (
            "count timeseries root.**",
            Statement::CountTimeseries {
                path: at("root.**"),
            },
        ),
        ("count devices", Statement::CountDevices { path: None }),
        (
            "count devices root.sg.*",
            Statement::CountDevices {
                path: at("root.sg.*"),
            },
        ),
    ] {
        one(sql, expected);
    }
    assert_round_trip(
        "show databases; show timeseries root.**",
        &[
            Statement::ShowDatabases { path: None },
            Statement::ShowTimeseries {
                path: Some(p("root.**")),
            },
        ],
    );
}

#[test]
fn create_timeseries_long_and_short_forms() {
    let expected = Statement::CreateTimeseries {
        path: p("root.sg.d1.s1"),
        data_type: DataTypeName::Int32,
        attributes: pairs(&[("ENCODING", "RLE"), ("COMPRESSOR", "SNAPPY")]),
    };
    for sql in [
        "create timeseries root.sg.d1.s1 with datatype=INT32, encoding=RLE, compressor=SNAPPY",
        "CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=int32,ENCODING=RLE,COMPRESSOR=SNAPPY",
        "create timeseries root.sg.d1.s1 datatype=INT32 encoding=RLE compressor=SNAPPY",
        "create timeseries root.sg.d1.s1 INT32 encoding=RLE compressor=SNAPPY",
        "create timeseries root.sg.d1.s1 INT32 encoding='RLE', compressor=\"SNAPPY\"",
    ] {
        one(sql, expected.clone());
    }
    assert_eq!(
        expected.to_string(),
        "CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=INT32, ENCODING=RLE, COMPRESSOR=SNAPPY"
    );
}

#[test]
fn create_timeseries_every_data_type() {
    for data_type in DataTypeName::ALL {
        one(
            &format!(
                "create timeseries root.sg.d.s {}",
                data_type.name().to_lowercase()
            ),
            Statement::CreateTimeseries {
                path: p("root.sg.d.s"),
                data_type,
                attributes: Vec::new(),
            },
        );
    }
}

#[test]
fn create_timeseries_tags_and_attributes() {
    one(
        "create timeseries root.sg.d1.s1 with datatype=FLOAT, encoding=RLE, compression=SNAPPY, \
         max_point_number=3 tags(tag1=v1, 'tag 2'=\"v 2\") attributes(attr1=-1, `a b`=c)",
        Statement::CreateTimeseries {
            path: p("root.sg.d1.s1"),
            data_type: DataTypeName::Float,
            attributes: pairs(&[
                ("ENCODING", "RLE"),
                ("COMPRESSION", "SNAPPY"),
                ("MAX_POINT_NUMBER", "3"),
                ("TAGS.tag1", "v1"),
                ("TAGS.tag 2", "v 2"),
                ("ATTRIBUTES.attr1", "-1"),
                ("ATTRIBUTES.a b", "c"),
            ]),
        },
    );
}

#[test]
fn create_aligned_timeseries() {
    let expected = Statement::CreateAlignedTimeseries {
        device: p("root.sg.d2"),
        columns: vec![
            ColumnDef {
                name: "s1".into(),
                data_type: DataTypeName::Int32,
                attributes: pairs(&[("ENCODING", "RLE"), ("COMPRESSOR", "SNAPPY")]),
            },
            ColumnDef {
                name: "s2".into(),
                data_type: DataTypeName::Float,
                attributes: Vec::new(),
            },
            ColumnDef {
                name: "time".into(),
                data_type: DataTypeName::Text,
                attributes: pairs(&[("TAGS.k", "v")]),
            },
        ],
    };
    one(
        "create aligned timeseries root.sg.d2(s1 INT32 encoding=RLE compressor=SNAPPY, s2 FLOAT, `time` TEXT tags(k=v))",
        expected.clone(),
    );
    one(
        "create aligned timeseries root.sg.d2(s1 INT32, encoding=RLE, compressor=SNAPPY, s2 datatype=FLOAT, `time` TEXT tags(k=v))",
        expected.clone(),
    );
    assert_eq!(
        expected.to_string(),
        "CREATE ALIGNED TIMESERIES root.sg.d2(s1 INT32 ENCODING=RLE COMPRESSOR=SNAPPY, s2 FLOAT, `time` TEXT TAGS(k=v))"
    );
}

#[test]
fn delete_timeseries_and_synonym() {
    let expected = Statement::DeleteTimeseries {
        paths: vec![p("root.sg.d1.s1"), p("root.sg.*.s2"), p("root.**")],
    };
    one(
        "delete timeseries root.sg.d1.s1, root.sg.*.s2, root.**",
        expected.clone(),
    );
    one(
        "drop timeseries root.sg.d1.s1,root.sg.*.s2,root.**",
        expected,
    );
}

#[test]
fn insert_with_every_literal_kind() {
    one(
        "insert into root.sg.d1(timestamp, a, b, c, d, e, f, g, h) values \
         (1, 2, -3, 1.5, -2e3, 'it''s', \"say \"\"hi\"\"\", X'0a0B', NULL), \
         (2, true, FALSE, .5, 1E-3, '', \"\", x'', null)",
        Statement::Insert {
            device: p("root.sg.d1"),
            aligned: false,
            columns: ["a", "b", "c", "d", "e", "f", "g", "h"]
                .map(String::from)
                .to_vec(),
            rows: vec![
                InsertRow {
                    time: InsertTime::Value(1),
                    values: vec![
                        int("2"),
                        int("-3"),
                        float("1.5"),
                        float("-2e3"),
                        string("it's"),
                        string("say \"hi\""),
                        Literal::Blob(vec![0x0a, 0x0b]),
                        Literal::Null,
                    ],
                },
                InsertRow {
                    time: InsertTime::Value(2),
                    values: vec![
                        Literal::Boolean(true),
                        Literal::Boolean(false),
                        float(".5"),
                        float("1E-3"),
                        string(""),
                        string(""),
                        Literal::Blob(Vec::new()),
                        Literal::Null,
                    ],
                },
            ],
        },
    );
}

#[test]
fn insert_times_aligned_and_big_integers() {
    one(
        "INSERT INTO root.sg.`d.1`(TIME, s1) ALIGNED VALUES (-5, 99999999999999999999), (now(), 1), \
         (2017-11-01T00:00:00.000+08:00, 2), ('2017-11-01 00:00:00', 3), (\"2017/11/01\", 4), (NOW( ), 5)",
        Statement::Insert {
            device: Path(vec![
                PathNode::Name("root".into()),
                PathNode::Name("sg".into()),
                PathNode::Name("d.1".into()),
            ]),
            aligned: true,
            columns: vec!["s1".into()],
            rows: vec![
                InsertRow {
                    time: InsertTime::Value(-5),
                    values: vec![int("99999999999999999999")],
                },
                InsertRow {
                    time: InsertTime::Now,
                    values: vec![int("1")],
                },
                InsertRow {
                    time: InsertTime::DateTime("2017-11-01T00:00:00.000+08:00".into()),
                    values: vec![int("2")],
                },
                InsertRow {
                    time: InsertTime::DateTime("2017-11-01 00:00:00".into()),
                    values: vec![int("3")],
                },
                InsertRow {
                    time: InsertTime::DateTime("2017/11/01".into()),
                    values: vec![int("4")],
                },
                InsertRow {
                    time: InsertTime::Now,
                    values: vec![int("5")],
                },
            ],
        },
    );
}

#[test]
fn insert_without_time_column_is_now() {
    let expected = Statement::Insert {
        device: p("root.sg.d1"),
        aligned: false,
        columns: vec!["s1".into(), "s2".into()],
        rows: vec![InsertRow {
            time: InsertTime::Now,
            values: vec![int("5"), string("x")],
        }],
    };
    one(
        "insert into root.sg.d1(s1, s2) values (5, 'x')",
        expected.clone(),
    );
    assert_eq!(
        expected.to_string(),
        "INSERT INTO root.sg.d1(timestamp, s1, s2) VALUES (NOW(), 5, 'x')"
    );
}

#[test]
fn insert_measurement_names_that_need_quotes() {
    one(
        "insert into root.sg.d1(timestamp, `time`, `a b`, `12`, `select`) values (1, 1, 2, 3, 4)",
        Statement::Insert {
            device: p("root.sg.d1"),
            aligned: false,
            columns: ["time", "a b", "12", "select"].map(String::from).to_vec(),
            rows: vec![InsertRow {
                time: InsertTime::Value(1),
                values: vec![int("1"), int("2"), int("3"), int("4")],
            }],
        },
    );
}

#[test]
fn delete_data() {
    one(
        "delete from root.sg.d1.s1, root.sg.d2.*",
        Statement::DeleteData {
            paths: vec![p("root.sg.d1.s1"), p("root.sg.d2.*")],
            condition: None,
        },
    );
    one(
        "delete from root.sg.d1.s1 where time >= 1 and time <= 10",
        Statement::DeleteData {
            paths: vec![p("root.sg.d1.s1")],
            condition: Some(bin(
                bin(Expr::Time, BinaryOp::GtEq, e_int("1")),
                BinaryOp::And,
                bin(Expr::Time, BinaryOp::LtEq, e_int("10")),
            )),
        },
    );
    one(
        "DELETE FROM root.sg.** WHERE time < 2017-11-01T00:00:00",
        Statement::DeleteData {
            paths: vec![p("root.sg.**")],
            condition: Some(bin(
                Expr::Time,
                BinaryOp::Lt,
                Expr::DateTime("2017-11-01T00:00:00".into()),
            )),
        },
    );
}

#[test]
fn flush() {
    one("flush", Statement::Flush { paths: Vec::new() });
    one("flush true", Statement::Flush { paths: Vec::new() });
    one("flush on cluster", Statement::Flush { paths: Vec::new() });
    one(
        "flush root.sg, root.sg2 false on local",
        Statement::Flush {
            paths: vec![p("root.sg"), p("root.sg2")],
        },
    );
}

#[test]
fn paths_with_quoted_digit_and_wildcard_nodes() {
    let expected = Statement::ShowTimeseries {
        path: Some(Path(vec![
            PathNode::Name("root".into()),
            PathNode::Name("sg".into()),
            PathNode::Name("d.1".into()),
            PathNode::Name("a`b".into()),
            PathNode::Name("12".into()),
            PathNode::Name("1s".into()),
            PathNode::Name("1e3".into()),
            PathNode::One,
            PathNode::Many,
            PathNode::Name("time".into()),
            PathNode::Name("é".into()),
            PathNode::Name("a:b@{c}".into()),
            PathNode::Glob("d*".into()),
            PathNode::Glob("*12*".into()),
            PathNode::Glob("**`x-1".into()),
        ])),
    };
    one(
        "show timeseries root.sg.`d.1`.`a``b`.`12`.1s.`1e3`.*.**.`time`.`é`.a:b@{c}.d*.*12*.**```x-1`",
        expected.clone(),
    );
    assert_eq!(
        expected.to_string(),
        "SHOW TIMESERIES root.sg.`d.1`.`a``b`.`12`.1s.`1e3`.*.**.`time`.`é`.a:b@{c}.d*.*12*.**```x-1`"
    );
    // IoTDB reads 12 and 1e3 as numbers and é as no identifier at all: they must be quoted.
    for (sql, column) in [
        ("show timeseries root.sg.12", 25),
        ("show timeseries root.sg.d.1e3", 27),
        ("show timeseries root.sg.é", 25),
        ("show timeseries root.sg.*a*b", 25),
        ("show timeseries root.sg.", 25),
    ] {
        let error = duet_parser::parse(sql).unwrap_err();
        assert_eq!((error.line, error.column), (1, column), "{sql}: {error}");
        assert_eq!(error.kind, duet_parser::ParseErrorKind::Syntax, "{sql}");
    }
    assert!(p("root.sg.*").is_pattern() && p("root.**").is_pattern());
    assert!(!p("root.sg.d1").is_pattern());
}

#[test]
fn select_wildcards_paths_aliases_and_aggregates() {
    one(
        "select * from root.sg.d1",
        Statement::Select(Box::new(select(
            vec![SelectItem::Wildcard],
            &["root.sg.d1"],
        ))),
    );
    one(
        "select ** from root.sg",
        Statement::Select(Box::new(select(vec![item("**")], &["root.sg"]))),
    );
    one(
        "SELECT s1 AS temperature, d1.s1, *.s1, `s.2` as `my alias`, count(*), MAX_VALUE(s1) AS m, \
         last_value(d1.*) FROM root.sg.d1, root.sg.*, root.**",
        Statement::Select(Box::new(select(
            vec![
                SelectItem::Path {
                    path: p("s1"),
                    alias: Some("temperature".into()),
                },
                item("d1.s1"),
                item("*.s1"),
                SelectItem::Path {
                    path: Path(vec![PathNode::Name("s.2".into())]),
                    alias: Some("my alias".into()),
                },
                agg("count", "*"),
                SelectItem::Aggregate {
                    function: "MAX_VALUE".into(),
                    path: p("s1"),
                    alias: Some("m".into()),
                },
                agg("last_value", "d1.*"),
            ],
            &["root.sg.d1", "root.sg.*", "root.**"],
        ))),
    );
}

#[test]
fn select_last_with_where_time() {
    let mut query = select(vec![item("s1"), item("s2")], &["root.sg.d1"]);
    query.last = true;
    query.condition = Some(bin(Expr::Time, BinaryOp::Gt, e_int("100")));
    one_select(
        "select last s1, s2 from root.sg.d1 where time > 100",
        &query,
    );
    query.condition = Some(bin(
        Expr::Time,
        BinaryOp::Gt,
        Expr::DateTime("2017-11-01T00:00:00".into()),
    ));
    one_select(
        "select last s1, s2 from root.sg.d1 where time > '2017-11-01T00:00:00'",
        &query,
    );
}

#[test]
fn select_group_by_with_step_and_left_open() {
    let mut query = select(vec![agg("avg", "s1")], &["root.sg.d1"]);
    query.group_by = Some(GroupByTime {
        start: TimeValue::Value(1),
        end: TimeValue::Value(100),
        left_open: false,
        interval: DurationLiteral {
            text: "10ms".into(),
        },
        step: None,
    });
    one_select(
        "select avg(s1) from root.sg.d1 group by ([1, 100), 10ms)",
        &query,
    );
    query.group_by = Some(GroupByTime {
        start: TimeValue::DateTime("2017-11-01T00:00:00".into()),
        end: TimeValue::Now,
        left_open: true,
        interval: DurationLiteral {
            text: "1h30m".into(),
        },
        step: Some(DurationLiteral { text: "1d".into() }),
    });
    one_select(
        "select avg(s1) from root.sg.d1 group by ((2017-11-01T00:00:00, now()], 1h30m, 1d)",
        &query,
    );
    query.group_by = Some(GroupByTime {
        start: TimeValue::Value(-10),
        end: TimeValue::DateTime("2017/11/07 23:00:00".into()),
        left_open: false,
        interval: DurationLiteral { text: "100".into() },
        step: Some(DurationLiteral { text: "1MO".into() }),
    });
    one_select(
        "select avg(s1) from root.sg.d1 group by ([-10, '2017/11/07 23:00:00'), 100, 1MO)",
        &query,
    );
}

fn dur(text: &str) -> DurationLiteral {
    DurationLiteral { text: text.into() }
}

fn shift(subtract: bool, text: &str) -> TimeShift {
    TimeShift {
        subtract,
        duration: dur(text),
    }
}

#[test]
fn date_expressions_in_group_by_insert_and_where() {
    let mut query = select(vec![agg("count", "s1")], &["root.sg.d1"]);
    query.group_by = Some(GroupByTime {
        start: TimeValue::Shifted {
            base: Box::new(TimeValue::Now),
            shifts: vec![shift(true, "1d"), shift(false, "2h30m")],
        },
        end: TimeValue::Shifted {
            base: Box::new(TimeValue::DateTime("2024-01-31T00:00:00+08:00".into())),
            shifts: vec![shift(false, "1mo")],
        },
        left_open: false,
        interval: dur("1mo"),
        step: Some(dur("1y")),
    });
    one_select("select count(s1) from root.sg.d1 group by ([now() - 1d + 2h30m, 2024-01-31T00:00:00+08:00+1mo), 1mo, 1y)", &query);
    one(
        "insert into root.sg.d1(time, s1) values (2024-01-01 - 1w, 1)",
        Statement::Insert {
            device: p("root.sg.d1"),
            aligned: false,
            columns: vec!["s1".into()],
            rows: vec![InsertRow {
                time: InsertTime::Shifted {
                    base: Box::new(InsertTime::DateTime("2024-01-01".into())),
                    shifts: vec![shift(true, "1w")],
                },
                values: vec![e_int_literal("1")],
            }],
        },
    );
    let minus_day = bin(Expr::Now, BinaryOp::Minus, Expr::Duration(dur("1d")));
    where_(
        "time > now() - 1d",
        bin(Expr::Time, BinaryOp::Gt, minus_day.clone()),
    );
    where_(
        "time between now() - 1d - 1h and 2023-11-15T00:00:00 + 1H",
        Expr::Between {
            expr: Box::new(Expr::Time),
            low: Box::new(bin(
                minus_day.clone(),
                BinaryOp::Minus,
                Expr::Duration(dur("1h")),
            )),
            high: Box::new(bin(
                Expr::DateTime("2023-11-15T00:00:00".into()),
                BinaryOp::Plus,
                Expr::Duration(dur("1H")),
            )),
            negated: false,
        },
    );
    // A shifted time still binds like a sum: a product of it prints in parentheses.
    where_(
        "(now() - 1d) * 2 > 0",
        bin(
            bin(minus_day, BinaryOp::Mul, e_int("2")),
            BinaryOp::Gt,
            e_int("0"),
        ),
    );
}

fn e_int_literal(text: &str) -> Literal {
    Literal::Integer(text.into())
}

#[test]
fn select_order_pagination_and_alignment() {
    let mut query = select(vec![item("s1")], &["root.sg.d1"]);
    query.order_by_time_desc = true;
    query.limit = Some(10);
    query.offset = Some(2);
    query.slimit = Some(3);
    query.soffset = Some(1);
    query.align_by_device = true;
    let expected = Statement::Select(Box::new(query));
    one(
        "select s1 from root.sg.d1 order by time desc limit 10 offset 2 slimit 3 soffset 1 align by device",
        expected.clone(),
    );
    one(
        "select s1 from root.sg.d1 order by timestamp desc soffset 1 slimit 3 offset 2 limit 10 align by device",
        expected.clone(),
    );
    assert_eq!(
        expected.to_string(),
        "SELECT s1 FROM root.sg.d1 ORDER BY TIME DESC LIMIT 10 OFFSET 2 SLIMIT 3 SOFFSET 1 ALIGN BY DEVICE"
    );
    one(
        "select s1 from root.sg.d1 order by time asc align by time",
        Statement::Select(Box::new(select(vec![item("s1")], &["root.sg.d1"]))),
    );
    let mut query = select(vec![item("s1")], &["root.sg.d1"]);
    query.offset = Some(5);
    one_select("select s1 from root.sg.d1 offset 5", &query);
}

#[test]
fn expression_primaries() {
    where_("time > 1", bin(Expr::Time, BinaryOp::Gt, e_int("1")));
    where_("TIMESTAMP > 1", bin(Expr::Time, BinaryOp::Gt, e_int("1")));
    where_("time < now()", bin(Expr::Time, BinaryOp::Lt, Expr::Now));
    where_(
        "time >= 2017-11-01 00:00:00",
        bin(
            Expr::Time,
            BinaryOp::GtEq,
            Expr::DateTime("2017-11-01 00:00:00".into()),
        ),
    );
    where_(
        "'2017-11-01' <= time",
        bin(
            Expr::DateTime("2017-11-01".into()),
            BinaryOp::LtEq,
            Expr::Time,
        ),
    );
    // Compared with a series, a datetime-like string stays a string.
    where_(
        "s1 = '2017-11-01'",
        bin(
            e_path("s1"),
            BinaryOp::Eq,
            Expr::Literal(string("2017-11-01")),
        ),
    );
    where_(
        "d1.s1 = root.sg.d1.s2",
        bin(e_path("d1.s1"), BinaryOp::Eq, e_path("root.sg.d1.s2")),
    );
    where_(
        "`time` = \"x\"",
        bin(
            Expr::Path(Path(vec![PathNode::Name("time".into())])),
            BinaryOp::Eq,
            Expr::Literal(string("x")),
        ),
    );
    where_(
        "s1 = true or s1 = null or s1 = X'ff' or s1 = -1.5",
        bin(
            bin(
                bin(
                    bin(
                        e_path("s1"),
                        BinaryOp::Eq,
                        Expr::Literal(Literal::Boolean(true)),
                    ),
                    BinaryOp::Or,
                    bin(e_path("s1"), BinaryOp::Eq, Expr::Literal(Literal::Null)),
                ),
                BinaryOp::Or,
                bin(
                    e_path("s1"),
                    BinaryOp::Eq,
                    Expr::Literal(Literal::Blob(vec![0xff])),
                ),
            ),
            BinaryOp::Or,
            bin(e_path("s1"), BinaryOp::Eq, Expr::Literal(float("-1.5"))),
        ),
    );
}

#[test]
fn expression_operators_and_precedence() {
    // OR < AND < NOT < comparison < + - < * / % < unary minus
    where_(
        "s1 = 1 or s2 = 2 and not s3 + 4 * -s4 > 5",
        bin(
            bin(e_path("s1"), BinaryOp::Eq, e_int("1")),
            BinaryOp::Or,
            bin(
                bin(e_path("s2"), BinaryOp::Eq, e_int("2")),
                BinaryOp::And,
                unary(
                    UnaryOp::Not,
                    bin(
                        bin(
                            e_path("s3"),
                            BinaryOp::Plus,
                            bin(e_int("4"), BinaryOp::Mul, unary(UnaryOp::Neg, e_path("s4"))),
                        ),
                        BinaryOp::Gt,
                        e_int("5"),
                    ),
                ),
            ),
        ),
    );
    where_(
        "(s1 + 1) * 2 != 3 && s1 <> 4 || s1 == 5",
        bin(
            bin(
                bin(
                    bin(
                        bin(e_path("s1"), BinaryOp::Plus, e_int("1")),
                        BinaryOp::Mul,
                        e_int("2"),
                    ),
                    BinaryOp::NotEq,
                    e_int("3"),
                ),
                BinaryOp::And,
                bin(e_path("s1"), BinaryOp::NotEq, e_int("4")),
            ),
            BinaryOp::Or,
            bin(e_path("s1"), BinaryOp::Eq, e_int("5")),
        ),
    );
    where_(
        "s1 - 2 - 3 / 4 % 5 < 6 - -7",
        bin(
            bin(
                bin(e_path("s1"), BinaryOp::Minus, e_int("2")),
                BinaryOp::Minus,
                bin(
                    bin(e_int("3"), BinaryOp::Div, e_int("4")),
                    BinaryOp::Mod,
                    e_int("5"),
                ),
            ),
            BinaryOp::Lt,
            bin(e_int("6"), BinaryOp::Minus, e_int("-7")),
        ),
    );
    // Right-nested groups keep their parentheses when printed.
    where_(
        "s1 - (2 - 3) = 0 and (s2 = 1 or s3 = 2) and -(5) < -(-(s1))",
        bin(
            bin(
                bin(
                    bin(
                        e_path("s1"),
                        BinaryOp::Minus,
                        bin(e_int("2"), BinaryOp::Minus, e_int("3")),
                    ),
                    BinaryOp::Eq,
                    e_int("0"),
                ),
                BinaryOp::And,
                bin(
                    bin(e_path("s2"), BinaryOp::Eq, e_int("1")),
                    BinaryOp::Or,
                    bin(e_path("s3"), BinaryOp::Eq, e_int("2")),
                ),
            ),
            BinaryOp::And,
            bin(
                unary(UnaryOp::Neg, e_int("5")),
                BinaryOp::Lt,
                unary(UnaryOp::Neg, unary(UnaryOp::Neg, e_path("s1"))),
            ),
        ),
    );
    where_(
        "-(s1 + 1) * - - 2 > - -s1 - -2017-11-01",
        bin(
            bin(
                unary(UnaryOp::Neg, bin(e_path("s1"), BinaryOp::Plus, e_int("1"))),
                BinaryOp::Mul,
                unary(UnaryOp::Neg, e_int("-2")),
            ),
            BinaryOp::Gt,
            bin(
                unary(UnaryOp::Neg, unary(UnaryOp::Neg, e_path("s1"))),
                BinaryOp::Minus,
                unary(UnaryOp::Neg, Expr::DateTime("2017-11-01".into())),
            ),
        ),
    );
    where_(
        "! not s1 > 1",
        unary(
            UnaryOp::Not,
            unary(UnaryOp::Not, bin(e_path("s1"), BinaryOp::Gt, e_int("1"))),
        ),
    );
}

#[test]
fn expression_between_in_is_null_like() {
    where_(
        "time between 1 and 10 and s1 not between -1 and 2 + 3",
        bin(
            Expr::Between {
                expr: Box::new(Expr::Time),
                low: Box::new(e_int("1")),
                high: Box::new(e_int("10")),
                negated: false,
            },
            BinaryOp::And,
            Expr::Between {
                expr: Box::new(e_path("s1")),
                low: Box::new(e_int("-1")),
                high: Box::new(bin(e_int("2"), BinaryOp::Plus, e_int("3"))),
                negated: true,
            },
        ),
    );
    where_(
        "time between '2017-11-01' and 2017-11-02",
        Expr::Between {
            expr: Box::new(Expr::Time),
            low: Box::new(Expr::DateTime("2017-11-01".into())),
            high: Box::new(Expr::DateTime("2017-11-02".into())),
            negated: false,
        },
    );
    where_(
        "s1 in (1, 'a', s2 + 1) or time not in (1, '2017-11-01')",
        bin(
            Expr::InList {
                expr: Box::new(e_path("s1")),
                list: vec![
                    e_int("1"),
                    Expr::Literal(string("a")),
                    bin(e_path("s2"), BinaryOp::Plus, e_int("1")),
                ],
                negated: false,
            },
            BinaryOp::Or,
            Expr::InList {
                expr: Box::new(Expr::Time),
                list: vec![e_int("1"), Expr::DateTime("2017-11-01".into())],
                negated: true,
            },
        ),
    );
    where_(
        "s1 is null and s2 IS NOT NULL",
        bin(
            Expr::IsNull {
                expr: Box::new(e_path("s1")),
                negated: false,
            },
            BinaryOp::And,
            Expr::IsNull {
                expr: Box::new(e_path("s2")),
                negated: true,
            },
        ),
    );
    where_(
        "s1 like 'a%' and s2 not like \"_b\"",
        bin(
            Expr::Like {
                expr: Box::new(e_path("s1")),
                pattern: "a%".into(),
                negated: false,
            },
            BinaryOp::And,
            Expr::Like {
                expr: Box::new(e_path("s2")),
                pattern: "_b".into(),
                negated: true,
            },
        ),
    );
    // Postfix forms apply to the comparison before them, and print back the same way.
    where_(
        "s1 = 1 is null",
        Expr::IsNull {
            expr: Box::new(bin(e_path("s1"), BinaryOp::Eq, e_int("1"))),
            negated: false,
        },
    );
}

#[test]
fn deep_but_allowed_expressions_round_trip() {
    // Run on a small stack, as a server thread might.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            for condition in [
                format!("{}s1 > 1{}", "(".repeat(190), ")".repeat(190)),
                format!("{}s1", "not ".repeat(190)),
                format!("{}s1 > 1", "- ".repeat(190)),
                format!("s1{} > 1", " + 1".repeat(190)),
            ] {
                let sql = format!("select s1 from root.sg.d1 where {condition}");
                let statements = parse(&sql).unwrap_or_else(|e| panic!("{e}"));
                let printed = statements[0].to_string();
                assert_eq!(parse(&printed).unwrap(), statements);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

fn agg(function: &str, path: &str) -> SelectItem {
    SelectItem::Aggregate {
        function: function.into(),
        path: p(path),
        alias: None,
    }
}

#[test]
fn select_fill_in_every_form_and_either_order_with_order_by() {
    let base = select(vec![item("s1")], &["root.sg.d1"]);
    let fills = [
        ("fill(previous)", FillMethod::Previous, None),
        ("FILL(LINEAR)", FillMethod::Linear, None),
        (
            "fill(previous, 1m30s)",
            FillMethod::Previous,
            Some(dur("1m30s")),
        ),
        (
            "fill(-2.5)",
            FillMethod::Constant(Literal::Float("-2.5".into())),
            None,
        ),
        (
            "fill(10)",
            FillMethod::Constant(Literal::Integer("10".into())),
            None,
        ),
        (
            "fill('it''s')",
            FillMethod::Constant(Literal::String("it's".into())),
            None,
        ),
        (
            "fill(true)",
            FillMethod::Constant(Literal::Boolean(true)),
            None,
        ),
        // The engine refuses a bound on anything but PREVIOUS (IoTDB's semantic error).
        ("fill(linear, 1ms)", FillMethod::Linear, Some(dur("1ms"))),
    ];
    for (clause, method, bound) in fills {
        let mut query = base.clone();
        query.fill = Some(Fill { method, bound });
        one_select(&format!("select s1 from root.sg.d1 {clause}"), &query);
    }
    let mut query = base;
    query.order_by_time_desc = true;
    query.limit = Some(3);
    query.fill = Some(Fill {
        method: FillMethod::Previous,
        bound: None,
    });
    one_select(
        "select s1 from root.sg.d1 fill(previous) order by time desc limit 3",
        &query,
    );
    one_select(
        "select s1 from root.sg.d1 order by time desc fill(previous) limit 3",
        &query,
    );
}

#[test]
fn select_group_by_level_alone_after_and_before_time_windows() {
    let mut query = select(vec![agg("count", "s1")], &["root.**"]);
    query.group_by_level = Some(vec![1, 3]);
    one_select(
        "select count(s1) from root.** group by level = 1, 3",
        &query,
    );
    query.group_by = Some(window_1_to_11_by_2ms());
    one_select(
        "select count(s1) from root.** group by ([1, 11), 2ms), level=1,3",
        &query,
    );
    one_select(
        "select count(s1) from root.** group by level = 1, 3, ([1, 11), 2ms)",
        &query,
    );
}

#[test]
fn select_having_with_aggregates_levels_and_fill() {
    let mut query = select(vec![agg("count", "s1")], &["root.**"]);
    query.group_by = Some(window_1_to_11_by_2ms());
    query.group_by_level = Some(vec![1]);
    query.having = Some(Expr::Binary {
        left: Box::new(Expr::Binary {
            left: Box::new(Expr::Aggregate {
                function: "COUNT".into(),
                path: p("s2"),
            }),
            op: BinaryOp::Gt,
            right: Box::new(Expr::Literal(Literal::Integer("1".into()))),
        }),
        op: BinaryOp::And,
        right: Box::new(Expr::Binary {
            left: Box::new(Expr::Aggregate {
                function: "MAX_VALUE".into(),
                path: p("*"),
            }),
            op: BinaryOp::LtEq,
            right: Box::new(Expr::Literal(Literal::Float("2.5".into()))),
        }),
    });
    query.fill = Some(Fill {
        method: FillMethod::Linear,
        bound: None,
    });
    query.slimit = Some(1);
    one_select("select count(s1) from root.** group by ([1, 11), 2ms), level = 1 having count(s2) > 1 and max_value(*) <= 2.5 fill(linear) slimit 1", &query);
}

#[test]
fn select_count_if_with_keep_and_ignore_null() {
    let cmp = |path: &str, op, n: &str| Expr::Binary {
        left: Box::new(Expr::Path(p(path))),
        op,
        right: Box::new(Expr::Literal(Literal::Integer(n.into()))),
    };
    // IoTDB writes AND as `&` (and OR as `|`) in its COUNT_IF examples.
    let predicate = Expr::Binary {
        left: Box::new(cmp("s1", BinaryOp::Eq, "0")),
        op: BinaryOp::And,
        right: Box::new(cmp("s2", BinaryOp::Eq, "0")),
    };
    let item = |keep, ignore_null, alias: Option<&str>| SelectItem::CountIf {
        function: "count_if".into(),
        predicate: predicate.clone(),
        keep,
        ignore_null,
        alias: alias.map(str::to_string),
    };
    let bare = Keep {
        op: None,
        threshold: 3,
    };
    one(
        "select count_if(s1=0 & s2=0, 3) from root.db.d1",
        Statement::Select(Box::new(select(
            vec![item(bare, None, None)],
            &["root.db.d1"],
        ))),
    );
    // The name is kept as written (headers echo it).
    one(
        "select Count_If(s1 = 0 and s2 = 0, keep >= 3, 'ignoreNull'='false') as c from root.db.d1",
        Statement::Select(Box::new(select(
            vec![SelectItem::CountIf {
                function: "Count_If".into(),
                predicate: predicate.clone(),
                keep: Keep {
                    op: Some(BinaryOp::GtEq),
                    threshold: 3,
                },
                ignore_null: Some(false),
                alias: Some("c".into()),
            }],
            &["root.db.d1"],
        ))),
    );
    one(
        "select count_if(s1 = 0 | s2 = 0, keep<2, \"ignoreNull\"=\"true\") from root.db.d1",
        Statement::Select(Box::new(select(
            vec![SelectItem::CountIf {
                function: "count_if".into(),
                predicate: Expr::Binary {
                    left: Box::new(cmp("s1", BinaryOp::Eq, "0")),
                    op: BinaryOp::Or,
                    right: Box::new(cmp("s2", BinaryOp::Eq, "0")),
                },
                keep: Keep {
                    op: Some(BinaryOp::Lt),
                    threshold: 2,
                },
                ignore_null: Some(true),
                alias: None,
            }],
            &["root.db.d1"],
        ))),
    );
}

#[test]
fn device_template_statements() {
    let column = |name: &str, data_type: DataTypeName, attributes: &[(&str, &str)]| ColumnDef {
        name: name.into(),
        data_type,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    one(
        "CREATE DEVICE TEMPLATE t1 (s1 INT32 encoding=RLE, compression=SNAPPY, s2 FLOAT)",
        Statement::CreateTemplate {
            name: "t1".into(),
            aligned: false,
            measurements: vec![
                column(
                    "s1",
                    DataTypeName::Int32,
                    &[("ENCODING", "RLE"), ("COMPRESSION", "SNAPPY")],
                ),
                column("s2", DataTypeName::Float, &[]),
            ],
        },
    );
    one(
        "create schema template `t 2` aligned (lat DOUBLE)",
        Statement::CreateTemplate {
            name: "t 2".into(),
            aligned: true,
            measurements: vec![column("lat", DataTypeName::Double, &[])],
        },
    );
    one(
        "create device template empty",
        Statement::CreateTemplate {
            name: "empty".into(),
            aligned: false,
            measurements: vec![],
        },
    );
    for sql in [
        "create timeseries using device template on root.sg1.d1",
        "CREATE TIMESERIES OF SCHEMA TEMPLATE ON root.sg1.d1",
    ] {
        one(
            sql,
            Statement::ActivateTemplate {
                path: p("root.sg1.d1"),
            },
        );
    }
    one(
        "set device template t1 to root.sg1",
        Statement::SetTemplate {
            name: "t1".into(),
            path: p("root.sg1"),
        },
    );
    one(
        "unset schema template t1 from root.sg1.d1",
        Statement::UnsetTemplate {
            name: "t1".into(),
            path: p("root.sg1.d1"),
        },
    );
    one(
        "drop device template t1",
        Statement::DropTemplate { name: "t1".into() },
    );
    one(
        "alter device template t1 add (s3 INT64, s4 TEXT encoding=PLAIN)",
        Statement::AlterTemplateAdd {
            name: "t1".into(),
            measurements: vec![
                column("s3", DataTypeName::Int64, &[]),
                column("s4", DataTypeName::Text, &[("ENCODING", "PLAIN")]),
            ],
        },
    );
    for (sql, name) in [
        (
            "deactivate device template t1 from root.sg1.*, root.sg2.d1",
            Some("t1"),
        ),
        ("DEACTIVATE TEMPLATE FROM root.sg1.*, root.sg2.d1", None),
        (
            "drop timeseries of schema template from root.sg1.*, root.sg2.d1",
            None,
        ),
        (
            "delete timeseries of device template t1 from root.sg1.*, root.sg2.d1",
            Some("t1"),
        ),
    ] {
        one(
            sql,
            Statement::DeactivateTemplate {
                name: name.map(str::to_string),
                paths: vec![p("root.sg1.*"), p("root.sg2.d1")],
            },
        );
    }
    one("show device templates", Statement::ShowTemplates);
    one("SHOW SCHEMA TEMPLATES", Statement::ShowTemplates);
    one(
        "show nodes in schema template t1",
        Statement::ShowNodesInTemplate { name: "t1".into() },
    );
    one(
        "show paths set device template t1",
        Statement::ShowPathsSetTemplate { name: "t1".into() },
    );
    one(
        "show paths using device template t1",
        Statement::ShowPathsUsingTemplate {
            path: None,
            name: "t1".into(),
        },
    );
    one(
        "show paths root.sg1.** using schema template t1",
        Statement::ShowPathsUsingTemplate {
            path: Some(p("root.sg1.**")),
            name: "t1".into(),
        },
    );
    // Other SHOW SCHEMA … statements still parse as before.
    assert!(parse("show schema regions").is_ok());
    for bad in [
        "create device template t1 (",
        "set device template t1 root.sg1",
        "show paths using template t1",
        "alter device template t1 add ()",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
}
