//! Aggregates of several series without a WHERE predicate, their scans run in parallel: each series
//! is folded on its own (`columnar::fold_pieces`) into its own accumulators, so each series whose scan
//! reads many points is an independent task, which the query's thread and helpers on the runtime's
//! blocking pool take from one queue (series that summaries answer, but for the usually empty gaps
//! between them, are folded at once, without a task). How many run at once is bounded by the
//! processors, by a process-wide setting ([`set_scan_threads`]), and by the query's memory budget
//! (each running scan holds one chunk); every scan checks the query's deadline and cancellation as
//! the serial path does, and once one fails no further series is started.
//!
//! **Invariant:** the accumulators end up exactly as the serial path leaves them: each series' points
//! are folded in time order into that series' accumulators only, whichever thread does it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use duet_storage::SeriesPiece;

use super::aggregate::{Acc, StateMemory};
use super::columnar::{self, Window, CHUNK_POINTS};
use super::EngineRef;
use crate::limits::QueryControlRef;
use crate::schema::SeriesInfo;
use crate::{EngineError, Result};

/// Fewest points a series' scan must read to become a task of its own: below it, handing the scan to
/// another thread costs about what it saves.
pub(crate) const TASK_POINTS: u64 = 16_384;

/// Threads a query's scans may use at once; 0 (the default) means one per available processor.
static SCAN_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads one query's series scans may use at once (0: one per processor; 1: serial).
pub fn set_scan_threads(threads: usize) {
    SCAN_THREADS.store(threads, Ordering::Relaxed);
}

/// The processors this process may use, asked once (the answer reads cgroup files, which costs more
/// than a query answered from summaries).
fn processors() -> usize {
    static PROCESSORS: OnceLock<usize> = OnceLock::new();
    *PROCESSORS
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// How many scans of `series` to run at once for a query under `control`.
pub(crate) fn workers(control: &QueryControlRef, series: &[SeriesInfo]) -> usize {
    let threads = match SCAN_THREADS.load(Ordering::Relaxed) {
        0 => processors(),
        n => n,
    };
    let per_scan = series
        .iter()
        .map(|s| columnar::chunk_bytes(CHUNK_POINTS, s.data_type))
        .max()
        .unwrap_or(1)
        .max(1);
    threads
        .min(series.len())
        .min(control.available() / per_scan)
        .max(1)
}

/// Adds the points of each of `series` in `range` to `accs[k][i]` (`i` the series' position) for
/// every window `k` of `wins` containing them. Series that summaries answer (nearly) alone are folded
/// here; those whose scans read at least `task_points` points are tasks that this thread and helpers
/// on the runtime's blocking pool take in turn, `workers` at a time, when there are several and a
/// runtime to run them (otherwise they are folded here, in turn).
/// Returns the budget charges of the accumulators' growth (MODE's counts), which must live as long
/// as the accumulators.
pub(crate) fn aggregate_series(
    engine: &EngineRef,
    control: &QueryControlRef,
    series: &[SeriesInfo],
    range: (i64, i64),
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    (workers, task_points): (usize, u64),
) -> Result<Vec<StateMemory>> {
    let mut here = StateMemory::new(control, 0)?;
    // Each series' pieces; those that read many points from storage are the tasks.
    let mut tasks: Vec<(usize, Vec<SeriesPiece>)> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        control.check()?;
        let pieces = columnar::series_pieces(engine, control, s, range);
        let summaries = columnar::takes_summaries(accs, i);
        if columnar::worth_a_task(&pieces, wins, summaries, task_points) {
            tasks.push((i, pieces));
        } else {
            columnar::fold_pieces(engine, control, s, &pieces, wins, accs, i, &mut here)?;
        }
    }
    let pool = tokio::runtime::Handle::try_current().ok();
    let Some(pool) = pool.filter(|_| tasks.len() >= 2 && workers >= 2) else {
        for (i, pieces) in &tasks {
            if let Some(s) = series.get(*i) {
                columnar::fold_pieces(engine, control, s, pieces, wins, accs, *i, &mut here)?;
            }
        }
        return Ok(vec![here]);
    };
    let mut states = scan_on_pool(&pool, engine, control, series, tasks, wins, accs, workers)?;
    states.push(here);
    Ok(states)
}

/// One series to fold: its position, its pieces, and its accumulators (one per window), taken out of
/// the page's table.
type Task = (usize, SeriesInfo, Vec<SeriesPiece>, Vec<Vec<Acc>>);

/// What folding a task hands back: its series' position, its accumulators, and its budget charge.
type Folded = (usize, Vec<Vec<Acc>>, Result<StateMemory>);

/// Folds a task's pieces into its accumulators.
fn fold(engine: &EngineRef, control: &QueryControlRef, wins: &[Window], task: Task) -> Folded {
    let (i, s, pieces, mut column) = task;
    let folded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut state = StateMemory::new(control, 0)?;
        columnar::fold_pieces(
            engine,
            control,
            &s,
            &pieces,
            wins,
            &mut column,
            0,
            &mut state,
        )?;
        Ok(state)
    }))
    .unwrap_or_else(|_| {
        Err(EngineError::Internal(format!(
            "the scan of {} panicked",
            s.path
        )))
    });
    (i, column, folded)
}

