//! Scoring one forecast against what happened.

use serde::Serialize;

use crate::forecast::Forecast;

use crate::forecast::metrics;

/// Accuracy of one forecast window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Symmetric MAPE, percent.
    pub smape: f64,
    /// MAE scaled by the history's in-sample seasonal naive error.
    pub mase: f64,
    /// Per requested level: (level, coverage percent, MSIS).
    pub intervals: Vec<IntervalScore>,
}

/// How one prediction interval did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalScore {
    /// Nominal level, percent.
    pub level: f64,
    /// Share of actual values inside the interval, percent.
    pub coverage: f64,
    /// Mean scaled interval score.
    pub msis: f64,
}

/// Scores `forecast` against `actual` (same length), with MASE and MSIS scaled by the
/// seasonal naive error (period `period`) of `history`, the data the forecast was made from.
pub fn score(actual: &[f64], forecast: &Forecast, history: &[f64], period: usize) -> Scores {
    let scale = metrics::seasonal_scale(history, period);
    let mean = &forecast.mean;
    Scores {
        mae: metrics::mae(actual, mean),
        rmse: metrics::rmse(actual, mean),
        smape: metrics::smape(actual, mean),
        mase: metrics::mae(actual, mean) / scale,
        intervals: forecast
            .intervals
            .iter()
            .map(|i| IntervalScore {
                level: i.level,
                coverage: metrics::coverage(actual, &i.lower, &i.upper),
                msis: metrics::msis(actual, &i.lower, &i.upper, i.level, scale),
            })
            .collect(),
    }
}
