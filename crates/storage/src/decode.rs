//! A data file's columns decoded straight into the vectors a scan returns, with Parquet's column
//! readers: the Arrow reader built an Arrow array per column (and a validity bitmap for every
//! nullable value column) that the scan then copied into its run, a copy per point per column.
//! Pages in the forms this crate writes are taken without the column reader: PLAIN number pages
//! without nulls are converted from their bytes ([`PlainPages`]), and time pages that are
//! arithmetic runs are generated ([`ArithmeticTimes`]); any other page, from the first one on,
//! goes through the column reader ([`LeafCursor`]), so files of any Parquet settings read alike.
//!
//! **Invariant:** a cursor yields exactly the rows asked for, in file order, or an error: a column
//! chunk with fewer rows than its row group claims, a null in a column a scan needs non-null, or a
//! column of another physical type than the one asked for is corruption, never a short or
//! reinterpreted answer.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use duet_proto::types::{ColumnValues, DataType};
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{
    BoolType, ByteArrayType, DataType as ParquetType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::serialized_reader::SerializedPageReader;

use crate::error::{Error, Result};
use crate::prefetch::Prefetched;

/// The part of one row group a cursor reads.
#[derive(Clone, Copy)]
struct Segment {
    group: usize,
    /// The first row to read, relative to the row group.
    first: u64,
    rows: u64,
}

/// The leaf index of column `name` and the row groups' parts holding `rows` (absolute row
/// numbers), checking that the column holds `T`'s physical type and that the file has the rows.
fn segments<T: ParquetType>(
    metadata: &ParquetMetaData,
    name: &str,
    rows: &std::ops::Range<u64>,
    path: &Path,
) -> Result<(usize, Vec<Segment>)> {
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let schema = metadata.file_metadata().schema_descr();
    let leaf = schema
        .columns()
        .iter()
        .position(|c| c.name() == name)
        .ok_or_else(|| corrupt(format!("missing column {name}")))?;
    let mut segments = Vec::new();
    let mut group_start = 0u64;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let group_rows = u64::try_from(group.num_rows()).unwrap_or(0);
        let group_end = group_start.saturating_add(group_rows);
        if rows.start < group_end && group_start < rows.end {
            let chunk = group
                .columns()
                .get(leaf)
                .ok_or_else(|| corrupt(format!("row group {g} lacks column {name}")))?;
            if chunk.column_type() != T::get_physical_type() {
                return Err(corrupt(format!(
                    "column {name} is {} where {} was expected",
                    chunk.column_type(),
                    T::get_physical_type()
                )));
            }
            let first = rows.start.saturating_sub(group_start);
            let past = rows.end.min(group_end) - group_start;
            segments.push(Segment {
                group: g,
                first,
                rows: past - first,
            });
        }
        group_start = group_end;
    }
    let covered: u64 = segments.iter().map(|s| s.rows).sum();
    if covered != rows.end.saturating_sub(rows.start) {
        return Err(corrupt(format!(
            "rows {rows:?} of column {name} are past the file's {group_start} rows"
        )));
    }
    Ok((leaf, segments))
}

/// Reads one leaf column of a file over a range of rows, row group after row group.
pub(crate) struct LeafCursor<T: ParquetType> {
    file: Arc<Prefetched>,
    metadata: Arc<ParquetMetaData>,
    leaf: usize,
    /// The row groups still to read: (row group, its first row to read, rows to read in it).
    segments: std::collections::VecDeque<(usize, u64, u64)>,
    /// The current row group's reader and the rows left to read in it.
    reader: Option<(ColumnReaderImpl<T>, u64)>,
    /// Definition levels of a nullable column (reused between reads).
    levels: Vec<i16>,
    path: Arc<Path>,
    name: &'static str,
}

