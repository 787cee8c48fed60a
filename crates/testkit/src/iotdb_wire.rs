//! The bytes an Apache IoTDB 2.x pipe sender puts in `pipeTransfer` requests, written field by field
//! from IoTDB's Java serializers so tests can drive Duet's receiver as a real IoTDB would — on purpose
//! without any of Duet's own codecs, which are what the tests check.
//!
//! Sources (apache/iotdb): `PipeTransferTabletBatchReqV2.toTPipeTransferReq`,
//! `PipeTransferTabletInsertNodeReqV2`, `PipeTransferTabletBinaryReq`, `PipeTransferPlanNodeReq`,
//! `PlanNode.serialize`, `InsertTabletNode`/`InsertRowNode`/`InsertRowsNode` `serializeAttributes` and
//! `serializeToWAL`, `WALEntry`, `DeleteDataNode.serializeAttributes`, `MeasurementPath.serialize`;
//! apache/tsfile `Tablet.serialize`, `MeasurementSchema.serializeTo`, `BitMap`,
//! `ReadWriteIOUtils` (big-endian; a string is an i32 length and UTF-8, -1 for null); the schema
//! snapshot from `MemMTreeSnapshotUtil.MNodeSerializer` and `PipeTransferSchemaSnapshotSealReq`.

/// A value as a sender holds it; `None` in a column or row is a null.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    Text(String),
    Timestamp(i64),
    /// `yyyyMMdd` as an int, as tsfile stores DATE.
    Date(i32),
    Blob(Vec<u8>),
    Str(String),
}

/// tsfile `TSDataType` codes.
pub mod data_type {
    pub const BOOLEAN: u8 = 0;
    pub const INT32: u8 = 1;
    pub const INT64: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const DOUBLE: u8 = 4;
    pub const TEXT: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
    pub const DATE: u8 = 9;
    pub const BLOB: u8 = 10;
    pub const STRING: u8 = 11;
}

impl Value {
    pub fn type_code(&self) -> u8 {
        use data_type::*;
        match self {
            Value::Boolean(_) => BOOLEAN,
            Value::Int32(_) => INT32,
            Value::Int64(_) => INT64,
            Value::Float(_) => FLOAT,
            Value::Double(_) => DOUBLE,
            Value::Text(_) => TEXT,
            Value::Timestamp(_) => TIMESTAMP,
            Value::Date(_) => DATE,
            Value::Blob(_) => BLOB,
            Value::Str(_) => STRING,
        }
    }
}

/// `PipeRequestType` codes.
pub mod request_type {
    pub const HANDSHAKE_DATANODE_V2: i16 = 51;
    pub const TRANSFER_TABLET_INSERT_NODE: i16 = 2;
    pub const TRANSFER_TS_FILE_PIECE: i16 = 4;
    pub const TRANSFER_TS_FILE_SEAL: i16 = 5;
    pub const TRANSFER_TS_FILE_PIECE_WITH_MOD: i16 = 8;
    pub const TRANSFER_TS_FILE_SEAL_WITH_MOD: i16 = 9;
    pub const TRANSFER_TABLET_BINARY: i16 = 7;
    pub const TRANSFER_TABLET_INSERT_NODE_V2: i16 = 10;
    pub const TRANSFER_TABLET_BATCH_V2: i16 = 13;
    pub const TRANSFER_PLAN_NODE: i16 = 100;
    pub const TRANSFER_SCHEMA_SNAPSHOT_PIECE: i16 = 101;
    pub const TRANSFER_SCHEMA_SNAPSHOT_SEAL: i16 = 102;
    pub const TRANSFER_CONFIG_PLAN: i16 = 200;
    pub const TRANSFER_CONFIG_SNAPSHOT_PIECE: i16 = 201;
    pub const TRANSFER_CONFIG_SNAPSHOT_SEAL: i16 = 202;
}

/// A big-endian byte buffer with `ReadWriteIOUtils`' primitives.
#[derive(Debug, Default, Clone)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn len_of(&mut self, n: usize) -> &mut Self {
        self.i32(i32::try_from(n).unwrap_or(i32::MAX))
    }
    pub fn string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => {
                self.len_of(s.len());
                self.0.extend_from_slice(s.as_bytes());
            }
            None => {
                self.i32(-1);
            }
        }
        self
    }
    pub fn binary(&mut self, b: &[u8]) -> &mut Self {
        self.len_of(b.len());
        self.0.extend_from_slice(b);
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A value without its type byte, as `InsertTabletNode.serializeColumn` and `InsertRowNode`
    /// write one.
    fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Boolean(b) => self.u8(u8::from(*b)),
            Value::Int32(x) | Value::Date(x) => self.i32(*x),
            Value::Int64(x) | Value::Timestamp(x) => self.i64(*x),
            Value::Float(x) => self.raw(&x.to_be_bytes()),
            Value::Double(x) => self.raw(&x.to_be_bytes()),
            Value::Text(s) | Value::Str(s) => self.binary(s.as_bytes()),
            Value::Blob(b) => self.binary(b),
        }
    }
    /// A file seal's files: their names, then their lengths.
    fn seal_files(&mut self, files: &[(&str, i64)]) -> &mut Self {
        self.len_of(files.len());
        for (name, _) in files {
            self.string(Some(name));
        }
        self.len_of(files.len());
        for (_, length) in files {
            self.i64(*length);
        }
        self
    }
    /// A string map.
    fn string_map(&mut self, entries: &[(&str, &str)]) -> &mut Self {
        let entries: Vec<_> = entries.iter().map(|(k, v)| (*k, Some(*v))).collect();
        self.string_map_with_nulls(&entries)
    }
    /// A string map whose values may be null.
    fn string_map_with_nulls(&mut self, entries: &[(&str, Option<&str>)]) -> &mut Self {
        self.len_of(entries.len());
        for (k, v) in entries {
            self.string(Some(k)).string(*v);
        }
        self
    }
    /// A path as `PartialPath.serialize` and `MeasurementPath.serialize` begin it: the path type,
    /// the tsfile 2 `Path` presence bytes (no measurement or device, the full path), the nodes.
    fn path(&mut self, path_type: u8, path: &str) -> &mut Self {
        let nodes: Vec<&str> = path.split('.').collect();
        self.u8(path_type)
            .u8(0)
            .u8(0)
            .u8(1)
            .string(Some(path))
            .len_of(nodes.len());
        for n in nodes {
            self.string(Some(n));
        }
        self
    }
    /// `MeasurementSchema.serializeTo` with PLAIN encoding, no compression and no properties.
    fn schema(&mut self, name: &str, type_code: u8) -> &mut Self {
        self.string(Some(name)).u8(type_code).u8(0).u8(0).i32(0)
    }
}

