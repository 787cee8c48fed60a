//! Routes every parsed statement of a logged-in user by family — queries (the session's query path),
//! schema and data (the engine), pipes (the runtime's `PipeManager`), cluster information, users and
//! privileges — in one exhaustive match, and executes the server's own. Each returns an [`Output`].

use std::future::Future;
use std::pin::Pin;

use duet_catalog::{Holder, Privilege, ROOT_USER};
use duet_parser::{Grantee, RegionKind, Select, Statement};
use duet_proto::status::StatusCode;
use duet_proto::types::{Column, ColumnValues, DataType, Table};
use duet_runtime::manager::ShowFilter;

use crate::authz::{self, Access};
use crate::instance::{Instance, BUILD_INFO, VERSION};
use crate::queries::KillError;
use crate::status_codes::StatementError;

/// What a statement produced: nothing, a table, or a page stream — the engine's one output type,
/// which the server's own statements return too.
pub use duet_engine::Output;

/// The session's query path, which a statement's `SELECT` takes: the audit log's view or the engine,
/// under the session's limits and listed in `SHOW QUERIES`.
pub trait QueryPath: Sync {
    fn select<'a>(&'a self, select: &'a Select) -> QueryFuture<'a>;
}

/// A query's planning, as [`QueryPath::select`] returns it (boxed, so the path can be a `dyn`).
pub type QueryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Output, StatementError>> + Send + 'a>>;

/// A new password checked and hashed on a blocking thread (argon2 takes tens of milliseconds of
/// CPU by design).
async fn hash_on_blocking_thread(password: &str) -> Result<String, StatementError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || duet_catalog::Catalog::hash_new_password(&password))
        .await
        .map_err(|e| {
            StatementError::new(
                StatusCode::InternalServerError,
                format!("password hashing failed: {e}"),
            )
        })?
        .map_err(StatementError::from)
}

/// The engine's context for a statement of this session: its zone and its user's read scopes.
pub fn session_context(access: &Access, zone_id: &str) -> duet_engine::SessionContext {
    duet_engine::SessionContext {
        zone_id: zone_id.to_string(),
        read_data: access.scope(Privilege::ReadData),
        read_schema: access.scope(Privilege::ReadSchema),
    }
}

