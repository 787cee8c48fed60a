//! Pipes as the catalog stores them: definition (source/processor/sink parameters in written order),
//! running state, last exception and acknowledged log position, so pipes resume where they were after a
//! restart.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, Transaction};

use crate::error::{Error, Result};
use crate::Catalog;

/// Whether a pipe should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeState {
    Running,
    Stopped,
}

impl PipeState {
    /// The IoTDB spelling, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PipeState::Running => "RUNNING",
            PipeState::Stopped => "STOPPED",
        }
    }
}

impl fmt::Display for PipeState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A string that is not a pipe state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pipe state '{0}' (expected RUNNING or STOPPED)")]
pub struct ParsePipeStateError(pub String);

impl FromStr for PipeState {
    type Err = ParsePipeStateError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("RUNNING") {
            Ok(PipeState::Running)
        } else if text.eq_ignore_ascii_case("STOPPED") {
            Ok(PipeState::Stopped)
        } else {
            Err(ParsePipeStateError(text.to_string()))
        }
    }
}

/// The last error a pipe reported, shown by `SHOW PIPES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeException {
    pub message: String,
    pub at_ms: i64,
}

/// What `CREATE PIPE` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipe {
    pub name: String,
    pub created_at_ms: i64,
    pub state: PipeState,
    pub source: Vec<(String, String)>,
    pub processor: Vec<(String, String)>,
    pub sink: Vec<(String, String)>,
    /// The log position the pipe starts after (the head when it was created).
    pub acknowledged_position: u64,
    /// Whether the data that existed before the pipe still has to be sent.
    pub history_done: bool,
}

/// A stored pipe with its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeRecord {
    pub name: String,
    pub created_at_ms: i64,
    pub state: PipeState,
    pub stopped_by_error: bool,
    pub source: Vec<(String, String)>,
    pub processor: Vec<(String, String)>,
    pub sink: Vec<(String, String)>,
    pub exception: Option<PipeException>,
    pub acknowledged_position: u64,
    /// Whether the pipe has sent the data that existed before it (its history).
    pub history_done: bool,
}

/// The three parameter lists, as named in the `stage` column.
const SOURCE: &str = "source";
const PROCESSOR: &str = "processor";
const SINK: &str = "sink";

