//! Immutable data files: Apache Parquet, one per (flush, time partition), readable by any Parquet tool.
//!
//! Rows are sorted by (series, time), one row per point, with these columns:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `series` | utf8 | full series path, `root.sg.d1.s1` (dictionary-encoded by Parquet) |
//! | `time` | int64 | timestamp in the instance's precision |
//! | `version_hlc` | uint64 | hybrid logical clock of the write |
//! | `version_instance` | uint64 | instance that first accepted the write |
//! | `data_type` | uint8 | IoTDB type code (0 BOOLEAN, 1 INT32, 2 INT64, 3 FLOAT, 4 DOUBLE, 5 TEXT, 8 TIMESTAMP, 9 DATE, 10 BLOB, 11 STRING) |
//! | `v_boolean`, `v_int32`, `v_int64`, `v_float`, `v_double`, `v_binary` | nullable | the value, in the column of its physical type; the others are null |
//!
//! Every file has all six value columns (all-null ones cost a few bytes), so a directory of files
//! reads as one table in pandas, pyarrow or DuckDB. Each file's per-series row ranges and time bounds
//! live in the manifest, so a scan skips files without opening them and reads only its series' rows.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema, SchemaRef};
use duet_proto::types::{ColumnValues, DataType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::data_type::Int64Type;
use parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader, SortingColumn,
};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::decode::{LeafCursor, TimeCursor, ValueCursor};
use crate::error::{Error, Result};
use crate::prefetch::{self, Prefetched};
use crate::run::{self, Run, Window};
use crate::stats::{self, SeriesStats};
use crate::types::{Lsn, RangeTombstone, Version};

/// Width of a time partition in timestamp units: 7 days at millisecond precision (the default).
pub const PARTITION_WIDTH: i64 = 7 * 24 * 3600 * 1000;

pub(crate) fn partition_of(time: i64) -> i64 {
    time.div_euclid(PARTITION_WIDTH)
}

const COL_SERIES: &str = "series";
const COL_TIME: &str = "time";
const COL_HLC: &str = "version_hlc";
const COL_INSTANCE: &str = "version_instance";
const COL_TYPE: &str = "data_type";

fn value_column(physical: DataType) -> &'static str {
    match physical {
        DataType::Boolean => "v_boolean",
        DataType::Int32 => "v_int32",
        DataType::Int64 => "v_int64",
        DataType::Float => "v_float",
        DataType::Double => "v_double",
        _ => "v_binary",
    }
}

/// The Arrow schema of every data file.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES, ArrowType::Utf8, false),
        Field::new(COL_TIME, ArrowType::Int64, false),
        Field::new(COL_HLC, ArrowType::UInt64, false),
        Field::new(COL_INSTANCE, ArrowType::UInt64, false),
        Field::new(COL_TYPE, ArrowType::UInt8, false),
        Field::new("v_boolean", ArrowType::Boolean, true),
        Field::new("v_int32", ArrowType::Int32, true),
        Field::new("v_int64", ArrowType::Int64, true),
        Field::new("v_float", ArrowType::Float32, true),
        Field::new("v_double", ArrowType::Float64, true),
        Field::new("v_binary", ArrowType::Binary, true),
    ]))
}

/// What the manifest records about one data file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FileMeta {
    pub id: u64,
    pub partition: i64,
    /// Relative to the storage directory.
    pub path: String,
    pub min_time: i64,
    pub max_time: i64,
    /// The highest LSN whose points may be in this file.
    pub max_lsn: Lsn,
    pub max_hlc: u64,
    pub n_rows: u64,
    pub series: Vec<SeriesRange>,
}

/// Where one series' rows are in a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SeriesRange {
    pub series: String,
    /// IoTDB type code of the series' points in this file.
    pub data_type: u8,
    pub min_time: i64,
    pub max_time: i64,
    pub first_row: u64,
    pub n_rows: u64,
    /// Rows between entries of `time_index`; 0 when there is no index (manifests written before it
    /// existed, and series short enough that their whole slice is one read anyway).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_stride: u64,
    /// The time of the series' rows `0, stride, 2 * stride, ...` (relative to `first_row`). Rows of
    /// a series are time-sorted within a file, so a scan finds the rows of a time range, or the
    /// last rows before its end, without reading the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_index: Vec<i64>,
    /// The summary of the series' points here; absent in manifests written before summaries
    /// existed and for series that cannot have one (text, non-finite floats): those are scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<SeriesStats>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Rows per entry of a series' sparse time index: one entry per typical scan chunk.
pub(crate) const INDEX_STRIDE: u64 = 4096;

