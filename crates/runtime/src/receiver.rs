//! The receiving end of a pipe (`pipeTransfer` on port 6667): the handshake, then batches of entries
//! applied through the engine with their original versions and the pipe as their origin.
//!
//! **Invariant:** the receiver never holds a lock local writers need while it waits: entries go
//! through the same group-committed storage write path as client writes.

use duet_engine::schema_sync::{GrantSpec, SchemaChange, SeriesSpec};
use duet_engine::values::Cell;
use duet_engine::write::{DeviceWrite, WriteColumn};
use duet_engine::{Engine, EngineError};
use duet_proto::config_plan::{self, AuthorHolder, ConfigPlan, UserPassword};
use duet_proto::pipe_body::{self, request_type};
use duet_proto::pipe_compressed::{self, TRANSFER_COMPRESSED};
use duet_proto::pipe_tablet;
use duet_proto::plan_node::{InsertRow, RowValue, WriteNode};
use duet_proto::status::{self, StatusCode};
use duet_proto::t::{TPipeTransferReq, TPipeTransferResp, TSStatus};
use duet_proto::{config_snapshot, schema_snapshot};
use duet_storage::{Op, Origin};
use futures::future::join_all;

use crate::file_receiver::{decode_snapshot_seal, FileReceiver};
use crate::handshake::{self, pipe_status, PeerInfo, ReceiverState};
use crate::identity::ServerIdentity;
use crate::slice::{self, SliceOutcome};
use crate::transfer;

/// One thing a pipe request applies here: what the handshake user's privileges are checked against
/// before anything of the request is applied (IoTDB's receiver checks each statement it executes
/// with `AuthorityChecker.checkAuthority`, each config plan with its `checkPermission`).
#[derive(Debug, Clone, Copy)]
pub enum Applied<'a> {
    /// Points written to these measurements of a device (a series that does not exist here is
    /// created by the write).
    Points {
        device: &'a str,
        measurements: &'a [String],
    },
    /// Points deleted from these series or path patterns.
    Deletion { paths: &'a [String] },
    /// A schema change: series, devices, databases, TTLs, templates, users, roles and grants.
    Schema(&'a SchemaChange),
}

/// The handshake user's privileges as the server read them for one request.
pub trait PipeAuthority: Send + Sync {
    /// `Ok`, or the refusal the sender sees (IoTDB's 803 naming what is missing).
    fn check(&self, applied: Applied<'_>) -> Result<(), TSStatus>;
}

/// What applying a handshaken peer's request needs: this instance's engine, the origin its changes
/// are recorded with (the handshake's, `origin_of`) and the handshake user's privileges, read
/// afresh for the request.
pub struct Applying<'a> {
    pub engine: &'a Engine,
    pub origin: Origin,
    pub authority: &'a dyn PipeAuthority,
}

/// Reads a user's privileges afresh (the refusal when the user no longer exists).
pub type Authorize<'a> = &'a (dyn Fn(&str) -> Result<Box<dyn PipeAuthority>, TSStatus> + Sync);

/// What answering a connection's requests needs besides the connection's state: this instance,
/// and how the server checks a user's password (`authenticate`: the failure status, 801 or 804,
/// when it does not match) and reads what a user may apply (`authorize`).
pub struct Receiver<'a, A> {
    pub identity: &'a ServerIdentity,
    pub engine: &'a Engine,
    pub authenticate: A,
    pub authorize: Authorize<'a>,
}

