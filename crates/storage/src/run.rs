//! Runs of one series' points and the merge that turns overlapping runs into a scan result.
//!
//! Every source of points (the active memtable, frozen memtables, data files) hands a scan a [`Run`];
//! the merge applies the rules that make two instances converge: per timestamp the highest version
//! wins, and a tombstone hides points with a lower version in its range.

use duet_proto::types::{Column, ColumnValues, DataType};

use crate::types::{RangeTombstone, Version};

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
    pub(crate) fn empty() -> SeriesChunk {
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

/// Sorts a run by time and keeps, per timestamp, the point with the highest version. Tombstones are
/// applied when given (a hidden winner means every point at that time is hidden: they are all older).
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
        candidates.retain(|(t, v, _, _)| !tombstones.iter().any(|tomb| tomb.hides(*t, *v)));
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
