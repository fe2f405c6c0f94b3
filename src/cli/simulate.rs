//! `prescale simulate`: replay a real load trace under the reactive HPA, prescale's
//! predictive policy and the hybrid of the two, and score each.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rayon::prelude::*;

use crate::model::ModelSpec;
use crate::scale::advice::{advise, ADVICE_QUANTILES};
use crate::scale::behavior::Seconds;
use crate::scale::config::WorkloadConfig;
use crate::scale::frontier::{self, Curve, Sweep};
use crate::scale::hpa::DEFAULT_TOLERANCE;
use crate::scale::output::{steps_table, summary_record, SUMMARY_COLUMNS};
use crate::scale::policy::PolicySettings;
use crate::scale::replay::{replay_with, Forecasts, ReplaySettings, Strategy};
use crate::scale::replay_config::{Capacity, ReplayConfig, Scored};
use crate::scale::score::{DEFAULT_EVENTS_PER_DAY_LIMIT, FORMULAS};
use crate::source::table::write_table;

use super::args::{parse_duration, parse_seasons, InputArgs, Seasons};

/// Flags of `prescale simulate`.
#[derive(Debug, Args)]
#[command(after_long_help = FORMULAS)]
pub(super) struct SimulateArgs {
    #[command(flatten)]
    input: InputArgs,

    /// Load one replica serves at its target, in the trace's units (the HPA's AverageValue),
    /// or `auto`: the trace's 95th percentile over 10 (about ten pods when busy).
    #[arg(long, value_name = "C|auto", required_unless_present = "config")]
    capacity: Option<Capacity>,

    /// Pod start-up time: from asking for a pod to it serving (`90s`, `2m`, or seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, required_unless_present_any = ["config", "startups"])]
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

    /// Replay cost against shortfall instead: the reactive HPA at target utilisations 0.5 to
    /// 1.0 (its AverageValue target is that fraction of --capacity), predictive, hybrid and
    /// the rate-oracle reference at quantiles 0.5 to 0.99, and a replay fed the future itself.
    /// Prints `policy,target_or_quantile,replica_hours,underprovisioned_pct,unserved_pct,
    /// slo_violation_minutes,trace`; on stderr, per HPA target, the replica-hours each policy
    /// needs for the HPA's unserved load. With --output, writes `frontier.csv` and
    /// `frontier-comparison.csv`.
    #[arg(long, conflicts_with_all = ["policy", "rate_oracle", "format"])]
    frontier: bool,

