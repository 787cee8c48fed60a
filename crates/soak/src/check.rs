//! The checker: for every (series, time) that any operation touched or either side holds, the set of
//! states the point may acceptably be in, given what was acknowledged, what is unknown, and which
//! operations certainly carry a higher version than others; then each side's actual state is judged
//! against it, and the two sides against each other.
//!
//! The model. Every operation's version is a hybrid logical clock (wall-clock milliseconds) taken on
//! its origin between its issue and its acknowledgement — or, for an unknown one, at any time after
//! its issue and before the death of the process it was sent to (never, while that process lives). The
//! highest version wins per point; a delete hides lower versions only. So an operation X is certainly
//! beaten by an acknowledged operation Y when Y was issued after the latest moment X can have taken its
//! version: at once on the same side (one clock, carried over restarts by recovery), and with a
//! `margin` across sides (two clocks on one machine that only skew by how far an HLC runs ahead).
//! The acceptable states are those of every operation not certainly beaten, plus "absent" when no
//! acknowledged operation covers the point. A point absent although an acknowledged write is not
//! certainly beaten is **lost**; a value no acceptable operation wrote is **wrong** (e.g. a resurrected
//! delete); a point that differs between A and B is **divergent**.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::compare::Value;
use crate::history::{secs, FaultRecord, History, Op, OpKind, Outcome, Side};
use crate::schema::{self, Schema, MEASUREMENTS};

/// What is wrong with one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// Absent although an acknowledged write is not certainly overwritten or deleted.
    Lost(Side),
    /// A value that no acceptable operation wrote.
    Wrong(Side),
    /// A and B hold different states.
    Divergent,
}

impl Problem {
    fn describe(self) -> String {
        match self {
            Problem::Lost(side) => format!("acknowledged points missing on {side}"),
            Problem::Wrong(side) => format!("unacceptable values on {side}"),
            Problem::Divergent => "A and B differ".to_string(),
        }
    }
}

/// One bad point.
#[derive(Debug, Clone)]
pub struct Finding {
    pub series: String,
    pub time: i64,
    pub problem: Problem,
    pub a: Option<Value>,
    pub b: Option<Value>,
    /// The operations that cover the point, by id.
    pub ops: Vec<u64>,
}

/// The checker's verdict.
#[derive(Debug, Default)]
pub struct Report {
    pub acknowledged_ops: u64,
    pub unknown_ops: u64,
    pub acknowledged_points: u64,
    pub points_checked: u64,
    pub lost: [u64; 2],
    pub wrong: [u64; 2],
    pub divergent: u64,
    /// Series a side holds that the soak never wrote.
    pub unexpected_series: Vec<String>,
    /// The first findings, in series and time order (bounded).
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.lost.iter().sum()
    }

    pub fn wrong(&self) -> u64 {
        self.wrong.iter().sum()
    }

    pub fn passed(&self) -> bool {
        self.lost() == 0
            && self.wrong() == 0
            && self.divergent == 0
            && self.unexpected_series.is_empty()
    }
}

/// Findings kept for the report; counting goes on past it.
const MAX_FINDINGS: usize = 20_000;

const NEVER: Duration = Duration::MAX;

/// The latest moment `op` can have taken its version.
fn latest_version_time(op: &Op, history: &History) -> Duration {
    match op.outcome {
        Outcome::Acked { at, .. } => at,
        Outcome::Unknown { .. } => history.death(op.side, op.process).unwrap_or(NEVER),
    }
}

/// Whether acknowledged `winner` certainly carries a higher version than `op`.
fn certainly_beats(winner: &Op, op: &Op, op_latest: Duration, margin: Duration) -> bool {
    if winner.id == op.id || winner.acked_at().is_none() || op_latest == NEVER {
        return false;
    }
    let needed = if winner.side == op.side {
        op_latest
    } else {
        op_latest.saturating_add(margin)
    };
    winner.issued > needed
}

/// Judges the two sides series by series, so only one series' points are in memory at a time.
pub struct Checker<'h> {
    schema: &'h Schema,
    ops: &'h [Op],
    margin: Duration,
    /// Per operation, the latest moment it can have taken its version.
    latest: Vec<Duration>,
    /// Per device, the indexes (into `ops`) of the operations that touch it.
    by_device: Vec<Vec<usize>>,
    report: Report,
}

