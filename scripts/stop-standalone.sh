#!/usr/bin/env bash
# Stops a duetd started by start-standalone.sh (SIGTERM: it finishes running requests and exits).
#   scripts/stop-standalone.sh [the same duetd flags given to start-standalone.sh]
# The pid comes from duetd's own pid file, and is signalled only if that process is a duetd and the
# data directory's lock is held.
set -euo pipefail
source "$(dirname "$0")/common.sh"
data_dir=$(data_dir_of "$@")
pid_file=$data_dir/duetd.pid
if [ ! -f "$pid_file" ]; then
  echo "duetd is not running (no duetd.pid in $data_dir)" >&2
  exit 1
fi
if ! pid=$(running_pid "$data_dir"); then
  # Left by a duetd that did not stop cleanly; the pid may now be another program's.
  echo "duetd is not running: $pid_file is stale (process $(cat "$pid_file") is not the duetd of $data_dir);" \
    "removed it, signalled nothing" >&2
  rm -f "$pid_file"
  exit 1
fi
kill -TERM "$pid"
for _ in $(seq 1 300); do
  is_duetd "$pid" || break
  sleep 0.1
done
if is_duetd "$pid"; then
  echo "duetd (pid $pid) did not stop within 30 s" >&2
  exit 1
fi
echo "duetd stopped (data dir $data_dir)"
