//! The decision path that `simulate` replays and `serve` runs, so that what the replay
//! measures is what the server does.
//!
//! - [`MetricPlanner`]: one metric's forecast kept current between refits: anchored to each
//!   newest observation (its last miss carried forward, damped by the lag-one autocorrelation
//!   of the model's errors) and, by default, with headroom calibrated on its own recent misses
//!   at each lead time.
//! - [`serve_value`]: the plan at an HPA sync, looking one sync beyond the start-up (a pod
//!   asked for now is asked for at the HPA's next sync and serves after its start-up), and the
//!   External metric value that makes the HPA land on it despite its tolerance.

use std::collections::VecDeque;

use crate::forecast::{level_for_quantile, Forecast};
use crate::series::Millis;

use super::behavior::Seconds;
use super::policy::{
    external_value_for, plan, Decision, MetricTarget, PolicyError, PolicySettings,
};

/// How many steps ahead decisions look: from a decision anywhere in a step, the steps that
/// begin within one start-up plus one sync, and the one after.
pub fn leads(startup: Seconds, sync: Seconds, step_seconds: Seconds) -> usize {
    ((startup + sync) / step_seconds.max(1)).max(0) as usize + 2
}

/// A forecast ready to plan with.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Anchored, and calibrated when asked: its first step is the step under way.
    pub forecast: Forecast,
    /// The load it expects for the step under way (the anchored mean, before calibration).
    pub expected: f64,
}

/// One metric's forecast between refits, and the record of its misses.
#[derive(Debug)]
pub struct MetricPlanner {
    calibration: Calibration,
    quantile: f64,
    calibrate: bool,
    /// Steps of each forecast kept after anchoring (all by default).
    steps_kept: usize,
}

impl MetricPlanner {
    /// A planner provisioning `quantile`; with `calibrate`, the headroom is the quantile of
    /// the last `window` misses at each of `leads` lead times (see [`leads`]).
    pub fn new(quantile: f64, calibrate: bool, window: usize, leads: usize) -> Self {
        Self {
            calibration: Calibration::new(window, leads),
            quantile,
            calibrate,
            steps_kept: usize::MAX,
        }
    }

    /// Keeps only the first `steps` steps of each prepared forecast. A caller that plans
    /// within the step under way (the replay: [`leads`] steps suffice) then pays for those
    /// steps rather than for the whole horizon at every step, which made a replay's cost grow
    /// with the square of the refit interval. Decisions within those steps are unchanged.
    pub fn keeping(mut self, steps: usize) -> Self {
        self.steps_kept = steps.max(1);
        self
    }

    /// The forecast to act on once `observed` (the load of the step ending at `at`, the newest
    /// one known) is in: the latest fit's forecast with its lag-one error autocorrelation
    /// (`fit`) anchored to it, noted for calibration, and calibrated. `None` without a fit;
    /// the step is still noted, so the misses stay aligned with their leads.
    pub fn prepare(
        &mut self,
        fit: Option<(&Forecast, f64)>,
        at: Millis,
        observed: f64,
    ) -> Option<Prepared> {
        let anchored = fit.map(|(f, rho)| f.anchored_within(at, observed, rho, self.steps_kept));
        self.calibration
            .decided(anchored.as_ref().map(|f| f.mean.as_slice()));
        let forecast = anchored?;
        let expected = forecast.mean.first().copied().unwrap_or(f64::NAN);
        let forecast = if self.calibrate {
            self.calibration.apply(forecast, self.quantile)
        } else {
            forecast
        };
        Some(Prepared { forecast, expected })
    }

    /// The quantile it provisions.
    pub fn quantile(&self) -> f64 {
        self.quantile
    }

    /// Records the load of the step last prepared for, once it is known (a missing load
    /// records nothing).
    pub fn observe(&mut self, load: f64) {
        self.calibration.observed(load);
    }
}

/// The lag-one autocorrelation of a fit's in-sample errors, clamped to [0, 1]: how much of
/// a forecast miss is likely to persist into the next step.
pub fn error_autocorrelation(actual: &[f64], fitted: &[f64]) -> f64 {
    let errors: Vec<f64> = actual
        .iter()
        .zip(fitted)
        .map(|(a, f)| a - f)
        .filter(|e| e.is_finite())
        .collect();
    if errors.len() < 3 {
        return 0.0;
    }
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let var: f64 = errors.iter().map(|e| (e - mean).powi(2)).sum();
    if var <= 0.0 {
        return 0.0;
    }
    let cov: f64 = errors
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum();
    (cov / var).clamp(0.0, 1.0)
}

