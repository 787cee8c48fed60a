//! The queries running on this instance, for `SHOW QUERIES` and `KILL QUERY`.
//!
//! A query is listed from its start until its result is gone (read to the end and closed, or its
//! session ended): the registry holds only a weak reference to the query's control, so it never
//! keeps a finished query alive, and dead entries are pruned whenever the list is read or grows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use duet_engine::limits::{QueryControl, QueryControlRef};

/// One running query as `SHOW QUERIES` shows it.
#[derive(Debug, Clone)]
pub struct RunningQuery {
    pub id: String,
    pub user: String,
    pub statement: String,
    pub started_ms: i64,
    pub elapsed_secs: f32,
}

struct Entry {
    id: String,
    user: String,
    statement: String,
    control: Weak<QueryControl>,
}

#[derive(Default)]
pub struct QueryRegistry {
    next: AtomicU64,
    entries: Mutex<Vec<Entry>>,
}

/// Why `KILL QUERY` did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum KillError {
    /// No running query has this id (or it finished meanwhile).
    NoSuchQuery(String),
    /// The query belongs to another user and the caller is not root.
    NotOwner(String),
}

impl QueryRegistry {
    /// Lists `control` as running `statement` for `user`; returns its id in IoTDB's form
    /// (`yyyyMMdd_HHmmss_<sequence>_<data node id>`).
    pub fn register(&self, control: &QueryControlRef, user: &str, statement: &str) -> String {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let started = chrono::DateTime::from_timestamp_millis(control.started_ms())
            .unwrap_or_default()
            .format("%Y%m%d_%H%M%S");
        let id = format!("{started}_{sequence:05}_1");
        let mut entries = self.lock();
        entries.retain(|e| e.control.strong_count() > 0);
        entries.push(Entry {
            id: id.clone(),
            user: user.to_string(),
            statement: statement.to_string(),
            control: Arc::downgrade(control),
        });
        id
    }

    /// The running queries, oldest first; only `user`'s own unless `user` is `None` (root).
    pub fn list(&self, user: Option<&str>) -> Vec<RunningQuery> {
        let mut entries = self.lock();
        entries.retain(|e| e.control.strong_count() > 0);
        entries
            .iter()
            .filter(|e| user.is_none_or(|u| u == e.user))
            .filter_map(|e| {
                let control = e.control.upgrade()?;
                Some(RunningQuery {
                    id: e.id.clone(),
                    user: e.user.clone(),
                    statement: e.statement.clone(),
                    started_ms: control.started_ms(),
                    elapsed_secs: control.elapsed().as_secs_f32(),
                })
            })
            .collect()
    }

    /// Kills the query `id`, or with `None` every query the caller may kill; `caller` `None` is root,
    /// who may kill any. Returns how many were killed.
    pub fn kill(&self, id: Option<&str>, caller: Option<&str>) -> Result<usize, KillError> {
        let entries = self.lock();
        let mut killed = 0;
        for entry in entries.iter() {
            if id.is_some_and(|id| id != entry.id) {
                continue;
            }
            let Some(control) = entry.control.upgrade() else {
                continue;
            };
            if caller.is_some_and(|c| c != entry.user) {
                if id.is_some() {
                    return Err(KillError::NotOwner(entry.id.clone()));
                }
                continue;
            }
            control.kill();
            killed += 1;
        }
        match id {
            Some(id) if killed == 0 => Err(KillError::NoSuchQuery(id.to_string())),
            _ => Ok(killed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;
    use duet_engine::limits::QueryLimits;

    /// A query's control with 1 MiB of memory and no timeout, for the tests here and in `session`.
    pub(crate) fn control() -> QueryControlRef {
        QueryControl::new(QueryLimits {
            memory_bytes: 1 << 20,
            timeout: None,
        })
    }

    #[test]
    fn a_query_is_listed_while_its_control_lives_and_kill_stops_it() {
        let registry = QueryRegistry::default();
        let mine = control();
        let theirs = control();
        let my_id = registry.register(&mine, "alice", "select * from root.a");
        let their_id = registry.register(&theirs, "bob", "select * from root.b");
        assert_ne!(my_id, their_id);
        assert!(my_id.ends_with("_00001_1"), "{my_id}");
        assert_eq!(registry.list(None).len(), 2);
        let alices = registry.list(Some("alice"));
        assert_eq!(alices.len(), 1);
        assert_eq!(alices[0].statement, "select * from root.a");
        // alice may not kill bob's query, root may.
        assert_eq!(
            registry.kill(Some(&their_id), Some("alice")),
            Err(KillError::NotOwner(their_id.clone()))
        );
        assert!(theirs.check().is_ok());
        assert_eq!(registry.kill(Some(&their_id), None), Ok(1));
        let err = theirs.check().unwrap_err();
        assert!(err.to_string().contains("killed by others"), "{err}");
        assert!(mine.check().is_ok());
        // A finished query (its control dropped) is gone from the list and cannot be killed.
        drop(theirs);
        assert_eq!(registry.list(None).len(), 1);
        assert_eq!(
            registry.kill(Some(&their_id), None),
            Err(KillError::NoSuchQuery(their_id))
        );
        // KILL ALL QUERIES by alice kills hers only.
        assert_eq!(registry.kill(None, Some("alice")), Ok(1));
        assert!(mine.check().is_err());
    }
}