/// Answers one `pipeTransfer` request on a connection. On every request that applies something the
/// handshake user's privileges are read afresh, and each write, deletion and schema change of the
/// request is checked against them before any is applied.
pub async fn receive<A>(
    state: &mut ReceiverState,
    receiver: &Receiver<'_, A>,
    req: &TPipeTransferReq,
) -> TPipeTransferResp
where
    A: Fn(&str, &str) -> Result<(), TSStatus> + Sync,
{
    let engine = receiver.engine;
    let authority = match (applies(req.type_), &state.peer) {
        (true, Some(peer)) => match (receiver.authorize)(&peer.username) {
            Ok(authority) => Some(authority),
            Err(status) => return TPipeTransferResp::new(status, None),
        },
        _ => None,
    };
    // What an applying request needs: the handshake's origin and the user's privileges (`None`
    // before a handshake).
    let applying = match (authority.as_deref(), &state.peer) {
        (Some(authority), Some(peer)) => Some(Applying {
            engine,
            origin: origin_of(peer),
            authority,
        }),
        _ => None,
    };
    // Any request but a slice ends a reassembly in progress, as on IoTDB.
    if req.type_ != slice::TRANSFER_SLICE {
        state.slices.clear();
    }
    // A request a compressed or sliced one carried is answered as if it had come alone (its own
    // privilege check included).
    if req.type_ == TRANSFER_COMPRESSED {
        return match pipe_compressed::decompress(&req.body) {
            Ok((_, TRANSFER_COMPRESSED, _)) => pipe_status(
                StatusCode::PipeTypeError,
                "A compressed request may not wrap another compressed request.",
            ),
            Ok((version, type_, body)) => {
                let inner = TPipeTransferReq::new(version, type_, body);
                Box::pin(receive(state, receiver, &inner)).await
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
            SliceOutcome::Complete(inner) => Box::pin(receive(state, receiver, &inner)).await,
        },
        request_type::HANDSHAKE_DATANODE_V2 => {
            handshake::handshake(state, receiver.identity, &req.body, &receiver.authenticate)
        }
        request_type::HANDSHAKE_DATANODE_V1 => pipe_status(
            StatusCode::PipeHandshakeError,
            "Handshake V1 is not supported; the sender must send HANDSHAKE_DATANODE_V2 (type 51).",
        ),
        transfer::DUET_TRANSFER_ENTRIES => match applying {
            None => not_handshaken(),
            Some(applying) => apply_entries(&applying, &req.body).await,
        },
        writes if WRITE_REQUESTS.contains(&writes) => match applying {
            None => not_handshaken(),
            Some(applying) => apply_iotdb_writes(&applying, req.type_, &req.body).await,
        },
        request_type::TRANSFER_CONFIG_PLAN => match applying {
            None => not_handshaken(),
            Some(applying) => apply_config_plan(&applying, &req.body).await,
        },
        request_type::TRANSFER_TS_FILE_PIECE
        | request_type::TRANSFER_TS_FILE_PIECE_WITH_MOD
        | request_type::TRANSFER_CONFIG_SNAPSHOT_PIECE
        | request_type::TRANSFER_SCHEMA_SNAPSHOT_PIECE => match &state.peer {
            None => not_handshaken(),
            Some(_) => file_piece(state, req.type_, &req.body).await,
        },
        request_type::TRANSFER_TS_FILE_SEAL
        | request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD
        | request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL
        | request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL => match applying {
            None => not_handshaken(),
            Some(applying) => file_seal(state, &applying, req.type_, &req.body).await,
        },
        other => pipe_status(
            StatusCode::PipeTypeError,
            format!("Unknown PipeRequestType {other}."),
        ),
    }
}

/// The requests that carry an IoTDB sender's writes: tablets, InsertNodes and plan nodes.
const WRITE_REQUESTS: [i16; 9] = [
    request_type::TRANSFER_TABLET_RAW,
    request_type::TRANSFER_TABLET_BATCH,
    request_type::TRANSFER_TABLET_RAW_V2,
    request_type::TRANSFER_TABLET_BATCH_V2,
    request_type::TRANSFER_TABLET_INSERT_NODE,
    request_type::TRANSFER_TABLET_INSERT_NODE_V2,
    request_type::TRANSFER_TABLET_BINARY,
    request_type::TRANSFER_TABLET_BINARY_V2,
    request_type::TRANSFER_PLAN_NODE,
];

/// Whether a request of `type_` applies something (not a handshake, a file piece, or a wrapper
/// whose inner request is checked when it is unwrapped).
fn applies(type_: i16) -> bool {
    WRITE_REQUESTS.contains(&type_)
        || matches!(
            type_,
            request_type::TRANSFER_TS_FILE_SEAL
                | request_type::TRANSFER_TS_FILE_SEAL_WITH_MOD
                | request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL
                | transfer::DUET_TRANSFER_ENTRIES
                | request_type::TRANSFER_CONFIG_PLAN
                | request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL
        )
}

/// The schema changes `authority` lets the pipe apply, and the refusal of the others (the first
/// refusal's status, naming how many were left out), for the snapshots, which apply what they may
/// as IoTDB's receiver does.
pub(crate) fn permitted(
    authority: &dyn PipeAuthority,
    changes: Vec<SchemaChange>,
) -> (Vec<SchemaChange>, Option<TPipeTransferResp>) {
    let mut kept = Vec::with_capacity(changes.len());
    let mut first_refusal: Option<TSStatus> = None;
    let mut refused = 0usize;
    for change in changes {
        match authority.check(Applied::Schema(&change)) {
            Ok(()) => kept.push(change),
            Err(status) => {
                refused += 1;
                first_refusal.get_or_insert(status);
            }
        }
    }
    let refusal = first_refusal.map(|mut status| {
        if refused > 1 {
            let message = status.message.take().unwrap_or_default();
            status.message = Some(format!(
                "{message} (and {} more change(s) of this snapshot left out for want of privileges)",
                refused - 1
            ));
        }
        TPipeTransferResp::new(status, None)
    });
    (kept, refusal)
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

/// One step of an IoTDB write request, in request order.
enum WriteStep {
    Write(DeviceWrite),
    Schema(SchemaChange),
    Delete(duet_proto::plan_node::DeleteData),
}

impl WriteStep {
    fn applied(&self) -> Applied<'_> {
        match self {
            WriteStep::Write(w) => Applied::Points {
                device: &w.device,
                measurements: &w.measurements,
            },
            WriteStep::Schema(change) => Applied::Schema(change),
            WriteStep::Delete(delete) => Applied::Deletion {
                paths: &delete.paths,
            },
        }
    }
}

/// A create node's series as a peer's schema change.
fn create_series_change(create: duet_proto::plan_node::CreateSeries) -> SchemaChange {
    SchemaChange::CreateSeries {
        device: create.device,
        aligned: create.aligned,
        series: series_specs(create.series),
    }
}

/// Measurements with IoTDB's type, encoding and compressor names as a change's series.
fn series_specs(measurements: Vec<config_plan::TemplateMeasurement>) -> Vec<SeriesSpec> {
    measurements
        .into_iter()
        .map(|(measurement, t, encoding, compressor)| SeriesSpec {
            measurement,
            data_type: t.name().to_string(),
            encoding,
            compressor,
        })
        .collect()
}

/// Applies what an IoTDB sender (or a Duet sink with `format`='tablet') transfers: tablets, InsertNodes,
/// WAL entries and deletions, in request order, through the normal write path. IoTDB's writes carry no
/// versions: the points get this instance's, so between two writes of one point the later arrival wins,
/// as on IoTDB. A request some of whose entries Duet cannot take (the table model, a plan node it does
/// not apply) or the handshake user may not apply is refused whole, before anything of it is applied.
async fn apply_iotdb_writes(applying: &Applying<'_>, type_: i16, body: &[u8]) -> TPipeTransferResp {
    let Applying {
        engine,
        origin,
        authority,
    } = applying;
    let nodes = match pipe_tablet::decode_write_request(type_, body) {
        Ok(nodes) => nodes,
        Err(e) => return undecodable(format!("write request (type {type_})"), e),
    };
    let mut steps = Vec::new();
    for node in nodes {
        match node {
            WriteNode::Tablets(tablets) => steps.extend(tablets.into_iter().map(|t| {
                WriteStep::Write(DeviceWrite {
                    device: t.device,
                    aligned: t.aligned,
                    measurements: t.measurements,
                    columns: t.columns.into_iter().map(WriteColumn::Typed).collect(),
                    times: t.times,
                })
            })),
            WriteNode::Rows(rows) => {
                steps.extend(rows.into_iter().map(|r| WriteStep::Write(row_write(r))))
            }
            WriteNode::CreateSeries(create) => {
                steps.push(WriteStep::Schema(create_series_change(create)))
            }
            WriteNode::CreateSeriesOnDevices(groups) => steps.extend(
                groups
                    .into_iter()
                    .map(|g| WriteStep::Schema(create_series_change(g))),
            ),
            WriteNode::ActivateTemplate(devices) => {
                steps.extend(devices.into_iter().map(|device| {
                    WriteStep::Schema(SchemaChange::ActivateTemplate {
                        device,
                        made_on: None,
                    })
                }))
            }
            WriteNode::Delete(delete) => steps.push(WriteStep::Delete(delete)),
        }
    }
    if let Err(status) = steps.iter().try_for_each(|s| authority.check(s.applied())) {
        return TPipeTransferResp::new(status, None);
    }
    // Consecutive writes go as one request; a schema change or a deletion lands after the writes
    // before it, as the sender ordered them.
    let mut writes = Vec::new();
    for step in steps {
        let done = match step {
            WriteStep::Write(w) => {
                writes.push(w);
                continue;
            }
            WriteStep::Schema(change) => {
                match write_all(engine, origin, std::mem::take(&mut writes)).await {
                    Ok(()) => engine
                        .apply_unversioned_schema(origin.clone(), change)
                        .await
                        .map_err(refused),
                    Err(resp) => Err(resp),
                }
            }
            WriteStep::Delete(delete) => {
                match write_all(engine, origin, std::mem::take(&mut writes)).await {
                    Ok(()) => engine
                        .delete_data_from(origin.clone(), &delete.paths, delete.start, delete.end)
                        .await
                        .map(|_| ())
                        .map_err(refused),
                    Err(resp) => Err(resp),
                }
            }
        };
        if let Err(resp) = done {
            return resp;
        }
    }
    match write_all(engine, origin, writes).await {
        Ok(()) => TPipeTransferResp::new(status::success(), None),
        Err(resp) => resp,
    }
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

/// A ConfigNode plan (type 200) an IoTDB sender sends for `schema.database`, `schema.ttl`,
/// `schema.timeseries` and `auth`: applied as the peer schema changes it means here (versioned now,
/// with the pipe's origin), once the handshake user may apply every one of them.
async fn apply_config_plan(applying: &Applying<'_>, body: &[u8]) -> TPipeTransferResp {
    let Applying {
        engine,
        origin,
        authority,
    } = applying;
    let plan = match config_plan::decode_config_plan(body) {
        Ok(plan) => plan,
        Err(e) => return undecodable("config plan", e),
    };
    // A plan a pipe receiver executed on the sender means here what the plan itself means.
    let plan = match plan {
        ConfigPlan::PipeEnriched(inner) => *inner,
        plan => plan,
    };
    // Root is this instance's own: no plan creates, changes, drops or grants to it.
    if names_root(&plan) {
        tracing::warn!("an IoTDB user plan for root was received; root stays as it is here");
        return pipe_status(
            StatusCode::PipeReceiverIdempotentConflict,
            "A user plan for root is not applied: root is this instance's own (IoTDB's \
             receiver never lets a pipe change or drop its superuser).",
        );
    }
    let changes = match plan {
        // IoTDB's receiver keeps an existing user as it is (its 'user already exists' answer, which
        // its pipe receiver turns into 1809): a creation never overwrites an account here.
        ConfigPlan::CreateUser { name, password } => {
            return create_user(applying, name, password).await
        }
        plan => match config_plan_changes(engine, plan).await {
            Ok(changes) => changes,
            Err(resp) => return resp,
        },
    };
    if let Err(status) = changes
        .iter()
        .try_for_each(|c| authority.check(Applied::Schema(c)))
    {
        return TPipeTransferResp::new(status, None);
    }
    for change in changes {
        let resp = apply_peer_change(engine, origin.clone(), change).await;
        if resp.status.code != status::success().code {
            return resp;
        }
    }
    TPipeTransferResp::new(status::success(), None)
}

/// A user an IoTDB peer created: with a password in clear it is stored with this instance's hash
/// of it; with IoTDB's hash (`CreateUserWithRawPassword`) that hash is kept as its own kind, which
/// logins verify as IoTDB does. An existing account is kept (1809).
async fn create_user(
    applying: &Applying<'_>,
    name: String,
    password: UserPassword,
) -> TPipeTransferResp {
    let password_hash = match password {
        UserPassword::Plain(password) => match hash_new_password(password).await {
            Ok(hash) => hash,
            Err(resp) => return resp,
        },
        UserPassword::IotdbHash(hash) => duet_catalog::iotdb_password_record(&hash),
    };
    let change = SchemaChange::PutUser {
        name: name.clone(),
        password_hash: password_hash.clone(),
    };
    if let Err(status) = applying.authority.check(Applied::Schema(&change)) {
        return TPipeTransferResp::new(status, None);
    }
    let created = applying
        .engine
        .create_peer_user(applying.origin.clone(), &name, &password_hash)
        .await;
    match created {
        Ok(true) => TPipeTransferResp::new(status::success(), None),
        Ok(false) => pipe_status(
            StatusCode::PipeReceiverIdempotentConflict,
            format!("User {name} already exists: it is kept as it is here."),
        ),
        Err(e) => refused(e),
    }
}

/// The peer schema changes a config plan (other than a user's creation) means here. Deletions and
/// deactivations name path patterns on IoTDB; they are resolved against this instance's schema
/// (what matches nothing here is nothing to do).
async fn config_plan_changes(
    engine: &Engine,
    plan: ConfigPlan,
) -> Result<Vec<SchemaChange>, TPipeTransferResp> {
    Ok(match plan {
        ConfigPlan::CreateDatabase { name } => vec![SchemaChange::CreateDatabase { path: name }],
        ConfigPlan::DeleteDatabase { name } => vec![SchemaChange::DropDatabase {
            path: name,
            series: Vec::new(),
        }],
        ConfigPlan::SetTtl(rule) => vec![ttl_change(rule)],
        ConfigPlan::SetTtls(rules) => rules.into_iter().map(ttl_change).collect(),
        ConfigPlan::CreateTemplate {
            name,
            aligned,
            measurements,
        } => vec![SchemaChange::CreateTemplate {
            name,
            aligned,
            measurements: series_specs(measurements),
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
                devices.extend(
                    engine
                        .devices_using_templates(&pattern, &templates)
                        .map_err(refused)?,
                );
            }
            devices.sort();
            devices.dedup();
            if devices.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChange::DeactivateTemplate { devices }]
            }
        }
        ConfigPlan::DeleteTimeSeries { patterns } => {
            let series = engine.series_for_delete(&patterns).map_err(refused)?;
            if series.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChange::DeleteSeries { series }]
            }
        }
        ConfigPlan::UpdateUser { name, password } => vec![SchemaChange::PutUser {
            name,
            password_hash: hash_new_password(password).await?,
        }],
        ConfigPlan::DropUser { name } => vec![SchemaChange::DropUser { name }],
        ConfigPlan::CreateRole { name } => vec![SchemaChange::PutRole { name }],
        ConfigPlan::DropRole { name } => vec![SchemaChange::DropRole { name }],
        ConfigPlan::Grant {
            holder,
            privileges,
            paths,
            grant_option,
        } => vec![
            grants_after(engine, &holder, &privileges, &paths, Some(grant_option))
                .map_err(|resp| *resp)?,
        ],
        ConfigPlan::Revoke {
            holder,
            privileges,
            paths,
        } => vec![grants_after(engine, &holder, &privileges, &paths, None).map_err(|resp| *resp)?],
        ConfigPlan::GrantRoleToUser { user, role } => {
            vec![
                authority_after(engine, &AuthorHolder::User(user), |_, roles| {
                    if !roles.contains(&role) {
                        roles.push(role.clone());
                        roles.sort();
                    }
                })
                .map_err(|resp| *resp)?,
            ]
        }
        ConfigPlan::RevokeRoleFromUser { user, role } => {
            vec![
                authority_after(engine, &AuthorHolder::User(user), |_, roles| {
                    roles.retain(|r| *r != role)
                })
                .map_err(|resp| *resp)?,
            ]
        }
        // A user's creation is applied by the caller; a wrapped plan was unwrapped.
        ConfigPlan::CreateUser { .. } | ConfigPlan::PipeEnriched(_) => {
            return Err(pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                "A user creation or a nested pipe-enriched plan reached the schema plans.",
            ))
        }
    })
}

