//! Scanners over raw source text for the IoTDB lexemes that sqlparser's tokenizer splits or merges wrongly:
//! paths (`root.sg.12.s1`, `root.**`, ``root.sg.`d.1` ``), datetimes (`2017-11-01T00:00:00.000+08:00`) and
//! durations (`1h30m`). Each returns how many bytes of the text it matched.

use crate::data::PathNode;

/// A character of a plain path node, as IoTDB's lexer reads an identifier: ASCII letters and digits, `_`,
/// `:`, `@`, `#`, `$`, `{`, `}`, and the CJK range U+2E80..U+9FFF.
pub(crate) fn is_node_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | ':' | '@' | '#' | '$' | '{' | '}' | '\u{2E80}'..='\u{9FFF}'
        )
}

/// Whether a plain word reads as a number in IoTDB's lexer (`12`, `0e38`), which a node may not be
/// unless back-quoted (digits alone are fine as the fixed part of a wildcard node such as `*12`).
pub(crate) fn reads_as_number(word: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(word) {
        return true;
    }
    match word.find(['e', 'E']) {
        Some(at) => {
            let (mantissa, exponent) = (&word[..at], &word[at + 1..]);
            digits(mantissa) && digits(exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
        }
        None => false,
    }
}

/// Why a path could not be scanned: the byte offset of the offending node and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathScanError {
    pub(crate) offset: usize,
    pub(crate) message: &'static str,
}

const NODE_EXPECTED: &str =
    "a path node (a name, a `quoted name`, * or **, or a name with * inside such as d*)";
const NUMERIC_NODE: &str =
    "a path node that is not a number (a node of digits such as 12 must be back-quoted: `12`)";

/// Scans a path (`node { "." node }`) at the start of `text`: the nodes and the bytes consumed, or where a
/// node was expected but none (or an illegal one) was found.
///
/// A node is, as in IoTDB's `nodeName`: `*`, `**`, a name, or a wildcard node `*x`, `*x*` or `x*` (each `*`
/// also `**`) whose fixed part `x` is a name or digits. A `*` right after a name belongs to the node only
/// where the node ends there (at `.` or a character that cannot continue a path), so `s1*2` is still
/// `s1` times 2.
pub(crate) fn path(text: &str) -> Result<(Vec<PathNode>, usize), PathScanError> {
    let mut nodes = Vec::new();
    let mut at = 0;
    loop {
        let (node, len) = node(&text[at..]).map_err(|message| PathScanError {
            offset: at,
            message,
        })?;
        nodes.push(node);
        at += len;
        if text[at..].starts_with('.') {
            at += 1;
        } else {
            return Ok((nodes, at));
        }
    }
}

/// A run of one or two `*` at the start of `text` (its length), or `None`; three in a row are an error.
fn stars(text: &str) -> Result<Option<usize>, &'static str> {
    let count = text.bytes().take_while(|b| *b == b'*').count();
    match count {
        0 => Ok(None),
        1 | 2 => Ok(Some(count)),
        _ => Err(NODE_EXPECTED),
    }
}

/// Whether a path node ends where `rest` starts (so a `*` before it closes the node).
fn ends_node(rest: &str) -> bool {
    !rest.starts_with(|c: char| is_node_char(c) || c == '`' || c == '*')
}

/// A name (plain or back-quoted) at the start of `text`: the name, its length, and whether it was plain.
fn name(text: &str) -> Result<Option<(String, usize, bool)>, &'static str> {
    match text.chars().next() {
        Some('`') => {
            // A doubled back-quote stands for one; the closing one is the first single one.
            let mut name = String::new();
            let mut at = 1;
            loop {
                let close = text[at..].find('`').ok_or(NODE_EXPECTED)?;
                name.push_str(&text[at..at + close]);
                at += close + 1;
                if text[at..].starts_with('`') {
                    name.push('`');
                    at += 1;
                } else {
                    break;
                }
            }
            if name.is_empty() {
                return Err(NODE_EXPECTED);
            }
            Ok(Some((name, at, false)))
        }
        Some(c) if is_node_char(c) => {
            let end = text.find(|c| !is_node_char(c)).unwrap_or(text.len());
            Ok(Some((text[..end].to_owned(), end, true)))
        }
        _ => Ok(None),
    }
}

