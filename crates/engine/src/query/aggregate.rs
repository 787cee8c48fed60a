//! Aggregates with and without `GROUP BY ([start, end), interval[, step])`, streamed a page of windows
//! at a time: window `k` is computed from its index (checked 128-bit arithmetic, so no range can wrap),
//! a page reads only the data of its windows, and empty windows cost a row each and nothing more. The
//! accumulators of a page are charged to the query's budget; a page takes fewer windows when many
//! series share it, and a query whose single window does not fit fails with the budget's error.

use std::ops::Range;

use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::stats::{extreme_beats, fold_for, merge_moments, FoldNeeds};
use duet_storage::{SeriesStats, StatValue};

use super::columnar;
use super::count_if::{merged_count, CountIfSpec, Runs};
use super::expr::{cell, compare, Bound, Val};
use super::mode::ModeCounts;
use super::page::{row_bytes, Page, PageBuilder, PageSource};
use super::parallel;
use super::scan::{AlignedRows, ScanBudget};
use super::windows::Windows;
use super::EngineRef;
use crate::limits::{QueryControlRef, Reservation};
use crate::schema::SeriesInfo;
use crate::{EngineError, Result};

/// Bytes of one accumulator, without the text it holds.
const ACC_BYTES: usize = std::mem::size_of::<Acc>();

/// Aggregation functions Duet computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFn {
    Count,
    Sum,
    Avg,
    MinValue,
    MaxValue,
    FirstValue,
    LastValue,
    MinTime,
    MaxTime,
    Extreme,
    /// `STDDEV` (IoTDB's alias of `STDDEV_SAMP`).
    Stddev,
    StddevSamp,
    StddevPop,
    /// `VARIANCE` (IoTDB's alias of `VAR_SAMP`).
    Variance,
    VarSamp,
    VarPop,
    /// `max_time - min_time`.
    TimeDuration,
    /// The most frequent value, the earliest on a tie (`mode.rs`).
    Mode,
    /// Runs of rows where a predicate holds (`count_if.rs`); only from `SelectItem::CountIf`.
    CountIf,
}

impl AggFn {
    /// What the function reads of a scanned slice beyond its count, first and last point.
    pub(crate) fn fold_needs(self) -> FoldNeeds {
        let mut needs = FoldNeeds::NONE;
        match self {
            AggFn::Sum | AggFn::Avg => needs.sum = true,
            AggFn::MinValue | AggFn::MaxValue | AggFn::Extreme => needs.extremes = true,
            AggFn::Stddev
            | AggFn::StddevSamp
            | AggFn::StddevPop
            | AggFn::Variance
            | AggFn::VarSamp
            | AggFn::VarPop => needs.moments = true,
            AggFn::Count
            | AggFn::FirstValue
            | AggFn::LastValue
            | AggFn::MinTime
            | AggFn::MaxTime
            | AggFn::TimeDuration
            | AggFn::Mode
            | AggFn::CountIf => {}
        }
        needs
    }

