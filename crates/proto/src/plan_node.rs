//! IoTDB's serialized write plan nodes, as a default IoTDB sender puts them on the pipe wire: the
//! InsertNodes of `TRANSFER_TABLET_INSERT_NODE` (2), `…_INSERT_NODE_V2` (10) and the insert-node section
//! of `TRANSFER_TABLET_BATCH_V2` (13); the WAL layout of `TRANSFER_TABLET_BINARY` (7, 12 and the binary
//! section of 13); and the `DeleteDataNode` and schema-region nodes of `TRANSFER_PLAN_NODE` (100).
//!
//! The schema-region nodes are those IoTDB's `SchemaRegionListeningFilter` (…/pipe/source/schemaregion/,
//! read at 9765704's tree) hands a pipe whose `inclusion` covers `schema.timeseries`: creates (19, 22,
//! 39 `CreateMultiTimeSeriesNode`, 52 `InternalCreateTimeSeriesNode`, 69
//! `InternalCreateMultiTimeSeriesNode`), template activations (53 `ActivateTemplateNode`, 72
//! `BatchActivateTemplateNode`, 68 `InternalBatchActivateTemplateNode`) and 21 `AlterTimeSeriesNode`.
//! Deletions of series and deactivations do not travel as schema-region nodes: IoTDB runs them as
//! ConfigNode procedures and a pipe carries them as config plans (`crate::config_plan`). Layouts from
//! `…/plan/node/metadata/write/`: `MeasurementGroup.serialize` (1179fac), `CreateMultiTimeSeriesNode`
//! (383d490), `InternalCreateTimeSeriesNode` (127e6fa), `InternalCreateMultiTimeSeriesNode` (25f17ca),
//! `ActivateTemplateNode` and `BatchActivateTemplateNode` (35344fd), `InternalBatchActivateTemplateNode`
//! (127e6fa), `AlterTimeSeriesNode` (39d950d); `PartialPath.serialize` as for `DeleteDataNode`.
//!
//! The layouts are IoTDB's, read from apache/iotdb's source (the Java classes named on each function):
//! `PlanNode.serialize` (node type i16, the node's attributes, its `PlanNodeId` as a string, a child
//! count), `InsertTabletNode`/`InsertRowNode`/`InsertRowsNode` `subSerialize` and `serializeToWAL` (at
//! revisions 6daa39d, ca7b6ea and f4f65e4 of `…/queryengine/plan/planner/plan/node/write/`),
//! `WALEntry.deserializeForConsensus`, `DeleteDataNode.serializeAttributes` (011bdec) with
//! `MeasurementPath`/`PartialPath`/tsfile `Path` `serialize`, and `MeasurementSchema.serializeTo`.
//! Every count is checked against the bytes left before anything is reserved for it
//! ([`crate::reader`]); a node must end exactly where its request says it does.
//!
//! Only tree-model nodes are taken; table-model nodes (`Relational…`, 2000–2003) and node types a
//! pipe does not carry are refused by name as [`ProtoError::Unsupported`].

use crate::pipe_tablet::{decode_values, BinaryCells, PipeTablet};
use crate::reader::{malformed, ByteReader};
use crate::tablet::{read_record_value, RecordValue};
use crate::types::{compressor_of, encoding_of, DataType};
use crate::{ProtoError, Result};

/// `PlanNodeType` codes (node-commons `PlanNodeType`).
pub mod node_type {
    pub const INSERT_TABLET: i16 = 13;
    pub const INSERT_ROW: i16 = 14;
    pub const INSERT_ROWS: i16 = 15;
    pub const INSERT_ROWS_OF_ONE_DEVICE: i16 = 16;
    pub const INSERT_MULTI_TABLET: i16 = 17;
    pub const CREATE_TIME_SERIES: i16 = 19;
    pub const ALTER_TIME_SERIES: i16 = 21;
    pub const CREATE_ALIGNED_TIME_SERIES: i16 = 22;
    pub const CREATE_MULTI_TIME_SERIES: i16 = 39;
    pub const DELETE_DATA: i16 = 44;
    pub const INTERNAL_CREATE_TIME_SERIES: i16 = 52;
    pub const ACTIVATE_TEMPLATE: i16 = 53;
    pub const INTERNAL_BATCH_ACTIVATE_TEMPLATE: i16 = 68;
    pub const INTERNAL_CREATE_MULTI_TIMESERIES: i16 = 69;
    pub const BATCH_ACTIVATE_TEMPLATE: i16 = 72;
    pub const RELATIONAL_INSERT_TABLET: i16 = 2000;
    pub const RELATIONAL_INSERT_ROW: i16 = 2001;
    pub const RELATIONAL_INSERT_ROWS: i16 = 2002;
    pub const RELATIONAL_DELETE_DATA: i16 = 2003;
}

/// A decoded write plan node.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteNode {
    /// `InsertTabletNode` (and each tablet of an `InsertMultiTabletsNode`): column-major rows.
    Tablets(Vec<PipeTablet>),
    /// `InsertRowNode` (one) or `InsertRowsNode` (several), row by row.
    Rows(Vec<InsertRow>),
    /// `DeleteDataNode`: the points of every series matching a pattern in `[start, end]`.
    Delete(DeleteData),
    /// `CreateTimeSeriesNode` / `CreateAlignedTimeSeriesNode` (schema region plans an IoTDB pipe
    /// sends when its `inclusion` covers `schema.timeseries`).
    CreateSeries(CreateSeries),
    /// `CreateMultiTimeSeriesNode`, `InternalCreateTimeSeriesNode` and
    /// `InternalCreateMultiTimeSeriesNode` (series IoTDB auto-created for a write): series on one or
    /// more devices, each device with its aligned flag.
    CreateSeriesOnDevices(Vec<CreateSeries>),
    /// `ActivateTemplateNode`, `BatchActivateTemplateNode`, `InternalBatchActivateTemplateNode`: the
    /// devices on which the template set above them is activated. The sender's template id and set
    /// level are its ConfigNode's numbering and are not carried over: the template is the one set on
    /// a prefix of the device here.
    ActivateTemplate(Vec<String>),
}

/// Series to create on one device, with IoTDB's encoding and compressor names.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSeries {
    pub device: String,
    pub aligned: bool,
    /// (measurement, type, encoding, compressor)
    pub series: Vec<(String, DataType, String, String)>,
}

/// One row of an `InsertRowNode`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertRow {
    pub device: String,
    pub aligned: bool,
    pub time: i64,
    pub measurements: Vec<String>,
    pub values: Vec<RowValue>,
}

/// A cell of an [`InsertRow`].
#[derive(Debug, Clone, PartialEq)]
pub enum RowValue {
    Value(RecordValue),
    /// No value (with its type, when the sender knew it).
    Null(Option<DataType>),
    /// A string whose type the receiver infers (the sender's `isNeedInferType`).
    Unparsed(String),
}

/// A `DeleteDataNode`: path patterns (full paths, `**` and `*` allowed) and an inclusive time range.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteData {
    pub paths: Vec<String>,
    pub start: i64,
    pub end: i64,
}

fn unsupported(message: impl Into<String>) -> ProtoError {
    ProtoError::Unsupported(message.into())
}

