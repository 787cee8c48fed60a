//! The change log on disk: segment files, the record format, recovery, reading by LSN, and release
//! of old segments.
//!
//! A segment is `wal/<first lsn, 20 digits>.log`: the 8-byte magic `DUETWAL\x01` (the last byte is
//! the format version) followed by records `len:u32 | crc32c(payload):u32 | payload` (little-endian;
//! the payload is the entry encoding described in `codec.rs`). LSNs are contiguous: the record at
//! index `i` of a segment has LSN `first + i`, and the next segment starts where the previous one
//! ended.
//!
//! Recovery trusts nothing it cannot check. A bad record (short header, length past the end of the
//! file, checksum mismatch, zero length) at the end of the last segment is a torn write that was
//! never acknowledged: it is cut off. A bad record followed by a valid one, a bad record in any other
//! segment, an undecodable record with a valid checksum, or a gap in LSNs is corruption and fails
//! the open with [`Error::Corrupt`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::codec;
use crate::error::{Error, Result};
use crate::types::{LogEntry, LogHeader, Lsn};

pub(crate) const MAGIC: &[u8; 8] = b"DUETWAL\x01";
const RECORD_HEADER_BYTES: usize = 8;
/// A record longer than this is treated as garbage (a torn length field), not as a real entry.
const MAX_RECORD_BYTES: u32 = 1 << 30;

pub(crate) fn segment_path(wal_dir: &Path, first_lsn: Lsn) -> PathBuf {
    wal_dir.join(format!("{first_lsn:020}.log"))
}

/// The in-memory map from LSN to file position, shared by the writer and the readers.
#[derive(Debug, Default)]
pub(crate) struct WalIndex {
    pub segments: Vec<SegmentMeta>,
}

#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub first_lsn: Lsn,
    pub path: PathBuf,
    /// Byte offset of every record: entry `first_lsn + i` starts at `offsets[i]`.
    pub offsets: Vec<u64>,
    pub bytes: u64,
}

impl SegmentMeta {
    /// One past the last LSN in this segment.
    fn end_lsn(&self) -> Lsn {
        self.first_lsn + self.offsets.len() as u64
    }
}

/// What [`crate::Storage::read_log`] returns (and, with [`LogHeader`] items,
/// [`crate::Storage::read_log_headers`]).
#[derive(Debug, Clone, PartialEq)]
pub enum LogRead<T = LogEntry> {
    /// Entries after `from`, in LSN order (empty when the reader is caught up).
    Entries(Vec<T>),
    /// The log below `available_from` was released (the retention cap was exceeded): the reader must
    /// catch up from the data files, then continue from the log.
    Truncated { available_from: Lsn },
}

impl WalIndex {
    pub(crate) fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// The lowest LSN still readable from the log.
    pub(crate) fn available_from(&self) -> Option<Lsn> {
        self.segments.first().map(|s| s.first_lsn)
    }

    /// Reads up to `max_entries` entries after `from`, never past `head` (the last applied LSN, so a
    /// record being written is never seen half-done).
    pub(crate) fn read(
        index: &std::sync::Mutex<WalIndex>,
        from: Lsn,
        max_entries: usize,
        head: Lsn,
    ) -> Result<LogRead> {
        Self::read_with(index, from, max_entries, head, read_records)
    }

    /// Like [`WalIndex::read`], but only each entry's header: the operations are skipped, not read
    /// or checked (a count of what a pipe will send, without the cost of decoding it).
    pub(crate) fn read_headers(
        index: &std::sync::Mutex<WalIndex>,
        from: Lsn,
        max_entries: usize,
        head: Lsn,
    ) -> Result<LogRead<LogHeader>> {
        Self::read_with(index, from, max_entries, head, read_log_headers)
    }