/// The handshake V2 body: a string map.
pub fn handshake_v2(params: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.string_map(params);
    b.0
}

/// A column of an [`insert_tablet_node`]: name, type code, one optional value per row.
#[derive(Debug, Clone)]
pub struct TabletColumn {
    pub name: String,
    pub type_code: u8,
    pub values: Vec<Option<Value>>,
}

/// The zero value Java leaves in a null cell's slot.
fn placeholder(type_code: u8) -> Value {
    use data_type::*;
    match type_code {
        BOOLEAN => Value::Boolean(false),
        INT32 => Value::Int32(0),
        INT64 => Value::Int64(0),
        FLOAT => Value::Float(0.0),
        DOUBLE => Value::Double(0.0),
        TIMESTAMP => Value::Timestamp(0),
        DATE => Value::Date(0),
        _ => Value::Blob(Vec::new()),
    }
}

/// `BitMap(rows)`: rows/8 + 1 bytes, bit `r % 8` of byte `r / 8` set for a null row.
fn bitmap(values: &[Option<Value>]) -> Vec<u8> {
    let mut bits = vec![0u8; values.len() / 8 + 1];
    for (r, v) in values.iter().enumerate() {
        if v.is_none() {
            bits[r / 8] |= 1 << (r % 8);
        }
    }
    bits
}

/// The body of an `InsertTabletNode` after its node type, in `serialize` form (`wal` false) or
/// `serializeToWAL` form after the search index (`wal` true).
fn tablet_body(
    b: &mut Bytes,
    device: &str,
    aligned: bool,
    times: &[i64],
    columns: &[TabletColumn],
    with_schemas: bool,
    wal: bool,
) {
    b.string(Some(device)).len_of(columns.len());
    if !wal {
        b.u8(u8::from(with_schemas));
    }
    for c in columns {
        if wal || with_schemas {
            b.schema(&c.name, c.type_code);
        } else {
            b.string(Some(&c.name));
        }
    }
    if !wal {
        for c in columns {
            b.u8(c.type_code);
        }
    }
    b.len_of(times.len());
    for t in times {
        b.i64(*t);
    }
    let any_null = columns.iter().any(|c| c.values.iter().any(Option::is_none));
    b.u8(u8::from(any_null));
    if any_null {
        for c in columns {
            if c.values.iter().any(Option::is_none) {
                b.u8(1).raw(&bitmap(&c.values));
            } else {
                b.u8(0);
            }
        }
    }
    for c in columns {
        for v in &c.values {
            match v {
                Some(v) => b.value(v),
                // A null binary is written as length 0; other nulls keep their zero placeholder.
                None if matches!(c.type_code, 5 | 10 | 11) => b.i32(0),
                None => b.value(&placeholder(c.type_code)),
            };
        }
    }
    b.u8(u8::from(aligned));
}

/// `InsertTabletNode` in `PlanNode.serialize` form (type 13, attributes, plan node id, no children).
pub fn insert_tablet_node(
    device: &str,
    aligned: bool,
    times: &[i64],
    columns: &[TabletColumn],
    with_schemas: bool,
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(13);
    tablet_body(&mut b, device, aligned, times, columns, with_schemas, false);
    b.string(Some("pipe-node-1")).i32(0);
    b.0
}

/// A WAL entry of an `InsertTabletNode` (`WALEntry` type byte, memtable id, `serializeToWAL`), as
/// `TRANSFER_TABLET_BINARY` carries it.
pub fn insert_tablet_wal_entry(
    device: &str,
    aligned: bool,
    times: &[i64],
    columns: &[TabletColumn],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.u8(1).i64(3).i16(13).i64(1234);
    // The WAL form: schemas always, no separate type list.
    tablet_body(&mut b, device, aligned, times, columns, true, true);
    b.0
}

/// A cell of an [`InsertRow`].
#[derive(Debug, Clone)]
pub enum RowCell {
    Value(Value),
    /// `TYPE_NULL_WITH_TYPE` (-3) and its type.
    NullOf(u8),
    /// `TYPE_NULL_WITHOUT_TYPE` (-2).
    Null,
    /// `TYPE_RAW_STRING` (-1): a string the receiver infers a type for.
    Raw(String),
}

