//! Device templates (IoTDB's schema templates) with IoTDB 2.0's rules: a template is a named set of
//! measurements; it is *set* on a path (no other template on that path, above or below it, and no
//! series under it) and *activated* by each device under that path, by `CREATE TIMESERIES USING
//! DEVICE TEMPLATE` or by the device's first write. An activated device's series are the template's
//! measurements, held in its [`DeviceInfo`] like any other series (so SHOW, COUNT, SELECT and
//! replication see them unchanged) and marked by [`DeviceInfo::template`]. Extending a template (ALTER
//! … ADD, or a write of a measurement it lacks) extends every device that activated it.

use std::collections::BTreeMap;

use duet_catalog::{Catalog, TemplateMeasurementRecord, TemplateRecord};
use duet_parser::{PathNode, Statement};
use duet_proto::status::StatusCode;
use duet_proto::types::{Column, DataType, Table};

use crate::engine::encoding_and_compressor;
use crate::paths;
use crate::schema::{default_encoding, DeviceInfo, MeasurementInfo, Schema};
use crate::{Engine, EngineError, Output, Result};

/// One template in memory.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub aligned: bool,
    pub measurements: BTreeMap<String, MeasurementInfo>,
}

/// Every template and the paths they are set on.
#[derive(Debug, Default)]
pub struct Templates {
    pub(crate) templates: BTreeMap<String, Template>,
    /// Set path → template name. Set paths never nest (one is never a prefix of another).
    pub(crate) set_on: BTreeMap<String, String>,
}

/// What a write did to device templates: the measurements it added to the device's template and
/// whether it activated the template on the device.
#[derive(Debug, Default)]
pub(crate) struct TemplateWrite {
    pub template: Option<String>,
    pub extended: Vec<TemplateMeasurementSpec>,
    pub activated: bool,
    /// The recorded versions of the template's creation and of its set above the device, which
    /// the extension and the activation were made on.
    pub template_made_on: Option<duet_storage::Version>,
    pub set_made_on: Option<duet_storage::Version>,
}

/// One measurement of a template definition: name, type, encoding, compressor.
pub type TemplateMeasurementSpec = (String, DataType, String, String);

fn error(code: StatusCode, message: String) -> EngineError {
    EngineError::Template(code, message)
}

fn undefined(name: &str) -> EngineError {
    error(
        StatusCode::UndefinedTemplate,
        format!("Undefined template name: {name}"),
    )
}

/// Whether `prefix`'s nodes are a prefix of (or equal to) `nodes`.
fn is_prefix(prefix: &[String], nodes: &[String]) -> bool {
    prefix.len() <= nodes.len() && prefix == &nodes[..prefix.len()]
}

/// Loads templates, set paths and activations, and puts each activated device's measurements in
/// the schema.
pub(crate) fn load(schema: &mut Schema, catalog: &Catalog) -> Result<()> {
    for record in catalog.templates()? {
        let mut template = Template {
            aligned: record.aligned,
            measurements: BTreeMap::new(),
        };
        for m in record.measurements {
            template
                .measurements
                .insert(m.name.clone(), measurement_info(&m)?);
        }
        schema.templates.templates.insert(record.name, template);
    }
    for (path, template) in catalog.template_set_paths()? {
        schema.templates.set_on.insert(path, template);
    }
    for (device, template, database) in catalog.template_activations()? {
        attach(schema, &device, &template, &database);
    }
    Ok(())
}

fn measurement_info(m: &TemplateMeasurementRecord) -> Result<MeasurementInfo> {
    let data_type = DataType::from_name(&m.data_type).ok_or_else(|| {
        EngineError::Internal(format!(
            "catalog has template measurement {} of unknown type {}",
            m.name, m.data_type
        ))
    })?;
    Ok(MeasurementInfo {
        data_type,
        encoding: m.encoding.clone(),
        compressor: m.compressor.clone(),
    })
}

fn record(spec: &TemplateMeasurementSpec) -> TemplateMeasurementRecord {
    TemplateMeasurementRecord {
        name: spec.0.clone(),
        data_type: spec.1.name().to_string(),
        encoding: spec.2.clone(),
        compressor: spec.3.clone(),
    }
}