    fn read_with<T>(
        index: &std::sync::Mutex<WalIndex>,
        from: Lsn,
        max_entries: usize,
        head: Lsn,
        read_segment: fn(File, &Path, u64, usize, &mut Vec<T>) -> Result<()>,
    ) -> Result<LogRead<T>> {
        let mut plan: Vec<(File, PathBuf, u64, usize)> = Vec::new();
        {
            let index = index.lock().unwrap_or_else(|e| e.into_inner());
            let available_from = index.available_from().unwrap_or(head + 1);
            if from.saturating_add(1) < available_from {
                return Ok(LogRead::Truncated { available_from });
            }
            if from >= head || max_entries == 0 {
                return Ok(LogRead::Entries(Vec::new()));
            }
            let mut next = from + 1;
            let mut wanted = (head - from).min(max_entries as u64);
            for segment in &index.segments {
                if wanted == 0 {
                    break;
                }
                if segment.end_lsn() <= next {
                    continue;
                }
                let i = (next - segment.first_lsn) as usize;
                let Some(offset) = segment.offsets.get(i) else {
                    break;
                };
                let count = ((segment.offsets.len() - i) as u64).min(wanted);
                // Open while holding the lock, so release cannot delete the file in between (an
                // open file stays readable after it is unlinked).
                let file = File::open(&segment.path)?;
                plan.push((file, segment.path.clone(), *offset, count as usize));
                next += count;
                wanted -= count;
            }
        }
        let mut entries = Vec::new();
        for (file, path, offset, count) in plan {
            read_segment(file, &path, offset, count, &mut entries)?;
        }
        Ok(LogRead::Entries(entries))
    }

    /// Deletes the oldest segments that are not needed: every LSN in them is at or below
    /// `recovery_keep_from - 1` (flushed) and below `cursor_keep_from` (acknowledged by every pipe).
    /// Segments kept only for cursors are deleted anyway, oldest first, while their size exceeds
    /// `cap_bytes`. The segment being written is never deleted. Returns the number deleted.
    pub(crate) fn release(
        index: &std::sync::Mutex<WalIndex>,
        recovery_keep_from: Lsn,
        cursor_keep_from: Lsn,
        cap_bytes: u64,
        wal_dir: &Path,
    ) -> Result<usize> {
        let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
        let n = index.segments.len();
        let releasable: Vec<&SegmentMeta> = index
            .segments
            .iter()
            .take(n.saturating_sub(1))
            .take_while(|s| s.end_lsn() <= recovery_keep_from)
            .collect();
        let mut kept_for_cursors: u64 = releasable
            .iter()
            .filter(|s| s.end_lsn() > cursor_keep_from)
            .map(|s| s.bytes)
            .sum();
        let mut count = 0;
        for segment in &releasable {
            let needed_by_cursor = segment.end_lsn() > cursor_keep_from;
            if needed_by_cursor && kept_for_cursors <= cap_bytes {
                break;
            }
            if needed_by_cursor {
                kept_for_cursors -= segment.bytes;
                tracing::warn!(
                    segment = %segment.path.display(),
                    "change log retention cap exceeded: releasing a segment a pipe has not acknowledged"
                );
            }
            count += 1;
        }
        for segment in index.segments.drain(..count) {
            match fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if count > 0 {
            sync_dir(wal_dir)?;
        }
        Ok(count)
    }
}

fn read_records(
    file: File,
    path: &Path,
    offset: u64,
    count: usize,
    out: &mut Vec<LogEntry>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    reader.seek(SeekFrom::Start(offset))?;
    let mut pos = offset;
    let mut header = [0u8; RECORD_HEADER_BYTES];
    let mut payload = Vec::new();
    for _ in 0..count {
        reader.read_exact(&mut header)?;
        let (len, crc) = parse_header(&header);
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload)?;
        if crc32c::crc32c(&payload) != crc {
            return Err(corrupt(path, pos, "checksum mismatch"));
        }
        let entry = codec::decode_entry(&payload)
            .map_err(|reason| corrupt(path, pos, &reason.to_string()))?;
        out.push(entry);
        pos += (RECORD_HEADER_BYTES + len as usize) as u64;
    }
    Ok(())
}

