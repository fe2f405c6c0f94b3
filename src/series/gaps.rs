//! Filling short gaps; long ones stay visible.

use super::{Series, SeriesError};

/// What [`Series::fill_gaps`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GapReport {
    /// Points filled by interpolation.
    pub filled: usize,
    /// Points still missing: in gaps longer than the limit, or at either end.
    pub left_missing: usize,
    /// Number of gaps (runs of missing points) left unfilled.
    pub gaps_left: usize,
}

impl Series {
    /// Linearly interpolates every interior run of at most `max_steps` missing points.
    ///
    /// Longer runs, and runs at the start or end (which have only one neighbour), stay `NaN`:
    /// inventing an hour of traffic is worse than admitting it is unknown. Returns the new
    /// series and how many points were filled. Interpolated values lie between their two
    /// neighbours, so they are finite; an error is returned should one not be.
    pub fn fill_gaps(&self, max_steps: usize) -> Result<(Series, GapReport), SeriesError> {
        let mut values = self.values().to_vec();
        let mut report = GapReport::default();
        let mut i = 0;
        while i < values.len() {
            if !values[i].is_nan() {
                i += 1;
                continue;
            }
            let gap_start = i;
            while i < values.len() && values[i].is_nan() {
                i += 1;
            }
            let run = i - gap_start;
            let interior = gap_start > 0 && i < values.len();
            if interior && run <= max_steps {
                let (left, right) = (values[gap_start - 1], values[i]);
                for (k, v) in values[gap_start..i].iter_mut().enumerate() {
                    let w = (k + 1) as f64 / (run + 1) as f64;
                    // A weighted mean rather than `left + (right - left) * w`, whose
                    // difference of two extreme values of opposite sign overflows; clamped
                    // because rounding can carry a mean of two values near the largest float
                    // past it.
                    *v = (left * (1.0 - w) + right * w).clamp(left.min(right), left.max(right));
                }
                report.filled += run;
            } else {
                report.left_missing += run;
                report.gaps_left += 1;
            }
        }
        if let Some(index) = values.iter().position(|v| v.is_infinite()) {
            return Err(SeriesError::Overflow {
                what: "an interpolated value",
                index,
                timestamp: super::format_millis(self.timestamp(index)),
            });
        }
        let series = Series::new(self.labels().clone(), self.start(), self.step(), values)?;
        Ok((series, report))
    }
}

#[cfg(test)]
mod tests {
    use crate::series::Labels;

    use super::*;
    use proptest::prelude::*;

    fn series(values: Vec<f64>) -> Series {
        Series::new(Labels::default(), 0, 1, values).unwrap()
    }

    #[test]
    fn short_interior_gaps_are_interpolated() {
        let nan = f64::NAN;
        let (s, r) = series(vec![nan, 1.0, nan, nan, 4.0, nan, nan, nan, 8.0, nan])
            .fill_gaps(2)
            .unwrap();
        assert_eq!(&s.values()[1..5], &[1.0, 2.0, 3.0, 4.0]);
        assert!(s.values()[0].is_nan() && s.values()[6].is_nan() && s.values()[9].is_nan());
        assert_eq!(
            r,
            GapReport {
                filled: 2,
                left_missing: 5,
                gaps_left: 3
            }
        );
    }

    proptest! {
        #[test]
        fn filling_only_replaces_short_interior_gaps(
            raw in prop::collection::vec(
                prop::option::weighted(0.7, prop_oneof![-1e6f64..1e6, Just(crate::series::MAX_ABS_VALUE), Just(-crate::series::MAX_ABS_VALUE), Just(1e149)]),
                0..300,
            ),
            max in 0usize..6,
        ) {
            let values: Vec<f64> = raw.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            let before = series(values.clone());
            let (after, report) = before.fill_gaps(max).unwrap();
            prop_assert_eq!(report.filled + report.left_missing, before.missing());
            prop_assert_eq!(after.missing(), report.left_missing);
            for (i, (&a, &b)) in values.iter().zip(after.values()).enumerate() {
                if !a.is_nan() {
                    prop_assert_eq!(a, b, "observed point {} changed", i);
                } else if !b.is_nan() {
                    // A filled point lies between its two observed neighbours.
                    let left = values[..i].iter().rev().find(|v| !v.is_nan()).copied();
                    let right = values[i + 1..].iter().find(|v| !v.is_nan()).copied();
                    let (l, r) = (left.unwrap(), right.unwrap());
                    prop_assert!(b.is_finite());
                    prop_assert!(b >= l.min(r) - 1e-9 * l.abs().max(r.abs()).max(1.0));
                    prop_assert!(b <= l.max(r) + 1e-9 * l.abs().max(r.abs()).max(1.0));
                }
            }
            // Filling twice changes nothing more.
            let (again, second) = after.fill_gaps(max).unwrap();
            prop_assert_eq!(second.filled, 0);
            prop_assert_eq!(again.missing(), after.missing());
        }
    }
}
