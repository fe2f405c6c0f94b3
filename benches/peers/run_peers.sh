#!/usr/bin/env bash
# Runs prescale and statsforecast on the M4 hourly protocol back to back, on the same machine,
# and prints both tables and the ratios (OWA and wall time) per model.
#
#   bash benches/peers/run_peers.sh [--limit N]
#   MODELS=arima bash benches/peers/run_peers.sh --limit 40
#
# MODELS lists prescale's models (default: all with a statsforecast counterpart); each is
# paired with its statsforecast peer below. statsforecast's AutoARIMA needs more than 80
# CPU-minutes for all 414 series, so --limit is the practical way to time it.
#
# Makes its own virtual environment under benches/peers/.venv with PyPI statsforecast (pinned)
# on first use. CI never runs this: the numbers go in the issue notes.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=benches/peers/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "statsforecast==2.1.1"
fi
declare -A peer_of=([seasonal-naive]=SeasonalNaive [ets]=AutoETS [mstl]=MSTL [theta]=AutoTheta [arima]=AutoARIMA)
models=${MODELS:-seasonal-naive,ets,mstl,theta,arima}
peers=$(IFS=,; for m in $models; do printf '%s,' "${peer_of[$m]:?no statsforecast peer for $m}"; done)
peers=${peers%,}
out=$(mktemp -d)
cargo build --release -q
echo "== prescale"
./target/release/prescale bench m4 --models "$models" "$@" | tee "$out/prescale.csv"
echo "== statsforecast $("$venv/bin/python" -c 'import statsforecast; print(statsforecast.__version__)')"
"$venv/bin/python" benches/peers/statsforecast_m4.py --models "$peers" "$@" | tee "$out/peer.csv"
echo "== ratios (prescale / statsforecast)"
"$venv/bin/python" - "$out/prescale.csv" "$out/peer.csv" <<'PY'
import csv, sys
pairs = {"seasonal-naive": "SeasonalNaive", "ets": "AutoETS", "mstl": "MSTL", "theta": "AutoTheta",
         "arima": "AutoARIMA"}
ours = {r["model"]: r for r in csv.DictReader(open(sys.argv[1]))}
peer = {r["model"]: r for r in csv.DictReader(open(sys.argv[2]))}
print("model,peer,owa,peer_owa,owa_ratio,seconds,peer_seconds,speedup")
for mine, theirs in pairs.items():
    if mine in ours and theirs in peer:
        a, b = ours[mine], peer[theirs]
        ours_s, peer_s = float(a["seconds"]), float(b["seconds"])
        speedup = f"{peer_s / ours_s:.1f}x" if ours_s > 0 else "n/a (under 1 ms)"
        print(f"{mine},{theirs},{a['owa']},{b['owa']},{float(a['owa'])/float(b['owa']):.3f},"
              f"{a['seconds']},{b['seconds']},{speedup}")
PY
