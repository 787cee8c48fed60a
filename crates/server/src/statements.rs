//! Executes parsed statements for a logged-in user: users, cluster information, and pipes (through
//! the runtime's `PipeManager`). Each returns either nothing or a result table.

use duet_catalog::ROOT_USER;
use duet_parser::{RegionKind, Statement};
use duet_proto::status::StatusCode;
use duet_proto::types::{Column, ColumnValues, DataType, Table};
use duet_runtime::manager::ShowFilter;
use duet_runtime::PipeError;

use crate::instance::{Instance, BUILD_INFO, VERSION};
use crate::queries::KillError;

/// A statement's failure: the status code and message the client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    pub code: StatusCode,
    pub message: String,
}

impl StatementError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> StatementError {
        StatementError {
            code,
            message: message.into(),
        }
    }
}

impl From<PipeError> for StatementError {
    fn from(e: PipeError) -> Self {
        StatementError::new(e.status_code(), e.to_string())
    }
}

impl From<duet_catalog::Error> for StatementError {
    fn from(e: duet_catalog::Error) -> Self {
        use duet_catalog::Error as E;
        let code = match &e {
            E::UserNotExist(_) => StatusCode::UserNotExist,
            E::UserExists(_) => StatusCode::UserAlreadyExist,
            E::WrongPassword => StatusCode::WrongLoginPassword,
            E::InvalidUser(_) | E::InvalidPassword(_) => StatusCode::IllegalParameter,
            E::CannotDropRoot => StatusCode::NoPermission,
            E::PipeExists(_) => StatusCode::PipeError,
            E::PipeNotExist(_) => StatusCode::PipeNotExistError,
            _ => StatusCode::InternalServerError,
        };
        StatementError::new(code, e.to_string())
    }
}

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    Done,
    Table(Table),
    /// A query result produced page by page by the engine.
    Stream(duet_engine::QueryStream),
}

impl From<duet_engine::EngineError> for StatementError {
    fn from(e: duet_engine::EngineError) -> Self {
        StatementError::new(e.status_code(), e.to_string())
    }
}

fn no_permission() -> StatementError {
    StatementError::new(
        StatusCode::NoPermission,
        "No permissions for this operation, please add privilege SYSTEM",
    )
}

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

fn require_root(user: &str) -> Result<(), StatementError> {
    if user == ROOT_USER {
        Ok(())
    } else {
        Err(no_permission())
    }
}

/// Runs one statement as `user`.
pub async fn execute(
    instance: &Instance,
    user: &str,
    zone_id: &str,
    statement: &Statement,
) -> Result<Output, StatementError> {
    let pipes = &instance.pipes;
    if duet_engine::Engine::handles(statement) {
        let ctx = duet_engine::SessionContext {
            zone_id: zone_id.to_string(),
        };
        return Ok(match instance.engine.execute(&ctx, statement).await? {
            duet_engine::Output::Done => Output::Done,
            duet_engine::Output::Table(t) => Output::Table(t),
            duet_engine::Output::Stream(s) => Output::Stream(s),
        });
    }
    match statement {
        Statement::CreatePipe(stmt) => {
            require_root(user)?;
            pipes.create(stmt).await?;
            Ok(Output::Done)
        }
        Statement::AlterPipe(stmt) => {
            require_root(user)?;
            pipes.alter(stmt).await?;
            Ok(Output::Done)
        }
        Statement::StartPipe { name } => {
            require_root(user)?;
            pipes.start(name)?;
            Ok(Output::Done)
        }
        Statement::StopPipe { name } => {
            require_root(user)?;
            pipes.stop(name)?;
            Ok(Output::Done)
        }
        Statement::DropPipe { if_exists, name } => {
            require_root(user)?;
            pipes.drop_pipe(*if_exists, name).await?;
            Ok(Output::Done)
        }
        Statement::ShowPipes { sink_used_by } => {
            let filter = match sink_used_by {
                Some(name) => ShowFilter::SinkUsedBy(name.clone()),
                None => ShowFilter::All,
            };
            show_pipes(instance, user, &filter)
        }
        Statement::ShowPipe { name } => {
            show_pipes(instance, user, &ShowFilter::Named(name.clone()))
        }
        Statement::ShowCluster { details } => Ok(Output::Table(show_cluster(instance, *details))),
        Statement::ShowClusterId => Ok(Output::Table(Table::text(
            &["ClusterId"],
            vec![vec![instance.identity().cluster_id.clone()]],
        ))),
        Statement::ShowVersion => Ok(Output::Table(Table::text(
            &["Version", "BuildInfo"],
            vec![vec![VERSION.to_string(), BUILD_INFO.to_string()]],
        ))),
        Statement::ShowQueries => Ok(Output::Table(show_queries(instance, user))),
        Statement::KillQuery { id } => {
            let caller = (user != ROOT_USER).then_some(user);
            match instance.queries.kill(id.as_deref(), caller) {
                Ok(_) => Ok(Output::Done),
                Err(KillError::NoSuchQuery(id)) => Err(StatementError::new(
                    StatusCode::NoSuchQuery,
                    format!("no running query has the id {id}"),
                )),
                Err(KillError::NotOwner(id)) => Err(StatementError::new(
                    StatusCode::NoPermission,
                    format!("query {id} belongs to another user; only root may kill it"),
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
        Statement::CreateUser { name, password } => {
            require_root(user)?;
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
            // Every user may change their own password; only root may change others'.
            if name != user {
                require_root(user)?;
            }
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
            require_root(user)?;
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
        Statement::ListUser => {
            let users = if user == ROOT_USER {
                instance.catalog.list_users()?
            } else {
                vec![user.to_string()]
            };
            Ok(Output::Table(Table::text(
                &["User"],
                users.into_iter().map(|u| vec![u]).collect(),
            )))
        }
        // Data statements were handed to the engine above (`Engine::handles` is the one list).
        _ => Err(StatementError::new(
            StatusCode::InternalServerError,
            "a data statement reached the wrong executor",
        )),
    }
}

/// Pipes are visible to the administrator only (IoTDB shows them to users with the SYSTEM privilege).
fn show_pipes(
    instance: &Instance,
    user: &str,
    filter: &ShowFilter,
) -> Result<Output, StatementError> {
    // Counting a pipe's backlog reads the change log: do it where blocking is allowed.
    let mut table = tokio::task::block_in_place(|| instance.pipes.show(filter))?;
    if user != ROOT_USER {
        table = Table::text(&duet_runtime::manager::SHOW_PIPES_COLUMNS, Vec::new());
    }
    Ok(Output::Table(table))
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

/// `SHOW QUERIES`: IoTDB's columns (the start time as the time column); a user other than root sees
/// their own queries.
fn show_queries(instance: &Instance, user: &str) -> Table {
    let visible_to = (user != ROOT_USER).then_some(user);
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
