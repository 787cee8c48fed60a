//! Executes parsed statements for a logged-in user: users, cluster information, and pipes (through
//! the runtime's `PipeManager`). Each returns either nothing or a result table.

use duet_catalog::ROOT_USER;
use duet_parser::Statement;
use duet_proto::status::StatusCode;
use duet_proto::types::{Column, Table};
use duet_runtime::manager::ShowFilter;
use duet_runtime::PipeError;

use crate::instance::{Instance, BUILD_INFO, VERSION};

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
        Statement::CreateUser { name, password } => {
            require_root(user)?;
            instance.catalog.create_user(name, password)?;
            Ok(Output::Done)
        }
        Statement::AlterUserPassword { name, password } => {
            // Every user may change their own password; only root may change others'.
            if name != user {
                require_root(user)?;
            }
            instance.catalog.set_password(name, password)?;
            Ok(Output::Done)
        }
        Statement::DropUser { name } => {
            require_root(user)?;
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
    let roles = [(0, "ConfigNode"), (1, "DataNode")];
    let mut names = vec![
        "NodeID",
        "NodeType",
        "Status",
        "InternalAddress",
        "InternalPort",
    ];
    if details {
        names.extend([
            "ConfigConsensusPort",
            "RpcAddress",
            "RpcPort",
            "MppPort",
            "SchemaConsensusPort",
            "DataConsensusPort",
        ]);
    }
    names.extend(["Version", "BuildInfo"]);
    // Text cells after the two INT32 columns (NodeID, InternalPort), one row per role.
    let text_rows: Vec<Vec<String>> = roles
        .iter()
        .map(|(_, role)| {
            let is_data = *role == "DataNode";
            let data_only = |v: &str| {
                if is_data {
                    v.to_string()
                } else {
                    String::new()
                }
            };
            let mut row = vec![role.to_string(), "Running".to_string(), host.clone()];
            if details {
                row.push(if is_data { String::new() } else { port.clone() });
                row.push(data_only(&instance.config.rpc_address));
                row.extend([
                    data_only(&port),
                    data_only(&port),
                    data_only(&port),
                    data_only(&port),
                ]);
            }
            row.extend([VERSION.to_string(), BUILD_INFO.to_string()]);
            row
        })
        .collect();
    let n_text = text_rows.first().map(Vec::len).unwrap_or(0);
    let mut text_columns: Vec<Column> = (0..n_text)
        .map(|i| {
            Column::text(
                text_rows
                    .iter()
                    .map(|r| r.get(i).cloned().unwrap_or_default()),
            )
        })
        .collect();
    let rpc_port = i32::from(instance.rpc_port);
    let mut columns = vec![Column::int32(roles.iter().map(|(id, _)| *id).collect())];
    columns.extend(text_columns.drain(..3));
    columns.push(Column::int32(vec![rpc_port; roles.len()]));
    columns.extend(text_columns);
    Table {
        names: names.into_iter().map(String::from).collect(),
        columns,
        times: None,
        n_rows: roles.len(),
    }
}
