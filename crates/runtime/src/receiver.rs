//! The receiving end of a pipe (`pipeTransfer` on port 6667): the handshake, then batches of entries
//! applied through the engine with their original versions and the pipe as their origin.
//!
//! **Invariant:** the receiver never holds a lock local writers need while it waits: entries go
//! through the same group-committed storage write path as client writes.

use duet_engine::schema_sync::{SchemaChange, SeriesSpec};
use duet_engine::values::Cell;
use duet_engine::write::{DeviceWrite, WriteColumn};
use duet_engine::{Engine, EngineError};
use duet_proto::config_plan::{self, ConfigPlan, UserPassword};
use duet_proto::pipe_body::{self, request_type};
use duet_proto::pipe_compressed::{self, TRANSFER_COMPRESSED};
use duet_proto::pipe_tablet;
use duet_proto::plan_node::{InsertRow, RowValue, WriteNode};
use duet_proto::status::{self, StatusCode};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp, TSStatus};
use duet_storage::Origin;
use futures::future::join_all;

use crate::file_receiver::FileReceiver;
use crate::handshake::{self, pipe_status, PeerInfo, ReceiverState};
use crate::identity::ServerIdentity;
use crate::slice::{self, SliceOutcome};
use crate::transfer;

/// What a transfer applies, for the check of the handshake user's privileges (the server decides
/// what each needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Points and deletions (tablets, InsertNodes, TsFiles).
    Data,
    /// Series, devices and templates (schema snapshots).
    Schema,
    /// Anything an instance holds: Duet's entry batches and IoTDB's ConfigNode plans and snapshots
    /// carry users, databases and TTLs besides data and schema.
    Config,
}

