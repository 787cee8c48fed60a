//! The manifest: which data files and tombstones exist and up to which LSN the log has been flushed.
//!
//! `MANIFEST` is a small JSON document, replaced atomically (write `MANIFEST.tmp`, fsync, rename,
//! fsync the directory), so after any crash it is either the old or the new one:
//!
//! ```json
//! { "format_version": 1, "flushed_lsn": 120, "max_hlc": 1234, "next_file_id": 7,
//!   "files": [ { "id": 6, "partition": 2890, "path": "data/2890/00000000000000000006.parquet",
//!                "min_time": ..., "max_time": ..., "max_lsn": 120, "max_hlc": ..., "n_rows": ...,
//!                "series": [ { "series": "root.sg.d1.s1", "data_type": 2, "min_time": ...,
//!                              "max_time": ..., "first_row": 0, "n_rows": ...,
//!                              "index_stride": 4096, "time_index": [t0, t4096, ...] } ] } ],
//!   "tombstones": [ { "series": "root.sg.d1.s1", "start": 0, "end": 10,
//!                     "version": { "hlc": 1234, "instance": 1 } } ] }
//! ```
//!
//! `index_stride` and `time_index` (a series' sparse time index, see `datafile.rs`) are absent for
//! short series and in manifests written before they existed; such series are read whole.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::datafile::FileMeta;
use crate::error::{Error, Result};
use crate::types::{Lsn, RangeTombstone, Version};
use crate::wal::sync_dir;

pub(crate) const MANIFEST: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Manifest {
    pub format_version: u32,
    /// Every log entry at or below this LSN is in the data files and tombstones below.
    pub flushed_lsn: Lsn,
    /// The highest HLC value in the flushed data, so the clock never issues a lower one after the
    /// log that held it is released.
    pub max_hlc: u64,
    pub next_file_id: u64,
    pub files: Vec<FileMeta>,
    pub tombstones: Vec<TombstoneRecord>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            flushed_lsn: 0,
            max_hlc: 0,
            next_file_id: 1,
            files: Vec::new(),
            tombstones: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct TombstoneRecord {
    pub series: String,
    pub start: i64,
    pub end: i64,
    pub version: Version,
}

impl TombstoneRecord {
    pub(crate) fn range(&self) -> RangeTombstone {
        RangeTombstone {
            start: self.start,
            end: self.end,
            version: self.version,
        }
    }
}

impl Manifest {
    /// Loads `dir/MANIFEST`, or an empty manifest if there is none yet.
    pub(crate) fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => return Err(e.into()),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            file: path.clone(),
            reason: e.to_string(),
        })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::Manifest {
                file: path,
                reason: format!("unsupported format version {}", manifest.format_version),
            });
        }
        Ok(manifest)
    }

    /// Replaces `dir/MANIFEST` atomically and durably.
    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(MANIFEST_TMP);
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Manifest {
            file: tmp.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(MANIFEST))?;
        sync_dir(dir)?;
        Ok(())
    }
}
