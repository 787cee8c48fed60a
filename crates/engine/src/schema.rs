//! The tree-model schema in memory: databases, devices and their measurements with types. Loaded from
//! the catalog at start, changed through [`Schema`] methods that write through to the catalog first,
//! so memory never holds a series the catalog would forget.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use duet_catalog::{Catalog, SeriesRecord};
use duet_parser::PathNode;
use duet_proto::types::DataType;

use crate::paths;
use crate::{EngineError, Result};

thread_local! {
    /// Steps of series resolution taken on this thread (see [`resolution_steps`]).
    static RESOLUTION_STEPS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one step of series resolution: a device or measurement examined, or a series path
/// compared with another, put in a set or map, or looked up in one. Resolution runs on the
/// planning thread, so a per-thread count is exactly one query's work.
pub(crate) fn resolution_step() {
    RESOLUTION_STEPS.with(|steps| steps.set(steps.get().wrapping_add(1)));
}

/// Test hook: the steps of series resolution this thread has taken so far (see
/// [`resolution_step`]). Read before and after planning a query, it shows that resolution grows
/// near-linearly with the number of series, without timing anything.
#[doc(hidden)]
pub fn resolution_steps() -> u64 {
    RESOLUTION_STEPS.with(Cell::get)
}

/// One series' schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    /// The path as IoTDB prints it, nodes back-quoted where needed (`root.sg.d1.\`s.1\``).
    pub path: String,
    /// The series' key in storage: the device key, `.` and the measurement as written
    /// (`root.sg.d1.s.1`), which is how every write path names the series it writes.
    pub key: String,
    pub device: String,
    pub measurement: String,
    pub database: String,
    pub data_type: DataType,
    pub encoding: String,
    pub compressor: String,
    pub aligned: bool,
}

/// What a node of the schema tree is, as `SHOW CHILD PATHS` names it (IoTDB's node types); where a
/// node is several things the first of these wins (a database that is also a device is a DATABASE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeType {
    Database,
    Device,
    Timeseries,
    /// A node above a database.
    DatabaseInternal,
    Internal,
}

impl NodeType {
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Database => "DATABASE",
            NodeType::Device => "DEVICE",
            NodeType::Timeseries => "TIMESERIES",
            NodeType::DatabaseInternal => "SG INTERNAL",
            NodeType::Internal => "INTERNAL",
        }
    }
}

/// One measurement's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementInfo {
    pub data_type: DataType,
    pub encoding: String,
    pub compressor: String,
}

/// One device: its measurements in name order.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    pub aligned: bool,
    /// The device template this device activated, whose measurements are in `measurements`.
    pub template: Option<String>,
    pub database: String,
    pub measurements: BTreeMap<String, MeasurementInfo>,
}

/// The whole schema.
#[derive(Debug, Default)]
pub struct Schema {
    databases: BTreeSet<String>,
    devices: BTreeMap<String, DeviceInfo>,
    /// Whether some device key is not in canonical form (`paths::join` of its nodes), which the
    /// prefix lookups of [`Schema::matching_series`] rely on.
    non_canonical_keys: bool,
    /// Device templates and where they are set (see [`crate::template`]).
    pub(crate) templates: crate::template::Templates,
}

/// The default encoding IoTDB picks for a type.
pub fn default_encoding(data_type: DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "RLE",
        DataType::Int32 | DataType::Int64 | DataType::Date | DataType::Timestamp => "TS_2DIFF",
        DataType::Float | DataType::Double => "GORILLA",
        _ => "PLAIN",
    }
}

impl Schema {
    /// Loads the schema from the catalog.
    pub fn load(catalog: &Catalog) -> Result<Schema> {
        let mut schema = Schema::default();
        for db in catalog.databases()? {
            schema.databases.insert(db);
        }
        // Paths printed by older versions (which quoted fewer or other nodes, e.g. `root.sg.12.s1`
        // where IoTDB prints root.sg.`12`.s1) are renamed to today's form, or statements naming
        // the series (DELETE TIMESERIES) would miss their rows. Device keys, and so the storage
        // keys of the data, stay as they were written.
        let mut renames = Vec::new();
        for record in catalog.series()? {
            let printed = format!(
                "{}.{}",
                paths::join(&paths::split(&record.device)),
                paths::join(&[paths::split(&record.path).pop().unwrap_or_default()])
            );
            if printed != record.path {
                renames.push((record.path.clone(), printed));
            }
            let data_type = DataType::from_name(&record.data_type).ok_or_else(|| {
                EngineError::Internal(format!(
                    "catalog has series {} of unknown type {}",
                    record.path, record.data_type
                ))
            })?;
            let measurement = paths::split(&record.path).pop().unwrap_or_default();
            schema.note_device_key(&record.device);
            let device = schema.devices.entry(record.device.clone()).or_default();
            device.aligned = record.aligned;
            device.database = record.database.clone();
            device.measurements.insert(
                measurement,
                MeasurementInfo {
                    data_type,
                    encoding: record.encoding.clone(),
                    compressor: record.compressor.clone(),
                },
            );
        }
        if !renames.is_empty() {
            tracing::info!(
                series = renames.len(),
                "series paths printed by an older version renamed to IoTDB's form"
            );
            catalog.rename_series(&renames)?;
        }
        crate::template::load(&mut schema, catalog)?;
        Ok(schema)
    }