/// One `InsertRowNode`'s content.
#[derive(Debug, Clone)]
pub struct InsertRow {
    pub device: String,
    pub aligned: bool,
    pub time: i64,
    pub cells: Vec<(String, RowCell)>,
}

/// `InsertRowNode.subSerialize`: time, path, count, no schemas, names, tagged values,
/// `isNeedInferType`, `isAligned`.
fn row_body(b: &mut Bytes, row: &InsertRow) {
    b.i64(row.time)
        .string(Some(&row.device))
        .len_of(row.cells.len())
        .u8(0);
    for (name, _) in &row.cells {
        b.string(Some(name));
    }
    let mut infer = false;
    for (_, cell) in &row.cells {
        match cell {
            RowCell::Value(v) => {
                b.u8(v.type_code()).value(v);
            }
            RowCell::NullOf(code) => {
                b.u8(0xfd).u8(*code);
            }
            RowCell::Null => {
                b.u8(0xfe);
            }
            RowCell::Raw(s) => {
                infer = true;
                b.u8(0xff).string(Some(s));
            }
        }
    }
    b.u8(u8::from(infer)).u8(u8::from(row.aligned));
}

/// `InsertRowNode` in `PlanNode.serialize` form.
pub fn insert_row_node(row: &InsertRow) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(14);
    row_body(&mut b, row);
    b.string(Some("pipe-node-2")).i32(0);
    b.0
}

/// `InsertRowsNode` in `PlanNode.serialize` form: count, rows, one index per row.
pub fn insert_rows_node(rows: &[InsertRow]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(15).len_of(rows.len());
    for row in rows {
        row_body(&mut b, row);
    }
    for i in 0..rows.len() {
        b.len_of(i);
    }
    b.string(Some("pipe-node-3")).i32(0);
    b.0
}

/// `DeleteDataNode` in `PlanNode.serialize` form, its paths as IoTDB 2.x `MeasurementPath`s (tsfile 2
/// `Path` with presence bytes, then nodes, no schema, no tag map, not aligned, no alias).
pub fn delete_data_node(paths: &[&str], start: i64, end: i64) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(44).len_of(paths.len());
    for path in paths {
        measurement_path(&mut b, path);
    }
    b.i64(start).i64(end).string(Some("pipe-node-4")).i32(0);
    b.0
}

/// `Tablet.serialize` (tsfile 2.x, with a FIELD category byte per column) followed by `isAligned`
/// and the null database of a tree-model entry.
pub fn raw_tablet_entry(
    device: &str,
    aligned: bool,
    times: &[i64],
    columns: &[TabletColumn],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.string(Some(device))
        .len_of(times.len())
        .u8(1)
        .len_of(columns.len());
    for c in columns {
        b.u8(1).schema(&c.name, c.type_code).u8(1);
    }
    b.u8(1);
    for t in times {
        b.i64(*t);
    }
    b.u8(1);
    for c in columns {
        if c.values.iter().any(Option::is_none) {
            let bits = bitmap(&c.values);
            b.u8(1).len_of(times.len()).binary(&bits);
        } else {
            b.u8(0);
        }
    }
    b.u8(1);
    for c in columns {
        b.u8(1);
        for v in &c.values {
            match (v, c.type_code) {
                (Some(Value::Text(s) | Value::Str(s)), _) => {
                    b.u8(1).binary(s.as_bytes());
                }
                (Some(Value::Blob(x)), _) => {
                    b.u8(1).binary(x);
                }
                (None, 5 | 10 | 11) => {
                    b.u8(0);
                }
                (Some(v), _) => {
                    b.value(v);
                }
                (None, code) => {
                    b.value(&placeholder(code));
                }
            }
        }
    }
    b.u8(u8::from(aligned)).string(None);
    b.0
}

/// `TRANSFER_TABLET_BATCH_V2` (13): WAL binaries, InsertNodes and raw tablet entries, each tree-model
/// entry with a null database.
pub fn tablet_batch_v2(
    wal_entries: &[Vec<u8>],
    insert_nodes: &[Vec<u8>],
    tablets: &[Vec<u8>],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.len_of(wal_entries.len());
    for w in wal_entries {
        b.binary(w).string(None);
    }
    b.len_of(insert_nodes.len());
    for n in insert_nodes {
        b.raw(n).string(None);
    }
    b.len_of(tablets.len());
    for t in tablets {
        b.raw(t);
    }
    b.0
}

/// `TRANSFER_TABLET_INSERT_NODE_V2` (10): the node, then its database (null: tree model).
pub fn insert_node_v2(node: &[u8], database: Option<&str>) -> Vec<u8> {
    let mut b = Bytes::default();
    b.raw(node).string(database);
    b.0
}

/// `PipeTransferFilePieceReq` (types 4 and 8): file name, start offset, the piece.
pub fn file_piece(file_name: &str, start_offset: i64, piece: &[u8]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.string(Some(file_name)).i64(start_offset).binary(piece);
    b.0
}

/// `PipeTransferFileSealReqV1` (type 5): file name and length.
pub fn file_seal_v1(file_name: &str, length: i64) -> Vec<u8> {
    let mut b = Bytes::default();
    b.string(Some(file_name)).i64(length);
    b.0
}

