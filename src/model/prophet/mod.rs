//! `prophet`: Prophet's model (Taylor & Letham 2018) fitted by its MAP estimate, in pure Rust.
//!
//! - **Model.** A piecewise trend (linear with automatic changepoints, logistic with a
//!   capacity, or flat), Fourier seasonalities (daily, weekly and yearly chosen from the data's
//!   span and step as Prophet chooses them, plus custom periods), holidays and extra
//!   regressors, each additive or multiplicative; a Laplace prior on the changepoint deltas and
//!   Normal priors on the seasonality, holiday and regressor coefficients.
//! - **What is reused.** augurs-prophet ports Prophet's data preparation (scaling, changepoint
//!   placement, Fourier features, holiday windows) and its point prediction; it takes the
//!   optimiser through a trait. [`map::Lbfgs`] implements that trait without Stan: Prophet's
//!   exact MAP objective with its analytic gradient, minimised by L-BFGS.
//! - **Uncertainty** the Prophet way ([`uncertainty`]): future trend changes are simulated
//!   (changepoints as a Poisson process at the historical rate, deltas from a Laplace with the
//!   fitted deltas' mean absolute value) plus Gaussian observation noise, `samples` times
//!   from a fixed `seed`, so the same call gives the same intervals. (augurs' own sampler uses
//!   the thread RNG, which is not reproducible.)
//! - **Components** (trend, each seasonality, holidays, regressors) come out with the forecast.
//! - **Missing values** are dropped, as Prophet drops them: the model needs no regular grid.
//!
//! Settings that the data cannot support are refused with [`ModelError::TooShort`] or
//! [`ModelError::Settings`] rather than fitted badly: a custom seasonality whose period is
//! longer than half the history, logistic growth with a capacity not above the data.
//!
//! Saving: augurs' fitted model is not serialisable, so a model file stores the settings, the
//! training points and the fitted parameters; loading repeats augurs' (deterministic) data
//! preparation and takes the stored parameters instead of optimising again, which gives
//! identical forecasts.

mod lasso;
pub mod map;
pub mod uncertainty;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use augurs::prophet::optimizer::{
    Data, Error as OptimizerError, InitialParams, OptimizeOpts, OptimizedParams, Optimizer,
};
use augurs::prophet::{
    FeatureMode, FeaturePrediction, GrowthType, Holiday, HolidayOccurrence, OptProphetOptions,
    PredictionData, Predictions, Prophet as AugursProphet, Regressor, Seasonality,
    SeasonalityOption, TrainingData,
};
use serde::{Deserialize, Serialize};

use crate::forecast::{Component, Prediction};
use crate::series::{Millis, Series};

use super::{Fitted, Model, ModelError};
use map::{Lbfgs, MapReport, Posterior};

const NAME: &str = "prophet";

/// The trend's shape: `linear`, `{logistic: {cap: C}}` or `flat` in settings (model files
/// written before the lower-case spelling still read).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Growth {
    /// Piecewise linear with automatic changepoints (Prophet's default).
    #[serde(alias = "Linear")]
    Linear,
    /// Piecewise logistic, saturating at `cap` (in the series' units).
    #[serde(alias = "Logistic")]
    Logistic {
        /// The capacity the trend approaches.
        cap: f64,
    },
    /// A constant level.
    #[serde(alias = "Flat")]
    Flat,
}

/// Whether seasonalities and holidays add to the trend or scale it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `y = trend + seasonality` (Prophet's default).
    #[serde(alias = "Additive")]
    Additive,
    /// `y = trend · (1 + seasonality)`.
    #[serde(alias = "Multiplicative")]
    Multiplicative,
}

/// The largest Fourier order a seasonality may ask for. Prophet's own seasonalities use 3 to
/// 10; each order adds two columns per point to the design matrix, so an order of 100,000 on a
/// long series asks for hundreds of gigabytes before fitting starts.
pub const MAX_FOURIER_ORDER: u32 = 100;

