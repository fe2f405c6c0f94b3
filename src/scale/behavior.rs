//! The HorizontalPodAutoscaler's `behavior`: stabilization windows and scaling policies.
//!
//! A faithful model of `normalizeDesiredReplicasWithBehaviors` in Kubernetes'
//! `pkg/controller/podautoscaler/horizontal.go` (autoscaling/v2), so that a replay of the
//! reactive HPA, and prescale's own plan, scale exactly as a cluster would:
//!
//! 1. **Stabilization.** Every raw recommendation is remembered. Scaling up goes no higher than
//!    the *lowest* recommendation inside the scale-up window; scaling down goes no lower than
//!    the *highest* recommendation inside the scale-down window (default 300 s), so a brief dip
//!    does not remove pods that the next minute needs again.
//! 2. **Rate limits.** Each policy allows, per `period`, a change of `value` pods (`Pods`) or
//!    `value` percent of the replicas at the start of that period (`Percent`); `select_policy`
//!    takes the most permissive (`Max`), the least (`Min`) or none (`Disabled`). Changes already
//!    made inside the period count against it.
//! 3. **Bounds.** The result stays within `[min_replicas, max_replicas]`.
//!
//! The defaults are the HPA's: scale up with no stabilization, by the larger of 4 pods or 100%
//! per 15 s; scale down after a 300 s window, by up to 100% per 15 s.
//!
//! An HPA with **no** `behavior` block is another path in the controller
//! (`normalizeDesiredReplicas`, kept from before `behavior` existed; the API server does not
//! fill in a missing block): scale-down is stabilized over the controller's
//! `--horizontal-pod-autoscaler-downscale-stabilization` window (5 minutes by default) with no
//! rate limit, and each sync may scale up to at most `max(2 × current, 4)` replicas
//! (`scaleUpLimitFactor`, `scaleUpLimitMinimum`), with no memory of earlier syncs. The
//! [`Normalizer`] takes that path for `None`.
//!
//! Either way, the controller seeds its record of recommendations with the current replica
//! count when it first sees the HPA (`recordInitialRecommendation`), so nothing scales down
//! during the first scale-down window after the controller starts.

use serde::{Deserialize, Serialize};

/// Seconds, as the HPA API counts them.
pub type Seconds = i64;

/// How a policy limits the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    /// At most `value` pods per period.
    Pods,
    /// At most `value` percent of the replicas at the start of the period.
    Percent,
}

/// One scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    /// Pods or Percent.
    pub kind: PolicyType,
    /// Pods, or percent.
    pub value: i64,
    /// The window the limit applies to, in seconds.
    pub period: Seconds,
}

/// Which policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// Rules for one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Stabilization window, seconds.
    pub stabilization: Seconds,
    /// How policies combine.
    pub select: SelectPolicy,
    /// The policies.
    pub policies: Vec<ScalingPolicy>,
}

/// Scale-up and scale-down rules, as in `HorizontalPodAutoscalerBehavior`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behavior {
    /// Rules when the recommendation is above the current replicas.
    pub scale_up: Rules,
    /// Rules when it is below.
    pub scale_down: Rules,
}

impl Default for Behavior {
    /// The HPA's defaults (autoscaling/v2).
    fn default() -> Self {
        Self {
            scale_up: Rules {
                stabilization: 0,
                select: SelectPolicy::Max,
                policies: vec![
                    ScalingPolicy {
                        kind: PolicyType::Pods,
                        value: 4,
                        period: 15,
                    },
                    ScalingPolicy {
                        kind: PolicyType::Percent,
                        value: 100,
                        period: 15,
                    },
                ],
            },
            scale_down: Rules {
                stabilization: 300,
                select: SelectPolicy::Max,
                policies: vec![ScalingPolicy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period: 15,
                }],
            },
        }
    }
}

impl std::fmt::Display for PolicyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pods => "Pods",
            Self::Percent => "Percent",
        })
    }
}

impl std::fmt::Display for SelectPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Max => "Max",
            Self::Min => "Min",
            Self::Disabled => "Disabled",
        })
    }
}