/// Answers one `pipeTransfer` request on a connection. `authenticate` checks a user's password and
/// returns the failure status (801, 804) when it does not match; `authorize` checks, on every
/// request that applies something, that the handshake user (still) may apply it.
pub async fn receive(
    state: &mut ReceiverState,
    identity: &ServerIdentity,
    engine: &Engine,
    req: &TPipeTransferReq,
    authenticate: impl Fn(&str, &str) -> Result<(), TSStatus>,
    authorize: &(dyn Fn(&str, Applies) -> Result<(), TSStatus> + Sync),
) -> TPipeTransferResp {
    if let (Some(applies), Some(peer)) = (applies(req.type_), &state.peer) {
        if let Err(status) = authorize(&peer.username, applies) {
            return TPipeTransferResp::new(status, None);
        }
    }
    // Any request but a slice ends a reassembly in progress, as on IoTDB.
    if req.type_ != slice::TRANSFER_SLICE {
        state.slices.clear();
    }
    if req.type_ == TRANSFER_COMPRESSED {
        return match pipe_compressed::decompress(&req.body) {
            Ok((_, TRANSFER_COMPRESSED, _)) => pipe_status(
                StatusCode::PipeTypeError,
                "A compressed request may not wrap another compressed request.",
            ),
            Ok((version, type_, body)) => {
                let inner = TPipeTransferReq::new(version, type_, body);
                Box::pin(receive(
                    state,
                    identity,
                    engine,
                    &inner,
                    authenticate,
                    authorize,
                ))
                .await
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
                Box::pin(receive(
                    state,
                    identity,
                    engine,
                    &inner,
                    authenticate,
                    authorize,
                ))
                .await
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
        | request_type::TRANSFER_TABLET_BATCH_V2
        | request_type::TRANSFER_TABLET_INSERT_NODE
        | request_type::TRANSFER_TABLET_INSERT_NODE_V2
        | request_type::TRANSFER_TABLET_BINARY
        | request_type::TRANSFER_TABLET_BINARY_V2
        | request_type::TRANSFER_PLAN_NODE => match &state.peer {
            None => not_handshaken(),
            Some(peer) => apply_iotdb_writes(engine, origin_of(peer), req.type_, &req.body).await,
        },
        request_type::TRANSFER_CONFIG_PLAN => match &state.peer {
            None => not_handshaken(),
            Some(peer) => apply_config_plan(engine, origin_of(peer), &req.body).await,
        },
        request_type::TRANSFER_TS_FILE_PIECE | request_type::TRANSFER_TS_FILE_PIECE_WITH_MOD => {
            match &state.peer {
                None => not_handshaken(),
                Some(_) => file_piece(state, req.type_, &req.body).await,
            }
        }
        request_type::TRANSFER_TS_FILE_SEAL | request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD => {
            match &state.peer {
                None => not_handshaken(),
                Some(peer) => {
                    let origin = origin_of(peer);
                    file_seal(state, engine, origin, req.type_, &req.body).await
                }
            }
        }
        request_type::TRANSFER_CONFIG_SNAPSHOT_PIECE
        | request_type::TRANSFER_SCHEMA_SNAPSHOT_PIECE => match &state.peer {
            None => not_handshaken(),
            Some(_) => file_piece(state, req.type_, &req.body).await,
        },
        request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL => match &state.peer {
            None => not_handshaken(),
            Some(peer) => {
                let origin = origin_of(peer);
                match receiver_files(state) {
                    Some(files) => {
                        crate::config_snapshot_load::seal(files, engine, origin, &req.body).await
                    }
                    None => pipe_status(
                        StatusCode::PipeTransferFileError,
                        "This receiver takes no file transfers.",
                    ),
                }
            }
        },
        request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL => match &state.peer {
            None => not_handshaken(),
            Some(peer) => {
                let origin = origin_of(peer);
                match receiver_files(state) {
                    Some(files) => {
                        crate::schema_snapshot_load::seal(files, engine, origin, &req.body).await
                    }
                    None => pipe_status(
                        StatusCode::PipeTransferFileError,
                        "This receiver takes no file transfers.",
                    ),
                }
            }
        },
        other => pipe_status(
            StatusCode::PipeTypeError,
            format!("Unknown PipeRequestType {other}."),
        ),
    }
}

/// What a request of `type_` applies (`None`: nothing yet — a handshake, a file piece, a wrapper
/// whose inner request is checked when it is unwrapped).
fn applies(type_: i16) -> Option<Applies> {
    match type_ {
        request_type::TRANSFER_TABLET_RAW
        | request_type::TRANSFER_TABLET_BATCH
        | request_type::TRANSFER_TABLET_RAW_V2
        | request_type::TRANSFER_TABLET_BATCH_V2
        | request_type::TRANSFER_TABLET_INSERT_NODE
        | request_type::TRANSFER_TABLET_INSERT_NODE_V2
        | request_type::TRANSFER_TABLET_BINARY
        | request_type::TRANSFER_TABLET_BINARY_V2
        | request_type::TRANSFER_PLAN_NODE
        | request_type::TRANSFER_TS_FILE_SEAL
        | request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD => Some(Applies::Data),
        request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL => Some(Applies::Schema),
        transfer::DUET_TRANSFER_ENTRIES
        | request_type::TRANSFER_CONFIG_PLAN
        | request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL => Some(Applies::Config),
        _ => None,
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

/// Applies what an IoTDB sender (or a Duet sink with `format`='tablet') transfers: tablets, InsertNodes,
/// WAL entries and deletions, in request order, through the normal write path. IoTDB's writes carry no
/// versions: the points get this instance's, so between two writes of one point the later arrival wins,
/// as on IoTDB. A request some of whose entries Duet cannot take (the table model, a plan node it does
/// not apply) is refused whole, before anything of it is applied.
async fn apply_iotdb_writes(
    engine: &Engine,
    origin: Origin,
    type_: i16,
    body: &[u8],
) -> TPipeTransferResp {
    let nodes = match pipe_tablet::decode_write_request(type_, body) {
        Ok(nodes) => nodes,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed or unsupported write request (type {type_}): {e}"),
            )
        }
    };
    let mut writes = Vec::new();
    for node in nodes {
        match node {
            WriteNode::Tablets(tablets) => {
                writes.extend(tablets.into_iter().map(|t| DeviceWrite {
                    device: t.device,
                    aligned: t.aligned,
                    measurements: t.measurements,
                    columns: t.columns.into_iter().map(WriteColumn::Typed).collect(),
                    times: t.times,
                }))
            }
            WriteNode::Rows(rows) => writes.extend(rows.into_iter().map(row_write)),
            WriteNode::CreateSeries(create) => {
                if let Err(resp) = write_all(engine, &origin, std::mem::take(&mut writes)).await {
                    return resp;
                }
                let change = SchemaChange::CreateSeries {
                    device: create.device,
                    aligned: create.aligned,
                    series: create
                        .series
                        .into_iter()
                        .map(|(measurement, t, encoding, compressor)| SeriesSpec {
                            measurement,
                            data_type: t.name().to_string(),
                            encoding,
                            compressor,
                        })
                        .collect(),
                };
                if let Err(e) = engine
                    .apply_unversioned_schema(origin.clone(), change)
                    .await
                {
                    return refused(e);
                }
            }
            WriteNode::CreateSeriesOnDevices(groups) => {
                if let Err(resp) = write_all(engine, &origin, std::mem::take(&mut writes)).await {
                    return resp;
                }
                if let Err(resp) = apply_series_groups(engine, &origin, groups).await {
                    return resp;
                }
            }
            WriteNode::ActivateTemplate(devices) => {
                if let Err(resp) = write_all(engine, &origin, std::mem::take(&mut writes)).await {
                    return resp;
                }
                if let Err(resp) = apply_activations(engine, &origin, devices).await {
                    return resp;
                }
            }
            WriteNode::Delete(delete) => {
                // Writes before a deletion land before it, as the sender ordered them.
                if let Err(resp) = write_all(engine, &origin, std::mem::take(&mut writes)).await {
                    return resp;
                }
                if let Err(e) = engine
                    .delete_data_from(origin.clone(), &delete.paths, delete.start, delete.end)
                    .await
                {
                    return refused(e);
                }
            }
        }
    }
    match write_all(engine, &origin, writes).await {
        Ok(()) => TPipeTransferResp::new(status::success(), None),
        Err(resp) => resp,
    }
}

/// The series of a `CreateMultiTimeSeriesNode` or an internal create node, device by device, as a
/// peer's schema changes (versioned on arrival).
async fn apply_series_groups(
    engine: &Engine,
    origin: &Origin,
    groups: Vec<duet_proto::plan_node::CreateSeries>,
) -> Result<(), TPipeTransferResp> {
    for group in groups {
        let change = SchemaChange::CreateSeries {
            device: group.device,
            aligned: group.aligned,
            series: group
                .series
                .into_iter()
                .map(|(measurement, t, encoding, compressor)| SeriesSpec {
                    measurement,
                    data_type: t.name().to_string(),
                    encoding,
                    compressor,
                })
                .collect(),
        };
        engine
            .apply_unversioned_schema(origin.clone(), change)
            .await
            .map_err(refused)?;
    }
    Ok(())
}

/// Template activations: each device activates the template set above it here.
async fn apply_activations(
    engine: &Engine,
    origin: &Origin,
    devices: Vec<String>,
) -> Result<(), TPipeTransferResp> {
    for device in devices {
        engine
            .apply_unversioned_schema(
                origin.clone(),
                SchemaChange::ActivateTemplate {
                    device,
                    made_on: None,
                },
            )
            .await
            .map_err(refused)?;
    }
    Ok(())
}

/// One InsertRowNode row as a device write: typed values keep their type (converted to the series'
/// type as `insertRecord` values are), raw strings are inferred as `insertStringRecord`'s, and null
/// cells are left out, as IoTDB skips them.
fn row_write(row: InsertRow) -> DeviceWrite {
    let mut measurements = Vec::with_capacity(row.measurements.len());
    let mut columns = Vec::with_capacity(row.values.len());
    for (measurement, value) in row.measurements.into_iter().zip(row.values) {
        let cell = match value {
            RowValue::Value(v) => Cell::Typed(v),
            RowValue::Unparsed(s) => Cell::Unparsed(s),
            RowValue::Null(_) => continue,
        };
        measurements.push(measurement);
        columns.push(WriteColumn::Cells(vec![cell]));
    }
    DeviceWrite {
        device: row.device,
        aligned: row.aligned,
        measurements,
        columns,
        times: vec![row.time],
    }
}

/// Writes `writes` as one request; the refusal a sender sees if any device failed.
async fn write_all(
    engine: &Engine,
    origin: &Origin,
    writes: Vec<DeviceWrite>,
) -> Result<(), TPipeTransferResp> {
    if writes.is_empty() {
        return Ok(());
    }
    match engine.write_from(origin.clone(), writes).await {
        Ok(outcome) => match outcome.results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => Err(refused(e)),
        },
        Err(e) => Err(refused(e)),
    }
}

/// A ConfigNode plan (type 200) an IoTDB sender sends for `schema.database` and `schema.ttl`: applied
/// as a peer's schema change (versioned now, with the pipe's origin).
async fn apply_config_plan(engine: &Engine, origin: Origin, body: &[u8]) -> TPipeTransferResp {
    let plan = match config_plan::decode_config_plan(body) {
        Ok(plan) => plan,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed or unsupported config plan: {e}"),
            )
        }
    };
    // A plan a pipe receiver executed on the sender means here what the plan itself means.
    let plan = match plan {
        ConfigPlan::PipeEnriched(inner) => *inner,
        plan => plan,
    };
    let rules = match plan {
        ConfigPlan::CreateDatabase { name } => {
            return apply_peer_change(engine, origin, SchemaChange::CreateDatabase { path: name })
                .await
        }
        ConfigPlan::DeleteDatabase { name } => {
            return apply_peer_change(
                engine,
                origin,
                SchemaChange::DropDatabase {
                    path: name,
                    series: Vec::new(),
                },
            )
            .await
        }
        ConfigPlan::SetTtl(rule) => vec![rule],
        ConfigPlan::SetTtls(rules) => rules,
        other => return apply_schema_plan(engine, origin, other).await,
    };
    for rule in rules {
        // A database's rule covers what is under it (IoTDB's isDataBase); IoTDB's UNSET TTL is a
        // TTL of -1 (its NULL_TTL), and no TTL of 0 or less is a rule.
        let patterns = if rule.database {
            vec![rule.pattern.clone(), format!("{}.**", rule.pattern)]
        } else {
            vec![rule.pattern]
        };
        let change = if rule.ttl_ms <= 0 {
            SchemaChange::UnsetTtl { patterns }
        } else {
            SchemaChange::SetTtl {
                patterns,
                ttl_ms: rule.ttl_ms,
            }
        };
        let resp = apply_peer_change(engine, origin.clone(), change).await;
        if resp.status.code != status::success().code {
            return resp;
        }
    }
    TPipeTransferResp::new(status::success(), None)
}