/// Folds each task's pieces into its series' accumulators, `workers` at a time: up to `workers - 1`
/// helpers on the runtime's blocking pool and this thread take the tasks from one queue. This thread
/// works too, so the query progresses even when the pool has no thread to spare (a helper that starts
/// late finds the queue empty); it returns once every task taken is folded, so the accumulators are
/// all back. After a failure no further task is taken, and those taken stop at their next check when
/// the query is cancelled or past its deadline.
#[allow(clippy::too_many_arguments)]
fn scan_on_pool(
    pool: &tokio::runtime::Handle,
    engine: &EngineRef,
    control: &QueryControlRef,
    series: &[SeriesInfo],
    tasks: Vec<(usize, Vec<SeriesPiece>)>,
    wins: &[Window],
    accs: &mut [Vec<Acc>],
    workers: usize,
) -> Result<Vec<StateMemory>> {
    let queue: VecDeque<Task> = tasks
        .into_iter()
        .filter_map(|(i, pieces)| {
            let s = series.get(i)?.clone();
            let column = accs
                .iter_mut()
                .map(|window| vec![window.get_mut(i).map(std::mem::take).unwrap_or_default()])
                .collect();
            Some((i, s, pieces, column))
        })
        .collect();
    let mut expected = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let poisoned = || EngineError::Internal("the queue of series scans was poisoned".into());
    let wins: Arc<[Window]> = wins.into();
    let (done, finished) = mpsc::channel::<Folded>();
    for _ in 1..workers.min(expected) {
        let (queue, engine, control, wins, done) = (
            queue.clone(),
            engine.clone(),
            control.clone(),
            wins.clone(),
            done.clone(),
        );
        pool.spawn_blocking(move || loop {
            let task = match queue.lock() {
                Ok(mut queue) => queue.pop_front(),
                Err(_) => None,
            };
            let Some(task) = task else {
                break;
            };
            // The receiver waits for every task taken, so it is there to take this.
            let _ = done.send(fold(&engine, &control, &wins, task));
        });
    }
    drop(done);
    let mut states = Vec::new();
    let mut first_error: Option<EngineError> = None;
    while expected > 0 {
        let mine = if first_error.is_none() {
            queue.lock().map_err(|_| poisoned())?.pop_front()
        } else {
            // Failed: nothing more is started; what is queued is not waited for.
            let mut queue = queue.lock().map_err(|_| poisoned())?;
            expected -= queue.len();
            queue.clear();
            None
        };
        let (i, column, folded) = match mine {
            Some(task) => fold(engine, control, &wins, task),
            None if expected == 0 => break,
            None => finished
                .recv()
                .map_err(|_| EngineError::Internal("a series scan task was lost".into()))?,
        };
        expected -= 1;
        for (window, mut acc) in accs.iter_mut().zip(column) {
            if let (Some(slot), Some(acc)) = (window.get_mut(i), acc.pop()) {
                *slot = acc;
            }
        }
        match folded {
            Ok(state) => states.push(state),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(states),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::limits::{QueryControl, QueryLimits};
    use crate::query::aggregate::AggFn;
    use crate::query::testing::TestDb;
    use crate::query::windows::Windows;

    /// Five series with points in files (one overwritten and partly deleted after its flush), in the
    /// memtable, and out of time order.
    fn db() -> TestDb {
        let db = TestDb::open();
        for d in 0..5 {
            let values: Vec<String> = (0..400)
                .map(|t| format!("({}, {})", t * 3 + d, (t * 7 + d * 13) % 101))
                .collect();
            db.run(&format!(
                "INSERT INTO root.sg.d{d}(time, s) VALUES {}",
                values.join(", ")
            ));
        }
        db.run(
            "FLUSH;
             INSERT INTO root.sg.d1(time, s) VALUES (5, 1000), (2000, -3), (1500, 7), (1499, 8);
             DELETE FROM root.sg.d2.s WHERE time >= 100 and time <= 300;
             INSERT INTO root.sg.d3(time, s) VALUES (3000, 1), (2999, 2)",
        );
        db
    }

    fn fold(
        db: &TestDb,
        wins: &[Window],
        workers: Option<usize>,
        control: &QueryControlRef,
    ) -> Result<Vec<Vec<Acc>>> {
        let series = db
            .engine
            .schema_read()
            .unwrap()
            .matching_series(&duet_parser::parse_path("root.sg.**").unwrap().0);
        assert_eq!(series.len(), 5);
        let mut fresh = vec![Acc::default(); series.len()];
        fresh[4] = Acc::counting_values();
        let mut accs = vec![fresh; wins.len()];
        let range = (0, 3100);
        match workers {
            Some(w) => {
                // In the runtime's context, whose blocking pool takes the scans.
                let _runtime = db.runtime().enter();
                aggregate_series(&db.engine, control, &series, range, wins, &mut accs, (w, 1))?;
            }
            None => {
                let mut state = StateMemory::new(control, 0)?;
                for (i, s) in series.iter().enumerate() {
                    columnar::aggregate_series(
                        &db.engine, control, s, range, wins, &mut accs, i, &mut state,
                    )?;
                }
            }
        }
        Ok(accs)
    }

    #[test]
    fn parallel_scans_leave_the_accumulators_the_serial_path_leaves() {
        let db = db();
        let windows = Windows::Grouped {
            start: 0,
            end: 3100,
            interval: 70,
            step: 70,
            left_open: false,
            count: 45,
        };
        let wins: Vec<Window> = (0..windows.len()).map(|k| windows.get(k)).collect();
        let control = QueryControl::new(QueryLimits::default());
        let serial = fold(&db, &wins, None, &control).unwrap();
        for workers in [2, 3, 8] {
            let parallel = fold(&db, &wins, Some(workers), &control).unwrap();
            for (k, (a, b)) in serial.iter().zip(&parallel).enumerate() {
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    for f in [
                        AggFn::Count,
                        AggFn::Sum,
                        AggFn::Avg,
                        AggFn::MinValue,
                        AggFn::MaxValue,
                        AggFn::FirstValue,
                        AggFn::LastValue,
                        AggFn::MinTime,
                        AggFn::MaxTime,
                        AggFn::Variance,
                    ] {
                        assert_eq!(a.result(f), b.result(f), "window {k}, series {i}, {f:?}");
                    }
                }
            }
            assert_eq!(
                serial[0][4].result(AggFn::Mode),
                parallel[0][4].result(AggFn::Mode)
            );
        }
        // Every visible point was folded once: d0's 400, d2's 400 less the 67 deleted.
        let total = |i: usize| -> i64 {
            serial
                .iter()
                .map(|w| match w[i].result(AggFn::Count) {
                    super::super::expr::Val::Int(n) => n,
                    _ => 0,
                })
                .sum()
        };
        assert_eq!(total(0), 400);
        assert_eq!(total(2), 333);
    }

    #[test]
    fn a_cancelled_query_stops_its_parallel_scans() {
        let db = db();
        let control = QueryControl::new(QueryLimits::default());
        control.cancel();
        let wins = [(0, 0, 3100)];
        let error = fold(&db, &wins, Some(3), &control).unwrap_err();
        assert!(matches!(error, EngineError::Cancelled(_)), "{error:?}");
        // Whatever the scans charged is given back.
        assert_eq!(control.used(), 0);
    }

    #[test]
    fn workers_are_bounded_by_series_and_budget() {
        let series = crate::query::testing::schema(&[(
            "root.sg.d1",
            &[
                ("a", duet_proto::types::DataType::Double),
                ("b", duet_proto::types::DataType::Double),
            ],
        )])
        .matching_series(&duet_parser::parse_path("root.sg.d1.*").unwrap().0);
        let chunk = columnar::chunk_bytes(CHUNK_POINTS, duet_proto::types::DataType::Double);
        let roomy = QueryControl::new(QueryLimits::default());
        assert!(workers(&roomy, &series) <= 2);
        assert_eq!(workers(&roomy, &series[..1]), 1);
        // Room for one chunk only: one scan at a time.
        let tight = QueryControl::new(QueryLimits {
            memory_bytes: chunk + chunk / 2,
            timeout: None,
        });
        assert_eq!(workers(&tight, &series), 1);
    }

    #[test]
    fn scans_progress_when_the_pool_has_no_thread_to_spare() {
        let db = db();
        // A pool of one blocking thread, held by another task for the whole query.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (taken, pool_busy) = std::sync::mpsc::channel::<()>();
        runtime.spawn_blocking(move || {
            taken.send(()).unwrap();
            let _ = held.recv();
        });
        pool_busy.recv().unwrap();
        let wins = [(0, 0, 1000), (1001, 1001, 3100)];
        let control = QueryControl::new(QueryLimits::default());
        let serial = fold(&db, &wins, None, &control).unwrap();
        let series = db
            .engine
            .schema_read()
            .unwrap()
            .matching_series(&duet_parser::parse_path("root.sg.**").unwrap().0);
        let mut fresh = vec![Acc::default(); series.len()];
        fresh[4] = Acc::counting_values();
        let mut accs = vec![fresh; wins.len()];
        {
            let _runtime = runtime.enter();
            aggregate_series(
                &db.engine,
                &control,
                &series,
                (0, 3100),
                &wins,
                &mut accs,
                (4, 1),
            )
            .unwrap();
        }
        for (a, b) in serial.iter().zip(&accs) {
            for (a, b) in a.iter().zip(b) {
                assert_eq!(a.result(AggFn::Sum), b.result(AggFn::Sum));
                assert_eq!(a.result(AggFn::Count), b.result(AggFn::Count));
            }
        }
        release.send(()).unwrap();
    }
}