impl std::fmt::Display for ScalingPolicy {
    /// The HPA's spelling, as YAML flow: `{type: Pods, value: 4, periodSeconds: 15}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{type: {}, value: {}, periodSeconds: {}}}",
            self.kind, self.value, self.period
        )
    }
}

impl std::fmt::Display for Rules {
    /// The HPA's `HPAScalingRules`, as YAML flow.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let policies: Vec<String> = self.policies.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{{stabilizationWindowSeconds: {}, selectPolicy: {}, policies: [{}]}}",
            self.stabilization,
            self.select,
            policies.join(", ")
        )
    }
}

impl std::fmt::Display for Behavior {
    /// The HPA's `behavior` block as one line of YAML flow, so it can be pasted into an HPA or
    /// a workload file: `{scaleUp: {...}, scaleDown: {...}}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{scaleUp: {}, scaleDown: {}}}",
            self.scale_up, self.scale_down
        )
    }
}

/// How an HPA's `behavior` reads to people: the block in the HPA's YAML spelling, or, for an
/// HPA without one, what the controller does instead.
pub fn describe(behavior: Option<&Behavior>) -> String {
    match behavior {
        Some(b) => b.to_string(),
        None => format!(
            "none (the controller's legacy path: scale up to at most max({LEGACY_SCALE_UP_FACTOR} × current, {LEGACY_SCALE_UP_MINIMUM}) per sync; scale down to the highest recommendation of the last {LEGACY_DOWNSCALE_STABILIZATION} s)"
        ),
    }
}

/// The scale-down stabilization window of an HPA with no `behavior` block: the controller's
/// `--horizontal-pod-autoscaler-downscale-stabilization` default (5 minutes).
pub const LEGACY_DOWNSCALE_STABILIZATION: Seconds = 300;

/// An HPA with no `behavior` block scales up to at most this many times the current replicas
/// per sync (the controller's `scaleUpLimitFactor`)...
pub const LEGACY_SCALE_UP_FACTOR: i64 = 2;

/// ...or to this many, whichever is more (`scaleUpLimitMinimum`).
pub const LEGACY_SCALE_UP_MINIMUM: i64 = 4;

/// A change of replicas at a time, kept to apply the rate limits.
#[derive(Debug, Clone, Copy)]
struct Event {
    at: Seconds,
    change: i64,
}

/// The HPA's memory for one workload: past recommendations and past scaling events.
#[derive(Debug, Clone)]
pub struct Normalizer {
    /// The rules of the behavior path (unused on the legacy path).
    behavior: Behavior,
    /// The HPA has no `behavior` block: the controller's legacy path.
    legacy: bool,
    min_replicas: i64,
    max_replicas: i64,
    recommendations: Vec<(Seconds, i64)>,
    ups: Vec<Event>,
    downs: Vec<Event>,
    /// Whether the first recommendation (the current count) is recorded.
    seeded: bool,
}

impl Normalizer {
    /// A normalizer with no history, for an HPA with `behavior` rules or, with `None`, none
    /// (the controller's legacy path).
    pub fn new(behavior: Option<Behavior>, min_replicas: i64, max_replicas: i64) -> Self {
        Self {
            legacy: behavior.is_none(),
            behavior: behavior.unwrap_or_default(),
            min_replicas,
            max_replicas,
            recommendations: Vec::new(),
            ups: Vec::new(),
            downs: Vec::new(),
            seeded: false,
        }
    }

    /// The controller's first look at the HPA, at time `now` with `current` replicas: it
    /// records `current` as a recommendation, so the scale-down window starts full of it.
    /// Only the first call does anything; [`Normalizer::normalize`] calls it too, and a caller
    /// that skips normalizing at a sync (a missing metric) calls it first, as the controller
    /// seeds before it reads any metric.
    pub fn seed(&mut self, now: Seconds, current: i64) {
        if !self.seeded {
            self.seeded = true;
            self.recommendations.push((now, current));
        }
    }