impl<T: ParquetType> LeafCursor<T> {
    /// A cursor over rows `rows` (absolute row numbers) of the leaf column `name`.
    pub(crate) fn new(
        file: &Arc<Prefetched>,
        metadata: &Arc<ParquetMetaData>,
        name: &'static str,
        rows: std::ops::Range<u64>,
        path: &Arc<Path>,
    ) -> Result<LeafCursor<T>> {
        let (leaf, segments) = segments::<T>(metadata, name, &rows, path)?;
        Ok(LeafCursor {
            file: Arc::clone(file),
            metadata: Arc::clone(metadata),
            leaf,
            segments: segments
                .into_iter()
                .map(|s| (s.group, s.first, s.rows))
                .collect(),
            reader: None,
            levels: Vec::new(),
            path: Arc::clone(path),
            name,
        })
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            file: self.path.to_path_buf(),
            offset: 0,
            reason,
        }
    }

    /// The current row group's reader with rows left, opening the next one (positioned at its
    /// first wanted row) when the current one is used up; `None` when every row was read.
    fn current(&mut self) -> Result<Option<&mut (ColumnReaderImpl<T>, u64)>> {
        if self.reader.as_ref().is_none_or(|(_, left)| *left == 0) {
            self.reader = None;
            let Some((group, first, n)) = self.segments.pop_front() else {
                return Ok(None);
            };
            let row_group = self.metadata.row_group(group);
            let Some(chunk) = row_group.columns().get(self.leaf) else {
                return Err(self.corrupt(format!("row group {group} lacks column {}", self.name)));
            };
            let locations = self
                .metadata
                .page_index()
                .and_then(|index| index.page_locations(group, self.leaf))
                .cloned();
            let pages = SerializedPageReader::new(
                Arc::clone(&self.file),
                chunk,
                usize::try_from(row_group.num_rows()).unwrap_or(0),
                locations,
            )?;
            let descr = self
                .metadata
                .file_metadata()
                .schema_descr()
                .column(self.leaf);
            let mut reader = ColumnReaderImpl::<T>::new(descr, Box::new(pages));
            let wanted = usize::try_from(first).unwrap_or(usize::MAX);
            if wanted > 0 && reader.skip_records(wanted)? != wanted {
                return Err(self.corrupt(format!(
                    "column {} of row group {group} ends before row {first}",
                    self.name
                )));
            }
            self.reader = Some((reader, n));
        }
        Ok(self.reader.as_mut())
    }

    /// Appends the next `n` rows' values to `out`; a null is corruption.
    pub(crate) fn read(&mut self, mut n: u64, out: &mut Vec<T::T>) -> Result<()> {
        out.reserve(usize::try_from(n).unwrap_or(0));
        while n > 0 {
            let mut levels = std::mem::take(&mut self.levels);
            let Some((reader, left)) = self.current()? else {
                return Err(self.corrupt(format!("column {} ran out of rows", self.name)));
            };
            let k = n.min(*left);
            let want = usize::try_from(k).unwrap_or(usize::MAX);
            levels.clear();
            let (records, values, _) = reader.read_records(want, Some(&mut levels), None, out)?;
            *left -= k;
            self.levels = levels;
            if records != want {
                return Err(self.corrupt(format!("column {} ran out of rows", self.name)));
            }
            if values != records {
                return Err(self.corrupt(format!("null value in column {}", self.name)));
            }
            n -= k;
        }
        Ok(())
    }
}

/// Fixed-width values that Parquet's PLAIN encoding stores little-endian, back to back.
pub(crate) trait Plain: Copy {
    const WIDTH: usize;
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! plain {
    ($t:ty, $w:expr) => {
        impl Plain for $t {
            const WIDTH: usize = $w;
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().unwrap_or([0; $w]))
            }
        }
    };
}
plain!(i32, 4);
plain!(i64, 8);
plain!(f32, 4);
plain!(f64, 8);

