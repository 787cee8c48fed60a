//! The pipe handshake (request type 51, pipe reference §6.4 and §7.1), on both ends.
//!
//! The sink opens a connection to the peer's client port and sends its cluster id, timestamp precision
//! and credentials; the receiver checks them in IoTDB's order and with IoTDB's messages, and remembers
//! the sender for the rest of the connection.

use std::collections::BTreeMap;
use std::time::Duration;

use duet_proto::client::{ClientError, Connection};
use duet_proto::codec::Protocol;
use duet_proto::pipe_body::{self, handshake_key, request_type, REQUEST_VERSION};
use duet_proto::status::{self, StatusCode};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp, TSStatus};

use crate::config::SinkConfig;
use crate::identity::ServerIdentity;

/// Connect plus handshake must finish within this (IoTDB's `pipeSinkHandshakeTimeoutMs`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After the handshake, a single transfer may take this long (IoTDB's `pipe_sink_timeout_ms`).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(900);

/// Handshake key with which a Duet sender announces that it speaks Duet's own batch request.
pub const DUET_PROTOCOL_KEY: &str = "duet.protocol";

/// A Duet receiver's answer names its metrics and dashboard port under this key (when it serves one).
pub const DUET_METRICS_PORT_KEY: &str = "duet.metrics.port";

/// The handshake parameters a sink sends.
pub fn handshake_parameters(
    identity: &ServerIdentity,
    sink: &SinkConfig,
) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    params.insert(
        handshake_key::CLUSTER_ID.to_string(),
        identity.cluster_id.clone(),
    );
    params.insert(
        handshake_key::TIMESTAMP_PRECISION.to_string(),
        identity.timestamp_precision.clone(),
    );
    params.insert(handshake_key::USERNAME.to_string(), sink.username.clone());
    params.insert(handshake_key::PASSWORD.to_string(), sink.password.clone());
    params.insert(
        handshake_key::MARK_AS_PIPE_REQUEST.to_string(),
        sink.mark_as_pipe_request.to_string(),
    );
    params.insert(
        handshake_key::CONVERT_ON_TYPE_MISMATCH.to_string(),
        "true".to_string(),
    );
    params.insert(
        handshake_key::LOAD_TSFILE_STRATEGY.to_string(),
        "sync".to_string(),
    );
    params.insert(
        handshake_key::VALIDATE_TSFILE.to_string(),
        "true".to_string(),
    );
    params.insert(DUET_PROTOCOL_KEY.to_string(), "1".to_string());
    params
}

/// A handshaken connection to one of the sink's endpoints.
pub struct SinkConnection {
    pub connection: Connection,
    pub endpoint: (String, u16),
    /// The handshake reply's body; a Duet receiver answers with its own parameters there.
    pub peer_parameters: BTreeMap<String, String>,
}

/// Why no endpoint accepted the handshake, in IoTDB's wording.
#[derive(Debug, Clone, thiserror::Error)]
#[error("All target servers {endpoints} are not available.{details}")]
pub struct HandshakeFailure {
    pub endpoints: String,
    pub details: String,
    /// True when a peer answered and refused (bad credentials, same cluster, precision), as opposed to
    /// no peer being reachable; a refusal will not cure itself by retrying.
    pub refused: bool,
}

