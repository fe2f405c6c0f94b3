//! Getting a series ready for models that cannot take missing values or extreme scales.

use serde::{Deserialize, Serialize};

use crate::series::Series;

use super::ModelError;

/// The observed part of a series, gap-free and scaled, plus what is needed to map forecasts
/// back onto the original series.
///
/// - Leading missing points are dropped (nothing to learn from them).
/// - Interior gaps are linearly interpolated.
/// - Trailing missing points are kept as a count: the model forecasts from the last observed
///   point and the first `trailing_missing` steps of its forecast are dropped, so the result
///   still starts one step after the series' end.
/// - Values are divided by `scale` (the largest absolute value) so that optimisers see numbers
///   near 1 whether the metric counts bytes or requests; forecasts are multiplied back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// Scaled, gap-free observed values.
    pub values: Vec<f64>,
    /// Missing points before the first observation.
    pub leading_missing: usize,
    /// Missing points after the last observation.
    pub trailing_missing: usize,
    /// The divisor applied to the values.
    pub scale: f64,
}

impl Prepared {
    /// Prepares `series`, requiring at least `min_points` observed points for `model`.
    pub fn new(series: &Series, model: &str, min_points: usize) -> Result<Self, ModelError> {
        let v = series.values();
        let observed = v.len() - series.missing();
        let too_short = || ModelError::TooShort {
            model: model.to_string(),
            needed: min_points,
            got: observed,
        };
        let first = v.iter().position(|x| !x.is_nan()).ok_or_else(too_short)?;
        let last = v.iter().rposition(|x| !x.is_nan()).ok_or_else(too_short)?;
        if observed < min_points {
            return Err(too_short());
        }
        let (filled, _) = series
            .slice(first..last + 1)
            .fill_gaps(usize::MAX)
            .map_err(|e| ModelError::failed(model, e))?;
        let scale = filled.values().iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let scale = if scale > 0.0 { scale } else { 1.0 };
        Ok(Self {
            values: filled.values().iter().map(|x| x / scale).collect(),
            leading_missing: first,
            trailing_missing: v.len() - 1 - last,
            scale,
        })
    }

    /// Keeps only the last `n` values (models whose cost grows with the history); the dropped
    /// ones count as leading missing points, so in-sample values still line up.
    pub fn keep_last(mut self, n: usize) -> Self {
        let drop = self.values.len().saturating_sub(n);
        self.values.drain(..drop);
        self.leading_missing += drop;
        self
    }

    /// The same values divided by `scale` instead (a model refiltered with the coefficients it
    /// estimated on another span keeps that span's units: its mean is in them).
    pub fn rescaled(mut self, scale: f64) -> Self {
        if scale > 0.0 && scale.is_finite() {
            let factor = self.scale / scale;
            self.values.iter_mut().for_each(|v| *v *= factor);
            self.scale = scale;
        }
        self
    }

    /// The horizon to ask the model for so that `horizon` steps remain after the trailing
    /// gap.
    pub fn model_horizon(&self, horizon: usize) -> usize {
        horizon + self.trailing_missing
    }

    /// Maps a path forecast on the prepared values back: drops the steps that fall in the
    /// trailing gap and undoes the scaling.
    pub fn restore(&self, path: &[f64]) -> Vec<f64> {
        path.iter()
            .skip(self.trailing_missing)
            .map(|x| x * self.scale)
            .collect()
    }

    /// Maps in-sample values on the prepared span back onto the whole series: unscaled, with
    /// `NaN` for the dropped leading and trailing missing points.
    pub fn restore_in_sample(&self, fitted: &[f64]) -> Vec<f64> {
        let nan = |k| std::iter::repeat_n(f64::NAN, k);
        nan(self.leading_missing)
            .chain(fitted.iter().map(|x| x * self.scale))
            .chain(nan(self.trailing_missing))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    #[test]
    fn trims_fills_and_scales() {
        let nan = f64::NAN;
        let s = Series::new(
            Labels::default(),
            0,
            1,
            vec![nan, 2.0, nan, 4.0, -8.0, nan, nan],
        )
        .unwrap();
        let p = Prepared::new(&s, "m", 3).unwrap();
        assert_eq!(p.values, [0.25, 0.375, 0.5, -1.0]);
        assert_eq!(
            (p.leading_missing, p.trailing_missing, p.scale),
            (1, 2, 8.0)
        );
        assert_eq!(p.restore_in_sample(&[1.0; 4]).len(), 7);
        assert_eq!(p.model_horizon(3), 5);
        assert_eq!(p.restore(&[9.0, 9.0, 0.5, 1.0, 1.5]), [4.0, 8.0, 12.0]);
        assert!(Prepared::new(&s, "m", 3).is_ok());
        assert!(matches!(
            Prepared::new(&s, "m", 4),
            Err(ModelError::TooShort {
                needed: 4,
                got: 3,
                ..
            })
        ));
    }
}
