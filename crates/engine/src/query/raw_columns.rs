//! Raw data aligned by time, built a column at a time: the cursors' chunks are merged run by run
//! (the points up to the earliest last time of the chunks held) rather than row by row, and a run
//! that every cursor holds at the same times (one series, or series written together) with no value
//! predicate is copied into the page with one slice copy per column. Other runs are merged a row at
//! a time straight into typed columns; a value predicate is evaluated on those rows. One query is one
//! part; ALIGN BY DEVICE hands it a part per device, and OFFSET and LIMIT count across them.
//!
//! **Invariant:** the pages hold exactly the rows of the k-way merge of the part's cursors: every time
//! some output cursor has a point at (and the predicate holds), once, in the query's order, with a
//! null where a series has none; OFFSET and LIMIT count those rows.

use duet_proto::types::DataType;

use super::expr::{cell, eval, Bound, Val};
use super::page::{row_bytes, Page, PageBuilder, PageSource};
use super::raw::{RawPart, RawParts};
use super::scan::SeriesCursor;
use super::EngineRef;
use crate::limits::QueryControlRef;
use crate::{Engine, Result};

/// The pages of raw rows over a sequence of parts (the whole query, or one device at a time).
pub(super) struct RawColumns {
    engine: EngineRef,
    parts: Box<dyn RawParts>,
    part: Option<Part>,
    types: Vec<DataType>,
    offset: u64,
    limit: Option<u64>,
    control: QueryControlRef,
}

/// One part being read.
struct Part {
    /// The Device column's value (ALIGN BY DEVICE); it is the page's first column.
    device: Option<String>,
    /// Output cursors first (`n_outputs`), then the ones only the predicate reads.
    cursors: Vec<SeriesCursor>,
    n_outputs: usize,
    predicate: Option<Bound>,
    /// Per value column: the cursor whose values it shows, or `None` (a null).
    feeds: Vec<Option<usize>>,
    descending: bool,
    /// The encoded bytes of a row (from [`row_bytes`]'s rule, an upper bound: a null takes less) when
    /// every value column has a fixed width; `None` when some column is TEXT-like.
    fixed_row_bytes: Option<usize>,
}

/// Per cursor, how many of its pending points belong to the current run.
type Run = Vec<usize>;

impl Part {
    fn new(part: RawPart, types: &[DataType]) -> Part {
        let device_bytes = part.device.as_ref().map_or(0, |d| 4 + d.len());
        let value_types = types
            .get(usize::from(part.device.is_some())..)
            .unwrap_or_default();
        let fixed_row_bytes = value_types
            .iter()
            .map(|t| fixed_width(*t))
            .sum::<Option<usize>>()
            .map(|values| 8 + types.len().div_ceil(8) + device_bytes + values);
        Part {
            device: part.device,
            cursors: part.rows.cursors,
            n_outputs: part.rows.n_outputs,
            predicate: part.rows.predicate,
            feeds: part.feeds,
            descending: part.rows.descending,
            fixed_row_bytes,
        }
    }

    /// Whether every row of a run is a result row: no predicate, and every cursor is an output.
    fn rows_all_count(&self) -> bool {
        self.predicate.is_none() && self.n_outputs == self.cursors.len()
    }

    /// The next run: per cursor, how many of its pending points come no later than the earliest
    /// last time of the cursors' chunks (so the whole run is in memory); `None` at the part's end.
    fn next_run(&mut self, engine: &Engine) -> Result<Option<Run>> {
        let descending = self.descending;
        let mut frontier: Option<i64> = None;
        for c in &mut self.cursors {
            if c.peek(engine)?.is_none() {
                continue;
            }
            if let Some(&last) = c.pending().0.last() {
                frontier = Some(match frontier {
                    Some(f) if before(descending, f, last) => f,
                    _ => last,
                });
            }
        }
        let Some(frontier) = frontier else {
            return Ok(None);
        };
        Ok(Some(
            self.cursors
                .iter()
                .map(|c| {
                    c.pending()
                        .0
                        .partition_point(|t| !before(descending, frontier, *t))
                })
                .collect(),
        ))
    }