/// The template, series-deletion and user plans of type 200, each as the peer schema changes it
/// means here. A user created or changed with a password in clear is stored with this instance's
/// hash of it; one created with IoTDB's hash (`CreateUserWithRawPassword`) keeps that hash as its
/// own kind, which logins verify as IoTDB does. Deletions and deactivations name path patterns on IoTDB; they are resolved against
/// this instance's schema (what matches nothing here is nothing to do).
async fn apply_schema_plan(engine: &Engine, origin: Origin, plan: ConfigPlan) -> TPipeTransferResp {
    let changes = match plan {
        ConfigPlan::CreateTemplate {
            name,
            aligned,
            measurements,
        } => vec![SchemaChange::CreateTemplate {
            name,
            aligned,
            measurements: measurements
                .into_iter()
                .map(|(measurement, t, encoding, compressor)| SeriesSpec {
                    measurement,
                    data_type: t.name().to_string(),
                    encoding,
                    compressor,
                })
                .collect(),
        }],
        ConfigPlan::ExtendTemplate { name, measurements } => vec![SchemaChange::AppendTemplate {
            name,
            measurements: measurements
                .into_iter()
                .map(|(measurement, t, encoding, compressor)| SeriesSpec {
                    measurement,
                    data_type: t.name().to_string(),
                    encoding: encoding
                        .unwrap_or_else(|| duet_engine::schema::default_encoding(t).to_string()),
                    // IoTDB's default compressor, as for a series created without one.
                    compressor: compressor.unwrap_or_else(|| "LZ4".to_string()),
                })
                .collect(),
            made_on: None,
        }],
        ConfigPlan::SetTemplate { name, path } => vec![SchemaChange::SetTemplate {
            name,
            path,
            made_on: None,
        }],
        ConfigPlan::UnsetTemplate { name, path } => {
            vec![SchemaChange::UnsetTemplate { name, path }]
        }
        ConfigPlan::DropTemplate { name } => vec![SchemaChange::DropTemplate { name }],
        ConfigPlan::DeactivateTemplate(entries) => {
            let mut devices = Vec::new();
            for (pattern, templates) in entries {
                match engine.devices_using_templates(&pattern, &templates) {
                    Ok(found) => devices.extend(found),
                    Err(e) => return refused(e),
                }
            }
            devices.sort();
            devices.dedup();
            if devices.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChange::DeactivateTemplate { devices }]
            }
        }
        ConfigPlan::DeleteTimeSeries { patterns } => match engine.series_for_delete(&patterns) {
            Ok(series) if series.is_empty() => Vec::new(),
            Ok(series) => vec![SchemaChange::DeleteSeries { series }],
            Err(e) => return refused(e),
        },
        // IoTDB's receiver keeps an existing user as it is (its 'user already exists' answer, which
        // its pipe receiver turns into 1809): a creation never overwrites an account here. Root is
        // this instance's own: no plan creates, changes or drops it.
        ConfigPlan::CreateUser { name, .. }
        | ConfigPlan::UpdateUser { name, .. }
        | ConfigPlan::DropUser { name }
            if name == duet_catalog::ROOT_USER =>
        {
            tracing::warn!("an IoTDB user plan for root was received; root stays as it is here");
            return pipe_status(
                StatusCode::PipeReceiverIdempotentConflict,
                "A user plan for root is not applied: root is this instance's own (IoTDB's \
                 receiver never lets a pipe change or drop its superuser).",
            );
        }
        ConfigPlan::CreateUser { name, password } => {
            let password_hash = match password {
                UserPassword::Plain(password) => match hash_new_password(password).await {
                    Ok(hash) => hash,
                    Err(resp) => return resp,
                },
                UserPassword::IotdbHash(hash) => duet_catalog::iotdb_password_record(&hash),
            };
            return match engine.create_peer_user(origin, &name, &password_hash).await {
                Ok(true) => TPipeTransferResp::new(status::success(), None),
                Ok(false) => pipe_status(
                    StatusCode::PipeReceiverIdempotentConflict,
                    format!("User {name} already exists: it is kept as it is here."),
                ),
                Err(e) => refused(e),
            };
        }
        ConfigPlan::UpdateUser { name, password } => match hash_new_password(password).await {
            Ok(password_hash) => vec![SchemaChange::PutUser {
                name,
                password_hash,
            }],
            Err(resp) => return resp,
        },
        ConfigPlan::DropUser { name } => vec![SchemaChange::DropUser { name }],
        // The database and TTL plans are applied by the caller; a wrapped plan was unwrapped.
        ConfigPlan::CreateDatabase { .. }
        | ConfigPlan::DeleteDatabase { .. }
        | ConfigPlan::SetTtl(_)
        | ConfigPlan::SetTtls(_)
        | ConfigPlan::PipeEnriched(_) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                "A database, TTL or nested pipe-enriched plan reached the schema plans.",
            )
        }
    };
    for change in changes {
        let resp = apply_peer_change(engine, origin.clone(), change).await;
        if resp.status.code != status::success().code {
            return resp;
        }
    }
    TPipeTransferResp::new(status::success(), None)
}

