"""Measures the queries of issue 11 on Duet, PostgreSQL 15 and DuckDB over the same data, in one run.

Started by run.sh (which provides duetd, PostgreSQL and the environment). The data: ROWS rows, one per
second from t = 0 ms, of COLUMNS DOUBLE series s0..s9 drawn uniformly from [0, 1) with a fixed seed.
Duet is measured twice, on two duetd processes loaded alike: one keeps the points in its memtable, the
other is flushed (Parquet) right after its load; each query runs on the two alternately, run by run, so
both see the same machine state (measured one phase after the other, right after the loads and after
the flush, the memtable phase looked 0.1–0.3 ms slower on every small query, which the engine in process
and duetd's CPU time per query do not show). Each query runs at least REPEATS times per engine after
one warm-up, and more while its runs add up to less than MIN_SAMPLE_MS (at most MAX_REPEATS), so
sub-millisecond medians rest on enough runs; the report gives the median and the min–max in ms, and
each query's result on every engine so a reader can see they agree.
"""

import io
import json
import os
import statistics
import subprocess
import tempfile
import time

import duckdb
import numpy as np
import pandas as pd
import psycopg2
from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.NumpyTablet import NumpyTablet

ROWS = int(os.environ.get("ROWS", "2000000"))
COLUMNS = int(os.environ.get("COLUMNS", "10"))
REPEATS = int(os.environ.get("REPEATS", "5"))
REPEATS = max(REPEATS, 1)
MIN_SAMPLE_MS = 300.0
MAX_REPEATS = 200
DUET_PORT = int(os.environ["DUET_PORT"])  # flushed after its load
DUET_MEM_PORT = int(os.environ["DUET_MEM_PORT"])  # keeps its points in the memtable
PG_PORT = int(os.environ["PG_PORT"])
REPORT_PATH = os.environ["REPORT_PATH"]
DUET_REV = os.environ.get("DUET_REV", "unknown")