/// Runs one statement for the session's user, after checking what it needs (`authz`). The match below
/// is the one route of every statement, grouped by family, with no catch-all: a statement the parser
/// gains does not compile until it is routed here (and given its needs in `authz::statement_needs`).
pub async fn execute(
    instance: &Instance,
    access: &Access,
    zone_id: &str,
    statement: &Statement,
    queries: &dyn QueryPath,
) -> Result<Output, StatementError> {
    authz::statement_needs(access, &instance.engine, statement)?;
    let user = access.user();
    let pipes = &instance.pipes;
    match statement {
        // Queries: the session's query path.
        Statement::Select(select) => queries.select(select).await,
        // Schema, data, TTL, templates and FLUSH: the engine's.
        Statement::CreateDatabase { .. }
        | Statement::DropDatabase { .. }
        | Statement::ShowDatabases { .. }
        | Statement::CreateTimeseries { .. }
        | Statement::CreateAlignedTimeseries { .. }
        | Statement::ShowTimeseries { .. }
        | Statement::ShowDevices { .. }
        | Statement::CountTimeseries { .. }
        | Statement::CountDevices { .. }
        | Statement::CountTimeseriesByLevel { .. }
        | Statement::CountDatabases { .. }
        | Statement::CountNodes { .. }
        | Statement::ShowChildPaths { .. }
        | Statement::ShowChildNodes { .. }
        | Statement::DeleteTimeseries { .. }
        | Statement::Insert { .. }
        | Statement::DeleteData { .. }
        | Statement::Flush { .. }
        | Statement::SetTtl { .. }
        | Statement::UnsetTtl { .. }
        | Statement::ShowTtl { .. }
        | duet_parser::template_statement!() => {
            let ctx = session_context(access, zone_id);
            Ok(instance.engine.execute(&ctx, statement).await?)
        }
        // Pipes: the runtime's manager.
        Statement::CreatePipe(stmt) => {
            pipes.create(stmt).await?;
            Ok(Output::Done)
        }
        Statement::AlterPipe(stmt) => {
            pipes.alter(stmt).await?;
            Ok(Output::Done)
        }
        Statement::StartPipe { name } => {
            pipes.start(name)?;
            Ok(Output::Done)
        }
        Statement::StopPipe { name } => {
            pipes.stop(name)?;
            Ok(Output::Done)
        }
        Statement::DropPipe { if_exists, name } => {
            pipes.drop_pipe(*if_exists, name).await?;
            Ok(Output::Done)
        }
        Statement::ShowPipes { sink_used_by } => {
            let filter = match sink_used_by {
                Some(name) => ShowFilter::SinkUsedBy(name.clone()),
                None => ShowFilter::All,
            };
            show_pipes(instance, &filter)
        }
        Statement::ShowPipe { name } => show_pipes(instance, &ShowFilter::Named(name.clone())),
        // Cluster information and running queries.
        Statement::ShowCluster { details } => Ok(Output::Table(show_cluster(instance, *details))),
        Statement::ShowClusterId => Ok(Output::Table(Table::text(
            &["ClusterId"],
            vec![vec![instance.identity().cluster_id.clone()]],
        ))),
        Statement::ShowVersion => Ok(Output::Table(Table::text(
            &["Version", "BuildInfo"],
            vec![vec![VERSION.to_string(), BUILD_INFO.to_string()]],
        ))),
        Statement::ShowQueries => Ok(Output::Table(show_queries(instance, access))),
        Statement::KillQuery { id } => {
            let caller = (!access.has(Privilege::Maintain)).then_some(user);
            match instance.queries.kill(id.as_deref(), caller) {
                Ok(_) => Ok(Output::Done),
                Err(KillError::NoSuchQuery(id)) => Err(StatementError::new(
                    StatusCode::NoSuchQuery,
                    format!("no running query has the id {id}"),
                )),
                Err(KillError::NotOwner(id)) => Err(StatementError::new(
                    StatusCode::NoPermission,
                    format!(
                        "query {id} belongs to another user; killing it needs the privilege MAINTAIN"
                    ),
                )),
            }
        }
        Statement::ShowVariables => Ok(Output::Table(show_variables(instance))),
        Statement::ShowDataNodes => Ok(Output::Table(show_data_nodes(instance)?)),
        Statement::ShowConfigNodes => Ok(Output::Table(show_config_nodes(instance))),
        Statement::ShowRegions { kind, databases } => {
            Ok(Output::Table(show_regions(instance, *kind, databases)?))
        }
        // Account changes are checked, logged for pipes that include `auth`, then applied to the
        // catalog (a failed log write changes nothing), under the schema-change lock.
        // Users, roles and privileges: the catalog.
        Statement::CreateUser { name, password } => {
            // argon2 runs on a blocking thread, before the schema-change lock: a slow hash holds
            // back neither the async workers nor other schema changes.
            let hash = hash_on_blocking_thread(password).await?;
            let _schema_change = instance.engine.schema_change_guard().await;
            duet_catalog::validate_user_name(name)?;
            if instance.catalog.user_password_hash(name)?.is_some() {
                return Err(duet_catalog::Error::UserExists(name.clone()).into());
            }
            instance.engine.log_user_put(name, &hash).await?;
            instance.catalog.create_user_hashed(name, &hash)?;
            Ok(Output::Done)
        }
        Statement::AlterUserPassword { name, password } => {
            // Every user may change their own password; others' need MANAGE_USER (`authz`).
            let hash = hash_on_blocking_thread(password).await?;
            let _schema_change = instance.engine.schema_change_guard().await;
            if instance.catalog.user_password_hash(name)?.is_none() {
                return Err(duet_catalog::Error::UserNotExist(name.clone()).into());
            }
            instance.engine.log_user_put(name, &hash).await?;
            instance.catalog.set_password_hashed(name, &hash)?;
            Ok(Output::Done)
        }
        Statement::DropUser { name } => {
            let _schema_change = instance.engine.schema_change_guard().await;
            if name == ROOT_USER {
                return Err(duet_catalog::Error::CannotDropRoot.into());
            }
            if instance.catalog.user_password_hash(name)?.is_none() {
                return Err(duet_catalog::Error::UserNotExist(name.clone()).into());
            }
            instance.engine.log_user_drop(name).await?;
            instance.catalog.drop_user(name)?;
            Ok(Output::Done)
        }
        Statement::ListUser { of_role } => {
            // Without MANAGE_USER a user sees only itself (`authz` refused `OF ROLE` already).
            let users = match of_role {
                Some(role) => instance.catalog.users_of_role(role)?,
                None if access.has(Privilege::ManageUser) => instance.catalog.list_users()?,
                None => vec![user.to_string()],
            };
            Ok(Output::Table(name_table("User", users)))
        }
        // Role and grant changes are applied to the catalog, then their resulting state is logged
        // for pipes that include `auth`, under the schema-change lock (as `log_user_change`).
        Statement::CreateRole { name } => {
            let _schema_change = instance.engine.schema_change_guard().await;
            instance.catalog.create_role(name)?;
            log_authority(instance, &[name], &[]).await
        }
        Statement::DropRole { name } => {
            let _schema_change = instance.engine.schema_change_guard().await;
            instance.catalog.drop_role(name)?;
            log_authority(instance, &[name], &[]).await
        }
        Statement::GrantRole { role, user } => {
            let _schema_change = instance.engine.schema_change_guard().await;
            instance.catalog.grant_role(role, user)?;
            log_authority(instance, &[], &[Grantee::User(user.clone())]).await
        }
        Statement::RevokeRole { role, user } => {
            let _schema_change = instance.engine.schema_change_guard().await;
            instance.catalog.revoke_role(role, user)?;
            log_authority(instance, &[], &[Grantee::User(user.clone())]).await
        }
        Statement::ListRole { of_user } => {
            // Without MANAGE_ROLE a user sees the roles it holds.
            let roles = match of_user {
                Some(of) => instance.catalog.roles_of_user(of)?,
                None if access.has(Privilege::ManageRole) => instance.catalog.list_roles()?,
                None => instance.catalog.roles_of_user(user)?,
            };
            Ok(Output::Table(name_table("Role", roles)))
        }
        Statement::ListPrivileges { of } => Ok(Output::Table(list_privileges(instance, of)?)),
        Statement::Grant {
            privileges,
            paths,
            grantee,
            grant_option,
        } => {
            let grants = authz::named_grants(privileges, paths)?;
            check_grant_option(access, &grants, "GRANT")?;
            let stored: Vec<(Privilege, String)> = grants
                .iter()
                .map(|(p, path)| (*p, path.to_string()))
                .collect();
            let _schema_change = instance.engine.schema_change_guard().await;
            instance
                .catalog
                .grant(holder(grantee), &stored, *grant_option)?;
            log_authority(instance, &[], std::slice::from_ref(grantee)).await
        }
        Statement::Revoke {
            privileges,
            paths,
            grantee,
        } => {
            let grants = authz::named_grants(privileges, paths)?;
            check_grant_option(access, &grants, "REVOKE")?;
            // As IoTDB: a revocation on a path removes every grant of the privilege on a path it
            // includes (REVOKE ... ON root.sg.** takes root.sg.d1's too).
            let held = instance.catalog.grants_of(holder(grantee))?;
            let doomed: Vec<(Privilege, String)> = held
                .iter()
                .filter(|g| {
                    let stored = duet_engine::paths::parse_pattern(&g.path).unwrap_or_default();
                    grants.iter().any(|(p, path)| {
                        *p == g.privilege
                            && (path.to_string() == g.path
                                || authz::pattern_includes(&path.0, &stored))
                    })
                })
                .map(|g| (g.privilege, g.path.clone()))
                .collect();
            if doomed.is_empty() {
                return Err(StatementError::new(
                    StatusCode::NotHasPrivilege,
                    format!("{grantee} does not have the privileges to revoke"),
                ));
            }
            let _schema_change = instance.engine.schema_change_guard().await;
            instance.catalog.revoke(holder(grantee), &doomed)?;
            log_authority(instance, &[], std::slice::from_ref(grantee)).await
        }
    }
}

