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
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, UInt64Builder, UInt8Builder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, UInt64Array,
};
use arrow_schema::{DataType as ArrowType, Field, Schema, SchemaRef};
use duet_proto::types::{ColumnValues, DataType};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::Run;
use crate::types::{Lsn, Version};

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
}

/// A data file ready to scan: its manifest record plus a lookup by series.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub meta: FileMeta,
    pub abs_path: PathBuf,
    by_series: HashMap<String, usize>,
    /// The Parquet footer, parsed on first use and kept: files are immutable, and a query scans
    /// many series of the same file.
    footer: OnceLock<ArrowReaderMetadata>,
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
        }
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

    /// The series' points in `[start, end]`, read from only its rows and columns.
    pub(crate) fn read(&self, series: &str, start: i64, end: i64) -> Result<Option<Run>> {
        let Some(range) = self.series_range(series) else {
            return Ok(None);
        };
        if range.max_time < start || range.min_time > end || range.n_rows == 0 {
            return Ok(None);
        }
        let data_type = DataType::from_code(i32::from(range.data_type)).ok_or_else(|| {
            self.corrupt(format!(
                "unknown data type code {} for {series}",
                range.data_type
            ))
        })?;
        let file = File::open(&self.abs_path)?;
        let footer = match self.footer.get() {
            Some(footer) => footer.clone(),
            None => {
                let footer = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())?;
                self.footer.get_or_init(|| footer).clone()
            }
        };
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, footer);
        let arrow_schema = builder.schema().clone();
        let wanted = [
            COL_TIME,
            COL_HLC,
            COL_INSTANCE,
            value_column(data_type.physical()),
        ];
        let mut indices = Vec::with_capacity(wanted.len());
        for name in wanted {
            indices.push(
                arrow_schema
                    .index_of(name)
                    .map_err(|_| self.corrupt(format!("missing column {name}")))?,
            );
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let selection = RowSelection::from(vec![
            RowSelector::skip(range.first_row as usize),
            RowSelector::select(range.n_rows as usize),
        ]);
        let reader = builder
            .with_projection(mask)
            .with_row_selection(selection)
            .with_batch_size(64 * 1024)
            .build()?;
        let mut run = Run::empty(data_type);
        for batch in reader {
            let batch = batch?;
            self.append_batch(&batch, start, end, &mut run)?;
        }
        Ok(Some(run))
    }

    fn append_batch(&self, batch: &RecordBatch, start: i64, end: i64, run: &mut Run) -> Result<()> {
        let times = self.column::<Int64Array>(batch, COL_TIME)?;
        let hlcs = self.column::<UInt64Array>(batch, COL_HLC)?;
        let instances = self.column::<UInt64Array>(batch, COL_INSTANCE)?;
        let keep: Vec<usize> = (0..batch.num_rows())
            .filter(|row| (start..=end).contains(&times.value(*row)))
            .collect();
        let name = value_column(run.data_type.physical());
        macro_rules! take {
            ($array:ty, $vec:expr, $conv:expr) => {{
                let values = self.column::<$array>(batch, name)?;
                for row in &keep {
                    if values.is_null(*row) {
                        return Err(
                            self.corrupt(format!("null value in {name} at batch row {row}"))
                        );
                    }
                    $vec.push($conv(values.value(*row)));
                }
            }};
        }
        match &mut run.values {
            ColumnValues::Boolean(v) => take!(BooleanArray, v, |x| x),
            ColumnValues::Int32(v) => take!(Int32Array, v, |x| x),
            ColumnValues::Int64(v) => take!(Int64Array, v, |x| x),
            ColumnValues::Float(v) => take!(Float32Array, v, |x| x),
            ColumnValues::Double(v) => take!(Float64Array, v, |x| x),
            ColumnValues::Binary(v) => take!(BinaryArray, v, |x: &[u8]| x.to_vec()),
        }
        for row in keep {
            run.times.push(times.value(row));
            run.versions.push(Version {
                hlc: hlcs.value(row),
                instance: instances.value(row),
            });
        }
        Ok(())
    }

    fn column<'a, T: 'static>(&self, batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| self.corrupt(format!("column {name} missing or of the wrong type")))
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            file: self.abs_path.clone(),
            offset: 0,
            reason,
        }
    }
}

