//! Aggregates of a series without a WHERE predicate, one series at a time and without the row-by-row
//! merge: a span a data file's summary covers whole is added from the summary, the rest is scanned
//! in large time-sorted chunks and folded a window's slice at a time (`Acc::add_slice`).
//!
//! **Invariant:** the windows' accumulators end up as the row-by-row path would leave them (but for
//! the rounding of sums): every visible point of the range is added once, in time order, to every
//! window that contains it — from a summary only when every window touching its span contains the
//! whole span.

use duet_parser::BinaryOp;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::{SeriesChunk, SeriesPiece, StatValue};

use super::aggregate::{Acc, StateMemory};
use super::expr::{cell, comparison_holds, eval, Bound, Val};
use crate::limits::QueryControlRef;
use crate::schema::SeriesInfo;
use crate::{Engine, Result};

/// Points read per storage call: large enough that the per-call cost (finding the rows, opening a
/// file's reader) is spread thin, small enough to stay a few MiB per chunk.
pub(crate) const CHUNK_POINTS: usize = 1 << 16;

/// Window bounds as `AggSource` computes them: (label, first time, last time), ascending by both.
pub(crate) type Window = (i64, i64, i64);

/// Adds the points of `series` in `[lo, hi]` (its TTL applied) to `accs[k][column]` for every window
/// `k` of `wins` that contains them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aggregate_series(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    range: (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    column: usize,
    state: &mut StateMemory,
) -> Result<()> {
    let pieces = series_pieces(engine, control, series, range);
    fold_pieces(engine, control, series, &pieces, wins, accs, column, state)
}

/// The pieces of `series` in `[lo, hi]` (its TTL applied): spans a summary answers and spans to scan.
pub(crate) fn series_pieces(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    (lo, hi): (i64, i64),
) -> Vec<SeriesPiece> {
    let lo = match engine.ttl_floor(&series.device, control.started_ms()) {
        Some(floor) => lo.max(floor),
        None => lo,
    };
    if lo > hi {
        return Vec::new();
    }
    engine.storage.summarize(&series.key, lo, hi)
}

/// Whether the accumulators of `column` may take summaries (MODE needs every point).
pub(crate) fn takes_summaries(accs: &[Vec<Acc>], column: usize) -> bool {
    !accs
        .first()
        .and_then(|a| a.get(column))
        .is_some_and(Acc::counts_values)
}

/// Whether a summary piece stands for its span in every window touching it.
fn summary_fits(wins: &[Window], start: i64, end: i64) -> bool {
    wins.get(windows_touching(wins, start, end))
        .is_some_and(|w| w.iter().all(|w| w.1 <= start && end <= w.2))
}

/// Whether folding `pieces` reads enough points from storage to be worth a task of its own: points
/// a summary holds but cannot stand for (at least `min_points` of them), or a range with no summary
/// at all, whose size nothing tells. Scans of the gaps between summaries are left out: they are
/// usually empty.
pub(crate) fn worth_a_task(
    pieces: &[SeriesPiece],
    wins: &[Window],
    summaries: bool,
    min_points: u64,
) -> bool {
    let mut unsummarized = 0u64;
    let mut any_summary = false;
    for piece in pieces {
        if let SeriesPiece::Summary { start, end, stats } = piece {
            any_summary = true;
            if !(summaries && summary_fits(wins, *start, *end)) {
                unsummarized = unsummarized.saturating_add(stats.count);
            }
        }
    }
    unsummarized >= min_points || (!any_summary && !pieces.is_empty())
}

