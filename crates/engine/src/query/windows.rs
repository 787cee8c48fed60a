//! The windows of an aggregate query: the whole range (no GROUP BY), fixed windows
//! `[start + k·step, start + k·step + interval)`, or calendar windows stepping whole months in the
//! session's zone. Window `k` is computed from its index in checked 128-bit arithmetic (no range
//! can wrap), never stored, and a query has at most [`MAX_WINDOWS`] of them.

use duet_parser::GroupByTime;

use crate::engine::SessionContext;
use crate::time::{CalendarDuration, Precision, Zone};
use crate::{Engine, EngineError, Result};

/// Most windows a `GROUP BY` may produce.
pub(crate) const MAX_WINDOWS: i128 = 10_000_000;

/// An `i128` that is known to lie within the `i64` range (bounds of a window inside `[start, end]`).
fn narrow(x: i128) -> i64 {
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

/// The windows of an aggregate query, computed from their index rather than stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Windows {
    /// No GROUP BY: one window over the whole range.
    Whole,
    Grouped {
        start: i64,
        end: i64,
        interval: i64,
        step: i64,
        left_open: bool,
        count: u64,
    },
    /// An interval or step with calendar months (`1mo`, `1y`): window `k` starts `k` steps after `start`
    /// and ends one interval later, both counted from `start` in the session's zone (IoTDB's
    /// `AggrWindowIterator`).
    Calendar {
        start: i64,
        end: i64,
        interval: CalendarDuration,
        step: CalendarDuration,
        left_open: bool,
        count: u64,
        zone: Zone,
        precision: Precision,
    },
}

/// How many windows start every `step` (positive) from `start` before `end`. In 128 bits neither the
/// span nor the rounding can overflow: the full i64 range over 1 is 2^64 - 1 windows, not 0.
fn fixed_count(start: i64, end: i64, step: i64) -> i128 {
    let span = i128::from(end) - i128::from(start);
    (span + i128::from(step) - 1) / i128::from(step)
}

impl Windows {
    /// Windows of a fixed `interval`, one starting every `step` from `start` before `end`; their
    /// count instead when it is over [`MAX_WINDOWS`].
    fn fixed(
        start: i64,
        end: i64,
        interval: i64,
        step: i64,
        left_open: bool,
    ) -> std::result::Result<Windows, i128> {
        let count = fixed_count(start, end, step);
        if count > MAX_WINDOWS {
            return Err(count);
        }
        Ok(Windows::Grouped {
            start,
            end,
            interval,
            step,
            left_open,
            count: u64::try_from(count).unwrap_or(0),
        })
    }

    /// Whether windows overlap (a sliding GROUP BY), where a row belongs to several windows.
    pub(crate) fn overlap(&self) -> bool {
        match self {
            Windows::Whole => false,
            Windows::Grouped { interval, step, .. } => step < interval,
            Windows::Calendar { interval, step, .. } => step != interval,
        }
    }

