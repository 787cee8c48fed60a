//! Reading series for a query: one [`SeriesCursor`] per series reads it in time order a chunk at a
//! time, and [`AlignedRows`] merges cursors into rows aligned by time for aggregates with a value
//! predicate (raw queries merge them a run at a time in `raw_columns`). Chunks are sized so that all the
//! cursors of a query together stay within a quarter of its memory budget, and every chunk is charged
//! to the budget while it is held.

use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::SeriesChunk;

use super::expr::{cell, eval, Bound, Val};
use crate::limits::{QueryControlRef, Reservation};
use crate::schema::SeriesInfo;
use crate::{Engine, Result};

/// Points read from storage per series at the first refill: a LIMIT query reads little more than
/// it returns.
const FIRST_CHUNK: usize = 4096;
/// Most points read from storage per series per refill: refills double up to this, so a long scan
/// pays the per-call cost of a storage read (finding rows, opening a file's reader) rarely.
const MAX_CHUNK: usize = 1 << 16;
/// Fewest points per refill of a fixed-width series, however many series a query reads.
const MIN_CHUNK: usize = 16;
/// The first refill of a TEXT, STRING or BLOB series: its values' size is unknown until read.
const FIRST_VARIABLE_CHUNK: usize = 8;
/// Rows (including rows the predicate drops) between two checks of the deadline and cancellation.
const CHECK_EVERY: u32 = 1024;

/// How a query's cursors share memory: each may hold about `bytes_per_cursor` of chunk.
#[derive(Debug, Clone)]
pub(crate) struct ScanBudget {
    pub(crate) control: QueryControlRef,
    bytes_per_cursor: usize,
}

impl ScanBudget {
    /// Cursors of `n_cursors` series get a quarter of the budget between them.
    pub(crate) fn new(control: &QueryControlRef, n_cursors: usize) -> ScanBudget {
        ScanBudget {
            control: control.clone(),
            bytes_per_cursor: control.limits().memory_bytes / 4 / n_cursors.max(1),
        }
    }
}

fn is_variable(t: DataType) -> bool {
    matches!(t.physical(), DataType::Text)
}

/// Bytes a point of a fixed-width type takes in a chunk (time, value, null flag).
fn fixed_point_bytes(t: DataType) -> usize {
    match t.physical() {
        DataType::Boolean => 10,
        DataType::Int32 | DataType::Float => 13,
        _ => 17,
    }
}

/// Bytes a chunk holds in memory.
fn chunk_bytes(chunk: &SeriesChunk) -> usize {
    let n = chunk.times.len();
    let values = match &chunk.values.values {
        ColumnValues::Boolean(v) => v.len(),
        ColumnValues::Int32(v) => 4 * v.len(),
        ColumnValues::Float(v) => 4 * v.len(),
        ColumnValues::Int64(v) => 8 * v.len(),
        ColumnValues::Double(v) => 8 * v.len(),
        ColumnValues::Binary(v) => v.iter().map(|b| b.len() + 24).sum(),
    };
    8 * n + values + chunk.values.nulls.as_ref().map_or(0, Vec::len)
}

/// Reads one series in time order, a chunk at a time.
pub(crate) struct SeriesCursor {
    series: String,
    /// The series' device key, whose TTL applies.
    device: String,
    /// The TTL cut-off, looked up at the first refill (`None` until then).
    ttl_floor: Option<Option<i64>>,
    /// The schema's type: chunk columns are read as it (BLOB stays bytes).
    data_type: DataType,
    chunk: Option<SeriesChunk>,
    pos: usize,
    /// Next time to read from (ascending: lower bound; descending: upper bound).
    next: Option<i64>,
    lo: i64,
    hi: i64,
    descending: bool,
    /// Points to ask for at the next refill.
    chunk_points: usize,
    /// Most points a refill of a fixed-width series may ask for (its share of the budget).
    max_points: usize,
    bytes_per_cursor: usize,
    control: QueryControlRef,
    /// The current chunk's charge.
    held: Reservation,
}

impl SeriesCursor {
    pub(crate) fn new(
        series: &SeriesInfo,
        lo: i64,
        hi: i64,
        descending: bool,
        budget: &ScanBudget,
    ) -> Result<SeriesCursor> {
        let fitting = (budget.bytes_per_cursor / fixed_point_bytes(series.data_type))
            .clamp(MIN_CHUNK, MAX_CHUNK);
        Ok(SeriesCursor {
            series: series.key.clone(),
            device: series.device.clone(),
            ttl_floor: None,
            data_type: series.data_type,
            chunk: None,
            pos: 0,
            next: Some(if descending { hi } else { lo }),
            lo,
            hi,
            descending,
            chunk_points: if is_variable(series.data_type) {
                fitting.min(FIRST_VARIABLE_CHUNK)
            } else {
                fitting.min(FIRST_CHUNK)
            },
            max_points: fitting,
            bytes_per_cursor: budget.bytes_per_cursor,
            control: budget.control.clone(),
            held: budget.control.reserve(0, "a series cursor")?,
        })
    }

