//! The meaning of IoTDB's time lexemes, shared by the parser (which rejects a bad one with its position)
//! and the engine (which resolves them in the session's time zone): datetime literals as IoTDB's
//! `DateTimeUtils` reads them, and durations as lists of `value unit` parts.

use std::fmt;

/// A datetime literal: the wall-clock time as written and, when the literal carries one (`Z`, `+08:00`),
/// its offset. A literal without an offset means that wall-clock time in the session's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeLiteral {
    pub civil: jiff::civil::DateTime,
    /// Seconds east of UTC.
    pub offset_seconds: Option<i32>,
}

/// Reads a datetime: `yyyy-MM-dd`, `yyyy/MM/dd` or `yyyy.MM.dd`, optionally followed by `T` or one space
/// and `HH:mm[:ss[.fraction]]` (up to nine fraction digits), optionally followed by `Z` or an offset
/// `±HH:mm` / `±HHmm`. A date alone is midnight. The error says what is wrong (a month 13, February 30…).
pub fn parse_datetime(text: &str) -> Result<DateTimeLiteral, String> {
    let invalid = |why: &str| format!("invalid datetime '{text}': {why}");
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = cursor
        .number(4, 4)
        .ok_or_else(|| invalid("expected a four-digit year"))?;
    let separator = cursor
        .next_if(b"-/.")
        .ok_or_else(|| invalid("expected '-', '/' or '.' after the year"))?;
    let month = cursor
        .number(1, 2)
        .ok_or_else(|| invalid("expected a month"))?;
    cursor
        .next_if(&[separator])
        .ok_or_else(|| invalid("expected the same separator after the month"))?;
    let day = cursor
        .number(1, 2)
        .ok_or_else(|| invalid("expected a day"))?;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut offset_seconds = None;
    if cursor.next_if(b"Tt ").is_some() {
        hour = cursor
            .number(1, 2)
            .ok_or_else(|| invalid("expected an hour"))?;
        cursor
            .next_if(b":")
            .ok_or_else(|| invalid("expected ':' after the hour"))?;
        minute = cursor
            .number(2, 2)
            .ok_or_else(|| invalid("expected two-digit minutes"))?;
        if cursor.next_if(b":").is_some() {
            second = cursor
                .number(2, 2)
                .ok_or_else(|| invalid("expected two-digit seconds"))?;
            if cursor.next_if(b".").is_some() {
                let start = cursor.at;
                let fraction = cursor
                    .number(1, 9)
                    .ok_or_else(|| invalid("expected digits after '.'"))?;
                let digits = u32::try_from(cursor.at - start).unwrap_or(9);
                nanos = fraction * 10_i64.pow(9 - digits);
            }
        }
        if cursor.next_if(b"Zz").is_some() {
            offset_seconds = Some(0);
        } else if let Some(sign) = cursor.next_if(b"+-") {
            let hours = cursor
                .number(2, 2)
                .ok_or_else(|| invalid("expected a two-digit offset hour"))?;
            cursor.next_if(b":");
            let minutes = cursor
                .number(2, 2)
                .ok_or_else(|| invalid("expected two-digit offset minutes"))?;
            if hours > 18 || minutes > 59 || (hours == 18 && minutes > 0) {
                return Err(invalid("the offset must lie within ±18:00"));
            }
            let seconds = i32::try_from(hours * 3600 + minutes * 60).unwrap_or(0);
            offset_seconds = Some(if sign == b'-' { -seconds } else { seconds });
        }
    }
    if cursor.at != text.len() {
        return Err(invalid("unexpected text after the datetime"));
    }
    let field = |value: i64| i8::try_from(value).unwrap_or(i8::MAX);
    let civil = jiff::civil::DateTime::new(
        i16::try_from(year).unwrap_or(i16::MAX),
        field(month),
        field(day),
        field(hour),
        field(minute),
        field(second),
        i32::try_from(nanos).unwrap_or(0),
    )
    .map_err(|e| invalid(&e.to_string()))?;
    Ok(DateTimeLiteral {
        civil,
        offset_seconds,
    })
}

/// A position in the bytes of a literal.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Between `min` and `max` ASCII digits, as a number.
    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let digits: Vec<u8> = self
            .bytes
            .get(self.at..)?
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        if digits.len() < min {
            return None;
        }
        self.at += digits.len();
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// The next byte, consumed, if it is one of `expected`.
    fn next_if(&mut self, expected: &[u8]) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        if expected.contains(&byte) {
            self.at += 1;
            Some(byte)
        } else {
            None
        }
    }
}

/// A unit of an IoTDB duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// `y`: 12 calendar months in GROUP BY, 365 days after a datetime (as IoTDB computes them).
    Year,
    /// `mo`: a calendar month in the session's zone.
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Nanosecond,
    /// A bare integer: units of the instance's timestamp precision.
    Precision,
}

