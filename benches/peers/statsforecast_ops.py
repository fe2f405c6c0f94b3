"""statsforecast on the windows `prescale bench ops` scores, side by side with it.

Usage:
    prescale bench ops --export DIR [same flags as the run it is compared with]
    benches/peers/.venv/bin/python benches/peers/statsforecast_ops.py --export DIR [--jobs 2]
    (or `bash benches/peers/run_ops_peers.sh`, which does both and makes the venv)

The export holds each series exactly as prescale loaded it (regularized onto its grid,
missing steps empty) and every window: its horizon and the row its forecast starts at. Here
each window is forecast from the rows before it, and scored as prescale's src/eval/score.rs
does: MASE against the in-sample seasonal naive error (the series' first season) of that
history, sMAPE, 95% coverage; missing actual values are skipped; the table averages over all
windows of all series, as `bench ops` does. statsforecast cannot take missing values, so
interior gaps are interpolated linearly and leading ones dropped (what prescale's models do);
forecasts are floored at zero when the history never went below it (prescale's `--floor auto`).

Peers (statsforecast's own answer to each of prescale's models):
    SeasonalNaive   season_length = the first season
    AutoETS         season_length = the first season up to 24 steps, else none (R's ets
                    refuses longer seasons; statsforecast's seasonal AutoETS on a 288- or
                    2,016-step season did not finish four windows in three minutes here)
    STL-ETS         the first season by MSTL, AutoETS(ZZN) on the rest (R's stlf; prescale's ets)
    AutoTheta       season_length = the first season
    MSTL            every season, AutoETS(ZZN) trend (prescale's mstl)
    MSTL-ARIMA      the first season by MSTL, AutoARIMA on the rest (prescale's arima removes
                    seasons over 48 steps by STL; AutoARIMA with season_length 288 is far too
                    slow to run here)
"""

import argparse
import csv
import multiprocessing
import os
import time

import numpy as np
import pandas as pd

LEVEL = 95


def make(name, seasons):
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

    m = seasons[0] if seasons else 1
    if name == "SeasonalNaive":
        return SeasonalNaive(season_length=m)
    if name == "AutoETS":
        return AutoETS(season_length=m if m <= 24 else 1)
    if name == "STL-ETS":
        return MSTL(season_length=[m], trend_forecaster=AutoETS(model="ZZN"))
    if name == "AutoTheta":
        return AutoTheta(season_length=m)
    if name == "MSTL":
        return MSTL(season_length=seasons or [1], trend_forecaster=AutoETS(model="ZZN"))
    if name == "MSTL-ARIMA":
        return MSTL(season_length=[m], trend_forecaster=AutoARIMA())
    raise SystemExit(f"unknown model {name}")


def seasonal_scale(history, m):
    m = max(m, 1)
    if len(history) <= m:
        return np.nan
    d = np.abs(history[m:] - history[:-m])
    d = d[~np.isnan(d)]
    return d.mean() if len(d) else np.nan


def prepare(history):
    """Leading missing values dropped, interior gaps interpolated, as prescale's Prepared."""
    s = pd.Series(history)
    first = s.first_valid_index()
    s = s.loc[first:].interpolate(limit_area="inside")
    return s.dropna().to_numpy()


def run_window(task):
    name, values, seasons, period, horizon, origin = task
    history = values[:origin]
    actual = values[origin : origin + horizon]
    started = time.perf_counter()
    try:
        y = prepare(history)
        out = make(name, seasons).forecast(y=y, h=horizon, level=[LEVEL])
        mean, lo, hi = out["mean"], out[f"lo-{LEVEL}"], out[f"hi-{LEVEL}"]
        if np.nanmin(history) >= 0:
            mean, lo, hi = (np.maximum(v, 0) for v in (mean, lo, hi))
        if not np.all(np.isfinite(mean)):
            raise ValueError("non-finite forecast")
    except Exception as e:  # a failed window is counted, as prescale counts its own
        return None, f"{type(e).__name__}: {e}", time.perf_counter() - started
    seconds = time.perf_counter() - started
    ok = ~np.isnan(actual)
    if not ok.any():
        return None, "no observed actual value", seconds
    a, f = actual[ok], mean[ok]
    denom = np.abs(a) + np.abs(f)
    smape = np.mean(np.where(denom == 0, 0.0, 200 * np.abs(a - f) / np.where(denom == 0, 1, denom)))
    mase = np.mean(np.abs(a - f)) / seasonal_scale(history, period)
    coverage = 100 * np.mean((a >= lo[ok]) & (a <= hi[ok]))
    return (mase, smape, coverage), None, seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", required=True, help="the folder `prescale bench ops --export` wrote")
    parser.add_argument("--models", default="SeasonalNaive,AutoETS,STL-ETS,AutoTheta,MSTL,MSTL-ARIMA")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()

    with open(os.path.join(args.export, "windows.csv")) as f:
        windows = list(csv.DictReader(f))
    series = {}
    for w in windows:
        if w["file"] not in series:
            df = pd.read_csv(os.path.join(args.export, w["file"]))
            series[w["file"]] = df["value"].to_numpy(dtype=float)
    horizons = sorted({int(w["horizon"]) for w in windows})

    print("horizon,model,mase,smape,coverage_95,windows,failed,seconds")
    with multiprocessing.Pool(args.jobs) as pool:
        for horizon in horizons:
            group = [w for w in windows if int(w["horizon"]) == horizon]
            for name in args.models.split(","):
                tasks = [
                    (
                        name,
                        series[w["file"]],
                        [int(s) for s in w["seasons"].split()],
                        int(w["period"]),
                        horizon,
                        int(w["origin"]),
                    )
                    for w in group
                ]
                results = pool.map(run_window, tasks)
                scores = [r for r, _, _ in results if r is not None]
                failures = [e for _, e, _ in results if e is not None]
                seconds = sum(s for _, _, s in results)
                mean = lambda i: np.nanmean([s[i] for s in scores]) if scores else float("nan")
                print(
                    f"{horizon},{name},{mean(0):.3f},{mean(1):.3f},{mean(2):.1f},{len(scores)},{len(failures)},{seconds:.1f}",
                    flush=True,
                )
                for e in sorted(set(failures))[:3]:
                    print(f"#   {name} failed: {e}", flush=True)


if __name__ == "__main__":
    main()
