//! Monotonic counters to per-second rates.

use super::{format_millis, Series, SeriesError, MAX_ABS_VALUE};

impl Series {
    /// Turns a monotonic counter (such as `http_requests_total`) into a per-second rate.
    ///
    /// Point `i` of the result is the increase since the previous observed point divided by
    /// the seconds between them. A drop is a counter reset, as PromQL's `rate()` treats it:
    /// the counter restarted from zero, so the increase is the new value itself. Missing
    /// points stay missing; the rate after a gap is the average over the gap. The result
    /// starts one step later than the counter, since the first point has no predecessor.
    /// A rate that leaves the finite numbers, or the magnitude models compute with
    /// ([`MAX_ABS_VALUE`]), as a counter jumping between extreme values does, is
    /// [`SeriesError::Overflow`].
    pub fn counter_to_rate(&self) -> Result<Series, SeriesError> {
        let seconds_per_step = self.step() as f64 / 1000.0;
        let values = self.values();
        let mut rates = Vec::with_capacity(values.len().saturating_sub(1));
        let mut previous: Option<(usize, f64)> =
            values.first().filter(|v| !v.is_nan()).map(|&v| (0, v));
        for (i, &v) in values.iter().enumerate().skip(1) {
            if v.is_nan() {
                rates.push(f64::NAN);
                continue;
            }
            let rate = match previous {
                Some((j, p)) => {
                    let increase = if v < p { v } else { v - p };
                    increase / ((i - j) as f64 * seconds_per_step)
                }
                None => f64::NAN,
            };
            if rate.is_infinite() || rate.abs() > MAX_ABS_VALUE {
                return Err(SeriesError::Overflow {
                    what: "the counter's rate",
                    index: i,
                    timestamp: format_millis(self.timestamp(i)),
                });
            }
            rates.push(rate);
            previous = Some((i, v));
        }
        Series::new(
            self.labels().clone(),
            self.start() + self.step(),
            self.step(),
            rates,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::series::Labels;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reset_counts_the_new_value_as_the_increase() {
        // 10 s step: +50, +50, reset to 20 (20 since restart), +30.
        let c = Series::new(
            Labels::default(),
            0,
            10_000,
            vec![0.0, 50.0, 100.0, 20.0, 50.0],
        )
        .unwrap();
        let r = c.counter_to_rate().unwrap();
        assert_eq!(r.start(), 10_000);
        assert_eq!(r.values(), &[5.0, 5.0, 2.0, 3.0]);
    }

    #[test]
    fn rate_after_a_gap_averages_over_the_gap() {
        let c = Series::new(Labels::default(), 0, 1000, vec![0.0, f64::NAN, 10.0]).unwrap();
        let r = c.counter_to_rate().unwrap();
        assert!(r.values()[0].is_nan());
        assert_eq!(r.values()[1], 5.0);
    }

    proptest! {
        #[test]
        fn extreme_counters_give_a_rate_or_an_overflow_error_never_a_panic(
            values in prop::collection::vec(
                prop_oneof![Just(MAX_ABS_VALUE), Just(-MAX_ABS_VALUE), Just(1e149), -1e6f64..1e6, Just(f64::NAN)],
                0..40,
            ),
            step_ms in prop_oneof![Just(1i64), Just(1000i64), 1i64..100_000_000],
        ) {
            let s = Series::new(Labels::default(), 0, step_ms, values).unwrap();
            match s.counter_to_rate() {
                Ok(r) => prop_assert!(r.values().iter().all(|v| !v.is_infinite())),
                Err(e) => prop_assert!(matches!(e, SeriesError::Overflow { .. }), "{e}"),
            }
        }

        #[test]
        fn rates_are_non_negative_and_add_up_to_the_increases(
            steps in prop::collection::vec((0.0f64..1e4, prop::bool::weighted(0.05)), 1..300),
            step_s in 1i64..600,
        ) {
            // Build a counter from random increments with occasional resets.
            let mut counter = vec![0.0];
            let mut total_increase = 0.0;
            for &(inc, reset) in &steps {
                let last = counter[counter.len() - 1];
                // A reset is only visible as one when the counter drops (as in PromQL).
                let next = if reset && inc < last { inc } else { last + inc };
                counter.push(next);
                total_increase += inc;
            }
            let s = Series::new(Labels::default(), 0, step_s * 1000, counter).unwrap();
            let r = s.counter_to_rate().unwrap();
            prop_assert_eq!(r.len(), steps.len());
            prop_assert!(r.values().iter().all(|&v| v >= 0.0));
            let integrated: f64 = r.values().iter().map(|v| v * step_s as f64).sum();
            prop_assert!((integrated - total_increase).abs() <= 1e-6 * total_increase.max(1.0));
        }
    }
}
