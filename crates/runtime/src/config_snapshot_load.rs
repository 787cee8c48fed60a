//! Applying the ConfigNode snapshot an IoTDB sender seals (`TRANSFER_CONFIG_SNAPSHOT_SEAL`, 202)
//! after its pieces (201): one snapshot kind per seal, as IoTDB's `IoTDBConfigNodeReceiver.loadFileV2`
//! (apache/iotdb confignode, `…/manager/pipe/receiver/protocol/`) applies it through
//! `CNPhysicalPlanGenerator`. The schema kind gives, in IoTDB's order, the device templates
//! (CreateSchemaTemplate, 800), the databases (CreateDatabase, 200) and the paths templates are set on
//! (CommitSetSchemaTemplate, 813); the TTL kind gives TTL rules (SetTTL, 201). Each plan is kept only if
//! the seal's `Type` lists it and the seal's path pattern reaches it: a database or set path when the
//! pattern can match below it; a TTL rule when the pattern covers all the rule covers (IoTDB narrows a
//! rule to its intersection with the pattern; Duet applies the rules the pattern wholly covers and
//! names the others); templates are not under a path. Table-model databases are skipped.
//!
//! The USER kind is one user's file: the user (CreateUserWithRawPassword, 638) is applied as the
//! plan 638 is (`receiver::apply_schema_plan`): a peer's `PutUser` with IoTDB's stored hash kept as
//! its `$iotdb-md5$` record, so the user logs in with its IoTDB password, and versioned on arrival —
//! a user that exists here takes the snapshot's password unless a newer change of it was recorded
//! (IoTDB's own receiver instead keeps an existing user: USER_ALREADY_EXIST is an idempotent
//! conflict in `PipeConfigPhysicalPlanTSStatusVisitor.visitCreateRawUser`). `root` is never taken
//! from a snapshot: IoTDB's sender filters the superuser's file out
//! (`ConfigRegionListeningQueue.tryListenToSnapshots`) and its receiver would keep its own root, so
//! a root file that arrives anyway is skipped, answered 1809 (an idempotent conflict, as IoTDB's).
//!
//! Grants, roles and users' roles are applied as IoTDB's receiver applies the plans
//! `CNPhysicalPlanGenerator` makes of the files, each kind only when the seal's `Type` lists its
//! plan: a USER file's tree-model privileges as GrantUser (626), a ROLE file's role as CreateRole
//! (622; an existing role is kept) and its privileges as GrantRole (625), a USER_ROLE file
//! (`<user>_role.profile`, role names) as GrantRoleToUser (627). A grant adds to what the holder has
//! here (a grant option, once given, is kept), as the real-time plans 622–630 do
//! (`receiver::authority_with`): one [`SchemaChange::PutAuthority`] with the holder's whole state,
//! versioned on arrival with the pipe's origin, and checked against the handshake user's privileges
//! like every other change. A system privilege is held on `root.**`, as Duet lists them. The table
//! model's grants (any-scope, database and table masks) are not served: when the seal asks for them
//! they are named in a 1810 answer after the rest is applied, as are privilege bits no known
//! privilege has. A USER_ROLE file named by a numeric user id (IoTDB's current master) belongs to
//! the user the seal's `authUserName` names, as master's receiver takes it.
//!
//! Label policies (the LBAC kinds) are not applied: Duet has none. Their seal is answered 1810
//! naming the kind, so an IoTDB sender's conflict handling records and skips it instead of
//! stalling the pipe.
//!
//! **Invariant:** every file of a seal is parsed to its end before anything is applied, so a corrupt,
//! truncated or unsupported snapshot (table nodes, vector templates) is refused whole and changes
//! nothing. Each change is a peer's schema change versioned on arrival ([`Engine::apply_unversioned_schema`]).

use std::path::PathBuf;