/// The most simulated paths behind the intervals: 100,000 (Prophet's default is 1,000); each
/// costs a pass over the horizon.
pub const MAX_SAMPLES: usize = 100_000;

/// The most potential changepoints: 1,000 (Prophet's default is 25); each is a column of the
/// trend's design matrix over the whole history.
pub const MAX_CHANGEPOINTS: u32 = 1_000;

/// A seasonality with a period the automatic ones do not cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSeasonality {
    /// Its name in the components, e.g. `hourly`.
    pub name: String,
    /// The period in seconds.
    pub period_seconds: f64,
    /// Number of Fourier pairs.
    pub fourier_order: u32,
}

/// A holiday or event: one coefficient, active during each of its occurrences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Its name in the components.
    pub name: String,
    /// Each occurrence as `[start, end)` in milliseconds since the epoch (UTC); a holiday
    /// is one day long.
    pub occurrences: Vec<(Millis, Millis)>,
}

/// An extra regressor: its values on the series' grid and on the forecast steps after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraRegressor {
    /// Its name in the components.
    pub name: String,
    /// One value per point of the series, then one per future step (as many as the longest
    /// horizon asked for).
    pub values: Vec<f64>,
}

/// Prophet's settings, with Prophet's names and defaults; any left out of a settings value
/// keep their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Trend shape.
    pub growth: Growth,
    /// Seasonality (and holiday) mode.
    pub mode: Mode,
    /// Number of potential changepoints, spread over the first `changepoint_range` of the
    /// history.
    pub changepoints: u32,
    /// Share of the history in which changepoints are placed.
    pub changepoint_range: f64,
    /// Scale τ of the Laplace prior on changepoint deltas.
    pub changepoint_prior_scale: f64,
    /// Scale of the Normal prior on seasonality coefficients.
    pub seasonality_prior_scale: f64,
    /// Scale of the Normal prior on holiday and regressor coefficients.
    pub holidays_prior_scale: f64,
    /// Custom seasonalities, added to the automatic ones.
    pub seasonalities: Vec<CustomSeasonality>,
    /// Holidays and events.
    pub events: Vec<Event>,
    /// Extra regressors.
    pub regressors: Vec<ExtraRegressor>,
    /// Simulated paths for the intervals (at least 1; 1,000 by default).
    pub samples: usize,
    /// Seed of the simulation.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            growth: Growth::Linear,
            mode: Mode::Additive,
            changepoints: 25,
            changepoint_range: 0.8,
            changepoint_prior_scale: 0.05,
            seasonality_prior_scale: 10.0,
            holidays_prior_scale: 10.0,
            seasonalities: Vec::new(),
            events: Vec::new(),
            regressors: Vec::new(),
            samples: 1000,
            seed: 0,
        }
    }
}

/// The Prophet-style forecaster.
#[derive(Debug, Clone, Default)]
pub struct Prophet {
    /// Its settings.
    pub settings: Settings,
}

impl Prophet {
    /// A forecaster with these settings (unchecked: see [`Prophet::from_settings`]).
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// A forecaster with these settings, checked first: every problem is listed.
    pub fn from_settings(settings: Settings) -> Result<Self, ModelError> {
        settings.validate()?;
        Ok(Self::new(settings))
    }
}

