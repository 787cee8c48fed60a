//! Time as IoTDB has it: a session's zone (read as Java's `ZoneId.of` reads an id), datetime literals
//! resolved in that zone, durations after a datetime or `now()` (IoTDB's date expressions), and the
//! calendar durations of `GROUP BY` (months and years stepped in the session's zone).
//!
//! Wall-clock times that fall in a daylight-saving gap or overlap resolve as Java's `ZonedDateTime` does:
//! a time in a gap moves forward by the gap's length, a time in an overlap takes the earlier offset.
//! Calendar arithmetic is jiff's; the zone rules are the IANA database bundled with it.

use duet_parser::time::{DateTimeLiteral, DurationPart, DurationUnit};
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};

const MS_PER_DAY: i64 = 86_400_000;

/// A session's time zone: the id as IoTDB reports it (`Asia/Shanghai`, `+08:00`, `GMT+08:00`) and its
/// rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    id: String,
    tz: TimeZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            id: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }

    /// Reads a zone id as Java's `ZoneId.of` does: `Z`; an offset `+h`, `+hh`, `+hh:mm`, `+hhmm`,
    /// `+hh:mm:ss`, `+hhmmss` (or `-`, within ±18:00); `UTC`, `GMT` or `UT`, alone or followed by an offset;
    /// or an IANA region such as `Asia/Shanghai`. The error says why the id is not a zone.
    pub fn parse(id: &str) -> Result<Zone, String> {
        let unknown = || format!("unknown time zone '{id}'");
        if id == "Z" {
            return Ok(Zone::fixed(String::new(), 0));
        }
        if id.starts_with(['+', '-']) {
            let seconds = offset_seconds(id).ok_or_else(unknown)?;
            return Ok(Zone::fixed(String::new(), seconds));
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if id == prefix {
                return Ok(Zone {
                    id: prefix.to_string(),
                    tz: TimeZone::UTC,
                });
            }
            if let Some(offset) = id.strip_prefix(prefix) {
                if offset.starts_with(['+', '-']) {
                    let seconds = offset_seconds(offset).ok_or_else(unknown)?;
                    return Ok(Zone::fixed(prefix.to_string(), seconds));
                }
            }
        }
        // Java's region id syntax; the database decides whether the region exists.
        let plausible = id.starts_with(|c: char| c.is_ascii_alphabetic())
            && id.len() >= 2
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "~/._+-".contains(c));
        if !plausible {
            return Err(unknown());
        }
        let tz = TimeZone::get(id).map_err(|_| unknown())?;
        Ok(Zone {
            id: id.to_string(),
            tz,
        })
    }

    /// A fixed offset, named as Java names it: `Z` or `+08:00` (`GMT+08:00` with a prefix; the prefix
    /// alone for a zero offset).
    fn fixed(prefix: String, seconds: i32) -> Zone {
        let id = if seconds == 0 {
            if prefix.is_empty() {
                "Z".to_string()
            } else {
                prefix
            }
        } else {
            let sign = if seconds < 0 { '-' } else { '+' };
            let abs = seconds.unsigned_abs();
            let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
            let seconds_part = if s == 0 {
                String::new()
            } else {
                format!(":{s:02}")
            };
            format!("{prefix}{sign}{h:02}:{m:02}{seconds_part}")
        };
        let tz = Offset::from_seconds(seconds)
            .map(TimeZone::fixed)
            .unwrap_or(TimeZone::UTC);
        Zone { id, tz }
    }

    /// The id as IoTDB's `getTimeZone` reports it.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Java's `ZoneOffset.of` forms after the sign: `h`, `hh`, `hh:mm`, `hhmm`, `hh:mm:ss`, `hhmmss`.
