#!/usr/bin/env bash
# prescale's `prophet` next to PyPI Prophet, back to back on this machine.
#
#   bash benches/peers/run_prophet.sh m4 [--limit N]   # M4 hourly rows for both, and the ratios
#   bash benches/peers/run_prophet.sh time             # per-series fit timings on the bundled data
#   bash benches/peers/run_prophet.sh fixtures         # rewrite tests/fixtures/prophet/*.json
#
# Makes its own virtual environment under benches/peers/.venv-prophet with PyPI prophet
# (pinned; its wheel ships a compiled Stan model, so nothing downloads at run time). CI never
# runs this: the tests read the fixtures it wrote, and the numbers go in the issue notes.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=benches/peers/.venv-prophet
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "prophet==1.5.0"
fi
py="$venv/bin/python"
command=${1:?usage: run_prophet.sh m4|time|fixtures [args]}
shift
case "$command" in
  m4)
    cargo build --release -q
    out=$(mktemp -d)
    echo "== prescale"
    ./target/release/prescale bench m4 --models prophet "$@" | tee "$out/prescale.csv"
    echo "== Prophet $("$py" -c 'import prophet; print(prophet.__version__)')"
    "$py" benches/peers/prophet_peer.py m4 "$@" | tee "$out/peer.csv"
    echo "== ratios (prescale / Prophet)"
    "$py" - "$out/prescale.csv" "$out/peer.csv" <<'PY'
import csv, sys
ours = {r["model"]: r for r in csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith("#"))}
peer = {r["model"]: r for r in csv.DictReader(l for l in open(sys.argv[2]) if not l.startswith("#"))}
a, b = ours["prophet"], peer["prophet-py"]
print("owa,peer_owa,owa_ratio,seconds,peer_seconds,speedup")
print(f"{a['owa']},{b['owa']},{float(a['owa'])/float(b['owa']):.3f},{a['seconds']},{b['seconds']},"
      f"{float(b['seconds'])/float(a['seconds']):.1f}x")
PY
    ;;
  time)
    echo "== Prophet (median of 5)"
    "$py" benches/peers/prophet_peer.py time datasets/nyc_taxi.csv datasets/Twitter_volume_AMZN.csv
    echo "== prescale (criterion: fit and predict on the same three series)"
    cargo bench --bench core -- prophet 2>&1 | grep -E "^prophet|time:"
    ;;
  fixtures)
    "$py" benches/peers/prophet_peer.py fixtures --out tests/fixtures/prophet
    ;;
  *)
    echo "unknown command $command" >&2
    exit 2
    ;;
esac
