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
# SKIP_DUETD_BUILD [0] (1: use the existing release duetd, e.g. to re-run without rebuilding).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../common.sh"
export_workload 625
export RECORD_SECONDS="${RECORD_SECONDS:-10}" FETCH_SIZE="${FETCH_SIZE:-10000}" VALUE_TYPE="${VALUE_TYPE:-DOUBLE}"

require_pg
build_duetd
build_bench duet-bench-ingest

make_work_dir duet-bench

PG_PORT="$(free_port)"
start_pg main "$PG_PORT"

say "running the workloads (work dir $WORK_DIR)"
DUETD_BIN="$DUETD_BIN" WORK_DIR="$WORK_DIR" PG_HOST=127.0.0.1 PG_PORT="$PG_PORT" PG_USER=postgres \
    REPORT_PATH="$HERE/last-report.md" DUET_REV="$(duet_rev)" "$BENCH_BIN"
say "done; report in $HERE/last-report.md"
