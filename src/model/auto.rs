//! `auto`: per series, backtest the candidate models on the last windows of its own history,
//! then pick the best or combine them, with intervals recalibrated on those windows.
//!
//! - **Validation.** The last `windows` blocks of `horizon` steps of the history are forecast,
//!   each from the history before it, by every candidate; each candidate's error is its mean
//!   MASE over the windows (scaled by the in-sample seasonal naive error of the first season).
//!   Candidates that fail on a window are dropped for the series.
//! - **Choice** ([`Combine`]): the candidate with the lowest error, the mean of the `k` best,
//!   the median of all candidates' forecasts, or their mean weighted by inverse error. The
//!   combination is applied the same way to the window forecasts, so that the intervals are
//!   calibrated on the forecast actually made.
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
//! - `lstm` takes part where a bundled network was trained on the series' step (hourly and
//!   30-minute data); elsewhere it is dropped like any candidate that cannot fit.
//!
//! Saving stores each kept candidate's own state with its weight, and the calibration.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

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
    /// The mean weighted by `1 / MASE`.
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
    /// Validation windows.
    pub windows: usize,
    /// Steps per validation window; `None`: two of the first season (two days for hourly
    /// data), at least 8.
    pub horizon: Option<usize>,
    /// How the candidates are combined.
    pub combine: Combine,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            candidates: ["ets", "mstl", "theta", "arima", "prophet", "lstm"]
                .into_iter()
                .map(ModelSpec::named)
                .collect(),
            windows: 2,
            horizon: None,
            combine: Combine::Best,
        }
    }
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
    /// Mean MASE over the windows.
    error: f64,
    /// MASE per window (`NaN` where a window could not be scored).
    window_errors: Vec<f64>,
    /// Window forecasts: mean and the spread level's half-widths per step.
    windows: Vec<(Vec<f64>, Vec<f64>)>,
}

#[derive(Serialize, Deserialize)]
struct Member {
    model: String,
    weight: f64,
    error: f64,
    state: serde_json::Value,
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
    /// Candidates that could not be validated.
    dropped: Vec<String>,
    /// Why each of `dropped` could not be (empty in files from before it was kept).
    #[serde(default)]
    dropped_reasons: Vec<String>,
}

struct FittedAuto {
    state: AutoState,
    fitted: Vec<Box<dyn Fitted>>,
}

impl Model for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let period = seasons.first().copied().unwrap_or(1);
        let Settings {
            windows, combine, ..
        } = self.settings;
        let horizon = self.settings.horizon.unwrap_or((2 * period).max(8));
        let n = series.len();
        let needed = (windows + 2) * horizon;
        if windows == 0 || n < needed {
            return Err(ModelError::TooShort {
                model: "auto".into(),
                needed,
                got: n,
            });
        }
        let origins: Vec<usize> = (0..windows).map(|w| n - (windows - w) * horizon).collect();
        let mut validated = Vec::new();
        let mut dropped = Vec::new();
        for (candidate, model) in self.candidates.iter().enumerate() {
            match validate(
                candidate,
                model.as_ref(),
                series,
                seasons,
                &origins,
                horizon,
                period,
            ) {
                Ok(v) => validated.push(v),
                Err(e) => {
                    let reason = chain(&e);
                    tracing::warn!(candidate = model.name(), %reason, "auto dropped a candidate");
                    dropped.push((model.name().to_string(), reason));
                }
            }
        }
        if validated.is_empty() {
            let reasons: Vec<String> = dropped
                .iter()
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            return Err(ModelError::failed(
                "auto",
                format!("no candidate could be validated ({})", reasons.join("; ")),
            ));
        }
        let errors: Vec<f64> = validated.iter().map(|v| v.error).collect();
        let weights = weights(combine, &errors);
        // Conformal scores of the combined window forecasts, twice: with the final weights
        // (the choice scored on the windows that made it, which flatters a lucky winner), and
        // cross-fitted, each window combined with the weights the *other* windows give (which
        // can mix in a model whose spreads are scaled differently). Intervals take the wider
        // of the two, so neither bias makes them cover too little.
        let window_scores = |w: usize, weights: &[f64]| -> Vec<f64> {
            let means: Vec<&[f64]> = validated
                .iter()
                .map(|v| v.windows[w].0.as_slice())
                .collect();
            let spreads: Vec<&[f64]> = validated
                .iter()
                .map(|v| v.windows[w].1.as_slice())
                .collect();
            let mean = self::combine(combine, weights, &means);
            let spread = self::combine(combine, weights, &spreads);
            let actual = &series.values()[origins[w]..origins[w] + horizon];
            let sigma_of = |half: f64| half / normal_quantile(SPREAD_LEVEL);
            actual
                .iter()
                .zip(&mean)
                .zip(&spread)
                .filter(|((a, f), _)| a.is_finite() && f.is_finite())
                .map(|((a, f), s)| (a - f).abs() / sigma_of(*s).max(f64::MIN_POSITIVE))
                .collect()
        };
        let mut scores = Vec::new();
        let mut cross_scores = Vec::new();
        for w in 0..origins.len() {
            scores.extend(window_scores(w, &weights));
            if windows > 1 {
                let held_out: Vec<f64> = validated
                    .iter()
                    .map(|v| mean_error(&v.window_errors, Some(w)))
                    .collect();
                cross_scores.extend(window_scores(w, &self::weights(combine, &held_out)));
            }
        }
        scores.sort_by(f64::total_cmp);
        cross_scores.sort_by(f64::total_cmp);
        let mut members = Vec::new();
        let mut fitted = Vec::new();
        for (v, w) in validated.iter().zip(&weights) {
            if *w == 0.0 {
                continue;
            }
            let f = self.candidates[v.candidate].fit(series, seasons)?;
            members.push(Member {
                model: v.name.to_string(),
                weight: *w,
                error: v.error,
                state: f.to_state().map_err(|e| ModelError::failed(v.name, e))?,
            });
            fitted.push(f);
        }
        let (dropped, dropped_reasons) = dropped.into_iter().unzip();
        let mut state = AutoState {
            combine,
            members,
            scores,
            cross_scores,
            dropped,
            dropped_reasons,
        };
        // Keep every validated candidate's error for the description.
        for v in &validated {
            if !state.members.iter().any(|m| m.model == v.name) {
                state.members.push(Member {
                    model: v.name.to_string(),
                    weight: 0.0,
                    error: v.error,
                    state: serde_json::Value::Null,
                });
            }
        }
        Ok(Box::new(FittedAuto { state, fitted }))
    }
}

