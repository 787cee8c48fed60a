#!/usr/bin/env bash
# Stops a duetd started by start-standalone.sh (SIGTERM: it finishes running requests and exits).
#   scripts/stop-standalone.sh [the same duetd flags given to start-standalone.sh]
set -euo pipefail
source "$(dirname "$0")/common.sh"
data_dir=$(data_dir_of "$@")
pid_file=$data_dir/duetd.pid
if [ ! -f "$pid_file" ]; then
  echo "no duetd pid file in $data_dir" >&2
  exit 1
fi
pid=$(cat "$pid_file")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "duetd (pid $pid) did not stop within 30 s" >&2
    exit 1
  fi
fi
rm -f "$pid_file"
echo "duetd stopped (data dir $data_dir)"
