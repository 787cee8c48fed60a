//! One client's session on one connection: login state, time zone, statement ids, open query results,
//! and the pipe receiver state. [`Session::handle`] turns each decoded request into its reply.
//!
//! Like IoTDB's Java server, the session is found from the connection, never from the ids in a
//! request: the Python client swaps `sessionId` and `statementId` in `fetchResultsV2` and
//! `closeOperation` (reference §5.4), and results are found by `queryId` alone.
//!
//! A query's work (planning, and every page) runs on a blocking thread, never on the async workers
//! that serve other connections and logins. Each query has a [`QueryControl`]: its memory budget
//! (`query_memory_bytes`), its deadline (the request's `timeout`, else `query_timeout_threshold`,
//! counted from the query's start to its last page), and a cancellation flag that `closeOperation`,
//! `cancelOperation`, the session's end, and a dropped request (the connection went away while the
//! query ran) set. Pages are cut by their encoded size, so no reply exceeds the client's frame limit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use duet_engine::limits::{QueryControl, QueryControlRef, QueryLimits};
use duet_engine::query::{block_overhead, table_row_bytes};
use duet_parser::{Select, Statement};
use duet_proto::codec::MAX_REPLY_FRAME_BYTES;
use duet_proto::query_data_set::QueryDataSetBuilder;
use duet_proto::rpc::{ExecuteKind, NotSupportedReply, Reply, Request, ResultFormat};
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_proto::tsblock::{self, DEFAULT_ROWS_PER_BLOCK};
use duet_proto::types::{DataType, Table};
use duet_runtime::handshake::ReceiverState;
use tracing::{debug, info, warn};

use crate::authz::{self, Access};
use crate::instance::{ConnectionInfo, InstanceRef, BUILD_INFO, VERSION};
use crate::rpc_queries;
use crate::statements::{self, Output};
use crate::status_codes::StatementError;
use crate::templates;
use crate::writes;

/// Rows per page when a client asks for `fetchSize <= 0` (IoTDB's `maxTsBlockLineNumber`).
const DEFAULT_FETCH_SIZE: usize = 1000;

/// Reply pages are filled up to about half the client's frame limit.
const PAGE_BYTE_TARGET: usize = MAX_REPLY_FRAME_BYTES / 2;

/// What a reply frame keeps free beyond its pages and the estimated rest of the reply (status,
/// flags, list headers).
const FRAME_MARGIN: usize = 64 * 1024;

/// A V1 `TSQueryDataSet` takes up to 8 times the bytes of the TsBlocks it is built from (a BOOLEAN is a
/// bit in a TsBlock and a byte in V1), so V1 pages are cut that much smaller.
const V1_EXPANSION: usize = 8;

/// A query result not yet fully fetched.
enum OpenQuery {
    /// A small result computed at once; `cursor` is the next row to send.
    Table { table: Table, cursor: usize },
    /// A result the engine produces page by page; `deferred` holds an encoded block that did not fit
    /// the last reply (a large row after a large header), sent first by the next fetch.
    Stream {
        stream: duet_engine::QueryStream,
        deferred: Option<Vec<u8>>,
    },
}

/// Cancels a query when dropped armed: the request future that waits for the query's blocking work
/// is dropped when its connection goes away, and then the work stops at its next check.
struct CancelOnDrop(Option<QueryControlRef>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            control.cancel();
        }
    }
}

/// Runs a query's `work` on a blocking thread, cancelling the query if the caller stops waiting.
async fn off_the_workers<T: Send + 'static>(
    control: &QueryControlRef,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StatementError> {
    let guard = CancelOnDrop(Some(control.clone()));
    let watched = control.clone();
    let result = tokio::task::spawn_blocking(move || {
        let done = work();
        // The one sign, when a client went away, that the work it left behind has ended: nobody
        // waits for `done` then.
        if watched.is_cancelled() {
            debug!(
                elapsed_ms = u64::try_from(watched.elapsed().as_millis()).unwrap_or(u64::MAX),
                "a cancelled query's work stopped"
            );
        }
        done
    })
    .await;
    guard.disarm();
    result.map_err(|e| {
        StatementError::new(
            StatusCode::InternalServerError,
            format!("the query's task failed: {e}"),
        )
    })
}

/// Runs a `SELECT LAST`'s planning on this thread, taken off the async workers with
/// `block_in_place` (the runtime hands this worker's other tasks to another thread first); on a
/// runtime without worker threads the work comes back, for the blocking pool. A LAST is a few summary lookups per series (a
/// large one returns a stream after resolving its series, paged on the blocking pool as any): the
/// hop to the blocking pool and back, two thread wake-ups, cost more than the work itself on an
/// idle machine — most of a LAST's latency.
fn in_place<T, F: FnOnce() -> T>(work: F) -> Result<T, F> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(work)),
        _ => Err(work),
    }
}

/// A statement's `SELECT` on this session: the audit log's view, or the engine's query planned off the
/// async workers (planning reads the schema and may take a while) under the session's limits.
struct SessionQueries<'a> {
    session: &'a Session,
    access: &'a Access,
    request_timeout_ms: Option<i64>,
}

impl statements::QueryPath for SessionQueries<'_> {
    fn select<'a>(&'a self, select: &'a Select) -> statements::QueryFuture<'a> {
        Box::pin(async move {
            if crate::audit::AuditLog::targets(select) {
                crate::audit::select(&self.session.instance, self.access, select).await
            } else {
                self.session.select(select, self.request_timeout_ms).await
            }
        })
    }
}

/// Upper bound of a reply's bytes besides its pages: for `executeStatement`, the column names (twice:
/// `columns` and `columnNameIndexMap`) and types; for fetches, nothing beyond the margin.
fn header_bytes(names: &[String], types: &[DataType]) -> usize {
    1024 + names.iter().map(|n| 2 * (n.len() + 4) + 4).sum::<usize>()
        + types.iter().map(|t| t.name().len() + 4).sum::<usize>()
}