/// One path node at the start of `text`.
fn node(text: &str) -> Result<(PathNode, usize), &'static str> {
    let leading = stars(text)?;
    let after_stars = leading.unwrap_or(0);
    let fixed = name(&text[after_stars..])?;
    match (leading, fixed) {
        (None, None) => Err(NODE_EXPECTED),
        (Some(1), None) => Ok((PathNode::One, 1)),
        (Some(_), None) => Ok((PathNode::Many, 2)),
        (None, Some((name, len, plain))) => {
            // `x*`: the star belongs to the node only where the node ends after it.
            if let Ok(Some(n)) = stars(&text[len..]) {
                if ends_node(&text[len + n..]) {
                    return glob(&text[..len], &name, len + n, "", n);
                }
            }
            if plain && reads_as_number(&name) {
                return Err(NUMERIC_NODE);
            }
            Ok((PathNode::Name(name), len))
        }
        (Some(lead), Some((name, len, _))) => {
            let at = lead + len;
            let trailing = match stars(&text[at..])? {
                Some(n) if ends_node(&text[at + n..]) => n,
                Some(_) => return Err(NODE_EXPECTED),
                None => 0,
            };
            if !ends_node(&text[at + trailing..]) {
                return Err(NODE_EXPECTED);
            }
            glob(
                &text[lead..at],
                &name,
                at + trailing,
                &"*".repeat(lead),
                trailing,
            )
        }
    }
}

/// A wildcard node: `leading` stars, the fixed part `name` (written as `written`), `trailing` stars.
fn glob(
    written: &str,
    name: &str,
    len: usize,
    leading: &str,
    trailing: usize,
) -> Result<(PathNode, usize), &'static str> {
    // The fixed part is taken literally; a `*` inside a quoted one could not be told from a wildcard.
    if name.contains('*') {
        return Err(NODE_EXPECTED);
    }
    let plain = !written.starts_with('`');
    if plain && reads_as_number(name) && !name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NUMERIC_NODE);
    }
    let mut pattern = String::with_capacity(name.len() + 4);
    pattern.push_str(leading);
    pattern.push_str(name);
    pattern.push_str(&"*".repeat(trailing));
    Ok((PathNode::Glob(pattern), len))
}

/// The length of `count` ASCII digits (between `min` and `max`) at byte `at`, as the offset after them.
fn digits(bytes: &[u8], at: usize, min: usize, max: usize) -> Option<usize> {
    let count = bytes
        .get(at..)?
        .iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    (count >= min).then_some(at + count)
}

fn byte_is(bytes: &[u8], at: usize, expected: &[u8]) -> bool {
    bytes.get(at).is_some_and(|b| expected.contains(b))
}