    /// The devices, for changes the template code makes (it keeps `measurements` in step with the
    /// activated template).
    pub(crate) fn devices_mut(&mut self) -> &mut BTreeMap<String, DeviceInfo> {
        &mut self.devices
    }

    pub(crate) fn note_device_key(&mut self, device: &str) {
        if !self.non_canonical_keys && paths::join(&paths::split(device)) != device {
            self.non_canonical_keys = true;
        }
    }

    pub fn databases(&self) -> impl Iterator<Item = &String> {
        self.databases.iter()
    }

    /// The database a path belongs to, if any.
    pub fn database_of(&self, path: &str) -> Option<&String> {
        let nodes = paths::split(path);
        self.databases.iter().find(|db| {
            let db_nodes = paths::split(db);
            nodes.len() >= db_nodes.len() && nodes[..db_nodes.len()] == db_nodes[..]
        })
    }

    /// Checks a new database path as IoTDB does: `root.x…` of at most 64 characters, and neither an
    /// existing database nor under or above one (501).
    pub(crate) fn check_new_database(&self, path: &str) -> Result<()> {
        let nodes = paths::split(path);
        if nodes.len() < 2 || nodes[0] != "root" {
            return Err(EngineError::IllegalPath(format!(
                "{path} is not a legal path, because the database name in tree model must start with 'root.'."
            )));
        }
        if path.chars().count() > 64 {
            return Err(EngineError::IllegalPath(format!(
                "{path} is not a legal path, because the length of database name shall not exceed 64"
            )));
        }
        for db in &self.databases {
            let db_nodes = paths::split(db);
            if db_nodes.len() <= nodes.len() && nodes[..db_nodes.len()] == db_nodes[..] {
                // The database itself, or one above it.
                return Err(EngineError::DatabaseExists(format!(
                    "{db} has already been created as database"
                )));
            }
            if db_nodes.len() > nodes.len() && db_nodes[..nodes.len()] == nodes[..] {
                return Err(EngineError::DatabaseExists(format!(
                    "some children of {path} have already been created as database"
                )));
            }
        }
        Ok(())
    }

    pub fn create_database(&mut self, catalog: &Catalog, path: &str) -> Result<()> {
        self.check_new_database(path)?;
        catalog.create_database(path)?;
        self.databases.insert(path.to_string());
        Ok(())
    }

    /// The series of database `path` as (device, measurement), read before it is dropped.
    pub fn database_series(&self, path: &str) -> Vec<(String, String)> {
        self.devices
            .iter()
            .filter(|(_, d)| d.database == path)
            .flat_map(|(device, d)| {
                d.measurements
                    .keys()
                    .map(move |m| (device.clone(), m.clone()))
            })
            .collect()
    }

    /// Drops a database; returns its series' storage keys (whose data the caller deletes).
    pub fn drop_database(&mut self, catalog: &Catalog, path: &str) -> Result<Vec<String>> {
        if !self.databases.contains(path) {
            return Err(EngineError::PathNotExist(format!(
                "Path [{path}] does not exist"
            )));
        }
        catalog.drop_database(path)?;
        let keys = self
            .devices
            .iter()
            .filter(|(_, d)| d.database == path)
            .flat_map(|(device, d)| d.measurements.keys().map(move |m| format!("{device}.{m}")))
            .collect();
        self.databases.remove(path);
        self.devices.retain(|_, d| d.database != path);
        Ok(keys)
    }

    pub fn device(&self, device: &str) -> Option<&DeviceInfo> {
        self.devices.get(device)
    }

    pub fn devices(&self) -> &BTreeMap<String, DeviceInfo> {
        &self.devices
    }

    /// The type of one series, if it exists.
    pub fn series_type(&self, device: &str, measurement: &str) -> Option<DataType> {
        self.devices
            .get(device)
            .and_then(|d| d.measurements.get(measurement))
            .map(|m| m.data_type)
    }

