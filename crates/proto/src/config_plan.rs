//! IoTDB's ConfigNode plans as a pipe carries them in `TRANSFER_CONFIG_PLAN` (200): what an IoTDB
//! sender whose `inclusion` covers `schema.database` or `schema.ttl` sends. Each body is
//! `ConfigPhysicalPlan.serializeImpl`: the plan type (i16, `ConfigPhysicalPlanType`), then the plan's
//! fields. Layouts from apache/iotdb `iotdb-core/confignode/.../consensus/request/write/database/`
//! (`DatabaseSchemaPlan` at cb04b66, `DeleteDatabasePlan` at 66cc476, `SetTTLPlan` at 0bc9162) and
//! `ConfigPhysicalPlanType` at 01180dc. Plans Duet does not apply are refused by name.
//!
//! With `inclusion` covering `schema.timeseries` and `auth` (IoTDB's `ConfigRegionListeningFilter`,
//! …/manager/pipe/source/ at the 2.0 line, blob 6990188034 of the index) a sender also sends:
//! templates — `CreateSchemaTemplatePlan` (800: the length-prefixed bytes of `Template.serialize`,
//! 404f9a2; `Template` 15e6f94, each measurement `MeasurementSchema.partialSerializeTo`),
//! `CommitSetSchemaTemplatePlan` (813: name, path, rollback flag; 52517bc), `SetSchemaTemplatePlan`
//! (804, the 1.x form: name, path), `ExtendSchemaTemplatePlan` (814: `TemplateExtendInfo.serialize`,
//! 1dcf0b0), `DropSchemaTemplatePlan` (811: name; e996311), `PipeUnsetSchemaTemplatePlan` (1701: name,
//! path; 21ec650), `PipeDeactivateTemplatePlan` (1704: per pattern a `PartialPath` and its templates;
//! 0c37ee3); `PipeDeleteTimeSeriesPlan` (1702: a length-prefixed serialized `PathPatternTree`;
//! 18cac00); `PipeEnrichedPlan` (1700: a whole inner plan, then the origin cluster's id as a
//! nullable string; 0c4b22c); and the user, role and privilege plans of `AuthorPlan` (621 to 638;
//! privileges as the ordinals of IoTDB 2.0's `PrivilegeType`, node-commons `…/auth/entity/`) (…/request/write/auth/, the 2.0
//! layout of blob 1164405257: type, user, role, password, new password, permissions, paths, grant
//! option; the `…V2` user plans of 2.x add the executing user's id after the new password, newer
//! `AuthorTreePlan`s (03de695) a label policy and scope). A `CreateUser` carries the password as
//! typed; a `CreateUserWithRawPassword` carries IoTDB's stored hash (`AuthUtils.encryptPassword`).
//!
//! **`PathPatternTree` (`PathPatternNode.serialize`/`deserializeNode` at 01180dc):** a node is its
//! name, an i32 that is -1 (the path to here is a registered pattern), -2 (it is not) or, in a
//! `PatternTreeMap`, a value count followed by the values, then the child count and the children
//! depth first. At that revision serializer and deserializer agree (the value count comes before the
//! children in both). IoTDB 1.0's tree (its `PathPatternTree.deserializeNode`) had no i32 between the
//! name and the child count; a body is read in the layout that parses it to its exact end, the
//! current one first, and refused if neither does. The patterns are the paths to leaves and marked
//! nodes.

use thrift::protocol::{TInputProtocol, TType};

use crate::input::BinaryInput;
use crate::plan_node::read_partial_path;
use crate::reader::{malformed, ByteReader};
use crate::types::{compressor_of, encoding_of, DataType};
use crate::{ProtoError, Result};

/// `ConfigPhysicalPlanType` codes Duet reads.
pub mod plan_type {
    pub const CREATE_DATABASE: i16 = 200;
    pub const SET_TTL: i16 = 201;
    pub const DELETE_DATABASE: i16 = 206;
    pub const ALTER_DATABASE: i16 = 210;
    pub const PIPE_SET_TTL: i16 = 1705;
    pub const CREATE_USER: i16 = 621;
    pub const DROP_USER: i16 = 623;
    pub const UPDATE_USER: i16 = 631;
    pub const CREATE_USER_WITH_RAW_PASSWORD: i16 = 638;
    pub const CREATE_ROLE: i16 = 622;
    pub const DROP_ROLE: i16 = 624;
    pub const GRANT_ROLE: i16 = 625;
    pub const GRANT_USER: i16 = 626;
    pub const GRANT_ROLE_TO_USER: i16 = 627;
    pub const REVOKE_USER: i16 = 628;
    pub const REVOKE_ROLE: i16 = 629;
    pub const REVOKE_ROLE_FROM_USER: i16 = 630;
    pub const CREATE_SCHEMA_TEMPLATE: i16 = 800;
    pub const SET_SCHEMA_TEMPLATE: i16 = 804;
    pub const DROP_SCHEMA_TEMPLATE: i16 = 811;
    pub const COMMIT_SET_SCHEMA_TEMPLATE: i16 = 813;
    pub const EXTEND_SCHEMA_TEMPLATE: i16 = 814;
    pub const PIPE_ENRICHED: i16 = 1700;
    pub const PIPE_UNSET_TEMPLATE: i16 = 1701;
    pub const PIPE_DELETE_TIME_SERIES: i16 = 1702;
    pub const PIPE_DEACTIVATE_TEMPLATE: i16 = 1704;
    pub const DROP_USER_V2: i16 = 2100;
    pub const UPDATE_USER_V2: i16 = 2101;
}

/// One measurement of a template: name, type, encoding and compressor names.
pub type TemplateMeasurement = (String, DataType, String, String);

