//! Authorization in one place: what each statement and each RPC needs (the tables
//! [`statement_needs`] and [`rpc_needs`]), and whether a session's user has it ([`Access`]).
//!
//! IoTDB 2.0's rules (tree model; `AuthorityChecker`, the statements' `checkPermissionBeforeProcess`,
//! the Authority-Management user guide): root may do everything and its privileges cannot change;
//! queries and SHOW/COUNT are never refused but see only the paths of the user's READ_DATA
//! (queries) or READ_SCHEMA (SHOW, COUNT) grants; writes need WRITE_DATA on every series they touch
//! (and WRITE_SCHEMA on the ones they create); schema changes WRITE_SCHEMA; databases
//! MANAGE_DATABASE; users MANAGE_USER; roles MANAGE_ROLE; pipes USE_PIPE; cluster information and
//! other users' queries MAINTAIN. WRITE_DATA implies READ_DATA and WRITE_SCHEMA implies
//! READ_SCHEMA (as IoTDB's guide describes them); SYSTEM and MAINTAIN stand for each other, SECURITY for
//! MANAGE_USER and MANAGE_ROLE (the administrative privileges of IoTDB's newest versions). A refusal
//! is status 803 with IoTDB's text: `No permissions for this operation, please add privilege X`
//! (`… on [path, …]` for path privileges).

use std::sync::Arc;

use duet_catalog::{Authority, Privilege, GLOBAL_PATH, ROOT_USER};
use duet_engine::paths;
use duet_engine::scope::ReadScope;
use duet_engine::Engine;
use duet_parser::{Grantee, Path, PathNode, Statement};
use duet_proto::rpc::Request;
use duet_proto::status::StatusCode;

use crate::status_codes::StatementError;

const NO_PERMISSION: &str = "No permissions for this operation, please add privilege ";

/// A refusal for want of a global privilege.
pub fn denied(privilege: Privilege) -> StatementError {
    StatementError::new(
        StatusCode::NoPermission,
        format!("{NO_PERMISSION}{privilege}"),
    )
}

/// A refusal for want of a path privilege on `paths`.
pub fn denied_on(privilege: Privilege, paths: &[String]) -> StatementError {
    StatementError::new(
        StatusCode::NoPermission,
        format!("{NO_PERMISSION}{privilege} on [{}]", paths.join(", ")),
    )
}

/// `Ok` when nothing is `missing`, else the refusal for want of `privilege` on it.
fn denied_on_any(privilege: Privilege, missing: &[String]) -> Result<(), StatementError> {
    if missing.is_empty() {
        Ok(())
    } else {
        Err(denied_on(privilege, missing))
    }
}

/// What only root may do (device templates' definitions, as IoTDB: "Only administrators are
/// allowed to create, delete, modify, query, mount, and unmount templates").
pub fn root_only() -> StatementError {
    StatementError::new(
        StatusCode::NoPermission,
        "No permissions for this operation, only root user is allowed",
    )
}

/// One grant as a session checks it.
#[derive(Debug, Clone)]
struct Held {
    privilege: Privilege,
    pattern: Vec<PathNode>,
    grant_option: bool,
}

/// What a session's user may do, loaded from the catalog and reloaded when it changes.
#[derive(Debug, Clone)]
pub struct Access {
    user: String,
    root: bool,
    roles: Vec<String>,
    held: Vec<Held>,
}