    /// Turns a raw recommendation at time `now` into the replicas the HPA would set, given
    /// `current` replicas, and records the decision.
    ///
    /// Replicas outside `[min, max]` are first brought to the nearest bound, with no rate
    /// limit and nothing recorded, as the controller does before it reads any metric.
    pub fn normalize(&mut self, now: Seconds, current: i64, desired: i64) -> i64 {
        self.seed(now, current);
        if current < self.min_replicas || current > self.max_replicas {
            return current.clamp(self.min_replicas, self.max_replicas);
        }
        if self.legacy {
            return self.normalize_legacy(now, current, desired);
        }
        let stabilized = self.stabilize(now, current, desired);
        let limited = self.rate_limit(now, current, stabilized);
        let change = limited - current;
        if change > 0 {
            self.ups.push(Event { at: now, change });
        } else if change < 0 {
            self.downs.push(Event {
                at: now,
                change: -change,
            });
        }
        self.forget(now);
        limited
    }

    /// The controller's `normalizeDesiredReplicas`, for an HPA with no `behavior` block: the
    /// highest recommendation in the last [`LEGACY_DOWNSCALE_STABILIZATION`] seconds (this
    /// one included), then at least `min_replicas` and at most `max_replicas` and
    /// `max(2 × current, 4)`. No scale-up window and no scale-down rate limit.
    fn normalize_legacy(&mut self, now: Seconds, current: i64, desired: i64) -> i64 {
        // The controller keeps a recommendation while it is not *before* the cutoff (the
        // window's start included), unlike the behavior path's strictly-after.
        let cutoff = now - LEGACY_DOWNSCALE_STABILIZATION;
        let stabilized = self
            .recommendations
            .iter()
            .filter(|&&(at, _)| at >= cutoff)
            .map(|&(_, r)| r)
            .fold(desired, i64::max);
        self.recommendations.push((now, desired));
        self.recommendations.retain(|&(at, _)| at >= cutoff);
        let scale_up_limit = (LEGACY_SCALE_UP_FACTOR * current).max(LEGACY_SCALE_UP_MINIMUM);
        let highest = self.max_replicas.min(scale_up_limit);
        if stabilized < self.min_replicas {
            self.min_replicas
        } else {
            stabilized.min(highest)
        }
    }

    /// Stabilization: no higher than the lowest recommendation in the scale-up window, no
    /// lower than the highest in the scale-down window (the current one included).
    fn stabilize(&mut self, now: Seconds, current: i64, desired: i64) -> i64 {
        let up_cutoff = now - self.behavior.scale_up.stabilization;
        let down_cutoff = now - self.behavior.scale_down.stabilization;
        let (mut up, mut down) = (desired, desired);
        for &(at, replicas) in &self.recommendations {
            if at > up_cutoff {
                up = up.min(replicas);
            }
            if at > down_cutoff {
                down = down.max(replicas);
            }
        }
        self.recommendations.push((now, desired));
        current.max(up).min(down)
    }

    fn rate_limit(&self, now: Seconds, current: i64, desired: i64) -> i64 {
        let (lo, hi) = (self.min_replicas, self.max_replicas);
        if desired > current {
            let limit = self.scale_up_limit(now, current).max(current);
            desired.min(limit).min(hi).max(current.min(hi))
        } else if desired < current {
            let limit = self.scale_down_limit(now, current).min(current);
            desired.max(limit).max(lo).min(current.max(lo))
        } else {
            desired.clamp(lo, hi)
        }
    }

    /// Replicas at the start of the `period` ending `now`: the changes made inside it undone,
    /// so that a policy limits the whole period's change, not just this step's.
    fn replicas_at_period_start(&self, now: Seconds, current: i64, period: Seconds) -> i64 {
        let within = |events: &[Event]| -> i64 {
            events
                .iter()
                .filter(|e| e.at > now - period)
                .map(|e| e.change)
                .sum()
        };
        current - within(&self.ups) + within(&self.downs)
    }

