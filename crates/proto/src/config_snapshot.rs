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
//! A ROLE file is written by `LocalFileRoleAccessor.saveEntity` alone: IoTDB 1.3's negated name
//! length, name, system mask and path pairs to the end; or the tag (1, or 2 on current master), the
//! name and the privilege section — no id, password or session limits (009939f). A USER_ROLE file
//! is `<user>_role.profile` (`LocalFileUserAccessor.saveRoles`), role names as strings to its end;
//! IoTDB 2.0's `CNPhysicalPlanGenerator` takes the user from the file's name. Current master names
//! the file by the user's id, and its receiver (`IoTDBConfigNodeReceiver.loadFileV2`) takes the user
//! from the seal's `authUserName` parameter instead.
//!
//! A mask has a privilege per low bit and its grant option 16 bits higher (`generateGrantSysPlan`,
//! `generateGrantAuthorTreePlan`). System positions (`AuthUtils.posToSysPri`): 0 MANAGE_DATABASE,
//! 1 MANAGE_USER, 2 MANAGE_ROLE, 3 USE_TRIGGER, 4 USE_UDF, 5 USE_CQ, 6 USE_PIPE, 7 EXTEND_TEMPLATE,
//! 8 MAINTAIN, 9 USE_MODEL, and on current master 10 SYSTEM, 11 SECURITY, 12 AUDIT; path positions
//! (`pathPosToPri`): 0 READ_DATA, 1 WRITE_DATA, 2 READ_SCHEMA, 3 WRITE_SCHEMA. The any-scope,
//! database and table masks are the table model's (CREATE, DROP, ALTER, SELECT, INSERT, DELETE).
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

/// The seal parameter naming the user a USER_ROLE file belongs to (current master).
pub const AUTH_USER_NAME_KEY: &str = "authUserName";

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
    /// The ROLE kind's role (CreateRole) and its tree-model grants (GrantRole).
    pub const CREATE_ROLE: i16 = 622;
    pub const GRANT_ROLE: i16 = 625;
    /// The USER kind's tree-model grants (GrantUser).
    pub const GRANT_USER: i16 = 626;
    /// The USER_ROLE kind's plan: a role granted to a user.
    pub const GRANT_ROLE_TO_USER: i16 = 627;
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
    /// The `authUserName` parameter, when not empty. IoTDB's current master names a USER_ROLE
    /// file by the user's id and its receiver takes the user from this parameter instead.
    pub auth_user_name: Option<String>,
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
        auth_user_name: params
            .get(AUTH_USER_NAME_KEY)
            .filter(|name| !name.is_empty())
            .cloned(),
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

/// One privilege of the tree model an auth file grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeGrant {
    /// IoTDB 2.0's `PrivilegeType` ordinal, as its `GrantUser`/`GrantRole` plans carry it.
    pub ordinal: i32,
    /// The path pattern of a path privilege; `None` for a system (global) privilege.
    pub path: Option<String>,
    pub grant_option: bool,
}

/// The `PrivilegeType` ordinals of the system mask's bit positions (`AuthUtils.posToSysPri`):
/// MANAGE_DATABASE, MANAGE_USER, MANAGE_ROLE, USE_TRIGGER, USE_UDF, USE_CQ, USE_PIPE,
/// EXTEND_TEMPLATE, MAINTAIN, USE_MODEL, then (current master) SYSTEM, SECURITY, AUDIT.
const SYSTEM_POSITION_ORDINALS: [i32; 13] = [12, 4, 5, 6, 7, 8, 9, 11, 13, 10, 20, 21, 22];

/// The ordinals of a path mask's positions (`AuthUtils.pathPosToPri`): READ_DATA, WRITE_DATA,
/// READ_SCHEMA, WRITE_SCHEMA.
const PATH_POSITION_ORDINALS: [i32; 4] = [0, 1, 2, 3];

/// What a user or role file grants: the system mask and the (path, mask) pairs of the tree model —
/// each mask a privilege per low bit and its grant option 16 bits higher — and, described, the
/// table model's grants (any-scope, database and table masks), which Duet does not serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthPrivileges {
    pub system_mask: i32,
    pub paths: Vec<(String, i32)>,
    pub relational: Vec<String>,
}

