//! Result pages and how big they are: every source builds its pages with a [`PageBuilder`], which
//! stops a page at a row count or at an estimate of its TsBlock encoding, whichever comes first, and
//! charges the page to the query's memory budget. The estimates are upper bounds of what
//! `duet_proto::tsblock::encode` writes, so a reply cut by them stays below the client's frame limit.

use duet_proto::types::{Column, ColumnValues, DataType};

use super::expr::{cell, render, Val};
use crate::limits::{QueryControlRef, Reservation};
use crate::Result;

/// One page of a result: times and columns of equal length.
#[derive(Debug, Clone)]
pub struct Page {
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
}

impl Page {
    /// Every row as text, each cell as [`Column::render`] prints it, after the row's time when
    /// `with_time`.
    pub fn rendered_rows(&self, with_time: bool) -> Vec<Vec<String>> {
        self.times
            .iter()
            .enumerate()
            .map(|(r, time)| {
                with_time
                    .then(|| time.to_string())
                    .into_iter()
                    .chain(self.columns.iter().map(|c| c.render(r)))
                    .collect()
            })
            .collect()
    }
}

/// A result produced page by page.
pub trait PageSource: Send + Sync {
    /// The next page: at most `max_rows` rows and at most `max_bytes` bytes once encoded as a TsBlock
    /// (a page may exceed `max_bytes` only when its single row does), or `None` at the end.
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>>;

    /// Whether another row follows; a source may read one row ahead to know.
    fn has_more(&mut self) -> Result<bool>;
}

/// Bytes of a TsBlock of `n_columns` value columns without rows: the column count, types and
/// encodings, the row count, a null flag per column, and a partly used bitmap byte per column.
pub fn block_overhead(n_columns: usize) -> usize {
    16 + 5 * n_columns
}

/// Upper bound of the encoded bytes of one row: the time, a null-bitmap bit per column (rounded up),
/// and each value (a boolean counted as a byte).
pub(crate) fn row_bytes(cells: &[Val], types: &[DataType]) -> usize {
    let mut bytes = 8 + cells.len().div_ceil(8);
    for (v, t) in cells.iter().zip(types) {
        bytes += value_bytes(v, *t);
    }
    bytes
}

fn value_bytes(v: &Val, t: DataType) -> usize {
    match (v, t.physical()) {
        (Val::Null, _) => 0,
        (_, DataType::Boolean) => 1,
        (_, DataType::Int32 | DataType::Float) => 4,
        (_, DataType::Int64 | DataType::Double) => 8,
        (Val::Str(s), _) => 4 + s.len(),
        (Val::Bytes(b), _) => 4 + b.len(),
        (other, _) => 4 + render(other).len(),
    }
}

/// Upper bound of the encoded bytes of row `row` of a finished table (what the session pages).
pub fn table_row_bytes(columns: &[Column], row: usize) -> usize {
    let mut bytes = 8 + columns.len().div_ceil(8);
    for c in columns {
        if c.is_null(row) {
            continue;
        }
        bytes += match &c.values {
            ColumnValues::Boolean(_) => 1,
            ColumnValues::Int32(_) | ColumnValues::Float(_) => 4,
            ColumnValues::Int64(_) | ColumnValues::Double(_) => 8,
            ColumnValues::Binary(v) => 4 + v.get(row).map_or(0, Vec::len),
        };
    }
    bytes
}

/// Builds output columns from rows of values.
pub(crate) struct ColumnBuilder {
    data_type: DataType,
    nulls: Vec<bool>,
    values: ColumnValues,
}

impl ColumnBuilder {
    pub(crate) fn new(data_type: DataType) -> ColumnBuilder {
        ColumnBuilder {
            data_type,
            nulls: Vec::new(),
            values: ColumnValues::empty_for(data_type),
        }
    }

