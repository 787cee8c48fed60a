//! IoTDB's ConfigNode snapshot files as a pipe carries them (`TRANSFER_CONFIG_SNAPSHOT_PIECE` 201 /
//! `…_SEAL` 202): the ConfigNode's schema *history* an IoTDB sender whose `inclusion` covers
//! `schema` (or `auth`) sends before its ConfigNode plans. Each seal carries one snapshot of one
//! kind (its `fileType` parameter, IoTDB's `CNSnapshotFileType`): the schema (the ConfigMTree file
//! and the template table file), the TTL rules, or users, roles and grants.
//!
//! Facts from apache/iotdb (read, not copied): the seal from `PipeTransferConfigSnapshotSealReq`
//! (confignode `…/manager/pipe/sink/payload/`: files `[snapshot, template file?, …]`, parameters
//! `fileType`, `Type`, `PathPattern`, `tree`, `table`, `authUserName`); the type lists from
//! `PipeConfigRegionSnapshotEvent` (schema: CreateDatabase 200, CreateSchemaTemplate 800,
//! CommitSetSchemaTemplate 813; TTL: SetTTL 201) with codes from `ConfigPhysicalPlanType`; the file
//! layouts from `CNPhysicalPlanGenerator` (ca7b6ea) and `ConfigMTree.serialize`: the ConfigMTree in
//! post-order — an internal node is its type, name, template id and then its child count; a database
//! node its type, name, template id and a binary-protocol `TDatabaseSchema`, and it adopts the
//! preceding subtrees that hold no database; the file ends with the internal node `root` — the
//! template table as an id counter, a count and `Template.serialize` records (id, name, aligned
//! flag, measurement count, then per measurement its name and `MeasurementSchema.partialSerializeTo`:
//! a 0 flag, id, type, encoding, compressor), and the TTL file as a count of (path, TTL) pairs.
//! `CNSnapshotFileType` from the same package (2b01d11).
//!
//! The USER kind is one user's file per seal (`CNSnapshotFileType.USER`; its roles travel apart as
//! USER_ROLE, roles as ROLE). Its layouts, from the writers `LocalFileUserAccessor` /
//! `LocalFileRoleAccessor` (node-commons `…/commons/auth/`, 00c1575 and 009939f) and the sender's
//! reader `CNPhysicalPlanGenerator.generateUserRolePhysicalPlan` (02367a99; the session limits from
//! the later form in Caideyipi/iotdb 367910fe, a committer's fork of master, whose
//! `LocalFileUserAccessor.saveSessionPerUser` writes them), all big-endian, a string being an i32
//! length and UTF-8:
//! - IoTDB 1.3 (`saveUserOldVersion`): the first i32 is *minus* the name's length, then the name,
//!   the password hash, the system-privilege mask (i32), and (path, mask) pairs to the end of file;
//! - version 1 (IoTDB 2.0): the tag 1, the name, the password hash, then the privilege section: the
//!   system mask, a count of (path, mask) pairs, the any-scope mask, a count of databases, each its
//!   name, mask and a count of (table, mask) pairs;
//! - version 2 (current master): the tag 2, the user id (i64), the name, the password hash, the
//!   maximum and minimum sessions per user (two i32s, `saveSessionPerUser`), the privilege section.
//!   An intermediate master (00c1575) wrote version 2 without the session limits; that layout is not
//!   read (it cannot be told from a truncated current one), nor is any other tag.
//!
//! The sender filters the superuser's file out (`ConfigRegionListeningQueue.tryListenToSnapshots`,
//! 27ab490: `0.profile`, earlier `root.profile`) and `user_id.profile`.
//!
//! A file is parsed to its end before anything of it is returned; table-model nodes and vector
//! template measurements are refused by name as [`ProtoError::Unsupported`].

use std::collections::{BTreeMap, BTreeSet};

use thrift::protocol::{TInputProtocol, TType};

use crate::input::BinaryInput;
use crate::reader::{malformed, ByteReader};
use crate::schema_snapshot::{seal_captures, seal_key, seal_path_pattern, seal_types};
use crate::types::DataType;
use crate::{ProtoError, Result};

