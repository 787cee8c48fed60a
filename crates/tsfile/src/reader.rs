//! The streaming reader: opens a TsFile (magic, version, tail), then scans the data section in file
//! order and yields one decoded `SeriesChunk` per non-aligned chunk and per aligned value chunk.
//! Only the chunk being decoded is in memory (a header window, the chunk's bytes, its pages); an
//! aligned device's time column is kept until the next time chunk or chunk group.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::bytes::Cursor;
use crate::compress::decompress;
use crate::decode::{decode_times, decode_values, Values, Want};
use crate::error::{corrupt, Result, TsFileError};
use crate::format::{
    ChunkHeader, ChunkKind, DeviceId, PageHeader, CHUNK_GROUP_HEADER, MAGIC, OPERATION_INDEX_RANGE,
    SEPARATOR, VERSION_V4,
};
use crate::metadata::{self, FileMetadata};
use crate::types::{Column, Compression, DataType, Encoding, Physical, Value};

/// Where the bytes come from: positioned reads of a known length.
pub trait Source {
    fn byte_len(&mut self) -> std::io::Result<u64>;
    /// Fills `buf` from `offset`; fails if the source ends first.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for File {
    fn byte_len(&mut self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(buf)
    }
}

/// An in-memory file (a `Vec<u8>`, a `&[u8]`, ...).
#[derive(Debug, Clone)]
pub struct InMemory<T>(pub T);

impl<T: AsRef<[u8]>> Source for InMemory<T> {
    fn byte_len(&mut self) -> std::io::Result<u64> {
        Ok(self.0.as_ref().len() as u64)
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let data = self.0.as_ref();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Limits that keep a hostile file from driving allocations.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// The most timestamps one page may decode to (a run-length or zero-width delta encoding can
    /// claim billions from a few bytes). IoTDB writes at most `max_number_of_points_in_page`
    /// (10 000 by default) per page.
    pub max_page_points: usize,
    /// The encoding of a non-aligned page's time column, which the file does not record: the
    /// writer's `time_encoder` (TS_2DIFF unless configured otherwise, in IoTDB and in the C++
    /// writer alike). Aligned time chunks name theirs in the chunk header.
    pub time_encoding: Encoding,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_page_points: 1 << 24,
            time_encoding: Encoding::Ts2Diff,
        }
    }
}

/// One series' points from one chunk: a non-aligned chunk, or one value column of an aligned
/// device's chunk (its times are the time chunk's, shared by the device's columns; a row without
/// this measurement is a `None` in `values`).
#[derive(Debug, Clone)]
pub struct SeriesChunk {
    pub device: Arc<DeviceId>,
    pub measurement: String,
    pub data_type: DataType,
    pub encoding: Encoding,
    pub compression: Compression,
    pub aligned: bool,
    /// File offset of the chunk header.
    pub offset: u64,
    /// For an aligned column, the offset of its time chunk: the columns of one aligned chunk (one
    /// set of rows) share it.
    pub time_chunk_offset: Option<u64>,
    /// Ascending within a page as the writer wrote them; `values` has one slot per time.
    pub times: Arc<[i64]>,
    pub values: Column,
}

impl SeriesChunk {
    /// The chunk of `header`, at `offset`, as read: an aligned column's with the offset of its
    /// time chunk (whose times it shares), a non-aligned chunk's with none.
    fn read(
        device: Arc<DeviceId>,
        header: &ChunkHeader,
        data_type: DataType,
        offset: u64,
        time_chunk_offset: Option<u64>,
        times: Arc<[i64]>,
        values: Column,
    ) -> SeriesChunk {
        SeriesChunk {
            device,
            measurement: header.measurement.clone(),
            data_type,
            encoding: header.encoding,
            compression: header.compression,
            aligned: time_chunk_offset.is_some(),
            offset,
            time_chunk_offset,
            times,
            values,
        }
    }

    /// The non-null points, in order.
    pub fn points(&self) -> impl Iterator<Item = (i64, Value<'_>)> + '_ {
        self.times
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.values.get(i).map(|v| (*t, v)))
    }
}

/// A TsFile v4 opened for a streaming scan.
#[derive(Debug)]
pub struct TsFileReader<S: Source = File> {
    source: S,
    len: u64,
    metadata: FileMetadata,
    options: ReadOptions,
}