impl SeriesRange {
    /// The rows (relative to `first_row`) that can hold times in `[start, end]`: all of them
    /// without an index, otherwise the index entries around the range (at most a stride too many
    /// on each side; the reader filters by time anyway).
    fn rows_for(&self, start: i64, end: i64) -> (u64, u64) {
        let stride = self.index_stride;
        if stride == 0 || self.time_index.is_empty() {
            return (0, self.n_rows);
        }
        // Entries before `lo` are < start and so are all rows before its row; entries from `hi` on
        // are > end and so are all rows from its row.
        let lo = self
            .time_index
            .partition_point(|t| *t < start)
            .saturating_sub(1);
        let hi = self.time_index.partition_point(|t| *t <= end);
        let first = (lo as u64).saturating_mul(stride).min(self.n_rows);
        let past = (hi as u64).saturating_mul(stride).min(self.n_rows);
        (first, past.max(first))
    }
}

/// A data file ready to scan: its manifest record plus a lookup by series.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub meta: FileMeta,
    pub abs_path: PathBuf,
    by_series: HashMap<String, usize>,
    /// The Parquet footer, parsed on first use and kept: files are immutable, and a query scans
    /// many series of the same file.
    footer: OnceLock<Arc<ParquetMetaData>>,
    /// Set once a compaction replaced this file in the manifest: the file is deleted when the last
    /// holder (the tree, or a scan that picked it up before the swap) lets go.
    obsolete: AtomicBool,
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // A failure leaves an orphan that the next open removes (no manifest names it).
            if let Err(e) = std::fs::remove_file(&self.abs_path) {
                tracing::warn!(file = %self.abs_path.display(), error = %e, "removing a compacted data file failed");
            }
        }
    }
}

/// What [`crate::Storage::data_files`] reports about one data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileInfo {
    pub path: PathBuf,
    pub partition: i64,
    pub min_time: i64,
    pub max_time: i64,
    /// Every entry with an LSN at or below this one that touched these rows is in the file.
    pub max_lsn: Lsn,
    pub n_rows: u64,
}

