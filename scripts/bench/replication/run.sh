#!/usr/bin/env bash
# Duet replication benchmark against PostgreSQL 15 logical replication. One command:
#
#   scripts/bench/replication/run.sh
#
# Builds duetd and the bench binary (release), starts two throwaway PostgreSQL clusters under /tmp
# (publisher with wal_level=logical, subscriber), runs the workloads (the bench binary starts a fresh
# pair of duetd instances A and B per repeat and creates the pipes AB and BA), prints a markdown report
# and writes it to scripts/bench/replication/last-report.md, then stops everything and removes the
# temp directory. Parameters (environment, defaults in brackets): CLIENTS [4], ROWS_PER_BATCH [1000],
# COLUMNS [10], BATCHES_PER_CLIENT [1000], REPEATS [3], LAG_SAMPLES [500], LAG_INTERVAL_MS [10],
# LOAD_FRACTION [0.5], OUTAGE_SECONDS [60], OUTAGE_ROWS [0 = timed], OUTAGE_RATE [0 = moderate],
# SAMPLE_MS [2000], TIMEOUT_SECONDS [180], SKIP_PG [0], PG_BIN [/usr/lib/postgresql/15/bin],
# KEEP_WORK_DIR [0], SKIP_DUETD_BUILD [0]. See README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export CLIENTS="${CLIENTS:-4}" ROWS_PER_BATCH="${ROWS_PER_BATCH:-1000}" COLUMNS="${COLUMNS:-10}"
export BATCHES_PER_CLIENT="${BATCHES_PER_CLIENT:-1000}" REPEATS="${REPEATS:-3}"
export LAG_SAMPLES="${LAG_SAMPLES:-500}" LAG_INTERVAL_MS="${LAG_INTERVAL_MS:-10}" LOAD_FRACTION="${LOAD_FRACTION:-0.5}"
export OUTAGE_SECONDS="${OUTAGE_SECONDS:-60}" OUTAGE_ROWS="${OUTAGE_ROWS:-0}" OUTAGE_RATE="${OUTAGE_RATE:-0}"
export SAMPLE_MS="${SAMPLE_MS:-2000}" TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-180}" SKIP_PG="${SKIP_PG:-0}"

say() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[run.sh] ERROR: $*" >&2; exit 1; }

if [ "$SKIP_PG" != 1 ]; then
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the clusters as"
fi
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
BENCH_BIN="$ROOT/target/bench/release/duet-bench-replication"
[ -x "$DUETD_BIN" ] || die "no duetd binary at $DUETD_BIN"

# --- Work directory and cleanup.
WORK_DIR="$(mktemp -d /tmp/duet-repl-bench.XXXXXX)"
chmod 755 "$WORK_DIR"
PG_STARTED=()
cleanup() {
    local rc=$?
    set +e
    for f in "$WORK_DIR"/duetd-*.pid; do
        [ -f "$f" ] || continue
        local pid; pid="$(cat "$f")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q duetd "/proc/$pid/cmdline" 2>/dev/null; then
            say "stopping leftover duetd (pid $pid)"; kill -TERM "$pid"; sleep 2; kill -KILL "$pid" 2>/dev/null
        fi
    done
    for d in "${PG_STARTED[@]}"; do
        say "stopping PostgreSQL ($d)"
        as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
    done
    if [ $rc -ne 0 ]; then
        for f in "$WORK_DIR"/*.log; do [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }; done
    fi
    if [ "${KEEP_WORK_DIR:-0}" = 1 ]; then say "kept $WORK_DIR"; else rm -rf "$WORK_DIR"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL 15: two fresh clusters, default durability (fsync=on, synchronous_commit=on).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || { p=$((55432 + RANDOM % 1000)); while ss -ltn "sport = :$p" | grep -q LISTEN; do p=$((p+1)); done; echo $p; }; }
start_pg() { # name port extra-options
    local name=$1 port=$2 extra=$3 data="$WORK_DIR/pg-$1"
    say "initdb $name in $data, port $port"
    install -d -o postgres -g postgres -m 700 "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$WORK_DIR/initdb-$name.log" 2>&1 \
        || { cat "$WORK_DIR/initdb-$name.log" >&2; die "initdb ($name) failed"; }
    touch "$WORK_DIR/pg-$name.log"; chown postgres "$WORK_DIR/pg-$name.log"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$WORK_DIR/pg-$name.log" -w -t 60 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on $extra" start >/dev/null \
        || { cat "$WORK_DIR/pg-$name.log" >&2; die "PostgreSQL ($name) did not start"; }
    PG_STARTED+=("$data")
}
PG_PUB_PORT=0; PG_SUB_PORT=0
if [ "$SKIP_PG" != 1 ]; then
    PG_PUB_PORT="$(free_port)"
    start_pg pub "$PG_PUB_PORT" "-c wal_level=logical"
    PG_SUB_PORT="$(free_port)"
    [ "$PG_SUB_PORT" != "$PG_PUB_PORT" ] || PG_SUB_PORT=$((PG_PUB_PORT + 1))
    start_pg sub "$PG_SUB_PORT" ""
fi

# --- Run.
DUET_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- crates 2>/dev/null)" ] || \
   [ -n "$(git -C "$ROOT" ls-files --others --exclude-standard crates 2>/dev/null)" ]; then DUET_REV="$DUET_REV+dirty"; fi
say "running the workloads (work dir $WORK_DIR)"
DUETD_BIN="$DUETD_BIN" WORK_DIR="$WORK_DIR" PG_HOST=127.0.0.1 PG_PUB_PORT="$PG_PUB_PORT" PG_SUB_PORT="$PG_SUB_PORT" \
    PG_USER=postgres REPORT_PATH="${REPORT_PATH:-$HERE/last-report.md}" DUET_REV="$DUET_REV" "$BENCH_BIN"
say "done; report in ${REPORT_PATH:-$HERE/last-report.md}"