/// The values of a V1 data page that holds every value PLAIN with none null: its definition
/// levels (bit width 1) are a single RLE run of 1s as long as the page. `None` for any other page.
fn plain_values(page: &Page, width: usize) -> Option<Bytes> {
    let Page::DataPage {
        buf,
        num_values,
        encoding: Encoding::PLAIN,
        def_level_encoding: Encoding::RLE,
        ..
    } = page
    else {
        return None;
    };
    let n = usize::try_from(*num_values).ok()?;
    let length = usize::try_from(u32::from_le_bytes(buf.get(..4)?.try_into().ok()?)).ok()?;
    let levels = buf.get(4..4usize.checked_add(length)?)?;
    // The run's header is a ULEB128 varint, (run length << 1) with the low bit clear for RLE,
    // followed by the repeated level in one byte.
    let (mut header, mut used) = (0u64, 0usize);
    loop {
        let byte = *levels.get(used)?;
        header |= u64::from(byte & 0x7f) << (7 * used);
        used += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if used >= 5 {
            return None;
        }
    }
    let whole_run = header & 1 == 0
        && usize::try_from(header >> 1).ok()? == n
        && levels.get(used) == Some(&1)
        && levels.len() == used + 1;
    let values = buf.slice(4 + length..);
    (whole_run && Some(values.len()) == n.checked_mul(width)).then_some(values)
}

/// How a [`PageCursor`] takes the pages it can read itself.
pub(crate) trait PageFormat<V> {
    /// A page's values in the form they are copied out from.
    type Data;
    /// The definition level of the columns this format reads (1: value columns, nullable; 0: times).
    const MAX_DEF_LEVEL: i16;
    /// The page's values, or `None` when the page must go through the column reader.
    fn parse(page: &Page) -> Option<Self::Data>;
    fn len(data: &Self::Data) -> usize;
    /// Appends `data[rows]` to `out`.
    fn extend(data: &Self::Data, rows: std::ops::Range<usize>, out: &mut Vec<V>);
    /// Whether `data[from]` may follow `previous` in a column that must strictly ascend, when the
    /// format knows its pages ascend within (so only page boundaries need a comparison).
    fn ascends_from(previous: Option<V>, data: &Self::Data, from: usize) -> bool;
}

/// PLAIN pages of a nullable column without a null (what this crate writes for numbers): each
/// page's bytes are converted straight into the output. The column reader decodes the definition
/// levels into a vector and zero-fills the output before decoding into it, two extra passes.
pub(crate) struct PlainPages;

impl<V: Plain> PageFormat<V> for PlainPages {
    type Data = Bytes;
    const MAX_DEF_LEVEL: i16 = 1;

    fn parse(page: &Page) -> Option<Bytes> {
        plain_values(page, V::WIDTH)
    }

    fn len(data: &Bytes) -> usize {
        data.len() / V::WIDTH
    }

    fn extend(data: &Bytes, rows: std::ops::Range<usize>, out: &mut Vec<V>) {
        let bytes = data
            .get(rows.start * V::WIDTH..rows.end * V::WIDTH)
            .unwrap_or_default();
        out.extend(bytes.chunks_exact(V::WIDTH).map(V::from_le));
    }

    fn ascends_from(_: Option<V>, _: &Bytes, _: usize) -> bool {
        false
    }
}

/// Delta-packed time pages whose every block is an arithmetic run (bit width 0) with a positive
/// step: what this crate writes for a series sampled at a fixed interval. They are generated
/// rather than unpacked, and ascend strictly by construction, so a scan need not compare its
/// times; any other page (jitter, other encodings) goes through the column reader.
pub(crate) struct ArithmeticTimes;

impl PageFormat<i64> for ArithmeticTimes {
    type Data = ArithmeticPage;
    const MAX_DEF_LEVEL: i16 = 0;

    fn parse(page: &Page) -> Option<ArithmeticPage> {
        arithmetic_times(page)
    }

    fn len(data: &ArithmeticPage) -> usize {
        data.len
    }

    fn extend(data: &ArithmeticPage, rows: std::ops::Range<usize>, out: &mut Vec<i64>) {
        let mut at = 0usize;
        for &(first, step, len) in &data.runs {
            let (from, to) = (rows.start.max(at), rows.end.min(at + len));
            if from < to {
                let start = first.wrapping_add(step.wrapping_mul((from - at) as i64));
                fill_arithmetic(out, start, step, to - from);
            }
            at += len;
        }
    }

    fn ascends_from(previous: Option<i64>, data: &ArithmeticPage, from: usize) -> bool {
        let Some(before) = previous else {
            return true;
        };
        let mut at = 0usize;
        for &(first, step, len) in &data.runs {
            if from < at + len {
                return first.wrapping_add(step.wrapping_mul((from - at) as i64)) > before;
            }
            at += len;
        }
        true
    }
}