impl Settings {
    /// Checks what can be checked without data: positive prior scales, a changepoint range
    /// in (0, 1], named custom seasonalities with positive periods and orders, events with
    /// occurrences that end after they start. Every problem is listed at once.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("changepoint_prior_scale", self.changepoint_prior_scale),
            ("seasonality_prior_scale", self.seasonality_prior_scale),
            ("holidays_prior_scale", self.holidays_prior_scale),
        ] {
            if !(value.is_finite() && value > 0.0) {
                problems.push(format!("{name} must be a positive number, got {value}"));
            }
        }
        if self.samples == 0 || self.samples > MAX_SAMPLES {
            problems.push(format!(
                "samples must be 1 to {MAX_SAMPLES} (the intervals are quantiles of the simulated paths), got {}",
                self.samples
            ));
        }
        if self.changepoints > MAX_CHANGEPOINTS {
            problems.push(format!(
                "changepoints must be at most {MAX_CHANGEPOINTS}, got {}",
                self.changepoints
            ));
        }
        if !(self.changepoint_range > 0.0 && self.changepoint_range <= 1.0) {
            problems.push(format!(
                "changepoint_range must be in (0, 1], got {}",
                self.changepoint_range
            ));
        }
        if let Growth::Logistic { cap } = self.growth {
            if !cap.is_finite() {
                problems.push(format!("the logistic cap must be a number, got {cap}"));
            }
        }
        for s in &self.seasonalities {
            if s.name.trim().is_empty() {
                problems.push("a custom seasonality has an empty name".into());
            }
            if !(s.period_seconds.is_finite() && s.period_seconds > 0.0) {
                problems.push(format!(
                    "seasonality {:?}: the period must be positive, got {} s",
                    s.name, s.period_seconds
                ));
            }
            if s.fourier_order == 0 || s.fourier_order > MAX_FOURIER_ORDER {
                problems.push(format!(
                    "seasonality {:?}: the Fourier order must be 1 to {MAX_FOURIER_ORDER}, got {}",
                    s.name, s.fourier_order
                ));
            }
        }
        for e in &self.events {
            if let Some((start, end)) = e.occurrences.iter().find(|(s, e)| e <= s) {
                problems.push(format!(
                    "event {:?}: an occurrence ends ({end}) before it starts ({start})",
                    e.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError::settings(NAME, problems.join("; ")))
        }
    }
}

/// The training points Prophet sees: observed values with their times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct History {
    /// Seconds since the epoch of every point of the series, observed or not.
    ds: Vec<i64>,
    /// Values, `NaN` where missing (JSON `null`).
    #[serde(with = "super::file::nan_as_null")]
    y: Vec<f64>,
    /// The grid: milliseconds between points.
    step: Millis,
}

impl History {
    /// The points of `series`, times in seconds.
    fn of(series: &Series) -> Self {
        Self {
            ds: series.timestamps().map(|t| t.div_euclid(1000)).collect(),
            y: series.values().to_vec(),
            step: series.step(),
        }
    }

    /// The times of the observed points, which Prophet scales time by.
    fn observed_seconds(&self) -> Vec<i64> {
        self.ds
            .iter()
            .zip(&self.y)
            .filter(|(_, y)| y.is_finite())
            .map(|(d, _)| *d)
            .collect()
    }
}

/// A fitted Prophet model: what is needed to rebuild it exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    settings: Settings,
    history: History,
    /// `(k, m, ln σ, δ, β)` as [`Posterior`] packs them.
    theta: Vec<f64>,
    /// Fingerprints of the regressor columns, in `β`'s order (see [`map::reorder`]).
    columns: Vec<u64>,
    /// The MAP objective at `theta`.
    objective: f64,
    iterations: u64,
    /// False when L-BFGS stopped at its iteration limit before its tolerance (files written
    /// before this field was kept are taken as converged, as they were then required to be).
    #[serde(default = "converged_by_default")]
    converged: bool,
}

fn converged_by_default() -> bool {
    true
}

struct FittedProphet {
    state: State,
    model: AugursProphet<Shared>,
    /// The scaled data the model was fitted on (time points, changepoints).
    data: Data,
    /// The divisor augurs applied to `y` (its largest absolute value).
    y_scale: f64,
    fitted: Vec<f64>,
    /// The seasonalities, events and regressors, by name (for the description).
    seasonal: Vec<String>,
}

