//! Raw data aligned by time without a value predicate, built a column at a time: the cursors' chunks
//! are merged run by run rather than row by row, and a run that every cursor holds at the same times
//! (one series, or series written together) is copied into the page with one slice copy per column.
//! The row-by-row merge (`scan::AlignedRows`) stays for queries with a WHERE on values and for ALIGN
//! BY DEVICE.
//!
//! **Invariant:** the pages hold exactly the rows `AlignedRows` would produce for the same cursors
//! (every time some cursor has a point at, once, in the query's order, with a null where a series has
//! none), and OFFSET and LIMIT count those rows.

use super::expr::{cell, Val};
use super::page::{row_bytes, Page, PageBuilder, PageSource};
use super::scan::SeriesCursor;
use super::EngineRef;
use crate::limits::QueryControlRef;
use crate::Result;
use duet_proto::types::DataType;

/// The pages of raw rows over `cursors`, output column `i` showing cursor `feeds[i]`.
pub(super) struct RawColumns {
    engine: EngineRef,
    cursors: Vec<SeriesCursor>,
    feeds: Vec<usize>,
    types: Vec<DataType>,
    /// The encoded bytes of a row when every output column has a fixed width (no row has a null:
    /// storage's chunks have none, and a row is made only where a cursor has a point); `None` when
    /// some column is TEXT-like, whose rows are sized one by one.
    fixed_row_bytes: Option<usize>,
    descending: bool,
    offset: u64,
    limit: Option<u64>,
    control: QueryControlRef,
}

/// Where each cursor stands in the current run: its pending points up to the run's end.
type Run = Vec<usize>;

