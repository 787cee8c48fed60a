//! Series paths as the engine handles them: splitting a stored path into nodes (back-quoted nodes may
//! contain dots), printing nodes quoted where IoTDB does, and matching IoTDB path patterns where `*` is
//! one level, `**` one or more, and a `*` inside a node (`d*`) any characters within that node.

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

/// Whether a node needs back-quotes to be read back as one node: IoTDB prints a node plain when its
/// lexer reads it as one identifier (letters, digits, `_`, `:`, `@`, `#`, `$`, `{`, `}`, CJK) that is
/// not a number (`12`, `0e38`).
pub fn needs_quotes(node: &str) -> bool {
    let identifier = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | ':' | '@' | '#' | '$' | '{' | '}' | '\u{2E80}'..='\u{9FFF}'
            )
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = digits(node)
        || node
            .split_once(['e', 'E'])
            .is_some_and(|(mantissa, exponent)| digits(mantissa) && digits(exponent));
    node.is_empty() || !node.chars().all(identifier) || number
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

/// Parses a path or pattern string of the session API (`root.sg.*.s1`, `root.sg.d*`, ``root.`a.b` ``)
/// into nodes; `None` when it is not a legal IoTDB path.
pub fn parse_pattern(text: &str) -> Option<Vec<PathNode>> {
    duet_parser::parse_path(text.trim()).ok().map(|p| p.0)
}

/// The nodes of a concrete path string of the session API (a device or series path), or why it is not
/// a legal path: IoTDB's rules, no wildcards.
pub fn parse_concrete(text: &str) -> Result<Vec<String>, String> {
    let path = duet_parser::parse_path(text).map_err(|e| e.message)?;
    path.0
        .into_iter()
        .map(|node| match node {
            PathNode::Name(n) => Ok(n),
            _ => Err("wildcards are not allowed here".to_string()),
        })
        .collect()
}