impl Model for Prophet {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fit(&self, series: &Series, _seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        // Prophet picks its seasonalities from the timestamps (see the module docs); custom
        // periods come from the settings rather than from `seasons`, which are in steps.
        let history = History::of(series);
        check(&self.settings, &history)?;
        let (model, recorded) =
            fit_with(&self.settings, &history, Source::Optimise(Lbfgs::default()))?;
        let state = State {
            settings: self.settings.clone(),
            history,
            theta: recorded.theta,
            columns: map::column_fingerprints(&recorded.data),
            objective: recorded.report.objective,
            iterations: recorded.report.iterations,
            converged: recorded.report.converged,
        };
        if !state.converged {
            tracing::warn!(
                iterations = state.iterations,
                "prophet stopped at its L-BFGS iteration limit before converging; the fit is the best point found"
            );
        }
        let fitted = FittedProphet::new(state, model, recorded.data)?;
        Ok(Box::new(fitted))
    }
}

/// Refuses settings the history cannot support.
fn check(settings: &Settings, history: &History) -> Result<(), ModelError> {
    let observed: Vec<usize> = (0..history.y.len())
        .filter(|&i| history.y[i].is_finite())
        .collect();
    let too_short = |needed| ModelError::TooShort {
        model: NAME.into(),
        needed,
        got: observed.len(),
    };
    let (Some(&first), Some(&last)) = (observed.first(), observed.last()) else {
        return Err(too_short(3));
    };
    if observed.len() < 3 {
        return Err(too_short(3));
    }
    let span = (history.ds[last] - history.ds[first]) as f64;
    let step = (history.step as f64 / 1000.0).max(1.0);
    for s in &settings.seasonalities {
        if s.period_seconds.is_nan() || s.period_seconds <= 0.0 || s.fourier_order == 0 {
            return Err(settings_error(format!(
                "seasonality {:?} needs a positive period and Fourier order",
                s.name
            )));
        }
        if span < 2.0 * s.period_seconds {
            // Two full periods, as Prophet requires before it turns on its own seasonalities.
            return Err(too_short(
                (2.0 * s.period_seconds / step).ceil() as usize + 1,
            ));
        }
    }
    if let Growth::Logistic { cap } = settings.growth {
        let max = observed
            .iter()
            .map(|&i| history.y[i])
            .fold(f64::MIN, f64::max);
        if !(cap.is_finite() && cap > max.max(0.0)) {
            return Err(settings_error(format!(
                "logistic growth needs a capacity above every observed value and zero; \
                 got {cap}, the series reaches {max}"
            )));
        }
    }
    for r in &settings.regressors {
        if r.values.len() < history.y.len() || r.values.iter().any(|v| !v.is_finite()) {
            return Err(settings_error(format!(
                "regressor {:?} needs a finite value for each of the {} points of the series \
                 and for each forecast step",
                r.name,
                history.y.len()
            )));
        }
    }
    Ok(())
}

fn settings_error(message: String) -> ModelError {
    ModelError::settings(NAME, message)
}

