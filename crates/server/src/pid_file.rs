//! `duetd.pid` in the data directory, written by duetd itself once it holds the directory's lock, so
//! the file names the process that owns the directory and no other; removed at a clean stop. A file
//! found at start was left by a duetd that did not stop cleanly (stale) and is replaced. Scripts read
//! it and check that the process is a duetd before they signal it.

use std::path::{Path, PathBuf};

/// The pid file's name inside the data directory.
pub const PID_FILE: &str = "duetd.pid";

/// The written pid file; dropping it removes the file if it still names this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes `<data_dir>/duetd.pid` atomically. Call it only while holding the data directory's
    /// lock: a file already there is then stale by definition.
    pub fn create(data_dir: &Path) -> std::io::Result<PidFile> {
        let path = data_dir.join(PID_FILE);
        let pid = std::process::id();
        if let Ok(old) = std::fs::read_to_string(&path) {
            tracing::warn!(
                stale_pid = old.trim(),
                "replacing a stale {PID_FILE} left by a duetd that did not stop cleanly"
            );
        }
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n"))?;
        std::fs::rename(&tmp, &path)?;
        Ok(PidFile { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn written_replacing_a_stale_one_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PID_FILE), "999999999\n").unwrap();
        let pid_file = PidFile::create(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(pid_file.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid_file);
        assert!(!dir.path().join(PID_FILE).exists());
    }
}
