//! Naive and seasonal naive: the baselines every other model must beat.
//!
//! The seasonal naive forecast repeats the last observed season; naive repeats the last
//! value (period 1). Intervals follow Hyndman & Athanasopoulos, *Forecasting: Principles and
//! Practice* (3rd ed., §5.5): with `σ` the root mean square of the in-sample seasonal
//! differences `y_t − y_{t−m}`, step `h` has standard deviation `σ·√(⌊(h−1)/m⌋ + 1)`.
//!
//! Missing values: each phase of the season uses its most recent observed value, and
//! residuals use only pairs where both values are observed.

use serde::{Deserialize, Serialize};

use crate::forecast::{Interval, Prediction};
use crate::series::Series;

use super::file::nan_as_null;
use super::{normal_quantile, Fitted, Model, ModelError};

/// Seasonal naive (`seasonal-naive`) or naive (`naive`).
#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    seasonal: bool,
}

impl SeasonalNaive {
    /// Repeats the last value.
    pub fn naive() -> Self {
        Self { seasonal: false }
    }

    /// Repeats the last season: the first of the seasons given to `fit`, or the last value
    /// when no season is given.
    pub fn seasonal() -> Self {
        Self { seasonal: true }
    }
}

impl Model for SeasonalNaive {
    fn name(&self) -> &'static str {
        if self.seasonal {
            "seasonal-naive"
        } else {
            "naive"
        }
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let period = match (self.seasonal, seasons.first()) {
            (true, Some(&m)) => m,
            _ => 1,
        };
        let y = series.values();
        let n = y.len();
        let observed = n - series.missing();
        let too_short = || ModelError::TooShort {
            model: self.name().to_string(),
            needed: period + 1,
            got: observed,
        };
        if n <= period {
            return Err(too_short());
        }
        // The value each phase of the next season repeats: its latest observation.
        let last_season = (0..period)
            .map(|j| {
                (0..=(n - period + j) / period)
                    .map(|k| y[n - period + j - k * period])
                    .find(|v| !v.is_nan())
            })
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(too_short)?;
        let residuals: Vec<f64> = (period..n)
            .map(|i| y[i] - y[i - period])
            .filter(|e| !e.is_nan())
            .collect();
        if residuals.is_empty() {
            return Err(too_short());
        }
        let sigma = (residuals.iter().map(|e| e * e).sum::<f64>() / residuals.len() as f64).sqrt();
        let fitted = (0..n)
            .map(|i| if i < period { f64::NAN } else { y[i - period] })
            .collect();
        Ok(Box::new(FittedNaive {
            period,
            last_season,
            sigma,
            fitted,
        }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedNaive {
    period: usize,
    last_season: Vec<f64>,
    sigma: f64,
    #[serde(with = "nan_as_null")]
    fitted: Vec<f64>,
}

/// Reads a fitted naive or seasonal naive model back from its saved state.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    let fitted: FittedNaive = serde_json::from_value(state)?;
    if fitted.period == 0 || fitted.last_season.len() != fitted.period {
        return Err(serde::de::Error::custom(format!(
            "period {} with {} seasonal values",
            fitted.period,
            fitted.last_season.len()
        )));
    }
    Ok(Box::new(fitted))
}

impl Fitted for FittedNaive {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let mean: Vec<f64> = (0..horizon)
            .map(|h| self.last_season[h % self.period])
            .collect();
        let sd: Vec<f64> = (0..horizon)
            .map(|h| self.sigma * ((h / self.period + 1) as f64).sqrt())
            .collect();
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = normal_quantile(level);
                Interval {
                    level,
                    lower: mean.iter().zip(&sd).map(|(m, s)| m - z * s).collect(),
                    upper: mean.iter().zip(&sd).map(|(m, s)| m + z * s).collect(),
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

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    fn describe(&self) -> String {
        if self.period == 1 {
            format!("naive (last value), residual sigma {:.4}", self.sigma)
        } else {
            format!(
                "seasonal naive, period {}, residual sigma {:.4}",
                self.period, self.sigma
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;
    use proptest::prelude::*;

    fn series(values: Vec<f64>) -> Series {
        Series::new(Labels::default(), 0, 1000, values).unwrap()
    }

    #[test]
    fn repeats_the_last_season_with_widening_intervals() {
        let s = series(vec![1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
        let f = SeasonalNaive::seasonal().fit(&s, &[3]).unwrap();
        let p = f.predict(7, &[95.0]).unwrap();
        assert_eq!(p.mean, [2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 2.0]);
        // Residuals are all 1, so sigma is 1; the second season is sqrt(2) wider.
        let width = |h: usize| p.intervals[0].upper[h] - p.intervals[0].lower[h];
        assert!((width(0) - 2.0 * 1.959_964).abs() < 1e-5);
        assert!((width(3) / width(0) - 2f64.sqrt()).abs() < 1e-12);
        assert!((width(6) / width(0) - 3f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn missing_values_use_the_latest_observation_of_their_phase() {
        let s = series(vec![1.0, 2.0, 5.0, 6.0, f64::NAN, 8.0]);
        let p = SeasonalNaive::seasonal()
            .fit(&s, &[2])
            .unwrap()
            .predict(2, &[])
            .unwrap();
        assert_eq!(p.mean, [5.0, 8.0]); // phase 0 falls back past the NaN to 5
    }

    #[test]
    fn too_short_is_an_error() {
        let err = SeasonalNaive::seasonal()
            .fit(&series(vec![1.0, 2.0]), &[24])
            .err()
            .unwrap();
        assert!(
            matches!(err, ModelError::TooShort { needed: 25, .. }),
            "{err}"
        );
        let nan = series(vec![f64::NAN; 10]);
        assert!(SeasonalNaive::naive().fit(&nan, &[]).is_err());
    }

    proptest! {
        #[test]
        fn forecasts_are_finite_and_intervals_nest(
            raw in prop::collection::vec(prop::option::weighted(0.8, -1e9f64..1e9), 2..400),
            period in 1usize..30, h in 1usize..100,
        ) {
            let values: Vec<f64> = raw.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            if let Ok(f) = SeasonalNaive::seasonal().fit(&series(values), &[period]) {
                let p = f.predict(h, &[80.0, 95.0]).unwrap();
                prop_assert_eq!(p.mean.len(), h);
                for i in 0..h {
                    let (a, b) = (&p.intervals[0], &p.intervals[1]);
                    prop_assert!(p.mean[i].is_finite());
                    prop_assert!(b.lower[i] <= a.lower[i] && a.lower[i] <= p.mean[i]);
                    prop_assert!(p.mean[i] <= a.upper[i] && a.upper[i] <= b.upper[i]);
                }
            }
        }
    }
}
