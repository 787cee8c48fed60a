//! Hostile input: every committed fixture truncated at many offsets and with bytes flipped must
//! give `Ok` or an error — never a panic, a hang or an allocation out of proportion (the reader
//! checks every length and count against the bytes left before allocating). A truncated file is
//! always refused as `Corrupt`, since its tail is gone. Mods files likewise.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use anyhow::{bail, Result};
use duet_tsfile::{parse_mods, ReadOptions, TsFileError, TsFileReader};

const FIXTURES: &[&str] = &[
    "tree_plain",
    "table_defaults",
    "tree_encodings",
    "tree_compressors",
    "table_pages",
];

fn fixture(name: &str) -> Result<Vec<u8>> {
    Ok(std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{name}.tsfile")),
    )?)
}

/// Opens and scans the whole file; returns the first error, if any, after reading everything the
/// scan yields (an `Unsupported` chunk is skipped as a loader would).
fn scan(bytes: &[u8]) -> std::result::Result<usize, TsFileError> {
    let options = ReadOptions {
        max_page_points: 1 << 16,
        ..ReadOptions::default()
    };
    let mut reader = TsFileReader::with_options(duet_tsfile::InMemory(bytes), options)?;
    let mut points = 0;
    for chunk in reader.chunks() {
        match chunk {
            Ok(c) => {
                assert_eq!(c.times.len(), c.values.len());
                points += c.points().count();
            }
            Err(TsFileError::Unsupported(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(points)
}

fn guarded(what: &str, bytes: &[u8]) -> Result<std::result::Result<usize, TsFileError>> {
    match catch_unwind(AssertUnwindSafe(|| scan(bytes))) {
        Ok(r) => Ok(r),
        Err(_) => bail!("{what}: the reader panicked"),
    }
}

#[test]
fn truncated_files_are_refused_as_corrupt() -> Result<()> {
    for name in FIXTURES {
        let bytes = fixture(name)?;
        let full = guarded(name, &bytes)?;
        assert!(full.is_ok(), "{name}: {full:?}");
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            match guarded(&format!("{name} cut at {cut}"), &bytes[..cut])? {
                Err(TsFileError::Corrupt { .. }) => {}
                other => bail!("{name} cut at {cut}: expected Corrupt, got {other:?}"),
            }
        }
    }
    Ok(())
}

/// Bytes inside the data section flipped (so the tail still checks out and the scan meets the
/// damage), and a whole-file sweep: whatever the reader answers, it answers.
#[test]
fn flipped_bytes_never_panic() -> Result<()> {
    let mut errors = 0usize;
    let mut oks = 0usize;
    for name in FIXTURES {
        let bytes = fixture(name)?;
        let step = (bytes.len() / 600).max(1);
        for at in (0..bytes.len()).step_by(step) {
            for mask in [0x01u8, 0x80, 0xff, 0x3c] {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                match guarded(&format!("{name} byte {at} ^ {mask:#x}"), &damaged)? {
                    Ok(_) => oks += 1,
                    Err(_) => errors += 1,
                }
            }
            // Length fields set to extremes: four bytes of 0xff / 0x7f.
            for fill in [0xffu8, 0x7f] {
                let mut damaged = bytes.clone();
                for b in damaged.iter_mut().skip(at).take(4) {
                    *b = fill;
                }
                match guarded(&format!("{name} bytes {at}.. = {fill:#x}"), &damaged)? {
                    Ok(_) => oks += 1,
                    Err(_) => errors += 1,
                }
            }
        }
    }
    // Both outcomes occur: damage to values goes unnoticed (TsFile has no checksums), damage to
    // structure is refused.
    assert!(errors > 0 && oks > 0, "errors {errors}, oks {oks}");
    eprintln!("flipped inputs: {errors} refused, {oks} read");
    Ok(())
}

#[test]
fn a_huge_run_length_claim_is_bounded() -> Result<()> {
    // A non-aligned INT64 page whose time column is one TS_2DIFF block claiming 2^31-1 deltas of
    // width 0 (24 bytes that would decode to 16 GiB of timestamps): refused, not allocated.
    let bytes = fixture("tree_plain")?;
    // The first TS_2DIFF block header in the file (a count below 2^24 followed by width 0: the
    // fixture's regular timestamps) gets the count 2^31-1.
    let mut damaged = bytes.clone();
    let mut patched = false;
    for i in 7..damaged.len().saturating_sub(8) {
        if damaged[i..i + 4] != [0, 0, 0, 0]
            && damaged[i..i + 3] == [0, 0, 0]
            && damaged[i + 4..i + 8] == [0, 0, 0, 0]
        {
            damaged[i..i + 4].copy_from_slice(&i32::MAX.to_be_bytes());
            patched = true;
            break;
        }
    }
    assert!(patched);
    let r = guarded("huge count", &damaged)?;
    assert!(
        matches!(&r, Err(TsFileError::Corrupt { what, .. }) if what.contains("TS_2DIFF")),
        "{r:?}"
    );
    Ok(())
}

#[test]
fn mods_bytes_never_panic() -> Result<()> {
    let mut v2 = vec![1u8];
    v2.extend_from_slice(&5i64.to_be_bytes());
    v2.extend_from_slice(&9i64.to_be_bytes());
    v2.push(26);
    v2.extend_from_slice(b"root.sg.d1.s1");
    let v1 = b"DELETION,root.sg.d1.s1,3,5,9\nDELETION,root.sg.d2.*,4,10\n".to_vec();
    for base in [v2, v1] {
        assert!(parse_mods(&base).is_ok());
        for at in 0..base.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut d = base.clone();
                d[at] ^= mask;
                if catch_unwind(|| parse_mods(&d)).is_err() {
                    bail!("mods parser panicked at byte {at} ^ {mask:#x}");
                }
            }
            if catch_unwind(|| parse_mods(&base[..at])).is_err() {
                bail!("mods parser panicked on a cut at {at}");
            }
        }
    }
    Ok(())
}
