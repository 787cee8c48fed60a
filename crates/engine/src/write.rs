//! The write path every insert takes — SQL `INSERT`, `insertRecord(s)`, `insertStringRecord(s)`,
//! `insertTablet(s)` — once the server has decoded the request into [`DeviceWrite`]s: schema checks and
//! automatic creation, conversion to typed columns, then one storage entry for the whole request, so a
//! request is applied entirely or (per device) not at all.

use duet_proto::types::{Column, DataType};
use duet_storage::{InsertOp, Op};

use crate::paths;
use crate::schema::default_encoding;
use crate::schema_sync::SchemaChange;
use crate::template::TemplateWrite;
use crate::values::{self, Cell};
use crate::{Engine, EngineError, Result};

/// A series a write created: measurement, type, encoding, compressor.
pub(crate) type CreatedSeries = (String, DataType, String, String);

/// The values of one measurement in a write.
#[derive(Debug, Clone)]
pub enum WriteColumn {
    /// Already typed (tablets): the type must match the series, or creates it.
    Typed(Column),
    /// Cells to convert to the series' type, or to infer a type from.
    Cells(Vec<Cell>),
}

/// Rows of one device.
#[derive(Debug, Clone)]
pub struct DeviceWrite {
    pub device: String,
    pub aligned: bool,
    pub measurements: Vec<String>,
    pub columns: Vec<WriteColumn>,
    pub times: Vec<i64>,
}

/// The outcome for each device of a request, in request order.
#[derive(Debug)]
pub struct WriteOutcome {
    pub results: Vec<Result<()>>,
}

impl WriteOutcome {
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.is_ok())
    }
}

impl Engine {
    /// Validates, creates missing series, and writes every valid device in one durable storage entry.
    pub async fn write(&self, writes: Vec<DeviceWrite>) -> Result<WriteOutcome> {
        self.write_from(duet_storage::Origin::Local, writes).await
    }

    /// [`Engine::write`] recorded with `origin`: a pipe's, for writes that arrive as IoTDB tablets
    /// (which carry no versions: they get this instance's, as local writes do).
    pub async fn write_from(
        &self,
        origin: duet_storage::Origin,
        writes: Vec<DeviceWrite>,
    ) -> Result<WriteOutcome> {
        // The schema-change lock is held from the write's schema checks to its entry's write, so
        // no schema change (checked, logged, then applied) falls between them: a write whose entry
        // follows a drop's never wrote to the dropped series here while the peer recreates it. A
        // write that changes the schema (creates series, activates or extends a template) holds it
        // alone: its changes are then its own until its entry is written, and undone if that fails.
        let shared = self.schema_changes.read().await;
        let (_shared, exclusive) = if self.write_changes_schema(&writes)? {
            drop(shared);
            (None, Some(self.schema_changes.write().await))
        } else {
            (Some(shared), None)
        };
        let databases_before: Option<std::collections::BTreeSet<String>> = match exclusive {
            Some(_) => Some(self.schema_read()?.databases().cloned().collect()),
            None => None,
        };
        let mut results = Vec::with_capacity(writes.len());
        let mut ops = Vec::with_capacity(writes.len());
        let mut accepted = Vec::with_capacity(writes.len());
        // Schema changes this request makes: logged in its entry, ahead of its inserts (a
        // template extended or activated by a first write to a device under it, then the series
        // created), sent by pipes that include schema and recorded at the entry's version. Only
        // a first write to a series pays for this.
        let mut created_series: Vec<(String, bool, Vec<CreatedSeries>)> = Vec::new();
        let mut template_writes: Vec<(String, TemplateWrite)> = Vec::new();
        let ttl = self.ttl_rules();
        let now = chrono::Utc::now()
            .timestamp_millis()
            .saturating_mul(self.units_per_ms);
        for (i, w) in writes.into_iter().enumerate() {
            // A client may not write what a TTL has already expired (IoTDB: 606). Entries from a
            // pipe are taken whatever their time: refusing them would stall the pipe, and
            // queries and merges treat them as they treat local points.
            if matches!(origin, duet_storage::Origin::Local) && !ttl.is_empty() {
                let device = paths::split(&w.device);
                if let Some(floor) = ttl.floor_for_device(&device, now, self.units_per_ms) {
                    if let Some(t) = w.times.iter().find(|t| **t < floor) {
                        results.push(Err(EngineError::OutOfTtl(format!(
                            "Insertion time [{t}] is less than ttl time bound [{floor}] of {}",
                            w.device
                        ))));
                        continue;
                    }
                }
            }
            match self.prepare(w, &mut created_series, &mut template_writes) {
                Ok(Some(op)) => {
                    ops.push(Op::Insert(op));
                    accepted.push(i);
                    results.push(Ok(()));
                }
                Ok(None) => results.push(Ok(())),
                Err(e) => results.push(Err(e)),
            }
        }
        let mut changes = Vec::new();
        // Databases the request's series or activations created (at level 2, as IoTDB does).
        if let Some(before) = &databases_before {
            let schema = self.schema_read()?;
            changes.extend(
                schema
                    .databases()
                    .filter(|db| !before.contains(*db))
                    .map(|db| SchemaChange::CreateDatabase { path: db.clone() }),
            );
        }
        for (device, t) in &template_writes {
            if let (Some(name), false) = (&t.template, t.extended.is_empty()) {
                changes.push(SchemaChange::AppendTemplate {
                    name: name.clone(),
                    measurements: crate::schema_sync::spec_list(&t.extended),
                    made_on: t.template_made_on,
                });
            }
            if t.activated {
                changes.push(SchemaChange::ActivateTemplate {
                    device: device.clone(),
                    made_on: t.set_made_on,
                });
            }
        }
        for (device, aligned, specs) in &created_series {
            changes.push(Self::create_series_change(device, *aligned, specs));
        }
        if ops.is_empty() && changes.is_empty() {
            return Ok(WriteOutcome { results });
        }
        // (Schema a device's write changed before it was refused is logged too: it stays, as in
        // IoTDB, and replicates.)
        ops.splice(0..0, changes.iter().map(|c| Op::Meta(c.encode())));
        match self.storage.write(origin, None, ops).await {
            Ok((_, version)) => {
                if let Err(e) = self.record_change_versions(&changes, version) {
                    // The changes are applied and the entry is durable; only their version
                    // records are missing (the objects then count as changed at {0, here}).
                    tracing::warn!("version records of the schema changes of a write: {e}");
                }
            }
            Err(e) => {
                // Nothing of this request is acknowledged: report the failure for every device
                // it carried, and take back the schema changes it made (they were logged nowhere).
                if let Some(before) = &databases_before {
                    if let Err(undo) =
                        self.undo_write_schema(&created_series, &template_writes, before)
                    {
                        tracing::error!(
                            "the schema changes of a write whose entry failed are not undone: {undo}"
                        );
                    }
                }
                let message = e.to_string();
                for i in accepted {
                    results[i] = Err(EngineError::Internal(format!("write failed: {message}")));
                }
            }
        }
        Ok(WriteOutcome { results })
    }

