//! Every RPC of `IClientRPCService`, as a typed [`Request`] decoded from a call message, and the [`Reply`]
//! written back; plus the client-side envelope helpers.
//!
//! Each method's arguments are a struct whose field 1 (or -1 for `pipeTransfer`, `pipeSubscribe` and
//! `handshake`) is the request; the result is a struct whose field 0 is `success`. Every method of the
//! IDL decodes to a variant (those Duet does not serve to [`Request::NotSupported`], which names the
//! method and the shape of its answer); names outside the IDL decode to [`Request::Unknown`] so the
//! server can answer with a Thrift application exception and keep the connection.

use thrift::protocol::{TFieldIdentifier, TInputProtocol, TMessageType, TSerializable, TType};
use thrift::{ApplicationError, ApplicationErrorKind};

use crate::codec::{self, encode_message, read_fields, read_struct_arg, Protocol};
use crate::t;
use crate::{ProtoError, Result};

/// The envelope of a call: which method, the sequence id to echo, and the protocol to answer in.
#[derive(Debug, Clone)]
pub struct CallHeader {
    pub name: String,
    pub seq: i32,
    pub protocol: Protocol,
}

/// Which of the three execute RPCs carried a statement (they share one handler, but only
/// `executeQueryStatementV2` callers insist on a result set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecuteKind {
    Query,
    Update,
    Any,
}

/// The result layout a query RPC answers with: TsBlocks in `queryResult` (the V2 methods) or the V1
/// `TSQueryDataSet` in `queryDataSet` (`executeStatement`, `fetchResults`, `executeRawDataQuery`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    TsBlocks,
    QueryDataSet,
}

/// The shape of the answer of a method Duet does not serve: each carries a status naming the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSupportedReply {
    Status,
    FetchMetadata,
    ShowConfigurationTemplate,
    ShowConfiguration,
    PipeSubscribe { version: i8, type_: i16 },
}

/// A decoded call.
#[derive(Debug, Clone)]
pub enum Request {
    OpenSession(t::TSOpenSessionReq),
    CloseSession(t::TSCloseSessionReq),
    RequestStatementId {
        session_id: i64,
    },
    SetTimeZone(t::TSSetTimeZoneReq),
    GetTimeZone {
        session_id: i64,
    },
    GetProperties,
    Execute {
        kind: ExecuteKind,
        format: ResultFormat,
        req: t::TSExecuteStatementReq,
    },
    ExecuteBatch(t::TSExecuteBatchStatementReq),
    FetchResults(t::TSFetchResultsReq),
    /// `fetchResults`, the V1 fetch answering a `TSQueryDataSet`.
    FetchResultsV1(t::TSFetchResultsReq),
    RawDataQuery {
        format: ResultFormat,
        req: t::TSRawDataQueryReq,
    },
    LastDataQuery {
        format: ResultFormat,
        req: t::TSLastDataQueryReq,
    },
    FastLastDataQueryForOnePrefixPath(t::TSFastLastDataQueryForOnePrefixPathReq),
    FastLastDataQueryForOneDevice(t::TSFastLastDataQueryForOneDeviceReq),
    AggregationQuery {
        format: ResultFormat,
        req: t::TSAggregationQueryReq,
    },
    GroupByQueryInterval(t::TSGroupByQueryIntervalReq),
    /// `testInsertTablet(s)`, `testInsertRecord(s)`, `testInsertStringRecord(s)`,
    /// `testInsertRecordsOfOneDevice`: the request was decoded (and is dropped); nothing is written.
    TestInsert {
        method: &'static str,
    },
    TestConnectionEmptyRpc,
    FetchAllConnectionsInfo,
    GetBackupConfiguration,
    /// A method of the IDL that Duet answers with a "not supported" status.
    NotSupported {
        method: &'static str,
        reply: NotSupportedReply,
    },
    CloseOperation(t::TSCloseOperationReq),
    CancelOperation(t::TSCancelOperationReq),
    SetStorageGroup {
        session_id: i64,
        database: String,
    },
    CreateTimeseries(t::TSCreateTimeseriesReq),
    CreateAlignedTimeseries(t::TSCreateAlignedTimeseriesReq),
    CreateMultiTimeseries(t::TSCreateMultiTimeseriesReq),
    DeleteTimeseries {
        session_id: i64,
        paths: Vec<String>,
    },
    DeleteStorageGroups {
        session_id: i64,
        databases: Vec<String>,
    },
    InsertRecord(t::TSInsertRecordReq),
    InsertStringRecord(t::TSInsertStringRecordReq),
    InsertRecords(t::TSInsertRecordsReq),
    InsertRecordsOfOneDevice(t::TSInsertRecordsOfOneDeviceReq),
    InsertStringRecords(t::TSInsertStringRecordsReq),
    InsertStringRecordsOfOneDevice(t::TSInsertStringRecordsOfOneDeviceReq),
    InsertTablet(t::TSInsertTabletReq),
    InsertTablets(t::TSInsertTabletsReq),
    DeleteData(t::TSDeleteDataReq),
    PipeTransfer(t::TPipeTransferReq),
    /// The device-template RPCs; `createSchemaTemplate`'s serialized template is decoded by
    /// [`crate::schema_template::decode`] when it is executed, so a bad one gets a status.
    CreateSchemaTemplate(t::TSCreateSchemaTemplateReq),
    AppendSchemaTemplate(t::TSAppendSchemaTemplateReq),
    PruneSchemaTemplate(t::TSPruneSchemaTemplateReq),
    QuerySchemaTemplate(t::TSQueryTemplateReq),
    SetSchemaTemplate(t::TSSetSchemaTemplateReq),
    UnsetSchemaTemplate(t::TSUnsetSchemaTemplateReq),
    DropSchemaTemplate(t::TSDropSchemaTemplateReq),
    CreateTimeseriesUsingSchemaTemplate(t::TCreateTimeseriesUsingSchemaTemplateReq),
    /// A method this server does not implement.
    Unknown,
}