/// The name IoTDB gives a node type, for errors.
fn type_name(code: i16) -> String {
    use node_type as n;
    match code {
        n::INSERT_TABLET => "InsertTabletNode".into(),
        n::INSERT_ROW => "InsertRowNode".into(),
        n::INSERT_ROWS => "InsertRowsNode".into(),
        n::INSERT_ROWS_OF_ONE_DEVICE => "InsertRowsOfOneDeviceNode".into(),
        n::INSERT_MULTI_TABLET => "InsertMultiTabletsNode".into(),
        n::DELETE_DATA => "DeleteDataNode".into(),
        n::CREATE_TIME_SERIES => "CreateTimeSeriesNode".into(),
        n::CREATE_ALIGNED_TIME_SERIES => "CreateAlignedTimeSeriesNode".into(),
        n::ALTER_TIME_SERIES => "AlterTimeSeriesNode".into(),
        n::CREATE_MULTI_TIME_SERIES => "CreateMultiTimeSeriesNode".into(),
        45 => "DeleteTimeSeriesNode".into(),
        n::INTERNAL_CREATE_TIME_SERIES => "InternalCreateTimeSeriesNode".into(),
        n::ACTIVATE_TEMPLATE => "ActivateTemplateNode".into(),
        56 => "ConstructSchemaBlackListNode".into(),
        61 => "DeactivateTemplateNode".into(),
        n::INTERNAL_BATCH_ACTIVATE_TEMPLATE => "InternalBatchActivateTemplateNode".into(),
        n::INTERNAL_CREATE_MULTI_TIMESERIES => "InternalCreateMultiTimeSeriesNode".into(),
        n::BATCH_ACTIVATE_TEMPLATE => "BatchActivateTemplateNode".into(),
        73 => "CreateLogicalViewNode".into(),
        78 => "AlterLogicalViewNode".into(),
        85 => "PipeEnrichedWritePlanNode".into(),
        86 => "PipeEnrichedNonWritePlanNode".into(),
        n::RELATIONAL_INSERT_TABLET => "RelationalInsertTabletNode".into(),
        n::RELATIONAL_INSERT_ROW => "RelationalInsertRowNode".into(),
        n::RELATIONAL_INSERT_ROWS => "RelationalInsertRowsNode".into(),
        n::RELATIONAL_DELETE_DATA => "RelationalDeleteDataNode".into(),
        other => format!("plan node type {other}"),
    }
}

fn refuse(code: i16) -> ProtoError {
    if (2000..=2003).contains(&code) {
        unsupported(format!(
            "{} is a table-model write; Duet takes the tree model only",
            type_name(code)
        ))
    } else {
        unsupported(format!(
            "{} is not a write Duet applies from a pipe",
            type_name(code)
        ))
    }
}

/// One node in `PlanNode.serialize` form, read from `input` up to its end (an InsertNode inside a
/// tablet batch is self-delimiting: the database string of its entry follows it).
pub fn read_plan_node(input: &mut ByteReader<'_>) -> Result<WriteNode> {
    let code = input.i16("plan node type")?;
    let node = match code {
        node_type::INSERT_TABLET => WriteNode::Tablets(vec![insert_tablet(input, Layout::Plan)?]),
        node_type::INSERT_ROW => WriteNode::Rows(vec![insert_row(input, Layout::Plan)?]),
        node_type::INSERT_ROWS => WriteNode::Rows(insert_rows(input)?),
        node_type::INSERT_MULTI_TABLET => WriteNode::Tablets(insert_multi_tablets(input)?),
        node_type::DELETE_DATA => return delete_data(input),
        node_type::CREATE_TIME_SERIES => return create_time_series(input),
        node_type::CREATE_ALIGNED_TIME_SERIES => {
            WriteNode::CreateSeries(create_aligned_time_series(input)?)
        }
        node_type::CREATE_MULTI_TIME_SERIES
        | node_type::INTERNAL_CREATE_TIME_SERIES
        | node_type::INTERNAL_CREATE_MULTI_TIMESERIES => {
            return with_path_layouts(input, type_name(code), |input, layout| {
                create_on_devices(input, code, layout).map(WriteNode::CreateSeriesOnDevices)
            })
        }
        node_type::ACTIVATE_TEMPLATE
        | node_type::BATCH_ACTIVATE_TEMPLATE
        | node_type::INTERNAL_BATCH_ACTIVATE_TEMPLATE => {
            return with_path_layouts(input, type_name(code), |input, layout| {
                activate_template(input, code, layout).map(WriteNode::ActivateTemplate)
            })
        }
        node_type::ALTER_TIME_SERIES => return Err(alter_time_series(input)),
        other => return Err(refuse(other)),
    };
    plan_node_trailer(input)?;
    Ok(node)
}

/// A whole `TRANSFER_PLAN_NODE` (100) or `TRANSFER_TABLET_INSERT_NODE` (2) body: one node, nothing after.
pub fn decode_plan_node(body: &[u8]) -> Result<WriteNode> {
    let mut input = ByteReader::new(body);
    let node = read_plan_node(&mut input)?;
    if !input.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the plan node",
            input.remaining()
        )));
    }
    Ok(node)
}

/// A WAL entry as `TRANSFER_TABLET_BINARY` (7, 12) carries it (`WALEntry.deserializeForConsensus`): the
/// entry type byte, the memtable id, then the node in its WAL layout; nothing may follow.
pub fn decode_wal_entry(body: &[u8]) -> Result<WriteNode> {
    let mut input = ByteReader::new(body);
    input.u8("WAL entry type")?;
    input.i64("memtable id")?;
    let code = input.i16("plan node type")?;
    let node = match code {
        node_type::INSERT_TABLET => {
            input.i64("search index")?;
            WriteNode::Tablets(vec![insert_tablet(&mut input, Layout::Wal)?])
        }
        node_type::INSERT_ROW => {
            input.i64("search index")?;
            WriteNode::Rows(vec![insert_row(&mut input, Layout::Wal)?])
        }
        node_type::INSERT_ROWS => {
            input.i64("search index")?;
            // A row takes at least its time, a path length, a count and the aligned byte.
            let n = input.count(17, "rows")?;
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                rows.push(insert_row(&mut input, Layout::Wal)?);
            }
            WriteNode::Rows(rows)
        }
        other => return Err(refuse(other)),
    };
    if !input.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the WAL entry",
            input.remaining()
        )));
    }
    Ok(node)
}

/// Which of IoTDB's two serializations of an InsertNode: `serialize` (pipe requests, with data types
/// listed apart from optional schemas and `isNeedInferType` on rows) or `serializeToWAL` (schemas always,
/// types inside them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Plan,
    Wal,
}

/// `PlanNodeId` (a string) and the child count, which is 0 for every write node.
fn plan_node_trailer(input: &mut ByteReader<'_>) -> Result<()> {
    input.nullable_string("plan node id")?;
    let children = input.i32("child count")?;
    if children != 0 {
        return Err(malformed(format!(
            "a write plan node with {children} children"
        )));
    }
    Ok(())
}

