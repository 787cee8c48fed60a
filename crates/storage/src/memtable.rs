//! The in-memory write buffer: what the log holds above the flushed position, ready to scan.
//!
//! Per series, points are appended to columnar vectors (times, versions, values) exactly as they
//! arrive; sorting and de-duplication (highest version per timestamp) happen lazily, when a scan or a
//! flush reads the series. A series whose times arrive in order (the common case) is scanned with a
//! binary search; one out of order is sorted once (a row permutation, cached until the next change)
//! and then scanned the same way. Either way a limited scan walks only about `limit` points.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use duet_proto::types::{ColumnValues, DataType};

use crate::error::{Error, Result};
use crate::run::{self, Run, Window};
use crate::stats::{self, SeriesStats};
use crate::types::{series_path, Lsn, Op, RangeTombstone, Version};

/// Fixed bookkeeping cost charged per series, on top of its points.
const SERIES_OVERHEAD_BYTES: usize = 160;
/// Bytes per point besides the value: an i64 time and a 16-byte version.
const POINT_OVERHEAD_BYTES: usize = 24;

/// The unsorted points of one series in one memtable.
#[derive(Debug)]
pub(crate) struct SeriesBuffer {
    pub data_type: DataType,
    pub times: Vec<i64>,
    pub versions: Vec<Version>,
    pub values: ColumnValues,
    /// True while every appended time was >= the previous one, so a range is a binary search away.
    in_time_order: bool,
    /// True while every appended time was > the previous one: one point per timestamp, so a range
    /// with no deletion in it is a plain copy.
    strictly_ordered: bool,
    /// The earliest and latest time of the points, kept as they are appended (recomputed when a
    /// deletion removes some), so bounds of a buffer out of order cost no pass over its times: a
    /// `SELECT LAST` asks for them on every call.
    bounds: Option<(i64, i64)>,
    /// For a buffer out of time order: its rows sorted by time, one per timestamp (the highest
    /// version). Built by the first scan that needs it and dropped by the next change, so a series
    /// read in many chunks is sorted once, not once per chunk.
    sorted: OnceLock<Vec<usize>>,
    /// The running summary of a strictly ordered buffer, folded lazily: the points `0..upto` are in
    /// it, later ones are folded in by the next call of [`SeriesBuffer::summary`]. Reset when
    /// points are removed.
    summary: Mutex<RunningSummary>,
}

/// A summary of a buffer's first `upto` points; `broken` once they cannot be summarized (text, a
/// non-finite float, an overflowing sum), which appending more cannot mend.
#[derive(Debug, Default, Clone, Copy)]
struct RunningSummary {
    upto: usize,
    stats: Option<SeriesStats>,
    broken: bool,
}

impl SeriesBuffer {
    fn new(data_type: DataType) -> SeriesBuffer {
        SeriesBuffer {
            data_type,
            times: Vec::new(),
            versions: Vec::new(),
            values: ColumnValues::empty_for(data_type),
            in_time_order: true,
            strictly_ordered: true,
            bounds: None,
            sorted: OnceLock::new(),
            summary: Mutex::new(RunningSummary::default()),
        }
    }

    /// Widens [`SeriesBuffer::bounds`] by the times from row `from` on.
    fn widen_bounds(&mut self, from: usize) {
        let Some(added) = self.times.get(from..) else {
            return;
        };
        let (lo, hi) = if self.in_time_order {
            match (added.first(), added.last()) {
                (Some(lo), Some(hi)) => (*lo, *hi),
                _ => return,
            }
        } else {
            match (added.iter().min(), added.iter().max()) {
                (Some(lo), Some(hi)) => (*lo, *hi),
                _ => return,
            }
        };
        self.bounds = Some(match self.bounds {
            Some((l, h)) => (l.min(lo), h.max(hi)),
            None => (lo, hi),
        });
    }

