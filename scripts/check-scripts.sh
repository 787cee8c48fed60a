#!/usr/bin/env bash
# Scripted checks of the start/stop scripts as a new user meets them (issue 14's first hour), run by
# scripts/test.sh: the scripts find binaries where cargo puts them (CARGO_TARGET_DIR), take the data
# directory duetd resolves from a configuration file (single-quoted TOML strings too), repeat start-up
# warnings on the terminal, refuse a log level with a typo, never signal a process that is not duetd
# (a stale pid file), name a busy port before the demo starts anything, and leave no files behind.
# Every server here listens on ports of its own (rpc_port = 0, metrics_port = 0), so a quick-start
# server holding 6667 and 9091 does not matter. Uses DUET_PROFILE (debug in test.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/common.sh"
ensure_built

work=$(mktemp -d -t duet-check-scripts-XXXXXX)
decoy=""
cleanup() {
  [ -z "$decoy" ] || kill "$decoy" 2>/dev/null || true
  "$repo/scripts/stop-standalone.sh" --config "$work/duet.toml" >/dev/null 2>&1 || true
  "$repo/scripts/stop-standalone.sh" --data-dir "$work/other" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
failures=0
check() { echo "  ok: $1"; }
fail() { echo "  FAILED: $1" >&2; failures=$((failures + 1)); }

echo "-- binaries under CARGO_TARGET_DIR"
bin=$(cd "$repo" && DUET_TARGET_DIR= CARGO_TARGET_DIR="$work/elsewhere" DUET_PROFILE=debug \
  bash -c 'source scripts/common.sh; duet_bin duetd')
[ "$bin" = "$work/elsewhere/debug/duetd" ] && check "duet_bin follows CARGO_TARGET_DIR" \
  || fail "duet_bin gave $bin with CARGO_TARGET_DIR=$work/elsewhere"

echo "-- a configuration file's single-quoted data_dir, warnings on the terminal"
cat > duet.toml <<'TOML'
data_dir = 'quoted dir'
rpc_address = '0.0.0.0'
rpc_port = 0
metrics_port = 0
TOML
"$repo/scripts/start-standalone.sh" --config duet.toml > start.out 2>&1 || { cat start.out; fail "start with duet.toml"; }
[ -f "quoted dir/duetd.pid" ] && is_duetd "$(cat "quoted dir/duetd.pid")" \
  && check "duetd.pid in 'quoted dir' names a duetd" || fail "no duetd.pid in the configured data_dir"
[ ! -e data ] && check "no ./data created beside it" || fail "./data was created: the config's data_dir was overridden"
grep -q "default password" start.out && check "the default-password warning reached the terminal" \
  || { cat start.out; fail "no default-password warning in the start script's output"; }
! grep -q $'\e' "quoted dir/duetd.log" && check "duetd.log holds no colour codes" || fail "colour codes in duetd.log"
"$repo/scripts/start-standalone.sh" --config duet.toml > again.out 2>&1 && fail "a second start succeeded" \
  || { grep -q "already running" again.out && check "a second start says it is already running" || fail "$(cat again.out)"; }

echo "-- a busy port is named before the demo starts anything"
port=$(cat "quoted dir/duetd.addr"); port=${port##*:}
if (cd "$repo" && DEMO_DIR="$work/demo" DEMO_PORT_A="$port" DEMO_PORT_B=0 scripts/dual-active-demo.sh) > demo.out 2>&1; then
  fail "the demo ran with port $port in use"
else
  grep -q "port $port on 127.0.0.1 is in use" demo.out && [ ! -e "$work/demo" ] \
    && check "the demo names port $port and starts nothing" || { cat demo.out; fail "demo's busy-port message"; }
fi

echo "-- stop, then a stale pid file naming another process"
"$repo/scripts/stop-standalone.sh" --config duet.toml > stop.out 2>&1 && [ ! -e "quoted dir/duetd.pid" ] \
  && check "stop-standalone stopped it; duetd removed its pid file" || { cat stop.out; fail "stop"; }
sleep 300 &
decoy=$!
echo "$decoy" > "quoted dir/duetd.pid"
if "$repo/scripts/stop-standalone.sh" --config duet.toml > stale.out 2>&1; then
  fail "stop-standalone reported success for a stale pid file"
fi
kill -0 "$decoy" 2>/dev/null && grep -q "stale" stale.out \
  && check "a stale pid file naming 'sleep' is reported, and sleep was not signalled" \
  || { cat stale.out; fail "the process a stale pid file named was signalled"; }
"$repo/scripts/start-standalone.sh" --config duet.toml > restart.out 2>&1 \
  && [ "$(cat "quoted dir/duetd.pid")" != "$decoy" ] && kill -0 "$decoy" \
  && check "a start over a stale pid file starts, and leaves the other process alone" \
  || { cat restart.out; fail "start over a stale pid file"; }
"$repo/scripts/stop-standalone.sh" --config duet.toml >/dev/null

echo "-- a stale pid file naming another duetd (of another data directory)"
"$repo/scripts/start-standalone.sh" --data-dir other --rpc-address 127.0.0.1 --rpc-port 0 --metrics-port 0 > other.out 2>&1 \
  || { cat other.out; fail "start of a second instance"; }
other_pid=$(cat other/duetd.pid)
echo "$other_pid" > "quoted dir/duetd.pid"
"$repo/scripts/stop-standalone.sh" --config duet.toml > stale2.out 2>&1 && fail "stop reported success"
is_duetd "$other_pid" && grep -q "stale" stale2.out \
  && check "the other data directory's duetd was not signalled" || { cat stale2.out; fail "another duetd was signalled"; }
"$repo/scripts/stop-standalone.sh" --data-dir other >/dev/null || fail "stop of the second instance"

echo "-- a log level with a typo"
if "$repo/scripts/start-standalone.sh" --config duet.toml --log-level infoo > typo.out 2>&1; then
  fail "duetd started with --log-level infoo"
else
  grep -q "log_level 'infoo'" typo.out && check "--log-level infoo is refused, naming it" || { cat typo.out; fail "typo message"; }
fi

echo "-- a start after root's password was changed"
"$repo/scripts/start-standalone.sh" --config duet.toml >/dev/null 2>&1 || fail "start"
port=$(cat "quoted dir/duetd.addr"); port=${port##*:}
"$(duet_bin duet)" -p "$port" -e "alter user root set password 'changed123'" >/dev/null || fail "alter user"
"$repo/scripts/stop-standalone.sh" --config duet.toml >/dev/null
if "$repo/scripts/start-standalone.sh" --config duet.toml > changed.out 2>&1; then
  ! grep -q "default password\|login refused" changed.out \
    && check "it starts, with no default-password warning and no warning about its own login" \
    || { cat changed.out; fail "warnings after a password change"; }
else
  cat changed.out; fail "no start once root's password was changed"
fi
"$repo/scripts/stop-standalone.sh" --config duet.toml >/dev/null

if [ "$failures" -gt 0 ]; then
  echo "check-scripts: $failures check(s) failed" >&2
  exit 1
fi
echo "check-scripts: all checks passed"