    /// Whether a request may change the schema: a device under a set template not yet
    /// activated, or a measurement without a series (a cheap, conservative look: it only decides
    /// which way the write holds the schema-change lock).
    fn write_changes_schema(&self, writes: &[DeviceWrite]) -> Result<bool> {
        let schema = self.schema_read()?;
        for w in writes {
            if w.times.is_empty() {
                continue;
            }
            let Ok(nodes) = paths::parse_concrete(&w.device) else {
                continue;
            };
            let device = paths::join(&nodes);
            let info = schema.device(&device);
            if schema.template_for(&device).is_some() && info.is_none_or(|d| d.template.is_none()) {
                return Ok(true);
            }
            if w.measurements
                .iter()
                .any(|m| schema.series_type(&device, m).is_none())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes back what a write whose entry was not written changed in the schema (it held the
    /// schema-change lock alone, so nothing else has used it): activations, template
    /// measurements, series and databases it created.
    fn undo_write_schema(
        &self,
        created_series: &[(String, bool, Vec<CreatedSeries>)],
        template_writes: &[(String, TemplateWrite)],
        databases_before: &std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let activated: Vec<String> = template_writes
            .iter()
            .filter(|(_, t)| t.activated)
            .map(|(device, _)| device.clone())
            .collect();
        self.deactivate_devices(&activated)?;
        for (_, t) in template_writes {
            if let Some(name) = &t.template {
                for (m, _, _, _) in &t.extended {
                    self.force_prune(name, m)?;
                }
            }
        }
        let mut schema = self.schema_write()?;
        for (device, _, specs) in created_series {
            let series: Vec<_> = specs
                .iter()
                .flat_map(|(m, _, _, _)| crate::schema_sync::series_here(&schema, device, m))
                .collect();
            if !series.is_empty() {
                schema.drop_series(&self.catalog, &series)?;
            }
        }
        let created: Vec<String> = schema
            .databases()
            .filter(|db| !databases_before.contains(*db))
            .cloned()
            .collect();
        for db in created {
            schema.drop_database(&self.catalog, &db)?;
        }
        Ok(())
    }

    /// Turns one device's write into a storage op (`None` when it carries no points), with the
    /// series it created.
    /// What it changes in the schema is added to `created_series` and `template_writes` as soon
    /// as it is changed (also when the write is then refused).
    fn prepare(
        &self,
        mut w: DeviceWrite,
        created_series: &mut Vec<(String, bool, Vec<CreatedSeries>)>,
        template_writes: &mut Vec<(String, TemplateWrite)>,
    ) -> Result<Option<InsertOp>> {
        // IoTDB's path rules (an RPC's device string may be illegal, or quote a node without need):
        // the device key is always the canonical form, whichever way the write arrived.
        let device_nodes = paths::parse_concrete(&w.device).map_err(|why| {
            EngineError::IllegalPath(format!("{} is not a legal path, because {why}", w.device))
        })?;
        if device_nodes.len() < 2 {
            return Err(EngineError::IllegalPath(format!(
                "{} is not a legal path, because a device is root.<name>[.<name>…]",
                w.device
            )));
        }
        w.device = paths::join(&device_nodes);
        if w.measurements.len() != w.columns.len() {
            return Err(EngineError::IllegalParameter(format!(
                "{} measurements but {} value columns for {}",
                w.measurements.len(),
                w.columns.len(),
                w.device
            )));
        }
        for (i, m) in w.measurements.iter().enumerate() {
            if m.is_empty() || m.eq_ignore_ascii_case("time") || m.eq_ignore_ascii_case("timestamp")
            {
                return Err(EngineError::IllegalPath(format!(
                    "{}.{m} is not a legal path",
                    w.device
                )));
            }
            if w.measurements[..i].contains(m) {
                return Err(EngineError::IllegalParameter(format!(
                    "measurement {m} appears twice in one write to {}",
                    w.device
                )));
            }
        }
        if w.times.is_empty() {
            return Ok(None);
        }
        // A device under a set template activates it (and extends it with what it lacks) first.
        let write_types: Vec<Option<DataType>> = w
            .columns
            .iter()
            .map(|column| match column {
                WriteColumn::Typed(c) => Some(c.data_type),
                WriteColumn::Cells(cells) => cells.iter().find_map(values::infer),
            })
            .collect();
        let template = self.prepare_template_write(&w.device, &w.measurements, &write_types)?;
        if template.template.is_some() {
            template_writes.push((w.device.clone(), template));
        }
        // Types: existing series keep theirs; new ones get the tablet's type or an inferred one.
        let mut types = Vec::with_capacity(w.measurements.len());
        let mut missing = Vec::new();
        {
            let schema = self
                .schema
                .read()
                .map_err(|_| EngineError::Internal("schema lock poisoned".into()))?;
            if let Some(device) = schema.device(&w.device) {
                // IoTDB refuses aligned writes to a non-aligned device and the reverse.
                if device.aligned != w.aligned {
                    let (is, should) = if device.aligned {
                        ("is aligned", "true")
                    } else {
                        ("is not aligned", "false")
                    };
                    return Err(EngineError::Alignment(format!(
                        "Timeseries under path [{}] {is}, please set InsertPlan.isAligned() = {should}",
                        w.device
                    )));
                }
            }
            for (m, column) in w.measurements.iter().zip(&w.columns) {
                match schema.series_type(&w.device, m) {
                    Some(t) => types.push(Some(t)),
                    None => {
                        let inferred = match column {
                            WriteColumn::Typed(c) => Some(c.data_type),
                            WriteColumn::Cells(cells) => cells.iter().find_map(values::infer),
                        };
                        if let Some(t) = inferred {
                            missing.push((
                                m.clone(),
                                t,
                                default_encoding(t).to_string(),
                                "LZ4".to_string(),
                            ));
                        }
                        types.push(inferred);
                    }
                }
            }
        }
        if !missing.is_empty() {
            let mut schema = self
                .schema
                .write()
                .map_err(|_| EngineError::Internal("schema lock poisoned".into()))?;
            // Another writer may have created some of them meanwhile: keep only what is still missing,
            // and adopt the type the winner chose.
            missing.retain(|(m, _, _, _)| schema.series_type(&w.device, m).is_none());
            if !missing.is_empty() {
                schema.create_series(&self.catalog, &w.device, w.aligned, &missing, true)?;
                created_series.push((w.device.clone(), w.aligned, missing));
            }
            for (slot, m) in types.iter_mut().zip(&w.measurements) {
                if let Some(t) = schema.series_type(&w.device, m) {
                    *slot = Some(t);
                }
            }
        }
        let mut measurements = Vec::with_capacity(w.measurements.len());
        let mut columns = Vec::with_capacity(w.measurements.len());
        for ((m, column), t) in w.measurements.into_iter().zip(w.columns).zip(types) {
            // A measurement whose every cell is null creates nothing and writes nothing.
            let Some(target) = t else { continue };
            let series = format!("{}.{m}", w.device);
            let column = match column {
                WriteColumn::Typed(c) if c.data_type == target => c,
                WriteColumn::Typed(c) if c.data_type.physical() == target.physical() && c.data_type != DataType::Blob => c,
                WriteColumn::Typed(c) => {
                    return Err(EngineError::TypeMismatch(format!(
                        "data type of {series} is not consistent, registered type {target}, inserting type {}",
                        c.data_type
                    )))
                }
                WriteColumn::Cells(cells) => values::to_column(&series, target, &cells)?,
            };
            if column.len() != w.times.len() {
                return Err(EngineError::IllegalParameter(format!(
                    "{series} has {} values for {} timestamps",
                    column.len(),
                    w.times.len()
                )));
            }
            let column = Column {
                data_type: target,
                ..column
            };
            measurements.push(m);
            columns.push(column);
        }
        if measurements.is_empty() {
            return Ok(None);
        }
        Ok(Some(InsertOp {
            device: w.device,
            aligned: w.aligned,
            measurements,
            columns,
            times: w.times,
        }))
    }
}
