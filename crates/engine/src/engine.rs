//! [`Engine`], the front door: opened over the catalog and the storage, it executes data statements
//! and hands out result tables and page streams.

use std::sync::{Arc, RwLock};

use duet_catalog::Catalog;
use duet_parser::{BinaryOp, Expr, InsertTime, Path, Statement, TimeShift, TimeValue};
use duet_proto::types::{Column, DataType, Table};
use duet_storage::{DeleteOp, Op, Storage};

use crate::limits::{QueryControl, QueryControlRef, QueryLimits, Reservation};
use crate::paths;
use crate::query::{self, PageSource};
use crate::schema::{default_encoding, Schema, SeriesInfo};
use crate::schema_sync::SchemaChange;
use crate::time::{Precision, Zone};
use crate::values::Cell;
use crate::write::{DeviceWrite, WriteColumn};
use crate::{EngineError, Result};

/// What a session contributes to a statement: the time zone for datetime literals, and the read
/// scopes of its user's privileges.
#[derive(Debug, Clone, Default)]
pub struct SessionContext {
    /// As the client set it (openSession, setTimeZone); the session accepts only ids [`Zone::parse`]
    /// reads.
    pub zone_id: String,
    /// What queries may read (READ_DATA); `None`: everything (root).
    pub read_data: Option<std::sync::Arc<crate::scope::ReadScope>>,
    /// What SHOW and COUNT may list (READ_SCHEMA); `None`: everything (root).
    pub read_schema: Option<std::sync::Arc<crate::scope::ReadScope>>,
}

impl SessionContext {
    /// The session's zone.
    pub fn zone(&self) -> Result<Zone> {
        Zone::parse(&self.zone_id).map_err(EngineError::IllegalParameter)
    }
}

/// A query result produced page by page, so memory stays bounded however large it is.
pub struct QueryStream {
    pub names: Vec<String>,
    pub types: Vec<DataType>,
    /// Whether rows carry a time column.
    pub has_time: bool,
    pub source: Box<dyn PageSource>,
    /// The query's limits: pages check its deadline, and cancelling it stops the query.
    pub control: QueryControlRef,
    /// Budget charged for as long as the stream lives (its resolved series).
    _held: Vec<Reservation>,
}

impl QueryStream {
    pub(crate) fn new(
        names: Vec<String>,
        types: Vec<DataType>,
        has_time: bool,
        source: Box<dyn PageSource>,
        control: QueryControlRef,
        held: Vec<Reservation>,
    ) -> QueryStream {
        QueryStream {
            names,
            types,
            has_time,
            source,
            control,
            _held: held,
        }
    }
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    Done,
    Table(Table),
    Stream(QueryStream),
}

/// The engine, shared as `Arc<Engine>`. A query's result stream outlives the call that made it and
/// holds the engine: the statement methods that may return one take `self: &Arc<Engine>`, so the
/// stream gets its `Arc` from the caller and the engine needs no handle to itself.
pub struct Engine {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) storage: Storage,
    pub(crate) schema: RwLock<Schema>,
    /// Units of the instance's timestamps per millisecond (1 for ms, 1000 for us, 1e6 for ns).
    pub(crate) units_per_ms: i64,
    /// TTL rules, shared with the storage's merges (which drop what they expire).
    pub(crate) ttl: crate::ttl::SharedTtlRules,
    /// Held across a schema change, local or replicated, from the check of an object's version to
    /// the record of the new one, so the two kinds never interleave on one object.
    pub(crate) schema_changes: tokio::sync::RwLock<()>,
    /// Replicated points dropped on arrival because their type lost to the series' type here (see
    /// `replicate`); each drop is also logged at warn.
    pub(crate) points_dropped_for_type: std::sync::atomic::AtomicU64,
}