/// Backtests `model` on the windows starting at `origins`; the first failure is the error.
fn validate(
    candidate: usize,
    model: &dyn Model,
    series: &Series,
    seasons: &[usize],
    origins: &[usize],
    horizon: usize,
    period: usize,
) -> Result<Validated, ModelError> {
    let mut errors = Vec::new();
    let mut windows = Vec::new();
    for &origin in origins {
        let history = series.slice(0..origin);
        let p = model
            .fit(&history, seasons)
            .and_then(|f| f.predict(horizon, &[SPREAD_LEVEL]))?;
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
        let actual = &series.values()[origin..origin + horizon];
        let (mut sum, mut count) = (0.0, 0);
        for (a, f) in actual.iter().zip(&p.mean) {
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
        let error = if count > 0 && scale > 0.0 && scale.is_finite() {
            sum / count as f64 / scale
        } else {
            f64::NAN
        };
        errors.push(error);
        if !p.mean.iter().all(|v| v.is_finite()) {
            return Err(ModelError::failed(
                model.name(),
                "a validation forecast is not finite",
            ));
        }
        windows.push((p.mean, half));
    }
    Ok(Validated {
        candidate,
        name: model.name(),
        error: mean_error(&errors, None),
        window_errors: errors,
        windows,
    })
}

/// The mean of the scored window errors, leaving out window `except`; infinite when none
/// is left.
fn mean_error(errors: &[f64], except: Option<usize>) -> f64 {
    let kept: Vec<f64> = errors
        .iter()
        .enumerate()
        .filter(|(w, e)| Some(*w) != except && e.is_finite())
        .map(|(_, e)| *e)
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
            let inverse: Vec<f64> = errors
                .iter()
                .map(|e| {
                    if e.is_finite() && *e > 0.0 {
                        1.0 / e
                    } else {
                        0.0
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

impl FittedAuto {
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
                let q = conformal_quantile(&self.state.scores, level / 100.0)
                    .max(conformal_quantile(&self.state.cross_scores, level / 100.0));
                let (lower, upper) = mean
                    .iter()
                    .zip(&sigma)
                    .map(|(m, s)| (m - q * s, m + q * s))
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
            Combine::Best => format!("chose {}", ranked.first().map_or("-", |m| &m.model)),
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
            Combine::InverseError => {
                format!("inverse-MASE weighted mean of {} models", self.fitted.len())
            }
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
        format!(
            "auto: {chosen}; validation MASE {}{dropped}; intervals calibrated on {} window steps",
            scores.join(", "),
            self.state.scores.len()
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

    #[test]
    fn conformal_quantile_uses_the_finite_sample_rank() {
        let scores: Vec<f64> = (1..=19).map(f64::from).collect();
        // ⌈20 · 0.9⌉ = 18th smallest.
        assert_eq!(conformal_quantile(&scores, 0.9), 18.0);
        assert_eq!(conformal_quantile(&scores, 0.99), 19.0);
        assert_eq!(conformal_quantile(&scores, 0.01), 1.0);
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
        let errors = [1.0, f64::NAN, 3.0];
        assert_eq!(mean_error(&errors, None), 2.0);
        assert_eq!(mean_error(&errors, Some(0)), 3.0);
        assert_eq!(mean_error(&errors, Some(2)), 1.0);
        assert_eq!(mean_error(&[f64::NAN, 2.0], Some(1)), f64::INFINITY);
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
