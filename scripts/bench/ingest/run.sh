#!/usr/bin/env bash
# Duet ingest / query benchmark against PostgreSQL 15. One command:
#
#   scripts/bench/ingest/run.sh
#
# Builds duetd and the bench binary (release), starts a throwaway PostgreSQL cluster under /tmp, runs
# the workloads (the bench binary starts a fresh duetd per repeat), prints a markdown report and writes
# it to scripts/bench/ingest/last-report.md, then stops everything and removes the temp directory.
# Parameters (environment, defaults in brackets): CLIENTS [4], ROWS_PER_BATCH [1000], COLUMNS [10],
# BATCHES_PER_CLIENT [625 → 25 M points], REPEATS [3], RECORD_SECONDS [10], FETCH_SIZE [10000],
# VALUE_TYPE [DOUBLE|INT64], PG_BIN [/usr/lib/postgresql/15/bin], KEEP_WORK_DIR [0],
# SKIP_DUETD_BUILD [0] (1: use the existing target/release/duetd, e.g. to re-run without rebuilding).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export CLIENTS="${CLIENTS:-4}" ROWS_PER_BATCH="${ROWS_PER_BATCH:-1000}" COLUMNS="${COLUMNS:-10}"
export BATCHES_PER_CLIENT="${BATCHES_PER_CLIENT:-625}" REPEATS="${REPEATS:-3}"
export RECORD_SECONDS="${RECORD_SECONDS:-10}" FETCH_SIZE="${FETCH_SIZE:-10000}" VALUE_TYPE="${VALUE_TYPE:-DOUBLE}"

say() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[run.sh] ERROR: $*" >&2; exit 1; }

[ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the cluster as"
if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

# --- Build (release). duetd in the main workspace; the bench in its own target dir (target/bench).
if [ "${SKIP_DUETD_BUILD:-0}" = 1 ]; then
    say "SKIP_DUETD_BUILD=1: using the existing $ROOT/target/release/duetd"
else
    say "building duetd (cargo build --release -p duet-server)"
    (cd "$ROOT" && cargo build --release -p duet-server) || die "duetd build failed"
fi
say "building the bench binary"
(cd "$HERE" && CARGO_TARGET_DIR="$ROOT/target/bench" cargo build --release) || die "bench build failed"
DUETD_BIN="$ROOT/target/release/duetd"
BENCH_BIN="$ROOT/target/bench/release/duet-bench-ingest"
[ -x "$DUETD_BIN" ] || die "no duetd binary at $DUETD_BIN"

# --- Work directory and cleanup.
WORK_DIR="$(mktemp -d /tmp/duet-bench.XXXXXX)"
chmod 755 "$WORK_DIR"
PGDATA="$WORK_DIR/pg"
PG_STARTED=0
cleanup() {
    local rc=$?
    set +e
    if [ -f "$WORK_DIR/duetd.pid" ]; then
        local pid; pid="$(cat "$WORK_DIR/duetd.pid")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q duetd "/proc/$pid/cmdline" 2>/dev/null; then
            say "stopping leftover duetd (pid $pid)"; kill -TERM "$pid"; sleep 2; kill -KILL "$pid" 2>/dev/null
        fi
    fi
    if [ "$PG_STARTED" = 1 ]; then
        say "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
    fi
    if [ "${KEEP_WORK_DIR:-0}" = 1 ] || [ $rc -ne 0 ]; then
        if [ $rc -ne 0 ]; then
            for f in "$WORK_DIR"/*.log; do [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }; done
        fi
        if [ "${KEEP_WORK_DIR:-0}" = 1 ]; then say "kept $WORK_DIR"; else rm -rf "$WORK_DIR"; fi
    else
        rm -rf "$WORK_DIR"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL 15: fresh cluster, default durability (fsync=on, synchronous_commit=on).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || { p=55432; while ss -ltn "sport = :$p" | grep -q LISTEN; do p=$((p+1)); done; echo $p; }; }
PG_PORT="$(free_port)"
say "initdb in $PGDATA, port $PG_PORT"
install -d -o postgres -g postgres -m 700 "$PGDATA"
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-sync >"$WORK_DIR/initdb.log" 2>&1 \
    || { cat "$WORK_DIR/initdb.log" >&2; die "initdb failed"; }
touch "$WORK_DIR/pg.log"; chown postgres "$WORK_DIR/pg.log"
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK_DIR/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" start >/dev/null \
    || { cat "$WORK_DIR/pg.log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1

# --- Run.
DUET_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || \
   [ -n "$(git -C "$ROOT" ls-files --others --exclude-standard crates 2>/dev/null)" ]; then DUET_REV="$DUET_REV+dirty"; fi
say "running the workloads (work dir $WORK_DIR)"
DUETD_BIN="$DUETD_BIN" WORK_DIR="$WORK_DIR" PG_HOST=127.0.0.1 PG_PORT="$PG_PORT" PG_USER=postgres \
    REPORT_PATH="$HERE/last-report.md" DUET_REV="$DUET_REV" "$BENCH_BIN"
say "done; report in $HERE/last-report.md"