/// Writes one data file from runs sorted by series name, each sorted by time and de-duplicated, and
/// makes it durable. Returns its manifest record (the caller fills in `id`, `path`, `max_lsn`).
pub(crate) fn write(path: &Path, partition: i64, runs: &[(String, Run)]) -> Result<FileMeta> {
    let n_rows: usize = runs.iter().map(|(_, r)| r.len()).sum();
    let mut series_col =
        StringBuilder::with_capacity(n_rows, runs.iter().map(|(s, r)| s.len() * r.len()).sum());
    let mut time_col = Int64Builder::with_capacity(n_rows);
    let mut hlc_col = UInt64Builder::with_capacity(n_rows);
    let mut instance_col = UInt64Builder::with_capacity(n_rows);
    let mut type_col = UInt8Builder::with_capacity(n_rows);
    let mut v_boolean = BooleanBuilder::new();
    let mut v_int32 = Int32Builder::new();
    let mut v_int64 = Int64Builder::new();
    let mut v_float = Float32Builder::new();
    let mut v_double = Float64Builder::new();
    let mut v_binary = BinaryBuilder::new();
    let mut series_meta = Vec::with_capacity(runs.len());
    let mut row: u64 = 0;
    let (mut min_time, mut max_time, mut max_hlc) = (i64::MAX, i64::MIN, 0u64);
    for (series, run) in runs {
        let n = run.len();
        if n == 0 {
            continue;
        }
        for _ in 0..n {
            series_col.append_value(series);
        }
        time_col.append_slice(&run.times);
        for v in &run.versions {
            hlc_col.append_value(v.hlc);
            instance_col.append_value(v.instance);
            max_hlc = max_hlc.max(v.hlc);
        }
        type_col.append_value_n(run.data_type.code(), n);
        let physical = run.data_type.physical();
        if physical != DataType::Boolean {
            v_boolean.append_nulls(n);
        }
        if physical != DataType::Int32 {
            v_int32.append_nulls(n);
        }
        if physical != DataType::Int64 {
            v_int64.append_nulls(n);
        }
        if physical != DataType::Float {
            v_float.append_nulls(n);
        }
        if physical != DataType::Double {
            v_double.append_nulls(n);
        }
        if !matches!(run.values, ColumnValues::Binary(_)) {
            v_binary.append_nulls(n);
        }
        match &run.values {
            ColumnValues::Boolean(v) => v.iter().for_each(|x| v_boolean.append_value(*x)),
            ColumnValues::Int32(v) => v_int32.append_slice(v),
            ColumnValues::Int64(v) => v_int64.append_slice(v),
            ColumnValues::Float(v) => v_float.append_slice(v),
            ColumnValues::Double(v) => v_double.append_slice(v),
            ColumnValues::Binary(v) => v.iter().for_each(|x| v_binary.append_value(x)),
        }
        let first = run.times.first().copied().unwrap_or(0);
        let last = run.times.last().copied().unwrap_or(0);
        min_time = min_time.min(first);
        max_time = max_time.max(last);
        series_meta.push(SeriesRange {
            series: series.clone(),
            data_type: run.data_type.code(),
            min_time: first,
            max_time: last,
            first_row: row,
            n_rows: n as u64,
        });
        row += n as u64;
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(series_col.finish()),
        Arc::new(time_col.finish()),
        Arc::new(hlc_col.finish()),
        Arc::new(instance_col.finish()),
        Arc::new(type_col.finish()),
        Arc::new(v_boolean.finish()),
        Arc::new(v_int32.finish()),
        Arc::new(v_int64.finish()),
        Arc::new(v_float.finish()),
        Arc::new(v_double.finish()),
        Arc::new(v_binary.finish()),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
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
        .build();
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(&file, schema(), Some(props))?;
    writer.write(&batch)?;
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
