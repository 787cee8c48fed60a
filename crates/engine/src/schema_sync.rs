//! Schema changes as the change log carries them to a pipe's peer: `CREATE DATABASE`, `DROP
//! DATABASE`, `CREATE [ALIGNED] TIMESERIES`, `DELETE TIMESERIES`, `SET TTL` and `UNSET TTL` each log one
//! entry holding a [`SchemaChange`] (storage's `Op::Meta`, encoded here as JSON) next to the tombstones
//! a drop writes, under one version. A pipe whose `inclusion` covers the change's kind sends it; the
//! peer applies it through [`Engine::apply_replicated`] with the original version and the pipe as
//! origin, so a double-living pipe never sends it back.
//!
//! **Invariant:** every schema object (a database, a series, a TTL rule) has the version of its last
//! change recorded in the catalog, with whether it left the object present; a replicated change
//! applies to an object only over an older change, as a point overwrites only an older point. So the
//! two sides converge whatever order changes arrive in, concurrent creates of one series with
//! different types resolve to the newer one on both sides (the older one's points hidden by
//! tombstones of the newer version), a history snapshot never undoes a newer change, and re-applying a
//! change changes nothing.

use duet_catalog::ObjectVersion;
use duet_proto::types::DataType;
use duet_storage::{DeleteOp, Op, Origin, Version};
use serde::{Deserialize, Serialize};

use crate::schema::SeriesInfo;
use crate::{paths, Engine, EngineError, Result};

/// One series of a [`SchemaChange::CreateSeries`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesSpec {
    pub measurement: String,
    /// The IoTDB type name (`INT64`, …).
    pub data_type: String,
    pub encoding: String,
    pub compressor: String,
}

/// A schema change that replicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    CreateDatabase {
        path: String,
    },
    DropDatabase {
        path: String,
    },
    CreateSeries {
        device: String,
        aligned: bool,
        series: Vec<SeriesSpec>,
    },
    /// Series by device and measurement (resolved on the sender, so a pattern means the same series
    /// on both sides).
    DeleteSeries {
        series: Vec<(String, String)>,
    },
    SetTtl {
        patterns: Vec<String>,
        ttl_ms: i64,
    },
    UnsetTtl {
        patterns: Vec<String>,
    },
    /// A user created, or its password changed: the account with its password hash.
    PutUser {
        name: String,
        password_hash: String,
    },
    DropUser {
        name: String,
    },
    /// A device template defined (or, applied where it exists, its missing measurements added).
    CreateTemplate {
        name: String,
        aligned: bool,
        measurements: Vec<SeriesSpec>,
    },
    AppendTemplate {
        name: String,
        measurements: Vec<SeriesSpec>,
    },
    PruneTemplate {
        name: String,
        measurement: String,
    },
    DropTemplate {
        name: String,
    },
    SetTemplate {
        name: String,
        path: String,
    },
    UnsetTemplate {
        name: String,
        path: String,
    },
    ActivateTemplate {
        device: String,
    },
    /// Activations removed from these devices, with their template series (and their data).
    DeactivateTemplate {
        devices: Vec<String>,
    },
}

/// Which part of IoTDB's `inclusion` tree a change belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// `schema.database`
    Database,
    /// `schema.timeseries`
    Timeseries,
    /// `schema.ttl`
    Ttl,
    /// `auth`
    Auth,
    /// `schema.timeseries.template` (part of `schema.timeseries`)
    Template,
}

impl SchemaChange {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail; an empty payload would be refused on decode.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<SchemaChange> {
        serde_json::from_slice(bytes)
            .map_err(|e| EngineError::Internal(format!("malformed schema change in the log: {e}")))
    }

    pub fn kind(&self) -> SchemaKind {
        match self {
            SchemaChange::CreateDatabase { .. } | SchemaChange::DropDatabase { .. } => {
                SchemaKind::Database
            }
            SchemaChange::CreateSeries { .. } | SchemaChange::DeleteSeries { .. } => {
                SchemaKind::Timeseries
            }
            SchemaChange::SetTtl { .. } | SchemaChange::UnsetTtl { .. } => SchemaKind::Ttl,
            SchemaChange::PutUser { .. } | SchemaChange::DropUser { .. } => SchemaKind::Auth,
            SchemaChange::CreateTemplate { .. }
            | SchemaChange::AppendTemplate { .. }
            | SchemaChange::PruneTemplate { .. }
            | SchemaChange::DropTemplate { .. }
            | SchemaChange::SetTemplate { .. }
            | SchemaChange::UnsetTemplate { .. }
            | SchemaChange::ActivateTemplate { .. }
            | SchemaChange::DeactivateTemplate { .. } => SchemaKind::Template,
        }
    }