impl RawColumns {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        engine: EngineRef,
        cursors: Vec<SeriesCursor>,
        feeds: Vec<usize>,
        types: Vec<DataType>,
        descending: bool,
        (offset, limit): (u64, Option<u64>),
        control: QueryControlRef,
    ) -> RawColumns {
        let fixed_row_bytes = types
            .iter()
            .map(|t| fixed_width(*t))
            .sum::<Option<usize>>()
            .map(|values| 8 + types.len().div_ceil(8) + values);
        RawColumns {
            engine,
            cursors,
            feeds,
            types,
            fixed_row_bytes,
            descending,
            offset,
            limit,
            control,
        }
    }

    /// Whether time `a` comes before time `b` in the query's order.
    fn before(&self, a: i64, b: i64) -> bool {
        before(self.descending, a, b)
    }

    /// The next run: per cursor, how many of its pending points come no later than the earliest
    /// last time of the cursors' chunks (so the whole run is in memory); `None` at the end.
    fn next_run(&mut self) -> Result<Option<Run>> {
        let mut frontier: Option<i64> = None;
        for c in &mut self.cursors {
            if c.peek(&self.engine)?.is_some() {
                if let Some(last) = c.pending().0.last() {
                    frontier = Some(match frontier {
                        Some(f) if before(self.descending, f, *last) => f,
                        _ => *last,
                    });
                }
            }
        }
        let Some(frontier) = frontier else {
            return Ok(None);
        };
        let descending = self.descending;
        Ok(Some(
            self.cursors
                .iter()
                .map(|c| {
                    c.pending().0.partition_point(|t| {
                        if descending {
                            *t >= frontier
                        } else {
                            *t <= frontier
                        }
                    })
                })
                .collect(),
        ))
    }

    /// The length of `run` when every cursor with points in it has them at the same times.
    fn shared_len(&self, run: &Run) -> Option<usize> {
        let mut shared: Option<&[i64]> = None;
        for (c, n) in self.cursors.iter().zip(run) {
            if *n == 0 {
                continue;
            }
            let times = c.pending().0.get(..*n)?;
            match shared {
                None => shared = Some(times),
                Some(s) if s == times => {}
                Some(_) => return None,
            }
        }
        shared.map(<[i64]>::len)
    }

    /// The earliest pending time of the cursors within `run`, with the cursors that have a point there.
    fn next_time(&self, run: &Run, at: &mut [bool]) -> Option<i64> {
        let mut best: Option<i64> = None;
        for (c, n) in self.cursors.iter().zip(run) {
            if *n > 0 {
                if let Some(t) = c.pending().0.first() {
                    if best.is_none_or(|b| self.before(*t, b)) {
                        best = Some(*t);
                    }
                }
            }
        }
        for ((c, n), here) in self.cursors.iter().zip(run).zip(at.iter_mut()) {
            *here = *n > 0 && best.is_some() && c.pending().0.first().copied() == best;
        }
        best
    }

    /// Drops the rows OFFSET skips.
    fn skip_offset(&mut self) -> Result<()> {
        let mut at = vec![false; self.cursors.len()];
        while self.offset > 0 {
            self.control.check()?;
            let Some(mut run) = self.next_run()? else {
                return Ok(());
            };
            if let Some(len) = self.shared_len(&run) {
                let n = len.min(usize::try_from(self.offset).unwrap_or(usize::MAX));
                for (c, len) in self.cursors.iter_mut().zip(&run) {
                    if *len > 0 {
                        c.advance(n);
                    }
                }
                self.offset -= n as u64;
                continue;
            }
            while self.offset > 0 && self.next_time(&run, &mut at).is_some() {
                for ((c, len), here) in self.cursors.iter_mut().zip(&mut run).zip(&at) {
                    if *here {
                        c.advance(1);
                        *len -= 1;
                    }
                }
                self.offset -= 1;
            }
        }
        Ok(())
    }

    /// Adds the rows of `run` to `page` one at a time until the run or the page is done; `false` when
    /// the page filled first.
    fn merge_rows(&mut self, run: &mut Run, page: &mut PageBuilder) -> Result<bool> {
        let mut at = vec![false; self.cursors.len()];
        loop {
            if self.limit == Some(0) || page.is_full() {
                return Ok(false);
            }
            let Some(time) = self.next_time(run, &mut at) else {
                return Ok(true);
            };
            let bytes = match self.fixed_row_bytes {
                Some(b) => b,
                None => {
                    let cells: Vec<_> = self
                        .feeds
                        .iter()
                        .map(|f| {
                            let here = at.get(*f).copied().unwrap_or(false);
                            self.cursors
                                .get(*f)
                                .and_then(|c| c.pending().1)
                                .filter(|_| here)
                                .map_or(Val::Null, |(col, pos)| cell(col, pos))
                        })
                        .collect();
                    row_bytes(&cells, &self.types)
                }
            };
            if !page.fits(bytes) {
                return Ok(false);
            }
            let (cursors, feeds) = (&self.cursors, &self.feeds);
            page.push_rows(&[time], bytes, |i, column| {
                let source = feeds
                    .get(i)
                    .filter(|f| at.get(**f).copied().unwrap_or(false))
                    .and_then(|f| cursors.get(*f))
                    .and_then(|c| c.pending().1);
                match source {
                    Some((values, pos)) => column.extend_from(values, pos..pos + 1),
                    None => column.push_nulls(1),
                }
            })?;
            for ((c, len), here) in self.cursors.iter_mut().zip(run.iter_mut()).zip(&at) {
                if *here {
                    c.advance(1);
                    *len -= 1;
                }
            }
            if let Some(l) = &mut self.limit {
                *l -= 1;
            }
        }
    }

    /// Copies the first rows of a run whose cursors share their `len` times, as many as the page and
    /// LIMIT take; `false` when the page filled first.
    fn copy_shared(
        &mut self,
        run: &Run,
        len: usize,
        page: &mut PageBuilder,
        row_bytes: usize,
    ) -> Result<bool> {
        let limit = self
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let n = len.min(page.room_for(row_bytes)).min(limit);
        let (cursors, feeds) = (&self.cursors, &self.feeds);
        let times = cursors
            .iter()
            .zip(run)
            .find(|(_, len)| **len > 0)
            .and_then(|(c, _)| c.pending().0.get(..n))
            .unwrap_or_default();
        if times.len() < n || n == 0 {
            return Ok(false);
        }
        page.push_rows(times, n * row_bytes, |i, column| {
            let source = feeds
                .get(i)
                .filter(|f| run.get(**f).is_some_and(|len| *len > 0))
                .and_then(|f| cursors.get(*f))
                .and_then(|c| c.pending().1);
            match source {
                Some((values, pos)) => column.extend_from(values, pos..pos + n),
                None => column.push_nulls(n),
            }
        })?;
        for (c, len) in self.cursors.iter_mut().zip(run) {
            if *len > 0 {
                c.advance(n);
            }
        }
        if let Some(l) = &mut self.limit {
            *l -= n as u64;
        }
        Ok(n == len)
    }
}

