#!/usr/bin/env bash
# Runs every test: lints, Rust unit and integration tests (including sql-tests/*.slt against real duetd
# processes), the compatibility suite of the official Python client, the start/stop scripts' checks and
# the dual-active demo. Used by CI (.ci/run). Every server it starts listens on a port of its own, so a
# duetd you left running (the README's quick start on 6667) does not get in the way; temporary files go
# to one directory that is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

scratch=$(mktemp -d -t duet-test-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# The seed walkthrough runs against hosts iotdb-1 and iotdb-2 on loopback addresses.
scripts/setup-test-hosts.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The benchmark programs (a workspace of their own, scripts/bench): formatted and linted like the rest,
# in the main target directory so they reuse its dependencies; never run here.
echo "== benchmark programs: cargo fmt --check, cargo clippy"
cargo fmt --manifest-path scripts/bench/Cargo.toml --all -- --check
CARGO_TARGET_DIR="$(target_dir)" cargo clippy --manifest-path scripts/bench/Cargo.toml --workspace \
  --all-targets --quiet -- -D warnings

# TsFiles written by Apache's own tsfile package (pinned), read by crates/tsfile's fixture test,
# which fails when this directory is set and a fixture is missing.
echo "== TsFile fixtures (apache tsfile 2.5.0)"
export DUET_TSFILE_FIXTURES="$(target_dir)/tsfile-fixtures"
scripts/compat/tsfile/run.sh --generate-only

# The dashboard's headless-browser test and the Prometheus scrape test run against real tools, which
# must then be present (the tests only skip themselves on machines that lack them outside this script).
echo "== monitoring tools (Debian chromium, prometheus)"
scripts/install-monitoring-tools.sh
export DUET_REQUIRE_BROWSER=1 DUET_REQUIRE_PROMETHEUS=1

echo "== cargo test"
# With the storage's test hooks, as `cargo test` builds it (dev-dependencies enable the feature), so the
# two builds share their artifacts instead of compiling storage and everything above it twice.
cargo build --workspace --bins --quiet --features duet-storage/test-hooks
cargo test --workspace --no-fail-fast

echo "== official Python client (apache-iotdb 2.0.11)"
# Its TLS tests make certificates with the openssl command.
if ! command -v openssl >/dev/null; then
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo -n"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi
scripts/compat/python/run.sh

echo "== the start/stop scripts"
DUET_PROFILE=debug scripts/check-scripts.sh

echo "== the dual-active demo (on free ports)"
DEMO_DIR="$scratch/demo" DEMO_PORT_A=0 DEMO_PORT_B=0 DUET_PROFILE=debug \
  scripts/dual-active-demo.sh > "$scratch/demo.log" 2>&1 || { cat "$scratch/demo.log"; exit 1; }
echo "demo: A and B converged"
