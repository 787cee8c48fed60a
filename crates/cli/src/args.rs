//! The command line of `duet`, spelled like IoTDB's `start-cli.sh` (`-h` host, `-pw` password,
//! `-maxPRC`) and parsed by clap after the multi-letter single-dash flags are rewritten to long ones.

use std::ffi::OsString;

use clap::{ArgAction, Parser, ValueEnum};

/// How result sets are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// IoTDB's bordered table, right-aligned, followed by `Total line number = N`.
    Table,
    /// RFC 4180 CSV: a header line, then one line per row; nothing for non-queries.
    Csv,
}

const AFTER_HELP: &str = "\
Modes:
  -e STATEMENTS   run the statements (separated by ';') and exit
  -f FILE         run every statement of a SQL script, in order
  (stdin)         when standard input is not a terminal, it is read as a script
  otherwise       an interactive shell (prompt 'IoTDB> ', statements end with ';',
                  'quit' or 'exit' or Ctrl-D leaves, Ctrl-C discards the current input,
                  history in ~/.duet_history)

Output:
  Times are printed as raw integers in the server's precision (IoTDB's -disableISO8601).
  Tables are streamed in pages of -maxPRC rows (default 1000): each page is a complete
  bordered table, the last is followed by 'Total line number = N'. CSV is streamed row by row.
  Errors are printed as 'Msg: <code>: <message>' on stderr; in script mode prefixed with
  '<file>:<line>:' of the failing statement.

Exit status:
  0 success, 1 a statement failed or the server could not be reached, 2 usage error.";

/// Command-line options of `duet`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "duet",
    version,
    about = "Command-line client for Duet (duetd), compatible with IoTDB's start-cli.sh",
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Server host
    #[arg(short = 'h', value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port
    #[arg(short = 'p', value_name = "PORT", default_value_t = 6667)]
    pub port: u16,

    /// User name
    #[arg(short = 'u', value_name = "USER", default_value = "root")]
    pub user: String,

    /// Password (IoTDB spelling: -pw)
    #[arg(long = "pw", value_name = "PASSWORD", default_value = "root")]
    pub password: String,

    /// Execute the statement(s) and exit
    #[arg(short = 'e', value_name = "STATEMENTS", conflicts_with = "file")]
    pub execute: Option<String>,

    /// Execute the statements of a SQL script and exit
    #[arg(short = 'f', value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,

    /// Use the compact Thrift protocol (IoTDB's rpc compression)
    #[arg(short = 'c')]
    pub compact: bool,

    /// Output format of result sets
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// In -e, -f and stdin mode, run the remaining statements after a failure (exit status is still 1)
    #[arg(long)]
    pub continue_on_error: bool,

    /// Rows per page fetched from the server
    #[arg(long, value_name = "N", default_value_t = 5000, value_parser = clap::value_parser!(i32).range(1..))]
    pub fetch_size: i32,

    /// Rows per printed table page (IoTDB spelling: -maxPRC)
    #[arg(long = "max-prc", value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_print_rows: u32,

    /// Connect over TLS, verifying the server's certificate (against --ca, else the system's CAs)
    #[arg(long = "use-ssl")]
    pub use_ssl: bool,

    /// IoTDB's spelling of --use-ssl: -usessl true
    #[arg(long = "usessl", value_name = "BOOL")]
    pub usessl: Option<bool>,

    /// PEM file of the CA(s) the server's certificate must chain to (IoTDB's -ts trust store, as PEM)
    #[arg(long = "ca", value_name = "PEM", alias = "ts")]
    pub ca: Option<std::path::PathBuf>,

    /// Accepted for IoTDB compatibility (a PEM file has no password; IoTDB spelling: -tpw)
    #[arg(long = "tpw", value_name = "PASSWORD", hide = true)]
    pub trust_store_password: Option<String>,

    /// PEM client certificate, for a server that requires one (mutual TLS); with --key
    #[arg(long = "cert", value_name = "PEM", requires = "key")]
    pub cert: Option<std::path::PathBuf>,

    /// PEM private key of --cert
    #[arg(long = "key", value_name = "PEM", requires = "cert")]
    pub key: Option<std::path::PathBuf>,

    /// Accepted for IoTDB compatibility; times are always printed as integers (IoTDB spelling: -disableISO8601)
    #[arg(long = "disable-iso8601")]
    pub disable_iso8601: bool,

    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Print version
    #[arg(long, action = ArgAction::Version)]
    pub version: Option<bool>,
}

/// IoTDB's multi-letter single-dash flags and the long flags clap knows them by.
const RENAMES: &[(&str, &str)] = &[
    ("-pw", "--pw"),
    ("-maxPRC", "--max-prc"),
    ("-disableISO8601", "--disable-iso8601"),
    ("-usessl", "--usessl"),
    ("-ts", "--ca"),
    ("-tpw", "--tpw"),
];