impl Engine {
    pub fn open(
        catalog: Arc<Catalog>,
        storage: Storage,
        timestamp_precision: &str,
    ) -> Result<Arc<Engine>> {
        let schema = Schema::load(&catalog)?;
        let units_per_ms = match timestamp_precision {
            "us" => 1_000,
            "ns" => 1_000_000,
            _ => 1,
        };
        let ttl: crate::ttl::SharedTtlRules = Arc::new(RwLock::new(Arc::new(
            crate::ttl::TtlRules::new(&catalog.ttl_rules()?),
        )));
        let merge_rules = ttl.clone();
        storage.set_retention(Box::new(move |series| {
            let rules = merge_rules
                .read()
                .map(|r| r.clone())
                .unwrap_or_else(|e| e.into_inner().clone());
            let now = chrono::Utc::now()
                .timestamp_millis()
                .saturating_mul(units_per_ms);
            rules.floor_for_series(series, now, units_per_ms)
        }));
        Ok(Arc::new(Engine {
            catalog,
            storage,
            schema: RwLock::new(schema),
            units_per_ms,
            ttl,
            schema_changes: tokio::sync::RwLock::new(()),
            points_dropped_for_type: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn schema_read(&self) -> Result<std::sync::RwLockReadGuard<'_, Schema>> {
        self.schema
            .read()
            .map_err(|_| EngineError::Internal("schema lock poisoned".into()))
    }

    pub(crate) fn schema_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Schema>> {
        self.schema
            .write()
            .map_err(|_| EngineError::Internal("schema lock poisoned".into()))
    }

    /// The current TTL rules.
    pub(crate) fn ttl_rules(&self) -> Arc<crate::ttl::TtlRules> {
        match self.ttl.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The time before which the points of `device`'s series (its key, as `SeriesInfo::device`)
    /// have expired for a query that started at `started_ms` (so one query sees one cut-off);
    /// `None` when no TTL applies.
    pub(crate) fn ttl_floor(&self, device: &str, started_ms: i64) -> Option<i64> {
        let rules = self.ttl_rules();
        if rules.is_empty() {
            return None;
        }
        let now = started_ms.saturating_mul(self.units_per_ms);
        rules.floor_for_device(&paths::split(device), now, self.units_per_ms)
    }

    pub(crate) fn reload_ttl(&self) -> Result<()> {
        let rules = Arc::new(crate::ttl::TtlRules::new(&self.catalog.ttl_rules()?));
        match self.ttl.write() {
            Ok(mut current) => *current = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
        Ok(())
    }

    /// The rule patterns a TTL statement's path stands for.
    fn ttl_patterns(&self, path: &duet_parser::Path) -> Result<Vec<String>> {
        let schema = self.schema_read()?;
        crate::ttl::rule_patterns(path, |p| schema.databases().any(|db| db == p))
    }

    /// `SHOW ALL TTL` / `SHOW TTL ON pattern`: IoTDB 2.0's columns (Device, TTL(ms) as text: a
    /// number or INF), one row per rule the pattern covers.
    fn show_ttl(&self, path: &Option<duet_parser::Path>) -> Result<Output> {
        let rows: Vec<Vec<String>> = self
            .catalog
            .ttl_rules()?
            .into_iter()
            .filter(|(pattern, _)| {
                let nodes = paths::split(pattern);
                // A rule shows where the session may read the schema: its concrete prefix leads
                // to something readable.
                let concrete: Vec<&String> =
                    nodes.iter().take_while(|n| !n.contains('*')).collect();
                path.as_ref().is_none_or(|p| paths::matches(&p.0, &nodes))
                    && crate::scope::node_visible(&concrete)
            })
            .map(|(pattern, ttl)| {
                let ttl = if ttl == crate::ttl::INFINITE_TTL_MS {
                    "INF".to_string()
                } else {
                    ttl.to_string()
                };
                vec![pattern, ttl]
            })
            .collect();
        Ok(Output::Table(Table::text(&["Device", "TTL(ms)"], rows)))
    }

    /// Executes a data statement (a `SELECT`'s stream holds the engine, hence the `Arc`).
    pub async fn execute(
        self: &Arc<Self>,
        ctx: &SessionContext,
        statement: &Statement,
    ) -> Result<Output> {
        // Statements whose change replicates hold the schema-change lock to the end (see
        // `schema_sync`).
        let _schema_change = match statement {
            Statement::SetTtl { .. }
            | Statement::UnsetTtl { .. }
            | Statement::CreateDatabase { .. }
            | Statement::DropDatabase { .. }
            | Statement::CreateTimeseries { .. }
            | Statement::CreateAlignedTimeseries { .. }
            | Statement::DeleteTimeseries { .. } => Some(self.schema_changes.write().await),
            _ => None,
        };
        // The statements that list the schema see the session's READ_SCHEMA scope. Their arms
        // below never await, so the thread's scope cannot leak into another task.
        let _scope = matches!(statement, duet_parser::schema_listing_statement!())
            .then(|| crate::scope::enter(ctx.read_schema.clone()));
        match statement {
            Statement::SetTtl { path, ttl_ms } => {
                let patterns = self.ttl_patterns(path)?;
                let ttl = match ttl_ms {
                    Some(ms) => i64::try_from(*ms).unwrap_or(crate::ttl::INFINITE_TTL_MS),
                    None => crate::ttl::INFINITE_TTL_MS,
                };
                // Checked, logged, then applied (see `schema_sync`): a failed log write changes
                // nothing, and the catalog's limit on rules refuses before anything is logged.
                let rules = self.catalog.ttl_rules()?;
                let mut total: std::collections::BTreeSet<&str> =
                    rules.iter().map(|(p, _)| p.as_str()).collect();
                total.extend(patterns.iter().map(String::as_str));
                if total.len() > duet_catalog::MAX_TTL_RULES {
                    return Err(
                        duet_catalog::Error::TooManyTtlRules(duet_catalog::MAX_TTL_RULES).into(),
                    );
                }
                self.log_schema_change(
                    SchemaChange::SetTtl {
                        patterns: patterns.clone(),
                        ttl_ms: ttl,
                    },
                    Vec::new(),
                )
                .await?;
                self.catalog.set_ttl(&patterns, ttl)?;
                self.reload_ttl()?;
                Ok(Output::Done)
            }
            Statement::UnsetTtl { path } => {
                let patterns = self.ttl_patterns(path)?;
                self.log_schema_change(
                    SchemaChange::UnsetTtl {
                        patterns: patterns.clone(),
                    },
                    Vec::new(),
                )
                .await?;
                self.catalog.unset_ttl(&patterns)?;
                self.reload_ttl()?;
                Ok(Output::Done)
            }
            Statement::ShowTtl { path } => self.show_ttl(path),
            Statement::CreateDatabase { path } => {
                let path = concrete(path)?;
                self.create_database_logged(path).await?;
                Ok(Output::Done)
            }
            Statement::DropDatabase { paths } => {
                for pattern in paths {
                    let targets: Vec<String> = self
                        .schema_read()?
                        .databases()
                        .filter(|db| paths::matches(&pattern.0, &paths::split(db)))
                        .cloned()
                        .collect();
                    if targets.is_empty() {
                        return Err(EngineError::PathNotExist(format!(
                            "Path [{pattern}] does not exist"
                        )));
                    }
                    for db in targets {
                        self.drop_database_logged(&db).await?;
                    }
                }
                Ok(Output::Done)
            }
            Statement::ShowDatabases { path } => {
                let schema = self.schema_read()?;
                let dbs: Vec<&String> = schema
                    .databases()
                    .filter(|db| {
                        path.as_ref().is_none_or(|p| matches_db_pattern(p, db))
                            && crate::scope::node_visible(&paths::split(db))
                    })
                    .collect();
                let n = dbs.len();
                Ok(Output::Table(Table {
                    names: vec![
                        "Database".into(),
                        "SchemaReplicationFactor".into(),
                        "DataReplicationFactor".into(),
                        "TimePartitionInterval".into(),
                    ],
                    columns: vec![
                        Column::text(dbs.iter().map(|s| s.as_str())),
                        Column::int32(vec![1; n]),
                        Column::int32(vec![1; n]),
                        int64_column(vec![604_800_000 * self.units_per_ms; n]),
                    ],
                    times: None,
                    n_rows: n,
                }))
            }
            Statement::CreateTimeseries {
                path,
                data_type,
                attributes,
            } => {
                let nodes = match concrete(path) {
                    Ok(p) => paths::split(&p),
                    Err(e) => return Err(e),
                };
                if nodes.len() < 3 {
                    return Err(EngineError::IllegalPath(format!("{path} is not a legal path: a series is root.<database>.<device…>.<measurement>")));
                }
                self.schema_read()?
                    .check_no_template_at(&paths::join(&nodes))?;
                let (device_nodes, measurement) = nodes.split_at(nodes.len() - 1);
                let t = *data_type;
                let (encoding, compressor) = encoding_and_compressor(attributes, t);
                let device = paths::join(device_nodes);
                let specs = [(measurement[0].clone(), t, encoding, compressor)];
                self.create_series_logged(&device, false, &specs).await?;
                Ok(Output::Done)
            }
            Statement::CreateAlignedTimeseries { device, columns } => {
                let device = concrete(device)?;
                for c in columns {
                    self.schema_read()?
                        .check_no_template_at(&format!("{device}.{}", c.name))?;
                }
                let specs: Vec<(String, DataType, String, String)> = columns
                    .iter()
                    .map(|c| {
                        let t = c.data_type;
                        let (e, comp) = encoding_and_compressor(&c.attributes, t);
                        (c.name.clone(), t, e, comp)
                    })
                    .collect();
                self.create_series_logged(&device, true, &specs).await?;
                Ok(Output::Done)
            }
            Statement::ShowTimeseries { path } => {
                let pattern = pattern_or_all(path);
                let series = self.schema_read()?.matching_series(&pattern.0);
                Ok(Output::Table(show_timeseries(&series)))
            }
            Statement::ShowDevices { path } => {
                let pattern = pattern_or_all(path);
                let schema = self.schema_read()?;
                let devices = schema.matching_devices(&pattern.0);
                let n = devices.len();
                let ttl = self.ttl_rules();
                Ok(Output::Table(Table {
                    names: vec![
                        "Device".into(),
                        "IsAligned".into(),
                        "Template".into(),
                        "TTL(ms)".into(),
                    ],
                    columns: vec![
                        Column::text(devices.iter().map(|(d, _)| d.as_str())),
                        Column::text(devices.iter().map(|(_, i)| i.aligned.to_string())),
                        template_column(&devices),
                        Column::text(devices.iter().map(|(d, _)| {
                            ttl.ttl_ms(&paths::split(d))
                                .map_or_else(|| "INF".to_string(), |ms| ms.to_string())
                        })),
                    ],
                    times: None,
                    n_rows: n,
                }))
            }
            Statement::CountTimeseries { path } => {
                let pattern = pattern_or_all(path);
                let n = self.schema_read()?.matching_series(&pattern.0).len();
                Ok(Output::Table(count_table("count(timeseries)", n)))
            }
            Statement::CountDevices { path } => {
                let pattern = pattern_or_all(path);
                let n = self.schema_read()?.matching_devices(&pattern.0).len();
                Ok(Output::Table(count_table("count(devices)", n)))
            }
            Statement::CountTimeseriesByLevel { path, level } => {
                let pattern = pattern_or_all(path);
                let counts = self
                    .schema_read()?
                    .count_series_by_level(&pattern.0, *level as usize);
                let n = counts.len();
                Ok(Output::Table(Table {
                    names: vec!["Column".into(), "count(timeseries)".into()],
                    columns: vec![
                        Column::text(counts.iter().map(|(c, _)| c.as_str())),
                        int64_column(counts.iter().map(|(_, k)| count_value(*k)).collect()),
                    ],
                    times: None,
                    n_rows: n,
                }))
            }
            Statement::CountDatabases { path } => {
                let pattern = pattern_or_all(path);
                let n = self
                    .schema_read()?
                    .databases()
                    .filter(|db| matches_db_pattern(&pattern, db))
                    .count();
                Ok(Output::Table(Table {
                    names: vec!["count(database)".into()],
                    columns: vec![Column::int32(vec![i32::try_from(n).unwrap_or(i32::MAX)])],
                    times: None,
                    n_rows: 1,
                }))
            }
            Statement::CountNodes { path, level } => {
                let n = self.schema_read()?.count_nodes(&path.0, *level as usize);
                Ok(Output::Table(count_table("count(nodes)", n)))
            }
            Statement::ShowChildPaths { path } | Statement::ShowChildNodes { path } => {
                let pattern = path
                    .clone()
                    .unwrap_or_else(|| Path(vec![duet_parser::PathNode::Name("root".into())]));
                let children = self.schema_read()?.child_paths(&pattern.0);
                if matches!(statement, Statement::ShowChildPaths { .. }) {
                    let n = children.len();
                    return Ok(Output::Table(Table {
                        names: vec!["ChildPaths".into(), "NodeTypes".into()],
                        columns: vec![
                            Column::text(children.iter().map(|(c, _)| c.as_str())),
                            Column::text(children.iter().map(|(_, t)| t.name())),
                        ],
                        times: None,
                        n_rows: n,
                    }));
                }
                // Each child's own node, each once, in order.
                let names: std::collections::BTreeSet<String> = children
                    .iter()
                    .filter_map(|(c, _)| paths::split(c).pop())
                    .map(|node| paths::join(&[node]))
                    .collect();
                let n = names.len();
                Ok(Output::Table(Table {
                    names: vec!["ChildNodes".into()],
                    columns: vec![Column::text(names.iter().map(String::as_str))],
                    times: None,
                    n_rows: n,
                }))
            }
            Statement::DeleteTimeseries { paths } => {
                let mut series = Vec::new();
                for p in paths {
                    let matched = {
                        let schema = self.schema_read()?;
                        without_template_series(&schema, schema.matching_series(&p.0))
                    };
                    if matched.is_empty() {
                        return Err(EngineError::PathNotExist(format!(
                            "Timeseries [{p}] does not exist or is represented by schema template"
                        )));
                    }
                    series.extend(matched);
                }
                self.drop_series_logged(series).await?;
                Ok(Output::Done)
            }
            Statement::Insert {
                device,
                aligned,
                columns,
                rows,
            } => {
                let device = concrete(device)?;
                let mut times = Vec::with_capacity(rows.len());
                let mut cells: Vec<Vec<Cell>> = vec![Vec::with_capacity(rows.len()); columns.len()];
                for row in rows {
                    if row.values.len() != columns.len() {
                        return Err(EngineError::Semantic(format!(
                            "the number of values ({}) does not match the number of measurements ({})",
                            row.values.len(),
                            columns.len()
                        )));
                    }
                    times.push(self.insert_time(ctx, &row.time)?);
                    for (slot, v) in cells.iter_mut().zip(&row.values) {
                        slot.push(Cell::from(v));
                    }
                }
                let write = DeviceWrite {
                    device,
                    aligned: *aligned,
                    measurements: columns.clone(),
                    columns: cells.into_iter().map(WriteColumn::Cells).collect(),
                    times,
                };
                let outcome = self.write(vec![write]).await?;
                match outcome.results.into_iter().next() {
                    Some(Err(e)) => Err(e),
                    _ => Ok(Output::Done),
                }
            }
            Statement::DeleteData { paths, condition } => {
                let (start, end) = match condition {
                    None => (i64::MIN, i64::MAX),
                    Some(expr) => query::time_range_only(self, ctx, expr)?,
                };
                let patterns: Vec<Vec<duet_parser::PathNode>> =
                    paths.iter().map(|p| p.0.clone()).collect();
                self.delete_range(&patterns, start, end).await?;
                Ok(Output::Done)
            }
            Statement::Flush { .. } => {
                self.storage.flush().await?;
                Ok(Output::Done)
            }
            Statement::Select(select) => {
                query::execute(self, ctx, select, QueryControl::new(QueryLimits::default()))
            }
            // Synchronous, so the scope above applies to it alone.
            Statement::ShowPathsUsingTemplate { path, name } => {
                self.show_paths_using_template(path.as_ref(), name)
            }
            template if Engine::is_template_statement(template) => {
                self.execute_template(template).await
            }
            other => Err(EngineError::Internal(format!(
                "statement not handled by the engine: {other}"
            ))),
        }
    }

    /// Executes a `SELECT` under `control` (its memory budget, deadline and cancellation). Planning
    /// reads the schema and may take a while for many series: call it where blocking is allowed.
    /// Whether the series exists (a write to one that does not creates it, which needs more
    /// privileges than writing).
    pub fn series_exists(&self, device: &str, measurement: &str) -> bool {
        self.schema_read()
            .map(|schema| schema.series_type(device, measurement).is_some())
            .unwrap_or(false)
    }

    pub fn select(
        self: &Arc<Self>,
        ctx: &SessionContext,
        select: &duet_parser::Select,
        control: QueryControlRef,
    ) -> Result<Output> {
        let _scope = crate::scope::enter(ctx.read_data.clone());
        query::execute(self, ctx, select, control)
    }

    /// Writes one tombstone entry for `series` over `[start, end]` (nothing when empty).
    async fn delete_series_from(
        &self,
        origin: duet_storage::Origin,
        series: Vec<String>,
        start: i64,
        end: i64,
    ) -> Result<()> {
        if series.is_empty() || start > end {
            return Ok(());
        }
        let op = Op::Delete(DeleteOp { series, start, end });
        self.storage.write(origin, None, vec![op]).await?;
        Ok(())
    }

    /// Deletes the points of every series matching any of `patterns` in `[start, end]`.
    async fn delete_range(
        &self,
        patterns: &[Vec<duet_parser::PathNode>],
        start: i64,
        end: i64,
    ) -> Result<()> {
        self.delete_range_from(duet_storage::Origin::Local, patterns, start, end)
            .await
    }

    async fn delete_range_from(
        &self,
        origin: duet_storage::Origin,
        patterns: &[Vec<duet_parser::PathNode>],
        start: i64,
        end: i64,
    ) -> Result<()> {
        let mut series = Vec::new();
        {
            let schema = self.schema_read()?;
            for pattern in patterns {
                series.extend(schema.matching_series(pattern).into_iter().map(|s| s.key));
            }
        }
        self.delete_series_from(origin, series, start, end).await
    }

    /// `deleteData`: removes points of the given series (patterns allowed) in `[start, end]`.
    pub async fn delete_data(&self, patterns: &[String], start: i64, end: i64) -> Result<()> {
        self.delete_data_from(duet_storage::Origin::Local, patterns, start, end)
            .await
    }

    /// [`Engine::delete_data`] recorded with `origin`: a pipe's, for a deletion an IoTDB sender
    /// transferred (so this instance's double-living pipes do not send it back).
    pub async fn delete_data_from(
        &self,
        origin: duet_storage::Origin,
        patterns: &[String],
        start: i64,
        end: i64,
    ) -> Result<()> {
        let patterns = patterns
            .iter()
            .map(|p| parse_pattern(p))
            .collect::<Result<Vec<_>>>()?;
        self.delete_range_from(origin, &patterns, start, end).await
    }

    /// `createTimeseries` and friends from the RPC surface.
    pub async fn create_series_rpc(
        &self,
        device: &str,
        aligned: bool,
        specs: &[(String, DataType, Option<String>, Option<String>)],
    ) -> Result<()> {
        let specs: Vec<(String, DataType, String, String)> = specs
            .iter()
            .map(|(m, t, e, c)| {
                (
                    m.clone(),
                    *t,
                    e.clone()
                        .unwrap_or_else(|| default_encoding(*t).to_string()),
                    c.clone().unwrap_or_else(|| "LZ4".into()),
                )
            })
            .collect();
        let device = canonical_path(device)?;
        let _schema_change = self.schema_changes.write().await;
        for (m, _, _, _) in &specs {
            self.schema_read()?
                .check_no_template_at(&format!("{device}.{m}"))?;
        }
        self.create_series_logged(&device, aligned, &specs).await
    }

    /// Creates series: checked, logged, then applied (as every local schema change: a failed log
    /// write changes nothing). The caller holds `schema_changes`.
    async fn create_series_logged(
        &self,
        device: &str,
        aligned: bool,
        specs: &[(String, DataType, String, String)],
    ) -> Result<()> {
        self.schema_read()?
            .check_create_series(device, specs, true)?;
        self.log_schema_change(
            Self::create_series_change(device, aligned, specs),
            Vec::new(),
        )
        .await?;
        self.schema_write()?
            .create_series(&self.catalog, device, aligned, specs, true)
    }

    /// Creates a database: checked, logged, then applied. The caller holds `schema_changes`.
    async fn create_database_logged(&self, path: String) -> Result<()> {
        self.schema_read()?.check_new_database(&path)?;
        self.log_schema_change(
            SchemaChange::CreateDatabase { path: path.clone() },
            Vec::new(),
        )
        .await?;
        self.schema_write()?.create_database(&self.catalog, &path)
    }

    /// `setStorageGroup`.
    pub async fn create_database(&self, path: &str) -> Result<()> {
        let path = canonical_path(path)?;
        let _schema_change = self.schema_changes.write().await;
        self.create_database_logged(path).await
    }

    /// `deleteStorageGroups`.
    pub async fn drop_databases(&self, paths: &[String]) -> Result<()> {
        let _schema_change = self.schema_changes.write().await;
        for p in paths {
            self.drop_database_logged(p).await?;
        }
        Ok(())
    }

    /// Drops a database: its entry (the drop, its series and their tombstones) is logged first and
    /// the catalog changed after, so a failed log write leaves nothing changed, never a drop
    /// without its tombstones. The caller holds `schema_changes`.
    async fn drop_database_logged(&self, path: &str) -> Result<()> {
        let series = {
            let schema = self.schema_read()?;
            if !schema.databases().any(|db| db == path) {
                return Err(EngineError::PathNotExist(format!(
                    "Path [{path}] does not exist"
                )));
            }
            schema.database_series(path)
        };
        let keys = series.iter().map(|(d, m)| format!("{d}.{m}")).collect();
        self.log_schema_change(
            SchemaChange::DropDatabase {
                path: path.to_string(),
                series,
            },
            Self::drop_tombstones(keys),
        )
        .await?;
        self.schema_write()?.drop_database(&self.catalog, path)?;
        Ok(())
    }

    /// Drops series: logged first (with their tombstones, as one entry), then removed from the
    /// schema, as [`Engine::drop_database_logged`].
    async fn drop_series_logged(&self, series: Vec<SeriesInfo>) -> Result<()> {
        let change = SchemaChange::DeleteSeries {
            series: series
                .iter()
                .map(|s| (s.device.clone(), s.measurement.clone()))
                .collect(),
        };
        self.log_schema_change(
            change,
            Self::drop_tombstones(series.iter().map(|s| s.key.clone()).collect()),
        )
        .await?;
        self.schema_write()?.drop_series(&self.catalog, &series)
    }

    /// `deleteTimeseries`.
    pub async fn delete_timeseries(&self, patterns: &[String]) -> Result<()> {
        let _schema_change = self.schema_changes.write().await;
        let mut series = Vec::new();
        for p in patterns {
            let matched = {
                let schema = self.schema_read()?;
                without_template_series(&schema, schema.matching_series(&parse_pattern(p)?))
            };
            if matched.is_empty() {
                return Err(EngineError::PathNotExist(format!(
                    "Timeseries [{p}] does not exist or is represented by schema template"
                )));
            }
            series.extend(matched);
        }
        self.drop_series_logged(series).await
    }

    /// The current time in the instance's precision.
    pub fn now(&self) -> i64 {
        chrono::Utc::now()
            .timestamp_millis()
            .saturating_mul(self.units_per_ms)
    }

    pub(crate) fn precision(&self) -> Precision {
        Precision {
            units_per_ms: self.units_per_ms,
        }
    }

    /// Parses a datetime literal (`yyyy-MM-dd[( |T)HH:mm[:ss[.fraction]]][Z|±HH:mm]`, `/` or `.` also
    /// separating the date) to the instance's precision. A literal without an offset is wall-clock time
    /// in the session's zone.
    pub fn parse_datetime(&self, ctx: &SessionContext, text: &str) -> Result<i64> {
        let literal = duet_parser::time::parse_datetime(text.trim()).map_err(|why| {
            EngineError::TimeFormat(format!(
                "Input time format {text} error ({why}). Input like yyyy-MM-dd HH:mm:ss, yyyy-MM-ddTHH:mm:ss or refer to user document for more info."
            ))
        })?;
        self.precision()
            .resolve(&literal, &ctx.zone()?)
            .map_err(EngineError::Semantic)
    }

    /// `base` shifted by IoTDB's date-expression arithmetic.
    fn shifted(&self, ctx: &SessionContext, base: i64, shifts: &[TimeShift]) -> Result<i64> {
        let zone = ctx.zone()?;
        let mut t = base;
        for shift in shifts {
            let parts = shift.duration.parts().map_err(EngineError::Semantic)?;
            t = self
                .precision()
                .shift(t, shift.subtract, &parts, &zone)
                .map_err(EngineError::Semantic)?;
        }
        Ok(t)
    }

    /// A time where GROUP BY's range stands.
    pub(crate) fn time_value(&self, ctx: &SessionContext, value: &TimeValue) -> Result<i64> {
        match value {
            TimeValue::Value(t) => Ok(*t),
            TimeValue::DateTime(s) => self.parse_datetime(ctx, s),
            TimeValue::Now => Ok(self.now()),
            TimeValue::Shifted { base, shifts } => {
                let base = self.time_value(ctx, base)?;
                self.shifted(ctx, base, shifts)
            }
        }
    }

    /// The time of an INSERT row.
    fn insert_time(&self, ctx: &SessionContext, time: &InsertTime) -> Result<i64> {
        match time {
            InsertTime::Value(t) => Ok(*t),
            InsertTime::Now => Ok(self.now()),
            InsertTime::DateTime(s) => self.parse_datetime(ctx, s),
            InsertTime::Shifted { base, shifts } => {
                let base = self.insert_time(ctx, base)?;
                self.shifted(ctx, base, shifts)
            }
        }
    }

    /// The value of IoTDB's date expression (a datetime, `now()`, either plus or minus durations);
    /// `None` when `expr` is not one.
    pub(crate) fn date_expression(&self, ctx: &SessionContext, expr: &Expr) -> Result<Option<i64>> {
        match expr {
            Expr::DateTime(s) => self.parse_datetime(ctx, s).map(Some),
            Expr::Now => Ok(Some(self.now())),
            Expr::Binary {
                left,
                op: op @ (BinaryOp::Plus | BinaryOp::Minus),
                right,
            } => {
                let Expr::Duration(duration) = right.as_ref() else {
                    return Ok(None);
                };
                let Some(base) = self.date_expression(ctx, left)? else {
                    return Ok(None);
                };
                let shift = TimeShift {
                    subtract: *op == BinaryOp::Minus,
                    duration: duration.clone(),
                };
                self.shifted(ctx, base, std::slice::from_ref(&shift))
                    .map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Whether `db` matches `pattern` and the session's read scope leads to it (SHOW and COUNT
/// DATABASES).
fn matches_db_pattern(pattern: &Path, db: &str) -> bool {
    let nodes = paths::split(db);
    paths::matches(&pattern.0, &nodes) && crate::scope::node_visible(&nodes)
}

fn concrete(path: &Path) -> Result<String> {
    paths::concrete(path).ok_or_else(|| {
        EngineError::IllegalPath(format!(
            "{path} is not a legal path: wildcards are not allowed here"
        ))
    })
}

fn pattern_or_all(path: &Option<Path>) -> Path {
    path.clone().unwrap_or_else(|| {
        Path(vec![
            duet_parser::PathNode::Name("root".into()),
            duet_parser::PathNode::Many,
        ])
    })
}

/// Parses a path pattern string from an RPC (`root.sg.*.s1`).
pub(crate) fn parse_pattern(text: &str) -> Result<Vec<duet_parser::PathNode>> {
    duet_parser::parse_path(text.trim())
        .map(|p| p.0)
        .map_err(|e| {
            EngineError::IllegalPath(format!("{text} is not a legal path, because {}", e.message))
        })
}

/// The canonical form of a concrete path string from an RPC (a device), or 509 as IoTDB answers an
/// illegal one.
pub fn canonical_path(text: &str) -> Result<String> {
    paths::parse_concrete(text)
        .map(|nodes| paths::join(&nodes))
        .map_err(|why| {
            EngineError::IllegalPath(format!("{text} is not a legal path, because {why}"))
        })
}

pub(crate) fn encoding_and_compressor(
    attributes: &[(String, String)],
    t: DataType,
) -> (String, String) {
    let get = |keys: &[&str]| {
        attributes
            .iter()
            .find(|(k, _)| keys.iter().any(|x| k.eq_ignore_ascii_case(x)))
            .map(|(_, v)| v.to_ascii_uppercase())
    };
    (
        get(&["ENCODING"]).unwrap_or_else(|| default_encoding(t).to_string()),
        get(&["COMPRESSOR", "COMPRESSION"]).unwrap_or_else(|| "LZ4".into()),
    )
}

/// SHOW DEVICES' Template column: the activated template's name, else null.
fn template_column(devices: &[(&String, &crate::schema::DeviceInfo)]) -> Column {
    Column {
        data_type: DataType::Text,
        nulls: Some(devices.iter().map(|(_, d)| d.template.is_none()).collect()),
        values: duet_proto::types::ColumnValues::Binary(
            devices
                .iter()
                .map(|(_, d)| d.template.clone().unwrap_or_default().into_bytes())
                .collect(),
        ),
    }
}

/// The series DELETE TIMESERIES may remove: a device's template series go only by deactivation.
fn without_template_series(schema: &Schema, series: Vec<SeriesInfo>) -> Vec<SeriesInfo> {
    series
        .into_iter()
        .filter(|s| !schema.is_template_series(&s.device, &s.measurement))
        .collect()
}

fn int64_column(values: Vec<i64>) -> Column {
    Column {
        data_type: DataType::Int64,
        nulls: None,
        values: duet_proto::types::ColumnValues::Int64(values),
    }
}

fn null_text(n: usize) -> Column {
    Column {
        data_type: DataType::Text,
        nulls: Some(vec![true; n]),
        values: duet_proto::types::ColumnValues::Binary(vec![Vec::new(); n]),
    }
}

fn count_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count_table(name: &str, n: usize) -> Table {
    Table {
        names: vec![name.to_string()],
        columns: vec![int64_column(vec![count_value(n)])],
        times: None,
        n_rows: 1,
    }
}

fn show_timeseries(series: &[SeriesInfo]) -> Table {
    let n = series.len();
    Table {
        names: [
            "Timeseries",
            "Alias",
            "Database",
            "DataType",
            "Encoding",
            "Compression",
            "Tags",
            "Attributes",
            "Deadband",
            "DeadbandParameters",
            "ViewType",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        columns: vec![
            Column::text(series.iter().map(|s| s.path.as_str())),
            null_text(n),
            Column::text(series.iter().map(|s| s.database.as_str())),
            Column::text(series.iter().map(|s| s.data_type.name())),
            Column::text(series.iter().map(|s| s.encoding.as_str())),
            Column::text(series.iter().map(|s| s.compressor.as_str())),
            null_text(n),
            null_text(n),
            null_text(n),
            null_text(n),
            Column::text(vec!["BASE"; n]),
        ],
        times: None,
        n_rows: n,
    }
}