/// `MeasurementSchema.serializeTo`: name, type, encoding, compressor, properties (a count ≤ 0: none).
fn measurement_schema(input: &mut ByteReader<'_>) -> Result<(String, DataType)> {
    let name = input.string("measurement")?;
    let data_type = data_type(input.u8("data type")?)?;
    input.u8("encoding")?;
    input.u8("compressor")?;
    let props = input.i32("property count")?;
    if props > 0 {
        let props = usize::try_from(props).unwrap_or(usize::MAX);
        input.ensure(props, 8, "properties")?;
        for _ in 0..props {
            input.nullable_string("property key")?;
            input.nullable_string("property value")?;
        }
    }
    Ok((name, data_type))
}

fn data_type(code: u8) -> Result<DataType> {
    DataType::from_code(i32::from(code)).ok_or_else(|| {
        if code == 6 || code == 7 {
            unsupported(format!("data type {code} (VECTOR/UNKNOWN) in a write node"))
        } else {
            malformed(format!("unknown data type {code}"))
        }
    })
}

/// The measurement names (and, with schemas, their types) of an InsertNode.
fn measurements(
    input: &mut ByteReader<'_>,
    n: usize,
    layout: Layout,
) -> Result<(Vec<String>, Vec<Option<DataType>>)> {
    let with_schemas = match layout {
        Layout::Wal => true,
        Layout::Plan => input.u8("schemas flag")? == 1,
    };
    let mut names = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for _ in 0..n {
        if with_schemas {
            let (name, data_type) = measurement_schema(input)?;
            names.push(name);
            types.push(Some(data_type));
        } else {
            names.push(input.string("measurement")?);
            types.push(None);
        }
    }
    Ok((names, types))
}

/// `InsertTabletNode.subSerialize` (Plan) / `subSerialize(IWALByteBufferView…)` after the search
/// index (Wal).
fn insert_tablet(input: &mut ByteReader<'_>, layout: Layout) -> Result<PipeTablet> {
    let device = input.string("device path")?;
    // A measurement takes at least a name length (and a type byte).
    let n = input.count(5, "measurements")?;
    let (measurements, schema_types) = measurements(input, n, layout)?;
    let types: Vec<DataType> = match layout {
        Layout::Wal => schema_types.into_iter().flatten().collect(),
        Layout::Plan => input.many(n, |r| r.u8("data type").and_then(data_type))?,
    };
    let rows = input.count(8, "rows")?;
    let times = (0..rows)
        .map(|_| input.i64("timestamps"))
        .collect::<Result<Vec<_>>>()?;
    // A bitmap is rows/8 + 1 bytes (tsfile `BitMap`); a set bit marks a null row.
    let bitmap_bytes = rows / 8 + 1;
    let mut nulls: Vec<Option<Vec<bool>>> = vec![None; n];
    if input.u8("bitmaps flag")? == 1 {
        for slot in nulls.iter_mut() {
            if input.u8("bitmap flag")? == 1 {
                let bits = input.take(bitmap_bytes, "bitmap")?;
                let marks: Vec<bool> = (0..rows)
                    .map(|r| bits.get(r / 8).is_some_and(|b| b & (1 << (r % 8)) != 0))
                    .collect();
                *slot = marks.iter().any(|x| *x).then_some(marks);
            }
        }
    }
    let mut columns = Vec::with_capacity(n);
    for (data_type, nulls) in types.iter().zip(nulls) {
        columns.push(decode_values(
            input,
            *data_type,
            rows,
            nulls,
            BinaryCells::LengthOnly,
        )?);
    }
    let aligned = input.u8("isAligned")? == 1;
    tree_device(&device)?;
    Ok(PipeTablet {
        device,
        aligned,
        measurements,
        columns,
        times,
    })
}

/// The row tags of `InsertRowNode.putDataTypesAndValues`.
const TYPE_RAW_STRING: u8 = 0xff; // -1
const TYPE_NULL_WITHOUT_TYPE: u8 = 0xfe; // -2
const TYPE_NULL_WITH_TYPE: u8 = 0xfd; // -3

/// `InsertRowNode.subSerialize` (Plan) / its WAL form after the search index (Wal).
fn insert_row(input: &mut ByteReader<'_>, layout: Layout) -> Result<InsertRow> {
    let time = input.i64("time")?;
    let device = input.string("device path")?;
    // A value takes at least its tag byte, and a measurement at least its name length.
    let n = input.count(5, "measurements")?;
    let (measurements, _) = measurements(input, n, layout)?;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = input.u8("value type")?;
        values.push(match tag {
            TYPE_RAW_STRING => RowValue::Unparsed(input.string("raw value")?),
            TYPE_NULL_WITHOUT_TYPE => RowValue::Null(None),
            TYPE_NULL_WITH_TYPE => RowValue::Null(Some(data_type(input.u8("data type")?)?)),
            code => {
                data_type(code)?;
                RowValue::Value(read_record_value(input, code)?)
            }
        });
    }
    if layout == Layout::Plan {
        input.u8("isNeedInferType")?;
    }
    let aligned = input.u8("isAligned")? == 1;
    tree_device(&device)?;
    Ok(InsertRow {
        device,
        aligned,
        time,
        measurements,
        values,
    })
}

/// `InsertRowsNode.serializeAttributes`: a count, the rows, then one index per row.
fn insert_rows(input: &mut ByteReader<'_>) -> Result<Vec<InsertRow>> {
    // A row takes at least its time, a path length, a count and two flag bytes.
    let n = input.count(18, "rows")?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(insert_row(input, Layout::Plan)?);
    }
    input.ensure(n, 4, "row indexes")?;
    for _ in 0..n {
        input.i32("row index")?;
    }
    Ok(rows)
}

/// `InsertMultiTabletsNode.serializeAttributes`: a count, the tablets, then one index per tablet.
fn insert_multi_tablets(input: &mut ByteReader<'_>) -> Result<Vec<PipeTablet>> {
    let n = input.count(15, "tablets")?;
    let mut tablets = Vec::with_capacity(n);
    for _ in 0..n {
        tablets.push(insert_tablet(input, Layout::Plan)?);
    }
    input.ensure(n, 4, "tablet indexes")?;
    for _ in 0..n {
        input.i32("tablet index")?;
    }
    Ok(tablets)
}

fn tree_device(device: &str) -> Result<()> {
    if device == "root" || device.starts_with("root.") {
        Ok(())
    } else {
        Err(unsupported(format!(
            "{device} is not a tree-model device (table-model writes are not supported by Duet)"
        )))
    }
}

/// How a revision of IoTDB serialized a `MeasurementPath`; the node's bytes decide (see
/// [`delete_data`]).
#[derive(Debug, Clone, Copy)]
struct PathLayout {
    /// tsfile 2.x `Path`: a presence byte before each of measurement, device and full path; tsfile
    /// 1.x wrote three nullable strings.
    presence_bytes: bool,
    trailer: PathTrailer,
}

#[derive(Debug, Clone, Copy)]
enum PathTrailer {
    /// IoTDB 1.2+ and 2.x: schema, tag map, aligned flag, alias.
    TagMap,
    /// IoTDB 1.0/1.1: schema, aligned flag, alias, version.
    Version,
}

