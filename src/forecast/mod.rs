//! What a model predicts: a mean path, prediction intervals by level, and components; and
//! how far a forecast was from what happened ([`metrics`]). Plain data: no I/O.

pub mod metrics;

use serde::{Deserialize, Serialize};

use crate::series::Millis;

/// A central prediction interval at one coverage level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Nominal coverage in percent, e.g. `95.0`.
    pub level: f64,
    /// Lower bound per step.
    pub lower: Vec<f64>,
    /// Upper bound per step.
    pub upper: Vec<f64>,
}

/// An additive part of the forecast (trend, a seasonality, holidays), where a model has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Name, e.g. `trend` or `season_24`.
    pub name: String,
    /// Contribution per step.
    pub values: Vec<f64>,
}

/// What a fitted model predicts, before it is placed on a time grid.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prediction {
    /// Point forecast per step.
    pub mean: Vec<f64>,
    /// Intervals, in the order the levels were asked for.
    pub intervals: Vec<Interval>,
    /// Components, possibly none.
    pub components: Vec<Component>,
}

impl Prediction {
    /// Places the prediction on the grid `start + i * step`.
    pub fn on_grid(self, start: Millis, step: Millis) -> Forecast {
        Forecast {
            start,
            step,
            mean: self.mean,
            intervals: self.intervals,
            components: self.components,
        }
    }
}

/// An `h`-step forecast on the series' grid, starting one step after its last point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Timestamp of the first forecast step.
    pub start: Millis,
    /// Step, ms.
    pub step: Millis,
    /// Point forecast per step.
    pub mean: Vec<f64>,
    /// Intervals, in the order the levels were asked for.
    pub intervals: Vec<Interval>,
    /// Components, possibly none.
    pub components: Vec<Component>,
}

impl Forecast {
    /// Number of steps.
    pub fn horizon(&self) -> usize {
        self.mean.len()
    }

    /// Timestamps of the forecast steps.
    pub fn timestamps(&self) -> impl Iterator<Item = Millis> + '_ {
        (0..self.horizon()).map(|i| self.start + i as Millis * self.step)
    }

    /// The interval at `level` percent, if it was predicted.
    pub fn interval(&self, level: f64) -> Option<&Interval> {
        self.intervals
            .iter()
            .find(|i| (i.level - level).abs() < 1e-9)
    }

    /// The forecast's `q`-quantile path: the mean for `q = 0.5`, otherwise the upper (q > ½)
    /// or lower (q < ½) bound of the central interval at level `|2q − 1|`, which must have
    /// been predicted (see [`level_for_quantile`]).
    pub fn quantile(&self, q: f64) -> Option<&[f64]> {
        let level = level_for_quantile(q)?;
        if level == 0.0 {
            return Some(&self.mean);
        }
        let interval = self
            .intervals
            .iter()
            .find(|i| (i.level - level).abs() < 1e-6)?;
        Some(if q > 0.5 {
            &interval.upper
        } else {
            &interval.lower
        })
    }

    /// The forecast corrected by a newer observation, without refitting: `observed` at time
    /// `at` (a forecast step) missed the forecast by `e`, and the steps after `at` move by
    /// `ρ^j·e` (`j` steps after `at`), mean and bounds alike. With `ρ` the lag-one
    /// autocorrelation of the model's errors this is the best linear use of that miss; `ρ = 0`
    /// leaves the forecast as it was. Steps at or before `at` are dropped.
    pub fn anchored(&self, at: Millis, observed: f64, rho: f64) -> Forecast {
        self.anchored_within(at, observed, rho, usize::MAX)
    }

    /// [`Forecast::anchored`], keeping at most the `steps` steps after `at`: what a caller
    /// that looks no further needs, at a cost that does not grow with the horizon.
    pub fn anchored_within(&self, at: Millis, observed: f64, rho: f64, steps: usize) -> Forecast {
        let Some(i) = self.position(at) else {
            return self.clone();
        };
        let miss = observed - self.mean[i];
        let keep = i + 1;
        let end = keep.saturating_add(steps).min(self.horizon());
        let shift = |v: &[f64]| -> Vec<f64> {
            v[keep..end]
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    if miss.is_finite() {
                        x + rho.powi(j as i32 + 1) * miss
                    } else {
                        *x
                    }
                })
                .collect()
        };
        Forecast {
            start: self.start + keep as Millis * self.step,
            step: self.step,
            mean: shift(&self.mean),
            intervals: self
                .intervals
                .iter()
                .map(|iv| Interval {
                    level: iv.level,
                    lower: shift(&iv.lower),
                    upper: shift(&iv.upper),
                })
                .collect(),
            components: vec![],
        }
    }

    /// The index of the step at time `t`, if `t` is one.
    pub fn position(&self, t: Millis) -> Option<usize> {
        let offset = t - self.start;
        (offset >= 0 && self.step > 0 && offset % self.step == 0)
            .then(|| (offset / self.step) as usize)
            .filter(|&i| i < self.horizon())
    }

    /// Replaces negative values (mean, bounds, not components) by zero: for metrics that
    /// cannot be negative, such as request rates.
    pub fn floor_at_zero(&mut self) {
        let floor = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = x.max(0.0));
        floor(&mut self.mean);
        for i in &mut self.intervals {
            floor(&mut i.lower);
            floor(&mut i.upper);
        }
    }

    /// The forecast's columns after the timestamps: `mean`, then `lower_<L>`, `upper_<L>`
    /// per level (`lower_80`, `upper_80`, ...), then one column per component; a table
    /// writer puts them beside [`Forecast::timestamps`].
    pub fn columns(&self) -> Vec<(String, &[f64])> {
        let mut columns = vec![("mean".to_string(), self.mean.as_slice())];
        for i in &self.intervals {
            let level = format_level(i.level);
            columns.push((format!("lower_{level}"), i.lower.as_slice()));
            columns.push((format!("upper_{level}"), i.upper.as_slice()));
        }
        for c in &self.components {
            columns.push((c.name.clone(), c.values.as_slice()));
        }
        columns
    }
}

