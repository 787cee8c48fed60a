//! Scanners over raw source text for the IoTDB lexemes that sqlparser's tokenizer splits or merges wrongly:
//! paths (`root.sg.12.s1`, `root.**`, ``root.sg.`d.1` ``), datetimes (`2017-11-01T00:00:00.000+08:00`) and
//! durations (`1h30m`). Each returns how many bytes of the text it matched.

use crate::data::PathNode;

/// A character of a plain path node (IoTDB allows letters, digits and `_`, in any order).
pub(crate) fn is_node_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Scans a path (`node { "." node }`) at the start of `text`: the nodes and the bytes consumed, or the byte
/// offset where a node was expected but none (or an unterminated back-quoted one) was found.
pub(crate) fn path(text: &str) -> Result<(Vec<PathNode>, usize), usize> {
    let mut nodes = Vec::new();
    let mut at = 0;
    loop {
        let (node, len) = node(&text[at..]).ok_or(at)?;
        nodes.push(node);
        at += len;
        if text[at..].starts_with('.') {
            at += 1;
        } else {
            return Ok((nodes, at));
        }
    }
}

/// One path node at the start of `text`.
fn node(text: &str) -> Option<(PathNode, usize)> {
    match text.chars().next()? {
        '`' => {
            // A doubled back-quote stands for one; the closing one is the first single one.
            let mut name = String::new();
            let mut at = 1;
            loop {
                let close = text[at..].find('`')?;
                name.push_str(&text[at..at + close]);
                at += close + 1;
                if text[at..].starts_with('`') {
                    name.push('`');
                    at += 1;
                } else {
                    break;
                }
            }
            (!name.is_empty()).then_some((PathNode::Name(name), at))
        }
        '*' if text.starts_with("***") => None,
        '*' if text.starts_with("**") => Some((PathNode::Many, 2)),
        '*' => Some((PathNode::One, 1)),
        c if is_node_char(c) => {
            let end = text.find(|c| !is_node_char(c)).unwrap_or(text.len());
            Some((PathNode::Name(text[..end].to_owned()), end))
        }
        _ => None,
    }
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
    if text[at..].starts_with(is_node_char) {
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
        assert_eq!(
            path("root.sg.12.s1 x"),
            Ok((vec![name("root"), name("sg"), name("12"), name("s1")], 13))
        );
        assert_eq!(
            path("root.`a.``b`.*.**,"),
            Ok((
                vec![name("root"), name("a.`b"), PathNode::One, PathNode::Many],
                17
            ))
        );
        assert_eq!(path("s1*2"), Ok((vec![name("s1")], 2)));
        assert_eq!(path("root."), Err(5));
        assert_eq!(path("root.`open"), Err(5));
        assert_eq!(path("root.``"), Err(5));
        assert_eq!(path("root.***"), Err(5));
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