    /// The current point's time, refilling from storage when the chunk is used up.
    pub(crate) fn peek(&mut self, engine: &Engine) -> Result<Option<i64>> {
        loop {
            if let Some(chunk) = &self.chunk {
                if let Some(t) = chunk.times.get(self.pos) {
                    return Ok(Some(*t));
                }
            }
            // The used-up chunk goes before the next one is charged.
            self.chunk = None;
            self.held.resize(0, "a series chunk")?;
            let Some(from) = self.next else {
                return Ok(None);
            };
            let (lo, hi) = if self.descending {
                (self.lo, from)
            } else {
                (from, self.hi)
            };
            // Points a TTL expired are not there for queries (the cut-off is the query's start).
            let (device, started_ms) = (&self.device, self.control.started_ms());
            let floor = *self
                .ttl_floor
                .get_or_insert_with(|| engine.ttl_floor(device, started_ms));
            let lo = floor.map_or(lo, |floor| lo.max(floor));
            if lo > hi {
                self.next = None;
                return Ok(None);
            }
            self.control.check()?;
            let limit = self.chunk_points;
            // Rows need no versions: an ascending read of a lone source leaves them out.
            let mut chunk = if self.descending {
                engine.storage.scan(&self.series, lo, hi, limit, true)?
            } else {
                engine.storage.scan_values(&self.series, lo, hi, limit)?
            };
            if chunk.values.data_type.physical() == self.data_type.physical() {
                chunk.values.data_type = self.data_type;
            }
            let bytes = chunk_bytes(&chunk);
            self.held
                .resize(bytes, &format!("reading series {}", self.series))?;
            if is_variable(self.data_type) && !chunk.times.is_empty() {
                // Size the next refill by the values seen, so long values come a few at a time.
                let per_point = (bytes / chunk.times.len()).max(1);
                self.chunk_points = (self.bytes_per_cursor / per_point).clamp(1, MAX_CHUNK);
            } else {
                self.chunk_points = self.chunk_points.saturating_mul(2).min(self.max_points);
            }
            self.next = match chunk.times.last() {
                Some(last) if chunk.times.len() == limit => {
                    if self.descending {
                        last.checked_sub(1)
                    } else {
                        last.checked_add(1)
                    }
                }
                _ => None,
            };
            if chunk.times.is_empty() {
                self.next = None;
                self.held.resize(0, "a series chunk")?;
                return Ok(None);
            }
            self.chunk = Some(chunk);
            self.pos = 0;
        }
    }

    /// The current chunk's points from the cursor on (none once it is used up: `peek` refills), and
    /// the chunk's values with the position of the first of them.
    pub(crate) fn pending(&self) -> (&[i64], Option<(&Column, usize)>) {
        match &self.chunk {
            Some(chunk) => (
                chunk.times.get(self.pos..).unwrap_or_default(),
                Some((&chunk.values, self.pos)),
            ),
            None => (&[], None),
        }
    }

    /// Steps over `n` pending points (their values were copied by the caller).
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    pub(crate) fn take(&mut self) -> Val {
        let v = self
            .chunk
            .as_ref()
            .map(|c| cell(&c.values, self.pos))
            .unwrap_or(Val::Null);
        self.pos += 1;
        v
    }
}

/// Rows aligned by time over a set of series: the k-way merge of their cursors. Cursors
/// `0..n_outputs` are output columns; the rest only feed the predicate.
pub(crate) struct AlignedRows {
    pub(crate) cursors: Vec<SeriesCursor>,
    pub(crate) descending: bool,
    pub(crate) predicate: Option<Bound>,
    pub(crate) n_outputs: usize,
    pub(crate) control: QueryControlRef,
    since_check: u32,
}

impl AlignedRows {
    /// Rows of `series` in `[lo, hi]`; the first `n_outputs` are output columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        series: &[SeriesInfo],
        n_outputs: usize,
        lo: i64,
        hi: i64,
        descending: bool,
        predicate: Option<Bound>,
        budget: &ScanBudget,
    ) -> Result<AlignedRows> {
        Ok(AlignedRows {
            cursors: series
                .iter()
                .map(|s| SeriesCursor::new(s, lo, hi, descending, budget))
                .collect::<Result<_>>()?,
            descending,
            predicate,
            n_outputs,
            control: budget.control.clone(),
            since_check: 0,
        })
    }

    /// The next row with an output value that passes the predicate.
    pub(crate) fn next_row(&mut self, engine: &Engine) -> Result<Option<(i64, Vec<Val>)>> {
        loop {
            self.since_check += 1;
            if self.since_check >= CHECK_EVERY {
                self.since_check = 0;
                self.control.check()?;
            }
            let mut time: Option<i64> = None;
            for c in &mut self.cursors {
                if let Some(t) = c.peek(engine)? {
                    time = Some(match time {
                        None => t,
                        Some(best) if self.descending => best.max(t),
                        Some(best) => best.min(t),
                    });
                }
            }
            let Some(time) = time else { return Ok(None) };
            let mut row = Vec::with_capacity(self.cursors.len());
            for c in &mut self.cursors {
                if c.peek(engine)? == Some(time) {
                    row.push(c.take());
                } else {
                    row.push(Val::Null);
                }
            }
            if row[..self.n_outputs.min(row.len())]
                .iter()
                .all(|v| *v == Val::Null)
            {
                continue;
            }
            if let Some(p) = &self.predicate {
                if eval(p, time, &row) != Val::Bool(true) {
                    continue;
                }
            }
            return Ok(Some((time, row)));
        }
    }
}
