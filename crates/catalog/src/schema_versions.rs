//! The version of the last replicated change of each schema object (database, series, TTL rule) and
//! whether it left the object present: the engine applies a peer's schema change only over an older
//! one, which makes schema replication order-free, as data replication is by its point versions.

use rusqlite::{params, OptionalExtension};

use crate::{Catalog, Result};

/// The recorded last change of a schema object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectVersion {
    pub hlc: u64,
    pub instance: u64,
    pub present: bool,
}

/// SQLite integers are signed: a version's u64 parts are stored bit for bit (instance numbers are
/// 64-bit hashes, half of them above `i64::MAX`).
fn to_sql(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

fn from_sql(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

impl Catalog {
    /// The last change recorded for `object`, if any.
    pub fn schema_version(&self, object: &str) -> Result<Option<ObjectVersion>> {
        let connection = self.connection();
        Ok(connection
            .query_row(
                "SELECT hlc, instance, present FROM schema_versions WHERE object = ?1",
                [object],
                |row| {
                    Ok(ObjectVersion {
                        hlc: from_sql(row.get(0)?),
                        instance: from_sql(row.get(1)?),
                        present: row.get::<_, i64>(2)? != 0,
                    })
                },
            )
            .optional()?)
    }

    /// Records the last change of each object, in one transaction.
    pub fn set_schema_versions(&self, changes: &[(String, ObjectVersion)]) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for (object, v) in changes {
            transaction.execute(
                "INSERT INTO schema_versions (object, hlc, instance, present) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (object) DO UPDATE SET hlc = excluded.hlc,
                   instance = excluded.instance, present = excluded.present",
                params![object, to_sql(v.hlc), to_sql(v.instance), i64::from(v.present)],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every recorded object whose key starts with `prefix`, for a pipe's history.
    pub fn schema_versions_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, ObjectVersion)>> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT object, hlc, instance, present FROM schema_versions
             WHERE substr(object, 1, length(?1)) = ?1 ORDER BY object",
        )?;
        let rows = statement.query_map([prefix], |row| {
            Ok((
                row.get::<_, String>(0)?,
                ObjectVersion {
                    hlc: from_sql(row.get(1)?),
                    instance: from_sql(row.get(2)?),
                    present: row.get::<_, i64>(3)? != 0,
                },
            ))
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tests::open_fresh;

    #[test]
    fn versions_are_recorded_replaced_and_listed_by_prefix() {
        let (_dir, catalog) = open_fresh();
        assert_eq!(catalog.schema_version("db:root.a").unwrap(), None);
        let v = |hlc, present| ObjectVersion {
            hlc,
            instance: u64::MAX - 2,
            present,
        };
        catalog
            .set_schema_versions(&[
                ("db:root.a".into(), v(5, true)),
                ("ttl:root.a.**".into(), v(6, true)),
            ])
            .unwrap();
        catalog
            .set_schema_versions(&[("db:root.a".into(), v(9, false))])
            .unwrap();
        assert_eq!(
            catalog.schema_version("db:root.a").unwrap(),
            Some(v(9, false))
        );
        let dbs = catalog.schema_versions_with_prefix("db:").unwrap();
        assert_eq!(dbs, vec![("db:root.a".to_string(), v(9, false))]);
    }
}
