//! The fault soak in the test suite: a short run of the real `duet-soak` binary (20 faults: kills,
//! graceful restarts, partitions, slow links) against two real `duetd` processes must find every
//! acknowledged point on both sides and the two sides identical; and a run whose data is sabotaged
//! behind the writers' back must fail, naming the range and keeping the data directories — so a
//! passing soak means something.
//!
//! The seed is drawn from the clock unless `DUET_SOAK_SEED` is set; it is the first line of the output
//! either way, so a failure can be replayed with `duet-soak --seed N`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The two soaks share the machine's two cores with the servers they start: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seed() -> String {
    std::env::var("DUET_SOAK_SEED").unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        (nanos % 1_000_000_007).to_string()
    })
}

/// Runs `duet-soak` with `args`; returns (exit code, stdout).
fn soak(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_duet-soak"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.code().expect("duet-soak killed by a signal"),
        stdout,
    )
}

/// The value of `key=` on the `result:` line.
fn result_field(stdout: &str, key: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("result:"))
        .unwrap_or_else(|| panic!("no result line in:\n{stdout}"));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn short_fault_soak_loses_nothing_and_converges() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    // Faults every 0.3–1.5 s and writers pausing 10–40 ms between operations keep the run near a
    // minute and a half in a debug build on two cores; `scripts/soak.sh` runs the full pace.
    let (code, out) = soak(&[
        "--seed",
        &seed,
        "--faults",
        "20",
        "--min-gap-ms",
        "300",
        "--max-gap-ms",
        "1500",
        "--min-pause-ms",
        "10",
        "--max-pause-ms",
        "40",
    ]);
    assert_eq!(
        code, 0,
        "the soak failed (seed {seed}); its output is above"
    );
    assert!(
        out.starts_with(&format!("duet-soak: seed {seed}\n")),
        "{out}"
    );
    assert_eq!(result_field(&out, "faults"), 20);
    assert!(result_field(&out, "acknowledged_points") > 10_000, "{out}");
    assert_eq!(result_field(&out, "lost"), 0);
    assert_eq!(result_field(&out, "divergent"), 0);
    assert!(out.contains("duet-check: consistent"), "{out}");
}

#[test]
fn soak_reports_points_deleted_behind_its_back() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    let (code, out) = soak(&["--seed", &seed, "--faults", "2", "--sabotage"]);
    assert_eq!(code, 1, "the sabotaged soak did not fail (seed {seed})");
    assert!(result_field(&out, "lost") > 0, "{out}");
    // Deleted on A and replicated: both sides agree, both lost it.
    assert!(out.contains("acknowledged points missing on A"), "{out}");
    assert!(out.contains("acknowledged points missing on B"), "{out}");
    assert!(out.contains("root.soak.a.w0d0."), "{out}");
    let kept = out
        .lines()
        .find_map(|l| l.strip_prefix("data directories kept: "))
        .unwrap_or_else(|| panic!("no kept directories in:\n{out}"));
    let a_dir = kept.split(" and ").next().unwrap();
    assert!(
        std::path::Path::new(a_dir).join("catalog.sqlite").exists(),
        "{kept}"
    );
    // The directories were kept for this test only: remove them.
    let root = std::path::Path::new(a_dir).parent().unwrap();
    std::fs::remove_dir_all(root).unwrap();
}
