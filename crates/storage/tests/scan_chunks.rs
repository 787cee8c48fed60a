//! Chunked scans: limited reads in both directions agree with one unlimited scan over data spread
//! across the memtable, frozen memtables and data files, and (ignored by default) a timing check of
//! reading a large series the way the query engine does.
//!
//! Timing: `cargo test --release -p duet-storage --test scan_chunks -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use common::*;
use duet_storage::{Origin, Storage, StorageOptions, Version};

const CHUNK: usize = 4096;

/// Reads `series` the way the engine does: `CHUNK` points at a time, each read starting just past
/// the last time returned.
fn read_in_chunks(storage: &Storage, series: &str, descending: bool) -> Vec<i64> {
    let mut times = Vec::new();
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    loop {
        let chunk = storage.scan(series, lo, hi, CHUNK, descending).unwrap();
        let Some(last) = chunk.times.last().copied() else {
            break;
        };
        times.extend_from_slice(&chunk.times);
        if chunk.len() < CHUNK {
            break;
        }
        if descending {
            hi = last - 1;
        } else {
            lo = last + 1;
        }
    }
    times
}

/// A small deterministic generator (xorshift64*), so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the storage should return, computed the obvious way: every point and tombstone ever
/// written, resolved per timestamp.
#[derive(Default)]
struct Model {
    points: Vec<(i64, Version, i64)>,
    tombstones: Vec<(i64, i64, Version)>,
}

impl Model {
    fn visible(&self) -> Vec<(i64, Version, i64)> {
        let mut best: BTreeMap<i64, (Version, i64)> = BTreeMap::new();
        for (t, v, x) in &self.points {
            let entry = best.entry(*t).or_insert((*v, *x));
            if *v > entry.0 {
                *entry = (*v, *x);
            }
        }
        best.into_iter()
            .filter(|(t, (v, _))| {
                !self
                    .tombstones
                    .iter()
                    .any(|(s, e, tv)| s <= t && t <= e && v < tv)
            })
            .map(|(t, (v, x))| (t, v, x))
            .collect()
    }
}

const SPAN: i64 = 30_000;

/// Writes random points (some runs long enough for the files' time index, overwrites with random
/// versions in and out of time order) and random tombstones, each with a fresh random version.
async fn random_writes(
    storage: &Storage,
    model: &mut Model,
    rng: &mut Rng,
    used: &mut HashSet<u64>,
    writes: usize,
) {
    for _ in 0..writes {
        let version = loop {
            let v = Version {
                hlc: 1 + rng.below(1 << 40),
                instance: 1 + rng.below(3),
            };
            if used.insert(v.hlc) {
                break v;
            }
        };
        let origin = Origin::Pipe {
            instance: version.instance,
        };
        if rng.below(6) == 0 {
            let start = rng.below(SPAN as u64) as i64;
            let end = start + rng.below(3_000) as i64;
            storage
                .write(origin, Some(version), delete(&series("s1"), start, end))
                .await
                .unwrap();
            model.tombstones.push((start, end, version));
            continue;
        }
        let max_points = if rng.below(4) == 0 { 9_000 } else { 200 };
        let n = 1 + rng.below(max_points) as i64;
        let base = rng.below(SPAN as u64) as i64;
        let times: Vec<i64> = if rng.below(2) == 0 {
            // In order, with gaps.
            (0..n).map(|i| base + i * (1 + (i % 3))).collect()
        } else {
            (0..n).map(|_| rng.below(SPAN as u64) as i64).collect()
        };
        // A write holds one value per time; a repeated time within it would be ambiguous.
        let mut seen = HashSet::new();
        let times: Vec<i64> = times.into_iter().filter(|t| seen.insert(*t)).collect();
        let values: Vec<i64> = times.iter().map(|_| rng.next() as i64).collect();
        storage
            .write(origin, Some(version), insert_i64("s1", &times, &values))
            .await
            .unwrap();
        for (t, x) in times.iter().zip(&values) {
            model.points.push((*t, version, *x));
        }
    }
}

fn triples(chunk: &duet_storage::SeriesChunk) -> Vec<(i64, Version, i64)> {
    pairs(chunk)
        .into_iter()
        .zip(&chunk.versions)
        .map(|((t, x), v)| (t, *v, x))
        .collect()
}

/// Reads `[lo, hi]` in chunks of `limit`, each starting just past the previous one's last time.
fn chunked(
    storage: &Storage,
    lo: i64,
    hi: i64,
    limit: usize,
    descending: bool,
) -> Vec<(i64, Version, i64)> {
    let (mut lo, mut hi) = (lo, hi);
    let mut out = Vec::new();
    loop {
        let chunk = storage
            .scan(&series("s1"), lo, hi, limit, descending)
            .unwrap();
        assert!(chunk.len() <= limit);
        let got = triples(&chunk);
        let Some(last) = got.last().map(|p| p.0) else {
            break;
        };
        out.extend(got);
        if descending {
            hi = last - 1;
        } else {
            lo = last + 1;
        }
    }
    out
}

