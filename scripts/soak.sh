#!/usr/bin/env bash
# Long fault soaks of a dual-active pair (release build): for each seed, `duet-soak` with many faults
# (SIGKILL, SIGTERM, partitions, slow links), then the per-seed figures — faults, points acknowledged,
# lost, wrong, divergent — and a Markdown table for the README's reliability section.
#
#   scripts/soak.sh                                # 500 faults for each of the seeds 1 4 13 (their memtables: 1 MiB, 4 MiB, 256 KiB)
#   scripts/soak.sh --faults 100 --seeds "7 8"     # other counts and seeds
#   scripts/soak.sh -- --disk-full                 # arguments after -- go to every duet-soak run
#
# Logs go to $SOAK_LOG_DIR (default target/soak-logs), one per seed. A failed seed keeps its data
# directories (the log's last lines say where). Exit status 1 when any seed failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

faults=500
seeds="1 4 13"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --faults) faults=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log_dir=${SOAK_LOG_DIR:-target/soak-logs}
mkdir -p "$log_dir"
echo "building duetd and duet-soak (release)..." >&2
cargo build --release -q -p duet-server --bin duetd -p duet-soak --bin duet-soak

# The value of key= on a result line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

rows=()
failed=0
for seed in $seeds; do
  log=$log_dir/seed-$seed.log
  echo "== seed $seed, $faults faults (log: $log)" >&2
  started=$(date +%s)
  status=0
  "$(DUET_PROFILE=release duet_bin duet-soak)" --seed "$seed" --faults "$faults" "${extra[@]}" > "$log" 2>&1 || status=$?
  minutes=$(( ($(date +%s) - started + 59) / 60 ))
  result=$(grep '^result:' "$log" || true)
  if [ -z "$result" ]; then
    echo "seed $seed: no result (exit $status); last lines of $log:" >&2
    tail -20 "$log" >&2
    rows+=("| $seed | — | — | — | — | — | did not finish (exit $status) | $minutes min |")
    failed=1
    continue
  fi
  echo "seed $seed: faults $(field faults "$result"), points acknowledged $(field acknowledged_points "$result"), lost $(field lost "$result"), wrong $(field wrong "$result"), divergent $(field divergent "$result"): $(field verdict "$result")"
  rows+=("| $seed | $(field faults "$result") | $(field acknowledged_points "$result") | $(field unknown_ops "$result") | $(field lost "$result") | $(field wrong "$result") | $(field divergent "$result") | $(field verdict "$result"), $minutes min |")
  [ "$status" -eq 0 ] || failed=1
done

echo
echo "| seed | faults | points acknowledged | unknown operations | lost | wrong | divergent | verdict, duration |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
exit $failed
