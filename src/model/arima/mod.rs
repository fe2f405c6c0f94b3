//! `arima`: seasonal ARIMA written here (augurs has none): exact likelihood by the Kalman
//! filter, CSS-ML estimation as in R's `arima`, the stepwise order search of `auto.arima`,
//! forecasts and intervals from the ψ-weights.
//!
//! Speed comes from two choices. The search ranks candidates by conditional-sum-of-squares
//! fits and fits only the winner by exact ML (auto.arima's `approximation`). The exact
//! likelihood runs the Chandrasekhar recursions ([`kalman`]), O(r) per observation instead of
//! the O(r²) covariance update, which matters for seasonal models whose state dimension is
//! about 50 with hourly data.
//!
//! Fallbacks, said in the description: when no order of the search can be estimated the
//! model is a random walk; when the ML optimiser fails the CSS estimates are kept, and when it
//! stops at its iteration limit its best point is.
//!
//! Long seasons: a seasonal ARMA state grows with the period (a weekly season of hourly data
//! is a 168-dimensional state), so for a first season over [`MAX_SEASONAL_PERIOD`] steps the
//! season is removed by STL (as `ets` does, see [`super::decompose`]) and a non-seasonal
//! ARIMA is searched on the rest; the description says so.

mod auto;
mod estimate;
pub mod kalman;
mod polynomial;

pub use auto::{kpss, seasonal_strength, select, Selection};
pub use estimate::{
    estimate, inverse_partrans, is_stationary, likelihood_at, partrans, Coefficients, Estimate,
    EstimateError, Spec, MAX_STATE,
};
pub use kalman::Likelihood;

use super::decompose::SeasonalAdjustment;

/// Longest season modelled inside the ARIMA; longer ones are removed by STL first.
pub const MAX_SEASONAL_PERIOD: usize = 48;

/// The most recent points an ARIMA is fitted on. The search's cost grows with the history:
/// a 3-window backtest took 77 s on the whole Twitter series (15,831 points) and 23 s on the
/// taxi series (10,320 points, m = 48), against 1.4 s and 4.2 s on the last 2,000 points,
/// for a MASE of 0.667 instead of 0.649 and 1.159 instead of 1.070 (4,000 points gave 0.670
/// and 1.197 in 2.0 s and 31 s). 2,000 points is 83 days of hourly data and holds every M4
/// hourly series whole.
pub const MAX_HISTORY: usize = 2_000;

use crate::forecast::{Interval, Prediction};
use crate::series::Series;

use super::{normal_quantile, Fitted, Model, ModelError, Prepared};
use polynomial::{differencing, psi_weights};

/// A seasonal ARIMA: a fixed order, or chosen by the stepwise search.
#[derive(Debug, Clone, Copy)]
pub struct Arima {
    spec: Option<Spec>,
}

impl Arima {
    /// The model for a fixed `spec`.
    pub fn new(spec: Spec) -> Self {
        Self { spec: Some(spec) }
    }

    /// The order chosen per series by the Hyndman–Khandakar stepwise search.
    pub fn auto() -> Self {
        Self { spec: None }
    }

    /// The model its settings describe: a fixed order, or the search when none is given.
    pub fn from_settings(settings: Settings) -> Result<Self, ModelError> {
        Ok(match settings.spec()? {
            Some(spec) => Self::new(spec),
            None => Self::auto(),
        })
    }
}

/// `arima`'s settings (statsforecast's names): a fixed order, or none for the stepwise
/// search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[p, d, q]`: fixes the order instead of searching; a mean is fitted when there is no
    /// differencing.
    #[serde(default)]
    pub order: Option<[usize; 3]>,
    /// `[P, D, Q, m]`: the seasonal order and its period in steps (with `order`).
    #[serde(default)]
    pub seasonal_order: Option<[usize; 4]>,
}

impl Settings {
    /// The fixed order these settings ask for, if any, checked against `auto.arima`'s
    /// bounds (beyond them a fit is rarely meaningful and slow); every problem is listed.
    pub fn spec(&self) -> Result<Option<Spec>, ModelError> {
        let Some([p, d, q]) = self.order else {
            if self.seasonal_order.is_some() {
                return Err(ModelError::settings(
                    "arima",
                    "seasonal_order needs order as well",
                ));
            }
            return Ok(None);
        };
        let [sp, sd, sq, m] = self.seasonal_order.unwrap_or([0, 0, 0, 1]);
        let spec = Spec {
            p,
            d,
            q,
            sp,
            sd,
            sq,
            m,
            mean: d + sd == 0,
        };
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(ModelError::settings("arima", problems.join("; ")));
        }
        Ok(Some(spec))
    }
}

