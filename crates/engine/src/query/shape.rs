//! The last steps of a query whose rows must be seen before they are paged: `HAVING` (a window's
//! aggregates, some of them computed only for it in columns that are then dropped), `FILL`, and then
//! `OFFSET` and `LIMIT`, which count the rows that are left (IoTDB's order: having, fill, offset,
//! limit). It reads the pages of the source below, row by row, and cuts its own pages; the rows it
//! holds (filled and waiting, or ready to page) are charged to the query's budget.

use std::collections::VecDeque;

use duet_parser::Select;
use duet_proto::types::DataType;

use super::expr::{cell, eval, Bound, Val};
use super::fill::{time_bound, Filler, Row};
use super::page::{row_bytes, Page, PageBuilder, PageSource};
use crate::engine::SessionContext;
use crate::limits::{QueryControlRef, Reservation};
use crate::{Engine, Result};

/// `source` under HAVING, FILL, OFFSET and LIMIT when the query has HAVING or FILL (the source then
/// pages everything, unlimited); `source` itself otherwise. Output columns are `types`; `having` is
/// bound to the source's columns, which may follow them.
#[allow(clippy::too_many_arguments)]
pub(super) fn shaped(
    engine: &Engine,
    ctx: &SessionContext,
    select: &Select,
    source: Box<dyn PageSource>,
    control: &QueryControlRef,
    types: &[DataType],
    having: Option<Bound>,
    by_device: bool,
    paging: (u64, Option<u64>),
) -> Result<Box<dyn PageSource>> {
    if select.fill.is_none() && having.is_none() {
        return Ok(source);
    }
    let filler = match &select.fill {
        Some(fill) => {
            let bound = match &fill.bound {
                Some(b) => Some(time_bound(engine.precision(), &b.text, || ctx.zone())?),
                None => None,
            };
            Some(Filler::new(
                &fill.method,
                bound,
                types,
                usize::from(by_device),
            )?)
        }
        None => None,
    };
    let (offset, limit) = paging;
    let held = control.reserve(0, "rows being filled")?;
    Ok(Box::new(Shaped {
        source,
        control: control.clone(),
        types: types.to_vec(),
        having,
        filler,
        by_device,
        device: None,
        offset,
        limit,
        ready: VecDeque::new(),
        held_bytes: 0,
        held,
        source_done: false,
    }))
}

/// Rows of the source below asked for at a time.
const SOURCE_ROWS: usize = 1000;

pub(crate) struct Shaped {
    source: Box<dyn PageSource>,
    control: QueryControlRef,
    /// The output columns: the source's first `types.len()` columns (the rest only feed HAVING).
    types: Vec<DataType>,
    having: Option<Bound>,
    filler: Option<Filler>,
    /// Whether column 0 is ALIGN BY DEVICE's Device: a new device starts the fill afresh.
    by_device: bool,
    device: Option<Val>,
    offset: u64,
    limit: Option<u64>,
    ready: VecDeque<Row>,
    /// Bytes of the rows held (in the filler or ready), and their reservation.
    held_bytes: usize,
    held: Reservation,
    source_done: bool,
}

impl Shaped {
    /// Reads one page of the source into the filler or `ready`; `false` at its end.
    fn pull(&mut self) -> Result<bool> {
        if self.source_done {
            return Ok(false);
        }
        self.control.check()?;
        let Some(page) = self.source.next_page(SOURCE_ROWS, usize::MAX)? else {
            self.source_done = true;
            if let Some(filler) = &mut self.filler {
                filler.finish(&mut self.ready);
            }
            return Ok(false);
        };
        let Page { times, columns } = page;
        for (r, time) in times.into_iter().enumerate() {
            let mut cells: Vec<Val> = columns.iter().map(|c| cell(c, r)).collect();
            if let Some(having) = &self.having {
                if eval(having, time, &cells) != Val::Bool(true) {
                    continue;
                }
            }
            cells.truncate(self.types.len());
            // Charged at twice the encoded size, as pages are (filling may add a little).
            let bytes = 2 * row_bytes(&cells, &self.types);
            self.held_bytes += bytes;
            match &mut self.filler {
                Some(filler) => {
                    if self.by_device {
                        let device = cells.first().cloned();
                        if self.device.is_some() && self.device != device {
                            filler.finish(&mut self.ready);
                        }
                        self.device = device;
                    }
                    filler.push((time, cells, bytes), &mut self.ready);
                }
                None => self.ready.push_back((time, cells, bytes)),
            }
        }
        self.held.resize(self.held_bytes, "rows being filled")?;
        Ok(true)
    }

    /// The next row to page (OFFSET already skipped), left in `ready`; `false` at the end.
    fn next_ready(&mut self) -> Result<bool> {
        loop {
            if self.limit == Some(0) {
                return Ok(false);
            }
            while self.offset > 0 {
                let Some((_, _, bytes)) = self.ready.pop_front() else {
                    break;
                };
                self.held_bytes -= bytes;
                self.offset -= 1;
            }
            if self.offset == 0 && !self.ready.is_empty() {
                return Ok(true);
            }
            if !self.pull()? && self.ready.is_empty() {
                return Ok(false);
            }
        }
    }
}

impl PageSource for Shaped {
    fn next_page(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Page>> {
        let mut page = PageBuilder::new(&self.control, &self.types, max_rows, max_bytes)?;
        while !page.is_full() && self.next_ready()? {
            let Some((time, cells, held)) = self.ready.pop_front() else {
                break;
            };
            let bytes = row_bytes(&cells, &self.types);
            if !page.fits(bytes) {
                self.ready.push_front((time, cells, held));
                break;
            }
            page.push(time, &cells, bytes)?;
            self.held_bytes -= held;
            if let Some(l) = &mut self.limit {
                *l -= 1;
            }
        }
        self.held.resize(self.held_bytes, "rows being filled")?;
        Ok(page.finish())
    }

    fn has_more(&mut self) -> Result<bool> {
        self.next_ready()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::query::testing::TestDb;

    fn db() -> TestDb {
        TestDb::with(
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1), (4, 4), (5, 5);
             INSERT INTO root.sg.d2(time, s1) VALUES (2, 20)",
        )
    }

    #[test]
    fn having_then_fill_then_offset_and_limit() {
        let db = db();
        // Windows of 1 ms; 0, 2 and 3 are empty. HAVING drops the window at 1 first, so FILL has
        // nothing to carry into 2 and 3 (filled first, they would read 1.0); OFFSET skips window 0.
        let rows = db.lines(
            "SELECT sum(s1) FROM root.sg.d1 GROUP BY ([0, 6), 1ms) HAVING sum(s1) != 1 or count(s1) = 0 FILL(PREVIOUS) LIMIT 3 OFFSET 1",
        );
        assert_eq!(rows, ["2 null", "3 null", "4 4.0"]);
    }

    #[test]
    fn fill_restarts_at_each_device() {
        let db = db();
        let rows = db.lines(
            "SELECT sum(s1) FROM root.sg.* GROUP BY ([0, 3), 1ms) FILL(PREVIOUS) ALIGN BY DEVICE",
        );
        assert_eq!(
            rows,
            [
                "0 root.sg.d1 null",
                "1 root.sg.d1 1.0",
                "2 root.sg.d1 1.0",
                "0 root.sg.d2 null",
                "1 root.sg.d2 null",
                "2 root.sg.d2 20.0"
            ]
        );
    }
}