    /// The length of `run` when every row of it is a result row and every cursor with points in it
    /// has them at the same times.
    fn shared_len(&self, run: &Run) -> Option<usize> {
        if !self.rows_all_count() {
            return None;
        }
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

    /// The first pending time of the cursors within `run`, marking in `at` the cursors that have a
    /// point there.
    fn next_time(&self, run: &Run, at: &mut [bool]) -> Option<i64> {
        let mut best: Option<i64> = None;
        for (c, n) in self.cursors.iter().zip(run) {
            if *n > 0 {
                if let Some(t) = c.pending().0.first() {
                    if best.is_none_or(|b| before(self.descending, *t, b)) {
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

    /// The value of cursor `i` at the row `at` marks (a null where it has no point).
    fn value(&self, i: usize, at: &[bool]) -> Val {
        match self.cursors.get(i).and_then(|c| c.pending().1) {
            Some((values, pos)) if at.get(i).copied().unwrap_or(false) => cell(values, pos),
            _ => Val::Null,
        }
    }

    /// Whether the row at `time` that `at` marks is a result row: an output has a value there, and
    /// the predicate holds.
    fn is_result(&self, time: i64, at: &[bool]) -> bool {
        if self.rows_all_count() {
            return true;
        }
        if !at.iter().take(self.n_outputs).any(|here| *here) {
            return false;
        }
        match &self.predicate {
            Some(p) => {
                let row: Vec<Val> = (0..self.cursors.len()).map(|i| self.value(i, at)).collect();
                eval(p, time, &row) == Val::Bool(true)
            }
            None => true,
        }
    }

    /// Steps the cursors `at` marks over their current point (one row of the run).
    fn step(&mut self, run: &mut Run, at: &[bool]) {
        for ((c, len), here) in self.cursors.iter_mut().zip(run.iter_mut()).zip(at) {
            if *here {
                c.advance(1);
                *len -= 1;
            }
        }
    }

    /// Steps every cursor with points in `run` over its first `n` (a run whose times they share).
    fn step_shared(&mut self, run: &mut Run, n: usize) {
        for (c, len) in self.cursors.iter_mut().zip(run.iter_mut()) {
            if *len > 0 {
                c.advance(n);
                *len -= n;
            }
        }
    }

    /// The page's cells of the row `at` marks, for sizing a row of TEXT-like columns.
    fn row_cells(&self, at: &[bool]) -> Vec<Val> {
        let device = self.device.iter().map(|d| Val::Str(d.clone()));
        device
            .chain(
                self.feeds
                    .iter()
                    .map(|f| f.map_or(Val::Null, |i| self.value(i, at))),
            )
            .collect()
    }

    /// Appends `n` rows to page column `column`: the device, or the values of the cursor the column
    /// shows (from its current point on) when `shown(cursor)`, else nulls.
    fn fill(
        &self,
        column: usize,
        builder: &mut super::page::ColumnBuilder,
        n: usize,
        shown: impl Fn(usize) -> bool,
    ) {
        let feed = match (&self.device, column) {
            (Some(device), 0) => {
                for _ in 0..n {
                    builder.push(&Val::Str(device.clone()));
                }
                return;
            }
            (Some(_), c) => self.feeds.get(c - 1),
            (None, c) => self.feeds.get(c),
        };
        let source = feed
            .copied()
            .flatten()
            .filter(|i| shown(*i))
            .and_then(|i| self.cursors.get(i))
            .and_then(|c| c.pending().1);
        match source {
            Some((values, pos)) => builder.extend_from(values, pos..pos + n),
            None => builder.push_nulls(n),
        }
    }
}

/// Whether time `a` comes before time `b` in a part's order.
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

impl RawColumns {
    pub(super) fn new(
        engine: EngineRef,
        parts: Box<dyn RawParts>,
        types: Vec<DataType>,
        (offset, limit): (u64, Option<u64>),
        control: QueryControlRef,
    ) -> RawColumns {
        RawColumns {
            engine,
            parts,
            part: None,
            types,
            offset,
            limit,
            control,
        }
    }

    /// Moves through the rows: OFFSET's are dropped, the others go to `page` until it is full or
    /// LIMIT is reached. Without a page, stops at the first row that would go to one and says
    /// whether there is such a row.
    fn advance(&mut self, mut page: Option<&mut PageBuilder>) -> Result<bool> {
        loop {
            if self.limit == Some(0) {
                return Ok(false);
            }
            if page.as_ref().is_some_and(|p| p.is_full()) {
                return Ok(true);
            }
            self.control.check()?;
            if self.part.is_none() {
                match self.parts.next_part()? {
                    Some(p) => self.part = Some(Part::new(p, &self.types)),
                    None => return Ok(false),
                }
            }
            let Some(part) = self.part.as_mut() else {
                return Ok(false);
            };
            let Some(mut run) = part.next_run(&self.engine)? else {
                self.part = None;
                continue;
            };
            if let Some(len) = part.shared_len(&run) {
                // Every row of the run is a result: OFFSET's go at once.
                let dropped = len.min(usize::try_from(self.offset).unwrap_or(usize::MAX));
                part.step_shared(&mut run, dropped);
                self.offset -= dropped as u64;
                let len = len - dropped;
                if len == 0 {
                    continue;
                }
                match (page.as_deref_mut(), part.fixed_row_bytes) {
                    (None, _) => return Ok(true),
                    (Some(page), Some(row_bytes)) => {
                        let limit = self
                            .limit
                            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
                        let n = len.min(page.room_for(row_bytes)).min(limit);
                        if n == 0 {
                            // Not even one more row fits the page's bytes.
                            return Ok(true);
                        }
                        let times = part
                            .cursors
                            .iter()
                            .zip(&run)
                            .find(|(_, len)| **len > 0)
                            .and_then(|(c, _)| c.pending().0.get(..n))
                            .unwrap_or_default();
                        let part_ref = &*part;
                        page.push_rows(times, n * row_bytes, |column, builder| {
                            part_ref
                                .fill(column, builder, n, |i| run.get(i).is_some_and(|l| *l > 0))
                        })?;
                        part.step_shared(&mut run, n);
                        if let Some(l) = &mut self.limit {
                            *l -= n as u64;
                        }
                        continue;
                    }
                    // TEXT-like columns: the rows are sized one by one.
                    (Some(_), None) => {}
                }
            }
            if !merge_rows(
                part,
                &mut run,
                page.as_deref_mut(),
                &mut self.offset,
                &mut self.limit,
            )? {
                return Ok(true);
            }
        }
    }
}

/// Goes through `run` a row at a time: rows that are not results are stepped over, OFFSET's are
/// dropped, the others go to `page`. `false` when it stopped inside the run: the page is full, LIMIT
/// is reached, or (without a page) a row would go to one.
fn merge_rows(
    part: &mut Part,
    run: &mut Run,
    mut page: Option<&mut PageBuilder>,
    offset: &mut u64,
    limit: &mut Option<u64>,
) -> Result<bool> {
    let mut at = vec![false; part.cursors.len()];
    loop {
        if *limit == Some(0) {
            return Ok(false);
        }
        let Some(time) = part.next_time(run, &mut at) else {
            return Ok(true);
        };
        if !part.is_result(time, &at) {
            part.step(run, &at);
            continue;
        }
        if *offset > 0 {
            *offset -= 1;
            part.step(run, &at);
            continue;
        }
        let Some(page) = page.as_deref_mut() else {
            return Ok(false);
        };
        if page.is_full() {
            return Ok(false);
        }
        let bytes = match part.fixed_row_bytes {
            Some(b) => b,
            None => row_bytes(&part.row_cells(&at), page.types()),
        };
        if !page.fits(bytes) {
            return Ok(false);
        }
        let part_ref = &*part;
        page.push_rows(&[time], bytes, |column, builder| {
            part_ref.fill(column, builder, 1, |i| at.get(i).copied().unwrap_or(false))
        })?;
        part.step(run, &at);
        if let Some(l) = limit {
            *l -= 1;
        }
    }
}

impl PageSource for RawColumns {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        self.advance(Some(&mut page))?;
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        self.advance(None)
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
    fn a_value_predicate_keeps_its_rows_and_drops_rows_with_no_output_value() {
        let (db, rows) = db();
        // b is read only by the predicate: a row needs a value of a or c, and b > 5000.5 there.
        let want: Vec<Vec<String>> = rows
            .iter()
            .filter(|(_, cells)| cells[0].is_some() || cells[2].is_some())
            .filter(|(_, cells)| {
                cells[1]
                    .as_ref()
                    .is_some_and(|b| b.parse::<f64>().unwrap() > 5000.5)
            })
            .map(|(time, cells)| {
                std::iter::once(time.to_string())
                    .chain([0, 2].map(|c| cells[c].clone().unwrap_or_else(|| "null".into())))
                    .collect()
            })
            .skip(3)
            .collect();
        assert!(want.len() > 5_000);
        for page_rows in [2, 100_000] {
            let got = pages(
                &db,
                "SELECT d1.a, d2.c FROM root.sg WHERE d1.b > 5000.5 OFFSET 3",
                page_rows,
            );
            assert!(got == want, "pages of {page_rows}: rows differ");
        }
    }

    #[test]
    fn align_by_device_reads_each_device_in_turn_and_pages_across_them() {
        let (db, rows) = db();
        let device_rows = |device: &str, cell: usize, column: usize| -> Vec<Vec<String>> {
            rows.iter()
                .filter_map(|(time, cells)| {
                    let v = cells[cell].clone()?;
                    let mut row = vec![
                        time.to_string(),
                        device.to_string(),
                        "null".into(),
                        "null".into(),
                    ];
                    row[2 + column] = v;
                    Some(row)
                })
                .collect()
        };
        let mut want = device_rows("root.sg.d1", 0, 1);
        want.extend(device_rows("root.sg.d2", 2, 0));
        let want: Vec<_> = want.into_iter().skip(13_490).take(20).collect();
        assert_eq!(want.len(), 20);
        for page_rows in [3, 100_000] {
            let got = pages(
                &db,
                "SELECT c, a FROM root.sg.* LIMIT 20 OFFSET 13490 ALIGN BY DEVICE",
                page_rows,
            );
            assert_eq!(got, want, "pages of {page_rows}");
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
