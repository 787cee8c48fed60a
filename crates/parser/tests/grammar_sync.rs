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
    ("create_user", "create user u 'pw'"),
    ("alter_user_password", "alter user u set password 'pw'"),
    ("drop_user", "drop user u"),
    ("list_user", "list user"),
    ("attribute_list", "create pipe p ('a'='b', 'c'='d',)"),
    ("attribute", "create pipe p ('a'='b')"),
    ("name", "start pipe `a name`"),
    ("identifier", "start pipe p_1"),
    ("quoted_identifier", "start pipe `a``b`"),
    ("string", "create pipe p ('a'=\"b\")"),
    ("single_quoted", "create pipe p ('it''s'='b')"),
    ("double_quoted", "create pipe p (\"say \"\"hi\"\"\"='b')"),
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
