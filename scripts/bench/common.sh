# Shared by the benchmarks' run.sh scripts: messages, the duetd and bench builds, free ports,
# throwaway PostgreSQL 15 clusters and the cleanup of what a run started. Sourced, not executed; the
# sourcing script may set BENCH_NAME (for messages; by default its directory's name) and, before
# start_pg, WORK_DIR (make_work_dir).

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_STARTED=()
BENCH_NAME="${BENCH_NAME:-$(basename "$(dirname "${BASH_SOURCE[1]}")")}"

say() { echo "[${BENCH_NAME:-bench} $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[${BENCH_NAME:-bench}] ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

# Fails unless PostgreSQL's binaries and the OS user to run a cluster as are there.
require_pg() {
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the cluster as"
}

# Cargo's target directory as cargo resolves it (CARGO_TARGET_DIR, config, else <repo>/target).
bench_target_dir() {
    (cd "$BENCH_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null) \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' | grep . || echo "$BENCH_ROOT/target"
}

# Builds duetd (release) unless SKIP_DUETD_BUILD=1; sets DUETD_BIN.
build_duetd() {
    DUETD_BIN="$(bench_target_dir)/release/duetd"
    if [ "${SKIP_DUETD_BUILD:-0}" = 1 ]; then
        say "SKIP_DUETD_BUILD=1: using the existing $DUETD_BIN"
    else
        say "building duetd (cargo build --release -p duet-server)"
        (cd "$BENCH_ROOT" && cargo build --release -p duet-server --bin duetd) || die "duetd build failed"
    fi
    [ -x "$DUETD_BIN" ] || die "no duetd binary at $DUETD_BIN"
}

# Builds one benchmark program of scripts/bench (release, in <target>/bench); sets BENCH_BIN.
build_bench() { # package
    local target; target="$(bench_target_dir)/bench"
    say "building $1"
    (cd "$BENCH_ROOT/scripts/bench" && CARGO_TARGET_DIR="$target" cargo build --release -p "$1") \
        || die "$1 build failed"
    BENCH_BIN="$target/release/$1"
}

# The write workload's shape, as the environment gives it or by default (the ingest and replication
# benchmarks share it; $1 the default batches per client), exported to the bench program.
export_workload() { # default-batches-per-client
    export CLIENTS="${CLIENTS:-4}" ROWS_PER_BATCH="${ROWS_PER_BATCH:-1000}" COLUMNS="${COLUMNS:-10}"
    export BATCHES_PER_CLIENT="${BATCHES_PER_CLIENT:-$1}" REPEATS="${REPEATS:-3}"
}

# A fresh work directory /tmp/<prefix>.XXXXXX as WORK_DIR (readable by the postgres user), removed
# with what the run started (bench_cleanup) when the script exits.
make_work_dir() { # prefix
    WORK_DIR="$(mktemp -d "/tmp/$1.XXXXXX")"
    chmod 755 "$WORK_DIR"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || { p=$((55432 + RANDOM % 1000)); while ss -ltn "sport = :$p" | grep -q LISTEN; do p=$((p+1)); done; echo $p; }
}

# A fresh PostgreSQL cluster in $WORK_DIR/pg-<name> on <port>, default durability (fsync=on,
# synchronous_commit=on) plus <extra> server options; stopped by stop_pgs.
start_pg() { # name port extra-options
    local name=$1 port=$2 extra=${3:-} data="$WORK_DIR/pg-$1"
    say "initdb $name in $data, port $port"
    install -d -o postgres -g postgres -m 700 "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$WORK_DIR/initdb-$name.log" 2>&1 \
        || { cat "$WORK_DIR/initdb-$name.log" >&2; die "initdb ($name) failed"; }
    touch "$WORK_DIR/pg-$name.log"; chown postgres "$WORK_DIR/pg-$name.log"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$WORK_DIR/pg-$name.log" -w -t 60 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on $extra" start >/dev/null \
        || { cat "$WORK_DIR/pg-$name.log" >&2; die "PostgreSQL ($name) did not start"; }
    PG_STARTED+=("$data")
}

stop_pgs() {
    local d
    for d in "${PG_STARTED[@]}"; do
        say "stopping PostgreSQL ($d)"
        as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
    done
}

# Stops the duetd processes the bench program left (their pids in $WORK_DIR/duetd-*.pid), only if
# they are still duetd.
stop_leftover_duetds() {
    local f pid
    for f in "$WORK_DIR"/duetd-*.pid; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q duetd "/proc/$pid/cmdline" 2>/dev/null; then
            say "stopping leftover duetd (pid $pid)"; kill -TERM "$pid"; sleep 2; kill -KILL "$pid" 2>/dev/null
        fi
    done
}

# The end of a run: on failure the tails of its logs; the work directory removed unless KEEP_WORK_DIR=1.
finish_work_dir() { # exit-code
    if [ "$1" -ne 0 ]; then
        for f in "$WORK_DIR"/*.log; do [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }; done
    fi
    if [ "${KEEP_WORK_DIR:-0}" = 1 ]; then say "kept $WORK_DIR"; else rm -rf "$WORK_DIR"; fi
}

# The EXIT trap of a benchmark run: leftover duetds and the clusters stopped, the work directory
# handled as finish_work_dir says; the run's exit code kept.
bench_cleanup() {
    local rc=$?
    set +e
    stop_leftover_duetds
    stop_pgs
    finish_work_dir $rc
    exit $rc
}

# The commit measured, `+dirty` when the crates differ from it.
duet_rev() {
    local rev
    rev="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$BENCH_ROOT" status --porcelain --untracked-files=no -- crates 2>/dev/null)" ] || \
       [ -n "$(git -C "$BENCH_ROOT" ls-files --others --exclude-standard crates 2>/dev/null)" ]; then rev="$rev+dirty"; fi
    echo "$rev"
}