fn failed(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ModelError {
    ModelError::failed(NAME, cause)
}

fn augurs_error(e: augurs::prophet::Error) -> ModelError {
    failed(e)
}

/// Prophet's options for `settings` (auto seasonalities as Prophet's defaults).
fn options(settings: &Settings) -> Result<OptProphetOptions, ModelError> {
    let positive = |v: f64, what: &str| {
        v.try_into()
            .map_err(|_| settings_error(format!("{what} must be positive, got {v}")))
    };
    let mode = match settings.mode {
        Mode::Additive => FeatureMode::Additive,
        Mode::Multiplicative => FeatureMode::Multiplicative,
    };
    let holidays = settings
        .events
        .iter()
        .map(|e| {
            let occurrences = e
                .occurrences
                .iter()
                .map(|&(start, end)| {
                    HolidayOccurrence::new(start.div_euclid(1000), end.div_euclid(1000))
                })
                .collect();
            (e.name.clone(), Holiday::new(occurrences))
        })
        .collect::<HashMap<_, _>>();
    Ok(OptProphetOptions {
        growth: Some(match settings.growth {
            Growth::Linear => GrowthType::Linear,
            Growth::Logistic { .. } => GrowthType::Logistic,
            Growth::Flat => GrowthType::Flat,
        }),
        n_changepoints: Some(settings.changepoints),
        changepoint_range: Some(positive(settings.changepoint_range, "changepoint range")?),
        changepoint_prior_scale: Some(positive(
            settings.changepoint_prior_scale,
            "changepoint prior scale",
        )?),
        seasonality_prior_scale: Some(positive(
            settings.seasonality_prior_scale,
            "seasonality prior scale",
        )?),
        holidays_prior_scale: Some(positive(
            settings.holidays_prior_scale,
            "holidays prior scale",
        )?),
        seasonality_mode: Some(mode),
        yearly_seasonality: Some(SeasonalityOption::Auto),
        weekly_seasonality: Some(SeasonalityOption::Auto),
        daily_seasonality: Some(SeasonalityOption::Auto),
        holidays: (!holidays.is_empty()).then_some(holidays),
        // Intervals are simulated here, reproducibly (see `uncertainty`).
        uncertainty_samples: Some(0),
        ..Default::default()
    })
}

/// Builds and fits augurs' Prophet on `history` with `optimizer`.
fn build<O: Optimizer>(
    settings: &Settings,
    history: &History,
    optimizer: O,
) -> Result<AugursProphet<O>, ModelError> {
    let mut model = AugursProphet::new(options(settings)?.into(), optimizer);
    for s in &settings.seasonalities {
        let period_days = s.period_seconds / 86_400.0;
        let period = period_days
            .try_into()
            .map_err(|_| settings_error(format!("seasonality {:?}: bad period", s.name)))?;
        let order = NonZeroU32::new(s.fourier_order)
            .ok_or_else(|| settings_error(format!("seasonality {:?}: order 0", s.name)))?;
        model
            .add_seasonality(s.name.clone(), Seasonality::new(period, order))
            .map_err(augurs_error)?;
    }
    for r in &settings.regressors {
        model.add_regressor(r.name.clone(), Regressor::additive());
    }
    let n = history.y.len();
    let mut data =
        TrainingData::new(history.ds.clone(), history.y.clone()).map_err(augurs_error)?;
    if let Growth::Logistic { cap } = settings.growth {
        data = data.with_cap(vec![cap; n]).map_err(augurs_error)?;
    }
    if !settings.regressors.is_empty() {
        let x = settings
            .regressors
            .iter()
            .map(|r| (r.name.clone(), r.values[..n].to_vec()))
            .collect();
        data = data.with_regressors(x).map_err(augurs_error)?;
    }
    let opts = OptimizeOpts {
        // Prophet 1.x passes no `jacobian` to cmdstan, whose default leaves it out.
        jacobian: Some(false),
        ..Default::default()
    };
    model.fit(data, opts).map_err(augurs_error)?;
    Ok(model)
}

/// Where a fit's parameters come from.
#[derive(Debug)]
enum Source {
    /// Optimised by L-BFGS.
    Optimise(Lbfgs),
    /// Read from a model file: `θ`, with the fingerprints of the columns its `β` belongs to.
    Saved(Vec<f64>, Vec<u64>),
}

/// What the optimiser found, and the scaled data it found it on.
struct Recorded {
    theta: Vec<f64>,
    report: MapReport,
    data: Data,
}

/// The optimiser handed to augurs: it optimises (or takes saved parameters) and keeps the
/// parameters and the scaled data, which augurs does not expose, for the interval simulation
/// and the model file.
#[derive(Debug)]
struct Recorder {
    source: Source,
    result: Mutex<Option<Recorded>>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("report", &self.report)
            .finish()
    }
}

