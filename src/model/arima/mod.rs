//! Seasonal ARIMA written here (augurs has none): exact likelihood by the Kalman filter,
//! CSS-ML estimation as in R's `arima`, forecasts and intervals from the ψ-weights.
//!
//! This is the fixed-order core. The automatic order search (Hyndman & Khandakar 2008) and
//! the registry entry come next; until then [`Arima`] is used through the library with an
//! explicit [`Spec`].

mod estimate;
pub mod kalman;
mod polynomial;

pub use estimate::{
    estimate, inverse_partrans, is_stationary, likelihood_at, partrans, Coefficients, Estimate,
    EstimateError, Spec,
};
pub use kalman::Likelihood;

use crate::forecast::{Interval, Prediction};
use crate::series::Series;

use super::{normal_quantile, Fitted, Model, ModelError, Prepared};
use polynomial::{differencing, psi_weights};

/// A seasonal ARIMA of a fixed order.
#[derive(Debug, Clone, Copy)]
pub struct Arima {
    spec: Spec,
}

impl Arima {
    /// The model for `spec`.
    pub fn new(spec: Spec) -> Self {
        Self { spec }
    }
}

impl Model for Arima {
    fn name(&self) -> &'static str {
        "arima"
    }

    fn fit(&self, series: &Series, _seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let prepared = Prepared::new(series, self.name(), 3)?;
        let est = estimate(&prepared.values, &self.spec).map_err(|e| match e {
            EstimateError::TooShort { needed, got } => ModelError::TooShort {
                model: "arima".into(),
                needed,
                got,
            },
            EstimateError::Failed(message) => ModelError::Failed {
                model: "arima".into(),
                message,
            },
        })?;
        Ok(Box::new(FittedArima {
            spec: self.spec,
            est,
            prepared,
        }))
    }
}

struct FittedArima {
    spec: Spec,
    est: Estimate,
    prepared: Prepared,
}

impl FittedArima {
    /// Point forecasts of the prepared (scaled) series, `k` steps.
    fn path(&self, k: usize) -> Vec<f64> {
        let s = &self.spec;
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
        let mut y = self.prepared.values.clone();
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
        let s = &self.spec;
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
        let k = self.prepared.model_horizon(horizon);
        let path = self.path(k);
        let sd = self.sd(k);
        let mean = self.prepared.restore(&path);
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = normal_quantile(level);
                let shift = |sign: f64| -> Vec<f64> {
                    let p: Vec<f64> = path
                        .iter()
                        .zip(&sd)
                        .map(|(m, s)| m + sign * z * s)
                        .collect();
                    self.prepared.restore(&p)
                };
                Interval {
                    level,
                    lower: shift(-1.0),
                    upper: shift(1.0),
                }
            })
            .collect();
        if mean.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Failed {
                model: "arima".into(),
                message: "non-finite forecast".into(),
            });
        }
        Ok(Prediction {
            mean,
            intervals,
            components: vec![],
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        let s = &self.spec;
        let y = &self.prepared.values;
        let delta = differencing(s.d, s.sd, s.m);
        let lost = delta.len();
        let mut fitted = vec![f64::NAN; y.len()];
        for (i, v) in self.est.filter.residuals.iter().enumerate() {
            let t = i + lost;
            if t < y.len() {
                fitted[t] = y[t] - v;
            }
        }
        self.prepared.restore_in_sample(&fitted)
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        let mut text = format!("ARIMA({},{},{})", s.p, s.d, s.q);
        if s.m > 1 && s.sp + s.sd + s.sq > 0 {
            text.push_str(&format!("({},{},{})[{}]", s.sp, s.sd, s.sq, s.m));
        }
        format!(
            "{text}, AICc {:.1} (on the scaled series)",
            self.est.aicc(s)
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value((&self.spec, &self.est.coef, &self.prepared))
    }
}