fn model_error(e: EstimateError) -> ModelError {
    match e {
        EstimateError::TooShort { needed, got } => ModelError::TooShort {
            model: "arima".into(),
            needed,
            got,
        },
        EstimateError::Failed(message) => ModelError::failed("arima", message),
    }
}

impl Model for Arima {
    fn name(&self) -> &'static str {
        "arima"
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let prepared = Prepared::new(series, self.name(), 8)?.keep_last(MAX_HISTORY);
        let m = seasons.first().copied().unwrap_or(1);
        // A fixed order is fitted as given; the search removes a long season by STL first.
        let (period, adjustment) = if self.spec.is_none() && m > MAX_SEASONAL_PERIOD {
            let a = SeasonalAdjustment::estimate(&prepared.values, m)
                .map_err(|message| ModelError::failed("arima", message))?;
            (1, a)
        } else {
            (m, SeasonalAdjustment::default())
        };
        let y: Vec<f64> = prepared
            .values
            .iter()
            .enumerate()
            .map(|(t, &v)| adjustment.adjust(t, v))
            .collect();
        let (spec, est, tried) = match self.spec {
            Some(spec) => {
                let est = estimate(&y, &spec).map_err(model_error)?;
                (spec, est, 1)
            }
            None => match select(&y, period) {
                Some(s) => (s.spec, s.estimate, s.tried),
                None => {
                    // Nothing in the search could be estimated (too short for every
                    // candidate, or every fit failed): a random walk needs two points.
                    let walk = Spec {
                        p: 0,
                        d: 1,
                        q: 0,
                        sp: 0,
                        sd: 0,
                        sq: 0,
                        m: 1,
                        mean: false,
                    };
                    let mut est = estimate(&y, &walk).map_err(model_error)?;
                    est.note = Some(
                        "no order of the search could be estimated; fell back to a random walk"
                            .into(),
                    );
                    (walk, est, 1)
                }
            },
        };
        let note = est.note.clone();
        Ok(Box::new(FittedArima {
            state: ArimaState {
                spec,
                coef: est.coef.clone(),
                prepared,
                adjustment,
                tried,
                note,
            },
            est,
        }))
    }
}

/// What a saved ARIMA holds; the filter state is recomputed on load.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ArimaState {
    spec: Spec,
    coef: Coefficients,
    prepared: Prepared,
    adjustment: SeasonalAdjustment,
    tried: usize,
    /// A fallback taken while fitting, said again in the description.
    #[serde(default)]
    note: Option<String>,
}

impl ArimaState {
    fn adjusted(&self) -> Vec<f64> {
        self.prepared
            .values
            .iter()
            .enumerate()
            .map(|(t, &v)| self.adjustment.adjust(t, v))
            .collect()
    }
}

struct FittedArima {
    state: ArimaState,
    est: Estimate,
}

/// Rebuilds a fitted ARIMA from its saved state ([`Fitted::to_state`]): the coefficients
/// are kept, the filter is run again. (The registry's loader once `arima` is registered.)
pub fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: ArimaState = serde_json::from_value(state)?;
    let problems = state.spec.problems();
    if !problems.is_empty() {
        return Err(serde_json::Error::custom(problems.join("; ")));
    }
    if state.coef.ar.len() != state.spec.p
        || state.coef.ma.len() != state.spec.q
        || state.coef.sar.len() != state.spec.sp
        || state.coef.sma.len() != state.spec.sq
    {
        return Err(serde_json::Error::custom(
            "the coefficients do not match the saved order",
        ));
    }
    if !state.adjustment.is_valid(state.prepared.values.len()) {
        return Err(serde_json::Error::custom(
            "the seasonal component does not match the data",
        ));
    }
    match FittedArima::filtered(state) {
        Some(fitted) => Ok(Box::new(fitted)),
        None => Err(serde_json::Error::custom(
            "too few values for the saved order",
        )),
    }
}

impl FittedArima {
    /// Runs the filter of `state`'s coefficients over its data; `None` when the data are too
    /// short for the order.
    fn filtered(state: ArimaState) -> Option<Self> {
        let filter = likelihood_at(&state.adjusted(), &state.spec, &state.coef);
        if filter.nu == 0 {
            return None;
        }
        let est = Estimate {
            coef: state.coef.clone(),
            sigma2: filter.sigma2(),
            loglik: filter.loglik(),
            nobs: filter.nu,
            filter,
            note: state.note.clone(),
        };
        Some(Self { state, est })
    }