/// A shared [`Recorder`], which augurs' model owns while the caller keeps a handle.
#[derive(Debug, Clone)]
struct Shared(Arc<Recorder>);

impl Shared {
    fn new(source: Source) -> Self {
        Self(Arc::new(Recorder {
            source,
            result: Mutex::new(None),
        }))
    }

    fn take(&self) -> Result<Recorded, ModelError> {
        self.0
            .result
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| failed("the optimiser was not run"))
    }
}

impl Optimizer for Shared {
    fn optimize(
        &self,
        init: &InitialParams,
        data: &Data,
        opts: &OptimizeOpts,
    ) -> Result<OptimizedParams, OptimizerError> {
        let jacobian = opts.jacobian.unwrap_or(false);
        let (theta, report) = match &self.0.source {
            Source::Optimise(solver) => solver
                .fit(data, jacobian, init)
                .map_err(OptimizerError::string)?,
            Source::Saved(saved, columns) => {
                let posterior = Posterior::for_evaluation(data, jacobian);
                let mismatch = || {
                    OptimizerError::string(format!(
                        "the saved model's {} parameters do not fit the {} this data needs \
                         (the file was made from other settings or data)",
                        saved.len(),
                        posterior.dimension()
                    ))
                };
                let split = saved
                    .len()
                    .checked_sub(columns.len())
                    .ok_or_else(mismatch)?;
                let beta = map::reorder(&saved[split..], columns, &map::column_fingerprints(data))
                    .ok_or_else(mismatch)?;
                let mut theta = saved[..split].to_vec();
                theta.extend(beta);
                if theta.len() != posterior.dimension() {
                    return Err(mismatch());
                }
                let report = MapReport {
                    objective: posterior.value(&theta),
                    iterations: 0,
                    converged: true,
                };
                (theta, report)
            }
        };
        let params = map::unpack(&Posterior::for_evaluation(data, jacobian), &theta)?;
        if let Ok(mut slot) = self.0.result.lock() {
            *slot = Some(Recorded {
                theta,
                report,
                data: data.clone(),
            });
        }
        Ok(params)
    }
}

/// Fits augurs' Prophet to `history` with parameters from `source`.
fn fit_with(
    settings: &Settings,
    history: &History,
    source: Source,
) -> Result<(AugursProphet<Shared>, Recorded), ModelError> {
    let optimizer = Shared::new(source);
    let model = build(settings, history, optimizer.clone())?;
    Ok((model, optimizer.take()?))
}

impl FittedProphet {
    fn new(state: State, model: AugursProphet<Shared>, data: Data) -> Result<Self, ModelError> {
        let y_scale = state
            .history
            .y
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let mut fitted = Self {
            state,
            model,
            data,
            y_scale: if y_scale > 0.0 { y_scale } else { 1.0 },
            fitted: Vec::new(),
            seasonal: Vec::new(),
        };
        let all = PredictionData::new(fitted.state.history.ds.clone());
        let all = fitted.with_inputs(all, 0)?;
        let p = fitted.model.predict(all).map_err(augurs_error)?;
        fitted.fitted = fitted.parts(&p).mean();
        fitted.seasonal = components(&p)
            .into_iter()
            .skip(1) // the trend
            .map(|c| c.name)
            .collect();
        Ok(fitted)
    }

    /// Adds the capacity and regressor values that prediction at `data`'s times needs;
    /// `offset` is the index of its first time on the series' grid.
    fn with_inputs(
        &self,
        mut data: PredictionData,
        offset: usize,
    ) -> Result<PredictionData, ModelError> {
        let n = data.ds.len();
        if let Growth::Logistic { cap } = self.state.settings.growth {
            data = data.with_cap(vec![cap; n]).map_err(augurs_error)?;
        }
        if !self.state.settings.regressors.is_empty() {
            let mut x = HashMap::new();
            for r in &self.state.settings.regressors {
                let values = r.values.get(offset..offset + n).ok_or_else(|| {
                    settings_error(format!(
                        "regressor {:?} has {} values; this forecast needs {}",
                        r.name,
                        r.values.len(),
                        offset + n
                    ))
                })?;
                x.insert(r.name.clone(), values.to_vec());
            }
            data = data.with_regressors(x).map_err(augurs_error)?;
        }
        Ok(data)
    }

