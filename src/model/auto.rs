//! `auto`: per series, backtest the candidate models on the last windows of its own history,
//! then pick the best or combine them, with intervals recalibrated on those windows.
//!
//! - **Validation.** The last `windows` blocks of `horizon` steps of the history are forecast,
//!   each from the history before it, by every candidate; each candidate's error is its mean
//!   MASE over the windows (scaled by the in-sample seasonal naive error of the first season).
//!   Candidates that fail on a window are dropped for the series.
//! - **Combination** ([`Combine`]): by default the candidates' mean weighted by inverse
//!   error, leaving out those more than twice as bad as the best ([`INVERSE_ERROR_BAND`]);
//!   or the candidate with the lowest error, the mean of the `k` best, or the median of all
//!   candidates' forecasts. Eight windows of a few steps are too few errors to pick one of
//!   several near-equal candidates reliably; weighting them loses little when one is truly
//!   better and gains the usual diversification when none is (see the README for the
//!   measurements). The combination is applied the same way to the window forecasts, so
//!   that the intervals are calibrated on the forecast actually made.
//! - **Intervals** are recalibrated by split conformal prediction on the windows (Vovk et al.
//!   2005; normalised as in Papadopoulos et al. 2011): each window step's absolute error is
//!   divided by the forecast's own spread there (its 80% interval's half-width, as a normal
//!   σ), and the final interval at level `L` is the forecast ± the `L`-quantile of those
//!   ratios times the spread. This makes the coverage of the chosen or combined forecast match
//!   what it achieved on the windows, whether the candidates' own intervals were too narrow
//!   or too wide. Because the windows also made the choice, the winner's scores there are
//!   flattering; the scores are therefore also cross-fitted (each window scored with the
//!   choice the other windows make) and the intervals take the wider of the two quantiles.
//! - The final forecast refits the chosen candidates on the whole history.
//! - `lstm` takes part where a bundled network was trained on the series' step (hourly,
//!   30-minute and 5-minute data); elsewhere it is dropped like any candidate that cannot fit.
//!
//! Saving stores each kept candidate's own state with its weight, and the calibration.

use serde::{Deserialize, Serialize};

use std::sync::Arc;
use std::time::Instant;

use crate::forecast::{Interval, Prediction};
use crate::series::Series;

use crate::human::chain;

use super::registry::{self, ModelSpec};
use super::{normal_quantile, Fitted, Model, ModelError};

/// How the candidates become one forecast; written `best`, `topK` (e.g. `top2`), `median`
/// or `inverse-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The candidate with the lowest validation MASE.
    Best,
    /// The mean of the `k` candidates with the lowest validation MASE.
    Top(usize),
    /// The per-step median of every candidate's forecast.
    Median,
    /// The mean weighted by `1 / MASE` of the candidates whose MASE is at most twice the
    /// lowest ([`INVERSE_ERROR_BAND`]).
    InverseError,
}

impl std::fmt::Display for Combine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Best => f.write_str("best"),
            Self::Top(k) => write!(f, "top{k}"),
            Self::Median => f.write_str("median"),
            Self::InverseError => f.write_str("inverse-error"),
        }
    }
}

impl Serialize for Combine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Combine {
    /// Reads the text form, and the derived form model files used before it (`"Best"`,
    /// `{"Top": 2}`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        enum Legacy {
            Top(usize),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Legacy(Legacy),
        }
        match Form::deserialize(d)? {
            Form::Text(text) => match text.as_str() {
                "Best" => Ok(Self::Best),
                "Median" => Ok(Self::Median),
                "InverseError" => Ok(Self::InverseError),
                other => other.parse().map_err(serde::de::Error::custom),
            },
            Form::Legacy(Legacy::Top(k)) => Ok(Self::Top(k)),
        }
    }
}

impl std::str::FromStr for Combine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "best" => Ok(Self::Best),
            "median" => Ok(Self::Median),
            "inverse-error" => Ok(Self::InverseError),
            other => match other.strip_prefix("top").and_then(|k| k.parse().ok()) {
                Some(k) if k >= 1 => Ok(Self::Top(k)),
                _ => Err(format!(
                    "unknown combination {other:?}; use best, topK (e.g. top2), median or \
                     inverse-error"
                )),
            },
        }
    }
}

/// `auto`'s settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Candidate models, each a registry name or a name with its settings.
    pub candidates: Vec<ModelSpec>,
    /// Validation windows (rolling origins at the end of the history), at most; fewer when
    /// the history is short (the windows never take more than half of it).
    pub windows: usize,
    /// Steps per validation window; `None`: the horizon the forecast is fitted for
    /// ([`Model::fit_for`]), or, when none is known, one hour of steps on sub-hourly data
    /// (at least 8) and two of the first season otherwise (at least 8).
    pub horizon: Option<usize>,
    /// Steps between consecutive origins; `None`: the window length, or more where that
    /// spreads the windows over the shortest season (`max(horizon, ⌈season / windows⌉)`).
    pub stride: Option<usize>,
    /// How the candidates are combined.
    pub combine: Combine,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            candidates: [
                "ets",
                "mstl",
                "theta",
                "arima",
                "prophet",
                "lstm",
                "ets-nonseasonal",
                "theta-nonseasonal",
            ]
            .into_iter()
            .map(ModelSpec::named)
            .collect(),
            windows: DEFAULT_WINDOWS,
            horizon: None,
            stride: None,
            combine: Combine::InverseError,
        }
    }
}

/// `inverse-error` leaves out the candidates whose validation error is more than this many
/// times the lowest. A plain inverse-error mean gives a model that validates three times
/// worse a third of the best one's weight: on the first 100 M4 hourly series, where the
/// nonseasonal `ets`/`theta` validate at about 3.5 times the others' MASE, they took OWA from
/// 0.342 (without them) to 0.384; with this band, 0.341. On the NAB five-minute series
/// (`bench ops`), where few candidates validate that far off, it changes the mean MASE by
/// 0.4–0.6% at the short horizons and 2.4% (worse) one day ahead, still 0.6% better than
/// the best single candidate there.
pub const INVERSE_ERROR_BAND: f64 = 2.0;

