//! Series paths as the engine handles them: splitting a stored path into nodes (back-quoted nodes may
//! contain dots), and matching IoTDB path patterns where `*` is one level and `**` one or more.

use duet_parser::{Path, PathNode};

/// Splits `root.sg.\`a.b\`.s1` into its nodes, keeping back-quoted nodes whole (without the quotes).
pub fn split(path: &str) -> Vec<String> {
    let mut nodes = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                current.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => nodes.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    nodes.push(current);
    nodes
}

/// Whether a node needs back-quotes to be read back as one node.
fn needs_quotes(node: &str) -> bool {
    node.is_empty() || !node.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Joins nodes into the canonical string form of a path.
pub fn join<S: AsRef<str>>(nodes: &[S]) -> String {
    nodes
        .iter()
        .map(|n| {
            let n = n.as_ref();
            if needs_quotes(n) {
                format!("`{}`", n.replace('`', "``"))
            } else {
                n.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The canonical string of a parsed path without wildcards, or `None` if it has any.
pub fn concrete(path: &Path) -> Option<String> {
    let mut nodes = Vec::with_capacity(path.0.len());
    for node in &path.0 {
        match node {
            PathNode::Name(n) => nodes.push(n.as_str()),
            _ => return None,
        }
    }
    Some(join(&nodes))
}

/// Parses a path or pattern string (`root.sg.*.s1`, `root.**`) into nodes; `None` when it does not
/// start with `root` or has an empty node.
pub fn parse_pattern(text: &str) -> Option<Vec<PathNode>> {
    let nodes = split(text.trim());
    if nodes.first().map(String::as_str) != Some("root") || nodes.iter().any(String::is_empty) {
        return None;
    }
    Some(
        nodes
            .into_iter()
            .map(|n| match n.as_str() {
                "*" => PathNode::One,
                "**" => PathNode::Many,
                _ => PathNode::Name(n),
            })
            .collect(),
    )
}

/// Whether `pattern` matches every node of `path`.
pub fn matches(pattern: &[PathNode], path: &[String]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(PathNode::Many), _) => {
            // `**` takes one or more nodes.
            (1..=path.len()).any(|taken| matches(&pattern[1..], &path[taken..]))
        }
        (Some(_), None) => false,
        (Some(PathNode::One), Some(_)) => matches(&pattern[1..], &path[1..]),
        (Some(PathNode::Name(n)), Some(p)) => n == p && matches(&pattern[1..], &path[1..]),
    }
}

/// Whether `pattern` matches `path` or some path below it (used for `SHOW DEVICES root.sg` style
/// prefixes and to find databases a pattern touches).
pub fn matches_prefix_of(pattern: &[PathNode], path: &[String]) -> bool {
    if matches(pattern, path) {
        return true;
    }
    // Could a longer path starting with `path` match? Walk the pattern against the given nodes.
    fn walk(pattern: &[PathNode], path: &[String]) -> bool {
        match (pattern.first(), path.first()) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(PathNode::Many), _) => true,
            (Some(PathNode::One), Some(_)) => walk(&pattern[1..], &path[1..]),
            (Some(PathNode::Name(n)), Some(p)) => n == p && walk(&pattern[1..], &path[1..]),
        }
    }
    walk(pattern, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<PathNode> {
        split(s)
            .into_iter()
            .map(|n| match n.as_str() {
                "*" => PathNode::One,
                "**" => PathNode::Many,
                _ => PathNode::Name(n),
            })
            .collect()
    }

    #[test]
    fn split_and_join_keep_quoted_nodes() {
        assert_eq!(split("root.sg.`a.b`.s1"), vec!["root", "sg", "a.b", "s1"]);
        assert_eq!(join(&split("root.sg.`a.b`.s1")), "root.sg.`a.b`.s1");
        assert_eq!(join(&["root", "x`y"]), "root.`x``y`");
        assert_eq!(split(&join(&["root", "x`y"])), vec!["root", "x`y"]);
    }

    #[test]
    fn wildcards_match_like_iotdb() {
        let p = split("root.sg.d1.s1");
        assert!(matches(&pat("root.**"), &p));
        assert!(matches(&pat("root.sg.*.s1"), &p));
        assert!(matches(&pat("root.**.s1"), &p));
        assert!(matches(&pat("root.sg.d1.*"), &p));
        assert!(!matches(&pat("root.sg.*"), &p));
        assert!(!matches(&pat("root.sg.d1.s1.**"), &p));
        assert!(!matches(&pat("root.sg.**.d1.s1"), &p));
        assert!(matches_prefix_of(&pat("root.sg.d1.s1"), &split("root.sg")));
        assert!(!matches_prefix_of(&pat("root.other.*"), &split("root.sg")));
    }
}
