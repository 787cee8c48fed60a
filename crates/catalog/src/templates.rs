//! Device templates in the catalog: each template with its measurements, the paths a template is set
//! on, and the devices that activated one. The engine keeps them in memory and writes through, so a
//! template, its setting and its activations survive a restart.

use rusqlite::params;

use crate::error::{Error, Result};
use crate::{now_ms, Catalog};

/// One measurement of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMeasurementRecord {
    pub name: String,
    /// IoTDB type name (`INT32`, `TEXT`, …).
    pub data_type: String,
    pub encoding: String,
    pub compressor: String,
}

/// One template as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub name: String,
    pub aligned: bool,
    pub measurements: Vec<TemplateMeasurementRecord>,
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl Catalog {
    /// Every template with its measurements, by name.
    pub fn templates(&self) -> Result<Vec<TemplateRecord>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT name, aligned FROM templates ORDER BY name")?;
        let heads = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? != 0))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut measurements = connection.prepare(
            "SELECT measurement, data_type, encoding, compressor FROM template_measurements \
             WHERE template = ?1 ORDER BY measurement",
        )?;
        let mut out = Vec::with_capacity(heads.len());
        for (name, aligned) in heads {
            let rows = measurements
                .query_map([&name], |row| {
                    Ok(TemplateMeasurementRecord {
                        name: row.get(0)?,
                        data_type: row.get(1)?,
                        encoding: row.get(2)?,
                        compressor: row.get(3)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(TemplateRecord {
                name,
                aligned,
                measurements: rows,
            });
        }
        Ok(out)
    }

    /// Creates a template; `Error::TemplateExists` if the name is taken.
    pub fn create_template(&self, template: &TemplateRecord) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        if let Err(e) = transaction.execute(
            "INSERT INTO templates (name, aligned, created_at_ms) VALUES (?1, ?2, ?3)",
            params![template.name, i64::from(template.aligned), now_ms()],
        ) {
            return Err(if is_constraint(&e) {
                Error::TemplateExists(template.name.clone())
            } else {
                e.into()
            });
        }
        insert_measurements(&transaction, &template.name, &template.measurements)?;
        transaction.commit()?;
        Ok(())
    }

    /// Adds measurements to a template (all or none).
    pub fn add_template_measurements(
        &self,
        template: &str,
        measurements: &[TemplateMeasurementRecord],
    ) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        insert_measurements(&transaction, template, measurements)?;
        transaction.commit()?;
        Ok(())
    }

    /// Sets whether a template is aligned (a replicated definition that wins over the one here).
    pub fn set_template_aligned(&self, template: &str, aligned: bool) -> Result<()> {
        self.connection().execute(
            "UPDATE templates SET aligned = ?2 WHERE name = ?1",
            params![template, i64::from(aligned)],
        )?;
        Ok(())
    }

    /// Removes one measurement from a template.
    pub fn remove_template_measurement(&self, template: &str, measurement: &str) -> Result<()> {
        self.connection().execute(
            "DELETE FROM template_measurements WHERE template = ?1 AND measurement = ?2",
            params![template, measurement],
        )?;
        Ok(())
    }

    /// Drops a template (the caller checked that it is set nowhere).
    pub fn drop_template(&self, template: &str) -> Result<()> {
        self.connection()
            .execute("DELETE FROM templates WHERE name = ?1", [template])?;
        Ok(())
    }

    /// (path, template) of every path a template is set on, by path.
    pub fn template_set_paths(&self) -> Result<Vec<(String, String)>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT path, template FROM template_set ORDER BY path")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Records that `template` is set on `path`.
    pub fn set_template(&self, path: &str, template: &str) -> Result<()> {
        self.connection().execute(
            "INSERT INTO template_set (path, template) VALUES (?1, ?2)",
            params![path, template],
        )?;
        Ok(())
    }

    /// Removes the template set on `path`.
    pub fn unset_template(&self, path: &str) -> Result<()> {
        self.connection()
            .execute("DELETE FROM template_set WHERE path = ?1", [path])?;
        Ok(())
    }

    /// (device, template, database) of every activation, by device.
    pub fn template_activations(&self) -> Result<Vec<(String, String, String)>> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT device, template, database FROM template_activations ORDER BY device",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Records that `device` (in `database`) activated `template`.
    pub fn activate_template(&self, device: &str, template: &str, database: &str) -> Result<()> {
        self.connection().execute(
            "INSERT OR REPLACE INTO template_activations (device, template, database) VALUES (?1, ?2, ?3)",
            params![device, template, database],
        )?;
        Ok(())
    }

    /// Removes the activations of `devices` (in one transaction).
    pub fn deactivate_templates(&self, devices: &[String]) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for device in devices {
            transaction.execute(
                "DELETE FROM template_activations WHERE device = ?1",
                [device],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }
}

fn insert_measurements(
    transaction: &rusqlite::Transaction<'_>,
    template: &str,
    measurements: &[TemplateMeasurementRecord],
) -> Result<()> {
    for m in measurements {
        transaction.execute(
            "INSERT INTO template_measurements (template, measurement, data_type, encoding, compressor) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![template, m.name, m.data_type, m.encoding, m.compressor],
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::{Catalog, Error, ImmutableSettings, TemplateMeasurementRecord, TemplateRecord};

    fn measurement(name: &str, data_type: &str) -> TemplateMeasurementRecord {
        TemplateMeasurementRecord {
            name: name.into(),
            data_type: data_type.into(),
            encoding: "PLAIN".into(),
            compressor: "LZ4".into(),
        }
    }

    #[test]
    fn templates_settings_and_activations_persist() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ImmutableSettings {
            timestamp_precision: "ms".into(),
            cluster_id: None,
        };
        {
            let catalog = Catalog::open(dir.path(), &settings).unwrap();
            let t1 = TemplateRecord {
                name: "t1".into(),
                aligned: true,
                measurements: vec![measurement("s1", "INT32")],
            };
            catalog.create_template(&t1).unwrap();
            assert!(
                matches!(catalog.create_template(&t1), Err(Error::TemplateExists(n)) if n == "t1")
            );
            catalog
                .add_template_measurements("t1", &[measurement("s2", "TEXT")])
                .unwrap();
            catalog.create_database("root.sg").unwrap();
            catalog.set_template("root.sg", "t1").unwrap();
            catalog
                .activate_template("root.sg.d1", "t1", "root.sg")
                .unwrap();
            catalog
                .activate_template("root.sg.d2", "t1", "root.sg")
                .unwrap();
            catalog
                .deactivate_templates(&["root.sg.d2".into()])
                .unwrap();
        }
        let catalog = Catalog::open(dir.path(), &settings).unwrap();
        let templates = catalog.templates().unwrap();
        assert_eq!(templates.len(), 1);
        assert!(templates[0].aligned);
        assert_eq!(
            templates[0].measurements,
            vec![measurement("s1", "INT32"), measurement("s2", "TEXT")]
        );
        assert_eq!(
            catalog.template_set_paths().unwrap(),
            vec![("root.sg".to_string(), "t1".to_string())]
        );
        assert_eq!(
            catalog.template_activations().unwrap(),
            vec![("root.sg.d1".into(), "t1".into(), "root.sg".into())]
        );
        // Dropping the database takes its activations with it.
        catalog.drop_database("root.sg").unwrap();
        assert!(catalog.template_activations().unwrap().is_empty());
        catalog.unset_template("root.sg").unwrap();
        catalog.drop_template("t1").unwrap();
        assert!(catalog.templates().unwrap().is_empty());
    }
}