impl<'h> Checker<'h> {
    pub fn new(schema: &'h Schema, history: &History, ops: &'h [Op], margin: Duration) -> Self {
        let mut report = Report::default();
        let mut by_device = vec![Vec::new(); schema.devices.len()];
        for (i, op) in ops.iter().enumerate() {
            match op.outcome {
                Outcome::Acked { .. } => {
                    report.acknowledged_ops += 1;
                    report.acknowledged_points += op.points(MEASUREMENTS.len());
                }
                Outcome::Unknown { .. } => report.unknown_ops += 1,
            }
            match &op.kind {
                OpKind::Write { parts, .. } => {
                    for part in parts {
                        if let Some(list) = by_device.get_mut(part.device) {
                            if list.last() != Some(&i) {
                                list.push(i);
                            }
                        }
                    }
                }
                OpKind::Delete { device, .. } => {
                    if let Some(list) = by_device.get_mut(*device) {
                        list.push(i);
                    }
                }
            }
        }
        Checker {
            schema,
            ops,
            margin,
            latest: ops
                .iter()
                .map(|o| latest_version_time(o, history))
                .collect(),
            by_device,
            report,
        }
    }

    /// A series a side holds that the soak never wrote.
    pub fn unexpected_series(&mut self, series: &str) {
        if !self.report.unexpected_series.iter().any(|s| s == series) {
            self.report.unexpected_series.push(series.to_string());
        }
    }

    /// Judges one series of the schema: `on_a` and `on_b` are its points on each side.
    pub fn check_series(
        &mut self,
        device: usize,
        measurement: usize,
        on_a: &BTreeMap<i64, Value>,
        on_b: &BTreeMap<i64, Value>,
    ) {
        let (ops, series) = (self.ops, self.schema.series(device, measurement));
        let mut writes: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        let mut deletes: Vec<(i64, i64, usize)> = Vec::new();
        for &i in self.by_device.get(device).into_iter().flatten() {
            match &ops[i].kind {
                OpKind::Write { parts, .. } => {
                    for part in parts.iter().filter(|p| p.device == device) {
                        for t in part.t0..part.t0 + part.rows {
                            writes.entry(t).or_default().push(i);
                        }
                    }
                }
                OpKind::Delete {
                    measurement: m,
                    from,
                    to,
                    ..
                } => {
                    if m.is_none_or(|m| m == measurement) {
                        deletes.push((*from, *to, i));
                    }
                }
            }
        }
        deletes.sort_unstable();
        let mut times: Vec<i64> = writes
            .keys()
            .chain(on_a.keys())
            .chain(on_b.keys())
            .copied()
            .collect();
        times.sort_unstable();
        times.dedup();
        let mut next_delete = 0;
        let mut active: Vec<(i64, i64, usize)> = Vec::new();
        for t in times {
            self.report.points_checked += 1;
            while next_delete < deletes.len() && deletes[next_delete].0 <= t {
                active.push(deletes[next_delete]);
                next_delete += 1;
            }
            active.retain(|(_, to, _)| *to >= t);
            let relevant: Vec<usize> = writes
                .get(&t)
                .into_iter()
                .flatten()
                .copied()
                .chain(active.iter().map(|(_, _, i)| *i))
                .collect();
            let mut acceptable: Vec<Option<Value>> = Vec::new();
            let mut any_acked = false;
            for &x in &relevant {
                let op = &ops[x];
                any_acked |= op.acked_at().is_some();
                let beaten = relevant
                    .iter()
                    .any(|&y| certainly_beats(&ops[y], op, self.latest[x], self.margin));
                if !beaten {
                    acceptable.push(match op.kind {
                        OpKind::Write { .. } => Some(schema::value(op.id, t, measurement)),
                        OpKind::Delete { .. } => None,
                    });
                }
            }
            if !any_acked {
                acceptable.push(None);
            }
            let (va, vb) = (on_a.get(&t), on_b.get(&t));
            let mut problems = Vec::new();
            for (side, observed) in [(Side::A, va), (Side::B, vb)] {
                let observed = observed.cloned();
                if !acceptable.contains(&observed) {
                    if observed.is_none() {
                        self.report.lost[side.index()] += 1;
                        problems.push(Problem::Lost(side));
                    } else {
                        self.report.wrong[side.index()] += 1;
                        problems.push(Problem::Wrong(side));
                    }
                }
            }
            if va != vb {
                self.report.divergent += 1;
                problems.push(Problem::Divergent);
            }
            for problem in problems {
                if self.report.findings.len() < MAX_FINDINGS {
                    self.report.findings.push(Finding {
                        series: series.clone(),
                        time: t,
                        problem,
                        a: va.cloned(),
                        b: vb.cloned(),
                        ops: relevant.iter().map(|&i| ops[i].id).collect(),
                    });
                }
            }
        }
    }