/// `SHOW PIPES` (USE_PIPE, checked by `authz`).
fn show_pipes(instance: &Instance, filter: &ShowFilter) -> Result<Output, StatementError> {
    // Counting a pipe's backlog reads the change log: do it where blocking is allowed.
    let table = tokio::task::block_in_place(|| instance.pipes.show(filter))?;
    Ok(Output::Table(table))
}

/// Logs what roles and holders now are, for pipes that include `auth`.
async fn log_authority(
    instance: &Instance,
    roles: &[&String],
    holders: &[Grantee],
) -> Result<Output, StatementError> {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let holders: Vec<(&str, &str)> = holders
        .iter()
        .map(|h| match h {
            Grantee::User(name) => ("user", name.as_str()),
            Grantee::Role(name) => ("role", name.as_str()),
        })
        .collect();
    instance
        .engine
        .log_authority_change(&roles, &holders)
        .await?;
    Ok(Output::Done)
}

/// A one-column list of names (`LIST USER`, `LIST ROLE`), IoTDB's header.
fn name_table(header: &str, names: Vec<String>) -> Table {
    Table::text(&[header], names.into_iter().map(|n| vec![n]).collect())
}

fn holder(grantee: &Grantee) -> Holder<'_> {
    match grantee {
        Grantee::User(name) => Holder::User(name),
        Grantee::Role(name) => Holder::Role(name),
    }
}