/// The seal parameter naming the snapshot's kind.
pub const FILE_TYPE_KEY: &str = "fileType";

/// `CNSnapshotFileType`.
pub mod file_type {
    pub const USER: u8 = 1;
    pub const ROLE: u8 = 2;
    pub const USER_ROLE: u8 = 3;
    pub const SCHEMA: u8 = 4;
    pub const TTL: u8 = 5;
    pub const LBAC_COMPONENT: u8 = 6;
    pub const LBAC_POLICY: u8 = 7;
}

/// The `ConfigPhysicalPlanType` codes a config snapshot seal's `Type` lists.
pub mod snapshot_plan {
    pub const CREATE_DATABASE: i16 = 200;
    pub const SET_TTL: i16 = 201;
    pub const CREATE_SCHEMA_TEMPLATE: i16 = 800;
    pub const COMMIT_SET_SCHEMA_TEMPLATE: i16 = 813;
    /// The USER kind's user itself; its other types (GrantUser, the relational grants) are grants.
    pub const CREATE_USER_WITH_RAW_PASSWORD: i16 = 638;
}

/// The ConfigMTree node types (`SchemaConstant`).
mod node_type {
    pub const INTERNAL: u8 = 0;
    pub const DATABASE: u8 = 1;
    pub const TABLE: u8 = 6;
}

/// What a config snapshot seal's parameters say.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSnapshotSeal {
    pub file_type: u8,
    /// The `ConfigPhysicalPlanType` codes to apply (empty: none).
    pub types: BTreeSet<i16>,
    pub path_pattern: Option<String>,
    /// The `tree` key, or neither `tree` nor `table` (a sender from before the table model).
    pub tree_captured: bool,
}

/// Reads a config snapshot seal's parameters.
pub fn config_snapshot_seal(params: &BTreeMap<String, String>) -> Result<ConfigSnapshotSeal> {
    let file_type = params
        .get(FILE_TYPE_KEY)
        .and_then(|t| t.trim().parse::<u8>().ok())
        .ok_or_else(|| malformed("a config snapshot seal without a fileType it can read"))?;
    let type_list = params.get(seal_key::TYPE).map(String::as_str).unwrap_or("");
    let types = if type_list.is_empty() {
        BTreeSet::new()
    } else {
        seal_types(type_list, "config snapshot")?
    };
    let (tree_captured, _) = seal_captures(params);
    Ok(ConfigSnapshotSeal {
        file_type,
        types,
        path_pattern: seal_path_pattern(params),
        tree_captured,
    })
}

/// The name IoTDB gives a snapshot kind, for messages.
pub fn file_type_name(file_type: u8) -> String {
    match file_type {
        file_type::USER => "USER".into(),
        file_type::ROLE => "ROLE".into(),
        file_type::USER_ROLE => "USER_ROLE".into(),
        file_type::SCHEMA => "SCHEMA".into(),
        file_type::TTL => "TTL".into(),
        file_type::LBAC_COMPONENT => "LBAC_COMPONENT".into(),
        file_type::LBAC_POLICY => "LBAC_POLICY".into(),
        other => format!("snapshot file type {other}"),
    }
}

/// One TTL rule of the TTL snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlEntry {
    /// The path pattern as IoTDB writes it (`root.sg.**`).
    pub path: String,
    pub ttl_ms: i64,
}

/// Parses a TTL snapshot file.
pub fn parse_ttl_snapshot(bytes: &[u8]) -> Result<Vec<TtlEntry>> {
    let mut input = ByteReader::new(bytes);
    // A rule takes at least a path length and a TTL.
    let n = input.count(12, "TTL rules")?;
    let mut rules = Vec::with_capacity(n);
    for _ in 0..n {
        let path = input.string("TTL path")?;
        let ttl_ms = input.i64("TTL")?;
        rules.push(TtlEntry { path, ttl_ms });
    }
    end(&input, "TTL snapshot")?;
    Ok(rules)
}