fn too_large_row(bytes: usize) -> StatementError {
    StatementError::new(
        StatusCode::QueryProcessError,
        format!(
            "a row of the result takes {bytes} bytes, more than fit in one reply ({MAX_REPLY_FRAME_BYTES} bytes, the client's frame limit); select fewer or smaller columns"
        ),
    )
}

/// The state of one connection's session.
pub struct Session {
    instance: InstanceRef,
    /// The logged-in user; `None` before `openSession` succeeds and after `closeSession`.
    user: Option<String>,
    /// What the user may do, and the catalog's privileges generation it was loaded at: reloaded on
    /// the first request after any change of users, roles or grants, so a revocation or a dropped
    /// user takes effect on open sessions at their next request.
    access: Option<(u64, Arc<Access>)>,
    session_id: i64,
    /// The session's time zone as IoTDB reports it (`getTimeZone`); only ids `Zone::parse` accepts.
    zone_id: String,
    queries: HashMap<i64, OpenQuery>,
    receiver: ReceiverState,
    peer: String,
    /// The unsupported methods this session was already warned about (each is logged once).
    warned: HashSet<&'static str>,
    /// What the SQL call being answered is, for its latency metric.
    sql_kind: crate::metrics::SqlKind,
}

fn not_logged_in() -> t::TSStatus {
    status::failure(
        StatusCode::NotLogin,
        "Log in failed. Either you are not authorized or the session has timed out.",
    )
}

/// The answer to a failed login: one status for an unknown user and a wrong password (IoTDB's
/// 801 "Authentication failed."), so nobody learns which user names exist.
fn login_failure(e: duet_catalog::Error) -> t::TSStatus {
    match e {
        duet_catalog::Error::UserNotExist(_) | duet_catalog::Error::WrongPassword => {
            crate::status_codes::failure(duet_catalog::Error::WrongPassword)
        }
        other => crate::status_codes::failure(other),
    }
}

/// Checks a password on a blocking thread: argon2 takes tens of milliseconds by design.
async fn authenticate_off_the_workers(
    instance: &InstanceRef,
    user: &str,
    password: &str,
) -> Result<(), t::TSStatus> {
    let catalog = instance.catalog.clone();
    let (user, password) = (user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || catalog.authenticate(&user, &password))
        .await
        .map_err(|e| {
            status::failure(
                StatusCode::InternalServerError,
                format!("password check failed: {e}"),
            )
        })?
        .map_err(login_failure)
}

impl Session {
    pub fn new(instance: InstanceRef, peer: String) -> Session {
        let receiver = ReceiverState::with_file_dir(
            instance.new_receiver_dir(),
            instance.config.pipe_receiver_max_file_bytes,
        );
        Session {
            instance,
            user: None,
            access: None,
            session_id: -1,
            zone_id: "UTC".to_string(),
            queries: HashMap::new(),
            receiver,
            peer,
            warned: HashSet::new(),
            sql_kind: crate::metrics::SqlKind::default(),
        }
    }

    /// The state every connection shares.
    pub fn instance(&self) -> &InstanceRef {
        &self.instance
    }

    /// Answers one request and records its latency by kind; `None` means the method is unknown to
    /// this server.
    pub async fn handle(&mut self, request: Request) -> Option<Reply> {
        let kind = crate::metrics::RequestKind::of(&request);
        let started = std::time::Instant::now();
        let audited = self
            .instance
            .audit
            .is_enabled()
            .then(|| crate::audit::describe_rpc(&request))
            .flatten();
        let reply = self.answer(request).await;
        let status = match &reply {
            Some(Reply::Status(status)) => Some(status),
            Some(Reply::Execute(resp)) => Some(&resp.status),
            _ => None,
        };
        if let (Some(what), Some(user), Some(status)) = (&audited, &self.user, status) {
            self.instance.audit.rpc(user, &self.peer, what, status);
        }
        let kind = match kind {
            crate::metrics::RequestKind::Sql => self.sql_kind.take(),
            other => Some(other),
        };
        if let Some(kind) = kind {
            self.instance.metrics.observe(kind, started.elapsed());
        }
        reply
    }

