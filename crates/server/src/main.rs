//! The `duetd` binary: parses flags, loads the configuration, sets up logging, and runs the server
//! until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use duet_server::config::Config;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Duet server: a dual-active time-series database speaking IoTDB's client protocol.
#[derive(Debug, Parser)]
#[command(name = "duetd", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DUET_BUILD_INFO"), ")"))]
struct Args {
    /// TOML configuration file; flags override its values.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to listen on for clients [default: 0.0.0.0].
    #[arg(long)]
    rpc_address: Option<String>,
    /// Client RPC port [default: 6667]; 0 picks a free port (written to <data-dir>/duetd.addr).
    #[arg(long)]
    rpc_port: Option<u16>,
    /// The hostname peers and operators know this instance by [default: 127.0.0.1].
    #[arg(long)]
    internal_address: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace, off) or tracing directives such as
    /// info,duet_runtime=debug [default: info]; anything else refuses the start.
    #[arg(long)]
    log_level: Option<String>,
    /// Log line format: text (key=value fields; colours only on a terminal) or json [default: text].
    #[arg(long)]
    log_format: Option<String>,
    /// Timestamp precision, fixed at first start: ms, us or ns [default: ms].
    #[arg(long)]
    timestamp_precision: Option<String>,
    /// Cluster id, fixed at first start [default: generated].
    #[arg(long)]
    cluster_id: Option<String>,
    /// root's password at first start [default: root]; ignored once the data directory exists.
    /// Prefer the config file's `initial_root_password`: other local users can read command lines.
    #[arg(long)]
    initial_root_password: Option<String>,
    /// Print the data directory these flags and the configuration file give, and exit (for scripts,
    /// which find duetd.pid, duetd.addr and duetd.log there).
    #[arg(long)]
    print_data_dir: bool,
    /// Address of the /metrics and dashboard listener [default: the rpc address].
    #[arg(long)]
    metrics_address: Option<String>,
    /// Port of the /metrics and dashboard listener [default: 9091]; 0 picks a free port (written to
    /// <data-dir>/duetd.metrics.addr).
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Serve /metrics and the dashboard: true or false [default: true].
    #[arg(long)]
    metrics_enabled: Option<bool>,
    /// PEM certificate chain: the client RPC port then speaks TLS only (config `tls_cert`).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (config `tls_key`).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to; clients must then present one (config
    /// `tls_client_ca`).
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
}

/// A configuration with what was set explicitly (a flag or a key of the file), for messages that
/// must tell a default from a choice.
struct Loaded {
    config: Config,
    timestamp_precision_is_default: bool,
}

fn load(args: Args) -> anyhow::Result<Loaded> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let timestamp_precision_is_default = args.timestamp_precision.is_none()
        && match &args.config {
            Some(path) => !Config::file_sets(path, "timestamp_precision")?,
            None => true,
        };
    if let Some(v) = args.rpc_address {
        config.rpc_address = v;
    }
    if let Some(v) = args.rpc_port {
        config.rpc_port = v;
    }
    if let Some(v) = args.internal_address {
        config.internal_address = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.log_level {
        config.log_level = v;
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    if let Some(v) = args.timestamp_precision {
        config.timestamp_precision = v;
    }
    if let Some(v) = args.cluster_id {
        config.cluster_id = Some(v);
    }
    if let Some(v) = args.metrics_address {
        config.metrics_address = Some(v);
    }
    if let Some(v) = args.metrics_port {
        config.metrics_port = v;
    }
    if let Some(v) = args.metrics_enabled {
        config.metrics_enabled = v;
    }
    if let Some(v) = args.tls_cert {
        config.tls_cert = Some(v);
    }
    if let Some(v) = args.tls_key {
        config.tls_key = Some(v);
    }
    if let Some(v) = args.tls_client_ca {
        config.tls_client_ca = Some(v);
    }
    if let Some(v) = args.initial_root_password {
        config.initial_root_password = Some(duet_server::config::Secret(v));
    }
    config.validate()?;
    Ok(Loaded {
        config,
        timestamp_precision_is_default,
    })
}

/// The message for a failed start. A changed immutable setting that the operator never set is the
/// default's doing, and the message says so (with the flag that restores the recorded value).
fn start_error_message(e: &duet_server::StartError, precision_is_default: bool) -> String {
    if let duet_server::StartError::Catalog(duet_catalog::Error::ImmutableSettingChanged {
        setting: "timestamp_precision",
        stored,
        configured,
    }) = e
    {
        if precision_is_default {
            return format!(
                "immutable setting 'timestamp_precision' was '{stored}' at the data directory's first start, \
                 but this start uses the default '{configured}' because neither the configuration file nor \
                 a flag sets it; start with --timestamp-precision {stored} (or timestamp_precision = \"{stored}\" \
                 in the configuration file), or use a new data directory"
            );
        }
    }
    e.to_string()
}

/// Cancels `token` on the first SIGINT or SIGTERM.
async fn wait_for_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!("cannot install the SIGTERM handler: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        () = terminate => info!("SIGTERM received"),
    }
    token.cancel();
}

fn main() -> ExitCode {
    let args = Args::parse();
    let print_data_dir = args.print_data_dir;
    let Loaded {
        config,
        timestamp_precision_is_default,
    } = match load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("duetd: {e}");
            return ExitCode::from(2);
        }
    };
    if print_data_dir {
        let mut stdout = std::io::stdout().lock();
        return match writeln!(stdout, "{}", config.data_dir.display()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if let Err(e) = duet_server::logging::init(&config.log_level, &config.log_format) {
        eprintln!("duetd: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("duetd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let token = CancellationToken::new();
        tokio::spawn(wait_for_signal(token.clone()));
        match duet_server::serve(config, token).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let message = start_error_message(&e, timestamp_precision_is_default);
                error!("{message}");
                eprintln!("duetd: {message}");
                ExitCode::FAILURE
            }
        }
    })
}
