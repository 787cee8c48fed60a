//! Applying what a peer's pipe sends: entries keep the version they were first written with and are
//! recorded with the pipe as their origin, so double-living pipes never send them back; series the
//! entries write are created here first when missing (schema travels with the data).

use duet_parser::PathNode;
use duet_proto::types::{Column, DataType};
use duet_storage::{InsertOp, Op, Origin, SeriesChunk, Version};

use crate::schema::{default_encoding, SeriesInfo};
use crate::schema_sync::{
    activation_object, just_after, lost_type_object, series_object, version_of, SchemaChange,
};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Takes column `i` out of `insert` and counts its points (non-null values) as dropped; returns
    /// its series' path, the column and the number of points.
    fn drop_column(&self, insert: &mut InsertOp, i: usize) -> (String, Column, usize) {
        let m = insert.measurements.remove(i);
        let column = insert.columns.remove(i);
        let points = match &column.nulls {
            Some(nulls) => nulls.iter().filter(|n| !**n).count(),
            None => column.len(),
        };
        self.points_dropped_for_type
            .fetch_add(points as u64, std::sync::atomic::Ordering::Relaxed);
        (format!("{}.{m}", insert.device), column, points)
    }

    /// Creates the series an insert needs, with the types its columns carry. A column whose type
    /// differs from its series' type here is refused (the sender retries) while the creation of its
    /// type may still arrive; once its type is known to have lost (a creation of it lost here, or
    /// the series' type here is newer than the point), its points are dropped, counted and logged,
    /// and every point of the series up to the dropped ones' version is hidden, as the side that
    /// wrote them hides them when it learns that its type lost (`apply_series_creation`).
    fn ensure_schema(
        &self,
        insert: &mut InsertOp,
        version: Version,
        hidden: &mut Vec<(String, Version)>,
    ) -> Result<()> {
        // A device under a path where this instance has a template set activates it, as a local
        // write would (and the template's types then apply), so both sides agree on what the
        // device is and later local writes to it follow the template too.
        let types: Vec<Option<DataType>> =
            insert.columns.iter().map(|c| Some(c.data_type)).collect();
        self.prepare_template_write(&insert.device, &insert.measurements, &types)?;
        let mut missing = Vec::new();
        let mut conflicts = Vec::new();
        {
            let schema = self.schema_read()?;
            for (i, (m, column)) in insert.measurements.iter().zip(&insert.columns).enumerate() {
                match schema.series_type(&insert.device, m) {
                    Some(t) if t == column.data_type => {}
                    Some(t) => conflicts.push((i, t)),
                    None => missing.push((
                        m.clone(),
                        column.data_type,
                        default_encoding(column.data_type).to_string(),
                        "LZ4".to_string(),
                    )),
                }
            }
        }
        let mut lost = Vec::new();
        for (i, here) in conflicts {
            let (m, given) = (&insert.measurements[i], insert.columns[i].data_type);
            if !self.type_lost(&insert.device, m, given, version)? {
                return Err(EngineError::TypeMismatch(format!(
                    "data type of {}.{m} is not consistent, registered type {here}, inserting type {given}",
                    insert.device
                )));
            }
            lost.push((i, here));
        }
        for (i, here) in lost.iter().rev() {
            let (key, column, points) = self.drop_column(insert, *i);
            tracing::warn!(
                "dropped {points} replicated points of {key} written at {version:?}: their type {} \
                 lost to {here} here; the series' points up to that version are hidden",
                column.data_type
            );
            hidden.push((key, version));
        }
        // Points written to a device whose template activation lost here (an unset or drop of
        // its template won): their series are the template's, gone with it; they are dropped as
        // points of a losing type are. (A plain series written there after is created by the
        // creation its write's entry carries, before this.)
        if !missing.is_empty()
            && self
                .catalog
                .schema_version(&activation_object(&insert.device))?
                .is_some_and(|v| !v.present)
        {
            for (m, _, _, _) in missing.drain(..) {
                let Some(i) = insert.measurements.iter().position(|x| *x == m) else {
                    continue;
                };
                let (key, _, points) = self.drop_column(insert, i);
                tracing::warn!(
                    "dropped {points} replicated points of {key} written at {version:?}: the device \
                     template activation of {} lost here; the series' points up to that version are \
                     hidden",
                    insert.device
                );
                hidden.push((key, version));
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

    /// Whether points of `device`.`measurement` of type `given` written at `version` belong to a
    /// type that lost here: a creation of that type lost here, or the series' type here was set
    /// by a newer change than the point (so the point's type was created before it).
    fn type_lost(
        &self,
        device: &str,
        measurement: &str,
        given: DataType,
        version: Version,
    ) -> Result<bool> {
        if self
            .catalog
            .schema_version(&lost_type_object(device, measurement, given))?
            .is_some()
        {
            return Ok(true);
        }
        Ok(self
            .catalog
            .schema_version(&series_object(device, measurement))?
            .is_some_and(|v| version_of(&v) > version))
    }

    /// The points replicated to this instance and dropped on arrival because their type lost.
    pub fn points_dropped_for_type(&self) -> u64 {
        self.points_dropped_for_type
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Applies one replicated entry with its original version, recorded with `origin` (a pipe from the
    /// sending instance, unless the sender asked for its writes to count as local ones). Re-applying the
    /// same entry changes nothing.
    ///
    /// A drop is written to the log before the catalog changes (as a local drop is): its tombstones
    /// are computed first, so if anything fails between the two, the pipe sends the entry again and
    /// finds the objects as they were, instead of a drop already applied whose tombstones are lost.
    pub async fn apply_replicated(
        &self,
        origin: Origin,
        version: Version,
        ops: Vec<Op>,
    ) -> Result<()> {
        // A schema change holds the schema-change lock until its entry is written.
        // Inserts alone hold it shared, from their schema checks to their entry's write, as local
        // writes do (see `Engine::write_from`).
        let (_schema_change, _inserts) = if ops.iter().any(|op| matches!(op, Op::Meta(_))) {
            (Some(self.schema_changes.write().await), None)
        } else {
            (None, Some(self.schema_changes.read().await))
        };
        self.apply_replicated_locked(origin, version, ops).await
    }

    /// [`Engine::apply_replicated`] for a caller that holds the schema-change lock (exclusively
    /// when `ops` carry a schema change).
    pub(crate) async fn apply_replicated_locked(
        &self,
        origin: Origin,
        version: Version,
        mut ops: Vec<Op>,
    ) -> Result<()> {
        let mut changes = Vec::new();
        let mut planned = Vec::new();
        for op in &ops {
            if let Op::Meta(bytes) = op {
                let change = SchemaChange::decode(bytes)?;
                planned.extend(self.planned_tombstones(&change, version)?);
                changes.push(change);
            }
        }
        let mut hidden = Vec::new();
        if planned.is_empty() {
            // Creations: the schema first, so the entry's inserts find the series with the types
            // it gives them.
            let mut tombstones = Vec::new();
            for change in &changes {
                let applied = self.apply_schema_change(change, version)?;
                tombstones.extend(applied.tombstones);
                hidden.extend(applied.hidden_through);
            }
            self.ensure_inserts(&mut ops, version, &mut hidden)?;
            // A drop's tombstones carry the drop's version: they hide the points written before it
            // on either side, and nothing written after.
            ops.extend(Self::drop_tombstones(tombstones));
            self.storage
                .write(origin.clone(), Some(version), ops)
                .await?;
        } else {
            self.ensure_inserts(&mut ops, version, &mut hidden)?;
            let mut logged = ops;
            logged.extend(Self::drop_tombstones(planned.clone()));
            self.storage
                .write(origin.clone(), Some(version), logged)
                .await?;
            let mut extra = Vec::new();
            for change in &changes {
                let applied = self.apply_schema_change(change, version)?;
                extra.extend(
                    applied
                        .tombstones
                        .into_iter()
                        .filter(|k| !planned.contains(k)),
                );
                hidden.extend(applied.hidden_through);
            }
            if !extra.is_empty() {
                self.storage
                    .write(origin.clone(), Some(version), Self::drop_tombstones(extra))
                    .await?;
            }
        }
        for (key, through) in hidden {
            self.storage
                .write(
                    origin.clone(),
                    Some(just_after(through)),
                    Self::drop_tombstones(vec![key]),
                )
                .await?;
        }
        Ok(())
    }

    /// [`Engine::ensure_schema`] for every insert of an entry; an insert left without columns goes.
    fn ensure_inserts(
        &self,
        ops: &mut Vec<Op>,
        version: Version,
        hidden: &mut Vec<(String, Version)>,
    ) -> Result<()> {
        for op in ops.iter_mut() {
            if let Op::Insert(insert) = op {
                self.ensure_schema(insert, version, hidden)?;
            }
        }
        ops.retain(|op| !matches!(op, Op::Insert(i) if i.measurements.is_empty()));
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