    pub(crate) fn push(&mut self, v: &Val) {
        let null = *v == Val::Null;
        self.nulls.push(null);
        match &mut self.values {
            ColumnValues::Boolean(x) => x.push(matches!(v, Val::Bool(true))),
            ColumnValues::Int32(x) => x.push(match v {
                Val::Int(i) => i32::try_from(*i).unwrap_or_default(),
                _ => 0,
            }),
            ColumnValues::Int64(x) => x.push(match v {
                Val::Int(i) => *i,
                _ => 0,
            }),
            ColumnValues::Float(x) => x.push(v.as_f64().unwrap_or_default() as f32),
            ColumnValues::Double(x) => x.push(v.as_f64().unwrap_or_default()),
            ColumnValues::Binary(x) => x.push(match v {
                Val::Str(s) => s.clone().into_bytes(),
                Val::Bytes(b) => b.clone(),
                Val::Null => Vec::new(),
                other => render(other).into_bytes(),
            }),
        }
    }

    /// Appends `column`'s values at `rows`: copied as they are when the column holds the builder's
    /// fixed-width kind of value (what `push` of each cell would store), else cell by cell.
    pub(crate) fn extend_from(&mut self, column: &Column, rows: std::ops::Range<usize>) {
        let n = rows.len();
        let copied = column.nulls.is_none()
            && match (&mut self.values, &column.values) {
                (ColumnValues::Boolean(x), ColumnValues::Boolean(v)) => extend(x, v, &rows),
                (ColumnValues::Int32(x), ColumnValues::Int32(v)) => extend(x, v, &rows),
                (ColumnValues::Int64(x), ColumnValues::Int64(v)) => extend(x, v, &rows),
                (ColumnValues::Float(x), ColumnValues::Float(v)) => extend(x, v, &rows),
                (ColumnValues::Double(x), ColumnValues::Double(v)) => extend(x, v, &rows),
                _ => false,
            };
        if copied {
            self.nulls.resize(self.nulls.len() + n, false);
        } else {
            for row in rows {
                self.push(&cell(column, row));
            }
        }
    }

    /// Appends `n` nulls.
    pub(crate) fn push_nulls(&mut self, n: usize) {
        for _ in 0..n {
            self.push(&Val::Null);
        }
    }

    pub(crate) fn finish(self) -> Column {
        let nulls = self.nulls.iter().any(|b| *b).then_some(self.nulls);
        Column {
            data_type: self.data_type,
            nulls,
            values: self.values,
        }
    }
}

/// Appends `from[rows]` to `to`; `false` (nothing appended) when `rows` lies outside `from`.
fn extend<T: Copy>(to: &mut Vec<T>, from: &[T], rows: &std::ops::Range<usize>) -> bool {
    match from.get(rows.clone()) {
        Some(values) => {
            to.extend_from_slice(values);
            true
        }
        None => false,
    }
}

/// One page being built, bounded by rows and by estimated encoded bytes, and charged to the budget.
pub(crate) struct PageBuilder {
    times: Vec<i64>,
    columns: Vec<ColumnBuilder>,
    types: Vec<DataType>,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
    /// What the page's rows cost so far (the reservation may be ahead of it by `CHARGE_STEP`).
    charged: usize,
    reservation: Reservation,
}

/// How far ahead of a page's rows its reservation is grown.
const CHARGE_STEP: usize = 64 * 1024;

