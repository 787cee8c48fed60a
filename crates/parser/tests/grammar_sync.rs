//! Keeps `grammar/duet.ebnf` and the parser in step: every production of the grammar must have a
//! round-trip case here, so adding a production without a test (or a parser rule) fails the build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

/// (production, statement exercising it). Every case must parse and round-trip.
const CASES: &[(&str, &str)] = &[
    ("script", "show pipes; ; show version;"),
    ("statement", "show version"),
    (
        "create_pipe",
        "create pipe if not exists p with source () with processor () with sink ('a'='b')",
    ),
    (
        "source_clause",
        "create pipe p with extractor ('a'='b') with sink ()",
    ),
    (
        "processor_clause",
        "create pipe p with processor ('processor'='do-nothing-processor') with sink ()",
    ),
    ("sink_clause", "create pipe p with connector ('a'='b')"),
    (
        "alter_pipe",
        "alter pipe if exists p modify source () replace processor () modify sink ('a'='b')",
    ),
    (
        "alter_mode",
        "alter pipe p replace extractor ('a'='b') modify connector ()",
    ),
    ("start_pipe", "start pipe p"),
    ("stop_pipe", "stop pipe p"),
    ("drop_pipe", "drop pipe if exists p"),
    ("show_pipes", "show pipes where connector used by p"),
    ("show_pipe", "show pipe p"),
    ("show_cluster", "show cluster details"),
    ("show_cluster_id", "show cluster_id"),
    ("show_version", "show version"),
    ("show_variables", "show variables"),
    ("show_datanodes", "show datanodes"),
    ("show_confignodes", "show confignodes"),
    ("show_regions", "show data regions of database root.sg1, root.sg2"),
    ("show_queries", "show query processlist"),
    ("kill_query", "kill query '20261130_230000_00001_1'"),
    ("set_ttl", "set ttl to root.sg.** 3600000"),
    ("unset_ttl", "unset ttl to root.sg.**"),
    ("show_ttl", "show ttl on root.sg.**"),
    ("create_user", "create user u 'pw'"),
    ("alter_user_password", "alter user u set password 'pw'"),
    ("drop_user", "drop user u"),
    ("list_user", "list user of role r"),
    ("create_role", "create role r"),
    ("drop_role", "drop role r"),
    ("list_role", "list role of user u"),
    ("list_privileges", "list privileges of role r"),
    (
        "grant",
        "grant read_data, write on root.sg.**, root.sg2.d1.s1 to user u with grant option",
    ),
    ("revoke", "revoke all on root.** from role r"),
    ("grant_role", "grant role r to u"),
    ("revoke_role", "revoke role r from u"),
    ("grantee", "list privileges of user u"),
    ("privileges", "grant manage_user, use_pipe on root.** to role r"),
    ("privilege", "grant audit on root.** to user u"),
    ("attribute_list", "create pipe p ('a'='b', 'c'='d',)"),
    ("attribute", "create pipe p ('a'='b')"),
    ("name", "start pipe `a name`"),
    ("identifier", "start pipe p_1"),
    ("quoted_identifier", "start pipe `a``b`"),
    ("string", "create pipe p ('a'=\"b\")"),
    ("single_quoted", "create pipe p ('it''s'='b')"),
    ("double_quoted", "create pipe p (\"say \"\"hi\"\"\"='b')"),
    ("create_database", "set storage group to root.sg"),
    ("drop_database", "delete storage group root.sg, root.sg2"),
    ("show_databases", "show storage group root.**"),
    ("show_timeseries", "show timeseries root.sg.**"),
    ("show_devices", "show devices root.sg.*"),
    ("count_timeseries", "count timeseries root.**"),
    ("count_devices", "count devices"),
    ("count_timeseries_by_level", "count timeseries root.sg.** group by level=2"),
    ("count_databases", "count databases root.*; count storage group"),
    ("count_nodes", "count nodes root.sg.** level = 2"),
    ("level", "count timeseries group by level = 0"),
    ("show_child_paths", "show child paths root.sg.*; show child paths"),
    ("show_child_nodes", "show child nodes root.sg; show child nodes"),
    ("wildcard", "select s* from root.sg.d*, root.**"),
    ("node_slice", "show timeseries root.*12.`a-b`*"),
    ("delete_timeseries", "drop timeseries root.sg.d1.s1, root.sg.*.s2"),
    (
        "create_timeseries",
        "create timeseries root.sg.d1.s1 with datatype=INT32, encoding=RLE",
    ),
    (
        "create_aligned_timeseries",
        "create aligned timeseries root.sg.d2(s1 INT32 encoding=RLE, s2 FLOAT)",
    ),
    ("column_def", "create aligned timeseries root.sg.d(`s.1` TEXT)"),
    (
        "timeseries_attributes",
        "create timeseries root.sg.d.s double encoding=GORILLA compressor=LZ4",
    ),
    (
        "attribute_pair",
        "create timeseries root.sg.d.s INT64, MAX_POINT_NUMBER=3",
    ),
    (
        "tag_clause",
        "create timeseries root.sg.d.s INT64 tags(unit=c, 'k 2'='v 2')",
    ),
    (
        "attribute_clause",
        "create timeseries root.sg.d.s INT64 attributes(owner=me)",
    ),
    (
        "tag_pair",
        "create timeseries root.sg.d.s INT64 tags(\"k\"=-1)",
    ),
    (
        "attribute_value",
        "create timeseries root.sg.d.s INT64 encoding='RLE', x=`y z`",
    ),
    ("data_type", "create timeseries root.sg.d.s timestamp"),
    (
        "insert",
        "insert into root.sg.d1(time, s1, s2) aligned values (1, 2, 'a'), (2, 3, 'b')",
    ),
    ("insert_row", "insert into root.sg.d1(s1) values (1.5)"),
    (
        "delete_data",
        "delete from root.sg.d1.s1 where time >= 1 and time <= 10",
    ),
    ("flush", "flush root.sg, root.sg2 false on local"),
    (
        "select",
        "select last s1 from root.sg.d1 where time > 5 order by time desc limit 1 align by device",
    ),
    ("select_item", "select s1 as a, *.s2, ** from root.sg"),
    ("aggregate", "select count(s1), max_value(*) from root.sg.d1"),
    (
        "count_if",
        "select count_if(s1 = 0 & s2 = 0, keep >= 3, 'ignoreNull'='false') from root.sg.d1",
    ),
    ("alias", "select s1 as `my alias` from root.sg.d1"),
    (
        "group_by",
        "select count(s1) from root.** group by level = 1, ([0, 10), 1ms)",
    ),
    (
        "group_by_time_windows",
        "select avg(s1) from root.sg.d1 group by ((2017-11-01, 2017-11-02], 1h, 30m)",
    ),
    (
        "group_by_level",
        "select count(s1) from root.** group by ([0, 10), 1ms), level = 1, 2",
    ),
    (
        "having",
        "select count(s1) from root.sg.d1 group by ([0, 10), 1ms) having count(s2) > 1 or sum(s1) < 0",
    ),
    (
        "fill",
        "select s1 from root.sg.d1 order by time desc fill(previous, 1m) limit 1",
    ),
    (
        "order_by_time",
        "select s1 from root.sg.d1 order by timestamp asc",
    ),
    (
        "pagination",
        "select s1 from root.sg.d1 slimit 1 soffset 2 limit 3 offset 4",
    ),
    ("align_by", "select s1 from root.sg.d1 align by time"),
    (
        "expression",
        "select s1 from root.sg.d1 where (s1 > 1 or s2 < 2) and not s3 = 3",
    ),
    ("or_expr", "select s1 from root.sg.d1 where s1 = 1 || s1 = 2 or s1 = 3"),
    ("and_expr", "select s1 from root.sg.d1 where s1 = 1 && s2 = 2 and s3 = 3"),
    ("not_expr", "select s1 from root.sg.d1 where not ! s1 = 1"),
    (
        "comparison",
        "select s1 from root.sg.d1 where s1 not between 1 and 2 and s2 in (1, 2) and s3 not like 'a%' and s4 is not null",
    ),
    (
        "comparison_op",
        "select s1 from root.sg.d1 where s1 = 1 and s1 == 1 and s1 != 1 and s1 <> 1 and s1 < 1 and s1 <= 1 and s1 > 1 and s1 >= 1",
    ),
    ("additive", "select s1 from root.sg.d1 where s1 + 1 - 2 > 0"),
    ("multiplicative", "select s1 from root.sg.d1 where s1 * 2 / 3 % 4 > 0"),
    ("unary", "select s1 from root.sg.d1 where -s1 < -5 and - (s2) > -1.5"),
    (
        "primary",
        "select s1 from root.sg.d1 where timestamp < now() and d1.s1 = (1) and time > 2017-11-01T00:00:00",
    ),
    ("path", "create database root.sg"),
    ("path_list", "delete timeseries root.sg.d1.s1, root.sg.d1.s2"),
    ("relative_path", "select d1.`s.1` from root.sg where d1.s1 > 0"),
    ("path_node", "show timeseries root.`a b`.*.**.`12`.1s.d*.*x.**`y-1`*"),
    ("node_name", "insert into root.sg.d1(timestamp, `s 1`, s_2) values (1, 2, 3)"),
    (
        "literal",
        "insert into root.sg.d1(time, a, b, c, d, e, f) values (1, NULL, true, -42, 'x', \"y\", X'0a0b')",
    ),
    ("number", "insert into root.sg.d1(time, a, b) values (1, 42, 1.5)"),
    ("integer", "insert into root.sg.d1(time, a) values (1, -9223372036854775809)"),
    ("float", "insert into root.sg.d1(time, a, b, c) values (1, .5, 1E-3, -2e3)"),
    ("blob", "insert into root.sg.d1(time, a) values (1, x'DEADbeef')"),
    (
        "time_value",
        "insert into root.sg.d1(time, a) values (-1, 1), (now(), 2), ('2017-11-01T00:00:00', 3)",
    ),
    (
        "date_expression",
        "select count(s1) from root.sg.d1 where time > now() - 1d group by ([2024-01-31 - 1w + 12h, now()), 1mo)",
    ),
    (
        "datetime",
        "select s1 from root.sg.d1 where time >= 2017-11-01 00:00:00 and time < '2017/11/02T00:00:00.000+08:00'",
    ),
    (
        "duration",
        "select count(s1) from root.sg.d1 group by ([0, 100), 1h30m, 100)",
    ),
    ("template_word", "drop schema template t1"),
    (
        "template_measurements",
        "alter device template t1 add (s3 INT64 encoding=RLE compression=SNAPPY, s4 TEXT)",
    ),
    (
        "create_template",
        "create device template t1 aligned (s1 INT32, s2 FLOAT encoding=GORILLA)",
    ),
    (
        "activate_template",
        "create timeseries of schema template on root.sg1.d1",
    ),
    ("set_template", "set device template t1 to root.sg1"),
    ("unset_template", "unset schema template t1 from root.sg1"),
    ("drop_template", "drop device template t1"),
    ("alter_template", "alter schema template t1 add (s3 DOUBLE)"),
    (
        "deactivate_template",
        "delete timeseries of device template t1 from root.sg1.*, root.sg2.d1",
    ),
    ("show_templates", "show schema templates"),
    ("show_nodes_in_template", "show nodes in device template t1"),
    ("show_paths_set_template", "show paths set schema template t1"),
    (
        "show_paths_using_template",
        "show paths root.sg1.** using device template t1",
    ),
];

