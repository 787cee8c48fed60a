//! The interactive shell on a real terminal (a pseudo-terminal from util-linux's `script`, so that
//! rustyline runs in raw mode as it does for a person): a paste of several lines without bracketed
//! paste, Ctrl-D with an unfinished statement, a line without `;`, and a server restart between two
//! statements.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_testkit::{wait_for, Duetd};

/// `duet` in a pseudo-terminal, its terminal output collected as it comes.
struct Shell {
    child: Child,
    input: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
}

impl Shell {
    fn start(server: &Duetd) -> Shell {
        let home = tempfile::tempdir().unwrap().keep();
        let command = format!(
            "{} -h 127.0.0.1 -p {}",
            duet_testkit::binary("duet").display(),
            server.port()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("TERM", "xterm")
            .env("HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux's `script` runs the shell in a pseudo-terminal");
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let shell = Shell {
            input: child.stdin.take(),
            child,
            output,
        };
        shell.wait_for_output("the banner", |o| o.contains("Successfully login"));
        shell
    }

    /// Types (or pastes: one write) `text`.
    fn send(&mut self, text: &str) {
        let input = self.input.as_mut().unwrap();
        input.write_all(text.as_bytes()).unwrap();
        input.flush().unwrap();
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn wait_for_output(&self, what: &str, condition: impl Fn(&str) -> bool) {
        wait_for(what, Duration::from_secs(30), || {
            condition(&self.output()).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}; the terminal shows:\n{}", self.output()));
    }

    /// Waits for the shell to exit and returns its status.
    fn wait_exit(&mut self) -> i32 {
        drop(self.input.take());
        let status = wait_for("the shell to exit", Duration::from_secs(30), || {
            self.child.try_wait().unwrap()
        })
        .unwrap_or_else(|e| panic!("{e}; the terminal shows:\n{}", self.output()));
        status.code().unwrap()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_paste_of_several_lines_without_bracketed_paste_runs_every_line() {
    let server = Duetd::start().unwrap();
    let mut shell = Shell::start(&server);
    shell.send("create user alice 'secret12';\ncreate user bob 'secret12';\nlist user;\n");
    shell.wait_for_output("the third statement's table", |o| o.contains("|  bob|"));
    let output = shell.output();
    assert_eq!(
        count(&output, "Msg: The statement is executed successfully."),
        2,
        "{output}"
    );
    assert!(output.contains("|alice|"), "{output}");
    shell.send("quit\n");
    assert_eq!(shell.wait_exit(), 0);
}

#[test]
fn a_line_without_semicolon_runs_and_ctrl_d_says_it_discards_an_unfinished_statement() {
    let server = Duetd::start().unwrap();
    let mut shell = Shell::start(&server);
    shell.send("list user\n");
    shell.wait_for_output("list user's table", |o| o.contains("Total line number = 1"));
    // A statement that has not ended: an empty line says how to end it, Ctrl-D says it is dropped.
    shell.send("select *\n\n");
    shell.wait_for_output("the hint", |o| o.contains("Ctrl-C discards it"));
    shell.send("\u{4}");
    assert_eq!(shell.wait_exit(), 0);
    let output = shell.output();
    assert!(
        output.contains("Discarded the unfinished statement (no ';'): select *"),
        "{output}"
    );
}

#[test]
fn after_a_server_restart_the_shell_reconnects_says_so_and_runs_the_statement() {
    let mut server = Duetd::start().unwrap();
    let mut shell = Shell::start(&server);
    shell.send("list user;\n");
    shell.wait_for_output("the first table", |o| {
        count(o, "Total line number = 1") == 1
    });
    server.restart().unwrap();
    shell.send("list user;\n");
    shell.wait_for_output("the second table", |o| {
        count(o, "Total line number = 1") == 2
    });
    let output = shell.output();
    assert!(
        output.contains("Lost the connection to the server"),
        "{output}"
    );
    assert!(
        output.contains("Reconnected; running the statement again."),
        "{output}"
    );
    assert!(!output.contains("Broken pipe"), "{output}");
    shell.send("exit\n");
    assert_eq!(shell.wait_exit(), 0);
}
