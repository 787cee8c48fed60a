#!/usr/bin/env bash
# Installs what the monitoring tests drive: Debian's `chromium` (the dashboard in a headless browser,
# crates/server/tests/dashboard.rs) and `prometheus` (a real server scraping a pair,
# crates/server/tests/prometheus.rs). Quick when both are already there; needs root (or sudo) and apt
# otherwise. The packages' services are not started (the tests run their own Prometheus).
set -euo pipefail
if command -v chromium >/dev/null && command -v prometheus >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium prometheus >/dev/null
command -v chromium >/dev/null && command -v prometheus >/dev/null