const PATH_LAYOUTS: [PathLayout; 4] = [
    PathLayout {
        presence_bytes: true,
        trailer: PathTrailer::TagMap,
    },
    PathLayout {
        presence_bytes: false,
        trailer: PathTrailer::TagMap,
    },
    PathLayout {
        presence_bytes: false,
        trailer: PathTrailer::Version,
    },
    PathLayout {
        presence_bytes: true,
        trailer: PathTrailer::Version,
    },
];

/// `DeleteDataNode` in `serialize` form after its type: path count, paths, start, end, id, children.
/// Its paths are `MeasurementPath`s whose layout changed between IoTDB and tsfile releases; each known
/// layout is tried and the one that reads the node to its exact end is taken — a body no layout
/// explains is refused rather than guessed at.
fn delete_data(input: &mut ByteReader<'_>) -> Result<WriteNode> {
    let mut first_error = None;
    for layout in PATH_LAYOUTS {
        let mut attempt = *input;
        match delete_data_as(&mut attempt, layout) {
            Ok(node) if attempt.is_empty() => {
                *input = attempt;
                return Ok(WriteNode::Delete(node));
            }
            Ok(_) => {
                first_error.get_or_insert_with(|| {
                    malformed(format!(
                        "{} bytes after the DeleteDataNode",
                        attempt.remaining()
                    ))
                });
            }
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed("malformed DeleteDataNode")))
}

fn delete_data_as(input: &mut ByteReader<'_>, layout: PathLayout) -> Result<DeleteData> {
    // A path takes at least its type byte and a node count.
    let n = input.count(5, "paths")?;
    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        paths.push(measurement_path(input, layout)?.join("."));
    }
    let start = input.i64("delete start time")?;
    let end = input.i64("delete end time")?;
    plan_node_trailer(input)?;
    Ok(DeleteData { paths, start, end })
}

/// `ReadWriteIOUtils.write(Map<String, String>)`: a count (-1 for null), then key/value strings.
fn skip_map(input: &mut ByteReader<'_>, what: &str) -> Result<()> {
    let n = input.i32(what)?;
    if n > 0 {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        input.ensure(n, 8, what)?;
        for _ in 0..n {
            input.nullable_string(what)?;
            input.nullable_string(what)?;
        }
    }
    Ok(())
}

/// `CreateAlignedTimeSeriesNode.serializeAttributes` (…/metadata/write/CreateAlignedTimeSeriesNode
/// at the revision the module names): the device, then the measurements in `MeasurementGroup` form.
fn create_aligned_time_series(input: &mut ByteReader<'_>) -> Result<CreateSeries> {
    let device = input.string("device path")?;
    tree_device(&device)?;
    measurement_group(input, device, true)
}

/// `MeasurementGroup.serialize`: a count, the names, then per measurement a type ordinal, an encoding
/// ordinal and a compressor code, then aliases, tags and attributes each behind a flag byte (-1 none,
/// 0 an empty list, 1 one entry per measurement). Aliases, tags and attributes are not kept: Duet has
/// none.
fn measurement_group(
    input: &mut ByteReader<'_>,
    device: String,
    aligned: bool,
) -> Result<CreateSeries> {
    let n = input.count(7, "measurements")?;
    let names = input.many(n, |r| r.string("measurement"))?;
    let types = input.many(n, |r| r.u8("data type").and_then(data_type))?;
    let encodings = input.many(n, |r| r.u8("encoding").and_then(encoding_of))?;
    let compressors = input.many(n, |r| r.u8("compressor").and_then(compressor_of))?;
    if input.u8("alias flag")? == 1 {
        for _ in 0..n {
            input.nullable_string("alias")?;
        }
    }
    for what in ["tags", "attributes"] {
        if input.u8(what)? == 1 {
            for _ in 0..n {
                skip_map(input, what)?;
            }
        }
    }
    let series = names
        .into_iter()
        .zip(types)
        .zip(encodings.into_iter().zip(compressors))
        .map(|((m, t), (e, c))| (m, t, e, c))
        .collect();
    Ok(CreateSeries {
        device,
        aligned,
        series,
    })
}

/// Reads a node whose paths are `PartialPath`s by each known `Path` layout in turn, taking the one
/// that reads the node, trailer included, to the exact end of the input (as [`delete_data`] does).
fn with_path_layouts<T>(
    input: &mut ByteReader<'_>,
    name: String,
    read: impl Fn(&mut ByteReader<'_>, PathLayout) -> Result<T>,
) -> Result<T> {
    let mut first_error = None;
    for layout in PATH_LAYOUTS {
        let mut attempt = *input;
        match read(&mut attempt, layout).and_then(|node| {
            plan_node_trailer(&mut attempt)?;
            Ok(node)
        }) {
            Ok(node) if attempt.is_empty() => {
                *input = attempt;
                return Ok(node);
            }
            Ok(_) => {
                first_error.get_or_insert_with(|| {
                    malformed(format!("{} bytes after the {name}", attempt.remaining()))
                });
            }
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed(format!("malformed {name}"))))
}

/// A device given as a serialized `PartialPath`, joined from its nodes.
fn device_path(input: &mut ByteReader<'_>, layout: PathLayout) -> Result<String> {
    let nodes = measurement_path(input, layout)?;
    if nodes.len() < 2 {
        return Err(malformed(format!(
            "{} is not a device path",
            nodes.join(".")
        )));
    }
    Ok(nodes.join("."))
}

/// `CreateMultiTimeSeriesNode` (a count, then per device its path and `MeasurementGroup`; not aligned),
/// `InternalCreateTimeSeriesNode` (the path, the group, the aligned flag) and
/// `InternalCreateMultiTimeSeriesNode` (a count, then per device its path, aligned flag and group).
fn create_on_devices(
    input: &mut ByteReader<'_>,
    code: i16,
    layout: PathLayout,
) -> Result<Vec<CreateSeries>> {
    if code == node_type::INTERNAL_CREATE_TIME_SERIES {
        let device = device_path(input, layout)?;
        let mut group = measurement_group(input, device, false)?;
        group.aligned = input.u8("isAligned")? != 0;
        return Ok(vec![group]);
    }
    // A device takes at least its path (type byte, three absent parts, a node count) and a group.
    let n = input.count(12, "devices")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let device = device_path(input, layout)?;
        let group = if code == node_type::INTERNAL_CREATE_MULTI_TIMESERIES {
            let aligned = input.u8("isAligned")? != 0;
            measurement_group(input, device, aligned)?
        } else {
            measurement_group(input, device, false)?
        };
        out.push(group);
    }
    Ok(out)
}

/// `ActivateTemplateNode` (the device path, the template's set level and id) and the two batch nodes
/// (a count, then per device its path, set level and id).
fn activate_template(
    input: &mut ByteReader<'_>,
    code: i16,
    layout: PathLayout,
) -> Result<Vec<String>> {
    let n = if code == node_type::ACTIVATE_TEMPLATE {
        1
    } else {
        input.count(12, "devices")?
    };
    let mut devices = Vec::with_capacity(n);
    for _ in 0..n {
        devices.push(device_path(input, layout)?);
        input.i32("template set level")?;
        input.i32("template id")?;
    }
    Ok(devices)
}