/// Hashes a password that arrived in clear (argon2 is slow on purpose: off the async workers); the
/// refusal names the rule it breaks, never the password.
async fn hash_new_password(password: String) -> Result<String, TPipeTransferResp> {
    let hashed =
        tokio::task::spawn_blocking(move || duet_catalog::hash_new_password(&password)).await;
    match hashed {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(e)) => Err(pipe_status(
            StatusCode::PipeReceiverUserConflict,
            format!("A user's password from the sender is not accepted here: {e}"),
        )),
        Err(e) => Err(pipe_status(
            StatusCode::InternalServerError,
            format!("Hashing a user's password failed: {e}"),
        )),
    }
}

async fn apply_peer_change(
    engine: &Engine,
    origin: Origin,
    change: SchemaChange,
) -> TPipeTransferResp {
    match engine.apply_unversioned_schema(origin, change).await {
        Ok(()) => TPipeTransferResp::new(status::success(), None),
        Err(e) => refused(e),
    }
}

/// A TsFile, mods or snapshot piece (types 4, 8, 101 and 201) into the connection's file
/// receiver; only type 4 replaces the previous file (IoTDB's single-file transfer).
async fn file_piece(state: &mut ReceiverState, type_: i16, body: &[u8]) -> TPipeTransferResp {
    let piece = match pipe_body::decode_file_piece(body) {
        Ok(piece) => piece,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferFileError,
                format!("Malformed file piece: {e}"),
            )
        }
    };
    let Some(files) = receiver_files(state) else {
        return pipe_status(
            StatusCode::PipeTransferFileError,
            "This receiver takes no file transfers.",
        );
    };
    files
        .piece(piece, type_ == request_type::TRANSFER_TS_FILE_PIECE)
        .await
}

