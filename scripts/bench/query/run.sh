#!/usr/bin/env bash
# Duet query benchmark, side by side with PostgreSQL 15 and DuckDB (issue 11's baseline). One command:
#
#   scripts/bench/query/run.sh
#
# Builds duetd (release), starts it and a throwaway PostgreSQL cluster under /tmp, loads the same data
# into Duet (IoTDB tablets through the official Python client), PostgreSQL (COPY, primary key on time)
# and DuckDB (in memory), runs each query REPEATS times per engine — Duet with the data in its memtable
# and again after FLUSH (Parquet) — and writes medians and min–max to scripts/bench/query/last-report.md.
# Parameters (environment, defaults in brackets): ROWS [2000000] rows of COLUMNS [10] DOUBLE series, one
# row per second (ROWS=20000000 with REPORT_FILE=last-report-200m.md for the 200 M-point run); REPEATS [5]; MEMTABLE_CAP_BYTES [4 GiB]; PG_BIN [/usr/lib/postgresql/15/bin]; SKIP_DUETD_BUILD [0]; KEEP_WORK_DIR [0].
# The raw fetch of 1 M points is measured apart from the Python queries: Duet through its own Rust client
# (crates/cli/examples/raw_fetch.rs), PostgreSQL through psql's COPY to /dev/null, DuckDB's fetchnumpy.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export ROWS="${ROWS:-2000000}" COLUMNS="${COLUMNS:-10}" REPEATS="${REPEATS:-5}"

say() { echo "[query-bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[query-bench] ERROR: $*" >&2; exit 1; }

[ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the cluster as"
if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$ROOT/target")"
if [ "${SKIP_DUETD_BUILD:-0}" = 1 ]; then
    say "SKIP_DUETD_BUILD=1: using the existing $TARGET_DIR/release/duetd"
else
    say "building duetd (cargo build --release -p duet-server)"
    (cd "$ROOT" && cargo build --release -p duet-server) || die "duetd build failed"
fi
say "building the raw-fetch client (cargo build --release -p duet-cli --example raw_fetch)"
(cd "$ROOT" && cargo build --release -p duet-cli --example raw_fetch) || die "raw_fetch build failed"
RAW_FETCH_BIN="$TARGET_DIR/release/examples/raw_fetch"
DUETD_BIN="$TARGET_DIR/release/duetd"
[ -x "$DUETD_BIN" ] || die "no duetd binary at $DUETD_BIN"

# The measuring script's packages, pinned, in a venv of its own.
VENV="$ROOT/.venv-bench-query"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

WORK_DIR="$(mktemp -d /tmp/duet-query-bench.XXXXXX)"
chmod 755 "$WORK_DIR"
PGDATA="$WORK_DIR/pg"
PG_STARTED=0
DUETD_PID=""
cleanup() {
    local rc=$?
    set +e
    if [ -n "$DUETD_PID" ] && kill -0 "$DUETD_PID" 2>/dev/null; then
        kill -TERM "$DUETD_PID"; wait "$DUETD_PID" 2>/dev/null
    fi
    if [ "$PG_STARTED" = 1 ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
    fi
    if [ $rc -ne 0 ]; then
        for f in "$WORK_DIR"/*.log; do [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }; done
    fi
    if [ "${KEEP_WORK_DIR:-0}" = 1 ]; then say "kept $WORK_DIR"; else rm -rf "$WORK_DIR"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL 15: a fresh cluster with default durability.
PG_PORT="$(free_port)"
install -d -o postgres -g postgres -m 700 "$PGDATA"
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-sync >"$WORK_DIR/initdb.log" 2>&1 \
    || die "initdb failed"
touch "$WORK_DIR/pg.log"; chown postgres "$WORK_DIR/pg.log"
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK_DIR/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1" start >/dev/null \
    || die "PostgreSQL did not start"
PG_STARTED=1

# duetd on a free port, its own data directory. Its memtable is made large enough to hold the whole data
# set (about 40 bytes a point with its bookkeeping) when that fits under MEMTABLE_CAP_BYTES [4 GiB], so the
# "in memtable" column measures the memtable alone; bench.py counts the data files present before FLUSH
# and says so in the report when some were written anyway.
DUET_PORT="$(free_port)"
DATA_BYTES=$((ROWS * COLUMNS * 40))
MEMTABLE_CAP_BYTES="${MEMTABLE_CAP_BYTES:-4294967296}"
if [ "$DATA_BYTES" -le "$MEMTABLE_CAP_BYTES" ]; then
    echo "memtable_bytes = $((DATA_BYTES + (64 << 20)))" >"$WORK_DIR/duetd.toml"
else
    say "the data ($DATA_BYTES bytes in memory) exceeds MEMTABLE_CAP_BYTES: default memtables, flushed as they fill"
    : >"$WORK_DIR/duetd.toml"
fi
"$DUETD_BIN" --config "$WORK_DIR/duetd.toml" --rpc-address 127.0.0.1 --rpc-port "$DUET_PORT" --metrics-port 0 \
    --data-dir "$WORK_DIR/duet" --log-level warn >"$WORK_DIR/duetd.log" 2>&1 &
DUETD_PID=$!

DUET_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then DUET_REV="$DUET_REV+dirty"; fi
say "loading and querying (work dir $WORK_DIR)"
DUET_DATA_DIR="$WORK_DIR/duet" DUET_PORT="$DUET_PORT" PG_PORT="$PG_PORT" DUET_REV="$DUET_REV" REPORT_PATH="$HERE/${REPORT_FILE:-last-report.md}" \
    RAW_FETCH_BIN="$RAW_FETCH_BIN" PSQL_BIN="$PG_BIN/psql" "$VENV/bin/python" "$HERE/bench.py"
say "done; report in $HERE/${REPORT_FILE:-last-report.md}"
