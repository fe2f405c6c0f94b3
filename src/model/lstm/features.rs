//! What the network sees: a window scaled by its own statistics, cut into patches, with
//! optional calendar features; and how quantile outputs become intervals at any level.

use candle_core::{Device, Tensor};

use super::network::Config;
use crate::model::normal_quantile;
use crate::series::Millis;

/// Calendar features per patch: sine and cosine of the hour of day and of the day of week.
pub(super) const CALENDAR_FEATURES: usize = 4;

const DAY: Millis = 86_400_000;
const WEEK: Millis = 7 * DAY;

/// A window's centre and scale: the network works in `(x - center) / scale`.
///
/// Scaling each window by its own mean and standard deviation is what lets one network serve
/// series whose levels differ by orders of magnitude (M4 hourly spans 10 to 10^5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// The window's mean.
    pub center: f64,
    /// The window's standard deviation, floored (see [`Scaling::of`]).
    pub scale: f64,
}

impl Scaling {
    /// The scaling of `window` (finite values). The scale is floored at 1% of the mean absolute
    /// level and at 1e-9, so a flat window gives finite inputs instead of dividing by zero.
    pub fn of(window: &[f64]) -> Scaling {
        let n = window.len().max(1) as f64;
        let center = window.iter().sum::<f64>() / n;
        let variance = window.iter().map(|v| (v - center).powi(2)).sum::<f64>() / n;
        let level = window.iter().map(|v| v.abs()).sum::<f64>() / n;
        Scaling {
            center,
            scale: variance.sqrt().max(0.01 * level).max(1e-9),
        }
    }

    /// A value in network units.
    pub fn apply(&self, v: f64) -> f32 {
        ((v - self.center) / self.scale) as f32
    }

    /// A network output back in the series' units.
    pub fn invert(&self, z: f32) -> f64 {
        self.center + f64::from(z) * self.scale
    }
}

/// Sine and cosine of the hour of day and of the day of week (Monday = 0) at `t`, UTC.
pub(super) fn calendar(t: Millis) -> [f32; CALENDAR_FEATURES] {
    use std::f64::consts::TAU;
    let day = t.rem_euclid(DAY) as f64 / DAY as f64;
    // 1970-01-01 was a Thursday: three days after a Monday.
    let week = (t + 3 * DAY).rem_euclid(WEEK) as f64 / WEEK as f64;
    [
        (TAU * day).sin() as f32,
        (TAU * day).cos() as f32,
        (TAU * week).sin() as f32,
        (TAU * week).cos() as f32,
    ]
}

/// Windows as the network reads them, with the scaling that turns its outputs back.
pub(super) struct Encoded {
    /// `(batch, patches, features)`: the patches with their calendar features.
    pub input: Tensor,
    /// `(batch, input_steps)`: each scaled window, flat, for the skip connection.
    pub window: Tensor,
    /// Each window's scaling.
    pub scalings: Vec<Scaling>,
}

/// Encodes `windows` (finite values of `config.shape.input_steps` steps, each with the
/// timestamp of its first step) on `device`. Training and forecasting both go through here, so
/// the network always sees its inputs the same way.
pub(super) fn encode(
    config: &Config,
    windows: &[(&[f64], Millis)],
    step: Millis,
    device: &Device,
) -> candle_core::Result<Encoded> {
    let shape = &config.shape;
    let (b, l) = (windows.len(), shape.input_steps);
    let mut input = Vec::with_capacity(b * l / shape.patch * config.features());
    let mut flat = Vec::with_capacity(b * l);
    let mut scalings = Vec::with_capacity(b);
    for &(window, start) in windows {
        let scaling = Scaling::of(window);
        push_input(
            &mut input,
            window,
            &scaling,
            shape.patch,
            shape.calendar,
            start,
            step,
        );
        flat.extend(window.iter().map(|&v| scaling.apply(v)));
        scalings.push(scaling);
    }
    Ok(Encoded {
        input: Tensor::from_vec(input, (b, l / shape.patch, config.features()), device)?,
        window: Tensor::from_vec(flat, (b, l), device)?,
        scalings,
    })
}

/// The network input of one window, appended to `out`: one row per patch, each the patch's
/// scaled values followed (with `calendar_on`) by the calendar features of its first step.
/// `start` is the timestamp of `window[0]`.
fn push_input(
    out: &mut Vec<f32>,
    window: &[f64],
    scaling: &Scaling,
    patch: usize,
    calendar_on: bool,
    start: Millis,
    step: Millis,
) {
    for (p, chunk) in window.chunks(patch).enumerate() {
        out.extend(chunk.iter().map(|&v| scaling.apply(v)));
        if calendar_on {
            out.extend(calendar(start + (p * patch) as Millis * step));
        }
    }
}

/// Fills missing values (`NaN`) in a window: each takes the last observed value before it, or
/// the first after it at the window's start. `None` when fewer than half the values are observed,
/// since the scaling and the network's view would then be mostly invented.
pub(super) fn fill_window(window: &[f64]) -> Option<Vec<f64>> {
    let observed = window.iter().filter(|v| v.is_finite()).count();
    if observed * 2 < window.len() || observed == 0 {
        return None;
    }
    let first = window.iter().copied().find(|v| v.is_finite())?;
    let mut last = first;
    Some(
        window
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    last = v;
                }
                last
            })
            .collect(),
    )
}

