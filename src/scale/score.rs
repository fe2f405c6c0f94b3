//! Scores from 0 to 100 for a replayed policy, an overall grade, and the formulas in words
//! (printed by `prescale simulate --help` and in the report).

use super::replay::Outcome;

/// The formulas, as users read them.
pub const FORMULAS: &str = "\
provisioning = 100 - under-provisioned % (share of steps whose load exceeded the ready capacity)
efficiency   = 0.6 x (100 - waste %) + 0.4 x utilisation %
               (waste: idle ready capacity / ready capacity; utilisation: load served / capacity paid for)
accuracy     = 100 x max(0, 1 - MASE / 2)
               (MASE of the load forecast the policy acted on, reactive: the last observed value;
                scaled by the seasonal naive error of the warm-up history: 1 scores 50)
stability    = 100 x max(0, 1 - scaling events per day / limit)
overall      = 0.4 provisioning + 0.3 efficiency + 0.15 accuracy + 0.15 stability
grade        = A from 90, B from 80, C from 70, D from 60, else F";

/// Scaling events per day that score zero stability, unless the user sets another.
pub const DEFAULT_EVENTS_PER_DAY_LIMIT: f64 = 96.0;

/// The scores of one outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Share of time with enough ready capacity.
    pub provisioning: f64,
    /// Little idle capacity, much of it used.
    pub efficiency: f64,
    /// Forecast accuracy from MASE.
    pub accuracy: f64,
    /// Few scaling events.
    pub stability: f64,
    /// The weighted mean.
    pub overall: f64,
    /// A to F.
    pub grade: char,
}

/// Scores `outcome`; `events_limit` is the scaling events per day that score zero stability.
pub fn score(outcome: &Outcome, events_limit: f64) -> Scores {
    let clamp = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, 100.0)
        } else {
            0.0
        }
    };
    let provisioning = clamp(100.0 - outcome.underprovisioned_pct);
    let efficiency = clamp(0.6 * (100.0 - outcome.waste_pct) + 0.4 * outcome.utilisation_pct);
    let accuracy = clamp(100.0 * (1.0 - outcome.mase / 2.0));
    let stability = if events_limit > 0.0 {
        clamp(100.0 * (1.0 - outcome.events_per_day / events_limit))
    } else {
        100.0
    };
    let overall = 0.4 * provisioning + 0.3 * efficiency + 0.15 * accuracy + 0.15 * stability;
    Scores {
        provisioning,
        efficiency,
        accuracy,
        stability,
        overall,
        grade: grade(overall),
    }
}

/// The letter for an overall score.
pub fn grade(overall: f64) -> char {
    match overall {
        v if v >= 90.0 => 'A',
        v if v >= 80.0 => 'B',
        v if v >= 70.0 => 'C',
        v if v >= 60.0 => 'D',
        _ => 'F',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::replay::Strategy;

    fn outcome(under: f64, waste: f64, util: f64, mase: f64, events: f64) -> Outcome {
        Outcome {
            policy: Strategy::Predictive,
            quantile: 0.9,
            underprovisioned_pct: under,
            unserved_pct: 0.0,
            slo_violation_minutes: 0.0,
            replica_hours: 0.0,
            peak_replicas: 0,
            scaling_events: 0,
            events_per_day: events,
            waste_pct: waste,
            utilisation_pct: util,
            mase,
            forecast_fallbacks: 0,
            steps: 1,
        }
    }

    #[test]
    fn the_formulas_as_documented() {
        let s = score(&outcome(2.0, 30.0, 65.0, 0.5, 24.0), 96.0);
        assert!((s.provisioning - 98.0).abs() < 1e-9);
        assert!((s.efficiency - (0.6 * 70.0 + 0.4 * 65.0)).abs() < 1e-9);
        assert!((s.accuracy - 75.0).abs() < 1e-9);
        assert!((s.stability - 75.0).abs() < 1e-9);
        let overall = 0.4 * 98.0 + 0.3 * 68.0 + 0.15 * 75.0 + 0.15 * 75.0;
        assert!((s.overall - overall).abs() < 1e-9);
        assert_eq!(s.grade, 'B');
        // Out-of-range inputs clamp; a missing MASE scores zero accuracy.
        let s = score(&outcome(0.0, 0.0, 100.0, f64::NAN, 500.0), 96.0);
        assert_eq!((s.accuracy, s.stability), (0.0, 0.0));
        assert_eq!(grade(59.9), 'F');
        assert_eq!(grade(90.0), 'A');
    }
}