    fn future_seconds(&self, horizon: usize) -> Vec<i64> {
        let h = &self.state.history;
        let last = h.ds.last().copied().unwrap_or(0);
        let step = h.step.div_euclid(1000).max(1);
        (1..=horizon as i64).map(|i| last + i * step).collect()
    }
}

impl Fitted for FittedProphet {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let ds = self.future_seconds(horizon);
        let input =
            self.with_inputs(PredictionData::new(ds.clone()), self.state.history.y.len())?;
        let p = self.model.predict(input).map_err(augurs_error)?;
        let parts = self.parts(&p);
        let intervals = uncertainty::Simulation {
            data: &self.data,
            theta: &self.state.theta,
            y_scale: self.y_scale,
            cap: match self.state.settings.growth {
                Growth::Logistic { cap } => Some(cap),
                _ => None,
            },
            samples: self.state.settings.samples,
            seed: self.state.settings.seed,
        }
        .intervals(&ds, &self.state.history.observed_seconds(), &parts, levels)?;
        Ok(Prediction {
            mean: parts.mean(),
            intervals,
            components: components(&p),
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        self.fitted.clone()
    }

    fn describe(&self) -> String {
        let s = &self.state.settings;
        let growth = match s.growth {
            Growth::Linear => "linear".to_string(),
            Growth::Logistic { cap } => format!("logistic, cap {cap}"),
            Growth::Flat => "flat".to_string(),
        };
        let seasonal = &self.seasonal;
        format!(
            "prophet, {growth} trend, {} changepoints, {} ({}), MAP objective {:.4} after {} \
             L-BFGS iterations{}",
            self.data.t_change.len(),
            if seasonal.is_empty() {
                "no seasonality".to_string()
            } else {
                seasonal.join(", ")
            },
            match s.mode {
                Mode::Additive => "additive",
                Mode::Multiplicative => "multiplicative",
            },
            self.state.objective,
            self.state.iterations,
            if self.state.converged {
                ""
            } else {
                " (stopped at the iteration limit before converging)"
            }
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(&self.state)
    }
}

/// A prediction's trend and the totals of its additive and multiplicative components.
pub(super) struct Parts {
    trend: Vec<f64>,
    additive: Vec<f64>,
    multiplicative: Vec<f64>,
}

impl Parts {
    /// `trend·(1 + multiplicative) + additive`, as Prophet combines them.
    fn mean(&self) -> Vec<f64> {
        self.trend
            .iter()
            .zip(&self.multiplicative)
            .zip(&self.additive)
            .map(|((t, m), a)| t * (1.0 + m) + a)
            .collect()
    }
}

impl FittedProphet {
    /// The parts of `p`, with the component totals summed in name order. (augurs sums them
    /// in the order of a `HashMap`, which differs between fits, so its totals can differ in
    /// the last bit between a model and the same model loaded from its file.)
    fn parts(&self, p: &Predictions) -> Parts {
        let n = p.trend.point.len();
        let (mut additive, mut multiplicative) = (vec![0.0; n], vec![0.0; n]);
        let scaled = self.state.settings.mode == Mode::Multiplicative;
        let groups = [
            (&p.seasonalities, scaled),
            (&p.holidays, scaled),
            (&p.regressors, false),
        ];
        for (map, is_multiplicative) in groups {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            let total = if is_multiplicative {
                &mut multiplicative
            } else {
                &mut additive
            };
            for name in names {
                for (t, v) in total.iter_mut().zip(&map[name].point) {
                    *t += v;
                }
            }
        }
        Parts {
            trend: p.trend.point.clone(),
            additive,
            multiplicative,
        }
    }
}

/// The forecast's parts: the trend, then each seasonality, holiday and regressor by name.
fn components(p: &Predictions) -> Vec<Component> {
    let mut out = vec![Component {
        name: "trend".into(),
        values: p.trend.point.clone(),
    }];
    let mut named = |map: &HashMap<String, FeaturePrediction>| {
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for name in names {
            out.push(Component {
                name: name.clone(),
                values: map[name].point.clone(),
            });
        }
    };
    named(&p.seasonalities);
    named(&p.holidays);
    named(&p.regressors);
    out
}

/// Rebuilds a saved Prophet model.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: State = serde_json::from_value(state)?;
    // A saved model's settings get the checks a configured one gets (Fourier orders,
    // changepoints, samples), before anything is sized from them.
    state.settings.validate().map_err(Error::custom)?;
    let (model, recorded) = fit_with(
        &state.settings,
        &state.history,
        Source::Saved(state.theta.clone(), state.columns.clone()),
    )
    .map_err(Error::custom)?;
    // This preparation may order the columns differently: keep `θ` in its order.
    let state = State {
        columns: map::column_fingerprints(&recorded.data),
        theta: recorded.theta,
        ..state
    };
    let fitted = FittedProphet::new(state, model, recorded.data).map_err(Error::custom)?;
    Ok(Box::new(fitted))
}

/// Parameters of another Prophet fit (e.g. Prophet's own), to score with prescale's
/// objective.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ForeignFit {
    /// Base growth rate.
    pub k: f64,
    /// Offset.
    pub m: f64,
    /// Observation noise (scaled units).
    pub sigma_obs: f64,
    /// Changepoint deltas.
    pub delta: Vec<f64>,
    /// Each coefficient with the first values of its feature column, which identify the
    /// column whatever order the two implementations keep them in.
    pub beta: Vec<ForeignColumn>,
}

