"""Reference ARIMA fits from statsforecast (a port of R's `arima`), kept as test fixtures.

Usage: benches/peers/.venv/bin/python benches/peers/arima_fixtures.py > tests/fixtures/arima_reference.json
(The venv is made by run_peers.sh.) CI reads the JSON only; it never runs Python.

Each case: a real series, a fixed order, method CSS-ML (R's default), and statsforecast's
coefficients, log-likelihood, sigma², AIC, AICc and a 12-step point forecast.
"""

import csv
import json
import os

import numpy as np
from statsforecast.arima import arima, predict_arima

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "..", "datasets")


def m4(series_id):
    with open(os.path.join(data, "m4-hourly", "Hourly-train.csv")) as f:
        for row in csv.reader(f):
            if row[0] == series_id:
                return np.array([float(v) for v in row[1:] if v.strip()])
    raise KeyError(series_id)


def taxi_hourly(n):
    with open(os.path.join(data, "nyc_taxi.csv")) as f:
        values = [float(r[1]) for r in list(csv.reader(f))[1:]]
    hourly = np.array(values).reshape(-1, 2).mean(axis=1)
    return hourly[-n:]


cases = [
    ("M4 H1, ARIMA(2,1,1)", m4("H1"), (2, 1, 1), (0, 0, 0), 1, False),
    ("M4 H2, ARIMA(2,0,1) with mean", m4("H2"), (2, 0, 1), (0, 0, 0), 1, True),
    ("M4 H1, ARIMA(1,0,1)(1,1,0)[24]", m4("H1"), (1, 0, 1), (1, 1, 0), 24, False),
    ("nyc_taxi hourly (last 600), ARIMA(1,0,0)(0,1,1)[24]", taxi_hourly(600), (1, 0, 0), (0, 1, 1), 24, False),
]

out = []
for name, y, order, sorder, m, mean in cases:
    fit = arima(y, order=order, seasonal={"order": sorder, "period": m}, include_mean=mean, method="CSS-ML")
    npar = len(fit["coef"]) + 1
    nobs = fit["nobs"]
    aicc = fit["aic"] + 2 * npar * (npar + 1) / (nobs - npar - 1)
    fc = predict_arima(fit, n_ahead=12, se_fit=False)
    out.append({
        "name": name,
        "values": y.tolist(),
        "order": list(order),
        "seasonal_order": list(sorder),
        "period": m,
        "include_mean": mean,
        "coef": {k: float(v) for k, v in fit["coef"].items()},
        "loglik": float(fit["loglik"]),
        "sigma2": float(fit["sigma2"]),
        "aic": float(fit["aic"]),
        "aicc": float(aicc),
        "nobs": int(nobs),
        "forecast": np.asarray(fc).ravel().tolist(),
    })
print(json.dumps({"source": "statsforecast.arima.arima, method CSS-ML", "cases": out}, indent=1))
