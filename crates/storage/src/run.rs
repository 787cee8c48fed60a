//! Runs of one series' points and the merge that turns overlapping runs into a scan result.
//!
//! Every source of points (the active memtable, frozen memtables, data files) hands a scan a [`Run`];
//! the merge applies the rules that make two instances converge: per timestamp the highest version
//! wins, and a tombstone hides points with a lower version in its range.

use duet_proto::types::{Column, ColumnValues, DataType};

use crate::types::{RangeTombstone, Version};

/// Which points of a series a scan takes from a source: at most `limit` distinct timestamps in
/// `[start, end]`, counted from the start of the range, or from its end when `descending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    pub limit: usize,
    pub descending: bool,
}

impl Window {
    pub(crate) fn new(start: i64, end: i64, limit: usize, descending: bool) -> Window {
        Window {
            start,
            end,
            limit,
            descending,
        }
    }
}

/// Points of one series from one source, in no particular order unless a caller says so.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub data_type: DataType,
    pub times: Vec<i64>,
    pub versions: Vec<Version>,
    /// No nulls: one value per point, of `data_type`'s physical class.
    pub values: ColumnValues,
}

impl Run {
    pub(crate) fn empty(data_type: DataType) -> Run {
        Run {
            data_type,
            times: Vec::new(),
            versions: Vec::new(),
            values: ColumnValues::empty_for(data_type),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    /// Reverses the order of the points.
    pub(crate) fn reverse(&mut self) {
        self.times.reverse();
        self.versions.reverse();
        match &mut self.values {
            ColumnValues::Boolean(v) => v.reverse(),
            ColumnValues::Int32(v) => v.reverse(),
            ColumnValues::Int64(v) => v.reverse(),
            ColumnValues::Float(v) => v.reverse(),
            ColumnValues::Double(v) => v.reverse(),
            ColumnValues::Binary(v) => v.reverse(),
        }
    }

    /// Drops the points before `floor` (expired by a TTL).
    pub(crate) fn drop_before(&mut self, floor: i64) {
        if self.times.iter().all(|t| *t >= floor) {
            return;
        }
        let keep: Vec<bool> = self.times.iter().map(|t| *t >= floor).collect();
        retain_values(&mut self.values, &keep);
        let mut row = 0;
        self.versions.retain(|_| {
            row += 1;
            keep[row - 1]
        });
        self.times.retain(|t| *t >= floor);
    }
}

/// The points of one series in a time range, merged over every source.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChunk {
    /// The type of the returned values; `None` when the series has no visible point.
    pub data_type: Option<DataType>,
    pub times: Vec<i64>,
    /// One value per point, no nulls.
    pub values: Column,
    pub versions: Vec<Version>,
}

impl SeriesChunk {
    /// A chunk without points.
    pub fn empty() -> SeriesChunk {
        SeriesChunk {
            data_type: None,
            times: Vec::new(),
            values: Column {
                data_type: DataType::Int64,
                nulls: None,
                values: ColumnValues::Int64(Vec::new()),
            },
            versions: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Appends `src[row]` to `dst`; both must be of the same physical class (callers group by it).
pub(crate) fn push_value(dst: &mut ColumnValues, src: &ColumnValues, row: usize) {
    match (dst, src) {
        (ColumnValues::Boolean(d), ColumnValues::Boolean(s)) => d.extend(s.get(row).copied()),
        (ColumnValues::Int32(d), ColumnValues::Int32(s)) => d.extend(s.get(row).copied()),
        (ColumnValues::Int64(d), ColumnValues::Int64(s)) => d.extend(s.get(row).copied()),
        (ColumnValues::Float(d), ColumnValues::Float(s)) => d.extend(s.get(row).copied()),
        (ColumnValues::Double(d), ColumnValues::Double(s)) => d.extend(s.get(row).copied()),
        (ColumnValues::Binary(d), ColumnValues::Binary(s)) => d.extend(s.get(row).cloned()),
        _ => {}
    }
}

/// Appends `src[range]` to `dst` (same physical class).
pub(crate) fn extend_values(
    dst: &mut ColumnValues,
    src: &ColumnValues,
    range: std::ops::Range<usize>,
) {
    match (dst, src) {
        (ColumnValues::Boolean(d), ColumnValues::Boolean(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        (ColumnValues::Int32(d), ColumnValues::Int32(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        (ColumnValues::Int64(d), ColumnValues::Int64(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        (ColumnValues::Float(d), ColumnValues::Float(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        (ColumnValues::Double(d), ColumnValues::Double(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        (ColumnValues::Binary(d), ColumnValues::Binary(s)) => {
            d.extend_from_slice(s.get(range).unwrap_or_default())
        }
        _ => {}
    }
}

/// Keeps only the rows of `values` whose index satisfies `keep`.
pub(crate) fn retain_values(values: &mut ColumnValues, keep: &[bool]) {
    fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
        let mut row = 0;
        v.retain(|_| {
            let k = keep.get(row).copied().unwrap_or(true);
            row += 1;
            k
        });
    }
    match values {
        ColumnValues::Boolean(v) => retain(v, keep),
        ColumnValues::Int32(v) => retain(v, keep),
        ColumnValues::Int64(v) => retain(v, keep),
        ColumnValues::Float(v) => retain(v, keep),
        ColumnValues::Double(v) => retain(v, keep),
        ColumnValues::Binary(v) => retain(v, keep),
    }
}

/// Bytes a value of `values` at `row` occupies in memory, for memtable accounting.
pub(crate) fn value_bytes(values: &ColumnValues, row: usize) -> usize {
    match values {
        ColumnValues::Boolean(_) => 1,
        ColumnValues::Int32(_) | ColumnValues::Float(_) => 4,
        ColumnValues::Int64(_) | ColumnValues::Double(_) => 8,
        ColumnValues::Binary(v) => v.get(row).map_or(0, |b| b.len() + 24),
    }
}

/// True when one of `tombstones` hides the point.
pub(crate) fn hidden(tombstones: &[RangeTombstone], time: i64, version: Version) -> bool {
    tombstones.iter().any(|t| t.hides(time, version))
}

/// Tombstones arranged to say whether a point is hidden in O(log n) instead of O(n): for each
/// stretch of time, the newest version of the tombstones covering it (a point is hidden when its
/// version is older). A series with thousands of deletes made merges scan every tombstone for
/// every point; merges then outlasted the time between restarts in the fault soak, flushes waited
/// for them, and an instance's log grew until it no longer started in time.
pub(crate) struct TombstoneIndex<'a> {
    tombstones: &'a [RangeTombstone],
    /// Points asked about so far: a short scan (a LAST, a small page) never pays for the index.
    asked: usize,
    /// Start of each stretch, ascending, and the newest covering version from there on; built
    /// once enough points were asked about.
    stretches: Option<(Vec<i64>, Vec<Option<Version>>)>,
}

/// Below this many tombstones, or this many points asked about, a plain scan is cheaper.
const INDEX_FROM: usize = 16;

impl<'a> TombstoneIndex<'a> {
    pub(crate) fn new(tombstones: &'a [RangeTombstone]) -> TombstoneIndex<'a> {
        TombstoneIndex {
            tombstones,
            asked: 0,
            stretches: None,
        }
    }

    /// True when no tombstone can hide anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.tombstones.is_empty()
    }

    /// True when a tombstone hides the point.
    pub(crate) fn hides(&mut self, time: i64, version: Version) -> bool {
        if self.stretches.is_none() {
            self.asked += 1;
            if self.tombstones.len() < INDEX_FROM || self.asked < INDEX_FROM {
                return hidden(self.tombstones, time, version);
            }
            self.stretches = Some(stretches(self.tombstones));
        }
        let Some((starts, newest)) = &self.stretches else {
            return hidden(self.tombstones, time, version);
        };
        let stretch = starts.partition_point(|start| *start <= time);
        stretch > 0
            && newest
                .get(stretch - 1)
                .copied()
                .flatten()
                .is_some_and(|newest| version < newest)
    }
}

/// Each tombstone opens at `start` and closes after `end`: sweeping the events in time order while
/// keeping the versions of the open ones gives, per stretch, the newest covering version.
fn stretches(tombstones: &[RangeTombstone]) -> (Vec<i64>, Vec<Option<Version>>) {
    let mut events: Vec<(i64, bool, Version)> = Vec::with_capacity(2 * tombstones.len());
    for t in tombstones {
        events.push((t.start, true, t.version));
        if let Some(after) = t.end.checked_add(1) {
            events.push((after, false, t.version));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut open: std::collections::BTreeMap<Version, usize> = Default::default();
    let mut starts = Vec::new();
    let mut newest = Vec::new();
    let mut i = 0;
    while let Some(&(at, _, _)) = events.get(i) {
        while let Some(&(time, opens, version)) = events.get(i) {
            if time != at {
                break;
            }
            if opens {
                *open.entry(version).or_insert(0) += 1;
            } else if let Some(n) = open.get_mut(&version) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&version);
                }
            }
            i += 1;
        }
        starts.push(at);
        newest.push(open.keys().next_back().copied());
    }
    (starts, newest)
}

/// Sorts a run by time and keeps, per timestamp, the point with the highest version. Tombstones are
/// applied when given (a hidden winner means every point at that time is hidden: they are all older).
/// [`resolve`] without tombstones, taking the runs: the common case of a scan — one source, already
/// in strict time order (every source yields one point per timestamp) — is handed back as it is,
/// with no sort and no per-point copy.
pub(crate) fn resolve_owned(mut runs: Vec<Run>) -> Option<Run> {
    runs.retain(|r| r.len() > 0);
    // Every source yields one point per timestamp in scan order; put each in ascending order.
    let mut monotonic = true;
    for run in &mut runs {
        if run.times.windows(2).all(|w| w[0] > w[1]) {
            run.reverse();
        }
        monotonic &= run.times.windows(2).all(|w| w[0] < w[1]);
    }
    if runs.len() == 1 && monotonic {
        return runs.pop();
    }
    let one_type = runs.windows(2).all(|w| w[0].data_type == w[1].data_type);
    if !monotonic || !one_type || runs.is_empty() {
        return resolve(&runs, &[]);
    }
    // Sources that follow one another in time (adjacent files, a file and the memtable after it)
    // are concatenated; overlapping ones merged by time, the highest version winning a timestamp
    // (the earlier source on a tie, as `resolve` does).
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|i| runs.get(*i).and_then(|r| r.times.first().copied()));
    let disjoint = order.windows(2).all(|w| {
        let last = runs.get(w[0]).and_then(|r| r.times.last());
        let first = runs.get(w[1]).and_then(|r| r.times.first());
        last < first
    });
    let data_type = runs.first()?.data_type;
    let total = runs.iter().map(Run::len).sum();
    let mut out = Run::empty(data_type);
    out.times.reserve(total);
    out.versions.reserve(total);
    if disjoint {
        for i in order {
            let Some(run) = runs.get(i) else { continue };
            out.times.extend_from_slice(&run.times);
            out.versions.extend_from_slice(&run.versions);
            extend_values(&mut out.values, &run.values, 0..run.len());
        }
        return Some(out);
    }
    let mut heads = vec![0usize; runs.len()];
    loop {
        let mut best: Option<(i64, Version, usize)> = None;
        for (r, run) in runs.iter().enumerate() {
            let Some((t, v)) = heads
                .get(r)
                .and_then(|h| Some((*run.times.get(*h)?, *run.versions.get(*h)?)))
            else {
                continue;
            };
            let better = match best {
                None => true,
                Some((bt, bv, _)) => t < bt || (t == bt && v > bv),
            };
            if better {
                best = Some((t, v, r));
            }
        }
        let Some((t, v, r)) = best else { break };
        out.times.push(t);
        out.versions.push(v);
        if let (Some(run), Some(h)) = (runs.get(r), heads.get(r)) {
            push_value(&mut out.values, &run.values, *h);
        }
        for (run, h) in runs.iter().zip(heads.iter_mut()) {
            if run.times.get(*h) == Some(&t) {
                *h += 1;
            }
        }
    }
    Some(out)
}

pub(crate) fn resolve(runs: &[Run], tombstones: &[RangeTombstone]) -> Option<Run> {
    let total: usize = runs.iter().map(Run::len).sum();
    let mut candidates: Vec<(i64, Version, u32, u32)> = Vec::with_capacity(total);
    for (r, run) in runs.iter().enumerate() {
        for (row, (t, v)) in run.times.iter().zip(&run.versions).enumerate() {
            candidates.push((*t, *v, r as u32, row as u32));
        }
    }
    if candidates.is_empty() {
        return None;
    }
    candidates.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    candidates.dedup_by_key(|c| c.0);
    if !tombstones.is_empty() {
        let mut index = TombstoneIndex::new(tombstones);
        candidates.retain(|(t, v, _, _)| !index.hides(*t, *v));
    }
    // A series normally has one type. After a drop and re-create with another type, older points of
    // the old type can only survive if no full-range tombstone hid them; keep the newest type's points.
    let newest = candidates.iter().max_by_key(|c| c.1)?;
    let data_type = runs.get(newest.2 as usize)?.data_type;
    let physical = data_type.physical();
    let mut out = Run::empty(data_type);
    out.times.reserve(candidates.len());
    out.versions.reserve(candidates.len());
    for (t, v, r, row) in candidates {
        let Some(run) = runs.get(r as usize) else {
            continue;
        };
        if run.data_type.physical() != physical {
            continue;
        }
        out.times.push(t);
        out.versions.push(v);
        push_value(&mut out.values, &run.values, row as usize);
    }
    Some(out)
}

/// The final shape of a scan: at most `limit` points, ascending or descending.
pub(crate) fn into_chunk(run: Option<Run>, limit: usize, descending: bool) -> SeriesChunk {
    let Some(run) = run else {
        return SeriesChunk::empty();
    };
    let n = run.len().min(limit);
    if !descending && n == run.len() {
        return SeriesChunk {
            data_type: Some(run.data_type),
            times: run.times,
            values: Column {
                data_type: run.data_type,
                nulls: None,
                values: run.values,
            },
            versions: run.versions,
        };
    }
    let mut chunk = SeriesChunk {
        data_type: Some(run.data_type),
        times: Vec::with_capacity(n),
        values: Column {
            data_type: run.data_type,
            nulls: None,
            values: ColumnValues::empty_for(run.data_type),
        },
        versions: Vec::with_capacity(n),
    };
    if descending {
        let len = run.len();
        for row in (len.saturating_sub(n)..len).rev() {
            chunk.times.extend(run.times.get(row));
            chunk.versions.extend(run.versions.get(row));
            push_value(&mut chunk.values.values, &run.values, row);
        }
    } else {
        chunk
            .times
            .extend_from_slice(run.times.get(..n).unwrap_or_default());
        chunk
            .versions
            .extend_from_slice(run.versions.get(..n).unwrap_or_default());
        extend_values(&mut chunk.values.values, &run.values, 0..n);
    }
    chunk
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift) so the comparison covers many shapes.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn version(hlc: u64) -> Version {
        Version { hlc, instance: 1 }
    }

    #[test]
    fn merging_sorted_sources_agrees_with_the_general_resolve() {
        let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
        for round in 0..300 {
            let n_runs = 1 + rng.below(4) as usize;
            // Half the rounds place the sources one after another in time (the concatenation
            // case), the other half let them overlap; some sources are in descending order.
            let disjoint = round % 2 == 0;
            let runs: Vec<Run> = (0..n_runs)
                .map(|r| {
                    let base = if disjoint { r as i64 * 1000 } else { 0 };
                    let mut times: Vec<i64> = (0..rng.below(40))
                        .map(|_| base + rng.below(if disjoint { 900 } else { 60 }) as i64)
                        .collect();
                    times.sort_unstable();
                    times.dedup();
                    let versions: Vec<Version> =
                        times.iter().map(|_| version(rng.below(5))).collect();
                    let values =
                        ColumnValues::Int64(times.iter().map(|t| t * 10 + r as i64).collect());
                    let mut run = Run {
                        data_type: DataType::Int64,
                        times,
                        versions,
                        values,
                    };
                    if rng.below(3) == 0 {
                        run.reverse();
                    }
                    run
                })
                .collect();
            let general = resolve(&runs, &[]).map(|r| (r.times, r.versions, r.values));
            let merged = resolve_owned(runs.clone()).map(|r| (r.times, r.versions, r.values));
            assert_eq!(merged, general, "round {round}: {runs:?}");
        }
    }

    #[test]
    fn the_tombstone_index_agrees_with_a_scan_of_every_tombstone() {
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let n = rng.below(80) as usize;
            let mut tombstones: Vec<RangeTombstone> = (0..n)
                .map(|_| {
                    let start = rng.below(1000) as i64 - 100;
                    let len = rng.below(200) as i64;
                    RangeTombstone {
                        start,
                        end: start + len,
                        version: version(rng.below(50)),
                    }
                })
                .collect();
            if round % 10 == 0 {
                // Open-ended and full-range tombstones, as DELETE without bounds makes them.
                tombstones.push(RangeTombstone {
                    start: i64::MIN,
                    end: i64::MAX,
                    version: version(rng.below(50)),
                });
                tombstones.push(RangeTombstone {
                    start: 500,
                    end: i64::MAX,
                    version: version(rng.below(50)),
                });
            }
            let mut index = TombstoneIndex::new(&tombstones);
            for _ in 0..300 {
                let time = rng.below(1400) as i64 - 200;
                let v = version(rng.below(55));
                assert_eq!(
                    index.hides(time, v),
                    hidden(&tombstones, time, v),
                    "round {round}: time {time}, version {v:?}, {} tombstones",
                    tombstones.len()
                );
            }
            for extreme in [i64::MIN, i64::MAX] {
                let v = version(0);
                assert_eq!(index.hides(extreme, v), hidden(&tombstones, extreme, v));
            }
        }
    }

    /// Measures (not a check): asking about 200,000 points against 5,000 tombstones by a scan of
    /// every tombstone versus through the index. `cargo test --release -p duet-storage --lib
    /// bench_tombstones -- --ignored --nocapture`.
    #[test]
    #[ignore]
    #[allow(clippy::print_stdout)]
    fn bench_tombstones() {
        let mut rng = Xorshift(42);
        let tombstones: Vec<RangeTombstone> = (0..5_000)
            .map(|_| {
                let start = rng.below(1_000_000) as i64;
                RangeTombstone {
                    start,
                    end: start + rng.below(500) as i64,
                    version: version(rng.below(1_000)),
                }
            })
            .collect();
        let points: Vec<(i64, Version)> = (0..200_000)
            .map(|i| (i * 5, version(rng.below(1_000))))
            .collect();
        let started = std::time::Instant::now();
        let scanned = points
            .iter()
            .filter(|(t, v)| hidden(&tombstones, *t, *v))
            .count();
        let scan = started.elapsed();
        let started = std::time::Instant::now();
        let mut index = TombstoneIndex::new(&tombstones);
        let indexed = points.iter().filter(|(t, v)| index.hides(*t, *v)).count();
        let indexed_time = started.elapsed();
        assert_eq!(scanned, indexed);
        println!("hidden {scanned} of 200000 points, 5000 tombstones: scan {scan:?}, index {indexed_time:?}");
    }
}
