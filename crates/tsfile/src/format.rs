//! The on-disk structures of TsFile v4's data section, as apache/tsfile a9f54614 writes and reads
//! them: `MetaMarker` (the marker bytes), `ChunkGroupHeader` with the v4 device id
//! (`StringArrayDeviceID.serialize`: an unsigned varint segment count, then zig-zag-length strings,
//! negative length = null), `ChunkHeader` (marker, name, unsigned varint data size, type, compressor,
//! encoding), `PageHeader` (unsigned varint sizes; statistics only in chunks of several pages) and
//! `Statistics.serialize` (count, start and end time, then type-specific fields).

use std::fmt;

use crate::bytes::Cursor;
use crate::error::{corrupt, Result, TsFileError};
use crate::types::{Compression, DataType, Encoding, VECTOR_TYPE_CODE};

pub(crate) const MAGIC: &[u8; 6] = b"TsFile";
pub(crate) const VERSION_V4: u8 = 0x04;

pub(crate) const CHUNK_GROUP_HEADER: u8 = 0;
pub(crate) const CHUNK_HEADER: u8 = 1;
pub(crate) const SEPARATOR: u8 = 2;
pub(crate) const OPERATION_INDEX_RANGE: u8 = 4;
pub(crate) const ONLY_ONE_PAGE_CHUNK_HEADER: u8 = 5;
/// `TsFileConstant.TIME_COLUMN_MASK` / `VALUE_COLUMN_MASK`: the chunk marker's high bits for an
/// aligned device's time chunk and value chunks.
pub(crate) const TIME_COLUMN_MASK: u8 = 0x80;
pub(crate) const VALUE_COLUMN_MASK: u8 = 0x40;

/// A device's identity in a v4 TsFile. In the tree model the first segment is the path's first
/// three levels (`root.sg.d1` is `["root.sg", "d1"]`, `root.a.b.c.d` is `["root.a.b", "c", "d"]`);
/// in the table model it is the table name followed by the tag values (null for a null tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    segments: Vec<Option<String>>,
}

impl DeviceId {
    pub fn new(segments: Vec<Option<String>>) -> Self {
        DeviceId { segments }
    }

    pub fn segments(&self) -> &[Option<String>] {
        &self.segments
    }

    /// The tree-model path (`root.sg.d1`): the segments joined with dots, as
    /// `StringArrayDeviceID.toString` does (a null segment reads `null`).
    pub fn path(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| s.as_deref().unwrap_or("null"))
            .collect();
        parts.join(".")
    }

    /// The first segment: the table name in the table model, the first three levels in the tree.
    pub fn table_name(&self) -> &str {
        self.segments
            .first()
            .and_then(|s| s.as_deref())
            .unwrap_or("")
    }

    pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<DeviceId> {
        let n = c.count(1, "device id segment count")?;
        if n == 0 {
            return Ok(DeviceId {
                segments: vec![Some(String::new())],
            });
        }
        let mut segments = Vec::with_capacity(n);
        for _ in 0..n {
            segments.push(c.var_string("device id segment")?);
        }
        Ok(DeviceId { segments })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// What a chunk is, from its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    /// A non-aligned series.
    Plain,
    /// An aligned device's time column.
    Time,
    /// An aligned device's value column.
    Value,
}

#[derive(Debug, Clone)]
pub(crate) struct ChunkHeader {
    pub kind: ChunkKind,
    /// Marker 5 (with or without the masks): one page, whose header carries no statistics.
    pub single_page: bool,
    pub measurement: String,
    pub data_size: usize,
    /// `None` for a time chunk (`VECTOR`).
    pub data_type: Option<DataType>,
    pub compression: Compression,
    pub encoding: Encoding,
}