    /// The summary of every point of a buffer with one point per timestamp in time order (a query
    /// answers its aggregates from it as from a data file's), or `None`. Folds only the points
    /// appended since the last call, so a memtable that grows between queries is not re-read.
    fn summary(&self) -> Option<SeriesStats> {
        if !self.strictly_ordered {
            return None;
        }
        let mut running = self.summary.lock().ok()?;
        let n = self.times.len();
        if running.broken || running.upto > n {
            return None;
        }
        if running.upto < n {
            let part =
                stats::summarize_rows(self.data_type, &self.times, &self.values, running.upto..n);
            let joined = match (running.stats, part) {
                (_, None) => None,
                (None, Some(part)) => Some(part),
                (Some(before), Some(part)) => before.then(&part),
            };
            match joined {
                Some(stats) => {
                    *running = RunningSummary {
                        upto: n,
                        stats: Some(stats),
                        broken: false,
                    }
                }
                None => {
                    running.broken = true;
                    return None;
                }
            }
        }
        running.stats
    }

    fn sort_rows(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.times.len()).collect();
        // Among points of one timestamp and one version (rows of one insert that repeat a time)
        // the later row wins, as it does for a buffer in time order and on IoTDB.
        let key = |row: &usize| {
            (
                self.times.get(*row).copied().unwrap_or(0),
                std::cmp::Reverse(self.versions.get(*row).copied().unwrap_or_default()),
                std::cmp::Reverse(*row),
            )
        };
        rows.sort_unstable_by_key(key);
        rows.dedup_by_key(|row| self.times.get(*row).copied());
        rows
    }

    /// Up to `limit` distinct timestamps in `[start, end]` from the start (or, descending, the end)
    /// of the range, one point each (the highest version), skipping points `tombstones` hide. The
    /// result is in scan order. Costs O(log n + points walked), not O(points in the range).
    fn extract(&self, wanted: Window, tombstones: &[RangeTombstone]) -> Run {
        let (start, end) = (wanted.start, wanted.end);
        let (limit, descending) = (wanted.limit, wanted.descending);
        if self.strictly_ordered && tombstones.is_empty() {
            return self.copy_range(start, end, limit, descending);
        }
        if self.in_time_order {
            self.take(
                |pos| pos,
                self.times.len(),
                start,
                end,
                limit,
                descending,
                tombstones,
            )
        } else {
            let order = self.sorted.get_or_init(|| self.sort_rows());
            let row_of = |pos: usize| order.get(pos).copied().unwrap_or(0);
            self.take(
                row_of,
                order.len(),
                start,
                end,
                limit,
                descending,
                tombstones,
            )
        }
    }

    /// `extract` for a buffer with one point per timestamp in time order and no deletion to apply:
    /// the range's first (or last) `limit` points, copied as slices.
    fn copy_range(&self, start: i64, end: i64, limit: usize, descending: bool) -> Run {
        self.copy_range_with(start, end, limit, descending, true)
    }

    /// `copy_range`, copying the points' versions only when `versions` says so.
    fn copy_range_with(
        &self,
        start: i64,
        end: i64,
        limit: usize,
        descending: bool,
        versions: bool,
    ) -> Run {
        let lo = self.times.partition_point(|t| *t < start);
        let hi = self.times.partition_point(|t| *t <= end).max(lo);
        let rows = if descending {
            hi.saturating_sub(limit).max(lo)..hi
        } else {
            lo..hi.min(lo.saturating_add(limit))
        };
        let mut out = Run::empty(self.data_type);
        out.times
            .extend_from_slice(self.times.get(rows.clone()).unwrap_or_default());
        if versions {
            out.versions
                .extend_from_slice(self.versions.get(rows.clone()).unwrap_or_default());
        }
        run::extend_values(&mut out.values, &self.values, rows);
        if descending {
            out.reverse();
        }
        out
    }

    /// Walks positions `0..n` (in time order through `row_of`, equal times adjacent) as `extract`
    /// describes.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        row_of: impl Fn(usize) -> usize,
        n: usize,
        start: i64,
        end: i64,
        limit: usize,
        descending: bool,
        tombstones: &[RangeTombstone],
    ) -> Run {
        let time_at = |pos: usize| self.times.get(row_of(pos)).copied().unwrap_or(0);
        let version_at = |pos: usize| self.versions.get(row_of(pos)).copied().unwrap_or_default();
        let lo = partition_point(n, |pos| time_at(pos) < start);
        let hi = partition_point(n, |pos| time_at(pos) <= end);
        let mut out = Run::empty(self.data_type);
        let mut tombstones = run::TombstoneIndex::new(tombstones);
        let mut push = |first: usize, past: usize| {
            // One group of equal times: its highest version stands for the timestamp.
            let Some(best) = (first..past).max_by_key(|pos| version_at(*pos)) else {
                return false;
            };
            let (time, version) = (time_at(best), version_at(best));
            if tombstones.hides(time, version) {
                return false;
            }
            out.times.push(time);
            out.versions.push(version);
            run::push_value(&mut out.values, &self.values, row_of(best));
            true
        };
        let mut taken = 0;
        if descending {
            let mut pos = hi;
            while pos > lo && taken < limit {
                let time = time_at(pos - 1);
                let mut first = pos - 1;
                while first > lo && time_at(first - 1) == time {
                    first -= 1;
                }
                taken += usize::from(push(first, pos));
                pos = first;
            }
        } else {
            let mut pos = lo;
            while pos < hi && taken < limit {
                let time = time_at(pos);
                let mut past = pos + 1;
                while past < hi && time_at(past) == time {
                    past += 1;
                }
                taken += usize::from(push(pos, past));
                pos = past;
            }
        }
        out
    }
}