STEP_MS = 1000
END = ROWS * STEP_MS
SLICE = (END // 2, END // 2 + END // 100)  # a 1 % time slice
NAMES = [f"s{i}" for i in range(COLUMNS)]

# (label, Duet SQL, PostgreSQL / DuckDB SQL)
QUERIES = [
    (
        f"count(s0) over {ROWS:,} points",
        "select count(s0) from root.bench.d",
        "select count(s0) from bench",
    ),
    (
        f"4 aggregates over 4 series ({4 * ROWS:,} points)",
        "select count(s0), avg(s1), max_value(s2), min_value(s3) from root.bench.d",
        "select count(s0), avg(s1), max(s2), min(s3) from bench",
    ),
    (
        "avg, max_value group by ([0, end), 1h)",
        f"select avg(s0), max_value(s0) from root.bench.d group by ([0, {END}), 1h)",
        "select time - time % 3600000 as w, avg(s0), max(s0) from bench group by w order by w",
    ),
    (
        "1 % time slice, count + avg",
        f"select count(s0), avg(s0) from root.bench.d where time >= {SLICE[0]} and time < {SLICE[1]}",
        f"select count(s0), avg(s0) from bench where time >= {SLICE[0]} and time < {SLICE[1]}",
    ),
    (
        "count(s0) where s1 > 0.999",
        "select count(s0) from root.bench.d where s1 > 0.999",
        "select count(s0) from bench where s1 > 0.999",
    ),
    (
        "select last s0",
        "select last s0 from root.bench.d",
        "select time, s0 from bench order by time desc limit 1",
    ),
]


def data():
    rng = np.random.default_rng(11)
    times = np.arange(ROWS, dtype=np.int64) * STEP_MS
    values = [rng.random(ROWS) for _ in range(COLUMNS)]
    return times, values


def enough(samples):
    """Whether a query has run enough times: REPEATS, and MIN_SAMPLE_MS of runs unless MAX_REPEATS."""
    return len(samples) >= REPEATS and (sum(samples) >= MIN_SAMPLE_MS or len(samples) >= MAX_REPEATS)


def timed_runs(runs):
    """Runs each of `runs` once to warm up, then all of them in turn until each has run `enough`, in
    reversed order every other round (so none always runs first: the second run of a round finds the
    client warm from the first); for each, the median, min and max in ms and its last result."""
    results = [run() for run in runs]
    samples = [[] for _ in runs]
    order = list(range(len(runs)))
    while not all(enough(s) for s in samples):
        for i in order:
            started = time.perf_counter()
            results[i] = runs[i]()
            samples[i].append((time.perf_counter() - started) * 1000)
        order.reverse()
    return [(statistics.median(s), min(s), max(s), r) for s, r in zip(samples, results)]


def timed(run):
    """Median, min and max in ms of `enough` runs after one warm-up, and the last result."""
    return timed_runs([run])[0]


def duet_session(port):
    session = Session("127.0.0.1", port, "root", "root", fetch_size=10000)
    for _ in range(100):
        try:
            session.open(False)
            return session
        except Exception:  # duetd still starting
            time.sleep(0.1)
    session.open(False)
    return session


def duet_query(session, sql):
    """Rows as Python values, as psycopg2's fetchall gives PostgreSQL's (a DataFrame would cost more
    than a small query itself)."""

    def run():
        rows = []
        with session.execute_query_statement(sql) as ds:
            while ds.has_next():
                record = ds.next()
                rows.append([record.get_timestamp()] + [
                    f.get_object_value(f.get_data_type()) if f.get_data_type() is not None else None
                    for f in record.get_fields()
                ])
        return rows

    return run


def load_duet(session, times, values):
    session.execute_non_query_statement("create database root.bench")
    batch = 50_000
    for start in range(0, ROWS, batch):
        end = min(start + batch, ROWS)
        tablet = NumpyTablet(
            "root.bench.d",
            NAMES,
            [TSDataType.DOUBLE] * COLUMNS,
            [v[start:end] for v in values],
            times[start:end],
        )
        session.insert_tablet(tablet)


def load_pg(times, values):
    conn = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres")
    conn.autocommit = True
    cur = conn.cursor()
    cols = ", ".join(f"{n} double precision" for n in NAMES)
    cur.execute(f"create table bench (time bigint primary key, {cols})")
    # COPY in slices of a million rows: the CSV text of 20 M rows would be gigabytes in memory.
    slice_rows = 1_000_000
    for start in range(0, ROWS, slice_rows):
        end = min(start + slice_rows, ROWS)
        frame = pd.DataFrame({"time": times[start:end], **{n: v[start:end] for n, v in zip(NAMES, values)}})
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False)
        buf.seek(0)
        cur.copy_expert("copy bench from stdin with (format csv)", buf)
    cur.execute("vacuum analyze bench")
    # Write the load's dirty pages now rather than during the measurements.
    cur.execute("checkpoint")
    return conn


def pg_query(conn, sql):
    def run():
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    return run


def load_duckdb(times, values):
    con = duckdb.connect()
    frame = pd.DataFrame({"time": times, **{n: v for n, v in zip(NAMES, values)}})
    con.register("frame", frame)
    con.execute("create table bench as select * from frame")
    con.unregister("frame")
    return con


def duckdb_query(con, sql):
    return lambda: con.execute(sql).fetchall()


RAW_POINTS = min(1_000_000, ROWS)
RAW_DUET = f"select s0 from root.bench.d where time < {RAW_POINTS * STEP_MS}"
RAW_SQL = f"select time, s0 from bench where time < {RAW_POINTS * STEP_MS}"


def rust_client(sql, runs, port=DUET_PORT):
    """`sql` through Duet's Rust client `runs` times after a warm-up (the example prints the median,
    min and max in ms and the points of a run as JSON)."""
    out = subprocess.run(
        [os.environ["RAW_FETCH_BIN"], str(port), sql, str(runs)],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out)
    return r["median_ms"], r["min_ms"], r["max_ms"], r["points"]


def raw_duet():
    """Duet's raw fetch through its Rust client, memtable and flushed alternately (one timed run after
    a warm-up per call); (flushed, memtable) as median, min, max and points."""
    samples = {DUET_PORT: [], DUET_MEM_PORT: []}
    points = 0
    for round_ in range(REPEATS):
        # Each first in every other round, as in `timed_runs`.
        for port, s in sorted(samples.items(), reverse=round_ % 2 == 1):
            median, _, _, points = rust_client(RAW_DUET, 1, port)
            s.append(median)
    return tuple((statistics.median(s), min(s), max(s), points)
                 for s in (samples[DUET_PORT], samples[DUET_MEM_PORT]))