    async fn answer(&mut self, request: Request) -> Option<Reply> {
        if let Request::OpenSession(req) = &request {
            return Some(Reply::OpenSession(self.open(req).await));
        }
        if let Request::PipeTransfer(req) = &request {
            return Some(Reply::PipeTransfer(self.pipe_transfer(req).await));
        }
        if let Request::GetProperties = &request {
            return Some(Reply::Properties(self.properties()));
        }
        match &request {
            Request::Unknown => return None,
            // IoTDB answers these without a login: a connection check, and refusals.
            Request::TestConnectionEmptyRpc => return Some(Reply::Status(status::success())),
            Request::NotSupported { method, reply } => {
                return Some(self.not_supported(method, *reply));
            }
            _ => {}
        }
        let access = match self.user.clone() {
            Some(user) => self.refresh_access(&user),
            None => None,
        };
        let Some(access) = access else {
            return Some(match request {
                Request::Execute { .. }
                | Request::RawDataQuery { .. }
                | Request::LastDataQuery { .. }
                | Request::FastLastDataQueryForOnePrefixPath(_)
                | Request::FastLastDataQueryForOneDevice(_)
                | Request::AggregationQuery { .. }
                | Request::GroupByQueryInterval(_) => Reply::Execute(execute_resp(not_logged_in())),
                Request::FetchAllConnectionsInfo => {
                    Reply::ConnectionsInfo(t::TSConnectionInfoResp::new(Vec::new()))
                }
                Request::GetBackupConfiguration => Reply::BackupConfiguration(
                    t::TSBackupConfigurationResp::new(not_logged_in(), None, None, None),
                ),
                Request::FetchResults(_) | Request::FetchResultsV1(_) => {
                    Reply::Fetch(t::TSFetchResultsResp::new(
                        not_logged_in(),
                        false,
                        true,
                        None,
                        None,
                        None,
                        None,
                    ))
                }
                Request::GetTimeZone { .. } => {
                    Reply::TimeZone(t::TSGetTimeZoneResp::new(not_logged_in(), String::new()))
                }
                Request::RequestStatementId { .. } => Reply::StatementId(-1),
                Request::QuerySchemaTemplate(req) => Reply::QueryTemplate(
                    t::TSQueryTemplateResp::new(not_logged_in(), req.query_type, None, None, None),
                ),
                _ => Reply::Status(not_logged_in()),
            });
        };
        if let Err(e) = authz::rpc_needs(&access, &self.instance.engine, &request) {
            debug!(peer = %self.peer, code = e.code.code(), "request refused: {}", e.message);
            return Some(match request {
                Request::QuerySchemaTemplate(req) => Reply::QueryTemplate(
                    t::TSQueryTemplateResp::new(e.to_status(), req.query_type, None, None, None),
                ),
                Request::FetchAllConnectionsInfo => {
                    Reply::ConnectionsInfo(t::TSConnectionInfoResp::new(Vec::new()))
                }
                _ => Reply::Status(e.to_status()),
            });
        }
        let instance = self.instance.clone();
        let engine = &instance.engine;
        Some(match request {
            Request::RequestStatementId { .. } => {
                Reply::StatementId(self.instance.new_statement_id())
            }
            // As IoTDB: an id `ZoneId.of` refuses is an error and the session keeps its zone.
            Request::SetTimeZone(req) => match duet_engine::time::Zone::parse(&req.time_zone) {
                Ok(zone) => {
                    self.zone_id = zone.id().to_string();
                    Reply::Status(status::success())
                }
                Err(why) => Reply::Status(status::failure(StatusCode::SetTimeZoneError, why)),
            },
            Request::GetTimeZone { .. } => Reply::TimeZone(t::TSGetTimeZoneResp::new(
                status::success(),
                self.zone_id.clone(),
            )),
            Request::Execute { kind, format, req } => {
                Reply::Execute(self.execute(&access, kind, format, &req).await)
            }
            Request::RawDataQuery { format, req } => {
                self.rpc_query(rpc_queries::raw_data(&req), &req, format, None)
                    .await
            }
            Request::LastDataQuery { format, req } => {
                let legal = req.legal_path_nodes.unwrap_or(false);
                let select = rpc_queries::last_data(&req.paths, req.time, legal);
                self.rpc_query(select, &req, format, None).await
            }
            Request::FastLastDataQueryForOnePrefixPath(req) => {
                let select = rpc_queries::fast_last_for_prefix(&req.prefixes);
                self.rpc_query(select, &req, ResultFormat::TsBlocks, None)
                    .await
            }
            Request::FastLastDataQueryForOneDevice(req) => {
                let select = rpc_queries::fast_last_for_device(&req);
                self.rpc_query(select, &req, ResultFormat::TsBlocks, None)
                    .await
            }
            Request::AggregationQuery { format, req } => {
                self.rpc_query(rpc_queries::aggregation(&req), &req, format, None)
                    .await
            }
            Request::GroupByQueryInterval(req) => {
                // IoTDB answers this one in the V1 layout, its column named by the aggregation.
                let (select, name) = match rpc_queries::group_by_interval(&req) {
                    Ok((select, name)) => (Ok(select), Some(name)),
                    Err(e) => (Err(e), None),
                };
                self.rpc_query(select, &req, ResultFormat::QueryDataSet, name)
                    .await
            }
            Request::TestInsert { method } => {
                // IoTDB's test inserts measure the RPC alone: decoded, acknowledged, never written.
                debug!(peer = %self.peer, method, "test insert: decoded, nothing written");
                Reply::Status(status::success())
            }
            Request::FetchAllConnectionsInfo => {
                Reply::ConnectionsInfo(t::TSConnectionInfoResp::new(
                    self.instance
                        .sessions()
                        .into_iter()
                        .map(|c| {
                            t::TSConnectionInfo::new(
                                c.user,
                                c.login_ms,
                                c.peer,
                                t::TSConnectionType::THRIFT_BASED,
                            )
                        })
                        .collect::<Vec<_>>(),
                ))
            }
            Request::GetBackupConfiguration => Reply::BackupConfiguration(
                t::TSBackupConfigurationResp::new(status::success(), None, None, None),
            ),
            Request::ExecuteBatch(req) => {
                Reply::Status(self.execute_batch(&access, &req.statements).await)
            }
            Request::FetchResults(req) => {
                Reply::Fetch(self.fetch(&req, ResultFormat::TsBlocks).await)
            }
            Request::FetchResultsV1(req) => {
                Reply::Fetch(self.fetch(&req, ResultFormat::QueryDataSet).await)
            }
            Request::CloseOperation(req) => {
                match req.query_id {
                    Some(id) => self.close_query(id, "closeOperation"),
                    // Without a query id the whole statement closes: every result it opened.
                    None => {
                        let ids: Vec<i64> = self.queries.keys().copied().collect();
                        for id in ids {
                            self.close_query(id, "closeOperation of its statement");
                        }
                    }
                }
                Reply::Status(status::success())
            }
            Request::CancelOperation(req) => {
                self.close_query(req.query_id, "cancelOperation");
                Reply::Status(status::success())
            }
            Request::CloseSession(_) => {
                info!(peer = %self.peer, session = self.session_id, "session closed");
                self.close();
                Reply::Status(status::success())
            }
            Request::SetStorageGroup { database, .. } => {
                Reply::Status(writes::set_storage_group(engine, &database).await)
            }
            Request::CreateTimeseries(r) => {
                Reply::Status(writes::create_timeseries(engine, &r).await)
            }
            Request::CreateAlignedTimeseries(r) => {
                Reply::Status(writes::create_aligned_timeseries(engine, &r).await)
            }
            Request::CreateMultiTimeseries(r) => {
                Reply::Status(writes::create_multi_timeseries(engine, &r).await)
            }
            Request::DeleteTimeseries { paths, .. } => {
                Reply::Status(writes::delete_timeseries(engine, &paths).await)
            }
            Request::DeleteStorageGroups { databases, .. } => {
                Reply::Status(writes::delete_storage_groups(engine, &databases).await)
            }
            Request::InsertRecord(r) => Reply::Status(writes::insert_record(engine, &r).await),
            Request::InsertStringRecord(r) => {
                Reply::Status(writes::insert_string_record(engine, &r).await)
            }
            Request::InsertRecords(r) => Reply::Status(writes::insert_records(engine, &r).await),
            Request::InsertRecordsOfOneDevice(r) => {
                Reply::Status(writes::insert_records_of_one_device(engine, &r).await)
            }
            Request::InsertStringRecords(r) => {
                Reply::Status(writes::insert_string_records(engine, &r).await)
            }
            Request::InsertStringRecordsOfOneDevice(r) => {
                Reply::Status(writes::insert_string_records_of_one_device(engine, &r).await)
            }
            Request::InsertTablet(r) => Reply::Status(writes::insert_tablet(engine, &r).await),
            Request::InsertTablets(r) => Reply::Status(writes::insert_tablets(engine, &r).await),
            Request::DeleteData(r) => Reply::Status(writes::delete_data(engine, &r).await),
            Request::CreateSchemaTemplate(r) => Reply::Status(templates::create(engine, &r).await),
            Request::AppendSchemaTemplate(r) => Reply::Status(templates::append(engine, &r).await),
            Request::PruneSchemaTemplate(r) => Reply::Status(templates::prune(engine, &r).await),
            Request::QuerySchemaTemplate(r) => Reply::QueryTemplate(templates::query(engine, &r)),
            Request::SetSchemaTemplate(r) => Reply::Status(templates::set(engine, &r).await),
            Request::UnsetSchemaTemplate(r) => Reply::Status(templates::unset(engine, &r).await),
            Request::DropSchemaTemplate(r) => Reply::Status(templates::drop(engine, &r).await),
            Request::CreateTimeseriesUsingSchemaTemplate(r) => {
                Reply::Status(templates::activate(engine, &r).await)
            }
            Request::OpenSession(_)
            | Request::PipeTransfer(_)
            | Request::GetProperties
            | Request::TestConnectionEmptyRpc
            | Request::NotSupported { .. }
            | Request::Unknown => return None,
        })
    }

