//! Raw observations before they are put on a grid.

use serde::{Deserialize, Serialize};

use super::{format_millis, grid_len, Labels, Millis, Series, SeriesError};

/// How [`Samples::regularize`] combines the samples that fall into one grid interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// The latest sample in the interval: right for gauges read "as of" a time, and what a
    /// Prometheus range query returns.
    #[default]
    Last,
    /// The mean of the samples in the interval: right for down-sampling a noisy gauge.
    Mean,
}

impl std::str::FromStr for Aggregation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "last" => Ok(Self::Last),
            "mean" => Ok(Self::Mean),
            other => Err(format!("unknown aggregation {other:?}; use last or mean")),
        }
    }
}

/// What to do with samples that share a timestamp (a daylight-saving change in local-time
/// data, a double export). Refused by default: a silent choice would change the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// A repeated timestamp is an error naming it.
    #[default]
    Refuse,
    /// Keep the first sample of each repeated timestamp.
    First,
    /// Keep the last.
    Last,
    /// Keep the mean of the observed (non-`NaN`) values.
    Mean,
}

impl std::str::FromStr for Duplicates {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "first" => Ok(Self::First),
            "last" => Ok(Self::Last),
            "mean" => Ok(Self::Mean),
            other => Err(format!(
                "unknown duplicates rule {other:?}; use refuse, first, last or mean"
            )),
        }
    }
}

impl Duplicates {
    /// Merges each run of samples sharing a timestamp into one by this rule (nothing for
    /// [`Duplicates::Refuse`], which leaves [`Samples::new`] to name the repeat). Returns the
    /// kept timestamps and values with, for each, the position of its first source sample (so
    /// errors can still name a file line).
    pub fn merge(
        self,
        timestamps: Vec<Millis>,
        values: Vec<f64>,
    ) -> (Vec<Millis>, Vec<f64>, Vec<usize>) {
        let n = timestamps.len().min(values.len());
        if self == Self::Refuse || timestamps.windows(2).all(|w| w[0] != w[1]) {
            return (timestamps, values, (0..n).collect());
        }
        let (mut ts, mut vs, mut from) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::new());
        let mut i = 0;
        while i < n {
            let mut j = i + 1;
            while j < n && timestamps[j] == timestamps[i] {
                j += 1;
            }
            let run = &values[i..j];
            let value = match self {
                Self::Refuse | Self::First => run[0],
                Self::Last => run[run.len() - 1],
                Self::Mean => {
                    let seen: Vec<f64> = run.iter().copied().filter(|v| !v.is_nan()).collect();
                    if seen.is_empty() {
                        f64::NAN
                    } else {
                        // Scaled by the count first, so two values near f64::MAX do not
                        // overflow to infinity.
                        seen.iter().map(|v| v / seen.len() as f64).sum()
                    }
                }
            };
            ts.push(timestamps[i]);
            vs.push(value);
            from.push(i);
            i = j;
        }
        (ts, vs, from)
    }
}

/// Validated raw observations: strictly increasing timestamps, values finite or `NaN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    labels: Labels,
    timestamps: Vec<Millis>,
    values: Vec<f64>,
}

impl Samples {
    /// Checks and wraps raw observations.
    ///
    /// Errors name the first offending sample: a duplicate or decreasing timestamp, an
    /// infinite value, or unequal lengths.
    pub fn new(
        labels: Labels,
        timestamps: Vec<Millis>,
        values: Vec<f64>,
    ) -> Result<Self, SeriesError> {
        if timestamps.len() != values.len() {
            return Err(SeriesError::LengthMismatch {
                timestamps: timestamps.len(),
                values: values.len(),
            });
        }
        for index in 1..timestamps.len() {
            let (prev, t) = (timestamps[index - 1], timestamps[index]);
            if t == prev {
                return Err(SeriesError::Duplicate {
                    index,
                    timestamp: format_millis(t),
                });
            }
            if t < prev {
                return Err(SeriesError::NotIncreasing {
                    index,
                    timestamp: format_millis(t),
                    previous: format_millis(prev),
                });
            }
        }
        super::check_values(&values, |i| timestamps[i])?;
        Ok(Self {
            labels,
            timestamps,
            values,
        })
    }

