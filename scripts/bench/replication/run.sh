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
source "$HERE/../common.sh"
export_workload 1000
export LAG_SAMPLES="${LAG_SAMPLES:-500}" LAG_INTERVAL_MS="${LAG_INTERVAL_MS:-10}" LOAD_FRACTION="${LOAD_FRACTION:-0.5}"
export OUTAGE_SECONDS="${OUTAGE_SECONDS:-60}" OUTAGE_ROWS="${OUTAGE_ROWS:-0}" OUTAGE_RATE="${OUTAGE_RATE:-0}"
export SAMPLE_MS="${SAMPLE_MS:-2000}" TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-180}" SKIP_PG="${SKIP_PG:-0}"

[ "$SKIP_PG" = 1 ] || require_pg
build_duetd
build_bench duet-bench-replication

make_work_dir duet-repl-bench

PG_PUB_PORT=0; PG_SUB_PORT=0
if [ "$SKIP_PG" != 1 ]; then
    PG_PUB_PORT="$(free_port)"
    start_pg pub "$PG_PUB_PORT" "-c wal_level=logical"
    PG_SUB_PORT="$(free_port)"
    [ "$PG_SUB_PORT" != "$PG_PUB_PORT" ] || PG_SUB_PORT=$((PG_PUB_PORT + 1))
    start_pg sub "$PG_SUB_PORT" ""
fi

DUET_REV="$(duet_rev)"
say "running the workloads (work dir $WORK_DIR)"
DUETD_BIN="$DUETD_BIN" WORK_DIR="$WORK_DIR" PG_HOST=127.0.0.1 PG_PUB_PORT="$PG_PUB_PORT" PG_SUB_PORT="$PG_SUB_PORT" \
    PG_USER=postgres REPORT_PATH="${REPORT_PATH:-$HERE/last-report.md}" DUET_REV="$DUET_REV" "$BENCH_BIN"
say "done; report in ${REPORT_PATH:-$HERE/last-report.md}"
