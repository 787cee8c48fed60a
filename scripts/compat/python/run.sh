#!/usr/bin/env bash
# Run the Python compatibility suite (official apache-iotdb client vs duetd).
# Assumes the binaries are already built (cargo build --bins); builds nothing.
# Env: DUETD_BIN overrides the server binary (default: duetd of the debug profile in cargo's target
# directory, CARGO_TARGET_DIR honoured).
# Extra arguments are passed to pytest.
set -euo pipefail

SUITE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SUITE_DIR/../../.." && pwd)"

source "$REPO_ROOT/scripts/common.sh"
suite_venv .venv "$SUITE_DIR" 'import iotdb.Session, pytest, pyarrow'

if [[ -z "${DUETD_BIN:-}" ]]; then
    DUETD_BIN=$(DUET_PROFILE=debug duet_bin duetd)
fi
export DUETD_BIN
if [[ ! -x "$DUETD_BIN" ]]; then
    echo "duetd not found at $DUETD_BIN (run 'cargo build --bins' in $REPO_ROOT or set DUETD_BIN)" >&2
    exit 2
fi

export PYTHONDONTWRITEBYTECODE=1
cd "$SUITE_DIR"
set +e
"$PY" -m pytest -q -c "$SUITE_DIR/pytest.ini" --rootdir "$SUITE_DIR" "$SUITE_DIR" "$@"
rc=$?
set -e
exit "$rc"
