//! Per-series summaries of a data file — count, sum, extremes, first and last point — written into
//! the manifest by every flush and compaction, so an aggregate over flushed data reads no rows where
//! a file's points are the whole answer for their time span (see [`crate::Storage::summarize`]).
//!
//! **Invariant:** a summary folds the file's points in time order with the same rules a query applies
//! point by point (the first of equal minimums wins, and so on), so merging summaries in time order
//! gives exactly what a scan would, except for the rounding of `sum`.

use std::ops::Range;

use duet_proto::types::{ColumnValues, DataType};
use serde::{Deserialize, Serialize};

/// One value of a summary, in the widest form of its physical class. Only finite floats are stored
/// (the manifest is JSON, which has no NaN or infinity).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum StatValue {
    Bool(bool),
    /// INT32, DATE, INT64 and TIMESTAMP values.
    Int(i64),
    /// FLOAT and DOUBLE values (a FLOAT widens to f64 exactly).
    Float(f64),
}

/// The summary of one series' points in one file (or any time-ordered run of points).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SeriesStats {
    pub count: u64,
    /// Sum of the values as f64, added in time order; 0 for BOOLEAN.
    pub sum: f64,
    pub first_time: i64,
    pub first: StatValue,
    pub last_time: i64,
    pub last: StatValue,
    /// The first of the smallest values in time order.
    pub min: StatValue,
    /// The first of the largest values in time order.
    pub max: StatValue,
    /// The value of largest magnitude, the positive one on a tie (IoTDB's `EXTREME`); the first such
    /// in time order.
    pub extreme: StatValue,
    /// Welford's mean and sum of squared deviations of the values in time order (for `STDDEV` and
    /// `VARIANCE`; (0, 0) for BOOLEAN). Absent in manifests written before it existed: such a
    /// summary is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moments: Option<(f64, f64)>,
}

/// Whether `candidate` replaces `current` as the extreme value: a larger magnitude, or the same
/// magnitude and larger (positive beats negative). Never true for a NaN on either side.
pub fn extreme_beats(candidate: f64, current: f64) -> bool {
    candidate.abs() > current.abs() || (candidate.abs() == current.abs() && candidate > current)
}

/// What one pass over values in time order finds: the positions of the minimum, maximum and (numbers
/// only) extreme value, and (numbers only) their sum, mean and sum of squared deviations from it.
/// The rules are a query's, point by point: the first of equal values wins, and a NaN never
/// replaces anything (so one first stays).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Folded {
    pub min: usize,
    pub max: usize,
    pub extreme: Option<usize>,
    pub sum: f64,
    pub mean: f64,
    pub m2: f64,
}

/// Folds `values`; `number` converts a value to f64 for the numeric results (`None` for booleans,
/// which get no extreme, sum or moments). `None` for no values.
///
/// Scans of aggregates spend most of their time here, so the passes are written to vectorize
/// (measured in crates/ARCHITECTURE.md, "Query execution"): the extremes by lanes of running minima
/// and maxima, then their first positions; the extreme value is whichever of the minimum and maximum
/// wins [`extreme_beats`]; the sum in four lanes (its rounding differs from the point-by-point one in the
/// last bits); the
/// moments in two passes (the mean from the sum, then the squared deviations from it) rather than
/// Welford's update with its division per value.
pub fn fold<T: Copy + PartialOrd, F: Fn(T) -> f64>(
    values: &[T],
    number: Option<F>,
) -> Option<Folded> {
    fold_for(values, number, FoldNeeds::ALL)
}

/// Which of [`fold`]'s results a caller reads: the passes of the others are skipped (a query that
/// asks for `avg` and `max_value` needs neither the minimum's position nor the moments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldNeeds {
    /// The positions of the minimum, the maximum and the extreme value.
    pub extremes: bool,
    /// The sum.
    pub sum: bool,
    /// The mean and the sum of squared deviations (the sum with them).
    pub moments: bool,
}

/// Everything, for a caller that does not say.
impl Default for FoldNeeds {
    fn default() -> FoldNeeds {
        FoldNeeds::ALL
    }
}