/// Whether a user plan names root (as the user it creates, changes, drops or grants to).
fn names_root(plan: &ConfigPlan) -> bool {
    let user = match plan {
        ConfigPlan::CreateUser { name, .. }
        | ConfigPlan::UpdateUser { name, .. }
        | ConfigPlan::DropUser { name }
        | ConfigPlan::GrantRoleToUser { user: name, .. }
        | ConfigPlan::RevokeRoleFromUser { user: name, .. }
        | ConfigPlan::Grant {
            holder: AuthorHolder::User(name),
            ..
        }
        | ConfigPlan::Revoke {
            holder: AuthorHolder::User(name),
            ..
        } => name,
        _ => return false,
    };
    user == duet_catalog::ROOT_USER
}

/// Each privilege of a grant or revocation plan (IoTDB 2.0's `PrivilegeType` ordinals) with each
/// path it is on: a global privilege on `root.**` (IoTDB stores global privileges without a path;
/// Duet on `root.**`, as it lists them). A relational privilege is the table model's: refused.
fn privilege_paths(
    privileges: &[i32],
    paths: &[String],
) -> Result<Vec<(&'static str, String)>, Box<TPipeTransferResp>> {
    let mut out = Vec::new();
    for ordinal in privileges {
        let Some(privilege) = duet_catalog::Privilege::from_iotdb_ordinal(*ordinal) else {
            return Err(Box::new(pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!(
                    "A privilege plan names privilege {ordinal}, which is not one of the tree \
                     model's: Duet takes the tree model only."
                ),
            )));
        };
        if privilege.is_path_privilege() {
            out.extend(paths.iter().map(|p| (privilege.name(), p.clone())));
        } else {
            out.push((privilege.name(), duet_catalog::GLOBAL_PATH.to_string()));
        }
    }
    Ok(out)
}

