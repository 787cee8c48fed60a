//! `MODE`'s state: how often each distinct value occurred and when it first did, so the answer is
//! the most frequent value and, among equally frequent ones, the one that occurred first (IoTDB's
//! rule: "if there are many modes, return the mode with the earliest time").
//!
//! **Invariant:** two values are the same key exactly when Java's `equals` on IoTDB's boxed values
//! says so: numbers of one series by their bits (so `0.0` and `-0.0` differ and `NaN` equals
//! itself), text and blobs by their bytes. The state grows with the number of distinct values; its
//! heap bytes are counted as it grows so the query's memory budget can refuse it (IoTDB fails past
//! a fixed count of distinct values instead).

use std::collections::HashMap;
use std::ops::Range;

use duet_proto::types::{Column, ColumnValues, DataType};

use super::expr::Val;

/// A distinct value of one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Int(i64),
    /// The bits of the value as an `f64` (FLOAT values widened exactly).
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
}

impl Key {
    fn of(v: &Val) -> Option<Key> {
        Some(match v {
            Val::Null => return None,
            Val::Bool(b) => Key::Bool(*b),
            Val::Int(i) => Key::Int(*i),
            Val::Float(f) => Key::Float(f.to_bits()),
            Val::Str(s) => Key::Str(s.clone()),
            Val::Bytes(b) => Key::Bytes(b.clone()),
        })
    }

    fn value(&self) -> Val {
        match self {
            Key::Bool(b) => Val::Bool(*b),
            Key::Int(i) => Val::Int(*i),
            Key::Float(bits) => Val::Float(f64::from_bits(*bits)),
            Key::Str(s) => Val::Str(s.clone()),
            Key::Bytes(b) => Val::Bytes(b.clone()),
        }
    }

    fn heap(&self) -> usize {
        match self {
            Key::Str(s) => s.len(),
            Key::Bytes(b) => b.len(),
            _ => 0,
        }
    }
}

/// An occurrence count and the earliest time of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    count: u64,
    first: i64,
}

/// Bytes one distinct value takes in the map besides its text: the entry, its control byte and the
/// table's spare capacity (a hash table is at most 7/8 full).
const ENTRY_BYTES: usize = (std::mem::size_of::<(Key, Seen)>() + 1) * 8 / 7 + 1;

/// The values of a series in a window and how often each occurred.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModeCounts {
    seen: HashMap<Key, Seen>,
    /// Bytes held beyond the struct itself.
    heap: usize,
}