impl FoldNeeds {
    pub const ALL: FoldNeeds = FoldNeeds {
        extremes: true,
        sum: true,
        moments: true,
    };
    pub const NONE: FoldNeeds = FoldNeeds {
        extremes: false,
        sum: false,
        moments: false,
    };

    /// What either needs.
    pub fn union(self, other: FoldNeeds) -> FoldNeeds {
        FoldNeeds {
            extremes: self.extremes || other.extremes,
            sum: self.sum || other.sum,
            moments: self.moments || other.moments,
        }
    }
}

/// [`fold`] computing only what `needs` asks for; the results not asked for are 0 (positions and
/// numbers alike) and must not be read.
pub fn fold_for<T: Copy + PartialOrd, F: Fn(T) -> f64>(
    values: &[T],
    number: Option<F>,
    needs: FoldNeeds,
) -> Option<Folded> {
    let first = *values.first()?;
    let mut f = Folded {
        min: 0,
        max: 0,
        extreme: None,
        sum: 0.0,
        mean: 0.0,
        m2: 0.0,
    };
    let mut extremes = None;
    if needs.extremes {
        let (min, max) = min_max(first, values);
        // The first of equal values wins; nothing equals a NaN, and a first NaN stays (nothing
        // beats it).
        f.min = values.iter().position(|v| *v == min).unwrap_or(0);
        f.max = values.iter().position(|v| *v == max).unwrap_or(0);
        extremes = Some((min, max));
    }
    let Some(to_f64) = number else {
        return Some(f);
    };
    if let Some((min, max)) = extremes {
        // Conversion to f64 keeps the order, so the value of largest magnitude is the minimum's
        // or the maximum's; its first position is that of the first value converting to it.
        let (low, high) = (to_f64(min), to_f64(max));
        let extreme = if extreme_beats(low, high) { low } else { high };
        f.extreme = Some(
            values
                .iter()
                .position(|v| to_f64(*v) == extreme)
                .unwrap_or(0),
        );
    }
    if !needs.sum && !needs.moments {
        return Some(f);
    }
    // Four running sums: a single one waits on each addition's latency; four keep the adder busy.
    // The rounding differs from the point-by-point sum's in the last bits, as sums taken from
    // summaries already do (and the error bound is tighter).
    const SUM_LANES: usize = 4;
    let mut lanes = [0.0f64; SUM_LANES];
    let chunks = values.chunks_exact(SUM_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += to_f64(*v);
        }
    }
    let [a, b, c, d] = lanes;
    let mut sum = (a + b) + (c + d);
    for v in rest {
        sum += to_f64(*v);
    }
    f.sum = sum;
    if !needs.moments {
        return Some(f);
    }
    let mean = sum / values.len() as f64;
    const LANES: usize = 4;
    let mut squares = [0.0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (square, v) in squares.iter_mut().zip(chunk) {
            let d = to_f64(*v) - mean;
            *square += d * d;
        }
    }
    for v in rest {
        let d = to_f64(*v) - mean;
        squares[0] += d * d;
    }
    f.mean = mean;
    f.m2 = squares.iter().sum();
    Some(f)
}

/// The smallest and largest of `values` as the point-by-point rule finds them (a value replaces the
/// running one only when strictly smaller or larger, so NaNs after the first value are passed
/// over), kept in independent lanes so the loop vectorizes.
fn min_max<T: Copy + PartialOrd>(first: T, values: &[T]) -> (T, T) {
    const LANES: usize = 8;
    let mut low = [first; LANES];
    let mut high = [first; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for ((l, h), v) in low.iter_mut().zip(high.iter_mut()).zip(chunk) {
            *l = if *v < *l { *v } else { *l };
            *h = if *v > *h { *v } else { *h };
        }
    }
    let (mut min, mut max) = (first, first);
    for v in low.iter().chain(rest) {
        if *v < min {
            min = *v;
        }
    }
    for v in high.iter().chain(rest) {
        if *v > max {
            max = *v;
        }
    }
    (min, max)
}

