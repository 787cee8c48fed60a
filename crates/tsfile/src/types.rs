//! TsFile's enumerations (data type, encoding, compressor) with their on-disk codes, and the
//! decoded column a page or chunk turns into. Codes from apache/tsfile a9f54614
//! `TSDataType`, `TSEncoding`, `CompressionType` (the Python package's `tsfile.constants` agrees).

use std::fmt;

/// A series' data type as TsFile stores it: IoTDB's, with IoTDB's codes.
pub use duet_types::DataType;

/// The in-memory representation of a data type's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physical {
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    Binary,
}

impl Physical {
    /// How the values of `data_type` are held in memory (and encoded): DATE is an INT32
    /// `yyyyMMdd`, TIMESTAMP an INT64, TEXT/STRING/BLOB are bytes.
    pub fn of(data_type: DataType) -> Physical {
        match data_type {
            DataType::Boolean => Physical::Boolean,
            DataType::Int32 | DataType::Date => Physical::Int32,
            DataType::Int64 | DataType::Timestamp => Physical::Int64,
            DataType::Float => Physical::Float,
            DataType::Double => Physical::Double,
            DataType::Text | DataType::Blob | DataType::String => Physical::Binary,
        }
    }
}

/// The type code of an aligned device's time chunk (`TSDataType.VECTOR`).
pub(crate) const VECTOR_TYPE_CODE: u8 = 6;

/// A value encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Plain,
    Dictionary,
    Rle,
    Diff,
    Ts2Diff,
    Bitmap,
    GorillaV1,
    Regular,
    Gorilla,
    Zigzag,
    Freq,
    Chimp,
    Sprintz,
    Rlbe,
    Camel,
}

impl Encoding {
    const ALL: [Encoding; 15] = [
        Encoding::Plain,
        Encoding::Dictionary,
        Encoding::Rle,
        Encoding::Diff,
        Encoding::Ts2Diff,
        Encoding::Bitmap,
        Encoding::GorillaV1,
        Encoding::Regular,
        Encoding::Gorilla,
        Encoding::Zigzag,
        Encoding::Freq,
        Encoding::Chimp,
        Encoding::Sprintz,
        Encoding::Rlbe,
        Encoding::Camel,
    ];

    pub fn code(self) -> u8 {
        // The declaration order is the code order (0..=14).
        Encoding::ALL.iter().position(|e| *e == self).unwrap_or(0) as u8
    }

    pub fn from_code(code: u8) -> Option<Encoding> {
        Encoding::ALL.get(usize::from(code)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "PLAIN",
            Encoding::Dictionary => "DICTIONARY",
            Encoding::Rle => "RLE",
            Encoding::Diff => "DIFF",
            Encoding::Ts2Diff => "TS_2DIFF",
            Encoding::Bitmap => "BITMAP",
            Encoding::GorillaV1 => "GORILLA_V1",
            Encoding::Regular => "REGULAR",
            Encoding::Gorilla => "GORILLA",
            Encoding::Zigzag => "ZIGZAG",
            Encoding::Freq => "FREQ",
            Encoding::Chimp => "CHIMP",
            Encoding::Sprintz => "SPRINTZ",
            Encoding::Rlbe => "RLBE",
            Encoding::Camel => "CAMEL",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A page compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Uncompressed,
    Snappy,
    Gzip,
    Lzo,
    Sdt,
    Paa,
    Pla,
    Lz4,
    Zstd,
    Lzma2,
}

impl Compression {
    const ALL: [Compression; 10] = [
        Compression::Uncompressed,
        Compression::Snappy,
        Compression::Gzip,
        Compression::Lzo,
        Compression::Sdt,
        Compression::Paa,
        Compression::Pla,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Lzma2,
    ];

    pub fn code(self) -> u8 {
        Compression::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or(0) as u8
    }

    pub fn from_code(code: u8) -> Option<Compression> {
        Compression::ALL.get(usize::from(code)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Snappy => "SNAPPY",
            Compression::Gzip => "GZIP",
            Compression::Lzo => "LZO",
            Compression::Sdt => "SDT",
            Compression::Paa => "PAA",
            Compression::Pla => "PLA",
            Compression::Lz4 => "LZ4",
            Compression::Zstd => "ZSTD",
            Compression::Lzma2 => "LZMA2",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One series' decoded values, one slot per timestamp; `None` is a null (an aligned row without
/// this measurement). The variant is the data type's physical form: DATE values are `yyyyMMdd`
/// in `Int32`, TIMESTAMP values are in `Int64`, TEXT/STRING/BLOB are bytes in `Binary`.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Boolean(Vec<Option<bool>>),
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    Float(Vec<Option<f32>>),
    Double(Vec<Option<f64>>),
    Binary(Vec<Option<Vec<u8>>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Boolean(v) => v.len(),
            Column::Int32(v) => v.len(),
            Column::Int64(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Double(v) => v.len(),
            Column::Binary(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index` (`None` for a null or an index out of range).
    pub fn get(&self, index: usize) -> Option<Value<'_>> {
        match self {
            Column::Boolean(v) => v.get(index).copied().flatten().map(Value::Boolean),
            Column::Int32(v) => v.get(index).copied().flatten().map(Value::Int32),
            Column::Int64(v) => v.get(index).copied().flatten().map(Value::Int64),
            Column::Float(v) => v.get(index).copied().flatten().map(Value::Float),
            Column::Double(v) => v.get(index).copied().flatten().map(Value::Double),
            Column::Binary(v) => v.get(index).and_then(|b| b.as_deref()).map(Value::Binary),
        }
    }

    /// How many slots hold a value.
    pub fn non_null_count(&self) -> usize {
        match self {
            Column::Boolean(v) => v.iter().filter(|x| x.is_some()).count(),
            Column::Int32(v) => v.iter().filter(|x| x.is_some()).count(),
            Column::Int64(v) => v.iter().filter(|x| x.is_some()).count(),
            Column::Float(v) => v.iter().filter(|x| x.is_some()).count(),
            Column::Double(v) => v.iter().filter(|x| x.is_some()).count(),
            Column::Binary(v) => v.iter().filter(|x| x.is_some()).count(),
        }
    }

    pub(crate) fn empty(physical: Physical) -> Column {
        match physical {
            Physical::Boolean => Column::Boolean(Vec::new()),
            Physical::Int32 => Column::Int32(Vec::new()),
            Physical::Int64 => Column::Int64(Vec::new()),
            Physical::Float => Column::Float(Vec::new()),
            Physical::Double => Column::Double(Vec::new()),
            Physical::Binary => Column::Binary(Vec::new()),
        }
    }
}

/// One non-null value, borrowed from its column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    Binary(&'a [u8]),
}