use duet_engine::paths;
use duet_engine::schema_sync::{SchemaChange, SeriesSpec};
use duet_parser::PathNode;
use duet_proto::config_plan::AuthorHolder;
use duet_proto::config_snapshot::{
    self, file_type, snapshot_plan, AuthPrivileges, ConfigSchema, ConfigSnapshotSeal,
    ConfigTemplate, SnapshotRole, SnapshotUser, TtlEntry,
};
use duet_proto::pipe_body::FileSeal;
use duet_proto::status::{self, StatusCode};
use duet_proto::t::TPipeTransferResp;

use crate::file_receiver::{file_error, FileReceiver};
use crate::handshake::pipe_status;
use crate::receiver::Applying;
use crate::schema_snapshot_load::apply_permitted;

/// Handles a decoded snapshot seal: checks the received files against it and applies the snapshot
/// (the receiver empties the connection's directory after it, whatever the outcome).
pub async fn seal(
    files: &mut FileReceiver,
    applying: &Applying<'_>,
    seal: FileSeal,
    params: ConfigSnapshotSeal,
) -> TPipeTransferResp {
    let names: Vec<Option<String>> = seal.files.iter().map(|(n, _)| n.clone()).collect();
    if let Err(resp) = files.seal(seal).await {
        return resp;
    }
    let path = |i: usize| -> Option<PathBuf> {
        names
            .get(i)
            .cloned()
            .flatten()
            .map(|name| files.dir().join(name))
    };
    let kind = config_snapshot::file_type_name(params.file_type);
    match params.file_type {
        file_type::SCHEMA => {
            let (Some(mtree), Some(templates)) = (path(0), path(1)) else {
                return file_error(
                    "The ConfigNode schema snapshot seal names no ConfigMTree or no template file."
                        .into(),
                );
            };
            apply_schema(applying, &params, mtree, templates).await
        }
        file_type::TTL => {
            let Some(ttl) = path(0) else {
                return file_error("The TTL snapshot seal names no file.".into());
            };
            apply_ttl(applying, &params, ttl).await
        }
        file_type::USER => match parse_one("USER", path(0), config_snapshot::parse_user_file).await
        {
            Ok(user) => apply_user(applying, &params, user).await,
            Err(resp) => *resp,
        },
        file_type::ROLE => match parse_one("ROLE", path(0), config_snapshot::parse_role_file).await
        {
            Ok(role) => apply_role(applying, &params, role).await,
            Err(resp) => *resp,
        },
        file_type::USER_ROLE => {
            let (Some(file), Some(Some(name))) = (path(0), names.first()) else {
                return file_error("The USER_ROLE snapshot seal names no file.".into());
            };
            apply_user_roles(applying, &params, name.clone(), file).await
        }
        file_type::LBAC_COMPONENT | file_type::LBAC_POLICY => {
            tracing::warn!("an IoTDB {kind} snapshot was received and not applied");
            pipe_status(
                StatusCode::PipeReceiverUserConflict,
                format!(
                    "The ConfigNode {kind} snapshot is not applied: Duet has no label-based \
                     access control."
                ),
            )
        }
        _ => pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!("The ConfigNode {kind} snapshot is of a kind Duet does not know."),
        ),
    }
}

/// The seal's path pattern (IoTDB's default `root.**`), or the refusal.
fn pattern(params: &ConfigSnapshotSeal) -> Result<Vec<PathNode>, Box<TPipeTransferResp>> {
    let text = params.path_pattern.as_deref().unwrap_or("root.**");
    paths::parse_pattern(text).ok_or_else(|| {
        Box::new(pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!(
                "The config snapshot seal's path pattern {text:?} is not a legal path pattern."
            ),
        ))
    })
}

