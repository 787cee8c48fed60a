//! The monitoring listener: Prometheus `/metrics`, the dashboard page at `/` (its assets embedded
//! in the binary) and the JSON it polls (`/api/status`), served by hyper's HTTP/1 server on a port
//! of its own, apart from the client RPC port. It stops with the server: it takes no new
//! connections once shutdown begins, and its open ones finish their request and close.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::instance::{Instance, BUILD_INFO, VERSION};

/// File in the data directory holding the metrics listener's `address:port` while it serves.
pub const METRICS_ADDR_FILE: &str = "duetd.metrics.addr";

/// A client must send its request's headers within this time (slow-loris guard).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open requests before it lets them go.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const INDEX_HTML: &str = include_str!("../assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// What every request handler shares.
struct State {
    instance: Arc<Instance>,
    registry: Registry,
}

/// Serves until `shutdown` is cancelled, then lets open requests finish (up to a grace period).
pub async fn run(instance: Arc<Instance>, listener: TcpListener, shutdown: CancellationToken) {
    let state = Arc::new(State {
        registry: crate::metrics::registry(instance.clone()),
        instance,
    });
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Too many open files and the like: wait a little rather than spin.
                warn!("metrics listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, req).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(socket), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, "metrics connection ended: {e}");
            }
        });
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!("metrics listener: requests still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    info!("metrics listener stopped");
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn respond(state: &Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD are served here\n",
        );
    }
    match req.uri().path() {
        "/" | "/index.html" => response(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
        "/dashboard.js" => response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            DASHBOARD_JS,
        ),
        // Reading the pipes' backlogs touches the log on disk: off the async workers.
        "/metrics" => {
            let state = state.clone();
            match tokio::task::spawn_blocking(move || crate::metrics::render(&state.registry)).await
            {
                Ok(Ok(text)) => response(
                    StatusCode::OK,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    text,
                ),
                _ => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "the metrics could not be encoded\n",
                ),
            }
        }
        "/api/status" => {
            let state = state.clone();
            let body = tokio::task::spawn_blocking(move || status_json(&state.instance))
                .await
                .unwrap_or_else(|_| serde_json::json!({ "error": "status unavailable" }));
            let mut r = response(StatusCode::OK, "application/json", body.to_string());
            // Each instance's page also polls its peers' status.
            r.headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            r
        }
        _ => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: this listener serves /, /metrics and /api/status\n",
        ),
    }
}

/// What the dashboard shows of this instance: identity, pipes, writes, storage and process, as raw
/// counters (the page turns them into rates between two polls).
pub fn status_json(instance: &Instance) -> serde_json::Value {
    use serde_json::json;
    let storage = instance.engine.storage();
    let stats = storage.stats();
    let sm = storage.metrics();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let pipes: Vec<serde_json::Value> = instance
        .pipes
        .reports()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let m = r.metrics.as_ref();
            let lag = m.map(|m| m.lag_seconds.snapshot());
            json!({
                "name": r.name,
                "creation_time": r.created_at_ms,
                "state": r.state,
                "exception": r.exception,
                "remaining_events": r.remaining_events,
                "remaining_capped": r.remaining_capped,
                "remaining_seconds": r.remaining_seconds,
                "backlog_age_seconds": r.oldest_unsent_ms.map_or(0.0, |ms| {
                    (now_ms - i64::try_from(ms).unwrap_or(now_ms)).max(0) as f64 / 1000.0
                }),
                "rate": r.rate,
                "sink": r.sink,
                "peer_dashboard": match (&r.peer_host, r.peer_metrics_port) {
                    (Some(host), Some(port)) => Some(format!("http://{host}:{port}/")),
                    _ => None,
                },
                "replaying": r.replaying,
                "entries_transferred": m.map_or(0, |m| m.entries_transferred.get()),
                "bytes_transferred": m.map_or(0, |m| m.bytes_transferred.get()),
                "failures": m.map_or(0, |m| m.failures.get()),
                "retries": m.map_or(0, |m| m.retries.get()),
                "lag_buckets": lag.as_ref().map(|h| h.buckets.iter().map(|(b, n)| json!([if b.is_finite() { json!(b) } else { json!("+Inf") }, n])).collect::<Vec<_>>()),
            })
        })
        .collect();
    let process = crate::metrics::ProcessStats::read();
    let identity = instance.identity();
    json!({
        "instance": {
            "cluster_id": identity.cluster_id,
            "internal_address": instance.config.internal_address,
            "rpc_port": instance.rpc_port,
            "version": VERSION,
            "commit": BUILD_INFO,
            "now_ms": now_ms,
            "tls": instance.tls.is_some(),
            "audit_log": instance.audit.is_enabled(),
            "warnings": crate::root_guard::default_password_warning(instance).into_iter().collect::<Vec<_>>(),
        },
        "pipes": pipes,
        "writes": {
            "points_local": sm.points_written_local.get(),
            "points_pipe": sm.points_written_pipe.get(),
            "entries_local": sm.entries_written_local.get(),
            "entries_pipe": sm.entries_written_pipe.get(),
        },
        "storage": {
            "memtable_bytes": stats.memtable_bytes,
            "frozen_memtables": stats.frozen_memtables,
            "data_files": stats.data_files,
            "data_file_bytes": storage.data_file_bytes(),
            "wal_bytes": stats.wal_bytes,
            "compaction_pending_files": stats.compaction_pending_files,
            "backpressure_seconds": sm.backpressure_seconds.seconds(),
            "head_lsn": stats.head,
            "flushed_lsn": stats.flushed_lsn,
        },
        "sessions": instance.sessions().len(),
        "connections": instance.metrics.connections_open.get(),
        "process": {
            "resident_bytes": process.resident_bytes,
            "cpu_seconds": process.cpu_seconds,
            "open_fds": process.open_fds,
        },
    })
}

/// Writes the metrics listener's address file atomically.
pub fn write_addr_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("addr.tmp");
    std::fs::write(&tmp, format!("{contents}\n"))?;
    std::fs::rename(&tmp, path)
}