/// What a decision at an HPA sync depends on besides the forecasts.
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings<'a> {
    /// Quantile, start-up, bounds.
    pub policy: &'a PolicySettings,
    /// Seconds between HPA syncs: a pod asked for now is asked for at the next one.
    pub sync: Seconds,
    /// The AverageValue target the served value is for (the capacity per replica of a load
    /// metric; 1 for a metric that is the replica count itself).
    pub capacity: f64,
    /// The HPA's tolerance.
    pub tolerance: f64,
}

/// The decision at an HPA sync at `now` and the External metric value to serve for it: the
/// plan of `forecasts` looking one sync beyond the start-up, served with
/// [`external_value_for`] from `current` pods so the HPA's tolerance cannot hold it a pod
/// short.
pub fn serve_value(
    settings: &SyncSettings<'_>,
    targets: &[MetricTarget],
    forecasts: &[(&str, &Forecast)],
    now: Millis,
    current: i64,
) -> Result<(Decision, f64), PolicyError> {
    let lead = PolicySettings {
        startup: settings.policy.startup + settings.sync,
        ..settings.policy.clone()
    };
    let decision = plan(&lead, targets, forecasts, now, Some(current))?;
    let value = external_value_for(
        decision.desired,
        current,
        settings.capacity,
        settings.tolerance,
    );
    Ok((decision, value))
}

/// Headroom from the forecast's own recent misses (split-conformal style), per lead time:
/// the forecast of a step `h` steps ahead gets the mean plus the quantile `q` of the last
/// `window` misses `y − ŷ` that forecasts made `h` steps ahead had.
///
/// A model's interval assumes its error model; after a burst, ETS's intervals on the Twitter
/// series widened so far that p70 cost three times the reactive HPA's replica-hours. The
/// errors the replay has already seen are a calibrated and cheap stand-in. They are kept per
/// lead because the pods that serve a step are asked for one start-up earlier, from a forecast
/// one or more steps older than the step: one-step misses would under-cover it. Until
/// [`Calibration::MIN_ERRORS`] one-step misses are known, the model's interval is used; a
/// longer lead with too few misses yet borrows the longest lead that has enough.
#[derive(Debug)]
struct Calibration {
    /// Index `h − 1`: the misses of forecasts made `h` steps ahead, oldest first.
    by_lead: Vec<VecDeque<f64>>,
    /// The forecasts of the latest decisions, newest first: `made[i][j]` is the forecast, made
    /// `i` decisions ago, of the step `j` after that decision's own (so of this step when
    /// `i == j`). A decision without a forecast leaves an empty entry.
    made: VecDeque<Vec<f64>>,
    window: usize,
    /// The same misses per lead kept sorted, so a quantile is a lookup: the planner asks for
    /// one at every lead on every step, and selecting it afresh each time made long
    /// start-ups (many leads) cost seconds per day replayed.
    sorted: Vec<Vec<f64>>,
}

impl Calibration {
    const MIN_ERRORS: usize = 50;

    /// Misses kept for up to `leads` steps ahead, the last `window` of each.
    fn new(window: usize, leads: usize) -> Self {
        let window = window.max(1);
        let leads = leads.max(1);
        Self {
            // Capacity grows with use: the window is a user setting and may exceed the trace.
            by_lead: vec![VecDeque::new(); leads],
            made: VecDeque::with_capacity(leads),
            window,
            sorted: vec![Vec::new(); leads],
        }
    }

    /// Notes the forecast (its mean from the step being decided on) made for this step's
    /// decision, or `None` when there was none.
    fn decided(&mut self, mean: Option<&[f64]>) {
        if self.made.len() == self.by_lead.len() {
            self.made.pop_back();
        }
        let leads = self.by_lead.len();
        self.made.push_front(
            mean.map(|m| m.iter().take(leads).copied().collect())
                .unwrap_or_default(),
        );
    }