/// The names defined in the grammar: lines of the form `name = …` starting at column 1.
fn productions() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../grammar/duet.ebnf");
    let grammar = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    grammar
        .lines()
        .filter_map(|line| {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let rest = line[name.len()..].trim_start();
            (!name.is_empty() && rest.starts_with('=')).then_some(name)
        })
        .collect()
}

#[test]
fn grammar_has_the_expected_shape() {
    let productions = productions();
    assert!(
        productions.len() >= 20,
        "too few productions found: {productions:?}"
    );
    assert!(productions.contains("create_pipe") && productions.contains("attribute_list"));
}

#[test]
fn every_production_has_a_round_trip_case() {
    let tested: BTreeSet<String> = CASES
        .iter()
        .map(|(production, _)| production.to_string())
        .collect();
    let productions = productions();
    let untested: Vec<_> = productions.difference(&tested).collect();
    assert!(
        untested.is_empty(),
        "productions without a round-trip case in CASES: {untested:?}"
    );
    let unknown: Vec<_> = tested.difference(&productions).collect();
    assert!(
        unknown.is_empty(),
        "CASES names productions that are not in the grammar: {unknown:?}"
    );
}

#[test]
fn every_case_round_trips() {
    for (production, sql) in CASES {
        let statements =
            duet_parser::parse(sql).unwrap_or_else(|e| panic!("{production}: {sql:?}: {e}"));
        assert!(
            !statements.is_empty(),
            "{production}: {sql:?} gave no statement"
        );
        for statement in statements {
            let printed = statement.to_string();
            let reparsed = duet_parser::parse(&printed)
                .unwrap_or_else(|e| panic!("{production}: {printed:?}: {e}"));
            assert_eq!(
                reparsed,
                [statement],
                "{production}: round trip of {printed:?}"
            );
        }
    }
}