impl DataFile {
    pub(crate) fn new(meta: FileMeta, root: &Path) -> DataFile {
        let by_series = meta
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.series.clone(), i))
            .collect();
        DataFile {
            abs_path: root.join(&meta.path),
            meta,
            by_series,
            footer: OnceLock::new(),
            obsolete: AtomicBool::new(false),
        }
    }

    /// Deletes the file once nothing holds it any more (call only after the manifest stopped naming it).
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    pub(crate) fn info(&self) -> DataFileInfo {
        DataFileInfo {
            path: self.abs_path.clone(),
            partition: self.meta.partition,
            min_time: self.meta.min_time,
            max_time: self.meta.max_time,
            max_lsn: self.meta.max_lsn,
            n_rows: self.meta.n_rows,
        }
    }

    pub(crate) fn series_range(&self, series: &str) -> Option<&SeriesRange> {
        self.by_series
            .get(series)
            .and_then(|i| self.meta.series.get(*i))
    }

    /// Up to `limit` distinct timestamps of the series in `[start, end]` from the scan's starting
    /// end, skipping points `tombstones` hide, read from only its rows and columns: the sparse time
    /// index narrows the rows to the range, and the rows are read in windows from the starting end
    /// (about `limit` rows first, doubling while tombstones hide some) until `limit` are found.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read(
        &self,
        series: &str,
        window: Window,
        tombstones: &[RangeTombstone],
    ) -> Result<Option<Run>> {
        self.read_with(series, window, tombstones, true)
    }

    /// `read` ascending without deletions for a caller that needs no versions (the file is the
    /// scan's only source): the version columns are neither decoded nor copied, and the run's
    /// `versions` is empty — unless the rows are not in strict time order (not written by this
    /// crate), which are read again with them.
    pub(crate) fn read_values(
        &self,
        series: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Option<Run>> {
        self.read_with(series, Window::new(start, end, limit, false), &[], false)
    }

    fn read_with(
        &self,
        series: &str,
        wanted: Window,
        tombstones: &[RangeTombstone],
        versions: bool,
    ) -> Result<Option<Run>> {
        let (start, end) = (wanted.start, wanted.end);
        let (limit, descending) = (wanted.limit, wanted.descending);
        let Some(range) = self.series_range(series) else {
            return Ok(None);
        };
        if range.max_time < start || range.min_time > end || range.n_rows == 0 || limit == 0 {
            return Ok(None);
        }
        let data_type = DataType::from_code(i32::from(range.data_type)).ok_or_else(|| {
            self.corrupt(format!(
                "unknown data type code {} for {series}",
                range.data_type
            ))
        })?;
        let (lo, hi) = range.rows_for(start, end);
        let mut window = u64::try_from(limit)
            .unwrap_or(u64::MAX)
            .saturating_add(range.index_stride.max(1));
        let mut take = Take {
            start,
            end,
            limit,
            descending,
            tombstones: run::TombstoneIndex::new(tombstones),
            taken: 0,
            last: None,
            run: Run::empty(data_type),
            versions,
            needs_versions: false,
        };
        let (mut from, mut past) = (lo, hi);
        while from < past && !take.done() && !take.needs_versions {
            let rows = if descending {
                let rows = past.saturating_sub(window).max(from)..past;
                past = rows.start;
                rows
            } else {
                let rows = from..from.saturating_add(window).min(past);
                from = rows.end;
                rows
            };
            let rows = range.first_row + rows.start..range.first_row + rows.end;
            if !versions && !descending && tombstones.is_empty() {
                self.take_ascending(data_type, rows, &mut take)?;
            } else {
                let block = self.read_rows(data_type, rows, versions)?;
                self.append_rows(&block, &mut take)?;
            }
            window = window.saturating_mul(2);
        }
        if take.needs_versions {
            return self.read_with(series, wanted, tombstones, true);
        }
        Ok(Some(take.run))
    }

    /// The file with the pages of `columns` holding `rows` (absolute row numbers) read ahead, and
    /// its footer.
    fn open(
        &self,
        columns: &[&str],
        rows: &std::ops::Range<u64>,
    ) -> Result<(Arc<Prefetched>, Arc<ParquetMetaData>)> {
        let file = File::open(&self.abs_path)?;
        let footer = match self.footer.get() {
            Some(footer) => Arc::clone(footer),
            None => {
                // The offset index lets the reader skip the pages outside the selected rows.
                let footer = ParquetMetaDataReader::new()
                    .with_offset_index_policy(PageIndexPolicy::Optional)
                    .parse_and_finish(&file)?;
                Arc::clone(self.footer.get_or_init(|| Arc::new(footer)))
            }
        };
        let ranges = prefetch::page_ranges(&footer, columns, rows.clone());
        Ok((Arc::new(Prefetched::new(file, ranges)?), footer))
    }

    /// The ascending read without versions or deletions, decoded straight into `take`'s run: the
    /// times of `rows` (absolute row numbers) a page's worth at a time, until the limit is reached
    /// or a time passes the range's end (rows before its start are skipped without moving the kept
    /// ones), and the values of the rows kept, read from the pages holding them. Each piece of
    /// times is checked to ascend strictly (while it is in the cache, unless the cursor generated
    /// it from arithmetic pages); otherwise (not written by this crate) `needs_versions` is set,
    /// taking nothing.
    fn take_ascending(
        &self,
        data_type: DataType,
        rows: std::ops::Range<u64>,
        take: &mut Take<'_>,
    ) -> Result<()> {
        let name = value_column(data_type.physical());
        // The time pages first; the value pages once the rows kept are known (the window reads up
        // to a stride of rows more than the limit takes).
        let (file, footer) = self.open(&[COL_TIME], &rows)?;
        let path: Arc<Path> = Arc::from(self.abs_path.as_path());
        let mut times = TimeCursor::new(&file, &footer, COL_TIME, rows.clone(), &path)?;
        let total = rows.end - rows.start;
        let wanted = u64::try_from(take.limit - take.taken).unwrap_or(u64::MAX);
        let base = take.run.times.len();
        take.run
            .times
            .reserve(usize::try_from(total.min(wanted)).unwrap_or(0));
        let (mut read, mut skipped) = (0u64, 0u64);
        // The last time read: each piece must go on strictly past it.
        let mut previous = take.last;
        let mut ordered = true;
        // `known`: the cursor generated the piece from arithmetic pages, each past the one before.
        let mut follows = |piece: &[i64], known: bool, previous: &mut Option<i64>| {
            ordered &= (known || strictly_ascending(piece))
                && match (*previous, piece.first()) {
                    (Some(before), Some(first)) => *first > before,
                    _ => true,
                };
            if let Some(last) = piece.last() {
                *previous = Some(*last);
            }
        };
        let mut piece = Vec::new();
        while read < total {
            let k = (total - read).min(INDEX_STRIDE);
            piece.clear();
            times.read(k, &mut piece)?;
            read += k;
            let p = piece.partition_point(|t| *t < take.start);
            skipped += p as u64;
            follows(&piece, times.ascending(), &mut previous);
            if let Some(kept) = piece.get(p..).filter(|kept| !kept.is_empty()) {
                take.run.times.extend_from_slice(kept);
                break;
            }
        }
        loop {
            let kept = (take.run.times.len() - base) as u64;
            let past_end = take.run.times.last().is_some_and(|t| *t > take.end);
            if read >= total || kept >= wanted || past_end {
                break;
            }
            let k = (total - read).min(INDEX_STRIDE).min(wanted - kept);
            let from = take.run.times.len();
            times.read(k, &mut take.run.times)?;
            read += k;
            follows(
                take.run.times.get(from..).unwrap_or_default(),
                times.ascending(),
                &mut previous,
            );
        }
        if !ordered {
            take.run.times.truncate(base);
            take.needs_versions = true;
            return Ok(());
        }
        let new = take.run.times.get(base..).unwrap_or_default();
        let n = new
            .partition_point(|t| *t <= take.end)
            .min(take.limit - take.taken);
        take.run.times.truncate(base + n);
        if n > 0 {
            let first = rows.start + skipped;
            let kept = first..first + n as u64;
            let (file, footer) = self.open(&[name], &kept)?;
            ValueCursor::new(&file, &footer, name, data_type, kept, &path)?
                .read(n as u64, &mut take.run.values)?;
            take.taken += n;
            take.last = take.run.times.last().copied();
        }
        Ok(())
    }

    /// Reads rows `rows` (absolute row numbers) of the time, version and value columns. Without
    /// `versions`, only the time and value columns.
    fn read_rows(
        &self,
        data_type: DataType,
        rows: std::ops::Range<u64>,
        versions: bool,
    ) -> Result<Rows> {
        let name = value_column(data_type.physical());
        let wanted: &[&str] = if versions {
            &[COL_TIME, COL_HLC, COL_INSTANCE, name]
        } else {
            &[COL_TIME, name]
        };
        let (file, footer) = self.open(wanted, &rows)?;
        let path: Arc<Path> = Arc::from(self.abs_path.as_path());
        let n = rows.end - rows.start;
        let mut block = Rows {
            times: Vec::new(),
            hlcs: Vec::new(),
            instances: Vec::new(),
            values: ColumnValues::empty_for(data_type),
        };
        TimeCursor::new(&file, &footer, COL_TIME, rows.clone(), &path)?
            .read(n, &mut block.times)?;
        if versions {
            // Unsigned 64-bit columns are stored as Parquet INT64: the same bits.
            let mut raw = Vec::new();
            LeafCursor::<Int64Type>::new(&file, &footer, COL_HLC, rows.clone(), &path)?
                .read(n, &mut raw)?;
            block.hlcs = raw.iter().map(|x| x.cast_unsigned()).collect();
            raw.clear();
            LeafCursor::<Int64Type>::new(&file, &footer, COL_INSTANCE, rows.clone(), &path)?
                .read(n, &mut raw)?;
            block.instances = raw.iter().map(|x| x.cast_unsigned()).collect();
        }
        ValueCursor::new(&file, &footer, name, data_type, rows, &path)?
            .read(n, &mut block.values)?;
        Ok(block)
    }

    /// Adds the block's rows that `take` still wants, walking it in scan order.
    fn append_rows(&self, block: &Rows, take: &mut Take<'_>) -> Result<()> {
        if self.append_block(block, take) {
            return Ok(());
        }
        if !take.versions {
            // The row-by-row path needs the versions this read left out: `read_with` starts over.
            take.needs_versions = true;
            return Ok(());
        }
        let n = block.times.len();
        if block.hlcs.len() != n || block.instances.len() != n {
            return Err(self.corrupt("version columns of another length".into()));
        }
        let descending = take.descending;
        let mut keep: Vec<usize> = Vec::new();
        let mut visit = |row: usize| {
            let (Some(time), Some(hlc), Some(instance)) = (
                block.times.get(row),
                block.hlcs.get(row),
                block.instances.get(row),
            ) else {
                return false;
            };
            let version = Version {
                hlc: *hlc,
                instance: *instance,
            };
            let wanted = take.wants(*time, version);
            if wanted {
                keep.push(row);
                take.run.times.push(*time);
                take.run.versions.push(version);
            }
            !take.done()
        };
        if descending {
            for row in (0..n).rev() {
                if !visit(row) {
                    break;
                }
            }
        } else {
            for row in 0..n {
                if !visit(row) {
                    break;
                }
            }
        }
        for row in keep {
            run::push_value(&mut take.run.values, &block.values, row);
        }
        Ok(())
    }

    /// `append_rows` for the common case, as slices: no deletion applies and the block's rows in
    /// the range have strictly increasing times, all past what `take` holds. Returns false (having
    /// taken nothing) when the case does not apply.
    fn append_block(&self, block: &Rows, take: &mut Take<'_>) -> bool {
        if !take.tombstones.is_empty() || take.done() {
            return take.done();
        }
        let times = &block.times;
        let lo = times.partition_point(|t| *t < take.start);
        let hi = times.partition_point(|t| *t <= take.end).max(lo);
        let in_range = times.get(lo..hi).unwrap_or_default();
        let (Some(first), Some(last)) = (in_range.first(), in_range.last()) else {
            return true;
        };
        let past_held = match take.last {
            None => true,
            Some(held) if take.descending => *last < held,
            Some(held) => *first > held,
        };
        if !past_held || !in_range.windows(2).all(|w| w[0] < w[1]) {
            return false;
        }
        let n = (hi - lo).min(take.limit - take.taken);
        let rows = if take.descending {
            hi - n..hi
        } else {
            lo..lo + n
        };
        let run = &mut take.run;
        let time_rows = times.get(rows.clone()).unwrap_or_default();
        let versions = block
            .hlcs
            .get(rows.clone())
            .unwrap_or_default()
            .iter()
            .zip(block.instances.get(rows.clone()).unwrap_or_default())
            .map(|(hlc, instance)| Version {
                hlc: *hlc,
                instance: *instance,
            });
        if take.descending {
            for row in rows.clone().rev() {
                run::push_value(&mut run.values, &block.values, row);
            }
            run.times.extend(time_rows.iter().rev());
            run.versions.extend(versions.rev());
        } else {
            run::extend_values(&mut run.values, &block.values, rows.clone());
            run.times.extend_from_slice(time_rows);
            run.versions.extend(versions);
        }
        take.taken += n;
        take.last = run.times.last().copied();
        true
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            file: self.abs_path.clone(),
            offset: 0,
            reason,
        }
    }
}

