//! IoTDB data types and the column representation shared by TsBlocks and tablets.

pub use duet_types::DataType;

/// tsfile's `TSEncoding` by code (its ordinal, reference §5.3), as IoTDB's RPCs and schema plan nodes
/// carry it.
pub fn encoding_name(code: i32) -> Option<&'static str> {
    const NAMES: [&str; 14] = [
        "PLAIN",
        "DICTIONARY",
        "RLE",
        "DIFF",
        "TS_2DIFF",
        "BITMAP",
        "GORILLA_V1",
        "REGULAR",
        "GORILLA",
        "ZIGZAG",
        "FREQ",
        "CHIMP",
        "SPRINTZ",
        "RLBE",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
}

/// [`encoding_name`] of a plan's byte code, an unknown one malformed.
pub(crate) fn encoding_of(code: u8) -> crate::Result<String> {
    encoding_name(i32::from(code))
        .map(str::to_string)
        .ok_or_else(|| crate::reader::malformed(format!("unknown encoding {code}")))
}

/// [`compressor_name`] of a plan's byte code, an unknown one malformed.
pub(crate) fn compressor_of(code: u8) -> crate::Result<String> {
    compressor_name(i32::from(code))
        .map(str::to_string)
        .ok_or_else(|| crate::reader::malformed(format!("unknown compressor {code}")))
}

/// tsfile's `CompressionType` by code.
pub fn compressor_name(code: i32) -> Option<&'static str> {
    const NAMES: [&str; 10] = [
        "UNCOMPRESSED",
        "SNAPPY",
        "GZIP",
        "LZO",
        "SDT",
        "PAA",
        "PLA",
        "LZ4",
        "ZSTD",
        "LZMA2",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
}

/// The values of one column, one slot per row; a null row holds a placeholder (false, 0, empty).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    Boolean(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Binary(Vec<Vec<u8>>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Boolean(v) => v.len(),
            ColumnValues::Int32(v) => v.len(),
            ColumnValues::Int64(v) => v.len(),
            ColumnValues::Float(v) => v.len(),
            ColumnValues::Double(v) => v.len(),
            ColumnValues::Binary(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of the storage class that `data_type` uses.
    pub fn empty_for(data_type: DataType) -> ColumnValues {
        match data_type.physical() {
            DataType::Boolean => ColumnValues::Boolean(Vec::new()),
            DataType::Int32 => ColumnValues::Int32(Vec::new()),
            DataType::Int64 => ColumnValues::Int64(Vec::new()),
            DataType::Float => ColumnValues::Float(Vec::new()),
            DataType::Double => ColumnValues::Double(Vec::new()),
            _ => ColumnValues::Binary(Vec::new()),
        }
    }
}

/// One typed column with an optional null mask (`true` = null).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub data_type: DataType,
    pub nulls: Option<Vec<bool>>,
    pub values: ColumnValues,
}

impl Column {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn is_null(&self, row: usize) -> bool {
        self.nulls
            .as_ref()
            .is_some_and(|n| n.get(row).copied().unwrap_or(false))
    }

    /// A TEXT column from strings, the shape of every SHOW result.
    pub fn text<I, S>(values: I) -> Column
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Column {
            data_type: DataType::Text,
            nulls: None,
            values: ColumnValues::Binary(
                values.into_iter().map(|s| s.into().into_bytes()).collect(),
            ),
        }
    }

    /// An INT32 column without nulls.
    pub fn int32(values: Vec<i32>) -> Column {
        Column {
            data_type: DataType::Int32,
            nulls: None,
            values: ColumnValues::Int32(values),
        }
    }

    /// The cell at `row` rendered as IoTDB's CLI prints it (`null` for nulls).
    pub fn render(&self, row: usize) -> String {
        if self.is_null(row) {
            return "null".to_string();
        }
        match &self.values {
            ColumnValues::Boolean(v) => v.get(row).map(|b| b.to_string()).unwrap_or_default(),
            ColumnValues::Int32(v) => match (self.data_type, v.get(row)) {
                (DataType::Date, Some(d)) => {
                    format!("{:04}-{:02}-{:02}", d / 10000, (d / 100) % 100, d % 100)
                }
                (_, Some(x)) => x.to_string(),
                (_, None) => String::new(),
            },
            ColumnValues::Int64(v) => v.get(row).map(|x| x.to_string()).unwrap_or_default(),
            ColumnValues::Float(v) => v
                .get(row)
                .map(|x| render_float(f64::from(*x), x.to_string()))
                .unwrap_or_default(),
            ColumnValues::Double(v) => v
                .get(row)
                .map(|x| render_float(*x, x.to_string()))
                .unwrap_or_default(),
            ColumnValues::Binary(v) => match (self.data_type, v.get(row)) {
                (DataType::Blob, Some(b)) => {
                    let mut s = String::from("0x");
                    for byte in b {
                        s.push_str(&format!("{byte:02x}"));
                    }
                    s
                }
                (_, Some(b)) => String::from_utf8_lossy(b).into_owned(),
                (_, None) => String::new(),
            },
        }
    }
}

/// Floating-point values as IoTDB's Java clients print them: integral values keep a `.0`.
fn render_float(value: f64, text: String) -> String {
    if value.is_finite() && value.fract() == 0.0 && !text.contains('e') && !text.contains('.') {
        format!("{text}.0")
    } else {
        text
    }
}

/// A result table as statements produce it, before it is cut into TsBlocks.
///
/// `times` is `None` for results without a time column (SHOW statements: the client is told to ignore
/// timestamps, and zeros are sent in the TsBlock time column it still requires).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub times: Option<Vec<i64>>,
    pub n_rows: usize,
}

impl Table {
    /// A table of TEXT columns from rows of strings (the shape of most SHOW results).
    pub fn text(names: &[&str], rows: Vec<Vec<String>>) -> Table {
        let n_rows = rows.len();
        let mut columns: Vec<Vec<String>> = vec![Vec::with_capacity(n_rows); names.len()];
        for row in rows {
            for (i, cell) in row.into_iter().enumerate() {
                if let Some(c) = columns.get_mut(i) {
                    c.push(cell);
                }
            }
        }
        Table {
            names: names.iter().map(|s| s.to_string()).collect(),
            columns: columns.into_iter().map(Column::text).collect(),
            times: None,
            n_rows,
        }
    }

    /// Every row as text, the time first where the table has times, each cell as
    /// [`Column::render`] prints it.
    pub fn rendered_rows(&self) -> Vec<Vec<String>> {
        (0..self.n_rows)
            .map(|r| {
                let time = self.times.as_ref().and_then(|times| times.get(r));
                time.map(i64::to_string)
                    .into_iter()
                    .chain(self.columns.iter().map(|c| c.render(r)))
                    .collect()
            })
            .collect()
    }
}
