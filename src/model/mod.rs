//! Forecasting models behind one small interface.
//!
//! A [`Model`] is a method with its settings; [`Model::fit`] on a [`Series`] gives a
//! [`Fitted`] model, which predicts any horizon with intervals at the requested levels. Models
//! see only values and seasonal periods, never where the series came from. [`fit`] wraps the
//! result in a [`FittedModel`] that knows the series' grid and returns timestamped
//! [`Forecast`]s, and saves to / loads from a model file ([`file`](mod@file)).
//!
//! Every model is built from settings by name ([`build`], or a [`ModelSpec`] from a
//! configuration file): a new model is one file (its `Model`, `Fitted`, settings type and
//! loader) plus one entry in the registry.

pub mod arima;
mod augurs_glue;
pub mod auto;
pub mod decompose;
pub mod ets;
pub mod file;
pub mod lstm;
pub mod mstl;
pub mod naive;
mod prepare;
pub mod prophet;
mod registry;
pub mod season;
pub mod theta;

pub use prepare::Prepared;

pub use registry::{build, by_name, names, parse_settings, ModelSpec, NoSettings};

use thiserror::Error;

use crate::forecast::{Forecast, Prediction};
use crate::series::{Millis, Series};

/// The underlying error of a failed fit or load, kept so callers can print the whole chain.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a model could not fit or predict.
///
/// Causes are kept as [`std::error::Error::source`], not folded into the message: print the
/// chain (anyhow's `{:#}`, or [`crate::human::chain`]) to see them.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum ModelError {
    /// No model has this name.
    #[error("unknown model {name:?}; available: {}", available.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registry's names.
        available: Vec<&'static str>,
    },
    /// Not enough observed points for this model and season.
    #[error("{model} needs at least {needed} observed points, the series has {got}")]
    TooShort {
        /// The model.
        model: String,
        /// Points needed.
        needed: usize,
        /// Points available.
        got: usize,
    },
    /// A prediction level outside (0, 100).
    #[error("prediction level {0} is not a percentage strictly between 0 and 100")]
    InvalidLevel(f64),
    /// A horizon of zero steps.
    #[error("the horizon must be at least one step")]
    ZeroHorizon,
    /// A forecast whose last step falls after the year 9999.
    #[error("{horizon} steps ahead falls after the year 9999: shorten the horizon")]
    BeyondCalendar {
        /// The horizon asked for.
        horizon: usize,
    },
    /// A horizon over [`MAX_HORIZON`] steps.
    #[error("a horizon of {0} steps is over the limit of {MAX_HORIZON}")]
    HorizonTooLong(usize),
    /// The model produced a value that is not a finite number (an overflow on extreme
    /// values, a diverged fit, a broken network): refused rather than printed or floored.
    #[error("{model} forecast a non-finite {what} at step {step}: the fit diverged or the values are too extreme for it")]
    NonFinite {
        /// The model.
        model: String,
        /// `mean` or the interval bound, e.g. `upper 95%`.
        what: String,
        /// The 1-based forecast step.
        step: usize,
    },
    /// The model's estimation failed on this series (e.g. no candidate converged).
    #[error("{model} could not be fitted")]
    Failed {
        /// The model.
        model: String,
        /// What went wrong.
        #[source]
        source: Cause,
    },
    /// Settings the model cannot use (an unknown key, a value out of range, logistic growth
    /// without a capacity above the data, a network folder that does not load).
    #[error("{model}: {message}")]
    Settings {
        /// The model.
        model: String,
        /// What is wrong and how to fix it.
        message: String,
        /// The underlying error, where there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A seasonal period the model cannot use.
    #[error("seasonal period {0} is invalid: it must be at least 1")]
    InvalidSeason(usize),
}

impl ModelError {
    /// A failed estimation of `model`, caused by `cause` (an error, or a message).
    pub fn failed(
        model: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Failed {
            model: model.into(),
            source: Cause::from(cause.into()),
        }
    }

    /// Settings `model` cannot use, said in `message`.
    pub fn settings(model: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Settings {
            model: model.into(),
            message: message.into(),
            source: None,
        }
    }
}

/// A forecasting method with its settings, before it has seen data.
pub trait Model: Send + Sync + std::fmt::Debug {
    /// The registry name, e.g. `seasonal-naive`.
    fn name(&self) -> &'static str;

    /// Fits the model to `series`, whose seasonal periods (in steps, most important first)
    /// are `seasons`. Missing values (`NaN`) are allowed; each model documents how it treats
    /// them.
    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError>;

    /// [`Model::fit`] for forecasts of `horizon` steps: a model that chooses or calibrates on
    /// validation windows (`auto`) sizes them to the question asked; the others ignore the
    /// horizon and fit as [`Model::fit`] does.
    fn fit_for(
        &self,
        series: &Series,
        seasons: &[usize],
        horizon: usize,
    ) -> Result<Box<dyn Fitted>, ModelError> {
        let _ = horizon;
        self.fit(series, seasons)
    }

