//! A data file whose pages a read will need are read ahead, one system call per column, for the
//! Parquet reader: reading a file directly, the reader duplicates the descriptor, seeks, reads and
//! closes once per page (4,096 rows), which cost a flushed scan a quarter of its time.
//!
//! **Invariant:** the bytes handed out are the file's bytes at the asked offsets: from a read-ahead
//! range when it holds them whole, else read from the file then; the ranges only save calls.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::{Buf, Bytes};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{ChunkReader, Length};

/// A data file with some byte ranges already in memory.
pub(crate) struct Prefetched {
    file: File,
    len: u64,
    /// (start offset, bytes), ascending and disjoint.
    ranges: Vec<(u64, Bytes)>,
}

impl Prefetched {
    /// Reads `ranges` of `file` (overlapping or touching ranges are read as one).
    pub(crate) fn new(file: File, ranges: Vec<Range<u64>>) -> std::io::Result<Prefetched> {
        let len = file.metadata()?.len();
        let mut ranges: Vec<Range<u64>> = ranges
            .into_iter()
            .map(|r| r.start.min(len)..r.end.min(len))
            .filter(|r| r.start < r.end)
            .collect();
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let mut read = Vec::with_capacity(merged.len());
        for r in merged {
            // Read into the vector's spare capacity (`read_to_end` does not zero it first: the
            // ranges are megabytes per scan chunk).
            let want = r.end - r.start;
            let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
            (&file).seek(SeekFrom::Start(r.start))?;
            (&file).take(want).read_to_end(&mut buf)?;
            if buf.len() as u64 != want {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            read.push((r.start, Bytes::from(buf)));
        }
        Ok(Prefetched {
            file,
            len,
            ranges: read,
        })
    }

    /// `length` bytes at `start` when one read-ahead range holds them.
    fn held(&self, start: u64, length: usize) -> Option<Bytes> {
        let i = self
            .ranges
            .partition_point(|(s, _)| *s <= start)
            .checked_sub(1)?;
        let (s, bytes) = self.ranges.get(i)?;
        let from = usize::try_from(start - s).ok()?;
        let to = from.checked_add(length)?;
        (to <= bytes.len()).then(|| bytes.slice(from..to))
    }
}

/// The byte ranges of the pages holding rows `rows` (absolute row numbers) of the leaf columns
/// named `columns`, from the file's offset index; empty without one (nothing is read ahead).
pub(crate) fn page_ranges(
    metadata: &ParquetMetaData,
    columns: &[&str],
    rows: Range<u64>,
) -> Vec<Range<u64>> {
    let Some(index) = metadata.page_index() else {
        return Vec::new();
    };
    let schema = metadata.file_metadata().schema_descr();
    let leaves: Vec<usize> = columns
        .iter()
        .filter_map(|name| schema.columns().iter().position(|c| c.name() == *name))
        .collect();
    let mut out = Vec::new();
    let mut group_start = 0u64;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let group_rows = u64::try_from(group.num_rows()).unwrap_or(0);
        let group_end = group_start + group_rows;
        if rows.start < group_end && group_start < rows.end {
            let first = rows.start.saturating_sub(group_start);
            let past = rows.end.min(group_end) - group_start;
            for leaf in &leaves {
                let Some(pages) = index.page_locations(g, *leaf) else {
                    continue;
                };
                let first_row = |p: usize| {
                    pages
                        .get(p)
                        .and_then(|l| u64::try_from(l.first_row_index).ok())
                        .unwrap_or(group_rows)
                };
                // Pages overlapping [first, past): those starting before `past` and not ending
                // at or before `first`.
                let wanted =
                    (0..pages.len()).filter(|p| first_row(*p) < past && first < first_row(p + 1));
                let mut span: Option<Range<u64>> = None;
                for p in wanted {
                    let Some(location) = pages.get(p) else {
                        continue;
                    };
                    let (Ok(offset), Ok(size)) = (
                        u64::try_from(location.offset),
                        u64::try_from(location.compressed_page_size),
                    ) else {
                        continue;
                    };
                    span = Some(match span {
                        None => offset..offset + size,
                        Some(s) => s.start.min(offset)..s.end.max(offset + size),
                    });
                }
                out.extend(span);
            }
        }
        group_start = group_end;
    }
    out
}

impl Length for Prefetched {
    fn len(&self) -> u64 {
        self.len
    }
}

/// What [`Prefetched::get_read`] reads from.
pub(crate) enum PrefetchedRead {
    Held(bytes::buf::Reader<Bytes>),
    File(BufReader<File>),
}

impl Read for PrefetchedRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            PrefetchedRead::Held(r) => r.read(buf),
            PrefetchedRead::File(r) => r.read(buf),
        }
    }
}

impl ChunkReader for Prefetched {
    type T = PrefetchedRead;

    /// A reader to the file's end: from memory when the last range reaches it, else the file's.
    fn get_read(&self, start: u64) -> parquet::errors::Result<PrefetchedRead> {
        if let Some(held) = self
            .len
            .checked_sub(start)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| self.held(start, n))
        {
            return Ok(PrefetchedRead::Held(held.reader()));
        }
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        Ok(PrefetchedRead::File(BufReader::new(file)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if let Some(held) = self.held(start, length) {
            return Ok(held);
        }
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(Bytes::from(buf))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn bytes_come_from_the_ranges_or_the_file_and_always_match_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&content).unwrap();
        let file = File::open(&path).unwrap();
        // Two ranges that touch are read as one; one reaches past the end.
        let p =
            Prefetched::new(file, vec![100..200, 200..300, 5_000..6_000, 9_990..20_000]).unwrap();
        assert_eq!(p.ranges.len(), 3);
        assert_eq!(p.len(), 10_000);
        for (start, length) in [
            (100, 200),
            (150, 10),
            (5_000, 1_000),
            (4_990, 20),
            (0, 10_000),
            (9_995, 5),
        ] {
            let got = p.get_bytes(start, length).unwrap();
            let from = start as usize;
            assert_eq!(&got[..], &content[from..from + length], "{start}+{length}");
        }
        assert!(p.get_bytes(9_995, 10).is_err(), "past the end");
        for start in [0u64, 9_990, 5_500] {
            let mut all = Vec::new();
            p.get_read(start).unwrap().read_to_end(&mut all).unwrap();
            assert_eq!(&all[..], &content[start as usize..], "read from {start}");
        }
    }
}
