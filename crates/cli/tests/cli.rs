//! End-to-end tests of the `duet` binary against a real `duetd`: the IoTDB-style flags, the three
//! script modes (-e, -f, stdin), table and CSV output, error reporting and exit statuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use duet_testkit::Duetd;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("duet was killed by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `duet` with `args` (no port added), standard input `stdin`.
fn duet_raw(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(duet_testkit::binary("duet"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning duet (built by `cargo test -p duet-cli`)");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    finish(child.wait_with_output().unwrap())
}

/// Runs `duet -p <server port> args...` with empty standard input.
fn duet(server: &Duetd, args: &[&str]) -> Run {
    duet_stdin(server, args, "")
}

fn duet_stdin(server: &Duetd, args: &[&str], stdin: &str) -> Run {
    let port = server.port().to_string();
    let mut all = vec!["-p", port.as_str()];
    all.extend_from_slice(args);
    duet_raw(&all, stdin)
}

fn server() -> Duetd {
    Duetd::start().expect("starting duetd")
}

fn users(server: &Duetd) -> String {
    let run = duet(server, &["-e", "list user"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.stdout
}

/// Asserts that `stdout` is one bordered table followed by its row count.
fn assert_table(stdout: &str, rows: usize) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), rows + 5, "{stdout}");
    let border = lines[0];
    assert!(
        border.starts_with("+-") && border.ends_with("-+"),
        "{stdout}"
    );
    assert_eq!(lines[2], border, "{stdout}");
    assert_eq!(lines[rows + 3], border, "{stdout}");
    for line in &lines[1..rows + 3] {
        if *line != border {
            assert!(line.starts_with('|') && line.ends_with('|'), "{stdout}");
            assert_eq!(line.chars().count(), border.chars().count(), "{stdout}");
        }
    }
    assert_eq!(
        lines[rows + 4],
        format!("Total line number = {rows}"),
        "{stdout}"
    );
}

#[test]
fn show_version_prints_a_table() {
    let server = server();
    let run = duet(&server, &["-e", "show version"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_table(&run.stdout, 1);
    assert!(!run.stdout.contains("It costs"), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
}

#[test]
fn compact_protocol_and_explicit_credentials() {
    let server = server();
    let run = duet(
        &server,
        &[
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-pw",
            "root",
            "-c",
            "-e",
            "show version;",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_table(&run.stdout, 1);
}

#[test]
fn list_user_shows_root() {
    let server = server();
    let out = users(&server);
    assert!(
        out.lines()
            .any(|l| l.split('|').any(|cell| cell.trim() == "root")),
        "{out}"
    );
}

#[test]
fn create_user_prints_the_success_message() {
    let server = server();
    let run = duet(&server, &["-e", "create user alice 'secret1'"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "Msg: The statement is executed successfully.\n");
    assert!(users(&server).contains("alice"));
    // The new user can log in.
    let run = duet(
        &server,
        &["-u", "alice", "-pw", "secret1", "-e", "show version"],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn several_statements_in_one_e() {
    let server = server();
    let run = duet(&server, &["-e", "show version; list user"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.matches("Total line number = ").count(),
        2,
        "{run:?}"
    );
}

#[test]
fn syntax_error_exits_1_with_the_status_on_stderr() {
    let server = server();
    let run = duet(&server, &["-e", "create pipe"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("Msg: 700: "), "{run:?}");
    assert!(run.stderr.contains("line 1:"), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
}

#[test]
fn e_with_continue_on_error_runs_the_rest_but_still_fails() {
    let server = server();
    let run = duet(
        &server,
        &["--continue-on-error", "-e", "create pipe; show version"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("Msg: 700: "), "{run:?}");
    assert_table(&run.stdout, 1);
}

fn script_with_failure_in_the_middle() -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".sql").tempfile().unwrap();
    write!(
        file,
        "-- a script\nshow version;\n\ncreate pipe;\ncreate user bob\n  'secret12';\n"
    )
    .unwrap();
    file
}

#[test]
fn script_stops_at_the_first_failure() {
    let server = server();
    let file = script_with_failure_in_the_middle();
    let path = file.path().to_str().unwrap();
    let run = duet(&server, &["-f", path]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_table(&run.stdout, 1);
    assert!(
        run.stderr.starts_with(&format!("{path}:4: Msg: 700: ")),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(!users(&server).contains("bob"));
}

#[test]
fn script_with_continue_on_error_runs_the_third_statement() {
    let server = server();
    let file = script_with_failure_in_the_middle();
    let path = file.path().to_str().unwrap();
    let run = duet(&server, &["--continue-on-error", "-f", path]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!("{path}:4: Msg: 700: ")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .ends_with("Msg: The statement is executed successfully.\n"),
        "{run:?}"
    );
    assert!(users(&server).contains("bob"));
}

#[test]
fn missing_script_file_fails_without_connecting() {
    let run = duet_raw(&["-p", "1", "-f", "/nonexistent/duet-test.sql"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("Cannot read /nonexistent/duet-test.sql"),
        "{run:?}"
    );
}

#[test]
fn statements_on_stdin() {
    let server = server();
    let run = duet_stdin(&server, &[], "show version;\nlist user;\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.matches("Total line number = ").count(),
        2,
        "{run:?}"
    );
    assert!(!run.stdout.contains("IoTDB>"), "{run:?}");

    let run = duet_stdin(&server, &[], "show version;\ncreate pipe;\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("<stdin>:2: Msg: 700: "), "{run:?}");
}

#[test]
fn wrong_password_is_refused_with_801() {
    let server = server();
    let run = duet(&server, &["-pw", "nope", "-e", "show version"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("801"), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
}

#[test]
fn csv_output() {
    let server = server();
    let run = duet(&server, &["--format", "csv", "-e", "show version"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        !run.stdout.contains("+-") && !run.stdout.contains('|'),
        "{run:?}"
    );
    assert!(!run.stdout.contains("Total line number"), "{run:?}");

    // Non-queries print nothing in CSV.
    let run = duet(
        &server,
        &["--format", "csv", "-e", "create user carol 'secret12'"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
}

#[test]
fn wrong_port_cannot_connect() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = duet_raw(&["-p", &port.to_string(), "-e", "show version"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("Cannot connect to 127.0.0.1:{port}: ")),
        "{run:?}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let run = duet_raw(&["-e", "show version", "-f", "x.sql"], "");
    assert_eq!(run.code, 2, "{run:?}");
    let run = duet_raw(&["--no-such-flag"], "");
    assert_eq!(run.code, 2, "{run:?}");
    let run = duet_raw(&["--help"], "");
    assert_eq!(run.code, 0, "{run:?}");
    for flag in [
        "-h <HOST>",
        "-p <PORT>",
        "-u <USER>",
        "--pw",
        "-maxPRC",
        "--continue-on-error",
        "--format",
    ] {
        assert!(
            run.stdout.contains(flag),
            "{flag} missing from\n{}",
            run.stdout
        );
    }
    let run = duet_raw(&["--version"], "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("duet "), "{run:?}");
}

#[test]
fn e_help_prints_the_shell_help_and_quit_ends_a_script() {
    let server = server();
    let run = duet(&server, &["-e", "help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("quit | exit"), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    let run = duet(&server, &["-e", "list user; quit; drop user nobody"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_table(&run.stdout, 1);
}

#[test]
fn empty_results_print_the_same_whatever_makes_them_empty_and_csv_keeps_its_header() {
    let server = server();
    let run = duet(
        &server,
        &["-e", "insert into root.sg.d1(time, s1) values (1, 1.5)"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // No series matches, or series match but no row does: both an empty table ending "Empty set.".
    for sql in [
        "select * from root.nope.**",
        "select s1 from root.sg.d1 where time > 100",
    ] {
        let run = duet(&server, &["-e", sql]);
        assert_eq!(run.code, 0, "{sql}: {run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(
            lines.len() == 5 && lines[1].starts_with("|Time|"),
            "{sql}: {run:?}"
        );
        assert_eq!(lines[4], "Empty set.", "{sql}: {run:?}");
        let run = duet(&server, &["--format", "csv", "-e", sql]);
        assert_eq!(run.code, 0, "{sql}: {run:?}");
        assert!(run.stdout.starts_with("Time"), "{sql}: {run:?}");
        assert_eq!(run.stdout.lines().count(), 1, "{sql}: {run:?}");
    }
}
