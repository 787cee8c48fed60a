#!/usr/bin/env bash
# Regenerates crates/proto/src/generated/iotdb_client.rs from crates/proto/thrift/iotdb-client.thrift.
# Needs Debian's thrift-compiler 0.17 (apt-get install thrift-compiler); the workspace pins the thrift
# crate to =0.17.0 so that generated code and runtime agree. The output is committed, so builds never need
# the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v thrift >/dev/null || { echo "thrift compiler not found: apt-get install thrift-compiler" >&2; exit 1; }
version=$(thrift --version | awk '{print $3}')
[ "$version" = "0.17.0" ] || { echo "expected thrift 0.17.0, found $version" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
thrift -out "$out" --gen rs crates/proto/thrift/iotdb-client.thrift
mv "$out/iotdb-client.rs" crates/proto/src/generated/iotdb_client.rs
echo "regenerated crates/proto/src/generated/iotdb_client.rs"
