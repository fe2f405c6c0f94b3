//! The regular time series every other module works on.
//!
//! A [`Series`] is a start time, a fixed step and one value per step, with `NaN` marking a
//! missing sample. Raw observations (a CSV file, a Prometheus response) arrive as [`Samples`]
//! and become a `Series` either directly, when they already sit on a grid
//! ([`Series::from_samples`]), or through [`Samples::regularize`]. Gap filling
//! ([`Series::fill_gaps`]) and counter-to-rate conversion ([`Series::counter_to_rate`]) are
//! explicit steps, never silent.

mod counter;
mod gaps;
mod labels;
mod samples;
mod time;

pub use gaps::GapReport;
pub use labels::Labels;
pub use samples::{Aggregation, Duplicates, Samples};
pub use time::{format_millis, format_step, Millis};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a series could not be built.
///
/// `index` fields are 0-based positions in the input; sources translate them to file lines.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SeriesError {
    /// Two consecutive samples share a timestamp.
    #[error("duplicate timestamp {timestamp} (sample {})", index + 1)]
    Duplicate {
        /// Position of the second sample.
        index: usize,
        /// The repeated timestamp, formatted.
        timestamp: String,
    },
    /// A timestamp is earlier than the one before it.
    #[error("timestamp {timestamp} is before the previous one, {previous} (sample {}); timestamps must increase", index + 1)]
    NotIncreasing {
        /// Position of the offending sample.
        index: usize,
        /// Its timestamp, formatted.
        timestamp: String,
        /// The previous timestamp, formatted.
        previous: String,
    },
    /// A value is infinite (NaN is allowed and means "missing").
    #[error("value {value} at {timestamp} is not finite (sample {}); use an empty cell or NaN for a missing sample", index + 1)]
    NonFinite {
        /// Position of the offending sample.
        index: usize,
        /// Its timestamp, formatted.
        timestamp: String,
        /// The value.
        value: f64,
    },
    /// A value's magnitude is above [`MAX_ABS_VALUE`].
    #[error("value {value:e} at {timestamp} is beyond ±{max:e}, the largest magnitude the models compute with without overflowing (sample {}); check the unit of the column", index + 1, max = MAX_ABS_VALUE)]
    TooLarge {
        /// Position of the offending sample.
        index: usize,
        /// Its timestamp, formatted.
        timestamp: String,
        /// The value.
        value: f64,
    },
    /// Timestamps and values differ in length.
    #[error("{timestamps} timestamps but {values} values")]
    LengthMismatch {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of values.
        values: usize,
    },
    /// The step is zero or negative.
    #[error("step must be positive, got {0} ms")]
    InvalidStep(Millis),
    /// There is nothing to build a series from.
    #[error("no samples")]
    Empty,
    /// The grid the samples span would hold more points than [`MAX_POINTS`]; refused before
    /// anything is allocated.
    #[error("{span_ms} ms of samples at a {step_ms} ms step make {points} points, over the limit of {max}: check the step, and that every timestamp has the same unit (one timestamp in milliseconds among seconds stretches the span a thousandfold)", max = MAX_POINTS)]
    TooManyPoints {
        /// From the first sample to the last, ms.
        span_ms: i128,
        /// The grid step, ms.
        step_ms: Millis,
        /// Points the grid would hold.
        points: i128,
    },
    /// A computed value left the range of finite numbers (e.g. the rate of a counter that
    /// jumps from -1e308 to 1e308).
    #[error("{what} at {timestamp} overflows (sample {}): the values are too extreme", index + 1)]
    Overflow {
        /// What was computed.
        what: &'static str,
        /// Position of the offending sample.
        index: usize,
        /// Its timestamp, formatted.
        timestamp: String,
    },
    /// Samples are not on one grid; [`Samples::regularize`] puts them on one.
    #[error("sample {} at {timestamp} is {offset_ms} ms off the {step_ms} ms grid; regularize the samples first", index + 1)]
    Irregular {
        /// Position of the first off-grid sample.
        index: usize,
        /// Its timestamp, formatted.
        timestamp: String,
        /// Its distance from the previous sample, in ms.
        offset_ms: Millis,
        /// The inferred step.
        step_ms: Millis,
    },
}

impl SeriesError {
    /// The 0-based position of the offending sample, when the error is about one sample.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Duplicate { index, .. }
            | Self::NotIncreasing { index, .. }
            | Self::NonFinite { index, .. }
            | Self::TooLarge { index, .. }
            | Self::Irregular { index, .. }
            | Self::Overflow { index, .. } => Some(*index),
            Self::LengthMismatch { .. }
            | Self::InvalidStep(_)
            | Self::Empty
            | Self::TooManyPoints { .. } => None,
        }
    }
}