    async fn open(&mut self, req: &t::TSOpenSessionReq) -> t::TSOpenSessionResp {
        let refuse = |status: t::TSStatus| {
            t::TSOpenSessionResp::new(
                status,
                t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
                Some(-1),
                None,
            )
        };
        if req.client_protocol != t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3 {
            return refuse(status::failure(
                StatusCode::IncompatibleVersion,
                format!("The version is incompatible, please upgrade to IoTDB V3 protocol (client sent {}).", req.client_protocol.0),
            ));
        }
        let dialect = req
            .configuration
            .as_ref()
            .and_then(|c| c.get("sql_dialect"))
            .map(|d| d.to_ascii_lowercase());
        if let Some(dialect) = dialect.filter(|d| d != "tree") {
            return refuse(status::failure(
                StatusCode::UnsupportedSqlDialect,
                format!(
                    "sql_dialect '{dialect}' is not supported: Duet serves the tree model only"
                ),
            ));
        }
        let password = req.password.clone().unwrap_or_default();
        // As IoTDB: a locked user is refused before its password is looked at (822); otherwise an
        // unknown user and a wrong password get one answer (801), so a login reveals no names.
        // Every refusal waits `failed_login_delay_ms`, and is audited.
        let logins = &self.instance.logins;
        if logins.locked(&req.username, &self.peer) {
            warn!(peer = %self.peer, user = %req.username, "login refused: the user is locked after repeated failures");
            let status = status::failure(StatusCode::UserLoginLocked, crate::login::LOCKED_MESSAGE);
            self.instance
                .audit
                .login(&req.username, &self.peer, "session", status.message.clone());
            tokio::time::sleep(logins.delay()).await;
            return refuse(status);
        }
        if let Err(status) =
            authenticate_off_the_workers(&self.instance, &req.username, &password).await
        {
            warn!(peer = %self.peer, user = %req.username, code = status.code, "login refused: {}", status.message.as_deref().unwrap_or(""));
            self.instance
                .audit
                .login(&req.username, &self.peer, "session", status.message.clone());
            logins.failed(&req.username, &self.peer);
            tokio::time::sleep(logins.delay()).await;
            return refuse(status);
        }
        // The right password, but root with the default one from a remote address: refused without
        // counting as a failed login (the password was right; see root_guard).
        if let Err(status) =
            crate::root_guard::check_login(&self.instance, &req.username, &self.peer)
        {
            warn!(peer = %self.peer, user = %req.username, "login refused: {}", crate::root_guard::REFUSAL);
            self.instance
                .audit
                .login(&req.username, &self.peer, "session", status.message.clone());
            return refuse(status);
        }
        logins.succeeded(&req.username);
        // IoTDB reads the zone after the password: a bad one refuses the login.
        let zone = match duet_engine::time::Zone::parse(&req.zone_id) {
            Ok(zone) => zone,
            Err(why) => {
                warn!(peer = %self.peer, user = %req.username, "login refused: {why}");
                return refuse(status::failure(StatusCode::SetTimeZoneError, why));
            }
        };
        self.close();
        self.user = Some(req.username.clone());
        self.access = None;
        self.session_id = self.instance.new_session_id();
        let login_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.instance.register_session(
            self.session_id,
            ConnectionInfo {
                user: req.username.clone(),
                login_ms,
                peer: self.peer.clone(),
            },
        );
        self.zone_id = zone.id().to_string();
        info!(peer = %self.peer, user = %req.username, session = self.session_id, "session opened");
        self.instance
            .audit
            .login(&req.username, &self.peer, "session", None);
        let mut configuration = BTreeMap::new();
        configuration.insert(
            "timestamp_precision".to_string(),
            self.instance.identity().timestamp_precision.clone(),
        );
        t::TSOpenSessionResp::new(
            status::success(),
            t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
            Some(self.session_id),
            Some(configuration),
        )
    }

