//! The predictive scaling policy: forecasts in, replicas out.
//!
//! For each metric the workload scales on, the forecast's chosen quantile (the headroom, e.g.
//! p90) is divided by the metric's capacity per replica. Pods asked for now are ready one
//! start-up lead time later, so the replicas needed now cover the highest forecast load of
//! every step from now to the one under way at `now + start-up` (a forecast value at `t` is
//! the load of the step ending at `t`). `startup` should include the delay until the next
//! decision (the HPA's sync period): decisions are assumed to be made continually, as the
//! HPA reads the External metric every sync. Several metrics combine as the HPA combines them: the largest
//! replica count wins, and the reason names the metric that drove it. The result is bounded
//! by `[min, max]`; the HPA's `behavior` rules are applied by whoever acts on the plan (the
//! HPA itself, or the replay in [`super::replay`]).
//!
//! The plan is served to the HPA as an External metric with an `AverageValue` target equal to
//! the capacity per replica: the HPA computes `ceil(value / target)`, so serving
//! `desired × capacity` (a hair under, so rounding cannot add a pod) lands on `desired`.

use crate::forecast::Forecast;
use crate::human::thousands;
use crate::series::{format_millis, Millis};

use super::behavior::Seconds;

/// One metric a workload scales on.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTarget {
    /// The metric's name, as the forecasts are keyed.
    pub name: String,
    /// How its value turns into replicas.
    pub target: Target,
}

impl MetricTarget {
    /// A load metric (request rate, queue depth) of which one replica serves `capacity`.
    pub fn capacity(name: impl Into<String>, capacity: f64) -> Self {
        Self {
            name: name.into(),
            target: Target::CapacityPerReplica(capacity),
        }
    }

    /// A utilisation-like metric (CPU utilisation, p95 latency) held at `value` per replica.
    pub fn value(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            target: Target::Value(value),
        }
    }

    /// The replicas that keep a forecast value `v` at the target, from `current` replicas
    /// (needed for a [`Target::Value`]); `None` without them.
    pub fn replicas_for(&self, v: f64, current: Option<i64>) -> Option<i64> {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        match self.target {
            Target::CapacityPerReplica(c) => Some((v / c).ceil() as i64),
            Target::Value(t) => current.map(|n| (n.max(0) as f64 * v / t).ceil() as i64),
        }
    }
}

/// The two kinds of metric target, as the HPA has them for External metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Metric units one replica serves at its target (e.g. 100 req/s): replicas =
    /// `ceil(load / capacity)`, as an HPA `AverageValue` target computes.
    CapacityPerReplica(f64),
    /// The value the metric should stay at (e.g. 70% CPU, 250 ms p95), which falls as
    /// replicas are added: replicas = `ceil(current × value / target)`, as an HPA `Value` (or
    /// `Utilization`) target computes; needs the current replica count.
    Value(f64),
}

impl Target {
    /// The number that scales replicas: the capacity, or the target value.
    pub fn amount(self) -> f64 {
        match self {
            Self::CapacityPerReplica(v) | Self::Value(v) => v,
        }
    }
}

/// What the policy needs besides the forecasts.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// The forecast quantile to provision for, in (0, 1): 0.9 provisions for p90.
    pub quantile: f64,
    /// Seconds from asking for a pod to it serving traffic.
    pub startup: Seconds,
    /// Lower bound on replicas.
    pub min_replicas: i64,
    /// Upper bound on replicas.
    pub max_replicas: i64,
}

/// The replicas one metric needs, and the forecast point that needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    /// The metric.
    pub metric: String,
    /// When the driving load is expected.
    pub at: Millis,
    /// The forecast quantile there.
    pub load: f64,
    /// `ceil(load / capacity)`, before the bounds.
    pub replicas: i64,
}