/// Whether `times` strictly ascend (it runs over every point a flushed scan reads). While every
/// time is in `[-2^62, 2^62)`, no difference of two of them overflows, and `b - a - 1` is negative
/// exactly when `b <= a`: one OR of those and of the offset times, whose sign bit says whether any
/// pair is out of order or any time out of bounds, in 64-bit additions the compiler vectorizes
/// on any x86-64 (a 64-bit comparison is emulated without SSE4.2). Out of bounds, it compares.
fn strictly_ascending(times: &[i64]) -> bool {
    const HALF: i64 = 1 << 62;
    let signs = times
        .iter()
        .zip(times.get(1..).unwrap_or_default())
        .fold(0i64, |signs, (a, b)| {
            signs | b.wrapping_sub(*a).wrapping_sub(1) | a.wrapping_add(HALF) | b.wrapping_add(HALF)
        });
    if signs >= 0 {
        return true;
    }
    times.windows(2).all(|w| w[0] < w[1])
}

/// Rows of a file decoded for the general read: times, versions (empty when not read) and values.
struct Rows {
    times: Vec<i64>,
    hlcs: Vec<u64>,
    instances: Vec<u64>,
    values: ColumnValues,
}

/// What one limited read of a series still wants, and what it has taken.
struct Take<'a> {
    start: i64,
    end: i64,
    limit: usize,
    descending: bool,
    tombstones: run::TombstoneIndex<'a>,
    /// Distinct timestamps taken so far.
    taken: usize,
    last: Option<i64>,
    run: Run,
    /// Whether the run gets the points' versions (the version columns were read).
    versions: bool,
    /// Set when a read without versions met rows it cannot take without them.
    needs_versions: bool,
}

