#!/usr/bin/env bash
# Maps the seed document's hostnames to loopback addresses of their own, so that two local instances can
# both listen on port 6667 and the seed's statements ('sink.ip'='iotdb-2', 'sink.port'='6667') run
# verbatim in tests and in the demo. Needs root (it edits /etc/hosts); idempotent.
set -euo pipefail
declare -A hosts=([iotdb-1]=127.0.0.101 [iotdb-2]=127.0.0.102)
for name in "${!hosts[@]}"; do
  addr=${hosts[$name]}
  if getent hosts "$name" | grep -q "^$addr "; then
    continue
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test-hosts: $name must resolve to $addr; run this script as root (it appends to /etc/hosts)" >&2
    exit 1
  fi
  echo "$addr $name" >> /etc/hosts
  echo "setup-test-hosts: mapped $name to $addr"
done