    /// The paths the change is about, for a pipe's path pattern: a database, every series of a
    /// create or delete, or a TTL's patterns.
    pub fn paths(&self) -> Vec<String> {
        match self {
            SchemaChange::CreateDatabase { path } | SchemaChange::DropDatabase { path } => {
                vec![path.clone()]
            }
            SchemaChange::CreateSeries { device, series, .. } => series
                .iter()
                .map(|s| format!("{device}.{}", s.measurement))
                .collect(),
            SchemaChange::DeleteSeries { series } => {
                series.iter().map(|(d, m)| format!("{d}.{m}")).collect()
            }
            SchemaChange::SetTtl { patterns, .. } | SchemaChange::UnsetTtl { patterns } => {
                patterns.clone()
            }
            SchemaChange::SetTemplate { path, .. } | SchemaChange::UnsetTemplate { path, .. } => {
                vec![path.clone()]
            }
            SchemaChange::ActivateTemplate { device } => vec![device.clone()],
            SchemaChange::DeactivateTemplate { devices } => devices.clone(),
            // Accounts and template definitions are not under a path: a pipe's pattern does not
            // select them.
            SchemaChange::PutUser { .. }
            | SchemaChange::DropUser { .. }
            | SchemaChange::CreateTemplate { .. }
            | SchemaChange::AppendTemplate { .. }
            | SchemaChange::PruneTemplate { .. }
            | SchemaChange::DropTemplate { .. } => Vec::new(),
        }
    }
}

/// The key of a schema object in the catalog's version records.
fn database_object(path: &str) -> String {
    format!("db:{path}")
}

fn series_object(device: &str, measurement: &str) -> String {
    format!("ts:{device}\u{1f}{measurement}")
}

fn ttl_object(pattern: &str) -> String {
    format!("ttl:{pattern}")
}

fn user_object(name: &str) -> String {
    format!("user:{name}")
}

fn template_object(name: &str) -> String {
    format!("tpl:{name}")
}

fn template_measurement_object(name: &str, measurement: &str) -> String {
    format!("tplm:{name}\u{1f}{measurement}")
}

fn template_set_object(path: &str) -> String {
    format!("tplset:{path}")
}

fn activation_object(device: &str) -> String {
    format!("tplact:{device}")
}

fn specs_of(measurements: &[SeriesSpec]) -> Result<Vec<crate::template::TemplateMeasurementSpec>> {
    measurements
        .iter()
        .map(|s| {
            let t = DataType::from_name(&s.data_type).ok_or_else(|| {
                EngineError::IllegalParameter(format!(
                    "unknown data type {} in a replicated schema change",
                    s.data_type
                ))
            })?;
            Ok((
                s.measurement.clone(),
                t,
                s.encoding.clone(),
                s.compressor.clone(),
            ))
        })
        .collect()
}

fn spec_list(specs: &[crate::template::TemplateMeasurementSpec]) -> Vec<SeriesSpec> {
    specs
        .iter()
        .map(|(m, t, e, c)| SeriesSpec {
            measurement: m.clone(),
            data_type: t.name().to_string(),
            encoding: e.clone(),
            compressor: c.clone(),
        })
        .collect()
}

/// Objects and the versions of their last change, to record.
type VersionRecords = Vec<(String, ObjectVersion)>;

fn object_version(version: Version, present: bool) -> ObjectVersion {
    ObjectVersion {
        hlc: version.hlc,
        instance: version.instance,
        present,
    }
}

fn version_of(v: &ObjectVersion) -> Version {
    Version {
        hlc: v.hlc,
        instance: v.instance,
    }
}

impl SchemaChange {
    /// The objects the change sets, and whether each is present after it.
    fn objects(&self) -> Vec<(String, bool)> {
        match self {
            SchemaChange::CreateDatabase { path } => vec![(database_object(path), true)],
            SchemaChange::DropDatabase { path } => vec![(database_object(path), false)],
            SchemaChange::CreateSeries { device, series, .. } => series
                .iter()
                .map(|s| (series_object(device, &s.measurement), true))
                .collect(),
            SchemaChange::DeleteSeries { series } => series
                .iter()
                .map(|(d, m)| (series_object(d, m), false))
                .collect(),
            SchemaChange::SetTtl { patterns, .. } => {
                patterns.iter().map(|p| (ttl_object(p), true)).collect()
            }
            SchemaChange::UnsetTtl { patterns } => {
                patterns.iter().map(|p| (ttl_object(p), false)).collect()
            }
            SchemaChange::PutUser { name, .. } => vec![(user_object(name), true)],
            SchemaChange::DropUser { name } => vec![(user_object(name), false)],
            SchemaChange::CreateTemplate {
                name, measurements, ..
            }
            | SchemaChange::AppendTemplate { name, measurements } => {
                let mut objects = vec![(template_object(name), true)];
                objects.extend(
                    measurements
                        .iter()
                        .map(|m| (template_measurement_object(name, &m.measurement), true)),
                );
                objects
            }
            SchemaChange::PruneTemplate { name, measurement } => {
                vec![(template_measurement_object(name, measurement), false)]
            }
            SchemaChange::DropTemplate { name } => vec![(template_object(name), false)],
            SchemaChange::SetTemplate { path, .. } => vec![(template_set_object(path), true)],
            SchemaChange::UnsetTemplate { path, .. } => vec![(template_set_object(path), false)],
            SchemaChange::ActivateTemplate { device } => vec![(activation_object(device), true)],
            SchemaChange::DeactivateTemplate { devices } => devices
                .iter()
                .map(|d| (activation_object(d), false))
                .collect(),
        }
    }
}

