//! `theta`: the Optimised Theta Method on the seasonally adjusted series.
//!
//! Written here because no maintained crate has it. The method:
//!
//! - **Seasonal adjustment** by STL on the first seasonal period (see [`super::decompose`],
//!   which also says why not the M4 benchmark's classical decomposition); forecasts get the
//!   last seasonal cycle back.
//! - **Theta lines** (Assimakopoulos & Nikolopoulos 2000): the linear trend `L_t = A + B·t`
//!   (the θ = 0 line, fitted by least squares) and `Z_t = θ·x_t + (1 − θ)·L_t`, extrapolated
//!   by simple exponential smoothing with parameter α. The forecast combines them with weights
//!   `1 − 1/θ` and `1/θ`: `ŷ_{n+h} = (1 − 1/θ)·L_{n+h} + ℓ_n / θ`. With θ = 2 this is the
//!   standard Theta method, which Hyndman & Billah (2003) showed is SES with drift.
//! - **Optimisation** (Fiorucci, Pellegrini, Louzada, Petropoulos & Koehler 2016): α ∈ (0, 1)
//!   and θ ≥ 1 minimise the in-sample one-step mean squared error, by Nelder–Mead (argmin)
//!   on unconstrained transforms, started from the standard method (θ = 2, α = 0.5).
//! - **Intervals**: the level `ℓ/θ` moves by `α·e_t` per step, so the `h`-step variance is
//!   `σ²·(1 + (h − 1)·α²)` with σ² the one-step in-sample error variance (the SES formula).

use argmin::core::{CostFunction, Executor};
use argmin::solver::neldermead::NelderMead;
use serde::{Deserialize, Serialize};

use crate::forecast::{Interval, Prediction};
use crate::series::Series;

use super::decompose::SeasonalAdjustment;
use super::file::nan_as_null;
use super::{normal_quantile, Fitted, Model, ModelError, Prepared};

/// Optimised Theta on the seasonally adjusted series, or, built by [`Theta::nonseasonal`]
/// (`theta-nonseasonal`), on the series as it is.
#[derive(Debug, Clone, Copy)]
pub struct Theta {
    adjust: bool,
}

impl Default for Theta {
    fn default() -> Self {
        Self { adjust: true }
    }
}

impl Theta {
    /// Theta without the seasonal adjustment, whatever the seasons (see
    /// [`SeasonalAdjustment::none`] for when that forecasts better).
    pub fn nonseasonal() -> Self {
        Self { adjust: false }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FittedTheta {
    prepared: Prepared,
    adjustment: SeasonalAdjustment,
    /// Trend line intercept and slope (t = 1, 2, ...).
    a: f64,
    b: f64,
    alpha: f64,
    theta: f64,
    /// Final SES level of the θ line.
    level: f64,
    /// One-step in-sample error standard deviation (seasonally adjusted scale).
    sigma: f64,
    #[serde(with = "nan_as_null")]
    fitted: Vec<f64>,
}

impl Model for Theta {
    fn name(&self) -> &'static str {
        if self.adjust {
            "theta"
        } else {
            "theta-nonseasonal"
        }
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let prepared = Prepared::new(series, self.name(), 4)?;
        let x = &prepared.values;
        let n = x.len();
        let adjustment = if self.adjust {
            SeasonalAdjustment::estimate(x, seasons.first().copied().unwrap_or(1))
                .map_err(|message| ModelError::failed("theta", message))?
        } else {
            SeasonalAdjustment::none()
        };
        let adjusted: Vec<f64> = (0..n).map(|t| adjustment.adjust(t, x[t])).collect();
        let (a, b) = linear_trend(&adjusted);
        let (alpha, theta) = optimise(&adjusted, a, b);
        let run = run_theta(&adjusted, a, b, alpha, theta);
        let fitted: Vec<f64> = run
            .one_step
            .iter()
            .enumerate()
            .map(|(t, &v)| adjustment.restore(t, v))
            .collect();
        Ok(Box::new(FittedTheta {
            fitted: prepared.restore_in_sample(&fitted),
            prepared,
            adjustment,
            a,
            b,
            alpha,
            theta,
            level: run.level,
            sigma: run.mse.sqrt(),
        }))
    }
}

impl Fitted for FittedTheta {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let n = self.prepared.values.len();
        let k = self.prepared.model_horizon(horizon);
        let weight = 1.0 - 1.0 / self.theta;
        let point =
            |h: usize| weight * (self.a + self.b * (n + h) as f64) + self.level / self.theta;
        let sd = |h: usize| self.sigma * (1.0 + (h - 1) as f64 * self.alpha * self.alpha).sqrt();
        let season = |h: usize, v: f64| self.adjustment.restore(n + h - 1, v);
        let path = |shift: f64| -> Vec<f64> {
            (1..=k)
                .map(|h| season(h, point(h) + shift * sd(h)))
                .collect()
        };
        let mean = self.prepared.restore(&path(0.0));
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = normal_quantile(level);
                Interval {
                    level,
                    lower: self.prepared.restore(&path(-z)),
                    upper: self.prepared.restore(&path(z)),
                }
            })
            .collect();
        Ok(Prediction {
            mean,
            intervals,
            components: vec![],
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        self.fitted.clone()
    }

    fn describe(&self) -> String {
        let season = self.adjustment.describe();
        format!(
            "optimised Theta, theta {:.3}, alpha {:.3}, {season}",
            self.theta, self.alpha
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// Reads a fitted Theta model back from its saved state.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    let fitted: FittedTheta = serde_json::from_value(state)?;
    if !fitted.adjustment.is_valid(fitted.prepared.values.len()) {
        return Err(serde::de::Error::custom(
            "seasonal adjustment without indices",
        ));
    }
    Ok(Box::new(fitted))
}

/// Least-squares line through `(t, x_t)`, `t = 1..=n`: (intercept, slope).
fn linear_trend(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let t_mean = (n + 1.0) / 2.0;
    let x_mean = x.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let dt = (i + 1) as f64 - t_mean;
        sxy += dt * (v - x_mean);
        sxx += dt * dt;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (x_mean - b * t_mean, b)
}

struct ThetaRun {
    one_step: Vec<f64>,
    level: f64,
    mse: f64,
}

/// Runs SES on the θ line and returns the one-step predictions of `x`, the final level and
/// the one-step MSE (from the second point on: the first is fitted exactly).
fn run_theta(x: &[f64], a: f64, b: f64, alpha: f64, theta: f64) -> ThetaRun {
    let line = |t: usize| a + b * (t + 1) as f64;
    let z = |t: usize, v: f64| theta * v + (1.0 - theta) * line(t);
    let mut level = z(0, x[0]);
    let mut one_step = Vec::with_capacity(x.len());
    let mut sse = 0.0;
    one_step.push(x[0]);
    for (t, &v) in x.iter().enumerate().skip(1) {
        let prediction = (1.0 - 1.0 / theta) * line(t) + level / theta;
        one_step.push(prediction);
        sse += (v - prediction).powi(2);
        level = alpha * z(t, v) + (1.0 - alpha) * level;
    }
    let mse = sse / (x.len().saturating_sub(1)).max(1) as f64;
    ThetaRun {
        one_step,
        level,
        mse,
    }
}

/// α in (0, 1) and θ ≥ 1 from unconstrained parameters.
fn constrain(p: &[f64]) -> (f64, f64) {
    let alpha = (1.0 / (1.0 + (-p[0]).exp())).clamp(1e-4, 1.0 - 1e-4);
    let theta = 1.0 + p[1].exp();
    (alpha, theta)
}

struct ThetaCost<'a> {
    x: &'a [f64],
    a: f64,
    b: f64,
}

impl CostFunction for ThetaCost<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        let (alpha, theta) = constrain(p);
        let mse = run_theta(self.x, self.a, self.b, alpha, theta).mse;
        Ok(if mse.is_finite() { mse } else { f64::MAX })
    }
}