/// The value at `row` as a [`StatValue`]; `None` for a text value or a row out of range.
fn value_at(values: &ColumnValues, row: usize) -> Option<StatValue> {
    Some(match values {
        ColumnValues::Boolean(v) => StatValue::Bool(*v.get(row)?),
        ColumnValues::Int32(v) => StatValue::Int(i64::from(*v.get(row)?)),
        ColumnValues::Int64(v) => StatValue::Int(*v.get(row)?),
        ColumnValues::Float(v) => StatValue::Float(f64::from(*v.get(row)?)),
        ColumnValues::Double(v) => StatValue::Float(*v.get(row)?),
        ColumnValues::Binary(_) => return None,
    })
}

/// The summary of time-sorted, de-duplicated points, or `None` when the series' values are text or
/// bytes, any float is not finite, the sum overflows, or there are no points: such a file is always
/// scanned.
pub fn summarize(data_type: DataType, times: &[i64], values: &ColumnValues) -> Option<SeriesStats> {
    summarize_rows(data_type, times, values, 0..times.len())
}

/// [`summarize`] of the points `rows` (positions in `times` and `values`).
pub fn summarize_rows(
    data_type: DataType,
    times: &[i64],
    values: &ColumnValues,
    rows: Range<usize>,
) -> Option<SeriesStats> {
    let times = times.get(rows.clone())?;
    let lo = rows.start;
    let folded = match values {
        ColumnValues::Boolean(v) => fold(v.get(rows)?, None::<fn(bool) -> f64>)?,
        ColumnValues::Int32(v) => fold(v.get(rows)?, Some(&|x: i32| f64::from(x)))?,
        ColumnValues::Int64(v) => fold(v.get(rows)?, Some(&|x: i64| x as f64))?,
        ColumnValues::Float(v) => {
            let v = v.get(rows)?;
            if !v.iter().all(|x| x.is_finite()) {
                return None;
            }
            fold(v, Some(&|x: f32| f64::from(x)))?
        }
        ColumnValues::Double(v) => {
            let v = v.get(rows)?;
            if !v.iter().all(|x| x.is_finite()) {
                return None;
            }
            fold(v, Some(&|x: f64| x))?
        }
        ColumnValues::Binary(_) => return None,
    };
    if !folded.sum.is_finite()
        || !folded.m2.is_finite()
        || matches!(data_type.physical(), DataType::Text)
    {
        return None;
    }
    let n = times.len();
    let last = n.checked_sub(1)?;
    Some(SeriesStats {
        count: u64::try_from(n).ok()?,
        sum: folded.sum,
        first_time: *times.first()?,
        first: value_at(values, lo)?,
        last_time: *times.get(last)?,
        last: value_at(values, lo + last)?,
        min: value_at(values, lo + folded.min)?,
        max: value_at(values, lo + folded.max)?,
        // A boolean has no extreme: its first value stands in (a query never asks for it).
        extreme: value_at(values, lo + folded.extreme.unwrap_or(0))?,
        moments: Some((folded.mean, folded.m2)),
    })
}

/// Welford's mean and sum of squared deviations of two sets of values, each given as (count, (mean,
/// m2)): the parallel form of the update, as IoTDB merges partial variances.
pub fn merge_moments(
    (n_a, (mean_a, m2_a)): (u64, (f64, f64)),
    (n_b, (mean_b, m2_b)): (u64, (f64, f64)),
) -> (f64, f64) {
    if n_b == 0 {
        return (mean_a, m2_a);
    }
    if n_a == 0 {
        return (mean_b, m2_b);
    }
    let (n_a, n_b) = (n_a as f64, n_b as f64);
    let total = n_a + n_b;
    let delta = mean_b - mean_a;
    (
        (n_a * mean_a + n_b * mean_b) / total,
        m2_a + m2_b + delta * delta * n_a * n_b / total,
    )
}

impl StatValue {
    /// `Less` when `self` sorts before `other` (false before true, numbers by value); `None` across
    /// kinds.
    fn compare(&self, other: &StatValue) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (StatValue::Bool(a), StatValue::Bool(b)) => Some(a.cmp(b)),
            (StatValue::Int(a), StatValue::Int(b)) => Some(a.cmp(b)),
            (StatValue::Float(a), StatValue::Float(b)) => a.partial_cmp(b),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            StatValue::Int(i) => Some(*i as f64),
            StatValue::Float(f) => Some(*f),
            StatValue::Bool(_) => None,
        }
    }
}