/// A user's or role's whole state after a grant (`Some(grant option)`) or a revocation (`None`)
/// of `privileges` on `paths`. A grant of what is held already keeps the grant option either had;
/// a revocation, as a REVOKE here, takes the grants below a prefix's too.
fn grants_after(
    engine: &Engine,
    holder: &AuthorHolder,
    privileges: &[i32],
    paths: &[String],
    grant: Option<bool>,
) -> Result<SchemaChange, Box<TPipeTransferResp>> {
    let named = privilege_paths(privileges, paths)?;
    authority_after(engine, holder, |grants, _| {
        for (privilege, path) in named {
            match grant {
                Some(grant_option) => add_grant(grants, privilege, path, grant_option),
                None => {
                    let below = path.strip_suffix("**").map(str::to_string);
                    grants.retain(|g| {
                        g.privilege != privilege
                            || !(g.path == path
                                || below.as_deref().is_some_and(|p| g.path.starts_with(p)))
                    });
                }
            }
        }
    })
}

/// Adds one grant to a holder's grants: what is held already keeps the grant option either had.
fn add_grant(grants: &mut Vec<GrantSpec>, privilege: &str, path: String, grant_option: bool) {
    match grants
        .iter_mut()
        .find(|g| g.privilege == privilege && g.path == path)
    {
        Some(held) => held.grant_option |= grant_option,
        None => grants.push(GrantSpec {
            privilege: privilege.to_string(),
            path,
            grant_option,
        }),
    }
}