/// Reads and parses files on a blocking thread; the refusal names the snapshot.
async fn parse<T: Send + 'static>(
    what: &'static str,
    files: Vec<PathBuf>,
    parse: impl FnOnce(Vec<Vec<u8>>) -> duet_proto::Result<T> + Send + 'static,
) -> Result<T, Box<TPipeTransferResp>> {
    let parsed = tokio::task::spawn_blocking(move || {
        let bytes = files
            .iter()
            .map(std::fs::read)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("it cannot be read: {e}"))?;
        parse(bytes).map_err(|e| e.to_string())
    })
    .await;
    match parsed {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(why)) => Err(Box::new(pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!(
                "The ConfigNode {what} snapshot is refused and nothing of it was applied: {why}"
            ),
        ))),
        Err(e) => Err(Box::new(pipe_status(
            StatusCode::InternalServerError,
            format!("Reading the ConfigNode {what} snapshot failed: {e}"),
        ))),
    }
}

/// Reads and parses the one file of a seal that names one (the refusal when it names none).
async fn parse_one<T: Send + 'static>(
    what: &'static str,
    file: Option<PathBuf>,
    parse_file: fn(&[u8]) -> duet_proto::Result<T>,
) -> Result<T, Box<TPipeTransferResp>> {
    let Some(file) = file else {
        return Err(Box::new(file_error(format!(
            "The {what} snapshot seal names no file."
        ))));
    };
    parse(what, vec![file], move |bytes| parse_file(&bytes[0])).await
}

async fn apply_schema(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    mtree: PathBuf,
    templates: PathBuf,
) -> TPipeTransferResp {
    let pattern = match pattern(params) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let parsed = parse("SCHEMA", vec![mtree, templates], |bytes| {
        let schema = config_snapshot::parse_config_mtree(&bytes[0])?;
        let templates = config_snapshot::parse_template_table(&bytes[1])?;
        Ok((schema, templates))
    })
    .await;
    let (schema, templates) = match parsed {
        Ok(parsed) => parsed,
        Err(resp) => return *resp,
    };
    apply_permitted(
        applying,
        schema_changes(params, &pattern, &schema, &templates),
    )
    .await
}

/// The schema snapshot's changes in IoTDB's order: templates, databases, set paths.
fn schema_changes(
    params: &ConfigSnapshotSeal,
    pattern: &[PathNode],
    schema: &ConfigSchema,
    templates: &[ConfigTemplate],
) -> Vec<SchemaChange> {
    let mut changes = Vec::new();
    if !params.tree_captured {
        return changes;
    }
    if params
        .types
        .contains(&snapshot_plan::CREATE_SCHEMA_TEMPLATE)
    {
        for t in templates {
            changes.push(SchemaChange::CreateTemplate {
                name: t.name.clone(),
                aligned: t.aligned,
                measurements: t
                    .measurements
                    .iter()
                    .map(|(m, dt, e, c)| SeriesSpec {
                        measurement: m.clone(),
                        data_type: dt.name().to_string(),
                        encoding: e.clone(),
                        compressor: c.clone(),
                    })
                    .collect(),
            });
        }
    }
    let reaches = |path: &str| paths::matches_prefix_of(pattern, &paths::split(path));
    if params.types.contains(&snapshot_plan::CREATE_DATABASE) {
        for (database, table_model) in &schema.databases {
            if !table_model && reaches(database) {
                changes.push(SchemaChange::CreateDatabase {
                    path: database.clone(),
                });
            }
        }
    }
    if params
        .types
        .contains(&snapshot_plan::COMMIT_SET_SCHEMA_TEMPLATE)
    {
        for (path, id) in &schema.template_set {
            let Some(t) = templates.iter().find(|t| t.id == *id) else {
                tracing::warn!(path = %path, "a template set path names template id {id}, which the snapshot's template table lacks");
                continue;
            };
            if reaches(path) {
                changes.push(SchemaChange::SetTemplate {
                    name: t.name.clone(),
                    path: path.clone(),
                    made_on: None,
                });
            }
        }
    }
    changes
}