    fn scale_up_limit(&self, now: Seconds, current: i64) -> i64 {
        let rules = &self.behavior.scale_up;
        let proposals = rules.policies.iter().map(|p| {
            let start = self.replicas_at_period_start(now, current, p.period);
            match p.kind {
                PolicyType::Pods => start + p.value,
                PolicyType::Percent => {
                    (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64
                }
            }
        });
        match rules.select {
            SelectPolicy::Disabled => current,
            SelectPolicy::Max => proposals.max().unwrap_or(current),
            SelectPolicy::Min => proposals.min().unwrap_or(current),
        }
    }

    fn scale_down_limit(&self, now: Seconds, current: i64) -> i64 {
        let rules = &self.behavior.scale_down;
        let proposals = rules.policies.iter().map(|p| {
            let start = self.replicas_at_period_start(now, current, p.period);
            match p.kind {
                PolicyType::Pods => start - p.value,
                // The HPA truncates here (and rounds up when scaling up).
                PolicyType::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
            }
        });
        match rules.select {
            SelectPolicy::Disabled => current,
            // The most permissive scale-down policy is the one allowing the fewest replicas.
            SelectPolicy::Max => proposals.min().unwrap_or(current),
            SelectPolicy::Min => proposals.max().unwrap_or(current),
        }
    }

    /// Drops history older than every window, so a long replay keeps constant memory.
    fn forget(&mut self, now: Seconds) {
        let b = &self.behavior;
        let longest_window = b.scale_up.stabilization.max(b.scale_down.stabilization);
        let longest_period = b
            .scale_up
            .policies
            .iter()
            .chain(&b.scale_down.policies)
            .map(|p| p.period)
            .max()
            .unwrap_or(0);
        self.recommendations
            .retain(|&(at, _)| at > now - longest_window);
        self.ups.retain(|e| e.at > now - longest_period);
        self.downs.retain(|e| e.at > now - longest_period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa() -> Normalizer {
        Normalizer::new(Some(Behavior::default()), 1, 100)
    }

    #[test]
    fn behavior_prints_in_the_hpa_spelling() {
        assert_eq!(
            Behavior::default().to_string(),
            "{scaleUp: {stabilizationWindowSeconds: 0, selectPolicy: Max, policies: [{type: Pods, value: 4, periodSeconds: 15}, {type: Percent, value: 100, periodSeconds: 15}]}, \
             scaleDown: {stabilizationWindowSeconds: 300, selectPolicy: Max, policies: [{type: Percent, value: 100, periodSeconds: 15}]}}"
        );
        assert!(describe(None).contains("max(2 × current, 4)"));
    }

    #[test]
    fn default_scale_up_is_the_larger_of_four_pods_or_double() {
        // From 2: max(2 + 4, 2 * 2) = 6. From 10: max(14, 20) = 20.
        assert_eq!(hpa().normalize(0, 2, 50), 6);
        assert_eq!(hpa().normalize(0, 10, 50), 20);
        // Within one 15 s period the earlier increase counts: 6 -> still limited to 6.
        let mut h = hpa();
        assert_eq!(h.normalize(0, 2, 50), 6);
        assert_eq!(h.normalize(10, 6, 50), 6);
        // After the period, the next step is allowed: max(6 + 4, 12) = 12.
        assert_eq!(h.normalize(15, 6, 50), 12);
    }

    #[test]
    fn without_a_behavior_block_scale_up_is_at_most_double_or_four_per_sync() {
        // normalizeDesiredReplicas: max(2 × current, 4), each sync on its own (no period).
        let legacy = || Normalizer::new(None, 1, 1000);
        assert_eq!(legacy().normalize(0, 1, 50), 4);
        assert_eq!(legacy().normalize(0, 2, 50), 4);
        assert_eq!(legacy().normalize(0, 3, 50), 6);
        assert_eq!(legacy().normalize(0, 10, 50), 20);
        assert_eq!(legacy().normalize(0, 10, 13), 13);
        // A spike for 100 pods from 2, one sync after another: 4, 8, 16, 32, 64, 100 (the
        // behavior path's defaults would go 6, 12, 24, 48, 96, 100).
        let mut h = legacy();
        let mut replicas = 2;
        let path: Vec<i64> = (0..6)
            .map(|k| {
                replicas = h.normalize(k * 15, replicas, 100);
                replicas
            })
            .collect();
        assert_eq!(path, [4, 8, 16, 32, 64, 100]);
        // maxReplicas still caps it.
        assert_eq!(Normalizer::new(None, 1, 5).normalize(0, 3, 50), 5);
    }

    #[test]
    fn without_a_behavior_block_scale_down_waits_five_minutes_then_goes_at_once() {
        let mut h = Normalizer::new(None, 2, 100);
        assert_eq!(h.normalize(0, 20, 20), 20);
        // The highest recommendation of the last 300 s holds, the window's start included.
        assert_eq!(h.normalize(15, 20, 3), 20);
        assert_eq!(h.normalize(300, 20, 3), 20);
        // Then straight to the recommendation (no rate limit), but not below minReplicas.
        assert_eq!(h.normalize(301, 20, 1), 3);
        assert_eq!(h.normalize(316, 3, 1), 3);
        assert_eq!(h.normalize(601, 3, 1), 2);
        // An earlier higher recommendation that the scale-up limit held back still counts.
        let mut h = Normalizer::new(None, 1, 100);
        assert_eq!(h.normalize(0, 2, 40), 4);
        assert_eq!(h.normalize(15, 4, 10), 8);
        assert_eq!(h.normalize(30, 8, 10), 16);
    }

    #[test]
    fn the_controller_seeds_its_window_with_the_current_count_at_start() {
        // recordInitialRecommendation: the first sync finds `current` already recorded, so a
        // low first recommendation cannot scale down for one scale-down window, on both paths.
        for behavior in [None, Some(Behavior::default())] {
            let mut h = Normalizer::new(behavior.clone(), 1, 100);
            assert_eq!(h.normalize(0, 10, 2), 10, "{behavior:?}");
            assert_eq!(h.normalize(290, 10, 2), 10, "{behavior:?}");
            assert_eq!(h.normalize(305, 10, 2), 2, "{behavior:?}");
        }
        // Seeded once only: a later current count is not recorded.
        let mut h = Normalizer::new(Some(Behavior::default()), 1, 100);
        h.seed(0, 3);
        h.seed(10, 50);
        assert_eq!(h.normalize(20, 50, 3), 3);
        // A scale-up stabilization window holds scale-up back the same way: the seed is the
        // lowest recommendation in it.
        let mut b = Behavior::default();
        b.scale_up.stabilization = 60;
        let mut h = Normalizer::new(Some(b), 1, 100);
        assert_eq!(h.normalize(0, 5, 9), 5);
        assert_eq!(h.normalize(45, 5, 9), 5);
        assert_eq!(h.normalize(61, 5, 9), 9);
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut h = hpa();
        assert_eq!(h.normalize(0, 10, 10), 10);
        // Load drops: the recommendation of 10 from t=0 holds the replicas for 300 s.
        assert_eq!(h.normalize(15, 10, 3), 10);
        assert_eq!(h.normalize(299, 10, 3), 10);
        // Once it leaves the window, the highest recent recommendation (3) wins.
        assert_eq!(h.normalize(300, 10, 3), 3);
    }

    #[test]
    fn bounds_and_disabled_directions() {
        let mut h = Normalizer::new(Some(Behavior::default()), 2, 8);
        assert_eq!(h.normalize(0, 4, 50), 8);
        // Replicas outside the bounds go straight to the nearest bound, whatever the metric.
        let mut h = Normalizer::new(Some(Behavior::default()), 10, 20);
        assert_eq!(h.normalize(0, 1, 3), 10);
        assert_eq!(h.normalize(15, 40, 35), 20);
        let mut b = Behavior::default();
        b.scale_up.select = SelectPolicy::Disabled;
        assert_eq!(Normalizer::new(Some(b), 1, 100).normalize(0, 4, 50), 4);
        let b = Behavior {
            scale_down: Rules {
                stabilization: 0,
                select: SelectPolicy::Min,
                policies: vec![
                    ScalingPolicy {
                        kind: PolicyType::Pods,
                        value: 1,
                        period: 60,
                    },
                    ScalingPolicy {
                        kind: PolicyType::Percent,
                        value: 50,
                        period: 60,
                    },
                ],
            },
            ..Behavior::default()
        };
        // Min picks the smaller change: 1 pod rather than half.
        let mut h = Normalizer::new(Some(b), 1, 100);
        assert_eq!(h.normalize(0, 10, 2), 9);
        // The pod removed at t=0 still counts within the 60 s period.
        assert_eq!(h.normalize(30, 9, 2), 9);
        assert_eq!(h.normalize(61, 9, 2), 8);
    }
}