/// A user's or role's whole state after the grants of an IoTDB snapshot file — (privilege name,
/// path, grant option), a global privilege on `root.**` — and, for a user, `roles` are added.
pub(crate) fn authority_with(
    engine: &Engine,
    holder: &AuthorHolder,
    grants: Vec<(&'static str, String, bool)>,
    roles: &[String],
) -> Result<SchemaChange, Box<TPipeTransferResp>> {
    authority_after(engine, holder, |held, held_roles| {
        for (privilege, path, grant_option) in grants {
            add_grant(held, privilege, path, grant_option);
        }
        for role in roles {
            if !held_roles.contains(role) {
                held_roles.push(role.clone());
            }
        }
        held_roles.sort();
    })
}

/// The whole state of a user or role after an IoTDB grant, revocation or role plan, from its state
/// here — what Duet's own GRANT and REVOKE replicate (a peer's change, versioned on arrival and
/// with the pipe's origin, so a double-living pipe never sends it back). One that does not exist
/// here yet is refused (1810), so the sender sends the plan again once its creation arrived.
fn authority_after(
    engine: &Engine,
    holder: &AuthorHolder,
    change: impl FnOnce(&mut Vec<GrantSpec>, &mut Vec<String>),
) -> Result<SchemaChange, Box<TPipeTransferResp>> {
    let (kind, name) = match holder {
        AuthorHolder::User(name) => ("user", name),
        AuthorHolder::Role(name) => ("role", name),
    };
    match engine
        .authority_state(kind, name)
        .map_err(|e| Box::new(refused(e)))?
    {
        Some(SchemaChange::PutAuthority {
            kind,
            name,
            mut grants,
            mut roles,
        }) => {
            change(&mut grants, &mut roles);
            Ok(SchemaChange::PutAuthority {
                kind,
                name,
                grants,
                roles,
            })
        }
        _ => Err(Box::new(pipe_status(
            StatusCode::PipeReceiverUserConflict,
            format!("The {kind} {name} of a privilege plan does not exist here (yet)."),
        ))),
    }
}

/// A `SetTTLPlan` as a change: a database's rule covers what is under it (IoTDB's isDataBase);
/// IoTDB's UNSET TTL is a TTL of -1 (its NULL_TTL), and no TTL of 0 or less is a rule.
fn ttl_change(rule: config_plan::TtlRule) -> SchemaChange {
    let patterns = if rule.database {
        vec![rule.pattern.clone(), format!("{}.**", rule.pattern)]
    } else {
        vec![rule.pattern]
    };
    if rule.ttl_ms <= 0 {
        SchemaChange::UnsetTtl { patterns }
    } else {
        SchemaChange::SetTtl {
            patterns,
            ttl_ms: rule.ttl_ms,
        }
    }
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
        Err(e) => return malformed_file("piece", e),
    };
    let files = match receiver_files(state) {
        Ok(files) => files,
        Err(resp) => return *resp,
    };
    files
        .piece(piece, type_ == request_type::TRANSFER_TS_FILE_PIECE)
        .await
}