LAST_DUET = "select last s0 from root.bench.d"
LAST_SQL = "select time, s0 from bench order by time desc limit 1"
LAST_RUNS = 1000


def last_duet_native():
    """SELECT LAST through Duet's Rust client, LAST_RUNS times: one round trip, as pgbench's, since the
    client skips `closeOperation` for a result whose last page came with the answer (the server has
    released it then, as IoTDB's does)."""
    return rust_client(LAST_DUET, LAST_RUNS)


def last_pg_native():
    """PostgreSQL's `order by time desc limit 1` through pgbench (C, libpq, one round trip): REPEATS runs
    of LAST_RUNS transactions, each run's latency average (pgbench's per-transaction log is not usable
    for sub-millisecond latencies: it reuses a cached clock)."""
    averages = []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "last.sql")
        with open(script, "w") as f:
            f.write(LAST_SQL + ";\n")
        for _ in range(REPEATS):
            out = subprocess.run(
                [os.environ["PGBENCH_BIN"], "-n", "-t", str(LAST_RUNS), "-f", script, "-h", "127.0.0.1",
                 "-p", str(PG_PORT), "-U", "postgres", "postgres"],
                check=True, capture_output=True, text=True,
            ).stdout
            averages += [float(line.split("=")[1].split()[0]) for line in out.splitlines()
                         if line.startswith("latency average")]
    return statistics.median(averages), min(averages), max(averages), 1


def raw_pg():
    """PostgreSQL's raw fetch through psql's COPY (C, text protocol) to /dev/null, process included."""
    cmd = [os.environ["PSQL_BIN"], "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres",
           "-qAtc", f"copy ({RAW_SQL}) to stdout"]

    def run():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return RAW_POINTS

    return timed(run)


def raw_duckdb(con):
    def run():
        return len(con.execute(RAW_SQL).fetchnumpy()["s0"])

    return timed(run)


def data_files(data_dir):
    """How many Parquet data files a Duet data directory holds now."""
    found = 0
    for _, _, names in os.walk(data_dir):
        found += sum(1 for n in names if n.endswith(".parquet"))
    return found


def short(result):
    text = repr(result[:2]) if isinstance(result, list) else repr(result)
    return text if len(text) <= 60 else text[:57] + "..."