    fn properties(&self) -> t::ServerProperties {
        t::ServerProperties::new(
            VERSION.to_string(),
            ["max_time", "min_time", "time_interval", "sliding_step"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            self.instance.identity().timestamp_precision.clone(),
            i32::try_from(self.instance.config.max_connections).unwrap_or(i32::MAX),
            Some(i32::try_from(duet_proto::codec::MAX_REQUEST_FRAME_BYTES).unwrap_or(i32::MAX)),
            Some(false),
            Some(BUILD_INFO.to_string()),
            Some("Duet".to_string()),
        )
    }

    async fn pipe_transfer(&mut self, req: &t::TPipeTransferReq) -> t::TPipeTransferResp {
        let catalog = self.instance.catalog.clone();
        let (instance, peer) = (&self.instance, &self.peer);
        let (audit, logins) = (&instance.audit, &instance.logins);
        // A pipe handshake logs in too: the same lockout, the same single answer, the same rule for
        // root's default password, and an audit entry.
        let authenticate = |user: &str, password: &str| {
            let result = if logins.locked(user, peer) {
                Err(status::failure(
                    StatusCode::UserLoginLocked,
                    crate::login::LOCKED_MESSAGE,
                ))
            } else {
                match catalog.authenticate(user, password) {
                    Ok(()) => crate::root_guard::check_login(instance, user, peer)
                        .map(|()| logins.succeeded(user)),
                    Err(e) => {
                        let status = login_failure(e);
                        if status.code == StatusCode::WrongLoginPassword.code() {
                            logins.failed(user, peer);
                        }
                        Err(status)
                    }
                }
            };
            let failure = result
                .as_ref()
                .err()
                .map(|s| s.message.clone().unwrap_or_default());
            audit.login(user, peer, "pipe handshake", failure);
            result
        };
        // The handshake user's privileges are read afresh for every request that applies
        // something, so a revocation stops a pipe at its next batch; each write and change of
        // the request is checked against them.
        let (privileges, engine) = (self.instance.catalog.clone(), self.instance.engine.clone());
        let authorize = move |user: &str| -> Result<
            Box<dyn duet_runtime::receiver::PipeAuthority>,
            duet_proto::t::TSStatus,
        > {
            match Access::load(&privileges, user) {
                Ok(Some(access)) => Ok(Box::new(authz::PipeUser::new(
                    access,
                    engine.clone(),
                    privileges.clone(),
                ))),
                Ok(None) => Err(status::failure(
                    StatusCode::NotLogin,
                    format!("The pipe's user {user} no longer exists."),
                )),
                Err(e) => Err(e.to_status()),
            }
        };
        let engine = self.instance.engine.clone();
        let receiver = duet_runtime::receiver::Receiver {
            identity: self.instance.identity(),
            engine: &engine,
            authenticate,
            authorize: &authorize,
        };
        let resp = duet_runtime::receiver::receive(&mut self.receiver, &receiver, req).await;
        debug!(peer = %self.peer, request_type = req.type_, code = resp.status.code, "pipeTransfer");
        resp
    }

    /// The limits of a query: the session's budget, and the request's timeout when it sets one
    /// (IoTDB's clients send 0 for "the server's default").
    fn query_limits(&self, request_timeout_ms: Option<i64>) -> QueryLimits {
        let config = &self.instance.config;
        let timeout_ms = match request_timeout_ms {
            Some(ms) if ms > 0 => u64::try_from(ms).unwrap_or(u64::MAX),
            _ => config.query_timeout_threshold,
        };
        QueryLimits {
            memory_bytes: config.query_memory_bytes,
            timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
        }
    }

    async fn run_sql(
        &self,
        access: &Access,
        sql: &str,
        request_timeout_ms: Option<i64>,
    ) -> Result<Option<OpenQuery>, StatementError> {
        let parsed = match duet_parser::parse(sql) {
            Ok(parsed) => parsed,
            Err(e) => {
                let error = StatementError::from(e);
                self.instance
                    .audit
                    .unparsed(access.user(), &self.peer, sql, &error);
                return Err(error);
            }
        };
        if parsed.is_empty() {
            return Err(StatementError::new(
                StatusCode::SqlParseError,
                "line 1:1: expected a statement but found end of input",
            ));
        }
        // Several statements in one call run in order; the last one's result is returned.
        let mut last = None;
        match parsed.first() {
            Some(Statement::Select(_)) => self.sql_kind.set_select(),
            Some(Statement::Insert { .. }) => self.sql_kind.set_insert(),
            _ => {}
        }
        for statement in &parsed {
            debug!(%statement, "executing");
            let queries = SessionQueries {
                session: self,
                access,
                request_timeout_ms,
            };
            let output =
                statements::execute(&self.instance, access, &self.zone_id, statement, &queries)
                    .await;
            self.instance.audit.statement(
                access.user(),
                &self.peer,
                statement,
                output.as_ref().err(),
            );
            let output = output?;
            last = match output {
                Output::Done => None,
                Output::Table(table) => Some(OpenQuery::Table { table, cursor: 0 }),
                Output::Stream(stream) => Some(OpenQuery::Stream {
                    stream,
                    deferred: None,
                }),
            };
        }
        Ok(last)
    }

    /// Plans a query off the async workers.
    async fn select(
        &self,
        select: &Select,
        request_timeout_ms: Option<i64>,
    ) -> Result<Output, StatementError> {
        let control = QueryControl::new(self.query_limits(request_timeout_ms));
        self.instance.queries.register(
            &control,
            self.user.as_deref().unwrap_or_default(),
            &select.to_string(),
        );
        let engine = self.instance.engine.clone();
        let ctx = match &self.access {
            Some((_, access)) => statements::session_context(access, &self.zone_id),
            // Not reached: a query runs only for a logged-in session, whose access is loaded.
            None => statements::session_context(&Access::none(), &self.zone_id),
        };
        let last = select.last;
        let select = select.clone();
        let planned = control.clone();
        let work = move || engine.select(&ctx, &select, planned);
        let work = if last {
            match in_place(work) {
                Ok(output) => return Ok(output?),
                Err(work) => work,
            }
        } else {
            work
        };
        Ok(off_the_workers(&control, work).await??)
    }

    /// Answers a query RPC that names paths rather than SQL: its `Select` (or the reason there is
    /// none) runs on the SQL query path; `rename` names the single result column.
    async fn rpc_query(
        &mut self,
        select: Result<Select, StatementError>,
        paging: &impl rpc_queries::Paging,
        format: ResultFormat,
        rename: Option<&str>,
    ) -> Reply {
        let (fetch_size, timeout) = (paging.fetch_size(), paging.timeout());
        let planned = match select {
            Ok(select) => {
                debug!(peer = %self.peer, %select, "query RPC");
                self.select(&select, timeout).await
            }
            Err(e) => Err(e),
        };
        let query = match planned {
            Ok(Output::Table(table)) => OpenQuery::Table { table, cursor: 0 },
            Ok(Output::Stream(stream)) => OpenQuery::Stream {
                stream,
                deferred: None,
            },
            Ok(Output::Done) => return Reply::Execute(execute_resp(status::success())),
            Err(e) => {
                debug!(peer = %self.peer, code = e.code.code(), "query RPC failed: {}", e.message);
                return Reply::Execute(execute_resp(e.to_status()));
            }
        };
        Reply::Execute(self.respond_query(query, fetch_size, format, rename).await)
    }

    /// Answers a call that sent only an IDL method Duet does not serve: a status 300 naming the
    /// method, in the shape of its result. Logged at warn once per session and method.
    fn not_supported(&mut self, method: &'static str, reply: NotSupportedReply) -> Reply {
        if self.warned.insert(method) {
            warn!(peer = %self.peer, method, "client called an RPC Duet does not support; answered status 300");
        }
        let why = match method {
            "fetchMetadata" => "Fetch Metadata is not supported.".to_string(),
            "handshake" | "sendPipeData" | "sendFile" => format!(
                "{method} is not supported: it belongs to IoTDB 0.13's sync protocol; Duet receives pipes through pipeTransfer"
            ),
            "pipeSubscribe" => format!(
                "{method} is not supported: Duet has no subscriptions (topics and consumers)"
            ),
            _ => format!(
                "{method} is not supported: Duet's configuration is its TOML file and flags, not IoTDB's properties"
            ),
        };
        let status = status::failure(StatusCode::UnsupportedOperation, why);
        match reply {
            NotSupportedReply::Status => Reply::Status(status),
            NotSupportedReply::FetchMetadata => {
                Reply::FetchMetadata(t::TSFetchMetadataResp::new(status, None, None, None))
            }
            NotSupportedReply::ShowConfigurationTemplate => Reply::ShowConfigurationTemplate(
                t::TShowConfigurationTemplateResp::new(status, String::new()),
            ),
            NotSupportedReply::ShowConfiguration => {
                Reply::ShowConfiguration(t::TShowConfigurationResp::new(status, String::new()))
            }
            NotSupportedReply::PipeSubscribe { version, type_ } => {
                Reply::PipeSubscribe(t::TPipeSubscribeResp::new(status, version, type_, None))
            }
        }
    }

    async fn execute(
        &mut self,
        access: &Access,
        kind: ExecuteKind,
        format: ResultFormat,
        req: &t::TSExecuteStatementReq,
    ) -> t::TSExecuteStatementResp {
        match self.run_sql(access, &req.statement, req.timeout).await {
            Err(e) => {
                debug!(peer = %self.peer, code = e.code.code(), "statement failed: {}", e.message);
                execute_resp(e.to_status())
            }
            Ok(None) => execute_resp(status::success()),
            // A non-query call never fetches or closes, so its result is not kept.
            Ok(Some(_)) if kind == ExecuteKind::Update => execute_resp(status::success()),
            Ok(Some(query)) => {
                self.respond_query(query, req.fetch_size, format, None)
                    .await
            }
        }
    }

    /// The first reply of a query: its header and first page (TsBlocks or V1 layout); the query is
    /// kept under a new `queryId` while rows remain.
    async fn respond_query(
        &mut self,
        query: OpenQuery,
        fetch_size: Option<i32>,
        format: ResultFormat,
        rename: Option<&str>,
    ) -> t::TSExecuteStatementResp {
        let query_id = self.instance.new_query_id();
        let fetch_size = fetch_size
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_FETCH_SIZE);
        let (mut names, types, has_time) = query.header();
        if let (Some(name), [_]) = (rename, names.as_slice()) {
            names = vec![name.to_string()];
        }
        let header = header_bytes(&names, &types);
        if header + FRAME_MARGIN + block_overhead(names.len()) >= MAX_REPLY_FRAME_BYTES {
            return execute_resp(status::failure(
                StatusCode::QueryProcessError,
                format!(
                    "the result has {} columns, whose names alone exceed one reply ({MAX_REPLY_FRAME_BYTES} bytes, the client's frame limit); select fewer series (e.g. with SLIMIT)",
                    names.len()
                ),
            ));
        }
        let room = MAX_REPLY_FRAME_BYTES - header - FRAME_MARGIN;
        let (query, page) = page_of(query, fetch_size, page_room(room, format), true).await;
        let mut resp = execute_resp(status::success());
        resp.query_id = Some(query_id);
        resp.column_name_index_map = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i32::try_from(i).unwrap_or(i32::MAX)))
                .collect(),
        );
        resp.columns = Some(names);
        resp.data_type_list = Some(types.iter().map(|t| t.name().to_string()).collect());
        resp.sg_columns = Some(Vec::new());
        resp.ignore_time_stamp = Some(!has_time);
        let page = page.and_then(|(blocks, more)| match format {
            ResultFormat::TsBlocks => {
                resp.query_result = Some(blocks);
                Ok(more)
            }
            ResultFormat::QueryDataSet => {
                resp.query_data_set = Some(query_data_set(&blocks, &types, room)?);
                Ok(more)
            }
        });
        match page {
            Ok(more) => {
                resp.more_data = Some(more);
                if more {
                    self.queries.insert(query_id, query);
                }
                resp
            }
            Err(e) => {
                log_query_failure(&self.peer, query_id, &e);
                execute_resp(e.to_status())
            }
        }
    }

    async fn execute_batch(&mut self, access: &Access, statements: &[String]) -> t::TSStatus {
        let mut subs = Vec::with_capacity(statements.len());
        for sql in statements {
            subs.push(match self.run_sql(access, sql, None).await {
                Ok(_) => status::success(),
                Err(e) => e.to_status(),
            });
        }
        if subs.iter().all(|s| s.code == StatusCode::Success.code()) {
            status::success()
        } else {
            let mut status = status::failure(
                StatusCode::MultipleError,
                "some statements of the batch failed",
            );
            status.sub_status = Some(subs.into_iter().map(Box::new).collect());
            status
        }
    }

    async fn fetch(
        &mut self,
        req: &t::TSFetchResultsReq,
        format: ResultFormat,
    ) -> t::TSFetchResultsResp {
        let Some(query) = self.queries.remove(&req.query_id) else {
            // Unknown or finished: IoTDB answers 200 with no result set.
            return t::TSFetchResultsResp::new(
                status::success(),
                false,
                true,
                None,
                None,
                None,
                Some(false),
            );
        };
        let fetch_size = usize::try_from(req.fetch_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_FETCH_SIZE);
        let types = match format {
            ResultFormat::TsBlocks => Vec::new(),
            ResultFormat::QueryDataSet => query.header().1,
        };
        let room = MAX_REPLY_FRAME_BYTES - FRAME_MARGIN;
        let (query, page) = page_of(query, fetch_size, page_room(room, format), false).await;
        let page = page.and_then(|(blocks, more)| match format {
            ResultFormat::TsBlocks => {
                let has = !blocks.is_empty();
                Ok((has, None, Some(blocks), more))
            }
            ResultFormat::QueryDataSet => {
                let data = query_data_set(&blocks, &types, room)?;
                Ok((!data.time.is_empty(), Some(data), None, more))
            }
        });
        match page {
            Ok((has, data, blocks, more)) => {
                if more {
                    self.queries.insert(req.query_id, query);
                }
                t::TSFetchResultsResp::new(
                    status::success(),
                    has,
                    true,
                    data,
                    None,
                    blocks,
                    Some(more),
                )
            }
            Err(e) => {
                log_query_failure(&self.peer, req.query_id, &e);
                t::TSFetchResultsResp::new(e.to_status(), false, true, None, None, None, None)
            }
        }
    }

    /// Whether the connection has logged in: an open session, or a pipe sender past its handshake.
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some() || self.receiver.peer.is_some()
    }

    /// Ends a query: its blocking work (if any) stops at its next check, and its memory is freed.
    fn close_query(&mut self, query_id: i64, why: &str) {
        if let Some(query) = self.queries.remove(&query_id) {
            query.cancel();
            debug!(peer = %self.peer, query_id, "query closed: {why}");
        }
    }

    /// Frees everything the session holds.
    /// What the logged-in `user` may do, reloaded when users, roles or grants changed since it was
    /// read; `None` when the user no longer exists, which ends the session.
    fn refresh_access(&mut self, user: &str) -> Option<Arc<Access>> {
        let generation = self.instance.catalog.privileges_generation();
        if let Some((loaded_at, access)) = &self.access {
            if *loaded_at == generation {
                return Some(access.clone());
            }
        }
        match Access::load(&self.instance.catalog, user) {
            Ok(Some(access)) => {
                let access = Arc::new(access);
                self.access = Some((generation, access.clone()));
                Some(access)
            }
            Ok(None) => {
                info!(peer = %self.peer, user, session = self.session_id, "session ended: its user was dropped");
                self.close();
                None
            }
            Err(e) => {
                warn!(peer = %self.peer, user, "could not read the user's privileges: {}", e.message);
                None
            }
        }
    }

    pub fn close(&mut self) {
        self.access = None;
        if self.user.take().is_some() {
            self.instance.unregister_session(self.session_id);
        }
        for (query_id, query) in self.queries.drain() {
            query.cancel();
            debug!(peer = %self.peer, query_id, "query closed: the session ended");
        }
    }
}