/// Whether time `a` comes before time `b`, descending or not.
fn before(descending: bool, a: i64, b: i64) -> bool {
    if descending {
        a > b
    } else {
        a < b
    }
}

/// The encoded bytes of a value of a fixed-width type; `None` for TEXT-like types.
fn fixed_width(t: DataType) -> Option<usize> {
    match t.physical() {
        DataType::Boolean => Some(1),
        DataType::Int32 | DataType::Float => Some(4),
        DataType::Int64 | DataType::Double => Some(8),
        _ => None,
    }
}

impl PageSource for RawColumns {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        self.skip_offset()?;
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while self.limit != Some(0) && !page.is_full() {
            self.control.check()?;
            let Some(mut run) = self.next_run()? else {
                break;
            };
            let more = match (self.fixed_row_bytes, self.shared_len(&run)) {
                (Some(row_bytes), Some(len)) => {
                    self.copy_shared(&run, len, &mut page, row_bytes)?
                }
                _ => self.merge_rows(&mut run, &mut page)?,
            };
            if !more {
                break;
            }
        }
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        if self.limit == Some(0) {
            return Ok(false);
        }
        self.skip_offset()?;
        for c in &mut self.cursors {
            if c.peek(&self.engine)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Write;

    use crate::engine::Output;
    use crate::query::testing::TestDb;

    /// Cells of one time, in the order a, b, c, t (text, already rendered).
    type Rows = BTreeMap<i64, [Option<String>; 4]>;

    /// Series written in runs that share times (a and b), runs that do not (c at other times, b with
    /// gaps), and a sparse TEXT series; more points than a first refill reads, partly flushed.
    fn db() -> (TestDb, Rows) {
        let db = TestDb::open();
        db.run(
            "CREATE TIMESERIES root.sg.d1.a INT64; CREATE TIMESERIES root.sg.d1.b DOUBLE;
             CREATE TIMESERIES root.sg.d2.c INT32; CREATE TIMESERIES root.sg.d1.t TEXT",
        );
        let mut rows = Rows::new();
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut inserts: [String; 4] = Default::default();
        for (i, sql) in inserts.iter_mut().enumerate() {
            let (device, column) = [("d1", "a"), ("d1", "b"), ("d2", "c"), ("d1", "t")][i];
            write!(sql, "INSERT INTO root.sg.{device}(time, {column}) VALUES ").unwrap();
        }
        for time in 0..14_000i64 {
            let r = next();
            let mut cells: [Option<String>; 4] = Default::default();
            // a everywhere but a gap; b with a while its runs last; c at other times; t rarely.
            if !(6_000..6_500).contains(&time) {
                cells[0] = Some((time * 3).to_string());
            }
            if (time / 1000) % 3 != 1 || r % 5 == 0 {
                cells[1] = Some(format!("{}.5", time));
            }
            if r % 7 == 0 && cells[0].is_none() || (9_000..9_100).contains(&time) {
                cells[2] = Some((-time).to_string());
            }
            if r % 97 == 0 {
                cells[3] = Some(format!("text {time}"));
            }
            for (k, cell) in cells.iter().enumerate() {
                if let Some(v) = cell {
                    let v = if k == 3 { format!("'{v}'") } else { v.clone() };
                    write!(inserts[k], "({time}, {v}),").unwrap();
                }
            }
            if cells.iter().any(Option::is_some) {
                rows.insert(time, cells);
            }
            if time == 8_000 {
                for sql in &mut inserts {
                    db.run(sql.trim_end_matches(','));
                    sql.truncate(sql.find("VALUES ").unwrap() + 7);
                }
                db.run("FLUSH");
            }
        }
        for sql in &inserts {
            db.run(sql.trim_end_matches(','));
        }
        (db, rows)
    }

    /// The query's rows as text, read in pages of at most `page_rows` rows.
    fn pages(db: &TestDb, sql: &str, page_rows: usize) -> Vec<Vec<String>> {
        let Output::Stream(mut s) = db.try_query(sql).unwrap() else {
            panic!("{sql} is not a stream");
        };
        let mut rows = Vec::new();
        while let Some(page) = s.source.next_page(page_rows, 1 << 20).unwrap() {
            assert!(page.times.len() <= page_rows);
            rows.extend(page.rendered_rows(true));
        }
        assert!(!s.source.has_more().unwrap(), "{sql}");
        rows
    }

    /// What `columns` (indexes into a row's cells) show over `rows`, in order, after OFFSET and LIMIT.
    fn expected(
        rows: &Rows,
        columns: &[usize],
        range: std::ops::Range<i64>,
        desc: bool,
        (offset, limit): (usize, usize),
    ) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = rows
            .range(range)
            .filter(|(_, cells)| columns.iter().any(|c| cells[*c].is_some()))
            .map(|(time, cells)| {
                std::iter::once(time.to_string())
                    .chain(
                        columns
                            .iter()
                            .map(|c| cells[*c].clone().unwrap_or_else(|| "null".into())),
                    )
                    .collect()
            })
            .collect();
        if desc {
            out.reverse();
        }
        out.into_iter().skip(offset).take(limit).collect()
    }