/// What a server writes back for a request.
///
/// One reply is built per call and moved once into its encoder, so the size of the largest variant
/// (the execute response, with both result layouts) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Reply {
    Status(t::TSStatus),
    OpenSession(t::TSOpenSessionResp),
    Execute(t::TSExecuteStatementResp),
    Fetch(t::TSFetchResultsResp),
    TimeZone(t::TSGetTimeZoneResp),
    Properties(t::ServerProperties),
    StatementId(i64),
    PipeTransfer(t::TPipeTransferResp),
    FetchMetadata(t::TSFetchMetadataResp),
    QueryTemplate(t::TSQueryTemplateResp),
    ShowConfigurationTemplate(t::TShowConfigurationTemplateResp),
    ShowConfiguration(t::TShowConfigurationResp),
    PipeSubscribe(t::TPipeSubscribeResp),
    BackupConfiguration(t::TSBackupConfigurationResp),
    ConnectionsInfo(t::TSConnectionInfoResp),
}

/// The outcome of decoding one call frame.
#[derive(Debug)]
pub enum Decoded {
    /// A call with its arguments.
    Call(CallHeader, Request),
    /// A well-framed call whose arguments could not be read: answer with an exception, keep going.
    BadArguments(CallHeader, String),
}

/// Decodes a call frame. An error here means the frame is not a Thrift call at all.
pub fn decode_call(payload: &[u8]) -> Result<Decoded> {
    let protocol = Protocol::detect(payload)?;
    let mut prot = codec::input_protocol(protocol, payload);
    let ident = prot.read_message_begin()?;
    if ident.message_type != TMessageType::Call && ident.message_type != TMessageType::OneWay {
        return Err(ProtoError::Malformed(format!(
            "expected a call, got {:?}",
            ident.message_type
        )));
    }
    let header = CallHeader {
        name: ident.name.clone(),
        seq: ident.sequence_number,
        protocol,
    };
    match decode_arguments(&ident.name, prot.as_mut()) {
        Ok(request) => Ok(Decoded::Call(header, request)),
        Err(e) => Ok(Decoded::BadArguments(header, crate::input::describe(&e))),
    }
}