    pub(crate) fn new(
        engine: &Engine,
        ctx: &SessionContext,
        group_by: Option<&GroupByTime>,
    ) -> Result<Windows> {
        let Some(g) = group_by else {
            return Ok(Windows::Whole);
        };
        let start = engine.time_value(ctx, &g.start)?;
        let end = engine.time_value(ctx, &g.end)?;
        let precision = engine.precision();
        let interval = precision
            .calendar_duration(&g.interval.text)
            .map_err(EngineError::Semantic)?;
        let step = match &g.step {
            Some(s) => precision
                .calendar_duration(&s.text)
                .map_err(EngineError::Semantic)?,
            None => interval,
        };
        if start >= end {
            return Err(EngineError::Semantic(
                "Start time should be smaller than endTime in GroupBy".into(),
            ));
        }
        let too_many = |count: String| {
            EngineError::Semantic(format!(
                "GROUP BY ({}{start}, {end}{}, {}{}) would produce {count} windows; at most {MAX_WINDOWS} are allowed: use a larger interval or step, or a narrower time range",
                if g.left_open { "(" } else { "[" },
                if g.left_open { "]" } else { ")" },
                g.interval.text,
                g.step.as_ref().map(|s| format!(", {}", s.text)).unwrap_or_default(),
            ))
        };
        if interval.months == 0 && step.months == 0 {
            return Windows::fixed(start, end, interval.fixed, step.fixed, g.left_open)
                .map_err(|count| too_many(count.to_string()));
        }
        if !precision.in_calendar_range(start) || !precision.in_calendar_range(end) {
            return Err(EngineError::Semantic(format!(
                "GROUP BY with calendar units (mo, y) needs its time range within the years -9999 to 9999, but it is [{start}, {end})"
            )));
        }
        let zone = ctx.zone()?;
        let count = if step.months == 0 {
            fixed_count(start, end, step.fixed)
        } else {
            calendar_count(precision, &zone, start, end, step).map_err(|e| match e {
                CountError::TooMany(at_least) => too_many(format!("at least {at_least}")),
                CountError::Range(why) => EngineError::Semantic(why),
            })?
        };
        if count > MAX_WINDOWS {
            return Err(too_many(count.to_string()));
        }
        Ok(Windows::Calendar {
            start,
            end,
            interval,
            step,
            left_open: g.left_open,
            count: u64::try_from(count).unwrap_or(0),
            zone,
            precision,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Windows::Whole => 1,
            Windows::Grouped { count, .. } | Windows::Calendar { count, .. } => *count,
        }
    }

    /// Window `k` in ascending order: (label, lo, hi), bounds inclusive.
    pub(crate) fn get(&self, k: u64) -> (i64, i64, i64) {
        let bounds = |w: i128, stop: i128, left_open: bool| {
            if left_open {
                (narrow(stop), narrow(w + 1), narrow(stop))
            } else {
                (narrow(w), narrow(w), narrow(stop - 1))
            }
        };
        match self {
            Windows::Whole => (0, i64::MIN, i64::MAX),
            Windows::Grouped {
                start,
                end,
                interval,
                step,
                left_open,
                ..
            } => {
                let w = i128::from(*start) + i128::from(k) * i128::from(*step);
                let stop = (w + i128::from(*interval)).min(i128::from(*end));
                bounds(w, stop, *left_open)
            }
            Windows::Calendar {
                start,
                end,
                interval,
                step,
                left_open,
                zone,
                precision,
                ..
            } => {
                let k = i128::from(k);
                let (step_months, step_fixed) =
                    (k * i128::from(step.months), k * i128::from(step.fixed));
                // Windows below the count start before `end`; an end past the calendar's range is
                // past `end` too.
                let w = precision
                    .calendar_add(*start, step_months, step_fixed, zone)
                    .map_or(i128::from(*end), i128::from);
                let stop = precision
                    .calendar_add(
                        *start,
                        step_months + i128::from(interval.months),
                        step_fixed + i128::from(interval.fixed),
                        zone,
                    )
                    .map_or(i128::from(*end), i128::from)
                    .min(i128::from(*end));
                bounds(w, stop, *left_open)
            }
        }
    }
}

/// Why the windows of a calendar step could not be counted.
enum CountError {
    /// More than [`MAX_WINDOWS`]: at least this many.
    TooMany(i128),
    Range(String),
}

/// How many windows of a step with calendar months start before `end`: the first `n` whose start is at
/// or past `end`, by binary search between bounds from the shortest and longest possible step (a month
/// is 28 to 31 days, give or take a day of daylight-saving and zone changes).
fn calendar_count(
    precision: Precision,
    zone: &Zone,
    start: i64,
    end: i64,
    step: CalendarDuration,
) -> std::result::Result<i128, CountError> {
    let day = 86_400_000 * i128::from(precision.units_per_ms);
    let span = i128::from(end) - i128::from(start);
    let months = i128::from(step.months);
    let fixed = i128::from(step.fixed);
    let longest = months * 31 * day + fixed + day;
    let shortest = (months * 28 * day + fixed - day).max(1);
    let at_least = span / longest;
    if at_least > MAX_WINDOWS {
        return Err(CountError::TooMany(at_least));
    }
    let starts_at_or_past_end = |n: i128| -> std::result::Result<bool, CountError> {
        match precision.calendar_add(start, n * months, n * fixed, zone) {
            Ok(t) => Ok(t >= end),
            // Past the calendar's range, so past `end`, which lies within it.
            Err(_) if n > 0 => Ok(true),
            Err(why) => Err(CountError::Range(why)),
        }
    };
    // Invariant: window `lo - 1` starts before `end`, window `hi` at or past it.
    let (mut lo, mut hi) = (at_least.max(1), span / shortest + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if starts_at_or_past_end(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn grouped(start: i64, end: i64, interval: i64, step: i64, left_open: bool) -> Windows {
        Windows::fixed(start, end, interval, step, left_open).unwrap()
    }

    #[test]
    fn windows_are_computed_from_their_index_at_the_ends_of_the_range() {
        let w = grouped(0, 15, 5, 5, false);
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(0), (0, 0, 4));
        assert_eq!(w.get(2), (10, 10, 14));
        let w = grouped(0, 15, 5, 5, true);
        assert_eq!(w.get(0), (5, 1, 5));
        assert_eq!(w.get(2), (15, 11, 15));
        // The last window is cut at the end; sliding windows overlap.
        let w = grouped(0, 12, 5, 2, false);
        assert_eq!(w.len(), 6);
        assert_eq!(w.get(5), (10, 10, 11));
        // The whole i64 range: no wrap-around anywhere.
        let w = grouped(i64::MIN, i64::MAX, i64::MAX, i64::MAX, false);
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(0), (i64::MIN, i64::MIN, -2));
        assert_eq!(w.get(2), (i64::MAX - 1, i64::MAX - 1, i64::MAX - 1));
    }

    fn windows(group_by: &str) -> Result<Windows> {
        let sql = format!("SELECT count(s) FROM root.sg.d GROUP BY {group_by}");
        let select = crate::query::testing::select(&sql);
        let db = crate::query::testing::TestDb::open();
        Windows::new(
            &db.engine,
            &crate::query::testing::ctx(),
            select.group_by.as_ref(),
        )
    }

    #[test]
    fn windows_come_from_the_group_by_clause_and_are_bounded() {
        let w = windows("([0, 10), 3ms)").unwrap();
        assert_eq!(w.len(), 4);
        assert!(!w.overlap());
        // The last window is cut at the end of the range.
        assert_eq!(w.get(3), (9, 9, 9));
        let w = windows("((0, 10], 5ms, 2ms)").unwrap();
        assert!(w.overlap());
        assert_eq!(w.len(), 5);
        // Left-open windows are labelled by their (closed) right end.
        assert_eq!(w.get(0), (5, 1, 5));
        assert_eq!(w.get(4), (10, 9, 10));
        assert_eq!(Windows::Whole.get(0), (0, i64::MIN, i64::MAX));
        let error = windows("([0, 100000000), 1ms)").unwrap_err().to_string();
        assert!(error.contains("100000000 windows"), "{error}");
        assert!(windows("([10, 10), 1ms)").is_err());
    }

    #[test]
    fn calendar_windows_step_whole_months_from_the_start() {
        // 2024-01-31T00:00:00Z, one month, three windows: Jan 31, Feb 29 (2024 is a leap year; Jan 31
        // plus one month), Mar 31 (plus two months from the start, not Feb 29 plus one).
        let w = windows("([2024-01-31T00:00:00, 2024-04-15T00:00:00), 1mo)").unwrap();
        assert_eq!(w.len(), 3);
        let day = 86_400_000;
        let jan31 = 1_706_659_200_000;
        assert_eq!(w.get(0).0, jan31);
        assert_eq!(w.get(1).0, jan31 + 29 * day);
        assert_eq!(w.get(2).0, jan31 + 60 * day);
        // The last one ends at the range's end.
        assert_eq!(w.get(2).2, 1_713_139_200_000 - 1);
        let many = windows("([0, 9223372036854775807), 1mo)")
            .unwrap_err()
            .to_string();
        assert!(
            many.contains("-9999 to 9999") || many.contains("windows"),
            "{many}"
        );
    }
}
