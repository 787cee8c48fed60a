//! The exclusive advisory lock on a data directory: two duetd processes writing one catalog and one data
//! set would corrupt both, so the second one must refuse to start.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file inside the data directory.
pub(crate) const LOCK_FILE_NAME: &str = "LOCK";

/// Holds `<data_dir>/LOCK` locked for as long as it lives; the OS releases the lock when the file closes,
/// including when the process dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock without waiting, or fails with [`Error::DataDirLocked`] if another open file
    /// description (another process, or another `Catalog` in this process) holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        let path: PathBuf = data_dir.join(LOCK_FILE_NAME);
        // No truncate on open: the current holder's pid must stay readable until we own the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::DataDirLocked(data_dir.to_path_buf()))
            }
            Err(TryLockError::Error(error)) => return Err(Error::Io(error)),
        }
        // The pid only helps an operator find the holder; the lock itself is what protects the directory.
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DataDirLock { _file: file })
    }
}
