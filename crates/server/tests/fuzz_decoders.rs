//! The stable, CI-sized fuzzer of every decoder: for each target of `fuzz/src/lib.rs` it replays the
//! committed corpus (`fuzz/corpus/<target>/`: seeds from valid encodings and every crasher ever found),
//! then mutates it at random for `DUET_FUZZ_SECS` seconds (default 5) — bit flips, length prefixes set
//! to extremes (-1, 2^31-1, 2^32-1 as a varint), truncations, insertions, splices.
//!
//! Each input must return (Ok or Err) without panicking and without allocating more than
//! 32 MiB + 64 × its length while it runs (a counting global allocator enforces the cap: exceeding it
//! aborts this test binary with "memory allocation of N bytes failed"). The run prints its seed; rerun
//! with `DUET_FUZZ_SEED=<seed>` to repeat it. A panicking input is saved under the target directory
//! and printed in hex, ready to be committed as `fuzz/corpus/<target>/crash-<name>`.
//!
//! The long coverage-guided runs use the same targets through cargo-fuzz (`fuzz/README.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::alloc::System;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cap::Cap;

use targets::{Target, TARGETS};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// One target at a time: the allocation cap is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Inputs never grow past this.
const MAX_INPUT: usize = 64 * 1024;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Written to stderr directly, so it shows even when the test output is captured and the binary aborts.
fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// xorshift64*: small, deterministic per seed, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Length prefixes and counts a hostile peer would send, big-endian i32 (binary Thrift, tablets,
/// TsBlocks, pipe bodies) and as compact varints.
const EXTREME_I32: [i32; 9] = [
    -1,
    i32::MIN,
    i32::MAX,
    0,
    1,
    0x0001_0000,
    0x00ff_ffff,
    -2,
    0x4000_0000,
];
const EXTREME_VARINTS: [&[u8]; 4] = [
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0x07],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0x01],
];

fn overwrite(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        match data.get_mut(at + i) {
            Some(slot) => *slot = *b,
            None => data.push(*b),
        }
    }
}

/// One random mutation of `data`; `corpus` supplies splices.
fn mutate(random: &mut Random, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = data.len();
    let at = random.below(len.max(1));
    match random.below(11) {
        0 if len > 0 => data[at] ^= 1 << random.below(8),
        1 if len > 0 => data[at] = random.next() as u8,
        2 if len > 0 => data[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][random.below(5)],
        3 => {
            let value = EXTREME_I32[random.below(EXTREME_I32.len())];
            overwrite(data, at, &value.to_be_bytes());
        }
        4 => {
            let varint = EXTREME_VARINTS[random.below(EXTREME_VARINTS.len())];
            overwrite(data, at, varint);
        }
        5 => {
            // A plausible length prefix (a small positive big-endian i32 that fits what follows),
            // pushed to an extreme: the shape of every crash so far.
            let candidates: Vec<usize> = (0..len.saturating_sub(3))
                .filter(|i| {
                    let v = i32::from_be_bytes([data[*i], data[i + 1], data[i + 2], data[i + 3]]);
                    v > 0 && (v as usize) <= len - i
                })
                .collect();
            if !candidates.is_empty() {
                let i = candidates[random.below(candidates.len())];
                let value = EXTREME_I32[random.below(EXTREME_I32.len())];
                overwrite(data, i, &value.to_be_bytes());
            }
        }
        6 => data.truncate(at),
        7 => {
            let n = 1 + random.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| random.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        8 if len > 0 => {
            let start = random.below(len);
            let end = (start + 1 + random.below(64)).min(len);
            let chunk = data[start..end].to_vec();
            let to = random.below(len);
            data.splice(to..to, chunk);
        }
        9 if !corpus.is_empty() => {
            let other = &corpus[random.below(corpus.len())];
            let from = random.below(other.len().max(1));
            data.truncate(at);
            data.extend_from_slice(other.get(from..).unwrap_or_default());
        }
        _ if len > 0 => {
            let end = (at + 1 + random.below(32)).min(len);
            data.drain(at..end);
        }
        _ => data.push(random.next() as u8),
    }
    data.truncate(MAX_INPUT);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `target` on `input` under the allocation cap; a panic fails the test with the input saved.
fn check(target: &Target, input: &[u8]) {
    let limit = ALLOCATOR
        .allocated()
        .saturating_add(32 << 20)
        .saturating_add(input.len().saturating_mul(64));
    let _ = ALLOCATOR.set_limit(limit);
    let outcome = std::panic::catch_unwind(|| (target.run)(input));
    let _ = ALLOCATOR.set_limit(usize::MAX);
    if outcome.is_err() {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "fuzz-{}-crash-{:016x}",
            target.name,
            fnv(input)
        ));
        let _ = std::fs::write(&path, input);
        panic!(
            "target {} panicked on an input of {} bytes, saved to {}: {}",
            target.name,
            input.len(),
            path.display(),
            hex(input)
        );
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fuzz(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let target = TARGETS.iter().find(|t| t.name == name).unwrap();
    let dir = corpus_dir(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut corpus: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(
        files.iter().any(|f| f
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))),
        "no seeds in {}",
        dir.display()
    );
    // The seeds and crashers as this build encodes them, in case the committed ones are stale.
    corpus.extend((target.seeds)().into_iter().map(|(_, bytes)| bytes));
    corpus.extend((target.crashers)().into_iter().map(|(_, bytes)| bytes));
    note(&format!(
        "fuzz {name}: replaying {} corpus inputs",
        corpus.len()
    ));
    for input in &corpus {
        check(target, input);
    }
    let secs: f64 = std::env::var("DUET_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let seed: u64 = std::env::var("DUET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    note(&format!(
        "fuzz {name}: mutating for {secs} s with seed {seed}"
    ));
    let mut random = Random(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut executions = 0u64;
    while Instant::now() < deadline {
        // Batches between clock reads keep the clock off the profile.
        for _ in 0..64 {
            let mut input = corpus[random.below(corpus.len())].clone();
            for _ in 0..1 + random.below(4) {
                mutate(&mut random, &mut input, &corpus);
            }
            check(target, &input);
            executions += 1;
        }
    }
    note(&format!(
        "fuzz {name}: {executions} mutated inputs, no failure"
    ));
}

#[test]
fn fuzz_thrift_call() {
    fuzz("thrift_call");
}

#[test]
fn fuzz_tablet() {
    fuzz("tablet");
}

#[test]
fn fuzz_tsblock() {
    fuzz("tsblock");
}

#[test]
fn fuzz_pipe_body() {
    fuzz("pipe_body");
}

#[test]
fn fuzz_sql() {
    fuzz("sql");
}

/// Every target in `fuzz/src/lib.rs` has a test above.
#[test]
fn every_target_is_fuzzed_here() {
    let source = include_str!("fuzz_decoders.rs");
    for target in TARGETS {
        assert!(
            source.contains(&format!("fuzz(\"{}\")", target.name)),
            "{} has no test",
            target.name
        );
    }
}

/// Writes the seed and crasher files of every target into `fuzz/corpus/` (run by hand after an
/// encoding changes: `cargo test -p duet-server --test fuzz_decoders -- --ignored write_seed_corpus`).
#[test]
#[ignore]
fn write_seed_corpus() {
    for target in TARGETS {
        let dir = corpus_dir(target.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (prefix, inputs) in [("seed", (target.seeds)()), ("crash", (target.crashers)())] {
            for (name, bytes) in inputs {
                std::fs::write(dir.join(format!("{prefix}-{name}")), bytes).unwrap();
            }
        }
    }
}