impl AuthPrivileges {
    /// The tree model's grants, system ones first, and the bit positions no known privilege has
    /// (named, for an answer; IoTDB's own receiver skips them).
    pub fn tree_grants(&self) -> (Vec<TreeGrant>, Vec<String>) {
        let mut grants = Vec::new();
        let mut unknown = Vec::new();
        let mut decode = |mask: i32, ordinals: &[i32], path: Option<&String>| {
            for position in 0..16usize {
                if mask & (1 << position) == 0 {
                    continue;
                }
                match ordinals.get(position) {
                    Some(ordinal) => grants.push(TreeGrant {
                        ordinal: *ordinal,
                        path: path.cloned(),
                        grant_option: mask & (1 << (position + 16)) != 0,
                    }),
                    None => unknown.push(match path {
                        Some(path) => format!("privilege bit {position} on {path}"),
                        None => format!("system privilege bit {position}"),
                    }),
                }
            }
        };
        decode(self.system_mask, &SYSTEM_POSITION_ORDINALS, None);
        for (path, mask) in &self.paths {
            decode(*mask, &PATH_POSITION_ORDINALS, Some(path));
        }
        (grants, unknown)
    }

    /// Whether the file grants nothing.
    pub fn is_empty(&self) -> bool {
        self.system_mask & 0xFFFF == 0
            && self.paths.iter().all(|(_, mask)| mask & 0xFFFF == 0)
            && self.relational.is_empty()
    }
}

/// One user of a USER snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotUser {
    pub name: String,
    /// IoTDB's stored form of the password (`AuthUtils.encryptPassword`), as a
    /// `CreateUserWithRawPassword` plan carries it.
    pub password_hash: String,
    pub layout: UserFileLayout,
    pub privileges: AuthPrivileges,
}

/// One role of a ROLE snapshot (`LocalFileRoleAccessor`: a user file without the password, the
/// user id and the session limits).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRole {
    pub name: String,
    pub layout: UserFileLayout,
    pub privileges: AuthPrivileges,
}

/// A user's roles, from a USER_ROLE snapshot file.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotUserRoles {
    /// What the file's name holds before `_role.profile`: the user's name (IoTDB 2.0), or its
    /// numeric id where the sender names its files by user id (current master, whose seal then
    /// names the user in `authUserName`).
    pub user: String,
    pub roles: Vec<String>,
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

/// The privilege section of versions 1 and 2 (`LocalFileRoleAccessor.savePrivileges`).
fn privilege_section(input: &mut ByteReader<'_>) -> Result<AuthPrivileges> {
    let mut privileges = AuthPrivileges {
        system_mask: input.i32("system privileges")?,
        ..AuthPrivileges::default()
    };
    // A path privilege takes at least its path's length and a mask.
    let paths = input.count(8, "path privileges")?;
    for _ in 0..paths {
        let path = auth_string(input, "privilege path")?;
        let mask = input.i32("path privileges")?;
        privileges.paths.push((path, mask));
    }
    let relational = &mut privileges.relational;
    let any = input.i32("any-scope privileges")?;
    if any != 0 {
        relational.push("privileges on any database".into());
    }
    // A database takes at least its name's length, a mask and a table count.
    let databases = input.count(12, "database privileges")?;
    for _ in 0..databases {
        let database = auth_string(input, "privilege database")?;
        if input.i32("database privileges")? != 0 {
            relational.push(format!("privileges on database {database}"));
        }
        let tables = input.count(8, "table privileges")?;
        for _ in 0..tables {
            let table = auth_string(input, "privilege table")?;
            if input.i32("table privileges")? != 0 {
                relational.push(format!("privileges on table {database}.{table}"));
            }
        }
    }
    Ok(privileges)
}

/// IoTDB 1.3's privileges: the system mask, then (path, mask) pairs to the end of the file.
fn privileges_13(input: &mut ByteReader<'_>) -> Result<AuthPrivileges> {
    let mut privileges = AuthPrivileges {
        system_mask: input.i32("system privileges")?,
        ..AuthPrivileges::default()
    };
    while !input.is_empty() {
        let path = auth_string(input, "privilege path")?;
        let mask = input.i32("path privileges")?;
        privileges.paths.push((path, mask));
    }
    Ok(privileges)
}

/// IoTDB 1.3's name: its length negated in the file's first i32, then its bytes.
fn name_13(input: &mut ByteReader<'_>, tag: i32, what: &str) -> Result<String> {
    let len = usize::try_from(tag.unsigned_abs())
        .map_err(|_| malformed(format!("{what} length {tag}")))?;
    utf8(input.take(len, what)?, what)
}