    pub(crate) fn parse(name: &str) -> Result<AggFn> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "COUNT" => AggFn::Count,
            "SUM" => AggFn::Sum,
            "AVG" => AggFn::Avg,
            "MIN_VALUE" => AggFn::MinValue,
            "MAX_VALUE" => AggFn::MaxValue,
            "FIRST_VALUE" => AggFn::FirstValue,
            "LAST_VALUE" => AggFn::LastValue,
            "MIN_TIME" => AggFn::MinTime,
            "MAX_TIME" => AggFn::MaxTime,
            "EXTREME" => AggFn::Extreme,
            "STDDEV" => AggFn::Stddev,
            "STDDEV_SAMP" => AggFn::StddevSamp,
            "STDDEV_POP" => AggFn::StddevPop,
            "VARIANCE" => AggFn::Variance,
            "VAR_SAMP" => AggFn::VarSamp,
            "VAR_POP" => AggFn::VarPop,
            "TIME_DURATION" => AggFn::TimeDuration,
            "MODE" => AggFn::Mode,
            "COUNT_IF" => {
                return Err(EngineError::Unsupported(
                    "COUNT_IF takes a predicate and a keep condition, as in count_if(s1 = 0 & s2 = 0, 3): write it in a SQL query".into(),
                ))
            }
            other => {
                return Err(EngineError::Unsupported(format!(
                    "aggregation function {other} is not supported"
                )))
            }
        })
    }

    pub(crate) fn output_type(self, input: DataType) -> Result<DataType> {
        let numeric = matches!(
            input,
            DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double
        );
        Ok(match self {
            AggFn::Count
            | AggFn::MinTime
            | AggFn::MaxTime
            | AggFn::TimeDuration
            | AggFn::CountIf => DataType::Int64,
            AggFn::Sum
            | AggFn::Avg
            | AggFn::Stddev
            | AggFn::StddevSamp
            | AggFn::StddevPop
            | AggFn::Variance
            | AggFn::VarSamp
            | AggFn::VarPop
                if numeric =>
            {
                DataType::Double
            }
            AggFn::Extreme if numeric => input,
            AggFn::MinValue | AggFn::MaxValue
                if input != DataType::Blob && input != DataType::Boolean =>
            {
                input
            }
            AggFn::FirstValue | AggFn::LastValue | AggFn::Mode => input,
            _ => {
                return Err(EngineError::Semantic(format!(
                    "Aggregate functions [{}] only support numeric data types",
                    self.name()
                )))
            }
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::MinValue => "min_value",
            AggFn::MaxValue => "max_value",
            AggFn::FirstValue => "first_value",
            AggFn::LastValue => "last_value",
            AggFn::MinTime => "min_time",
            AggFn::MaxTime => "max_time",
            AggFn::Extreme => "extreme",
            AggFn::Stddev => "stddev",
            AggFn::StddevSamp => "stddev_samp",
            AggFn::StddevPop => "stddev_pop",
            AggFn::Variance => "variance",
            AggFn::VarSamp => "var_samp",
            AggFn::VarPop => "var_pop",
            AggFn::TimeDuration => "time_duration",
            AggFn::Mode => "mode",
            AggFn::CountIf => "count_if",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    count: i64,
    sum: f64,
    first: Option<(i64, Val)>,
    last: Option<(i64, Val)>,
    min: Option<Val>,
    max: Option<Val>,
    extreme: Option<Val>,
    /// Welford's running mean and sum of squared deviations of the numeric values (IoTDB's
    /// `VarianceAccumulator`), over `count` values.
    mean: f64,
    m2: f64,
    /// MODE's counts, kept only for a series some MODE column aggregates.
    mode: Option<Box<ModeCounts>>,
    /// What the functions reading this accumulator need of a scanned slice beyond its count, first
    /// and last point (everything unless the query says less): the fold skips the rest, whose
    /// fields then hold nothing meaningful.
    needs: FoldNeeds,
}

impl Acc {
    /// An accumulator that also counts values for MODE (queries set `mode` where a MODE column
    /// reads the series).
    #[cfg(test)]
    pub(crate) fn counting_values() -> Acc {
        Acc {
            mode: Some(Box::default()),
            ..Acc::default()
        }
    }

    /// Adds what `f` needs to what the accumulator computes of a scanned slice.
    pub(crate) fn also_for(&mut self, f: AggFn) {
        self.needs = self.needs.union(f.fold_needs());
    }

    /// An accumulator that computes of scanned slices only their count, first and last point,
    /// until [`Acc::also_for`] asks for more.
    pub(crate) fn for_nothing() -> Acc {
        Acc {
            needs: FoldNeeds::NONE,
            ..Acc::default()
        }
    }

    /// Whether MODE's counts are kept: file summaries cannot stand in for the points then.
    pub(crate) fn counts_values(&self) -> bool {
        self.mode.is_some()
    }

    /// Bytes of text and MODE counts the accumulator holds beyond its own size.
    pub(crate) fn heap(&self) -> usize {
        let of = |v: &Val| match v {
            Val::Str(s) => s.len(),
            Val::Bytes(b) => b.len(),
            _ => 0,
        };
        self.first.as_ref().map_or(0, |(_, v)| of(v))
            + self.last.as_ref().map_or(0, |(_, v)| of(v))
            + self.min.as_ref().map_or(0, of)
            + self.max.as_ref().map_or(0, of)
            + self.extreme.as_ref().map_or(0, of)
            + self.mode.as_ref().map_or(0, |m| m.heap())
    }

    pub(crate) fn add(&mut self, time: i64, v: &Val) {
        if *v == Val::Null {
            return;
        }
        if let Some(mode) = &mut self.mode {
            mode.add(time, v);
        }
        self.count += 1;
        if let Some(f) = v.as_f64() {
            self.sum += f;
            let delta = f - self.mean;
            self.mean += delta / self.count as f64;
            self.m2 += delta * (f - self.mean);
            let better = match &self.extreme {
                None => true,
                Some(e) => e.as_f64().is_some_and(|x| extreme_beats(f, x)),
            };
            if better {
                self.extreme = Some(v.clone());
            }
        }
        if self.first.as_ref().is_none_or(|(t, _)| time < *t) {
            self.first = Some((time, v.clone()));
        }
        if self.last.as_ref().is_none_or(|(t, _)| time > *t) {
            self.last = Some((time, v.clone()));
        }
        if self
            .min
            .as_ref()
            .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_lt()))
        {
            self.min = Some(v.clone());
        }
        if self
            .max
            .as_ref()
            .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_gt()))
        {
            self.max = Some(v.clone());
        }
    }

    /// Adds the points `range` of a time-sorted chunk, all later than what the accumulator holds:
    /// numbers and booleans in one typed pass (the same rules as [`Acc::add`] point by point, so the
    /// result is the same but for the rounding of the sum), text point by point.
    pub(crate) fn add_slice(&mut self, times: &[i64], column: &Column, range: Range<usize>) {
        let (Some(&first_t), Some(&last_t)) = (
            times.get(range.start),
            range.end.checked_sub(1).and_then(|i| times.get(i)),
        ) else {
            return;
        };
        let (lo, n) = (range.start, range.len());
        let needs = self.needs;
        let folded = match &column.values {
            ColumnValues::Boolean(v) => v
                .get(range.clone())
                .and_then(|v| fold_for(v, None::<fn(bool) -> f64>, needs)),
            ColumnValues::Int32(v) => v
                .get(range.clone())
                .and_then(|v| fold_for(v, Some(&|x: i32| f64::from(x)), needs)),
            ColumnValues::Int64(v) => v
                .get(range.clone())
                .and_then(|v| fold_for(v, Some(&|x: i64| x as f64), needs)),
            ColumnValues::Float(v) => v
                .get(range.clone())
                .and_then(|v| fold_for(v, Some(&|x: f32| f64::from(x)), needs)),
            ColumnValues::Double(v) => v
                .get(range.clone())
                .and_then(|v| fold_for(v, Some(&|x| x), needs)),
            ColumnValues::Binary(_) => None,
        };
        let (Some(f), None) = (folded, &column.nulls) else {
            for row in range {
                if let Some(t) = times.get(row) {
                    self.add(*t, &cell(column, row));
                }
            }
            return;
        };
        let part = Acc {
            count: i64::try_from(n).unwrap_or(i64::MAX),
            sum: f.sum,
            first: Some((first_t, cell(column, lo))),
            last: Some((last_t, cell(column, lo + n - 1))),
            min: needs.extremes.then(|| cell(column, lo + f.min)),
            max: needs.extremes.then(|| cell(column, lo + f.max)),
            extreme: f.extreme.map(|i| cell(column, lo + i)),
            mean: f.mean,
            m2: f.m2,
            mode: None,
            needs,
        };
        if let Some(mode) = &mut self.mode {
            mode.add_column(times, column, range);
        }
        self.merge(&part);
    }

    /// Adds a data file's summary of a series, all of whose points are later than what the
    /// accumulator holds.
    pub(crate) fn add_summary(&mut self, stats: &SeriesStats) {
        let val = |v: StatValue| match v {
            StatValue::Bool(b) => Val::Bool(b),
            StatValue::Int(i) => Val::Int(i),
            StatValue::Float(f) => Val::Float(f),
        };
        let numeric = !matches!(stats.first, StatValue::Bool(_));
        let part = Acc {
            count: i64::try_from(stats.count).unwrap_or(i64::MAX),
            sum: if numeric { stats.sum } else { 0.0 },
            first: Some((stats.first_time, val(stats.first))),
            last: Some((stats.last_time, val(stats.last))),
            min: Some(val(stats.min)),
            max: Some(val(stats.max)),
            extreme: numeric.then(|| val(stats.extreme)),
            mean: stats.moments.filter(|_| numeric).map_or(0.0, |m| m.0),
            m2: stats.moments.filter(|_| numeric).map_or(0.0, |m| m.1),
            mode: None,
            needs: self.needs,
        };
        self.merge(&part);
    }

    /// Takes in another series' accumulator of the same window (GROUP BY LEVEL): counts and sums add
    /// up (so AVG is the merged sum over the merged count), FIRST/LAST go by time (the earlier series on
    /// a tie), MIN/MAX/EXTREME by value.
    pub(crate) fn merge(&mut self, other: &Acc) {
        if let Some(counts) = &other.mode {
            self.mode.get_or_insert_with(Box::default).merge(counts);
        }
        self.merge_moments(other.count, other.mean, other.m2);
        self.count += other.count;
        self.sum += other.sum;
        if let Some((t, v)) = &other.first {
            if self.first.as_ref().is_none_or(|(mine, _)| t < mine) {
                self.first = Some((*t, v.clone()));
            }
        }
        if let Some((t, v)) = &other.last {
            if self.last.as_ref().is_none_or(|(mine, _)| t > mine) {
                self.last = Some((*t, v.clone()));
            }
        }
        if let Some(v) = &other.min {
            if self
                .min
                .as_ref()
                .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_lt()))
            {
                self.min = Some(v.clone());
            }
        }
        if let Some(v) = &other.max {
            if self
                .max
                .as_ref()
                .is_none_or(|m| compare(v, m).is_some_and(|o| o.is_gt()))
            {
                self.max = Some(v.clone());
            }
        }
        if let Some(f) = other.extreme.as_ref().and_then(Val::as_f64) {
            let better = match &self.extreme {
                None => true,
                Some(e) => e.as_f64().is_some_and(|x| extreme_beats(f, x)),
            };
            if better {
                self.extreme = other.extreme.clone();
            }
        }
    }

    /// Takes in the moments of `count` other values (the parallel form of Welford's update, as
    /// IoTDB merges partial variances); call before adding `count` to the accumulator's.
    fn merge_moments(&mut self, count: i64, mean: f64, m2: f64) {
        let count_of = |n: i64| u64::try_from(n).unwrap_or(0);
        (self.mean, self.m2) = merge_moments(
            (count_of(self.count), (self.mean, self.m2)),
            (count_of(count), (mean, m2)),
        );
    }

    pub(crate) fn result(&self, f: AggFn) -> Val {
        let n = self.count as f64;
        match f {
            AggFn::Count => Val::Int(self.count),
            _ if self.count == 0 => Val::Null,
            AggFn::StddevPop => Val::Float((self.m2 / n).sqrt()),
            AggFn::VarPop => Val::Float(self.m2 / n),
            AggFn::Stddev | AggFn::StddevSamp | AggFn::Variance | AggFn::VarSamp
                if self.count < 2 =>
            {
                Val::Null
            }
            AggFn::Stddev | AggFn::StddevSamp => Val::Float((self.m2 / (n - 1.0)).sqrt()),
            AggFn::Variance | AggFn::VarSamp => Val::Float(self.m2 / (n - 1.0)),
            AggFn::TimeDuration => match (&self.first, &self.last) {
                (Some((a, _)), Some((b, _))) => Val::Int(b.saturating_sub(*a)),
                _ => Val::Null,
            },
            AggFn::Sum => Val::Float(self.sum),
            AggFn::Avg => Val::Float(self.sum / self.count as f64),
            AggFn::MinValue => self.min.clone().unwrap_or(Val::Null),
            AggFn::MaxValue => self.max.clone().unwrap_or(Val::Null),
            AggFn::FirstValue => self
                .first
                .as_ref()
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            AggFn::LastValue => self
                .last
                .as_ref()
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            AggFn::MinTime => self
                .first
                .as_ref()
                .map(|(t, _)| Val::Int(*t))
                .unwrap_or(Val::Null),
            AggFn::MaxTime => self
                .last
                .as_ref()
                .map(|(t, _)| Val::Int(*t))
                .unwrap_or(Val::Null),
            AggFn::Extreme => self.extreme.clone().unwrap_or(Val::Null),
            AggFn::Mode => self.mode.as_ref().map_or(Val::Null, |m| m.result()),
            // Computed from its runs, never from one series' accumulator.
            AggFn::CountIf => Val::Null,
        }
    }
}

