//! An async IoTDB client over one TCP connection: the CLI, the tests, the benchmarks and the pipe sink
//! use it. It follows the Python client's open sequence (`openSession`, `requestStatementId`,
//! `setTimeZone`) and reads results the way IoTDB's clients do (TsBlocks, `fetchResultsV2` while
//! `moreData`).

use std::collections::VecDeque;
use std::time::Duration;

use thrift::protocol::TSerializable;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use crate::tls::{self, ClientTls, Stream};

use crate::codec::{self, Protocol};
use crate::rpc::{self, ReplyError};
use crate::status;
use crate::t;
use crate::tsblock::{self, TsBlock};
use crate::types::DataType;
use crate::ProtoError;

/// Errors a client call can end with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("server raised an application exception: {0}")]
    Application(String),
    /// The server answered with a failure status; Display is IoTDB's `"<code>: <message>"`.
    #[error("{}", status::describe(.0))]
    Status(t::TSStatus),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// The server closed the connection instead of answering (it stopped or restarted).
    #[error("connection closed by the server")]
    Closed,
    /// The TLS handshake failed: the server's certificate did not verify, or the server speaks no TLS.
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
}

impl ClientError {
    /// The IoTDB status code, when the server answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Status(s) => Some(s.code),
            _ => None,
        }
    }
}

impl From<ReplyError> for ClientError {
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::Application(m) => ClientError::Application(m),
            ReplyError::Proto(p) => ClientError::Proto(p),
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Proto(ProtoError::Io(e))
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How to reach and log in to a server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub protocol: Protocol,
    /// Rows per page asked of the server.
    pub fetch_size: i32,
    pub zone_id: String,
    pub connect_timeout: Duration,
    /// Upper bound for any single call (connect excluded).
    pub call_timeout: Duration,
    /// TLS to the server (its certificate verified); plain TCP when `None`.
    pub tls: Option<ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            host: "127.0.0.1".to_string(),
            port: 6667,
            user: "root".to_string(),
            password: "root".to_string(),
            protocol: Protocol::Binary,
            fetch_size: 5000,
            zone_id: "UTC".to_string(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(900),
            tls: None,
        }
    }
}

/// A framed Thrift connection without a session (the pipe sink handshakes on it instead).
pub struct Connection {
    stream: BufStream<Stream>,
    protocol: Protocol,
    call_timeout: Duration,
}

