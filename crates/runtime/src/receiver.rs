//! The receiving end of a pipe (`pipeTransfer` on port 6667): the handshake, then batches of entries
//! applied through the engine with their original versions and the pipe as their origin.
//!
//! **Invariant:** the receiver never holds a lock local writers need while it waits: entries go
//! through the same group-committed storage write path as client writes.

use duet_engine::write::{DeviceWrite, WriteColumn};
use duet_engine::{Engine, EngineError};
use duet_proto::pipe_body::request_type;
use duet_proto::status::{self, StatusCode};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp, TSStatus};
use duet_storage::Origin;
use futures::future::join_all;

use crate::handshake::{self, pipe_status, PeerInfo, ReceiverState};
use crate::manager::ServerIdentity;
use crate::slice::{self, SliceOutcome};
use crate::transfer;

/// Answers one `pipeTransfer` request on a connection. `authenticate` checks a user's password and
/// returns the failure status (801, 804) when it does not match.
pub async fn receive(
    state: &mut ReceiverState,
    identity: &ServerIdentity,
    engine: &Engine,
    req: &TPipeTransferReq,
    authenticate: impl Fn(&str, &str) -> Result<(), TSStatus>,
) -> TPipeTransferResp {
    // Any request but a slice ends a reassembly in progress, as on IoTDB.
    if req.type_ != slice::TRANSFER_SLICE {
        state.slices.clear();
    }
    if req.type_ == transfer::TRANSFER_COMPRESSED {
        return match transfer::decompress(&req.body) {
            Ok((_, transfer::TRANSFER_COMPRESSED, _)) => pipe_status(
                StatusCode::PipeTypeError,
                "A compressed request may not wrap another compressed request.",
            ),
            Ok((version, type_, body)) => {
                let inner = TPipeTransferReq::new(version, type_, body);
                Box::pin(receive(state, identity, engine, &inner, authenticate)).await
            }
            Err(e) => pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed compressed request: {e}"),
            ),
        };
    }
    match req.type_ {
        slice::TRANSFER_SLICE => match state.slices.receive(&req.body) {
            SliceOutcome::Answer(resp) => resp,
            SliceOutcome::Complete(inner) if inner.type_ == slice::TRANSFER_SLICE => pipe_status(
                StatusCode::PipeTypeError,
                "A sliced request may not carry another sliced request.",
            ),
            SliceOutcome::Complete(inner) => {
                Box::pin(receive(state, identity, engine, &inner, authenticate)).await
            }
        },
        request_type::HANDSHAKE_DATANODE_V2 => {
            handshake::handshake(state, identity, &req.body, authenticate)
        }
        request_type::HANDSHAKE_DATANODE_V1 => pipe_status(
            StatusCode::PipeHandshakeError,
            "Handshake V1 is not supported; the sender must send HANDSHAKE_DATANODE_V2 (type 51).",
        ),
        transfer::DUET_TRANSFER_ENTRIES => match &state.peer {
            None => not_handshaken(),
            Some(peer) => apply_entries(engine, origin_of(peer), &req.body).await,
        },
        request_type::TRANSFER_TABLET_RAW
        | request_type::TRANSFER_TABLET_BATCH
        | request_type::TRANSFER_TABLET_RAW_V2
        | request_type::TRANSFER_TABLET_BATCH_V2 => match &state.peer {
            None => not_handshaken(),
            Some(peer) => apply_tablets(engine, origin_of(peer), req.type_, &req.body).await,
        },
        other => pipe_status(
            StatusCode::PipeTypeError,
            format!("Unknown PipeRequestType {other}."),
        ),
    }
}

/// The origin recorded for what a handshaken peer sends: its pipe, unless the sender set
/// `mark-as-general-write-request` (IoTDB's markAsPipeRequest=false), in which case its writes count
/// as local ones here and this instance's pipes forward them.
fn origin_of(peer: &PeerInfo) -> Origin {
    if peer.mark_as_pipe_request {
        Origin::Pipe {
            instance: crate::instance_number(&peer.cluster_id),
        }
    } else {
        Origin::Local
    }
}

fn not_handshaken() -> TPipeTransferResp {
    pipe_status(
        StatusCode::NotLogin,
        "The pipe connection has not been handshaken; send a handshake first.",
    )
}

/// Applies IoTDB tablets (an IoTDB sender, or a Duet sink with `format`='tablet') through the normal
/// write path. Tablets carry no versions: the points get this instance's, so between two writes of one
/// point the later arrival wins, as on IoTDB.
async fn apply_tablets(
    engine: &Engine,
    origin: Origin,
    type_: i16,
    body: &[u8],
) -> TPipeTransferResp {
    let inserts = match transfer::decode_iotdb_tablets(type_, body) {
        Ok(t) => t,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed or unsupported tablet request: {e}"),
            )
        }
    };
    if inserts.is_empty() {
        return TPipeTransferResp::new(status::success(), None);
    }
    let writes = inserts
        .into_iter()
        .map(|i| DeviceWrite {
            device: i.device,
            aligned: i.aligned,
            measurements: i.measurements,
            columns: i.columns.into_iter().map(WriteColumn::Typed).collect(),
            times: i.times,
        })
        .collect();
    match engine.write_from(origin, writes).await {
        Ok(outcome) => match outcome.results.into_iter().find_map(Result::err) {
            None => TPipeTransferResp::new(status::success(), None),
            Some(e) => refused(e),
        },
        Err(e) => refused(e),
    }
}

/// The status a sender sees for a batch this instance could not apply (pipe reference §7.2).
fn refused(e: EngineError) -> TPipeTransferResp {
    let code = match &e {
        EngineError::TypeMismatch(_)
        | EngineError::IllegalPath(_)
        | EngineError::DatabaseExists(_) => StatusCode::PipeReceiverUserConflict,
        _ => StatusCode::InternalServerError,
    };
    pipe_status(code, format!("Failed to apply a replicated batch: {e}"))
}

/// Applies a batch; all entries are submitted together so they share group commits. Order does not
/// matter: the highest version wins whatever order entries are applied in.
async fn apply_entries(engine: &Engine, origin: Origin, body: &[u8]) -> TPipeTransferResp {
    let entries = match transfer::decode_entries(body) {
        Ok(e) => e,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed Duet batch: {e}"),
            )
        }
    };
    let results = join_all(
        entries
            .into_iter()
            .map(|e| engine.apply_replicated(origin.clone(), e.version, e.ops)),
    )
    .await;
    match results.into_iter().find_map(Result::err) {
        None => TPipeTransferResp::new(status::success(), None),
        Some(e) => refused(e),
    }
}