/// The budget charge of a page's accumulators: their fixed size and what text values and MODE
/// counts add to it as points come in.
pub(crate) struct StateMemory {
    held: Reservation,
    base: usize,
    extra: usize,
}

impl StateMemory {
    /// A charge of `base` bytes (the accumulators' fixed size) that grows as they do.
    pub(crate) fn new(control: &QueryControlRef, base: usize) -> Result<StateMemory> {
        Ok(StateMemory {
            held: control.reserve(base, "aggregation state")?,
            base,
            extra: 0,
        })
    }

    /// Accounts for an accumulator whose heap went from `before` to `after` bytes; fails when the
    /// query's budget cannot take the growth.
    pub(crate) fn track(&mut self, before: usize, after: usize) -> Result<()> {
        if before == after {
            return Ok(());
        }
        self.extra = (self.extra + after).saturating_sub(before);
        self.held
            .resize(self.base.saturating_add(self.extra), "aggregation state")
    }
}

/// One block of aggregate rows: a whole query, or one device of ALIGN BY DEVICE.
pub(crate) struct AggPart {
    /// The Device column's value (ALIGN BY DEVICE).
    pub(crate) device: Option<String>,
    /// The series read: the first `n_outputs` are aggregated, the rest only feed the predicate.
    pub(crate) series: Vec<SeriesInfo>,
    pub(crate) n_outputs: usize,
    pub(crate) predicate: Option<Bound>,
    /// Per value column: what it aggregates, or `None` for a measurement the device lacks (a null).
    pub(crate) columns: Vec<Option<AggColumn>>,
}