impl ModeCounts {
    fn bump(&mut self, key: Key, count: u64, first: i64) {
        let heap = key.heap();
        match self.seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let seen = e.get_mut();
                seen.count = seen.count.saturating_add(count);
                seen.first = seen.first.min(first);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Seen { count, first });
                self.heap += ENTRY_BYTES + heap;
            }
        }
    }

    /// Counts one point (nulls are not values).
    pub(crate) fn add(&mut self, time: i64, v: &Val) {
        if let Some(key) = Key::of(v) {
            self.bump(key, 1, time);
        }
    }

    /// Counts the points `range` of a chunk without nulls, typed (text and blobs point by point).
    pub(crate) fn add_column(&mut self, times: &[i64], column: &Column, range: Range<usize>) {
        let times = times.get(range.clone()).unwrap_or_default();
        fn each<T: Copy>(
            counts: &mut ModeCounts,
            times: &[i64],
            values: Option<&[T]>,
            key: impl Fn(T) -> Key,
        ) {
            for (t, v) in times.iter().zip(values.unwrap_or_default()) {
                counts.bump(key(*v), 1, *t);
            }
        }
        match &column.values {
            ColumnValues::Boolean(v) => each(self, times, v.get(range), Key::Bool),
            ColumnValues::Int32(v) => each(self, times, v.get(range), |x| Key::Int(i64::from(x))),
            ColumnValues::Int64(v) => each(self, times, v.get(range), Key::Int),
            ColumnValues::Float(v) => each(self, times, v.get(range), |x| {
                Key::Float(f64::from(x).to_bits())
            }),
            ColumnValues::Double(v) => each(self, times, v.get(range), |x| Key::Float(x.to_bits())),
            ColumnValues::Binary(v) => {
                let blob = column.data_type == DataType::Blob;
                for (t, b) in times.iter().zip(v.get(range).unwrap_or_default()) {
                    let key = if blob {
                        Key::Bytes(b.clone())
                    } else {
                        Key::Str(String::from_utf8_lossy(b).into_owned())
                    };
                    self.bump(key, 1, *t);
                }
            }
        }
    }

    /// Takes in the counts of another series or part of the window.
    pub(crate) fn merge(&mut self, other: &ModeCounts) {
        for (key, seen) in &other.seen {
            self.bump(key.clone(), seen.count, seen.first);
        }
    }

    /// The most frequent value, the earliest on a tie; `Null` when nothing was counted.
    pub(crate) fn result(&self) -> Val {
        self.seen
            .iter()
            .max_by(|(_, a), (_, b)| a.count.cmp(&b.count).then(b.first.cmp(&a.first)))
            .map_or(Val::Null, |(key, _)| key.value())
    }

    pub(crate) fn heap(&self) -> usize {
        self.heap
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_most_frequent_value_wins_and_the_earliest_breaks_a_tie() {
        let mut m = ModeCounts::default();
        assert_eq!(m.result(), Val::Null);
        for (t, v) in [(5, 2), (1, 7), (9, 2), (3, 7), (4, 1)] {
            m.add(t, &Val::Int(v));
        }
        // 2 and 7 occur twice each; 7 occurred first (time 1).
        assert_eq!(m.result(), Val::Int(7));
        m.add(10, &Val::Int(2));
        assert_eq!(m.result(), Val::Int(2));
        // All values once: the earliest.
        let mut once = ModeCounts::default();
        for (t, v) in [(8, 1.5), (2, 9.5), (6, -1.0)] {
            once.add(t, &Val::Float(v));
        }
        assert_eq!(once.result(), Val::Float(9.5));
    }

    #[test]
    fn zero_and_negative_zero_differ_and_nan_equals_itself() {
        let mut m = ModeCounts::default();
        m.add(1, &Val::Float(0.0));
        m.add(2, &Val::Float(-0.0));
        m.add(3, &Val::Float(-0.0));
        m.add(4, &Val::Float(f64::NAN));
        m.add(5, &Val::Float(f64::NAN));
        m.add(6, &Val::Float(f64::NAN));
        assert!(matches!(m.result(), Val::Float(f) if f.is_nan()));
        assert_eq!(m.seen.len(), 3);
    }

    #[test]
    fn typed_columns_count_as_points_do_and_merging_adds_counts() {
        let column = Column {
            data_type: DataType::Float,
            values: ColumnValues::Float(vec![1.5, 2.5, 1.5, 2.5, 2.5]),
            nulls: None,
        };
        let times = [10, 20, 30, 40, 50];
        let mut typed = ModeCounts::default();
        typed.add_column(&times, &column, 0..4);
        let mut by_point = ModeCounts::default();
        for (t, v) in [(10, 1.5f32), (20, 2.5), (30, 1.5), (40, 2.5)] {
            by_point.add(t, &Val::Float(f64::from(v)));
        }
        assert_eq!(typed.seen, by_point.seen);
        assert_eq!(typed.result(), Val::Float(1.5));
        let mut rest = ModeCounts::default();
        rest.add_column(&times, &column, 4..5);
        typed.merge(&rest);
        assert_eq!(typed.result(), Val::Float(2.5));
        assert_eq!(typed.heap(), 2 * ENTRY_BYTES);
        let text = Column {
            data_type: DataType::Text,
            values: ColumnValues::Binary(vec![b"ab".to_vec(), b"ab".to_vec(), b"c".to_vec()]),
            nulls: None,
        };
        let mut words = ModeCounts::default();
        words.add_column(&[1, 2, 3], &text, 0..3);
        assert_eq!(words.result(), Val::Str("ab".into()));
        assert_eq!(words.heap(), 2 * ENTRY_BYTES + 3);
    }
}
