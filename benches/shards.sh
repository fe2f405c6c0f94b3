#!/usr/bin/env bash
# Backtest shards as separate processes: wall time, speed-up and CPU per series for 1, 2, 4...
# shards of the same run, and whether the merged results are byte-identical.
#
#   PRESCALE=target/release/prescale bash benches/shards.sh [SERIES] [SHARD_COUNTS]
#   # defaults: 48 series, shard counts "1 2 4"
#
# The first SERIES M4 hourly series, `auto`, horizon 48, one window, seasons 24 and 168; each
# shard one process with RAYON_NUM_THREADS=1, so N shards use N cores (as N pods of one core
# would). Not part of CI: it measures, it does not check.
set -euo pipefail
cd "$(dirname "$0")/.."
series="${1:-48}"
counts="${2:-1 2 4}"
bin="${PRESCALE:-target/release/prescale}"
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release (or set PRESCALE)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
head -n "$((series + 1))" datasets/m4-hourly/Hourly-train.csv >"$work/input.csv"
args=(backtest --input "$work/input.csv" --model auto --horizon 48 --windows 1 --season 24,168)

printf 'series %s, %s, %s cores, load before: %s\n' "$series" "$bin" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %9s %9s %9s %12s  %s\n' shards wall_s speedup cpu_s cpu_s/series merged_sha256
base=""
for n in $counts; do
  out="$work/shards-$n"
  start=$(date +%s.%N)
  pids=()
  for ((i = 0; i < n; i++)); do
    RAYON_NUM_THREADS=1 "$bin" "${args[@]}" --shard "$i/$n" --output "$out/" >/dev/null 2>"$work/err-$n-$i" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  # Children's CPU (user + system) as the shell saw them reaped, in clock ticks.
  read -r cu cs < <(awk '{print $16, $17}' /proc/$$/stat)
  ticks=$(getconf CLK_TCK)
  "$bin" backtest merge "$out/" --output "$work/merged-$n.parquet" >/dev/null 2>&1
  sha=$(sha256sum "$work/merged-$n.parquet" | cut -c1-16)
  wall=$(echo "$end - $start" | bc -l)
  cpu=$(echo "($cu + $cs) / $ticks" | bc -l)
  prev_cpu=${prev_cpu:-0}
  this_cpu=$(echo "$cpu - $prev_cpu" | bc -l)
  prev_cpu=$cpu
  [ -n "$base" ] || base=$wall
  printf '%-7s %9.1f %9.2f %9.1f %12.2f  %s\n' "$n" "$wall" "$(echo "$base / $wall" | bc -l)" \
    "$this_cpu" "$(echo "$this_cpu / $series" | bc -l)" "$sha"
done