fn decode_arguments(name: &str, prot: &mut dyn TInputProtocol) -> thrift::Result<Request> {
    let one = &[1];
    Ok(match name {
        "openSession" => Request::OpenSession(read_struct_arg(prot, one)?),
        "closeSession" => Request::CloseSession(read_struct_arg(prot, one)?),
        "requestStatementId" => Request::RequestStatementId {
            session_id: read_i64_arg(prot)?,
        },
        "setTimeZone" => Request::SetTimeZone(read_struct_arg(prot, one)?),
        "getTimeZone" => Request::GetTimeZone {
            session_id: read_i64_arg(prot)?,
        },
        "getProperties" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            Request::GetProperties
        }
        "executeQueryStatementV2"
        | "executeUpdateStatementV2"
        | "executeStatementV2"
        | "executeQueryStatement"
        | "executeUpdateStatement"
        | "executeStatement" => {
            let kind = if name.starts_with("executeQuery") {
                ExecuteKind::Query
            } else if name.starts_with("executeUpdate") {
                ExecuteKind::Update
            } else {
                ExecuteKind::Any
            };
            Request::Execute {
                kind,
                format: format_of(name),
                req: read_struct_arg(prot, one)?,
            }
        }
        "executeBatchStatement" => Request::ExecuteBatch(read_struct_arg(prot, one)?),
        "fetchResultsV2" => Request::FetchResults(read_struct_arg(prot, one)?),
        "fetchResults" => Request::FetchResultsV1(read_struct_arg(prot, one)?),
        "executeRawDataQueryV2" | "executeRawDataQuery" => Request::RawDataQuery {
            format: format_of(name),
            req: read_struct_arg(prot, one)?,
        },
        "executeLastDataQueryV2" | "executeLastDataQuery" => Request::LastDataQuery {
            format: format_of(name),
            req: read_struct_arg(prot, one)?,
        },
        "executeAggregationQueryV2" | "executeAggregationQuery" => Request::AggregationQuery {
            format: format_of(name),
            req: read_struct_arg(prot, one)?,
        },
        "executeFastLastDataQueryForOnePrefixPath" => {
            Request::FastLastDataQueryForOnePrefixPath(read_struct_arg(prot, one)?)
        }
        "executeFastLastDataQueryForOneDeviceV2" => {
            Request::FastLastDataQueryForOneDevice(read_struct_arg(prot, one)?)
        }
        "executeGroupByQueryIntervalQuery" => {
            Request::GroupByQueryInterval(read_struct_arg(prot, one)?)
        }
        "testInsertTablet" => {
            let _: t::TSInsertTabletReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertTablet",
            }
        }
        "testInsertTablets" => {
            let _: t::TSInsertTabletsReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertTablets",
            }
        }
        "testInsertRecord" => {
            let _: t::TSInsertRecordReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertRecord",
            }
        }
        "testInsertStringRecord" => {
            let _: t::TSInsertStringRecordReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertStringRecord",
            }
        }
        "testInsertRecords" => {
            let _: t::TSInsertRecordsReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertRecords",
            }
        }
        "testInsertRecordsOfOneDevice" => {
            let _: t::TSInsertRecordsOfOneDeviceReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertRecordsOfOneDevice",
            }
        }
        "testInsertStringRecords" => {
            let _: t::TSInsertStringRecordsReq = read_struct_arg(prot, one)?;
            Request::TestInsert {
                method: "testInsertStringRecords",
            }
        }
        "testConnectionEmptyRPC" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            Request::TestConnectionEmptyRpc
        }
        "fetchAllConnectionsInfo" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            Request::FetchAllConnectionsInfo
        }
        "getBackupConfiguration" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            Request::GetBackupConfiguration
        }
        "fetchMetadata" => {
            let _: t::TSFetchMetadataReq = read_struct_arg(prot, one)?;
            not_supported("fetchMetadata", NotSupportedReply::FetchMetadata)
        }
        "createSchemaTemplate" => Request::CreateSchemaTemplate(read_struct_arg(prot, one)?),
        "appendSchemaTemplate" => Request::AppendSchemaTemplate(read_struct_arg(prot, one)?),
        "pruneSchemaTemplate" => Request::PruneSchemaTemplate(read_struct_arg(prot, one)?),
        "querySchemaTemplate" => Request::QuerySchemaTemplate(read_struct_arg(prot, one)?),
        "setSchemaTemplate" => Request::SetSchemaTemplate(read_struct_arg(prot, one)?),
        "unsetSchemaTemplate" => Request::UnsetSchemaTemplate(read_struct_arg(prot, one)?),
        "dropSchemaTemplate" => Request::DropSchemaTemplate(read_struct_arg(prot, one)?),
        "createTimeseriesUsingSchemaTemplate" => {
            Request::CreateTimeseriesUsingSchemaTemplate(read_struct_arg(prot, one)?)
        }
        "showConfigurationTemplate" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            not_supported(
                "showConfigurationTemplate",
                NotSupportedReply::ShowConfigurationTemplate,
            )
        }
        "showConfiguration" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            not_supported("showConfiguration", NotSupportedReply::ShowConfiguration)
        }
        "handshake" => {
            let _: t::TSyncIdentityInfo = read_struct_arg(prot, &[-1, 1])?;
            not_supported("handshake", NotSupportedReply::Status)
        }
        "sendPipeData" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            not_supported("sendPipeData", NotSupportedReply::Status)
        }
        "sendFile" => {
            read_fields(prot, |_, _, _| Ok(false))?;
            not_supported("sendFile", NotSupportedReply::Status)
        }
        "pipeSubscribe" => {
            let req: t::TPipeSubscribeReq = read_struct_arg(prot, &[-1, 1])?;
            not_supported(
                "pipeSubscribe",
                NotSupportedReply::PipeSubscribe {
                    version: req.version,
                    type_: req.type_,
                },
            )
        }
        "closeOperation" => Request::CloseOperation(read_struct_arg(prot, one)?),
        "cancelOperation" => Request::CancelOperation(read_struct_arg(prot, one)?),
        "setStorageGroup" => {
            let (session_id, mut strings) = read_session_and_strings(prot)?;
            Request::SetStorageGroup {
                session_id,
                database: strings
                    .pop()
                    .ok_or_else(|| codec::missing("storageGroup"))?,
            }
        }
        "deleteTimeseries" => {
            let (session_id, paths) = read_session_and_strings(prot)?;
            Request::DeleteTimeseries { session_id, paths }
        }
        "deleteStorageGroups" => {
            let (session_id, databases) = read_session_and_strings(prot)?;
            Request::DeleteStorageGroups {
                session_id,
                databases,
            }
        }
        "createTimeseries" => Request::CreateTimeseries(read_struct_arg(prot, one)?),
        "createAlignedTimeseries" => Request::CreateAlignedTimeseries(read_struct_arg(prot, one)?),
        "createMultiTimeseries" => Request::CreateMultiTimeseries(read_struct_arg(prot, one)?),
        "insertRecord" => Request::InsertRecord(read_struct_arg(prot, one)?),
        "insertStringRecord" => Request::InsertStringRecord(read_struct_arg(prot, one)?),
        "insertRecords" => Request::InsertRecords(read_struct_arg(prot, one)?),
        "insertRecordsOfOneDevice" => {
            Request::InsertRecordsOfOneDevice(read_struct_arg(prot, one)?)
        }
        "insertStringRecords" => Request::InsertStringRecords(read_struct_arg(prot, one)?),
        "insertStringRecordsOfOneDevice" => {
            Request::InsertStringRecordsOfOneDevice(read_struct_arg(prot, one)?)
        }
        "insertTablet" => Request::InsertTablet(read_struct_arg(prot, one)?),
        "insertTablets" => Request::InsertTablets(read_struct_arg(prot, one)?),
        "deleteData" => Request::DeleteData(read_struct_arg(prot, one)?),
        "pipeTransfer" => Request::PipeTransfer(read_struct_arg(prot, &[-1, 1])?),
        _ => Request::Unknown,
    })
}