/// Reads `[lo, hi]` with `scan_values` in chunks of `limit`, as an aggregate does: (time, value)
/// pairs, and whether every chunk came without versions.
fn chunked_values(storage: &Storage, lo: i64, hi: i64, limit: usize) -> (Vec<(i64, i64)>, bool) {
    let mut lo = lo;
    let (mut out, mut without_versions) = (Vec::new(), true);
    loop {
        let chunk = storage.scan_values(&series("s1"), lo, hi, limit).unwrap();
        assert!(chunk.len() <= limit);
        without_versions &= chunk.versions.is_empty();
        let got = pairs(&chunk);
        let Some(last) = got.last().map(|p| p.0) else {
            break;
        };
        out.extend(got);
        lo = last + 1;
    }
    (out, without_versions)
}

fn without_versions(points: &[(i64, Version, i64)]) -> Vec<(i64, i64)> {
    points.iter().map(|(t, _, x)| (*t, *x)).collect()
}

#[tokio::test]
async fn scans_for_values_leave_versions_out_only_where_one_source_holds_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let times: Vec<i64> = (0..20_000).map(|t| t * 2).collect();
    common::write_local(&storage, insert_i64("s1", &times, &times)).await;
    let all = scan_i64(&storage, "s1");
    // The memtable alone, in time order.
    assert_eq!(
        chunked_values(&storage, i64::MIN, i64::MAX, 4096),
        (all.clone(), true)
    );
    // One file alone.
    storage.flush().await.unwrap();
    assert_eq!(
        chunked_values(&storage, i64::MIN, i64::MAX, 4096),
        (all.clone(), true)
    );
    assert_eq!(
        chunked_values(&storage, 1_001, 9_999, 700),
        (scan_range(&all, 1_001, 9_999), true)
    );
    // A file and a memtable overwriting some of its points: merged, with versions.
    let later: Vec<i64> = (10_000..10_100).collect();
    let values: Vec<i64> = later.iter().map(|t| -t).collect();
    common::write_local(&storage, insert_i64("s1", &later, &values)).await;
    let merged = scan_i64(&storage, "s1");
    assert_ne!(merged, all);
    let (got, lone) = chunked_values(&storage, i64::MIN, i64::MAX, 4096);
    assert_eq!(got, merged);
    assert!(!lone);
    // A range only the file holds is still read alone.
    assert_eq!(
        chunked_values(&storage, 0, 9_999, 4096),
        (scan_range(&merged, 0, 9_999), true)
    );
    // A deletion: scanned as `scan` does.
    common::write_local(&storage, delete(&series("s1"), 100, 300)).await;
    let deleted = scan_i64(&storage, "s1");
    assert_eq!(
        chunked_values(&storage, i64::MIN, i64::MAX, 4096).0,
        deleted
    );
    assert_eq!(
        chunked_values(&storage, 0, 9_999, 1000).0,
        scan_range(&deleted, 0, 9_999)
    );
}

/// Reads `[lo, hi]` with `scan_values` in chunks of `limit` and checks that every chunk but the last
/// is full (an aggregate takes a short chunk for the end of the series); returns what
/// `chunked_values` returns.
fn full_chunks(storage: &Storage, lo: i64, hi: i64, limit: usize) -> (Vec<(i64, i64)>, bool) {
    let (got, lone) = chunked_values(storage, lo, hi, limit);
    let in_range = got.len();
    let mut from = lo;
    let mut seen = 0;
    loop {
        let chunk = storage.scan_values(&series("s1"), from, hi, limit).unwrap();
        seen += chunk.len();
        let Some(last) = chunk.times.last().copied() else {
            break;
        };
        assert!(
            chunk.len() == limit || seen == in_range,
            "a short chunk ({} of {limit}) before the end of [{lo}, {hi}]",
            chunk.len()
        );
        from = last + 1;
    }
    (got, lone)
}