/// Applies the user of a USER snapshot and, when the seal asks for GrantUser (626), what its file
/// grants on the tree model (see the module header); the answer names what it leaves out.
async fn apply_user(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    user: SnapshotUser,
) -> TPipeTransferResp {
    let name = user.name.clone();
    if name == duet_catalog::ROOT_USER {
        tracing::warn!("an IoTDB USER snapshot of root was received; root stays as it is here");
        return pipe_status(
            StatusCode::PipeReceiverIdempotentConflict,
            "The USER snapshot of root is not applied: root is this instance's own (IoTDB's \
             sender never sends its superuser, and IoTDB's receiver keeps its own).",
        );
    }
    let creation = params
        .types
        .contains(&snapshot_plan::CREATE_USER_WITH_RAW_PASSWORD)
        .then(|| SchemaChange::PutUser {
            name: name.clone(),
            password_hash: duet_catalog::iotdb_password_record(&user.password_hash),
        });
    apply_holder(
        applying,
        params,
        AuthorHolder::User(name),
        creation,
        &user.privileges,
    )
    .await
}

/// Applies the role of a ROLE snapshot (CreateRole, 622; one that exists here is kept with what
/// it holds) and, for GrantRole (625), what its file grants on the tree model.
async fn apply_role(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    role: SnapshotRole,
) -> TPipeTransferResp {
    let creation =
        params
            .types
            .contains(&snapshot_plan::CREATE_ROLE)
            .then(|| SchemaChange::PutRole {
                name: role.name.clone(),
            });
    apply_holder(
        applying,
        params,
        AuthorHolder::Role(role.name),
        creation,
        &role.privileges,
    )
    .await
}

/// Applies a USER or ROLE file: the holder's `creation` (when the seal asks for it; refused if
/// the name is not a legal one here), then what the file grants ([`apply_grants`]).
async fn apply_holder(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    holder: AuthorHolder,
    creation: Option<SchemaChange>,
    privileges: &AuthPrivileges,
) -> TPipeTransferResp {
    if let Some(change) = creation {
        let (checked, kind, what) = match &holder {
            AuthorHolder::User(name) => (duet_catalog::validate_user_name(name), "USER", "user"),
            AuthorHolder::Role(name) => (duet_catalog::validate_role_name(name), "ROLE", "role"),
        };
        if let Err(e) = checked {
            let (AuthorHolder::User(name) | AuthorHolder::Role(name)) = &holder;
            return pipe_status(
                StatusCode::PipeReceiverUserConflict,
                format!("The {kind} snapshot's {what} {name:?} is not applied: {e}"),
            );
        }
        let resp = apply_permitted(applying, vec![change]).await;
        if resp.status.code != status::success().code {
            return resp;
        }
    }
    apply_grants(applying, params, holder, privileges).await
}

/// Applies a USER_ROLE snapshot file (`<user>_role.profile`): the user is granted each role it
/// names (GrantRoleToUser, 627), the roles it holds here kept. Root's roles are its own here.
async fn apply_user_roles(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    file_name: String,
    file: PathBuf,
) -> TPipeTransferResp {
    let user_roles = match parse("USER_ROLE", vec![file], move |bytes| {
        config_snapshot::parse_user_role_file(&file_name, &bytes[0])
    })
    .await
    {
        Ok(read) => read,
        Err(resp) => return *resp,
    };
    if !params.types.contains(&snapshot_plan::GRANT_ROLE_TO_USER) || user_roles.roles.is_empty() {
        return TPipeTransferResp::new(status::success(), None);
    }
    // A file named by a numeric id (IoTDB's current master) belongs to the user its seal names.
    let by_id = user_roles.user.bytes().all(|b| b.is_ascii_digit());
    let user = match (&params.auth_user_name, by_id) {
        (Some(name), true) => name.clone(),
        _ => user_roles.user,
    };
    if user == duet_catalog::ROOT_USER {
        return pipe_status(
            StatusCode::PipeReceiverIdempotentConflict,
            "The USER_ROLE snapshot of root is not applied: root is this instance's own.",
        );
    }
    let holder = AuthorHolder::User(user.clone());
    let change = match crate::receiver::authority_with(
        applying.engine,
        &holder,
        Vec::new(),
        &user_roles.roles,
    ) {
        Ok(change) => change,
        Err(resp) if by_id && params.auth_user_name.is_none() => {
            // A file named by an id, and no user named in the seal.
            let mut resp = *resp;
            resp.status.message = Some(format!(
                "{} (the file names the user {user}, which may be an IoTDB user id, and the \
                     seal names no authUserName)",
                resp.status.message.unwrap_or_default()
            ));
            return resp;
        }
        Err(resp) => return *resp,
    };
    apply_permitted(applying, vec![change]).await
}

