//! `prescale simulate`: replay a real load trace under the reactive HPA, prescale's
//! predictive policy and the hybrid of the two, and score each.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use polars::prelude::{Column, DataFrame};

use crate::model;
use crate::scale::behavior::{Behavior, Seconds};
use crate::scale::config::WorkloadConfig;
use crate::scale::hpa::DEFAULT_TOLERANCE;
use crate::scale::policy::PolicySettings;
use crate::scale::replay::{
    auto_capacity, replay_with, Forecasts, Outcome, PolicyKind, Replay, ReplaySettings,
};
use crate::scale::score::{score, DEFAULT_EVENTS_PER_DAY_LIMIT, FORMULAS};
use crate::series::Series;
use crate::source::table::{timestamp_column, write_table};

use super::args::{parse_duration, parse_seasons, InputArgs, Seasons};

/// Flags of `prescale simulate`.
#[derive(Debug, Args)]
#[command(after_long_help = FORMULAS)]
pub struct SimulateArgs {
    #[command(flatten)]
    input: InputArgs,

    /// Load one replica serves at its target, in the trace's units (the HPA's AverageValue),
    /// or `auto`: the trace's 95th percentile over 10 (about ten pods when busy).
    #[arg(long, value_name = "C|auto", required_unless_present = "config", value_parser = parse_capacity)]
    capacity: Option<Capacity>,

    /// Pod start-up time: from asking for a pod to it serving (`90s`, `2m`, or seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, required_unless_present = "config")]
    startup: Option<Duration>,

    /// A workload's YAML configuration (see the README) instead of --capacity, --startup,
    /// --quantile, --min-replicas, --max-replicas and --tolerance: its first metric is the
    /// trace, and its `behavior` replaces the HPA's defaults.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["capacity", "startup", "quantile", "min_replicas", "max_replicas", "tolerance"])]
    config: Option<PathBuf>,

    /// Which policies to replay.
    #[arg(long, value_enum, default_value_t = Which::All)]
    policy: Which,

    /// Forecasting model for predictive and hybrid.
    #[arg(long, default_value = "ets")]
    model: String,

    /// Forecast quantile to provision for (headroom), in (0, 1).
    #[arg(long, value_name = "Q", default_value_t = 0.9)]
    quantile: f64,

    /// Fewest replicas.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_replicas: i64,

    /// Most replicas.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_replicas: i64,

    /// How often the model is refitted on the history seen so far.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    refit_every: Duration,

    /// How much recent history each fit sees.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "14d")]
    history: Duration,

    /// Time before the first scored step [default: --history, or half the trace if shorter].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    warmup: Option<Duration>,

    /// HPA sync period.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    sync: Duration,

    /// HPA tolerance.
    #[arg(long, value_name = "T", default_value_t = DEFAULT_TOLERANCE)]
    tolerance: f64,

    /// Seasonal periods for the model, in steps [default: detected on the warm-up].
    #[arg(long, value_name = "STEPS", value_parser = parse_seasons)]
    season: Option<Seasons>,

    /// Provision the model's own interval at --quantile instead of the quantile of the
    /// forecast's recent one-step misses (the default: calibrated headroom, see the README).
    #[arg(long)]
    model_intervals: bool,

    /// How many recent misses calibrate the headroom.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "7d")]
    calibration_window: Duration,

    /// Also replay a reference, printed as policy `rate-oracle`: the predictive policy fed
    /// the mean of the two steps either side of each step (its level, not its own noise).
    /// It reads the future, so it is no policy: it shows the shortfall left by each step's own
    /// noise. It is a reference, not a strict bound. Its headroom is always calibrated.
    #[arg(long)]
    rate_oracle: bool,

    /// Scaling events per day that score zero stability.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EVENTS_PER_DAY_LIMIT)]
    events_limit: f64,

    /// Folder for the step-by-step replay (`replay.<format>`) and the summary (`summary.csv`).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,

    /// Format of the step-by-step replay.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
}

/// `--capacity`: a number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Capacity {
    Auto,
    PerPod(f64),
}