    /// The samples' identity.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Timestamps, strictly increasing.
    pub fn timestamps(&self) -> &[Millis] {
        &self.timestamps
    }

    /// Values, `NaN` where missing.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The most common spacing between samples (the smallest, on a tie), or `None` with fewer
    /// than two samples.
    pub fn infer_step(&self) -> Option<Millis> {
        let mut deltas: Vec<Millis> = self.timestamps.windows(2).map(|w| w[1] - w[0]).collect();
        deltas.sort_unstable();
        let mut best: Option<(usize, Millis)> = None;
        for run in deltas.chunk_by(|a, b| a == b) {
            if best.is_none_or(|(count, _)| run.len() > count) {
                best = Some((run.len(), run[0]));
            }
        }
        best.map(|(_, step)| step)
    }

    /// Puts the samples on the grid `first timestamp + k * step`.
    ///
    /// Grid point `t_k` summarises the samples in the interval `(t_k - step, t_k]`, combined
    /// by `rule`: like a Prometheus range query, a point never uses a sample from after its
    /// own time, so a forecast built on the result cannot see the future. An interval without
    /// samples (or with only `NaN` samples) is `NaN`.
    pub fn regularize(&self, step: Millis, rule: Aggregation) -> Result<Series, SeriesError> {
        if step <= 0 {
            return Err(SeriesError::InvalidStep(step));
        }
        let (Some(&start), Some(&last)) = (self.timestamps.first(), self.timestamps.last()) else {
            return Err(SeriesError::Empty);
        };
        // Interval (t_k - step, t_k] holds t with k = ceil((t - start) / step).
        let len = grid_len(start, last, step, true)?;
        let mut values = vec![f64::NAN; len];
        let mut counts = vec![0usize; len];
        for (&t, &v) in self.timestamps.iter().zip(&self.values) {
            if v.is_nan() {
                continue;
            }
            let k = ((t - start + step - 1) / step) as usize;
            match rule {
                Aggregation::Last => values[k] = v,
                Aggregation::Mean => {
                    values[k] = if counts[k] == 0 { v } else { values[k] + v };
                }
            }
            counts[k] += 1;
        }
        if rule == Aggregation::Mean {
            for (v, &c) in values.iter_mut().zip(&counts) {
                if c > 1 {
                    *v /= c as f64;
                }
            }
        }
        Series::new(self.labels.clone(), start, step, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples(ts: Vec<Millis>, vs: Vec<f64>) -> Samples {
        Samples::new(Labels::named("t"), ts, vs).expect("valid samples")
    }

    #[test]
    fn duplicates_merge_by_rule_and_keep_source_positions() {
        let ts = vec![0, 10, 10, 10, 20];
        let vs = vec![1.0, 2.0, f64::NAN, 6.0, 5.0];
        let (t, v, from) = Duplicates::Mean.merge(ts.clone(), vs.clone());
        assert_eq!(t, [0, 10, 20]);
        assert_eq!(v, [1.0, 4.0, 5.0]);
        assert_eq!(from, [0, 1, 4]);
        assert_eq!(
            Duplicates::First.merge(ts.clone(), vs.clone()).1,
            [1.0, 2.0, 5.0]
        );
        assert_eq!(
            Duplicates::Last.merge(ts.clone(), vs.clone()).1,
            [1.0, 6.0, 5.0]
        );
        let (t, _, _) = Duplicates::Refuse.merge(ts.clone(), vs.clone());
        assert_eq!(t, ts, "refusing leaves the repeat for Samples::new to name");
        let huge = Duplicates::Mean
            .merge(vec![0, 0], vec![f64::MAX, f64::MAX])
            .1;
        assert_eq!(huge, [f64::MAX]);
    }

    #[test]
    fn validation_names_the_offending_sample() {
        let dup = Samples::new(Labels::default(), vec![0, 1, 1], vec![0.0; 3]).unwrap_err();
        assert!(matches!(dup, SeriesError::Duplicate { index: 2, .. }));
        let back = Samples::new(Labels::default(), vec![0, 2, 1], vec![0.0; 3]).unwrap_err();
        assert!(matches!(back, SeriesError::NotIncreasing { index: 2, .. }));
        let inf = Samples::new(Labels::default(), vec![0, 1], vec![0.0, f64::NEG_INFINITY]);
        assert!(matches!(inf, Err(SeriesError::NonFinite { index: 1, .. })));
        let len = Samples::new(Labels::default(), vec![0, 1], vec![0.0]).unwrap_err();
        assert!(matches!(len, SeriesError::LengthMismatch { .. }));
    }

    #[test]
    fn regularize_last_and_mean() {
        // Grid 0, 10, 20: interval (0,10] holds 4 and 10; (10,20] holds 15.
        let s = samples(vec![0, 4, 10, 15], vec![1.0, 2.0, 4.0, 6.0]);
        assert_eq!(
            s.regularize(10, Aggregation::Last).unwrap().values(),
            &[1.0, 4.0, 6.0]
        );
        assert_eq!(
            s.regularize(10, Aggregation::Mean).unwrap().values(),
            &[1.0, 3.0, 6.0]
        );
    }

    #[test]
    fn regularize_leaves_empty_intervals_missing() {
        let s = samples(vec![0, 30], vec![1.0, 2.0])
            .regularize(10, Aggregation::Last)
            .unwrap();
        assert_eq!(s.len(), 4);
        assert!(s.values()[1].is_nan() && s.values()[2].is_nan());
    }

    #[test]
    fn infer_step_takes_the_most_common_spacing() {
        assert_eq!(
            samples(vec![0, 5, 10, 15, 40], vec![0.0; 5]).infer_step(),
            Some(5)
        );
        assert_eq!(samples(vec![7], vec![0.0]).infer_step(), None);
    }

    fn irregular() -> impl Strategy<Value = (Vec<Millis>, Vec<f64>)> {
        prop::collection::vec(
            (1i64..500, prop::option::weighted(0.9, -1e6f64..1e6)),
            1..200,
        )
        .prop_map(|pairs| {
            let mut t = 0;
            pairs
                .into_iter()
                .map(|(dt, v)| {
                    t += dt;
                    (t, v.unwrap_or(f64::NAN))
                })
                .unzip()
        })
    }

    proptest! {
        #[test]
        fn regularized_grid_covers_all_samples((ts, vs) in irregular(), step in 1i64..1000) {
            let s = samples(ts.clone(), vs.clone());
            for rule in [Aggregation::Last, Aggregation::Mean] {
                let r = s.regularize(step, rule).unwrap();
                prop_assert_eq!(r.start(), ts[0]);
                // The grid reaches the last sample and not a step further.
                let end = r.timestamp(r.len() - 1);
                prop_assert!(end >= ts[ts.len() - 1] && end - step < ts[ts.len() - 1]);
                let finite: Vec<f64> = vs.iter().copied().filter(|v| !v.is_nan()).collect();
                let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                for &v in r.values().iter().filter(|v| !v.is_nan()) {
                    prop_assert!(v >= lo - 1e-6 && v <= hi + 1e-6);
                    if rule == Aggregation::Last {
                        prop_assert!(finite.contains(&v));
                    }
                }
                // Every interval holding a finite sample has a value, and no other does.
                for k in 0..r.len() {
                    let t = r.timestamp(k);
                    let any = ts.iter().zip(&vs).any(|(&x, v)| x > t - step && x <= t && !v.is_nan());
                    prop_assert_eq!(any, !r.values()[k].is_nan());
                }
            }
        }

        #[test]
        fn regular_samples_regularize_to_themselves(n in 1usize..100, step in 1i64..1000, start in -10_000i64..10_000) {
            let ts: Vec<Millis> = (0..n as i64).map(|i| start + i * step).collect();
            let vs: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
            let s = samples(ts, vs.clone());
            let regularized = s.regularize(step, Aggregation::Last).unwrap();
            prop_assert_eq!(regularized.values(), &vs[..]);
            let direct = Series::from_samples(&s).unwrap();
            prop_assert_eq!(direct.values(), &vs[..]);
        }
    }
}