/// A user other than root grants or revokes only what it holds with the grant option, on paths its
/// grant includes (IoTDB's 817 otherwise).
fn check_grant_option(
    access: &Access,
    grants: &[(Privilege, duet_parser::Path)],
    what: &str,
) -> Result<(), StatementError> {
    if grants.iter().all(|(p, path)| access.may_grant(*p, &path.0)) {
        Ok(())
    } else {
        Err(StatementError::new(
            StatusCode::NotHasPrivilegeGrantOpt,
            format!(
                "Has no permission to execute {what}, please ensure you have these privileges and the grant option is TRUE when granted"
            ),
        ))
    }
}

/// `LIST PRIVILEGES OF USER u | ROLE r`: IoTDB's columns Role, Path, Privileges, GrantOption; one
/// row per privilege and path, the user's own first (Role empty), then each role's.
fn list_privileges(instance: &Instance, of: &Grantee) -> Result<Table, StatementError> {
    let mut rows: Vec<(String, String, String, bool)> = Vec::new();
    let mut add = |role: &str, g: &duet_catalog::Grant| {
        rows.push((
            role.to_string(),
            g.path.clone(),
            g.privilege.name().to_string(),
            g.grant_option,
        ));
    };
    match of {
        Grantee::User(name) if name == ROOT_USER => {
            for privilege in Privilege::ALL {
                let grant = duet_catalog::Grant {
                    privilege,
                    path: duet_catalog::GLOBAL_PATH.into(),
                    grant_option: true,
                };
                add("", &grant);
            }
        }
        Grantee::User(name) => {
            let authority = instance
                .catalog
                .authority(name)?
                .ok_or_else(|| duet_catalog::Error::UserNotExist(name.clone()))?;
            for g in &authority.own {
                add("", g);
            }
            for (role, grants) in &authority.roles {
                for g in grants {
                    add(role, g);
                }
            }
        }
        Grantee::Role(role) => {
            for g in instance.catalog.grants_of(Holder::Role(role))? {
                add(role, &g);
            }
        }
    }
    Ok(typed_table(
        &[
            ("Role", DataType::Text),
            ("Path", DataType::Text),
            ("Privileges", DataType::Text),
            ("GrantOption", DataType::Boolean),
        ],
        rows.into_iter()
            .map(|(role, scope, privilege, option)| {
                vec![
                    text(role),
                    text(scope),
                    text(privilege),
                    Cell::Boolean(option),
                ]
            })
            .collect(),
    ))
}

