#!/usr/bin/env bash
# Starts one duetd in the background (like IoTDB's sbin/start-standalone.sh), building it first when
# needed, and returns once it accepts sessions.
#   scripts/start-standalone.sh [duetd flags…]     e.g. --config a.toml, or --rpc-port 6668 --data-dir data-b
# duetd writes its pid file into its data directory (duetd.pid); its log goes there too (duetd.log).
# Warnings of this start (such as root's default password) are repeated on this terminal.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_built
data_dir=$(data_dir_of "$@")
mkdir -p "$data_dir"
pid_file=$data_dir/duetd.pid
log=$data_dir/duetd.log
if running=$(running_pid "$data_dir"); then
  echo "duetd is already running (pid $running, data dir $data_dir)" >&2
  exit 1
fi
# This start's part of the log begins here.
log_offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
this_start() { tail -c +"$((log_offset + 1))" "$log"; }
rm -f "$data_dir/duetd.addr"
nohup "$(duet_bin duetd)" "$@" >>"$log" 2>&1 &
pid=$!
# Poll until the server has written its pid file and address and answers a session; give up after 60 s.
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "duetd exited during start-up; its log ($log) says:" >&2
    this_start | tail -n 20 >&2
    exit 1
  fi
  if [ -f "$data_dir/duetd.addr" ] && [ "$(cat "$pid_file" 2>/dev/null)" = "$pid" ]; then
    addr=$(cat "$data_dir/duetd.addr")
    host=${addr%:*}; port=${addr##*:}
    [ "$host" = "0.0.0.0" ] && host=127.0.0.1
    # A login refused (801: root's password was changed) is a server accepting sessions too.
    if answer=$("$(duet_bin duet)" -h "$host" -p "$port" -u "${DUET_USER:-root}" -pw "${DUET_PASSWORD:-root}" \
        -e "show version" 2>&1) || [[ "$answer" == *"801"* ]]; then
      echo "duetd started (pid $pid), accepting sessions on $addr, data dir $data_dir, log $log"
      # The log file is not this terminal: show what duetd warned about while starting (up to the
      # line saying it accepts sessions; not this script's own login, for instance).
      this_start | sed '/duetd accepting sessions/q' | grep -E '(^|[ "])(WARN|ERROR)([ "]|$)' >&2 || true
      exit 0
    fi
  fi
  sleep 0.1
done
echo "duetd did not accept sessions within 60 s; see $log" >&2
exit 1
