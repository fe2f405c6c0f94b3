//! Cost against shortfall, as curves rather than points: what predictive scaling is worth.
//!
//! One replay compares each policy at one setting, which is not fair to the HPA: nobody runs
//! it at 100% of a pod's capacity. Here each policy is replayed along a sweep of its own knob
//! and every replay is a point (replica-hours, shortfall):
//!
//! - the reactive HPA at target utilisations `u` ([`HPA_TARGETS`]: its `AverageValue` target
//!   is `u × capacity`; it still reads the observed load);
//! - predictive and hybrid at forecast quantiles ([`QUANTILES`]);
//! - two references that read the future: `rate-oracle` (each step's level from its
//!   neighbours, see [`Forecasts::knowing_the_rate`]) at the same quantiles, and `future`
//!   (the trace itself, [`Forecasts::the_future`]): how close to perfect the HPA's mechanics
//!   allow.
//!
//! Shortfall is measured three ways ([`Point`]); comparisons use the unserved load. A
//! policy's [`Frontier`] keeps its Pareto-efficient points and interpolates linearly between
//! them, so [`compare`] can say, at each HPA target, how many replica-hours a policy needs for
//! the HPA's unserved load and how much load it leaves unserved at the HPA's cost.

use rayon::prelude::*;

use crate::series::Series;

use super::replay::{replay_with, Forecasts, Outcome, ReplayError, ReplaySettings, Strategy};

/// The reactive HPA's target utilisations swept: its `AverageValue` target is this fraction
/// of a pod's capacity. SREs run 0.5–0.8 to keep headroom.
pub const HPA_TARGETS: [f64; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The forecast quantiles predictive, hybrid and the rate reference are swept over: from the
/// median (no headroom) to p99.
pub const QUANTILES: [f64; 8] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];

/// The curves of a frontier table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// The HPA on the observed load, swept over target utilisations.
    Reactive,
    /// The HPA on prescale's forecast, swept over quantiles.
    Predictive,
    /// The HPA on both, swept over quantiles.
    Hybrid,
    /// The predictive policy fed each step's level (reads the future), swept over quantiles.
    RateOracle,
    /// The predictive policy fed the future itself: one point. Not always free of shortfall:
    /// a burst that needs more pods than the HPA's scale-up limits add within one start-up
    /// still catches it (on the AMZN trace, 0.14% of the load under the legacy path's
    /// max(2 × current, 4) per sync; none with an unlimited scale-up policy).
    Future,
}

impl Curve {
    /// Every curve, in table order.
    pub const ALL: [Curve; 5] = [
        Self::Reactive,
        Self::Predictive,
        Self::Hybrid,
        Self::RateOracle,
        Self::Future,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reactive => "reactive",
            Self::Predictive => "predictive",
            Self::Hybrid => "hybrid",
            Self::RateOracle => "rate-oracle",
            Self::Future => "future",
        }
    }

    /// True for the curves that read the future: references, not policies.
    pub fn is_reference(self) -> bool {
        matches!(self, Self::RateOracle | Self::Future)
    }
}

/// One replay: a policy at one setting, its cost and its shortfall three ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Which curve.
    pub curve: Curve,
    /// The HPA's target utilisation (reactive) or the quantile provisioned (the others);
    /// `None` for the future-fed replay, which has no knob that matters.
    pub setting: Option<f64>,
    /// Replica-hours paid for.
    pub replica_hours: f64,
    /// Percent of scored steps short of capacity.
    pub underprovisioned_pct: f64,
    /// Percent of the load the ready capacity could not serve.
    pub unserved_pct: f64,
    /// Minutes of steps short of capacity.
    pub slo_violation_minutes: f64,
}

impl Point {
    /// The point of a replayed outcome.
    pub fn of(curve: Curve, setting: Option<f64>, o: &Outcome) -> Self {
        Self {
            curve,
            setting,
            replica_hours: o.replica_hours,
            underprovisioned_pct: o.underprovisioned_pct,
            unserved_pct: o.unserved_pct,
            slo_violation_minutes: o.slo_violation_minutes,
        }
    }
}

