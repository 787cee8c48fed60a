//! TTL rules as IoTDB keeps them for the tree model: a path pattern (a device, or a prefix ending in
//! `.**`) and a time to live in milliseconds. The engine reads them to hide expired points and refuse
//! expired writes; compaction drops what they expire.

use rusqlite::params;

use crate::{Catalog, Error, Result};

/// IoTDB's limit on the number of TTL rules.
pub const MAX_TTL_RULES: usize = 1000;

impl Catalog {
    /// Every rule, by pattern.
    pub fn ttl_rules(&self) -> Result<Vec<(String, i64)>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT pattern, ttl_ms FROM ttl_rules ORDER BY pattern")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<(String, i64)>, _>>()?)
    }

    /// Sets (or replaces) the rules for `patterns` in one transaction; more than
    /// [`MAX_TTL_RULES`] in all is [`Error::TooManyTtlRules`].
    pub fn set_ttl(&self, patterns: &[String], ttl_ms: i64) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for pattern in patterns {
            transaction.execute(
                "INSERT INTO ttl_rules (pattern, ttl_ms) VALUES (?1, ?2)
                 ON CONFLICT (pattern) DO UPDATE SET ttl_ms = excluded.ttl_ms",
                params![pattern, ttl_ms],
            )?;
        }
        let count: i64 =
            transaction.query_row("SELECT count(*) FROM ttl_rules", [], |r| r.get(0))?;
        if usize::try_from(count).unwrap_or(usize::MAX) > MAX_TTL_RULES {
            return Err(Error::TooManyTtlRules(MAX_TTL_RULES));
        }
        transaction.commit()?;
        Ok(())
    }

    /// Removes the rules for `patterns` (absent ones are no error); returns how many were removed.
    pub fn unset_ttl(&self, patterns: &[String]) -> Result<usize> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let mut removed = 0;
        for pattern in patterns {
            removed +=
                transaction.execute("DELETE FROM ttl_rules WHERE pattern = ?1", [pattern])?;
        }
        transaction.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::tests::open_fresh;

    #[test]
    fn rules_are_set_replaced_listed_and_unset() {
        let (_dir, catalog) = open_fresh();
        assert!(catalog.ttl_rules().unwrap().is_empty());
        catalog
            .set_ttl(&["root.sg.**".into(), "root.sg".into()], 1000)
            .unwrap();
        catalog.set_ttl(&["root.sg.**".into()], 2000).unwrap();
        assert_eq!(
            catalog.ttl_rules().unwrap(),
            vec![("root.sg".into(), 1000), ("root.sg.**".into(), 2000)]
        );
        assert_eq!(
            catalog
                .unset_ttl(&["root.sg".into(), "root.nothing".into()])
                .unwrap(),
            1
        );
        assert_eq!(
            catalog.ttl_rules().unwrap(),
            vec![("root.sg.**".into(), 2000)]
        );
    }

    #[test]
    fn more_than_the_limit_is_refused_and_nothing_changes() {
        let (_dir, catalog) = open_fresh();
        let patterns: Vec<String> = (0..=super::MAX_TTL_RULES)
            .map(|i| format!("root.sg.d{i}"))
            .collect();
        let err = catalog.set_ttl(&patterns, 1000).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        assert!(catalog.ttl_rules().unwrap().is_empty());
    }
}
