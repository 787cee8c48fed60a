//! The interactive shell: IoTDB's `IoTDB> ` prompt, local `quit`/`exit`/`help`, Ctrl-C to discard the
//! current input, and history in `~/.duet_history`.
//!
//! A line is run when it ends with `;` or, as in IoTDB's CLI (which runs every line), when it is a
//! whole statement by itself; a line that stops mid-statement (the parser finds the end of input too
//! early, or a quote or comment is open) continues on the next lines until a `;`, so statements pasted
//! over several lines (the seed's `CREATE PIPE`) arrive whole. An empty line while a statement is
//! unfinished says how to finish it; Ctrl-D then says that it is discarded (IoTDB's CLI exits on Ctrl-D,
//! with status 0, as this one does). A statement whose connection turns out to be gone (the server
//! restarted) reconnects, says so, and runs again once, as IoTDB's JDBC connection does.
//!
//! Turning lines into statements is a pure [`Accumulator`], so it is tested without a terminal.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use duet_parser::LexicalState;
use duet_proto::client::{Client, ClientError};
use duet_proto::ProtoError;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use tokio::runtime::Runtime;

use crate::args::Format;
use crate::script::{self, Failure, Output};

pub const PROMPT: &str = "IoTDB> ";
pub const CONTINUATION_PROMPT: &str = "    -> ";

/// What a complete piece of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A statement for the server, without its `;`.
    Statement(String),
    /// `quit` or `exit`.
    Quit,
    /// `help`: the shell's own help.
    Help,
}

/// Collects lines until they end with a `;` outside quotes and comments, then yields their statements.
#[derive(Debug, Default)]
pub struct Accumulator {
    buffer: String,
}

/// What the end of a text looks like to the statement splitter.
struct Scan {
    /// Outside any quote or block comment, the last code character is `;`.
    complete: bool,
    /// Something other than whitespace and comments is there.
    has_code: bool,
    /// A block comment is still open.
    in_block_comment: bool,
    /// A quote or a block comment is still open.
    open: bool,
}

fn scan(text: &str) -> Scan {
    let mut last_code = None;
    let end = duet_parser::walk_code(text, |_, c| last_code = Some(c));
    let open = matches!(end, LexicalState::Quoted(_) | LexicalState::BlockComment);
    Scan {
        complete: !open && last_code == Some(';'),
        has_code: last_code.is_some(),
        in_block_comment: end == LexicalState::BlockComment,
        open,
    }
}

/// Whether `text` (no `;` at its end) is a statement of its own, to run as IoTDB's CLI runs a line:
/// it parses, or fails before its end (a mistake the server's answer will name). Input that the
/// parser finds ending too early is the start of a longer statement.
fn is_whole_statement(text: &str) -> bool {
    match duet_parser::parse(text) {
        Ok(statements) => !statements.is_empty(),
        Err(e) => !e.message.contains("found end of input"),
    }
}

/// The local command a statement text names, if any (case-insensitive, `;` optional).
pub fn local_command(text: &str) -> Option<Input> {
    let word = text.trim().trim_end_matches(';').trim();
    if word.eq_ignore_ascii_case("quit") || word.eq_ignore_ascii_case("exit") {
        Some(Input::Quit)
    } else if word.eq_ignore_ascii_case("help") {
        Some(Input::Help)
    } else {
        None
    }
}

impl Accumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a statement has been started on earlier lines (the continuation prompt is due).
    pub fn is_pending(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The input collected so far (for history).
    pub fn pending_text(&self) -> &str {
        &self.buffer
    }

    /// Forgets the current input (Ctrl-C).
    pub fn reset(&mut self) {
        self.buffer.clear();
    }

    /// Adds one line. Returns what the input asks for once it is complete, and nothing while it goes on.
    pub fn push_line(&mut self, line: &str) -> Vec<Input> {
        if self.buffer.is_empty() {
            if let Some(command) = local_command(line) {
                return vec![command];
            }
        }
        let first_line = self.buffer.is_empty();
        self.buffer.push_str(line);
        self.buffer.push('\n');
        let scan = scan(&self.buffer);
        if !scan.complete {
            if !scan.has_code && !scan.in_block_comment {
                // Blank lines and finished comments at the prompt are not a statement in the making.
                self.buffer.clear();
                return Vec::new();
            }
            if !(first_line && !scan.open && is_whole_statement(&self.buffer)) {
                return Vec::new();
            }
        }
        let text = std::mem::take(&mut self.buffer);
        duet_parser::split_statements(&text)
            .into_iter()
            .map(|s| local_command(&s.text).unwrap_or(Input::Statement(s.text)))
            .collect()
    }
}

