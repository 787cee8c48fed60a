//! How `duetd` logs: a level filter checked before start-up (a typo is an error, not a server that
//! logs nothing), one line per event with `key=value` fields, plain text without colour codes unless
//! standard error is a terminal, or JSON lines (`log_format = "json"`) for log collectors.

use std::io::{IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The levels a filter may name, least verbose first.
pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The line formats of `log_format`.
pub const FORMATS: [&str; 2] = ["text", "json"];

/// Parses `log_level`: a level (`info`), or tracing directives (`info,duet_runtime=debug`). A bare
/// word that is not a level is refused: tracing would read it as a target name and log nothing else.
pub fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    let levels = LEVELS.join(", ");
    if spec.trim().is_empty() {
        return Err(format!("log_level must not be empty (one of {levels})"));
    }
    for directive in spec.split(',').map(str::trim) {
        // `target[span{field=value}]=level`: the level is after the last `=`.
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "log_level '{spec}': '{directive}' is not a level ({levels}) nor a directive such as duet_server=debug"
            ));
        }
    }
    EnvFilter::builder()
        .parse(spec)
        .map_err(|e| format!("log_level '{spec}' is not a valid filter: {e}"))
}

/// Installs the process's log subscriber writing to standard error. `format` is one of [`FORMATS`]
/// and `level` passed [`parse_filter`] (both are checked by `Config::validate`).
pub fn init(level: &str, format: &str) -> Result<(), String> {
    let filter = parse_filter(level)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = if format == "json" {
        builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init()
    } else {
        // Colours only for a person at a terminal: a file or a pipe gets plain text (NO_COLOR as usual).
        let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        builder
            .with_writer(OneLinePerEvent)
            .with_ansi(ansi)
            .try_init()
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Standard error for text lines, one line per event whatever a message holds (an error's text may
/// span lines): line breaks inside an event are written as `\n`.
struct OneLinePerEvent;

impl<'a> MakeWriter<'a> for OneLinePerEvent {
    type Writer = OneLineWriter<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(std::io::stderr())
    }
}

/// Writes each buffer it is given (the formatter hands over one whole event, ending in a line
/// break) with its inner line breaks escaped.
struct OneLineWriter<W: Write>(W);

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.contains(&b'\n') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 16);
        for &byte in body {
            match byte {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => {}
                other => line.push(other),
            }
        }
        line.extend_from_slice(end);
        self.0.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_event_spanning_lines_is_written_on_one() {
        let mut writer = OneLineWriter(Vec::new());
        writer
            .write_all(b"ERROR duet: cannot start\r\ncaused by: x key=1\n")
            .unwrap();
        writer.write_all(b"INFO duet: plain key=2\n").unwrap();
        assert_eq!(
            String::from_utf8(writer.0).unwrap(),
            "ERROR duet: cannot start\\ncaused by: x key=1\nINFO duet: plain key=2\n"
        );
    }

    #[test]
    fn levels_and_directives_parse_and_typos_do_not() {
        for ok in [
            "info",
            "WARN",
            "off",
            "info,duet_runtime=debug",
            "duet_server=trace",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        for bad in [
            "infoo",
            "",
            "info,debgu",
            "duet_server=verbose",
            "duet_server",
        ] {
            let e = parse_filter(bad).unwrap_err();
            assert!(e.contains("log_level"), "{bad}: {e}");
        }
    }
}