    pub fn finish(self) -> Report {
        self.report
    }
}

/// Checks two whole snapshots.
#[cfg(test)]
pub fn check(
    schema: &Schema,
    history: &History,
    ops: &[Op],
    a: &crate::cluster::Snapshot,
    b: &crate::cluster::Snapshot,
    margin: Duration,
) -> Report {
    let mut checker = Checker::new(schema, history, ops, margin);
    let all_series = schema.all_series();
    for snapshot in [a, b] {
        for name in snapshot.keys() {
            if !all_series.iter().any(|(_, _, s)| s == name) {
                checker.unexpected_series(name);
            }
        }
    }
    let empty = BTreeMap::new();
    for (device, measurement, series) in &all_series {
        checker.check_series(
            *device,
            *measurement,
            a.get(series).unwrap_or(&empty),
            b.get(series).unwrap_or(&empty),
        );
    }
    checker.finish()
}

/// A run of findings of one kind in one series at consecutive checked times.
#[derive(Debug)]
struct Range<'f> {
    first: &'f Finding,
    last: &'f Finding,
    count: usize,
    /// Every problem found over exactly this range (a lost point is usually divergent too).
    problems: Vec<Problem>,
}

fn ranges(findings: &[Finding]) -> Vec<Range<'_>> {
    let mut out: Vec<Range<'_>> = Vec::new();
    let mut by_kind: BTreeMap<(String, String), Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        by_kind
            .entry((f.series.clone(), format!("{:?}", f.problem)))
            .or_default()
            .push(f);
    }
    for list in by_kind.values() {
        for f in list {
            match out.last_mut() {
                Some(r)
                    if r.last.series == f.series
                        && r.last.problem == f.problem
                        && f.time - r.last.time <= 1 =>
                {
                    r.last = f;
                    r.count += 1;
                }
                _ => out.push(Range {
                    first: f,
                    last: f,
                    count: 1,
                    problems: vec![f.problem],
                }),
            }
        }
    }
    out.sort_by(|x, y| {
        (&x.first.series, x.first.time, x.last.time).cmp(&(
            &y.first.series,
            y.first.time,
            y.last.time,
        ))
    });
    // One range, one report: merge the problems of ranges that cover the same points.
    let mut merged: Vec<Range<'_>> = Vec::new();
    for range in out {
        match merged.last_mut() {
            Some(m)
                if m.first.series == range.first.series
                    && m.first.time == range.first.time
                    && m.last.time == range.last.time =>
            {
                m.problems.extend(range.problems);
            }
            _ => merged.push(range),
        }
    }
    for range in &mut merged {
        range.problems.sort();
    }
    merged
}

fn show(v: &Option<Value>) -> String {
    match v {
        Some(v) => format!("{v} (op {})", schema::writer_of(v).unwrap_or(0)),
        None => "nothing".to_string(),
    }
}

/// One operation, for a failure report.
pub fn describe_op(op: &Op) -> String {
    let what = match &op.kind {
        OpKind::Write { path, parts } => {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| format!("device #{} t={}..={}", p.device, p.t0, p.t0 + p.rows - 1))
                .collect();
            format!("{} {}", path.name(), parts.join(", "))
        }
        OpKind::Delete {
            device,
            measurement,
            from,
            to,
        } => format!(
            "DELETE device #{device} {} t={from}..={to}",
            measurement.map_or("*", |m| MEASUREMENTS[m].0)
        ),
    };
    let outcome = match &op.outcome {
        Outcome::Acked { at, seq } => format!("acknowledged at {} (ack #{seq})", secs(*at)),
        Outcome::Unknown { error } => format!("UNKNOWN: {error}"),
    };
    format!(
        "op {} on {} (writer {}, process {}): {what}; issued {}, {outcome}",
        op.id,
        op.side,
        op.writer,
        op.process,
        secs(op.issued)
    )
}