impl DurationUnit {
    /// The unit as written in SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationUnit::Year => "y",
            DurationUnit::Month => "mo",
            DurationUnit::Week => "w",
            DurationUnit::Day => "d",
            DurationUnit::Hour => "h",
            DurationUnit::Minute => "m",
            DurationUnit::Second => "s",
            DurationUnit::Millisecond => "ms",
            DurationUnit::Microsecond => "us",
            DurationUnit::Nanosecond => "ns",
            DurationUnit::Precision => "",
        }
    }

    /// Whether the unit's length depends on the calendar.
    pub fn is_calendar(self) -> bool {
        matches!(self, DurationUnit::Year | DurationUnit::Month)
    }
}

/// One `value unit` of a duration such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationPart {
    pub value: i64,
    pub unit: DurationUnit,
}

impl fmt::Display for DurationPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.as_str())
    }
}

/// Reads a duration: one or more `digits unit` (`y`, `mo`, `w`, `d`, `h`, `m`, `s`, `ms`, `us`, `ns`,
/// any case), or a bare integer.
pub fn parse_duration(text: &str) -> Result<Vec<DurationPart>, String> {
    const UNITS: [(&str, DurationUnit); 10] = [
        ("mo", DurationUnit::Month),
        ("ms", DurationUnit::Millisecond),
        ("us", DurationUnit::Microsecond),
        ("ns", DurationUnit::Nanosecond),
        ("y", DurationUnit::Year),
        ("w", DurationUnit::Week),
        ("d", DurationUnit::Day),
        ("h", DurationUnit::Hour),
        ("m", DurationUnit::Minute),
        ("s", DurationUnit::Second),
    ];
    let invalid = || format!("invalid duration '{text}'");
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let count = rest.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return Err(invalid());
        }
        let value = rest[..count]
            .parse::<i64>()
            .map_err(|_| format!("duration '{text}' is too large"))?;
        rest = &rest[count..];
        if rest.is_empty() && parts.is_empty() {
            parts.push(DurationPart {
                value,
                unit: DurationUnit::Precision,
            });
            break;
        }
        let (name, unit) = UNITS
            .iter()
            .find(|(name, _)| {
                rest.get(..name.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(name))
            })
            .ok_or_else(invalid)?;
        rest = &rest[name.len()..];
        parts.push(DurationPart { value, unit: *unit });
    }
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn datetimes_in_every_accepted_form() {
        let at = |h, m, s, ns| date(2023, 11, 5).at(h, m, s, ns);
        for (text, civil, offset) in [
            ("2023-11-05", at(0, 0, 0, 0), None),
            ("2023/11/05", at(0, 0, 0, 0), None),
            ("2023.11.05", at(0, 0, 0, 0), None),
            ("2023-11-5T06:13", at(6, 13, 0, 0), None),
            ("2023-11-05 06:13:25", at(6, 13, 25, 0), None),
            ("2023-11-05t6:13:25.5", at(6, 13, 25, 500_000_000), None),
            ("2023-11-05T06:13:25.123", at(6, 13, 25, 123_000_000), None),
            (
                "2023-11-05T06:13:25.123456789",
                at(6, 13, 25, 123_456_789),
                None,
            ),
            ("2023-11-05T06:13:25Z", at(6, 13, 25, 0), Some(0)),
            (
                "2023-11-05T06:13:25+08:00",
                at(6, 13, 25, 0),
                Some(8 * 3600),
            ),
            ("2023-11-05T06:13:25-0530", at(6, 13, 25, 0), Some(-19_800)),
        ] {
            assert_eq!(
                parse_datetime(text),
                Ok(DateTimeLiteral {
                    civil,
                    offset_seconds: offset
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn impossible_datetimes_are_rejected_with_the_reason() {
        for text in [
            "2023-13-01",
            "2023-02-29",
            "2024-02-30",
            "2023-11-05T24:00:00",
            "2023-11-05T06:60",
            "2023-11-05T06:13:25+19:00",
            "2023-11/05",
            "2023-11-05T06:13:25 x",
        ] {
            let error = parse_datetime(text).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid datetime '{text}'")),
                "{error}"
            );
        }
        assert!(parse_datetime("2024-02-29").is_ok());
    }

    #[test]
    fn durations_split_into_parts() {
        let part = |value, unit| DurationPart { value, unit };
        assert_eq!(
            parse_duration("1d2H30m"),
            Ok(vec![
                part(1, DurationUnit::Day),
                part(2, DurationUnit::Hour),
                part(30, DurationUnit::Minute)
            ])
        );
        assert_eq!(
            parse_duration("1y1MO5ms3us2ns1w1s"),
            Ok(vec![
                part(1, DurationUnit::Year),
                part(1, DurationUnit::Month),
                part(5, DurationUnit::Millisecond),
                part(3, DurationUnit::Microsecond),
                part(2, DurationUnit::Nanosecond),
                part(1, DurationUnit::Week),
                part(1, DurationUnit::Second),
            ])
        );
        assert_eq!(
            parse_duration("100"),
            Ok(vec![part(100, DurationUnit::Precision)])
        );
        for bad in ["", "d", "1x", "1d2", "1dd", "-1d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err("duration '99999999999999999999d' is too large".to_string())
        );
    }
}