impl PageBuilder {
    /// A page of `types` columns; it takes at most half of the budget still available, so the state
    /// that produces the rows keeps the other half.
    pub(crate) fn new(
        control: &QueryControlRef,
        types: &[DataType],
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<PageBuilder> {
        let overhead = block_overhead(types.len());
        Ok(PageBuilder {
            times: Vec::new(),
            columns: types.iter().map(|t| ColumnBuilder::new(*t)).collect(),
            types: types.to_vec(),
            bytes: overhead,
            max_rows: max_rows.max(1),
            max_bytes: max_bytes.min(control.available() / 2),
            charged: overhead,
            reservation: control.reserve(overhead, "a result page")?,
        })
    }

    pub(crate) fn types(&self) -> &[DataType] {
        &self.types
    }

    pub(crate) fn rows(&self) -> usize {
        self.times.len()
    }

    /// Whether no further row may be added.
    pub(crate) fn is_full(&self) -> bool {
        self.times.len() >= self.max_rows || self.bytes >= self.max_bytes
    }

    /// Whether a row of `bytes` (from [`row_bytes`]) fits; the first row always does.
    pub(crate) fn fits(&self, bytes: usize) -> bool {
        self.times.is_empty()
            || (self.times.len() < self.max_rows
                && self.bytes.saturating_add(bytes) <= self.max_bytes)
    }

    /// Adds a row of `bytes` (from [`row_bytes`]); memory is charged at twice the encoded size
    /// (per-cell null flags and vector headers).
    pub(crate) fn push(&mut self, time: i64, cells: &[Val], bytes: usize) -> Result<()> {
        self.charge(bytes)?;
        self.times.push(time);
        for (b, v) in self.columns.iter_mut().zip(cells) {
            b.push(v);
        }
        Ok(())
    }

    /// Adds the rows of `times` at once, `bytes` (from [`row_bytes`]) between them: `fill` appends
    /// each column's `times.len()` cells to its builder, given the column's index.
    pub(crate) fn push_rows(
        &mut self,
        times: &[i64],
        bytes: usize,
        mut fill: impl FnMut(usize, &mut ColumnBuilder),
    ) -> Result<()> {
        self.charge(bytes)?;
        self.times.extend_from_slice(times);
        for (i, b) in self.columns.iter_mut().enumerate() {
            fill(i, b);
        }
        Ok(())
    }

    /// How many more rows of `row_bytes` each fit (at least one on an empty page).
    pub(crate) fn room_for(&self, row_bytes: usize) -> usize {
        let rows = self.max_rows.saturating_sub(self.times.len());
        let by_bytes = self.max_bytes.saturating_sub(self.bytes) / row_bytes.max(1);
        if self.times.is_empty() {
            rows.min(by_bytes).max(1)
        } else {
            rows.min(by_bytes)
        }
    }

    /// Charges rows of `bytes` encoded bytes at twice that (per-cell null flags and vector headers).
    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.charged = self.charged.saturating_add(2 * bytes);
        if self.charged > self.reservation.bytes() {
            // Charged ahead in steps, not per row (each charge is an atomic update shared by the
            // query); exactly what is needed if the step does not fit the budget.
            let ahead = self.charged.saturating_add(CHARGE_STEP);
            if self.reservation.resize(ahead, "a result page").is_err() {
                self.reservation.resize(self.charged, "a result page")?;
            }
        }
        self.bytes += bytes;
        Ok(())
    }

    /// The page, or `None` when it has no rows. The reservation ends here: the page is handed over.
    pub(crate) fn finish(self) -> Option<Page> {
        if self.times.is_empty() {
            return None;
        }
        Some(Page {
            times: self.times,
            columns: self
                .columns
                .into_iter()
                .map(ColumnBuilder::finish)
                .collect(),
        })
    }
}

/// One result row: its time and its cells.
pub(crate) type Row = (i64, Vec<Val>);

/// A result produced row by row; [`RowPages`] cuts its rows into pages.
pub(crate) trait RowSource: Send + Sync {
    /// The next row, or `None` at the end.
    fn next_row(&mut self) -> Result<Option<Row>>;
}

/// Pages of a [`RowSource`]'s rows, each as full as its row and byte caps allow; a row that did not
/// fit a page (or that `has_more` looked ahead for) starts the next one.
pub(crate) struct RowPages<R> {
    rows: R,
    control: QueryControlRef,
    types: Vec<DataType>,
    pending: Option<Row>,
}

impl<R: RowSource> RowPages<R> {
    pub(crate) fn new(rows: R, control: QueryControlRef, types: Vec<DataType>) -> RowPages<R> {
        RowPages {
            rows,
            control,
            types,
            pending: None,
        }
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        match self.pending.take() {
            Some(row) => Ok(Some(row)),
            None => self.rows.next_row(),
        }
    }
}