/// A config plan Duet applies.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigPlan {
    /// `CREATE DATABASE` (and `ALTER DATABASE`, whose only effect Duet keeps is that it exists).
    CreateDatabase {
        name: String,
    },
    DeleteDatabase {
        name: String,
    },
    /// `SET TTL` (`UNSET TTL` too: IoTDB sends it as a TTL of -1, its `NULL_TTL`).
    SetTtl(TtlRule),
    /// `PipeSetTTLPlan`: the `SetTTLPlan`s a pipe's pattern produced from one statement.
    SetTtls(Vec<TtlRule>),
    /// `CREATE DEVICE TEMPLATE`.
    CreateTemplate {
        name: String,
        aligned: bool,
        measurements: Vec<TemplateMeasurement>,
    },
    /// `ALTER DEVICE TEMPLATE … ADD`: measurements without an encoding or compressor take the
    /// receiver's defaults for their type.
    ExtendTemplate {
        name: String,
        measurements: Vec<(String, DataType, Option<String>, Option<String>)>,
    },
    SetTemplate {
        name: String,
        path: String,
    },
    /// `UNSET DEVICE TEMPLATE` (and a set that was rolled back).
    UnsetTemplate {
        name: String,
        path: String,
    },
    DropTemplate {
        name: String,
    },
    /// `DEACTIVATE DEVICE TEMPLATE`: per path pattern, the templates deactivated under it.
    DeactivateTemplate(Vec<(String, Vec<String>)>),
    /// `DELETE TIMESERIES`: the path patterns of the statement.
    DeleteTimeSeries {
        patterns: Vec<String>,
    },
    /// A plan a pipe receiver executed on the sender, as its consensus log wraps it.
    PipeEnriched(Box<ConfigPlan>),
    CreateUser {
        name: String,
        password: UserPassword,
    },
    /// `ALTER USER … SET PASSWORD`: the new password as typed.
    UpdateUser {
        name: String,
        password: String,
    },
    DropUser {
        name: String,
    },
    CreateRole {
        name: String,
    },
    DropRole {
        name: String,
    },
    /// `GRANT … TO USER|ROLE` (`GrantUser`, `GrantRole`): each privilege on each path (a global
    /// privilege on `root.**`, whatever the plan's paths).
    Grant {
        holder: AuthorHolder,
        /// Ordinals of IoTDB 2.0's `PrivilegeType`.
        privileges: Vec<i32>,
        paths: Vec<String>,
        grant_option: bool,
    },
    /// `REVOKE … FROM USER|ROLE` (`RevokeUser`, `RevokeRole`).
    Revoke {
        holder: AuthorHolder,
        /// Ordinals of IoTDB 2.0's `PrivilegeType`.
        privileges: Vec<i32>,
        paths: Vec<String>,
    },
    /// `GRANT ROLE r TO u` (`GrantRoleToUser`).
    GrantRoleToUser {
        user: String,
        role: String,
    },
    /// `REVOKE ROLE r FROM u` (`RevokeRoleFromUser`).
    RevokeRoleFromUser {
        user: String,
        role: String,
    },
}

/// Who a grant or revocation plan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorHolder {
    User(String),
    Role(String),
}

/// The password a user plan carries.
#[derive(Debug, Clone, PartialEq)]
pub enum UserPassword {
    /// As the user typed it (`CreateUser`).
    Plain(String),
    /// IoTDB's stored form, `AuthUtils.encryptPassword` of it (`CreateUserWithRawPassword`).
    IotdbHash(String),
}

/// One `SetTTLPlan`.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlRule {
    /// The path pattern, joined from its nodes.
    pub pattern: String,
    /// Milliseconds; `i64::MAX` is INF, and -1 (any value ≤ 0) means the rule is removed.
    pub ttl_ms: i64,
    /// IoTDB's `isDataBase`: the path is a database, and the rule covers what is under it too.
    pub database: bool,
}

/// The name IoTDB gives a plan type, for errors.
fn plan_name(code: i16) -> String {
    match code {
        202 => "SetSchemaReplicationFactor".into(),
        203 => "SetDataReplicationFactor".into(),
        204 => "SetTimePartitionInterval".into(),
        601..=617 => format!("a pre-1.2 authority plan ({code})"),
        639 => "UpdateUserMaxSession (Duet has no session limits per user)".into(),
        640 => "UpdateUserMinSession (Duet has no session limits per user)".into(),
        600..=699 => format!("an authority plan ({code}: table-model users, roles or privileges)"),
        808 => "PreUnsetTemplate".into(),
        810 => "UnsetTemplate".into(),
        812 => "PreSetSchemaTemplate".into(),
        850..=899 => format!("a table or view plan ({code})"),
        800..=849 => format!("a template plan ({code})"),
        1700 => "PipeEnriched".into(),
        1701 => "PipeUnsetTemplate".into(),
        1702 => "PipeDeleteTimeSeries".into(),
        1703 => "PipeDeleteLogicalView (Duet has no views)".into(),
        1706 => "PipeCreateTableOrView (Duet takes the tree model only)".into(),
        1707 => "PipeDeleteDevices (Duet takes the tree model only)".into(),
        2102 | 2103 => format!("a table-model user plan ({code})"),
        2104 => "RenameUser (Duet cannot rename a user)".into(),
        2105 => "RRenameUser (Duet cannot rename a user)".into(),
        other => format!("config plan type {other}"),
    }
}

