//! [`PipeManager`] executes the pipe statements: it validates parameters, checks the peer by a
//! handshake at `CREATE`/`ALTER`, and keeps every pipe's definition and state in the catalog.

use std::sync::Arc;

use duet_catalog::{Catalog, NewPipe, PipeRecord, PipeState};
use duet_parser::{AlterClause, AlterMode, AlterPipe, Attributes, CreatePipe};
use duet_proto::types::Table;

use crate::config::{self, SinkKind};
use crate::handshake;
use crate::params::Parameters;
use crate::{PipeError, Result};

/// What this instance tells peers about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub cluster_id: String,
    pub timestamp_precision: String,
    pub version: String,
}

/// The columns of `SHOW PIPES`, in IoTDB's order (pipe reference §3.1).
pub const SHOW_PIPES_COLUMNS: [&str; 9] = [
    "ID",
    "CreationTime",
    "State",
    "PipeSource",
    "PipeProcessor",
    "PipeSink",
    "ExceptionMessage",
    "RemainingEventCount",
    "EstimatedRemainingSeconds",
];

/// Which pipes `SHOW PIPES` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowFilter {
    All,
    /// `SHOW PIPE name`.
    Named(String),
    /// `SHOW PIPES WHERE SINK USED BY name`: pipes whose sink parameters equal that pipe's.
    SinkUsedBy(String),
}

/// Executes pipe statements. Cheap to clone.
#[derive(Clone)]
pub struct PipeManager {
    catalog: Arc<Catalog>,
    identity: ServerIdentity,
}

fn params(attributes: &Attributes) -> Parameters {
    Parameters::new(attributes.0.clone())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// IoTDB's `DateTimeUtils.convertLongToDate`: local time with milliseconds, no offset.
fn format_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string(),
        None => ms.to_string(),
    }
}

impl PipeManager {
    pub fn new(catalog: Arc<Catalog>, identity: ServerIdentity) -> PipeManager {
        PipeManager { catalog, identity }
    }

    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// Validates all three stages; for a thrift sink, also handshakes with the peer so that a pipe that
    /// could never work is refused at once (IoTDB validates the same way since PR #11655).
    async fn validate(
        &self,
        name: &str,
        op: &str,
        source: &Parameters,
        processor: &Parameters,
        sink: &Parameters,
    ) -> Result<()> {
        config::source(source)?;
        config::processor(processor)?;
        let sink = config::sink(sink)?;
        if sink.kind == SinkKind::IotdbThrift {
            let connection = handshake::connect(&self.identity, &sink)
                .await
                .map_err(|e| {
                    PipeError::Invalid(format!(
                        "Failed to {op} pipe {name}, because the sink validation failed: {e}"
                    ))
                })?;
            drop(connection);
        }
        Ok(())
    }

    /// `CREATE PIPE`: a new pipe starts RUNNING.
    pub async fn create(&self, stmt: &CreatePipe) -> Result<()> {
        let exists_message = || {
            format!(
                "Failed to create pipe {}, the pipe with the same name has been created",
                stmt.name
            )
        };
        if self.catalog.pipe(&stmt.name)?.is_some() {
            return if stmt.if_not_exists {
                Ok(())
            } else {
                Err(PipeError::Invalid(exists_message()))
            };
        }
        let source = stmt.source.as_ref().map(params).unwrap_or_default();
        let processor = stmt.processor.as_ref().map(params).unwrap_or_default();
        let sink = params(&stmt.sink);
        self.validate(&stmt.name, "create", &source, &processor, &sink)
            .await?;
        let pipe = NewPipe {
            name: stmt.name.clone(),
            created_at_ms: now_ms(),
            state: PipeState::Running,
            source: source.0,
            processor: processor.0,
            sink: sink.0,
        };
        match self.catalog.create_pipe(&pipe) {
            Ok(()) => Ok(()),
            // Another session created it while we were handshaking.
            Err(duet_catalog::Error::PipeExists(_)) if stmt.if_not_exists => Ok(()),
            Err(duet_catalog::Error::PipeExists(_)) => Err(PipeError::Invalid(exists_message())),
            Err(e) => Err(e.into()),
        }
    }

