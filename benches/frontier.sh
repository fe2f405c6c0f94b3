#!/usr/bin/env bash
# Cost against shortfall on every NAB trace (issue 21): each trace replayed along the frontier
# sweep (HPA targets 0.5-1.0; predictive, hybrid and the rate reference at p50-p99; the replay
# fed the future) at start-ups of 1, 2 and 5 minutes.
#
#   PRESCALE=target/release/prescale bash benches/frontier.sh [OUT_DIR] [NAB_DIR]
#   # defaults: OUT_DIR benches/results/frontier, NAB_DIR ../shared/datasets/nab
#
# Writes OUT_DIR/frontier.csv (every replay: policy, target or quantile, replica-hours, steps
# short, unserved load, SLO minutes, trace, start-up) and OUT_DIR/frontier-comparison.csv (per
# HPA target: what predictive and hybrid need for the HPA's unserved load). The bundled taxi
# trace stands for NAB's copy (the same data). Not part of CI: it measures, it does not check.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benches/results/frontier}"
nab="${2:-../shared/datasets/nab}"
bin="${PRESCALE:-target/release/prescale}"
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release (or set PRESCALE)" >&2; exit 1; }
[ -d "$nab" ] || { echo "no NAB folder at $nab (the second argument)" >&2; exit 1; }
mkdir -p "$out"
printf '%s, %s cores, load before: %s\n' "$bin" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
start=$(date +%s)
"$bin" simulate --frontier --startups 1m,2m,5m \
  --input "$nab"/Twitter_volume_*.csv "$nab"/cpu_utilization_asg_misconfiguration.csv \
  "$nab"/ec2_request_latency_system_failure.csv datasets/nyc_taxi.csv \
  --capacity auto --min-replicas 1 --max-replicas 1000 --duplicates mean \
  --output "$out" >/dev/null 2>"$out/stderr.txt"
printf 'done in %s s; tables in %s\n' "$(( $(date +%s) - start ))" "$out" >&2
