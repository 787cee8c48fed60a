#!/usr/bin/env bash
# The user's dual-active walkthrough (shared/seed/dual-active-deployment.md) on one machine: instance A
# on port 6667 and instance B on port 6668, the seed's pipes AB and BA (with 127.0.0.1 and the two
# ports instead of the hostnames iotdb-1/iotdb-2), writes on both sides, both sides converging, and
# Step 5's shutdown. Data goes to a temporary directory unless DEMO_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ensure_built

dir=${DEMO_DIR:-$(mktemp -d -t duet-demo-XXXXXX)}
A=(--rpc-address 127.0.0.1 --rpc-port 6667 --metrics-port 9091 --internal-address iotdb-1 --data-dir "$dir/a")
B=(--rpc-address 127.0.0.1 --rpc-port 6668 --metrics-port 9092 --internal-address iotdb-2 --data-dir "$dir/b")
cli() { local port=$1; shift; "$(duet_bin duet)" -h 127.0.0.1 -p "$port" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  scripts/stop-standalone.sh "${A[@]}" >/dev/null 2>&1 || true
  scripts/stop-standalone.sh "${B[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "Step 1: two independent instances (data in $dir)"
scripts/start-standalone.sh "${A[@]}"
scripts/start-standalone.sh "${B[@]}"
echo "dashboards: http://127.0.0.1:9091/ (A) and http://127.0.0.1:9092/ (B); Prometheus: /metrics on each"

step "Step 2: pipe AB on A (A -> B)"
cli 6667 -e "create pipe AB
with source (
  'source.mode.double-living' ='true'
)
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='127.0.0.1',
  'sink.port'='6668'
)"

step "Step 3: pipe BA on B (B -> A)"
cli 6668 -e "create pipe BA
with source (
'source.mode.double-living' ='true'
)
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='127.0.0.1',
  'sink.port'='6667'
)"

step "Step 4: verify — show cluster, show pipes"
cli 6667 -e "show cluster"
cli 6668 -e "show cluster"
cli 6667 -e "show pipes"
cli 6668 -e "show pipes"

step "Writes on both sides"
cli 6667 -e "insert into root.demo.plant_a(timestamp, temperature, status) values (1000, 21.5, true), (2000, 22.0, true)"
cli 6668 -e "insert into root.demo.plant_b(timestamp, temperature, status) values (1000, 19.0, false)"
# The same point written on both sides: the higher version wins on both.
cli 6667 -e "insert into root.demo.shared(timestamp, value) values (1, 100)"
cli 6668 -e "insert into root.demo.shared(timestamp, value) values (1, 200)"

step "Both sides converge"
# Poll until both sides return the same four rows (plant_a: 2, plant_b: 1, shared: 1), at most 10 s.
for _ in $(seq 1 100); do
  a=$(cli 6667 --format csv -e "select * from root.demo.** align by device")
  b=$(cli 6668 --format csv -e "select * from root.demo.** align by device")
  [ "$a" = "$b" ] && [ "$(printf '%s\n' "$a" | wc -l)" -ge 5 ] && break
  sleep 0.1
done
if [ "$a" != "$b" ]; then
  echo "A and B did not converge within 10 s" >&2
  exit 1
fi
echo "-- A:"; cli 6667 -e "select * from root.demo.** align by device"
echo "-- B:"; cli 6668 -e "select * from root.demo.** align by device"
if [ -x "$(duet_bin duet-check)" ]; then
  "$(duet_bin duet-check)" -h 127.0.0.1 -p 6667 --peer-host 127.0.0.1 --peer-port 6668 --path 'root.demo.**'
fi

step "Step 5: stop the pipes, then the instances"
cli 6667 -e "stop pipe AB"
cli 6668 -e "stop pipe BA"
cli 6667 -e "show pipes"
scripts/stop-standalone.sh "${A[@]}"
scripts/stop-standalone.sh "${B[@]}"
trap - EXIT
echo "demo data left in $dir"