impl Take<'_> {
    /// Whether the point belongs in the result; counts a new timestamp when it does. Rows of a
    /// file are unique per timestamp, but a repeated one (not written by this crate) is kept with
    /// its twin rather than cut off by the limit, so the merge still picks the higher version.
    fn wants(&mut self, time: i64, version: Version) -> bool {
        if time < self.start || time > self.end {
            return false;
        }
        let repeat = self.last == Some(time);
        if (!repeat && self.done()) || self.tombstones.hides(time, version) {
            return false;
        }
        if !repeat {
            self.taken += 1;
            self.last = Some(time);
        }
        true
    }

    fn done(&self) -> bool {
        self.taken >= self.limit
    }
}

/// Rows gathered into one Arrow record batch before it goes to the Parquet writer: memory for a
/// flush or merge stays about one batch above its input, whatever the file's size (a run longer
/// than this still goes as one batch).
const WRITE_BATCH_ROWS: usize = 1 << 17;

/// The column builders of one record batch being gathered.
struct BatchBuilder {
    series: StringBuilder,
    time: Int64Builder,
    hlc: UInt64Builder,
    instance: UInt64Builder,
    data_type: UInt8Builder,
    boolean: BooleanBuilder,
    int32: Int32Builder,
    int64: Int64Builder,
    float: Float32Builder,
    double: Float64Builder,
    binary: BinaryBuilder,
    rows: usize,
}