impl SeriesStats {
    /// The summary of these points followed by `later`'s, all of which come after them in time:
    /// what one fold over both would give (but for the rounding of the sum), by the same rules: the
    /// first of equal minimums, maximums and extremes wins, and moments merge as Welford's parallel
    /// form. `None` when the two hold different kinds of value or either lacks moments.
    pub fn then(&self, later: &SeriesStats) -> Option<SeriesStats> {
        let less = later.min.compare(&self.min)?.is_lt();
        let greater = later.max.compare(&self.max)?.is_gt();
        let extreme = match (self.extreme.as_f64(), later.extreme.as_f64()) {
            (Some(current), Some(candidate)) if extreme_beats(candidate, current) => later.extreme,
            _ => self.extreme,
        };
        let moments = merge_moments((self.count, self.moments?), (later.count, later.moments?));
        let sum = self.sum + later.sum;
        if !sum.is_finite() || !moments.1.is_finite() {
            return None;
        }
        Some(SeriesStats {
            count: self.count.checked_add(later.count)?,
            sum,
            first_time: self.first_time,
            first: self.first,
            last_time: later.last_time,
            last: later.last,
            min: if less { later.min } else { self.min },
            max: if greater { later.max } else { self.max },
            extreme,
            moments: Some(moments),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The point-by-point fold `fold` replaced (Welford's update per value): `fold` must find the
    /// same positions and the same sum, and moments equal but for rounding.
    fn fold_point_by_point<T: Copy + PartialOrd>(
        values: &[T],
        number: Option<&dyn Fn(T) -> f64>,
    ) -> Option<Folded> {
        let first = *values.first()?;
        let (mut min, mut max) = (first, first);
        let mut f = Folded {
            min: 0,
            max: 0,
            extreme: number.map(|_| 0),
            sum: 0.0,
            mean: 0.0,
            m2: 0.0,
        };
        for (i, v) in values.iter().copied().enumerate() {
            if v < min {
                min = v;
                f.min = i;
            }
            if v > max {
                max = v;
                f.max = i;
            }
        }
        if let Some(to_f64) = number {
            let mut extreme = to_f64(first);
            for (i, v) in values.iter().copied().enumerate() {
                let x = to_f64(v);
                f.sum += x;
                let delta = x - f.mean;
                f.mean += delta / (i + 1) as f64;
                f.m2 += delta * (x - f.mean);
                if i > 0 && extreme_beats(x, extreme) {
                    extreme = x;
                    f.extreme = Some(i);
                }
            }
        }
        Some(f)
    }

    fn assert_same_fold<T: Copy + PartialOrd + std::fmt::Debug>(
        values: &[T],
        to_f64: impl Fn(T) -> f64 + Copy,
    ) {
        let fast = fold(values, Some(to_f64));
        let slow = fold_point_by_point(values, Some(&to_f64));
        let (Some(fast), Some(slow)) = (fast, slow) else {
            assert_eq!(fast.is_none(), slow.is_none(), "{values:?}");
            return;
        };
        assert_eq!(
            (fast.min, fast.max, fast.extreme),
            (slow.min, slow.max, slow.extreme),
            "{values:?}"
        );
        // Rounding errors scale with the values' magnitude (the sum and mean) and its square (m2).
        let scale = values
            .iter()
            .map(|v| to_f64(*v).abs())
            .filter(|x| !x.is_nan())
            .fold(1.0, f64::max);
        let close = |a: f64, b: f64, scale: f64| {
            (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * scale
        };
        let n = values.len() as f64;
        assert!(
            close(fast.sum, slow.sum, scale * n),
            "{values:?}: {fast:?} {slow:?}"
        );
        assert!(
            close(fast.mean, slow.mean, scale),
            "{values:?}: {fast:?} {slow:?}"
        );
        assert!(
            close(fast.m2, slow.m2, scale * scale * n),
            "{values:?}: {fast:?} {slow:?}"
        );
    }

    #[test]
    fn the_vectorized_fold_agrees_with_the_point_by_point_one() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut below = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..2000 {
            let len = 1 + below(if round % 10 == 0 { 300 } else { 40 }) as usize;
            // Few distinct values, so ties (and ±0, ±x of equal magnitude) are common.
            let doubles: Vec<f64> = (0..len)
                .map(|_| match below(12) {
                    0 if round % 3 == 0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    k => (k as f64 - 7.0) * 1.5,
                })
                .collect();
            assert_same_fold(&doubles, |x| x);
            let floats: Vec<f32> = doubles.iter().map(|x| *x as f32).collect();
            assert_same_fold(&floats, f64::from);
            let ints: Vec<i32> = (0..len).map(|_| below(9) as i32 - 4).collect();
            assert_same_fold(&ints, f64::from);
            // Beyond 2^53 distinct integers convert to one f64: the extreme is the first of them.
            let longs: Vec<i64> = (0..len)
                .map(|_| match below(5) {
                    0 => i64::MAX - below(3) as i64,
                    1 => i64::MIN + below(3) as i64,
                    k => k as i64,
                })
                .collect();
            assert_same_fold(&longs, |x| x as f64);
            let bools: Vec<bool> = (0..len).map(|_| below(2) == 1).collect();
            assert_eq!(
                fold(&bools, None::<fn(bool) -> f64>),
                fold_point_by_point(&bools, None),
                "{bools:?}"
            );
        }
        assert_eq!(fold::<f64, fn(f64) -> f64>(&[], Some(|x| x)), None);
    }

    #[test]
    fn a_fold_for_some_results_gives_those_as_the_whole_fold_does() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 / 7.0 - 70.0)
            .collect();
        let all = fold(&values, Some(|x| x)).unwrap();
        let needs = |extremes, sum, moments| FoldNeeds {
            extremes,
            sum,
            moments,
        };
        let only_extremes = fold_for(&values, Some(|x| x), needs(true, false, false)).unwrap();
        assert_eq!(
            (only_extremes.min, only_extremes.max, only_extremes.extreme),
            (all.min, all.max, all.extreme)
        );
        assert_eq!(only_extremes.sum, 0.0, "the sum was not asked for");
        let only_sum = fold_for(&values, Some(|x| x), needs(false, true, false)).unwrap();
        assert_eq!(only_sum.sum, all.sum);
        assert_eq!((only_sum.extreme, only_sum.m2), (None, 0.0));
        let moments = fold_for(&values, Some(|x| x), needs(false, false, true)).unwrap();
        assert_eq!(
            (moments.sum, moments.mean, moments.m2),
            (all.sum, all.mean, all.m2)
        );
        assert_eq!(fold_for(&values, Some(|x| x), FoldNeeds::ALL), Some(all));
        assert_eq!(
            FoldNeeds::NONE
                .union(needs(true, false, false))
                .union(needs(false, false, true)),
            needs(true, false, true)
        );
    }

    #[test]
    fn summary_keeps_the_first_of_equal_extremes_and_the_positive_magnitude() {
        let s = summarize(
            DataType::Double,
            &[1, 2, 3, 4, 5],
            &ColumnValues::Double(vec![2.0, -5.0, 5.0, -5.0, 1.0]),
        )
        .unwrap();
        assert_eq!(s.count, 5);
        assert_eq!(s.sum, -2.0);
        assert_eq!((s.first_time, s.first), (1, StatValue::Float(2.0)));
        assert_eq!((s.last_time, s.last), (5, StatValue::Float(1.0)));
        assert_eq!(s.min, StatValue::Float(-5.0));
        assert_eq!(s.max, StatValue::Float(5.0));
        assert_eq!(s.extreme, StatValue::Float(5.0));
    }

    #[test]
    fn a_summary_followed_by_another_equals_the_summary_of_both() {
        let times: Vec<i64> = (0..9).collect();
        let values = ColumnValues::Double(vec![2.0, -5.0, 5.0, 0.5, -5.0, 7.0, -7.0, 1.0, 7.0]);
        let whole = summarize(DataType::Double, &times, &values).unwrap();
        for cut in 1..9 {
            let a = summarize_rows(DataType::Double, &times, &values, 0..cut).unwrap();
            let b = summarize_rows(DataType::Double, &times, &values, cut..9).unwrap();
            let joined = a.then(&b).unwrap();
            assert_eq!(joined.count, whole.count, "cut {cut}");
            assert_eq!(
                (
                    joined.first_time,
                    joined.first,
                    joined.last_time,
                    joined.last
                ),
                (whole.first_time, whole.first, whole.last_time, whole.last)
            );
            assert_eq!(
                (joined.min, joined.max, joined.extreme),
                (whole.min, whole.max, whole.extreme),
                "cut {cut}"
            );
            assert!((joined.sum - whole.sum).abs() < 1e-12);
            let (m, m2) = joined.moments.unwrap();
            let (wm, wm2) = whole.moments.unwrap();
            assert!(
                (m - wm).abs() < 1e-12 && (m2 - wm2).abs() < 1e-9,
                "cut {cut}"
            );
        }
        let ints = ColumnValues::Int64(vec![3, 1, 3]);
        let a = summarize_rows(DataType::Int64, &[1, 2, 3], &ints, 0..1).unwrap();
        let b = summarize_rows(DataType::Int64, &[1, 2, 3], &ints, 1..3).unwrap();
        assert_eq!(a.then(&b).unwrap().min, StatValue::Int(1));
        // Different kinds of value do not merge.
        let bools = ColumnValues::Boolean(vec![true]);
        let c = summarize(DataType::Boolean, &[9], &bools).unwrap();
        assert!(a.then(&c).is_none());
    }

    #[test]
    fn no_summary_for_text_non_finite_values_overflowing_sums_or_nothing() {
        let text = ColumnValues::Binary(vec![b"a".to_vec()]);
        assert!(summarize(DataType::Text, &[1], &text).is_none());
        let nan = ColumnValues::Double(vec![1.0, f64::NAN]);
        assert!(summarize(DataType::Double, &[1, 2], &nan).is_none());
        let inf = ColumnValues::Float(vec![f32::INFINITY]);
        assert!(summarize(DataType::Float, &[1], &inf).is_none());
        let big = ColumnValues::Double(vec![f64::MAX, f64::MAX]);
        assert!(summarize(DataType::Double, &[1, 2], &big).is_none());
        assert!(summarize(DataType::Int64, &[], &ColumnValues::Int64(vec![])).is_none());
    }

    #[test]
    fn a_summary_survives_the_json_manifest_bit_for_bit() {
        // Values whose shortest decimal form the default float parser reads back one ulp off.
        let values = [
            0.9328338427380773,
            0.1 + 0.2,
            1e-300,
            5e-324,
            -2.2250738585072014e-308,
        ];
        let times: Vec<i64> = (0..values.len() as i64).collect();
        for (i, v) in values.iter().enumerate() {
            let s = summarize(
                DataType::Double,
                &times[i..=i],
                &ColumnValues::Double(vec![*v]),
            )
            .unwrap();
            let back: SeriesStats =
                serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
            let StatValue::Float(x) = back.last else {
                panic!("{back:?}")
            };
            assert_eq!(x.to_bits(), v.to_bits(), "{v:e}");
            assert_eq!(back, s);
        }
    }

    #[test]
    fn integers_and_booleans_keep_their_class() {
        let s = summarize(DataType::Int32, &[7, 8], &ColumnValues::Int32(vec![3, -9])).unwrap();
        assert_eq!(
            (s.min, s.max, s.extreme),
            (StatValue::Int(-9), StatValue::Int(3), StatValue::Int(-9))
        );
        assert_eq!(s.sum, -6.0);
        let b = summarize(
            DataType::Boolean,
            &[1, 2, 3],
            &ColumnValues::Boolean(vec![true, false, true]),
        )
        .unwrap();
        assert_eq!(
            (b.min, b.max),
            (StatValue::Bool(false), StatValue::Bool(true))
        );
        assert_eq!(b.count, 3);
    }
}