impl Connection {
    /// A plain TCP connection.
    pub async fn connect(
        host: &str,
        port: u16,
        protocol: Protocol,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Connection> {
        Self::connect_with_tls(host, port, protocol, None, connect_timeout, call_timeout).await
    }

    /// A connection over TLS when `tls` is given (the server's certificate verified), else plain.
    pub async fn connect_with_tls(
        host: &str,
        port: u16,
        protocol: Protocol,
        tls: Option<&ClientTls>,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Connection> {
        let addr = format!("{host}:{port}");
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Request/reply traffic: small frames must not wait for Nagle.
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(tls) => tokio::time::timeout(connect_timeout, tls::connect(tls, host, stream))
                .await
                .map_err(|_| ClientError::Tls {
                    addr: addr.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the handshake timed out",
                    ),
                })?
                .map_err(|source| ClientError::Tls { addr, source })?,
        };
        Ok(Connection {
            stream: BufStream::new(stream),
            protocol,
            call_timeout,
        })
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends one call frame and returns the reply frame.
    pub async fn round_trip(&mut self, payload: &[u8]) -> Result<Vec<u8>> {
        let timeout = self.call_timeout;
        let exchange = async {
            codec::write_frame(&mut self.stream, payload).await?;
            codec::read_frame(&mut self.stream, codec::MAX_REQUEST_FRAME_BYTES)
                .await?
                .ok_or(ClientError::Closed)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Calls `name` with struct argument `arg` at field `id` and reads a struct result.
    pub async fn call<Req: TSerializable, Resp: TSerializable>(
        &mut self,
        name: &str,
        id: i16,
        arg: &Req,
    ) -> Result<Resp> {
        let payload = rpc::encode_struct_call(self.protocol, name, id, arg)?;
        let reply = self.round_trip(&payload).await?;
        Ok(rpc::decode_struct_reply(&reply)?)
    }

    /// `pipeTransfer` (argument field -1).
    pub async fn pipe_transfer(
        &mut self,
        req: &t::TPipeTransferReq,
    ) -> Result<t::TPipeTransferResp> {
        self.call("pipeTransfer", -1, req).await
    }
}

/// A query's result, read block by block.
#[derive(Debug)]
pub struct ResultSet {
    pub query_id: i64,
    /// Column names as the server sent them (without the implicit "Time").
    pub columns: Vec<String>,
    pub data_types: Vec<DataType>,
    /// When false, every row has a leading "Time" column.
    pub ignore_time_stamp: bool,
    column_map: Option<Vec<usize>>,
    pending: VecDeque<Vec<u8>>,
    more_data: bool,
    statement: String,
}

impl ResultSet {
    /// The header a client shows: "Time" first unless the server said to ignore it.
    pub fn header(&self) -> Vec<String> {
        let mut header = Vec::with_capacity(self.columns.len() + 1);
        if !self.ignore_time_stamp {
            header.push("Time".to_string());
        }
        header.extend(self.columns.iter().cloned());
        header
    }

    fn decode_block(&self, bytes: &[u8]) -> Result<TsBlock> {
        let block = tsblock::decode(bytes, None)?;
        // Output column i reads TsBlock column column_map[i] (identity when absent), typed by dataTypeList.
        let mut columns = Vec::with_capacity(self.columns.len());
        for (i, data_type) in self.data_types.iter().enumerate() {
            let source = self
                .column_map
                .as_ref()
                .and_then(|m| m.get(i).copied())
                .unwrap_or(i);
            let mut column = block.columns.get(source).cloned().ok_or_else(|| {
                ClientError::Unexpected(format!("result block lacks column {source}"))
            })?;
            if column.data_type.physical() == data_type.physical() {
                column.data_type = *data_type;
            }
            columns.push(column);
        }
        Ok(TsBlock {
            times: block.times,
            columns,
        })
    }
}

/// The outcome of executing one statement.
#[derive(Debug)]
pub enum Outcome {
    /// A statement without a result set; the status is a success status.
    Done(t::TSStatus),
    Rows(ResultSet),
}

/// A logged-in session on one connection.
pub struct Client {
    connection: Connection,
    session_id: i64,
    statement_id: i64,
    fetch_size: i32,
    /// The server's timestamp precision ("ms", "us", "ns"), from `openSession`.
    pub timestamp_precision: String,
}

fn check(status: &t::TSStatus) -> Result<()> {
    if status::is_success(status) {
        Ok(())
    } else {
        Err(ClientError::Status(status.clone()))
    }
}

impl Client {
    /// Connects and opens a session.
    pub async fn connect(options: &ClientOptions) -> Result<Client> {
        let mut connection = Connection::connect_with_tls(
            &options.host,
            options.port,
            options.protocol,
            options.tls.as_ref(),
            options.connect_timeout,
            options.call_timeout,
        )
        .await?;
        let mut configuration = std::collections::BTreeMap::new();
        configuration.insert("version".to_string(), "V_1_0".to_string());
        configuration.insert("sql_dialect".to_string(), "tree".to_string());
        let open = t::TSOpenSessionReq::new(
            t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
            options.zone_id.clone(),
            options.user.clone(),
            Some(options.password.clone()),
            Some(configuration),
        );
        let resp: t::TSOpenSessionResp = connection.call("openSession", 1, &open).await?;
        check(&resp.status)?;
        let session_id = resp
            .session_id
            .ok_or_else(|| ClientError::Unexpected("openSession without a session id".into()))?;
        let timestamp_precision = resp
            .configuration
            .as_ref()
            .and_then(|c| c.get("timestamp_precision").cloned())
            .unwrap_or_else(|| "ms".to_string());
        let payload =
            rpc::encode_i64_call(connection.protocol(), "requestStatementId", session_id)?;
        let reply = connection.round_trip(&payload).await?;
        let statement_id = rpc::decode_reply(&reply, |p| p.read_i64())?;
        let tz = t::TSSetTimeZoneReq::new(session_id, options.zone_id.clone());
        let _: t::TSStatus = connection.call("setTimeZone", 1, &tz).await?;
        Ok(Client {
            connection,
            session_id,
            statement_id,
            fetch_size: options.fetch_size,
            timestamp_precision,
        })
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The underlying connection, for calls this type has no method for.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.connection
    }

    /// Executes one statement through `executeStatementV2`, as IoTDB's CLI does.
    pub async fn execute(&mut self, sql: &str) -> Result<Outcome> {
        let req = t::TSExecuteStatementReq::new(
            self.session_id,
            sql.to_string(),
            self.statement_id,
            Some(self.fetch_size),
            None,
            None,
            None,
        );
        let resp: t::TSExecuteStatementResp =
            self.connection.call("executeStatementV2", 1, &req).await?;
        check(&resp.status)?;
        // A query id marks a result set, also one without value columns (a SELECT whose paths match no
        // series: only Time), which IoTDB's CLI prints as an empty table, not as a success message.
        let is_result_set =
            resp.query_id.is_some() || resp.columns.as_ref().is_some_and(|c| !c.is_empty());
        if !is_result_set {
            return Ok(Outcome::Done(resp.status));
        }
        let columns = resp.columns.unwrap_or_default();
        let data_types = resp
            .data_type_list
            .unwrap_or_default()
            .iter()
            .map(|name| {
                DataType::from_name(name)
                    .ok_or_else(|| ClientError::Unexpected(format!("unknown data type {name}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if data_types.len() != columns.len() {
            return Err(ClientError::Unexpected(
                "dataTypeList and columns differ in length".into(),
            ));
        }
        let column_map = resp.column_index2_ts_block_column_index_list.map(|m| {
            m.into_iter()
                .map(|i| usize::try_from(i).unwrap_or(usize::MAX))
                .collect()
        });
        Ok(Outcome::Rows(ResultSet {
            query_id: resp.query_id.unwrap_or(-1),
            columns,
            data_types,
            ignore_time_stamp: resp.ignore_time_stamp.unwrap_or(false),
            column_map,
            pending: resp.query_result.unwrap_or_default().into(),
            more_data: resp.more_data.unwrap_or(false),
            statement: sql.to_string(),
        }))
    }

    /// Executes a statement that must not return rows.
    pub async fn execute_update(&mut self, sql: &str) -> Result<()> {
        let req = t::TSExecuteStatementReq::new(
            self.session_id,
            sql.to_string(),
            self.statement_id,
            None,
            None,
            None,
            None,
        );
        let resp: t::TSExecuteStatementResp = self
            .connection
            .call("executeUpdateStatementV2", 1, &req)
            .await?;
        check(&resp.status)
    }

    /// The next block of a result set, fetching more pages as needed; `None` at the end.
    pub async fn next_block(&mut self, rs: &mut ResultSet) -> Result<Option<TsBlock>> {
        loop {
            if let Some(bytes) = rs.pending.pop_front() {
                let block = rs.decode_block(&bytes)?;
                if block.n_rows() == 0 {
                    continue;
                }
                return Ok(Some(block));
            }
            if !rs.more_data {
                return Ok(None);
            }
            let req = t::TSFetchResultsReq::new(
                self.session_id,
                rs.statement.clone(),
                self.fetch_size,
                rs.query_id,
                true,
                None,
                Some(self.statement_id),
            );
            let resp: t::TSFetchResultsResp =
                self.connection.call("fetchResultsV2", 1, &req).await?;
            check(&resp.status)?;
            rs.more_data = resp.more_data.unwrap_or(false);
            if !resp.has_result_set {
                rs.more_data = false;
            }
            rs.pending = resp.query_result.unwrap_or_default().into();
        }
    }

    /// Reads every remaining block of a result set, then closes it.
    pub async fn collect(&mut self, mut rs: ResultSet) -> Result<(ResultSet, Vec<TsBlock>)> {
        let mut blocks = Vec::new();
        while let Some(block) = self.next_block(&mut rs).await? {
            blocks.push(block);
        }
        self.close_result(&rs).await?;
        Ok((rs, blocks))
    }

    /// Releases a result set on the server. A result whose last page the server already sent
    /// (`moreData` false) was released by the server then — Duet and IoTDB both clean a finished
    /// query up at once — so it costs no round trip.
    pub async fn close_result(&mut self, rs: &ResultSet) -> Result<()> {
        if !rs.more_data {
            return Ok(());
        }
        let req = t::TSCloseOperationReq::new(
            self.session_id,
            Some(rs.query_id),
            Some(self.statement_id),
            None,
        );
        let _: t::TSStatus = self.connection.call("closeOperation", 1, &req).await?;
        Ok(())
    }

    /// `getProperties`, as IoTDB's Java CLI calls it after connecting.
    pub async fn properties(&mut self) -> Result<t::ServerProperties> {
        let payload = rpc::encode_empty_call(self.connection.protocol(), "getProperties")?;
        let reply = self.connection.round_trip(&payload).await?;
        Ok(rpc::decode_struct_reply(&reply)?)
    }

    /// Closes the session and the connection.
    pub async fn close(mut self) -> Result<()> {
        let req = t::TSCloseSessionReq::new(self.session_id);
        let _: t::TSStatus = self.connection.call("closeSession", 1, &req).await?;
        Ok(())
    }
}