    /// Whether the model can forecast series on this step (ms) at all, known before any data
    /// arrives (a trained network exists only for the steps it was trained on), so a
    /// configuration can be refused at once with how to fix it. Most models can.
    fn check_step(&self, _step: Millis) -> Result<(), ModelError> {
        Ok(())
    }
}

/// A model fitted to one series.
pub trait Fitted: Send + Sync {
    /// Predicts `horizon` steps after the end of the fitted series, with central intervals
    /// at each of `levels` (percent, e.g. `[80.0, 95.0]`). Never returns `NaN` in the mean.
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError>;

    /// One-step-ahead in-sample predictions, aligned with the series (`NaN` where the model
    /// has none, e.g. the first season).
    fn fitted_values(&self) -> Vec<f64>;

    /// One line on what was fitted, e.g. `seasonal naive, period 48, sigma 812.4`.
    fn describe(&self) -> String;

    /// The fitted state, for a model file; the registry's loader for this model reads it back.
    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error>;

    /// The same fitted parameters run over `series`, a longer history of the same metric
    /// that contains the fitted one: forecasts from a later origin without refitting
    /// (statsforecast's cross-validation with `refit=False`). `None` when the model has no
    /// such update and must be refitted; only models whose fit is much dearer than a filter
    /// pass implement it.
    fn extend(&self, series: &Series) -> Option<Result<Box<dyn Fitted>, ModelError>> {
        let _ = series;
        None
    }
}

/// A fitted model together with the grid of the series it was fitted on.
pub struct FittedModel {
    model: &'static str,
    next: Millis,
    step: Millis,
    /// Floor forecasts and intervals at zero: the history never went below zero (a request
    /// rate, a queue length), so a negative forecast can only be an artefact of the model.
    non_negative: bool,
    inner: Box<dyn Fitted>,
}

impl std::fmt::Debug for FittedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FittedModel")
            .field("model", &self.model)
            .field("next", &self.next)
            .field("step", &self.step)
            .field("non_negative", &self.non_negative)
            .field("fitted", &self.inner.describe())
            .finish()
    }
}

impl FittedModel {
    /// The model's registry name.
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// Predicts `horizon` steps, timestamped from one step after the series' end; floored at
    /// zero when the history never went negative.
    pub fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Forecast, ModelError> {
        check_request(horizon, levels)?;
        // The last timestamp must be a calendar date the outputs can print (a year step and a
        // long horizon leave the calendar long before they overflow).
        let last = i128::from(self.next) + (horizon as i128 - 1) * i128::from(self.step);
        if last > i128::from(LAST_PRINTABLE_MS) {
            return Err(ModelError::BeyondCalendar { horizon });
        }
        let prediction = self.inner.predict(horizon, levels)?;
        // Checked before flooring, which would otherwise turn NaN into 0 and hide it.
        let bad = |what: String, values: &[f64]| {
            values
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| ModelError::NonFinite {
                    model: self.model.to_string(),
                    what,
                    step: i + 1,
                })
        };
        if let Some(e) = bad("mean".into(), &prediction.mean) {
            return Err(e);
        }
        for interval in &prediction.intervals {
            for (side, values) in [("lower", &interval.lower), ("upper", &interval.upper)] {
                if let Some(e) = bad(format!("{side} {}%", interval.level), values) {
                    return Err(e);
                }
            }
        }
        let mut forecast = prediction.on_grid(self.next, self.step);
        if self.non_negative {
            forecast.floor_at_zero();
        }
        Ok(forecast)
    }

    /// The timestamp of the first step it forecasts (one step after its history's end).
    pub fn next(&self) -> Millis {
        self.next
    }

    /// The step of the series it was fitted on, ms.
    pub fn step(&self) -> Millis {
        self.step
    }

    /// True when forecasts are floored at zero (the history never went negative).
    pub fn non_negative(&self) -> bool {
        self.non_negative
    }

    /// In-sample one-step-ahead predictions.
    pub fn fitted_values(&self) -> Vec<f64> {
        self.inner.fitted_values()
    }

    /// What was fitted.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Whether forecasts and their intervals are floored at zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Floor {
    /// When the history never went below zero (a request rate, a queue length): a negative
    /// forecast of such a metric can only be an artefact of the model.
    #[default]
    Auto,
    /// Always.
    Zero,
    /// Never: forecasts as the model makes them.
    None,
}

impl std::str::FromStr for Floor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "zero" => Ok(Self::Zero),
            "none" => Ok(Self::None),
            other => Err(format!("unknown floor {other:?}; use auto, zero or none")),
        }
    }
}

/// Fits `model` to `series` and remembers the grid for timestamped forecasts; forecasts are
/// floored at zero when the history never went below zero ([`Floor::Auto`], see
/// [`fit_floored`]).
pub fn fit(
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
) -> Result<FittedModel, ModelError> {
    fit_floored(model, series, seasons, Floor::Auto)
}