/// A seal: a TsFile's (types 5 and 9: the files are checked and made durable, then loaded) or a
/// schema-region or ConfigNode snapshot's (applied); the connection's directory is emptied
/// whatever the outcome of the load.
async fn file_seal(
    state: &mut ReceiverState,
    applying: &Applying<'_>,
    type_: i16,
    body: &[u8],
) -> TPipeTransferResp {
    let files = match receiver_files(state) {
        Ok(files) => files,
        Err(resp) => return *resp,
    };
    let resp = match type_ {
        request_type::TRANSFER_CONFIG_SNAPSHOT_SEAL => {
            match decode_snapshot_seal(body, "config", config_snapshot::config_snapshot_seal) {
                Ok((seal, params)) => {
                    crate::config_snapshot_load::seal(files, applying, seal, params).await
                }
                Err(resp) => *resp,
            }
        }
        request_type::TRANSFER_SCHEMA_SNAPSHOT_SEAL => {
            match decode_snapshot_seal(body, "schema", schema_snapshot::schema_snapshot_seal) {
                Ok((seal, params)) => {
                    crate::schema_snapshot_load::seal(files, applying, seal, params).await
                }
                Err(resp) => *resp,
            }
        }
        _ => {
            let seal = if type_ == request_type::TRANSFER_TS_FILE_SEAL {
                pipe_body::decode_file_seal_v1(body)
            } else {
                pipe_body::decode_file_seal_v2(body)
            };
            let seal = match seal {
                Ok(seal) => seal,
                Err(e) => return malformed_file("seal", e),
            };
            match files.seal(seal).await {
                Ok(sealed) => crate::tsfile_load::load(applying, &sealed).await,
                Err(resp) => return resp,
            }
        }
    };
    files.clear().await;
    resp
}