/// Reads a `TRANSFER_CONFIG_PLAN` body.
pub fn decode_config_plan(body: &[u8]) -> Result<ConfigPlan> {
    let mut input = ByteReader::new(body);
    let code = input.i16("config plan type")?;
    match code {
        plan_type::CREATE_DATABASE | plan_type::ALTER_DATABASE => {
            // `ThriftConfigNodeSerDeUtils.serializeTDatabaseSchema`: a `TDatabaseSchema` in Thrift's
            // binary protocol; its field 1 is the database's name.
            let name = database_schema_name(input.rest())?;
            Ok(ConfigPlan::CreateDatabase { name })
        }
        plan_type::DELETE_DATABASE => {
            let name = input.string("database name")?;
            end(&input)?;
            Ok(ConfigPlan::DeleteDatabase { name })
        }
        plan_type::SET_TTL => {
            let (pattern, ttl_ms) = set_ttl(&mut input)?;
            // The flag after the TTL exists in newer releases only.
            let database = !input.is_empty() && input.u8("isDataBase")? != 0;
            end(&input)?;
            Ok(ConfigPlan::SetTtl(TtlRule {
                pattern,
                ttl_ms,
                database,
            }))
        }
        plan_type::PIPE_SET_TTL => {
            // A count, then whole `SetTTLPlan`s (type and fields) back to back: whether each
            // carries the newer flag byte is told by the layout that reads the body to its end.
            let n = input.count(14, "SetTTL plans")?;
            let mut first_error = None;
            for with_flag in [true, false] {
                let mut attempt = input;
                let parsed = (0..n)
                    .map(|_| {
                        let code = attempt.i16("config plan type")?;
                        if code != plan_type::SET_TTL {
                            return Err(malformed(format!(
                                "a PipeSetTTLPlan holding plan type {code}"
                            )));
                        }
                        let (pattern, ttl_ms) = set_ttl(&mut attempt)?;
                        let database = with_flag && attempt.u8("isDataBase")? != 0;
                        Ok(TtlRule {
                            pattern,
                            ttl_ms,
                            database,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .and_then(|plans| end(&attempt).map(|()| plans));
                match parsed {
                    Ok(plans) => return Ok(ConfigPlan::SetTtls(plans)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(first_error.unwrap_or_else(|| malformed("malformed PipeSetTTLPlan")))
        }
        plan_type::CREATE_SCHEMA_TEMPLATE => {
            let bytes = input.bytes("template bytes")?;
            end(&input)?;
            let mut template = ByteReader::new(bytes);
            let (name, aligned, measurements) = read_template(&mut template)?;
            if !template.is_empty() {
                return Err(malformed(format!(
                    "{} bytes after the template",
                    template.remaining()
                )));
            }
            Ok(ConfigPlan::CreateTemplate {
                name,
                aligned,
                measurements,
            })
        }
        plan_type::EXTEND_SCHEMA_TEMPLATE => {
            let plan = extend_template(&mut input)?;
            end(&input)?;
            Ok(plan)
        }
        plan_type::COMMIT_SET_SCHEMA_TEMPLATE => {
            let name = input.string("template name")?;
            let path = input.string("template path")?;
            let rollback = input.u8("isRollback")? != 0;
            end(&input)?;
            Ok(if rollback {
                ConfigPlan::UnsetTemplate { name, path }
            } else {
                ConfigPlan::SetTemplate { name, path }
            })
        }
        plan_type::SET_SCHEMA_TEMPLATE | plan_type::PIPE_UNSET_TEMPLATE => {
            let name = input.string("template name")?;
            let path = input.string("template path")?;
            end(&input)?;
            Ok(if code == plan_type::SET_SCHEMA_TEMPLATE {
                ConfigPlan::SetTemplate { name, path }
            } else {
                ConfigPlan::UnsetTemplate { name, path }
            })
        }
        plan_type::DROP_SCHEMA_TEMPLATE => {
            let name = input.string("template name")?;
            end(&input)?;
            Ok(ConfigPlan::DropTemplate { name })
        }
        plan_type::PIPE_DEACTIVATE_TEMPLATE => deactivate_template(input),
        plan_type::PIPE_DELETE_TIME_SERIES => {
            let tree = input.bytes("pattern tree")?;
            end(&input)?;
            Ok(ConfigPlan::DeleteTimeSeries {
                patterns: pattern_tree(tree)?,
            })
        }
        plan_type::PIPE_ENRICHED => pipe_enriched(input.rest()),
        plan_type::CREATE_USER
        | plan_type::CREATE_USER_WITH_RAW_PASSWORD
        | plan_type::UPDATE_USER
        | plan_type::UPDATE_USER_V2
        | plan_type::DROP_USER
        | plan_type::DROP_USER_V2
        | plan_type::CREATE_ROLE
        | plan_type::DROP_ROLE
        | plan_type::GRANT_ROLE
        | plan_type::GRANT_USER
        | plan_type::GRANT_ROLE_TO_USER
        | plan_type::REVOKE_USER
        | plan_type::REVOKE_ROLE
        | plan_type::REVOKE_ROLE_FROM_USER => user_plan(code, input),
        other => Err(ProtoError::Unsupported(format!(
            "{} is not a config plan Duet applies from a pipe",
            plan_name(other)
        ))),
    }
}

/// `Template.serialize`: id, name, aligned flag, a measurement count, then per measurement its key
/// and `partialSerializeTo` (a 0 flag, the name, type, encoding and compressor bytes). A vector
/// schema (flag 1) is refused: 1.x templates only.
fn read_template(input: &mut ByteReader<'_>) -> Result<(String, bool, Vec<TemplateMeasurement>)> {
    input.i32("template id")?;
    let name = input.string("template name")?;
    let aligned = input.u8("template aligned flag")? != 0;
    // A measurement takes at least its key's length, the flag, the name's length and three bytes.
    let n = input.count(12, "template measurements")?;
    let mut measurements = Vec::with_capacity(n);
    for _ in 0..n {
        input.string("template measurement key")?;
        match input.u8("measurement schema flag")? {
            0 => {}
            1 => {
                return Err(ProtoError::Unsupported(format!(
                    "template {name} holds a vector measurement schema (IoTDB 0.13's templates)"
                )))
            }
            other => {
                return Err(malformed(format!(
                    "measurement schema flag {other} in template {name}"
                )))
            }
        }
        let measurement = input.string("template measurement")?;
        let data_type = data_type(input.u8("data type")?)?;
        let encoding = encoding_of(input.u8("encoding")?)?;
        let compressor = compressor_of(input.u8("compressor")?)?;
        measurements.push((measurement, data_type, encoding, compressor));
    }
    Ok((name, aligned, measurements))
}

fn data_type(code: u8) -> Result<DataType> {
    DataType::from_code(i32::from(code))
        .ok_or_else(|| malformed(format!("unknown data type {code} in a template")))
}

/// `TemplateExtendInfo.serialize`: the template's name, a count, the names, the types, then the
/// encodings and the compressors each behind a flag byte (0: not given).
fn extend_template(input: &mut ByteReader<'_>) -> Result<ConfigPlan> {
    let name = input.string("template name")?;
    let n = input.count(5, "measurements")?;
    let names = input.many(n, |r| r.string("measurement"))?;
    let types = input.many(n, |r| r.u8("data type").and_then(data_type))?;
    let encodings: Vec<Option<String>> = if input.u8("encodings flag")? == 1 {
        input.many(n, |r| r.u8("encoding").and_then(encoding_of).map(Some))?
    } else {
        vec![None; n]
    };
    let compressors: Vec<Option<String>> = if input.u8("compressors flag")? == 1 {
        input.many(n, |r| r.u8("compressor").and_then(compressor_of).map(Some))?
    } else {
        vec![None; n]
    };
    let measurements = names
        .into_iter()
        .zip(types)
        .zip(encodings.into_iter().zip(compressors))
        .map(|((m, t), (e, c))| (m, t, e, c))
        .collect();
    Ok(ConfigPlan::ExtendTemplate { name, measurements })
}

/// `PipeDeactivateTemplatePlan`: a count, then per pattern its `PartialPath`, a template count and the
/// templates (`Template.serialize`). The path's `Path` layout is the one that reads the body to its
/// end.
fn deactivate_template(input: ByteReader<'_>) -> Result<ConfigPlan> {
    let mut first_error = None;
    for presence_bytes in [true, false] {
        let mut attempt = input;
        let parsed = (|| {
            // An entry takes at least a path (type byte, three parts, a node count) and a count.
            let n = attempt.count(12, "deactivation patterns")?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let pattern = read_partial_path(&mut attempt, presence_bytes)?.join(".");
                let templates = attempt.count(13, "templates")?;
                let mut names = Vec::with_capacity(templates);
                for _ in 0..templates {
                    names.push(read_template(&mut attempt)?.0);
                }
                entries.push((pattern, names));
            }
            end(&attempt)?;
            Ok(ConfigPlan::DeactivateTemplate(entries))
        })();
        match parsed {
            Ok(plan) => return Ok(plan),
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed("malformed PipeDeactivateTemplatePlan")))
}

/// The patterns of a serialized `PathPatternTree` (see the module header for the two layouts).
pub fn pattern_tree(bytes: &[u8]) -> Result<Vec<String>> {
    match pattern_tree_as(bytes, true) {
        Ok(patterns) => Ok(patterns),
        Err(current) => pattern_tree_as(bytes, false).map_err(|_| current),
    }
}

/// Reads the tree depth first without recursion (a hostile tree's depth is bounded only by its
/// bytes); `with_node_type` is the current layout's i32 after each name.
fn pattern_tree_as(bytes: &[u8], with_node_type: bool) -> Result<Vec<String>> {
    let mut input = ByteReader::new(bytes);
    // A child takes at least its name's length, the node type and its child count.
    let child_bytes = if with_node_type { 12 } else { 8 };
    let mut patterns = Vec::new();
    let mut path: Vec<String> = Vec::new();
    // Children still to read of each node on `path` that has some.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let name = input.string("pattern node name")?;
        let marked = with_node_type && input.i32("pattern node type")? == -1;
        let children = input.count(child_bytes, "pattern node children")?;
        path.push(name);
        if children == 0 || marked {
            patterns.push(path.join("."));
        }
        if children > 0 {
            open.push(children);
            continue;
        }
        path.pop();
        loop {
            match open.last_mut() {
                None => {
                    return if input.is_empty() {
                        Ok(patterns)
                    } else {
                        Err(malformed(format!(
                            "{} bytes after the path pattern tree",
                            input.remaining()
                        )))
                    };
                }
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                    path.pop();
                }
            }
        }
    }
}

/// The longest origin cluster id a `PipeEnrichedPlan` is taken to end with (IoTDB's are UUIDs).
const MAX_CLUSTER_ID_BYTES: usize = 1024;

/// `PipeEnrichedPlan`: a whole inner plan (not length-prefixed), then the origin cluster's id as a
/// nullable string (older senders: nothing). Each place where such a string could end the body is
/// tried, the id's length bounded, and the inner plan must read exactly to it; a wrapped
/// `PipeEnrichedPlan` is refused.
fn pipe_enriched(rest: &[u8]) -> Result<ConfigPlan> {
    let inner_code = ByteReader::new(rest).i16("inner plan type")?;
    if inner_code == plan_type::PIPE_ENRICHED {
        return Err(malformed("a PipeEnrichedPlan inside a PipeEnrichedPlan"));
    }
    let lowest = rest.len().saturating_sub(4 + MAX_CLUSTER_ID_BYTES);
    let mut first_error = None;
    for split in (lowest..=rest.len().saturating_sub(4)).rev() {
        let Some(prefix) = rest.get(split..split + 4) else {
            continue;
        };
        let declared = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let fits = declared == -1 && split + 4 == rest.len()
            || usize::try_from(declared).is_ok_and(|n| split + 4 + n == rest.len());
        if !fits {
            continue;
        }
        match decode_config_plan(&rest[..split]) {
            Ok(inner) => return Ok(ConfigPlan::PipeEnriched(Box::new(inner))),
            Err(e @ ProtoError::Unsupported(_)) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match decode_config_plan(rest) {
        Ok(inner) => Ok(ConfigPlan::PipeEnriched(Box::new(inner))),
        Err(e @ ProtoError::Unsupported(_)) => Err(e),
        Err(e) => Err(first_error.unwrap_or(e)),
    }
}

/// The user, role and privilege plans of `AuthorPlan` (see the module header): the fields after the
/// type in the 2.0 layout, or with a label policy and scope after the passwords; the one that reads
/// the body to its end is taken.
fn user_plan(code: i16, input: ByteReader<'_>) -> Result<ConfigPlan> {
    let mut first_error = None;
    for with_label_policy in [false, true] {
        let mut attempt = input;
        match author_fields(&mut attempt, code, with_label_policy)
            .and_then(|fields| end(&attempt).map(|()| fields))
        {
            Ok(fields) => return author_plan(code, fields),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| malformed("malformed AuthorPlan")))
}

/// The fields of an `AuthorPlan`.
struct AuthorFields {
    user: Option<String>,
    role: Option<String>,
    password: Option<String>,
    new_password: Option<String>,
    permissions: Vec<i32>,
    paths: Vec<Option<String>>,
    grant_option: bool,
}

fn author_plan(code: i16, fields: AuthorFields) -> Result<ConfigPlan> {
    let named = |name: &Option<String>, what: &str| {
        name.clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| malformed(format!("an AuthorPlan without its {what}")))
    };
    let user = || named(&fields.user, "user");
    let role = || named(&fields.role, "role");
    let holder = |to_role: bool| -> Result<AuthorHolder> {
        Ok(if to_role {
            AuthorHolder::Role(role()?)
        } else {
            AuthorHolder::User(user()?)
        })
    };
    let paths = || fields.paths.iter().flatten().cloned().collect::<Vec<_>>();
    Ok(match code {
        plan_type::CREATE_USER => ConfigPlan::CreateUser {
            name: user()?,
            password: UserPassword::Plain(
                fields
                    .password
                    .clone()
                    .ok_or_else(|| malformed("CreateUser without a password"))?,
            ),
        },
        plan_type::CREATE_USER_WITH_RAW_PASSWORD => ConfigPlan::CreateUser {
            name: user()?,
            password: UserPassword::IotdbHash(
                fields
                    .password
                    .clone()
                    .ok_or_else(|| malformed("CreateUserWithRawPassword without a password"))?,
            ),
        },
        plan_type::UPDATE_USER | plan_type::UPDATE_USER_V2 => ConfigPlan::UpdateUser {
            name: user()?,
            password: fields
                .new_password
                .clone()
                .ok_or_else(|| malformed("UpdateUser without a new password"))?,
        },
        plan_type::CREATE_ROLE => ConfigPlan::CreateRole { name: role()? },
        plan_type::DROP_ROLE => ConfigPlan::DropRole { name: role()? },
        plan_type::GRANT_USER | plan_type::GRANT_ROLE => ConfigPlan::Grant {
            holder: holder(code == plan_type::GRANT_ROLE)?,
            privileges: fields.permissions.clone(),
            paths: paths(),
            grant_option: fields.grant_option,
        },
        plan_type::REVOKE_USER | plan_type::REVOKE_ROLE => ConfigPlan::Revoke {
            holder: holder(code == plan_type::REVOKE_ROLE)?,
            privileges: fields.permissions.clone(),
            paths: paths(),
        },
        plan_type::GRANT_ROLE_TO_USER => ConfigPlan::GrantRoleToUser {
            user: user()?,
            role: role()?,
        },
        plan_type::REVOKE_ROLE_FROM_USER => ConfigPlan::RevokeRoleFromUser {
            user: user()?,
            role: role()?,
        },
        _ => ConfigPlan::DropUser { name: user()? },
    })
}

/// User, role, password, new password, [label policy, scope], [executing user id: the V2 plans],
/// the permissions behind a flag, the path list and the grant option.
fn author_fields(
    input: &mut ByteReader<'_>,
    code: i16,
    with_label_policy: bool,
) -> Result<AuthorFields> {
    let user = input.nullable_string("user name")?;
    let role = input.nullable_string("role name")?;
    let password = input.nullable_string("password")?;
    let new_password = input.nullable_string("new password")?;
    if with_label_policy {
        input.nullable_string("label policy expression")?;
        input.nullable_string("label policy scope")?;
    }
    if code == plan_type::DROP_USER_V2 || code == plan_type::UPDATE_USER_V2 {
        input.i64("executing user id")?;
    }
    let mut permissions = Vec::new();
    if input.u8("permissions flag")? != 0 {
        let n = input.count(4, "permissions")?;
        for _ in 0..n {
            permissions.push(input.i32("permission")?);
        }
    }
    let n = input.count(4, "paths")?;
    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        paths.push(input.nullable_string("path")?);
    }
    let grant_option = input.i32("grant option")? != 0;
    Ok(AuthorFields {
        user,
        role,
        password,
        new_password,
        permissions,
        paths,
        grant_option,
    })
}

/// `SetTTLPlan`'s path nodes and TTL (the caller reads the flag that may follow).
fn set_ttl(input: &mut ByteReader<'_>) -> Result<(String, i64)> {
    let n = input.count(4, "path nodes")?;
    let nodes = input.many(n, |r| r.string("path node"))?;
    let ttl_ms = input.i64("ttl")?;
    Ok((nodes.join("."), ttl_ms))
}

fn end(input: &ByteReader<'_>) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(malformed(format!(
            "{} bytes after the config plan",
            input.remaining()
        )))
    }
}

