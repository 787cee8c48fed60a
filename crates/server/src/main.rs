//! The `duetd` binary: parses flags, loads the configuration, sets up logging, and runs the server
//! until SIGINT or SIGTERM.

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
    /// Log level or tracing filter [default: info].
    #[arg(long)]
    log_level: Option<String>,
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
}

fn load(args: Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
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
    if let Some(v) = args.initial_root_password {
        config.initial_root_password = Some(duet_server::config::Secret(v));
    }
    config.validate()?;
    Ok(config)
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
    let config = match load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("duetd: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
                error!("{e}");
                eprintln!("duetd: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
