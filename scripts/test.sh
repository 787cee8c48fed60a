#!/usr/bin/env bash
# Runs every test: lints, Rust unit and integration tests (including sql-tests/*.slt against real duetd
# processes), and the compatibility suite of the official Python client. Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# The seed walkthrough runs verbatim against hosts iotdb-1 and iotdb-2 on loopback addresses.
scripts/setup-test-hosts.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# TsFiles written by Apache's own tsfile package (pinned), read by crates/tsfile's fixture test,
# which fails when this directory is set and a fixture is missing.
echo "== TsFile fixtures (apache tsfile 2.5.0)"
export DUET_TSFILE_FIXTURES="$PWD/target/tsfile-fixtures"
scripts/compat/tsfile/run.sh --generate-only

# The dashboard's headless-browser test and the Prometheus scrape test run against real tools, which
# must then be present (the tests only skip themselves on machines that lack them outside this script).
echo "== monitoring tools (Debian chromium, prometheus)"
scripts/install-monitoring-tools.sh
export DUET_REQUIRE_BROWSER=1 DUET_REQUIRE_PROMETHEUS=1

echo "== cargo test"
cargo build --workspace --bins --quiet
cargo test --workspace --no-fail-fast

echo "== official Python client (apache-iotdb 2.0.11)"
scripts/compat/python/run.sh

echo "== the dual-active demo (ports 6667 and 6668)"
DUET_PROFILE=debug scripts/dual-active-demo.sh > /tmp/duet-demo.log 2>&1 || { cat /tmp/duet-demo.log; exit 1; }
echo "demo: A and B converged"