/// Adds the points `pieces` stand for to `accs[k][column]` for every window `k` containing them:
/// from a summary where it stands for its span in every window touching it, scanned otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fold_pieces(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    pieces: &[SeriesPiece],
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    column: usize,
    state: &mut StateMemory,
) -> Result<()> {
    // MODE needs every point: summaries are scanned instead.
    let summaries = takes_summaries(accs, column);
    for piece in pieces {
        control.check()?;
        let span = match piece {
            SeriesPiece::Summary { start, end, stats } => {
                if summaries && summary_fits(wins, *start, *end) {
                    for k in windows_touching(wins, *start, *end) {
                        if let Some(acc) = accs.get_mut(k).and_then(|a| a.get_mut(column)) {
                            acc.add_summary(stats);
                        }
                    }
                    continue;
                }
                (*start, *end)
            }
            SeriesPiece::Scan { start, end } => (*start, *end),
        };
        scan_into(engine, control, series, span, wins, accs, column, state)?;
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

/// Adds `range` of a chunk to `acc`, charging what its MODE counts grow by.
fn add_slice(
    acc: &mut Acc,
    state: &mut StateMemory,
    times: &[i64],
    values: &Column,
    range: std::ops::Range<usize>,
) -> Result<()> {
    if acc.counts_values() {
        let before = acc.heap();
        acc.add_slice(times, values, range);
        state.track(before, acc.heap())
    } else {
        acc.add_slice(times, values, range);
        Ok(())
    }
}

/// Scans `[start, end]` of the series in chunks and adds each window's slice of every chunk.
#[allow(clippy::too_many_arguments)]
fn scan_into(
    engine: &Engine,
    control: &QueryControlRef,
    series: &SeriesInfo,
    (start, end): (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    column: usize,
    state: &mut StateMemory,
) -> Result<()> {
    let mut held = control.reserve(0, "a series chunk")?;
    let mut from = Some(start);
    while let Some(lo) = from.filter(|lo| *lo <= end) {
        control.check()?;
        let mut chunk = engine
            .storage
            .scan_values(&series.key, lo, end, CHUNK_POINTS)?;
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
                add_slice(acc, state, &chunk.times, &chunk.values, rows)?;
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

/// Adds, for every output series `0..n_outputs`, its points at the times where `predicate` holds
/// over the rows of all `series` aligned by time (a series without a point at a time is null there),
/// to `accs[k][output]` for every window `k` containing them. The series are read together in
/// chunks; a round of chunks covers the times up to the earliest last time of a full chunk, so its
/// rows are complete for every series. The predicate is a typed mask where it is comparisons of
/// a series or the time with constants joined by AND/OR, and evaluated row by row otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aggregate_filtered(
    engine: &Engine,
    control: &QueryControlRef,
    series: &[SeriesInfo],
    n_outputs: usize,
    predicate: &Bound,
    (lo, hi): (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    state: &mut StateMemory,
) -> Result<()> {
    let floors: Vec<i64> = series
        .iter()
        .map(|s| {
            engine
                .ttl_floor(&s.device, control.started_ms())
                .map_or(lo, |f| lo.max(f))
        })
        .collect();
    let mut held = control.reserve(0, "series chunks")?;
    let mut from = lo;
    loop {
        control.check()?;
        let mut chunks = Vec::with_capacity(series.len());
        let mut round_end = hi;
        for (s, floor) in series.iter().zip(&floors) {
            let start = from.max(*floor);
            let mut chunk = if start <= hi {
                engine
                    .storage
                    .scan_values(&s.key, start, hi, CHUNK_POINTS)?
            } else {
                SeriesChunk::empty()
            };
            if chunk.values.data_type.physical() == s.data_type.physical() {
                chunk.values.data_type = s.data_type;
            }
            if chunk.len() == CHUNK_POINTS {
                if let Some(last) = chunk.times.last() {
                    round_end = round_end.min(*last);
                }
            }
            chunks.push(chunk);
        }
        let bytes = series
            .iter()
            .zip(&chunks)
            .map(|(s, c)| chunk_bytes(c.len(), s.data_type))
            .sum();
        held.resize(bytes, "series chunks")?;
        let rows = Rows::align(&chunks, round_end);
        let mask = match typed_mask(predicate, &rows, &chunks) {
            Some(mask) => mask,
            None => rows.eval(predicate, &chunks),
        };
        for (output, chunk) in chunks.iter().enumerate().take(n_outputs) {
            let picked = rows.picked(output, &mask);
            let (Some(first), Some(last)) = (picked.first(), picked.last()) else {
                continue;
            };
            let (Some(&t_first), Some(&t_last)) = (chunk.times.get(*first), chunk.times.get(*last))
            else {
                continue;
            };
            let times: Vec<i64> = picked
                .iter()
                .filter_map(|p| chunk.times.get(*p))
                .copied()
                .collect();
            let values = gather(&chunk.values, &picked);
            for k in windows_touching(wins, t_first, t_last) {
                let Some(&(_, w_lo, w_hi)) = wins.get(k) else {
                    continue;
                };
                let slice =
                    times.partition_point(|t| *t < w_lo)..times.partition_point(|t| *t <= w_hi);
                if let Some(acc) = accs.get_mut(k).and_then(|a| a.get_mut(output)) {
                    add_slice(acc, state, &times, &values, slice)?;
                }
            }
        }
        match round_end.checked_add(1) {
            Some(next) if round_end < hi => from = next,
            _ => return Ok(()),
        }
    }
}

/// The rows of one round: the union of the series' times up to the round's end, and where each
/// series' point of a row is in its chunk.
struct Rows {
    times: Vec<i64>,
    /// Per series, per row: the point's index in the series' chunk, or `NONE`; `None` when the
    /// series has a point at every row, its row's (the common case: series written together),
    /// so masks over it are typed loops over its values.
    at: Vec<Option<Vec<usize>>>,
}

const NONE: usize = usize::MAX;

impl Rows {
    fn align(chunks: &[SeriesChunk], round_end: i64) -> Rows {
        let prefixes: Vec<&[i64]> = chunks
            .iter()
            .map(|c| {
                let n = c.times.partition_point(|t| *t <= round_end);
                c.times.get(..n).unwrap_or_default()
            })
            .collect();
        // Series written together (tablets, aligned devices) share their times: the union is any
        // one of them; otherwise it is merged.
        let times: Vec<i64> = match prefixes.split_first() {
            Some((first, rest)) if rest.iter().all(|p| p == first) => first.to_vec(),
            _ => {
                let mut all: Vec<i64> = prefixes.iter().flat_map(|p| p.iter().copied()).collect();
                all.sort_unstable();
                all.dedup();
                all
            }
        };
        let at = prefixes
            .iter()
            .map(|p| {
                if *p == times.as_slice() {
                    return None;
                }
                let mut j = 0;
                Some(
                    times
                        .iter()
                        .map(|t| {
                            if p.get(j) == Some(t) {
                                j += 1;
                                j - 1
                            } else {
                                NONE
                            }
                        })
                        .collect(),
                )
            })
            .collect();
        Rows { times, at }
    }

    /// The positions in series `i`'s chunk of its points at the rows `mask` keeps, in order.
    fn picked(&self, i: usize, mask: &[bool]) -> Vec<usize> {
        match self.at.get(i) {
            Some(Some(at)) => at
                .iter()
                .zip(mask)
                .filter(|(p, keep)| **keep && **p != NONE)
                .map(|(p, _)| *p)
                .collect(),
            Some(None) => mask
                .iter()
                .take(self.times.len())
                .enumerate()
                .filter(|(_, keep)| **keep)
                .map(|(r, _)| r)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Series `i`'s point of row `r`.
    fn position(&self, i: usize, r: usize) -> Option<usize> {
        match self.at.get(i)? {
            Some(at) => at.get(r).copied().filter(|p| *p != NONE),
            None => (r < self.times.len()).then_some(r),
        }
    }

    /// The predicate row by row.
    fn eval(&self, predicate: &Bound, chunks: &[SeriesChunk]) -> Vec<bool> {
        let mut row: Vec<Val> = Vec::with_capacity(chunks.len());
        (0..self.times.len())
            .map(|r| {
                row.clear();
                for (i, chunk) in chunks.iter().enumerate() {
                    row.push(match self.position(i, r) {
                        Some(p) => cell(&chunk.values, p),
                        None => Val::Null,
                    });
                }
                let time = self.times.get(r).copied().unwrap_or(0);
                eval(predicate, time, &row) == Val::Bool(true)
            })
            .collect()
    }
}

/// Where `predicate` is true, per row, computed on typed columns; `None` when the predicate is not
/// of the supported forms (then it is evaluated row by row, with the same result).
fn typed_mask(predicate: &Bound, rows: &Rows, chunks: &[SeriesChunk]) -> Option<Vec<bool>> {
    use std::cmp::Ordering;
    let Bound::Binary(l, op, r) = predicate else {
        return None;
    };
    let holds =
        |o: Option<Ordering>| -> bool { o.and_then(|o| comparison_holds(*op, o)).unwrap_or(false) };
    match (&**l, op, &**r) {
        (a, BinaryOp::And, b) => {
            let (a, b) = (typed_mask(a, rows, chunks)?, typed_mask(b, rows, chunks)?);
            Some(a.iter().zip(&b).map(|(x, y)| *x && *y).collect())
        }
        (a, BinaryOp::Or, b) => {
            let (a, b) = (typed_mask(a, rows, chunks)?, typed_mask(b, rows, chunks)?);
            Some(a.iter().zip(&b).map(|(x, y)| *x || *y).collect())
        }
        (
            _,
            BinaryOp::Plus | BinaryOp::Minus | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod,
            _,
        ) => None,
        (Bound::Time, _, Bound::Const(Val::Int(c))) => {
            Some(rows.times.iter().map(|t| holds(Some(t.cmp(c)))).collect())
        }
        (Bound::Series(i), _, Bound::Const(c)) => {
            let chunk = chunks.get(*i)?;
            match rows.at.get(*i)? {
                // A point at every row: one typed loop over the values.
                None => {
                    let n = rows.times.len();
                    let mask = compare_values(&chunk.values.values, *op, c, n)?;
                    (mask.len() == n).then_some(mask)
                }
                Some(at) => {
                    let cmp = value_comparator(&chunk.values.values, c)?;
                    Some(at.iter().map(|p| *p != NONE && holds(cmp(*p))).collect())
                }
            }
        }
        _ => None,
    }
}

/// `values[..n] op c` per row, as `value_comparator` orders a value against the constant (a NaN
/// compares as nothing, so every comparison with it is false, `!=` included), in loops the compiler
/// vectorizes; `None` for pairs `value_comparator` leaves to the row evaluator, for an operator that
/// is not a comparison, or when there are fewer than `n` values.
fn compare_values(values: &ColumnValues, op: BinaryOp, c: &Val, n: usize) -> Option<Vec<bool>> {
    fn mask<T: Copy + PartialOrd>(v: &[T], op: BinaryOp, c: T) -> Option<Vec<bool>> {
        Some(match op {
            BinaryOp::Eq => v.iter().map(|x| *x == c).collect(),
            BinaryOp::NotEq => v
                .iter()
                .map(|x| x.partial_cmp(&c).is_some_and(|o| o.is_ne()))
                .collect(),
            BinaryOp::Lt => v.iter().map(|x| *x < c).collect(),
            BinaryOp::LtEq => v.iter().map(|x| *x <= c).collect(),
            BinaryOp::Gt => v.iter().map(|x| *x > c).collect(),
            BinaryOp::GtEq => v.iter().map(|x| *x >= c).collect(),
            _ => return None,
        })
    }
    fn widened<T: Copy>(v: &[T], to: impl Fn(T) -> f64) -> Vec<f64> {
        v.iter().map(|x| to(*x)).collect()
    }
    match (values, c) {
        (ColumnValues::Int32(v), Val::Int(c)) => {
            let v: Vec<i64> = v.get(..n)?.iter().map(|x| i64::from(*x)).collect();
            mask(&v, op, *c)
        }
        (ColumnValues::Int64(v), Val::Int(c)) => mask(v.get(..n)?, op, *c),
        (ColumnValues::Boolean(v), Val::Bool(c)) => mask(v.get(..n)?, op, *c),
        (_, Val::Int(_) | Val::Float(_)) => {
            let c = c.as_f64()?;
            match values {
                ColumnValues::Int32(v) => mask(&widened(v.get(..n)?, f64::from), op, c),
                ColumnValues::Int64(v) => mask(&widened(v.get(..n)?, |x| x as f64), op, c),
                ColumnValues::Float(v) => mask(&widened(v.get(..n)?, f64::from), op, c),
                ColumnValues::Double(v) => mask(v.get(..n)?, op, c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `value[row] <=> c` as [`compare`](super::expr::compare) orders a series value against a
/// constant: integers exactly against an integer, numbers as f64 otherwise, booleans against a
/// boolean; `None` for other pairs (left to the row evaluator).
#[allow(clippy::type_complexity)]
fn value_comparator<'a>(
    values: &'a ColumnValues,
    c: &Val,
) -> Option<Box<dyn Fn(usize) -> Option<std::cmp::Ordering> + 'a>> {
    Some(match (values, c.clone()) {
        (ColumnValues::Int32(v), Val::Int(c)) => {
            Box::new(move |p| v.get(p).map(|x| i64::from(*x).cmp(&c)))
        }
        (ColumnValues::Int64(v), Val::Int(c)) => Box::new(move |p| v.get(p).map(|x| x.cmp(&c))),
        (ColumnValues::Boolean(v), Val::Bool(c)) => Box::new(move |p| v.get(p).map(|x| x.cmp(&c))),
        (_, Val::Int(_) | Val::Float(_)) => {
            let c = c.as_f64()?;
            match values {
                ColumnValues::Int32(v) => {
                    Box::new(move |p| v.get(p).and_then(|x| f64::from(*x).partial_cmp(&c)))
                }
                ColumnValues::Int64(v) => {
                    Box::new(move |p| v.get(p).and_then(|x| (*x as f64).partial_cmp(&c)))
                }
                ColumnValues::Float(v) => {
                    Box::new(move |p| v.get(p).and_then(|x| f64::from(*x).partial_cmp(&c)))
                }
                ColumnValues::Double(v) => {
                    Box::new(move |p| v.get(p).and_then(|x| x.partial_cmp(&c)))
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The values at `rows` of a column without nulls.
fn gather(column: &Column, rows: &[usize]) -> Column {
    fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
        rows.iter().filter_map(|r| v.get(*r)).cloned().collect()
    }
    let values = match &column.values {
        ColumnValues::Boolean(v) => ColumnValues::Boolean(pick(v, rows)),
        ColumnValues::Int32(v) => ColumnValues::Int32(pick(v, rows)),
        ColumnValues::Int64(v) => ColumnValues::Int64(pick(v, rows)),
        ColumnValues::Float(v) => ColumnValues::Float(pick(v, rows)),
        ColumnValues::Double(v) => ColumnValues::Double(pick(v, rows)),
        ColumnValues::Binary(v) => ColumnValues::Binary(pick(v, rows)),
    };
    Column {
        data_type: column.data_type,
        nulls: None,
        values,
    }
}

/// The newest visible point of a series in `[lo, hi]` as (time, a one-value column): from the last
/// piece of the range that has one, a file's summary answering without reading the file.
pub(crate) fn last_point(
    engine: &Engine,
    series: &SeriesInfo,
    lo: i64,
    hi: i64,
) -> Result<Option<(i64, Column)>> {
    for piece in engine.storage.summarize(&series.key, lo, hi).iter().rev() {
        let (start, end) = match piece {
            SeriesPiece::Summary { stats, start, end } => {
                match summary_value(stats.last, series.data_type) {
                    Some(values) => {
                        let column = Column {
                            data_type: series.data_type,
                            nulls: None,
                            values,
                        };
                        return Ok(Some((stats.last_time, column)));
                    }
                    None => (*start, *end),
                }
            }
            SeriesPiece::Scan { start, end } => (*start, *end),
        };
        let chunk = engine.storage.scan(&series.key, start, end, 1, true)?;
        if let Some(t) = chunk.times.first() {
            return Ok(Some((*t, chunk.values)));
        }
    }
    Ok(None)
}

/// A summary's value as a one-value column of the series' type; `None` if its class is not the
/// type's (the piece is read instead).
fn summary_value(value: StatValue, data_type: DataType) -> Option<ColumnValues> {
    Some(match (value, data_type.physical()) {
        (StatValue::Bool(b), DataType::Boolean) => ColumnValues::Boolean(vec![b]),
        (StatValue::Int(i), DataType::Int32) => ColumnValues::Int32(vec![i32::try_from(i).ok()?]),
        (StatValue::Int(i), DataType::Int64) => ColumnValues::Int64(vec![i]),
        // A FLOAT summary value was widened from an f32, so narrowing it back is exact.
        (StatValue::Float(f), DataType::Float) => ColumnValues::Float(vec![f as f32]),
        (StatValue::Float(f), DataType::Double) => ColumnValues::Double(vec![f]),
        _ => return None,
    })
}

/// What a chunk of fixed-width points holds in memory (time, version, value).
pub(crate) fn chunk_bytes(points: usize, data_type: DataType) -> usize {
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

    fn chunk(times: Vec<i64>, values: ColumnValues) -> SeriesChunk {
        let data_type = match &values {
            ColumnValues::Boolean(_) => DataType::Boolean,
            ColumnValues::Int32(_) => DataType::Int32,
            ColumnValues::Int64(_) => DataType::Int64,
            ColumnValues::Float(_) => DataType::Float,
            ColumnValues::Double(_) => DataType::Double,
            ColumnValues::Binary(_) => DataType::Text,
        };
        SeriesChunk {
            data_type: Some(data_type),
            times,
            values: Column {
                data_type,
                nulls: None,
                values,
            },
            versions: Vec::new(),
        }
    }

    #[test]
    fn typed_masks_agree_with_the_row_evaluator_for_shared_and_separate_times() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut below = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let ops = [
            BinaryOp::Eq,
            BinaryOp::NotEq,
            BinaryOp::Lt,
            BinaryOp::LtEq,
            BinaryOp::Gt,
            BinaryOp::GtEq,
        ];
        let mut typed = 0;
        for round in 0..400 {
            let n = 1 + below(60) as usize;
            let shared: Vec<i64> = (0..n as i64).map(|t| t * 3).collect();
            // Half the rounds the series share their times (the loop over values), the others
            // not (positions through the rows' index).
            let times = |below: &mut dyn FnMut(u64) -> u64| -> Vec<i64> {
                if round % 2 == 0 {
                    shared.clone()
                } else {
                    shared.iter().copied().filter(|_| below(4) != 0).collect()
                }
            };
            let t0 = times(&mut below);
            let t1 = times(&mut below);
            let t2 = times(&mut below);
            let t3 = times(&mut below);
            let doubles: Vec<f64> = t0
                .iter()
                .map(|_| match below(8) {
                    0 => f64::NAN,
                    1 => -0.0,
                    k => k as f64 / 2.0 - 2.0,
                })
                .collect();
            let ints: Vec<i32> = t1.iter().map(|_| below(7) as i32 - 3).collect();
            let longs: Vec<i64> = t2.iter().map(|_| below(7) as i64 - 3).collect();
            let bools: Vec<bool> = t3.iter().map(|_| below(2) == 1).collect();
            let chunks = vec![
                chunk(t0, ColumnValues::Double(doubles)),
                chunk(t1, ColumnValues::Int32(ints)),
                chunk(t2, ColumnValues::Int64(longs)),
                chunk(t3, ColumnValues::Boolean(bools)),
            ];
            let rows = Rows::align(&chunks, i64::MAX);
            for series in 0..4 {
                for op in ops {
                    let constants = match series {
                        3 => vec![Val::Bool(true), Val::Bool(false)],
                        _ => vec![
                            Val::Int(below(5) as i64 - 2),
                            Val::Float(0.5),
                            Val::Float(-0.0),
                        ],
                    };
                    for c in constants {
                        let predicate = Bound::Binary(
                            Box::new(Bound::Series(series)),
                            op,
                            Box::new(Bound::Const(c.clone())),
                        );
                        let want = rows.eval(&predicate, &chunks);
                        if let Some(mask) = typed_mask(&predicate, &rows, &chunks) {
                            typed += 1;
                            assert_eq!(mask, want, "round {round}: series {series} {op:?} {c:?}");
                        }
                    }
                }
            }
            let picked = |i: usize, mask: &[bool]| -> Vec<usize> {
                (0..rows.times.len())
                    .filter(|r| mask.get(*r) == Some(&true))
                    .filter_map(|r| rows.position(i, r))
                    .collect()
            };
            let mask: Vec<bool> = (0..rows.times.len()).map(|_| below(2) == 0).collect();
            for i in 0..4 {
                assert_eq!(rows.picked(i, &mask), picked(i, &mask), "round {round}");
            }
        }
        assert!(typed > 10_000, "{typed} typed masks");
    }

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
