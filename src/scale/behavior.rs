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

/// A change of replicas at a time, kept to apply the rate limits.
#[derive(Debug, Clone, Copy)]
struct Event {
    at: Seconds,
    change: i64,
}

/// The HPA's memory for one workload: past recommendations and past scaling events.
#[derive(Debug, Clone)]
pub struct Normalizer {
    behavior: Behavior,
    min_replicas: i64,
    max_replicas: i64,
    recommendations: Vec<(Seconds, i64)>,
    ups: Vec<Event>,
    downs: Vec<Event>,
}

impl Normalizer {
    /// A normalizer with no history.
    pub fn new(behavior: Behavior, min_replicas: i64, max_replicas: i64) -> Self {
        Self {
            behavior,
            min_replicas,
            max_replicas,
            recommendations: Vec::new(),
            ups: Vec::new(),
            downs: Vec::new(),
        }
    }

    /// Turns a raw recommendation at time `now` into the replicas the HPA would set, given
    /// `current` replicas, and records the decision.
    ///
    /// Replicas outside `[min, max]` are first brought to the nearest bound, with no rate
    /// limit and nothing recorded, as the controller does before it reads any metric.
    pub fn normalize(&mut self, now: Seconds, current: i64, desired: i64) -> i64 {
        if current < self.min_replicas || current > self.max_replicas {
            return current.clamp(self.min_replicas, self.max_replicas);
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
        Normalizer::new(Behavior::default(), 1, 100)
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
        let mut h = Normalizer::new(Behavior::default(), 2, 8);
        assert_eq!(h.normalize(0, 4, 50), 8);
        // Replicas outside the bounds go straight to the nearest bound, whatever the metric.
        let mut h = Normalizer::new(Behavior::default(), 10, 20);
        assert_eq!(h.normalize(0, 1, 3), 10);
        assert_eq!(h.normalize(15, 40, 35), 20);
        let mut b = Behavior::default();
        b.scale_up.select = SelectPolicy::Disabled;
        assert_eq!(Normalizer::new(b, 1, 100).normalize(0, 4, 50), 4);
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
        let mut h = Normalizer::new(b, 1, 100);
        assert_eq!(h.normalize(0, 10, 2), 9);
        // The pod removed at t=0 still counts within the 60 s period.
        assert_eq!(h.normalize(30, 9, 2), 9);
        assert_eq!(h.normalize(61, 9, 2), 8);
    }
}