/// The value of the `tau` quantile given the values at the trained quantile levels `taus`
/// (ascending) and `values` (same order, non-decreasing).
///
/// Between trained levels it interpolates linearly in normal score, so a Gaussian-shaped
/// forecast is reproduced exactly; outside them it extends the outermost pair's spread per
/// unit of normal score, which keeps the answer monotone in `tau`.
pub fn quantile_at(tau: f64, taus: &[f64], values: &[f64]) -> f64 {
    let z = |t: f64| normal_quantile(200.0 * t - 100.0);
    let n = taus.len();
    if n == 1 {
        return values[0];
    }
    let target = z(tau);
    let k = taus.partition_point(|&t| t < tau).clamp(1, n - 1);
    // Extrapolate from the outermost pair on each side.
    let (lo, hi) = if tau < taus[0] {
        (0, 1)
    } else if tau > taus[n - 1] {
        (n - 2, n - 1)
    } else {
        (k - 1, k)
    };
    let (z0, z1) = (z(taus[lo]), z(taus[hi]));
    let slope = (values[hi] - values[lo]) / (z1 - z0);
    values[lo] + slope * (target - z0)
}

/// Sorts each step's quantile values in place (Chernozhukov et al.'s rearrangement): after
/// a per-quantile recalibration the values stay non-crossing, and rearranging never makes a
/// quantile forecast's pinball loss worse.
pub(super) fn rearrange(values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn calendar_knows_the_epoch_was_a_thursday_at_midnight() {
        let f = calendar(0);
        assert!((f[0] - 0.0).abs() < 1e-6 && (f[1] - 1.0).abs() < 1e-6);
        // Thursday = day 3 of a Monday-based week.
        let angle = std::f64::consts::TAU * 3.0 / 7.0;
        assert!((f64::from(f[2]) - angle.sin()).abs() < 1e-6);
        // Monday 1970-01-05 00:00 is the start of a week.
        let monday = calendar(4 * DAY);
        assert!(monday[2].abs() < 1e-6 && (monday[3] - 1.0).abs() < 1e-6);
        // Six in the morning is a quarter of the day.
        let six = calendar(6 * 3_600_000);
        assert!((six[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn patches_carry_their_calendar() {
        let window: Vec<f64> = (0..8).map(f64::from).collect();
        let s = Scaling::of(&window);
        let mut out = Vec::new();
        push_input(&mut out, &window, &s, 4, true, 0, 3_600_000);
        assert_eq!(out.len(), 2 * (4 + CALENDAR_FEATURES));
        assert_eq!(&out[12..16], &calendar(4 * 3_600_000));
        assert!((s.invert(out[4 + CALENDAR_FEATURES]) - 4.0).abs() < 1e-5);
    }

    #[test]
    fn gaps_are_filled_from_the_past_and_mostly_missing_windows_refused() {
        let nan = f64::NAN;
        assert_eq!(
            fill_window(&[nan, 2.0, nan, 5.0]).unwrap(),
            vec![2.0, 2.0, 2.0, 5.0]
        );
        assert!(fill_window(&[nan, nan, nan, 1.0]).is_none());
        assert!(fill_window(&[]).is_none());
    }

    #[test]
    fn quantiles_reproduce_a_gaussian() {
        let taus = [0.1, 0.5, 0.9];
        let sd = 2.0;
        let values: Vec<f64> = taus
            .iter()
            .map(|&t| 10.0 + sd * normal_quantile(200.0 * t - 100.0))
            .collect();
        for tau in [0.025, 0.3, 0.5, 0.8, 0.975] {
            let want = 10.0 + sd * normal_quantile(200.0 * tau - 100.0);
            assert!(
                (quantile_at(tau, &taus, &values) - want).abs() < 1e-9,
                "{tau}"
            );
        }
    }

    proptest! {
        #[test]
        fn scaling_round_trips(window in prop::collection::vec(-1e6f64..1e6, 1..200)) {
            let s = Scaling::of(&window);
            prop_assert!(s.scale > 0.0 && s.scale.is_finite());
            for &v in &window {
                let back = s.invert(s.apply(v));
                prop_assert!((back - v).abs() <= 1e-5 * s.scale.max(v.abs()) + 1e-9);
            }
        }

        #[test]
        fn interpolated_quantiles_are_monotone(
            gaps in prop::collection::vec(0.0f64..10.0, 4),
            a in 0.001f64..0.999,
            b in 0.001f64..0.999,
        ) {
            let taus = [0.05, 0.25, 0.5, 0.75, 0.95];
            let mut values = vec![0.0];
            for g in &gaps {
                values.push(values.last().unwrap() + g);
            }
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(quantile_at(lo, &taus, &values) <= quantile_at(hi, &taus, &values) + 1e-9);
        }
    }
}