/// Field 1 (`name`) of a binary-protocol `TDatabaseSchema`; the other fields are skipped.
fn database_schema_name(bytes: &[u8]) -> Result<String> {
    let mut protocol = BinaryInput::new(bytes);
    protocol.read_struct_begin()?;
    let mut name = None;
    loop {
        let field = protocol.read_field_begin()?;
        if field.field_type == TType::Stop {
            break;
        }
        match (field.id, field.field_type) {
            (Some(1), TType::String) => name = Some(protocol.read_string()?),
            (_, t) => protocol.skip(t)?,
        }
        protocol.read_field_end()?;
    }
    protocol.read_struct_end()?;
    if protocol.remaining() > 0 {
        return Err(malformed(format!(
            "{} bytes after the TDatabaseSchema",
            protocol.remaining()
        )));
    }
    name.ok_or_else(|| malformed("a TDatabaseSchema without its name"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::test_bytes::string;
    use bytes::BufMut;

    /// `DatabaseSchemaPlan`: the type, then a binary-protocol TDatabaseSchema {1: name, 2: ttl,
    /// 6: isTableModel} written field by field.
    fn create_database(name: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(200);
        b.put_u8(0x0B);
        b.put_i16(1);
        string(&mut b, name);
        b.put_u8(0x0A);
        b.put_i16(2);
        b.put_i64(3_600_000);
        b.put_u8(0x02);
        b.put_i16(6);
        b.put_u8(0);
        b.put_u8(0); // stop
        b
    }

    #[test]
    fn database_and_ttl_plans_are_read() {
        assert_eq!(
            decode_config_plan(&create_database("root.sg")).unwrap(),
            ConfigPlan::CreateDatabase {
                name: "root.sg".into()
            }
        );
        let mut delete = Vec::new();
        delete.put_i16(206);
        string(&mut delete, "root.sg");
        assert_eq!(
            decode_config_plan(&delete).unwrap(),
            ConfigPlan::DeleteDatabase {
                name: "root.sg".into()
            }
        );
        for with_flag in [false, true] {
            let mut ttl = Vec::new();
            ttl.put_i16(201);
            ttl.put_i32(3);
            for n in ["root", "sg", "**"] {
                string(&mut ttl, n);
            }
            ttl.put_i64(86_400_000);
            if with_flag {
                ttl.put_u8(0);
            }
            assert_eq!(
                decode_config_plan(&ttl).unwrap(),
                ConfigPlan::SetTtl(TtlRule {
                    pattern: "root.sg.**".into(),
                    ttl_ms: 86_400_000,
                    database: false,
                })
            );
        }
    }

    #[test]
    fn a_pipe_set_ttl_plan_carries_its_set_ttl_plans_with_or_without_the_flag() {
        for with_flag in [false, true] {
            let mut b = Vec::new();
            b.put_i16(1705);
            b.put_i32(2);
            for (nodes, ttl) in [(["root", "a", "**"], 1000i64), (["root", "b", "d"], 2000)] {
                b.put_i16(201);
                b.put_i32(3);
                for n in nodes {
                    string(&mut b, n);
                }
                b.put_i64(ttl);
                if with_flag {
                    b.put_u8(1);
                }
            }
            let rule = |pattern: &str, ttl_ms| TtlRule {
                pattern: pattern.into(),
                ttl_ms,
                database: with_flag,
            };
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::SetTtls(vec![rule("root.a.**", 1000), rule("root.b.d", 2000)])
            );
            for cut in 0..b.len() {
                assert!(decode_config_plan(&b[..cut]).is_err(), "cut {cut}");
            }
        }
    }

    fn every_cut_fails(body: &[u8]) {
        for cut in 0..body.len() {
            assert!(decode_config_plan(&body[..cut]).is_err(), "cut {cut}");
        }
        let mut padded = body.to_vec();
        padded.push(0);
        assert!(decode_config_plan(&padded).is_err(), "a byte too many");
    }

    /// `Template.serialize`: id, name, aligned, count, then key, flag 0, name, type, encoding,
    /// compressor per measurement.
    fn template(out: &mut Vec<u8>, name: &str, aligned: bool, ms: &[(&str, u8, u8, u8)]) {
        out.put_i32(3);
        string(out, name);
        out.put_u8(u8::from(aligned));
        out.put_i32(ms.len() as i32);
        for (m, t, e, c) in ms {
            string(out, m);
            out.put_u8(0);
            string(out, m);
            out.put_u8(*t);
            out.put_u8(*e);
            out.put_u8(*c);
        }
    }

    #[test]
    fn template_plans_are_read() {
        let mut t = Vec::new();
        template(&mut t, "t1", true, &[("s1", 2, 4, 7), ("s2", 4, 2, 1)]);
        let mut b = Vec::new();
        b.put_i16(800);
        b.put_i32(t.len() as i32);
        b.extend_from_slice(&t);
        assert_eq!(
            decode_config_plan(&b).unwrap(),
            ConfigPlan::CreateTemplate {
                name: "t1".into(),
                aligned: true,
                measurements: vec![
                    (
                        "s1".into(),
                        DataType::Int64,
                        "TS_2DIFF".into(),
                        "LZ4".into()
                    ),
                    ("s2".into(), DataType::Double, "RLE".into(), "SNAPPY".into()),
                ],
            }
        );
        every_cut_fails(&b);

        // ExtendSchemaTemplatePlan, with and without encodings and compressors.
        for given in [true, false] {
            let mut b = Vec::new();
            b.put_i16(814);
            string(&mut b, "t1");
            b.put_i32(1);
            string(&mut b, "s3");
            b.put_u8(5);
            b.put_u8(u8::from(given));
            if given {
                b.put_u8(0);
            }
            b.put_u8(u8::from(given));
            if given {
                b.put_u8(8);
            }
            let (e, c) = if given {
                (Some("PLAIN".to_string()), Some("ZSTD".to_string()))
            } else {
                (None, None)
            };
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::ExtendTemplate {
                    name: "t1".into(),
                    measurements: vec![("s3".into(), DataType::Text, e, c)],
                }
            );
            every_cut_fails(&b);
        }

        // CommitSetSchemaTemplatePlan (a rollback undoes the set), SetSchemaTemplatePlan,
        // PipeUnsetSchemaTemplatePlan, DropSchemaTemplatePlan.
        let mut set = Vec::new();
        set.put_i16(813);
        string(&mut set, "t1");
        string(&mut set, "root.sg");
        set.put_u8(0);
        let both = |name: &str, path: &str| (name.to_string(), path.to_string());
        let ConfigPlan::SetTemplate { name, path } = decode_config_plan(&set).unwrap() else {
            panic!()
        };
        assert_eq!((name, path), both("t1", "root.sg"));
        every_cut_fails(&set);
        *set.last_mut().unwrap() = 1;
        assert!(matches!(
            decode_config_plan(&set).unwrap(),
            ConfigPlan::UnsetTemplate { .. }
        ));
        for (code, unset) in [(804i16, false), (1701, true)] {
            let mut b = Vec::new();
            b.put_i16(code);
            string(&mut b, "t1");
            string(&mut b, "root.sg");
            let plan = decode_config_plan(&b).unwrap();
            let expected = if unset {
                ConfigPlan::UnsetTemplate {
                    name: "t1".into(),
                    path: "root.sg".into(),
                }
            } else {
                ConfigPlan::SetTemplate {
                    name: "t1".into(),
                    path: "root.sg".into(),
                }
            };
            assert_eq!(plan, expected);
            every_cut_fails(&b);
        }
        let mut drop = Vec::new();
        drop.put_i16(811);
        string(&mut drop, "t1");
        assert_eq!(
            decode_config_plan(&drop).unwrap(),
            ConfigPlan::DropTemplate { name: "t1".into() }
        );
        every_cut_fails(&drop);
    }

    #[test]
    fn a_deactivation_gives_its_patterns_and_templates_in_either_path_layout() {
        for presence_bytes in [true, false] {
            let mut b = Vec::new();
            b.put_i16(1704);
            b.put_i32(1);
            crate::test_bytes::path(&mut b, 2, "root.sg.**", presence_bytes);
            b.put_i32(2);
            template(&mut b, "t1", false, &[("s1", 2, 4, 7)]);
            template(&mut b, "t2", true, &[]);
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::DeactivateTemplate(vec![(
                    "root.sg.**".into(),
                    vec!["t1".into(), "t2".into()]
                )])
            );
            every_cut_fails(&b);
        }
    }

    /// A `PathPatternTree` node: name, [type], child count, children.
    fn tree_node(out: &mut Vec<u8>, name: &str, node_type: Option<i32>, children: i32) {
        string(out, name);
        if let Some(t) = node_type {
            out.put_i32(t);
        }
        out.put_i32(children);
    }

    #[test]
    fn a_delete_time_series_plan_gives_the_patterns_of_its_tree_in_either_layout() {
        // root.sg.d1.s1, root.sg.d2 (marked: a pattern that also has a child), root.sg.d2.**.
        for current in [true, false] {
            let t = |marked: bool| current.then_some(if marked { -1 } else { -2 });
            let mut tree = Vec::new();
            tree_node(&mut tree, "root", t(false), 1);
            tree_node(&mut tree, "sg", t(false), 2);
            tree_node(&mut tree, "d1", t(false), 1);
            tree_node(&mut tree, "s1", t(true), 0);
            tree_node(&mut tree, "d2", t(true), 1);
            tree_node(&mut tree, "**", t(true), 0);
            let mut b = Vec::new();
            b.put_i16(1702);
            b.put_i32(tree.len() as i32);
            b.extend_from_slice(&tree);
            let ConfigPlan::DeleteTimeSeries { mut patterns } = decode_config_plan(&b).unwrap()
            else {
                panic!()
            };
            patterns.sort();
            let mut expected = vec!["root.sg.d1.s1", "root.sg.d2.**"];
            if current {
                expected.push("root.sg.d2");
            }
            expected.sort();
            assert_eq!(patterns, expected);
            every_cut_fails(&b);
        }
        // A tree with bytes after it, or a child count beyond the bytes, is refused.
        let mut tree = Vec::new();
        tree_node(&mut tree, "root", Some(-2), 1);
        tree_node(&mut tree, "**", Some(-1), 0);
        tree.push(0);
        assert!(pattern_tree(&tree).is_err());
        let mut deep = Vec::new();
        tree_node(&mut deep, "root", Some(-2), i32::MAX);
        assert!(pattern_tree(&deep).is_err());
    }

    #[test]
    fn a_pipe_enriched_plan_carries_its_inner_plan_with_or_without_the_cluster_id() {
        let mut inner = Vec::new();
        inner.put_i16(811);
        string(&mut inner, "t1");
        for trailer in [Some("9b1c4f2e-iotdb"), None] {
            for present in [true, false] {
                if !present && trailer.is_some() {
                    continue;
                }
                let mut b = Vec::new();
                b.put_i16(1700);
                b.extend_from_slice(&inner);
                if present {
                    match trailer {
                        Some(id) => string(&mut b, id),
                        None => b.put_i32(-1),
                    }
                }
                assert_eq!(
                    decode_config_plan(&b).unwrap(),
                    ConfigPlan::PipeEnriched(Box::new(ConfigPlan::DropTemplate {
                        name: "t1".into()
                    }))
                );
                for cut in 0..b.len() {
                    if let Ok(plan) = decode_config_plan(&b[..cut]) {
                        // Only the inner plan without its trailer is itself a whole body.
                        assert_eq!(cut, 2 + inner.len(), "{plan:?}");
                    }
                }
            }
        }
        // A plan Duet does not apply inside is refused by its name.
        let mut b = Vec::new();
        b.put_i16(1700);
        b.put_i16(2104);
        let err = decode_config_plan(&b).unwrap_err().to_string();
        assert!(err.contains("RenameUser"), "{err}");
    }

    /// An `AuthorPlan` body in the 2.0 layout (optionally the V2 id or a label policy).
    fn author(
        code: i16,
        user: &str,
        password: Option<&str>,
        new: Option<&str>,
        label: bool,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(code);
        string(&mut b, user);
        string(&mut b, "");
        match password {
            Some(p) => string(&mut b, p),
            None => b.put_i32(-1),
        }
        match new {
            Some(p) => string(&mut b, p),
            None => b.put_i32(-1),
        }
        if label {
            b.put_i32(-1);
            b.put_i32(-1);
        }
        if code == 2100 || code == 2101 {
            b.put_i64(10_000);
        }
        privileges_tail(&mut b, &[], &[], false);
        b
    }

    /// The end of an `AuthorPlan` body: the permissions (behind their flag), paths, grant option.
    fn privileges_tail(b: &mut Vec<u8>, permissions: &[i32], paths: &[&str], grant_option: bool) {
        b.put_u8(1);
        b.put_i32(permissions.len() as i32);
        for p in permissions {
            b.put_i32(*p);
        }
        b.put_i32(paths.len() as i32);
        for path in paths {
            string(b, path);
        }
        b.put_i32(i32::from(grant_option));
    }

    /// A role or privilege `AuthorPlan` body in the 2.0 layout.
    fn privilege_plan(
        code: i16,
        user: &str,
        role: &str,
        permissions: &[i32],
        paths: &[&str],
        grant_option: bool,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(code);
        string(&mut b, user);
        string(&mut b, role);
        b.put_i32(-1);
        b.put_i32(-1);
        privileges_tail(&mut b, permissions, paths, grant_option);
        b
    }

    #[test]
    fn role_and_privilege_plans_are_read() {
        let b = privilege_plan(626, "alice", "", &[0, 3], &["root.sg.**"], true);
        assert_eq!(
            decode_config_plan(&b).unwrap(),
            ConfigPlan::Grant {
                holder: AuthorHolder::User("alice".into()),
                privileges: vec![0, 3],
                paths: vec!["root.sg.**".into()],
                grant_option: true,
            }
        );
        every_cut_fails(&b);
        let b = privilege_plan(629, "", "ops", &[9, 20], &[], false);
        assert_eq!(
            decode_config_plan(&b).unwrap(),
            ConfigPlan::Revoke {
                holder: AuthorHolder::Role("ops".into()),
                privileges: vec![9, 20],
                paths: vec![],
            }
        );
        assert_eq!(
            decode_config_plan(&privilege_plan(622, "", "ops", &[], &[], false)).unwrap(),
            ConfigPlan::CreateRole { name: "ops".into() }
        );
        assert_eq!(
            decode_config_plan(&privilege_plan(630, "bob", "ops", &[], &[], false)).unwrap(),
            ConfigPlan::RevokeRoleFromUser {
                user: "bob".into(),
                role: "ops".into()
            }
        );
        // A role plan without its role is malformed.
        assert!(decode_config_plan(&privilege_plan(622, "", "", &[], &[], false)).is_err());
    }

    #[test]
    fn user_plans_are_read_and_others_refused_by_name() {
        for label in [false, true] {
            let b = author(621, "alice", Some("secret1"), None, label);
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::CreateUser {
                    name: "alice".into(),
                    password: UserPassword::Plain("secret1".into()),
                }
            );
            every_cut_fails(&b);
        }
        let hash = "\u{fffd}Z\u{fffd}";
        let b = author(638, "bob", Some(hash), None, false);
        assert_eq!(
            decode_config_plan(&b).unwrap(),
            ConfigPlan::CreateUser {
                name: "bob".into(),
                password: UserPassword::IotdbHash(hash.into()),
            }
        );
        every_cut_fails(&b);
        for code in [631i16, 2101] {
            let b = author(code, "alice", Some("secret1"), Some("secret2"), false);
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::UpdateUser {
                    name: "alice".into(),
                    password: "secret2".into(),
                }
            );
            every_cut_fails(&b);
        }
        for code in [623i16, 2100] {
            let b = author(code, "alice", None, None, false);
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::DropUser {
                    name: "alice".into()
                }
            );
            every_cut_fails(&b);
        }
        for (code, name) in [(2104i16, "RenameUser"), (639, "UpdateUserMaxSession")] {
            let err = decode_config_plan(&author(code, "alice", None, None, false)).unwrap_err();
            assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn truncations_and_other_plans_are_errors() {
        let body = create_database("root.sg");
        for cut in 0..body.len() {
            assert!(decode_config_plan(&body[..cut]).is_err(), "cut {cut}");
        }
        let mut padded = body.clone();
        padded.push(0);
        assert!(decode_config_plan(&padded).is_err());
        let mut author = Vec::new();
        author.put_i16(2104);
        let err = decode_config_plan(&author).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("RenameUser"));
    }
}