/// The times of an arithmetic page: runs of (first time, step, length), each step positive and
/// no time past `i64::MAX`.
pub(crate) struct ArithmeticPage {
    runs: Vec<(i64, i64, usize)>,
    len: usize,
}

/// Appends `start, start + step, ...` (`n` times) to `out`, in four lanes a step apart advanced by
/// four steps: 64-bit additions vectorize on any x86-64, a 64-bit multiplication does not. The
/// lanes may wrap past the last value appended; those values are never kept.
fn fill_arithmetic(out: &mut Vec<i64>, start: i64, step: i64, n: usize) {
    let stride = step.wrapping_mul(4);
    let mut lanes = [0i64, 1, 2, 3].map(|k| start.wrapping_add(step.wrapping_mul(k)));
    let from = out.len();
    out.resize(from + n, 0);
    let slots = out.get_mut(from..).unwrap_or_default();
    let mut chunks = slots.chunks_exact_mut(4);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&lanes);
        for lane in &mut lanes {
            *lane = lane.wrapping_add(stride);
        }
    }
    for (slot, lane) in chunks.into_remainder().iter_mut().zip(lanes) {
        *slot = lane;
    }
}

/// The bytes of a delta-packed page, read in order.
struct PageBytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl PageBytes<'_> {
    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn zigzag(&mut self) -> Option<i64> {
        let n = self.uleb()?;
        Some((n >> 1).cast_signed() ^ -((n & 1).cast_signed()))
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
}

/// The times of a V1 DELTA_BINARY_PACKED page of a required column whose needed miniblocks all
/// have bit width 0 and whose blocks' minimum deltas are positive (every delta of a block is then
/// its minimum): `None` for any other page, or one whose values would overflow.
fn arithmetic_times(page: &Page) -> Option<ArithmeticPage> {
    let Page::DataPage {
        buf,
        num_values,
        encoding: Encoding::DELTA_BINARY_PACKED,
        ..
    } = page
    else {
        return None;
    };
    let mut r = PageBytes { bytes: buf, at: 0 };
    let block = usize::try_from(r.uleb()?).ok()?;
    let miniblocks = usize::try_from(r.uleb()?).ok()?;
    let total = usize::try_from(r.uleb()?).ok()?;
    let first = r.zigzag()?;
    let per_miniblock = block.checked_div(miniblocks)?;
    if total != usize::try_from(*num_values).ok()? || per_miniblock == 0 {
        return None;
    }
    let mut page = ArithmeticPage {
        runs: Vec::new(),
        len: total,
    };
    if total == 0 {
        return Some(page);
    }
    // The first time is a run of its own until a block's step continues it.
    page.runs.push((first, 1, 1));
    let (mut last, mut left) = (first, total - 1);
    while left > 0 {
        let step = r.zigzag()?;
        let widths = r.take(miniblocks)?;
        let n = left.min(block);
        let needed = n.div_ceil(per_miniblock);
        if step < 1 || widths.get(..needed)?.iter().any(|w| *w != 0) {
            return None;
        }
        last = last.checked_add(step.checked_mul(i64::try_from(n).ok()?)?)?;
        match page.runs.last_mut() {
            // The run's step is this block's (or the run is the first time alone): it goes on.
            Some((_, run_step, len)) if *run_step == step || *len == 1 => {
                *run_step = step;
                *len += n;
            }
            _ => {
                let start = last - step * (i64::try_from(n).ok()? - 1);
                page.runs.push((start, step, n));
            }
        }
        left -= n;
    }
    Some(page)
}