/// The bytes of TsBlocks a page may take: for the V1 layout, small enough that the expansion fits.
fn page_room(room: usize, format: ResultFormat) -> usize {
    match format {
        ResultFormat::TsBlocks => room,
        ResultFormat::QueryDataSet => room / V1_EXPANSION,
    }
}

/// Re-lays a page of TsBlocks as one V1 `TSQueryDataSet` (reference: IoTDB's `QueryDataSetUtils`).
fn query_data_set(
    blocks: &[Vec<u8>],
    types: &[DataType],
    room: usize,
) -> Result<t::TSQueryDataSet, StatementError> {
    let mut builder = QueryDataSetBuilder::new(types.len());
    for block in blocks {
        let block = tsblock::decode(block, Some(types)).map_err(StatementError::from)?;
        builder
            .append(&block.times, &block.columns, 0, block.n_rows())
            .map_err(StatementError::from)?;
    }
    if builder.bytes() > room {
        return Err(StatementError::new(
            StatusCode::QueryProcessError,
            format!(
                "a page of the result takes {} bytes in the V1 layout, more than fit in one reply; use a smaller fetchSize or the V2 RPCs",
                builder.bytes()
            ),
        ));
    }
    Ok(builder.finish())
}

fn execute_resp(status: t::TSStatus) -> t::TSExecuteStatementResp {
    t::TSExecuteStatementResp {
        status,
        query_id: None,
        columns: None,
        operation_type: None,
        ignore_time_stamp: None,
        data_type_list: None,
        query_data_set: None,
        non_align_query_data_set: None,
        column_name_index_map: None,
        sg_columns: None,
        alias_columns: None,
        tracing_info: None,
        query_result: None,
        more_data: None,
        database: None,
        table_model: None,
        column_index2_ts_block_column_index_list: None,
    }
}