/// A datetime at the start of `text`: `yyyy-MM-dd` (or with `/` or `.`), optionally followed by `T` or one space and
/// `HH:mm[:ss[.fraction]]`, optionally followed by `Z` or a zone offset `±HH:mm` / `±HHmm`. Returns the bytes
/// matched; `None` when `text` does not start with a datetime or one runs straight into a name character.
pub(crate) fn datetime(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut at = digits(b, 0, 4, 4)?;
    let separator = *b.get(at)?;
    if separator != b'-' && separator != b'/' && separator != b'.' {
        return None;
    }
    at = digits(b, at + 1, 1, 2)?;
    if b.get(at) != Some(&separator) {
        return None;
    }
    at = digits(b, at + 1, 1, 2)?;
    if byte_is(b, at, b"Tt ") {
        if let Some(end) = time_of_day(b, at + 1) {
            at = end;
        }
    }
    if text[at..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some(at)
}

/// `HH:mm[:ss[.fraction]][zone]` at byte `at`. A sign not followed by an offset ends the time (it starts
/// an operator: `…T00:00:00+1h`).
fn time_of_day(b: &[u8], at: usize) -> Option<usize> {
    let mut at = digits(b, at, 1, 2)?;
    if !byte_is(b, at, b":") {
        return None;
    }
    at = digits(b, at + 1, 2, 2)?;
    if byte_is(b, at, b":") {
        at = digits(b, at + 1, 2, 2)?;
        if byte_is(b, at, b".") {
            at = digits(b, at + 1, 1, 9)?;
        }
    }
    if byte_is(b, at, b"Zz") {
        return Some(at + 1);
    }
    if byte_is(b, at, b"+-") {
        let offset = digits(b, at + 1, 2, 2).and_then(|hours| {
            if byte_is(b, hours, b":") {
                digits(b, hours + 1, 2, 2)
            } else {
                digits(b, hours, 2, 2)
            }
        });
        return Some(offset.unwrap_or(at));
    }
    Some(at)
}

/// Whether all of `text` is one datetime (for quoted datetimes).
pub(crate) fn is_datetime(text: &str) -> bool {
    datetime(text) == Some(text.len())
}

/// Whether `text` is an IoTDB duration: one or more `digits unit` (units `y`, `mo`, `w`, `d`, `h`, `m`, `s`,
/// `ms`, `us`, `ns`, any case), or a bare integer (a number of time units).
pub(crate) fn is_duration(text: &str) -> bool {
    const UNITS: [&str; 10] = ["mo", "ms", "us", "ns", "y", "w", "d", "h", "m", "s"];
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let count = rest.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return false;
        }
        rest = &rest[count..];
        let Some(unit) = UNITS.iter().find(|unit| {
            rest.get(..unit.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(unit))
        }) else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    !text.is_empty()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn name(s: &str) -> PathNode {
        PathNode::Name(s.into())
    }

    #[test]
    fn paths() {
        let err = |offset, message| Err(PathScanError { offset, message });
        assert_eq!(
            path("root.sg.d12.s1 x"),
            Ok((vec![name("root"), name("sg"), name("d12"), name("s1")], 14))
        );
        assert_eq!(
            path("root.`a.``b`.*.**,"),
            Ok((
                vec![name("root"), name("a.`b"), PathNode::One, PathNode::Many],
                17
            ))
        );
        assert_eq!(path("s1*2"), Ok((vec![name("s1")], 2)));
        assert_eq!(path("root."), err(5, NODE_EXPECTED));
        assert_eq!(path("root.`open"), err(5, NODE_EXPECTED));
        assert_eq!(path("root.``"), err(5, NODE_EXPECTED));
        assert_eq!(path("root.***"), err(5, NODE_EXPECTED));
        assert_eq!(path("root.sg.12.s1"), err(8, NUMERIC_NODE));
        assert_eq!(path("root.sg.0e38"), err(8, NUMERIC_NODE));
        assert_eq!(
            path("root.sg.`12`.1a"),
            Ok((vec![name("root"), name("sg"), name("12"), name("1a")], 15))
        );
        assert_eq!(
            path("root.a:b@c#{}$.温度"),
            Ok((vec![name("root"), name("a:b@c#{}$"), name("温度")], 21))
        );
    }

    #[test]
    fn wildcards_inside_nodes() {
        let err = |offset, message| Err(PathScanError { offset, message });
        let glob = |s: &str| PathNode::Glob(s.into());
        assert_eq!(
            path("root.sg.d*.s1"),
            Ok((vec![name("root"), name("sg"), glob("d*"), name("s1")], 13))
        );
        assert_eq!(
            path("root.**.*temp*,"),
            Ok((vec![name("root"), PathNode::Many, glob("*temp*")], 14))
        );
        assert_eq!(path("root.*12"), Ok((vec![name("root"), glob("*12")], 8)));
        assert_eq!(
            path("root.`d-1`*"),
            Ok((vec![name("root"), glob("d-1*")], 11))
        );
        assert_eq!(path("s* from"), Ok((vec![glob("s*")], 2)));
        // `a*b` is not a node: a wildcard node has one fixed part.
        assert_eq!(path("root.a*b"), Ok((vec![name("root"), name("a")], 6)));
        assert_eq!(path("root.*a*b"), err(5, NODE_EXPECTED));
        assert_eq!(path("root.*`a*`"), err(5, NODE_EXPECTED));
    }

    #[test]
    fn datetimes() {
        for text in [
            "2017-11-01",
            "2017/11/01",
            "2017-11-01T00:00",
            "2017-11-01T00:00:00.000+08:00",
            "2017-11-01 00:00:00",
            "2017-1-1T1:00:00Z",
            "2017-11-01T00:00:00-0530",
        ] {
            assert!(is_datetime(text), "{text}");
        }
        assert!(is_datetime("2017.11.01 00:00:00"));
        assert_eq!(datetime("2017-11-01T00:00:00+1h"), Some(19));
        assert_eq!(datetime("2017-11-01T00:00:00 - 1d"), Some(19));
        assert_eq!(datetime("2017-11-01 and"), Some(10));
        assert_eq!(datetime("2017-11-01 00:00:00, 1"), Some(19));
        for text in ["17-11-01", "2017-11/01", "2017-11-01x", "2017", "1-1-1", ""] {
            assert_eq!(datetime(text), None, "{text}");
        }
    }

    #[test]
    fn durations() {
        for text in [
            "1ms", "10s", "1h30m", "1MO", "2y", "100", "1w1d", "5us", "7ns",
        ] {
            assert!(is_duration(text), "{text}");
        }
        for text in ["", "h", "1x", "1.5h", "1h30", "-1s"] {
            assert!(!is_duration(text), "{text}");
        }
    }
}
