//! What an operator sees when `duetd` starts and stops: a log filter with a typo refuses the start,
//! the log is plain text (or JSON lines) when it goes to a file, duetd owns `duetd.pid`, and an
//! immutable setting left at its default says so when it conflicts with the data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use duet_testkit::{binary, wait_for, Duetd, DuetdOptions};

/// Runs duetd to its exit (a start that is refused) on `data_dir` with `args`.
fn refused_start(data_dir: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(binary("duetd"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--rpc-address", "127.0.0.1", "--rpc-port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("duetd to exit", Duration::from_secs(60), || {
        child.try_wait().unwrap()
    })
    .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_log_level_that_does_not_parse_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = refused_start(dir.path(), &["--log-level", "infoo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("log_level 'infoo'"), "{stderr}");
    assert!(!dir.path().join("duetd.addr").exists());
    let out = refused_start(dir.path(), &["--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
}

#[test]
fn a_log_file_gets_plain_lines_with_key_value_fields() {
    let server = Duetd::start().unwrap();
    let log = server.log();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
    let started = log
        .lines()
        .find(|l| l.contains("duetd accepting sessions"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(started.contains(" INFO "), "{started}");
    assert!(
        started.contains(&format!("data_dir={}", server.data_dir().display())),
        "{started}"
    );
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let server = Duetd::start_with(DuetdOptions {
        args: vec!["--log-format".into(), "json".into()],
        ..DuetdOptions::default()
    })
    .unwrap();
    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let started = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("duetd accepting sessions"))
        })
        .unwrap_or_else(|| panic!("no start event:\n{log}"));
    assert_eq!(started["level"], "INFO");
    assert!(started["cluster_id"].as_str().is_some(), "{started}");
}

#[test]
fn duetd_writes_its_pid_file_removes_it_at_a_clean_stop_and_replaces_a_stale_one() {
    let mut server = Duetd::start().unwrap();
    let pid_file = server.data_dir().join("duetd.pid");
    let pid = || {
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(pid(), server.pid().unwrap().to_string());
    server.stop().unwrap();
    assert!(!pid_file.exists(), "the pid file outlived a clean stop");

    server.restart().unwrap();
    server.kill().unwrap();
    let stale = pid();
    server.restart().unwrap();
    assert_eq!(pid(), server.pid().unwrap().to_string());
    assert_ne!(pid(), stale);
    assert!(
        server.log().contains("replacing a stale duetd.pid"),
        "{}",
        server.log()
    );
}

#[test]
fn an_immutable_setting_left_at_its_default_says_the_value_is_the_default() {
    let mut server = Duetd::start_with(DuetdOptions {
        args: vec!["--timestamp-precision".into(), "us".into()],
        ..DuetdOptions::default()
    })
    .unwrap();
    server.stop().unwrap();
    let dir = server.data_dir().to_path_buf();

    let out = refused_start(&dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("uses the default 'ms'"), "{stderr}");
    assert!(stderr.contains("--timestamp-precision us"), "{stderr}");

    // A value the operator chose is named as configured, not as the default.
    let out = refused_start(&dir, &["--timestamp-precision", "ns"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("now configured as 'ns'"), "{stderr}");
    assert!(!stderr.contains("default"), "{stderr}");

    // The same from a configuration file that sets other keys only.
    let config = dir.join("other.toml");
    std::fs::write(&config, "log_level = \"warn\"\n").unwrap();
    let out = refused_start(&dir, &["--config", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("uses the default 'ms'"));
}