impl<R: RowSource> PageSource for RowPages<R> {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while !page.is_full() {
            let Some((time, cells)) = self.next_row()? else {
                break;
            };
            let bytes = row_bytes(&cells, &self.types);
            if !page.fits(bytes) {
                self.pending = Some((time, cells));
                break;
            }
            page.push(time, &cells, bytes)?;
        }
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        if self.pending.is_none() {
            self.pending = self.rows.next_row()?;
        }
        Ok(self.pending.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::limits::{QueryControl, QueryLimits};

    #[test]
    fn estimates_bound_the_real_encoding() {
        let types = [
            DataType::Int64,
            DataType::Text,
            DataType::Boolean,
            DataType::Int32,
            DataType::Blob,
        ];
        let rows: Vec<Vec<Val>> = (0..37)
            .map(|i| {
                vec![
                    if i % 3 == 0 { Val::Null } else { Val::Int(i) },
                    Val::Str("x".repeat(i as usize * 7)),
                    Val::Bool(i % 2 == 0),
                    Val::Int(-i),
                    if i % 5 == 0 {
                        Val::Null
                    } else {
                        Val::Bytes(vec![1; i as usize])
                    },
                ]
            })
            .collect();
        let control = QueryControl::new(QueryLimits::default());
        let mut page = PageBuilder::new(&control, &types, 1000, usize::MAX).unwrap();
        let mut estimate = block_overhead(types.len());
        for (i, row) in rows.iter().enumerate() {
            let bytes = row_bytes(row, &types);
            estimate += bytes;
            page.push(i as i64, row, bytes).unwrap();
        }
        let page = page.finish().unwrap();
        let encoded =
            duet_proto::tsblock::encode(&page.times, &page.columns, 0, page.times.len()).unwrap();
        assert!(encoded.len() <= estimate, "{} > {estimate}", encoded.len());
        let table: usize = (0..page.times.len())
            .map(|r| table_row_bytes(&page.columns, r))
            .sum::<usize>()
            + block_overhead(types.len());
        assert!(encoded.len() <= table, "{} > {table}", encoded.len());
    }

    #[test]
    fn a_page_stops_at_its_byte_cap_but_always_takes_one_row() {
        let control = QueryControl::new(QueryLimits::default());
        let types = [DataType::Text];
        let big = [Val::Str("y".repeat(1000))];
        let bytes = row_bytes(&big, &types);
        let mut page = PageBuilder::new(&control, &types, 100, 10).unwrap();
        assert!(page.fits(bytes));
        page.push(1, &big, bytes).unwrap();
        assert!(!page.fits(bytes));
        assert!(page.is_full());
        assert!(control.used() > 2000);
        drop(page);
        assert_eq!(control.used(), 0);
    }

    /// Rows 0..n with a text cell of `width` bytes each.
    struct Counting {
        next: i64,
        n: i64,
        width: usize,
    }

    impl RowSource for Counting {
        fn next_row(&mut self) -> Result<Option<Row>> {
            if self.next == self.n {
                return Ok(None);
            }
            self.next += 1;
            Ok(Some((
                self.next - 1,
                vec![Val::Str("z".repeat(self.width))],
            )))
        }
    }

    #[test]
    fn row_pages_carry_the_row_that_did_not_fit_into_the_next_page() {
        let control = QueryControl::new(QueryLimits::default());
        let rows = Counting {
            next: 0,
            n: 7,
            width: 100,
        };
        let mut pages = RowPages::new(rows, control, vec![DataType::Text]);
        // A byte cap of about two rows, a row cap of three: pages of 2, 2, 2, 1, no row lost.
        let cap =
            block_overhead(1) + 2 * row_bytes(&[Val::Str("z".repeat(100))], &[DataType::Text]);
        let mut sizes = Vec::new();
        let mut times = Vec::new();
        assert!(pages.has_more().unwrap());
        while let Some(page) = pages.next_page(3, cap).unwrap() {
            sizes.push(page.times.len());
            times.extend(page.times);
        }
        assert_eq!(sizes, [2, 2, 2, 1]);
        assert_eq!(times, (0..7).collect::<Vec<_>>());
        assert!(!pages.has_more().unwrap());
    }
}
