//! IoTDB pipe parameter maps: keys may carry a stage prefix (`sink.ip` ≡ `connector.ip` ≡ `ip`), are
//! looked up case-insensitively after that reduction, and are shown key-sorted with passwords masked.

/// The stage prefixes IoTDB strips when it looks a key up (pipe reference §2.1).
const PREFIXES: [&str; 5] = ["source.", "extractor.", "processor.", "sink.", "connector."];

/// Keys whose values are never shown.
const SECRET_KEYS: [&str; 3] = ["password", "ssl.trust-store-pwd", "ssl.key-store-pwd"];

/// A key without its stage prefix, lower-cased: the form keys are compared in.
pub fn reduce_key(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    for prefix in PREFIXES {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    lower
}

/// One stage's parameters, in written order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters(pub Vec<(String, String)>);

impl Parameters {
    pub fn new(pairs: Vec<(String, String)>) -> Parameters {
        Parameters(pairs)
    }

    /// The value of `key` (given without prefix), matching any prefixed spelling.
    pub fn get(&self, key: &str) -> Option<&str> {
        let wanted = reduce_key(key);
        self.0
            .iter()
            .find(|(k, _)| reduce_key(k) == wanted)
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The first reduced key that is given twice with different spellings or values, if any.
    pub fn duplicate_key(&self) -> Option<String> {
        let mut seen: Vec<String> = Vec::with_capacity(self.0.len());
        for (k, _) in &self.0 {
            let r = reduce_key(k);
            if seen.contains(&r) {
                return Some(r);
            }
            seen.push(r);
        }
        None
    }

    /// `ALTER … MODIFY`: every new key replaces the equivalent old one (compared after prefix
    /// reduction), other old keys stay.
    pub fn modified_by(&self, changes: &Parameters) -> Parameters {
        let mut out: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| !changes.contains(k))
            .cloned()
            .collect();
        out.extend(changes.0.iter().cloned());
        Parameters(out)
    }

    /// The keys (as written) whose reduced form is not among `known`.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| !known.contains(&reduce_key(k).as_str()))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The first unknown key that looks like a misspelling of a known one (one edit away for keys of
    /// up to four letters, else two; a swap of neighbours is one edit): the key as written, and the
    /// known key with the same stage prefix (`sink.prot` → `sink.port`).
    pub fn misspelled_key(&self, known: &[&str]) -> Option<(String, String)> {
        self.unknown_keys(known).into_iter().find_map(|written| {
            let reduced = reduce_key(&written);
            let allowed = if reduced.chars().count() <= 4 { 1 } else { 2 };
            let (distance, nearest) = known
                .iter()
                .map(|k| (edit_distance(&reduced, k), *k))
                .min()?;
            if distance > allowed {
                return None;
            }
            let trimmed = written.trim();
            let prefix = &trimmed[..trimmed.len().saturating_sub(reduced.len())];
            Some((written.clone(), format!("{prefix}{nearest}")))
        })
    }

    /// IoTDB's `PipeParameters.toString()`: `{k1=v1, k2=v2}`, sorted by key, secrets masked.
    pub fn display(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self.0.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let body = pairs
            .iter()
            .map(|(k, v)| {
                if SECRET_KEYS.contains(&reduce_key(k).as_str()) {
                    format!("{k}=******")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("{{{body}}}")
    }
}

/// Edits (insert, delete, replace, swap of neighbours) from `a` to `b`: the optimal string alignment
/// distance, enough to recognise a typing slip in a parameter key.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
impl Parameters {
    /// Parameters from (key, value) pairs, as a test writes them.
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Parameters {
        Parameters(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_keys_are_named_with_the_nearest_known_key() {
        let known = ["ip", "port", "node-urls", "batch.size-bytes"];
        let params = Parameters::of(&[("sink.ip", "a"), ("sink.prot", "1")]);
        assert_eq!(
            params.misspelled_key(&known),
            Some(("sink.prot".to_string(), "sink.port".to_string()))
        );
        let params = Parameters::of(&[("connector.node-url", "a:1")]);
        assert_eq!(
            params.misspelled_key(&known).map(|(_, s)| s),
            Some("connector.node-urls".to_string())
        );
        // Far from every known key: unknown, but not a misspelling.
        let params = Parameters::of(&[("sink.exception.conflict.resolve-strategy", "x")]);
        assert_eq!(params.misspelled_key(&known), None);
        assert_eq!(
            params.unknown_keys(&known),
            vec!["sink.exception.conflict.resolve-strategy".to_string()]
        );
        assert_eq!(edit_distance("prot", "port"), 1);
        assert_eq!(edit_distance("", "ip"), 2);
    }

    #[test]
    fn prefixes_reduce_to_the_same_key() {
        let params = Parameters::of(&[
            ("sink.ip", "iotdb-2"),
            ("connector.port", "6667"),
            ("Sink.User", "u"),
        ]);
        assert_eq!(params.get("ip"), Some("iotdb-2"));
        assert_eq!(params.get("sink.ip"), Some("iotdb-2"));
        assert_eq!(params.get("connector.ip"), Some("iotdb-2"));
        assert_eq!(params.get("port"), Some("6667"));
        assert_eq!(params.get("user"), Some("u"));
        assert_eq!(params.get("host"), None);
        assert_eq!(
            Parameters::of(&[("ip", "a"), ("sink.ip", "b")]).duplicate_key(),
            Some("ip".to_string())
        );
    }

    #[test]
    fn display_sorts_and_masks() {
        let params = Parameters::of(&[
            ("sink.port", "6667"),
            ("sink", "iotdb-thrift-sink"),
            ("sink.password", "secret"),
            ("sink.ip", "x"),
        ]);
        assert_eq!(
            params.display(),
            "{sink=iotdb-thrift-sink, sink.ip=x, sink.password=******, sink.port=6667}"
        );
        assert_eq!(Parameters::default().display(), "{}");
    }

    #[test]
    fn modify_replaces_equivalent_keys() {
        let old = Parameters::of(&[("sink.ip", "a"), ("sink.port", "1")]);
        let new = old.modified_by(&Parameters::of(&[("ip", "b")]));
        assert_eq!(new.get("ip"), Some("b"));
        assert_eq!(new.get("port"), Some("1"));
        assert_eq!(new.0.len(), 2);
    }
}
