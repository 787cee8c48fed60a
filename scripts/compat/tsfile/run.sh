#!/usr/bin/env bash
# Writes the TsFile fixtures with Apache's own `tsfile` package (pinned in requirements.txt) into a
# directory and runs crates/tsfile's fixture test against them, the large files included.
# Env: DUET_TSFILE_FIXTURES overrides the directory (default <repo>/target/tsfile-fixtures).
# Creates (or reuses) the venv <repo>/.venv-tsfile. With --generate-only it stops after writing
# (scripts/test.sh exports the directory so `cargo test --workspace` runs the test); other arguments
# go to `cargo test`.
set -euo pipefail

SUITE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SUITE_DIR/../../.." && pwd)"

source "$REPO_ROOT/scripts/common.sh"
suite_venv .venv-tsfile "$SUITE_DIR" 'import tsfile'

export DUET_TSFILE_FIXTURES="${DUET_TSFILE_FIXTURES:-$REPO_ROOT/target/tsfile-fixtures}"
rm -rf "$DUET_TSFILE_FIXTURES"
mkdir -p "$DUET_TSFILE_FIXTURES"
echo "writing TsFile fixtures to $DUET_TSFILE_FIXTURES" >&2
PYTHONDONTWRITEBYTECODE=1 "$PY" "$SUITE_DIR/make_fixtures.py" "$DUET_TSFILE_FIXTURES" --large

if [[ "${1:-}" == "--generate-only" ]]; then
    exit 0
fi
cd "$REPO_ROOT"
cargo test -p duet-tsfile --test python_fixtures "$@" -- --nocapture