/// Applies what a USER or ROLE file grants on the tree model when the seal's `Type` lists
/// its holder's grant plan (GrantUser or GrantRole): added to what the holder has here, a grant option kept.
/// The table model's grants (when the seal asks for them) and privilege bits no known privilege
/// has are named in a 1810 answer after the rest is applied.
async fn apply_grants(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    holder: AuthorHolder,
    privileges: &AuthPrivileges,
) -> TPipeTransferResp {
    let grant_type = match holder {
        AuthorHolder::User(_) => snapshot_plan::GRANT_USER,
        AuthorHolder::Role(_) => snapshot_plan::GRANT_ROLE,
    };
    let (tree, unknown) = privileges.tree_grants();
    let mut left_out = Vec::new();
    if params.types.contains(&grant_type) {
        let mut grants = Vec::new();
        for grant in tree {
            let Some(privilege) = duet_catalog::Privilege::from_iotdb_ordinal(grant.ordinal) else {
                left_out.push(format!("privilege {}", grant.ordinal));
                continue;
            };
            let path = match (privilege.is_path_privilege(), grant.path) {
                (true, Some(path)) => path,
                (false, None) => duet_catalog::GLOBAL_PATH.to_string(),
                (_, path) => {
                    left_out.push(format!(
                        "{} on {}",
                        privilege.name(),
                        path.as_deref().unwrap_or("no path")
                    ));
                    continue;
                }
            };
            grants.push((privilege.name(), path, grant.grant_option));
        }
        left_out.extend(unknown);
        if !grants.is_empty() {
            let change =
                match crate::receiver::authority_with(applying.engine, &holder, grants, &[]) {
                    Ok(change) => change,
                    Err(resp) => return *resp,
                };
            let resp = apply_permitted(applying, vec![change]).await;
            if resp.status.code != status::success().code {
                return resp;
            }
        }
    }
    // The seal's other types are the table model's grants (RGrantUserAny, …).
    let relational_asked = params.types.iter().any(|t| {
        ![
            snapshot_plan::CREATE_USER_WITH_RAW_PASSWORD,
            snapshot_plan::GRANT_USER,
            snapshot_plan::CREATE_ROLE,
            snapshot_plan::GRANT_ROLE,
        ]
        .contains(t)
    });
    if relational_asked {
        left_out.extend(privileges.relational.iter().cloned());
    }
    if left_out.is_empty() {
        return TPipeTransferResp::new(status::success(), None);
    }
    let (kind, name) = match &holder {
        AuthorHolder::User(name) => ("user", name),
        AuthorHolder::Role(name) => ("role", name),
    };
    pipe_status(
        StatusCode::PipeReceiverUserConflict,
        format!(
            "Of the {kind} {name}'s grants, these are not applied (Duet serves the tree model's \
             privileges only): {}.",
            left_out.join(", ")
        ),
    )
}

/// Whether the pipe's pattern matches every path a TTL rule covers: the same pattern, or a
/// pattern `P.**` with only names in `P` that the rule's path starts with.
fn covers(pattern: &[PathNode], rule: &[PathNode]) -> bool {
    if pattern == rule {
        return true;
    }
    let Some((PathNode::Many, prefix)) = pattern.split_last() else {
        return false;
    };
    prefix.iter().all(|n| matches!(n, PathNode::Name(_)))
        && rule.starts_with(prefix)
        && rule.len() > prefix.len()
}