/// Marks `device` as using `template` and gives it the template's measurements (memory only).
fn attach(schema: &mut Schema, device: &str, template: &str, database: &str) {
    let Some(t) = schema.templates.templates.get(template).cloned() else {
        return;
    };
    schema.note_device_key(device);
    let entry = schema
        .devices_mut()
        .entry(device.to_string())
        .or_insert_with(|| DeviceInfo {
            aligned: t.aligned,
            template: None,
            database: database.to_string(),
            measurements: BTreeMap::new(),
        });
    entry.template = Some(template.to_string());
    entry.aligned = t.aligned;
    for (m, info) in t.measurements {
        entry.measurements.insert(m, info);
    }
}

/// IoTDB's encoding check (`SchemaUtils.checkDataTypeWithEncoding`), for the encodings it names.
fn check_encoding(data_type: DataType, encoding: &str) -> Result<()> {
    let allowed: &[&str] = match data_type {
        DataType::Boolean => &["PLAIN", "RLE"],
        DataType::Text | DataType::String | DataType::Blob => &["PLAIN", "DICTIONARY"],
        DataType::Int32 | DataType::Int64 | DataType::Date | DataType::Timestamp => &[
            "PLAIN", "RLE", "TS_2DIFF", "GORILLA", "ZIGZAG", "CHIMP", "SPRINTZ", "RLBE",
        ],
        _ => &[
            "PLAIN", "RLE", "TS_2DIFF", "GORILLA", "CHIMP", "SPRINTZ", "RLBE",
        ],
    };
    if allowed.contains(&encoding) {
        Ok(())
    } else {
        Err(error(
            StatusCode::CreateTemplateError,
            format!("create template error -encoding {encoding} does not support {data_type}"),
        ))
    }
}

impl Schema {
    /// The template set on `device` or on a path above it, with that path.
    pub fn template_for(&self, device: &str) -> Option<(&String, &String)> {
        let nodes = paths::split(device);
        self.templates
            .set_on
            .iter()
            .find(|(path, _)| is_prefix(&paths::split(path), &nodes))
    }

    /// Whether `device.measurement` is a series of the device's activated template.
    pub fn is_template_series(&self, device: &str, measurement: &str) -> bool {
        self.device(device)
            .and_then(|d| d.template.as_ref())
            .and_then(|t| self.templates.templates.get(t))
            .is_some_and(|t| t.measurements.contains_key(measurement))
    }

    /// The paths a template is set on at, above or below `path` (a full path).
    pub(crate) fn set_paths_over(&self, path: &str) -> Vec<String> {
        let nodes = paths::split(path);
        self.templates
            .set_on
            .keys()
            .filter(|set| {
                let set = paths::split(set);
                is_prefix(&set, &nodes) || is_prefix(&nodes, &set)
            })
            .cloned()
            .collect()
    }