impl BatchBuilder {
    fn new() -> BatchBuilder {
        BatchBuilder {
            series: StringBuilder::new(),
            time: Int64Builder::new(),
            hlc: UInt64Builder::new(),
            instance: UInt64Builder::new(),
            data_type: UInt8Builder::new(),
            boolean: BooleanBuilder::new(),
            int32: Int32Builder::new(),
            int64: Int64Builder::new(),
            float: Float32Builder::new(),
            double: Float64Builder::new(),
            binary: BinaryBuilder::new(),
            rows: 0,
        }
    }

    fn append(&mut self, series: &str, run: &Run) {
        let n = run.len();
        for _ in 0..n {
            self.series.append_value(series);
        }
        self.time.append_slice(&run.times);
        for v in &run.versions {
            self.hlc.append_value(v.hlc);
            self.instance.append_value(v.instance);
        }
        self.data_type.append_value_n(run.data_type.code(), n);
        let physical = run.data_type.physical();
        if physical != DataType::Boolean {
            self.boolean.append_nulls(n);
        }
        if physical != DataType::Int32 {
            self.int32.append_nulls(n);
        }
        if physical != DataType::Int64 {
            self.int64.append_nulls(n);
        }
        if physical != DataType::Float {
            self.float.append_nulls(n);
        }
        if physical != DataType::Double {
            self.double.append_nulls(n);
        }
        if !matches!(run.values, ColumnValues::Binary(_)) {
            self.binary.append_nulls(n);
        }
        match &run.values {
            ColumnValues::Boolean(v) => v.iter().for_each(|x| self.boolean.append_value(*x)),
            ColumnValues::Int32(v) => self.int32.append_slice(v),
            ColumnValues::Int64(v) => self.int64.append_slice(v),
            ColumnValues::Float(v) => self.float.append_slice(v),
            ColumnValues::Double(v) => self.double.append_slice(v),
            ColumnValues::Binary(v) => v.iter().for_each(|x| self.binary.append_value(x)),
        }
        self.rows += n;
    }

    /// Hands the gathered rows to the writer and starts over.
    fn write_to(&mut self, writer: &mut ArrowWriter<&File>) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.series.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.hlc.finish()),
            Arc::new(self.instance.finish()),
            Arc::new(self.data_type.finish()),
            Arc::new(self.boolean.finish()),
            Arc::new(self.int32.finish()),
            Arc::new(self.int64.finish()),
            Arc::new(self.float.finish()),
            Arc::new(self.double.finish()),
            Arc::new(self.binary.finish()),
        ];
        self.rows = 0;
        writer.write(&RecordBatch::try_new(schema(), columns)?)?;
        Ok(())
    }
}

/// Writes one data file from runs sorted by series name, each sorted by time and de-duplicated, and
/// makes it durable. Returns its manifest record (the caller fills in `id`, `path`, `max_lsn`).
pub(crate) fn write(path: &Path, partition: i64, runs: &[(String, Run)]) -> Result<FileMeta> {
    write_with(path, partition, runs, writer_properties())
}

/// How data files are written (readers take any Parquet settings: see `decode`).
fn writer_properties() -> WriterProperties {
    let page_rows = usize::try_from(INDEX_STRIDE).unwrap_or(usize::MAX);
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        // Pages of about one index stride, so a limited read decodes a few thousand rows, not the
        // default 20,000 per page (the offset index lets the reader skip the other pages).
        .set_data_page_row_count_limit(page_rows)
        // Dictionaries pay only where values repeat (series name, type, instance); times,
        // versions and values are nearly all distinct, and trying a dictionary on them first costs
        // CPU before the writer gives up on it.
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from(COL_SERIES), true)
        .set_column_dictionary_enabled(ColumnPath::from(COL_TYPE), true)
        .set_column_dictionary_enabled(ColumnPath::from(COL_INSTANCE), true)
        // Times and clocks ascend within a series: delta-packed they shrink to a few bits a row and
        // decode several times faster than snappy-compressed plain values.
        .set_column_encoding(ColumnPath::from(COL_TIME), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from(COL_HLC), Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
        ]))
        .build()
}

