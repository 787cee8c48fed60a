//! IoTDB's modification (`.mods`) files: the deletions that travel with a TsFile and must be
//! applied to its points. Two formats:
//! - v2 (IoTDB 2.x, `.mods2` on disk; `ModificationFile`, `ModEntry`, `TreeDeletionEntry` in
//!   apache/iotdb `iotdb-core/datanode/.../storageengine/dataregion/modification/`, read at commits
//!   4e2b31ef and 404f9a29): entries back to back with no header, each a type byte (1 = tree
//!   deletion, 0 = table deletion), big-endian int64 start and end time (both inclusive), and for a
//!   tree deletion the path pattern as a zig-zag-varint-length string.
//! - v1 (IoTDB 1.x, `v1/io/LocalTextModificationAccessor`): text lines
//!   `DELETION,<path>,<file offset>,<start>,<end>`, or the older `DELETION,<path>,<version>,<end>`
//!   (start = `Long.MIN_VALUE`); the path may itself contain commas.
//!
//! Table-model deletions (a predicate over tags) are refused as `Unsupported`.

use std::path::Path;

use crate::bytes::Cursor;
use crate::error::{corrupt, Result, TsFileError};

/// Delete the points of the series matching `path_pattern` (an IoTDB path pattern such as
/// `root.sg.d1.s1`, `root.sg.d1.*` or `root.sg.**`) with `start_time <= time <= end_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub path_pattern: String,
    pub start_time: i64,
    pub end_time: i64,
}

const TABLE_DELETION: u8 = 0;
const TREE_DELETION: u8 = 1;

/// Reads a mods file of either format.
pub fn read_mods_file(path: impl AsRef<Path>) -> Result<Vec<Deletion>> {
    parse_mods(&std::fs::read(path)?)
}

/// Parses a mods file's bytes, telling the formats apart by the first byte (a v2 entry starts
/// with its type, 0 or 1; a v1 line with `D`).
pub fn parse_mods(bytes: &[u8]) -> Result<Vec<Deletion>> {
    match bytes.first() {
        None => Ok(Vec::new()),
        Some(b'D') => parse_mods_v1(bytes),
        Some(_) => parse_mods_v2(bytes),
    }
}

/// The binary v2 format.
pub fn parse_mods_v2(bytes: &[u8]) -> Result<Vec<Deletion>> {
    let mut c = Cursor::new(bytes, 0);
    let mut out = Vec::new();
    while !c.is_empty() {
        let at = c.offset();
        let kind = c.u8("mod entry type")?;
        let start_time = c.i64_be("deletion start time")?;
        let end_time = c.i64_be("deletion end time")?;
        match kind {
            TREE_DELETION => {
                let path_pattern = c
                    .var_string("deletion path")?
                    .ok_or_else(|| corrupt(at, "tree deletion without a path"))?;
                out.push(Deletion {
                    path_pattern,
                    start_time,
                    end_time,
                });
            }
            TABLE_DELETION => {
                return Err(TsFileError::Unsupported(format!(
                    "table-model deletion in a mods file (entry at offset {at})"
                )))
            }
            other => return Err(corrupt(at, format!("mod entry type {other}"))),
        }
    }
    Ok(out)
}

/// The text v1 format.
pub fn parse_mods_v1(bytes: &[u8]) -> Result<Vec<Deletion>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| corrupt(e.valid_up_to() as u64, "mods file is not UTF-8"))?;
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in text.split('\n') {
        let at = offset;
        offset += line.len() as u64 + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields[0] != "DELETION" {
            return Err(corrupt(
                at,
                format!("unknown modification type {:?}", fields[0]),
            ));
        }
        if fields.len() < 4 {
            return Err(corrupt(
                at,
                format!("deletion line with {} fields", fields.len()),
            ));
        }
        let n = fields.len();
        let int = |s: &str| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| corrupt(at, format!("{s:?} is not a timestamp")))
        };
        // The range form has a numeric third-from-last field; the point form does not (its path
        // ends there).
        let (path_fields, start_time, end_time) =
            if n >= 5 && fields[n - 3].trim().parse::<i64>().is_ok() {
                (&fields[1..n - 3], int(fields[n - 2])?, int(fields[n - 1])?)
            } else {
                int(fields[n - 2])?;
                (&fields[1..n - 2], i64::MIN, int(fields[n - 1])?)
            };
        let path_pattern = path_fields.join(",");
        if path_pattern.is_empty() {
            return Err(corrupt(at, "deletion without a path"));
        }
        out.push(Deletion {
            path_pattern,
            start_time,
            end_time,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_entry(path: &str, start: i64, end: i64) -> Vec<u8> {
        let mut b = vec![TREE_DELETION];
        b.extend_from_slice(&start.to_be_bytes());
        b.extend_from_slice(&end.to_be_bytes());
        b.push((path.len() as u8) << 1); // zig-zag varint, short path
        b.extend_from_slice(path.as_bytes());
        b
    }

    #[test]
    fn reads_v2_tree_deletions() -> Result<()> {
        let mut bytes = tree_entry("root.sg.d1.s1", 10, 20);
        bytes.extend(tree_entry("root.sg.**", i64::MIN, 5));
        let mods = parse_mods(&bytes)?;
        assert_eq!(
            mods,
            vec![
                Deletion {
                    path_pattern: "root.sg.d1.s1".into(),
                    start_time: 10,
                    end_time: 20
                },
                Deletion {
                    path_pattern: "root.sg.**".into(),
                    start_time: i64::MIN,
                    end_time: 5
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn refuses_table_deletions_and_truncated_entries() {
        let mut table = vec![TABLE_DELETION];
        table.extend_from_slice(&[0; 16]);
        table.push(0);
        assert!(matches!(
            parse_mods(&table),
            Err(TsFileError::Unsupported(_))
        ));
        let entry = tree_entry("root.sg.d1.s1", 1, 2);
        for cut in 1..entry.len() {
            assert!(
                matches!(parse_mods(&entry[..cut]), Err(TsFileError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
        let mut bad = entry.clone();
        bad[0] = 7;
        assert!(matches!(parse_mods(&bad), Err(TsFileError::Corrupt { .. })));
    }

    #[test]
    fn reads_v1_lines() -> Result<()> {
        let text = "DELETION,root.ln.wf01.wt01.temperature,111,100,300\n\
                    DELETION,root.ln.`a,b`.s,7,-5,9\r\n\
                    DELETION,root.ln.wf01.wt01.status,222,300\n";
        let mods = parse_mods(text.as_bytes())?;
        assert_eq!(
            mods,
            vec![
                Deletion {
                    path_pattern: "root.ln.wf01.wt01.temperature".into(),
                    start_time: 100,
                    end_time: 300
                },
                Deletion {
                    path_pattern: "root.ln.`a,b`.s".into(),
                    start_time: -5,
                    end_time: 9
                },
                Deletion {
                    path_pattern: "root.ln.wf01.wt01.status".into(),
                    start_time: i64::MIN,
                    end_time: 300
                },
            ]
        );
        assert!(parse_mods(b"DELETION,root.a,x,y\n").is_err());
        assert!(parse_mods(b"DELETION,1\n").is_err());
        assert!(parse_mods_v1(b"INSERT,root.a,1,2,3\n").is_err());
        Ok(())
    }
}