impl OpenQuery {
    /// Stops the query's work at its next check (a stream's; a table has none).
    fn cancel(&self) {
        if let OpenQuery::Stream { stream, .. } = self {
            stream.control.cancel();
        }
    }

    /// Column names, types, and whether rows carry a time column.
    fn header(&self) -> (Vec<String>, Vec<duet_proto::types::DataType>, bool) {
        match self {
            OpenQuery::Table { table, .. } => (
                table.names.clone(),
                table.columns.iter().map(|c| c.data_type).collect(),
                table.times.is_some(),
            ),
            OpenQuery::Stream { stream, .. } => {
                (stream.names.clone(), stream.types.clone(), stream.has_time)
            }
        }
    }
}

fn log_query_failure(peer: &str, query_id: i64, e: &StatementError) {
    match e.code {
        StatusCode::QueryTimeout | StatusCode::QueryExecutionMemoryNotEnough => {
            info!(%peer, query_id, code = e.code.code(), "query stopped: {}", e.message)
        }
        _ => debug!(%peer, query_id, code = e.code.code(), "query failed: {}", e.message),
    }
}

/// The next reply page of `query`, computed off the async workers when the engine produces it:
/// returns the query back with the page (or the error that ends it).
async fn page_of(
    mut query: OpenQuery,
    fetch_size: usize,
    room: usize,
    first_reply: bool,
) -> (OpenQuery, PageResult) {
    let control = match &query {
        OpenQuery::Table { .. } => {
            let page = next_page(&mut query, fetch_size, room, first_reply);
            return (query, page);
        }
        OpenQuery::Stream { stream, .. } => stream.control.clone(),
    };
    let done = off_the_workers(&control, move || {
        let page = next_page(&mut query, fetch_size, room, first_reply);
        (query, page)
    })
    .await;
    match done {
        Ok(done) => done,
        Err(e) => {
            // The blocking task is gone with the query; an empty table stands in for it.
            let gone = OpenQuery::Table {
                table: Table {
                    names: Vec::new(),
                    columns: Vec::new(),
                    times: None,
                    n_rows: 0,
                },
                cursor: 0,
            };
            (gone, Err(e))
        }
    }
}

