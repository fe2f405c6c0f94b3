//! Rolling-origin backtests: refit at several origins, forecast, score against what followed.

use polars::prelude::{Column, DataFrame, PolarsError};
use thiserror::Error;

use crate::forecast::format_level;
use crate::model::{self, Floor, Model, ModelError};
use crate::series::{Millis, Series};
use crate::source::table::timestamp_column;

use super::{score, Scores};

/// Where the windows go.
///
/// Window `k` of `windows` has its origin at `n − horizon − (windows − 1 − k) · step_between`:
/// with the default `step_between = horizon` the windows are the last `windows` blocks of
/// `horizon` steps, back to back, ending at the series' end. Each forecast sees only the
/// points before its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Steps forecast per window.
    pub horizon: usize,
    /// Number of windows.
    pub windows: usize,
    /// Steps between consecutive origins.
    pub step_between: usize,
    /// Whether forecasts are floored at zero.
    pub floor: Floor,
}

impl Plan {
    /// `windows` back-to-back blocks of `horizon` steps.
    pub fn back_to_back(horizon: usize, windows: usize) -> Self {
        Self {
            horizon,
            windows,
            step_between: horizon,
            floor: Floor::Auto,
        }
    }

    /// The origin indices (first forecast point of each window) for a series of length `n`,
    /// earliest first.
    pub fn origins(&self, n: usize) -> Result<Vec<usize>, BacktestError> {
        if self.horizon == 0 || self.windows == 0 || self.step_between == 0 {
            return Err(BacktestError::EmptyPlan);
        }
        let span = self.horizon + (self.windows - 1) * self.step_between;
        if n <= span {
            return Err(BacktestError::TooShort {
                len: n,
                needed: span + 1,
            });
        }
        Ok((0..self.windows)
            .map(|k| n - self.horizon - (self.windows - 1 - k) * self.step_between)
            .collect())
    }
}

/// Why a backtest could not run at all.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BacktestError {
    /// Horizon, window count or step between windows is zero.
    #[error("horizon, windows and step between windows must all be at least 1")]
    EmptyPlan,
    /// The windows do not fit in the series with any history left.
    #[error("the series has {len} points; these windows need at least {needed}")]
    TooShort {
        /// Series length.
        len: usize,
        /// Length needed (all windows plus one point of history).
        needed: usize,
    },
}

/// The result of one window: its scores, or why the model failed there.
#[derive(Debug, Clone)]
pub struct Window {
    /// Window number, 0 = earliest.
    pub index: usize,
    /// Timestamp of the first forecast step.
    pub origin: Millis,
    /// Scores, or the model's error for this window.
    pub outcome: Result<Scores, ModelError>,
}

/// Runs `model` over every window of `plan` on `series` (fitted for the plan's horizon,
/// [`crate::model::Model::fit_for`]).
///
/// `seasons` go to the model; `period` scales MASE and MSIS (the in-sample seasonal naive error
/// of each window's own history); `levels` are the interval levels to score.
pub fn run(
    model: &dyn Model,
    series: &Series,
    plan: &Plan,
    seasons: &[usize],
    period: usize,
    levels: &[f64],
) -> Result<Vec<Window>, BacktestError> {
    let origins = plan.origins(series.len())?;
    Ok(origins
        .into_iter()
        .enumerate()
        .map(|(index, origin)| {
            let history = series.slice(0..origin);
            let actual = &series.values()[origin..origin + plan.horizon];
            let window = tracing::info_span!(
                "backtest.window",
                series = %series_name(series),
                model = model.name(),
                window = index as i64,
                origin = %crate::series::format_millis(series.timestamp(origin)),
            );
            let _window = window.enter();
            let fitted = tracing::info_span!(
                "fit",
                model = model.name(),
                series_length = history.len() as i64,
                seasons = ?seasons,
            )
            .in_scope(|| {
                model::fit_floored_for(model, &history, seasons, plan.floor, Some(plan.horizon))
            });
            let outcome = fitted
                .and_then(|fitted| {
                    tracing::info_span!("predict", horizon = plan.horizon as i64, levels = ?levels)
                        .in_scope(|| fitted.predict(plan.horizon, levels))
                })
                .map(|forecast| score(actual, &forecast, history.values(), period));
            Window {
                index,
                origin: series.timestamp(origin),
                outcome,
            }
        })
        .collect())
}

