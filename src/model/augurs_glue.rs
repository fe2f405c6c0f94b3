//! Adapting augurs' `Predict` (one interval level per call, fractions not percents) to
//! prescale's [`Prediction`].

use augurs::Predict;

use crate::forecast::Interval;

use super::{ModelError, Prepared};

/// Point forecast and one interval per level, mapped back through `prepared`. `reseason`
/// puts back what the model did not see: it gets the step (0 = first forecast step of the
/// model, which may fall in the series' trailing gap) and a value, before unscaling.
pub(crate) fn predict_levels<P: Predict>(
    fitted: &P,
    prepared: &Prepared,
    horizon: usize,
    levels: &[f64],
    model: &str,
    reseason: impl Fn(usize, f64) -> f64,
) -> Result<(Vec<f64>, Vec<Interval>), ModelError> {
    let back = |path: &[f64]| -> Vec<f64> {
        let seasoned: Vec<f64> = path
            .iter()
            .enumerate()
            .map(|(i, &v)| reseason(i, v))
            .collect();
        prepared.restore(&seasoned)
    };
    let failed = |cause: Box<dyn std::error::Error + Send + Sync>| ModelError::failed(model, cause);
    let k = prepared.model_horizon(horizon);
    let point = fitted.predict(k, None).map_err(|e| failed(e.into()))?.point;
    let mean = back(&point);
    let mut intervals = Vec::with_capacity(levels.len());
    for &level in levels {
        let f = fitted
            .predict(k, Some(level / 100.0))
            .map_err(|e| failed(e.into()))?;
        let i = f
            .intervals
            .ok_or_else(|| failed(format!("no {level}% interval").into()))?;
        intervals.push(Interval {
            level,
            lower: back(&i.lower),
            upper: back(&i.upper),
        });
    }
    let all_finite = mean.iter().all(|v| v.is_finite())
        && intervals
            .iter()
            .all(|i| i.lower.iter().chain(&i.upper).all(|v| v.is_finite()));
    if !all_finite {
        return Err(failed(
            "the fitted model forecasts non-finite values".into(),
        ));
    }
    Ok((mean, intervals))
}

/// In-sample one-step predictions mapped back onto the whole series (`reseason` as in
/// [`predict_levels`], with in-sample positions).
pub(crate) fn fitted_values<P: Predict>(
    fitted: &P,
    prepared: &Prepared,
    reseason: impl Fn(usize, f64) -> f64,
) -> Vec<f64> {
    match fitted.predict_in_sample(None) {
        Ok(f) => {
            let seasoned: Vec<f64> = f
                .point
                .iter()
                .enumerate()
                .map(|(t, &v)| reseason(t, v))
                .collect();
            prepared.restore_in_sample(&seasoned)
        }
        Err(_) => vec![
            f64::NAN;
            prepared.leading_missing + prepared.values.len() + prepared.trailing_missing
        ],
    }
}
