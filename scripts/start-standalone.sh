#!/usr/bin/env bash
# Starts one duetd in the background (like IoTDB's sbin/start-standalone.sh), building it first when
# needed, and returns once it accepts sessions.
#   scripts/start-standalone.sh [duetd flags…]     e.g. --config a.toml, or --rpc-port 6668 --data-dir data-b
# The pid file and the log go into the instance's data directory (duetd.pid, duetd.log).
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_built
data_dir=$(data_dir_of "$@")
mkdir -p "$data_dir"
pid_file=$data_dir/duetd.pid
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "duetd is already running (pid $(cat "$pid_file"), data dir $data_dir)" >&2
  exit 1
fi
rm -f "$data_dir/duetd.addr"
args=("$@")
printf '%s\n' "${args[@]}" | grep -q -- '--data-dir' || args+=(--data-dir "$data_dir")
nohup "$(duet_bin duetd)" "${args[@]}" >>"$data_dir/duetd.log" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"
# Poll until the server has bound its port and answers a session; give up after 60 s.
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "duetd exited during start-up; last lines of $data_dir/duetd.log:" >&2
    tail -n 20 "$data_dir/duetd.log" >&2
    rm -f "$pid_file"
    exit 1
  fi
  if [ -f "$data_dir/duetd.addr" ]; then
    addr=$(cat "$data_dir/duetd.addr")
    host=${addr%:*}; port=${addr##*:}
    [ "$host" = "0.0.0.0" ] && host=127.0.0.1
    if "$(duet_bin duet)" -h "$host" -p "$port" -u "${DUET_USER:-root}" -pw "${DUET_PASSWORD:-root}" -e "show version" >/dev/null 2>&1; then
      echo "duetd started (pid $pid), accepting sessions on $addr, data dir $data_dir"
      exit 0
    fi
  fi
  sleep 0.1
done
echo "duetd did not accept sessions within 60 s; see $data_dir/duetd.log" >&2
exit 1