/// One window of one model on one series: a row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The series' name ([`series_name`]).
    pub series: String,
    /// The model's name.
    pub model: String,
    /// The window and its outcome.
    pub window: Window,
}

/// A file's series is named by its stem; a series of a multi-series source by its labels.
pub fn series_name(series: &Series) -> String {
    let labels = series.labels();
    if labels.pairs.is_empty() {
        labels.name.clone()
    } else {
        labels.to_string()
    }
}

/// The results table of the windows that were scored: `series,model,window,origin,mae,rmse,
/// smape,mase`, then `coverage_<L>,msis_<L>` per level.
pub fn results_table(rows: &[Row], levels: &[f64]) -> Result<DataFrame, PolarsError> {
    let ok: Vec<(&Row, &Scores)> = rows
        .iter()
        .filter_map(|r| r.window.outcome.as_ref().ok().map(|s| (r, s)))
        .collect();
    let scores =
        |f: &dyn Fn(&Scores) -> f64| -> Vec<f64> { ok.iter().map(|(_, s)| f(s)).collect() };
    let mut columns = vec![
        Column::new(
            "series".into(),
            ok.iter()
                .map(|(r, _)| r.series.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "model".into(),
            ok.iter().map(|(r, _)| r.model.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "window".into(),
            ok.iter()
                .map(|(r, _)| r.window.index as u32)
                .collect::<Vec<_>>(),
        ),
        timestamp_column("origin", ok.iter().map(|(r, _)| r.window.origin).collect())?,
        Column::new("mae".into(), scores(&|s| s.mae)),
        Column::new("rmse".into(), scores(&|s| s.rmse)),
        Column::new("smape".into(), scores(&|s| s.smape)),
        Column::new("mase".into(), scores(&|s| s.mase)),
    ];
    for (i, level) in levels.iter().enumerate() {
        let l = format_level(*level);
        columns.push(Column::new(
            format!("coverage_{l}").into(),
            scores(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.coverage)),
        ));
        columns.push(Column::new(
            format!("msis_{l}").into(),
            scores(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.msis)),
        ));
    }
    DataFrame::new(ok.len(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    #[test]
    fn default_windows_are_the_last_blocks() {
        assert_eq!(
            Plan::back_to_back(10, 3).origins(100).unwrap(),
            [70, 80, 90]
        );
        let spaced = Plan {
            horizon: 10,
            windows: 3,
            step_between: 5,
            floor: Floor::Auto,
        };
        assert_eq!(spaced.origins(100).unwrap(), [80, 85, 90]);
        assert_eq!(
            Plan::back_to_back(10, 10).origins(100),
            Err(BacktestError::TooShort {
                len: 100,
                needed: 101
            })
        );
    }

    #[test]
    fn windows_see_only_their_history() {
        // A series whose last block is wild: the earlier windows' scores must not change when
        // it changes.
        let base: Vec<f64> = (0..120)
            .map(|i| (i % 12) as f64 + (i * 7 % 5) as f64 * 0.1)
            .collect();
        let mut wild = base.clone();
        for v in &mut wild[108..] {
            *v = 1e6;
        }
        let m = model::by_name("seasonal-naive").unwrap();
        let plan = Plan::back_to_back(12, 3);
        let run_on = |v: Vec<f64>| {
            let s = Series::new(Labels::default(), 0, 1000, v).unwrap();
            run(m.as_ref(), &s, &plan, &[12], 12, &[80.0]).unwrap()
        };
        let (a, b) = (run_on(base), run_on(wild));
        let scores = |w: &[Window]| -> Vec<Option<Scores>> {
            w.iter().map(|w| w.outcome.as_ref().ok().cloned()).collect()
        };
        assert_eq!(scores(&a[..2]), scores(&b[..2]));
        assert_ne!(scores(&a[2..]), scores(&b[2..]));
        assert!(a[0].outcome.as_ref().unwrap().mase.is_finite());
    }
}