/// `PipeTransferFileSealReqV2` (type 9): the names, their lengths, the parameters.
pub fn file_seal_v2(files: &[(&str, i64)], params: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.seal_files(files).string_map(params);
    b.0
}

/// `MeasurementPath.serialize` as IoTDB 2.x writes it for a path without schema: the path type, the
/// tsfile 2 `Path` presence bytes (no measurement/device, the full path), the nodes, then no schema,
/// no tag map, not aligned, no alias.
fn measurement_path(b: &mut Bytes, path: &str) {
    b.path(0, path).u8(0).u8(0).u8(0).string(None);
}

/// `CreateTimeSeriesNode` in `PlanNode.serialize` form: path kind 0 (a `MeasurementPath`), the path,
/// the type code, the encoding's ordinal, the compressor's code, no alias, no props, tags or
/// attributes, tag offset -1.
pub fn create_time_series_node(path: &str, type_code: u8, encoding: u8, compressor: u8) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(19).u8(0);
    measurement_path(&mut b, path);
    b.u8(type_code).u8(encoding).u8(compressor).string(None);
    b.i32(-1).i32(-1).i32(-1).i64(-1);
    b.string(Some("pipe-node-5")).i32(0);
    b.0
}

/// `CreateAlignedTimeSeriesNode` in `PlanNode.serialize` form: the device, the measurements, their
/// type codes, encoding ordinals and compressor codes, and no aliases, tags or attributes (flag -1):
/// the same bytes as a `MeasurementGroup`.
pub fn create_aligned_time_series_node(device: &str, series: &[SeriesSpec<'_>]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(22).string(Some(device));
    measurement_group(&mut b, series);
    b.string(Some("pipe-node-6")).i32(0);
    b.0
}

/// `DatabaseSchemaPlan` (CreateDatabase, 200): the plan type, then a `TDatabaseSchema` in Thrift's
/// binary protocol with its name (field 1) and a TTL (field 2).
pub fn create_database_plan(name: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(200).u8(0x0B).i16(1).string(Some(name));
    b.u8(0x0A).i16(2).i64(i64::MAX).u8(0);
    b.0
}

/// `DeleteDatabasePlan` (206): the plan type and the name.
pub fn delete_database_plan(name: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(206).string(Some(name));
    b.0
}

/// `SetTTLPlan` (201): the plan type, the pattern's nodes, the TTL in ms, `isDataBase`.
pub fn set_ttl_plan(pattern: &str, ttl_ms: i64) -> Vec<u8> {
    let nodes: Vec<&str> = pattern.split('.').collect();
    let mut b = Bytes::default();
    b.i16(201).len_of(nodes.len());
    for n in nodes {
        b.string(Some(n));
    }
    b.i64(ttl_ms).u8(0);
    b.0
}

/// A node of a schema region's MTree as `MemMTreeSnapshotUtil` serializes it.
#[derive(Debug, Clone)]
pub enum MTreeNode {
    /// A path node that is not a device.
    Internal {
        name: String,
        children: Vec<MTreeNode>,
    },
    /// An entity (device) node: `aligned` `None` is IoTDB's undecided flag; `template` the id of an
    /// activated template.
    Device {
        name: String,
        aligned: Option<bool>,
        template: Option<i32>,
        children: Vec<MTreeNode>,
    },
    /// A series: its `MeasurementSchema` (type code, encoding ordinal, compressor code), alias.
    Measurement {
        name: String,
        type_code: u8,
        encoding: u8,
        compressor: u8,
        alias: Option<String>,
    },
}

/// `MNodeSerializer`'s bytes for `node` and everything under it, in pre-order.
fn mtree_node(b: &mut Bytes, node: &MTreeNode) {
    match node {
        MTreeNode::Internal { name, children } => {
            // INTERNAL_MNODE_TYPE, child count, name, template id 0 and false "for compatibility".
            b.u8(0)
                .len_of(children.len())
                .string(Some(name))
                .i32(0)
                .u8(0);
            for child in children {
                mtree_node(b, child);
            }
        }
        MTreeNode::Device {
            name,
            aligned,
            template,
            children,
        } => {
            // ENTITY_MNODE_TYPE, child count, name, template id with state, isUseTemplate,
            // isAlignedNullable (a null Boolean is written as -1).
            b.u8(3).len_of(children.len()).string(Some(name));
            b.i32(template.unwrap_or(-1))
                .u8(u8::from(template.is_some()));
            b.u8(match aligned {
                Some(true) => 1,
                Some(false) => 0,
                None => 0xff,
            });
            for child in children {
                mtree_node(b, child);
            }
        }
        MTreeNode::Measurement {
            name,
            type_code,
            encoding,
            compressor,
            alias,
        } => {
            // MEASUREMENT_MNODE_TYPE, name, MeasurementSchema.serializeTo (no props), alias, tag
            // offset (-1: none), isPreDeleted.
            b.u8(2).string(Some(name));
            b.string(Some(name))
                .u8(*type_code)
                .u8(*encoding)
                .u8(*compressor)
                .i32(0);
            b.string(alias.as_deref()).i64(-1).u8(0);
        }
    }
}

/// A whole `mtree.snapshot` of one schema region: version 0, then the database node (a
/// `STORAGE_GROUP_MNODE_TYPE` named by the database's last node) and the tree below it.
pub fn mtree_snapshot(database_node: &str, children: &[MTreeNode]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.u8(0)
        .u8(1)
        .len_of(children.len())
        .string(Some(database_node))
        .i32(0)
        .u8(0);
    for child in children {
        mtree_node(&mut b, child);
    }
    b.0
}

/// `PipeTransferSchemaSnapshotSealReq` (type 102) of a tree-model snapshot as IoTDB 2.x writes it:
/// the MTree snapshot and, if given, the tag log as files; parameters `PathPattern`,
/// `database_pattern` and `TableName` (null: no table pattern), `tree`, `Database` and `Type` (the
/// `PlanNodeType` codes, comma-separated).
pub fn schema_snapshot_seal(
    mtree: (&str, i64),
    tag_log: Option<(&str, i64)>,
    pattern: &str,
    database: &str,
    types: &str,
) -> Vec<u8> {
    let mut files = vec![mtree];
    files.extend(tag_log);
    let mut b = Bytes::default();
    b.seal_files(&files).string_map_with_nulls(&[
        ("PathPattern", Some(pattern)),
        ("database_pattern", None),
        ("TableName", None),
        ("tree", Some("")),
        ("Database", Some(database)),
        ("Type", Some(types)),
    ]);
    b.0
}

/// A node of the ConfigNode's ConfigMTree as `ConfigMTree.serialize` writes it.
#[derive(Debug, Clone)]
pub enum ConfigMNode {
    /// A path node; `template` the id of a template set on it.
    Internal {
        name: String,
        template: Option<i32>,
        children: Vec<ConfigMNode>,
    },
    /// A database (its full path goes in its `TDatabaseSchema`).
    Database {
        name: String,
        full_path: String,
        template: Option<i32>,
        children: Vec<ConfigMNode>,
    },
}

/// Post-order, as `serializeConfigBasicMNode`/`serializeDatabaseNode`: the children, then the node —
/// an internal node as type 0, name, template id (-1: none), child count; a database as type 1,
/// name, template id, a binary-protocol `TDatabaseSchema` {1: name, 2: TTL, 6: isTableModel}.
fn config_mnode(b: &mut Bytes, node: &ConfigMNode) {
    match node {
        ConfigMNode::Internal {
            name,
            template,
            children,
        } => {
            for child in children {
                config_mnode(b, child);
            }
            b.u8(0)
                .string(Some(name))
                .i32(template.unwrap_or(-1))
                .len_of(children.len());
        }
        ConfigMNode::Database {
            name,
            full_path,
            template,
            children,
        } => {
            for child in children {
                config_mnode(b, child);
            }
            b.u8(1).string(Some(name)).i32(template.unwrap_or(-1));
            b.u8(0x0B).i16(1).string(Some(full_path));
            b.u8(0x0A).i16(2).i64(i64::MAX);
            b.u8(0x02).i16(6).u8(0);
            b.u8(0);
        }
    }
}

/// A ConfigMTree snapshot file: the nodes under `root`, then `root` itself.
pub fn config_mtree_snapshot(children: &[ConfigMNode]) -> Vec<u8> {
    let mut b = Bytes::default();
    config_mnode(
        &mut b,
        &ConfigMNode::Internal {
            name: "root".into(),
            template: None,
            children: children.to_vec(),
        },
    );
    b.0
}

/// A template of the template table: id, name, aligned flag, and its measurements (name, type code,
/// encoding ordinal, compressor code).
pub type TemplateRecord<'a> = (i32, &'a str, bool, &'a [(&'a str, u8, u8, u8)]);