/// The largest chunk group or chunk header the reader accepts (device ids and measurement names
/// are short; a corrupt length must not make it read the rest of the file as a header).
const MAX_HEADER_BYTES: usize = 16 << 20;

/// Smallest file: head magic + version + SEPARATOR + metadata size + tail magic.
const MIN_LEN: u64 = 6 + 1 + 1 + 4 + 6;

impl TsFileReader<File> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        TsFileReader::new(File::open(path)?)
    }
}

impl<T: AsRef<[u8]>> TsFileReader<InMemory<T>> {
    pub fn from_bytes(bytes: T) -> Result<Self> {
        TsFileReader::new(InMemory(bytes))
    }
}

impl<S: Source> TsFileReader<S> {
    pub fn new(source: S) -> Result<Self> {
        Self::with_options(source, ReadOptions::default())
    }

    /// Checks the head (magic, version 4) and the tail (metadata length, magic, the metadata and
    /// the SEPARATOR where it says the data section ends).
    pub fn with_options(mut source: S, options: ReadOptions) -> Result<Self> {
        let len = source.byte_len()?;
        if len < MIN_LEN {
            return Err(corrupt(0, format!("{len} bytes is too short for a TsFile")));
        }
        let mut head = [0u8; 7];
        source.read_exact_at(0, &mut head)?;
        if &head[..6] != MAGIC {
            return Err(corrupt(0, "no TsFile magic at the start"));
        }
        if head[6] != VERSION_V4 {
            return Err(TsFileError::Unsupported(format!(
                "TsFile version {} (this reader reads version 4)",
                head[6]
            )));
        }
        let mut tail = [0u8; 10];
        source.read_exact_at(len - 10, &mut tail)?;
        if &tail[4..] != MAGIC {
            return Err(corrupt(
                len - 6,
                "no TsFile magic at the end (file not sealed or truncated)",
            ));
        }
        let meta_len = i32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let meta_len = u64::try_from(meta_len)
            .ok()
            .filter(|n| *n <= len - 10 - 8)
            .ok_or_else(|| corrupt(len - 10, format!("metadata length {meta_len}")))?;
        let meta_start = len - 10 - meta_len;
        let mut meta = vec![0u8; meta_len as usize];
        source.read_exact_at(meta_start, &mut meta)?;
        let metadata = metadata::parse(&meta, meta_start)?;
        if metadata.meta_offset < 7 || metadata.meta_offset >= meta_start {
            return Err(corrupt(
                meta_start,
                format!(
                    "metadata offset {} outside the file's data",
                    metadata.meta_offset
                ),
            ));
        }
        let mut marker = [0u8; 1];
        source.read_exact_at(metadata.meta_offset, &mut marker)?;
        if marker[0] != SEPARATOR {
            return Err(corrupt(
                metadata.meta_offset,
                "no SEPARATOR where the metadata says the data ends",
            ));
        }
        Ok(TsFileReader {
            source,
            len,
            metadata,
            options,
        })
    }

    pub fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Scans the data section in file order. The iterator ends after the first error.
    pub fn chunks(&mut self) -> Chunks<'_, S> {
        Chunks {
            end: self.metadata.meta_offset,
            reader: self,
            pos: 7,
            device: None,
            time: None,
            time_unsupported: None,
            finished: false,
        }
    }
}

/// The time column of the aligned chunk being read: per page, so value pages line up.
#[derive(Debug)]
struct AlignedTimes {
    offset: u64,
    pages: Vec<Vec<i64>>,
    all: Arc<[i64]>,
    single_page: bool,
}

/// The streaming scan (see `TsFileReader::chunks`).
#[derive(Debug)]
pub struct Chunks<'r, S: Source> {
    reader: &'r mut TsFileReader<S>,
    pos: u64,
    end: u64,
    device: Option<Arc<DeviceId>>,
    time: Option<AlignedTimes>,
    /// Why the current aligned time column could not be decoded (its value chunks are skipped
    /// with the same reason).
    time_unsupported: Option<String>,
    finished: bool,
}