/// The largest magnitude a value may have: 1e150. Models square and sum values (variances,
/// least squares, Kalman covariances); below this bound the sum of the squares of
/// [`MAX_POINTS`] values is still finite, so a fit either works or fails for a reason of its
/// own, never because a spike of 1e308 overflowed into an infinite variance or a zero-width
/// interval. Real load is many orders of magnitude smaller.
pub const MAX_ABS_VALUE: f64 = 1e150;

/// The first value that is infinite or beyond [`MAX_ABS_VALUE`], as the error that says so.
pub(crate) fn check_values(
    values: &[f64],
    timestamp_of: impl Fn(usize) -> Millis,
) -> Result<(), SeriesError> {
    let Some(index) = values
        .iter()
        .position(|v| v.is_infinite() || v.abs() > MAX_ABS_VALUE)
    else {
        return Ok(());
    };
    let (value, timestamp) = (values[index], format_millis(timestamp_of(index)));
    Err(if value.is_infinite() {
        SeriesError::NonFinite {
            index,
            timestamp,
            value,
        }
    } else {
        SeriesError::TooLarge {
            index,
            timestamp,
            value,
        }
    })
}

/// The most points a series grid may hold: 50 million (400 MB of values), years of
/// one-second data and far beyond any history a forecast needs. A grid is checked against it
/// before it is allocated, so a wrong step or a timestamp in the wrong unit is an error, not
/// gigabytes of memory.
pub const MAX_POINTS: usize = 50_000_000;

/// The points of the grid `start, start + step, …` up to `last` (with a partial last step
/// rounded up when `round_up`), refused over [`MAX_POINTS`] before anything is allocated.
pub fn grid_len(
    start: Millis,
    last: Millis,
    step: Millis,
    round_up: bool,
) -> Result<usize, SeriesError> {
    if step <= 0 {
        return Err(SeriesError::InvalidStep(step));
    }
    // In i128: a span between extreme timestamps overflows i64.
    let span = i128::from(last) - i128::from(start);
    let step_ms = i128::from(step);
    let points = if round_up {
        (span + step_ms - 1) / step_ms
    } else {
        span / step_ms
    } + 1;
    if points > MAX_POINTS as i128 {
        return Err(SeriesError::TooManyPoints {
            span_ms: span,
            step_ms: step,
            points,
        });
    }
    Ok(points.max(0) as usize)
}

/// A regularly spaced series: value `i` is observed at `start + i * step`.
///
/// Invariants, checked at construction: `step > 0`, every value finite or `NaN` (missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    labels: Labels,
    start: Millis,
    step: Millis,
    values: Vec<f64>,
}

impl Series {
    /// Builds a series on the grid `start + i * step`, checking the step and the values.
    pub fn new(
        labels: Labels,
        start: Millis,
        step: Millis,
        values: Vec<f64>,
    ) -> Result<Self, SeriesError> {
        if step <= 0 {
            return Err(SeriesError::InvalidStep(step));
        }
        check_values(&values, |i| {
            start.saturating_add((i as Millis).saturating_mul(step))
        })?;
        Ok(Self {
            labels,
            start,
            step,
            values,
        })
    }

    /// Builds a series from samples that already sit on one grid.
    ///
    /// The step is the most common spacing; samples whose spacing is a whole multiple of it
    /// leave the points in between missing (`NaN`). Any other spacing is
    /// [`SeriesError::Irregular`]: use [`Samples::regularize`] for such data.
    pub fn from_samples(samples: &Samples) -> Result<Self, SeriesError> {
        let ts = samples.timestamps();
        let vs = samples.values();
        let Some(&start) = ts.first() else {
            return Err(SeriesError::Empty);
        };
        let Some(step) = samples.infer_step() else {
            // A single sample: any positive step works; one second is the least surprising.
            return Self::new(samples.labels().clone(), start, 1000, vs.to_vec());
        };
        let last = ts[ts.len() - 1];
        let len = grid_len(start, last, step, false)?;
        let mut values = vec![f64::NAN; len];
        for (index, (&t, &v)) in ts.iter().zip(vs).enumerate() {
            let offset = t - start;
            if offset % step != 0 {
                return Err(SeriesError::Irregular {
                    index,
                    timestamp: format_millis(t),
                    offset_ms: t - ts[index.saturating_sub(1)],
                    step_ms: step,
                });
            }
            values[(offset / step) as usize] = v;
        }
        Self::new(samples.labels().clone(), start, step, values)
    }

    /// The series' identity.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Replaces the labels (builder style).
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// Timestamp of the first value, ms since the epoch.
    pub fn start(&self) -> Millis {
        self.start
    }

