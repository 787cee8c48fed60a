//! One client's session on one connection: login state, time zone, statement ids, open query results,
//! and the pipe receiver state. [`Session::handle`] turns each decoded request into its reply.
//!
//! Like IoTDB's Java server, the session is found from the connection, never from the ids in a
//! request: the Python client swaps `sessionId` and `statementId` in `fetchResultsV2` and
//! `closeOperation` (reference §5.4), and results are found by `queryId` alone.

use std::collections::{BTreeMap, HashMap};

use duet_proto::codec::MAX_REPLY_FRAME_BYTES;
use duet_proto::rpc::{ExecuteKind, Reply, Request};
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_proto::tsblock::{self, DEFAULT_ROWS_PER_BLOCK};
use duet_proto::types::Table;
use duet_runtime::handshake::ReceiverState;
use tracing::{debug, info, warn};

use crate::instance::{InstanceRef, BUILD_INFO, VERSION};
use crate::statements::{self, Output, StatementError};
use crate::writes;

/// Rows per page when a client asks for `fetchSize <= 0` (IoTDB's `maxTsBlockLineNumber`).
const DEFAULT_FETCH_SIZE: usize = 1000;

/// Reply frames are filled up to about half the client's frame limit, leaving room for the envelope.
const PAGE_BYTE_BUDGET: usize = MAX_REPLY_FRAME_BYTES / 2;

/// A query result not yet fully fetched.
enum OpenQuery {
    /// A small result computed at once; `cursor` is the next row to send.
    Table { table: Table, cursor: usize },
    /// A result the engine produces page by page; `peeked` holds a page read ahead to learn whether
    /// more data follows.
    Stream {
        stream: duet_engine::QueryStream,
        peeked: Option<duet_engine::query::Page>,
        done: bool,
    },
}

/// The state of one connection's session.
pub struct Session {
    instance: InstanceRef,
    /// The logged-in user; `None` before `openSession` succeeds and after `closeSession`.
    user: Option<String>,
    session_id: i64,
    zone_id: String,
    queries: HashMap<i64, OpenQuery>,
    receiver: ReceiverState,
    peer: String,
}

fn not_logged_in() -> t::TSStatus {
    status::failure(
        StatusCode::NotLogin,
        "Log in failed. Either you are not authorized or the session has timed out.",
    )
}

fn error_status(e: &StatementError) -> t::TSStatus {
    status::failure(e.code, e.message.clone())
}

impl Session {
    pub fn new(instance: InstanceRef, peer: String) -> Session {
        Session {
            instance,
            user: None,
            session_id: -1,
            zone_id: "UTC".to_string(),
            queries: HashMap::new(),
            receiver: ReceiverState::default(),
            peer,
        }
    }

