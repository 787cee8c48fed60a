//! Schema changes as the change log carries them to a pipe's peer: `CREATE DATABASE`, `DROP
//! DATABASE`, `CREATE [ALIGNED] TIMESERIES`, `DELETE TIMESERIES`, `SET TTL` and `UNSET TTL` each log one
//! entry holding a [`SchemaChange`] (storage's `Op::Meta`, encoded here as JSON) next to the tombstones
//! a drop writes, under one version. A pipe whose `inclusion` covers the change's kind sends it; the
//! peer applies it through [`Engine::apply_replicated`] with the original version and the pipe as
//! origin, so a double-living pipe never sends it back.
//!
//! **Invariant:** every schema object (a database, a series — also one a write created —, a TTL
//! rule, a user, a template, its measurements, set paths and activations) has the version of its
//! last change recorded in the catalog, with whether it left the object present; a replicated change
//! applies to an object only over an older change, as a point overwrites only an older point, and
//! never fails validation forever (it takes what depends on what it removes along, or is skipped
//! and recorded). So the two sides converge whatever order changes arrive in, concurrent creates of
//! one series with different types resolve to the newer one on both sides (the older type's points
//! hidden alike on both: see `replicate`), concurrent template changes resolve per object, a history
//! snapshot never undoes a newer change, and re-applying a change changes nothing.
//!
//! Local changes are checked, logged, then applied, and drops on the receiver too (after computing
//! what they hide here), so a failed log write changes nothing: never a local change the peer does
//! not get, never a drop without its tombstones. A template set, extension or activation carries
//! the version of what it was made on (`made_on`), so the receiver waits for that creation or set
//! instead of deciding by what happened to arrive first.

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
        /// The series the drop removed on the instance that made it, by device and measurement:
        /// a pipe whose pattern covers only part of the database sends their deletion instead of
        /// the drop. (Empty in a history's record of a drop.)
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        series: Vec<(String, String)>,
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
    /// A role created (its grants travel as [`SchemaChange::PutAuthority`]).
    PutRole {
        name: String,
    },
    DropRole {
        name: String,
    },
    /// Everything a user or role now holds itself: its grants and, for a user, its roles — the
    /// whole state, so applying the newest one is all a peer needs whatever order they arrive in.
    PutAuthority {
        /// `user` or `role`.
        kind: String,
        name: String,
        grants: Vec<GrantSpec>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
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
        /// The version of the template's creation this change was made on (see
        /// [`Dependency`]); `None` from senders that do not say (IoTDB, older entries).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_on: Option<Version>,
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
        /// The version of the template's creation this change was made on (see
        /// [`Dependency`]); `None` from senders that do not say (IoTDB, older entries).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_on: Option<Version>,
    },
    UnsetTemplate {
        name: String,
        path: String,
    },
    ActivateTemplate {
        device: String,
        /// The version of the set above the device this activation was made on; `None` from
        /// senders that do not say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_on: Option<Version>,
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
            SchemaChange::PutUser { .. }
            | SchemaChange::DropUser { .. }
            | SchemaChange::PutRole { .. }
            | SchemaChange::DropRole { .. }
            | SchemaChange::PutAuthority { .. } => SchemaKind::Auth,
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
            SchemaChange::CreateDatabase { path } | SchemaChange::DropDatabase { path, .. } => {
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
            SchemaChange::ActivateTemplate { device, .. } => vec![device.clone()],
            SchemaChange::DeactivateTemplate { devices } => devices.clone(),
            // Accounts and template definitions are not under a path: a pipe's pattern does not
            // select them.
            SchemaChange::PutUser { .. }
            | SchemaChange::DropUser { .. }
            | SchemaChange::PutRole { .. }
            | SchemaChange::DropRole { .. }
            | SchemaChange::PutAuthority { .. }
            | SchemaChange::CreateTemplate { .. }
            | SchemaChange::AppendTemplate { .. }
            | SchemaChange::PruneTemplate { .. }
            | SchemaChange::DropTemplate { .. } => Vec::new(),
        }
    }
}

/// One grant as a replicated authority carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    pub privilege: String,
    pub path: String,
    pub grant_option: bool,
}

/// The key of a schema object in the catalog's version records.
fn database_object(path: &str) -> String {
    format!("db:{path}")
}

pub(crate) fn series_object(device: &str, measurement: &str) -> String {
    format!("ts:{device}\u{1f}{measurement}")
}

fn ttl_object(pattern: &str) -> String {
    format!("ttl:{pattern}")
}

fn user_object(name: &str) -> String {
    format!("user:{name}")
}

fn role_object(name: &str) -> String {
    format!("role:{name}")
}

fn authority_object(kind: &str, name: &str) -> String {
    format!("authority:{kind}\u{1f}{name}")
}

pub(crate) fn template_object(name: &str) -> String {
    format!("tpl:{name}")
}

fn template_measurement_object(name: &str, measurement: &str) -> String {
    format!("tplm:{name}\u{1f}{measurement}")
}

pub(crate) fn template_set_object(path: &str) -> String {
    format!("tplset:{path}")
}