#[tokio::test]
async fn sources_with_disjoint_spans_are_read_one_after_another_without_versions() {
    const WEEK: i64 = duet_storage::datafile::PARTITION_WIDTH;
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    // Three weeks of points, flushed: one data file per week (a flush writes one per partition).
    let times: Vec<i64> = (0..3 * 5_000)
        .map(|i| (i / 5_000) * WEEK + (i % 5_000) * 7)
        .collect();
    common::write_local(&storage, insert_i64("s1", &times, &times)).await;
    storage.flush().await.unwrap();
    assert_eq!(storage.data_files().len(), 3);
    // A fourth week in the memtable.
    let newer: Vec<i64> = (0..5_000).map(|i| 3 * WEEK + i * 7).collect();
    common::write_local(&storage, insert_i64("s1", &newer, &newer)).await;
    let all = scan_i64(&storage, "s1");
    assert_eq!(all.len(), 20_000);
    // Chunks that cross from file to file and into the memtable, and ranges that start and end
    // inside a source.
    for limit in [700, 4096, 5_000, 50_000] {
        assert_eq!(
            full_chunks(&storage, i64::MIN, i64::MAX, limit),
            (all.clone(), true),
            "limit {limit}"
        );
    }
    let (lo, hi) = (WEEK - 1, 3 * WEEK + 35);
    assert_eq!(
        full_chunks(&storage, lo, hi, 999),
        (scan_range(&all, lo, hi), true)
    );
    // A point written into the span of a file (between two of its points) overlaps it: merged.
    common::write_local(&storage, insert_i64("s1", &[WEEK + 3], &[-1])).await;
    let merged = scan_i64(&storage, "s1");
    assert_eq!(merged.len(), 20_001);
    let (got, lone) = full_chunks(&storage, i64::MIN, i64::MAX, 4096);
    assert_eq!(got, merged);
    assert!(!lone, "overlapping sources must be merged, with versions");
    // Flushed, the point makes a second file of its week; the later weeks' files do not overlap
    // and are still concatenated.
    storage.flush().await.unwrap();
    assert_eq!(storage.data_files().len(), 5);
    assert_eq!(
        full_chunks(&storage, 2 * WEEK, i64::MAX, 1000),
        (scan_range(&merged, 2 * WEEK, i64::MAX), true)
    );
    let (got, lone) = full_chunks(&storage, i64::MIN, i64::MAX, 3000);
    assert_eq!(got, merged);
    assert!(!lone);
}

fn scan_range(points: &[(i64, i64)], lo: i64, hi: i64) -> Vec<(i64, i64)> {
    points
        .iter()
        .filter(|p| lo <= p.0 && p.0 <= hi)
        .copied()
        .collect()
}

#[tokio::test]
async fn limited_chunked_scans_agree_with_one_unlimited_scan() {
    for seed in [1u64, 0x9e37_79b9] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(
            dir.path(),
            StorageOptions {
                instance: 1,
                // Small memtables, so the unflushed data sits in several frozen ones.
                memtable_bytes: 256 << 10,
                max_frozen_memtables: 1_000,
                // Keep every flushed file: this test is about reading many sources.
                compaction_files: 1_000,
                ..StorageOptions::default()
            },
        )
        .unwrap();
        let mut rng = Rng(seed);
        let mut model = Model::default();
        let mut used = HashSet::new();
        for _ in 0..3 {
            random_writes(&storage, &mut model, &mut rng, &mut used, 25).await;
            storage.flush().await.unwrap();
        }
        storage.pause_flushes(true);
        random_writes(&storage, &mut model, &mut rng, &mut used, 40).await;
        let stats = storage.stats();
        eprintln!("seed {seed}: {stats:?}");
        assert!(stats.data_files >= 3, "{stats:?}");
        assert!(stats.frozen_memtables >= 2, "{stats:?}");
        assert!(stats.memtable_points > 0, "{stats:?}");

        let expected = model.visible();
        let all = triples(
            &storage
                .scan(&series("s1"), i64::MIN, i64::MAX, usize::MAX, false)
                .unwrap(),
        );
        assert_eq!(all.len(), expected.len(), "seed {seed}");
        assert!(
            all == expected,
            "seed {seed}: unlimited scan differs from the model"
        );
        let reversed: Vec<_> = expected.iter().rev().copied().collect();
        // Over the whole range with chunk sizes like the engine's; tiny limits on sub-ranges
        // below (thousands of one-point scans would only slow the test down).
        for limit in [200, 4096] {
            assert!(
                chunked(&storage, i64::MIN, i64::MAX, limit, false) == expected,
                "seed {seed} limit {limit} asc"
            );
            assert!(
                chunked_values(&storage, i64::MIN, i64::MAX, limit).0
                    == without_versions(&expected),
                "seed {seed} limit {limit} values"
            );
            assert!(
                chunked(&storage, i64::MIN, i64::MAX, limit, true) == reversed,
                "seed {seed} limit {limit} desc"
            );
        }
        for _ in 0..12 {
            let limit = 1 + rng.below(300) as usize;
            let width = if limit < 16 { 200 } else { 2_000 };
            let lo = rng.below(SPAN as u64) as i64 - 100;
            let hi = lo + rng.below(width) as i64;
            let want: Vec<_> = expected
                .iter()
                .filter(|p| lo <= p.0 && p.0 <= hi)
                .copied()
                .collect();
            assert!(
                chunked(&storage, lo, hi, limit, false) == want,
                "seed {seed} [{lo}, {hi}] limit {limit} asc"
            );
            assert!(
                chunked_values(&storage, lo, hi, limit).0 == without_versions(&want),
                "seed {seed} [{lo}, {hi}] limit {limit} values"
            );
            let want: Vec<_> = want.into_iter().rev().collect();
            assert!(
                chunked(&storage, lo, hi, limit, true) == want,
                "seed {seed} [{lo}, {hi}] limit {limit} desc"
            );
        }
        storage.pause_flushes(false);
        storage.flush().await.unwrap();
        let all = triples(
            &storage
                .scan(&series("s1"), i64::MIN, i64::MAX, usize::MAX, false)
                .unwrap(),
        );
        assert!(all == expected, "seed {seed}: after the last flush");
        assert!(
            chunked(&storage, i64::MIN, i64::MAX, 777, true) == reversed,
            "seed {seed}: after the last flush"
        );
        // Compaction merges every file of the partition under the same rules.
        storage.close().await.unwrap();
        drop(storage);
        let storage = Storage::open(
            dir.path(),
            StorageOptions {
                instance: 1,
                compaction_files: 2,
                ..StorageOptions::default()
            },
        )
        .unwrap();
        storage.flush().await.unwrap();
        assert_eq!(storage.data_files().len(), 1, "seed {seed}");
        let all = triples(
            &storage
                .scan(&series("s1"), i64::MIN, i64::MAX, usize::MAX, false)
                .unwrap(),
        );
        assert!(all == expected, "seed {seed}: after compaction");
        assert!(
            chunked_values(&storage, i64::MIN, i64::MAX, 1000).0 == without_versions(&expected),
            "seed {seed}: after compaction, one file"
        );
        assert!(
            chunked(&storage, i64::MIN, i64::MAX, 1000, true) == reversed,
            "seed {seed}: after compaction"
        );
    }
}