    /// Answers one request; `None` means the method is unknown to this server.
    pub async fn handle(&mut self, request: Request) -> Option<Reply> {
        if let Request::OpenSession(req) = &request {
            return Some(Reply::OpenSession(self.open(req)));
        }
        if let Request::PipeTransfer(req) = &request {
            return Some(Reply::PipeTransfer(self.pipe_transfer(req).await));
        }
        if let Request::GetProperties = &request {
            return Some(Reply::Properties(self.properties()));
        }
        if matches!(request, Request::Unknown) {
            return None;
        }
        let Some(user) = self.user.clone() else {
            return Some(match request {
                Request::Execute { .. } => Reply::Execute(execute_resp(not_logged_in())),
                Request::FetchResults(_) => Reply::Fetch(t::TSFetchResultsResp::new(
                    not_logged_in(),
                    false,
                    true,
                    None,
                    None,
                )),
                Request::GetTimeZone { .. } => {
                    Reply::TimeZone(t::TSGetTimeZoneResp::new(not_logged_in(), String::new()))
                }
                Request::RequestStatementId { .. } => Reply::StatementId(-1),
                _ => Reply::Status(not_logged_in()),
            });
        };
        Some(match request {
            Request::RequestStatementId { .. } => {
                Reply::StatementId(self.instance.new_statement_id())
            }
            Request::SetTimeZone(req) => {
                self.zone_id = req.time_zone;
                Reply::Status(status::success())
            }
            Request::GetTimeZone { .. } => Reply::TimeZone(t::TSGetTimeZoneResp::new(
                status::success(),
                self.zone_id.clone(),
            )),
            Request::Execute { kind, req } => Reply::Execute(self.execute(&user, kind, &req).await),
            Request::ExecuteBatch(req) => {
                Reply::Status(self.execute_batch(&user, &req.statements).await)
            }
            Request::FetchResults(req) => Reply::Fetch(self.fetch(&req)),
            Request::CloseOperation(req) => {
                match req.query_id {
                    Some(id) => {
                        self.queries.remove(&id);
                    }
                    // Without a query id the whole statement closes: every result it opened.
                    None => self.queries.clear(),
                }
                Reply::Status(status::success())
            }
            Request::CancelOperation(req) => {
                self.queries.remove(&req.query_id);
                Reply::Status(status::success())
            }
            Request::CloseSession(_) => {
                info!(peer = %self.peer, session = self.session_id, "session closed");
                self.close();
                Reply::Status(status::success())
            }
            Request::SetStorageGroup { database, .. } => {
                Reply::Status(writes::set_storage_group(&self.instance.engine, &database))
            }
            Request::CreateTimeseries(r) => {
                Reply::Status(writes::create_timeseries(&self.instance.engine, &r))
            }
            Request::CreateAlignedTimeseries(r) => {
                Reply::Status(writes::create_aligned_timeseries(&self.instance.engine, &r))
            }
            Request::CreateMultiTimeseries(r) => {
                Reply::Status(writes::create_multi_timeseries(&self.instance.engine, &r))
            }
            Request::DeleteTimeseries { paths, .. } => {
                Reply::Status(writes::delete_timeseries(&self.instance.engine, &paths).await)
            }
            Request::DeleteStorageGroups { databases, .. } => Reply::Status(
                writes::delete_storage_groups(&self.instance.engine, &databases).await,
            ),
            Request::InsertRecord(r) => {
                Reply::Status(writes::insert_record(&self.instance.engine, &r).await)
            }
            Request::InsertStringRecord(r) => {
                Reply::Status(writes::insert_string_record(&self.instance.engine, &r).await)
            }
            Request::InsertRecords(r) => {
                Reply::Status(writes::insert_records(&self.instance.engine, &r).await)
            }
            Request::InsertRecordsOfOneDevice(r) => {
                Reply::Status(writes::insert_records_of_one_device(&self.instance.engine, &r).await)
            }
            Request::InsertStringRecords(r) => {
                Reply::Status(writes::insert_string_records(&self.instance.engine, &r).await)
            }
            Request::InsertStringRecordsOfOneDevice(r) => Reply::Status(
                writes::insert_string_records_of_one_device(&self.instance.engine, &r).await,
            ),
            Request::InsertTablet(r) => {
                Reply::Status(writes::insert_tablet(&self.instance.engine, &r).await)
            }
            Request::InsertTablets(r) => {
                Reply::Status(writes::insert_tablets(&self.instance.engine, &r).await)
            }
            Request::DeleteData(r) => {
                Reply::Status(writes::delete_data(&self.instance.engine, &r).await)
            }
            Request::OpenSession(_)
            | Request::PipeTransfer(_)
            | Request::GetProperties
            | Request::Unknown => return None,
        })
    }

