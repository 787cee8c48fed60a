//! A full disk refuses writes clearly (nothing of them kept, nothing acknowledged lost) and, once
//! space is freed, writes are accepted again without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use duet_storage::{Error, LogRead, Origin, Storage, StorageOptions};

fn logged_lsns(storage: &Storage) -> Vec<u64> {
    match storage.read_log(0, usize::MAX).unwrap() {
        LogRead::Entries(entries) => entries.iter().map(|e| e.lsn).collect(),
        LogRead::Truncated { available_from } => panic!("truncated at {available_from}"),
    }
}

#[tokio::test]
async fn a_write_that_finds_the_disk_full_is_refused_without_poisoning_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    for t in 1..=3 {
        common::write_local(&storage, insert_i64("s1", &[t], &[t])).await;
    }
    // Half of the batch reaches the file before the disk is full.
    storage.fail_next_append();
    let err = storage
        .write(Origin::Local, None, insert_i64("s1", &[4], &[4]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DiskFull(_)), "{err}");
    assert_eq!(scan_i64(&storage, "s1"), vec![(1, 1), (2, 2), (3, 3)]);
    // Space is back: the next write is accepted and takes the refused write's LSN, so the log has
    // no gap and no half record.
    let (lsn, _) = common::write_local(&storage, insert_i64("s1", &[5], &[5])).await;
    assert_eq!(lsn, 4);
    assert_eq!(logged_lsns(&storage), vec![1, 2, 3, 4]);
    drop(storage);
    let storage = open(dir.path());
    assert_eq!(
        scan_i64(&storage, "s1"),
        vec![(1, 1), (2, 2), (3, 3), (5, 5)]
    );
    assert_eq!(logged_lsns(&storage), vec![1, 2, 3, 4]);
}

/// A small tmpfs mounted for one test and unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes`; `None` when this process may not mount (not root).
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk {
                path,
                _parent: parent,
            }),
            _ => {
                assert!(
                    !is_root(),
                    "running as root, yet mounting a tmpfs failed: {status:?}"
                );
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a storage thread may still be closing a file when a failed test unwinds.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A real full disk (a 4 MiB tmpfs; needs root, as CI runs): log appends, segment rotation and
/// flushes all fail on it; every write is either acknowledged and kept, or refused with
/// `DiskFull`; after space is freed writes go on without a restart, and a reopen finds every
/// acknowledged point.
#[tokio::test]
async fn writes_resume_after_a_real_disk_full_episode_and_every_acknowledged_point_survives() {
    let Some(disk) = SmallDisk::mount(4 * 1024 * 1024) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let options = StorageOptions {
        memtable_bytes: 64 * 1024,
        segment_bytes: 256 * 1024,
        ..options()
    };
    // Space set aside now and freed once the disk is full.
    let reserve = disk.path.join("reserve");
    std::fs::write(&reserve, vec![0xA5u8; 1024 * 1024]).unwrap();
    let storage = Storage::open(&disk.path, options.clone()).unwrap();
    let times: Vec<i64> = (0..200).collect();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut batch = 0i64;
    // Write until writes are refused a few times in a row.
    let started = std::time::Instant::now();
    while refused < 5 {
        batch += 1;
        assert!(batch < 10_000, "the disk never filled");
        let t: Vec<i64> = times.iter().map(|t| batch * 1_000 + t).collect();
        match storage
            .write(Origin::Local, None, insert_i64("s1", &t, &t))
            .await
        {
            Ok(_) => {
                acknowledged.push(batch);
                refused = 0;
            }
            Err(Error::DiskFull(_)) => refused += 1,
            Err(e) => panic!("a full disk must refuse with DiskFull, got: {e}"),
        }
    }
    eprintln!(
        "disk full after {} acknowledged batches in {:?}",
        acknowledged.len(),
        started.elapsed()
    );
    std::fs::remove_file(&reserve).unwrap();
    // Space is back: writes are accepted again without a restart (the flusher retries within a
    // second or so; until it has, writes held back by unflushed memtables are still refused).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match storage
            .write(Origin::Local, None, insert_i64("s2", &[2], &[2]))
            .await
        {
            Ok(_) => break,
            Err(Error::DiskFull(reason)) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "writes still refused 30 s after space was freed: {reason}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("after space was freed: {e}"),
        }
    }
    drop(storage);
    let storage = Storage::open(&disk.path, options).unwrap();
    let points = scan_i64(&storage, "s1");
    for batch in &acknowledged {
        for t in &times {
            let time = batch * 1_000 + t;
            assert!(
                points.binary_search(&(time, time)).is_ok(),
                "acknowledged point {time} of batch {batch} is missing after the disk-full episode"
            );
        }
    }
    assert_eq!(points.len(), acknowledged.len() * times.len());
    assert_eq!(scan_i64(&storage, "s2"), vec![(2, 2)]);
}