#[tokio::test]
async fn a_manifest_without_time_indexes_still_loads_and_scans() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let times: Vec<i64> = (0..20_000).collect();
    common::write_local(&storage, insert_i64("s1", &times, &times)).await;
    storage.flush().await.unwrap();
    let before = chunked(&storage, 100, 15_000, 4096, true);
    storage.close().await.unwrap();
    drop(storage);
    // Rewrite the manifest as an older build wrote it: no index fields.
    let path = dir.path().join("MANIFEST");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut stripped = 0;
    for file in manifest["files"].as_array_mut().unwrap() {
        for range in file["series"].as_array_mut().unwrap() {
            let range = range.as_object_mut().unwrap();
            stripped += usize::from(range.remove("time_index").is_some());
            range.remove("index_stride");
        }
    }
    assert_eq!(stripped, 1, "the flush wrote an index");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let storage = open(dir.path());
    assert_eq!(chunked(&storage, 100, 15_000, 4096, true), before);
    assert_eq!(before.len(), 14_901);
    assert_eq!(before.first().map(|p| p.0), Some(15_000));
}

#[test]
#[ignore = "timing check; run explicitly in release mode"]
fn a_million_point_series_reads_back_in_chunks() {
    const POINTS: i64 = 1_000_000;
    const BATCH: i64 = 10_000;
    let runtime = two_worker_runtime();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        StorageOptions {
            memtable_bytes: 1 << 30,
            ..options()
        },
    )
    .unwrap();
    runtime.block_on(async {
        for start in (0..POINTS).step_by(BATCH as usize) {
            let times: Vec<i64> = (start..start + BATCH).collect();
            common::write_local(&storage, insert_i64("s1", &times, &times)).await;
            if start + BATCH == POINTS / 2 {
                storage.flush().await.unwrap();
            }
        }
    });
    assert_eq!(storage.stats().memtable_points, (POINTS / 2) as usize);
    for descending in [false, true] {
        let started = Instant::now();
        let times = read_in_chunks(&storage, &series("s1"), descending);
        let elapsed = started.elapsed();
        assert_eq!(times.len(), POINTS as usize);
        eprintln!(
            "chunked read ({}) of {POINTS} points in {CHUNK}-point chunks: {:.3} s",
            if descending {
                "descending"
            } else {
                "ascending"
            },
            elapsed.as_secs_f64()
        );
    }
    runtime.block_on(storage.close()).unwrap();
}