/// The refusal of a request body that does not decode as the `what` its type says it is.
fn undecodable(what: impl std::fmt::Display, e: impl std::fmt::Display) -> TPipeTransferResp {
    pipe_status(
        StatusCode::PipeTransferExecuteStatementError,
        format!("Malformed or unsupported {what}: {e}"),
    )
}

fn malformed_file(what: &str, e: impl std::fmt::Display) -> TPipeTransferResp {
    pipe_status(
        StatusCode::PipeTransferFileError,
        format!("Malformed file {what}: {e}"),
    )
}

/// The connection's file receiver, made on first use; the refusal when this receiver takes no
/// files (it has no directory for them).
fn receiver_files(state: &mut ReceiverState) -> Result<&mut FileReceiver, Box<TPipeTransferResp>> {
    let no_files = || {
        Box::new(pipe_status(
            StatusCode::PipeTransferFileError,
            "This receiver takes no file transfers.",
        ))
    };
    if state.files.is_none() {
        let dir = state.file_dir.clone().ok_or_else(no_files)?;
        state.files = Some(
            FileReceiver::new(dir).with_max_bytes(match state.max_file_bytes {
                0 => crate::file_receiver::DEFAULT_MAX_FILE_BYTES,
                n => n,
            }),
        );
    }
    state.files.as_mut().ok_or_else(no_files)
}