impl Engine {
    /// Logs a local schema change with the ops that go with it (a drop's tombstones), as one entry,
    /// and records its version for every object it sets. The caller holds `schema_changes`.
    pub(crate) async fn log_schema_change(
        &self,
        change: SchemaChange,
        mut with: Vec<Op>,
    ) -> Result<()> {
        let objects = change.objects();
        let mut ops = vec![Op::Meta(change.encode())];
        ops.append(&mut with);
        let (_, version) = self.storage.write(Origin::Local, None, ops).await?;
        let records: Vec<(String, ObjectVersion)> = objects
            .into_iter()
            .map(|(o, present)| (o, object_version(version, present)))
            .collect();
        self.catalog.set_schema_versions(&records)?;
        Ok(())
    }

    /// Holds the schema-change lock for a change made outside the engine (a user account), from
    /// the catalog change to [`Engine::log_user_change`].
    pub async fn schema_change_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.schema_changes.lock().await
    }

    /// Logs a user account change just made in the catalog (created or password changed when the
    /// account exists, dropped otherwise), for pipes that include `auth`. The caller holds
    /// [`Engine::schema_change_guard`].
    pub async fn log_user_change(&self, name: &str) -> Result<()> {
        let change = match self.catalog.user_password_hash(name)? {
            Some(password_hash) => SchemaChange::PutUser {
                name: name.to_string(),
                password_hash,
            },
            None => SchemaChange::DropUser {
                name: name.to_string(),
            },
        };
        self.log_schema_change(change, Vec::new()).await
    }

    /// Applies a schema change that arrived without a version (an IoTDB sender's plan node): it is
    /// versioned now, with the origin's instance, as such writes are, and applied as a peer's.
    pub async fn apply_unversioned_schema(
        &self,
        origin: Origin,
        change: SchemaChange,
    ) -> Result<()> {
        let instance = match origin {
            Origin::Pipe { instance } => instance,
            Origin::Local => self.storage.instance(),
        };
        let version = Version {
            hlc: self.storage.fresh_hlc(),
            instance,
        };
        self.apply_replicated(origin, version, vec![Op::Meta(change.encode())])
            .await
    }

    /// `CREATE DEVICE TEMPLATE` and `createSchemaTemplate`, logged for pipes.
    pub async fn create_template(
        &self,
        name: &str,
        aligned: bool,
        specs: &[crate::template::TemplateMeasurementSpec],
    ) -> Result<()> {
        let change = SchemaChange::CreateTemplate {
            name: name.to_string(),
            aligned,
            measurements: spec_list(specs),
        };
        self.logged(change, || self.create_template_now(name, aligned, specs))
            .await
    }

    /// `ALTER DEVICE TEMPLATE … ADD` and `appendSchemaTemplate`, logged for pipes (what was added,
    /// also when some measurements existed already and the statement reports 527).
    pub async fn append_template(
        &self,
        name: &str,
        specs: &[crate::template::TemplateMeasurementSpec],
    ) -> Result<()> {
        let _schema_change = self.schema_changes.lock().await;
        let before: Vec<String> = self
            .template(name)?
            .map(|t| t.measurements.keys().cloned().collect())
            .unwrap_or_default();
        let result = self.append_template_now(name, specs);
        let added: Vec<_> = specs
            .iter()
            .filter(|s| !before.contains(&s.0))
            .cloned()
            .collect();
        if !added.is_empty() && self.template(name)?.is_some() {
            let change = SchemaChange::AppendTemplate {
                name: name.to_string(),
                measurements: spec_list(&added),
            };
            self.log_schema_change(change, Vec::new()).await?;
        }
        result
    }

    /// Applies a local schema change with `apply` and logs it as `change`, under the schema-change
    /// lock.
    async fn logged(&self, change: SchemaChange, apply: impl FnOnce() -> Result<()>) -> Result<()> {
        let _schema_change = self.schema_changes.lock().await;
        apply()?;
        self.log_schema_change(change, Vec::new()).await
    }

    /// `pruneSchemaTemplate`, logged for pipes.
    pub async fn prune_template(&self, name: &str, measurement: &str) -> Result<()> {
        let change = SchemaChange::PruneTemplate {
            name: name.to_string(),
            measurement: measurement.to_string(),
        };
        self.logged(change, || self.prune_template_now(name, measurement))
            .await
    }

    /// `SET DEVICE TEMPLATE` and `setSchemaTemplate`, logged for pipes.
    pub async fn set_template(&self, name: &str, path: &str) -> Result<()> {
        let change = SchemaChange::SetTemplate {
            name: name.to_string(),
            path: path.to_string(),
        };
        self.logged(change, || self.set_template_now(name, path))
            .await
    }

    /// `UNSET DEVICE TEMPLATE` and `unsetSchemaTemplate`, logged for pipes.
    pub async fn unset_template(&self, name: &str, path: &str) -> Result<()> {
        let change = SchemaChange::UnsetTemplate {
            name: name.to_string(),
            path: path.to_string(),
        };
        self.logged(change, || self.unset_template_now(name, path))
            .await
    }

    /// `DROP DEVICE TEMPLATE` and `dropSchemaTemplate`, logged for pipes.
    pub async fn drop_template(&self, name: &str) -> Result<()> {
        let change = SchemaChange::DropTemplate {
            name: name.to_string(),
        };
        self.logged(change, || self.drop_template_now(name)).await
    }

    /// `CREATE TIMESERIES USING DEVICE TEMPLATE ON device` and
    /// `createTimeseriesUsingSchemaTemplate`, logged for pipes.
    pub async fn activate_template(&self, device: &str) -> Result<()> {
        let change = SchemaChange::ActivateTemplate {
            device: device.to_string(),
        };
        self.logged(change, || self.activate_template_now(device))
            .await
    }

    /// `DEACTIVATE DEVICE TEMPLATE`: the devices' activations and template series go, and their
    /// data with them, in one logged entry.
    pub async fn deactivate_template(
        &self,
        name: Option<&str>,
        patterns: &[Vec<duet_parser::PathNode>],
    ) -> Result<()> {
        let _schema_change = self.schema_changes.lock().await;
        let (devices, series) = self.deactivate_template_now(name, patterns)?;
        self.log_schema_change(
            SchemaChange::DeactivateTemplate { devices },
            Self::drop_tombstones(series),
        )
        .await
    }

    /// The change a series creation logs.
    pub(crate) fn create_series_change(
        device: &str,
        aligned: bool,
        specs: &[(String, DataType, String, String)],
    ) -> SchemaChange {
        SchemaChange::CreateSeries {
            device: device.to_string(),
            aligned,
            series: specs
                .iter()
                .map(|(m, t, e, c)| SeriesSpec {
                    measurement: m.clone(),
                    data_type: t.name().to_string(),
                    encoding: e.clone(),
                    compressor: c.clone(),
                })
                .collect(),
        }
    }

    /// Tombstones over all time for dropped series.
    pub(crate) fn drop_tombstones(series: Vec<String>) -> Vec<Op> {
        if series.is_empty() {
            return Vec::new();
        }
        vec![Op::Delete(DeleteOp {
            series,
            start: i64::MIN,
            end: i64::MAX,
        })]
    }

    /// The schema as changes that recreate it, each with the version of its object's last change,
    /// for a pipe's history: every database, the series matching `pattern`, every TTL rule, and the
    /// recorded drops of each. A peer applies each only over an older change of its own, so a
    /// snapshot never undoes a newer change, whenever it arrives. The pipe's filter then keeps the
    /// kinds and paths it sends.
    pub fn schema_snapshot(
        &self,
        pattern: &[duet_parser::PathNode],
        local_instance: u64,
    ) -> Result<Vec<(SchemaChange, Version)>> {
        let unknown = Version {
            hlc: 0,
            instance: local_instance,
        };
        let recorded = |object: &str| -> Result<Version> {
            Ok(self
                .catalog
                .schema_version(object)?
                .map(|v| version_of(&v))
                .unwrap_or(unknown))
        };
        let mut out = Vec::new();
        let (databases, series): (Vec<String>, Vec<SeriesInfo>) = {
            let schema = self.schema_read()?;
            // Template series come with their template's activation, sent after it.
            (
                schema.databases().cloned().collect(),
                schema
                    .matching_series(pattern)
                    .into_iter()
                    .filter(|s| !schema.is_template_series(&s.device, &s.measurement))
                    .collect(),
            )
        };
        for db in databases {
            let version = recorded(&database_object(&db))?;
            out.push((SchemaChange::CreateDatabase { path: db }, version));
        }
        for name in self.template_names()? {
            if let Some(template) = self.template(&name)? {
                let version = recorded(&template_object(&name))?;
                let measurements = template
                    .measurements
                    .iter()
                    .map(|(m, i)| SeriesSpec {
                        measurement: m.clone(),
                        data_type: i.data_type.name().to_string(),
                        encoding: i.encoding.clone(),
                        compressor: i.compressor.clone(),
                    })
                    .collect();
                out.push((
                    SchemaChange::CreateTemplate {
                        name,
                        aligned: template.aligned,
                        measurements,
                    },
                    version,
                ));
            }
        }
        let (set_on, activated): (Vec<(String, String)>, Vec<String>) = {
            let schema = self.schema_read()?;
            (
                schema
                    .templates
                    .set_on
                    .iter()
                    .map(|(p, t)| (p.clone(), t.clone()))
                    .collect(),
                schema
                    .devices()
                    .iter()
                    .filter(|(_, d)| d.template.is_some())
                    .map(|(device, _)| device.clone())
                    .collect(),
            )
        };
        for (path, name) in set_on {
            let version = recorded(&template_set_object(&path))?;
            out.push((SchemaChange::SetTemplate { name, path }, version));
        }
        for device in activated {
            let version = recorded(&activation_object(&device))?;
            out.push((SchemaChange::ActivateTemplate { device }, version));
        }
        for s in series {
            let version = recorded(&series_object(&s.device, &s.measurement))?;
            out.push((
                SchemaChange::CreateSeries {
                    device: s.device.clone(),
                    aligned: s.aligned,
                    series: vec![SeriesSpec {
                        measurement: s.measurement.clone(),
                        data_type: s.data_type.name().to_string(),
                        encoding: s.encoding.clone(),
                        compressor: s.compressor.clone(),
                    }],
                },
                version,
            ));
        }
        for (pattern, ttl_ms) in self.catalog.ttl_rules()? {
            let version = recorded(&ttl_object(&pattern))?;
            out.push((
                SchemaChange::SetTtl {
                    patterns: vec![pattern],
                    ttl_ms,
                },
                version,
            ));
        }
        for name in self.catalog.list_users()? {
            if let Some(password_hash) = self.catalog.user_password_hash(&name)? {
                let version = recorded(&user_object(&name))?;
                out.push((
                    SchemaChange::PutUser {
                        name,
                        password_hash,
                    },
                    version,
                ));
            }
        }
        // What was dropped here: the peer may still hold it from before the pipe existed.
        for (object, v) in self.catalog.schema_versions_with_prefix("")? {
            if v.present {
                continue;
            }
            let change = if let Some(path) = object.strip_prefix("db:") {
                SchemaChange::DropDatabase {
                    path: path.to_string(),
                }
            } else if let Some(series) = object.strip_prefix("ts:") {
                let Some((device, measurement)) = series.split_once('\u{1f}') else {
                    continue;
                };
                SchemaChange::DeleteSeries {
                    series: vec![(device.to_string(), measurement.to_string())],
                }
            } else if let Some(pattern) = object.strip_prefix("ttl:") {
                SchemaChange::UnsetTtl {
                    patterns: vec![pattern.to_string()],
                }
            } else if let Some(name) = object.strip_prefix("user:") {
                SchemaChange::DropUser {
                    name: name.to_string(),
                }
            } else if let Some(name) = object.strip_prefix("tpl:") {
                SchemaChange::DropTemplate {
                    name: name.to_string(),
                }
            } else if let Some(m) = object.strip_prefix("tplm:") {
                let Some((name, measurement)) = m.split_once('\u{1f}') else {
                    continue;
                };
                SchemaChange::PruneTemplate {
                    name: name.to_string(),
                    measurement: measurement.to_string(),
                }
            } else if let Some(path) = object.strip_prefix("tplset:") {
                // The template's name is not needed to unset what is set on a path.
                SchemaChange::UnsetTemplate {
                    name: String::new(),
                    path: path.to_string(),
                }
            } else if let Some(device) = object.strip_prefix("tplact:") {
                SchemaChange::DeactivateTemplate {
                    devices: vec![device.to_string()],
                }
            } else {
                continue;
            };
            out.push((change, version_of(&v)));
        }
        Ok(out)
    }

    /// Whether `version` is older than the recorded last change of `object` (an equal one is
    /// applied again: re-applying a change is harmless, and it writes a drop's tombstones again if a
    /// crash lost them).
    ///
    /// An object that exists here without a record (created before versions were recorded, or by
    /// data) counts as changed at `{0, this instance}`, the version a pipe's history gives it: so
    /// when two such histories cross, the same side wins on both instead of each taking the
    /// other's. An object with no record that does not exist here is superseded by nothing.
    fn superseded(&self, object: &str, version: Version) -> Result<bool> {
        let exists = self.exists_here(object)?;
        self.superseded_given(object, version, exists)
    }

    fn superseded_given(&self, object: &str, version: Version, exists: bool) -> Result<bool> {
        let current = match self.catalog.schema_version(object)? {
            Some(v) => version_of(&v),
            None if exists => Version {
                hlc: 0,
                instance: self.storage.instance(),
            },
            None => return Ok(false),
        };
        Ok(current > version)
    }

    /// Whether a database, series, TTL rule or user `object` names exists here (templates: not
    /// looked at, as if absent).
    fn exists_here(&self, object: &str) -> Result<bool> {
        if let Some(path) = object.strip_prefix("db:") {
            return Ok(self.schema_read()?.databases().any(|db| db == path));
        }
        if let Some(series) = object.strip_prefix("ts:") {
            return Ok(match series.split_once('\u{1f}') {
                Some((device, measurement)) => self
                    .schema_read()?
                    .series_type(device, measurement)
                    .is_some(),
                None => false,
            });
        }
        if let Some(pattern) = object.strip_prefix("ttl:") {
            return Ok(self.catalog.ttl_rules()?.iter().any(|(p, _)| p == pattern));
        }
        if let Some(name) = object.strip_prefix("user:") {
            return Ok(self.catalog.user_password_hash(name)?.is_some());
        }
        Ok(false)
    }

    /// Whether `device`.`measurement`, or a database above it, was dropped here by a change newer
    /// than `version` (catalog only: callable under the schema lock).
    pub(crate) fn dropped_since(
        &self,
        device: &str,
        measurement: &str,
        version: Version,
    ) -> Result<bool> {
        Ok(
            self.superseded_given(&series_object(device, measurement), version, false)?
                || self.dropped_above(device, version)?,
        )
    }

    /// Records series just created by a replicated write as present at the write's version.
    pub(crate) fn record_created_series(
        &self,
        device: &str,
        created: &[(String, DataType, String, String)],
        version: Version,
    ) -> Result<()> {
        let records: Vec<_> = created
            .iter()
            .map(|(m, _, _, _)| (series_object(device, m), object_version(version, true)))
            .collect();
        self.catalog.set_schema_versions(&records)?;
        Ok(())
    }

    /// Whether a database above `device` was dropped by a change newer than `version` (a series
    /// created before that drop must not come back with it).
    fn dropped_above(&self, device: &str, version: Version) -> Result<bool> {
        let nodes = paths::split(device);
        for n in 2..=nodes.len() {
            let db = paths::join(&nodes[..n]);
            if let Some(v) = self.catalog.schema_version(&database_object(&db))? {
                if !v.present && version_of(&v) > version {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Applies a change a peer sent, object by object, each only over an older change (the highest
    /// version wins, as for points); records the versions; returns the tombstones the entry must
    /// also carry (the series a drop removed here, which may be more or fewer than the sender's).
    /// The caller holds `schema_changes`.
    pub(crate) fn apply_schema_change(
        &self,
        change: &SchemaChange,
        version: Version,
    ) -> Result<Vec<Op>> {
        let mut records = Vec::new();
        let mut tombstones = Vec::new();
        match change {
            SchemaChange::CreateDatabase { path } => {
                let object = database_object(path);
                if !self.superseded(&object, version)? {
                    let path = crate::engine::canonical_path(path)?;
                    let mut schema = self.schema_write()?;
                    // A database above or below the path (created here by data or series that
                    // arrived first) already holds what the peer's would: creating it would only
                    // fail, and stall the pipe.
                    let nodes = paths::split(&path);
                    let overlaps = schema.databases().any(|db| {
                        let db_nodes = paths::split(db);
                        let n = db_nodes.len().min(nodes.len());
                        db_nodes[..n] == nodes[..n]
                    });
                    if !overlaps {
                        schema.create_database(&self.catalog, &path)?;
                    }
                    records.push((object, object_version(version, true)));
                }
            }
            SchemaChange::DropDatabase { path } => {
                let object = database_object(path);
                if !self.superseded(&object, version)? {
                    let mut schema = self.schema_write()?;
                    if schema.databases().any(|db| db == path) {
                        // Series created after the drop (by a newer change) survive it: they are
                        // made again, in a database made again. The tombstones hide only points
                        // older than the drop, so they may cover these series too.
                        let mut below = paths::split(path)
                            .into_iter()
                            .map(duet_parser::PathNode::Name)
                            .collect::<Vec<_>>();
                        below.push(duet_parser::PathNode::Many);
                        let mut newer = Vec::new();
                        for s in schema.matching_series(&below) {
                            // The schema lock is held here: the series exists, by construction.
                            let object = series_object(&s.device, &s.measurement);
                            if self.superseded_given(&object, version, true)? {
                                newer.push(s);
                            }
                        }
                        tombstones.extend(schema.drop_database(&self.catalog, path)?);
                        if !newer.is_empty() {
                            schema.create_database(&self.catalog, path)?;
                            for s in newer {
                                schema.create_series(
                                    &self.catalog,
                                    &s.device,
                                    s.aligned,
                                    &[(s.measurement, s.data_type, s.encoding, s.compressor)],
                                    false,
                                )?;
                            }
                        }
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::CreateSeries {
                device,
                aligned,
                series,
            } => {
                if self.dropped_above(device, version)? {
                    return Ok(Vec::new());
                }
                for spec in series {
                    let object = series_object(device, &spec.measurement);
                    if self.superseded(&object, version)? {
                        continue;
                    }
                    let wanted = DataType::from_name(&spec.data_type).ok_or_else(|| {
                        EngineError::IllegalParameter(format!(
                            "unknown data type {} in a replicated schema change",
                            spec.data_type
                        ))
                    })?;
                    let mut schema = self.schema_write()?;
                    let existing = schema.series_type(device, &spec.measurement);
                    if existing != Some(wanted) {
                        if existing.is_some() {
                            // The newer creation wins: the series is made again with its type, and
                            // the points of the old one are hidden by tombstones of this version.
                            let old = series_here(&schema, device, &spec.measurement);
                            tombstones.extend(old.iter().map(|s| s.key.clone()));
                            schema.drop_series(&self.catalog, &old)?;
                        }
                        schema.create_series(
                            &self.catalog,
                            device,
                            *aligned,
                            &[(
                                spec.measurement.clone(),
                                wanted,
                                spec.encoding.clone(),
                                spec.compressor.clone(),
                            )],
                            true,
                        )?;
                    }
                    records.push((object, object_version(version, true)));
                }
            }
            SchemaChange::DeleteSeries { series } => {
                for (device, measurement) in series {
                    let object = series_object(device, measurement);
                    if self.superseded(&object, version)? {
                        continue;
                    }
                    let mut schema = self.schema_write()?;
                    let existing = series_here(&schema, device, measurement);
                    if !existing.is_empty() {
                        tombstones.extend(existing.iter().map(|s| s.key.clone()));
                        schema.drop_series(&self.catalog, &existing)?;
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::SetTtl { patterns, ttl_ms } => {
                let newer: Vec<String> = patterns
                    .iter()
                    .filter(|p| !self.superseded(&ttl_object(p), version).unwrap_or(true))
                    .cloned()
                    .collect();
                if !newer.is_empty() {
                    self.catalog.set_ttl(&newer, *ttl_ms)?;
                    self.reload_ttl()?;
                    records.extend(
                        newer
                            .iter()
                            .map(|p| (ttl_object(p), object_version(version, true))),
                    );
                }
            }
            SchemaChange::UnsetTtl { patterns } => {
                let newer: Vec<String> = patterns
                    .iter()
                    .filter(|p| !self.superseded(&ttl_object(p), version).unwrap_or(true))
                    .cloned()
                    .collect();
                if !newer.is_empty() {
                    self.catalog.unset_ttl(&newer)?;
                    self.reload_ttl()?;
                    records.extend(
                        newer
                            .iter()
                            .map(|p| (ttl_object(p), object_version(version, false))),
                    );
                }
            }
            // Accounts and templates are applied below.
            SchemaChange::PutUser { .. } | SchemaChange::DropUser { .. } => {}
            _ => {
                let (r, t) = self.apply_template_change(change, version)?;
                records.extend(r);
                tombstones.extend(t);
            }
        }
        if let SchemaChange::PutUser {
            name,
            password_hash,
        } = change
        {
            let object = user_object(name);
            if !self.superseded(&object, version)? {
                self.catalog.put_user_hash(name, password_hash)?;
                records.push((object, object_version(version, true)));
            }
        }
        if let SchemaChange::DropUser { name } = change {
            let object = user_object(name);
            // Root is never dropped (nor can a peer ask for it).
            if name != duet_catalog::ROOT_USER && !self.superseded(&object, version)? {
                self.catalog.remove_user_if_present(name)?;
                records.push((object, object_version(version, false)));
            }
        }
        if !records.is_empty() {
            self.catalog.set_schema_versions(&records)?;
        }
        Ok(Self::drop_tombstones(tombstones))
    }
}

impl Engine {
    /// A replicated template change: each object only over an older recorded change, and
    /// idempotently (what is already as the change says stays). Returns the version records and the
    /// series whose data a deactivation removes.
    fn apply_template_change(
        &self,
        change: &SchemaChange,
        version: Version,
    ) -> Result<(VersionRecords, Vec<String>)> {
        let mut records = Vec::new();
        let mut tombstones = Vec::new();
        match change {
            SchemaChange::CreateTemplate {
                name,
                aligned,
                measurements,
            } => {
                let object = template_object(name);
                if self.superseded(&object, version)? {
                    return Ok((records, tombstones));
                }
                let specs = specs_of(measurements)?;
                match self.template(name)? {
                    None => self.create_template_now(name, *aligned, &specs)?,
                    Some(existing) => {
                        let missing: Vec<_> = specs
                            .into_iter()
                            .filter(|s| !existing.measurements.contains_key(&s.0))
                            .collect();
                        if !missing.is_empty() {
                            self.append_template_now(name, &missing)?;
                        }
                    }
                }
                records.push((object, object_version(version, true)));
                for m in measurements {
                    records.push((
                        template_measurement_object(name, &m.measurement),
                        object_version(version, true),
                    ));
                }
            }
            SchemaChange::AppendTemplate { name, measurements } => {
                let Some(existing) = self.template(name)? else {
                    return Ok((records, tombstones));
                };
                let mut missing = Vec::new();
                for (spec, m) in specs_of(measurements)?.into_iter().zip(measurements) {
                    let object = template_measurement_object(name, &m.measurement);
                    if self.superseded(&object, version)? {
                        continue;
                    }
                    if !existing.measurements.contains_key(&spec.0) {
                        missing.push(spec);
                    }
                    records.push((object, object_version(version, true)));
                }
                if !missing.is_empty() {
                    self.append_template_now(name, &missing)?;
                }
            }
            SchemaChange::PruneTemplate { name, measurement } => {
                let object = template_measurement_object(name, measurement);
                if !self.superseded(&object, version)? {
                    let present = self
                        .template(name)?
                        .is_some_and(|t| t.measurements.contains_key(measurement));
                    if present {
                        self.prune_template_now(name, measurement)?;
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::DropTemplate { name } => {
                let object = template_object(name);
                if !self.superseded(&object, version)? {
                    if self.template(name)?.is_some() {
                        self.drop_template_now(name)?;
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::SetTemplate { name, path } => {
                let object = template_set_object(path);
                if !self.superseded(&object, version)? {
                    let current = self.schema_read()?.templates.set_on.get(path).cloned();
                    if current.as_deref() != Some(name.as_str()) {
                        self.set_template_now(name, path)?;
                    }
                    records.push((object, object_version(version, true)));
                }
            }
            SchemaChange::UnsetTemplate { path, .. } => {
                let object = template_set_object(path);
                if !self.superseded(&object, version)? {
                    let current = self.schema_read()?.templates.set_on.get(path).cloned();
                    if let Some(name) = current {
                        self.unset_template_now(&name, path)?;
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::ActivateTemplate { device } => {
                let object = activation_object(device);
                if !self.superseded(&object, version)? {
                    let active = self
                        .schema_read()?
                        .device(device)
                        .is_some_and(|d| d.template.is_some());
                    if !active {
                        self.activate_template_now(device)?;
                    }
                    records.push((object, object_version(version, true)));
                }
            }
            SchemaChange::DeactivateTemplate { devices } => {
                for device in devices {
                    let object = activation_object(device);
                    if self.superseded(&object, version)? {
                        continue;
                    }
                    let active = self
                        .schema_read()?
                        .device(device)
                        .is_some_and(|d| d.template.is_some());
                    if active {
                        let pattern: Vec<duet_parser::PathNode> = paths::split(device)
                            .into_iter()
                            .map(duet_parser::PathNode::Name)
                            .collect();
                        let (_, series) = self.deactivate_template_now(None, &[pattern])?;
                        tombstones.extend(series);
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            _ => {}
        }
        Ok((records, tombstones))
    }
}

/// The series `device`.`measurement` as this instance has it (none or one).
fn series_here(schema: &crate::schema::Schema, device: &str, measurement: &str) -> Vec<SeriesInfo> {
    let nodes: Vec<duet_parser::PathNode> = paths::split(device)
        .into_iter()
        .chain(std::iter::once(measurement.to_string()))
        .map(duet_parser::PathNode::Name)
        .collect();
    schema
        .matching_series(&nodes)
        .into_iter()
        .filter(|s| s.device == device && s.measurement == measurement)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_name_their_kind_and_paths() {
        let changes = [
            SchemaChange::CreateDatabase {
                path: "root.sg".into(),
            },
            SchemaChange::CreateSeries {
                device: "root.sg.d1".into(),
                aligned: true,
                series: vec![SeriesSpec {
                    measurement: "s1".into(),
                    data_type: "INT64".into(),
                    encoding: "TS_2DIFF".into(),
                    compressor: "LZ4".into(),
                }],
            },
            SchemaChange::DeleteSeries {
                series: vec![("root.sg.d1".into(), "s1".into())],
            },
            SchemaChange::SetTtl {
                patterns: vec!["root.sg.**".into()],
                ttl_ms: 1000,
            },
        ];
        for c in &changes {
            assert_eq!(&SchemaChange::decode(&c.encode()).unwrap(), c);
        }
        assert_eq!(changes[1].paths(), ["root.sg.d1.s1"]);
        assert_eq!(changes[3].kind(), SchemaKind::Ttl);
        assert!(SchemaChange::decode(b"{\"change\":\"nope\"}").is_err());
    }
}