/// A column read a page at a time in a [`PageFormat`] while its pages allow; from the first other
/// page on (or without an offset index) it reads through [`LeafCursor`].
pub(crate) struct PageCursor<T: ParquetType, F: PageFormat<T::T>>
where
    T::T: Copy,
{
    file: Arc<Prefetched>,
    metadata: Arc<ParquetMetaData>,
    leaf: usize,
    segments: std::collections::VecDeque<Segment>,
    /// The current row group's pages and the rows left to read in it.
    pages: Option<(SerializedPageReader<Prefetched>, u64)>,
    /// The current page's values and how many of them were handed out.
    page: Option<(F::Data, usize)>,
    /// The next row to hand out and the end of the range (absolute).
    next_row: u64,
    end_row: u64,
    general: Option<LeafCursor<T>>,
    /// The last value handed out, and whether every value so far came from pages that ascend
    /// strictly, each past the one before.
    last: Option<T::T>,
    ascending: bool,
    path: Arc<Path>,
    name: &'static str,
}

impl<T: ParquetType, F: PageFormat<T::T>> PageCursor<T, F>
where
    T::T: Copy,
{
    pub(crate) fn new(
        file: &Arc<Prefetched>,
        metadata: &Arc<ParquetMetaData>,
        name: &'static str,
        rows: std::ops::Range<u64>,
        path: &Arc<Path>,
    ) -> Result<PageCursor<T, F>> {
        let (leaf, segments) = segments::<T>(metadata, name, &rows, path)?;
        let descr = metadata.file_metadata().schema_descr().column(leaf);
        let mut cursor = PageCursor {
            file: Arc::clone(file),
            metadata: Arc::clone(metadata),
            leaf,
            segments: segments.into(),
            pages: None,
            page: None,
            next_row: rows.start,
            end_row: rows.end,
            general: None,
            last: None,
            ascending: true,
            path: Arc::clone(path),
            name,
        };
        if descr.max_def_level() != F::MAX_DEF_LEVEL || descr.max_rep_level() != 0 {
            cursor.fall_back()?;
        }
        Ok(cursor)
    }

    /// Whether every value handed out so far is known to ascend strictly (from pages of a format
    /// that ascends within, each past the value before); false once the column reader took over.
    pub(crate) fn ascending(&self) -> bool {
        self.ascending && self.general.is_none()
    }

    /// Reads the rest of the range through the column reader.
    fn fall_back(&mut self) -> Result<&mut LeafCursor<T>> {
        self.pages = None;
        self.page = None;
        self.ascending = false;
        let rest = self.next_row..self.end_row;
        let cursor = LeafCursor::new(&self.file, &self.metadata, self.name, rest, &self.path)?;
        Ok(self.general.insert(cursor))
    }
    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            file: self.path.to_path_buf(),
            offset: 0,
            reason,
        }
    }

    /// Opens the next row group's pages, skipping the pages before its first wanted row; returns
    /// the rows of the first wanted page to skip, or `None` when the pages cannot be walked here.
    fn open_group(&mut self, segment: Segment) -> Result<Option<u64>> {
        let Some(locations) = self
            .metadata
            .page_index()
            .and_then(|index| index.page_locations(segment.group, self.leaf))
            .cloned()
        else {
            return Ok(None);
        };
        let row_group = self.metadata.row_group(segment.group);
        let Some(chunk) = row_group.columns().get(self.leaf) else {
            return Ok(None);
        };
        let mut pages = SerializedPageReader::new(
            Arc::clone(&self.file),
            chunk,
            usize::try_from(row_group.num_rows()).unwrap_or(0),
            Some(locations),
        )?;
        let mut at = 0u64;
        loop {
            let Some(meta) = pages.peek_next_page()? else {
                return Err(self.corrupt(format!(
                    "column {} of row group {} ends before row {}",
                    self.name, segment.group, segment.first
                )));
            };
            let Some(rows) = meta.num_rows.filter(|_| !meta.is_dict) else {
                return Ok(None);
            };
            let rows = rows as u64;
            if at + rows > segment.first {
                break;
            }
            pages.skip_next_page()?;
            at += rows;
        }
        self.pages = Some((pages, segment.rows));
        Ok(Some(segment.first - at))
    }

    /// Makes `self.page` a page with values left; false when the rest must be read through the
    /// column reader.
    fn next_page(&mut self) -> Result<bool> {
        let mut skip = 0u64;
        if self.pages.as_ref().is_none_or(|(_, left)| *left == 0) {
            let Some(segment) = self.segments.pop_front() else {
                return Err(self.corrupt(format!("column {} ran out of rows", self.name)));
            };
            match self.open_group(segment)? {
                Some(rows) => skip = rows,
                None => return Ok(false),
            }
        }
        let Some((pages, _)) = self.pages.as_mut() else {
            return Ok(false);
        };
        let Some(page) = pages.get_next_page()? else {
            return Err(self.corrupt(format!("column {} ran out of pages", self.name)));
        };
        let Some(data) = F::parse(&page) else {
            return Ok(false);
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        if skip >= F::len(&data) {
            return Err(self.corrupt(format!("a page of column {} is short", self.name)));
        }
        self.page = Some((data, skip));
        Ok(true)
    }

    /// Appends the next `n` rows' values to `out`; a null is corruption.
    pub(crate) fn read(&mut self, mut n: u64, out: &mut Vec<T::T>) -> Result<()> {
        out.reserve(usize::try_from(n).unwrap_or(0));
        while n > 0 {
            if let Some(general) = self.general.as_mut() {
                return general.read(n, out);
            }
            let Some((data, at)) = self.page.as_mut() else {
                if !self.next_page()? {
                    self.fall_back()?;
                }
                continue;
            };
            let left_in_group = self.pages.as_ref().map_or(0, |(_, left)| *left);
            let k = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(F::len(data) - *at)
                .min(usize::try_from(left_in_group).unwrap_or(usize::MAX));
            self.ascending &= F::ascends_from(self.last, data, *at);
            let before = out.len();
            F::extend(data, *at..*at + k, out);
            if out.len() != before + k {
                return Err(self.corrupt(format!("a page of column {} is short", self.name)));
            }
            self.last = out.last().copied();
            *at += k;
            if *at >= F::len(data) {
                self.page = None;
            }
            if let Some((_, left)) = self.pages.as_mut() {
                *left -= k as u64;
                if *left == 0 {
                    self.page = None;
                }
            }
            self.next_row += k as u64;
            n -= k as u64;
        }
        Ok(())
    }
}