/// Reads `count` records' headers from `offset`, seeking past their operations.
fn read_log_headers(
    file: File,
    path: &Path,
    offset: u64,
    count: usize,
    out: &mut Vec<LogHeader>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    reader.seek(SeekFrom::Start(offset))?;
    let mut pos = offset;
    let mut header = [0u8; RECORD_HEADER_BYTES];
    let mut prefix = [0u8; codec::HEADER_PREFIX_BYTES];
    for _ in 0..count {
        reader.read_exact(&mut header)?;
        let (len, _) = parse_header(&header);
        let n = (len as usize).min(prefix.len());
        reader.read_exact(&mut prefix[..n])?;
        let item = codec::decode_log_header(&prefix[..n])
            .map_err(|reason| corrupt(path, pos, &reason.to_string()))?;
        out.push(item);
        reader.seek_relative(i64::from(len) - n as i64)?;
        pos += (RECORD_HEADER_BYTES + len as usize) as u64;
    }
    Ok(())
}

fn parse_header(header: &[u8; RECORD_HEADER_BYTES]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = *header;
    (
        u32::from_le_bytes([a, b, c, d]),
        u32::from_le_bytes([e, f, g, h]),
    )
}

fn corrupt(file: &Path, offset: u64, reason: &str) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

/// Appends one record (`len | crc | header | ops`) to `out`; returns its length on disk.
pub(crate) fn encode_record(header: &[u8], ops: &[u8], out: &mut Vec<u8>) -> usize {
    let len = header.len() + ops.len();
    let crc = crc32c::crc32c_append(crc32c::crc32c(header), ops);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(ops);
    RECORD_HEADER_BYTES + len
}

/// The result of scanning the log at open.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub index: WalIndex,
    /// The last LSN in the log (0 if the log is empty).
    pub last_lsn: Lsn,
}

/// Checks every segment, cuts a torn tail, and hands each entry above `flushed_lsn` to `apply`.
pub(crate) fn recover(
    wal_dir: &Path,
    flushed_lsn: Lsn,
    mut apply: impl FnMut(LogEntry) -> Result<()>,
) -> Result<Recovered> {
    let mut names: Vec<(Lsn, PathBuf)> = Vec::new();
    for dirent in fs::read_dir(wal_dir)? {
        let path = dirent?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".log") else {
            continue;
        };
        match stem.parse::<Lsn>() {
            Ok(first) if stem.len() == 20 => names.push((first, path)),
            _ => {
                tracing::warn!(file = %path.display(), "ignoring unexpected file in the log directory")
            }
        }
    }
    names.sort();
    let mut index = WalIndex::default();
    let mut expected: Option<Lsn> = None;
    let n_segments = names.len();
    for (i, (first_lsn, path)) in names.into_iter().enumerate() {
        let is_last = i + 1 == n_segments;
        match expected {
            None if first_lsn > flushed_lsn + 1 => {
                return Err(corrupt(
                    &path,
                    0,
                    &format!(
                        "log starts at lsn {first_lsn} but only lsn {flushed_lsn} was flushed"
                    ),
                ))
            }
            Some(expected) if expected != first_lsn => {
                return Err(corrupt(
                    &path,
                    0,
                    &format!("segment starts at lsn {first_lsn}, expected {expected}"),
                ))
            }
            _ => {}
        }
        let segment = recover_segment(&path, first_lsn, is_last, flushed_lsn, &mut apply)?;
        expected = Some(segment.end_lsn());
        index.segments.push(segment);
    }
    let last_lsn = expected.map_or(0, |next| next - 1);
    Ok(Recovered { index, last_lsn })
}