/// A seal (types 5 and 9): the files are checked and made durable, then loaded; the connection's
/// directory is emptied whatever the outcome.
async fn file_seal(
    state: &mut ReceiverState,
    engine: &Engine,
    origin: Origin,
    type_: i16,
    body: &[u8],
) -> TPipeTransferResp {
    let seal = if type_ == request_type::TRANSFER_TS_FILE_SEAL {
        pipe_body::decode_file_seal_v1(body)
    } else {
        pipe_body::decode_file_seal_v2(body)
    };
    let seal = match seal {
        Ok(seal) => seal,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferFileError,
                format!("Malformed file seal: {e}"),
            )
        }
    };
    let Some(files) = receiver_files(state) else {
        return pipe_status(
            StatusCode::PipeTransferFileError,
            "This receiver takes no file transfers.",
        );
    };
    let sealed = match files.seal(seal).await {
        Ok(sealed) => sealed,
        Err(resp) => return resp,
    };
    let resp = crate::tsfile_load::load(engine, origin, &sealed).await;
    files.clear().await;
    resp
}

fn receiver_files(state: &mut ReceiverState) -> Option<&mut FileReceiver> {
    if state.files.is_none() {
        let dir = state.file_dir.clone()?;
        state.files = Some(
            FileReceiver::new(dir).with_max_bytes(match state.max_file_bytes {
                0 => crate::file_receiver::DEFAULT_MAX_FILE_BYTES,
                n => n,
            }),
        );
    }
    state.files.as_mut()
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