/// A value column of numbers, read from plain pages.
pub(crate) type PlainCursor<T> = PageCursor<T, PlainPages>;

/// A time column, read from arithmetic pages.
pub(crate) type TimeCursor = PageCursor<Int64Type, ArithmeticTimes>;

/// A cursor over a value column in the physical class of a series' type.
pub(crate) enum ValueCursor {
    Boolean(LeafCursor<BoolType>),
    Int32(PlainCursor<Int32Type>),
    Int64(PlainCursor<Int64Type>),
    Float(PlainCursor<FloatType>),
    Double(PlainCursor<DoubleType>),
    Binary(LeafCursor<ByteArrayType>),
}

impl ValueCursor {
    /// A cursor over rows `rows` of the value column `name`, which holds `data_type`'s class.
    pub(crate) fn new(
        file: &Arc<Prefetched>,
        metadata: &Arc<ParquetMetaData>,
        name: &'static str,
        data_type: DataType,
        rows: std::ops::Range<u64>,
        path: &Arc<Path>,
    ) -> Result<ValueCursor> {
        Ok(match data_type.physical() {
            DataType::Boolean => {
                ValueCursor::Boolean(LeafCursor::new(file, metadata, name, rows, path)?)
            }
            DataType::Int32 => {
                ValueCursor::Int32(PlainCursor::new(file, metadata, name, rows, path)?)
            }
            DataType::Int64 => {
                ValueCursor::Int64(PlainCursor::new(file, metadata, name, rows, path)?)
            }
            DataType::Float => {
                ValueCursor::Float(PlainCursor::new(file, metadata, name, rows, path)?)
            }
            DataType::Double => {
                ValueCursor::Double(PlainCursor::new(file, metadata, name, rows, path)?)
            }
            _ => ValueCursor::Binary(LeafCursor::new(file, metadata, name, rows, path)?),
        })
    }