/// A decision: replicas now, the schedule over the horizon, and what to serve the HPA.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Replicas to run now, within the bounds.
    pub desired: i64,
    /// The metric and forecast point that set `desired` (the largest need).
    pub driver: Need,
    /// `(time, replicas)` for each forecast step: the replicas that must be serving then
    /// (asked for one start-up lead time earlier), within the bounds.
    pub schedule: Vec<(Millis, i64)>,
    /// The External metric value that makes an HPA with an `AverageValue` target of the
    /// driving metric's capacity land on `desired`.
    pub external_value: f64,
    /// The decision in words.
    pub reason: String,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The workload has no metric.
    #[error("the workload scales on no metric")]
    NoMetrics,
    /// A metric has no forecast.
    #[error("no forecast for metric {metric:?}")]
    MissingForecast {
        /// The metric.
        metric: String,
    },
    /// The forecast lacks the interval the quantile needs.
    #[error("the forecast of {metric:?} has no interval at level {level}% (needed for quantile {quantile})")]
    MissingQuantile {
        /// The metric.
        metric: String,
        /// The quantile asked for.
        quantile: f64,
        /// The central interval level it needs.
        level: f64,
    },
    /// A metric with a [`Target::Value`] needs the current replica count.
    #[error("metric {metric:?} has a target value, which needs the current replica count")]
    NeedsCurrentReplicas {
        /// The metric.
        metric: String,
    },
    /// The forecast holds no step after `now`, or a non-finite value where one is needed.
    #[error("the forecast of {metric:?} has no usable value after {now}")]
    NoUsableForecast {
        /// The metric.
        metric: String,
        /// The decision time.
        now: String,
    },
    /// Settings that cannot give a decision.
    #[error("invalid policy settings: {0}")]
    Invalid(String),
}