/// Parses one user's file of a USER snapshot (see the module header for the layouts).
pub fn parse_user_file(bytes: &[u8]) -> Result<SnapshotUser> {
    let mut input = ByteReader::new(bytes);
    let tag = input.i32("user file version")?;
    let user = if tag < 0 {
        let name = name_13(&mut input, tag, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        SnapshotUser {
            name,
            password_hash,
            layout: UserFileLayout::Iotdb13,
            privileges: privileges_13(&mut input)?,
        }
    } else if tag == 1 {
        let name = auth_string(&mut input, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        SnapshotUser {
            name,
            password_hash,
            layout: UserFileLayout::Version1,
            privileges: privilege_section(&mut input)?,
        }
    } else if tag == 2 {
        let _user_id = input.i64("user id")?;
        let name = auth_string(&mut input, "user name")?;
        let password_hash = auth_string(&mut input, "password hash")?;
        let _max_sessions = input.i32("maximum sessions per user")?;
        let _min_sessions = input.i32("minimum sessions per user")?;
        SnapshotUser {
            name,
            password_hash,
            layout: UserFileLayout::Version2,
            privileges: privilege_section(&mut input)?,
        }
    } else {
        return Err(ProtoError::Unsupported(format!(
            "a user file of format version {tag}; Duet reads IoTDB 1.3's user files and versions 1 \
             and 2"
        )));
    };
    end(&input, "user file")?;
    Ok(user)
}

/// Parses one role's file of a ROLE snapshot: IoTDB 1.3's layout (negated name length, name,
/// system mask, path pairs to the end), or the tag 1 or 2 with the name and the privilege section
/// (`LocalFileRoleAccessor.saveEntity`; a role has no id, password or session limits).
pub fn parse_role_file(bytes: &[u8]) -> Result<SnapshotRole> {
    let mut input = ByteReader::new(bytes);
    let tag = input.i32("role file version")?;
    let role = if tag < 0 {
        let name = name_13(&mut input, tag, "role name")?;
        SnapshotRole {
            name,
            layout: UserFileLayout::Iotdb13,
            privileges: privileges_13(&mut input)?,
        }
    } else if tag == 1 || tag == 2 {
        let name = auth_string(&mut input, "role name")?;
        SnapshotRole {
            name,
            layout: if tag == 1 {
                UserFileLayout::Version1
            } else {
                UserFileLayout::Version2
            },
            privileges: privilege_section(&mut input)?,
        }
    } else {
        return Err(ProtoError::Unsupported(format!(
            "a role file of format version {tag}; Duet reads IoTDB 1.3's role files and versions 1 \
             and 2"
        )));
    };
    end(&input, "role file")?;
    Ok(role)
}

/// The suffix of a USER_ROLE snapshot file's name (`LocalFileUserAccessor.ROLE_SUFFIX` and
/// `.profile`); what precedes it names the user.
pub const USER_ROLE_FILE_SUFFIX: &str = "_role.profile";

/// Parses a USER_ROLE snapshot file: the user from its name (`<user>_role.profile`, as IoTDB's
/// `CNPhysicalPlanGenerator` takes it), the role names (strings) to the end of the file.
pub fn parse_user_role_file(file_name: &str, bytes: &[u8]) -> Result<SnapshotUserRoles> {
    let user = file_name
        .strip_suffix(USER_ROLE_FILE_SUFFIX)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            malformed(format!(
                "a USER_ROLE snapshot file named {file_name:?}, not <user>{USER_ROLE_FILE_SUFFIX}"
            ))
        })?;
    let mut input = ByteReader::new(bytes);
    let mut roles = Vec::new();
    while !input.is_empty() {
        roles.push(auth_string(&mut input, "role name")?);
    }
    Ok(SnapshotUserRoles {
        user: user.to_string(),
        roles,
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

    fn grant(ordinal: i32, path: Option<&str>, grant_option: bool) -> TreeGrant {
        TreeGrant {
            ordinal,
            path: path.map(str::to_string),
            grant_option,
        }
    }

    #[test]
    fn user_files_of_each_layout_give_the_user_its_hash_and_its_grants() {
        let full = AuthPrivileges {
            system_mask: 0x0001_0003,
            paths: vec![("root.sg.**".into(), 0b101), ("root.empty".into(), 0)],
            relational: vec![
                "privileges on database db1".into(),
                "privileges on table db1.t1".into(),
            ],
        };
        let old = AuthPrivileges {
            system_mask: 0,
            paths: vec![
                ("root.sg.**".into(), 0b11),
                ("root.ln".into(), 0b1_0000_0000_0000_0001),
            ],
            relational: vec![],
        };
        for (bytes, layout, privileges) in [
            (user_v1(), UserFileLayout::Version1, &full),
            (user_v2(), UserFileLayout::Version2, &full),
            (user_13(), UserFileLayout::Iotdb13, &old),
        ] {
            let user = parse_user_file(&bytes).unwrap();
            assert_eq!(
                user,
                SnapshotUser {
                    name: "alice".into(),
                    password_hash: HASH.into(),
                    layout,
                    privileges: privileges.clone(),
                }
            );
            // Every truncation is refused (the 1.3 layout reads pairs to the end, so a cut
            // between two pairs is a whole file with fewer grants: only cuts inside a field can
            // be told).
            for cut in 0..bytes.len() {
                let result = parse_user_file(&bytes[..cut]);
                if layout == UserFileLayout::Iotdb13 && is_pair_boundary(cut) {
                    assert_ne!(result.unwrap().privileges, user.privileges, "cut {cut}");
                } else {
                    assert!(result.is_err(), "{layout:?} cut {cut}");
                }
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(parse_user_file(&longer).is_err(), "{layout:?} longer");
        }
        // The masks' bits are IoTDB's positions, the grant option 16 bits higher.
        assert_eq!(
            full.tree_grants(),
            (
                vec![
                    grant(12, None, true),
                    grant(4, None, false),
                    grant(0, Some("root.sg.**"), false),
                    grant(2, Some("root.sg.**"), false),
                ],
                vec![]
            )
        );
        assert_eq!(
            old.tree_grants().0,
            [
                grant(0, Some("root.sg.**"), false),
                grant(1, Some("root.sg.**"), false),
                grant(0, Some("root.ln"), true),
            ]
        );
        // SYSTEM, SECURITY and AUDIT are master's positions 10 to 12; 13 is unknown.
        let newer = AuthPrivileges {
            system_mask: 0b11_1100_0000_0000,
            paths: vec![("root.x".into(), 1 << 4)],
            relational: vec![],
        };
        assert_eq!(
            newer.tree_grants(),
            (
                vec![
                    grant(20, None, false),
                    grant(21, None, false),
                    grant(22, None, false)
                ],
                vec![
                    "system privilege bit 13".to_string(),
                    "privilege bit 4 on root.x".to_string()
                ]
            )
        );
        // A user without privileges has no grants.
        let mut bare = Vec::new();
        bare.put_i32(1);
        string(&mut bare, "bob");
        string(&mut bare, HASH);
        bare.extend_from_slice(&[0; 16]);
        assert!(parse_user_file(&bare).unwrap().privileges.is_empty());
    }

    #[test]
    fn role_files_of_each_layout_and_user_role_files_are_read_whole() {
        let mut v2 = Vec::new();
        v2.put_i32(2);
        string(&mut v2, "ops");
        privileges(&mut v2);
        let mut v1 = v2.clone();
        v1[3] = 1;
        let mut old = Vec::new();
        old.put_i32(-3);
        old.extend_from_slice(b"ops");
        old.put_i32(0x0040_0040);
        string(&mut old, "root.sg.**");
        old.put_i32(0b1000);
        for (bytes, layout) in [
            (&v2, UserFileLayout::Version2),
            (&v1, UserFileLayout::Version1),
            (&old, UserFileLayout::Iotdb13),
        ] {
            let role = parse_role_file(bytes).unwrap();
            assert_eq!((role.name.as_str(), role.layout), ("ops", layout));
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(parse_role_file(&longer).is_err(), "{layout:?}");
        }
        assert_eq!(
            parse_role_file(&old).unwrap().privileges.tree_grants().0,
            [grant(9, None, true), grant(3, Some("root.sg.**"), false)]
        );
        for cut in 0..v2.len() {
            assert!(parse_role_file(&v2[..cut]).is_err(), "cut {cut}");
        }
        let mut v3 = v2.clone();
        v3[3] = 3;
        assert!(matches!(
            parse_role_file(&v3).unwrap_err(),
            ProtoError::Unsupported(_)
        ));

        let mut roles = Vec::new();
        string(&mut roles, "ops");
        string(&mut roles, "readers");
        let read = parse_user_role_file("alice_role.profile", &roles).unwrap();
        assert_eq!(
            read,
            SnapshotUserRoles {
                user: "alice".into(),
                roles: vec!["ops".into(), "readers".into()]
            }
        );
        assert!(parse_user_role_file("alice_role.profile", &[])
            .unwrap()
            .roles
            .is_empty());
        for cut in 1..roles.len() {
            if cut != 7 {
                assert!(parse_user_role_file("a_role.profile", &roles[..cut]).is_err());
            }
        }
        assert!(parse_user_role_file("alice.profile", &roles).is_err());
        assert!(parse_user_role_file("_role.profile", &roles).is_err());
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
