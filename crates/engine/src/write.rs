//! The write path every insert takes — SQL `INSERT`, `insertRecord(s)`, `insertStringRecord(s)`,
//! `insertTablet(s)` — once the server has decoded the request into [`DeviceWrite`]s: schema checks and
//! automatic creation, conversion to typed columns, then one storage entry for the whole request, so a
//! request is applied entirely or (per device) not at all.

use duet_proto::types::{Column, DataType};
use duet_storage::{InsertOp, Op};

use crate::paths;
use crate::schema::default_encoding;
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
        let mut results = Vec::with_capacity(writes.len());
        let mut ops = Vec::with_capacity(writes.len());
        let mut accepted = Vec::with_capacity(writes.len());
        // Series this request creates: logged in its entry, ahead of its inserts, as the creation
        // of each (a `CreateSeries` change, sent by pipes that include schema), and recorded at
        // the entry's version. Only a first write to a series pays for this.
        let mut created_series: Vec<(String, bool, Vec<CreatedSeries>)> = Vec::new();
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
            match self.prepare(w) {
                Ok(Some((op, created))) => {
                    if !created.is_empty() {
                        created_series.push((op.device.clone(), op.aligned, created));
                    }
                    ops.push(Op::Insert(op));
                    accepted.push(i);
                    results.push(Ok(()));
                }
                Ok(None) => results.push(Ok(())),
                Err(e) => results.push(Err(e)),
            }
        }
        if !ops.is_empty() {
            if !created_series.is_empty() {
                let creations = created_series.iter().map(|(device, aligned, specs)| {
                    Op::Meta(Self::create_series_change(device, *aligned, specs).encode())
                });
                ops.splice(0..0, creations);
            }
            match self.storage.write(origin, None, ops).await {
                Ok((_, version)) if !created_series.is_empty() => {
                    let created: Vec<(&str, &[CreatedSeries])> = created_series
                        .iter()
                        .map(|(device, _, specs)| (device.as_str(), specs.as_slice()))
                        .collect();
                    if let Err(e) = self.record_created_series_of(&created, version) {
                        // The series exist and the entry is durable; only their version records
                        // are missing (they then count as created at {0, here}).
                        tracing::warn!("version records of series a write created: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // Nothing of this request is acknowledged: report the failure for every device it carried.
                    let message = e.to_string();
                    for i in accepted {
                        results[i] = Err(EngineError::Internal(format!("write failed: {message}")));
                    }
                }
            }
        }
        Ok(WriteOutcome { results })
    }

    /// Turns one device's write into a storage op (`None` when it carries no points), with the
    /// series it created.
    fn prepare(&self, mut w: DeviceWrite) -> Result<Option<(InsertOp, Vec<CreatedSeries>)>> {
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
        self.prepare_template_write(&w.device, &w.measurements, &write_types)?;
        // Types: existing series keep theirs; new ones get the tablet's type or an inferred one.
        let mut types = Vec::with_capacity(w.measurements.len());
        let mut missing = Vec::new();
        let mut created = Vec::new();
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
                created = missing;
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
        Ok(Some((
            InsertOp {
                device: w.device,
                aligned: w.aligned,
                measurements,
                columns,
                times: w.times,
            },
            created,
        )))
    }
}