/// What a frontier sweep replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The reactive HPA's target utilisations.
    pub targets: Vec<f64>,
    /// The quantiles of predictive, hybrid and the rate reference.
    pub quantiles: Vec<f64>,
    /// Also replay the references that read the future (`rate-oracle`, `future`).
    pub references: bool,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            targets: HPA_TARGETS.to_vec(),
            quantiles: QUANTILES.to_vec(),
            references: true,
        }
    }
}

/// Replays `trace` along `sweep`: `forecasts` (made for `settings` with the intervals of
/// every quantile of the sweep, see [`Forecasts::make`]) serve predictive and hybrid; the
/// references make their own. Replays are independent, so they run in parallel. Points come
/// in table order: curve by curve, each by its setting.
pub fn sweep(
    trace: &Series,
    forecasts: &Forecasts,
    settings: &ReplaySettings,
    sweep: &Sweep,
) -> Result<Vec<Point>, ReplayError> {
    settings.validate(trace)?;
    let references = sweep.references.then(|| {
        // Neither reference has an interval of its own: their headroom is calibrated.
        let calibrated = ReplaySettings {
            calibrate: true,
            ..settings.clone()
        };
        (
            Forecasts::knowing_the_rate(trace, &calibrated, &sweep.quantiles),
            Forecasts::the_future(trace, &calibrated, &[settings.policy.quantile]),
            calibrated,
        )
    });
    let none = Forecasts::none();
    // (curve, setting, settings, forecasts, strategy) per replay.
    let mut jobs: Vec<(Curve, Option<f64>, ReplaySettings, &Forecasts, Strategy)> = vec![];
    for &u in &sweep.targets {
        let s = ReplaySettings {
            reactive_utilisation: u,
            ..settings.clone()
        };
        jobs.push((Curve::Reactive, Some(u), s, &none, Strategy::Reactive));
    }
    for (curve, strategy) in [
        (Curve::Predictive, Strategy::Predictive),
        (Curve::Hybrid, Strategy::Hybrid),
    ] {
        for &q in &sweep.quantiles {
            let mut s = settings.clone();
            s.policy.quantile = q;
            jobs.push((curve, Some(q), s, forecasts, strategy));
        }
    }
    if let Some((rate, future, calibrated)) = &references {
        for &q in &sweep.quantiles {
            let mut s = calibrated.clone();
            s.policy.quantile = q;
            jobs.push((Curve::RateOracle, Some(q), s, rate, Strategy::Predictive));
        }
        jobs.push((
            Curve::Future,
            None,
            calibrated.clone(),
            future,
            Strategy::Predictive,
        ));
    }
    jobs.par_iter()
        .map(|(curve, setting, s, f, strategy)| {
            let r = replay_with(trace, f, s, &[*strategy])?;
            let o = r.outcomes.first().ok_or_else(|| {
                ReplayError::Invalid("a replay of one policy returned no outcome".into())
            })?;
            Ok(Point::of(*curve, *setting, o))
        })
        .collect()
}

/// Where a frontier stands at a given shortfall or cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// On the frontier: a replayed point or interpolated between two.
    At(f64),
    /// Beyond the frontier's reach on the cheap side, or the good one: the value is a bound
    /// from its end point (a policy's cheapest setting already does better than asked, so it
    /// needs *at most* that much; a cost above its dearest setting leaves *at most* that
    /// shortfall).
    AtMost(f64),
    /// The frontier cannot get there (a shortfall lower than its best, a cost lower than its
    /// cheapest setting).
    Out,
}

impl Reach {
    /// The value, exact or a bound.
    pub fn value(self) -> Option<f64> {
        match self {
            Self::At(v) | Self::AtMost(v) => Some(v),
            Self::Out => None,
        }
    }
}

/// A policy's Pareto frontier of (replica-hours, shortfall): sorted by cost, each point
/// strictly less short than the cheaper ones. Replays are noisy, so a dearer setting is not
/// always less short; such a point is dominated and dropped, as an operator would never pick
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontier {
    points: Vec<(f64, f64)>,
}