/// V2 method names end in `V2`; their V1 twins answer the `TSQueryDataSet` layout.
fn format_of(name: &str) -> ResultFormat {
    if name.ends_with("V2") {
        ResultFormat::TsBlocks
    } else {
        ResultFormat::QueryDataSet
    }
}

fn not_supported(method: &'static str, reply: NotSupportedReply) -> Request {
    Request::NotSupported { method, reply }
}

/// Every method of `IClientRPCService` (IoTDB 2.0.x), in IDL order: the names [`decode_call`] knows.
pub const METHODS: &[&str] = &[
    "executeQueryStatementV2",
    "executeUpdateStatementV2",
    "executeStatementV2",
    "executeRawDataQueryV2",
    "executeLastDataQueryV2",
    "executeFastLastDataQueryForOnePrefixPath",
    "executeFastLastDataQueryForOneDeviceV2",
    "executeAggregationQueryV2",
    "executeGroupByQueryIntervalQuery",
    "fetchResultsV2",
    "openSession",
    "closeSession",
    "executeStatement",
    "executeBatchStatement",
    "executeQueryStatement",
    "executeUpdateStatement",
    "fetchResults",
    "fetchMetadata",
    "cancelOperation",
    "closeOperation",
    "getTimeZone",
    "setTimeZone",
    "getProperties",
    "setStorageGroup",
    "createTimeseries",
    "createAlignedTimeseries",
    "createMultiTimeseries",
    "deleteTimeseries",
    "deleteStorageGroups",
    "insertRecord",
    "insertStringRecord",
    "insertTablet",
    "insertTablets",
    "insertRecords",
    "insertRecordsOfOneDevice",
    "insertStringRecordsOfOneDevice",
    "insertStringRecords",
    "testInsertTablet",
    "testInsertTablets",
    "testInsertRecord",
    "testInsertStringRecord",
    "testInsertRecords",
    "testInsertRecordsOfOneDevice",
    "testInsertStringRecords",
    "deleteData",
    "executeRawDataQuery",
    "executeLastDataQuery",
    "executeAggregationQuery",
    "requestStatementId",
    "createSchemaTemplate",
    "appendSchemaTemplate",
    "pruneSchemaTemplate",
    "querySchemaTemplate",
    "showConfigurationTemplate",
    "showConfiguration",
    "setSchemaTemplate",
    "unsetSchemaTemplate",
    "dropSchemaTemplate",
    "createTimeseriesUsingSchemaTemplate",
    "handshake",
    "sendPipeData",
    "sendFile",
    "pipeTransfer",
    "pipeSubscribe",
    "getBackupConfiguration",
    "fetchAllConnectionsInfo",
    "testConnectionEmptyRPC",
];