impl Catalog {
    /// Records a new pipe; [`Error::PipeExists`] if the name is taken.
    pub fn create_pipe(&self, pipe: &NewPipe) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let inserted = transaction.execute(
            "INSERT INTO pipes (name, created_at_ms, state, acknowledged_position, history_done)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            (
                &pipe.name,
                pipe.created_at_ms,
                pipe.state.as_str(),
                position_to_sql(pipe.acknowledged_position),
                pipe.history_done,
            ),
        )?;
        if inserted == 0 {
            return Err(Error::PipeExists(pipe.name.clone()));
        }
        insert_parameters(
            &transaction,
            &pipe.name,
            &pipe.source,
            &pipe.processor,
            &pipe.sink,
        )?;
        transaction.commit()?;
        tracing::info!(pipe = %pipe.name, state = %pipe.state, "pipe created");
        Ok(())
    }

    /// One pipe, or `None` if there is no pipe by that name.
    pub fn pipe(&self, name: &str) -> Result<Option<PipeRecord>> {
        let connection = self.connection();
        let record = connection
            .query_row(
                &format!("SELECT {PIPE_COLUMNS} FROM pipes WHERE name = ?1"),
                [name],
                read_pipe_row,
            )
            .optional()?;
        match record {
            Some(row) => Ok(Some(complete_pipe(&connection, row)?)),
            None => Ok(None),
        }
    }

    /// All pipes, sorted by name in byte order.
    pub fn pipes(&self) -> Result<Vec<PipeRecord>> {
        let connection = self.connection();
        // SQLite's default BINARY collation compares UTF-8 bytes, which is the order promised here.
        let rows = {
            let mut statement =
                connection.prepare(&format!("SELECT {PIPE_COLUMNS} FROM pipes ORDER BY name"))?;
            let rows = statement
                .query_map([], read_pipe_row)?
                .collect::<rusqlite::Result<Vec<PipeRow>>>()?;
            rows
        };
        rows.into_iter()
            .map(|row| complete_pipe(&connection, row))
            .collect()
    }

    /// Sets whether the pipe should run, and whether an error (rather than a user) stopped it.
    pub fn set_pipe_state(
        &self,
        name: &str,
        state: PipeState,
        stopped_by_error: bool,
    ) -> Result<()> {
        let updated = self.connection().execute(
            "UPDATE pipes SET state = ?2, stopped_by_error = ?3 WHERE name = ?1",
            (name, state.as_str(), stopped_by_error),
        )?;
        require_pipe(updated, name)?;
        tracing::info!(pipe = name, %state, stopped_by_error, "pipe state changed");
        Ok(())
    }

    /// Records the pipe's latest exception, or clears it with `None`.
    pub fn set_pipe_exception(&self, name: &str, exception: Option<&PipeException>) -> Result<()> {
        let updated = self.connection().execute(
            "UPDATE pipes SET exception_message = ?2, exception_at_ms = ?3 WHERE name = ?1",
            (
                name,
                exception.map(|exception| exception.message.as_str()),
                exception.map(|exception| exception.at_ms),
            ),
        )?;
        require_pipe(updated, name)
    }

    /// Replaces all three parameter lists at once (`ALTER PIPE`), keeping the given order.
    pub fn replace_pipe_parameters(
        &self,
        name: &str,
        source: &[(String, String)],
        processor: &[(String, String)],
        sink: &[(String, String)],
    ) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let exists = transaction
            .query_row("SELECT 1 FROM pipes WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::PipeNotExist(name.to_string()));
        }
        transaction.execute("DELETE FROM pipe_parameters WHERE pipe = ?1", [name])?;
        insert_parameters(&transaction, name, source, processor, sink)?;
        transaction.commit()?;
        tracing::info!(pipe = name, "pipe parameters replaced");
        Ok(())
    }

    /// Removes a pipe and its parameters; `false` if there was no such pipe.
    pub fn drop_pipe(&self, name: &str) -> Result<bool> {
        // The parameters go with it through ON DELETE CASCADE.
        let deleted = self
            .connection()
            .execute("DELETE FROM pipes WHERE name = ?1", [name])?;
        if deleted > 0 {
            tracing::info!(pipe = name, "pipe dropped");
        }
        Ok(deleted > 0)
    }

    /// Records that the pipe's history has been sent (or must be sent again, with `false`).
    pub fn set_pipe_history_done(&self, name: &str, done: bool) -> Result<()> {
        let updated = self.connection().execute(
            "UPDATE pipes SET history_done = ?2 WHERE name = ?1",
            (name, done),
        )?;
        require_pipe(updated, name)
    }

    /// Records the log position the pipe's sink has acknowledged.
    pub fn set_pipe_progress(&self, name: &str, acknowledged_position: u64) -> Result<()> {
        let updated = self.connection().execute(
            "UPDATE pipes SET acknowledged_position = ?2 WHERE name = ?1",
            (name, position_to_sql(acknowledged_position)),
        )?;
        require_pipe(updated, name)
    }
}

/// Columns read by [`read_pipe_row`], in its order.
const PIPE_COLUMNS: &str = "name, created_at_ms, state, stopped_by_error, exception_message, \
                            exception_at_ms, acknowledged_position, history_done";

/// A `pipes` row before its parameters are attached.
struct PipeRow {
    name: String,
    created_at_ms: i64,
    state: String,
    stopped_by_error: bool,
    exception_message: Option<String>,
    exception_at_ms: Option<i64>,
    acknowledged_position: i64,
    history_done: bool,
}

