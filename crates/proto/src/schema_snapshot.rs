//! IoTDB's schema-region snapshot as a pipe carries it (`TRANSFER_SCHEMA_SNAPSHOT_PIECE` 101 /
//! `…_SEAL` 102): what an IoTDB sender whose `inclusion` covers `schema.timeseries` sends as the
//! schema *history* of one database. The pieces are plain file pieces; the seal is a
//! `PipeTransferFileSealReqV2` body whose files are, by position, the MTree snapshot, the tag log
//! (optional) and the table model's device attributes (optional), and whose parameters say which
//! database the snapshot is of and what of it the pipe transfers.
//!
//! Facts from apache/iotdb (read, not copied): the seal's layout and keys from
//! `PipeTransferSchemaSnapshotSealReq.toTPipeTransferReq` (datanode `…/pipe/sink/payload/evolvable/
//! request/`, 39d950d) and `PipeTransferFileSealReqV2` (node-commons, 1edb6a4: `database_pattern`,
//! `tree`, `table`) with `ColumnHeaderConstant` (031ce8b: `PathPattern`, `Database`, `Type`,
//! `TableName`); the type filter from `PipeSchemaRegionSnapshotEvent.getStatementTypeSet` and
//! `PipeSnapshotEvent.toSealTypeString` (a comma-separated list of `PlanNodeType` codes); the file's
//! layout from `MemMTreeSnapshotUtil` (87eb95d: a version byte, then the tree in pre-order, each node a
//! type byte and its fields, a non-leaf node with its child count), node types from `SchemaConstant`,
//! `MeasurementSchema.serializeTo` from apache/tsfile (10e9ea5); and what the receiver makes of it from
//! `SRStatementGenerator` (16f526a: paths below the snapshot's root node, which is the database; a
//! device that uses a template is activated; an aligned device's series are created together, the
//! others one by one) and `IoTDBDataNodeReceiver.loadSchemaSnapShot`.
//!
//! The whole file is parsed before anything is returned, so a corrupt or truncated snapshot is an
//! error and nothing of it is applied. Logical views (whose schema is a serialized expression tree)
//! and table-model device nodes are refused by name as [`ProtoError::Unsupported`]: without them the
//! rest of the file cannot be read.

use std::collections::{BTreeMap, BTreeSet};

use crate::reader::{malformed, ByteReader};
use crate::types::DataType;
use crate::{ProtoError, Result};

/// Seal parameter keys (`ColumnHeaderConstant` and `PipeTransferFileSealReqV2`).
pub mod seal_key {
    pub const PATH_PATTERN: &str = "PathPattern";
    pub const DATABASE: &str = "Database";
    pub const TYPE: &str = "Type";
    pub const TABLE_NAME: &str = "TableName";
    pub const DATABASE_PATTERN: &str = "database_pattern";
    pub const TREE: &str = "tree";
    pub const TABLE: &str = "table";
}

/// The `PlanNodeType` codes a seal's `Type` lists, for the statements a snapshot turns into.
pub mod snapshot_type {
    pub const CREATE_TIME_SERIES: i16 = 19;
    pub const CREATE_ALIGNED_TIME_SERIES: i16 = 22;
    pub const ACTIVATE_TEMPLATE: i16 = 53;
    pub const INTERNAL_CREATE_MULTI_TIMESERIES: i16 = 69;
    pub const BATCH_ACTIVATE_TEMPLATE: i16 = 72;
    pub const CREATE_LOGICAL_VIEW: i16 = 73;
    pub const ALTER_LOGICAL_VIEW: i16 = 78;
}

/// `SchemaConstant`'s MNode type bytes.
mod node_type {
    pub const INTERNAL: u8 = 0;
    pub const DATABASE: u8 = 1;
    pub const MEASUREMENT: u8 = 2;
    pub const DEVICE: u8 = 3;
    pub const DATABASE_DEVICE: u8 = 4;
    pub const LOGICAL_VIEW: u8 = 5;
    pub const TABLE_DEVICE: u8 = 6;
}

