//! One refit, as the server and the replay both make it: fit the model on a history window for
//! the horizon its forecast will be read at, forecast with the intervals a policy needs, and
//! measure how its errors persist.
//!
//! `serve` and `simulate` must decide with the same code, so what a replay measures is what
//! the server does. Both call [`refit`]: the same fit (floored at zero when the history never
//! went below it, and fitted *for* the horizon, so `auto` validates on windows the length of
//! the question asked), the same check on the forecast and the same error autocorrelation
//! that the planner damps its anchoring with.

use tracing::Span;

use crate::forecast::Forecast;
use crate::human::chain;
use crate::model::{self, FittedModel, Model, ModelError};
use crate::series::Series;

use super::planner::error_autocorrelation;

/// What one refit gives the planner.
#[derive(Debug)]
pub struct Refit {
    /// The fitted model (the server saves it, to plan with it after a restart).
    pub fitted: FittedModel,
    /// The forecast from the end of the history, `horizon` steps, with the levels asked for.
    pub forecast: Forecast,
    /// The lag-one autocorrelation of the fit's in-sample errors (see
    /// [`error_autocorrelation`]).
    pub rho: f64,
}

/// Fits `model` on `history` for forecasts of `horizon` steps and forecasts them with the
/// central intervals `levels` (percent).
///
/// `span` is the caller's `fit` span (the caller names it, since only it knows the metric or
/// origin); this function records on it the model `fitted`, whether a `fallback` stood in and
/// any `error`, and opens a child `predict` span for the forecast. A forecast whose mean is
/// not finite everywhere is an error, never a plan.
///
/// ```
/// use prescale::model::by_name;
/// use prescale::scale::refit::refit;
/// use prescale::series::{Labels, Series};
///
/// // Four days of an hourly pattern 10, 11, ..., 33.
/// let values: Vec<f64> = (0..96).map(|i| 10.0 + (i % 24) as f64).collect();
/// let history = Series::new(Labels::named("demo"), 0, 3_600_000, values).unwrap();
/// let model = by_name("seasonal-naive").unwrap();
/// let made = refit(model.as_ref(), &history, &[24], 6, &[80.0], &tracing::Span::none()).unwrap();
/// assert_eq!(made.forecast.mean, vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
/// assert_eq!(made.forecast.intervals.len(), 1);
/// ```
pub fn refit(
    model: &dyn Model,
    history: &Series,
    seasons: &[usize],
    horizon: usize,
    levels: &[f64],
    span: &Span,
) -> Result<Refit, ModelError> {
    let fitted = span.in_scope(|| model::fit_for(model, history, seasons, horizon));
    let fitted = fitted.inspect_err(|e| {
        span.record("error", chain(e));
    })?;
    span.record("fitted", fitted.model());
    span.record("fallback", fitted.model() != model.name());
    let predict = tracing::info_span!(
        parent: span,
        "predict",
        horizon = horizon as i64,
        levels = ?levels,
        error = tracing::field::Empty,
    );
    let forecast = predict
        .in_scope(|| {
            let forecast = fitted.predict(horizon, levels)?;
            if !forecast.mean.iter().all(|v| v.is_finite()) {
                return Err(ModelError::failed(model.name(), "a non-finite forecast"));
            }
            Ok(forecast)
        })
        .inspect_err(|e| {
            predict.record("error", chain(e));
        })?;
    let rho = error_autocorrelation(history.values(), &fitted.fitted_values());
    Ok(Refit {
        fitted,
        forecast,
        rho,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::by_name;
    use crate::series::Labels;

    fn hourly(values: Vec<f64>) -> Series {
        Series::new(Labels::named("load"), 0, 3_600_000, values).unwrap()
    }

    fn daily(days: usize) -> Series {
        hourly(
            (0..days * 24)
                .map(|i| 100.0 + 30.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
                .collect(),
        )
    }

    #[test]
    fn auto_is_fitted_for_the_horizon_it_is_read_at() {
        let auto = by_name("auto").unwrap();
        let made = refit(auto.as_ref(), &daily(30), &[24], 3, &[80.0], &Span::none()).unwrap();
        assert_eq!(made.forecast.mean.len(), 3);
        // auto's description names its validation windows: three steps long, as asked, not
        // the two seasons it takes when no horizon is known.
        let described = made.fitted.describe();
        assert!(
            described.contains("windows of 3 steps"),
            "auto validated on other windows: {described}"
        );
    }

    #[test]
    fn forecasts_of_a_load_that_never_went_negative_are_floored_at_zero() {
        // Falling to 1: the naive model's 95% interval reaches far below zero.
        let history = hourly((0..48).map(|i| 48.0 - i as f64).collect());
        let naive = by_name("naive").unwrap();
        let made = refit(naive.as_ref(), &history, &[24], 12, &[95.0], &Span::none()).unwrap();
        let lower = &made.forecast.intervals[0].lower;
        assert!(lower.iter().all(|&v| v >= 0.0), "{lower:?}");
        assert_eq!(
            lower[11], 0.0,
            "the interval was not wide enough to test the floor"
        );
    }

    #[test]
    fn persistent_errors_give_a_positive_autocorrelation() {
        // A slow wave: the naive model lags behind it by an amount that changes slowly, so
        // each error is close to the one before.
        let history = hourly(
            (0..200)
                .map(|i| 50.0 + 20.0 * (i as f64 / 40.0 * std::f64::consts::TAU).sin())
                .collect(),
        );
        let naive = by_name("naive").unwrap();
        let made = refit(naive.as_ref(), &history, &[], 4, &[80.0], &Span::none()).unwrap();
        assert!(made.rho > 0.5 && made.rho <= 1.0, "rho {}", made.rho);
    }
}