/// Whether the glob `pattern` (each `*` any run of characters) matches all of `text`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and the text position it has absorbed up to, to retry from on a mismatch.
    let mut retry: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            retry = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, absorbed)) = retry {
            pi = star + 1;
            ti = absorbed + 1;
            retry = Some((star, absorbed + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// Whether one pattern node matches one path node (`**` as one of the nodes it takes).
pub fn node_matches(pattern: &PathNode, node: &str) -> bool {
    match pattern {
        PathNode::Name(n) => n == node,
        PathNode::One | PathNode::Many => true,
        PathNode::Glob(g) => glob_matches(g, node),
    }
}

/// A pattern as a small automaton over path nodes: state `i` means the nodes read so far match the
/// pattern's first `i` nodes. Matching a path costs nodes × pattern length, whatever the `**`s (the
/// former recursive matcher was exponential in them).
#[derive(Debug, Clone)]
pub struct Matcher<'a> {
    pattern: &'a [PathNode],
}

/// The states a [`Matcher`] is in after some nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct States(Vec<bool>);

impl<'a> Matcher<'a> {
    pub fn new(pattern: &'a [PathNode]) -> Matcher<'a> {
        Matcher { pattern }
    }

    /// Before any node.
    pub fn start(&self) -> States {
        let mut states = vec![false; self.pattern.len() + 1];
        states[0] = true;
        States(states)
    }

    /// After one more node.
    pub fn step(&self, states: &States, node: &str) -> States {
        let mut next = vec![false; self.pattern.len() + 1];
        for (i, live) in states.0.iter().enumerate() {
            if !live {
                continue;
            }
            if let Some(p) = self.pattern.get(i) {
                if node_matches(p, node) {
                    next[i + 1] = true;
                }
            }
            // Having taken at least one node, a `**` may take this one too.
            if i > 0 && matches!(self.pattern[i - 1], PathNode::Many) {
                next[i] = true;
            }
        }
        States(next)
    }

    /// After all of `nodes`.
    pub fn run<S: AsRef<str>>(&self, nodes: &[S]) -> States {
        nodes.iter().fold(self.start(), |states, node| {
            self.step(&states, node.as_ref())
        })
    }

    /// Whether the nodes read match the whole pattern.
    pub fn accepts(&self, states: &States) -> bool {
        states.0[self.pattern.len()]
    }

    /// Whether the nodes read, or some longer path starting with them, can still match.
    pub fn alive(&self, states: &States) -> bool {
        states.0.iter().any(|s| *s)
    }
}

/// Whether `pattern` matches every node of `path`.
pub fn matches<S: AsRef<str>>(pattern: &[PathNode], path: &[S]) -> bool {
    let matcher = Matcher::new(pattern);
    matcher.accepts(&matcher.run(path))
}

/// Whether `pattern` matches every path strictly below `path` (it ends in `**` reached by `path`'s
/// nodes): a pipe with such a pattern covers the whole of a database at `path`.
pub fn matches_everything_below<S: AsRef<str>>(pattern: &[PathNode], path: &[S]) -> bool {
    let Some(PathNode::Many) = pattern.last() else {
        return false;
    };
    let matcher = Matcher::new(pattern);
    let states = matcher.run(path);
    // Either `**` has taken a node already (and takes any more), or it is the next node to match.
    states.0[pattern.len()] || states.0[pattern.len() - 1]
}

/// Whether `pattern` matches `path` or some path below it (used for `SHOW DEVICES root.sg` style
/// prefixes and to find databases a pattern touches).
pub fn matches_prefix_of<S: AsRef<str>>(pattern: &[PathNode], path: &[S]) -> bool {
    let matcher = Matcher::new(pattern);
    matcher.alive(&matcher.run(path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<PathNode> {
        parse_pattern(s).unwrap()
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
        assert!(matches(&pat("root.**.**"), &p));
        assert!(!matches(&pat("root.**.**.**.**.**"), &p));
        assert!(matches(&pat("root.**.d1.**"), &p));
    }

    #[test]
    fn wildcards_inside_a_node_stay_in_that_node() {
        let p = split("root.sg.device1.temperature");
        assert!(matches(&pat("root.sg.d*.temperature"), &p));
        assert!(matches(&pat("root.sg.*1.t*"), &p));
        assert!(matches(&pat("root.sg.*vic*.*e"), &p));
        assert!(matches(&pat("root.**.t*"), &p));
        assert!(matches(&pat("root.**.*e*"), &p));
        assert!(!matches(&pat("root.sg.x*.temperature"), &p));
        // `*` inside a node never crosses a dot.
        assert!(!matches(&pat("root.s*"), &p));
        assert!(!matches(&pat("root.sg.d*"), &p));
        assert!(matches_prefix_of(
            &pat("root.sg.d*.t*"),
            &split("root.sg.device1")
        ));
        assert!(!matches_prefix_of(
            &pat("root.sg.d*.t*"),
            &split("root.sg.x1")
        ));
        // Back-quoted nodes match by their content, dots included.
        assert!(matches(
            &pat("root.sg.`d-1`.`s.1`"),
            &["root", "sg", "d-1", "s.1"]
        ));
        assert!(matches(
            &pat("root.sg.`d-`*.*"),
            &["root", "sg", "d-1", "s.1"]
        ));
    }

    #[test]
    fn globs_match_like_iotdb() {
        for (glob, text, expected) in [
            ("d*", "d", true),
            ("d*", "d12", true),
            ("*1", "d1", true),
            ("*1", "d12", false),
            ("*e*", "temperature", true),
            ("*x*", "temperature", false),
            ("**t", "st", true),
            ("a*a", "aaa", true),
            ("a*a", "a", false),
        ] {
            assert_eq!(glob_matches(glob, text), expected, "{glob} {text}");
        }
    }

    #[test]
    fn many_double_stars_stay_cheap() {
        // The former recursive matcher took exponential time here; the automaton takes 40 × 12 steps.
        let pattern = pat("root.**.**.**.**.**.**.**.**.**.**.x");
        let path: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
        let start = std::time::Instant::now();
        assert!(!matches(&pattern, &path));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn nodes_print_quoted_where_iotdb_quotes_them() {
        assert_eq!(
            join(&["root", "sg", "12", "0e38", "1a", "a:b", "温度", "d-1", "s.1"]),
            "root.sg.`12`.`0e38`.1a.a:b.温度.`d-1`.`s.1`"
        );
        assert_eq!(
            parse_concrete("root.sg.`d-1`.s1"),
            Ok(vec!["root".into(), "sg".into(), "d-1".into(), "s1".into()])
        );
        assert!(parse_concrete("root.sg.d-1").is_err());
        assert!(parse_concrete("root.sg.*").is_err());
        assert!(parse_concrete("root..d").is_err());
    }
}
