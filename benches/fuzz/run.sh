#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a fixed budget each and prints a table of
# executions, corpus size and crashes. Not part of CI (it needs nightly Rust and takes
# SECONDS × targets); see "Fuzzing" in the README.
#
#   bash benches/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     # default: 600 s, all targets
#
# FUZZ_JOBS=N runs N targets at once (default 1): each still gets SECONDS of wall time, so
# with fewer free cores than jobs each executes fewer inputs (the table counts them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
budget="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv timestamp config model_file prometheus)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
work="${FUZZ_WORK:-$here/work}"   # the growing corpus and any crash inputs (git-ignored)

# No sanitizer: the crate forbids `unsafe`, so the executions ASan would cost are better spent
# on inputs; debug assertions on, so an integer overflow is a crash rather than a wrong value.
opts=(--fuzz-dir "$here" --sanitizer none --debug-assertions)
cargo +nightly fuzz build "${opts[@]}"

# One target for the budget; libFuzzer stops at the first crash and leaves its input in
# artifacts/.
fuzz_one() {
  local t=$1 status=0
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  # -timeout: one input taking longer than 10 s is a finding (a hang), as is one using more
  # than 4 GiB (-rss_limit_mb) or asking for more than 2 GiB at once (-malloc_limit_mb).
  cargo +nightly fuzz run "${opts[@]}" "$t" "$work/corpus/$t" "$here/seeds/$t" -- \
    -max_total_time="$budget" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$work/$t.log" 2>&1 || status=$?
  echo "$status" >"$work/$t.status"
}

jobs_at_once="${FUZZ_JOBS:-1}"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_at_once" ]; do sleep 1; done
  fuzz_one "$t" &
done
wait

printf '%-12s %10s %10s %8s %s\n' target seconds executions corpus crashes
for t in "${targets[@]}"; do
  log="$work/$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  crashes=$(find "$work/artifacts/$t" -type f | wc -l)
  printf '%-12s %10s %10s %8s %s\n' "$t" "${secs:-?}" "${runs:-?}" \
    "$(find "$work/corpus/$t" -type f | wc -l)" "$crashes (exit $(cat "$work/$t.status"), log $log)"
done