/// Connects to the first endpoint that accepts the handshake.
pub async fn connect(
    identity: &ServerIdentity,
    sink: &SinkConfig,
) -> Result<SinkConnection, HandshakeFailure> {
    let body = pipe_body::encode_map(&handshake_parameters(identity, sink));
    let req = TPipeTransferReq::new(REQUEST_VERSION, request_type::HANDSHAKE_DATANODE_V2, body);
    let mut details = String::new();
    let mut refused = false;
    // The sink's PEM files are read once per connection attempt: a replaced certificate is taken
    // by the next retry; an unreadable file is this attempt's failure (the pipe's exception).
    let tls = match sink.tls.as_ref().map(|t| t.client_tls()).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            return Err(HandshakeFailure {
                endpoints: sink.endpoints_display(),
                details: format!(" (because: sink TLS configuration: {e})"),
                refused: false,
            })
        }
    };
    for (host, port) in &sink.endpoints {
        let attempt = async {
            let mut connection = Connection::connect_with_tls(
                host,
                *port,
                Protocol::Binary,
                tls.as_ref(),
                HANDSHAKE_TIMEOUT,
                HANDSHAKE_TIMEOUT,
            )
            .await?;
            let resp = connection.pipe_transfer(&req).await?;
            Ok::<_, ClientError>((connection, resp))
        };
        let reason = match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
            Err(_) => format!("handshake timed out after {HANDSHAKE_TIMEOUT:?}"),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok((connection, resp))) if resp.status.code == StatusCode::Success.code() => {
                let peer_parameters = resp
                    .body
                    .as_deref()
                    .and_then(|b| pipe_body::decode_map(b).ok())
                    .unwrap_or_default();
                return Ok(SinkConnection {
                    connection,
                    endpoint: (host.clone(), *port),
                    peer_parameters,
                });
            }
            Ok(Ok((_, resp))) => {
                refused = true;
                status::describe(&resp.status)
            }
        };
        details.push_str(&format!(" (host: {host}, port: {port}, because: {reason})"));
    }
    Err(HandshakeFailure {
        endpoints: sink.endpoints_display(),
        details,
        refused,
    })
}

/// What the receiver knows about the sender on this connection after a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub cluster_id: String,
    pub username: String,
    pub mark_as_pipe_request: bool,
    pub speaks_duet: bool,
}

/// Per-connection receiver state.
#[derive(Debug, Default)]
pub struct ReceiverState {
    pub peer: Option<PeerInfo>,
    /// Where this connection's transferred files go (none: file transfers are refused).
    pub file_dir: Option<std::path::PathBuf>,
    /// The most bytes one file transfer may hold (`pipe_receiver_max_file_bytes`; 0: the default).
    pub max_file_bytes: u64,
    /// The file transfer in progress, once a piece arrived.
    pub files: Option<crate::file_receiver::FileReceiver>,
    /// A sliced request (type 400) being reassembled.
    pub slices: crate::slice::SliceBuffer,
}

impl ReceiverState {
    /// The state of a new connection whose transferred files go to `file_dir`.
    pub fn with_file_dir(file_dir: std::path::PathBuf, max_file_bytes: u64) -> ReceiverState {
        ReceiverState {
            file_dir: Some(file_dir),
            max_file_bytes,
            ..ReceiverState::default()
        }
    }
}

pub(crate) fn pipe_status(code: StatusCode, message: impl Into<String>) -> TPipeTransferResp {
    TPipeTransferResp::new(status::failure(code, message), None)
}