/// The default number of validation windows.
pub const DEFAULT_WINDOWS: usize = 8;

/// The fewest steps a validation window is forecast, whatever the horizon (see
/// `Auto::fit_horizon`): with the default eight windows, 64 scores to calibrate on, 40 of
/// them within four leads of lead one.
const MIN_WINDOW_STEPS: usize = 8;

/// A validation window's steps: the first `scored` choose the model, all `length` calibrate
/// the intervals.
#[derive(Debug, Clone, Copy)]
struct Steps {
    scored: usize,
    length: usize,
}

/// The automatic model: its settings and the candidate models built from them.
#[derive(Clone)]
pub struct Auto {
    settings: Settings,
    candidates: Vec<Arc<dyn Model>>,
}

impl std::fmt::Debug for Auto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auto")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Auto {
    fn default() -> Self {
        Self::from_settings(Settings::default()).expect("the default candidates are registered")
    }
}

impl Auto {
    /// `auto` with these settings; each candidate is built through the registry (so its
    /// settings are checked now), and `auto` itself is no candidate.
    pub fn from_settings(settings: Settings) -> Result<Self, ModelError> {
        let mut problems = Vec::new();
        if settings.candidates.is_empty() {
            problems.push("candidates: at least one model is needed".to_string());
        }
        if settings.windows == 0 {
            problems.push("windows: at least one validation window is needed".into());
        }
        if settings.horizon == Some(0) {
            problems.push("horizon: a validation window needs at least one step".into());
        }
        if settings.stride == Some(0) {
            problems.push("stride: origins need at least one step between them".into());
        }
        let mut candidates = Vec::new();
        for spec in &settings.candidates {
            if spec.name == "auto" {
                problems.push("candidates: auto cannot be its own candidate".into());
                continue;
            }
            match spec.build() {
                Ok(m) => candidates.push(Arc::from(m)),
                Err(e) => problems.push(format!("candidate {}: {e}", spec.name)),
            }
        }
        if !problems.is_empty() {
            return Err(ModelError::settings("auto", problems.join("; ")));
        }
        Ok(Self {
            settings,
            candidates,
        })
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The level whose half-width measures a forecast's spread (see the module documentation).
const SPREAD_LEVEL: f64 = 80.0;

/// One candidate's validation.
struct Validated {
    /// Index into the candidates.
    candidate: usize,
    name: &'static str,
    /// MASE per window (`NaN` where the window failed or could not be scored).
    window_errors: Vec<f64>,
    /// Window forecasts: mean and the spread level's half-widths per step (`None` where the
    /// candidate failed on the window).
    windows: Vec<Option<(Vec<f64>, Vec<f64>)>>,
    /// Why it failed on its first failed window.
    failure: Option<String>,
    /// Windows fitted from scratch, and windows scored by updating an earlier fit.
    fits: usize,
    updates: usize,
}

impl Validated {
    fn fitted_windows(&self) -> usize {
        self.windows.iter().filter(|w| w.is_some()).count()
    }
}

#[derive(Serialize, Deserialize)]
struct Member {
    model: String,
    weight: f64,
    error: f64,
    state: serde_json::Value,
}

/// How the choice was validated, and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Validation {
    /// Windows compared (the origins every kept candidate fitted).
    windows: usize,
    /// Steps per window.
    horizon: usize,
    /// Steps between origins.
    stride: usize,
    /// Model fits, validation and final together.
    fits: usize,
    /// Validation windows scored by updating an earlier fit instead of refitting.
    #[serde(default)]
    updates: usize,
    /// Wall-clock seconds of the whole fit.
    seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct AutoState {
    combine: Combine,
    members: Vec<Member>,
    /// Sorted |error| / σ over the validation window steps.
    scores: Vec<f64>,
    /// The same, cross-fitted (each window scored with the other windows' choice); empty
    /// with one window and in files from before it existed.
    #[serde(default)]
    cross_scores: Vec<f64>,
    /// `scores` per lead time (sorted, one list per window step); empty in files from before
    /// it existed, which calibrate on the pooled scores.
    #[serde(default)]
    lead_scores: Vec<Vec<f64>>,
    /// `cross_scores` per lead time.
    #[serde(default)]
    lead_cross_scores: Vec<Vec<f64>>,
    /// Candidates that could not be validated.
    dropped: Vec<String>,
    /// Why each of `dropped` could not be (empty in files from before it was kept).
    #[serde(default)]
    dropped_reasons: Vec<String>,
    /// The validation and its cost (absent in files from before it was kept).
    #[serde(default)]
    validation: Option<Validation>,
    /// Why the choice was made without validation (a history too short for one window).
    #[serde(default)]
    unvalidated: Option<String>,
}

struct FittedAuto {
    state: AutoState,
    fitted: Vec<Box<dyn Fitted>>,
}

/// One hour, ms.
const HOUR_MS: i64 = 3_600_000;

/// The validation windows' length when no horizon is known: one hour of steps on
/// sub-hourly data, two of the first season otherwise; at least 8.
fn default_horizon(step: i64, period: usize) -> usize {
    if step > 0 && step < HOUR_MS {
        ((HOUR_MS / step) as usize).max(8)
    } else {
        (2 * period).max(8)
    }
}

/// The validation origins (earliest first) for a history of `n` points: up to `windows`
/// windows of `horizon` steps, `stride` apart, the last one ending at the history's end,
/// and none starting before half of the history (so every window's forecast sees at least
/// half of it). Empty when not even one window fits.
fn validation_origins(n: usize, horizon: usize, stride: usize, windows: usize) -> Vec<usize> {
    let Some(last) = n.checked_sub(horizon) else {
        return Vec::new();
    };
    let earliest = n / 2;
    (0..windows)
        .map_while(|k| {
            last.checked_sub(k * stride)
                .filter(|o| *o >= earliest.max(1))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

impl Model for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let period = seasons.first().copied().unwrap_or(1);
        let horizon = self
            .settings
            .horizon
            .unwrap_or_else(|| default_horizon(series.step(), period));
        self.fit_horizon(series, seasons, horizon)
    }

    fn fit_for(
        &self,
        series: &Series,
        seasons: &[usize],
        horizon: usize,
    ) -> Result<Box<dyn Fitted>, ModelError> {
        self.fit_horizon(
            series,
            seasons,
            self.settings.horizon.unwrap_or(horizon.max(1)),
        )
    }
}

impl Auto {
    /// Validates, chooses and fits for windows of `horizon` steps.
    fn fit_horizon(
        &self,
        series: &Series,
        seasons: &[usize],
        horizon: usize,
    ) -> Result<Box<dyn Fitted>, ModelError> {
        let started = Instant::now();
        let period = seasons.first().copied().unwrap_or(1);
        let Settings {
            windows, combine, ..
        } = self.settings;
        // Spread over the shortest season (a day), not a week: recent enough to share the
        // series' present regime, long enough to see its hours.
        let shortest = seasons.iter().copied().min().unwrap_or(1);
        let stride = self
            .settings
            .stride
            .unwrap_or_else(|| horizon.max(shortest.div_ceil(windows.max(1))));
        let n = series.len();
        // A window is forecast at least `MIN_WINDOW_STEPS` ahead even when the horizon is
        // shorter: the choice is scored on its first `horizon` steps only, but the intervals
        // are calibrated on every step, so that a one-step horizon still has scores near lead
        // one to take a 95% quantile from (eight one-step windows give eight).
        let length = horizon.max(MIN_WINDOW_STEPS);
        let origins = validation_origins(n, length, stride, windows);
        let (mut fits, mut updates) = (0, 0);
        let mut validated = Vec::new();
        let mut dropped = Vec::new();
        if !origins.is_empty() {
            for (candidate, model) in self.candidates.iter().enumerate() {
                let v = validate(
                    candidate,
                    model.as_ref(),
                    series,
                    seasons,
                    &origins,
                    Steps {
                        scored: horizon,
                        length,
                    },
                    period,
                );
                fits += v.fits;
                updates += v.updates;
                if v.fitted_windows() == 0 {
                    let reason = v
                        .failure
                        .unwrap_or_else(|| "no window could be fitted".into());
                    tracing::warn!(candidate = model.name(), %reason, "auto dropped a candidate");
                    dropped.push((model.name().to_string(), reason));
                } else {
                    validated.push(v);
                }
            }
        }
        // Compare the candidates on the windows they all fitted: the candidates that fitted
        // the most windows first, each kept while at least half of the windows stay common
        // (a candidate that needs a longer history than the early origins had is compared on
        // the later ones, or dropped when that would leave too few).
        validated.sort_by_key(|v| std::cmp::Reverse(v.fitted_windows()));
        let most = validated.first().map_or(0, Validated::fitted_windows);
        let mut common: Vec<usize> = (0..origins.len()).collect();
        let mut kept = Vec::new();
        for v in validated {
            let shared: Vec<usize> = common
                .iter()
                .copied()
                .filter(|&w| v.windows[w].is_some())
                .collect();
            if 2 * shared.len() >= most && !shared.is_empty() {
                common = shared;
                kept.push(v);
            } else {
                let reason = format!(
                    "fitted {} of {} validation windows (the history before the others was too short for it{})",
                    v.fitted_windows(),
                    origins.len(),
                    v.failure.as_ref().map_or(String::new(), |f| format!(": {f}"))
                );
                tracing::warn!(candidate = v.name, %reason, "auto dropped a candidate");
                dropped.push((v.name.to_string(), reason));
            }
        }
        kept.sort_by_key(|v| v.candidate);
        let validated = kept;
        if validated.is_empty() {
            return self.fit_unvalidated(series, seasons, &origins, horizon, dropped, started);
        }
        let errors: Vec<f64> = validated
            .iter()
            .map(|v| mean_error(&v.window_errors, &common, None))
            .collect();
        let weights = weights(combine, &errors);
        // Conformal scores of the combined window forecasts, per lead time, twice: with the
        // final weights (the choice scored on the windows that made it, which flatters a lucky
        // winner), and cross-fitted, each window combined with the weights the *other*
        // windows give (which can mix in a model whose spreads are scaled differently).
        // Intervals take the wider of the two, so neither bias makes them cover too little.
        let window_scores = |w: usize, weights: &[f64]| -> Vec<f64> {
            // Every kept candidate fitted the common windows.
            let (mut means, mut spreads, mut kept_weights) = (Vec::new(), Vec::new(), Vec::new());
            for (v, weight) in validated.iter().zip(weights) {
                if let Some((m, s)) = &v.windows[w] {
                    means.push(m.as_slice());
                    spreads.push(s.as_slice());
                    kept_weights.push(*weight);
                }
            }
            let mean = self::combine(combine, &kept_weights, &means);
            let spread = self::combine(combine, &kept_weights, &spreads);
            let actual = &series.values()[origins[w]..origins[w] + length];
            let sigma_of = |half: f64| half / normal_quantile(SPREAD_LEVEL);
            actual
                .iter()
                .zip(&mean)
                .zip(&spread)
                .map(|((a, f), s)| {
                    if a.is_finite() && f.is_finite() {
                        (a - f).abs() / sigma_of(*s).max(f64::MIN_POSITIVE)
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let mut lead_scores = vec![Vec::new(); length];
        let mut lead_cross_scores = vec![Vec::new(); length];
        for &w in &common {
            for (lead, s) in window_scores(w, &weights).into_iter().enumerate() {
                if s.is_finite() {
                    lead_scores[lead].push(s);
                }
            }
            if common.len() > 1 {
                let held_out: Vec<f64> = validated
                    .iter()
                    .map(|v| mean_error(&v.window_errors, &common, Some(w)))
                    .collect();
                let held_out = self::weights(combine, &held_out);
                for (lead, s) in window_scores(w, &held_out).into_iter().enumerate() {
                    if s.is_finite() {
                        lead_cross_scores[lead].push(s);
                    }
                }
            }
        }
        let pooled = |leads: &mut Vec<Vec<f64>>| {
            let mut all: Vec<f64> = leads.iter().flatten().copied().collect();
            all.sort_by(f64::total_cmp);
            for l in leads.iter_mut() {
                l.sort_by(f64::total_cmp);
            }
            all
        };
        let scores = pooled(&mut lead_scores);
        let cross_scores = pooled(&mut lead_cross_scores);
        // The final fits, best first; a candidate that validated but cannot fit the whole
        // history gives its weight to the others.
        let mut order: Vec<usize> = (0..validated.len()).collect();
        order.sort_by(|&a, &b| errors[a].total_cmp(&errors[b]));
        let mut weights = weights;
        let mut members = Vec::new();
        let mut fitted = Vec::new();
        for &i in &order {
            let v = &validated[i];
            let wanted = match combine {
                Combine::Best => fitted.is_empty(),
                _ => weights[i] > 0.0,
            };
            if !wanted {
                weights[i] = 0.0;
                continue;
            }
            fits += 1;
            match self.candidates[v.candidate].fit(series, seasons) {
                Ok(f) => {
                    weights[i] = if combine == Combine::Best {
                        1.0
                    } else {
                        weights[i]
                    };
                    members.push(Member {
                        model: v.name.to_string(),
                        weight: weights[i],
                        error: errors[i],
                        state: f.to_state().map_err(|e| ModelError::failed(v.name, e))?,
                    });
                    fitted.push(f);
                }
                Err(e) => {
                    let reason = chain(&e);
                    tracing::warn!(candidate = v.name, %reason, "auto: a validated candidate could not fit the whole history");
                    weights[i] = 0.0;
                    dropped.push((v.name.to_string(), reason));
                }
            }
        }
        if fitted.is_empty() {
            return self.fit_unvalidated(series, seasons, &origins, horizon, dropped, started);
        }
        let total: f64 = members.iter().map(|m| m.weight).sum();
        if total > 0.0 && combine != Combine::Median {
            for m in &mut members {
                m.weight /= total;
            }
        }
        // Keep every validated candidate's error for the description.
        for (i, v) in validated.iter().enumerate() {
            if !members.iter().any(|m| m.model == v.name) {
                members.push(Member {
                    model: v.name.to_string(),
                    weight: 0.0,
                    error: errors[i],
                    state: serde_json::Value::Null,
                });
            }
        }
        let validation = Validation {
            windows: common.len(),
            horizon,
            stride,
            fits,
            updates,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            windows = validation.windows,
            horizon,
            stride,
            fits,
            updates,
            seconds = validation.seconds,
            "auto validated its candidates"
        );
        let (dropped, dropped_reasons) = dropped.into_iter().unzip();
        let state = AutoState {
            combine,
            members,
            scores,
            cross_scores,
            lead_scores,
            lead_cross_scores,
            dropped,
            dropped_reasons,
            validation: Some(validation),
            unvalidated: None,
        };
        Ok(Box::new(FittedAuto { state, fitted }))
    }

    /// With no window to validate on (a history too short for one, or no candidate that
    /// fitted one), the first candidate, in the listed order, that fits the whole history;
    /// its own intervals are kept. Fails only when none fits.
    fn fit_unvalidated(
        &self,
        series: &Series,
        seasons: &[usize],
        origins: &[usize],
        horizon: usize,
        mut dropped: Vec<(String, String)>,
        started: Instant,
    ) -> Result<Box<dyn Fitted>, ModelError> {
        let why = if origins.is_empty() {
            format!(
                "the history ({} points) is too short for a validation window of {horizon} steps in its second half",
                series.len()
            )
        } else {
            "no candidate fitted a validation window".to_string()
        };
        // When every candidate is too short, so is `auto`: the least any candidate needs.
        let mut shortest_need: Option<(usize, usize)> = None;
        let mut all_too_short = true;
        for (tried, model) in self.candidates.iter().enumerate() {
            let fits = tried + 1;
            match model.fit(series, seasons) {
                Ok(f) => {
                    tracing::warn!(candidate = model.name(), reason = %why, "auto chose without validation");
                    let members = vec![Member {
                        model: model.name().to_string(),
                        weight: 1.0,
                        error: f64::NAN,
                        state: f
                            .to_state()
                            .map_err(|e| ModelError::failed(model.name(), e))?,
                    }];
                    dropped.retain(|(name, _)| name != model.name());
                    let (dropped, dropped_reasons) = dropped.into_iter().unzip();
                    let state = AutoState {
                        combine: Combine::Best,
                        members,
                        scores: Vec::new(),
                        cross_scores: Vec::new(),
                        lead_scores: Vec::new(),
                        lead_cross_scores: Vec::new(),
                        dropped,
                        dropped_reasons,
                        validation: Some(Validation {
                            windows: 0,
                            horizon,
                            stride: 0,
                            fits,
                            updates: 0,
                            seconds: started.elapsed().as_secs_f64(),
                        }),
                        unvalidated: Some(why),
                    };
                    return Ok(Box::new(FittedAuto {
                        state,
                        fitted: vec![f],
                    }));
                }
                Err(e) => {
                    match &e {
                        ModelError::TooShort { needed, got, .. } => {
                            if shortest_need.is_none_or(|(n, _)| *needed < n) {
                                shortest_need = Some((*needed, *got));
                            }
                        }
                        _ => all_too_short = false,
                    }
                    let reason = chain(&e);
                    if !dropped.iter().any(|(name, _)| name == model.name()) {
                        dropped.push((model.name().to_string(), reason));
                    }
                }
            }
        }
        if let (true, Some((needed, got))) = (all_too_short, shortest_need) {
            return Err(ModelError::TooShort {
                model: "auto".into(),
                needed,
                got,
            });
        }
        let reasons: Vec<String> = dropped
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        Err(ModelError::failed(
            "auto",
            format!(
                "no candidate could be fitted ({why}; {})",
                reasons.join("; ")
            ),
        ))
    }
}

/// Backtests `model` on the windows starting at `origins`; a window it fails on is kept as
/// failed (`None`), with the first failure's reason.
fn validate(
    candidate: usize,
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
    origins: &[usize],
    steps: Steps,
    period: usize,
) -> Validated {
    let mut errors = Vec::new();
    let mut windows = Vec::new();
    let mut failure = None;
    let (mut fits, mut updates) = (0, 0);
    // The first fit that succeeds is carried forward to the later origins where the model
    // can update it without refitting (`Fitted::extend`); the others are refitted each time.
    // The origins run earliest first, so an update only ever adds data after its fit.
    let mut earliest: Option<Box<dyn Fitted>> = None;
    for &origin in origins {
        let history = series.slice(0..origin);
        let updated = match earliest.as_ref().and_then(|f| f.extend(&history)) {
            Some(Ok(updated)) => {
                updates += 1;
                Ok(updated)
            }
            // A failed update falls back to a refit, so it costs a window nothing.
            Some(Err(_)) | None => {
                fits += 1;
                model.fit(&history, seasons)
            }
        };
        let forecast = updated
            .and_then(|f| {
                let prediction = f.predict(steps.length, &[SPREAD_LEVEL]);
                if prediction.is_ok() && earliest.is_none() {
                    earliest = Some(f);
                }
                prediction
            })
            .and_then(|p| {
                let interval = p
                    .intervals
                    .first()
                    .ok_or(ModelError::InvalidLevel(SPREAD_LEVEL))?;
                let half: Vec<f64> = interval
                    .lower
                    .iter()
                    .zip(&interval.upper)
                    .map(|(l, u)| (u - l) / 2.0)
                    .collect();
                if p.mean.iter().chain(&half).all(|v| v.is_finite()) {
                    Ok((p.mean, half))
                } else {
                    Err(ModelError::failed(
                        model.name(),
                        "a validation forecast is not finite",
                    ))
                }
            });
        match forecast {
            Ok((mean, half)) => {
                let actual = &series.values()[origin..origin + steps.scored];
                let (mut sum, mut count) = (0.0, 0);
                for (a, f) in actual.iter().zip(&mean) {
                    if a.is_finite() {
                        sum += (a - f).abs();
                        count += 1;
                    }
                }
                let observed: Vec<f64> = history
                    .values()
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                let scale = crate::forecast::metrics::seasonal_scale(&observed, period);
                errors.push(if count > 0 && scale > 0.0 && scale.is_finite() {
                    sum / count as f64 / scale
                } else {
                    f64::NAN
                });
                windows.push(Some((mean, half)));
            }
            Err(e) => {
                failure.get_or_insert_with(|| chain(&e));
                errors.push(f64::NAN);
                windows.push(None);
            }
        }
    }
    Validated {
        candidate,
        name: model.name(),
        window_errors: errors,
        windows,
        failure,
        fits,
        updates,
    }
}

/// The mean of the scored errors of windows `among`, leaving out window `except`; infinite
/// when none is left.
fn mean_error(errors: &[f64], among: &[usize], except: Option<usize>) -> f64 {
    let kept: Vec<f64> = among
        .iter()
        .filter(|&&w| Some(w) != except)
        .filter_map(|&w| errors.get(w).copied())
        .filter(|e| e.is_finite())
        .collect();
    if kept.is_empty() {
        f64::INFINITY
    } else {
        kept.iter().sum::<f64>() / kept.len() as f64
    }
}

/// Each candidate's weight in the combination, from its validation `errors`.
fn weights(how: Combine, errors: &[f64]) -> Vec<f64> {
    let n = errors.len();
    match how {
        Combine::Best => {
            let best = errors
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            (0..n).map(|i| if i == best { 1.0 } else { 0.0 }).collect()
        }
        Combine::Top(k) => {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| errors[a].total_cmp(&errors[b]));
            let k = k.min(n);
            let mut w = vec![0.0; n];
            for &i in &order[..k] {
                w[i] = 1.0 / k as f64;
            }
            w
        }
        Combine::Median => vec![1.0; n],
        Combine::InverseError => {
            // The lowest error; a perfect candidate (error 0) takes all the weight.
            let best = errors
                .iter()
                .copied()
                .filter(|e| e.is_finite() && *e >= 0.0)
                .fold(f64::INFINITY, f64::min);
            let inverse: Vec<f64> = errors
                .iter()
                .map(|&e| {
                    if !(e.is_finite() && e <= INVERSE_ERROR_BAND * best) {
                        0.0
                    } else if best == 0.0 {
                        1.0
                    } else {
                        1.0 / e
                    }
                })
                .collect();
            let total: f64 = inverse.iter().sum();
            if total > 0.0 {
                inverse.iter().map(|w| w / total).collect()
            } else {
                vec![1.0 / n as f64; n]
            }
        }
    }
}

/// Combines per-step `paths` (one per candidate, with `weights`).
fn combine(how: Combine, weights: &[f64], paths: &[&[f64]]) -> Vec<f64> {
    let steps = paths.iter().map(|p| p.len()).min().unwrap_or(0);
    (0..steps)
        .map(|i| match how {
            Combine::Median => {
                let mut v: Vec<f64> = paths
                    .iter()
                    .zip(weights)
                    .filter(|(_, w)| **w > 0.0)
                    .map(|(p, _)| p[i])
                    .collect();
                v.sort_by(f64::total_cmp);
                let k = v.len();
                if k % 2 == 1 {
                    v[k / 2]
                } else {
                    0.5 * (v[k / 2 - 1] + v[k / 2])
                }
            }
            Combine::Best | Combine::Top(_) | Combine::InverseError => paths
                .iter()
                .zip(weights)
                .filter(|(_, w)| **w > 0.0)
                .map(|(p, w)| w * p[i])
                .sum(),
        })
        .collect()
}

fn slices(paths: &[Vec<f64>]) -> Vec<&[f64]> {
    paths.iter().map(Vec::as_slice).collect()
}

/// The `q`-quantile (0–1) of sorted `scores` with the split-conformal correction
/// `⌈(n + 1)q⌉ / n`; the largest score when that exceeds one.
fn conformal_quantile(scores: &[f64], q: f64) -> f64 {
    let n = scores.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = ((n as f64 + 1.0) * q).ceil() as usize;
    scores[rank.clamp(1, n) - 1]
}

/// Scores pooled for one lead's quantile: at least this many, from the nearest leads.
const MIN_LEAD_SCORES: usize = 40;

/// The calibrated multiplier of σ at `level` (percent) for lead `lead` (0-based) from
/// `by_lead` (sorted scores per lead): the scores of that lead and of its nearest
/// neighbours, widened until at least [`MIN_LEAD_SCORES`] are pooled or every lead is. When
/// the pool is too small for a conformal quantile at `level` (fewer than `1 / (1 − q) − 1`
/// scores), the normal quantile times the pool's root mean square score (the spread
/// calibrated, the shape assumed normal). `NaN` when there are no scores.
fn lead_quantile(by_lead: &[Vec<f64>], lead: usize, level: f64) -> f64 {
    if by_lead.is_empty() {
        return f64::NAN;
    }
    let lead = lead.min(by_lead.len() - 1);
    let (mut lo, mut hi) = (lead, lead);
    let count = |lo: usize, hi: usize| by_lead[lo..=hi].iter().map(Vec::len).sum::<usize>();
    while count(lo, hi) < MIN_LEAD_SCORES && (lo > 0 || hi + 1 < by_lead.len()) {
        lo = lo.saturating_sub(1);
        hi = (hi + 1).min(by_lead.len() - 1);
    }
    let mut pool: Vec<f64> = by_lead[lo..=hi].iter().flatten().copied().collect();
    if pool.is_empty() {
        return f64::NAN;
    }
    pool.sort_by(f64::total_cmp);
    let q = level / 100.0;
    let needed = (q / (1.0 - q)).ceil() as usize;
    if pool.len() >= needed {
        conformal_quantile(&pool, q)
    } else {
        let rms = (pool.iter().map(|s| s * s).sum::<f64>() / pool.len() as f64).sqrt();
        normal_quantile(level) * rms
    }
}

impl FittedAuto {
    /// The σ multipliers at `level` for `horizon` steps: calibrated per lead time where the
    /// fit kept scores per lead, on the pooled scores in files from before, and the
    /// members' own (normal) width when the choice was not validated. Leads beyond the
    /// validation windows take the last window step's.
    fn quantiles(&self, level: f64, horizon: usize) -> Vec<f64> {
        let own = normal_quantile(level);
        let finite_or_own = |q: f64| if q.is_finite() { q } else { own };
        if self.state.lead_scores.iter().any(|l| !l.is_empty()) {
            (0..horizon)
                .map(|lead| {
                    let q = lead_quantile(&self.state.lead_scores, lead, level);
                    let cross = lead_quantile(&self.state.lead_cross_scores, lead, level);
                    finite_or_own(if cross.is_finite() { q.max(cross) } else { q })
                })
                .collect()
        } else {
            let q = conformal_quantile(&self.state.scores, level / 100.0)
                .max(conformal_quantile(&self.state.cross_scores, level / 100.0));
            vec![finite_or_own(q); horizon]
        }
    }

    fn weights(&self) -> Vec<f64> {
        self.state
            .members
            .iter()
            .filter(|m| m.weight > 0.0)
            .map(|m| m.weight)
            .collect()
    }
}

impl Fitted for FittedAuto {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let weights = self.weights();
        let mut means = Vec::new();
        let mut spreads = Vec::new();
        for f in &self.fitted {
            let p = f.predict(horizon, &[SPREAD_LEVEL])?;
            let i = p
                .intervals
                .first()
                .ok_or(ModelError::InvalidLevel(SPREAD_LEVEL))?;
            spreads.push(
                i.lower
                    .iter()
                    .zip(&i.upper)
                    .map(|(l, u)| (u - l) / 2.0)
                    .collect::<Vec<f64>>(),
            );
            means.push(p.mean);
        }
        let mean = combine(self.state.combine, &weights, &slices(&means));
        let spread = combine(self.state.combine, &weights, &slices(&spreads));
        let sigma: Vec<f64> = spread
            .iter()
            .map(|s| s / normal_quantile(SPREAD_LEVEL))
            .collect();
        let intervals = levels
            .iter()
            .map(|&level| {
                let q = self.quantiles(level, mean.len());
                let (lower, upper) = mean
                    .iter()
                    .zip(&sigma)
                    .zip(&q)
                    .map(|((m, s), q)| (m - q * s, m + q * s))
                    .unzip();
                Interval {
                    level,
                    lower,
                    upper,
                }
            })
            .collect();
        Ok(Prediction {
            mean,
            intervals,
            components: Vec::new(),
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        let weights = self.weights();
        let values: Vec<Vec<f64>> = self.fitted.iter().map(|f| f.fitted_values()).collect();
        combine(self.state.combine, &weights, &slices(&values))
    }

    fn describe(&self) -> String {
        let mut ranked: Vec<&Member> = self.state.members.iter().collect();
        ranked.sort_by(|a, b| a.error.total_cmp(&b.error));
        let scores: Vec<String> = ranked
            .iter()
            .map(|m| format!("{} {:.3}", m.model, m.error))
            .collect();
        let chosen = match self.state.combine {
            // One member left (the others failed or were dropped): whatever the rule, chosen.
            _ if self.fitted.len() == 1 => format!(
                "chose {}",
                ranked
                    .iter()
                    .find(|m| m.weight > 0.0)
                    .map_or("-", |m| &m.model)
            ),
            Combine::Best => format!(
                "chose {}",
                ranked
                    .iter()
                    .find(|m| m.weight > 0.0)
                    .map_or("-", |m| &m.model)
            ),
            Combine::Top(k) => format!(
                "mean of the {} best ({})",
                k.min(self.fitted.len()),
                ranked
                    .iter()
                    .filter(|m| m.weight > 0.0)
                    .map(|m| m.model.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Combine::Median => format!("median of {} models", self.fitted.len()),
            Combine::InverseError => format!(
                "inverse-MASE weighted mean of {} models ({})",
                self.fitted.len(),
                ranked
                    .iter()
                    .filter(|m| m.weight > 0.0)
                    .map(|m| format!("{} {:.2}", m.model, m.weight))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let dropped = if self.state.dropped.is_empty() {
            String::new()
        } else {
            let named: Vec<String> = self
                .state
                .dropped
                .iter()
                .enumerate()
                .map(|(i, name)| match self.state.dropped_reasons.get(i) {
                    Some(why) => format!("{name} ({why})"),
                    None => name.clone(),
                })
                .collect();
            format!("; failed validation: {}", named.join(", "))
        };
        if let Some(why) = &self.state.unvalidated {
            let cost = self.state.validation.as_ref().map_or(String::new(), |v| {
                format!(" ({} fits, {:.2} s)", v.fits, v.seconds)
            });
            return format!(
                "auto: {} without validation: {why}; the first candidate that fits, with its own intervals{dropped}{cost}",
                self.state.members.first().map_or("-", |m| &m.model)
            );
        }
        let validation = self.state.validation.as_ref().map_or(String::new(), |v| {
            let updates = if v.updates > 0 {
                format!(", {} updates without refitting", v.updates)
            } else {
                String::new()
            };
            format!(
                "; validated on {} windows of {} steps, {} apart ({} fits{updates}, {:.2} s)",
                v.windows, v.horizon, v.stride, v.fits, v.seconds
            )
        });
        let calibrated = match self.state.lead_scores.len() {
            0 => format!(
                "intervals calibrated on {} window steps",
                self.state.scores.len()
            ),
            leads => format!(
                "intervals calibrated per lead time on {} window steps ({leads} leads)",
                self.state.scores.len()
            ),
        };
        format!(
            "auto: {chosen}; validation MASE {}{validation}{dropped}; {calibrated}",
            scores.join(", "),
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(&self.state)
    }
}

/// Rebuilds a saved `auto` model from its members' own states.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: AutoState = serde_json::from_value(state)?;
    let mut fitted = Vec::new();
    for m in state.members.iter().filter(|m| m.weight > 0.0) {
        let (_, load) = registry::loader(&m.model)
            .ok_or_else(|| Error::custom(format!("unknown member model {:?}", m.model)))?;
        fitted.push(load(m.state.clone())?);
    }
    Ok(Box::new(FittedAuto { state, fitted }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Interval;
    use crate::series::Labels;

    /// Forecasts its history's last value; its updates always fail.
    #[derive(Debug)]
    struct Last;
    struct LastFit(f64);

    impl Model for Last {
        fn name(&self) -> &'static str {
            "last"
        }
        fn fit(&self, series: &Series, _: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
            let last = series.values().last().copied().unwrap_or(0.0);
            Ok(Box::new(LastFit(last)))
        }
    }

    impl Fitted for LastFit {
        fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
            let mean = vec![self.0; horizon];
            let intervals = levels
                .iter()
                .map(|&level| Interval {
                    level,
                    lower: mean.iter().map(|m| m - 1.0).collect(),
                    upper: mean.iter().map(|m| m + 1.0).collect(),
                })
                .collect();
            Ok(Prediction {
                mean,
                intervals,
                components: vec![],
            })
        }
        fn fitted_values(&self) -> Vec<f64> {
            vec![]
        }
        fn describe(&self) -> String {
            "last".into()
        }
        fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
            Ok(serde_json::Value::Null)
        }
        fn extend(&self, _: &Series) -> Option<Result<Box<dyn Fitted>, ModelError>> {
            Some(Err(ModelError::failed("last", "no update")))
        }
    }

    #[test]
    fn a_failed_update_is_refitted_and_the_window_kept() {
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let series = Series::new(Labels::default(), 0, 1000, values).unwrap();
        let v = validate(
            0,
            &Last,
            &series,
            &[],
            &[10, 12, 14],
            Steps {
                scored: 2,
                length: 2,
            },
            1,
        );
        assert_eq!((v.fits, v.updates, v.fitted_windows()), (3, 0, 3));
        assert!(v.failure.is_none());
        // Each window forecasts from its own origin: the last value is origin − 1, the
        // actual values origin and origin + 1, so every MASE is 1.5.
        assert_eq!(v.window_errors, [1.5, 1.5, 1.5]);
    }

    #[test]
    fn conformal_quantile_uses_the_finite_sample_rank() {
        let scores: Vec<f64> = (1..=19).map(f64::from).collect();
        // ⌈20 · 0.9⌉ = 18th smallest.
        assert_eq!(conformal_quantile(&scores, 0.9), 18.0);
        assert_eq!(conformal_quantile(&scores, 0.99), 19.0);
        assert_eq!(conformal_quantile(&scores, 0.01), 1.0);
    }

    #[test]
    fn origins_end_at_the_history_and_stay_in_its_second_half() {
        // 8 windows of 12 steps, 36 apart, the last ending at n.
        let o = validation_origins(1000, 12, 36, 8);
        assert_eq!(o.len(), 8);
        assert_eq!(*o.last().unwrap(), 988);
        assert!(o.windows(2).all(|w| w[1] - w[0] == 36));
        // A short history: only the origins at or after half of it.
        assert_eq!(validation_origins(100, 10, 10, 8), [50, 60, 70, 80, 90]);
        assert_eq!(validation_origins(30, 24, 24, 8), Vec::<usize>::new());
        assert_eq!(validation_origins(5, 24, 1, 8), Vec::<usize>::new());
        assert_eq!(validation_origins(2, 1, 1, 8), [1]);
    }

    #[test]
    fn lead_quantiles_pool_the_nearest_leads_and_fall_back_to_a_calibrated_normal() {
        // Lead 0 has small scores, lead 2 large ones; with 40 scores each, no pooling.
        let lead = |v: f64, n: usize| (1..=n).map(|i| v * i as f64 / n as f64).collect();
        let by_lead: Vec<Vec<f64>> = vec![lead(1.0, 40), lead(2.0, 40), lead(3.0, 40)];
        let q0 = lead_quantile(&by_lead, 0, 95.0);
        let q2 = lead_quantile(&by_lead, 2, 95.0);
        assert_eq!(q0, conformal_quantile(&by_lead[0], 0.95));
        assert!(q2 > 2.0 * q0, "{q0} {q2}");
        // Leads beyond the windows take the last one's.
        assert_eq!(lead_quantile(&by_lead, 9, 95.0), q2);
        // Ten scores per lead: leads are pooled until 40 (all three: 30 < 40).
        let few: Vec<Vec<f64>> = vec![lead(1.0, 10), lead(2.0, 10), lead(3.0, 10)];
        let mut all: Vec<f64> = few.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(lead_quantile(&few, 1, 95.0), conformal_quantile(&all, 0.95));
        // Eight scores in all: too few for a conformal 95% quantile (19 needed), so the
        // normal quantile times their root mean square.
        let eight = vec![vec![1.0; 8]];
        let q = lead_quantile(&eight, 0, 95.0);
        assert!((q - normal_quantile(95.0)).abs() < 1e-12, "{q}");
        // ... but enough for 80% (4 needed).
        assert_eq!(lead_quantile(&eight, 0, 80.0), 1.0);
        assert!(lead_quantile(&[], 0, 95.0).is_nan());
    }

    #[test]
    fn the_default_window_follows_the_step() {
        assert_eq!(default_horizon(60_000, 1440), 60);
        assert_eq!(default_horizon(300_000, 288), 12);
        assert_eq!(default_horizon(1_800_000, 48), 8);
        assert_eq!(default_horizon(3_600_000, 24), 48);
        assert_eq!(default_horizon(86_400_000, 7), 14);
    }

    #[test]
    fn parses_every_combination() {
        assert_eq!("best".parse(), Ok(Combine::Best));
        assert_eq!("top3".parse(), Ok(Combine::Top(3)));
        assert_eq!("median".parse(), Ok(Combine::Median));
        assert_eq!("inverse-error".parse(), Ok(Combine::InverseError));
        for bad in ["top0", "top", "mean", ""] {
            assert!(bad.parse::<Combine>().is_err(), "{bad}");
        }
    }

    #[test]
    fn top_k_weights_the_k_lowest_errors_equally() {
        let errors = [0.9, 0.5, 0.7, f64::INFINITY];
        assert_eq!(weights(Combine::Top(2), &errors), [0.0, 0.5, 0.5, 0.0]);
        assert_eq!(weights(Combine::Best, &errors), [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(weights(Combine::Top(9), &errors), [0.25; 4]);
    }

    #[test]
    fn held_out_errors_leave_one_window_out_and_skip_unscored_ones() {
        let errors = [1.0, f64::NAN, 3.0, 7.0];
        let all = [0, 1, 2];
        assert_eq!(mean_error(&errors, &all, None), 2.0);
        assert_eq!(mean_error(&errors, &all, Some(0)), 3.0);
        assert_eq!(mean_error(&errors, &all, Some(2)), 1.0);
        assert_eq!(mean_error(&errors, &[2, 3], None), 5.0);
        assert_eq!(
            mean_error(&[f64::NAN, 2.0], &[0, 1], Some(1)),
            f64::INFINITY
        );
    }

    #[test]
    fn inverse_error_weights_leave_out_candidates_twice_as_bad_as_the_best() {
        // 1/1 : 1/1.5 among the two within twice the best; 2.5 and the failed one get none.
        let w = weights(Combine::InverseError, &[1.0, 1.5, 2.5, f64::INFINITY]);
        assert!(
            (w[0] - 0.6).abs() < 1e-12 && (w[1] - 0.4).abs() < 1e-12,
            "{w:?}"
        );
        assert_eq!(&w[2..], &[0.0, 0.0]);
        // Exactly twice is kept.
        let w = weights(Combine::InverseError, &[1.0, 2.0]);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-12, "{w:?}");
        // A perfect candidate takes everything; nothing finite: equal weights.
        assert_eq!(weights(Combine::InverseError, &[0.0, 0.5]), [1.0, 0.0]);
        assert_eq!(
            weights(Combine::InverseError, &[f64::NAN, f64::INFINITY]),
            [0.5, 0.5]
        );
    }

    #[test]
    fn combinations() {
        let a = [1.0, 2.0];
        let b = [3.0, 6.0];
        let c = [10.0, 0.0];
        let paths: Vec<&[f64]> = vec![&a, &b, &c];
        assert_eq!(combine(Combine::Median, &[1.0; 3], &paths), [3.0, 2.0]);
        assert_eq!(
            combine(Combine::InverseError, &[0.5, 0.5, 0.0], &paths),
            [2.0, 4.0]
        );
    }
}