    /// IoTDB's 516 for creating a series at `series` (a full path) under, or above, a set template.
    pub fn check_no_template_at(&self, series: &str) -> Result<()> {
        let nodes = paths::split(series);
        for (path, name) in &self.templates.set_on {
            let set = paths::split(path);
            if is_prefix(&set, &nodes) || is_prefix(&nodes, &set) {
                return Err(error(
                    StatusCode::TemplateIncompatible,
                    format!(
                        "Cannot create timeseries [{series}] since device template [{name}] already set on path [{path}]."
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Activates the template set above `device` for it (auto-creating the database at level 2 as
    /// series creation does). `Ok(false)` when it was activated already.
    fn activate(&mut self, catalog: &Catalog, device: &str) -> Result<bool> {
        if !self.check_activate(device)? {
            return Ok(false);
        }
        let Some((_, name)) = self.template_for(device) else {
            return Ok(false);
        };
        let name = name.clone();
        let nodes = paths::split(device);
        let database = match self.database_of(device) {
            Some(db) => db.clone(),
            None => {
                let db = paths::join(&nodes[..2]);
                self.create_database(catalog, &db)?;
                db
            }
        };
        catalog.activate_template(device, &name, &database)?;
        attach(self, device, &name, &database);
        Ok(true)
    }

    /// What [`Schema::activate`] checks, changing nothing: `Ok(false)` when `device` is activated
    /// already, an error when it cannot be.
    pub(crate) fn check_activate(&self, device: &str) -> Result<bool> {
        let Some((_, name)) = self.template_for(device) else {
            return Err(error(
                StatusCode::TemplateNotSet,
                format!("Path [{device}] has not been set any template."),
            ));
        };
        if let Some(d) = self.device(device) {
            if d.template.is_some() {
                return Ok(false);
            }
            if !d.measurements.is_empty() {
                return Err(error(
                    StatusCode::TemplateIncompatible,
                    format!("Cannot activate device template [{name}] on [{device}] since it has time series"),
                ));
            }
        }
        let nodes = paths::split(device);
        if nodes.len() < 2 || nodes[0] != "root" {
            return Err(EngineError::IllegalPath(format!(
                "{device} is not a legal path"
            )));
        }
        match self.database_of(device) {
            Some(database) => {
                if paths::split(database).len() >= nodes.len() && database != device {
                    return Err(EngineError::IllegalPath(format!(
                        "{device} is above database {database}"
                    )));
                }
            }
            None => self.check_new_database(&paths::join(&nodes[..2]))?,
        }
        Ok(true)
    }

    /// Adds measurements to a template and to every device that activated it; the measurements it
    /// has already are returned (and left as they are).
    fn extend_template(
        &mut self,
        catalog: &Catalog,
        name: &str,
        specs: &[TemplateMeasurementSpec],
    ) -> Result<Vec<String>> {
        let template = self
            .templates
            .templates
            .get(name)
            .ok_or_else(|| undefined(name))?;
        let (existing, new): (Vec<_>, Vec<_>) = specs
            .iter()
            .partition(|s| template.measurements.contains_key(&s.0));
        let new: Vec<TemplateMeasurementSpec> = new.into_iter().cloned().collect();
        if !new.is_empty() {
            let records: Vec<TemplateMeasurementRecord> = new.iter().map(record).collect();
            catalog.add_template_measurements(name, &records)?;
            let infos: Vec<(String, MeasurementInfo)> = new
                .iter()
                .map(|(m, t, e, c)| {
                    (
                        m.clone(),
                        MeasurementInfo {
                            data_type: *t,
                            encoding: e.clone(),
                            compressor: c.clone(),
                        },
                    )
                })
                .collect();
            if let Some(template) = self.templates.templates.get_mut(name) {
                template.measurements.extend(infos.iter().cloned());
            }
            for device in self.devices_mut().values_mut() {
                if device.template.as_deref() == Some(name) {
                    device.measurements.extend(infos.iter().cloned());
                }
            }
        }
        Ok(existing.into_iter().map(|s| s.0.clone()).collect())
    }
}

/// What `create_template_now` checks, changing nothing (a local creation is checked, logged, then
/// applied: `schema_sync`).
pub(crate) fn check_create_template(
    schema: &Schema,
    name: &str,
    specs: &[TemplateMeasurementSpec],
) -> Result<()> {
    for (m, t, e, _) in specs {
        check_encoding(*t, e)?;
        if specs.iter().filter(|s| &s.0 == m).count() > 1 {
            return Err(EngineError::IllegalPath(format!("Path duplicated: {m}")));
        }
    }
    if schema.templates.templates.contains_key(name) {
        return Err(error(
            StatusCode::MetadataError,
            format!("Duplicated template name: {name}"),
        ));
    }
    Ok(())
}

/// What `append_template_now` checks, changing nothing; returns the measurements it would add
/// (those the template lacks).
pub(crate) fn check_append_template(
    schema: &Schema,
    name: &str,
    specs: &[TemplateMeasurementSpec],
) -> Result<Vec<TemplateMeasurementSpec>> {
    for (_, t, e, _) in specs {
        check_encoding(*t, e)?;
    }
    let template = schema
        .templates
        .templates
        .get(name)
        .ok_or_else(|| undefined(name))?;
    Ok(specs
        .iter()
        .filter(|s| !template.measurements.contains_key(&s.0))
        .cloned()
        .collect())
}

/// What `activate_template_now` checks, changing nothing: an activated device is IoTDB's 515.
pub(crate) fn check_activate_template(schema: &Schema, device: &str) -> Result<()> {
    if schema.check_activate(device)? {
        Ok(())
    } else {
        Err(already_activated(device))
    }
}

fn already_activated(device: &str) -> EngineError {
    error(
        StatusCode::TemplateIsInUse,
        format!("Template is in use on {device}"),
    )
}

/// What `prune_template_now` checks, changing nothing.
pub(crate) fn check_prune_template(schema: &Schema, name: &str, measurement: &str) -> Result<()> {
    let template = schema
        .templates
        .templates
        .get(name)
        .ok_or_else(|| undefined(name))?;
    if !template.measurements.contains_key(measurement) {
        return Err(EngineError::PathNotExist(format!(
            "Path [{measurement}] does not exist in template {name}"
        )));
    }
    if let Some(device) = schema
        .devices()
        .iter()
        .find(|(_, d)| d.template.as_deref() == Some(name))
    {
        return Err(error(
            StatusCode::TemplateIsInUse,
            format!("Template is in use on {}", device.0),
        ));
    }
    Ok(())
}

/// What `set_template_now` checks, changing nothing.
pub(crate) fn check_set_template(schema: &Schema, name: &str, path: &str) -> Result<()> {
    let nodes = paths::split(path);
    if nodes.len() < 2 || nodes[0] != "root" {
        return Err(EngineError::IllegalPath(format!(
            "{path} is not a legal path"
        )));
    }
    if !schema.templates.templates.contains_key(name) {
        return Err(undefined(name));
    }
    for set in schema.templates.set_on.keys() {
        let set_nodes = paths::split(set);
        if is_prefix(&set_nodes, &nodes) || is_prefix(&nodes, &set_nodes) {
            return Err(error(
                StatusCode::MetadataError,
                format!("Template already exists on {set}"),
            ));
        }
    }
    let has_series = schema.devices().iter().any(|(device, info)| {
        !info.measurements.is_empty() && is_prefix(&nodes, &paths::split(device))
    });
    if has_series {
        return Err(error(
            StatusCode::TemplateIncompatible,
            format!("Cannot set device template [{name}] to path [{path}] since there's timeseries under path [{path}]."),
        ));
    }
    Ok(())
}

/// What `unset_template_now` checks, changing nothing.
pub(crate) fn check_unset_template(schema: &Schema, name: &str, path: &str) -> Result<()> {
    if !schema.templates.templates.contains_key(name) {
        return Err(undefined(name));
    }
    if schema.templates.set_on.get(path).map(String::as_str) != Some(name) {
        return Err(error(
            StatusCode::TemplateNotSet,
            format!("No template on {path}"),
        ));
    }
    let nodes = paths::split(path);
    let in_use = schema.devices().iter().any(|(device, info)| {
        info.template.as_deref() == Some(name) && is_prefix(&nodes, &paths::split(device))
    });
    if in_use {
        return Err(error(
            StatusCode::TemplateIsInUse,
            format!("Template is in use on {path}"),
        ));
    }
    Ok(())
}

/// What `drop_template_now` checks, changing nothing.
pub(crate) fn check_drop_template(schema: &Schema, name: &str) -> Result<()> {
    if !schema.templates.templates.contains_key(name) {
        return Err(undefined(name));
    }
    if schema.templates.set_on.values().any(|t| t == name) {
        return Err(error(
            StatusCode::MetadataError,
            format!("Template [{name}] has been set on MTree, cannot be dropped now."),
        ));
    }
    Ok(())
}

fn specs_of(measurements: &[duet_parser::ColumnDef]) -> Result<Vec<TemplateMeasurementSpec>> {
    let mut specs: Vec<TemplateMeasurementSpec> = Vec::with_capacity(measurements.len());
    for c in measurements {
        let t = c.data_type;
        let (encoding, compressor) = encoding_and_compressor(&c.attributes, t);
        check_encoding(t, &encoding)?;
        if specs.iter().any(|s| s.0 == c.name) {
            return Err(EngineError::IllegalPath(format!(
                "Path duplicated: {}",
                c.name
            )));
        }
        specs.push((c.name.clone(), t, encoding, compressor));
    }
    Ok(specs)
}

fn text_table(name: &str, values: Vec<String>) -> Table {
    let n = values.len();
    Table {
        names: vec![name.to_string()],
        columns: vec![Column::text(values.iter().map(String::as_str))],
        times: None,
        n_rows: n,
    }
}

impl Engine {
    /// Whether `statement` is a template statement (executed by [`Engine::execute_template`]).
    pub fn is_template_statement(statement: &Statement) -> bool {
        matches!(statement, duet_parser::template_statement!())
    }

    /// Executes a template statement.
    pub(crate) async fn execute_template(&self, statement: &Statement) -> Result<Output> {
        match statement {
            Statement::CreateTemplate {
                name,
                aligned,
                measurements,
            } => {
                self.create_template(name, *aligned, &specs_of(measurements)?)
                    .await?;
                Ok(Output::Done)
            }
            Statement::ActivateTemplate { path } => {
                let device = path_text(path)?;
                self.activate_template(&device).await?;
                Ok(Output::Done)
            }
            Statement::SetTemplate { name, path } => {
                self.set_template(name, &path_text(path)?).await?;
                Ok(Output::Done)
            }
            Statement::UnsetTemplate { name, path } => {
                self.unset_template(name, &path_text(path)?).await?;
                Ok(Output::Done)
            }
            Statement::DropTemplate { name } => {
                self.drop_template(name).await?;
                Ok(Output::Done)
            }
            Statement::AlterTemplateAdd { name, measurements } => {
                self.append_template(name, &specs_of(measurements)?).await?;
                Ok(Output::Done)
            }
            Statement::DeactivateTemplate { name, paths } => {
                let patterns: Vec<Vec<PathNode>> = paths.iter().map(|p| p.0.clone()).collect();
                self.deactivate_template(name.as_deref(), &patterns).await?;
                Ok(Output::Done)
            }
            Statement::ShowTemplates => Ok(Output::Table(text_table(
                "TemplateName",
                self.template_names()?,
            ))),
            Statement::ShowNodesInTemplate { name } => {
                let nodes = self.template_nodes(name)?;
                let n = nodes.len();
                Ok(Output::Table(Table {
                    names: ["ChildNodes", "DataType", "Encoding", "Compression"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    columns: vec![
                        Column::text(nodes.iter().map(|(m, _)| m.as_str())),
                        Column::text(nodes.iter().map(|(_, i)| i.data_type.name())),
                        Column::text(nodes.iter().map(|(_, i)| i.encoding.as_str())),
                        Column::text(nodes.iter().map(|(_, i)| i.compressor.as_str())),
                    ],
                    times: None,
                    n_rows: n,
                }))
            }
            Statement::ShowPathsSetTemplate { name } => Ok(Output::Table(text_table(
                "ChildPaths",
                self.paths_set_template(name)?,
            ))),
            Statement::ShowPathsUsingTemplate { path, name } => {
                self.show_paths_using_template(path.as_ref(), name)
            }
            other => Err(EngineError::Internal(format!(
                "not a template statement: {other}"
            ))),
        }
    }

    /// `SHOW PATHS USING DEVICE TEMPLATE name [ON path]`: the devices using it, as far as the
    /// thread's read scope lets them be seen.
    pub(crate) fn show_paths_using_template(
        &self,
        path: Option<&duet_parser::Path>,
        name: &str,
    ) -> Result<Output> {
        let pattern = match path {
            Some(p) => p.0.clone(),
            None => vec![PathNode::Name("root".into()), PathNode::Many],
        };
        Ok(Output::Table(text_table(
            "ChildPaths",
            self.paths_using_template(name, &pattern)?,
        )))
    }

    /// `CREATE DEVICE TEMPLATE` and `createSchemaTemplate`.
    pub(crate) fn create_template_now(
        &self,
        name: &str,
        aligned: bool,
        specs: &[TemplateMeasurementSpec],
    ) -> Result<()> {
        let mut schema = self.schema_write()?;
        check_create_template(&schema, name, specs)?;
        let record = TemplateRecord {
            name: name.to_string(),
            aligned,
            measurements: specs.iter().map(record).collect(),
        };
        match self.catalog.create_template(&record) {
            Err(duet_catalog::Error::TemplateExists(_)) => {
                return Err(error(
                    StatusCode::MetadataError,
                    format!("Duplicated template name: {name}"),
                ))
            }
            other => other?,
        }
        let mut template = Template {
            aligned,
            measurements: BTreeMap::new(),
        };
        for s in specs {
            template.measurements.insert(
                s.0.clone(),
                MeasurementInfo {
                    data_type: s.1,
                    encoding: s.2.clone(),
                    compressor: s.3.clone(),
                },
            );
        }
        schema
            .templates
            .templates
            .insert(name.to_string(), template);
        Ok(())
    }

    /// `ALTER DEVICE TEMPLATE … ADD` and `appendSchemaTemplate`: the new measurements are added; any
    /// that exist already make it IoTDB's 527 (after the others were added, as IoTDB does).
    pub(crate) fn append_template_now(
        &self,
        name: &str,
        specs: &[TemplateMeasurementSpec],
    ) -> Result<()> {
        for (_, t, e, _) in specs {
            check_encoding(*t, e)?;
        }
        let existing = self
            .schema_write()?
            .extend_template(&self.catalog, name, specs)?;
        if existing.is_empty() {
            Ok(())
        } else {
            Err(error(
                StatusCode::MeasurementAlreadyExistsInTemplate,
                format!(
                    "Measurement [{}] already exist in schemaengine template {name}",
                    existing.join(", ")
                ),
            ))
        }
    }

    /// `pruneSchemaTemplate`: removes a measurement from a template that no device activated (IoTDB
    /// 2.0 refuses every pruning; Duet allows it while nothing uses the measurement).
    pub(crate) fn prune_template_now(&self, name: &str, measurement: &str) -> Result<()> {
        let mut schema = self.schema_write()?;
        check_prune_template(&schema, name, measurement)?;
        self.catalog
            .remove_template_measurement(name, measurement)?;
        if let Some(t) = schema.templates.templates.get_mut(name) {
            t.measurements.remove(measurement);
        }
        Ok(())
    }

    /// `SET DEVICE TEMPLATE name TO path` and `setSchemaTemplate`.
    pub(crate) fn set_template_now(&self, name: &str, path: &str) -> Result<()> {
        let mut schema = self.schema_write()?;
        check_set_template(&schema, name, path)?;
        self.catalog.set_template(path, name)?;
        schema
            .templates
            .set_on
            .insert(path.to_string(), name.to_string());
        Ok(())
    }

    /// `UNSET DEVICE TEMPLATE name FROM path` and `unsetSchemaTemplate`.
    pub(crate) fn unset_template_now(&self, name: &str, path: &str) -> Result<()> {
        let mut schema = self.schema_write()?;
        check_unset_template(&schema, name, path)?;
        self.catalog.unset_template(path)?;
        schema.templates.set_on.remove(path);
        Ok(())
    }

    /// `DROP DEVICE TEMPLATE` and `dropSchemaTemplate`.
    pub(crate) fn drop_template_now(&self, name: &str) -> Result<()> {
        let mut schema = self.schema_write()?;
        check_drop_template(&schema, name)?;
        self.catalog.drop_template(name)?;
        schema.templates.templates.remove(name);
        Ok(())
    }

    /// `CREATE TIMESERIES USING DEVICE TEMPLATE ON device` and `createTimeseriesUsingSchemaTemplate`:
    /// an activated device is IoTDB's 515.
    pub(crate) fn activate_template_now(&self, device: &str) -> Result<()> {
        if self.schema_write()?.activate(&self.catalog, device)? {
            Ok(())
        } else {
            Err(already_activated(device))
        }
    }

    /// Removes the activations of `devices` and their template series; returns the series' storage
    /// keys (whose data must go).
    pub(crate) fn deactivate_devices(&self, devices: &[String]) -> Result<Vec<String>> {
        let mut schema = self.schema_write()?;
        self.catalog.deactivate_templates(devices)?;
        let mut series = Vec::new();
        for device in devices {
            if let Some(info) = schema.devices_mut().remove(device) {
                // Storage keys: the device key, `.` and the measurement as written.
                for m in info.measurements.keys() {
                    series.push(format!("{device}.{m}"));
                }
            }
        }
        Ok(series)
    }

    /// What `DEACTIVATE DEVICE TEMPLATE [name] FROM patterns` would remove, checked and changing
    /// nothing: the devices and their template series' storage keys.
    pub(crate) fn deactivation_plan(
        &self,
        name: Option<&str>,
        patterns: &[Vec<PathNode>],
    ) -> Result<(Vec<String>, Vec<String>)> {
        {
            let schema = self.schema_read()?;
            if let Some(name) = name {
                if !schema.templates.templates.contains_key(name) {
                    return Err(undefined(name));
                }
            }
            let set_matches = schema
                .templates
                .set_on
                .values()
                .any(|t| name.is_none_or(|n| n == t));
            if !set_matches {
                let shown: Vec<String> = patterns
                    .iter()
                    .map(|p| duet_parser::Path(p.clone()).to_string())
                    .collect();
                return Err(error(
                    StatusCode::TemplateNotSet,
                    format!(
                        "Device Template {} is not set on any prefix path of [{}]",
                        name.unwrap_or("*"),
                        shown.join(", ")
                    ),
                ));
            }
            let devices: Vec<String> = schema
                .devices()
                .iter()
                .filter(|(device, info)| {
                    info.template
                        .as_deref()
                        .is_some_and(|t| name.is_none_or(|n| n == t))
                        && {
                            let nodes = paths::split(device);
                            patterns.iter().any(|p| paths::matches(p, &nodes))
                        }
                })
                .map(|(d, _)| d.clone())
                .collect();
            if devices.is_empty() {
                return Err(error(
                    StatusCode::TemplateNotActivated,
                    "Target Device Template is not activated on any path matched by given path pattern".into(),
                ));
            }
            let mut series = Vec::new();
            for device in &devices {
                if let Some(info) = schema.device(device) {
                    for m in info.measurements.keys() {
                        series.push(format!("{device}.{m}"));
                    }
                }
            }
            Ok((devices, series))
        }
    }

    /// Removes what is set on `path` whatever uses it: the activations of the template set there
    /// by devices under it go first, with their template series. For a replicated change that wins
    /// over the set (an unset, a drop of the template, a newer set that conflicts). Returns the
    /// devices deactivated and the storage keys of the series removed.
    pub(crate) fn force_unset(&self, path: &str) -> Result<(Vec<String>, Vec<String>)> {
        let devices: Vec<String> = {
            let schema = self.schema_read()?;
            let Some(name) = schema.templates.set_on.get(path) else {
                return Ok((Vec::new(), Vec::new()));
            };
            let nodes = paths::split(path);
            schema
                .devices()
                .iter()
                .filter(|(device, info)| {
                    info.template.as_deref() == Some(name.as_str())
                        && is_prefix(&nodes, &paths::split(device))
                })
                .map(|(d, _)| d.clone())
                .collect()
        };
        let series = self.deactivate_devices(&devices)?;
        self.catalog.unset_template(path)?;
        self.schema_write()?.templates.set_on.remove(path);
        Ok((devices, series))
    }

    /// Drops template `name` whatever uses it: every path it is set on is unset first, as
    /// [`Engine::force_unset`]. Returns the set paths, the devices deactivated and the storage keys
    /// of the series removed.
    pub(crate) fn force_drop_template(
        &self,
        name: &str,
    ) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
        let set_paths: Vec<String> = self
            .schema_read()?
            .templates
            .set_on
            .iter()
            .filter(|(_, t)| *t == name)
            .map(|(p, _)| p.clone())
            .collect();
        let (mut devices, mut series) = (Vec::new(), Vec::new());
        for path in &set_paths {
            let (d, s) = self.force_unset(path)?;
            devices.extend(d);
            series.extend(s);
        }
        self.catalog.drop_template(name)?;
        self.schema_write()?.templates.templates.remove(name);
        Ok((set_paths, devices, series))
    }

    /// Removes `measurement` from template `name` and from every device that activated it; returns
    /// the storage keys of the series removed (whose data must go).
    pub(crate) fn force_prune(&self, name: &str, measurement: &str) -> Result<Vec<String>> {
        let mut schema = self.schema_write()?;
        self.catalog
            .remove_template_measurement(name, measurement)?;
        if let Some(t) = schema.templates.templates.get_mut(name) {
            t.measurements.remove(measurement);
        }
        let mut series = Vec::new();
        for (device, info) in schema.devices_mut().iter_mut() {
            if info.template.as_deref() == Some(name)
                && info.measurements.remove(measurement).is_some()
            {
                series.push(format!("{device}.{measurement}"));
            }
        }
        Ok(series)
    }

    /// Makes template `name` aligned or not, with every device that activated it.
    pub(crate) fn force_template_alignment(&self, name: &str, aligned: bool) -> Result<()> {
        let mut schema = self.schema_write()?;
        self.catalog.set_template_aligned(name, aligned)?;
        if let Some(t) = schema.templates.templates.get_mut(name) {
            t.aligned = aligned;
        }
        for info in schema.devices_mut().values_mut() {
            if info.template.as_deref() == Some(name) {
                info.aligned = aligned;
            }
        }
        Ok(())
    }

    /// Adds measurements to template `name` (and its devices) without the encoding check a
    /// statement gets: a replicated definition was checked where it was made.
    pub(crate) fn force_extend_template(
        &self,
        name: &str,
        specs: &[TemplateMeasurementSpec],
    ) -> Result<()> {
        self.schema_write()?
            .extend_template(&self.catalog, name, specs)?;
        Ok(())
    }

    /// Template names, sorted.
    pub fn template_names(&self) -> Result<Vec<String>> {
        Ok(self
            .schema_read()?
            .templates
            .templates
            .keys()
            .cloned()
            .collect())
    }

    /// A template's measurements by name; `None` for an unknown template.
    pub fn template(&self, name: &str) -> Result<Option<Template>> {
        Ok(self.schema_read()?.templates.templates.get(name).cloned())
    }

    /// A template's measurements, by name.
    pub fn template_nodes(&self, name: &str) -> Result<Vec<(String, MeasurementInfo)>> {
        let schema = self.schema_read()?;
        let template = schema
            .templates
            .templates
            .get(name)
            .ok_or_else(|| undefined(name))?;
        Ok(template
            .measurements
            .iter()
            .map(|(m, i)| (m.clone(), i.clone()))
            .collect())
    }

    /// The paths `name` is set on, sorted.
    pub fn paths_set_template(&self, name: &str) -> Result<Vec<String>> {
        let schema = self.schema_read()?;
        if !schema.templates.templates.contains_key(name) {
            return Err(undefined(name));
        }
        Ok(schema
            .templates
            .set_on
            .iter()
            .filter(|(_, t)| *t == name)
            .map(|(p, _)| p.clone())
            .collect())
    }

    /// The devices under `pattern` that activated `name`, sorted.
    pub fn paths_using_template(&self, name: &str, pattern: &[PathNode]) -> Result<Vec<String>> {
        let schema = self.schema_read()?;
        if !schema.templates.templates.contains_key(name) {
            return Err(undefined(name));
        }
        Ok(schema
            .devices()
            .iter()
            .filter(|(device, info)| {
                let nodes = paths::split(device);
                info.template.as_deref() == Some(name)
                    && paths::matches(pattern, &nodes)
                    && crate::scope::node_visible(&nodes)
            })
            .map(|(d, _)| d.clone())
            .collect())
    }

    /// The write path's part: a device under a set template that is not activated yet activates it,
    /// and measurements the template lacks extend it (IoTDB's auto-activation and extension), typed
    /// by `types` (`None` = unknown yet, skipped). Returns what it changed, for the write's entry
    /// to carry (as `AppendTemplate` and `ActivateTemplate`).
    pub(crate) fn prepare_template_write(
        &self,
        device: &str,
        measurements: &[String],
        types: &[Option<DataType>],
    ) -> Result<TemplateWrite> {
        {
            let schema = self.schema_read()?;
            let Some((_, name)) = schema.template_for(device) else {
                return Ok(TemplateWrite::default());
            };
            let activated = schema.device(device).is_some_and(|d| d.template.is_some());
            let has_plain = schema
                .device(device)
                .is_some_and(|d| d.template.is_none() && !d.measurements.is_empty());
            let lacks = schema.templates.templates.get(name).is_some_and(|t| {
                measurements
                    .iter()
                    .zip(types)
                    .any(|(m, t_)| t_.is_some() && !t.measurements.contains_key(m))
            });
            if has_plain || (activated && !lacks) {
                return Ok(TemplateWrite::default());
            }
        }
        let mut schema = self.schema_write()?;
        let Some((_, name)) = schema.template_for(device) else {
            return Ok(TemplateWrite::default());
        };
        let name = name.clone();
        if schema
            .device(device)
            .is_some_and(|d| d.template.is_none() && !d.measurements.is_empty())
        {
            return Ok(TemplateWrite::default());
        }
        let missing: Vec<TemplateMeasurementSpec> = match schema.templates.templates.get(&name) {
            Some(t) => measurements
                .iter()
                .zip(types)
                .filter_map(|(m, ty)| {
                    let ty = (*ty)?;
                    (!t.measurements.contains_key(m)).then(|| {
                        (
                            m.clone(),
                            ty,
                            default_encoding(ty).to_string(),
                            "LZ4".to_string(),
                        )
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        if !missing.is_empty() {
            schema.extend_template(&self.catalog, &name, &missing)?;
        }
        let activated = schema.activate(&self.catalog, device)?;
        let set_path = schema.template_for(device).map(|(path, _)| path.clone());
        let set_made_on = match set_path {
            Some(path) => self.recorded_present(&crate::schema_sync::template_set_object(&path))?,
            None => None,
        };
        Ok(TemplateWrite {
            template_made_on: self.recorded_present(&crate::schema_sync::template_object(&name))?,
            template: Some(name),
            extended: missing,
            activated,
            set_made_on,
        })
    }
}

fn path_text(path: &duet_parser::Path) -> Result<String> {
    paths::concrete(path).ok_or_else(|| {
        EngineError::IllegalPath(format!(
            "{path} is not a legal path: wildcards are not allowed here"
        ))
    })
}
