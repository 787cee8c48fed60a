#!/usr/bin/env bash
# The user's dual-active walkthrough (shared/seed/dual-active-deployment.md) on one machine: instance A
# on port 6667 and instance B on port 6668, the seed's pipes AB and BA (with 127.0.0.1 and the two
# ports instead of the hostnames iotdb-1/iotdb-2), writes on both sides, both sides converging, and
# Step 5's shutdown. Data goes to a temporary directory unless DEMO_DIR is set.
# DEMO_PORT_A / DEMO_PORT_B choose other ports (0: any free port; scripts/test.sh uses that, so a server
# of the user's on 6667 does not stop it). A port in use is named before anything starts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

port_a=${DEMO_PORT_A:-6667}
port_b=${DEMO_PORT_B:-6668}
for port in "$port_a" "$port_b"; do
  if [ "$port" != 0 ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use (a duetd of yours? scripts/stop-standalone.sh stops the quick start's);" \
      "stop it, or run with DEMO_PORT_A=... DEMO_PORT_B=... (0 picks free ports)" >&2
    exit 1
  fi
done
ensure_built

dir=${DEMO_DIR:-$(mktemp -d -t duet-demo-XXXXXX)}
# Metrics and dashboards on 9091 (A) and 9092 (B), or on free ports when the demo's ports are free ones.
metrics_a=9091; metrics_b=9092
[ "$port_a" = 0 ] && metrics_a=0
[ "$port_b" = 0 ] && metrics_b=0
A=(--rpc-address 127.0.0.1 --rpc-port "$port_a" --metrics-port "$metrics_a" --internal-address iotdb-1 --data-dir "$dir/a")
B=(--rpc-address 127.0.0.1 --rpc-port "$port_b" --metrics-port "$metrics_b" --internal-address iotdb-2 --data-dir "$dir/b")
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
# The ports they listen on (the same as asked, unless 0 was).
port_a=$(cat "$dir/a/duetd.addr"); port_a=${port_a##*:}
port_b=$(cat "$dir/b/duetd.addr"); port_b=${port_b##*:}
dash_a=$(cat "$dir/a/duetd.metrics.addr" 2>/dev/null || echo "127.0.0.1:$metrics_a")
dash_b=$(cat "$dir/b/duetd.metrics.addr" 2>/dev/null || echo "127.0.0.1:$metrics_b")
echo "dashboards: http://$dash_a/ (A) and http://$dash_b/ (B); Prometheus: /metrics on each"

# A double-living pipe named $1 on the instance at port $2 to the one at port $3.
create_pipe() {
  cli "$2" -e "create pipe $1
with source (
  'source.mode.double-living' ='true'
)
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='127.0.0.1',
  'sink.port'='$3'
)"
}

step "Step 2: pipe AB on A (A -> B)"
create_pipe AB "$port_a" "$port_b"

step "Step 3: pipe BA on B (B -> A)"
create_pipe BA "$port_b" "$port_a"

step "Step 4: verify — show cluster, show pipes"
cli "$port_a" -e "show cluster"
cli "$port_b" -e "show cluster"
cli "$port_a" -e "show pipes"
cli "$port_b" -e "show pipes"

step "Writes on both sides"
cli "$port_a" -e "insert into root.demo.plant_a(timestamp, temperature, status) values (1000, 21.5, true), (2000, 22.0, true)"
cli "$port_b" -e "insert into root.demo.plant_b(timestamp, temperature, status) values (1000, 19.0, false)"
# The same point written on both sides: the higher version wins on both.
cli "$port_a" -e "insert into root.demo.shared(timestamp, value) values (1, 100)"
cli "$port_b" -e "insert into root.demo.shared(timestamp, value) values (1, 200)"

step "Both sides converge"
# Poll until both sides return the same four rows (plant_a: 2, plant_b: 1, shared: 1), at most 10 s.
for _ in $(seq 1 100); do
  a=$(cli "$port_a" --format csv -e "select * from root.demo.** align by device")
  b=$(cli "$port_b" --format csv -e "select * from root.demo.** align by device")
  [ "$a" = "$b" ] && [ "$(printf '%s\n' "$a" | wc -l)" -ge 5 ] && break
  sleep 0.1
done
if [ "$a" != "$b" ]; then
  echo "A and B did not converge within 10 s" >&2
  exit 1
fi
echo "-- A:"; cli "$port_a" -e "select * from root.demo.** align by device"
echo "-- B:"; cli "$port_b" -e "select * from root.demo.** align by device"
if [ -x "$(duet_bin duet-check)" ]; then
  "$(duet_bin duet-check)" -h 127.0.0.1 -p "$port_a" --peer-host 127.0.0.1 --peer-port "$port_b" --path 'root.demo.**'
fi

step "Step 5: stop the pipes, then the instances"
cli "$port_a" -e "stop pipe AB"
cli "$port_b" -e "stop pipe BA"
cli "$port_a" -e "show pipes"
scripts/stop-standalone.sh "${A[@]}"
scripts/stop-standalone.sh "${B[@]}"
trap - EXIT
if [ -n "${DEMO_DIR:-}" ]; then
  echo "demo data left in $dir"
else
  rm -rf "$dir"
fi