/// `AlterTimeSeriesNode` changes a series' tags, attributes or alias (IoTDB 2.x: also its type).
/// Duet has none of these, so the node is refused, naming the series and what it alters: applying
/// part of it, or nothing, would leave the two sides different without either side knowing.
fn alter_time_series(input: &mut ByteReader<'_>) -> ProtoError {
    let path = match input.bytes("series path") {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(e) => return e,
    };
    let mut kind = input.u8("alter type").unwrap_or(0xff);
    if kind == 0xff {
        // A view's alteration is marked by a -1 before the type.
        kind = input.u8("alter type").unwrap_or(0xff);
    }
    // `AlterTimeSeriesStatement.AlterType` ordinals.
    let what = match kind {
        0 => "RENAME (a tag or attribute key)",
        1 => "SET (tag or attribute values)",
        2 => "DROP (tags or attributes)",
        3 => "ADD TAGS",
        4 => "ADD ATTRIBUTES",
        5 => "UPSERT (alias, tags, attributes)",
        6 => "SET DATA TYPE",
        _ => "an alteration",
    };
    unsupported(format!(
        "AlterTimeSeriesNode ({what} of {path}) is refused: Duet keeps no tags, attributes or \
         aliases of a series"
    ))
}

/// `CreateTimeSeriesNode.serializeAttributes`: a path kind byte, the `MeasurementPath`, type,
/// encoding and compressor codes, alias, props, tags, attributes and the tag offset. The path's
/// layout decides between the known revisions, as for `DeleteDataNode`; the node must end exactly.
fn create_time_series(input: &mut ByteReader<'_>) -> Result<WriteNode> {
    let mut first_error = None;
    for layout in PATH_LAYOUTS {
        let mut attempt = *input;
        match create_time_series_as(&mut attempt, layout) {
            Ok(node) if attempt.is_empty() => {
                *input = attempt;
                return Ok(WriteNode::CreateSeries(node));
            }
            Ok(_) => {
                first_error.get_or_insert_with(|| {
                    malformed(format!(
                        "{} bytes after the CreateTimeSeriesNode",
                        attempt.remaining()
                    ))
                });
            }
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed("malformed CreateTimeSeriesNode")))
}

fn create_time_series_as(input: &mut ByteReader<'_>, layout: PathLayout) -> Result<CreateSeries> {
    let kind = input.u8("path kind")?;
    if kind != 0 && kind != 2 {
        return Err(malformed(format!(
            "path kind {kind} in a CreateTimeSeriesNode"
        )));
    }
    let path = measurement_path(input, layout)?;
    let data_type = data_type(input.u8("data type")?)?;
    let encoding = encoding_of(input.u8("encoding")?)?;
    let compressor = compressor_of(input.u8("compressor")?)?;
    input.nullable_string("alias")?;
    for what in ["props", "tags", "attributes"] {
        skip_map(input, what)?;
    }
    input.i64("tag offset")?;
    plan_node_trailer(input)?;
    // The last node is the measurement as written (it may hold a dot); the rest is the device.
    let Some((measurement, device)) = path.split_last() else {
        return Err(malformed("an empty series path"));
    };
    if device.len() < 2 {
        return Err(malformed(format!(
            "{} is not a series path",
            path.join(".")
        )));
    }
    Ok(CreateSeries {
        device: device.join("."),
        aligned: false,
        series: vec![(measurement.clone(), data_type, encoding, compressor)],
    })
}

/// A serialized `PartialPath` (a `MeasurementPath` too) in the tsfile 2.x `Path` form (a presence
/// byte before each optional part) or the 1.x one (three nullable strings); its nodes. For the
/// config plans that carry paths (`crate::config_plan`).
pub(crate) fn read_partial_path(
    input: &mut ByteReader<'_>,
    presence_bytes: bool,
) -> Result<Vec<String>> {
    measurement_path(
        input,
        PathLayout {
            presence_bytes,
            trailer: PathTrailer::TagMap,
        },
    )
}

/// `PathType` bytes.
const PATH_TYPE_MEASUREMENT: u8 = 0;
const PATH_TYPE_PARTIAL: u8 = 2;