impl<S: Source> Iterator for Chunks<'_, S> {
    type Item = Result<SeriesChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let before = self.pos;
        match self.step() {
            Ok(Some(chunk)) => Some(Ok(chunk)),
            Ok(None) => {
                self.finished = true;
                None
            }
            // A chunk this reader cannot decode was skipped whole: the scan can go on.
            Err(e @ TsFileError::Unsupported(_)) if self.pos > before => Some(Err(e)),
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

impl<S: Source> Chunks<'_, S> {
    /// Reads up to `want` bytes at `pos` without passing the data section's end.
    fn window(&mut self, pos: u64, want: usize) -> Result<Vec<u8>> {
        let n = (self.end - pos).min(want as u64) as usize;
        let mut buf = vec![0u8; n];
        self.reader.source.read_exact_at(pos, &mut buf)?;
        Ok(buf)
    }

    /// Parses a header at `pos` with `parse`, widening the window while the header runs past it.
    fn header<T>(
        &mut self,
        pos: u64,
        parse: impl Fn(&mut Cursor<'_>) -> Result<T>,
    ) -> Result<(T, u64)> {
        let mut want = 4096usize;
        loop {
            let buf = self.window(pos, want)?;
            let mut c = Cursor::new(&buf, pos);
            match parse(&mut c) {
                Ok(v) => return Ok((v, c.position() as u64)),
                Err(TsFileError::Corrupt { .. })
                    if (buf.len() as u64) < self.end - pos && want < MAX_HEADER_BYTES =>
                {
                    want = want.saturating_mul(4);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn step(&mut self) -> Result<Option<SeriesChunk>> {
        loop {
            if self.pos >= self.end {
                return Ok(None);
            }
            let at = self.pos;
            let mut marker = [0u8; 1];
            self.reader.source.read_exact_at(at, &mut marker)?;
            let marker = marker[0];
            match marker {
                CHUNK_GROUP_HEADER => {
                    let (device, used) = self.header(at + 1, DeviceId::parse)?;
                    self.device = Some(Arc::new(device));
                    self.time = None;
                    self.time_unsupported = None;
                    self.pos = at + 1 + used;
                }
                OPERATION_INDEX_RANGE => {
                    if self.end - at < 17 {
                        return Err(corrupt(at, "truncated operation index range"));
                    }
                    self.pos = at + 17;
                }
                SEPARATOR => {
                    return Err(corrupt(at, "SEPARATOR before the metadata offset"));
                }
                _ => {
                    let (header, used) = self.header(at + 1, |c| ChunkHeader::parse(marker, c))?;
                    let data_at = at + 1 + used;
                    if header.data_size as u64 > self.end - data_at {
                        return Err(corrupt(
                            at,
                            format!(
                                "chunk {:?} of {} bytes runs past the data section",
                                header.measurement, header.data_size
                            ),
                        ));
                    }
                    let data = self.window(data_at, header.data_size)?;
                    self.pos = data_at + header.data_size as u64;
                    let chunk = self
                        .chunk(at, &header, &data, data_at)
                        .map_err(|e| match e {
                            TsFileError::Unsupported(why) => TsFileError::Unsupported(format!(
                                "series {}.{} (chunk at offset {at}): {why}",
                                self.device
                                    .as_deref()
                                    .map(DeviceId::path)
                                    .unwrap_or_default(),
                                header.measurement
                            )),
                            e => e,
                        })?;
                    if let Some(chunk) = chunk {
                        return Ok(Some(chunk));
                    }
                }
            }
        }
    }

    fn chunk(
        &mut self,
        at: u64,
        header: &ChunkHeader,
        data: &[u8],
        data_at: u64,
    ) -> Result<Option<SeriesChunk>> {
        let device = self
            .device
            .clone()
            .ok_or_else(|| corrupt(at, "chunk before any chunk group header"))?;
        let limit = self.reader.options.max_page_points;
        let time_encoding = self.reader.options.time_encoding;
        match header.kind {
            ChunkKind::Time => {
                self.time = None;
                self.time_unsupported = None;
                let mut pages = Vec::new();
                for_each_full_page(header, data, data_at, "a time chunk", |page, c, body_at| {
                    let times = decode_times(header.encoding, c, limit)?;
                    check_statistics(page, &times, body_at)?;
                    pages.push(times);
                    Ok(())
                })
                .inspect_err(|e| {
                    if let TsFileError::Unsupported(why) = e {
                        self.time_unsupported = Some(why.clone());
                    }
                })?;
                let all: Arc<[i64]> = pages.concat().into();
                self.time = Some(AlignedTimes {
                    offset: at,
                    pages,
                    all,
                    single_page: header.single_page,
                });
                Ok(None)
            }
            ChunkKind::Value => {
                if let Some(why) = &self.time_unsupported {
                    return Err(TsFileError::Unsupported(format!(
                        "column {:?} of {device}: its time column: {why}",
                        header.measurement
                    )));
                }
                let time = self
                    .time
                    .as_ref()
                    .ok_or_else(|| corrupt(at, "value chunk without a time chunk before it"))?;
                let data_type = header
                    .data_type
                    .ok_or_else(|| corrupt(at, "value chunk without a type"))?;
                let mut column = Column::empty(Physical::of(data_type));
                let mut index = 0usize;
                // The time chunk decides whether pages carry statistics (as Java's
                // `AbstractAlignedChunkReader` does).
                for_each_page(
                    header,
                    time.single_page,
                    data,
                    data_at,
                    |_, body, body_at| {
                        let rows = time.pages.get(index).map(|p| p.len()).ok_or_else(|| {
                            corrupt(body_at, "value chunk has more pages than its time chunk")
                        })?;
                        index += 1;
                        match body {
                            None => push_nulls(&mut column, rows),
                            Some(body) => {
                                value_page(header, data_type, &body, body_at, rows, &mut column)?
                            }
                        }
                        Ok(())
                    },
                )?;
                if index != time.pages.len() {
                    return Err(corrupt(
                        at,
                        format!(
                            "value chunk has {index} pages, its time chunk {}",
                            time.pages.len()
                        ),
                    ));
                }
                Ok(Some(SeriesChunk::read(
                    device,
                    header,
                    data_type,
                    at,
                    Some(time.offset),
                    time.all.clone(),
                    column,
                )))
            }
            ChunkKind::Plain => {
                let data_type = header
                    .data_type
                    .ok_or_else(|| corrupt(at, "chunk without a type"))?;
                let mut times_all = Vec::new();
                let mut column = Column::empty(Physical::of(data_type));
                for_each_full_page(
                    header,
                    data,
                    data_at,
                    "a non-aligned chunk",
                    |page, c, body_at| {
                        let time_len = c.uvarint("page time column length")? as usize;
                        let time_bytes = c.take(time_len, "page time column")?;
                        let mut tc = Cursor::new(time_bytes, body_at);
                        let times = decode_times(time_encoding, &mut tc, limit)?;
                        check_statistics(page, &times, body_at)?;
                        let values = decode_values(
                            header.encoding,
                            data_type,
                            c,
                            Want::Exactly(times.len()),
                        )?;
                        append(&mut column, values, None, body_at)?;
                        times_all.extend_from_slice(&times);
                        Ok(())
                    },
                )?;
                Ok(Some(SeriesChunk::read(
                    device,
                    header,
                    data_type,
                    at,
                    None,
                    times_all.into(),
                    column,
                )))
            }
        }
    }
}

/// [`for_each_page`] over a chunk of its own pages (a time or non-aligned chunk), where an empty page
/// is corrupt (`chunk` names the chunk in the error); `f` reads each page's body from the cursor
/// (the body's file offset with it).
fn for_each_full_page(
    header: &ChunkHeader,
    data: &[u8],
    data_at: u64,
    chunk: &str,
    mut f: impl FnMut(Option<crate::format::PageStatistics>, &mut Cursor<'_>, u64) -> Result<()>,
) -> Result<()> {
    for_each_page(
        header,
        header.single_page,
        data,
        data_at,
        |page, body, body_at| {
            let body = body.ok_or_else(|| corrupt(body_at, format!("empty page in {chunk}")))?;
            f(page, &mut Cursor::new(&body, body_at), body_at)
        },
    )
}

/// Walks a chunk's pages: header (statistics when `with_statistics` is false only for a single
/// page chunk), decompression. `body` is `None` for an empty page.
fn for_each_page(
    header: &ChunkHeader,
    single_page: bool,
    data: &[u8],
    data_at: u64,
    mut f: impl FnMut(Option<crate::format::PageStatistics>, Option<Vec<u8>>, u64) -> Result<()>,
) -> Result<()> {
    let mut c = Cursor::new(data, data_at);
    while !c.is_empty() {
        let page_at = c.offset();
        let page = PageHeader::parse(&mut c, header.data_type, !single_page)?;
        if page.uncompressed == 0 {
            f(None, None, page_at)?;
            continue;
        }
        let body_at = c.offset();
        let compressed = c.take(page.compressed, "page data")?;
        if header.compression == Compression::Uncompressed && page.compressed != page.uncompressed {
            return Err(corrupt(
                page_at,
                format!(
                    "uncompressed page of {} bytes says {}",
                    page.compressed, page.uncompressed
                ),
            ));
        }
        let body = decompress(header.compression, compressed, page.uncompressed, body_at)?;
        f(page.statistics, Some(body), body_at)?;
    }
    Ok(())
}

fn check_statistics(
    page: Option<crate::format::PageStatistics>,
    times: &[i64],
    at: u64,
) -> Result<()> {
    if let Some(s) = page {
        if s.count as usize != times.len()
            || times.first().is_some_and(|t| *t != s.start_time)
            || times.last().is_some_and(|t| *t != s.end_time)
        {
            return Err(corrupt(
                at,
                format!(
                    "page statistics say {} points from {} to {}, the page holds {} from {:?} to {:?}",
                    s.count,
                    s.start_time,
                    s.end_time,
                    times.len(),
                    times.first(),
                    times.last()
                ),
            ));
        }
    }
    Ok(())
}

/// An aligned value page: int32 row count, a null bitmap (bit set = value present, MSB first,
/// `ValuePageReader.splitDataToBitmapAndValue`), then the present values.
fn value_page(
    header: &ChunkHeader,
    data_type: DataType,
    body: &[u8],
    body_at: u64,
    rows: usize,
    column: &mut Column,
) -> Result<()> {
    let mut c = Cursor::new(body, body_at);
    let size = c.i32_be("value page row count")?;
    if usize::try_from(size).ok() != Some(rows) {
        return Err(corrupt(
            body_at,
            format!("value page of {size} rows, its time page has {rows}"),
        ));
    }
    let bitmap = c.take(rows.div_ceil(8), "value page null bitmap")?;
    let present: Vec<bool> = (0..rows)
        .map(|i| bitmap[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect();
    let count = present.iter().filter(|p| **p).count();
    let values = decode_values(header.encoding, data_type, &mut c, Want::Exactly(count))?;
    append(column, values, Some(&present), body_at)
}

fn push_nulls(column: &mut Column, rows: usize) {
    match column {
        Column::Boolean(v) => v.extend(std::iter::repeat_n(None, rows)),
        Column::Int32(v) => v.extend(std::iter::repeat_n(None, rows)),
        Column::Int64(v) => v.extend(std::iter::repeat_n(None, rows)),
        Column::Float(v) => v.extend(std::iter::repeat_n(None, rows)),
        Column::Double(v) => v.extend(std::iter::repeat_n(None, rows)),
        Column::Binary(v) => v.extend(std::iter::repeat_n(None, rows)),
    }
}

/// Appends decoded values, spreading them over the present rows when there is a bitmap.
fn append(column: &mut Column, values: Values, present: Option<&[bool]>, at: u64) -> Result<()> {
    fn spread<T>(out: &mut Vec<Option<T>>, values: Vec<T>, present: Option<&[bool]>) {
        match present {
            None => out.extend(values.into_iter().map(Some)),
            Some(present) => {
                let mut it = values.into_iter();
                out.extend(present.iter().map(|p| if *p { it.next() } else { None }));
            }
        }
    }
    match (column, values) {
        (Column::Boolean(out), Values::Boolean(v)) => spread(out, v, present),
        (Column::Int32(out), Values::Int32(v)) => spread(out, v, present),
        (Column::Int64(out), Values::Int64(v)) => spread(out, v, present),
        (Column::Float(out), Values::Float(v)) => spread(out, v, present),
        (Column::Double(out), Values::Double(v)) => spread(out, v, present),
        (Column::Binary(out), Values::Binary(v)) => spread(out, v, present),
        _ => {
            return Err(corrupt(
                at,
                "decoded values of another type than the column",
            ))
        }
    }
    Ok(())
}