    /// Point forecasts of the prepared (scaled) series, `k` steps.
    fn path(&self, k: usize) -> Vec<f64> {
        let s = &self.state.spec;
        let (phi, _) = self.est.coef.expanded(s.m);
        let delta = differencing(s.d, s.sd, s.m);
        // ARMA part: iterate the predicted state with the transition matrix.
        let mut a = self.est.filter.state.clone();
        let r = a.len();
        let mut w = Vec::with_capacity(k);
        for _ in 0..k {
            w.push(self.est.coef.mean + a[0]);
            let first = a[0];
            for i in 0..r {
                let t = phi.get(i).copied().unwrap_or(0.0);
                a[i] = t * first + if i + 1 < r { a[i + 1] } else { 0.0 };
            }
        }
        // Undo the differencing: y_t = w_t − Σ δ_k y_{t−k}.
        let mut y = self.state.adjusted();
        let n = y.len();
        for wt in w {
            let t = y.len();
            let lagged: f64 = delta
                .iter()
                .enumerate()
                .map(|(j, c)| c * y[t - 1 - j])
                .sum();
            y.push(wt - lagged);
        }
        y.split_off(n)
    }

    /// Forecast standard deviations from the ψ-weights of the full (differenced) model.
    fn sd(&self, k: usize) -> Vec<f64> {
        let s = &self.state.spec;
        let (phi, theta) = self.est.coef.expanded(s.m);
        let delta = differencing(s.d, s.sd, s.m);
        // (1 − Σφ B^i)(1 + Σδ B^k) in AR sign convention.
        let mut full = vec![0.0; phi.len() + delta.len() + 1];
        let ar_poly: Vec<f64> = std::iter::once(1.0).chain(phi.iter().map(|x| -x)).collect();
        let d_poly: Vec<f64> = std::iter::once(1.0).chain(delta.iter().copied()).collect();
        for (i, a) in ar_poly.iter().enumerate() {
            for (j, b) in d_poly.iter().enumerate() {
                full[i + j] += a * b;
            }
        }
        let ar_full: Vec<f64> = full[1..].iter().map(|x| -x).collect();
        let psi = psi_weights(&ar_full, &theta, k);
        let mut acc = 0.0;
        psi.iter()
            .map(|p| {
                acc += p * p;
                (self.est.sigma2 * acc).sqrt()
            })
            .collect()
    }
}

