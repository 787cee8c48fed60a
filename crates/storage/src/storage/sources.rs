//! Which sources an aggregate's fold reads a series' range from ([`super::Storage::scan_values`]),
//! and how: when the sources holding points of the range (memtables, data files) cover disjoint
//! spans of time, their points are read one source after another in time order and concatenated —
//! no versions decoded, nothing merged — instead of the general merging scan.
//!
//! **Invariant:** a concatenation is only planned when no deletion of the series is recorded, every
//! source holds the series in one physical type, and the sources' whole spans for the series
//! (hidden points included) are pairwise disjoint: then each timestamp is held by exactly one source,
//! whose answer is already resolved (a memtable keeps the highest version of a timestamp; a data file
//! holds each timestamp once), so the sources' answers in time order are the merged scan's answer.
//!
//! Why it matters: a flush writes one data file per time partition (a week by default), so a series
//! of a few weeks is spread over several files even when nothing overlaps; the merging scan decoded
//! every point's version there and merged the files, several times slower than reading one file.

use std::sync::Arc;

use duet_proto::types::DataType;

use super::Tree;
use crate::datafile::DataFile;
use crate::error::Result;
use crate::memtable::Memtable;
use crate::run::{self, Run};

/// How `scan_values` answers.
pub(super) enum Plan {
    /// No source holds points of the series in the range.
    Empty,
    /// The sources in time order, each to be read for what is left of the limit.
    Concatenate(Vec<Source>),
    /// Sources overlap, deletions apply, or types differ: the general merging scan.
    Merge,
}

/// One source of a concatenation.
pub(super) enum Source {
    /// Points already taken from the active memtable (it cannot be held past the tree's lock).
    Taken(Run),
    Frozen(Arc<Memtable>),
    File(Arc<DataFile>),
}

/// A candidate source with its span for the series and the physical type of its points.
struct Span {
    first: i64,
    last: i64,
    physical: Option<DataType>,
    source: Candidate,
}

enum Candidate {
    Active,
    Frozen(Arc<Memtable>),
    File(Arc<DataFile>),
}

/// Plans `scan_values(series, start, end, limit)` under the tree's read lock; the active memtable's
/// points are taken here, everything else is read after the lock is released.
pub(super) fn plan(tree: &Tree, series: &str, start: i64, end: i64, limit: usize) -> Plan {
    let memtables = std::iter::once(&tree.active).chain(tree.frozen.iter().map(|m| &**m));
    let deleted = tree.tombstones.contains_key(series)
        || memtables
            .clone()
            .any(|m| !m.tombstones_for(series).is_empty());
    if deleted {
        return Plan::Merge;
    }
    let held: Vec<(&Memtable, Candidate)> = std::iter::once((&tree.active, Candidate::Active))
        .chain(
            tree.frozen
                .iter()
                .map(|m| (&**m, Candidate::Frozen(Arc::clone(m)))),
        )
        .filter(|(m, _)| m.may_hold(series, start, end))
        .collect();
    let files: Vec<&Arc<DataFile>> = tree
        .files
        .iter()
        .filter(|f| {
            f.series_range(series)
                .is_some_and(|r| r.min_time <= end && start <= r.max_time)
        })
        .collect();
    let mut spans: Vec<Span> = Vec::with_capacity(held.len() + files.len());
    let alone = held.len() + files.len() == 1;
    for (memtable, candidate) in held {
        // A single source needs no span: the bounds of a series written out of time order cost a
        // pass over its points.
        let (first, last, data_type) = if alone {
            (start, end, None)
        } else {
            match memtable.time_bounds(series) {
                Some((first, last, t)) => (first, last, Some(t.physical())),
                None => continue,
            }
        };
        spans.push(Span {
            first,
            last,
            physical: data_type,
            source: candidate,
        });
    }
    for file in files {
        if let Some(range) = file.series_range(series) {
            spans.push(Span {
                first: range.min_time,
                last: range.max_time,
                physical: DataType::from_code(i32::from(range.data_type)).map(|t| t.physical()),
                source: Candidate::File(Arc::clone(file)),
            });
        }
    }
    if spans.is_empty() {
        return Plan::Empty;
    }
    spans.sort_by_key(|s| s.first);
    let physical = spans.first().and_then(|s| s.physical);
    let one_type =
        spans.len() == 1 || (physical.is_some() && spans.iter().all(|s| s.physical == physical));
    let disjoint = spans.windows(2).all(|w| match w {
        [a, b] => a.last < b.first,
        _ => true,
    });
    if !one_type || !disjoint {
        return Plan::Merge;
    }
    Plan::Concatenate(
        spans
            .into_iter()
            .filter_map(|span| match span.source {
                Candidate::Active => tree
                    .active
                    .extract_values(series, start, end, limit)
                    .map(Source::Taken),
                Candidate::Frozen(m) => Some(Source::Frozen(m)),
                Candidate::File(f) => Some(Source::File(f)),
            })
            .collect(),
    )
}

/// Reads `sources` in order for the points of `series` in `[start, end]`, each for what is left
/// of `limit`, and concatenates them. A single source's answer is passed on as it is (with the
/// versions a file read may have needed); several are joined without versions.
pub(super) fn concatenate(
    sources: Vec<Source>,
    series: &str,
    start: i64,
    end: i64,
    limit: usize,
) -> Result<Option<Run>> {
    let mut out: Option<Run> = None;
    let several = sources.len() > 1;
    for source in sources {
        let taken = out.as_ref().map_or(0, Run::len);
        let Some(left) = limit.checked_sub(taken).filter(|n| *n > 0) else {
            break;
        };
        let run = match source {
            Source::Taken(run) => Some(run),
            Source::Frozen(memtable) => memtable.extract_values(series, start, end, left),
            Source::File(file) => file.read_values(series, start, end, left)?,
        };
        let Some(mut run) = run else {
            continue;
        };
        if several {
            run.versions.clear();
        }
        match out.as_mut() {
            None => out = Some(run),
            Some(all) => {
                all.times.extend_from_slice(&run.times);
                run::extend_values(&mut all.values, &run.values, 0..run.len());
            }
        }
    }
    Ok(out)
}
