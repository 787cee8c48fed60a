//! What a session may see: the path patterns of its READ privileges, applied where series, devices,
//! databases and tree nodes are resolved, so a query (and SHOW/COUNT) sees only what its user may read
//! — IoTDB's behaviour: paths outside the scope are left out of results, never an error.
//!
//! The scope is installed for the current thread by [`enter`] around a synchronous stretch of
//! resolution (planning a query on its blocking thread, a SHOW statement without an await), and
//! consulted by [`crate::schema::Schema`]'s resolvers. **A scope guard never lives across an
//! await or leaves its thread**: the server decides the scope, the engine only filters by it.

use std::cell::RefCell;
use std::sync::Arc;

use duet_parser::PathNode;

use crate::paths;

/// The patterns a user may read through (each a full path or a prefix ending in `**`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadScope {
    patterns: Vec<Vec<PathNode>>,
}

impl ReadScope {
    pub fn new(patterns: Vec<Vec<PathNode>>) -> ReadScope {
        ReadScope { patterns }
    }

    /// Whether the series (or any path) with these nodes may be read.
    pub fn covers<S: AsRef<str>>(&self, nodes: &[S]) -> bool {
        self.patterns.iter().any(|p| paths::matches(p, nodes))
    }

    /// Whether a node (database, device, inner node) leads to something readable: a pattern matches
    /// it or a path below it.
    pub fn leads_to<S: AsRef<str>>(&self, nodes: &[S]) -> bool {
        self.patterns
            .iter()
            .any(|p| paths::matches(p, nodes) || paths::matches_prefix_of(p, nodes))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ReadScope>>> = const { RefCell::new(None) };
}

/// Restores the previous scope when dropped.
#[must_use = "the scope applies while the guard lives"]
pub struct ScopeGuard {
    previous: Option<Arc<ReadScope>>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Installs `scope` (`None`: everything is visible) for this thread until the guard drops.
pub fn enter(scope: Option<Arc<ReadScope>>) -> ScopeGuard {
    let previous = CURRENT.with(|current| std::mem::replace(&mut *current.borrow_mut(), scope));
    ScopeGuard { previous }
}

/// Whether the current thread's scope lets a series (device nodes and measurement) be seen.
pub(crate) fn series_visible(device_nodes: &[String], measurement: &str) -> bool {
    CURRENT.with(|current| match current.borrow().as_ref() {
        None => true,
        Some(scope) => {
            let mut nodes: Vec<&str> = device_nodes.iter().map(String::as_str).collect();
            nodes.push(measurement);
            scope.covers(&nodes)
        }
    })
}

/// Whether the current thread's scope lets a node (by its nodes) be seen.
pub(crate) fn node_visible<S: AsRef<str>>(nodes: &[S]) -> bool {
    CURRENT.with(|current| match current.borrow().as_ref() {
        None => true,
        Some(scope) => scope.leads_to(nodes),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scope_filters_only_while_entered() {
        let scope = ReadScope::new(vec![paths::parse_pattern("root.sg.d1.**").unwrap()]);
        let d1 = vec!["root".to_string(), "sg".into(), "d1".into()];
        let d2 = vec!["root".to_string(), "sg".into(), "d2".into()];
        assert!(series_visible(&d2, "s1"));
        {
            let _guard = enter(Some(Arc::new(scope)));
            assert!(series_visible(&d1, "s1"));
            assert!(!series_visible(&d2, "s1"));
            assert!(node_visible(&["root", "sg"]));
            assert!(!node_visible(&["root", "other"]));
            {
                let _inner = enter(None);
                assert!(series_visible(&d2, "s1"));
            }
            assert!(!series_visible(&d2, "s1"));
        }
        assert!(series_visible(&d2, "s1"));
    }
}