impl Fitted for FittedArima {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let prepared = &self.state.prepared;
        let n = prepared.values.len();
        let k = prepared.model_horizon(horizon);
        let path = self.path(k);
        let sd = self.sd(k);
        // Put back a season removed by STL, then undo the scaling and the trailing gap.
        let back = |values: Vec<f64>| -> Vec<f64> {
            let seasoned: Vec<f64> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| self.state.adjustment.restore(n + i, v))
                .collect();
            prepared.restore(&seasoned)
        };
        let mean = back(path.clone());
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = normal_quantile(level);
                let shift = |sign: f64| -> Vec<f64> {
                    back(
                        path.iter()
                            .zip(&sd)
                            .map(|(m, s)| m + sign * z * s)
                            .collect(),
                    )
                };
                Interval {
                    level,
                    lower: shift(-1.0),
                    upper: shift(1.0),
                }
            })
            .collect();
        if mean.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::failed("arima", "non-finite forecast"));
        }
        Ok(Prediction {
            mean,
            intervals,
            components: vec![],
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        let s = &self.state.spec;
        let y = &self.state.adjusted();
        let delta = differencing(s.d, s.sd, s.m);
        let lost = delta.len();
        let mut fitted = vec![f64::NAN; y.len()];
        for (i, v) in self.est.filter.residuals.iter().enumerate() {
            let t = i + lost;
            if t < y.len() {
                fitted[t] = self.state.adjustment.restore(t, y[t] - v);
            }
        }
        self.state.prepared.restore_in_sample(&fitted)
    }

    fn describe(&self) -> String {
        let s = &self.state.spec;
        let mut text = format!("ARIMA({},{},{})", s.p, s.d, s.q);
        if s.m > 1 && s.sp + s.sd + s.sq > 0 {
            text.push_str(&format!("({},{},{})[{}]", s.sp, s.sd, s.sq, s.m));
        }
        if s.mean && s.d + s.sd <= 1 {
            text.push_str(if s.d + s.sd == 0 {
                " with mean"
            } else {
                " with drift"
            });
        }
        let how = if self.state.tried > 1 {
            format!("chosen by AICc from {} orders", self.state.tried)
        } else {
            "fixed order".into()
        };
        let mut text = format!("{text}, {how}, {}", self.state.adjustment.describe());
        if let Some(note) = &self.state.note {
            text.push_str("; ");
            text.push_str(note);
        }
        text
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(&self.state)
    }

    /// The order and coefficients kept, the filter (and an STL season, when one was removed)
    /// run again over the longer history: no search and no estimation, so `auto` scores its
    /// later validation origins for the cost of a filter pass instead of a search.
    fn extend(&self, series: &Series) -> Option<Result<Box<dyn Fitted>, ModelError>> {
        let extended = || -> Result<Box<dyn Fitted>, ModelError> {
            let prepared = Prepared::new(series, "arima", 8)?
                .keep_last(MAX_HISTORY)
                .rescaled(self.state.prepared.scale);
            let adjustment = match self.state.adjustment.period() {
                Some(period) => SeasonalAdjustment::estimate(&prepared.values, period)
                    .map_err(|message| ModelError::failed("arima", message))?,
                None => SeasonalAdjustment::default(),
            };
            let got = prepared.values.len();
            let state = ArimaState {
                spec: self.state.spec,
                coef: self.state.coef.clone(),
                prepared,
                adjustment,
                tried: self.state.tried,
                note: self.state.note.clone(),
            };
            let fitted = FittedArima::filtered(state).ok_or(ModelError::TooShort {
                model: "arima".into(),
                needed: got + 1,
                got,
            })?;
            Ok(Box::new(fitted))
        };
        Some(extended())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    #[test]
    fn an_extended_fit_keeps_its_coefficients_and_forecasts_from_the_new_end() {
        // An AR(1) around 50 with a deterministic, irregular innovation.
        let mut y = vec![50.0];
        for t in 1..400 {
            let e = ((t * 7919) % 101) as f64 / 10.0 - 5.0;
            y.push(50.0 + 0.7 * (y[t - 1] - 50.0) + e);
        }
        let series = Series::new(Labels::default(), 0, 60_000, y.clone()).unwrap();
        let spec = Settings {
            order: Some([1, 0, 0]),
            seasonal_order: None,
        }
        .spec()
        .unwrap()
        .unwrap();
        let early = Arima::new(spec).fit(&series.slice(0..300), &[]).unwrap();
        let extended = early.extend(&series).unwrap().unwrap();
        let (a, b) = (early.to_state().unwrap(), extended.to_state().unwrap());
        assert_eq!(a["coef"], b["coef"]);
        assert_eq!(a["prepared"]["scale"], b["prepared"]["scale"]);
        assert_eq!(b["prepared"]["values"].as_array().unwrap().len(), 400);
        // The exact one-step forecast of an AR(1) is μ + φ(y_n − μ), from the new last value.
        let scale = b["prepared"]["scale"].as_f64().unwrap();
        let mu = b["coef"]["mean"].as_f64().unwrap() * scale;
        let phi = b["coef"]["ar"][0].as_f64().unwrap();
        let next = extended.predict(1, &[]).unwrap().mean[0];
        let expected = mu + phi * (y[399] - mu);
        assert!(
            (next - expected).abs() < 1e-6 * expected.abs(),
            "{next} vs {expected}"
        );
        // Extending to a history the order cannot be filtered over is an error, not a panic.
        assert!(early.extend(&series.slice(0..1)).unwrap().is_err());
    }

    #[test]
    fn settings_fix_an_order_within_auto_arimas_bounds() {
        let s = Settings {
            order: Some([2, 1, 1]),
            seasonal_order: Some([1, 1, 0, 24]),
        };
        let spec = s.spec().unwrap().unwrap();
        assert_eq!((spec.p, spec.d, spec.q, spec.sp, spec.m), (2, 1, 1, 1, 24));
        assert!(!spec.mean);
        assert_eq!(Settings::default().spec().unwrap(), None);
        let bad = Settings {
            order: Some([6, 3, 0]),
            seasonal_order: Some([3, 2, 0, 1]),
        };
        let text = bad.spec().unwrap_err().to_string();
        for part in [
            "p and q go up to 5",
            "P and Q go up to 2",
            "at least 2 steps",
        ] {
            assert!(text.contains(part), "{text}");
        }
        let huge = Settings {
            order: Some([1, 0, 0]),
            seasonal_order: Some([1, 0, 0, 100_000]),
        };
        let text = huge.spec().unwrap_err().to_string();
        assert!(
            text.contains("100001 dimensions") && text.contains("limit of 400"),
            "{text}"
        );
        let orphan = Settings {
            order: None,
            seasonal_order: Some([1, 0, 0, 24]),
        };
        assert!(orphan
            .spec()
            .unwrap_err()
            .to_string()
            .contains("needs order"));
    }
}
