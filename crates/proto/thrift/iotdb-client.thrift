// Duet's trimmed copy of Apache IoTDB's client RPC service (client.thrift + common.thrift).
//
// Field ids, types and requiredness follow IoTDB exactly (shared/reference/iotdb-client-protocol.md §4);
// structs and methods Duet does not serve are left out, and unknown fields are skipped on read, so a
// peer sending the full IDL still interoperates. Regenerate the Rust code with scripts/gen-thrift.sh.

namespace rs duet

// ---------------------------------------------------------------- common.thrift

struct TEndPoint {
  1: required string ip
  2: required i32 port
}

struct TSStatus {
  1: required i32 code
  2: optional string message
  3: optional list<TSStatus> subStatus
  4: optional TEndPoint redirectNode
  5: optional bool needRetry
  6: optional binary responseData
}

// ---------------------------------------------------------------- sessions

struct TSOpenSessionReq {
  1: required i32 client_protocol = 2
  2: required string zoneId
  3: required string username
  4: optional string password
  5: optional map<string, string> configuration
}

struct TSOpenSessionResp {
  1: required TSStatus status
  2: required i32 serverProtocolVersion = 0
  3: optional i64 sessionId
  4: optional map<string, string> configuration
}

struct TSCloseSessionReq {
  1: required i64 sessionId
}

struct TSSetTimeZoneReq {
  1: required i64 sessionId
  2: required string timeZone
}

struct TSGetTimeZoneResp {
  1: required TSStatus status
  2: required string timeZone
}

struct ServerProperties {
  1: required string version
  2: required list<string> supportedTimeAggregationOperations
  3: required string timestampPrecision
  4: i32 maxConcurrentClientNum
  5: optional i32 thriftMaxFrameSize
  6: optional bool isReadOnly
  7: optional string buildInfo
  8: optional string logo
}

// ---------------------------------------------------------------- execute / fetch / close

struct TSExecuteStatementReq {
  1: required i64 sessionId
  2: required string statement
  3: required i64 statementId
  4: optional i32 fetchSize
  5: optional i64 timeout
  6: optional bool enableRedirectQuery
  7: optional bool jdbcQuery
}

struct TSExecuteStatementResp {
  1: required TSStatus status
  2: optional i64 queryId
  3: optional list<string> columns
  4: optional string operationType
  5: optional bool ignoreTimeStamp
  6: optional list<string> dataTypeList
  9: optional map<string, i32> columnNameIndexMap
  10: optional list<string> sgColumns
  11: optional list<byte> aliasColumns
  13: optional list<binary> queryResult
  14: optional bool moreData
  15: optional string database
  16: optional bool tableModel
  17: optional list<i32> columnIndex2TsBlockColumnIndexList
}

struct TSExecuteBatchStatementReq {
  1: required i64 sessionId
  2: required list<string> statements
}

struct TSFetchResultsReq {
  1: required i64 sessionId
  2: required string statement
  3: required i32 fetchSize
  4: required i64 queryId
  5: required bool isAlign
  6: optional i64 timeout
  7: optional i64 statementId
}

struct TSFetchResultsResp {
  1: required TSStatus status
  2: required bool hasResultSet
  3: required bool isAlign
  6: optional list<binary> queryResult
  7: optional bool moreData
}

struct TSCloseOperationReq {
  1: required i64 sessionId
  2: optional i64 queryId
  3: optional i64 statementId
  4: optional string preparedStatementName
}

struct TSCancelOperationReq {
  1: required i64 sessionId
  2: required i64 queryId
}

// ---------------------------------------------------------------- writes

struct TSInsertRecordReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<string> measurements
  4: required binary values
  5: required i64 timestamp
  6: optional bool isAligned
  7: optional bool isWriteToTable
  8: optional list<byte> columnCategoryies
}

struct TSInsertStringRecordReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<string> measurements
  4: required list<string> values
  5: required i64 timestamp
  6: optional bool isAligned
  7: optional i64 timeout
}

struct TSInsertRecordsReq {
  1: required i64 sessionId
  2: required list<string> prefixPaths
  3: required list<list<string>> measurementsList
  4: required list<binary> valuesList
  5: required list<i64> timestamps
  6: optional bool isAligned
}

struct TSInsertRecordsOfOneDeviceReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<list<string>> measurementsList
  4: required list<binary> valuesList
  5: required list<i64> timestamps
  6: optional bool isAligned
}

struct TSInsertStringRecordsOfOneDeviceReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<list<string>> measurementsList
  4: required list<list<string>> valuesList
  5: required list<i64> timestamps
  6: optional bool isAligned
}

struct TSInsertStringRecordsReq {
  1: required i64 sessionId
  2: required list<string> prefixPaths
  3: required list<list<string>> measurementsList
  4: required list<list<string>> valuesList
  5: required list<i64> timestamps
  6: optional bool isAligned
}