    /// A query, the cells its columns show, its time range, whether descending, OFFSET and LIMIT.
    type Case = (
        &'static str,
        Vec<usize>,
        std::ops::Range<i64>,
        bool,
        (usize, usize),
    );

    #[test]
    fn pages_hold_every_time_a_series_has_in_order_after_offset_and_limit() {
        let (db, rows) = db();
        let all = 0..i64::MAX;
        let cases: Vec<Case> = vec![
            (
                "SELECT a FROM root.sg.d1",
                vec![0],
                all.clone(),
                false,
                (0, usize::MAX),
            ),
            (
                "SELECT a, b FROM root.sg.d1",
                vec![0, 1],
                all.clone(),
                false,
                (0, usize::MAX),
            ),
            (
                "SELECT a, b FROM root.sg.d1 ORDER BY TIME DESC LIMIT 9000 OFFSET 777",
                vec![0, 1],
                all.clone(),
                true,
                (777, 9000),
            ),
            (
                "SELECT d1.a, d2.c, d1.a FROM root.sg LIMIT 5000 OFFSET 4090",
                vec![0, 2, 0],
                all.clone(),
                false,
                (4090, 5000),
            ),
            (
                "SELECT d1.t, d1.b, d2.c FROM root.sg WHERE time >= 100 AND time < 13000",
                vec![3, 1, 2],
                100..13_000,
                false,
                (0, usize::MAX),
            ),
            (
                "SELECT d1.b, d1.t FROM root.sg ORDER BY TIME DESC OFFSET 13000",
                vec![1, 3],
                all.clone(),
                true,
                (13_000, usize::MAX),
            ),
            (
                "SELECT d2.c FROM root.sg LIMIT 0",
                vec![2],
                all,
                false,
                (0, 0),
            ),
        ];
        for (sql, columns, range, desc, paging) in cases {
            let want = expected(&rows, &columns, range, desc, paging);
            for page_rows in [1, 3, 4096, 100_000] {
                let got = pages(&db, sql, page_rows);
                assert_eq!(got.len(), want.len(), "{sql}, pages of {page_rows}");
                assert!(got == want, "{sql}, pages of {page_rows}: rows differ");
            }
        }
    }

    #[test]
    fn fill_sees_every_row_before_offset_and_limit_count_them() {
        let (db, _) = db();
        // c's value at 9099 fills the rows after it, though OFFSET skips the row it comes from.
        let (_, rows) = db.query(
            "SELECT d1.a, d2.c FROM root.sg WHERE time >= 9098 AND time < 9103 FILL(PREVIOUS) \
             LIMIT 2 OFFSET 2",
        );
        assert_eq!(
            rows,
            [["9100", "27300", "-9099"], ["9101", "27303", "-9099"]]
        );
    }
}