    fn existing(&self, op: &'static str, name: &str) -> Result<PipeRecord> {
        self.catalog.pipe(name)?.ok_or_else(|| PipeError::NotExist {
            op,
            name: name.to_string(),
        })
    }

    /// `ALTER PIPE`: MODIFY merges keys, REPLACE swaps the stage's map; state and progress are kept.
    pub async fn alter(&self, stmt: &AlterPipe) -> Result<()> {
        let record = match self.catalog.pipe(&stmt.name)? {
            Some(r) => r,
            None if stmt.if_exists => return Ok(()),
            None => {
                return Err(PipeError::NotExist {
                    op: "alter",
                    name: stmt.name.clone(),
                })
            }
        };
        let apply = |old: Vec<(String, String)>, clause: &Option<AlterClause>| -> Parameters {
            let old = Parameters::new(old);
            match clause {
                None => old,
                Some(AlterClause {
                    mode: AlterMode::Modify,
                    attributes,
                }) => old.modified_by(&params(attributes)),
                Some(AlterClause {
                    mode: AlterMode::Replace,
                    attributes,
                }) => params(attributes),
            }
        };
        let source = apply(record.source, &stmt.source);
        let processor = apply(record.processor, &stmt.processor);
        let sink = apply(record.sink, &stmt.sink);
        self.validate(&stmt.name, "alter", &source, &processor, &sink)
            .await?;
        self.catalog
            .replace_pipe_parameters(&stmt.name, &source.0, &processor.0, &sink.0)?;
        Ok(())
    }

    /// `START PIPE`: RUNNING, and past exceptions are cleared (as IoTDB does).
    pub fn start(&self, name: &str) -> Result<()> {
        self.existing("start", name)?;
        self.catalog
            .set_pipe_state(name, PipeState::Running, false)?;
        self.catalog.set_pipe_exception(name, None)?;
        Ok(())
    }

    /// `STOP PIPE`: STOPPED by the user (an automatic restart will not touch it).
    pub fn stop(&self, name: &str) -> Result<()> {
        self.existing("stop", name)?;
        self.catalog
            .set_pipe_state(name, PipeState::Stopped, false)?;
        Ok(())
    }

    /// `DROP PIPE`.
    pub fn drop_pipe(&self, if_exists: bool, name: &str) -> Result<()> {
        if !self.catalog.drop_pipe(name)? && !if_exists {
            return Err(PipeError::NotExist {
                op: "drop",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// `SHOW PIPES` / `SHOW PIPE name`: rows sorted by name.
    pub fn show(&self, filter: &ShowFilter) -> Result<Table> {
        let pipes = self.catalog.pipes()?;
        let sink_of = |r: &PipeRecord| Parameters::new(r.sink.clone()).display();
        let selected: Vec<&PipeRecord> = match filter {
            ShowFilter::All => pipes.iter().collect(),
            ShowFilter::Named(name) => pipes.iter().filter(|p| &p.name == name).collect(),
            ShowFilter::SinkUsedBy(name) => match pipes.iter().find(|p| &p.name == name) {
                Some(reference) => {
                    let wanted = sink_of(reference);
                    pipes.iter().filter(|p| sink_of(p) == wanted).collect()
                }
                None => Vec::new(),
            },
        };
        let rows = selected
            .into_iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    format_time(p.created_at_ms),
                    p.state.as_str().to_string(),
                    Parameters::new(p.source.clone()).display(),
                    Parameters::new(p.processor.clone()).display(),
                    sink_of(p),
                    p.exception
                        .as_ref()
                        .map(|e| format!("{}, {}", format_time(e.at_ms), e.message))
                        .unwrap_or_default(),
                    // No change log exists yet, so no pipe has anything left to send.
                    "0".to_string(),
                    "0.00".to_string(),
                ]
            })
            .collect();
        Ok(Table::text(&SHOW_PIPES_COLUMNS, rows))
    }
}
