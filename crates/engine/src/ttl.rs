//! TTL as IoTDB has it for the tree model: rules that give devices a time to live (a device path, or
//! a prefix path ending in `.**` for every device under it; the most specific rule wins: an exact
//! device over any prefix, a longer prefix over a shorter one). A point older than `now - ttl`
//! has expired: queries do not see it, new writes of it are refused (606), and merges drop it.

use std::sync::{Arc, RwLock};

use duet_parser::{Path, PathNode};

use crate::paths;
use crate::{EngineError, Result};

/// A TTL of INF: set on a device to exempt it from a broader rule.
pub const INFINITE_TTL_MS: i64 = i64::MAX;

/// The rules, ready to match devices.
#[derive(Debug, Default)]
pub struct TtlRules {
    /// (device nodes, ttl) for rules without `**`.
    exact: Vec<(Vec<String>, i64)>,
    /// (prefix nodes, ttl) for `prefix.**` rules, longest prefix first.
    prefixes: Vec<(Vec<String>, i64)>,
}

impl TtlRules {
    /// From the catalog's (pattern, ttl) rows.
    pub fn new(rules: &[(String, i64)]) -> TtlRules {
        let mut out = TtlRules::default();
        for (pattern, ttl_ms) in rules {
            let mut nodes = paths::split(pattern);
            if nodes.last().is_some_and(|n| n == "**") {
                nodes.pop();
                out.prefixes.push((nodes, *ttl_ms));
            } else {
                out.exact.push((nodes, *ttl_ms));
            }
        }
        out.prefixes
            .sort_by_key(|(nodes, _)| std::cmp::Reverse(nodes.len()));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The device's TTL in milliseconds; `None` when no rule applies or the rule says INF.
    pub fn ttl_ms(&self, device: &[String]) -> Option<i64> {
        let ttl = self
            .exact
            .iter()
            .find(|(nodes, _)| nodes.as_slice() == device)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(prefix, _)| device.len() > prefix.len() && device.starts_with(prefix))
            })
            .map(|(_, ttl)| *ttl)?;
        (ttl != INFINITE_TTL_MS).then_some(ttl)
    }

    /// The time (in the instance's units) before which a point of `series` (a full series path)
    /// has expired at `now`; `None` when it never expires.
    pub fn floor_for_series(&self, series: &str, now: i64, units_per_ms: i64) -> Option<i64> {
        if self.is_empty() {
            return None;
        }
        let mut nodes = paths::split(series);
        nodes.pop();
        self.floor_for_device(&nodes, now, units_per_ms)
    }

    /// Like [`TtlRules::floor_for_series`], for a device's nodes.
    pub fn floor_for_device(&self, device: &[String], now: i64, units_per_ms: i64) -> Option<i64> {
        let ttl = self.ttl_ms(device)?;
        Some(now.saturating_sub(ttl.saturating_mul(units_per_ms)))
    }
}

/// The rules shared by the engine and the storage's merges; replaced whole when they change.
pub type SharedTtlRules = Arc<RwLock<Arc<TtlRules>>>;

/// The patterns a `SET TTL`/`UNSET TTL` path stands for, checked as IoTDB checks them: `*` may not
/// appear, `**` only as the last node; a path naming a database also covers everything under it.
pub fn rule_patterns(path: &Path, is_database: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut nodes = Vec::with_capacity(path.0.len());
    let last = path.0.len().saturating_sub(1);
    for (i, node) in path.0.iter().enumerate() {
        match node {
            PathNode::Name(name) => nodes.push(name.clone()),
            PathNode::Many if i == last && i > 0 => {}
            _ => {
                return Err(EngineError::IllegalPath(format!(
                    "{path} is not a legal TTL path: it may contain no `*`, and `**` only as its last node"
                )))
            }
        }
    }
    if nodes.first().map(String::as_str) != Some("root") || nodes.is_empty() {
        return Err(EngineError::IllegalPath(format!(
            "{path} is not a legal TTL path: it must start with root"
        )));
    }
    let prefix = paths::join(&nodes);
    if matches!(path.0.last(), Some(PathNode::Many)) {
        return Ok(vec![format!("{prefix}.**")]);
    }
    if is_database(&prefix) {
        // As IoTDB: `root.sg` for a database means the database (a device too) and all below it.
        return Ok(vec![prefix.clone(), format!("{prefix}.**")]);
    }
    Ok(vec![prefix])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn nodes(path: &str) -> Vec<String> {
        paths::split(path)
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = TtlRules::new(&[
            ("root.bj.**".into(), 100),
            ("root.bj.hd.**".into(), 200),
            ("root.bj.hd.d1".into(), 300),
            ("root.bj.hd.d2".into(), INFINITE_TTL_MS),
        ]);
        assert_eq!(rules.ttl_ms(&nodes("root.bj.hd.d1")), Some(300));
        assert_eq!(rules.ttl_ms(&nodes("root.bj.hd.d9")), Some(200));
        assert_eq!(rules.ttl_ms(&nodes("root.bj.x.d9")), Some(100));
        assert_eq!(rules.ttl_ms(&nodes("root.bj.hd.d2")), None, "INF exempts");
        // `prefix.**` matches below the prefix only, not the prefix itself.
        assert_eq!(rules.ttl_ms(&nodes("root.bj")), None);
        assert_eq!(rules.ttl_ms(&nodes("root.sh.d1")), None);
        assert_eq!(
            rules.floor_for_series("root.bj.hd.d1.s1", 10_000, 1),
            Some(9_700)
        );
        assert_eq!(
            rules.floor_for_series("root.bj.hd.d1.s1", 10_000_000, 1000),
            Some(9_700_000)
        );
        assert_eq!(rules.floor_for_series("root.sh.d1.s1", 10_000, 1), None);
    }

    #[test]
    fn rule_paths_are_checked_and_a_database_covers_what_is_under_it() {
        let path = |text: &str| match duet_parser::parse(&format!("set ttl to {text} 1"))
            .unwrap()
            .remove(0)
        {
            duet_parser::Statement::SetTtl { path, .. } => path,
            other => panic!("{other:?}"),
        };
        let db = |p: &str| p == "root.sg";
        assert_eq!(
            rule_patterns(&path("root.sg"), db).unwrap(),
            vec!["root.sg".to_string(), "root.sg.**".to_string()]
        );
        assert_eq!(
            rule_patterns(&path("root.sg.group"), db).unwrap(),
            vec!["root.sg.group".to_string()]
        );
        assert_eq!(
            rule_patterns(&path("root.sg.**"), db).unwrap(),
            vec!["root.sg.**".to_string()]
        );
        for bad in ["root.*.db", "root.**.db.*", "root.db.*"] {
            let err = rule_patterns(&path(bad), db).unwrap_err();
            assert!(
                err.to_string().contains("not a legal TTL path"),
                "{bad}: {err}"
            );
        }
    }
}