/// One aggregate column: a function of one series, or (GROUP BY LEVEL) of several merged.
#[derive(Debug, Clone)]
pub(crate) struct AggColumn {
    /// Indices into the part's `series`.
    pub(crate) series: Vec<usize>,
    pub(crate) function: AggFn,
    /// COUNT_IF's predicate and keep condition bound to each choice of series the column counts
    /// (with `function` `CountIf`; several under GROUP BY LEVEL, whose counts add up).
    pub(crate) count_if: Vec<CountIfSpec>,
}

impl AggColumn {
    /// The column's value in a window whose per-series accumulators are `accs`.
    fn result(&self, accs: &[Acc]) -> Val {
        match self.series.as_slice() {
            [one] => accs
                .get(*one)
                .map_or(Val::Null, |a| a.result(self.function)),
            many => {
                let mut merged = Acc::default();
                for s in many {
                    if let Some(a) = accs.get(*s) {
                        merged.merge(a);
                    }
                }
                merged.result(self.function)
            }
        }
    }
}

/// Produces the parts of an aggregate query in order, building each only when it is reached.
pub(crate) trait AggParts: Send + Sync {
    fn next_part(&mut self) -> Result<Option<AggPart>>;
}

impl AggParts for Option<AggPart> {
    fn next_part(&mut self) -> Result<Option<AggPart>> {
        Ok(self.take())
    }
}

