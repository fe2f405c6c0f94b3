//! Prophet's prediction intervals: simulated future trend changes plus observation noise.
//!
//! Each simulated path (Taylor & Letham 2018, section 3.1.4):
//! - places new changepoints after the history as a Poisson process with the history's rate
//!   (S changepoints per unit of scaled time, the history spanning one unit);
//! - draws their rate changes from a Laplace distribution whose scale is the mean absolute
//!   fitted delta (plus 1e-8, as Prophet, so a fit without changes still simulates);
//! - adds Gaussian noise with the fitted σ.
//!
//! Interval bounds are the empirical quantiles of the paths at each step, interpolated as
//! numpy's `percentile`. The paths come from a seeded generator, so the same model and the
//! same request give the same intervals.

use super::Parts;
use augurs::prophet::optimizer::{Data, TrendIndicator};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::distribution::{Normal, Poisson};

use crate::forecast::Interval;

use super::map::{logistic_trend, Posterior};
use super::{failed, ModelError};

/// What a simulation needs from a fitted model.
pub(super) struct Simulation<'a> {
    /// The scaled data of the fit (time points, changepoints, trend type).
    pub data: &'a Data,
    /// The fitted parameters.
    pub theta: &'a [f64],
    /// augurs' divisor of `y`.
    pub y_scale: f64,
    /// Logistic growth's capacity, in the series' units.
    pub cap: Option<f64>,
    /// Paths to simulate (0: intervals collapse onto the mean).
    pub samples: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Simulation<'_> {
    /// Central intervals at `levels` for the forecast `p` at times `future` (seconds);
    /// `history` is every time of the series (seconds), in order.
    pub(super) fn intervals(
        &self,
        future: &[i64],
        observed: &[i64],
        p: &Parts,
        levels: &[f64],
    ) -> Result<Vec<Interval>, ModelError> {
        if levels.is_empty() {
            return Ok(Vec::new());
        }
        let paths = self.paths(future, observed, p)?;
        Ok(levels
            .iter()
            .map(|&level| {
                let (lo, hi) = (50.0 - level / 2.0, 50.0 + level / 2.0);
                let (lower, upper) = paths
                    .iter()
                    .map(|step| (percentile(step, lo), percentile(step, hi)))
                    .unzip();
                Interval {
                    level,
                    lower,
                    upper,
                }
            })
            .collect())
    }

    /// The simulated values, one sorted vector of samples per future step.
    fn paths(
        &self,
        future: &[i64],
        observed: &[i64],
        p: &Parts,
    ) -> Result<Vec<Vec<f64>>, ModelError> {
        let (Some(&first), Some(&last)) = (observed.first(), observed.last()) else {
            return Err(failed("no observed points to scale time by"));
        };
        let span = (last - first).max(1) as f64;
        let t: Vec<f64> = future.iter().map(|&d| (d - first) as f64 / span).collect();
        let posterior = Posterior::for_evaluation(self.data, false);
        let (k, m, sigma, delta) = posterior.trend_parameters(self.theta);
        let changepoints = &self.data.t_change;
        let noise = Normal::new(0.0, sigma).map_err(failed)?;
        let scale = delta.iter().map(|d| d.abs()).sum::<f64>() / delta.len().max(1) as f64 + 1e-8;
        let t_max = t.iter().copied().fold(f64::MIN, f64::max);
        let rate = changepoints.len() as f64 * (t_max - 1.0);
        let arrivals = if rate > 0.0 {
            Some(Poisson::new(rate).map_err(failed)?)
        } else {
            None
        };
        let cap_scaled = self.cap.map(|c| c / self.y_scale);
        let base_logistic =
            cap_scaled.map(|cap| logistic_trend(k, m, delta, changepoints, cap, &t));

        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut out = vec![Vec::with_capacity(self.samples); future.len()];
        let mut new_points = Vec::new();
        let mut all_delta = delta.to_vec();
        let mut all_points = changepoints.to_vec();
        for _ in 0..self.samples {
            let n_new = arrivals
                .as_ref()
                .map_or(0, |d| rng.sample::<f64, _>(d) as usize);
            new_points.clear();
            new_points.extend((0..n_new).map(|_| rng.gen_range(1.0..=t_max.max(1.0))));
            new_points.sort_by(f64::total_cmp);
            let new_delta: Vec<f64> = (0..n_new).map(|_| laplace(&mut rng, scale)).collect();
            let extra: Vec<f64> = match (self.data.trend_indicator, &base_logistic) {
                (TrendIndicator::Linear, _) => t
                    .iter()
                    .map(|t| {
                        new_points
                            .iter()
                            .zip(&new_delta)
                            .map(|(c, d)| d * (t - c).max(0.0))
                            .sum::<f64>()
                    })
                    .collect(),
                (TrendIndicator::Logistic, Some(base)) => {
                    all_delta.truncate(delta.len());
                    all_delta.extend_from_slice(&new_delta);
                    all_points.truncate(changepoints.len());
                    all_points.extend_from_slice(&new_points);
                    let cap = cap_scaled.unwrap_or(1.0);
                    logistic_trend(k, m, &all_delta, &all_points, cap, &t)
                        .iter()
                        .zip(base)
                        .map(|(a, b)| a - b)
                        .collect()
                }
                _ => vec![0.0; t.len()],
            };
            for (i, step) in out.iter_mut().enumerate() {
                let trend = p.trend[i] + extra[i] * self.y_scale;
                let e: f64 = rng.sample(noise);
                step.push(trend * (1.0 + p.multiplicative[i]) + p.additive[i] + e * self.y_scale);
            }
        }
        for step in &mut out {
            step.sort_by(f64::total_cmp);
        }
        Ok(out)
    }
}

/// A draw from Laplace(0, `scale`) by inverting its distribution function.
fn laplace(rng: &mut StdRng, scale: f64) -> f64 {
    let u: f64 = rng.gen_range(-0.5..0.5);
    -scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
}

/// The `q`-th percentile (0–100) of sorted `values`, interpolated linearly between order
/// statistics as numpy does by default; the mean of nothing is NaN.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let pos = q / 100.0 * (n - 1) as f64;
            let (lo, frac) = (pos.floor() as usize, pos.fract());
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + frac * (sorted[hi] - sorted[lo])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile(&v, 10.0) - 1.3).abs() < 1e-12);
    }

    #[test]
    fn laplace_draws_have_the_right_scale() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let mean_abs = (0..n).map(|_| laplace(&mut rng, 0.3).abs()).sum::<f64>() / n as f64;
        // E|X| = b for Laplace(0, b).
        assert!((mean_abs - 0.3).abs() < 0.005, "{mean_abs}");
    }
}