fn end(input: &ByteReader<'_>, what: &str) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(malformed(format!(
            "{} bytes after the {what}",
            input.remaining()
        )))
    }
}

/// A template of the template table.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigTemplate {
    pub id: i32,
    pub name: String,
    pub aligned: bool,
    /// (measurement, type, encoding name, compressor name), in file order.
    pub measurements: Vec<(String, DataType, String, String)>,
}

/// Parses the template table file of a schema snapshot.
pub fn parse_template_table(bytes: &[u8]) -> Result<Vec<ConfigTemplate>> {
    let mut input = ByteReader::new(bytes);
    let _next_id = input.i32("template id counter")?;
    // A template takes at least its id, name length, flag and measurement count.
    let n = input.count(13, "templates")?;
    let mut templates = Vec::with_capacity(n);
    for _ in 0..n {
        let id = input.i32("template id")?;
        let name = input.string("template name")?;
        let aligned = input.u8("template aligned flag")? != 0;
        // A measurement takes at least its key, flag, id and three codes.
        let m = input.count(12, "template measurements")?;
        let mut measurements = Vec::with_capacity(m);
        for _ in 0..m {
            let key = input.string("template measurement")?;
            let flag = input.u8("measurement schema kind")?;
            if flag != 0 {
                return Err(ProtoError::Unsupported(format!(
                    "template {name}'s measurement {key} is a vector schema (kind {flag})"
                )));
            }
            let _id = input.string("measurement schema id")?;
            let type_code = input.u8("data type")?;
            let data_type = DataType::from_code(i32::from(type_code)).ok_or_else(|| {
                ProtoError::Unsupported(format!(
                    "template {name}'s measurement {key} has data type code {type_code}"
                ))
            })?;
            let encoding = input.u8("encoding")?;
            let encoding = crate::types::encoding_name(i32::from(encoding)).ok_or_else(|| {
                malformed(format!("unknown encoding {encoding} in template {name}"))
            })?;
            let compressor = input.u8("compressor")?;
            let compressor =
                crate::types::compressor_name(i32::from(compressor)).ok_or_else(|| {
                    malformed(format!(
                        "unknown compressor {compressor} in template {name}"
                    ))
                })?;
            measurements.push((key, data_type, encoding.to_string(), compressor.to_string()));
        }
        templates.push(ConfigTemplate {
            id,
            name,
            aligned,
            measurements,
        });
    }
    end(&input, "template table")?;
    Ok(templates)
}

/// What a ConfigMTree snapshot holds: databases and the paths templates are set on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigSchema {
    /// (full path, is a table-model database), in file order.
    pub databases: Vec<(String, bool)>,
    /// (full path, template id), in file order.
    pub template_set: Vec<(String, i32)>,
}

/// A node of the ConfigMTree being rebuilt.
struct Node {
    name: String,
    template_id: i32,
    database: Option<bool>,
    children: Vec<usize>,
    holds_database: bool,
}

