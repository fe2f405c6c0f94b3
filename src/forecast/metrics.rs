//! Point-forecast accuracy metrics, as the M4 competition defines them.
//!
//! Every metric skips steps whose actual value is missing (`NaN`) and returns `NaN` when no
//! step is left, so a gap in the test window never turns into a fake perfect score.

/// Mean absolute error.
pub fn mae(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(pairs(actual, forecast).map(|(a, f)| (a - f).abs()))
}

/// Root mean squared error.
pub fn rmse(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(pairs(actual, forecast).map(|(a, f)| (a - f).powi(2))).sqrt()
}

/// Symmetric MAPE in percent, `200 · mean(|a − f| / (|a| + |f|))`; a step where both are
/// zero counts as a perfect forecast.
pub fn smape(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(pairs(actual, forecast).map(|(a, f)| {
        let denominator = a.abs() + f.abs();
        if denominator == 0.0 {
            0.0
        } else {
            200.0 * (a - f).abs() / denominator
        }
    }))
}

/// The MASE scale: the in-sample mean absolute seasonal difference `|y_t − y_{t−m}|` of
/// `history`. `NaN` when there is no observed pair.
pub fn seasonal_scale(history: &[f64], period: usize) -> f64 {
    let m = period.max(1);
    if history.len() <= m {
        return f64::NAN;
    }
    mean(history.windows(m + 1).map(|w| (w[m] - w[0]).abs()))
}

/// Mean absolute scaled error: MAE divided by [`seasonal_scale`] of the history.
pub fn mase(actual: &[f64], forecast: &[f64], history: &[f64], period: usize) -> f64 {
    mae(actual, forecast) / seasonal_scale(history, period)
}

/// Percentage of observed actual values inside `[lower, upper]`.
pub fn coverage(actual: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    mean(
        actual
            .iter()
            .zip(lower.iter().zip(upper))
            .filter(|(a, _)| !a.is_nan())
            .map(|(a, (l, u))| if l <= a && a <= u { 100.0 } else { 0.0 }),
    )
}

/// Mean scaled interval score (Gneiting & Raftery 2007, as scored in M4) of a central
/// interval at `level` percent: the mean over steps of
/// `(u − l) + (2/α)(l − y)·[y < l] + (2/α)(y − u)·[y > u]`, with `α = 1 − level/100`, divided
/// by `scale` (the MASE scale of the history).
pub fn msis(actual: &[f64], lower: &[f64], upper: &[f64], level: f64, scale: f64) -> f64 {
    let alpha = 1.0 - level / 100.0;
    let penalty = 2.0 / alpha;
    mean(
        actual
            .iter()
            .zip(lower.iter().zip(upper))
            .filter(|(a, _)| !a.is_nan())
            .map(|(&y, (&l, &u))| {
                (u - l) + penalty * (l - y).max(0.0) + penalty * (y - u).max(0.0)
            }),
    ) / scale
}

fn pairs<'a>(actual: &'a [f64], forecast: &'a [f64]) -> impl Iterator<Item = (f64, f64)> + 'a {
    actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| !a.is_nan())
        .map(|(&a, &f)| (a, f))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let a = [1.0, 2.0, 3.0, f64::NAN];
        let f = [2.0, 2.0, 1.0, 100.0];
        assert_eq!(mae(&a, &f), 1.0);
        assert!((rmse(&a, &f) - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((smape(&a, &f) - 200.0 / 3.0 * (1.0 / 3.0 + 0.0 + 2.0 / 4.0)).abs() < 1e-12);
        assert_eq!(smape(&[0.0], &[0.0]), 0.0);
        // History 1,2,3,4 with period 2: differences 2, 2.
        assert_eq!(seasonal_scale(&[1.0, 2.0, 3.0, 4.0], 2), 2.0);
        assert_eq!(mase(&a, &f, &[1.0, 2.0, 3.0, 4.0], 2), 0.5);
        assert_eq!(
            coverage(&a, &[0.0, 2.5, 0.0, 0.0], &[1.0, 3.0, 3.0, 0.0]),
            200.0 / 3.0
        );
    }

    #[test]
    fn nothing_to_score_is_nan() {
        assert!(mae(&[f64::NAN], &[1.0]).is_nan());
        assert!(seasonal_scale(&[1.0], 1).is_nan());
    }
}