    /// Spacing between values, ms.
    pub fn step(&self) -> Millis {
        self.step
    }

    /// The values, `NaN` where a sample is missing.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of grid points (missing ones included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the series has no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of missing (`NaN`) points.
    pub fn missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }

    /// Timestamp of point `i` (which may lie past the end, for forecasts).
    pub fn timestamp(&self, i: usize) -> Millis {
        self.start + i as Millis * self.step
    }

    /// Timestamp one step after the last point: where a forecast starts.
    pub fn next_timestamp(&self) -> Millis {
        self.timestamp(self.len())
    }

    /// Timestamps of all points.
    pub fn timestamps(&self) -> impl Iterator<Item = Millis> + '_ {
        (0..self.len()).map(|i| self.timestamp(i))
    }

    /// The points in `range` as a series of their own (same labels and step).
    ///
    /// # Panics
    /// When the range is out of bounds, like slice indexing.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Series {
        Series {
            labels: self.labels.clone(),
            start: self.timestamp(range.start),
            step: self.step,
            values: self.values[range].to_vec(),
        }
    }

    /// The series with `f` applied to every value; a result that is not finite (an overflow)
    /// becomes missing, so the invariant holds.
    pub fn map_values(&self, f: impl Fn(f64) -> f64) -> Series {
        Series {
            labels: self.labels.clone(),
            start: self.start,
            step: self.step,
            values: self
                .values
                .iter()
                .map(|&v| {
                    let m = f(v);
                    if m.is_infinite() {
                        f64::NAN
                    } else {
                        m
                    }
                })
                .collect(),
        }
    }

    /// Splits into the first `n` points and the rest (`n` is clamped to the length).
    pub fn split_at(&self, n: usize) -> (Series, Series) {
        let n = n.min(self.len());
        (self.slice(0..n), self.slice(n..self.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ts: &[Millis], vs: &[f64]) -> Samples {
        Samples::new(Labels::named("t"), ts.to_vec(), vs.to_vec()).expect("valid samples")
    }

    #[test]
    fn regular_samples_become_a_series_unchanged() {
        let s = Series::from_samples(&samples(&[0, 10, 20, 30], &[1.0, 2.0, 3.0, 4.0])).unwrap();
        assert_eq!(
            (s.start(), s.step(), s.values()),
            (0, 10, &[1.0, 2.0, 3.0, 4.0][..])
        );
    }

    #[test]
    fn missing_rows_become_nan() {
        let s = Series::from_samples(&samples(&[0, 10, 40, 50], &[1.0, 2.0, 5.0, 6.0])).unwrap();
        assert_eq!(s.len(), 6);
        assert!(s.values()[2].is_nan() && s.values()[3].is_nan());
        assert_eq!(s.missing(), 2);
    }

    #[test]
    fn off_grid_sample_is_reported() {
        let err = Series::from_samples(&samples(&[0, 10, 20, 25, 30, 40], &[0.0; 6])).unwrap_err();
        assert!(
            matches!(err, SeriesError::Irregular { index: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn values_beyond_the_magnitude_limit_are_refused_with_their_place() {
        let ok = Series::new(
            Labels::default(),
            0,
            1000,
            vec![1.0, -MAX_ABS_VALUE, f64::NAN],
        );
        assert!(ok.is_ok());
        let err = Series::new(Labels::default(), 0, 1000, vec![1.0, 2.0, 1e308]).unwrap_err();
        assert!(
            matches!(err, SeriesError::TooLarge { index: 2, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("1e308") && text.contains("1e150") && text.contains("sample 3"),
            "{text}"
        );
        let err = Samples::new(Labels::default(), vec![0, 10], vec![-1e200, 1.0]).unwrap_err();
        assert!(
            matches!(err, SeriesError::TooLarge { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn infinite_value_and_bad_step_are_rejected() {
        let err = Series::new(Labels::default(), 0, 1000, vec![1.0, f64::INFINITY]).unwrap_err();
        assert!(matches!(err, SeriesError::NonFinite { index: 1, .. }));
        assert_eq!(
            Series::new(Labels::default(), 0, 0, vec![1.0]).unwrap_err(),
            SeriesError::InvalidStep(0)
        );
    }

    #[test]
    fn split_keeps_the_grid() {
        let s = Series::new(Labels::default(), 1000, 500, vec![1.0, 2.0, 3.0]).unwrap();
        let (a, b) = s.split_at(2);
        assert_eq!(a.values(), &[1.0, 2.0]);
        assert_eq!((b.start(), b.values()), (2000, &[3.0][..]));
        assert_eq!(a.next_timestamp(), b.start());
    }
}