/// The template table file: the id counter, the count, then `Template.serialize` per template (id,
/// name, aligned flag, measurement count, per measurement its name and
/// `MeasurementSchema.partialSerializeTo`: 0, name, type, encoding, compressor).
pub fn template_table_snapshot(templates: &[TemplateRecord<'_>]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.len_of(templates.len() + 1).len_of(templates.len());
    for (id, name, aligned, measurements) in templates {
        b.i32(*id).string(Some(name)).u8(u8::from(*aligned));
        b.len_of(measurements.len());
        for (m, t, e, c) in measurements.iter() {
            b.string(Some(m)).u8(0).string(Some(m)).u8(*t).u8(*e).u8(*c);
        }
    }
    b.0
}

/// The TTL snapshot file: a count, then (path, TTL in ms) pairs.
pub fn ttl_snapshot(rules: &[(&str, i64)]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.len_of(rules.len());
    for (path, ttl) in rules {
        b.string(Some(path)).i64(*ttl);
    }
    b.0
}

/// What a user file grants: the system mask, (path, mask) pairs, the any-scope mask and (database,
/// mask, (table, mask) pairs) — masks with the grant-option bits in the high 16.
#[derive(Debug, Clone, Default)]
pub struct UserGrants<'a> {
    pub system: i32,
    pub paths: Vec<(&'a str, i32)>,
    pub any: i32,
    pub databases: Vec<DatabaseGrant<'a>>,
}

/// A database's privileges in a user file: its name, its mask, and (table, mask) pairs.
pub type DatabaseGrant<'a> = (&'a str, i32, Vec<(&'a str, i32)>);

/// `LocalFileRoleAccessor.savePrivileges`: the system mask, the path count and pairs, the any-scope
/// mask, the database count and per database its name, mask, table count and (table, mask) pairs.
fn privilege_section(b: &mut Bytes, grants: &UserGrants<'_>) {
    b.i32(grants.system).len_of(grants.paths.len());
    for (path, mask) in &grants.paths {
        b.string(Some(path)).i32(*mask);
    }
    b.i32(grants.any).len_of(grants.databases.len());
    for (database, mask, tables) in &grants.databases {
        b.string(Some(database)).i32(*mask).len_of(tables.len());
        for (table, mask) in tables {
            b.string(Some(table)).i32(*mask);
        }
    }
}

/// A user file as IoTDB 1.3 wrote it (`saveUserOldVersion`): minus the name's byte length, the name,
/// the password hash, the system mask, then (path, mask) pairs to the end.
pub fn user_file_iotdb13(
    name: &str,
    password_hash: &str,
    system: i32,
    paths: &[(&str, i32)],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i32(-(name.len() as i32)).raw(name.as_bytes());
    b.string(Some(password_hash)).i32(system);
    for (path, mask) in paths {
        b.string(Some(path)).i32(*mask);
    }
    b.0
}

/// A version-1 user file (IoTDB 2.0): the tag 1, the name, the password hash, the privileges.
pub fn user_file_v1(name: &str, password_hash: &str, grants: &UserGrants<'_>) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i32(1).string(Some(name)).string(Some(password_hash));
    privilege_section(&mut b, grants);
    b.0
}

/// A version-2 user file (`LocalFileRoleAccessor.saveEntity` with `LocalFileUserAccessor`'s
/// `saveEntityName` and `saveSessionPerUser`): the tag 2, the user id, the name, the password hash,
/// the maximum and minimum sessions per user, the privileges.
pub fn user_file_v2(
    user_id: i64,
    name: &str,
    password_hash: &str,
    sessions: (i32, i32),
    grants: &UserGrants<'_>,
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i32(2)
        .i64(user_id)
        .string(Some(name))
        .string(Some(password_hash));
    b.i32(sessions.0).i32(sessions.1);
    privilege_section(&mut b, grants);
    b.0
}

/// A role file (`LocalFileRoleAccessor.saveEntity`): the tag (1 for IoTDB 2.0, 2 for current
/// master), the name, the privileges — a role has no id, password or session limits.
pub fn role_file(version: i32, name: &str, grants: &UserGrants<'_>) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i32(version).string(Some(name));
    privilege_section(&mut b, grants);
    b.0
}

/// A role file as IoTDB 1.3 wrote it: minus the name's byte length, the name, the system mask,
/// then (path, mask) pairs to the end.
pub fn role_file_iotdb13(name: &str, system: i32, paths: &[(&str, i32)]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i32(-(name.len() as i32)).raw(name.as_bytes()).i32(system);
    for (path, mask) in paths {
        b.string(Some(path)).i32(*mask);
    }
    b.0
}

/// A user's roles file (`LocalFileUserAccessor.saveRoles`, sent as `<user>_role.profile`): each
/// role's name as a string, nothing else.
pub fn user_role_file(roles: &[&str]) -> Vec<u8> {
    let mut b = Bytes::default();
    for role in roles {
        b.string(Some(role));
    }
    b.0
}

/// The bit of a system privilege in an auth file's system mask (`AuthUtils.sysPriToPos`), by
/// IoTDB's name; its grant option is the bit 16 places higher.
pub fn system_privilege_bit(name: &str) -> i32 {
    let position = [
        "MANAGE_DATABASE",
        "MANAGE_USER",
        "MANAGE_ROLE",
        "USE_TRIGGER",
        "USE_UDF",
        "USE_CQ",
        "USE_PIPE",
        "EXTEND_TEMPLATE",
        "MAINTAIN",
        "USE_MODEL",
        "SYSTEM",
        "SECURITY",
        "AUDIT",
    ]
    .iter()
    .position(|n| *n == name)
    .unwrap_or(31);
    1 << position
}

/// The bit of a path privilege in a path mask (`AuthUtils.pathPriToPos`), by IoTDB's name.
pub fn path_privilege_bit(name: &str) -> i32 {
    let position = ["READ_DATA", "WRITE_DATA", "READ_SCHEMA", "WRITE_SCHEMA"]
        .iter()
        .position(|n| *n == name)
        .unwrap_or(31);
    1 << position
}

/// `PipeTransferConfigSnapshotSealReq` (type 202): the files, then the parameters `PathPattern`,
/// `database_pattern` and `TableName` (null), `tree`, `fileType` (`CNSnapshotFileType`), `Type` and
/// `authUserName`.
pub fn config_snapshot_seal(
    files: &[(&str, i64)],
    file_type: u8,
    pattern: &str,
    types: &str,
) -> Vec<u8> {
    config_snapshot_seal_as(files, file_type, pattern, types, "root")
}

/// The same seal with `authUserName` set to `auth_user_name` (current master names there the user
/// a USER_ROLE file, named by the user's id, belongs to).
pub fn config_snapshot_seal_as(
    files: &[(&str, i64)],
    file_type: u8,
    pattern: &str,
    types: &str,
    auth_user_name: &str,
) -> Vec<u8> {
    let file_type = file_type.to_string();
    let mut b = Bytes::default();
    b.seal_files(files).string_map_with_nulls(&[
        ("PathPattern", Some(pattern)),
        ("database_pattern", None),
        ("TableName", None),
        ("tree", Some("")),
        ("fileType", Some(&file_type)),
        ("Type", Some(types)),
        ("authUserName", Some(auth_user_name)),
    ]);
    b.0
}

/// `PartialPath.serialize` as IoTDB 2.x writes a device path: the path type (2, Partial), the tsfile 2
/// `Path` presence bytes (no measurement or device, the full path), then the nodes.
fn partial_path(b: &mut Bytes, path: &str) {
    b.path(2, path);
}

/// Series of one device: (measurement, type code, encoding ordinal, compressor code).
pub type SeriesSpec<'a> = (&'a str, u8, u8, u8);

/// `MeasurementGroup.serialize`: names, type ordinals, encoding ordinals, compressor codes, then no
/// aliases, tags or attributes (flag -1 each).
fn measurement_group(b: &mut Bytes, series: &[SeriesSpec<'_>]) {
    b.len_of(series.len());
    for (m, _, _, _) in series {
        b.string(Some(m));
    }
    for (_, t, _, _) in series {
        b.u8(*t);
    }
    for (_, _, e, _) in series {
        b.u8(*e);
    }
    for (_, _, _, c) in series {
        b.u8(*c);
    }
    b.u8(0xff).u8(0xff).u8(0xff);
}

/// `CreateMultiTimeSeriesNode` (39): a device count, then each device's path and `MeasurementGroup`.
pub fn create_multi_time_series_node(devices: &[(&str, &[SeriesSpec<'_>])]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(39).len_of(devices.len());
    for (device, series) in devices {
        partial_path(&mut b, device);
        measurement_group(&mut b, series);
    }
    b.string(Some("pipe-node-39")).i32(0);
    b.0
}

/// `InternalCreateTimeSeriesNode` (52), the node IoTDB writes when a write auto-creates series: the
/// device path, the `MeasurementGroup`, the aligned flag.
pub fn internal_create_time_series_node(
    device: &str,
    aligned: bool,
    series: &[SeriesSpec<'_>],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(52);
    partial_path(&mut b, device);
    measurement_group(&mut b, series);
    b.u8(u8::from(aligned));
    b.string(Some("pipe-node-52")).i32(0);
    b.0
}

/// `InternalCreateMultiTimeSeriesNode` (69): a device count, then each device's path, aligned flag
/// and `MeasurementGroup`.
pub fn internal_create_multi_time_series_node(
    devices: &[(&str, bool, &[SeriesSpec<'_>])],
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(69).len_of(devices.len());
    for (device, aligned, series) in devices {
        partial_path(&mut b, device);
        b.u8(u8::from(*aligned));
        measurement_group(&mut b, series);
    }
    b.string(Some("pipe-node-69")).i32(0);
    b.0
}

/// `ActivateTemplateNode` (53): the device path, the template's set level and its id (the sender's
/// ConfigNode numbering).
pub fn activate_template_node(device: &str, template_id: i32) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(53);
    partial_path(&mut b, device);
    b.i32(1).i32(template_id);
    b.string(Some("pipe-node-53")).i32(0);
    b.0
}

/// `BatchActivateTemplateNode` (72), or `InternalBatchActivateTemplateNode` (68) when `internal`: a
/// count, then each device's path, set level and template id.
pub fn batch_activate_template_node(devices: &[&str], template_id: i32, internal: bool) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(if internal { 68 } else { 72 }).len_of(devices.len());
    for device in devices {
        partial_path(&mut b, device);
        b.i32(1).i32(template_id);
    }
    b.string(Some("pipe-node-72")).i32(0);
    b.0
}

/// `AlterTimeSeriesNode` (21) adding one tag: the full path's bytes, `ADD_TAGS` (3), no alias, no
/// alter map, the tag map, no attributes, no data type.
pub fn alter_time_series_add_tag_node(path: &str, key: &str, value: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(21).string(Some(path)).u8(3).u8(0).u8(0xff);
    b.u8(1).i32(1).string(Some(key)).string(Some(value));
    b.u8(0xff).u8(0);
    b.string(Some("pipe-node-21")).i32(0);
    b.0
}

/// `Template.serialize`: an id (the sender's numbering), the name, the aligned flag, then per
/// measurement its key and `MeasurementSchema.partialSerializeTo` (flag 0, name, type, encoding,
/// compressor).
fn template(b: &mut Bytes, name: &str, aligned: bool, measurements: &[SeriesSpec<'_>]) {
    b.i32(42)
        .string(Some(name))
        .u8(u8::from(aligned))
        .len_of(measurements.len());
    for (m, t, e, c) in measurements {
        b.string(Some(m)).u8(0).string(Some(m)).u8(*t).u8(*e).u8(*c);
    }
}

/// `CreateSchemaTemplatePlan` (800): the plan type, then the template's serialized bytes behind their
/// length.
pub fn create_schema_template_plan(
    name: &str,
    aligned: bool,
    measurements: &[SeriesSpec<'_>],
) -> Vec<u8> {
    let mut t = Bytes::default();
    template(&mut t, name, aligned, measurements);
    let mut b = Bytes::default();
    b.i16(800).binary(&t.0);
    b.0
}

/// `ExtendSchemaTemplatePlan` (814), `TemplateExtendInfo.serialize`: the name, the measurements, their
/// types, then encodings and compressors each behind a flag (given for all or for none).
pub fn extend_schema_template_plan(
    name: &str,
    measurements: &[(&str, u8)],
    encodings_and_compressors: Option<&[(u8, u8)]>,
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(814).string(Some(name)).len_of(measurements.len());
    for (m, _) in measurements {
        b.string(Some(m));
    }
    for (_, t) in measurements {
        b.u8(*t);
    }
    match encodings_and_compressors {
        Some(given) => {
            b.u8(1);
            for (e, _) in given {
                b.u8(*e);
            }
            b.u8(1);
            for (_, c) in given {
                b.u8(*c);
            }
        }
        None => {
            b.u8(0).u8(0);
        }
    }
    b.0
}

/// `CommitSetSchemaTemplatePlan` (813): name, path, not a rollback.
pub fn commit_set_schema_template_plan(name: &str, path: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(813).string(Some(name)).string(Some(path)).u8(0);
    b.0
}

/// `PipeUnsetSchemaTemplatePlan` (1701): name, path.
pub fn pipe_unset_template_plan(name: &str, path: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(1701).string(Some(name)).string(Some(path));
    b.0
}

/// `DropSchemaTemplatePlan` (811): the name.
pub fn drop_schema_template_plan(name: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(811).string(Some(name));
    b.0
}

/// A template as `PipeDeactivateTemplatePlan` lists it: name, aligned flag, measurements.
pub type TemplateDef<'a> = (&'a str, bool, &'a [SeriesSpec<'a>]);

/// `PipeDeactivateTemplatePlan` (1704): a count, then per pattern its `PartialPath`, a template count
/// and the templates.
pub fn pipe_deactivate_template_plan(entries: &[(&str, &[TemplateDef<'_>])]) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(1704).len_of(entries.len());
    for (pattern, templates) in entries {
        partial_path(&mut b, pattern);
        b.len_of(templates.len());
        for (name, aligned, measurements) in *templates {
            template(&mut b, name, *aligned, measurements);
        }
    }
    b.0
}

/// A `PathPatternTree` node being built: its children in insertion order, whether a pattern ends here.
#[derive(Default)]
struct TreeNode {
    children: Vec<(String, TreeNode)>,
    marked: bool,
}

impl TreeNode {
    fn insert(&mut self, nodes: &[&str]) {
        let Some((first, rest)) = nodes.split_first() else {
            self.marked = true;
            return;
        };
        let index = match self.children.iter().position(|(n, _)| n == first) {
            Some(i) => i,
            None => {
                self.children.push((first.to_string(), TreeNode::default()));
                self.children.len() - 1
            }
        };
        if let Some((_, child)) = self.children.get_mut(index) {
            child.insert(rest);
        }
    }

    /// `PathPatternNode.serialize`: name, -1 (a pattern ends here) or -2, child count, children.
    fn write(&self, name: &str, b: &mut Bytes) {
        b.string(Some(name))
            .i32(if self.marked { -1 } else { -2 })
            .len_of(self.children.len());
        for (child_name, child) in &self.children {
            child.write(child_name, b);
        }
    }
}

/// `PipeDeleteTimeSeriesPlan` (1702): the serialized `PathPatternTree` of `patterns` (all under
/// `root`) behind its length.
pub fn pipe_delete_time_series_plan(patterns: &[&str]) -> Vec<u8> {
    let mut root = TreeNode::default();
    for p in patterns {
        let nodes: Vec<&str> = p.split('.').skip(1).collect();
        root.insert(&nodes);
    }
    let mut tree = Bytes::default();
    root.write("root", &mut tree);
    let mut b = Bytes::default();
    b.i16(1702).binary(&tree.0);
    b.0
}

/// `PipeEnrichedPlan` (1700): the inner plan's bytes, then the origin cluster's id.
pub fn pipe_enriched_plan(inner: &[u8], origin_cluster_id: &str) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(1700).raw(inner).string(Some(origin_cluster_id));
    b.0
}

/// An `AuthorPlan` for a user in IoTDB 2.0's layout: the plan type (621 CreateUser, 623 DropUser, 631
/// UpdateUser, 638 CreateUserWithRawPassword), the user, an empty role, the password and the new
/// password (null when absent), an empty permission set, no paths, no grant option.
pub fn user_plan(
    code: i16,
    user: &str,
    password: Option<&str>,
    new_password: Option<&str>,
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(code)
        .string(Some(user))
        .string(Some(""))
        .string(password)
        .string(new_password);
    b.u8(1).i32(0).i32(0).i32(0);
    b.0
}

/// A role or privilege `AuthorPlan` in IoTDB 2.0's layout: the plan type (622 CreateRole, 624
/// DropRole, 625 GrantRole, 626 GrantUser, 627 GrantRoleToUser, 628 RevokeUser, 629 RevokeRole, 630
/// RevokeRoleFromUser), the user and role (empty when the plan has none), no passwords, the
/// permissions as `PrivilegeType` ordinals, the paths and the grant option.
pub fn privilege_plan(
    code: i16,
    user: &str,
    role: &str,
    permissions: &[i32],
    paths: &[&str],
    grant_option: bool,
) -> Vec<u8> {
    let mut b = Bytes::default();
    b.i16(code)
        .string(Some(user))
        .string(Some(role))
        .string(None)
        .string(None);
    b.u8(1).len_of(permissions.len());
    for p in permissions {
        b.i32(*p);
    }
    b.len_of(paths.len());
    for path in paths {
        b.string(Some(path));
    }
    b.i32(i32::from(grant_option));
    b.0
}