/// Aggregate rows: for each part, one row per window, in time order or reversed, OFFSET and LIMIT
/// applied across parts.
pub(crate) struct AggSource {
    pub(crate) engine: EngineRef,
    pub(crate) control: QueryControlRef,
    pub(crate) windows: Windows,
    /// The WHERE clause's time range.
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    pub(crate) descending: bool,
    pub(crate) parts: Box<dyn AggParts>,
    /// Output columns of a page (Device first in ALIGN BY DEVICE).
    pub(crate) types: Vec<DataType>,
    pub(crate) skip: u64,
    pub(crate) limit: Option<u64>,
    current: Option<AggPart>,
    /// The next window of the current part, as a position in output order.
    pos: u64,
    finished: bool,
}

impl AggSource {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: EngineRef,
        control: QueryControlRef,
        windows: Windows,
        (lo, hi): (i64, i64),
        descending: bool,
        parts: Box<dyn AggParts>,
        types: Vec<DataType>,
        (skip, limit): (u64, Option<u64>),
    ) -> AggSource {
        AggSource {
            engine,
            control,
            windows,
            lo,
            hi,
            descending,
            parts,
            types,
            skip,
            limit,
            current: None,
            pos: 0,
            finished: false,
        }
    }

    /// Makes sure a part with windows left is current; `false` at the end.
    fn advance(&mut self) -> Result<bool> {
        let len = self.windows.len();
        loop {
            if self.finished {
                return Ok(false);
            }
            if self.limit == Some(0) {
                self.finished = true;
                self.current = None;
                return Ok(false);
            }
            if self.current.is_some() {
                if self.pos < len {
                    return Ok(true);
                }
                self.current = None;
            }
            self.control.check()?;
            match self.parts.next_part()? {
                None => {
                    self.finished = true;
                    return Ok(false);
                }
                Some(part) => {
                    if self.skip >= len {
                        self.skip -= len;
                        continue;
                    }
                    self.pos = self.skip;
                    self.skip = 0;
                    self.current = Some(part);
                }
            }
        }
    }

    /// Rows of output positions `[pos, pos + n)` of `part`, in output order.
    fn compute(&self, part: &AggPart, pos: u64, n: u64) -> Result<Vec<(i64, Vec<Val>)>> {
        let len = self.windows.len();
        let (first_k, past_k) = if self.descending {
            (len - pos - n, len - pos)
        } else {
            (pos, pos + n)
        };
        let wins: Vec<(i64, i64, i64)> = (first_k..past_k).map(|k| self.windows.get(k)).collect();
        let n_acc = part.n_outputs;
        let base = wins.len().saturating_mul(n_acc).saturating_mul(ACC_BYTES);
        let mut state = StateMemory::new(&self.control, base)?;
        // The charges of accumulators folded by parallel scans, alive as long as `accs`.
        let mut scanned_state: Vec<StateMemory> = Vec::new();
        // Each accumulator computes of scanned slices what its columns' functions read, and keeps
        // MODE's counts only for the series a MODE column reads.
        let mut fresh = vec![Acc::for_nothing(); n_acc];
        for column in part.columns.iter().flatten() {
            for s in &column.series {
                if let Some(acc) = fresh.get_mut(*s) {
                    if column.function == AggFn::Mode {
                        acc.mode.get_or_insert_with(Box::default);
                    }
                    acc.also_for(column.function);
                }
            }
        }
        let mut accs: Vec<Vec<Acc>> = vec![fresh; wins.len()];
        let (wlo, whi) = match (wins.first(), wins.last()) {
            (Some(f), Some(l)) => (f.1.max(self.lo), l.2.min(self.hi)),
            _ => (self.lo, self.hi),
        };
        // Without a predicate each series is aggregated on its own, from file summaries and
        // chunk slices; text is left to the row path, which accounts for its size as it goes.
        let text_output = part
            .series
            .iter()
            .take(n_acc)
            .any(|s| matches!(s.data_type.physical(), DataType::Text));
        // COUNT_IF reads rows of several series: the row path.
        let count_ifs: Vec<&CountIfSpec> = part
            .columns
            .iter()
            .flatten()
            .flat_map(|c| &c.count_if)
            .collect();
        let mut runs: Vec<Vec<Runs>> = vec![vec![Runs::default(); count_ifs.len()]; wins.len()];
        let row_path = text_output || !count_ifs.is_empty();
        let columnar = part.predicate.is_none() && part.series.len() == n_acc && !row_path;
        // Several series folded on their own may be scanned at once.
        let scan_workers = if columnar {
            parallel::workers(&self.control, &part.series)
        } else {
            1
        };
        if let (Some(predicate), false, true) = (&part.predicate, row_path, wlo <= whi && n_acc > 0)
        {
            columnar::aggregate_filtered(
                &self.engine,
                &self.control,
                &part.series,
                n_acc,
                predicate,
                (wlo, whi),
                &wins,
                &mut accs,
                &mut state,
            )?;
        } else if wlo <= whi && n_acc > 0 && columnar && scan_workers > 1 {
            scanned_state = parallel::aggregate_series(
                &self.engine,
                &self.control,
                &part.series,
                (wlo, whi),
                &wins,
                &mut accs,
                (scan_workers, parallel::TASK_POINTS),
            )?;
        } else if wlo <= whi && n_acc > 0 && columnar {
            for (i, series) in part.series.iter().enumerate() {
                columnar::aggregate_series(
                    &self.engine,
                    &self.control,
                    series,
                    (wlo, whi),
                    &wins,
                    &mut accs,
                    i,
                    &mut state,
                )?;
            }
        } else if wlo <= whi && n_acc > 0 {
            let budget = ScanBudget::new(&self.control, part.series.len());
            let mut rows = AlignedRows::new(
                &part.series,
                n_acc,
                wlo,
                whi,
                false,
                part.predicate.clone(),
                &budget,
            )?;
            let track = part.series[..n_acc]
                .iter()
                .any(|s| matches!(s.data_type.physical(), DataType::Text))
                || accs
                    .first()
                    .is_some_and(|a| a.iter().any(Acc::counts_values));
            // The first window whose end is not before the current time; windows are ordered by
            // both start and end, so those containing a time are a run from here.
            let mut first = 0usize;
            while let Some((time, row)) = rows.next_row(&self.engine)? {
                while first < wins.len() && wins[first].2 < time {
                    first += 1;
                }
                let mut k = first;
                while k < wins.len() && wins[k].1 <= time {
                    if time <= wins[k].2 {
                        for (spec, r) in count_ifs.iter().zip(runs[k].iter_mut()) {
                            r.add(spec, time, &row);
                        }
                        for (acc, v) in accs[k].iter_mut().zip(&row) {
                            if track {
                                let before = acc.heap();
                                acc.add(time, v);
                                state.track(before, acc.heap())?;
                            } else {
                                acc.add(time, v);
                            }
                        }
                    }
                    k += 1;
                }
            }
        }
        let order: Box<dyn Iterator<Item = usize>> = if self.descending {
            Box::new((0..wins.len()).rev())
        } else {
            Box::new(0..wins.len())
        };
        let mut out = Vec::with_capacity(wins.len());
        for i in order {
            let mut cells = Vec::with_capacity(self.types.len());
            if let Some(d) = &part.device {
                cells.push(Val::Str(d.clone()));
            }
            // COUNT_IF's runs are in column order, each column's choices in turn.
            let mut window_runs = runs[i].iter();
            for c in &part.columns {
                cells.push(match c {
                    Some(column) if column.function == AggFn::CountIf => {
                        merged_count(column.count_if.iter().map(|spec| {
                            window_runs.next().copied().unwrap_or_default().result(spec)
                        }))
                    }
                    Some(column) => column.result(&accs[i]),
                    None => Val::Null,
                });
            }
            out.push((wins[i].0, cells));
        }
        // The accumulators are read: their charges end with them.
        drop(scanned_state);
        Ok(out)
    }
}