pub const HELP: &str = "\
A line that is a whole statement runs as it is; a statement over several lines ends with ';'.
Local commands:
  help            this text
  quit | exit     leave the shell (also Ctrl-D, which discards an unfinished statement)
  Ctrl-C          discard the statement being typed";

/// Said on an empty line while a statement is unfinished.
const UNFINISHED_HINT: &str =
    "(the statement goes on until a line ends with ';'; Ctrl-C discards it)";

/// Whether a failure means the connection is gone (the server stopped or restarted), not that the
/// server refused the statement.
fn is_connection_lost(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Closed | ClientError::Proto(ProtoError::Io(_))
    )
}

/// The unfinished statement on one line, shortened, for the message that discards it.
fn summary(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".duet_history"))
}

/// Runs one statement; a lost connection is opened again with `reconnect` (said on `err`) and the
/// statement runs once more.
fn run_statement(
    rt: &Runtime,
    client: &mut Client,
    reconnect: &mut dyn FnMut() -> Result<Client, String>,
    sql: &str,
    output: Output,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut result = script::execute(rt, client, sql, output, out);
    if let Err(Failure::Client(e)) = &result {
        if is_connection_lost(e) {
            out.flush()?;
            writeln!(
                err,
                "Lost the connection to the server ({e}); reconnecting..."
            )?;
            match reconnect() {
                Ok(new_client) => {
                    *client = new_client;
                    writeln!(err, "Reconnected; running the statement again.")?;
                    err.flush()?;
                    result = script::execute(rt, client, sql, output, out);
                }
                Err(message) => {
                    writeln!(err, "{message}")?;
                    err.flush()?;
                    return Ok(());
                }
            }
        }
    }
    match result {
        Ok(()) => Ok(()),
        Err(Failure::Output(e)) => Err(e.into()),
        Err(Failure::Client(e)) => {
            out.flush()?;
            writeln!(err, "{}", script::error_msg(&e))?;
            err.flush()?;
            Ok(())
        }
    }
}

