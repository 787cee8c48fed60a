//! Applying what a peer's pipe sends: entries keep the version they were first written with and are
//! recorded with the pipe as their origin, so double-living pipes never send them back; series the
//! entries write are created here first when missing (schema travels with the data).

use duet_parser::PathNode;
use duet_proto::types::DataType;
use duet_storage::{InsertOp, Op, Origin, SeriesChunk, Version};

use crate::schema::{default_encoding, SeriesInfo};
use crate::schema_sync::SchemaChange;
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Creates the series an insert needs, with the types its columns carry; a series that exists
    /// with another type is a conflict the sender must see.
    fn ensure_schema(&self, insert: &InsertOp, version: Version) -> Result<()> {
        // A device under a path where this instance has a template set activates it, as a local
        // write would (and the template's types then apply), so both sides agree on what the
        // device is and later local writes to it follow the template too.
        let types: Vec<Option<DataType>> =
            insert.columns.iter().map(|c| Some(c.data_type)).collect();
        self.prepare_template_write(&insert.device, &insert.measurements, &types)?;
        let mut missing = Vec::new();
        {
            let schema = self.schema_read()?;
            for (m, column) in insert.measurements.iter().zip(&insert.columns) {
                match schema.series_type(&insert.device, m) {
                    Some(t) if t == column.data_type => {}
                    Some(t) => {
                        return Err(EngineError::TypeMismatch(format!(
                            "data type of {}.{m} is not consistent, registered type {t}, inserting type {}",
                            insert.device, column.data_type
                        )))
                    }
                    None => missing.push((m.clone(), column.data_type, default_encoding(column.data_type).to_string(), "LZ4".to_string())),
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut schema = self
            .schema
            .write()
            .map_err(|_| EngineError::Internal("schema lock poisoned".into()))?;
        missing.retain(|(m, _, _, _)| schema.series_type(&insert.device, m).is_none());
        // A series (or database) dropped by a change newer than this write stays dropped: the
        // write's points are older than the drop's tombstones anyway.
        let mut kept = Vec::with_capacity(missing.len());
        for spec in missing {
            if !self.dropped_since(&insert.device, &spec.0, version)? {
                kept.push(spec);
            }
        }
        let missing = kept;
        if missing.is_empty() {
            return Ok(());
        }
        schema.create_series(
            &self.catalog,
            &insert.device,
            insert.aligned,
            &missing,
            true,
        )?;
        drop(schema);
        // Created by data: recorded with the data's version, so a drop older than this write does
        // not remove it here while the writer's side keeps it.
        self.record_created_series(&insert.device, &missing, version)
    }

    /// Applies one replicated entry with its original version, recorded with `origin` (a pipe from the
    /// sending instance, unless the sender asked for its writes to count as local ones). Re-applying the
    /// same entry changes nothing.
    pub async fn apply_replicated(
        &self,
        origin: Origin,
        version: Version,
        mut ops: Vec<Op>,
    ) -> Result<()> {
        let mut tombstones = Vec::new();
        // A schema change holds the schema-change lock until its entry is written.
        let _schema_change = if ops.iter().any(|op| matches!(op, Op::Meta(_))) {
            Some(self.schema_changes.lock().await)
        } else {
            None
        };
        for op in &ops {
            match op {
                Op::Insert(insert) => self.ensure_schema(insert, version)?,
                Op::Meta(bytes) => {
                    let change = SchemaChange::decode(bytes)?;
                    tombstones.extend(self.apply_schema_change(&change, version)?);
                }
                Op::Delete(_) => {}
            }
        }
        // A drop's tombstones carry the drop's version: they hide the points written before it on
        // either side, and nothing written after.
        ops.extend(tombstones);
        self.storage.write(origin, Some(version), ops).await?;
        Ok(())
    }

    /// Every series matching a pattern, for a pipe's history.
    pub fn series_matching(&self, pattern: &[PathNode]) -> Result<Vec<SeriesInfo>> {
        Ok(self.schema_read()?.matching_series(pattern))
    }

    /// The type of `device`.`measurement` here, if the series exists.
    pub fn series_data_type(&self, device: &str, measurement: &str) -> Result<Option<DataType>> {
        Ok(self.schema_read()?.series_type(device, measurement))
    }

    /// The deletions recorded for a series as (start, end, version).
    pub fn series_tombstones(&self, series: &str) -> Vec<(i64, i64, Version)> {
        self.storage.tombstones(series)
    }

    /// Reads a series' stored points in `[start, end]`, at most `limit`, with their versions.
    pub fn scan_series(
        &self,
        series: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<SeriesChunk> {
        Ok(self.storage.scan(series, start, end, limit, false)?)
    }
}