/// The faults nearest to `at` (distance 0 while one was in progress).
fn nearest_faults(faults: &[FaultRecord], at: Duration, n: usize) -> Vec<&FaultRecord> {
    let distance = |f: &FaultRecord| {
        if at < f.started {
            f.started - at
        } else if at > f.ended {
            at - f.ended
        } else {
            Duration::ZERO
        }
    };
    let mut sorted: Vec<&FaultRecord> = faults.iter().collect();
    sorted.sort_by_key(|f| distance(f));
    sorted.truncate(n);
    sorted.sort_by_key(|f| f.started);
    sorted
}

/// The failure report: the first differing ranges with the operations and faults nearest to them.
pub fn explain(
    report: &Report,
    schema: &Schema,
    ops: &[Op],
    faults: &[FaultRecord],
    max_ranges: usize,
) -> String {
    let mut out = String::new();
    for series in &report.unexpected_series {
        let _ = writeln!(
            out,
            "series {series}: present but never written by the soak"
        );
    }
    let by_id: BTreeMap<u64, &Op> = ops.iter().map(|o| (o.id, o)).collect();
    let all = ranges(&report.findings);
    let _ = writeln!(
        out,
        "{} bad ranges (first {} shown); devices: {}",
        all.len(),
        max_ranges.min(all.len()),
        schema
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| format!("#{i} {}", d.path))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for range in all.iter().take(max_ranges) {
        let (first, last) = (range.first, range.last);
        let _ = writeln!(
            out,
            "\n{} t={}..={} ({} points): {}; at t={}: A has {}, B has {}",
            first.series,
            first.time,
            last.time,
            range.count,
            range
                .problems
                .iter()
                .map(|p| p.describe())
                .collect::<Vec<_>>()
                .join("; "),
            first.time,
            show(&first.a),
            show(&first.b)
        );
        let mut anchor = None;
        for id in &first.ops {
            if let Some(op) = by_id.get(id) {
                let _ = writeln!(out, "  covering {}", describe_op(op));
                anchor = Some(op.acked_at().unwrap_or(op.issued));
            }
        }
        if first.ops.is_empty() {
            let _ = writeln!(out, "  no operation of the soak covers this point");
        }
        if let Some(at) = anchor {
            for f in nearest_faults(faults, at, 3) {
                let _ = writeln!(
                    out,
                    "  nearby fault {}: {} ({}–{})",
                    f.index,
                    f.description,
                    secs(f.started),
                    secs(f.ended)
                );
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::cluster::Snapshot;
    use crate::history::{Part, WritePath};

    fn write(
        id: u64,
        side: Side,
        device: usize,
        t0: i64,
        rows: i64,
        issued: u64,
        acked: Option<u64>,
    ) -> Op {
        Op {
            id,
            side,
            writer: 0,
            kind: OpKind::Write {
                path: WritePath::Tablet,
                parts: vec![Part { device, t0, rows }],
            },
            issued: Duration::from_millis(issued),
            process: 0,
            outcome: match acked {
                Some(at) => Outcome::Acked {
                    at: Duration::from_millis(at),
                    seq: id,
                },
                None => Outcome::Unknown {
                    error: "reset".into(),
                },
            },
        }
    }

    fn delete(
        id: u64,
        side: Side,
        device: usize,
        from: i64,
        to: i64,
        issued: u64,
        acked: u64,
    ) -> Op {
        Op {
            id,
            side,
            writer: 0,
            kind: OpKind::Delete {
                device,
                measurement: None,
                from,
                to,
            },
            issued: Duration::from_millis(issued),
            process: 0,
            outcome: Outcome::Acked {
                at: Duration::from_millis(acked),
                seq: id,
            },
        }
    }

    /// The snapshot holding exactly what `ops` (in order, each fully applied) leave behind.
    fn apply(schema: &Schema, ops: &[&Op]) -> Snapshot {
        let mut snap = Snapshot::new();
        for (_, _, s) in schema.all_series() {
            snap.insert(s, BTreeMap::new());
        }
        for op in ops {
            match &op.kind {
                OpKind::Write { parts, .. } => {
                    for p in parts {
                        for m in 0..MEASUREMENTS.len() {
                            let s = snap.get_mut(&schema.series(p.device, m)).unwrap();
                            for t in p.t0..p.t0 + p.rows {
                                s.insert(t, schema::value(op.id, t, m));
                            }
                        }
                    }
                }
                OpKind::Delete {
                    device, from, to, ..
                } => {
                    for m in 0..MEASUREMENTS.len() {
                        let s = snap.get_mut(&schema.series(*device, m)).unwrap();
                        s.retain(|t, _| t < from || t > to);
                    }
                }
            }
        }
        snap
    }

    const MARGIN: Duration = Duration::from_millis(100);

    #[test]
    fn a_missing_acknowledged_batch_is_lost_and_divergent() {
        let schema = Schema::new(1);
        let history = History::new();
        let w1 = write(1, Side::A, 0, 100, 10, 0, Some(5));
        let w2 = write(2, Side::A, 0, 110, 10, 6, Some(9));
        let full = apply(&schema, &[&w1, &w2]);
        let missing = apply(&schema, &[&w1]);
        let ops = vec![w1.clone(), w2.clone()];
        let ok = check(&schema, &history, &ops, &full, &full, MARGIN);
        assert!(ok.passed(), "{ok:?}");
        assert_eq!(ok.acknowledged_points, 60);
        let bad = check(&schema, &history, &ops, &missing, &full, MARGIN);
        assert_eq!(bad.lost, [30, 0]);
        assert_eq!(bad.divergent, 30);
        let text = explain(&bad, &schema, &ops, &[], 5);
        assert!(
            text.contains(
                "root.soak.a.w0d0.d t=110..=119 (10 points): acknowledged points missing on A; A and B differ"
            ),
            "{text}"
        );
        assert!(text.contains("covering op 2 on A"), "{text}");
    }

    #[test]
    fn unknown_writes_may_be_absent_and_deletes_acknowledged_before_a_write_cannot_hide_it() {
        let schema = Schema::new(1);
        let history = History::new();
        let unknown = write(1, Side::A, 0, 100, 5, 0, None);
        let w = write(2, Side::A, 0, 200, 5, 10, Some(20));
        // Issued well after the write was acknowledged, on the other side: certainly newer.
        let del = delete(3, Side::B, 0, 200, 204, 200, 210);
        // Issued 830 ms after the delete was acknowledged, on the other side: certainly newer.
        let rewrite = write(4, Side::A, 0, 202, 1, 1040, Some(1050));
        let ops = vec![unknown.clone(), w.clone(), del.clone(), rewrite.clone()];
        let good = apply(&schema, &[&w, &del, &rewrite]);
        assert!(check(&schema, &history, &ops, &good, &good, MARGIN).passed());
        // The unknown write applied is fine too.
        let with_unknown = apply(&schema, &[&unknown, &w, &del, &rewrite]);
        assert!(check(
            &schema,
            &history,
            &ops,
            &with_unknown,
            &with_unknown,
            MARGIN
        )
        .passed());
        // The delete winning over the later write is a loss of the rewrite (3 measurements).
        let hidden = apply(&schema, &[&w, &rewrite, &del]);
        let r = check(&schema, &history, &ops, &hidden, &hidden, MARGIN);
        assert_eq!(r.lost, [3, 3]);
        // A value the delete certainly removed coming back is wrong.
        let resurrected = apply(&schema, &[&w, &rewrite]);
        let r = check(&schema, &history, &ops, &resurrected, &resurrected, MARGIN);
        assert_eq!(r.wrong, [12, 12]);
    }

    #[test]
    fn concurrent_conflicting_writes_accept_either_value() {
        let schema = Schema::new(1);
        let history = History::new();
        let shared = schema.devices.len() - 1;
        let wa = write(1, Side::A, shared, 100, 3, 0, Some(10));
        let wb = write(2, Side::B, shared, 100, 3, 5, Some(12));
        let ops = vec![wa.clone(), wb.clone()];
        for order in [[&wa, &wb], [&wb, &wa]] {
            let snap = apply(&schema, &order);
            assert!(check(&schema, &history, &ops, &snap, &snap, MARGIN).passed());
        }
    }
}