/// Parses a ConfigMTree snapshot file (`cluster_schema.bin`).
pub fn parse_config_mtree(bytes: &[u8]) -> Result<ConfigSchema> {
    let mut input = ByteReader::new(bytes);
    let mut nodes: Vec<Node> = Vec::new();
    // Completed subtrees not yet adopted by a parent.
    let mut stack: Vec<usize> = Vec::new();
    let root = loop {
        let type_ = input.u8("node type")?;
        match type_ {
            node_type::INTERNAL => {
                let name = input.string("node name")?;
                let template_id = input.i32("template id")?;
                let count = input.i32("child count")?;
                let count = usize::try_from(count)
                    .ok()
                    .filter(|c| *c <= stack.len())
                    .ok_or_else(|| {
                        malformed(format!(
                            "ConfigMTree node {name} claims {count} children, {} precede it",
                            stack.len()
                        ))
                    })?;
                let children = stack.split_off(stack.len() - count);
                let holds_database = children.iter().any(|c| nodes[*c].holds_database);
                nodes.push(Node {
                    name,
                    template_id,
                    database: None,
                    children,
                    holds_database,
                });
                let index = nodes.len() - 1;
                if nodes[index].name == "root" {
                    break index;
                }
                stack.push(index);
            }
            node_type::DATABASE => {
                let name = input.string("node name")?;
                let template_id = input.i32("template id")?;
                let (consumed, table_model) = database_schema(input.rest())?;
                input.take(consumed, "TDatabaseSchema")?;
                let mut children = Vec::new();
                while let Some(top) = stack.last() {
                    if nodes[*top].holds_database {
                        break;
                    }
                    children.push(*top);
                    stack.pop();
                }
                nodes.push(Node {
                    name,
                    template_id,
                    database: Some(table_model),
                    children,
                    holds_database: true,
                });
                stack.push(nodes.len() - 1);
            }
            node_type::TABLE => {
                let name = input.string("node name").unwrap_or_default();
                return Err(ProtoError::Unsupported(format!(
                    "the ConfigNode schema snapshot holds table {name}; Duet takes the tree model \
                     only"
                )));
            }
            other => return Err(malformed(format!("unknown ConfigMTree node type {other}"))),
        }
    };
    if !stack.is_empty() {
        return Err(malformed(format!(
            "{} ConfigMTree nodes are under no parent",
            stack.len()
        )));
    }
    end(&input, "ConfigMTree snapshot")?;
    let mut schema = ConfigSchema::default();
    // Depth first from root, children in the order they were written.
    let mut pending = vec![(root, "root".to_string())];
    while let Some((index, path)) = pending.pop() {
        let node = &nodes[index];
        if let Some(table_model) = node.database {
            schema.databases.push((path.clone(), table_model));
        }
        if node.template_id >= 0 {
            schema.template_set.push((path.clone(), node.template_id));
        }
        for child in node.children.iter().rev() {
            pending.push((*child, format!("{path}.{}", nodes[*child].name)));
        }
    }
    Ok(schema)
}

/// The layout a user file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFileLayout {
    /// IoTDB 1.3: the negated name length first, path privileges to the end.
    Iotdb13,
    /// Version 1 (IoTDB 2.0).
    Version1,
    /// Version 2: with the user id and the session limits.
    Version2,
}

/// One user of a USER snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotUser {
    pub name: String,
    /// IoTDB's stored form of the password (`AuthUtils.encryptPassword`), as a
    /// `CreateUserWithRawPassword` plan carries it.
    pub password_hash: String,
    pub layout: UserFileLayout,
    /// What the file grants, one entry per privilege set that is not empty (`system privileges`,
    /// `privileges on root.sg.**`, …), in file order.
    pub grants: Vec<String>,
}

/// An auth file's string: IoTDB's `IOUtils.readString` reads a length of 0 or less as null, which
/// no name, hash, path, database or table of a user file is.
fn auth_string(input: &mut ByteReader<'_>, what: &str) -> Result<String> {
    let n = input.i32(what)?;
    let len = usize::try_from(n)
        .ok()
        .filter(|len| *len > 0)
        .ok_or_else(|| malformed(format!("{what} has length {n}")))?;
    utf8(input.take(len, what)?, what)
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
}

fn grant_if(grants: &mut Vec<String>, mask: i32, what: impl FnOnce() -> String) {
    if mask != 0 {
        grants.push(what());
    }
}

/// The privilege section of versions 1 and 2 (`LocalFileRoleAccessor.savePrivileges`).
fn privilege_section(input: &mut ByteReader<'_>, grants: &mut Vec<String>) -> Result<()> {
    let system = input.i32("system privileges")?;
    grant_if(grants, system, || "system privileges".into());
    // A path privilege takes at least its path's length and a mask.
    let paths = input.count(8, "path privileges")?;
    for _ in 0..paths {
        let path = auth_string(input, "privilege path")?;
        let mask = input.i32("path privileges")?;
        grant_if(grants, mask, || format!("privileges on {path}"));
    }
    let any = input.i32("any-scope privileges")?;
    grant_if(grants, any, || "privileges on any database".into());
    // A database takes at least its name's length, a mask and a table count.
    let databases = input.count(12, "database privileges")?;
    for _ in 0..databases {
        let database = auth_string(input, "privilege database")?;
        let mask = input.i32("database privileges")?;
        grant_if(grants, mask, || {
            format!("privileges on database {database}")
        });
        let tables = input.count(8, "table privileges")?;
        for _ in 0..tables {
            let table = auth_string(input, "privilege table")?;
            let mask = input.i32("table privileges")?;
            grant_if(grants, mask, || {
                format!("privileges on table {database}.{table}")
            });
        }
    }
    Ok(())
}