pub(crate) fn activation_object(device: &str) -> String {
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

pub(crate) fn spec_list(specs: &[crate::template::TemplateMeasurementSpec]) -> Vec<SeriesSpec> {
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

pub(crate) fn version_of(v: &ObjectVersion) -> Version {
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
            SchemaChange::DropDatabase { path, .. } => vec![(database_object(path), false)],
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
            SchemaChange::PutRole { name } => vec![(role_object(name), true)],
            SchemaChange::DropRole { name } => vec![(role_object(name), false)],
            SchemaChange::PutAuthority { kind, name, .. } => {
                vec![(authority_object(kind, name), true)]
            }
            SchemaChange::CreateTemplate {
                name, measurements, ..
            }
            | SchemaChange::AppendTemplate {
                name, measurements, ..
            } => {
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
            SchemaChange::ActivateTemplate { device, .. } => {
                vec![(activation_object(device), true)]
            }
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
        with: Vec<Op>,
    ) -> Result<()> {
        self.log_schema_changes(vec![change], with).await
    }

    /// [`Engine::log_schema_change`] for changes made together (an activation with the database
    /// it creates), in one entry.
    pub(crate) async fn log_schema_changes(
        &self,
        changes: Vec<SchemaChange>,
        mut with: Vec<Op>,
    ) -> Result<()> {
        let mut ops: Vec<Op> = changes.iter().map(|c| Op::Meta(c.encode())).collect();
        ops.append(&mut with);
        let (_, version) = self.storage.write(Origin::Local, None, ops).await?;
        self.record_change_versions(&changes, version)
    }

    /// Records `version` as the last change of every object `changes` set (a write's schema
    /// changes, once its entry is written).
    pub(crate) fn record_change_versions(
        &self,
        changes: &[SchemaChange],
        version: Version,
    ) -> Result<()> {
        let records: Vec<(String, ObjectVersion)> = changes
            .iter()
            .flat_map(SchemaChange::objects)
            .map(|(o, present)| (o, object_version(version, present)))
            .collect();
        if !records.is_empty() {
            self.catalog.set_schema_versions(&records)?;
        }
        Ok(())
    }

    /// Holds the schema-change lock for a change made outside the engine (a user account), from
    /// the catalog change to [`Engine::log_user_change`].
    pub async fn schema_change_guard(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.schema_changes.write().await
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

    /// Logs a user account about to be created or given a new password (`password_hash`), for
    /// pipes that include `auth`. The caller holds [`Engine::schema_change_guard`], has checked
    /// the change, and applies it to the catalog after this returns (a failed log write then
    /// changes nothing).
    pub async fn log_user_put(&self, name: &str, password_hash: &str) -> Result<()> {
        let change = SchemaChange::PutUser {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
        };
        self.log_schema_change(change, Vec::new()).await
    }

    /// Logs a role or a grant change just made in the catalog, for pipes that include `auth`: the
    /// role's existence and the whole authority of every holder named. The caller holds
    /// [`Engine::schema_change_guard`].
    pub async fn log_authority_change(
        &self,
        roles: &[String],
        holders: &[(&str, &str)],
    ) -> Result<()> {
        let mut changes = Vec::new();
        for role in roles {
            changes.push(if self.catalog.role_exists(role)? {
                SchemaChange::PutRole { name: role.clone() }
            } else {
                SchemaChange::DropRole { name: role.clone() }
            });
        }
        for (kind, name) in holders {
            if let Some(change) = self.authority_state(kind, name)? {
                changes.push(change);
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.log_schema_changes(changes, Vec::new()).await
    }

    /// What `kind` `name` holds now, as a replicated change (`None` when it does not exist).
    pub fn authority_state(&self, kind: &str, name: &str) -> Result<Option<SchemaChange>> {
        let holder = match kind {
            "user" => duet_catalog::Holder::User(name),
            _ => duet_catalog::Holder::Role(name),
        };
        let grants = match self.catalog.grants_of(holder) {
            Ok(grants) => grants,
            Err(duet_catalog::Error::UserNotExist(_) | duet_catalog::Error::RoleNotExist(_)) => {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        let roles = match holder {
            duet_catalog::Holder::User(user) => self.catalog.roles_of_user(user)?,
            duet_catalog::Holder::Role(_) => Vec::new(),
        };
        Ok(Some(SchemaChange::PutAuthority {
            kind: kind.to_string(),
            name: name.to_string(),
            grants: grants
                .into_iter()
                .map(|g| GrantSpec {
                    privilege: g.privilege.name().to_string(),
                    path: g.path,
                    grant_option: g.grant_option,
                })
                .collect(),
            roles,
        }))
    }

    /// Logs a user account about to be dropped, as [`Engine::log_user_put`].
    pub async fn log_user_drop(&self, name: &str) -> Result<()> {
        let change = SchemaChange::DropUser {
            name: name.to_string(),
        };
        self.log_schema_change(change, Vec::new()).await
    }

    /// The recorded version of template `name`'s creation, which a set or extension of it is made
    /// on (`None` when none is recorded).
    fn template_made_on(&self, name: &str) -> Result<Option<Version>> {
        self.recorded_present(&template_object(name))
    }

    /// The recorded version of `object`'s last change if it left the object present (catalog
    /// only: callable under the schema lock).
    pub(crate) fn recorded_present(&self, object: &str) -> Result<Option<Version>> {
        Ok(self
            .catalog
            .schema_version(object)?
            .filter(|v| v.present)
            .map(|v| version_of(&v)))
    }

    /// The recorded version of the set above `device`, which an activation of it is made on.
    pub(crate) fn set_made_on(&self, device: &str) -> Result<Option<Version>> {
        let path = self
            .schema_read()?
            .template_for(device)
            .map(|(path, _)| path.clone());
        let Some(path) = path else {
            return Ok(None);
        };
        self.recorded_present(&template_set_object(&path))
    }

    /// Applies a schema change that arrived without a version (an IoTDB sender's plan node): it is
    /// versioned now, with the origin's instance, as such writes are, and applied as a peer's.
    pub async fn apply_unversioned_schema(
        &self,
        origin: Origin,
        change: SchemaChange,
    ) -> Result<()> {
        let version = self.version_now(&origin);
        self.apply_replicated(origin, version, vec![Op::Meta(change.encode())])
            .await
    }

    /// A version for a change that arrived without one: a fresh clock reading, with the origin's
    /// instance (this instance's for a local origin).
    fn version_now(&self, origin: &Origin) -> Version {
        let instance = match origin {
            Origin::Pipe { instance } => *instance,
            Origin::Local => self.storage.instance(),
        };
        Version {
            hlc: self.storage.fresh_hlc(),
            instance,
        }
    }

    /// A user an IoTDB sender created (plans 621 and 638), applied as a peer's change versioned
    /// now, unless an account of that name exists here: IoTDB's receiver keeps an existing user as
    /// it is (its 'user already exists'), so this never overwrites one. `Ok(false)` when it
    /// exists. Checked and applied under the schema-change lock, so no local creation falls
    /// between.
    pub async fn create_peer_user(
        &self,
        origin: Origin,
        name: &str,
        password_hash: &str,
    ) -> Result<bool> {
        let _schema_change = self.schema_changes.write().await;
        if self.catalog.user_password_hash(name)?.is_some() {
            return Ok(false);
        }
        let version = self.version_now(&origin);
        let change = SchemaChange::PutUser {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
        };
        self.apply_replicated_locked(origin, version, vec![Op::Meta(change.encode())])
            .await?;
        Ok(true)
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
        self.logged(
            move || Ok(vec![change]),
            || crate::template::check_create_template(&*self.schema_read()?, name, specs),
            || self.create_template_now(name, aligned, specs),
        )
        .await
    }

    /// `ALTER DEVICE TEMPLATE … ADD` and `appendSchemaTemplate`, logged for pipes (what is added,
    /// also when some measurements exist already and the statement reports 527).
    pub async fn append_template(
        &self,
        name: &str,
        specs: &[crate::template::TemplateMeasurementSpec],
    ) -> Result<()> {
        let _schema_change = self.schema_changes.write().await;
        let added = crate::template::check_append_template(&*self.schema_read()?, name, specs)?;
        if !added.is_empty() {
            let change = SchemaChange::AppendTemplate {
                name: name.to_string(),
                measurements: spec_list(&added),
                made_on: self.template_made_on(name)?,
            };
            self.log_schema_change(change, Vec::new()).await?;
        }
        self.append_template_now(name, specs)
    }

    /// A local schema change, under the schema-change lock: checked by `check` (changing nothing),
    /// logged as `change`, then applied by `apply`. So a failed log write changes nothing here,
    /// never leaving a change the peer does not get; `apply` fails after the log only if the
    /// catalog itself fails (its checks passed under the same lock).
    async fn logged(
        &self,
        change: impl FnOnce() -> Result<Vec<SchemaChange>>,
        check: impl FnOnce() -> Result<()>,
        apply: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let _schema_change = self.schema_changes.write().await;
        check()?;
        self.log_schema_changes(change()?, Vec::new()).await?;
        apply().inspect_err(|e| {
            tracing::error!("a logged local schema change failed to apply here: {e}");
        })
    }

    /// `pruneSchemaTemplate`, logged for pipes.
    pub async fn prune_template(&self, name: &str, measurement: &str) -> Result<()> {
        let change = SchemaChange::PruneTemplate {
            name: name.to_string(),
            measurement: measurement.to_string(),
        };
        self.logged(
            move || Ok(vec![change]),
            || crate::template::check_prune_template(&*self.schema_read()?, name, measurement),
            || self.prune_template_now(name, measurement),
        )
        .await
    }

    /// `SET DEVICE TEMPLATE` and `setSchemaTemplate`, logged for pipes.
    pub async fn set_template(&self, name: &str, path: &str) -> Result<()> {
        let change = || {
            Ok(vec![SchemaChange::SetTemplate {
                name: name.to_string(),
                path: path.to_string(),
                made_on: self.template_made_on(name)?,
            }])
        };
        self.logged(
            change,
            || crate::template::check_set_template(&*self.schema_read()?, name, path),
            || self.set_template_now(name, path),
        )
        .await
    }

    /// `UNSET DEVICE TEMPLATE` and `unsetSchemaTemplate`, logged for pipes.
    pub async fn unset_template(&self, name: &str, path: &str) -> Result<()> {
        let change = SchemaChange::UnsetTemplate {
            name: name.to_string(),
            path: path.to_string(),
        };
        self.logged(
            move || Ok(vec![change]),
            || crate::template::check_unset_template(&*self.schema_read()?, name, path),
            || self.unset_template_now(name, path),
        )
        .await
    }

    /// `DROP DEVICE TEMPLATE` and `dropSchemaTemplate`, logged for pipes.
    pub async fn drop_template(&self, name: &str) -> Result<()> {
        let change = SchemaChange::DropTemplate {
            name: name.to_string(),
        };
        self.logged(
            move || Ok(vec![change]),
            || crate::template::check_drop_template(&*self.schema_read()?, name),
            || self.drop_template_now(name),
        )
        .await
    }

    /// `CREATE TIMESERIES USING DEVICE TEMPLATE ON device` and
    /// `createTimeseriesUsingSchemaTemplate`, logged for pipes.
    pub async fn activate_template(&self, device: &str) -> Result<()> {
        // The database at level 2 the activation creates (when none is above the device) goes
        // in its entry first, as a write's does.
        let change = || {
            let new_database = {
                let schema = self.schema_read()?;
                let nodes = paths::split(device);
                (schema.database_of(device).is_none() && nodes.len() >= 2)
                    .then(|| paths::join(&nodes[..2]))
            };
            let mut changes: Vec<SchemaChange> = new_database
                .map(|path| SchemaChange::CreateDatabase { path })
                .into_iter()
                .collect();
            changes.push(SchemaChange::ActivateTemplate {
                device: device.to_string(),
                made_on: self.set_made_on(device)?,
            });
            Ok(changes)
        };
        self.logged(
            change,
            || crate::template::check_activate_template(&*self.schema_read()?, device),
            || self.activate_template_now(device),
        )
        .await
    }

    /// `DEACTIVATE DEVICE TEMPLATE`: the devices' activations and template series go, and their
    /// data with them, in one logged entry.
    pub async fn deactivate_template(
        &self,
        name: Option<&str>,
        patterns: &[Vec<duet_parser::PathNode>],
    ) -> Result<()> {
        let _schema_change = self.schema_changes.write().await;
        // Logged first, then applied (as every drop: see `Engine::drop_database_logged`).
        let (devices, series) = self.deactivation_plan(name, patterns)?;
        self.log_schema_change(
            SchemaChange::DeactivateTemplate {
                devices: devices.clone(),
            },
            Self::drop_tombstones(series),
        )
        .await?;
        self.deactivate_devices(&devices)?;
        Ok(())
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
            let made_on = self.template_made_on(&name)?;
            out.push((
                SchemaChange::SetTemplate {
                    name,
                    path,
                    made_on,
                },
                version,
            ));
        }
        for device in activated {
            let version = recorded(&activation_object(&device))?;
            let made_on = self.set_made_on(&device)?;
            out.push((SchemaChange::ActivateTemplate { device, made_on }, version));
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
        for role in self.catalog.list_roles()? {
            let version = recorded(&role_object(&role))?;
            out.push((SchemaChange::PutRole { name: role.clone() }, version));
            if let Some(change) = self.authority_state("role", &role)? {
                out.push((change, recorded(&authority_object("role", &role))?));
            }
        }
        for user in self.catalog.list_users()? {
            if user == duet_catalog::ROOT_USER {
                continue;
            }
            if let Some(change) = self.authority_state("user", &user)? {
                out.push((change, recorded(&authority_object("user", &user))?));
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
                    series: Vec::new(),
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
            } else if let Some(name) = object.strip_prefix("role:") {
                SchemaChange::DropRole {
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

    /// Whether the database, series, TTL rule, user or template object `object` names exists here.
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
        let schema = self.schema_read()?;
        if let Some(name) = object.strip_prefix("tpl:") {
            return Ok(schema.templates.templates.contains_key(name));
        }
        if let Some(m) = object.strip_prefix("tplm:") {
            return Ok(m.split_once('\u{1f}').is_some_and(|(name, m)| {
                schema
                    .templates
                    .templates
                    .get(name)
                    .is_some_and(|t| t.measurements.contains_key(m))
            }));
        }
        if let Some(path) = object.strip_prefix("tplset:") {
            return Ok(schema.templates.set_on.contains_key(path));
        }
        if let Some(device) = object.strip_prefix("tplact:") {
            return Ok(schema.device(device).is_some_and(|d| d.template.is_some()));
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
        created: &[crate::write::CreatedSeries],
        version: Version,
    ) -> Result<()> {
        self.record_created_series_of(&[(device, created)], version)
    }

    /// [`Engine::record_created_series`] for the series of several devices, in one transaction.
    pub(crate) fn record_created_series_of(
        &self,
        created: &[(&str, &[crate::write::CreatedSeries])],
        version: Version,
    ) -> Result<()> {
        let records: Vec<_> = created
            .iter()
            .flat_map(|(device, specs)| {
                specs
                    .iter()
                    .map(|(m, _, _, _)| (series_object(device, m), object_version(version, true)))
            })
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
    /// version wins, as for points); records the versions; returns what it did to data: the series
    /// whose older points it hides here (which may be more or fewer than the sender's), and the
    /// series of a type that lost whose points are hidden up to a later version. The caller holds
    /// `schema_changes`.
    ///
    /// **A replicated change never fails validation forever:** it applies (taking with it what
    /// depends on what it removes: an unset or dropped template's activations, a losing template
    /// set path or series), or is superseded by a newer recorded change, or is skipped and recorded
    /// absent at its version (a set or activation of a template a newer change removed here). Only
    /// a dependency that has not arrived yet (a set of a template never seen here) is refused, for
    /// the pipe to send again once the earlier entry that creates it is applied.
    pub(crate) fn apply_schema_change(
        &self,
        change: &SchemaChange,
        version: Version,
    ) -> Result<Applied> {
        let mut records = Vec::new();
        let mut applied = Applied::default();
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
            SchemaChange::DropDatabase { path, .. } => {
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
                        applied
                            .tombstones
                            .extend(schema.drop_database(&self.catalog, path)?);
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
                    return Ok(applied);
                }
                for spec in series {
                    self.apply_series_creation(
                        device,
                        *aligned,
                        spec,
                        version,
                        &mut records,
                        &mut applied,
                    )?;
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
                        schema.drop_series(&self.catalog, &existing)?;
                    }
                    // The storage key follows from the change (device key, `.`, measurement), so
                    // a retried drop hides the points again even once the series is gone.
                    applied.tombstones.push(format!("{device}.{measurement}"));
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
            SchemaChange::PutUser { .. }
            | SchemaChange::DropUser { .. }
            | SchemaChange::PutRole { .. }
            | SchemaChange::DropRole { .. }
            | SchemaChange::PutAuthority { .. } => {}
            _ => {
                let (r, t) = self.apply_template_change(change, version)?;
                records.extend(r);
                // Template series removed here may hold points written after this change (before
                // this instance learned of it): hidden too, as the peer drops them on arrival
                // (`replicate`), so both sides hide the same points.
                for key in &t {
                    if let Some(newest) = self.newest_point_version(key)? {
                        if newest >= version {
                            applied.hidden_through.push((key.clone(), newest));
                        }
                    }
                }
                applied.tombstones.extend(t);
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
        self.apply_authority_change(change, version, &mut records)?;
        if !records.is_empty() {
            self.catalog.set_schema_versions(&records)?;
        }
        Ok(applied)
    }

    /// A replicated role or authority, applied over older ones only. An authority whose holder
    /// does not exist here (yet) is skipped, and so are roles it names that do not exist; root's
    /// privileges never change.
    fn apply_authority_change(
        &self,
        change: &SchemaChange,
        version: Version,
        records: &mut Vec<(String, ObjectVersion)>,
    ) -> Result<()> {
        match change {
            SchemaChange::PutRole { name } => {
                let object = role_object(name);
                if !self.superseded(&object, version)? {
                    match self.catalog.create_role(name) {
                        Ok(()) | Err(duet_catalog::Error::RoleExists(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    records.push((object, object_version(version, true)));
                }
            }
            SchemaChange::DropRole { name } => {
                let object = role_object(name);
                if !self.superseded(&object, version)? {
                    match self.catalog.drop_role(name) {
                        Ok(()) | Err(duet_catalog::Error::RoleNotExist(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    records.push((object, object_version(version, false)));
                }
            }
            SchemaChange::PutAuthority {
                kind,
                name,
                grants,
                roles,
            } => {
                let object = authority_object(kind, name);
                if name == duet_catalog::ROOT_USER || self.superseded(&object, version)? {
                    return Ok(());
                }
                let (holder, holder_object) = if kind == "user" {
                    (duet_catalog::Holder::User(name), user_object(name))
                } else {
                    (duet_catalog::Holder::Role(name), role_object(name))
                };
                // Batches may arrive out of order: an authority can come before the user or a
                // role it names. Unless that was dropped here, the batch is refused and its
                // sender sends it again (so nothing is lost); a dropped holder's is skipped.
                let dropped = |object: &str| -> Result<bool> {
                    Ok(self
                        .catalog
                        .schema_version(object)?
                        .is_some_and(|v| !v.present))
                };
                let holder_missing = match holder {
                    duet_catalog::Holder::User(user) => {
                        self.catalog.user_password_hash(user)?.is_none()
                    }
                    duet_catalog::Holder::Role(role) => !self.catalog.role_exists(role)?,
                };
                if holder_missing {
                    if dropped(&holder_object)? {
                        return Ok(());
                    }
                    return Err(EngineError::Internal(format!(
                        "the {kind} {name} has not arrived yet; the batch will be sent again"
                    )));
                }
                let mut kept_roles = Vec::new();
                for role in roles {
                    if self.catalog.role_exists(role)? {
                        kept_roles.push(role.clone());
                    } else if !dropped(&role_object(role))? {
                        return Err(EngineError::Internal(format!(
                            "the role {role} has not arrived yet; the batch will be sent again"
                        )));
                    }
                }
                let roles = &kept_roles;
                // A privilege this duetd does not know (a newer peer's) is left out.
                let grants: Vec<(duet_catalog::Privilege, String, bool)> = grants
                    .iter()
                    .filter_map(|g| {
                        let privilege = duet_catalog::Privilege::from_name(&g.privilege)?;
                        Some((privilege, g.path.clone(), g.grant_option))
                    })
                    .collect();
                self.catalog.replace_authority(holder, &grants, roles)?;
                records.push((object, object_version(version, true)));
            }
            _ => {}
        }
        Ok(())
    }

    /// One series of a replicated `CreateSeries`.
    fn apply_series_creation(
        &self,
        device: &str,
        aligned: bool,
        spec: &SeriesSpec,
        version: Version,
        records: &mut VersionRecords,
        applied: &mut Applied,
    ) -> Result<()> {
        let measurement = &spec.measurement;
        let object = series_object(device, measurement);
        let wanted = DataType::from_name(&spec.data_type).ok_or_else(|| {
            EngineError::IllegalParameter(format!(
                "unknown data type {} in a replicated schema change",
                spec.data_type
            ))
        })?;
        let existing = self.schema_read()?.series_type(device, measurement);
        if self.superseded(&object, version)? {
            // The type lost here: its points, when they arrive, are dropped instead of refused.
            if existing.is_some_and(|t| t != wanted) {
                records.push((
                    lost_type_object(device, measurement, wanted),
                    object_version(version, false),
                ));
            }
            return Ok(());
        }
        // A template set at or above the series: the newer of the set and this creation wins.
        let conflicts = self
            .schema_read()?
            .set_paths_over(&format!("{device}.{}", paths::join(&[measurement])));
        for q in &conflicts {
            if self.superseded_given(&template_set_object(q), version, true)? {
                tracing::warn!(
                    "a replicated creation of {device}.{measurement} lost to device template set \
                     on {q} by a newer change; skipped"
                );
                records.push((object, object_version(version, false)));
                return Ok(());
            }
        }
        for q in conflicts {
            let (devices, keys) = self.force_unset(&q)?;
            applied.tombstones.extend(keys);
            self.record_cascade(records, template_set_object(&q), version)?;
            for d in devices {
                self.record_cascade(records, activation_object(&d), version)?;
            }
        }
        if existing != Some(wanted) {
            if let Some(old_type) = existing {
                // The newer creation wins: the series is made again with its type. The old type's
                // points are hidden: those older than this change by its tombstones, and those
                // written here after it (before this instance learned of it) up to the newest of
                // them, as the peer hides them when they arrive (see `replicate`).
                let old = series_here(&*self.schema_read()?, device, measurement);
                for s in &old {
                    applied.tombstones.push(s.key.clone());
                    if let Some(newest) = self.newest_point_version(&s.key)? {
                        if newest >= version {
                            tracing::warn!(
                                "{}: created again as {wanted} by a newer concurrent creation; \
                                 its {old_type} points written up to {newest:?} are hidden",
                                s.key
                            );
                            applied.hidden_through.push((s.key.clone(), newest));
                        }
                    }
                }
                records.push((
                    lost_type_object(device, measurement, old_type),
                    object_version(version, false),
                ));
                self.schema_write()?.drop_series(&self.catalog, &old)?;
            }
            self.schema_write()?.create_series(
                &self.catalog,
                device,
                aligned,
                &[(
                    measurement.clone(),
                    wanted,
                    spec.encoding.clone(),
                    spec.compressor.clone(),
                )],
                true,
            )?;
        }
        records.push((object, object_version(version, true)));
        Ok(())
    }

    /// Records `object` absent at `version` when a winning change took it with it, unless a newer
    /// change of its own is recorded.
    fn record_cascade(
        &self,
        records: &mut VersionRecords,
        object: String,
        version: Version,
    ) -> Result<()> {
        if !self.superseded_given(&object, version, false)? {
            records.push((object, object_version(version, false)));
        }
        Ok(())
    }

    /// The highest version among the visible points of storage key `series`, if it has any (read
    /// in chunks: only when a series changes type).
    fn newest_point_version(&self, series: &str) -> Result<Option<Version>> {
        const CHUNK: usize = 65_536;
        let mut newest: Option<Version> = None;
        let mut start = i64::MIN;
        loop {
            let chunk = self.storage.scan(series, start, i64::MAX, CHUNK, false)?;
            if let Some(v) = chunk.versions.iter().max() {
                newest = newest.max(Some(*v));
            }
            match chunk.times.last() {
                Some(last) if chunk.times.len() == CHUNK && *last < i64::MAX => start = last + 1,
                _ => return Ok(newest),
            }
        }
    }

    /// The storage keys a replicated drop-like change hides here, computed before anything is
    /// changed, so the entry that carries them is written first and a failure between the two
    /// leaves nothing to recompute (a retried change finds the objects as they were).
    pub(crate) fn planned_tombstones(
        &self,
        change: &SchemaChange,
        version: Version,
    ) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        // A change of one object that a newer recorded change supersedes hides nothing.
        let object = match change {
            SchemaChange::DropDatabase { path, .. } => Some(database_object(path)),
            SchemaChange::DropTemplate { name } => Some(template_object(name)),
            SchemaChange::UnsetTemplate { path, .. } => Some(template_set_object(path)),
            SchemaChange::PruneTemplate { name, measurement } => {
                Some(template_measurement_object(name, measurement))
            }
            _ => None,
        };
        if let Some(object) = object {
            if self.superseded(&object, version)? {
                return Ok(keys);
            }
        }
        match change {
            SchemaChange::DropDatabase { path, .. } => {
                let schema = self.schema_read()?;
                if schema.databases().any(|db| db == path) {
                    keys.extend(
                        schema
                            .database_series(path)
                            .into_iter()
                            .map(|(d, m)| format!("{d}.{m}")),
                    );
                }
            }
            SchemaChange::DeleteSeries { series } => {
                for (device, measurement) in series {
                    if !self.superseded(&series_object(device, measurement), version)? {
                        keys.push(format!("{device}.{measurement}"));
                    }
                }
            }
            SchemaChange::DeactivateTemplate { devices } => {
                for device in devices {
                    // (`superseded` reads the schema: its lock is not held across it.)
                    if self.superseded(&activation_object(device), version)? {
                        continue;
                    }
                    let schema = self.schema_read()?;
                    if let Some(info) = schema.device(device).filter(|d| d.template.is_some()) {
                        keys.extend(info.measurements.keys().map(|m| format!("{device}.{m}")));
                    }
                }
            }
            SchemaChange::DropTemplate { name } => {
                keys.extend(self.template_device_keys(|t| t == name, None)?);
            }
            SchemaChange::UnsetTemplate { path, .. } => {
                let set = self.schema_read()?.templates.set_on.get(path).cloned();
                if let Some(name) = set {
                    keys.extend(self.template_device_keys(|t| t == name, Some(path))?);
                }
            }
            SchemaChange::PruneTemplate { name, measurement } => {
                let schema = self.schema_read()?;
                for (device, info) in schema.devices() {
                    if info.template.as_deref() == Some(name.as_str())
                        && info.measurements.contains_key(measurement)
                    {
                        keys.push(format!("{device}.{measurement}"));
                    }
                }
            }
            _ => {}
        }
        Ok(keys)
    }

    /// Storage keys of the series of devices that activated a template `which` accepts (under
    /// `under`, when given).
    fn template_device_keys(
        &self,
        which: impl Fn(&str) -> bool,
        under: Option<&str>,
    ) -> Result<Vec<String>> {
        let schema = self.schema_read()?;
        let under = under.map(paths::split);
        let mut keys = Vec::new();
        for (device, info) in schema.devices() {
            let Some(t) = info.template.as_deref() else {
                continue;
            };
            let nodes = paths::split(device);
            let inside = under
                .as_ref()
                .is_none_or(|u| u.len() <= nodes.len() && u[..] == nodes[..u.len()]);
            if which(t) && inside {
                keys.extend(info.measurements.keys().map(|m| format!("{device}.{m}")));
            }
        }
        Ok(keys)
    }
}

/// Where what a replicated template change was made on stands here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    /// Here (that version of it, or a newer one): the change applies.
    Here,
    /// Removed here at or after that version: the change is skipped and recorded.
    Removed,
    /// Not here yet: the change is refused for now, and applies once it arrives.
    NotYet,
}

fn not_yet(name: &str) -> EngineError {
    EngineError::Template(
        duet_proto::status::StatusCode::UndefinedTemplate,
        format!(
            "the creation of device template {name} that this change was made on is not here \
             yet: it must arrive first"
        ),
    )
}

/// What applying a replicated schema change did to data.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Storage keys whose points older than the change are hidden (tombstones at its version).
    pub tombstones: Vec<String>,
    /// Storage keys of a series whose type lost, with the newest version of the losing type's
    /// points: every point of the key up to that version is hidden, on both sides alike.
    pub hidden_through: Vec<(String, Version)>,
}

/// The version just above `v`: a tombstone at it hides `v` itself.
pub(crate) fn just_after(v: Version) -> Version {
    match v.instance.checked_add(1) {
        Some(instance) => Version {
            hlc: v.hlc,
            instance,
        },
        None => Version {
            hlc: v.hlc.saturating_add(1),
            instance: 0,
        },
    }
}

/// The record that a series' type `data_type` lost here to another (its creation was older): its
/// points arriving later are dropped, not refused.
pub(crate) fn lost_type_object(device: &str, measurement: &str, data_type: DataType) -> String {
    format!(
        "tslost:{device}\u{1f}{measurement}\u{1f}{}",
        data_type.name()
    )
}

/// Whether `e` is a refusal by the rules (as opposed to a failure of the catalog or storage).
fn is_refusal(e: &EngineError) -> bool {
    !matches!(
        e,
        EngineError::Catalog(_) | EngineError::Storage(_) | EngineError::Internal(_)
    )
}

impl Engine {
    /// Whether a template record says `name` was dropped here (by any change): a set or activation
    /// of it is then skipped, not waited for.
    fn template_dropped(&self, name: &str) -> Result<bool> {
        Ok(self
            .catalog
            .schema_version(&template_object(name))?
            .is_some_and(|v| !v.present))
    }

    /// A replicated template change, last writer wins per object (see
    /// [`Engine::apply_schema_change`]). A removal takes what depends on it with it: unsetting or
    /// dropping a template deactivates its devices (their template series and older points go),
    /// pruning a measurement removes it from the devices that use it, and a newer definition of a
    /// template replaces the older one's measurements. Returns the version records and the storage
    /// keys of the series removed.
    fn apply_template_change(
        &self,
        change: &SchemaChange,
        version: Version,
    ) -> Result<(VersionRecords, Vec<String>)> {
        let mut records = Vec::new();
        let mut tombstones = Vec::new();
        let absent = object_version(version, false);
        let present = object_version(version, true);
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
                    None => {
                        if let Err(e) = self.create_template_now(name, *aligned, &specs) {
                            if !is_refusal(&e) {
                                return Err(e);
                            }
                            tracing::warn!("a replicated device template {name} is refused here ({e}); skipped");
                            records.push((object, absent));
                            return Ok((records, tombstones));
                        }
                    }
                    Some(existing) => {
                        // The newer definition wins over the older one: a measurement it lacks or
                        // defines otherwise goes, unless changed here after it; what it adds comes.
                        for (m, info) in &existing.measurements {
                            let m_object = template_measurement_object(name, m);
                            if self.superseded_given(&m_object, version, true)? {
                                continue;
                            }
                            let same = specs.iter().any(|s| {
                                &s.0 == m
                                    && s.1 == info.data_type
                                    && s.2 == info.encoding
                                    && s.3 == info.compressor
                            });
                            if !same {
                                tombstones.extend(self.force_prune(name, m)?);
                                if !specs.iter().any(|s| &s.0 == m) {
                                    records.push((m_object, absent));
                                }
                            }
                        }
                        if existing.aligned != *aligned {
                            self.force_template_alignment(name, *aligned)?;
                        }
                        let now = self.template(name)?.unwrap_or_default();
                        let mut missing = Vec::new();
                        for s in &specs {
                            let m_object = template_measurement_object(name, &s.0);
                            if !now.measurements.contains_key(&s.0)
                                && !self.superseded_given(&m_object, version, false)?
                            {
                                missing.push(s.clone());
                            }
                        }
                        if !missing.is_empty() {
                            self.force_extend_template(name, &missing)?;
                        }
                    }
                }
                records.push((object, present));
                for m in measurements {
                    let m_object = template_measurement_object(name, &m.measurement);
                    if !self.superseded_given(&m_object, version, false)? {
                        records.push((m_object, present));
                    }
                }
            }
            SchemaChange::AppendTemplate {
                name,
                measurements,
                made_on,
            } => {
                if let Some(made_on) = made_on {
                    match self.template_dependency(name, *made_on)? {
                        Dependency::Here => {}
                        Dependency::Removed => return Ok((records, tombstones)),
                        Dependency::NotYet => return Err(not_yet(name)),
                    }
                }
                let Some(existing) = self.template(name)? else {
                    if self.template_dropped(name)? {
                        return Ok((records, tombstones));
                    }
                    return Err(not_yet(name));
                };
                let mut missing = Vec::new();
                for (spec, m) in specs_of(measurements)?.into_iter().zip(measurements) {
                    let object = template_measurement_object(name, &m.measurement);
                    if self.superseded(&object, version)? {
                        continue;
                    }
                    match existing.measurements.get(&spec.0) {
                        None => missing.push(spec),
                        Some(info)
                            if info.data_type != spec.1
                                || info.encoding != spec.2
                                || info.compressor != spec.3 =>
                        {
                            // This newer definition of the measurement replaces the one here.
                            tombstones.extend(self.force_prune(name, &spec.0)?);
                            missing.push(spec);
                        }
                        Some(_) => {}
                    }
                    records.push((object, present));
                }
                if !missing.is_empty() {
                    self.force_extend_template(name, &missing)?;
                }
            }
            SchemaChange::PruneTemplate { name, measurement } => {
                let object = template_measurement_object(name, measurement);
                if !self.superseded(&object, version)? {
                    let here = self
                        .template(name)?
                        .is_some_and(|t| t.measurements.contains_key(measurement));
                    if here {
                        tombstones.extend(self.force_prune(name, measurement)?);
                    }
                    records.push((object, absent));
                }
            }
            SchemaChange::DropTemplate { name } => {
                let object = template_object(name);
                if !self.superseded(&object, version)? {
                    if self.template(name)?.is_some() {
                        let (set_paths, devices, series) = self.force_drop_template(name)?;
                        if !set_paths.is_empty() {
                            tracing::warn!(
                                "device template {name} dropped by a replicated change: unset from \
                                 {set_paths:?} and deactivated on {} devices here",
                                devices.len()
                            );
                        }
                        tombstones.extend(series);
                        for p in set_paths {
                            self.record_cascade(&mut records, template_set_object(&p), version)?;
                        }
                        for d in devices {
                            self.record_cascade(&mut records, activation_object(&d), version)?;
                        }
                    }
                    records.push((object, absent));
                }
            }
            SchemaChange::SetTemplate {
                name,
                path,
                made_on,
            } => {
                let object = template_set_object(path);
                if !self.superseded(&object, version)? {
                    let (r, t) = self.apply_template_set(name, path, *made_on, version)?;
                    records.extend(r);
                    tombstones.extend(t);
                }
            }
            SchemaChange::UnsetTemplate { path, .. } => {
                let object = template_set_object(path);
                if !self.superseded(&object, version)? {
                    let (devices, series) = self.force_unset(path)?;
                    tombstones.extend(series);
                    for d in devices {
                        self.record_cascade(&mut records, activation_object(&d), version)?;
                    }
                    records.push((object, absent));
                }
            }
            SchemaChange::ActivateTemplate { device, made_on } => {
                let object = activation_object(device);
                if !self.superseded(&object, version)? {
                    let (active, set_above) = {
                        let schema = self.schema_read()?;
                        (
                            schema.device(device).is_some_and(|d| d.template.is_some()),
                            schema.template_for(device).is_some(),
                        )
                    };
                    if !active {
                        // What the activation was made on decides: the set it names here (or a
                        // newer one), its removal, or a set still to arrive. Without it (IoTDB),
                        // whatever is set or unset here.
                        let dependency = match made_on {
                            Some(made_on) => self.set_dependency(device, *made_on)?,
                            None if set_above => Dependency::Here,
                            None if self.unset_above(device)? => Dependency::Removed,
                            None => Dependency::NotYet,
                        };
                        if dependency == Dependency::NotYet {
                            return Err(EngineError::Template(
                                duet_proto::status::StatusCode::TemplateNotSet,
                                format!("the device template set above {device} that the activation was made on is not here yet: the set must arrive first"),
                            ));
                        }
                        let result = if dependency == Dependency::Here && set_above {
                            self.activate_template_now(device)
                        } else {
                            Err(EngineError::Template(
                                duet_proto::status::StatusCode::TemplateNotSet,
                                format!("the device template above {device} was unset or dropped by a newer change"),
                            ))
                        };
                        if let Err(e) = result {
                            if !is_refusal(&e) {
                                return Err(e);
                            }
                            tracing::warn!("a replicated activation of {device} is refused here ({e}); skipped");
                            records.push((object, absent));
                            return Ok((records, tombstones));
                        }
                    }
                    records.push((object, present));
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
                        tombstones.extend(self.deactivate_devices(std::slice::from_ref(device))?);
                    }
                    records.push((object, absent));
                }
            }
            _ => {}
        }
        Ok((records, tombstones))
    }

    /// Whether template `name`'s creation that a replicated set or extension was made on (at
    /// `made_on`) is here: that creation or a newer one (or a template here that predates version
    /// records), a removal at or after it, or neither yet (an older definition here waits for it,
    /// so an older drop arriving later never takes the set with it).
    fn template_dependency(&self, name: &str, made_on: Version) -> Result<Dependency> {
        let exists = self.template(name)?.is_some();
        Ok(match self.catalog.schema_version(&template_object(name))? {
            Some(v) if version_of(&v) >= made_on && v.present && exists => Dependency::Here,
            Some(v) if version_of(&v) >= made_on && !v.present => Dependency::Removed,
            None if exists => Dependency::Here,
            _ => Dependency::NotYet,
        })
    }

    /// [`Engine::template_dependency`] for an activation made on the set above `device` at
    /// `made_on`: a set at or above it recorded at that version or later (or predating version
    /// records), an unset at or after it, or neither yet.
    fn set_dependency(&self, device: &str, made_on: Version) -> Result<Dependency> {
        let set_here = self
            .schema_read()?
            .template_for(device)
            .map(|(path, _)| path.clone());
        let nodes = paths::split(device);
        let mut removed = false;
        for n in 2..=nodes.len() {
            let path = paths::join(&nodes[..n]);
            let record = self.catalog.schema_version(&template_set_object(&path))?;
            let is_set_here = set_here.as_deref() == Some(path.as_str());
            match record {
                Some(v) if version_of(&v) >= made_on && v.present && is_set_here => {
                    return Ok(Dependency::Here)
                }
                Some(v) if version_of(&v) >= made_on && !v.present => removed = true,
                None if is_set_here => return Ok(Dependency::Here),
                _ => {}
            }
        }
        Ok(if removed {
            Dependency::Removed
        } else {
            Dependency::NotYet
        })
    }

    /// Whether a path at or above `device` has a recorded unset (or its template a recorded drop):
    /// an activation under it was taken away by that change, it is not waiting for a set.
    fn unset_above(&self, device: &str) -> Result<bool> {
        let nodes = paths::split(device);
        for n in 2..=nodes.len() {
            let path = paths::join(&nodes[..n]);
            if let Some(v) = self.catalog.schema_version(&template_set_object(&path))? {
                if !v.present {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// A replicated `SET DEVICE TEMPLATE name TO path` that is newer than the last change of the
    /// path's own set: it replaces what conflicts with it when that is older (another template set
    /// on the path, above or below it, plain series under it), and is skipped and recorded when
    /// something newer conflicts or its template was dropped here.
    fn apply_template_set(
        &self,
        name: &str,
        path: &str,
        made_on: Option<Version>,
        version: Version,
    ) -> Result<(VersionRecords, Vec<String>)> {
        let object = template_set_object(path);
        let mut records = Vec::new();
        let mut tombstones = Vec::new();
        let skip = |why: String, mut records: VersionRecords, tombstones: Vec<String>| {
            tracing::warn!(
                "a replicated set of device template {name} on {path} is skipped: {why}"
            );
            records.push((object.clone(), object_version(version, false)));
            Ok((records, tombstones))
        };
        if let Some(made_on) = made_on {
            match self.template_dependency(name, made_on)? {
                Dependency::Here => {}
                Dependency::Removed => {
                    return skip(
                        format!("{name} was dropped here after the creation it was set on"),
                        records,
                        tombstones,
                    )
                }
                Dependency::NotYet => return Err(not_yet(name)),
            }
        }
        if self.template(name)?.is_none() {
            if self.template_dropped(name)? {
                return skip(format!("{name} was dropped here"), records, tombstones);
            }
            return Err(not_yet(name));
        }
        let (current, nested, plain) = {
            let schema = self.schema_read()?;
            let nodes = paths::split(path);
            let nested: Vec<String> = schema
                .set_paths_over(path)
                .into_iter()
                .filter(|q| q != path)
                .collect();
            let plain: Vec<SeriesInfo> = schema
                .devices()
                .iter()
                .filter(|(device, info)| {
                    info.template.is_none() && {
                        let d = paths::split(device);
                        nodes.len() <= d.len() && d[..nodes.len()] == nodes[..]
                    }
                })
                .flat_map(|(device, _)| {
                    let mut pattern: Vec<duet_parser::PathNode> = paths::split(device)
                        .into_iter()
                        .map(duet_parser::PathNode::Name)
                        .collect();
                    pattern.push(duet_parser::PathNode::One);
                    schema
                        .matching_series(&pattern)
                        .into_iter()
                        .filter(|s| &s.device == device)
                        .collect::<Vec<_>>()
                })
                .collect();
            (schema.templates.set_on.get(path).cloned(), nested, plain)
        };
        if current.as_deref() == Some(name) {
            records.push((object, object_version(version, true)));
            return Ok((records, tombstones));
        }
        for q in &nested {
            if self.superseded_given(&template_set_object(q), version, true)? {
                return skip(format!("a newer set on {q} conflicts"), records, tombstones);
            }
        }
        for s in &plain {
            if self.superseded_given(&series_object(&s.device, &s.measurement), version, true)? {
                return skip(format!("{} is newer", s.path), records, tombstones);
            }
        }
        // This set wins over everything that conflicts with it.
        let mut replaced: Vec<String> = nested;
        if current.is_some() {
            replaced.push(path.to_string());
        }
        for q in replaced {
            let (devices, series) = self.force_unset(&q)?;
            tombstones.extend(series);
            if q != path {
                self.record_cascade(&mut records, template_set_object(&q), version)?;
            }
            for d in devices {
                self.record_cascade(&mut records, activation_object(&d), version)?;
            }
        }
        if !plain.is_empty() {
            tombstones.extend(plain.iter().map(|s| s.key.clone()));
            self.schema_write()?.drop_series(&self.catalog, &plain)?;
            for s in &plain {
                self.record_cascade(
                    &mut records,
                    series_object(&s.device, &s.measurement),
                    version,
                )?;
            }
        }
        if let Err(e) = self.set_template_now(name, path) {
            if !is_refusal(&e) {
                return Err(e);
            }
            return skip(e.to_string(), records, tombstones);
        }
        records.push((object, object_version(version, true)));
        Ok((records, tombstones))
    }
}

/// The series `device`.`measurement` as this instance has it (none or one).
pub(crate) fn series_here(
    schema: &crate::schema::Schema,
    device: &str,
    measurement: &str,
) -> Vec<SeriesInfo> {
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
