#!/usr/bin/env bash
# The duet CLI with IoTDB's start-cli.sh flags: -h host -p port -u user -pw password -e "statement".
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_built
exec "$(duet_bin duet)" "$@"
