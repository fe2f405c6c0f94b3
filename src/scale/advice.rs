//! Headroom advice, measured rather than guessed: the policy is replayed again at the
//! neighbouring quantile and the change in shortfall and cost is reported.

use crate::forecast::format_level;
use crate::series::Series;

use super::replay::{replay_with, Forecasts, Outcome, ReplayError, ReplaySettings};

/// The quantiles advice may move to; forecasts for a replay that will be advised on must
/// carry their intervals (see [`Forecasts::make`]).
pub const ADVICE_QUANTILES: [f64; 4] = [0.8, 0.9, 0.95, 0.99];

/// A measured change of headroom.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The quantile replayed.
    pub quantile: f64,
    /// Under-provisioned steps, percent, at the quantile the replay used.
    pub underprovisioned_before: f64,
    /// The same at [`Advice::quantile`].
    pub underprovisioned_after: f64,
    /// Change in replica-hours, percent.
    pub cost_change_pct: f64,
    /// True when the advice raises the headroom.
    pub raise: bool,
}

impl std::fmt::Display for Advice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} headroom to p{}: under-provisioned {:.1}% → {:.1}% at {:+.0}% replica-hours",
            if self.raise { "raise" } else { "lower" },
            format_level((self.quantile * 1000.0).round() / 10.0),
            self.underprovisioned_before,
            self.underprovisioned_after,
            self.cost_change_pct
        )
    }
}

/// Advice for `outcome` (replayed with `settings` and `forecasts`): a higher quantile when
/// more than 1% of steps were short, a lower one when under 0.5% were short and over 30% of
/// the ready capacity sat idle; `None` when neither applies or no quantile is left.
pub fn advise(
    trace: &Series,
    forecasts: &Forecasts,
    settings: &ReplaySettings,
    outcome: &Outcome,
) -> Result<Option<Advice>, ReplayError> {
    let q = settings.policy.quantile;
    let candidate = if outcome.underprovisioned_pct > 1.0 {
        ADVICE_QUANTILES.iter().copied().find(|&c| c > q + 1e-9)
    } else if outcome.underprovisioned_pct < 0.5 && outcome.waste_pct > 30.0 {
        ADVICE_QUANTILES
            .iter()
            .rev()
            .copied()
            .find(|&c| c < q - 1e-9)
    } else {
        None
    };
    let Some(candidate) = candidate else {
        return Ok(None);
    };
    let mut other = settings.clone();
    other.policy.quantile = candidate;
    let rerun = replay_with(trace, forecasts, &other, &[outcome.policy])?;
    let Some(new) = rerun.outcomes.first() else {
        return Ok(None);
    };
    let cost_change_pct = if outcome.replica_hours > 0.0 {
        100.0 * (new.replica_hours / outcome.replica_hours - 1.0)
    } else {
        0.0
    };
    Ok(Some(Advice {
        quantile: candidate,
        underprovisioned_before: outcome.underprovisioned_pct,
        underprovisioned_after: new.underprovisioned_pct,
        cost_change_pct,
        raise: candidate > q,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_reads_as_before() {
        let a = Advice {
            quantile: 0.95,
            underprovisioned_before: 4.6,
            underprovisioned_after: 2.8,
            cost_change_pct: 4.2,
            raise: true,
        };
        assert_eq!(
            a.to_string(),
            "raise headroom to p95: under-provisioned 4.6% → 2.8% at +4% replica-hours"
        );
    }
}