/// [`fit`] for forecasts of `horizon` steps: a model that chooses on validation windows
/// (`auto`) sizes them to that horizon ([`Model::fit_for`]). Use it wherever the horizon the
/// forecast will be read at is known.
pub fn fit_for(
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
    horizon: usize,
) -> Result<FittedModel, ModelError> {
    fit_floored_for(model, series, seasons, Floor::Auto, Some(horizon))
}

/// Fits `model` to `series` and remembers the grid for timestamped forecasts.
///
/// Two documented shortcuts apply to every model:
/// - a series whose observed values are all equal is forecast as that constant with
///   zero-width intervals (the `naive` model stands in, and [`FittedModel::model`] says so):
///   estimation on a constant has nothing to learn and some optimisers fail on it;
/// - forecasts are floored at zero as `floor` says (by default when the series never goes
///   below zero).
pub fn fit_floored(
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
    floor: Floor,
) -> Result<FittedModel, ModelError> {
    fit_floored_for(model, series, seasons, floor, None)
}

/// [`fit_floored`] for forecasts of `horizon` steps, when the horizon is known
/// ([`Model::fit_for`]).
pub fn fit_floored_for(
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
    floor: Floor,
    horizon: Option<usize>,
) -> Result<FittedModel, ModelError> {
    if let Some(&bad) = seasons.iter().find(|&&s| s == 0) {
        return Err(ModelError::InvalidSeason(bad));
    }
    let mut observed = series.values().iter().copied().filter(|v| !v.is_nan());
    let first = observed.next();
    let (mut constant, mut non_negative, mut count) = (true, first.is_some_and(|v| v >= 0.0), 1);
    for v in observed {
        constant &= Some(v) == first;
        non_negative &= v >= 0.0;
        count += 1;
    }
    let stand_in = naive::SeasonalNaive::naive();
    let model: &dyn Model = if constant && count >= 2 {
        &stand_in
    } else {
        model
    };
    Ok(FittedModel {
        model: model.name(),
        next: series.next_timestamp(),
        step: series.step(),
        non_negative: match floor {
            Floor::Auto => non_negative,
            Floor::Zero => true,
            Floor::None => false,
        },
        inner: match horizon {
            Some(h) => model.fit_for(series, seasons, h)?,
            None => model.fit(series, seasons)?,
        },
    })
}

/// 9999-12-31T23:59:59.999Z: the last instant RFC 3339 (and so every output table) can write.
const LAST_PRINTABLE_MS: Millis = 253_402_300_799_999;

/// The longest horizon a forecast may ask for: a million steps (a year of 30-second steps),
/// far past any horizon a model has information for, and small enough that the arrays it
/// needs stay in memory.
pub const MAX_HORIZON: usize = 1_000_000;

fn check_request(horizon: usize, levels: &[f64]) -> Result<(), ModelError> {
    if horizon == 0 {
        return Err(ModelError::ZeroHorizon);
    }
    if horizon > MAX_HORIZON {
        return Err(ModelError::HorizonTooLong(horizon));
    }
    match levels.iter().find(|l| !(**l > 0.0 && **l < 100.0)) {
        Some(&bad) => Err(ModelError::InvalidLevel(bad)),
        None => Ok(()),
    }
}

/// The standard normal quantile for a central interval at `level` percent (1.2816 for 80).
pub fn normal_quantile(level: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().inverse_cdf(0.5 + level / 200.0)
}

/// Seasonal periods implied by a step: one day and one week, where they are whole numbers
/// of steps of at least two (24 and 168 for hourly data, 288 and 2016 for 5-minute data).
pub fn calendar_periods(step: Millis) -> Vec<usize> {
    const DAY: Millis = 86_400_000;
    [DAY, 7 * DAY]
        .into_iter()
        .filter(|p| step > 0 && p % step == 0 && p / step >= 2)
        .map(|p| (p / step) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_follow_the_step() {
        assert_eq!(calendar_periods(3_600_000), [24, 168]);
        assert_eq!(calendar_periods(300_000), [288, 2016]);
        assert_eq!(calendar_periods(1_800_000), [48, 336]);
        assert_eq!(calendar_periods(86_400_000), [7]);
        assert!(calendar_periods(11_000).is_empty());
    }

    #[test]
    fn normal_quantiles_match_tables() {
        assert!((normal_quantile(80.0) - 1.281_551_6).abs() < 1e-6);
        assert!((normal_quantile(95.0) - 1.959_964).abs() < 1e-6);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(matches!(
            check_request(0, &[]),
            Err(ModelError::ZeroHorizon)
        ));
        assert!(matches!(
            check_request(1, &[100.0]),
            Err(ModelError::InvalidLevel(l)) if l == 100.0
        ));
        let nan = check_request(1, &[f64::NAN]).unwrap_err();
        assert!(nan.to_string().contains("NaN"), "{nan}");
    }
}
