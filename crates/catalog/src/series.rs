//! The tree-model schema: databases and time series. The engine keeps a cache in memory and writes
//! through to these tables, so a series created (explicitly or by an insert) survives a restart.

use rusqlite::params;

use crate::error::{Error, Result};
use crate::{now_ms, Catalog};

/// One time series as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRecord {
    pub path: String,
    pub database: String,
    pub device: String,
    /// IoTDB type name (`INT32`, `TEXT`, …).
    pub data_type: String,
    pub encoding: String,
    pub compressor: String,
    pub aligned: bool,
}

impl Catalog {
    /// Every database, sorted.
    pub fn databases(&self) -> Result<Vec<String>> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT path FROM databases ORDER BY path")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<std::result::Result<Vec<String>, _>>()?)
    }

    /// Creates a database; `Error::DatabaseExists` if it is there already.
    pub fn create_database(&self, path: &str) -> Result<()> {
        let connection = self.connection();
        match connection.execute(
            "INSERT INTO databases (path, created_at_ms) VALUES (?1, ?2)",
            params![path, now_ms()],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::DatabaseExists(path.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drops a database and its series; returns the paths of the series removed.
    pub fn drop_database(&self, path: &str) -> Result<Vec<String>> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let series: Vec<String> = {
            let mut statement = transaction
                .prepare("SELECT path FROM timeseries WHERE database = ?1 ORDER BY path")?;
            let rows = statement.query_map([path], |row| row.get(0))?;
            rows.collect::<std::result::Result<Vec<String>, _>>()?
        };
        transaction.execute("DELETE FROM databases WHERE path = ?1", [path])?;
        transaction.commit()?;
        Ok(series)
    }

    /// Every time series, sorted by path.
    pub fn series(&self) -> Result<Vec<SeriesRecord>> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT path, database, device, data_type, encoding, compressor, aligned FROM timeseries ORDER BY path",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(SeriesRecord {
                path: row.get(0)?,
                database: row.get(1)?,
                device: row.get(2)?,
                data_type: row.get(3)?,
                encoding: row.get(4)?,
                compressor: row.get(5)?,
                aligned: row.get::<_, i64>(6)? != 0,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Creates series in one transaction: all or none. A path that exists is `Error::SeriesExists`.
    pub fn create_series(&self, records: &[SeriesRecord]) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for r in records {
            let inserted = transaction.execute(
                "INSERT INTO timeseries (path, database, device, data_type, encoding, compressor, aligned) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.path, r.database, r.device, r.data_type, r.encoding, r.compressor, i64::from(r.aligned)],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(Error::SeriesExists(r.path.clone()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Renames series rows from an old printed form of their path to the current one (`(old,
    /// new)` pairs; the device key and everything else stay), in one transaction.
    pub fn rename_series(&self, renames: &[(String, String)]) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for (old, new) in renames {
            transaction.execute(
                "UPDATE timeseries SET path = ?2 WHERE path = ?1",
                [old, new],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Removes series (missing ones are ignored).
    pub fn drop_series(&self, paths: &[String]) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for path in paths {
            transaction.execute("DELETE FROM timeseries WHERE path = ?1", [path])?;
        }
        transaction.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::{Catalog, Error, ImmutableSettings, SeriesRecord};

    fn settings() -> ImmutableSettings {
        ImmutableSettings {
            timestamp_precision: "ms".into(),
            cluster_id: None,
        }
    }

    fn record(path: &str) -> SeriesRecord {
        SeriesRecord {
            path: path.into(),
            database: "root.sg".into(),
            device: path.rsplit_once('.').map(|(d, _)| d.to_string()).unwrap(),
            data_type: "INT64".into(),
            encoding: "PLAIN".into(),
            compressor: "LZ4".into(),
            aligned: false,
        }
    }

    #[test]
    fn databases_and_series_persist_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        {
            let catalog = Catalog::open(dir.path(), &settings()).unwrap();
            catalog.create_database("root.sg").unwrap();
            assert!(matches!(
                catalog.create_database("root.sg"),
                Err(Error::DatabaseExists(_))
            ));
            catalog
                .create_series(&[record("root.sg.d1.s2"), record("root.sg.d1.s1")])
                .unwrap();
            // All or none: the duplicate aborts the whole batch.
            assert!(matches!(
                catalog.create_series(&[record("root.sg.d2.s1"), record("root.sg.d1.s1")]),
                Err(Error::SeriesExists(p)) if p == "root.sg.d1.s1"
            ));
        }
        let catalog = Catalog::open(dir.path(), &settings()).unwrap();
        assert_eq!(catalog.databases().unwrap(), vec!["root.sg"]);
        let paths: Vec<String> = catalog
            .series()
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(paths, vec!["root.sg.d1.s1", "root.sg.d1.s2"]);
        catalog.drop_series(&["root.sg.d1.s2".to_string()]).unwrap();
        assert_eq!(
            catalog.drop_database("root.sg").unwrap(),
            vec!["root.sg.d1.s1"]
        );
        assert!(catalog.series().unwrap().is_empty());
        assert!(catalog.databases().unwrap().is_empty());
    }
}