impl PageSource for AggSource {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while !page.is_full() && self.advance()? {
            let Some(part) = self.current.take() else {
                break;
            };
            let left = self.windows.len() - self.pos;
            let room = u64::try_from(max_rows.saturating_sub(page.rows())).unwrap_or(u64::MAX);
            // Accumulators may take half of what the budget has left (the page the other half).
            let per_window = part.n_outputs.max(1).saturating_mul(ACC_BYTES);
            let affordable =
                u64::try_from((self.control.available() / 2 / per_window).max(1)).unwrap_or(1);
            let n = left
                .min(room)
                .min(affordable)
                .min(self.limit.unwrap_or(u64::MAX))
                .max(1);
            let rows = self.compute(&part, self.pos, n);
            self.current = Some(part);
            let rows = rows?;
            let computed = rows.len();
            let mut taken = 0u64;
            for (label, cells) in rows {
                let bytes = row_bytes(&cells, page.types());
                if !page.fits(bytes) {
                    break;
                }
                page.push(label, &cells, bytes)?;
                taken += 1;
            }
            self.pos += taken;
            if let Some(l) = &mut self.limit {
                *l = l.saturating_sub(taken);
            }
            if usize::try_from(taken).unwrap_or(usize::MAX) < computed {
                break;
            }
        }
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        self.advance()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn merged_accumulators_follow_iotdb_level_rules() {
        let mut a = Acc::default();
        for (t, v) in [(5, 1.0), (6, -8.0)] {
            a.add(t, &Val::Float(v));
        }
        let mut b = Acc::default();
        for (t, v) in [(1, 4.0), (9, 8.0), (10, 2.0)] {
            b.add(t, &Val::Float(v));
        }
        let column = |function| AggColumn {
            series: vec![0, 1, 2],
            function,
            count_if: Vec::new(),
        };
        // Series 2 has no points in the window: it changes nothing.
        let accs = [a, b, Acc::default()];
        let value = |f| column(f).result(&accs);
        assert_eq!(value(AggFn::Count), Val::Int(5));
        assert_eq!(value(AggFn::Sum), Val::Float(7.0));
        // The average of all five points, not the average of the two averages.
        assert_eq!(value(AggFn::Avg), Val::Float(1.4));
        assert_eq!(value(AggFn::MinValue), Val::Float(-8.0));
        assert_eq!(value(AggFn::MaxValue), Val::Float(8.0));
        // |8| = |-8|: the positive one, as within one series.
        assert_eq!(value(AggFn::Extreme), Val::Float(8.0));
        assert_eq!(value(AggFn::FirstValue), Val::Float(4.0));
        assert_eq!(value(AggFn::LastValue), Val::Float(2.0));
        assert_eq!(value(AggFn::MinTime), Val::Int(1));
        assert_eq!(value(AggFn::MaxTime), Val::Int(10));
        let empty = [Acc::default(), Acc::default()];
        let none = AggColumn {
            series: vec![0, 1],
            function: AggFn::Avg,
            count_if: Vec::new(),
        };
        assert_eq!(none.result(&empty), Val::Null);
    }
}