/// Whether two patterns may match a common path: node by node until either takes `**`, a name
/// meeting a name or glob it does not fit ruling it out (a `**` in the middle is taken as
/// overlapping, which errs towards naming a rule as left out).
fn may_overlap(a: &[PathNode], b: &[PathNode]) -> bool {
    for pair in a.iter().zip(b) {
        match pair {
            (PathNode::Many, _) | (_, PathNode::Many) => return true,
            (PathNode::Name(x), PathNode::Name(y)) if x != y => return false,
            (PathNode::Name(x), PathNode::Glob(g)) | (PathNode::Glob(g), PathNode::Name(x))
                if !paths::glob_matches(g, x) =>
            {
                return false
            }
            _ => {}
        }
    }
    a.len() == b.len()
}

async fn apply_ttl(
    applying: &Applying<'_>,
    params: &ConfigSnapshotSeal,
    file: PathBuf,
) -> TPipeTransferResp {
    let pattern = match pattern(params) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let rules = match parse("TTL", vec![file], |bytes| {
        config_snapshot::parse_ttl_snapshot(&bytes[0])
    })
    .await
    {
        Ok(rules) => rules,
        Err(resp) => return *resp,
    };
    if !params.tree_captured || !params.types.contains(&snapshot_plan::SET_TTL) {
        return TPipeTransferResp::new(status::success(), None);
    }
    let mut changes = Vec::new();
    let mut left_out = Vec::new();
    for TtlEntry { path, ttl_ms } in rules {
        let Some(rule) = paths::parse_pattern(&path) else {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!("The ConfigNode TTL snapshot is refused and nothing of it was applied: {path} is not a path pattern"),
            );
        };
        if !covers(&pattern, &rule) {
            if may_overlap(&pattern, &rule) {
                left_out.push(path);
            }
            continue;
        }
        // As a SetTTLPlan of -1 (IoTDB's NULL_TTL) removes a rule, so does any TTL of 0 or less.
        changes.push(if ttl_ms <= 0 {
            SchemaChange::UnsetTtl {
                patterns: vec![path],
            }
        } else {
            SchemaChange::SetTtl {
                patterns: vec![path],
                ttl_ms,
            }
        });
    }
    let resp = apply_permitted(applying, changes).await;
    if resp.status.code != status::success().code || left_out.is_empty() {
        return resp;
    }
    pipe_status(
        StatusCode::PipeReceiverUserConflict,
        format!(
            "The TTL snapshot was applied except the rules the pipe's pattern covers only in part: {}",
            left_out.join(", ")
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<PathNode> {
        paths::parse_pattern(text).unwrap()
    }

    #[test]
    fn a_pattern_covers_the_ttl_rules_below_its_prefix() {
        assert!(covers(&p("root.**"), &p("root.sg.**")));
        assert!(covers(&p("root.sg.**"), &p("root.sg.d1.**")));
        assert!(covers(&p("root.sg.d1"), &p("root.sg.d1")));
        assert!(!covers(&p("root.sg.**"), &p("root.**")));
        assert!(!covers(&p("root.sg.**"), &p("root.sg")));
        assert!(!covers(&p("root.*.d1.**"), &p("root.sg.d1.**")));
    }

    #[test]
    fn patterns_overlap_node_by_node_until_a_double_star() {
        assert!(may_overlap(&p("root.ln.**"), &p("root.**")));
        assert!(may_overlap(&p("root.*.d1"), &p("root.sg.d1")));
        assert!(may_overlap(&p("root.sg.d*.**"), &p("root.sg.d1.s1")));
        assert!(!may_overlap(&p("root.sg.d*"), &p("root.sg.d1.**")));
        assert!(!may_overlap(&p("root.ln.**"), &p("root.sg.**")));
        assert!(!may_overlap(&p("root.sg.d1"), &p("root.sg.d1.s1")));
        assert!(!may_overlap(&p("root.sg.x*"), &p("root.sg.d1")));
    }
}