/// The status a sender sees for a batch this instance could not apply (pipe reference §7.2).
fn refused(e: EngineError) -> TPipeTransferResp {
    pipe_status(
        refusal_code(&e),
        format!("Failed to apply a replicated batch: {e}"),
    )
}

/// The code of a refused change: a conflict with this instance's schema is the sender's to skip
/// (1810); anything else is this instance's failure.
pub(crate) fn refusal_code(e: &EngineError) -> StatusCode {
    match e {
        EngineError::TypeMismatch(_)
        | EngineError::IllegalPath(_)
        | EngineError::DatabaseExists(_) => StatusCode::PipeReceiverUserConflict,
        _ => StatusCode::InternalServerError,
    }
}

/// Applies a batch once the handshake user may apply all of it (refused whole otherwise); all
/// entries are submitted together so they share group commits. Order does not matter: the highest
/// version wins whatever order entries are applied in.
async fn apply_entries(applying: &Applying<'_>, body: &[u8]) -> TPipeTransferResp {
    let entries = match transfer::decode_entries(body) {
        Ok(e) => e,
        Err(e) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("Malformed Duet batch: {e}"),
            )
        }
    };
    if let Err(status) = entries
        .iter()
        .try_for_each(|e| check_entry(applying.authority, &e.ops))
    {
        return TPipeTransferResp::new(status, None);
    }
    let results = join_all(entries.into_iter().map(|e| {
        applying
            .engine
            .apply_replicated(applying.origin.clone(), e.version, e.ops)
    }))
    .await;
    match results.into_iter().find_map(Result::err) {
        None => TPipeTransferResp::new(status::success(), None),
        Some(e) => refused(e),
    }
}

/// Checks what one Duet entry applies: its inserts as writes, its schema changes, and its
/// tombstones as deletions — unless the entry is a schema change's, whose tombstones are what the
/// change removes (a dropped database's or series' points) and need what the change needs. A
/// schema change that does not decode is left to the apply, which refuses it.
fn check_entry(authority: &dyn PipeAuthority, ops: &[Op]) -> Result<(), TSStatus> {
    let schema_entry = ops.iter().any(|op| matches!(op, Op::Meta(_)));
    for op in ops {
        match op {
            Op::Insert(insert) => authority.check(Applied::Points {
                device: &insert.device,
                measurements: &insert.measurements,
            })?,
            Op::Delete(delete) if !schema_entry => authority.check(Applied::Deletion {
                paths: &delete.series,
            })?,
            Op::Delete(_) => {}
            Op::Meta(bytes) => {
                if let Ok(change) = SchemaChange::decode(bytes) {
                    authority.check(Applied::Schema(&change))?;
                }
            }
        }
    }
    Ok(())
}