impl Frontier {
    /// The frontier of `(cost, shortfall)` points; non-finite points are left out.
    pub fn new(points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let mut all: Vec<(f64, f64)> = points
            .into_iter()
            .filter(|(c, s)| c.is_finite() && s.is_finite())
            .collect();
        // By cost, and at equal cost the least short first, so it is the one kept.
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(all.len());
        for p in all {
            if points.last().is_none_or(|last| p.1 < last.1) {
                points.push(p);
            }
        }
        Self { points }
    }

    /// The frontier of one curve's points, with shortfall as unserved load.
    pub fn of(points: &[Point], curve: Curve) -> Self {
        Self::of_measure(points, curve, |p| p.unserved_pct)
    }

    /// The frontier of one curve's points, with shortfall as `measure` reads it (unserved
    /// load, SLO-violation minutes, steps short).
    pub fn of_measure(points: &[Point], curve: Curve, measure: impl Fn(&Point) -> f64) -> Self {
        Self::new(
            points
                .iter()
                .filter(|p| p.curve == curve)
                .map(|p| (p.replica_hours, measure(p))),
        )
    }

    /// The efficient points, cheapest first.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// The replica-hours needed to leave no more than `shortfall`.
    pub fn cost_at(&self, shortfall: f64) -> Reach {
        let (Some(&first), Some(&last)) = (self.points.first(), self.points.last()) else {
            return Reach::Out;
        };
        if !shortfall.is_finite() || shortfall < last.1 {
            return Reach::Out;
        }
        if shortfall > first.1 {
            return Reach::AtMost(first.0);
        }
        // Shortfall falls along the frontier: find the segment that spans it.
        for w in self.points.windows(2) {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            if shortfall <= s0 && shortfall >= s1 {
                return Reach::At(c0 + (c1 - c0) * (s0 - shortfall) / (s0 - s1));
            }
        }
        // One point, or exactly the first.
        Reach::At(first.0)
    }

    /// The shortfall left at `cost` replica-hours.
    pub fn shortfall_at(&self, cost: f64) -> Reach {
        let (Some(&first), Some(&last)) = (self.points.first(), self.points.last()) else {
            return Reach::Out;
        };
        if !cost.is_finite() || cost < first.0 {
            return Reach::Out;
        }
        if cost > last.0 {
            return Reach::AtMost(last.1);
        }
        for w in self.points.windows(2) {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            if cost >= c0 && cost <= c1 {
                return Reach::At(s0 + (s1 - s0) * (cost - c0) / (c1 - c0));
            }
        }
        Reach::At(first.1)
    }
}

/// One policy measured against the HPA at one of its targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgainstHpa {
    /// The policy (or reference).
    pub curve: Curve,
    /// Replica-hours it needs to leave no more load unserved than the HPA.
    pub cost_at_hpa_shortfall: Reach,
    /// Unserved load, percent, it leaves at the HPA's replica-hours.
    pub shortfall_at_hpa_cost: Reach,
    /// Replica-hours it needs for no more SLO-violation minutes than the HPA: the same
    /// question asked of the measure that counts how long users were short, not how much.
    pub cost_at_hpa_slo_minutes: Reach,
}

impl AgainstHpa {
    /// Percent fewer replica-hours than the HPA for the HPA's shortfall (negative: more); a
    /// lower bound when the cost is one ([`Reach::AtMost`]).
    pub fn saving_pct(&self, hpa_cost: f64) -> Option<f64> {
        saving(self.cost_at_hpa_shortfall, hpa_cost)
    }

    /// [`AgainstHpa::saving_pct`] for the HPA's SLO-violation minutes.
    pub fn slo_saving_pct(&self, hpa_cost: f64) -> Option<f64> {
        saving(self.cost_at_hpa_slo_minutes, hpa_cost)
    }
}

/// Percent fewer replica-hours than `hpa_cost` (negative: more).
fn saving(cost: Reach, hpa_cost: f64) -> Option<f64> {
    let cost = cost.value()?;
    (hpa_cost > 0.0).then(|| 100.0 * (1.0 - cost / hpa_cost))
}

/// Every other curve against the HPA at one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The HPA's target utilisation.
    pub target: f64,
    /// The HPA's replay at that target.
    pub hpa: Point,
    /// The other curves, in table order.
    pub others: Vec<AgainstHpa>,
}