fn read_pipe_row(row: &Row<'_>) -> rusqlite::Result<PipeRow> {
    Ok(PipeRow {
        name: row.get(0)?,
        created_at_ms: row.get(1)?,
        state: row.get(2)?,
        stopped_by_error: row.get(3)?,
        exception_message: row.get(4)?,
        exception_at_ms: row.get(5)?,
        acknowledged_position: row.get(6)?,
        history_done: row.get(7)?,
    })
}

/// Turns a stored row into a record, loading its parameters.
fn complete_pipe(connection: &Connection, row: PipeRow) -> Result<PipeRecord> {
    let state = row
        .state
        .parse::<PipeState>()
        .map_err(|error| Error::CorruptCatalog(format!("pipe {}: {error}", row.name)))?;
    let exception = match (row.exception_message, row.exception_at_ms) {
        (Some(message), Some(at_ms)) => Some(PipeException { message, at_ms }),
        _ => None,
    };
    let mut record = PipeRecord {
        name: row.name,
        created_at_ms: row.created_at_ms,
        state,
        stopped_by_error: row.stopped_by_error,
        source: Vec::new(),
        processor: Vec::new(),
        sink: Vec::new(),
        exception,
        acknowledged_position: position_from_sql(row.acknowledged_position),
        history_done: row.history_done,
    };
    let mut statement = connection.prepare_cached(
        "SELECT stage, key, value FROM pipe_parameters WHERE pipe = ?1 ORDER BY stage, position",
    )?;
    let mut parameters = statement.query([&record.name])?;
    while let Some(parameter) = parameters.next()? {
        let stage: String = parameter.get(0)?;
        let entry = (parameter.get(1)?, parameter.get(2)?);
        match stage.as_str() {
            SOURCE => record.source.push(entry),
            PROCESSOR => record.processor.push(entry),
            SINK => record.sink.push(entry),
            other => {
                return Err(Error::CorruptCatalog(format!(
                    "pipe {}: unknown parameter stage '{other}'",
                    record.name
                )))
            }
        }
    }
    Ok(record)
}

fn insert_parameters(
    transaction: &Transaction<'_>,
    pipe: &str,
    source: &[(String, String)],
    processor: &[(String, String)],
    sink: &[(String, String)],
) -> Result<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO pipe_parameters (pipe, stage, position, key, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (stage, parameters) in [(SOURCE, source), (PROCESSOR, processor), (SINK, sink)] {
        for (position, (key, value)) in parameters.iter().enumerate() {
            let position = i64::try_from(position)
                .map_err(|_| Error::CorruptCatalog("too many pipe parameters".to_string()))?;
            statement.execute((pipe, stage, position, key, value))?;
        }
    }
    Ok(())
}

/// Turns "no row updated" into [`Error::PipeNotExist`].
fn require_pipe(updated_rows: usize, name: &str) -> Result<()> {
    if updated_rows == 0 {
        return Err(Error::PipeNotExist(name.to_string()));
    }
    Ok(())
}

/// SQLite integers are signed 64-bit; log positions are u64. Storing the same 64 bits round-trips every
/// value exactly (positions beyond i64::MAX would merely look negative to someone reading the file).
fn position_to_sql(position: u64) -> i64 {
    i64::from_ne_bytes(position.to_ne_bytes())
}

