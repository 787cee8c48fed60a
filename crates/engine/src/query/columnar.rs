//! Aggregates of a series without a WHERE predicate, one series at a time and without the row-by-row
//! merge: a span a data file's summary covers whole is added from the summary, the rest is scanned
//! in large time-sorted chunks and folded a window's slice at a time (`Acc::add_slice`).
//!
//! **Invariant:** the windows' accumulators end up as the row-by-row path would leave them (but for
//! the rounding of sums): every visible point of the range is added once, in time order, to every
//! window that contains it — from a summary only when every window touching its span contains the
//! whole span.

use duet_proto::types::DataType;
use duet_storage::SeriesPiece;

use super::aggregate::Acc;
use crate::limits::QueryControlRef;
use crate::schema::SeriesInfo;
use crate::{Engine, Result};

/// Points read per storage call: large enough that the per-call cost (finding the rows, opening a
/// file's reader) is spread thin, small enough to stay a few MiB per chunk.
const CHUNK_POINTS: usize = 1 << 16;

/// Window bounds as `AggSource` computes them: (label, first time, last time), ascending by both.
pub(crate) type Window = (i64, i64, i64);

/// Adds the points of `series` in `[lo, hi]` (its TTL applied) to `accs[k][column]` for every window
/// `k` of `wins` that contains them.
pub(crate) fn aggregate_series(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    (lo, hi): (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    column: usize,
) -> Result<()> {
    let lo = match engine.ttl_floor(&series.device, control.started_ms()) {
        Some(floor) => lo.max(floor),
        None => lo,
    };
    if lo > hi {
        return Ok(());
    }
    for piece in engine.storage.summarize(&series.key, lo, hi) {
        control.check()?;
        match piece {
            SeriesPiece::Summary { start, end, stats } => {
                let touching = windows_touching(wins, start, end);
                let whole = wins
                    .get(touching.clone())
                    .is_some_and(|w| w.iter().all(|w| w.1 <= start && end <= w.2));
                if whole {
                    for k in touching {
                        if let Some(acc) = accs.get_mut(k).and_then(|a| a.get_mut(column)) {
                            acc.add_summary(&stats);
                        }
                    }
                } else {
                    scan_into(engine, control, series, (start, end), wins, accs, column)?;
                }
            }
            SeriesPiece::Scan { start, end } => {
                scan_into(engine, control, series, (start, end), wins, accs, column)?;
            }
        }
    }
    Ok(())
}

/// The windows that overlap `[start, end]`: a run, since windows ascend by both bounds.
fn windows_touching(wins: &[Window], start: i64, end: i64) -> std::ops::Range<usize> {
    let first = wins.partition_point(|w| w.2 < start);
    let past = first
        + wins
            .get(first..)
            .map_or(0, |w| w.partition_point(|w| w.1 <= end));
    first..past
}

/// Scans `[start, end]` of the series in chunks and adds each window's slice of every chunk.
fn scan_into(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    (start, end): (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    column: usize,
) -> Result<()> {
    let mut held = control.reserve(0, "a series chunk")?;
    let mut from = Some(start);
    while let Some(lo) = from.filter(|lo| *lo <= end) {
        control.check()?;
        let mut chunk = engine
            .storage
            .scan(&series.key, lo, end, CHUNK_POINTS, false)?;
        let (Some(&first), Some(&last)) = (chunk.times.first(), chunk.times.last()) else {
            break;
        };
        held.resize(chunk_bytes(chunk.len(), series.data_type), "a series chunk")?;
        if chunk.values.data_type.physical() == series.data_type.physical() {
            chunk.values.data_type = series.data_type;
        }
        for k in windows_touching(wins, first, last) {
            let Some(&(_, w_lo, w_hi)) = wins.get(k) else {
                continue;
            };
            let rows = chunk.times.partition_point(|t| *t < w_lo)
                ..chunk.times.partition_point(|t| *t <= w_hi);
            if let Some(acc) = accs.get_mut(k).and_then(|a| a.get_mut(column)) {
                acc.add_slice(&chunk.times, &chunk.values, rows);
            }
        }
        from = if chunk.len() < CHUNK_POINTS {
            None
        } else {
            last.checked_add(1)
        };
    }
    Ok(())
}

/// What a chunk of fixed-width points holds in memory (time, version, value).
fn chunk_bytes(points: usize, data_type: DataType) -> usize {
    let value = match data_type.physical() {
        DataType::Boolean => 1,
        DataType::Int32 | DataType::Float => 4,
        _ => 8,
    };
    points.saturating_mul(8 + 16 + value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_touching_a_span_are_found_by_both_bounds() {
        // Sliding windows of 10 every 5: [0,9], [5,14], [10,19], [15,24].
        let wins: Vec<Window> = (0..4).map(|k| (k * 5, k * 5, k * 5 + 9)).collect();
        assert_eq!(windows_touching(&wins, 12, 13), 1..3);
        assert_eq!(windows_touching(&wins, 0, 4), 0..1);
        assert_eq!(windows_touching(&wins, 20, 30), 3..4);
        assert_eq!(windows_touching(&wins, 30, 40), 4..4);
        assert_eq!(windows_touching(&wins, -5, -1), 0..0);
        let whole = [(0, i64::MIN, i64::MAX)];
        assert_eq!(windows_touching(&whole, 5, 7), 0..1);
    }
}