    /// Every series matching `pattern`, in device order (each device's measurements by name).
    ///
    /// Only the devices under the pattern's concrete prefix are visited (a range of the ordered
    /// device map), so resolving one device among many costs about as much as that device.
    pub fn matching_series(&self, pattern: &[PathNode]) -> Vec<SeriesInfo> {
        let mut out = Vec::new();
        let concrete: Vec<&str> = pattern
            .iter()
            .map_while(|n| match n {
                PathNode::Name(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        if concrete.len() == pattern.len() && concrete.len() >= 2 && !self.non_canonical_keys {
            // A full path: one device, one measurement.
            let (device_nodes, measurement) = concrete.split_at(concrete.len() - 1);
            let device = paths::join(device_nodes);
            resolution_step();
            if let Some((key, info)) = self.devices.get_key_value(&device) {
                if let Some(m) = info.measurements.get(measurement[0]) {
                    let device_nodes: Vec<String> =
                        device_nodes.iter().map(|n| n.to_string()).collect();
                    if crate::scope::series_visible(&device_nodes, measurement[0]) {
                        out.push(self.info(key, &device, info, measurement[0], m));
                    }
                }
            }
            return out;
        }
        // Device keys are canonical joined paths, so every device under the concrete prefix has a
        // key starting with the prefix's text (the full match below drops look-alikes such as
        // `root.sg1` for the prefix `root.sg`). A key written in another spelling (a node quoted
        // without need) turns this off.
        let prefix = if self.non_canonical_keys {
            String::new()
        } else {
            paths::join(&concrete)
        };
        let has_many = pattern.iter().any(|n| matches!(n, PathNode::Many));
        let matcher = paths::Matcher::new(pattern);
        for (device, info) in self
            .devices
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(d, _)| d.starts_with(prefix.as_str()))
        {
            resolution_step();
            let nodes = paths::split(device);
            if !has_many && nodes.len() + 1 != pattern.len() {
                continue;
            }
            let states = matcher.run(&nodes);
            if !matcher.alive(&states) {
                continue;
            }
            let device_path = paths::join(&nodes);
            for (measurement, m) in &info.measurements {
                resolution_step();
                if matcher.accepts(&matcher.step(&states, measurement))
                    && crate::scope::series_visible(&nodes, measurement)
                {
                    out.push(self.info(device, &device_path, info, measurement, m));
                }
            }
        }
        out
    }

    /// `device_path` is the device in canonical form: the series path is its nodes and the
    /// measurement joined.
    fn info(
        &self,
        device: &str,
        device_path: &str,
        info: &DeviceInfo,
        measurement: &str,
        m: &MeasurementInfo,
    ) -> SeriesInfo {
        SeriesInfo {
            path: format!("{device_path}.{}", paths::join(&[measurement])),
            key: format!("{device}.{measurement}"),
            device: device.to_string(),
            measurement: measurement.to_string(),
            database: info.database.clone(),
            data_type: m.data_type,
            encoding: m.encoding.clone(),
            compressor: m.compressor.clone(),
            aligned: info.aligned,
        }
    }

    /// Devices matching `pattern` (as a device path pattern).
    pub fn matching_devices(&self, pattern: &[PathNode]) -> Vec<(&String, &DeviceInfo)> {
        let matcher = paths::Matcher::new(pattern);
        self.devices
            .iter()
            .filter(|(d, _)| {
                let nodes = paths::split(d);
                matcher.accepts(&matcher.run(&nodes)) && crate::scope::node_visible(&nodes)
            })
            .collect()
    }

    /// Every node of the schema tree below root — databases, devices, series and the nodes above them
    /// — by its nodes, with its IoTDB node type. For the schema-navigation statements, which walk the
    /// whole tree.
    fn tree_nodes(&self) -> BTreeMap<Vec<String>, NodeType> {
        let mut nodes: BTreeMap<Vec<String>, NodeType> = BTreeMap::new();
        let mut note = |path: &[String], kind: NodeType| {
            // Outside the session's read scope a node is not part of its tree at all.
            if !crate::scope::node_visible(path) {
                return;
            }
            let slot = nodes.entry(path.to_vec()).or_insert(kind);
            *slot = (*slot).min(kind);
        };
        for db in &self.databases {
            let db_nodes = paths::split(db);
            for end in 2..db_nodes.len() {
                note(&db_nodes[..end], NodeType::DatabaseInternal);
            }
            note(&db_nodes, NodeType::Database);
        }
        for (device, info) in &self.devices {
            let mut device_nodes = paths::split(device);
            for end in 2..device_nodes.len() {
                note(&device_nodes[..end], NodeType::Internal);
            }
            note(&device_nodes, NodeType::Device);
            for measurement in info.measurements.keys() {
                device_nodes.push(measurement.clone());
                note(&device_nodes, NodeType::Timeseries);
                device_nodes.pop();
            }
        }
        nodes
    }

    /// `SHOW CHILD PATHS`: the children of every node `pattern` matches, in path order, with their
    /// node types.
    pub fn child_paths(&self, pattern: &[PathNode]) -> Vec<(String, NodeType)> {
        let matcher = paths::Matcher::new(pattern);
        let root_matches = matcher.accepts(&matcher.run(&["root"]));
        let mut children: BTreeMap<String, NodeType> = BTreeMap::new();
        for (nodes, kind) in self.tree_nodes() {
            let parent = &nodes[..nodes.len() - 1];
            let parent_matches = if parent.len() == 1 {
                root_matches
            } else {
                matcher.accepts(&matcher.run(parent))
            };
            if parent_matches {
                children.insert(paths::join(&nodes), kind);
            }
        }
        children.into_iter().collect()
    }

    /// `COUNT NODES pattern LEVEL = level`: how many distinct nodes at `level` (root is 0) lie on the
    /// paths of the schema nodes `pattern` matches.
    pub fn count_nodes(&self, pattern: &[PathNode], level: usize) -> usize {
        let matcher = paths::Matcher::new(pattern);
        let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
        for nodes in self.tree_nodes().into_keys() {
            if nodes.len() > level && matcher.accepts(&matcher.run(&nodes)) {
                found.insert(nodes[..=level].to_vec());
            }
        }
        found.len()
    }

    /// `COUNT TIMESERIES pattern GROUP BY LEVEL = level`: the series `pattern` matches counted per node
    /// at `level` of their paths (series with fewer levels are left out), in path order.
    pub fn count_series_by_level(
        &self,
        pattern: &[PathNode],
        level: usize,
    ) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for series in self.matching_series(pattern) {
            let nodes = paths::split(&series.path);
            if nodes.len() > level {
                *counts.entry(paths::join(&nodes[..=level])).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// What [`Schema::create_series`] checks, changing nothing (a local creation is checked, logged,
    /// then applied: `schema_sync`).
    pub(crate) fn check_create_series(
        &self,
        device: &str,
        measurements: &[(String, DataType, String, String)],
        auto_database: bool,
    ) -> Result<()> {
        let device_nodes = paths::split(device);
        if device_nodes.len() < 2 || device_nodes[0] != "root" {
            return Err(EngineError::IllegalPath(format!(
                "{device} is not a legal path"
            )));
        }
        match self.database_of(device) {
            Some(_) => {}
            None if auto_database => self.check_new_database(&paths::join(&device_nodes[..2]))?,
            None => {
                return Err(EngineError::DatabaseNotSet(format!(
                    "Database is not set for current seriesPath: [{device}]"
                )))
            }
        }
        for (i, (m, _, _, _)) in measurements.iter().enumerate() {
            if measurements[..i].iter().any(|other| &other.0 == m) {
                return Err(EngineError::IllegalPath(format!("Path duplicated: {m}")));
            }
            if self.series_type(device, m).is_some() {
                let mut nodes = device_nodes.clone();
                nodes.push(m.clone());
                return Err(EngineError::SeriesExists(format!(
                    "Timeseries [{}] already exist",
                    paths::join(&nodes)
                )));
            }
        }
        Ok(())
    }

    /// Creates series (all or none), creating the database at level 1 when `auto_database` and the
    /// device is under none (IoTDB's automatic database creation).
    pub fn create_series(
        &mut self,
        catalog: &Catalog,
        device: &str,
        aligned: bool,
        measurements: &[(String, DataType, String, String)],
        auto_database: bool,
    ) -> Result<()> {
        self.check_create_series(device, measurements, auto_database)?;
        let device_nodes = paths::split(device);
        if device_nodes.len() < 2 || device_nodes[0] != "root" {
            return Err(EngineError::IllegalPath(format!(
                "{device} is not a legal path"
            )));
        }
        let database = match self.database_of(device) {
            Some(db) => db.clone(),
            None if auto_database => {
                if device_nodes.len() < 2 {
                    return Err(EngineError::IllegalPath(format!(
                        "{device} is not a legal path"
                    )));
                }
                let db = paths::join(&device_nodes[..2]);
                self.create_database(catalog, &db)?;
                db
            }
            None => {
                return Err(EngineError::DatabaseNotSet(format!(
                    "Database is not set for current seriesPath: [{device}]"
                )))
            }
        };
        // A device may be the database node itself (`root.wt1.temperature` in database `root.wt1`), as
        // in IoTDB; only a series that would be the database node is refused.
        let existing_aligned = self.devices.get(device).map(|d| d.aligned);
        let records: Vec<SeriesRecord> = measurements
            .iter()
            .map(|(m, t, encoding, compressor)| {
                let mut nodes = device_nodes.clone();
                nodes.push(m.clone());
                SeriesRecord {
                    path: paths::join(&nodes),
                    database: database.clone(),
                    device: device.to_string(),
                    data_type: t.name().to_string(),
                    encoding: encoding.clone(),
                    compressor: compressor.clone(),
                    aligned: existing_aligned.unwrap_or(aligned),
                }
            })
            .collect();
        for r in &records {
            let measurement = paths::split(&r.path).pop().unwrap_or_default();
            if self.series_type(device, &measurement).is_some() {
                return Err(EngineError::SeriesExists(format!(
                    "Timeseries [{}] already exist",
                    r.path
                )));
            }
        }
        catalog.create_series(&records)?;
        self.note_device_key(device);
        let entry = self
            .devices
            .entry(device.to_string())
            .or_insert_with(|| DeviceInfo {
                aligned,
                database: database.clone(),
                measurements: BTreeMap::new(),
                template: None,
            });
        for (m, t, encoding, compressor) in measurements {
            entry.measurements.insert(
                m.clone(),
                MeasurementInfo {
                    data_type: *t,
                    encoding: encoding.clone(),
                    compressor: compressor.clone(),
                },
            );
        }
        Ok(())
    }

    /// Removes series from the schema (and the catalog).
    pub fn drop_series(&mut self, catalog: &Catalog, series: &[SeriesInfo]) -> Result<()> {
        let paths: Vec<String> = series.iter().map(|s| s.path.clone()).collect();
        catalog.drop_series(&paths)?;
        for s in series {
            if let Some(d) = self.devices.get_mut(&s.device) {
                d.measurements.remove(&s.measurement);
                if d.measurements.is_empty() {
                    self.devices.remove(&s.device);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn schema(devices: &[(&str, &[&str])]) -> Schema {
        let mut schema = Schema::default();
        for (device, measurements) in devices {
            schema.note_device_key(device);
            let info = schema.devices.entry(device.to_string()).or_default();
            for m in *measurements {
                info.measurements.insert(
                    m.to_string(),
                    MeasurementInfo {
                        data_type: DataType::Int64,
                        encoding: "PLAIN".into(),
                        compressor: "LZ4".into(),
                    },
                );
            }
        }
        schema
    }

    /// Every series whose nodes the pattern matches, by visiting them all.
    fn naive(schema: &Schema, pattern: &[PathNode]) -> Vec<String> {
        let mut out = Vec::new();
        for (device, info) in &schema.devices {
            for m in info.measurements.keys() {
                let mut nodes = paths::split(device);
                nodes.push(m.clone());
                if paths::matches(pattern, &nodes) {
                    out.push(paths::join(&nodes));
                }
            }
        }
        out
    }

    #[test]
    fn prefix_lookups_find_what_a_full_scan_finds() {
        let canonical = schema(&[
            ("root.sg.d1", &["s1", "s2"]),
            ("root.sg.d1.x", &["s1"]),
            ("root.sg1.d1", &["s1"]),
            ("root.sg.`a.b`", &["s1"]),
            ("root.sgx", &["m"]),
        ]);
        // A key spelled with a needless quote turns the prefix lookups off, and still matches.
        let spelled = schema(&[("root.sg.d1", &["s1"]), ("root.sg.`d2`", &["s1"])]);
        assert!(!canonical.non_canonical_keys && spelled.non_canonical_keys);
        for pattern in [
            "root.**",
            "root.sg.*.s1",
            "root.sg.d1.s1",
            "root.sg.d1.*",
            "root.sg.**",
            "root.sg1.**",
            "root.*.d1.s1",
            "root.sg.`a.b`.s1",
            "root.sg.d1.**",
            "root.sg.d1",
            "root.sg.d2.s1",
            "root.nope.x",
            "root.**.s1",
        ] {
            let nodes = paths::parse_pattern(pattern).unwrap();
            for s in [&canonical, &spelled] {
                let found: Vec<String> = s
                    .matching_series(&nodes)
                    .into_iter()
                    .map(|i| i.path)
                    .collect();
                assert_eq!(found, naive(s, &nodes), "{pattern}");
            }
        }
    }
}