    /// Appends the next `n` rows' values to `out` (of the cursor's class).
    pub(crate) fn read(&mut self, n: u64, out: &mut ColumnValues) -> Result<()> {
        match (self, out) {
            (ValueCursor::Boolean(c), ColumnValues::Boolean(v)) => c.read(n, v),
            (ValueCursor::Int32(c), ColumnValues::Int32(v)) => c.read(n, v),
            (ValueCursor::Int64(c), ColumnValues::Int64(v)) => c.read(n, v),
            (ValueCursor::Float(c), ColumnValues::Float(v)) => c.read(n, v),
            (ValueCursor::Double(c), ColumnValues::Double(v)) => c.read(n, v),
            (ValueCursor::Binary(c), ColumnValues::Binary(v)) => {
                let mut raw = Vec::new();
                c.read(n, &mut raw)?;
                v.extend(raw.iter().map(|b| b.data().to_vec()));
                Ok(())
            }
            (cursor, _) => Err(cursor.mismatch()),
        }
    }

    fn mismatch(&self) -> Error {
        let (path, name) = match self {
            ValueCursor::Boolean(c) => (&c.path, c.name),
            ValueCursor::Int32(c) => (&c.path, c.name),
            ValueCursor::Int64(c) => (&c.path, c.name),
            ValueCursor::Float(c) => (&c.path, c.name),
            ValueCursor::Double(c) => (&c.path, c.name),
            ValueCursor::Binary(c) => (&c.path, c.name),
        };
        Error::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            reason: format!("column {name} read into values of another type"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::fs::File;

    use duet_proto::types::{ColumnValues, DataType};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};

    use super::*;
    use crate::run::Run;
    use crate::types::Version;

    /// The fast path must be the common one: every page of a number series as this crate writes
    /// it is a plain page (else scans would silently take the slower column reader).
    #[test]
    fn pages_this_crate_writes_for_numbers_are_plain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let n = 20_000usize;
        let run = |offset: i64, values: ColumnValues, data_type: DataType| Run {
            data_type,
            times: (0..n as i64).map(|i| 2 * i + offset).collect(),
            versions: vec![
                Version {
                    hlc: 1,
                    instance: 0
                };
                n
            ],
            values,
        };
        let runs = vec![
            (
                "root.sg.d.a".to_string(),
                run(
                    0,
                    ColumnValues::Double((0..n).map(|i| i as f64 / 3.0).collect()),
                    DataType::Double,
                ),
            ),
            (
                "root.sg.d.b".to_string(),
                run(
                    1,
                    ColumnValues::Int64((0..n as i64).collect()),
                    DataType::Int64,
                ),
            ),
        ];
        crate::datafile::write(&path, 0, &runs).unwrap();
        let file = File::open(&path).unwrap();
        let metadata = ParquetMetaDataReader::new()
            .with_offset_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&file)
            .unwrap();
        let file = Arc::new(Prefetched::new(file, Vec::new()).unwrap());
        // Rows of series `a` fill `v_double` (then nulls); rows of `b` fill `v_int64`.
        for (name, width, rows) in [("v_double", 8, 0..n), ("v_int64", 8, n..2 * n)] {
            let (mut plain, mut pages) = (0, 0);
            for (page, page_rows) in pages_with_rows(&file, &metadata, name) {
                if rows.start <= page_rows.start && page_rows.end <= rows.end {
                    pages += 1;
                    plain += usize::from(plain_values(&page, width).is_some());
                }
            }
            assert!(pages >= 4, "{name}: {pages} pages inside the series");
            assert_eq!(plain, pages, "{name}: plain pages");
        }
        // The times of both series step by 2: every time page inside one series is an arithmetic
        // run, generated as the column reader would decode it.
        let want: Vec<i64> = (0..n as i64)
            .map(|i| 2 * i)
            .chain((0..n as i64).map(|i| 2 * i + 1))
            .collect();
        let mut arithmetic = 0;
        for (page, rows) in pages_with_rows(&file, &metadata, "time") {
            if rows.end <= n || rows.start >= n {
                let times = expand(&arithmetic_times(&page).expect("an arithmetic page"));
                assert_eq!(times, want[rows.clone()], "rows {rows:?}");
                arithmetic += 1;
            }
        }
        assert!(arithmetic >= 8, "{arithmetic} arithmetic time pages");
    }

    /// Every page of the column `name`, in file order, with the rows (of the whole file) it holds,
    /// read through the page index.
    fn pages_with_rows(
        file: &Arc<Prefetched>,
        metadata: &ParquetMetaData,
        name: &str,
    ) -> Vec<(Page, std::ops::Range<usize>)> {
        let leaf = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == name)
            .unwrap();
        let mut pages = Vec::new();
        let mut first_row = 0usize;
        for group in 0..metadata.num_row_groups() {
            let row_group = metadata.row_group(group);
            let group_rows = row_group.num_rows() as usize;
            let locations = metadata
                .page_index()
                .and_then(|i| i.page_locations(group, leaf))
                .cloned()
                .unwrap();
            let mut reader = SerializedPageReader::new(
                Arc::clone(file),
                row_group.column(leaf),
                group_rows,
                Some(locations.clone()),
            )
            .unwrap();
            for (p, location) in locations.iter().enumerate() {
                let page = reader.get_next_page().unwrap().unwrap();
                let start = first_row + location.first_row_index as usize;
                let end = first_row
                    + locations
                        .get(p + 1)
                        .map_or(group_rows, |l| l.first_row_index as usize);
                pages.push((page, start..end));
            }
            first_row += group_rows;
        }
        pages
    }

    fn expand(page: &ArithmeticPage) -> Vec<i64> {
        let mut out = Vec::new();
        ArithmeticTimes::extend(page, 0..page.len, &mut out);
        // Any part of the page, as a scan may take it.
        for (from, to) in [
            (0, page.len / 3),
            (page.len / 3, page.len),
            (1, 6.min(page.len)),
        ] {
            let mut part = Vec::new();
            ArithmeticTimes::extend(page, from..to, &mut part);
            assert_eq!(part, out[from..to], "rows {from}..{to}");
        }
        out
    }

    /// Pages that are not arithmetic runs (jitter, a zero or negative step) are left to the
    /// column reader.
    #[test]
    fn only_arithmetic_time_pages_are_generated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        // Times stepping by 5 up to index `at`, by 7 after it.
        let step_changing_at = |at: i64| -> Vec<i64> {
            (0..5_000)
                .map(|i| {
                    if i <= at {
                        5 * i
                    } else {
                        5 * at + 7 * (i - at)
                    }
                })
                .collect()
        };
        let cases: [(&str, Vec<i64>, bool); 6] = [
            ("steps", (0..5_000).map(|i| 7 * i - 100).collect(), true),
            // The step changes where a block starts (parquet writes 256 deltas a block for 64-bit
            // values; the page's first value comes before them).
            ("two steps", step_changing_at(512), true),
            (
                "a step changing inside a block",
                step_changing_at(500),
                false,
            ),
            ("jitter", (0..5_000).map(|i| 3 * i + i % 2).collect(), false),
            ("descending", (0..5_000).map(|i| -i).collect(), false),
            (
                "near the top",
                (0..5_000).map(|i| i64::MAX - 5_000 + i).collect(),
                true,
            ),
        ];
        for (what, values, arithmetic) in cases {
            let run = Run {
                data_type: DataType::Int64,
                times: values.clone(),
                versions: vec![
                    Version {
                        hlc: 1,
                        instance: 0
                    };
                    values.len()
                ],
                values: ColumnValues::Int64(values.clone()),
            };
            crate::datafile::write(&path, 0, &[("root.sg.d.s".to_string(), run)]).unwrap();
            let file = File::open(&path).unwrap();
            let metadata = ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .unwrap();
            let file = Arc::new(Prefetched::new(file, Vec::new()).unwrap());
            let row_group = metadata.row_group(0);
            let leaf = 1; // `time`
            let mut reader = SerializedPageReader::new(
                Arc::clone(&file),
                row_group.column(leaf),
                row_group.num_rows() as usize,
                None,
            )
            .unwrap();
            let mut got = Vec::new();
            let mut all = true;
            while let Some(page) = reader.get_next_page().unwrap() {
                match arithmetic_times(&page) {
                    Some(times) => got.extend(expand(&times)),
                    None => all = false,
                }
            }
            assert_eq!(all, arithmetic, "{what}");
            if arithmetic {
                assert_eq!(got, values, "{what}");
            }
        }
    }
}
