"""statsforecast on the M4 hourly protocol, printing the same CSV as `prescale bench m4`.

Usage: python statsforecast_m4.py [--data DIR] [--models SeasonalNaive,AutoETS,MSTL,AutoTheta,AutoARIMA]
                                  [--limit N]
Run it through `run_peers.sh`, which makes the virtual environment and pins the version.

Protocol (as prescale's src/eval/m4.rs): each series forecast 48 steps from its training part;
sMAPE and MASE (in-sample seasonal naive scale, m = 24) per series, averaged; OWA against
Naive2's published hourly sMAPE 18.383 and MASE 2.395; 95% interval coverage and MSIS.
The same seasonal periods as prescale: 24 for every model, 24 and 168 for MSTL.
"""

import argparse
import csv
import os
import time

import numpy as np
import pandas as pd

H, M, LEVEL = 48, 24, 95
NAIVE2_SMAPE, NAIVE2_MASE = 18.383, 2.395


def read_wide(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    out = {}
    for row in rows:
        values = [float(v) for v in row[1:] if v.strip() != ""]
        out[row[0]] = np.array(values)
    return out


def models_by_name(names):
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

    make = {
        "SeasonalNaive": lambda: SeasonalNaive(season_length=M),
        "AutoETS": lambda: AutoETS(season_length=M),
        "MSTL": lambda: MSTL(season_length=[24, 168], trend_forecaster=AutoETS(model="ZZN")),
        "AutoTheta": lambda: AutoTheta(season_length=M),
        "AutoARIMA": lambda: AutoARIMA(season_length=M),
    }
    return [(n, make[n]()) for n in names]


def score(train, test, fc, lo, hi):
    scale = np.mean(np.abs(train[M:] - train[:-M]))
    denom = np.abs(test) + np.abs(fc)
    smape = np.mean(np.where(denom == 0, 0.0, 200 * np.abs(test - fc) / np.where(denom == 0, 1, denom)))
    mase = np.mean(np.abs(test - fc)) / scale
    alpha = 1 - LEVEL / 100
    msis = np.mean((hi - lo) + 2 / alpha * np.maximum(lo - test, 0) + 2 / alpha * np.maximum(test - hi, 0)) / scale
    coverage = 100 * np.mean((test >= lo) & (test <= hi))
    return smape, mase, coverage, msis


def main():
    parser = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "..", "..", "datasets", "m4-hourly"))
    parser.add_argument("--models", default="SeasonalNaive,AutoETS,MSTL,AutoTheta")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    from statsforecast import StatsForecast

    train = read_wide(os.path.join(args.data, "Hourly-train.csv"))
    test = read_wide(os.path.join(args.data, "Hourly-test.csv"))
    ids = list(train)[: args.limit] if args.limit else list(train)
    frames = [pd.DataFrame({"unique_id": i, "ds": np.arange(len(train[i])), "y": train[i]}) for i in ids]
    df = pd.concat(frames, ignore_index=True)

    print("model,smape,mase,owa,seconds,n_series,coverage_95,msis_95")
    for name, model in models_by_name(args.models.split(",")):
        sf = StatsForecast(models=[model], freq=1, n_jobs=-1)
        started = time.perf_counter()
        fc = sf.forecast(df=df, h=H, level=[LEVEL])
        seconds = time.perf_counter() - started
        col = [c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
        scores = []
        for i in ids:
            rows = fc[fc["unique_id"] == i]
            scores.append(score(train[i], test[i], rows[col].to_numpy(),
                                rows[f"{col}-lo-{LEVEL}"].to_numpy(), rows[f"{col}-hi-{LEVEL}"].to_numpy()))
        smape, mase, coverage, msis = np.mean(np.array(scores), axis=0)
        owa = 0.5 * (smape / NAIVE2_SMAPE + mase / NAIVE2_MASE)
        print(f"{name},{smape:.3f},{mase:.3f},{owa:.4f},{seconds:.2f},{len(ids)},{coverage:.2f},{msis:.3f}", flush=True)


if __name__ == "__main__":
    main()