/// `write` with the given writer settings (tests write files as other versions or tools would).
fn write_with(
    path: &Path,
    partition: i64,
    runs: &[(String, Run)],
    props: WriterProperties,
) -> Result<FileMeta> {
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(&file, schema(), Some(props))?;
    let mut batch = BatchBuilder::new();
    let mut series_meta = Vec::with_capacity(runs.len());
    let mut row: u64 = 0;
    let (mut min_time, mut max_time, mut max_hlc) = (i64::MAX, i64::MIN, 0u64);
    for (series, run) in runs {
        let n = run.len();
        if n == 0 {
            continue;
        }
        if batch.rows > 0 && batch.rows + n > WRITE_BATCH_ROWS {
            batch.write_to(&mut writer)?;
        }
        batch.append(series, run);
        max_hlc = run.versions.iter().map(|v| v.hlc).fold(max_hlc, u64::max);
        let first = run.times.first().copied().unwrap_or(0);
        let last = run.times.last().copied().unwrap_or(0);
        min_time = min_time.min(first);
        max_time = max_time.max(last);
        let (index_stride, time_index) = if n as u64 > INDEX_STRIDE {
            let step = usize::try_from(INDEX_STRIDE).unwrap_or(usize::MAX);
            (
                INDEX_STRIDE,
                run.times.iter().step_by(step).copied().collect(),
            )
        } else {
            (0, Vec::new())
        };
        series_meta.push(SeriesRange {
            series: series.clone(),
            data_type: run.data_type.code(),
            min_time: first,
            max_time: last,
            first_row: row,
            n_rows: n as u64,
            index_stride,
            time_index,
            stats: stats::summarize(run.data_type, &run.times, &run.values),
        });
        row += n as u64;
    }
    batch.write_to(&mut writer)?;
    writer.close()?;
    file.sync_all()?;
    Ok(FileMeta {
        id: 0,
        partition,
        path: String::new(),
        min_time,
        max_time,
        max_lsn: 0,
        max_hlc,
        n_rows: row,
        series: series_meta,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use parquet::file::properties::{EnabledStatistics, WriterVersion};

    use super::*;

    /// One series of every physical class, `n` points each at times `3 * i + offset`.
    fn runs(n: usize) -> Vec<(String, Run)> {
        let times = |offset: i64| (0..n as i64).map(|i| 3 * i + offset).collect::<Vec<_>>();
        let versions = (0..n as u64)
            .map(|i| Version {
                hlc: 1_000 + i,
                instance: i % 3,
            })
            .collect::<Vec<_>>();
        let run = |data_type: DataType, offset: i64, values: ColumnValues| Run {
            data_type,
            times: times(offset),
            versions: versions.clone(),
            values,
        };
        let i = 0..n;
        vec![
            (
                "root.sg.d.a_bool".to_string(),
                run(
                    DataType::Boolean,
                    0,
                    ColumnValues::Boolean(i.clone().map(|i| i % 3 == 0).collect()),
                ),
            ),
            (
                "root.sg.d.b_i32".to_string(),
                run(
                    DataType::Int32,
                    1,
                    ColumnValues::Int32(i.clone().map(|i| i as i32 * 7 - 100).collect()),
                ),
            ),
            (
                "root.sg.d.c_i64".to_string(),
                run(
                    DataType::Int64,
                    2,
                    ColumnValues::Int64(i.clone().map(|i| i as i64 * -11).collect()),
                ),
            ),
            (
                "root.sg.d.d_f32".to_string(),
                run(
                    DataType::Float,
                    0,
                    ColumnValues::Float(i.clone().map(|i| i as f32 / 4.0).collect()),
                ),
            ),
            (
                "root.sg.d.e_f64".to_string(),
                run(
                    DataType::Double,
                    1,
                    ColumnValues::Double(i.clone().map(|i| (i % 17) as f64 * 0.5).collect()),
                ),
            ),
            (
                "root.sg.d.f_text".to_string(),
                run(
                    DataType::Text,
                    2,
                    ColumnValues::Binary(i.clone().map(|i| format!("v{i}").into_bytes()).collect()),
                ),
            ),
            // Fixed steps, then jitter from row 6,000 on (its time pages are not arithmetic).
            (
                "root.sg.d.g_jitter".to_string(),
                Run {
                    data_type: DataType::Int64,
                    times: (0..n as i64)
                        .map(|i| if i < 6_000 { 3 * i } else { 3 * i + i % 2 })
                        .collect(),
                    versions: versions.clone(),
                    values: ColumnValues::Int64(i.map(|i| i as i64).collect()),
                },
            ),
        ]
    }

    /// The points of `run` in `[start, end]`, the first `limit` from the scan's starting end.
    fn expected(run: &Run, window: Window) -> Run {
        let mut rows: Vec<usize> = (0..run.len())
            .filter(|r| (window.start..=window.end).contains(&run.times[*r]))
            .collect();
        if window.descending {
            rows.reverse();
        }
        rows.truncate(window.limit);
        let mut out = Run::empty(run.data_type);
        for r in rows {
            out.times.push(run.times[r]);
            out.versions.push(run.versions[r]);
            run::push_value(&mut out.values, &run.values, r);
        }
        out
    }

    /// Reads every series of a file written with `props` over ranges and limits that cross
    /// pages and row groups, with and without versions, both ways, and compares with the runs.
    fn reads_back(props: WriterProperties) {
        let dir = tempfile::tempdir().unwrap();
        let n = 10_000;
        let runs = runs(n);
        let mut meta = write_with(&dir.path().join("f.parquet"), 0, &runs, props).unwrap();
        meta.path = "f.parquet".into();
        let file = DataFile::new(meta, dir.path());
        let last = 3 * n as i64;
        let windows = [
            (i64::MIN, i64::MAX, usize::MAX),
            (0, last, 65_536),
            (5, last, 4_096),
            (12_290, 12_290 + 3 * 4_096, 1_000),
            (4_000, 29_000, 7_000),
            (29_990, i64::MAX, 100),
            (-50, 2, 10),
        ];
        for (series, run) in &runs {
            for (start, end, limit) in windows {
                let ascending = Window::new(start, end, limit, false);
                let want = expected(run, ascending);
                let got = file
                    .read_values(series, start, end, limit)
                    .unwrap()
                    .unwrap_or_else(|| Run::empty(run.data_type));
                let what = format!("{series} [{start}, {end}] limit {limit}");
                assert_eq!(got.times, want.times, "{what}");
                assert_eq!(got.values, want.values, "{what}");
                for descending in [false, true] {
                    let window = Window::new(start, end, limit, descending);
                    let want = expected(run, window);
                    let got = file
                        .read(series, window, &[])
                        .unwrap()
                        .unwrap_or_else(|| Run::empty(run.data_type));
                    assert_eq!(got.times, want.times, "{what} descending {descending}");
                    assert_eq!(got.versions, want.versions, "{what} {descending}");
                    assert_eq!(got.values, want.values, "{what} {descending}");
                }
            }
        }
    }

    #[test]
    fn strict_ascent_is_told_apart_from_ties_and_descents_at_any_magnitude() {
        let cases: &[(&[i64], bool)] = &[
            (&[], true),
            (&[5], true),
            (&[1, 2, 3], true),
            (&[1, 1, 2], false),
            (&[1, 3, 2], false),
            (&[i64::MIN, 0, i64::MAX], true),
            (&[i64::MAX, i64::MIN], false),
            (&[i64::MIN, i64::MIN + 1], true),
            (&[-(1 << 62), (1 << 62) - 1], true),
            (&[(1 << 62) - 1, -(1 << 62)], false),
            (&[0, i64::MAX - 1, i64::MAX], true),
            (&[i64::MAX, i64::MAX], false),
        ];
        for (times, ordered) in cases {
            assert_eq!(strictly_ascending(times), *ordered, "{times:?}");
        }
    }

    #[test]
    fn files_as_this_crate_writes_them_read_back() {
        reads_back(writer_properties());
    }

    #[test]
    fn files_with_other_parquet_settings_read_back() {
        // Dictionary pages, V2 data pages, other page sizes, small row groups, no compression:
        // values then go through the column reader instead of the plain-page path.
        reads_back(
            WriterProperties::builder()
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .set_data_page_row_count_limit(1_000)
                .set_max_row_group_row_count(Some(7_000))
                .build(),
        );
        // No statistics, no offset index (files of other tools): the whole chunk is walked.
        reads_back(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .set_statistics_enabled(EnabledStatistics::None)
                .set_offset_index_disabled(true)
                .set_max_row_group_row_count(Some(25_000))
                .build(),
        );
    }

    #[test]
    fn a_null_where_a_series_has_values_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let runs = runs(5_000);
        let mut meta = write(&dir.path().join("f.parquet"), 0, &runs).unwrap();
        meta.path = "f.parquet".into();
        // Claim the boolean series is a double one: its rows hold nulls in `v_double`.
        meta.series[0].data_type = DataType::Double.code();
        let file = DataFile::new(meta, dir.path());
        for result in [
            file.read_values("root.sg.d.a_bool", 0, i64::MAX, 100),
            file.read("root.sg.d.a_bool", Window::new(0, i64::MAX, 100, true), &[]),
        ] {
            match result {
                Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("null"), "{reason}"),
                other => panic!("expected corruption, got {other:?}"),
            }
        }
    }
}