/// Minimises the one-step MSE over (α, θ); falls back to the standard method (θ = 2,
/// α = 0.5) if the optimiser fails, which keeps the forecast finite on any input.
fn optimise(x: &[f64], a: f64, b: f64) -> (f64, f64) {
    let start = vec![0.0, 0.0]; // α = 0.5, θ = 2
    let simplex = vec![start.clone(), vec![1.5, 0.0], vec![0.0, 1.0]];
    let result = NelderMead::new(simplex)
        .with_sd_tolerance(1e-10)
        .and_then(|solver| {
            Executor::new(ThetaCost { x, a, b }, solver)
                .configure(|s| s.max_iters(300))
                .run()
        });
    let best = result
        .ok()
        .and_then(|r| r.state.best_param)
        .unwrap_or(start);
    constrain(&best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    fn series(values: Vec<f64>) -> Series {
        Series::new(Labels::default(), 0, 3_600_000, values).unwrap()
    }

    #[test]
    fn a_straight_line_is_extended() {
        let s = series((0..50).map(|t| 10.0 + 2.0 * t as f64).collect());
        let f = Theta::default().fit(&s, &[]).unwrap();
        let p = f.predict(5, &[95.0]).unwrap();
        for (h, v) in p.mean.iter().enumerate() {
            let expected = 10.0 + 2.0 * (50 + h) as f64;
            assert!(
                (v - expected).abs() < 1e-3 * expected,
                "step {h}: {v} vs {expected}"
            );
        }
    }

    #[test]
    fn a_seasonal_series_is_adjusted_and_reseasonalised() {
        let s = series(
            (0..24 * 20)
                .map(|t| {
                    100.0 + 30.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin() + (t % 7) as f64
                })
                .collect(),
        );
        let f = Theta::default().fit(&s, &[24]).unwrap();
        assert!(f.describe().contains("STL season 24"), "{}", f.describe());
        let p = f.predict(24, &[80.0]).unwrap();
        // The forecast follows the cycle: the peak (phase 6) is well above the trough (18).
        assert!(p.mean[6] - p.mean[18] > 40.0, "{:?}", p.mean);
    }

    #[test]
    fn intervals_widen_with_the_horizon() {
        let s = series((0..100).map(|t| ((t * 7919) % 37) as f64).collect());
        let p = Theta::default()
            .fit(&s, &[])
            .unwrap()
            .predict(10, &[95.0])
            .unwrap();
        let w: Vec<f64> = (0..10)
            .map(|h| p.intervals[0].upper[h] - p.intervals[0].lower[h])
            .collect();
        assert!(w.windows(2).all(|pair| pair[1] >= pair[0]), "{w:?}");
    }
}