impl ChunkHeader {
    /// Parses the header after its marker byte (already read).
    pub(crate) fn parse(marker: u8, c: &mut Cursor<'_>) -> Result<ChunkHeader> {
        let at = c.offset();
        let kind = match marker & (TIME_COLUMN_MASK | VALUE_COLUMN_MASK) {
            0 => ChunkKind::Plain,
            TIME_COLUMN_MASK => ChunkKind::Time,
            VALUE_COLUMN_MASK => ChunkKind::Value,
            _ => return Err(corrupt(at, format!("chunk marker {marker:#04x}"))),
        };
        let single_page = match marker & 0x3f {
            CHUNK_HEADER => false,
            ONLY_ONE_PAGE_CHUNK_HEADER => true,
            _ => return Err(corrupt(at, format!("chunk marker {marker:#04x}"))),
        };
        let measurement = c.var_string("measurement name")?.unwrap_or_default();
        let data_size = c.uvarint("chunk data size")? as usize;
        let type_at = c.offset();
        let type_code = c.u8("chunk data type")?;
        let compression_code = c.u8("chunk compressor")?;
        let encoding_code = c.u8("chunk encoding")?;
        let data_type = if type_code == VECTOR_TYPE_CODE {
            None
        } else {
            Some(DataType::from_code(i32::from(type_code)).ok_or_else(|| {
                TsFileError::Unsupported(format!(
                    "data type code {type_code} (at offset {type_at})"
                ))
            })?)
        };
        match (kind, data_type) {
            (ChunkKind::Time, None) | (ChunkKind::Plain | ChunkKind::Value, Some(_)) => {}
            _ => {
                return Err(corrupt(
                    type_at,
                    format!("{kind:?} chunk with data type code {type_code}"),
                ))
            }
        }
        let compression = Compression::from_code(compression_code)
            .ok_or_else(|| corrupt(type_at + 1, format!("compressor code {compression_code}")))?;
        let encoding = Encoding::from_code(encoding_code)
            .ok_or_else(|| corrupt(type_at + 2, format!("encoding code {encoding_code}")))?;
        Ok(ChunkHeader {
            kind,
            single_page,
            measurement,
            data_size,
            data_type,
            compression,
            encoding,
        })
    }
}

/// The parts of a page's statistics the reader checks its decoding against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageStatistics {
    pub count: u32,
    pub start_time: i64,
    pub end_time: i64,
}

impl PageStatistics {
    /// `Statistics.deserialize` for the data type (`None` = the time column's `TimeStatistics`).
    pub(crate) fn parse(c: &mut Cursor<'_>, data_type: Option<DataType>) -> Result<PageStatistics> {
        let count = c.uvarint("statistics count")?;
        let start_time = c.i64_be("statistics start time")?;
        let end_time = c.i64_be("statistics end time")?;
        let binaries = |c: &mut Cursor<'_>, n: usize| -> Result<()> {
            for _ in 0..n {
                let at = c.offset();
                let len = c.i32_be("statistics binary length")?;
                let len = usize::try_from(len)
                    .map_err(|_| corrupt(at, format!("statistics binary length {len}")))?;
                c.skip(len, "statistics binary")?;
            }
            Ok(())
        };
        match data_type {
            None | Some(DataType::Blob) => {}
            Some(DataType::Boolean) => c.skip(10, "BOOLEAN statistics")?,
            Some(DataType::Int32 | DataType::Date | DataType::Float) => c.skip(24, "statistics")?,
            Some(DataType::Int64 | DataType::Timestamp | DataType::Double) => {
                c.skip(40, "statistics")?
            }
            Some(DataType::Text) => binaries(c, 2)?,
            Some(DataType::String) => binaries(c, 4)?,
        }
        Ok(PageStatistics {
            count,
            start_time,
            end_time,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PageHeader {
    /// 0 = an empty page (an aligned value column with no value in the page's rows).
    pub uncompressed: usize,
    pub compressed: usize,
    pub statistics: Option<PageStatistics>,
}

impl PageHeader {
    pub(crate) fn parse(
        c: &mut Cursor<'_>,
        data_type: Option<DataType>,
        with_statistics: bool,
    ) -> Result<PageHeader> {
        let uncompressed = c.uvarint("page uncompressed size")? as usize;
        if uncompressed == 0 {
            return Ok(PageHeader {
                uncompressed: 0,
                compressed: 0,
                statistics: None,
            });
        }
        let compressed = c.uvarint("page compressed size")? as usize;
        let statistics = if with_statistics {
            Some(PageStatistics::parse(c, data_type)?)
        } else {
            None
        };
        Ok(PageHeader {
            uncompressed,
            compressed,
            statistics,
        })
    }
}
