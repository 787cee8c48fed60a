# Shared by the start/stop scripts and the compatibility suites: locating the repository, the
# binaries, an instance's data dir and its process, and the suites' Python venvs. Sourced, not executed. No TOML is read here: duetd itself says which data directory a
# set of flags and a configuration file give (--print-data-dir), and owns its pid file there.

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# The cargo profile the scripts run: release unless DUET_PROFILE=debug.
duet_profile() { echo "${DUET_PROFILE:-release}"; }

# Cargo's target directory, as cargo itself resolves it (CARGO_TARGET_DIR, .cargo/config.toml's
# build.target-dir, else <repo>/target). Asked once per script run.
target_dir() {
  if [ -z "${DUET_TARGET_DIR:-}" ]; then
    local metadata
    metadata=$(cd "$(repo_root)" && cargo metadata --format-version 1 --no-deps 2>/dev/null) || true
    DUET_TARGET_DIR=$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    [ -n "$DUET_TARGET_DIR" ] || DUET_TARGET_DIR=${CARGO_TARGET_DIR:-$(repo_root)/target}
    export DUET_TARGET_DIR
  fi
  echo "$DUET_TARGET_DIR"
}

duet_bin() {
  local name=$1 profile dir
  profile=$(duet_profile)
  dir=$(target_dir)/$profile
  [ "$profile" = "dev" ] && dir=$(target_dir)/debug
  echo "$dir/$name"
}

# Builds the binaries when they are missing or older than the sources.
ensure_built() {
  local root profile flag=""
  root=$(repo_root); profile=$(duet_profile)
  [ "$profile" = "release" ] && flag="--release"
  if [ ! -x "$(duet_bin duetd)" ] || [ ! -x "$(duet_bin duet)" ] || \
     [ -n "$(find "$root/crates" "$root/Cargo.toml" -newer "$(duet_bin duetd)" -name '*.rs' -o -newer "$(duet_bin duetd)" -name 'Cargo.toml' 2>/dev/null | head -1)" ]; then
    echo "building duetd and duet ($profile)..." >&2
    (cd "$root" && cargo build $flag --bins -q)
  fi
}

# The data dir an instance uses, from the flags given to duetd (--data-dir, --config …), as duetd
# resolves it; a configuration error is printed by duetd and fails. Builds duetd only if it is missing
# (an older build reads the same flags, and stopping a server should not wait for a build).
data_dir_of() {
  [ -x "$(duet_bin duetd)" ] || ensure_built
  "$(duet_bin duetd)" "$@" --print-data-dir
}

# Whether process $1 is a duetd (its executable, else its command name): a pid file may name a pid
# the system has since given to another process.
is_duetd() {
  local pid=$1 exe
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  if exe=$(readlink "/proc/$pid/exe" 2>/dev/null); then
    exe=${exe% (deleted)}  # a rebuilt binary: the running process still is duetd
    [ "$(basename "$exe")" = "duetd" ]
  else
    [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "duetd" ]
  fi
}

# The pid of the duetd that owns data directory $1, printed if one runs: its pid file names a duetd
# and the directory's lock (<data_dir>/LOCK, flock) is held. A pid file left by a duetd that died
# names nobody, even when the system has given its pid to another process or another duetd.
running_pid() {
  local dir=$1 pid
  [ -f "$dir/duetd.pid" ] || return 1
  pid=$(cat "$dir/duetd.pid")
  is_duetd "$pid" || return 1
  if command -v flock >/dev/null && [ -f "$dir/LOCK" ] && flock -n "$dir/LOCK" true 2>/dev/null; then
    return 1
  fi
  echo "$pid"
}

# A compatibility suite's venv, <repo>/$1, ready: created with the packages of the requirements.txt
# of the suite's directory $2, or updated when the Python statement $3 (the suite's imports) fails in
# it. Sets PY to the venv's python.
suite_venv() {
  local venv reqs check=$3
  venv="$(repo_root)/$1"
  reqs="$2/requirements.txt"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv at $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$reqs"
  elif ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "updating venv at $venv" >&2
    "$venv/bin/python" -m pip install --quiet -r "$reqs"
  fi
  PY="$venv/bin/python"
}