/// The only snapshot version `MemMTreeSnapshotUtil` writes.
const SNAPSHOT_VERSION: u8 = 0;

/// What a schema snapshot seal's parameters say.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaSnapshotSeal {
    /// The database the snapshot is of (`root.sg`; a table-model database has no `root.`).
    pub database: String,
    /// The pipe's tree path pattern (IoTDB's form), if the sender sent one.
    pub path_pattern: Option<String>,
    /// The `PlanNodeType` codes of the statements to apply.
    pub types: BTreeSet<i16>,
    /// Whether the pipe captures the tree model: the `tree` key, or neither key (a sender from
    /// before the table model knew only the tree).
    pub tree_captured: bool,
    /// Whether the pipe captures the table model (the `table` key).
    pub table_captured: bool,
}

/// A seal's `Type` list (comma-separated plan type codes); `what` names the seal for the error.
pub(crate) fn seal_types(type_list: &str, what: &str) -> Result<BTreeSet<i16>> {
    type_list
        .split(',')
        .map(|t| {
            t.trim().parse::<i16>().map_err(|_| {
                malformed(format!(
                    "the {what} seal's Type {type_list:?} is not a list of plan types"
                ))
            })
        })
        .collect()
}

/// A seal's tree path pattern, if it has a non-empty one.
pub(crate) fn seal_path_pattern(params: &BTreeMap<String, String>) -> Option<String> {
    params
        .get(seal_key::PATH_PATTERN)
        .filter(|p| !p.is_empty())
        .cloned()
}

/// Whether a seal's pipe captures the tree model and the table model: the `tree` key, or neither
/// key (a sender from before the table model knew only the tree); the `table` key.
pub(crate) fn seal_captures(params: &BTreeMap<String, String>) -> (bool, bool) {
    let has_tree = params.contains_key(seal_key::TREE);
    let has_table = params.contains_key(seal_key::TABLE);
    (has_tree || !has_table, has_table)
}

/// Reads a schema snapshot seal's parameters.
pub fn schema_snapshot_seal(params: &BTreeMap<String, String>) -> Result<SchemaSnapshotSeal> {
    let database = params
        .get(seal_key::DATABASE)
        .filter(|d| !d.is_empty())
        .cloned()
        .ok_or_else(|| malformed("a schema snapshot seal without its Database parameter"))?;
    let type_list = params
        .get(seal_key::TYPE)
        .ok_or_else(|| malformed("a schema snapshot seal without its Type parameter"))?;
    let types = seal_types(type_list, "schema snapshot")?;
    let (tree_captured, table_captured) = seal_captures(params);
    Ok(SchemaSnapshotSeal {
        database,
        path_pattern: seal_path_pattern(params),
        types,
        tree_captured,
        table_captured,
    })
}

/// One series of a snapshot's device (a measurement node).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSeries {
    pub measurement: String,
    pub data_type: DataType,
    /// IoTDB's encoding and compressor names.
    pub encoding: String,
    pub compressor: String,
    pub alias: Option<String>,
    /// Where its tags and attributes are in the tag log (negative: none).
    pub tag_offset: i64,
    /// Being deleted on the sender when the snapshot was taken.
    pub pre_deleted: bool,
}

/// A device of a snapshot (an entity node, or the database node when it is a device too).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotDevice {
    /// Its nodes below the database (empty: the database itself).
    pub nodes: Vec<String>,
    /// `isAligned`: `None` when the sender had not decided (a device with only template series).
    pub aligned: Option<bool>,
    /// `isUseTemplate`: the device activated the template set above it.
    pub template_activated: bool,
    /// Its series, in file order.
    pub series: Vec<SnapshotSeries>,
}

/// A parsed MTree snapshot: its root's name and its devices in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct MTreeSnapshot {
    pub root: String,
    pub devices: Vec<SnapshotDevice>,
}

/// A node that has children still to read.
struct Open {
    nodes: Vec<String>,
    children_left: usize,
    /// Its index in the devices when it is a device.
    device: Option<usize>,
}