fn read_i64_arg(prot: &mut dyn TInputProtocol) -> thrift::Result<i64> {
    let mut value = None;
    read_fields(prot, |id, ttype, p| {
        if id == 1 && ttype == TType::I64 {
            value = Some(p.read_i64()?);
            Ok(true)
        } else {
            Ok(false)
        }
    })?;
    value.ok_or_else(|| codec::missing("sessionId"))
}

/// Reads `(1: i64 sessionId, 2: string | list<string>)`.
fn read_session_and_strings(prot: &mut dyn TInputProtocol) -> thrift::Result<(i64, Vec<String>)> {
    let mut session = None;
    let mut strings = Vec::new();
    read_fields(prot, |id, ttype, p| match (id, ttype) {
        (1, TType::I64) => {
            session = Some(p.read_i64()?);
            Ok(true)
        }
        (2, TType::String) => {
            strings.push(p.read_string()?);
            Ok(true)
        }
        (2, TType::List) => {
            let list = p.read_list_begin()?;
            for _ in 0..list.size {
                strings.push(p.read_string()?);
            }
            p.read_list_end()?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok((session.ok_or_else(|| codec::missing("sessionId"))?, strings))
}

/// Encodes the reply to a call.
pub fn encode_reply(header: &CallHeader, reply: &Reply) -> Result<Vec<u8>> {
    encode_message(
        header.protocol,
        &header.name,
        TMessageType::Reply,
        header.seq,
        |prot| match reply {
            Reply::Status(v) => codec::write_struct_field(prot, 0, v),
            Reply::OpenSession(v) => codec::write_struct_field(prot, 0, v),
            Reply::Execute(v) => codec::write_struct_field(prot, 0, v),
            Reply::Fetch(v) => codec::write_struct_field(prot, 0, v),
            Reply::TimeZone(v) => codec::write_struct_field(prot, 0, v),
            Reply::Properties(v) => codec::write_struct_field(prot, 0, v),
            Reply::PipeTransfer(v) => codec::write_struct_field(prot, 0, v),
            Reply::FetchMetadata(v) => codec::write_struct_field(prot, 0, v),
            Reply::QueryTemplate(v) => codec::write_struct_field(prot, 0, v),
            Reply::ShowConfigurationTemplate(v) => codec::write_struct_field(prot, 0, v),
            Reply::ShowConfiguration(v) => codec::write_struct_field(prot, 0, v),
            Reply::PipeSubscribe(v) => codec::write_struct_field(prot, 0, v),
            Reply::BackupConfiguration(v) => codec::write_struct_field(prot, 0, v),
            Reply::ConnectionsInfo(v) => codec::write_struct_field(prot, 0, v),
            Reply::StatementId(v) => codec::write_i64_field(prot, 0, *v),
        },
    )
}

/// Encodes a Thrift application exception as the answer to a call.
pub fn encode_exception(
    header: &CallHeader,
    kind: ApplicationErrorKind,
    message: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    {
        let mut prot = codec::output_protocol(header.protocol, &mut out);
        prot.write_message_begin(&thrift::protocol::TMessageIdentifier::new(
            header.name.as_str(),
            TMessageType::Exception,
            header.seq,
        ))?;
        thrift::Error::write_application_error_to_out_protocol(
            &ApplicationError::new(kind, message),
            prot.as_mut(),
        )?;
        prot.write_message_end()?;
        prot.flush()?;
    }
    Ok(out)
}

/// Client side: encodes a call whose argument field `id` is the struct `arg`.
pub fn encode_struct_call<T: TSerializable>(
    protocol: Protocol,
    name: &str,
    id: i16,
    arg: &T,
) -> Result<Vec<u8>> {
    encode_message(protocol, name, TMessageType::Call, 0, |prot| {
        codec::write_struct_field(prot, id, arg)
    })
}

/// Client side: encodes a call whose only argument is `1: i64`.
pub fn encode_i64_call(protocol: Protocol, name: &str, value: i64) -> Result<Vec<u8>> {
    encode_message(protocol, name, TMessageType::Call, 0, |prot| {
        codec::write_i64_field(prot, 1, value)
    })
}

/// Client side: encodes a call without arguments.
pub fn encode_empty_call(protocol: Protocol, name: &str) -> Result<Vec<u8>> {
    encode_message(protocol, name, TMessageType::Call, 0, |_| Ok(()))
}

/// Client side: the ways a reply can fail to deliver a result.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("server raised an application exception: {0}")]
    Application(String),
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

impl From<thrift::Error> for ReplyError {
    fn from(e: thrift::Error) -> Self {
        ReplyError::Proto(ProtoError::Thrift(e))
    }
}

/// Client side: decodes a reply whose `success` field (0) is read by `read_success`.
pub fn decode_reply<T>(
    payload: &[u8],
    read_success: impl Fn(&mut dyn TInputProtocol) -> thrift::Result<T>,
) -> std::result::Result<T, ReplyError> {
    let protocol = Protocol::detect(payload)?;
    let mut prot = codec::input_protocol(protocol, payload);
    let ident = prot.read_message_begin()?;
    if ident.message_type == TMessageType::Exception {
        let e = thrift::Error::read_application_error_from_in_protocol(prot.as_mut())?;
        return Err(ReplyError::Application(e.message));
    }
    let mut value = None;
    read_fields(prot.as_mut(), |id, _, p| {
        if id == 0 {
            value = Some(read_success(p)?);
            Ok(true)
        } else {
            Ok(false)
        }
    })?;
    value.ok_or_else(|| ReplyError::Proto(ProtoError::Malformed("reply without a result".into())))
}

/// Client side: decodes a reply whose result is a struct.
pub fn decode_struct_reply<T: TSerializable>(payload: &[u8]) -> std::result::Result<T, ReplyError> {
    decode_reply(payload, |p| T::read_from_in_protocol(p))
}

/// A field identifier helper for hand-written structs elsewhere in the workspace.
pub fn field(name: &str, ttype: TType, id: i16) -> TFieldIdentifier {
    TFieldIdentifier::new(name, ttype, id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The frame of reference §1: `requestStatementId(1000)` in the binary protocol.
    #[test]
    fn request_statement_id_matches_the_captured_bytes() {
        let payload = encode_i64_call(Protocol::Binary, "requestStatementId", 1000).unwrap();
        let mut expected = vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 0x12];
        expected.extend_from_slice(b"requestStatementId");
        expected.extend_from_slice(&[
            0, 0, 0, 0, 0x0a, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0x00,
        ]);
        assert_eq!(payload, expected);
        match decode_call(&payload).unwrap() {
            Decoded::Call(h, Request::RequestStatementId { session_id }) => {
                assert_eq!(h.name, "requestStatementId");
                assert_eq!(session_id, 1000);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn both_protocols_round_trip_a_struct_call_and_reply() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            let req = t::TSExecuteStatementReq::new(
                7,
                "show pipes".to_string(),
                9,
                Some(5000),
                None,
                None,
                None,
            );
            let payload = encode_struct_call(protocol, "executeStatementV2", 1, &req).unwrap();
            let Decoded::Call(header, Request::Execute { kind, req: got, .. }) =
                decode_call(&payload).unwrap()
            else {
                panic!("not an execute")
            };
            assert_eq!(header.protocol, protocol);
            assert_eq!(kind, ExecuteKind::Any);
            assert_eq!(got, req);
            let reply = encode_reply(&header, &Reply::Status(crate::status::success())).unwrap();
            let status: t::TSStatus = decode_struct_reply(&reply).unwrap();
            assert_eq!(status.code, 200);
        }
    }

    #[test]
    fn pipe_transfer_uses_field_minus_one() {
        let req = t::TPipeTransferReq::new(1, 51, vec![0, 0, 0, 0]);
        let payload = encode_struct_call(Protocol::Binary, "pipeTransfer", -1, &req).unwrap();
        let Decoded::Call(_, Request::PipeTransfer(got)) = decode_call(&payload).unwrap() else {
            panic!()
        };
        assert_eq!(got, req);
    }

    #[test]
    fn unknown_methods_and_bad_arguments_are_not_fatal() {
        let payload = encode_i64_call(Protocol::Binary, "noSuchMethod", 1).unwrap();
        let Decoded::Call(header, Request::Unknown) = decode_call(&payload).unwrap() else {
            panic!()
        };
        let reply = encode_exception(&header, ApplicationErrorKind::UnknownMethod, "nope").unwrap();
        match decode_struct_reply::<t::TSStatus>(&reply) {
            Err(ReplyError::Application(m)) => assert_eq!(m, "nope"),
            other => panic!("unexpected {other:?}"),
        }
        let payload = encode_i64_call(Protocol::Binary, "openSession", 1).unwrap();
        assert!(matches!(
            decode_call(&payload).unwrap(),
            Decoded::BadArguments(..)
        ));
        assert!(decode_call(&[0x12, 0x34]).is_err());
    }

    /// No method of the IDL falls through to `Unknown` (which the server answers with a Thrift
    /// exception): each decodes, or, called without its arguments, is a known method with bad ones.
    #[test]
    fn every_idl_method_is_known() {
        for name in METHODS {
            let payload = encode_empty_call(Protocol::Binary, name).unwrap();
            match decode_call(&payload).unwrap() {
                Decoded::Call(_, Request::Unknown) => panic!("{name} decodes as unknown"),
                Decoded::Call(h, _) | Decoded::BadArguments(h, _) => assert_eq!(h.name, *name),
            }
        }
        assert_eq!(METHODS.len(), 67);
    }

    /// The template RPCs are served: each decodes to its own request, never to a refusal.
    #[test]
    fn template_calls_decode_to_their_requests() {
        let create = t::TSCreateSchemaTemplateReq::new(1, "t1".into(), vec![0, 0, 0, 0, 0]);
        let payload =
            encode_struct_call(Protocol::Binary, "createSchemaTemplate", 1, &create).unwrap();
        let Decoded::Call(_, Request::CreateSchemaTemplate(got)) = decode_call(&payload).unwrap()
        else {
            panic!("createSchemaTemplate")
        };
        assert_eq!(got, create);
        let query = t::TSQueryTemplateReq::new(1, "t1".into(), 6, Some("s".into()));
        let payload =
            encode_struct_call(Protocol::Compact, "querySchemaTemplate", 1, &query).unwrap();
        let Decoded::Call(_, Request::QuerySchemaTemplate(got)) = decode_call(&payload).unwrap()
        else {
            panic!("querySchemaTemplate")
        };
        assert_eq!(got, query);
        let activate = t::TCreateTimeseriesUsingSchemaTemplateReq::new(1, vec!["root.a.d".into()]);
        let payload = encode_struct_call(
            Protocol::Binary,
            "createTimeseriesUsingSchemaTemplate",
            1,
            &activate,
        )
        .unwrap();
        assert!(matches!(
            decode_call(&payload).unwrap(),
            Decoded::Call(_, Request::CreateTimeseriesUsingSchemaTemplate(r)) if r == activate
        ));
        for name in [
            "appendSchemaTemplate",
            "pruneSchemaTemplate",
            "setSchemaTemplate",
            "unsetSchemaTemplate",
            "dropSchemaTemplate",
        ] {
            let payload = encode_empty_call(Protocol::Binary, name).unwrap();
            assert!(
                matches!(decode_call(&payload).unwrap(), Decoded::BadArguments(..)),
                "{name} without its request is a call with bad arguments, not a refusal"
            );
        }
    }

    #[test]
    fn v1_and_v2_twins_differ_only_in_format() {
        let req = t::TSRawDataQueryReq::new(
            1,
            vec!["root.sg.d.s".into()],
            None,
            0,
            10,
            2,
            None,
            None,
            None,
            None,
        );
        for (name, format) in [
            ("executeRawDataQueryV2", ResultFormat::TsBlocks),
            ("executeRawDataQuery", ResultFormat::QueryDataSet),
        ] {
            let payload = encode_struct_call(Protocol::Compact, name, 1, &req).unwrap();
            let Decoded::Call(
                _,
                Request::RawDataQuery {
                    format: got,
                    req: r,
                },
            ) = decode_call(&payload).unwrap()
            else {
                panic!("{name}")
            };
            assert_eq!(got, format);
            assert_eq!(r, req);
        }
        let payload = encode_empty_call(Protocol::Binary, "fetchAllConnectionsInfo").unwrap();
        assert!(matches!(
            decode_call(&payload).unwrap(),
            Decoded::Call(_, Request::FetchAllConnectionsInfo)
        ));
    }
}
