//! The reader against TsFiles written by Apache's own `tsfile` package (PyPI 2.5.0, its C++ writer):
//! each fixture's JSON sidecar holds what `scripts/compat/tsfile/make_fixtures.py` wrote, computed
//! by the script, and every series must read back exactly. The small fixtures are committed
//! (tests/fixtures); CI also generates them afresh, with the large ones, into the directory named
//! by DUET_TSFILE_FIXTURES (`scripts/compat/tsfile/run.sh`), and then they must all be there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use duet_tsfile::{Column, DataType, TsFileError, TsFileReader};
use serde_json::Value as Json;

/// Encodings the C++ writer offers that this reader refuses by name (`Unsupported`).
const UNSUPPORTED_ENCODINGS: &[&str] = &["CHIMP", "SPRINTZ", "RLBE", "CAMEL"];

/// The small fixtures, always present in the committed directory and in a generated one.
const SMALL: &[&str] = &[
    "tree_plain",
    "table_defaults",
    "tree_encodings",
    "tree_compressors",
    "table_pages",
];
const LARGE: &[&str] = &["large_table", "large_tree"];

/// One point's value, in a form both sides can produce exactly.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Bool(bool),
    Int(i64),
    /// f32 and f64 compared by bits (the writer's float is the script's `np.float32`).
    Bits(u64),
    Bytes(Vec<u8>),
}

fn expected_value(t: DataType, v: &Json) -> Result<V> {
    Ok(match t {
        DataType::Boolean => V::Bool(v.as_bool().context("bool")?),
        DataType::Int32 | DataType::Int64 | DataType::Timestamp | DataType::Date => {
            V::Int(v.as_i64().context("int")?)
        }
        // IEEE bits in hex: a JSON number's parsing may round.
        DataType::Float | DataType::Double => {
            V::Bits(u64::from_str_radix(v.as_str().context("float bits")?, 16)?)
        }
        DataType::Text | DataType::String => {
            V::Bytes(v.as_str().context("string")?.as_bytes().to_vec())
        }
        DataType::Blob => {
            let hex = v.as_str().context("blob hex")?;
            let bytes: Result<Vec<u8>, _> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect();
            V::Bytes(bytes?)
        }
    })
}

fn column_values(c: &Column) -> Vec<Option<V>> {
    match c {
        Column::Boolean(v) => v.iter().map(|x| x.map(V::Bool)).collect(),
        Column::Int32(v) => v.iter().map(|x| x.map(|x| V::Int(i64::from(x)))).collect(),
        Column::Int64(v) => v.iter().map(|x| x.map(V::Int)).collect(),
        Column::Float(v) => v
            .iter()
            .map(|x| x.map(|x| V::Bits(u64::from(x.to_bits()))))
            .collect(),
        Column::Double(v) => v.iter().map(|x| x.map(|x| V::Bits(x.to_bits()))).collect(),
        Column::Binary(v) => v.iter().map(|x| x.clone().map(V::Bytes)).collect(),
    }
}

fn data_type(name: &str) -> Result<DataType> {
    DataType::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .with_context(|| format!("type {name}"))
}

#[derive(Default)]
struct Read {
    points: BTreeMap<(String, String), Vec<(i64, V)>>,
    meta: BTreeMap<(String, String), (DataType, bool, String, String)>,
    rows: BTreeMap<String, Vec<i64>>,
    unsupported: Vec<String>,
    chunks: usize,
}

