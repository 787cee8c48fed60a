#!/usr/bin/env bash
# Duet query benchmark, side by side with PostgreSQL 15 and DuckDB (issue 11's baseline). One command:
#
#   scripts/bench/query/run.sh
#
# Builds duetd (release), starts it and a throwaway PostgreSQL cluster under /tmp, loads the same data
# into Duet (IoTDB tablets through the official Python client), PostgreSQL (COPY, primary key on time)
# and DuckDB (in memory), runs each query at least REPEATS times per engine — Duet on two processes loaded
# alike, one keeping the data in its memtable and one flushed to Parquet, measured alternately — and
# writes medians and min–max to scripts/bench/query/last-report.md.
# Parameters (environment, defaults in brackets): ROWS [2000000] rows of COLUMNS [10] DOUBLE series, one
# row per second (ROWS=20000000 with REPORT_FILE=last-report-200m.md for the 200 M-point run); REPEATS [5]; MEMTABLE_CAP_BYTES [4 GiB]; PG_BIN [/usr/lib/postgresql/15/bin]; SKIP_DUETD_BUILD [0]; KEEP_WORK_DIR [0].
# The raw fetch of 1 M points is measured apart from the Python queries: Duet through its own Rust client
# (crates/cli/examples/raw_fetch.rs), PostgreSQL through psql's COPY to /dev/null, DuckDB's fetchnumpy;
# so is SELECT LAST through native clients (the same Rust client against pgbench's latency log).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_NAME=query-bench
source "$HERE/../common.sh"
ROOT="$BENCH_ROOT"
export ROWS="${ROWS:-2000000}" COLUMNS="${COLUMNS:-10}" REPEATS="${REPEATS:-5}"

require_pg
build_duetd
say "building the raw-fetch client (cargo build --release -p duet-cli --example raw_fetch)"
(cd "$ROOT" && cargo build --release -p duet-cli --example raw_fetch) || die "raw_fetch build failed"
RAW_FETCH_BIN="$(bench_target_dir)/release/examples/raw_fetch"

# The measuring script's packages, pinned, in a venv of its own.
VENV="$ROOT/.venv-bench-query"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

WORK_DIR="$(mktemp -d /tmp/duet-query-bench.XXXXXX)"
chmod 755 "$WORK_DIR"
DUETD_PIDS=()
cleanup() {
    local rc=$? pid
    set +e
    for pid in "${DUETD_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"; wait "$pid" 2>/dev/null
        fi
    done
    stop_pgs
    finish_work_dir $rc
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT="$(free_port)"
start_pg main "$PG_PORT"

# Two duetd processes on free ports, each with its own data directory: bench.py flushes the first after its
# load, keeps the second's points in memory, and measures them alternately. Their memtable is made large
# enough to hold the whole data set (about 40 bytes a point with its bookkeeping) when that fits under
# MEMTABLE_CAP_BYTES [4 GiB], so the "in memtable" column measures the memtable alone; bench.py counts the
# data files the unflushed process wrote and says so in the report when some were written anyway.
DATA_BYTES=$((ROWS * COLUMNS * 40))
MEMTABLE_CAP_BYTES="${MEMTABLE_CAP_BYTES:-4294967296}"
if [ "$DATA_BYTES" -le "$MEMTABLE_CAP_BYTES" ]; then
    echo "memtable_bytes = $((DATA_BYTES + (64 << 20)))" >"$WORK_DIR/duetd.toml"
else
    say "the data ($DATA_BYTES bytes in memory) exceeds MEMTABLE_CAP_BYTES: default memtables, flushed as they fill"
    : >"$WORK_DIR/duetd.toml"
fi
DUET_PORT="$(free_port)"
"$DUETD_BIN" --config "$WORK_DIR/duetd.toml" --rpc-address 127.0.0.1 --rpc-port "$DUET_PORT" --metrics-port 0 \
    --data-dir "$WORK_DIR/duet" --log-level warn >"$WORK_DIR/duetd.log" 2>&1 &
DUETD_PIDS+=($!)
DUET_MEM_PORT="$(free_port)"
while [ "$DUET_MEM_PORT" = "$DUET_PORT" ]; do DUET_MEM_PORT="$(free_port)"; done
"$DUETD_BIN" --config "$WORK_DIR/duetd.toml" --rpc-address 127.0.0.1 --rpc-port "$DUET_MEM_PORT" --metrics-port 0 \
    --data-dir "$WORK_DIR/duet-mem" --log-level warn >"$WORK_DIR/duetd-mem.log" 2>&1 &
DUETD_PIDS+=($!)

DUET_REV="$(duet_rev)"
say "loading and querying (work dir $WORK_DIR)"
DUET_DATA_DIR="$WORK_DIR/duet" DUET_PORT="$DUET_PORT" \
    DUET_MEM_DATA_DIR="$WORK_DIR/duet-mem" DUET_MEM_PORT="$DUET_MEM_PORT" PG_PORT="$PG_PORT" DUET_REV="$DUET_REV" REPORT_PATH="$HERE/${REPORT_FILE:-last-report.md}" \
    RAW_FETCH_BIN="$RAW_FETCH_BIN" PSQL_BIN="$PG_BIN/psql" PGBENCH_BIN="$PG_BIN/pgbench" "$VENV/bin/python" "$HERE/bench.py"
say "done; report in $HERE/${REPORT_FILE:-last-report.md}"