fn recover_segment(
    path: &Path,
    first_lsn: Lsn,
    is_last: bool,
    flushed_lsn: Lsn,
    apply: &mut impl FnMut(LogEntry) -> Result<()>,
) -> Result<SegmentMeta> {
    let bytes = fs::read(path)?;
    if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        // A crash while a new last segment was being created leaves a prefix of the magic.
        if is_last && bytes.len() < MAGIC.len() && MAGIC.starts_with(&bytes) {
            tracing::warn!(file = %path.display(), "rewriting the header of a torn new segment");
            let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
            file.write_all(MAGIC)?;
            file.sync_all()?;
            return Ok(SegmentMeta {
                first_lsn,
                path: path.to_path_buf(),
                offsets: Vec::new(),
                bytes: MAGIC.len() as u64,
            });
        }
        return Err(corrupt(
            path,
            0,
            "not a Duet log segment (bad magic or version)",
        ));
    }
    let mut offsets = Vec::new();
    let mut pos = MAGIC.len();
    let mut lsn = first_lsn;
    while pos < bytes.len() {
        match check_record(&bytes, pos) {
            Ok(len) => {
                let payload = bytes
                    .get(pos + RECORD_HEADER_BYTES..pos + RECORD_HEADER_BYTES + len)
                    .unwrap_or_default();
                let entry = codec::decode_entry(payload)
                    .map_err(|r| corrupt(path, pos as u64, &r.to_string()))?;
                if entry.lsn != lsn {
                    return Err(corrupt(
                        path,
                        pos as u64,
                        &format!("record has lsn {}, expected {lsn}", entry.lsn),
                    ));
                }
                if entry.lsn > flushed_lsn {
                    apply(entry)?;
                }
                offsets.push(pos as u64);
                pos += RECORD_HEADER_BYTES + len;
                lsn += 1;
            }
            Err((reason, claimed_end)) => {
                let followed_by_valid =
                    claimed_end.is_some_and(|end| check_record(&bytes, end).is_ok());
                if !is_last || followed_by_valid {
                    return Err(corrupt(path, pos as u64, &reason));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset = pos,
                    dropped_bytes = bytes.len() - pos,
                    %reason,
                    "dropping the torn tail of the change log"
                );
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(pos as u64)?;
                file.sync_all()?;
                break;
            }
        }
    }
    Ok(SegmentMeta {
        first_lsn,
        path: path.to_path_buf(),
        offsets,
        bytes: pos as u64,
    })
}

/// Checks the record at `pos`: its payload length if the record is whole and its checksum matches,
/// else a reason and, when the length field is plausible, where the next record would start.
fn check_record(bytes: &[u8], pos: usize) -> std::result::Result<usize, (String, Option<usize>)> {
    let Some(header) = bytes.get(pos..pos + RECORD_HEADER_BYTES) else {
        return Err(("record header runs past the end of the file".into(), None));
    };
    let mut fixed = [0u8; RECORD_HEADER_BYTES];
    fixed.copy_from_slice(header);
    let (len, crc) = parse_header(&fixed);
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err((format!("implausible record length {len}"), None));
    }
    let end = pos + RECORD_HEADER_BYTES + len as usize;
    let Some(payload) = bytes.get(pos + RECORD_HEADER_BYTES..end) else {
        return Err(("record runs past the end of the file".into(), None));
    };
    if crc32c::crc32c(payload) != crc {
        return Err(("checksum mismatch".into(), Some(end)));
    }
    Ok(len as usize)
}

/// The segment being appended to; owned by the log-writer thread alone.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    pub file: File,
    pub bytes: u64,
}

impl SegmentWriter {
    /// Opens the last recovered segment for appending.
    pub(crate) fn reopen(path: &Path, bytes: u64) -> Result<SegmentWriter> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(SegmentWriter { file, bytes })
    }

    /// Creates a new segment starting at `first_lsn`, durable (file and directory) before any record
    /// goes into it.
    pub(crate) fn create(wal_dir: &Path, first_lsn: Lsn) -> Result<(SegmentWriter, SegmentMeta)> {
        let path = segment_path(wal_dir, first_lsn);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let started = file
            .write_all(MAGIC)
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_dir(wal_dir));
        if let Err(e) = started {
            // A segment that never took a record must not be left behind: the next try (the disk
            // may be full for a while) creates it anew, and recovery must not find half a header.
            drop(file);
            let _ = fs::remove_file(&path);
            let _ = sync_dir(wal_dir);
            return Err(e.into());
        }
        let meta = SegmentMeta {
            first_lsn,
            path,
            offsets: Vec::new(),
            bytes: MAGIC.len() as u64,
        };
        Ok((
            SegmentWriter {
                file,
                bytes: MAGIC.len() as u64,
            },
            meta,
        ))
    }
}

/// Makes a directory's entries (new, renamed or deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