/// The central interval level (percent) whose bound is the `q`-quantile: 80 for 0.9 or 0.1,
/// 0 for the median (the mean path stands in for it); `None` outside (0, 1).
pub fn level_for_quantile(q: f64) -> Option<f64> {
    if !(q > 0.0 && q < 1.0) {
        return None;
    }
    let level = ((2.0 * q - 1.0).abs() * 100.0 * 1e6).round() / 1e6;
    Some(if level < 1e-6 { 0.0 } else { level })
}

/// `80` for 80.0, `99.5` for 99.5: the level as it appears in column names.
pub fn format_level(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{level:.0}")
    } else {
        format!("{level}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecast() -> Forecast {
        Forecast {
            start: 0,
            step: 1000,
            mean: vec![1.0, -2.0],
            intervals: vec![Interval {
                level: 80.0,
                lower: vec![-1.0, -3.0],
                upper: vec![3.0, 1.0],
            }],
            components: vec![],
        }
    }

    #[test]
    fn columns_are_the_documented_ones() {
        let f = forecast();
        let names: Vec<String> = f.columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["mean", "lower_80", "upper_80"]);
        assert!(f.columns().iter().all(|(_, v)| v.len() == f.horizon()));
    }

    #[test]
    fn quantiles_and_anchoring() {
        let f = forecast();
        assert_eq!(f.quantile(0.9).unwrap(), [3.0, 1.0]);
        assert_eq!(f.quantile(0.1).unwrap(), [-1.0, -3.0]);
        assert_eq!(f.quantile(0.5).unwrap(), [1.0, -2.0]);
        assert!(f.quantile(0.95).is_none() && f.quantile(1.0).is_none());
        assert_eq!(level_for_quantile(0.975), Some(95.0));
        // Observed 3 at the first step, forecast 1: the miss of 2 carries on as 2·ρ.
        let a = f.anchored(0, 3.0, 0.5);
        assert_eq!((a.start, a.mean.clone()), (1000, vec![-1.0]));
        assert_eq!(a.intervals[0].upper, [2.0]);
        // ρ = 0, a time that is not a step, or a missing observation change nothing.
        assert_eq!(f.anchored(0, 3.0, 0.0).mean, [-2.0]);
        assert_eq!(f.anchored(500, 3.0, 0.5), f);
        assert_eq!(f.anchored(0, f64::NAN, 0.5).mean, [-2.0]);
    }

    proptest::proptest! {
        #[test]
        fn anchoring_within_some_steps_is_the_prefix_of_anchoring(
            mean in proptest::collection::vec(-1e6f64..1e6, 1..40),
            at in 0usize..45,
            steps in 0usize..50,
            observed in -1e6f64..1e6,
            rho in 0.0f64..1.0,
        ) {
            let f = Forecast {
                start: 1_000,
                step: 10,
                intervals: vec![Interval {
                    level: 80.0,
                    lower: mean.iter().map(|m| m - 1.0).collect(),
                    upper: mean.iter().map(|m| m + 1.0).collect(),
                }],
                mean,
                components: vec![],
            };
            let at = at as Millis * 10 + 1_000;
            let whole = f.anchored(at, observed, rho);
            let part = f.anchored_within(at, observed, rho, steps);
            let n = part.horizon();
            // Off the forecast, both are the forecast as it was.
            let expected = if f.position(at).is_some() { steps.min(whole.horizon()) } else { f.horizon() };
            proptest::prop_assert_eq!(n, expected);
            proptest::prop_assert_eq!(&part.mean[..], &whole.mean[..n]);
            proptest::prop_assert_eq!(&part.intervals[0].upper[..], &whole.intervals[0].upper[..n]);
            proptest::prop_assert_eq!(part.start, whole.start);
        }
    }

    #[test]
    fn flooring_clips_mean_and_bounds() {
        let mut f = forecast();
        f.floor_at_zero();
        assert_eq!(f.mean, [1.0, 0.0]);
        assert_eq!(f.intervals[0].lower, [0.0, 0.0]);
        assert_eq!(f.intervals[0].upper, [3.0, 1.0]);
    }
}
