#!/usr/bin/env bash
# What scraping /metrics costs (issue 12: "< 1 % of one core at the ingest benchmark's load"):
#
#   scripts/bench/scrape/run.sh
#
# Builds duetd and this bench (release), then (1) runs the ingest benchmark's Duet workload (CLIENTS
# clients writing ROWS-row × COLUMNS-column insertTablet batches) in alternating phases without and
# with a scrape every second, reporting ingest rate and duetd CPU per phase; (2) measures duetd's CPU
# per scrape over many back-to-back scrapes after that load; (3) the same with a pipe whose peer is
# down and a backlog past SHOW PIPES' count cap (20,000 entries), the most a scrape reads.
# Environment: CLIENTS [4], ROWS [1000], COLUMNS [10], PHASE_SECONDS [10], PHASES [3],
# SKIP_DUETD_BUILD [0], INGEST_ONLY [0] (1: ingest phases only, no metrics flag, no scraping; with
# DUETD_BIN, to compare the ingest rate of two builds), DUETD_BIN [target/release/duetd].
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_NAME=scrape
source "$HERE/../common.sh"
if [ -z "${DUETD_BIN:-}" ]; then build_duetd; fi
build_bench duet-bench-scrape
exec "$BENCH_BIN" "$DUETD_BIN"