/// The first position in `0..n` where `pred` is false (`pred` must be true then false).
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One memtable: the active one takes writes; frozen ones are immutable and wait for their flush.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    pub series: HashMap<String, SeriesBuffer>,
    pub tombstones: HashMap<String, Vec<RangeTombstone>>,
    /// Lowest and highest LSN applied (0 when none): the flush of this memtable covers them.
    pub min_lsn: Lsn,
    pub max_lsn: Lsn,
    pub max_hlc: u64,
    pub bytes: usize,
    pub points: usize,
    /// When the first entry was applied, for the age-based flush.
    pub first_applied: Option<Instant>,
}

impl Memtable {
    /// True when no entry was applied (an entry without points, e.g. a delete, still counts).
    pub(crate) fn is_empty(&self) -> bool {
        self.max_lsn == 0
    }

    pub(crate) fn data_type(&self, series: &str) -> Option<DataType> {
        self.series.get(series).map(|b| b.data_type)
    }

    /// Checks that every column of `ops` can be appended next to what this memtable holds;
    /// `pending` carries the types of entries accepted earlier in the same group commit
    /// (`None` = the series was dropped by a full-range delete).
    pub(crate) fn check_types(
        &self,
        ops: &[Op],
        pending: &mut HashMap<String, Option<DataType>>,
    ) -> Result<()> {
        let mut staged: Vec<(String, Option<DataType>)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(insert) => {
                    for (measurement, column) in insert.measurements.iter().zip(&insert.columns) {
                        let has_point = match &column.nulls {
                            Some(nulls) => nulls.iter().any(|n| !*n),
                            None => !column.is_empty(),
                        };
                        if !has_point {
                            continue;
                        }
                        let series = series_path(&insert.device, measurement);
                        let stored = staged
                            .iter()
                            .rev()
                            .find(|(s, _)| *s == series)
                            .map(|(_, t)| *t)
                            .or_else(|| pending.get(&series).copied())
                            .unwrap_or_else(|| self.data_type(&series));
                        match stored {
                            Some(stored) if stored != column.data_type => {
                                return Err(Error::TypeMismatch {
                                    series,
                                    stored,
                                    given: column.data_type,
                                })
                            }
                            Some(_) => {}
                            None => staged.push((series, Some(column.data_type))),
                        }
                    }
                }
                Op::Delete(delete) => {
                    if delete.start == i64::MIN && delete.end == i64::MAX {
                        staged.extend(delete.series.iter().map(|s| (s.clone(), None)));
                    }
                }
                Op::Meta(_) => {}
            }
        }
        pending.extend(staged);
        Ok(())
    }

    /// Applies one log entry. A type conflict (possible only while replaying the log, where entries
    /// that once went to different memtables meet in one) is returned before anything is changed for
    /// that column; the caller freezes this memtable and applies the entry to a fresh one (re-applying
    /// the same version is harmless).
    pub(crate) fn apply(&mut self, lsn: Lsn, version: Version, ops: &[Op]) -> Result<()> {
        for op in ops {
            match op {
                Op::Insert(insert) => {
                    for (measurement, column) in insert.measurements.iter().zip(&insert.columns) {
                        let series = series_path(&insert.device, measurement);
                        self.append_column(series, version, &insert.times, column)?;
                    }
                }
                Op::Delete(delete) => {
                    let tombstone = RangeTombstone {
                        start: delete.start,
                        end: delete.end,
                        version,
                    };
                    for series in &delete.series {
                        self.apply_tombstone(series, tombstone);
                    }
                }
                // Schema changes hold no points: the engine applies them to the catalog.
                Op::Meta(_) => {}
            }
        }
        if self.min_lsn == 0 {
            self.min_lsn = lsn;
            self.first_applied = Some(Instant::now());
        }
        self.min_lsn = self.min_lsn.min(lsn);
        self.max_lsn = self.max_lsn.max(lsn);
        self.max_hlc = self.max_hlc.max(version.hlc);
        Ok(())
    }

    fn append_column(
        &mut self,
        series: String,
        version: Version,
        times: &[i64],
        column: &duet_proto::types::Column,
    ) -> Result<()> {
        let nulls = column.nulls.as_deref().filter(|n| n.iter().any(|x| *x));
        let n_points = match nulls {
            Some(n) => n.iter().filter(|x| !**x).count(),
            None => column.len().min(times.len()),
        };
        if n_points == 0 {
            return Ok(());
        }
        if let Some(existing) = self.series.get(&series) {
            if existing.data_type != column.data_type {
                return Err(Error::TypeMismatch {
                    series,
                    stored: existing.data_type,
                    given: column.data_type,
                });
            }
        }
        let new_series = !self.series.contains_key(&series);
        if new_series {
            self.bytes += SERIES_OVERHEAD_BYTES + series.len();
        }
        let buffer = self
            .series
            .entry(series)
            .or_insert_with(|| SeriesBuffer::new(column.data_type));
        // The sorted view no longer covers every row.
        buffer.sorted.take();
        let mut last = buffer.times.last().copied();
        let before = buffer.times.len();
        match nulls {
            None => {
                let n = n_points;
                let new_times = times.get(..n).unwrap_or_default();
                buffer.times.extend_from_slice(new_times);
                run::extend_values(&mut buffer.values, &column.values, 0..n);
                for t in new_times {
                    if last.is_some_and(|l| *t <= l) {
                        buffer.strictly_ordered = false;
                        if last.is_some_and(|l| *t < l) {
                            buffer.in_time_order = false;
                        }
                    }
                    last = Some(*t);
                }
            }
            Some(nulls) => {
                for (row, (t, null)) in times.iter().zip(nulls).enumerate() {
                    if *null {
                        continue;
                    }
                    if last.is_some_and(|l| *t <= l) {
                        buffer.strictly_ordered = false;
                        if last.is_some_and(|l| *t < l) {
                            buffer.in_time_order = false;
                        }
                    }
                    last = Some(*t);
                    buffer.times.push(*t);
                    run::push_value(&mut buffer.values, &column.values, row);
                }
            }
        }
        let added = buffer.times.len() - before;
        buffer.widen_bounds(before);
        buffer.versions.resize(buffer.times.len(), version);
        let value_bytes = match &column.values {
            ColumnValues::Binary(_) => (before..buffer.times.len())
                .map(|row| run::value_bytes(&buffer.values, row))
                .sum(),
            values => added * run::value_bytes(values, 0),
        };
        self.bytes += added * POINT_OVERHEAD_BYTES + value_bytes;
        self.points += added;
        Ok(())
    }

    /// Records the tombstone and drops the points it hides from this memtable right away (they can
    /// never become visible again); a series left empty is forgotten, so it may be re-created with
    /// another type.
    fn apply_tombstone(&mut self, series: &str, tombstone: RangeTombstone) {
        let list = self.tombstones.entry(series.to_string()).or_default();
        if !list.contains(&tombstone) {
            list.push(tombstone);
            self.bytes += 64 + series.len();
        }
        let Some(buffer) = self.series.get_mut(series) else {
            return;
        };
        let keep: Vec<bool> = buffer
            .times
            .iter()
            .zip(&buffer.versions)
            .map(|(t, v)| !tombstone.hides(*t, *v))
            .collect();
        let removed = keep.iter().filter(|k| !**k).count();
        if removed == 0 {
            return;
        }
        // Row numbers shift below, and the running summary no longer describes the points.
        buffer.sorted.take();
        if let Ok(mut running) = buffer.summary.lock() {
            *running = RunningSummary::default();
        }
        let mut row = 0;
        buffer.times.retain(|_| {
            let k = keep.get(row).copied().unwrap_or(true);
            row += 1;
            k
        });
        let mut row = 0;
        buffer.versions.retain(|_| {
            let k = keep.get(row).copied().unwrap_or(true);
            row += 1;
            k
        });
        run::retain_values(&mut buffer.values, &keep);
        buffer.bounds = None;
        buffer.widen_bounds(0);
        self.points -= removed;
        if buffer.times.is_empty() {
            self.series.remove(series);
        }
    }

    /// This memtable's contribution to a scan: up to `limit` distinct visible timestamps of the
    /// range from the scan's starting end (see [`SeriesBuffer::extract`]).
    pub(crate) fn extract(
        &self,
        series: &str,
        wanted: Window,
        tombstones: &[RangeTombstone],
    ) -> Option<Run> {
        self.series
            .get(series)
            .map(|b| b.extract(wanted, tombstones))
            .filter(|r| r.len() > 0)
    }

    /// `extract` ascending without deletions for a caller that needs no versions (the only source
    /// of a scan): a series in strict time order is copied without them; any other comes with them.
    pub(crate) fn extract_values(
        &self,
        series: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Option<Run> {
        self.series
            .get(series)
            .map(|b| {
                if b.strictly_ordered {
                    b.copy_range_with(start, end, limit, false, false)
                } else {
                    b.extract(Window::new(start, end, limit, false), &[])
                }
            })
            .filter(|r| r.len() > 0)
    }

    /// Whether the memtable may hold points of `series` in `[start, end]` (cheap: a series out
    /// of time order is taken to).
    pub(crate) fn may_hold(&self, series: &str, start: i64, end: i64) -> bool {
        match self.series.get(series) {
            None => false,
            Some(b) if b.in_time_order => {
                b.times.first().is_some_and(|first| *first <= end)
                    && b.times.last().is_some_and(|last| start <= *last)
            }
            Some(_) => true,
        }
    }

    /// The earliest and latest time of the series' points here (hidden points included), and
    /// their type; `None` without points.
    pub(crate) fn time_bounds(&self, series: &str) -> Option<(i64, i64, DataType)> {
        let b = self.series.get(series)?;
        let (lo, hi) = b.bounds?;
        Some((lo, hi, b.data_type))
    }

    /// The summary of the series' points here when one answers for them (see
    /// [`SeriesBuffer::summary`]).
    pub(crate) fn summary(&self, series: &str) -> Option<SeriesStats> {
        self.series.get(series)?.summary()
    }

    pub(crate) fn tombstones_for(&self, series: &str) -> &[RangeTombstone] {
        self.tombstones
            .get(series)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every series, sorted by name, with its points sorted by time and de-duplicated (highest
    /// version per timestamp): the rows of the data files a flush writes.
    pub(crate) fn sorted_series(&self) -> Vec<(String, Run)> {
        let mut names: Vec<&String> = self.series.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let buffer = self.series.get(name)?;
                let run = buffer.extract(Window::new(i64::MIN, i64::MAX, usize::MAX, false), &[]);
                (run.len() > 0).then(|| (name.clone(), run))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::types::{DeleteOp, InsertOp};
    use duet_proto::types::Column;

    fn v(hlc: u64) -> Version {
        Version { hlc, instance: 1 }
    }

    fn insert(times: Vec<i64>, values: Vec<i64>) -> Vec<Op> {
        vec![Op::Insert(InsertOp {
            device: "root.sg.d1".into(),
            aligned: false,
            measurements: vec!["s1".into()],
            columns: vec![Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64(values),
            }],
            times,
        })]
    }

    #[test]
    fn a_time_repeated_in_one_insert_keeps_its_later_row_in_and_out_of_order() {
        for times in [vec![1, 2, 2, 2, 3], vec![3, 2, 1, 2, 2]] {
            let mut m = Memtable::default();
            m.apply(1, v(10), &insert(times.clone(), vec![1, 2, 3, 4, 5]))
                .unwrap();
            let (_, run) = &m.sorted_series()[0];
            assert_eq!(run.times, vec![1, 2, 3], "{times:?}");
            let want = if times[0] == 1 { [1, 4, 5] } else { [3, 5, 1] };
            assert_eq!(run.values, ColumnValues::Int64(want.to_vec()), "{times:?}");
        }
    }

    #[test]
    fn a_strictly_ordered_buffer_is_copied_by_range_from_either_end() {
        let mut m = Memtable::default();
        m.apply(
            1,
            v(1),
            &insert(vec![1, 2, 3, 5, 8], vec![10, 20, 30, 50, 80]),
        )
        .unwrap();
        let values = |r: Option<Run>| {
            let r = r.unwrap();
            (r.times, r.values)
        };
        let ints = |v: &[i64]| ColumnValues::Int64(v.to_vec());
        assert_eq!(
            values(m.extract("root.sg.d1.s1", Window::new(2, 7, 2, false), &[])),
            (vec![2, 3], ints(&[20, 30]))
        );
        assert_eq!(
            values(m.extract("root.sg.d1.s1", Window::new(2, 7, 2, true), &[])),
            (vec![5, 3], ints(&[50, 30]))
        );
        assert_eq!(
            values(m.extract("root.sg.d1.s1", Window::new(0, 100, 99, true), &[])),
            (vec![8, 5, 3, 2, 1], ints(&[80, 50, 30, 20, 10]))
        );
        assert!(m
            .extract("root.sg.d1.s1", Window::new(6, 7, 9, false), &[])
            .is_none());
        // A repeated time ends the plain copy; the result is the same through the general walk.
        m.apply(2, v(2), &insert(vec![8], vec![81])).unwrap();
        assert_eq!(
            values(m.extract("root.sg.d1.s1", Window::new(5, 8, 9, false), &[])),
            (vec![5, 8], ints(&[50, 81]))
        );
    }

    #[test]
    fn out_of_order_points_sort_and_dedupe_by_version() {
        let mut m = Memtable::default();
        m.apply(1, v(10), &insert(vec![5, 1, 3], vec![50, 10, 30]))
            .unwrap();
        m.apply(2, v(5), &insert(vec![3], vec![-1])).unwrap();
        m.apply(3, v(20), &insert(vec![1], vec![11])).unwrap();
        let sorted = m.sorted_series();
        let (name, run) = &sorted[0];
        assert_eq!(name, "root.sg.d1.s1");
        assert_eq!(run.times, vec![1, 3, 5]);
        assert_eq!(run.values, ColumnValues::Int64(vec![11, 30, 50]));
        assert_eq!(m.points, 5);
    }

    #[test]
    fn limited_extraction_walks_from_either_end_and_skips_hidden_points() {
        for in_order in [true, false] {
            let mut m = Memtable::default();
            let (times, values) = if in_order {
                (vec![1, 2, 2, 3, 4, 5], vec![1, 2, 20, 3, 4, 5])
            } else {
                (vec![5, 2, 4, 1, 2, 3], vec![5, 2, 4, 1, 20, 3])
            };
            m.apply(1, v(10), &insert(times.clone(), values.clone()))
                .unwrap();
            // An overwrite of 2 with a higher version; an older one of 4 that must lose.
            m.apply(2, v(30), &insert(vec![2], vec![22])).unwrap();
            m.apply(3, v(5), &insert(vec![4], vec![-4])).unwrap();
            let hide_3 = [RangeTombstone {
                start: 3,
                end: 3,
                version: v(11),
            }];
            let take = |m: &Memtable, start, end, limit, descending| {
                let run = m
                    .extract(
                        "root.sg.d1.s1",
                        Window::new(start, end, limit, descending),
                        &hide_3,
                    )
                    .unwrap();
                (run.times, run.values)
            };
            assert_eq!(
                take(&m, i64::MIN, i64::MAX, 3, false),
                (vec![1, 2, 4], ColumnValues::Int64(vec![1, 22, 4]))
            );
            assert_eq!(
                take(&m, i64::MIN, i64::MAX, 2, true),
                (vec![5, 4], ColumnValues::Int64(vec![5, 4]))
            );
            assert_eq!(
                take(&m, 2, 4, 10, true),
                (vec![4, 2], ColumnValues::Int64(vec![4, 22]))
            );
            // Appending after a scan drops the cached order.
            m.apply(4, v(40), &insert(vec![0], vec![0])).unwrap();
            assert_eq!(take(&m, i64::MIN, 1, 10, false).0, vec![0, 1]);
        }
    }

    #[test]
    fn full_delete_frees_the_series_for_another_type() {
        let mut m = Memtable::default();
        m.apply(1, v(10), &insert(vec![1, 2], vec![1, 2])).unwrap();
        let delete = vec![Op::Delete(DeleteOp {
            series: vec!["root.sg.d1.s1".into()],
            start: i64::MIN,
            end: i64::MAX,
        })];
        m.apply(2, v(11), &delete).unwrap();
        assert!(m.series.is_empty());
        assert_eq!(m.points, 0);
        let text = vec![Op::Insert(InsertOp {
            device: "root.sg.d1".into(),
            aligned: false,
            measurements: vec!["s1".into()],
            columns: vec![Column::text(["a"])],
            times: vec![1],
        })];
        let mut pending = HashMap::new();
        m.check_types(&text, &mut pending).unwrap();
        m.apply(3, v(12), &text).unwrap();
        assert_eq!(m.data_type("root.sg.d1.s1"), Some(DataType::Text));
        assert!(m
            .check_types(&insert(vec![1], vec![1]), &mut HashMap::new())
            .is_err());
    }

    #[test]
    fn time_bounds_follow_appends_in_and_out_of_order_and_deletions() {
        let series = "root.sg.d1.s1";
        let mut m = Memtable::default();
        m.apply(1, v(1), &insert(vec![5, 6, 9], vec![5, 6, 9]))
            .unwrap();
        assert_eq!(m.time_bounds(series), Some((5, 9, DataType::Int64)));
        m.apply(2, v(2), &insert(vec![7, 2, 8], vec![7, 2, 8]))
            .unwrap();
        assert_eq!(m.time_bounds(series), Some((2, 9, DataType::Int64)));
        m.apply(3, v(3), &insert(vec![12], vec![12])).unwrap();
        assert_eq!(m.time_bounds(series), Some((2, 12, DataType::Int64)));
        // A deletion of both extremes: the bounds are those of the points left.
        for (start, end) in [(10, 20), (0, 4)] {
            let delete = vec![Op::Delete(DeleteOp {
                series: vec![series.into()],
                start,
                end,
            })];
            m.apply(4, v(4), &delete).unwrap();
        }
        assert_eq!(m.time_bounds(series), Some((5, 9, DataType::Int64)));
    }
}