/// Parses one user's file of a USER snapshot (see the module header for the layouts).
pub fn parse_user_file(bytes: &[u8]) -> Result<SnapshotUser> {
    let mut input = ByteReader::new(bytes);
    let tag = input.i32("user file version")?;
    let mut grants = Vec::new();
    let (name, password_hash, layout) = if tag < 0 {
        let len = usize::try_from(tag.unsigned_abs())
            .map_err(|_| malformed(format!("user name length {tag}")))?;
        let name = utf8(input.take(len, "user name")?, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        let system = input.i32("system privileges")?;
        grant_if(&mut grants, system, || "system privileges".into());
        while !input.is_empty() {
            let path = auth_string(&mut input, "privilege path")?;
            let mask = input.i32("path privileges")?;
            grant_if(&mut grants, mask, || format!("privileges on {path}"));
        }
        (name, password_hash, UserFileLayout::Iotdb13)
    } else if tag == 1 {
        let name = auth_string(&mut input, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        privilege_section(&mut input, &mut grants)?;
        (name, password_hash, UserFileLayout::Version1)
    } else if tag == 2 {
        let _user_id = input.i64("user id")?;
        let name = auth_string(&mut input, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        let _max_sessions = input.i32("maximum sessions per user")?;
        let _min_sessions = input.i32("minimum sessions per user")?;
        privilege_section(&mut input, &mut grants)?;
        (name, password_hash, UserFileLayout::Version2)
    } else {
        return Err(ProtoError::Unsupported(format!(
            "a user file of format version {tag}; Duet reads IoTDB 1.3's user files and versions 1 \
             and 2"
        )));
    };
    end(&input, "user file")?;
    Ok(SnapshotUser {
        name,
        password_hash,
        layout,
        grants,
    })
}

/// A binary-protocol `TDatabaseSchema` at the start of `bytes`: how many bytes it takes, and its
/// field 6 (`isTableModel`).
fn database_schema(bytes: &[u8]) -> Result<(usize, bool)> {
    let mut protocol = BinaryInput::new(bytes);
    protocol.read_struct_begin()?;
    let mut table_model = false;
    let mut named = false;
    loop {
        let field = protocol.read_field_begin()?;
        if field.field_type == TType::Stop {
            break;
        }
        match (field.id, field.field_type) {
            (Some(1), TType::String) => {
                protocol.read_string()?;
                named = true;
            }
            (Some(6), TType::Bool) => table_model = protocol.read_bool()?,
            (_, t) => protocol.skip(t)?,
        }
        protocol.read_field_end()?;
    }
    protocol.read_struct_end()?;
    if !named {
        return Err(malformed("a TDatabaseSchema without its name"));
    }
    Ok((bytes.len() - protocol.remaining(), table_model))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::test_bytes::string;
    use bytes::BufMut;

    fn internal(out: &mut Vec<u8>, name: &str, template: i32, children: i32) {
        out.put_u8(0);
        string(out, name);
        out.put_i32(template);
        out.put_i32(children);
    }

    fn database(out: &mut Vec<u8>, name: &str, full: &str, template: i32) {
        out.put_u8(1);
        string(out, name);
        out.put_i32(template);
        // TDatabaseSchema {1: name, 2: ttl, 6: isTableModel}
        out.put_u8(0x0B);
        out.put_i16(1);
        string(out, full);
        out.put_u8(0x0A);
        out.put_i16(2);
        out.put_i64(i64::MAX);
        out.put_u8(0x02);
        out.put_i16(6);
        out.put_u8(0);
        out.put_u8(0);
    }

    /// root { ln { sg1 (template 0 set on sg1.d) { d } , sg2 }, top }
    fn mtree() -> Vec<u8> {
        let mut b = Vec::new();
        internal(&mut b, "d", 0, 0);
        database(&mut b, "sg1", "root.ln.sg1", -1);
        database(&mut b, "sg2", "root.ln.sg2", -1);
        internal(&mut b, "ln", -1, 2);
        database(&mut b, "top", "root.top", -1);
        internal(&mut b, "root", -1, 2);
        b
    }

    #[test]
    fn a_config_mtree_gives_its_databases_and_template_paths() {
        let schema = parse_config_mtree(&mtree()).unwrap();
        assert_eq!(
            schema.databases,
            [
                ("root.ln.sg1".to_string(), false),
                ("root.ln.sg2".to_string(), false),
                ("root.top".to_string(), false)
            ]
        );
        assert_eq!(schema.template_set, [("root.ln.sg1.d".to_string(), 0)]);
        let bytes = mtree();
        for cut in 0..bytes.len() {
            assert!(parse_config_mtree(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse_config_mtree(&longer).is_err());
    }

    #[test]
    fn ttl_and_template_files_are_read_and_truncation_is_an_error() {
        let mut ttl = Vec::new();
        ttl.put_i32(2);
        string(&mut ttl, "root.sg.**");
        ttl.put_i64(3_600_000);
        string(&mut ttl, "root.**");
        ttl.put_i64(i64::MAX);
        assert_eq!(
            parse_ttl_snapshot(&ttl).unwrap(),
            [
                TtlEntry {
                    path: "root.sg.**".into(),
                    ttl_ms: 3_600_000
                },
                TtlEntry {
                    path: "root.**".into(),
                    ttl_ms: i64::MAX
                }
            ]
        );
        for cut in 0..ttl.len() {
            assert!(parse_ttl_snapshot(&ttl[..cut]).is_err(), "cut {cut}");
        }
        let mut t = Vec::new();
        t.put_i32(2);
        t.put_i32(1);
        t.put_i32(1);
        string(&mut t, "t1");
        t.put_u8(1);
        t.put_i32(1);
        string(&mut t, "temperature");
        t.put_u8(0);
        string(&mut t, "temperature");
        t.extend_from_slice(&[3, 2, 1]);
        let templates = parse_template_table(&t).unwrap();
        assert_eq!(
            templates,
            [ConfigTemplate {
                id: 1,
                name: "t1".into(),
                aligned: true,
                measurements: vec![(
                    "temperature".into(),
                    DataType::Float,
                    "RLE".into(),
                    "SNAPPY".into()
                )],
            }]
        );
        for cut in 0..t.len() {
            assert!(parse_template_table(&t[..cut]).is_err(), "cut {cut}");
        }
    }

    /// `LocalFileRoleAccessor.savePrivileges`, field by field: system mask, two path privileges
    /// (one empty), any-scope mask 0, one database with a mask and one table.
    fn privileges(out: &mut Vec<u8>) {
        out.put_i32(0x0001_0003);
        out.put_i32(2);
        string(out, "root.sg.**");
        out.put_i32(0b101);
        string(out, "root.empty");
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(1);
        string(out, "db1");
        out.put_i32(1);
        out.put_i32(1);
        string(out, "t1");
        out.put_i32(2);
    }

    /// IoTDB's stored form of a password: bytes of a UTF-8 string with replacement characters.
    const HASH: &str = "\u{fffd} \u{fffd}1\u{fffd}y\u{fffd}U\u{1a}\u{fffd}\u{18}";

    fn user_v1() -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(1);
        string(&mut b, "alice");
        string(&mut b, HASH);
        privileges(&mut b);
        b
    }

    fn user_v2() -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(2);
        b.put_i64(10_000);
        string(&mut b, "alice");
        string(&mut b, HASH);
        b.put_i32(-1);
        b.put_i32(0);
        privileges(&mut b);
        b
    }

    fn user_13() -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(-5);
        b.extend_from_slice(b"alice");
        string(&mut b, HASH);
        b.put_i32(0);
        string(&mut b, "root.sg.**");
        b.put_i32(0b11);
        string(&mut b, "root.ln");
        b.put_i32(0b1_0000_0000_0000_0001);
        b
    }

    #[test]
    fn user_files_of_each_layout_give_the_user_its_hash_and_its_grants() {
        let full_grants = [
            "system privileges",
            "privileges on root.sg.**",
            "privileges on database db1",
            "privileges on table db1.t1",
        ];
        for (bytes, layout, grants) in [
            (user_v1(), UserFileLayout::Version1, &full_grants[..]),
            (user_v2(), UserFileLayout::Version2, &full_grants[..]),
            (
                user_13(),
                UserFileLayout::Iotdb13,
                &["privileges on root.sg.**", "privileges on root.ln"][..],
            ),
        ] {
            let user = parse_user_file(&bytes).unwrap();
            assert_eq!(
                user,
                SnapshotUser {
                    name: "alice".into(),
                    password_hash: HASH.into(),
                    layout,
                    grants: grants.iter().map(|g| g.to_string()).collect(),
                }
            );
            // Every truncation is refused (the 1.3 layout reads pairs to the end, so a cut
            // between two pairs is a whole file with fewer grants: only cuts inside a field can
            // be told).
            for cut in 0..bytes.len() {
                let result = parse_user_file(&bytes[..cut]);
                if layout == UserFileLayout::Iotdb13 && is_pair_boundary(cut) {
                    assert_ne!(result.unwrap().grants, user.grants, "cut {cut}");
                } else {
                    assert!(result.is_err(), "{layout:?} cut {cut}");
                }
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(parse_user_file(&longer).is_err(), "{layout:?} longer");
        }
        // A user without privileges has no grants.
        let mut bare = Vec::new();
        bare.put_i32(1);
        string(&mut bare, "bob");
        string(&mut bare, HASH);
        bare.extend_from_slice(&[0; 16]);
        assert!(parse_user_file(&bare).unwrap().grants.is_empty());
    }

    /// The ends of the 1.3 fixture's header and of each of its (path, mask) pairs.
    fn is_pair_boundary(cut: usize) -> bool {
        let header = 4 + 5 + 4 + HASH.len() + 4;
        let first = header + 4 + "root.sg.**".len() + 4;
        cut == header || cut == first
    }

    #[test]
    fn other_user_file_versions_and_empty_names_are_refused_by_name() {
        let mut b = Vec::new();
        b.put_i32(3);
        string(&mut b, "alice");
        let err = parse_user_file(&b).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("format version 3"), "{err}");
        // Version 2 without its session limits (the intermediate layout) is not read.
        let mut b = Vec::new();
        b.put_i32(2);
        b.put_i64(10_000);
        string(&mut b, "alice");
        string(&mut b, HASH);
        privileges(&mut b);
        assert!(parse_user_file(&b).is_err());
        // A null (empty) name.
        let mut b = Vec::new();
        b.put_i32(1);
        b.put_i32(0);
        string(&mut b, HASH);
        b.extend_from_slice(&[0; 16]);
        assert!(parse_user_file(&b)
            .unwrap_err()
            .to_string()
            .contains("user name"));
    }

    #[test]
    fn table_nodes_and_bad_seals_are_refused() {
        let mut b = Vec::new();
        b.put_u8(6);
        string(&mut b, "t");
        assert!(matches!(
            parse_config_mtree(&b).unwrap_err(),
            ProtoError::Unsupported(_)
        ));
        let mut params = BTreeMap::new();
        params.insert("fileType".to_string(), "5".to_string());
        params.insert("Type".to_string(), "201".to_string());
        let seal = config_snapshot_seal(&params).unwrap();
        assert_eq!((seal.file_type, seal.tree_captured), (5, true));
        assert_eq!(seal.types, BTreeSet::from([201]));
        params.insert("fileType".to_string(), "x".to_string());
        assert!(config_snapshot_seal(&params).is_err());
    }
}
