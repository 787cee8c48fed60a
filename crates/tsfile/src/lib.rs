//! A native, bounded, streaming reader of TsFile v4 — the file format IoTDB 2.x and apache tsfile
//! 2.x write, which an IoTDB pipe sends for history (and, on open-source builds, for real-time data)
//! — and of IoTDB's `.mods` deletion files that travel with them.
//!
//! - `reader`: the streaming scan; `format`: markers, chunk and page headers; `metadata`: the tail;
//! - `decode`: the encodings; `compress`: the compressors; `bytes`: the bounded cursor;
//! - `types`: data types, encodings, compressors and decoded columns; [`mods`]: deletion files;
//! - `error`: the one error type.
//!
//! ```no_run
//! # fn main() -> Result<(), duet_tsfile::TsFileError> {
//! let mut reader = duet_tsfile::TsFileReader::open("1-1-0-0.tsfile")?;
//! for chunk in reader.chunks() {
//!     let chunk = chunk?;
//!     for (time, value) in chunk.points() {
//!         let _ = (chunk.device.path(), &chunk.measurement, time, value);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Format facts come from apache/tsfile at commit a9f54614bd2093efc7de30fbff0062910395b1a9 (Java
//! `java/tsfile/src/main/java/org/apache/tsfile/...`) and the C++ writer of the `tsfile` 2.5.0
//! wheel; each module names the classes it follows.

mod bytes;
mod compress;
mod decode;
mod error;
mod format;
mod metadata;
pub mod mods;
mod reader;
mod types;

pub use error::{Result, TsFileError};
pub use format::DeviceId;
pub use metadata::{ColumnCategory, FileMetadata, TableColumn};
pub use mods::{parse_mods, read_mods_file, Deletion};
pub use reader::{Chunks, InMemory, ReadOptions, SeriesChunk, Source, TsFileReader};
pub use types::{Column, Compression, DataType, Encoding, Physical, Value};
