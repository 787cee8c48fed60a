//! `duet`, Duet's command-line client with the flags and output of IoTDB's `start-cli.sh`: parses the
//! command line, connects, and dispatches to script mode (-e, -f, piped stdin) or the interactive shell.
//!
//! - `args`: the command line; `repl`: the interactive shell; `script`: running statements and
//!   scripts; `render`: tables and CSV.

mod args;
mod render;
mod repl;
mod script;

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use duet_proto::client::{Client, ClientError, ClientOptions};
use duet_proto::codec::Protocol;
use tokio::runtime::Runtime;

use crate::args::Args;
use crate::script::{Output, Script};

/// Exit status when a statement failed or the server could not be reached.
const FAILURE: u8 = 1;

/// What to do once connected.
enum Mode {
    Script(Script),
    Interactive,
}

fn main() -> ExitCode {
    let args = match Args::parse_from_argv(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to stdout with status 0, usage errors to stderr with status 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let mut stderr = io::stderr().lock();
    match run(&args, &mut stderr) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed stdout (`duet ... | head`) is the reader's choice, not worth a message.
            let broken_pipe = e
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
            if !broken_pipe {
                let _ = writeln!(stderr, "duet: {e:#}");
            }
            ExitCode::from(FAILURE)
        }
    }
}

/// Reads the script (before connecting, so a missing file costs no login).
fn mode(args: &Args) -> Result<Mode, String> {
    if let Some(text) = &args.execute {
        return Ok(Mode::Script(Script {
            source: None,
            text: text.clone(),
        }));
    }
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Cannot read {}: {e}", path.display()))?;
        return Ok(Mode::Script(Script {
            source: Some(path.display().to_string()),
            text,
        }));
    }
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| format!("Cannot read standard input: {e}"))?;
        return Ok(Mode::Script(Script {
            source: Some("<stdin>".to_string()),
            text,
        }));
    }
    Ok(Mode::Interactive)
}

fn connect(rt: &Runtime, args: &Args) -> Result<Client, String> {
    let tls = if args.tls_requested() {
        let config = duet_proto::tls::client_config(&duet_proto::tls::ClientTlsFiles {
            ca: args.ca.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
            ..Default::default()
        })
        .map_err(|e| format!("Cannot connect to {}:{}: {e}", args.host, args.port))?;
        Some(duet_proto::tls::ClientTls {
            config,
            server_name: None,
        })
    } else {
        None
    };
    let options = ClientOptions {
        host: args.host.clone(),
        port: args.port,
        user: args.user.clone(),
        password: args.password.clone(),
        protocol: if args.compact {
            Protocol::Compact
        } else {
            Protocol::Binary
        },
        fetch_size: args.fetch_size,
        zone_id: "UTC".to_string(),
        connect_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(900),
        tls,
    };
    rt.block_on(Client::connect(&options)).map_err(|e| match e {
        // The server answered and refused (e.g. 801 for a wrong password): IoTDB's message line.
        ClientError::Status(_) => script::error_msg(&e),
        ClientError::Connect { source, .. } => {
            format!("Cannot connect to {}:{}: {source}", args.host, args.port)
        }
        other => format!("Cannot connect to {}:{}: {other}", args.host, args.port),
    })
}

fn banner(rt: &Runtime, client: &mut Client, args: &Args) -> String {
    let server = match rt.block_on(client.properties()) {
        Ok(p) => {
            let build = p
                .build_info
                .map(|b| format!(" (build {b})"))
                .unwrap_or_default();
            format!(
                "Server version {}{build}, timestamp precision {}",
                p.version, p.timestamp_precision
            )
        }
        Err(e) => format!("Server version unknown ({e})"),
    };
    format!(
        "Duet CLI {} (IoTDB-compatible; type 'help' for help)\n{server}\nSuccessfully login at {}:{}",
        env!("CARGO_PKG_VERSION"),
        args.host,
        args.port
    )
}

fn run(args: &Args, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let mode = match mode(args) {
        Ok(mode) => mode,
        Err(message) => {
            writeln!(stderr, "{message}")?;
            return Ok(FAILURE);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = match connect(&rt, args) {
        Ok(client) => client,
        Err(message) => {
            writeln!(stderr, "{message}")?;
            return Ok(FAILURE);
        }
    };
    let output = Output {
        format: args.format,
        page_rows: usize::try_from(args.max_print_rows).unwrap_or(usize::MAX),
    };
    let mut stdout = BufWriter::new(io::stdout().lock());
    let code = match mode {
        Mode::Script(script) => {
            let ok = script::run_script(
                &rt,
                &mut client,
                &script,
                output,
                args.continue_on_error,
                &mut stdout,
                stderr,
            )?;
            if ok {
                0
            } else {
                FAILURE
            }
        }
        Mode::Interactive => {
            let banner = banner(&rt, &mut client, args);
            let mut reconnect = || connect(&rt, args);
            repl::run(
                &rt,
                &mut client,
                &mut reconnect,
                output,
                &banner,
                &mut stdout,
                stderr,
            )?;
            0
        }
    };
    stdout.flush()?;
    // The session is over either way; a failure to say goodbye changes nothing for the user.
    let _ = rt.block_on(client.close());
    Ok(code)
}