fn position_from_sql(stored: i64) -> u64 {
    u64::from_ne_bytes(stored.to_ne_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tests::{open_fresh, settings};

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn new_pipe(name: &str) -> NewPipe {
        NewPipe {
            name: name.to_string(),
            created_at_ms: 1_700_000_000_000,
            state: PipeState::Running,
            // Deliberately not in key order: written order must survive.
            source: pairs(&[
                ("source.pattern", "root.sg"),
                ("source.history.enable", "true"),
            ]),
            processor: Vec::new(),
            sink: pairs(&[
                ("sink", "iotdb-thrift-sink"),
                ("sink.node-urls", "10.0.0.2:6667"),
                ("sink.batch.enable", "false"),
            ]),
            acknowledged_position: 0,
            history_done: false,
        }
    }

    #[test]
    fn pipe_state_text() {
        assert_eq!(PipeState::Running.as_str(), "RUNNING");
        assert_eq!(PipeState::Stopped.to_string(), "STOPPED");
        assert_eq!("RUNNING".parse::<PipeState>().unwrap(), PipeState::Running);
        assert_eq!("stopped".parse::<PipeState>().unwrap(), PipeState::Stopped);
        assert!("DROPPED".parse::<PipeState>().is_err());
    }

    #[test]
    fn create_get_and_duplicate() {
        let (_dir, catalog) = open_fresh();
        assert_eq!(catalog.pipe("p1").unwrap(), None);
        let pipe = new_pipe("p1");
        catalog.create_pipe(&pipe).unwrap();
        let record = catalog.pipe("p1").unwrap().unwrap();
        assert_eq!(
            record,
            PipeRecord {
                name: "p1".to_string(),
                created_at_ms: pipe.created_at_ms,
                state: PipeState::Running,
                stopped_by_error: false,
                source: pipe.source.clone(),
                processor: Vec::new(),
                sink: pipe.sink.clone(),
                exception: None,
                acknowledged_position: 0,
                history_done: false,
            }
        );

        let mut duplicate = new_pipe("p1");
        duplicate.sink = pairs(&[("sink", "other")]);
        let error = catalog.create_pipe(&duplicate).unwrap_err();
        assert!(matches!(&error, Error::PipeExists(name) if name == "p1"));
        assert_eq!(
            error.to_string(),
            "Failed to create pipe p1, the pipe with the same name has been created"
        );
        // The failed create left the original untouched.
        assert_eq!(catalog.pipe("p1").unwrap().unwrap(), record);
    }

    #[test]
    fn list_is_sorted_by_name_bytes() {
        let (_dir, catalog) = open_fresh();
        for name in ["b", "a_2", "A", "a", "é"] {
            catalog.create_pipe(&new_pipe(name)).unwrap();
        }
        let names: Vec<String> = catalog
            .pipes()
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, vec!["A", "a", "a_2", "b", "é"]);
        assert!(catalog.pipes().unwrap().iter().all(|p| p.sink.len() == 3));
    }

    #[test]
    fn state_exception_and_progress() {
        let (_dir, catalog) = open_fresh();
        catalog.create_pipe(&new_pipe("p")).unwrap();

        catalog
            .set_pipe_state("p", PipeState::Stopped, true)
            .unwrap();
        let record = catalog.pipe("p").unwrap().unwrap();
        assert_eq!(record.state, PipeState::Stopped);
        assert!(record.stopped_by_error);
        catalog
            .set_pipe_state("p", PipeState::Running, false)
            .unwrap();
        let record = catalog.pipe("p").unwrap().unwrap();
        assert_eq!(record.state, PipeState::Running);
        assert!(!record.stopped_by_error);

        let exception = PipeException {
            message: "connection refused: 10.0.0.2:6667".to_string(),
            at_ms: 1_700_000_000_123,
        };
        catalog.set_pipe_exception("p", Some(&exception)).unwrap();
        assert_eq!(
            catalog.pipe("p").unwrap().unwrap().exception,
            Some(exception)
        );
        catalog.set_pipe_exception("p", None).unwrap();
        assert_eq!(catalog.pipe("p").unwrap().unwrap().exception, None);

        catalog.set_pipe_progress("p", 42).unwrap();
        assert_eq!(
            catalog.pipe("p").unwrap().unwrap().acknowledged_position,
            42
        );
        catalog.set_pipe_progress("p", u64::MAX).unwrap();
        assert_eq!(
            catalog.pipe("p").unwrap().unwrap().acknowledged_position,
            u64::MAX
        );

        for result in [
            catalog.set_pipe_state("ghost", PipeState::Stopped, false),
            catalog.set_pipe_exception("ghost", None),
            catalog.set_pipe_progress("ghost", 1),
            catalog.replace_pipe_parameters("ghost", &[], &[], &[]),
        ] {
            match result {
                Err(error @ Error::PipeNotExist(_)) => {
                    assert_eq!(error.to_string(), "ghost does not exist")
                }
                other => panic!("expected PipeNotExist, got {other:?}"),
            }
        }
    }

    #[test]
    fn replace_parameters_keeps_written_order() {
        let (_dir, catalog) = open_fresh();
        catalog.create_pipe(&new_pipe("p")).unwrap();
        let source = pairs(&[("z", "1"), ("a", "2"), ("m", "3")]);
        let processor = pairs(&[("processor", "do-nothing-processor")]);
        let sink = pairs(&[("sink.node-urls", "h:1"), ("sink", "iotdb-thrift-sink")]);
        catalog
            .replace_pipe_parameters("p", &source, &processor, &sink)
            .unwrap();
        let record = catalog.pipe("p").unwrap().unwrap();
        assert_eq!(record.source, source);
        assert_eq!(record.processor, processor);
        assert_eq!(record.sink, sink);

        // Replacing with empty lists clears them.
        catalog
            .replace_pipe_parameters("p", &[], &[], &sink)
            .unwrap();
        let record = catalog.pipe("p").unwrap().unwrap();
        assert!(record.source.is_empty() && record.processor.is_empty());
        assert_eq!(record.sink, sink);
    }

    #[test]
    fn drop_removes_pipe_and_parameters() {
        let (_dir, catalog) = open_fresh();
        catalog.create_pipe(&new_pipe("p")).unwrap();
        catalog.create_pipe(&new_pipe("q")).unwrap();
        assert!(catalog.drop_pipe("p").unwrap());
        assert!(!catalog.drop_pipe("p").unwrap());
        assert_eq!(catalog.pipe("p").unwrap(), None);
        let orphaned: i64 = catalog
            .connection()
            .query_row(
                "SELECT count(*) FROM pipe_parameters WHERE pipe = 'p'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(orphaned, 0);
        // A pipe recreated under the same name starts clean.
        catalog.create_pipe(&new_pipe("p")).unwrap();
        assert_eq!(catalog.pipe("p").unwrap().unwrap().sink.len(), 3);
        assert_eq!(catalog.pipes().unwrap().len(), 2);
    }

    #[test]
    fn pipes_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let expected = {
            let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
            catalog.create_pipe(&new_pipe("keep")).unwrap();
            catalog.create_pipe(&new_pipe("gone")).unwrap();
            catalog.drop_pipe("gone").unwrap();
            catalog
                .set_pipe_state("keep", PipeState::Stopped, true)
                .unwrap();
            catalog
                .set_pipe_exception(
                    "keep",
                    Some(&PipeException {
                        message: "boom".to_string(),
                        at_ms: 7,
                    }),
                )
                .unwrap();
            catalog
                .replace_pipe_parameters("keep", &pairs(&[("s", "1")]), &[], &pairs(&[("k", "v")]))
                .unwrap();
            catalog.set_pipe_progress("keep", 1234).unwrap();
            catalog.pipes().unwrap()
        };
        let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        let reloaded = catalog.pipes().unwrap();
        assert_eq!(reloaded, expected);
        assert_eq!(reloaded.len(), 1);
        let keep = &reloaded[0];
        assert_eq!(keep.state, PipeState::Stopped);
        assert!(keep.stopped_by_error);
        assert_eq!(
            keep.exception.as_ref().map(|e| e.message.as_str()),
            Some("boom")
        );
        assert_eq!(keep.acknowledged_position, 1234);
        assert_eq!(keep.sink, pairs(&[("k", "v")]));
    }
}