/// Runs the shell until `quit`, `exit` or end of input. Failed statements are reported and the shell
/// goes on (its exit status is 0 either way, as IoTDB's); `Err` only for terminal or output failures.
pub fn run(
    rt: &Runtime,
    client: &mut Client,
    reconnect: &mut dyn FnMut() -> Result<Client, String>,
    output: Output,
    banner: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    writeln!(out, "{banner}")?;
    out.flush()?;
    let mut acc = Accumulator::new();
    'shell: loop {
        let prompt = if acc.is_pending() {
            CONTINUATION_PROMPT
        } else {
            PROMPT
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                acc.reset();
                continue;
            }
            Err(ReadlineError::Eof) => {
                if acc.is_pending() {
                    writeln!(
                        err,
                        "Discarded the unfinished statement (no ';'): {}",
                        summary(acc.pending_text())
                    )?;
                }
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if line.trim().is_empty() && acc.is_pending() {
            writeln!(err, "{UNFINISHED_HINT}")?;
            err.flush()?;
        }
        let was_pending = acc.is_pending();
        let mut entry = format!("{}{line}", acc.pending_text());
        let inputs = acc.push_line(&line);
        if !acc.is_pending() && (!inputs.is_empty() || was_pending) {
            entry = entry.trim().replace('\n', " ");
            if !entry.is_empty() {
                let _ = editor.add_history_entry(entry);
            }
        }
        for input in inputs {
            match input {
                Input::Quit => break 'shell,
                Input::Help => writeln!(out, "{HELP}")?,
                Input::Statement(sql) => {
                    let started = Instant::now();
                    run_statement(rt, client, reconnect, &sql, output, out, err)?;
                    if output.format == Format::Table {
                        writeln!(out, "It costs {:.3}s", started.elapsed().as_secs_f64())?;
                    }
                }
            }
            out.flush()?;
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn st(s: &str) -> Input {
        Input::Statement(s.to_string())
    }

    #[test]
    fn single_line_statement() {
        let mut acc = Accumulator::new();
        assert_eq!(acc.push_line("show version;"), vec![st("show version")]);
        assert!(!acc.is_pending());
    }

    #[test]
    fn statement_spanning_lines() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("create user").is_empty());
        assert!(acc.is_pending());
        assert!(acc.push_line("  alice 'pw1'").is_empty());
        assert_eq!(acc.push_line(";"), vec![st("create user\n  alice 'pw1'")]);
        assert!(!acc.is_pending());
    }

    #[test]
    fn several_statements_on_one_line() {
        let mut acc = Accumulator::new();
        assert_eq!(
            acc.push_line("show version; list user;"),
            vec![st("show version"), st("list user")]
        );
    }

    #[test]
    fn a_line_ending_mid_statement_keeps_everything_pending() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("show version; list").is_empty());
        assert_eq!(
            acc.push_line("user;"),
            vec![st("show version"), st("list\nuser")]
        );
    }

    #[test]
    fn semicolons_in_quotes_and_comments_do_not_end_input() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("create user a 'x;").is_empty());
        assert_eq!(acc.push_line("y';"), vec![st("create user a 'x;\ny'")]);
        assert!(acc.push_line("create user b 'x -- y;").is_empty());
        assert_eq!(acc.push_line("';"), vec![st("create user b 'x -- y;\n'")]);
        assert!(acc.push_line("create user c /* ; */").is_empty());
        assert_eq!(
            acc.push_line("'pw123456';"),
            vec![st("create user c /* ; */\n'pw123456'")]
        );
        assert!(acc.push_line("show `a;b").is_empty());
        assert!(acc.is_pending());
    }

    #[test]
    fn trailing_comment_after_semicolon_still_completes() {
        let mut acc = Accumulator::new();
        assert_eq!(
            acc.push_line("show version; -- the version"),
            vec![st("show version")]
        );
        assert!(!acc.is_pending());
    }

    #[test]
    fn quit_and_exit_with_or_without_semicolon() {
        for line in ["quit", "exit", "QUIT;", " Exit ; ", "quit;"] {
            let mut acc = Accumulator::new();
            assert_eq!(acc.push_line(line), vec![Input::Quit], "{line}");
        }
        let mut acc = Accumulator::new();
        assert_eq!(
            acc.push_line("show version; quit;"),
            vec![st("show version"), Input::Quit]
        );
        assert_eq!(acc.push_line("help"), vec![Input::Help]);
    }

    #[test]
    fn quit_inside_a_statement_is_just_text() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("select").is_empty());
        assert!(acc.push_line("quit").is_empty());
        assert_eq!(acc.push_line(";"), vec![st("select\nquit")]);
    }

    #[test]
    fn blank_lines_and_comments_at_the_prompt_are_dropped() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("").is_empty());
        assert!(acc.push_line("   ").is_empty());
        assert!(acc.push_line("-- a comment").is_empty());
        assert!(!acc.is_pending());
        assert!(acc.push_line(";").is_empty());
        assert!(!acc.is_pending());
        assert!(acc.push_line("/* open").is_empty());
        assert!(acc.is_pending());
        assert!(acc.push_line("still */").is_empty());
        assert!(!acc.is_pending());
    }

    #[test]
    fn a_whole_statement_on_one_line_runs_without_semicolon() {
        let mut acc = Accumulator::new();
        assert_eq!(acc.push_line("list user"), vec![st("list user")]);
        assert!(!acc.is_pending());
        assert_eq!(
            acc.push_line("show version -- the version"),
            vec![st("show version -- the version")]
        );
        // A mistake before the end is run too: the server's answer names it.
        assert_eq!(acc.push_line("lsit user"), vec![st("lsit user")]);
        // The first line of a longer statement waits for the rest, which ends with ';'.
        assert!(acc.push_line("create pipe AB").is_empty());
        assert!(acc
            .push_line("with sink ('sink'='do-nothing-sink')")
            .is_empty());
        assert_eq!(
            acc.push_line(";"),
            vec![st("create pipe AB\nwith sink ('sink'='do-nothing-sink')")]
        );
        assert!(acc.push_line("select s1").is_empty());
        assert!(acc.is_pending());
    }

    #[test]
    fn reset_discards_pending_input() {
        let mut acc = Accumulator::new();
        assert!(acc.push_line("show").is_empty());
        acc.reset();
        assert!(!acc.is_pending());
        assert_eq!(acc.push_line("list user;"), vec![st("list user")]);
    }
}
