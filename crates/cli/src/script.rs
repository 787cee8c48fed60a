//! Runs statements against the server and prints their outcome: one statement at a time for the shell,
//! and whole scripts (-e, -f, stdin) with failures reported against the script's line numbers.

use std::io::{self, Write};

use duet_proto::client::{Client, ClientError, Outcome};
use tokio::runtime::Runtime;

use crate::args::Format;
use crate::render::{block_rows, RowPrinter};

/// How outcomes are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    /// Rows per printed table page.
    pub page_rows: usize,
}

/// Why a statement did not complete.
#[derive(Debug)]
pub enum Failure {
    /// The server rejected it or the connection failed: reported, and the script may go on.
    Client(ClientError),
    /// Our own output could not be written (e.g. a closed pipe): nothing more can be shown.
    Output(io::Error),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

/// The success line IoTDB's CLI prints for a statement without a result set.
pub const SUCCESS_MSG: &str = "Msg: The statement is executed successfully.";

/// The error line for a failed statement, IoTDB style: `Msg: <code>: <message>`.
pub fn error_msg(e: &ClientError) -> String {
    format!("Msg: {e}")
}

/// Executes one statement and prints its result set (streamed) or success line.
pub fn execute(
    rt: &Runtime,
    client: &mut Client,
    sql: &str,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    match rt.block_on(client.execute(sql))? {
        Outcome::Done(_) => {
            if output.format == Format::Table {
                writeln!(out, "{SUCCESS_MSG}")?;
            }
        }
        Outcome::Rows(mut rs) => {
            let with_time = !rs.ignore_time_stamp;
            let mut printer = RowPrinter::new(out, output.format, rs.header(), output.page_rows)?;
            let streamed = (|| {
                while let Some(block) = rt.block_on(client.next_block(&mut rs))? {
                    for row in block_rows(&block, with_time) {
                        printer.push(row)?;
                    }
                }
                printer.finish()?;
                Ok::<(), Failure>(())
            })();
            // Release the query even when printing failed half-way; the first error wins.
            let closed = rt.block_on(client.close_result(&rs));
            streamed?;
            closed?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A script to run: its statements' text and where failures are reported against.
#[derive(Debug, Clone)]
pub struct Script {
    /// Shown before the line number of a failure (`file.sql`, `<stdin>`); `None` for -e, which
    /// reports the bare message.
    pub source: Option<String>,
    pub text: String,
}

/// Runs every statement of `script` in order. A failure is reported on `err` and stops the script unless
/// `continue_on_error`. The shell's local commands work here too, as in IoTDB's CLI: `help` prints the
/// shell's help, `quit`/`exit` ends the script. Returns whether every statement that ran succeeded;
/// `Err` only when `out` or `err` cannot be written.
pub fn run_script(
    rt: &Runtime,
    client: &mut Client,
    script: &Script,
    output: Output,
    continue_on_error: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<bool> {
    let mut all_ok = true;
    for statement in duet_parser::split_statements(&script.text) {
        let (skipped, sql) = skip_leading_comments(&statement.text);
        let line = statement.line + skipped;
        match crate::repl::local_command(sql) {
            Some(crate::repl::Input::Help) => {
                writeln!(out, "{}", crate::repl::HELP)?;
                continue;
            }
            Some(crate::repl::Input::Quit) => break,
            _ => {}
        }
        match execute(rt, client, sql, output, out) {
            Ok(()) => {}
            Err(Failure::Output(e)) => return Err(e),
            Err(Failure::Client(e)) => {
                all_ok = false;
                out.flush()?;
                match &script.source {
                    Some(source) => writeln!(err, "{source}:{line}: {}", error_msg(&e))?,
                    None => writeln!(err, "{}", error_msg(&e))?,
                }
                err.flush()?;
                if !continue_on_error {
                    break;
                }
            }
        }
    }
    out.flush()?;
    Ok(all_ok)
}

/// Drops the comments and blank lines in front of a statement, so that its reported line is where its
/// code starts. Returns how many line breaks were dropped, and the rest.
pub fn skip_leading_comments(text: &str) -> (u64, &str) {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let next = if let Some(comment) = trimmed.strip_prefix("--") {
            match comment.find('\n') {
                Some(end) => &comment[end + 1..],
                None => "",
            }
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            match comment.find("*/") {
                Some(end) => &comment[end + 2..],
                None => break,
            }
        } else {
            rest = trimmed;
            break;
        };
        rest = next;
    }
    if rest.is_empty() {
        // Only comments: leave the statement as it is for the server to judge.
        return (0, text);
    }
    let dropped = &text[..text.len() - rest.len()];
    (dropped.matches('\n').count() as u64, rest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn leading_comments_are_skipped_with_their_lines() {
        assert_eq!(skip_leading_comments("show version"), (0, "show version"));
        assert_eq!(
            skip_leading_comments("-- a\n\nshow version"),
            (2, "show version")
        );
        assert_eq!(
            skip_leading_comments("/* a\n b */ -- c\n  show -- d\nversion"),
            (2, "show -- d\nversion")
        );
        assert_eq!(skip_leading_comments("-- only"), (0, "-- only"));
        assert_eq!(skip_leading_comments("/* open"), (0, "/* open"));
    }
}