    /// Records the misses on the load just observed for the step last decided.
    fn observed(&mut self, load: f64) {
        if !load.is_finite() {
            return;
        }
        for (lead, forecasts) in self.made.iter().enumerate() {
            let Some(&predicted) = forecasts.get(lead) else {
                continue;
            };
            let error = load - predicted;
            if !error.is_finite() {
                continue;
            }
            let (errors, sorted) = (&mut self.by_lead[lead], &mut self.sorted[lead]);
            if errors.len() == self.window {
                if let Some(oldest) = errors.pop_front() {
                    let at = sorted.partition_point(|v| v.total_cmp(&oldest).is_lt());
                    sorted.remove(at);
                }
            }
            errors.push_back(error);
            let at = sorted.partition_point(|v| v.total_cmp(&error).is_lt());
            sorted.insert(at, error);
        }
    }

    /// `forecast` (its first step one step ahead) with its `q` bound replaced by mean + the
    /// `q`-quantile of recent misses at each step's lead.
    fn apply(&self, forecast: Forecast, q: f64) -> Forecast {
        let Some(level) = level_for_quantile(q).filter(|l| *l > 0.0) else {
            return forecast;
        };
        let mut offsets: Vec<f64> = vec![];
        for sorted in &self.sorted {
            if sorted.len() < Self::MIN_ERRORS {
                break;
            }
            let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
            offsets.push(sorted[rank]);
        }
        let Some(&longest) = offsets.last() else {
            return forecast;
        };
        let bound: Vec<f64> = forecast
            .mean
            .iter()
            .enumerate()
            .map(|(i, m)| m + offsets.get(i).copied().unwrap_or(longest))
            .collect();
        Forecast {
            intervals: vec![crate::forecast::Interval {
                level,
                lower: bound.clone(),
                upper: bound,
            }],
            ..forecast
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The sorted copy the quantiles are read from is always the window's misses, sorted,
        // whatever the loads (repeated values included) and however full the window.
        #[test]
        fn the_sorted_misses_mirror_the_window(
            loads in proptest::collection::vec(prop_oneof![0.0..10.0f64, Just(3.0), Just(f64::NAN)], 0..200),
            window in 1usize..20,
        ) {
            let mut c = Calibration::new(window, 3);
            for load in loads {
                c.decided(Some(&[2.0, 4.0, 6.0]));
                c.observed(load);
                for (errors, sorted) in c.by_lead.iter().zip(&c.sorted) {
                    let mut expected: Vec<f64> = errors.iter().copied().collect();
                    expected.sort_by(f64::total_cmp);
                    prop_assert_eq!(&expected, sorted);
                    prop_assert!(errors.len() <= window);
                }
            }
        }
    }

    #[test]
    fn calibrated_headroom_is_the_quantile_of_recent_misses_at_each_lead() {
        let mut c = Calibration::new(100, 2);
        let f = Forecast {
            start: 0,
            step: 1,
            mean: vec![10.0, 20.0, 30.0],
            intervals: vec![],
            components: vec![],
        };
        // Every decision forecasts 100 for its own step and 50 for the next; the load of step
        // i is 100 + i % 100, so one-step misses are i % 100 and two-step misses 50 more.
        let step = |c: &mut Calibration, i: usize| {
            c.decided(Some(&[100.0, 50.0]));
            c.observed(100.0 + (i % 100) as f64);
        };
        // Too few misses: the forecast is left as it is (and lacks the interval).
        for i in 0..49 {
            step(&mut c, i);
        }
        assert!(c.apply(f.clone(), 0.9).quantile(0.9).is_none());
        // A step without a forecast records no miss, and an unobserved load none either.
        c.decided(None);
        c.observed(1e9);
        c.decided(Some(&[100.0, 50.0]));
        c.observed(f64::NAN);
        for i in 49..150 {
            step(&mut c, i);
        }
        // The windows keep the last 100 misses: p90 is 89 one step ahead, 139 two steps
        // ahead, and the third step borrows the longest lead.
        let calibrated = c.apply(f, 0.9);
        assert_eq!(
            calibrated.quantile(0.9).unwrap(),
            [10.0 + 89.0, 20.0 + 139.0, 30.0 + 139.0]
        );
    }
}
