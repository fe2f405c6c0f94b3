//! One model's backtest windows summarised: mean scores over the windows it forecast.

use super::backtest::Window;
use super::Scores;

/// The mean of the finite values, or `None` when there are none: an empty set has no mean,
/// and is shown as such rather than as 0 or NaN.
pub fn mean_finite(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Mean scores of one model over its backtest windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The model.
    pub model: String,
    /// Windows forecast and scored.
    pub windows: usize,
    /// Windows where the model failed.
    pub failed: usize,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Root mean squared error.
    pub rmse: Option<f64>,
    /// Symmetric MAPE, percent.
    pub smape: Option<f64>,
    /// MASE.
    pub mase: Option<f64>,
    /// Per interval level, in the order scored: (level, mean coverage percent).
    pub coverage: Vec<(f64, Option<f64>)>,
}

impl Summary {
    /// Summarises `windows` (every window of one model, on one or many series).
    pub fn of<'a>(model: &str, windows: impl IntoIterator<Item = &'a Window>) -> Self {
        let mut scores: Vec<&Scores> = Vec::new();
        let mut failed = 0;
        for w in windows {
            match &w.outcome {
                Ok(s) => scores.push(s),
                Err(_) => failed += 1,
            }
        }
        let mean = |f: &dyn Fn(&Scores) -> f64| mean_finite(scores.iter().map(|s| f(s)));
        let levels: Vec<f64> = scores
            .first()
            .map(|s| s.intervals.iter().map(|i| i.level).collect())
            .unwrap_or_default();
        let coverage = levels
            .iter()
            .enumerate()
            .map(|(i, &level)| {
                (
                    level,
                    mean(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.coverage)),
                )
            })
            .collect();
        Self {
            model: model.to_string(),
            windows: scores.len(),
            failed,
            mae: mean(&|s| s.mae),
            rmse: mean(&|s| s.rmse),
            smape: mean(&|s| s.smape),
            mase: mean(&|s| s.mase),
            coverage,
        }
    }

    /// The mean coverage at `level` percent, if that level was scored and any window was.
    pub fn coverage_at(&self, level: f64) -> Option<f64> {
        self.coverage
            .iter()
            .find(|(l, _)| (l - level).abs() < 1e-9)
            .and_then(|(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::IntervalScore;
    use crate::model::ModelError;

    fn window(outcome: Result<Scores, ModelError>) -> Window {
        Window {
            index: 0,
            origin: 0,
            outcome,
        }
    }

    fn scores(mase: f64, coverage: f64) -> Scores {
        Scores {
            mae: 1.0,
            rmse: 1.0,
            smape: 10.0,
            mase,
            intervals: vec![IntervalScore {
                level: 95.0,
                coverage,
                msis: 1.0,
            }],
        }
    }

    #[test]
    fn means_skip_failed_windows_and_non_finite_scores() {
        let windows = [
            window(Ok(scores(1.0, 100.0))),
            window(Ok(scores(f64::NAN, 90.0))),
            window(Err(ModelError::ZeroHorizon)),
            window(Ok(scores(3.0, 80.0))),
        ];
        let s = Summary::of("ets", &windows);
        assert_eq!((s.windows, s.failed), (3, 1));
        assert_eq!(s.mase, Some(2.0));
        assert_eq!(s.coverage_at(95.0), Some(90.0));
        assert_eq!(s.coverage_at(80.0), None);
    }

    #[test]
    fn an_empty_set_has_no_mean() {
        let s = Summary::of("ets", &[window(Err(ModelError::ZeroHorizon))]);
        assert_eq!((s.windows, s.failed, s.mase), (0, 1, None));
        assert_eq!(mean_finite([f64::NAN]), None);
    }
}