/// Checks a handshake (type 51) and, when it passes, remembers the sender for the connection.
pub fn handshake(
    state: &mut ReceiverState,
    identity: &ServerIdentity,
    body: &[u8],
    authenticate: impl Fn(&str, &str) -> Result<(), TSStatus>,
) -> TPipeTransferResp {
    let params = match pipe_body::decode_map(body) {
        Ok(p) => p,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeHandshakeError,
                format!("Malformed handshake request: {e}"),
            )
        }
    };
    let Some(cluster_id) = params.get(handshake_key::CLUSTER_ID) else {
        return pipe_status(
            StatusCode::PipeHandshakeError,
            "Handshake request does not contain clusterId.",
        );
    };
    if *cluster_id == identity.cluster_id {
        return pipe_status(
            StatusCode::PipeHandshakeError,
            format!("Receiver and sender are from the same cluster {cluster_id}."),
        );
    }
    let Some(precision) = params.get(handshake_key::TIMESTAMP_PRECISION) else {
        return pipe_status(
            StatusCode::PipeHandshakeError,
            "Handshake request does not contain timestampPrecision.",
        );
    };
    let username = params
        .get(handshake_key::USERNAME)
        .map(String::as_str)
        .unwrap_or("root");
    let password = params
        .get(handshake_key::PASSWORD)
        .map(String::as_str)
        .unwrap_or("root");
    if let Err(status) = authenticate(username, password) {
        return TPipeTransferResp::new(status, None);
    }
    if *precision != identity.timestamp_precision {
        return pipe_status(
            StatusCode::PipeHandshakeError,
            format!(
                "IoTDB receiver's timestamp precision {}, connector's timestamp precision {precision}. Validation fails.",
                identity.timestamp_precision
            ),
        );
    }
    let peer = PeerInfo {
        cluster_id: cluster_id.clone(),
        username: username.to_string(),
        mark_as_pipe_request: params
            .get(handshake_key::MARK_AS_PIPE_REQUEST)
            .is_none_or(|v| !v.eq_ignore_ascii_case("false")),
        speaks_duet: params.contains_key(DUET_PROTOCOL_KEY),
    };
    // As IoTDB's receiver, a handshake starts the connection's file transfer afresh.
    state.files = None;
    state.peer = Some(peer);
    let mut reply = BTreeMap::new();
    reply.insert(
        handshake_key::CLUSTER_ID.to_string(),
        identity.cluster_id.clone(),
    );
    reply.insert(DUET_PROTOCOL_KEY.to_string(), "1".to_string());
    if let Some(port) = identity.metrics_port {
        reply.insert(DUET_METRICS_PORT_KEY.to_string(), port.to_string());
    }
    TPipeTransferResp::new(status::success(), Some(pipe_body::encode_map(&reply)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn identity() -> ServerIdentity {
        ServerIdentity {
            cluster_id: "duet-b".into(),
            timestamp_precision: "ms".into(),
            version: "0.1.0".into(),
            metrics_port: None,
        }
    }

    fn handshake_req(pairs: &[(&str, &str)]) -> TPipeTransferReq {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TPipeTransferReq::new(1, 51, pipe_body::encode_map(&map))
    }

    fn root_only(user: &str, password: &str) -> Result<(), TSStatus> {
        match (user, password) {
            ("root", "root") => Ok(()),
            ("root", _) => Err(status::failure(
                StatusCode::WrongLoginPassword,
                "Authentication failed.",
            )),
            (u, _) => Err(status::failure(
                StatusCode::UserNotExist,
                format!("User {u} does not exist"),
            )),
        }
    }

    /// Handshake parameters, the expected status code, and a fragment of the expected message.
    type HandshakeCase = (Vec<(&'static str, &'static str)>, i32, &'static str);

    #[test]
    fn handshake_checks_in_iotdb_order() {
        let id = identity();
        let cases: Vec<HandshakeCase> = vec![
            (
                vec![("timestampPrecision", "ms")],
                1802,
                "does not contain clusterId",
            ),
            (
                vec![("clusterID", "duet-b"), ("timestampPrecision", "ms")],
                1802,
                "same cluster duet-b",
            ),
            (
                vec![("clusterID", "duet-a")],
                1802,
                "does not contain timestampPrecision",
            ),
            (
                vec![
                    ("clusterID", "duet-a"),
                    ("timestampPrecision", "ms"),
                    ("password", "x"),
                ],
                801,
                "Authentication failed",
            ),
            (
                vec![
                    ("clusterID", "duet-a"),
                    ("timestampPrecision", "ms"),
                    ("username", "bob"),
                ],
                804,
                "bob",
            ),
            (
                vec![("clusterID", "duet-a"), ("timestampPrecision", "us")],
                1802,
                "Validation fails",
            ),
        ];
        for (pairs, code, text) in cases {
            let mut state = ReceiverState::default();
            let resp = handshake(&mut state, &id, &handshake_req(&pairs).body, root_only);
            assert_eq!(resp.status.code, code, "{pairs:?}");
            assert!(
                resp.status.message.unwrap_or_default().contains(text),
                "{pairs:?}"
            );
            assert!(state.peer.is_none());
        }
        let mut state = ReceiverState::default();
        let resp = handshake(
            &mut state,
            &id,
            &handshake_req(&[("clusterID", "duet-a"), ("timestampPrecision", "ms")]).body,
            root_only,
        );
        assert_eq!(resp.status.code, 200);
        assert_eq!(state.peer.as_ref().unwrap().cluster_id, "duet-a");
        assert!(state.peer.as_ref().unwrap().mark_as_pipe_request);
    }
}