/// `SHOW CLUSTER [DETAILS]`: one process plays both of IoTDB's node roles. Duet listens on a single
/// port, so every port column reports the client RPC port; columns that do not apply to a role are empty.
fn show_cluster(instance: &Instance, details: bool) -> Table {
    let host = &instance.config.internal_address;
    let port = instance.rpc_port.to_string();
    let mut columns = vec![
        ("NodeID", DataType::Int32),
        ("NodeType", DataType::Text),
        ("Status", DataType::Text),
        ("InternalAddress", DataType::Text),
        ("InternalPort", DataType::Int32),
    ];
    if details {
        columns.extend(
            [
                "ConfigConsensusPort",
                "RpcAddress",
                "RpcPort",
                "MppPort",
                "SchemaConsensusPort",
                "DataConsensusPort",
            ]
            .map(|name| (name, DataType::Text)),
        );
    }
    columns.extend([("Version", DataType::Text), ("BuildInfo", DataType::Text)]);
    let rows = [(CONFIG_NODE_ID, "ConfigNode"), (DATA_NODE_ID, "DataNode")]
        .into_iter()
        .map(|(id, role)| {
            let is_data = id == DATA_NODE_ID;
            let data_only = |v: &str| text(if is_data { v } else { "" });
            let mut row = vec![
                Cell::Int32(id),
                text(role),
                text("Running"),
                text(host.clone()),
                Cell::Int32(i32::from(instance.rpc_port)),
            ];
            if details {
                row.push(text(if is_data { String::new() } else { port.clone() }));
                row.push(data_only(&instance.config.rpc_address));
                row.extend([
                    data_only(&port),
                    data_only(&port),
                    data_only(&port),
                    data_only(&port),
                ]);
            }
            row.extend([text(VERSION), text(BUILD_INFO)]);
            row
        })
        .collect();
    typed_table(&columns, rows)
}

