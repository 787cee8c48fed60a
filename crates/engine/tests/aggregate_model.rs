//! Aggregates checked against a model of the data: random overwrites, range deletions and flushes
//! leave points in the memtable, in overlapping files and in disjoint files (whose summaries answer
//! without a scan), and every aggregate, whole-range and per window (tumbling and sliding), must equal
//! what the model computes from the points it knows are visible (issue 11).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use duet_engine::{Engine, Output};
use duet_storage::StorageOptions;

struct Db {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
}

fn open() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let (_, engine) = common::open_engine(dir.path(), StorageOptions::default().instance);
    Db { _dir: dir, engine }
}

impl Db {
    async fn exec(&self, sql: &str) -> Output {
        common::execute(&self.engine, sql).await
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        common::rows(self.exec(sql).await)
    }
}

/// A small deterministic generator (no dependency needed for a test's randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const FUNCTIONS: [&str; 18] = [
    "count",
    "sum",
    "avg",
    "min_value",
    "max_value",
    "first_value",
    "last_value",
    "min_time",
    "max_time",
    "extreme",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "variance",
    "var_samp",
    "var_pop",
    "time_duration",
    "mode",
];

/// What each function gives over the model's points `(time, value)` in time order, as text in the
/// form the engine renders (numbers compared as numbers below).
fn expected(points: &[(i64, f64)]) -> Vec<Option<f64>> {
    if points.is_empty() {
        return FUNCTIONS
            .iter()
            .map(|f| (*f == "count").then_some(0.0))
            .collect();
    }
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let sum: f64 = values.iter().sum();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let extreme = if max.abs() >= min.abs() { max } else { min };
    let (first, last) = (points[0], points[points.len() - 1]);
    let n = points.len() as f64;
    let mean = sum / n;
    let m2: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sample = (points.len() > 1).then(|| m2 / (n - 1.0));
    vec![
        Some(points.len() as f64),
        Some(sum),
        Some(sum / points.len() as f64),
        Some(min),
        Some(max),
        Some(first.1),
        Some(last.1),
        Some(first.0 as f64),
        Some(last.0 as f64),
        Some(extreme),
        sample.map(f64::sqrt),
        sample.map(f64::sqrt),
        Some((m2 / n).sqrt()),
        sample,
        sample,
        Some(m2 / n),
        Some((last.0 - first.0) as f64),
        Some(mode(points)),
    ]
}

/// The most frequent value, the earliest on a tie.
fn mode(points: &[(i64, f64)]) -> f64 {
    let mut seen: BTreeMap<u64, (usize, i64, f64)> = BTreeMap::new();
    for (t, v) in points {
        let e = seen.entry(v.to_bits()).or_insert((0, *t, *v));
        e.0 += 1;
        e.1 = e.1.min(*t);
    }
    let best = seen.values().copied().reduce(|a, b| {
        if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
            b
        } else {
            a
        }
    });
    best.map_or(f64::NAN, |b| b.2)
}

