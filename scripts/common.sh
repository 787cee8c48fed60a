# Shared by the start/stop scripts: locating the repository, the binaries and an instance's data dir.
# Sourced, not executed.

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# The cargo profile the scripts run: release unless DUET_PROFILE=debug.
duet_profile() { echo "${DUET_PROFILE:-release}"; }

duet_bin() {
  local name=$1 root profile dir
  root=$(repo_root); profile=$(duet_profile)
  dir=$root/target/$profile
  [ "$profile" = "dev" ] && dir=$root/target/debug
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

# The data dir an instance uses, from the flags given to duetd: --data-dir wins, else data_dir in the
# --config file, else ./data.
data_dir_of() {
  local config="" dir="" prev=""
  for arg in "$@"; do
    case "$prev" in
      --data-dir) dir=$arg ;;
      --config|-c) config=$arg ;;
    esac
    case "$arg" in
      --data-dir=*) dir=${arg#--data-dir=} ;;
      --config=*) config=${arg#--config=} ;;
    esac
    prev=$arg
  done
  if [ -z "$dir" ] && [ -n "$config" ] && [ -f "$config" ]; then
    dir=$(sed -n 's/^[[:space:]]*data_dir[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$config" | head -1)
  fi
  echo "${dir:-data}"
}
