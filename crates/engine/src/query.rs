//! `SELECT` in the tree model. [`execute`] checks the statement, reads the time range its `WHERE`
//! implies, and hands it to the path for its shape; every path returns a stream whose pages are
//! computed as they are fetched.
//!
//! Every query runs under a [`QueryControl`](crate::limits::QueryControl): its state is charged to a
//! memory budget as it is allocated, and its loops check the deadline and the cancellation flag.
//! Series are resolved in time near-linear in the number of series (ordered maps and hash sets, never
//! a scan of the list per series).
//!
//! Planning:
//! - [`plan`]: series named by the SELECT list and WHERE, SLIMIT/SOFFSET, IoTDB's clause checks;
//! - [`bounds`]: the time range a `WHERE` implies (and `DELETE … WHERE`'s);
//! - [`expr`]: values and `WHERE`/`HAVING` expressions bound to cursors, SQL's three-valued logic.
//!
//! One path per shape:
//! - [`raw`]: raw series aligned by time, paged by [`raw_columns`] (per-series scans, [`scan`],
//!   merged a run at a time and copied by column);
//! - [`by_time`]: aggregates aligned by time, with GROUP BY windows and GROUP BY LEVEL ([`level`]);
//! - [`last`]: `SELECT LAST`, one series at a time;
//! - [`by_device`]: `ALIGN BY DEVICE`, raw or aggregated, one device's cursors at a time.
//!
//! Aggregation:
//! - [`windows`]: GROUP BY windows computed from their index;
//! - [`aggregate`]: functions, accumulators, and the page source of windows × parts;
//! - [`columnar`]: aggregates from file summaries and typed folds over scanned chunks;
//! - [`parallel`]: those folds for several series at once, on worker threads;
//! - [`count_if`], [`mode`]: the functions that need more than an accumulator.
//!
//! Output:
//! - [`page`]: pages, their encoded size, and rows cut into pages;
//! - [`shape`]: `HAVING`, `FILL` ([`fill`]), `OFFSET` and `LIMIT` over a source's rows.

mod aggregate;
mod bounds;
mod by_device;
mod by_time;
mod columnar;
mod count_if;
mod expr;
mod fill;
mod last;
mod level;
mod mode;
mod page;
mod parallel;
mod plan;
mod raw;
mod raw_columns;
mod scan;
mod shape;
#[cfg(test)]
pub(crate) mod testing;
mod windows;

pub use bounds::time_range_only;
pub use page::{block_overhead, table_row_bytes, Page, PageSource};
pub use parallel::set_scan_threads;

use std::sync::Arc;

use duet_parser::Select;

use crate::engine::{Output, SessionContext};
use crate::limits::QueryControlRef;
use crate::{Engine, Result};

/// The engine reference a page source needs; sources outlive the statement call, so they hold an `Arc`.
pub type EngineRef = Arc<Engine>;

/// Executes a SELECT under `control`: the result is a stream whose pages are computed as they are
/// fetched, holding its own `Arc` of the engine.
pub fn execute(
    engine: &EngineRef,
    ctx: &SessionContext,
    select: &Select,
    control: QueryControlRef,
) -> Result<Output> {
    let has_agg = plan::check_items(select)?;
    let (lo, hi) = match &select.condition {
        Some(c) => bounds::time_bounds(engine, ctx, c)?,
        None => (i64::MIN, i64::MAX),
    };
    // Checked before any data is read: an impossible GROUP BY fails at once.
    let windows = if has_agg {
        Some(windows::Windows::new(
            engine,
            ctx,
            select.group_by.as_ref(),
        )?)
    } else {
        None
    };
    control.check()?;
    if select.last {
        return last::last(engine, select, lo, hi, control);
    }
    if select.align_by_device {
        return by_device::by_device(engine, ctx, select, lo, hi, windows, control);
    }
    match windows {
        Some(windows) => {
            by_time::aggregate_by_time(engine, ctx, select, (lo, hi), windows, control)
        }
        None => raw::raw_by_time(engine, ctx, select, (lo, hi), control),
    }
}