    /// With --frontier: replay each trace at each of these start-ups (`1m,2m,5m`) instead of
    /// --startup alone. Traces × start-ups run in parallel; the tables gain a `startup_s`
    /// column.
    #[arg(long, value_name = "DURATIONS", value_parser = parse_duration, value_delimiter = ',', requires = "frontier")]
    startups: Vec<Duration>,

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

impl SimulateArgs {
    /// The replay these flags (or the workload file) describe, in time units, and the
    /// workload file when one was given.
    fn config(&self) -> anyhow::Result<(ReplayConfig, Option<WorkloadConfig>)> {
        let mut workload = None;
        let defaults = ReplayConfig::default();
        let mut config = ReplayConfig {
            sync: self.sync,
            refit_every: self.refit_every,
            history: self.history,
            scored: Scored::AfterWarmup(self.warmup),
            seasons: self.season.as_ref().map(|s| s.0.clone()),
            calibrate: !self.model_intervals,
            calibration_window: self.calibration_window,
            ..defaults
        };
        match &self.config {
            Some(path) => {
                let c = WorkloadConfig::load(path)?;
                let first = &c.metrics[0].target;
                if c.metrics.len() > 1 {
                    note!(
                        "{}: replaying the trace as metric {:?}; the other metrics need their own traces",
                        path.display(),
                        first.name
                    );
                }
                config.capacity = Capacity::PerReplica(first.target.amount());
                config.policy = c.policy.clone();
                config.behavior = c.behavior.clone();
                config.tolerance = c.tolerance;
                workload = Some(c);
            }
            None => {
                // clap requires both without --config; NaN is refused by the replay's checks.
                config.capacity = self.capacity.unwrap_or(Capacity::PerReplica(f64::NAN));
                config.policy = PolicySettings {
                    quantile: self.quantile,
                    startup: self.startup.map_or(0, |d| d.as_secs() as Seconds),
                    min_replicas: self.min_replicas,
                    max_replicas: self.max_replicas,
                };
                config.tolerance = self.tolerance;
            }
        }
        Ok((config, workload))
    }
}

/// Runs `prescale simulate`.
pub(super) fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if args.frontier {
        return run_frontier(args);
    }
    let strategies: Vec<Strategy> = match args.policy {
        Which::Reactive => vec![Strategy::Reactive],
        Which::Predictive => vec![Strategy::Predictive],
        Which::Hybrid => vec![Strategy::Hybrid],
        Which::All => Strategy::ALL.to_vec(),
    };
    let model = ModelSpec::named(&args.model)
        .build()
        .with_context(|| format!("--model {}", args.model))?;
    let (config, workload) = args.config()?;
    let config_file: Vec<&std::path::Path> = args.config.as_deref().into_iter().collect();
    let mut traces = args.input.load()?;
    if let Some(w) = &workload {
        // A target-value metric replays as the demand it stands for (see the README).
        traces = traces.iter().map(|t| w.replay_trace(t).0).collect();
    }
    if let Some(dir) = &args.output {
        // Before any replay runs; each replay file is checked again as it is written.
        args.input
            .refuse_as_output(&dir.join("summary.csv"), &config_file)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut stdout = csv::Writer::from_writer(std::io::stdout().lock());
    let mut summary = csv::Writer::from_writer(Vec::new());
    stdout.write_record(SUMMARY_COLUMNS)?;
    summary.write_record(SUMMARY_COLUMNS)?;
    for (i, trace) in traces.iter().enumerate() {
        let name = trace.labels().to_string();
        let settings = config.for_trace(trace);
        let capacity = settings.capacity;
        note!(
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
        let needs_forecasts = strategies.iter().any(|p| *p != Strategy::Reactive);
        let forecasts = if needs_forecasts {
            Forecasts::make(trace, model.as_ref(), &settings, &quantiles)
        } else {
            Forecasts::none()
        };
        if let Some(first) = forecasts.failure_reasons().next() {
            note!(
                "{name}: {} fit(s) failed; those steps fell back to the observed load (the first: {})",
                forecasts.failures(),
                crate::human::chain(first)
            );
        }
        let result = replay_with(trace, &forecasts, &settings, &strategies)
            .with_context(|| format!("replaying {name}"))?;
        let mut records: Vec<Vec<String>> = result
            .outcomes
            .iter()
            .map(|o| summary_record(o.policy.name(), o, args.events_limit, capacity, &name))
            .collect();
        if args.rate_oracle {
            let reference = Forecasts::knowing_the_rate(trace, &settings, &quantiles);
            // It has no interval of its own: its headroom is always calibrated.
            let calibrated = ReplaySettings {
                calibrate: true,
                ..settings.clone()
            };
            let r = replay_with(trace, &reference, &calibrated, &[Strategy::Predictive])
                .with_context(|| format!("replaying {name} knowing the rate"))?;
            records.extend(
                r.outcomes
                    .iter()
                    .map(|o| summary_record("rate-oracle", o, args.events_limit, capacity, &name)),
            );
        }
        for record in &records {
            stdout.write_record(record)?;
            summary.write_record(record)?;
        }
        stdout.flush()?;
        for o in result
            .outcomes
            .iter()
            .filter(|o| o.policy != Strategy::Reactive)
        {
            if let Some(advice) = advise(trace, &forecasts, &settings, o)? {
                note!("{name} / {}: {advice}", o.policy.name());
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
            args.input.refuse_as_output(&path, &config_file)?;
            write_table(&mut steps_table(&result, &strategies)?, &path)?;
            note!("wrote the step-by-step replay to {}", path.display());
        }
    }
    if let Some(dir) = &args.output {
        let path = dir.join("summary.csv");
        args.input.refuse_as_output(&path, &config_file)?;
        let bytes = summary.into_inner().map_err(|e| e.into_error())?;
        crate::files::write_atomic(&path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `prescale simulate --frontier`: every trace replayed along the sweep of [`Sweep`]'s
/// defaults at each start-up, the runs in parallel; the points on stdout, the comparison with
/// the HPA on stderr, both in the order of the traces and start-ups given.
fn run_frontier(args: SimulateArgs) -> anyhow::Result<()> {
    let model = ModelSpec::named(&args.model)
        .build()
        .with_context(|| format!("--model {}", args.model))?;
    let (config, workload) = args.config()?;
    let mut traces = args.input.load()?;
    if let Some(w) = &workload {
        traces = traces.iter().map(|t| w.replay_trace(t).0).collect();
    }
    let startups: Vec<Seconds> = if args.startups.is_empty() {
        vec![config.policy.startup]
    } else {
        args.startups
            .iter()
            .map(|d| d.as_secs() as Seconds)
            .collect()
    };
    let with_startup = !args.startups.is_empty();
    // Every run's settings are checked before the first replay, so a bad trace or start-up
    // fails in a second rather than after an hour of the others.
    let mut runs = Vec::new();
    for trace in &traces {
        let mut at_startups = Vec::new();
        for &startup in &startups {
            let mut config = config.clone();
            config.policy.startup = startup;
            let settings = config.for_trace(trace);
            settings
                .validate(trace)
                .with_context(|| format!("replaying {}", trace.labels()))?;
            at_startups.push((startup, settings));
        }
        runs.push((trace, at_startups));
    }
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sweep = Sweep::default();
    let replays = traces.len() * startups.len();
    note!(
        "{replays} run(s): {} trace(s) × {} start-up(s), each {} HPA targets and {} quantiles with model {}",
        traces.len(),
        startups.len(),
        sweep.targets.len(),
        sweep.quantiles.len(),
        args.model
    );
    let progress = super::progress::bar(replays, "replays");
    // Traces are independent: rayon spreads them (and the fits inside each) over the cores.
    let results: Vec<anyhow::Result<Vec<FrontierRun>>> = runs
        .par_iter()
        .map(|(trace, at_startups)| {
            frontier_runs(trace, at_startups, model.as_ref(), &sweep, &|| {
                progress.inc(1)
            })
        })
        .collect();
    progress.finish_and_clear();

    let mut columns: Vec<&str> = frontier::FRONTIER_COLUMNS.to_vec();
    let mut comparison_columns: Vec<&str> = frontier::COMPARISON_COLUMNS.to_vec();
    if with_startup {
        columns.push("startup_s");
        comparison_columns.push("startup_s");
    }
    let mut stdout = csv::Writer::from_writer(std::io::stdout().lock());
    let mut points_file = csv::Writer::from_writer(Vec::new());
    let mut comparison_file = csv::Writer::from_writer(Vec::new());
    stdout.write_record(&columns)?;
    points_file.write_record(&columns)?;
    comparison_file.write_record(&comparison_columns)?;
    for run in results
        .into_iter()
        .map(|r| r.map(Vec::into_iter))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
    {
        let suffix = |mut record: Vec<String>| {
            if with_startup {
                record.push(run.startup.to_string());
            }
            record
        };
        for p in &run.points {
            let record = suffix(frontier::frontier_record(p, &run.name));
            stdout.write_record(&record)?;
            points_file.write_record(&record)?;
        }
        for record in frontier::comparison_records(&run.comparisons, &run.name) {
            comparison_file.write_record(suffix(record))?;
        }
        let name = if with_startup {
            format!("{} (start-up {} s)", run.name, run.startup)
        } else {
            run.name.clone()
        };
        for line in &run.notes {
            note!("{name}: {line}");
        }
    }
    stdout.flush()?;
    if let Some(dir) = &args.output {
        for (file, writer) in [
            ("frontier.csv", points_file),
            ("frontier-comparison.csv", comparison_file),
        ] {
            let path = dir.join(file);
            let bytes = writer.into_inner().map_err(|e| e.into_error())?;
            crate::files::write_atomic(&path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// One trace at one start-up along the sweep: its points, the comparison with the HPA and
/// the lines to say about it.
struct FrontierRun {
    name: String,
    startup: Seconds,
    points: Vec<frontier::Point>,
    comparisons: Vec<frontier::Comparison>,
    notes: Vec<String>,
}

/// One trace along the sweep at each of its start-ups. The model is fitted once, for the
/// longest start-up's horizon: a shorter start-up's replay reads the first steps of the same
/// forecasts (a model's forecast for a step does not depend on how many steps follow it;
/// only Prophet's simulated intervals are drawn differently for another length).
fn frontier_runs(
    trace: &crate::series::Series,
    at_startups: &[(Seconds, ReplaySettings)],
    model: &dyn crate::model::Model,
    sweep: &Sweep,
    done: &(dyn Fn() + Sync),
) -> anyhow::Result<Vec<FrontierRun>> {
    let Some((_, longest)) = at_startups.iter().max_by_key(|(startup, _)| *startup) else {
        return Ok(vec![]);
    };
    let forecasts = Forecasts::make(trace, model, longest, &sweep.quantiles);
    at_startups
        .iter()
        .map(|(startup, settings)| {
            let run = frontier_run(trace, *startup, settings, &forecasts, sweep);
            done();
            run
        })
        .collect()
}

fn frontier_run(
    trace: &crate::series::Series,
    startup: Seconds,
    settings: &ReplaySettings,
    forecasts: &Forecasts,
    sweep: &Sweep,
) -> anyhow::Result<FrontierRun> {
    let name = trace.labels().to_string();
    let mut notes = vec![format!(
        "{} steps, warm-up {} steps, refit every {} steps on {} steps of history, seasons {:?}",
        trace.len(),
        settings.warmup,
        settings.refit_every,
        settings.history,
        settings.seasons,
    )];
    if let Some(first) = forecasts.failure_reasons().next() {
        notes.push(format!(
            "{} fit(s) failed; those steps fell back to the observed load (the first: {})",
            forecasts.failures(),
            crate::human::chain(first)
        ));
    }
    let points = frontier::sweep(trace, forecasts, settings, sweep)
        .with_context(|| format!("replaying {name}"))?;
    let comparisons = frontier::compare(&points);
    for c in &comparisons {
        let others: Vec<String> = c
            .others
            .iter()
            .map(|o| {
                let cost = match o.cost_at_hpa_shortfall {
                    frontier::Reach::At(v) => format!("{v:.0} h"),
                    frontier::Reach::AtMost(v) => format!("≤ {v:.0} h"),
                    frontier::Reach::Out => "out of reach".into(),
                };
                let short = match o.shortfall_at_hpa_cost {
                    frontier::Reach::At(v) => format!("{v:.2}%"),
                    frontier::Reach::AtMost(v) => format!("≤ {v:.2}%"),
                    frontier::Reach::Out => "out of reach".into(),
                };
                format!("{} {cost} / {short}", o.curve.name())
            })
            .collect();
        notes.push(format!(
            "HPA at {:.0}% ({:.0} replica-hours, {:.2}% unserved): for its unserved load / at its cost: {}",
            c.target * 100.0,
            c.hpa.replica_hours,
            c.hpa.unserved_pct,
            others.join("; ")
        ));
    }
    for curve in [Curve::Predictive, Curve::Hybrid] {
        if let Some(line) = frontier::verdict(&comparisons, 0.7, curve) {
            notes.push(line);
        }
    }
    for curve in [Curve::Predictive, Curve::Hybrid] {
        if let Some(line) = frontier::slo_verdict(&comparisons, 0.7, curve) {
            notes.push(line);
        }
    }
    Ok(FrontierRun {
        name,
        startup,
        points,
        comparisons,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_starts_with_the_documented_columns() {
        assert_eq!(
            SUMMARY_COLUMNS[..6].join(","),
            "policy,underprovisioned_pct,slo_violation_minutes,replica_hours,peak_replicas,scaling_events"
        );
        assert!(FORMULAS.contains("0.6 x (100 - waste %)"));
    }
}