/// At each HPA target in `points`, where every other curve stands: the replica-hours it needs
/// for the HPA's unserved load (and for its SLO-violation minutes), and the unserved load it
/// leaves at the HPA's replica-hours.
pub fn compare(points: &[Point]) -> Vec<Comparison> {
    let frontiers: Vec<(Curve, Frontier, Frontier)> = Curve::ALL
        .into_iter()
        .filter(|&c| c != Curve::Reactive && points.iter().any(|p| p.curve == c))
        .map(|c| {
            let slo = Frontier::of_measure(points, c, |p| p.slo_violation_minutes);
            (c, Frontier::of(points, c), slo)
        })
        .collect();
    points
        .iter()
        .filter(|p| p.curve == Curve::Reactive)
        .filter_map(|hpa| {
            Some(Comparison {
                target: hpa.setting?,
                hpa: *hpa,
                others: frontiers
                    .iter()
                    .map(|(curve, f, slo)| AgainstHpa {
                        curve: *curve,
                        cost_at_hpa_shortfall: f.cost_at(hpa.unserved_pct),
                        shortfall_at_hpa_cost: f.shortfall_at(hpa.replica_hours),
                        cost_at_hpa_slo_minutes: slo.cost_at(hpa.slo_violation_minutes),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The one-line verdict for `curve` at the HPA target closest to `target`: "for the HPA's
/// shortfall at target 70% (…), predictive needs 23% fewer replica-hours". `None` when the
/// comparisons hold no HPA target or no such curve.
pub fn verdict(comparisons: &[Comparison], target: f64, curve: Curve) -> Option<String> {
    let (c, other) = closest(comparisons, target, curve)?;
    let head = format!(
        "for the HPA's shortfall at target {:.0}% ({:.2}% of the load unserved at {:.0} replica-hours), {}",
        c.target * 100.0,
        c.hpa.unserved_pct,
        c.hpa.replica_hours,
        curve.name()
    );
    Some(phrase(
        head,
        other.cost_at_hpa_shortfall,
        other.saving_pct(c.hpa.replica_hours),
        "leaves less unserved",
        "leave that little unserved",
    ))
}

/// [`verdict`] measured by SLO-violation minutes instead of unserved load: how long users
/// were short rather than how much.
pub fn slo_verdict(comparisons: &[Comparison], target: f64, curve: Curve) -> Option<String> {
    let (c, other) = closest(comparisons, target, curve)?;
    let head = format!(
        "for the HPA's SLO-violation minutes at target {:.0}% ({:.0} minutes at {:.0} replica-hours), {}",
        c.target * 100.0,
        c.hpa.slo_violation_minutes,
        c.hpa.replica_hours,
        curve.name()
    );
    Some(phrase(
        head,
        other.cost_at_hpa_slo_minutes,
        other.slo_saving_pct(c.hpa.replica_hours),
        "is short for fewer minutes",
        "be short for so few minutes",
    ))
}

/// The comparison at the HPA target closest to `target`, and `curve`'s place in it.
fn closest(
    comparisons: &[Comparison],
    target: f64,
    curve: Curve,
) -> Option<(&Comparison, &AgainstHpa)> {
    let c = comparisons.iter().min_by(|a, b| {
        (a.target - target)
            .abs()
            .total_cmp(&(b.target - target).abs())
    })?;
    Some((c, c.others.iter().find(|o| o.curve == curve)?))
}

/// "`head` needs N% fewer replica-hours (cost)", or more, or a bound, or out of reach.
fn phrase(head: String, cost: Reach, saving: Option<f64>, better: &str, reach: &str) -> String {
    match (cost, saving) {
        (Reach::At(cost), Some(s)) if s >= 0.0 => {
            format!("{head} needs {s:.0}% fewer replica-hours ({cost:.0})")
        }
        (Reach::At(cost), Some(s)) => {
            format!("{head} needs {:.0}% more replica-hours ({cost:.0})", -s)
        }
        (Reach::AtMost(cost), Some(s)) if s >= 0.0 => format!(
            "{head} needs at least {s:.0}% fewer replica-hours (its cheapest setting, {cost:.0}, already {better})"
        ),
        (Reach::AtMost(cost), Some(s)) => format!(
            "{head} needs at most {:.0}% more replica-hours (its cheapest setting, {cost:.0}, already {better})",
            -s
        ),
        _ => format!("{head} cannot {reach} at any setting swept"),
    }
}

/// The columns of the frontier table `simulate --frontier` prints.
pub const FRONTIER_COLUMNS: [&str; 7] = [
    "policy",
    "target_or_quantile",
    "replica_hours",
    "underprovisioned_pct",
    "unserved_pct",
    "slo_violation_minutes",
    "trace",
];

/// One row of the frontier table, in the order of [`FRONTIER_COLUMNS`].
pub fn frontier_record(p: &Point, trace: &str) -> Vec<String> {
    vec![
        p.curve.name().to_string(),
        p.setting.map_or(String::new(), |s| s.to_string()),
        format!("{:.1}", p.replica_hours),
        format!("{:.2}", p.underprovisioned_pct),
        format!("{:.3}", p.unserved_pct),
        format!("{:.0}", p.slo_violation_minutes),
        trace.to_string(),
    ]
}

/// The columns of the comparison table: per HPA target and other curve.
pub const COMPARISON_COLUMNS: [&str; 13] = [
    "hpa_target",
    "hpa_replica_hours",
    "hpa_unserved_pct",
    "policy",
    "replica_hours_at_hpa_unserved",
    "bound",
    "saving_pct",
    "unserved_pct_at_hpa_cost",
    "hpa_slo_violation_minutes",
    "replica_hours_at_hpa_slo_minutes",
    "slo_bound",
    "slo_saving_pct",
    "trace",
];

/// The rows of the comparison table for `comparisons`, in the order of
/// [`COMPARISON_COLUMNS`]: `bound` says whether the replica-hours are on the frontier (`at`),
/// an upper bound (`at_most`) or out of its reach (`out`, the cells left empty); `slo_bound`
/// says the same of the replica-hours for the HPA's SLO-violation minutes.
pub fn comparison_records(comparisons: &[Comparison], trace: &str) -> Vec<Vec<String>> {
    let cell =
        |r: Reach, digits: usize| r.value().map_or(String::new(), |v| format!("{v:.digits$}"));
    let bound = |r: Reach| {
        match r {
            Reach::At(_) => "at",
            Reach::AtMost(_) => "at_most",
            Reach::Out => "out",
        }
        .to_string()
    };
    let pct = |s: Option<f64>| s.map_or(String::new(), |s| format!("{s:.1}"));
    comparisons
        .iter()
        .flat_map(|c| {
            c.others.iter().map(move |o| {
                vec![
                    c.target.to_string(),
                    format!("{:.1}", c.hpa.replica_hours),
                    format!("{:.3}", c.hpa.unserved_pct),
                    o.curve.name().to_string(),
                    cell(o.cost_at_hpa_shortfall, 1),
                    bound(o.cost_at_hpa_shortfall),
                    pct(o.saving_pct(c.hpa.replica_hours)),
                    cell(o.shortfall_at_hpa_cost, 3),
                    format!("{:.0}", c.hpa.slo_violation_minutes),
                    cell(o.cost_at_hpa_slo_minutes, 1),
                    bound(o.cost_at_hpa_slo_minutes),
                    pct(o.slo_saving_pct(c.hpa.replica_hours)),
                    trace.to_string(),
                ]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::naive::SeasonalNaive;
    use crate::scale::policy::PolicySettings;
    use crate::series::Labels;
    use proptest::{prop_assert, proptest};

    #[test]
    fn dominated_points_are_dropped_and_the_rest_interpolated() {
        // (cost, shortfall): (12, 3) is dearer and shorter than (10, 2): dominated.
        let f = Frontier::new([
            (20.0, 0.0),
            (10.0, 2.0),
            (12.0, 3.0),
            (5.0, 6.0),
            (f64::NAN, 0.0),
        ]);
        assert_eq!(f.points(), [(5.0, 6.0), (10.0, 2.0), (20.0, 0.0)]);
        // Exactly on points, and halfway along a segment.
        assert_eq!(f.cost_at(2.0), Reach::At(10.0));
        assert_eq!(f.cost_at(4.0), Reach::At(7.5));
        assert_eq!(f.cost_at(1.0), Reach::At(15.0));
        assert_eq!(f.shortfall_at(15.0), Reach::At(1.0));
        // Beyond the cheap end: a bound; below the best shortfall or the cheapest cost: out.
        assert_eq!(f.cost_at(9.0), Reach::AtMost(5.0));
        assert_eq!(f.shortfall_at(30.0), Reach::AtMost(0.0));
        assert_eq!(f.cost_at(-1.0), Reach::Out);
        assert_eq!(f.shortfall_at(4.0), Reach::Out);
        assert_eq!(Frontier::new([]).cost_at(1.0), Reach::Out);
        // Equal cost: the less short point is kept.
        assert_eq!(
            Frontier::new([(5.0, 3.0), (5.0, 1.0)]).points(),
            [(5.0, 1.0)]
        );
    }

    fn points() -> impl proptest::strategy::Strategy<Value = Vec<(f64, f64)>> {
        proptest::collection::vec((1.0..1000.0f64, 0.0..50.0f64), 1..12)
    }

    proptest! {
        #[test]
        fn the_frontier_is_efficient_and_its_readings_monotone(
            raw in points(),
            a in 0.0..60.0f64,
            b in 0.0..60.0f64,
            c in 0.0..1100.0f64,
            d in 0.0..1100.0f64,
        ) {
            let f = Frontier::new(raw.clone());
            // Cost up, shortfall strictly down; every input point is matched or beaten.
            for w in f.points().windows(2) {
                prop_assert!(w[0].0 <= w[1].0 && w[0].1 > w[1].1);
            }
            for &(cost, short) in &raw {
                prop_assert!(f.points().iter().any(|&(c, s)| c <= cost && s <= short));
            }
            // Asking for less shortfall never costs less; paying more never leaves more.
            let (lo, hi) = (a.min(b), a.max(b));
            if let (Some(x), Some(y)) = (f.cost_at(lo).value(), f.cost_at(hi).value()) {
                prop_assert!(x >= y - 1e-9, "{x} at {lo} vs {y} at {hi}");
            }
            let (lo, hi) = (c.min(d), c.max(d));
            if let (Some(x), Some(y)) = (f.shortfall_at(lo).value(), f.shortfall_at(hi).value()) {
                prop_assert!(x >= y - 1e-9);
            }
            // On the frontier the two readings invert each other.
            if let Reach::At(cost) = f.cost_at(a) {
                let back = f.shortfall_at(cost).value().unwrap();
                prop_assert!(back <= a + 1e-6, "{back} vs {a}");
            }
        }
    }

    /// A daily cycle at 5-minute steps with a morning ramp and some noise, 6 days.
    fn trace() -> Series {
        let values = (0..288 * 6)
            .map(|k| {
                let hour = (k % 288) as f64 / 12.0;
                let wobble = ((k * 7919) % 37) as f64;
                200.0 + 800.0 * (-(hour - 14.0).powi(2) / 8.0).exp() + wobble
            })
            .collect();
        Series::new(Labels::named("load"), 0, 300_000, values).unwrap()
    }

    fn settings() -> ReplaySettings {
        ReplaySettings {
            capacity: 100.0,
            policy: PolicySettings {
                quantile: 0.9,
                startup: 300,
                min_replicas: 1,
                max_replicas: 100,
            },
            behavior: None,
            tolerance: 0.1,
            sync: 15,
            refit_every: 12,
            history: 288 * 3,
            warmup: 288 * 3,
            seasons: vec![288],
            calibrate: true,
            calibration_window: 2016,
            reactive_utilisation: 1.0,
        }
    }

    #[test]
    fn a_sweep_traces_every_curve_and_the_hpa_pays_for_its_headroom() {
        let (t, s) = (trace(), settings());
        let sweep_settings = Sweep {
            quantiles: vec![0.5, 0.8, 0.95],
            ..Sweep::default()
        };
        let forecasts = Forecasts::make(
            &t,
            &SeasonalNaive::seasonal(),
            &s,
            &sweep_settings.quantiles,
        );
        let points = sweep(&t, &forecasts, &s, &sweep_settings).unwrap();
        let count = |c: Curve| points.iter().filter(|p| p.curve == c).count();
        assert_eq!(Curve::ALL.map(count), [6, 3, 3, 3, 1], "{points:?}");
        let hpa: Vec<&Point> = points
            .iter()
            .filter(|p| p.curve == Curve::Reactive)
            .collect();
        // A lower target keeps more pods: replica-hours fall as the target rises, and the
        // unserved load does not fall.
        for w in hpa.windows(2) {
            assert!(w[0].replica_hours > w[1].replica_hours, "{w:?}");
            assert!(w[0].unserved_pct <= w[1].unserved_pct + 1e-9, "{w:?}");
        }
        for p in &points {
            assert!((0.0..=100.0).contains(&p.unserved_pct), "{p:?}");
            // A short step has unserved load and vice versa.
            assert_eq!(p.unserved_pct > 0.0, p.underprovisioned_pct > 0.0, "{p:?}");
            assert!((p.slo_violation_minutes > 0.0) == (p.underprovisioned_pct > 0.0));
        }
        // Fed the future, nothing is unserved.
        let future = points.iter().find(|p| p.curve == Curve::Future).unwrap();
        assert_eq!(future.unserved_pct, 0.0, "{future:?}");

        let comparisons = compare(&points);
        assert_eq!(comparisons.len(), 6);
        for c in &comparisons {
            assert_eq!(c.others.len(), 4);
            // At the HPA's own cost, the future leaves nothing unserved when it can afford it.
            let f = c.others.iter().find(|o| o.curve == Curve::Future).unwrap();
            if c.hpa.replica_hours >= future.replica_hours {
                assert_eq!(f.shortfall_at_hpa_cost, Reach::AtMost(0.0));
            }
        }
        let line = verdict(&comparisons, 0.7, Curve::Predictive).unwrap();
        assert!(
            line.starts_with("for the HPA's shortfall at target 70%"),
            "{line}"
        );
        assert!(line.contains("predictive"), "{line}");
        let records = comparison_records(&comparisons, "load");
        assert_eq!(records.len(), 6 * 4);
        assert!(records.iter().all(|r| r.len() == COMPARISON_COLUMNS.len()));
        let row = frontier_record(&points[0], "load");
        assert_eq!(row.len(), FRONTIER_COLUMNS.len());
        assert_eq!(row[..2], ["reactive".to_string(), "0.5".to_string()]);
    }

    #[test]
    fn a_verdict_says_fewer_or_more() {
        let hpa = Point {
            curve: Curve::Reactive,
            setting: Some(0.7),
            replica_hours: 100.0,
            underprovisioned_pct: 2.0,
            unserved_pct: 1.0,
            slo_violation_minutes: 60.0,
        };
        let at = |cost: Reach| Comparison {
            target: 0.7,
            hpa,
            others: vec![AgainstHpa {
                curve: Curve::Predictive,
                cost_at_hpa_shortfall: cost,
                shortfall_at_hpa_cost: Reach::Out,
                cost_at_hpa_slo_minutes: Reach::Out,
            }],
        };
        let say = |cost| verdict(&[at(cost)], 0.7, Curve::Predictive).unwrap();
        assert!(say(Reach::At(77.0)).ends_with("predictive needs 23% fewer replica-hours (77)"));
        assert!(say(Reach::At(110.0)).contains("needs 10% more replica-hours"));
        assert!(say(Reach::AtMost(60.0)).contains("at least 40% fewer"));
        assert!(say(Reach::Out).contains("cannot leave that little unserved"));
        assert_eq!(verdict(&[at(Reach::Out)], 0.7, Curve::Hybrid), None);
        let mut by_minutes = at(Reach::Out);
        by_minutes.others[0].cost_at_hpa_slo_minutes = Reach::At(80.0);
        let line = slo_verdict(&[by_minutes], 0.7, Curve::Predictive).unwrap();
        assert_eq!(line, "for the HPA's SLO-violation minutes at target 70% (60 minutes at 100 replica-hours), predictive needs 20% fewer replica-hours (80)");
    }
}