/// Parses a capacity; range checks are the replay's, so they are listed with the others.
fn parse_capacity(text: &str) -> anyhow::Result<Capacity> {
    if text == "auto" {
        return Ok(Capacity::Auto);
    }
    text.parse()
        .map(Capacity::PerPod)
        .with_context(|| format!("{text:?} is neither a number nor auto"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Reactive,
    Predictive,
    Hybrid,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

/// Quantiles the headroom advice tries, besides the one asked for.
pub(super) const ADVICE_QUANTILES: [f64; 4] = [0.8, 0.9, 0.95, 0.99];

/// The CSV header on stdout: the columns first, then the scores.
pub const HEADER: &str =
    "policy,underprovisioned_pct,slo_violation_minutes,replica_hours,peak_replicas,scaling_events,\
provisioning_score,efficiency_score,accuracy_score,stability_score,overall_score,grade,\
waste_pct,utilisation_pct,mase,forecast_fallbacks,quantile,capacity,trace";

/// Runs `prescale simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let policies: Vec<PolicyKind> = match args.policy {
        Which::Reactive => vec![PolicyKind::Reactive],
        Which::Predictive => vec![PolicyKind::Predictive],
        Which::Hybrid => vec![PolicyKind::Hybrid],
        Which::All => vec![
            PolicyKind::Reactive,
            PolicyKind::Predictive,
            PolicyKind::Hybrid,
        ],
    };
    let model = model::by_name(&args.model)?;
    let traces = args.input.load()?;
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    println!("{HEADER}");
    let mut summary = vec![HEADER.to_string()];
    for (i, trace) in traces.iter().enumerate() {
        let name = trace.labels().to_string();
        let settings = settings_for(&args, trace)?;
        let capacity = settings.capacity;
        eprintln!(
            "{name}: {} steps, warm-up {} steps, refit every {} steps on {} steps of history, seasons {:?}, model {}",
            trace.len(),
            settings.warmup,
            settings.refit_every,
            settings.history,
            settings.seasons,
            args.model
        );
        let mut quantiles = ADVICE_QUANTILES.to_vec();
        quantiles.push(settings.policy.quantile);
        settings
            .validate(trace)
            .with_context(|| format!("replaying {name}"))?;
        let needs_forecasts = policies.iter().any(|p| *p != PolicyKind::Reactive);
        let forecasts = if needs_forecasts {
            Forecasts::make(trace, model.as_ref(), &settings, &quantiles)
        } else {
            Forecasts::none()
        };
        if forecasts.failures() > 0 {
            eprintln!(
                "{name}: {} fit(s) failed; those steps fell back to the observed load",
                forecasts.failures()
            );
        }
        let result = replay_with(trace, &forecasts, &settings, &policies)
            .with_context(|| format!("replaying {name}"))?;
        let mut lines: Vec<String> = result
            .outcomes
            .iter()
            .map(|o| row(o.policy.name(), o, args.events_limit, capacity, &name))
            .collect();
        if args.rate_oracle {
            let reference = Forecasts::knowing_the_rate(trace, &settings, &quantiles);
            // It has no interval of its own: its headroom is always calibrated.
            let calibrated = ReplaySettings {
                calibrate: true,
                ..settings.clone()
            };
            let r = replay_with(trace, &reference, &calibrated, &[PolicyKind::Predictive])
                .with_context(|| format!("replaying {name} knowing the rate"))?;
            lines.extend(
                r.outcomes
                    .iter()
                    .map(|o| row("rate-oracle", o, args.events_limit, capacity, &name)),
            );
        }
        for line in lines {
            println!("{line}");
            summary.push(line);
        }
        for o in result
            .outcomes
            .iter()
            .filter(|o| o.policy != PolicyKind::Reactive)
        {
            if let Some(advice) = advise(trace, &forecasts, &settings, o)? {
                eprintln!("{name} / {}: {advice}", o.policy.name());
            }
        }
        if let Some(dir) = &args.output {
            let suffix = if traces.len() > 1 {
                format!("-{i}")
            } else {
                String::new()
            };
            let ext = match args.format {
                Format::Csv => "csv",
                Format::Parquet => "parquet",
            };
            let path = dir.join(format!("replay{suffix}.{ext}"));
            write_table(&mut steps_table(&result, &policies)?, &path)?;
            eprintln!("wrote the step-by-step replay to {}", path.display());
        }
    }
    if let Some(dir) = &args.output {
        let path = dir.join("summary.csv");
        std::fs::write(&path, summary.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Replay settings for `trace` from the flags, in the trace's steps.
fn settings_for(args: &SimulateArgs, trace: &Series) -> anyhow::Result<ReplaySettings> {
    let step = Duration::from_millis(trace.step().max(1) as u64);
    let steps = |d: Duration| (d.as_secs_f64() / step.as_secs_f64()).round() as usize;
    let history = steps(args.history).max(1);
    let warmup = match args.warmup {
        Some(w) => steps(w),
        None => history.min(trace.len() / 2),
    }
    .max(1);
    let seasons = match &args.season {
        Some(s) => s.0.clone(),
        None => model::season::detect_for(&trace.slice(0..warmup.min(trace.len()))).1,
    };
    let (capacity, policy, behavior, tolerance) = match &args.config {
        Some(path) => {
            let c = WorkloadConfig::load(path)?;
            let first = &c.metrics[0].target;
            if c.metrics.len() > 1 {
                eprintln!(
                    "{}: replaying the trace as metric {:?}; the other metrics need their own traces",
                    path.display(),
                    first.name
                );
            }
            (
                first.capacity_per_replica,
                c.policy,
                c.behavior,
                c.tolerance,
            )
        }
        None => (
            match args.capacity {
                Some(Capacity::PerPod(c)) => c,
                Some(Capacity::Auto) => auto_capacity(trace),
                None => f64::NAN,
            },
            PolicySettings {
                quantile: args.quantile,
                startup: args.startup.map_or(0, |d| d.as_secs() as Seconds),
                min_replicas: args.min_replicas,
                max_replicas: args.max_replicas,
            },
            Behavior::default(),
            args.tolerance,
        ),
    };
    Ok(ReplaySettings {
        capacity,
        policy,
        behavior,
        tolerance,
        sync: args.sync.as_secs().max(1) as Seconds,
        refit_every: steps(args.refit_every).max(1),
        history,
        warmup,
        seasons,
        calibrate: !args.model_intervals,
        calibration_window: steps(args.calibration_window).max(1),
    })
}

fn row(policy: &str, o: &Outcome, events_limit: f64, capacity: f64, trace: &str) -> String {
    let s = score(o, events_limit);
    format!(
        "{},{:.2},{:.0},{:.1},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{},{:.2},{:.2},{:.3},{},{},{},{}",
        policy,
        o.underprovisioned_pct,
        o.slo_violation_minutes,
        o.replica_hours,
        o.peak_replicas,
        o.scaling_events,
        s.provisioning,
        s.efficiency,
        s.accuracy,
        s.stability,
        s.overall,
        s.grade,
        o.waste_pct,
        o.utilisation_pct,
        o.mase,
        o.forecast_fallbacks,
        o.quantile,
        capacity,
        csv_field(trace),
    )
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The headroom advice for `outcome`, measured by replaying again at a neighbouring quantile:
/// a higher one when more than 1% of steps were short, a lower one when under 0.5% were
/// short and over 30% of the ready capacity sat idle.
pub(super) fn advise(
    trace: &Series,
    forecasts: &Forecasts,
    settings: &ReplaySettings,
    outcome: &Outcome,
) -> anyhow::Result<Option<String>> {
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
    let verb = if candidate > q { "raise" } else { "lower" };
    let cost = if outcome.replica_hours > 0.0 {
        100.0 * (new.replica_hours / outcome.replica_hours - 1.0)
    } else {
        0.0
    };
    Ok(Some(format!(
        "{verb} headroom to p{}: under-provisioned {:.1}% → {:.1}% at {:+.0}% replica-hours",
        crate::forecast::format_level((candidate * 1000.0).round() / 10.0),
        outcome.underprovisioned_pct,
        new.underprovisioned_pct,
        cost
    )))
}

/// `time, load`, then `ready_<policy>, replicas_<policy>` per policy.
fn steps_table(replay: &Replay, policies: &[PolicyKind]) -> anyhow::Result<DataFrame> {
    let times: Vec<i64> = replay.steps.iter().map(|s| s.time).collect();
    let mut columns = vec![
        timestamp_column("time", times.clone())?,
        Column::new(
            "load".into(),
            replay.steps.iter().map(|s| s.load).collect::<Vec<_>>(),
        ),
    ];
    for (i, p) in policies.iter().enumerate() {
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
    Ok(DataFrame::new(times.len(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_starts_with_the_documented_columns() {
        assert!(HEADER.starts_with(
            "policy,underprovisioned_pct,slo_violation_minutes,replica_hours,peak_replicas,scaling_events,"
        ));
        assert!(FORMULAS.contains("0.6 x (100 - waste %)"));
    }
}