def main():
    load_at_start = os.getloadavg()[1]
    times, values = data()
    session = duet_session(DUET_PORT)
    mem_session = duet_session(DUET_MEM_PORT)
    started = time.perf_counter()
    load_duet(session, times, values)
    duet_load_s = time.perf_counter() - started
    load_duet(mem_session, times, values)
    session.execute_non_query_statement("flush")
    started = time.perf_counter()
    pg = load_pg(times, values)
    pg_load_s = time.perf_counter() - started
    duck = load_duckdb(times, values)

    rows = []
    pairs = [timed_runs([duet_query(mem_session, q[1]), duet_query(session, q[1])]) for q in QUERIES]
    memtable = [p[0] for p in pairs]
    flushed = [p[1] for p in pairs]
    raw_flushed, raw_memtable = raw_duet()
    # Counted after the measurements, so a flush the memtable instance made meanwhile would show.
    files_before_flush = data_files(os.environ["DUET_MEM_DATA_DIR"])
    files_after_flush = data_files(os.environ["DUET_DATA_DIR"])
    postgres = [timed(pg_query(pg, q[2])) for q in QUERIES]
    ducks = [timed(duckdb_query(duck, q[2])) for q in QUERIES]
    raw_row = (f"raw fetch of {RAW_POINTS:,} points", raw_flushed, raw_memtable, raw_pg(), raw_duckdb(duck))
    last_native = last_duet_native()
    last_native_pg = last_pg_native()
    for i, q in enumerate(QUERIES):
        rows.append((q[0], flushed[i], memtable[i], postgres[i], ducks[i]))
    session.close()
    mem_session.close()
    load_at_end = os.getloadavg()[1]

    def ms(x):
        # Sub-millisecond figures keep three decimals, so 0.04 and 0.14 ms stay apart.
        return f"{x:,.1f}" if x >= 1 else f"{x:.3f}"

    def cell(m):
        return f"{ms(m[0])} ({ms(m[1])}–{ms(m[2])})"

    pairing = ("The two Duet columns come from two duetd processes loaded alike and measured alternately, "
               "run by run: one flushed after its load, the other not. ")
    if files_before_flush == 0:
        memtable_header = "Duet in memtable"
        memtable_note = (pairing + "The unflushed one held every point in its memtable (no data file); the "
                         f"flushed one held them in {files_after_flush} data files.")
    else:
        memtable_header = "Duet before FLUSH"
        memtable_note = (pairing + "The data did not fit in one memtable: the unflushed one had written "
                         f"{files_before_flush} data files, so that column measures files and memtable "
                         f"together; the flushed one held {files_after_flush} data files.")
    ratios = [r[1][0] / r[3][0] for r in rows if r[3][0] > 0]
    geo = statistics.geometric_mean(ratios) if ratios else float("nan")
    lines = [
        "# Query benchmark (issue 11): Duet vs PostgreSQL 15 vs DuckDB",
        "",
        f"Duet {DUET_REV}; {ROWS:,} rows × {COLUMNS} DOUBLE series ({ROWS * COLUMNS:,} points), one row a "
        f"second; at least {REPEATS} runs per query after a warm-up (more for fast queries: until "
        f"{MIN_SAMPLE_MS:.0f} ms of runs, at most {MAX_REPEATS}); milliseconds, median (min–max). Same "
        "machine, same run. Duet loaded through the official Python client's tablets "
        f"({duet_load_s:.1f} s), PostgreSQL through COPY into a table with a primary key on time "
        f"({pg_load_s:.1f} s), DuckDB in memory. Duet's SELECT LAST vs `order by time desc limit 1`. "
        f"The machine's 5-minute load average was {load_at_start:.1f} at the start and {load_at_end:.1f} at "
        f"the end, on {os.cpu_count()} processors (other work running on it slows every engine alike).",
        "",
        memtable_note,
        "",
        "| query | Duet flushed | " + memtable_header + " | PostgreSQL | DuckDB | Duet flushed / PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, f, m, p, d in rows:
        ratio = f[0] / p[0] if p[0] > 0 else float("nan")
        lines.append(f"| {label} | {cell(f)} | {cell(m)} | {cell(p)} | {cell(d)} | {ratio:.2f} |")
    label, f, m, p, d = raw_row
    ratio = f[0] / p[0] if p[0] > 0 else float("nan")
    lines += [
        "",
        "Raw fetch, outside the geometric mean (each engine through its own native client: Duet's Rust "
        "client, `psql` COPY to /dev/null including its start-up, DuckDB's `fetchnumpy`):",
        "",
        "| query | Duet flushed | " + memtable_header + " | PostgreSQL | DuckDB | Duet flushed / PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {label} | {cell(f)} | {cell(m)} | {cell(p)} | {cell(d)} | {ratio:.2f} |",
        "",
        f"Duet's raw fetch, flushed: {RAW_POINTS / (f[0] / 1000) / 1e6:.1f} M points/s "
        "(issue 11's target: ≥ 10 M points/s).",
        "",
        "SELECT LAST through native clients, flushed: the table above measures it through "
        "each engine's Python client, where the official IoTDB client's own work dominates (it decodes the "
        "result into a pandas frame and always makes a second round trip, `closeOperation`; psycopg2 makes "
        "one). Here Duet's Rust client (execute and read: one round trip, as the server released the "
        f"finished result; the median of {LAST_RUNS:,} runs) against pgbench "
        f"(libpq; the median of {REPEATS} runs' latency averages over {LAST_RUNS:,} transactions each):",
        "",
        "| query | Duet, Rust client | PostgreSQL, pgbench | Duet / PostgreSQL |",
        "|---|---:|---:|---:|",
        f"| select last s0 | {cell(last_native)} | {cell(last_native_pg)} | "
        f"{last_native[0] / last_native_pg[0]:.2f} |",
    ]
    lines += [
        "",
        f"Geometric mean of Duet flushed / PostgreSQL: **{geo:.2f}** (issue 11's target: ≤ 0.25).",
        "",
        "Results (first rows), to check the engines agree:",
        "",
    ]
    for i, (label, f, m, p, d) in enumerate(rows):
        lines.append(f"- {label}: Duet `{short(f[3])}`, PostgreSQL `{short(p[3])}`, DuckDB `{short(d[3])}`")
    report = "\n".join(lines) + "\n"
    with open(REPORT_PATH, "w") as out:
        out.write(report)
    print(report)


if __name__ == "__main__":
    main()