/// Rewrites IoTDB-style flags (`-pw secret`, `-pw=secret`, `-maxPRC 10`) to clap's long form. Stops at
/// `--`, and never touches the value that follows a flag taking one (so `-e -pw` keeps `-pw` as a statement).
pub fn rewrite(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    /// Flags whose next argument is a value, which must not be rewritten.
    const TAKES_VALUE: &[&str] = &[
        "-h",
        "-p",
        "-u",
        "-e",
        "-f",
        "--pw",
        "--format",
        "--fetch-size",
        "--max-prc",
        "--usessl",
        "--ca",
        "--tpw",
        "--cert",
        "--key",
    ];
    let mut out = Vec::new();
    let mut value_next = false;
    let mut rest_verbatim = false;
    for (i, arg) in argv.into_iter().enumerate() {
        if i == 0 || rest_verbatim || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        let (flag, inline_value) = match text.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (text, None),
        };
        let renamed = RENAMES
            .iter()
            .find(|(from, _)| *from == flag)
            .map(|(_, to)| *to);
        let flag = renamed.unwrap_or(flag);
        value_next = inline_value.is_none() && TAKES_VALUE.contains(&flag);
        match (renamed, inline_value) {
            (Some(long), Some(value)) => out.push(OsString::from(format!("{long}={value}"))),
            (Some(long), None) => out.push(OsString::from(long)),
            (None, _) => out.push(arg),
        }
    }
    out
}

impl Args {
    /// Whether to connect over TLS (`--use-ssl`, IoTDB's `-usessl true`, or a CA or certificate given).
    pub fn tls_requested(&self) -> bool {
        self.use_ssl || self.usessl == Some(true) || self.ca.is_some() || self.cert.is_some()
    }

    /// Parses a full argv (program name first) after rewriting IoTDB-style flags.
    pub fn parse_from_argv(argv: impl IntoIterator<Item = OsString>) -> Result<Args, clap::Error> {
        Args::try_parse_from(rewrite(argv))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("duet")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn rewrites_iotdb_flags() {
        let out = strings(rewrite(argv(&[
            "-h",
            "db",
            "-pw",
            "secret",
            "-maxPRC",
            "10",
            "-disableISO8601",
        ])));
        assert_eq!(
            out,
            [
                "duet",
                "-h",
                "db",
                "--pw",
                "secret",
                "--max-prc",
                "10",
                "--disable-iso8601"
            ]
        );
    }

    #[test]
    fn rewrites_inline_values() {
        let out = strings(rewrite(argv(&["-pw=s=x", "-maxPRC=5"])));
        assert_eq!(out, ["duet", "--pw=s=x", "--max-prc=5"]);
    }

    #[test]
    fn leaves_values_and_program_name_alone() {
        // "-pw" as the value of -e or as the password itself stays as it is.
        let out = strings(rewrite(argv(&["-e", "-pw", "-pw", "-pw", "-u", "-maxPRC"])));
        assert_eq!(out, ["duet", "-e", "-pw", "--pw", "-pw", "-u", "-maxPRC"]);
        let out = strings(rewrite(vec![OsString::from("-pw")]));
        assert_eq!(out, ["-pw"]);
    }

    #[test]
    fn stops_at_double_dash() {
        let out = strings(rewrite(argv(&["--", "-pw"])));
        assert_eq!(out, ["duet", "--", "-pw"]);
    }

    #[test]
    fn defaults_are_iotdb_defaults() {
        let args = Args::parse_from_argv(argv(&[])).unwrap();
        assert_eq!(args.host, "127.0.0.1");
        assert_eq!(args.port, 6667);
        assert_eq!(args.user, "root");
        assert_eq!(args.password, "root");
        assert_eq!(args.format, Format::Table);
        assert_eq!(args.fetch_size, 5000);
        assert_eq!(args.max_print_rows, 1000);
        assert!(!args.compact && !args.continue_on_error);
        assert!(args.execute.is_none() && args.file.is_none());
    }

    #[test]
    fn parses_everything() {
        let args = Args::parse_from_argv(argv(&[
            "-h",
            "10.0.0.1",
            "-p",
            "6668",
            "-u",
            "alice",
            "-pw",
            "pw1",
            "-e",
            "show version",
            "-c",
            "--format",
            "csv",
            "--continue-on-error",
            "--fetch-size",
            "7",
            "-maxPRC",
            "3",
        ]))
        .unwrap();
        assert_eq!(args.host, "10.0.0.1");
        assert_eq!(args.port, 6668);
        assert_eq!(args.user, "alice");
        assert_eq!(args.password, "pw1");
        assert_eq!(args.execute.as_deref(), Some("show version"));
        assert!(args.compact && args.continue_on_error);
        assert_eq!(args.format, Format::Csv);
        assert_eq!(args.fetch_size, 7);
        assert_eq!(args.max_print_rows, 3);
    }

    #[test]
    fn usage_errors() {
        use clap::error::ErrorKind;
        let err = |a: &[&str]| Args::parse_from_argv(argv(a)).unwrap_err();
        assert_eq!(
            err(&["-e", "x", "-f", "y"]).kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(err(&["-p", "notaport"]).kind(), ErrorKind::ValueValidation);
        assert_eq!(err(&["--format", "xml"]).kind(), ErrorKind::InvalidValue);
        assert_eq!(
            err(&["--fetch-size", "0"]).kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(err(&["--bogus"]).kind(), ErrorKind::UnknownArgument);
        assert_eq!(err(&["--help"]).kind(), ErrorKind::DisplayHelp);
        assert_eq!(err(&["--version"]).kind(), ErrorKind::DisplayVersion);
        assert_eq!(err(&["--help"]).exit_code(), 0);
        assert_eq!(err(&["--bogus"]).exit_code(), 2);
    }
}