/// The fewest bytes a child node takes (an internal node with an empty name: type, child count,
/// name length, template id, template flag), to bound a child count by the bytes left.
const MIN_NODE_BYTES: usize = 14;

/// Parses a whole `mtree.snapshot` file.
pub fn parse_mtree_snapshot(bytes: &[u8]) -> Result<MTreeSnapshot> {
    let mut input = ByteReader::new(bytes);
    let version = input.u8("snapshot version")?;
    if version != SNAPSHOT_VERSION {
        return Err(ProtoError::Unsupported(format!(
            "MTree snapshot version {version} (Duet reads version {SNAPSHOT_VERSION})"
        )));
    }
    let root_type = input.u8("node type")?;
    if !matches!(root_type, node_type::DATABASE | node_type::DATABASE_DEVICE) {
        return Err(malformed(format!(
            "an MTree snapshot whose root is node type {root_type}, not a database"
        )));
    }
    let children = input.count(MIN_NODE_BYTES, "child nodes")?;
    let root = input.string("node name")?;
    let mut devices = Vec::new();
    let device = device_fields(&mut input, root_type == node_type::DATABASE_DEVICE)?;
    let root_device = device.map(|(aligned, template_activated)| {
        devices.push(SnapshotDevice {
            nodes: Vec::new(),
            aligned,
            template_activated,
            series: Vec::new(),
        });
        0
    });
    let mut stack = vec![Open {
        nodes: Vec::new(),
        children_left: children,
        device: root_device,
    }];
    while let Some(top) = stack.last_mut() {
        if top.children_left == 0 {
            stack.pop();
            continue;
        }
        top.children_left -= 1;
        let parent_nodes = top.nodes.clone();
        let parent_device = top.device;
        let type_ = input.u8("node type")?;
        match type_ {
            node_type::MEASUREMENT => {
                let series = measurement(&mut input)?;
                let Some(index) = parent_device else {
                    return Err(malformed(format!(
                        "series {} is not under a device",
                        path_of(&parent_nodes, &series.measurement)
                    )));
                };
                if let Some(device) = devices.get_mut(index) {
                    device.series.push(series);
                }
            }
            node_type::INTERNAL | node_type::DEVICE => {
                let children = input.count(MIN_NODE_BYTES, "child nodes")?;
                let name = input.string("node name")?;
                let mut nodes = parent_nodes;
                nodes.push(name);
                let device = match device_fields(&mut input, type_ == node_type::DEVICE)? {
                    Some((aligned, template_activated)) => {
                        devices.push(SnapshotDevice {
                            nodes: nodes.clone(),
                            aligned,
                            template_activated,
                            series: Vec::new(),
                        });
                        Some(devices.len() - 1)
                    }
                    None => None,
                };
                if children > 0 {
                    stack.push(Open {
                        nodes,
                        children_left: children,
                        device,
                    });
                }
            }
            node_type::LOGICAL_VIEW => {
                let name = input.string("node name").unwrap_or_default();
                return Err(ProtoError::Unsupported(format!(
                    "the schema snapshot holds logical view {}; Duet has no views",
                    path_of(&parent_nodes, &name)
                )));
            }
            node_type::TABLE_DEVICE => {
                return Err(ProtoError::Unsupported(
                    "the schema snapshot holds table-model devices; Duet takes the tree model only"
                        .into(),
                ))
            }
            node_type::DATABASE | node_type::DATABASE_DEVICE => {
                return Err(malformed(format!(
                    "a database node below {} in an MTree snapshot",
                    path_of(&parent_nodes, "")
                )))
            }
            other => return Err(malformed(format!("unknown MTree node type {other}"))),
        }
    }
    if !input.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the MTree snapshot's last node",
            input.remaining()
        )));
    }
    Ok(MTreeSnapshot { root, devices })
}

/// A path below the database, for messages.
fn path_of(nodes: &[String], last: &str) -> String {
    let mut all: Vec<&str> = nodes.iter().map(String::as_str).collect();
    if !last.is_empty() {
        all.push(last);
    }
    if all.is_empty() {
        "the database".into()
    } else {
        all.join(".")
    }
}