fn read_file(path: &Path) -> Result<Read> {
    let mut reader = TsFileReader::open(path)?;
    let mut out = Read::default();
    let mut time_columns_seen = BTreeMap::<String, Vec<u64>>::new();
    for chunk in reader.chunks() {
        let chunk = match chunk {
            Ok(c) => c,
            Err(TsFileError::Unsupported(why)) => {
                out.unsupported.push(why);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.chunks += 1;
        let device = chunk.device.path();
        let key = (device.clone(), chunk.measurement.clone());
        let meta = (
            chunk.data_type,
            chunk.aligned,
            chunk.encoding.name().to_string(),
            chunk.compression.name().to_string(),
        );
        if let Some(old) = out.meta.insert(key.clone(), meta.clone()) {
            ensure!(old == meta, "{key:?}: chunks disagree: {old:?} vs {meta:?}");
        }
        let values = column_values(&chunk.values);
        ensure!(
            values.len() == chunk.times.len(),
            "{key:?}: {} values for {} times",
            values.len(),
            chunk.times.len()
        );
        let pts = out.points.entry(key).or_default();
        for (t, v) in chunk.times.iter().zip(values) {
            if let Some(v) = v {
                pts.push((*t, v));
            }
        }
        if chunk.aligned {
            // The device's rows: each time column once (its value chunks share it).
            let seen = time_columns_seen.entry(device.clone()).or_default();
            let id = chunk
                .time_chunk_offset
                .context("aligned chunk without its time chunk")?;
            if !seen.contains(&id) {
                seen.push(id);
                out.rows
                    .entry(device)
                    .or_default()
                    .extend(chunk.times.iter().copied());
            }
        }
    }
    for v in out.points.values_mut() {
        v.sort_by_key(|p| p.0);
    }
    for v in out.rows.values_mut() {
        v.sort_unstable();
    }
    Ok(out)
}

fn check_fixture(dir: &Path, name: &str) -> Result<()> {
    let sidecar: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.json")))
            .with_context(|| format!("{name}.json"))?,
    )?;
    let read = read_file(&dir.join(format!("{name}.tsfile")))
        .with_context(|| format!("reading {name}.tsfile"))?;
    let large = sidecar["large"].as_bool().unwrap_or(false);
    let series = sidecar["series"].as_array().context("series")?;
    let mut compared = 0usize;
    for s in series {
        let device = s["device"].as_str().context("device")?.to_string();
        let measurement = s["measurement"]
            .as_str()
            .context("measurement")?
            .to_string();
        let t = data_type(s["type"].as_str().context("type")?)?;
        let encoding = s["encoding"].as_str().context("encoding")?;
        let what = format!("{name}: {device}.{measurement} ({t} {encoding})");
        if UNSUPPORTED_ENCODINGS.contains(&encoding) {
            ensure!(
                read.unsupported
                    .iter()
                    .any(|why| why.contains(&format!("{device}.{measurement} "))
                        && why.contains(encoding)),
                "{what}: expected an Unsupported error naming the series, got {:?}",
                read.unsupported
            );
            continue;
        }
        let key = (device.clone(), measurement.clone());
        let (rt, aligned, renc, rcomp) = read
            .meta
            .get(&key)
            .with_context(|| format!("{what}: not in the file"))?;
        ensure!(*rt == t, "{what}: read type {rt}");
        ensure!(
            *aligned == s["aligned"].as_bool().unwrap_or(false),
            "{what}: aligned flag"
        );
        ensure!(renc == encoding, "{what}: read encoding {renc}");
        ensure!(
            rcomp == s["compression"].as_str().unwrap_or(""),
            "{what}: read compression {rcomp}"
        );
        let got = &read.points[&key];
        if large {
            check_aggregates(&what, t, s, got)?;
        } else {
            let expected: Vec<(i64, V)> = s["points"]
                .as_array()
                .context("points")?
                .iter()
                .map(|p| Ok((p[0].as_i64().context("time")?, expected_value(t, &p[1])?)))
                .collect::<Result<_>>()?;
            ensure!(
                got.len() == expected.len(),
                "{what}: {} points read, {} written",
                got.len(),
                expected.len()
            );
            for (g, e) in got.iter().zip(&expected) {
                ensure!(g == e, "{what}: read {g:?}, written {e:?}");
            }
        }
        compared += 1;
    }
    ensure!(
        read.unsupported
            .iter()
            .all(|why| UNSUPPORTED_ENCODINGS.iter().any(|e| why.contains(e))),
        "{name}: unexpected Unsupported errors {:?}",
        read.unsupported
    );
    ensure!(
        read.points.len() == compared,
        "{name}: {} series read, {compared} expected",
        read.points.len()
    );
    if let Some(rows) = sidecar["rows"].as_object() {
        for (device, times) in rows {
            let expected: Vec<i64> = times
                .as_array()
                .context("rows")?
                .iter()
                .filter_map(Json::as_i64)
                .collect();
            let got = read
                .rows
                .get(device)
                .with_context(|| format!("{name}: no aligned rows for {device}"))?;
            ensure!(
                *got == expected,
                "{name}: {device}: {} rows read, {} written",
                got.len(),
                expected.len()
            );
        }
    }
    eprintln!(
        "{name}: {compared} series, {} chunks match the writer's content",
        read.chunks
    );
    Ok(())
}

fn check_aggregates(what: &str, t: DataType, s: &Json, got: &[(i64, V)]) -> Result<()> {
    let count = s["count"].as_u64().context("count")? as usize;
    ensure!(
        got.len() == count,
        "{what}: {} points read, {count} written",
        got.len()
    );
    ensure!(
        got.first().map(|p| p.0) == s["min_time"].as_i64(),
        "{what}: first time"
    );
    ensure!(
        got.last().map(|p| p.0) == s["max_time"].as_i64(),
        "{what}: last time"
    );
    match t {
        DataType::Float | DataType::Double => {
            let mut sum = 0.0f64;
            for (_, v) in got {
                let V::Bits(b) = v else {
                    bail!("{what}: not a float")
                };
                sum += if t == DataType::Float {
                    f64::from(f32::from_bits(*b as u32))
                } else {
                    f64::from_bits(*b)
                };
            }
            let expected = u64::from_str_radix(s["sum"].as_str().context("sum bits")?, 16)?;
            ensure!(
                sum.to_bits() == expected,
                "{what}: sum {sum} vs {}",
                f64::from_bits(expected)
            );
        }
        DataType::Boolean => {
            let n = got.iter().filter(|(_, v)| *v == V::Bool(true)).count() as u64;
            ensure!(
                Some(n) == s["sum"].as_u64(),
                "{what}: {n} trues vs {}",
                s["sum"]
            );
        }
        DataType::Int32 | DataType::Int64 | DataType::Timestamp | DataType::Date => {
            let mut sum: i128 = 0;
            for (_, v) in got {
                let V::Int(i) = v else {
                    bail!("{what}: not an int")
                };
                sum += i128::from(*i);
            }
            let expected: i128 = s["sum"].to_string().parse()?;
            ensure!(sum == expected, "{what}: sum {sum} vs {expected}");
        }
        _ => {}
    }
    let index: BTreeMap<i64, &V> = got.iter().map(|(t, v)| (*t, v)).collect();
    for p in s["samples"].as_array().context("samples")? {
        let time = p[0].as_i64().context("sample time")?;
        let e = expected_value(t, &p[1])?;
        ensure!(
            index.get(&time) == Some(&&e),
            "{what}: at {time} read {:?}, written {e:?}",
            index.get(&time)
        );
    }
    Ok(())
}

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn committed_fixtures_read_back_exactly() -> Result<()> {
    for name in SMALL {
        check_fixture(&committed(), name)?;
    }
    Ok(())
}

/// The fixtures `scripts/compat/tsfile/run.sh` generates with the pinned package, the large ones
/// included. Skipped (with a notice) only when DUET_TSFILE_FIXTURES is unset; when it is set, a
/// missing file fails the test.
#[test]
fn generated_fixtures_read_back_exactly() -> Result<()> {
    let Some(dir) = std::env::var_os("DUET_TSFILE_FIXTURES") else {
        eprintln!(
            "DUET_TSFILE_FIXTURES is not set: skipping the generated (and large) TsFile fixtures"
        );
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    for name in SMALL.iter().chain(LARGE) {
        for ext in ["tsfile", "json"] {
            let p = dir.join(format!("{name}.{ext}"));
            ensure!(
                p.is_file(),
                "DUET_TSFILE_FIXTURES is set but {} is missing",
                p.display()
            );
        }
        check_fixture(&dir, name)?;
    }
    Ok(())
}