fn parse(cell: &str) -> Option<f64> {
    (cell != "null").then(|| {
        cell.parse::<f64>()
            .unwrap_or_else(|e| panic!("not a number: {cell}: {e}"))
    })
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-8 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Checks every function of `series` over `[lo, hi)` in windows `(start, width, step)` (or one
/// window without GROUP BY) against the model.
/// `filter` is a WHERE condition, and `model` holds only the points that meet it.
async fn check(
    db: &Db,
    series: &str,
    model: &BTreeMap<i64, f64>,
    range: (i64, i64),
    windows: Option<(i64, i64)>,
    filter: Option<&str>,
    context: &str,
) {
    let select: Vec<String> = FUNCTIONS.iter().map(|f| format!("{f}({series})")).collect();
    let (lo, hi) = range;
    let and = filter.map(|f| format!(" and ({f})")).unwrap_or_default();
    let sql = match windows {
        None => format!(
            "select {} from root.sg.d where time >= {lo} and time < {hi}{and}",
            select.join(", ")
        ),
        Some((width, step)) => format!(
            "select {} from root.sg.d {} group by ([{lo}, {hi}), {width}ms, {step}ms)",
            select.join(", "),
            filter.map(|f| format!("where {f}")).unwrap_or_default(),
        ),
    };
    let rows = db.rows(&sql).await;
    let bounds: Vec<(i64, i64)> = match windows {
        None => vec![(lo, hi)],
        Some((width, step)) => (0..)
            .map(|k| lo + k * step)
            .take_while(|w| *w < hi)
            .map(|w| (w, (w + width).min(hi)))
            .collect(),
    };
    assert_eq!(rows.len(), bounds.len(), "{context}: {sql}");
    for (row, (w_lo, w_hi)) in rows.iter().zip(bounds) {
        let points: Vec<(i64, f64)> = model.range(w_lo..w_hi).map(|(t, v)| (*t, *v)).collect();
        let want = expected(&points);
        // Without GROUP BY the first cell is a placeholder time, with it the window's start.
        for (i, f) in FUNCTIONS.iter().enumerate() {
            let got = parse(&row[i + 1]);
            assert!(
                close(got, want[i]),
                "{context}: {f}({series}) over [{w_lo}, {w_hi}): got {:?}, want {:?}\n{sql}",
                row[i + 1],
                want[i]
            );
        }
    }
}

#[tokio::test]
async fn aggregates_equal_the_model_through_overwrites_deletes_and_flushes() {
    let db = open();
    db.exec("create timeseries root.sg.d.s with datatype=DOUBLE")
        .await;
    db.exec("create timeseries root.sg.d.i with datatype=INT64")
        .await;
    let mut models: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut rng = Lcg(0x5eed);
    const SPAN: i64 = 20_000;
    for round in 0..14 {
        for series in ["s", "i"] {
            let model = models.entry(series).or_default();
            // Even rounds append a block of their own time range (files that do not overlap, so
            // their summaries are used); odd rounds overwrite points anywhere.
            let times: Vec<i64> = if round % 2 == 0 {
                let base = i64::from(round) / 2 * 1400;
                (0..300)
                    .map(|k| base + k * 4 + rng.next(3) as i64)
                    .collect()
            } else {
                (0..120).map(|_| rng.next(SPAN as u64) as i64).collect()
            };
            let mut values = Vec::new();
            for t in times {
                let raw = rng.next(4001) as i64 - 2000;
                let v = if series == "s" {
                    raw as f64 / 8.0
                } else {
                    raw as f64
                };
                model.insert(t, v);
                values.push(if series == "s" {
                    format!("({t}, {v:?})")
                } else {
                    format!("({t}, {raw})")
                });
            }
            db.exec(&format!(
                "insert into root.sg.d(time, {series}) values {}",
                values.join(", ")
            ))
            .await;
            if rng.next(4) == 0 {
                let a = rng.next(SPAN as u64) as i64;
                let b = a + rng.next(900) as i64;
                db.exec(&format!(
                    "delete from root.sg.d.{series} where time >= {a} and time <= {b}"
                ))
                .await;
                let doomed: Vec<i64> = model.range(a..=b).map(|(t, _)| *t).collect();
                for t in doomed {
                    model.remove(&t);
                }
            }
        }
        if rng.next(3) != 0 {
            db.engine.storage().flush().await.unwrap();
        }
        let context = format!("round {round}");
        for series in ["s", "i"] {
            let model = &models[series];
            check(&db, series, model, (0, SPAN), None, None, &context).await;
            let lo = rng.next(SPAN as u64) as i64;
            check(&db, series, model, (lo, lo + 3000), None, None, &context).await;
            check(
                &db,
                series,
                model,
                (0, SPAN),
                Some((1500, 1500)),
                None,
                &context,
            )
            .await;
            check(
                &db,
                series,
                model,
                (-700, SPAN),
                Some((1500, 700)),
                None,
                &context,
            )
            .await;
        }
        // SELECT LAST: the newest point, from a file's summary where one answers.
        for (name, model) in [("s", &models["s"]), ("i", &models["i"])] {
            let rows = db.rows(&format!("select last {name} from root.sg.d")).await;
            match model.last_key_value() {
                None => assert!(rows.is_empty(), "{context}: last {name}: {rows:?}"),
                Some((t, v)) => {
                    assert_eq!(rows.len(), 1, "{context}: last {name}: {rows:?}");
                    assert_eq!(rows[0][0], t.to_string(), "{context}: last {name}");
                    assert_eq!(parse(&rows[0][2]), Some(*v), "{context}: last {name}");
                }
            }
        }
        // Predicates over the row of both series (a series without a point at a time is null):
        // typed comparisons, AND/OR of them, and an arithmetic one evaluated row by row.
        let (s, i) = (&models["s"], &models["i"]);
        let filters: [(&str, &dyn Fn(i64) -> bool); 4] = [
            ("i > 500", &|t| i.get(&t).is_some_and(|v| *v > 500.0)),
            ("s <= -10.5 and i < 0", &|t| {
                s.get(&t).is_some_and(|v| *v <= -10.5) && i.get(&t).is_some_and(|v| *v < 0.0)
            }),
            ("s > 200 or i >= 1900", &|t| {
                s.get(&t).is_some_and(|v| *v > 200.0) || i.get(&t).is_some_and(|v| *v >= 1900.0)
            }),
            ("s * 2 < i", &|t| match (s.get(&t), i.get(&t)) {
                (Some(a), Some(b)) => a * 2.0 < *b,
                _ => false,
            }),
        ];
        for (filter, holds) in filters {
            for (name, model) in [("s", s), ("i", i)] {
                let kept: BTreeMap<i64, f64> = model
                    .iter()
                    .filter(|(t, _)| holds(**t))
                    .map(|(t, v)| (*t, *v))
                    .collect();
                let context = format!("{context}, where {filter}");
                let f = Some(filter);
                check(&db, name, &kept, (0, SPAN), None, f, &context).await;
                check(
                    &db,
                    name,
                    &kept,
                    (-700, SPAN),
                    Some((1500, 700)),
                    f,
                    &context,
                )
                .await;
            }
        }
    }
}

/// COUNT_IF's columns are named as IoTDB names them, and a predicate whose paths match several series
/// expands to one column per choice of series (the first path varying slowest).
#[tokio::test]
async fn count_if_columns_are_named_and_expanded_as_iotdb_does() {
    let db = open();
    db.exec("insert into root.db.d1(time, s1, s2) values (1, 0, 0), (2, 0, 0), (3, 0, 1)")
        .await;
    db.exec("insert into root.db.d2(time, s1, s2) values (1, 0, 0), (2, 1, 0), (3, 0, 0)")
        .await;
    let names = |output: Output| match output {
        Output::Stream(s) => s.names,
        _ => panic!("not a stream"),
    };
    let one = db
        .exec("select count_if(s1=0 & s2=0, 3), count_if(s1 = 0 or not s2 = 1, keep >= 2, 'ignoreNull'='false') from root.db.d1")
        .await;
    assert_eq!(
        names(one),
        [
            "count_if(root.db.d1.s1 = 0 & root.db.d1.s2 = 0, 3)",
            "count_if(root.db.d1.s1 = 0 | !(root.db.d1.s2 = 1), keep >= 2, \"ignoreNull\"=\"false\")",
        ]
    );
    let sql = "select count_if(s1 = 0 & s2 = 0, 2) from root.db.*";
    assert_eq!(
        names(db.exec(sql).await),
        [
            "count_if(root.db.d1.s1 = 0 & root.db.d1.s2 = 0, 2)",
            "count_if(root.db.d1.s1 = 0 & root.db.d2.s2 = 0, 2)",
            "count_if(root.db.d2.s1 = 0 & root.db.d1.s2 = 0, 2)",
            "count_if(root.db.d2.s1 = 0 & root.db.d2.s2 = 0, 2)",
        ]
    );
    // Runs of at least two rows: d1 & d1 holds at 1, 2 (not 3); d1 & d2 at 1, 2, 3; d2 & d1 only at
    // 1; d2 & d2 at 1 and 3, which row 2 separates.
    assert_eq!(db.rows(sql).await, [["0", "1", "1", "0", "0"]]);
}