    fn open(&mut self, req: &t::TSOpenSessionReq) -> t::TSOpenSessionResp {
        let refuse = |status: t::TSStatus| t::TSOpenSessionResp::new(status, 2, Some(-1), None);
        if req.client_protocol != 2 {
            return refuse(status::failure(
                StatusCode::IncompatibleVersion,
                format!("The version is incompatible, please upgrade to IoTDB V3 protocol (client sent {}).", req.client_protocol),
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
        match self.instance.catalog.authenticate(&req.username, &password) {
            Ok(()) => {}
            Err(e) => {
                warn!(peer = %self.peer, user = %req.username, "login refused: {e}");
                return refuse(error_status(&StatementError::from(e)));
            }
        }
        self.close();
        self.user = Some(req.username.clone());
        self.session_id = self.instance.new_session_id();
        self.zone_id = req.zone_id.clone();
        info!(peer = %self.peer, user = %req.username, session = self.session_id, "session opened");
        let mut configuration = BTreeMap::new();
        configuration.insert(
            "timestamp_precision".to_string(),
            self.instance.identity().timestamp_precision.clone(),
        );
        t::TSOpenSessionResp::new(
            status::success(),
            2,
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
        let authenticate = |user: &str, password: &str| {
            catalog
                .authenticate(user, password)
                .map_err(|e| error_status(&StatementError::from(e)))
        };
        let engine = self.instance.engine.clone();
        let resp = duet_runtime::receiver::receive(
            &mut self.receiver,
            self.instance.identity(),
            &engine,
            req,
            authenticate,
        )
        .await;
        debug!(peer = %self.peer, request_type = req.type_, code = resp.status.code, "pipeTransfer");
        resp
    }

    async fn run_sql(&self, user: &str, sql: &str) -> Result<Option<OpenQuery>, StatementError> {
        let parsed = duet_parser::parse(sql).map_err(|e| {
            let code = match e.kind {
                duet_parser::ParseErrorKind::Syntax => StatusCode::SqlParseError,
                duet_parser::ParseErrorKind::Unsupported => StatusCode::UnsupportedOperation,
            };
            StatementError::new(code, e.to_string())
        })?;
        if parsed.is_empty() {
            return Err(StatementError::new(
                StatusCode::SqlParseError,
                "line 1:1: expected a statement but found end of input",
            ));
        }
        // Several statements in one call run in order; the last one's result is returned.
        let mut last = None;
        for statement in &parsed {
            debug!(%statement, "executing");
            last = match statements::execute(&self.instance, user, &self.zone_id, statement).await?
            {
                Output::Done => None,
                Output::Table(table) => Some(OpenQuery::Table { table, cursor: 0 }),
                Output::Stream(stream) => Some(OpenQuery::Stream {
                    stream,
                    peeked: None,
                    done: false,
                }),
            };
        }
        Ok(last)
    }

    async fn execute(
        &mut self,
        user: &str,
        kind: ExecuteKind,
        req: &t::TSExecuteStatementReq,
    ) -> t::TSExecuteStatementResp {
        match self.run_sql(user, &req.statement).await {
            Err(e) => {
                debug!(peer = %self.peer, code = e.code.code(), "statement failed: {}", e.message);
                execute_resp(error_status(&e))
            }
            Ok(None) => execute_resp(status::success()),
            // A non-query call never fetches or closes, so its result is not kept.
            Ok(Some(_)) if kind == ExecuteKind::Update => execute_resp(status::success()),
            Ok(Some(mut query)) => {
                let query_id = self.instance.new_query_id();
                let fetch_size = req
                    .fetch_size
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(DEFAULT_FETCH_SIZE);
                let (names, types, has_time) = query.header();
                let page = next_page(&mut query, fetch_size);
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
                match page {
                    Ok((blocks, more)) => {
                        resp.query_result = Some(blocks);
                        resp.more_data = Some(more);
                        if more {
                            self.queries.insert(query_id, query);
                        }
                        resp
                    }
                    Err(e) => execute_resp(status::failure(StatusCode::InternalServerError, e)),
                }
            }
        }
    }

    async fn execute_batch(&mut self, user: &str, statements: &[String]) -> t::TSStatus {
        let mut subs = Vec::with_capacity(statements.len());
        for sql in statements {
            subs.push(match self.run_sql(user, sql).await {
                Ok(_) => status::success(),
                Err(e) => error_status(&e),
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

    fn fetch(&mut self, req: &t::TSFetchResultsReq) -> t::TSFetchResultsResp {
        let Some(query) = self.queries.get_mut(&req.query_id) else {
            // Unknown or finished: IoTDB answers 200 with no result set.
            return t::TSFetchResultsResp::new(status::success(), false, true, None, Some(false));
        };
        let fetch_size = usize::try_from(req.fetch_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_FETCH_SIZE);
        match next_page(query, fetch_size) {
            Ok((blocks, more)) => {
                if !more {
                    self.queries.remove(&req.query_id);
                }
                let has = !blocks.is_empty();
                t::TSFetchResultsResp::new(status::success(), has, true, Some(blocks), Some(more))
            }
            Err(e) => {
                self.queries.remove(&req.query_id);
                t::TSFetchResultsResp::new(
                    status::failure(StatusCode::InternalServerError, e),
                    false,
                    true,
                    None,
                    None,
                )
            }
        }
    }

    /// Whether the connection has logged in: an open session, or a pipe sender past its handshake.
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some() || self.receiver.peer.is_some()
    }

    /// Frees everything the session holds.
    pub fn close(&mut self) {
        self.user = None;
        self.queries.clear();
    }
}

fn execute_resp(status: t::TSStatus) -> t::TSExecuteStatementResp {
    t::TSExecuteStatementResp {
        status,
        query_id: None,
        columns: None,
        operation_type: None,
        ignore_time_stamp: None,
        data_type_list: None,
        column_name_index_map: None,
        sg_columns: None,
        alias_columns: None,
        query_result: None,
        more_data: None,
        database: None,
        table_model: None,
        column_index2_ts_block_column_index_list: None,
    }
}

impl OpenQuery {
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

/// Cuts the next page: TsBlocks of at most 1000 rows until `fetch_size` rows or the byte budget.
/// Returns the blocks and whether more rows follow.
fn next_page(query: &mut OpenQuery, fetch_size: usize) -> Result<(Vec<Vec<u8>>, bool), String> {
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
            while *cursor < page_end && bytes < PAGE_BYTE_BUDGET {
                let end = page_end.min(*cursor + DEFAULT_ROWS_PER_BLOCK);
                let block = tsblock::encode(times, &table.columns, *cursor, end)
                    .map_err(|e| e.to_string())?;
                bytes += block.len();
                blocks.push(block);
                *cursor = end;
            }
            Ok((blocks, *cursor < table.n_rows))
        }
        OpenQuery::Stream {
            stream,
            peeked,
            done,
        } => {
            let mut blocks = Vec::new();
            let mut bytes = 0;
            let mut rows = 0;
            // Storage scans read files: run them where blocking is allowed.
            tokio::task::block_in_place(|| -> Result<(), String> {
                while !*done && rows < fetch_size && bytes < PAGE_BYTE_BUDGET {
                    let want = DEFAULT_ROWS_PER_BLOCK.min(fetch_size - rows);
                    let page = match peeked.take() {
                        Some(p) => p,
                        None => match stream.source.next_page(want).map_err(|e| e.to_string())? {
                            Some(p) => p,
                            None => {
                                *done = true;
                                break;
                            }
                        },
                    };
                    let n = page.times.len();
                    let block = tsblock::encode(&page.times, &page.columns, 0, n)
                        .map_err(|e| e.to_string())?;
                    bytes += block.len();
                    rows += n;
                    blocks.push(block);
                }
                // Read one page ahead so the reply can say truthfully whether more data follows.
                if !*done && peeked.is_none() {
                    match stream
                        .source
                        .next_page(DEFAULT_ROWS_PER_BLOCK)
                        .map_err(|e| e.to_string())?
                    {
                        Some(p) => *peeked = Some(p),
                        None => *done = true,
                    }
                }
                Ok(())
            })?;
            Ok((blocks, !*done))
        }
    }
}