/// The fields after an inner node's name: the template id and flag, then for a device its aligned
/// flag (1, 0, or anything else for undecided). Returns `(aligned, template_activated)` for a device.
fn device_fields(
    input: &mut ByteReader<'_>,
    is_device: bool,
) -> Result<Option<(Option<bool>, bool)>> {
    let _template_id = input.i32("template id")?;
    let uses_template = bool_byte(input.u8("template flag")?, "template flag")?;
    if !is_device {
        return Ok(None);
    }
    let aligned = match input.u8("aligned flag")? {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    };
    Ok(Some((aligned, uses_template)))
}

fn bool_byte(b: u8, what: &str) -> Result<bool> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(malformed(format!("{what} is {other}, not a boolean"))),
    }
}

/// A measurement node after its type byte: name, `MeasurementSchema`, alias, tag offset,
/// pre-deleted flag.
fn measurement(input: &mut ByteReader<'_>) -> Result<SnapshotSeries> {
    let name = input.string("measurement name")?;
    let schema_name = input.string("measurement schema id")?;
    if schema_name != name {
        return Err(malformed(format!(
            "measurement node {name} holds the schema of {schema_name}"
        )));
    }
    let type_code = input.u8("data type")?;
    let data_type = DataType::from_code(i32::from(type_code)).ok_or_else(|| {
        ProtoError::Unsupported(format!(
            "series {name} has data type code {type_code}, which Duet does not store"
        ))
    })?;
    let encoding_code = input.u8("encoding")?;
    let encoding = crate::types::encoding_name(i32::from(encoding_code)).ok_or_else(|| {
        malformed(format!(
            "series {name} has unknown encoding {encoding_code}"
        ))
    })?;
    let compressor_code = input.u8("compressor")?;
    let compressor =
        crate::types::compressor_name(i32::from(compressor_code)).ok_or_else(|| {
            malformed(format!(
                "series {name} has unknown compressor {compressor_code}"
            ))
        })?;
    let props = input.count(8, "measurement properties")?;
    for _ in 0..props {
        input.nullable_string("property key")?;
        input.nullable_string("property value")?;
    }
    let alias = input.nullable_string("alias")?;
    let tag_offset = input.i64("tag offset")?;
    let pre_deleted = bool_byte(input.u8("pre-deleted flag")?, "pre-deleted flag")?;
    Ok(SnapshotSeries {
        measurement: name,
        data_type,
        encoding: encoding.to_string(),
        compressor: compressor.to_string(),
        alias,
        tag_offset,
        pre_deleted,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::test_bytes::string;
    use bytes::BufMut;

    fn inner(out: &mut Vec<u8>, type_: u8, children: i32, name: &str) {
        out.put_u8(type_);
        out.put_i32(children);
        string(out, name);
        out.put_i32(0);
        out.put_u8(0);
    }

    fn device(out: &mut Vec<u8>, children: i32, name: &str, template: bool, aligned: u8) {
        out.put_u8(3);
        out.put_i32(children);
        string(out, name);
        out.put_i32(if template { 7 } else { -1 });
        out.put_u8(u8::from(template));
        out.put_u8(aligned);
    }

    fn series(out: &mut Vec<u8>, name: &str, t: u8, e: u8, c: u8, alias: Option<&str>) {
        out.put_u8(2);
        string(out, name);
        string(out, name);
        out.extend_from_slice(&[t, e, c]);
        out.put_i32(1);
        string(out, "k");
        string(out, "v");
        match alias {
            Some(a) => string(out, a),
            None => out.put_i32(-1),
        }
        out.put_i64(-1);
        out.put_u8(0);
    }

    /// root.sg { d1 { s1 INT64 RLE SNAPPY, s2 DOUBLE GORILLA LZ4 }, g { a (aligned) { x BOOLEAN },
    /// t (template) {} } }
    fn snapshot() -> Vec<u8> {
        let mut b = vec![0u8];
        inner(&mut b, 1, 2, "sg");
        device(&mut b, 2, "d1", false, 0);
        series(&mut b, "s1", 2, 2, 1, Some("speed"));
        series(&mut b, "s2", 4, 8, 7, None);
        inner(&mut b, 0, 2, "g");
        device(&mut b, 1, "a", false, 1);
        series(&mut b, "x", 0, 0, 0, None);
        device(&mut b, 0, "t", true, 0xff);
        b
    }

    #[test]
    fn a_snapshot_gives_its_devices_series_and_flags_in_file_order() {
        let parsed = parse_mtree_snapshot(&snapshot()).unwrap();
        assert_eq!(parsed.root, "sg");
        let shape: Vec<(String, Option<bool>, bool, usize)> = parsed
            .devices
            .iter()
            .map(|d| {
                (
                    d.nodes.join("."),
                    d.aligned,
                    d.template_activated,
                    d.series.len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("d1".into(), Some(false), false, 2),
                ("g.a".into(), Some(true), false, 1),
                ("g.t".into(), None, true, 0),
            ]
        );
        let s1 = &parsed.devices[0].series[0];
        assert_eq!(
            (
                s1.data_type,
                s1.encoding.as_str(),
                s1.compressor.as_str(),
                s1.alias.as_deref()
            ),
            (DataType::Int64, "RLE", "SNAPPY", Some("speed"))
        );
        let s2 = &parsed.devices[0].series[1];
        assert_eq!(
            (s2.data_type, s2.encoding.as_str(), s2.compressor.as_str()),
            (DataType::Double, "GORILLA", "LZ4")
        );
    }

    #[test]
    fn every_truncation_and_trailing_bytes_are_errors() {
        let bytes = snapshot();
        for cut in 0..bytes.len() {
            assert!(parse_mtree_snapshot(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse_mtree_snapshot(&longer).is_err());
    }

    #[test]
    fn views_table_devices_and_hostile_counts_are_refused() {
        let mut view = vec![0u8];
        inner(&mut view, 1, 1, "sg");
        view.put_u8(5);
        string(&mut view, "v1");
        // The view's schema (an expression tree) and the rest follow.
        view.extend_from_slice(&[0; 20]);
        let err = parse_mtree_snapshot(&view).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("v1"), "{err}");
        let mut table = vec![0u8];
        inner(&mut table, 1, 1, "sg");
        table.put_u8(6);
        table.extend_from_slice(&[0; 20]);
        let err = parse_mtree_snapshot(&table).unwrap_err();
        assert!(err.to_string().contains("table-model"), "{err}");
        let mut huge = vec![0u8, 1];
        huge.put_i32(i32::MAX);
        string(&mut huge, "sg");
        assert!(parse_mtree_snapshot(&huge).is_err());
        let mut orphan = vec![0u8];
        inner(&mut orphan, 1, 1, "sg");
        series(&mut orphan, "s", 1, 0, 0, None);
        assert!(parse_mtree_snapshot(&orphan)
            .unwrap_err()
            .to_string()
            .contains("not under a device"));
        assert!(matches!(
            parse_mtree_snapshot(&[1, 1]).unwrap_err(),
            ProtoError::Unsupported(_)
        ));
    }

    #[test]
    fn seal_parameters_are_read() {
        let mut params = BTreeMap::new();
        params.insert("Database".to_string(), "root.sg".to_string());
        params.insert("Type".to_string(), "53,19,22".to_string());
        params.insert("PathPattern".to_string(), "root.sg.**".to_string());
        let seal = schema_snapshot_seal(&params).unwrap();
        assert_eq!(seal.types, BTreeSet::from([19, 22, 53]));
        assert!(seal.tree_captured && !seal.table_captured);
        params.insert("table".to_string(), String::new());
        assert!(!schema_snapshot_seal(&params).unwrap().tree_captured);
        params.insert("Type".to_string(), "19,x".to_string());
        assert!(schema_snapshot_seal(&params).is_err());
        params.remove("Database");
        assert!(schema_snapshot_seal(&params).is_err());
    }
}