impl PolicySettings {
    /// Checks the settings, listing every problem.
    pub fn validate(&self, metrics: &[MetricTarget]) -> Result<(), PolicyError> {
        let mut problems = vec![];
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            problems.push(format!("quantile {} is not in (0, 1)", self.quantile));
        }
        if self.startup < 0 {
            problems.push(format!("start-up {} s is negative", self.startup));
        }
        if self.min_replicas < 0 {
            problems.push(format!("min replicas {} is negative", self.min_replicas));
        }
        if self.min_replicas > self.max_replicas {
            problems.push(format!(
                "min replicas {} exceeds max replicas {}",
                self.min_replicas, self.max_replicas
            ));
        }
        for m in metrics {
            let (what, amount) = match m.target {
                Target::CapacityPerReplica(c) => ("capacity per replica", c),
                Target::Value(t) => ("target value", t),
            };
            if !(amount.is_finite() && amount > 0.0) {
                problems.push(format!(
                    "metric {:?}: {what} {amount} must be a positive number",
                    m.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid(problems.join("; ")))
        }
    }
}

/// The decision at `now` for a workload scaling on `metrics`, from `forecasts` keyed by
/// metric name. Forecast steps at or before `now` play no part in the decision; the schedule
/// still lists every forecast step. Metrics are expected on one time grid (the adapter
/// forecasts them together): the schedule combines steps whose times match and keeps the
/// first metric's where they do not. `current` is the replica count now, which metrics with
/// a [`Target::Value`] need. `external_value` is for an HPA whose `AverageValue` target is
/// the driving metric's capacity per replica (1 when a target value drives: the value is then
/// the replica count itself).
///
/// ```
/// use prescale::forecast::{Forecast, Interval};
/// use prescale::scale::policy::{plan, MetricTarget, PolicySettings};
///
/// // Requests per second over the next four 5-minute steps, with the 80% interval (its upper
/// // bound is the p90).
/// let forecast = Forecast {
///     start: 300_000,
///     step: 300_000,
///     mean: vec![900.0, 1_100.0, 1_500.0, 1_200.0],
///     intervals: vec![Interval {
///         level: 80.0,
///         lower: vec![800.0, 950.0, 1_300.0, 1_000.0],
///         upper: vec![1_000.0, 1_250.0, 1_750.0, 1_400.0],
///     }],
///     components: vec![],
/// };
/// let settings = PolicySettings { quantile: 0.9, startup: 300, min_replicas: 2, max_replicas: 50 };
/// let rps = [MetricTarget::capacity("rps", 100.0)];
/// // Pods asked for now serve in five minutes, in the step ending at 10 minutes: p90 1,250.
/// let decision = plan(&settings, &rps, &[("rps", &forecast)], 0, None).unwrap();
/// assert_eq!(decision.desired, 13);
/// assert!(decision.reason.contains("needs 13 pods"));
/// // Served as the External metric of an HPA with AverageValue 100, it lands on 13 pods.
/// assert_eq!((decision.external_value / 100.0).ceil(), 13.0);
/// ```
pub fn plan(
    settings: &PolicySettings,
    metrics: &[MetricTarget],
    forecasts: &[(&str, &Forecast)],
    now: Millis,
    current: Option<i64>,
) -> Result<Decision, PolicyError> {
    settings.validate(metrics)?;
    if metrics.is_empty() {
        return Err(PolicyError::NoMetrics);
    }
    let mut best: Option<(Need, Target)> = None;
    let mut schedule: Vec<(Millis, i64)> = vec![];
    for target in metrics {
        let forecast = forecasts
            .iter()
            .find(|(name, _)| *name == target.name)
            .map(|(_, f)| *f)
            .ok_or_else(|| PolicyError::MissingForecast {
                metric: target.name.clone(),
            })?;
        let path =
            forecast
                .quantile(settings.quantile)
                .ok_or_else(|| PolicyError::MissingQuantile {
                    metric: target.name.clone(),
                    quantile: settings.quantile,
                    level: crate::forecast::level_for_quantile(settings.quantile)
                        .unwrap_or(f64::NAN),
                })?;
        let times: Vec<Millis> = forecast.timestamps().collect();
        // A forecast value at t is the load of the step (t − step, t]. Pods asked for now serve
        // from now + start-up, so they must carry every step that has begun by then: those
        // ending by now + start-up + one step.
        if matches!(target.target, Target::Value(_)) && current.is_none() {
            return Err(PolicyError::NeedsCurrentReplicas {
                metric: target.name.clone(),
            });
        }
        let lead = settings.startup * 1000 + forecast.step;
        let need = need_in(target, &times, path, now, now + lead, current).ok_or_else(|| {
            PolicyError::NoUsableForecast {
                metric: target.name.clone(),
                now: format_millis(now),
            }
        })?;
        // The schedule: the replicas that must be serving at each forecast step.
        let steps: Vec<(Millis, i64)> = times
            .iter()
            .zip(path)
            .map(|(&t, &v)| (t, target.replicas_for(v, current).unwrap_or(0)))
            .collect();
        if schedule.is_empty() {
            schedule = steps;
        } else {
            // Metrics forecast on the same grid combine step by step; the larger need wins.
            for (slot, (t, r)) in schedule.iter_mut().zip(steps) {
                if slot.0 == t {
                    slot.1 = slot.1.max(r);
                }
            }
        }
        if best
            .as_ref()
            .is_none_or(|(b, _)| need.replicas > b.replicas)
        {
            best = Some((need, target.target));
        }
    }
    let (driver, driving) = best.ok_or(PolicyError::NoMetrics)?;
    let bound = |r: i64| r.clamp(settings.min_replicas, settings.max_replicas);
    let desired = bound(driver.replicas);
    for slot in &mut schedule {
        slot.1 = bound(slot.1);
    }
    let mut reason = match driving {
        Target::CapacityPerReplica(c) => format!(
            "forecast p{} of {} {} at {} needs {} pods at {} per pod",
            format_quantile(settings.quantile),
            thousands(driver.load),
            driver.metric,
            format_millis(driver.at),
            driver.replicas,
            thousands(c),
        ),
        Target::Value(t) => format!(
            "forecast p{} of {} {} at {} needs {} pods to hold the target of {} (from {} now)",
            format_quantile(settings.quantile),
            thousands(driver.load),
            driver.metric,
            format_millis(driver.at),
            driver.replicas,
            thousands(t),
            current.unwrap_or(0),
        ),
    };
    if desired != driver.replicas {
        let which = if desired > driver.replicas {
            "min"
        } else {
            "max"
        };
        reason.push_str(&format!("; held at the {which} of {desired}"));
    }
    let capacity = match driving {
        Target::CapacityPerReplica(c) => c,
        Target::Value(_) => 1.0,
    };
    Ok(Decision {
        desired,
        external_value: desired as f64 * capacity * (1.0 - 1e-9),
        driver,
        schedule,
        reason,
    })
}

/// The External metric value that moves an HPA from `current` replicas to `desired`, given
/// its AverageValue target `capacity` and its `tolerance`.
///
/// The HPA ignores a usage ratio within the tolerance of 1, so from 10 pods it will not go to
/// 11 (a ratio of 1.1); knowing the current count (the adapter reads it from the HPA's
/// status), the value asks for the smallest count the HPA will move to instead: the first
/// count outside the tolerance band (12 from 10 pods at 0.1, 106 from 100 at 0.05), up to
/// `tolerance × current` pods above the plan rather than a step short. The band is
/// tested as the HPA tests it, on the value served, so rounding cannot land on its edge.
/// Scaling down inside the band is left to the HPA, which keeps the extra pods (the safe
/// side).
pub fn external_value_for(desired: i64, current: i64, capacity: f64, tolerance: f64) -> f64 {
    let value = |replicas: i64| replicas as f64 * capacity * (1.0 - 1e-9);
    let moves = |replicas: i64| {
        let ratio = value(replicas) / (capacity * current as f64);
        (ratio - 1.0).abs() > tolerance
    };
    let mut reachable = desired;
    // A tolerance of 1 or more (or NaN) would never be left: serve the plan as it is.
    if desired > current && current > 0 && (0.0..1.0).contains(&tolerance) {
        while !moves(reachable) {
            reachable += 1;
        }
    }
    value(reachable)
}

/// The largest need among forecast steps in `(from, to]`; at least the first step after
/// `from` even when the window holds none (a start-up shorter than a step).
fn need_in(
    target: &MetricTarget,
    times: &[Millis],
    path: &[f64],
    from: Millis,
    to: Millis,
    current: Option<i64>,
) -> Option<Need> {
    let mut best: Option<(Millis, f64)> = None;
    for (&t, &v) in times.iter().zip(path) {
        if t <= from || !v.is_finite() {
            continue;
        }
        if t > to && best.is_some() {
            break;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((t, v));
        }
        if t > to {
            break;
        }
    }
    let (at, load) = best?;
    let load = load.max(0.0);
    Some(Need {
        metric: target.name.clone(),
        at,
        load,
        replicas: target.replicas_for(load, current)?,
    })
}

/// `90` for 0.9, `97.5` for 0.975.
fn format_quantile(q: f64) -> String {
    crate::forecast::format_level(((q * 100.0) * 1e6).round() / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Interval;

    const MIN: Millis = 60_000;

    fn forecast(mean: Vec<f64>, upper80: Vec<f64>) -> Forecast {
        let lower = mean.iter().map(|v| v * 0.5).collect();
        Forecast {
            start: 5 * MIN,
            step: 5 * MIN,
            mean,
            intervals: vec![Interval {
                level: 80.0,
                lower,
                upper: upper80,
            }],
            components: vec![],
        }
    }

    fn settings(startup: Seconds) -> PolicySettings {
        PolicySettings {
            quantile: 0.9,
            startup,
            min_replicas: 2,
            max_replicas: 50,
        }
    }

    fn target(name: &str, capacity: f64) -> MetricTarget {
        MetricTarget::capacity(name, capacity)
    }

    #[test]
    fn provisions_the_quantile_one_lead_time_ahead() {
        // Steps ending at 5, 10, 15, 20 min; p90 rises to 1,830 in the step ending at 15.
        let f = forecast(vec![900.0; 4], vec![1000.0, 1200.0, 1830.0, 1100.0]);
        // A 5-minute start-up: pods asked for at 0 serve from 5 min, in the step ending at 10.
        let p = plan(
            &settings(300),
            &[target("rps", 100.0)],
            &[("rps", &f)],
            0,
            None,
        )
        .unwrap();
        assert_eq!(p.desired, 12);
        // Asked for at 5 min, they serve from 10: the peak step has begun.
        let p = plan(
            &settings(300),
            &[target("rps", 100.0)],
            &[("rps", &f)],
            5 * MIN,
            None,
        )
        .unwrap();
        assert_eq!(p.desired, 19);
        // A 10-minute start-up reaches the peak from 0.
        let p = plan(
            &settings(600),
            &[target("rps", 100.0)],
            &[("rps", &f)],
            0,
            None,
        )
        .unwrap();
        assert_eq!(p.desired, 19);
        assert_eq!(p.driver.at, 15 * MIN);
        assert!(
            p.reason.starts_with("forecast p90 of 1,830 rps at ")
                && p.reason.ends_with("needs 19 pods at 100 per pod"),
            "{}",
            p.reason
        );
        // An HPA with AverageValue 100 computes ceil(value / 100): exactly the plan.
        assert_eq!((p.external_value / 100.0).ceil() as i64, 19);
        // The schedule: the pods serving at each step.
        let counts: Vec<i64> = p.schedule.iter().map(|s| s.1).collect();
        assert_eq!(counts, [10, 12, 19, 11]);
        assert_eq!(p.schedule[2].0, 15 * MIN);
    }

    #[test]
    fn the_largest_metric_wins_and_bounds_hold() {
        let rps = forecast(vec![100.0; 3], vec![300.0; 3]);
        let queue = forecast(vec![100.0; 3], vec![5000.0; 3]);
        let metrics = [target("rps", 100.0), target("queue", 1000.0)];
        let p = plan(
            &settings(0),
            &metrics,
            &[("rps", &rps), ("queue", &queue)],
            0,
            None,
        )
        .unwrap();
        assert_eq!(p.desired, 5);
        assert_eq!(p.driver.metric, "queue");
        // Below min: held at the min, and said so.
        let low = forecast(vec![1.0; 3], vec![10.0; 3]);
        let p = plan(
            &settings(0),
            &[target("rps", 100.0)],
            &[("rps", &low)],
            0,
            None,
        )
        .unwrap();
        assert_eq!(p.desired, 2);
        assert!(p.reason.ends_with("held at the min of 2"), "{}", p.reason);
    }

    #[test]
    fn missing_pieces_are_typed_errors() {
        let f = forecast(vec![1.0; 3], vec![2.0; 3]);
        let t = [target("rps", 100.0)];
        assert!(matches!(
            plan(&settings(0), &t, &[("other", &f)], 0, None),
            Err(PolicyError::MissingForecast { .. })
        ));
        let mut s = settings(0);
        s.quantile = 0.95;
        assert!(matches!(
            plan(&s, &t, &[("rps", &f)], 0, None),
            Err(PolicyError::MissingQuantile { level, .. }) if (level - 90.0).abs() < 1e-9
        ));
        assert!(matches!(
            plan(&settings(0), &t, &[("rps", &f)], 60 * MIN, None),
            Err(PolicyError::NoUsableForecast { .. })
        ));
        let mut bad = settings(0);
        bad.min_replicas = 9;
        bad.max_replicas = 3;
        bad.quantile = 1.5;
        let err = plan(&bad, &[target("rps", 0.0)], &[("rps", &f)], 0, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("quantile") && text.contains("exceeds") && text.contains("capacity"),
            "{text}"
        );
    }

    #[test]
    fn the_external_value_gets_past_the_tolerance() {
        use crate::scale::behavior::Behavior;
        use crate::scale::hpa::ReactiveHpa;
        let sync = |current: i64, value: f64, tolerance: f64| {
            ReactiveHpa::new(50.0, 1, 10_000, Some(Behavior::default()))
                .with_tolerance(tolerance)
                .sync(0, current, value)
        };
        // 0.15 × 100 rounds to just under 115: the edge the HPA would not leave.
        for tolerance in [0.05, 0.1, 0.15, 0.2] {
            for current in 1..=200 {
                for desired in current + 1..=(current + 30).min(2 * current) {
                    let v = external_value_for(desired, current, 50.0, tolerance);
                    let got = sync(current, v, tolerance);
                    // At least the plan, and the smallest count the HPA moves to.
                    assert!(got >= desired, "{tolerance} {current}->{desired}: {got}");
                    if got > desired {
                        let one_less = (got - 1) as f64 * 50.0 * (1.0 - 1e-9);
                        assert_eq!(
                            sync(current, one_less, tolerance),
                            current,
                            "{tolerance} {current}->{desired}: {got}"
                        );
                    }
                }
            }
        }
        for (current, desired) in [(10, 10), (10, 8)] {
            let got = sync(
                current,
                external_value_for(desired, current, 50.0, 0.1),
                0.1,
            );
            assert!(
                got <= current && got >= desired,
                "{current}->{desired}: {got}"
            );
        }
    }
    #[test]
    fn a_target_value_scales_the_current_count_as_the_hpa_does() {
        // CPU utilisation forecast to reach 0.9 with 10 pods, held at 0.6: ceil(10 × 0.9 / 0.6).
        let f = forecast(vec![0.5; 4], vec![0.7, 0.9, 0.8, 0.7]);
        let cpu = [MetricTarget::value("cpu", 0.6)];
        let p = plan(&settings(300), &cpu, &[("cpu", &f)], 0, Some(10)).unwrap();
        assert_eq!(p.desired, 15);
        assert!(
            p.reason.contains("to hold the target of 0.6 (from 10 now)"),
            "{}",
            p.reason
        );
        // The served value is the replica count itself (AverageValue 1).
        assert_eq!(p.external_value.ceil(), 15.0);
        // Without the current count there is no decision, and the error says why.
        assert!(matches!(
            plan(&settings(300), &cpu, &[("cpu", &f)], 0, None),
            Err(PolicyError::NeedsCurrentReplicas { .. })
        ));
        // Mixed with a load metric, the larger need wins as in the HPA.
        let both = [cpu[0].clone(), MetricTarget::capacity("rps", 10.0)];
        let rps = forecast(vec![150.0; 4], vec![200.0; 4]);
        let p = plan(
            &settings(300),
            &both,
            &[("cpu", &f), ("rps", &rps)],
            0,
            Some(10),
        )
        .unwrap();
        assert_eq!((p.desired, p.driver.metric.as_str()), (20, "rps"));
    }
}
