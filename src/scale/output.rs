//! A replay's results as tables: one summary record per strategy (the CSV `simulate` prints)
//! and the step-by-step record.

use polars::prelude::{Column, DataFrame, PolarsError};

use crate::source::table::timestamp_column;

use super::replay::{Outcome, Replay, Strategy};
use super::score::score;

/// The summary's columns: the figures first, then the scores; `unserved_pct` came later and
/// is last, so readers of the earlier columns by position keep working.
pub const SUMMARY_COLUMNS: [&str; 20] = [
    "policy",
    "underprovisioned_pct",
    "slo_violation_minutes",
    "replica_hours",
    "peak_replicas",
    "scaling_events",
    "provisioning_score",
    "efficiency_score",
    "accuracy_score",
    "stability_score",
    "overall_score",
    "grade",
    "waste_pct",
    "utilisation_pct",
    "mase",
    "forecast_fallbacks",
    "quantile",
    "capacity",
    "trace",
    "unserved_pct",
];

/// One summary record, in the order of [`SUMMARY_COLUMNS`]; `policy` is the row's label (a
/// strategy's name, or a reference such as `rate-oracle`).
pub fn summary_record(
    policy: &str,
    o: &Outcome,
    events_limit: f64,
    capacity: f64,
    trace: &str,
) -> Vec<String> {
    let s = score(o, events_limit);
    vec![
        policy.to_string(),
        format!("{:.2}", o.underprovisioned_pct),
        format!("{:.0}", o.slo_violation_minutes),
        format!("{:.1}", o.replica_hours),
        o.peak_replicas.to_string(),
        o.scaling_events.to_string(),
        format!("{:.1}", s.provisioning),
        format!("{:.1}", s.efficiency),
        format!("{:.1}", s.accuracy),
        format!("{:.1}", s.stability),
        format!("{:.1}", s.overall),
        s.grade.to_string(),
        format!("{:.2}", o.waste_pct),
        format!("{:.2}", o.utilisation_pct),
        format!("{:.3}", o.mase),
        o.forecast_fallbacks.to_string(),
        o.quantile.to_string(),
        capacity.to_string(),
        trace.to_string(),
        format!("{:.3}", o.unserved_pct),
    ]
}

/// `time, load`, then `ready_<policy>, replicas_<policy>` per strategy of `replay` (in the
/// order they were replayed, `strategies`).
pub fn steps_table(replay: &Replay, strategies: &[Strategy]) -> Result<DataFrame, PolarsError> {
    let times: Vec<i64> = replay.steps.iter().map(|s| s.time).collect();
    let mut columns = vec![
        timestamp_column("time", times.clone())?,
        Column::new(
            "load".into(),
            replay.steps.iter().map(|s| s.load).collect::<Vec<_>>(),
        ),
    ];
    for (i, p) in strategies.iter().enumerate() {
        columns.push(Column::new(
            format!("ready_{}", p.name()).into(),
            replay.steps.iter().map(|s| s.ready[i]).collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            format!("replicas_{}", p.name()).into(),
            replay
                .steps
                .iter()
                .map(|s| s.replicas[i])
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new(times.len(), columns)
}
