"""PyPI Prophet on the same series and settings as prescale's `prophet` model.

Usage (through run_prophet.sh, which makes the virtual environment and pins the version):

  python prophet_peer.py m4 [--limit N]        # the M4 hourly protocol, CSV as `prescale bench m4`
  python prophet_peer.py fixtures --out DIR    # the parity fixtures for tests/prophet.rs
  python prophet_peer.py time PATH...          # fit + predict timings for CSV series

Settings everywhere: Prophet's defaults (25 changepoints in the first 80%, changepoint prior
0.05, seasonality prior 10, additive; yearly, weekly and daily seasonality on "auto", which for
these series means daily + weekly), MAP fit, 1000 uncertainty samples. M4 hourly series start at
1970-01-01T00:00Z with a one-hour step, as prescale reads them.
"""

import argparse
import csv
import json
import logging
import os
import sys
import time

import numpy as np
import pandas as pd

H, M, LEVEL = 48, 24, 95
NAIVE2_SMAPE, NAIVE2_MASE = 18.383, 2.395
HEAD_ROWS = 64
IN_SAMPLE_ROWS = 1000

logging.getLogger("cmdstanpy").disabled = True
logging.getLogger("prophet").setLevel(logging.WARNING)


def prophet():
    from prophet import Prophet

    return Prophet(interval_width=LEVEL / 100)


def read_wide(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    return {row[0]: np.array([float(v) for v in row[1:] if v.strip() != ""]) for row in rows}


def read_series(path):
    df = pd.read_csv(path)
    time_col = next(c for c in df.columns if c.lower() in ("timestamp", "ts", "time", "date"))
    value_col = next(c for c in df.columns if c != time_col)
    ds = pd.to_datetime(df[time_col], utc=True).dt.tz_localize(None)
    return pd.DataFrame({"ds": ds, "y": df[value_col].astype(float)})


def hourly_frame(values):
    return pd.DataFrame({"ds": pd.date_range("1970-01-01", periods=len(values), freq="h"), "y": values})


def fit(df):
    m = prophet()
    started = time.perf_counter()
    m.fit(df)
    return m, time.perf_counter() - started


def m4(args):
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "..", "datasets", "m4-hourly")
    train = read_wide(os.path.join(data, "Hourly-train.csv"))
    test = read_wide(os.path.join(data, "Hourly-test.csv"))
    ids = list(train)[: args.limit] if args.limit else list(train)
    smapes, mases, covers, msiss, fits = [], [], [], [], []
    started = time.perf_counter()
    for sid in ids:
        y, actual = train[sid], test[sid]
        m, seconds = fit(hourly_frame(y))
        fits.append(seconds)
        future = m.make_future_dataframe(periods=H, freq="h", include_history=False)
        fc = m.predict(future)
        yhat, lo, hi = fc["yhat"].to_numpy(), fc["yhat_lower"].to_numpy(), fc["yhat_upper"].to_numpy()
        scale = np.mean(np.abs(y[M:] - y[:-M]))
        denom = np.abs(actual) + np.abs(yhat)
        smapes.append(np.mean(np.where(denom == 0, 0.0, 200 * np.abs(actual - yhat) / np.where(denom == 0, 1, denom))))
        mases.append(np.mean(np.abs(actual - yhat)) / scale)
        alpha = 1 - LEVEL / 100
        msiss.append(np.mean((hi - lo) + 2 / alpha * np.maximum(lo - actual, 0)
                             + 2 / alpha * np.maximum(actual - hi, 0)) / scale)
        covers.append(100 * np.mean((actual >= lo) & (actual <= hi)))
    seconds = time.perf_counter() - started
    smape, mase = float(np.mean(smapes)), float(np.mean(mases))
    owa = (smape / NAIVE2_SMAPE + mase / NAIVE2_MASE) / 2
    print("model,smape,mase,owa,seconds,n_series,coverage_95,msis_95")
    print(f"prophet-py,{smape:.3f},{mase:.3f},{owa:.4f},{seconds:.2f},{len(ids)},"
          f"{np.mean(covers):.2f},{np.mean(msiss):.3f}")
    print(f"# fit seconds per series: median {np.median(fits):.4f}, total {np.sum(fits):.2f}",
          file=sys.stderr)