fn offset_seconds(text: &str) -> Option<i32> {
    let negative = text.starts_with('-');
    let digits = text.get(1..)?;
    let number = |s: &str| -> Option<i32> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (h, m, s) = match digits.len() {
        1 if digits.bytes().all(|b| b.is_ascii_digit()) => (digits.parse().ok()?, 0, 0),
        2 => (number(digits)?, 0, 0),
        4 => (number(&digits[..2])?, number(&digits[2..])?, 0),
        5 if &digits[2..3] == ":" => (number(&digits[..2])?, number(&digits[3..])?, 0),
        6 => (
            number(&digits[..2])?,
            number(&digits[2..4])?,
            number(&digits[4..])?,
        ),
        8 if &digits[2..3] == ":" && &digits[5..6] == ":" => (
            number(&digits[..2])?,
            number(&digits[3..5])?,
            number(&digits[6..])?,
        ),
        _ => return None,
    };
    if h > 18 || m > 59 || s > 59 {
        return None;
    }
    let total = h * 3600 + m * 60 + s;
    if total > 18 * 3600 {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// Converts between the instance's timestamps and instants; `units_per_ms` is 1 (ms), 1000 (us) or
/// 1,000,000 (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Precision {
    pub(crate) units_per_ms: i64,
}

impl Precision {
    fn nanos_per_unit(self) -> i128 {
        1_000_000 / i128::from(self.units_per_ms.max(1))
    }

    /// An instant as a timestamp of the instance (sub-unit digits dropped toward the past).
    fn timestamp_of(self, instant: Timestamp) -> Result<i64, String> {
        let units = instant.as_nanosecond().div_euclid(self.nanos_per_unit());
        i64::try_from(units).map_err(|_| format!("{instant} is out of the timestamp range"))
    }

    fn instant_of(self, t: i64) -> Result<Timestamp, String> {
        Timestamp::from_nanosecond(i128::from(t) * self.nanos_per_unit())
            .map_err(|_| format!("time {t} is outside the years -9999 to 9999"))
    }

    /// A datetime literal: its own offset if it has one, else the session's zone.
    pub(crate) fn resolve(self, literal: &DateTimeLiteral, zone: &Zone) -> Result<i64, String> {
        let instant = match literal.offset_seconds {
            Some(seconds) => {
                Offset::from_seconds(seconds).and_then(|offset| offset.to_timestamp(literal.civil))
            }
            None => zone.tz.to_timestamp(literal.civil),
        }
        .map_err(|e| e.to_string())?;
        self.timestamp_of(instant)
    }

    /// `t` plus `months` calendar months in `zone`, as IoTDB's `TimeDuration.calcPositiveIntervalByMonth`:
    /// the wall-clock time moves by whole months (the day clamped to the month's last: Jan 31 + 1 month is
    /// Feb 28 or 29), then resolves in the zone.
    pub(crate) fn add_months(self, t: i64, months: i64, zone: &Zone) -> Result<i64, String> {
        let out_of_range = || format!("time {t} plus {months} months is out of range");
        let instant = self.instant_of(t)?;
        let local: DateTime = zone.tz.to_datetime(instant);
        let span = Span::new().try_months(months).map_err(|_| out_of_range())?;
        let moved = local.checked_add(span).map_err(|_| out_of_range())?;
        let resolved = zone.tz.to_timestamp(moved).map_err(|_| out_of_range())?;
        // The sub-millisecond part of `t` is kept as it was (it is not part of the calendar).
        let finer = t.rem_euclid(self.units_per_ms);
        self.timestamp_of(resolved)?
            .checked_add(finer)
            .ok_or_else(out_of_range)
    }

    /// A fixed-length duration part in the instance's units. `us` and `ns` coarser than the precision
    /// truncate, as IoTDB's `convertDurationStrToLong` does (1500us is 1 at ms precision); `None` on
    /// overflow.
    fn fixed_units(self, value: i64, unit: DurationUnit) -> Option<i64> {
        let value = i128::from(value);
        let per_ms = i128::from(self.units_per_ms);
        let units = match unit {
            DurationUnit::Year => value * 365 * i128::from(MS_PER_DAY) * per_ms,
            DurationUnit::Week => value * 7 * i128::from(MS_PER_DAY) * per_ms,
            DurationUnit::Day => value * i128::from(MS_PER_DAY) * per_ms,
            DurationUnit::Hour => value * 3_600_000 * per_ms,
            DurationUnit::Minute => value * 60_000 * per_ms,
            DurationUnit::Second => value * 1_000 * per_ms,
            DurationUnit::Millisecond => value * per_ms,
            DurationUnit::Microsecond => value * per_ms / 1_000,
            DurationUnit::Nanosecond => value * per_ms / 1_000_000,
            DurationUnit::Precision => value,
            // Calendar months have no fixed length; callers handle them first.
            DurationUnit::Month => return None,
        };
        i64::try_from(units).ok()
    }

    /// `t` plus (or minus) a duration, as IoTDB evaluates `datetime + duration` in a date expression
    /// (`DateTimeUtils.convertDurationStrToLong` with the time): each part's length is measured forward
    /// from `t` plus the parts before it — a month is the calendar month from there in the session's zone,
    /// a year is 365 days — and the total is added or subtracted. So `2024-03-31 - 1mo` is March 1
    /// (March 31 less the 30 days to April 30), as in IoTDB.
    pub(crate) fn shift(
        self,
        t: i64,
        subtract: bool,
        parts: &[DurationPart],
        zone: &Zone,
    ) -> Result<i64, String> {
        let too_large = || {
            let text: String = parts.iter().map(ToString::to_string).collect();
            format!("time {t} shifted by {text} is out of range")
        };
        let mut total: i64 = 0;
        for part in parts {
            let length = if part.unit == DurationUnit::Month {
                let from = t.checked_add(total).ok_or_else(too_large)?;
                self.add_months(from, part.value, zone)?
                    .checked_sub(from)
                    .ok_or_else(too_large)?
            } else {
                self.fixed_units(part.value, part.unit)
                    .ok_or_else(too_large)?
            };
            total = total.checked_add(length).ok_or_else(too_large)?;
        }
        if subtract {
            t.checked_sub(total)
        } else {
            t.checked_add(total)
        }
        .ok_or_else(too_large)
    }

    /// A GROUP BY interval or step: years become 12 months (IoTDB's `TimeDuration`), the rest fixed units.
    pub(crate) fn calendar_duration(self, text: &str) -> Result<CalendarDuration, String> {
        let parts = duet_parser::time::parse_duration(text)?;
        let too_large = || format!("duration {text} is too large");
        let mut duration = CalendarDuration {
            months: 0,
            fixed: 0,
        };
        for part in parts {
            match part.unit {
                DurationUnit::Year => {
                    let months = part.value.checked_mul(12).ok_or_else(too_large)?;
                    duration.months = duration.months.checked_add(months).ok_or_else(too_large)?;
                }
                DurationUnit::Month => {
                    duration.months = duration
                        .months
                        .checked_add(part.value)
                        .ok_or_else(too_large)?;
                }
                unit => {
                    let units = self.fixed_units(part.value, unit).ok_or_else(too_large)?;
                    duration.fixed = duration.fixed.checked_add(units).ok_or_else(too_large)?;
                }
            }
        }
        if duration.months == 0 && duration.fixed <= 0 {
            return Err(format!("illegal duration {text}: it must be positive"));
        }
        Ok(duration)
    }

    /// `start` plus `months` calendar months and `fixed` units (IoTDB's window arithmetic: months from the
    /// first window's start, never accumulated month by month, so Jan 31 + 2 months is Mar 31).
    pub(crate) fn calendar_add(
        self,
        start: i64,
        months: i128,
        fixed: i128,
        zone: &Zone,
    ) -> Result<i64, String> {
        let out_of_range = || "a GROUP BY window lies outside the timestamp range".to_string();
        let base = if months == 0 {
            start
        } else {
            let months = i64::try_from(months).map_err(|_| out_of_range())?;
            self.add_months(start, months, zone)?
        };
        i64::try_from(i128::from(base) + fixed).map_err(|_| out_of_range())
    }

    /// Whether `t` can take part in calendar arithmetic (years -9999 to 9999).
    pub(crate) fn in_calendar_range(self, t: i64) -> bool {
        self.instant_of(t).is_ok()
    }
}

/// A GROUP BY duration: calendar months and a fixed number of units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CalendarDuration {
    pub(crate) months: i64,
    pub(crate) fixed: i64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use duet_parser::time::{parse_datetime, parse_duration};

    const MS: Precision = Precision { units_per_ms: 1 };

    fn zone(id: &str) -> Zone {
        Zone::parse(id).unwrap()
    }

    /// Epoch milliseconds of a datetime with an explicit offset.
    fn ms(text: &str) -> i64 {
        MS.resolve(&parse_datetime(text).unwrap(), &Zone::utc())
            .unwrap()
    }

    fn local(text: &str, zone_id: &str) -> i64 {
        MS.resolve(&parse_datetime(text).unwrap(), &zone(zone_id))
            .unwrap()
    }

    #[test]
    fn zone_ids_as_java_reads_them() {
        for (id, reported) in [
            ("Asia/Shanghai", "Asia/Shanghai"),
            ("UTC", "UTC"),
            ("Etc/UTC", "Etc/UTC"),
            ("GMT+8", "GMT+08:00"),
            ("GMT+08:00", "GMT+08:00"),
            ("UTC-05:30", "UTC-05:30"),
            ("UT+0", "UT"),
            ("+08:00", "+08:00"),
            ("+8", "+08:00"),
            ("-0530", "-05:30"),
            ("+05:30:15", "+05:30:15"),
            ("+00:00", "Z"),
            ("Z", "Z"),
        ] {
            assert_eq!(zone(id).id(), reported, "{id}");
        }
        for bad in [
            "Mars/Olympus",
            "",
            "+19:00",
            "+8:00",
            "+08:60",
            "GMT+25",
            "8",
            "Asia/Shanghai ",
            "UTC+",
        ] {
            let error = Zone::parse(bad).unwrap_err();
            assert!(error.contains("unknown time zone"), "{bad}: {error}");
        }
    }

    #[test]
    fn literals_without_offset_take_the_session_zone() {
        let utc = ms("2023-11-15T06:13:25Z");
        assert_eq!(local("2023-11-15T06:13:25", "UTC"), utc);
        assert_eq!(
            local("2023-11-15T14:13:25", "Asia/Shanghai"),
            utc,
            "Shanghai is 8 hours ahead"
        );
        assert_eq!(local("2023-11-15 14:13:25", "+08:00"), utc);
        assert_eq!(local("2023-11-15T00:43:25", "-05:30"), utc);
        assert_eq!(local("2023-11-15T14:13:25", "GMT+08:00"), utc);
        assert_eq!(
            local("2023-11-15", "Asia/Shanghai"),
            ms("2023-11-14T16:00:00Z")
        );
        assert_eq!(
            local("2023-11-15T06:13:25.123", "UTC"),
            utc + 123,
            "milliseconds"
        );
        // An explicit offset or Z wins over the session's zone.
        assert_eq!(local("2023-11-15T06:13:25Z", "Asia/Shanghai"), utc);
        assert_eq!(local("2023-11-15T07:13:25+01:00", "Asia/Shanghai"), utc);
    }

    #[test]
    fn dst_gaps_move_forward_and_overlaps_take_the_earlier_offset() {
        // New York, 2024-03-10 02:30 does not exist (clocks jump 02:00 → 03:00): 03:30 EDT = 07:30Z.
        assert_eq!(
            local("2024-03-10T02:30:00", "America/New_York"),
            ms("2024-03-10T07:30:00Z")
        );
        // 2024-11-03 01:30 happens twice: the first, EDT (-04:00).
        assert_eq!(
            local("2024-11-03T01:30:00", "America/New_York"),
            ms("2024-11-03T05:30:00Z")
        );
    }

    #[test]
    fn precisions_scale_and_truncate() {
        let us = Precision {
            units_per_ms: 1_000,
        };
        let ns = Precision {
            units_per_ms: 1_000_000,
        };
        let literal = parse_datetime("1970-01-01T00:00:01.123456789Z").unwrap();
        assert_eq!(MS.resolve(&literal, &Zone::utc()), Ok(1_123));
        assert_eq!(us.resolve(&literal, &Zone::utc()), Ok(1_123_456));
        assert_eq!(ns.resolve(&literal, &Zone::utc()), Ok(1_123_456_789));
        let before = parse_datetime("1969-12-31T23:59:59.9995Z").unwrap();
        assert_eq!(MS.resolve(&before, &Zone::utc()), Ok(-1), "floors");
        let parts = parse_duration("1500us").unwrap();
        assert_eq!(MS.shift(0, false, &parts, &Zone::utc()), Ok(1));
        assert_eq!(us.shift(0, false, &parts, &Zone::utc()), Ok(1_500));
        assert_eq!(ns.shift(0, false, &parts, &Zone::utc()), Ok(1_500_000));
    }

    #[test]
    fn date_expression_shifts_as_iotdb() {
        let utc = Zone::utc();
        let shift = |t: i64, subtract, text: &str, zone: &Zone| {
            MS.shift(t, subtract, &parse_duration(text).unwrap(), zone)
        };
        let t = ms("2023-11-15T00:00:00Z");
        assert_eq!(shift(t, false, "1h", &utc), Ok(t + 3_600_000));
        assert_eq!(shift(t, true, "1d2h", &utc), Ok(t - 26 * 3_600_000));
        assert_eq!(shift(t, false, "1w", &utc), Ok(t + 7 * MS_PER_DAY));
        // A year after a datetime is 365 days, even across February 29.
        assert_eq!(
            shift(ms("2024-01-01T00:00:00Z"), false, "1y", &utc),
            Ok(ms("2024-12-31T00:00:00Z"))
        );
        // A month is the calendar month, the day clamped to the month's end.
        assert_eq!(
            shift(ms("2024-01-31T00:00:00Z"), false, "1mo", &utc),
            Ok(ms("2024-02-29T00:00:00Z"))
        );
        assert_eq!(
            shift(ms("2023-01-31T00:00:00Z"), false, "1mo", &utc),
            Ok(ms("2023-02-28T00:00:00Z"))
        );
        // Subtracting a month takes away the length of the month that follows (IoTDB's arithmetic).
        assert_eq!(
            shift(ms("2024-03-31T00:00:00Z"), true, "1mo", &utc),
            Ok(ms("2024-03-01T00:00:00Z"))
        );
        // Months follow the session's wall clock: Shanghai midnight stays midnight.
        let shanghai = zone("Asia/Shanghai");
        assert_eq!(
            shift(
                local("2024-01-31", "Asia/Shanghai"),
                false,
                "1mo",
                &shanghai
            ),
            Ok(local("2024-02-29", "Asia/Shanghai"))
        );
        // Across a DST change a month keeps the wall-clock time, so it is not a multiple of 24 hours.
        let new_york = zone("America/New_York");
        assert_eq!(
            shift(
                local("2024-03-01T12:00:00", "America/New_York"),
                false,
                "1mo",
                &new_york
            ),
            Ok(local("2024-04-01T12:00:00", "America/New_York"))
        );
        assert!(shift(i64::MAX - 10, false, "1d", &utc).is_err());
    }

    #[test]
    fn group_by_durations_split_months_from_fixed_units() {
        let d = |text| MS.calendar_duration(text);
        assert_eq!(
            d("1y2mo3d"),
            Ok(CalendarDuration {
                months: 14,
                fixed: 3 * MS_PER_DAY
            })
        );
        assert_eq!(
            d("90"),
            Ok(CalendarDuration {
                months: 0,
                fixed: 90
            })
        );
        assert!(d("0").unwrap_err().contains("illegal duration 0"));
        assert!(d("1us").unwrap_err().contains("illegal duration 1us"));
        assert!(d("9223372036854775807d")
            .unwrap_err()
            .contains("duration 9223372036854775807d is too large"));
    }

    #[test]
    fn windows_step_months_from_the_first_start() {
        let utc = Zone::utc();
        let jan31 = ms("2024-01-31T00:00:00Z");
        let add = |months| MS.calendar_add(jan31, months, 0, &utc).unwrap();
        assert_eq!(add(1), ms("2024-02-29T00:00:00Z"), "leap February");
        assert_eq!(add(2), ms("2024-03-31T00:00:00Z"), "not Mar 29");
        assert_eq!(add(13), ms("2025-02-28T00:00:00Z"));
        assert_eq!(
            MS.calendar_add(jan31, 1, i128::from(MS_PER_DAY), &utc),
            Ok(ms("2024-03-01T00:00:00Z"))
        );
        assert!(MS
            .calendar_add(ms("9999-12-01T00:00:00Z"), 1, 0, &utc)
            .is_err());
        assert!(!MS.in_calendar_range(i64::MAX));
        assert!(MS.in_calendar_range(0));
    }
}