impl Access {
    /// The administrator: everything.
    pub fn root() -> Access {
        Access {
            user: ROOT_USER.to_string(),
            root: true,
            roles: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Nobody: no privilege at all.
    pub fn none() -> Access {
        Access {
            user: String::new(),
            root: false,
            roles: Vec::new(),
            held: Vec::new(),
        }
    }

    pub fn from_authority(authority: &Authority) -> Access {
        if authority.user == ROOT_USER {
            return Access::root();
        }
        let held = authority
            .all_grants()
            .filter_map(|g| {
                Some(Held {
                    privilege: g.privilege,
                    pattern: paths::parse_pattern(&g.path)?,
                    grant_option: g.grant_option,
                })
            })
            .collect();
        Access {
            user: authority.user.clone(),
            root: false,
            roles: authority.roles.iter().map(|(r, _)| r.clone()).collect(),
            held,
        }
    }

    /// Loads what `user` may do now; `None` when the user no longer exists.
    pub fn load(
        catalog: &duet_catalog::Catalog,
        user: &str,
    ) -> Result<Option<Access>, StatementError> {
        Ok(catalog.authority(user)?.map(|a| Access::from_authority(&a)))
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The grants that give `privilege` (a write privilege gives the read one too).
    fn giving(&self, privilege: Privilege) -> impl Iterator<Item = &Held> {
        let also = match privilege {
            Privilege::ReadData => Some(Privilege::WriteData),
            Privilege::ReadSchema => Some(Privilege::WriteSchema),
            // IoTDB 2.0.x checks MAINTAIN where its newest versions check SYSTEM: either does.
            Privilege::Maintain => Some(Privilege::System),
            Privilege::System => Some(Privilege::Maintain),
            Privilege::ManageUser | Privilege::ManageRole => Some(Privilege::Security),
            _ => None,
        };
        self.held
            .iter()
            .filter(move |h| h.privilege == privilege || Some(h.privilege) == also)
    }

    /// Whether the user holds a global privilege.
    pub fn has(&self, privilege: Privilege) -> bool {
        self.root || self.giving(privilege).next().is_some()
    }

    /// `Ok` when the user holds a global privilege, else IoTDB's refusal.
    pub fn require(&self, privilege: Privilege) -> Result<(), StatementError> {
        if self.has(privilege) {
            Ok(())
        } else {
            Err(denied(privilege))
        }
    }

    /// Whether a path privilege covers every path `pattern` matches (a concrete path, or a pattern
    /// inside a granted prefix).
    pub fn covers(&self, privilege: Privilege, pattern: &[PathNode]) -> bool {
        self.root
            || self
                .giving(privilege)
                .any(|h| pattern_includes(&h.pattern, pattern))
    }

    /// `Ok` when `privilege` covers each of `patterns`, else 803 naming the ones it does not.
    pub fn require_on(
        &self,
        privilege: Privilege,
        patterns: &[Path],
    ) -> Result<(), StatementError> {
        let missing: Vec<String> = patterns
            .iter()
            .filter(|p| !self.covers(privilege, &p.0))
            .map(ToString::to_string)
            .collect();
        denied_on_any(privilege, &missing)
    }

    /// What the user's `privilege` lets it read (`None`: everything, for root).
    pub fn scope(&self, privilege: Privilege) -> Option<Arc<ReadScope>> {
        if self.root {
            return None;
        }
        Some(Arc::new(ReadScope::new(
            self.giving(privilege).map(|h| h.pattern.clone()).collect(),
        )))
    }

    /// Whether the user may grant or revoke `privilege` on `pattern`: root, or a grant of it with
    /// the grant option whose path includes `pattern`.
    pub fn may_grant(&self, privilege: Privilege, pattern: &[PathNode]) -> bool {
        self.root
            || self.held.iter().any(|h| {
                h.privilege == privilege && h.grant_option && pattern_includes(&h.pattern, pattern)
            })
    }
}

/// Whether every path `inner` matches is matched by `outer`, for the patterns privileges are held
/// on (a full path, or a prefix ending in `**`). A pattern of another shape includes only the
/// concrete paths it matches.
pub fn pattern_includes(outer: &[PathNode], inner: &[PathNode]) -> bool {
    let concrete_prefix = |nodes: &[PathNode]| nodes.iter().all(|n| matches!(n, PathNode::Name(_)));
    match outer.split_last() {
        Some((PathNode::Many, prefix)) if concrete_prefix(prefix) => {
            inner.len() > prefix.len() && inner[..prefix.len()] == *prefix
        }
        _ => {
            if !concrete_prefix(inner) {
                return false;
            }
            let names: Vec<&str> = inner
                .iter()
                .filter_map(|n| match n {
                    PathNode::Name(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            paths::matches(outer, &names)
        }
    }
}

fn path_of(nodes: Vec<String>) -> Path {
    Path(nodes.into_iter().map(PathNode::Name).collect())
}

/// The series `device`.`measurement` as a concrete path.
fn series_path(device: &str, measurement: &str) -> Path {
    let mut nodes = paths::split(device);
    nodes.push(measurement.to_string());
    path_of(nodes)
}

/// A path a client sent in an RPC (device, series or pattern), as nodes; an unreadable one is left
/// to the handler, which answers it with its own error.
fn rpc_path(text: &str) -> Option<Path> {
    duet_parser::parse_path(text).ok()
}

/// Checks a write of `measurements` under each device: WRITE_DATA on every series, and
/// WRITE_SCHEMA on those the write would create (IoTDB: automatic creation needs both).
pub fn check_writes<'a>(
    access: &Access,
    engine: &Engine,
    devices: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Result<(), StatementError> {
    if access.is_root() {
        return Ok(());
    }
    let mut no_write = Vec::new();
    let mut no_schema = Vec::new();
    for (device, measurements) in devices {
        for measurement in measurements {
            let path = series_path(device, measurement);
            if !access.covers(Privilege::WriteData, &path.0) {
                no_write.push(path.to_string());
            } else if !engine.series_exists(device, measurement)
                && !access.covers(Privilege::WriteSchema, &path.0)
            {
                no_schema.push(path.to_string());
            }
        }
    }
    denied_on_any(Privilege::WriteData, &no_write)?;
    denied_on_any(Privilege::WriteSchema, &no_schema)
}

/// What one statement needs before it runs. Statements that read are not refused here: they run
/// under the user's read scopes ([`Access::scope`]); GRANT and REVOKE are checked where they run
/// (after their privileges and paths are validated), and so are the LIST statements that show a
/// user only their own part without MANAGE_USER / MANAGE_ROLE.
pub fn statement_needs(
    access: &Access,
    engine: &Engine,
    statement: &Statement,
) -> Result<(), StatementError> {
    use Privilege as P;
    if access.is_root() {
        return Ok(());
    }
    match statement {
        // Reads: filtered by READ_DATA / READ_SCHEMA.
        Statement::Select(_) | duet_parser::schema_listing_statement!() => Ok(()),
        // Data.
        Statement::Insert {
            device, columns, ..
        } => {
            let device = device.to_string();
            check_writes(access, engine, [(device.as_str(), columns.as_slice())])
        }
        Statement::DeleteData { paths, .. } => access.require_on(P::WriteData, paths),
        // Schema.
        Statement::CreateDatabase { .. } | Statement::DropDatabase { .. } => {
            access.require(P::ManageDatabase)
        }
        Statement::CreateTimeseries { path, .. } => {
            access.require_on(P::WriteSchema, std::slice::from_ref(path))
        }
        Statement::CreateAlignedTimeseries { device, columns } => {
            let device = device.to_string();
            let series: Vec<Path> = columns
                .iter()
                .map(|c| series_path(&device, &c.name))
                .collect();
            access.require_on(P::WriteSchema, &series)
        }
        Statement::DeleteTimeseries { paths } => access.require_on(P::WriteSchema, paths),
        Statement::SetTtl { path, .. } | Statement::UnsetTtl { path } => {
            access.require_on(P::WriteSchema, std::slice::from_ref(path))
        }
        Statement::ActivateTemplate { path } => {
            access.require_on(P::WriteSchema, std::slice::from_ref(path))
        }
        Statement::DeactivateTemplate { paths, .. } => access.require_on(P::WriteSchema, paths),
        Statement::CreateTemplate { .. }
        | Statement::SetTemplate { .. }
        | Statement::UnsetTemplate { .. }
        | Statement::DropTemplate { .. }
        | Statement::AlterTemplateAdd { .. }
        | Statement::ShowTemplates
        | Statement::ShowNodesInTemplate { .. }
        | Statement::ShowPathsSetTemplate { .. } => Err(root_only()),
        Statement::Flush { .. } => access.require(P::System),
        // Pipes.
        Statement::CreatePipe(_)
        | Statement::AlterPipe(_)
        | Statement::StartPipe { .. }
        | Statement::StopPipe { .. }
        | Statement::DropPipe { .. }
        | Statement::ShowPipes { .. }
        | Statement::ShowPipe { .. } => access.require(P::UsePipe),
        // Cluster information and maintenance.
        Statement::ShowCluster { .. }
        | Statement::ShowVariables
        | Statement::ShowDataNodes
        | Statement::ShowConfigNodes
        | Statement::ShowRegions { .. } => access.require(P::Maintain),
        Statement::ShowClusterId | Statement::ShowVersion => Ok(()),
        // Everyone sees and kills their own queries; MAINTAIN everyone's (checked where they run).
        Statement::ShowQueries | Statement::KillQuery { .. } => Ok(()),
        // Users and roles.
        Statement::CreateUser { .. } | Statement::DropUser { .. } => access.require(P::ManageUser),
        Statement::AlterUserPassword { name, .. } => {
            if name == access.user() {
                Ok(())
            } else if name == ROOT_USER {
                // MANAGE_USER must not be a way to become root.
                Err(root_only())
            } else {
                access.require(P::ManageUser)
            }
        }
        Statement::ListUser { of_role: None } => Ok(()),
        Statement::ListUser { of_role: Some(_) } => access.require(P::ManageUser),
        Statement::CreateRole { .. }
        | Statement::DropRole { .. }
        | Statement::GrantRole { .. }
        | Statement::RevokeRole { .. } => access.require(P::ManageRole),
        Statement::ListRole { of_user: None } => Ok(()),
        Statement::ListRole {
            of_user: Some(user),
        } => {
            if user == access.user() {
                Ok(())
            } else {
                access.require(P::ManageRole)
            }
        }
        Statement::ListPrivileges {
            of: Grantee::User(user),
        } => {
            if user == access.user() {
                Ok(())
            } else {
                access.require(P::ManageUser)
            }
        }
        Statement::ListPrivileges {
            of: Grantee::Role(role),
        } => {
            if access.has_role(role) {
                Ok(())
            } else {
                access.require(P::ManageRole)
            }
        }
        Statement::Grant { .. } | Statement::Revoke { .. } => Ok(()),
    }
}

/// A multi-device write request's devices, each with its measurements.
fn device_measurements<'a>(
    devices: &'a [String],
    measurements: &'a [Vec<String>],
) -> impl Iterator<Item = (&'a str, &'a [String])> {
    devices
        .iter()
        .zip(measurements)
        .map(|(d, m)| (d.as_str(), m.as_slice()))
}

/// A one-device request's rows, each with its measurements.
fn one_device_measurements<'a>(
    device: &'a str,
    measurements: &'a [Vec<String>],
) -> impl Iterator<Item = (&'a str, &'a [String])> {
    measurements.iter().map(move |m| (device, m.as_slice()))
}

/// What one RPC needs before it runs (the SQL ones go through [`statement_needs`], the query ones
/// run under the read scope). `Ok` for what needs nothing.
pub fn rpc_needs(
    access: &Access,
    engine: &Engine,
    request: &Request,
) -> Result<(), StatementError> {
    use Privilege as P;
    if access.is_root() {
        return Ok(());
    }
    let paths =
        |texts: &[String]| -> Vec<Path> { texts.iter().filter_map(|t| rpc_path(t)).collect() };
    match request {
        Request::InsertTablet(r) => check_writes(
            access,
            engine,
            [(r.prefix_path.as_str(), r.measurements.as_slice())],
        ),
        Request::InsertTablets(r) => check_writes(
            access,
            engine,
            device_measurements(&r.prefix_paths, &r.measurements_list),
        ),
        Request::InsertRecord(r) => check_writes(
            access,
            engine,
            [(r.prefix_path.as_str(), r.measurements.as_slice())],
        ),
        Request::InsertStringRecord(r) => check_writes(
            access,
            engine,
            [(r.prefix_path.as_str(), r.measurements.as_slice())],
        ),
        Request::InsertRecords(r) => check_writes(
            access,
            engine,
            device_measurements(&r.prefix_paths, &r.measurements_list),
        ),
        Request::InsertStringRecords(r) => check_writes(
            access,
            engine,
            device_measurements(&r.prefix_paths, &r.measurements_list),
        ),
        Request::InsertRecordsOfOneDevice(r) => check_writes(
            access,
            engine,
            one_device_measurements(&r.prefix_path, &r.measurements_list),
        ),
        Request::InsertStringRecordsOfOneDevice(r) => check_writes(
            access,
            engine,
            one_device_measurements(&r.prefix_path, &r.measurements_list),
        ),
        Request::DeleteData(r) => access.require_on(P::WriteData, &paths(&r.paths)),
        Request::SetStorageGroup { .. } | Request::DeleteStorageGroups { .. } => {
            access.require(P::ManageDatabase)
        }
        Request::CreateTimeseries(r) => {
            access.require_on(P::WriteSchema, &paths(std::slice::from_ref(&r.path)))
        }
        Request::CreateAlignedTimeseries(r) => {
            let series: Vec<Path> = r
                .measurements
                .iter()
                .map(|m| series_path(&r.prefix_path, m))
                .collect();
            access.require_on(P::WriteSchema, &series)
        }
        Request::CreateMultiTimeseries(r) => access.require_on(P::WriteSchema, &paths(&r.paths)),
        Request::DeleteTimeseries { paths: p, .. } => access.require_on(P::WriteSchema, &paths(p)),
        Request::CreateTimeseriesUsingSchemaTemplate(r) => {
            access.require_on(P::WriteSchema, &paths(&r.device_path_list))
        }
        Request::CreateSchemaTemplate(_)
        | Request::AppendSchemaTemplate(_)
        | Request::PruneSchemaTemplate(_)
        | Request::QuerySchemaTemplate(_)
        | Request::SetSchemaTemplate(_)
        | Request::UnsetSchemaTemplate(_)
        | Request::DropSchemaTemplate(_) => Err(root_only()),
        Request::FetchAllConnectionsInfo => access.require(P::Maintain),
        // SQL (checked per statement), path queries (read scope), session housekeeping, pipes
        // (the receiver checks the handshake user) and refusals need nothing here.
        Request::Execute { .. }
        | Request::ExecuteBatch { .. }
        | Request::RawDataQuery { .. }
        | Request::LastDataQuery { .. }
        | Request::FastLastDataQueryForOnePrefixPath { .. }
        | Request::FastLastDataQueryForOneDevice { .. }
        | Request::AggregationQuery { .. }
        | Request::GroupByQueryInterval { .. }
        | Request::FetchResults { .. }
        | Request::FetchResultsV1 { .. }
        | Request::OpenSession { .. }
        | Request::CloseSession { .. }
        | Request::RequestStatementId { .. }
        | Request::SetTimeZone { .. }
        | Request::GetTimeZone { .. }
        | Request::GetProperties
        | Request::TestInsert { .. }
        | Request::TestConnectionEmptyRpc
        | Request::GetBackupConfiguration
        | Request::CloseOperation { .. }
        | Request::CancelOperation { .. }
        | Request::PipeTransfer { .. }
        | Request::NotSupported { .. }
        | Request::Unknown => Ok(()),
    }
}

/// A pipe's handshake user as the receiver checks what a request applies, path by path as a
/// session's statements are (IoTDB 2.0's receiver executes each write and plan as that user).
pub struct PipeUser {
    access: Access,
    engine: Arc<Engine>,
    catalog: Arc<duet_catalog::Catalog>,
}

impl PipeUser {
    pub fn new(access: Access, engine: Arc<Engine>, catalog: Arc<duet_catalog::Catalog>) -> Self {
        PipeUser {
            access,
            engine,
            catalog,
        }
    }
}

impl duet_runtime::receiver::PipeAuthority for PipeUser {
    fn check(
        &self,
        applied: duet_runtime::receiver::Applied<'_>,
    ) -> Result<(), duet_proto::t::TSStatus> {
        applied_needs(&self.access, &self.engine, &self.catalog, applied).map_err(|e| e.to_status())
    }
}

/// `Ok` when `privilege` covers each path or pattern in `texts`; one that does not parse is named
/// as missing (it cannot be shown to be covered).
fn require_on_texts<S: AsRef<str>>(
    access: &Access,
    privilege: Privilege,
    texts: &[S],
) -> Result<(), StatementError> {
    let missing: Vec<String> = texts
        .iter()
        .map(AsRef::as_ref)
        .filter(|text| !rpc_path(text).is_some_and(|p| access.covers(privilege, &p.0)))
        .map(str::to_string)
        .collect();
    denied_on_any(privilege, &missing)
}

/// What one thing a pipe request applies needs of its handshake user: writes as a session's
/// writes (WRITE_DATA, and WRITE_SCHEMA on the series they create), deletions WRITE_DATA on their
/// paths, and each schema change what the statement that makes it needs — databases
/// MANAGE_DATABASE; series, TTLs and template activations WRITE_SCHEMA on their paths; users
/// MANAGE_USER (one's own password excepted); roles and a user's roles MANAGE_ROLE; each grant
/// added or taken away the grant option on it; template definitions root (a template extension
/// EXTEND_TEMPLATE, as IoTDB's config receiver checks it).
pub fn applied_needs(
    access: &Access,
    engine: &Engine,
    catalog: &duet_catalog::Catalog,
    applied: duet_runtime::receiver::Applied<'_>,
) -> Result<(), StatementError> {
    use duet_engine::schema_sync::SchemaChange as C;
    use duet_runtime::receiver::Applied;
    use Privilege as P;
    if access.is_root() {
        return Ok(());
    }
    let change = match applied {
        Applied::Points {
            device,
            measurements,
        } => return check_writes(access, engine, [(device, measurements)]),
        Applied::Deletion { paths } => return require_on_texts(access, P::WriteData, paths),
        Applied::Schema(change) => change,
    };
    let series = |pairs: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<String> {
        pairs
            .map(|(device, measurement)| series_path(device, measurement).to_string())
            .collect()
    };
    match change {
        C::CreateDatabase { .. } | C::DropDatabase { .. } => access.require(P::ManageDatabase),
        C::CreateSeries {
            device, series: s, ..
        } => require_on_texts(
            access,
            P::WriteSchema,
            &series(
                &mut s
                    .iter()
                    .map(|spec| (device.as_str(), spec.measurement.as_str())),
            ),
        ),
        C::DeleteSeries { series: s } => require_on_texts(
            access,
            P::WriteSchema,
            &series(&mut s.iter().map(|(d, m)| (d.as_str(), m.as_str()))),
        ),
        C::SetTtl { patterns, .. } | C::UnsetTtl { patterns } => {
            require_on_texts(access, P::WriteSchema, patterns)
        }
        C::ActivateTemplate { device, .. } => {
            require_on_texts(access, P::WriteSchema, std::slice::from_ref(device))
        }
        C::DeactivateTemplate { devices } => require_on_texts(access, P::WriteSchema, devices),
        C::AppendTemplate { .. } => access.require(P::ExtendTemplate),
        C::CreateTemplate { .. }
        | C::PruneTemplate { .. }
        | C::DropTemplate { .. }
        | C::SetTemplate { .. }
        | C::UnsetTemplate { .. } => Err(root_only()),
        C::PutUser { name, .. } | C::DropUser { name } if name == ROOT_USER => Err(root_only()),
        // A user's own password (IoTDB's UpdateUser by the user itself); creating it is MANAGE_USER.
        C::PutUser { name, .. } if name == access.user() => Ok(()),
        C::PutUser { .. } | C::DropUser { .. } => access.require(P::ManageUser),
        C::PutRole { .. } | C::DropRole { .. } => access.require(P::ManageRole),
        C::PutAuthority {
            kind,
            name,
            grants,
            roles,
        } => authority_change_needs(access, catalog, kind, name, grants, roles),
    }
}

/// A user's or role's whole new state: what changes against the state here needs what the GRANT
/// or REVOKE making it needs (the grant option on each grant added or taken away; MANAGE_ROLE for
/// a user's roles).
fn authority_change_needs(
    access: &Access,
    catalog: &duet_catalog::Catalog,
    kind: &str,
    name: &str,
    grants: &[duet_engine::schema_sync::GrantSpec],
    roles: &[String],
) -> Result<(), StatementError> {
    if kind == "user" && name == ROOT_USER {
        return Err(root_only());
    }
    let holder = if kind == "role" {
        duet_catalog::Holder::Role(name)
    } else {
        duet_catalog::Holder::User(name)
    };
    let here: Vec<(String, String, bool)> = catalog
        .grants_of(holder)?
        .into_iter()
        .map(|g| (g.privilege.name().to_string(), g.path, g.grant_option))
        .collect();
    let new: Vec<(String, String, bool)> = grants
        .iter()
        .map(|g| {
            (
                g.privilege.to_ascii_uppercase(),
                g.path.clone(),
                g.grant_option,
            )
        })
        .collect();
    let changed = new
        .iter()
        .filter(|g| !here.contains(g))
        .chain(here.iter().filter(|g| !new.contains(g)));
    for (privilege, path, _) in changed {
        let grantable = Privilege::from_name(privilege)
            .zip(paths::parse_pattern(path))
            .is_some_and(|(p, pattern)| access.may_grant(p, &pattern));
        if !grantable {
            return Err(StatementError::new(
                StatusCode::NotHasPrivilegeGrantOpt,
                format!(
                    "Has no permission to execute GRANT/REVOKE {privilege} ON {path}, please ensure you have these privileges and the grant option is TRUE when granted"
                ),
            ));
        }
    }
    if kind != "role" {
        let mut held = catalog.roles_of_user(name)?;
        let mut wanted = roles.to_vec();
        held.sort();
        wanted.sort();
        if held != wanted {
            access.require(Privilege::ManageRole)?;
        }
    }
    Ok(())
}

/// The grants a GRANT or REVOKE names, validated as IoTDB does: a global privilege only on
/// `root.**` (status 816), a path privilege on a full path or a prefix ending in `.**`.
pub fn named_grants(
    privileges: &[String],
    paths_: &[Path],
) -> Result<Vec<(Privilege, Path)>, StatementError> {
    let illegal = |why: String| StatementError::new(StatusCode::IllegalPrivilege, why);
    let mut out = Vec::new();
    for name in privileges {
        let expanded =
            Privilege::expand(name).ok_or_else(|| illegal(format!("Unknown privilege {name}")))?;
        for privilege in expanded {
            for path in paths_ {
                if privilege.is_path_privilege() {
                    let shape_ok = match path.0.split_last() {
                        Some((PathNode::Many, prefix)) => {
                            prefix.iter().all(|n| matches!(n, PathNode::Name(_)))
                        }
                        _ => !path.is_pattern(),
                    };
                    if !shape_ok {
                        return Err(illegal(format!(
                            "Illegal path {path}: a privilege is granted on a full path or on a path ending with .**"
                        )));
                    }
                } else if path.to_string() != GLOBAL_PATH {
                    return Err(illegal(format!(
                        "Illegal privilege {privilege} on {path}: a global privilege is granted on root.** only"
                    )));
                }
                out.push((privilege, path.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use duet_catalog::Grant;

    fn pat(s: &str) -> Vec<PathNode> {
        paths::parse_pattern(s).unwrap()
    }

    fn access(grants: &[(Privilege, &str, bool)]) -> Access {
        Access::from_authority(&Authority {
            user: "u".into(),
            own: grants
                .iter()
                .map(|(p, path, opt)| Grant {
                    privilege: *p,
                    path: path.to_string(),
                    grant_option: *opt,
                })
                .collect(),
            roles: Vec::new(),
        })
    }

    #[test]
    fn pattern_inclusion() {
        assert!(pattern_includes(&pat("root.sg.**"), &pat("root.sg.d1.s1")));
        assert!(pattern_includes(&pat("root.sg.**"), &pat("root.sg.*.s1")));
        assert!(pattern_includes(&pat("root.sg.**"), &pat("root.sg.**")));
        assert!(!pattern_includes(&pat("root.sg.**"), &pat("root.sg")));
        assert!(!pattern_includes(&pat("root.sg.**"), &pat("root.*.d1")));
        assert!(!pattern_includes(
            &pat("root.sg.**"),
            &pat("root.sg2.d1.s1")
        ));
        assert!(pattern_includes(
            &pat("root.sg.d1.s1"),
            &pat("root.sg.d1.s1")
        ));
        assert!(!pattern_includes(
            &pat("root.sg.d1.s1"),
            &pat("root.sg.d1.*")
        ));
        assert!(pattern_includes(&pat("root.**"), &pat("root.a")));
    }

    #[test]
    fn implied_privileges_and_scopes() {
        let a = access(&[
            (Privilege::WriteData, "root.sg.**", false),
            (Privilege::System, GLOBAL_PATH, false),
        ]);
        assert!(a.covers(Privilege::ReadData, &pat("root.sg.d1.s1")));
        assert!(!a.covers(Privilege::ReadData, &pat("root.other.d1.s1")));
        assert!(a.has(Privilege::Maintain));
        assert!(!a.has(Privilege::UsePipe));
        assert_eq!(
            a.require(Privilege::UsePipe).unwrap_err().message,
            "No permissions for this operation, please add privilege USE_PIPE"
        );
        let scope = a.scope(Privilege::ReadData).unwrap();
        assert!(scope.covers(&["root", "sg", "d", "s"]));
        assert!(Access::root().scope(Privilege::ReadData).is_none());
        assert!(!a.may_grant(Privilege::WriteData, &pat("root.sg.d1.s1")));
        let b = access(&[(Privilege::ReadData, "root.sg.**", true)]);
        assert!(b.may_grant(Privilege::ReadData, &pat("root.sg.d1.**")));
        assert!(!b.may_grant(Privilege::ReadData, &pat("root.**")));
    }

    #[test]
    fn grants_are_validated() {
        let p = |s: &str| duet_parser::parse_path(s).unwrap();
        assert_eq!(
            named_grants(&["READ".into()], &[p("root.sg.**")])
                .unwrap()
                .len(),
            2
        );
        let e = named_grants(&["MANAGE_USER".into()], &[p("root.sg.**")]).unwrap_err();
        assert_eq!(e.code, StatusCode::IllegalPrivilege);
        let e = named_grants(&["READ_DATA".into()], &[p("root.sg.*")]).unwrap_err();
        assert_eq!(e.code, StatusCode::IllegalPrivilege);
        assert!(named_grants(&["ALL".into()], &[p("root.**")]).is_ok());
    }

    #[test]
    fn parser_and_catalog_know_the_same_privileges() {
        for p in Privilege::ALL {
            let sql = format!("grant {} on root.** to user u", p.name());
            assert!(duet_parser::parse(&sql).is_ok(), "{sql}");
        }
    }
}