def fixture(name, df, step):
    m, seconds = fit(df)
    features, _, _, _ = m.make_all_seasonality_features(m.history)
    p = m.params
    beta = [
        {"name": col, "head": features[col].to_numpy()[:HEAD_ROWS].tolist(), "value": float(b)}
        for col, b in zip(features.columns, p["beta"][0])
    ]
    n = len(df)
    stride = max(1, -(-n // IN_SAMPLE_ROWS))
    index = list(range(0, n, stride))
    in_sample = m.predict(df.iloc[index][["ds"]])
    future = pd.DataFrame({"ds": [df["ds"].iloc[-1] + step * (i + 1) for i in range(H)]})
    fc = m.predict(future)
    import prophet as prophet_pkg

    return {
        "series": name,
        "prophet_version": prophet_pkg.__version__,
        "fit_seconds": seconds,
        "y_scale": float(m.y_scale),
        "params": {
            "k": float(p["k"][0, 0]),
            "m": float(p["m"][0, 0]),
            "sigma_obs": float(p["sigma_obs"][0, 0]),
            "delta": [float(d) for d in p["delta"][0]],
            "beta": beta,
        },
        "in_sample": {"index": index, "yhat": in_sample["yhat"].tolist()},
        "forecast": {
            "yhat": fc["yhat"].tolist(),
            "trend": fc["trend"].tolist(),
            "yhat_lower": fc["yhat_lower"].tolist(),
            "yhat_upper": fc["yhat_upper"].tolist(),
        },
    }


def fixtures(args):
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    cases = [
        ("nyc_taxi", read_series(os.path.join(root, "datasets", "nyc_taxi.csv")), pd.Timedelta(minutes=30)),
        ("Twitter_volume_AMZN", read_series(os.path.join(root, "datasets", "Twitter_volume_AMZN.csv")),
         pd.Timedelta(minutes=5)),
    ]
    train = read_wide(os.path.join(root, "datasets", "m4-hourly", "Hourly-train.csv"))
    cases.append(("m4_H1", hourly_frame(train["H1"]), pd.Timedelta(hours=1)))
    os.makedirs(args.out, exist_ok=True)
    for name, df, step in cases:
        out = fixture(name, df, step)
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w") as f:
            json.dump(out, f, separators=(",", ":"))
        print(f"{name}: {len(df)} points, fit {out['fit_seconds']:.3f} s -> {path}")


def timing(args):
    """Median of five fits and predictions per series; for the first path also its last
    2,000 hourly means (the series of prescale's criterion benchmark)."""
    print("series,points,fit_seconds,predict_seconds")
    cases = [(os.path.basename(p), read_series(p)) for p in args.paths]
    first = cases[0][1]
    hourly = first.resample("h", on="ds").mean().reset_index().dropna().tail(2000)
    cases.append((cases[0][0] + " hourly tail", hourly.reset_index(drop=True)))
    for name, df in cases:
        fits, predicts = [], []
        for _ in range(5):
            m, seconds = fit(df)
            fits.append(seconds)
            future = pd.DataFrame({"ds": [df["ds"].iloc[-1] + (df["ds"].iloc[-1] - df["ds"].iloc[-2]) * (i + 1)
                                          for i in range(H)]})
            started = time.perf_counter()
            m.predict(future)
            predicts.append(time.perf_counter() - started)
        print(f"{name},{len(df)},{np.median(fits):.4f},{np.median(predicts):.4f}")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("m4")
    p.add_argument("--limit", type=int, default=None)
    p = sub.add_parser("fixtures")
    p.add_argument("--out", required=True)
    p = sub.add_parser("time")
    p.add_argument("paths", nargs="+")
    args = parser.parse_args()
    {"m4": m4, "fixtures": fixtures, "time": timing}[args.command](args)


if __name__ == "__main__":
    main()