struct TSInsertTabletReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<string> measurements
  4: required binary values
  5: required binary timestamps
  6: required list<i32> types
  7: required i32 size
  8: optional bool isAligned
  9: optional bool writeToTable
  10: optional list<byte> columnCategories
  11: optional bool isCompressed
  12: optional list<byte> encodingTypes
  13: optional byte compressType
}

struct TSInsertTabletsReq {
  1: required i64 sessionId
  2: required list<string> prefixPaths
  3: required list<list<string>> measurementsList
  4: required list<binary> valuesList
  5: required list<binary> timestampsList
  6: required list<list<i32>> typesList
  7: required list<i32> sizeList
  8: optional bool isAligned
}

// ---------------------------------------------------------------- schema / delete

struct TSCreateTimeseriesReq {
  1: required i64 sessionId
  2: required string path
  3: required i32 dataType
  4: required i32 encoding
  5: required i32 compressor
  6: optional map<string, string> props
  7: optional map<string, string> tags
  8: optional map<string, string> attributes
  9: optional string measurementAlias
}

struct TSCreateAlignedTimeseriesReq {
  1: required i64 sessionId
  2: required string prefixPath
  3: required list<string> measurements
  4: required list<i32> dataTypes
  5: required list<i32> encodings
  6: required list<i32> compressors
  7: optional list<string> measurementAlias
  8: optional list<map<string, string>> tagsList
  9: optional list<map<string, string>> attributesList
}

struct TSCreateMultiTimeseriesReq {
  1: required i64 sessionId
  2: required list<string> paths
  3: required list<i32> dataTypes
  4: required list<i32> encodings
  5: required list<i32> compressors
  6: optional list<map<string, string>> propsList
  7: optional list<map<string, string>> tagsList
  8: optional list<map<string, string>> attributesList
  9: optional list<string> measurementAliasList
}

struct TSDeleteDataReq {
  1: required i64 sessionId
  2: required list<string> paths
  3: required i64 startTime
  4: required i64 endTime
}

// ---------------------------------------------------------------- pipes

struct TPipeTransferReq {
  1: required byte version
  2: required i16 type
  3: required binary body
}

struct TPipeTransferResp {
  1: required TSStatus status
  2: optional binary body
}

// ---------------------------------------------------------------- the service

service IClientRPCService {
  TSExecuteStatementResp executeQueryStatementV2(1: TSExecuteStatementReq req);
  TSExecuteStatementResp executeUpdateStatementV2(1: TSExecuteStatementReq req);
  TSExecuteStatementResp executeStatementV2(1: TSExecuteStatementReq req);
  TSFetchResultsResp fetchResultsV2(1: TSFetchResultsReq req);
  TSOpenSessionResp openSession(1: TSOpenSessionReq req);
  TSStatus closeSession(1: TSCloseSessionReq req);
  TSStatus executeBatchStatement(1: TSExecuteBatchStatementReq req);
  TSStatus cancelOperation(1: TSCancelOperationReq req);
  TSStatus closeOperation(1: TSCloseOperationReq req);
  TSGetTimeZoneResp getTimeZone(1: i64 sessionId);
  TSStatus setTimeZone(1: TSSetTimeZoneReq req);
  ServerProperties getProperties();
  TSStatus setStorageGroup(1: i64 sessionId, 2: string storageGroup);
  TSStatus createTimeseries(1: TSCreateTimeseriesReq req);
  TSStatus createAlignedTimeseries(1: TSCreateAlignedTimeseriesReq req);
  TSStatus createMultiTimeseries(1: TSCreateMultiTimeseriesReq req);
  TSStatus deleteTimeseries(1: i64 sessionId, 2: list<string> path);
  TSStatus deleteStorageGroups(1: i64 sessionId, 2: list<string> storageGroup);
  TSStatus insertRecord(1: TSInsertRecordReq req);
  TSStatus insertStringRecord(1: TSInsertStringRecordReq req);
  TSStatus insertTablet(1: TSInsertTabletReq req);
  TSStatus insertTablets(1: TSInsertTabletsReq req);
  TSStatus insertRecords(1: TSInsertRecordsReq req);
  TSStatus insertRecordsOfOneDevice(1: TSInsertRecordsOfOneDeviceReq req);
  TSStatus insertStringRecordsOfOneDevice(1: TSInsertStringRecordsOfOneDeviceReq req);
  TSStatus insertStringRecords(1: TSInsertStringRecordsReq req);
  TSStatus deleteData(1: TSDeleteDataReq req);
  i64 requestStatementId(1: i64 sessionId);
  TPipeTransferResp pipeTransfer(TPipeTransferReq req);
}