/// TsBlocks of one reply, and whether more rows follow.
type PageResult = Result<(Vec<Vec<u8>>, bool), StatementError>;

/// Cuts the next reply page: TsBlocks of at most 1000 rows, up to `fetch_size` rows, about
/// [`PAGE_BYTE_TARGET`] bytes, and never more than `room` bytes. A row too large for the first reply
/// (after its header) waits for a fetch; a row too large for any reply is an error.
fn next_page(
    query: &mut OpenQuery,
    fetch_size: usize,
    room: usize,
    first_reply: bool,
) -> PageResult {
    let target = PAGE_BYTE_TARGET.min(room);
    match query {
        OpenQuery::Table { table, cursor } => {
            let zeros;
            let times: &[i64] = match &table.times {
                Some(t) => t,
                None => {
                    // The client ignores this column, but the TsBlock layout requires one.
                    zeros = vec![0i64; table.n_rows];
                    &zeros
                }
            };
            let mut blocks = Vec::new();
            let mut bytes = 0;
            let page_end = table.n_rows.min(cursor.saturating_add(fetch_size));
            while *cursor < page_end && bytes < target {
                let start = *cursor;
                let mut end = start;
                let mut estimate = 4 + block_overhead(table.columns.len());
                while end < page_end && end - start < DEFAULT_ROWS_PER_BLOCK {
                    let row = table_row_bytes(&table.columns, end);
                    if end > start && bytes + estimate + row > target {
                        break;
                    }
                    estimate += row;
                    end += 1;
                }
                let block = tsblock::encode(times, &table.columns, start, end)
                    .map_err(StatementError::from)?;
                if bytes + block.len() + 4 > room {
                    if blocks.is_empty() && !first_reply {
                        return Err(too_large_row(block.len()));
                    }
                    break;
                }
                bytes += block.len() + 4;
                blocks.push(block);
                *cursor = end;
            }
            Ok((blocks, *cursor < table.n_rows))
        }
        OpenQuery::Stream { stream, deferred } => {
            stream.control.check().map_err(StatementError::from)?;
            let mut blocks = Vec::new();
            let mut bytes = 0;
            let mut rows = 0;
            if let Some(block) = deferred.take() {
                if block.len() + 4 > room {
                    if !first_reply {
                        return Err(too_large_row(block.len()));
                    }
                    *deferred = Some(block);
                } else {
                    bytes += block.len() + 4;
                    rows += 1;
                    blocks.push(block);
                }
            }
            while deferred.is_none() && rows < fetch_size && bytes < target {
                let want_rows = DEFAULT_ROWS_PER_BLOCK.min(fetch_size - rows);
                let want_bytes = (target - bytes).saturating_sub(4);
                let Some(page) = stream
                    .source
                    .next_page(want_rows, want_bytes)
                    .map_err(StatementError::from)?
                else {
                    break;
                };
                let n = page.times.len();
                let block = tsblock::encode(&page.times, &page.columns, 0, n)
                    .map_err(StatementError::from)?;
                if bytes + block.len() + 4 > room {
                    // Only a page of one oversized row gets here: sources keep pages within
                    // `want_bytes` otherwise.
                    if blocks.is_empty() && !first_reply {
                        return Err(too_large_row(block.len()));
                    }
                    *deferred = Some(block);
                    break;
                }
                bytes += block.len() + 4;
                rows += n;
                blocks.push(block);
            }
            let more =
                deferred.is_some() || stream.source.has_more().map_err(StatementError::from)?;
            Ok((blocks, more))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::queries::tests::control;

    #[tokio::test]
    async fn a_dropped_request_cancels_its_blocking_work() {
        let control = control();
        let (stopped, stopped_rx) = std::sync::mpsc::channel();
        let (started, started_rx) = tokio::sync::oneshot::channel();
        let work = control.clone();
        let request = off_the_workers(&control, move || {
            // Stands in for a long query: it runs until a check fails.
            let _ = started.send(());
            while work.check().is_ok() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = stopped.send(());
        });
        // The request is dropped once the work runs, as when its connection goes away.
        tokio::select! {
            _ = request => panic!("the work cannot finish before it is cancelled"),
            _ = started_rx => {}
        }
        assert!(control.is_cancelled());
        stopped_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }

    #[tokio::test]
    async fn a_request_that_completes_leaves_its_query_running() {
        let control = control();
        let answer = off_the_workers(&control, || 42).await.unwrap();
        assert_eq!(answer, 42);
        assert!(!control.is_cancelled());
    }
}