/// One cell of a typed SHOW result (see [`typed_table`]).
enum Cell {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Text(String),
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

/// A result without a time column whose columns have the given names and types; a cell of another
/// type than its column's (a bug) is left null rather than mis-typed.
fn typed_table(columns: &[(&str, DataType)], rows: Vec<Vec<Cell>>) -> Table {
    let n_rows = rows.len();
    let mut built: Vec<Column> = columns
        .iter()
        .map(|(_, data_type)| Column {
            data_type: *data_type,
            nulls: Some(Vec::with_capacity(n_rows)),
            values: ColumnValues::empty_for(*data_type),
        })
        .collect();
    for row in rows {
        let mut cells = row.into_iter();
        for column in &mut built {
            let null = match (&mut column.values, cells.next()) {
                (ColumnValues::Boolean(v), Some(Cell::Boolean(x))) => {
                    v.push(x);
                    false
                }
                (ColumnValues::Boolean(v), _) => {
                    v.push(false);
                    true
                }
                (ColumnValues::Int32(v), Some(Cell::Int32(x))) => {
                    v.push(x);
                    false
                }
                (ColumnValues::Int64(v), Some(Cell::Int64(x))) => {
                    v.push(x);
                    false
                }
                (ColumnValues::Float(v), Some(Cell::Float(x))) => {
                    v.push(x);
                    false
                }
                (ColumnValues::Binary(v), Some(Cell::Text(x))) => {
                    v.push(x.into_bytes());
                    false
                }
                (ColumnValues::Int32(v), _) => {
                    v.push(0);
                    true
                }
                (ColumnValues::Int64(v), _) => {
                    v.push(0);
                    true
                }
                (ColumnValues::Float(v), _) => {
                    v.push(0.0);
                    true
                }
                (ColumnValues::Binary(v), _) => {
                    v.push(Vec::new());
                    true
                }
                (_, _) => true,
            };
            if let Some(nulls) = column.nulls.as_mut() {
                nulls.push(null);
            }
        }
    }
    for column in &mut built {
        if column.nulls.as_ref().is_some_and(|n| !n.contains(&true)) {
            column.nulls = None;
        }
    }
    Table {
        names: columns.iter().map(|(name, _)| name.to_string()).collect(),
        columns: built,
        times: None,
        n_rows,
    }
}

/// The node ids `SHOW CLUSTER` gives the two roles this one process plays.
const CONFIG_NODE_ID: i32 = 0;
const DATA_NODE_ID: i32 = 1;

/// IoTDB's consensus class for a region of one replica; Duet keeps one copy per instance and
/// replicates between instances with pipes, not consensus.
const SIMPLE_CONSENSUS: &str = "org.apache.iotdb.consensus.simple.SimpleConsensus";

/// `SHOW VARIABLES`: IoTDB's cluster parameters, as they are for one Duet instance.
fn show_variables(instance: &Instance) -> Table {
    let identity = instance.identity();
    let units_per_ms: i64 = match identity.timestamp_precision.as_str() {
        "us" => 1_000,
        "ns" => 1_000_000,
        _ => 1,
    };
    let rows: Vec<(&str, String)> = vec![
        ("ClusterName", identity.cluster_id.clone()),
        ("DataReplicationFactor", "1".into()),
        ("SchemaReplicationFactor", "1".into()),
        ("DataRegionConsensusProtocolClass", SIMPLE_CONSENSUS.into()),
        (
            "SchemaRegionConsensusProtocolClass",
            SIMPLE_CONSENSUS.into(),
        ),
        ("ConfigNodeConsensusProtocolClass", SIMPLE_CONSENSUS.into()),
        ("TimePartitionOrigin", "0".into()),
        // As SHOW DATABASES reports it: data files are cut into 7-day partitions.
        (
            "TimePartitionInterval",
            (604_800_000 * units_per_ms).to_string(),
        ),
        ("ReadConsistencyLevel", "strong".into()),
        ("SchemaRegionPerDataNode", "1".into()),
        ("DataRegionPerDataNode", "1".into()),
        ("SeriesSlotNum", "1".into()),
        ("SeriesSlotExecutorClass", String::new()),
        ("DiskSpaceWarningThreshold", "0.0".into()),
        ("TimestampPrecision", identity.timestamp_precision.clone()),
    ];
    Table::text(
        &["Variable", "Value"],
        rows.into_iter()
            .map(|(name, value)| vec![name.to_string(), value])
            .collect(),
    )
}

/// `SHOW DATANODES`: this instance as IoTDB's one DataNode, with a schema and a data region per
/// database (as [`show_regions`] lists them).
fn show_data_nodes(instance: &Instance) -> Result<Table, StatementError> {
    let databases = i32::try_from(instance.catalog.databases()?.len()).unwrap_or(i32::MAX);
    Ok(typed_table(
        &[
            ("NodeID", DataType::Int32),
            ("Status", DataType::Text),
            ("RpcAddress", DataType::Text),
            ("RpcPort", DataType::Int32),
            ("DataRegionNum", DataType::Int32),
            ("SchemaRegionNum", DataType::Int32),
        ],
        vec![vec![
            Cell::Int32(DATA_NODE_ID),
            text("Running"),
            text(instance.config.rpc_address.clone()),
            Cell::Int32(i32::from(instance.rpc_port)),
            Cell::Int32(databases),
            Cell::Int32(databases),
        ]],
    ))
}

/// `SHOW CONFIGNODES`: this instance as IoTDB's one ConfigNode (the leader of itself).
fn show_config_nodes(instance: &Instance) -> Table {
    typed_table(
        &[
            ("NodeID", DataType::Int32),
            ("Status", DataType::Text),
            ("InternalAddress", DataType::Text),
            ("InternalPort", DataType::Int32),
            ("Role", DataType::Text),
        ],
        vec![vec![
            Cell::Int32(CONFIG_NODE_ID),
            text("Running"),
            text(instance.config.internal_address.clone()),
            Cell::Int32(i32::from(instance.rpc_port)),
            text("Leader"),
        ]],
    )
}

/// `SHOW [SCHEMA | DATA] REGIONS [OF DATABASE …]`. Duet keeps every database in one storage, so
/// regions are a presentation: each database shows one schema region (id 2n) and one data region
/// (id 2n + 1), n being its place in name order, each with one series slot, led by this instance.
fn show_regions(
    instance: &Instance,
    kind: Option<RegionKind>,
    of_databases: &[duet_parser::Path],
) -> Result<Table, StatementError> {
    let wanted: Vec<String> = of_databases.iter().map(ToString::to_string).collect();
    let created =
        chrono::DateTime::from_timestamp_millis(instance.catalog.identity()?.created_at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
    let mut rows = Vec::new();
    for (n, database) in instance.catalog.databases()?.into_iter().enumerate() {
        if !wanted.is_empty() && !wanted.contains(&database) {
            continue;
        }
        let n = i32::try_from(n).unwrap_or(i32::MAX / 2);
        let regions = [
            (RegionKind::Schema, "SchemaRegion", 2 * n),
            (RegionKind::Data, "DataRegion", 2 * n + 1),
        ];
        for (region_kind, type_name, id) in regions {
            if kind.is_some_and(|k| k != region_kind) {
                continue;
            }
            rows.push(vec![
                Cell::Int32(id),
                text(type_name),
                text("Running"),
                text(database.clone()),
                Cell::Int32(1),
                Cell::Int64(i64::from(region_kind == RegionKind::Data)),
                Cell::Int32(DATA_NODE_ID),
                text(instance.config.rpc_address.clone()),
                Cell::Int32(i32::from(instance.rpc_port)),
                text("Leader"),
                text(created.clone()),
            ]);
        }
    }
    Ok(typed_table(
        &[
            ("RegionId", DataType::Int32),
            ("Type", DataType::Text),
            ("Status", DataType::Text),
            ("Database", DataType::Text),
            ("SeriesSlotNum", DataType::Int32),
            ("TimeSlotNum", DataType::Int64),
            ("DataNodeId", DataType::Int32),
            ("RpcAddress", DataType::Text),
            ("RpcPort", DataType::Int32),
            ("Role", DataType::Text),
            ("CreateTime", DataType::Text),
        ],
        rows,
    ))
}

/// `SHOW QUERIES`: IoTDB's columns (the start time as the time column); a user without MAINTAIN
/// sees their own queries.
fn show_queries(instance: &Instance, access: &Access) -> Table {
    let visible_to = (!access.has(Privilege::Maintain)).then_some(access.user());
    let queries = instance.queries.list(visible_to);
    let mut table = typed_table(
        &[
            ("QueryId", DataType::Text),
            ("DataNodeId", DataType::Int32),
            ("ElapsedTime", DataType::Float),
            ("Statement", DataType::Text),
        ],
        queries
            .iter()
            .map(|q| {
                vec![
                    text(q.id.clone()),
                    Cell::Int32(DATA_NODE_ID),
                    Cell::Float(q.elapsed_secs),
                    text(q.statement.clone()),
                ]
            })
            .collect(),
    );
    table.times = Some(queries.iter().map(|q| q.started_ms).collect());
    table
}