/// One coefficient of a [`ForeignFit`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ForeignColumn {
    /// The feature's name there, e.g. `daily_delim_1`.
    pub name: String,
    /// The feature's first values.
    pub head: Vec<f64>,
    /// The coefficient.
    pub value: f64,
}

/// Prophet's MAP objective on `series` (with `settings`) at another fit's parameters and
/// at prescale's own optimum: `(theirs, ours)`. The parity tests compare the two.
pub fn objectives_at(
    settings: &Settings,
    series: &Series,
    other: &ForeignFit,
) -> Result<(f64, f64), ModelError> {
    let history = History::of(series);
    check(settings, &history)?;
    let (_, recorded) = fit_with(settings, &history, Source::Optimise(Lbfgs::default()))?;
    let data = &recorded.data;
    let k = data.K.max(0) as usize;
    let mut used = vec![false; other.beta.len()];
    let mut beta = Vec::with_capacity(k);
    for j in 0..k {
        let column = |i: usize| data.X[i * k + j];
        let found = other.beta.iter().enumerate().position(|(c, col)| {
            !used[c]
                && col.head.len() <= data.y.len()
                && col
                    .head
                    .iter()
                    .enumerate()
                    .all(|(i, v)| (v - column(i)).abs() < 1e-7)
        });
        let c = found.ok_or_else(|| {
            failed(format!(
                "no coefficient of the other fit matches column {j}"
            ))
        })?;
        used[c] = true;
        beta.push(other.beta[c].value);
    }
    let posterior = Posterior::for_evaluation(data, false);
    let theirs = posterior.pack(other.k, other.m, other.sigma_obs, &other.delta, &beta);
    if theirs.len() != posterior.dimension() {
        return Err(failed(format!(
            "the other fit has {} parameters, this data needs {}",
            theirs.len(),
            posterior.dimension()
        )));
    }
    Ok((posterior.value(&theirs), recorded.report.objective))
}
