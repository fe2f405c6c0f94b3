//! The Kubernetes HPA's own replica calculation for an external metric with an
//! `AverageValue` target: the reactive baseline prescale is measured against.
//!
//! As `GetExternalMetricReplicas` in `pkg/controller/podautoscaler/replica_calculator.go`:
//! the usage ratio is `total / (target · current)`; within the tolerance (default 0.1) the
//! replicas stay as they are, otherwise the raw recommendation is `ceil(total / target)`.
//! The recommendation then goes through the `behavior` rules ([`Normalizer`]).

use super::behavior::{Behavior, Normalizer, Seconds};

/// The HPA's default tolerance: no change while usage is within 10% of the target.
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// A reactive HPA for one workload.
#[derive(Debug, Clone)]
pub struct ReactiveHpa {
    target_per_pod: f64,
    tolerance: f64,
    normalizer: Normalizer,
}

impl ReactiveHpa {
    /// An HPA whose target is `target_per_pod` metric units per replica (the `AverageValue`),
    /// bounded by `[min_replicas, max_replicas]`, with `behavior` rules (`None`: no `behavior`
    /// block, the controller's legacy path) and the default tolerance.
    pub fn new(
        target_per_pod: f64,
        min_replicas: i64,
        max_replicas: i64,
        behavior: Option<Behavior>,
    ) -> Self {
        Self {
            target_per_pod,
            tolerance: DEFAULT_TOLERANCE,
            normalizer: Normalizer::new(behavior, min_replicas, max_replicas),
        }
    }

    /// One sync at time `now`: the metric's `total` over all pods and the `current` replica
    /// count in, the replicas the HPA sets out. A missing metric (`NaN`) keeps the replicas, as
    /// the HPA does when it cannot read its metric.
    pub fn sync(&mut self, now: Seconds, current: i64, total: f64) -> i64 {
        self.sync_many(now, current, &[total])
    }

    /// One sync for an HPA with several metrics of the same target (e.g. the observed load
    /// and a forecast of it, as Crane's EHPA runs them): each metric proposes replicas with
    /// the tolerance applied on its own, the largest proposal wins (the HPA's rule), and
    /// missing metrics are skipped; with none left the replicas stay. As in the controller's
    /// `computeReplicasForMetrics`, a missing metric blocks scaling down: the proposals that
    /// remain may only scale up, else the replicas stay (and nothing is recorded).
    pub fn sync_many(&mut self, now: Seconds, current: i64, totals: &[f64]) -> i64 {
        // The controller seeds its recommendations before it reads any metric.
        self.normalizer.seed(now, current);
        if self.target_per_pod <= 0.0 {
            return current;
        }
        let raw = totals
            .iter()
            .filter(|t| t.is_finite())
            .map(|&total| self.proposal(current, total))
            .max();
        let some_missing = totals.iter().any(|t| !t.is_finite());
        match raw {
            Some(raw) if !(some_missing && raw < current) => {
                self.normalizer.normalize(now, current, raw)
            }
            _ => current,
        }
    }

    /// Sets the tolerance (the HPA's default is [`DEFAULT_TOLERANCE`]; Kubernetes 1.33
    /// allows one per HPA).
    pub fn with_tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// One metric's replica proposal: unchanged within the tolerance, else `ceil(total /
    /// target)`.
    fn proposal(&self, current: i64, total: f64) -> i64 {
        if current > 0 {
            let ratio = total / (self.target_per_pod * current as f64);
            if (ratio - 1.0).abs() <= self.tolerance {
                return current;
            }
        }
        (total / self.target_per_pod).ceil() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_metric_outside_the_tolerance() {
        let mut hpa = ReactiveHpa::new(100.0, 1, 50, Some(Behavior::default()));
        // 5 pods at 105 req/s each: within 10%, no change.
        assert_eq!(hpa.sync(0, 5, 525.0), 5);
        // 5 pods at 130 each: ceil(650 / 100) = 7.
        assert_eq!(hpa.sync(15, 5, 650.0), 7);
        // A missing metric changes nothing.
        assert_eq!(hpa.sync(30, 7, f64::NAN), 7);
    }

    #[test]
    fn a_spike_is_limited_by_the_default_scale_up_policy() {
        let mut hpa = ReactiveHpa::new(10.0, 1, 1000, Some(Behavior::default()));
        // Load for 100 pods arrives at once: 2 -> 6 -> 12 -> 24 ... every 15 s.
        let mut replicas = 2;
        let mut path = vec![];
        for k in 0..5 {
            replicas = hpa.sync(k * 15, replicas, 1000.0);
            path.push(replicas);
        }
        assert_eq!(path, [6, 12, 24, 48, 96]);
    }

    #[test]
    fn without_a_behavior_block_a_spike_takes_the_legacy_path() {
        let mut hpa = ReactiveHpa::new(10.0, 1, 1000, None);
        let mut replicas = 2;
        let mut path = vec![];
        for k in 0..5 {
            replicas = hpa.sync(k * 15, replicas, 1000.0);
            path.push(replicas);
        }
        assert_eq!(path, [4, 8, 16, 32, 64]);
    }

    #[test]
    fn a_missing_metric_at_the_first_sync_still_seeds_the_window() {
        let mut hpa = ReactiveHpa::new(100.0, 1, 100, None);
        assert_eq!(hpa.sync(0, 10, f64::NAN), 10);
        // The seed of 10 at t=0 holds the replicas until it leaves the 300 s window.
        assert_eq!(hpa.sync(100, 10, 200.0), 10);
        assert_eq!(hpa.sync(301, 10, 200.0), 2);
    }

    #[test]
    fn a_missing_metric_blocks_scaling_down_but_not_up() {
        let no_stabilization = Behavior {
            scale_down: crate::scale::behavior::Rules {
                stabilization: 0,
                ..Behavior::default().scale_down
            },
            ..Behavior::default()
        };
        let mut hpa = ReactiveHpa::new(100.0, 1, 100, Some(no_stabilization));
        // Alone, 200 of load on 10 pods would scale down to 2; with the other metric missing
        // the HPA keeps 10.
        assert_eq!(hpa.sync_many(0, 10, &[200.0, f64::NAN]), 10);
        assert_eq!(hpa.sync_many(15, 10, &[1500.0, f64::NAN]), 15);
        assert_eq!(hpa.sync_many(30, 15, &[200.0, 300.0]), 3);
    }

    #[test]
    fn with_several_metrics_the_largest_proposal_wins() {
        let mut hpa = ReactiveHpa::new(100.0, 1, 50, Some(Behavior::default()));
        // Observed 300 (3 pods), forecast 900 (9 pods): 9.
        assert_eq!(hpa.sync_many(0, 5, &[300.0, 900.0]), 9);
        // A missing forecast leaves the observed metric in charge.
        assert_eq!(hpa.sync_many(15, 9, &[f64::NAN, 1200.0]), 12);
    }
}