/// A `MeasurementPath` (or plain `PartialPath`) as `PartialPath.serialize` writes it; returns its
/// nodes.
fn measurement_path(input: &mut ByteReader<'_>, layout: PathLayout) -> Result<Vec<String>> {
    let path_type = input.u8("path type")?;
    if path_type != PATH_TYPE_MEASUREMENT && path_type != PATH_TYPE_PARTIAL {
        return Err(malformed(format!(
            "path type {path_type} in a DeleteDataNode"
        )));
    }
    // tsfile `Path`: measurement, device, full path.
    for what in ["path measurement", "path device", "full path"] {
        if layout.presence_bytes {
            if input.u8(what)? == 1 {
                input.nullable_string(what)?;
            }
        } else {
            input.nullable_string(what)?;
        }
    }
    let nodes = input.count(4, "path nodes")?;
    let mut parts = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        parts.push(input.string("path node")?);
    }
    if path_type == PATH_TYPE_MEASUREMENT {
        if input.u8("schema flag")? == 1 {
            match input.u8("schema type")? {
                0 => {
                    measurement_schema(input)?;
                }
                other => {
                    return Err(malformed(format!(
                        "measurement schema type {other} in a DeleteDataNode path"
                    )))
                }
            }
        }
        match layout.trailer {
            PathTrailer::TagMap => {
                if input.u8("tag map flag")? == 1 {
                    let tags = input.i32("tag count")?;
                    let tags = usize::try_from(tags).unwrap_or(0);
                    input.ensure(tags, 8, "tags")?;
                    for _ in 0..tags {
                        input.nullable_string("tag key")?;
                        input.nullable_string("tag value")?;
                    }
                }
                input.u8("isUnderAlignedEntity")?;
                input.nullable_string("measurement alias")?;
            }
            PathTrailer::Version => {
                input.u8("isUnderAlignedEntity")?;
                input.nullable_string("measurement alias")?;
                input.nullable_string("path version")?;
            }
        }
    }
    if parts.first().map(String::as_str) != Some("root") {
        return Err(unsupported(format!(
            "{} is not a tree-model path",
            parts.join(".")
        )));
    }
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    //! Byte fixtures written field by field from IoTDB's serializers (the Java methods named in the
    //! module header), not through any Duet encoder.
    use super::*;
    use crate::test_bytes::string;
    use crate::types::ColumnValues;
    use bytes::BufMut;

    fn schema(out: &mut Vec<u8>, name: &str, code: u8) {
        string(out, name);
        out.put_u8(code);
        out.put_u8(0); // PLAIN
        out.put_u8(0); // UNCOMPRESSED
        out.put_i32(0);
    }

    /// `InsertTabletNode` rows 10, 11, 12 of (s_bool BOOLEAN, s_text TEXT, s_i64 INT64), s_text null
    /// at row 1.
    fn tablet_node(with_schemas: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(node_type::INSERT_TABLET);
        string(&mut b, "root.sg.d1");
        b.put_i32(3);
        b.put_u8(u8::from(with_schemas));
        let cols = [("s_bool", 0u8), ("s_text", 5), ("s_i64", 2)];
        for (name, code) in cols {
            if with_schemas {
                schema(&mut b, name, code);
            } else {
                string(&mut b, name);
            }
        }
        for (_, code) in cols {
            b.put_u8(code);
        }
        b.put_i32(3);
        for t in [10i64, 11, 12] {
            b.put_i64(t);
        }
        b.put_u8(1); // bitmaps
        b.put_u8(0);
        b.put_u8(1);
        b.put_u8(0b010); // 3/8 + 1 = 1 byte
        b.put_u8(0);
        for v in [1u8, 0, 1] {
            b.put_u8(v);
        }
        string(&mut b, "a");
        b.put_i32(0); // null text
        string(&mut b, "c");
        for v in [-1i64, 0, 1] {
            b.put_i64(v);
        }
        b.put_u8(1); // aligned
        string(&mut b, "planNodeId");
        b.put_i32(0);
        b
    }

    #[test]
    fn an_insert_tablet_node_is_read_with_and_without_schemas() {
        for with_schemas in [false, true] {
            let body = tablet_node(with_schemas);
            let WriteNode::Tablets(tablets) = decode_plan_node(&body).unwrap() else {
                panic!("not tablets")
            };
            let t = &tablets[0];
            assert_eq!(t.device, "root.sg.d1");
            assert!(t.aligned);
            assert_eq!(t.measurements, ["s_bool", "s_text", "s_i64"]);
            assert_eq!(t.times, [10, 11, 12]);
            assert_eq!(
                t.columns[0].values,
                ColumnValues::Boolean(vec![true, false, true])
            );
            assert_eq!(t.columns[1].nulls, Some(vec![false, true, false]));
            assert_eq!(t.columns[1].data_type, DataType::Text);
            assert_eq!(
                t.columns[1].values,
                ColumnValues::Binary(vec![b"a".to_vec(), vec![], b"c".to_vec()])
            );
            assert_eq!(t.columns[2].values, ColumnValues::Int64(vec![-1, 0, 1]));
            for cut in 0..body.len() {
                assert!(decode_plan_node(&body[..cut]).is_err(), "cut {cut}");
            }
        }
    }

    /// `InsertRowNode` fields after the type: every typed tag, both null tags and a raw string.
    fn row_fields(b: &mut Vec<u8>, layout: Layout) {
        b.put_i64(42);
        string(b, "root.sg.d2");
        let values: Vec<(&str, u8)> = vec![
            ("b", 0),
            ("i", 1),
            ("l", 2),
            ("f", 3),
            ("d", 4),
            ("t", 5),
            ("ts", 8),
            ("dt", 9),
            ("blob", 10),
            ("s", 11),
            ("n1", 2),
            ("n2", 2),
            ("raw", 5),
        ];
        b.put_i32(values.len() as i32);
        if layout == Layout::Plan {
            b.put_u8(0);
        }
        for (name, code) in &values {
            if layout == Layout::Plan {
                string(b, name);
            } else {
                schema(b, name, *code);
            }
        }
        b.put_u8(0);
        b.put_u8(1);
        b.put_u8(1);
        b.put_i32(-5);
        b.put_u8(2);
        b.put_i64(1 << 40);
        b.put_u8(3);
        b.put_f32(1.5);
        b.put_u8(4);
        b.put_f64(-2.25);
        b.put_u8(5);
        string(b, "text");
        b.put_u8(8);
        b.put_i64(1_700_000_000_000);
        b.put_u8(9);
        b.put_i32(20_240_229);
        b.put_u8(10);
        b.put_i32(2);
        b.extend_from_slice(&[0xca, 0xfe]);
        b.put_u8(11);
        string(b, "str");
        b.put_u8(0xfd); // null with its type
        b.put_u8(2);
        b.put_u8(0xfe); // null without a type
        b.put_u8(0xff); // raw string
        string(b, "3.5");
        if layout == Layout::Plan {
            b.put_u8(0); // isNeedInferType
        }
        b.put_u8(0); // not aligned
    }

    fn check_row(row: &InsertRow) {
        assert_eq!(
            (row.device.as_str(), row.time, row.aligned),
            ("root.sg.d2", 42, false)
        );
        assert_eq!(row.measurements.len(), 13);
        assert_eq!(
            row.values[..10],
            [
                RowValue::Value(RecordValue::Boolean(true)),
                RowValue::Value(RecordValue::Int32(-5)),
                RowValue::Value(RecordValue::Int64(1 << 40)),
                RowValue::Value(RecordValue::Float(1.5)),
                RowValue::Value(RecordValue::Double(-2.25)),
                RowValue::Value(RecordValue::Binary(DataType::Text, b"text".to_vec())),
                RowValue::Value(RecordValue::Timestamp(1_700_000_000_000)),
                RowValue::Value(RecordValue::Date(20_240_229)),
                RowValue::Value(RecordValue::Binary(DataType::Blob, vec![0xca, 0xfe])),
                RowValue::Value(RecordValue::Binary(DataType::String, b"str".to_vec())),
            ]
        );
        assert_eq!(row.values[10], RowValue::Null(Some(DataType::Int64)));
        assert_eq!(row.values[11], RowValue::Null(None));
        assert_eq!(row.values[12], RowValue::Unparsed("3.5".into()));
    }

    #[test]
    fn insert_row_and_rows_nodes_carry_every_type_nulls_and_raw_strings() {
        let mut row = Vec::new();
        row.put_i16(node_type::INSERT_ROW);
        row_fields(&mut row, Layout::Plan);
        string(&mut row, "id");
        row.put_i32(0);
        let WriteNode::Rows(rows) = decode_plan_node(&row).unwrap() else {
            panic!()
        };
        check_row(&rows[0]);

        let mut rows_node = Vec::new();
        rows_node.put_i16(node_type::INSERT_ROWS);
        rows_node.put_i32(2);
        row_fields(&mut rows_node, Layout::Plan);
        row_fields(&mut rows_node, Layout::Plan);
        rows_node.put_i32(0);
        rows_node.put_i32(1);
        string(&mut rows_node, "id");
        rows_node.put_i32(0);
        let WriteNode::Rows(rows) = decode_plan_node(&rows_node).unwrap() else {
            panic!()
        };
        assert_eq!(rows.len(), 2);
        rows.iter().for_each(check_row);
        for cut in 0..rows_node.len() {
            assert!(decode_plan_node(&rows_node[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn wal_entries_of_tablets_rows_and_row_lists_are_read() {
        // InsertTabletNode.serializeToWAL: schemas carry the types, no separate type list.
        let mut tablet = Vec::new();
        tablet.put_u8(1); // WAL entry type
        tablet.put_i64(7); // memtable id
        tablet.put_i16(node_type::INSERT_TABLET);
        tablet.put_i64(99); // search index
        string(&mut tablet, "root.sg.d3");
        tablet.put_i32(1);
        schema(&mut tablet, "s", 4);
        tablet.put_i32(2);
        tablet.put_i64(1);
        tablet.put_i64(2);
        tablet.put_u8(0); // no bitmaps
        tablet.put_f64(0.5);
        tablet.put_f64(1.5);
        tablet.put_u8(0);
        let WriteNode::Tablets(t) = decode_wal_entry(&tablet).unwrap() else {
            panic!()
        };
        assert_eq!(t[0].columns[0].values, ColumnValues::Double(vec![0.5, 1.5]));
        assert_eq!(t[0].times, [1, 2]);

        let mut rows = Vec::new();
        rows.put_u8(0);
        rows.put_i64(7);
        rows.put_i16(node_type::INSERT_ROWS);
        rows.put_i64(99);
        rows.put_i32(2);
        row_fields(&mut rows, Layout::Wal);
        row_fields(&mut rows, Layout::Wal);
        let WriteNode::Rows(r) = decode_wal_entry(&rows).unwrap() else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        r.iter().for_each(check_row);
        for cut in 0..rows.len() {
            assert!(decode_wal_entry(&rows[..cut]).is_err(), "cut {cut}");
        }
    }

    /// A `DeleteDataNode` of IoTDB 2.x: MeasurementPath with tsfile-2 presence bytes and a tag map.
    fn delete_node(patterns: &[&[&str]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(node_type::DELETE_DATA);
        b.put_i32(patterns.len() as i32);
        for nodes in patterns {
            b.put_u8(0); // PathType.Measurement
            b.put_u8(0); // measurement absent
            b.put_u8(1); // device present
            string(&mut b, "ignored");
            b.put_u8(0); // full path absent
            b.put_i32(nodes.len() as i32);
            for n in *nodes {
                string(&mut b, n);
            }
            b.put_u8(0); // no schema
            b.put_u8(0); // no tag map
            b.put_u8(0); // not aligned
            b.put_i32(-1); // no alias
        }
        b.put_i64(100);
        b.put_i64(200);
        string(&mut b, "id");
        b.put_i32(0);
        b
    }

    #[test]
    fn delete_data_nodes_give_their_patterns_and_range() {
        let body = delete_node(&[&["root", "sg", "d1", "s1"], &["root", "sg", "**"]]);
        assert_eq!(
            decode_plan_node(&body).unwrap(),
            WriteNode::Delete(DeleteData {
                paths: vec!["root.sg.d1.s1".into(), "root.sg.**".into()],
                start: 100,
                end: 200,
            })
        );
        for cut in 0..body.len() {
            assert!(decode_plan_node(&body[..cut]).is_err(), "cut {cut}");
        }
        // IoTDB 1.0's layout: three nullable strings, then aligned flag, alias and version.
        let mut old = Vec::new();
        old.put_i16(node_type::DELETE_DATA);
        old.put_i32(1);
        crate::test_bytes::path(&mut old, 0, "root.sg.d9", false);
        old.put_u8(0);
        old.put_u8(0);
        old.put_i32(-1);
        old.put_i32(-1);
        old.put_i64(i64::MIN);
        old.put_i64(5);
        string(&mut old, "id");
        old.put_i32(0);
        let WriteNode::Delete(d) = decode_plan_node(&old).unwrap() else {
            panic!()
        };
        assert_eq!(
            (d.paths, d.start, d.end),
            (vec!["root.sg.d9".into()], i64::MIN, 5)
        );
    }

    #[test]
    fn create_time_series_nodes_give_series_with_their_encodings() {
        // CreateTimeSeriesNode: path kind, MeasurementPath (tsfile-2 Path, nodes, trailer), type,
        // encoding ordinal (RLE), compressor code (SNAPPY), alias, props, tags, attributes, offset.
        let mut b = Vec::new();
        b.put_i16(node_type::CREATE_TIME_SERIES);
        b.put_u8(0);
        b.put_u8(0);
        b.put_u8(0);
        b.put_u8(0);
        b.put_u8(0);
        b.put_i32(4);
        for n in ["root", "sg", "d1", "s1"] {
            string(&mut b, n);
        }
        b.put_u8(0);
        b.put_u8(0);
        b.put_u8(0);
        b.put_i32(-1);
        b.put_u8(1); // INT32
        b.put_u8(2); // RLE
        b.put_u8(1); // SNAPPY
        b.put_i32(-1); // no alias
        for _ in 0..3 {
            b.put_i32(-1);
        }
        b.put_i64(-1);
        string(&mut b, "id");
        b.put_i32(0);
        let expected = WriteNode::CreateSeries(CreateSeries {
            device: "root.sg.d1".into(),
            aligned: false,
            series: vec![("s1".into(), DataType::Int32, "RLE".into(), "SNAPPY".into())],
        });
        assert_eq!(decode_plan_node(&b).unwrap(), expected);
        for cut in 0..b.len() {
            assert!(decode_plan_node(&b[..cut]).is_err(), "cut {cut}");
        }
        // CreateAlignedTimeSeriesNode with tags on both measurements.
        let mut b = Vec::new();
        b.put_i16(node_type::CREATE_ALIGNED_TIME_SERIES);
        string(&mut b, "root.sg.d2");
        b.put_i32(2);
        string(&mut b, "a");
        string(&mut b, "b");
        b.put_u8(4);
        b.put_u8(5);
        b.put_u8(8); // GORILLA
        b.put_u8(0); // PLAIN
        b.put_u8(8); // ZSTD
        b.put_u8(7); // LZ4
        b.put_u8(0xff); // no aliases
        b.put_u8(1); // tags
        for _ in 0..2 {
            b.put_i32(1);
            string(&mut b, "k");
            string(&mut b, "v");
        }
        b.put_u8(0); // attributes: empty list
        string(&mut b, "id");
        b.put_i32(0);
        let WriteNode::CreateSeries(c) = decode_plan_node(&b).unwrap() else {
            panic!()
        };
        assert!(c.aligned);
        assert_eq!(
            c.series,
            [
                (
                    "a".into(),
                    DataType::Double,
                    "GORILLA".into(),
                    "ZSTD".into()
                ),
                ("b".into(), DataType::Text, "PLAIN".into(), "LZ4".into()),
            ]
        );
    }

    /// `PartialPath.serialize` with tsfile 2.x presence bytes: type 2, no measurement or device, the
    /// full path present, then the nodes.
    fn partial_path(b: &mut Vec<u8>, path: &str) {
        crate::test_bytes::path(b, 2, path, true);
    }

    /// `MeasurementGroup.serialize`: names, type ordinals, encoding ordinals, compressor codes, then
    /// aliases (present), tags (present, one map each) and attributes (absent, -1).
    fn measurement_group_bytes(b: &mut Vec<u8>, series: &[(&str, u8, u8, u8)]) {
        b.put_i32(series.len() as i32);
        for (m, ..) in series {
            string(b, m);
        }
        for (_, t, _, _) in series {
            b.put_u8(*t);
        }
        for (_, _, e, _) in series {
            b.put_u8(*e);
        }
        for (_, _, _, c) in series {
            b.put_u8(*c);
        }
        b.put_u8(1);
        for (m, ..) in series {
            string(b, &format!("{m}_alias"));
        }
        b.put_u8(1);
        for _ in series {
            b.put_i32(1);
            string(b, "unit");
            string(b, "C");
        }
        b.put_u8(0xff);
    }

    fn trailer(b: &mut Vec<u8>) {
        string(b, "node-id");
        b.put_i32(0);
    }

    fn check_every_cut(body: &[u8]) {
        for cut in 0..body.len() {
            assert!(decode_plan_node(&body[..cut]).is_err(), "cut {cut}");
        }
        let mut padded = body.to_vec();
        padded.push(0);
        assert!(decode_plan_node(&padded).is_err(), "a byte too many");
    }

    #[test]
    fn multi_and_internal_create_nodes_give_series_per_device() {
        // CreateMultiTimeSeriesNode: two devices, not aligned.
        let mut b = Vec::new();
        b.put_i16(node_type::CREATE_MULTI_TIME_SERIES);
        b.put_i32(2);
        partial_path(&mut b, "root.sg.d1");
        measurement_group_bytes(&mut b, &[("s1", 2, 4, 1), ("s2", 5, 0, 0)]);
        partial_path(&mut b, "root.sg.d2");
        measurement_group_bytes(&mut b, &[("s3", 0, 1, 7)]);
        trailer(&mut b);
        let WriteNode::CreateSeriesOnDevices(groups) = decode_plan_node(&b).unwrap() else {
            panic!()
        };
        assert_eq!(
            groups,
            [
                CreateSeries {
                    device: "root.sg.d1".into(),
                    aligned: false,
                    series: vec![
                        (
                            "s1".into(),
                            DataType::Int64,
                            "TS_2DIFF".into(),
                            "SNAPPY".into()
                        ),
                        (
                            "s2".into(),
                            DataType::Text,
                            "PLAIN".into(),
                            "UNCOMPRESSED".into()
                        ),
                    ],
                },
                CreateSeries {
                    device: "root.sg.d2".into(),
                    aligned: false,
                    series: vec![(
                        "s3".into(),
                        DataType::Boolean,
                        "DICTIONARY".into(),
                        "LZ4".into()
                    )],
                },
            ]
        );
        check_every_cut(&b);

        // InternalCreateTimeSeriesNode: path, group, aligned flag.
        let mut b = Vec::new();
        b.put_i16(node_type::INTERNAL_CREATE_TIME_SERIES);
        partial_path(&mut b, "root.sg.d3");
        measurement_group_bytes(&mut b, &[("a", 3, 8, 8)]);
        b.put_u8(1);
        trailer(&mut b);
        let WriteNode::CreateSeriesOnDevices(groups) = decode_plan_node(&b).unwrap() else {
            panic!()
        };
        assert_eq!(
            (groups[0].device.as_str(), groups[0].aligned),
            ("root.sg.d3", true)
        );
        assert_eq!(
            groups[0].series,
            [("a".into(), DataType::Float, "GORILLA".into(), "ZSTD".into())]
        );
        check_every_cut(&b);

        // InternalCreateMultiTimeSeriesNode: count, then path, aligned flag, group; written with the
        // tsfile 1.x `Path` (three nullable strings instead of presence bytes).
        let mut b = Vec::new();
        b.put_i16(node_type::INTERNAL_CREATE_MULTI_TIMESERIES);
        b.put_i32(2);
        for (device, aligned) in [("root.sg.d4", 0u8), ("root.sg.d5", 1)] {
            b.put_u8(2);
            for _ in 0..3 {
                b.put_i32(-1);
            }
            let nodes: Vec<&str> = device.split('.').collect();
            b.put_i32(nodes.len() as i32);
            for n in nodes {
                string(&mut b, n);
            }
            b.put_u8(aligned);
            measurement_group_bytes(&mut b, &[("v", 4, 8, 1)]);
        }
        trailer(&mut b);
        let WriteNode::CreateSeriesOnDevices(groups) = decode_plan_node(&b).unwrap() else {
            panic!()
        };
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.device.as_str(), g.aligned))
                .collect::<Vec<_>>(),
            [("root.sg.d4", false), ("root.sg.d5", true)]
        );
        check_every_cut(&b);
    }

    #[test]
    fn template_activations_give_their_devices() {
        let mut b = Vec::new();
        b.put_i16(node_type::ACTIVATE_TEMPLATE);
        partial_path(&mut b, "root.sg.d1");
        b.put_i32(2); // set level
        b.put_i32(7); // template id
        trailer(&mut b);
        assert_eq!(
            decode_plan_node(&b).unwrap(),
            WriteNode::ActivateTemplate(vec!["root.sg.d1".into()])
        );
        check_every_cut(&b);
        for code in [
            node_type::BATCH_ACTIVATE_TEMPLATE,
            node_type::INTERNAL_BATCH_ACTIVATE_TEMPLATE,
        ] {
            let mut b = Vec::new();
            b.put_i16(code);
            b.put_i32(2);
            for device in ["root.sg.d1", "root.sg.d2"] {
                partial_path(&mut b, device);
                b.put_i32(2);
                b.put_i32(7);
            }
            trailer(&mut b);
            assert_eq!(
                decode_plan_node(&b).unwrap(),
                WriteNode::ActivateTemplate(vec!["root.sg.d1".into(), "root.sg.d2".into()])
            );
            check_every_cut(&b);
        }
    }

    #[test]
    fn an_alter_time_series_node_is_refused_naming_the_series() {
        // AlterTimeSeriesNode: the full path as bytes, ADD_TAGS, no alias, the maps, no data type.
        let mut b = Vec::new();
        b.put_i16(node_type::ALTER_TIME_SERIES);
        string(&mut b, "root.sg.d1.s1");
        b.put_u8(3);
        b.put_u8(0);
        b.put_u8(1);
        b.put_i32(1);
        string(&mut b, "k");
        string(&mut b, "v");
        b.put_u8(0xff);
        b.put_u8(0xff);
        b.put_u8(0);
        trailer(&mut b);
        let err = decode_plan_node(&b).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("AlterTimeSeriesNode")
                && message.contains("root.sg.d1.s1")
                && message.contains("ADD TAGS")
                && message.contains("no tags"),
            "{message}"
        );
    }

    #[test]
    fn table_model_and_other_nodes_are_refused_by_name() {
        let mut b = Vec::new();
        b.put_i16(node_type::RELATIONAL_INSERT_TABLET);
        b.extend_from_slice(&[0; 16]);
        let err = decode_plan_node(&b).unwrap_err().to_string();
        assert!(err.contains("RelationalInsertTabletNode") && err.contains("table-model"));
        let mut b = Vec::new();
        b.put_i16(4);
        let err = decode_plan_node(&b).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        // A table name where a tree device belongs.
        let mut row = Vec::new();
        row.put_i16(node_type::INSERT_ROW);
        row.put_i64(1);
        string(&mut row, "table1");
        row.put_i32(0);
        row.put_u8(0);
        row.put_u8(0);
        row.put_u8(0);
        string(&mut row, "id");
        row.put_i32(0);
        let err = decode_plan_node(&row).unwrap_err().to_string();
        assert!(err.contains("table1"), "{err}");
    }

    #[test]
    fn hostile_counts_are_errors_before_any_allocation() {
        let mut b = Vec::new();
        b.put_i16(node_type::INSERT_TABLET);
        string(&mut b, "root.sg.d1");
        b.put_i32(i32::MAX);
        assert!(decode_plan_node(&b).is_err());
        let mut b = Vec::new();
        b.put_i16(node_type::INSERT_ROWS);
        b.put_i32(-1);
        assert!(decode_plan_node(&b).is_err());
        let mut b = Vec::new();
        b.put_i16(node_type::DELETE_DATA);
        b.put_i32(i32::MAX);
        assert!(decode_plan_node(&b).is_err());
    }
}
